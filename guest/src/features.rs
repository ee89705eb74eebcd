//! TF-IDF features: a record's terms become a sparse, L2-normalised vector
//! over the vocabulary, plus the weights of the terms the vocabulary lacks.
//!
//! For a term `t` occurring `c` times in the record, its weight is
//! `w(t) = (1 + ln c) · idf(t)` with `idf(t) = ln((1 + N) / (1 + df(t))) + 1`
//! (`N` training lines, `df` the number of them containing `t`). Terms outside
//! the vocabulary get `unseen_idf`, the idf of a term that occurred in no
//! training line.
//!
//! The unseen terms' weights are scaled by the norm of the whole vector, so
//! their squared sum is the line's *unseen share* `u` in [0, 1], the part of
//! it the autoencoder cannot reconstruct. The known terms are scaled to unit
//! norm on their own: the autoencoder always sees a vector like the ones it
//! was trained on, however much of the line is new.

use crate::record::{LogRecord, RecordView};
use crate::tokenizer::Tokenizer;
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The terms the model knows, with their inverse document frequencies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vocabulary {
    terms: Vec<String>,
    idf: Vec<f32>,
    unseen_idf: f32,
    /// The index of each term in `terms`, by [`hash_bytes`] of the term:
    /// FxHash (as in rustc), not SipHash, which cost more than the rest of
    /// a lookup (issue 11: looking terms up was a tenth of scoring a new
    /// line), and terms compared by [`same_bytes`], not `==`, which in the
    /// component calls `memcmp` (issue 11). Keyless on purpose: the index
    /// is built once from the model's own terms and only read, so crafted
    /// lines cannot fill a bucket; at worst they look up a key that
    /// collides with a few model terms, compared in full.
    #[serde(skip)]
    index: HashTable<u32>,
}

impl Vocabulary {
    /// A vocabulary of `terms` with their `idf`s (same length) and the idf
    /// given to terms outside it.
    pub fn new(terms: Vec<String>, idf: Vec<f32>, unseen_idf: f32) -> Self {
        assert_eq!(terms.len(), idf.len(), "one idf per term");
        let mut v = Self { terms, idf, unseen_idf, index: HashTable::new() };
        v.rebuild_index();
        v
    }

    /// Rebuilds the term → index map (it is not serialised).
    pub fn rebuild_index(&mut self) {
        let terms = &self.terms;
        self.index = HashTable::with_capacity(terms.len());
        for (i, t) in (0u32..).zip(terms) {
            // A term twice (which `check` refuses) keeps its first index.
            if self.get(t).is_none() {
                let index = &mut self.index;
                index.insert_unique(hash_bytes(t.as_bytes()), i, |&j| hash_bytes(terms[j as usize].as_bytes()));
            }
        }
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True when there are no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The index of `term`, if known.
    pub fn get(&self, term: &str) -> Option<u32> {
        let term = term.as_bytes();
        self.index.find(hash_bytes(term), |&i| same_bytes(self.terms[i as usize].as_bytes(), term)).copied()
    }

    /// The term at `index`.
    pub fn term(&self, index: u32) -> &str {
        &self.terms[index as usize]
    }

    /// All terms, in index order.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// The idf of each term, in index order.
    pub fn idf(&self) -> &[f32] {
        &self.idf
    }

    /// The idf given to terms outside the vocabulary.
    pub fn unseen_idf(&self) -> f32 {
        self.unseen_idf
    }

    /// Checks what featurizing relies on (a decoded model may be
    /// inconsistent): one finite, positive idf per term, and no term twice.
    pub fn check(&self) -> Result<(), String> {
        if self.idf.len() != self.terms.len() {
            return Err(format!("{} terms but {} idf values", self.terms.len(), self.idf.len()));
        }
        if let Some(bad) = self.idf.iter().chain([&self.unseen_idf]).find(|x| !(x.is_finite() && **x > 0.0)) {
            return Err(format!("idf {bad} is not a positive number"));
        }
        let mut sorted: Vec<&String> = self.terms.iter().collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err("a term appears twice".into());
        }
        Ok(())
    }
}

