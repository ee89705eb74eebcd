//! The data directory: versioned model files, the pointer to the current one,
//! and the generated key used when no passphrase is given.
//!
//! ```text
//! DATA_DIR/
//!   current                 the current version number
//!   key                     generated passphrase (mode 0600), if none is given
//!   fingerprint-salt        random salt of the key fingerprints (hex, not secret)
//!   audit.log, audit.head   the audit log and its last entry (see `audit`)
//!   lock                    held by whoever changes the models
//!   models/model-000001.lgm encrypted model, one file per version
//!   models/model-000001.json  its metadata (no vocabulary: nothing secret)
//! ```
//!
//! Every file is written atomically (temp file in the same directory, fsync,
//! rename, fsync of the directory), so a crash never leaves a half-written
//! model or pointer behind.

use anyhow::{Context, Result, bail};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Environment variable naming the data directory.
pub const DATA_DIR_ENV: &str = "LOGARITHM_DATA_DIR";
/// Environment variable holding the encryption passphrase.
pub const KEY_ENV: &str = "LOGARITHM_ENCRYPTION_KEY";
/// Environment variable naming a file that holds the passphrase.
pub const KEY_FILE_ENV: &str = "LOGARITHM_ENCRYPTION_KEY_FILE";
use logarithm_detector::modelfile::layout;
/// The name of the passphrase among systemd credentials
/// (`LoadCredential=logarithm-key:...`, read from `$CREDENTIALS_DIRECTORY`).
pub use logarithm_detector::modelfile::layout::KEY_CREDENTIAL;

/// A data directory (which need not exist yet).
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// Where a passphrase came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `-K` or `LOGARITHM_ENCRYPTION_KEY`.
    Given,
    /// A key file: `--key-file` or `LOGARITHM_ENCRYPTION_KEY_FILE`.
    KeyFile(PathBuf),
    /// The systemd credential `$CREDENTIALS_DIRECTORY/logarithm-key`.
    Credential(PathBuf),
    /// The generated key file in the data directory.
    File(PathBuf),
}

/// The process's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Where the key came from, for errors: a wrong key's error says which one
/// was tried (a stale credential goes before the generated key, unseen).
impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyOrigin::Given => write!(f, "the key given with -K or {KEY_ENV}"),
            KeyOrigin::KeyFile(p) => write!(f, "the key file {}", p.display()),
            KeyOrigin::Credential(p) => write!(f, "the systemd credential {}", p.display()),
            KeyOrigin::File(p) => write!(f, "the generated key {}", p.display()),
        }
    }
}

/// Reads a passphrase from a key file (surrounding white space trimmed);
/// `-` is standard input, read from the descriptor as it is: a key file
/// only root may read, redirected by root into a command run as the
/// service's user (`setpriv`), cannot be opened again by that user, not
/// even as `/dev/stdin`.
pub fn read_key_file(path: &Path) -> Result<String> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read the key from standard input")?
    } else {
        fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?
    };
    if path != Path::new("-")
        && let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!("key file {} is readable by others; chmod 600 it", path.display());
    }
    let key = text.trim();
    if key.is_empty() {
        bail!("key file {} is empty", path.display());
    }
    Ok(key.to_owned())
}

/// Takes an `flock` on `path` (created 0600) for this process and writes
/// `pid N: what` in it; held until the file is dropped. When another
/// process holds it: `Ok(Err(its line))`, to name the holder. A symbolic
/// link there is refused, never followed: whoever can write the data
/// directory (the monitor, which reads untrusted input) could otherwise
/// make a root `logarithm-trainer` overwrite any file.
pub fn lock_file(path: &Path, what: &str) -> Result<Result<File, String>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => anyhow::anyhow!("the lock file {} is a symbolic link, which is never followed; remove it", path.display()),
            _ => anyhow::Error::new(e).context(format!("cannot open the lock file {}", path.display())),
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(path).unwrap_or_default();
            return Ok(Err(holder.trim().trim_end_matches('.').to_owned()));
        }
        Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
    file.set_len(0)
        .and_then(|_| writeln!(file, "pid {}: {what}", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Ok(file))
}

