//! Helpers shared by the integration tests: the real binaries, generated
//! fixtures and a trained data directory.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The directory cargo put this package's binaries in; the workspace's
/// other binaries (built by `cargo test --workspace`) sit next to them.
fn bin_dir() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// A workspace binary by name, with a hint when it has not been built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(path.is_file(), "{} is missing: run the tests with `cargo test --workspace`", path.display());
    path
}

/// Runs a binary with args and no environment leaks from the developer.
pub fn run(name: &str, args: &[&str]) -> Output {
    run_with_stdin(name, args, None)
}

/// A batch scan printing every record as JSON:
/// `logarithm monitor --once --all -f json -D data -K key ARGS...`.
pub fn scan(data: &Path, key: &str, args: &[&str]) -> Output {
    let mut all = vec!["monitor", "--once", "--all", "-f", "json", "-D", data.to_str().unwrap(), "-K", key];
    all.extend(args);
    run("logarithm", &all)
}

/// Like [`run`], feeding `stdin`.
pub fn run_with_stdin(name: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = command(name);
    cmd.args(args).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    // Fed from a thread, within the deadline: a child that stops reading
    // would block the write.
    let feeder = stdin.map(|input| {
        let (mut pipe, input) = (child.stdin.take().unwrap(), input.to_vec());
        std::thread::spawn(move || {
            // The binary may exit (e.g. on a bad flag) before reading its input.
            if let Err(e) = pipe.write_all(&input) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing stdin: {e}");
            }
        })
    });
    let out = output_within(child, RUN_LIMIT_SECS, name);
    // Joined once done (a write error shows), not waited on for ever: a
    // grandchild may hold stdin open without reading it.
    if let Some(feeder) = feeder {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !feeder.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if feeder.is_finished() {
            feeder.join().unwrap();
        }
    }
    out
}

/// How long [`run`] lets a binary run: far more than any test's command
/// takes (seconds), so that only a hang reaches it.
pub const RUN_LIMIT_SECS: u64 = 600;

