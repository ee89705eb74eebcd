//! The audit log: what was done to the models and by the monitor, as JSON
//! lines in the data directory (`audit.log`, mode 0600), each entry chained
//! to the one before by a hash (issue 13).
//!
//! An entry is one line:
//!
//! ```text
//! {"hash":"<64 hex>","seq":3,"time":"2026-11-27T16:00:00.123Z","event":"model_trained","pid":42,"details":{...},"prev":"<64 hex>"}
//! ```
//!
//! `hash` is `SHA-256` of the line's own text without its `"hash":"…",`
//! prefix (the exact bytes, so no re-serialisation is involved), and `prev`
//! is the previous entry's `hash` (64 zeros for the first); `seq` counts
//! from 1. An edited entry no longer matches its hash; a deleted, inserted
//! or reordered one breaks `seq` and `prev`. The last entry's `seq` and
//! `hash` are also kept in `audit.head`, so a log cut short is caught too.
//! Whoever can rewrite both files can rewrite history: forward the log (or
//! the `journal` alert) to another machine for that.
//!
//! Writers (trainer and monitor, at the same time) serialise on an `flock`
//! of `audit.log` itself. Events: `model_trained`, `model_installed`,
//! `retrain_skipped`, `model_rolled_back`, `model_deleted`, `model_rekeyed`, `monitor_started`,
//! `monitor_stopped`, `model_loaded`, `model_reloaded`, `breaker_opened`,
//! `breaker_closed`, `config_used`. Details never hold a key, only its
//! fingerprint.

use crate::datadir::{DataDir, write_atomic};
use anyhow::{Context, Result};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The audit log's file name in the data directory.
pub const FILE: &str = "audit.log";
/// The file holding the last entry's sequence number and hash.
pub const HEAD: &str = "audit.head";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// `{"hash":"` + 64 hex digits + `",`
const PREFIX_LEN: usize = 9 + 64 + 2;

/// The audit log of one data directory.
#[derive(Debug, Clone)]
pub struct AuditLog {
    root: PathBuf,
}

/// One entry, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its number, from 1.
    pub seq: u64,
    /// When it was written, RFC 3339 UTC.
    pub time: String,
    /// What happened (see the module docs).
    pub event: String,
    /// The writer's process id.
    pub pid: u64,
    /// What it was about.
    pub details: Map<String, Value>,
    /// Its hash (hex).
    pub hash: String,
    /// The line as stored.
    pub line: String,
}

/// Where and how a log's chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first entry (1-based line number) that does not check out.
    pub entry: u64,
    /// Why.
    pub why: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry {}: {}", self.entry, self.why)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Splits a stored line into its hash and the text the hash covers
/// (`{` + the rest), or says what is wrong with it.
fn split_line(line: &str) -> Result<(&str, String), String> {
    let hash = line
        .strip_prefix("{\"hash\":\"")
        .and_then(|rest| rest.get(..64))
        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("it does not start with its hash")?;
    let rest = line
        .get(PREFIX_LEN..)
        .filter(|_| line.as_bytes().get(PREFIX_LEN - 2..PREFIX_LEN) == Some(b"\","))
        .ok_or("it does not start with its hash")?;
    Ok((hash, format!("{{{rest}")))
}

/// Checks one line on its own (its hash) and parses it, with its `prev`.
fn parse_line(line: &str) -> Result<(Entry, String), String> {
    let (hash, body) = split_line(line)?;
    if sha256_hex(body.as_bytes()) != hash {
        return Err("its content does not match its hash: it was modified".into());
    }
    let value: Value = serde_json::from_str(&body).map_err(|e| format!("it is not a JSON object: {e}"))?;
    let text = |key: &str| value[key].as_str().map(str::to_owned).ok_or(format!("it has no {key}"));
    let entry = Entry {
        seq: value["seq"].as_u64().ok_or("it has no seq")?,
        time: text("time")?,
        event: text("event")?,
        pid: value["pid"].as_u64().unwrap_or(0),
        details: value["details"].as_object().cloned().unwrap_or_default(),
        hash: hash.to_owned(),
        line: line.to_owned(),
    };
    Ok((entry, text("prev")?))
}

