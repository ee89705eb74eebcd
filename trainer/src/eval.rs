//! The evaluation harness: labelled public logs (Loghub), a chronological
//! split, the real trainer, scoring through the component, and baselines
//! computed on the same split in the same run.
//!
//! Every line goes the way a user's does (issue 12): its file is read by the
//! host's readers and parsed by the core's record mapping, exactly as
//! `logarithm monitor FILE` and `logarithm-trainer train FILE` do, and the
//! model is fitted by the trainer's own code and scored through the
//! component. The only thing a data set says about its format is what a
//! user would have to say too: BGL lines start with a label token, which is
//! taken off before the line is written for the reader.
//!
//! Data is read by path (`LOGHUB_DIR`, default `../shared/data/loghub`) and
//! never copied: its terms are research-only.
//!
//! - BGL: per-line labels (first token `-` is normal, anything else an
//!   alert). BGL_20k is split 60/20/20 by time: defaults are chosen on the
//!   validation part, and the test part is reported.
//! - HDFS: per-block labels; a block scores as its most anomalous line.
//! - Apache, ZooKeeper, Hadoop, Spark, OpenStack, Linux, OpenSSH:
//!   unlabelled; the fraction of the last 40% flagged by a model of the
//!   first 60%, and how many alerts that makes. Loghub's other 2k samples
//!   ([`IF_PRESENT`]) the same way, when the directory has them.

use crate::fit::{self, FitParams};
use logarithm::engine::{ComponentDetector, ComponentSource};
use logarithm::sources::{self, ReadOptions, SourceSpec};
use logarithm_detector::features::{self, features_of, record_terms};
use logarithm_detector::model::{novelty_error, severity_bonus};
use logarithm_detector::modelfile::{self, KdfParams};
use logarithm_detector::tokenizer::Tokenizer;
use logarithm_detector::{Detector, LogRecord, Model, ModelMeta};
use smartcore::decomposition::pca::{PCA, PCAParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// One labelled line.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The record, as the shipped reader and parser make it from the line
    /// (with no trace of its label).
    pub record: LogRecord,
    /// Alert (true) or normal; `None` when unlabelled.
    pub anomalous: Option<bool>,
    /// HDFS block ids on the line.
    pub blocks: Vec<String>,
}

/// A BGL line's label and the line a user's log would hold: `- 1117838570
/// ...` is normal, `KERNDTLB 1117838570 ...` an alert; the label token is
/// taken off.
pub fn split_label(line: &str) -> (bool, &str) {
    let (label, rest) = line.split_once(' ').unwrap_or((line, ""));
    (label != "-", rest)
}

/// The HDFS block ids a message names (`blk_-1608999687919862906`), once each.
pub fn blocks_of(message: &str) -> Vec<String> {
    let mut blocks: Vec<String> =
        message.split(|c: char| c.is_whitespace() || c == ',' || c == '.').filter(|w| w.starts_with("blk_")).map(str::to_owned).collect();
    blocks.sort_unstable();
    blocks.dedup();
    blocks
}

/// Lines as `logarithm monitor FILE` and `logarithm-trainer train FILE`
/// see them: written to a file, read back by the host's file reader
/// (line splitting, lossy decoding, the line cap) and parsed by the core's
/// record mapping. One record per line, in order.
pub fn read_as_a_user_would(lines: &[String]) -> Result<Vec<LogRecord>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let path = dir.path().join("lines.log");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let (tx, rx) = sources::channel(4096);
    let stop = Arc::new(AtomicBool::new(false));
    let handles = sources::spawn(&[SourceSpec::Path(path.display().to_string())], &ReadOptions::default(), &tx, &stop);
    drop(tx);
    let records: Vec<LogRecord> = rx.into_iter().flatten().map(|line| line.record).collect();
    for (name, handle) in handles {
        match handle.join() {
            Ok(Ok(problems)) if problems.is_empty() => {}
            Ok(Ok(problems)) => return Err(format!("reading {name}: {}", problems.join("; "))),
            Ok(Err(e)) => return Err(format!("reading {name}: {e}")),
            Err(_) => return Err(format!("the reader of {name} crashed")),
        }
    }
    if records.len() != lines.len() {
        return Err(format!("{} lines written but {} read back", lines.len(), records.len()));
    }
    Ok(records)
}

/// Reads a data set's lines (CRLF, a missing final newline and stray
/// non-UTF-8 bytes handled).
fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e} (set LOGHUB_DIR)", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.lines().map(|l| l.trim_end_matches('\r').to_owned()).filter(|l| !l.trim().is_empty()).collect())
}

/// A BGL file as labelled records.
fn read_bgl(path: &Path) -> Result<Vec<Labelled>, String> {
    let (labels, lines): (Vec<bool>, Vec<String>) = read_lines(path)?
        .iter()
        .map(|l| {
            let (alert, rest) = split_label(l);
            (alert, rest.to_owned())
        })
        .unzip();
    let records = read_as_a_user_would(&lines)?;
    Ok(records.into_iter().zip(labels).map(|(record, alert)| Labelled { record, anomalous: Some(alert), blocks: Vec::new() }).collect())
}

/// Sorts by the records' time (stable: lines of one time keep their order).
pub fn sort_by_time(lines: &mut [Labelled]) {
    lines.sort_by_key(|l| l.record.timestamp_us.unwrap_or(i64::MIN));
}

