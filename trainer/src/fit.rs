//! Fitting a model: vocabulary and idf from document frequencies, the
//! autoencoder by mini-batch Adam on the reconstruction error, then the
//! calibration of raw errors into scores.
//!
//! The autoencoder's loss for a sparse input `x` is `‖x − y‖²`, computed, like
//! at scoring time, without the dense output: with `G = w_outᵀ w_out`,
//! `c = w_outᵀ b_out`, `‖y‖² = hᵀGh + 2cᵀh + ‖b_out‖²`. Its gradients are exact:
//! - `∂L/∂h = 2(G h + c − Σ_{i∈S} x_i w_out[i])`,
//! - `∂L/∂w_out = 2(w_out · Σ_b h_b h_bᵀ + b_out (Σ_b h_b)ᵀ) − 2 Σ_b Σ_{i∈S_b} x_bi e_i h_bᵀ`,
//! - `∂L/∂b_out = 2(w_out Σ_b h_b + B·b_out) − 2 Σ_b Σ_{i∈S_b} x_bi e_i`,
//!
//! so a batch costs `O(B·|S|·H + V·H²)` instead of the dense `O(B·V·H)`.

use logarithm_detector::calibration::Calibration;
use logarithm_detector::features::{self, Features, Vocabulary};
use logarithm_detector::model::{Model, ModelMeta};
use logarithm_detector::network::{Activation, Autoencoder, Dense};
use logarithm_detector::tokenizer::Tokenizer;
use logarithm_detector::LogRecord;
use ndarray::{Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FitParams {
    /// Most terms kept in the vocabulary (the most frequent).
    pub vocab_size: usize,
    /// A term must occur in at least this many lines to enter the vocabulary.
    pub min_df: u64,
    /// Lines per mini-batch.
    pub batch_size: usize,
    /// Most mini-batches per epoch.
    pub max_batches: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// Hidden layer widths, encoder to decoder (e.g. `[64, 16, 64]`).
    pub hidden: Vec<usize>,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Anomaly threshold written into the model.
    pub threshold: f64,
    /// Mask variable parts of messages (off only for baselines).
    pub mask: bool,
    /// Random seed: same data and seed, same model.
    pub seed: u64,
}

impl Default for FitParams {
    fn default() -> Self {
        Self {
            vocab_size: 10_000,
            min_df: 1,
            batch_size: 256,
            max_batches: 200,
            epochs: 10,
            hidden: vec![64, 16, 64],
            learning_rate: 2e-3,
            threshold: 0.999,
            mask: true,
            seed: 42,
        }
    }
}

impl FitParams {
    /// Checks the values before any work starts.
    pub fn check(&self) -> Result<(), String> {
        if self.vocab_size == 0 {
            return Err("vocabulary size must be at least 1".into());
        }
        if self.batch_size == 0 || self.max_batches == 0 || self.epochs == 0 {
            return Err("batch size, max batches and epochs must be at least 1".into());
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err("hidden layers must be non-empty with non-zero widths".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold {} is outside [0, 1]", self.threshold));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(format!("learning rate {} must be positive", self.learning_rate));
        }
        Ok(())
    }

    /// The parameters as (name, value) pairs, for the model's metadata.
    pub fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("vocab_size".into(), self.vocab_size.to_string()),
            ("batch_size".into(), self.batch_size.to_string()),
            ("max_batches".into(), self.max_batches.to_string()),
            ("epochs".into(), self.epochs.to_string()),
            ("hidden".into(), format!("{:?}", self.hidden)),
            ("learning_rate".into(), self.learning_rate.to_string()),
            ("mask".into(), self.mask.to_string()),
            ("seed".into(), self.seed.to_string()),
        ]
    }
}

/// What a fit did.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// Lines trained on.
    pub lines: u64,
    /// Distinct feature vectors among them.
    pub distinct: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Epochs run.
    pub epochs: usize,
    /// Mean reconstruction loss of the last epoch.
    pub final_loss: f64,
    /// The model's threshold.
    pub threshold: f64,
    /// Wall time.
    pub elapsed: Duration,
}

