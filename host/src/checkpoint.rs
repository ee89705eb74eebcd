//! Checkpoints: how far each source has been scored, so that a restart
//! (after a crash, `kill -9`, or a clean stop) resumes exactly there.
//!
//! A file is identified by device and inode (so a rename keeps its
//! checkpoint) and by a fingerprint of its first bytes (so a reused inode or
//! a truncated-and-rewritten file is not mistaken for the old one). The
//! journal is identified by its cursor.
//!
//! The monitor records a line's position only after the line's verdict was
//! written and flushed, and saves the checkpoints after every batch
//! (atomically: temp file and rename; fsync'd at most every few seconds and
//! at exit). A crash therefore loses nothing and repeats at most the batch
//! whose output was flushed but whose checkpoint was not yet saved.
//!
//! One following monitor at a time owns a data directory's checkpoints
//! ([`Checkpoints::lock`]), so two cannot overwrite each other's; entries of
//! files gone for good are pruned ([`Checkpoints::prune_gone`]).

use crate::datadir::write_atomic;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Bytes at the start of a file that identify its content.
pub const FINGERPRINT_BYTES: usize = 256;

/// The hash of a file's first `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many bytes were hashed (less than [`FINGERPRINT_BYTES`] while the
    /// file is shorter).
    pub len: u32,
    /// SHA-256 of those bytes, first 16 bytes, hex. Shared: every line
    /// read carries its file's fingerprint.
    pub hash: Arc<str>,
}

impl Fingerprint {
    /// The fingerprint of `head` (at most [`FINGERPRINT_BYTES`] are used).
    pub fn of(head: &[u8]) -> Self {
        let head = &head[..head.len().min(FINGERPRINT_BYTES)];
        Self { len: head.len() as u32, hash: hex::encode(&Sha256::digest(head)[..16]).into() }
    }
}

/// Where a line came from, precisely enough to resume after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Stdin and other streams that cannot be resumed.
    None,
    /// A byte offset in a file.
    File(FilePosition),
    /// A journal entry.
    Journal {
        /// Which journal (see `Checkpoints::journals`).
        journal: String,
        /// The entry's cursor.
        cursor: String,
    },
}

/// The position just after a line in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    /// The path the file was found at. Shared: every line read carries it.
    pub path: Arc<Path>,
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Offset just after the line, bytes.
    pub offset: u64,
    /// The file's fingerprint when the line was read.
    pub fingerprint: Fingerprint,
    /// The line's number in the file, so a restart numbers the next ones
    /// without counting the lines before it; 0 when not known (a checkpoint
    /// written before it was kept).
    #[serde(default)]
    pub line: u64,
}

/// All checkpoints of a data directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoints {
    /// Files by `"dev:ino"`.
    #[serde(default)]
    pub files: BTreeMap<String, FilePosition>,
    /// The cursor of the last scored journal entry, per journal (`system`
    /// or the directory given with `--journal-dir`).
    #[serde(default)]
    pub journals: BTreeMap<String, String>,
    /// When they were last saved (the file's modification time), if loaded
    /// from a file: a rotated log written after it holds only lines the
    /// monitor never saw (`sources::files`).
    #[serde(skip)]
    pub saved_at: Option<SystemTime>,
    /// The files whose position was recorded since these were loaded.
    #[serde(skip)]
    recorded_files: BTreeSet<String>,
}

fn file_key(dev: u64, ino: u64) -> String {
    format!("{dev}:{ino}")
}

