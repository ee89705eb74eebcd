//! Embedding the detector component from Rust: load the current model of a
//! data directory through wasmtime and score lines from stdin, printing each
//! line's score. This is what `logarithm monitor` does, in 30 lines.
//!
//! ```sh
//! examples/demo.sh   # or train a model yourself first
//! printf 'kernel: Out of memory: Killed process 42\n' | \
//!   cargo run --example score_lines -- ~/.local/share/logarithm
//! ```

use anyhow::Result;
use logarithm::datadir::{DataDir, KeyOrigin};
use logarithm::engine::{ComponentDetector, ComponentSource};
use logarithm::sources::parse_record;
use std::io::BufRead;

fn main() -> Result<()> {
    let dir = DataDir::resolve(std::env::args_os().nth(1).map(Into::into))?;
    let (_, path, model) = dir.read_current_model()?;
    let given = std::env::var("LOGARITHM_ENCRYPTION_KEY").ok().map(|k| (k, KeyOrigin::Given));
    let (passphrase, _) = dir.passphrase(given, false)?;
    let mut detector = ComponentDetector::load(ComponentSource::Embedded, &model, &passphrase)
        .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", path.display()))?;
    let lines: Vec<String> = std::io::stdin().lock().lines().collect::<Result<_, _>>()?;
    let records: Vec<_> = lines.iter().map(|l| parse_record(l)).collect();
    for (line, verdict) in lines.iter().zip(detector.score_batch(&records)?) {
        let mark = if verdict.anomalous { "!" } else { " " };
        println!("{mark} {:.4}  {line}", verdict.score);
    }
    Ok(())
}
