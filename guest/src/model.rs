//! A fitted model: tokenizer settings, vocabulary, autoencoder and
//! calibration, and the one function that turns a record into a raw error.

use crate::calibration::Calibration;
use crate::error::Error;
use crate::features::{Features, Severity, Vocabulary, featurize, record_terms, severity};
use crate::kinds::Rates;
use crate::network::{Autoencoder, Reconstruction};
use crate::record::LogRecord;
use crate::tokenizer::Tokenizer;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Facts about a model that are not needed to score with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Version number in its data directory (1, 2, ...).
    pub version: u32,
    /// When it was trained, seconds since the Unix epoch.
    pub created_at_unix: i64,
    /// Number of log lines it was trained on.
    pub training_lines: u64,
    /// Fingerprint of the key it is sealed with (see `modelfile::key_fingerprint`).
    pub key_fingerprint: String,
    /// The sources it was trained on, as given to the trainer.
    pub sources: Vec<String>,
    /// Training parameters, for `model info` (name, value).
    pub parameters: Vec<(String, String)>,
}

/// Everything needed to score a record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    /// Descriptive metadata.
    pub meta: ModelMeta,
    /// How messages are split into terms.
    pub tokenizer: Tokenizer,
    /// Known terms and their idf.
    pub vocab: Vocabulary,
    /// The autoencoder over the vocabulary.
    pub net: Autoencoder,
    /// Raw error → score.
    pub calibration: Calibration,
    /// Scores at or above this are anomalous, in [0, 1].
    pub threshold: f64,
    /// How often each kind of line occurred in training (for bursts).
    pub rates: Rates,
}

/// The detector's view of one record: features, reconstruction, raw error.
#[derive(Debug, Clone)]
pub struct Analysis<'a> {
    /// The record's features.
    pub features: Features<'a>,
    /// How the known part reconstructed.
    pub reconstruction: Reconstruction,
    /// Raw error: [`novelty_error`] plus the severity prior
    /// ([`severity_bonus`]).
    pub raw: f64,
    /// The severity prior included in `raw`.
    pub prior: f64,
    /// The severity it was computed from, when known or inferred.
    pub severity: Option<Severity>,
}

/// How much of a line the model cannot explain: `(1 − u)·e + u`, with `u`
/// the unseen share of the line (new terms, which no reconstruction can
/// produce: error 1 per unit of weight) and `e` the reconstruction error of
/// its known part (a unit vector). A line of known terms scores its
/// reconstruction error; a line of new words scores 1, like a line whose
/// known part is reconstructed as badly as a random one; a mixture weighs
/// the two by their shares.
pub fn novelty_error(reconstruction_error: f64, unseen_share: f32) -> f64 {
    let u = f64::from(unseen_share);
    (1.0 - u) * reconstruction_error + u
}

/// The severity prior added to the raw error of a record whose syslog
/// severity is known or inferred ([`severity`]): emerg, alert and crit +2.0,
/// err +1.0, warning +0.25, the rest nothing. Records of unknown severity
/// get nothing.
///
/// Why a fixed prior: an operator wants errors surfaced even when they are
/// frequent (a failing disk logs the same FATAL line all day, and in the
/// unsupervised setting those lines are part of the training data), and
/// novel informational lines (a reboot, a new service) ranked below them.
/// A raw error is the squared distance between unit vectors, so the most
/// unusual line of normal severity stays near 1-2: +2.0 puts a critical
/// line above almost all of them while the reconstruction error still ranks
/// critical lines among themselves.
pub fn severity_bonus(priority: Option<u8>) -> f64 {
    match priority {
        Some(0..=2) => 2.0,
        Some(3) => 1.0,
        Some(4) => 0.25,
        _ => 0.0,
    }
}

