//! End-to-end tests of the whole path through the real binaries:
//! `fakelogs` → `logarithm-trainer train` → encrypted model on disk →
//! `logarithm monitor` scoring through the embedded component.

mod common;

use common::*;
use logarithm::engine::{ComponentDetector, ComponentSource, EMBEDDED_COMPONENT};
use logarithm_detector::{Detector, LogRecord};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

fn current_model(data: &std::path::Path) -> Vec<u8> {
    std::fs::read(data.join("models/model-000001.lgm")).unwrap()
}

/// A verdict on the line alone: score (bits), `anomalous` and terms, not
/// what the memory of reported kinds made of it.
fn line_verdict(v: &logarithm_detector::Verdict) -> (u64, bool, Vec<logarithm_detector::Term>) {
    (v.score.to_bits(), v.anomalous, v.terms.clone())
}

mod pipeline {
    use super::*;

    /// Issue 2: injected anomalies score above normal lines (ROC-AUC ≥ 0.95)
    /// and every input line yields exactly one output record.
    #[test]
    fn detects_injected_anomalies_with_one_record_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let (train_log, test_log) = (dir.path().join("train.log"), dir.path().join("test.log"));
        fakelogs(&train_log, 20_000, 0, 1, "syslog");
        let anomalies = fakelogs(&test_log, 5_000, 25, 2, "syslog");
        let data = dir.path().join("data");
        let summary = train(&data, "k", &train_log);
        assert!(summary.contains("lines read:      20000"), "{summary}");

        let out = scan(&data, "k", &[test_log.to_str().unwrap()]);
        let records = json_lines(&ok(&out));
        assert_eq!(records.len(), 5_000);
        let lines: Vec<u64> = records.iter().map(|r| r["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, (1..=5_000).collect::<Vec<_>>(), "exactly one record per input line, in order");

        let truth: Vec<f64> = lines.iter().map(|l| if anomalies.contains(l) { 1.0 } else { 0.0 }).collect();
        let scores: Vec<f64> = records.iter().map(|r| r["score"].as_f64().unwrap()).collect();
        let auc = smartcore::metrics::roc_auc_score(&truth, &scores);
        assert!(auc >= 0.95, "ROC-AUC {auc}");

        // The default threshold catches most anomalies without flooding.
        let flagged = |want: bool| {
            records.iter().filter(|r| r["anomalous"] == true && anomalies.contains(&r["line"].as_u64().unwrap()) == want).count()
        };
        assert!(flagged(true) >= 20, "only {} of 25 anomalies flagged", flagged(true));
        assert!(flagged(false) <= 25, "{} normal lines flagged", flagged(false));
        for r in &records {
            for key in ["timestamp", "source", "host", "message", "score", "anomalous", "threshold", "terms"] {
                assert!(r.get(key).is_some(), "missing {key} in {r}");
            }
            assert!(r["timestamp"].as_str().unwrap().ends_with('Z'));
        }
    }

    /// Issue 5: plain syslog lines carry no severity, so it is inferred from
    /// the message's words. On a host where failures are routine (internet
    /// scanners hitting sshd), a line of nothing but new words ranks high but
    /// not above them and is not an alert; a never-seen error is; and the
    /// routine failures themselves are not.
    #[test]
    fn severity_inferred_from_words_ranks_novel_trouble_above_novel_chatter() {
        let dir = tempfile::tempdir().unwrap();
        let train_log = dir.path().join("train.log");
        fakelogs(&train_log, 5_000, 0, 3, "syslog");
        let mut log = std::fs::OpenOptions::new().append(true).open(&train_log).unwrap();
        for i in 0..500 {
            let (a, b, port) = (i % 200, i * 7 % 250, 1024 + i * 13);
            writeln!(
                log,
                "Nov  3 04:{:02}:{:02} web01 sshd[{}]: Failed password for invalid user admin from 203.0.{a}.{b} port {port} ssh2",
                i / 60 % 60,
                i % 60,
                900 + i
            )
            .unwrap();
        }
        drop(log);
        let data = dir.path().join("data");
        train(&data, "k", &train_log);

        let test_log = dir.path().join("test.log");
        std::fs::write(
            &test_log,
            "Nov  4 08:00:00 web01 named[3]: notify question section contains no SOA\n\
             Nov  4 08:00:01 web01 colord[901]: Profile added: sRGB virtual\n\
             Nov  4 08:00:02 web01 kernel: EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0\n\
             Nov  4 08:00:03 web01 sshd[77]: Failed password for invalid user admin from 203.0.113.9 port 40022 ssh2\n",
        )
        .unwrap();
        let out = scan(&data, "k", &[test_log.to_str().unwrap()]);
        let records = json_lines(&ok(&out));
        let verdict =
            |i: usize| (records[i]["score"].as_f64().unwrap(), records[i]["anomalous"].as_bool().unwrap(), records[i]["terms"].to_string());
        for novel_info in [0, 1] {
            let (score, anomalous, terms) = verdict(novel_info);
            assert!(!anomalous && score > 0.5, "novel chatter: {}", records[novel_info]);
            assert!(terms.contains("unseen") && !terms.contains("severity:"), "{terms}");
        }
        let (_, anomalous, terms) = verdict(2);
        assert!(anomalous && terms.contains("severity:err (error)"), "novel error: {}", records[2]);
        let (score, anomalous, terms) = verdict(3);
        assert!(!anomalous && score < verdict(2).0, "routine failure: {}", records[3]);
        assert!(terms.contains("severity:err (failed)"), "{terms}");

        // On a quiet host (no failures in training) a never-seen line is the
        // most unusual thing there is, and is flagged.
        let t = trained();
        let out = scan(&t.data, t.key, &[test_log.to_str().unwrap()]);
        let records = json_lines(&ok(&out));
        assert_eq!(records[0]["anomalous"], true, "{}", records[0]);
    }
}

mod component {
    use super::*;

    /// Issue 2: the built guest is a component, not a core module.
    #[test]
    fn embedded_guest_is_a_component() {
        assert!(wasmparser::Parser::is_component(EMBEDDED_COMPONENT));
        assert!(!wasmparser::Parser::is_core_wasm(EMBEDDED_COMPONENT));
        let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
        validator.validate_all(EMBEDDED_COMPONENT).expect("the component validates");
    }

    /// Issue 2: `--component PATH` replaces the embedded component; a file
    /// that is not a detector component is a clear error.
    #[test]
    fn component_override() {
        let t = trained();
        let log = t.dir.path().join("c.log");
        std::fs::write(&log, "one line\n").unwrap();
        let wasm = t.dir.path().join("detector.wasm");
        std::fs::write(&wasm, EMBEDDED_COMPONENT).unwrap();
        let out = ok(&scan(&t.data, t.key, &["--component", wasm.to_str().unwrap(), log.to_str().unwrap()]));
        assert_eq!(out.lines().count(), 1);
        let bogus = t.dir.path().join("bogus.wasm");
        std::fs::write(&bogus, b"\0asm\x01\0\0\0").unwrap();
        fails_with(&scan(&t.data, t.key, &["--component", bogus.to_str().unwrap(), log.to_str().unwrap()]), "bogus.wasm");
        fails_with(&scan(&t.data, t.key, &["--component", "/nonexistent.wasm", log.to_str().unwrap()]), "/nonexistent.wasm");
    }

    /// Issue 11: the compiled component is kept in `DATA_DIR/cache` (one
    /// file, private); a damaged one is compiled again and replaced, and
    /// scores the same; a cache that cannot be written costs nothing else.
    #[test]
    fn compiled_component_is_cached_and_a_damaged_cache_is_rebuilt() {
        use std::os::unix::fs::PermissionsExt;
        let t = trained();
        let log = t.dir.path().join("c.log");
        fakelogs(&log, 200, 2, 5, "syslog");
        let first = ok(&scan(&t.data, t.key, &[log.to_str().unwrap()]));
        let cache = t.data.join("cache");
        let files: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let compiled = &files[0];
        assert_eq!(std::fs::metadata(compiled).unwrap().permissions().mode() & 0o077, 0, "private");
        std::fs::write(compiled, b"not compiled code").unwrap();
        assert_eq!(ok(&scan(&t.data, t.key, &[log.to_str().unwrap()])), first, "the same verdicts after a damaged cache");
        assert!(std::fs::metadata(compiled).unwrap().len() > 1000, "the damaged file was replaced");
        // Compiled code runs as it is: one that is another user's (planted)
        // is not run, but compiled again. (Root can hand a file away.)
        if effective_uid() == 0 {
            let planted = std::fs::read(compiled).unwrap();
            std::fs::write(compiled, &planted).unwrap();
            ok(&std::process::Command::new("chown").args(["65534:65534", compiled.to_str().unwrap()]).output().unwrap());
            let out = run("logarithm", &["info", "-L", "debug", "-D", t.data.to_str().unwrap(), "-K", t.key]);
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && said.contains("not a file of this user's"), "{said}");
        }
        std::fs::remove_dir_all(&cache).unwrap();
        std::fs::write(&cache, b"a file where the directory should be").unwrap();
        assert_eq!(ok(&scan(&t.data, t.key, &[log.to_str().unwrap()])), first, "no cache, the same verdicts");
    }

