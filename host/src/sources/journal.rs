//! Reading the systemd journal through libsystemd (`sd-journal`, via the
//! `systemd` crate): the system journal, or the journal files of a
//! directory (`--journal-dir`, like `journalctl -D`).
//!
//! Kept per entry: `MESSAGE` (binary values are read as bytes and decoded
//! lossily, never dropped), `SYSLOG_IDENTIFIER` (else `_COMM`), `PRIORITY`,
//! `_HOSTNAME` and the timestamp, made into a record by the core's
//! [`parse::from_object`] like any journald record; `_SYSTEMD_UNIT` and
//! `_PID` alongside it. Following waits on the journal (`sd_journal_wait`),
//! it does not poll; where to start is the checkpointed cursor, else
//! `--since`, else the end (following) or the beginning (reading once).

use super::{Line, LineSender, ReadOptions, SourceResult};
use crate::checkpoint::Position;
use logarithm_detector::{LogRecord, parse};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use systemd::journal::{Journal, JournalWaitResult, OpenDirectoryOptions, OpenOptions};

/// How long one wait for new entries lasts before the stop flag is checked.
const WAIT: Duration = Duration::from_millis(250);

/// The name under which a journal's cursor is checkpointed.
pub fn checkpoint_name(dir: Option<&Path>) -> String {
    match dir {
        None => "system".into(),
        Some(d) => std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()).display().to_string(),
    }
}

fn open(dir: Option<&Path>) -> Result<Journal, String> {
    match dir {
        None => OpenOptions::default().system(true).local_only(false).open().map_err(|e| format!("cannot open the system journal: {e}")),
        Some(d) => {
            if !d.is_dir() {
                return Err(format!("journal directory {} does not exist or is not a directory", d.display()));
            }
            use std::os::unix::ffi::OsStrExt;
            let c_path = std::ffi::CString::new(d.as_os_str().as_bytes())
                .map_err(|_| format!("journal directory {} has a NUL byte in its name", d.display()))?;
            OpenDirectoryOptions::default()
                .open_directory(c_path.as_c_str())
                .map_err(|e| format!("cannot open journal directory {}: {e}", d.display()))
        }
    }
}

