//! `logarithm`: watches logs and prints the lines that do not fit the learned
//! model, scored by the detector component under wasmtime.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use logarithm::checkpoint::Checkpoints;
use logarithm::cli::{Generate, SharedArgs};
use logarithm::datadir::{DataDir, KEY_FILE_ENV, KeyOrigin};
use logarithm::engine::{ComponentDetector, ComponentSource, LoadError};
use logarithm::logging;
use logarithm::monitor::{self, MonitorConfig};
use logarithm::output::{Format, Printer};
use logarithm::sources::{self, DEFAULT_MAX_LINE_BYTES, ReadOptions, SourceSpec};
use logarithm::{export, filter};
use std::ffi::OsString;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Self-learning log anomaly detector: flags the log lines that do not fit a
/// host's normal logs.
#[derive(Debug, Parser)]
#[command(name = "logarithm", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score log lines from files and/or stdin and print the anomalies.
    Monitor(MonitorArgs),
    /// Filter a pipe: NDJSON records (or raw lines) on stdin, the same
    /// records with anomaly fields on stdout; or rsyslog's mmexternal protocol.
    Filter(FilterArgs),
    /// Write out the detector's wasm faces for other hosts.
    Export {
        #[command(subcommand)]
        what: ExportCommand,
    },
    /// Describe the current model (loaded through the component).
    Info(CommonArgs),
    /// Write shell completions or the man page.
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
    /// Learn from log history and install a new model: runs
    /// `logarithm-trainer train` with the same arguments.
    #[command(disable_help_flag = true)]
    Train {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
    /// Inspect and manage model versions: runs `logarithm-trainer model`
    /// with the same arguments.
    #[command(disable_help_flag = true)]
    Model {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// The Fluent Bit filter module (for `filter_wasm`), and optionally its
    /// ahead-of-time compiled variant.
    FluentBit {
        /// Where to write the module (`.wasm`).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: PathBuf,
        /// Also compile it ahead of time with WAMR's wamrc into this file
        /// (`.aot`, about 9x faster in Fluent Bit).
        #[arg(long, value_name = "FILE")]
        aot: Option<PathBuf>,
        /// wamrc to use for --aot (WAMR 2.4.1, as in Fluent Bit 5.1).
        #[arg(long, value_name = "PATH", default_value = "wamrc")]
        wamrc: PathBuf,
    },
    /// The detector component (`wasm32-wasip2`), for any component host.
    Component {
        /// Where to write the component (`.wasm`).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
struct FilterArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Pass on only the alerts (anomalies of a new kind or worse than before,
    /// repeat summaries, bursts; anomalies counted against an earlier alert
    /// are dropped too) and the records that could not be scored.
    #[arg(long, conflicts_with = "rsyslog")]
    only_anomalies: bool,
    /// Speak rsyslog's mmexternal protocol (interface.input="fulljson"):
    /// one reply per message setting $!anomaly!score, !anomalous, !terms.
    #[arg(long)]
    rsyslog: bool,
    /// Keep the kinds of anomalies reported in this file across restarts
    /// (rsyslog restarts its helper with itself), so that a restart does not
    /// report them again; one file per filter [default: nowhere].
    #[arg(long, value_name = "FILE")]
    memory_file: Option<PathBuf>,
    /// With --rsyslog, whose stderr rsyslog reads as replies: send
    /// diagnostics (a memory file that cannot be saved, a model that cannot
    /// be loaded) and a fatal error to this syslog socket.
    #[arg(long, value_name = "SOCKET", default_value = "/dev/log", requires = "rsyslog")]
    syslog_socket: PathBuf,
    #[command(flatten)]
    scoring: ScoringArgs,
}

/// How records are scored: shared by `monitor` and `filter`.
#[derive(Debug, Args)]
struct ScoringArgs {
    /// Anomaly threshold in [0, 1] (default: the model's).
    #[arg(short = 'T', long, env = "LOGARITHM_THRESHOLD", value_name = "SCORE", allow_negative_numbers = true)]
    threshold: Option<f64>,
    /// Most records scored per call into the component.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch_size: u32,
    /// Longest line kept, bytes; longer lines are cut and marked truncated [default: 65536].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    max_line_bytes: Option<u64>,
    /// Cores that score large batches, each part in its own instance of
    /// the detector with its own copy of the model; verdicts are the same
    /// [default: 2, or 1 on a one-core machine].
    #[arg(long, env = "LOGARITHM_THREADS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=logarithm::config::MAX_THREADS as i64))]
    threads: Option<u32>,
}

/// [`ScoringArgs`] checked and merged with the config file: flags (and
/// their environment variables) > config file > defaults.
struct Scoring {
    /// `None`: the model's.
    threshold: Option<f64>,
    batch_size: usize,
    max_line_bytes: usize,
    threads: usize,
}

impl ScoringArgs {
    fn resolve(&self, file: &logarithm::config::Settings) -> Result<Scoring> {
        let threshold = match self.threshold {
            Some(t) => Some(logarithm::config::check_threshold(t, "-T/--threshold (or LOGARITHM_THRESHOLD)")?),
            None => file.threshold,
        };
        let max_line_bytes = self.max_line_bytes.map(|b| b as usize).or(file.max_line_bytes).unwrap_or(DEFAULT_MAX_LINE_BYTES).max(1);
        let batch_size = self.batch_size as usize;
        logarithm::engine::check_batch(batch_size, max_line_bytes)?;
        // Two cores (one on a one-core machine) unless told: a log monitor
        // should not take every core of a busy host.
        let threads = self
            .threads
            .or(file.threads)
            .map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(2)), |t| t as usize);
        Ok(Scoring { threshold, batch_size, max_line_bytes, threads })
    }
}

/// Options shared by every command.
#[derive(Debug, Args)]
struct CommonArgs {
    #[command(flatten)]
    shared: SharedArgs,
    /// Use this detector component instead of the embedded one.
    #[arg(long, value_name = "PATH")]
    component: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MonitorArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Log files, globs or directories to read (default: /var/log/syslog or
    /// /var/log/messages, plus the journal when there is one).
    #[arg(value_name = "PATHS", value_parser = clap::builder::TypedValueParser::try_map(clap::builder::OsStringValueParser::new(), sources::utf8_path))]
    paths: Vec<String>,
    /// Read log lines (plain, syslog or NDJSON) from standard input.
    #[arg(short = 'i', long)]
    stdin: bool,
    /// Read the systemd journal.
    #[arg(short = 'j', long)]
    journald: bool,
    /// Read the journal files in DIR instead of the system journal (implies -j).
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
    /// Start the journal at this time: 'today', 'yesterday', '1 hour ago',
    /// '2026-11-01 10:00', RFC 3339 (default: its end, or the checkpoint).
    #[arg(short = 's', long, value_name = "TIME")]
    since: Option<String>,
    /// Read the files under directories given as paths, recursively.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Do not resume from, nor save, checkpoints, nor the kinds already
    /// reported (a restart alerts on them again).
    #[arg(long)]
    no_checkpoint: bool,
    /// Output format [default: human].
    #[arg(short = 'f', long, value_enum)]
    format: Option<Format>,
    /// Only score lines matching this regular expression.
    #[arg(short = 'F', long, value_name = "REGEX")]
    filter: Option<String>,
    #[command(flatten)]
    scoring: ScoringArgs,
    /// Read the sources to their current end, then exit (batch scan).
    #[arg(long)]
    once: bool,
    /// Print every record with its score, not only anomalies.
    #[arg(long)]
    all: bool,
    /// When following, read files from their start instead of their end.
    #[arg(long)]
    from_head: bool,
    /// Serve metrics in the Prometheus text format on this address (e.g.
    /// 127.0.0.1:9464), at /metrics. Off by default.
    #[arg(long, env = "LOGARITHM_METRICS_LISTEN", value_name = "ADDR:PORT")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Also send each anomaly to the journal (structured fields) or syslog.
    #[arg(long, value_enum, value_name = "SINK")]
    alert: Option<logarithm::alert::AlertKind>,
    /// The socket --alert writes to [default: /run/systemd/journal/socket
    /// for the journal, /dev/log for syslog].
    #[arg(long, value_name = "PATH", requires = "alert")]
    alert_socket: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::main_with("logarithm", || run(cli))
}

fn run(cli: Cli) -> Result<ExitCode> {
    if matches!(cli.command, Command::Info(_) | Command::Generate { .. }) {
        logging::quiet_on_closed_stdout();
    }
    match cli.command {
        Command::Monitor(args) => monitor(args),
        Command::Filter(args) => filter(args),
        Command::Export { what } => export(what),
        Command::Info(common) => info(common),
        Command::Train { args } => trainer("train", args),
        Command::Model { args } => trainer("model", args),
        Command::Generate { what } => {
            what.write(<Cli as clap::CommandFactory>::command())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the current model through the component.
fn load_detector(common: &CommonArgs, data_dir: &DataDir) -> Result<ComponentDetector> {
    load_current(common, data_dir).map(|(detector, _, _)| detector)
}

/// Loads the current model through the component; also returns its version
/// and the passphrase (to load the next one while following).
fn load_current(common: &CommonArgs, data_dir: &DataDir) -> Result<(ComponentDetector, u32, String)> {
    let (version, path, bytes) = data_dir.read_current_model()?;
    let (passphrase, origin) = data_dir.checked_passphrase(common.shared.given_key()?, false, common.shared.fingerprint.as_deref())?;
    let source = match &common.component {
        Some(p) => ComponentSource::File(p),
        None => ComponentSource::Embedded,
    };
    tracing::debug!("loading model version {version} from {}", path.display());
    let cache = data_dir.root().join("cache");
    let mut detector = ComponentDetector::load_cached(source, Some(&cache), &bytes, &passphrase).map_err(|e| match e {
        LoadError::Model(m) => {
            let hint = match (&m, &origin) {
                (logarithm_detector::Error::WrongKey { .. }, KeyOrigin::File(_)) => {
                    format!(" (tried {origin}; give the key the model was sealed with: --key-file, {KEY_FILE_ENV} or a systemd credential)")
                }
                (logarithm_detector::Error::WrongKey { .. }, _) => format!(" (tried {origin})"),
                _ => String::new(),
            };
            anyhow::anyhow!("cannot load model {}: {m}{hint}", path.display())
        }
        LoadError::Host(h) => h,
    })?;
    logarithm::engine::check_version(version, detector.info()?.version).with_context(|| format!("cannot load {}", path.display()))?;
    Ok((detector, version, passphrase))
}

/// `logarithm train|model ...`, as users of the original tool type them:
/// replaced by `logarithm-trainer train|model ...` (git-style), found next
/// to this binary, else on `PATH`.
fn trainer(command: &str, args: Vec<OsString>) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let beside = std::env::current_exe().ok().map(|exe| exe.with_file_name("logarithm-trainer")).filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from("logarithm-trainer"));
    let error = std::process::Command::new(&program).arg(command).args(args).exec();
    Err(error).with_context(|| format!("cannot run {} (it is installed next to logarithm, or on PATH)", program.display()))
}

fn filter(args: FilterArgs) -> Result<ExitCode> {
    // rsyslog reads the helper's stderr as replies: diagnostics would
    // desynchronise it, so in that mode they go to syslog, and a message
    // that cannot be scored is answered with why.
    let (config, data_dir) =
        if args.rsyslog { args.common.shared.setup_syslog(&args.syslog_socket)? } else { args.common.shared.setup()? };
    args.common.shared.key_not_from_stdin(true)?;
    let scoring = args.scoring.resolve(&config.settings)?;
    // A filter lives as long as its pipe (rsyslog keeps its mmexternal
    // child running): it loads a newly installed model like a follower,
    // checked every 2 s before a batch, or at SIGHUP.
    let now = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, now.clone()).context("cannot install signal handlers")?;
    let load = || {
        let (mut d, version, passphrase) = load_current(&args.common, &data_dir)?;
        if let Some(t) = scoring.threshold {
            d.set_threshold(t)?;
        }
        // Filters explain anomalies only (`anomaly_terms` is empty for the rest).
        d.set_explain(false)?;
        d.set_threads(scoring.threads);
        Ok((d, monitor::Reload::new(data_dir.clone(), passphrase, scoring.threshold, version, now.clone(), None)))
    };
    let mode = if args.rsyslog { filter::Mode::Rsyslog } else { filter::Mode::Ndjson { only_anomalies: args.only_anomalies } };
    let model = match (load(), mode) {
        (Ok((d, reload)), _) => filter::Model::Loaded(d, reload),
        // rsyslog may start its helper before the first training: it
        // answers every message with the error until a model appears.
        (Err(e), filter::Mode::Rsyslog) => filter::Model::Waiting {
            why: format!("no model: {}", logging::one_line(&e)),
            recheck: monitor::Recheck::new(now.clone()),
            tried: Some(data_dir.current_version().ok().flatten()),
            data_dir: data_dir.clone(),
            load: Box::new(load),
        },
        // In a pipe, a missing model is a mistake to stop at, visibly.
        (Err(e), _) => return Err(e),
    };
    let mut out = BufWriter::new(logarithm::output::Stdout(io::stdout().lock()));
    let memory = args.memory_file.map(logarithm_detector::memory::MemoryFile::new);
    // A stop (SIGTERM, SIGINT) answers the lines read and saves the memory
    // of reported kinds; a second one ends the filter at once.
    let stop = logarithm::signals::Stop::install(&[signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    let stats = filter::run(model, mode, memory, stop.flag(), scoring.batch_size, scoring.max_line_bytes, &mut out)?;
    tracing::info!(
        "{} lines read, {} scored, {} anomalous, {} passed on unscored",
        stats.lines,
        stats.scored,
        stats.anomalies,
        stats.unscored
    );
    Ok(ExitCode::SUCCESS)
}

fn export(what: ExportCommand) -> Result<ExitCode> {
    match what {
        ExportCommand::FluentBit { output, aot, wamrc } => {
            export::write(&output, export::FLUENT_BIT_MODULE)?;
            logarithm::say!("wrote the Fluent Bit filter module to {}", output.display());
            if let Some(aot) = aot {
                export::compile_aot(&wamrc, &output, &aot)?;
                logarithm::say!("wrote its ahead-of-time compiled variant to {}", aot.display());
            }
        }
        ExportCommand::Component { output } => {
            export::write(&output, logarithm::engine::EMBEDDED_COMPONENT)?;
            logarithm::say!("wrote the detector component to {}", output.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn info(common: CommonArgs) -> Result<ExitCode> {
    let (_, data_dir) = common.shared.setup()?;
    let mut detector = load_detector(&common, &data_dir)?;
    let i = detector.info()?;
    logarithm::out!("version:          {}", i.version);
    logarithm::out!("trained at:       {}", i.trained_at);
    logarithm::out!("training lines:   {}", i.training_lines);
    logarithm::out!("vocabulary size:  {}", i.vocabulary_size);
    logarithm::out!("threshold:        {}", i.threshold);
    logarithm::out!("key fingerprint:  {}", i.key_fingerprint);
    logarithm::out!("format version:   {}", i.format_version);
    logarithm::out!("bursts:           {}", i.bursts);
    Ok(ExitCode::SUCCESS)
}

fn monitor(args: MonitorArgs) -> Result<ExitCode> {
    let (config, data_dir) = args.common.shared.setup()?;
    args.common.shared.key_not_from_stdin(args.stdin)?;
    let config_path = config.path.clone();
    let config_file = config.clone();
    let file = &config.settings;
    // Validate every setting before any work starts; flags (and their
    // environment variables) > config file > defaults.
    let scoring = args.scoring.resolve(file)?;
    let threshold = scoring.threshold;
    let format = match (args.format, &file.format) {
        (Some(f), _) => f,
        (None, Some(f)) => <Format as clap::ValueEnum>::from_str(f, true).map_err(anyhow::Error::msg)?,
        (None, None) => Format::Human,
    };
    let filter = match args.filter.as_deref() {
        Some(pattern) => Some(regex::Regex::new(pattern).map_err(|e| {
            // The regex error is a multi-line diagram; its last line is the reason.
            let reason = e.to_string().lines().last().unwrap_or_default().trim_start_matches("error: ").to_owned();
            anyhow::anyhow!("invalid -F/--filter regular expression {pattern:?}: {reason}")
        })?),
        None => None,
    };
    let since_us = args
        .since
        .as_deref()
        .map(|s| logarithm::cli::parse_since(s, chrono::Local::now()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("-s/--since: {e}"))?;
    let mut sources: Vec<SourceSpec> = args.paths.iter().cloned().map(SourceSpec::Path).collect();
    if args.journald || args.journal_dir.is_some() {
        sources.push(SourceSpec::Journal(args.journal_dir.clone()));
    }
    if args.stdin {
        sources.push(SourceSpec::Stdin);
    }
    if sources.is_empty() {
        sources = sources::default_sources().map_err(anyhow::Error::msg)?;
    }
    let follow = !args.once;
    if follow {
        sources::check_followable(&sources).map_err(anyhow::Error::msg)?;
        // No model, said as such (a data directory that is not there gave
        // "cannot open the lock file DIR/checkpoints.json.lock").
        data_dir.current_model_version()?;
        // A follower writes checkpoints and the audit log there.
        data_dir.check_writer()?;
    }
    let use_checkpoints = follow && !args.no_checkpoint;
    let checkpoint_file = use_checkpoints.then(|| Checkpoints::path_in(data_dir.root()));
    // Held while this monitor runs: a second one on the data directory would overwrite its checkpoints.
    let _checkpoint_lock = checkpoint_file.as_deref().map(Checkpoints::lock).transpose()?;
    let checkpoints = match &checkpoint_file {
        Some(path) => Checkpoints::load(path)?,
        None => Checkpoints::default(),
    };
    let mut config = MonitorConfig {
        sources,
        read: ReadOptions {
            follow,
            from_head: args.from_head,
            max_line_bytes: scoring.max_line_bytes,
            recursive: args.recursive,
            since_us,
            checkpoints: Arc::new(checkpoints),
            opened_at_end: follow.then(Default::default),
        },
        filter,
        all: args.all,
        batch_size: scoring.batch_size,
        checkpoint_file,
        reload: None,
        memory_file: use_checkpoints.then(|| monitor::memory_path_in(data_dir.root())),
    };

    let (mut detector, version, passphrase) = load_current(&args.common, &data_dir)?;
    if let Some(addr) = args.metrics_listen {
        let metrics = logarithm::metrics::install();
        metrics.model_version(version);
        logarithm::metrics::serve(addr, metrics)?;
    }
    if let Some(t) = threshold {
        detector.set_threshold(t)?;
    }
    // Only anomalies are printed with their terms unless --all.
    detector.set_explain(args.all)?;
    detector.set_threads(scoring.threads);
    // A follower loads newly installed models (checked every 2 s, or at
    // SIGHUP), between batches.
    if follow {
        let now = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, now.clone()).context("cannot install signal handlers")?;
        let live_config = args.scoring.threshold.is_none().then(|| config_file.clone()).filter(|c| c.path.is_some());
        config.reload = Some(monitor::Reload::new(data_dir.clone(), passphrase, threshold, version, now, live_config));
    }
    let threshold = detector.info()?.threshold;

    // SIGINT, SIGTERM: a follower stops, a scan is cut short; a second one
    // ends either at once (a blocked stdout cannot hold it).
    let stop = logarithm::signals::Stop::install(&[signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])?;
    // Audit log (issue 13): a follower's life, its models and breakers.
    let audit_log = follow.then(|| logarithm::audit::AuditLog::new(&data_dir));
    if let Some(log) = &audit_log {
        let newest = data_dir.versions()?.last().copied().unwrap_or(version);
        log.check_start(version, newest)?;
        logarithm::audit::set_global(log.clone());
        log.monitor_started(&config.sources.iter().map(SourceSpec::name).collect::<Vec<_>>(), threshold, version, config_path.as_deref());
    }
    let mut printer = Printer::new(format, BufWriter::new(logarithm::output::Stdout(io::stdout().lock())));
    let alerts = args.alert.map(|kind| logarithm::alert::start(kind, args.alert_socket.clone()));
    let result = monitor::run(&mut detector, threshold, &config, &mut printer, stop.flag());
    if let Some(sink) = alerts {
        sink.finish();
    }
    if let Some(log) = &audit_log {
        let details = match &result {
            Ok(stats) => serde_json::json!({ "lines": stats.lines, "scored": stats.scored, "anomalies": stats.anomalies }),
            Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
        };
        log.record("monitor_stopped", details);
    }
    let stats = match result.and_then(|stats| printer.flush().map(|()| stats)) {
        Ok(stats) => stats,
        // Ctrl-C on `logarithm monitor | grep` stops both: the last flush
        // finds grep gone, and that is the stop asked for.
        Err(e) if follow && stop.is_set() && logarithm::logging::is_broken_pipe(&e) => return Ok(ExitCode::SUCCESS),
        // A follower whose output is gone has nowhere left to write: a
        // failure (Restart=on-failure), not the quiet end of `| head`.
        Err(e) if follow && logarithm::logging::is_broken_pipe(&e) => {
            tracing::error!("{}; stopping: the output of a follower was closed", logging::one_line(&e));
            return Ok(ExitCode::FAILURE);
        }
        // A scan stopped in the middle of a call into the detector.
        Err(e) if args.once && stop.is_set() => {
            return Err(anyhow::Error::new(stop.interrupted(format!("{}; the rest was not read", logging::one_line(&e)))));
        }
        Err(e) => return Err(e),
    };
    tracing::info!(
        "{} lines read, {} filtered out, {} scored, {} anomalous ({} alerts, the rest counted against them; {} repeat summaries), {} bursts",
        stats.lines,
        stats.filtered,
        stats.scored,
        stats.anomalies,
        stats.alerts,
        stats.repeats,
        stats.bursts
    );
    if args.once {
        // Say what a batch scan read, as the trainer does; above all when
        // it read nothing, or was cut short.
        let names: Vec<String> = config.sources.iter().map(SourceSpec::name).collect();
        let read = format!(
            "read {} lines from {}: {} scored, {} anomalous ({} alerts, {} repeat summaries), {} bursts",
            stats.lines,
            logarithm::output::printable(&names.join(", ")),
            stats.scored,
            stats.anomalies,
            stats.alerts,
            stats.repeats,
            stats.bursts
        );
        if stop.is_set() {
            return Err(stop.interrupted(format!("{read}; the rest was not read")).into());
        }
        if stats.lines == 0 && stats.problems.is_empty() {
            tracing::warn!("nothing to read in {}", names.join(", "));
        } else {
            logarithm::say!("{read}");
        }
    }
    // A batch scan that could not read a source failed. A follower keeps
    // retrying missing paths and stops when asked; if it stopped because
    // every source ended and one of them failed, it failed too, so that
    // systemd's Restart=on-failure brings it back.
    let asked_to_stop = stop.is_set();
    if !stats.problems.is_empty() && (args.once || !asked_to_stop) {
        if !args.once {
            tracing::error!("every source has ended, {} of them with an error; stopping", stats.problems.len());
        }
        return Ok(ExitCode::FAILURE);
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
