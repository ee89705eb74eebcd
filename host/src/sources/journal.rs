//! Reading the systemd journal through libsystemd (`sd-journal`, via the
//! `systemd` crate): the system journal, the journal files of a directory
//! (`--journal-dir`, like `journalctl -D`), or one journal file (named as
//! a path, like `journalctl --file`).
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
use systemd::journal::{Journal, JournalWaitResult, OpenDirectoryOptions, OpenFilesOptions, OpenOptions};

/// How long one wait for new entries lasts before the stop flag is checked.
const WAIT: Duration = Duration::from_millis(250);

/// The name under which a journal's cursor is checkpointed.
pub fn checkpoint_name(dir: Option<&Path>) -> String {
    match dir {
        None => "system".into(),
        Some(d) => std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()).display().to_string(),
    }
}

/// The journal's magic, the first bytes of every journal file.
const MAGIC: &[u8; 8] = b"LPKSHHRH";

/// Whether a file's name is a journal file's (`*.journal`, or `*.journal~`
/// for one journald set aside as dirty).
pub fn journal_name(name: &str) -> bool {
    name.ends_with(".journal") || name.ends_with(".journal~")
}

/// Whether `path` is a journal file, by its first bytes (a text log may be
/// called `x.journal`), or by its name when it cannot be read (so the
/// journal's reader says why, and what to do), which is read as a journal,
/// not as text: named on the command line, its binary pages were scored
/// and learned as lines.
pub fn is_journal_file(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    let name = path.to_string_lossy();
    path.is_file()
        && match std::fs::File::open(path) {
            Ok(mut f) => f.read_exact(&mut magic).is_ok() && &magic == MAGIC,
            Err(_) => journal_name(&name),
        }
}

/// What is read, for messages.
fn describe(at: Option<&Path>) -> String {
    match at {
        None => "the system journal".to_owned(),
        Some(p) if p.is_dir() => format!("journal directory {}", p.display()),
        Some(p) => format!("journal file {}", p.display()),
    }
}

fn open(at: Option<&Path>) -> Result<Journal, String> {
    readable(at)?;
    let Some(path) = at else {
        return OpenOptions::default().system(true).local_only(false).open().map_err(|e| format!("cannot open the system journal: {e}"));
    };
    use std::os::unix::ffi::OsStrExt;
    let c_path = || std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("{} has a NUL byte in its name", describe(at)));
    if path.is_dir() {
        OpenDirectoryOptions::default().open_directory(c_path()?.as_c_str())
    } else if path.is_file() {
        OpenFilesOptions::default().open_files([c_path()?.as_c_str()])
    } else {
        return Err(format!("journal directory {} does not exist or is not a directory", path.display()));
    }
    .map_err(|e| format!("cannot open {}: {e}", describe(at)))
}

/// Counts the journal files libsystemd would open at `path` (a file; or
/// a directory and its machine-id directories, where the system journal
/// opens only `system*.journal` files: not a journal-remote's files, a
/// user's or another namespace's), and those it cannot open or list.
fn visit(path: &Path, top: bool, system_only: bool, files: &mut usize, unreadable: &mut Vec<(std::path::PathBuf, std::io::Error)>) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if path.is_dir() {
        let machine_id = name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if !top && !machine_id {
            return;
        }
        match std::fs::read_dir(path) {
            Ok(entries) => entries.flatten().for_each(|e| visit(&e.path(), false, system_only, files, unreadable)),
            Err(e) => unreadable.push((path.to_path_buf(), e)),
        }
    } else if top || journal_name(&name) && (!system_only || name.starts_with("system")) {
        *files += 1;
        if let Err(e) = std::fs::File::open(path) {
            unreadable.push((path.to_path_buf(), e));
        }
    }
}

/// libsystemd skips the journal files it may not read without a word: a
/// service user outside the `systemd-journal` group read nothing and said
/// nothing (review). None readable is an error, some a warning.
fn readable(at: Option<&Path>) -> Result<(), String> {
    let roots: Vec<&Path> = match at {
        None => vec![Path::new("/var/log/journal"), Path::new("/run/log/journal")],
        Some(p) => vec![p],
    };
    // Journal files, and what could not be opened or listed, with why.
    let (mut files, mut unreadable) = (0, Vec::new());
    for root in roots.into_iter().filter(|r| r.exists()) {
        visit(root, true, at.is_none(), &mut files, &mut unreadable);
    }
    let Some((first, why)) = unreadable.first() else { return Ok(()) };
    let what = describe(at);
    let hint = "give the user read access (the system journal's files are readable by the group systemd-journal: add the user to it)";
    if unreadable.len() >= files.max(1) {
        return Err(format!("cannot read {what} ({}: {why}); {hint}", first.display()));
    }
    tracing::warn!(
        "cannot read {} of the {files} files of {what} ({}: {why}), so their entries are not read; {hint}",
        unreadable.len(),
        first.display()
    );
    Ok(())
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
    let mut journal = open(dir)?;
    let fail = |what: &str, e: systemd::Error| format!("cannot {what} {}: {e}", describe(dir));
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
    tracing::debug!("reading {} from {start}", describe(dir));

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