impl Checkpoints {
    /// The file of a data directory that holds its checkpoints.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("checkpoints.json")
    }

    /// Loads checkpoints; a missing file means none. A damaged file does
    /// not stop the monitor (issue 10): it is set aside as
    /// `checkpoints.json.damaged` with a warning, and reading starts where
    /// it does without checkpoints (the end of each log, or `--since`).
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => match Self::parse(&bytes) {
                Ok(checkpoints) => {
                    let saved_at = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                    Ok(Self { saved_at, ..checkpoints })
                }
                Err(e) => {
                    let aside = path.with_extension("json.damaged");
                    std::fs::rename(path, &aside)
                        .with_context(|| format!("cannot set the damaged checkpoint file {} aside", path.display()))?;
                    tracing::warn!(
                        "checkpoint file {} is damaged ({e}); set aside as {}; each log is read from where a start without checkpoints reads it (its end, or its start with --from-head)",
                        path.display(),
                        aside.display()
                    );
                    Ok(Self::default())
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read checkpoint file {}", path.display())),
        }
    }

    /// Takes the checkpoints of the file at `path` for this process: an
    /// `flock` on `PATH.lock`, held until the returned file is dropped.
    /// A second following monitor on the same data directory is refused,
    /// naming the holder, instead of overwriting its checkpoints.
    pub fn lock(path: &Path) -> Result<File> {
        match crate::datadir::lock_file(&path.with_extension("json.lock"), "monitor")? {
            Ok(file) => Ok(file),
            Err(holder) => bail!(
                "another logarithm monitor ({holder}) keeps its checkpoints in {}; a second one would overwrite them: give it its own --data-dir, or --no-checkpoint",
                path.parent().unwrap_or(Path::new(".")).display()
            ),
        }
    }

    /// Drops the entries of files gone for good: no file with the entry's
    /// device and inode is left in the directory it was read in (where
    /// rotation moves it, so a rotated file not yet drained keeps its
    /// entry). A directory that cannot be read for another reason than its
    /// absence keeps its entries. Returns how many were dropped.
    pub fn prune_gone(&mut self) -> usize {
        let mut present: HashMap<PathBuf, Option<HashSet<(u64, u64)>>> = HashMap::new();
        let before = self.files.len();
        self.files.retain(|_, p| {
            let dir = p.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
            let ids = present.entry(dir).or_insert_with_key(|dir| match std::fs::read_dir(dir) {
                Ok(entries) => Some(entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| (m.dev(), m.ino())).collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(HashSet::new()),
                Err(_) => None,
            });
            ids.as_ref().is_none_or(|ids| ids.contains(&(p.dev, p.ino)))
        });
        let files = &self.files;
        self.recorded_files.retain(|key| files.contains_key(key));
        before - self.files.len()
    }

    /// Reads the contents of a checkpoint file; any bytes are safe here
    /// (issue 10: the `checkpoint` fuzz target).
    pub fn parse(bytes: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(bytes)
    }

    /// The checkpoint of a file by identity.
    pub fn file(&self, dev: u64, ino: u64) -> Option<&FilePosition> {
        self.files.get(&file_key(dev, ino))
    }

    /// Records `position` (where a source was opened, before it delivered
    /// anything) unless its file or journal has a position already. A file
    /// rewritten while the monitor was down (copytruncate) is opened at its
    /// start, and its loaded position, about what it held before, is
    /// replaced; a position recorded since never is.
    pub fn record_if_new(&mut self, position: &Position) {
        let known = match position {
            Position::None => true,
            Position::File(p) => self.recorded_files.contains(&file_key(p.dev, p.ino)),
            Position::Journal { journal, .. } => self.journals.contains_key(journal),
        };
        if !known {
            self.record(position);
        }
    }

    /// Records that everything up to `position` was scored.
    pub fn record(&mut self, position: &Position) {
        match position {
            Position::None => {}
            Position::File(p) => {
                let key = file_key(p.dev, p.ino);
                self.recorded_files.insert(key.clone());
                self.files.insert(key, p.clone());
            }
            Position::Journal { journal, cursor } => {
                self.journals.insert(journal.clone(), cursor.clone());
            }
        }
    }
}

/// Saves checkpoints to disk after batches, fsync'ing at most every
/// `SYNC_INTERVAL` (the rename alone survives a process crash; fsync is for
/// power loss).
pub struct CheckpointWriter {
    path: PathBuf,
    state: Checkpoints,
    dirty: bool,
    last_sync: Instant,
    /// When files gone for good were last pruned (`None`: not yet).
    last_prune: Option<Instant>,
}

const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// How often the entries of files gone for good are pruned (and at the
/// first save).
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

impl CheckpointWriter {
    /// A writer for `path`, starting from `state`.
    pub fn new(path: PathBuf, state: Checkpoints) -> Self {
        Self { path, state, dirty: false, last_sync: Instant::now(), last_prune: None }
    }

