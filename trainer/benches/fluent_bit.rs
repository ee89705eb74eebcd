//! Records/s through the real Fluent Bit, with and without the detector's
//! filters (the wasm module, interpreted and AOT, and the native plugin),
//! on the same generated syslog file: `tail` (from head, exit at end of
//! file) → [filter] → `file` output, each as Fluent Bit runs it by default
//! and with the input `Threaded On`. Prints, for each pipeline:
//! - records/s to the last record: the records over the time from launch to
//!   when the last of them reached the output file (sampled every 5 ms), so
//!   start-up counts and the shutdown grace, which makes a second of every
//!   run, does not. It is what it takes to work off a backlog, with any
//!   input mode: a threaded input hands its chunks over in bursts, so a
//!   rate read off the output while it grows would say nothing;
//! - steady records/CPU-s: the CPU of the run less that of a run on a few
//!   lines (start-up and shutdown), all threads counted;
//! - the fewest records that reached the output in any round: Fluent Bit
//!   exits at the end of the file, and in some settings before everything
//!   is out (README, Performance);
//! - and each figure as a share of Fluent Bit alone in the same input mode.
//!
//! No assertions (targets are read off it, not timed in tests). For scale,
//! it also runs a filter that does nothing: Fluent Bit's own example
//! module's `filter_passthrough` (AOT), which returns each record's JSON as
//! it came, so its cost is what `filter_wasm` costs any filter.
//!
//! `cargo bench -p logarithm-trainer --bench fluent_bit [-- LINES]` (default
//! 3,000,000, so that start-up is a few percent of a run; about 11 minutes)
//!
//! Fluent Bit: `LOGARITHM_FLUENT_BIT`, else `../shared/tools/fluent-bit/bin/fluent-bit`;
//! the AOT variants need WAMR's `wamrc` (`LOGARITHM_WAMRC`, else next to
//! that Fluent Bit) and are skipped without it, the passthrough also
//! without the example module (`example/filter.wasm` beside `bin/`).
//! The native plugin is built in release into `target/fluent-bit-plugin`
//! (or `LOGARITHM_FLUENT_BIT_PLUGIN` names one).

mod common;

use logarithm::export;
use logarithm_detector::ModelMeta;
use logarithm_detector::modelfile::{self, KdfParams};
use logarithm_trainer::fakelogs::{FakeLogs, Template};
use logarithm_trainer::fit::{self, FitParams};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

fn tool(var: &str, name: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/fluent-bit/bin").join(name))
}

/// A filter stage.
#[derive(Clone, Copy)]
enum Filter<'a> {
    /// `filter_wasm`: the module, its function, and the data directory it
    /// reads its model from (if any).
    Wasm { module: &'a Path, function: &'a str, data: Option<&'a Path> },
    /// The native plugin (`flb-filter_logarithm.so`), its data directory,
    /// and its `Annotate` setting.
    Plugin { library: &'a Path, data: &'a Path, annotate: &'a str },
}

/// The native plugin, built in release as README says
/// (`LOGARITHM_FLUENT_BIT_PLUGIN` names one already built).
fn plugin(dir: &Path) -> Result<PathBuf, String> {
    let built = match std::env::var_os("LOGARITHM_FLUENT_BIT_PLUGIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let target = root.join("target/fluent-bit-plugin");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-q", "--release", "-p", "logarithm-detector", "--features", "fluent-bit-plugin", "--target-dir"])
                .arg(&target)
                .current_dir(&root)
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !status.success() {
                return Err("building the plugin failed".into());
            }
            target.join("release/liblogarithm_detector.so")
        }
    };
    let path = dir.join("flb-filter_logarithm.so");
    fs::copy(&built, &path).map_err(|e| format!("{}: {e}", built.display()))?;
    Ok(path)
}

/// Rounds of runs; each figure is the median of its rounds.
const ROUNDS: usize = 3;

/// The most lines the interpreted module is run on.
const INTERPRETER_LINES: usize = 1_000_000;

/// One run of Fluent Bit to the end of a file.
#[derive(Clone, Copy)]
struct Run {
    cpu: f64,
    records: usize,
    peak_rss_kib: i64,
    /// Seconds from launch until the output file had all its bytes (NaN
    /// if it never had any).
    last: f64,
}

/// Samples the size of `file` until `done`: (seconds since `started`, bytes).
fn sample_size(file: PathBuf, started: Instant, done: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<(f64, u64)>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !done.load(Ordering::Relaxed) {
            samples.push((started.elapsed().as_secs_f64(), fs::metadata(&file).map_or(0, |m| m.len())));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        samples
    })
}

