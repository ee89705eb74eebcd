//! The model file: a fitted model, encrypted and authenticated.
//!
//! Layout (integers little-endian):
//!
//! | offset | size | field                                            |
//! |-------:|-----:|--------------------------------------------------|
//! | 0      | 8    | magic `LGRMODEL`                                 |
//! | 8      | 2    | format version ([`FORMAT_VERSION`])              |
//! | 10     | 1    | KDF id (1 = Argon2id)                            |
//! | 11     | 1    | reserved, 0                                      |
//! | 12     | 12   | Argon2 memory (KiB), iterations, parallelism     |
//! | 24     | 16   | random salt                                      |
//! | 40     | 12   | random AES-GCM nonce                             |
//! | 52     | 8    | key check: `SHA-256("logarithm/key-check/v1" ‖ key)[..8]` |
//! | 60     | 8    | key fingerprint ([`key_fingerprint`])            |
//! | 68     | 8    | ciphertext length `n`                            |
//! | 76     | n    | AES-256-GCM ciphertext of the payload (+16-byte tag), header as associated data |
//! | 76+n   | 32   | SHA-256 of everything before it                  |
//!
//! The key is Argon2id(passphrase, salt). The trailing checksum and the key
//! check are not security (GCM is): they let the detector say *which* thing
//! is wrong — a damaged file, a wrong key, or a file altered with care.

use crate::error::Error;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};

/// The data directory's layout, shared by everything that reads it (the
/// native host and trainer, and the Fluent Bit module, which finds the
/// data directory among its preopened directories).
pub mod layout {
    use std::path::{Path, PathBuf};

    /// The file holding the current version number.
    pub const CURRENT: &str = "current";
    /// The generated passphrase (mode 0600).
    pub const KEY: &str = "key";
    /// The passphrase's name among systemd credentials, or as a file next
    /// to a shipper's data directory.
    pub const KEY_CREDENTIAL: &str = "logarithm-key";
    /// Where model versions live.
    pub const MODELS: &str = "models";

    /// The encrypted model file of a version, in `dir`.
    pub fn model_file(dir: &Path, version: u32) -> PathBuf {
        dir.join(MODELS).join(format!("model-{version:06}.lgm"))
    }

    /// The metadata file of a version, in `dir`.
    pub fn meta_file(dir: &Path, version: u32) -> PathBuf {
        dir.join(MODELS).join(format!("model-{version:06}.json"))
    }
}

/// File magic.
pub const MAGIC: &[u8; 8] = b"LGRMODEL";
/// The format version this build writes and reads. It changes whenever a
/// stored model would score differently, not only when the bytes do:
/// version 2 computed the raw error as `(1 − u)·e + u` with severity read
/// from words; version 3 no longer makes the severity a vocabulary term
/// (`pri:N`) and leaves unknown sources out, so an older model's
/// vocabulary and calibration no longer fit and it is refused (retrain with
/// `--retrain-mode full`).
pub const FORMAT_VERSION: u32 = 4;
/// Header length in bytes.
pub const HEADER_LEN: usize = 76;
const TRAILER_LEN: usize = 32;
const KDF_ARGON2ID: u8 = 1;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self { m_cost_kib: 19 * 1024, t_cost: 2, p_cost: 1 }
    }
}

