//! Where results leave: verdicts printed as human-readable lines, JSON lines
//! or CSV.
//!
//! Two kinds of records leave (issue 15): *lines*, and *repeats* — the
//! summary of a kind of anomaly that keeps happening, raised when its count
//! crosses 10, 100, 1,000… An anomaly of a kind already reported is counted
//! against that report rather than printed again: without `--all` only the
//! lines that raise an alert (`reported`) and the repeats are printed.
//!
//! JSON: one object per line with `kind: "line"`, `timestamp` (RFC 3339,
//! or `null`), `source`, `host`, `message`, `score`, `anomalous`,
//! `reported` (this line raised an alert), `report` (for an anomaly: `new`,
//! `worse` or `counted`), `threshold`, `terms` (`[{"term", "weight",
//! "unseen"}]`), plus `origin` and `line` (where the record was read), `raw`
//! (the line as read, header included), `truncated` when the line was cut,
//! and `fields` (journal `unit` and `pid`, the other keys of NDJSON input)
//! when there are any. A line passed on unscored (a bug hit while parsing
//! it) has `score: null` and `error`, in every format. A repeat is
//! `{"kind": "repeat", "template", "count", "first_timestamp", "timestamp",
//! "source", "host", "score", "origin", "line"}`, the last six from the
//! line that crossed the count (`first_timestamp` only when known). A burst
//! (issue 12: a kind logged far faster than in training) is the same with
//! `kind: "burst"` and `window_secs` and `usual` instead of
//! `first_timestamp`.
//!
//! CSV: a header row and the same columns up to `line`, `terms` as
//! `term;term (unseen)`, then `error`, `kind`, `reported`, `count`,
//! `first_timestamp`, `window_secs` and `usual`; a repeat's or a burst's
//! `message` is its template.

use crate::sources::Line;
use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use logarithm_detector::{Burst, Repeat, Term, Verdict};
use serde::Serialize;
use std::borrow::Cow;
use std::io::Write;

/// Output format (`-f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One readable line per record.
    Human,
    /// One JSON object per line.
    Json,
    /// CSV with a header row.
    Csv,
}

/// Writes verdicts in one format.
pub struct Printer<W: Write> {
    format: Format,
    sink: Sink<W>,
}

enum Sink<W: Write> {
    Plain(W),
    Csv(Box<csv::Writer<W>>),
}

#[derive(Serialize)]
struct JsonTerm<'a> {
    term: &'a str,
    weight: f32,
    unseen: bool,
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    kind: &'static str,
    timestamp: Option<String>,
    source: &'a str,
    host: &'a str,
    message: &'a str,
    score: Option<f64>,
    anomalous: bool,
    reported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'static str>,
    threshold: f64,
    terms: Vec<JsonTerm<'a>>,
    origin: &'a str,
    line: u64,
    raw: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    fields: std::collections::BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// A record of its own about a line's kind.
#[derive(Clone, Copy)]
enum Summary<'a> {
    /// A kind of anomaly that keeps happening.
    Repeat(&'a Repeat),
    /// A kind logged far faster than in training.
    Burst(&'a Burst),
}

impl Summary<'_> {
    /// Its `kind` in JSON and CSV.
    fn kind(self) -> &'static str {
        match self {
            Summary::Repeat(_) => "repeat",
            Summary::Burst(_) => "burst",
        }
    }
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    kind: &'static str,
    template: &'a str,
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usual: Option<u32>,
    timestamp: Option<String>,
    source: &'a str,
    host: &'a str,
    score: f64,
    origin: &'a str,
    line: u64,
}

/// Standard output whose write errors say so (`cannot write to stdout: No
/// space left on device`), keeping their kind (a closed pipe stays one).
pub struct Stdout(pub std::io::StdoutLock<'static>);

impl std::io::Write for Stdout {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes).map_err(named)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(named)
    }
}

fn named(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot write to stdout: {e}"))
}

/// RFC 3339 (UTC, microseconds when present) of a microsecond timestamp.
pub fn rfc3339(timestamp_us: i64) -> Option<String> {
    use chrono::Datelike;
    // RFC 3339 has four-digit years: a record's time outside them (a Unix
    // time field of -99999999999999) is no time to print.
    DateTime::<Utc>::from_timestamp_micros(timestamp_us)
        .filter(|t| (0..=9999).contains(&t.year()))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Text for a terminal: control characters (line breaks, ESC, DEL, C1
/// controls, U+2028/2029) and bidirectional overrides (U+202A–202E,
/// U+2066–2069, which make text read backwards) are shown escaped (`\n`,
/// `\u{1b}`, `\u{202e}`), so that a logged message cannot forge an
/// `ANOMALY` line, recolour the terminal or disguise itself.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_on_a_terminal) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(|c| if unsafe_on_a_terminal(c) { c.escape_default().to_string() } else { c.to_string() }).collect())
}

/// The characters [`printable`] escapes.
fn unsafe_on_a_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A CSV cell a spreadsheet will not run and a terminal will not obey: its
/// control characters escaped as [`printable`] escapes them (a CSV is read
/// with `cat` and `column` too), then text starting with `=`, `+`, `-` or
/// `@` prefixed with `'` (OWASP's advice against formula injection), so
/// `-- MARK --` shows as `'-- MARK --`. A lone `-` (stdin's origin) is no
/// formula and stays as it is.
pub fn inert(text: &str) -> Cow<'_, str> {
    let text = printable(text);
    match text.chars().next() {
        Some('=' | '+' | '-' | '@') if text != "-" => Cow::Owned(format!("'{text}")),
        _ => text,
    }
}

