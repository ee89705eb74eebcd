//! Verdicts back into a shipper's record: the fields every filter adds to
//! the JSON records it passes on — the Fluent Bit module, `logarithm filter`
//! (any NDJSON pipe) and rsyslog's `mmexternal` — written here once, so
//! every pipeline routes on the same names.
//!
//! | field           | value |
//! |-----------------|-------|
//! | `anomaly_score` | the calibrated score in [0, 1] (`Verdict::score`) |
//! | `anomalous`     | `true` when the score is at or above the threshold |
//! | `anomaly_terms` | the terms that explain it, largest share first: `"oom (unseen)"`, `"severity:err (failed)"`; the filters explain anomalies only, so it is `[]` for the other records |
//! | `anomaly_reported` | `true` when the record raises an alert: anomalous, and the first of its kind or worse than its kind's earlier alert; `false` for a repeat counted against an earlier alert ([`crate::kinds`]). Route alerts on this one |
//! | `anomaly_burst` | only when this record starts a burst (its kind logged far faster than in training): `{"template", "count", "window_secs", "usual"}` (the record is then `anomaly_reported`) |
//! | `anomaly_repeat` | only when this record's kind crossed 10, 100, 1,000… anomalous records: `{"template", "count", "first_timestamp"}` (the record is then `anomaly_reported` too) |
//! | `anomaly_error` | instead of the three above: why the record was passed on unscored |

use crate::detector::{Term, Verdict};
use crate::kinds::{Burst, Repeat};
use serde_json::{Map, Value};

/// The calibrated score.
pub const SCORE: &str = "anomaly_score";
/// Whether the record is an anomaly.
pub const ANOMALOUS: &str = "anomalous";
/// The explaining terms.
pub const TERMS: &str = "anomaly_terms";
/// Whether the record raises an alert.
pub const REPORTED: &str = "anomaly_reported";
/// The summary of a kind that keeps happening.
pub const REPEAT: &str = "anomaly_repeat";
/// A burst the record starts.
pub const BURST: &str = "anomaly_burst";
/// Why the record was not scored.
pub const ERROR: &str = "anomaly_error";

/// Every field a filter writes. A record that arrives holding any of them
/// has them taken off before the filter writes its own, in every mode, so
/// that what an alerts stage routes on is this filter's word (review: an
/// application's own `"anomaly_reported": true` passed on as it came went
/// to the alerts, and a stale `anomaly_error` stayed beside a fresh score).
pub const FIELDS: [&str; 7] = [SCORE, ANOMALOUS, TERMS, REPORTED, REPEAT, BURST, ERROR];

/// Whether `key` is one of [`FIELDS`].
pub fn is_field(key: &str) -> bool {
    FIELDS.contains(&key)
}

/// Takes [`FIELDS`] off a record; whether it held any.
pub fn strip(record: &mut Map<String, Value>) -> bool {
    let before = record.len();
    record.retain(|k, _| !is_field(k));
    record.len() != before
}

impl Term {
    /// The term as shown to people: its text, marked `(unseen)` when the
    /// model never saw it.
    pub fn label(&self) -> String {
        if self.unseen { format!("{} (unseen)", self.text) } else { self.text.clone() }
    }
}

/// Whether a record goes to the alerts: it raises one, carries the
/// summary of a kind that keeps happening, or starts a burst.
pub fn alerts(verdict: &Verdict) -> bool {
    verdict.reported() || verdict.repeat.is_some() || verdict.burst.is_some()
}

/// A burst as JSON: `{"template", "count", "window_secs", "usual"}`.
pub fn burst_value(burst: &Burst) -> Value {
    serde_json::json!({"template": burst.template, "count": burst.count, "window_secs": burst.window_secs, "usual": burst.usual})
}

/// A summary as JSON: `{"template", "count", "first_timestamp"}`, the time
/// in microseconds since the Unix epoch, or `null`.
pub fn repeat_value(repeat: &Repeat) -> Value {
    serde_json::json!({"template": repeat.template, "count": repeat.count, "first_timestamp": repeat.first_timestamp_us})
}