fn field(journal: &mut Journal, name: &str) -> Option<Vec<u8>> {
    journal.get_data(name).ok().flatten().and_then(|f| f.value().map(<[u8]>::to_vec))
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Reads the journal and sends its entries.
pub(super) fn read(dir: Option<&Path>, options: &ReadOptions, tx: &mut LineSender, stop: &AtomicBool) -> SourceResult {
    let name = checkpoint_name(dir);
    let describe = || dir.map_or_else(|| "the system journal".to_owned(), |d| format!("journal directory {}", d.display()));
    let mut journal = open(dir)?;
    let fail = |what: &str, e: systemd::Error| format!("cannot {what} {}: {e}", describe());
    // Larger fields are cut by libsystemd at this size; we cut lines there too.
    journal.set_data_threshold(options.max_line_bytes.saturating_add(64)).map_err(|e| fail("configure", e))?;

    let cursor = options.follow.then(|| options.checkpoints.journals.get(&name).cloned()).flatten();
    let mut skip_cursor = None;
    let start = if let Some(c) = &cursor {
        journal.seek_cursor(c.as_str()).map_err(|e| fail("seek in", e))?;
        skip_cursor = Some(c.clone());
        "its checkpoint"
    } else if let Some(since) = options.since_us {
        journal.seek_realtime_usec(since.max(0) as u64).map_err(|e| fail("seek in", e))?;
        "--since"
    } else if options.follow && !options.from_head {
        journal.seek_tail().map_err(|e| fail("seek in", e))?;
        // After seeking to the tail, step back onto the last entry so that
        // the next step lands on the first new one.
        journal.previous().map_err(|e| fail("read", e))?;
        skip_cursor = journal.cursor().ok();
        // A restart before anything new is read resumes here, not at the
        // end the journal will have then.
        if let (Some(opened), Some(cursor)) = (&options.opened_at_end, &skip_cursor) {
            opened.lock().unwrap_or_else(|e| e.into_inner()).push(Position::Journal { journal: name.clone(), cursor: cursor.clone() });
        }
        "its end"
    } else {
        journal.seek_head().map_err(|e| fail("seek in", e))?;
        "its start"
    };
    tracing::debug!("reading {} from {start}", describe());

    let origin: Arc<str> = match dir {
        None => "journal".into(),
        Some(d) => format!("journal:{}", d.display()).into(),
    };
    let mut entry_no = 0;
    loop {
        if journal.next().map_err(|e| fail("read", e))? == 0 {
            if !options.follow || stop.load(Ordering::Relaxed) {
                return Ok(Vec::new());
            }
            // Nothing more for now: hand over what was read before waiting.
            if tx.flush().is_err() {
                return Ok(Vec::new());
            }
            match journal.wait(Some(WAIT)) {
                Ok(JournalWaitResult::Nop | JournalWaitResult::Append | JournalWaitResult::Invalidate) => {}
                Err(e) => return Err(fail("wait on", e)),
            }
            continue;
        }
        let cursor = journal.cursor().map_err(|e| fail("read a cursor from", e))?;
        if let Some(skip) = skip_cursor.take() {
            // The checkpointed entry itself was already scored.
            if journal.test_cursor(skip.as_str()).unwrap_or(false) {
                continue;
            }
        }
        if let Some(since) = options.since_us {
            // Seeking finds the first entry at `since`, but entries from other
            // journal files or clocks may interleave: filter each one too.
            let at = journal.timestamp().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_micros() as i64);
            if at.is_some_and(|at| at < since) {
                continue;
            }
        }
        entry_no += 1;
        let line = entry(&mut journal, &origin, entry_no, options, Position::Journal { journal: name.clone(), cursor });
        if tx.send(line).is_err() {
            return Ok(Vec::new());
        }
        if stop.load(Ordering::Relaxed) && options.follow {
            return Ok(Vec::new());
        }
    }
}

/// The journal fields the core's record mapping reads ([`parse::from_object`]),
/// the same ones Fluent Bit's `systemd` input hands to the filter module.
const RECORD_FIELDS: [&str; 6] = ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "_COMM", "_HOSTNAME", "_SOURCE_REALTIME_TIMESTAMP"];

fn entry(journal: &mut Journal, origin: &Arc<str>, entry_no: u64, options: &ReadOptions, position: Position) -> Line {
    let mut message = field(journal, "MESSAGE").unwrap_or_default();
    let truncated = message.len() > options.max_line_bytes;
    if truncated {
        // On a character boundary: a character cut in two would become U+FFFD.
        message.truncate(options.max_line_bytes);
        message.truncate(super::lines::whole_chars(&message));
    }
    let message = text(message);
    let mut fields = serde_json::Map::new();
    for name in RECORD_FIELDS.into_iter().skip(1) {
        if let Some(v) = field(journal, name) {
            fields.insert(name.to_owned(), Value::String(text(v)));
        }
    }
    fields.insert("MESSAGE".to_owned(), Value::String(message.clone()));
    if let Ok(at) = journal.timestamp().map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros()) {
        fields.insert("__REALTIME_TIMESTAMP".to_owned(), Value::String(at.to_string()));
    }
    let parsed = super::contained(origin, entry_no, || parse::from_object(&fields, &super::LocalZone::now()));
    let (record, error) = match parsed {
        Ok(record) => (record.unwrap_or_else(|| LogRecord::from_message(message.clone())), None),
        Err(why) => (LogRecord::from_message(message.clone()), Some(why)),
    };
    let mut extra = Vec::new();
    for (key, name) in [("unit", "_SYSTEMD_UNIT"), ("pid", "_PID")] {
        if let Some(v) = field(journal, name) {
            extra.push((key.to_owned(), text(v)));
        }
    }
    Line { origin: origin.clone(), line_no: entry_no, raw: message, record, truncated, extra, position, error }
}