    /// Issue 2: the same model scores the same lines identically natively
    /// and through the component (score, verdict and explanation).
    #[test]
    fn native_and_component_scores_are_identical() {
        let t = trained();
        let bytes = current_model(&t.data);
        let native = Detector::load(&bytes, t.key).unwrap();
        let mut wasm = ComponentDetector::load(ComponentSource::Embedded, &bytes, t.key).map_err(|e| e.to_string()).unwrap();
        assert_eq!(wasm.info().unwrap(), native.info());

        let log = t.dir.path().join("mixed.log");
        fakelogs(&log, 2_000, 40, 99, "syslog");
        let mut records: Vec<LogRecord> = std::fs::read_to_string(&log).unwrap().lines().map(logarithm::sources::parse_record).collect();
        records.push(LogRecord::from_message(""));
        records.push(LogRecord::from_message("ünïcödé \u{1F600} ".repeat(2000)));
        records.push(LogRecord { priority: Some(0), source: "kernel".into(), ..LogRecord::from_message("never seen words entirely") });
        let expected = native.score_batch(&records);
        let got = wasm.score_batch(&records).unwrap();
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "record {i}: {:?}", records[i].message);
        }
        // Single-record scoring agrees with batches, and a threshold override applies.
        // (What it reports differs by design: the batch already reported its kind.)
        for (i, r) in records.iter().enumerate().step_by(7) {
            assert_eq!(line_verdict(&wasm.score(r).unwrap()), line_verdict(&expected[i]), "record {i} scored alone");
        }
        wasm.set_threshold(0.5).unwrap();
        assert_eq!(wasm.info().unwrap().threshold, 0.5);
        assert!(wasm.set_threshold(1.5).unwrap_err().to_string().contains("outside [0, 1]"));
    }

    /// Issue 11: scored on two threads (each batch in two parts, analysed
    /// in two instances, concluded in order in one), records get exactly
    /// the verdicts of scoring them natively one by one, bursts, alerts and
    /// repeat summaries included, and the kinds reported are remembered
    /// alike; also after the threshold changed (the helper is made again).
    #[test]
    fn scoring_in_parts_on_two_threads_gets_the_same_verdicts() {
        let t = trained();
        let bytes = current_model(&t.data);
        let mut native = Detector::load(&bytes, t.key).unwrap();
        let mut wasm = ComponentDetector::load(ComponentSource::Embedded, &bytes, t.key).map_err(|e| e.to_string()).unwrap();
        wasm.set_threads(2);
        wasm.set_parallel_cost(Duration::ZERO);
        let log = t.dir.path().join("parts.log");
        fakelogs(&log, 3_000, 60, 7, "syslog");
        let mut records: Vec<LogRecord> = std::fs::read_to_string(&log).unwrap().lines().map(logarithm::sources::parse_record).collect();
        // A crash loop: one known line 400 times in a minute, in the middle.
        let known = records.iter().find(|r| r.timestamp_us.is_some()).unwrap().clone();
        let at = known.timestamp_us.unwrap() + 3_600_000_000;
        let burst = (0..400).map(|i| LogRecord { timestamp_us: Some(at + i * 100_000), ..known.clone() });
        records.splice(1500..1500, burst);
        // A kind of anomaly that keeps happening: alerted once, then counted, then summarised.
        for i in 0..12 {
            let oops = format!("BUG: unable to handle page fault for address ffff{i:04x} in vfs_read");
            records.insert(100 + i * 250, LogRecord { source: "kernel".into(), ..LogRecord::from_message(oops) });
        }
        // Any bytes, any script, in both parts of a batch.
        let garbage = [
            "ünïcödé \u{1F600} 日本語 кириллица ".repeat(100),
            String::from_utf8_lossy(b"bad \xff\xfe utf-8 \xc3( here").into_owned(),
            "nul \0 inside \0\0 and \u{1b}[31mred\u{1b}[0m escapes".into(),
            "שלום עולם مرحبا \u{202e}reversed\u{2028}line".into(),
            "x".repeat(1 << 20),
            String::new(),
        ];
        for (i, message) in garbage.into_iter().enumerate() {
            records.insert(1000 + i * 37, LogRecord { source: "app".into(), ..LogRecord::from_message(message) });
        }
        let check = |wasm: &mut ComponentDetector, native: &Detector| {
            let got: Vec<_> = records.chunks(256).flat_map(|chunk| wasm.score_batch(chunk).unwrap()).collect();
            let expected = native.score_batch(&records);
            assert_eq!(got.len(), expected.len());
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(g, e, "record {i}: {:?}", records[i].message);
            }
            assert_eq!(wasm.save_memory().unwrap(), native.save_memory());
            expected
        };
        let expected = check(&mut wasm, &native);
        assert!(expected.iter().any(|v| v.burst.is_some()), "a burst");
        assert!(expected.iter().any(|v| v.reported()) && expected.iter().any(|v| v.repeat.is_some()), "alerts and summaries");
        assert!(wasm.batches_in_parts() >= 13, "{} batches in parts", wasm.batches_in_parts());
        // The same lines again under another threshold, normal lines
        // unexplained: the helper is made again with both; the memory of
        // both goes on.
        native.set_threshold(0.99).unwrap();
        wasm.set_threshold(0.99).unwrap();
        native.set_explain(false);
        wasm.set_explain(false).unwrap();
        let before = wasm.batches_in_parts();
        let again = check(&mut wasm, &native);
        assert!(wasm.batches_in_parts() >= before + 13 && again.iter().any(|v| v.anomalous));
        // A model loaded in place (a reload): the helper is made again with
        // it and its threshold, so lines anomalous only under the new one
        // are explained too.
        assert_eq!(wasm.replace_model(&bytes, t.key, Some(0.9), 1).map_err(|e| e.to_string()).unwrap(), 0.9);
        native.set_threshold(0.9).unwrap();
        let before = wasm.batches_in_parts();
        let got: Vec<_> = records.chunks(256).flat_map(|chunk| wasm.score_batch(chunk).unwrap()).collect();
        let expected = native.score_batch(&records);
        let newly = expected.iter().filter(|v| v.anomalous && v.score < 0.99).count();
        assert!(newly > 0, "lines anomalous under 0.9 only");
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(line_verdict(g), line_verdict(e), "record {i} after the reload");
        }
        assert!(wasm.batches_in_parts() >= before + 13);
    }
}

/// Issue 9: the interface is versioned. Hosts (jco bindings, other
/// embedders) pin `logarithm:detector@VERSION`; a change to `wit/` that
/// keeps the version would break them silently.
mod interface {
    use sha2::{Digest, Sha256};

    /// For each released version, the SHA-256 of the `wit/*.wit` files (in
    /// name order) with their `package` lines left out. A change to `wit/`
    /// needs a new version here and in the `package` line.
    const RELEASED: &[(&str, &str)] = &[
        ("0.1.0", "fe03201ef2aa5ebd068cb8c604e89aa8957badfce7466de8eea5924002d341bb"),
        // Issues 11, 12 and 15: `report`, `repeat` and `burst` in verdicts; save/restore-memory; set-explain.
        ("0.2.0", "7e2db31f461971efcbde58d4de318cbb3e9fe899f01e77b937b5c40579116224"),
        // Issue 11: `score-packed`, a batch packed flat (one string of text, fixed-size entries).
        ("0.3.0", "079ee2f0c1c8fdd9da5efa2f9a2f6521d931edc1f7eb5cff48b49bee36378c9c"),
        // Issue 11: `packed-records` holds lists of integers, which are lowered in one copy each, not a list of records.
        ("0.4.0", "ca863f92a44904076f5e4e9ce56851ac6919deadddddb04dc38ed5b82ad0aa69"),
        // Issue 11: `analyse-packed` and `conclude-packed`, `score-packed` in two halves, for hosts that score on several cores.
        ("0.5.0", "41b7f75d7b74e3d38bdcf14ce0d2e868db85b0a03582dd47523ed16ea7b7704b"),
        // Issue 12: `bursts` in `model-info`, whether the model looks for bursts.
        ("0.6.0", "a690c0720a90b6da2973239ea3e646738d53a1435ac44c6779f6862b9098f265"),
    ];

    #[test]
    fn wit_changes_come_with_a_new_package_version() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "wit")).collect();
        files.sort();
        let mut hash = Sha256::new();
        let mut version = None;
        for file in &files {
            for line in std::fs::read_to_string(file).unwrap().lines() {
                match line.strip_prefix("package logarithm:detector@") {
                    Some(v) => version = Some(v.trim_end_matches(';').to_owned()),
                    None => hash.update(format!("{line}\n")),
                }
            }
        }
        let (version, digest) = (version.expect("a package line"), hex::encode(hash.finalize()));
        match RELEASED.iter().find(|(v, _)| *v == version) {
            Some((_, known)) => assert_eq!(
                *known, digest,
                "wit/ changed but its package version is still {version}: give it a new version and add (\"NEW\", \"{digest}\") to RELEASED"
            ),
            None => panic!("version {version} of wit/ is not in RELEASED: add (\"{version}\", \"{digest}\")"),
        }
        assert!(RELEASED.windows(2).all(|w| w[0].1 != w[1].1), "each version has its own interface");
    }
}

