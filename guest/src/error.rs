//! The detector's error type: what can go wrong loading a model or setting it up.

/// Why a model could not be loaded or a setting was refused.
///
/// Each variant maps one-to-one onto the WIT `error` variant, so a host sees
/// the same reason whether it calls the component or the native library.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The passphrase does not derive the key the model was sealed with.
    #[error("wrong encryption key: the model was sealed with key fingerprint {expected}, the key given has fingerprint {given}")]
    WrongKey {
        /// Fingerprint of the key the model expects (hex).
        expected: String,
        /// Fingerprint of the key that was given (hex).
        given: String,
    },
    /// The bytes are not a complete, intact model file.
    #[error("corrupt model: {0}")]
    CorruptModel(String),
    /// The model file's format version is not one this build reads.
    #[error("unsupported model format version {0} (this build reads version {current})", current = crate::modelfile::FORMAT_VERSION)]
    UnsupportedVersion(u32),
    /// A setting was out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