/// Inverse document frequency of a term seen in `df` of `n` lines.
pub fn idf(df: u64, n: u64) -> f32 {
    (((1 + n) as f64 / (1 + df) as f64).ln() + 1.0) as f32
}

/// A record as features: its known terms as a unit sparse vector (indices
/// ascending) and its unseen terms with their share of the whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features<'a> {
    /// `(vocabulary index, weight)`, indices strictly ascending.
    pub known: Vec<(u32, f32)>,
    /// Terms outside the vocabulary with their weights.
    pub unseen: Vec<(Cow<'a, str>, f32)>,
}

impl Features<'_> {
    /// The unseen share `u`: the squared weight of the unseen terms in the
    /// whole (normalised) vector, in [0, 1]; 1 when every term is new.
    pub fn unseen_share(&self) -> f32 {
        // The sum of squares of normalised weights can round past 1 (the
        // `features` fuzz target found 1.0000001); the promise is [0, 1].
        self.unseen.iter().map(|(_, w)| w * w).sum::<f32>().min(1.0)
    }
}

/// Appends the terms of a record: the message's tokens, then its source as
/// a *context term* `@source` (digits masked, lowercase).
///
/// A record's severity is not a term. It enters the raw error only as the
/// severity prior ([`severity`], `model::severity_bonus`), so where the
/// level came from — a `<PRI>` header, journald's `PRIORITY`, an NDJSON
/// `level`, or a word of the message — cannot make a line unusual by
/// itself (issue 14: a model trained on plain syslog lines flagged every
/// journald line for its unseen `pri:6`).
pub fn record_terms<'a>(tokenizer: &Tokenizer, record: impl Into<RecordView<'a>>, out: &mut Vec<Cow<'a, str>>) {
    let record = record.into();
    tokenizer.tokenize(record.message, out);
    if !record.source.is_empty() {
        let mut source = String::with_capacity(record.source.len() + 1);
        source.push(CONTEXT_PREFIX);
        let ascii = record.source.is_ascii();
        let mut in_digits = false;
        for c in record.source.chars() {
            if c.is_ascii_digit() {
                if !in_digits {
                    source.push('#');
                }
                in_digits = true;
            } else {
                in_digits = false;
                if ascii {
                    source.push(c.to_ascii_lowercase());
                } else {
                    source.extend(c.to_lowercase());
                }
            }
        }
        out.push(Cow::Owned(source));
    }
}

/// Context terms start with this; the tokenizer never starts a word with it.
pub const CONTEXT_PREFIX: char = '@';

/// True for a context term (a record's source, `@sshd`), as opposed to a
/// word of its message.
pub fn is_context_term(term: &str) -> bool {
    term.starts_with(CONTEXT_PREFIX)
}

/// Words that mark a message's severity when the record carries none of its
/// own (a plain syslog file has no `<PRI>`), with the syslog level they stand
/// for, sorted by their bytes. Log stores do the same (Grafana Loki's
/// `detected_level`); this list is deliberately short and only holds words
/// that say something went wrong, so that "unusual" and "troubled" stay
/// separate signals. Plural and summary forms (`errors`, `0 failures`) are
/// left out: they appear in healthy status lines. Besides English, the
/// common words of system logs in German, French, Spanish, Portuguese,
/// Italian, Dutch, Polish, Russian and Ukrainian.
const SEVERITY_WORDS: [(&str, u8); 62] = [
    ("abort", 3),
    ("aborted", 3),
    ("advertencia", 4),
    ("avertissement", 4),
    ("aviso", 4),
    ("avviso", 4),
    ("bug", 2),
    ("błąd", 3),
    ("can't", 3),
    ("cannot", 3),
    ("corrupt", 3),
    ("corrupted", 3),
    ("couldn't", 3),
    ("crit", 2),
    ("critical", 2),
    ("critique", 2),
    ("crítico", 2),
    ("denied", 3),
    ("emerg", 0),
    ("emergency", 0),
    ("err", 3),
    ("erreur", 3),
    ("erro", 3),
    ("error", 3),
    ("errore", 3),
    ("exception", 3),
    ("fail", 3),
    ("failed", 3),
    ("failure", 3),
    ("falha", 3),
    ("falhou", 3),
    ("fallito", 3),
    ("fallo", 3),
    ("falló", 3),
    ("fatal", 2),
    ("fehler", 3),
    ("fehlgeschlagen", 3),
    ("fout", 3),
    ("illegal", 3),
    ("invalid", 3),
    ("killed", 3),
    ("kritisch", 2),
    ("mislukt", 3),
    ("oops", 2),
    ("panic", 0),
    ("refused", 3),
    ("segfault", 2),
    ("timeout", 3),
    ("unable", 3),
    ("unreachable", 3),
    ("violation", 3),
    ("warn", 4),
    ("warning", 4),
    ("warnung", 4),
    ("won't", 3),
    ("échec", 3),
    ("échoué", 3),
    ("отказ", 3),
    ("ошибка", 3),
    ("помилка", 3),
    ("предупреждение", 4),
    ("сбой", 3),
];