/// Issue 11: the memory of recent verdicts changes nothing but the speed:
/// every verdict, explanation included, is the one the line gets without it.
mod verdict_cache {
    use super::*;

    #[test]
    fn cached_verdicts_are_exactly_the_uncached_ones() {
        let t = trained();
        let detector = Detector::load(&current_model(&t.data), t.key).unwrap();
        let log = t.dir.path().join("mixed.log");
        fakelogs(&log, 5_000, 50, 21, "syslog");
        let mut records: Vec<LogRecord> = std::fs::read_to_string(&log).unwrap().lines().map(logarithm::sources::parse_record).collect();
        // The same messages at other severities, and once more: hits and misses alike.
        let more: Vec<LogRecord> = records.iter().take(500).map(|r| LogRecord { priority: Some(3), ..r.clone() }).collect();
        records.extend(more);
        records.extend(records.clone());
        for r in &records {
            assert_eq!(line_verdict(&detector.score(r)), line_verdict(&detector.score_uncached(r)), "{r:?}");
        }
        let (hits, misses) = detector.cache_stats();
        assert!(hits > misses, "templated logs repeat: {hits} hits, {misses} misses");
        // The threshold in force decides, not the one a verdict was cached under.
        let mut detector = detector;
        detector.set_threshold(0.5).unwrap();
        let mut flipped = 0;
        for r in &records {
            let (cached, fresh) = (detector.score(r), detector.score_uncached(r));
            assert_eq!(line_verdict(&cached), line_verdict(&fresh), "{r:?}");
            assert_eq!(cached.anomalous, cached.score >= 0.5);
            flipped += usize::from(cached.anomalous && cached.score < 0.999);
        }
        assert!(flipped > 0, "some remembered verdicts changed with the threshold");
    }
}

mod model_file {
    use super::*;

    fn monitor(data: &std::path::Path, key: &str, input: &std::path::Path) -> std::process::Output {
        run("logarithm", &["monitor", "--once", "-D", data.to_str().unwrap(), "-K", key, input.to_str().unwrap()])
    }

    /// Issue 2: no vocabulary term appears in the model file in plain text.
    #[test]
    fn model_on_disk_is_encrypted() {
        let t = trained();
        let bytes = current_model(&t.data);
        let native = Detector::load(&bytes, t.key).unwrap();
        let terms: Vec<&String> = native.model().vocab.terms().iter().filter(|t| t.len() >= 4).collect();
        assert!(terms.len() > 20);
        for term in terms {
            assert!(!bytes.windows(term.len()).any(|w| w == term.as_bytes()), "term {term:?} in plain text");
        }
        let meta = std::fs::read_to_string(t.data.join("models/model-000001.json")).unwrap();
        assert!(!meta.contains("session") && !meta.contains("accepted"), "metadata leaks vocabulary: {meta}");
    }

    /// Issue 2: wrong key, flipped byte, truncated file: one line, non-zero exit, no panic.
    #[test]
    fn bad_key_and_damaged_files_are_clear_errors() {
        let t = trained();
        let log = t.dir.path().join("some.log");
        fakelogs(&log, 10, 0, 5, "syslog");
        fails_with(&monitor(&t.data, "not the key", &log), "wrong encryption key");
        fails_with(&monitor(&t.data, "not the key", &log), "(tried the key given with -K or LOGARITHM_ENCRYPTION_KEY)");
        // A stale systemd credential goes before the data directory's key,
        // unseen: the error names the key it tried.
        let with_credentials = |dir: &std::path::Path| {
            let args = ["monitor", "--once", "-D", t.data.to_str().unwrap(), log.to_str().unwrap()];
            command("logarithm").args(args).env("CREDENTIALS_DIRECTORY", dir).output().unwrap()
        };
        let credentials = t.dir.path().join("credentials");
        std::fs::create_dir(&credentials).unwrap();
        std::fs::write(credentials.join("logarithm-key"), "a stale key\n").unwrap();
        let stale = format!("(tried the systemd credential {})", credentials.join("logarithm-key").display());
        fails_with(&with_credentials(&credentials), &stale);
        // A key file `-` is standard input, unless the records come that way.
        let d = t.data.to_str().unwrap();
        ok(&run_with_stdin("logarithm", &["monitor", "--once", "-D", d, "--key-file", "-", log.to_str().unwrap()], Some(t.key.as_bytes())));
        for args in [vec!["filter", "-D", d, "--key-file", "-"], vec!["monitor", "--once", "-i", "-D", d, "--key-file", "-"]] {
            fails_with(
                &run_with_stdin("logarithm", &args, Some(b"x\n")),
                "--key-file - reads the key from standard input, which carries the records",
            );
        }
        // One that cannot be read is said, not skipped for another key.
        let odd = t.dir.path().join("odd-credentials");
        std::fs::create_dir_all(odd.join("logarithm-key")).unwrap();
        fails_with(&with_credentials(&odd), &format!("the systemd credential {} is not a file", odd.join("logarithm-key").display()));
        // A retrain with a mistyped key says so, rather than suggest starting
        // over with it (which would seal a model the monitor cannot load).
        let retrain = run("logarithm-trainer", &["train", "-D", t.data.to_str().unwrap(), "-K", "not the key", log.to_str().unwrap()]);
        fails_with(&retrain, "check the key");

        let path = t.data.join("models/model-000001.lgm");
        let good = std::fs::read(&path).unwrap();
        for at in [9, 30, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            let out = monitor(&t.data, t.key, &log);
            fails_with(&out, "model-000001.lgm");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("corrupt model") || stderr.contains("unsupported model format"), "flip at {at}: {stderr}");
        }
        for len in [0, 5, 40, good.len() - 33, good.len() - 1] {
            std::fs::write(&path, &good[..len]).unwrap();
            fails_with(&monitor(&t.data, t.key, &log), "truncated");
        }
        std::fs::write(&path, b"this is not a model at all").unwrap();
        fails_with(&monitor(&t.data, t.key, &log), "not a Logarithm model file");
        std::fs::write(&path, &good).unwrap();
        ok(&monitor(&t.data, t.key, &log));
    }

    /// Issue 2: without a model, monitor says how to train one.
    #[test]
    fn no_model_says_how_to_train() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(&log, "hello\n").unwrap();
        let out = run("logarithm", &["monitor", "--once", "-D", dir.path().join("empty").to_str().unwrap(), log.to_str().unwrap()]);
        fails_with(&out, "logarithm-trainer train");
    }

    /// With no -K, training generates a key in the data dir and monitor uses it.
    #[test]
    fn generated_key_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("train.log");
        fakelogs(&log, 2000, 0, 3, "syslog");
        let data = dir.path().join("data");
        ok(&run("logarithm-trainer", &["train", "-D", data.to_str().unwrap(), log.to_str().unwrap()]));
        assert!(data.join("key").is_file());
        ok(&run("logarithm", &["monitor", "--once", "-D", data.to_str().unwrap(), log.to_str().unwrap()]));
        fails_with(
            &run("logarithm", &["monitor", "--once", "-D", data.to_str().unwrap(), "-K", "other", log.to_str().unwrap()]),
            "wrong encryption key",
        );
    }
}

mod output {
    use super::*;