/// Sorts by time and splits the first `train_fraction` off.
pub fn chronological_split(mut lines: Vec<Labelled>, train_fraction: f64) -> (Vec<Labelled>, Vec<Labelled>) {
    sort_by_time(&mut lines);
    let cut = (lines.len() as f64 * train_fraction).round() as usize;
    let test = lines.split_off(cut);
    (lines, test)
}

/// Metrics of scores against labels.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// ROC-AUC.
    pub roc_auc: f64,
    /// Area under the precision-recall curve (average precision).
    pub pr_auc: f64,
    /// Precision, recall, F1 at the operating threshold.
    pub precision: f64,
    /// Recall at the operating threshold.
    pub recall: f64,
    /// F1 at the operating threshold.
    pub f1: f64,
    /// Best F1 over all thresholds.
    pub best_f1: f64,
    /// Fraction of normal items flagged at the operating threshold.
    pub fpr: f64,
}

/// Cumulative (true positives, false positives) at each distinct score,
/// from the highest down: one point per possible threshold, ties together.
fn sweep(scores: &[f64], truth: &[bool]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0, 0);
    let mut points = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            if truth[order[i]] {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        points.push((tp, fp));
    }
    points
}

/// Computes the metrics; `threshold` is the operating point (score ≥ it flags).
pub fn metrics(scores: &[f64], truth: &[bool], threshold: f64) -> Metrics {
    let y: Vec<f64> = truth.iter().map(|&t| f64::from(u8::from(t))).collect();
    let flagged: Vec<f64> = scores.iter().map(|&s| f64::from(u8::from(s >= threshold))).collect();
    let positives = truth.iter().filter(|&&t| t).count();
    let negatives = truth.len() - positives;
    if positives == 0 || negatives == 0 {
        return Metrics::default();
    }
    let roc_auc = smartcore::metrics::roc_auc_score(&y, &scores.to_vec());
    let precision = if flagged.iter().any(|&f| f > 0.0) { smartcore::metrics::precision(&y, &flagged) } else { 0.0 };
    let recall = smartcore::metrics::recall(&y, &flagged);
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    let false_alarms = truth.iter().zip(scores).filter(|(t, s)| !**t && **s >= threshold).count();
    // Sweep thresholds from the top: best F1 and average precision.
    let (mut best_f1, mut ap, mut last_recall) = (0.0f64, 0.0f64, 0.0f64);
    for (tp, fp) in sweep(scores, truth) {
        let p = tp as f64 / (tp + fp) as f64;
        let r = tp as f64 / positives as f64;
        if p + r > 0.0 {
            best_f1 = best_f1.max(2.0 * p * r / (p + r));
        }
        ap += (r - last_recall) * p;
        last_recall = r;
    }
    Metrics { roc_auc, pr_auc: ap, precision, recall, f1, best_f1, fpr: false_alarms as f64 / negatives as f64 }
}

/// What the detector made of the lines after training.
struct Detected {
    /// Each line's score.
    scores: Vec<f64>,
    /// How many lines raised an alert (the first anomaly of a kind, or a
    /// worse one): what an operator is paged with.
    alerts: usize,
    /// The bursts raised (a kind logged far faster than in training), with
    /// their text as the monitor prints it: an operator is paged with
    /// these too.
    bursts: Vec<String>,
    /// The model's threshold.
    threshold: f64,
    /// The model.
    model: Model,
}

/// Trains with the real trainer and scores through the component.
fn detector_scores(train: &[LogRecord], test: &[LogRecord], params: &FitParams) -> Result<Detected, String> {
    let (model, _) = fit::fit(train, params, ModelMeta::default())?;
    let file = modelfile::seal(&model.to_payload(), "eval", [3; 16], [4; 12], KdfParams::default()).map_err(|e| e.to_string())?;
    let mut component = ComponentDetector::load(ComponentSource::Embedded, &file, "eval").map_err(|e| e.to_string())?;
    let (mut scores, mut alerts, mut bursts) = (Vec::with_capacity(test.len()), 0, Vec::new());
    for chunk in test.chunks(1024) {
        for v in component.score_batch(chunk).map_err(|e| format!("{e:#}"))? {
            alerts += usize::from(v.reported());
            scores.push(v.score);
            if let Some(b) = &v.burst {
                bursts.push(format!("{} lines like \"{}\" in {} s, usually ≤ {}", b.count, b.template, b.window_secs, b.usual));
            }
        }
    }
    Ok(Detected { scores, alerts, bursts, threshold: model.threshold, model })
}

/// The severity prior the detector gives a record (its own level, else one
/// read from its words): what every baseline gets too, so that the
/// comparison is about what each adds to it.
fn prior(tokenizer: &Tokenizer, record: &LogRecord) -> f64 {
    let mut terms = Vec::new();
    record_terms(tokenizer, record, &mut terms);
    severity_bonus(features::severity(record.priority, &terms).map(|s| s.level))
}

/// Baseline (level only): the score is the severity prior alone.
fn level_scores(records: &[LogRecord]) -> Vec<f64> {
    let tokenizer = Tokenizer::default();
    records.iter().map(|r| prior(&tokenizer, r)).collect()
}

