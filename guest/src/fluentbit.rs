//! The Fluent Bit face: the detector as a core WebAssembly module
//! (`wasm32-wasip1`) for Fluent Bit's `filter_wasm`, which calls an
//! exported C function once per record with the record's body as JSON and
//! takes the returned JSON as the new body. This file only adapts that ABI:
//! records are read by [`crate::parse`], scored by [`crate::Detector`] and
//! annotated by [`crate::enrich`], exactly as everywhere else.
//!
//! Exports (the `Function_Name` to configure):
//! - `logarithm_filter`: every record passes, with `anomaly_score`,
//!   `anomalous`, `anomaly_terms` and `anomaly_reported` added (or
//!   `anomaly_error`);
//! - `logarithm_filter_anomalies`: only the anomalies that raise an alert
//!   pass (`anomaly_reported`: the first of their kind, worse, or carrying
//!   a repeat summary; see [`crate::kinds`]), and records that could not be
//!   scored, with `anomaly_error`: nothing vanishes silently;
//! - `logarithm_keep_anomalies`: scores nothing, keeps the records the
//!   first function marked `anomaly_reported` (for an output of alerts only).
//!
//! Where the model comes from: the data directory (the one holding
//! `current` and `models/`) given as one of `Accessible_Paths`. The module
//! looks through its preopened directories for it, so no path is
//! configured twice. The passphrase comes from a file, never from the
//! Fluent Bit config: `logarithm-key` in any preopened directory (a systemd
//! credentials directory, say), else the data directory's `key` (the key
//! the trainer generates). Every 2 s the module rereads `current`: a newly
//! installed model is loaded without restarting Fluent Bit, and a model
//! that fails to load leaves the old one working. Problems are printed to
//! stderr, which is Fluent Bit's log, once per change.
//!
//! The ABI, as verified against Fluent Bit 5.1.1: `fn(tag, tag_len,
//! time_sec, time_nsec, record, record_len) -> *const u8`, the record a
//! NUL-terminated JSON object copied into the module's memory (the module
//! exports `malloc` and `free`, see `host/build.rs`, so the copy never
//! runs out of WAMR's small fixed app heap; NULL only if memory is
//! exhausted); the result a NUL-terminated JSON object in a buffer the
//! module owns (one buffer, reused), or `""` to drop the record.
//!
//! Nothing here panics: a panic is a trap, and Fluent Bit drops a record
//! whose filter trapped.

use crate::modelfile::layout;
use crate::{Detector, enrich, parse};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the module looks for a newly installed model.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Which records pass.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    All,
    Anomalies,
}

/// The loaded model, and where it came from.
struct Loaded {
    detector: Detector,
    dir: PathBuf,
    version: u32,
}

/// The module's state between calls (one instance per `[FILTER]`, one call
/// at a time).
struct Filter {
    /// The returned JSON, NUL-terminated; valid until the next call.
    out: Vec<u8>,
    model: Option<Loaded>,
    /// Why records pass unscored, while there is no model.
    problem: String,
    checked: Option<SystemTime>,
    /// The files a load failed with ([`files_signature`]): not tried again
    /// (a key derivation each time) until one of them changes.
    failed: Option<String>,
}

thread_local! {
    static FILTER: RefCell<Filter> = const { RefCell::new(Filter { out: Vec::new(), model: None, problem: String::new(), checked: None, failed: None }) };
}

/// WASI reactor initialisation: runs the module's constructors once, after
/// instantiation (WAMR calls it).
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    unsafe extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: called once by the runtime before any export, as WASI
    // reactors require.
    unsafe { __wasm_call_ctors() }
}

/// `Function_Name logarithm_filter`: every record passes, annotated.
#[unsafe(no_mangle)]
pub extern "C" fn logarithm_filter(
    tag: *const u8,
    tag_len: u32,
    time_sec: u32,
    time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    call(Pass::All, tag, tag_len, time_sec, time_nsec, record, record_len)
}

/// `Function_Name logarithm_filter_anomalies`: only anomalies (and records
/// that could not be scored) pass.
#[unsafe(no_mangle)]
pub extern "C" fn logarithm_filter_anomalies(
    tag: *const u8,
    tag_len: u32,
    time_sec: u32,
    time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    call(Pass::Anomalies, tag, tag_len, time_sec, time_nsec, record, record_len)
}