/// A training line as features, kept once per distinct vector.
struct Sample {
    known: Vec<(u32, f32)>,
    unseen_sq: f32,
    count: u64,
}

/// Fits a model to the records. `meta` is completed (lines, parameters) and
/// stored in the model.
pub fn fit(records: &[LogRecord], params: &FitParams, mut meta: ModelMeta) -> Result<(Model, FitReport), String> {
    params.check()?;
    if records.is_empty() {
        return Err("no log lines to learn from".into());
    }
    let started = Instant::now();
    let tokenizer = Tokenizer { mask: params.mask };
    let vocab = build_vocabulary(&tokenizer, records, params);
    let samples = distinct_samples(&tokenizer, &vocab, records);
    let dims = &params.hidden;
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut net = init_network(vocab.len(), dims, &mut rng);
    let mut trainer = Adam::new(&net, params.learning_rate);

    // Batches are drawn with probability proportional to each distinct
    // vector's count: the same distribution as the raw lines, at a fraction
    // of the bookkeeping.
    let cumulative: Vec<u64> = samples.iter().scan(0, |acc, s| {
        *acc += s.count;
        Some(*acc)
    }).collect();
    let total = *cumulative.last().unwrap();
    let batches_per_epoch = (total as usize).div_ceil(params.batch_size).min(params.max_batches);
    let mut final_loss = 0.0;
    for epoch in 0..params.epochs {
        let mut epoch_loss = 0.0;
        for _ in 0..batches_per_epoch {
            let batch: Vec<&Sample> = (0..params.batch_size)
                .map(|_| {
                    let r = rng.random_range(0..total);
                    &samples[cumulative.partition_point(|&c| c <= r)]
                })
                .collect();
            epoch_loss += trainer.step(&mut net, &batch);
        }
        final_loss = epoch_loss / batches_per_epoch as f64;
        tracing::debug!("epoch {}: loss {final_loss:.5}", epoch + 1);
    }
    net.prepare();

    let mut model = Model {
        meta: ModelMeta::default(),
        tokenizer,
        vocab,
        net,
        calibration: Calibration::fit(&mut []),
        threshold: params.threshold,
    };
    let mut raws = Vec::with_capacity(records.len());
    for s in &samples {
        let f = Features { known: s.known.clone(), unseen: Vec::new() };
        let raw = model.raw_error_of(&f) + f64::from(s.unseen_sq);
        raws.extend(std::iter::repeat_n(raw, s.count as usize));
    }
    model.calibration = Calibration::fit(&mut raws);
    meta.training_lines = records.len() as u64;
    meta.parameters = params.describe();
    model.meta = meta;
    let report = FitReport {
        lines: records.len() as u64,
        distinct: samples.len(),
        vocab: model.vocab.len(),
        epochs: params.epochs,
        final_loss,
        threshold: params.threshold,
        elapsed: started.elapsed(),
    };
    Ok((model, report))
}

/// The `vocab_size` terms in the most lines (ties by term, for a stable
/// order), with `idf` from their document frequencies.
fn build_vocabulary(tokenizer: &Tokenizer, records: &[LogRecord], params: &FitParams) -> Vocabulary {
    let mut df: HashMap<String, u64> = HashMap::new();
    let mut terms = Vec::new();
    for record in records {
        terms.clear();
        features::record_terms(tokenizer, record, &mut terms);
        terms.sort_unstable();
        terms.dedup();
        for t in &terms {
            match df.get_mut(t.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    df.insert(t.to_string(), 1);
                }
            }
        }
    }
    let n = records.len() as u64;
    let mut ranked: Vec<(String, u64)> = df.into_iter().filter(|(_, c)| *c >= params.min_df).collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(params.vocab_size);
    let idf = ranked.iter().map(|(_, c)| features::idf(*c, n)).collect();
    let terms = ranked.into_iter().map(|(t, _)| t).collect();
    Vocabulary::new(terms, idf, features::idf(0, n))
}