/// Baseline (new template): 1 when a line's masked token sequence (with its
/// source) never occurred in training, else 0; plus the severity prior.
fn new_template_scores(train: &[LogRecord], test: &[LogRecord]) -> Vec<f64> {
    let tokenizer = Tokenizer::default();
    new_templates(train, test).into_iter().zip(test).map(|(new, r)| f64::from(u8::from(new)) + prior(&tokenizer, r)).collect()
}

/// For each test line: is its template (source and masked tokens) absent
/// from training?
fn new_templates(train: &[LogRecord], test: &[LogRecord]) -> Vec<bool> {
    let tokenizer = Tokenizer::default();
    let seen: HashSet<String> = train.iter().map(|r| template(&tokenizer, r)).collect();
    test.iter().map(|r| !seen.contains(&template(&tokenizer, r))).collect()
}

/// A line's template: its source and masked tokens.
fn template(tokenizer: &Tokenizer, r: &LogRecord) -> String {
    let mut terms = Vec::new();
    tokenizer.tokenize(&r.message, &mut terms);
    format!("{}\u{1}{}", r.source, terms.join(" "))
}

/// Per line, what PCA does not see: (squared weight outside the kept
/// dimensions, unseen share, severity prior).
type Outside = (f64, f32, f64);

/// Baseline (TF-IDF + PCA): PCA reconstruction error on the detector's own
/// TF-IDF features (its vocabulary, at most the 400 most frequent terms;
/// unseen terms count as in the detector, [`novelty_error`]),
/// `n_components` principal components, plus the severity prior.
fn pca_scores(model: &Model, train: &[LogRecord], tests: &[&[LogRecord]], n_components: usize) -> Result<Vec<Vec<f64>>, String> {
    let dims = model.vocab.len().min(400);
    // Per line: the dense known part, and (weight outside the kept
    // dimensions, unseen share, prior), combined like the detector's raw error.
    let dense = |records: &[LogRecord]| -> (Vec<Vec<f64>>, Vec<Outside>) {
        let mut rows = Vec::with_capacity(records.len());
        let mut outside = Vec::with_capacity(records.len());
        for r in records {
            let f = features_of(&model.tokenizer, &model.vocab, r);
            let mut row = vec![0.0; dims];
            let mut rest = 0.0;
            for &(i, w) in &f.known {
                if (i as usize) < dims {
                    row[i as usize] = f64::from(w);
                } else {
                    rest += f64::from(w * w);
                }
            }
            rows.push(row);
            outside.push((rest, f.unseen_share(), prior(&model.tokenizer, r)));
        }
        (rows, outside)
    };
    let (train_rows, _) = dense(train);
    let mean: Vec<f64> = (0..dims).map(|j| train_rows.iter().map(|r| r[j]).sum::<f64>() / train_rows.len() as f64).collect();
    let x = DenseMatrix::from_2d_vec(&train_rows).map_err(|e| e.to_string())?;
    let k = n_components.min(dims);
    let pca = PCA::fit(&x, PCAParameters::default().with_n_components(k)).map_err(|e| e.to_string())?;
    use smartcore::linalg::basic::arrays::Array;
    tests
        .iter()
        .map(|test| {
            let (test_rows, outside) = dense(test);
            let t = DenseMatrix::from_2d_vec(&test_rows).map_err(|e| e.to_string())?;
            let projected = pca.transform(&t).map_err(|e| e.to_string())?;
            Ok(test_rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let centred: f64 = row.iter().zip(&mean).map(|(x, m)| (x - m) * (x - m)).sum();
                    let kept: f64 = (0..k).map(|c| projected.get((i, c)).powi(2)).sum();
                    let (rest, unseen_share, prior) = outside[i];
                    novelty_error((centred - kept).max(0.0) + rest, unseen_share) + prior
                })
                .collect())
        })
        .collect()
}

/// Baseline (autoencoder, no masking): the same autoencoder with the
/// tokenizer's masking switched off (scored natively: the component gives
/// the same bits, which a test checks).
fn unmasked_scores(train: &[LogRecord], tests: &[&[LogRecord]], params: &FitParams) -> Result<Vec<Vec<f64>>, String> {
    let params = FitParams { mask: false, ..params.clone() };
    let (model, _) = fit::fit(train, &params, ModelMeta::default())?;
    let detector = Detector::new(model);
    Ok(tests.iter().map(|test| test.iter().map(|r| detector.score(r).score).collect()).collect())
}

/// One row of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Data set (and part: validation or test).
    pub dataset: String,
    /// `unsupervised` or `clean`.
    pub setting: String,
    /// Which scorer.
    pub method: String,
    /// Its metrics.
    pub metrics: Metrics,
}

/// Scores for the figure: (method, scores, truth) of BGL_20k unsupervised.
pub type Curves = Vec<(String, Vec<f64>, Vec<bool>)>;

/// The methods, in table order.
pub const METHODS: [&str; 5] = ["logarithm", "level only", "new template", "TF-IDF + PCA", "autoencoder, no masking"];

/// One method's scores on each part, and its operating threshold.
type MethodScores = (Vec<Vec<f64>>, f64);

