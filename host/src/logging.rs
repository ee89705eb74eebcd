//! Diagnostics on stderr (`-L/--log-level`, `LOGARITHM_LOG_LEVEL`, `-v`),
//! shared by both binaries; stdout is left to results.

use tracing_subscriber::EnvFilter;

/// Environment variable for the log level.
pub const LOG_LEVEL_ENV: &str = "LOGARITHM_LOG_LEVEL";

const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Sets up logging at `level` (a level name or a `tracing` filter such as
/// `logarithm=debug`), else `default`, raised one step per `-v`.
pub fn init(level: Option<&str>, verbose: u8, default: &str) -> anyhow::Result<()> {
    let base = level.unwrap_or(default);
    let filter = match LEVELS.iter().position(|l| l.eq_ignore_ascii_case(base)) {
        Some(i) => LEVELS[(i + usize::from(verbose)).min(LEVELS.len() - 1)].to_owned(),
        None if verbose == 0 => base.to_owned(),
        None => anyhow::bail!("-v cannot raise the log filter {base:?}; give a level name (error, warn, info, debug, trace)"),
    };
    let filter = EnvFilter::try_new(&filter).map_err(|e| anyhow::anyhow!("invalid log level {base:?}: {e}"))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).compact().init();
    Ok(())
}
