//! The shipped path against the tool a user would pick instead, on the same
//! generated file in the same run: the real `logarithm monitor --once -f
//! json FILE` (output to /dev/null), Drain3 (the Python template miner, from
//! PyPI, installed by this bench into a throwaway venv; it only groups lines
//! and scores nothing) and `wc -l`. Prints lines/s (for `logarithm`, of the
//! median of three runs), the ratio to Drain3 and peak RSS, for templated
//! lines (a host's usual logs: a few dozen templates with varying numbers,
//! ids, addresses, users) and for lines that are each unique text (no
//! template repeats, so no verdict is remembered).
//!
//! ```text
//! cargo build --release -p logarithm && cargo bench -p logarithm-trainer --bench versus [-- LINES]
//! ```
//!
//! `logarithm` is taken from next to `logarithm-trainer` (the same profile),
//! or from `$LOGARITHM_BIN`.

mod common;

use logarithm_trainer::fakelogs::{FakeLogs, Template};
use rand::{Rng, SeedableRng};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Drain3 over a file, as most people run it: `TemplateMiner()` with its
/// default configuration, one `add_log_message` per line.
const DRAIN3: &str = r#"
import sys
from drain3 import TemplateMiner
miner = TemplateMiner()
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        miner.add_log_message(line.rstrip("\n"))
print(len(miner.drain.clusters), file=sys.stderr)
"#;

/// How long Drain3 is given per file, seconds.
const DRAIN3_LIMIT_SECS: u64 = 120;

/// One measured run.
struct Run {
    secs: f64,
    cpu_secs: f64,
    peak_rss_mib: f64,
}

/// Runs `cmd` to its end with stdout to /dev/null; `None` if it failed.
fn measure(cmd: &mut Command) -> Option<Run> {
    let started = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
    // Reaped by `common::wait`, which also reads its CPU time and peak RSS.
    let finished = common::wait(child.id());
    let secs = started.elapsed().as_secs_f64();
    (finished.status == 0).then(|| Run { secs, cpu_secs: finished.cpu_secs, peak_rss_mib: finished.peak_rss_kib as f64 / 1024.0 })
}

/// A venv with Drain3 in `CARGO_TARGET_TMPDIR`, made on first use.
fn drain3_python() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("drain3-venv");
    let python = venv.join("bin/python");
    let ready = |p: &Path| Command::new(p).args(["-c", "import drain3"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if ready(&python) {
        return Ok(python);
    }
    let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().map_err(|e| format!("python3: {e}"))?;
    if !made.success() {
        return Err("python3 -m venv failed".into());
    }
    let pip = Command::new(venv.join("bin/pip")).args(["install", "-q", "drain3"]).status().map_err(|e| format!("pip: {e}"))?;
    if !pip.success() || !ready(&python) {
        return Err("pip install drain3 failed".into());
    }
    Ok(python)
}

/// `count` lines, each of words drawn from a fixed dictionary of made-up
/// words (letters only, so nothing is masked): every line is unique text,
/// yet every word is one the model learned from lines made the same way.
fn unique_lines(path: &Path, count: usize, seed: u64) {
    let syllables = ["ka", "lo", "mi", "tre", "sun", "bar", "vel", "dor", "qui", "zan", "pe", "ro", "ste", "nu", "fal", "gri"];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let words: Vec<String> =
        (0..2000).map(|_| (0..rng.random_range(2..5)).map(|_| syllables[rng.random_range(0..syllables.len())]).collect()).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..count {
        let (h, m, s) = (i / 3600 % 24, i / 60 % 60, i % 60);
        write!(out, "Nov 27 {h:02}:{m:02}:{s:02} web01 app[{}]:", 1000 + i % 5000).unwrap();
        for _ in 0..rng.random_range(6..12) {
            write!(out, " {}", words[rng.random_range(0..words.len())]).unwrap();
        }
        writeln!(out).unwrap();
    }
}

fn templated_lines(path: &Path, count: usize, seed: u64) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    FakeLogs { template: Template::Syslog, count, anomalies: count / 1000, seed, start: chrono::DateTime::UNIX_EPOCH }
        .write(&mut out)
        .unwrap();
}

/// Runs `cmd` to its end, its output discarded; panics if it fails.
fn quietly(cmd: &mut Command) {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    assert!(status.success(), "{cmd:?} failed");
}