/// The verdict's fields, named as in the module docs' table.
pub fn verdict_fields(verdict: &Verdict) -> Vec<(&'static str, Value)> {
    let score = serde_json::Number::from_f64(verdict.score).map_or(Value::Null, Value::Number);
    let terms = verdict.terms.iter().map(|t| Value::String(t.label())).collect();
    let mut fields = vec![
        (SCORE, score),
        (ANOMALOUS, Value::Bool(verdict.anomalous)),
        (TERMS, Value::Array(terms)),
        (REPORTED, Value::Bool(alerts(verdict))),
    ];
    fields.extend(verdict.repeat.as_ref().map(|r| (REPEAT, repeat_value(r))));
    fields.extend(verdict.burst.as_ref().map(|b| (BURST, burst_value(b))));
    fields
}

/// Adds the verdict's fields to a record, in place of any of [`FIELDS`]
/// it came with.
pub fn annotate(record: &mut Map<String, Value>, verdict: &Verdict) {
    strip(record);
    for (k, v) in verdict_fields(verdict) {
        record.insert(k.to_owned(), v);
    }
}

/// Writes a record with the verdict's fields added, as [`annotate`] adds
/// them, from the record's own JSON text (`text`, which parsed as
/// `record`): the text up to its closing brace, then the fields. Copying
/// the record's bytes costs far less than writing the parsed object anew
/// (issue 11: that was a quarter of the Fluent Bit module's time per
/// record), and keeps its keys in their order and its numbers as written.
/// One of [`FIELDS`] the record came with is left out ([`annotate`] takes
/// them off), the other entries still as written. Returns `false`, having
/// written nothing, when the text does not end the object, or holds one of
/// [`FIELDS`] and cannot be read entry by entry.
pub fn write_annotated(text: &[u8], record: &Map<String, Value>, verdict: &Verdict, out: &mut Vec<u8>) -> bool {
    write_appended(text, record, &verdict_fields(verdict), out)
}

/// Writes a record's own JSON text (`text`, which parsed as `record`) with
/// `fields` appended: the text up to its closing brace, then the fields
/// ([`write_annotated`]; a filter's `anomaly_error` too), less any of
/// [`FIELDS`] it came with. Returns `false`, having written nothing, when
/// the text does not end the object, or holds one of [`FIELDS`] and
/// cannot be read entry by entry.
pub fn write_appended(text: &[u8], record: &Map<String, Value>, fields: &[(&str, Value)], out: &mut Vec<u8>) -> bool {
    // Trailing white space or a C string's NUL may follow the object.
    let end = text.iter().rposition(|&b| !b.is_ascii_whitespace() && b != 0);
    let Some(end) = end.filter(|&i| text[i] == b'}') else { return false };
    let mut before = !record.is_empty();
    if record.keys().any(|k| is_field(k)) {
        // The other entries, each as written.
        let object = std::str::from_utf8(&text[..=end]).ok();
        let Some(entries) = object.and_then(crate::parse::object_entries) else { return false };
        out.push(b'{');
        before = false;
        for (_, span) in entries.iter().filter(|(key, _)| !is_field(key)) {
            if before {
                out.push(b',');
            }
            out.extend_from_slice(&text[span.entry.clone()]);
            before = true;
        }
    } else {
        out.extend_from_slice(&text[..end]);
    }
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 || before {
            out.push(b',');
        }
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, value);
    }
    out.push(b'}');
    true
}

/// Whether a record an earlier filter annotated goes to the alerts: it
/// raised one (`anomaly_reported`) or could not be scored (`anomaly_error`).
pub fn marked_for_alerts(record: &Map<String, Value>) -> bool {
    record.get(REPORTED) == Some(&Value::Bool(true)) || record.contains_key(ERROR)
}

/// Marks a record as passed on unscored, and why (in place of any of
/// [`FIELDS`] it came with).
pub fn annotate_error(record: &mut Map<String, Value>, why: &str) {
    strip(record);
    record.insert(ERROR.to_owned(), Value::String(why.to_owned()));
}

