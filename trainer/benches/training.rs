//! Training at scale, end to end through the real binaries:
//! `fakelogs -n N | logarithm-trainer train -i`, for several N. Prints lines/s
//! and the trainer's peak RSS (`common::wait`), which should stay flat as N grows.
//!
//! `cargo bench -p logarithm-trainer --bench training [-- 100000 1000000 5000000]`

mod common;

use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let sizes: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100_000, 1_000_000, 5_000_000] } else { sizes };
    let fakelogs = env!("CARGO_BIN_EXE_fakelogs");
    let trainer = env!("CARGO_BIN_EXE_logarithm-trainer");
    println!("{:>10}  {:>9}  {:>12}  {:>12}  {:>12}", "lines", "seconds", "lines/s", "CPU seconds", "peak RSS");
    for n in sizes {
        let data = tempfile::tempdir().unwrap();
        let mut generator = Command::new(fakelogs)
            .args(["-n", &n.to_string(), "-a", &(n / 1000).to_string(), "-s", "7"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        // Reaped by `common::wait`, which also reads its CPU time and peak RSS.
        #[allow(clippy::zombie_processes)]
        let child = Command::new(trainer)
            .args(["train", "-i", "-D", data.path().to_str().unwrap(), "-K", "bench"])
            .stdin(generator.stdout.take().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let common::Finished { status, cpu_secs, peak_rss_kib: rss_kib } = common::wait(child.id());
        let secs = started.elapsed().as_secs_f64();
        generator.wait().unwrap();
        assert_eq!(status, 0, "the trainer failed on {n} lines");
        println!("{n:>10}  {secs:>9.2}  {:>12.0}  {cpu_secs:>12.2}  {:>9.1} MiB", n as f64 / secs, rss_kib as f64 / 1024.0);
    }
}
