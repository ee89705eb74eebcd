//! The configuration file shared by both binaries (YAML).
//!
//! Where it is: `-c/--config PATH`, else `LOGARITHM_CONFIG`, else
//! `~/.config/logarithm/config.yml` if it exists. Precedence of every
//! setting: command-line flag > environment variable (`LOGARITHM_*`) >
//! this file > built-in default. Unknown keys and out-of-range values are
//! errors that name the key and the file, found before any work starts.
//!
//! ```yaml
//! data_dir: /var/lib/logarithm
//! threshold: 0.998        # in [0, 1]
//! duration: 24h           # training window
//! vocab_size: 10000
//! batch_size: 256
//! max_batches: 200
//! epochs: 30
//! retrain_mode: incremental   # incremental | full | hybrid
//! log_level: warn
//! format: human           # monitor output: human | json | csv
//! max_line_bytes: 65536
//! threads: 2              # cores that score large batches
//! ```

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "LOGARITHM_CONFIG";

/// The settings a config file may hold; every one is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Data directory (models, checkpoints, generated key).
    pub data_dir: Option<PathBuf>,
    /// Anomaly threshold in [0, 1]: stored in trained models; for the
    /// monitor, an override of the model's.
    pub threshold: Option<f64>,
    /// Training window, a duration such as `30m`, `2h`, `24h`.
    pub duration: Option<String>,
    /// Vocabulary size (terms), at least 1.
    pub vocab_size: Option<u32>,
    /// Lines per training mini-batch, at least 1.
    pub batch_size: Option<u32>,
    /// Mini-batches per epoch at most, at least 1.
    pub max_batches: Option<u32>,
    /// Training epochs, at least 1.
    pub epochs: Option<u32>,
    /// How training starts from the current model: `incremental`, `full`, `hybrid`.
    pub retrain_mode: Option<String>,
    /// Log level: `error`, `warn`, `info`, `debug`, `trace`.
    pub log_level: Option<String>,
    /// Monitor output format: `human`, `json`, `csv`.
    pub format: Option<String>,
    /// Longest line kept, bytes, at least 1.
    pub max_line_bytes: Option<usize>,
    /// Cores that score large batches (`monitor`, `filter`), 1 to
    /// [`MAX_THREADS`].
    pub threads: Option<u32>,
}

/// The most cores `threads` (`--threads`) may name: each holds its own
/// copy of the model.
pub const MAX_THREADS: u32 = 64;

/// The largest vocabulary (`-V/--vocab-size`, `vocab_size`): the network
/// has one input and one output per term, so memory and model size grow
/// with it (issue 10).
pub const MAX_VOCAB_SIZE: u32 = 200_000;

/// A loaded config file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where it came from (`None`: no file).
    pub path: Option<PathBuf>,
    /// Its settings.
    pub settings: Settings,
}

