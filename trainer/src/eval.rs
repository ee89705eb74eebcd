//! The evaluation harness: labelled public logs (Loghub), a chronological
//! 60/40 split, the real trainer, scoring through the component (the
//! shipped path), and baselines computed on the same split in the same run.
//!
//! Data is read by path (`LOGHUB_DIR`, default `../shared/data/loghub`) and
//! never copied: its terms are research-only.
//!
//! - BGL: per-line labels (first token `-` is normal, anything else an
//!   alert). The label token is removed before a line becomes a record.
//! - HDFS: per-block labels; a block scores as its most anomalous line.
//! - Linux, OpenSSH: unlabelled; the fraction of test lines flagged.

use crate::fit::{self, FitParams};
use logarithm::engine::{ComponentDetector, ComponentSource};
use logarithm_detector::features::features_of;
use logarithm_detector::model::novelty_error;
use logarithm_detector::modelfile::{self, KdfParams};
use logarithm_detector::tokenizer::Tokenizer;
use logarithm_detector::{Detector, LogRecord, Model, ModelMeta};
use smartcore::decomposition::pca::{PCA, PCAParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// One labelled line.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The record, with no trace of its label.
    pub record: LogRecord,
    /// Alert (true) or normal; `None` when unlabelled.
    pub anomalous: Option<bool>,
    /// HDFS block ids on the line.
    pub blocks: Vec<String>,
}

/// A BGL line: `Label Timestamp Date Node Time NodeRepeat Type Component Level Content`.
/// The label is taken off first; the record keeps node, component, level and content.
pub fn parse_bgl(line: &str) -> Option<Labelled> {
    let mut fields = line.splitn(10, ' ');
    let label = fields.next()?;
    let epoch: i64 = fields.next()?.parse().ok()?;
    let _date = fields.next()?;
    let node = fields.next()?;
    let _time = fields.next()?;
    let _repeat = fields.next()?;
    let _type = fields.next()?;
    let component = fields.next()?;
    let level = fields.next()?;
    let content = fields.next().unwrap_or("");
    Some(Labelled {
        record: LogRecord {
            timestamp_us: Some(epoch * 1_000_000),
            source: component.to_owned(),
            host: node.to_owned(),
            priority: logarithm_detector::parse::severity_from_name(level),
            message: content.to_owned(),
        },
        anomalous: Some(label != "-"),
        blocks: Vec::new(),
    })
}

/// An HDFS line: `yymmdd hhmmss pid LEVEL component: message`.
pub fn parse_hdfs(line: &str) -> Option<Labelled> {
    let mut fields = line.splitn(5, ' ');
    let date = fields.next()?;
    let time = fields.next()?;
    let _pid = fields.next()?;
    let level = fields.next()?;
    let rest = fields.next().unwrap_or("");
    let (component, message) = rest.split_once(": ").unwrap_or(("", rest));
    let ts = chrono::NaiveDateTime::parse_from_str(&format!("{date}{time}"), "%y%m%d%H%M%S").ok()?;
    let blocks = message
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .filter(|w| w.starts_with("blk_"))
        .map(str::to_owned)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    Some(Labelled {
        record: LogRecord {
            timestamp_us: Some(ts.and_utc().timestamp_micros()),
            source: component.to_owned(),
            host: String::new(),
            priority: logarithm_detector::parse::severity_from_name(level),
            message: message.to_owned(),
        },
        anomalous: None,
        blocks,
    })
}

/// Reads a data set's lines (CRLF, a missing final newline and stray
/// non-UTF-8 bytes handled).
fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e} (set LOGHUB_DIR)", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text.lines().map(|l| l.trim_end_matches('\r').to_owned()).filter(|l| !l.is_empty()).collect())
}

