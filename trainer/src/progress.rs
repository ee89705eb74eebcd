//! Progress of a training run on stderr: a bar with rate and ETA on a
//! terminal (`indicatif`), a plain line every few seconds otherwise (logs,
//! CI), nothing when hidden.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::{Cell, RefCell};
use std::io::{IsTerminal, Write};
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
    /// A line every `every` to `out`.
    Plain {
        out: RefCell<Box<dyn Write>>,
        every: Duration,
    },
    Bar(ProgressBar),
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise.
    pub fn stderr() -> Self {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Bar(ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()))
        } else {
            Self::plain_mode(Box::new(std::io::stderr()), PLAIN_EVERY)
        };
        Self::with(mode)
    }

    /// Plain lines to `out`, at most one every `every`.
    pub fn plain(out: Box<dyn Write>, every: Duration) -> Self {
        Self::with(Self::plain_mode(out, every))
    }

    fn plain_mode(out: Box<dyn Write>, every: Duration) -> Mode {
        Mode::Plain { out: RefCell::new(out), every }
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
            Mode::Plain { out, every } => {
                if self.last_line.get().elapsed() >= *every {
                    self.last_line.set(Instant::now());
                    let rate = position as f64 / self.started.get().elapsed().as_secs_f64().max(1e-9);
                    // Progress is best effort: a closed stderr must not stop training.
                    let _ = match self.total.get() {
                        Some(t) => writeln!(out.borrow_mut(), "{}: {position}/{t} ({rate:.0}/s)", self.stage.borrow()),
                        None => writeln!(out.borrow_mut(), "{}: {position} ({rate:.0}/s)", self.stage.borrow()),
                    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_lines_name_the_stage_count_and_rate() {
        let out = Shared::default();
        let p = Progress::plain(Box::new(out.clone()), Duration::ZERO);
        p.stage("reading", None);
        p.set(4096);
        p.stage("training", Some(2000));
        p.set(100);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("reading: 4096 (") && lines[0].ends_with("/s)"), "{text}");
        assert!(lines[1].starts_with("training: 100/2000 ("), "{text}");
    }

    #[test]
    fn plain_lines_are_throttled() {
        let out = Shared::default();
        let p = Progress::plain(Box::new(out.clone()), Duration::from_secs(3600));
        p.stage("reading", None);
        for i in 0..1000 {
            p.set(i);
        }
        assert!(out.0.lock().unwrap().is_empty());
    }
}