impl Config {
    /// Loads the config file: `given` (from `-c`, which clap fills from
    /// `LOGARITHM_CONFIG`) must exist; the default path is used only if it does.
    pub fn load(given: Option<&Path>) -> Result<Self> {
        let (path, required) = match given {
            Some(p) => (p.to_path_buf(), true),
            None => match dirs::config_dir() {
                Some(dir) => (dir.join("logarithm/config.yml"), false),
                None => return Ok(Self::default()),
            },
        };
        // The default file counts only if it is there; a home this user may
        // not even look into (EACCES) has none for it.
        let absent = |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied);
        if !required
            && let Err(e) = std::fs::metadata(&path)
            && absent(&e)
        {
            return Ok(Self::default());
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read config file {}", path.display())),
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
            anyhow::anyhow!("config file {}: line {line}: not UTF-8 text (byte {} of the file)", path.display(), at + 1)
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates the text of the config file at `path` (the
    /// path only names it in errors). Any text is safe here (issue 10: the
    /// `config` fuzz target).
    pub fn parse(text: &str, path: PathBuf) -> Result<Self> {
        // A file that is not `key: value` lines at all (TOML, `key=value`,
        // one word) is said so, not as a string "expected struct Settings"
        // that quotes the whole file back.
        if let Ok(value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text)
            && !matches!(value, serde_yaml_ng::Value::Mapping(_) | serde_yaml_ng::Value::Null)
        {
            bail!(
                "config file {}: not YAML settings (`key: value` lines, such as `threshold: 0.998`) but a {}",
                path.display(),
                match value {
                    serde_yaml_ng::Value::Sequence(_) => "list",
                    serde_yaml_ng::Value::Tagged(_) => "tagged value",
                    _ => "single value",
                }
            );
        }
        let settings: Settings = serde_yaml_ng::from_str::<Option<Settings>>(text)
            .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?
            .unwrap_or_default();
        let config = Self { path: Some(path), settings };
        config.validate()?;
        Ok(config)
    }

    fn fail(&self, key: &str, problem: String) -> anyhow::Error {
        anyhow::anyhow!("config file {}: {key}: {problem}", self.path.as_deref().unwrap_or(Path::new("?")).display())
    }

    /// Checks ranges (types were checked by parsing).
    fn validate(&self) -> Result<()> {
        let s = &self.settings;
        if let Some(t) = s.threshold
            && !(0.0..=1.0).contains(&t)
        {
            return Err(self.fail("threshold", format!("{t} is outside [0, 1]")));
        }
        for (key, value) in
            [("vocab_size", s.vocab_size), ("batch_size", s.batch_size), ("max_batches", s.max_batches), ("epochs", s.epochs)]
        {
            if value == Some(0) {
                return Err(self.fail(key, "must be at least 1".into()));
            }
        }
        if let Some(v) = s.vocab_size
            && v > MAX_VOCAB_SIZE
        {
            return Err(self.fail("vocab_size", format!("{v} is more than {MAX_VOCAB_SIZE}")));
        }
        if let Some(t) = s.threads
            && !(1..=MAX_THREADS).contains(&t)
        {
            return Err(self.fail("threads", format!("{t} is not in 1..={MAX_THREADS}")));
        }
        if s.max_line_bytes == Some(0) {
            return Err(self.fail("max_line_bytes", "must be at least 1".into()));
        }
        if let Some(d) = &s.duration {
            self.duration().map_err(|e| self.fail("duration", format!("{d:?}: {e}")))?;
        }
        if let Some(m) = &s.retrain_mode
            && !["incremental", "full", "hybrid"].contains(&m.as_str())
        {
            return Err(self.fail("retrain_mode", format!("{m:?} is not one of incremental, full, hybrid")));
        }
        if let Some(f) = &s.format
            && !["human", "json", "csv"].contains(&f.as_str())
        {
            return Err(self.fail("format", format!("{f:?} is not one of human, json, csv")));
        }
        if let Some(Err(why)) = s.log_level.as_deref().map(crate::logging::check) {
            return Err(self.fail("log_level", why));
        }
        Ok(())
    }

    /// The training window, if set.
    pub fn duration(&self) -> Result<Option<Duration>> {
        match &self.settings.duration {
            None => Ok(None),
            Some(d) if d.trim_start().starts_with('-') => bail!("a duration cannot be negative"),
            Some(d) => humantime::parse_duration(d).map(Some).map_err(|e| anyhow::anyhow!("{e}")),
        }
    }
}

impl Config {
    /// Re-reads the file at SIGHUP (issue 13) and returns the new
    /// configuration. Only `threshold` changes a running monitor (when no
    /// `-T` overrides it); a change to anything else (`data_dir`, `format`,
    /// `max_line_bytes`, `log_level`, the training settings) is named in a
    /// warning and takes effect at the next start. A file that no longer
    /// reads or validates is an error, and the old settings stay.
    pub fn reread(&self) -> Result<Config> {
        let Some(path) = &self.path else { return Ok(self.clone()) };
        let new = Config::load(Some(path))?;
        let (a, b) = (&self.settings, &new.settings);
        let changed: Vec<&str> = [
            ("data_dir", a.data_dir != b.data_dir),
            ("format", a.format != b.format),
            ("max_line_bytes", a.max_line_bytes != b.max_line_bytes),
            ("threads", a.threads != b.threads),
            ("log_level", a.log_level != b.log_level),
            ("duration", a.duration != b.duration),
            ("vocab_size", a.vocab_size != b.vocab_size),
            ("batch_size", a.batch_size != b.batch_size),
            ("max_batches", a.max_batches != b.max_batches),
            ("epochs", a.epochs != b.epochs),
            ("retrain_mode", a.retrain_mode != b.retrain_mode),
        ]
        .into_iter()
        .filter_map(|(key, differs)| differs.then_some(key))
        .collect();
        if !changed.is_empty() {
            tracing::warn!("config file {}: {} changed; that takes effect at the next start", path.display(), changed.join(", "));
        }
        Ok(new)
    }
}

/// Checks a threshold from a flag or the environment.
pub fn check_threshold(t: f64, what: &str) -> Result<f64> {
    if !(0.0..=1.0).contains(&t) {
        bail!("invalid {what} {t}: must be between 0 and 1");
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path))
    }

