//! The training job behind `logarithm-trainer train`: read the sources into
//! the on-disk corpus ([`crate::corpus`]), fit a model, from scratch or
//! from the current one ([`crate::fit`]), seal and install it as the next
//! version ([`crate::export`]), audit it, and say what was learned.
//!
//! The binary only turns flags, the configuration file and defaults into a
//! [`Job`] and holds the data directory's lock; everything a training run
//! does happens in [`run`], so the audit log, the lock and other front ends
//! have one place to hook in.

use anyhow::{Result, bail};
use logarithm::audit::AuditLog;
use logarithm::datadir::{DataDir, KeyOrigin};
use logarithm::signals::Stop;
use logarithm::sources::{self, SourceSpec};
use logarithm_detector::{Detector, ModelMeta};
use serde_json::json;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::corpus::{self, CorpusBuilder};
use crate::progress::Progress;
use crate::{export, fit};

/// How training starts from the current model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RetrainMode {
    /// Continue from the current model's weights and vocabulary.
    Incremental,
    /// Start fresh.
    Full,
    /// Continue from the current weights, growing the vocabulary with new terms.
    Hybrid,
}

impl RetrainMode {
    /// The name flags and the audit log use (`incremental`, `full`, `hybrid`).
    fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// Fewer training lines than this get a warning: the model knows too little
/// of the host, and its scores have few steps.
pub const MIN_LINES: u64 = 1000;

/// Below this many lines a calibration cannot reach the default threshold
/// (the score beyond the most unusual training line starts at N/(N+1)):
/// a first model is installed with a warning, a retrain is not installed.
pub const MIN_RETRAIN_LINES: u64 = 500;

/// One training run, its settings resolved (flags and their environment
/// variables, then the configuration file, then defaults).
#[derive(Debug)]
pub struct Job {
    /// The fit's parameters, already [`fit::FitParams::check`]ed.
    pub params: fit::FitParams,
    /// How to start from the current model.
    pub mode: RetrainMode,
    /// Add the new logs' frequent terms to the current vocabulary.
    pub expand_vocab: bool,
    /// Whether this run asked for a vocabulary size (`-V` or
    /// `LOGARITHM_VOCAB_SIZE`): a retrain that keeps the current vocabulary
    /// says it is not used. Not the config file's, a standing setting for
    /// full retrains, which would warn on every nightly incremental one.
    pub vocab_size_given: bool,
    /// What to read.
    pub sources: Vec<SourceSpec>,
    /// How far back the journal (and the default sources) are read.
    pub window: Duration,
    /// How far back lines of files are kept, by their own timestamps;
    /// `None` reads files named on the command line whole.
    pub files_window: Option<Duration>,
    /// Read the files under directories given as paths, recursively.
    pub recursive: bool,
    /// Longest line kept, bytes; longer lines are cut.
    pub max_line_bytes: usize,
    /// The passphrase given (`-K`, a key file, a credential), if any; else
    /// the data directory's generated key.
    pub key: Option<(String, KeyOrigin)>,
    /// The key fingerprint the key must have (`-P`), if given.
    pub expected_fingerprint: Option<String>,
    /// The configuration file used, for the audit log.
    pub config_path: Option<PathBuf>,
}

/// Trains a model as `job` says and installs it as the next version of
/// `data_dir`, audited; prints a summary to stderr. The caller holds the
/// data directory's `lock` ([`DataDir::lock`]) throughout: one trainer at a
/// time per data directory (models, versions, scratch files). Ctrl-C or
/// SIGTERM stops it, cleans the scratch files and installs nothing.
pub fn run(data_dir: &DataDir, _lock: &File, job: Job) -> Result<()> {
    let Job {
        params,
        mode,
        expand_vocab,
        vocab_size_given,
        sources: specs,
        window,
        files_window,
        recursive,
        max_line_bytes,
        key,
        expected_fingerprint,
        config_path,
    } = job;
    let (passphrase, origin) = data_dir.checked_passphrase(key, true, expected_fingerprint.as_deref())?;
    let fingerprint = data_dir.fingerprint(&passphrase, true)?;

    // The model to continue from, if the mode wants one and there is one.
    let current = match mode {
        RetrainMode::Full if !expand_vocab => None,
        _ => {
            match data_dir.current_version()? {
                None => {
                    tracing::info!("no current model: training from scratch");
                    None
                }
                Some(_) => {
                    let (version, path, bytes) = data_dir.read_current_model()?;
                    let detector = Detector::load(&bytes, &passphrase).map_err(|e| {
                    // A wrong key is a typo more often than a new key: starting
                    // over would seal the new model with it, and the monitor,
                    // which has the right one, could not load it.
                    let hint = match e {
                        logarithm_detector::Error::WrongKey { .. } => {
                            format!("tried {origin}; check the key: --retrain-mode full would start over and seal the new model with this one")
                        }
                        _ => "use --retrain-mode full to start over".to_owned(),
                    };
                    anyhow::anyhow!("cannot load the current model {} to continue from it: {e} ({hint})", path.display())
                })?;
                    Some((version, detector))
                }
            }
        }
    };
    let base = current.as_ref().map(|(_, d)| d.model());
    let expand = expand_vocab || mode == RetrainMode::Hybrid;
    if let Some((v, detector)) = current.as_ref().filter(|_| vocab_size_given && !expand) {
        tracing::warn!(
            "-V/--vocab-size {} is not used: an incremental retrain keeps version {v}'s vocabulary of {} terms (-e adds up to that many new terms to it, --retrain-mode full starts a new one)",
            params.vocab_size,
            detector.model().vocab.len()
        );
    }
    let tokenizer = base.map_or(logarithm_detector::tokenizer::Tokenizer { mask: params.mask }, |m| m.tokenizer);

    // Ctrl-C, SIGTERM, a hangup (an ssh session that drops): stop, clean
    // the scratch files, install nothing, exit 128 + the signal.
    let signals = Stop::install(&[signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP])?;
    let interrupted = signals.flag().clone();
    let nothing_installed = || anyhow::Error::new(signals.interrupted("nothing was installed"));
    let started = Instant::now();
    let scratch = corpus::scratch_dir(data_dir.root()).map_err(anyhow::Error::msg)?;
    let progress = Progress::stderr().interruptible(interrupted.clone());

    // Pass 1: read, tokenize, count, spill.
    let cutoff =
        |window: Duration| (chrono::Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::TimeDelta::MAX)).timestamp_micros();
    let file_cutoff = files_window.map(cutoff);
    let options = sources::ReadOptions { max_line_bytes, recursive, since_us: Some(cutoff(window)), ..sources::ReadOptions::default() };
    let (tx, rx) = sources::channel(4096);
    let stop = Arc::new(AtomicBool::new(false));
    let handles = sources::spawn(&specs, &options, &tx, &stop);
    drop(tx);
    let mut builder = CorpusBuilder::new(tokenizer, scratch.path(), params.vocab_size);
    let (mut read, mut too_old) = (0u64, 0u64);
    progress.stage("reading", None);
    // Waited on a while at a time: a reader may block with nothing to hand
    // over (stdin, a pipe with no writer yet), and Ctrl-C must still stop.
    loop {
        let chunk = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(chunk) => chunk,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) if interrupted.load(Ordering::Relaxed) => return Err(nothing_installed()),
            Err(RecvTimeoutError::Timeout) => continue,
        };
        for line in chunk {
            if interrupted.load(Ordering::Relaxed) {
                return Err(nothing_installed());
            }
            read += 1;
            if let (Some(cut), Some(ts)) = (file_cutoff, line.record.timestamp_us)
                && ts < cut
            {
                too_old += 1;
                continue;
            }
            builder.push(line.record).map_err(anyhow::Error::msg)?;
            if read.is_multiple_of(4096) {
                progress.set(read);
            }
        }
    }
    let mut problems = Vec::new();
    for (name, handle) in handles {
        match handle.join() {
            Ok(Ok(p)) => problems.extend(p),
            Ok(Err(e)) => problems.push(e),
            Err(_) => problems.push(format!("the reader of {name} crashed")),
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    let terms = builder.finish().map_err(anyhow::Error::msg)?;
    if terms.lines == 0 {
        bail!(
            "no log lines to learn from in {} ({read} read, none in the time window)",
            specs.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
        );
    }
    // Blank lines only (or punctuation, or binary bytes): a model of
    // nothing would score every real line as normal, so it is not installed.
    if terms.df.keys().all(|t| t == logarithm_detector::tokenizer::BINARY) {
        bail!(
            "no words to learn from in {}: the {} lines read are blank, punctuation or binary bytes only",
            specs.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "),
            terms.lines
        );
    }
    // A retrain on a quiet window (a nightly run on a quiet host) would
    // replace a working model with one that can hardly flag anything. Only
    // a working one: a model this build or this key cannot load (after an
    // upgrade of the model format, say) is replaced whatever the count.
    if terms.lines < MIN_RETRAIN_LINES {
        let working = match &current {
            Some((v, _)) => Some(*v),
            None => data_dir.read_current_model().ok().filter(|(_, _, bytes)| Detector::load(bytes, &passphrase).is_ok()).map(|(v, ..)| v),
        };
        if let Some(v) = working {
            tracing::warn!(
                "not retrained: only {} lines to learn from in {}, fewer than {MIN_RETRAIN_LINES}, and a model calibrated on so few can hardly flag anything; version {v} stays current (train on a longer window)",
                terms.lines,
                specs.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
            );
            let details = json!({ "lines": terms.lines, "min_lines": MIN_RETRAIN_LINES, "current": v, "retrain_mode": mode.name() });
            return AuditLog::new(data_dir).append_done("retrain_skipped", details);
        }
    }
    let reading_time = started.elapsed();

    // Pass 2 and training.
    let vocab = fit::vocabulary(&terms.df, terms.lines, &params, base.map(|m| &m.vocab), expand);
    progress.stage("featurizing", None);
    let corpus = terms.featurize(&vocab).map_err(anyhow::Error::msg)?;
    let init = match mode {
        RetrainMode::Full => None,
        _ => base.map(|m| &m.net),
    };
    let mut parameters = vec![("retrain_mode".to_owned(), mode.name())];
    // The version current when this one was trained, even when it was not
    // a base (a full retrain): `model rollback` returns to it.
    let parent = data_dir.current_version()?;
    if let Some(v) = parent {
        parameters.push(("parent_version".into(), v.to_string()));
    }
    let meta = ModelMeta {
        version: data_dir.next_version()?,
        created_at_unix: chrono::Utc::now().timestamp(),
        key_fingerprint: fingerprint.clone(),
        sources: specs.iter().map(|s| s.name()).collect(),
        ..ModelMeta::default()
    };
    let (mut model, report) = fit::fit_corpus(&corpus, tokenizer, vocab, init, &params, meta, &progress)
        .map_err(|e| if signals.is_set() { nothing_installed() } else { anyhow::anyhow!("training failed: {e}") })?;
    model.meta.parameters.extend(parameters);
    // A retrain that continues a model continues its rates too.
    if let (Some(base), RetrainMode::Incremental | RetrainMode::Hybrid) = (base, mode) {
        model.rates = base.rates.merged(&model.rates);
    }
    progress.finish();
    drop(corpus);
    let path = export::install(data_dir, &model, &passphrase)?;
    drop(scratch);
    let audit = AuditLog::new(data_dir);
    if let Some(config_path) = &config_path {
        audit.append_done("config_used", json!({ "path": config_path, "by": "train" }))?;
    }
    audit.append_done(
        "model_trained",
        json!({
            "version": model.meta.version,
            "sources": model.meta.sources,
            "lines": report.lines,
            "lines_read": read,
            "retrain_mode": mode.name(),
            "parent_version": parent,
            "threshold": report.threshold,
            "key_fingerprint": fingerprint,
        }),
    )?;
    audit.append_done("model_installed", json!({ "version": model.meta.version, "path": path }))?;

    if report.lines < MIN_RETRAIN_LINES {
        tracing::warn!(
            "only {} lines learned, fewer than {MIN_RETRAIN_LINES}: scores can hardly reach the threshold, so even lines unlike any of them may not be flagged; train on more history",
            report.lines
        );
    } else if report.lines < MIN_LINES {
        tracing::warn!(
            "only {} lines learned ({MIN_LINES} or more are recommended): kinds of lines missing from them will be flagged, and scores are coarse (a score is the fraction of training lines less unusual than the line)",
            report.lines
        );
    }
    let total = started.elapsed();
    logarithm::say!("trained model version {} in {:.1?} ({:.0} lines/s)", model.meta.version, total, read as f64 / total.as_secs_f64());
    logarithm::say!("  lines read:      {read} (in {reading_time:.1?})");
    logarithm::say!("  lines learned:   {} ({} distinct)", report.lines, report.distinct);
    if too_old > 0 {
        logarithm::say!("  lines skipped:   {too_old} (older than the time window)");
    }
    match (&current, report.new_terms) {
        (Some((v, _)), n) => logarithm::say!("  vocabulary:      {} terms ({n} new; {} from version {v})", report.vocab, mode.name()),
        (None, _) => logarithm::say!("  vocabulary:      {} terms", report.vocab),
    }
    logarithm::say!("  epochs:          {} (final loss {:.5})", report.epochs, report.final_loss);
    logarithm::say!("  threshold:       {}", report.threshold);
    logarithm::say!("  bursts:          {}", model.rates.describe());
    logarithm::say!("  model:           {}", path.display());
    match origin {
        KeyOrigin::Given => logarithm::say!("  key fingerprint: {fingerprint}"),
        KeyOrigin::KeyFile(key) => logarithm::say!("  key fingerprint: {fingerprint} (key file {})", key.display()),
        KeyOrigin::Credential(key) => logarithm::say!("  key fingerprint: {fingerprint} (systemd credential {})", key.display()),
        KeyOrigin::File(key) => logarithm::say!("  key fingerprint: {fingerprint} (generated key {})", key.display()),
    }
    Ok(())
}