/// When the file first had its final `total` bytes.
fn last_byte(samples: &[(f64, u64)], total: u64) -> f64 {
    samples.iter().find(|(_, size)| total > 0 && *size >= total).map_or(f64::NAN, |(t, _)| *t)
}

/// Runs Fluent Bit to the end of `log`.
fn run(dir: &Path, log: &Path, filter: Option<Filter<'_>>, threaded: bool) -> Run {
    let out = dir.join("out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let mut conf = format!(
        "[SERVICE]\n    Flush 0.2\n    Grace 1\n    Log_Level warn\n[INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    Exit_On_Eof On\n    Buffer_Max_Size 1M\n    Tag logs\n    Threaded {}\n",
        log.display(),
        if threaded { "On" } else { "Off" }
    );
    let mut args = vec!["-q".to_owned()];
    match filter {
        Some(Filter::Wasm { module, function, data }) => {
            conf += &format!(
                "[FILTER]\n    Name wasm\n    Match *\n    WASM_Path {}\n    Function_Name {function}\n    Wasm_Heap_Size 8M\n    Wasm_Stack_Size 256K\n",
                module.display()
            );
            if let Some(data) = data {
                conf += &format!("    Accessible_Paths {}\n", data.display());
            }
        }
        Some(Filter::Plugin { library, data, annotate }) => {
            args.extend(["-e".to_owned(), library.display().to_string()]);
            conf += &format!("[FILTER]\n    Name logarithm\n    Match *\n    Data_Dir {}\n    Annotate {annotate}\n", data.display());
        }
        None => {}
    }
    conf += &format!("[OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File out.json\n    Format plain\n", out.display());
    let path = dir.join("bench.conf");
    fs::write(&path, conf).unwrap();
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample_size(out.join("out.json"), started, done.clone());
    // Reaped by `common::wait`, which also reads its CPU time and peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(tool("LOGARITHM_FLUENT_BIT", "fluent-bit")).args(&args).args(["-c", path.to_str().unwrap()]).spawn().unwrap();
    let common::Finished { status, cpu_secs: cpu, peak_rss_kib } = common::wait(child.id());
    done.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    assert_eq!(status, 0, "fluent-bit failed");
    let output = fs::read(out.join("out.json")).unwrap_or_default();
    let records = output.iter().filter(|&&b| b == b'\n').count();
    Run { cpu, records, peak_rss_kib, last: last_byte(&samples, output.len() as u64) }
}

