//! Alerts where operators look (issue 13): each anomaly is also sent to the
//! journal (`--alert journal`, structured fields) or to syslog (`--alert
//! syslog`, `/dev/log`), from a thread of its own.
//!
//! Reading and scoring never wait for the sink: alerts go through a bounded
//! queue ([`QUEUE`]); a full queue drops the alert and counts it. The
//! sender retries a failed send with backoff ([`RETRIES`]), and a circuit
//! breaker stops trying for [`COOL_DOWN`] after [`TRIP_AFTER`] alerts in a
//! row could not be delivered (opening and closing are audited and shown in
//! the metrics). What could not be delivered is counted and reported when
//! the monitor stops.
//!
//! The journal is written with its native protocol (datagrams of
//! `FIELD=value` lines on `/run/systemd/journal/socket`), as
//! `sd_journal_send` does, but to a socket that can be chosen
//! (`--alert-socket`): a private `systemd-journald` namespace, in tests, or
//! a container's journal. Fields: `MESSAGE`, `PRIORITY` (from the score:
//! 2 crit at 0.99999 and over, 3 err at 0.9999, 4 warning below),
//! `SYSLOG_IDENTIFIER=logarithm`, `LOGARITHM_SCORE`, `LOGARITHM_TERMS`,
//! `LOGARITHM_ORIGIN` (`path:line`).

use crate::sources::Line;
use logarithm_detector::Verdict;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Alerts waiting for the sender; more are dropped (and counted).
pub const QUEUE: usize = 1024;
/// Tries per alert, with a backoff doubling from 50 ms between them.
pub const RETRIES: u32 = 3;
/// Alerts in a row that could not be delivered before the breaker opens.
pub const TRIP_AFTER: u32 = 5;
/// How long an open breaker waits before trying again.
pub const COOL_DOWN: Duration = Duration::from_secs(10);
/// The longest message sent (bytes); longer ones are cut, so a datagram
/// always fits the socket's buffer.
const MAX_MESSAGE: usize = 32 * 1024;

/// Where alerts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertKind {
    /// The systemd journal, with structured fields.
    Journal,
    /// Syslog (RFC 3164 over a unix datagram socket).
    Syslog,
}

impl AlertKind {
    /// The socket used unless `--alert-socket` says otherwise.
    pub fn default_socket(self) -> &'static Path {
        Path::new(match self {
            AlertKind::Journal => "/run/systemd/journal/socket",
            AlertKind::Syslog => "/dev/log",
        })
    }

    fn name(self) -> &'static str {
        match self {
            AlertKind::Journal => "alert-journal",
            AlertKind::Syslog => "alert-syslog",
        }
    }
}

/// One anomaly to tell.
#[derive(Debug, Clone)]
struct Alert {
    /// `anomaly` (a line that raised an alert), `repeat` or `burst` (a
    /// summary about its kind; see `logarithm_detector::kinds`).
    kind: &'static str,
    score: f64,
    terms: String,
    origin: String,
    message: String,
}

/// What the sink did, for the report at the end.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Alerts delivered.
    pub sent: AtomicU64,
    /// Alerts dropped: queue full, breaker open, or every try failed.
    pub undelivered: AtomicU64,
}

/// A running alert sink.
pub struct AlertSink {
    tx: SyncSender<Alert>,
    stop: Arc<AtomicBool>,
    stats: Arc<AlertStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
    kind: AlertKind,
    socket: PathBuf,
}

static GLOBAL: OnceLock<AlertSink> = OnceLock::new();

/// Starts the sink for `kind` on `socket` (or its default) and makes it the
/// process's (see [`send`]); the first call wins.
pub fn start(kind: AlertKind, socket: Option<PathBuf>) -> &'static AlertSink {
    GLOBAL.get_or_init(|| AlertSink::start(kind, socket.unwrap_or_else(|| kind.default_socket().to_path_buf())))
}

/// Sends what `verdict` reports, if a sink was started: the line if it
/// raised an alert (an anomaly of a new kind, or a worse one; anomalies
/// counted against an earlier alert are not sent again), and the repeat
/// summary or the burst it raised. Never blocks.
pub fn send(line: &Line, verdict: &Verdict) {
    let Some(sink) = GLOBAL.get() else { return };
    if !logarithm_detector::enrich::alerts(verdict) {
        return;
    }
    let origin = format!("{}:{}", line.origin, line.line_no);
    let terms = crate::output::terms_text(&verdict.terms, ", ");
    let alert = |kind, message| Alert { kind, score: verdict.score, terms: terms.clone(), origin: origin.clone(), message };
    if verdict.reported() {
        sink.push(alert("anomaly", line.raw.clone()));
    }
    if let Some(r) = &verdict.repeat {
        let since = r.first_timestamp_us.and_then(crate::output::rfc3339).map(|t| format!(" since {t}")).unwrap_or_default();
        sink.push(alert("repeat", format!("still happening: {} lines like \"{}\"{since}", r.count, r.template)));
    }
    if let Some(b) = &verdict.burst {
        let text = format!("{} lines like \"{}\" in {} s, usually ≤ {}", b.count, b.template, b.window_secs, b.usual);
        sink.push(alert("burst", text));
    }
}

