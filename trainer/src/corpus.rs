//! The training corpus, kept on disk so that memory does not grow with the
//! number of lines.
//!
//! Pass 1 ([`CorpusBuilder`]): records arrive in blocks, are tokenized in
//! parallel (rayon; order preserved, so the result does not depend on the
//! number of threads), their terms counted for document frequencies and
//! spilled to chunk files of [`CHUNK_LINES`] lines. Pass 2
//! ([`TermCorpus::featurize`]): once the vocabulary is known, each chunk
//! becomes TF-IDF vectors, deduplicated with counts (logs repeat a lot), in
//! a binary chunk file. Training and calibration then stream those chunks.
//!
//! Chunks live in a scratch directory under `DATA_DIR/tmp/`, removed when the
//! run ends, fails or is interrupted; scratch directories of runs that were
//! killed (their process is gone) are removed by the next run.

use logarithm_detector::LogRecord;
use logarithm_detector::features::{self, Vocabulary};
use logarithm_detector::kinds::{self, RateLearner, Rates};
use logarithm_detector::tokenizer::Tokenizer;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Records tokenized together.
pub const BLOCK: usize = 8192;
/// Lines per chunk file.
pub const CHUNK_LINES: u64 = 65_536;
/// Longest term counted for the vocabulary, bytes. A longer one (a blob,
/// a 64 KiB line without separators) is still in the spilled lines, so it
/// counts as unseen like at scoring time, but is never a vocabulary
/// candidate, and never costs the document-frequency table its size.
pub const MAX_TERM_BYTES: usize = 256;
/// What the document-frequency table may hold, bytes (estimated with
/// [`DF_ENTRY_OVERHEAD`]): past it the rarest terms are dropped, as past
/// its cap in terms, so training memory is bounded in bytes, not only in
/// count (issue 10).
pub const DF_MAX_BYTES: usize = 256 << 20;
/// Bytes an entry costs besides its text: the `String` and count in the
/// table, the table's own slot and control byte, the allocator's header.
const DF_ENTRY_OVERHEAD: usize = 64;

/// Separates terms in a spilled line (the tokenizer never emits it).
const TERM_SEP: char = '\u{1f}';

/// Errors are plain messages naming what failed and where.
pub type Result<T> = std::result::Result<T, String>;

fn io_err(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

/// A scratch directory for one training run, under `root/tmp/`; stale ones
/// left by killed runs are removed first. `tmp/` must be a directory of
/// ours, not a symbolic link: whoever can write the data directory (the
/// monitor, which reads untrusted input) could otherwise point the
/// scratch files of a root trainer anywhere.
pub fn scratch_dir(root: &Path) -> Result<tempfile::TempDir> {
    use std::os::unix::fs::MetadataExt;
    let tmp = root.join("tmp");
    fs::create_dir_all(&tmp).map_err(|e| io_err("create", &tmp, e))?;
    let meta = fs::symlink_metadata(&tmp).map_err(|e| io_err("inspect", &tmp, e))?;
    let ours = meta.uid() == logarithm::datadir::effective_uid();
    if meta.file_type().is_symlink() || !meta.is_dir() || !ours {
        return Err(format!(
            "{} is not a directory of this user's (a symbolic link, or another owner's); remove it, the trainer makes it again",
            tmp.display()
        ));
    }
    if let Ok(entries) = fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix("train-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && pid != std::process::id()
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                tracing::info!("removing the scratch files of an interrupted run: {}", entry.path().display());
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("train-{}-", std::process::id()))
        .tempdir_in(&tmp)
        .map_err(|e| io_err("create a scratch directory in", &tmp, e))
}

/// Pass 1: collects records into term chunks and document frequencies.
pub struct CorpusBuilder<'a> {
    tokenizer: Tokenizer,
    dir: &'a Path,
    block: Vec<LogRecord>,
    writer: Option<(PathBuf, BufWriter<File>)>,
    chunk_lines: u64,
    chunks: Vec<(PathBuf, u64)>,
    df: HashMap<String, u64>,
    df_cap: usize,
    /// The table's estimated size ([`DF_ENTRY_OVERHEAD`] per entry plus the text).
    df_bytes: usize,
    df_max_bytes: usize,
    lines: u64,
    pruned: bool,
}

/// Pass 1's result: term chunks, line count and document frequencies.
pub struct TermCorpus {
    chunks: Vec<(PathBuf, u64)>,
    /// Lines collected.
    pub lines: u64,
    /// Document frequency of every term kept (see [`CorpusBuilder::new`]).
    pub df: HashMap<String, u64>,
    /// The document-frequency table overflowed and rare terms were pruned:
    /// frequencies of rare terms are approximate.
    pub pruned: bool,
}

