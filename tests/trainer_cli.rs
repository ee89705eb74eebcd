//! Tests of `logarithm-trainer` and `fakelogs` through their binaries.

mod common;

use common::*;

#[test]
fn training_writes_a_new_current_version_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    fakelogs(&log, 3000, 0, 7, "json");
    let data = dir.path().join("data");
    let summary = train(&data, "pw", &log);
    for field in ["lines read:      3000", "vocabulary:", "final loss", "threshold:       0.999", "key fingerprint:"] {
        assert!(summary.contains(field), "summary lacks {field:?}: {summary}");
    }
    train(&data, "pw", &log);
    assert_eq!(std::fs::read_to_string(data.join("current")).unwrap().trim(), "2");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data.join("models/model-000002.json")).unwrap()).unwrap();
    assert_eq!(meta["version"], 2);
    assert_eq!(meta["lines"], 3000);
    assert!(meta["key_fingerprint"].as_str().unwrap().len() == 16);
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(data.join("models"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn same_logs_and_seed_give_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    fakelogs(&log, 2000, 0, 8, "syslog");
    let (d1, d2) = (dir.path().join("d1"), dir.path().join("d2"));
    train(&d1, "pw", &log);
    train(&d2, "pw", &log);
    let open = |d: &std::path::Path| {
        let bytes = std::fs::read(d.join("models/model-000001.lgm")).unwrap();
        let payload = logarithm_detector::modelfile::open(&bytes, "pw").unwrap();
        let mut model = logarithm_detector::Model::from_payload(&payload).unwrap();
        model.meta.created_at_unix = 0;
        model.to_payload()
    };
    assert_eq!(open(&d1), open(&d2));
}

#[test]
fn bad_inputs_and_flags_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    fails_with(&run("logarithm-trainer", &["train", "-D", d, "-K", "k", empty.to_str().unwrap()]), "no log lines");
    fails_with(&run("logarithm-trainer", &["train", "-D", d, "-K", "k", "/nonexistent/file.log"]), "/nonexistent/file.log");
    std::fs::create_dir(dir.path().join("sub.log")).unwrap();
    let glob = dir.path().join("sub*");
    fails_with(&run("logarithm-trainer", &["train", "-D", d, "-K", "k", glob.to_str().unwrap()]), "is a directory");
    fails_with(
        &run("logarithm-trainer", &["train", "-D", d, "-K", "k", dir.path().join("none-*.log").to_str().unwrap()]),
        "no file matches",
    );
    fails_with(&run("logarithm-trainer", &["train", "-D", d, "-K", "k", "-T", "2", empty.to_str().unwrap()]), "threshold");
    // Issue 10: the vocabulary is bounded (memory and model size grow with it).
    let out = run("logarithm-trainer", &["train", "-V", "200001", empty.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--vocab-size") && stderr.contains("1..=200000"), "{stderr}");
    let out = run("logarithm-trainer", &["train", "-V", "0", empty.to_str().unwrap()]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--vocab-size"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fails_with(&run("logarithm-trainer", &["train", "-D", d, "-K", "", empty.to_str().unwrap()]), "empty");
    // Nothing was installed by the failures.
    assert!(!data.join("models").exists());
}

#[test]
fn stdin_and_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut input = String::new();
    let now = chrono::Utc::now();
    for i in 0..400 {
        let t = now - chrono::Duration::hours(if i < 100 { 48 } else { 1 });
        input.push_str(&format!("{{\"timestamp\":\"{}\",\"message\":\"job {i} done in {i}ms\"}}\n", t.to_rfc3339()));
    }
    let out =
        run_with_stdin("logarithm-trainer", &["train", "-i", "-t", "24h", "-D", data.to_str().unwrap(), "-K", "k"], Some(input.as_bytes()));
    ok(&out);
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data.join("models/model-000001.json")).unwrap()).unwrap();
    assert_eq!(meta["lines"], 300, "only the last 24h are learned");
}