/// Sorts by time (stable) and splits the first `train_fraction` off.
pub fn chronological_split(mut lines: Vec<Labelled>, train_fraction: f64) -> (Vec<Labelled>, Vec<Labelled>) {
    lines.sort_by_key(|l| l.record.timestamp_us.unwrap_or(i64::MIN));
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

/// Trains with the real trainer and scores through the component.
fn detector_scores(train: &[LogRecord], test: &[LogRecord], params: &FitParams) -> Result<(Vec<f64>, f64, Model), String> {
    let (model, _) = fit::fit(train, params, ModelMeta::default())?;
    let file = modelfile::seal(&model.to_payload(), "eval", [3; 16], [4; 12], KdfParams::default()).map_err(|e| e.to_string())?;
    let mut component = ComponentDetector::load(ComponentSource::Embedded, &file, "eval").map_err(|e| e.to_string())?;
    let mut scores = Vec::with_capacity(test.len());
    for chunk in test.chunks(1024) {
        scores.extend(component.score_batch(chunk).map_err(|e| format!("{e:#}"))?.into_iter().map(|v| v.score));
    }
    Ok((scores, model.threshold, model))
}

/// Baseline (a): a line is anomalous when its masked token sequence never
/// occurred in training. Scores are 1 (new) or 0.
fn new_template_scores(train: &[LogRecord], test: &[LogRecord]) -> Vec<f64> {
    let tokenizer = Tokenizer::default();
    let key = |r: &LogRecord| {
        let mut terms = Vec::new();
        tokenizer.tokenize(&r.message, &mut terms);
        format!("{}\u{1}{}", r.source, terms.join(" "))
    };
    let seen: HashSet<String> = train.iter().map(key).collect();
    test.iter().map(|r| if seen.contains(&key(r)) { 0.0 } else { 1.0 }).collect()
}

/// Baseline (b): PCA reconstruction error on the detector's own TF-IDF
/// features (its vocabulary, at most the 400 most frequent terms; unseen
/// terms count as in the detector, [`novelty_error`]), `n_components`
/// principal components.
fn pca_scores(model: &Model, train: &[LogRecord], test: &[LogRecord], n_components: usize) -> Result<Vec<f64>, String> {
    let dims = model.vocab.len().min(400);
    // Per line: the dense known part, and (weight outside the kept
    // dimensions, unseen share), combined like the detector's raw error.
    let dense = |records: &[LogRecord]| -> (Vec<Vec<f64>>, Vec<(f64, f32)>) {
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
            outside.push((rest, f.unseen_share()));
        }
        (rows, outside)
    };
    let (train_rows, _) = dense(train);
    let (test_rows, outside) = dense(test);
    let mean: Vec<f64> = (0..dims).map(|j| train_rows.iter().map(|r| r[j]).sum::<f64>() / train_rows.len() as f64).collect();
    let x = DenseMatrix::from_2d_vec(&train_rows).map_err(|e| e.to_string())?;
    let pca = PCA::fit(&x, PCAParameters::default().with_n_components(n_components.min(dims))).map_err(|e| e.to_string())?;
    let t = DenseMatrix::from_2d_vec(&test_rows).map_err(|e| e.to_string())?;
    let projected = pca.transform(&t).map_err(|e| e.to_string())?;
    use smartcore::linalg::basic::arrays::Array;
    Ok(test_rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let centred: f64 = row.iter().zip(&mean).map(|(x, m)| (x - m) * (x - m)).sum();
            let kept: f64 = (0..n_components.min(dims)).map(|k| projected.get((i, k)).powi(2)).sum();
            let (rest, unseen_share) = outside[i];
            novelty_error((centred - kept).max(0.0) + rest, unseen_share)
        })
        .collect())
}

/// Baseline (c): the same autoencoder with masking switched off (scored natively:
/// the component gives the same bits, which a test checks).
fn unmasked_scores(train: &[LogRecord], test: &[LogRecord], params: &FitParams) -> Result<Vec<f64>, String> {
    let params = FitParams { mask: false, ..params.clone() };
    let (model, _) = fit::fit(train, &params, ModelMeta::default())?;
    let detector = Detector::new(model);
    Ok(test.iter().map(|r| detector.score(r).score).collect())
}

/// One row of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Data set.
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

/// Evaluates one line-labelled data set in one setting; all methods.
fn evaluate_lines(
    name: &str,
    setting: &str,
    train: &[Labelled],
    test: &[Labelled],
    params: &FitParams,
    rows: &mut Vec<Row>,
    curves: &mut Curves,
) -> Result<(), String> {
    let train: Vec<LogRecord> =
        train.iter().filter(|l| setting == "unsupervised" || l.anomalous == Some(false)).map(|l| l.record.clone()).collect();
    let test_records: Vec<LogRecord> = test.iter().map(|l| l.record.clone()).collect();
    let truth: Vec<bool> = test.iter().map(|l| l.anomalous == Some(true)).collect();
    let (scores, threshold, model) = detector_scores(&train, &test_records, params)?;
    let mut push = |method: &str, scores: Vec<f64>, threshold: f64| {
        rows.push(Row {
            dataset: name.into(),
            setting: setting.into(),
            method: method.into(),
            metrics: metrics(&scores, &truth, threshold),
        });
        if name == "BGL_20k" && setting == "unsupervised" {
            curves.push((method.into(), scores, truth.clone()));
        }
    };
    push("logarithm", scores, threshold);
    push("new template", new_template_scores(&train, &test_records), 0.5);
    let pca = pca_scores(&model, &train, &test_records, 16)?;
    // PCA has no calibration: operate it at the same training-flag rate.
    let pca_train = pca_scores(&model, &train, &train, 16)?;
    push("TF-IDF + PCA", pca, quantile(&pca_train, threshold));
    push("autoencoder, no masking", unmasked_scores(&train, &test_records, params)?, threshold);
    Ok(())
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0)
}

/// Per unlabelled set: the fraction of test lines the detector flags, and
/// the fraction whose template is new (the new-template baseline's flags).
pub type FlagRates = Vec<(String, f64, f64)>;

