//! Fuzz targets for everything Logarithm reads from outside (issue 10): log
//! lines and NDJSON records, the chunks Fluent Bit hands the native plugin,
//! the terms and features made of them, model
//! files (before and after authentication), the config file and the
//! checkpoint file.
//!
//! Each target is a plain function of any bytes that must return without
//! panicking, whatever the bytes. Two drivers run the same functions:
//! - `cargo fuzz run --fuzz-dir guest/fuzz TARGET` (nightly): libFuzzer,
//!   coverage-guided, through the small drivers in `fuzz_targets/`;
//! - `cargo test -p logarithm-fuzz` (stable, part of `cargo test
//!   --workspace`): a short run of every target over its [`seeds`], the
//!   files in `regressions/TARGET/` (inputs that once failed) and a few
//!   thousand deterministic mutations of them (`tests/short_run.rs`).

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use logarithm_detector::calibration::Calibration;
use logarithm_detector::features::{self, Vocabulary};
use logarithm_detector::modelfile::{self, KdfParams};
use logarithm_detector::network::{Activation, Autoencoder};
use logarithm_detector::parse;
use logarithm_detector::tokenizer::Tokenizer;
use logarithm_detector::{Detector, LogRecord, Model, ModelMeta};
use std::borrow::Cow;

/// A fuzz target: any bytes in, no panic.
pub type Target = fn(&[u8]);

/// Every target, by the name its driver and its `regressions/` folder have.
pub const TARGETS: &[(&str, Target)] = &[
    ("parse", parse),
    ("fluent_bit_chunk", fluent_bit_chunk),
    ("features", features),
    ("model_file", model_file),
    ("model_payload", model_payload),
    #[cfg(feature = "host")]
    ("config", config),
    #[cfg(feature = "host")]
    ("checkpoint", checkpoint),
];

/// The passphrase the `model_file` target seals with.
pub const KEY: &str = "fuzzing key";

/// Cheap key derivation for sealing in a loop (64 KiB, one pass): the
/// target is the decoder, not Argon2.
pub const FAST_KDF: KdfParams = KdfParams { m_cost_kib: 64, t_cost: 1, p_cost: 1 };

/// Two clocks: UTC, and a zone east of it (RFC 3164 timestamps have no year
/// and no zone, so both come from `now`).
fn clocks() -> (DateTime<Utc>, DateTime<FixedOffset>) {
    let utc = Utc.with_ymd_and_hms(2026, 1, 1, 0, 30, 0).unwrap();
    (utc, utc.with_timezone(&FixedOffset::east_opt(5 * 3600 + 1800).unwrap()))
}

/// A raw log line or an NDJSON record (`parse::parse_text`, which every
/// reader calls), the line decoded lossily as the readers do; and a JSON
/// object of any shape through `parse::from_object` (journald, `logarithm
/// filter`).
pub fn parse(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let (utc, east) = clocks();
    let (record, extras) = parse::parse_text(&line, &utc);
    let _ = parse::parse_text(&line, &east);
    let _ = parse::parse_line(&line, &east);
    if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = parse::from_object(&obj, &utc);
        let _ = parse::extras(&obj);
    }
    // What a record promises its consumers.
    assert!(record.priority.is_none_or(|p| p <= 7), "priority {:?} from {line:?}", record.priority);
    drop(extras);
}

/// A chunk of msgpack events as Fluent Bit hands it to the native plugin
/// (`fluentbit_plugin::filter_chunk`), in every setting, with a model and
/// without. What it promises Fluent Bit: an untouched chunk leaves nothing
/// written; a rewritten one is whole msgpack values again (after an error
/// the chunk passes as it came, whatever was written).
pub fn fluent_bit_chunk(data: &[u8]) {
    use logarithm_detector::fluentbit_plugin::{Annotate, How, Pass, filter_chunk};
    let detector = tiny_detector();
    for pass in [Pass::All, Pass::Anomalies, Pass::Marked] {
        for annotate in [Annotate::All, Annotate::Anomalies] {
            for model in [Ok(&detector), Err("no model")] {
                let mut out = Vec::new();
                match filter_chunk(data, model, How { pass, annotate }, &mut out) {
                    Ok(false) => assert!(out.is_empty(), "nothing written for a chunk that passes as it is"),
                    // The chunk passes unscored; what was written is dropped.
                    Err(_) => {}
                    Ok(true) => {
                        let mut rest = &out[..];
                        while !rest.is_empty() {
                            rmpv::decode::read_value_ref(&mut rest).expect("a rewritten chunk is msgpack values");
                        }
                    }
                }
            }
        }
    }
}

/// A small vocabulary with a masked term, a word and a source, for the
/// `features` target.
fn vocabulary() -> Vocabulary {
    let terms = ["<num>", "<ip>", "error", "failed", "src:sshd", "connection", "<hex>", "user"];
    let mut vocab = Vocabulary::new(terms.iter().map(|t| t.to_string()).collect(), vec![1.0, 1.5, 2.0, 2.5, 1.2, 0.7, 3.0, 0.9], 4.0);
    vocab.rebuild_index();
    vocab
}

