//! Calibration: a raw reconstruction error becomes a score in [0, 1] that
//! means the same for every model.
//!
//! The score of a line is the fraction of training lines that were strictly
//! less unusual (lower raw error), `#{r_train < r} / (N + 1)`. The stored
//! training errors are [`QUANTILES`] + 1 quantiles plus every distinct error
//! of the top 1% (at most [`TAIL_POINTS`]); between them it is interpolated linearly;
//! a line tied with a stored error (to a relative `1e-6`, so native and wasm
//! rounding agree) gets exactly that error's score. Past the largest training
//! error it keeps rising, `1 − (1 − N/(N+1)) / (1 + (r − r_max) / tail_scale)`,
//! a heavy (generalised Pareto, shape 1) tail: lines more unusual than
//! anything in training still rank among themselves, however far out they
//! are, and no finite error scores exactly 1. (An exponential tail rounded
//! every line a few scales out to 1.0 in `f64`, so a new segfault and a
//! new kernel panic tied.)
//!
//! So a threshold of 0.999 flags at most one training line in a thousand,
//! and flags every line more unusual than all of them.

use serde::{Deserialize, Serialize};

/// How many quantiles of the training errors are kept.
pub const QUANTILES: usize = 1000;

/// Up to this many of the largest training errors are all kept, because
/// thresholds live in the tail, where quantiles are too coarse.
pub const TAIL_POINTS: usize = 4000;

/// Relative tolerance under which two raw errors are the same.
const TIE_TOLERANCE: f64 = 1e-6;

/// One stored training error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Point {
    /// The raw error.
    raw: f64,
    /// Fraction of training lines strictly below it, `/(N + 1)`.
    below: f64,
    /// Fraction of training lines at or below it, `/(N + 1)`.
    at_or_below: f64,
}

/// A fitted mapping from raw error to calibrated score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Stored errors, strictly ascending.
    points: Vec<Point>,
    /// Scale of the tail past the largest training error.
    tail_scale: f64,
}

fn tolerance(raw: f64) -> f64 {
    // Not `f64::max`, which in wasm is a call to wasi-libc's `fmax`
    // at every step of a score's binary search (issue 11). The same value
    // for every input, NaN included (a comparison with NaN is false).
    let magnitude = raw.abs();
    TIE_TOLERANCE * if magnitude > 1e-3 { magnitude } else { 1e-3 }
}

impl Calibration {
    /// Fits the mapping to the raw errors of the training lines (reordered).
    pub fn fit(raws: &mut [f64]) -> Self {
        if raws.is_empty() {
            return Self { points: vec![Point { raw: 0.0, below: 0.0, at_or_below: 0.0 }], tail_scale: 0.05 };
        }
        // total_cmp orders NaN last; training never yields one, a hand-made model might.
        raws.sort_unstable_by(f64::total_cmp);
        let tail = tail_len(raws.len() as u64);
        let top = &raws[raws.len() - tail..];
        let mut counter = PointCounter::new(candidate_points(raws, top));
        for &r in raws.iter() {
            counter.add(r, 1);
        }
        counter.finish(tail_scale(raws))
    }

    /// Checks what scoring relies on (a decoded model may be inconsistent):
    /// at least one point, raw errors finite and strictly ascending,
    /// fractions in [0, 1] and not descending, a positive finite tail scale.
    pub fn check(&self) -> Result<(), String> {
        if self.points.is_empty() {
            return Err("no calibration points".into());
        }
        if !(self.tail_scale.is_finite() && self.tail_scale > 0.0) {
            return Err(format!("tail scale {} is not a positive number", self.tail_scale));
        }
        let fraction = |f: f64| (0.0..=1.0).contains(&f);
        for (i, p) in self.points.iter().enumerate() {
            if !p.raw.is_finite() || !fraction(p.below) || !fraction(p.at_or_below) || p.below > p.at_or_below {
                return Err(format!("calibration point {i} is out of range"));
            }
        }
        if self.points.windows(2).any(|w| w[0].raw >= w[1].raw || w[0].below > w[1].below) {
            return Err("calibration points are not ascending".into());
        }
        Ok(())
    }

