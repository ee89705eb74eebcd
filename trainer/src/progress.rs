//! Progress of a training run on stderr: a bar with rate and ETA on a
//! terminal (`indicatif`), a plain line every few seconds otherwise (logs,
//! CI), nothing when hidden.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::{Cell, RefCell};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Reports progress through stages (reading, training, calibrating).
pub struct Progress {
    mode: Mode,
    stage: RefCell<String>,
    total: Cell<Option<u64>>,
    started: Cell<Instant>,
    last_line: Cell<Instant>,
    interrupt: Option<Arc<AtomicBool>>,
}

enum Mode {
    Hidden,
    Plain,
    Bar(ProgressBar),
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise.
    pub fn stderr() -> Self {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Bar(ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()))
        } else {
            Mode::Plain
        };
        Self::with(mode)
    }

    /// No output.
    pub fn hidden() -> Self {
        Self::with(Mode::Hidden)
    }

    fn with(mode: Mode) -> Self {
        Self {
            mode,
            stage: RefCell::new(String::new()),
            total: Cell::new(None),
            started: Cell::new(Instant::now()),
            last_line: Cell::new(Instant::now()),
            interrupt: None,
        }
    }

    /// Long stages stop early once `flag` is set (Ctrl-C).
    pub fn interruptible(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// True once an interruption was requested.
    pub fn interrupted(&self) -> bool {
        self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Starts a stage counting up to `total` (or an open count).
    pub fn stage(&self, name: &str, total: Option<u64>) {
        *self.stage.borrow_mut() = name.to_owned();
        self.total.set(total);
        self.started.set(Instant::now());
        self.last_line.set(Instant::now());
        if let Mode::Bar(bar) = &self.mode {
            bar.reset();
            match total {
                Some(t) => {
                    bar.set_length(t);
                    bar.set_style(
                        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})")
                            .unwrap()
                            .progress_chars("=> "),
                    );
                }
                None => {
                    bar.unset_length();
                    bar.set_style(ProgressStyle::with_template("{msg:>12} {spinner} {human_pos} lines ({per_sec})").unwrap());
                }
            }
            bar.set_message(name.to_owned());
            bar.set_position(0);
        }
    }

    /// The stage's count so far.
    pub fn set(&self, position: u64) {
        match &self.mode {
            Mode::Hidden => {}
            Mode::Bar(bar) => bar.set_position(position),
            Mode::Plain => {
                if self.last_line.get().elapsed() >= PLAIN_EVERY {
                    self.last_line.set(Instant::now());
                    let rate = position as f64 / self.started.get().elapsed().as_secs_f64().max(1e-9);
                    match self.total.get() {
                        Some(t) => eprintln!("{}: {position}/{t} ({rate:.0}/s)", self.stage.borrow()),
                        None => eprintln!("{}: {position} ({rate:.0}/s)", self.stage.borrow()),
                    }
                }
            }
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}
