//! What the detector remembers about *kinds* of lines between verdicts, so
//! that news is reported once (issue 15): the first line of a new kind is an
//! alert; later lines of that kind are counted against it, and the alert is
//! raised again only as a summary when the count crosses 10, 100, 1,000…,
//! or when a line of the kind is markedly worse than the one reported.
//!
//! A kind is a template: a line's terms as the model sees them (the
//! tokenizer's output, variable parts masked, plus its `@source`), as a
//! multiset. In a line that says something went wrong and is made mostly
//! of words the model knows, every word its vocabulary lacks counts as
//! [`ANY`] ([`kind_terms`]): a word training never saw is then the
//! failure's variable part. A brute force tries a new user name on every
//! line, and its lines are one kind (`sshd: failed password for invalid
//! user <*> from <ip>`), one alert and one burst, not one of each per name.
//! A new word in an informational line (a new user logging in) is the news
//! itself, and a line mostly of new words is news of its own: they keep
//! their words. Two lines of one kind
//! therefore get the same score unless their severity differs (or their
//! unseen words' repeats do), which is why "worse" means a higher severity
//! or a much higher score; the verdict's terms still name the unseen words.
//!
//! The memory changes what is *reported*, never a line's score or its
//! `anomalous` verdict, so line-level metrics stay comparable. It is bounded
//! ([`MAX_KINDS`], least recently seen forgotten first), can be saved and
//! restored across restarts ([`News::save`], [`News::restore`]), and on
//! restore under another model it keeps only the kinds that model still
//! finds anomalous: a retrained model that knows a kind clears it.
//!
//! The same kinds carry *bursts* (issue 12): lines the model knows well,
//! logged far faster than usual (a brute force, a crash loop, a flapping
//! link). The trainer learns how many lines of each kind one minute of
//! training held at most ([`RateLearner`] → [`Rates`], stored in the
//! model); the detector counts each kind over a sliding minute of the
//! records' own timestamps ([`Bursts`]; replayed logs work, records without
//! a timestamp are not counted) and raises one [`Burst`] when the count
//! goes far beyond that, and not again until the burst has died down.

use crate::features::{Vocabulary, is_context_term};
use lru::LruCache;
use nohash_hasher::BuildNoHashHasher;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::num::NonZeroUsize;
use xxhash_rust::xxh3::xxh3_64;

/// Most kinds remembered.
pub const MAX_KINDS: usize = 10_000;
/// Most bytes of terms kept per kind (to recheck it under a new model);
/// a kind with longer terms is remembered by its id and template only.
pub const MAX_TERM_BYTES: usize = 1024;
/// Longest template text kept, characters.
pub const MAX_TEMPLATE_CHARS: usize = 200;
/// The format of [`News::save`]'s bytes.
const MEMORY_FORMAT: u32 = 1;

/// What a scored line did to the report (the `reported` field of outputs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report {
    /// Not anomalous: nothing to report.
    #[default]
    Quiet,
    /// Anomalous, and the first of its kind (since the model was trained,
    /// or since its kind was forgotten): an alert.
    New,
    /// Anomalous and of a kind already reported, but markedly worse than
    /// the worst reported (a higher severity, or a score whose distance to
    /// 1 is ten times smaller): an alert again.
    Worse,
    /// Anomalous and of a kind already reported: counted, not alerted.
    Counted,
}

impl Report {
    /// Whether the line raises an alert.
    pub fn is_alert(self) -> bool {
        matches!(self, Report::New | Report::Worse)
    }

    /// The name outputs use: `new`, `worse`, `counted`, or `None`.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Report::Quiet => None,
            Report::New => Some("new"),
            Report::Worse => Some("worse"),
            Report::Counted => Some("counted"),
        }
    }
}

/// A summary of a kind that keeps happening: raised when its count crosses
/// 10, 100, 1,000…
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeat {
    /// The kind, readable: `sshd: failed password for <*> from <ip>`.
    pub template: String,
    /// Anomalous lines of the kind since it was first reported, this one included.
    pub count: u64,
    /// When the first was logged (µs since the Unix epoch), if it said.
    pub first_timestamp_us: Option<i64>,
}

/// A burst: a kind logged far faster than training saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Burst {
    /// The kind, readable.
    pub template: String,
    /// Lines of the kind in the last `window_secs`, this one included.
    pub count: u64,
    /// The window, seconds.
    pub window_secs: u32,
    /// The most lines of the kind one window of training held (see [`Rates`]).
    pub usual: u32,
}

/// The window bursts are counted over, seconds.
pub const WINDOW_SECS: u32 = 60;
/// A burst is `count ≥ max(BURST_FACTOR × usual, usual + BURST_EXCESS)`:
/// ten times the usual rate, and never fewer than 30 lines more than it.
pub const BURST_FACTOR: u64 = 10;
/// See [`BURST_FACTOR`].
pub const BURST_EXCESS: u64 = 30;
/// Fewest minutes of training, with timestamped lines in them, from which
/// usual rates are learned: the busiest minutes of a few are no measure of
/// a kind's rate (Loghub's Spark sample is 28 seconds long; trained on it,
/// the next seconds were "bursts" of the same lines). Below it a model has
/// no rates and raises no bursts.
pub const MIN_RATE_MINUTES: u32 = 30;
/// Most kinds a model's [`Rates`] keeps (the most frequent).
pub const MAX_RATES: usize = 50_000;
/// Most kinds the trainer counts (later new kinds are left to the default).
const MAX_LEARNED: usize = 200_000;
/// Sub-windows of the sliding window (each `WINDOW_SECS / SLOTS` seconds).
const SLOTS: usize = 6;
/// How much older than the latest record of its kind a record may be and
/// still count with it, seconds: lines arrive out of order by that much
/// (the hosts of a central log a few minutes apart, a shipper's buffer),
/// and their rate is the rate they arrive at. An older one is from
/// another time; see [`KindClock`]. The trainer and the detector draw the
/// line at the same place, so the usual rates are what the detector counts
/// (two hosts three minutes apart made each kind's minutes one-line runs
/// in training, "usually ≤ 1", and a burst in monitoring).
pub const DISORDER_SECS: u32 = 600;

