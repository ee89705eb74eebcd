//! Tailing files like `tail -F`, for any number of paths, globs and
//! directories, in one thread.
//!
//! Files are tracked by device and inode, so a renamed file keeps being read
//! under its new name until it is drained; the file that appears at the path
//! is read from its start. A file truncated in place (copytruncate) is read
//! again from its start, after the lines it lost are recovered from the
//! copy: the file in the same directory whose first bytes have the old
//! fingerprint. On start, checkpoints are honoured, including files that were
//! rotated or truncated while the monitor was down, and rotated copies that
//! logrotate compressed with gzip ([`super::gzipped`]). inotify (`notify`)
//! wakes the loop when something changes; if it is unavailable the loop polls.
//!
//! Where reading starts: with a checkpoint, just after it; files present at
//! start without one, at their end (`--from-head`: their start), except a
//! rotated copy of a checkpointed log written since the checkpoints were
//! saved (a log rotated twice while the monitor was down), at its start;
//! files that appear later, and every file when not following (`--once`),
//! at their start.

use super::gzipped;
use super::lines::{LineReader, RawLine};
use super::{CutWarnings, Line, LineSender, ReadOptions, SourceResult, WHOLE_LINE_BYTES, line_from_text, long_line};
use crate::checkpoint::{FINGERPRINT_BYTES, FilePosition, Fingerprint, Position};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufReader, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Rounds when nothing wakes the loop: without inotify, and as a safety net.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
const WATCHED_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A rotated file is dropped once drained and quiet for this long (its
/// writer may still hold it open for a moment after the rename).
const ROTATED_GRACE: Duration = Duration::from_secs(2);
/// Lines read from one file per round, so one busy file cannot starve others.
const ROUND_BUDGET: usize = 8192;
/// Compressed (already rotated) logs in a directory or a glob are not
/// followed, except gzip-compressed rotated copies of a followed log that
/// hold lines not read yet ([`Tailer::resume_rotated`],
/// [`Tailer::recover_from_copy`]). A batch scan (`--once`, the trainer)
/// reads gzip-compressed ones, decompressed, where they are asked for (a
/// glob ending in `.gz`, or named), and says how many it left; the others
/// it cannot read, and says so.
const SKIPPED_SUFFIXES: [&str; 6] = [".gz", ".xz", ".bz2", ".zst", ".zip", ".lz4"];
/// Warnings about a path repeat at most this often (backoff from 1 s).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

type Key = (u64, u64);

/// Where reading a file starts: at a byte offset (the end, a checkpoint,
/// a copy's rest), after `lines` lines, counted when not known.
#[derive(Debug, Clone, Copy)]
struct StartAt {
    offset: u64,
    lines: Option<u64>,
}

struct Tracked {
    path: Arc<Path>,
    origin: Arc<str>,
    /// Reads the file; its one descriptor is also looked at (`fstat`,
    /// positional reads of its first bytes) through [`Tracked::file`].
    reader: LineReader<BufReader<File>>,
    /// The warnings about its lines longer than `--max-line-bytes`.
    cuts: CutWarnings,
    fingerprint: Fingerprint,
    line_no: u64,
    /// When the file left its path (renamed or deleted).
    rotated: Option<Instant>,
    last_growth: Instant,
    /// Discovery order: files are read in the order their patterns name them.
    seq: u64,
}

impl Tracked {
    /// The file, to look at without moving the reader's offset.
    fn file(&self) -> &File {
        self.reader.source()
    }
}

struct Tailer<'a> {
    patterns: &'a [String],
    options: &'a ReadOptions,
    tx: &'a mut LineSender,
    tracked: HashMap<Key, Tracked>,
    /// The paths the patterns named in the last round: the logs followed.
    logs: Vec<PathBuf>,
    first_round: bool,
    /// Whether this round was woken by a change in a watched directory.
    woken: bool,
    next_seq: u64,
    problems: Vec<String>,
    backoff: HashMap<String, (Instant, Duration)>,
}

/// Reads (and when following, follows) every file the patterns name.
pub(super) fn tail(patterns: &[String], options: &ReadOptions, tx: &mut LineSender, stop: &AtomicBool) -> SourceResult {
    // A path with glob characters that names a file at start is that file
    // for the whole run (escaped, a glob that matches only it), so that a
    // rotation taking it away for a moment cannot make it match others.
    // And `./app.log` is spelled `app.log`, as a glob lists it (`./app.log*`
    // lists `app.log.1`): one file, one name.
    let patterns: Vec<String> = patterns
        .iter()
        .map(|p| without_dot_slash(p))
        .map(|p| if has_glob(p) && fs::symlink_metadata(p).is_ok() { glob::Pattern::escape(p) } else { p.to_owned() })
        .collect();
    let patterns = &patterns[..];
    for p in patterns {
        if has_glob(p) {
            glob::Pattern::new(p).map_err(|e| format!("invalid glob {p:?}: {e}"))?;
        }
    }
    let mut tailer = Tailer {
        patterns,
        options,
        tx,
        tracked: HashMap::new(),
        logs: Vec::new(),
        first_round: true,
        woken: false,
        next_seq: 0,
        problems: Vec::new(),
        backoff: HashMap::new(),
    };
    let (wakeups, _watcher) = if options.follow { watch(patterns, options.recursive) } else { (None, None) };
    loop {
        let paths = tailer.discover();
        if tailer.first_round && options.follow {
            let resumed = tailer.resume_rotated(&paths);
            tailer.warn_lost(&resumed);
        }
        tailer.first_round = false;
        let Some(busy) = tailer.read_round(!options.follow)? else {
            return Ok(tailer.problems); // the receiver is gone
        };
        // The round's lines go now, not when the next round fills a chunk.
        if tailer.tx.flush().is_err() {
            return Ok(tailer.problems);
        }
        if !options.follow {
            return Ok(tailer.problems);
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(tailer.problems);
        }
        tailer.woken = !busy && wait(wakeups.as_ref());
    }
}

/// Waits for a change (or the next poll); true when inotify said something
/// changed in a watched directory.
fn wait(wakeups: Option<&Receiver<()>>) -> bool {
    match wakeups {
        Some(rx) => {
            let woken = rx.recv_timeout(WATCHED_POLL_INTERVAL).is_ok();
            if woken {
                // Coalesce a burst of events into one round.
                std::thread::sleep(Duration::from_millis(20));
                while rx.try_recv().is_ok() {}
            }
            woken
        }
        None => {
            std::thread::sleep(POLL_INTERVAL);
            false
        }
    }
}

