//! Log sources: where lines enter. Files (paths, globs, directories) are
//! tailed by one thread, the journal is read by another, stdin by a third;
//! all send parsed [`Line`]s down one bounded channel, so a slow detector
//! applies back-pressure instead of growing memory, and a quiet source never
//! blocks a busy one. Lines travel in chunks ([`LineSender`]). The same layer serves `logarithm monitor` (following)
//! and `logarithm-trainer train` (reading to the end).
//!
//! Every line carries its [`Position`]; see [`crate::checkpoint`] for how
//! positions make restarts lossless.

mod files;
mod gzipped;
mod journal;
pub mod lines;

use crate::checkpoint::{Checkpoints, Position};
use chrono::{DateTime, FixedOffset, Local, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use lines::LineReader;
use logarithm_detector::{LogRecord, parse};
use std::cell::Cell;
use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::LocalKey;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Default cap on one line, bytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// The most of one line ever held, bytes, however long `--max-line-bytes`
/// lets a record be: a line that starts a JSON object is read whole up to
/// this, parsed, and its fields then cut to `--max-line-bytes`; the filter
/// passes lines on whole up to this.
pub const WHOLE_LINE_BYTES: usize = 16 << 20;

/// One input line, parsed.
#[derive(Debug, Clone)]
pub struct Line {
    /// Where it came from: a path, `journal`, or `-` for stdin.
    pub origin: Arc<str>,
    /// 1-based line (or entry) number within the origin, since it was opened.
    pub line_no: u64,
    /// The line as read (lossy UTF-8, no line ending); for the journal, the message.
    pub raw: String,
    /// The parsed record.
    pub record: LogRecord,
    /// The line was longer than the cap and was cut.
    pub truncated: bool,
    /// Other fields worth showing (journal `unit`, `pid`; NDJSON extras).
    pub extra: Vec<(String, String)>,
    /// Where to resume after this line.
    pub position: Position,
    /// Why the line is passed on unscored (a bug hit while parsing it),
    /// when it is.
    pub error: Option<String>,
}

/// How many lines a reader hands over at once: handing over each line on
/// its own (a wake-up of the scoring thread, and of the reader when the
/// channel was full) cost more than scoring it (issue 11).
const CHUNK_LINES: usize = 128;

/// Lines in the order they were read, handed over together.
pub type Chunk = Vec<Line>;

/// A channel for the readers' lines, holding about `lines` lines.
pub fn channel(lines: usize) -> (SyncSender<Chunk>, Receiver<Chunk>) {
    sync_channel(lines.div_ceil(CHUNK_LINES).max(1))
}

/// A reader's end of the channel. It gathers lines into chunks and hands a
/// chunk over when it is full, when the reader is about to wait for input
/// ([`LineSender::flush`]: every reader calls it before it waits, so a
/// quiet source's lines are never held back), and when it is dropped.
pub struct LineSender {
    tx: SyncSender<Chunk>,
    chunk: Chunk,
}

/// The receiving end is gone (the monitor stopped): the reader ends.
#[derive(Debug)]
pub struct Gone;

impl LineSender {
    pub fn new(tx: SyncSender<Chunk>) -> Self {
        Self { tx, chunk: Vec::with_capacity(CHUNK_LINES) }
    }

    /// Queues `line`, handing the chunk over when it is full.
    pub fn send(&mut self, line: Line) -> Result<(), Gone> {
        self.chunk.push(line);
        if self.chunk.len() >= CHUNK_LINES { self.flush() } else { Ok(()) }
    }

    /// Hands over the lines queued, if any (blocking while the channel is
    /// full: back-pressure).
    pub fn flush(&mut self) -> Result<(), Gone> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_LINES));
        self.tx.send(chunk).map_err(|_| Gone)
    }
}

impl Drop for LineSender {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Runs `parse` for the line `line_no` of `origin`, containing a panic (a
/// bug not found yet): it costs that line, which is passed on as a plain
/// message with the reason, not the reader (issue 10).
pub fn contained<T>(origin: &str, line_no: u64, parse: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).map_err(|panic| {
        let why = panic_message(&*panic);
        let msg = format!("parsing failed (a bug: {why}); passed on unscored");
        tracing::error!("{origin} line {line_no}: {msg}");
        msg
    })
}

/// The message a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default()
}

/// The first wait before a failed reader is restarted; it doubles after
/// each failure, up to [`MAX_RESTART_BACKOFF`], and starts again from here
/// once a reader has run that long.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(60);

