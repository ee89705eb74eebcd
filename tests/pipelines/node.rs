//! The detector component in Node.js: the very file the native host embeds,
//! transpiled to JavaScript by jco (`tests/node`, installed with
//! `npm ci --prefix tests/node`) and run by `tests/node/score.mjs` on V8's
//! WebAssembly engine instead of wasmtime.

use super::*;
use logarithm::engine::EMBEDDED_COMPONENT;
use logarithm_detector::{Burst, Detector, Error, LogRecord, Repeat, Report, Term, Verdict};
use std::io::Write;
use std::process::Output;

/// `tests/node`: the npm package with jco and `score.mjs`.
fn node_dir() -> PathBuf {
    root().join("tests/node")
}

/// jco, as `npm ci --prefix tests/node` installs it.
fn jco() -> PathBuf {
    let path = node_dir().join("node_modules/.bin/jco");
    assert!(path.is_file(), "jco is missing ({}): run `npm ci --prefix tests/node` (Node.js 20 or later) first", path.display());
    path
}

/// Writes the embedded component to `work` and transpiles it with jco into a
/// fresh directory under `tests/node/transpiled`, removed when dropped. The
/// output must live under `tests/node`: the generated module imports the
/// WASI shims by package name (`@bytecodealliance/preview2-shim/...`), which
/// Node resolves from the nearest `node_modules`.
fn transpile(work: &Path) -> tempfile::TempDir {
    let component = work.join("logarithm_detector.wasm");
    fs::write(&component, EMBEDDED_COMPONENT).unwrap();
    let parent = node_dir().join("transpiled");
    fs::create_dir_all(&parent).unwrap();
    let out = tempfile::Builder::new().prefix("detector-").tempdir_in(&parent).unwrap();
    let mut jco = Command::new(jco());
    jco.arg("transpile").arg(&component).args(["--name", "detector", "--no-typescript", "--quiet", "-o"]).arg(out.path());
    ok(&jco.output().unwrap_or_else(|e| panic!("cannot run jco (is `node` on PATH?): {e}")));
    out
}

/// Runs `node score.mjs TRANSPILED MODEL PASSPHRASE` on `records`, one JSON
/// object a line.
fn node_score(transpiled: &Path, model: &Path, passphrase: &str, records: &[LogRecord]) -> Output {
    node_score_with(&[], transpiled, model, passphrase, records)
}

/// [`node_score`] with `score.mjs` flags (`--packed`, `--explain-anomalies`).
fn node_score_with(flags: &[&str], transpiled: &Path, model: &Path, passphrase: &str, records: &[LogRecord]) -> Output {
    let input: String = records.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
    let mut child = Command::new("node")
        .arg(node_dir().join("score.mjs"))
        .args(flags)
        .arg(transpiled)
        .arg(model)
        .arg(passphrase)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node (Node.js 20 or later is needed): {e}"));
    // Feed stdin from a thread: score.mjs prints verdicts while it reads, so
    // writing everything first could fill both pipes and deadlock.
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        // score.mjs stops reading when it refuses the model.
        if let Err(e) = stdin.write_all(input.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing to score.mjs: {e}");
        }
    });
    // A few seconds normally; a hang (seen once in CI) fails here instead
    // of eating CI's time.
    let out = output_within(child, 300, "node score.mjs");
    feeder.join().unwrap();
    out
}

/// A verdict as `score.mjs` prints it. The score is taken from its exact
/// bits (`score_bits`): serde_json's default float parser (no
/// `float_roundtrip`) is off by an ULP for about one shortest-round-trip
/// decimal in ten. A weight is an f32 printed as an f64, which that parser
/// gets within an ULP of f64, far closer than half an ULP of f32, so
/// rounding it back to f32 is exact.
fn node_verdict(line: &str) -> Verdict {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON from score.mjs {line:?}: {e}"));
    let bits = v["score_bits"].as_str().and_then(|b| u64::from_str_radix(b, 16).ok());
    let terms = v["terms"].as_array().unwrap_or_else(|| panic!("no terms in {line}"));
    Verdict {
        score: f64::from_bits(bits.unwrap_or_else(|| panic!("no score_bits in {line}"))),
        anomalous: v["anomalous"].as_bool().unwrap_or_else(|| panic!("no anomalous in {line}")),
        terms: terms
            .iter()
            .map(|t| Term {
                text: t["text"].as_str().unwrap().to_owned(),
                weight: t["weight"].as_f64().unwrap() as f32,
                unseen: t["unseen"].as_bool().unwrap(),
            })
            .collect(),
        report: match v["report"].as_str() {
            Some("quiet") => Report::Quiet,
            Some("new") => Report::New,
            Some("worse") => Report::Worse,
            Some("counted") => Report::Counted,
            other => panic!("report {other:?} in {line}"),
        },
        repeat: (!v["repeat"].is_null()).then(|| Repeat {
            template: v["repeat"]["template"].as_str().unwrap().to_owned(),
            count: v["repeat"]["count"].as_u64().unwrap(),
            first_timestamp_us: v["repeat"]["first_timestamp_us"].as_i64(),
        }),
        burst: (!v["burst"].is_null()).then(|| Burst {
            template: v["burst"]["template"].as_str().unwrap().to_owned(),
            count: v["burst"]["count"].as_u64().unwrap(),
            window_secs: v["burst"]["window_secs"].as_u64().unwrap() as u32,
            usual: v["burst"]["usual"].as_u64().unwrap() as u32,
        }),
    }
}