/// The tokenizer (masking on and off) and feature extraction of a line:
/// the terms, their TF-IDF features and the severity read from them.
pub fn features(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    let (utc, _) = clocks();
    let record = parse::parse_line(&line, &utc);
    let vocab = vocabulary();
    for mask in [true, false] {
        let tokenizer = Tokenizer { mask };
        let mut raw = Vec::new();
        tokenizer.tokenize(&line, &mut raw);
        assert!(raw.len() <= logarithm_detector::tokenizer::MAX_TOKENS, "{} tokens", raw.len());
        let mut terms: Vec<Cow<'_, str>> = Vec::new();
        features::record_terms(&tokenizer, &record, &mut terms);
        let _ = features::severity(record.priority, &terms);
        let f = features::features_of(&tokenizer, &vocab, &record);
        let share = f.unseen_share();
        assert!((0.0..=1.0).contains(&share), "unseen share {share} of {line:?}");
    }
}

/// A small but complete model: what the `model_payload` and `model_file`
/// seeds are made of.
pub fn tiny_model() -> Model {
    use ndarray::{Array1, Array2};
    let vocab = Vocabulary::new(vec!["error".into(), "<num>".into(), "src:sshd".into()], vec![1.0, 2.0, 1.5], 3.0);
    let net = Autoencoder::new(
        Array2::from_elem((3, 2), 0.1),
        Array1::zeros(2),
        Activation::Relu,
        vec![],
        Array2::from_elem((3, 2), 0.2),
        Array1::zeros(3),
    )
    .unwrap();
    let mut raws = vec![0.1, 0.2, 0.3, 0.4];
    Model {
        meta: ModelMeta { created_at_unix: 1_700_000_000, ..ModelMeta::default() },
        tokenizer: Tokenizer::default(),
        vocab,
        net,
        calibration: Calibration::fit(&mut raws),
        threshold: 0.9,
        rates: logarithm_detector::kinds::Rates { usual: vec![(7, 3), (1 << 40, 12)], minutes: 60 },
    }
}

/// A detector of [`tiny_model`], ready to score.
pub fn tiny_detector() -> Detector {
    let mut model = tiny_model();
    model.net.prepare();
    Detector::new(model)
}

/// Records every loaded model must score.
fn probes() -> Vec<LogRecord> {
    vec![
        LogRecord::from_message("error 42 connection from 10.0.0.1"),
        LogRecord { source: "sshd".into(), priority: Some(2), ..LogRecord::from_message("") },
        // With a time: counted for bursts against the model's rates.
        LogRecord { timestamp_us: Some(i64::MIN), ..LogRecord::from_message("error 42 connection from 10.0.0.1") },
        LogRecord::from_message("新しい ошибка 😀 \u{2028}\0"),
    ]
}

/// A detector that loaded must score without trapping, within [0, 1].
fn score_all(detector: &Detector) {
    for record in probes() {
        let verdict = detector.score(&record);
        assert!((0.0..=1.0).contains(&verdict.score), "score {} of {record:?}", verdict.score);
    }
    let _ = detector.info();
}

/// The plaintext payload decoder, i.e. what `modelfile::open` hands over
/// once a file has authenticated (`Model::from_payload`); a model that
/// decodes must then score.
pub fn model_payload(data: &[u8]) {
    if let Ok(model) = Model::from_payload(data) {
        score_all(&Detector::new(model));
    }
}

/// A model file as the detector loads it (`Detector::load`). The first
/// byte chooses the input's form: even, the rest is the file's raw bytes
/// (the unauthenticated header and everything before decryption); odd, the
/// rest is a payload sealed here with [`KEY`] (a fresh salt and nonce from
/// the input), so the input reaches the decoder after authentication.
pub fn model_file(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        let _ = Detector::load(data, KEY);
        return;
    };
    let file = if mode % 2 == 0 {
        Cow::Borrowed(rest)
    } else {
        let salt = [mode; 16];
        let nonce = [mode.wrapping_mul(3); 12];
        Cow::Owned(modelfile::seal(rest, KEY, salt, nonce, FAST_KDF).expect("sealing a payload in memory"))
    };
    if let Ok(detector) = Detector::load(&file, KEY) {
        score_all(&detector);
    }
}

/// The config file's text (`Config::parse`: YAML, then validation).
#[cfg(feature = "host")]
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return }; // `load` reads a String
    if let Ok(config) = logarithm::config::Config::parse(text, "fuzz.yml".into()) {
        let _ = config.duration();
    }
}