    #[test]
    fn csv_has_a_header_and_quotes_properly() {
        let t = trained();
        let log = t.dir.path().join("q.log");
        std::fs::write(&log, "Nov  2 08:00:00 web01 app[1]: a \"quoted\", comma-separated message\nplain line two\n").unwrap();
        let out = ok(&run(
            "logarithm",
            &["monitor", "--once", "--all", "-f", "csv", "-D", t.data.to_str().unwrap(), "-K", t.key, log.to_str().unwrap()],
        ));
        let mut reader = csv::Reader::from_reader(out.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(&header[..8], ["timestamp", "source", "host", "message", "score", "anomalous", "threshold", "terms"]);
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][3], "a \"quoted\", comma-separated message");
        assert_eq!((&rows[0][1], &rows[0][2]), ("app", "web01"));
        assert_eq!(&rows[1][3], "plain line two");
    }

    #[test]
    fn human_output_shows_anomalies_with_terms_and_threshold_override() {
        let t = trained();
        let log = t.dir.path().join("h.log");
        std::fs::write(&log, "Nov  2 08:00:00 web01 kernel: Out of memory: Killed process 4242 (java)\n").unwrap();
        let out = ok(&run("logarithm", &["monitor", "--once", "-D", t.data.to_str().unwrap(), "-K", t.key, log.to_str().unwrap()]));
        assert!(out.starts_with("ANOMALY 0.9999"), "{out}");
        assert!(!out.contains("1.0000"), "anomalies keep their rank in human output: {out}");
        assert!(out.contains("terms: ") && out.contains("(unseen)"), "{out}");
        // The threshold can be overridden both ways: -T 0 flags an ordinary
        // line, and a threshold above the line's score does not flag it.
        let ordinary = t.dir.path().join("o.log");
        std::fs::write(&ordinary, "Nov  2 08:00:00 web01 sshd[7]: pam_unix(sshd:session): session closed for user root\n").unwrap();
        let data = t.data.to_str().unwrap();
        let monitor = |threshold: &str| {
            ok(&run("logarithm", &["monitor", "--once", "-T", threshold, "-D", data, "-K", t.key, ordinary.to_str().unwrap()]))
        };
        assert!(monitor("0").starts_with("ANOMALY"));
        assert_eq!(monitor("0.999"), "");
        fails_with(
            &run("logarithm", &["monitor", "--once", "-T", "1.5", "-D", t.data.to_str().unwrap(), "-K", t.key, log.to_str().unwrap()]),
            "threshold",
        );
    }

    /// Issue 10: a logged message cannot forge an `ANOMALY` line, recolour
    /// the terminal, or run as a formula in a spreadsheet.
    #[test]
    fn output_cannot_be_forged() {
        let t = trained();
        let input = "{\"msg\":\"ok\\nANOMALY 1.0000 forged line\\u001b[31m red\"}\n=HYPERLINK(\\\"http://x\\\")\n";
        let args = |format: &'static str| {
            ["monitor", "--once", "--all", "-T", "0", "-f", format, "-i", "-D", t.data.to_str().unwrap(), "-K", t.key]
        };
        let human = ok(&run_with_stdin("logarithm", &args("human"), Some(input.as_bytes())));
        assert!(!human.lines().any(|l| l.starts_with("ANOMALY 1.0000 forged")) && !human.contains('\u{1b}'), "{human}");
        assert!(human.contains("ok\\nANOMALY 1.0000 forged line\\u{1b}[31m red"), "{human}");
        let csv = ok(&run_with_stdin("logarithm", &args("csv"), Some(input.as_bytes())));
        assert!(csv.contains("\"'=HYPERLINK("), "{csv}");
        // Nor a file's name, which is the `origin` cell.
        let dir = t.dir.path().join("=cmd");
        std::fs::create_dir(&dir).unwrap();
        let log = dir.join("=x.log");
        std::fs::write(&log, "one line\n").unwrap();
        let data = t.data.to_str().unwrap();
        let out = command("logarithm")
            .args(["monitor", "--once", "--all", "-f", "csv", "-D", data, "-K", t.key, "=cmd/=x.log"])
            .current_dir(t.dir.path())
            .output()
            .unwrap();
        let csv = ok(&out);
        assert!(csv.contains(",'=cmd/=x.log,1,"), "{csv}");
        // Nor a name in a diagnostic on stderr (the journal, under systemd),
        // from the monitor or the trainer.
        let forged = t.dir.path().join("x\nANOMALY 1.0000 forged\u{1b}[31m\u{202e}*.log");
        for (binary, args) in [
            ("logarithm", vec!["monitor", "--once", "-D", data, "-K", t.key, forged.to_str().unwrap()]),
            ("logarithm-trainer", vec!["train", "-D", data, "-K", t.key, forged.to_str().unwrap()]),
        ] {
            let out = run(binary, &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && stderr.contains("forged"), "{binary}: {stderr}");
            assert!(!stderr.lines().any(|l| l.starts_with("ANOMALY")) && !stderr.contains(['\u{1b}', '\u{202e}']), "{binary}: {stderr}");
        }
    }

    /// Issue 14: shell completions and man pages come from the clap definitions.
    #[test]
    fn completions_and_man_pages() {
        for binary in ["logarithm", "logarithm-trainer"] {
            let bash = ok(&run(binary, &["generate", "completions", "bash"]));
            assert!(bash.contains(&format!("_{}()", binary.replace('-', "__"))) && bash.contains("complete -F"), "{binary}: {bash:.200}");
            let man = ok(&run(binary, &["generate", "man"]));
            assert!(man.starts_with(".ie") || man.contains(".TH"), "{binary}: {man:.200}");
            // Every page the command's page refers to is written with
            // --dir (review: `logarithm-monitor(1)` was named, not made).
            let dir = tempfile::tempdir().unwrap();
            ok(&run(binary, &["generate", "man", "--dir", dir.path().to_str().unwrap()]));
            let top = std::fs::read_to_string(dir.path().join(format!("{binary}.1"))).unwrap();
            let referred: Vec<&str> = top
                .split(&format!("{}\\-", binary.replace('-', "\\-")))
                .skip(1)
                .filter_map(|r| {
                    r.split_once("(1)").map(|(name, _)| name).filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
                })
                .collect();
            assert!(!referred.is_empty(), "{top}");
            for sub in referred {
                assert!(dir.path().join(format!("{binary}-{sub}.1")).is_file(), "{binary}-{sub}.1 is referred to, not written");
            }
        }
        assert!(ok(&run("logarithm", &["generate", "completions", "zsh"])).contains("monitor"));
    }

    /// `logarithm monitor ... | head` is normal use: a reader that goes away
    /// ends the monitor quietly, in every format.
    #[test]
    fn a_closed_stdout_is_not_an_error() {
        let t = trained();
        let log = t.dir.path().join("many.log");
        fakelogs(&log, 20_000, 0, 5, "syslog");
        for format in ["human", "json", "csv"] {
            let mut child = command("logarithm")
                .args(["monitor", "--once", "--all", "-f", format, "-D", t.data.to_str().unwrap(), "-K", t.key, log.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut first = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
            assert!(!first.is_empty());
            // The reader (and the pipe) are gone now.
            let out = output_within(child, RUN_LIMIT_SECS, "logarithm monitor");
            assert!(out.status.success(), "{format}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
            assert!(!String::from_utf8_lossy(&out.stderr).contains("error"), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        }
        // A full disk is an error, and says it was stdout.
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = command("logarithm")
            .args(["monitor", "--once", "--all", "-D", t.data.to_str().unwrap(), "-K", t.key, log.to_str().unwrap()])
            .stdout(full)
            .output()
            .unwrap();
        fails_with(&out, "cannot write to stdout: No space left on device");

        // Commands that only print end quietly at a closed stdout, as any
        // Unix tool does: no panic, no error.
        let data = t.data.to_str().unwrap();
        let printers: [(&str, &[&str]); 5] = [
            ("logarithm", &["info", "-D", data, "-K", t.key]),
            ("logarithm", &["generate", "man"]),
            ("logarithm-trainer", &["model", "list", "-D", data]),
            ("logarithm-trainer", &["model", "info", "-D", data, "-K", t.key]),
            ("fakelogs", &["-n", "200000"]),
        ];
        for (name, args) in printers {
            let mut child =
                command(name).args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
            drop(child.stdout.take());
            let out = output_within(child, RUN_LIMIT_SECS, name);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{name} {args:?}: {:?} {stderr}", out.status);
        }
    }

    #[test]
    fn stdin_ndjson_and_filter() {
        let t = trained();
        let input = b"{\"message\":\"session closed for user root\",\"host\":\"h1\",\"ident\":\"sshd\"}\n{\"log\":\"kernel panic - not syncing\"}\nplain stdin line\n";
        let out = run_with_stdin(
            "logarithm",
            &["monitor", "--once", "-i", "--all", "-f", "json", "-D", t.data.to_str().unwrap(), "-K", t.key],
            Some(input),
        );
        let records = json_lines(&ok(&out));
        assert_eq!(records.len(), 3);
        assert_eq!((records[0]["host"].as_str(), records[0]["source"].as_str()), (Some("h1"), Some("sshd")));
        assert_eq!(records[1]["message"], "kernel panic - not syncing");
        assert_eq!(records[2]["origin"], "-");
        let out = run_with_stdin(
            "logarithm",
            &["monitor", "--once", "-i", "--all", "-f", "json", "-F", "kernel|plain", "-D", t.data.to_str().unwrap(), "-K", t.key],
            Some(input),
        );
        assert_eq!(json_lines(&ok(&out)).len(), 2);
        let out = run_with_stdin(
            "logarithm",
            &["monitor", "--once", "-i", "-F", "(unclosed", "-D", t.data.to_str().unwrap(), "-K", t.key],
            Some(input),
        );
        fails_with(&out, "--filter");
    }
}

mod inputs {
    use super::*;

    /// Binary garbage, a 10 MiB line, non-UTF-8: every line is scored, none dropped.
    #[test]
    fn garbage_and_giant_lines_are_scored_not_dropped() {
        let t = trained();
        let log = t.dir.path().join("bad.log");
        let mut f = std::fs::File::create(&log).unwrap();
        f.write_all(b"\x00\x01\x02\xff\xfe binary \x80 garbage\r\n").unwrap();
        f.write_all(&vec![b'A'; 10 * 1024 * 1024]).unwrap();
        f.write_all(b"\nNov  2 08:00:00 web01 CRON[9]: (root) CMD (true)\nno final newline").unwrap();
        drop(f);
        let out = ok(&scan(&t.data, t.key, &[log.to_str().unwrap()]));
        let records = json_lines(&out);
        assert_eq!(records.len(), 4);
        assert!(records[0]["message"].as_str().unwrap().contains('\u{fffd}'));
        assert_eq!(records[1]["truncated"], true);
        assert_eq!(records[1]["message"].as_str().unwrap().len(), 64 * 1024);
        assert_eq!(records[2]["source"], "CRON");
        assert_eq!(records[3]["message"], "no final newline");
    }

    /// A missing path is named in a clear error; the other sources are still
    /// read; the exit status of a batch scan says something failed.
    #[test]
    fn a_missing_path_does_not_stop_the_others() {
        let t = trained();
        let log = t.dir.path().join("good.log");
        std::fs::write(&log, "one\ntwo\n").unwrap();
        let missing = t.dir.path().join("missing.log");
        let out = scan(&t.data, t.key, &[missing.to_str().unwrap(), log.to_str().unwrap()]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("missing.log") && stderr.contains("No such file"), "{stderr}");
        assert!(!stderr.contains("panicked"));
        assert_eq!(json_lines(&String::from_utf8(out.stdout).unwrap()).len(), 2);
    }

    /// Issue 10: a follower whose every source has failed for good exits
    /// non-zero (so that systemd's Restart=on-failure works), and says why.
    #[test]
    fn a_follower_whose_sources_all_failed_exits_non_zero() {
        let t = trained();
        let out = run("logarithm", &["monitor", "-D", t.data.to_str().unwrap(), "-K", t.key, "--journal-dir", "/nonexistent/journal"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("/nonexistent/journal") && stderr.contains("every source has ended"), "{stderr}");
    }

    #[test]
    fn invalid_flags_are_rejected() {
        let out = run("logarithm", &["monitor", "--format", "xml"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'xml'"));
        let out = run("logarithm", &["monitor", "--batch-size", "0"]);
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--batch-size"));
        // A batch that could not fit the detector's memory is refused, naming both flags.
        let t = trained();
        let out = run(
            "logarithm",
            &[
                "monitor",
                "--once",
                "--batch-size",
                "65536",
                "--max-line-bytes",
                "1048576",
                "-D",
                t.data.to_str().unwrap(),
                "-K",
                t.key,
                "/dev/null",
            ],
        );
        fails_with(&out, "--batch-size 65536 × --max-line-bytes 1048576");
    }
}

mod follow {
    use super::*;

    /// Without --once the monitor follows a file as it grows, and SIGTERM
    /// ends it cleanly after flushing what it scored.
    #[test]
    fn follows_appended_lines_and_stops_cleanly_on_sigterm() {
        let t = trained();
        let log = t.dir.path().join("live.log");
        std::fs::write(&log, "old line before start\n").unwrap();
        let (out, err) = (t.dir.path().join("out.json"), t.dir.path().join("out.err"));
        let child = command("logarithm")
            .args(["monitor", "--all", "-f", "json", "-L", "debug", "-D", t.data.to_str().unwrap(), "-K", t.key, log.to_str().unwrap()])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        // Its readiness signal, not a guess of how fast this machine is (issue 10).
        let wait = |what: &str, done: &dyn Fn() -> bool| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !done() {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        let signal = format!("reading {} from offset", log.display());
        wait("the monitor to position itself", &|| std::fs::read_to_string(&err).is_ok_and(|t| t.contains(&signal)));
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for i in 0..50 {
            writeln!(f, "Nov  2 08:00:{:02} web01 CRON[{i}]: (root) CMD (run-parts /etc/cron.hourly)", i % 60).unwrap();
        }
        drop(f);
        let records = || {
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with(r#"{"kind":"line""#) && l.ends_with('}'))
                .count()
        };
        wait("the 50 new lines", &|| records() >= 50);
        ok(&std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).output().unwrap());
        let status = output_within(child, RUN_LIMIT_SECS, "logarithm monitor").status;
        assert!(status.success(), "{}", std::fs::read_to_string(&err).unwrap());
        let (records, others): (Vec<Value>, Vec<Value>) =
            json_lines(&std::fs::read_to_string(&out).unwrap()).into_iter().partition(|r| r["kind"] == "line");
        // Started at the end of the file (like tail -F): only the 50 new lines.
        assert_eq!(records.len(), 50, "{records:?}");
        // 50 cron lines in 50 s are far more than training saw in a minute.
        assert!(others.iter().all(|r| r["kind"] == "burst"), "{others:?}");
        let by_line: BTreeMap<u64, &Value> = records.iter().map(|r| (r["line"].as_u64().unwrap(), r)).collect();
        assert_eq!(by_line.len(), 50);
    }
}

/// Issue 14: one model, every source. A line scores the same whether it
/// came from a plain file, a `<PRI>` header, NDJSON with a level or the
/// journal; the severity enters only as the documented prior.
mod every_source {
    use super::*;
    use logarithm::sources::parse_record;

    fn flagged(out: &std::process::Output, n: usize, what: &str) -> usize {
        // Repeat summaries and bursts are records too, not lines.
        let records: Vec<Value> = json_lines(&ok(out)).into_iter().filter(|r| r["kind"] == "line").collect();
        assert_eq!(records.len(), n, "{what}: one record per line");
        for r in &records {
            let terms = r["terms"].to_string();
            assert!(!terms.contains("pri:"), "{what}: the severity is not a term: {terms}");
        }
        records.iter().filter(|r| r["anomalous"] == true).count()
    }

    /// The test lines written four ways; returns the scan arguments of each.
    fn as_every_source(dir: &std::path::Path, lines: &[String]) -> Vec<(&'static str, Vec<String>)> {
        let records: Vec<LogRecord> = lines.iter().map(|l| parse_record(l)).collect();
        let plain = dir.join("plain.log");
        std::fs::write(&plain, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        let pri = dir.join("pri.log");
        std::fs::write(&pri, lines.iter().map(|l| format!("<30>{l}\n")).collect::<String>()).unwrap();
        let ndjson = dir.join("records.ndjson");
        let json: String = records
            .iter()
            .map(|r| {
                let ts = chrono::DateTime::from_timestamp_micros(r.timestamp_us.unwrap()).unwrap().to_rfc3339();
                format!(
                    "{}\n",
                    serde_json::json!({"timestamp": ts, "host": r.host, "app": r.source, "level": "info", "message": r.message})
                )
            })
            .collect();
        std::fs::write(&ndjson, json).unwrap();
        let journal = dir.join("journal");
        std::fs::create_dir_all(&journal).unwrap();
        let mut export = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let fields: [(&str, &[u8]); 4] = [
                ("SYSLOG_IDENTIFIER", r.source.as_bytes()),
                ("PRIORITY", b"6"),
                ("_HOSTNAME", r.host.as_bytes()),
                ("MESSAGE", r.message.as_bytes()),
            ];
            journal_fields(&mut export, r.timestamp_us.unwrap() as u64, i as u64 + 1, &fields);
        }
        journal_file(&journal.join("j.journal"), &export);
        let arg = |p: &std::path::Path| vec![p.to_str().unwrap().to_owned()];
        vec![
            ("plain syslog", arg(&plain)),
            ("syslog with <30>", arg(&pri)),
            ("NDJSON with level info", arg(&ndjson)),
            ("journal PRIORITY=6", vec!["--journal-dir".into(), journal.to_str().unwrap().to_owned()]),
        ]
    }

    fn rates(data: &std::path::Path, sources: &[(&'static str, Vec<String>)], n: usize) -> Vec<(&'static str, usize)> {
        sources
            .iter()
            .map(|(what, args)| {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                (*what, flagged(&scan(data, "k", &args), n, what))
            })
            .collect()
    }

    fn assert_alike(counts: &[(&str, usize)], n: usize) {
        let base = counts[0].1;
        for (what, c) in counts {
            assert!(c.abs_diff(base) <= n / 200, "{what}: {c} of {n} flagged vs {base} for {}: {counts:?}", counts[0].0);
            assert!(*c <= n / 100, "{what}: {c} of {n} normal lines flagged: {counts:?}");
        }
    }

    #[test]
    fn plain_trained_model_reads_every_source_alike() {
        let dir = tempfile::tempdir().unwrap();
        let (train_log, test_log) = (dir.path().join("train.log"), dir.path().join("test.log"));
        fakelogs(&train_log, 20_000, 0, 1, "syslog");
        fakelogs(&test_log, 2_000, 0, 2, "syslog");
        let data = dir.path().join("data");
        train(&data, "k", &train_log);
        let lines: Vec<String> = std::fs::read_to_string(&test_log).unwrap().lines().map(str::to_owned).collect();
        let mut sources = as_every_source(dir.path(), &lines);
        // fakelogs' own NDJSON layout (`ident`, numeric `priority`).
        let json_log = dir.path().join("test.json");
        fakelogs(&json_log, 2_000, 0, 2, "json");
        sources.push(("fakelogs --template json", vec![json_log.to_str().unwrap().to_owned()]));
        let counts = rates(&data, &sources, lines.len());
        assert_alike(&counts, lines.len());
    }

    /// A host's routine errors, as plain syslog lines (whose level the
    /// detector reads from their words) and as the same lines with a `<PRI>`
    /// saying err: the fakelogs lines of `seed` with an error line after
    /// every 20th, taking its time and host. (plain, with `<PRI>`)
    fn with_routine_errors(dir: &std::path::Path, name: &str, count: usize, seed: u64) -> (std::path::PathBuf, std::path::PathBuf) {
        const ERRORS: [&str; 4] = [
            "systemd[1]: Failed to start Daily apt upgrade and clean activities.",
            "sshd[{}]: error: kex_exchange_identification: Connection closed by remote host",
            "kernel: ata1.00: failed command: READ FPDMA QUEUED",
            "CRON[{}]: (CRON) error (grandchild #{} failed with exit status 1)",
        ];
        let base = dir.join(format!("{name}.base"));
        fakelogs(&base, count, 0, seed, "syslog");
        let (mut plain, mut pri) = (String::new(), String::new());
        for (i, line) in std::fs::read_to_string(&base).unwrap().lines().enumerate() {
            plain += &format!("{line}\n");
            pri += &format!("<30>{line}\n");
            if i % 20 == 0 {
                let (stamp, rest) = line.split_at(15);
                let host = rest.split_whitespace().next().unwrap();
                let error = ERRORS[i / 20 % ERRORS.len()].replace("{}", &(1000 + i).to_string());
                plain += &format!("{stamp} {host} {error}\n");
                pri += &format!("<27>{stamp} {host} {error}\n");
            }
        }
        let paths = (dir.join(format!("{name}.log")), dir.join(format!("{name}.pri.log")));
        std::fs::write(&paths.0, plain).unwrap();
        std::fs::write(&paths.1, pri).unwrap();
        paths
    }

    /// A model trained on plain lines, whose errors' level it read from their
    /// words, scores the same errors alike when a header gives their level.
    /// (Issue 12 tried weighing a level read from a word at half of one a
    /// record carries: this model then flagged 5% of these lines, every
    /// routine error that came with a `<PRI>`.)
    #[test]
    fn routine_errors_score_alike_from_their_words_or_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let (train_log, _) = with_routine_errors(dir.path(), "train", 20_000, 1);
        let (plain, pri) = with_routine_errors(dir.path(), "test", 2_000, 2);
        let data = dir.path().join("data");
        train(&data, "k", &train_log);
        let n = std::fs::read_to_string(&plain).unwrap().lines().count();
        let counts = rates(
            &data,
            &[("plain syslog", vec![plain.to_str().unwrap().to_owned()]), ("with <PRI>", vec![pri.to_str().unwrap().to_owned()])],
            n,
        );
        assert_alike(&counts, n);
    }

    #[test]
    fn journal_trained_model_reads_plain_lines_alike() {
        let dir = tempfile::tempdir().unwrap();
        let (train_log, test_log) = (dir.path().join("train.log"), dir.path().join("test.log"));
        fakelogs(&train_log, 20_000, 0, 1, "syslog");
        fakelogs(&test_log, 2_000, 0, 2, "syslog");
        let train_lines: Vec<String> = std::fs::read_to_string(&train_log).unwrap().lines().map(str::to_owned).collect();
        let train_dir = dir.path().join("train");
        std::fs::create_dir(&train_dir).unwrap();
        let train_sources = as_every_source(&train_dir, &train_lines);
        let data = dir.path().join("data");
        let journal_dir = &train_sources[3].1[1];
        ok(&run("logarithm-trainer", &["train", "-D", data.to_str().unwrap(), "-K", "k", "--journal-dir", journal_dir, "-t", "100000d"]));
        let lines: Vec<String> = std::fs::read_to_string(&test_log).unwrap().lines().map(str::to_owned).collect();
        let test_dir = dir.path().join("test");
        std::fs::create_dir(&test_dir).unwrap();
        let mut sources = as_every_source(&test_dir, &lines);
        // Journal first: the source this model was trained on.
        sources.rotate_right(1);
        let counts = rates(&data, &sources, lines.len());
        assert_alike(&counts, lines.len());
    }
}

/// Issue 15: news once. A new kind of anomaly is reported when it first
/// appears, then counted and summarised at 10, 100, 1,000… occurrences,
/// not alerted on every line; the memory survives a restart and forgets
/// what a retrained model knows.
mod news {
    use super::*;
    use std::path::Path;
    use std::process::{Child, Command};

    /// A benign line of a kind the fake host never logged in training.
    fn docker(i: usize) -> String {
        format!("Nov  2 09:{:02}:{:02} web01 dockerd[{}]: Started Docker Application Container Engine.", i / 60 % 60, i % 60, 700 + i)
    }

    /// A real failure that keeps repeating.
    fn failure(i: usize) -> String {
        format!(
            "Nov  2 09:{:02}:{:02} web01 kernel: EXT4-fs error (device sda{}): ext4_find_entry:1455: inode #{}: comm nginx: reading directory lblock 0",
            i / 60 % 60,
            i % 60,
            i % 3,
            4000 + i
        )
    }

    fn records_like<'a>(records: &'a [Value], needle: &str) -> Vec<&'a Value> {
        records
            .iter()
            .filter(|r| r["message"].as_str().or(r["template"].as_str()).is_some_and(|m| m.to_lowercase().contains(needle)))
            .collect()
    }

    #[test]
    fn a_new_kind_alerts_once_then_is_counted_and_summarised() {
        let t = trained();
        let log = t.dir.path().join("new.log");
        fakelogs(&log, 3_000, 0, 12, "syslog");
        let mut lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
        // 50 benign lines of one new kind and 150 of a failure, spread out.
        for i in 0..50 {
            lines.insert(100 + i * 50, docker(i));
        }
        for i in 0..150 {
            lines.insert(120 + i * 19, failure(i));
        }
        std::fs::write(&log, lines.join("\n") + "\n").unwrap();
        let data = t.data.to_str().unwrap();

        // Without --all: the alerts and the summaries, nothing else.
        let out = run("logarithm", &["monitor", "--once", "-f", "json", "-D", data, "-K", t.key, log.to_str().unwrap()]);
        let printed = json_lines(&ok(&out));
        let kinds = |records: &[&Value], kind: &str| records.iter().filter(|r| r["kind"] == kind).count();
        let docker_out = records_like(&printed, "docker application");
        assert_eq!(kinds(&docker_out, "line"), 1, "one alert for 50 benign lines of a new kind: {docker_out:?}");
        assert!((1..=2).contains(&kinds(&docker_out, "repeat")), "at most a couple of summaries: {docker_out:?}");
        let alert = docker_out.iter().find(|r| r["kind"] == "line").unwrap();
        assert_eq!(
            (&alert["reported"], &alert["report"], &alert["anomalous"]),
            (&Value::Bool(true), &Value::from("new"), &Value::Bool(true))
        );
        let repeat = docker_out.iter().find(|r| r["kind"] == "repeat").unwrap();
        assert_eq!(repeat["count"], 10, "{repeat}");
        assert_eq!(repeat["template"], "dockerd: started docker application container engine", "{repeat}");
        assert!(repeat["first_timestamp"].as_str().is_some_and(|t| t.contains("09:00:00")), "{repeat}");
        // A failure that keeps repeating stays visible: its alert, and
        // summaries at 10 and 100.
        let failures = records_like(&printed, "reading directory lblock");
        assert_eq!(kinds(&failures, "line"), 1, "{failures:?}");
        let counts: Vec<u64> = failures.iter().filter(|r| r["kind"] == "repeat").map(|r| r["count"].as_u64().unwrap()).collect();
        assert_eq!(counts, [10, 100]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("alerts") && stderr.contains("repeat summaries"), "{stderr}");

        // --all: every line, still scored and anomalous, each saying whether it was reported.
        let all = json_lines(&ok(&scan(&t.data, t.key, &[log.to_str().unwrap()])));
        let docker_all = records_like(&all, "docker application");
        let lines_only: Vec<_> = docker_all.iter().filter(|r| r["kind"] == "line").collect();
        assert_eq!(lines_only.len(), 50);
        assert!(lines_only.iter().all(|r| r["anomalous"] == true), "the line-level verdict does not change");
        assert_eq!(lines_only.iter().filter(|r| r["reported"] == true).count(), 1);
        assert_eq!(lines_only.iter().filter(|r| r["report"] == "counted").count(), 49);
        assert_eq!(all.iter().filter(|r| r["kind"] == "line").count(), lines.len(), "one record per line");

        // Human output and CSV carry them too.
        let human = ok(&run("logarithm", &["monitor", "--once", "-D", data, "-K", t.key, log.to_str().unwrap()]));
        assert_eq!(human.lines().filter(|l| l.starts_with("ANOMALY") && l.contains("Docker Application")).count(), 1, "{human}");
        assert!(human.lines().any(|l| l.starts_with("REPEAT") && l.contains("10 lines like \"dockerd: started docker")), "{human}");
        let csv = ok(&run("logarithm", &["monitor", "--once", "-f", "csv", "-D", data, "-K", t.key, log.to_str().unwrap()]));
        assert!(csv.lines().any(|l| l.contains("dockerd: started docker") && l.contains(",repeat,,10,")), "{csv}");
    }

    fn follower(t: &Trained, log: &Path, out: &Path, err: &Path) -> Child {
        let child = command("logarithm")
            .args(["monitor", "--all", "-f", "json", "-L", "debug", "-D", t.data.to_str().unwrap(), "-K", t.key, log.to_str().unwrap()])
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(std::fs::File::create(err).unwrap())
            .spawn()
            .unwrap();
        let signal = format!("reading {} from offset", log.display());
        wait_for(60, "the monitor to position itself", || std::fs::read_to_string(err).is_ok_and(|t| t.contains(&signal)));
        child
    }

    fn append(log: &Path, lines: &[String]) {
        let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }

    fn stop(child: Child, out: &Path, err: &Path, expect: usize) -> Vec<Value> {
        wait_for(60, "the appended lines", || json_lines(&written_so_far(out)).len() >= expect);
        ok(&Command::new("kill").args(["-TERM", &child.id().to_string()]).output().unwrap());
        let status = output_within(child, RUN_LIMIT_SECS, "logarithm monitor").status;
        assert!(status.success(), "{}", std::fs::read_to_string(err).unwrap());
        json_lines(&std::fs::read_to_string(out).unwrap())
    }

    #[test]
    fn a_restart_remembers_reported_kinds_and_retraining_forgets_them() {
        let t = trained();
        let log = t.dir.path().join("live.log");
        std::fs::write(&log, "").unwrap();
        let (out, err) = (t.dir.path().join("out.json"), t.dir.path().join("out.err"));
        let memory = t.data.join("reported-kinds.json");

        let child = follower(&t, &log, &out, &err);
        append(&log, &(0..20).map(docker).collect::<Vec<_>>());
        let first = stop(child, &out, &err, 20 + 1);
        assert_eq!(first.iter().filter(|r| r["reported"] == true).count(), 1, "{first:?}");
        assert!(std::fs::read_to_string(&memory).unwrap().contains("started docker application container engine"));

        // Restarted: the kind is known, a new one is news.
        let child = follower(&t, &log, &out, &err);
        let postfix = "Nov  2 10:00:00 web01 postfix/master[1201]: reload -- version 3.7.11, configuration /etc/postfix".to_owned();
        append(&log, &(20..40).map(docker).chain([postfix]).collect::<Vec<_>>());
        let second = stop(child, &out, &err, 21);
        let reported: Vec<_> = second.iter().filter(|r| r["reported"] == true).collect();
        assert_eq!(reported.len(), 1, "only the new kind alerts after a restart: {reported:?}");
        assert!(reported[0]["message"].as_str().unwrap().contains("postfix"), "{reported:?}");
        assert_eq!(second.iter().filter(|r| r["report"] == "counted").count(), 20);

        // Retrained on logs with Docker in them: the kind is normal and forgotten; the other stays.
        let train_log = t.dir.path().join("retrain.log");
        fakelogs(&train_log, 5_000, 0, 13, "syslog");
        let mut lines: Vec<String> = std::fs::read_to_string(&train_log).unwrap().lines().map(str::to_owned).collect();
        lines.extend((0..300).map(docker));
        std::fs::write(&train_log, lines.join("\n") + "\n").unwrap();
        train(&t.data, t.key, &train_log);
        let child = follower(&t, &log, &out, &err);
        append(&log, &(40..45).map(docker).collect::<Vec<_>>());
        let third = stop(child, &out, &err, 5);
        assert!(third.iter().all(|r| r["anomalous"] == false && r["reported"] == false), "{third:?}");
        let remembered = std::fs::read_to_string(&memory).unwrap();
        assert!(!remembered.contains("docker") && remembered.contains("postfix"), "{remembered}");
    }
}

/// Issue 12: bursts. Lines the model knows well, logged far faster than in
/// training, raise one burst each time; a peak that training saw does not.
mod bursts {
    use super::*;
    use chrono::{Duration as Span, Utc};

    /// `count` lines made by `line(i)`, `every_ms` apart from `start`, as
    /// rsyslog writes them (RFC 3339 time: no year to guess).
    fn block(start: chrono::DateTime<Utc>, count: i64, every_ms: i64, line: impl Fn(i64) -> String) -> Vec<String> {
        (0..count).map(|i| format!("{} web01 {}", (start + Span::milliseconds(i * every_ms)).to_rfc3339(), line(i))).collect()
    }

    fn nightly(i: i64) -> String {
        format!("CRON[{}]: (root) CMD (/usr/local/bin/nightly-backup --volume {})", 9000 + i, i % 7)
    }

    /// A failed login of one of `users`, as a brute force tries them.
    fn failed(users: &'static [&'static str]) -> impl Fn(i64) -> String {
        move |i| {
            let user = users[i as usize % users.len()];
            format!("sshd[{}]: Failed password for invalid user {user} from 203.0.113.{} port {} ssh2", 3000 + i, i % 200, 40000 + i)
        }
    }

    /// The user names a brute force tries: none of them in training.
    const DICTIONARY: &[&str] = &["oracle", "guest", "ubuntu", "postgres", "pi", "git", "ftp", "mysql", "support", "nagios", "tomcat"];

    #[test]
    fn a_brute_force_and_a_crash_loop_burst_a_nightly_peak_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        // Training: the host's usual traffic, a nightly backup logging 40
        // lines within a minute on two nights, a failed login now and then.
        let normal = dir.path().join("normal.log");
        fakelogs(&normal, 5_000, 0, 11, "syslog");
        let mut training = block(now - Span::hours(54), 40, 1_200, nightly);
        training.extend(block(now - Span::hours(30), 40, 1_200, nightly));
        training.extend(block(now - Span::hours(20), 30, 600_000, failed(&["admin", "test"])));
        training.extend(std::fs::read_to_string(&normal).unwrap().lines().map(str::to_owned));
        let train_log = dir.path().join("train.log");
        std::fs::write(&train_log, training.join("\n") + "\n").unwrap();
        let data = dir.path().join("data");
        train(&data, "k", &train_log);

        // Then: a crash loop (certbot restarting twice a second), a brute
        // force (5 failed logins a second), the nightly peak again, and
        // ordinary traffic.
        let mut test = block(now - Span::hours(6), 200, 500, |i| format!("systemd[{}]: Starting certbot.service...", 1 + i % 2));
        test.extend(block(now - Span::hours(5), 300, 200, failed(DICTIONARY)));
        test.extend(block(now - Span::hours(4), 40, 1_200, nightly));
        let ordinary = dir.path().join("ordinary.log");
        fakelogs(&ordinary, 3_000, 0, 12, "syslog");
        test.extend(std::fs::read_to_string(&ordinary).unwrap().lines().map(str::to_owned));
        let test_log = dir.path().join("test.log");
        std::fs::write(&test_log, test.join("\n") + "\n").unwrap();

        let out =
            run("logarithm", &["monitor", "--once", "-f", "json", "-D", data.to_str().unwrap(), "-K", "k", test_log.to_str().unwrap()]);
        let bursts: Vec<Value> = json_lines(&ok(&out)).into_iter().filter(|r| r["kind"] == "burst").collect();
        let templates: Vec<&str> = bursts.iter().map(|b| b["template"].as_str().unwrap()).collect();
        assert_eq!(bursts.len(), 2, "one burst each for the crash loop and the brute force, none else: {bursts:?}");
        assert!(templates[0].starts_with("systemd: starting certbot.service"), "{templates:?}");
        // A new user name on every line: the names are the kind's variable part.
        assert_eq!(templates[1], "sshd: failed password for invalid user <*> from <ip> port <num> ssh#", "{templates:?}");
        for b in &bursts {
            assert_eq!(b["window_secs"], 60);
            let (count, usual) = (b["count"].as_u64().unwrap(), b["usual"].as_u64().unwrap());
            assert!(count >= (10 * usual).max(usual + 30) && usual <= 3, "{b}");
        }
        // Each raised once, early: on the 31st line or so, not the 200th.
        assert!(bursts[0]["line"].as_u64().unwrap() < 60, "{bursts:?}");
        // And the brute force's eleven names make one alert at most, not eleven.
        let alerts = json_lines(&ok(&out))
            .into_iter()
            .filter(|r| r["kind"] == "line" && r["reported"] == true && r["message"].as_str().unwrap().contains("Failed password"))
            .count();
        assert!(alerts <= 1, "{alerts} alerts for one brute force");

        let human = ok(&run("logarithm", &["monitor", "--once", "-D", data.to_str().unwrap(), "-K", "k", test_log.to_str().unwrap()]));
        assert!(
            human
                .lines()
                .any(|l| l.starts_with("BURST") && l.contains("lines like \"sshd: failed password") && l.contains("in 60 s (usually ≤")),
            "{human}"
        );
        assert!(train(&data, "k", &train_log).contains("bursts:          on (usual rates of"));

        // Trained on three minutes of logs, a model knows no usual rates:
        // it says so and raises no burst (a burst is only news against
        // what training saw).
        let short = dir.path().join("short.log");
        let lines = block(now - Span::hours(7), 1_000, 180, |i| format!("CRON[{}]: (root) CMD (run-parts /etc/cron.hourly)", 100 + i));
        std::fs::write(&short, lines.join("\n") + "\n").unwrap();
        let quick = dir.path().join("quick");
        let said = train(&quick, "k", &short);
        // Three minutes of time, in three or four calendar minutes.
        assert!(
            ["3", "4"]
                .iter()
                .any(|n| said.contains(&format!("bursts:          off: the lines' timestamps fall in {n} minutes, fewer than the 30"))),
            "{said}"
        );
        let out =
            run("logarithm", &["monitor", "--once", "-f", "json", "-D", quick.to_str().unwrap(), "-K", "k", test_log.to_str().unwrap()]);
        assert!(json_lines(&ok(&out)).iter().all(|r| r["kind"] != "burst"), "no bursts without usual rates");
        let info = ok(&run("logarithm-trainer", &["model", "info", "-D", quick.to_str().unwrap(), "-K", "k"]));
        assert!(info.contains("bursts:          off"), "{info}");
        // The monitor's own `info` says it too, through the component.
        let info = ok(&run("logarithm", &["info", "-D", quick.to_str().unwrap(), "-K", "k"]));
        assert!(info.contains("bursts:           off: the lines' timestamps fall in"), "{info}");

        // The same three minutes as an incremental retrain of the first
        // model: it continues the rates it knew, so bursts stay on, and the
        // brute force is still one.
        let said = train(&data, "k", &short);
        assert!(said.contains("bursts:          on (usual rates of"), "{said}");
        let out =
            run("logarithm", &["monitor", "--once", "-f", "json", "-D", data.to_str().unwrap(), "-K", "k", test_log.to_str().unwrap()]);
        let bursts = json_lines(&ok(&out)).into_iter().filter(|r| r["kind"] == "burst").count();
        assert!(bursts >= 2, "{bursts} bursts after a short retrain");
    }

    /// A central log interleaves hosts whose clocks are minutes apart, so
    /// its lines' times go back and forth. A kind's usual rate is the rate
    /// its lines arrive at, in training as in monitoring: two hosts three
    /// minutes apart, 20 lines a minute each, raise no burst (training
    /// learned "usually ≤ 1" from lines it counted as one-line minutes,
    /// and the monitor raised one). Nor do two hosts 20 minutes apart
    /// (each line of the lagging host started its kind's count over:
    /// training learned no rate, and a burst was reported again and again).
    /// A burst from the lagging host, on its own clock, is one burst.
    #[test]
    fn hosts_minutes_apart_in_one_log_are_no_burst() {
        for skew in [3, 20] {
            hosts_apart(skew);
        }
    }

    fn hosts_apart(skew: i64) {
        let dir = tempfile::tempdir().unwrap();
        let start = Utc::now() - Span::hours(6);
        let two_hosts = |from_min: i64, minutes: i64| -> Vec<String> {
            (from_min * 20..(from_min + minutes) * 20)
                .flat_map(|i| {
                    let at = start + Span::milliseconds(i * 3_000);
                    let line = |host: &str, at: chrono::DateTime<Utc>| {
                        format!("{} {host} app[42]: served request {i} in {} ms", at.to_rfc3339(), i % 97)
                    };
                    [line("web01", at), line("web02", at - Span::minutes(skew))]
                })
                .collect()
        };
        let train_log = dir.path().join("train.log");
        std::fs::write(&train_log, two_hosts(0, 120).join("\n") + "\n").unwrap();
        let data = dir.path().join("data");
        train(&data, "k", &train_log);
        let mut test = two_hosts(120, 60);
        // web02 retries 600 requests within a minute, half an hour in.
        let retries = (0..600).map(|i| {
            let at = start + Span::minutes(150 - skew) + Span::milliseconds(i * 100);
            format!("{} web02 app[42]: served request {i} in {} ms", at.to_rfc3339(), i % 97)
        });
        test.splice(1200..1200, retries);
        let test_log = dir.path().join("test.log");
        std::fs::write(&test_log, test.join("\n") + "\n").unwrap();
        let monitor = |log: &std::path::Path| -> Vec<Value> {
            let out =
                run("logarithm", &["monitor", "--once", "-f", "json", "-D", data.to_str().unwrap(), "-K", "k", log.to_str().unwrap()]);
            json_lines(&ok(&out)).into_iter().filter(|r| r["kind"] == "burst").collect()
        };
        let bursts = monitor(&test_log);
        assert_eq!(bursts.len(), 1, "{skew} min apart, the retries only: {bursts:?}");
        let usual = bursts[0]["usual"].as_u64().unwrap();
        assert!((35..=45).contains(&usual), "{skew} min apart, the usual rate is the 40 a minute both hosts log: {}", bursts[0]);
        // Training's own lines are no burst either.
        assert_eq!(monitor(&train_log), Vec::<Value>::new(), "{skew} min apart");
    }
}

/// Issue 11: speed work must not change a verdict. A model and input kept
/// in `tests/fixtures/golden` (2,000 templated syslog lines with anomalies,
/// NDJSON records, and lines in many scripts and bytes) are scored by
/// `logarithm monitor --all` through the component — whose arithmetic is
/// the same on every CPU, unlike a native build's — and every record's
/// score, `anomalous`, explanation (term, weight, unseen), report, repeat
/// and burst must be what they were when the fixture was made.
///
/// A change that is meant to change verdicts (a new tokenizer rule, a new
/// model format) remakes the fixture, and says so in its commit:
/// `GOLDEN_REGENERATE=1 cargo test -p logarithm --test end_to_end golden`.
mod golden {
    use super::*;
    use std::fmt::Write as _;
    use std::path::{Path, PathBuf};

    const KEY: &str = "golden";

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/golden")
    }

    /// The verdict fields of one output record, as exact text (scores and
    /// weights by their bits).
    fn verdict_line(r: &Value, out: &mut String) {
        let bits = |v: &Value| v.as_f64().map_or_else(|| format!("{v}"), |f| format!("{:016x}", f.to_bits()));
        write!(out, "{} {} {} {}", r["line"], bits(&r["score"]), r["anomalous"], r["report"]).unwrap();
        for t in r["terms"].as_array().into_iter().flatten() {
            write!(out, " {}:{}:{}", t["term"], bits(&t["weight"]), t["unseen"]).unwrap();
        }
        for key in ["repeat", "burst", "error"] {
            if let Some(v) = r.get(key) {
                write!(out, " {key}={v}").unwrap();
            }
        }
        out.push('\n');
    }

    /// Makes the fixture: a model trained on 5,000 templated lines, and the
    /// input to score.
    fn regenerate(dir: &Path) {
        let tmp = tempfile::tempdir().unwrap();
        let train_log = tmp.path().join("train.log");
        fakelogs(&train_log, 5_000, 0, 31, "syslog");
        let data = tmp.path().join("data");
        train(&data, KEY, &train_log);
        std::fs::create_dir_all(dir.join("data/models")).unwrap();
        for f in ["current", "fingerprint-salt", "models/model-000001.lgm", "models/model-000001.json"] {
            std::fs::copy(data.join(f), dir.join("data").join(f)).unwrap();
        }
        let (syslog, json) = (tmp.path().join("test.log"), tmp.path().join("test.json"));
        fakelogs(&syslog, 2_000, 40, 32, "syslog");
        fakelogs(&json, 300, 10, 33, "json");
        let mut input = std::fs::read(&syslog).unwrap();
        input.extend(std::fs::read(&json).unwrap());
        for m in [
            "Señal de parada recibida".as_bytes(),
            "Ошибка чтения диска /dev/sda1: ввод-вывод".as_bytes(),
            "ディスクの読み取りエラーが発生しました".as_bytes(),
            "🔥 disk on fire 🚒 évacuez".as_bytes(),
            "خطأ في القرص الصلب".as_bytes(),
            b"nul\0byte in the middle",
            b"invalid utf-8 \xff\xfe\xc3 here",
            b"\x1b[31mANSI red\x1b[0m and \x1b]0;title\x07",
            b"CamelCase WORDS Mixed123 with 10.0.0.1:22 /var/log/x 0xff 550e8400-e29b-41d4-a716-446655440000",
            b"Checking disks.....OK, cron threshold................0 ../x and so...",
        ] {
            for prefix in ["", "<30>", "Nov  2 08:00:00 web01 app[42]: ", "<30>1 2026-11-02T08:00:00Z web01 App 42 - - "] {
                input.extend_from_slice(prefix.as_bytes());
                input.extend_from_slice(m);
                input.push(b'\n');
            }
        }
        std::fs::write(dir.join("input.log"), input).unwrap();
    }

    #[test]
    fn verdicts_are_unchanged() {
        let dir = fixture();
        let regenerate_now = std::env::var_os("GOLDEN_REGENERATE").is_some();
        if regenerate_now {
            let _ = std::fs::remove_dir_all(&dir);
            regenerate(&dir);
        }
        // A copy: the monitor writes to its data directory.
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("models")).unwrap();
        for f in ["current", "fingerprint-salt", "models/model-000001.lgm", "models/model-000001.json"] {
            std::fs::copy(dir.join("data").join(f), data.join(f)).unwrap();
        }
        let input = dir.join("input.log");
        let records = json_lines(&ok(&scan(&data, KEY, &[input.to_str().unwrap()])));
        let lines: Vec<&Value> = records.iter().filter(|r| r["kind"] == "line").collect();
        let want_lines = std::fs::read(&input).unwrap().split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        assert_eq!(lines.len(), want_lines, "one record per input line");
        let mut verdicts = String::new();
        for r in &lines {
            verdict_line(r, &mut verdicts);
        }
        let anomalous = lines.iter().filter(|r| r["anomalous"] == true).count();
        let digest =
            format!("{} lines, {anomalous} anomalous, verdicts {:016x}\n", lines.len(), xxhash_rust::xxh3::xxh3_64(verdicts.as_bytes()));
        let kept = dir.join("verdicts.digest");
        if regenerate_now {
            std::fs::write(&kept, &digest).unwrap();
        }
        let want = std::fs::read_to_string(&kept).unwrap();
        assert!(anomalous > 20 && anomalous < lines.len() / 5, "{digest}");
        assert_eq!(
            digest,
            want,
            "verdicts changed; if that is meant, remake the fixture (see the module's doc). First records now:\n{}",
            verdicts.lines().take(5).collect::<Vec<_>>().join("\n")
        );
    }
}