/// The trainer reads the journal through the same source layer (-t sets the
/// window; a day by default).
#[test]
fn trains_from_journal_files() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let now = now_usec();
    let mut export = journal_batch(0, 300, now - 3 * 3_600_000_000);
    export.extend(journal_batch(300, 200, now - 48 * 3_600_000_000));
    journal_file(&journal.join("a.journal"), &export);
    let data = dir.path().join("data");
    ok(&run("logarithm-trainer", &["train", "--journal-dir", journal.to_str().unwrap(), "-D", data.to_str().unwrap(), "-K", "k"]));
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data.join("models/model-000001.json")).unwrap()).unwrap();
    assert_eq!(meta["lines"], 300, "only the last 24 h by default");
    ok(&run(
        "logarithm-trainer",
        &["train", "--journal-dir", journal.to_str().unwrap(), "-t", "72h", "-D", data.to_str().unwrap(), "-K", "k"],
    ));
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data.join("models/model-000002.json")).unwrap()).unwrap();
    assert_eq!(meta["lines"], 500);
}

/// Writes a small directory shaped like Loghub (the layout `eval` reads),
/// with logs the test makes up: BGL-format lines with alerts, HDFS lines
/// with block labels, and plain syslog for the unlabelled sets.
fn mini_loghub(root: &std::path::Path) {
    use std::fmt::Write as _;
    for d in ["BGL", "HDFS", "Linux", "OpenSSH"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    // BGL: normal INFO chatter of a few kinds, plus alerts of kinds the
    // normal lines never have, spread through time. A third of the alerts
    // are at the normal lines' level (INFO), so that ranking by level alone
    // cannot find them: the test needs the model (issue 10).
    let normal = [
        "KERNEL INFO instruction cache parity error corrected",
        "KERNEL INFO generating core.{n}",
        "APP INFO ciod: generated {n} core files for program /bgl/apps/run{n}",
        "KERNEL INFO {n} double-hummer alignment exceptions",
        "MMCS INFO idoproxydb hit ASSERT condition: ASSERT expression={n}",
    ];
    let alerts = [
        "KERNEL FATAL data TLB error interrupt",
        "KERNEL INFO rts: kernel terminated for reason {n}",
        "APP FATAL ciod: Error reading message prefix after LOAD_MESSAGE on CioStream socket to 172.16.96.{n}:{n}",
    ];
    let mut bgl = String::new();
    for i in 0..3000u64 {
        let alert = i % 37 == 5;
        let pick = if alert { alerts[(i as usize / 37) % alerts.len()] } else { normal[i as usize % normal.len()] };
        let text = pick.replace("{n}", &(i * 7919 % 10_000).to_string());
        let label = if alert { "KERNDTLB" } else { "-" };
        let node = format!("R{:02}-M1-N{}-C:J12-U11", i % 8, i % 4);
        writeln!(bgl, "{label} {} 2005.06.03 {node} 2005-06-03-15.42.50.675872 {node} RAS {text}", 1_117_838_570 + i * 3).unwrap();
    }
    std::fs::write(root.join("BGL/BGL_20k.log"), &bgl).unwrap();
    std::fs::write(root.join("BGL/BGL_2k.log"), bgl.lines().take(2000).collect::<Vec<_>>().join("\n")).unwrap();
    // HDFS: each block is received, served and deleted; anomalous blocks
    // also log a WARN with an exception.
    let (mut hdfs, mut labels) = (String::new(), String::from("BlockId,Label\n"));
    for b in 0..400u64 {
        let block = format!("blk_{}", 1_000_000_007 * (b + 1));
        let bad = b % 19 == 3;
        let t = 203_518 + b;
        writeln!(
            hdfs,
            "081109 {t} 143 INFO dfs.DataNode$DataXceiver: Receiving block {block} src: /10.250.19.102:54106 dest: /10.250.19.102:50010"
        )
        .unwrap();
        writeln!(hdfs, "081109 {t} 145 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block {block} terminating").unwrap();
        if bad {
            writeln!(
                hdfs,
                "081109 {t} 147 WARN dfs.DataNode$DataXceiver: 10.250.19.102:50010:Got exception while serving {block} to /10.250.19.102:"
            )
            .unwrap();
        }
        writeln!(hdfs, "081109 {t} 19 INFO dfs.FSDataset: Deleting block {block} file /mnt/hadoop/dfs/data/current/subdir19/{block}")
            .unwrap();
        writeln!(labels, "{block},{}", if bad { "Anomaly" } else { "Normal" }).unwrap();
    }
    for name in ["HDFS_5k", "HDFS_2k"] {
        std::fs::write(root.join(format!("HDFS/{name}.log")), &hdfs).unwrap();
        std::fs::write(root.join(format!("HDFS/{name}.block_labels.csv")), &labels).unwrap();
    }
    fakelogs(&root.join("Linux/Linux_2k.log"), 2000, 0, 21, "syslog");
    fakelogs(&root.join("OpenSSH/OpenSSH_2k.log"), 2000, 0, 22, "syslog");
}

/// Issue 5: the evaluation harness end to end through the binary, on a
/// made-up Loghub-shaped directory: every data set, setting and baseline is
/// in the table, the detector beats the new-template baseline where alerts
/// are new kinds of FATAL lines, and the figure is a PNG. Missing data is
/// one clear error.
#[test]
fn eval_runs_the_whole_harness() {
    let dir = tempfile::tempdir().unwrap();
    let loghub = dir.path().join("loghub");
    mini_loghub(&loghub);
    let figure = dir.path().join("fig.png");
    let out = ok(&run("logarithm-trainer", &["eval", "--loghub", loghub.to_str().unwrap(), "--figure", figure.to_str().unwrap()]));
    let row = |data: &str, setting: &str, method: &str| -> Vec<f64> {
        let prefix = format!("| {data} | {setting} | {method} |");
        let line = out.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no row {prefix} in\n{out}"));
        line[prefix.len()..].split('|').map(str::trim).filter(|c| !c.is_empty()).map(|c| c.parse().unwrap()).collect()
    };
    for data in ["BGL_20k", "BGL_2k"] {
        for setting in ["unsupervised", "clean"] {
            for method in ["logarithm", "new template", "TF-IDF + PCA", "autoencoder, no masking"] {
                let m = row(data, setting, method);
                // ROC-AUC, PR-AUC, precision, recall, F1, best F1, FPR.
                assert_eq!(m.len(), 7, "{data} {setting} {method}: {m:?}");
                assert!(m.iter().all(|v| (0.0..=1.0).contains(v)), "{m:?}");
            }
        }
    }
    // Alerts are kinds never logged as normal, a third of them at the
    // normal lines' level: ranked first, flagged, and few normal lines
    // flagged, which a ranking by level alone (ROC-AUC about 0.83 here)
    // cannot do.
    let clean = row("BGL_20k", "clean", "logarithm");
    assert!(clean[0] >= 0.99 && clean[4] >= 0.9 && clean[6] <= 0.01, "{clean:?}");
    assert!(clean[0] >= row("BGL_20k", "clean", "new template")[0], "{out}");
    for setting in ["unsupervised", "clean"] {
        assert_eq!(row("HDFS_5k (blocks)", setting, "logarithm").len(), 7);
    }
    for set in ["Linux_2k", "OpenSSH_2k"] {
        let line = out.lines().find(|l| l.starts_with(&format!("| {set} |"))).unwrap_or_else(|| panic!("no {set} in\n{out}"));
        let flagged: f64 = line.split('|').nth(2).unwrap().trim().trim_end_matches('%').parse().unwrap();
        assert!(flagged <= 2.0, "{line}");
    }
    assert!(std::fs::read(&figure).unwrap().starts_with(b"\x89PNG"));

    fails_with(&run("logarithm-trainer", &["eval", "--loghub", dir.path().join("nothing").to_str().unwrap()]), "BGL_20k.log");
}

/// Issue 14: what a new user tripped over, each tried through the binaries.
#[test]
fn what_a_new_user_tripped_over() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    // A named file is read whole, though the config file sets a window;
    // -t on the command line applies, and the summary says what it skipped.
    let now = chrono::Utc::now();
    let mut lines = String::new();
    for i in 0..2000 {
        let t = now - chrono::Duration::hours(if i < 1500 { 72 } else { 1 });
        lines.push_str(&format!("{{\"timestamp\":\"{}\",\"message\":\"job {} done in {}ms\"}}\n", t.to_rfc3339(), i % 7, i));
    }
    let log = dir.path().join("history.ndjson");
    std::fs::write(&log, lines).unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "duration: 24h\n").unwrap();
    let (l, c) = (log.to_str().unwrap(), config.to_str().unwrap());
    let summary = String::from_utf8(ok_output(&run("logarithm-trainer", &["train", "-D", d, "-K", "k", "-c", c, l])).stderr).unwrap();
    assert!(summary.contains("lines learned:   2000"), "{summary}");
    let summary =
        String::from_utf8(ok_output(&run("logarithm-trainer", &["train", "-D", d, "-K", "k", "-c", c, "-t", "24h", l])).stderr).unwrap();
    assert!(
        summary.contains("lines learned:   500") && summary.contains("lines skipped:   1500 (older than the time window)"),
        "{summary}"
    );

    // A model of a handful of lines is installed with a warning that says what it will be like.
    let tiny = dir.path().join("tiny.log");
    std::fs::write(&tiny, (0..69).map(|i| format!("line {i} of a tiny log\n")).collect::<String>()).unwrap();
    let out = ok_output(&run("logarithm-trainer", &["train", "-D", d, "-K", "k", tiny.to_str().unwrap()]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("only 69 lines learned (1000 or more are recommended)"), "{stderr}");

    // Flags: a negative threshold is a threshold error, a zero line cap is refused,
    // model delete names both of its options, a missing file is reported once.
    fails_with(&run("logarithm-trainer", &["train", "-D", d, "-K", "k", "-T", "-0.1", l]), "threshold");
    fails_with(&run("logarithm", &["monitor", "--once", "-D", d, "-K", "k", "-T", "-0.1", l]), "threshold");
    for binary in ["logarithm", "logarithm-trainer"] {
        let args: &[&str] = if binary == "logarithm" { &["monitor", "--once"] } else { &["train"] };
        let out = run(binary, &[args, &["--max-line-bytes", "0", l]].concat());
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--max-line-bytes"), "{binary}");
    }
    let out = run("logarithm-trainer", &["model", "delete", "-D", d]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--older-than") && stderr.contains("--version"), "{stderr}");
    let out = run("logarithm-trainer", &["train", "-D", d, "-K", "k", "/nonexistent/file.log"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("/nonexistent/file.log").count(), 1, "reported once: {stderr}");
    let out = run("logarithm", &["monitor", "--once", "-D", d, "-K", "k", "/nonexistent/file.log"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.matches("No such file").count() == 1, "reported once: {stderr}");

    // A batch scan says what it read, and that it read nothing.
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let out = ok_output(&run("logarithm", &["monitor", "--once", "-D", d, "-K", "k", empty.to_str().unwrap()]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to read in"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ok_output(&run("logarithm", &["monitor", "--once", "-D", d, "-K", "k", tiny.to_str().unwrap()]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read 69 lines from"), "{}", String::from_utf8_lossy(&out.stderr));

    // -L debug is our own debug output, not wasmtime's compiler internals.
    let out = ok_output(&run("logarithm", &["monitor", "--once", "-L", "DEBUG", "-D", d, "-K", "k", tiny.to_str().unwrap()]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG") && stderr.lines().count() < 50 && !stderr.contains("cranelift"), "{stderr}");
}

/// Asserts success and returns the whole output.
fn ok_output(out: &std::process::Output) -> std::process::Output {
    ok(out);
    out.clone()
}

/// Issue 13: users of the original tool type `logarithm train` and
/// `logarithm model`: they run the trainer (found next to `logarithm`) with
/// the same flags, and the seed's short flags work (`-m`, `-L DEBUG`).
#[test]
fn logarithm_train_and_model_run_the_trainer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    fakelogs(&log, 1500, 0, 13, "syslog");
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = run("logarithm", &["train", "-D", d, "-K", "k", "-m", "full", "-L", "DEBUG", log.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("trained model version 1") && stderr.contains("DEBUG"), "{stderr}");
    let list = ok(&run("logarithm", &["model", "list", "-D", d]));
    assert!(list.lines().any(|l| l.starts_with("*       1")), "{list}");
    assert!(ok(&run("logarithm", &["train", "--help"])).contains("logarithm-trainer train"));
    let out = run("logarithm", &["model", "delete", "-D", d]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--older-than"));
}