    /// A file of another format is said to be one, not quoted back.
    #[test]
    fn a_file_that_is_not_yaml_settings_is_said_so() {
        for (text, what) in [("threshold = 0.99\n[monitor]\nfoo = 1\n", "single value"), ("- threshold: 0.9\n", "list")] {
            let e = format!("{:#}", load(text).unwrap_err());
            assert!(e.contains("not YAML settings (`key: value` lines, such as `threshold: 0.998`) but a") && e.ends_with(what), "{e}");
            assert!(!e.contains("foo"), "{e}");
        }
        // An empty file is no settings, not an error.
        assert_eq!(load("").unwrap().settings, Settings::default());
        assert_eq!(load("# only a comment\n").unwrap().settings, Settings::default());
    }

    #[test]
    fn parses_the_documented_example() {
        let doc = include_str!("config.rs");
        let example: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```yaml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start_matches(' ')))
            .collect();
        let c = load(&example).unwrap();
        assert_eq!(c.settings.vocab_size, Some(10_000));
        assert_eq!(c.duration().unwrap(), Some(Duration::from_secs(24 * 3600)));
    }

    /// The complete example file in examples/ is a valid configuration.
    #[test]
    fn the_example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/logarithm.yml");
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.settings.data_dir.as_deref(), Some(Path::new("/var/lib/logarithm")));
        assert_eq!((c.settings.threshold, c.settings.max_line_bytes), (Some(0.998), Some(65536)));
    }

    #[test]
    fn errors_name_the_key_and_the_file() {
        for (text, needle) in [
            ("threshold: 1.5\n", "threshold: 1.5 is outside [0, 1]"),
            ("vocab_size: 0\n", "vocab_size: must be at least 1"),
            ("vocab_size: 999999999\n", "vocab_size: 999999999 is more than 200000"),
            ("duration: -5m\n", "duration: \"-5m\": a duration cannot be negative"),
            ("duration: soon\n", "duration"),
            ("colour: blue\n", "unknown field `colour`"),
            ("batch_size: many\n", "batch_size: invalid type"),
            ("retrain_mode: sometimes\n", "retrain_mode"),
            ("threads: 0\n", "threads: 0 is not in 1..=64"),
            ("threads: 65\n", "threads: 65 is not in 1..=64"),
            ("log_level: warning\n", "log_level: log level \"warning\" is not one of error, warn"),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains("config file") && e.contains("config.yml") && e.contains(needle), "{text:?} gave {e}");
        }
        assert!(Config::load(Some(Path::new("/nonexistent/c.yml"))).unwrap_err().to_string().contains("/nonexistent/c.yml"));
        // Bytes that are not UTF-8: where they are.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(&path, b"threshold: 0.9\nformat: j\xffson\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("config.yml: line 2: not UTF-8 text (byte 25 of the file)"), "{e}");
        assert_eq!(load("").unwrap().settings, Settings::default());
        // A filter, as -L takes it (examples/logarithm.yml says so).
        assert_eq!(load("log_level: info,wasmtime=debug\n").unwrap().settings.log_level.as_deref(), Some("info,wasmtime=debug"));
    }

    #[test]
    fn reread_takes_the_new_threshold_and_keeps_the_old_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(&path, "threshold: 0.99\nformat: json\n").unwrap();
        let old = Config::load(Some(&path)).unwrap();
        std::fs::write(&path, "threshold: 0.5\nformat: csv\n").unwrap();
        assert_eq!(old.reread().unwrap().settings.threshold, Some(0.5));
        std::fs::write(&path, "threshold: 5\n").unwrap();
        assert!(old.reread().unwrap_err().to_string().contains("threshold"));
        assert_eq!(Config::default().reread().unwrap().settings, Settings::default());
    }
}
