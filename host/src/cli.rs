//! The command-line options both binaries share, and what they set up:
//! the config file, logging and the data directory; and the parsing of
//! times given on the command line.

use crate::config::Config;
use crate::datadir::{DataDir, KEY_CREDENTIAL, KEY_ENV, KeyOrigin, read_key_file};
use crate::logging;
use anyhow::{Context, Result};
use chrono::{DateTime, Local, NaiveDate, TimeZone};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Options every command of both binaries takes.
#[derive(Debug, Args)]
pub struct SharedArgs {
    /// Data directory holding the models.
    #[arg(short = 'D', long, env = "LOGARITHM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Encryption passphrase. Visible to every user in `ps`: prefer
    /// --key-file, LOGARITHM_ENCRYPTION_KEY or a systemd credential
    /// (default: a key generated once and kept in the data directory).
    #[arg(short = 'K', long = "encryption-key", env = "LOGARITHM_ENCRYPTION_KEY", hide_env_values = true, value_name = "PASSPHRASE")]
    pub key: Option<String>,
    /// Read the encryption passphrase from this file, `-` for standard
    /// input (default: the systemd credential `logarithm-key` when run with
    /// one, else the data directory's generated key).
    #[arg(long = "key-file", env = "LOGARITHM_ENCRYPTION_KEY_FILE", value_name = "PATH", conflicts_with = "key")]
    pub key_file: Option<PathBuf>,
    /// Refuse to use a key whose fingerprint is not this one.
    #[arg(short = 'P', long = "encryption-fingerprint", env = "LOGARITHM_ENCRYPTION_FINGERPRINT", value_name = "FINGERPRINT")]
    pub fingerprint: Option<String>,
    /// Configuration file (default: ~/.config/logarithm/config.yml if present).
    #[arg(short = 'c', long = "config", env = "LOGARITHM_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(short = 'L', long, env = "LOGARITHM_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// More diagnostics (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl SharedArgs {
    /// The passphrase given, in order of precedence: `-K` (or
    /// `LOGARITHM_ENCRYPTION_KEY`), `--key-file` (or
    /// `LOGARITHM_ENCRYPTION_KEY_FILE`), the systemd credential
    /// `$CREDENTIALS_DIRECTORY/logarithm-key`; `None` leaves the data
    /// directory's generated key ([`DataDir::passphrase`]).
    pub fn given_key(&self) -> Result<Option<(String, KeyOrigin)>> {
        if let Some(key) = &self.key {
            if std::env::var(KEY_ENV).ok().as_deref() != Some(key.as_str()) {
                tracing::warn!(
                    "a passphrase given with -K is visible to every user of this machine (ps, /proc); prefer --key-file, {KEY_ENV} or a systemd credential ({KEY_CREDENTIAL})"
                );
            }
            return Ok(Some((key.clone(), KeyOrigin::Given)));
        }
        if let Some(path) = &self.key_file {
            return Ok(Some((read_key_file(path)?, KeyOrigin::KeyFile(path.clone()))));
        }
        let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else { return Ok(None) };
        let path = PathBuf::from(dir).join(KEY_CREDENTIAL);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some((read_key_file(&path)?, KeyOrigin::Credential(path)))),
            // A service given other credentials, not ours.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            // Said, not skipped: the key would silently be another (review).
            Ok(_) => anyhow::bail!("the systemd credential {} is not a file", path.display()),
            Err(e) => Err(e).with_context(|| format!("cannot read the systemd credential {}", path.display())),
        }
    }

    /// Refuses `--key-file -` where standard input carries the records
    /// (`-i`, `logarithm filter`): the key would be read from them, and
    /// they from what is left.
    pub fn key_not_from_stdin(&self, stdin_carries_records: bool) -> Result<()> {
        if stdin_carries_records && self.key_file.as_deref() == Some(std::path::Path::new("-")) {
            anyhow::bail!("--key-file - reads the key from standard input, which carries the records here: give the key another way");
        }
        Ok(())
    }

    /// Loads the config file, starts logging (flag or env > file > `warn`)
    /// and finds the data directory (flag or env > file > default).
    pub fn setup(&self) -> Result<(Config, DataDir)> {
        let config = Config::load(self.config.as_deref())?;
        let level = self.log_level.clone().or_else(|| config.settings.log_level.clone());
        logging::init(level.as_deref(), self.verbose, "warn")?;
        let data_dir = DataDir::resolve(self.data_dir.clone().or_else(|| config.settings.data_dir.clone()))?;
        Ok((config, data_dir))
    }

    /// Like [`SharedArgs::setup`], for a helper whose stderr is not ours
    /// to write to (rsyslog's mmexternal reads it as replies): diagnostics,
    /// a fatal error included, go to the syslog socket `socket` instead.
    pub fn setup_syslog(&self, socket: &std::path::Path) -> Result<(Config, DataDir)> {
        // Before the configuration is read: an error in it goes there too.
        logging::set_sink(logging::Sink::Syslog(socket.to_owned()));
        let config = Config::load(self.config.as_deref())?;
        let level = self.log_level.clone().or_else(|| config.settings.log_level.clone());
        logging::init(level.as_deref(), self.verbose, "warn")?;
        // A contained panic (see `sources::contained`) must not print to
        // stderr either.
        std::panic::set_hook(Box::new(|_| {}));
        let data_dir = DataDir::resolve(self.data_dir.clone().or_else(|| config.settings.data_dir.clone()))?;
        Ok((config, data_dir))
    }
}

