//! The native Fluent Bit face: the detector as a Fluent Bit filter plugin,
//! a shared library (`flb-filter_logarithm.so`) that Fluent Bit loads with
//! `fluent-bit -e PATH` or a `[PLUGINS]` file. Built with `cargo build
//! --release -p logarithm-detector --features fluent-bit-plugin`.
//!
//! Why a second Fluent Bit face: `filter_wasm` turns every record from
//! msgpack into JSON and back around each call into the module, and that
//! round trip alone halves Fluent Bit's throughput (README, Performance).
//! A native filter gets a whole chunk of msgpack events at once and appends
//! its fields to each event's own bytes. The price: it runs inside Fluent
//! Bit's process unsandboxed, and it is built for one plugin ABI, Fluent
//! Bit 5.1's `struct flb_filter_plugin` (checked against 5.1.1's headers:
//! `include/fluent-bit/flb_filter.h`, `flb_config_map.h`). Where that
//! matters, use the wasm module.
//!
//! This file only adapts that ABI. Records are read by [`crate::parse`],
//! scored by [`crate::Detector`] and annotated by [`crate::enrich`], and
//! the model is found and kept current by `watch.rs`, exactly as in
//! the wasm module: the same fields, the same verdicts.
//!
//! Configuration (`[FILTER]`, `Name logarithm`; Fluent Bit refuses other
//! keys):
//! - `Data_Dir`: the Logarithm data directory (default `/var/lib/logarithm`);
//! - `Key_File`: a file holding the model's passphrase (default: the data
//!   directory's `key`);
//! - `Pass`: `all` (default; every record passes, annotated), `anomalies`
//!   (only the records that raise an alert, and those that could not be
//!   scored, as the module's `logarithm_filter_anomalies`), or `marked`
//!   (scores nothing and needs no model: keeps the records an earlier
//!   `logarithm` filter marked `anomaly_reported` or `anomaly_error`, as
//!   the module's `logarithm_keep_anomalies`; for the processor of an
//!   output that gets only the alerts).
//! - `Annotate`: `all` (default; every record that passes gets the fields)
//!   or `anomalies` (only the anomalies, the records that raise an alert
//!   and those that could not be scored; the rest pass as they came). A
//!   chunk without any of those passes untouched, which costs Fluent Bit
//!   far less than a new chunk with fields on every record.
//!
//! Nothing here unwinds into Fluent Bit: a panic would abort it, so every
//! callback catches one and leaves the chunk as it was.

use crate::parse::{Field, Fields};
use crate::watch::{Places, Watch, say};
use crate::{Detector, enrich, parse};
use chrono::{DateTime, Utc};
use rmpv::ValueRef;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Mutex;

/// `FLB_FILTER_MODIFIED`, `FLB_FILTER_NOTOUCH`, `FLB_FILTER_LOGS`.
const MODIFIED: c_int = 1;
const NOTOUCH: c_int = 2;
const LOGS: c_int = 1;
/// `FLB_CONFIG_MAP_STR`.
const MAP_STR: c_int = 0;
/// Fluent Bit's group markers are events whose time is one of these.
const GROUP_MARKERS: [i64; 2] = [-1, -2];

/// `struct mk_list`: Fluent Bit's intrusive list links, filled in by it.
#[repr(C)]
pub struct List {
    prev: *mut c_void,
    next: *mut c_void,
}

/// `struct flb_filter_plugin` (Fluent Bit 5.1).
#[repr(C)]
pub struct FilterPlugin {
    event_type: c_int,
    flags: c_int,
    name: *const c_char,
    description: *const c_char,
    config_map: *const ConfigMap,
    cb_pre_run: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int>,
    cb_init: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int>,
    #[allow(clippy::type_complexity)]
    cb_filter: Option<
        unsafe extern "C" fn(
            *const c_void,
            usize,
            *const c_char,
            c_int,
            *mut *mut c_void,
            *mut usize,
            *mut c_void,
            *mut c_void,
            *mut c_void,
            *mut c_void,
        ) -> c_int,
    >,
    cb_exit: Option<unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int>,
    cb_notification: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int>,
    head: List,
}

/// `struct flb_config_map` (Fluent Bit 5.1): one configuration key. Fluent
/// Bit copies the table; only `type`, `name`, `def_value`, `flags`,
/// `set_property` and `desc` are read from it.
#[repr(C)]
pub struct ConfigMap {
    kind: c_int,
    name: *const c_char,
    def_value: *const c_char,
    flags: c_int,
    set_property: c_int,
    offset: usize,
    desc: *const c_char,
    /// `struct flb_config_map_val`: a union of 8 bytes, `raw`, `mult`, and
    /// its list links.
    value: [usize; 5],
    head: List,
}

