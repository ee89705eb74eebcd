//! Realistic fake logs for the demo, tests and benchmarks: a mix of the
//! messages a small Linux server writes (sshd, cron, systemd, kernel,
//! postfix, dhclient, nginx), with variable parts drawn at random, and
//! optionally injected anomalies (OOM kills, segfaults, disk errors, brute
//! force, soft lockups ...) whose line numbers are reported.

use chrono::{DateTime, Duration, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::io::{self, Write};

/// Output layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// RFC 3164 syslog lines: `Nov  2 08:00:00 host prog[pid]: msg`.
    Syslog,
    /// NDJSON objects with `timestamp`, `host`, `ident`, `pid`, `priority`, `message`.
    Json,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct FakeLogs {
    /// Layout.
    pub template: Template,
    /// Number of lines.
    pub count: usize,
    /// Number of injected anomalies among them.
    pub anomalies: usize,
    /// Random seed.
    pub seed: u64,
    /// Timestamp of the first line.
    pub start: DateTime<Utc>,
}

const USERS: &[&str] = &["root", "alice", "bob", "deploy", "backup", "www-data"];
const UNITS: &[&str] = &["apt-daily.service", "logrotate.service", "man-db.service", "fstrim.service", "certbot.service"];
const PATHS: &[&str] = &["/api/v1/items", "/api/v1/users", "/static/app.js", "/health", "/login", "/api/v1/orders"];
const PROCS: &[&str] = &["java", "python3", "node", "postgres", "nginx"];

fn ip(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        [10, 172, 192, 203][rng.random_range(0..4)],
        rng.random_range(0..256),
        rng.random_range(0..256),
        rng.random_range(1..255)
    )
}

fn hex(rng: &mut ChaCha8Rng, digits: usize) -> String {
    (0..digits).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap()).collect()
}

/// A normal line: (program, priority, message).
fn normal(rng: &mut ChaCha8Rng) -> (&'static str, u8, String) {
    let user = *USERS.choose(rng).unwrap();
    let port = rng.random_range(1024..65535);
    let n = rng.random_range(1..100_000);
    match rng.random_range(0..100) {
        0..=9 => ("sshd", 6, format!("Accepted publickey for {user} from {} port {port} ssh2: RSA SHA256:{}", ip(rng), hex(rng, 20))),
        10..=13 => ("sshd", 6, format!("Accepted password for {user} from {} port {port} ssh2", ip(rng))),
        14..=20 => {
            ("sshd", 6, format!("pam_unix(sshd:session): session opened for user {user}(uid={}) by (uid=0)", rng.random_range(0..2000)))
        }
        21..=27 => ("sshd", 6, format!("pam_unix(sshd:session): session closed for user {user}")),
        28..=31 => ("sshd", 6, format!("Received disconnect from {} port {port}:11: disconnected by user", ip(rng))),
        32..=39 => ("CRON", 6, format!("({user}) CMD (run-parts /etc/cron.{})", ["hourly", "daily", "weekly"][rng.random_range(0..3)])),
        40..=45 => ("CRON", 6, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)".into()),
        46..=51 => ("CRON", 6, "pam_unix(cron:session): session closed for user root".into()),
        52..=55 => ("systemd", 6, format!("Started Session {n} of User {user}.")),
        56..=58 => ("systemd", 6, format!("Starting {}...", UNITS.choose(rng).unwrap())),
        59..=61 => ("systemd", 6, format!("{}: Deactivated successfully.", UNITS.choose(rng).unwrap())),
        62..=64 => ("systemd-logind", 6, format!("New session {n} of user {user}.")),
        65..=67 => ("systemd-logind", 6, format!("Removed session {n}.")),
        68..=75 => (
            "nginx",
            6,
            format!(
                "{} - - \"GET {}/{} HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0\" rt={}.{:03}",
                ip(rng),
                PATHS.choose(rng).unwrap(),
                rng.random_range(1..5000),
                rng.random_range(200..90_000),
                rng.random_range(0..2),
                rng.random_range(0..1000)
            ),
        ),
        76..=79 => ("postfix/smtpd", 6, format!("connect from unknown[{}]", ip(rng))),
        80..=82 => ("postfix/smtpd", 6, format!("disconnect from unknown[{}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5", ip(rng))),
        83..=85 => (
            "postfix/qmgr",
            6,
            format!(
                "{}: from=<{user}@example.com>, size={}, nrcpt=1 (queue active)",
                hex(rng, 10).to_uppercase(),
                rng.random_range(500..90_000)
            ),
        ),
        86..=88 => ("dhclient", 6, format!("DHCPREQUEST for {} on eth0 to {} port 67", ip(rng), ip(rng))),
        89..=90 => ("dhclient", 6, format!("bound to {} -- renewal in {} seconds.", ip(rng), rng.random_range(600..43_200))),
        91..=93 => (
            "kernel",
            6,
            format!(
                "[{}.{:06}] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready",
                rng.random_range(1..900_000),
                rng.random_range(0..1_000_000)
            ),
        ),
        94..=96 => (
            "sudo",
            5,
            format!("{user} : TTY=pts/{} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx", rng.random_range(0..5)),
        ),
        _ => ("systemd", 6, format!("Finished {}.", UNITS.choose(rng).unwrap())),
    }
}

