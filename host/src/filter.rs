//! `logarithm filter`: the detector in any pipe. Records come in on stdin,
//! one per line — NDJSON (any shape the core's [`parse::from_object`]
//! reads: journald, Fluent Bit, rsyslog, application logs) or raw log
//! lines — and go out on stdout, one line per line in, in order, with the
//! anomaly fields of [`enrich`] added. Output is flushed after every batch,
//! and a batch is whatever has arrived (up to `--batch-size`), so a record
//! never waits for the next one.
//!
//! - A JSON object is passed on as it came, byte for byte (keys in their
//!   order, duplicates too, numbers as written), plus the fields appended
//!   to its text, whether it was scored or not.
//! - Any other line is a raw log line, read as `logarithm monitor` reads
//!   one (a `[   12.345678] usb 1-1: ...` of dmesg, a `[TS] ERROR ...`, a
//!   `{` that does not parse): it is passed on as `{"log": LINE, ...}`, the
//!   way Fluent Bit's `tail` hands one over.
//! - A JSON object without a message (`null`, an array or an object is none)
//!   passes on unscored with `anomaly_error`; so does every record while
//!   there is no model, and one the component fails on.
//! - A line longer than `--max-line-bytes` is passed on whole (up to
//!   [`PASS_WHOLE`]), scored on its first `--max-line-bytes`: a filter
//!   must not cut what it passes on.
//! - `--only-anomalies` passes on only the records that raise an alert
//!   (`anomaly_reported`: an anomaly of a new kind, a worse one, a repeat
//!   summary or a burst; anomalies counted against an earlier alert are
//!   dropped too) and those that could not be scored.
//! - `--rsyslog` speaks rsyslog's `mmexternal` protocol instead: its
//!   `fulljson` messages in, and for each exactly one reply line that sets
//!   the message's `$!anomaly` properties (see [`Mode::Rsyslog`]); the
//!   reply never repeats the message, so nothing of it is rewritten.

use crate::datadir::DataDir;
use crate::engine::ComponentDetector;
use crate::monitor::{Recheck, Reload};
use crate::sources::lines::LineReader;
use anyhow::{Context, Result};
use chrono::Local;
use logarithm_detector::memory::{Generation, MemoryFile};
use logarithm_detector::{LogRecord, Verdict, enrich, parse};
use serde_json::{Map, Value};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Lines up to this long are passed on whole, however long `--max-line-bytes`
/// lets a record be scored (a 10 MiB stack trace in a JSON record); a
/// longer one is cut there and passed on unscored, saying so. The monitor
/// reads a JSON record whole up to the same bound.
pub const PASS_WHOLE: usize = crate::sources::WHOLE_LINE_BYTES;

/// The bytes of lines read ahead and not yet answered are kept under this
/// (or one line, when a line is longer), so a slow consumer and giant lines
/// cannot make the filter hold more.
const READ_AHEAD_BYTES: usize = 64 << 20;

/// How often a filter waiting for input looks at its stop flag and its
/// memory file.
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// How records are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// NDJSON in, the same records with the anomaly fields out.
    Ndjson {
        /// Drop records that were scored and are normal.
        only_anomalies: bool,
    },
    /// rsyslog `mmexternal` with `interface.input="fulljson"`: one reply per
    /// message, `{"$!":{"anomaly":{"score":…,"anomalous":…,"terms":[…],"reported":…}}}`,
    /// or `{"$!":{"anomaly":{"error":…}}}` when it could not be scored.
    Rsyslog,
}

/// What a filter scores with.
// One per process, moved once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Model<'a> {
    /// A model, and how a newly installed one replaces it between batches.
    Loaded(ComponentDetector, Reload),
    /// None could be loaded (rsyslog starts its `mmexternal` child with
    /// rsyslogd, perhaps before the first training): every record is
    /// answered unscored with `why`, and `load` is tried again when
    /// `recheck` is due (every 2 s) and another version is current, or at
    /// SIGHUP: a model that fails (a wrong key) is not loaded again, a key
    /// derivation each time, until something changed.
    Waiting {
        /// Why there is no model, as the last try found.
        why: String,
        /// When to look again.
        recheck: Recheck,
        /// Loads the current model, as at start.
        load: Box<dyn FnMut() -> Result<(ComponentDetector, Reload)> + 'a>,
        /// Where `current` says which version that is.
        data_dir: DataDir,
        /// The version that was current at the last failed try.
        tried: Option<Option<u32>>,
    },
}

