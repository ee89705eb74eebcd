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
use std::time::Duration;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The native host's verdicts on a file or journal directory, by raw line
/// (the message for the journal): score and anomalous.
fn native_verdicts(t: &Trained, args: &[&str], by: &str) -> BTreeMap<String, (f64, bool)> {
    json_lines(&ok(&scan(&t.data, t.key, args)))
        .iter()
        .filter(|r| r["kind"] == "line")
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

    /// The filter module, as users get it: `logarithm export fluent-bit`,
    /// into directories it makes (`/usr/local/lib/logarithm` on a fresh
    /// host), readable by the shipper's user, even under a strict umask
    /// (review: the directories were 0700).
    fn module(dir: &Path) -> PathBuf {
        let path = dir.join("lib/logarithm/logarithm.wasm");
        let mut export = Command::new("sh");
        hermetic(&mut export);
        export.args(["-c", "umask 077; exec \"$0\" export fluent-bit -o \"$1\""]).arg(bin("logarithm")).arg(&path);
        ok(&export.output().unwrap());
        let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&fs::metadata(p).unwrap().permissions()) & 0o777;
        assert_eq!([mode(&path), mode(&dir.join("lib/logarithm")), mode(&dir.join("lib"))], [0o644, 0o755, 0o755]);
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
        run_with(dir, &[], inputs, filters, expect)
    }

    /// [`run_until`] with more arguments for `fluent-bit` (`-e PLUGIN`).
    fn run_with(dir: &Path, args: &[&str], inputs: &str, filters: &str, expect: usize) -> (Vec<Value>, String) {
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
            .args(args)
            .args(["-c", conf.to_str().unwrap()])
            .current_dir(dir)
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::from(fs::File::create(dir.join("fluent-bit.err")).unwrap()))
            .spawn()
            .expect("cannot run fluent-bit");
        let records = out.join("records.json");
        let count = || written_so_far(&records).lines().count();
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

    /// `marked` (annotating only the anomalies) is `records` (annotating
    /// every record) with the fields taken off the records that are neither
    /// anomalous nor alerts.
    fn fields_on_the_anomalies_only(marked: &[Value], records: &[Value]) {
        assert_eq!(marked.len(), records.len());
        for (i, (m, r)) in marked.iter().zip(records).enumerate() {
            if r["anomalous"] == true || r["anomaly_reported"] == true {
                assert_eq!(m, r, "record {i}");
            } else {
                assert_eq!(m.as_object().unwrap().keys().collect::<Vec<_>>(), ["log"], "record {i}: {m}");
                assert_eq!(m["log"], r["log"]);
            }
        }
    }

    /// Fluent Bit's records of the lines of `log`, in order, with the
    /// scores the native host gave them, and at least 18 of the 20 injected
    /// `anomalies` flagged; returns the flagged line numbers.
    fn scored_like_the_host(records: &[Value], log: &Path, native: &BTreeMap<String, (f64, bool)>, anomalies: &[u64]) -> Vec<usize> {
        let lines: Vec<String> = String::from_utf8_lossy(&fs::read(log).unwrap()).lines().map(str::to_owned).collect();
        for (i, (r, line)) in records.iter().zip(&lines).enumerate() {
            // The line's own bytes pass on; Fluent Bit's file output writes
            // a byte that is not UTF-8 as U+E0xx, the host reads it as U+FFFD.
            let valid = |l: &str| l.replace(|c| c == '\u{fffd}' || ('\u{e000}'..='\u{e0ff}').contains(&c), "");
            assert_eq!(r["log"].as_str().map(valid), Some(valid(line)), "record {i} in order");
            let (score, anomalous) = native[line];
            assert_same_score(r["anomaly_score"].as_f64().unwrap(), score, &format!("record {i}: {r}"));
            assert_eq!(r["anomalous"].as_bool(), Some(anomalous), "record {i}");
            assert!(r["anomaly_terms"].is_array());
        }
        let flagged: Vec<usize> = records.iter().enumerate().filter(|(_, r)| r["anomalous"] == true).map(|(i, _)| i + 1).collect();
        let caught = anomalies.iter().filter(|a| flagged.contains(&(**a as usize))).count();
        assert!(caught >= 18, "{caught} of 20 injected anomalies flagged");
        flagged
    }

    fn tail(path: &Path) -> String {
        format!("[INPUT]\n    Name tail\n    Path {}\n    Read_From_Head true\n    Tag logs\n", path.display())
    }

    /// Tail input → the filter → file output: every record comes out exactly
    /// once, enriched, with the scores the native host gives the same lines;
    /// the anomalies-only function passes just the anomalies, and
    /// `logarithm_annotate_anomalies` puts the fields on them only.
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
        let flagged = scored_like_the_host(&records, &log, &native, &anomalies);

        // The anomalies-only function: exactly the records that raise an
        // alert (issue 15: a kind already reported is counted, not passed).
        let alerts: Vec<&Value> = records.iter().filter(|r| r["anomaly_reported"] == true).collect();
        assert!(!alerts.is_empty() && alerts.len() <= flagged.len() + 5, "{} alerts, {} anomalous", alerts.len(), flagged.len());
        let work = t.dir.path().join("fb-anomalies");
        fs::create_dir_all(&work).unwrap();
        let (only, _) =
            run_until(&work, &tail(&log), &filter(&module, "logarithm_filter_anomalies", &[&t.data, &keys], "8M"), alerts.len());
        assert_eq!(only.iter().collect::<Vec<_>>(), alerts, "the same alerts, in order");

        // Every record, the fields on the anomalies only.
        let work = t.dir.path().join("fb-annotate");
        fs::create_dir_all(&work).unwrap();
        let (marked, _) = run_until(&work, &tail(&log), &filter(&module, "logarithm_annotate_anomalies", &[&t.data, &keys], "8M"), 2_000);
        fields_on_the_anomalies_only(&marked, &records);
    }

    /// Fields only a filter may write, on records that arrive with them (an
    /// application's own JSON log): gone from a record passed on as it came
    /// (`logarithm_annotate_anomalies`), replaced on a scored one
    /// (`logarithm_filter`), so an alerts stage routes on this filter's word
    /// only (review: a forged `"anomaly_reported": true` went to the alerts,
    /// a stale `anomaly_error` stayed beside a fresh score).
    #[test]
    fn fields_a_record_came_with_are_this_filters_or_gone() {
        let t = trained();
        let line = fs::read_to_string(t.dir.path().join("train.log")).unwrap().lines().next().unwrap().to_owned();
        let dummy = |extra: &str| {
            let record = format!("{{\"log\":{},{extra}}}", serde_json::to_string(&line).unwrap());
            format!("[INPUT]\n    Name dummy\n    Dummy {record}\n    Samples 1\n    Tag logs\n")
        };
        let inputs = dummy(r#""anomaly_reported":true,"anomalous":true,"anomaly_terms":["forged"],"anomaly_score":1.0"#)
            + &dummy(r#""anomaly_error":"stale","anomaly_repeat":{"count":9},"anomaly_burst":{"count":99}"#);
        let keys = key_dir(&t);
        for function in ["logarithm_annotate_anomalies", "logarithm_filter"] {
            let work = t.dir.path().join(function);
            fs::create_dir_all(&work).unwrap();
            let module = module(&work);
            let (records, _) = run_until(&work, &inputs, &filter(&module, function, &[&t.data, &keys], "8M"), 2);
            assert_eq!(records.len(), 2, "{function}");
            for r in &records {
                assert_eq!(r["log"], line.as_str(), "{function}: {r}");
                assert!(
                    r.get("anomaly_error").is_none() && r.get("anomaly_repeat").is_none() && r.get("anomaly_burst").is_none(),
                    "{function}: {r}"
                );
                match function {
                    "logarithm_filter" => assert!(
                        r["anomaly_score"].as_f64().is_some_and(|s| s < 1.0) && r["anomaly_terms"] != serde_json::json!(["forged"]),
                        "{r}"
                    ),
                    _ => assert_eq!(r.as_object().unwrap().keys().collect::<Vec<_>>(), ["log"], "a usual line, as it came: {r}"),
                }
            }
        }
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

    /// `examples/fluent-bit/fluent-bit.yaml` as it is (its paths pointed at
    /// a test directory): tail and systemd inputs, every record to stdout
    /// scored, the anomalies also to their own file.
    #[test]
    fn the_example_config_routes_anomalies_to_their_own_file() {
        example_routes_alerts("fluent-bit.yaml", |lib| {
            let module = lib.join("logarithm.wasm");
            ok(&run("logarithm", &["export", "fluent-bit", "-o", module.to_str().unwrap()]));
            ("/usr/local/lib/logarithm/logarithm.wasm", module)
        });
    }

    /// `examples/fluent-bit/native-plugin.yaml`, the same pipeline with the
    /// native plugin (its second stage, `pass: marked`, a processor).
    #[test]
    fn the_native_plugin_example_routes_anomalies_to_their_own_file() {
        example_routes_alerts("native-plugin.yaml", |lib| ("/usr/local/lib/logarithm/flb-filter_logarithm.so", plugin(lib)));
    }

    /// Runs an example config, its filter installed by `install` (which
    /// returns the path the example names and where it is).
    fn example_routes_alerts(name: &str, install: impl FnOnce(&Path) -> (&'static str, PathBuf)) {
        let t = trained();
        let work = t.dir.path().join("example");
        let (lib, logs, out) = (work.join("lib"), work.join("journal"), work.join("out"));
        for d in [&lib, &logs, &out] {
            fs::create_dir_all(d).unwrap();
        }
        let (named, installed) = install(&lib);
        // The data directory's generated key, as a trainer without -K leaves it.
        fs::write(t.data.join("key"), t.key).unwrap();
        let syslog = work.join("syslog");
        let injected = fakelogs(&syslog, 500, 5, 9, "syslog");
        // A line over tail's buffer_max_size in the middle is skipped, and
        // the lines after it are still read (without skip_long_lines, tail
        // stops reading the file there).
        let text = fs::read_to_string(&syslog).unwrap();
        let (head, rest) = text.split_at(text.match_indices('\n').nth(249).unwrap().0 + 1);
        fs::write(&syslog, format!("{head}Nov  2 08:00:00 web01 app[1]: {}\n{rest}", "x".repeat(2 << 20))).unwrap();
        let mut export = Vec::new();
        for i in 0..50u64 {
            journal_entry(&mut export, now_usec() - 60_000_000 + i, i + 1, "CRON", b"(root) CMD (run-parts /etc/cron.hourly)");
        }
        journal_file(&logs.join("j.journal"), &export);
        let conf = work.join(name);
        let text = example(
            &format!("fluent-bit/{name}"),
            &[
                ("/var/log/syslog", &syslog),
                ("/var/log/journal", &logs),
                ("/var/lib/logarithm", &t.data),
                (named, &installed),
                ("/var/log/logarithm", &out),
            ],
        );
        fs::write(&conf, text).unwrap();
        let stdout = work.join("stdout.json");
        let mut child = Command::new(binary())
            .args(["-c", conf.to_str().unwrap()])
            .stdout(fs::File::create(&stdout).unwrap())
            .stderr(fs::File::create(work.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let records =
            || json_lines(&written_so_far(&stdout).lines().filter(|l| l.starts_with('{')).map(|l| format!("{l}\n")).collect::<String>());
        let waited = std::panic::catch_unwind(|| wait_for(60, "550 records on stdout", || records().len() >= 550));
        std::thread::sleep(Duration::from_millis(1500));
        ok(&Command::new("kill").args(["-TERM", &child.id().to_string()]).output().unwrap());
        child.wait().unwrap();
        if let Err(e) = waited {
            panic!("{e:?}: {}", fs::read_to_string(work.join("stderr")).unwrap_or_default());
        }
        let all = records();
        assert_eq!(all.len(), 550, "every record once");
        assert!(all.iter().all(|r| r["anomaly_score"].is_f64()), "every record scored");
        let anomalous: Vec<&Value> = all.iter().filter(|r| r["anomalous"] == true).collect();
        assert!(anomalous.len() >= 5, "{} anomalies for {} injected", anomalous.len(), injected.len());
        let alerts: Vec<&Value> = all.iter().filter(|r| r["anomaly_reported"] == true).collect();
        assert!(!alerts.is_empty());
        // The file output adds its `date`; the two inputs may interleave differently.
        let undated = |r: &Value| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("date");
            r
        };
        let by_log =
            |a: &Value, b: &Value| a["log"].to_string().cmp(&b["log"].to_string()).then(a.to_string().len().cmp(&b.to_string().len()));
        let mut routed: Vec<Value> = json_lines(&fs::read_to_string(out.join("anomalies.json")).unwrap()).iter().map(undated).collect();
        let mut alerts: Vec<Value> = alerts.into_iter().map(undated).collect();
        routed.sort_by(by_log);
        alerts.sort_by(by_log);
        assert_eq!(routed, alerts, "the alerts, and only them, in their own file");
    }

    /// Lines in any script and any bytes (accents, Cyrillic, emoji, invalid
    /// UTF-8, NUL, escape sequences) go through Fluent Bit and the filter:
    /// every one scored, none dropped.
    #[test]
    fn any_script_and_any_bytes() {
        let t = trained();
        let keys = key_dir(&t);
        let log = t.dir.path().join("scripts.log");
        fs::write(
            &log,
            b"Se\xc3\xb1al de parada recibida\n\xd0\x9e\xd1\x88\xd0\xb8\xd0\xb1\xd0\xba\xd0\xb0 \xf0\x9f\x94\xa5\n\xe3\x82\xa8\xe3\x83\xa9\xe3\x83\xbc\ninvalid \xff\xfe bytes\nnul \x00 inside\nesc \x1b[31m red\n",
        )
        .unwrap();
        let work = t.dir.path().join("fb-scripts");
        fs::create_dir_all(&work).unwrap();
        let module = module(&work);
        let (records, _) = run_until(&work, &tail(&log), &filter(&module, "logarithm_filter", &[&t.data, &keys], "1M"), 6);
        assert_eq!(records.len(), 6, "{records:?}");
        assert!(records.iter().all(|r| r["anomaly_score"].is_f64()), "{records:?}");
        assert_eq!(records[0]["log"], "Señal de parada recibida");
        assert!(records[1]["anomaly_terms"].to_string().contains("severity:err (ошибка)"), "{}", records[1]);
    }

    /// A record far larger than the default app heap (`Wasm_Heap_Size`
    /// 8192) still reaches the module and is scored: the module exports its
    /// allocator, so WAMR copies records into memory that grows. The AOT
    /// variant (`--aot`, compiled by WAMR's wamrc) scores like the
    /// interpreted module.
    #[test]
    fn oversized_records_and_the_aot_module() {
        let t = trained();
        let keys = key_dir(&t);
        let log = t.dir.path().join("big.log");
        let big = format!("Nov  2 08:00:00 web01 app[1]: {}", "payload ".repeat(12_500));
        fs::write(
            &log,
            format!("Nov  2 08:00:00 web01 CRON[1]: (root) CMD (true)\n{big}\nNov  2 08:00:01 web01 CRON[2]: (root) CMD (true)\n"),
        )
        .unwrap();
        let input = format!("{}    Buffer_Max_Size 1M\n", tail(&log));
        let work = t.dir.path().join("fb-small");
        fs::create_dir_all(&work).unwrap();
        let module = module(&work);
        // The default heap, far smaller than the 100 KB record.
        let (records, _) = run_until(&work, &input, &filter(&module, "logarithm_filter", &[&t.data, &keys], "8192"), 3);
        assert_eq!(records.len(), 3, "nothing vanished: {records:?}");
        assert_eq!(records[1]["log"].as_str(), Some(big.as_str()));
        assert!(records.iter().all(|r| r["anomaly_score"].is_f64()), "every record scored, the big one too");

        let wamrc = root().join("../shared/tools/fluent-bit/bin/wamrc");
        let aot = work.join("logarithm.aot");
        let args =
            ["export", "fluent-bit", "-o", module.to_str().unwrap(), "--aot", aot.to_str().unwrap(), "--wamrc", wamrc.to_str().unwrap()];
        ok(&run("logarithm", &args));
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&aot).unwrap().permissions()) & 0o777, 0o644);
        let interpreted = records;
        let work = t.dir.path().join("fb-aot");
        fs::create_dir_all(&work).unwrap();
        let (records, _) = run_until(&work, &input, &filter(&aot, "logarithm_filter", &[&t.data, &keys], "8M"), 3);
        for (a, i) in records.iter().zip(&interpreted) {
            assert_eq!(a["anomaly_score"], i["anomaly_score"], "AOT and interpreter agree");
        }
        let missing = run(
            "logarithm",
            &["export", "fluent-bit", "-o", module.to_str().unwrap(), "--aot", aot.to_str().unwrap(), "--wamrc", "/nonexistent/wamrc"],
        );
        fails_with(&missing, "/nonexistent/wamrc");
        // A wamrc that fails half way (it wrote part of its output) leaves
        // the good .aot as it was, and no file of its own behind.
        let good = fs::read(&aot).unwrap();
        let broken = t.dir.path().join("broken-wamrc");
        fs::write(&broken, "#!/bin/sh\nprintf 'half a module' > \"$4\"\necho 'out of memory' >&2\nexit 1\n").unwrap();
        fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let dir = aot.parent().unwrap();
        let before = fs::read_dir(dir).unwrap().count();
        let failed = run(
            "logarithm",
            &["export", "fluent-bit", "-o", module.to_str().unwrap(), "--aot", aot.to_str().unwrap(), "--wamrc", broken.to_str().unwrap()],
        );
        fails_with(&failed, "out of memory");
        fails_with(&failed, "is left as it was");
        assert_eq!(fs::read(&aot).unwrap(), good, "the good .aot is kept");
        assert_eq!(fs::read_dir(dir).unwrap().count(), before, "no file left behind");
    }

    /// The native plugin, built as users build it (`cargo build -p
    /// logarithm-detector --features fluent-bit-plugin`, here into a target
    /// directory of its own), once, named as Fluent Bit requires.
    fn plugin(dir: &Path) -> PathBuf {
        static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        let built = BUILT.get_or_init(|| {
            let target = root().join("target/fluent-bit-plugin");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-q", "-p", "logarithm-detector", "--features", "fluent-bit-plugin", "--target-dir"])
                .arg(&target)
                .current_dir(root())
                .status()
                .expect("cannot run cargo");
            assert!(status.success(), "building the plugin failed");
            target.join("debug/liblogarithm_detector.so")
        });
        let path = dir.join("flb-filter_logarithm.so");
        fs::copy(built, &path).unwrap();
        path
    }

    /// The native plugin in the real Fluent Bit: every record of a tail
    /// input exactly once, in order, with the native host's score (any
    /// script, any bytes, a 1 MiB line); `Pass anomalies` passes exactly the
    /// alerts; `Annotate anomalies` leaves the other records as they came,
    /// and does the same behind a threaded input; without a model records
    /// pass with the reason; an unknown key is
    /// refused by Fluent Bit; a new model is loaded without a restart.
    #[test]
    fn native_plugin_scores_like_the_host_and_passes_the_alerts() {
        let t = trained();
        let work = t.dir.path().join("fb-plugin");
        fs::create_dir_all(&work).unwrap();
        let plugin = plugin(&work);
        let load = ["-e", plugin.to_str().unwrap()];
        let keys = key_dir(&t);
        let log = t.dir.path().join("app.log");
        let anomalies = fakelogs(&log, 2_000, 20, 5, "syslog");
        let garbage: &[u8] = b"Se\xc3\xb1al de parada recibida\n\xd0\x9e\xd1\x88\xd0\xb8\xd0\xb1\xd0\xba\xd0\xb0 \xf0\x9f\x94\xa5\ninvalid \xff\xfe bytes\nnul \x00 inside\nesc \x1b[31m red\n";
        let big = format!("Nov  2 08:00:00 web01 app[1]: {}\n", "payload ".repeat(131_072));
        fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &[garbage, big.as_bytes()].concat()))
            .unwrap();
        // The host keeps lines up to 64 KiB unless told: the 1 MiB one whole.
        let native = native_verdicts(&t, &[log.to_str().unwrap(), "--max-line-bytes", "2097152", "--batch-size", "64"], "raw");
        let section = |extra: &str| {
            format!(
                "[FILTER]\n    Name logarithm\n    Match *\n    Data_Dir {}\n    Key_File {}\n{extra}",
                t.data.display(),
                keys.join("logarithm-key").display()
            )
        };
        // A 1 MiB line too: tail's buffer is the only limit.
        let input = format!("{}    Buffer_Max_Size 2M\n", tail(&log));
        let (records, fb_log) = run_with(&work, &load, &input, &section(""), 2_006);
        assert!(fb_log.contains("logarithm: scoring with model version 1"), "{fb_log}");
        assert_eq!(records.len(), 2_006, "every record exactly once");
        scored_like_the_host(&records, &log, &native, &anomalies);

        let alerts: Vec<&Value> = records.iter().filter(|r| r["anomaly_reported"] == true).collect();
        let work = t.dir.path().join("fb-plugin-anomalies");
        fs::create_dir_all(&work).unwrap();
        let (only, _) = run_with(&work, &load, &input, &section("    Pass anomalies\n"), alerts.len());
        assert_eq!(only.iter().collect::<Vec<_>>(), alerts, "the same alerts, in order");

        // Fields on the anomalies only: every record passes, the anomalies
        // (and alerts) as before, the others as they came.
        let work = t.dir.path().join("fb-plugin-annotate");
        fs::create_dir_all(&work).unwrap();
        let (marked, _) = run_with(&work, &load, &input, &section("    Annotate anomalies\n"), 2_006);
        fields_on_the_anomalies_only(&marked, &records);
        // The same with the input in a thread of its own, where Fluent Bit
        // then runs the filter (README's setting for a busy host): the
        // same records, the same fields.
        let work = t.dir.path().join("fb-plugin-threaded");
        fs::create_dir_all(&work).unwrap();
        let threaded = format!("{input}    Threaded On\n");
        let (marked, _) = run_with(&work, &load, &threaded, &section("    Annotate anomalies\n"), 2_006);
        fields_on_the_anomalies_only(&marked, &records);

        // No model there: every record passes, saying why.
        let work = t.dir.path().join("fb-plugin-nomodel");
        fs::create_dir_all(&work).unwrap();
        let empty = t.dir.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        let filter = format!("[FILTER]\n    Name logarithm\n    Match *\n    Data_Dir {}\n", empty.display());
        let (records, fb_log) = run_with(&work, &load, &input, &filter, 2_006);
        assert!(fb_log.contains("logarithm: error: no model, records pass unscored: cannot read"), "{fb_log}");
        assert!(records.iter().all(|r| r["anomaly_error"].as_str().unwrap().contains("no model") && r.get("anomaly_score").is_none()));

        // Keys Fluent Bit does not know of, or a bad `Pass`, stop it at start.
        for (extra, says) in [("    Data_Dri /x\n", "data_dri"), ("    Pass some\n", "Pass must be `all`, `anomalies` or `marked`")] {
            let conf = work.join("bad.conf");
            fs::write(&conf, format!("[INPUT]\n    Name dummy\n{}[OUTPUT]\n    Name null\n    Match *\n", section(extra))).unwrap();
            let out = Command::new(binary()).args(load).args(["-c", conf.to_str().unwrap()]).output().unwrap();
            let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{said}");
            assert!(said.contains(says), "{said}");
        }

        // A new model while Fluent Bit runs, as with the module.
        live_reload(&t, &load, &section(""));
    }

    /// Without its key, with a wrong key, with a damaged model, the filter says so in Fluent
    /// Bit's log and passes every record on unscored, with the reason; a
    /// model installed while Fluent Bit runs is picked up without a restart.
    #[test]
    fn no_key_a_bad_model_and_a_new_model() {
        let t = trained();
        let log = t.dir.path().join("app.log");
        fakelogs(&log, 50, 0, 6, "syslog");
        let module = module(t.dir.path());
        // Fluent Bit in `work`, with the module given `accessible`: every
        // record passes unscored with the error, which Fluent Bit's log says.
        let unscored = |work: &str, accessible: &[&Path], says: &str, error: &str| {
            let work = t.dir.path().join(work);
            fs::create_dir_all(&work).unwrap();
            let (records, fb_log) = run_until(&work, &tail(&log), &filter(&module, "logarithm_filter", accessible, "8M"), 50);
            assert_eq!(records.len(), 50);
            assert!(fb_log.contains(says), "{fb_log}");
            assert!(records.iter().all(|r| r["anomaly_error"].as_str().unwrap().contains(error) && r.get("anomaly_score").is_none()));
        };
        unscored("fb-nokey", &[&t.data], "logarithm: error: no model, records pass unscored: no key file", "no key file");

        // A key file with the wrong passphrase: the error names both fingerprints.
        let wrong = t.dir.path().join("wrong-keys");
        fs::create_dir_all(&wrong).unwrap();
        fs::write(wrong.join("logarithm-key"), "not the passphrase").unwrap();
        unscored("fb-wrong", &[&t.data, &wrong], "wrong encryption key", "wrong encryption key");

        let keys = key_dir(&t);
        let model_path = t.data.join("models/model-000001.lgm");
        let good = fs::read(&model_path).unwrap();
        let mut bad = good.clone();
        let at = bad.len() / 2;
        bad[at] ^= 1;
        fs::write(&model_path, &bad).unwrap();
        unscored("fb-bad", &[&t.data, &keys], "corrupt model", "corrupt model");
        fs::write(&model_path, &good).unwrap();

        // An old model copied under a newer version number is refused, as the
        // host refuses it (rollback protection reads the sealed version).
        let renamed = t.data.join("models/model-000009.lgm");
        fs::write(&renamed, &good).unwrap();
        fs::write(t.data.join("current"), "9\n").unwrap();
        unscored("fb-renamed", &[&t.data, &keys], "model version 9 holds the sealed model version 1", "rollback protection");
        fs::remove_file(&renamed).unwrap();
        fs::write(t.data.join("current"), "1\n").unwrap();

        live_reload(&t, &[], &filter(&module, "logarithm_filter", &[&t.data, &keys], "8M"));
    }

    /// The kinds reported are kept across a restart of Fluent Bit, by the
    /// module (`logarithm-reported-kinds.json` in an accessible directory)
    /// and by the native plugin (`Memory_File`): a second run over the same
    /// log reports none of the kinds the first reported, but for summaries
    /// of kinds that keep happening (their counts carried over too); with
    /// the memory file gone, they are all reported again.
    #[test]
    fn the_kinds_reported_are_kept_across_a_restart() {
        let t = trained();
        let keys = key_dir(&t);
        let state = t.dir.path().join("state");
        fs::create_dir_all(&state).unwrap();
        let module = module(t.dir.path());
        let memory = state.join("logarithm-reported-kinds.json");
        let plugin_dir = t.dir.path().join("fb-plugin-lib");
        fs::create_dir_all(&plugin_dir).unwrap();
        let plugin = plugin(&plugin_dir);
        let load = ["-e", plugin.to_str().unwrap()];
        let faces: [(&str, &[&str], String); 2] = [
            // Created empty, to turn the module's memory on.
            ("module", &[], filter(&module, "logarithm_filter", &[&t.data, &keys, &state], "8M")),
            (
                "plugin",
                &load,
                format!(
                    "[FILTER]\n    Name logarithm\n    Match *\n    Data_Dir {}\n    Key_File {}\n    Memory_File {}\n",
                    t.data.display(),
                    keys.join("logarithm-key").display(),
                    memory.display()
                ),
            ),
        ];
        for (face, args, filters) in &faces {
            let log = t.dir.path().join(format!("{face}.log"));
            fakelogs(&log, 1_000, 12, 41, "syslog");
            fs::write(&memory, "").unwrap();
            let run = |round: &str| {
                let work = t.dir.path().join(format!("fb-{face}-{round}"));
                fs::create_dir_all(&work).unwrap();
                // No record comes after the last: the module, which has
                // neither an exit nor a timer, saved each kind as it was
                // reported (review: it saved the first, then waited for a
                // record a second later that never came).
                let lines = fs::read_to_string(&log).unwrap().lines().count();
                let (records, fb_log) = run_with(&work, args, &tail(&log), filters, lines);
                assert_eq!(records.len(), lines, "{face} {round}: every record once");
                (records, fb_log)
            };
            let alerts =
                |records: &[Value]| records.iter().filter(|r| r["anomaly_reported"] == true && r["anomaly_repeat"].is_null()).count();
            let anomalous = |records: &[Value]| records.iter().filter(|r| r["anomalous"] == true).count();

            let (first, _) = run("first");
            assert!(alerts(&first) > 0, "{face}: the first run reports the new kinds");
            let (second, fb_log) = run("second");
            assert!(fb_log.contains("kinds of anomalies already reported restored from"), "{face}: {fb_log}");
            assert_eq!(anomalous(&second[..1_000]), anomalous(&first[..1_000]), "{face}: the same lines are anomalous");
            assert_eq!(alerts(&second), 0, "{face}: reported again after a restart");

            fs::write(&memory, "").unwrap();
            let (third, _) = run("forgotten");
            assert_eq!(alerts(&third), alerts(&first), "{face}: an empty memory reports every kind again");
        }
    }

    /// Lines keep coming while version 2 of the model is installed (trained
    /// on 1,000 new lines: a retrain on fewer is not installed): Fluent Bit
    /// with `filters` scores every one, and says it switched models,
    /// without a restart.
    fn live_reload(t: &Trained, args: &[&str], filters: &str) {
        let history = t.dir.path().join("history.log");
        fakelogs(&history, 1000, 0, 6, "syslog");
        let live = t.dir.path().join("live.log");
        fs::write(&live, "").unwrap();
        let work = t.dir.path().join("fb-live");
        fs::create_dir_all(&work).unwrap();
        let writer = {
            let (live, data, key) = (live.clone(), t.data.clone(), t.key);
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
        let (records, fb_log) = run_with(&work, args, &tail(&live), filters, 100);
        writer.join().unwrap();
        assert_eq!(records.len(), 100, "no line lost or repeated across the reload");
        assert!(records.iter().all(|r| r.get("anomaly_score").is_some()));
        assert!(fb_log.contains("scoring with model version 1") && fb_log.contains("scoring with model version 2"), "{fb_log}");
    }
}