fn main() {
    let lines: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3_000_000);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let fake = |count, anomalies, seed| FakeLogs { template: Template::Syslog, count, anomalies, seed, start: chrono::Utc::now() };
    fake(lines, lines / 1000, 2).write(&mut fs::File::create(&log).unwrap()).unwrap();
    // The same pipeline on a few lines costs what a run costs whatever its
    // size: start-up, loading the model, and Fluent Bit's shutdown grace
    // (up to a second), which dominate a short run. Taken off, what is left
    // is the cost per record.
    let small = dir.path().join("small.log");
    let small_lines = lines.min(2_000);
    fake(small_lines, 2, 2).write(&mut fs::File::create(&small).unwrap()).unwrap();
    // A model trained on the same host's history, installed as the trainer would.
    let mut history = Vec::new();
    fake(100_000, 0, 1).write(&mut history).unwrap();
    let records: Vec<_> = String::from_utf8(history).unwrap().lines().map(logarithm::sources::parse_record).collect();
    let (model, _) = fit::fit(&records, &FitParams::default(), ModelMeta { version: 1, ..ModelMeta::default() }).unwrap();
    let data = dir.path().join("data");
    fs::create_dir_all(data.join("models")).unwrap();
    let file = modelfile::seal(&model.to_payload(), "bench", [1; 16], [2; 12], KdfParams::default()).unwrap();
    fs::write(data.join("models/model-000001.lgm"), file).unwrap();
    fs::write(data.join("current"), "1\n").unwrap();
    fs::write(data.join("key"), "bench").unwrap();
    let module = dir.path().join("logarithm.wasm");
    export::write(&module, export::FLUENT_BIT_MODULE).unwrap();
    let aot = dir.path().join("logarithm.aot");
    let wamrc = tool("LOGARITHM_WAMRC", "wamrc");
    let aot = match export::compile_aot(&wamrc, &module, &aot) {
        Ok(()) => Some(aot),
        Err(e) => {
            println!("(no AOT run: {e:#})");
            None
        }
    };
    let example = tool("LOGARITHM_FLUENT_BIT", "fluent-bit").parent().and_then(Path::parent).map(|t| t.join("example/filter.wasm"));
    let passthrough = dir.path().join("passthrough.aot");
    let passthrough = match example.filter(|e| e.is_file()).map(|e| export::compile_aot(&wamrc, &e, &passthrough)) {
        Some(Ok(())) => Some(passthrough),
        Some(Err(e)) => {
            println!("(no passthrough run: {e:#})");
            None
        }
        None => None,
    };

    let library = match plugin(dir.path()) {
        Ok(library) => Some(library),
        Err(e) => {
            println!("(no native plugin run: {e})");
            None
        }
    };

    println!("Fluent Bit, tail → [filter] → file, {lines} generated syslog lines, median of {ROUNDS} interleaved rounds");
    println!("(to the last record: records/s from launch until the last reached the output;");
    println!(" steady: CPU of {lines} records less that of {small_lines}, i.e. without start-up and shutdown;");
    println!(" records: the fewest that reached the output in a round;");
    println!(" % of the same figure without a filter, in the same input mode)");
    println!(
        "{:<34} {:>8} {:>23} {:>20} {:>9} {:>10}",
        "pipeline", "input", "to the last rec/s", "steady rec/CPU-s", "records", "peak RSS"
    );
    let ours = |module| Some(Filter::Wasm { module, function: "logarithm_filter", data: Some(&data) });
    // Each pipeline, and whether it is also run with the input threaded.
    let mut runs: Vec<(&str, Option<Filter>, bool)> = vec![("no filter", None, true)];
    if let Some(passthrough) = &passthrough {
        runs.push((
            "a filter doing nothing, AOT",
            Some(Filter::Wasm { module: passthrough, function: "filter_passthrough", data: None }),
            false,
        ));
    }
    // WAMR's interpreter does about 15,000 records a second: a larger run
    // would take minutes a round to say the same.
    if lines <= INTERPRETER_LINES {
        runs.push(("logarithm_filter, interpreted", ours(&module), false));
    } else {
        println!("(the interpreted module is run only up to {INTERPRETER_LINES} lines: it does about 15,000 records/s)");
    }
    if let Some(aot) = &aot {
        runs.push(("logarithm_filter, AOT (wamrc)", ours(aot), true));
    }
    if let Some(library) = &library {
        runs.push(("native plugin", Some(Filter::Plugin { library, data: &data, annotate: "all" }), true));
        runs.push(("native plugin, annotate anomalies", Some(Filter::Plugin { library, data: &data, annotate: "anomalies" }), true));
    }
    // The same with the input in a thread of its own (`Threaded On`), where
    // its filters run too: off the engine's thread, which flushes the
    // output. The filters that do nothing or are interpreted say nothing
    // new there.
    let threaded = runs.iter().filter(|(_, _, too)| *too).map(|&(name, filter, _)| (name, filter, true));
    let runs: Vec<_> = runs.iter().map(|&(name, filter, _)| (name, filter, false)).chain(threaded).collect();
    // Rounds of every pipeline in turn, so that a slow phase of the machine
    // falls on all of them, not on one.
    let mut results = vec![Vec::new(); runs.len()];
    for _ in 0..ROUNDS {
        for ((_, filter, threaded), results) in runs.iter().zip(&mut results) {
            results.push((run(dir.path(), &log, *filter, *threaded), run(dir.path(), &small, *filter, *threaded)));
        }
    }
    let median = |mut figures: Vec<f64>| {
        figures.sort_by(f64::total_cmp);
        figures[figures.len() / 2]
    };
    // Fluent Bit alone, by input mode.
    let mut alone = [None, None];
    for ((name, _, threaded), results) in runs.iter().zip(results) {
        let of = |f: fn(&(Run, Run)) -> f64| median(results.iter().map(f).collect());
        let to_last = of(|(big, _)| big.records as f64 / big.last);
        let steady = of(|(big, small)| (big.records - small.records) as f64 / (big.cpu - small.cpu));
        let records = results.iter().map(|(big, _)| big.records).min().unwrap_or(0);
        let rss = of(|(big, _)| big.peak_rss_kib as f64) / 1024.0;
        let (to_last_alone, steady_alone) = *alone[usize::from(*threaded)].get_or_insert((to_last, steady));
        let share = |ours: f64, theirs: f64| format!("({:.0}%)", 100.0 * ours / theirs);
        println!(
            "{name:<34} {:>8} {to_last:>16.0} {:>6} {steady:>13.0} {:>6} {records:>9} {rss:>6.1} MiB",
            if *threaded { "threaded" } else { "default" },
            share(to_last, to_last_alone),
            share(steady, steady_alone),
        );
    }
}