impl Model<'_> {
    /// Between batches: installs a newly current model, or the first one
    /// (then returns true).
    fn refresh(&mut self) -> bool {
        match self {
            Self::Loaded(d, r) => {
                if r.due() {
                    crate::monitor::reload_model(d, r, &mut 0.0);
                }
                false
            }
            Self::Waiting { why, recheck, load, data_dir, tried } => {
                if !recheck.due() {
                    return false;
                }
                let forced = recheck.now.swap(false, std::sync::atomic::Ordering::Relaxed);
                let current = data_dir.current_version().ok().flatten();
                if !forced && *tried == Some(current) {
                    return false;
                }
                match load() {
                    Ok((d, r)) => {
                        tracing::info!("loaded model version {}; scoring from this batch", r.version);
                        *self = Self::Loaded(d, r);
                        true
                    }
                    Err(e) => {
                        *why = format!("no model: {}", crate::logging::one_line(&e));
                        *tried = Some(current);
                        false
                    }
                }
            }
        }
    }

    /// Restores the memory of reported kinds from `file` into the model.
    fn restore(&mut self, file: &mut MemoryFile, generation: Generation) {
        if let Self::Loaded(d, _) = self {
            crate::monitor::restore_memory(d, file, generation);
        }
    }

    /// Saves the memory of reported kinds at `generation` to `file` when it
    /// changed ([`MemoryFile`] says when), or at the `last` chance.
    fn persist(&mut self, file: &mut MemoryFile, generation: Generation, last: bool) {
        if let Self::Loaded(d, _) = self {
            crate::monitor::persist_memory(d, file, generation, last);
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Lines read.
    pub lines: u64,
    /// Records scored.
    pub scored: u64,
    /// Anomalies among them.
    pub anomalies: u64,
    /// Records that were news to the memory of reported kinds
    /// ([`Verdict::is_news`]: reported, or a kind's summary).
    pub news: u64,
    /// Lines passed on unscored.
    pub unscored: u64,
}

impl FilterStats {
    /// How far the memory of reported kinds changed: it changes with each
    /// anomaly, and has news with each record reported or summarised.
    fn generation(&self) -> Generation {
        Generation { changes: self.anomalies, news: self.news }
    }
}

/// One input line, made ready to score.
struct Item {
    /// The record to pass on.
    record: Map<String, Value>,
    /// Whether `record` is the line's own JSON object (not a raw line put
    /// under `log`): then the line's text is passed on, extended.
    json: bool,
    /// Why it cannot be scored, if it cannot.
    error: Option<String>,
}

/// The record a line carries, and whether it is the line's own JSON
/// object, to be passed on as its own text: a JSON object is a record;
/// anything else is a raw line, as the monitor's readers take it
/// (`parse::parse_text`). An object strict JSON does not read
/// ([`parse::lenient_object`]) is a record too: passed on as written when
/// it is JSON text all the same (a number beyond `f64`, a lone surrogate),
/// written anew as valid JSON when it is not (a raw tab inside a string),
/// and after a byte-order mark.
fn record_of(line: &str) -> (Map<String, Value>, bool) {
    let text = parse::without_bom(line);
    if !text.trim_start().starts_with('{') {
        return (enrich::raw_line_record(line), false);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => (obj, text.len() == line.len()),
        Ok(_) => (enrich::raw_line_record(line), false),
        // Strict JSON failed: read leniently (repaired, or entry by entry),
        // else a raw line. (Not `json_value`, which would parse it
        // strictly again.) Passed on as written if it is JSON text (a
        // number beyond f64, a lone surrogate), else written anew as valid
        // JSON (a raw tab inside a string).
        Err(_) => match parse::lenient_object(text) {
            Some(obj) => (obj, text.len() == line.len() && parse::object_entries(text.trim_end()).is_some()),
            None => (enrich::raw_line_record(line), false),
        },
    }
}

fn item(line: &str) -> (Item, Option<LogRecord>) {
    let now = Local::now();
    let (record, json) = record_of(line);
    match parse::from_object(&record, &now) {
        Some(parsed) => (Item { record, json, error: None }, Some(parsed)),
        None => (Item { record, json, error: Some(parse::NO_MESSAGE.to_owned()) }, None),
    }
}

/// A line that could not be read as a record (a bug panicked), passed on
/// unscored with `why`: a JSON object still as it came, with the error
/// appended to its text, not put under `log`.
fn unscored(line: &str, why: String) -> Item {
    let (record, json) = std::panic::catch_unwind(|| record_of(line)).unwrap_or_else(|_| (enrich::raw_line_record(line), false));
    Item { record, json, error: Some(why) }
}

/// Reads stdin to its end, answering every line, and between batches loads
/// a newly installed model, as a follower does ([`Model::refresh`]). With
/// no model yet, or when a batch cannot be scored, lines are answered
/// unscored with the reason: a filter in a pipeline passes everything on
/// rather than stop it.
/// A line longer than `max_line_bytes` is passed on whole and scored on
/// its first `max_line_bytes` ([`crate::sources::fit`]); one longer than [`PASS_WHOLE`] is
/// cut there and passed on unscored, saying so. A read error ends the run
/// after the lines read before it are answered.
///
/// With a `memory` file, the kinds reported are restored from it when a
/// model is loaded, and saved to it as they change (when
/// [`logarithm_detector::memory::MemoryFile`] says), and at the end of
/// input. When `stop` is set (SIGTERM), the complete lines read are
/// answered and the run
/// ends as at the end of input.
pub fn run(
    mut model: Model,
    mode: Mode,
    mut memory: Option<MemoryFile>,
    stop: &Arc<AtomicBool>,
    batch_size: usize,
    max_line_bytes: usize,
    out: &mut impl Write,
) -> Result<FilterStats> {
    let read_max = max_line_bytes.max(PASS_WHOLE);
    let (lines, ahead) = spawn_reader(read_max, stop.clone());
    let mut stats = FilterStats::default();
    let batch_size = batch_size.max(1);
    // The memory changes with each anomaly: their count is its generation.
    if let Some(file) = &mut memory {
        model.restore(file, stats.generation());
    }
    let result = filter_lines(&mut model, mode, &mut memory, stop, &lines, &ahead, batch_size, max_line_bytes, &mut stats, out);
    if let Some(file) = &mut memory {
        model.persist(file, stats.generation(), true);
    }
    result.map(|()| stats)
}

/// [`run`]'s loop, until the input ends, cannot be read, or `stop`.
#[allow(clippy::too_many_arguments)]
fn filter_lines(
    model: &mut Model,
    mode: Mode,
    memory: &mut Option<MemoryFile>,
    stop: &AtomicBool,
    lines: &Receiver<Result<(String, bool)>>,
    ahead: &ReadAhead,
    batch_size: usize,
    max_line_bytes: usize,
    stats: &mut FilterStats,
    out: &mut impl Write,
) -> Result<()> {
    let read_max = max_line_bytes.max(PASS_WHOLE);
    loop {
        // A stop ends the reader after the line it is reading: the lines
        // read are answered, then the run ends (at once if it waits for
        // input). Waiting, the memory is saved once due.
        let stopping = stop.load(Ordering::Relaxed);
        let first = match lines.recv_timeout(IDLE_CHECK) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) if stopping => break,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(file) = memory.as_mut() {
                    model.persist(file, stats.generation(), false);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut read_error = None;
        let batch: Vec<(String, bool)> = std::iter::once(first)
            .chain(lines.try_iter().take(batch_size - 1))
            .filter_map(|line| line.map_err(|e| read_error = Some(e)).ok())
            .collect();
        // A panic while reading a line (a bug) costs that line only: it passes on unscored.
        let (items, records): (Vec<Item>, Vec<Option<LogRecord>>) = batch
            .iter()
            .enumerate()
            .map(|(i, (l, truncated))| {
                if *truncated {
                    let why = format!("the line was longer than {read_max} bytes and was cut; passed on unscored");
                    return (Item { record: enrich::raw_line_record(l), json: false, error: Some(why) }, None);
                }
                let (item, mut record) =
                    crate::sources::contained("-", stats.lines + i as u64 + 1, || item(l)).unwrap_or_else(|why| (unscored(l, why), None));
                if l.len() > max_line_bytes
                    && let Some(r) = &mut record
                {
                    crate::sources::fit(r, max_line_bytes);
                }
                (item, record)
            })
            .unzip();
        if model.refresh()
            && let Some(file) = memory.as_mut()
        {
            model.restore(file, stats.generation());
        }
        let to_score: Vec<&LogRecord> = records.iter().flatten().collect();
        // As the monitor scores: a record the guest fails on is passed on
        // unscored, with why, and costs no other record its verdict.
        let scored = match model {
            Model::Loaded(d, _) => d.score_contained(&to_score).map_err(|e| format!("not scored: {e:#}")),
            Model::Waiting { why, .. } => Err(why.clone()),
        };
        let mut verdicts = scored.unwrap_or_else(|why| vec![Err(why); to_score.len()]).into_iter();
        for ((mut item, record), (line, _)) in items.into_iter().zip(&records).zip(&batch) {
            stats.lines += 1;
            let verdict = record.as_ref().and_then(|_| verdicts.next()).and_then(|v| v.map_err(|why| item.error = Some(why)).ok());
            match &verdict {
                Some(v) => {
                    stats.scored += 1;
                    stats.anomalies += u64::from(v.anomalous);
                    stats.news += u64::from(v.is_news());
                }
                None => stats.unscored += 1,
            }
            answer(out, mode, &mut item, line, verdict.as_ref())?;
        }
        out.flush()?;
        ahead.release(batch.iter().map(|(l, _)| l.len()).sum());
        if let Some(file) = memory.as_mut() {
            model.persist(file, stats.generation(), false);
        }
        if let Some(e) = read_error {
            return Err(e);
        }
    }
    Ok(())
}

/// Writes the answer to `line` (none for a normal record with
/// `--only-anomalies`).
fn answer(out: &mut impl Write, mode: Mode, item: &mut Item, line: &str, verdict: Option<&Verdict>) -> Result<()> {
    let reply = match mode {
        Mode::Ndjson { only_anomalies } => {
            if only_anomalies && verdict.is_some_and(|v| !enrich::alerts(v)) {
                return Ok(());
            }
            // The record's own text, extended, scored or not: its keys stay
            // in order, duplicates and all, and its numbers as written (a
            // big integer is not rounded to a float on the way through).
            if item.json {
                let mut text = Vec::with_capacity(line.len() + 128);
                let written = match (verdict, &item.error) {
                    (Some(v), _) => enrich::write_annotated(line.as_bytes(), &item.record, v, &mut text),
                    (None, why) => write_with_error(line.as_bytes(), &item.record, why.as_deref().unwrap_or("not scored"), &mut text),
                };
                if written {
                    text.push(b'\n');
                    out.write_all(&text)?;
                    return Ok(());
                }
            }
            match (verdict, &item.error) {
                (Some(v), _) => enrich::annotate(&mut item.record, v),
                (None, Some(e)) => enrich::annotate_error(&mut item.record, e),
                (None, None) => enrich::annotate_error(&mut item.record, "not scored"),
            }
            Value::Object(std::mem::take(&mut item.record))
        }
        Mode::Rsyslog => {
            let anomaly: Map<String, Value> = match (verdict, &item.error) {
                (Some(v), _) => enrich::verdict_fields(v).into_iter().map(|(k, v)| (rsyslog_name(k).to_owned(), v)).collect(),
                (None, e) => [("error".to_owned(), Value::String(e.clone().unwrap_or_else(|| "not scored".into())))].into_iter().collect(),
            };
            serde_json::json!({ "$!": { "anomaly": anomaly } })
        }
    };
    // As io::Error, so that a closed pipe is recognised as one.
    serde_json::to_writer(&mut *out, &reply).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes a record passed on unscored from its own JSON text, with
/// `anomaly_error` appended as a verdict's fields are
/// ([`enrich::write_appended`]); `false` when it cannot be (the record
/// already holds the field, which [`enrich::annotate_error`] replaces).
fn write_with_error(text: &[u8], record: &Map<String, Value>, why: &str, out: &mut Vec<u8>) -> bool {
    enrich::write_appended(text, record, &[(enrich::ERROR, Value::from(why))], out)
}

/// The name of an [`enrich`] field under rsyslog's `$!anomaly`:
/// `$!anomaly!score`, `$!anomaly!anomalous`, `$!anomaly!terms`,
/// `$!anomaly!reported`, `$!anomaly!repeat`.
fn rsyslog_name(field: &str) -> &str {
    match field {
        enrich::SCORE => "score",
        enrich::TERMS => "terms",
        enrich::REPORTED => "reported",
        enrich::REPEAT => "repeat",
        other => other,
    }
}

/// The bytes of lines read and not yet answered, and a wait for them to
/// fall under [`READ_AHEAD_BYTES`].
#[derive(Clone, Default)]
struct ReadAhead(Arc<(Mutex<usize>, Condvar)>);

impl ReadAhead {
    /// Counts `bytes` more, first waiting while what is held is over the
    /// budget (a line is always let through when nothing is held).
    fn take(&self, bytes: usize) {
        let (held, freed) = &*self.0;
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        while *held > 0 && *held + bytes > READ_AHEAD_BYTES {
            held = freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        *held += bytes;
    }

    /// Counts `bytes` as answered.
    fn release(&self, bytes: usize) {
        let (held, freed) = &*self.0;
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        *held = held.saturating_sub(bytes);
        freed.notify_all();
    }
}

/// Reads stdin on its own thread, so a batch is whatever has arrived; what
/// it reads ahead is bounded by [`READ_AHEAD_BYTES`]. Once `stop` is set it
/// hands over the lines it has read and ends.
fn spawn_reader(max_line_bytes: usize, stop: Arc<AtomicBool>) -> (Receiver<Result<(String, bool)>>, ReadAhead) {
    let (tx, rx) = mpsc::sync_channel(4096);
    let ahead = ReadAhead::default();
    let counted = ahead.clone();
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut reader = LineReader::new(io::BufReader::with_capacity(64 * 1024, io::stdin()), 0, max_line_bytes);
            loop {
                let next = reader.next_line(true).context("cannot read stdin");
                let line = match next {
                    Ok(Some(mut raw)) => {
                        // Not part of the line, and not to be passed on
                        // before a JSON object's own text.
                        let bom = raw.text.len() - parse::without_bom(&raw.text).len();
                        raw.text.drain(..bom);
                        counted.take(raw.text.len());
                        Ok((raw.text, raw.truncated))
                    }
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                let failed = line.is_err();
                // Stopped: the lines already read from stdin (in the
                // buffer) go too, and nothing more is read.
                if tx.send(line).is_err() || failed || (stop.load(Ordering::Relaxed) && !reader.has_buffered_line()) {
                    return;
                }
            }
        })
        .expect("cannot spawn the stdin reader");
    (rx, ahead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_records_or_errors() {
        let (i, r) = item(r#"{"msg":"disk full","level":"err","x":1}"#);
        assert!(i.error.is_none() && r.unwrap().priority == Some(3));
        assert_eq!(i.record["x"], 1);
        let (i, r) = item("Nov  2 08:00:00 web01 sshd[1]: Accepted password for bob");
        assert_eq!(r.unwrap().source, "sshd");
        assert_eq!(i.record["log"], "Nov  2 08:00:00 web01 sshd[1]: Accepted password for bob");
        let (i, r) = item(r#"{"nomessage":1}"#);
        assert!(r.is_none() && i.error.as_deref().unwrap().contains("no message"), "{:?}", i.error);
        // Anything but a JSON object is a raw line, read as the monitor reads it.
        for (line, source, priority, message) in [
            ("[2026-12-05 07:00:00] ERROR Database connection failed", "", Some(3), "Database connection failed"),
            ("[   12.345678] usb 1-1: new high-speed USB device", "", None, "[   12.345678] usb 1-1: new high-speed USB device"),
            ("{broken", "", None, "{broken"),
            ("[1,2]", "", None, "[1,2]"),
            ("42", "", None, "42"),
        ] {
            let (i, r) = item(line);
            let r = r.unwrap_or_else(|| panic!("{line}: {:?}", i.error));
            assert_eq!(
                (i.record["log"].as_str(), r.source.as_str(), r.priority, r.message.as_str()),
                (Some(line), source, priority, message)
            );
            assert!(i.error.is_none() && !i.json);
        }
    }

    /// An object a naive writer broke (a raw tab inside a string) is read
    /// as the object it means and written anew, as valid JSON with its
    /// fields, not put under `log` as a raw line.
    #[test]
    fn a_repaired_object_is_a_record_written_anew() {
        let line = "{\"message\":\"kernel: Out of memory\tKilled process 42\",\"priority\":2,\"n\":1}";
        // After a byte-order mark too, as the monitor reads it.
        let (i, r) = item("\u{feff}{\"msg\":\"x\",\"n\":1}");
        assert_eq!((r.unwrap().message.as_str(), i.record["n"].as_i64(), i.json), ("x", Some(1), false));
        let (mut i, r) = item(line);
        let r = r.unwrap();
        assert_eq!((r.message.as_str(), r.priority, i.json), ("kernel: Out of memory\tKilled process 42", Some(2), false));
        let mut out = Vec::new();
        answer(&mut out, Mode::Ndjson { only_anomalies: false }, &mut i, line, None).unwrap();
        let back: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!((back["message"].as_str(), back["n"].as_i64()), (Some("kernel: Out of memory\tKilled process 42"), Some(1)));
        assert!(back.get("log").is_none() && back.get("anomaly_error").is_some(), "{back}");
    }

    /// Review: a JSON object passed on unscored (no message, no model, a
    /// component failure, a panic) is its own bytes with `anomaly_error`
    /// appended, as a scored one gets its fields: it used to be written
    /// anew, rounding a big integer, rewriting numbers, dropping a
    /// duplicate key and its spacing.
    #[test]
    fn unscored_objects_pass_on_byte_for_byte() {
        fn answered(line: &str, item: &mut Item, mode: Mode) -> String {
            let mut out = Vec::new();
            answer(&mut out, mode, item, line, None).unwrap();
            String::from_utf8(out).unwrap()
        }
        let appended = |line: &str, why: &str| format!("{},\"anomaly_error\":{}}}\n", &line[..line.len() - 1], Value::from(why));
        let ndjson = Mode::Ndjson { only_anomalies: false };
        let line = r#"{"message": null, "n": 1.50, "big": 12345678901234567890123, "z":1e2, "a":1, "a":2}"#;
        // No message (a null one is none), also with --only-anomalies.
        let (mut i, r) = item(line);
        assert!(r.is_none() && i.json);
        assert_eq!(answered(line, &mut i, ndjson), appended(line, parse::NO_MESSAGE));
        assert_eq!(answered(line, &mut i, Mode::Ndjson { only_anomalies: true }), appended(line, parse::NO_MESSAGE));
        // A panic while reading it.
        let mut i = unscored(line, "parsing failed (a bug: boom)".into());
        assert_eq!(answered(line, &mut i, ndjson), appended(line, "parsing failed (a bug: boom)"));
        // No model, or the component failed on it: a record with a message.
        let line = r#"{"msg" : "disk full", "big": 123456789012345678901234567890, "f": 1.50 }  "#;
        let (mut i, r) = item(line);
        assert!(r.is_some() && i.json);
        i.error = Some("no model: no key file".into());
        let trimmed = line.trim_end();
        assert_eq!(answered(line, &mut i, ndjson), appended(trimmed, "no model: no key file"));
        // No members to follow.
        let (mut i, _) = item("{ }");
        assert_eq!(
            answered("{ }", &mut i, ndjson),
            "{ \"anomaly_error\":\"no message: no message, msg, MESSAGE or log field holding text\"}\n"
        );
        // One an earlier filter could not score either: its error is
        // replaced, not repeated.
        let line = r#"{"msg":"x","anomaly_error":"old"}"#;
        let (mut i, _) = item(line);
        i.error = Some("new".into());
        assert_eq!(answered(line, &mut i, ndjson), "{\"msg\":\"x\",\"anomaly_error\":\"new\"}\n");
        // A raw line is a record of its own: {"log": LINE}.
        let (mut i, _) = item("{broken");
        i.error = Some("no model".into());
        assert_eq!(answered("{broken", &mut i, ndjson), "{\"log\":\"{broken\",\"anomaly_error\":\"no model\"}\n");
        // rsyslog's reply says only why.
        let line = r#"{"message": null, "big": 12345678901234567890123}"#;
        let (mut i, _) = item(line);
        assert_eq!(
            answered(line, &mut i, Mode::Rsyslog),
            format!("{{\"$!\":{{\"anomaly\":{{\"error\":{}}}}}}}\n", Value::from(parse::NO_MESSAGE))
        );
    }
}
