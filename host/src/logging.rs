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
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .compact()
        .init();
    Ok(())
}

/// An error and its causes on one line (`outer: inner: cause`), with any
/// line breaks inside the messages folded, so that every failure is one
/// line on stderr.
pub fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Runs a binary's `run`, printing a failure as `NAME: error: ...` on one
/// line and mapping it to exit status 1; a closed stdout (`| head`) is not a
/// failure.
pub fn main_with(name: &str, run: impl FnOnce() -> anyhow::Result<std::process::ExitCode>) -> std::process::ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) => {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_fold_to_one_line() {
        let e = anyhow::anyhow!("regex parse error:\n    (x\n    ^\nerror: unclosed group").context("invalid -F");
        assert_eq!(super::one_line(&e), "invalid -F: regex parse error: (x ^ error: unclosed group");
    }
}