/// The prefix of `model rekey`'s staging directory in the data directory.
pub const REKEY_STAGING: &str = ".rekey-";

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with_mode(path, bytes, 0o600)
}

/// [`write_atomic`], the file given `mode` before it takes the name (so
/// that nobody sees it under the name with another mode).
pub fn write_atomic_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // Set, not asked for at creation, where the umask would narrow it.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", tmp.path().display()))?;
    tmp.write_all(bytes).with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.as_file().sync_all().with_context(|| format!("cannot sync {}", tmp.path().display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("cannot replace {}", path.display()))?;
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync directory {}", dir.display()))?;
    Ok(())
}

impl DataDir {
    /// The data directory given (`-D`, which clap fills from
    /// `LOGARITHM_DATA_DIR`), else `$XDG_DATA_HOME/logarithm`, else
    /// `~/.local/share/logarithm`.
    pub fn resolve(given: Option<PathBuf>) -> Result<Self> {
        let root = match given {
            Some(p) => p,
            None => dirs::data_dir().map(|d| d.join("logarithm")).context("cannot find a data directory: set -D or LOGARITHM_DATA_DIR")?,
        };
        Ok(Self { root })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory if it is missing, mode 0700: it holds the
    /// models and, maybe, the key.
    pub fn create(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))
    }

    /// Refuses root writing into a data directory another user owns (the
    /// service's: systemd's `StateDirectory=`). What root writes there, mode
    /// 0600 (models, `current`, the audit head, checkpoints), the service
    /// cannot read, and it stopped at its next start (review).
    pub fn check_writer(&self) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let Some(meta) = fs::metadata(&self.root).ok().filter(|_| effective_uid() == 0) else { return Ok(()) };
        if meta.uid() == 0 {
            return Ok(());
        }
        let (uid, gid) = (meta.uid(), meta.gid());
        bail!(
            "{} belongs to uid {uid} (the service's user), which could not read what root writes there: run this as that user (setpriv --reuid={uid} --regid={gid} --clear-groups -- ..., or for a systemd dynamic user a transient unit: README, Running it as a service)",
            self.root.display()
        )
    }

    /// Takes the data directory's lock (`DATA_DIR/lock`, an `flock`) for
    /// `what`, so that one trainer at a time changes its models; held until
    /// the file is dropped. A second taker is refused with the holder's pid,
    /// and root is refused another user's data directory
    /// ([`DataDir::check_writer`]).
    pub fn lock(&self, what: &str) -> Result<File> {
        self.check_writer()?;
        self.create()?;
        match lock_file(&self.root.join("lock"), what)? {
            Ok(file) => {
                self.remove_stale_staging();
                Ok(file)
            }
            Err(holder) => bail!("another logarithm-trainer is working on {} ({holder}); wait for it to finish", self.root.display()),
        }
    }

    /// Removes the staging directories (`.rekey-*`) of a re-keying that
    /// was killed: with the lock held, none is in use. Left, each held a
    /// copy of every model that nothing else removes.
    fn remove_stale_staging(&self) {
        let Ok(entries) = fs::read_dir(&self.root) else { return };
        for entry in entries.flatten() {
            let stale =
                entry.file_name().to_str().is_some_and(|n| n.starts_with(REKEY_STAGING)) && entry.file_type().is_ok_and(|t| t.is_dir());
            if stale {
                tracing::info!("removing the staging directory of an interrupted re-keying: {}", entry.path().display());
                if let Err(e) = fs::remove_dir_all(entry.path()) {
                    tracing::warn!("cannot remove {}: {e}", entry.path().display());
                }
            }
        }
    }

    /// Where model versions live.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join(layout::MODELS)
    }

    /// The model file of a version.
    pub fn model_path(&self, version: u32) -> PathBuf {
        layout::model_file(&self.root, version)
    }

    /// The metadata file of a version.
    pub fn meta_path(&self, version: u32) -> PathBuf {
        layout::meta_file(&self.root, version)
    }

    fn current_path(&self) -> PathBuf {
        self.root.join(layout::CURRENT)
    }

    /// All versions present, ascending.
    pub fn versions(&self) -> Result<Vec<u32>> {
        let dir = self.models_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        let mut versions: Vec<u32> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("model-")?.strip_suffix(".lgm")?.parse().ok()
            })
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// The current version, if any model was installed.
    pub fn current_version(&self) -> Result<Option<u32>> {
        let path = self.current_path();
        match fs::read_to_string(&path) {
            Ok(s) => {
                let v = s.trim().parse().with_context(|| format!("{} does not hold a version number", path.display()))?;
                Ok(Some(v))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self.versions()?.last().copied()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The version the next training will write.
    pub fn next_version(&self) -> Result<u32> {
        Ok(self.versions()?.last().map_or(1, |v| v + 1))
    }

    /// Makes `version` current.
    pub fn set_current(&self, version: u32) -> Result<()> {
        write_atomic(&self.current_path(), format!("{version}\n").as_bytes())
    }

    /// Installs a new model version (model file, metadata, then the pointer).
    pub fn install(&self, version: u32, model: &[u8], meta_json: &[u8]) -> Result<PathBuf> {
        self.create()?;
        let dir = self.models_dir();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = self.model_path(version);
        write_atomic(&path, model)?;
        write_atomic(&self.meta_path(version), meta_json)?;
        self.set_current(version)?;
        Ok(path)
    }

    /// The current model's version, or an error that says how to train one.
    pub fn current_model_version(&self) -> Result<u32> {
        match self.current_version()? {
            Some(version) => Ok(version),
            None => bail!(
                "no model in {}: train one first with `logarithm-trainer train [PATHS...]` (or point -D/LOGARITHM_DATA_DIR at a data directory that has one)",
                self.root.display()
            ),
        }
    }

    /// The current model's version and bytes, or an error that says how to
    /// train one.
    pub fn read_current_model(&self) -> Result<(u32, PathBuf, Vec<u8>)> {
        let version = self.current_model_version()?;
        let path = self.model_path(version);
        let bytes = logarithm_detector::modelfile::read_model_file(&path).map_err(anyhow::Error::msg)?;
        Ok((version, path, bytes))
    }

    /// The metadata of a version (its JSON file).
    pub fn read_meta(&self, version: u32) -> Result<serde_json::Value> {
        let path = self.meta_path(version);
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid metadata", path.display()))
    }

    /// Deletes a version's files. Refuses the current version unless
    /// `force`, in which case the newest remaining version becomes current.
    pub fn delete(&self, version: u32, force: bool) -> Result<()> {
        let current = self.current_version()?;
        if current == Some(version) && !force {
            bail!("version {version} is the current model; use --force to delete it anyway");
        }
        let path = self.model_path(version);
        if !path.exists() {
            bail!("no model version {version} in {}", self.models_dir().display());
        }
        fs::remove_file(&path).with_context(|| format!("cannot delete {}", path.display()))?;
        let _ = fs::remove_file(self.meta_path(version));
        if current == Some(version) {
            match self.versions()?.last() {
                Some(&newest) => self.set_current(newest)?,
                None => {
                    let _ = fs::remove_file(self.current_path());
                }
            }
        }
        Ok(())
    }

    /// The current version and the one a rollback makes current: the
    /// version that was current when it was trained, else the one before.
    pub fn rollback_target(&self) -> Result<(u32, u32)> {
        let Some(current) = self.current_version()? else {
            bail!("no model in {} to roll back from", self.root.display());
        };
        let versions = self.versions()?;
        // The version that was current when this one was trained, if it is
        // still there: after v2 was rolled back to v1 and v3 trained, a
        // rollback from v3 goes to v1, not to the rejected v2.
        let parent = self.parent_version(current).filter(|p| *p < current && versions.contains(p));
        let Some(previous) = parent.or_else(|| versions.iter().rev().copied().find(|&v| v < current)) else {
            bail!("version {current} is the oldest model in {}; there is nothing to roll back to", self.root.display());
        };
        Ok((current, previous))
    }

    /// The version that was current when `version` was trained
    /// (`parent_version` in its metadata), if it says.
    fn parent_version(&self, version: u32) -> Option<u32> {
        let meta: serde_json::Value = serde_json::from_slice(&fs::read(self.meta_path(version)).ok()?).ok()?;
        let parameters = meta["parameters"].as_array()?;
        parameters.iter().find(|p| p[0] == "parent_version").and_then(|p| p[1].as_str()?.parse().ok())
    }

    /// Replaces the models directory with `staged` (a directory in the data
    /// directory holding every version) in one step: the two are exchanged
    /// atomically (`renameat2(RENAME_EXCHANGE)`), so a reader sees all the
    /// old files or all the new ones; the old ones are then removed.
    pub fn swap_models(&self, staged: &Path) -> Result<()> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let models = self.models_dir();
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).with_context(|| format!("{} has a NUL byte", p.display()));
        let (from, to) = (c(staged)?, c(&models)?);
        // SAFETY: two valid NUL-terminated paths; AT_FDCWD resolves them as relative to the working directory, like rename(2).
        let rc = unsafe { libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::RENAME_EXCHANGE) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot exchange {} with {}", staged.display(), models.display()));
        }
        File::open(&self.root).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", self.root.display()))?;
        // `staged` now holds the old files.
        fs::remove_dir_all(staged).with_context(|| format!("cannot remove the old models in {}", staged.display()))
    }

    /// Replaces the generated key file (`DATA_DIR/key`) with `key`,
    /// atomically and 0600 from the first byte.
    pub fn replace_generated_key(&self, key: &str) -> Result<()> {
        self.write_key_file(key, true)
    }

    /// Whether the generated key file holds `key` (it is the key the
    /// models were sealed with, however it was given).
    pub fn generated_key_is(&self, key: &str) -> bool {
        fs::read_to_string(self.key_path()).is_ok_and(|text| text.trim() == key)
    }

    /// Writes `DATA_DIR/key` atomically and 0600 from the first byte: a
    /// temporary file (tempfile creates it 0600), synced, renamed into place
    /// (over an existing one only with `replace`), the directory synced.
    fn write_key_file(&self, key: &str, replace: bool) -> Result<()> {
        let path = self.key_path();
        let mut tmp = tempfile::Builder::new()
            .prefix(".key-")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.root)
            .with_context(|| format!("cannot create key file {}", path.display()))?;
        tmp.write_all(key.as_bytes())
            .and_then(|_| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write key file {}", path.display()))?;
        if replace {
            tmp.persist(&path).map_err(|e| e.error).with_context(|| format!("cannot replace key file {}", path.display()))?;
        } else {
            tmp.persist_noclobber(&path).with_context(|| format!("cannot create key file {}", path.display()))?;
        }
        File::open(&self.root).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", self.root.display()))
    }

    /// The passphrase as [`DataDir::passphrase`] gives it, checked against an
    /// expected key fingerprint (`-P`) when one is given.
    pub fn checked_passphrase(
        &self,
        given: Option<(String, KeyOrigin)>,
        create: bool,
        expected_fingerprint: Option<&str>,
    ) -> Result<(String, KeyOrigin)> {
        let (key, origin) = self.passphrase(given, create)?;
        if let Some(expected) = expected_fingerprint {
            let actual = self.fingerprint(&key, create)?;
            if !actual.eq_ignore_ascii_case(expected.trim()) {
                bail!(
                    "the encryption key's fingerprint is {actual}, not the expected {} given with -P/--encryption-fingerprint",
                    expected.trim()
                );
            }
        }
        Ok((key, origin))
    }

    /// The fingerprint of `key` in this data directory (see
    /// `modelfile::key_fingerprint`).
    pub fn fingerprint(&self, key: &str, create: bool) -> Result<String> {
        let salt = self.fingerprint_salt(create)?;
        logarithm_detector::modelfile::key_fingerprint(key, &salt)
            .map_err(|e| anyhow::anyhow!("cannot fingerprint the encryption key: {e}"))
    }

    /// The data directory's fingerprint salt (`fingerprint-salt`, 16 random
    /// bytes as hex). Where that file is missing, the current model's header
    /// has it; with `create`, a directory with neither gets a new one.
    pub fn fingerprint_salt(&self, create: bool) -> Result<[u8; 16]> {
        let path = self.root.join(layout::FINGERPRINT_SALT);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).ok().and_then(|b| <[u8; 16]>::try_from(b).ok());
                return bytes.with_context(|| format!("{} does not hold 32 hex digits", path.display()));
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
            Err(_) => {}
        }
        let from_model = self
            .current_version()
            .ok()
            .flatten()
            .and_then(|_| self.read_current_model().ok())
            .and_then(|(_, _, bytes)| logarithm_detector::modelfile::stored_fingerprint_salt(&bytes));
        if let Some(salt) = from_model {
            return Ok(salt);
        }
        if !create {
            bail!("no key fingerprint salt in {} (it is made with the first model): train one first", self.root.display());
        }
        self.create()?;
        let salt: [u8; 16] = rand::random();
        write_atomic(&path, format!("{}\n", hex::encode(salt)).as_bytes())?;
        Ok(salt)
    }

    fn key_path(&self) -> PathBuf {
        self.root.join(layout::KEY)
    }

    /// The passphrase: the one given (`-K`, or a key file, see
    /// `SharedArgs::given_key`), else the generated key file in the data
    /// directory. With `create`, a missing key file is generated (32 random
    /// bytes, hex, mode 0600) so that models are never stored unencrypted.
    pub fn passphrase(&self, given: Option<(String, KeyOrigin)>, create: bool) -> Result<(String, KeyOrigin)> {
        if let Some((key, origin)) = given {
            if key.is_empty() {
                bail!("the encryption key given with -K/{KEY_ENV} is empty");
            }
            return Ok((key, origin));
        }
        let path = self.key_path();
        match fs::metadata(&path) {
            Ok(_) => {
                let key = read_key_file(&path)?;
                Ok((key, KeyOrigin::File(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                // Models sealed with a key given some other way: a new key
                // would open none of them, and later errors would blame it.
                if let Some(v) = self.current_version()? {
                    bail!(
                        "no key given, and {} has no key file while its model version {v} exists: give the key it was sealed with (--key-file, -K or {KEY_ENV})",
                        self.root.display()
                    );
                }
                self.create()?;
                let key = hex::encode(rand::random::<[u8; 32]>());
                self.write_key_file(&key, false)?;
                tracing::info!("generated encryption key {}", path.display());
                Ok((key, KeyOrigin::File(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!(
                    "no encryption key: give the model's passphrase in a key file (--key-file or {KEY_FILE_ENV}), as the systemd credential {KEY_CREDENTIAL}, or with {KEY_ENV} (no generated key file at {})",
                    path.display()
                )
            }
            Err(e) => Err(e).with_context(|| format!("cannot read key file {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rollback as `model rollback` makes it (once the version opens).
    fn roll(dd: &DataDir) -> Result<(u32, u32)> {
        let (from, to) = dd.rollback_target()?;
        dd.set_current(to)?;
        Ok((from, to))
    }

    /// A rollback returns to the version that was current when the current
    /// one was trained, not to a newer one the operator had rolled back from.
    #[test]
    fn rollback_returns_to_the_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let dd = DataDir::resolve(Some(tmp.path().join("d"))).unwrap();
        let meta = |parent: u32| format!("{{\"parameters\":[[\"seed\",\"42\"],[\"parent_version\",\"{parent}\"]]}}");
        dd.install(1, b"m1", b"{}").unwrap();
        dd.install(2, b"m2", meta(1).as_bytes()).unwrap();
        assert_eq!(roll(&dd).unwrap(), (2, 1));
        dd.install(3, b"m3", meta(1).as_bytes()).unwrap();
        assert_eq!(roll(&dd).unwrap(), (3, 1), "not to the rejected version 2");
        // A parent deleted since: the next older version.
        dd.install(4, b"m4", meta(9).as_bytes()).unwrap();
        assert_eq!(roll(&dd).unwrap(), (4, 3));
    }

    #[test]
    fn versions_current_and_generated_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dd = DataDir::resolve(Some(tmp.path().join("d"))).unwrap();
        assert_eq!(dd.current_version().unwrap(), None);
        assert!(dd.read_current_model().unwrap_err().to_string().contains("logarithm-trainer train"));
        assert!(dd.passphrase(None, false).is_err());
        let given = |k: &str| Some((k.to_owned(), KeyOrigin::Given));
        let (k1, origin) = dd.passphrase(None, true).unwrap();
        assert!(matches!(origin, KeyOrigin::File(_)));
        assert_eq!(dd.passphrase(None, false).unwrap().0, k1);
        let mode = fs::metadata(dd.key_path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::metadata(dd.root()).unwrap().permissions().mode() & 0o777, 0o700, "the data directory is private");
        dd.install(1, b"m1", b"{}").unwrap();
        dd.install(2, b"m2", b"{}").unwrap();
        assert_eq!(dd.versions().unwrap(), [1, 2]);
        assert_eq!(dd.read_current_model().unwrap().2, b"m2");
        dd.set_current(1).unwrap();
        assert_eq!(dd.current_version().unwrap(), Some(1));
        // With models there and no key file, none is made up: they were
        // sealed with a key given some other way.
        let key_file = fs::read(dd.key_path()).unwrap();
        fs::remove_file(dd.key_path()).unwrap();
        let e = dd.passphrase(None, true).unwrap_err().to_string();
        assert!(e.contains("no key file while its model version 1 exists"), "{e}");
        assert!(!dd.key_path().exists());
        fs::write(dd.key_path(), key_file).unwrap();
        fs::set_permissions(dd.key_path(), fs::Permissions::from_mode(0o600)).unwrap();

        assert_eq!(dd.passphrase(given("given"), true).unwrap(), ("given".into(), KeyOrigin::Given));
        let fp = dd.fingerprint("given", true).unwrap();
        assert_eq!(dd.fingerprint_salt(false).unwrap(), dd.fingerprint_salt(true).unwrap(), "made once, then kept");
        assert_ne!(fp, logarithm_detector::modelfile::key_fingerprint("given", &[0; 16]).unwrap());
        assert!(dd.checked_passphrase(given("given"), false, Some(&fp)).is_ok());
        let e = dd.checked_passphrase(given("other"), false, Some(&fp)).unwrap_err().to_string();
        assert!(e.contains("not the expected"), "{e}");

        // One holder of the lock at a time.
        let held = dd.lock("training").unwrap();
        let e = dd.lock("training").unwrap_err().to_string();
        assert!(e.contains("another logarithm-trainer") && e.contains(&format!("pid {}: training", std::process::id())), "{e}");
        drop(held);
        dd.lock("training").unwrap();
        // A lock file that is a symbolic link is refused, its target untouched.
        let victim = tmp.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        let link = dd.root().join("lock");
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = dd.lock("rollback").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        fs::remove_file(&link).unwrap();

        // Delete and roll back.
        dd.set_current(2).unwrap();
        assert!(dd.delete(2, false).unwrap_err().to_string().contains("--force"));
        assert_eq!(roll(&dd).unwrap(), (2, 1));
        assert!(roll(&dd).unwrap_err().to_string().contains("oldest"));
        dd.delete(2, false).unwrap();
        dd.delete(1, true).unwrap();
        assert_eq!(dd.current_version().unwrap(), None);
    }
}