impl AlertSink {
    fn start(kind: AlertKind, socket: PathBuf) -> Self {
        let (tx, rx) = sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(AlertStats::default());
        let sender = Sender { kind, socket: socket.clone(), stats: stats.clone(), failures: 0, open_until: None, conn: None };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new().name("alerts".into()).spawn(move || sender.run(rx, &stop)).ok()
        };
        if thread.is_none() {
            tracing::error!("cannot start the alert thread: alerts will not be sent");
        }
        Self { tx, stop, stats, thread: Mutex::new(thread), kind, socket }
    }

    fn push(&self, alert: Alert) {
        match self.tx.try_send(alert) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.undelivered(1),
        }
    }

    fn undelivered(&self, n: u64) {
        self.stats.undelivered.fetch_add(n, Ordering::Relaxed);
        crate::metrics::count(|m| m.alerts_undelivered(n));
    }

    /// Sends what is queued (an open breaker drops it, counted), stops the
    /// thread, and reports: returns (sent, undelivered).
    pub fn finish(&self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
        let (sent, undelivered) = (self.stats.sent.load(Ordering::Relaxed), self.stats.undelivered.load(Ordering::Relaxed));
        let via = format!("--alert {} ({})", format!("{:?}", self.kind).to_lowercase(), self.socket.display());
        if undelivered > 0 {
            tracing::warn!("{undelivered} alerts could not be delivered to {via}; {sent} were");
        } else {
            tracing::info!("{sent} alerts delivered to {via}");
        }
        (sent, undelivered)
    }
}

/// The sender thread's state: the socket, the breaker.
struct Sender {
    kind: AlertKind,
    socket: PathBuf,
    stats: Arc<AlertStats>,
    /// Alerts in a row that could not be delivered.
    failures: u32,
    /// While the breaker is open: when to try again.
    open_until: Option<Instant>,
    conn: Option<UnixDatagram>,
}

impl Sender {
    fn run(mut self, rx: Receiver<Alert>, stop: &AtomicBool) {
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(alert) => self.deliver(&alert),
                Err(RecvTimeoutError::Timeout) if stop.load(Ordering::Relaxed) => break,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Stopping: what is still queued gets its chance too.
        while let Ok(alert) = rx.try_recv() {
            self.deliver(&alert);
        }
    }

    fn undelivered(&self) {
        self.stats.undelivered.fetch_add(1, Ordering::Relaxed);
        crate::metrics::count(|m| m.alerts_undelivered(1));
    }

    fn deliver(&mut self, alert: &Alert) {
        // Once the cool-down is over the breaker is half open: this alert
        // tries, and one success closes it.
        if self.open_until.is_some_and(|until| Instant::now() < until) {
            return self.undelivered();
        }
        let datagram = match self.kind {
            AlertKind::Journal => journal_datagram(alert),
            AlertKind::Syslog => syslog_datagram(alert),
        };
        let mut backoff = Duration::from_millis(50);
        let mut last_error = String::new();
        for attempt in 1..=RETRIES {
            match self.send_once(&datagram) {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    self.failures = 0;
                    if self.open_until.take().is_some() {
                        tracing::info!("{} is reachable again: alerts resume", self.socket.display());
                        crate::audit::breaker(self.kind.name(), false, &format!("{} is reachable again", self.socket.display()));
                    }
                    return;
                }
                Err(e) => {
                    self.conn = None; // reconnect: the listener may have been restarted
                    last_error = format!("cannot send an alert to {}: {e}", self.socket.display());
                    if attempt < RETRIES && self.open_until.is_none() {
                        std::thread::sleep(backoff);
                        backoff *= 2;
                    } else {
                        break;
                    }
                }
            }
        }
        self.undelivered();
        self.failures += 1;
        let half_open = self.open_until.is_some();
        if half_open || self.failures >= TRIP_AFTER {
            self.open_until = Some(Instant::now() + COOL_DOWN);
            if !half_open {
                tracing::error!("{last_error}; {} alerts in a row undelivered: not trying again for {COOL_DOWN:?}", self.failures);
                crate::audit::breaker(self.kind.name(), true, &last_error);
            }
        } else {
            tracing::warn!("{last_error}");
        }
    }

    fn send_once(&mut self, datagram: &[u8]) -> std::io::Result<()> {
        if self.conn.is_none() {
            let socket = UnixDatagram::unbound()?;
            socket.set_write_timeout(Some(Duration::from_secs(1)))?;
            socket.connect(&self.socket)?;
            self.conn = Some(socket);
        }
        let conn = self.conn.as_ref().expect("connected above");
        let sent = conn.send(datagram)?;
        if sent != datagram.len() {
            return Err(std::io::Error::other(format!("sent {sent} of {} bytes", datagram.len())));
        }
        Ok(())
    }
}

/// The journal priority for a score: 2 (crit) at 0.99999 and over, 3 (err)
/// at 0.9999, else 4 (warning).
pub fn priority(score: f64) -> u8 {
    if score >= 0.99999 {
        2
    } else if score >= 0.9999 {
        3
    } else {
        4
    }
}

