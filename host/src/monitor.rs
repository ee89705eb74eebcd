//! The monitor loop: lines from all sources are filtered, batched, scored
//! through the component and printed, until the sources end (`--once`, or
//! stdin closes) or a stop is requested (SIGINT/SIGTERM), in which case the
//! batch in flight is finished and flushed first.
//!
//! A batch is acknowledged (its positions checkpointed) only after its
//! verdicts were written and flushed, so a crash never loses a line and
//! repeats at most the batch it interrupted.

use crate::checkpoint::{CheckpointWriter, Position};
use crate::datadir::DataDir;
use crate::engine::ComponentDetector;
use crate::output::Printer;
use crate::sources::{self, Chunk, Line, ReadOptions, SourceResult, SourceSpec};
use anyhow::{Context, Result};
use logarithm_detector::LogRecord;
use logarithm_detector::memory::{Generation, MemoryFile};
use regex::Regex;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a partial batch waits before looking for more lines.
const FILL_POLL: Duration = Duration::from_millis(1);

/// A partial batch waits at most this long for more lines before it is scored.
const MAX_BATCH_DELAY: Duration = Duration::from_millis(250);

/// How often a follower or a filter looks for a newly installed model.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// How a follower (and `logarithm filter`) picks up a newly installed
/// model while it runs (issue 13): between batches, so no line is lost or
/// scored twice.
#[derive(Debug, Clone)]
pub struct Reload {
    /// Where the models are.
    pub data_dir: DataDir,
    /// The passphrase they are sealed with.
    pub passphrase: String,
    /// A threshold given on the command line, applied to every model loaded.
    pub threshold: Option<f64>,
    /// The version loaded now.
    pub version: u32,
    /// When to look: every 2 s, or now (SIGHUP), even for the same version.
    pub recheck: Recheck,
    /// An older version refused (no audited rollback to it), said once.
    pub refused: Option<u32>,
    /// The configuration file, re-read at SIGHUP for its threshold; `None`
    /// when there is none or `-T` overrides it.
    pub live_config: Option<crate::config::Config>,
    /// A version that failed to load, not tried again until another is current.
    failed: Option<u32>,
    /// Why the current model could not be told, said once until it changes.
    unreadable: Option<String>,
}

impl Reload {
    /// Reloading the models of `data_dir` into a detector scoring
    /// `version` now; SIGHUP sets `now`.
    pub fn new(
        data_dir: DataDir,
        passphrase: String,
        threshold: Option<f64>,
        version: u32,
        now: Arc<AtomicBool>,
        live_config: Option<crate::config::Config>,
    ) -> Self {
        Self {
            data_dir,
            passphrase,
            threshold,
            version,
            recheck: Recheck::new(now),
            refused: None,
            live_config,
            failed: None,
            unreadable: None,
        }
    }

    /// Whether it is time to look for a new model (every 2 s, or SIGHUP).
    pub fn due(&mut self) -> bool {
        self.recheck.due()
    }
}

/// When to look for a model again: every [`RELOAD_CHECK`], or at once
/// after SIGHUP set `now`.
#[derive(Debug, Clone)]
pub struct Recheck {
    /// Set by SIGHUP; cleared by whoever acts on it.
    pub now: Arc<AtomicBool>,
    /// When the model was last looked for.
    checked: Instant,
}

impl Recheck {
    /// Looking first in [`RELOAD_CHECK`], or when `now` is set.
    pub fn new(now: Arc<AtomicBool>) -> Self {
        Self { now, checked: Instant::now() }
    }

    /// Whether it is time to look.
    pub fn due(&mut self) -> bool {
        let due = self.checked.elapsed() >= RELOAD_CHECK || self.now.load(Ordering::Relaxed);
        if due {
            self.checked = Instant::now();
        }
        due
    }
}

