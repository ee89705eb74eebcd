//! Where records are made: whatever a source or a log shipper hands over —
//! a raw log line, or a structured record from journald, Fluent Bit, rsyslog
//! or an NDJSON pipe — becomes a [`LogRecord`] here, and only here. The
//! native host's readers, the trainer, the `logarithm filter` pipe and the
//! Fluent Bit module all call these functions, so a line reads the same
//! wherever it comes from.
//!
//! **Raw lines**, recognised in this order:
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`;
//! - RFC 3164 (BSD syslog): `[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG`
//!   (also with the day unpadded, and after the `EPOCH YYYY.MM.DD NODE`
//!   the CFDR's supercomputer logs put first);
//! - rsyslog's high-precision file format: `RFC3339-TIMESTAMP HOST TAG[PID]: MSG`;
//! - application layouts that carry their own level (issue 12): log4j,
//!   logback, Hadoop, Spark, ZooKeeper, HDFS (`2015-10-18 18:01:47,978 INFO
//!   [main] org.Foo: MSG`, `17/06/09 20:10:40 WARN a.B: MSG`, `081109 203518
//!   143 INFO a.B: MSG`, `TS - WARN  [thread:Class@12] - MSG`), OpenStack
//!   (a file name first; its `[req-...]` request context is dropped too), BGL (`EPOCH DATE NODE TIME NODE RAS KERNEL FATAL
//!   MSG`), Apache's error log (`[TS] [error] MSG`, `[TS] [core:warn] [pid
//!   1] MSG`), Python logging (`ERROR:root:MSG`, `TS - name - WARNING -
//!   MSG`), klog (`E1124 12:00:00.1 42 file.go:7] MSG`), Android's logcat
//!   (`03-17 16:13:38.811 1702 2395 W Tag: MSG`), Chromium and Electron
//!   (`[0705/190016:WARNING:file.cc(306)] MSG`), a timestamp in brackets
//!   (Kafka's `[TS] WARN MSG`, Monolog's `[TS] app.ERROR: MSG`, Proxifier's
//!   `[10.30 16:49:06] chrome.exe - MSG`), header fields between bars
//!   (`TS | E | Component | MSG`, `20171223-22:15:29:606|Component|pid|MSG`),
//!   Windows CBS (`TS, Info CBS MSG`), and logfmt (`level=error`,
//!   `lvl=warn` anywhere). The level is the record's severity (so words
//!   of the message do not override it); the timestamp, host or node, and
//!   component or logger are taken out of the message into the record (a
//!   program too, where the layout has one). A syslog message that starts
//!   with such a header (`app[42]: INFO ...`) gets its level the same way;
//!   a leading timestamp without a level is taken off too;
//! - anything else is a plain line: the whole line is the message.
//!
//! **Structured records** (a JSON object, or any [`Fields`]: the native
//! Fluent Bit plugin reads its msgpack maps in place); for each field the first key
//! present wins:
//!
//! | field    | keys |
//! |----------|------|
//! | message  | `message`, `msg` (rsyslog), `MESSAGE` (journald), else `log` (Fluent Bit `tail`, Docker), which is a raw line and parsed as one |
//! | time     | `timestamp`, `time`, `@timestamp`, `ts`, `timereported` (rsyslog), `date` (Fluent Bit): RFC 3339, or a Unix time as a number (s, ms, µs or ns, by magnitude); `_SOURCE_REALTIME_TIMESTAMP`, `__REALTIME_TIMESTAMP` (journald, µs) |
//! | severity | `priority`, `PRIORITY` (journald), `severity`, `level`, `syslogseverity` (rsyslog): a number 0–7, a name (`err`, `warning`, ...) or a pino/bunyan level (10–60); `pri` (Fluent Bit's syslog parser, rsyslog): a syslog PRI, severity = PRI mod 8 |
//! | source   | `source`, `ident` (Fluent Bit), `app`, `appname`, `SYSLOG_IDENTIFIER` (journald), `program`, `syslogtag` (rsyslog: `sshd[42]:` → `sshd`, `postfix/smtpd[7]:` → `postfix/smtpd`), `programname` (rsyslog), `_COMM` |
//! | host     | `host`, `hostname`, `_HOSTNAME` |
//!
//! rsyslog's imfile (`inputname` `imfile`) hands over the whole line as
//! `msg`, equal to `rawmsg`:
//! such a message is read as a raw line, and the record's fields (the
//! reader's time, imfile's tag) only fill in what the line does not say;
//! its severity, imfile's configured one, is not used.
//!
//! A text field may also be an array of bytes, as journald's JSON gives a
//! field that is not valid UTF-8 or holds control bytes
//! (`"MESSAGE":[104,105,27]`); it is read as text, invalid bytes replaced.
//! A byte-order mark at the start of a line is not part of it.
//!
//! Nothing here can panic on any input: fixed byte offsets are only used on
//! ASCII text, so a line in any script is safe (issue 10).

use crate::record::{LogRecord, RecordView};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::ops::Range;

/// A record as the mapping reads it, borrowing what it can of the text it
/// was read from: [`Parsed::into_record`] makes it a [`LogRecord`], and the
/// detector scores it as it is (a [`RecordView`]), which spares a shipper's
/// filter three strings a record (issue 11).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed<'a> {
    /// As [`LogRecord::timestamp_us`].
    pub timestamp_us: Option<i64>,
    /// As [`LogRecord::source`].
    pub source: Cow<'a, str>,
    /// As [`LogRecord::host`].
    pub host: Cow<'a, str>,
    /// As [`LogRecord::priority`].
    pub priority: Option<u8>,
    /// As [`LogRecord::message`].
    pub message: Cow<'a, str>,
}

impl<'a> Parsed<'a> {
    /// A record that is only a message.
    fn from_message(message: impl Into<Cow<'a, str>>) -> Self {
        Self { message: message.into(), ..Self::default() }
    }

    /// The record, owning its text.
    pub fn into_record(self) -> LogRecord {
        LogRecord {
            timestamp_us: self.timestamp_us,
            source: self.source.into_owned(),
            host: self.host.into_owned(),
            priority: self.priority,
            message: self.message.into_owned(),
        }
    }

    /// The same, borrowing nothing.
    fn into_owned(self) -> Parsed<'static> {
        Parsed {
            timestamp_us: self.timestamp_us,
            source: Cow::Owned(self.source.into_owned()),
            host: Cow::Owned(self.host.into_owned()),
            priority: self.priority,
            message: Cow::Owned(self.message.into_owned()),
        }
    }
}

impl<'a> From<&'a Parsed<'_>> for RecordView<'a> {
    fn from(r: &'a Parsed<'_>) -> Self {
        Self { timestamp_us: r.timestamp_us, source: &r.source, priority: r.priority, message: &r.message }
    }
}

/// Parses one raw line (without its line ending). `now` resolves the year
/// of RFC 3164 timestamps, which have none (the latest year that does not
/// put the line more than a day in the future), and its time zone is the
/// one such timestamps are read in.
pub fn parse_line<Tz: TimeZone>(line: &str, now: &DateTime<Tz>) -> LogRecord {
    read_line(line, now).into_record()
}

/// [`parse_line`], borrowing from the line.
pub fn read_line<'a, Tz: TimeZone>(line: &'a str, now: &DateTime<Tz>) -> Parsed<'a> {
    let line = without_bom(line);
    let (priority, rest) = split_pri(line);
    if let Some(rec) = rest.strip_prefix("1 ").and_then(|r| parse_5424(r, priority)) {
        return rec;
    }
    if let Some((ts, after)) = parse_3164_timestamp(rest, now) {
        return header_and_message(Some(ts), after, priority, line, now);
    }
    if let Some((ts, after)) = cfdr_prefix(rest)
        && let Some((_, after)) = parse_3164_timestamp(after, now)
    {
        return header_and_message(Some(ts), after, priority, line, now);
    }
    let plain = plain_header(rest, now);
    if let Some(h) = plain.as_ref().filter(|h| h.level.is_some()) {
        return Parsed {
            timestamp_us: h.timestamp_us,
            source: h.source.into(),
            host: h.host.into(),
            priority: h.level.or(priority),
            message: h.message.into(),
        };
    }
    if let Some((ts, after)) = parse_rfc3339_prefix(rest) {
        return header_and_message(Some(ts), after, priority, line, now);
    }
    // A header with no level (a timestamp, perhaps a program): the rest
    // may still be logfmt.
    let Header { timestamp_us: ts, source, host, message: rest, .. } = plain.unwrap_or(Header { message: rest, ..Header::default() });
    let record = |timestamp_us, priority, message| Parsed { timestamp_us, source: source.into(), host: host.into(), priority, message };
    if let Some((level, own_ts, message)) = logfmt(rest) {
        return record(own_ts.or(ts), Some(level), message.into());
    }
    if ts.is_some() {
        return record(ts, priority, rest.into());
    }
    Parsed { priority, ..Parsed::from_message(line) }
}

/// A text line as a reader sees it: a structured record when it is a JSON
/// object with a message ([`from_object`]), with the object's other fields
/// as extras, else a raw line ([`parse_line`]).
pub fn parse_text<Tz: TimeZone>(line: &str, now: &DateTime<Tz>) -> (LogRecord, Vec<(String, String)>) {
    object_record(line, now).unwrap_or_else(|| (parse_line(without_bom(line), now), Vec::new()))
}

/// A line that is a JSON object with a message (after a byte-order mark,
/// repaired as [`json_value`] repairs it): the record, and the object's
/// other fields as extras.
pub fn object_record<Tz: TimeZone>(line: &str, now: &DateTime<Tz>) -> Option<(LogRecord, Vec<(String, String)>)> {
    let line = without_bom(line);
    if !line.starts_with('{') {
        return None;
    }
    let Ok(Value::Object(obj)) = json_value(line) else { return None };
    from_object(&obj, now).map(|record| (record, extras(&obj)))
}

/// A JSON text, read as a log pipeline must: strict JSON, else, when it
/// fails, [`lenient_object`]. Read as a raw line, a broken object's message
/// is one quoted `<str>` to the tokenizer, and every broken record one kind.
pub fn json_value(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str(text).or_else(|e| lenient_object(text).map(Value::Object).ok_or(e))
}

/// An object strict JSON does not read, read anyway: again with what naive
/// writers get wrong repaired ([`repaired_json`]), else entry by entry
/// ([`object_entries`]), where a value that does not parse (a number
/// beyond `f64`, `1e400`; arrays nested past serde_json's 128 levels) is
/// kept as its text, a string: the record and its message are still read.
pub fn lenient_object(text: &str) -> Option<Map<String, Value>> {
    if let Some(Value::Object(obj)) = repaired_json(text).and_then(|fixed| serde_json::from_str(&fixed).ok()) {
        return Some(obj);
    }
    let text = text.trim_end();
    let entries = object_entries(text)?;
    Some(
        entries
            .into_iter()
            .map(|(key, span)| {
                let raw = &text[span.value];
                (key, serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned())))
            })
            .collect(),
    )
}

/// Where one entry of a JSON object lies in its text.
pub struct EntrySpan {
    /// From the key's opening quote to the value's end, as written.
    pub entry: Range<usize>,
    /// The value, as written.
    pub value: Range<usize>,
}

/// The entries of a JSON object's text (the whole text, trailing white
/// space allowed), each key with where its entry lies, duplicates and all,
/// in their order. Values are only scanned, not converted, so numbers of
/// any size and nesting of any depth are read; `None` when the text is not
/// one object.
pub fn object_entries(text: &str) -> Option<Vec<(String, EntrySpan)>> {
    use serde::de::{MapAccess, Visitor};
    use serde_json::value::RawValue;
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = serde::Deserializer::deserialize_map(&mut de, Entries).ok()?;
    de.end().ok()?;
    let base = text.as_ptr() as usize;
    // Between one entry and the next are only a comma and white space, so
    // the next quote opens the key.
    let mut from = text.find('{')? + 1;
    raw.into_iter()
        .map(|(key, value)| {
            let start = value.get().as_ptr() as usize - base;
            let end = start + value.get().len();
            let entry = from + text[from..].find('"')?..end;
            from = end;
            Some((key, EntrySpan { entry, value: start..end }))
        })
        .collect()
}