fn derive_key(passphrase: &str, salt: &[u8], kdf: KdfParams) -> Result<[u8; 32], Error> {
    if passphrase.is_empty() {
        return Err(Error::InvalidArgument("the encryption passphrase is empty".into()));
    }
    let params = argon2::Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| Error::CorruptModel(format!("bad key derivation parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| Error::InvalidArgument(format!("key derivation failed: {e}")))?;
    Ok(key)
}

/// The fingerprint stored in a model file's header (hex).
pub fn stored_fingerprint(bytes: &[u8]) -> Option<String> {
    (bytes.len() >= HEADER_LEN && &bytes[..8] == MAGIC).then(|| hex::encode(&bytes[60..68]))
}

fn key_check(key: &[u8; 32]) -> [u8; 8] {
    let digest = Sha256::new().chain_update(b"logarithm/key-check/v1").chain_update(key).finalize();
    digest[..8].try_into().unwrap()
}

/// The fingerprint of a passphrase: the same for every model sealed with it,
/// so an operator can check which key a model needs. It is
/// `SHA-256(Argon2id(passphrase, fixed salt))`, first 8 bytes as hex, which
/// costs a full key derivation to compute (no cheap guessing).
pub fn key_fingerprint(passphrase: &str) -> Result<String, Error> {
    Ok(hex::encode(fingerprint_bytes(passphrase)?))
}

fn fingerprint_bytes(passphrase: &str) -> Result<[u8; 8], Error> {
    let key = derive_key(passphrase, b"logarithm/key-fingerprint/v1", KdfParams::default())?;
    Ok(Sha256::digest(key)[..8].try_into().unwrap())
}

/// Encrypts `payload` into a model file. `salt` and `nonce` must be fresh
/// random bytes for every file (the caller owns the random source, which
/// keeps this crate free of one).
pub fn seal(payload: &[u8], passphrase: &str, salt: [u8; 16], nonce: [u8; 12], kdf: KdfParams) -> Result<Vec<u8>, Error> {
    let key = derive_key(passphrase, &salt, kdf)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + 16 + TRAILER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(FORMAT_VERSION as u16).to_le_bytes());
    out.push(KDF_ARGON2ID);
    out.push(0);
    for v in [kdf.m_cost_kib, kdf.t_cost, kdf.p_cost] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&key_check(&key));
    out.extend_from_slice(&fingerprint_bytes(passphrase)?);
    out.extend_from_slice(&((payload.len() + 16) as u64).to_le_bytes());
    debug_assert_eq!(out.len(), HEADER_LEN);
    let cipher = Aes256Gcm::new((&key).into());
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: payload, aad: &out })
        .map_err(|_| Error::InvalidArgument("payload too large to encrypt".into()))?;
    out.extend_from_slice(&ciphertext);
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    Ok(out)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Checks and decrypts a model file, returning its payload.
pub fn open(bytes: &[u8], passphrase: &str) -> Result<Vec<u8>, Error> {
    let corrupt = |msg: String| Err(Error::CorruptModel(msg));
    if bytes.len() < MAGIC.len() {
        if MAGIC.starts_with(bytes) {
            return corrupt(format!("truncated: {} bytes, shorter than the header", bytes.len()));
        }
        return corrupt("not a Logarithm model file (bad magic)".into());
    }
    if &bytes[..8] != MAGIC {
        return corrupt("not a Logarithm model file (bad magic)".into());
    }
    if bytes.len() < HEADER_LEN {
        return corrupt(format!("truncated: {} bytes, the header alone is {HEADER_LEN}", bytes.len()));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]) as u32;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let ct_len = u64::from_le_bytes(bytes[68..76].try_into().unwrap());
    let expected = (HEADER_LEN as u64).saturating_add(ct_len).saturating_add(TRAILER_LEN as u64);
    if (bytes.len() as u64) < expected {
        return corrupt(format!("truncated: {} bytes, the header declares {expected}", bytes.len()));
    }
    if (bytes.len() as u64) > expected {
        return corrupt(format!("{} bytes of trailing data after the model", bytes.len() as u64 - expected));
    }
    let (body, checksum) = bytes.split_at(bytes.len() - TRAILER_LEN);
    if Sha256::digest(body).as_slice() != checksum {
        return corrupt("checksum mismatch: the file is damaged or was modified".into());
    }
    if bytes[10] != KDF_ARGON2ID {
        return corrupt(format!("unknown key derivation function id {}", bytes[10]));
    }
    let kdf = KdfParams { m_cost_kib: u32_at(bytes, 12), t_cost: u32_at(bytes, 16), p_cost: u32_at(bytes, 20) };
    // Refuse costs no trainer writes, so a crafted header cannot ask for gigabytes.
    if kdf.m_cost_kib > 1 << 20 || kdf.t_cost > 64 || kdf.p_cost > 16 {
        return corrupt(format!("implausible key derivation parameters {kdf:?}"));
    }
    let key = derive_key(passphrase, &bytes[24..40], kdf)?;
    if key_check(&key) != bytes[52..60] {
        return Err(Error::WrongKey { expected: hex::encode(&bytes[60..68]), given: key_fingerprint(passphrase)? });
    }
    let cipher = Aes256Gcm::new((&key).into());
    cipher
        .decrypt(Nonce::from_slice(&bytes[40..52]), Payload { msg: &body[HEADER_LEN..], aad: &body[..HEADER_LEN] })
        .or_else(|_| corrupt("authentication failed: the model was altered".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams { m_cost_kib: 64, t_cost: 1, p_cost: 1 };

    fn sealed() -> Vec<u8> {
        seal(b"secret vocabulary words", "pass phrase", [7; 16], [9; 12], FAST).unwrap()
    }

    #[test]
    fn round_trips_and_hides_the_payload() {
        let file = sealed();
        assert!(!file.windows(6).any(|w| w == b"secret"));
        assert_eq!(open(&file, "pass phrase").unwrap(), b"secret vocabulary words");
    }

    #[test]
    fn wrong_key_is_named() {
        assert!(matches!(open(&sealed(), "other"), Err(Error::WrongKey { .. })));
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_an_error() {
        let file = sealed();
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x40;
            assert!(open(&bad, "pass phrase").is_err(), "flip at {i}");
        }
        for len in 0..file.len() {
            let err = open(&file[..len], "pass phrase").unwrap_err();
            assert!(matches!(err, Error::CorruptModel(_)), "truncated to {len}: {err}");
        }
    }

    #[test]
    fn header_tampering_with_a_fixed_checksum_fails_authentication() {
        let mut file = sealed();
        file[11] = 1; // reserved byte: not used for the key, but authenticated
        let n = file.len() - 32;
        let sum = Sha256::digest(&file[..n]);
        file[n..].copy_from_slice(&sum);
        assert_eq!(open(&file, "pass phrase").unwrap_err(), Error::CorruptModel("authentication failed: the model was altered".into()));
    }

    #[test]
    fn unknown_version_is_reported() {
        let mut file = sealed();
        file[8] = 9;
        assert_eq!(open(&file, "pass phrase").unwrap_err(), Error::UnsupportedVersion(9));
    }
}