/// What to monitor and how.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Sources to read.
    pub sources: Vec<SourceSpec>,
    /// How to read them.
    pub read: ReadOptions,
    /// Keep only lines matching this (on the raw line).
    pub filter: Option<Regex>,
    /// Print every record, not only anomalies.
    pub all: bool,
    /// Records per call into the component.
    pub batch_size: usize,
    /// Where to save checkpoints after each batch (following only).
    pub checkpoint_file: Option<PathBuf>,
    /// Load newly installed models while following.
    pub reload: Option<Reload>,
    /// Where the detector's memory of the kinds of anomalies it reported is
    /// kept across restarts (following only), so that a restart does not
    /// alert again on kinds already reported (issue 15).
    pub memory_file: Option<PathBuf>,
}

/// The file the memory of reported kinds is kept in, in the data directory.
pub fn memory_path_in(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("reported-kinds.json")
}

/// Restores the memory of reported kinds from `file` into `detector`, at
/// `generation` ([`MemoryFile::restore`]: one that cannot be read or
/// restored is set aside with a warning, and news is then reported again,
/// never lost). The monitor and `logarithm filter --memory-file` alike.
pub(crate) fn restore_memory(detector: &mut ComponentDetector, file: &mut MemoryFile, generation: Generation) {
    match file.restore(|bytes| detector.restore_memory(bytes).map(|kept| kept as usize)) {
        Ok(kept) => tracing::debug!("{kept} kinds of anomalies already reported restored from {}", file.path().display()),
        Err(e) => tracing::warn!("{e:#}"),
    }
    file.restored(generation);
}

/// Saves the memory of reported kinds at `generation` to `file` when it
/// changed ([`MemoryFile`] says when), or at the `last` chance (exit); a
/// failure is logged once, never fatal (it costs repeated alerts after a
/// restart).
pub(crate) fn persist_memory(detector: &mut ComponentDetector, file: &mut MemoryFile, generation: Generation, last: bool) {
    if let Some(problem) = file.persist(generation, last, || detector.save_memory().map_err(|e| format!("{e:#}"))) {
        tracing::warn!("{problem}");
    }
}

impl MonitorStats {
    /// How far the memory of reported kinds changed: it changes with each
    /// anomaly, and has news with each alert and repeat summary.
    fn generation(&self) -> Generation {
        Generation { changes: self.anomalies, news: self.alerts + self.repeats }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Lines read from all sources.
    pub lines: u64,
    /// Lines dropped by the filter.
    pub filtered: u64,
    /// Records scored.
    pub scored: u64,
    /// Records found anomalous.
    pub anomalies: u64,
    /// Anomalies that raised an alert (the first of their kind, or worse);
    /// the others were counted against an earlier alert.
    pub alerts: u64,
    /// Summaries of kinds that keep happening.
    pub repeats: u64,
    /// Bursts: kinds logged far faster than in training.
    pub bursts: u64,
    /// Problems with sources (unreadable or missing paths, failed readers).
    pub problems: Vec<String>,
}

/// The lines received since the last flush: those to score, and the
/// positions of those the filter dropped (acknowledged with the batch).
///
/// Lines stay in the chunks they arrived in: moving each line (272 bytes)
/// into a batch of its own was a tenth of the scoring thread's time, which
/// bounds throughput (issue 11).
struct Pending {
    /// Never empty chunks, in the order read.
    chunks: Vec<Chunk>,
    skipped: Vec<Position>,
    since: Instant,
}

impl Pending {
    fn new() -> Self {
        Self { chunks: Vec::new(), skipped: Vec::new(), since: Instant::now() }
    }

    /// Lines to score (a batch is a few chunks: counted, not kept).
    fn len(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.skipped.is_empty()
    }

    fn lines(&self) -> impl DoubleEndedIterator<Item = &Line> {
        self.chunks.iter().flatten()
    }

