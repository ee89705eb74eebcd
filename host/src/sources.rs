//! Log sources: where lines enter. Each source (a file, stdin) is read on its
//! own thread and sends parsed [`Line`]s down one bounded channel, so a slow
//! detector applies back-pressure instead of growing memory, and a quiet
//! source never blocks a busy one.
//!
//! Lines are read as bytes: CRLF endings are stripped, invalid UTF-8 is
//! replaced (never dropped), and a line longer than `max_line_bytes` is cut
//! there and marked `truncated`, the rest of it skipped.

use crate::parse;
use chrono::Local;
use logarithm_detector::LogRecord;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Default cap on one line, bytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// How often a followed file is polled for growth or rotation.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// One input line, parsed.
#[derive(Debug, Clone)]
pub struct Line {
    /// Where it came from: a path, or `-` for stdin.
    pub origin: Arc<str>,
    /// 1-based line number within the origin (since it was opened).
    pub line_no: u64,
    /// The line as read (lossy UTF-8, no line ending).
    pub raw: String,
    /// The parsed record.
    pub record: LogRecord,
    /// The line was longer than the cap and was cut.
    pub truncated: bool,
}

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A log file.
    File(PathBuf),
    /// Standard input.
    Stdin,
}

impl SourceSpec {
    /// How the source is named in output and messages.
    pub fn name(&self) -> String {
        match self {
            SourceSpec::File(p) => p.display().to_string(),
            SourceSpec::Stdin => "-".into(),
        }
    }
}

/// The sources used when none are given: the system log file that exists.
pub fn default_sources() -> Result<Vec<SourceSpec>, String> {
    for candidate in ["/var/log/syslog", "/var/log/messages"] {
        if Path::new(candidate).exists() {
            return Ok(vec![SourceSpec::File(candidate.into())]);
        }
    }
    Err("no log source: give log file paths or -i for stdin (neither /var/log/syslog nor /var/log/messages exists)".into())
}

/// Reads every source to its end and returns the lines, in source order,
/// with the sources that failed (each with its reason). For batch jobs such
/// as training; the monitor streams instead.
pub fn read_all(specs: &[SourceSpec], max_line_bytes: usize) -> (Vec<Line>, Vec<String>) {
    let options = ReadOptions { follow: false, from_head: true, max_line_bytes };
    let stop = Arc::new(AtomicBool::new(false));
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    // One source at a time keeps the lines of each source together and in order.
    for spec in specs {
        let (tx, rx) = std::sync::mpsc::sync_channel(4096);
        let handles = spawn(std::slice::from_ref(spec), &options, &tx, &stop);
        drop(tx);
        lines.extend(rx);
        for (name, handle) in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(msg)) => failures.push(msg),
                Err(_) => failures.push(format!("the reader of {name} crashed")),
            }
        }
    }
    (lines, failures)
}

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Keep reading as files grow (`tail -F`); otherwise stop at their end.
    pub follow: bool,
    /// When following, read files present at start from their beginning
    /// rather than their end.
    pub from_head: bool,
    /// Cap on one line, bytes.
    pub max_line_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self { follow: false, from_head: true, max_line_bytes: DEFAULT_MAX_LINE_BYTES }
    }
}

/// What a source thread ends with.
pub type SourceResult = Result<(), String>;

/// Starts one reader thread per source. Each sends its lines to `tx` and
/// ends at end of input (or, when following, when `stop` is set). A source
/// that cannot be read ends with an error naming it.
pub fn spawn(
    specs: &[SourceSpec],
    options: &ReadOptions,
    tx: &SyncSender<Line>,
    stop: &Arc<AtomicBool>,
) -> Vec<(String, JoinHandle<SourceResult>)> {
    specs
        .iter()
        .map(|spec| {
            let (spec, options, tx, stop) = (spec.clone(), options.clone(), tx.clone(), stop.clone());
            let name = spec.name();
            let handle = thread::Builder::new()
                .name(format!("source {name}"))
                .spawn(move || match &spec {
                    SourceSpec::File(path) => read_file(path, &options, &tx, &stop),
                    SourceSpec::Stdin => {
                        let stdin = io::stdin().lock();
                        let origin: Arc<str> = "-".into();
                        let mut reader = LineReader::new(stdin, origin, options.max_line_bytes);
                        while let Some(line) = reader.next_line(true).map_err(|e| format!("cannot read stdin: {e}"))? {
                            if tx.send(line).is_err() {
                                break;
                            }
                        }
                        Ok(())
                    }
                })
                .expect("cannot spawn a source thread");
            (name, handle)
        })
        .collect()
}

/// Reads lines from a byte stream, keeping a partial last line until it is
/// completed (or the stream ends).
pub struct LineReader<R> {
    reader: R,
    origin: Arc<str>,
    max: usize,
    buf: Vec<u8>,
    dropped: usize,
    line_no: u64,
}