fn distinct_samples(tokenizer: &Tokenizer, vocab: &Vocabulary, records: &[LogRecord]) -> Vec<Sample> {
    let mut index: HashMap<(Vec<(u32, u32)>, u32), usize> = HashMap::new();
    let mut samples: Vec<Sample> = Vec::new();
    for record in records {
        let f = features::features_of(tokenizer, vocab, record);
        let unseen_sq = f.unseen_norm_sq();
        let key = (f.known.iter().map(|&(i, w)| (i, w.to_bits())).collect(), unseen_sq.to_bits());
        match index.get(&key) {
            Some(&i) => samples[i].count += 1,
            None => {
                index.insert(key, samples.len());
                samples.push(Sample { known: f.known, unseen_sq, count: 1 });
            }
        }
    }
    samples
}

/// Glorot-uniform weights, zero biases.
fn init_network(v: usize, hidden: &[usize], rng: &mut ChaCha8Rng) -> Autoencoder {
    let mut glorot = |rows: usize, cols: usize| {
        let limit = (6.0 / (rows + cols) as f32).sqrt();
        Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-limit..limit))
    };
    let w_in = glorot(v, hidden[0]);
    let mut layers = Vec::new();
    for (i, pair) in hidden.windows(2).enumerate() {
        // The bottleneck (the narrowest layer) is tanh; the others ReLU.
        let is_bottleneck = pair[1] == *hidden.iter().min().unwrap() && i + 2 < hidden.len();
        let act = if is_bottleneck { Activation::Tanh } else { Activation::Relu };
        layers.push(Dense { w: glorot(pair[0], pair[1]), b: Array1::zeros(pair[1]), act });
    }
    let last = *hidden.last().unwrap();
    let w_out = glorot(v, last);
    Autoencoder::new(w_in, Array1::zeros(hidden[0]), Activation::Relu, layers, w_out, Array1::zeros(v))
        .expect("freshly initialised shapes agree")
}

/// Adam state for every parameter array, in a fixed order.
struct Adam {
    lr: f32,
    t: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// Gradients, in the same layout as the network's parameters.
struct Gradients {
    w_in: Array2<f32>,
    b_in: Array1<f32>,
    hidden: Vec<(Array2<f32>, Array1<f32>)>,
    w_out: Array2<f32>,
    b_out: Array1<f32>,
}

impl Adam {
    fn new(net: &Autoencoder, lr: f32) -> Self {
        let sizes = param_sizes(net);
        Self { lr, t: 0, m: sizes.iter().map(|&n| vec![0.0; n]).collect(), v: sizes.iter().map(|&n| vec![0.0; n]).collect() }
    }

    /// One step on a batch; returns the batch's mean loss.
    fn step(&mut self, net: &mut Autoencoder, batch: &[&Sample]) -> f64 {
        let (loss, grads) = gradients(net, batch);
        self.t += 1;
        let bias1 = 1.0 - BETA1.powi(self.t);
        let bias2 = 1.0 - BETA2.powi(self.t);
        let lr = self.lr * bias2.sqrt() / bias1;
        let mut k = 0;
        let mut update = |param: &mut [f32], grad: &[f32]| {
            let (m, v) = (&mut self.m[k], &mut self.v[k]);
            for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = BETA1 * *m + (1.0 - BETA1) * g;
                *v = BETA2 * *v + (1.0 - BETA2) * g * g;
                *p -= lr * *m / (v.sqrt() + EPSILON);
            }
            k += 1;
        };
        update(slice_mut(&mut net.w_in), slice(&grads.w_in));
        update(net.b_in.as_slice_mut().unwrap(), grads.b_in.as_slice().unwrap());
        for (layer, (gw, gb)) in net.hidden.iter_mut().zip(&grads.hidden) {
            update(slice_mut(&mut layer.w), slice(gw));
            update(layer.b.as_slice_mut().unwrap(), gb.as_slice().unwrap());
        }
        update(slice_mut(&mut net.w_out), slice(&grads.w_out));
        update(net.b_out.as_slice_mut().unwrap(), grads.b_out.as_slice().unwrap());
        loss
    }
}

fn slice(a: &Array2<f32>) -> &[f32] {
    a.as_slice().expect("parameters are contiguous")
}

fn slice_mut(a: &mut Array2<f32>) -> &mut [f32] {
    a.as_slice_mut().expect("parameters are contiguous")
}