/// Every method's scores on each of `parts`, and its operating threshold:
/// the model's for the detector and the unmasked autoencoder (calibrated
/// the same way), and for the uncalibrated baselines the score above which
/// the same fraction of training lines lies.
fn all_scores(train: &[LogRecord], parts: &[&[LogRecord]], params: &FitParams) -> Result<Vec<MethodScores>, String> {
    let mut all: Vec<LogRecord> = Vec::new();
    for part in parts {
        all.extend_from_slice(part);
    }
    let Detected { scores, threshold, model, .. } = detector_scores(train, &all, params)?;
    let split = |scores: Vec<f64>| -> Vec<Vec<f64>> {
        let mut out = Vec::new();
        let mut at = 0;
        for part in parts {
            out.push(scores[at..at + part.len()].to_vec());
            at += part.len();
        }
        out
    };
    let same_rate = |train_scores: &[f64]| quantile(train_scores, threshold);
    let mut pca_all: Vec<&[LogRecord]> = vec![train];
    pca_all.extend_from_slice(parts);
    let mut pca = pca_scores(&model, train, &pca_all, 16)?;
    let pca_train = pca.remove(0);
    Ok(vec![
        (split(scores), threshold),
        (parts.iter().map(|p| level_scores(p)).collect(), same_rate(&level_scores(train))),
        (parts.iter().map(|p| new_template_scores(train, p)).collect(), same_rate(&new_template_scores(train, train))),
        (pca, same_rate(&pca_train)),
        (unmasked_scores(train, parts, params)?, threshold),
    ])
}

/// The lines a setting trains on: every line (*unsupervised*), or the
/// normal ones (*clean*).
fn training_records(train: &[Labelled], setting: &str) -> Vec<LogRecord> {
    train.iter().filter(|l| setting == "unsupervised" || l.anomalous == Some(false)).map(|l| l.record.clone()).collect()
}

/// BGL_20k sorted by time, and where its validation and test parts start
/// (60/20/20).
fn bgl20k(loghub: &Path) -> Result<(Vec<Labelled>, usize, usize), String> {
    let mut lines = read_bgl(&loghub.join("BGL/BGL_20k.log"))?;
    sort_by_time(&mut lines);
    let (a, b) = ((lines.len() as f64 * 0.6).round() as usize, (lines.len() as f64 * 0.8).round() as usize);
    Ok((lines, a, b))
}

/// Evaluates one line-labelled data set in one setting on each of `parts`
/// (named), all methods.
fn evaluate_lines(
    name: &str,
    setting: &str,
    train: &[Labelled],
    parts: &[(&str, &[Labelled])],
    params: &FitParams,
    rows: &mut Vec<Row>,
    curves: &mut Curves,
) -> Result<(), String> {
    let train = training_records(train, setting);
    let records: Vec<Vec<LogRecord>> = parts.iter().map(|(_, p)| p.iter().map(|l| l.record.clone()).collect()).collect();
    let slices: Vec<&[LogRecord]> = records.iter().map(Vec::as_slice).collect();
    let methods = all_scores(&train, &slices, params)?;
    for (k, (part_name, part)) in parts.iter().enumerate() {
        let truth: Vec<bool> = part.iter().map(|l| l.anomalous == Some(true)).collect();
        let dataset = if part_name.is_empty() { name.to_owned() } else { format!("{name} {part_name}") };
        for (method, (scores, threshold)) in METHODS.iter().zip(&methods) {
            rows.push(Row {
                dataset: dataset.clone(),
                setting: setting.into(),
                method: (*method).into(),
                metrics: metrics(&scores[k], &truth, *threshold),
            });
            if name == "BGL_20k" && *part_name == "test" && setting == "unsupervised" {
                curves.push(((*method).into(), scores[k].clone(), truth.clone()));
            }
            // How the default threshold was judged: the detector on the
            // validation part at thresholds around it (`-L info`).
            if *part_name == "validation" && *method == "logarithm" {
                let at = |t: f64| {
                    let m = metrics(&scores[k], &truth, t);
                    format!("{t}: F1 {:.3}, FPR {:.4}", m.f1, m.fpr)
                };
                let sweep: Vec<String> = [0.99, 0.995, 0.996, 0.998, 0.999, 0.9995].into_iter().map(at).collect();
                tracing::info!("{name} validation, {setting}, by threshold: {}", sweep.join("; "));
            }
        }
    }
    Ok(())
}

/// Evaluates HDFS at block level in one setting: a block scores as its most
/// anomalous test line, for every method.
fn evaluate_blocks(
    name: &str,
    setting: &str,
    train: &[Labelled],
    test: &[Labelled],
    labels: &HashMap<String, bool>,
    params: &FitParams,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    let train = training_records(train, setting);
    let test_records: Vec<LogRecord> = test.iter().map(|l| l.record.clone()).collect();
    for (method, (scores, threshold)) in METHODS.iter().zip(all_scores(&train, &[&test_records], params)?) {
        let mut blocks: BTreeMap<&str, f64> = BTreeMap::new();
        for (l, s) in test.iter().zip(&scores[0]) {
            for b in &l.blocks {
                let e = blocks.entry(b.as_str()).or_insert(f64::MIN);
                *e = e.max(*s);
            }
        }
        let truth: Vec<bool> = blocks.keys().map(|b| labels.get(*b) == Some(&true)).collect();
        let block_scores: Vec<f64> = blocks.values().copied().collect();
        rows.push(Row {
            dataset: format!("{name} (blocks)"),
            setting: setting.into(),
            method: (*method).into(),
            metrics: metrics(&block_scores, &truth, threshold),
        });
    }
    Ok(())
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0)
}

