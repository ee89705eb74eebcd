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
//! | 60     | 16   | fingerprint salt (the data directory's, see [`key_fingerprint`]) |
//! | 76     | 8    | key fingerprint ([`key_fingerprint`])            |
//! | 84     | 8    | ciphertext length `n`                            |
//! | 92     | n    | AES-256-GCM ciphertext of the payload (+16-byte tag), header as associated data |
//! | 92+n   | 32   | SHA-256 of everything before it                  |
//!
//! The key is Argon2id(passphrase, salt). The trailing checksum and the key
//! check are not security (GCM is): they let the detector say *which* thing
//! is wrong — a damaged file, a wrong key, or a file altered with care.
//!
//! A loader reads at most [`MAX_MODEL_BYTES`] ([`read_model_file`]) and
//! accepts only the key derivation costs of [`KdfParams::check`], so a
//! crafted header can neither make it allocate a gigabyte nor run Argon2
//! for a minute.

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
    /// The data directory's random fingerprint salt (hex, not secret).
    pub const FINGERPRINT_SALT: &str = "fingerprint-salt";

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
/// `--retrain-mode full`). Version 4 adds the fingerprint salt to the
/// header (issue 13: a fingerprint made with one fixed salt could be
/// attacked offline once for every deployment) and, to the payload, each
/// kind of line's usual rate per minute (issue 12: bursts). Version 5
/// splits words at dot leaders (`threshold.....0` is `threshold <num>`),
/// so an older model's vocabulary holds terms its lines no longer give.
/// Version 6 was a trial, taken back, that weighed a severity read from
/// words at half; version 7 masks a host name with a port
/// (`bolt.dropbox.com:443` is `<host>`), for the same reason as version 5.
/// Version 8 counts a word outside the vocabulary as the variable part of
/// a kind (`kinds::kind_of`), so the usual rates an older model holds are
/// keyed by kinds this build no longer forms. Version 9 records how many
/// minutes of training the rates come from (`kinds::Rates::minutes`): too
/// few, and bursts are off.
pub const FORMAT_VERSION: u32 = 9;
/// Header length in bytes.
pub const HEADER_LEN: usize = 92;
/// The largest model file a loader reads, bytes (128 MiB). A trained model
/// is about `8·V·H` bytes (V terms, first hidden width H): 5 MB for the
/// default 10,000 terms and H = 64, so this leaves room for 250,000 terms.
pub const MAX_MODEL_BYTES: u64 = 128 << 20;
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

impl KdfParams {
    /// The costs a loader accepts: memory 8 KiB to 64 MiB, 1 to 4
    /// iterations, 1 to 4 lanes (the trainer writes [`KdfParams::default`]).
    /// Anything else is refused before any key derivation, so a crafted
    /// header cannot make a loader spend gigabytes or minutes.
    pub fn check(&self) -> Result<(), Error> {
        let ok = (8..=64 * 1024).contains(&self.m_cost_kib)
            && (1..=4).contains(&self.t_cost)
            && (1..=4).contains(&self.p_cost)
            && self.m_cost_kib >= 8 * self.p_cost;
        if ok {
            Ok(())
        } else {
            Err(Error::CorruptModel(format!(
                "key derivation parameters out of the accepted range (memory 8 KiB to 64 MiB, 1 to 4 iterations, 1 to 4 lanes): {} KiB, {} iterations, {} lanes",
                self.m_cost_kib, self.t_cost, self.p_cost
            )))
        }
    }
}

/// Checks that a model file named (or made current) as `expected` holds
/// that version in its sealed payload. The number in a file's name is not
/// authenticated: an old model copied under a newer number would otherwise
/// pass rollback protection (issue 13). Every face that loads a model by
/// version (the host, the Fluent Bit faces) checks it here.
pub fn check_version(expected: u32, sealed: u32) -> Result<(), String> {
    if sealed == expected {
        return Ok(());
    }
    Err(format!(
        "model version {expected} holds the sealed model version {sealed}: a model file renamed to another version is refused (rollback protection); install models with logarithm-trainer"
    ))
}

