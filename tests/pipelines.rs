//! Issue 9: the detector in the pipelines people run, each tested against
//! the real program: Fluent Bit's `filter_wasm` (tail and systemd inputs),
//! rsyslog's `mmexternal`, an NDJSON pipe (`logarithm filter`), the
//! component in Node via jco, and the systemd units.

mod common;

use common::*;

#[path = "pipelines/node.rs"]
mod node;
#[path = "pipelines/systemd.rs"]
mod systemd;

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}"))).collect()
}

/// The native host's verdicts on a file or journal directory, by raw line
/// (the message for the journal): score and anomalous.
fn native_verdicts(t: &Trained, args: &[&str], by: &str) -> BTreeMap<String, (f64, bool)> {
    json_lines(&ok(&scan(&t.data, t.key, args)))
        .iter()
        .map(|r| (r[by].as_str().unwrap().to_owned(), (r["score"].as_f64().unwrap(), r["anomalous"].as_bool().unwrap())))
        .collect()
}

/// The key of [`trained`]'s model, in a directory of its own (the way a
/// systemd credentials directory holds it), as `logarithm-key`.
fn key_dir(t: &Trained) -> PathBuf {
    let dir = t.dir.path().join("keys");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("logarithm-key"), t.key).unwrap();
    dir
}

/// Waits until `cond` holds (checking every 100 ms), failing after `secs`.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fluent Bit with the detector filter, through the real `fluent-bit`
/// (shared/tools/fluent-bit, or `LOGARITHM_FLUENT_BIT`).
mod fluent_bit {
    use super::*;