/// What the detector flags in the last 40% of an unlabelled set.
#[derive(Debug, Clone)]
pub struct Flagged {
    /// The data set.
    pub name: String,
    /// Lines after training.
    pub lines: usize,
    /// The fraction of them the detector flags.
    pub rate: f64,
    /// How many of them raised an alert (the first of a kind).
    pub alerts: usize,
    /// The bursts raised, as the monitor prints them.
    pub bursts: Vec<String>,
    /// The fraction of them whose template is new.
    pub novel: f64,
    /// The flagged records with their scores.
    pub records: Vec<(f64, LogRecord)>,
}

/// The unlabelled sets: (name, path under the Loghub directory).
pub const UNLABELLED: [(&str, &str); 7] = [
    ("Apache_2k", "Apache/Apache_2k.log"),
    ("Zookeeper_2k", "Zookeeper/Zookeeper_2k.log"),
    ("Hadoop_2k", "Hadoop/Hadoop_2k.log"),
    ("Spark_2k", "Spark/Spark_2k.log"),
    ("OpenStack_2k", "OpenStack/OpenStack_2k.log"),
    ("Linux_2k", "Linux/Linux_2k.log"),
    ("OpenSSH_2k", "OpenSSH/OpenSSH_2k.log"),
];

/// Loghub's other 2k samples, which `shared/` does not hold (the full
/// collection is at github.com/logpai/loghub): evaluated like the sets above
/// when they are in the Loghub directory, skipped when not. They are the
/// check that the defaults hold on systems nobody tuned for. (name, path,
/// whether each line starts with a label token, as Thunderbird's do.)
pub const IF_PRESENT: [(&str, &str, bool); 7] = [
    ("Android_2k", "Android/Android_2k.log", false),
    ("HPC_2k", "HPC/HPC_2k.log", false),
    ("HealthApp_2k", "HealthApp/HealthApp_2k.log", false),
    ("Mac_2k", "Mac/Mac_2k.log", false),
    ("Proxifier_2k", "Proxifier/Proxifier_2k.log", false),
    ("Thunderbird_2k", "Thunderbird/Thunderbird_2k.log", true),
    ("Windows_2k", "Windows/Windows_2k.log", false),
];

/// What the detector flags in the last 40% of an unlabelled set, trained on
/// the first 60% (in file order: some sets' timestamps have no year). A
/// label token first on each line is taken off, as for BGL.
pub fn unlabelled(name: &str, path: &Path, labelled: bool, params: &FitParams) -> Result<Flagged, String> {
    let mut lines = read_lines(path)?;
    if labelled {
        lines = lines.iter().map(|l| split_label(l).1.to_owned()).collect();
    }
    let records = read_as_a_user_would(&lines)?;
    let cut = (records.len() as f64 * 0.6).round() as usize;
    let (train, test) = records.split_at(cut);
    let Detected { scores, alerts, bursts, threshold, .. } = detector_scores(train, test, params)?;
    let rate = |flags: usize| flags as f64 / test.len().max(1) as f64;
    let novel = new_templates(train, test).into_iter().filter(|&new| new).count();
    let records: Vec<(f64, LogRecord)> = scores.iter().zip(test).filter(|(s, _)| **s >= threshold).map(|(s, r)| (*s, r.clone())).collect();
    Ok(Flagged { name: name.to_owned(), lines: test.len(), rate: rate(records.len()), alerts, bursts, novel: rate(novel), records })
}

/// Runs the whole evaluation and returns the table rows, the unlabelled
/// sets' flag rates, and the BGL_20k curves.
pub fn run(loghub: &Path, params: &FitParams) -> Result<(Vec<Row>, Vec<Flagged>, Curves), String> {
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    // BGL_20k: 60% train, 20% validation (where defaults are chosen), 20% test.
    let (lines, a, b) = bgl20k(loghub)?;
    for setting in ["unsupervised", "clean"] {
        let parts = [("validation", &lines[a..b]), ("test", &lines[b..])];
        evaluate_lines("BGL_20k", setting, &lines[..a], &parts, params, &mut rows, &mut curves)?;
    }
    let (train, test) = chronological_split(read_bgl(&loghub.join("BGL/BGL_2k.log"))?, 0.6);
    for setting in ["unsupervised", "clean"] {
        evaluate_lines("BGL_2k", setting, &train, &[("", &test)], params, &mut rows, &mut curves)?;
    }
    for name in ["HDFS_5k", "HDFS_2k"] {
        let dir = loghub.join("HDFS");
        let labels: HashMap<String, bool> = read_lines(&dir.join(format!("{name}.block_labels.csv")))?
            .iter()
            .skip(1)
            .filter_map(|l| l.split_once(',').map(|(b, lab)| (b.to_owned(), lab == "Anomaly")))
            .collect();
        let lines: Vec<Labelled> = read_as_a_user_would(&read_lines(&dir.join(format!("{name}.log")))?)?
            .into_iter()
            .map(|record| {
                let blocks = blocks_of(&record.message);
                let anomalous = Some(blocks.iter().any(|b| labels.get(b) == Some(&true)));
                Labelled { record, anomalous, blocks }
            })
            .collect();
        let (train, test) = chronological_split(lines, 0.6);
        for setting in ["unsupervised", "clean"] {
            evaluate_blocks(name, setting, &train, &test, &labels, params, &mut rows)?;
        }
    }
    let mut flagged = Vec::new();
    let present = IF_PRESENT.into_iter().filter(|(_, path, _)| loghub.join(path).is_file());
    for (name, path, labelled) in UNLABELLED.into_iter().map(|(name, path)| (name, path, false)).chain(present) {
        let set = unlabelled(name, &loghub.join(path), labelled, params)?;
        // What was flagged, for whoever reads the table (`-L info`).
        for (score, r) in &set.records {
            tracing::info!("{name}: flagged {score:.5} [{}] {}", r.source, r.message);
        }
        for burst in &set.bursts {
            tracing::info!("{name}: burst: {burst}");
        }
        flagged.push(set);
    }
    Ok((rows, flagged, curves))
}