// SAFETY: the tables are immutable statics; the pointers are to static
// strings. Fluent Bit copies them before touching anything.
unsafe impl Sync for FilterPlugin {}
unsafe impl Sync for ConfigMap {}

const fn key(name: &'static CStr, def_value: Option<&'static CStr>, desc: &'static CStr) -> ConfigMap {
    ConfigMap {
        kind: MAP_STR,
        name: name.as_ptr(),
        def_value: match def_value {
            Some(v) => v.as_ptr(),
            None => std::ptr::null(),
        },
        flags: 0,
        set_property: 0,
        offset: 0,
        desc: desc.as_ptr(),
        value: [0; 5],
        head: List { prev: std::ptr::null_mut(), next: std::ptr::null_mut() },
    }
}

const DEFAULT_DATA_DIR: &CStr = c"/var/lib/logarithm";

static CONFIG_MAP: [ConfigMap; 6] = [
    key(c"data_dir", Some(DEFAULT_DATA_DIR), c"The Logarithm data directory (holding `current` and `models/`)."),
    key(c"key_file", None, c"A file holding the model's passphrase (default: the data directory's `key`)."),
    key(
        c"pass",
        Some(c"all"),
        c"Which records pass: `all`, `anomalies` (those that raise an alert) or `marked` (what an earlier logarithm filter marked).",
    ),
    key(c"annotate", Some(c"all"), c"Which records get the fields: `all`, or `anomalies` (the rest pass as they came)."),
    key(
        c"memory_file",
        None,
        c"Where the kinds of anomalies reported are kept across restarts (default: nowhere, a restart reports them again).",
    ),
    // The table ends with an entry without a name.
    ConfigMap {
        kind: 0,
        name: std::ptr::null(),
        def_value: std::ptr::null(),
        flags: 0,
        set_property: 0,
        offset: 0,
        desc: std::ptr::null(),
        value: [0; 5],
        head: List { prev: std::ptr::null_mut(), next: std::ptr::null_mut() },
    },
];

/// The symbol Fluent Bit looks for in `flb-filter_logarithm.so`.
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static filter_logarithm_plugin: FilterPlugin = FilterPlugin {
    event_type: LOGS,
    flags: 0,
    name: c"logarithm".as_ptr(),
    description:
        c"Logarithm: scores each record against the learned model and adds anomaly_score, anomalous, anomaly_terms, anomaly_reported"
            .as_ptr(),
    config_map: CONFIG_MAP.as_ptr(),
    cb_pre_run: None,
    cb_init: Some(cb_init),
    cb_filter: Some(cb_filter),
    cb_exit: Some(cb_exit),
    cb_notification: None,
    head: List { prev: std::ptr::null_mut(), next: std::ptr::null_mut() },
};

/// Fluent Bit's own functions, found in the process at `cb_init` (the
/// `fluent-bit` executable exports them), so the library links against
/// nothing but libc.
struct Api {
    get_property: unsafe extern "C" fn(*const c_char, *mut c_void) -> *const c_char,
    set_context: unsafe extern "C" fn(*mut c_void, *mut c_void),
}

impl Api {
    fn find() -> Result<Api, String> {
        unsafe extern "C" {
            fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
        }
        let find = |name: &CStr| {
            // SAFETY: RTLD_DEFAULT (null) searches the process's global symbols.
            let f = unsafe { dlsym(std::ptr::null_mut(), name.as_ptr()) };
            if f.is_null() { Err(format!("Fluent Bit does not export {}", name.to_string_lossy())) } else { Ok(f) }
        };
        let get_property = find(c"flb_filter_get_property")?;
        let set_context = find(c"flb_filter_set_context")?;
        // SAFETY: the signatures of Fluent Bit 5.1's flb_filter.h.
        type GetProperty = unsafe extern "C" fn(*const c_char, *mut c_void) -> *const c_char;
        type SetContext = unsafe extern "C" fn(*mut c_void, *mut c_void);
        Ok(unsafe {
            Api {
                get_property: std::mem::transmute::<*mut c_void, GetProperty>(get_property),
                set_context: std::mem::transmute::<*mut c_void, SetContext>(set_context),
            }
        })
    }

    /// A property of the filter instance, if given.
    fn property(&self, ins: *mut c_void, key: &CStr) -> Option<String> {
        // SAFETY: `ins` is the instance Fluent Bit passed to cb_init; the
        // value is a NUL-terminated string it owns.
        let value = unsafe { (self.get_property)(key.as_ptr(), ins) };
        (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) }.to_string_lossy().into_owned())
    }
}

/// What a filter instance does with each record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct How {
    pub pass: Pass,
    pub annotate: Annotate,
}

