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
    let out = run("logarithm-trainer", &["train", "-V", "0", empty.to_str().unwrap()]);
    assert!(!out.status.success());
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
