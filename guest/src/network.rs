//! The autoencoder: a sparse TF-IDF vector is squeezed through a small
//! bottleneck and reconstructed; lines unlike the training data reconstruct
//! badly.
//!
//! Shapes, for a vocabulary of `V` terms and hidden widths `H0 … Hk`:
//! - input layer `w_in: (V, H0)`, `b_in: (H0)`, applied to the sparse input
//!   by summing the rows of its non-zero terms;
//! - dense hidden layers `(H(i), H(i+1))`;
//! - linear output layer `w_out: (V, Hk)`, `b_out: (V)`, `y = w_out · h + b_out`.
//!
//! The squared reconstruction error of a sparse input `x` with support `S`,
//! `‖x − y‖² = Σ_{i∈S} (x_i − y_i)² + (‖y‖² − Σ_{i∈S} y_i²)`, needs `y` only on
//! `S`, because `‖y‖² = hᵀ G h + 2 cᵀ h + ‖b_out‖²` with `G = w_outᵀ w_out` and
//! `c = w_outᵀ b_out` computed once per model. Scoring a line therefore costs
//! `O(|S|·H + H²)`, whatever the vocabulary size.
//!
//! Determinism: the same model must give the same score natively and in the
//! component. So the forward pass is written as plain loops in a fixed order
//! (no matrix-multiply kernel that picks FMA on one target and not the other),
//! `tanh` comes from the pure-Rust `libm` on every target, and the error
//! `‖y‖² − Σ_S y_i²`, a difference of two numbers near 1, is computed in f64.

use ndarray::{Array1, Array2, Zip};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::ops::{Add, Mul};

/// A hidden layer's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `max(0, z)`.
    Relu,
    /// `tanh(z)`.
    Tanh,
}

impl Activation {
    /// Applies the activation in place.
    pub fn apply(self, z: &mut [f32]) {
        match self {
            // Not `f32::max`: in wasm that is a call to `fmaxf` per value
            // (issue 11: it showed in a profile of new lines). The same
            // values: inputs are finite, and a zero's sign cannot change a
            // score (every later use adds it to a bias or squares it).
            Activation::Relu => z.iter_mut().for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 }),
            Activation::Tanh => z.iter_mut().for_each(|v| *v = libm::tanhf(*v)),
        }
    }

    /// The derivative, given the activation's output `a`.
    pub fn derivative_from_output(self, a: f32) -> f32 {
        match self {
            Activation::Relu => {
                if a > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => 1.0 - a * a,
        }
    }
}

/// A dense layer `a = act(h · w + b)`, `w: (inputs, outputs)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dense {
    /// Weights, `(inputs, outputs)`.
    pub w: Array2<f32>,
    /// Biases, `(outputs)`.
    pub b: Array1<f32>,
    /// Non-linearity.
    pub act: Activation,
}

/// The autoencoder's parameters (see the module docs for shapes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Autoencoder {
    /// Input layer weights `(V, H0)`.
    pub w_in: Array2<f32>,
    /// Input layer biases `(H0)`.
    pub b_in: Array1<f32>,
    /// Input layer non-linearity.
    pub act_in: Activation,
    /// Dense hidden layers, `H0 → … → Hk`.
    pub hidden: Vec<Dense>,
    /// Output weights `(V, Hk)`.
    pub w_out: Array2<f32>,
    /// Output biases `(V)`.
    pub b_out: Array1<f32>,
    #[serde(skip)]
    gram: Option<OutputGram>,
}

/// Per-model constants that make the output norm cheap (module docs), f64.
#[derive(Debug, Clone)]
struct OutputGram {
    /// `G`, `(Hk, Hk)`, row-major.
    g: Vec<f64>,
    c: Vec<f64>,
    bb: f64,
}

/// How well one input reconstructs.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstruction {
    /// `(x_i − y_i)²` for each input term, in input order.
    pub term_errors: Vec<f64>,
    /// Error on terms absent from the input: `Σ_{i∉S} y_i²`.
    pub absent_error: f64,
}

impl Reconstruction {
    /// The total squared error `‖x − y‖²` over the known terms.
    pub fn total(&self) -> f64 {
        self.term_errors.iter().sum::<f64>() + self.absent_error
    }
}