/// How many records of a kind in a row must come from another time, over
/// at least a window of their own time, before its count starts over there.
/// Fewer, or a shorter run, count as they arrive, with the latest: a host
/// whose clock is an hour off among others (its lines come a few at a time
/// between theirs), a record synced late. A longer run is a log from
/// another time (a file read after a newer one, a sample that jumps back a
/// month), and counts there.
const STRAYS_IN_A_ROW: usize = 16;

/// Most records held from another time ([`KindClock`]): a run this long
/// starts the count over there however short its span (memory per kind
/// stays bounded).
const MOST_HELD: usize = 2 * STRAYS_IN_A_ROW;

/// Where a kind's records are counted, the one rule the trainer and the
/// detector share: with the kind's latest record, unless a run of records
/// [`DISORDER_SECS`] older than it is long enough ([`STRAYS_IN_A_ROW`])
/// to be a log of another time. Older is measured to the microsecond (the
/// two compared minute numbers and 10 s slots, and disagreed on lines
/// 600–659 s older). Records from another time are held until the run
/// ends: counted with the latest as they arrived when it ends there, or,
/// when the count starts over, each at its own time (all in one minute,
/// the held minute's worth made a usual rate 16 where it was 1). A single
/// old record used to start the count over, so with a host ten minutes or
/// more off among others training learned no rate, and one burst was
/// reported every few seconds.
#[derive(Debug, Clone)]
struct KindClock {
    /// The latest record's time (of the time counted in).
    latest_us: i64,
    /// The times of the records from another time in a row, held.
    held: Vec<i64>,
}

/// Where [`KindClock::place`] puts a record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placement {
    /// Count this many records (this one and the held ones it ends) with
    /// the latest.
    Latest(u32),
    /// From another time: held.
    Held,
    /// Start the count over with the records logged at these times (the
    /// held ones and this one), each counted at its own time.
    StartOver(Vec<i64>),
}

impl KindClock {
    fn new(timestamp_us: i64) -> Self {
        Self { latest_us: timestamp_us, held: Vec::new() }
    }

    /// Places a record logged at `timestamp_us`.
    fn place(&mut self, timestamp_us: i64) -> Placement {
        if self.latest_us.saturating_sub(timestamp_us) > i64::from(DISORDER_SECS) * 1_000_000 {
            self.held.push(timestamp_us);
            let span_us = timestamp_us.abs_diff(self.held[0]);
            let n = self.held.len();
            if n < STRAYS_IN_A_ROW || (span_us < u64::from(WINDOW_SECS) * 1_000_000 && n < MOST_HELD) {
                return Placement::Held;
            }
            let times = std::mem::take(&mut self.held);
            self.latest_us = times.iter().copied().max().unwrap_or(timestamp_us);
            return Placement::StartOver(times);
        }
        self.latest_us = self.latest_us.max(timestamp_us);
        let records = 1 + self.held.len() as u32;
        self.held.clear();
        Placement::Latest(records)
    }
}

/// How often each kind occurred in training: per kind, the second-highest
/// number of its lines any one minute held (the second, so that a single
/// burst in the training data does not hide the next one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// `(kind id, usual count per window)`, sorted by id; kinds whose usual
    /// count is 1 or unknown are left out.
    pub usual: Vec<(u64, u32)>,
    /// The distinct minutes of training that held a line with a timestamp
    /// (counted up to `MAX_LEARNED`): fewer than [`MIN_RATE_MINUTES`], and
    /// the rates say nothing ([`Rates::learned`]).
    pub minutes: u32,
}

impl Rates {
    /// The usual count per window of a kind (1 when training saw it at
    /// most once a minute, or never).
    pub fn usual(&self, kind: u64) -> u32 {
        self.usual.binary_search_by_key(&kind, |(k, _)| *k).map_or(1, |i| self.usual[i].1)
    }

    /// Whether training spanned enough minutes for its rates to mean
    /// anything, and so whether bursts are looked for.
    pub fn learned(&self) -> bool {
        self.minutes >= MIN_RATE_MINUTES
    }

    /// The rates of a model retrained from this one on `newer` lines: per
    /// kind the higher usual count, and the minutes of the longer history
    /// (not their sum: the two may be the same minutes, a nightly retrain
    /// on the last day or the same file twice, and 30 minutes must be 30
    /// real ones). A retrain that continues a model keeps what it knew of
    /// rates too; learned from its own lines alone, an hour's retrain would
    /// turn bursts off, and one without the nightly peak would make the
    /// peak a burst.
    pub fn merged(&self, newer: &Rates) -> Rates {
        let mut by_kind: std::collections::BTreeMap<u64, u32> = self.usual.iter().copied().collect();
        for &(kind, count) in &newer.usual {
            let usual = by_kind.entry(kind).or_default();
            *usual = (*usual).max(count);
        }
        Rates { usual: most_frequent(by_kind.into_iter().collect()), minutes: self.minutes.max(newer.minutes) }
    }

    /// Whether bursts are looked for, and from what, for people: what the
    /// trainer's summary and both `info` commands print after `bursts:`.
    pub fn describe(&self) -> String {
        if self.learned() {
            format!("on (usual rates of {} kinds, from {} minutes of lines)", self.usual.len(), self.minutes)
        } else {
            let minutes = if self.minutes == 1 { "1 minute".to_owned() } else { format!("{} minutes", self.minutes) };
            format!(
                "off: the lines' timestamps fall in {minutes}, fewer than the {MIN_RATE_MINUTES} it takes to learn how often each kind comes; train on a longer history"
            )
        }
    }

    /// Checks the order the lookup relies on.
    pub fn check(&self) -> Result<(), String> {
        if self.usual.len() > MAX_RATES {
            return Err(format!("{} kinds, more than {MAX_RATES}", self.usual.len()));
        }
        if !self.usual.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err("kinds are not sorted and unique".into());
        }
        Ok(())
    }
}