/// A line a filter was given that is not a JSON object, as the record it
/// passes on: `{"log": line}`, the way Fluent Bit's `tail` input hands over
/// a raw line (and the way [`crate::parse::from_object`] reads one).
pub fn raw_line_record(line: &str) -> Map<String, Value> {
    let mut record = Map::new();
    record.insert("log".to_owned(), Value::String(line.to_owned()));
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_a_verdict_and_an_error() {
        let verdict = Verdict::new(
            0.9995,
            0.999,
            vec![
                Term { text: "oom".into(), weight: 0.6, unseen: true },
                Term { text: "severity:err (failed)".into(), weight: 0.3, unseen: false },
            ],
        );
        let mut record: Map<String, Value> = serde_json::from_str(r#"{"log":"x","anomaly_score":"old"}"#).unwrap();
        annotate(&mut record, &verdict);
        assert_eq!(
            Value::Object(record),
            serde_json::json!({"log": "x", "anomaly_score": 0.9995, "anomalous": true, "anomaly_terms": ["oom (unseen)", "severity:err (failed)"], "anomaly_reported": true})
        );
        let counted = Verdict {
            report: crate::Report::Counted,
            repeat: Some(Repeat { template: "t".into(), count: 10, first_timestamp_us: None }),
            ..verdict
        };
        let mut record = Map::new();
        annotate(&mut record, &counted);
        assert_eq!(record[REPORTED], true);
        assert_eq!(record[REPEAT], serde_json::json!({"template": "t", "count": 10, "first_timestamp": null}));
        let mut record = raw_line_record("not json");
        annotate_error(&mut record, "why");
        assert_eq!(Value::Object(record), serde_json::json!({"log": "not json", "anomaly_error": "why"}));
        // Fields a record came with are this filter's word or gone: a
        // stale error beside a fresh score, a forged alert.
        let stale = r#"{"log":"x","anomaly_error":"stale","anomaly_burst":{},"anomaly_repeat":1,"anomaly_reported":true}"#;
        let mut record: Map<String, Value> = serde_json::from_str(stale).unwrap();
        annotate(&mut record, &Verdict::new(0.25, 0.999, Vec::new()));
        assert_eq!(
            Value::Object(record),
            serde_json::json!({"log": "x", "anomaly_score": 0.25, "anomalous": false, "anomaly_terms": [], "anomaly_reported": false})
        );
        let mut record: Map<String, Value> = serde_json::from_str(stale).unwrap();
        annotate_error(&mut record, "why");
        assert_eq!(Value::Object(record), serde_json::json!({"log": "x", "anomaly_error": "why"}));
    }

    /// The record's own text, extended, is what `annotate` makes of it, with
    /// its keys in their order and its numbers as written.
    #[test]
    fn fields_written_after_the_records_own_text() {
        let verdict = Verdict::new(0.25, 0.999, Vec::new());
        for text in [
            r#"{"z":1,"log":"é ☃ \u0000","n":1.50,"big":123456789012345678901234567890}"#,
            "{\"log\":\"x\"}  \n\0",
            r#"{ "log" : "x" }"#,
            "{}",
        ] {
            let mut record: Map<String, Value> = serde_json::from_str(text.trim_end_matches(['\n', '\0'])).unwrap();
            let mut out = Vec::new();
            assert!(write_annotated(text.as_bytes(), &record, &verdict, &mut out), "{text}");
            let written: Map<String, Value> = serde_json::from_slice(&out).unwrap();
            annotate(&mut record, &verdict);
            assert_eq!(written, record, "{text}");
            let object = text.trim_end_matches([' ', '\n', '\0']);
            assert!(out.starts_with(&object.as_bytes()[..object.len() - 1]), "{}", String::from_utf8_lossy(&out));
        }
        // A field a record came with is left out, the other entries kept as
        // written (review: the record was written anew, `1.50` as `1.5`, a
        // big integer rounded).
        for (text, kept) in [
            (
                r#"{"anomalous":"?", "n": 1.50 ,"big":123456789012345678901234567890,"anomaly_error":"x","z":1e3}"#,
                r#"{"n": 1.50,"big":123456789012345678901234567890,"z":1e3"#,
            ),
            (r#"{ "anomaly_score" : 0.1 }"#, "{"),
            (r#"{"a":{"anomalous":1},"anomalous":true,"a":2}"#, r#"{"a":{"anomalous":1},"a":2"#),
        ] {
            let mut record: Map<String, Value> = serde_json::from_str(text).unwrap();
            let mut out = Vec::new();
            assert!(write_annotated(text.as_bytes(), &record, &verdict, &mut out), "{text}");
            let written = String::from_utf8(out).unwrap();
            assert!(written.starts_with(kept), "{written}");
            annotate(&mut record, &verdict);
            assert_eq!(serde_json::from_str::<Map<String, Value>>(&written).unwrap(), record, "{text}");
        }
        let mut out = Vec::new();
        assert!(!write_annotated(b"[1]", &Map::new(), &verdict, &mut out));
        assert!(out.is_empty());
    }
}
