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

/// What the detector reads of a record, borrowed: a caller that holds the
/// text elsewhere (the component's packed batches) scores without building
/// owned strings. `&LogRecord` converts into it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RecordView<'a> {
    /// As [`LogRecord::timestamp_us`].
    pub timestamp_us: Option<i64>,
    /// As [`LogRecord::source`].
    pub source: &'a str,
    /// As [`LogRecord::priority`].
    pub priority: Option<u8>,
    /// As [`LogRecord::message`].
    pub message: &'a str,
}

impl<'a> From<&'a LogRecord> for RecordView<'a> {
    fn from(r: &'a LogRecord) -> Self {
        Self { timestamp_us: r.timestamp_us, source: &r.source, priority: r.priority, message: &r.message }
    }
}

impl LogRecord {
    /// A record that is only a message (plain lines, tests).
    pub fn from_message(message: impl Into<String>) -> Self {
        Self { message: message.into(), ..Self::default() }
    }
}

/// One record of a packed batch (the WIT `packed-record`): its fields, and
/// the lengths in bytes of its source, host and message, which follow one
/// another in the batch's text.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PackedRecord {
    /// As [`LogRecord::timestamp_us`].
    pub timestamp_us: Option<i64>,
    /// As [`LogRecord::priority`].
    pub priority: Option<u8>,
    /// Bytes of [`LogRecord::source`].
    pub source_len: u32,
    /// Bytes of [`LogRecord::host`].
    pub host_len: u32,
    /// Bytes of [`LogRecord::message`].
    pub message_len: u32,
}

/// Reads the text of packed records (the WIT `packed-records`, a batch's
/// sources, hosts and messages one after another in one string) part by
/// part.
#[derive(Debug)]
pub struct PackedText<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> PackedText<'a> {
    /// Starts at the beginning of `text`.
    pub fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    /// The next `len` bytes, or `None` if they overrun the text or end
    /// inside a character (the packer erred).
    pub fn take(&mut self, len: u32) -> Option<&'a str> {
        let end = self.at.checked_add(len as usize)?;
        let part = self.text.get(self.at..end)?;
        self.at = end;
        Some(part)
    }

    /// Whether every byte has been taken.
    pub fn is_done(&self) -> bool {
        self.at == self.text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_text_is_taken_part_by_part_and_refuses_bad_lengths() {
        let mut text = PackedText::new("sshdhöstmsg");
        assert_eq!(text.take(4), Some("sshd"));
        // "hö" is 3 bytes: 2 would end inside the "ö".
        assert_eq!(text.take(2), None);
        assert_eq!(text.take(5), Some("höst"));
        assert!(!text.is_done());
        assert_eq!(text.take(4), None);
        assert_eq!(text.take(u32::MAX), None);
        assert_eq!(text.take(3), Some("msg"));
        assert!(text.is_done());
        assert_eq!(text.take(0), Some(""));
    }
}