    /// The calibrated score of a raw error.
    pub fn score(&self, raw: f64) -> f64 {
        if raw.is_nan() {
            return 1.0;
        }
        let k = self.points.partition_point(|p| p.raw + tolerance(p.raw) < raw);
        if k == self.points.len() {
            let top = self.points[k - 1];
            return 1.0 - (1.0 - top.at_or_below) / (1.0 + (raw - top.raw) / self.tail_scale);
        }
        let hi = self.points[k];
        if raw >= hi.raw - tolerance(hi.raw) {
            return hi.below;
        }
        let (lo_raw, lo_p) = if k == 0 { (0.0f64.min(raw), 0.0) } else { (self.points[k - 1].raw, self.points[k - 1].at_or_below) };
        if hi.raw <= lo_raw {
            return lo_p;
        }
        lo_p + (hi.below - lo_p) * ((raw - lo_raw) / (hi.raw - lo_raw)).clamp(0.0, 1.0)
    }
}

/// How many of the largest errors are stored exactly for `n` training lines.
pub fn tail_len(n: u64) -> usize {
    ((n / 100 + 1) as usize).min(TAIL_POINTS).min(n as usize)
}

/// The scale of the tail, from a sorted sample of raw errors.
pub fn tail_scale(sorted_sample: &[f64]) -> f64 {
    match sorted_sample {
        [] => 0.05,
        s => (s[s.len() - 1] - s[(s.len() - 1) * 99 / 100]).max(0.05),
    }
}

/// The raw errors to store: [`QUANTILES`] + 1 quantiles of a sorted
/// `sample` of the training errors plus the exact largest errors `top`,
/// ascending, ties (to the tolerance) merged.
pub fn candidate_points(sorted_sample: &[f64], top: &[f64]) -> Vec<f64> {
    let n = sorted_sample.len();
    let mut points: Vec<f64> = top.to_vec();
    if n > 0 {
        let steps = QUANTILES.min(n - 1).max(1);
        points.extend((0..=steps).map(|k| sorted_sample[k * (n - 1) / steps]));
    }
    points.sort_unstable_by(f64::total_cmp);
    let mut merged: Vec<f64> = Vec::with_capacity(points.len());
    for p in points {
        if merged.last().is_none_or(|&last| p - last > tolerance(last)) {
            merged.push(p);
        }
    }
    merged
}

/// Counts, for each stored point, the training errors strictly below it and
/// at or below it, from errors streamed in any order (each with a count), so
/// a calibration can be fitted without holding every error in memory.
#[derive(Debug, Clone)]
pub struct PointCounter {
    points: Vec<f64>,
    below: Vec<u64>,
    at_or_below: Vec<u64>,
    n: u64,
}

impl PointCounter {
    /// A counter for `points` (ascending, from [`candidate_points`]).
    pub fn new(points: Vec<f64>) -> Self {
        let len = points.len() + 1;
        Self { points, below: vec![0; len], at_or_below: vec![0; len], n: 0 }
    }

    /// Adds `count` training lines with raw error `raw`.
    pub fn add(&mut self, raw: f64, count: u64) {
        // Difference arrays: the error counts for every point from the first
        // one it lies below (resp. at or below) onwards.
        let k = self.points.partition_point(|&p| raw >= p - tolerance(p));
        let j = self.points.partition_point(|&p| raw > p + tolerance(p));
        self.below[k] += count;
        self.at_or_below[j] += count;
        self.n += count;
    }