    /// The current state.
    pub fn state(&self) -> &Checkpoints {
        &self.state
    }

    /// Records a scored position.
    pub fn record(&mut self, position: &Position) {
        if *position != Position::None {
            self.state.record(position);
            self.dirty = true;
        }
    }

    /// Records `position` for a source that has none yet (one opened at its
    /// end that has delivered nothing since).
    pub fn record_if_new(&mut self, position: &Position) {
        let before = (self.state.files.len(), self.state.journals.len());
        self.state.record_if_new(position);
        self.dirty |= before != (self.state.files.len(), self.state.journals.len());
    }

    /// Records a batch's scored positions, in the order read. Only the last
    /// of each file or journal decides, so only it is recorded (issue 11:
    /// recording every line cloned its path and fingerprint).
    pub fn record_batch<'a>(&mut self, positions: impl DoubleEndedIterator<Item = &'a Position>) {
        let mut recorded: Vec<&Position> = Vec::new();
        for position in positions.rev() {
            let same = |p: &&Position| match (*p, position) {
                (Position::File(a), Position::File(b)) => (a.dev, a.ino) == (b.dev, b.ino),
                (Position::Journal { journal: a, .. }, Position::Journal { journal: b, .. }) => a == b,
                _ => false,
            };
            if *position != Position::None && !recorded.iter().any(same) {
                self.record(position);
                recorded.push(position);
            }
        }
    }

    /// Writes the checkpoints if anything changed.
    pub fn save(&mut self, force_sync: bool) -> Result<()> {
        if self.last_prune.is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL) {
            self.last_prune = Some(Instant::now());
            let gone = self.state.prune_gone();
            if gone > 0 {
                tracing::debug!("forgot the checkpoints of {gone} files gone for good");
                self.dirty = true;
            }
        }
        if !self.dirty {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&self.state)?;
        if force_sync || self.last_sync.elapsed() >= SYNC_INTERVAL {
            write_atomic(&self.path, &json)?;
            self.last_sync = Instant::now();
        } else {
            write_atomic_nosync(&self.path, &json)?;
        }
        self.dirty = false;
        Ok(())
    }
}

