//! Where records are made: whatever a source or a log shipper hands over —
//! a raw log line, or a structured record from journald, Fluent Bit, rsyslog
//! or an NDJSON pipe — becomes a [`LogRecord`] here, and only here. The
//! native host's readers, the trainer, the `logarithm filter` pipe and the
//! Fluent Bit module all call these functions, so a line reads the same
//! wherever it comes from.
//!
//! **Raw lines**, recognised in this order:
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`;
//! - RFC 3164 (BSD syslog): `[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG`;
//! - rsyslog's high-precision file format: `RFC3339-TIMESTAMP HOST TAG[PID]: MSG`;
//! - anything else is a plain line: the whole line is the message.
//!
//! **Structured records** (a JSON object); for each field the first key
//! present wins:
//!
//! | field    | keys |
//! |----------|------|
//! | message  | `message`, `msg` (rsyslog), `MESSAGE` (journald), else `log` (Fluent Bit `tail`, Docker), which is a raw line and parsed as one |
//! | time     | `timestamp`, `time`, `@timestamp`, `ts`, `timereported` (rsyslog), `date` (Fluent Bit): RFC 3339, or a Unix time as a number (s, ms, µs or ns, by magnitude); `_SOURCE_REALTIME_TIMESTAMP`, `__REALTIME_TIMESTAMP` (journald, µs) |
//! | severity | `priority`, `PRIORITY` (journald), `severity`, `level`, `syslogseverity` (rsyslog): a number 0–7, a name (`err`, `warning`, ...) or a pino/bunyan level (10–60); `pri` (Fluent Bit's syslog parser, rsyslog): a syslog PRI, severity = PRI mod 8 |
//! | source   | `source`, `ident` (Fluent Bit), `app`, `appname`, `SYSLOG_IDENTIFIER` (journald), `program`, `programname` (rsyslog), `syslogtag` (`sshd[42]:` → `sshd`), `_COMM` |
//! | host     | `host`, `hostname`, `_HOSTNAME` |
//!
//! Nothing here can panic on any input: fixed byte offsets are only used on
//! ASCII text, so a line in any script is safe (issue 10).

use crate::record::LogRecord;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use serde_json::{Map, Value};

/// Parses one raw line (without its line ending). `now` resolves the year
/// of RFC 3164 timestamps, which have none (the latest year that does not
/// put the line more than a day in the future), and its time zone is the
/// one such timestamps are read in.
pub fn parse_line<Tz: TimeZone>(line: &str, now: &DateTime<Tz>) -> LogRecord {
    let (priority, rest) = split_pri(line);
    if let Some(rec) = rest.strip_prefix("1 ").and_then(|r| parse_5424(r, priority)) {
        return rec;
    }
    if let Some((ts, after)) = parse_3164_timestamp(rest, now) {
        return header_and_message(Some(ts), after, priority, line);
    }
    if let Some((ts, after)) = parse_rfc3339_prefix(rest) {
        return header_and_message(Some(ts), after, priority, line);
    }
    LogRecord { priority, ..LogRecord::from_message(line) }
}

/// A text line as a reader sees it: a structured record when it is a JSON
/// object with a message ([`from_object`]), with the object's other fields
/// as extras, else a raw line ([`parse_line`]).
pub fn parse_text<Tz: TimeZone>(line: &str, now: &DateTime<Tz>) -> (LogRecord, Vec<(String, String)>) {
    if line.starts_with('{')
        && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line)
        && let Some(record) = from_object(&obj, now)
    {
        return (record, extras(&obj));
    }
    (parse_line(line, now), Vec::new())
}

/// Why a JSON object is not a log record.
pub const NO_MESSAGE: &str = "no message field (message, msg, MESSAGE or log)";

const MESSAGE_KEYS: [&str; 3] = ["message", "msg", "MESSAGE"];
const RAW_LINE_KEY: &str = "log";
const TIME_KEYS: [&str; 6] = ["timestamp", "time", "@timestamp", "ts", "timereported", "date"];
const JOURNAL_TIME_KEYS: [&str; 2] = ["_SOURCE_REALTIME_TIMESTAMP", "__REALTIME_TIMESTAMP"];
const SEVERITY_KEYS: [&str; 5] = ["priority", "PRIORITY", "severity", "level", "syslogseverity"];
const PRI_KEY: &str = "pri";
const SOURCE_KEYS: [&str; 9] = ["source", "ident", "app", "appname", "SYSLOG_IDENTIFIER", "program", "programname", "syslogtag", "_COMM"];
const HOST_KEYS: [&str; 3] = ["host", "hostname", "_HOSTNAME"];

/// A structured record (see the module docs for the keys) as a
/// [`LogRecord`]; `None` when it has no message. `now` is for a raw line
/// under `log`.
pub fn from_object<Tz: TimeZone>(obj: &Map<String, Value>, now: &DateTime<Tz>) -> Option<LogRecord> {
    let text = |keys: &[&str]| keys.iter().find_map(|k| value_text(obj.get(*k)?));
    let mut record = match text(&MESSAGE_KEYS) {
        Some(message) => LogRecord::from_message(message),
        None => parse_line(&value_text(obj.get(RAW_LINE_KEY)?)?, now),
    };
    if let Some(ts) = TIME_KEYS
        .iter()
        .find_map(|k| time_us(obj.get(*k)?))
        .or_else(|| JOURNAL_TIME_KEYS.iter().find_map(|k| value_text(obj.get(*k)?)?.trim().parse::<i64>().ok()))
    {
        record.timestamp_us = Some(ts);
    }
    let severity = SEVERITY_KEYS
        .iter()
        .find_map(|k| severity_of(obj.get(*k)?))
        .or_else(|| value_text(obj.get(PRI_KEY)?)?.trim().parse::<u16>().ok().map(|pri| (pri & 7) as u8));
    if severity.is_some() {
        record.priority = severity;
    }
    if let Some(source) = text(&SOURCE_KEYS) {
        record.source = tag_name(&source).to_owned();
    }
    if let Some(host) = text(&HOST_KEYS) {
        record.host = host;
    }
    Some(record)
}

/// The fields of a structured record that [`from_object`] does not read, as
/// `(key, value as text)`, for output.
pub fn extras(obj: &Map<String, Value>) -> Vec<(String, String)> {
    let known = |k: &str| {
        k == RAW_LINE_KEY
            || k == PRI_KEY
            || [&MESSAGE_KEYS[..], &TIME_KEYS, &JOURNAL_TIME_KEYS, &SEVERITY_KEYS, &SOURCE_KEYS, &HOST_KEYS]
                .iter()
                .any(|keys| keys.contains(&k))
    };
    obj.iter().filter(|(k, _)| !known(k)).map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
}

/// A JSON value as text: strings as they are, numbers and booleans printed,
/// `null` and containers as nothing.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A timestamp field: RFC 3339 text, or a Unix time as a number whose unit
/// is told by its size (seconds up to 1e11, then ms, µs, ns).
fn time_us(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.timestamp_micros()),
        Value::Number(n) => {
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
fn severity_of(v: &Value) -> Option<u8> {
    match v {
        Value::Number(n) => {
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
        Value::String(s) => severity_from_name(s.trim()),
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
    Some(match s.to_ascii_lowercase().as_str() {
        "emerg" | "emergency" | "panic" => 0,
        "alert" => 1,
        "crit" | "critical" | "fatal" | "failure" => 2,
        "err" | "error" | "severe" => 3,
        "warn" | "warning" => 4,
        "notice" => 5,
        "info" | "information" | "informational" => 6,
        "debug" | "trace" => 7,
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
fn header_and_message(ts: Option<i64>, after: &str, priority: Option<u8>, line: &str) -> LogRecord {
    let after = after.trim_start();
    let (host, rest) = after.split_once(' ').unwrap_or(("", after));
    let (source, message) = split_tag(rest).unwrap_or(("", rest));
    if host.is_empty() && message.is_empty() {
        return LogRecord { timestamp_us: ts, priority, ..LogRecord::from_message(line) };
    }
    LogRecord { timestamp_us: ts, source: source.into(), host: host.into(), priority, message: message.into() }
}

/// `tag[pid]: msg` or `tag: msg` → (tag, msg).
fn split_tag(rest: &str) -> Option<(&str, &str)> {
    let end = rest.find([':', '[', ' '])?;
    let tag = &rest[..end];
    // Old PAM-era tags have parentheses: `sshd(pam_unix)[4242]:`.
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./@()".contains(&b)) {
        return None;
    }
    let mut after = &rest[end..];
    if after.starts_with('[') {
        let close = after.find(']')?;
        after = &after[close + 1..];
    }
    let msg = after.strip_prefix(':')?;
    Some((tag, msg.strip_prefix(' ').unwrap_or(msg)))
}

fn parse_3164_timestamp<'a, Tz: TimeZone>(s: &'a str, now: &DateTime<Tz>) -> Option<(i64, &'a str)> {
    // "Mmm dd hh:mm:ss" is exactly 15 ASCII bytes (day padded with a space).
    // Checked as ASCII first: slicing a line in any script at fixed byte
    // offsets must never land inside a character (issue 10).
    let head = s.get(..15).filter(|h| h.is_ascii())?;
    let month = match &head[..3] {
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
    };
    if head.as_bytes()[3] != b' ' || head.as_bytes()[6] != b' ' {
        return None;
    }
    let day: u32 = head[4..6].trim_start().parse().ok()?;
    let time = chrono::NaiveTime::parse_from_str(&head[7..15], "%H:%M:%S").ok()?;
    let zone = now.timezone();
    let at = |year: i32| NaiveDate::from_ymd_opt(year, month, day).and_then(|d| zone.from_local_datetime(&d.and_time(time)).earliest());
    let mut ts = at(now.year())?;
    if ts > now.clone() + chrono::Duration::days(1) {
        ts = at(now.year() - 1)?;
    }
    Some((ts.timestamp_micros(), &s[15..]))
}

fn parse_rfc3339_prefix(s: &str) -> Option<(i64, &str)> {
    let end = s.find(' ').unwrap_or(s.len());
    let word = &s[..end];
    if word.len() < 20 || !word.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let ts = DateTime::parse_from_rfc3339(word).ok()?;
    Some((ts.timestamp_micros(), &s[end..]))
}

/// RFC 5424 after `<PRI>1 `.
fn parse_5424(s: &str, priority: Option<u8>) -> Option<LogRecord> {
    let mut fields = s.splitn(6, ' ');
    let ts = fields.next()?;
    let host = fields.next()?;
    let app = fields.next()?;
    let _procid = fields.next()?;
    let _msgid = fields.next()?;
    let rest = fields.next().unwrap_or("");
    let nil = |f: &str| if f == "-" { String::new() } else { f.to_owned() };
    let timestamp_us = if ts == "-" { None } else { Some(DateTime::parse_from_rfc3339(ts).ok()?.timestamp_micros()) };
    let message = skip_structured_data(rest)?;
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Some(LogRecord { timestamp_us, source: nil(app), host: nil(host), priority, message: message.to_owned() })
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
            ];
            for line in formats {
                let (record, _) = parse_text(&line, &now());
                let whole = format!("{record:?}");
                assert!(
                    record.message.contains(m) || whole.contains(m.trim_start_matches('\u{feff}')),
                    "{line:?} lost its text: {record:?}"
                );
            }
            // Every prefix of a line in any script, cut at any character.
            let line = format!("Nov  2 08:00:00 web01 app[42]: {m}");
            for (i, _) in line.char_indices() {
                parse_text(&line[i..], &now());
                parse_text(&line[..i], &now());
            }
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