/// Learns [`Rates`] from training records in time order (roughly: a record
/// out of order starts a new minute for its kind). Memory is bounded:
/// `MAX_LEARNED` kinds.
#[derive(Debug, Default)]
pub struct RateLearner {
    /// Per kind: where it is counted, the minute being counted, its count,
    /// the two highest counts.
    kinds: std::collections::HashMap<u64, (KindClock, i64, u32, [u32; 2])>,
    /// The distinct minutes seen (lines out of order, or two files of the
    /// same hours, count each minute once), up to `MAX_LEARNED`.
    minutes: std::collections::HashSet<i64>,
}

impl RateLearner {
    /// Counts one record of kind `kind` ([`kind_id`]) logged at `timestamp_us`.
    pub fn observe(&mut self, kind: u64, timestamp_us: Option<i64>) {
        let Some(ts) = timestamp_us else { return };
        let minute = ts.div_euclid(i64::from(WINDOW_SECS) * 1_000_000);
        if self.minutes.len() < MAX_LEARNED {
            self.minutes.insert(minute);
        }
        if self.kinds.len() >= MAX_LEARNED && !self.kinds.contains_key(&kind) {
            return;
        }
        let (clock, current, count, top) = self.kinds.entry(kind).or_insert((KindClock::new(ts), minute, 0, [0, 0]));
        match clock.place(ts) {
            Placement::Held => {}
            Placement::Latest(records) => count_in_minute(minute, records, current, count, top),
            Placement::StartOver(times) => start_over(&times, current, count, top),
        }
    }

    /// The rates learned.
    pub fn finish(self) -> Rates {
        let usual: Vec<(u64, u32)> = self
            .kinds
            .into_iter()
            .map(|(kind, (clock, mut current, mut count, mut top))| {
                // A run from another time still held counts there.
                if !clock.held.is_empty() {
                    start_over(&clock.held, &mut current, &mut count, &mut top);
                }
                push_top(&mut top, count);
                (kind, top[1].max(1))
            })
            .filter(|(_, u)| *u > 1)
            .collect();
        Rates { usual: most_frequent(usual), minutes: self.minutes.len() as u32 }
    }
}

/// Counts `records` in the minute `minute` (a later minute than the one
/// counted starts anew; an earlier one counts in it, out of order).
fn count_in_minute(minute: i64, records: u32, current: &mut i64, count: &mut u32, top: &mut [u32; 2]) {
    if minute > *current {
        push_top(top, *count);
        (*current, *count) = (minute, 0);
    }
    *count += records;
}

/// Starts a kind's count over with records logged at `times`, each in its
/// own minute.
fn start_over(times: &[i64], current: &mut i64, count: &mut u32, top: &mut [u32; 2]) {
    let minute = |t: i64| t.div_euclid(i64::from(WINDOW_SECS) * 1_000_000);
    push_top(top, *count);
    (*current, *count) = (times.first().map_or(*current, |&t| minute(t)), 0);
    for &t in times {
        count_in_minute(minute(t), 1, current, count, top);
    }
}

/// At most [`MAX_RATES`] of `usual`, the most frequent kinds, sorted by
/// kind as [`Rates`] keeps them.
fn most_frequent(mut usual: Vec<(u64, u32)>) -> Vec<(u64, u32)> {
    if usual.len() > MAX_RATES {
        usual.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        usual.truncate(MAX_RATES);
    }
    usual.sort_unstable();
    usual
}

fn push_top(top: &mut [u32; 2], count: u32) {
    if count > top[0] {
        *top = [count, top[0]];
    } else if count > top[1] {
        top[1] = count;
    }
}

/// One kind's count over the sliding window.
#[derive(Debug, Clone)]
struct Window {
    /// The sub-window the latest record fell in (timestamp / sub-window length).
    slot: i64,
    /// Where its records are counted.
    clock: KindClock,
    counts: [u32; SLOTS],
    /// In a burst already reported: no new one until the count falls
    /// below half the burst level.
    bursting: bool,
}

impl Window {
    /// Counts `records` in the sub-window `slot`: a later one slides the
    /// window; an earlier one counts in the newest.
    fn add(&mut self, slot: i64, records: u32) {
        if slot > self.slot {
            // Sub-windows that slid out of the window are emptied.
            let gone = (slot - self.slot).min(SLOTS as i64);
            for s in 1..=gone {
                self.counts[(self.slot + s).rem_euclid(SLOTS as i64) as usize] = 0;
            }
            self.slot = slot;
        }
        let i = self.slot.rem_euclid(SLOTS as i64) as usize;
        self.counts[i] = self.counts[i].saturating_add(records);
    }
}

/// The detector's sliding counts per kind, bounded like [`News`].
#[derive(Debug, Clone)]
pub struct Bursts {
    windows: LruCache<u64, Window, BuildNoHashHasher<u64>>,
}

/// An LRU map of kinds. Kind ids are xxh3 hashes already: hashing them
/// again (SipHash, the default) is wasted work on every line (issue 11).
fn kinds_lru<V>() -> LruCache<u64, V, BuildNoHashHasher<u64>> {
    LruCache::with_hasher(NonZeroUsize::new(MAX_KINDS).expect("MAX_KINDS > 0"), BuildNoHashHasher::default())
}

impl Default for Bursts {
    fn default() -> Self {
        Self { windows: kinds_lru() }
    }
}

impl Bursts {
    /// Counts a record of `kind` logged at `timestamp_us` whose usual count
    /// per window is `usual`; returns the count if this record starts a
    /// burst.
    pub fn observe(&mut self, kind: u64, timestamp_us: i64, usual: u32) -> Option<u64> {
        let slot_us = i64::from(WINDOW_SECS) * 1_000_000 / SLOTS as i64;
        let slot = timestamp_us.div_euclid(slot_us);
        let w = self.windows.get_or_insert_mut(kind, || Window {
            slot,
            clock: KindClock::new(timestamp_us),
            counts: [0; SLOTS],
            bursting: false,
        });
        match w.clock.place(timestamp_us) {
            Placement::Held => return None,
            Placement::Latest(records) => w.add(slot, records),
            Placement::StartOver(times) => {
                (w.slot, w.counts, w.bursting) = (times[0].div_euclid(slot_us), [0; SLOTS], false);
                for t in times {
                    w.add(t.div_euclid(slot_us), 1);
                }
            }
        }
        let count: u64 = w.counts.iter().map(|&c| u64::from(c)).sum();
        let usual = u64::from(usual);
        let level = (usual * BURST_FACTOR).max(usual + BURST_EXCESS);
        if w.bursting {
            w.bursting = count * 2 >= level;
            None
        } else if count >= level {
            w.bursting = true;
            Some(count)
        } else {
            None
        }
    }
}