impl<'a> CorpusBuilder<'a> {
    /// A builder spilling into `dir`. The document-frequency table keeps at
    /// most `max(200_000, 20 × vocab_size)` terms and [`DF_MAX_BYTES`];
    /// beyond either the rarest are dropped (they could not enter the
    /// vocabulary anyway).
    pub fn new(tokenizer: Tokenizer, dir: &'a Path, vocab_size: usize) -> Self {
        Self {
            tokenizer,
            dir,
            block: Vec::with_capacity(BLOCK),
            writer: None,
            chunk_lines: 0,
            chunks: Vec::new(),
            df: HashMap::new(),
            df_cap: (20 * vocab_size).max(200_000),
            df_bytes: 0,
            df_max_bytes: DF_MAX_BYTES,
            lines: 0,
            pruned: false,
        }
    }

    /// Lines collected so far.
    pub fn lines(&self) -> u64 {
        self.lines + self.block.len() as u64
    }

    /// Adds a record.
    pub fn push(&mut self, record: LogRecord) -> Result<()> {
        self.block.push(record);
        if self.block.len() >= BLOCK {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        let tokenizer = self.tokenizer;
        let terms: Vec<(Option<u8>, Option<i64>, Vec<String>)> = self
            .block
            .par_iter()
            .map(|r| {
                let mut t = Vec::new();
                features::record_terms(&tokenizer, r, &mut t);
                (r.priority, r.timestamp_us, t.into_iter().map(Cow::into_owned).collect())
            })
            .collect();
        self.block.clear();
        for (priority, timestamp_us, mut record_terms) in terms {
            if self.writer.is_none() {
                let path = self.dir.join(format!("terms-{:05}", self.chunks.len()));
                let file = create_scratch(&path)?;
                self.writer = Some((path, BufWriter::with_capacity(256 * 1024, file)));
            }
            let (path, writer) = self.writer.as_mut().unwrap();
            // The record's own severity (`-` for none) and its timestamp
            // (µs, none when it has none) first, then its terms.
            let mut line = String::new();
            line.push(priority.map_or('-', |p| char::from(b'0' + p.min(7))));
            if let Some(ts) = timestamp_us {
                line.push_str(&ts.to_string());
            }
            for t in &record_terms {
                line.push(TERM_SEP);
                line.extend(t.chars().map(|c| if c == TERM_SEP || c == '\n' { ' ' } else { c }));
            }
            line.push('\n');
            writer.write_all(line.as_bytes()).map_err(|e| io_err("write", path, e))?;
            record_terms.sort_unstable();
            record_terms.dedup();
            for t in record_terms.into_iter().filter(|t| t.len() <= MAX_TERM_BYTES) {
                let bytes = t.len() + DF_ENTRY_OVERHEAD;
                let count = self.df.entry(t).or_insert_with(|| {
                    self.df_bytes += bytes;
                    0
                });
                *count += 1;
            }
            // Checked per record: a block of long lines could otherwise
            // overshoot the bound many times over before the block ends.
            if self.df.len() > self.df_cap || self.df_bytes > self.df_max_bytes {
                self.prune();
            }
            self.lines += 1;
            self.chunk_lines += 1;
            if self.chunk_lines >= CHUNK_LINES {
                self.close_chunk()?;
            }
        }
        Ok(())
    }

    fn close_chunk(&mut self) -> Result<()> {
        if let Some((path, mut writer)) = self.writer.take() {
            writer.flush().map_err(|e| io_err("write", &path, e))?;
            self.chunks.push((path, self.chunk_lines));
        }
        self.chunk_lines = 0;
        Ok(())
    }

    /// Drops the rarest terms until the table is at half its caps (in
    /// terms and in bytes).
    fn prune(&mut self) {
        while self.df.len() > self.df_cap / 2 || self.df_bytes > self.df_max_bytes / 2 {
            // The rarest count left, whatever it is (each round drops at least one term).
            let floor = self.df.values().copied().min().unwrap_or(u64::MAX);
            self.df.retain(|_, c| *c > floor);
            self.df_bytes = self.df.keys().map(|t| t.len() + DF_ENTRY_OVERHEAD).sum();
        }
        if !self.pruned {
            tracing::warn!(
                "more than {} distinct terms or {} MiB of them: the counts of rare terms are approximate",
                self.df_cap,
                self.df_max_bytes >> 20
            );
        }
        self.pruned = true;
    }

    /// Ends pass 1.
    pub fn finish(mut self) -> Result<TermCorpus> {
        self.flush_block()?;
        self.close_chunk()?;
        Ok(TermCorpus { chunks: self.chunks, lines: self.lines, df: self.df, pruned: self.pruned })
    }
}

/// A distinct training vector and how many lines had it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Known terms, `(index, weight)`, indices ascending.
    pub known: Vec<(u32, f32)>,
    /// Unseen share of the lines (`Features::unseen_share`).
    pub unseen_sq: f32,
    /// The lines' severity, when known or inferred (`features::severity`).
    pub priority: Option<u8>,
    /// Lines with this vector.
    pub count: u64,
}