/// `text` with control characters written raw inside strings (a tab, a
/// line break) escaped, and `\u` escapes of a lone surrogate (`\ud800`,
/// which no string can hold) made U+FFFD; `None` when it has neither.
pub fn repaired_json(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let hex = |at: usize| text.get(at..at + 4).and_then(|h| u16::from_str_radix(h, 16).ok());
    let (mut out, mut start, mut i, mut in_string) = (String::new(), 0, 0, false);
    while i < b.len() {
        // Only ASCII bytes are cut at, so every slice is on a character boundary.
        let fix = match (in_string, b[i]) {
            (false, c) => {
                in_string = c == b'"';
                None
            }
            (true, b'"') => {
                in_string = false;
                None
            }
            (true, b'\\') if b.get(i + 1) == Some(&b'u') => match hex(i + 2) {
                Some(0xD800..=0xDBFF) if text.get(i + 6..i + 8) == Some("\\u") && matches!(hex(i + 8), Some(0xDC00..=0xDFFF)) => {
                    i += 11;
                    None
                }
                Some(0xD800..=0xDFFF) => Some((6, "\\ufffd".to_owned())),
                _ => {
                    i += 1;
                    None
                }
            },
            (true, b'\\') => {
                i += 1;
                None
            }
            (true, c @ 0x00..=0x1f) => Some((1, format!("\\u{c:04x}"))),
            (true, _) => None,
        };
        match fix {
            Some((len, with)) => {
                out.push_str(&text[start..i]);
                out.push_str(&with);
                i += len;
                start = i;
            }
            None => i += 1,
        }
    }
    (start > 0).then(|| out + &text[start..])
}

/// A line without the byte-order mark a Windows tool or an editor puts at
/// the start of a file: a mark of the encoding, not text of the line (left
/// on, it hid the first line's timestamp and made a word no model knows).
pub fn without_bom(line: &str) -> &str {
    line.strip_prefix('\u{feff}').unwrap_or(line)
}

/// Why a JSON object is not a log record.
pub const NO_MESSAGE: &str = "no message: no message, msg, MESSAGE or log field holding text";

/// Every key the record mapping reads, by field, each field's keys in the
/// order it prefers them (the table in the module docs); the ranges below
/// say which keys are whose.
const KEYS: [&str; 32] = [
    // message
    "message",
    "msg",
    "MESSAGE",
    // a raw line
    "log",
    // time
    "timestamp",
    "time",
    "@timestamp",
    "ts",
    "timereported",
    "date",
    // journald's time
    "_SOURCE_REALTIME_TIMESTAMP",
    "__REALTIME_TIMESTAMP",
    // severity
    "priority",
    "PRIORITY",
    "severity",
    "level",
    "syslogseverity",
    // a syslog PRI
    "pri",
    // source
    "source",
    "ident",
    "app",
    "appname",
    "SYSLOG_IDENTIFIER",
    "program",
    // rsyslog's tag before its program name, which stops at a `/`
    // (`postfix/smtpd[42]:` has the program name `postfix`): the tag is
    // what a raw line's header gives, so a model trained on files knows it.
    "syslogtag",
    "programname",
    "_COMM",
    // host
    "host",
    "hostname",
    "_HOSTNAME",
    // rsyslog's message as received and its input: from imfile, `msg` is
    // `rawmsg`, a raw line
    "rawmsg",
    "inputname",
];
const MESSAGE_KEYS: Range<usize> = 0..3;
const RAW_LINE_KEY: usize = 3;
const TIME_KEYS: Range<usize> = 4..10;
const JOURNAL_TIME_KEYS: Range<usize> = 10..12;
const SEVERITY_KEYS: Range<usize> = 12..17;
const PRI_KEY: usize = 17;
const SOURCE_KEYS: Range<usize> = 18..27;
const HOST_KEYS: Range<usize> = 27..30;
const RAW_MESSAGE_KEY: usize = 30;
const INPUT_KEY: usize = 31;

/// Bit `n % 64` set for each key of [`KEYS`] that is `n` bytes long.
const KEY_LENGTHS: u64 = {
    let mut bits = 0;
    let mut i = 0;
    while i < KEYS.len() {
        bits |= 1 << (KEYS[i].len() % 64);
        i += 1;
    }
    bits
};

/// Where `key` is in [`KEYS`], if the mapping reads it.
fn key_index(key: &str) -> Option<usize> {
    // Most keys a record holds beyond these have a length none of these has.
    if KEY_LENGTHS & (1 << (key.len() % 64)) == 0 {
        return None;
    }
    KEYS.iter().position(|k| *k == key)
}

/// A field's value, as the record mapping reads it.
pub enum Field<'a> {
    Text(Cow<'a, str>),
    Number(serde_json::Number),
    Bool(bool),
    /// Null, a list or an object: not read.
    Other,
}

/// A structured record: a JSON object, or a shipper's own map of fields
/// (the native Fluent Bit plugin reads msgpack without making a JSON
/// object of it).
pub trait Fields {
    /// A value, as the record holds it.
    type Value: ?Sized;
    /// The entries whose keys are text, in the record's order (a key given
    /// twice counts the last time).
    fn entries(&self) -> impl Iterator<Item = (&str, &Self::Value)>;
    /// A value as the mapping reads it.
    fn read(value: &Self::Value) -> Field<'_>;
}

impl Fields for Map<String, Value> {
    type Value = Value;

    fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn read(value: &Value) -> Field<'_> {
        match value {
            Value::String(s) => Field::Text(Cow::Borrowed(s)),
            Value::Number(n) => Field::Number(n.clone()),
            Value::Bool(b) => Field::Bool(*b),
            // journald's bytes that are not UTF-8 text.
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()
                .map_or(Field::Other, |bytes| Field::Text(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()))),
            _ => Field::Other,
        }
    }
}

/// A structured record (see the module docs for the keys) as a
/// [`LogRecord`]; `None` when it has no message. `now` is for a raw line
/// under `log`.
pub fn from_object<Tz: TimeZone, F: Fields + ?Sized>(obj: &F, now: &DateTime<Tz>) -> Option<LogRecord> {
    read_object(obj, now).map(Parsed::into_record)
}

/// [`from_object`], borrowing from the record.
pub fn read_object<'a, Tz: TimeZone, F: Fields + ?Sized>(obj: &'a F, now: &DateTime<Tz>) -> Option<Parsed<'a>> {
    // One pass over the record's keys, not a lookup of each of the 30
    // names, most of which a record lacks (issue 11: the lookups were a
    // tenth of the native Fluent Bit plugin's time).
    let mut found: [Option<&F::Value>; KEYS.len()] = [None; KEYS.len()];
    for (key, value) in obj.entries() {
        if let Some(i) = key_index(key) {
            found[i] = Some(value);
        }
    }
    let fields = |keys: Range<usize>| found[keys].iter().flatten().map(|v| F::read(v));
    let field = |key: usize| found[key].map(F::read);
    let text = |keys| fields(keys).find_map(|v| value_text(&v));
    let raw = |line: Cow<'a, str>| match line {
        Cow::Borrowed(line) => read_line(line, now),
        // Text made here (a number, or bytes that were not UTF-8).
        Cow::Owned(line) => read_line(&line, now).into_owned(),
    };
    // A line rsyslog's imfile read is the whole line as `msg` (its
    // `rawmsg`): it is read as a raw line, as when the file is read
    // directly. The record's fields are the reader's (the time it was read,
    // imfile's configured tag): they only fill in what the line does not
    // say, and its severity, imfile's configured one, is not the line's (a
    // plain line's level is read from its words). imjournal and imkmsg
    // also pass `msg` as `rawmsg`, but with the entry's real severity.
    let whole_line = |message: &str| {
        field(INPUT_KEY).and_then(|v| value_text(&v)).is_some_and(|i| i == "imfile")
            && field(RAW_MESSAGE_KEY).and_then(|v| value_text(&v)).is_some_and(|r| r == message)
    };
    let (mut record, line_first) = match text(MESSAGE_KEYS) {
        Some(message) if whole_line(&message) => (raw(message), true),
        Some(message) => (Parsed::from_message(message), false),
        None => (raw(value_text(&field(RAW_LINE_KEY)?)?), false),
    };
    if (!line_first || record.timestamp_us.is_none())
        && let Some(ts) = fields(TIME_KEYS)
            .find_map(|v| time_us(&v))
            .or_else(|| fields(JOURNAL_TIME_KEYS).find_map(|v| value_text(&v)?.trim().parse::<i64>().ok()))
    {
        record.timestamp_us = Some(ts);
    }
    let severity = fields(SEVERITY_KEYS)
        .find_map(|v| severity_of(&v))
        .or_else(|| value_text(&field(PRI_KEY)?)?.trim().parse::<u16>().ok().map(|pri| (pri & 7) as u8));
    if severity.is_some() && !line_first {
        record.priority = severity;
    }
    if (!line_first || record.source.is_empty())
        && let Some(source) = text(SOURCE_KEYS)
    {
        record.source = match source {
            Cow::Borrowed(source) => Cow::Borrowed(tag_name(source)),
            Cow::Owned(source) => Cow::Owned(tag_name(&source).to_owned()),
        };
    }
    if (!line_first || record.host.is_empty())
        && let Some(host) = text(HOST_KEYS)
    {
        record.host = host;
    }
    Some(record)
}

/// The fields of a structured record that [`from_object`] does not read, as
/// `(key, value as text)`, for output.
pub fn extras(obj: &Map<String, Value>) -> Vec<(String, String)> {
    obj.iter()
        .filter(|(k, _)| key_index(k).is_none())
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect()
}

/// A field as text: strings as they are, numbers and booleans printed,
/// `null` and containers as nothing.
fn value_text<'a>(v: &Field<'a>) -> Option<Cow<'a, str>> {
    match v {
        Field::Text(s) => Some(s.clone()),
        Field::Number(n) => Some(Cow::Owned(n.to_string())),
        Field::Bool(b) => Some(Cow::Owned(b.to_string())),
        Field::Other => None,
    }
}

/// A timestamp field: RFC 3339 text, or a Unix time as a number whose unit
/// is told by its size (seconds up to 1e11, then ms, µs, ns).
fn time_us(v: &Field) -> Option<i64> {
    match v {
        Field::Text(s) => DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.timestamp_micros()),
        Field::Number(n) => {
            let x = n.as_f64()?;
            let us = match x.abs() {
                a if a < 1e11 => x * 1e6,
                a if a < 1e14 => x * 1e3,
                a if a < 1e17 => x,
                _ => x / 1e3,
            };
            us.is_finite().then_some(us as i64)
        }
        _ => None,
    }
}

/// A severity field: a syslog number, a level name, or a pino/bunyan level.
fn severity_of(v: &Field) -> Option<u8> {
    match v {
        Field::Number(n) => {
            let n = n.as_u64()?;
            match n {
                0..=7 => Some(n as u8),
                // pino and bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
                10 | 20 => Some(7),
                30 => Some(6),
                40 => Some(4),
                50 => Some(3),
                60 => Some(2),
                _ => None,
            }
        }
        Field::Text(s) => severity_from_name(s.trim()),
        _ => None,
    }
}

/// A syslog tag without its pid and colon: `sshd[42]:` → `sshd`.
fn tag_name(tag: &str) -> &str {
    let tag = tag.trim().trim_end_matches(':');
    match tag.find('[') {
        Some(i) if i > 0 && tag.ends_with(']') => &tag[..i],
        _ => tag,
    }
}

/// A syslog severity from its number or usual name (any case).
pub fn severity_from_name(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    // Lowercased on the stack: this runs for a word of every plain line.
    let mut buf = [0u8; 16];
    let lower = buf.get_mut(..s.len()).filter(|_| s.is_ascii())?;
    lower.copy_from_slice(s.as_bytes());
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"emerg" | b"emergency" | b"panic" => 0,
        b"alert" => 1,
        b"crit" | b"critical" | b"fatal" | b"failure" => 2,
        b"err" | b"error" | b"severe" => 3,
        b"warn" | b"warning" => 4,
        b"notice" => 5,
        b"info" | b"information" | b"informational" => 6,
        b"debug" | b"trace" => 7,
        _ => return None,
    })
}

/// `<PRI>` prefix → severity (PRI mod 8) and the rest of the line.
fn split_pri(line: &str) -> (Option<u8>, &str) {
    if let Some(rest) = line.strip_prefix('<')
        && let Some(end) = rest.find('>')
        && (1..=3).contains(&end)
        && let Ok(pri) = rest[..end].parse::<u8>()
    {
        return (Some(pri & 7), &rest[end + 1..]);
    }
    (None, line)
}