    /// Takes lines from the front of `chunk` until `batch_size` lines are
    /// waiting to be scored, and returns the rest, for the next batch. Of
    /// a line the filter drops, only the position is kept. Lines are
    /// counted as they are taken.
    fn fill(&mut self, mut chunk: Chunk, batch_size: usize, filter: Option<&Regex>, stats: &mut MonitorStats) -> Chunk {
        if self.is_empty() {
            self.since = Instant::now();
        }
        let room = batch_size.saturating_sub(self.len());
        let (mut end, mut kept, mut dropped) = (chunk.len(), 0, Vec::new());
        for (i, line) in chunk.iter().enumerate() {
            if kept == room {
                end = i;
                break;
            }
            if filter.is_some_and(|re| !re.is_match(&line.raw)) {
                dropped.push(i);
            } else {
                kept += 1;
            }
        }
        let rest = chunk.split_off(end);
        stats.lines += end as u64;
        chunk.iter().for_each(|line| crate::metrics::count(|m| m.line(&line.origin)));
        if !dropped.is_empty() {
            stats.filtered += dropped.len() as u64;
            let (mut index, mut dropped) = (0, dropped.into_iter().peekable());
            let filtered = chunk.extract_if(.., |_| {
                index += 1;
                dropped.next_if_eq(&(index - 1)).is_some()
            });
            self.skipped.extend(filtered.map(|line| line.position));
        }
        if !chunk.is_empty() {
            self.chunks.push(chunk);
        }
        rest
    }
}

/// Frees spent batches on a thread of its own. The lines were allocated by
/// the readers' threads; freeing them on the scoring thread (glibc takes
/// the readers' arena locks, and consolidates) was another tenth of its
/// time (issue 11). Bounded: a dropper that falls behind slows the
/// monitor rather than holds memory.
struct Dropper(Option<std::sync::mpsc::SyncSender<Vec<Chunk>>>);

impl Dropper {
    fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Chunk>>(4);
        let spawned = std::thread::Builder::new().name("drop lines".into()).spawn(move || rx.into_iter().for_each(drop));
        // Without the thread, batches are freed where they are spent.
        Self(spawned.ok().map(|_| tx))
    }

    fn drop_later(&self, chunks: Vec<Chunk>) {
        if let Some(tx) = &self.0 {
            // A dropper gone (it cannot panic) hands them back: freed here.
            let _ = tx.send(chunks);
        }
    }
}