/// Pass 2's result: chunks of distinct feature vectors with counts.
pub struct FeatureCorpus {
    chunks: Vec<(PathBuf, u64)>,
    /// Lines in all.
    pub lines: u64,
    /// Distinct vectors in all (summed over chunks).
    pub distinct: u64,
    /// How often each kind of line occurred (for bursts).
    pub rates: Rates,
}

/// What makes two training lines the same sample: their known terms
/// (weights as bits), unseen share (bits) and severity.
type SampleKey = (Vec<(u32, u32)>, u32, Option<u8>);

impl TermCorpus {
    /// Pass 2: features with `vocab`, deduplicated per chunk, and how often
    /// each kind of line occurred (its kind needs the vocabulary: a word
    /// outside it is the kind's variable part, [`kinds::kind_of`]). The
    /// term chunks are removed as they are converted.
    pub fn featurize(self, tokenizer_vocab: &Vocabulary) -> Result<FeatureCorpus> {
        let mut chunks = Vec::with_capacity(self.chunks.len());
        let mut distinct = 0;
        let mut rates = RateLearner::default();
        for (i, (path, lines)) in self.chunks.iter().enumerate() {
            let file = File::open(path).map_err(|e| io_err("open", path, e))?;
            let mut reader = BufReader::new(file).lines();
            let mut index: HashMap<SampleKey, usize> = HashMap::new();
            let mut samples: Vec<Sample> = Vec::new();
            // Blocks of lines featurized in parallel, deduplicated in order.
            loop {
                let texts: Vec<String> =
                    reader.by_ref().take(BLOCK).collect::<std::io::Result<_>>().map_err(|e| io_err("read", path, e))?;
                if texts.is_empty() {
                    break;
                }
                let vectors: Vec<(Sample, u64, Option<i64>)> = texts
                    .par_iter()
                    .map(|text| {
                        let mut fields = text.split(TERM_SEP);
                        let head = fields.next().unwrap_or_default();
                        let own = head.get(..1).and_then(|p| p.parse::<u8>().ok());
                        let timestamp_us = head.get(1..).and_then(|t| t.parse::<i64>().ok());
                        let mut terms: Vec<Cow<str>> = fields.filter(|t| !t.is_empty()).map(Cow::Borrowed).collect();
                        let kind = kinds::kind_of(tokenizer_vocab, &terms);
                        let priority = features::severity(own, &terms).map(|s| s.level);
                        let f = features::featurize(tokenizer_vocab, &mut terms);
                        let unseen_sq = f.unseen_share();
                        (Sample { known: f.known, unseen_sq, priority, count: 1 }, kind, timestamp_us)
                    })
                    .collect();
                for (sample, kind, timestamp_us) in vectors {
                    // Counted per minute, in the lines' order.
                    rates.observe(kind, timestamp_us);
                    let key = (sample.known.iter().map(|&(i, w)| (i, w.to_bits())).collect(), sample.unseen_sq.to_bits(), sample.priority);
                    match index.get(&key) {
                        Some(&at) => samples[at].count += 1,
                        None => {
                            index.insert(key, samples.len());
                            samples.push(sample);
                        }
                    }
                }
            }
            distinct += samples.len() as u64;
            let out = path.with_file_name(format!("features-{i:05}"));
            write_samples(&out, &samples)?;
            fs::remove_file(path).map_err(|e| io_err("remove", path, e))?;
            chunks.push((out, *lines));
        }
        Ok(FeatureCorpus { chunks, lines: self.lines, distinct, rates: rates.finish() })
    }
}

/// A new scratch file: never an existing one, nor a symbolic link.
fn create_scratch(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(path).map_err(|e| io_err("create", path, e))
}