/// Which records get the fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Annotate {
    All,
    /// The anomalies, the records that raise an alert and those that could
    /// not be scored; the rest pass as they came.
    Anomalies,
}

/// Which records pass.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pass {
    All,
    Anomalies,
    /// Scores nothing: keeps what an earlier filter marked for the alerts.
    Marked,
}

/// The configured places: a data directory and, perhaps, a key file and a
/// memory file.
struct Configured {
    data_dir: PathBuf,
    key_file: Option<PathBuf>,
    memory_file: Option<PathBuf>,
}

impl Places for Configured {
    fn data_dir(&self) -> Result<PathBuf, String> {
        Ok(self.data_dir.clone())
    }

    fn key_files(&self) -> Vec<PathBuf> {
        self.key_file.iter().cloned().collect()
    }

    fn key_hint(&self) -> &'static str {
        "or name a file holding it with Key_File"
    }

    fn key_files_named(&self) -> bool {
        true
    }

    fn memory_file(&self) -> Option<PathBuf> {
        self.memory_file.clone()
    }
}

/// One `[FILTER]` instance.
struct Filter {
    places: Configured,
    how: How,
    /// Fluent Bit may call a filter from several input threads.
    state: Mutex<State>,
}

struct State {
    watch: Watch,
    /// The chunk being written, reused.
    out: Vec<u8>,
}

unsafe extern "C" fn cb_init(ins: *mut c_void, _config: *mut c_void, _data: *mut c_void) -> c_int {
    let made = catch_unwind(|| -> Result<(Box<Filter>, Api), String> {
        let api = Api::find()?;
        let pass = match api.property(ins, c"pass").as_deref().map(str::trim) {
            None | Some("all") => Pass::All,
            Some("anomalies") => Pass::Anomalies,
            Some("marked") => Pass::Marked,
            Some(other) => return Err(format!("Pass must be `all`, `anomalies` or `marked`, not {other:?}")),
        };
        let annotate = match api.property(ins, c"annotate").as_deref().map(str::trim) {
            None | Some("all") => Annotate::All,
            Some("anomalies") => Annotate::Anomalies,
            Some(other) => return Err(format!("Annotate must be `all` or `anomalies`, not {other:?}")),
        };
        let places = Configured {
            data_dir: PathBuf::from(api.property(ins, c"data_dir").unwrap_or_else(|| DEFAULT_DATA_DIR.to_string_lossy().into_owned())),
            key_file: api.property(ins, c"key_file").map(PathBuf::from),
            memory_file: api.property(ins, c"memory_file").map(PathBuf::from),
        };
        let mut watch = Watch::new();
        // Load now, so a missing model is in the log at start.
        if pass != Pass::Marked {
            watch.refresh(&places);
        }
        let how = How { pass, annotate };
        Ok((Box::new(Filter { places, how, state: Mutex::new(State { watch, out: Vec::new() }) }), api))
    });
    match made {
        Ok(Ok((filter, api))) => {
            // SAFETY: Fluent Bit's own setter; the context comes back in
            // cb_filter and cb_exit, which frees it.
            unsafe { (api.set_context)(ins, Box::into_raw(filter).cast()) };
            0
        }
        Ok(Err(e)) => {
            say(&format!("error: {e}"));
            -1
        }
        Err(_) => -1,
    }
}

unsafe extern "C" fn cb_exit(context: *mut c_void, _config: *mut c_void) -> c_int {
    if !context.is_null() {
        // SAFETY: made by Box::into_raw in cb_init, freed once here.
        let filter = unsafe { Box::from_raw(context.cast::<Filter>()) };
        let _ = catch_unwind(AssertUnwindSafe(|| filter.state.lock().unwrap_or_else(|e| e.into_inner()).watch.persist(true)));
    }
    0
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn cb_filter(
    data: *const c_void,
    bytes: usize,
    _tag: *const c_char,
    _tag_len: c_int,
    out_buf: *mut *mut c_void,
    out_bytes: *mut usize,
    _f_ins: *mut c_void,
    _i_ins: *mut c_void,
    context: *mut c_void,
    _config: *mut c_void,
) -> c_int {
    if context.is_null() || data.is_null() {
        return NOTOUCH;
    }
    // SAFETY: the context is the Filter made in cb_init; `data` is the
    // chunk's `bytes` bytes of msgpack, which Fluent Bit keeps for the call.
    let filter = unsafe { &*context.cast::<Filter>() };
    let chunk = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), bytes) };
    let done = catch_unwind(AssertUnwindSafe(|| {
        let mut state = filter.state.lock().unwrap_or_else(|e| e.into_inner());
        let State { watch, out } = &mut *state;
        if filter.how.pass != Pass::Marked {
            watch.refresh(&filter.places);
        }
        out.clear();
        let filtered = filter_chunk(chunk, watch.detector(), filter.how, out);
        watch.persist(false);
        match filtered {
            Ok(false) => NOTOUCH,
            Ok(true) => {
                // Fluent Bit frees the new chunk with free(3).
                unsafe extern "C" {
                    fn malloc(size: usize) -> *mut c_void;
                }
                // SAFETY: a fresh allocation of at least out.len() bytes.
                let buf = unsafe { malloc(out.len().max(1)) };
                if buf.is_null() {
                    say("error: out of memory: a chunk passed unscored");
                    return NOTOUCH;
                }
                unsafe {
                    std::ptr::copy_nonoverlapping(out.as_ptr(), buf.cast::<u8>(), out.len());
                    *out_buf = buf;
                    *out_bytes = out.len();
                }
                MODIFIED
            }
            Err(e) => {
                say(&format!("error: a chunk passed unscored: {e}"));
                NOTOUCH
            }
        }
    }));
    done.unwrap_or(NOTOUCH)
}

