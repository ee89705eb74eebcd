//! Diagnostics on stderr (`-L/--log-level`, `LOGARITHM_LOG_LEVEL`, `-v`),
//! shared by both binaries; stdout is left to results. One command may not
//! write to its stderr, `logarithm filter --rsyslog` (rsyslog reads it as
//! replies): its diagnostics go to syslog instead ([`Sink::Syslog`]).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

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

/// Where diagnostics go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Standard error: every command but one.
    Stderr,
    /// A syslog socket (`/dev/log`, or another), one RFC 3164 datagram per
    /// diagnostic, facility daemon: for `logarithm filter --rsyslog`,
    /// whose stderr rsyslog reads as replies. Had it no diagnostics at all,
    /// a memory file it cannot save would be said nowhere.
    Syslog(PathBuf),
}

/// The sink of this process, set once ([`set_sink`]; stderr until then).
static SINK: OnceLock<Sink> = OnceLock::new();

/// The syslog facility of diagnostics (daemon), as a PRI's high bits.
const DAEMON: u32 = 3 << 3;

/// The longest diagnostic sent to syslog (bytes); a longer one is cut, so a
/// datagram always fits the socket's buffer.
const MAX_SYSLOG_TEXT: usize = 8 * 1024;

/// Sends this process's diagnostics, and its fatal error, to `sink`
/// (stderr unless set); the first sink set stays.
pub fn set_sink(sink: Sink) {
    let _ = SINK.set(sink);
}

/// Sets up logging at `level` (see [`directives`]), else `default`, to the
/// sink set ([`set_sink`]), stderr by default.
pub fn init(level: Option<&str>, verbose: u8, default: &str) -> anyhow::Result<()> {
    let filter = filter(level.unwrap_or(default), verbose)?;
    let to_syslog = matches!(SINK.get_or_init(|| Sink::Stderr), Sink::Syslog(_));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(Diagnostics).with_target(false).compact();
    if to_syslog {
        // syslog stamps the time, and colours are no use in a log.
        fmt.with_ansi(false).without_time().init();
    } else {
        use std::io::IsTerminal;
        fmt.with_ansi(std::io::stderr().is_terminal()).init();
    }
    Ok(())
}

/// An RFC 3164 datagram as syslog(3) sends it: `<PRI>Mmm dd hh:mm:ss
/// logarithm[pid]: text`. `text` is sent as it is: escaping is the caller's.
pub fn rfc3164(pri: u32, text: &str) -> Vec<u8> {
    let time = chrono::Local::now().format("%b %e %H:%M:%S");
    format!("<{pri}>{time} logarithm[{}]: {text}", std::process::id()).into_bytes()
}

/// The syslog severity of a diagnostic of `level`.
fn severity(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

/// Writes one diagnostic (one line, escaped) where this process's go.
fn emit(severity: u8, line: &str) {
    match SINK.get() {
        Some(Sink::Syslog(socket)) => to_syslog(socket, severity, line),
        _ => {
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), format!("{line}\n").as_bytes());
        }
    }
}

/// Sends one diagnostic to a syslog socket. A failure is not said: there is
/// nowhere left to say it (as syslog(3) does without a listener).
fn to_syslog(socket: &Path, severity: u8, line: &str) {
    // Without the formatter's indent before the level (there is no time).
    let line = line.trim_start();
    let text = &line[..line.floor_char_boundary(MAX_SYSLOG_TEXT)];
    let datagram = rfc3164(DAEMON | u32::from(severity), text);
    let send = || -> std::io::Result<usize> {
        let conn = UnixDatagram::unbound()?;
        conn.set_write_timeout(Some(Duration::from_secs(1)))?;
        conn.connect(socket)?;
        conn.send(&datagram)
    };
    let _ = send();
}

/// Makes a [`OneLine`] per diagnostic, knowing its level.
struct Diagnostics;

impl<'a> MakeWriter<'a> for Diagnostics {
    type Writer = OneLine;

    fn make_writer(&'a self) -> OneLine {
        OneLine { bytes: Vec::new(), severity: severity(tracing::Level::WARN) }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> OneLine {
        OneLine { bytes: Vec::new(), severity: severity(*meta.level()) }
    }
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
struct OneLine {
    bytes: Vec<u8>,
    /// Its syslog severity (for [`Sink::Syslog`]).
    severity: u8,
}

impl std::io::Write for OneLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for OneLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.bytes);
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
        emit(self.severity, &line);
    }
}

/// `eprintln!` that does not panic when stderr is closed (`2>&1 | head
/// -1`): a summary nobody reads is no failure of the work before it (the
/// trainer panicked after installing its model).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` for results, in a function returning `anyhow::Result`: a
/// write that fails (`> /dev/full`) is an error that says so, not a panic.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).map_err(|e| anyhow::Error::new(e).context("cannot write to stdout"))?;
    }};
}

/// Whether `error` is, or was caused by, a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
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
/// line (where diagnostics go) and mapping it to exit status 1; a closed
/// stdout (`| head`) is not a failure; a run a signal cut short
/// ([`crate::signals::Interrupted`]) says so and exits 128 + the signal.
pub fn main_with(name: &str, run: impl FnOnce() -> anyhow::Result<std::process::ExitCode>) -> std::process::ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<crate::signals::Interrupted>().is_some() => {
            emit(severity(tracing::Level::WARN), &format!("{name}: {}", one_line(&e)));
            let status = e.downcast_ref::<crate::signals::Interrupted>().map_or(1, crate::signals::Interrupted::exit_status);
            std::process::ExitCode::from(status)
        }
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            emit(severity(tracing::Level::ERROR), &format!("{name}: error: {}", one_line(&e)));
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
