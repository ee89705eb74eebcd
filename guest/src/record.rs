//! The log record: the unit that is read, scored and reported.

use serde::{Deserialize, Serialize};

/// One log record, as read from journald, a syslog file or stdin.
///
/// Mirrors the WIT `log-record`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When the record was logged, microseconds since the Unix epoch (UTC).
    pub timestamp_us: Option<i64>,
    /// The program or unit that logged it (syslog tag); empty when unknown.
    pub source: String,
    /// The host that logged it; empty when unknown.
    pub host: String,
    /// Syslog severity 0 (emerg) ..= 7 (debug), when known.
    pub priority: Option<u8>,
    /// The message text, without the syslog header.
    pub message: String,
}

impl LogRecord {
    /// A record that is only a message (plain lines, tests).
    pub fn from_message(message: impl Into<String>) -> Self {
        Self { message: message.into(), ..Self::default() }
    }
}