/// An example config with its system paths pointed at a test directory.
fn example(name: &str, paths: &[(&str, &Path)]) -> String {
    let mut text = fs::read_to_string(root().join("examples").join(name)).unwrap();
    for (from, to) in paths {
        assert!(text.contains(from), "examples/{name} no longer mentions {from}");
        text = text.replace(from, to.to_str().unwrap());
    }
    text
}

/// rsyslog's mmexternal with `logarithm filter --rsyslog`, through a real,
/// unprivileged rsyslogd running `examples/rsyslog/logarithm.conf`.
mod rsyslog {
    use super::*;

    /// Starts a real rsyslogd on `examples/rsyslog/logarithm.conf` (its
    /// paths pointed under `base`, UDP on a free port) plus `extra`
    /// configuration; returns the output directory, the port and the daemon
    /// (stopped when dropped, also by a failed assertion).
    fn start_example(t: &Trained, base: &Path, extra: &str) -> (PathBuf, String, Stopped) {
        start_example_with(t, base, extra, &[])
    }

    /// [`start_example`], with the example's text replaced as `with` says
    /// first (the helper's arguments, say).
    fn start_example_with(t: &Trained, base: &Path, extra: &str, with: &[(&str, &Path)]) -> (PathBuf, String, Stopped) {
        let (work, out) = (base.join("work"), base.join("out"));
        fs::create_dir_all(&work).unwrap();
        fs::create_dir_all(&out).unwrap();
        let key = base.join("key");
        fs::write(&key, t.key).unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let logarithm = bin("logarithm");
        let port_setting = format!("port=\"{port}\"");
        let paths: Vec<(&str, &Path)> = with
            .iter()
            .copied()
            .chain([
                ("/usr/local/bin/logarithm", logarithm.as_path()),
                ("/var/lib/logarithm", &t.data),
                ("/etc/logarithm/key", &key),
                ("/var/log/logarithm", &out),
                ("/var/spool/rsyslog", &work),
                ("port=\"514\"", Path::new(&port_setting)),
            ])
            .collect();
        let text = example("rsyslog/logarithm.conf", &paths);
        let conf = base.join("rsyslog.conf");
        fs::write(&conf, format!("global(workDirectory=\"{}\")\n{text}{extra}", work.display())).unwrap();
        let check = Command::new("rsyslogd")
            .args(["-N1", "-f", conf.to_str().unwrap()])
            .output()
            .expect("rsyslogd is needed (apt-get install rsyslog)");
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        let rsyslogd = Stopped(
            Command::new("rsyslogd")
                .args(["-n", "-f", conf.to_str().unwrap(), "-i", base.join("rsyslogd.pid").to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(fs::File::create(base.join("rsyslogd.err")).unwrap())
                .spawn()
                .unwrap(),
        );
        (out, port, rsyslogd)
    }

    /// Sends a message to the example's UDP input, as `logger` does.
    fn send(port: &str, tag: &str, msg: &str) {
        let status = Command::new("logger").args(["-n", "127.0.0.1", "-P", port, "-d", "--rfc3164", "-t", tag, msg]).status().unwrap();
        assert!(status.success());
    }

    /// Waits until rsyslogd takes messages on `port`. UDP: nothing says it
    /// listens yet, but a probe coming out in `all` does.
    fn wait_ready(port: &str, all: &Path) {
        let before = written_so_far(all).matches("readiness probe").count();
        wait_for(30, "rsyslogd to take messages", || {
            send(port, "probe", "readiness probe");
            std::thread::sleep(Duration::from_millis(200));
            written_so_far(all).matches("readiness probe").count() > before
        });
    }

    /// The lines of `all.log` so far, less the readiness probes.
    fn read_all(all: &Path) -> Vec<String> {
        written_so_far(all).lines().filter(|l| !l.contains("readiness probe")).map(str::to_owned).collect()
    }

    #[test]
    fn example_config_scores_every_message_once_and_routes_anomalies() {
        let t = trained();
        let base = t.dir.path().join("rsyslog");
        let (out, port, rsyslogd) = start_example(&t, &base, "");
        // Normal lines of the trained host's kinds, a few never-seen errors,
        // and lines in other scripts.
        let mut messages: Vec<(String, String)> = Vec::new();
        for i in 0..150 {
            messages.push(("CRON".into(), format!("({}) CMD (run-parts /etc/cron.hourly)", ["root", "alice", "bob"][i % 3])));
            if i % 30 == 7 {
                messages.push(("kernel".into(), format!("Out of memory: Killed process {i} (java) total-vm:{}kB", 1000 + i)));
            }
        }
        messages.push(("app".into(), "Señal de parada recibida — Ошибка 日本 🔥".into()));
        let total = messages.len();
        let all = out.join("all.log");
        let read_all = || read_all(&all);
        wait_ready(&port, &all);
        for (tag, msg) in &messages {
            send(&port, tag, msg);
        }
        wait_for(60, "every message in all.log", || read_all().len() >= total);
        std::thread::sleep(Duration::from_millis(1000));
        drop(rsyslogd);
        let stderr = fs::read_to_string(base.join("rsyslogd.err")).unwrap();
        assert!(!stderr.contains("invalid reply"), "{stderr}");
        let lines = read_all();
        assert_eq!(lines.len(), total, "every message exactly once");
        assert!(
            lines.iter().all(|l| l.contains(" score=0.")
                && (l.contains(" anomalous=true ") || l.contains(" anomalous=false "))
                && (l.ends_with(" reported=true") || l.ends_with(" reported=false"))),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("Señal de parada recibida")));
        let anomalies = json_lines(&fs::read_to_string(out.join("anomalies.json")).unwrap_or_default());
        let oom = messages.iter().filter(|(_, m)| m.starts_with("Out of memory")).count();
        // Every OOM kill is anomalous; the first is routed as an alert, the
        // others are counted against it (issue 15).
        let oom_lines: Vec<&String> = lines.iter().filter(|l| l.contains("Out of memory")).collect();
        assert_eq!(oom_lines.len(), oom);
        assert!(oom_lines.iter().all(|l| l.contains(" anomalous=true ")), "{oom_lines:?}");
        assert!(anomalies.iter().all(|a| a["anomaly"]["reported"] == true));
        let routed_oom = anomalies.iter().filter(|a| a["message"].as_str().unwrap().contains("Out of memory")).count();
        assert_eq!(routed_oom, 1, "the first OOM kill routed to the alerts file, the others counted");
        let probes = anomalies.iter().filter(|a| a["message"].as_str().unwrap().contains("readiness probe")).count();
        assert_eq!(lines.iter().filter(|l| l.ends_with(" reported=true")).count(), anomalies.len() - probes);
    }

    /// The kinds reported are kept across a restart of rsyslogd (the
    /// example gives its helper a memory file in rsyslog's work
    /// directory): the OOM kill reported before the restart is counted
    /// after it, not reported again.
    #[test]
    fn a_restart_of_rsyslogd_does_not_report_the_same_kinds_again() {
        let t = trained();
        let base = t.dir.path().join("rsyslog-restart");
        let mut flags = Vec::new();
        for round in 0..2 {
            let (out, port, rsyslogd) = start_example(&t, &base, "");
            let all = out.join("all.log");
            wait_ready(&port, &all);
            for i in 0..3 {
                send(&port, "CRON", "(root) CMD (run-parts /etc/cron.hourly)");
                send(&port, "kernel", &format!("Out of memory: Killed process {i} (java) total-vm:{}kB", 1000 + i));
            }
            wait_for(60, "the OOM kills in all.log", || {
                read_all(&all).iter().filter(|l| l.contains("Out of memory")).count() >= 3 * (round + 1)
            });
            std::thread::sleep(Duration::from_millis(500));
            // rsyslogd stops (SIGTERM), and its helper with it.
            drop(rsyslogd);
            let ooms: Vec<String> = read_all(&all).into_iter().filter(|l| l.contains("Out of memory")).collect();
            assert!(ooms.iter().all(|l| l.contains(" anomalous=true ")), "{ooms:?}");
            flags.push(ooms[3 * round..].iter().map(|l| l.ends_with(" reported=true")).collect::<Vec<_>>());
        }
        assert!(base.join("work/logarithm-reported-kinds.json").is_file());
        assert_eq!(flags, [vec![true, false, false], vec![false, false, false]], "reported once, before the restart only");
    }

    /// The helper may not write to its stderr (rsyslog reads it as
    /// replies), so its diagnostics go to syslog: a memory file it cannot
    /// save is said there, through the real rsyslogd's own unix socket,
    /// while every message is still answered.
    #[test]
    fn diagnostics_of_the_helper_go_to_syslog() {
        let t = trained();
        let base = t.dir.path().join("rsyslog-diagnostics");
        let (socket, diagnostics) = (base.join("log.sock"), base.join("diagnostics.log"));
        // In rsyslog's work directory, as the example's, but in a directory that is not there.
        let unsaveable = base.join("work/no-such-directory/kinds.json");
        let args = format!("--memory-file=/var/spool/rsyslog/no-such-directory/kinds.json --syslog-socket={}", socket.display());
        let extra = format!(
            "module(load=\"imuxsock\" SysSock.Use=\"off\")\ninput(type=\"imuxsock\" Socket=\"{}\" CreatePath=\"on\" ruleset=\"diagnostics\")\nruleset(name=\"diagnostics\") {{ action(type=\"omfile\" file=\"{}\" template=\"RSYSLOG_TraditionalFileFormat\") }}\n",
            socket.display(),
            diagnostics.display()
        );
        let (out, port, rsyslogd) =
            start_example_with(&t, &base, &extra, &[("--memory-file=/var/spool/rsyslog/logarithm-reported-kinds.json", Path::new(&args))]);
        let all = out.join("all.log");
        wait_for(30, "rsyslogd's socket", || socket.exists());
        wait_ready(&port, &all);
        send(&port, "kernel", "Out of memory: Killed process 7 (java) total-vm:1007kB");
        send(&port, "CRON", "(root) CMD (run-parts /etc/cron.hourly)");
        wait_for(60, "both messages in all.log", || read_all(&all).len() >= 2);
        wait_for(30, "the helper's diagnostic in rsyslogd's file", || written_so_far(&diagnostics).contains("logarithm["));
        drop(rsyslogd);
        let said = written_so_far(&diagnostics);
        let unsaved: Vec<&str> = said.lines().filter(|l| l.contains(&unsaveable.display().to_string())).collect();
        assert_eq!(unsaved.len(), 1, "said once: {said}");
        assert!(unsaved[0].contains("logarithm[") && unsaved[0].contains(": WARN cannot save the kinds"), "{said}");
        let lines = read_all(&all);
        assert!(lines.iter().all(|l| l.contains(" score=0.")), "every message answered: {lines:?}");
        let stderr = fs::read_to_string(base.join("rsyslogd.err")).unwrap();
        assert!(!stderr.contains("invalid reply"), "{stderr}");
    }

    /// rsyslog's imfile hands over the whole line as `msg`: each is scored
    /// as `logarithm` scores the file itself (every line used to be
    /// flagged: its header was read as words).
    #[test]
    fn lines_from_imfile_score_as_the_file_does() {
        let t = trained();
        let base = t.dir.path().join("rsyslog-imfile");
        fs::create_dir_all(&base).unwrap();
        let log = base.join("app.log");
        fakelogs(&log, 300, 5, 21, "syslog");
        let native = native_verdicts(&t, &[log.to_str().unwrap()], "raw");
        let imfile =
            format!("module(load=\"imfile\")\ninput(type=\"imfile\" File=\"{}\" Tag=\"files\" ruleset=\"logarithm\")\n", log.display());
        let (out, _, _rsyslogd) = start_example(&t, &base, &imfile);
        let read_all = || written_so_far(&out.join("all.log")).lines().map(str::to_owned).collect::<Vec<_>>();
        wait_for(60, "the 300 lines in all.log", || read_all().len() >= 300);
        let lines = read_all();
        assert_eq!(lines.len(), 300);
        let mut anomalous = 0;
        for (raw, (score, flagged)) in &native {
            let line = lines.iter().find(|l| l.contains(raw.as_str())).unwrap_or_else(|| panic!("{raw} not in all.log"));
            let got: f64 = line.split(" score=").nth(1).and_then(|r| r.split(' ').next()).and_then(|s| s.parse().ok()).unwrap();
            assert!((got - score).abs() < 1e-12 && line.contains(&format!(" anomalous={flagged} ")), "{line}: native {score} {flagged}");
            anomalous += usize::from(*flagged);
        }
        assert!(anomalous <= 15, "{anomalous} of 300 flagged");
    }

    /// The helper answers exactly one line per message, even when it has no
    /// model, and never writes to stderr (rsyslog reads that as replies).
    #[test]
    fn one_reply_per_message_even_without_a_model() {
        let dir = tempfile::tempdir().unwrap();
        let input = "{\"msg\":\" hello\",\"syslogtag\":\"app:\",\"syslogseverity\":\"6\"}\n{\"nomsg\":1}\nnot json\n";
        let out = run_with_stdin(
            "logarithm",
            &["filter", "--rsyslog", "-D", dir.path().join("empty").to_str().unwrap(), "-K", "k"],
            Some(input.as_bytes()),
        );
        assert!(out.status.success());
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        let replies = json_lines(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(replies.len(), 3);
        assert!(replies[0]["$!"]["anomaly"]["error"].as_str().unwrap().contains("no model"), "{}", replies[0]);
        assert!(replies[1]["$!"]["anomaly"]["error"].as_str().unwrap().contains("no message"));
        assert!(replies[2]["$!"]["anomaly"]["error"].as_str().unwrap().contains("no model"), "a raw line is a record: {}", replies[2]);
    }

    /// A fatal error in rsyslog mode (a log level that is none) goes to
    /// syslog, as an error of facility daemon (`<27>`), never to stderr.
    #[test]
    fn a_fatal_error_goes_to_syslog_not_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("log.sock");
        let listener = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
        listener.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let data = dir.path().join("empty");
        let args =
            ["filter", "--rsyslog", "-L", "verbose", "--syslog-socket", socket.to_str().unwrap(), "-D", data.to_str().unwrap(), "-K", "k"];
        let out = run_with_stdin("logarithm", &args, Some(b"{\"msg\":\"hello\"}\n"));
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stderr.is_empty() && out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut datagram = vec![0; 64 * 1024];
        let n = listener.recv(&mut datagram).expect("the error, on the syslog socket");
        let said = String::from_utf8_lossy(&datagram[..n]);
        assert!(said.starts_with("<27>") && said.contains(" logarithm["), "{said}");
        assert!(said.ends_with("]: logarithm: error: log level \"verbose\" is not one of error, warn, info, debug, trace (or a filter such as info,wasmtime=debug)"), "{said}");
    }
}

/// `logarithm filter`: NDJSON in, the same records with the anomaly fields
/// out, in order, one line per line.
mod ndjson {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{ChildStdin, ChildStdout};