/// The detector's figures on BGL_20k's validation and test parts for one
/// training seed.
#[derive(Debug, Clone)]
pub struct SeedRow {
    /// The training seed.
    pub seed: u64,
    /// `unsupervised` or `clean`.
    pub setting: String,
    /// `validation` or `test`.
    pub part: String,
    /// The detector's metrics.
    pub metrics: Metrics,
}

/// The seeds of the spread: the default's first, then 1, 2, ...
pub fn spread_seeds(n: usize, default: u64) -> Vec<u64> {
    std::iter::once(default).chain((1..).filter(|&s| s != default)).take(n).collect()
}

/// How much the detector's figures on BGL_20k depend on the training seed
/// alone: the same split and settings as [`run`], trained once per seed.
/// A default chosen on the validation part should hold across seeds, not
/// only for the one the table shows.
pub fn seed_spread(loghub: &Path, params: &FitParams, seeds: &[u64]) -> Result<Vec<SeedRow>, String> {
    let (lines, a, b) = bgl20k(loghub)?;
    let parts = [("validation", &lines[a..b]), ("test", &lines[b..])];
    let records: Vec<LogRecord> = lines[a..].iter().map(|l| l.record.clone()).collect();
    let mut rows = Vec::new();
    for setting in ["unsupervised", "clean"] {
        let train = training_records(&lines[..a], setting);
        for &seed in seeds {
            let Detected { scores, threshold, .. } = detector_scores(&train, &records, &FitParams { seed, ..params.clone() })?;
            let mut at = 0;
            for (part, labelled) in parts {
                let truth: Vec<bool> = labelled.iter().map(|l| l.anomalous == Some(true)).collect();
                let metrics = metrics(&scores[at..at + labelled.len()], &truth, threshold);
                at += labelled.len();
                rows.push(SeedRow { seed, setting: setting.into(), part: part.into(), metrics });
            }
        }
    }
    Ok(rows)
}

/// The seed spread as a table: per part and setting, the lowest, median
/// and highest F1 at the default threshold, best F1 and FPR.
pub fn seed_table(rows: &[SeedRow]) -> String {
    let mut out = String::from(
        "| BGL_20k, detector | setting | seeds | F1 at default: min / median / max | best F1: min / median / max | FPR: min / median / max |\n|---|---|---|---|---|---|\n",
    );
    let spread = |mut v: Vec<f64>, digits: usize| {
        v.sort_by(f64::total_cmp);
        let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
        format!("{:.digits$} / {median:.digits$} / {:.digits$}", v[0], v[v.len() - 1])
    };
    for part in ["validation", "test"] {
        for setting in ["unsupervised", "clean"] {
            let of: Vec<&Metrics> = rows.iter().filter(|r| r.part == part && r.setting == setting).map(|r| &r.metrics).collect();
            if of.is_empty() {
                continue;
            }
            let seeds: Vec<String> = rows.iter().filter(|r| r.part == part && r.setting == setting).map(|r| r.seed.to_string()).collect();
            out.push_str(&format!(
                "| {part} | {setting} | {} | {} | {} | {} |\n",
                seeds.join(", "),
                spread(of.iter().map(|m| m.f1).collect(), 3),
                spread(of.iter().map(|m| m.best_f1).collect(), 3),
                spread(of.iter().map(|m| m.fpr).collect(), 4),
            ));
        }
    }
    out
}

/// The default Loghub directory: `LOGHUB_DIR`, else `../shared/data/loghub`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("LOGHUB_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared/data/loghub"))
}

/// The font the figure's text is drawn with (Debian: fonts-dejavu-core).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// ROC points (false-positive rate, true-positive rate), ties grouped.
fn roc_points(scores: &[f64], truth: &[bool]) -> Vec<(f64, f64)> {
    let positives = truth.iter().filter(|&&t| t).count().max(1) as f64;
    let negatives = truth.iter().filter(|&&t| !t).count().max(1) as f64;
    let mut points = vec![(0.0, 0.0)];
    points.extend(sweep(scores, truth).into_iter().map(|(tp, fp)| (fp as f64 / negatives, tp as f64 / positives)));
    points
}