/// The checkpoint file's bytes (`Checkpoints::parse`); checkpoints that
/// load must be usable: looked up and saved again.
#[cfg(feature = "host")]
pub fn checkpoint(data: &[u8]) {
    use logarithm::checkpoint::Checkpoints;
    if let Ok(checkpoints) = Checkpoints::parse(data) {
        for position in checkpoints.files.values() {
            let _ = checkpoints.file(position.dev, position.ino);
        }
        let again = Checkpoints::parse(&serde_json::to_vec(&checkpoints).unwrap()).expect("saved checkpoints load again");
        assert_eq!(again, checkpoints);
    }
}

/// Hand-made starting inputs for `target`: each format the target reads,
/// well formed and near misses. `cargo fuzz` starts from them too (see
/// README, "Fuzzing").
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let lines: &[&str] = &[
        "<34>1 2026-10-11T22:14:15.003Z mymachine su 42 ID47 [exampleSDID@32473 iut=\"3\"] BOM'su root' failed",
        "<13>Oct 11 22:14:15 host sshd[42]: Failed password for root from 10.0.0.1 port 22",
        "Feb 29 00:00:00 host kernel: Señal de parada recibida",
        "2026-10-11T22:14:15.123456+02:00 host app[1]: Ошибка 😀 \u{2028} \u{1b}[31mred",
        "{\"message\":\"disk full\",\"priority\":\"err\",\"host\":\"a\",\"time\":1700000000123}",
        "{\"MESSAGE\":\"x\",\"PRIORITY\":\"3\",\"__REALTIME_TIMESTAMP\":\"1700000000000000\",\"_COMM\":\"cron\"}",
        "{\"log\":\"<11>Jan  1 00:00:00 h t: m\",\"level\":50,\"date\":1.7e9,\"syslogtag\":\"sshd[42]:\"}",
        "plain line 0x1f 192.168.0.1 /var/log/x 550e8400-e29b-41d4-a716-446655440000",
        // Layouts with their own level (issue 12).
        "2015-10-18 18:01:47,978 INFO [main] org.app.Main: started",
        "1117838570 2005.06.03 R02-M1-N0 2005-06-03-15.42.50.675872 R02-M1-N0 RAS KERNEL FATAL x",
        "03-17 16:13:38.811  1702  2395 W WindowManager: Ошибка",
        "[1234:5678:0705/190016.123456:ERROR:gpu_init.cc(441)] déjà",
        "1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 gmetad[1]: Warning: we failed",
        "[10.30 16:49:06] chrome.exe *64 - 例え.jp:443 error : Could not connect",
        "[2024-01-02 10:00:00] production.ERROR: Ошибка",
        "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
        "2017/07/05 10:57:01.130 | E | VoipWrapper  | déjà | vu",
    ];
    match target {
        "parse" | "features" => lines.iter().map(|l| l.as_bytes().to_vec()).collect(),
        "fluent_bit_chunk" => {
            // `[[time, {}], {"log": line}]` events, the older `[time, body]`,
            // a group marker, and all of them in one chunk.
            let event = |time: rmpv::Value, body: &[(&str, &str)]| {
                let body = rmpv::Value::Map(body.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect());
                let mut out = Vec::new();
                rmpv::encode::write_value(&mut out, &rmpv::Value::Array(vec![time, body])).unwrap();
                out
            };
            let now = || rmpv::Value::Array(vec![rmpv::Value::Ext(0, vec![0x65, 0x53, 0xf1, 0, 0, 0, 0, 5]), rmpv::Value::Map(vec![])]);
            let mut chunks: Vec<Vec<u8>> = lines.iter().map(|l| event(now(), &[("log", l)])).collect();
            chunks.push(event(1_700_000_000.into(), &[("message", "older"), ("anomaly_score", "forged")]));
            chunks.push(event(rmpv::Value::Array(vec![(-1).into(), rmpv::Value::Map(vec![])]), &[]));
            chunks.push(chunks.concat());
            chunks
        }
        "model_payload" => vec![tiny_model().to_payload()],
        "model_file" => {
            let payload = tiny_model().to_payload();
            let sealed = modelfile::seal(&payload, KEY, [1; 16], [2; 12], FAST_KDF).unwrap();
            vec![[&[0u8][..], &sealed].concat(), [&[1u8][..], &payload].concat()]
        }
        "config" => vec![
            b"threshold: 0.99\nvocab_size: 10000\nduration: 24h\nformat: json\nlog_level: info\n".to_vec(),
            b"data_dir: /var/lib/logarithm\nbatch_size: 64\nmax_line_bytes: 65536\nretrain_mode: hybrid\n".to_vec(),
            b"a: &a [x, x]\nb: *a\n".to_vec(),
        ],
        "checkpoint" => vec![
            br#"{"files":{"2049:131":{"path":"/var/log/syslog","dev":2049,"ino":131,"offset":4096,"fingerprint":{"len":256,"hash":"00112233445566778899aabbccddeeff"}}},"journals":{"system":"s=abc;i=1"}}"#.to_vec(),
            b"{}".to_vec(),
        ],
        _ => Vec::new(),
    }
}