/// `HOST TAG[PID]: MSG` after a timestamp. Falls back to the whole line as
/// the message when the header is not there.
///
/// A message that starts with an application's own header (a level, see
/// the module docs) gives the record its severity, over a `<PRI>`, which is
/// often a transport's default; the header is taken off the message.
fn header_and_message<'a, Tz: TimeZone>(
    ts: Option<i64>,
    after: &'a str,
    priority: Option<u8>,
    line: &'a str,
    now: &DateTime<Tz>,
) -> Parsed<'a> {
    let after = after.trim_start();
    // A byte search: `str::split_once(char)` costs more than the few bytes
    // of a host name it searches (issue 11).
    let (host, rest) = after.as_bytes().iter().position(|&c| c == b' ').map_or(("", after), |i| (&after[..i], &after[i + 1..]));
    let (source, message) = split_tag(rest).unwrap_or(("", rest));
    if host.is_empty() && message.is_empty() {
        return Parsed { timestamp_us: ts, priority, ..Parsed::from_message(line) };
    }
    let record = |priority: Option<u8>, message: Cow<'a, str>| Parsed {
        timestamp_us: ts,
        source: source.into(),
        host: host.into(),
        priority,
        message,
    };
    if let Some(Header { level: Some(level), message, .. }) = message_header(message, now) {
        return record(Some(level), message.into());
    }
    if let Some((level, _, message)) = logfmt(message) {
        return record(Some(level), message.into());
    }
    record(priority, message.into())
}

/// An application's own header at the start of a syslog message (the
/// layouts of [`plain_header`]), when it names a level.
fn message_header<'a, Tz: TimeZone>(message: &'a str, now: &DateTime<Tz>) -> Option<Header<'a>> {
    // Most messages start with a word that cannot begin a header (`Started`,
    // `pam_unix`): told from the first bytes, before any word is cut.
    let b = message.as_bytes();
    let capitals = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let klog = capitals == 1 && b.len() > 5 && b[1..5].iter().all(u8::is_ascii_digit);
    // `Warning: ...`: a capitalised first word ending in `: `.
    let label = capitals == 1
        && b.iter().take(12).position(|&c| c == b':' || c == b' ').is_some_and(|i| b[i] == b':' && b.get(i + 1) == Some(&b' '));
    let may = match b.first() {
        Some(b'[') => true,
        Some(c) if c.is_ascii_digit() => true,
        _ => capitals >= 3 || klog || label,
    };
    if !may {
        return None;
    }
    plain_header(message, now).filter(|h| h.level.is_some())
}

/// The bytes of a syslog tag: letters, digits and `-_./@()` (old PAM-era
/// tags have parentheses: `sshd(pam_unix)[4242]:`). A table: this runs on
/// every syslog line (issue 11).
const TAG_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'@' | b'(' | b')');
        i += 1;
    }
    table
};

/// `tag[pid]: msg` or `tag: msg` → (tag, msg).
fn split_tag(rest: &str) -> Option<(&str, &str)> {
    // The tag runs to a `:`, `[` or space, and holds only tag bytes: one
    // pass over bytes (ASCII, so `end` is on a char boundary).
    let end = rest.bytes().position(|c| !TAG_BYTE[c as usize])?;
    if end == 0 || !matches!(rest.as_bytes()[end], b':' | b'[' | b' ') {
        return None;
    }
    let tag = &rest[..end];
    let mut after = &rest[end..];
    if after.starts_with('[') {
        let close = after.bytes().position(|c| c == b']')?;
        after = &after[close + 1..];
    }
    let msg = after.strip_prefix(':')?;
    Some((tag, msg.strip_prefix(' ').unwrap_or(msg)))
}

/// A plain line's own header, when it has one of the application layouts
/// in the module docs: what it says, and where the message starts.
#[derive(Debug, Default, PartialEq)]
struct Header<'a> {
    timestamp_us: Option<i64>,
    level: Option<u8>,
    source: &'a str,
    host: &'a str,
    message: &'a str,
}

/// Recognises the application layouts that carry their own level (see the
/// module docs) at the start of `s`; `None` when `s` has none of them. A
/// leading timestamp without a level is taken off too (`level` is then
/// `None`), so that it is not scored as words.
fn plain_header<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<Header<'a>> {
    let first = *s.as_bytes().first()?;
    if first.is_ascii_digit() {
        if let Some(h) = bgl_header(s).or_else(|| logcat_header(s, now)) {
            return Some(h);
        }
        let (ts, rest) = leading_time(s, now).or_else(|| compact_time(s, now)).or_else(|| time_before_bar(s, now))?;
        return Some(match piped_fields(rest).or_else(|| leveled_after(rest, Case::Title)) {
            Some(h) => Header { timestamp_us: Some(ts), ..h },
            None => Header { timestamp_us: Some(ts), message: rest, ..Header::default() },
        });
    }
    if first == b'[' {
        return apache_header(s, now)
            .or_else(|| chromium_header(s, now))
            .or_else(|| bracketed_time_header(s, now))
            .or_else(|| leveled_after(s, Case::Upper));
    }
    // The layouts without a timestamp first all start with a capital (a
    // level, or klog's level letter): most syslog messages skip them.
    if first.is_ascii_uppercase()
        && let Some(h) = klog_header(s, now).or_else(|| python_header(s)).or_else(|| leveled_after(s, Case::Upper))
    {
        return Some(h);
    }
    // A host or file name before a timestamped header (Loghub's OpenStack
    // lines start with the file they came from).
    let (word, rest) = next_word(s);
    if rest.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && let Some((ts, after)) = leading_time(rest, now)
        && let Some(h) = leveled_after(after, Case::Title)
    {
        return Some(Header { timestamp_us: Some(ts), host: word, ..h });
    }
    None
}

/// The first word of `s` (up to a space or tab) and the rest, with the
/// blanks between them skipped. Splits only at ASCII bytes, so never inside
/// a character.
fn next_word(s: &str) -> (&str, &str) {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let b = s.as_bytes();
    let start = b.iter().position(|c| !blank(c)).unwrap_or(b.len());
    let end = b[start..].iter().position(blank).map_or(b.len(), |i| start + i);
    let next = b[end..].iter().position(|c| !blank(c)).map_or(b.len(), |i| end + i);
    // Every cut is next to an ASCII blank (or an end), so on a boundary.
    (&s[start..end], &s[next..])
}

/// How a level word may be written where it is looked for.
#[derive(Clone, Copy, PartialEq)]
enum Case {
    /// `INFO` only: where a message could start.
    Upper,
    /// `INFO` or `Info` (Windows CBS): after a timestamp.
    Title,
    /// Any case: inside brackets, like Apache's `[error]`.
    Any,
}

/// The level a word names, as applications write levels in a header
/// (`INFO`, `[error]`, `Warning`), written in a case `case` allows. Words
/// that are not level names are not levels, nor are lowercase words
/// outside brackets, which are message words.
fn level_word(word: &str, case: Case) -> Option<u8> {
    let b = word.as_bytes();
    if !(3..=11).contains(&b.len()) || !b.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let upper = b.iter().all(u8::is_ascii_uppercase);
    let title = b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_lowercase);
    if !(upper || (title && case != Case::Upper) || case == Case::Any) {
        return None;
    }
    match severity_from_name(word) {
        Some(level) => Some(level),
        // java.util.logging's finer levels.
        None if word.eq_ignore_ascii_case("fine") || word.eq_ignore_ascii_case("finer") || word.eq_ignore_ascii_case("finest") => Some(7),
        None => None,
    }
}

/// A balanced `[...]` group at the start of `s` (brackets may nest, as in
/// ZooKeeper's `[QuorumPeer[myid=1]/...]`): its inside and what follows.
fn bracketed(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    // `i` is an ASCII `]`: both slices are on boundaries.
                    return Some((&s[1..i], &s[i + 1..]));
                }
            }
            _ if i == 0 => return None,
            _ => {}
        }
    }
    None
}

/// A logger or component name: letters, digits and `. _ $ - / #`, starting
/// with a letter.
fn is_name(w: &str) -> bool {
    w.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"._$-/#".contains(&b))
}

/// After a timestamp (or at the start of a line): a few header words, then
/// a level (`INFO`, `[WARN]`, `ERROR:`), then the header's tail.
/// The words skipped before the level: numbers (pid, thread id), `-`
/// separators, a `[thread]`, and one logger name between dashes (Python's
/// `%(asctime)s - %(name)s - %(levelname)s - %(message)s`).
fn leveled_after(s: &str, case: Case) -> Option<Header<'_>> {
    let mut rest = s;
    let mut source = "";
    for _ in 0..4 {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if let Some((inside, after)) = bracketed(rest) {
            if let Some(level) = level_word(inside, Case::Any) {
                return Some(after_level(level, after, source));
            }
            rest = after;
            continue;
        }
        let (word, after) = next_word(rest);
        // With its colon a level word is a label, however capitalised
        // (`Warning: disk almost full`); without, `Error reading config`
        // is a sentence.
        let (bare, case) = match word.strip_suffix(':') {
            Some(bare) if case == Case::Upper => (bare, Case::Title),
            Some(bare) => (bare, case),
            None => (word, case),
        };
        if let Some(level) = level_word(bare, case) {
            return Some(after_level(level, after, source));
        }
        if word == "-" || (!word.is_empty() && word.bytes().all(|b| b.is_ascii_digit())) {
        } else if source.is_empty() && is_name(word) && after.starts_with("- ") {
            source = word;
        } else {
            return None;
        }
        rest = after;
    }
    None
}

/// The header's tail after the level: an optional `[thread]` (whose
/// `Class@line` ending names the source, as in ZooKeeper), dashes, and an
/// optional logger (`org.apache.Foo:`, `nova.compute.manager`).
fn after_level<'a>(level: u8, s: &'a str, mut source: &'a str) -> Header<'a> {
    let mut rest = s.trim_start_matches([' ', '\t', ':']);
    if let Some((inside, after)) = bracketed(rest) {
        let tail = inside.rsplit([':', '/', ' ']).next().unwrap_or("");
        if let Some((class, line)) = tail.split_once('@')
            && is_name(class)
            && line.bytes().all(|b| b.is_ascii_digit())
        {
            source = class;
        }
        rest = after.trim_start_matches([' ', '\t']);
    }
    rest = rest.strip_prefix("- ").unwrap_or(rest).trim_start_matches([' ', '\t']);
    if source.is_empty() {
        let (word, after) = next_word(rest);
        if let Some(name) = word.strip_suffix(':').filter(|n| is_name(n)) {
            (source, rest) = (name, after);
        } else if is_name(word) && word.contains('.') && !word.ends_with('.') && !after.is_empty() {
            (source, rest) = (word, after);
        }
        rest = rest.strip_prefix("- ").unwrap_or(rest);
    }
    // OpenStack (oslo.log) puts the request context after the logger:
    // `[req-UUID user project - - -]`, an id per request, not message words.
    if rest.starts_with("[req-")
        && let Some((_, after)) = bracketed(rest)
    {
        rest = after.trim_start_matches([' ', '\t']);
    }
    Header { timestamp_us: None, level: Some(level), source, host: "", message: rest }
}

/// `digits` as a number, when it is all ASCII digits and fits.
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    u32::try_from(digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))).ok()
}

/// A fraction of a second (`978`, `675872`) in microseconds.
fn fraction_us(digits: &[u8]) -> Option<u32> {
    let digits = &digits[..digits.len().min(6)];
    Some(number(digits)? * 10u32.pow(6 - digits.len() as u32))
}

/// A local date and time in `now`'s zone as µs since the epoch (an
/// ambiguous or skipped local time is taken as UTC).
fn local_us<Tz: TimeZone>(now: &DateTime<Tz>, (y, mo, d): (i32, u32, u32), (h, mi, s, us): (u32, u32, u32, u32)) -> Option<i64> {
    Some(naive_local_us(now, &NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_micro_opt(h, mi, s, us)?))
}

/// [`local_us`] of a date and time already read.
fn naive_local_us<Tz: TimeZone>(now: &DateTime<Tz>, naive: &chrono::NaiveDateTime) -> i64 {
    now.timezone().from_local_datetime(naive).earliest().map_or_else(|| naive.and_utc().timestamp_micros(), |t| t.timestamp_micros())
}