    /// The calibration.
    pub fn finish(self, tail_scale: f64) -> Calibration {
        if self.points.is_empty() || self.n == 0 {
            return Calibration { points: vec![Point { raw: 0.0, below: 0.0, at_or_below: 0.0 }], tail_scale: tail_scale.max(0.05) };
        }
        let denominator = (self.n + 1) as f64;
        let (mut below, mut at) = (0u64, 0u64);
        let points = self
            .points
            .iter()
            .enumerate()
            .map(|(i, &raw)| {
                below += self.below[i];
                at += self.at_or_below[i];
                Point { raw, below: below as f64 / denominator, at_or_below: at as f64 / denominator }
            })
            .collect();
        Calibration { points, tail_scale }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_the_fraction_of_training_lines_below() {
        let mut raws: Vec<f64> = (0..10_000).map(|i| i as f64 / 10_000.0).collect();
        let cal = Calibration::fit(&mut raws);
        assert!((cal.score(0.5) - 0.5).abs() < 0.002);
        assert!((cal.score(0.99) - 0.99).abs() < 0.002);
        assert_eq!(cal.score(0.0), 0.0);
        // More unusual than every training line: above N/(N+1).
        assert!(cal.score(1.0) > 10_000.0 / 10_001.0);
    }

    #[test]
    fn scores_are_monotone_in_0_1_and_keep_rising_past_training() {
        let mut raws: Vec<f64> = (0..500).map(|i| ((i % 37) as f64).sqrt() / 10.0).collect();
        let cal = Calibration::fit(&mut raws);
        let mut last = -1.0;
        for i in 0..400 {
            let s = cal.score(i as f64 / 100.0);
            assert!((0.0..=1.0).contains(&s));
            assert!(s >= last);
            last = s;
        }
        assert!(cal.score(1.5) > cal.score(1.0));
        assert!(cal.score(1.5) < 1.0);
    }

    #[test]
    fn far_beyond_training_scores_still_rank_and_stay_below_1() {
        let mut raws: Vec<f64> = (0..5000).map(|i| 0.01 + (i % 50) as f64 * 1e-4).collect();
        let cal = Calibration::fit(&mut raws);
        let far: Vec<f64> = [1.0, 2.0, 3.0, 50.0, 1e6].iter().map(|&r| cal.score(r)).collect();
        assert!(far.windows(2).all(|w| w[0] < w[1]), "{far:?}");
        assert!(far.iter().all(|&s| s > 5000.0 / 5001.0 && s < 1.0), "{far:?}");
    }

    #[test]
    fn tied_lines_score_as_the_lines_strictly_below_them() {
        // 990 common lines, then 10 rarer ones that share the top error.
        let mut raws = vec![0.1; 990];
        raws.extend([0.7; 10]);
        let cal = Calibration::fit(&mut raws);
        assert_eq!(cal.score(0.1), 0.0);
        assert!((cal.score(0.7) - 990.0 / 1001.0).abs() < 1e-9);
        // A rounding difference (wasm vs native) is still a tie.
        assert!((cal.score(0.7 * (1.0 + 1e-9)) - 990.0 / 1001.0).abs() < 1e-9);
        assert!(cal.score(0.71) > 1000.0 / 1001.0);
        // Between two stored errors the score climbs from one to the other.
        let mid = cal.score(0.4);
        assert!(mid > 990.0 / 1001.0 - 1e-9 && mid < 990.0 / 1001.0 + 1e-9, "{mid}");
    }

    #[test]
    fn the_tail_is_exact() {
        // 100k lines: the top 1% are all kept, so every tail line's score is
        // exactly the fraction of lines below it.
        let raws: Vec<f64> = (0..100_000).map(|i| (i as f64 / 1000.0).exp()).collect();
        let mut copy = raws.clone();
        let cal = Calibration::fit(&mut copy);
        for i in [99_000usize, 99_500, 99_900, 99_990] {
            assert!((cal.score(raws[i]) - i as f64 / 100_001.0).abs() < 1e-9, "line {i}");
        }
    }
}
