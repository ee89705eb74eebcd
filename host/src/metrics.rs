//! Health and metrics of a running monitor in the Prometheus text format
//! (`--metrics-listen 127.0.0.1:PORT`, off by default; issue 13), served
//! by a small thread on a plain `TcpListener`: one fixed page needs no web
//! framework.
//!
//! The counters are process-wide ([`global`]), so that the monitor loop,
//! the engine (guest restarts, its breaker) and the alert sink count where
//! they are, with one line each and no plumbing; without `--metrics-listen`
//! nothing is installed and counting is a no-op.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// What a monitor counts.
#[derive(Debug, Default)]
pub struct Metrics {
    lines: Mutex<BTreeMap<String, u64>>,
    scored: AtomicU64,
    anomalies: AtomicU64,
    bursts: AtomicU64,
    model_version: AtomicU64,
    /// Unix seconds of the last checkpoint saved, 0 for none yet.
    checkpoint_at: AtomicI64,
    guest_restarts: AtomicU64,
    batches_in_parts: AtomicU64,
    alerts_undelivered: AtomicU64,
    breakers: Mutex<BTreeMap<String, bool>>,
}

static GLOBAL: OnceLock<Arc<Metrics>> = OnceLock::new();

/// The process's metrics, once [`install`]ed.
pub fn global() -> Option<&'static Metrics> {
    GLOBAL.get().map(Arc::as_ref)
}

/// Installs the process's metrics (the first call wins) and returns them.
pub fn install() -> Arc<Metrics> {
    GLOBAL.get_or_init(|| Arc::new(Metrics::default())).clone()
}

/// Counts `f` on the process's metrics, if there are any.
pub fn count(f: impl FnOnce(&Metrics)) {
    if let Some(m) = global() {
        f(m)
    }
}

impl Metrics {
    /// A line read from `origin`.
    pub fn line(&self, origin: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        match lines.get_mut(origin) {
            Some(n) => *n += 1,
            None => {
                lines.insert(origin.to_owned(), 1);
            }
        }
    }

    /// A record scored, anomalous or not, and whether it raised a burst.
    pub fn scored(&self, anomalous: bool, burst: bool) {
        self.scored.fetch_add(1, Ordering::Relaxed);
        self.anomalies.fetch_add(u64::from(anomalous), Ordering::Relaxed);
        self.bursts.fetch_add(u64::from(burst), Ordering::Relaxed);
    }

    /// The model version now scoring.
    pub fn model_version(&self, version: u32) {
        self.model_version.store(version.into(), Ordering::Relaxed);
    }

    /// A checkpoint was just saved.
    pub fn checkpoint_saved(&self) {
        self.checkpoint_at.store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
    }

