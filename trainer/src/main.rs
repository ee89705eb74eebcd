//! `logarithm-trainer`: learns what a host's normal logs look like and
//! exports an encrypted, versioned detector model; manages the versions.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use logarithm::audit::{self, AuditLog};
use logarithm::cli::{Generate, SharedArgs};
use logarithm::config;
use logarithm::datadir::DataDir;
use logarithm::logging;
use logarithm::sources::{self, DEFAULT_MAX_LINE_BYTES, SourceSpec};
use logarithm_detector::{Detector, modelfile};
use logarithm_trainer::fit;
use logarithm_trainer::train::{self, RetrainMode};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Train Logarithm's log anomaly detector and manage its models.
#[derive(Debug, Parser)]
#[command(name = "logarithm-trainer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Learn from log history and install a new model version.
    Train(Box<TrainArgs>),
    /// Evaluate the detector and baselines on labelled public logs (Loghub).
    Eval(EvalArgs),
    /// Inspect and manage model versions.
    Model {
        #[command(subcommand)]
        action: ModelCommand,
    },
    /// Read and check the audit log of the data directory.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Write shell completions or the man page.
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Describe the current model (version, date, lines, vocabulary, threshold, top terms).
    Info(SharedArgs),
    /// List all versions, the current one marked with `*`.
    List(SharedArgs),
    /// Delete versions: older than a duration, or one version.
    Delete(DeleteArgs),
    /// Make the previous version current again.
    Rollback(SharedArgs),
    /// Re-seal every stored model under a new key (the old one comes from
    /// -K, --key-file or the generated key), all at once.
    Rekey(RekeyArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain; names the first broken entry (exit status 1).
    Verify(SharedArgs),
    /// Print the entries.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
struct ShowArgs {
    #[command(flatten)]
    common: SharedArgs,
    /// Output format.
    #[arg(short = 'f', long, value_enum, default_value_t = ShowFormat::Human)]
    format: ShowFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ShowFormat {
    /// One aligned line per entry.
    Human,
    /// The entries as stored (JSON lines).
    Json,
}

#[derive(Debug, Args)]
struct RekeyArgs {
    #[command(flatten)]
    common: SharedArgs,
    /// File holding the new passphrase, `-` for standard input. When the models used the generated
    /// key (`DATA_DIR/key`), that file is replaced by the new passphrase.
    #[arg(long, env = "LOGARITHM_NEW_ENCRYPTION_KEY_FILE", value_name = "PATH")]
    new_key_file: PathBuf,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// Loghub directory [default: $LOGHUB_DIR, else ../shared/data/loghub].
    #[arg(long, value_name = "DIR")]
    loghub: Option<PathBuf>,
    /// Write the figure (ROC curves, score distributions on BGL_20k) here.
    #[arg(long, value_name = "PNG")]
    figure: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(short = 'L', long, env = "LOGARITHM_LOG_LEVEL", value_name = "LEVEL")]
    log_level: Option<String>,
    /// Also train the detector on BGL_20k with this many seeds (the
    /// default's first) and show the spread of its figures; 0 skips it.
    #[arg(long, value_name = "N", default_value_t = 6)]
    seeds: usize,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["older_than", "version"])))]