/// Runs the monitor until the sources end or `stop` is set.
pub fn run<W: Write>(
    detector: &mut ComponentDetector,
    mut threshold: f64,
    config: &MonitorConfig,
    printer: &mut Printer<W>,
    stop: &Arc<AtomicBool>,
) -> Result<MonitorStats> {
    let batch_size = config.batch_size.max(1);
    let (tx, rx) = sources::channel(batch_size * 4);
    detector.interrupt_on(stop.clone());
    let mut handles = sources::spawn(&config.sources, &config.read, &tx, stop);
    drop(tx);
    let mut checkpoints = config.checkpoint_file.clone().map(|path| CheckpointWriter::new(path, (*config.read.checkpoints).clone()));
    let mut stats = MonitorStats::default();
    let mut pending = Pending::new();
    let dropper = Dropper::new();
    printer.header()?;
    let mut reload = config.reload.clone();
    let mut memory = config.memory_file.clone().map(MemoryFile::new);
    if let Some(file) = &mut memory {
        restore_memory(detector, file, stats.generation());
    }
    // How many of the sources opened at their end are checkpointed.
    let mut opened_seen = 0;
    // Whether the checkpoints could not be saved: said once until they are again.
    let mut unsaved = false;
    // Under systemd (Type=notify): ready once the readers run, the
    // watchdog fed from this loop (so a stuck loop is restarted), stopping
    // at the end. Without NOTIFY_SOCKET these do nothing.
    let watchdog = config.read.follow.then(sd_notify::watchdog_enabled).flatten().map(|every| every / 2);
    let mut fed = Instant::now();
    if config.read.follow {
        notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&match config.sources.len() {
                1 => "following 1 source".to_owned(),
                n => format!("following {n} sources"),
            }),
        ]);
    }
    let mut flush = |pending: &mut Pending, stats: &mut MonitorStats, detector: &mut ComponentDetector, threshold: f64| -> Result<()> {
        if let Some(first) = pending.chunks.first().and_then(|c| c.first()) {
            // Lines a bug kept from parsing are passed on unscored, with why.
            let (count, origin, line_no) = (pending.len(), first.origin.clone(), first.line_no);
            let records: Vec<&LogRecord> = pending.lines().filter(|l| l.error.is_none()).map(|l| &l.record).collect();
            // A record the guest fails on is passed on unscored, with why (issue 10).
            let verdicts = detector
                .score_contained(&records)
                .with_context(|| format!("{count} records from {origin} line {line_no} on were not scored"))?;
            let mut verdicts = verdicts.into_iter();
            for line in pending.chunks.iter_mut().flatten() {
                let verdict =
                    line.error.is_none().then(|| verdicts.next()).flatten().and_then(|v| v.map_err(|e| line.error = Some(e)).ok());
                match verdict.as_ref() {
                    Some(verdict) => {
                        stats.scored += 1;
                        crate::metrics::count(|m| m.scored(verdict.anomalous, verdict.burst.is_some()));
                        crate::alert::send(line, verdict);
                        stats.anomalies += u64::from(verdict.anomalous);
                        stats.alerts += u64::from(verdict.reported());
                        stats.repeats += u64::from(verdict.repeat.is_some());
                        stats.bursts += u64::from(verdict.burst.is_some());
                        printer.report(line, verdict, threshold, config.all)?;
                    }
                    None => printer.write(line, None, threshold)?,
                }
            }
            printer.flush()?;
        }
        // Only now, with the verdicts out, is the batch done.
        if let Some(writer) = checkpoints.as_mut() {
            writer.record_batch(pending.lines().map(|l| &l.position).chain(&pending.skipped));
            opened_at_end(writer, &config.read, &mut opened_seen);
            // A full disk or a removed data directory must not stop the
            // monitor, when it is most needed: it goes on, and the next
            // batch tries again (a restart meanwhile reads the lines since
            // the last saved checkpoint again).
            match writer.save(false) {
                Ok(()) => {
                    crate::metrics::count(crate::metrics::Metrics::checkpoint_saved);
                    if std::mem::take(&mut unsaved) {
                        tracing::warn!("checkpoints are saved again");
                    }
                }
                Err(e) => {
                    if !std::mem::replace(&mut unsaved, true) {
                        tracing::error!("cannot save the checkpoints: {e:#}; still monitoring, trying again after every batch");
                    }
                }
            }
        }
        dropper.drop_later(std::mem::take(&mut pending.chunks));
        pending.skipped.clear();
        Ok(())
    };
    // Lines received and not yet in a batch (a chunk may overfill one).
    let mut carried = Chunk::new();
    loop {
        let filling = !pending.is_empty();
        let received = if !carried.is_empty() {
            Ok(())
        } else if filling {
            // A batch is being filled: poll rather than block, so that the
            // readers' sends need not wake this thread (issue 11: the
            // wake-ups cost more than scoring).
            match rx.try_recv() {
                Ok(chunk) => {
                    carried = chunk;
                    Ok(())
                }
                Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) if pending.since.elapsed() < MAX_BATCH_DELAY && !stop.load(Ordering::Relaxed) => {
                    std::thread::sleep(FILL_POLL);
                    continue;
                }
                Err(TryRecvError::Empty) => Err(RecvTimeoutError::Timeout),
            }
        } else {
            rx.recv_timeout(Duration::from_millis(100)).map(|chunk| carried = chunk)
        };
        let disconnected = matches!(received, Err(RecvTimeoutError::Disconnected));
        if received.is_ok() {
            carried = pending.fill(std::mem::take(&mut carried), batch_size, config.filter.as_ref(), &mut stats);
            let full = pending.len() >= batch_size;
            if !full && pending.since.elapsed() < MAX_BATCH_DELAY && !stop.load(Ordering::Relaxed) {
                continue;
            }
        }
        flush(&mut pending, &mut stats, detector, threshold)?;
        if let Some(file) = &mut memory {
            persist_memory(detector, file, stats.generation(), false);
        }
        if watchdog.is_some_and(|every| fed.elapsed() >= every) {
            notify(&[sd_notify::NotifyState::Watchdog]);
            fed = Instant::now();
        }
        if let Some(r) = reload.as_mut()
            && r.due()
        {
            reload_model(detector, r, &mut threshold);
        }
        reap(&mut handles, &mut stats, false, config.read.follow);
        if disconnected || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if config.read.follow {
        notify(&[sd_notify::NotifyState::Stopping]);
    }
    if let Some(writer) = checkpoints.as_mut() {
        opened_at_end(writer, &config.read, &mut opened_seen);
        // Still a full disk at the end: said, and the rest of the shutdown
        // (the kinds reported) goes on; a restart reads again what came
        // after the last saved checkpoint.
        if let Err(e) = writer.save(true) {
            tracing::error!("cannot save the checkpoints at exit: {e:#}; a restart reads again the lines after the last saved ones");
        }
    }
    if let Some(file) = &mut memory {
        persist_memory(detector, file, stats.generation(), true);
    }
    // Followers stop on their own within a poll interval; stdin may block,
    // so only finished readers are joined.
    reap(&mut handles, &mut stats, !stop.load(Ordering::Relaxed), config.read.follow);
    Ok(stats)
}