/// Scores every record event of a chunk and writes the chunk anew into
/// `out`: each event's own bytes, with the verdict's fields appended to its
/// body (to every record's, or with [`Annotate::Anomalies`] to those of the
/// anomalies and alerts only), less the records [`Pass`] drops
/// ([`Pass::Marked`] scores nothing and keeps the events marked for the
/// alerts). Other events (group markers) pass as they were. Returns
/// whether anything changed: if not, `out` is left empty and the chunk can
/// pass as it is, which spares Fluent Bit a new chunk. An error (a chunk
/// that is not msgpack events) leaves the whole chunk to pass unscored.
/// (Public for the fuzz target `fluent_bit_chunk`.)
pub fn filter_chunk(chunk: &[u8], detector: Result<&Detector, &str>, how: How, out: &mut Vec<u8>) -> Result<bool, String> {
    // Bytes up to here are in `out` or were dropped; the rest is copied
    // only once an event changes.
    let mut copied = 0;
    let mut rest = chunk;
    // Every event's entries, read into one list: not a list made per event.
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let at = chunk.len() - rest.len();
        let event = read_event(&mut rest, &mut entries).map_err(|e| format!("event at byte {at}: {e}"))?;
        let end = chunk.len() - rest.len();
        let Some(event) = event else { continue };
        let fields = if how.pass == Pass::Marked {
            if enrich::marked_for_alerts(&event.object(|k| k == enrich::REPORTED || k == enrich::ERROR)) {
                continue;
            }
            None
        } else {
            match (parse::read_object(&event, &event.time), detector) {
                (None, _) => Some(vec![(enrich::ERROR, Value::String(parse::NO_MESSAGE.to_owned()))]),
                (Some(_), Err(problem)) => Some(vec![(enrich::ERROR, Value::String(problem.to_owned()))]),
                (Some(record), Ok(detector)) => {
                    let verdict = detector.score(&record);
                    let alerts = enrich::alerts(&verdict);
                    if how.pass == Pass::Anomalies && !alerts {
                        None
                    } else if how.annotate == Annotate::Anomalies && !verdict.anomalous && !alerts {
                        // As it came, without fields only this filter may write.
                        if !event.body.iter().any(|(k, _)| key_str(k).is_some_and(enrich::is_field)) {
                            continue;
                        }
                        Some(Vec::new())
                    } else {
                        Some(enrich::verdict_fields(&verdict))
                    }
                }
            }
        };
        out.extend_from_slice(&chunk[copied..at]);
        copied = end;
        // `None`: the event is dropped.
        if let Some(fields) = fields {
            write_annotated(&chunk[at..end], &event, fields, out);
        }
    }
    if copied == 0 {
        return Ok(false);
    }
    out.extend_from_slice(&chunk[copied..]);
    Ok(true)
}

/// An event's bytes (`whole`) with the fields appended to its body.
fn write_annotated(whole: &[u8], event: &Event, fields: Vec<(&str, Value)>, out: &mut Vec<u8>) {
    out.extend_from_slice(&whole[..event.body_at]);
    if event.body.iter().any(|(k, _)| key_str(k).is_some_and(enrich::is_field)) {
        // A record that came with fields only a filter may write: written
        // anew without them, as `enrich::annotate` does everywhere.
        let mut obj = event.object(|k| !enrich::is_field(k));
        for (k, v) in fields {
            obj.insert(k.to_owned(), v);
        }
        write_json(out, &Value::Object(obj));
    } else {
        // Writing into a Vec cannot fail.
        let _ = rmp::encode::write_map_len(out, (event.body.len() + fields.len()) as u32);
        out.extend_from_slice(&whole[event.body_at + event.map_header..]);
        for (k, v) in fields {
            let _ = rmp::encode::write_str(out, k);
            write_json(out, &v);
        }
    }
}