struct DeleteArgs {
    #[command(flatten)]
    common: SharedArgs,
    /// Delete versions trained longer ago than this (e.g. 30d).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, conflicts_with = "version")]
    older_than: Option<Duration>,
    /// Delete this version.
    #[arg(long, value_name = "N")]
    version: Option<u32>,
    /// Also delete the current version.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct TrainArgs {
    #[command(flatten)]
    common: SharedArgs,
    /// Log files, globs or directories to learn from (default:
    /// /var/log/syslog or /var/log/messages, plus the journal when there is one).
    #[arg(value_name = "PATHS", value_parser = clap::builder::TypedValueParser::try_map(clap::builder::OsStringValueParser::new(), sources::utf8_path))]
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
    #[arg(short = 't', long = "time", env = "LOGARITHM_DURATION", value_name = "DURATION", value_parser = humantime::parse_duration)]
    time: Option<Duration>,
    /// Vocabulary size: the most frequent terms kept [default: 10000].
    #[arg(short = 'V', long = "vocab-size", env = "LOGARITHM_VOCAB_SIZE", value_parser = clap::value_parser!(u32).range(1..=logarithm::config::MAX_VOCAB_SIZE as i64))]
    vocab_size: Option<u32>,
    /// Lines per training mini-batch [default: 256].
    #[arg(short = 'B', long = "batch-size", env = "LOGARITHM_BATCH_SIZE", value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch_size: Option<u32>,
    /// Most mini-batches per epoch [default: 200].
    #[arg(short = 'M', long = "max-batches", env = "LOGARITHM_MAX_BATCHES", value_parser = clap::value_parser!(u32).range(1..))]
    max_batches: Option<u32>,
    /// Training epochs [default: 30].
    #[arg(long, env = "LOGARITHM_EPOCHS", value_parser = clap::value_parser!(u32).range(1..=1000))]
    epochs: Option<u32>,
    /// Anomaly threshold written into the model, in [0, 1] [default: 0.998].
    #[arg(short = 'T', long, env = "LOGARITHM_THRESHOLD", allow_negative_numbers = true)]
    threshold: Option<f64>,
    /// Random seed (same logs and seed, same model).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How to start from the current model [default: incremental].
    #[arg(short = 'm', long, env = "LOGARITHM_RETRAIN_MODE", value_enum)]
    retrain_mode: Option<RetrainMode>,
    /// Add the new logs' frequent terms to the current vocabulary.
    #[arg(short = 'e', long)]
    expand_vocab: bool,
    /// Instead of training, make the previous version current again.
    #[arg(short = 'b', long)]
    rollback: bool,
    /// Longest line kept, bytes; longer lines are cut.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    max_line_bytes: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::main_with("logarithm-trainer", || run(cli))
}