    /// Writes `line` to a running filter and reads its reply: the record,
    /// or in rsyslog mode the `$!anomaly` fields.
    fn ask_filter(stdin: &mut ChildStdin, stdout: &mut BufReader<ChildStdout>, line: &str, rsyslog: bool) -> Value {
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let mut reply = String::new();
        stdout.read_line(&mut reply).unwrap();
        let reply: Value = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
        if rsyslog { reply["$!"]["anomaly"].clone() } else { reply }
    }

    /// A filter lives as long as its pipe (rsyslog keeps its mmexternal
    /// child running): a newly installed model is loaded at SIGHUP (or
    /// within 2 s) before the next record, in a pipe and for rsyslog.
    #[test]
    fn a_running_filter_loads_a_newly_installed_model() {
        for rsyslog in [false, true] {
            let t = trained();
            let (data, key) = (t.data.to_str().unwrap(), t.key);
            let odd = "Nov  2 08:00:00 web01 zoo[1]: zebra quagga okapi wandered off";
            let record = if rsyslog {
                format!("{}\n", serde_json::json!({"msg": " zebra quagga okapi wandered off", "syslogtag": "zoo[1]:", "hostname": "web01"}))
            } else {
                format!("{odd}\n")
            };
            let mut args = vec!["filter", "-D", data, "-K", key];
            args.extend(rsyslog.then_some("--rsyslog"));
            let mut child =
                command("logarithm").args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = BufReader::new(child.stdout.take().unwrap());
            let mut ask = |stdin: &mut ChildStdin| {
                let fields = ask_filter(stdin, &mut stdout, &record, rsyslog);
                fields["anomalous"].as_bool().unwrap_or_else(|| panic!("{fields}"))
            };
            assert!(ask(&mut stdin), "new to the first model");
            // The second model has seen the line, often.
            let history = t.dir.path().join("zoo.log");
            fs::write(&history, format!("{odd}\n").repeat(300) + &"Nov  2 08:00:00 web01 CRON[2]: (root) CMD (job)\n".repeat(300)).unwrap();
            ok(&run("logarithm-trainer", &["train", "-D", data, "-K", key, "-m", "full", history.to_str().unwrap()]));
            ok(&Command::new("kill").args(["-HUP", &child.id().to_string()]).output().unwrap());
            std::thread::sleep(Duration::from_millis(300));
            assert!(!ask(&mut stdin), "rsyslog {rsyslog}: scored by the new model");
            drop(stdin);
            assert!(child.wait().unwrap().success());
        }
    }