impl AuditLog {
    /// The audit log of `data_dir` (created on the first append).
    pub fn new(data_dir: &DataDir) -> Self {
        Self { root: data_dir.root().to_path_buf() }
    }

    /// The log file.
    pub fn path(&self) -> PathBuf {
        self.root.join(FILE)
    }

    fn head_path(&self) -> PathBuf {
        self.root.join(HEAD)
    }

    /// The number of entries the head says were written, if it can be read.
    fn head_seq(&self) -> Option<u64> {
        let head: Value = serde_json::from_str(&fs::read_to_string(self.head_path()).ok()?).ok()?;
        head["seq"].as_u64()
    }

    /// The log, to append to (created if missing; a symbolic link there is
    /// refused, as lock files refuse one) or only to read (`None` when it
    /// does not exist; a read-only copy can be verified).
    fn open(&self, append: bool) -> Result<Option<File>> {
        let path = self.path();
        let mut options = OpenOptions::new();
        options.read(true);
        if append {
            options.append(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        match options.open(&path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !append => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                anyhow::bail!("the audit log {} is a symbolic link, which is never followed; remove it", path.display())
            }
            Err(e) => Err(e).with_context(|| format!("cannot open the audit log {}", path.display())),
        }
    }

    /// Appends an entry for `event` with `details` (a JSON object), chained
    /// to the last one; returns its sequence number. Blocks while another
    /// process appends.
    pub fn append(&self, event: &str, details: Value) -> Result<u64> {
        self.append_all(vec![(event, details)])
    }

    /// Appends entries in one go (one lock, one sync, one head update);
    /// returns the last one's sequence number.
    pub fn append_all(&self, events: Vec<(&str, Value)>) -> Result<u64> {
        fs::create_dir_all(&self.root).with_context(|| format!("cannot create {}", self.root.display()))?;
        let mut file = self.open(true)?.expect("created");
        let path = self.path();
        file.lock().with_context(|| format!("cannot lock the audit log {}", path.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).with_context(|| format!("cannot read the audit log {}", path.display()))?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let text = std::str::from_utf8(&bytes[..whole])
            .map_err(|e| anyhow::anyhow!("the audit log {} is not UTF-8 ({e}); see `logarithm-trainer audit verify`", path.display()))?;
        // A last entry without its line break: whole (an editor dropped the
        // break), it gets one; cut short by an append that failed (a full
        // disk, a crash), it goes, so that the chain goes on from the last
        // whole entry. Such an append was never acknowledged, and the head
        // does not count it; one the head counts is damage, for `verify`.
        let tail = String::from_utf8_lossy(&bytes[whole..]).into_owned();
        let mut lines = String::new();
        let mut text = text.to_owned();
        // What a failed write below goes back to.
        let mut kept = bytes.len();
        if parse_line(&tail).is_ok() {
            text.push_str(&tail);
            text.push('\n');
            lines.push('\n');
        } else if !tail.is_empty() {
            let last_seq = text.lines().last().and_then(|l| parse_line(l).ok()).map_or(0, |(e, _)| e.seq);
            if self.head_seq().is_some_and(|counted| counted != last_seq) {
                anyhow::bail!(
                    "the last entry of the audit log {} is incomplete, and its head counts it; see `logarithm-trainer audit verify`",
                    path.display()
                );
            }
            tracing::warn!("the audit log {} ended in an incomplete entry (an append cut short); removed it", path.display());
            kept = whole;
            file.set_len(whole as u64).with_context(|| format!("cannot cut the incomplete entry of the audit log {}", path.display()))?;
        }
        let (mut seq, mut prev) = match text.lines().last() {
            None => (0, GENESIS.to_owned()),
            Some(last) => {
                let (hash, body) = split_line(last).map_err(|e| {
                    anyhow::anyhow!(
                        "the last entry of the audit log {} is damaged ({e}); see `logarithm-trainer audit verify`",
                        path.display()
                    )
                })?;
                let seq = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["seq"].as_u64()).unwrap_or(text.lines().count() as u64);
                (seq, hash.to_owned())
            }
        };
        // Nothing is chained onto a log that does not hold the entry its
        // head names (cut short, or edited there): the new head would match
        // the damaged log, `verify` would pass again, and a rollback the
        // cut hid would be sanctioned.
        if let Err(broken) =
            self.head_fits(seq, |n| text.lines().nth(n as usize - 1).and_then(|l| Some(split_line(l).ok()?.0.to_owned())))?
        {
            anyhow::bail!(
                "the audit log {} is broken at {broken}; nothing was appended (`logarithm-trainer audit verify` says where; to start a new chain, move {FILE} and {HEAD} aside)",
                path.display()
            );
        }
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for (event, details) in events {
            let details = match details {
                Value::Object(map) => Value::Object(map),
                Value::Null => json!({}),
                other => json!({ "value": other }),
            };
            seq += 1;
            let body = serde_json::to_string(&json!({
                "seq": seq,
                "time": time,
                "event": event,
                "pid": std::process::id(),
                "details": details,
                "prev": prev,
            }))?;
            prev = sha256_hex(body.as_bytes());
            lines.push_str(&format!("{{\"hash\":\"{prev}\",{}\n", &body[1..]));
        }
        if let Err(e) = file.write_all(lines.as_bytes()).and_then(|_| file.sync_data()) {
            // Leave no incomplete entry behind (the next append would remove it).
            let _ = file.set_len(kept as u64);
            return Err(e).with_context(|| format!("cannot append to the audit log {}", path.display()));
        }
        write_atomic(&self.head_path(), format!("{{\"seq\":{seq},\"hash\":\"{prev}\"}}\n").as_bytes())?;
        Ok(seq)
    }

    /// Whether the head fits a log whose last entry is number `last`
    /// (`hash_of(n)` is entry `n`'s hash): the head names the last entry,
    /// or an earlier one whose hash is that entry's (a writer stopped
    /// between appending and updating the head). A log with entries needs
    /// a head. A head that cannot be read (permissions) is an error, not a
    /// broken chain.
    fn head_fits(&self, last: u64, hash_of: impl Fn(u64) -> Option<String>) -> Result<std::result::Result<(), Broken>> {
        let at = |entry: u64, why: String| Ok(Err(Broken { entry, why }));
        let head = match fs::read_to_string(self.head_path()) {
            Ok(text) => serde_json::from_str::<Value>(&text).ok().and_then(|v| Some((v["seq"].as_u64()?, v["hash"].as_str()?.to_owned()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return if last == 0 {
                    Ok(Ok(()))
                } else {
                    at(last, format!("{HEAD} is missing: whether the log was cut short cannot be told"))
                };
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.head_path().display())),
        };
        let Some((seq, hash)) = head else { return at(0, format!("{} is damaged", self.head_path().display())) };
        if seq > last {
            return at(last + 1, format!("the log ends at entry {last}, but {seq} entries were written: it was cut short"));
        }
        if seq == 0 || hash_of(seq).as_deref() != Some(hash.as_str()) {
            return at(seq, format!("{HEAD} does not match the log's entry {seq}"));
        }
        Ok(Ok(()))
    }

    /// Like [`AuditLog::append`], after a change was made: the error says
    /// the change itself is done, only its entry is missing.
    pub fn append_done(&self, event: &str, details: Value) -> Result<()> {
        self.append(event, details).map(drop).with_context(|| format!("done, but {event} could not be audited"))
    }

    /// Like [`AuditLog::append`], for those who must go on when the log
    /// cannot be written (the monitor): a failure is logged, not returned.
    pub fn record(&self, event: &str, details: Value) {
        if let Err(e) = self.append(event, details) {
            tracing::warn!("cannot audit {event}: {e:#}");
        }
    }

    /// The entries up to the first broken one, and that one (see
    /// [`AuditLog::verify`]).
    pub fn read(&self) -> Result<(Vec<Entry>, Option<Broken>)> {
        self.check()
    }

    /// Checks the whole chain: each entry's hash, `seq` and `prev`, and the
    /// last entry against `audit.head`. Returns the number of entries, or
    /// the first broken one.
    pub fn verify(&self) -> Result<std::result::Result<u64, Broken>> {
        let (entries, broken) = self.check()?;
        Ok(match broken {
            Some(b) => Err(b),
            None => Ok(entries.len() as u64),
        })
    }

    /// The entries up to the first broken one, and that one.
    fn check(&self) -> Result<(Vec<Entry>, Option<Broken>)> {
        let path = self.path();
        // The shared lock is held until the head is read too: an append
        // between the two would look like a log cut short.
        let (text, _locked) = match self.open(false)? {
            Some(mut f) => {
                f.lock_shared().with_context(|| format!("cannot lock the audit log {}", path.display()))?;
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes).with_context(|| format!("cannot read the audit log {}", path.display()))?;
                (String::from_utf8_lossy(&bytes).into_owned(), Some(f))
            }
            None => (String::new(), None),
        };
        let mut entries: Vec<Entry> = Vec::new();
        let mut prev = GENESIS.to_owned();
        let count = text.lines().count();
        for (i, line) in text.lines().enumerate() {
            let n = i as u64 + 1;
            let broken = |why: String| Some(Broken { entry: n, why });
            if i + 1 == count && !text.ends_with('\n') {
                return Ok((entries, broken("it is incomplete: the log was cut short while it was written".into())));
            }
            let (entry, entry_prev) = match parse_line(line) {
                Ok(e) => e,
                Err(why) => return Ok((entries, broken(why))),
            };
            if entry.seq != n {
                return Ok((
                    entries,
                    broken(format!("it is numbered {} at line {n}: an entry before it was deleted, inserted or moved", entry.seq)),
                ));
            }
            if entry_prev != prev {
                return Ok((
                    entries,
                    broken("it does not follow the entry before it (prev hash mismatch): entries were removed or reordered".into()),
                ));
            }
            prev = entry.hash.clone();
            entries.push(entry);
        }
        let last = entries.len() as u64;
        let broken = self.head_fits(last, |n| Some(entries.get(n as usize - 1)?.hash.clone()))?.err();
        Ok((entries, broken))
    }
}

impl AuditLog {
    /// Whether `version`, older than the model a monitor scores with, was
    /// made current by the CLI: the chain must be intact and its latest
    /// change of the current model (install, rollback, delete) must name
    /// `version`. Otherwise says why not (issue 13: an older model sealed
    /// with the same key must not be swapped in behind the monitor's back).
    pub fn rollback_sanctioned(&self, version: u32) -> std::result::Result<(), String> {
        let (entries, broken) = self.read().map_err(|e| format!("{e:#}"))?;
        if let Some(b) = broken {
            return Err(format!("the audit log is broken at {b}"));
        }
        let latest = entries.iter().rev().find_map(|e| match e.event.as_str() {
            "model_installed" => Some(e.details.get("version")),
            "model_rolled_back" => Some(e.details.get("to")),
            "model_deleted" if e.details.get("was_current") == Some(&Value::Bool(true)) => Some(e.details.get("current")),
            _ => None,
        });
        match latest.flatten().and_then(Value::as_u64) {
            Some(v) if v == u64::from(version) => Ok(()),
            Some(v) => Err(format!("the audit log's latest change made version {v} current, not {version}")),
            None => Err("the audit log has no rollback to it".into()),
        }
    }