/// The same for scripts written without spaces between words (Chinese,
/// Japanese) or with particles attached to them (Korean): found inside a
/// term, not as the whole term.
const SEVERITY_PARTS: [(&str, u8); 10] =
    [("エラー", 3), ("失敗", 3), ("警告", 4), ("致命", 2), ("错误", 3), ("失败", 3), ("故障", 3), ("오류", 3), ("실패", 3), ("경고", 4)];

/// A record's severity as the detector weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Severity {
    /// Syslog level, 0 (emerg) to 7 (debug).
    pub level: u8,
    /// The word it was inferred from, when the record carried no severity.
    pub keyword: Option<&'static str>,
}

/// The severity of a record: its own (`priority`, from a header or a
/// field) when it has one, else the most severe of `SEVERITY_WORDS` among
/// its terms ([`record_terms`]), else none.
pub fn severity(priority: Option<u8>, terms: &[Cow<'_, str>]) -> Option<Severity> {
    if let Some(level) = priority {
        return Some(Severity { level: level.min(7), keyword: None });
    }
    terms.iter().filter_map(|t| word_severity(t)).min_by_key(|s| (s.level, s.keyword))
}

/// A quick test that spares most terms the search of [`SEVERITY_WORDS`]
/// (issue 11: it ran for every term of every new line): the first three
/// bytes of every entry, and its length with its first byte, as bits
/// (bytes folded to their low five bits, so that both tables are small).
/// A term that fails it is no entry; one that passes may be one.
const SEVERITY_HEADS: [u64; 512] = {
    let mut set = [0u64; 512];
    let mut i = 0;
    while i < SEVERITY_WORDS.len() {
        let h = head(SEVERITY_WORDS[i].0.as_bytes());
        set[h / 64] |= 1 << (h % 64);
        i += 1;
    }
    set
};
/// See [`SEVERITY_HEADS`]: by first byte, the lengths of the entries, as
/// bits (31 for any length from 31 up).
const SEVERITY_LENGTHS: [u32; 32] = {
    let mut set = [0u32; 32];
    let mut i = 0;
    while i < SEVERITY_WORDS.len() {
        let w = SEVERITY_WORDS[i].0.as_bytes();
        set[(w[0] & 31) as usize] |= 1 << length_bit(w);
        i += 1;
    }
    set
};

/// The first three bytes of a word (zero for missing ones), five bits each.
const fn head(b: &[u8]) -> usize {
    let mut h = 0;
    let mut i = 0;
    while i < 3 {
        h = h << 5 | if i < b.len() { (b[i] & 31) as usize } else { 0 };
        i += 1;
    }
    h
}

const fn length_bit(b: &[u8]) -> u32 {
    if b.len() < 31 { b.len() as u32 } else { 31 }
}

/// Whether `b` may be one of [`SEVERITY_WORDS`] ([`SEVERITY_HEADS`]).
fn may_be_severity_word(b: &[u8]) -> bool {
    let h = head(b);
    !b.is_empty() && SEVERITY_HEADS[h / 64] & (1 << (h % 64)) != 0 && SEVERITY_LENGTHS[usize::from(b[0] & 31)] & (1 << length_bit(b)) != 0
}

/// The severity one term says, if it is one of [`SEVERITY_WORDS`] or holds
/// one of [`SEVERITY_PARTS`].
pub(crate) fn word_severity(term: &str) -> Option<Severity> {
    let b = term.as_bytes();
    // Compared byte by byte in place, not by `str`'s order (see `sort_terms`).
    let word = may_be_severity_word(b).then(|| SEVERITY_WORDS.binary_search_by(|(w, _)| w.as_bytes().iter().cmp(b.iter())).ok()).flatten();
    let found = match word {
        Some(i) => Some(SEVERITY_WORDS[i]),
        None if !term.is_ascii() => SEVERITY_PARTS.iter().find(|(part, _)| term.contains(part)).copied(),
        None => None,
    };
    found.map(|(word, level)| Severity { level, keyword: Some(word) })
}

/// Sorts terms by their bytes, as `sort_unstable` does, but comparing them
/// byte by byte in place: in the component, `str`'s own order calls
/// wasi-libc's `memcmp` for every comparison, and most terms differ in
/// their first byte (issue 11: sorting was a tenth of scoring a new line).
pub fn sort_terms(terms: &mut [Cow<'_, str>]) {
    terms.sort_unstable_by(|a, b| a.as_bytes().iter().cmp(b.as_bytes().iter()));
}

/// Whether two byte strings are equal, compared eight bytes at a time. In
/// the component, `==` on slices and strings calls wasi-libc's `memcmp`, a
/// loop over single bytes (issue 11: it was 4% of the monitor's scoring
/// thread on templated lines, 3% on new ones).
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().expect("chunks of 8"));
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    // The tail byte by byte: `==` would call `memcmp` again.
    a.len() == b.len() && a8.remainder().iter().zip(b8.remainder()).all(|(x, y)| x == y) && a8.zip(b8).all(|(x, y)| word(x) == word(y))
}