/// Reads a model file, refusing one larger than [`MAX_MODEL_BYTES`] before
/// reading it (and never reading more than that, should it grow meanwhile).
/// The error names the path.
pub fn read_model_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the model {}: {e}", path.display()))?;
    let too_big = |len: u64| format!("the model {} is {len} bytes, more than the {MAX_MODEL_BYTES} a model may have", path.display());
    let len = file.metadata().map_err(|e| format!("cannot read the model {}: {e}", path.display()))?.len();
    if len > MAX_MODEL_BYTES {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_MODEL_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read the model {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
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
    has_header(bytes).then(|| hex::encode(&bytes[76..84]))
}

/// The fingerprint salt stored in a model file's header.
pub fn stored_fingerprint_salt(bytes: &[u8]) -> Option<[u8; 16]> {
    has_header(bytes).then(|| bytes[60..76].try_into().unwrap())
}

fn has_header(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && &bytes[..8] == MAGIC && u16::from_le_bytes([bytes[8], bytes[9]]) as u32 == FORMAT_VERSION
}

fn key_check(key: &[u8; 32]) -> [u8; 8] {
    let digest = Sha256::new().chain_update(b"logarithm/key-check/v1").chain_update(key).finalize();
    digest[..8].try_into().unwrap()
}

/// The fingerprint of a passphrase in one data directory: the same for
/// every model sealed with it there, so an operator can check which key a
/// model needs (`-P`). It is
/// `SHA-256(Argon2id(passphrase, "logarithm/key-fingerprint/v2" ‖ salt))`,
/// first 8 bytes as hex, where `salt` is the data directory's own random
/// fingerprint salt: a guess costs a full key derivation, and a table of
/// guesses made for one deployment is worth nothing for another.
pub fn key_fingerprint(passphrase: &str, salt: &[u8; 16]) -> Result<String, Error> {
    Ok(hex::encode(fingerprint_bytes(passphrase, salt)?))
}

fn fingerprint_bytes(passphrase: &str, salt: &[u8; 16]) -> Result<[u8; 8], Error> {
    let mut full = b"logarithm/key-fingerprint/v2".to_vec();
    full.extend_from_slice(salt);
    let key = derive_key(passphrase, &full, KdfParams::default())?;
    Ok(Sha256::digest(key)[..8].try_into().unwrap())
}

/// Encrypts `payload` into a model file whose fingerprint is salted with
/// the model's own `salt`, for models that live outside a data directory
/// (benchmarks, evaluation); see [`seal_in`].
pub fn seal(payload: &[u8], passphrase: &str, salt: [u8; 16], nonce: [u8; 12], kdf: KdfParams) -> Result<Vec<u8>, Error> {
    seal_in(payload, passphrase, salt, nonce, kdf, salt)
}

/// Encrypts `payload` into a model file. `salt` and `nonce` must be fresh
/// random bytes for every file (the caller owns the random source, which
/// keeps this crate free of one); `fingerprint_salt` is the data
/// directory's (see [`key_fingerprint`]).
pub fn seal_in(
    payload: &[u8],
    passphrase: &str,
    salt: [u8; 16],
    nonce: [u8; 12],
    kdf: KdfParams,
    fingerprint_salt: [u8; 16],
) -> Result<Vec<u8>, Error> {
    kdf.check()?;
    if (payload.len() + HEADER_LEN + 16 + TRAILER_LEN) as u64 > MAX_MODEL_BYTES {
        return Err(Error::InvalidArgument(format!(
            "the model is {} bytes, more than the {MAX_MODEL_BYTES} a model may have",
            payload.len()
        )));
    }
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
    out.extend_from_slice(&fingerprint_salt);
    out.extend_from_slice(&fingerprint_bytes(passphrase, &fingerprint_salt)?);
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
    // The version first: an older, shorter header is "retrain", not "truncated".
    if bytes.len() >= 10 {
        let version = u16::from_le_bytes([bytes[8], bytes[9]]) as u32;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
    }
    if bytes.len() < HEADER_LEN {
        return corrupt(format!("truncated: {} bytes, the header alone is {HEADER_LEN}", bytes.len()));
    }
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return corrupt(format!("{} bytes, more than the {MAX_MODEL_BYTES} a model may have", bytes.len()));
    }
    let ct_len = u64::from_le_bytes(bytes[84..92].try_into().unwrap());
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
    // Costs no trainer writes are refused before any work, so a crafted
    // header cannot ask for gigabytes or minutes.
    kdf.check()?;
    let key = derive_key(passphrase, &bytes[24..40], kdf)?;
    if key_check(&key) != bytes[52..60] {
        let fingerprint_salt: [u8; 16] = bytes[60..76].try_into().unwrap();
        return Err(Error::WrongKey { expected: hex::encode(&bytes[76..84]), given: key_fingerprint(passphrase, &fingerprint_salt)? });
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
        file[8] = 99;
        assert_eq!(open(&file, "pass phrase").unwrap_err(), Error::UnsupportedVersion(99));
    }

    /// Rewrites the header field at `at` and fixes the checksum, as a
    /// careful attacker would.
    fn crafted(at: usize, value: &[u8]) -> Vec<u8> {
        let mut file = sealed();
        file[at..at + value.len()].copy_from_slice(value);
        let n = file.len() - 32;
        let sum = Sha256::digest(&file[..n]);
        file[n..].copy_from_slice(&sum);
        file
    }

    /// Issue 10: a crafted header cannot make a loader allocate gigabytes or
    /// run the key derivation for long; it is refused before any of it.
    #[test]
    fn crafted_costs_and_lengths_are_refused_at_once() {
        let started = std::time::Instant::now();
        for (at, value) in [
            (12, (4u32 << 20).to_le_bytes()), // 4 GiB of memory
            (12, 65537u32.to_le_bytes()),     // just over 64 MiB
            (16, 1000u32.to_le_bytes()),      // 1000 iterations
            (16, 0u32.to_le_bytes()),
            (20, 64u32.to_le_bytes()), // 64 lanes
        ] {
            let err = open(&crafted(at, &value), "pass phrase").unwrap_err();
            assert!(err.to_string().contains("out of the accepted range"), "{at}: {err}");
        }
        let err = open(&crafted(84, &u64::MAX.to_le_bytes()), "pass phrase").unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(seal(b"x", "k", [0; 16], [0; 12], KdfParams { m_cost_kib: 1 << 20, t_cost: 1, p_cost: 1 }).is_err());
    }

    #[test]
    fn an_oversized_file_is_refused_before_it_is_read() {
        let dir = std::env::temp_dir().join(format!("logarithm-modelfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.lgm");
        // Sparse: costs no disk, and the reader must not allocate it either.
        std::fs::File::create(&path).unwrap().set_len(MAX_MODEL_BYTES + 1).unwrap();
        let err = read_model_file(&path).unwrap_err();
        assert!(err.contains("big.lgm") && err.contains("more than"), "{err}");
        std::fs::write(&path, sealed()).unwrap();
        assert_eq!(read_model_file(&path).unwrap(), sealed());
        assert!(read_model_file(&dir.join("none")).unwrap_err().contains("none"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 13: the fingerprint depends on the data directory's salt, so a
    /// table of guesses is good for one deployment only; within one it is
    /// the same for every model (what `-P` checks).
    #[test]
    fn fingerprint_is_salted_per_data_directory() {
        let a = key_fingerprint("pw", &[1; 16]).unwrap();
        assert_eq!(a.len(), 16);
        assert_eq!(a, key_fingerprint("pw", &[1; 16]).unwrap());
        assert_ne!(a, key_fingerprint("pw", &[2; 16]).unwrap());
        assert_ne!(a, key_fingerprint("pv", &[1; 16]).unwrap());
        let m1 = seal_in(b"one", "pw", [3; 16], [4; 12], FAST, [1; 16]).unwrap();
        let m2 = seal_in(b"two", "pw", [5; 16], [6; 12], FAST, [1; 16]).unwrap();
        assert_eq!(stored_fingerprint(&m1).unwrap(), a);
        assert_eq!(stored_fingerprint(&m2).unwrap(), a);
        assert_eq!(stored_fingerprint_salt(&m1).unwrap(), [1; 16]);
        match open(&m1, "other") {
            Err(Error::WrongKey { expected, given }) => {
                assert_eq!(expected, a);
                assert_eq!(given, key_fingerprint("other", &[1; 16]).unwrap());
            }
            other => panic!("{other:?}"),
        }
    }
}