impl<R: BufRead> LineReader<R> {
    /// A reader of `reader`, naming its lines `origin`.
    pub fn new(reader: R, origin: Arc<str>, max_line_bytes: usize) -> Self {
        Self { reader, origin, max: max_line_bytes.max(1), buf: Vec::new(), dropped: 0, line_no: 0 }
    }

    /// The next complete line, or `None` when no complete line is available.
    /// With `at_eof_flush`, a partial last line at end of input is returned
    /// as a line (end of a file read once, end of stdin).
    pub fn next_line(&mut self, at_eof_flush: bool) -> io::Result<Option<Line>> {
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if at_eof_flush && (!self.buf.is_empty() || self.dropped > 0) {
                    return Ok(Some(self.take_line()));
                }
                return Ok(None);
            }
            let (chunk, ends_line) = match available.iter().position(|&b| b == b'\n') {
                Some(pos) => (&available[..pos], true),
                None => (available, false),
            };
            let room = self.max.saturating_sub(self.buf.len());
            let keep = chunk.len().min(room);
            self.buf.extend_from_slice(&chunk[..keep]);
            self.dropped += chunk.len() - keep;
            let consumed = chunk.len() + usize::from(ends_line);
            self.reader.consume(consumed);
            if ends_line {
                return Ok(Some(self.take_line()));
            }
        }
    }

    fn take_line(&mut self) -> Line {
        if self.buf.last() == Some(&b'\r') && self.dropped == 0 {
            self.buf.pop();
        }
        let raw = match String::from_utf8(std::mem::take(&mut self.buf)) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        let truncated = self.dropped > 0;
        self.dropped = 0;
        self.line_no += 1;
        let record = parse_record(&raw);
        Line { origin: self.origin.clone(), line_no: self.line_no, raw, record, truncated }
    }

    /// The underlying reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }
}

/// A raw line to a record: NDJSON when it is a JSON object with a message,
/// syslog (or plain) otherwise.
pub fn parse_record(raw: &str) -> LogRecord {
    if raw.starts_with('{') {
        if let Some(record) = parse::parse_json(raw) {
            return record;
        }
    }
    parse::parse_line(raw, Local::now())
}

fn open(path: &Path) -> Result<File, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if meta.is_dir() {
        return Err(format!("{} is a directory, not a log file", path.display()));
    }
    Ok(file)
}

fn read_file(path: &Path, options: &ReadOptions, tx: &SyncSender<Line>, stop: &AtomicBool) -> SourceResult {
    let origin: Arc<str> = path.display().to_string().into();
    let mut file = open(path)?;
    let mut inode = file.metadata().map(|m| (m.dev(), m.ino())).ok();
    if options.follow && !options.from_head {
        file.seek(SeekFrom::End(0)).map_err(|e| format!("cannot seek in {}: {e}", path.display()))?;
    }
    let mut reader = LineReader::new(BufReader::with_capacity(64 * 1024, file), origin.clone(), options.max_line_bytes);
    loop {
        let read = |reader: &mut LineReader<BufReader<File>>, flush| {
            reader.next_line(flush).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        while let Some(line) = read(&mut reader, !options.follow)? {
            if tx.send(line).is_err() {
                return Ok(());
            }
        }
        if !options.follow || stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        thread::sleep(POLL_INTERVAL);
        // Rotation (a new file at the path) or truncation (copytruncate):
        // finish the old file, then read the new one from its start.
        let position = reader.get_mut().stream_position().unwrap_or(0);
        match std::fs::metadata(path) {
            Ok(meta) if Some((meta.dev(), meta.ino())) != inode => {
                while let Some(line) = read(&mut reader, true)? {
                    if tx.send(line).is_err() {
                        return Ok(());
                    }
                }
                if let Ok(file) = open(path) {
                    inode = Some((meta.dev(), meta.ino()));
                    *reader.get_mut() = BufReader::with_capacity(64 * 1024, file);
                }
            }
            Ok(meta) if meta.len() < position => {
                reader.get_mut().seek(SeekFrom::Start(0)).map_err(|e| format!("cannot seek in {}: {e}", path.display()))?;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(input, "t".into(), max);
        std::iter::from_fn(|| r.next_line(true).unwrap()).collect()
    }

    #[test]
    fn crlf_missing_newline_and_invalid_utf8() {
        let got = lines(b"a\r\nb\xff\xfec\nlast", 100);
        let raws: Vec<_> = got.iter().map(|l| l.raw.as_str()).collect();
        assert_eq!(raws, ["a", "b\u{fffd}\u{fffd}c", "last"]);
        assert_eq!(got.iter().map(|l| l.line_no).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn long_lines_are_cut_and_marked_and_the_next_line_survives() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nnext\n");
        let got = lines(&input, 1000);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].raw.len(), got[0].truncated), (1000, true));
        assert_eq!((got[1].raw.as_str(), got[1].truncated), ("next", false));
    }

    #[test]
    fn partial_line_waits_for_its_end_when_following() {
        let mut r = LineReader::new(&b"part"[..], "t".into(), 100);
        assert!(r.next_line(false).unwrap().is_none());
    }
}