/// A hash of bytes that only picks a slot in a table whose keys are
/// compared in full ([`same_bytes`]): FxHash's, which in wasm32 multiplies
/// 32-bit halves, where xxh3's 128-bit products are calls to `__multi3`
/// (issue 11: 2% of the monitor's time on templated lines). Not persisted,
/// unlike kind ids ([`crate::kinds::kind_id`]).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(bytes);
    h.finish()
}

/// Turns a record's terms into features. `terms` is reordered.
///
/// A context term the vocabulary does not know is left out rather than
/// counted as unseen: a model trained on records without sources (or with
/// other ones) is not surprised by a source's presence; a new program's
/// novelty is in its words.
pub fn featurize<'a>(vocab: &Vocabulary, terms: &mut [Cow<'a, str>]) -> Features<'a> {
    sort_terms(terms);
    // At most one known entry per term: one allocation, not one per doubling.
    let mut features = Features { known: Vec::with_capacity(terms.len()), unseen: Vec::new() };
    let mut i = 0;
    while i < terms.len() {
        let mut j = i + 1;
        while j < terms.len() && same_bytes(terms[j].as_bytes(), terms[i].as_bytes()) {
            j += 1;
        }
        // libm, not std: the same bits natively and in wasm.
        let tf = 1.0 + libm::logf((j - i) as f32);
        match vocab.get(&terms[i]) {
            Some(index) => features.known.push((index, tf * vocab.idf[index as usize])),
            None if is_context_term(&terms[i]) => {}
            None => features.unseen.push((terms[i].clone(), tf * vocab.unseen_idf)),
        }
        i = j;
    }
    features.known.sort_unstable_by_key(|&(index, _)| index);
    let known_sq: f32 = features.known.iter().map(|(_, w)| w * w).sum();
    // Not `unseen_share()`: these weights are not normalised yet, and that clamps at 1.
    let norm_sq = known_sq + features.unseen.iter().map(|(_, w)| w * w).sum::<f32>();
    if known_sq > 0.0 {
        let inv = 1.0 / known_sq.sqrt();
        features.known.iter_mut().for_each(|(_, w)| *w *= inv);
    }
    if norm_sq > 0.0 {
        let inv = 1.0 / norm_sq.sqrt();
        features.unseen.iter_mut().for_each(|(_, w)| *w *= inv);
    }
    features
}