/// Runs of `logarithm` per file. The same run varies by ±10% and more on a
/// shared 2-core machine (some runs take a third more CPU time for the same
/// work); its median is printed. Drain3, far slower, runs once.
const LOGARITHM_RUNS: usize = 3;

/// The run of median wall time of `runs` runs, or `None` if one failed.
fn median_of(runs: usize, mut run: impl FnMut() -> Option<Run>) -> Option<Run> {
    let mut done = (0..runs).map(|_| run()).collect::<Option<Vec<Run>>>()?;
    done.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    Some(done.swap_remove(runs / 2))
}

fn logarithm_bin() -> PathBuf {
    let path = std::env::var_os("LOGARITHM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_BIN_EXE_logarithm-trainer")).with_file_name("logarithm"));
    assert!(path.is_file(), "{} is missing: cargo build --release -p logarithm (or set LOGARITHM_BIN)", path.display());
    path
}

fn main() {
    let lines: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let logarithm = logarithm_bin();
    let trainer = env!("CARGO_BIN_EXE_logarithm-trainer");
    let drain3 = drain3_python();
    let dir = tempfile::tempdir().unwrap();
    println!("{lines} lines per file; model trained on {} lines of the same kind; {}", lines / 10, logarithm.display());
    println!("{:<10} {:<34} {:>12} {:>10} {:>9} {:>10}", "lines", "tool", "lines/s", "CPU s", "peak RSS", "× Drain3");
    for (kind, make) in [("templated", templated_lines as fn(&Path, usize, u64)), ("unique", unique_lines)] {
        let (train, test) = (dir.path().join(format!("{kind}-train.log")), dir.path().join(format!("{kind}.log")));
        make(&train, lines / 10, 1);
        make(&test, lines, 2);
        let data = dir.path().join(format!("{kind}-data"));
        let data_dir = data.to_str().unwrap();
        quietly(Command::new(trainer).args(["train", "-D", data_dir, "-K", "bench"]).arg(&train));
        // The first start compiles the component (~0.5 s) and keeps it in
        // DATA_DIR/cache; measured are the starts after it, as a service
        // or a cron job runs.
        quietly(Command::new(&logarithm).args(["monitor", "--once", "-D", data_dir, "-K", "bench"]).arg(&train));

        // Drain3 slows down as its clusters multiply: on unique lines it
        // would not finish; it is given DRAIN3_LIMIT_SECS.
        let drain = match &drain3 {
            Ok(python) => measure(Command::new("timeout").arg(DRAIN3_LIMIT_SECS.to_string()).arg(python).args(["-c", DRAIN3]).arg(&test)),
            Err(_) => None,
        };
        let mut runs = vec![
            ("wc -l", measure(Command::new("wc").arg("-l").arg(&test))),
            (
                "logarithm monitor --once -f json",
                median_of(LOGARITHM_RUNS, || {
                    measure(
                        Command::new(&logarithm)
                            .args(["monitor", "--once", "-f", "json", "-D", data.to_str().unwrap(), "-K", "bench"])
                            .arg(&test),
                    )
                }),
            ),
        ];
        runs.push(("Drain3 (TemplateMiner, defaults)", drain));
        let drain_rate = runs[2].1.as_ref().map(|r| lines as f64 / r.secs);
        for (tool, run) in &runs {
            match run {
                Some(r) => {
                    let rate = lines as f64 / r.secs;
                    let ratio = drain_rate.map(|d| format!("{:.2}", rate / d)).unwrap_or_else(|| "-".into());
                    println!("{kind:<10} {tool:<34} {rate:>12.0} {:>10.2} {:>5.1} MiB {ratio:>10}", r.cpu_secs, r.peak_rss_mib);
                }
                None => println!(
                    "{kind:<10} {tool:<34} {:>12}",
                    match (tool.starts_with("Drain3"), &drain3) {
                        (true, Err(e)) => format!("unavailable: {e}"),
                        (true, Ok(_)) =>
                            format!("not done in {DRAIN3_LIMIT_SECS} s: < {:.0} lines/s", lines as f64 / DRAIN3_LIMIT_SECS as f64),
                        _ => "failed".into(),
                    }
                ),
            }
        }
    }
}
