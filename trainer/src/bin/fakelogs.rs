//! `fakelogs`: writes realistic syslog or JSON logs, optionally with injected
//! anomalies, for the demo, tests and benchmarks.
//!
//! `fakelogs --template syslog --count 10000 --anomalies 20 --labels labels.txt > syslog.log`

use anyhow::{Context, Result};
use clap::Parser;
use logarithm_trainer::fakelogs::{FakeLogs, Template};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Write realistic fake logs, with optional injected anomalies.
#[derive(Debug, Parser)]
#[command(name = "fakelogs", version)]
struct Cli {
    /// Output layout.
    #[arg(long, value_enum, default_value = "syslog")]
    template: Template,
    /// Number of lines.
    #[arg(short = 'n', long, default_value_t = 1000)]
    count: usize,
    /// Number of injected anomalous lines among them.
    #[arg(short = 'a', long, default_value_t = 0)]
    anomalies: usize,
    /// Random seed (same seed and --start, same logs; without --start the
    /// times follow the clock).
    #[arg(short = 's', long, default_value_t = 1)]
    seed: u64,
    /// Timestamp of the first line, RFC 3339 (default: now minus about the span of the logs).
    #[arg(long)]
    start: Option<chrono::DateTime<chrono::Utc>>,
    /// Write the logs here instead of stdout.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Write the 1-based line numbers of the anomalies here, one per line.
    #[arg(long)]
    labels: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logarithm::logging::quiet_on_closed_stdout();
    logarithm::logging::main_with("fakelogs", || run(cli).map(|()| ExitCode::SUCCESS))
}

fn run(cli: Cli) -> Result<()> {
    if cli.anomalies > cli.count {
        anyhow::bail!("--anomalies {} is more than --count {}: the anomalies are lines among them", cli.anomalies, cli.count);
    }
    // About 2 s between lines on average.
    let start = cli.start.unwrap_or_else(|| chrono::Utc::now() - chrono::Duration::seconds(2 * cli.count as i64));
    let generator = FakeLogs { template: cli.template, count: cli.count, anomalies: cli.anomalies, seed: cli.seed, start };
    let positions = match &cli.output {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            let p = generator.write(&mut out).with_context(|| format!("cannot write {}", path.display()))?;
            out.flush().with_context(|| format!("cannot write {}", path.display()))?;
            p
        }
        None => {
            let mut out = BufWriter::new(io::stdout().lock());
            let p = generator.write(&mut out)?;
            out.flush()?;
            p
        }
    };
    if let Some(path) = &cli.labels {
        let text: String = positions.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