/// A reader job: reads with the options given, sends to the sender, stops
/// when the flag is set.
type Job = dyn Fn(&ReadOptions, &mut LineSender, &AtomicBool) -> SourceResult + Send + Sync;

/// Runs a follower's reader and brings it back when it fails (issue 10):
/// an error or a panic is logged at error level with its cause, and the
/// reader is restarted after a backoff (1 s doubling to 60 s), resuming
/// just after the last line it delivered. A reader that fails on its first
/// start, before delivering anything (a journal directory that is not
/// there), has failed for good: that is returned, as without supervision.
fn supervised(name: &str, options: &ReadOptions, tx: &SyncSender<Chunk>, stop: &Arc<AtomicBool>, job: Arc<Job>) -> SourceResult {
    let mut resume = (*options.checkpoints).clone();
    let mut backoff = RESTART_BACKOFF;
    for attempt in 1.. {
        let (inner_tx, inner_rx) = sync_channel::<Chunk>(1);
        // The caller's list when it keeps one (the monitor checkpoints
        // from it), so both see the same positions.
        let opened_at_end = options.opened_at_end.clone().unwrap_or_default();
        let options = ReadOptions { checkpoints: Arc::new(resume.clone()), opened_at_end: Some(opened_at_end.clone()), ..options.clone() };
        let (job, stop_job) = (job.clone(), stop.clone());
        let started = Instant::now();
        let handle = thread::Builder::new()
            .name(format!("reader {name}"))
            .spawn(move || job(&options, &mut LineSender::new(inner_tx), &stop_job))
            .map_err(|e| format!("cannot start the reader of {name}: {e}"))?;
        let mut delivered = false;
        for chunk in inner_rx.iter() {
            for line in &chunk {
                resume.record(&line.position);
            }
            delivered = true;
            if tx.send(chunk).is_err() {
                break; // the monitor is gone; the reader's next send fails and it ends
            }
        }
        drop(inner_rx);
        // Files that delivered nothing resume where they were opened.
        for position in opened_at_end.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            resume.record_if_new(position);
        }
        let why = match handle.join() {
            Ok(Ok(problems)) => return Ok(problems),
            Ok(Err(msg)) if attempt == 1 && !delivered => return Err(msg),
            Ok(Err(msg)) => msg,
            Err(panic) => format!("it panicked (a bug: {})", panic_message(&*panic)),
        };
        if stop.load(Ordering::Relaxed) {
            return Err(why);
        }
        // What the restarted reader finds rotated and written since then
        // is news to it, as after a monitor's restart.
        resume.saved_at = Some(std::time::SystemTime::now());
        if started.elapsed() >= MAX_RESTART_BACKOFF {
            backoff = RESTART_BACKOFF;
        }
        tracing::error!("the reader of {name} failed: {why}; restarting it in {} s", backoff.as_secs());
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(Vec::new());
            }
            thread::sleep(Duration::from_millis(100));
        }
        backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
    }
    unreachable!("the attempts never run out")
}

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A file, a glob (`/var/log/*.log`) or a directory.
    Path(String),
    /// Standard input.
    Stdin,
    /// The systemd journal: the system's, or the journal files in a directory.
    Journal(Option<PathBuf>),
}

impl SourceSpec {
    /// How the source is named in output and messages.
    pub fn name(&self) -> String {
        match self {
            SourceSpec::Path(p) => p.clone(),
            SourceSpec::Stdin => "-".into(),
            SourceSpec::Journal(None) => "journal".into(),
            SourceSpec::Journal(Some(dir)) => format!("journal:{}", dir.display()),
        }
    }
}

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Keep reading as sources grow (`tail -F`, journal follow); otherwise
    /// stop at their current end.
    pub follow: bool,
    /// When following, read files present at start (with no checkpoint)
    /// from their beginning rather than their end.
    pub from_head: bool,
    /// Cap on one line, bytes.
    pub max_line_bytes: usize,
    /// Descend into subdirectories of directories given as paths.
    pub recursive: bool,
    /// Only entries at or after this time (µs since the epoch); for the
    /// journal this is where reading starts.
    pub since_us: Option<i64>,
    /// Where to resume (following only).
    pub checkpoints: Arc<Checkpoints>,
    /// Where files and journals were opened at their end (following, no
    /// checkpoint), kept by the monitor and by a reader's supervisor: a
    /// restart of the monitor or of a reader resumes a source that has
    /// delivered nothing there, not at its end by then, which would lose
    /// the lines written while it was down.
    pub opened_at_end: Option<Arc<Mutex<Vec<Position>>>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            follow: false,
            from_head: true,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            recursive: false,
            since_us: None,
            checkpoints: Arc::default(),
            opened_at_end: None,
        }
    }
}