    /// Whether a monitor starting with `version` goes back behind the
    /// operator's back: refused when a monitor last loaded a newer version
    /// (per this log) and [`AuditLog::rollback_sanctioned`] does not hold,
    /// and, when the chain is broken (so what a monitor last loaded cannot
    /// be trusted), when a newer version than `version` is installed
    /// (`newest`). A broken chain used to be read as far as it held: with
    /// its first entry edited, a monitor started with any version.
    pub fn check_start(&self, version: u32, newest: u32) -> Result<()> {
        let (entries, broken) = self.read()?;
        let last = entries
            .iter()
            .rev()
            .find(|e| e.event == "model_loaded" || e.event == "model_reloaded")
            .and_then(|e| e.details.get("version")?.as_u64());
        let refuse = |why: String| {
            anyhow::anyhow!(
                "refusing model version {version}: {why} (roll back with `logarithm-trainer model rollback`, which is audited; `logarithm-trainer audit verify` checks the log)"
            )
        };
        match (last, broken) {
            (Some(last), _) if last > u64::from(version) => {
                self.rollback_sanctioned(version).map_err(|why| refuse(format!("a monitor last scored with version {last}, and {why}")))
            }
            (_, Some(b)) if newest > version => Err(refuse(format!(
                "version {newest} is installed, and the audit log is broken at {b}, so whether version {version} was made current with the CLI cannot be told"
            ))),
            _ => Ok(()),
        }
    }

