//! Records/s through the real Fluent Bit, with and without the detector's
//! filters (the wasm module, interpreted and AOT, and the native plugin),
//! on the same generated syslog file: `tail` (from head, exit at end of
//! file) → [filter] → `file` output. Prints wall and CPU
//! figures, whole and steady (less a run on a few lines: start-up and
//! shutdown); no assertions (targets are read off it, not timed in tests).
//! For scale, it also runs a filter that does nothing: Fluent Bit's own
//! example module's `filter_passthrough` (AOT), which returns each record's
//! JSON as it came, so its cost is what `filter_wasm` costs any filter.
//!
//! `cargo bench -p logarithm-trainer --bench fluent_bit [-- LINES]`
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

/// Runs Fluent Bit to the end of `log`; returns (wall s, CPU s, records
/// out, peak RSS KiB).
fn run(dir: &Path, log: &Path, filter: Option<Filter<'_>>) -> (f64, f64, usize, i64) {
    let out = dir.join("out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let mut conf = format!(
        "[SERVICE]\n    Flush 0.2\n    Grace 1\n    Log_Level warn\n[INPUT]\n    Name tail\n    Path {}\n    Read_From_Head On\n    Exit_On_Eof On\n    Buffer_Max_Size 1M\n    Tag logs\n",
        log.display()
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
    // Reaped by `common::wait`, which also reads its CPU time and peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(tool("LOGARITHM_FLUENT_BIT", "fluent-bit")).args(&args).args(["-c", path.to_str().unwrap()]).spawn().unwrap();
    let common::Finished { status, cpu_secs: cpu, peak_rss_kib } = common::wait(child.id());
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(status, 0, "fluent-bit failed");
    let records = fs::read_to_string(out.join("out.json")).map(|t| t.lines().count()).unwrap_or(0);
    (wall, cpu, records, peak_rss_kib)
}

fn main() {
    let lines: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200_000);
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

    println!("Fluent Bit, tail → [filter] → file, {lines} generated syslog lines, median of 3 runs");
    println!("(steady: the cost of {lines} records less that of {small_lines}, i.e. without start-up and shutdown)");
    println!(
        "{:<34} {:>12} {:>16} {:>14} {:>18} {:>10} {:>12}",
        "pipeline", "records/s", "records/CPU-s", "steady rec/s", "steady rec/CPU-s", "records", "peak RSS"
    );
    let ours = |module| Some(Filter::Wasm { module, function: "logarithm_filter", data: Some(&data) });
    let mut runs: Vec<(&str, Option<Filter>)> = vec![("no filter", None)];
    if let Some(passthrough) = &passthrough {
        runs.push(("a filter doing nothing, AOT", Some(Filter::Wasm { module: passthrough, function: "filter_passthrough", data: None })));
    }
    runs.push(("logarithm_filter, interpreted", ours(&module)));
    if let Some(aot) = &aot {
        runs.push(("logarithm_filter, AOT (wamrc)", ours(aot)));
    }
    if let Some(library) = &library {
        runs.push(("native plugin", Some(Filter::Plugin { library, data: &data, annotate: "all" })));
        runs.push(("native plugin, annotate anomalies", Some(Filter::Plugin { library, data: &data, annotate: "anomalies" })));
    }
    let median = |log: &Path, filter| {
        let mut results: Vec<_> = (0..3).map(|_| run(dir.path(), log, filter)).collect();
        results.sort_by(|a, b| a.0.total_cmp(&b.0));
        results[1]
    };
    for (name, filter) in runs {
        let (wall, cpu, records, rss) = median(&log, filter);
        let (small_wall, small_cpu, small_records, _) = median(&small, filter);
        let extra = (records - small_records) as f64;
        println!(
            "{name:<34} {:>12.0} {:>16.0} {:>14.0} {:>18.0} {records:>10} {:>8.1} MiB",
            records as f64 / wall,
            records as f64 / cpu,
            extra / (wall - small_wall),
            extra / (cpu - small_cpu),
            rss as f64 / 1024.0
        );
    }
}