/// What a source thread ends with: the problems it had (already logged as
/// warnings), or a fatal error.
pub type SourceResult = Result<Vec<String>, String>;

/// True when a systemd journal is there to read.
pub fn journal_available() -> bool {
    ["/run/systemd/journal", "/var/log/journal"].iter().any(|p| Path::new(p).is_dir())
}

/// The sources used when none are given: the system log file that exists,
/// plus the journal when there is one.
pub fn default_sources() -> Result<Vec<SourceSpec>, String> {
    let mut specs: Vec<SourceSpec> = ["/var/log/syslog", "/var/log/messages"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| SourceSpec::Path((*p).to_owned()))
        .into_iter()
        .collect();
    if journal_available() {
        specs.push(SourceSpec::Journal(None));
    }
    if specs.is_empty() {
        return Err("no log source: give log paths, -j for the journal or -i for stdin (there is no /var/log/syslog, /var/log/messages or systemd journal here)".into());
    }
    Ok(specs)
}

/// Raises this process's soft limit on open files to its hard limit, and
/// says what it is (once a process): a follower holds one descriptor per file it follows,
/// and the usual soft limit of a service (1,024) is reached by a glob over a
/// busy log directory, after which nothing can be opened (logs, the
/// checkpoints, a new model). The hard limit is the administrator's
/// (`LimitNOFILE=` in a systemd unit).
pub fn raise_open_files_limit() {
    static RAISED: std::sync::Once = std::sync::Once::new();
    RAISED.call_once(raise_now);
}

fn raise_now() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid pointer to an rlimit for getrlimit/setrlimit to read and fill.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    tracing::debug!("up to {} open files", limit.rlim_cur);
}

/// Refuses what a follower is named that it can never read
/// ([`files::unfollowable`]), at start.
pub fn check_followable(specs: &[SourceSpec]) -> Result<(), String> {
    specs.iter().filter_map(|s| if let SourceSpec::Path(p) = s { files::unfollowable(p) } else { None }).next().map_or(Ok(()), Err)
}

/// A log path given on the command line, which must be UTF-8 (paths are
/// patterns, checkpointed as text); for clap's `try_map`. One that is not
/// is named, with the way to read it: a directory scan reads any name.
pub fn utf8_path(path: std::ffi::OsString) -> Result<String, String> {
    path.into_string().map_err(|p| {
        // The nearest directory above it whose name is UTF-8: its own, or
        // one that -r reads down from.
        let path = Path::new(&p);
        let parent = path.parent().filter(|d| d.to_str().is_some()).map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d });
        match parent {
            Some(dir) => format!(
                "not valid UTF-8, as a log path must be: name its directory ({}) to read the files in it, whatever their names",
                dir.display()
            ),
            None => {
                let above = path.ancestors().skip(1).find(|d| d.to_str().is_some_and(|d| !d.is_empty())).unwrap_or(Path::new("."));
                format!(
                    "not valid UTF-8, as a log path must be: name a directory above it ({}) with -r to read the files under it, whatever their names",
                    above.display()
                )
            }
        }
    })
}

