//! The model of a filter that lives inside a log shipper (both Fluent Bit
//! faces: the wasm module and the native plugin): found in a Logarithm data
//! directory, opened with a key from a file, and kept current. Every 2 s
//! `current` is read again: a newly installed model is loaded without
//! restarting the shipper, and a model that fails to load leaves the old
//! one working. Problems are printed to stderr (the shipper's log), once
//! per change.
//!
//! The kinds reported are kept in a memory file where the face names one
//! ([`Places::memory_file`], [`crate::memory`]): restored with the first
//! model, saved as they change, so a restart of the shipper does not
//! report them again.
//!
//! Where the data directory, the key files and the memory file are differs
//! by face, and is all a face tells this module ([`Places`]).

use crate::Detector;
use crate::memory::MemoryFile;
use crate::modelfile::layout;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often a filter looks for a newly installed model.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Where a face finds its model and key.
pub trait Places {
    /// The data directory (the one holding `current` and `models/`).
    fn data_dir(&self) -> Result<PathBuf, String>;
    /// The key files to try, in order, before the data directory's own
    /// `key` (the key the trainer generates).
    fn key_files(&self) -> Vec<PathBuf>;
    /// How else an operator may give the key, for the error without one.
    fn key_hint(&self) -> &'static str;
    /// Whether the key files were named by the operator, so that one
    /// missing is an error, not a reason to try the next (a mistyped
    /// `Key_File` fell back to the data directory's key without a word).
    fn key_files_named(&self) -> bool {
        false
    }
    /// Where the kinds reported are kept across restarts, if anywhere.
    fn memory_file(&self) -> Option<PathBuf> {
        None
    }
}

/// A loaded model, and where it came from.
pub struct Loaded {
    pub detector: Detector,
    pub dir: PathBuf,
    pub version: u32,
}

/// The current model, or why there is none.
pub struct Watch {
    model: Option<Loaded>,
    /// Why records pass unscored, while there is no model.
    problem: String,
    checked: Option<SystemTime>,
    /// The files a load failed with ([`files_signature`]): not tried again
    /// (a key derivation each time) until one of them changes.
    failed: Option<String>,
    /// Where the kinds reported are kept, found with the first model.
    memory: Option<MemoryFile>,
}

impl Watch {
    pub const fn new() -> Self {
        Watch { model: None, problem: String::new(), checked: None, failed: None, memory: None }
    }

    /// Saves the memory of reported kinds when it changed ([`MemoryFile`]
    /// says when), or whenever it changed at the face's `last` chance (its
    /// exit). A face calls it after scoring.
    pub fn persist(&mut self, last: bool) {
        let (Some(file), Some(model)) = (&mut self.memory, &self.model) else { return };
        if let Some(problem) = file.persist(model.detector.memory_generation(), last, || Ok(model.detector.save_memory())) {
            say(&format!("warning: {problem}"));
        }
    }

    /// The model's detector, or why there is none.
    pub fn detector(&self) -> Result<&Detector, &str> {
        self.model.as_ref().map(|m| &m.detector).ok_or(&self.problem)
    }

    /// Loads the model on the first call, and a newly installed one at most
    /// every [`RELOAD_CHECK`].
    pub fn refresh(&mut self, places: &impl Places) {
        let now = SystemTime::now();
        if self.checked.is_some_and(|at| now.duration_since(at).unwrap_or_default() < RELOAD_CHECK) {
            return;
        }
        self.checked = Some(now);
        let dir = match &self.model {
            Some(m) if current_version(&m.dir).is_ok_and(|v| v == m.version) => return,
            Some(m) => Ok(m.dir.clone()),
            None => places.data_dir(),
        };
        let signature = files_signature(places, dir.as_deref().ok());
        if self.failed.as_ref() == Some(&signature) {
            return;
        }
        let error = match dir.and_then(|dir| load(&dir, places)) {
            Ok(loaded) => {
                // The kinds already reported carry over, less those the new
                // model knows (issue 15): from the model before, or at the
                // first load from the memory file.
                if let Some(old) = &self.model {
                    if let Err(e) = loaded.detector.restore_memory(&old.detector.save_memory()) {
                        say(&format!(
                            "warning: the kinds of anomalies already reported could not be carried over to the new model ({e}); they will be reported again"
                        ));
                    }
                    if let Some(file) = &mut self.memory {
                        file.replaced();
                    }
                } else if let Some(path) = places.memory_file() {
                    let mut file = MemoryFile::new(path);
                    match file.restore(|bytes| loaded.detector.restore_memory(bytes)) {
                        Ok(0) => {}
                        Ok(kept) => say(&format!("{kept} kinds of anomalies already reported restored from {}", file.path().display())),
                        Err(e) => say(&format!("warning: {e}")),
                    }
                    file.restored(loaded.detector.memory_generation());
                    self.memory = Some(file);
                }
                say(&format!("scoring with model version {} from {}", loaded.version, loaded.dir.display()));
                self.model = Some(loaded);
                self.problem.clear();
                self.failed = None;
                return;
            }
            Err(e) => e,
        };
        let msg = match &self.model {
            Some(m) => format!("cannot load the new model, still scoring with version {}: {error}", m.version),
            None => format!("no model, records pass unscored: {error}"),
        };
        if msg != self.problem {
            say(&format!("error: {msg}"));
            self.problem = msg;
        }
        self.failed = Some(signature);
    }
}

