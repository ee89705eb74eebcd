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
//! - `logarithm_annotate_anomalies`: every record passes, but only the
//!   anomalies, the records that raise an alert and those that could not be
//!   scored get the fields; the rest pass as they came (the native plugin's
//!   `annotate anomalies`).
//!
//! Where the model comes from: the data directory (the one holding
//! `current` and `models/`) given as one of `Accessible_Paths`. The module
//! looks through its preopened directories for it, so no path is
//! configured twice. The passphrase comes from a file, never from the
//! Fluent Bit config: `logarithm-key` in any preopened directory (a systemd
//! credentials directory, say), else the data directory's `key` (the key
//! the trainer generates). The model is kept current by [`crate::watch`].
//!
//! The kinds reported are kept across restarts in [`MEMORY_FILE`], in the
//! preopened directory that holds one (created empty by the operator to
//! turn it on, in a directory Fluent Bit may write: the module cannot be
//! told a path).
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
use crate::watch::{Places, Watch};
use crate::{enrich, parse};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::path::PathBuf;

/// Which records pass, and which get the fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    All,
    Anomalies,
    /// All, the fields on the anomalies, alerts and errors only.
    AllAnnotatingAnomalies,
}

/// The module's state between calls (one instance per `[FILTER]`, one call
/// at a time).
struct Filter {
    /// The returned JSON, NUL-terminated; valid until the next call.
    out: Vec<u8>,
    watch: Watch,
}

thread_local! {
    static FILTER: RefCell<Filter> = const { RefCell::new(Filter { out: Vec::new(), watch: Watch::new() }) };
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

/// A scoring export: `Function_Name` `$name` scores with `$pass`, in
/// Fluent Bit's C ABI.
macro_rules! scoring_export {
    ($(#[$doc:meta])* $name:ident => $pass:expr) => {
        $(#[$doc])*
        #[unsafe(no_mangle)]
        pub extern "C" fn $name(tag: *const u8, tag_len: u32, time_sec: u32, time_nsec: u32, record: *const u8, record_len: u32) -> *const u8 {
            call($pass, tag, tag_len, time_sec, time_nsec, record, record_len)
        }
    };
}

scoring_export!(
    /// `Function_Name logarithm_filter`: every record passes, annotated.
    logarithm_filter => Pass::All
);
scoring_export!(
    /// `Function_Name logarithm_filter_anomalies`: only anomalies (and
    /// records that could not be scored) pass.
    logarithm_filter_anomalies => Pass::Anomalies
);
scoring_export!(
    /// `Function_Name logarithm_annotate_anomalies`: every record passes;
    /// only the anomalies (and alerts, and records that could not be
    /// scored) get the fields.
    logarithm_annotate_anomalies => Pass::AllAnnotatingAnomalies
);

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
            Ok(Value::Object(obj)) => enrich::marked_for_alerts(&obj),
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

/// The memory file of reported kinds, in an `Accessible_Paths` directory.
const MEMORY_FILE: &str = "logarithm-reported-kinds.json";

impl Filter {
    fn filter(&mut self, pass: Pass, record: Option<&[u8]>, now: &DateTime<Utc>) -> *const u8 {
        let reply = self.score(pass, record, now);
        // No exit is called in a module: the memory is saved as it changes.
        self.watch.persist(false);
        reply
    }

    fn score(&mut self, pass: Pass, record: Option<&[u8]>, now: &DateTime<Utc>) -> *const u8 {
        self.watch.refresh(&Preopens);
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
        // The record borrows the object's text (no strings made), so it is
        // scored before the object may change.
        let scored = match (parse::read_object(&obj, now), self.watch.detector()) {
            (None, _) => Err(parse::NO_MESSAGE.to_owned()),
            (Some(_), Err(problem)) => Err(problem.to_owned()),
            (Some(record), Ok(detector)) => Ok(detector.score(&record)),
        };
        match scored {
            Err(problem) => enrich::annotate_error(&mut obj, &problem),
            Ok(verdict) => {
                if pass == Pass::Anomalies && !enrich::alerts(&verdict) {
                    return self.reply_raw(b"");
                }
                if pass == Pass::AllAnnotatingAnomalies && !verdict.anomalous && !enrich::alerts(&verdict) {
                    // As it came, without fields only this filter may write.
                    self.out.clear();
                    if enrich::write_appended(bytes, &obj, &[], &mut self.out) {
                        self.out.push(0);
                        return self.out.as_ptr();
                    }
                    enrich::strip(&mut obj);
                    return self.reply(&obj);
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

/// The wasm face's places: its preopened directories.
struct Preopens;

impl Places for Preopens {
    /// The first preopened directory that is a Logarithm data directory.
    fn data_dir(&self) -> Result<PathBuf, String> {
        let dirs = preopens();
        dirs.iter().find(|d| d.join(layout::CURRENT).is_file()).cloned().ok_or_else(|| {
            let given: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!(
                "no Logarithm data directory (one with a `current` file and `models/`) among Accessible_Paths [{}]; add the data directory, e.g. /var/lib/logarithm, and train a model there",
                given.join(", ")
            )
        })
    }

    /// `logarithm-key` in any preopened directory.
    fn key_files(&self) -> Vec<PathBuf> {
        preopens().iter().map(|d| d.join(layout::KEY_CREDENTIAL)).collect()
    }

    fn key_hint(&self) -> &'static str {
        "or in a file `logarithm-key` in a directory of Accessible_Paths"
    }

    /// [`MEMORY_FILE`] in the first preopened directory that holds one.
    fn memory_file(&self) -> Option<PathBuf> {
        preopens().iter().map(|d| d.join(MEMORY_FILE)).find(|f| f.is_file())
    }
}