/// Starts the reader threads: one for all file paths, one per journal, one
/// for stdin. Each sends its lines to `tx` (made by [`channel`]) and ends
/// at end of input (or, when following, when `stop` is set or the receiver
/// is gone).
pub fn spawn(
    specs: &[SourceSpec],
    options: &ReadOptions,
    tx: &SyncSender<Chunk>,
    stop: &Arc<AtomicBool>,
) -> Vec<(String, JoinHandle<SourceResult>)> {
    let mut handles = Vec::new();
    // Every reader of files, the trainer's too (a batch scan opens every
    // file before reading any).
    raise_open_files_limit();
    // A journal file named as a path is read as a journal (`journalctl --file`).
    let journal_file = |p: &String| journal::is_journal_file(Path::new(p));
    // A pipe named as a path (`<(zcat app.log.3.gz)`, a FIFO) is read to its
    // end, as stdin is, by a batch scan (`--once`, the trainer): it was
    // asked for by name, as `grep` reads one. A follower refuses it (a pipe
    // has no offsets to resume at), saying how to pipe it in; so does any
    // reader for one a glob or a directory holds, which could block it.
    let pipe = |p: &String| !options.follow && fs::metadata(p).is_ok_and(|m| m.file_type().is_fifo());
    let paths: Vec<String> = specs
        .iter()
        .filter_map(|s| if let SourceSpec::Path(p) = s { Some(p.clone()) } else { None })
        .filter(|p| !journal_file(p) && !pipe(p))
        .collect();
    let start = |name: String, job: Box<dyn FnOnce() -> SourceResult + Send>| {
        let handle = thread::Builder::new().name(format!("source {name}")).spawn(job).expect("cannot spawn a source thread");
        (name, handle)
    };
    // A follower's readers are supervised (restarted when they fail); a
    // batch scan's run once, and their failure is reported.
    let run = |name: String, job: Arc<Job>| -> Box<dyn FnOnce() -> SourceResult + Send> {
        let (options, tx, stop) = (options.clone(), tx.clone(), stop.clone());
        if options.follow {
            Box::new(move || supervised(&name, &options, &tx, &stop, job))
        } else {
            Box::new(move || job(&options, &mut LineSender::new(tx), &stop))
        }
    };
    if !paths.is_empty() {
        let name = paths.join(", ");
        handles.push(start(name.clone(), run(name, Arc::new(move |options, tx, stop| files::tail(&paths, options, tx, stop)))));
    }
    for spec in specs {
        let (options, tx) = (options.clone(), tx.clone());
        match spec {
            SourceSpec::Path(p) if journal_file(p) => {
                let file = Some(std::path::PathBuf::from(p));
                // Named, it is read whole as a named file is (the trainer's
                // window for named files applies line by line), not from
                // the journals' start (`--since`, the training window).
                let whole = move |options: &ReadOptions, tx: &mut LineSender, stop: &AtomicBool| {
                    journal::read(file.as_deref(), &ReadOptions { since_us: None, ..options.clone() }, tx, stop)
                };
                let job = run(spec.name(), Arc::new(whole));
                handles.push(start(spec.name(), job));
            }
            SourceSpec::Path(p) if pipe(p) => {
                let path = p.clone();
                let job = run(spec.name(), Arc::new(move |options, tx, _| read_pipe(&path, options, tx)));
                handles.push(start(spec.name(), job));
            }
            SourceSpec::Path(_) => {}
            SourceSpec::Journal(dir) => {
                let dir = dir.clone();
                let job = run(spec.name(), Arc::new(move |options, tx, stop| journal::read(dir.as_deref(), options, tx, stop)));
                handles.push(start(spec.name(), job));
            }
            SourceSpec::Stdin => handles.push(start("-".into(), Box::new(move || read_stdin(&options, &mut LineSender::new(tx))))),
        }
    }
    handles
}

fn read_stdin(options: &ReadOptions, tx: &mut LineSender) -> SourceResult {
    read_stream("-", "stdin", io::stdin(), options, tx)
}

/// A pipe named as a path, read to its end (a batch scan only).
fn read_pipe(path: &str, options: &ReadOptions, tx: &mut LineSender) -> SourceResult {
    let pipe = fs::File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    read_stream(path, path, pipe, options, tx)
}

/// Lines from a stream, to its end: stdin, or a pipe named as a path.
/// `origin` names its lines in output, `what` the stream in errors.
fn read_stream(origin: &str, what: &str, input: impl io::Read, options: &ReadOptions, tx: &mut LineSender) -> SourceResult {
    let origin: Arc<str> = origin.into();
    let max = options.max_line_bytes;
    let mut reader = LineReader::new(io::BufReader::with_capacity(64 * 1024, input), 0, max).keeping_objects_whole(WHOLE_LINE_BYTES);
    let mut cuts = CutWarnings::new(origin.clone());
    let mut line_no = 0;
    loop {
        // The next read may block: hand over what was read first.
        if !reader.has_buffered_line() && tx.flush().is_err() {
            break;
        }
        let Some(raw) = reader.next_line(true).map_err(|e| format!("cannot read {what}: {e}"))? else { break };
        line_no += 1;
        let line = if raw.truncated {
            long_line(&origin, line_no, raw.text, max, Position::None, &mut cuts)
        } else {
            line_from_text(&origin, line_no, raw.text, false, Position::None)
        };
        if tx.send(line).is_err() {
            break;
        }
    }
    Ok(Vec::new())
}