/// A record event, read from a chunk (`'a`) into a list of its entries (`'b`).
struct Event<'a, 'b> {
    /// The event time, which is "now" for a raw line without a timestamp.
    time: DateTime<Utc>,
    /// Where the body starts, in the event's bytes.
    body_at: usize,
    /// The length of the body's map header, in bytes.
    map_header: usize,
    /// The body's entries.
    body: &'b [(ValueRef<'a>, ValueRef<'a>)],
}

/// The mapping reads the event's fields where they are: no JSON object is
/// made, and valid text is not copied.
impl<'a> Fields for Event<'a, '_> {
    type Value = ValueRef<'a>;

    fn entries(&self) -> impl Iterator<Item = (&str, &ValueRef<'a>)> {
        self.body.iter().filter_map(|(k, v)| Some((key_str(k)?, v)))
    }

    fn read<'v>(value: &'v ValueRef<'a>) -> Field<'v> {
        match value {
            ValueRef::String(s) => Field::Text(s.as_str().map_or_else(|| String::from_utf8_lossy(s.as_bytes()), Cow::Borrowed)),
            ValueRef::Binary(b) => Field::Text(cow(b)),
            ValueRef::Integer(i) => match (i.as_u64(), i.as_i64()) {
                (Some(u), _) => Field::Number(u.into()),
                (None, Some(s)) => Field::Number(s.into()),
                (None, None) => Field::Other,
            },
            ValueRef::F64(f) => serde_json::Number::from_f64(*f).map_or(Field::Other, Field::Number),
            ValueRef::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Field::Other, Field::Number),
            ValueRef::Boolean(b) => Field::Bool(*b),
            _ => Field::Other,
        }
    }
}

impl Event<'_, '_> {
    /// The body as the JSON object every face maps to a record: strings
    /// that are not UTF-8 have their bad bytes replaced (as the other
    /// readers do); binary values become text the same way.
    /// Only the keys `keep` says.
    fn object(&self, keep: impl Fn(&str) -> bool) -> Map<String, Value> {
        self.body.iter().filter(|(k, _)| key_str(k).is_none_or(&keep)).map(|(k, v)| (text(k), json(v))).collect()
    }
}

/// Reads one event, `[[time, metadata], body]` (or the older `[time,
/// body]`); `None` for an event that is not a record with a map for a
/// body (a group marker), which passes as it is.
/// `entries` is the list the body's entries are read into (cleared first).
fn read_event<'a, 'b>(rest: &mut &'a [u8], entries: &'b mut Vec<(ValueRef<'a>, ValueRef<'a>)>) -> Result<Option<Event<'a, 'b>>, String> {
    let start = *rest;
    let skip = |rest: &mut &'a [u8]| {
        *rest = start;
        rmpv::decode::read_value_ref(rest).map(|_| None).map_err(|e| e.to_string())
    };
    if !matches!(rmp::decode::read_array_len(rest), Ok(2)) {
        return skip(rest);
    }
    // The header, `[time, metadata]` (read without making a list of it),
    // or the older bare time.
    let header = *rest;
    let time = match rmp::decode::read_array_len(rest) {
        Ok(n) => {
            let mut time = None;
            for i in 0..n {
                let v = rmpv::decode::read_value_ref(rest).map_err(|e| e.to_string())?;
                if i == 0 {
                    time = event_time(&v);
                }
            }
            time
        }
        Err(_) => {
            *rest = header;
            event_time(&rmpv::decode::read_value_ref(rest).map_err(|e| e.to_string())?)
        }
    };
    let body_at = start.len() - rest.len();
    let Ok(len) = rmp::decode::read_map_len(rest) else { return skip(rest) };
    let map_header = start.len() - rest.len() - body_at;
    entries.clear();
    for _ in 0..len {
        let k = read_value(rest)?;
        let v = read_value(rest)?;
        entries.push((k, v));
    }
    Ok(time.map(|time| Event { time, body_at, map_header, body: entries }))
}

/// One value of a body. Most are strings, read here directly: the general
/// reader costs several times more a value (issue 11); anything else, and
/// a string that is not UTF-8, goes to it.
fn read_value<'a>(rest: &mut &'a [u8]) -> Result<ValueRef<'a>, String> {
    if let Ok((text, after)) = rmp::decode::read_str_from_slice(*rest) {
        *rest = after;
        return Ok(ValueRef::String(text.into()));
    }
    rmpv::decode::read_value_ref(rest).map_err(|e| e.to_string())
}