/// An anomalous line: (program, priority, message).
fn anomaly(rng: &mut ChaCha8Rng) -> (&'static str, u8, String) {
    let pid = rng.random_range(300..60_000);
    let proc_ = *PROCS.choose(rng).unwrap();
    match rng.random_range(0..9) {
        0 => (
            "kernel",
            3,
            format!(
                "Out of memory: Killed process {pid} ({proc_}) total-vm:{}kB, anon-rss:{}kB, file-rss:0kB, shmem-rss:0kB",
                rng.random_range(1_000_000..9_000_000),
                rng.random_range(500_000..8_000_000)
            ),
        ),
        1 => (
            "kernel",
            6,
            format!(
                "{proc_}[{pid}]: segfault at {} ip {} sp {} error 4 in libc.so.6[{}+{}]",
                hex(rng, 12),
                hex(rng, 12),
                hex(rng, 12),
                hex(rng, 12),
                hex(rng, 5)
            ),
        ),
        2 => (
            "kernel",
            3,
            format!(
                "EXT4-fs error (device sda1): ext4_find_entry:1455: inode #{}: comm {proc_}: reading directory lblock 0",
                rng.random_range(2..9_000_000)
            ),
        ),
        3 => (
            "kernel",
            3,
            format!(
                "blk_update_request: I/O error, dev sda, sector {} op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
                rng.random_range(1..900_000_000)
            ),
        ),
        4 => (
            "sshd",
            3,
            format!(
                "error: maximum authentication attempts exceeded for root from {} port {} ssh2 [preauth]",
                ip(rng),
                rng.random_range(1024..65535)
            ),
        ),
        5 => ("systemd", 3, format!("{}: Main process exited, code=killed, status=9/KILL", UNITS.choose(rng).unwrap())),
        6 => (
            "kernel",
            0,
            format!("watchdog: BUG: soft lockup - CPU#{} stuck for {}s! [{proc_}:{pid}]", rng.random_range(0..4), rng.random_range(22..90)),
        ),
        7 => (
            "sudo",
            1,
            format!(
                "{} : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash",
                USERS.choose(rng).unwrap()
            ),
        ),
        _ => ("kernel", 2, "mce: [Hardware Error]: Machine check events logged".into()),
    }
}

impl FakeLogs {
    /// Writes the lines to `out` and returns the 1-based line numbers of the
    /// injected anomalies.
    pub fn write(&self, out: &mut impl Write) -> io::Result<BTreeSet<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let anomalies = self.anomalies.min(self.count);
        let mut positions = BTreeSet::new();
        while positions.len() < anomalies {
            positions.insert(rng.random_range(1..=self.count));
        }
        let hosts = ["web01", "web02", "db01"];
        let mut t = self.start;
        for line_no in 1..=self.count {
            t += Duration::milliseconds(rng.random_range(10..4000));
            let (prog, priority, msg) = if positions.contains(&line_no) { anomaly(&mut rng) } else { normal(&mut rng) };
            let host = hosts[rng.random_range(0..hosts.len())];
            let pid = rng.random_range(300..60_000);
            match self.template {
                Template::Syslog => {
                    let tag = if prog == "kernel" { prog.to_owned() } else { format!("{prog}[{pid}]") };
                    writeln!(out, "{} {host} {tag}: {msg}", t.format("%b %e %H:%M:%S"))?;
                }
                Template::Json => {
                    let obj = serde_json::json!({
                        "timestamp": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "host": host,
                        "ident": prog,
                        "pid": pid,
                        "priority": priority,
                        "message": msg,
                    });
                    writeln!(out, "{obj}")?;
                }
            }
        }
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_the_requested_lines_and_anomalies_deterministically() {
        let generator = FakeLogs { template: Template::Syslog, count: 500, anomalies: 7, seed: 3, start: DateTime::UNIX_EPOCH };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let pos = generator.write(&mut a).unwrap();
        generator.write(&mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(pos.len(), 7);
        let text = String::from_utf8(a).unwrap();
        assert_eq!(text.lines().count(), 500);
        let json = FakeLogs { template: Template::Json, ..generator };
        let mut j = Vec::new();
        json.write(&mut j).unwrap();
        for line in String::from_utf8(j).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["message"].is_string());
        }
    }
}
