//! The short, stable run of every fuzz target (issue 10), part of `cargo
//! test --workspace`: each target's seeds, every file in
//! `regressions/TARGET/` (inputs a fuzzing run once found failing: they stay
//! fixed), and deterministic mutations of them. A target that panics on any
//! of these fails its test, naming the input.
//!
//! `LOGARITHM_FUZZ_SEEDS=DIR` also writes each target's seeds to
//! `DIR/TARGET/`, the starting corpus for `cargo fuzz` (README, "Fuzzing").

use logarithm_fuzz::{TARGETS, seeds};
use std::path::Path;
use std::time::{Duration, Instant};

/// Mutations per target: enough to reach past each format's first checks,
/// short enough for every `cargo test` (each target stops early at
/// [`BUDGET`]).
const MUTATIONS: usize = 3000;
/// Time per target's mutations.
const BUDGET: Duration = Duration::from_secs(3);

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that parsers branch on: delimiters, multi-byte UTF-8 starts and
/// continuations, quotes, digits, extremes.
const INTERESTING: &[u8] = b"<>[]{}:\" 0179-+.TZ\\\n\r\t\0\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\xff\x80";

/// One of the classic mutations, libFuzzer-style: flip, set, insert,
/// delete, duplicate a run, splice another input in, truncate.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => out.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 if at < out.len() => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.drain(at..end);
            }
            4 if at < out.len() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                let run = out[at..end].to_vec();
                out.splice(at..at, run);
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(32)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn run(name: &str) {
    let target = TARGETS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no target {name}")).1;
    let mut inputs = seeds(name);
    assert!(!inputs.is_empty(), "{name} has no seeds");
    if let Some(dir) = std::env::var_os("LOGARITHM_FUZZ_SEEDS") {
        let dir = Path::new(&dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
        }
    }
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions").join(name);
    if let Ok(entries) = std::fs::read_dir(&regressions) {
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            println!("{name}: replaying {}", path.display());
            target(&input);
            inputs.push(input);
        }
    }
    for input in &inputs {
        target(input);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let start = Instant::now();
    let mut done = 0;
    while done < MUTATIONS && start.elapsed() < BUDGET {
        let input = &inputs[rng.below(inputs.len())];
        let other = &inputs[rng.below(inputs.len())];
        let mutated = mutate(&mut rng, input, other);
        if let Err(panic) = std::panic::catch_unwind(|| target(&mutated)) {
            panic!("{name} panicked on {:?} ({:?})", String::from_utf8_lossy(&mutated), panic.downcast_ref::<String>());
        }
        done += 1;
    }
    println!("{name}: {} seeds and regressions, {done} mutations", inputs.len());
}

#[test]
fn parse() {
    run("parse");
}

#[test]
fn features() {
    run("features");
}

/// Also checks that the seeds reach what they are for: the plugin scores
/// their records and rewrites the chunk (all but a group marker alone).
#[test]
fn fluent_bit_chunk() {
    use logarithm_detector::fluentbit_plugin::{Annotate, How, Pass, filter_chunk};
    let detector = logarithm_fuzz::tiny_detector();
    let seeds = seeds("fluent_bit_chunk");
    for (i, seed) in seeds.iter().enumerate() {
        // The one before last is a group marker alone, which passes untouched.
        let how = How { pass: Pass::All, annotate: Annotate::All };
        assert_eq!(filter_chunk(seed, Ok(&detector), how, &mut Vec::new()), Ok(i != seeds.len() - 2), "{seed:?}");
    }
    run("fluent_bit_chunk");
}

/// Also checks that the seeds reach what they are for: the sealed one
/// authenticates and decodes, so mutations of it reach the decoder behind
/// authentication.
#[test]
fn model_file() {
    let payload = logarithm_fuzz::tiny_model().to_payload();
    let sealed = logarithm_detector::modelfile::seal(&payload, logarithm_fuzz::KEY, [3; 16], [4; 12], logarithm_fuzz::FAST_KDF).unwrap();
    logarithm_detector::Detector::load(&sealed, logarithm_fuzz::KEY).expect("the sealed seed loads");
    run("model_file");
}

#[test]
fn model_payload() {
    logarithm_detector::Model::from_payload(&logarithm_fuzz::tiny_model().to_payload()).expect("the seed model decodes");
    run("model_payload");
}

#[test]
fn config() {
    run("config");
}

#[test]
fn checkpoint() {
    run("checkpoint");
}