/// An event's time: msgpack's `EventTime` extension (type 0: seconds and
/// nanoseconds, big-endian), or seconds as a number; `None` for a group
/// marker.
fn event_time(v: &ValueRef) -> Option<DateTime<Utc>> {
    match v {
        ValueRef::Ext(0, b) if b.len() == 8 => {
            let secs = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let nanos = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            Some(DateTime::from_timestamp(i64::from(secs), nanos).unwrap_or_default())
        }
        ValueRef::Integer(i) => match i.as_i64() {
            Some(s) if GROUP_MARKERS.contains(&s) => None,
            Some(s) => Some(DateTime::from_timestamp(s, 0).unwrap_or_default()),
            None => Some(DateTime::default()),
        },
        ValueRef::F64(f) => Some(DateTime::from_timestamp_micros((f * 1e6) as i64).unwrap_or_default()),
        ValueRef::F32(f) => Some(DateTime::from_timestamp_micros((f64::from(*f) * 1e6) as i64).unwrap_or_default()),
        _ => None,
    }
}

/// A key that is a UTF-8 string, without copying it.
fn key_str<'b>(k: &'b ValueRef) -> Option<&'b str> {
    match k {
        ValueRef::String(s) => s.as_str(),
        _ => None,
    }
}

/// Bytes as text, bad bytes replaced: borrowed when they are valid.
/// (`from_utf8_lossy` alone checks valid text several times slower than
/// `from_utf8`.)
fn cow(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The most of a key that is not a string (a number, a map, ...) kept as
/// its JSON text: each key map nested in a key map was written as JSON
/// inside the JSON of the one around it, its escapes doubling at every
/// level, so 46 bytes of keys nested 24 deep took 17 s (found by fuzzing).
const MAX_KEY_TEXT: usize = 1024;

/// A key or value as text.
fn text(v: &ValueRef) -> String {
    match v {
        ValueRef::String(s) => cow(s.as_bytes()).into_owned(),
        ValueRef::Binary(b) => cow(b).into_owned(),
        other => {
            let mut text = json(other).to_string();
            if text.len() > MAX_KEY_TEXT {
                text.truncate(text.floor_char_boundary(MAX_KEY_TEXT));
            }
            text
        }
    }
}

/// A msgpack value as JSON.
fn json(v: &ValueRef) -> Value {
    match v {
        ValueRef::Nil | ValueRef::Ext(..) => Value::Null,
        ValueRef::Boolean(b) => Value::Bool(*b),
        ValueRef::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(s)) => Value::from(s),
            (None, None) => Value::Null,
        },
        ValueRef::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        ValueRef::F64(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        ValueRef::String(_) | ValueRef::Binary(_) => Value::String(text(v)),
        ValueRef::Array(items) => Value::Array(items.iter().map(json).collect()),
        ValueRef::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (text(k), json(v))).collect()),
    }
}

