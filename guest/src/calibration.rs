//! Calibration: a raw reconstruction error becomes a score in [0, 1] that
//! means the same for every model.
//!
//! The score of a line is the fraction of training lines whose raw error was
//! at most its own, `rank / (N + 1)`, interpolated linearly between up to
//! [`QUANTILES`] + 1 stored quantiles. Past the largest training error it keeps
//! rising, `1 − (1 − p_max) · exp(−(raw − raw_max) / tail_scale)`, so lines more
//! unusual than anything in training still rank above each other instead of
//! all scoring 1. A threshold of 0.999 thus flags about one training-like line
//! in a thousand.

use serde::{Deserialize, Serialize};

/// How many quantiles of the training errors are kept.
pub const QUANTILES: usize = 1000;

/// A fitted mapping from raw error to calibrated score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Raw errors at the stored quantiles, strictly ascending.
    raw: Vec<f64>,
    /// The score at each stored raw error, ascending, `< 1`.
    p: Vec<f64>,
    /// Scale of the exponential tail past the largest training error.
    tail_scale: f64,
}

impl Calibration {
    /// Fits the mapping to the raw errors of the training lines (reordered).
    pub fn fit(raws: &mut [f64]) -> Self {
        // total_cmp orders NaN last; training never yields one, a hand-made model might.
        raws.sort_unstable_by(f64::total_cmp);
        let n = raws.len();
        if n == 0 {
            return Self { raw: vec![0.0], p: vec![0.0], tail_scale: 0.05 };
        }
        let mut raw = Vec::with_capacity(QUANTILES + 1);
        let mut p = Vec::with_capacity(QUANTILES + 1);
        for k in 0..=QUANTILES.min(n - 1) {
            let idx = k * (n - 1) / QUANTILES.min(n - 1).max(1);
            let value = raws[idx];
            // The fraction of lines at or below `value` (ties included).
            let at_or_below = raws.partition_point(|&r| r <= value);
            let score = at_or_below as f64 / (n + 1) as f64;
            if raw.last() == Some(&value) {
                *p.last_mut().unwrap() = score;
            } else {
                raw.push(value);
                p.push(score);
            }
        }
        let top = *raw.last().unwrap();
        let p99 = raws[(n - 1) * 99 / 100];
        let tail_scale = (top - p99).max(0.05);
        Self { raw, p, tail_scale }
    }

    /// The calibrated score of a raw error.
    pub fn score(&self, raw: f64) -> f64 {
        if raw.is_nan() {
            return 1.0;
        }
        let k = self.raw.partition_point(|&r| r <= raw);
        if k == self.raw.len() {
            let (top, p_top) = (self.raw[k - 1], self.p[k - 1]);
            return 1.0 - (1.0 - p_top) * (-(raw - top) / self.tail_scale).exp();
        }
        let (hi, p_hi) = (self.raw[k], self.p[k]);
        let (lo, p_lo) = if k == 0 { (0.0f64.min(hi), 0.0) } else { (self.raw[k - 1], self.p[k - 1]) };
        if hi <= lo {
            return p_lo;
        }
        p_lo + (p_hi - p_lo) * ((raw - lo) / (hi - lo)).clamp(0.0, 1.0)
    }

    /// The raw error at which the score reaches `score` (for reports).
    pub fn raw_at(&self, score: f64) -> f64 {
        let k = self.p.partition_point(|&p| p < score);
        if k == self.p.len() {
            let (top, p_top) = (self.raw[k - 1], self.p[k - 1]);
            return top - self.tail_scale * ((1.0 - score) / (1.0 - p_top)).max(f64::MIN_POSITIVE).ln();
        }
        self.raw[k]
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
        assert!(cal.score(0.0) >= 0.0);
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
    fn ties_score_as_the_whole_tied_mass() {
        let mut raws = vec![0.1; 990];
        raws.extend((0..10).map(|i| 0.5 + i as f64 / 100.0));
        let cal = Calibration::fit(&mut raws);
        assert!((cal.score(0.1) - 990.0 / 1001.0).abs() < 1e-9);
    }

    #[test]
    fn raw_at_inverts_score() {
        let mut raws: Vec<f64> = (0..2000).map(|i| (i as f64 / 2000.0).powi(2)).collect();
        let cal = Calibration::fit(&mut raws);
        for s in [0.3, 0.9, 0.999, 0.99999] {
            assert!((cal.score(cal.raw_at(s)) - s).abs() < 1e-3, "score {s}");
        }
    }
}