/// `Function_Name logarithm_keep_anomalies`: a second stage that scores
/// nothing. It keeps the records `logarithm_filter` marked anomalous (or
/// could not score) and drops the rest: the processor of an output that
/// gets only the anomalies, while another output gets every record.
#[unsafe(no_mangle)]
pub extern "C" fn logarithm_keep_anomalies(
    _tag: *const u8,
    _tag_len: u32,
    _time_sec: u32,
    _time_nsec: u32,
    record: *const u8,
    record_len: u32,
) -> *const u8 {
    // SAFETY: as in `call`.
    let record = (!record.is_null()).then(|| unsafe { std::slice::from_raw_parts(record, record_len as usize) });
    FILTER.with(|f| {
        let mut f = f.borrow_mut();
        let keep = record.is_none_or(|bytes| match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(obj)) => obj.get(enrich::REPORTED) == Some(&Value::Bool(true)) || obj.contains_key(enrich::ERROR),
            _ => true,
        });
        match (keep, record) {
            (true, Some(bytes)) => f.reply_raw(bytes),
            (true, None) => f.reply_oversized(),
            (false, _) => f.reply_raw(b""),
        }
    })
}

fn call(pass: Pass, _tag: *const u8, _tag_len: u32, time_sec: u32, time_nsec: u32, record: *const u8, record_len: u32) -> *const u8 {
    // SAFETY: Fluent Bit passes a pointer to `record_len` bytes it copied
    // into our memory, or NULL when the copy did not fit.
    let record = (!record.is_null()).then(|| unsafe { std::slice::from_raw_parts(record, record_len as usize) });
    let now = DateTime::<Utc>::from_timestamp(i64::from(time_sec), time_nsec).unwrap_or_default();
    FILTER.with(|f| f.borrow_mut().filter(pass, record, &now))
}

impl Filter {
    fn filter(&mut self, pass: Pass, record: Option<&[u8]>, now: &DateTime<Utc>) -> *const u8 {
        self.refresh();
        let Some(bytes) = record else { return self.reply_oversized() };
        let mut obj = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(obj)) => obj,
            // Not a JSON object (Fluent Bit never sends one): passed on as a
            // raw line, unscored, saying so (Fluent Bit would drop anything
            // that is not an object).
            _ => {
                let mut obj = enrich::raw_line_record(&String::from_utf8_lossy(bytes));
                enrich::annotate_error(&mut obj, "the record is not a JSON object");
                return self.reply(&obj);
            }
        };
        match (parse::from_object(&obj, now), &self.model) {
            (None, _) => enrich::annotate_error(&mut obj, parse::NO_MESSAGE),
            (Some(_), None) => enrich::annotate_error(&mut obj, &self.problem),
            (Some(record), Some(model)) => {
                let verdict = model.detector.score(&record);
                if pass == Pass::Anomalies && !enrich::alerts(&verdict) {
                    return self.reply_raw(b"");
                }
                self.out.clear();
                if enrich::write_annotated(bytes, &obj, &verdict, &mut self.out) {
                    self.out.push(0);
                    return self.out.as_ptr();
                }
                enrich::annotate(&mut obj, &verdict);
            }
        }
        self.reply(&obj)
    }

    /// The answer when Fluent Bit could not copy the record into the module
    /// (it passes NULL, which only exhausted memory can cause now): the
    /// record cannot be passed on as it was, so it is passed on as the
    /// reason, rather than dropped without a word.
    fn reply_oversized(&mut self) -> *const u8 {
        let mut obj = Map::new();
        enrich::annotate_error(
            &mut obj,
            "Fluent Bit could not copy the record into the filter's memory (exhausted): it was not scored and its body is lost",
        );
        self.reply(&obj)
    }

    fn reply(&mut self, obj: &Map<String, Value>) -> *const u8 {
        self.out.clear();
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.out, obj);
        self.out.push(0);
        self.out.as_ptr()
    }

    fn reply_raw(&mut self, bytes: &[u8]) -> *const u8 {
        self.out.clear();
        self.out.extend_from_slice(bytes);
        self.out.push(0);
        self.out.as_ptr()
    }

    /// Loads the model on the first call, and a newly installed one at most
    /// every [`RELOAD_CHECK`].
    fn refresh(&mut self) {
        let now = SystemTime::now();
        if self.checked.is_some_and(|at| now.duration_since(at).unwrap_or_default() < RELOAD_CHECK) {
            return;
        }
        self.checked = Some(now);
        let dir = match &self.model {
            Some(m) if current_version(&m.dir).is_ok_and(|v| v == m.version) => return,
            Some(m) => Ok(m.dir.clone()),
            None => data_dir(),
        };
        let signature = files_signature(dir.as_deref().ok());
        if self.failed.as_ref() == Some(&signature) {
            return;
        }
        let error = match dir.and_then(|dir| load(&dir)) {
            Ok(loaded) => {
                // The kinds already reported carry over, less those the new
                // model knows (issue 15).
                if let Some(old) = &self.model {
                    let _ = loaded.detector.restore_memory(&old.detector.save_memory());
                }
                eprintln!("logarithm: scoring with model version {} from {}", loaded.version, loaded.dir.display());
                self.model = Some(loaded);
                self.problem.clear();
                self.failed = None;
                return;
            }
            Err(e) => e,
        };
        let msg = match &self.model {
            Some(m) => format!("cannot load the new model, still scoring with version {}: {error}", m.version),
            None => format!("no model, records pass unscored: {error}"),
        };
        if msg != self.problem {
            eprintln!("logarithm: error: {msg}");
            self.problem = msg;
        }
        self.failed = Some(signature);
    }
}