impl Autoencoder {
    /// An autoencoder from its parameters; shapes are checked.
    pub fn new(
        w_in: Array2<f32>,
        b_in: Array1<f32>,
        act_in: Activation,
        hidden: Vec<Dense>,
        w_out: Array2<f32>,
        b_out: Array1<f32>,
    ) -> Result<Self, String> {
        let net = Self { w_in, b_in, act_in, hidden, w_out, b_out, gram: None };
        net.check()?;
        Ok(net)
    }

    /// Checks that all shapes agree (a decoded model may be inconsistent).
    pub fn check(&self) -> Result<(), String> {
        let v = self.w_in.nrows();
        let mut width = self.w_in.ncols();
        if self.b_in.len() != width {
            return Err(format!("input bias has {} entries, layer has {width} units", self.b_in.len()));
        }
        for (i, layer) in self.hidden.iter().enumerate() {
            if layer.w.nrows() != width || layer.b.len() != layer.w.ncols() {
                return Err(format!("hidden layer {i} has shape {:?}, expected {width} inputs", layer.w.dim()));
            }
            width = layer.w.ncols();
        }
        if self.w_out.dim() != (v, width) || self.b_out.len() != v {
            return Err(format!("output layer has shape {:?}, expected ({v}, {width})", self.w_out.dim()));
        }
        if self.all_params().any(|p| !p.is_finite()) {
            return Err("non-finite weight".into());
        }
        Ok(())
    }

    fn all_params(&self) -> impl Iterator<Item = &f32> {
        self.w_in
            .iter()
            .chain(self.b_in.iter())
            .chain(self.hidden.iter().flat_map(|l| l.w.iter().chain(l.b.iter())))
            .chain(self.w_out.iter())
            .chain(self.b_out.iter())
    }

    /// Number of input (and output) terms.
    pub fn input_len(&self) -> usize {
        self.w_in.nrows()
    }

    /// Computes the per-model constants of the sparse error; call after the
    /// weights change (decoding a model does it).
    pub fn prepare(&mut self) {
        // Scoring reads the weights and biases as plain slices, row-major.
        for w in [&mut self.w_in, &mut self.w_out].into_iter().chain(self.hidden.iter_mut().map(|l| &mut l.w)) {
            if !w.is_standard_layout() {
                *w = w.as_standard_layout().into_owned();
            }
        }
        for b in [&mut self.b_in].into_iter().chain(self.hidden.iter_mut().map(|l| &mut l.b)) {
            if !b.is_standard_layout() {
                *b = b.as_standard_layout().into_owned();
            }
        }
        let h = self.w_out.ncols();
        let mut g = vec![0.0f64; h * h];
        let mut c = vec![0.0f64; h];
        let mut bb = 0.0f64;
        for (row, &b) in self.w_out.rows().into_iter().zip(&self.b_out) {
            let b = f64::from(b);
            for j in 0..h {
                let wj = f64::from(row[j]);
                c[j] += wj * b;
                for k in j..h {
                    g[j * h + k] += wj * f64::from(row[k]);
                }
            }
            bb += b * b;
        }
        for j in 0..h {
            for k in 0..j {
                g[j * h + k] = g[k * h + j];
            }
        }
        self.gram = Some(OutputGram { g, c, bb });
    }

    /// The first layer applied to a sparse input, `act(Σ x_i · w_in[i] + b_in)`,
    /// into `h`.
    fn input_layer(&self, x: &[(u32, f32)], h: &mut Vec<f32>) {
        h.clear();
        h.extend_from_slice(biases(&self.b_in));
        affine(h, x, weights(&self.w_in));
        self.act_in.apply(h);
    }

    /// The code of the last hidden layer for a sparse input.
    pub fn encode(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let mut scratch = Scratch::default();
        self.encode_into(x, &mut scratch);
        scratch.h
    }

    /// [`Autoencoder::encode`] into `s.h`, with `s`'s vectors reused from
    /// layer to layer.
    fn encode_into(&self, x: &[(u32, f32)], s: &mut Scratch) {
        self.input_layer(x, &mut s.h);
        for layer in &self.hidden {
            nonzero(&s.h, &mut s.units);
            s.next.clear();
            s.next.extend_from_slice(biases(&layer.b));
            affine(&mut s.next, &s.units, weights(&layer.w));
            layer.act.apply(&mut s.next);
            std::mem::swap(&mut s.h, &mut s.next);
        }
    }