    /// rsyslog starts its mmexternal child with rsyslogd, perhaps before
    /// the first training: the filter answers with the error until a model
    /// is installed, then scores with it (looked for every 2 s), without a
    /// restart, and never writes to stderr.
    #[test]
    fn an_rsyslog_filter_started_before_any_model_scores_with_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (data, key) = (dir.path().join("data"), "correct horse battery staple");
        let record =
            format!("{}\n", serde_json::json!({"msg": " zebra quagga okapi wandered off", "syslogtag": "zoo[1]:", "hostname": "web01"}));
        let mut child = command("logarithm")
            .args(["filter", "--rsyslog", "-D", data.to_str().unwrap(), "-K", key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ask = |stdin: &mut ChildStdin| ask_filter(stdin, &mut stdout, &record, true);
        let started = std::time::Instant::now();
        let first = ask(&mut stdin);
        assert!(first["error"].as_str().unwrap().contains("no model"), "{first}");
        let log = dir.path().join("train.log");
        fakelogs(&log, 5000, 0, 11, "syslog");
        train(&data, key, &log);
        std::thread::sleep(Duration::from_millis(2200).saturating_sub(started.elapsed()));
        let scored = ask(&mut stdin);
        assert!(scored.get("error").is_none() && scored["anomalous"].as_bool().unwrap(), "new to the model: {scored}");
        assert!(scored.get("score").is_some(), "{scored}");
        drop(stdin);
        let out = output_within(child, RUN_LIMIT_SECS, "logarithm filter");
        assert!(out.status.success());
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// With `--memory-file` the kinds reported are kept across restarts
    /// (rsyslog restarts its helper with itself): a second run reports none
    /// of them again, in a pipe and for rsyslog, but for the summary of a
    /// kind that keeps happening (its count carried over too). Without the
    /// file they are reported again. At SIGTERM the lines read are answered
    /// and the memory saved; a damaged file is said, set aside, and its
    /// kinds reported again.
    #[test]
    fn the_kinds_reported_are_kept_across_restarts() {
        let t = trained();
        let log = t.dir.path().join("live.log");
        fakelogs(&log, 400, 12, 31, "syslog");
        let lines: Vec<String> = fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
        let state = t.dir.path().join("state");
        fs::create_dir_all(&state).unwrap();
        let (data, key) = (t.data.to_str().unwrap(), t.key);
        for rsyslog in [false, true] {
            let input: String = if rsyslog {
                lines.iter().map(|l| format!("{}\n", serde_json::json!({"msg": l, "inputname": "imfile", "rawmsg": l}))).collect()
            } else {
                lines.iter().map(|l| format!("{l}\n")).collect()
            };
            let memory = state.join(format!("kinds-{rsyslog}.json"));
            let mut args = vec!["filter", "-D", data, "-K", key, "--memory-file", memory.to_str().unwrap()];
            args.extend(rsyslog.then_some("--rsyslog"));
            // The verdicts' fields, per line.
            let fields = |out: &std::process::Output| -> Vec<Value> {
                let text = ok(out);
                json_lines(&text).into_iter().map(|r| if rsyslog { r["$!"]["anomaly"].clone() } else { r }).collect()
            };
            let (reported, repeat, anomalous) =
                if rsyslog { ("reported", "repeat", "anomalous") } else { ("anomaly_reported", "anomaly_repeat", "anomalous") };
            let count = |fs: &[Value], what: &str| fs.iter().filter(|f| f[what] == true).count();
            let first = fields(&run_with_stdin("logarithm", &args, Some(input.as_bytes())));
            assert_eq!(first.len(), lines.len());
            let alerts = count(&first, reported);
            assert!(alerts > 0, "rsyslog {rsyslog}: the first run reports the new kinds");
            let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&memory).unwrap().permissions());
            assert_eq!(mode & 0o777, 0o600, "the kinds name what the logs say");

            let second = fields(&run_with_stdin("logarithm", &args, Some(input.as_bytes())));
            assert_eq!(count(&second, anomalous), count(&first, anomalous), "rsyslog {rsyslog}: the same lines are anomalous");
            let again: Vec<&Value> = second.iter().filter(|f| f[reported] == true && f[repeat].is_null()).collect();
            assert!(again.is_empty(), "rsyslog {rsyslog}: reported again after a restart: {again:?}");

            // Without the file, every kind is news again.
            let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--memory-file" && *a != memory.to_str().unwrap()).collect();
            let forgetful = fields(&run_with_stdin("logarithm", &plain, Some(input.as_bytes())));
            assert_eq!(count(&forgetful, reported), alerts);

            // A damaged memory: said, set aside, and the kinds reported again.
            fs::write(&memory, "{\"format\":1,").unwrap();
            let out = run_with_stdin("logarithm", &args, Some(input.as_bytes()));
            let said = String::from_utf8_lossy(&out.stderr).to_string();
            if !rsyslog {
                assert!(said.contains("cannot restore") && said.contains("set aside"), "{said}");
            }
            assert_eq!(count(&fields(&out), reported), alerts, "{said}");
            assert!(state.join(format!("kinds-{rsyslog}.json.damaged")).is_file());
        }

        // SIGTERM while the pipe is open: what was read is answered, the
        // memory saved, and the filter ends with success.
        let memory = state.join("kinds-stopped.json");
        let mut child = command("logarithm")
            .args(["filter", "-D", data, "-K", key, "--memory-file", memory.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut alerts = 0;
        for line in &lines {
            alerts += usize::from(ask_filter(&mut stdin, &mut stdout, &format!("{line}\n"), false)["anomaly_reported"] == true);
        }
        assert!(alerts > 0);
        ok(&Command::new("kill").args(["-TERM", &child.id().to_string()]).output().unwrap());
        let out = output_within(child, 30, "logarithm filter at SIGTERM");
        assert!(out.status.success(), "{out:?}");
        drop(stdin);
        let args = ["filter", "-D", data, "-K", key, "--memory-file", memory.to_str().unwrap()];
        let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let after = json_lines(&ok(&run_with_stdin("logarithm", &args, Some(input.as_bytes()))));
        assert!(after.iter().all(|r| r["anomaly_reported"] != true || !r["anomaly_repeat"].is_null()), "saved at SIGTERM");
    }

    /// A stop (SIGTERM) mid-stream answers every line the filter read, and
    /// reads no more (review: lines read ahead were dropped, with exit 0).
    /// Stdin is a file, whose offset the test shares: every line before
    /// where the filter stopped reading is answered, in order.
    #[test]
    fn a_stop_answers_every_line_read() {
        use std::io::Seek;
        let t = trained();
        let log = t.dir.path().join("long.log");
        fakelogs(&log, 300_000, 0, 5, "syslog");
        let text = fs::read(&log).unwrap();
        let mut input = fs::File::open(&log).unwrap();
        let mut child = command("logarithm")
            .args(["filter", "-D", t.data.to_str().unwrap(), "-K", t.key])
            .stdin(input.try_clone().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        ok(&Command::new("kill").args(["-TERM", &child.id().to_string()]).output().unwrap());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert!(child.wait().unwrap().success());
        let answered: Vec<Value> = json_lines(&(first + &rest));
        let read_to = input.stream_position().unwrap() as usize;
        let read = text[..read_to].iter().filter(|&&b| b == b'\n').count();
        assert!(read < 300_000, "stopped before the end ({read} lines read)");
        assert_eq!(answered.len(), read, "every line read is answered");
        let lines: Vec<&str> = std::str::from_utf8(&text).unwrap().lines().take(read).collect();
        assert!(answered.iter().zip(&lines).all(|(r, l)| r["log"] == *l), "in order");
    }

    /// Review: a JSON object passed on unscored (here: its message is
    /// `null`) was written anew: the big integer rounded to a float, `1.50`
    /// and `1e2` rewritten, the duplicate key dropped, the spacing changed.
    /// It is its own bytes with `anomaly_error` appended, as a scored
    /// record gets its fields; rsyslog's reply never repeats the message.
    #[test]
    fn an_unscored_record_passes_on_byte_for_byte() {
        let t = trained();
        let record = r#"{"message": null, "n": 1.50, "big": 12345678901234567890123, "z":1e2, "a":1, "a":2}"#;
        let input = format!("{record}\n");
        let why = Value::from("no message: no message, msg, MESSAGE or log field holding text");
        for only_anomalies in [None, Some("--only-anomalies")] {
            let mut args = vec!["filter", "-D", t.data.to_str().unwrap(), "-K", t.key];
            args.extend(only_anomalies);
            let out = ok(&run_with_stdin("logarithm", &args, Some(input.as_bytes())));
            assert_eq!(out, format!("{},\"anomaly_error\":{why}}}\n", &record[..record.len() - 1]), "{only_anomalies:?}");
        }
        let args = ["filter", "--rsyslog", "-D", t.data.to_str().unwrap(), "-K", t.key];
        let out = ok(&run_with_stdin("logarithm", &args, Some(input.as_bytes())));
        assert_eq!(out, format!("{{\"$!\":{{\"anomaly\":{{\"error\":{why}}}}}}}\n"));
        // Fields only a filter writes, which a record came with, are this
        // filter's or gone: a stale error, a forged alert (review).
        let stale = r#"{"message":null,"anomaly_error":"stale","anomaly_reported":true}"#;
        let args = ["filter", "-D", t.data.to_str().unwrap(), "-K", t.key];
        let out = ok(&run_with_stdin("logarithm", &args, Some(format!("{stale}\n").as_bytes())));
        assert_eq!(json_lines(&out), [serde_json::json!({"message": null, "anomaly_error": why})]);
    }

    /// Review: a record that came with a field only a filter writes was
    /// written anew (`1.50` as `1.5`, a big integer rounded); one with a
    /// number beyond f64 or arrays nested past 128 was read as a raw line
    /// (its fields lost, the JSON text scored); one with a lone surrogate
    /// was written anew with U+FFFD. Each is scored as the object it is and
    /// passed on as written (less the stale field, and then the white space
    /// between entries), the fields appended.
    #[test]
    fn records_strict_json_cannot_hold_pass_on_as_written() {
        let t = trained();
        let deep = format!("{{\"message\":\"disk full\",\"x\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let cases = [
            (
                r#"{"message":"alpha one", "n":1.50,"anomaly_score":0.1,"big":12345678901234567890123,"e":1e3}"#,
                r#"{"message":"alpha one","n":1.50,"big":12345678901234567890123,"e":1e3"#,
            ),
            (r#"{"message":"disk full","n":1e400}"#, r#"{"message":"disk full","n":1e400"#),
            (deep.as_str(), &deep[..deep.len() - 1]),
            (r#"{"message":"x \ud800 y","host":"\ud83d"}"#, r#"{"message":"x \ud800 y","host":"\ud83d""#),
        ];
        let input: String = cases.iter().map(|(line, _)| format!("{line}\n")).collect();
        let out = ok(&run_with_stdin("logarithm", &["filter", "-D", t.data.to_str().unwrap(), "-K", t.key], Some(input.as_bytes())));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), cases.len());
        for ((line, kept), got) in cases.iter().zip(&lines) {
            assert!(got.starts_with(&format!("{kept},\"anomaly_score\":")), "{line}\n-> {got}");
            assert_eq!(got.matches("anomaly_score").count(), 1, "{got}");
            assert!(!got.contains("\"log\""), "read as a raw line: {got}");
        }
    }

    #[test]
    fn every_line_answered_in_order_with_native_scores() {
        let t = trained();
        let log = t.dir.path().join("app.log");
        fakelogs(&log, 1_000, 10, 8, "syslog");
        let native = native_verdicts(&t, &[log.to_str().unwrap()], "raw");
        let lines: Vec<String> = fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
        let mut input = String::new();
        for (i, line) in lines.iter().enumerate() {
            match i % 3 {
                0 => input.push_str(line),
                1 => input.push_str(&serde_json::json!({"log": line, "n": i}).to_string()),
                _ => input.push_str(&serde_json::json!({"extra": [1, 2], "log": line}).to_string()),
            }
            input.push('\n');
        }
        input.push_str("{\"nomessage\":true}\n{broken json\n[1,2]\n{\"msg\":\"Ошибка 日本 🔥 \\u0000 \\u001b[31m\"}\n");
        // Passed on as written: keys in their order, numbers untouched (a
        // big integer is not rounded to a float), then the new fields.
        let exact = r#"{"z":1,"msg":"disk ok","big":123456789012345678901234567890,"f":1.50,"e":1e3}"#;
        input.push_str(exact);
        input.push('\n');
        // Longer than --max-line-bytes: passed on whole, scored on its start.
        let long = serde_json::json!({"message": "disk ok", "blob": "ä".repeat(100_000), "host": "h1", "keep": "me"}).to_string();
        input.push_str(&long);
        input.push('\n');
        let key_file = key_dir(&t).join("logarithm-key");
        let args = ["filter", "-D", t.data.to_str().unwrap(), "--key-file", key_file.to_str().unwrap()];
        let out = ok(&run_with_stdin("logarithm", &args, Some(input.as_bytes())));
        let records = json_lines(&out);
        assert_eq!(records.len(), lines.len() + 6, "one line out per line in");
        let exact_out = out.lines().nth(lines.len() + 4).unwrap();
        assert!(exact_out.starts_with(&format!("{},\"anomaly_score\":", &exact[..exact.len() - 1])), "{exact_out}");
        let long_out = out.lines().nth(lines.len() + 5).unwrap();
        assert!(long_out.starts_with(&format!("{},\"anomaly_score\":", &long[..long.len() - 1])), "{}", &long_out[long_out.len() - 300..]);
        for (i, (r, line)) in records.iter().zip(&lines).enumerate() {
            assert_eq!(r["log"].as_str(), Some(line.as_str()), "line {i} in order");
            let (score, anomalous) = native[line];
            assert_eq!((r["anomaly_score"].as_f64(), r["anomalous"].as_bool()), (Some(score), Some(anomalous)), "line {i}: {r}");
            if i % 3 == 1 {
                assert_eq!(r["n"], i, "other fields kept");
            }
        }
        let tail = &records[lines.len()..];
        assert!(tail[0]["anomaly_error"].as_str().unwrap().contains("no message") && tail[0]["nomessage"] == true);
        // Not a JSON object: a raw line, scored.
        assert!(tail[1]["anomaly_score"].is_f64() && tail[1]["log"] == "{broken json", "{}", tail[1]);
        assert!(tail[2]["anomaly_score"].is_f64() && tail[2]["log"] == "[1,2]", "{}", tail[2]);
        assert!(tail[3]["anomaly_score"].is_f64());

        let args = [&args[..], &["--only-anomalies"]].concat();
        let out = ok(&run_with_stdin("logarithm", &args, Some(input.as_bytes())));
        let only = json_lines(&out);
        let kept: Vec<&Value> = records.iter().filter(|r| r["anomaly_reported"] == true || r.get("anomaly_error").is_some()).collect();
        // The alerts (at least 3) and the message-less object.
        assert!(kept.len() >= 4, "{}", kept.len());
        assert_eq!(only.iter().collect::<Vec<_>>(), kept, "exactly the alerts and the unscored lines");
    }
}