/// The directories Fluent Bit preopened for the module (`Accessible_Paths`),
/// under the names the module opens them by.
fn preopens() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // Preopens are numbered from 3, after stdio; the first bad descriptor ends them.
    for fd in 3.. {
        // SAFETY: plain WASI calls; the buffer is sized as the runtime says.
        let Ok(stat) = (unsafe { wasi::fd_prestat_get(fd) }) else { break };
        if stat.tag != wasi::PREOPENTYPE_DIR.raw() {
            continue;
        }
        let len = unsafe { stat.u.dir.pr_name_len };
        let mut name = vec![0u8; len];
        if unsafe { wasi::fd_prestat_dir_name(fd, name.as_mut_ptr(), len) }.is_ok() {
            let name = String::from_utf8_lossy(&name).trim_end_matches('\0').to_owned();
            dirs.push(PathBuf::from(name));
        }
    }
    dirs
}

/// What a load depends on, as text that changes when any of it does: the
/// preopens, and the size and time of `current`, the model it names and
/// the key files.
fn files_signature(dir: Option<&Path>) -> String {
    let mut files: Vec<PathBuf> = preopens().iter().map(|d| d.join(layout::KEY_CREDENTIAL)).collect();
    if let Some(dir) = dir {
        files.extend([dir.join(layout::CURRENT), dir.join(layout::KEY)]);
        if let Ok(v) = current_version(dir) {
            files.push(layout::model_file(dir, v));
        }
    }
    files
        .iter()
        .map(|f| match std::fs::metadata(f) {
            Ok(m) => format!("{}:{}:{:?};", f.display(), m.len(), m.modified().ok()),
            Err(_) => format!("{}:-;", f.display()),
        })
        .collect()
}

/// The first preopened directory that is a Logarithm data directory.
fn data_dir() -> Result<PathBuf, String> {
    let dirs = preopens();
    dirs.iter().find(|d| d.join(layout::CURRENT).is_file()).cloned().ok_or_else(|| {
        let given: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        format!(
            "no Logarithm data directory (one with a `current` file and `models/`) among Accessible_Paths [{}]; add the data directory, e.g. /var/lib/logarithm, and train a model there",
            given.join(", ")
        )
    })
}

/// The passphrase: `logarithm-key` in a preopened directory, else the data
/// directory's generated `key`.
fn passphrase(data_dir: &Path) -> Result<String, String> {
    let candidates: Vec<PathBuf> =
        preopens().iter().map(|d| d.join(layout::KEY_CREDENTIAL)).chain(std::iter::once(data_dir.join(layout::KEY))).collect();
    for path in &candidates {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => return Err(format!("the key file {} is empty", path.display())),
            Ok(text) => return Ok(text.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read the key file {}: {e}", path.display())),
        }
    }
    Err(format!(
        "no key file: put the model's passphrase in {} (mode 0600), or in a file `logarithm-key` in a directory of Accessible_Paths",
        data_dir.join(layout::KEY).display()
    ))
}

fn current_version(dir: &Path) -> Result<u32, String> {
    let path = dir.join(layout::CURRENT);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim().parse().map_err(|_| format!("{} does not hold a version number", path.display()))
}

fn load(dir: &Path) -> Result<Loaded, String> {
    let version = current_version(dir)?;
    let path = layout::model_file(dir, version);
    let bytes = crate::modelfile::read_model_file(&path)?;
    let mut detector = Detector::load(&bytes, &passphrase(dir)?).map_err(|e| format!("cannot load {}: {e}", path.display()))?;
    // Explanations for anomalies only (`anomaly_terms` is empty for the
    // rest): most of a filter's cost per normal record otherwise.
    detector.set_explain(false);
    Ok(Loaded { detector, dir: dir.to_path_buf(), version })
}