    /// The output `y_i` for one term given the non-zero entries of the last
    /// hidden code ([`nonzero`]), in f64.
    pub fn output_at(&self, i: u32, code: &[(u32, f64)]) -> f64 {
        let n = self.w_out.ncols();
        let row = &weights(&self.w_out)[i as usize * n..(i as usize + 1) * n];
        let mut y = f64::from(self.b_out[i as usize]);
        for &(k, hk) in code {
            y += f64::from(row[k as usize]) * hk;
        }
        y
    }

    /// `‖y‖²` for the last hidden code `h`, given as its non-zero entries
    /// `code` ([`nonzero`]), in `O(H²)`, f64; `gh` is room for `Gh`.
    pub fn output_norm_sq(&self, code: &[(u32, f64)], gh: &mut Vec<f64>) -> f64 {
        let gram = self.gram.as_ref().expect("Autoencoder::prepare must run before scoring");
        // `hᵀGh = Σ_j h_j (Gh)_j`, each `(Gh)_j = Σ_k G_jk h_k` summed over k
        // in ascending order. `prepare` mirrors G to the bit, so row k of G
        // is its column k, and `Gh` is `affine` over G's rows (issue 11:
        // this was a third of scoring a new line). Every sum keeps its
        // order, and skips zero units as `nonzero` explains; `quad` starts
        // at +0, so even a zero `linear`'s sign cannot show in
        // `quad + 2·linear`. So the result is the same to the bit.
        gh.clear();
        gh.resize(gram.c.len(), 0.0);
        affine(gh, code, &gram.g);
        let (mut quad, mut linear) = (0.0, 0.0);
        for &(j, hj) in code {
            quad += hj * gh[j as usize];
            linear += gram.c[j as usize] * hj;
        }
        quad + 2.0 * linear + gram.bb
    }

    /// Reconstructs a sparse input and reports its error, without
    /// materialising the dense output.
    ///
    /// An empty input has nothing to rebuild and no error: a record with no
    /// known terms (a blank line, punctuation only) is not unusual for what
    /// the network's output for nothing happens to be. (One of unseen words
    /// only is scored by its unseen share, `model::novelty_error`.)
    pub fn reconstruct(&self, x: &[(u32, f32)]) -> Reconstruction {
        if x.is_empty() {
            return Reconstruction { term_errors: Vec::new(), absent_error: 0.0 };
        }
        SCRATCH.with_borrow_mut(|s| self.reconstruct_with(x, s))
    }

    /// [`Autoencoder::reconstruct`] with the vectors of `s`.
    fn reconstruct_with(&self, x: &[(u32, f32)], s: &mut Scratch) -> Reconstruction {
        self.encode_into(x, s);
        // The code's non-zero entries ([`nonzero`]) in f64, straight from
        // the f32 code (`v != 0` is the same test in both).
        nonzero(&s.h, &mut s.code);
        let code = &s.code;
        let n = self.w_out.ncols();
        let mut term_errors = Vec::with_capacity(x.len());
        let mut on_support = 0.0;
        let mut add = |xi: f32, yi: f64| {
            on_support += yi * yi;
            term_errors.push((f64::from(xi) - yi) * (f64::from(xi) - yi));
        };
        // The outputs on the input's terms, four side by side so that the
        // CPU overlaps their chains of additions; each is the sum
        // `output_at` takes, in the same order.
        let (blocks, rest) = x.as_chunks::<4>();
        for block in blocks {
            let rows = block.map(|(i, _)| &weights(&self.w_out)[i as usize * n..(i as usize + 1) * n]);
            let mut y = block.map(|(i, _)| f64::from(self.b_out[i as usize]));
            let mut add_unit = |&(k, hk): &(u32, f64)| {
                let k = k as usize;
                y[0] += f64::from(rows[0][k]) * hk;
                y[1] += f64::from(rows[1][k]) * hk;
                y[2] += f64::from(rows[2][k]) * hk;
                y[3] += f64::from(rows[3][k]) * hk;
            };
            // Two units a loop turn: each turn checks for interruption, and
            // around that check the four sums go through memory (see `affine`).
            let (pairs, last) = code.as_chunks::<2>();
            for pair in pairs {
                pair.iter().for_each(&mut add_unit);
            }
            last.iter().for_each(&mut add_unit);
            for (&(_, xi), yi) in block.iter().zip(y) {
                add(xi, yi);
            }
        }
        for &(i, xi) in rest {
            add(xi, self.output_at(i, code));
        }
        let absent_error = (self.output_norm_sq(code, &mut s.gh) - on_support).max(0.0);
        Reconstruction { term_errors, absent_error }
    }