/// Asserts that two verdicts are the same bit for bit: `==` on floats would
/// let `0.0` pass for `-0.0`.
fn assert_identical(node: &Verdict, native: &Verdict, what: &str) {
    assert_eq!(node.score.to_bits(), native.score.to_bits(), "{what}: score {} in Node, {} native", node.score, native.score);
    assert_eq!(node.anomalous, native.anomalous, "{what}: anomalous");
    assert_eq!((node.report, &node.repeat, &node.burst), (native.report, &native.repeat, &native.burst), "{what}: what it reported");
    assert_eq!(node.terms.len(), native.terms.len(), "{what}: terms {:?} in Node, {:?} native", node.terms, native.terms);
    for (n, t) in node.terms.iter().zip(&native.terms) {
        assert_eq!((&n.text, n.unseen), (&t.text, t.unseen), "{what}: terms {:?} in Node, {:?} native", node.terms, native.terms);
        assert_eq!(n.weight.to_bits(), t.weight.to_bits(), "{what}: weight of {:?}: {} in Node, {} native", t.text, n.weight, t.weight);
    }
}

/// Fake syslog lines with injected anomalies, plus records that stress the
/// boundary: empty, long and non-ASCII, escapes, options set and unset.
fn records(dir: &Path) -> Vec<LogRecord> {
    let log = dir.join("mixed.log");
    fakelogs(&log, 2_000, 40, 99, "syslog");
    let mut records: Vec<LogRecord> = fs::read_to_string(&log).unwrap().lines().map(logarithm::sources::parse_record).collect();
    records.extend([
        LogRecord::from_message(""),
        LogRecord::from_message("ünïcödé \u{1F600} ".repeat(2000)),
        LogRecord { priority: Some(0), source: "kernel".into(), ..LogRecord::from_message("never seen words entirely") },
        // Sources and hosts in other scripts: `score-packed` counts their UTF-8 bytes.
        LogRecord {
            source: "служба-日本\u{1F680}".into(), host: "höst-ü".into(), ..LogRecord::from_message("Ошибка: ディスク")
        },
        LogRecord {
            timestamp_us: Some(1_767_225_599_999_999),
            source: "sshd".into(),
            host: "web01".into(),
            priority: Some(3),
            message: "Failed password for root from 203.0.113.9 port 52222 ssh2".into(),
        },
        LogRecord { timestamp_us: Some(-1_000_000), priority: Some(7), ..LogRecord::from_message("before the epoch") },
        LogRecord::from_message("tab\tquote\" backslash\\ nul\0 bell\u{7} crlf\r\n line\u{2028}separator"),
    ]);
    records
}

/// Issue 9: the same component file the native host embeds, run in Node via
/// jco, gives verdicts bit-identical to the native detector's on ~2,000
/// records (score as f64 bits, anomalous, every term's text, weight as f32
/// bits and unseen), and refuses a wrong passphrase with the `wrong-key`
/// error and both key fingerprints.
#[test]
fn component_in_node_via_jco_gives_bit_identical_verdicts() {
    let work = tempfile::tempdir().unwrap();
    let transpiled = transpile(work.path());
    let t = trained();
    let model = t.data.join("models/model-000001.lgm");
    let bytes = fs::read(&model).unwrap();

    let records = records(t.dir.path());
    let native = Detector::load(&bytes, t.key).unwrap().score_batch(&records);
    let flagged = native.iter().filter(|v| v.anomalous).count();
    assert!((30..200).contains(&flagged), "{flagged} anomalous: the records should exercise both verdicts");
    assert!(native.iter().flat_map(|v| &v.terms).any(|t| t.unseen), "the records should exercise unseen terms");

    let stdout = ok(&node_score(transpiled.path(), &model, t.key, &records));
    let node: Vec<Verdict> = stdout.lines().map(node_verdict).collect();
    assert_eq!(node.len(), records.len(), "one verdict per record");
    for (i, (n, v)) in node.iter().zip(&native).enumerate() {
        assert_identical(n, v, &format!("record {i} ({:?})", records[i]));
    }

    // Issue 11: through `score-packed` too (the text of every script packed
    // by its UTF-8 length in JavaScript), with normal verdicts unexplained,
    // so that most come back as a score alone.
    let mut quiet = Detector::load(&bytes, t.key).unwrap();
    quiet.set_explain(false);
    let native = quiet.score_batch(&records);
    assert!(native.iter().filter(|v| !v.has_more_than_a_score()).count() > records.len() / 2);
    let stdout = ok(&node_score_with(&["--packed", "--explain-anomalies"], transpiled.path(), &model, t.key, &records));
    let node: Vec<Verdict> = stdout.lines().map(node_verdict).collect();
    assert_eq!(node.len(), records.len(), "one verdict per record, packed");
    for (i, (n, v)) in node.iter().zip(&native).enumerate() {
        assert_identical(n, v, &format!("record {i}, packed ({:?})", records[i]));
    }

    let Err(Error::WrongKey { expected, given }) = Detector::load(&bytes, "not the key") else {
        panic!("the native detector took a wrong key")
    };
    let out = node_score(transpiled.path(), &model, "not the key", &records[..1]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a wrong key: {stderr}");
    assert!(out.stdout.is_empty(), "no verdicts with a wrong key");
    for needle in ["\"wrong-key\"", &expected, &given] {
        assert!(stderr.contains(needle), "{needle:?} missing from {stderr}");
    }
}