    /// Records a following monitor's start: its sources, threshold, model
    /// version, and the configuration file, if one was used.
    pub fn monitor_started(&self, sources: &[String], threshold: f64, version: u32, config: Option<&std::path::Path>) {
        let mut events = Vec::new();
        if let Some(path) = config {
            events.push(("config_used", json!({ "path": path, "by": "monitor" })));
        }
        events.push(("monitor_started", json!({ "sources": sources, "threshold": threshold })));
        events.push(("model_loaded", json!({ "version": version })));
        if let Err(e) = self.append_all(events) {
            tracing::warn!("cannot audit the monitor's start: {e:#}");
        }
    }
}

/// The audit log the running process writes to, for code deep in the
/// monitor (the guest's circuit breaker in `engine`) that has no data
/// directory at hand. Set once by the monitor.
static GLOBAL: OnceLock<AuditLog> = OnceLock::new();

/// Makes `log` the process's audit log for [`breaker`] and [`note`].
pub fn set_global(log: AuditLog) {
    let _ = GLOBAL.set(log);
}

/// Records `event` in the process's audit log, if there is one (see
/// [`set_global`]); a failure to write it is logged, never returned.
pub fn note(event: &str, details: Value) {
    if let Some(log) = GLOBAL.get() {
        log.record(event, details);
    }
}

/// Records that a circuit breaker around `what` opened (`opened`) or
/// closed, and why, in the audit log and the metrics: for the guest's
/// breaker in `engine` and the alert sink's.
pub fn breaker(what: &str, opened: bool, why: &str) {
    crate::metrics::count(|m| m.breaker(what, opened));
    note(if opened { "breaker_opened" } else { "breaker_closed" }, json!({ "breaker": what, "why": why }));
}

/// One entry as a line for people: number, time, event, details.
pub fn describe(entry: &Entry) -> String {
    let details: Vec<String> = entry
        .details
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            Value::Array(items) => {
                format!(
                    "{k}={}",
                    items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect::<Vec<_>>().join(",")
                )
            }
            other => format!("{k}={other}"),
        })
        .collect();
    // Sources are file names, which whoever writes a globbed directory
    // chooses: escaped like every human output.
    let line = format!("{:>5}  {}  {:<18} {}  (pid {})", entry.seq, entry.time, entry.event, details.join(" "), entry.pid);
    crate::output::printable(&line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&DataDir::resolve(Some(dir.path().join("d"))).unwrap());
        (dir, log)
    }

    /// An audit log that is a symbolic link is refused, its target
    /// untouched; one that exists is read without write access.
    #[test]
    fn a_symbolic_link_is_never_appended_to() {
        let (dir, log) = log();
        fs::create_dir_all(&log.root).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, log.path()).unwrap();
        let e = log.append("model_trained", json!({})).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    }

    #[test]
    fn chain_appends_and_verifies() {
        let (_dir, log) = log();
        assert_eq!(log.verify().unwrap(), Ok(0));
        for i in 0..3 {
            assert_eq!(log.append("model_trained", json!({"version": i, "sources": ["a.log"], "threshold": 0.999})).unwrap(), i + 1);
        }
        assert_eq!(log.verify().unwrap(), Ok(3));
        let (entries, broken) = log.read().unwrap();
        assert_eq!(broken, None);
        assert_eq!(entries[2].details["version"], 2);
        assert!(describe(&entries[0]).contains("model_trained") && describe(&entries[0]).contains("sources=a.log"));
        let mut odd = entries[0].clone();
        odd.details.insert("sources".into(), json!(["esc/\u{1b}[31mevil\u{7}.log"]));
        assert!(describe(&odd).contains("sources=esc/\\u{1b}[31mevil\\u{7}.log"), "{}", describe(&odd));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(log.path()).unwrap().permissions().mode() & 0o777, 0o600);
        // A head that cannot be read (another user's, here a directory) is
        // an error that says so, not a chain "broken at entry 0".
        fs::remove_file(log.head_path()).unwrap();
        fs::create_dir(log.head_path()).unwrap();
        for e in [log.verify().unwrap_err(), log.append("model_loaded", json!({})).unwrap_err()] {
            assert!(format!("{e:#}").contains("cannot read") && format!("{e:#}").contains(HEAD), "{e:#}");
        }
    }

    #[test]
    fn edits_deletions_reorders_and_truncation_are_caught() {
        let (_dir, log) = log();
        log.append("model_installed", json!({"version": 0})).unwrap();
        log.append_all((1..4).map(|i| ("model_installed", json!({"version": i}))).collect()).unwrap();
        let good = fs::read_to_string(log.path()).unwrap();
        let lines: Vec<&str> = good.lines().collect();
        let check = |text: String, entry: u64, why: &str| {
            fs::write(log.path(), text).unwrap();
            let broken = log.verify().unwrap().unwrap_err();
            assert_eq!(broken.entry, entry, "{broken}");
            assert!(broken.why.contains(why), "{broken}");
        };
        check(good.replace("\"version\":2", "\"version\":9"), 3, "modified");
        check([lines[0], lines[2], lines[3]].map(|l| format!("{l}\n")).concat(), 2, "numbered 3");
        check([lines[0], lines[2], lines[1], lines[3]].map(|l| format!("{l}\n")).concat(), 2, "numbered 3");
        check([lines[0], lines[1], lines[2]].map(|l| format!("{l}\n")).concat(), 4, "cut short");
        check(good[..good.len() - 10].to_owned(), 4, "incomplete");
        check(String::new(), 1, "4 entries were written");
        fs::write(log.path(), &good).unwrap();
        assert_eq!(log.verify().unwrap(), Ok(4));
    }

    /// An append cut short (a full disk) leaves an incomplete entry; the
    /// next append removes it and chains on from the last whole one.
    #[test]
    fn an_incomplete_last_entry_is_removed_by_the_next_append() {
        let (_dir, log) = log();
        log.append_all((0..3).map(|i| ("model_installed", json!({"version": i}))).collect()).unwrap();
        let (good, head) = (fs::read_to_string(log.path()).unwrap(), fs::read(log.head_path()).unwrap());
        for cut in [5, 40, 90] {
            let torn = format!("{good}{}", &good.lines().next().unwrap()[..cut]);
            fs::write(log.path(), torn).unwrap();
            assert!(log.verify().unwrap().unwrap_err().why.contains("incomplete"));
            assert_eq!(log.append("model_rolled_back", json!({"version": 1})).unwrap(), 4, "cut at {cut}");
            assert_eq!(log.verify().unwrap(), Ok(4), "cut at {cut}");
            fs::write(log.path(), &good).unwrap();
            fs::write(log.head_path(), &head).unwrap();
        }
        // Cut inside a character (entries hold paths in any script).
        log.append("model_installed", json!({"path": "/var/lib/логи/model.lgm"})).unwrap();
        let with_path = fs::read(log.path()).unwrap();
        let at = with_path.len() - 1 - with_path.iter().rev().skip(1).position(|&b| b >= 0x80).unwrap() - 1;
        fs::write(log.path(), &with_path[..at]).unwrap();
        fs::write(log.head_path(), &head).unwrap();
        assert_eq!(log.append("model_rolled_back", json!({"version": 1})).unwrap(), 4);
        assert_eq!(log.verify().unwrap(), Ok(4));
        // An incomplete entry the head counts is damage: left for `verify`.
        let counted = fs::read(log.path()).unwrap();
        fs::write(log.path(), &counted[..counted.len() - 20]).unwrap();
        assert!(log.append("model_rolled_back", json!({"version": 2})).unwrap_err().to_string().contains("head counts it"));
        // A whole entry that lost only its line break keeps it.
        fs::write(log.path(), &counted[..counted.len() - 1]).unwrap();
        assert_eq!(log.append("model_rolled_back", json!({"version": 2})).unwrap(), 5);
        assert_eq!(log.verify().unwrap(), Ok(5));
    }

    #[test]
    fn concurrent_writers_keep_one_chain() {
        let (_dir, log) = log();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        log.append("model_loaded", json!({"t": t, "i": i})).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(log.verify().unwrap(), Ok(40));
    }
}