/// `child.wait_with_output()`, but a child still running after `secs` is
/// killed and the test fails, saying what hung and what it had written: a
/// hang would otherwise eat the whole CI budget with no word of where (a
/// `node` scoring through jco once sat in a futex wait for minutes).
pub fn output_within(mut child: Child, secs: u64, what: &str) -> Output {
    fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::sync::mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = tx.send(bytes);
        });
        rx
    }
    // Read both pipes while waiting, or a chatty child blocks on a full one.
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A grandchild that inherited the pipes may hold them open past the
    // child: what came by then is what it wrote.
    let collect = |rx: std::sync::mpsc::Receiver<Vec<u8>>| rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let (stdout, stderr) = (collect(stdout), collect(stderr));
    match status {
        Some(status) => Output { status, stdout, stderr },
        None => panic!(
            "{what} was still running after {secs} s and was killed; it had written {} bytes to stdout, and to stderr:\n{}",
            stdout.len(),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// A command for a binary with the Logarithm environment variables cleared.
pub fn command(name: &str) -> Command {
    let mut cmd = Command::new(bin(name));
    hermetic(&mut cmd);
    cmd
}

/// Clears the Logarithm environment and hides the developer's own config
/// file, so that tests see only what they set.
pub fn hermetic(cmd: &mut Command) {
    for (var, _) in std::env::vars() {
        if var.starts_with("LOGARITHM_") {
            cmd.env_remove(var);
        }
    }
    cmd.env("XDG_CONFIG_HOME", "/nonexistent/logarithm-tests/config");
}

/// Asserts success, showing stderr otherwise.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Asserts a clean failure: non-zero exit, one `NAME: error: ...` line
/// containing `needle` (warnings may precede it), and no panic.
pub fn fails_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got: {stderr}");
    assert!(errors[0].contains(needle), "error line {:?} lacks {needle:?}", errors[0]);
}

/// Writes fake logs with `fakelogs` and returns the anomalies' line numbers.
pub fn fakelogs(path: &Path, count: usize, anomalies: usize, seed: u64, template: &str) -> Vec<u64> {
    let labels = path.with_extension("labels");
    ok(&run(
        "fakelogs",
        &[
            "--template",
            template,
            "-n",
            &count.to_string(),
            "-a",
            &anomalies.to_string(),
            "-s",
            &seed.to_string(),
            "-o",
            path.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
        ],
    ));
    std::fs::read_to_string(labels).unwrap().lines().map(|l| l.parse().unwrap()).collect()
}

/// Trains a model on `log` into `data_dir` with passphrase `key`.
pub fn train(data_dir: &Path, key: &str, log: &Path) -> String {
    let out = run("logarithm-trainer", &["train", "-D", data_dir.to_str().unwrap(), "-K", key, log.to_str().unwrap()]);
    ok(&out);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A data directory with a model trained on 5,000 normal fake syslog lines.
pub struct Trained {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub key: &'static str,
}

pub fn trained() -> Trained {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("train.log");
    fakelogs(&log, 5000, 0, 11, "syslog");
    let data = dir.path().join("data");
    train(&data, "correct horse battery staple", &log);
    Trained { dir, data, key: "correct horse battery staple" }
}

/// One journal entry in journal export format; `message` may be binary.
pub fn journal_entry(out: &mut Vec<u8>, usec: u64, seq: u64, ident: &str, message: &[u8]) {
    let unit = format!("{ident}.service");
    let fields: [(&str, &[u8]); 6] = [
        ("SYSLOG_IDENTIFIER", ident.as_bytes()),
        ("PRIORITY", b"6"),
        ("_HOSTNAME", b"jhost"),
        ("_PID", b"42"),
        ("_SYSTEMD_UNIT", unit.as_bytes()),
        ("MESSAGE", message),
    ];
    journal_fields(out, usec, seq, &fields);
}

/// One journal entry with the given fields (values may be binary), in
/// journal export format.
pub fn journal_fields(out: &mut Vec<u8>, usec: u64, seq: u64, fields: &[(&str, &[u8])]) {
    out.extend(format!("__REALTIME_TIMESTAMP={usec}\n__MONOTONIC_TIMESTAMP={seq}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n").bytes());
    for (name, value) in fields {
        if value.contains(&b'\n') || std::str::from_utf8(value).is_err() {
            out.extend(name.bytes());
            out.push(b'\n');
            out.extend((value.len() as u64).to_le_bytes());
            out.extend(*value);
            out.push(b'\n');
        } else {
            out.extend(name.bytes());
            out.push(b'=');
            out.extend(*value);
            out.push(b'\n');
        }
    }
    out.push(b'\n');
}

/// Writes a real journal file with `systemd-journal-remote`.
pub fn journal_file(path: &Path, export: &[u8]) {
    let mut child = Command::new("/lib/systemd/systemd-journal-remote")
        .args(["-o", path.to_str().unwrap(), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-journal-remote is needed (apt-get install systemd-journal-remote)");
    child.stdin.take().unwrap().write_all(export).unwrap();
    let out = output_within(child, RUN_LIMIT_SECS, "systemd-journal-remote");
    assert!(out.status.success(), "journal-remote: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn journal_batch(from: u64, count: u64, base_usec: u64) -> Vec<u8> {
    let mut export = Vec::new();
    for i in from..from + count {
        journal_entry(&mut export, base_usec + i * 1000, i + 1, "cron", format!("(root) CMD (job {i})").as_bytes());
    }
    export
}

/// The tests' user id (root runs some commands as nobody).
pub fn effective_uid() -> u32 {
    // `id -u` keeps the tests free of libc bindings.
    String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap().trim().parse().unwrap()
}

pub fn now_usec() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// The JSON objects of NDJSON output, one per non-empty line.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}"))).collect()
}

/// The complete lines a running process has written to `path` so far
/// (none if the file is not there yet): the last line may be half-written,
/// and a test that polls the file must not read it (a CI run failed on a
/// record Fluent Bit was still writing).
pub fn written_so_far(path: &Path) -> String {
    let mut text = std::fs::read_to_string(path).unwrap_or_default();
    text.truncate(text.rfind('\n').map_or(0, |end| end + 1));
    text
}

/// Waits until `cond` holds (checking every 100 ms), failing after `secs`.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A daemon the test started (rsyslogd, a following monitor), stopped when
/// the test ends, also when an assertion fails midway (which would
/// otherwise leave it, and any helper it runs, behind; issue 10): SIGTERM,
/// so that it shuts down cleanly and closes its helpers' pipes, then
/// SIGKILL if it has not gone within 5 s. One the test already waited for
/// is left alone.
pub struct Stopped(pub std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        // Once waited for, its pid may be another process's by now.
        if matches!(self.0.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill(2) on the pid of our own child, which is not yet reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