/// Runs the whole evaluation and returns the table rows, the unlabelled
/// sets' flag rates, and the BGL_20k curves.
pub fn run(loghub: &Path, params: &FitParams) -> Result<(Vec<Row>, FlagRates, Curves), String> {
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for name in ["BGL_20k", "BGL_2k"] {
        let lines: Vec<Labelled> = read_lines(&loghub.join(format!("BGL/{name}.log")))?.iter().filter_map(|l| parse_bgl(l)).collect();
        let (train, test) = chronological_split(lines, 0.6);
        for setting in ["unsupervised", "clean"] {
            evaluate_lines(name, setting, &train, &test, params, &mut rows, &mut curves)?;
        }
    }
    for name in ["HDFS_5k", "HDFS_2k"] {
        let dir = loghub.join("HDFS");
        let labels: HashMap<String, bool> = read_lines(&dir.join(format!("{name}.block_labels.csv")))?
            .iter()
            .skip(1)
            .filter_map(|l| l.split_once(',').map(|(b, lab)| (b.to_owned(), lab == "Anomaly")))
            .collect();
        let mut lines: Vec<Labelled> = read_lines(&dir.join(format!("{name}.log")))?.iter().filter_map(|l| parse_hdfs(l)).collect();
        for l in &mut lines {
            l.anomalous = Some(l.blocks.iter().any(|b| labels.get(b) == Some(&true)));
        }
        let (train, test) = chronological_split(lines, 0.6);
        for setting in ["unsupervised", "clean"] {
            let train_records: Vec<LogRecord> =
                train.iter().filter(|l| setting == "unsupervised" || l.anomalous == Some(false)).map(|l| l.record.clone()).collect();
            let test_records: Vec<LogRecord> = test.iter().map(|l| l.record.clone()).collect();
            let (scores, threshold, _) = detector_scores(&train_records, &test_records, params)?;
            // Block level: a block scores as its most anomalous test line.
            let mut blocks: BTreeMap<&str, f64> = BTreeMap::new();
            for (l, s) in test.iter().zip(&scores) {
                for b in &l.blocks {
                    let e = blocks.entry(b.as_str()).or_insert(0.0);
                    *e = e.max(*s);
                }
            }
            let truth: Vec<bool> = blocks.keys().map(|b| labels.get(*b) == Some(&true)).collect();
            let block_scores: Vec<f64> = blocks.values().copied().collect();
            rows.push(Row {
                dataset: format!("{name} (blocks)"),
                setting: setting.into(),
                method: "logarithm".into(),
                metrics: metrics(&block_scores, &truth, threshold),
            });
        }
    }
    let mut flagged = Vec::new();
    for (name, path) in [("Linux_2k", "Linux/Linux_2k.log"), ("OpenSSH_2k", "OpenSSH/OpenSSH_2k.log")] {
        let now = chrono::Local::now();
        let lines: Vec<Labelled> = read_lines(&loghub.join(path))?
            .iter()
            .map(|l| Labelled { record: logarithm_detector::parse::parse_line(l, &now), anomalous: None, blocks: Vec::new() })
            .collect();
        // Unlabelled and in file order: split by position.
        let cut = (lines.len() as f64 * 0.6).round() as usize;
        let train: Vec<LogRecord> = lines[..cut].iter().map(|l| l.record.clone()).collect();
        let test: Vec<LogRecord> = lines[cut..].iter().map(|l| l.record.clone()).collect();
        let (scores, threshold, _) = detector_scores(&train, &test, params)?;
        let rate = |flags: usize| flags as f64 / test.len() as f64;
        let novel = new_template_scores(&train, &test).iter().filter(|&&s| s > 0.5).count();
        flagged.push((name.to_owned(), rate(scores.iter().filter(|&&s| s >= threshold).count()), rate(novel)));
    }
    Ok((rows, flagged, curves))
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
pub fn table(rows: &[Row], flagged: &FlagRates) -> String {
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
    out.push_str("\n| unlabelled set (60/40) | test lines flagged at the default threshold | lines of a new template |\n|---|---:|---:|\n");
    for (name, f, novel) in flagged {
        out.push_str(&format!("| {name} | {:.2}% | {:.2}% |\n", f * 100.0, novel * 100.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 5: the label token never reaches the trainer or the detector.
    #[test]
    fn bgl_label_is_removed() {
        let line =
            "KERNDTLB 1117838583 2005.06.03 R02-M1-N0 2005-06-03-15.43.03.623873 R02-M1-N0 RAS KERNEL FATAL data TLB error interrupt";
        let l = parse_bgl(line).unwrap();
        assert_eq!(l.anomalous, Some(true));
        let r = &l.record;
        assert_eq!(
            (r.message.as_str(), r.source.as_str(), r.host.as_str(), r.priority),
            ("data TLB error interrupt", "KERNEL", "R02-M1-N0", Some(2))
        );
        let all = format!("{r:?}");
        assert!(!all.contains("KERNDTLB"), "the label leaked: {all}");
        assert_eq!(parse_bgl(&line.replacen("KERNDTLB", "-", 1)).unwrap().anomalous, Some(false));
    }

    #[test]
    fn hdfs_lines_and_blocks() {
        let l = parse_hdfs(
            "081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106",
        )
        .unwrap();
        assert_eq!(l.blocks, ["blk_-1608999687919862906"]);
        assert_eq!((l.record.source.as_str(), l.record.priority), ("dfs.DataNode$DataXceiver", Some(6)));
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
}