fn write_atomic_nosync(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    std::fs::write(tmp.path(), bytes).with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut w = CheckpointWriter::new(path.clone(), Checkpoints::load(&path).unwrap());
        // A real file: saving prunes the entries of files that are not there.
        let log = dir.path().join("x.log");
        std::fs::write(&log, "abc\n").unwrap();
        let meta = std::fs::metadata(&log).unwrap();
        let pos =
            FilePosition { path: log.into(), dev: meta.dev(), ino: meta.ino(), offset: 30, fingerprint: Fingerprint::of(b"abc"), line: 3 };
        w.record(&Position::File(pos.clone()));
        w.record(&Position::Journal { journal: "system".into(), cursor: "s=1;i=2".into() });
        w.save(true).unwrap();
        let back = Checkpoints::load(&path).unwrap();
        assert_eq!(back.file(pos.dev, pos.ino), Some(&pos));
        assert_eq!(back.journals["system"], "s=1;i=2");
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(Checkpoints::load(&path).unwrap(), Checkpoints::default());
        assert_eq!(std::fs::read_to_string(path.with_extension("json.damaged")).unwrap(), "{ not json");
        assert!(!path.exists());
    }

    /// Where a file was opened replaces its position loaded from disk (it
    /// was rewritten while the monitor was down), never one recorded since,
    /// and a journal's loaded cursor stays.
    #[test]
    fn an_opened_position_replaces_only_a_loaded_one() {
        let at = |ino: u64, offset: u64, head: &[u8]| {
            Position::File(FilePosition {
                path: Path::new("app.log").into(),
                dev: 1,
                ino,
                offset,
                fingerprint: Fingerprint::of(head),
                line: 0,
            })
        };
        let mut loaded = Checkpoints::default();
        loaded.record(&at(7, 900, b"before"));
        loaded.record(&at(8, 500, b"read"));
        loaded.record(&Position::Journal { journal: "system".into(), cursor: "s=1".into() });
        let mut state = Checkpoints::parse(&serde_json::to_vec(&loaded).unwrap()).unwrap();
        state.record(&at(8, 600, b"read"));
        for opened in [at(7, 0, b"after"), at(8, 0, b"read"), at(9, 0, b"new")] {
            state.record_if_new(&opened);
        }
        state.record_if_new(&Position::Journal { journal: "system".into(), cursor: "s=2".into() });
        let offset = |ino| state.file(1, ino).map(|p| (p.offset, p.fingerprint.clone()));
        assert_eq!(offset(7), Some((0, Fingerprint::of(b"after"))), "rewritten while down");
        assert_eq!(offset(8), Some((600, Fingerprint::of(b"read"))), "recorded since");
        assert_eq!(offset(9), Some((0, Fingerprint::of(b"new"))));
        assert_eq!(state.journals["system"], "s=1");
    }

    /// Issue 11: a batch's positions, interleaved from several files and a
    /// journal, leave the state recording them one by one leaves.
    #[test]
    fn a_batch_records_what_its_positions_one_by_one_would() {
        let at = |dev, offset| {
            Position::File(FilePosition {
                path: Path::new(&format!("{dev}.log")).into(),
                dev,
                ino: 7,
                offset,
                fingerprint: Fingerprint::of(b"x"),
                line: offset,
            })
        };
        let cursor = |c: &str| Position::Journal { journal: "system".into(), cursor: c.into() };
        let batch = [at(1, 10), cursor("a"), at(2, 5), Position::None, at(1, 20), cursor("b"), at(2, 3), at(1, 30), Position::None];
        let dir = tempfile::tempdir().unwrap();
        let (mut one_by_one, mut batched) = (
            CheckpointWriter::new(dir.path().join("a.json"), Checkpoints::default()),
            CheckpointWriter::new(dir.path().join("b.json"), Checkpoints::default()),
        );
        batch.iter().for_each(|p| one_by_one.record(p));
        batched.record_batch(batch.iter());
        assert_eq!(batched.state(), one_by_one.state());
        assert_eq!(batched.state().file(2, 7).map(|p| p.offset), Some(3));
        assert_eq!(batched.state().journals["system"], "b");
    }

    /// Issue 10: entries of files gone for good are pruned; a file rotated
    /// within its directory, or in a directory that cannot be read, keeps
    /// its entry.
    #[test]
    fn files_gone_for_good_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = Checkpoints::default();
        let mut add = |path: PathBuf, dev, ino| {
            state.record(&Position::File(FilePosition {
                path: path.into(),
                dev,
                ino,
                offset: 1,
                fingerprint: Fingerprint::of(b"x"),
                line: 1,
            }))
        };
        let id = |p: &Path| {
            let m = std::fs::metadata(p).unwrap();
            (m.dev(), m.ino())
        };
        let (live, rotated, removed) = (dir.path().join("live.log"), dir.path().join("app.log"), dir.path().join("gone.log"));
        for p in [&live, &rotated, &removed] {
            std::fs::write(p, "x\n").unwrap();
        }
        let (l, r, g) = (id(&live), id(&rotated), id(&removed));
        add(live, l.0, l.1);
        add(rotated.clone(), r.0, r.1);
        add(removed.clone(), g.0, g.1);
        add(dir.path().join("no-such-dir/x.log"), 1, 2);
        std::fs::rename(&rotated, dir.path().join("app.log.1")).unwrap();
        std::fs::remove_file(&removed).unwrap();
        assert_eq!(state.prune_gone(), 2);
        assert!(state.file(l.0, l.1).is_some() && state.file(r.0, r.1).is_some(), "{state:?}");
        assert!(state.file(g.0, g.1).is_none());
    }

    /// Issue 10: one owner of a data directory's checkpoints at a time.
    #[test]
    fn a_second_owner_of_the_checkpoints_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = Checkpoints::path_in(dir.path());
        let held = Checkpoints::lock(&path).unwrap();
        let err = Checkpoints::lock(&path).unwrap_err().to_string();
        assert!(err.contains("another logarithm monitor") && err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(held);
        Checkpoints::lock(&path).unwrap();
    }
}