/// `hh:mm:ss` with an optional `.fff` or `,fff`: (h, m, s, µs).
fn clock(w: &[u8]) -> Option<(u32, u32, u32, u32)> {
    if w.len() < 8 || w[2] != b':' || w[5] != b':' {
        return None;
    }
    let us = match w.get(8) {
        None => 0,
        Some(b'.' | b',') => fraction_us(&w[9..])?,
        Some(_) => return None,
    };
    Some((number(&w[..2])?, number(&w[3..5])?, number(&w[6..8])?, us))
}

/// A timestamp at the start of a line, in the forms applications write:
/// `2015-10-18 18:01:47,978` (log4j, Python; also with `/` or `.`, or `T`
/// and an optional zone), `17/06/09 20:10:40` (Spark), `081109 203518`
/// (HDFS). A time without a zone is in `now`'s zone.
fn leading_time<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<(i64, &'a str)> {
    let (date, rest) = next_word(s);
    let d = date.as_bytes();
    if !d.is_ascii() {
        return None;
    }
    // One word, ISO 8601 with `T`: RFC 3339 when zoned, else local.
    if d.len() >= 19 && d[10] == b'T' {
        if let Ok(t) = DateTime::parse_from_rfc3339(date) {
            return Some((t.timestamp_micros(), rest));
        }
        let (y, mo, dd) = (number(&d[..4])?, number(&d[5..7])?, number(&d[8..10])?);
        let (h, mi, sec, us) = clock(&d[11..])?;
        return Some((local_us(now, (y as i32, mo, dd), (h, mi, sec, us))?, rest));
    }
    let (time, after) = next_word(rest);
    let t = time.trim_end_matches(',').as_bytes();
    let (y, mo, dd) = match d.len() {
        10 if d[4] == d[7] && matches!(d[4], b'-' | b'/' | b'.') => (number(&d[..4])?, number(&d[5..7])?, number(&d[8..10])?),
        8 if d[2] == b'/' && d[5] == b'/' => (2000 + number(&d[..2])?, number(&d[3..5])?, number(&d[6..8])?),
        6 if t.len() == 6 => {
            let date = (2000 + number(&d[..2])? as i32, number(&d[2..4])?, number(&d[4..6])?);
            let us = local_us(now, date, (number(&t[..2])?, number(&t[2..4])?, number(&t[4..])?, 0))?;
            return Some((us, after));
        }
        _ => return None,
    };
    let (h, mi, sec, us) = clock(t)?;
    Some((local_us(now, (y as i32, mo, dd), (h, mi, sec, us))?, after))
}

/// BGL (Blue Gene/L RAS): `1117838570 2005.06.03 R02-M1-N0-C:J12-U11
/// 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO message`
/// (the second node may be missing).
fn bgl_header(s: &str) -> Option<Header<'_>> {
    let (epoch, rest) = next_word(s);
    let (date, rest) = next_word(rest);
    let (node, rest) = next_word(rest);
    let (time, rest) = next_word(rest);
    let t = time.as_bytes();
    if epoch.len() < 9 || date.len() != 10 || date.as_bytes()[4] != b'.' || t.len() < 20 || !t.is_ascii() || t[10] != b'-' || t[19] != b'.'
    {
        return None;
    }
    let secs = i64::from(number(epoch.as_bytes())?);
    let us = fraction_us(&t[20..]).unwrap_or(0);
    // [node] type component level: the level is the third or fourth word.
    let mut words = [("", ""); 4];
    let mut after = rest;
    for w in &mut words {
        *w = next_word(after);
        after = w.1;
    }
    let (source, level, message) = match (level_word(words[3].0, Case::Upper), level_word(words[2].0, Case::Upper)) {
        (Some(level), _) => (words[2].0, level, words[3].1),
        (None, Some(level)) => (words[1].0, level, words[2].1),
        (None, None) => return None,
    };
    let host = if node == "-" { "" } else { node };
    Some(Header { timestamp_us: Some(secs * 1_000_000 + i64::from(us)), level: Some(level), source, host, message })
}

/// Apache's error log: `[Sun Dec 04 04:47:44 2005] [error] message`, or
/// 2.4's `[Wed Oct 11 14:32:52.123456 2000] [core:warn] [pid 12:tid 34] message`.
fn apache_header<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<Header<'a>> {
    let (stamp, rest) = bracketed(s)?;
    let mut parts = stamp.split(' ').filter(|p| !p.is_empty());
    let (_day, month, day, time, year) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let month = month_number(month)?;
    let (h, mi, sec, us) = clock(time.as_bytes())?;
    let ts = local_us(now, (number(year.as_bytes())? as i32, month, number(day.as_bytes())?), (h, mi, sec, us))?;
    let (tag, mut rest) = bracketed(rest.trim_start())?;
    let (module, level) = tag.rsplit_once(':').unwrap_or(("", tag));
    let level = level_word(level, Case::Any)?;
    if let Some((inside, after)) = bracketed(rest.trim_start()).filter(|(inside, _)| inside.starts_with("pid ")) {
        let _ = inside;
        rest = after;
    }
    Some(Header { timestamp_us: Some(ts), level: Some(level), source: module, host: "", message: rest.trim_start() })
}

fn month_number(m: &str) -> Option<u32> {
    Some(match m {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    })
}

/// klog and glog (Kubernetes, Go): `E1124 12:00:00.123456   12345
/// file.go:123] message`, the letter being the level (I, W, E, F).
fn klog_header<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<Header<'a>> {
    let b = s.as_bytes();
    let level = match b.first()? {
        b'I' => 6,
        b'W' => 4,
        b'E' => 3,
        b'F' => 2,
        _ => return None,
    };
    // `E1124 `: checked before any word is cut.
    if b.len() < 6 || b[5] != b' ' || !b[1..5].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (date, rest) = next_word(s);
    let (time, rest) = next_word(rest);
    let (_pid, rest) = next_word(rest);
    let (file, message) = next_word(rest);
    let d = date.as_bytes();
    if d.len() != 5 || !file.ends_with(']') {
        return None;
    }
    let ts = yearless_us(now, (number(&d[1..3])?, number(&d[3..5])?), clock(time.as_bytes())?)?;
    let file = file.trim_end_matches(']');
    let source = file.rsplit_once(':').map_or(file, |(f, _)| f);
    Some(Header { timestamp_us: Some(ts), level: Some(level), source, host: "", message })
}

/// A local time whose line gives no year (klog, logcat, Chromium): the
/// latest year that does not put it more than a day after `now`, as for
/// RFC 3164.
fn yearless_us<Tz: TimeZone>(now: &DateTime<Tz>, (month, day): (u32, u32), clock: (u32, u32, u32, u32)) -> Option<i64> {
    latest_year(now, |year| local_us(now, (year, month, day), clock))
}

/// The time `at(year)` gives for the latest year, counting back from the
/// year after `now`'s, that has the date (`Feb 29` goes back to a leap year)
/// and does not put it more than a day after `now`. The year after: a
/// `Jan  1 00:00:05` from a sender whose clock is ahead, read at 23:59:58
/// on Dec 31, is from tomorrow, not from a year ago.
fn latest_year<Tz: TimeZone>(now: &DateTime<Tz>, at: impl Fn(i32) -> Option<i64>) -> Option<i64> {
    let limit = (now.clone() + chrono::Duration::days(1)).timestamp_micros();
    // Leap years are at most 8 years apart (2096, 2104).
    (-1..=8).find_map(|back| at(now.year() - back).filter(|&ts| ts <= limit))
}

/// A yearless date and time, `MM-DD hh:mm:ss[.fff]` (logcat) or `MM.DD
/// hh:mm:ss` (Proxifier), as two words.
fn month_day_us<Tz: TimeZone>(now: &DateTime<Tz>, date: &str, time: &str) -> Option<i64> {
    let d = date.as_bytes();
    if d.len() != 5 || !matches!(d[2], b'-' | b'.') {
        return None;
    }
    yearless_us(now, (number(&d[..2])?, number(&d[3..])?), clock(time.as_bytes())?)
}

/// Android's logcat, `threadtime` (its default) and `time` formats:
/// `03-17 16:13:38.811  1702  2395 W WindowManager: message` and
/// `03-17 16:13:38.811 W/WindowManager( 1702): message`; the letter is the
/// level (V, D, I, W, E, F, A), the tag the source.
fn logcat_header<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<Header<'a>> {
    let b = s.as_bytes();
    // `MM-DD `: checked before any word is cut.
    if b.len() < 6 || b[2] != b'-' || b[5] != b' ' {
        return None;
    }
    let (date, rest) = next_word(s);
    let (time, rest) = next_word(rest);
    // A tab may end the first word early (`1\t-34 x`): `month_day_us`
    // checks its length again.
    let ts = month_day_us(now, date, time)?;
    let (first, after) = next_word(rest);
    let (letter, tag, message) = if number(first.as_bytes()).is_some() {
        let (_tid, after) = next_word(after);
        let (letter, after) = next_word(after);
        let (tag, message) = after.split_once(": ")?;
        (letter, tag.trim_end(), message)
    } else {
        let (letter, tagged) = rest.split_once('/')?;
        let (tag, after) = tagged.split_once('(')?;
        (letter, tag.trim_end(), after.split_once("): ")?.1)
    };
    Some(Header { timestamp_us: Some(ts), level: Some(level_letter(letter)?), source: tag, host: "", message })
}

/// Chromium's log prefix (Chrome, Electron apps, the Dropbox client):
/// `[0705/190016:WARNING:dns_config_service.cc(306)] message`, or with a
/// pid, thread and fraction, `[1234:5678:0705/190016.123456:ERROR:file.cc(12)]`;
/// `VERBOSE1` and the like are debug.
fn chromium_header<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<Header<'a>> {
    let (inside, message) = bracketed(s)?;
    let mut parts = inside.rsplitn(3, ':');
    let (file, level, stamp) = (parts.next()?, parts.next()?, parts.next()?);
    let (file, _line) = file.strip_suffix(')')?.split_once('(')?;
    let level = match level.strip_prefix("VERBOSE") {
        Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => 7,
        _ => level_word(level, Case::Upper)?,
    };
    // `MMDD/HHMMSS`, with an optional `.fraction`, after any `pid:tid:`.
    let t = stamp.rsplit(':').next()?.as_bytes();
    if t.len() < 11 || t[4] != b'/' {
        return None;
    }
    let us = match t.get(11) {
        None => 0,
        Some(b'.') => fraction_us(&t[12..])?,
        Some(_) => return None,
    };
    let hms = (number(&t[5..7])?, number(&t[7..9])?, number(&t[9..11])?, us);
    let ts = yearless_us(now, (number(&t[..2])?, number(&t[2..4])?), hms)?;
    Some(Header { timestamp_us: Some(ts), level: Some(level), source: file, host: "", message: message.trim_start() })
}

/// Supercomputer logs as the CFDR publishes them (Loghub's Thunderbird;
/// Liberty and Spirit alike): `1131566461 2005.11.09 dn228` before a BSD
/// syslog line. The epoch is the time (the syslog stamp has no year), and
/// what follows the node is the syslog line.
fn cfdr_prefix(s: &str) -> Option<(i64, &str)> {
    if !s.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let (epoch, rest) = next_word(s);
    let (date, rest) = next_word(rest);
    let (node, rest) = next_word(rest);
    let d = date.as_bytes();
    if !(9..=10).contains(&epoch.len()) || d.len() != 10 || d[4] != b'.' || d[7] != b'.' || node.is_empty() {
        return None;
    }
    Some((i64::from(number(epoch.as_bytes())?) * 1_000_000, rest))
}

/// A timestamp in brackets first: `[2015-10-18 18:01:47,978] INFO msg`
/// (Kafka), `[2024-01-02 10:00:00] app.ERROR: msg` (PHP's Monolog, the
/// channel being the source), `[10.30 16:49:06] chrome.exe *64 - msg`
/// (Proxifier: a yearless `MM.DD` date, and the program before ` - `).
fn bracketed_time_header<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<Header<'a>> {
    let (stamp, rest) = bracketed(s)?;
    let ts = match leading_time(stamp, now) {
        Some((ts, "")) => ts,
        _ => {
            let (date, time) = next_word(stamp);
            month_day_us(now, date, time)?
        }
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    let timed = |h: Header<'a>| Header { timestamp_us: Some(ts), ..h };
    if let Some(h) = leveled_after(rest, Case::Title) {
        return Some(timed(h));
    }
    let (word, after) = next_word(rest);
    if let Some((channel, level)) = word.strip_suffix(':').and_then(|w| w.rsplit_once('.'))
        && is_name(channel)
        && let Some(level) = level_word(level, Case::Upper)
    {
        return Some(timed(Header { level: Some(level), source: channel, message: after, ..Header::default() }));
    }
    // A program before ` - `, with Proxifier's `*64` for a 64-bit one.
    let (next, tail) = next_word(after);
    let (next, tail) = match next.strip_prefix('*') {
        Some(bits) if number(bits.as_bytes()).is_some() => next_word(tail),
        _ => (next, tail),
    };
    if is_name(word) && next == "-" && !tail.is_empty() {
        return Some(timed(Header { source: word, message: tail, ..Header::default() }));
    }
    Some(timed(Header { message: rest, ..Header::default() }))
}