/// JSON as serde_json writes it, but with the characters [`printable`]
/// escapes that JSON allows raw (C1 controls such as U+009B, a CSI to some
/// terminals; U+2028/2029; bidirectional overrides) written as `\u` escapes:
/// `-f json` is often read on a terminal. C0 controls JSON escapes itself.
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, out: &mut W, fragment: &str) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| unsafe_on_a_terminal(c)) {
            out.write_all(&rest.as_bytes()[..at])?;
            write!(out, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        out.write_all(rest.as_bytes())
    }
}

/// One JSON object and a line break, written [`TerminalSafe`]ly.
fn write_json<W: Write>(out: &mut W, value: &impl Serialize) -> std::io::Result<()> {
    // As io::Error, so that a closed pipe is recognised as one.
    value.serialize(&mut serde_json::Serializer::with_formatter(&mut *out, TerminalSafe)).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// A score for people: 4 decimals, and as it nears 1, enough more to show
/// two significant digits of `1 − score`, so that anomalies (all `1.0000`
/// at 4 decimals) still rank visibly: `0.999988`, `0.99999972`.
pub fn score_text(score: f64) -> String {
    let rest = 1.0 - score;
    let digits = if rest > 0.0 { ((-rest.log10()).ceil() as usize + 1).clamp(4, 16) } else { 4 };
    format!("{score:.digits$}")
}

/// Terms as `a, b (unseen)`.
pub fn terms_text(terms: &[Term], sep: &str) -> String {
    terms.iter().map(Term::label).collect::<Vec<_>>().join(sep)
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`.
    pub fn new(format: Format, out: W) -> Self {
        let sink = match format {
            Format::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
            Format::Human | Format::Json => Sink::Plain(out),
        };
        Self { format, sink }
    }

    /// Writes what a verdict reports: with `all`, the line whatever its
    /// verdict; else the line if it raises an alert. Then the repeat
    /// summary and the burst it raised, if any.
    pub fn report(&mut self, line: &Line, verdict: &Verdict, threshold: f64, all: bool) -> Result<()> {
        if all || verdict.reported() {
            self.write(line, Some(verdict), threshold)?;
        }
        if let Some(repeat) = &verdict.repeat {
            self.write_summary(line, verdict, Summary::Repeat(repeat))?;
        }
        if let Some(burst) = &verdict.burst {
            self.write_summary(line, verdict, Summary::Burst(burst))?;
        }
        Ok(())
    }

    /// Writes a record of its own about `line`'s kind: a repeat summary or
    /// a burst it raised.
    fn write_summary(&mut self, line: &Line, verdict: &Verdict, summary: Summary<'_>) -> Result<()> {
        let r = &line.record;
        let timestamp = r.timestamp_us.and_then(rfc3339);
        let (template, count) = match summary {
            Summary::Repeat(s) => (&s.template, s.count),
            Summary::Burst(b) => (&b.template, b.count),
        };
        let first = match summary {
            Summary::Repeat(s) => s.first_timestamp_us.and_then(rfc3339),
            Summary::Burst(_) => None,
        };
        let (window_secs, usual) = match summary {
            Summary::Repeat(_) => (None, None),
            Summary::Burst(b) => (Some(b.window_secs), Some(b.usual)),
        };
        let kind = summary.kind();
        match &mut self.sink {
            Sink::Plain(out) if self.format == Format::Human => {
                let what = match summary {
                    Summary::Repeat(_) => first.as_deref().map(|t| format!(" since {t}")).unwrap_or_default(),
                    Summary::Burst(b) => format!(" in {} s (usually ≤ {})", b.window_secs, b.usual),
                };
                let mark = if matches!(summary, Summary::Repeat(_)) { "REPEAT " } else { "BURST  " };
                writeln!(
                    out,
                    "{mark} {} {count} lines like \"{}\"{what}, the last at {} line {}",
                    score_text(verdict.score),
                    printable(template),
                    printable(&line.origin),
                    line.line_no
                )?;
            }
            Sink::Plain(out) => {
                let rec = JsonSummary {
                    kind,
                    template,
                    count,
                    first_timestamp: first,
                    window_secs,
                    usual,
                    timestamp,
                    source: &r.source,
                    host: &r.host,
                    score: verdict.score,
                    origin: &line.origin,
                    line: line.line_no,
                };
                write_json(out, &rec)?;
            }
            Sink::Csv(csv) => {
                csv.serialize((
                    timestamp.unwrap_or_default(),
                    inert(&r.source),
                    inert(&r.host),
                    inert(template),
                    verdict.score,
                    verdict.anomalous,
                    "",
                    "",
                    inert(&line.origin),
                    line.line_no,
                    // Nested: serde has no tuples of 17; csv flattens them.
                    ("", kind, "", count, first.unwrap_or_default(), window_secs, usual),
                ))
                .map_err(csv_error)?;
            }
        }
        Ok(())
    }

    /// Writes one line with its verdict, or passed on unscored (`None`,
    /// with its `Line::error`).
    pub fn write(&mut self, line: &Line, verdict: Option<&Verdict>, threshold: f64) -> Result<()> {
        let r = &line.record;
        let unscored = Verdict::new(f64::NAN, threshold, Vec::new());
        let scored = verdict.is_some();
        let verdict = verdict.unwrap_or(&unscored);
        let error = line.error.as_deref().filter(|_| !scored);
        let timestamp = r.timestamp_us.and_then(rfc3339);
        match &mut self.sink {
            Sink::Plain(out) if self.format == Format::Human => {
                let mark = match (scored, verdict.anomalous, verdict.reported()) {
                    (false, _, _) => "error  ",
                    (true, true, true) => "ANOMALY",
                    (true, true, false) => "counted",
                    (true, false, _) => "ok     ",
                };
                let ts = timestamp.as_deref().unwrap_or("-");
                let (host, source) = (printable(&r.host), printable(&r.source));
                let who = match (host.is_empty(), source.is_empty()) {
                    (false, false) => format!("{host} {source}: "),
                    (true, false) => format!("{source}: "),
                    (false, true) => format!("{host}: "),
                    (true, true) => String::new(),
                };
                let cut = if line.truncated { " [truncated]" } else { "" };
                let score = if scored { score_text(verdict.score) } else { "-".to_owned() };
                let why = match (error, verdict.report) {
                    (Some(e), _) => format!(" [{}]", printable(e)),
                    (None, logarithm_detector::Report::Worse) => " [worse than its kind's earlier alert]".to_owned(),
                    _ => String::new(),
                };
                writeln!(out, "{mark} {score} {ts} {who}{}{cut}{why}", printable(&r.message))?;
                if verdict.reported() && !verdict.terms.is_empty() {
                    writeln!(out, "        terms: {}", printable(&terms_text(&verdict.terms, ", ")))?;
                }
            }
            Sink::Plain(out) => {
                let rec = JsonRecord {
                    kind: "line",
                    timestamp,
                    source: &r.source,
                    host: &r.host,
                    message: &r.message,
                    score: scored.then_some(verdict.score),
                    anomalous: verdict.anomalous,
                    reported: verdict.reported(),
                    report: verdict.report.name(),
                    threshold,
                    terms: verdict.terms.iter().map(|t| JsonTerm { term: &t.text, weight: t.weight, unseen: t.unseen }).collect(),
                    origin: &line.origin,
                    line: line.line_no,
                    raw: &line.raw,
                    truncated: line.truncated,
                    fields: line.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                    error,
                };
                write_json(out, &rec)?;
            }
            Sink::Csv(csv) => {
                csv.serialize((
                    timestamp.unwrap_or_default(),
                    inert(&r.source),
                    inert(&r.host),
                    inert(&r.message),
                    scored.then_some(verdict.score),
                    verdict.anomalous,
                    threshold,
                    inert(&terms_text(&verdict.terms, ";")),
                    inert(&line.origin),
                    line.line_no,
                    // Nested: serde has no tuples of 17; csv flattens them.
                    (inert(error.unwrap_or_default()), "line", verdict.reported(), "", "", "", ""),
                ))
                .map_err(csv_error)?;
            }
        }
        Ok(())
    }

    /// Writes the header, if the format has one.
    pub fn header(&mut self) -> Result<()> {
        if let Sink::Csv(csv) = &mut self.sink {
            csv.write_record([
                "timestamp",
                "source",
                "host",
                "message",
                "score",
                "anomalous",
                "threshold",
                "terms",
                "origin",
                "line",
                "error",
                "kind",
                "reported",
                "count",
                "first_timestamp",
                "window_secs",
                "usual",
            ])
            .map_err(csv_error)?;
        }
        Ok(())
    }

    /// Flushes everything written so far.
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.sink {
            Sink::Plain(out) => out.flush()?,
            Sink::Csv(csv) => csv.flush()?,
        }
        Ok(())
    }
}

/// A CSV error, with its I/O error unwrapped so that a closed pipe is
/// recognised as one.
fn csv_error(e: csv::Error) -> anyhow::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io.into(),
        kind => anyhow::anyhow!("cannot write CSV: {kind:?}"),
    }
}

#[cfg(test)]
mod tests {
    /// Issue 10: a message cannot forge lines or run in a spreadsheet.
    #[test]
    fn output_cannot_be_forged() {
        assert_eq!(super::printable("ok\nANOMALY 1.0 forged\u{1b}[31m"), "ok\\nANOMALY 1.0 forged\\u{1b}[31m");
        assert_eq!(super::printable("Señal 日本"), "Señal 日本");
        assert_eq!(super::printable("rlo \u{202e}1.0 YLAMONA"), "rlo \\u{202e}1.0 YLAMONA");
        assert_eq!(super::inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(super::inert("-- MARK --"), "'-- MARK --");
        assert_eq!(super::inert("plain"), "plain");
        assert_eq!(super::inert("-"), "-", "stdin's origin is no formula");
        // A CSV cell cannot recolour a terminal either.
        assert_eq!(super::inert("\tx \u{1b}[31m \u{9b}31m"), "\\tx \\u{1b}[31m \\u{9b}31m");
        // JSON: C1, U+2028 and bidirectional overrides as \u escapes, C0
        // as serde_json escapes it, and the text reads back the same.
        let text = "a\u{1b}[31m \u{9b}31m \u{202e}x \u{2028} Señal 日本 🔥\"\\";
        let mut out = Vec::new();
        super::write_json(&mut out, &serde_json::json!({ "message": text })).unwrap();
        let json = String::from_utf8(out).unwrap();
        assert_eq!(json, "{\"message\":\"a\\u001b[31m \\u009b31m \\u202ex \\u2028 Señal 日本 🔥\\\"\\\\\"}\n");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap()["message"], text);
    }

    /// Issue 10: a line a bug kept from parsing is printed unscored, with
    /// why, in every format (and never as an anomaly).
    #[test]
    fn unscored_lines_say_why() {
        use crate::checkpoint::Position;
        use crate::sources::Line;
        let line = Line {
            origin: "x.log".into(),
            line_no: 3,
            raw: "raw text".into(),
            record: logarithm_detector::LogRecord::from_message("raw text"),
            truncated: false,
            extra: Vec::new(),
            position: Position::None,
            error: Some("parsing failed (a bug: boom); passed on unscored".into()),
        };
        let print = |format| {
            let mut printer = super::Printer::new(format, Vec::new());
            printer.header().unwrap();
            printer.write(&line, None, 0.999).unwrap();
            printer.flush().unwrap();
            match printer.sink {
                super::Sink::Plain(out) => String::from_utf8(out).unwrap(),
                super::Sink::Csv(csv) => String::from_utf8(csv.into_inner().unwrap()).unwrap(),
            }
        };
        let json: serde_json::Value = serde_json::from_str(&print(super::Format::Json)).unwrap();
        assert_eq!((json["score"].is_null(), &json["anomalous"]), (true, &serde_json::json!(false)));
        assert!(json["error"].as_str().unwrap().contains("boom"));
        let csv = print(super::Format::Csv);
        assert!(csv.lines().next().unwrap().ends_with(",error,kind,reported,count,first_timestamp,window_secs,usual"), "{csv}");
        assert!(csv.contains(",,false,0.999,,x.log,3,parsing failed"), "{csv}");
        let human = print(super::Format::Human);
        assert!(human.starts_with("error   - - raw text [parsing failed"), "{human}");
    }

    /// Times print as RFC 3339, whose years have four digits, or not at all.
    #[test]
    fn times_outside_rfc_3339_years_are_not_printed() {
        assert_eq!(super::rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(super::rfc3339(-99_999_999_999_999_000), None, "the year -1199");
        assert_eq!(super::rfc3339(253_402_300_800_000_000), None, "the year 10000");
        assert_eq!(super::rfc3339(253_402_300_799_000_000).as_deref(), Some("9999-12-31T23:59:59Z"));
    }

    /// Issue 14: anomalies no longer all print as `1.0000`.
    #[test]
    fn scores_near_1_keep_their_rank() {
        assert_eq!(super::score_text(0.5), "0.5000");
        assert_eq!(super::score_text(0.99912), "0.99912");
        assert_eq!(super::score_text(0.9999878), "0.999988");
        assert_eq!(super::score_text(0.99999972), "0.99999972");
        assert_eq!(super::score_text(1.0), "1.0000");
    }
}
