//! Log line parsing: one raw line becomes a [`LogRecord`].
//!
//! Recognised, in this order:
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`;
//! - RFC 3164 (BSD syslog): `[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG`;
//! - rsyslog's high-precision file format: `RFC3339-TIMESTAMP HOST TAG[PID]: MSG`;
//! - NDJSON (`{"message": ...}`), when asked for;
//! - anything else is a plain line: the whole line is the message.

use chrono::{DateTime, Datelike, Local, NaiveDate, TimeZone};
use logarithm_detector::LogRecord;

/// Parses one line (without its line ending). `now` resolves the year of
/// RFC 3164 timestamps, which have none: the latest year that does not put
/// the line more than a day in the future.
pub fn parse_line(line: &str, now: DateTime<Local>) -> LogRecord {
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

/// `<PRI>` prefix → severity (PRI mod 8) and the rest of the line.
fn split_pri(line: &str) -> (Option<u8>, &str) {
    if let Some(rest) = line.strip_prefix('<') {
        if let Some(end) = rest.find('>') {
            if (1..=3).contains(&end) {
                if let Ok(pri) = rest[..end].parse::<u8>() {
                    return (Some(pri & 7), &rest[end + 1..]);
                }
            }
        }
    }
    (None, line)
}

fn micros(ts: DateTime<impl TimeZone>) -> i64 {
    ts.timestamp_micros()
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

fn parse_3164_timestamp(s: &str, now: DateTime<Local>) -> Option<(i64, &str)> {
    // "Mmm dd hh:mm:ss" is exactly 15 bytes (day padded with a space).
    let head = s.get(..15)?;
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
    let at = |year: i32| NaiveDate::from_ymd_opt(year, month, day).and_then(|d| Local.from_local_datetime(&d.and_time(time)).earliest());
    let mut ts = at(now.year())?;
    if ts > now + chrono::Duration::days(1) {
        ts = at(now.year() - 1)?;
    }
    Some((micros(ts), &s[15..]))
}

fn parse_rfc3339_prefix(s: &str) -> Option<(i64, &str)> {
    let end = s.find(' ').unwrap_or(s.len());
    let word = &s[..end];
    if word.len() < 20 || !word.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let ts = DateTime::parse_from_rfc3339(word).ok()?;
    Some((micros(ts), &s[end..]))
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
    let timestamp_us = if ts == "-" { None } else { Some(micros(DateTime::parse_from_rfc3339(ts).ok()?)) };
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
    let rest = &s[i..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// Parses an NDJSON line: the message comes from `message`, `log`, `msg` or
/// `MESSAGE`; `timestamp`/`time`/`@timestamp` (RFC 3339 or Unix seconds),
/// `host`/`hostname`/`_HOSTNAME`, `source`/`ident`/`app`/`SYSLOG_IDENTIFIER`
/// and `priority`/`PRIORITY`/`severity`/`level` fill the rest. `None` when
/// the line is not a JSON object with a message.
pub fn parse_json(line: &str) -> Option<LogRecord> {
    parse_json_with_extras(line).map(|(record, _)| record)
}

const MESSAGE_KEYS: [&str; 4] = ["message", "log", "msg", "MESSAGE"];
const TIME_KEYS: [&str; 4] = ["timestamp", "time", "@timestamp", "ts"];
const PRIORITY_KEYS: [&str; 4] = ["priority", "PRIORITY", "severity", "level"];
const SOURCE_KEYS: [&str; 5] = ["source", "ident", "app", "SYSLOG_IDENTIFIER", "program"];
const HOST_KEYS: [&str; 3] = ["host", "hostname", "_HOSTNAME"];

/// Like [`parse_json`], also returning the object's other fields (as
/// `(key, value as text)`), which are kept with the record for output.
pub fn parse_json_with_extras(line: &str) -> Option<(LogRecord, Vec<(String, String)>)> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = value.as_object()?;
    let text = |keys: &[&str]| {
        keys.iter().find_map(|k| match obj.get(*k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        })
    };
    let message = text(&MESSAGE_KEYS)?;
    let timestamp_us = TIME_KEYS.iter().find_map(|k| match obj.get(*k)? {
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(micros),
        serde_json::Value::Number(n) => n.as_f64().map(|secs| (secs * 1e6) as i64),
        _ => None,
    });
    let priority = PRIORITY_KEYS.iter().find_map(|k| match obj.get(*k)? {
        serde_json::Value::Number(n) => n.as_u64().filter(|p| *p <= 7).map(|p| p as u8),
        serde_json::Value::String(s) => severity_from_name(s),
        _ => None,
    });
    let record = LogRecord {
        timestamp_us,
        source: text(&SOURCE_KEYS).unwrap_or_default(),
        host: text(&HOST_KEYS).unwrap_or_default(),
        priority,
        message,
    };
    let known = |k: &str| [&MESSAGE_KEYS[..], &TIME_KEYS, &PRIORITY_KEYS, &SOURCE_KEYS, &HOST_KEYS].iter().any(|keys| keys.contains(&k));
    let extras =
        obj.iter().filter(|(k, _)| !known(k)).map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect();
    Some((record, extras))
}

/// Parses a `--since` time: `now`, `today`, `yesterday`, `N UNIT ago`
/// (`30m ago`, `1 hour ago`, `2 days ago`), `-N UNIT`, `YYYY-MM-DD`,
/// `YYYY-MM-DD HH:MM[:SS]` (local time) or RFC 3339. Returns µs since the epoch.
pub fn parse_since(text: &str, now: DateTime<Local>) -> Result<i64, String> {
    let t = text.trim();
    let midnight = |days_back: i64| {
        let date = now.date_naive() - chrono::Duration::days(days_back);
        Local.from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap()).earliest().map(|d| d.timestamp_micros())
    };
    let parsed = match t {
        "now" => Some(now.timestamp_micros()),
        "today" => midnight(0),
        "yesterday" => midnight(1),
        _ => None,
    };
    if let Some(us) = parsed {
        return Ok(us);
    }
    let relative = t.strip_suffix(" ago").or_else(|| t.strip_prefix('-'));
    if let Some(span) = relative {
        // humantime wants "1hour 30min": drop the spaces between number and unit.
        let compact: String = span.split_whitespace().collect::<Vec<_>>().join("");
        return humantime::parse_duration(&compact)
            .map(|d| now.timestamp_micros() - d.as_micros() as i64)
            .map_err(|e| format!("invalid time {text:?}: {e}"));
    }
    if let Ok(ts) = DateTime::parse_from_rfc3339(t) {
        return Ok(micros(ts));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Local.from_local_datetime(&naive).earliest().map(micros).ok_or_else(|| format!("invalid local time {text:?}"));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Local
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .map(micros)
            .ok_or_else(|| format!("invalid local date {text:?}"));
    }
    Err(format!("invalid time {text:?}: use 'now', 'today', 'yesterday', '1 hour ago', '2026-11-01 10:00' or RFC 3339"))
}

/// A syslog severity from its number or usual name.
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
        "info" | "information" => 6,
        "debug" | "trace" => 7,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Local.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    #[test]
    fn rfc3164_with_and_without_pri() {
        let r = parse_line("<34>Nov  2 08:00:00 web01 sshd[4242]: Accepted password for root", now());
        assert_eq!((r.host.as_str(), r.source.as_str(), r.priority), ("web01", "sshd", Some(2)));
        assert_eq!(r.message, "Accepted password for root");
        let expected = Local.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap().timestamp_micros();
        assert_eq!(r.timestamp_us, Some(expected));
        let r = parse_line("Dec 31 23:59:59 db kernel: oops", now());
        assert_eq!((r.source.as_str(), r.message.as_str()), ("kernel", "oops"));
        // December seen in November is last year's.
        assert_eq!(r.timestamp_us, Some(Local.with_ymd_and_hms(2025, 12, 31, 23, 59, 59).unwrap().timestamp_micros()));
        let r = parse_line("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0", now());
        assert_eq!((r.host.as_str(), r.source.as_str()), ("combo", "sshd(pam_unix)"));
        assert_eq!(r.message, "authentication failure; logname= uid=0");
    }

    #[test]
    fn rfc5424_and_rsyslog_file_format() {
        let r = parse_line(r#"<165>1 2026-11-02T08:00:00.5Z h1 app 77 ID47 [x@1 a="b\]"] hello there"#, now());
        assert_eq!((r.host.as_str(), r.source.as_str(), r.priority), ("h1", "app", Some(5)));
        assert_eq!(r.message, "hello there");
        let r = parse_line("2026-11-02T08:00:00.123456+01:00 h2 cron[1]: (root) CMD (true)", now());
        assert_eq!((r.host.as_str(), r.source.as_str(), r.message.as_str()), ("h2", "cron", "(root) CMD (true)"));
        assert_eq!(r.timestamp_us, Some(DateTime::parse_from_rfc3339("2026-11-02T07:00:00.123456Z").unwrap().timestamp_micros()));
    }

    #[test]
    fn plain_lines_keep_everything() {
        for line in ["just some text", "", "Nov 99 bad", "<999>x", "1 not 5424"] {
            let r = parse_line(line, now());
            assert_eq!(r.message, line);
        }
    }

    #[test]
    fn since_forms() {
        let now = now();
        let us = |s: &str| parse_since(s, now).unwrap();
        assert_eq!(us("now"), now.timestamp_micros());
        assert_eq!(us("1 hour ago"), now.timestamp_micros() - 3_600_000_000);
        assert_eq!(us("30m ago"), now.timestamp_micros() - 1_800_000_000);
        assert_eq!(us("-2 days"), now.timestamp_micros() - 2 * 86_400_000_000);
        assert_eq!(us("today"), Local.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap().timestamp_micros());
        assert_eq!(us("yesterday"), Local.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap().timestamp_micros());
        assert_eq!(us("2026-11-01 10:00"), Local.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap().timestamp_micros());
        assert_eq!(us("2026-11-01T10:00:00Z"), DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z").unwrap().timestamp_micros());
        assert!(parse_since("last tuesday", now).unwrap_err().contains("invalid time"));
    }

    #[test]
    fn ndjson_fields() {
        let r =
            parse_json(r#"{"msg":"disk full","host":"h","ident":"kernel","level":"err","time":"2026-11-02T08:00:00Z","extra":1}"#).unwrap();
        assert_eq!((r.message.as_str(), r.host.as_str(), r.source.as_str(), r.priority), ("disk full", "h", "kernel", Some(3)));
        assert!(r.timestamp_us.is_some());
        assert!(parse_json(r#"{"nomessage":1}"#).is_none());
        let (_, extras) = parse_json_with_extras(r#"{"msg":"x","unit":"a.service","n":2}"#).unwrap();
        assert_eq!(extras, [("n".to_owned(), "2".to_owned()), ("unit".to_owned(), "a.service".to_owned())]);
        assert!(parse_json("not json").is_none());
    }
}
