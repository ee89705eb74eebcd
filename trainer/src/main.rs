//! `logarithm-trainer`: learns what a host's normal logs look like and
//! exports an encrypted, versioned detector model.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use logarithm::datadir::{DataDir, KeyOrigin};
use logarithm::logging;
use logarithm::sources::{self, DEFAULT_MAX_LINE_BYTES, SourceSpec};
use logarithm_detector::ModelMeta;
use logarithm_detector::modelfile;
use logarithm_trainer::{export, fit};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Train Logarithm's log anomaly detector.
#[derive(Debug, Parser)]
#[command(name = "logarithm-trainer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Learn from log history and install a new model version.
    Train(TrainArgs),
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// Log files, globs or directories to learn from (default:
    /// /var/log/syslog or /var/log/messages, plus the journal when there is one).
    #[arg(value_name = "PATHS")]
    paths: Vec<String>,
    /// Also read log lines (plain, syslog or NDJSON) from stdin, to its end.
    #[arg(short = 'i', long)]
    stdin: bool,
    /// Learn from the systemd journal.
    #[arg(short = 'j', long)]
    journald: bool,
    /// Read the journal files in DIR instead of the system journal (implies -j).
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
    /// Read the files under directories given as paths, recursively.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Learn only from the last DURATION of history (e.g. 30m, 2h, 24h;
    /// default 24h for the journal and the default sources); files named on
    /// the command line are read whole unless this is given.
    #[arg(short = 't', long = "time", value_name = "DURATION", value_parser = humantime::parse_duration)]
    time: Option<Duration>,
    /// Vocabulary size: the most frequent terms kept.
    #[arg(short = 'V', long = "vocab-size", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    vocab_size: u32,
    /// Lines per training mini-batch.
    #[arg(short = 'B', long = "batch-size", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch_size: u32,
    /// Most mini-batches per epoch.
    #[arg(short = 'M', long = "max-batches", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    max_batches: u32,
    /// Training epochs.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    epochs: u32,
    /// Anomaly threshold written into the model, in [0, 1].
    #[arg(short = 'T', long, default_value_t = 0.999)]
    threshold: f64,
    /// Random seed (same logs and seed, same model).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Data directory the model is written to.
    #[arg(short = 'D', long, env = "LOGARITHM_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Passphrase to encrypt the model with (default: a key generated once
    /// and kept in the data directory, mode 0600).
    #[arg(short = 'K', long = "encryption-key", env = "LOGARITHM_ENCRYPTION_KEY", hide_env_values = true, value_name = "PASSPHRASE")]
    key: Option<String>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(short = 'L', long, env = "LOGARITHM_LOG_LEVEL", value_name = "LEVEL")]
    log_level: Option<String>,
    /// More diagnostics (repeatable).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Longest line kept, bytes; longer lines are cut.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE_BYTES, value_name = "BYTES")]
    max_line_bytes: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::main_with("logarithm-trainer", || run(cli))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Train(args) => train(args),
    }
}

fn train(args: TrainArgs) -> Result<ExitCode> {
    logging::init(args.log_level.as_deref(), args.verbose, "warn")?;
    let params = fit::FitParams {
        vocab_size: args.vocab_size as usize,
        batch_size: args.batch_size as usize,
        max_batches: args.max_batches as usize,
        epochs: args.epochs as usize,
        threshold: args.threshold,
        seed: args.seed,
        ..fit::FitParams::default()
    };
    params.check().map_err(|e| anyhow::anyhow!("invalid training parameters: {e}"))?;
    let data_dir = DataDir::resolve(args.data_dir.clone())?;

    let mut specs: Vec<SourceSpec> = args.paths.iter().cloned().map(SourceSpec::Path).collect();
    if args.journald || args.journal_dir.is_some() {
        specs.push(SourceSpec::Journal(args.journal_dir.clone()));
    }
    if args.stdin {
        specs.push(SourceSpec::Stdin);
    }
    let defaults = specs.is_empty();
    if defaults {
        specs = sources::default_sources().map_err(anyhow::Error::msg)?;
    }
    // The window: -t, else a day of the journal and of the default sources.
    let day = Duration::from_secs(24 * 3600);
    let cutoff = |window: Duration| (chrono::Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::TimeDelta::MAX)).timestamp_micros();
    let file_cutoff = args.time.or(defaults.then_some(day)).map(cutoff);
    let options = sources::ReadOptions {
        max_line_bytes: args.max_line_bytes.max(1),
        recursive: args.recursive,
        since_us: Some(cutoff(args.time.unwrap_or(day))),
        ..sources::ReadOptions::default()
    };
    let (lines, failures) = sources::read_all(&specs, &options);
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    let read = lines.len();
    let records: Vec<_> = lines
        .into_iter()
        .map(|l| l.record)
        .filter(|r| match (file_cutoff, r.timestamp_us) {
            (Some(cut), Some(ts)) => ts >= cut,
            _ => true,
        })
        .collect();
    if records.is_empty() {
        bail!("no log lines to learn from in {} ({read} read, none in the time window)", specs.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "));
    }

    let (passphrase, origin) = data_dir.passphrase(args.key.clone(), true)?;
    let fingerprint = modelfile::key_fingerprint(&passphrase).context("cannot fingerprint the encryption key")?;
    let meta = ModelMeta {
        version: data_dir.next_version()?,
        created_at_unix: chrono::Utc::now().timestamp(),
        key_fingerprint: fingerprint.clone(),
        sources: specs.iter().map(|s| s.name()).collect(),
        ..ModelMeta::default()
    };
    let (model, report) = fit::fit(&records, &params, meta).map_err(|e| anyhow::anyhow!("training failed: {e}"))?;
    let path = export::install(&data_dir, &model, &passphrase)?;

    eprintln!("trained model version {} in {:.1?}", model.meta.version, report.elapsed);
    eprintln!("  lines read:      {read}");
    eprintln!("  lines learned:   {} ({} distinct)", report.lines, report.distinct);
    eprintln!("  vocabulary:      {} terms", report.vocab);
    eprintln!("  epochs:          {} (final loss {:.5})", report.epochs, report.final_loss);
    eprintln!("  threshold:       {}", report.threshold);
    eprintln!("  model:           {}", path.display());
    match origin {
        KeyOrigin::Given => eprintln!("  key fingerprint: {fingerprint}"),
        KeyOrigin::File(key) => eprintln!("  key fingerprint: {fingerprint} (generated key {})", key.display()),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