/// `generate`: what both binaries can write out about themselves, from
/// their clap definitions.
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// Shell completions, to stdout (e.g. `... generate completions bash >
    /// /etc/bash_completion.d/logarithm`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The man page (roff), to stdout (e.g. `... generate man >
    /// /usr/local/share/man/man1/logarithm.1`); with --dir, every page
    /// (the command's and each subcommand's, which it refers to) into DIR.
    Man {
        /// Write every page, `NAME.1` and `NAME-SUBCOMMAND.1`, into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

impl Generate {
    /// Writes what was asked for about `command` to stdout.
    pub fn write(&self, mut command: clap::Command) -> Result<()> {
        let mut out = std::io::stdout().lock();
        match self {
            Generate::Completions { shell } => {
                let name = command.get_name().to_owned();
                clap_complete::generate(*shell, &mut command, name, &mut out);
            }
            Generate::Man { dir: None } => clap_mangen::Man::new(command).render(&mut out)?,
            Generate::Man { dir: Some(dir) } => {
                clap_mangen::generate_to(command, dir).with_context(|| format!("cannot write the man pages into {}", dir.display()))?
            }
        }
        Ok(())
    }
}

/// Parses a `--since` time: `now`, `today`, `yesterday`, `N UNIT ago`
/// (`30m ago`, `1 hour ago`, `2 days ago`), `-N UNIT`, `YYYY-MM-DD`,
/// `YYYY-MM-DD HH:MM[:SS]` (local time) or RFC 3339. Returns µs since the epoch.
pub fn parse_since(text: &str, now: DateTime<Local>) -> Result<i64, String> {
    let t = text.trim();
    let midnight = |days_back: i64| {
        let date = now.date_naive() - chrono::Duration::days(days_back);
        Local.from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap()).earliest().map(|d| d.timestamp_micros())
    };
    let parsed = match t {
        "now" => Some(now.timestamp_micros()),
        "today" => midnight(0),
        "yesterday" => midnight(1),
        _ => None,
    };
    if let Some(us) = parsed {
        return Ok(us);
    }
    let relative = t.strip_suffix(" ago").or_else(|| t.strip_prefix('-'));
    if let Some(span) = relative {
        // humantime wants "1hour 30min": drop the spaces between number and unit.
        let compact: String = span.split_whitespace().collect::<Vec<_>>().join("");
        return humantime::parse_duration(&compact)
            .map(|d| now.timestamp_micros() - d.as_micros() as i64)
            .map_err(|e| format!("invalid time {text:?}: {e}"));
    }
    if let Ok(ts) = DateTime::parse_from_rfc3339(t) {
        return Ok(ts.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Local
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.timestamp_micros())
                .ok_or_else(|| format!("invalid local time {text:?}"));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Local
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .map(|t| t.timestamp_micros())
            .ok_or_else(|| format!("invalid local date {text:?}"));
    }
    Err(format!("invalid time {text:?}: use 'now', 'today', 'yesterday', '1 hour ago', '2026-11-01 10:00' or RFC 3339"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    #[test]
    fn since_forms() {
        let now = now();
        let us = |s: &str| parse_since(s, now).unwrap();
        assert_eq!(us("now"), now.timestamp_micros());
        assert_eq!(us("1 hour ago"), now.timestamp_micros() - 3_600_000_000);
        assert_eq!(us("30m ago"), now.timestamp_micros() - 1_800_000_000);
        assert_eq!(us("-2 days"), now.timestamp_micros() - 2 * 86_400_000_000);
        assert_eq!(us("today"), Local.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap().timestamp_micros());
        assert_eq!(us("yesterday"), Local.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap().timestamp_micros());
        assert_eq!(us("2026-11-01 10:00"), Local.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap().timestamp_micros());
        assert_eq!(us("2026-11-01T10:00:00Z"), DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z").unwrap().timestamp_micros());
        assert!(parse_since("last tuesday", now).unwrap_err().contains("invalid time"));
    }
}