/// Checkpoints the sources opened at their end that have delivered nothing
/// yet where they were opened, so that a restart reads what was written
/// while the monitor was down (it used to start at their end again). Each
/// once (`seen` of the list are done): a file gone for good, whose entry
/// was pruned, does not come back.
fn opened_at_end(writer: &mut CheckpointWriter, read: &sources::ReadOptions, seen: &mut usize) {
    if let Some(opened) = &read.opened_at_end {
        let opened = opened.lock().unwrap_or_else(|e| e.into_inner());
        for position in opened.iter().skip(*seen) {
            writer.record_if_new(position);
        }
        *seen = opened.len();
    }
}

/// Tells systemd (`$NOTIFY_SOCKET`) how the monitor is; a failure to tell
/// is logged, never fatal.
fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// Loads the current model if it is not the one scoring (or SIGHUP asked
/// for it); a model that fails to load leaves the old one scoring, and says
/// why once per version.
pub fn reload_model(detector: &mut ComponentDetector, r: &mut Reload, threshold: &mut f64) {
    let forced = r.recheck.now.swap(false, Ordering::Relaxed);
    if forced && let Some(config) = r.live_config.as_mut() {
        match config.reread() {
            Ok(new) => {
                crate::audit::note("config_used", serde_json::json!({ "path": new.path, "by": "reload" }));
                r.threshold = new.settings.threshold;
                *config = new;
            }
            Err(e) => tracing::error!("{e:#}; keeping the previous configuration"),
        }
    }
    let version = match r.data_dir.current_version() {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(e) => {
            let why = format!("{e:#}");
            if r.unreadable.as_ref() != Some(&why) {
                tracing::warn!("cannot tell the current model: {why}; still scoring with model version {}", r.version);
                r.unreadable = Some(why);
            }
            return;
        }
    };
    r.unreadable = None;
    if (version == r.version || r.failed == Some(version)) && !forced {
        return;
    }
    // Rollback protection (issue 13, see `audit`): an older model only
    // when the CLI made it current.
    if version < r.version
        && let Err(why) = crate::audit::AuditLog::new(&r.data_dir).rollback_sanctioned(version)
    {
        // Checked again each time (the CLI may roll back to it), said once.
        if r.refused != Some(version) {
            tracing::error!(
                "refusing model version {version}, older than version {} in use: {why}; still scoring with version {}",
                r.version,
                r.version
            );
            r.refused = Some(version);
        }
        return;
    }
    r.refused = None;
    let loaded = r.data_dir.read_current_model().and_then(|(v, path, bytes)| {
        // `current` changed since it was checked above (against rollback):
        // the next check decides about the new one.
        if v != version {
            return Ok(None);
        }
        *threshold = detector
            .replace_model(&bytes, &r.passphrase, r.threshold, v)
            .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", path.display()))?;
        Ok(Some(v))
    });
    match loaded {
        Ok(None) => {}
        Ok(Some(v)) => {
            tracing::info!("loaded model version {v} (was {}); scoring with it from the next batch", r.version);
            notify(&[sd_notify::NotifyState::Status(&format!("scoring with model version {v}"))]);
            crate::audit::note("model_reloaded", serde_json::json!({ "version": v, "from": r.version }));
            crate::metrics::count(|m| m.model_version(v));
            r.version = v;
            r.failed = None;
        }
        Err(e) => {
            tracing::error!("{e:#}; still scoring with model version {}", r.version);
            r.failed = Some(version);
        }
    }
}