fn param_sizes(net: &Autoencoder) -> Vec<usize> {
    let mut sizes = vec![net.w_in.len(), net.b_in.len()];
    for l in &net.hidden {
        sizes.push(l.w.len());
        sizes.push(l.b.len());
    }
    sizes.push(net.w_out.len());
    sizes.push(net.b_out.len());
    sizes
}

/// Mean loss of a batch and its exact gradients (module docs).
fn gradients(net: &Autoencoder, batch: &[&Sample]) -> (f64, Gradients) {
    let b = batch.len();
    let inv_b = 1.0 / b as f32;
    // Forward, keeping every layer's activations.
    let h0 = net.b_in.len();
    let mut z0 = Array2::<f32>::zeros((b, h0));
    for (r, s) in batch.iter().enumerate() {
        let mut row = z0.row_mut(r);
        row.assign(&net.b_in);
        for &(i, x) in &s.known {
            row.scaled_add(x, &net.w_in.row(i as usize));
        }
    }
    apply(net.act_in, &mut z0);
    let mut activations = vec![z0];
    for layer in &net.hidden {
        let mut z = activations.last().unwrap().dot(&layer.w) + &layer.b;
        apply(layer.act, &mut z);
        activations.push(z);
    }
    let h = activations.last().unwrap();

    // Loss and ∂L/∂h via the output Gram matrix.
    let g = net.w_out.t().dot(&net.w_out);
    let c = net.w_out.t().dot(&net.b_out);
    let bb = net.b_out.dot(&net.b_out);
    let hg = h.dot(&g); // (B, H)
    let mut dh = (&hg + &c) * 2.0;
    let mut grad_w_out = Array2::<f32>::zeros(net.w_out.dim());
    let mut grad_b_out = Array1::<f32>::zeros(net.b_out.len());
    let mut loss = 0.0f64;
    for (r, s) in batch.iter().enumerate() {
        let hr = h.row(r);
        let mut xy = 0.0f32;
        let mut xx = 0.0f32;
        let mut dh_r = dh.row_mut(r);
        for &(i, x) in &s.known {
            let wi = net.w_out.row(i as usize);
            xy += x * (wi.dot(&hr) + net.b_out[i as usize]);
            xx += x * x;
            dh_r.scaled_add(-2.0 * x, &wi);
            grad_w_out.row_mut(i as usize).scaled_add(-2.0 * x * inv_b, &hr);
            grad_b_out[i as usize] -= 2.0 * x * inv_b;
        }
        let yy = hg.row(r).dot(&hr) + 2.0 * c.dot(&hr) + bb;
        loss += f64::from((xx - 2.0 * xy + yy).max(0.0) + s.unseen_sq);
    }
    dh *= inv_b;
    let h_sum = h.sum_axis(Axis(0));
    let hth = h.t().dot(h);
    grad_w_out.scaled_add(2.0 * inv_b, &net.w_out.dot(&hth));
    for (mut row, &bo) in grad_w_out.rows_mut().into_iter().zip(net.b_out.iter()) {
        row.scaled_add(2.0 * inv_b * bo, &h_sum);
    }
    grad_b_out.scaled_add(2.0 * inv_b, &net.w_out.dot(&h_sum));
    grad_b_out.scaled_add(2.0, &net.b_out);

    // Backward through the hidden layers.
    let mut delta = dh;
    let mut hidden_grads = Vec::with_capacity(net.hidden.len());
    for (l, layer) in net.hidden.iter().enumerate().rev() {
        let out = &activations[l + 1];
        delta.zip_mut_with(out, |d, &a| *d *= layer.act.derivative_from_output(a));
        let input = &activations[l];
        hidden_grads.push((input.t().dot(&delta), delta.sum_axis(Axis(0))));
        delta = delta.dot(&layer.w.t());
    }
    hidden_grads.reverse();
    delta.zip_mut_with(&activations[0], |d, &a| *d *= net.act_in.derivative_from_output(a));
    let mut grad_w_in = Array2::<f32>::zeros(net.w_in.dim());
    for (r, s) in batch.iter().enumerate() {
        for &(i, x) in &s.known {
            grad_w_in.row_mut(i as usize).scaled_add(x, &delta.row(r));
        }
    }
    let grads = Gradients { w_in: grad_w_in, b_in: delta.sum_axis(Axis(0)), hidden: hidden_grads, w_out: grad_w_out, b_out: grad_b_out };
    (loss / b as f64, grads)
}

