//! Diagnostics on stderr (`-L/--log-level`, `LOGARITHM_LOG_LEVEL`, `-v`),
//! shared by both binaries; stdout is left to results.

use tracing_subscriber::EnvFilter;

/// Environment variable for the log level.
pub const LOG_LEVEL_ENV: &str = "LOGARITHM_LOG_LEVEL";

const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Our own crates: a level name (`-L debug`) raises these, while the crates
/// we use (wasmtime, cranelift, ...) stay at `warn`, so that debug output is
/// ours and readable.
const OUR_CRATES: [&str; 3] = ["logarithm", "logarithm_detector", "logarithm_trainer"];

/// The `tracing` filter for `level` (a level name, raising our own crates
/// only, or a `tracing`/`RUST_LOG`-style filter such as
/// `info,wasmtime=debug`, taken as it is), raised one step per `-v`.
pub fn directives(level: &str, verbose: u8) -> anyhow::Result<String> {
    match LEVELS.iter().position(|l| l.eq_ignore_ascii_case(level)) {
        Some(i) => {
            let i = (i + usize::from(verbose)).min(LEVELS.len() - 1);
            if i <= 1 {
                return Ok(LEVELS[i].to_owned());
            }
            let ours = OUR_CRATES.iter().map(|c| format!("{c}={}", LEVELS[i]));
            Ok(std::iter::once("warn".to_owned()).chain(ours).collect::<Vec<_>>().join(","))
        }
        // A bare word is a target to `tracing` (everything else off): a
        // mistyped level (`warning`, `verbose`) would silence every message.
        // Numbers (`0` to `5`), `off` and our crates' names are what
        // `tracing` means by them.
        None if !level.contains(['=', ',', ':'])
            && !level.eq_ignore_ascii_case("off")
            && !matches!(level, "0" | "1" | "2" | "3" | "4" | "5")
            && !OUR_CRATES.contains(&level) =>
        {
            anyhow::bail!("log level {level:?} is not one of error, warn, info, debug, trace (or a filter such as info,wasmtime=debug)")
        }
        None if verbose == 0 => Ok(level.to_owned()),
        None => anyhow::bail!("-v cannot raise the log filter {level:?}; give a level name (error, warn, info, debug, trace)"),
    }
}

/// The filter for `level` raised by `verbose` (see [`directives`]), or
/// why it is not one.
fn filter(level: &str, verbose: u8) -> anyhow::Result<EnvFilter> {
    EnvFilter::try_new(directives(level, verbose)?).map_err(|e| anyhow::anyhow!("invalid log level {level:?}: {e}"))
}

/// Whether `level` is a log level or filter (for the configuration file,
/// which takes what `-L` takes).
pub fn check(level: &str) -> Result<(), String> {
    filter(level, 0).map(drop).map_err(|e| format!("{e:#}"))
}

/// Sets up logging at `level` (see [`directives`]), else `default`.
pub fn init(level: Option<&str>, verbose: u8, default: &str) -> anyhow::Result<()> {
    let filter = filter(level.unwrap_or(default), verbose)?;
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| OneLine(Vec::new()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .compact()
        .init();
    Ok(())
}

/// An error and its causes on one line (`outer: inner: cause`), with any
/// line breaks inside the messages folded and other control characters
/// escaped (a file name can hold anything), so that every failure is one
/// line on stderr, which cannot recolour a terminal.
pub fn one_line(error: &anyhow::Error) -> String {
    let text = format!("{error:#}").split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    crate::output::printable(&text).into_owned()
}

/// A writer of one diagnostic at a time: it escapes the line breaks, other
/// control characters and bidirectional overrides inside (a file name or a
/// message can hold them, and stderr may be the journal, where a line
/// break would start a forged entry), keeping the colours the formatter
/// itself writes (ESC; tracing-subscriber escapes an ESC of a message).
struct OneLine(Vec<u8>);

impl std::io::Write for OneLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for OneLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let mut line = String::with_capacity(body.len() + 1);
        for c in body.chars() {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c != '\u{1b}' && c != '\t' && (c.is_control() || bidi || matches!(c, '\u{2028}' | '\u{2029}')) {
                line.extend(c.escape_default());
            } else {
                line.push(c);
            }
        }
        line.push('\n');
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
}

/// For commands that only print (`info`, `model list`, generated files,
/// `fakelogs`): a closed stdout (`| head`) ends the process quietly, as it
/// ends any Unix tool, instead of a panic in `println!`. Not for `monitor`
/// and `filter`, which handle a closed stdout themselves and whose alert
/// sockets must not be able to kill them.
pub fn quiet_on_closed_stdout() {
    // SAFETY: restores the default disposition of one signal; no handler
    // of ours is installed for it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    /// Issue 14: `-L debug` is our debug output, not wasmtime's compiler internals.
    #[test]
    fn level_names_raise_only_our_crates() {
        assert_eq!(super::directives("DEBUG", 0).unwrap(), "warn,logarithm=debug,logarithm_detector=debug,logarithm_trainer=debug");
        assert_eq!(super::directives("warn", 1).unwrap(), "warn,logarithm=info,logarithm_detector=info,logarithm_trainer=info");
        assert_eq!(super::directives("error", 0).unwrap(), "error");
        assert_eq!(super::directives("info,wasmtime=debug", 0).unwrap(), "info,wasmtime=debug");
        assert!(super::directives("info,wasmtime=debug", 1).is_err());
        // A mistyped level is an error, not a filter that silences everything.
        assert!(super::directives("warning", 0).unwrap_err().to_string().contains("is not one of error, warn"));
        // The configuration file takes what -L takes.
        assert!(super::check("info,wasmtime=debug").is_ok() && super::check("Info").is_ok());
        assert!(super::check("verbose").is_err() && super::check("info,=[").is_err());
        for valid in ["off", "3", "logarithm", "logarithm_detector::kinds"] {
            assert_eq!(super::directives(valid, 0).unwrap(), valid);
        }
    }

    #[test]
    fn errors_fold_to_one_line() {
        let e = anyhow::anyhow!("regex parse error:\n    (x\n    ^\nerror: unclosed group").context("invalid -F");
        assert_eq!(super::one_line(&e), "invalid -F: regex parse error: (x ^ error: unclosed group");
        let e = anyhow::anyhow!("cannot open x\u{1b}[2J\u{7}.log");
        assert_eq!(super::one_line(&e), "cannot open x\\u{1b}[2J\\u{7}.log");
    }
}