/// The local time zone: chrono's [`Local`], remembering per thread the
/// last minute it converted each way. `Local` reads the clock and looks its
/// rules up on every conversion, and each line needs two (issue 11: a tenth
/// of a file reader's time). Exact: zones change their offset only on a
/// whole minute.
#[derive(Debug, Clone, Copy)]
pub struct LocalZone;

thread_local! {
    /// The last (minute, offsets) converted from local time, and from UTC.
    static FROM_LOCAL: Cell<Option<(i64, MappedLocalTime<FixedOffset>)>> = const { Cell::new(None) };
    static FROM_UTC: Cell<Option<(i64, FixedOffset)>> = const { Cell::new(None) };
}

thread_local! {
    /// The coarse clock's second when [`LocalZone::now`] last read the time,
    /// and that time.
    static NOW: Cell<Option<(i64, DateTime<LocalZone>)>> = const { Cell::new(None) };
}

impl LocalZone {
    /// The current time in the local zone, read at most once a second per
    /// thread: whether a second has passed is asked of the coarse clock
    /// (kept by the kernel at every tick, read without a system call or the
    /// TSC). Reading the precise one for every line cost as much as
    /// parsing the line on a VM (issue 11). Lines only need `now` to the
    /// day, to give dates without a year one.
    pub fn now() -> DateTime<Self> {
        let mut coarse = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `coarse` is a valid timespec to write to; the call cannot
        // fail for this clock on Linux, and a failure leaves 0, which only
        // costs a precise read below.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut coarse) };
        let read = || Utc::now().with_timezone(&Self);
        if coarse.tv_sec == 0 { read() } else { remembered(&NOW, coarse.tv_sec, read) }
    }
}

/// The value `cell` holds for `key`, or else `compute`'s, which it then
/// holds (one entry per thread: the last key asked for).
fn remembered<T: Copy + 'static>(cell: &'static LocalKey<Cell<Option<(i64, T)>>>, key: i64, compute: impl FnOnce() -> T) -> T {
    cell.with(|last| match last.get() {
        Some((k, value)) if k == key => value,
        _ => {
            let value = compute();
            last.set(Some((key, value)));
            value
        }
    })
}

/// The minute a date and time is in, as a number.
fn minute_of(t: &NaiveDateTime) -> i64 {
    t.and_utc().timestamp().div_euclid(60)
}

impl TimeZone for LocalZone {
    type Offset = FixedOffset;