fn apply(act: Activation, z: &mut Array2<f32>) {
    match act {
        Activation::Relu => z.mapv_inplace(|v| v.max(0.0)),
        Activation::Tanh => z.mapv_inplace(f32::tanh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(known: Vec<(u32, f32)>) -> Sample {
        Sample { known, unseen_sq: 0.0, count: 1 }
    }

    /// The analytic gradients match finite differences of the loss.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut net = init_network(6, &[5, 3, 4], &mut rng);
        net.b_out.mapv_inplace(|_| rng.random_range(-0.3..0.3));
        net.b_in.mapv_inplace(|_| rng.random_range(0.0..0.3));
        let s1 = sample(vec![(0, 0.6), (3, 0.8)]);
        let s2 = sample(vec![(1, 0.5), (2, 0.5), (5, 0.7071)]);
        let batch = [&s1, &s2];
        let (_, grads) = gradients(&net, &batch);
        let eps = 1e-3f32;
        let loss_at = |net: &Autoencoder| gradients(net, &batch).0;
        let mut check = |get: &dyn Fn(&mut Autoencoder) -> &mut f32, analytic: f32, what: &str| {
            let orig = *get(&mut net);
            *get(&mut net) = orig + eps;
            let up = loss_at(&net);
            *get(&mut net) = orig - eps;
            let down = loss_at(&net);
            *get(&mut net) = orig;
            let numeric = ((up - down) / (2.0 * f64::from(eps))) as f32;
            assert!((numeric - analytic).abs() < 2e-3 + 0.02 * numeric.abs(), "{what}: numeric {numeric}, analytic {analytic}");
        };
        check(&|n| &mut n.w_out[[3, 1]], grads.w_out[[3, 1]], "w_out present");
        check(&|n| &mut n.w_out[[4, 2]], grads.w_out[[4, 2]], "w_out absent");
        check(&|n| &mut n.b_out[2], grads.b_out[2], "b_out");
        check(&|n| &mut n.w_in[[5, 0]], grads.w_in[[5, 0]], "w_in");
        check(&|n| &mut n.b_in[1], grads.b_in[1], "b_in");
        check(&|n| &mut n.hidden[0].w[[1, 2]], grads.hidden[0].0[[1, 2]], "hidden 0");
        check(&|n| &mut n.hidden[1].b[0], grads.hidden[1].1[0], "hidden 1 bias");
    }

    #[test]
    fn fitting_is_deterministic_and_separates_novel_lines() {
        let mut records = Vec::new();
        for i in 0..600 {
            records.push(LogRecord::from_message(format!("Accepted password for user{} from 10.0.0.{} port {}", i % 5, i % 200, 1000 + i)));
            records.push(LogRecord::from_message(format!("session closed for user {}", ["root", "bob", "eve"][i % 3])));
        }
        let params = FitParams { epochs: 5, max_batches: 20, ..FitParams::default() };
        let (m1, report) = fit(&records, &params, ModelMeta::default()).unwrap();
        let (m2, _) = fit(&records, &params, ModelMeta::default()).unwrap();
        assert_eq!(m1.to_payload(), m2.to_payload());
        assert_eq!(report.lines, 1200);
        let normal = m1.raw_error(&records[0]);
        let novel = m1.raw_error(&LogRecord::from_message("kernel panic segfault in libc"));
        assert!(novel > normal * 2.0, "novel {novel} vs normal {normal}");
        let score = m1.calibration.score(novel);
        assert!(score > 0.999, "score {score}");
    }

    #[test]
    fn rejects_bad_parameters() {
        let bad = FitParams { vocab_size: 0, ..FitParams::default() };
        assert!(fit(&[LogRecord::from_message("x")], &bad, ModelMeta::default()).unwrap_err().contains("vocabulary"));
        assert!(fit(&[], &FitParams::default(), ModelMeta::default()).unwrap_err().contains("no log lines"));
    }
}
