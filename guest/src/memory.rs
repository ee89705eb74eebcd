//! The file a filter keeps its memory of reported kinds in, so that a
//! restart of the log shipper it runs in does not report every kind of
//! anomaly once more (news once, across restarts). Used by the filters
//! that live in a shipper: both Fluent Bit faces ([`crate::watch`]) and
//! `logarithm filter` (rsyslog's `mmexternal`, any pipe). The monitor keeps
//! its own, `DATA_DIR/reported-kinds.json`, restored the same way.
//!
//! The memory is the detector's [`crate::Detector::save_memory`] bytes. A
//! face tells how far it changed ([`Generation`]) after each record or
//! batch; it is saved when a kind was reported (or a summary came due) at
//! once while the memory is small ([`SMALL_MEMORY`], about a thousand
//! kinds), else at most once every [`SAVE_NEWS_EVERY`]; when only counts
//! changed, every [`SAVE_COUNTS_EVERY`]; and where a face has an exit, at
//! exit. The Fluent Bit module has neither an exit nor a timer: what it
//! did not save waits for its next record. A stop can cost news, which
//! means a kind reported again, never one missed. One file belongs to one
//! filter: two filters writing the same one overwrite each other's.

pub use crate::kinds::Generation;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A memory up to this size is written at each news: about a thousand
/// kinds, a write that costs little.
pub const SMALL_MEMORY: usize = 256 << 10;

/// How often at most a larger memory with news is written: a flood of new
/// kinds costs one write a second, not one per record.
pub const SAVE_NEWS_EVERY: Duration = Duration::from_secs(1);

/// How often at most a memory whose counts alone changed is written: a
/// failure that keeps happening does not rewrite it every second.
pub const SAVE_COUNTS_EVERY: Duration = Duration::from_secs(10);

/// A memory file, and what was last saved to it.
pub struct MemoryFile {
    path: PathBuf,
    /// The generation the file holds; `None` when unknown (the detector
    /// was replaced, and its generations started anew).
    saved: Option<Generation>,
    saved_at: Option<Instant>,
    /// The size of the memory last written.
    saved_len: usize,
    /// Whether a memory was read back: the detector keeps what its model
    /// still finds anomalous, so the file is written again as it now is.
    read_back: bool,
    /// Whether the last save failed: the next is tried only after
    /// [`SAVE_COUNTS_EVERY`], not at every record.
    failing: bool,
    /// The last problem told, so that a lasting one is told once.
    problem: Option<String>,
}