/// One line to the shipper's log (stderr), `logarithm: ` first, in one
/// write: the shipper's own threads write there too, and `eprintln!`
/// writes in pieces that theirs can split.
pub fn say(what: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("logarithm: {what}\n").as_bytes());
}

impl Default for Watch {
    fn default() -> Self {
        Self::new()
    }
}

/// What a load depends on, as text that changes when any of it does: the
/// size and time of the key files, `current` and the model it names.
fn files_signature(places: &impl Places, dir: Option<&Path>) -> String {
    let mut files = places.key_files();
    if let Some(dir) = dir {
        files.extend([dir.join(layout::CURRENT), dir.join(layout::KEY)]);
        if let Ok(v) = current_version(dir) {
            files.push(layout::model_file(dir, v));
        }
    }
    files
        .iter()
        .map(|f| match std::fs::metadata(f) {
            Ok(m) => format!("{}:{}:{:?};", f.display(), m.len(), m.modified().ok()),
            Err(_) => format!("{}:-;", f.display()),
        })
        .collect()
}

/// The passphrase: the first key file there is, else the data directory's
/// generated `key`.
fn passphrase(data_dir: &Path, places: &impl Places) -> Result<String, String> {
    let named = places.key_files();
    for path in named.iter().chain(std::iter::once(&data_dir.join(layout::KEY))) {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => return Err(format!("the key file {} is empty", path.display())),
            Ok(text) => return Ok(text.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && places.key_files_named() && named.contains(path) => {
                return Err(format!("the key file {} does not exist", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read the key file {}: {e}", path.display())),
        }
    }
    Err(format!("no key file: put the model's passphrase in {} (mode 0600), {}", data_dir.join(layout::KEY).display(), places.key_hint()))
}

fn current_version(dir: &Path) -> Result<u32, String> {
    let path = dir.join(layout::CURRENT);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim().parse().map_err(|_| format!("{} does not hold a version number", path.display()))
}

fn load(dir: &Path, places: &impl Places) -> Result<Loaded, String> {
    let version = current_version(dir)?;
    let path = layout::model_file(dir, version);
    let bytes = crate::modelfile::read_model_file(&path)?;
    let mut detector = Detector::load(&bytes, &passphrase(dir, places)?).map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    crate::modelfile::check_version(version, detector.info().version).map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    // Explanations for anomalies only (`anomaly_terms` is empty for the
    // rest): most of a filter's cost per normal record otherwise.
    detector.set_explain(false);
    Ok(Loaded { detector, dir: dir.to_path_buf(), version })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key files to try, named by the operator or not.
    struct Keys(Vec<PathBuf>, bool);

    impl Places for Keys {
        fn data_dir(&self) -> Result<PathBuf, String> {
            Err("unused".into())
        }
        fn key_files(&self) -> Vec<PathBuf> {
            self.0.clone()
        }
        fn key_hint(&self) -> &'static str {
            "or name one"
        }
        fn key_files_named(&self) -> bool {
            self.1
        }
    }

    /// A key file the operator named (the native plugin's `Key_File`) that
    /// is missing is an error; a candidate (the module's credential in each
    /// accessible directory) is skipped for the data directory's key.
    #[test]
    fn a_named_key_file_that_is_missing_is_an_error() {
        let dir = std::env::temp_dir().join(format!("logarithm-watch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(layout::KEY), "generated\n").unwrap();
        let typo = dir.join("typo");
        assert_eq!(passphrase(&dir, &Keys(vec![typo.clone()], false)), Ok("generated".to_owned()));
        assert_eq!(passphrase(&dir, &Keys(vec![typo.clone()], true)), Err(format!("the key file {} does not exist", typo.display())));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