/// Tokenizes and featurizes a record in one call.
pub fn features_of<'a>(tokenizer: &Tokenizer, vocab: &Vocabulary, record: &'a LogRecord) -> Features<'a> {
    let mut terms = Vec::new();
    record_terms(tokenizer, record, &mut terms);
    featurize(vocab, &mut terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_compare_like_slices() {
        let keys: Vec<Vec<u8>> = (0..40).map(|n| (0..n).map(|i| (i * 7 % 5) as u8).collect()).collect();
        for a in &keys {
            for b in &keys {
                assert_eq!(same_bytes(a, b), a == b);
                // A difference in any byte, in the words or in the tail.
                for at in 0..b.len() {
                    let mut c = b.clone();
                    c[at] ^= 0x80;
                    assert_eq!(same_bytes(a, &c), *a == c, "{a:?} {c:?}");
                }
            }
        }
    }

    #[test]
    fn every_severity_word_passes_the_quick_test() {
        for (word, level) in SEVERITY_WORDS {
            assert_eq!(word_severity(word), Some(Severity { level, keyword: Some(word) }), "{word}");
            // Neighbours are not severity words, whatever the quick test says.
            let mut shorter = word.chars();
            shorter.next_back();
            for other in [format!("{word}x"), shorter.as_str().to_string(), format!("x{word}")] {
                assert!(word_severity(&other).is_none_or(|s| s.keyword != Some(word)), "{other}");
            }
        }
        assert_eq!(word_severity("接続に失敗しました").map(|s| s.level), Some(3));
        assert_eq!(word_severity(""), None);
    }

    #[test]
    fn terms_sort_in_str_order() {
        let words = ["", "a", "ab", "ab\0", "abc", "b", "<num>", "@sshd", "é", "ée", "日本", "\u{7f}", "ab\u{1}", "Z"];
        let mut terms: Vec<Cow<str>> = words.iter().rev().map(|w| Cow::Borrowed(*w)).collect();
        terms.extend(words.iter().map(|w| Cow::Owned(w.to_string())));
        let mut expected = terms.clone();
        expected.sort_unstable();
        sort_terms(&mut terms);
        assert_eq!(terms, expected);
    }

    #[test]
    fn weights_are_normalised_and_unseen_terms_split_out() {
        let vocab = Vocabulary::new(vec!["a".into(), "b".into()], vec![1.0, 2.0], 3.0);
        let mut terms: Vec<Cow<str>> = ["b", "a", "a", "zzz"].iter().map(|s| Cow::Borrowed(*s)).collect();
        let f = featurize(&vocab, &mut terms);
        assert_eq!(f.known.iter().map(|k| k.0).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(f.unseen.len(), 1);
        // a: (1 + ln 2)·1, b: 1·2, zzz: 1·3 before normalisation. The known
        // part is a unit vector; the unseen term keeps its share of the whole.
        let a = 1.0 + 2f32.ln();
        let known = (a * a + 4.0f32).sqrt();
        assert!((f.known[0].1 - a / known).abs() < 1e-6);
        assert!((f.known[1].1 - 2.0 / known).abs() < 1e-6);
        assert!((f.unseen_share() - 9.0 / (a * a + 4.0 + 9.0)).abs() < 1e-6);
        // A line of new words only is all unseen share.
        let mut terms: Vec<Cow<str>> = ["x", "y"].iter().map(|s| Cow::Borrowed(*s)).collect();
        let f = featurize(&vocab, &mut terms);
        assert!(f.known.is_empty() && (f.unseen_share() - 1.0).abs() < 1e-6);
    }

    /// Issue 14: the source is a context term, the severity is not a term.
    #[test]
    fn record_terms_include_the_source_but_not_the_severity() {
        let rec = LogRecord { source: "kworker2".into(), priority: Some(3), ..LogRecord::from_message("Disk ok @all") };
        let mut out = Vec::new();
        record_terms(&Tokenizer::default(), &rec, &mut out);
        assert_eq!(out, ["disk", "ok", "all", "@kworker#"]);
    }

    /// Issue 14: an unknown context term is neither known nor unseen.
    #[test]
    fn unknown_sources_are_left_out() {
        let vocab = Vocabulary::new(vec!["disk".into(), "@cron".into()], vec![1.0, 1.0], 3.0);
        let mut terms: Vec<Cow<str>> = ["disk", "@sshd"].iter().map(|s| Cow::Borrowed(*s)).collect();
        let f = featurize(&vocab, &mut terms);
        assert_eq!((f.known.len(), f.unseen.len()), (1, 0));
        let mut terms: Vec<Cow<str>> = ["disk", "@cron"].iter().map(|s| Cow::Borrowed(*s)).collect();
        assert_eq!(featurize(&vocab, &mut terms).known.len(), 2);
    }

    #[test]
    fn severity_is_the_records_own_else_inferred_from_its_words() {
        assert!(SEVERITY_WORDS.windows(2).all(|w| w[0].0 < w[1].0), "sorted for binary search");
        let of = |message: &str, priority: Option<u8>| {
            let rec = LogRecord { priority, ..LogRecord::from_message(message) };
            let mut terms = Vec::new();
            record_terms(&Tokenizer::default(), &rec, &mut terms);
            severity(rec.priority, &terms)
        };
        // The record's own severity wins, even over alarming words.
        assert_eq!(of("kernel panic - not syncing", Some(6)), Some(Severity { level: 6, keyword: None }));
        let inferred = |level, keyword| Some(Severity { level, keyword: Some(keyword) });
        assert_eq!(of("Kernel panic - not syncing: Fatal exception", None), inferred(0, "panic"));
        assert_eq!(of("pam_unix(sshd:auth): authentication failure; rhost=10.1.2.3", None), inferred(3, "failure"));
        assert_eq!(of("Failed password for root from 10.0.0.1 port 22 ssh2", None), inferred(3, "failed"));
        assert_eq!(of("warning: can't get client address: Connection reset by peer", None), inferred(3, "can't"));
        assert_eq!(of("ERROR: disk full", None), inferred(3, "error"));
        assert_eq!(of("myapp[42]: segfault at 0 ip 00007f sp 00007ffd error 4", None), inferred(2, "segfault"));
        assert_eq!(of("WARNING: battery low", None), inferred(4, "warning"));
        assert_eq!(of("watchdog: BUG: soft lockup - CPU#3 stuck for 52s!", None), inferred(2, "bug"));
        // Healthy lines and summaries stay of unknown severity.
        assert_eq!(of("Accepted publickey for alice from 10.0.0.1 port 22", None), None);
        assert_eq!(of("fsck: 0 errors, 0 failures", None), None);
        assert_eq!(of("named: notify question section contains no SOA", None), None);
        // Issue 14: the common languages of system logs.
        for (line, word) in [
            ("Ошибка диска /dev/sda1", "ошибка"),
            ("Fehler beim Lesen von /dev/sda1", "fehler"),
            ("erreur de lecture du disque", "erreur"),
            ("Échec de la connexion", "échec"),
            ("fallo al montar /home", "fallo"),
            ("ディスクの読み取りエラーが発生しました", "エラー"),
            ("磁盘读取错误", "错误"),
            ("디스크 오류가 발생했습니다", "오류"),
        ] {
            assert_eq!(of(line, None).and_then(|s| s.keyword), Some(word), "{line}");
        }
        assert_eq!(of("Warnung: Speicher fast voll", None), inferred(4, "warnung"));
    }

    #[test]
    fn idf_is_higher_for_rarer_terms() {
        assert!(idf(1, 100) > idf(50, 100));
        assert!((idf(100, 100) - (101f64 / 101f64).ln() as f32 - 1.0).abs() < 1e-6);
    }
}
