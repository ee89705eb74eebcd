//! How the commands of both binaries stop when told to: the signals they
//! take (SIGINT, SIGTERM, and SIGHUP where it means no reload), the flag
//! their loops watch, a second signal that ends them at once, and the exit
//! status of a run a signal cut short.
//!
//! A second SIGINT or SIGTERM ends the process at once, with status 1, but
//! only one that comes [`SECOND_AFTER`] or more after the first:
//! `timeout(1)` sends its signal twice (to the command, then to its process
//! group), and that must not cut the first one's orderly stop short. A
//! SIGHUP never does (a dropped ssh session may deliver it twice, seconds
//! apart), and neither signal does while a step that must not be cut in two
//! runs ([`Stop::hold`]: re-keying's swap of the models and the key).
//!
//! A follower or a filter stopped by a signal has done its job (a service
//! is stopped that way) and exits 0. A batch command (`monitor --once`,
//! the trainer) stopped before its end has not: it says so and exits
//! 128 + the signal's number, as a shell reports a command a signal ended,
//! so that `logarithm monitor --once FILE && echo clean` is not misled.

use anyhow::{Context, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How long after the first signal a second one ends the process at once.
pub const SECOND_AFTER: Duration = Duration::from_millis(100);

/// A stop request: set by the first of the signals [`Stop::install`] took.
#[derive(Debug, Clone)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
    /// Steps holding off a second signal's immediate end ([`Stop::hold`]).
    held: Arc<AtomicUsize>,
}

/// While it lives, a second signal does not end the process at once.
#[must_use]
pub struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Stop {
    /// Takes `signals`: the first sets the flag (the command stops at its
    /// next chance and says what it did); a second ends the process at once
    /// with status 1, for a command stuck where it cannot look at the flag
    /// (a blocked stdout, a blocked read).
    pub fn install(signals: &[i32]) -> Result<Self> {
        let stop =
            Self { flag: Arc::new(AtomicBool::new(false)), signal: Arc::new(AtomicUsize::new(0)), held: Arc::new(AtomicUsize::new(0)) };
        // When the first signal came (monotonic ns + 1; 0: none yet).
        let first = Arc::new(AtomicU64::new(0));
        for &signal in signals {
            let (flag, which, first, held) = (stop.flag.clone(), stop.signal.clone(), first.clone(), stop.held.clone());
            let ends_at_once = signal != libc::SIGHUP;
            let handler = move || {
                let now = monotonic_ns() + 1;
                match first.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => {
                        which.store(signal as usize, Ordering::SeqCst);
                        flag.store(true, Ordering::SeqCst);
                    }
                    Err(then)
                        if ends_at_once
                            && held.load(Ordering::SeqCst) == 0
                            && now.saturating_sub(then) >= SECOND_AFTER.as_nanos() as u64 =>
                    {
                        // SAFETY: `_exit` is async-signal-safe.
                        unsafe { libc::_exit(1) }
                    }
                    Err(_) => {}
                }
            };
            // SAFETY: the handler only reads the clock (`clock_gettime` is
            // async-signal-safe), touches atomics and may call `_exit`: no
            // allocation, no lock.
            unsafe { signal_hook::low_level::register(signal, handler) }.context("cannot install signal handlers")?;
        }
        Ok(stop)
    }

    /// The flag the command's loops watch.
    pub fn flag(&self) -> &Arc<AtomicBool> {
        &self.flag
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Holds off a second signal's immediate end while the guard lives: for
    /// a step that must not be cut in two.
    pub fn hold(&self) -> Held {
        self.held.fetch_add(1, Ordering::SeqCst);
        Held(self.held.clone())
    }

    /// The signal that asked for the stop, if one did (the flag may be set
    /// by the command itself).
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            n => i32::try_from(n).ok(),
        }
    }

    /// The error of a batch command cut short by this stop.
    pub fn interrupted(&self, what: impl Into<String>) -> Interrupted {
        Interrupted { signal: self.signal().unwrap_or(libc::SIGINT), what: what.into() }
    }
}

/// A batch command cut short by a signal; [`crate::logging::main_with`]
/// says it and exits 128 + the signal's number.
#[derive(Debug)]
pub struct Interrupted {
    /// The signal.
    pub signal: i32,
    /// What was done, and what was not.
    pub what: String,
}

impl Interrupted {
    /// The exit status: 128 + the signal's number (130 for SIGINT, 143 for
    /// SIGTERM, 129 for SIGHUP).
    pub fn exit_status(&self) -> u8 {
        u8::try_from(128 + self.signal).unwrap_or(1)
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}: {}", name(self.signal), self.what)
    }
}

impl std::error::Error for Interrupted {}

/// The monotonic clock, ns; async-signal-safe.
fn monotonic_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid pointer to a timespec; clock_gettime is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// A signal's name, for messages.
pub fn name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_says_the_signal_and_exits_as_a_shell_reports_it() {
        let e = Interrupted { signal: libc::SIGTERM, what: "read 7 lines of x.log".into() };
        assert_eq!(e.to_string(), "interrupted by SIGTERM: read 7 lines of x.log");
        assert_eq!(e.exit_status(), 143);
        assert_eq!(Interrupted { signal: libc::SIGINT, what: String::new() }.exit_status(), 130);
    }
}
