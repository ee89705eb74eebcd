//! Verdicts back into a shipper's record: the fields every filter adds to
//! the JSON records it passes on — the Fluent Bit module, `logarithm filter`
//! (any NDJSON pipe) and rsyslog's `mmexternal` — written here once, so
//! every pipeline routes on the same names.
//!
//! | field           | value |
//! |-----------------|-------|
//! | `anomaly_score` | the calibrated score in [0, 1] (`Verdict::score`) |
//! | `anomalous`     | `true` when the score is at or above the threshold |
//! | `anomaly_terms` | the terms that explain it, largest share first: `"oom (unseen)"`, `"severity:err (failed)"` |
//! | `anomaly_error` | instead of the three above: why the record was passed on unscored |

use crate::detector::{Term, Verdict};
use serde_json::{Map, Value};

/// The calibrated score.
pub const SCORE: &str = "anomaly_score";
/// Whether the record is an anomaly.
pub const ANOMALOUS: &str = "anomalous";
/// The explaining terms.
pub const TERMS: &str = "anomaly_terms";
/// Why the record was not scored.
pub const ERROR: &str = "anomaly_error";

impl Term {
    /// The term as shown to people: its text, marked `(unseen)` when the
    /// model never saw it.
    pub fn label(&self) -> String {
        if self.unseen { format!("{} (unseen)", self.text) } else { self.text.clone() }
    }
}

/// The verdict's fields, named as in the module docs' table.
pub fn verdict_fields(verdict: &Verdict) -> [(&'static str, Value); 3] {
    let score = serde_json::Number::from_f64(verdict.score).map_or(Value::Null, Value::Number);
    let terms = verdict.terms.iter().map(|t| Value::String(t.label())).collect();
    [(SCORE, score), (ANOMALOUS, Value::Bool(verdict.anomalous)), (TERMS, Value::Array(terms))]
}

/// Adds the verdict's fields to a record (replacing any of the same name).
pub fn annotate(record: &mut Map<String, Value>, verdict: &Verdict) {
    for (k, v) in verdict_fields(verdict) {
        record.insert(k.to_owned(), v);
    }
}

/// Marks a record as passed on unscored, and why.
pub fn annotate_error(record: &mut Map<String, Value>, why: &str) {
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
        let verdict = Verdict {
            score: 0.9995,
            anomalous: true,
            terms: vec![
                Term { text: "oom".into(), weight: 0.6, unseen: true },
                Term { text: "severity:err (failed)".into(), weight: 0.3, unseen: false },
            ],
        };
        let mut record: Map<String, Value> = serde_json::from_str(r#"{"log":"x","anomaly_score":"old"}"#).unwrap();
        annotate(&mut record, &verdict);
        assert_eq!(
            Value::Object(record),
            serde_json::json!({"log": "x", "anomaly_score": 0.9995, "anomalous": true, "anomaly_terms": ["oom (unseen)", "severity:err (failed)"]})
        );
        let mut record = raw_line_record("not json");
        annotate_error(&mut record, "why");
        assert_eq!(Value::Object(record), serde_json::json!({"log": "not json", "anomaly_error": "why"}));
    }
}