/// Huawei HealthApp's compact timestamp, `20171223-22:15:29:606` (a fourth
/// `:` before the milliseconds, fields not padded), up to the `|` after it.
fn compact_time<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<(i64, &'a str)> {
    let b = s.as_bytes();
    // Told at once from the date's fixed bytes.
    if b.len() < 15 || b[8] != b'-' || !b[..8].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let bar = b.iter().take(24).position(|&c| c == b'|')?;
    // Byte 9 follows the ASCII `-`, and `bar` is an ASCII `|`.
    let mut clock = s[9..bar].split(':').map(|n| number(n.as_bytes()).filter(|_| n.len() <= 3));
    let (h, mi, sec) = (clock.next()??, clock.next()??, clock.next()??);
    let ms = clock.next().unwrap_or(Some(0))?;
    let date = (number(&b[..4])? as i32, number(&b[4..6])?, number(&b[6..8])?);
    Some((local_us(now, date, (h, mi, sec, ms.checked_mul(1000)?))?, &s[bar..]))
}

/// A timestamp that runs into a bar, `2023-04-01 10:00:00|INFO|main|msg`
/// (the time word is then not a time of its own): looked for only when no
/// timestamp is read otherwise.
fn time_before_bar<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<(i64, &'a str)> {
    let bar = s.bytes().take(32).position(|b| b == b'|')?;
    // `bar` is an ASCII `|`: both slices are on boundaries.
    match leading_time(&s[..bar], now)? {
        (ts, "") => Some((ts, &s[bar..])),
        _ => None,
    }
}

/// Header fields between `|` after a timestamp: `|Step_LSC|30002312|msg`
/// (HealthApp), ` | I | VoipWrapper  | msg` (the QQ client). The fields are
/// a level (a name, or its first letter), one component name (the source)
/// and numbers (pid, thread); the first other field, or the last, starts
/// the message.
fn piped_fields(s: &str) -> Option<Header<'_>> {
    let (mut level, mut source, mut rest) = (None, "", s.strip_prefix('|')?);
    while let Some((field, after)) = rest.split_once('|') {
        let field = field.trim_matches([' ', '\t']);
        if level.is_none()
            && let Some(l) = level_word(field, Case::Title).or_else(|| level_letter(field))
        {
            level = Some(l);
        } else if source.is_empty() && is_name(field) {
            source = field;
        } else if field.is_empty() || number(field.as_bytes()).is_none() {
            break;
        }
        rest = after;
    }
    Some(Header { level, source, message: rest.trim_start_matches([' ', '\t']), ..Header::default() })
}

/// A level written as its first letter, as logcat and klog do (`V`, `D`,
/// `I`, `W`, `E`, `F`, `A`).
fn level_letter(letter: &str) -> Option<u8> {
    Some(match letter {
        "V" | "D" => 7,
        "I" => 6,
        "W" => 4,
        "E" => 3,
        "F" | "A" => 2,
        _ => return None,
    })
}

/// Python's default logging format: `ERROR:root:message`, `WARNING:app.db:message`.
fn python_header(s: &str) -> Option<Header<'_>> {
    // A level name is short: look for its colon in the first 12 bytes only.
    let colon = s.bytes().take(12).position(|c| c == b':')?;
    let (level, rest) = (&s[..colon], &s[colon + 1..]);
    let level = level_word(level, Case::Upper)?;
    let (logger, message) = rest.split_once(':')?;
    if !is_name(logger) {
        return None;
    }
    Some(Header { level: Some(level), source: logger, message, ..Header::default() })
}

/// True when `s` has a `level=`, `lvl=` or `severity=` pair: one pass over
/// its `=` signs, a constant look behind each (no allocation: this runs on
/// every plain line).
fn has_level_pair(s: &str) -> bool {
    let b = s.as_bytes();
    // The memchr crate's search is vectorised; `str::find(char)` costs
    // several times more per call on a line (issue 11).
    memchr::memchr_iter(b'=', b).any(|eq| {
        [&b"level"[..], b"lvl", b"severity"].iter().any(|key| b[..eq].ends_with(key) && (eq == key.len() || b[eq - key.len() - 1] == b' '))
    })
}

/// logfmt and Go's slog/logrus: a `level=`, `lvl=` or `severity=` pair
/// anywhere in the line gives the level; it and the `time=`/`ts=` pair are
/// taken out of the message. `None` when there is no level pair.
fn logfmt(s: &str) -> Option<(u8, Option<i64>, String)> {
    if !has_level_pair(s) {
        return None;
    }
    let mut level = None;
    let mut ts = None;
    let mut kept = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        let start = rest.trim_start_matches(' ');
        let (key, value, after) = match start.split_once('=') {
            Some((key, v)) if !key.is_empty() && !key.contains(' ') => {
                let end =
                    if let Some(q) = v.strip_prefix('"') { q.find('"').map_or(v.len(), |i| i + 2) } else { v.find(' ').unwrap_or(v.len()) };
                (key, &v[..end], &v[end..])
            }
            _ => {
                let (w, after) = start.split_at(start.find(' ').unwrap_or(start.len()));
                kept.push_str(w);
                kept.push(' ');
                rest = after;
                continue;
            }
        };
        match key {
            "level" | "lvl" | "severity" if level.is_none() => level = severity_from_name(value.trim_matches('"')),
            "time" | "ts" if ts.is_none() => ts = DateTime::parse_from_rfc3339(value.trim_matches('"')).ok().map(|t| t.timestamp_micros()),
            _ => {
                kept.push_str(key);
                kept.push('=');
                kept.push_str(value);
                kept.push(' ');
            }
        }
        rest = after;
    }
    kept.truncate(kept.trim_end().len());
    level.map(|l| (l, ts, kept))
}

fn parse_3164_timestamp<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<(i64, &'a str)> {
    // "Mmm dd hh:mm:ss" is 15 ASCII bytes (the day padded with a space), or
    // 14 where a writer does not pad it ("Nov 9 12:01:01", as in the CFDR's
    // logs). Checked as ASCII first: slicing a line in any script at fixed
    // byte offsets must never land inside a character (issue 10).
    let b = s.as_bytes();
    let len = if b.get(4).is_some_and(u8::is_ascii_digit) && b.get(5) == Some(&b' ') { 14 } else { 15 };
    let head = s.get(..len).filter(|h| h.is_ascii())?;
    let month = month_number(&head[..3])?;
    if head.as_bytes()[3] != b' ' || head.as_bytes()[len - 9] != b' ' {
        return None;
    }
    let day: u32 = head[4..len - 9].trim_start().parse().ok()?;
    let time = hh_mm_ss(&head.as_bytes()[len - 8..len])?;
    // Only a date the year lacks (Feb 29) looks further back: a time the
    // clock skipped that night (the writer's zone is not the reader's) is
    // read as UTC, as `local_us` reads it.
    let at = |year: i32| NaiveDate::from_ymd_opt(year, month, day).map(|d| naive_local_us(now, &d.and_time(time)));
    Some((latest_year(now, at)?, &s[len..]))
}

/// `hh:mm:ss`, read directly: a format string is parsed anew on every call
/// (issue 11: it was a fifth of the time to parse a syslog line).
fn hh_mm_ss(b: &[u8]) -> Option<chrono::NaiveTime> {
    // Two digits, the first of which may be a space (as `%H` allows).
    let two = |i: usize| -> Option<u32> {
        let (h, l) = (b.get(i)?, b.get(i + 1)?);
        let tens = if *h == b' ' { 0 } else { h.is_ascii_digit().then(|| u32::from(h - b'0'))? };
        l.is_ascii_digit().then(|| tens * 10 + u32::from(l - b'0'))
    };
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    match two(6)? {
        // A leap second, as `%S` reads it.
        60 => chrono::NaiveTime::from_hms_milli_opt(two(0)?, two(3)?, 59, 1_000),
        seconds => chrono::NaiveTime::from_hms_opt(two(0)?, two(3)?, seconds),
    }
}

fn parse_rfc3339_prefix(s: &str) -> Option<(i64, &str)> {
    // Told by the first byte before the line is searched.
    if !s.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let end = memchr::memchr(b' ', s.as_bytes()).unwrap_or(s.len());
    let word = &s[..end];
    if word.len() < 20 {
        return None;
    }
    let ts = DateTime::parse_from_rfc3339(word).ok()?;
    Some((ts.timestamp_micros(), &s[end..]))
}

/// RFC 5424 after `<PRI>1 `.
fn parse_5424(s: &str, priority: Option<u8>) -> Option<Parsed<'_>> {
    let mut fields = s.splitn(6, ' ');
    let ts = fields.next()?;
    let host = fields.next()?;
    let app = fields.next()?;
    let _procid = fields.next()?;
    let _msgid = fields.next()?;
    let rest = fields.next().unwrap_or("");
    let nil = |f| if f == "-" { "" } else { f };
    let timestamp_us = if ts == "-" { None } else { Some(DateTime::parse_from_rfc3339(ts).ok()?.timestamp_micros()) };
    let message = skip_structured_data(rest)?;
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Some(Parsed { timestamp_us, source: nil(app).into(), host: nil(host).into(), priority, message: message.into() })
}

