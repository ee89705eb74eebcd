//! The command-line options both binaries share, and what they set up:
//! the config file, logging and the data directory.

use crate::config::Config;
use crate::datadir::DataDir;
use crate::logging;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Options every command of both binaries takes.
#[derive(Debug, Args)]
pub struct SharedArgs {
    /// Data directory holding the models.
    #[arg(short = 'D', long, env = "LOGARITHM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Encryption passphrase (default: a key generated once and kept in the
    /// data directory, mode 0600).
    #[arg(short = 'K', long = "encryption-key", env = "LOGARITHM_ENCRYPTION_KEY", hide_env_values = true, value_name = "PASSPHRASE")]
    pub key: Option<String>,
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
    /// Loads the config file, starts logging (flag or env > file > `warn`)
    /// and finds the data directory (flag or env > file > default).
    pub fn setup(&self) -> Result<(Config, DataDir)> {
        let config = Config::load(self.config.as_deref())?;
        let level = self.log_level.clone().or_else(|| config.settings.log_level.clone());
        logging::init(level.as_deref(), self.verbose, "warn")?;
        let data_dir = DataDir::resolve(self.data_dir.clone().or_else(|| config.settings.data_dir.clone()))?;
        Ok((config, data_dir))
    }
}