/// Joins the finished readers (all of them with `all`), collecting their
/// problems; those of a batch scan are reported here, once (a follower's
/// were logged as they happened).
fn reap(handles: &mut Vec<(String, JoinHandle<SourceResult>)>, stats: &mut MonitorStats, all: bool, follow: bool) {
    let mut i = 0;
    while i < handles.len() {
        if all || handles[i].1.is_finished() {
            let (name, handle) = handles.swap_remove(i);
            match handle.join() {
                Ok(Ok(problems)) => {
                    if !follow {
                        problems.iter().for_each(|p| tracing::error!("{p}"));
                    }
                    stats.problems.extend(problems)
                }
                Ok(Err(msg)) => {
                    tracing::error!("{msg}");
                    stats.problems.push(msg);
                }
                Err(_) => stats.problems.push(format!("the reader of {name} crashed")),
            }
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines `from..to` of one journal, each at its own cursor.
    fn chunk(from: u64, to: u64) -> Chunk {
        let origin: Arc<str> = "journal".into();
        (from..to)
            .map(|n| {
                let position = Position::Journal { journal: "system".into(), cursor: n.to_string() };
                let text = if n % 3 == 0 { format!("drop me {n}") } else { format!("keep me {n}") };
                sources::line_from_text(&origin, n, text, false, position)
            })
            .collect()
    }

    fn offsets<'a>(positions: impl IntoIterator<Item = &'a Position>) -> Vec<u64> {
        positions.into_iter().map(|p| if let Position::Journal { cursor, .. } = p { cursor.parse().unwrap() } else { u64::MAX }).collect()
    }

    #[test]
    fn batches_fill_from_chunks_in_order_and_the_filter_keeps_positions() {
        let mut stats = MonitorStats::default();
        let mut pending = Pending::new();
        let keep = Regex::new("keep").unwrap();
        // Lines 0..8; 0, 3, 6 are filtered out. A batch of 3 takes lines
        // up to the third kept one (4), and the rest waits, unread.
        let rest = pending.fill(chunk(0, 8), 3, Some(&keep), &mut stats);
        assert_eq!(offsets(pending.lines().map(|l| &l.position)), [1, 2, 4]);
        assert_eq!(offsets(&pending.skipped), [0, 3]);
        assert_eq!(rest.iter().map(|l| l.line_no).collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!((stats.lines, stats.filtered, pending.len()), (5, 2, 3));
        // A full batch takes nothing; the next one gets the rest, then
        // another chunk, as one more chunk of its own.
        let rest = pending.fill(rest, 3, Some(&keep), &mut stats);
        assert_eq!(rest.len(), 3);
        let mut next = Pending::new();
        assert!(next.fill(rest, 4, Some(&keep), &mut stats).is_empty());
        assert_eq!(next.fill(chunk(8, 12), 4, Some(&keep), &mut stats).len(), 1);
        assert_eq!(offsets(next.lines().map(|l| &l.position)), [5, 7, 8, 10]);
        assert_eq!(offsets(&next.skipped), [6, 9]);
        assert_eq!(next.chunks.len(), 2);
        // No filter: the batch size alone splits.
        let mut plain = Pending::new();
        assert_eq!(plain.fill(chunk(0, 8), 5, None, &mut stats).len(), 3);
        assert_eq!((plain.len(), plain.skipped.len()), (5, 0));
    }
}