impl MemoryFile {
    /// The memory file at `path`; nothing is read or written yet.
    pub fn new(path: PathBuf) -> Self {
        Self { path, saved: None, saved_at: None, saved_len: 0, read_back: false, failing: false, problem: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Restores the saved memory with `restore` (into a face's detector),
    /// returning the kinds it kept. No file, or an empty one (a module's
    /// memory file is created empty to turn it on), is no memory yet. A
    /// memory that cannot be read or restored is the error to tell; one
    /// that cannot be restored is first set aside as `FILE.damaged`.
    /// Either way its kinds will be reported again. Then tell
    /// [`MemoryFile::restored`] the detector's generation.
    pub fn restore<E: std::fmt::Display>(&mut self, restore: impl FnOnce(&[u8]) -> Result<usize, E>) -> Result<usize, String> {
        let again = "kinds of anomalies already reported will be reported again";
        self.remove_leftovers();
        let bytes = match read_regular(&self.path) {
            Ok(Ok(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => return Ok(0),
            Ok(Ok(bytes)) => Ok(bytes),
            // Not a file to read (a link, a FIFO, too large): set aside as damaged.
            Ok(Err(why)) => Err(why),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(format!("cannot read {}: {e}; {again}", self.path.display())),
        };
        self.read_back = true;
        bytes.and_then(|bytes| restore(&bytes).map_err(|e| e.to_string())).map_err(|e| {
            let mut aside = self.path.as_os_str().to_owned();
            aside.push(".damaged");
            let aside = PathBuf::from(aside);
            let moved = match std::fs::rename(&self.path, &aside) {
                Ok(()) => format!("set aside as {}", aside.display()),
                Err(e) => format!("cannot set it aside: {e}"),
            };
            format!("cannot restore {}: {e}; {moved}; {again}", self.path.display())
        })
    }

    /// Notes the detector's generation once restored: what the file holds,
    /// not to be written back unchanged, unless a memory was read back
    /// (restored under another model, kinds it knows were dropped: a
    /// retrain's forgetting is saved at the first chance).
    pub fn restored(&mut self, generation: Generation) {
        self.saved = (!self.read_back).then_some(generation);
    }

    /// Notes that the detector was replaced (a new model, its memory
    /// carried over): its generations start anew, so the next
    /// [`MemoryFile::persist`] writes.
    pub fn replaced(&mut self) {
        self.saved = None;
    }

    /// Whether the memory at `generation` is to be saved now: it changed
    /// since it was last saved, and that was long enough ago for what
    /// changed, or this is the face's `last` chance (its exit).
    pub fn due(&self, generation: Generation, last: bool) -> bool {
        // Unchanged, the usual case after every record: answered without
        // reading the clock (in wasm, a call out of the module).
        if self.saved.is_some_and(|saved| saved.changes == generation.changes) {
            return false;
        }
        let since = || self.saved_at.map_or(Duration::MAX, |at| at.elapsed());
        if self.failing && !last {
            // Not a rebuild of the memory and a failed write per record.
            return since() >= SAVE_COUNTS_EVERY;
        }
        let Some(saved) = self.saved else { return true };
        let news = generation.news != saved.news;
        last || (news && self.saved_len <= SMALL_MEMORY) || since() >= if news { SAVE_NEWS_EVERY } else { SAVE_COUNTS_EVERY }
    }

    /// Saves the memory at `generation` when [`MemoryFile::due`], its bytes
    /// from `bytes`: to a file beside it, then renamed over it, so that a
    /// stop midway leaves the old memory whole. Returns a problem to tell,
    /// the first time it happens (a failure is retried at the next save).
    pub fn persist(&mut self, generation: Generation, last: bool, bytes: impl FnOnce() -> Result<Vec<u8>, String>) -> Option<String> {
        if !self.due(generation, last) {
            return None;
        }
        self.saved_at = Some(Instant::now());
        match bytes().and_then(|bytes| write_replacing(&self.path, &bytes).map(|()| bytes.len()).map_err(|e| e.to_string())) {
            Ok(len) => {
                self.saved = Some(generation);
                self.saved_len = len;
                (self.failing, self.problem) = (false, None);
                None
            }
            Err(e) => {
                self.failing = true;
                let told = format!(
                    "cannot save the kinds of anomalies reported to {}: {e}; a restart will report them again",
                    self.path.display()
                );
                (self.problem.as_ref() != Some(&told)).then(|| {
                    self.problem = Some(told.clone());
                    told
                })
            }
        }
    }

    /// Removes the new files a save left beside the memory file when it
    /// was killed before renaming one (their random names are never
    /// reused).
    fn remove_leftovers(&self) {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let Some(name) = self.path.file_name().map(|n| format!(".{}.", n.to_string_lossy())) else { return };
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            if file.starts_with(&name) && file.ends_with(".tmp") && file.len() == name.len() + 16 + 4 {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A memory file is read up to this size: 10,000 kinds take a few MB.
const MAX_MEMORY_BYTES: u64 = 64 << 20;

/// The bytes of the memory file at `path`, if it is a regular file of at
/// most [`MAX_MEMORY_BYTES`]: whoever may write its directory could put a
/// link to an endless file or a FIFO there, which would exhaust memory or
/// block the shipper at start. The inner error says why it is not read.
fn read_regular(path: &Path) -> std::io::Result<Result<Vec<u8>, String>> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Natively checked on what was opened: without following a link, and
    // without waiting on a FIFO. (In wasm, links out of the directory are
    // the sandbox's, and the file is looked at first.)
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    #[cfg(not(unix))]
    if !std::fs::symlink_metadata(path)?.is_file() {
        return Ok(Err(format!("{} is not a regular file", path.display())));
    }
    let file = match options.open(path) {
        // ELOOP: a link.
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Err(format!("{} is a symbolic link, not followed", path.display()))),
        opened => opened?,
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Err(format!("{} is not a regular file", path.display())));
    }
    if meta.len() > MAX_MEMORY_BYTES {
        return Ok(Err(format!(
            "{} holds {} bytes, more than a memory of reported kinds ever does ({MAX_MEMORY_BYTES})",
            path.display(),
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_MEMORY_BYTES).read_to_end(&mut bytes)?;
    Ok(Ok(bytes))
}

/// `path` replaced by `bytes` at once: written to a new file beside it and
/// renamed over it. The new file has a name nobody can foresee
/// and is created new (`O_EXCL`), so no link or file planted beside the
/// memory file is followed or reused: a fixed `.tmp` name let whoever may
/// write the directory point it at a file a privileged shipper would then
/// overwrite. Natively it is made 0600 (the kinds name what the logs say);
/// in wasm the shipper's umask decides.
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::hash::BuildHasher;
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Random keys, from the system's random source in wasm too (WASI's
    // `random_get`): no dependency for sixteen random hex digits.
    let random = std::collections::hash_map::RandomState::new();
    let mut attempt = 0u64;
    let (mut file, tmp) = loop {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", random.hash_one(attempt)));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&tmp) {
            Ok(file) => break (file, tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    // Not synced: a crash may leave an older or a damaged memory, which
    // costs kinds reported again, never one missed, while a sync per news
    // could stall the shipper's thread for as long as its disk is busy.
    let written = file.write_all(bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(changes: u64, news: u64) -> Generation {
        Generation { changes, news }
    }

    #[test]
    fn saved_when_changed_news_at_once_counts_later_and_restored() {
        let dir = std::env::temp_dir().join(format!("logarithm-memory-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut file = MemoryFile::new(dir.join("kinds.json"));
        let read = |file: &mut MemoryFile| {
            let mut got = None;
            file.restore(|b: &[u8]| {
                got = Some(b.to_vec());
                Ok::<_, String>(1)
            })
            .map(|_| got)
        };
        assert_eq!(read(&mut file), Ok(None), "no file: no memory yet");
        std::fs::write(file.path(), "\n").unwrap();
        assert_eq!(read(&mut file), Ok(None), "an empty file: no memory yet");
        file.restored(generation(0, 0));
        assert!(!file.due(generation(0, 0), true), "unchanged");
        assert!(file.due(generation(1, 1), false), "news, never saved");
        assert_eq!(file.persist(generation(1, 1), false, || Ok(b"{\"a\":1}".to_vec())), None);
        assert_eq!(read(&mut file), Ok(Some(b"{\"a\":1}".to_vec())));
        assert!(!file.due(generation(1, 1), true));
        assert!(file.due(generation(2, 2), false), "news, in a small memory: at once");
        assert!(!file.due(generation(2, 1), false), "counts only: every 10 s");
        assert!(file.due(generation(2, 1), true), "but at exit");
        let big = vec![b' '; SMALL_MEMORY + 1];
        assert_eq!(file.persist(generation(2, 2), true, || Ok(big)), None);
        assert!(!file.due(generation(3, 3), false), "news in a large memory: within a second");
        std::thread::sleep(SAVE_NEWS_EVERY);
        assert!(file.due(generation(3, 3), false), "news, a second later");
        file.replaced();
        assert!(file.due(generation(1, 1), false), "a new detector's generations are not the old one's");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777, 0o600);

        // Nothing is left beside it, and a link planted there is not
        // followed (review: a fixed `.tmp` name was).
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("kinds.json.tmp")).unwrap();
        assert_eq!(file.persist(generation(3, 3), true, || Ok(b"{\"b\":2}".to_vec())), None);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["kinds.json", "kinds.json.tmp", "victim"]);

        // What a save killed before its rename left is removed at restore.
        std::fs::write(dir.join(".kinds.json.0123456789abcdef.tmp"), "{}").unwrap();
        assert_eq!(read(&mut file), Ok(Some(b"{\"b\":2}".to_vec())));
        assert!(!dir.join(".kinds.json.0123456789abcdef.tmp").exists());

        // Not a file to read: a link, a FIFO (which would block the
        // shipper), a giant file: set aside, not read (review).
        let real = file.path().to_path_buf();
        std::fs::rename(&real, dir.join("real")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &real).unwrap();
        let told = file.restore(|_: &[u8]| Ok::<_, String>(1)).unwrap_err();
        assert!(told.contains("symbolic link, not followed") && told.contains("set aside"), "{told}");
        std::fs::remove_file(dir.join("kinds.json.damaged")).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(&real).status().unwrap().success());
        let told = file.restore(|_: &[u8]| Ok::<_, String>(1)).unwrap_err();
        assert!(told.contains("not a regular file") && told.contains("set aside"), "{told}");
        std::fs::remove_file(dir.join("kinds.json.damaged")).unwrap();
        std::fs::File::create(&real).unwrap().set_len(MAX_MEMORY_BYTES + 1).unwrap();
        let told = file.restore(|_: &[u8]| Ok::<_, String>(1)).unwrap_err();
        assert!(told.contains("more than a memory of reported kinds ever does"), "{told}");
        std::fs::remove_file(dir.join("kinds.json.damaged")).unwrap();
        std::fs::rename(dir.join("real"), &real).unwrap();

        // Damaged: said, and set aside under its own name.
        let told = file.restore(|_: &[u8]| Err("not a saved memory")).unwrap_err();
        assert!(told.contains("not a saved memory") && told.contains("kinds.json.damaged") && told.contains("reported again"), "{told}");
        assert!(dir.join("kinds.json.damaged").is_file() && !file.path().exists());

        // A directory that is not there: told once, retried.
        let mut lost = MemoryFile::new(dir.join("missing/kinds.json"));
        let told = lost.persist(generation(1, 1), true, || Ok(b"{}".to_vec())).unwrap();
        assert!(told.contains("missing/kinds.json") && told.contains("will report them again"), "{told}");
        assert!(!lost.due(generation(2, 2), false), "a failed save is not tried again at once");
        assert_eq!(lost.persist(generation(2, 2), true, || Ok(b"{}".to_vec())), None, "told once");
        std::fs::create_dir_all(dir.join("missing")).unwrap();
        assert_eq!(lost.persist(generation(3, 3), true, || Ok(b"{}".to_vec())), None);
        assert!(!lost.due(generation(3, 3), true));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