    fn binary() -> PathBuf {
        let path = std::env::var_os("LOGARITHM_FLUENT_BIT")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("../shared/tools/fluent-bit/bin/fluent-bit"));
        assert!(path.is_file(), "Fluent Bit is needed at {} (or set LOGARITHM_FLUENT_BIT)", path.display());
        path
    }

    /// The filter module, as users get it: `logarithm export fluent-bit`.
    fn module(dir: &Path) -> PathBuf {
        let path = dir.join("logarithm.wasm");
        ok(&run("logarithm", &["export", "fluent-bit", "-o", path.to_str().unwrap()]));
        path
    }

    /// A `[FILTER]` section for the module.
    fn filter(module: &Path, function: &str, accessible: &[&Path], heap: &str) -> String {
        let paths: Vec<String> = accessible.iter().map(|p| p.display().to_string()).collect();
        format!(
            "[FILTER]\n    Name wasm\n    Match *\n    WASM_Path {}\n    Function_Name {function}\n    Event_Format json\n    Accessible_Paths {}\n    Wasm_Heap_Size {heap}\n    Wasm_Stack_Size 256K\n",
            module.display(),
            paths.join(",")
        )
    }

    /// Runs Fluent Bit with `inputs` and `filters`, all records to a file,
    /// until the file holds `expect` records (and a moment longer, to see
    /// any extra one); returns them and Fluent Bit's log.
    fn run_until(dir: &Path, inputs: &str, filters: &str, expect: usize) -> (Vec<Value>, String) {
        let out = dir.join("out");
        fs::create_dir_all(&out).unwrap();
        let conf = dir.join("fluent-bit.conf");
        fs::write(
            &conf,
            format!(
                "[SERVICE]\n    Flush 0.2\n    Log_Level info\n{inputs}{filters}[OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File records.json\n    Format plain\n",
                out.display()
            ),
        )
        .unwrap();
        let log = dir.join("fluent-bit.log");
        let mut child = Command::new(binary())
            .args(["-c", conf.to_str().unwrap()])
            .current_dir(dir)
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::from(fs::File::create(dir.join("fluent-bit.err")).unwrap()))
            .spawn()
            .expect("cannot run fluent-bit");
        let records = out.join("records.json");
        let count = || fs::read_to_string(&records).map(|t| t.lines().count()).unwrap_or(0);
        let result = std::panic::catch_unwind(|| wait_for(60, &format!("{expect} records out of Fluent Bit"), || count() >= expect));
        if result.is_ok() {
            std::thread::sleep(Duration::from_millis(1500));
        }
        ok(&Command::new("kill").args(["-TERM", &child.id().to_string()]).output().unwrap());
        child.wait().unwrap();
        let log_text = fs::read_to_string(&log).unwrap_or_default() + &fs::read_to_string(dir.join("fluent-bit.err")).unwrap_or_default();
        if let Err(e) = result {
            panic!("{e:?}; Fluent Bit said:\n{log_text}");
        }
        (json_lines(&fs::read_to_string(&records).unwrap()), log_text)
    }

    /// The same score: Fluent Bit re-prints the module's JSON numbers with
    /// 16 significant digits (msgpack and back), so only the 17th may differ.
    fn assert_same_score(fluent_bit: f64, native: f64, what: &str) {
        assert!((fluent_bit - native).abs() <= 1e-15 * native.abs().max(1e-300), "{what}: {fluent_bit} in Fluent Bit, {native} native");
    }

    fn tail(path: &Path) -> String {
        format!("[INPUT]\n    Name tail\n    Path {}\n    Read_From_Head true\n    Tag logs\n", path.display())
    }

    /// Tail input → the filter → file output: every record comes out exactly
    /// once, enriched, with the scores the native host gives the same lines;
    /// the anomalies-only function passes just the anomalies.
    #[test]
    fn tail_input_every_record_once_with_native_scores() {
        let t = trained();
        let work = t.dir.path().join("fb");
        fs::create_dir_all(&work).unwrap();
        let log = t.dir.path().join("app.log");
        let anomalies = fakelogs(&log, 2_000, 20, 5, "syslog");
        let native = native_verdicts(&t, &[log.to_str().unwrap()], "raw");
        let module = module(&work);
        let keys = key_dir(&t);
        let (records, fb_log) = run_until(&work, &tail(&log), &filter(&module, "logarithm_filter", &[&t.data, &keys], "8M"), 2_000);
        assert!(fb_log.contains("logarithm: scoring with model version 1"), "{fb_log}");
        assert_eq!(records.len(), 2_000, "every record exactly once");
        let lines: Vec<String> = fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
        for (i, (r, line)) in records.iter().zip(&lines).enumerate() {
            assert_eq!(r["log"].as_str(), Some(line.as_str()), "record {i} in order");
            let (score, anomalous) = native[line];
            assert_same_score(r["anomaly_score"].as_f64().unwrap(), score, &format!("record {i}: {r}"));
            assert_eq!(r["anomalous"].as_bool(), Some(anomalous), "record {i}");
            assert!(r["anomaly_terms"].is_array());
        }
        let flagged: Vec<usize> = records.iter().enumerate().filter(|(_, r)| r["anomalous"] == true).map(|(i, _)| i + 1).collect();
        let caught = anomalies.iter().filter(|a| flagged.contains(&(**a as usize))).count();
        assert!(caught >= 18, "{caught} of 20 injected anomalies flagged");

        // The anomalies-only function: exactly the anomalous records.
        let work = t.dir.path().join("fb-anomalies");
        fs::create_dir_all(&work).unwrap();
        let (only, _) =
            run_until(&work, &tail(&log), &filter(&module, "logarithm_filter_anomalies", &[&t.data, &keys], "8M"), flagged.len());
        assert_eq!(only.len(), flagged.len());
        assert!(only.iter().all(|r| r["anomalous"] == true));
    }

    /// Fluent Bit's systemd input on journal files (made by
    /// `systemd-journal-remote`) → the filter: every entry once, with the
    /// scores the native host gives the same journal.
    #[test]
    fn systemd_input_scores_like_the_native_journal_reader() {
        let t = trained();
        let journal = t.dir.path().join("journal");
        fs::create_dir_all(&journal).unwrap();
        let base = now_usec() - 600_000_000;
        let mut export = Vec::new();
        let messages: Vec<String> = (0..200)
            .map(|i| match i % 50 {
                7 => format!("Out of memory: Killed process {i} (java) total-vm:123kB"),
                _ => format!("({}) CMD (run-parts /etc/cron.{})", ["root", "alice", "bob"][i % 3], ["hourly", "daily"][i % 2]),
            })
            .collect();
        for (i, m) in messages.iter().enumerate() {
            journal_entry(&mut export, base + i as u64 * 1000, i as u64 + 1, "cron", m.as_bytes());
        }
        journal_file(&journal.join("a.journal"), &export);
        let native = native_verdicts(&t, &["--journal-dir", journal.to_str().unwrap()], "message");
        let work = t.dir.path().join("fb");
        fs::create_dir_all(&work).unwrap();
        let module = module(&work);
        let keys = key_dir(&t);
        let input = format!("[INPUT]\n    Name systemd\n    Path {}\n    Read_From_Tail Off\n    Tag journal\n", journal.display());
        let (records, _) = run_until(&work, &input, &filter(&module, "logarithm_filter", &[&t.data, &keys], "8M"), messages.len());
        assert_eq!(records.len(), messages.len(), "every journal entry once");
        for r in &records {
            let message = r["MESSAGE"].as_str().unwrap();
            let (score, anomalous) = native[message];
            assert_same_score(r["anomaly_score"].as_f64().unwrap(), score, message);
            assert_eq!(r["anomalous"].as_bool(), Some(anomalous), "{r}");
        }
        assert_eq!(records.iter().filter(|r| r["anomalous"] == true).count(), 4, "the four OOM kills");
    }

    /// Without its key, with a damaged model, the filter says so in Fluent
    /// Bit's log and passes every record on unscored, with the reason; a
    /// model installed while Fluent Bit runs is picked up without a restart.
    #[test]
    fn no_key_a_bad_model_and_a_new_model() {
        let t = trained();
        let log = t.dir.path().join("app.log");
        fakelogs(&log, 50, 0, 6, "syslog");
        let work = t.dir.path().join("fb-nokey");
        fs::create_dir_all(&work).unwrap();
        let module = module(&work);
        let (records, fb_log) = run_until(&work, &tail(&log), &filter(&module, "logarithm_filter", &[&t.data], "8M"), 50);
        assert_eq!(records.len(), 50);
        assert!(fb_log.contains("logarithm: error: no model, records pass unscored: no key file"), "{fb_log}");
        assert!(records.iter().all(|r| r["anomaly_error"].as_str().unwrap().contains("no key file") && r.get("anomaly_score").is_none()));

        let keys = key_dir(&t);
        let model_path = t.data.join("models/model-000001.lgm");
        let good = fs::read(&model_path).unwrap();
        let mut bad = good.clone();
        let at = bad.len() / 2;
        bad[at] ^= 1;
        fs::write(&model_path, &bad).unwrap();
        let work = t.dir.path().join("fb-bad");
        fs::create_dir_all(&work).unwrap();
        let (records, fb_log) = run_until(&work, &tail(&log), &filter(&module, "logarithm_filter", &[&t.data, &keys], "8M"), 50);
        assert_eq!(records.len(), 50);
        assert!(fb_log.contains("corrupt model"), "{fb_log}");
        assert!(records.iter().all(|r| r["anomaly_error"].as_str().unwrap().contains("corrupt model")));
        fs::write(&model_path, &good).unwrap();

        // Live: lines keep coming while version 2 is installed.
        let live = t.dir.path().join("live.log");
        fs::write(&live, "").unwrap();
        let work = t.dir.path().join("fb-live");
        fs::create_dir_all(&work).unwrap();
        let writer = {
            let (live, data, key, history) = (live.clone(), t.data.clone(), t.key, log.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                let mut f = fs::OpenOptions::new().append(true).open(&live).unwrap();
                for i in 0..100 {
                    if i == 30 {
                        ok(&run("logarithm-trainer", &["train", "-D", data.to_str().unwrap(), "-K", key, history.to_str().unwrap()]));
                    }
                    writeln!(f, "Nov  2 08:00:00 web01 CRON[{i}]: (root) CMD (true)").unwrap();
                    std::thread::sleep(Duration::from_millis(60));
                }
            })
        };
        let (records, fb_log) = run_until(&work, &tail(&live), &filter(&module, "logarithm_filter", &[&t.data, &keys], "8M"), 100);
        writer.join().unwrap();
        assert_eq!(records.len(), 100, "no line lost or repeated across the reload");
        assert!(records.iter().all(|r| r.get("anomaly_score").is_some()));
        assert!(fb_log.contains("scoring with model version 1") && fb_log.contains("scoring with model version 2"), "{fb_log}");
    }
}