fn run(cli: Cli) -> Result<ExitCode> {
    // Commands that only print; those that change the data directory end
    // as they decide.
    if matches!(
        cli.command,
        Command::Eval(_) | Command::Generate { .. } | Command::Model { action: ModelCommand::Info(_) | ModelCommand::List(_) }
    ) {
        logging::quiet_on_closed_stdout();
    }
    match cli.command {
        Command::Train(args) => train(*args),
        Command::Eval(args) => evaluate(&args),
        Command::Generate { what } => {
            what.write(<Cli as clap::CommandFactory>::command())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Model { action } => match action {
            ModelCommand::Info(common) => model_info(&common),
            ModelCommand::List(common) => model_list(&common),
            ModelCommand::Delete(args) => model_delete(&args),
            ModelCommand::Rollback(common) => {
                let (_, data_dir) = common.setup()?;
                let _lock = data_dir.lock("rollback")?;
                rollback(&data_dir, &common)
            }
            ModelCommand::Rekey(args) => rekey(&args),
        },
        Command::Audit { action } => match action {
            AuditCommand::Verify(common) => audit_verify(&common),
            AuditCommand::Show(args) => audit_show(&args),
        },
    }
}

/// Makes the previous version current again, once it opens with the key:
/// one that does not (sealed with another key, damaged) would keep the
/// running monitor on the old model and stop every restart, until noticed.
fn rollback(data_dir: &DataDir, common: &SharedArgs) -> Result<ExitCode> {
    let (from, to) = data_dir.rollback_target()?;
    let opens = || -> Result<()> {
        let (key, origin) = data_dir.checked_passphrase(common.given_key()?, false, common.fingerprint.as_deref())?;
        let path = data_dir.model_path(to);
        let bytes = modelfile::read_model_file(&path).map_err(anyhow::Error::msg)?;
        let detector = Detector::load(&bytes, &key).map_err(|e| anyhow::anyhow!("{}: {e} (tried {origin})", path.display()))?;
        modelfile::check_version(to, detector.model().meta.version).map_err(anyhow::Error::msg)
    };
    opens().with_context(|| format!("version {to} does not open, so version {from} stays current"))?;
    data_dir.set_current(to)?;
    audited(data_dir, "model_rolled_back", json!({ "from": from, "to": to }))?;
    logarithm::say!("rolled back: version {to} is current again (was {from})");
    Ok(ExitCode::SUCCESS)
}

/// Appends to the audit log after a change was made; the error says the
/// change itself is done.
fn audited(data_dir: &DataDir, event: &str, details: serde_json::Value) -> Result<()> {
    AuditLog::new(data_dir).append_done(event, details)
}

/// The audit log of an existing data directory: a mistyped `-D` is an
/// error, not an empty log that verifies.
fn existing_audit_log(common: &SharedArgs) -> Result<AuditLog> {
    let (_, data_dir) = common.setup()?;
    if !data_dir.root().is_dir() {
        anyhow::bail!("no data directory at {} (give it with -D)", logarithm::output::printable(&data_dir.root().display().to_string()));
    }
    Ok(AuditLog::new(&data_dir))
}

fn audit_verify(common: &SharedArgs) -> Result<ExitCode> {
    let log = existing_audit_log(common)?;
    match log.verify()? {
        Ok(n) => {
            logarithm::out!("audit log {}: {n} entries, chain intact", log.path().display());
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            logarithm::say!("audit log {} is broken at {broken}", log.path().display());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn audit_show(args: &ShowArgs) -> Result<ExitCode> {
    let log = existing_audit_log(&args.common)?;
    let (entries, broken) = log.read()?;
    let mut out = std::io::stdout().lock();
    for entry in &entries {
        let line = match args.format {
            ShowFormat::Human => audit::describe(entry),
            ShowFormat::Json => entry.line.clone(),
        };
        if writeln!(out, "{line}").is_err() {
            return Ok(ExitCode::SUCCESS); // a closed pipe (| head) is not an error
        }
    }
    match broken {
        Some(b) => {
            logarithm::say!("audit log {} is broken at {b}; entries from there on are not shown", log.path().display());
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Re-seals every version under the new key in a staging directory, checks
/// each opens with it, then swaps the staging directory in for `models` in
/// one step; audited.
fn rekey(args: &RekeyArgs) -> Result<ExitCode> {
    let (_, data_dir) = args.common.setup()?;
    let _lock = data_dir.lock("re-keying models")?;
    if args.new_key_file == std::path::Path::new("-") && args.common.key_file.as_deref() == Some(std::path::Path::new("-")) {
        bail!("--key-file - and --new-key-file - would both read standard input: give one of the keys another way");
    }
    let (old, _) = data_dir.checked_passphrase(args.common.given_key()?, false, args.common.fingerprint.as_deref())?;
    // The generated key file follows the models when it held the old key,
    // whether it was found or named (`--key-file DATA_DIR/key` left it
    // stale, and the next command failed with a wrong key).
    let generated = data_dir.generated_key_is(&old);
    let new = logarithm::datadir::read_key_file(&args.new_key_file)?;
    if new == old {
        bail!("the new key in {} is the old one", args.new_key_file.display());
    }
    let versions = data_dir.versions()?;
    if versions.is_empty() {
        bail!("no models in {} to re-key", data_dir.root().display());
    }
    let salt = data_dir.fingerprint_salt(true)?;
    let (old_fingerprint, new_fingerprint) = (data_dir.fingerprint(&old, false)?, data_dir.fingerprint(&new, false)?);
    // Ctrl-C, SIGTERM, a hangup: stop before the swap, the staging
    // directory removed, nothing re-keyed (after it, the swap is finished).
    let stop =
        logarithm::signals::Stop::install(&[signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP])?;
    let staged = tempfile::Builder::new()
        .prefix(logarithm::datadir::REKEY_STAGING)
        .tempdir_in(data_dir.root())
        .with_context(|| format!("cannot create a staging directory in {}", data_dir.root().display()))?;
    for &v in &versions {
        if stop.is_set() {
            return Err(stop.interrupted("nothing was re-keyed").into());
        }
        let path = data_dir.model_path(v);
        let bytes = modelfile::read_model_file(&path).map_err(anyhow::Error::msg)?;
        let payload =
            modelfile::open(&bytes, &old).map_err(|e| anyhow::anyhow!("cannot open {}: {e}; nothing was re-keyed", path.display()))?;
        let mut model = logarithm_detector::Model::from_payload(&payload)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}; nothing was re-keyed", path.display()))?;
        model.meta.key_fingerprint = new_fingerprint.clone();
        let sealed = modelfile::seal_in(&model.to_payload(), &new, rand::random(), rand::random(), modelfile::KdfParams::default(), salt)
            .map_err(|e| anyhow::anyhow!("cannot seal version {v}: {e}"))?;
        modelfile::open(&sealed, &new).map_err(|e| anyhow::anyhow!("version {v} does not open after re-sealing: {e}"))?;
        let name = |p: std::path::PathBuf| staged.path().join(p.file_name().expect("a model file name"));
        logarithm::datadir::write_atomic(&name(path), &sealed)?;
        let mut meta = data_dir.read_meta(v).unwrap_or_else(|_| json!({}));
        meta["key_fingerprint"] = json!(new_fingerprint);
        logarithm::datadir::write_atomic(&name(data_dir.meta_path(v)), &serde_json::to_vec_pretty(&meta)?)?;
    }
    if stop.is_set() {
        return Err(stop.interrupted("nothing was re-keyed").into());
    }
    // The swap and the key that goes with it are not cut in two.
    let _held = stop.hold();
    let staged = staged.keep();
    data_dir.swap_models(&staged)?;
    // (A crash just before this leaves them readable with the new key file
    // the operator holds.)
    if generated {
        data_dir.replace_generated_key(&new)?;
    }
    audited(
        &data_dir,
        "model_rekeyed",
        json!({ "versions": versions, "old_key_fingerprint": old_fingerprint, "key_fingerprint": new_fingerprint }),
    )?;
    logarithm::say!("re-keyed {} model versions; key fingerprint {new_fingerprint} (was {old_fingerprint})", versions.len());
    Ok(ExitCode::SUCCESS)
}

/// `train`: resolves the flags (and their environment variables) over the
/// configuration file over the defaults into a [`train::Job`], and runs it
/// under the data directory's lock; or, with `--rollback`, rolls back.
fn train(args: TrainArgs) -> Result<ExitCode> {
    let (config, data_dir) = args.common.setup()?;
    args.common.key_not_from_stdin(args.stdin)?;
    // One trainer at a time per data directory (models, versions, scratch).
    let lock = data_dir.lock(if args.rollback { "rollback" } else { "training" })?;
    if args.rollback {
        return rollback(&data_dir, &args.common);
    }
    let file = &config.settings;
    let defaults = fit::FitParams::default();
    let threshold = match args.threshold {
        Some(t) => config::check_threshold(t, "-T/--threshold (or LOGARITHM_THRESHOLD)")?,
        None => file.threshold.unwrap_or(defaults.threshold),
    };
    let params = fit::FitParams {
        vocab_size: args.vocab_size.or(file.vocab_size).map_or(defaults.vocab_size, |v| v as usize),
        batch_size: args.batch_size.or(file.batch_size).map_or(defaults.batch_size, |v| v as usize),
        max_batches: args.max_batches.or(file.max_batches).map_or(defaults.max_batches, |v| v as usize),
        epochs: args.epochs.or(file.epochs).map_or(defaults.epochs, |v| v as usize),
        threshold,
        seed: args.seed,
        ..defaults
    };
    params.check().map_err(|e| anyhow::anyhow!("invalid training parameters: {e}"))?;
    let mode = match (args.retrain_mode, &file.retrain_mode) {
        (Some(m), _) => m,
        (None, Some(m)) => RetrainMode::from_str(m, true).map_err(|e| anyhow::anyhow!("retrain_mode: {e}"))?,
        (None, None) => RetrainMode::Incremental,
    };
    let window = match args.time {
        Some(t) => Some(t),
        None => config.duration()?,
    };
    let max_line_bytes = args.max_line_bytes.map(|b| b as usize).or(file.max_line_bytes).unwrap_or(DEFAULT_MAX_LINE_BYTES).max(1);

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
    let day = Duration::from_secs(24 * 3600);
    let job = train::Job {
        params,
        mode,
        expand_vocab: args.expand_vocab,
        vocab_size_given: args.vocab_size.is_some(),
        sources: specs,
        window: window.unwrap_or(day),
        // Files named on the command line are read whole unless -t is given
        // there; the configured window applies to the journal and the default
        // sources (issue 14: a config's `duration` silently dropped lines).
        files_window: args.time.or(defaults.then(|| window.unwrap_or(day))),
        recursive: args.recursive,
        max_line_bytes,
        key: args.common.given_key()?,
        expected_fingerprint: args.common.fingerprint.clone(),
        config_path: config.path.clone(),
    };
    train::run(&data_dir, &lock, job)?;
    Ok(ExitCode::SUCCESS)
}

fn evaluate(args: &EvalArgs) -> Result<ExitCode> {
    logging::init(args.log_level.as_deref(), 0, "warn")?;
    let dir = args.loghub.clone().unwrap_or_else(logarithm_trainer::eval::default_dir);
    let started = Instant::now();
    let params = fit::FitParams::default();
    let (rows, flagged, curves) = logarithm_trainer::eval::run(&dir, &params).map_err(anyhow::Error::msg)?;
    logarithm::out!("{}", logarithm_trainer::eval::table(&rows, &flagged));
    if args.seeds > 0 {
        let seeds = logarithm_trainer::eval::spread_seeds(args.seeds, params.seed);
        let spread = logarithm_trainer::eval::seed_spread(&dir, &params, &seeds).map_err(anyhow::Error::msg)?;
        logarithm::out!("{}", logarithm_trainer::eval::seed_table(&spread));
    }
    // What gets reported (news once, bursts) on generated traffic with labels.
    let drift = logarithm_trainer::drift::drift(30_000, 10_000).map_err(anyhow::Error::msg)?;
    let bursts = logarithm_trainer::drift::bursts(30_000, 10_000).map_err(anyhow::Error::msg)?;
    logarithm::out!("{}", logarithm_trainer::drift::table(&drift, &bursts));
    if let Some(path) = &args.figure {
        logarithm_trainer::eval::figure(&curves, "BGL_20k, chronological 60/20/20, test part, unsupervised", path)
            .map_err(anyhow::Error::msg)?;
        logarithm::say!("figure written to {}", path.display());
    }
    logarithm::say!("evaluated in {:.1?} on {}", started.elapsed(), dir.display());
    Ok(ExitCode::SUCCESS)
}

fn text(meta: &serde_json::Value, key: &str) -> String {
    match &meta[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn model_info(common: &SharedArgs) -> Result<ExitCode> {
    let (_, data_dir) = common.setup()?;
    let (version, path, bytes) = data_dir.read_current_model()?;
    let meta = data_dir.read_meta(version)?;
    logarithm::out!("version:         {version} (current)");
    logarithm::out!("file:            {}", path.display());
    for (label, key) in [
        ("created:", "created_at"),
        ("lines:", "lines"),
        ("vocabulary:", "vocabulary_size"),
        ("threshold:", "threshold"),
        ("bursts:", "bursts"),
        ("key fingerprint:", "key_fingerprint"),
    ] {
        logarithm::out!("{label:<16} {}", text(&meta, key));
    }
    if let Some(sources) = meta["sources"].as_array() {
        let names = sources.iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        logarithm::out!("sources:         {}", logarithm::output::printable(&names));
    }
    if let Some(params) = meta["parameters"].as_array() {
        let shown: Vec<String> = params.iter().filter_map(|p| Some(format!("{}={}", p[0].as_str()?, p[1].as_str()?))).collect();
        logarithm::out!("parameters:      {}", shown.join(" "));
    }
    // The top terms are inside the encrypted model: they need the key.
    let given = common.given_key()?;
    // A key or a fingerprint given that does not match is a failure (as
    // for `logarithm info`), after what needs neither; with neither given
    // and no generated key, the terms are just not shown.
    let asserted = given.is_some() || common.fingerprint.is_some();
    match data_dir.checked_passphrase(given, false, common.fingerprint.as_deref()) {
        Ok((key, _)) => {
            let detector = Detector::load(&bytes, &key).map_err(|e| anyhow::anyhow!("cannot load {}: {e}", path.display()))?;
            // Terms are text of the logs: shown escaped, like every output for a terminal.
            let top: Vec<_> = detector.model().vocab.terms().iter().take(15).map(|t| logarithm::output::printable(t)).collect();
            logarithm::out!("top terms:       {}", top.join(", "));
        }
        Err(e) if asserted => {
            logarithm::out!("top terms:       (not shown)");
            return Err(e);
        }
        Err(e) => logarithm::out!("top terms:       (not shown: {e})"),
    }
    Ok(ExitCode::SUCCESS)
}

fn model_list(common: &SharedArgs) -> Result<ExitCode> {
    let (_, data_dir) = common.setup()?;
    let current = data_dir.current_version()?;
    let versions = data_dir.versions()?;
    if versions.is_empty() {
        logarithm::out!("no models in {}", data_dir.root().display());
        return Ok(ExitCode::SUCCESS);
    }
    logarithm::out!("  {:>7}  {:<20}  {:>10}  {:>6}  {:>9}", "version", "created", "lines", "vocab", "threshold");
    for v in versions {
        let meta = data_dir.read_meta(v).unwrap_or_default();
        let mark = if Some(v) == current { "*" } else { " " };
        logarithm::out!(
            "{mark} {v:>7}  {:<20}  {:>10}  {:>6}  {:>9}",
            text(&meta, "created_at"),
            text(&meta, "lines"),
            text(&meta, "vocabulary_size"),
            text(&meta, "threshold")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn model_delete(args: &DeleteArgs) -> Result<ExitCode> {
    let (_, data_dir) = args.common.setup()?;
    let _lock = data_dir.lock("deleting models")?;
    let targets: Vec<u32> = match (args.version, args.older_than) {
        (Some(v), _) => vec![v],
        (None, Some(age)) => {
            let cutoff = chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::TimeDelta::MAX);
            let mut old = Vec::new();
            for v in data_dir.versions()? {
                let meta = data_dir.read_meta(v)?;
                let created = meta["created_at"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                if created.is_some_and(|c| c < cutoff) {
                    old.push(v);
                }
            }
            old
        }
        (None, None) => unreachable!("clap requires --version or --older-than"),
    };
    let current = data_dir.current_version()?;
    let mut deleted = 0;
    for v in targets {
        if Some(v) == current && !args.force {
            if args.version.is_some() {
                data_dir.delete(v, false)?;
            }
            logarithm::say!("kept version {v}: it is the current model (use --force to delete it)");
            continue;
        }
        data_dir.delete(v, args.force)?;
        audited(
            &data_dir,
            "model_deleted",
            json!({ "version": v, "was_current": Some(v) == current, "current": data_dir.current_version()? }),
        )?;
        logarithm::say!("deleted version {v}");
        deleted += 1;
    }
    if deleted == 0 {
        logarithm::say!("nothing deleted");
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