/// The id of a kind: a 64-bit hash of its terms, **sorted** (see the
/// module docs), each length-prefixed so no two term lists collide by
/// construction.
///
/// xxh3 of the bytes at once, which is the streaming digest of the same
/// bytes (a test checks): in the component, feeding the terms one `update`
/// at a time cost about 70 instructions a call, 5% of scoring a new line
/// (issue 11).
pub fn kind_id<S: AsRef<str>>(sorted_terms: &[S]) -> u64 {
    let len = sorted_terms.iter().map(|t| 4 + t.as_ref().len()).sum();
    // On the stack when they fit, as a typical line's do.
    let (mut stack, mut heap) = ([0u8; 512], Vec::new());
    let bytes = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap[..]
    };
    let mut at = 0;
    for t in sorted_terms {
        let t = t.as_ref().as_bytes();
        bytes[at..at + 4].copy_from_slice(&(t.len() as u32).to_le_bytes());
        bytes[at + 4..at + 4 + t.len()].copy_from_slice(t);
        at += 4 + t.len();
    }
    xxh3_64(bytes)
}

/// What a word the vocabulary lacks counts as in a kind (see the module docs).
pub const ANY: &str = "<*>";

/// Terms as kinds count them, in the order given. In a line whose words
/// say something went wrong (a warning or worse, read from the words
/// alone, as `features::severity` reads them, so that a line has one kind
/// whatever level its source gave it) and whose words that `vocab` knows
/// (or that are the tokenizer's masks, `<ip>`) outnumber those it lacks,
/// each word it lacks is [`ANY`]: a known failure with a variable part (a
/// brute force's user names). Otherwise every term stays as it is: a new
/// word in an informational line (a new user logging in, a new service)
/// is the news itself, and a line mostly of new words is news of its own.
/// Context terms (`@sshd`) always stay: another program is another kind.
pub fn kind_terms<'t, S: AsRef<str>>(vocab: &Vocabulary, terms: &'t [S]) -> Vec<&'t str> {
    counted(terms, masked(vocab, terms.iter().map(AsRef::as_ref)))
}

/// `terms` with those `unknown` marks as [`ANY`].
fn counted<S: AsRef<str>>(terms: &[S], unknown: Option<Vec<bool>>) -> Vec<&str> {
    let terms = terms.iter().map(AsRef::as_ref);
    match unknown {
        Some(unknown) => terms.zip(unknown).map(|(t, u)| if u { ANY } else { t }).collect(),
        None => terms.collect(),
    }
}

/// Which terms [`kind_terms`] counts as [`ANY`], in order; `None` when none.
fn masked<'t>(vocab: &Vocabulary, terms: impl Iterator<Item = &'t str> + Clone) -> Option<Vec<bool>> {
    // Most lines say nothing went wrong: settled without a vocabulary
    // lookup (a hash per term, on every line the verdict cache misses).
    if !terms.clone().any(|t| crate::features::word_severity(t).is_some_and(|s| s.level <= 4)) {
        return None;
    }
    // Context terms are never masked; the tokenizer's masks are known.
    let fixed_form = |t: &str| is_context_term(t) || (t.starts_with('<') && t.ends_with('>'));
    let unknown: Vec<bool> = terms.clone().map(|t| !fixed_form(t) && vocab.get(t).is_none()).collect();
    let variable = unknown.iter().filter(|&&u| u).count();
    let fixed = terms.clone().filter(|t| !is_context_term(t)).count() - variable;
    (variable > 0 && fixed > variable).then_some(unknown)
}

/// The kind of a line with these terms (in any order) under `vocab`:
/// [`kind_id`] of its [`kind_terms`], sorted. Terms given sorted with
/// nothing to mask (most lines) are hashed as they are.
pub fn kind_of<S: AsRef<str>>(vocab: &Vocabulary, terms: &[S]) -> u64 {
    let unknown = masked(vocab, terms.iter().map(AsRef::as_ref));
    if unknown.is_none() && terms.windows(2).all(|w| w[0].as_ref() <= w[1].as_ref()) {
        return kind_id(terms);
    }
    let mut counted = counted(terms, unknown);
    counted.sort_unstable();
    kind_id(&counted)
}

/// A kind as people read it, from its terms **in line order**: the message's
/// terms as [`kind_terms`] counts them, after its source
/// (`sshd: failed password for invalid user <*> from <ip>`).
pub fn template_text(vocab: &Vocabulary, ordered_terms: &[Cow<'_, str>]) -> String {
    let counted = kind_terms(vocab, ordered_terms);
    let source = counted.iter().find_map(|t| t.strip_prefix(crate::features::CONTEXT_PREFIX));
    let words = counted.iter().filter(|t| !is_context_term(t));
    let mut text = source.map(|s| format!("{s}: ")).unwrap_or_default();
    for (i, w) in words.enumerate() {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(w);
    }
    match text.char_indices().nth(MAX_TEMPLATE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// One kind already reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kind {
    /// Readable form, for summaries.
    pub template: String,
    /// Its terms, sorted, to recheck it under another model (empty when
    /// longer than [`MAX_TERM_BYTES`]).
    pub terms: Vec<String>,
    /// The own severity of the line first reported (to recheck it).
    pub priority: Option<u8>,
    /// When the first was logged, if it said.
    pub first_timestamp_us: Option<i64>,
    /// Anomalous lines of the kind so far.
    pub count: u64,
    /// The count at which the next summary is raised (10, 100, ...).
    pub next_summary: u64,
    /// The most severe level reported (0 emerg .. 7 debug), if known.
    pub worst_level: Option<u8>,
    /// The highest score reported.
    pub worst_score: f64,
}

/// An anomalous line, as the memory needs it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a, 'b> {
    /// Its kind ([`kind_id`]).
    pub kind: u64,
    /// Its terms, sorted.
    pub sorted_terms: &'a [Cow<'b, str>],
    /// Its own severity (from a header or field), if any.
    pub priority: Option<u8>,
    /// The severity the detector weighed (own or read from its words).
    pub level: Option<u8>,
    /// Its score.
    pub score: f64,
    /// When it was logged, if it said.
    pub timestamp_us: Option<i64>,
}

