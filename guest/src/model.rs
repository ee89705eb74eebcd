//! A fitted model: tokenizer settings, vocabulary, autoencoder and
//! calibration, and the one function that turns a record into a raw error.

use crate::calibration::Calibration;
use crate::error::Error;
use crate::features::{Features, Vocabulary, features_of};
use crate::network::{Autoencoder, Reconstruction};
use crate::record::LogRecord;
use crate::tokenizer::Tokenizer;
use serde::{Deserialize, Serialize};

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
}

/// The detector's view of one record: features, reconstruction, raw error.
#[derive(Debug, Clone)]
pub struct Analysis<'a> {
    /// The record's features.
    pub features: Features<'a>,
    /// How the known part reconstructed.
    pub reconstruction: Reconstruction,
    /// Raw error: reconstruction error of the known terms, plus the squared
    /// weight of the unseen ones (which no reconstruction can produce), plus
    /// the severity prior ([`severity_bonus`]).
    pub raw: f64,
    /// The severity prior included in `raw`.
    pub severity: f64,
}

/// Reconstruction error of the known terms plus the squared weight of the
/// unseen ones.
fn raw_error(reconstruction: &Reconstruction, features: &Features) -> f64 {
    reconstruction.total() + f64::from(features.unseen_norm_sq())
}

/// The severity prior added to the raw error of a record whose syslog
/// severity is known: emerg, alert and crit +2.0, err +1.0, warning +0.25,
/// the rest nothing. Records of unknown severity get nothing.
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
        let features = features_of(&self.tokenizer, &self.vocab, record);
        let reconstruction = self.net.reconstruct(&features.known);
        let severity = severity_bonus(record.priority);
        let raw = raw_error(&reconstruction, &features) + severity;
        Analysis { features, reconstruction, raw, severity }
    }

    /// The raw error of a record already turned into features, with its
    /// severity (the trainer calibrates with this, on exactly what `analyse`
    /// computes).
    pub fn raw_error_of(&self, features: &Features, priority: Option<u8>) -> f64 {
        raw_error(&self.net.reconstruct(&features.known), features) + severity_bonus(priority)
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
        model.net.check().map_err(|e| Error::CorruptModel(format!("inconsistent network: {e}")))?;
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
