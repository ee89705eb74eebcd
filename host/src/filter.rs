//! `logarithm filter`: the detector in any pipe. Records come in on stdin,
//! one per line — NDJSON (any shape the core's [`parse::from_object`]
//! reads: journald, Fluent Bit, rsyslog, application logs) or raw log
//! lines — and go out on stdout, one line per line in, in order, with the
//! anomaly fields of [`enrich`] added. Output is flushed after every batch,
//! and a batch is whatever has arrived (up to `--batch-size`), so a record
//! never waits for the next one.
//!
//! - A JSON object is passed on as it came, plus the fields.
//! - A line that is not JSON is a raw log line: it is passed on as
//!   `{"log": LINE, ...}`, the way Fluent Bit's `tail` hands one over.
//! - A JSON object without a message, invalid JSON (`{` that does not
//!   parse) and any other JSON value pass on unscored with `anomaly_error`.
//! - `--only-anomalies` passes on only the records that raise an alert
//!   (`anomaly_reported`: an anomaly of a new kind, a worse one, or a
//!   repeat summary; anomalies counted against an earlier alert are
//!   dropped too) and those that could not be scored.
//! - `--rsyslog` speaks rsyslog's `mmexternal` protocol instead: its
//!   `fulljson` messages in, and for each exactly one reply line that sets
//!   the message's `$!anomaly` properties (see [`Mode::Rsyslog`]).

use crate::engine::ComponentDetector;
use crate::sources::lines::LineReader;
use anyhow::{Context, Result};
use chrono::Local;
use logarithm_detector::{LogRecord, Verdict, enrich, parse};
use serde_json::{Map, Value};
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver};

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

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Lines read.
    pub lines: u64,
    /// Records scored.
    pub scored: u64,
    /// Anomalies among them.
    pub anomalies: u64,
    /// Lines passed on unscored.
    pub unscored: u64,
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

fn item(line: &str) -> (Item, Option<LogRecord>) {
    let now = Local::now();
    let trimmed = line.trim_start();
    let (record, error) = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(obj)) => (obj, None),
            Ok(_) => (enrich::raw_line_record(line), Some("not a JSON object".to_owned())),
            Err(e) => (enrich::raw_line_record(line), Some(format!("invalid JSON: {e}"))),
        }
    } else {
        (enrich::raw_line_record(line), None)
    };
    if let Some(error) = error {
        return (Item { record, json: false, error: Some(error) }, None);
    }
    let json = trimmed.starts_with('{');
    match parse::from_object(&record, &now) {
        Some(parsed) => (Item { record, json, error: None }, Some(parsed)),
        None => (Item { record, json, error: Some(parse::NO_MESSAGE.to_owned()) }, None),
    }
}

/// Reads stdin to its end, answering every line. With no detector (in
/// rsyslog mode, when the model could not be loaded: the error says why),
/// or when a batch cannot be scored, lines are answered unscored with the
/// reason: a filter in a pipeline passes everything on rather than stop it.
/// A line longer than `max_line_bytes` is cut there and passed on unscored,
/// saying so. A read error ends the run after the lines read before it are
/// answered.
pub fn run(
    mut detector: Result<&mut ComponentDetector, String>,
    mode: Mode,
    batch_size: usize,
    max_line_bytes: usize,
    out: &mut impl Write,
) -> Result<FilterStats> {
    let lines = spawn_reader(max_line_bytes);
    let mut stats = FilterStats::default();
    let batch_size = batch_size.max(1);
    while let Ok(first) = lines.recv() {
        let mut read_error = None;
        let batch: Vec<(String, bool)> = std::iter::once(first)
            .chain(lines.try_iter().take(batch_size - 1))
            .filter_map(|line| line.map_err(|e| read_error = Some(e)).ok())
            .collect();
        // A panic while reading a line (a bug) costs that line only: it passes on unscored.
        let (mut items, records): (Vec<Item>, Vec<Option<LogRecord>>) = batch
            .iter()
            .enumerate()
            .map(|(i, (l, truncated))| {
                if *truncated {
                    let why = format!("the line was longer than {max_line_bytes} bytes (--max-line-bytes) and was cut; passed on unscored");
                    return (Item { record: enrich::raw_line_record(l), json: false, error: Some(why) }, None);
                }
                crate::sources::contained("-", stats.lines + i as u64 + 1, || item(l))
                    .unwrap_or_else(|why| (Item { record: enrich::raw_line_record(l), json: false, error: Some(why) }, None))
            })
            .unzip();
        let to_score: Vec<LogRecord> = records.iter().flatten().cloned().collect();
        let scored = match &mut detector {
            Ok(d) => d.score_batch(&to_score).map_err(|e| format!("not scored: {e:#}")),
            Err(why) => Err(why.clone()),
        };
        let mut verdicts = match scored {
            Ok(v) => v.into_iter(),
            Err(why) => {
                for (item, record) in items.iter_mut().zip(&records) {
                    if record.is_some() {
                        item.error = Some(why.clone());
                    }
                }
                Vec::new().into_iter()
            }
        };
        for ((mut item, record), (line, _)) in items.into_iter().zip(&records).zip(&batch) {
            stats.lines += 1;
            let verdict = record.as_ref().and_then(|_| verdicts.next());
            match &verdict {
                Some(v) => {
                    stats.scored += 1;
                    stats.anomalies += u64::from(v.anomalous);
                }
                None => stats.unscored += 1,
            }
            answer(out, mode, &mut item, line, verdict.as_ref())?;
        }
        out.flush()?;
        if let Some(e) = read_error {
            return Err(e);
        }
    }
    Ok(stats)
}

/// Writes the answer to `line` (none for a normal record with
/// `--only-anomalies`).
fn answer(out: &mut impl Write, mode: Mode, item: &mut Item, line: &str, verdict: Option<&Verdict>) -> Result<()> {
    let reply = match mode {
        Mode::Ndjson { only_anomalies } => {
            if let Some(v) = verdict {
                if only_anomalies && !enrich::alerts(v) {
                    return Ok(());
                }
                // The record's own text, extended: its keys stay in order
                // and its numbers as written (a big integer is not rounded
                // to a float on the way through).
                let mut text = Vec::with_capacity(line.len() + 128);
                if item.json && enrich::write_annotated(line.as_bytes(), &item.record, v, &mut text) {
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

/// Reads stdin on its own thread, so a batch is whatever has arrived.
fn spawn_reader(max_line_bytes: usize) -> Receiver<Result<(String, bool)>> {
    let (tx, rx) = mpsc::sync_channel(4096);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut reader = LineReader::new(io::stdin().lock(), 0, max_line_bytes);
            loop {
                let next = reader.next_line(true).context("cannot read stdin");
                let line = match next {
                    Ok(Some(raw)) => Ok((raw.text, raw.truncated)),
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                let failed = line.is_err();
                if tx.send(line).is_err() || failed {
                    return;
                }
            }
        })
        .expect("cannot spawn the stdin reader");
    rx
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
        for (line, why) in [(r#"{"nomessage":1}"#, "no message"), ("{broken", "invalid JSON"), ("[1,2]", "not a JSON object")] {
            let (i, r) = item(line);
            assert!(r.is_none() && i.error.as_deref().unwrap().contains(why), "{line}: {:?}", i.error);
        }
    }
}