/// The kinds reported so far, least recently seen forgotten first.
#[derive(Debug, Clone)]
pub struct News {
    kinds: LruCache<u64, Kind, BuildNoHashHasher<u64>>,
    generation: Generation,
}

/// How far a memory of reported kinds has changed: a memory saved at one
/// generation is current while it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generation {
    /// Every change: each anomaly observed (a count), a restore, a clear.
    pub changes: u64,
    /// The changes a restart must not forget: a kind reported (new or
    /// worse), a repeat summary's next count, a restore, a clear.
    pub news: u64,
}

impl Generation {
    fn bump(&mut self, news: bool) {
        self.changes += 1;
        self.news += u64::from(news);
    }
}

impl Default for News {
    fn default() -> Self {
        Self { kinds: kinds_lru(), generation: Generation::default() }
    }
}

/// [`News::save`]'s bytes: JSON, kinds from least to most recently seen.
#[derive(Serialize, Deserialize)]
struct Saved {
    format: u32,
    model_version: u32,
    kinds: Vec<(u64, Kind)>,
}

impl News {
    /// Notes an anomalous line; `template` is called for a new kind only
    /// (it re-reads the line in order, which only new kinds need).
    pub fn observe(&mut self, seen: Seen<'_, '_>, template: impl FnOnce() -> String) -> (Report, Option<Repeat>) {
        let id = seen.kind;
        let Some(kind) = self.kinds.get_mut(&id) else {
            let bytes: usize = seen.sorted_terms.iter().map(|t| t.len()).sum();
            let terms = if bytes <= MAX_TERM_BYTES { seen.sorted_terms.iter().map(|t| t.to_string()).collect() } else { Vec::new() };
            let kind = Kind {
                template: template(),
                terms,
                priority: seen.priority,
                first_timestamp_us: seen.timestamp_us,
                count: 1,
                next_summary: 10,
                worst_level: seen.level,
                worst_score: seen.score,
            };
            self.kinds.put(id, kind);
            self.generation.bump(true);
            return (Report::New, None);
        };
        kind.count += 1;
        let more_severe = match (seen.level, kind.worst_level) {
            (Some(new), Some(old)) => new < old,
            (Some(_), None) => true,
            _ => false,
        };
        let much_higher = (1.0 - seen.score) * 10.0 < 1.0 - kind.worst_score;
        let report = if more_severe || much_higher {
            kind.worst_level = if more_severe { seen.level } else { kind.worst_level };
            kind.worst_score = kind.worst_score.max(seen.score);
            Report::Worse
        } else {
            Report::Counted
        };
        let repeat = (kind.count >= kind.next_summary).then(|| {
            kind.next_summary = kind.next_summary.saturating_mul(10);
            Repeat { template: kind.template.clone(), count: kind.count, first_timestamp_us: kind.first_timestamp_us }
        });
        self.generation.bump(report == Report::Worse || repeat.is_some());
        (report, repeat)
    }

    /// Changes so far: the memory's [`News::save`] bytes differ only where
    /// this does.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// Kinds remembered.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// True when no kind is remembered.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// A kind, if remembered.
    pub fn get(&self, kind: u64) -> Option<&Kind> {
        self.kinds.peek(&kind)
    }

    /// The memory as bytes (JSON), for [`News::restore`] after a restart.
    pub fn save(&self, model_version: u32) -> Vec<u8> {
        let kinds = self.kinds.iter().rev().map(|(id, k)| (*id, k.clone())).collect();
        serde_json::to_vec(&Saved { format: MEMORY_FORMAT, model_version, kinds }).unwrap_or_default()
    }