/// Watches the directories the patterns live in; `None` (polling) when
/// inotify cannot be used.
fn watch(patterns: &[String], recursive: bool) -> (Option<Receiver<()>>, Option<notify::RecommendedWatcher>) {
    use notify::Watcher;
    let (tx, rx) = mpsc::channel();
    let mut watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Reading a file is an event too (opened, read, closed): the
        // follower's own reads woke it again and again, and it rescanned
        // every file several times a second while nothing was written.
        if event.is_ok_and(|e| matches!(e.kind, notify::EventKind::Access(_))) {
            return;
        }
        let _ = tx.send(());
    }) {
        Ok(w) => w,
        Err(e) => {
            // Said: polling costs more, and is slower to notice changes.
            tracing::warn!("inotify unavailable ({e}); polling the files every {POLL_INTERVAL:?} instead");
            return (None, None);
        }
    };
    let mut watching = false;
    for p in patterns {
        let base = watch_base(p);
        let mode =
            if recursive && base.is_dir() && !has_glob(p) { notify::RecursiveMode::Recursive } else { notify::RecursiveMode::NonRecursive };
        // Watch the directory (to see creations and renames), and the path
        // itself when it is a directory.
        for dir in [base.parent().map(Path::to_path_buf), base.is_dir().then(|| base.clone())].into_iter().flatten() {
            let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
            match watcher.watch(&dir, mode) {
                Ok(()) => watching = true,
                Err(e) => tracing::debug!("cannot watch {}: {e}; it is polled", dir.display()),
            }
        }
    }
    if watching { (Some(rx), Some(watcher)) } else { (None, None) }
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// The longest leading part of a pattern without glob characters.
fn watch_base(p: &str) -> PathBuf {
    if !has_glob(p) {
        return PathBuf::from(p);
    }
    let mut base = PathBuf::new();
    for part in Path::new(p).components() {
        if has_glob(&part.as_os_str().to_string_lossy()) {
            break;
        }
        base.push(part);
    }
    base.join("x")
}

/// The lines before a checkpoint, when it says (0 at a later offset: a
/// checkpoint written before they were kept).
fn known_lines(c: &FilePosition) -> Option<u64> {
    (c.line > 0 || c.offset == 0).then_some(c.line)
}

/// Takes a young file's fingerprint over the bytes it has now (up to
/// [`FINGERPRINT_BYTES`]), if they start like it.
fn grow_fingerprint(t: &mut Tracked) {
    if (t.fingerprint.len as usize) < FINGERPRINT_BYTES
        && let Ok(head_bytes) = head(t.file(), FINGERPRINT_BYTES)
        && starts_with(&head_bytes, &t.fingerprint)
    {
        grow_fingerprint_to(t, &head_bytes);
    }
}

/// [`grow_fingerprint`] with the file's first bytes read already.
fn grow_fingerprint_to(t: &mut Tracked, head_bytes: &[u8]) {
    if head_bytes.len() > t.fingerprint.len as usize {
        t.fingerprint = Fingerprint::of(head_bytes);
    }
}

/// Where a checkpoint was read to, as an operator counts: its line, or its
/// byte offset when it does not say.
fn read_up_to(c: &FilePosition) -> String {
    match known_lines(c) {
        Some(0) => "its start".into(),
        Some(line) => format!("line {line}"),
        None => format!("byte {}", c.offset),
    }
}

/// How many lines end before `offset` of `file`: one pass over those bytes
/// (about a second per GiB), when a follower starts a file at its end or
/// at a checkpoint that does not say.
fn lines_before(file: &File, offset: u64) -> u64 {
    let mut buf = vec![0u8; 1 << 16];
    let (mut at, mut lines) = (0u64, 0u64);
    while at < offset {
        let want = buf.len().min(usize::try_from(offset - at).unwrap_or(usize::MAX));
        match file.read_at(&mut buf[..want], at) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                at += n as u64;
            }
        }
    }
    lines
}

/// Opens a log file, refusing what is not a regular file: a FIFO, a device
/// or a socket would block the reader (or never end). Opened non-blocking,
/// so that even a FIFO is only looked at, then checked with `fstat`.
fn open_regular(path: &Path) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.metadata() {
        Ok(m) => not_regular(path, &m).map_or(Ok(file), Err),
        Err(e) => Err(format!("cannot open {}: {e}", path.display())),
    }
}

/// Why a file is not read, when it is not a regular one.
fn not_regular(path: &Path, meta: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    if meta.is_file() {
        None
    } else if meta.file_type().is_fifo() {
        // A named one is read by a batch scan (`sources::spawn`) and
        // refused by a follower at start ([`unfollowable`]), never here.
        Some(format!("{} is a pipe (FIFO), not a regular file: a glob or a directory reads regular files only", path.display()))
    } else {
        Some(format!("{} is not a regular file (a device or socket); it is not read", path.display()))
    }
}

/// Opens a file to read from `offset`, with its first bytes: a plain one
/// as it is, a gzip-compressed one ([`gzipped`]) as its decompressed bytes,
/// with the lines before `offset` (counted while decompressing).
fn open_at(path: &Path, offset: u64) -> Result<(File, Vec<u8>, Option<u64>), String> {
    let file = open_regular(path)?;
    let (file, lines) = if gzipped::is_gzipped(path) {
        let (file, lines) = gzipped::unpacked_from(path, file, offset)?;
        (file, Some(lines))
    } else {
        (file, None)
    };
    let head_bytes = head(&file, FINGERPRINT_BYTES).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok((file, head_bytes, lines))
}

/// The first bytes of a file, decompressed if it is gzip-compressed; `None`
/// if it cannot be read.
fn first_bytes(path: &Path) -> Option<Vec<u8>> {
    let file = open_regular(path).ok()?;
    if gzipped::is_gzipped(path) { gzipped::head(path, file).ok() } else { head(&file, FINGERPRINT_BYTES).ok() }
}

/// Whether bytes read from a file's start begin with what `fingerprint` was
/// taken of.
fn starts_with(head: &[u8], fingerprint: &Fingerprint) -> bool {
    let n = fingerprint.len as usize;
    head.len() >= n && Fingerprint::of(&head[..n]) == *fingerprint
}