impl Model {
    /// Analyses one record.
    pub fn analyse<'a>(&self, record: &'a LogRecord) -> Analysis<'a> {
        let mut terms = Vec::new();
        record_terms(&self.tokenizer, record, &mut terms);
        self.analyse_terms(record.priority, &mut terms)
    }

    /// Analyses a record given as its own severity and its terms
    /// ([`record_terms`], reordered): everything a verdict depends on.
    pub fn analyse_terms<'a>(&self, priority: Option<u8>, terms: &mut [Cow<'a, str>]) -> Analysis<'a> {
        let features = featurize(&self.vocab, terms);
        let severity = severity(priority, terms);
        let reconstruction = self.net.reconstruct(&features.known);
        let prior = severity_bonus(severity.map(|s| s.level));
        let raw = novelty_error(reconstruction.total(), features.unseen_share()) + prior;
        Analysis { features, reconstruction, raw, prior, severity }
    }

    /// The raw error of a record already turned into features: its known
    /// part, unseen share and severity level ([`severity`]). The trainer
    /// calibrates with this, on exactly what `analyse` computes.
    pub fn raw_error_of(&self, known: &[(u32, f32)], unseen_share: f32, severity: Option<u8>) -> f64 {
        novelty_error(self.net.reconstruct(known).total(), unseen_share) + severity_bonus(severity)
    }

    /// The raw error of one record.
    pub fn raw_error(&self, record: &LogRecord) -> f64 {
        self.analyse(record).raw
    }

    /// Serialises the model (the plaintext inside a model file).
    pub fn to_payload(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("serialising a model to memory cannot fail")
    }

    /// Decodes and checks a model from its plaintext payload.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, Error> {
        let mut model: Model = postcard::from_bytes(bytes).map_err(|e| Error::CorruptModel(format!("payload does not decode: {e}")))?;
        // A model sealed with the right key may still be wrong inside (a
        // bug, a crafted file): every length and range scoring relies on is
        // checked here, so it is a clear error, never a trap (issue 10).
        model.net.check().map_err(|e| Error::CorruptModel(format!("inconsistent network: {e}")))?;
        model.vocab.check().map_err(|e| Error::CorruptModel(format!("inconsistent vocabulary: {e}")))?;
        model.calibration.check().map_err(|e| Error::CorruptModel(format!("inconsistent calibration: {e}")))?;
        model.rates.check().map_err(|e| Error::CorruptModel(format!("inconsistent rates: {e}")))?;
        // Up to the year 9999: `info` turns it into a date.
        if !(0..=253_402_300_799).contains(&model.meta.created_at_unix) {
            return Err(Error::CorruptModel(format!("creation time {} is out of range", model.meta.created_at_unix)));
        }
        if model.vocab.len() != model.net.input_len() {
            return Err(Error::CorruptModel(format!(
                "vocabulary has {} terms but the network has {} inputs",
                model.vocab.len(),
                model.net.input_len()
            )));
        }
        if !(0.0..=1.0).contains(&model.threshold) {
            return Err(Error::CorruptModel(format!("threshold {} outside [0, 1]", model.threshold)));
        }
        model.vocab.rebuild_index();
        model.net.prepare();
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn novelty_error_mixes_reconstruction_and_unseen_share() {
        // All known: the reconstruction error; all new: 1, whatever the
        // (empty) known part; in between, a weighted mean.
        assert_eq!(novelty_error(0.02, 0.0), 0.02);
        assert_eq!(novelty_error(0.02, 1.0), 1.0);
        assert!((novelty_error(0.2, 0.5) - 0.6).abs() < 1e-12);
        // More new words, more unusual, when the known part reconstructs well.
        assert!(novelty_error(0.1, 0.3) < novelty_error(0.1, 0.6));
    }

    /// Issue 10: a model with the right key but wrong content is a clear
    /// error, never a panic.
    #[test]
    fn inconsistent_payloads_are_refused() {
        use crate::network::{Activation, Autoencoder};
        use ndarray::{Array1, Array2};
        let vocab = Vocabulary::new(vec!["a".into(), "b".into()], vec![1.0, 2.0], 3.0);
        let mut net = Autoencoder::new(
            Array2::from_elem((2, 2), 0.1),
            Array1::zeros(2),
            Activation::Relu,
            vec![],
            Array2::from_elem((2, 2), 0.2),
            Array1::zeros(2),
        )
        .unwrap();
        net.prepare();
        let mut raws = vec![0.1, 0.2, 0.3];
        let model = Model {
            meta: ModelMeta::default(),
            tokenizer: Tokenizer::default(),
            vocab,
            net,
            calibration: Calibration::fit(&mut raws),
            threshold: 0.9,
            rates: crate::kinds::Rates { usual: vec![(1, 5), (9, 2)], minutes: 60 },
        };
        assert!(Model::from_payload(&model.to_payload()).is_ok());
        let json = serde_json::to_value(&model).unwrap();
        let broken = |edit: &dyn Fn(&mut serde_json::Value), why: &str| {
            let mut j = json.clone();
            edit(&mut j);
            let m: Model = serde_json::from_value(j).unwrap();
            let err = Model::from_payload(&m.to_payload()).unwrap_err();
            assert!(matches!(&err, Error::CorruptModel(msg) if msg.contains(why)), "{why}: {err}");
        };
        broken(&|j| j["vocab"]["idf"] = serde_json::json!([1.0]), "2 terms but 1 idf");
        broken(&|j| j["vocab"]["idf"] = serde_json::json!([1.0, -2.0]), "idf -2");
        broken(&|j| j["vocab"]["terms"] = serde_json::json!(["a", "a"]), "twice");
        broken(&|j| j["calibration"]["points"] = serde_json::json!([]), "no calibration points");
        broken(&|j| j["calibration"]["tail_scale"] = serde_json::json!(0.0), "tail scale");
        broken(&|j| j["calibration"]["points"][0]["below"] = serde_json::json!(2.0), "out of range");
        broken(&|j| j["meta"]["created_at_unix"] = serde_json::json!(i64::MAX), "creation time");
        broken(&|j| j["threshold"] = serde_json::json!(1.5), "threshold");
    }

    #[test]
    fn severity_prior_orders_crit_err_warning_and_ignores_the_rest() {
        assert!(severity_bonus(Some(0)) > severity_bonus(Some(3)));
        assert!(severity_bonus(Some(3)) > severity_bonus(Some(4)));
        assert!(severity_bonus(Some(4)) > 0.0);
        assert_eq!(severity_bonus(Some(6)), 0.0);
        assert_eq!(severity_bonus(None), 0.0);
    }
}