    /// Replaces the memory with saved bytes. Saved under `model_version`,
    /// every kind is kept; under another model only those for which
    /// `still_anomalous(sorted terms, own priority)` holds (a retrained
    /// model that knows a kind clears it), under the id `kind_of(terms)`
    /// gives them (its vocabulary decides which words are [`ANY`]).
    /// Returns the kinds kept.
    pub fn restore(
        &mut self,
        bytes: &[u8],
        model_version: u32,
        still_anomalous: impl Fn(&[Cow<'_, str>], Option<u8>) -> bool,
        kind_of: impl Fn(&[Cow<'_, str>]) -> u64,
    ) -> Result<usize, String> {
        let saved: Saved = serde_json::from_slice(bytes).map_err(|e| format!("not a saved memory of kinds: {e}"))?;
        if saved.format != MEMORY_FORMAT {
            return Err(format!("saved memory of kinds has format {}, this detector reads {MEMORY_FORMAT}", saved.format));
        }
        self.generation.bump(true);
        self.kinds.clear();
        for (id, kind) in saved.kinds {
            let terms: Vec<Cow<str>> = kind.terms.iter().map(|t| Cow::Borrowed(t.as_str())).collect();
            if saved.model_version == model_version {
                self.kinds.put(id, kind);
            } else if !terms.is_empty() && still_anomalous(&terms, kind.priority) {
                let id = kind_of(&terms);
                self.kinds.put(id, kind);
            }
        }
        Ok(self.kinds.len())
    }

    /// Forgets every kind.
    pub fn clear(&mut self) {
        self.generation.bump(true);
        self.kinds.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(ts: &[&str]) -> Vec<Cow<'static, str>> {
        let mut v: Vec<Cow<'static, str>> = ts.iter().map(|t| Cow::Owned((*t).to_owned())).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn kind_ids_are_the_streaming_digest_they_always_were() {
        // Kind ids are persisted (the memory of reported kinds, the model's
        // usual rates): the one-shot hash must give the ids the streaming
        // one gave, whatever the terms' lengths (xxh3 changes paths at 16,
        // 128 and 240 bytes).
        for n in 0..60 {
            let ts: Vec<String> = (0..n).map(|i| "törm".repeat(i % 7) + &i.to_string()).collect();
            let mut streaming = xxhash_rust::xxh3::Xxh3Default::new();
            for t in &ts {
                streaming.update(&(t.len() as u32).to_le_bytes());
                streaming.update(t.as_bytes());
            }
            assert_eq!(kind_id(&ts), streaming.digest(), "{n} terms");
        }
        // And one pinned value, so that a change of the hash itself shows.
        assert_eq!(kind_id(&["failed", "password"]), 12_065_944_433_255_017_670);
    }

    fn seen<'a>(t: &'a [Cow<'static, str>], level: Option<u8>, score: f64) -> Seen<'a, 'static> {
        Seen { kind: kind_id(t), sorted_terms: t, priority: level, level, score, timestamp_us: Some(1_000) }
    }

    #[test]
    fn first_is_new_then_counted_with_summaries_at_powers_of_ten() {
        let mut news = News::default();
        let t = terms(&["started", "docker", "@dockerd"]);
        let mut reports = Vec::new();
        let mut repeats = Vec::new();
        for _ in 0..1000 {
            let (r, rep) = news.observe(seen(&t, Some(6), 0.9999), || "dockerd: started docker".into());
            reports.push(r);
            repeats.extend(rep);
        }
        assert_eq!(reports[0], Report::New);
        assert!(reports[1..].iter().all(|r| *r == Report::Counted));
        assert_eq!(repeats.iter().map(|r| r.count).collect::<Vec<_>>(), [10, 100, 1000]);
        assert_eq!(repeats[0].template, "dockerd: started docker");
        assert_eq!(repeats[0].first_timestamp_us, Some(1_000));
    }

    #[test]
    fn worse_lines_alert_again() {
        let mut news = News::default();
        let t = terms(&["disk", "failing"]);
        assert_eq!(news.observe(seen(&t, Some(4), 0.999), String::new).0, Report::New);
        assert_eq!(news.observe(seen(&t, Some(4), 0.999), String::new).0, Report::Counted);
        assert_eq!(news.observe(seen(&t, Some(2), 0.999), String::new).0, Report::Worse);
        assert_eq!(news.observe(seen(&t, Some(3), 0.999), String::new).0, Report::Counted);
        assert_eq!(news.observe(seen(&t, Some(2), 0.99999), String::new).0, Report::Worse);
        // Another kind is news of its own.
        assert_eq!(news.observe(seen(&terms(&["disk"]), Some(4), 0.999), String::new).0, Report::New);
    }

    #[test]
    fn memory_is_bounded_and_survives_a_restart_unless_the_model_knows_the_kind() {
        let mut news = News::default();
        for i in 0..MAX_KINDS + 50 {
            let t = terms(&["kind", &i.to_string()]);
            news.observe(seen(&t, None, 0.999), || format!("kind {i}"));
        }
        assert_eq!(news.len(), MAX_KINDS);
        // The least recently seen went first.
        assert!(news.get(kind_id(&terms(&["kind", "0"]))).is_none());
        assert!(news.get(kind_id(&terms(&["kind", &(MAX_KINDS + 49).to_string()]))).is_some());
        let saved = news.save(7);
        let mut same = News::default();
        assert_eq!(same.restore(&saved, 7, |_, _| false, |_| unreachable!("same model, same ids")), Ok(MAX_KINDS));
        let mut retrained = News::default();
        let kept = retrained.restore(&saved, 8, |t, _| t.iter().any(|t| t.ends_with('7')), |t| kind_id(t)).unwrap();
        assert_eq!(kept, (50..MAX_KINDS + 50).filter(|i| i % 10 == 7).count());
        assert_eq!(retrained.observe(seen(&terms(&["kind", "107"]), None, 0.999), String::new).0, Report::Counted);
        assert_eq!(retrained.observe(seen(&terms(&["kind", "108"]), None, 0.999), String::new).0, Report::New);
        // Under another model, kinds take the ids its vocabulary gives them.
        let mut rekeyed = News::default();
        rekeyed.restore(&saved, 8, |_, _| true, |_| 42).unwrap();
        assert_eq!((rekeyed.len(), rekeyed.get(42).map(|k| k.count)), (1, Some(1)));
        assert!(News::default().restore(b"{\"format\":99,\"model_version\":1,\"kinds\":[]}", 1, |_, _| true, |_| 0).is_err());
        assert!(News::default().restore(b"\xff garbage", 1, |_, _| true, |_| 0).is_err());
        // Kinds in any script, with NUL and escapes, come back as they went
        // (the memory files of the filters are this).
        let mut any = News::default();
        let words = ["ошибка", "日本語", "🚀", "é\u{0}\u{1b}[31m", "\u{fffd}"];
        let t = terms(&words);
        any.observe(seen(&t, Some(3), 0.9999), || words.join(" "));
        let mut back = News::default();
        assert_eq!(back.restore(&any.save(1), 1, |_, _| false, |_| 0), Ok(1));
        let kind = back.get(kind_id(&t)).unwrap();
        assert_eq!((kind.template.as_str(), &kind.terms), (words.join(" ").as_str(), &t.iter().map(|w| w.to_string()).collect::<Vec<_>>()));
    }

    #[test]
    fn rates_are_the_second_busiest_minute() {
        let mut learner = RateLearner::default();
        let minute = 60_000_000;
        // Kind 1: 3 a minute, one minute of 50 (a burst in training).
        for m in 0..10 {
            for _ in 0..if m == 4 { 50 } else { 3 } {
                learner.observe(1, Some(m * minute));
            }
        }
        // Kind 2: once a minute; kind 3: no timestamps.
        (0..10).for_each(|m| learner.observe(2, Some(m * minute)));
        (0..100).for_each(|_| learner.observe(3, None));
        let rates = learner.finish();
        assert_eq!(rates.usual, [(1, 3)]);
        assert_eq!((rates.usual(1), rates.usual(2), rates.usual(3)), (3, 1, 1));
        assert!(rates.check().is_ok());
        assert!(Rates { usual: vec![(2, 3), (1, 3)], minutes: 60 }.check().is_err());
        // Rates from a few minutes say nothing (bursts are off); from half
        // an hour of minutes with lines, they do.
        let learned = |minutes: i64| {
            let mut learner = RateLearner::default();
            (0..minutes * 6).for_each(|i| learner.observe(1, Some(i * minute / 6)));
            let rates = learner.finish();
            (rates.minutes, rates.learned(), rates.usual(1))
        };
        assert_eq!(learned(2), (2, false, 6));
        // Minutes are counted once, however their lines come: out of order
        // across a minute's boundary, or twice over (two files of the same
        // hours).
        let mut learner = RateLearner::default();
        (0..40).for_each(|i| learner.observe(1, Some(minute + if i % 2 == 0 { -1_000 } else { 1_000 })));
        (0..2).for_each(|_| (0..20).for_each(|m| learner.observe(2, Some(m * minute))));
        assert_eq!(learner.finish().minutes, 20);
        // Two hosts three minutes apart, 20 lines a minute each: 40 a minute
        // arrive, and that is the usual rate (it was 1, each line a run of
        // its own). Read newest hour first, the other hour is another time.
        let two_hosts = |hours: &[i64]| {
            let mut learner = RateLearner::default();
            for &h in hours {
                for i in 0..60 * 20 {
                    let t = (h * 60 + i / 20) * minute + (i % 20) * 3_000_000;
                    learner.observe(1, Some(t));
                    learner.observe(1, Some(t - 3 * minute));
                }
            }
            learner.finish().usual(1)
        };
        assert_eq!(two_hosts(&[0]), 40);
        assert_eq!(two_hosts(&[5, 3, 1]), 40);
        assert_eq!(learned(i64::from(MIN_RATE_MINUTES)), (MIN_RATE_MINUTES, true, 6));

        // A retrain keeps the rates it continues from: per kind the higher.
        let old = Rates { usual: vec![(1, 3), (4, 9), (7, 2)], minutes: 600 };
        let new = Rates { usual: vec![(1, 5), (5, 2), (7, 2), (9, 4)], minutes: 5 };
        let merged = old.merged(&new);
        assert_eq!(merged, Rates { usual: vec![(1, 5), (4, 9), (5, 2), (7, 2), (9, 4)], minutes: 600 });
        assert!(merged.check().is_ok() && merged.learned() && !new.learned());
        // The same 24 minutes twice are not 48.
        let short = Rates { usual: vec![(1, 3)], minutes: 24 };
        assert!(!short.merged(&short).learned());
        assert_eq!(Rates::default().merged(&new), new);
        assert_eq!(old.merged(&Rates::default()), old);
    }

    #[test]
    fn one_burst_per_burst_over_a_sliding_minute() {
        let mut bursts = Bursts::default();
        let s = 1_000_000;
        // Usual 3 a minute: the level is max(30, 33) = 33.
        let mut raised = Vec::new();
        // 2 a second for 60 s, then quiet for two minutes, then again.
        for t in (0..120).chain(360..480) {
            raised.extend(bursts.observe(7, t * s / 2, 3).map(|c| (t, c)));
        }
        assert_eq!(raised, [(32, 33), (392, 33)], "one burst each time, when the count reached 33");
        // A steady usual rate never bursts, whatever its length.
        let mut quiet = Bursts::default();
        assert!((0..100_000).all(|t| quiet.observe(1, t * 20 * s, 3).is_none()));
        // Out-of-order records count in the newest sub-window, never panic.
        assert!((0..40).filter_map(|t| quiet.observe(2, (1000 - t) * s, 1)).count() == 1);
        // Two hosts three minutes apart at their usual 40 a minute: no
        // burst. Records from another time (a file read newest first, a
        // clock a day off) start the count over, and do not add to it.
        let mut hosts = Bursts::default();
        let two_hosts = |b: &mut Bursts, from: i64| {
            (from..from + 3600)
                .filter(|t| t % 3 == 0)
                .any(|t| b.observe(3, t * s, 40).is_some() || b.observe(3, (t - 180) * s, 40).is_some())
        };
        assert!(!two_hosts(&mut hosts, 0));
        let mut days = Bursts::default();
        assert!((0..2).all(|day| (0..3600).step_by(20).all(|t| days.observe(4, (86_400 * (1 - day) + t) * s, 3).is_none())));
    }

    #[test]
    fn records_from_another_time_count_as_they_arrive_until_many_in_a_row() {
        let s = 1_000_000;
        let mut clock = KindClock::new(1000 * s);
        // 600 s older counts with the latest; a microsecond more is held.
        assert_eq!(clock.place(400 * s), Placement::Latest(1));
        assert_eq!([clock.place(400 * s - 1), clock.place(0)], [Placement::Held, Placement::Held]);
        // A record of the latest time ends a run of strays, and they count.
        assert_eq!(clock.place(990 * s), Placement::Latest(3));
        assert_eq!(clock.latest_us, 1000 * s);
        // A run starts the count over once it holds 16 records over a
        // minute or more of their own time (a log of another time), or 32
        // however close: each is then counted at its own time.
        let placed: Vec<Placement> = (0..STRAYS_IN_A_ROW as i64).map(|i| clock.place(i * s)).collect();
        assert!(placed.iter().all(|p| *p == Placement::Held), "16 within 15 s: {placed:?}");
        assert_eq!(clock.place(59 * s), Placement::Held);
        let times: Vec<i64> = (0..STRAYS_IN_A_ROW as i64).chain([59, 60]).map(|t| t * s).collect();
        assert_eq!(clock.place(60 * s), Placement::StartOver(times));
        assert_eq!((clock.latest_us, clock.place(61 * s)), (60 * s, Placement::Latest(1)));
        let placed: Vec<Placement> = (0..MOST_HELD).map(|_| clock.place(-10_000 * s)).collect();
        assert!(matches!(placed.last(), Some(Placement::StartOver(t)) if t.len() == MOST_HELD), "{:?}", placed.last());

        // Files read newest first, a kind logged once a minute: each file
        // learns 1 a minute (the held run was counted in one minute: 16).
        let mut learner = RateLearner::default();
        for file in (0..3).rev() {
            (0..120).for_each(|m| learner.observe(1, Some((file * 120 + m) * 60 * s)));
        }
        assert_eq!(learner.finish().usual(1), 1);
        // Nor does the detector see a burst in another time's steady 25 a
        // minute (level 31 for a usual 1).
        let mut bursts = Bursts::default();
        bursts.observe(2, 10_000 * s, 1);
        assert!((0..600).all(|i| bursts.observe(2, i * 60 * s / 25, 1).is_none()));

        // Two hosts `skew` seconds apart, 20 lines a minute each, for an
        // hour: what training learns, and how many bursts the detector, with
        // that usual rate, raises on the next hour of the same traffic, in
        // which one of the hosts logs 600 more lines in a minute.
        let run = |skew: i64, burst: Option<usize>| {
            let traffic = |hour: i64, burst: Option<usize>| {
                (0..60 * 20).flat_map(move |i| {
                    let t = hour * 3600 * s + i * 3 * s;
                    let extra = if (600..620).contains(&i) { burst } else { None };
                    [t, t - skew * s].into_iter().enumerate().flat_map(move |(host, at)| {
                        let more = if extra == Some(host) { 30 } else { 0 };
                        (0..=more).map(move |j| at + j * s / 20)
                    })
                })
            };
            let mut learner = RateLearner::default();
            traffic(0, None).for_each(|t| learner.observe(1, Some(t)));
            let usual = learner.finish().usual(1);
            let mut bursts = Bursts::default();
            (usual, traffic(1, burst).filter_map(|t| bursts.observe(1, t, usual)).count())
        };
        // Within 10 minutes, or an hour apart, the two hosts are one stream
        // of 40 a minute, and either host's 600 lines are one burst. (Past
        // 10 minutes every line of the other host started the count over:
        // training learned no rate, and the burst was reported 20 times.)
        for skew in [180, 590, 630, 3600] {
            let runs = [run(skew, None), run(skew, Some(0)), run(skew, Some(1))];
            assert_eq!(runs, [(40, 0), (40, 1), (40, 1)], "{skew} s apart");
        }
    }

    fn vocab(known: &[&str]) -> Vocabulary {
        Vocabulary::new(known.iter().map(|t| (*t).to_owned()).collect(), vec![1.0; known.len()], 2.0)
    }

    #[test]
    fn templates_read_like_the_line() {
        let v = vocab(&["started", "docker", "é".repeat(500).as_str()]);
        let t: Vec<Cow<str>> = ["started", "docker", "<num>", "@dockerd", "cri"].map(Cow::Borrowed).to_vec();
        assert_eq!(template_text(&v, &t), "dockerd: started docker <num> cri", "informational: kept");
        let failed: Vec<Cow<str>> = ["failed", "docker", "<num>", "@dockerd", "cri"].map(Cow::Borrowed).to_vec();
        assert_eq!(template_text(&vocab(&["failed", "docker"]), &failed), "dockerd: failed docker <num> <*>");
        let new: Vec<Cow<str>> = ["failed", "containerd", "cri", "@dockerd"].map(Cow::Borrowed).to_vec();
        assert_eq!(template_text(&v, &new), "dockerd: failed containerd cri", "mostly new: kept");
        let long: Vec<Cow<str>> = vec![Cow::Owned("é".repeat(500))];
        assert_eq!(template_text(&v, &long).chars().count(), MAX_TEMPLATE_CHARS + 1);
    }

    /// A brute force's lines differ in a user name training never saw:
    /// they are one kind. Known words, masks and the program still tell
    /// kinds apart, and the order of terms does not matter.
    #[test]
    fn words_the_model_lacks_are_the_variable_part_of_a_kind() {
        let v = vocab(&["failed", "password", "for", "invalid", "user", "from", "root"]);
        fn line(name: &str) -> [&str; 9] {
            ["failed", "password", "for", "invalid", "user", name, "from", "<ip>", "@sshd"]
        }
        assert_eq!(kind_of(&v, &line("oracle")), kind_of(&v, &line("postgres")));
        assert_eq!(
            kind_of(&v, &line("oracle")),
            kind_of(&v, &["<ip>", "oracle", "@sshd", "user", "invalid", "from", "failed", "for", "password"])
        );
        assert_ne!(kind_of(&v, &line("oracle")), kind_of(&v, &line("root")), "a known word is part of the kind");
        assert_ne!(
            kind_of(&v, &line("oracle")),
            kind_of(&v, &line("oracle").map(|t| if t == "@sshd" { "@sudo" } else { t })),
            "so is the program"
        );
        assert_ne!(
            kind_of(&v, &["failed", "user", "oracle", "<ip>"]),
            kind_of(&v, &["failed", "user", "oracle", "<num>"]),
            "and the masks"
        );
        assert_ne!(kind_of(&v, &["failed", "user", "a", "b"]), kind_of(&v, &["failed", "user", "from", "a"]), "and how many words");
        // A line mostly of new words is news of its own.
        assert_ne!(kind_of(&v, &["failed", "disk", "on", "fire"]), kind_of(&v, &["failed", "cat", "on", "keyboard"]));
        assert_ne!(kind_of(&v, &["failed", "oracle"]), kind_of(&v, &["failed", "postgres"]), "half is not most");
        // In an informational line a new word is the news: a new user.
        fn accepted(name: &str) -> [&str; 7] {
            ["accepted", "password", "for", name, "from", "<ip>", "@sshd"]
        }
        let v = vocab(&["accepted", "password", "for", "from"]);
        assert_ne!(kind_of(&v, &accepted("mallory")), kind_of(&v, &accepted("trudy")));
        // With every word known, the kind is the terms' own id.
        let known = terms(&["failed", "password", "root"]);
        assert_eq!(kind_of(&v, &known), kind_id(&known));
        assert_eq!(kind_of(&v, &["root", "password", "failed"]), kind_id(&known), "in any order");
    }
}
