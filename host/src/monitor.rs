//! The monitor loop: lines from all sources are filtered, batched, scored
//! through the component and printed, until the sources end (`--once`, or
//! stdin closes) or a stop is requested (SIGINT/SIGTERM), in which case the
//! batch in flight is finished and flushed first.

use crate::engine::ComponentDetector;
use crate::output::Printer;
use crate::sources::{self, Line, ReadOptions, SourceSpec};
use anyhow::{Context, Result};
use regex::Regex;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

/// A partial batch waits at most this long for more lines before it is scored.
const MAX_BATCH_DELAY: Duration = Duration::from_millis(250);

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
    /// Sources that failed, with the reason.
    pub failed_sources: Vec<String>,
}

/// Runs the monitor until the sources end or `stop` is set.
pub fn run<W: Write>(
    detector: &mut ComponentDetector,
    threshold: f64,
    config: &MonitorConfig,
    printer: &mut Printer<W>,
    stop: &Arc<AtomicBool>,
) -> Result<MonitorStats> {
    let batch_size = config.batch_size.max(1);
    let (tx, rx) = sync_channel::<Line>(batch_size * 4);
    let mut handles = sources::spawn(&config.sources, &config.read, &tx, stop);
    drop(tx);
    let mut stats = MonitorStats::default();
    let mut batch: Vec<Line> = Vec::with_capacity(batch_size);
    let mut batch_started = Instant::now();
    printer.header()?;
    let mut flush = |batch: &mut Vec<Line>, stats: &mut MonitorStats| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let records: Vec<_> = batch.iter().map(|l| l.record.clone()).collect();
        let verdicts = detector.score_batch(&records).with_context(|| {
            let first = &batch[0];
            format!("{} records from {} line {} on were not scored", batch.len(), first.origin, first.line_no)
        })?;
        for (line, verdict) in batch.iter().zip(&verdicts) {
            stats.scored += 1;
            stats.anomalies += u64::from(verdict.anomalous);
            if config.all || verdict.anomalous {
                printer.write(line, verdict, threshold)?;
            }
        }
        printer.flush()?;
        batch.clear();
        Ok(())
    };
    loop {
        let received = rx.recv_timeout(Duration::from_millis(100));
        let disconnected = matches!(received, Err(RecvTimeoutError::Disconnected));
        if let Ok(first) = received {
            for line in std::iter::once(first).chain(rx.try_iter().take(batch_size - 1)) {
                stats.lines += 1;
                if batch.is_empty() {
                    batch_started = Instant::now();
                }
                if config.filter.as_ref().is_some_and(|re| !re.is_match(&line.raw)) {
                    stats.filtered += 1;
                    continue;
                }
                batch.push(line);
            }
            if batch.len() < batch_size && batch_started.elapsed() < MAX_BATCH_DELAY && !stop.load(Ordering::Relaxed) {
                continue;
            }
        }
        flush(&mut batch, &mut stats)?;
        reap(&mut handles, &mut stats);
        if disconnected || stop.load(Ordering::Relaxed) {
            break;
        }
    }
    if !stop.load(Ordering::Relaxed) {
        for (name, handle) in handles.drain(..) {
            report(&name, handle.join(), &mut stats);
        }
    }
    Ok(stats)
}

fn reap(handles: &mut Vec<(String, std::thread::JoinHandle<sources::SourceResult>)>, stats: &mut MonitorStats) {
    let mut i = 0;
    while i < handles.len() {
        if handles[i].1.is_finished() {
            let (name, handle) = handles.swap_remove(i);
            report(&name, handle.join(), stats);
        } else {
            i += 1;
        }
    }
}

fn report(name: &str, result: std::thread::Result<sources::SourceResult>, stats: &mut MonitorStats) {
    let failure = match result {
        Ok(Ok(())) => return,
        Ok(Err(msg)) => msg,
        Err(_) => format!("the reader of {name} crashed"),
    };
    tracing::error!("{failure}");
    stats.failed_sources.push(failure);
}