    /// The dense output `y` (tests and diagnostics only: `O(V·H)`).
    pub fn decode_dense(&self, x: &[(u32, f32)]) -> Array1<f32> {
        let h = Array1::from(self.encode(x));
        let mut y = self.w_out.dot(&h);
        Zip::from(&mut y).and(&self.b_out).for_each(|y, b| *y += b);
        y
    }
}

/// Vectors the forward pass reuses from one line to the next: allocating
/// and freeing five of them a line was a twentieth of scoring a new line in
/// the component (issue 11).
#[derive(Debug, Default)]
struct Scratch {
    /// The current layer's units, and the next layer's.
    h: Vec<f32>,
    next: Vec<f32>,
    /// The current layer's non-zero units ([`nonzero`]).
    units: Vec<(u32, f32)>,
    /// The last code's non-zero units, in f64, and `Gh`
    /// ([`Autoencoder::output_norm_sq`]).
    code: Vec<(u32, f64)>,
    gh: Vec<f64>,
}

thread_local! {
    /// One per thread: the trainer scores lines on several threads at once.
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// A weight matrix as one row-major slice ([`Autoencoder::prepare`] makes
/// them so): the forward pass is plain loops over slices, not ndarray's
/// per-row `scaled_add`, whose set-up costs more than a row of 16 or 64
/// (issue 11: the hidden layers were a fifth of scoring a new line).
fn weights(w: &Array2<f32>) -> &[f32] {
    w.as_slice().expect("Autoencoder::prepare must run before scoring")
}

/// A layer's biases as one slice ([`Autoencoder::prepare`] makes them so).
fn biases(b: &Array1<f32>) -> &[f32] {
    b.as_slice().expect("Autoencoder::prepare must run before scoring")
}

/// The non-zero entries `(k, h_k)` of a hidden code, in order. ReLU leaves
/// about half of a code at zero, and a zero unit adds ±0 to every sum it
/// enters, which changes no sum: `x + ±0 = x` for every `x` but −0. A sum
/// that starts at +0 never reaches −0, so it is the same to the bit; one
/// that starts at a bias of −0 may end as +0 instead, a sign no score sees
/// (every output is squared or added to a non-zero). So sums over these
/// entries alone give the same scores, to the bit (issue 11: new lines).
/// `code` is cleared and filled (with the values converted to `U`), so
/// that layers reuse one vector.
pub fn nonzero<T, U>(h: &[T], code: &mut Vec<(u32, U)>)
where
    T: Copy + PartialEq + Default,
    U: Copy + Default + From<T>,
{
    // Every entry written, and the count moved past the non-zero ones: no
    // branch and no `push` (with its check for room) per unit, four units
    // a loop turn (issue 11: a turn per unit cost 20 instructions in the
    // component).
    code.clear();
    code.resize(h.len(), (0, U::default()));
    let mut n = 0;
    let mut keep = |k: usize, v: T| {
        code[n] = (k as u32, U::from(v));
        n += usize::from(v != T::default());
    };
    let (quads, rest) = h.as_chunks::<4>();
    for (q, quad) in quads.iter().enumerate() {
        for (j, &v) in quad.iter().enumerate() {
            keep(4 * q + j, v);
        }
    }
    for (j, &v) in rest.iter().enumerate() {
        keep(4 * quads.len() + j, v);
    }
    code.truncate(n);
}

/// `z += Σ a_i · w[i]` over sparse inputs `(i, a_i)`, `w` row-major with
/// `z.len()` columns, `z` holding the biases: each output is its bias plus
/// the inputs' products added in input order, as `z += a_i · w[i]` row by
/// row gives them, to the bit.
///
/// In the component every loop turn checks for interruption (wasmtime's
/// epoch, which the call time limit needs), and around that check Cranelift
/// keeps a loop's running sums in memory. So sixteen outputs are summed side
/// by side (SIMD) across all the inputs, four inputs a loop turn, instead of
/// a turn per output row per input (issue 11: 10,000 new lines, 0.72 → 0.65
/// G instructions).
fn affine<T>(z: &mut [T], inputs: &[(u32, T)], w: &[T])
where
    T: Copy + Add<Output = T> + Mul<Output = T>,
{
    const B: usize = 16;
    let n = z.len();
    let (quads, rest) = inputs.as_chunks::<4>();
    let mut j = 0;
    while j + B <= n {
        let mut sums: [T; B] = z[j..j + B].try_into().expect("B outputs");
        let mut add = |&(i, a): &(u32, T)| {
            let row: &[T; B] = w[i as usize * n + j..][..B].try_into().expect("B weights");
            for (sum, &w) in sums.iter_mut().zip(row) {
                *sum = *sum + a * w;
            }
        };
        for quad in quads {
            quad.iter().for_each(&mut add);
        }
        rest.iter().for_each(&mut add);
        z[j..j + B].copy_from_slice(&sums);
        j += B;
    }
    if j < n {
        for &(i, a) in inputs {
            let row = &w[i as usize * n..(i as usize + 1) * n];
            for (sum, &w) in z[j..].iter_mut().zip(&row[j..]) {
                *sum = *sum + a * w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Autoencoder {
        let v = 7;
        let f = |r: usize, c: usize, s: f32| Array2::from_shape_fn((r, c), |(i, j)| ((i * 31 + j * 17) as f32 * s).sin() * 0.5);
        let mut net = Autoencoder::new(
            f(v, 4, 0.3),
            Array1::from_vec(vec![0.1, -0.1, 0.05, 0.0]),
            Activation::Relu,
            vec![Dense { w: f(4, 3, 0.7), b: Array1::zeros(3), act: Activation::Tanh }],
            f(v, 3, 1.1),
            Array1::from_shape_fn(v, |i| i as f32 * 0.01),
        )
        .unwrap();
        net.prepare();
        net
    }

    #[test]
    fn sparse_error_equals_dense_error() {
        let net = tiny();
        let x = [(1u32, 0.6f32), (4, 0.8)];
        let y = net.decode_dense(&x);
        let mut dense_x = Array1::<f32>::zeros(7);
        for &(i, v) in &x {
            dense_x[i as usize] = v;
        }
        let dense_err = f64::from((&dense_x - &y).mapv(|d| d * d).sum());
        let sparse = net.reconstruct(&x);
        assert!((sparse.total() - dense_err).abs() < 1e-5, "{} vs {dense_err}", sparse.total());
    }

    #[test]
    fn output_norm_is_the_plain_row_by_row_sum_to_the_bit() {
        // Width 20: one block of sixteen (`affine`) and a remainder; zeros (ReLU) are
        // skipped; the sums must still be the plain ones, in their order.
        let (v, n) = (9, 20);
        let w_out = Array2::from_shape_fn((v, n), |(i, j)| ((i * 7 + j * 13) as f32 * 0.37).sin());
        let mut net = Autoencoder::new(
            Array2::zeros((v, n)),
            Array1::zeros(n),
            Activation::Relu,
            vec![],
            w_out,
            Array1::from_shape_fn(v, |i| i as f32 * -0.03),
        )
        .unwrap();
        net.prepare();
        let h: Vec<f64> = (0..n).map(|j| if j % 3 == 1 { 0.0 } else { (j as f64 * 0.61).cos() }).collect();
        let g = &net.gram.as_ref().unwrap().g;
        let mut quad = 0.0;
        for j in 0..n {
            let mut sum = 0.0;
            for k in 0..n {
                sum += g[j * n + k] * h[k];
            }
            quad += h[j] * sum;
        }
        let gram = net.gram.as_ref().unwrap();
        let linear: f64 = gram.c.iter().zip(&h).map(|(c, h)| c * h).sum();
        let plain = quad + 2.0 * linear + gram.bb;
        let mut code = Vec::new();
        nonzero(&h, &mut code);
        assert_eq!(net.output_norm_sq(&code, &mut Vec::new()).to_bits(), plain.to_bits());
        for i in 0..v as u32 {
            let row = net.w_out.row(i as usize);
            let mut y = f64::from(net.b_out[i as usize]);
            for k in 0..n {
                y += f64::from(row[k]) * h[k];
            }
            assert_eq!(net.output_at(i, &code).to_bits(), y.to_bits(), "term {i}");
        }
    }

    #[test]
    fn rejects_inconsistent_shapes() {
        let net = tiny();
        let bad = Autoencoder::new(net.w_in.clone(), net.b_in.clone(), Activation::Relu, vec![], net.w_out.clone(), net.b_out.clone());
        assert!(bad.unwrap_err().contains("output layer"));
    }
}