/// Skips `-` or one or more `[id k="v" ...]` elements, honouring `\]` escapes.
fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        let mut in_quotes = false;
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    // `i` is just past an ASCII `]`, so on a character boundary.
    let rest = &s[i..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Utc};

    fn now() -> DateTime<FixedOffset> {
        FixedOffset::east_opt(3600).unwrap().with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn local_us(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        now().timezone().with_ymd_and_hms(y, mo, d, h, mi, s).unwrap().timestamp_micros()
    }

    /// JSON as naive writers get it wrong is still read as the object it
    /// means: a raw tab or line break inside a string, a lone surrogate.
    #[test]
    fn json_with_raw_controls_or_lone_surrogates_is_read() {
        let (r, _) = parse_text("{\"message\":\"kernel: Out of memory: Killed process 4242 (java) x\ty\",\"priority\":2}", &now());
        assert_eq!((r.message.as_str(), r.priority), ("kernel: Out of memory: Killed process 4242 (java) x\ty", Some(2)));
        let (r, _) = parse_text("{\"msg\":\"a\\ud800 b \\ud83d\\ude80 c\\udc00\",\"host\":\"h\"}", &now());
        assert_eq!((r.message.as_str(), r.host.as_str()), ("a\u{fffd} b 🚀 c\u{fffd}", "h"));
        let (r, _) = parse_text("{\"msg\":\"two\nlines\\\"q\\\\\",\"é\":\"\u{1b}[31m\"}", &now());
        assert_eq!(r.message, "two\nlines\"q\\");
        // Nothing to repair, or past repair: as before.
        assert_eq!(repaired_json("{\"a\":\"b\"}"), None);
        assert_eq!(repaired_json("{\"a\":\"\\u12"), None);
        // Strict JSON that serde_json cannot hold (review: read as a raw
        // line, the record and its message were lost): a number beyond f64,
        // arrays nested 300 deep. Those values are kept as their text.
        let deep = format!("{{\"message\":\"disk full\",\"x\":{}{}}}", "[".repeat(300), "]".repeat(300));
        for (text, value) in [("{\"a\": 1e999999, \"message\":\"disk full\"} ", "1e999999"), (deep.as_str(), &deep[27..deep.len() - 1])] {
            let Ok(Value::Object(obj)) = json_value(text) else { panic!("{text}") };
            let value_key = if obj.contains_key("a") { "a" } else { "x" };
            assert_eq!((obj["message"].as_str(), obj[value_key].as_str()), (Some("disk full"), Some(value)), "{text}");
        }
        assert!(json_value("{\"a\": 1e999999").is_err(), "not an object");
        assert!(object_entries("{\"a\":1} {}").is_none(), "two objects");
        for cut in 0..40 {
            let text = "{\"msg\":\"\té\\ud800日\\u0041\"}";
            let _ = text.get(..cut).map(json_value);
        }
    }

    /// A header without a year is in the latest year that has its date:
    /// `Feb 29` read in 2026 is from 2024, not unparsed.
    #[test]
    fn february_29_without_a_year_is_from_the_last_leap_year() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let leap = Utc.with_ymd_and_hms(2024, 2, 29, 2, 42, 30).unwrap().timestamp_micros();
        assert_eq!(parse_3164_timestamp("Feb 29 02:42:30 web01 x", &now), Some((leap, " web01 x")));
        assert_eq!(yearless_us(&now, (2, 29), (2, 42, 30, 0)), Some(leap));
        let this_year = Utc.with_ymd_and_hms(2026, 3, 1, 2, 42, 30).unwrap().timestamp_micros();
        assert_eq!(parse_3164_timestamp("Mar  1 02:42:30 x", &now).map(|t| t.0), Some(this_year));
        // Tomorrow is still this year; later is last year's.
        let dec6 = Utc.with_ymd_and_hms(2026, 12, 6, 1, 0, 0).unwrap().timestamp_micros();
        assert_eq!(parse_3164_timestamp("Dec  6 01:00:00 x", &now).map(|t| t.0), Some(dec6));
        let dec25 = Utc.with_ymd_and_hms(2025, 12, 25, 1, 0, 0).unwrap().timestamp_micros();
        assert_eq!(parse_3164_timestamp("Dec 25 01:00:00 x", &now).map(|t| t.0), Some(dec25));
        assert_eq!(parse_3164_timestamp("Feb 30 02:42:30 x", &now), None);
        // Across New Year, a line a little ahead of the reader's clock is
        // from the next year (it used to be dated a year back), and one a
        // little behind from the last.
        let eve = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 58).unwrap();
        let jan1 = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 5).unwrap().timestamp_micros();
        assert_eq!(parse_3164_timestamp("Jan  1 00:00:05 x", &eve).map(|t| t.0), Some(jan1));
        assert_eq!(yearless_us(&eve, (1, 1), (0, 0, 5, 0)), Some(jan1));
        let morning = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 2).unwrap();
        let dec31 = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap().timestamp_micros();
        assert_eq!(parse_3164_timestamp("Dec 31 23:59:59 x", &morning).map(|t| t.0), Some(dec31));
        // Next year's Feb 29 is not tomorrow: the last leap year's.
        let eve_of_2028 = Utc.with_ymd_and_hms(2027, 12, 31, 12, 0, 0).unwrap();
        assert_eq!(parse_3164_timestamp("Feb 29 02:42:30 x", &eve_of_2028).map(|t| t.0), Some(leap));
    }

    /// The direct reading of `hh:mm:ss` agrees with chrono's `%H:%M:%S` on
    /// the 8 bytes a syslog header gives it.
    #[test]
    fn clock_time_as_chrono_reads_it() {
        for t in [
            "00:00:00", "23:59:59", "08:05:09", "23:59:60", "24:00:00", "25:00:00", "12:60:00", "12:00:61", "1a:00:00", "12-00-00",
            "12:00:0 ", " 1:00:00", "12: 1: 2", "+1:00:00", "1:00:00Z",
        ] {
            let want = chrono::NaiveTime::parse_from_str(t, "%H:%M:%S").ok();
            assert_eq!(hh_mm_ss(t.as_bytes()), want, "{t}");
        }
    }

    #[test]
    fn rfc3164_with_and_without_pri() {
        let r = parse_line("<34>Nov  2 08:00:00 web01 sshd[4242]: Accepted password for root", &now());
        assert_eq!((r.host.as_str(), r.source.as_str(), r.priority), ("web01", "sshd", Some(2)));
        assert_eq!(r.message, "Accepted password for root");
        assert_eq!(r.timestamp_us, Some(local_us(2026, 11, 2, 8, 0, 0)));
        let r = parse_line("Dec 31 23:59:59 db kernel: oops", &now());
        assert_eq!((r.source.as_str(), r.message.as_str()), ("kernel", "oops"));
        // December seen in November is last year's.
        assert_eq!(r.timestamp_us, Some(local_us(2025, 12, 31, 23, 59, 59)));
        let r = parse_line("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0", &now());
        assert_eq!((r.host.as_str(), r.source.as_str()), ("combo", "sshd(pam_unix)"));
        assert_eq!(r.message, "authentication failure; logname= uid=0");
    }

    #[test]
    fn rfc5424_and_rsyslog_file_format() {
        let r = parse_line(r#"<165>1 2026-11-02T08:00:00.5Z h1 app 77 ID47 [x@1 a="b\]"] hello there"#, &now());
        assert_eq!((r.host.as_str(), r.source.as_str(), r.priority), ("h1", "app", Some(5)));
        assert_eq!(r.message, "hello there");
        let r = parse_line("2026-11-02T08:00:00.123456+01:00 h2 cron[1]: (root) CMD (true)", &now());
        assert_eq!((r.host.as_str(), r.source.as_str(), r.message.as_str()), ("h2", "cron", "(root) CMD (true)"));
        assert_eq!(r.timestamp_us, Some(DateTime::parse_from_rfc3339("2026-11-02T07:00:00.123456Z").unwrap().timestamp_micros()));
    }

    #[test]
    fn plain_lines_keep_everything() {
        for line in ["just some text", "", "Nov 99 bad", "<999>x", "1 not 5424"] {
            let r = parse_line(line, &now());
            assert_eq!(r.message, line);
        }
    }

    /// Issue 12: plain lines that carry their own level, one layout per row:
    /// (line, severity, source, host, message). The level is the record's
    /// severity, and the header (timestamp, host, node, component) is not
    /// left in the message.
    #[test]
    fn plain_lines_carry_their_own_level() {
        let cases: [(&str, Option<u8>, &str, &str, &str); 39] = [
            // log4j / logback / Hadoop
            (
                "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster for application appattempt_1445144423722_0020_000001",
                Some(6),
                "org.apache.hadoop.mapreduce.v2.app.MRAppMaster",
                "",
                "Created MRAppMaster for application appattempt_1445144423722_0020_000001",
            ),
            (
                "2015-10-18 18:10:03,352 WARN [LeaseRenewer:msrabi@msra-sa-41:9000] org.apache.hadoop.hdfs.LeaseRenewer: Failed to renew lease for [DFSClient_NONMAPREDUCE_1537864556_1] for 30 seconds.  Will retry shortly ...",
                Some(4),
                "org.apache.hadoop.hdfs.LeaseRenewer",
                "",
                "Failed to renew lease for [DFSClient_NONMAPREDUCE_1537864556_1] for 30 seconds.  Will retry shortly ...",
            ),
            (
                "2015-10-18 18:05:55,107 ERROR [RMCommunicator Allocator] org.apache.hadoop.mapreduce.v2.app.rm.RMCommunicator: ERROR IN CONTACTING RM.",
                Some(3),
                "org.apache.hadoop.mapreduce.v2.app.rm.RMCommunicator",
                "",
                "ERROR IN CONTACTING RM.",
            ),
            (
                "2023-04-01 10:00:00.123 [http-nio-8080-exec-1] FATAL com.example.App - out of memory",
                Some(2),
                "com.example.App",
                "",
                "out of memory",
            ),
            // Spark
            (
                "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]",
                Some(6),
                "executor.CoarseGrainedExecutorBackend",
                "",
                "Registered signal handlers for [TERM, HUP, INT]",
            ),
            // ZooKeeper
            (
                "2015-07-29 19:04:29,071 - WARN  [SendWorker:188978561024:QuorumCnxManager$SendWorker@688] - Send worker leaving thread",
                Some(4),
                "QuorumCnxManager$SendWorker",
                "",
                "Send worker leaving thread",
            ),
            (
                "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200",
                Some(6),
                "FastLeaderElection",
                "",
                "Notification time out: 3200",
            ),
            // HDFS
            (
                "081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106",
                Some(6),
                "dfs.DataNode$DataXceiver",
                "",
                "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106",
            ),
            // OpenStack, after the file name Loghub puts first
            (
                "nova-compute.log.1.2017-05-16_13:55:31 2017-05-16 00:00:04.500 2931 ERROR nova.compute.manager [req-3ea4052c-895d-4b64-9e2d-04d64c4d94ab - - - - -] [instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] Instance failed to spawn",
                Some(3),
                "nova.compute.manager",
                "nova-compute.log.1.2017-05-16_13:55:31",
                "[instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] Instance failed to spawn",
            ),
            // BGL, with and without the repeated node
            (
                "1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
                Some(6),
                "KERNEL",
                "R02-M1-N0-C:J12-U11",
                "instruction cache parity error corrected",
            ),
            (
                "1121252981 2005.07.13 - 2005-07-13-04.09.41.585880 RAS KERNEL FATAL Kill job 22087 timed out. Block freed.",
                Some(2),
                "KERNEL",
                "",
                "Kill job 22087 timed out. Block freed.",
            ),
            (
                "1117869872 2005.06.04 R21-M1-N6-C:J08-U11 2005-06-04-00.24.32.398284 R21-M1-N6-C:J08-U11 RAS APP FATAL ciod: failed to read message prefix on control stream (CioStream socket to 172.16.96.116:33569",
                Some(2),
                "APP",
                "R21-M1-N6-C:J08-U11",
                "ciod: failed to read message prefix on control stream (CioStream socket to 172.16.96.116:33569",
            ),
            // Apache error log, 2.2 and 2.4
            (
                "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
                Some(3),
                "",
                "",
                "mod_jk child workerEnv in error state 6",
            ),
            (
                "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
                Some(5),
                "",
                "",
                "workerEnv.init() ok /etc/httpd/conf/workers2.properties",
            ),
            (
                "[Wed Oct 11 14:32:52.123456 2000] [core:warn] [pid 4242:tid 140] [client 10.0.0.1:5000] AH00037: Symbolic link not allowed",
                Some(4),
                "core",
                "",
                "[client 10.0.0.1:5000] AH00037: Symbolic link not allowed",
            ),
            // Python logging, default and with a time
            ("ERROR:root:Something went wrong", Some(3), "root", "", "Something went wrong"),
            ("WARNING:app.db:slow query (3.2 s)", Some(4), "app.db", "", "slow query (3.2 s)"),
            ("2023-04-01 10:00:00,123 - app.db - WARNING - slow query", Some(4), "app.db", "", "slow query"),
            // logfmt, Go's slog
            (
                r#"time=2023-04-01T10:00:00Z level=error msg="dial tcp 10.0.0.1:443: connection refused" component=api"#,
                Some(3),
                "",
                "",
                r#"msg="dial tcp 10.0.0.1:443: connection refused" component=api"#,
            ),
            (
                r#"t=2023-04-01T10:00:00+0000 lvl=warn msg="retrying" attempt=3"#,
                Some(4),
                "",
                "",
                r#"t=2023-04-01T10:00:00+0000 msg="retrying" attempt=3"#,
            ),
            // klog
            (
                "E1124 12:00:00.123456   12345 reflector.go:138] Failed to watch *v1.Pod: unauthorized",
                Some(3),
                "reflector.go",
                "",
                "Failed to watch *v1.Pod: unauthorized",
            ),
            ("I1124 12:00:00.123456       1 server.go:42] Serving on :8080", Some(6), "server.go", "", "Serving on :8080"),
            // Android logcat, threadtime and time formats
            (
                "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening app wtoken = AppWindowToken{9f4ef63}",
                Some(7),
                "WindowManager",
                "",
                "printFreezingDisplayLogsopening app wtoken = AppWindowToken{9f4ef63}",
            ),
            (
                "03-17 16:15:18.446  2227  2227 E StatusBar: Ошибка: no icon for slot ✈ airplane",
                Some(3),
                "StatusBar",
                "",
                "Ошибка: no icon for slot ✈ airplane",
            ),
            (
                "03-17 16:13:38.811 W/ActivityManager( 1702): Unable to start service Intent",
                Some(4),
                "ActivityManager",
                "",
                "Unable to start service Intent",
            ),
            // Chromium's prefix (Chrome, Electron, the Dropbox client)
            (
                "[0705/190016:WARNING:dns_config_service_posix.cc(306)] Failed to read DnsConfig.",
                Some(4),
                "dns_config_service_posix.cc",
                "",
                "Failed to read DnsConfig.",
            ),
            (
                "[1234:5678:0705/190016.123456:ERROR:gpu_init.cc(441)] Passthrough is not supported",
                Some(3),
                "gpu_init.cc",
                "",
                "Passthrough is not supported",
            ),
            ("[1234:5678:0705/190016.1:VERBOSE1:vaapi.cc(9)] déjà vu", Some(7), "vaapi.cc", "", "déjà vu"),
            // The CFDR's supercomputer logs: epoch, date and node before a
            // syslog line whose day is not padded
            (
                "1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root",
                None,
                "crond(pam_unix)",
                "dn228/dn228",
                "session closed for user root",
            ),
            // A timestamp in brackets: Kafka, PHP's Monolog
            (
                "[2015-10-18 18:01:47,978] WARN [Controller id=1] Broker 2 is not responding (kafka.controller.KafkaController)",
                Some(4),
                "",
                "",
                "Broker 2 is not responding (kafka.controller.KafkaController)",
            ),
            (
                "[2024-01-02 10:00:00] production.ERROR: Ошибка: таблица users не найдена",
                Some(3),
                "production",
                "",
                "Ошибка: таблица users не найдена",
            ),
            // Pipes between the header's fields: Huawei's health app,
            // Tencent QQ's client log
            ("20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579", None, "Step_LSC", "", "onStandStepChanged 3579"),
            ("20171224-0:1:0:45|Step_SPUtils|30002312|a|b", None, "Step_SPUtils", "", "a|b"),
            (
                "2017/07/05 10:57:01.130 | E | VoipWrapper  | DAVEngineImpl.cpp:1400:Close | close video chat",
                Some(3),
                "VoipWrapper",
                "",
                "DAVEngineImpl.cpp:1400:Close | close video chat",
            ),
            ("2017-07-05 10:57:01 | WARNING | 42 | 接続に失敗しました", Some(4), "", "", "接続に失敗しました"),
            ("2023-04-01 10:00:00,123|ERROR|main|Ошибка записи", Some(3), "main", "", "Ошибка записи"),
            ("2023-04-01T10:00:00Z|W|disk 91% full", Some(4), "", "", "disk 91% full"),
            // Windows CBS
            (
                "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601.23505 with Core: C:\\Windows\\winsxs\\cbscore.dll",
                Some(6),
                "",
                "",
                "CBS    Loaded Servicing Stack v6.1.7601.23505 with Core: C:\\Windows\\winsxs\\cbscore.dll",
            ),
            (
                "2016-09-28 04:40:15, Error                 CSI    00000001 (F) STATUS_SXS_ASSEMBLY_MISSING",
                Some(3),
                "",
                "",
                "CSI    00000001 (F) STATUS_SXS_ASSEMBLY_MISSING",
            ),
        ];
        for (line, level, source, host, message) in cases {
            let r = parse_line(line, &now());
            assert_eq!((r.priority, r.source.as_str(), r.host.as_str(), r.message.as_str()), (level, source, host, message), "{line}");
            assert!(r.timestamp_us.is_some() || ["ERROR:", "WARNING:", "t="].iter().any(|p| line.starts_with(p)), "{line}: no time");
        }
        // Times: local (in `now`'s zone) unless the line says otherwise.
        assert_eq!(
            parse_line("2015-10-18 18:01:47,978 INFO [main] x: y", &now()).timestamp_us,
            Some(local_us(2015, 10, 18, 18, 1, 47) + 978_000)
        );
        assert_eq!(parse_line("17/06/09 20:10:40 INFO a.B: c", &now()).timestamp_us, Some(local_us(2017, 6, 9, 20, 10, 40)));
        assert_eq!(
            parse_line("1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[1]: x", &now()).timestamp_us,
            Some(1_131_566_461_000_000)
        );
        // No year in the line: the latest that is not in the future.
        let year = now().year();
        assert_eq!(parse_line("03-17 16:13:38.811  1 2 I a: b", &now()).timestamp_us, Some(local_us(year, 3, 17, 16, 13, 38) + 811_000));
        assert_eq!(
            parse_line("[1225/190016.5:INFO:a.cc(1)] b", &now()).timestamp_us,
            Some(local_us(year - 1, 12, 25, 19, 0, 16) + 500_000)
        );
        assert_eq!(parse_line("081109 203518 143 INFO a.B: c", &now()).timestamp_us, Some(local_us(2008, 11, 9, 20, 35, 18)));
        assert_eq!(
            parse_line("1117838570 2005.06.03 - 2005-06-03-15.42.50.675872 RAS KERNEL INFO x", &now()).timestamp_us,
            Some(1_117_838_570_675_872)
        );
        // A syslog line whose message has its own level: the message's level
        // wins over the message's words and over a transport's <PRI>.
        let r = parse_line("<13>Nov  2 08:00:00 web01 java[42]: INFO [main] com.example.Cache: cache error count reset", &now());
        assert_eq!((r.priority, r.source.as_str(), r.message.as_str()), (Some(6), "java", "cache error count reset"));
        let r = parse_line(
            "Jul  5 19:00:16 mac Dropbox[451]: [0705/190016:WARNING:dns_config_service_posix.cc(306)] Failed to read DnsConfig.",
            &now(),
        );
        assert_eq!((r.priority, r.source.as_str(), r.message.as_str()), (Some(4), "Dropbox", "Failed to read DnsConfig."));
        let r = parse_line("Nov 9 12:10:53 tbird-admin1 gmetad[1700]: Warning: we failed to resolve data source name an14", &now());
        assert_eq!((r.priority, r.source.as_str(), r.message.as_str()), (Some(4), "gmetad", "we failed to resolve data source name an14"));
        let r = parse_line("Error: disk /dev/sdb is failing", &now());
        assert_eq!((r.priority, r.message.as_str()), (Some(3), "disk /dev/sdb is failing"));
        let r = parse_line("Nov  2 08:00:00 web01 app[42]: level=warn msg=\"disk 91% full\"", &now());
        assert_eq!((r.priority, r.message.as_str()), (Some(4), "msg=\"disk 91% full\""));
        assert_eq!(
            parse_line("20171223-22:15:29:606|Step_LSC|1|x", &now()).timestamp_us,
            Some(local_us(2017, 12, 23, 22, 15, 29) + 606_000)
        );
        assert_eq!(parse_line("[2024-01-02 10:00:00] app.INFO: x", &now()).timestamp_us, Some(local_us(2024, 1, 2, 10, 0, 0)));
        // A timestamp without a level is still not the message, nor is the
        // program Proxifier writes before ` - `.
        let r = parse_line("2023-04-01 10:00:00 started the backup of /srv", &now());
        assert_eq!(
            (r.priority, r.message.as_str(), r.timestamp_us),
            (None, "started the backup of /srv", Some(local_us(2023, 4, 1, 10, 0, 0)))
        );
        for (line, source, message) in [
            (
                "[10.30 16:49:06] chrome.exe - proxy.example.org:5070 open through proxy",
                "chrome.exe",
                "proxy.example.org:5070 open through proxy",
            ),
            (
                "[07.26 17:23:51] chrome.exe *64 - www.example.org:443 error : Could not connect",
                "chrome.exe",
                "www.example.org:443 error : Could not connect",
            ),
            ("[10.30 16:49:06] - - 代理 - x", "", "- - 代理 - x"),
            ("[2024-01-02 10:00:00] started", "", "started"),
        ] {
            let r = parse_line(line, &now());
            assert_eq!((r.priority, r.source.as_str(), r.message.as_str()), (None, source, message), "{line}");
            assert!(r.timestamp_us.is_some(), "{line}: no time");
        }
        assert_eq!(parse_line("[10.30 16:49:06] a - b", &now()).timestamp_us, Some(local_us(year, 10, 30, 16, 49, 6)));
        // Not levels: lowercase or sentence words at the start of a message,
        // `level` inside another word, numbers.
        for line in [
            "error reading config",
            "Error reading config",
            "Info about the release",
            "INFORMATIONAL_ONLY x",
            "sublevel=3 ok",
            "12345 INFO x",
            "[    0.000000] Linux version 6.1.0",
            "Warning:this is not python",
            "Warnings: none",
            "Error reporting: enabled",
        ] {
            let r = parse_line(line, &now());
            assert_eq!((r.priority, r.message.as_str()), (None, line), "{line}");
        }
        let r = parse_line("Nov  2 08:00:00 web01 kernel: [    0.000000] Linux version 6.1.0", &now());
        assert_eq!((r.priority, r.message.as_str()), (None, "[    0.000000] Linux version 6.1.0"));
    }

    /// Issue 10: lines in any script, and any bytes a lossy decoder leaves,
    /// go through every format without a panic, and keep their text.
    #[test]
    fn any_script_through_every_format() {
        let messages = [
            "Señal de parada recibida",
            "Ошибка чтения диска /dev/sda1",
            "ディスクの読み取りエラー",
            "磁盘读取错误 错误代码 5",
            "🔥 disk on fire 🚒",
            "خطأ في القرص",
            "line\u{2028}separator and\u{2029}paragraph",
            "nul\0byte",
            "\u{feff}bom first",
            "carriage\rreturn",
            "lone surrogate \u{fffd}\u{fffd} after lossy decoding",
            "\u{1b}[31mANSI red\u{1b}[0m",
            "é",
            "ñx",
            "日",
        ];
        for m in messages {
            let formats = [
                m.to_owned(),
                format!("<30>{m}"),
                format!("Nov  2 08:00:00 web01 app[42]: {m}"),
                format!("<30>Nov  2 08:00:00 web01 app[42]: {m}"),
                format!("<30>1 2026-11-02T08:00:00Z web01 app 42 - - {m}"),
                format!("<30>1 2026-11-02T08:00:00Z web01 app 42 - [a@1 k=\"{m}\"] {m}"),
                format!("2026-11-02T08:00:00.123+01:00 web01 app[42]: {m}"),
                serde_json::json!({"message": m, "level": "info", "host": "h"}).to_string(),
                serde_json::json!({"log": format!("Nov  2 08:00:00 web01 app[42]: {m}")}).to_string(),
                // Issue 12: the application layouts with a level.
                format!("2015-10-18 18:01:47,978 INFO [main] org.app.Main: {m}"),
                format!("2015-07-29 17:41:44,747 - WARN  [Worker[{m}]:Main@1] - {m}"),
                format!("17/06/09 20:10:40 ERROR executor.Executor: {m}"),
                format!("081109 203518 143 INFO dfs.DataNode: {m}"),
                format!("1117838570 2005.06.03 R02-M1-N0 2005-06-03-15.42.50.675872 R02-M1-N0 RAS KERNEL FATAL {m}"),
                format!("[Sun Dec 04 04:47:44 2005] [error] {m}"),
                format!("[Wed Oct 11 14:32:52.1 2000] [core:warn] [pid 1:tid 2] {m}"),
                format!("ERROR:root:{m}"),
                format!("2023-04-01 10:00:00,123 - app - WARNING - {m}"),
                format!("level=error msg=\"{m}\""),
                format!("E1124 12:00:00.123456 1 a.go:1] {m}"),
                format!("2016-09-28 04:30:30, Warning  CBS {m}"),
                format!("Nov  2 08:00:00 web01 app[42]: INFO {m}"),
                format!("{m} 2015-10-18 18:01:47,978 INFO [main] x: {m}"),
                format!("03-17 16:13:38.811  1702  2395 W Tag: {m}"),
                format!("03-17 16:13:38.811 E/Tag( 1702): {m}"),
                format!("[1:2:0705/190016.5:ERROR:a.cc(3)] {m}"),
                format!("1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[1]: {m}"),
                format!("Nov  2 08:00:00 web01 app[42]: Warning: {m}"),
                format!("[2015-10-18 18:01:47,978] ERROR {m}"),
                format!("[2024-01-02 10:00:00] app.ERROR: {m}"),
                format!("[10.30 16:49:06] chrome.exe *64 - {m}"),
                format!("20171223-22:15:29:606|Step_LSC|30002312|{m}"),
                format!("2017/07/05 10:57:01.130 | W | {m} | {m}"),
                format!("2023-04-01 10:00:00|ERROR|{m}|{m}"),
            ];
            for line in formats {
                let (record, _) = parse_text(&line, &now());
                let whole = format!("{record:?}");
                assert!(
                    record.message.contains(m) || whole.contains(m.trim_start_matches('\u{feff}')),
                    "{line:?} lost its text: {record:?}"
                );
            }
            // Every prefix and suffix of a line in any script, cut at any
            // character, in every layout.
            for line in [
                format!("Nov  2 08:00:00 web01 app[42]: {m}"),
                format!("2015-07-29 17:41:44,747 - WARN  [W[{m}]:M@1] - {m}"),
                format!("1117838570 2005.06.03 {m} 2005-06-03-15.42.50.675872 {m} RAS KERNEL FATAL {m}"),
                format!("[Wed Oct 11 14:32:52.{m} 2000] [core:{m}] [pid {m}] {m}"),
                format!("E1124 12:00:00.{m} 1 {m}] {m}"),
                format!("time={m} level=\"{m} msg=\"{m}\" {m}=x"),
                format!("{m}:{m}:{m}"),
                format!("081109 {m} 143 INFO {m}: {m}"),
                format!("03-17 16:13:38.{m}  1702  {m} W {m}: {m}"),
                format!("03-17 16:13:38.811 E/{m}( {m}): {m}"),
                format!("[{m}:0705/190016.{m}:ERROR:{m}({m})] {m}"),
                format!("1131566461 2005.11.09 {m} Nov 9 12:01:01 {m} {m}[1]: {m}"),
                format!("Nov 2 08:00:00 {m} {m}: Warning: {m}"),
                format!("[10.30 16:49:{m}] {m}.exe *{m} - {m}"),
                format!("[2024-01-02 10:00:{m}] {m}.ERROR: {m}"),
                format!("20171223-22:{m}:29:606|{m}|{m}|{m}"),
                format!("2017/07/05 10:57:{m} | {m} | {m} | {m}"),
                format!("2023-04-01 10:00:{m}|{m}|{m}|{m}"),
            ] {
                for (i, _) in line.char_indices() {
                    parse_text(&line[i..], &now());
                    parse_text(&line[..i], &now());
                }
            }
        }
        // Blanks where a layout has fixed bytes.
        for line in [
            "1\t-34 x",
            "1 -34 x",
            "0\t-12 12:00:00.1 1 2 W a: b",
            "Nov 9\t12:01:01 h a: b",
            "1 2005.11.09\t\tn",
            "[\t:\t)] x",
            "[10\t30 16:49:06] a - b",
            "[10.30\t\t] a - b",
            "2017123-22:15:29:606|a|b",
            "20171223\t22:15:29:606|a|b",
            "20171223-22:15:29:6061|a|b",
            "20171223-22::29|a|b",
            "2023-04-01 10:00:00x|a|b",
            "2023-04-01 10:00|a|b",
        ] {
            assert_eq!(parse_line(line, &now()).message, line.trim_start(), "{line:?}");
        }
        // The reported case: the third byte inside a multi-byte character.
        assert_eq!(parse_line("Señal de parada recibida", &now()).message, "Señal de parada recibida");
        assert_eq!(parse_line("Señ", &Utc.timestamp_opt(0, 0).unwrap()).message, "Señ");
    }

    /// Issue 9: every shape a source or shipper hands over maps to the same record.
    #[test]
    fn structured_records_of_every_shipper() {
        let line = "Nov  2 08:00:00 web01 sshd[4242]: Failed password for root from 10.0.0.1 port 22 ssh2";
        let message = "Failed password for root from 10.0.0.1 port 22 ssh2";
        let want = LogRecord {
            timestamp_us: Some(local_us(2026, 11, 2, 8, 0, 0)),
            source: "sshd".into(),
            host: "web01".into(),
            priority: Some(3),
            message: message.into(),
        };
        let ts = want.timestamp_us.unwrap();
        let rfc3339 = DateTime::from_timestamp_micros(ts).unwrap().to_rfc3339();
        let cases: Vec<(&str, Value)> = vec![
            ("raw line with <PRI>", Value::String(format!("<35>{line}"))),
            ("Fluent Bit tail", serde_json::json!({"log": format!("<35>{line}")})),
            (
                "journald (Fluent Bit systemd input)",
                serde_json::json!({"MESSAGE": message, "PRIORITY": "3", "SYSLOG_IDENTIFIER": "sshd", "_HOSTNAME": "web01",
                    "_SYSTEMD_UNIT": "ssh.service", "_SOURCE_REALTIME_TIMESTAMP": ts.to_string(), "_PID": "4242"}),
            ),
            (
                "Fluent Bit syslog parser",
                serde_json::json!({"pri": "35", "time": rfc3339, "host": "web01", "ident": "sshd", "pid": "4242", "message": message}),
            ),
            (
                "rsyslog fulljson",
                serde_json::json!({"msg": message, "rawmsg": format!("<35>{line}"), "timereported": rfc3339, "hostname": "web01",
                    "syslogtag": "sshd[4242]:", "programname": "sshd", "syslogseverity": "3", "syslogfacility": "4", "pri": "35"}),
            ),
            (
                "rsyslog imfile (the whole line as msg; the reader's time, tag and severity)",
                serde_json::json!({"msg": format!("<35>{line}"), "rawmsg": format!("<35>{line}"), "timereported": "2030-01-01T00:00:00Z",
                    "hostname": "reader", "programname": "imfile-tag", "syslogseverity": "5", "pri": "133", "inputname": "imfile"}),
            ),
            (
                "NDJSON (level name, app)",
                serde_json::json!({"msg": message, "level": "error", "host": "web01", "app": "sshd", "timestamp": rfc3339}),
            ),
            (
                "NDJSON (severity, epoch seconds)",
                serde_json::json!({"message": message, "severity": "ERR", "hostname": "web01", "source": "sshd", "time": ts / 1_000_000}),
            ),
            ("pino", serde_json::json!({"msg": message, "level": 50, "hostname": "web01", "app": "sshd", "time": ts / 1000})),
        ];
        for (shape, input) in cases {
            let record = match &input {
                Value::String(raw) => parse_text(raw, &now()).0,
                Value::Object(obj) => from_object(obj, &now()).unwrap_or_else(|| panic!("{shape}: no record")),
                _ => unreachable!(),
            };
            assert_eq!(record, want, "{shape}");
            let text = input.to_string();
            if input.is_object() {
                assert_eq!(parse_text(&text, &now()).0, want, "{shape} as an NDJSON line");
            }
        }
        let obj = serde_json::json!({"msg": "x", "unit": "a.service", "n": 2, "host": "h"});
        assert_eq!(extras(obj.as_object().unwrap()), [("unit".to_owned(), "a.service".to_owned()), ("n".to_owned(), "2".to_owned())]);
        assert!(from_object(serde_json::json!({"nomessage": 1}).as_object().unwrap(), &now()).is_none());
        // Not JSON, or JSON without a message: a plain line.
        for line in ["{not json", r#"{"nomessage":1}"#, "[1,2]"] {
            assert_eq!(parse_text(line, &now()).0.message, line);
        }
        // A byte-order mark (the first line of a file a Windows tool wrote)
        // is not part of the line, raw or JSON.
        assert_eq!(parse_text(&format!("\u{feff}<35>{line}"), &now()).0, want);
        assert_eq!(parse_text(&format!("\u{feff}{}", serde_json::json!({"log": line, "pri": "35"})), &now()).0, want);
        assert_eq!(parse_text("\u{feff}", &now()).0.message, "");
    }

    /// One pass over the keys keeps the mapping's order of preference,
    /// whatever the record's order; a value that is not text is read as
    /// text or skipped; and text is borrowed where it can be.
    #[test]
    fn keys_by_preference_values_as_text_and_text_borrowed() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        let read = |v: Value| from_object(&obj(v), &now()).unwrap();
        // `message` over `msg`, though it comes last; a list under a
        // preferred key gives way to the next key.
        assert_eq!(read(serde_json::json!({"msg": "b", "message": "a"})).message, "a");
        assert_eq!(read(serde_json::json!({"message": ["x"], "msg": "b"})).message, "b");
        assert_eq!(read(serde_json::json!({"msg": "m", "_HOSTNAME": "h3", "hostname": "h2"})).host, "h2");
        // Numbers and booleans read as text: a raw line, a source, a host.
        let r = read(serde_json::json!({"log": 42, "ident": 7, "host": true, "syslogtag": "cron[12]:"}));
        assert_eq!((r.message.as_str(), r.source.as_str(), r.host.as_str()), ("42", "7", "true"));
        assert_eq!(read(serde_json::json!({"msg": "m", "syslogtag": "cron[12]:"})).source, "cron");
        // imfile: a plain line's level is read from its words, not imfile's
        // configured severity; what the line lacks, the record fills in.
        let r = read(serde_json::json!({"msg": "disk failed", "rawmsg": "disk failed", "syslogseverity": 5, "programname": "app",
            "hostname": "h", "timereported": "2026-01-01T00:00:00Z", "inputname": "imfile"}));
        assert_eq!((r.priority, r.source.as_str(), r.host.as_str(), r.message.as_str()), (None, "app", "h", "disk failed"));
        assert_eq!(r.timestamp_us, Some(1_767_225_600_000_000));
        // imjournal (and imkmsg) pass `msg` as `rawmsg` too, with the
        // entry's real severity: kept.
        let r = read(serde_json::json!({"msg": "disk failed", "rawmsg": "disk failed", "syslogseverity": 3, "inputname": "imjournal"}));
        assert_eq!((r.priority, r.message.as_str()), (Some(3), "disk failed"));
        // A msg unlike its rawmsg (a header was parsed) is the message.
        let r = read(serde_json::json!({"msg": " disk failed", "rawmsg": "<11>Nov  2 08:00:00 h app: disk failed", "syslogseverity": 3}));
        assert_eq!((r.priority, r.message.as_str()), (Some(3), " disk failed"));
        // rsyslog's tag over its program name, which stops at a `/`.
        let r = read(serde_json::json!({"msg": "m", "programname": "postfix", "syslogtag": "postfix/smtpd[7]:"}));
        assert_eq!(r.source, "postfix/smtpd");
        // journald's bytes that are not UTF-8 text: read as text, invalid
        // bytes replaced; anything else in a list is not text.
        let r = read(serde_json::json!({"MESSAGE": [104, 105, 27, 91, 51, 49, 109, 255], "SYSLOG_IDENTIFIER": [120, 121]}));
        assert_eq!((r.message.as_str(), r.source.as_str()), ("hi\u{1b}[31m\u{fffd}", "xy"));
        for odd in
            [serde_json::json!([]), serde_json::json!([256]), serde_json::json!([-1]), serde_json::json!([1.5]), serde_json::json!(["a"])]
        {
            assert_eq!(read(serde_json::json!({"MESSAGE": odd, "msg": "b"})).message, "b", "{odd}");
        }
        // A tail record's syslog line: every part borrowed from the object.
        let tail = obj(serde_json::json!({"log": "<35>Nov  2 08:00:00 web01 sshd[42]: Failed password"}));
        let parsed = read_object(&tail, &now()).unwrap();
        assert!(matches!(
            (&parsed.source, &parsed.host, &parsed.message),
            (Cow::Borrowed("sshd"), Cow::Borrowed("web01"), Cow::Borrowed("Failed password"))
        ));
        assert_eq!(parsed.priority, Some(3));
        assert_eq!(parsed.into_record(), parse_line("<35>Nov  2 08:00:00 web01 sshd[42]: Failed password", &now()));
        // The fields' ranges cover the keys in order, and each key is found
        // where it is (no key twice).
        let parts = [
            MESSAGE_KEYS,
            RAW_LINE_KEY..RAW_LINE_KEY + 1,
            TIME_KEYS,
            JOURNAL_TIME_KEYS,
            SEVERITY_KEYS,
            PRI_KEY..PRI_KEY + 1,
            SOURCE_KEYS,
            HOST_KEYS,
            RAW_MESSAGE_KEY..RAW_MESSAGE_KEY + 1,
            INPUT_KEY..INPUT_KEY + 1,
        ];
        assert!(parts[0].start == 0 && parts.windows(2).all(|w| w[0].end == w[1].start) && parts[9].end == KEYS.len());
        for (i, key) in KEYS.iter().enumerate() {
            assert_eq!(key_index(key), Some(i), "{key}");
        }
    }

    #[test]
    fn severity_names_and_numbers() {
        for (name, level) in
            [("EMERG", 0), ("alert", 1), ("Critical", 2), ("fatal", 2), ("err", 3), ("Warning", 4), ("notice", 5), ("info", 6), ("7", 7)]
        {
            assert_eq!(severity_from_name(name), Some(level), "{name}");
        }
        assert_eq!(severity_from_name("8"), None);
        assert_eq!(severity_from_name("chatty"), None);
    }
}