/// Draws the figure: ROC curves of the detector and the baselines, and the
/// detector's score distribution for normal and anomalous lines (the first
/// curve is the detector's).
pub fn figure(curves: &Curves, title: &str, path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    let font = std::fs::read(FONT).map_err(|e| format!("cannot read the font {FONT}: {e} (apt-get install fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| "the font could not be registered".to_owned())?;
    let e = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (1400, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(|x| e(&x))?;
    let (left, right) = root.split_horizontally(700);
    let colours = [RED, BLUE, GREEN, MAGENTA, CYAN];

    let mut roc = ChartBuilder::on(&left)
        .margin(20)
        .caption("ROC curves", ("sans-serif", 20))
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(|x| e(&x))?;
    roc.configure_mesh().x_desc("false-positive rate").y_desc("true-positive rate").draw().map_err(|x| e(&x))?;
    for (k, (method, scores, truth)) in curves.iter().enumerate() {
        let colour = colours[k % colours.len()];
        let auc = metrics(scores, truth, 0.5).roc_auc;
        roc.draw_series(LineSeries::new(roc_points(scores, truth), colour.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(format!("{method} (AUC {auc:.3})"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    roc.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;

    // Score distribution, on a log scale of 1 - score (0 = most unusual).
    let Some((_, scores, truth)) = curves.first() else { return Ok(()) };
    const BINS: usize = 40;
    let bin = |s: f64| ((-(1.0 - s).max(1e-8).log10()) / 8.0 * BINS as f64).clamp(0.0, (BINS - 1) as f64) as usize;
    let mut hist = [[0f64; BINS]; 2];
    for (&s, &t) in scores.iter().zip(truth) {
        hist[usize::from(t)][bin(s)] += 1.0;
    }
    for h in &mut hist {
        let total: f64 = h.iter().sum::<f64>().max(1.0);
        h.iter_mut().for_each(|v| *v /= total);
    }
    let mut dist = ChartBuilder::on(&right)
        .margin(20)
        .caption("detector scores: normal vs anomalous test lines", ("sans-serif", 20))
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..8f64, 0f64..1f64)
        .map_err(|x| e(&x))?;
    dist.configure_mesh().x_desc("-log10(1 - score)   (6 = score 0.999999)").y_desc("fraction of lines").draw().map_err(|x| e(&x))?;
    for (class, (label, colour)) in [("normal", BLUE), ("anomalous", RED)].into_iter().enumerate() {
        let points: Vec<(f64, f64)> = hist[class]
            .iter()
            .enumerate()
            .flat_map(|(i, &v)| [(i as f64 * 8.0 / BINS as f64, v), ((i + 1) as f64 * 8.0 / BINS as f64, v)])
            .collect();
        dist.draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    dist.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// The table as Markdown.
pub fn table(rows: &[Row], flagged: &[Flagged]) -> String {
    let mut out = String::from(
        "| data set | setting | method | ROC-AUC | PR-AUC | precision | recall | F1 | best F1 | FPR |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let m = &r.metrics;
        out.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.4} |\n",
            r.dataset, r.setting, r.method, m.roc_auc, m.pr_auc, m.precision, m.recall, m.f1, m.best_f1, m.fpr
        ));
    }
    out.push_str(
        "\n| unlabelled set (60/40) | test lines | flagged at the default threshold | alerts | bursts | lines of a new template |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for f in flagged {
        out.push_str(&format!(
            "| {} | {} | {:.2}% | {} | {} | {:.2}% |\n",
            f.name,
            f.lines,
            f.rate * 100.0,
            f.alerts,
            f.bursts.len(),
            f.novel * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 5: the label token never reaches the trainer or the detector.
    /// Issue 12: the record is what the shipped reader and parser make of
    /// the line a user's log would hold.
    #[test]
    fn bgl_label_is_removed_and_the_line_read_as_a_user_would() {
        let line =
            "KERNDTLB 1117838583 2005.06.03 R02-M1-N0 2005-06-03-15.43.03.623873 R02-M1-N0 RAS KERNEL FATAL data TLB error interrupt";
        let (alert, rest) = split_label(line);
        assert!(alert);
        assert!(!split_label(&line.replacen("KERNDTLB", "-", 1)).0);
        let records = read_as_a_user_would(&[rest.to_owned(), "plain".to_owned()]).unwrap();
        let r = &records[0];
        assert_eq!(
            (r.message.as_str(), r.source.as_str(), r.host.as_str(), r.priority, r.timestamp_us),
            ("data TLB error interrupt", "KERNEL", "R02-M1-N0", Some(2), Some(1_117_838_583_623_873))
        );
        assert_eq!(*r, logarithm::sources::parse_record(rest));
        let all = format!("{r:?}");
        assert!(!all.contains("KERNDTLB"), "the label leaked: {all}");
        assert_eq!(records[1].message, "plain");
    }

    #[test]
    fn hdfs_blocks() {
        let message =
            "BLOCK* ask 10.250.14.224:50010 to delete  blk_-6952295868487656571 blk_7128370237687728475, blk_-6952295868487656571";
        assert_eq!(blocks_of(message), ["blk_-6952295868487656571", "blk_7128370237687728475"]);
    }

    #[test]
    fn metrics_on_a_known_case() {
        let scores = [0.9, 0.8, 0.3, 0.2, 0.1];
        let truth = [true, false, true, false, false];
        let m = metrics(&scores, &truth, 0.5);
        assert!((m.roc_auc - 5.0 / 6.0).abs() < 1e-9);
        assert!((m.precision - 0.5).abs() < 1e-9 && (m.recall - 0.5).abs() < 1e-9);
        assert!((m.fpr - 1.0 / 3.0).abs() < 1e-9);
        assert!((m.best_f1 - 2.0 * (2.0 / 3.0) * 1.0 / (2.0 / 3.0 + 1.0)).abs() < 1e-9);
        assert!((m.pr_auc - (0.5 * 1.0 + 0.5 * (2.0 / 3.0))).abs() < 1e-9);
    }

    /// The figure renders to a real PNG (with synthetic scores).
    /// An unlabelled set with a label token first on each line (as
    /// Thunderbird's): the token is taken off before the line is read, the
    /// line's own header is parsed, and a new kind of line repeated after
    /// training is flagged on every line but raises one alert.
    #[test]
    fn unlabelled_set_with_label_tokens_flags_lines_and_counts_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfdr.log");
        let line = |i: usize, text: &str| {
            let epoch = 1_131_566_461 + i;
            format!("- {epoch} 2005.11.09 dn{} Nov 9 12:{:02}:{:02} dn{0}/dn{0} {text}", 200 + i % 7, i / 60 % 60, i % 60)
        };
        let mut lines: Vec<String> = (0..500)
            .map(|i| match i % 3 {
                0 => line(i, &format!("crond[{}]: (root) CMD (run-parts /etc/cron.hourly)", 2900 + i)),
                1 => line(i, &format!("sshd[{}]: Accepted publickey for root from 10.0.0.{} port {} ssh2", 3000 + i, i % 250, 40000 + i)),
                _ => line(i, &format!("ntpd[{}]: synchronized to 10.0.0.1, stratum 2", 100 + i % 9)),
            })
            .collect();
        for i in (300..500).step_by(20) {
            lines[i] = line(i, "gmetad[1700]: Warning: we failed to resolve data source name an14 an15");
        }
        std::fs::write(&path, lines.join("\n")).unwrap();
        let set = unlabelled("CFDR", &path, true, &FitParams::default()).unwrap();
        assert_eq!((set.name.as_str(), set.lines), ("CFDR", 200));
        assert_eq!(set.records.len(), 10, "{:?}", set.records);
        assert_eq!(set.alerts, 1);
        assert!(set.bursts.is_empty(), "{:?}", set.bursts);
        assert!((set.rate - 0.05).abs() < 1e-9 && set.novel >= 0.05);
        let r = &set.records[0].1;
        // `Warning:` is the line's level, not a word of it.
        assert_eq!(
            (r.source.as_str(), r.priority, r.message.as_str()),
            ("gmetad", Some(4), "we failed to resolve data source name an14 an15")
        );
        assert!(r.host.starts_with("dn2") && r.timestamp_us.is_some_and(|t| t / 1_000_000 > 1_131_566_461), "{r:?}");
    }

    #[test]
    fn figure_is_a_png() {
        let truth: Vec<bool> = (0..400).map(|i| i % 10 == 0).collect();
        let good: Vec<f64> = truth.iter().enumerate().map(|(i, &t)| if t { 0.9999 - i as f64 * 1e-7 } else { i as f64 / 500.0 }).collect();
        let flat: Vec<f64> = (0..400).map(|i| (i * 7 % 400) as f64 / 400.0).collect();
        let curves = vec![("logarithm".to_owned(), good, truth.clone()), ("baseline".to_owned(), flat, truth)];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.png");
        figure(&curves, "test", &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 10_000);
    }

    #[test]
    fn split_is_chronological() {
        let mk = |t: i64| Labelled { record: LogRecord { timestamp_us: Some(t), ..LogRecord::default() }, anomalous: None, blocks: vec![] };
        let (train, test) = chronological_split(vec![mk(5), mk(1), mk(4), mk(2), mk(3)], 0.6);
        assert_eq!(train.iter().map(|l| l.record.timestamp_us.unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(test.len(), 2);
    }

    /// The seed table gives each part and setting's lowest, median and
    /// highest figures, the default seed first.
    #[test]
    fn seed_spread_table() {
        assert_eq!(spread_seeds(4, 42), [42, 1, 2, 3]);
        assert_eq!(spread_seeds(3, 2), [2, 1, 3]);
        let row = |seed, f1, fpr| SeedRow {
            seed,
            setting: "clean".into(),
            part: "test".into(),
            metrics: Metrics { roc_auc: 1.0, pr_auc: 1.0, precision: 1.0, recall: 1.0, f1, best_f1: f1 + 0.01, fpr },
        };
        let table = seed_table(&[row(42, 0.9, 0.004), row(1, 0.7, 0.006), row(2, 0.8, 0.005)]);
        assert!(
            table.contains("| test | clean | 42, 1, 2 | 0.700 / 0.800 / 0.900 | 0.710 / 0.810 / 0.910 | 0.0040 / 0.0050 / 0.0060 |"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 3, "header, rule, and the one part and setting given: {table}");
        let even = seed_table(&[row(42, 0.9, 0.004), row(1, 0.7, 0.006)]);
        assert!(even.contains("0.700 / 0.800 / 0.900"), "the median of two is their mean: {even}");
    }
}