/// Why a path a glob matched is not followed: it resolves out of the part
/// of the pattern named literally (the directory before the first glob
/// character), through a symlink at *any* component. A symlink planted in
/// a watched directory, as the file itself or as a directory on the way
/// (`/var/log/*/syslog` with `/var/log/app -> /etc`), must not make the
/// monitor read, say, /etc/shadow; named on the command line, it is read.
fn escapes_its_pattern(path: &Path, pattern: &str) -> Option<String> {
    let base = watch_base(pattern);
    let base = base.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = fs::canonicalize(base).ok()?;
    match fs::canonicalize(path) {
        Ok(target) if target.starts_with(&base) => None,
        Ok(target) => Some(format!(
            "{} (matched by {pattern}) leads out of {} through a symlink (to {}); not followed (name it on the command line to read it)",
            path.display(),
            base.display(),
            target.display()
        )),
        Err(_) => None,
    }
}

/// Binary files a log directory holds besides logs: login records
/// (`wtmp`, `btmp.1`, `lastlog-20261205`), read with `last`, `lastlog`,
/// `faillog`. Like journal files (`*.journal`, read with `-j`), they are
/// not lines and are not read from a directory or a glob.
const BINARY_NAMES: [&str; 5] = ["wtmp", "btmp", "utmp", "lastlog", "faillog"];

/// The compression of a file logarithm cannot decompress (by its name),
/// and the command that prints it decompressed; gzip it reads.
fn unreadable_compression(path: &Path) -> Option<(&'static str, &'static str)> {
    let name = path.file_name()?.to_string_lossy();
    [
        (".xz", "xz", "xzcat"),
        (".bz2", "bzip2", "bzcat"),
        (".zst", "zstd", "zstdcat"),
        (".lz4", "lz4", "lz4cat"),
        (".zip", "zip", "unzip -p"),
    ]
    .into_iter()
    .find_map(|(suffix, format, command)| name.ends_with(suffix).then_some((format, command)))
}

/// Why a file compressed with what logarithm does not read is not read,
/// and how to read it.
fn compressed(pattern: &str, format: &str, command: &str) -> String {
    format!("{pattern} is compressed with {format}, which logarithm does not read: pipe it in (`{command} {pattern} | logarithm ... -i`)")
}

/// Why a path named to a follower can never be followed, if so: a pipe (it
/// has no offsets to resume at), or a compressed file (it does not grow;
/// and logarithm reads only gzip). Said at start: retried, it would fail
/// every minute for ever.
pub fn unfollowable(pattern: &str) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    if has_glob(pattern) {
        return None;
    }
    let path = Path::new(pattern);
    if fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
        return Some(format!(
            "{pattern} is a pipe (FIFO), which a follower cannot resume: pipe it in (`cat {pattern} | logarithm monitor -i`), or read it with --once"
        ));
    }
    if gzipped::is_gzipped(path) {
        // It would be decompressed whole, only to be followed from its end.
        return Some(format!(
            "{pattern} is compressed, and a compressed log does not grow: a follower does not read it; read it with --once (`logarithm monitor --once {pattern}`)"
        ));
    }
    unreadable_compression(path).map(|(format, command)| compressed(pattern, format, command))
}

