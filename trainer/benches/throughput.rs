//! Throughput figures: training, native scoring and scoring through the
//! component (the shipped path), on generated logs. Prints a table; no
//! assertions (targets are read off it, not timed in tests).
//!
//! `cargo bench -p logarithm-trainer --bench throughput [-- LINES]`

use logarithm::engine::{ComponentDetector, ComponentSource};
use logarithm::sources::parse_record;
use logarithm_detector::modelfile::{self, KdfParams};
use logarithm_detector::{Detector, LogRecord, ModelMeta};
use logarithm_trainer::fakelogs::{FakeLogs, Template};
use logarithm_trainer::fit::{self, FitParams};
use std::time::Instant;

fn records(count: usize, anomalies: usize, seed: u64) -> Vec<LogRecord> {
    let mut buf = Vec::new();
    FakeLogs { template: Template::Syslog, count, anomalies, seed, start: chrono::DateTime::UNIX_EPOCH }.write(&mut buf).unwrap();
    String::from_utf8(buf).unwrap().lines().map(parse_record).collect()
}

fn rate(lines: usize, secs: f64) -> String {
    format!("{:>10.0} lines/s", lines as f64 / secs)
}

fn main() {
    let lines: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200_000);
    println!(
        "logarithm throughput, {lines} generated syslog lines, {} threads available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let t = Instant::now();
    let train = records(lines, 0, 1);
    println!("parse                {}", rate(lines, t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let (model, report) = fit::fit(&train, &FitParams::default(), ModelMeta::default()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("train (fit)          {}  ({:.2} s, vocabulary {}, {} distinct)", rate(lines, secs), secs, report.vocab, report.distinct);

    let t = Instant::now();
    let file = modelfile::seal(&model.to_payload(), "bench", [1; 16], [2; 12], KdfParams::default()).unwrap();
    println!("seal                 {:>10.1} ms  ({} KiB model file)", t.elapsed().as_secs_f64() * 1e3, file.len() / 1024);

    let test = records(lines, lines / 1000, 2);
    let t = Instant::now();
    let native = Detector::load(&file, "bench").unwrap();
    println!("load native          {:>10.1} ms  (Argon2id + decrypt + decode)", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let uncached: Vec<_> = test.iter().map(|r| native.score_uncached(r)).collect();
    println!("score native, no verdict cache {}", rate(lines, t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let verdicts = native.score_batch(&test);
    let (hits, misses) = native.cache_stats();
    println!("score native         {}  ({hits} verdicts remembered, {misses} computed)", rate(lines, t.elapsed().as_secs_f64()));
    let line_verdict = |v: &logarithm_detector::Verdict| (v.score.to_bits(), v.anomalous, v.terms.clone());
    assert!(verdicts.iter().map(line_verdict).eq(uncached.iter().map(line_verdict)), "the verdict cache changed a verdict");

    let t = Instant::now();
    let mut component = ComponentDetector::load(ComponentSource::Embedded, &file, "bench").map_err(|e| e.to_string()).unwrap();
    println!("load component       {:>10.1} ms  (compile + instantiate + Argon2id in wasm)", t.elapsed().as_secs_f64() * 1e3);
    for batch in [1usize, 64, 256, 1024] {
        let n = if batch == 1 { lines.min(20_000) } else { lines };
        let t = Instant::now();
        let mut flagged = 0;
        for chunk in test[..n].chunks(batch) {
            flagged += component.score_batch(chunk).unwrap().iter().filter(|v| v.anomalous).count();
        }
        println!("score component b={batch:<4} {}  ({flagged} of {n} flagged)", rate(n, t.elapsed().as_secs_f64()));
    }
    // As `logarithm monitor` scores without --all: only anomalies explained.
    component.set_explain(false).unwrap();
    let t = Instant::now();
    for chunk in test.chunks(256) {
        component.score_batch(chunk).unwrap();
    }
    println!("score component b=256, anomalies explained only {}", rate(lines, t.elapsed().as_secs_f64()));
    let native_flagged = verdicts.iter().filter(|v| v.anomalous).count();
    println!("native flagged {native_flagged} of {lines} ({} injected)", lines / 1000);
}