fn cut(text: &str) -> &str {
    &text[..text.floor_char_boundary(MAX_MESSAGE)]
}

/// A datagram of the journal's native protocol: `NAME=value\n`, or for a
/// value with a newline `NAME\n` + its length (u64 LE) + value + `\n`.
fn journal_datagram(alert: &Alert) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |name: &str, value: &str| {
        if value.contains('\n') {
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        } else {
            out.extend_from_slice(format!("{name}={value}").as_bytes());
        }
        out.push(b'\n');
    };
    let message = cut(&alert.message);
    // Scores as people read them elsewhere (`0.99999972`): at a fixed 5
    // decimals every anomaly would be `1.00000`.
    let score = crate::output::score_text(alert.score);
    field("MESSAGE", &format!("{} (score {score}) at {}: {message}", alert.kind, alert.origin));
    field("PRIORITY", &priority(alert.score).to_string());
    field("SYSLOG_IDENTIFIER", "logarithm");
    field("LOGARITHM_SCORE", &score);
    field("LOGARITHM_TERMS", cut(&alert.terms));
    field("LOGARITHM_ORIGIN", &alert.origin);
    field("LOGARITHM_KIND", alert.kind);
    out
}

/// An RFC 3164 datagram, facility user: `<PRI>Mmm dd hh:mm:ss
/// logarithm[pid]: anomaly score=S origin=O terms="T": message`, on one
/// line, its control characters escaped as on a terminal (`\n`,
/// `\u{1b}`): not every receiver escapes them, as rsyslog does.
fn syslog_datagram(alert: &Alert) -> Vec<u8> {
    let one_line = |s: &str| crate::output::printable(s).into_owned();
    let pri = 8 + u32::from(priority(alert.score));
    let text = format!(
        "{} score={} origin={} terms=\"{}\": {}",
        alert.kind,
        crate::output::score_text(alert.score),
        one_line(&alert.origin),
        one_line(cut(&alert.terms)).replace('"', "'"),
        one_line(cut(&alert.message))
    );
    crate::logging::rfc3164(pri, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(message: &str) -> Alert {
        Alert { kind: "anomaly", score: 0.99995, terms: "bug, page".into(), origin: "/var/log/syslog:7".into(), message: message.into() }
    }

    #[test]
    fn journal_fields_and_binary_values() {
        let d = journal_datagram(&alert("two\nlines"));
        let text = String::from_utf8_lossy(&d);
        for field in ["PRIORITY=3\n", "SYSLOG_IDENTIFIER=logarithm\n", "LOGARITHM_SCORE=0.999950\n", "LOGARITHM_TERMS=bug, page\n"] {
            assert!(text.contains(field), "{field:?} not in {text:?}");
        }
        let message = "anomaly (score 0.999950) at /var/log/syslog:7: two\nlines";
        let mut expected = b"MESSAGE\n".to_vec();
        expected.extend_from_slice(&(message.len() as u64).to_le_bytes());
        expected.extend_from_slice(message.as_bytes());
        assert!(d.starts_with(&expected));
        assert_eq!((priority(0.5), priority(0.9999), priority(1.0)), (4, 3, 2));
        let s = String::from_utf8(syslog_datagram(&alert("a\nb\u{1b}[31m\0"))).unwrap();
        assert!(s.starts_with("<11>") && s.ends_with("terms=\"bug, page\": a\\nb\\u{1b}[31m\\u{0}"), "{s}");
        assert!(!s.chars().any(char::is_control), "{s}");
        // Anomalies near 1 keep their digits, not all `1.00000`.
        let near = Alert { score: 0.99999972, ..alert("x") };
        assert!(String::from_utf8(syslog_datagram(&near)).unwrap().contains(" score=0.99999972 "));
        assert!(String::from_utf8_lossy(&journal_datagram(&near)).contains("LOGARITHM_SCORE=0.99999972\n"));
    }

    /// A sink that is down never blocks the caller; what is not delivered is
    /// counted, and the breaker stops the retries.
    #[test]
    fn a_dead_sink_never_blocks_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let sink = AlertSink::start(AlertKind::Syslog, dir.path().join("nobody-listens"));
        let started = Instant::now();
        for i in 0..(QUEUE as u64 + 500) {
            sink.push(alert(&format!("line {i}")));
        }
        assert!(started.elapsed() < Duration::from_millis(500), "push blocked: {:?}", started.elapsed());
        let (sent, undelivered) = sink.finish();
        assert_eq!((sent, undelivered), (0, QUEUE as u64 + 500));
        assert!(started.elapsed() < Duration::from_secs(5), "the breaker should stop the retries: {:?}", started.elapsed());
    }

    #[test]
    fn delivers_to_a_listening_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let listener = UnixDatagram::bind(&path).unwrap();
        let sink = AlertSink::start(AlertKind::Journal, path);
        sink.push(alert("one"));
        sink.push(alert("two"));
        assert_eq!(sink.finish(), (2, 0));
        let mut buf = [0u8; 4096];
        let n = listener.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).contains(": one\n"));
    }
}