fn write_samples(path: &Path, samples: &[Sample]) -> Result<()> {
    let file = create_scratch(path)?;
    let mut w = BufWriter::with_capacity(256 * 1024, file);
    let mut put = |bytes: &[u8]| w.write_all(bytes).map_err(|e| io_err("write", path, e));
    for s in samples {
        put(&s.count.to_le_bytes())?;
        put(&s.unseen_sq.to_le_bytes())?;
        put(&[s.priority.map_or(u8::MAX, |p| p)])?;
        put(&(s.known.len() as u32).to_le_bytes())?;
        for &(i, x) in &s.known {
            put(&i.to_le_bytes())?;
            put(&x.to_le_bytes())?;
        }
    }
    w.flush().map_err(|e| io_err("write", path, e))
}

impl FeatureCorpus {
    /// Number of chunks.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Lines in chunk `i`.
    pub fn chunk_lines(&self, i: usize) -> u64 {
        self.chunks[i].1
    }

    /// Loads chunk `i`.
    pub fn load(&self, i: usize) -> Result<Vec<Sample>> {
        let path = &self.chunks[i].0;
        // fs::read sizes the buffer from the file: one allocation per load.
        let bytes = fs::read(path).map_err(|e| io_err("read", path, e))?;
        let mut at = 0;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = bytes.get(at..at + n).ok_or_else(|| format!("scratch chunk {} is truncated", path.display()))?;
            at += n;
            Ok(s)
        };
        let mut samples = Vec::new();
        while let Ok(count) = take(8) {
            let count = u64::from_le_bytes(count.try_into().unwrap());
            let unseen_sq = f32::from_le_bytes(take(4)?.try_into().unwrap());
            let priority = Some(take(1)?[0]).filter(|&p| p != u8::MAX);
            let nnz = u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize;
            let mut known = Vec::with_capacity(nnz);
            for _ in 0..nnz {
                let i = u32::from_le_bytes(take(4)?.try_into().unwrap());
                let x = f32::from_le_bytes(take(4)?.try_into().unwrap());
                known.push((i, x));
            }
            samples.push(Sample { known, unseen_sq, priority, count });
        }
        Ok(samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_counts_and_round_trips_features() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = CorpusBuilder::new(Tokenizer::default(), dir.path(), 100);
        for i in 0..(BLOCK as u64 * 2 + 10) {
            b.push(LogRecord::from_message(format!("job {} done", i % 3))).unwrap();
        }
        b.push(LogRecord::from_message("")).unwrap();
        let corpus = b.finish().unwrap();
        assert_eq!(corpus.lines, BLOCK as u64 * 2 + 11);
        assert_eq!(corpus.df["job"], BLOCK as u64 * 2 + 10);
        let vocab = Vocabulary::new(vec!["job".into(), "done".into()], vec![1.0, 1.0], 2.0);
        let features = corpus.featurize(&vocab).unwrap();
        let samples = features.load(0).unwrap();
        // "job <num> done" and the empty line: two distinct vectors.
        assert_eq!(samples.len(), 2);
        assert_eq!(samples.iter().map(|s| s.count).sum::<u64>(), features.lines);
        assert!(!dir.path().join("terms-00000").exists());
    }

    /// Issue 10: training memory is bounded in bytes: overlong terms are
    /// not counted, and the table of long distinct terms is pruned by size,
    /// keeping the frequent ones.
    #[test]
    fn the_document_frequency_table_is_bounded_in_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = CorpusBuilder::new(Tokenizer::default(), dir.path(), 100);
        b.df_max_bytes = 64 << 10;
        let blob: String = "q".repeat(MAX_TERM_BYTES + 1);
        for i in 0..20_000u32 {
            // A distinct 200-byte word per line (letters: not masked), a
            // common word, and a blob too long to be a term of the vocabulary.
            let word: String = format!("{i:08}").bytes().map(|d| char::from(b'k' + d - b'0')).collect::<String>().repeat(25);
            b.push(LogRecord::from_message(format!("common {word} {blob}"))).unwrap();
            assert!(b.df_bytes <= b.df_max_bytes + 2 * (MAX_TERM_BYTES + DF_ENTRY_OVERHEAD), "{} bytes", b.df_bytes);
        }
        let corpus = b.finish().unwrap();
        assert!(corpus.pruned);
        assert_eq!(corpus.df["common"], 20_000, "frequent terms survive pruning");
        assert!(!corpus.df.contains_key(&blob), "an overlong term is not counted");
        assert!(corpus.df.len() < 1_000, "{} terms kept", corpus.df.len());
    }

    #[test]
    fn stale_scratch_dirs_of_dead_runs_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let stale = root.path().join("tmp/train-999999999-abc");
        fs::create_dir_all(&stale).unwrap();
        fs::write(stale.join("terms-00000"), "x").unwrap();
        let live = scratch_dir(root.path()).unwrap();
        assert!(!stale.exists());
        assert!(live.path().exists());
    }
}
