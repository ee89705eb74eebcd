//! The file a filter keeps its memory of reported kinds in, so that a
//! restart of the log shipper it runs in does not report every kind of
//! anomaly once more (news once, across restarts). Used by the filters
//! that live in a shipper: both Fluent Bit faces ([`crate::watch`]) and
//! `logarithm filter` (rsyslog's `mmexternal`, any pipe). The monitor keeps
//! its own, `DATA_DIR/reported-kinds.json`.
//!
//! The memory is the detector's [`crate::Detector::save_memory`] bytes. It
//! is saved when it changed (a face counts its changes, a *generation*),
//! at most once every [`SAVE_EVERY`], and where a face has an exit, at
//! exit: a stop can cost the changes of the last second, which means a
//! kind reported again, never one missed. One file belongs to one filter:
//! two filters writing the same one overwrite each other's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often at most a changed memory is written: a flood of new kinds
/// costs one write a second, not one per record.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// A memory file, and what was last saved to it.
pub struct MemoryFile {
    path: PathBuf,
    /// The generation last saved (or restored).
    saved: u64,
    saved_at: Option<Instant>,
    /// The last problem told, so that a lasting one is told once.
    problem: Option<String>,
}

impl MemoryFile {
    /// The memory file at `path`; nothing is read or written yet.
    pub fn new(path: PathBuf) -> Self {
        Self { path, saved: 0, saved_at: None, problem: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved memory, or `None` when there is none yet (no file, or an
    /// empty one: a module's memory file is created empty to turn it on).
    pub fn read(&self) -> Result<Option<Vec<u8>>, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", self.path.display())),
        }
    }

    /// Whether the memory at `generation` is to be saved now: it changed
    /// since it was last saved, and that was at least [`SAVE_EVERY`] ago or
    /// this is the face's `last` chance (its exit).
    pub fn due(&self, generation: u64, last: bool) -> bool {
        generation != self.saved && (last || self.saved_at.is_none_or(|at| at.elapsed() >= SAVE_EVERY))
    }

    /// Notes that the memory at `generation` is what the file holds (as
    /// restored), so that it is not written back unchanged.
    pub fn restored(&mut self, generation: u64) {
        self.saved = generation;
    }

    /// Writes `bytes`, the memory at `generation`: to a file beside it,
    /// then renamed over it, so that a stop midway leaves the old memory
    /// whole. Returns a problem to tell, the first time it happens (a
    /// failure is retried at the next save).
    pub fn save(&mut self, generation: u64, bytes: &[u8]) -> Option<String> {
        self.saved_at = Some(Instant::now());
        match write_replacing(&self.path, bytes) {
            Ok(()) => {
                self.saved = generation;
                self.problem = None;
                None
            }
            Err(e) => {
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
}

/// `path` replaced by `bytes` at once: written to `path.tmp`, synced, and
/// renamed over it. Natively the file is made 0600 (the kinds name what
/// the logs say); in wasm the shipper's umask decides.
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_when_changed_at_most_every_second_and_read_back() {
        let dir = std::env::temp_dir().join(format!("logarithm-memory-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut file = MemoryFile::new(dir.join("kinds.json"));
        assert_eq!(file.read(), Ok(None), "no file: no memory yet");
        std::fs::write(file.path(), "\n").unwrap();
        assert_eq!(file.read(), Ok(None), "an empty file: no memory yet");
        assert!(!file.due(0, true), "unchanged");
        assert!(file.due(1, false), "changed, never saved");
        assert_eq!(file.save(1, b"{\"a\":1}"), None);
        assert_eq!(file.read(), Ok(Some(b"{\"a\":1}".to_vec())));
        assert!(!file.due(1, true));
        assert!(!file.due(2, false), "changed again within a second");
        assert!(file.due(2, true), "but at exit");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777, 0o600);

        // A directory that is not there: told once, retried.
        let mut lost = MemoryFile::new(dir.join("missing/kinds.json"));
        let told = lost.save(1, b"{}").unwrap();
        assert!(told.contains("missing/kinds.json") && told.contains("will report them again"), "{told}");
        assert_eq!(lost.save(2, b"{}"), None, "told once");
        std::fs::create_dir_all(dir.join("missing")).unwrap();
        assert_eq!(lost.save(3, b"{}"), None);
        assert!(!lost.due(3, true));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