    /// The guest was restarted (a trap or a breaker).
    pub fn guest_restarted(&self) {
        self.guest_restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// A batch was scored in parts, on several threads (issue 11).
    pub fn batch_in_parts(&self) {
        self.batches_in_parts.fetch_add(1, Ordering::Relaxed);
    }

    /// Alerts that could not be delivered.
    pub fn alerts_undelivered(&self, n: u64) {
        self.alerts_undelivered.fetch_add(n, Ordering::Relaxed);
    }

    /// The state of the circuit breaker around `what`.
    pub fn breaker(&self, what: &str, open: bool) {
        self.breakers.lock().unwrap_or_else(|e| e.into_inner()).insert(what.to_owned(), open);
    }

    /// The page, in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in samples {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        let plain = |v: u64| vec![(String::new(), v.to_string())];
        let lines: Vec<_> = self
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(origin, n)| (format!("{{source=\"{}\"}}", escape(origin)), n.to_string()))
            .collect();
        metric("logarithm_lines_read_total", "counter", "Lines read, per source.", &lines);
        metric("logarithm_records_scored_total", "counter", "Records scored.", &plain(self.scored.load(Ordering::Relaxed)));
        metric("logarithm_anomalies_total", "counter", "Records found anomalous.", &plain(self.anomalies.load(Ordering::Relaxed)));
        metric(
            "logarithm_bursts_total",
            "counter",
            "Bursts raised: a kind of line logged far faster than in training.",
            &plain(self.bursts.load(Ordering::Relaxed)),
        );
        metric("logarithm_model_version", "gauge", "The model version scoring.", &plain(self.model_version.load(Ordering::Relaxed)));
        let at = self.checkpoint_at.load(Ordering::Relaxed);
        if at > 0 {
            let age = (chrono::Utc::now().timestamp() - at).max(0) as u64;
            metric("logarithm_checkpoint_age_seconds", "gauge", "Seconds since the last checkpoint was saved.", &plain(age));
        }
        metric(
            "logarithm_guest_restarts_total",
            "counter",
            "Restarts of the detector component.",
            &plain(self.guest_restarts.load(Ordering::Relaxed)),
        );
        metric(
            "logarithm_batches_in_parts_total",
            "counter",
            "Batches scored in parts on several threads (while most lines are new).",
            &plain(self.batches_in_parts.load(Ordering::Relaxed)),
        );
        metric(
            "logarithm_alerts_undelivered_total",
            "counter",
            "Alerts that could not be delivered.",
            &plain(self.alerts_undelivered.load(Ordering::Relaxed)),
        );
        let breakers: Vec<_> = self
            .breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(what, open)| (format!("{{breaker=\"{}\"}}", escape(what)), u8::from(*open).to_string()))
            .collect();
        metric("logarithm_breaker_open", "gauge", "1 while a circuit breaker is open.", &breakers);
        out
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Serves `metrics` on `addr` (GET `/metrics`, or `/`) from a thread;
/// returns the address bound (port 0 picks one).
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr} for metrics (--metrics-listen)"))?;
    let bound = listener.local_addr().with_context(|| format!("cannot tell the address bound for {addr}"))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &metrics) {
                    tracing::debug!("metrics request: {e}");
                }
            }
        })
        .context("cannot start the metrics thread")?;
    tracing::info!("serving metrics on http://{bound}/metrics");
    Ok(bound)
}

/// Answers one request: reads its head (at most 8 KiB, 2 s), then writes
/// the page or a 404/405. A slow or strange client costs little and is
/// answered in turn.
fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let request = String::from_utf8_lossy(&head);
    let mut parts = request.split_whitespace();
    let (status, body) = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics" | "/")) => ("200 OK", metrics.render()),
        (Some("GET"), _) => ("404 Not Found", "not found: the metrics are at /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "only GET\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_the_text_format() {
        let m = Arc::new(Metrics::default());
        m.line("/var/log/sy\"slog");
        m.line("/var/log/sy\"slog");
        m.line("journal");
        m.scored(true, false);
        m.scored(false, true);
        m.scored(false, false);
        m.model_version(3);
        m.batch_in_parts();
        m.breaker("guest", false);
        let addr = serve("127.0.0.1:0".parse().unwrap(), m.clone()).unwrap();
        let page = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        for line in [
            "logarithm_lines_read_total{source=\"/var/log/sy\\\"slog\"} 2",
            "logarithm_lines_read_total{source=\"journal\"} 1",
            "logarithm_records_scored_total 3",
            "logarithm_anomalies_total 1",
            "logarithm_bursts_total 1",
            "# TYPE logarithm_bursts_total counter",
            "logarithm_model_version 3",
            "logarithm_batches_in_parts_total 1",
            "logarithm_breaker_open{breaker=\"guest\"} 0",
            "# TYPE logarithm_anomalies_total counter",
        ] {
            assert!(page.lines().any(|l| l == line), "{line:?} not in {page}");
        }
        assert!(!page.contains("checkpoint_age"), "no checkpoint yet");
        assert!(get(addr, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(addr, b"\xff\xfe garbage\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(get(addr, b"").starts_with("HTTP/1.1 405"));
    }
}
