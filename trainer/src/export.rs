//! Sealing a fitted model into an encrypted model file and installing it as
//! a new version in the data directory.

use anyhow::{Context, Result};
use logarithm::datadir::DataDir;
use logarithm_detector::model::Model;
use logarithm_detector::modelfile::{self, KdfParams};
use serde::Serialize;
use std::path::PathBuf;

/// The plaintext metadata written next to each model file. It holds no
/// vocabulary term, so it reveals nothing the encryption protects.
#[derive(Debug, Serialize)]
pub struct Metadata<'a> {
    /// Version number.
    pub version: u32,
    /// Training time, RFC 3339.
    pub created_at: String,
    /// Lines trained on.
    pub lines: u64,
    /// Vocabulary size.
    pub vocabulary_size: usize,
    /// The model's threshold.
    pub threshold: f64,
    /// Training parameters.
    pub parameters: &'a [(String, String)],
    /// Sources trained on.
    pub sources: &'a [String],
    /// Fingerprint of the key the model is sealed with.
    pub key_fingerprint: &'a str,
    /// Whether bursts are looked for, and from what (`Rates::describe`).
    pub bursts: String,
}

/// Seals `model` with `passphrase` (fresh random salt and nonce) and installs
/// it as the next version, which becomes current. Returns its path.
pub fn install(data_dir: &DataDir, model: &Model, passphrase: &str) -> Result<PathBuf> {
    let version = model.meta.version;
    let fingerprint_salt = data_dir.fingerprint_salt(true)?;
    let file = modelfile::seal_in(&model.to_payload(), passphrase, rand::random(), rand::random(), KdfParams::default(), fingerprint_salt)
        .context("cannot encrypt the model")?;
    let created = chrono::DateTime::from_timestamp(model.meta.created_at_unix, 0).unwrap_or_default();
    let meta = Metadata {
        version,
        created_at: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        lines: model.meta.training_lines,
        vocabulary_size: model.vocab.len(),
        threshold: model.threshold,
        parameters: &model.meta.parameters,
        sources: &model.meta.sources,
        key_fingerprint: &model.meta.key_fingerprint,
        bursts: model.rates.describe(),
    };
    let json = serde_json::to_vec_pretty(&meta)?;
    data_dir
        .install(version, &file, &json)
        .with_context(|| format!("cannot install model version {version} in {}", data_dir.root().display()))
}