    fn from_offset(_: &FixedOffset) -> Self {
        Self
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<FixedOffset> {
        self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<FixedOffset> {
        remembered(&FROM_LOCAL, minute_of(local), || Local.offset_from_local_datetime(local))
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> FixedOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
        remembered(&FROM_UTC, minute_of(utc), || Local.offset_from_utc_datetime(utc))
    }
}

/// A text line (file, stdin) to a [`Line`], by the core's
/// [`parse::parse_text`]: NDJSON when it is a JSON object with a message
/// (other fields kept as extras), syslog or plain otherwise.
pub(crate) fn line_from_text(origin: &Arc<str>, line_no: u64, raw: String, truncated: bool, position: Position) -> Line {
    let (record, extra, error) = match contained(origin, line_no, || parse::parse_text(&raw, &LocalZone::now())) {
        Ok((record, extra)) => (record, extra, None),
        Err(why) => (LogRecord::from_message(raw.clone()), Vec::new(), Some(why)),
    };
    Line { origin: origin.clone(), line_no, raw, record, truncated, extra, position, error }
}

/// A line longer than `max` bytes (`raw`: cut by the reader, or kept whole
/// because it starts a JSON object, see
/// [`LineReader::keeping_objects_whole`]) to a [`Line`] marked truncated,
/// with at most `max` bytes of text in each of its raw line, record and
/// extras, as a line of `max` bytes would have. A JSON object that parses
/// whole is read as a record (its host, source and severity kept) and its
/// fields are then cut ([`fit`]); anything else is cut to `max` first and
/// read as a line cut there always was. `cuts` says so in the log.
pub(crate) fn long_line(origin: &Arc<str>, line_no: u64, mut raw: String, max: usize, position: Position, cuts: &mut CutWarnings) -> Line {
    let object = (raw.len() > max).then(|| contained(origin, line_no, || parse::object_record(&raw, &LocalZone::now())));
    cut_to(&mut raw, max);
    let whole = matches!(object, Some(Ok(Some(_))));
    let line = match object {
        Some(Ok(Some((mut record, mut extra)))) => {
            fit(&mut record, max);
            fit_extras(&mut extra, max);
            Line { origin: origin.clone(), line_no, raw, record, truncated: true, extra, position, error: None }
        }
        Some(Err(why)) => Line {
            origin: origin.clone(),
            line_no,
            record: LogRecord::from_message(raw.clone()),
            raw,
            truncated: true,
            extra: Vec::new(),
            position,
            error: Some(why),
        },
        None | Some(Ok(None)) => line_from_text(origin, line_no, raw, true, position),
    };
    cuts.note(&line, max, whole);
    line
}

/// Cuts a record read from a line longer than `max` bytes down to `max`
/// bytes of fields (the host and source first, to a quarter each, then the
/// message), on character boundaries, so that a batch carries no more than
/// `--batch-size` × `--max-line-bytes` into the component, as
/// `engine::check_batch` promised.
pub(crate) fn fit(record: &mut LogRecord, max: usize) {
    cut_to(&mut record.source, max / 4);
    cut_to(&mut record.host, max / 4);
    cut_to(&mut record.message, max - record.source.len() - record.host.len());
}

/// Cuts `s` to at most `max` bytes, on a character boundary, and lets go
/// of the memory beyond: a line kept whole to be parsed may have held
/// 16 MiB, and a batch of cut lines must hold no more than they say.
fn cut_to(s: &mut String, max: usize) {
    if s.len() > max {
        s.truncate(s.floor_char_boundary(max));
        s.shrink_to_fit();
    }
}

/// Cuts the extras of a record read from a line longer than `max` bytes to
/// `max` bytes in all, keys and values, in their order: what does not fit
/// is left out.
fn fit_extras(extra: &mut Vec<(String, String)>, max: usize) {
    let mut left = max;
    extra.retain_mut(|(key, value)| {
        if key.len() > left {
            left = 0;
            return false;
        }
        left -= key.len();
        cut_to(value, left);
        left -= value.len();
        true
    });
}

/// How often the lines of one source cut at `--max-line-bytes` are told in
/// the log, after the first.
const CUT_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The warnings about the lines of one source (a file, stdin) longer than
/// `--max-line-bytes`: the first at once, saying where; then at most one
/// a minute, counting the lines since, so that a file of long lines does
/// not flood the log; and the count not told yet when the source is done.
/// A file with CR line endings is read as one long line (only LF ends a
/// line, as for rsyslog, Fluent Bit and Vector): the warning says so, and
/// how to convert it.
pub(crate) struct CutWarnings {
    origin: Arc<str>,
    /// Lines cut since the last warning.
    untold: u64,
    /// The last of them.
    last_line: u64,
    /// When the last warning was given.
    told: Option<Instant>,
}

impl CutWarnings {
    pub(crate) fn new(origin: Arc<str>) -> Self {
        Self { origin, untold: 0, last_line: 0, told: None }
    }

    /// `stdin`, or the file's path.
    fn name(&self) -> &str {
        if &*self.origin == "-" { "stdin" } else { &self.origin }
    }

    /// Counts `line`, cut to `max` bytes (`whole`: a JSON record read whole,
    /// its fields cut), and warns when it is time.
    fn note(&mut self, line: &Line, max: usize, whole: bool) {
        self.untold += 1;
        self.last_line = line.line_no;
        if self.told.is_some_and(|t| t.elapsed() < CUT_WARNING_EVERY) {
            return;
        }
        let what = if whole {
            format!("a JSON record longer than --max-line-bytes ({max} bytes): read whole, its fields cut to that and marked truncated")
        } else {
            format!("longer than --max-line-bytes ({max} bytes): cut there and marked truncated, the rest of the line skipped")
        };
        let since = match self.untold - 1 {
            0 => String::new(),
            n => format!("; {n} lines before it were cut since the last warning"),
        };
        // The line holds no LF: any CR in it is a line end of another system.
        let cr = if line.raw.contains('\r') {
            let convert = if &*self.origin == "-" {
                "pipe it through tr '\\r' '\\n'".to_owned()
            } else {
                format!("convert it with tr '\\r' '\\n' < {0} > {0}.lf", self.origin)
            };
            format!(
                "; it holds carriage returns (CR) and no line feed: {} seems to use CR line endings, which end no line here (LF does): {convert}",
                self.name()
            )
        } else {
            String::new()
        };
        tracing::warn!("{} line {}: {what}{since}{cr}", self.name(), line.line_no);
        self.untold = 0;
        self.told = Some(Instant::now());
    }
}

impl Drop for CutWarnings {
    fn drop(&mut self) {
        if self.untold > 0 {
            tracing::warn!(
                "{}: {} more lines longer than --max-line-bytes were cut since the last warning, the last at line {}",
                self.name(),
                self.untold,
                self.last_line
            );
        }
    }
}

/// A raw line to a record (the parsing [`spawn`]'s readers apply).
pub fn parse_record(raw: &str) -> LogRecord {
    parse::parse_text(raw, &LocalZone::now()).0
}

#[cfg(test)]
mod tests {
    /// Issue 11: [`super::LocalZone`] converts exactly like chrono's `Local`,
    /// around both DST changes of a zone that has them. The zone is the
    /// process's (`TZ`), so the test runs itself again in a child process
    /// with a POSIX zone rule (which needs no tzdata), and in this process's
    /// own zone too.
    #[test]
    fn local_zone_converts_like_chrono_local() {
        use super::LocalZone;
        use chrono::{Local, NaiveDate, TimeZone};
        const CHILD: &str = "LOGARITHM_TEST_TZ_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "sources::tests::local_zone_converts_like_chrono_local", "--test-threads", "1"])
                .env("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
                .env(CHILD, "1")
                .status()
                .unwrap();
            assert!(status.success(), "in the zone CET/CEST");
        }
        let mut offsets = std::collections::BTreeSet::new();
        for day in [(2026, 3, 29), (2026, 10, 25), (2026, 1, 1)] {
            let start = NaiveDate::from_ymd_opt(day.0, day.1, day.2).unwrap().and_hms_opt(0, 0, 0).unwrap();
            // Every 7 minutes and 13 seconds for a day: through the change,
            // minutes repeated and not.
            for step in 0..200 {
                let t = start + chrono::Duration::seconds(step * 433);
                let (ours, theirs) = (LocalZone.from_local_datetime(&t), Local.from_local_datetime(&t));
                assert_eq!(ours.map(|d| d.fixed_offset()), theirs.map(|d| d.fixed_offset()), "{t} local");
                let (ours, theirs) = (LocalZone.from_utc_datetime(&t), Local.from_utc_datetime(&t));
                assert_eq!(ours.fixed_offset(), theirs.fixed_offset(), "{t} UTC");
                offsets.insert(theirs.offset().local_minus_utc());
            }
        }
        if std::env::var_os(CHILD).is_some() {
            assert_eq!(offsets.into_iter().collect::<Vec<_>>(), [3600, 7200], "the child's zone has summer time");
        }
    }

    #[test]
    fn a_record_of_a_long_line_is_cut_to_fit_on_char_boundaries() {
        let mut r =
            super::LogRecord { source: "é".repeat(100), host: "h".repeat(10), message: "日本".repeat(1000), ..Default::default() };
        super::fit(&mut r, 101);
        assert_eq!((r.source.len(), r.host.len()), (24, 10));
        assert!(r.source.len() + r.host.len() + r.message.len() <= 101 && r.message.len() >= 64, "{r:?}");
    }

    /// Review: an NDJSON record longer than `--max-line-bytes` lost its
    /// host, source and severity (the line was cut before it was parsed,
    /// and no longer parsed). Read whole, it is a record, its fields then
    /// cut to the cap; anything else is cut first and read as before.
    #[test]
    fn a_long_json_record_keeps_its_structure() {
        use super::*;
        let origin: Arc<str> = "big.ndjson".into();
        let mut cuts = CutWarnings::new(origin.clone());
        let message = format!("Out of memory: Killed process {}", "x".repeat(70_000));
        let json = serde_json::json!({"host": "db01", "ident": "kernel", "priority": 2, "message": message, "trace": "é".repeat(50_000), "pid": 7});
        for bom in ["", "\u{feff}"] {
            let max = 1000;
            let line = long_line(&origin, 3, format!("{bom}{json}"), max, Position::None, &mut cuts);
            let r = &line.record;
            assert_eq!((r.host.as_str(), r.source.as_str(), r.priority), ("db01", "kernel", Some(2)));
            assert!(r.message.starts_with("Out of memory: Killed process xx") && r.message.len() == max - 10, "{}", r.message.len());
            assert!(line.truncated && line.error.is_none() && line.raw.len() <= max && (bom.is_empty() || line.raw.starts_with(bom)));
            assert_eq!(line.extra.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["trace"], "the rest of the extras do not fit");
            assert_eq!(line.extra[0].1.len(), max - 5 - 1, "cut on a character boundary");
            // What was cut off is let go of: a batch of such lines holds
            // what it says, not the lines they were cut from.
            for s in [&line.raw, &r.message, &line.extra[0].1] {
                assert!(s.capacity() <= 2 * max, "{} bytes kept for {}", s.capacity(), s.len());
            }
        }
        // Not an object, or one that does not parse whole: cut to the cap
        // and read as a line.
        for raw in [format!("Nov  2 08:00:00 web01 kernel: {message}"), format!("{{\"message\": \"{message}"), format!("{json} trailing")] {
            let line = long_line(&origin, 4, raw.clone(), 100, Position::None, &mut cuts);
            assert_eq!((line.raw.as_str(), line.truncated), (&raw[..100], true));
            assert_eq!(line.record, parse_record(&raw[..100]));
        }
        // A cut raw line of multi-byte characters stays whole characters.
        let line = long_line(&origin, 5, "🔥".repeat(10), 5, Position::None, &mut cuts);
        assert_eq!((line.raw.as_str(), line.record.message.as_str()), ("🔥", "🔥"));
    }

    /// Issue 10: a panic while handling one line costs that line only.
    #[test]
    fn a_panic_in_parsing_is_contained() {
        assert_eq!(super::contained("x.log", 7, || 42), Ok(42));
        let err = super::contained("x.log", 8, || -> u32 { panic!("boom at byte 3") }).unwrap_err();
        assert!(err.contains("boom at byte 3") && err.contains("unscored"), "{err}");
    }

    /// Issue 10: a follower's reader that fails after reading (here: it
    /// panics) is restarted after the backoff, and resumes just after the
    /// last line it delivered; one that fails on its first start, before
    /// reading anything, has failed for good and is not restarted.
    #[test]
    fn a_failed_reader_comes_back_where_it_stopped() {
        use super::*;
        use crate::checkpoint::{FilePosition, Fingerprint};
        use std::sync::atomic::AtomicU32;
        let at = |offset| {
            Position::File(FilePosition {
                path: Path::new("a.log").into(),
                dev: 1,
                ino: 2,
                offset,
                fingerprint: Fingerprint::of(b"head"),
                line: 0,
            })
        };
        let attempts = Arc::new(AtomicU32::new(0));
        let counted = attempts.clone();
        let job: Arc<Job> = Arc::new(move |options, tx, _stop| {
            let origin: Arc<str> = "a.log".into();
            // Where a real reader would resume: the checkpoint it was given.
            let from = options.checkpoints.file(1, 2).map_or(0, |p| p.offset);
            for offset in from + 1..=3 {
                tx.send(line_from_text(&origin, offset, format!("line {offset}"), false, at(offset))).unwrap();
                tx.flush().unwrap();
                if counted.fetch_add(1, Ordering::Relaxed) == 1 {
                    panic!("a bug after line {offset}");
                }
            }
            Ok(Vec::new())
        });
        let options = ReadOptions { follow: true, ..ReadOptions::default() };
        // Room for every chunk: the lines are read after the reader ends.
        let (tx, rx) = sync_channel(16);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        assert_eq!(supervised("a.log", &options, &tx, &stop, job), Ok(Vec::new()));
        drop(tx);
        let got: Vec<String> = rx.iter().flatten().map(|l| l.raw).collect();
        assert_eq!(got, ["line 1", "line 2", "line 3"], "each line once, in order, across the restart");
        assert!(started.elapsed() >= RESTART_BACKOFF, "restarted after the backoff");
        assert_eq!(attempts.load(Ordering::Relaxed), 3);

        let broken: Arc<Job> = Arc::new(|_, _, _| Err("journal directory /nope does not exist".into()));
        let (tx, _rx) = sync_channel(1);
        let started = Instant::now();
        assert_eq!(supervised("journal:/nope", &options, &tx, &stop, broken), Err("journal directory /nope does not exist".into()));
        assert!(started.elapsed() < RESTART_BACKOFF, "not restarted");
    }
}