/// A JSON value as msgpack. (Writing into a Vec cannot fail.)
fn write_json(out: &mut Vec<u8>, v: &Value) {
    use rmp::encode;
    match v {
        Value::Null => drop(encode::write_nil(out)),
        Value::Bool(b) => drop(encode::write_bool(out, *b)),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => drop(encode::write_uint(out, u)),
            (None, Some(s)) => drop(encode::write_sint(out, s)),
            (None, None) => drop(encode::write_f64(out, n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => drop(encode::write_str(out, s)),
        Value::Array(items) => {
            let _ = encode::write_array_len(out, items.len() as u32);
            items.iter().for_each(|v| write_json(out, v));
        }
        Value::Object(entries) => {
            let _ = encode::write_map_len(out, entries.len() as u32);
            for (k, v) in entries {
                let _ = encode::write_str(out, k);
                write_json(out, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::tests::model;
    use rmpv::Value as Pack;

    const ALL: How = How { pass: Pass::All, annotate: Annotate::All };

    fn write(out: &mut Vec<u8>, v: &Pack) {
        rmpv::encode::write_value(out, v).unwrap();
    }

    /// An event as Fluent Bit 5 writes it: `[[time, {}], body]`.
    fn event(secs: u32, body: &[(&str, Pack)]) -> Vec<u8> {
        let time = Pack::Ext(0, [secs.to_be_bytes(), 5u32.to_be_bytes()].concat());
        let body = Pack::Map(body.iter().map(|(k, v)| (Pack::from(*k), v.clone())).collect());
        let mut out = Vec::new();
        write(&mut out, &Pack::Array(vec![Pack::Array(vec![time, Pack::Map(vec![])]), body]));
        out
    }

    fn events(chunk: &[u8]) -> Vec<Pack> {
        let mut rest = chunk;
        let mut all = Vec::new();
        while !rest.is_empty() {
            all.push(rmpv::decode::read_value(&mut rest).unwrap());
        }
        all
    }

    fn body(event: &Pack) -> Map<String, Value> {
        let Value::Object(obj) = json(&event[1].as_ref()) else { panic!("{event}") };
        obj
    }

    /// Each record of a chunk gets the fields and the verdict the same record
    /// gets as JSON (the wasm module's path); other events and the bytes of
    /// the record itself pass as they came.
    #[test]
    fn records_get_the_verdicts_of_their_json_and_the_rest_passes() {
        let lines = ["wa wb wc wd id=1", "Señal ошибка 🔥 エラー", "wz wy unknown words", "", "esc \x1b[31m nul \0"];
        let mut chunk = Vec::new();
        for line in lines {
            chunk.extend(event(1_700_000_000, &[("log", Pack::from(line)), ("n", Pack::from(-3))]));
        }
        // The older form, `[time, body]`, a string that is not UTF-8, and a
        // record without a message.
        write(&mut chunk, &Pack::Array(vec![Pack::from(1_700_000_001), Pack::Map(vec![(Pack::from("message"), Pack::from("older"))])]));
        chunk.extend([0x92, 0x92, 0xce, 0x65, 0x53, 0xf1, 0x00, 0x80, 0x81, 0xa3, b'l', b'o', b'g', 0xa3, b'a', 0xff, b'b']);
        chunk.extend(event(1_700_000_002, &[("other", Pack::from(1))]));
        // A group marker passes as it came.
        let marker = {
            let mut m = Vec::new();
            write(&mut m, &Pack::Array(vec![Pack::Array(vec![Pack::from(-1), Pack::Map(vec![])]), Pack::Map(vec![])]));
            m
        };
        chunk.extend(&marker);

        let detector = Detector::new(model(100));
        let mut out = Vec::new();
        filter_chunk(&chunk, Ok(&detector), ALL, &mut out).unwrap();
        let got = events(&out);
        let sent = events(&chunk);
        assert_eq!(got.len(), sent.len());
        let expected = Detector::new(model(100));
        for (i, (got, sent)) in got.iter().zip(&sent).enumerate().take(7) {
            let mut obj = body(sent);
            if i == 6 {
                obj.insert("log".into(), Value::String("a\u{fffd}b".into()));
            }
            let got = body(got);
            let time = DateTime::from_timestamp(1_700_000_000 + i64::from(i == 5), if i < 5 { 5 } else { 0 }).unwrap();
            let verdict = expected.score(&parse::from_object(&obj, &time).unwrap());
            enrich::annotate(&mut obj, &verdict);
            assert_eq!(got, obj, "record {i}");
            assert_eq!(got[enrich::SCORE], Value::from(verdict.score));
        }
        assert_eq!(body(&got[7])[enrich::ERROR], parse::NO_MESSAGE);
        assert!(out.ends_with(&marker));

        // Without a model every record passes, saying why.
        out.clear();
        filter_chunk(&chunk, Err("no model: the reason"), ALL, &mut out).unwrap();
        let got = events(&out);
        assert_eq!(got.len(), sent.len());
        assert!(got[..7].iter().all(|e| body(e)[enrich::ERROR] == "no model: the reason"));

        // Keys that are maps of maps, 40 deep: each is JSON text of at most
        // MAX_KEY_TEXT bytes (escaped again at every level, it doubled per
        // level: 2^40 bytes).
        let key = (0..40).fold(Pack::Nil, |inner, _| Pack::Map(vec![(inner, Pack::Nil)]));
        let nested = [event(1_700_000_003, &[("log", Pack::from("deep keys"))]), {
            let mut e = Vec::new();
            let time = Pack::Ext(0, [1_700_000_003u32.to_be_bytes(), 0u32.to_be_bytes()].concat());
            write(&mut e, &Pack::Array(vec![Pack::Array(vec![time, Pack::Map(vec![])]), Pack::Map(vec![(key, Pack::from(1))])]));
            e
        }];
        for chunk in nested {
            out.clear();
            filter_chunk(&chunk, Ok(&detector), ALL, &mut out).unwrap();
            let got = events(&out);
            assert_eq!(got.len(), 1);
            assert!(body(&got[0]).keys().all(|k| k.len() <= MAX_KEY_TEXT), "{:?}", body(&got[0]).keys().collect::<Vec<_>>());
        }
    }

    /// A record that already has one of the fields is written anew with the
    /// field replaced, not given the key twice; `Annotate::Anomalies` leaves
    /// the other records as they came; `Pass::Anomalies` keeps only
    /// the alerts (and the records it cannot score), and `Pass::Marked` after
    /// it the same records, scoring nothing; bytes that are not
    /// events pass the chunk on unscored.
    #[test]
    fn fields_replaced_only_alerts_and_bad_chunks() {
        let chunk = event(1, &[("log", Pack::from("wa wb")), (enrich::SCORE, Pack::from("forged"))]);
        let detector = Detector::new(model(100));
        let mut out = Vec::new();
        filter_chunk(&chunk, Ok(&detector), ALL, &mut out).unwrap();
        let Pack::Map(entries) = &events(&out)[0][1] else { panic!() };
        assert_eq!(entries.iter().filter(|(k, _)| k.as_str() == Some(enrich::SCORE)).count(), 1);
        assert!(entries.iter().any(|(k, v)| k.as_str() == Some(enrich::SCORE) && v.is_f64()));

        let mut chunk = Vec::new();
        for i in 0..50 {
            chunk.extend(event(1, &[("log", Pack::from(format!("wa wb wc id={i}")))]));
        }
        chunk.extend(event(1, &[("log", Pack::from("zq never seen"))]));
        chunk.extend(event(1, &[("nothing", Pack::Nil)]));
        let scorer = Detector::new(model(100));
        let alerts = events(&chunk)
            .iter()
            .filter(|e| parse::from_object(&body(e), &DateTime::<Utc>::default()).is_some_and(|r| enrich::alerts(&scorer.score(&r))))
            .count();
        let mut out = Vec::new();
        filter_chunk(&chunk, Ok(&Detector::new(model(100))), How { pass: Pass::Anomalies, ..ALL }, &mut out).unwrap();
        let kept = events(&out);
        assert_eq!(kept.len(), alerts + 1, "the alerts and the record without a message");
        assert!(kept.len() < 52);

        // A second stage keeps exactly what the first one marked, without a model.
        let mut all = Vec::new();
        filter_chunk(&chunk, Ok(&Detector::new(model(100))), ALL, &mut all).unwrap();
        let mut marked = Vec::new();
        filter_chunk(&all, Err("no model"), How { pass: Pass::Marked, ..ALL }, &mut marked).unwrap();
        assert_eq!(marked, out, "the same alerts, byte for byte");

        // Fields on the anomalies only: the other records pass byte for
        // byte, and a chunk without anomalies passes as it is.
        // A threshold between the records' scores, so that some are anomalies.
        let only = How { annotate: Annotate::Anomalies, ..ALL };
        let record = |e: &Pack| parse::from_object(&body(e), &DateTime::<Utc>::default());
        let scores: Vec<f64> = events(&chunk).iter().filter_map(record).map(|r| Detector::new(model(100)).score(&r).score).collect();
        let (low, high) = scores.iter().fold((f64::MAX, f64::MIN), |(l, h), &s| (l.min(s), h.max(s)));
        assert!(low < high, "{scores:?}");
        let thresholded = || {
            let mut d = Detector::new(model(100));
            d.set_threshold((low + high) / 2.0).unwrap();
            d
        };
        let scorer = thresholded();
        let flagged: Vec<bool> = events(&chunk).iter().map(|e| record(e).is_none_or(|r| scorer.score(&r).anomalous)).collect();
        assert!(flagged.contains(&true) && flagged.contains(&false));
        let mut out = Vec::new();
        assert!(filter_chunk(&chunk, Ok(&thresholded()), only, &mut out).unwrap());
        for ((got, sent), &flagged) in events(&out).iter().zip(events(&chunk)).zip(&flagged) {
            assert_eq!(body(got).contains_key(enrich::SCORE) || body(got).contains_key(enrich::ERROR), flagged, "{got}");
            if !flagged {
                assert_eq!(got, &sent);
            }
        }
        let mut usual = Vec::new();
        events(&chunk).iter().zip(&flagged).filter(|(_, f)| !**f).for_each(|(e, _)| write(&mut usual, e));
        let mut out = Vec::new();
        assert!(!filter_chunk(&usual, Ok(&thresholded()), only, &mut out).unwrap(), "untouched");
        assert!(out.is_empty());
        // A usual record that came with fields only a filter may write (an
        // application's forged alert, a stale error) passes without them.
        let mut calm = Detector::new(model(100));
        calm.set_threshold(1.0).unwrap();
        let forged = event(1, &[("log", Pack::from("wa wb")), (enrich::REPORTED, Pack::from(true)), (enrich::ERROR, Pack::from("stale"))]);
        let mut out = Vec::new();
        assert!(filter_chunk(&forged, Ok(&calm), only, &mut out).unwrap());
        assert_eq!(body(&events(&out)[0]), body(&events(&event(1, &[("log", Pack::from("wa wb"))]))[0]));

        for bad in [&chunk[..chunk.len() - 3], &[0x92][..], &[0x92, 0x01, 0xde][..]] {
            assert!(filter_chunk(bad, Ok(&detector), ALL, &mut Vec::new()).is_err());
        }
    }
}