/// Whether a directory or a glob skips this file: compressed, a journal
/// file or login records.
fn skipped(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let binary = BINARY_NAMES.iter().any(|b| name.strip_prefix(b).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-'])));
    binary || super::journal::journal_name(&name) || SKIPPED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Whether `path` names `log` rotated by name, as logrotate names it: in
/// the same directory, `log.N` or `log-DATE` (anything after the dot or
/// dash, which starts with a digit).
fn rotated_name_of(path: &Path, log: &Path) -> bool {
    let (Some(name), Some(base)) = (path.file_name(), log.file_name()) else { return false };
    path.parent() == log.parent()
        && name
            .as_encoded_bytes()
            .strip_prefix(base.as_encoded_bytes())
            .is_some_and(|rest| matches!(rest, [b'.' | b'-', digit, ..] if digit.is_ascii_digit()))
}

/// Whether `copy` holds the bytes `original` holds just before `at` (up to
/// 4 KiB of them), or `original` is no longer what was read (shorter than
/// `at`, or starting otherwise: truncated, and maybe written again since;
/// then its first bytes, the `fingerprint`, are all there is to go by).
fn same_before(original: &File, fingerprint: &Fingerprint, copy: &File, at: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let rewritten = !head(original, fingerprint.len as usize).is_ok_and(|h| starts_with(&h, fingerprint));
    if rewritten || original.metadata().is_ok_and(|m| m.len() < at) {
        return true;
    }
    let len = at.min(4096) as usize;
    let (mut a, mut b) = (vec![0; len], vec![0; len]);
    original.read_exact_at(&mut a, at - len as u64).is_ok() && copy.read_exact_at(&mut b, at - len as u64).is_ok() && a == b
}

/// A pattern without its leading `./` (any number), unless nothing follows.
fn without_dot_slash(mut p: &str) -> &str {
    while let Some(rest) = p.strip_prefix("./").filter(|r| !r.is_empty()) {
        p = rest.trim_start_matches('/');
    }
    p
}

/// The directory of a file's path (`.` for a bare name).
fn dir_of(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// The entries of the directory `path` is in, each with its path spelled
/// as `path` is (`app.log.1` beside `app.log`, not `./app.log.1`): a file
/// has one name, whether a glob or a look beside a log found it. (Two
/// spellings of one rotated copy made the follower drain it as a copy,
/// then find it "new" under the glob and read it again whole; and a log
/// rotated twice while it was down was not recognised as one, its middle
/// file silently lost.)
fn beside(path: &Path) -> impl Iterator<Item = (PathBuf, fs::DirEntry)> + '_ {
    fs::read_dir(dir_of(path)).into_iter().flatten().flatten().map(move |entry| (path.with_file_name(entry.file_name()), entry))
}

fn key_of(meta: &fs::Metadata) -> Key {
    (meta.dev(), meta.ino())
}

/// The first bytes of a file, at most [`FINGERPRINT_BYTES`].
fn head(file: &File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; len.min(FINGERPRINT_BYTES)];
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read_at(&mut buf[filled..], filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

impl Tailer<'_> {
    /// True while a path (or pattern) that had a problem waits for its next
    /// try: a follower retries it with the backoff of [`Self::problem`]
    /// (1 s doubling to 60 s), not every poll.
    fn waiting(&self, key: &str) -> bool {
        // A change in a watched directory is worth a try at once: a file a
        // glob waits for is read when it appears, not up to a minute later
        // (the backoff still spaces the warnings).
        self.options.follow && !self.woken && self.backoff.get(key).is_some_and(|(next, _)| Instant::now() < *next)
    }

    /// Notes a problem with a path: when following, logged at most once per
    /// backoff period (1 s doubling to 60 s), which is also when it is
    /// tried again ([`Self::waiting`]); always remembered once, and
    /// reported by the caller when reading once (so it is said once).
    fn problem(&mut self, key: &str, msg: String) {
        let now = Instant::now();
        let entry = self.backoff.entry(key.to_owned()).or_insert((now, Duration::from_secs(1)));
        if self.options.follow && now >= entry.0 {
            tracing::warn!("{msg}; retrying");
            entry.0 = now + entry.1;
            entry.1 = (entry.1 * 2).min(MAX_BACKOFF);
        }
        if !self.problems.contains(&msg) {
            self.problems.push(msg);
        }
    }

    /// Notes a problem with something tried once, not again (a rotated
    /// copy read at start): said now, and listed with the others.
    fn failed_once(&mut self, msg: String) {
        tracing::warn!("{msg}");
        if !self.problems.contains(&msg) {
            self.problems.push(msg);
        }
    }

    /// Expands the patterns into the files they name now, starts tracking
    /// new ones, and notices tracked files that left their path.
    fn discover(&mut self) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for pattern in self.patterns {
            self.expand(pattern, &mut paths);
        }
        self.logs.clone_from(&paths);
        for path in &paths {
            let key = path.display().to_string();
            if self.waiting(&key) {
                continue;
            }
            // Its backoff ends when it is tracked (`start`): a file that
            // can be stat'ed but not opened (permissions) keeps backing off.
            let meta = match fs::metadata(path) {
                Ok(m) => m,
                // Gone since a glob or a directory listed it (logs come and
                // go): nothing to say, unless it was named.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.patterns.iter().any(|p| Path::new(p) == path) => continue,
                Err(e) => {
                    self.problem(&path.display().to_string(), format!("cannot open {}: {e}", path.display()));
                    continue;
                }
            };
            // Said without opening it: opening a FIFO's read end at every
            // round would disturb its writer.
            if let Some(why) = not_regular(path, &meta) {
                self.problem(&path.display().to_string(), why);
                continue;
            }
            let key = key_of(&meta);
            // A tracked file that the patterns name under another name
            // (`logs/*`, and `app.log` became `app.log.1`), or a rotated
            // one they name (copytruncate's copy, drained from where the
            // original was read): followed on there, not drained, dropped,
            // then found as new and read again from its start.
            match self.tracked.get_mut(&key) {
                None => self.track(path, key),
                Some(t) => {
                    let moved = *t.path != **path && !fs::metadata(&t.path).is_ok_and(|m| key_of(&m) == key);
                    if moved {
                        tracing::debug!("{} is now {}; following it there", t.path.display(), path.display());
                    }
                    if moved || (*t.path == **path && t.rotated.is_some()) {
                        t.path = path.as_path().into();
                        t.origin = path.display().to_string().into();
                        t.rotated = None;
                    }
                }
            }
        }
        if self.options.follow {
            for (key, t) in self.tracked.iter_mut() {
                let still_there = fs::metadata(&t.path).is_ok_and(|m| key_of(&m) == *key);
                if t.rotated.is_none() && !still_there {
                    tracing::debug!("{} was rotated or removed; draining it", t.path.display());
                    t.rotated = Some(Instant::now());
                }
            }
        }
        paths
    }

    fn expand(&mut self, pattern: &str, out: &mut Vec<PathBuf>) {
        if has_glob(pattern) {
            if self.waiting(pattern) {
                return;
            }
            let mut matched = false;
            // A glob for compressed files asks for them, as naming them does.
            let gz_named = pattern.ends_with(".gz");
            let mut gz_skipped = 0;
            for entry in glob::glob(pattern).into_iter().flatten() {
                match entry {
                    Ok(path) if let Some(msg) = escapes_its_pattern(&path, pattern) => {
                        matched = true;
                        self.problem(&path.display().to_string(), msg);
                    }
                    Ok(path) if path.is_dir() => {
                        if self.options.recursive {
                            matched = true;
                            self.expand_dir(&path, out);
                        } else {
                            self.problem(
                                &path.display().to_string(),
                                format!(
                                    "{} (matched by {pattern}) is a directory, not a log file; use -r to read the files under it",
                                    path.display()
                                ),
                            );
                        }
                    }
                    Ok(path) => {
                        matched = true;
                        if !self.skips(&path, gz_named, &mut gz_skipped) {
                            out.push(path);
                        }
                    }
                    Err(e) => self.problem(pattern, format!("cannot read {}: {}", e.path().display(), e.error())),
                }
            }
            self.gz_not_read(gz_skipped, pattern);
            if matched {
                self.backoff.remove(pattern);
            } else {
                self.problem(pattern, format!("no file matches {pattern}"));
            }
            return;
        }
        let path = PathBuf::from(pattern);
        if path.is_dir() {
            self.expand_dir(&path, out);
        } else if let Some((format, command)) = unreadable_compression(&path) {
            self.problem(pattern, compressed(pattern, format, command));
        } else {
            out.push(path);
        }
    }

    /// Says how many gzip-compressed files `what` (a directory or a glob)
    /// held that were not read, and how to read them (a follower, once).
    fn gz_not_read(&self, skipped: usize, what: &str) {
        if skipped == 0 || (self.options.follow && !self.first_round) {
            return;
        }
        if self.options.follow {
            tracing::warn!(
                "{skipped} gzip-compressed file(s) matched by {what} not followed: compressed logs do not grow; read them with --once"
            );
        } else {
            tracing::warn!(
                "{skipped} gzip-compressed file(s) in {what} not read: name them, or a glob ending in .gz, to read them (each is decompressed into $TMPDIR first)"
            );
        }
    }

    /// Whether a directory or a glob skips this file ([`skipped`]). A batch
    /// scan reads gzip-compressed files only where they were asked for
    /// (`gz_named`: a glob ending in `.gz`), since each is decompressed
    /// whole into `$TMPDIR` before it is read; it counts the others in
    /// `gz_skipped`, and says which compressed ones it cannot read. A
    /// follower follows none (they do not grow), and counts those asked for.
    fn skips(&self, path: &Path, gz_named: bool, gz_skipped: &mut usize) -> bool {
        if !skipped(path) {
            return false;
        }
        if gzipped::is_gzipped(path) && self.options.follow {
            // Compressed logs do not grow: not followed, and said when asked for.
            *gz_skipped += usize::from(gz_named);
            return true;
        }
        if !self.options.follow {
            if gzipped::is_gzipped(path) {
                *gz_skipped += usize::from(!gz_named);
                return !gz_named;
            }
            if let Some((format, _)) = unreadable_compression(path) {
                tracing::warn!("{} is compressed with {format}, which logarithm does not read; skipped", path.display());
            }
        }
        true
    }

    fn expand_dir(&mut self, dir: &Path, out: &mut Vec<PathBuf>) {
        let depth = if self.options.recursive { usize::MAX } else { 1 };
        let (before, mut journals, mut unlisted, mut gz_skipped) = (out.len(), 0, false, 0);
        for entry in walkdir::WalkDir::new(dir).min_depth(1).max_depth(depth).sort_by_file_name() {
            match entry {
                Ok(e) if e.file_type().is_file() && !self.skips(e.path(), false, &mut gz_skipped) => out.push(e.into_path()),
                Ok(e) if super::journal::journal_name(&e.file_name().to_string_lossy()) => journals += 1,
                Ok(_) => {}
                Err(e) => {
                    // The directory itself could not be listed: said once.
                    unlisted |= e.depth() == 0;
                    let at = e.path().unwrap_or(dir).display().to_string();
                    self.problem(&at, format!("cannot read {at}: {}", e.io_error().map_or_else(|| e.to_string(), |io| io.to_string())));
                }
            }
        }
        self.gz_not_read(gz_skipped, &dir.display().to_string());
        if out.len() > before || unlisted {
            return;
        }
        let d = dir.display();
        let only = if journals > 0 { format!(", only journal files: --journal-dir {d} reads them") } else { String::new() };
        self.problem(&d.to_string(), format!("no log file in directory {d}{only}"));
    }

    /// Starts tracking a file at the right offset. A gzip-compressed one is
    /// read decompressed: its offsets and size are its decompressed ones.
    fn track(&mut self, path: &Path, key: Key) {
        let opened = if gzipped::is_gzipped(path) {
            open_at(path, 0).map(|(file, head_bytes, _)| (file, head_bytes))
        } else {
            // A first read that fails is the reader's failure (restarted
            // with a backoff), as any later one.
            open_regular(path).map(|file| {
                let head_bytes = head(&file, FINGERPRINT_BYTES).unwrap_or_default();
                (file, head_bytes)
            })
        };
        let (file, head_bytes) = match opened {
            Ok(opened) => opened,
            Err(msg) => return self.problem(&path.display().to_string(), msg),
        };
        let meta = file.metadata().ok();
        let size = meta.as_ref().map_or(0, |m| m.len());
        let checkpoints = &self.options.checkpoints;
        let (mut offset, mut lines) = (0, Some(0));
        if self.options.follow {
            // By inode, whatever its name now: a file renamed while we were
            // down and matched under its new name resumes where it was.
            match checkpoints.file(key.0, key.1) {
                Some(c) if c.offset <= size && starts_with(&head_bytes, &c.fingerprint) => {
                    offset = c.offset;
                    lines = known_lines(c);
                }
                Some(c) => {
                    // Truncated or rewritten while we were down.
                    let c = c.clone();
                    self.recover_from_copy(path, &c.fingerprint, c.offset, known_lines(&c), key);
                    // Its checkpoint now names what it holds, before it
                    // delivers anything: a stop, then another copytruncate,
                    // would otherwise leave its lines in a copy (compressed,
                    // with the original's time) that nothing points to.
                    if self.first_round {
                        self.remember(path, key, 0, &head_bytes, 0);
                    }
                }
                None => {
                    let has_history = self.has_history(path);
                    if let Some((at, read)) = self.copy_of(&head_bytes, size, &file) {
                        // Its first lines are lines already read (usually
                        // copytruncate's copy, found before the truncation).
                        tracing::debug!("{} starts like a file being read: a copy, read from offset {at}", path.display());
                        (offset, lines) = (at, Some(read));
                    } else if self.first_round && meta.as_ref().is_some_and(|m| self.written_while_down(path, key, m)) {
                        tracing::info!("{} was rotated and written while stopped; reading it whole", path.display());
                    } else if self.first_round && !self.options.from_head && !has_history {
                        offset = size;
                        lines = Some(lines_before(&file, offset));
                    }
                    // Checkpointed where it starts, before it delivers
                    // anything: a stop, then another rotation, would leave it
                    // with no checkpoint under a rotated name, and older
                    // than the checkpoints saved meanwhile. At start, and
                    // for the empty file logrotate's `create` leaves where a
                    // followed file was, which may deliver nothing before a
                    // stop: without it, the file before it would look like
                    // the log's last at the next start. (The list is kept
                    // for the run, so not every empty file found later: a
                    // directory of per-job logs would grow it for ever.
                    // Other files found later deliver their lines within a
                    // round.)
                    let replaces_followed = size == 0 && self.tracked.values().any(|t| *t.path == *path);
                    if self.first_round || replaces_followed {
                        self.remember(path, key, offset, &head_bytes, lines.unwrap_or(0));
                    }
                }
            }
        }
        self.start(path, key, file, StartAt { offset, lines }, head_bytes, None);
    }

    /// Where a tracked file whose first bytes a new file repeats was read
    /// to, and its lines before that: the new file is a copy of it. While
    /// the tracked file is whole, the copy must also repeat the bytes just
    /// before that offset: logs that start alike (per-process GC logs, a
    /// banner) were taken for copies and read from another file's offset,
    /// their first lines lost (review).
    fn copy_of(&self, head_bytes: &[u8], size: u64, file: &File) -> Option<(u64, u64)> {
        self.tracked
            .values()
            .find(|t| {
                let (n, at) = (t.fingerprint.len as usize, t.reader.line_offset());
                n > 0 && starts_with(head_bytes, &t.fingerprint) && at <= size && same_before(t.file(), &t.fingerprint, file, at)
            })
            .map(|t| (t.reader.line_offset(), t.line_no))
    }

    /// Tracks `file` from `at`.
    fn start(&mut self, path: &Path, key: Key, mut file: File, at: StartAt, head_bytes: Vec<u8>, rotated: Option<Instant>) {
        let StartAt { offset, lines } = at;
        // Lines are numbered as in the file, wherever reading starts (a
        // checkpoint, the end, a copy's rest), so `origin:line` points at them.
        let line_no = lines.unwrap_or_else(|| lines_before(&file, offset));
        if let Err(e) = file.seek(SeekFrom::Start(offset)) {
            return self.problem(&path.display().to_string(), format!("cannot read {}: {e}", path.display()));
        }
        self.backoff.remove(&path.display().to_string());
        tracing::debug!("reading {} from offset {offset} (line {})", path.display(), line_no + 1);
        let origin: Arc<str> = path.display().to_string().into();
        let reader = LineReader::new(BufReader::with_capacity(64 * 1024, file), offset, self.options.max_line_bytes)
            .keeping_objects_whole(WHOLE_LINE_BYTES);
        self.tracked.insert(
            key,
            Tracked {
                path: path.into(),
                cuts: CutWarnings::new(origin.clone()),
                origin,
                reader,
                fingerprint: Fingerprint::of(&head_bytes),
                line_no,
                rotated,
                last_growth: Instant::now(),
                seq: self.next_seq,
            },
        );
        self.next_seq += 1;
    }

    /// Checkpoints where a file was opened, before it delivers anything: a
    /// restart then reads what came after (it would start at the end again,
    /// or not know a rotated file it was reading whole).
    fn remember(&self, path: &Path, key: Key, offset: u64, head_bytes: &[u8], line: u64) {
        if let Some(opened) = &self.options.opened_at_end {
            let at = FilePosition { path: path.into(), dev: key.0, ino: key.1, offset, fingerprint: Fingerprint::of(head_bytes), line };
            opened.lock().unwrap_or_else(|e| e.into_inner()).push(Position::File(at));
        }
    }

    /// On start: files with a checkpoint that were renamed away from their
    /// path while we were down (the path a log the patterns name, or one of
    /// its rotated names, [`rotated_name_of`]) are found by inode in the
    /// same directory and drained from their checkpoint; rotated copies
    /// written since the checkpoints were saved ([`Self::written_while_down`])
    /// are read whole, oldest first. Returns the checkpoints (by file)
    /// whose file was found again, read to its end or not.
    fn resume_rotated(&mut self, paths: &[PathBuf]) -> HashSet<Key> {
        let saved: Vec<FilePosition> = self
            .options
            .checkpoints
            .files
            .values()
            .filter(|c| paths.iter().any(|p| **p == *c.path || rotated_name_of(&c.path, p)) && !self.tracking(c))
            .cloned()
            .collect();
        // Compressed files found to be (the rest of) a checkpointed one.
        let mut compressed_copies = HashSet::new();
        let mut resumed = HashSet::new();
        for c in saved {
            let found = beside(&c.path).find(|(_, e)| e.metadata().is_ok_and(|m| m.is_file() && key_of(&m) == (c.dev, c.ino)));
            // A file under its inode that does not start like it reuses the
            // inode number (ext4 hands a freed one to the next new file):
            // the checkpointed file is gone, maybe compressed.
            if found.is_some_and(|(path, _)| self.resume(&c, &path, (c.dev, c.ino))) || self.resume_compressed(&c, &mut compressed_copies) {
                resumed.insert((c.dev, c.ino));
            }
        }
        // A log rotated twice (or more) while we were down: the files
        // between the checkpointed one and the current one, which the
        // patterns do not name (a glob that names them tracks them already).
        // Without saved checkpoints there is none to look for.
        if self.options.checkpoints.saved_at.is_none() {
            return resumed;
        }
        // One log per directory, to look beside.
        let mut logs: Vec<&PathBuf> = paths.iter().collect();
        logs.sort_unstable_by_key(|p| dir_of(p));
        logs.dedup_by_key(|p| dir_of(p));
        let mut between: Vec<(std::time::SystemTime, PathBuf, Key)> = Vec::new();
        for log in logs {
            for (path, entry) in beside(log) {
                let Ok(meta) = entry.metadata() else { continue };
                let key = key_of(&meta);
                if meta.is_file()
                    && (!skipped(&path) || gzipped::is_gzipped(&path))
                    && !self.tracked.contains_key(&key)
                    && !compressed_copies.contains(&key)
                    && self.written_while_down(&path, key, &meta)
                {
                    between.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), path, key));
                }
            }
        }
        // Oldest first: in the order they were written (logrotate gives a
        // compressed file its original's time).
        between.sort();
        for (_, path, key) in between {
            let (file, head_bytes, _) = match open_at(&path, 0) {
                Ok(opened) => opened,
                Err(msg) => {
                    self.failed_once(msg);
                    continue;
                }
            };
            // logrotate's `copy` (without truncating): its lines are the
            // followed file's.
            if self.tracked.values().any(|t| t.fingerprint.len > 0 && starts_with(&head_bytes, &t.fingerprint)) {
                tracing::debug!("{} is a copy of a file being read; not read", path.display());
                continue;
            }
            tracing::info!("{} was rotated and written while stopped; reading it whole", path.display());
            self.remember(&path, key, 0, &head_bytes, 0);
            self.start(&path, key, file, StartAt { offset: 0, lines: Some(0) }, head_bytes, Some(Instant::now()));
        }
        resumed
    }

    /// At start, after the resumptions: warns about each log the patterns
    /// name whose checkpointed file is nowhere to be read: not `resumed`
    /// under another name or compressed ([`Self::resume_rotated`]), and no
    /// file followed starts like it (itself, or a copy). Rotated while the
    /// monitor was stopped, it was then deleted (`rotate N`), moved to
    /// another directory (`olddir`) or compressed other than with gzip; or
    /// it was truncated (copytruncate) and its copy is not beside it. What
    /// it got after the checkpoint is lost. Checkpoints of rotations the
    /// monitor drained before it stopped, which `rotate N` deletes in the
    /// normal course, are not the log's last: the log is only warned about
    /// when none of its checkpointed files is left.
    fn warn_lost(&self, resumed: &HashSet<Key>) {
        // The followed files' first bytes, read only if a checkpoint is not
        // found otherwise (at start, once).
        let heads = std::cell::OnceCell::new();
        let heads = || -> &Vec<Vec<u8>> {
            heads.get_or_init(|| self.tracked.values().filter_map(|t| head(t.file(), FINGERPRINT_BYTES).ok()).collect())
        };
        let mut warned = HashSet::new();
        for log in &self.logs {
            if self.logs.iter().any(|other| rotated_name_of(log, other)) || !warned.insert(log) {
                continue;
            }
            let read: Vec<&FilePosition> = self.options.checkpoints.files.values().filter(|c| *c.path == **log).collect();
            // An empty file's fingerprint, which any file starts with, is
            // found only under its own inode.
            let found = |c: &&FilePosition| {
                resumed.contains(&(c.dev, c.ino))
                    || if c.fingerprint.len > 0 {
                        heads().iter().any(|h| starts_with(h, &c.fingerprint))
                    } else {
                        self.tracked.contains_key(&(c.dev, c.ino))
                    }
            };
            if read.iter().all(|c| c.fingerprint.len == 0) || read.iter().any(found) {
                continue;
            }
            // Which of several was read last, the checkpoints do not say.
            let after = match read[..] {
                [c] => read_up_to(c),
                _ => "the last checkpoint".into(),
            };
            tracing::warn!(
                "{}: the file read to {after} when logarithm stopped is gone (rotated or truncated while logarithm was stopped, and not found beside it: deleted, moved to another directory, or compressed other than with gzip); any lines written to it after {after} were not read",
                log.display()
            );
        }
    }

    /// Whether the file a checkpoint is about is tracked already: a file
    /// tracked under its inode that does not start like it reuses the
    /// inode number, and is another.
    fn tracking(&self, c: &FilePosition) -> bool {
        self.tracked.get(&(c.dev, c.ino)).is_some_and(|t| first_bytes(&t.path).is_some_and(|head| starts_with(&head, &c.fingerprint)))
    }

    /// Reads the rest of a checkpointed file found by inode at `path`;
    /// false if it is another file (it does not start like the checkpoint).
    fn resume(&mut self, c: &FilePosition, path: &Path, key: Key) -> bool {
        if !first_bytes(path).is_some_and(|head| starts_with(&head, &c.fingerprint)) {
            return false;
        }
        let (file, head_bytes, _) = match open_at(path, c.offset) {
            Ok(opened) => opened,
            Err(msg) => {
                self.failed_once(msg);
                return true;
            }
        };
        let size = file.metadata().map_or(0, |m| m.len());
        if c.offset <= size {
            if c.offset < size && *c.path != *path {
                tracing::info!("{} was rotated to {} while stopped; reading the rest of it", c.path.display(), path.display());
            }
            self.start(path, key, file, StartAt { offset: c.offset, lines: known_lines(c) }, head_bytes, Some(Instant::now()));
        }
        true
    }

    /// A checkpointed file whose inode is gone may have been compressed
    /// (logrotate's `compress`): a gzip-compressed rotated name of a log
    /// followed, in its directory, that starts with its fingerprint is it,
    /// read from the checkpoint on. Such copies are noted in `copies`, so
    /// that they are not read again as files written while the monitor was
    /// down. False when there is none.
    fn resume_compressed(&mut self, c: &FilePosition, copies: &mut HashSet<Key>) -> bool {
        // An empty file's fingerprint matches anything; what was written to
        // it after the checkpoint is read as a file written while down.
        if c.fingerprint.len == 0 {
            return false;
        }
        for (path, entry) in beside(&c.path) {
            let Ok(meta) = entry.metadata() else { continue };
            let key = key_of(&meta);
            if !meta.is_file()
                || !gzipped::is_gzipped(&path)
                || !self.logs.iter().any(|log| rotated_name_of(&path, log))
                || self.tracked.contains_key(&key)
            {
                continue;
            }
            if !first_bytes(&path).is_some_and(|head| starts_with(&head, &c.fingerprint)) {
                continue;
            }
            copies.insert(key);
            let (file, head_bytes, counted) = match open_at(&path, c.offset) {
                Ok(opened) => opened,
                Err(msg) => {
                    self.failed_once(msg);
                    return true;
                }
            };
            if c.offset < file.metadata().map_or(0, |m| m.len()) {
                tracing::info!(
                    "{} was rotated and compressed to {} while stopped; reading the rest of it",
                    c.path.display(),
                    path.display()
                );
                let lines = known_lines(c).or(counted).unwrap_or(0);
                self.remember(&path, key, c.offset, &head_bytes, lines);
                self.start(&path, key, file, StartAt { offset: c.offset, lines: Some(lines) }, head_bytes, Some(Instant::now()));
            }
            return true;
        }
        false
    }

    /// Whether the checkpoints know `log`: they name it, or one of its
    /// rotated names (what was read of it went on there).
    fn has_history(&self, log: &Path) -> bool {
        self.options.checkpoints.files.values().any(|c| *c.path == *log || rotated_name_of(&c.path, log))
    }

    /// Whether `path` is a rotated name of a log the patterns name and the
    /// checkpoints know, with no checkpoint of its own (one whose
    /// fingerprint it starts with), written since they
    /// were saved (at or after: a coarse clock may give both one tick):
    /// every line in it is one the monitor never saw. A log rotated twice
    /// while the monitor was down leaves one between the file it was
    /// reading and the current one. Once found, it is checkpointed
    /// ([`Self::remember`]), so a restart before it is read finds it by
    /// inode, however late the checkpoints were saved meanwhile.
    fn written_while_down(&self, path: &Path, key: Key, meta: &fs::Metadata) -> bool {
        let checkpoints = &self.options.checkpoints;
        let Some(saved_at) = checkpoints.saved_at else { return false };
        // A checkpoint left by a file whose inode number this one reuses
        // is not its own.
        let own_checkpoint =
            || checkpoints.file(key.0, key.1).is_some_and(|c| first_bytes(path).is_some_and(|h| starts_with(&h, &c.fingerprint)));
        self.options.follow
            && meta.modified().is_ok_and(|m| m >= saved_at)
            && !own_checkpoint()
            && self.logs.iter().any(|log| rotated_name_of(path, log) && self.has_history(log))
    }

    /// After `path` was truncated in place, reads the lines it had past
    /// `offset` from its copy (same directory, same fingerprint), if any.
    fn recover_from_copy(&mut self, path: &Path, fingerprint: &Fingerprint, offset: u64, lines: Option<u64>, except: Key) {
        if fingerprint.len == 0 {
            return;
        }
        let mut candidates: Vec<(bool, PathBuf, Key)> = Vec::new();
        for (copy, entry) in beside(path) {
            let Ok(meta) = entry.metadata() else { continue };
            let key = key_of(&meta);
            // logrotate's `copytruncate` with `compress` leaves it compressed.
            let compressed = gzipped::is_gzipped(&copy) && rotated_name_of(&copy, path);
            if meta.is_file()
                && key != except
                && !self.tracked.contains_key(&key)
                && (!skipped(&copy) || compressed)
                && (compressed || meta.len() >= offset)
            {
                candidates.push((compressed, copy, key));
            }
        }
        // The copy itself before its compressed copy: logrotate may still
        // be writing that one.
        candidates.sort();
        for (_, copy, key) in candidates {
            let Some(copy_head) = first_bytes(&copy).filter(|head| starts_with(head, fingerprint)) else { continue };
            // Read before, as the copy of this log truncated while it was
            // followed: the log, quiet since, kept its old checkpoint, and
            // the copy's own says how far it was read. It resumes from
            // there ([`Self::resume_rotated`], or as a file a glob names),
            // not from the log's offset again (black-box review: its lines
            // came twice after every restart).
            let checkpoints = &self.options.checkpoints;
            if checkpoints.file(key.0, key.1).is_some_and(|own| own.offset >= offset && starts_with(&copy_head, &own.fingerprint)) {
                tracing::debug!("{} was read as the copy of {} already", copy.display(), path.display());
                return;
            }
            let (file, full_head, _) = match open_at(&copy, offset) {
                Ok(opened) => opened,
                Err(msg) => {
                    self.failed_once(msg);
                    continue;
                }
            };
            if file.metadata().map_or(0, |m| m.len()) < offset {
                continue;
            }
            tracing::info!("{} was truncated; reading its last lines from the copy {}", path.display(), copy.display());
            self.start(&copy, key, file, StartAt { offset, lines }, full_head, Some(Instant::now()));
            return;
        }
    }

    /// Reads what is available from every tracked file; `None` when the
    /// receiver is gone, otherwise whether any file hit its round budget.
    /// When following, a file that cannot be read (an I/O error: a failing
    /// disk, a stale NFS handle) fails the reader: its supervisor logs the
    /// cause at error level and restarts it with backoff, just after the
    /// last line delivered (issue 10). Dropping the file and tracking it
    /// again later would start it over from its checkpoint at start, or
    /// from its beginning, and score lines twice. Reading once, the file
    /// is named as a problem and the others are still read.
    fn read_round(&mut self, to_end: bool) -> Result<Option<bool>, String> {
        // Rotated files first: their lines are older than their successors'.
        let mut keys: Vec<Key> = self.tracked.keys().copied().collect();
        keys.sort_by_key(|k| {
            let t = &self.tracked[k];
            (t.rotated.is_none(), t.rotated, t.seq)
        });
        let mut busy = false;
        for key in keys {
            if self.options.follow && self.tracked[&key].rotated.is_none() && self.check_truncation(key) {
                // Its lost lines come from the copy, read first next round.
                busy = true;
                continue;
            }
            let Some(t) = self.tracked.get_mut(&key) else { continue };
            // A file rotated before its first lines were read (logrotate's
            // `create` made it empty, it filled and was rotated within a
            // round) is fingerprinted too: its lines' checkpoints would
            // otherwise carry the empty fingerprint, which any file
            // starts with, and a new file reusing its inode number would be
            // taken for it (read from its offset, or skipped).
            if t.rotated.is_some() {
                grow_fingerprint(t);
            }
            let flush = to_end || t.rotated.is_some_and(|r| r.elapsed() >= ROTATED_GRACE && t.last_growth.elapsed() >= ROTATED_GRACE);
            let mut read = 0;
            while let Some(t) = self.tracked.get_mut(&key) {
                let raw = match t.reader.next_line(flush) {
                    Ok(Some(raw)) => raw,
                    Ok(None) => break,
                    Err(e) => {
                        let msg = format!("cannot read {}: {e}", t.path.display());
                        if self.options.follow {
                            return Err(msg);
                        }
                        let at = t.path.display().to_string();
                        self.tracked.remove(&key);
                        self.problem(&at, msg);
                        break;
                    }
                };
                t.last_growth = Instant::now();
                let Some(line) = self.line(key, raw) else { return Ok(None) };
                if self.tx.send(line).is_err() {
                    return Ok(None);
                }
                read += 1;
                if read >= ROUND_BUDGET && !to_end {
                    busy = true;
                    break;
                }
            }
            if let Some(t) = self.tracked.get(&key) {
                let drained = t.rotated.is_some_and(|r| r.elapsed() >= ROTATED_GRACE)
                    && t.last_growth.elapsed() >= ROTATED_GRACE
                    && !t.reader.has_partial();
                if to_end || drained {
                    if !to_end {
                        tracing::debug!("done with rotated {}", t.path.display());
                    }
                    if !self.options.follow || drained {
                        self.tracked.remove(&key);
                    }
                }
            }
        }
        Ok(Some(busy))
    }

    fn line(&mut self, key: Key, raw: RawLine) -> Option<Line> {
        let t = self.tracked.get_mut(&key)?;
        t.line_no += 1;
        let position = Position::File(FilePosition {
            path: t.path.clone(),
            dev: key.0,
            ino: key.1,
            offset: raw.end_offset,
            fingerprint: t.fingerprint.clone(),
            line: t.line_no,
        });
        Some(if raw.truncated {
            long_line(&t.origin, t.line_no, raw.text, self.options.max_line_bytes, position, &mut t.cuts)
        } else {
            line_from_text(&t.origin, t.line_no, raw.text, false, position)
        })
    }

    /// Detects truncation in place (smaller than what was read, or its first
    /// bytes changed) and restarts the file from its beginning, returning
    /// true; also grows the fingerprint while the file is young.
    fn check_truncation(&mut self, key: Key) -> bool {
        let Some(t) = self.tracked.get_mut(&key) else { return false };
        let size = t.file().metadata().map(|m| m.len()).unwrap_or(0);
        let read_to = t.reader.line_offset();
        let head_bytes = head(t.file(), FINGERPRINT_BYTES).unwrap_or_default();
        let old = t.fingerprint.clone();
        if size >= read_to && starts_with(&head_bytes, &old) {
            grow_fingerprint_to(t, &head_bytes);
            return false;
        }
        tracing::debug!("{} was truncated (size {size}, read to {read_to})", t.path.display());
        let (path, lines_read) = (t.path.clone(), t.line_no);
        match t.reader.restart_at(0) {
            Ok(()) => {
                t.fingerprint = Fingerprint::of(&head_bytes);
                t.line_no = 0;
            }
            Err(e) => {
                self.tracked.remove(&key);
                self.problem(&path.display().to_string(), format!("cannot read {}: {e}", path.display()));
            }
        }
        self.recover_from_copy(&path, &old, read_to, Some(lines_read), key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `./app.log` is spelled as a glob lists it, `app.log`: one file, one name.
    #[test]
    fn patterns_lose_their_leading_dot_slash() {
        for (given, spelled) in [
            ("./app.log", "app.log"),
            ("././app.log*", "app.log*"),
            (".//logs/*.log", "logs/*.log"),
            ("./", "./"),
            (".", "."),
            ("/var/log/./syslog", "/var/log/./syslog"),
            ("app.log", "app.log"),
        ] {
            assert_eq!(without_dot_slash(given), spelled, "{given}");
        }
        assert_eq!(Path::new("app.log").with_file_name("app.log.1"), Path::new("app.log.1"));
    }
}
