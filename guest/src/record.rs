//! The log record: the unit that is read, scored and reported.

use crate::error::Error;
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

/// One record of a packed batch (the WIT `packed-records`): its fields, and
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

/// `meta` of a packed record with a priority (in bits 0-7).
const HAS_PRIORITY: u16 = 1 << 8;
/// `meta` of a packed record with a timestamp.
const HAS_TIMESTAMP: u16 = 1 << 9;

impl PackedRecord {
    /// The record's entries in the WIT `packed-records` lists: its three
    /// lengths, its timestamp (0 when it has none) and its `meta`.
    pub fn to_lists(&self) -> ([u32; 3], i64, u16) {
        let meta = self.priority.map_or(0, |p| HAS_PRIORITY | u16::from(p)) | if self.timestamp_us.is_some() { HAS_TIMESTAMP } else { 0 };
        ([self.source_len, self.host_len, self.message_len], self.timestamp_us.unwrap_or(0), meta)
    }

    /// The records of the WIT `packed-records` lists, or why the lists are
    /// not valid: they disagree in length, or a `meta` sets other bits.
    pub fn from_lists<'a>(
        lengths: &'a [u32],
        timestamps: &'a [i64],
        meta: &'a [u16],
    ) -> Result<impl ExactSizeIterator<Item = PackedRecord> + 'a, Error> {
        if lengths.len() != 3 * meta.len() || timestamps.len() != meta.len() {
            return Err(Error::InvalidArgument(format!(
                "packed records: {} lengths, {} timestamps and {} meta entries do not make whole records (3, 1 and 1 each)",
                lengths.len(),
                timestamps.len(),
                meta.len()
            )));
        }
        if let Some(i) = meta.iter().position(|&m| m & !(HAS_PRIORITY | HAS_TIMESTAMP | 0xff) != 0) {
            return Err(Error::InvalidArgument(format!("packed record {i}: its meta {:#x} sets bits other than 0-9", meta[i])));
        }
        Ok(lengths.chunks_exact(3).zip(timestamps).zip(meta).map(|((lengths, &timestamp), &meta)| PackedRecord {
            timestamp_us: (meta & HAS_TIMESTAMP != 0).then_some(timestamp),
            priority: (meta & HAS_PRIORITY != 0).then_some(meta as u8),
            source_len: lengths[0],
            host_len: lengths[1],
            message_len: lengths[2],
        }))
    }
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
    fn packed_records_go_through_the_lists_and_bad_lists_are_refused() {
        let records = [
            PackedRecord { timestamp_us: Some(-5), priority: Some(3), source_len: 1, host_len: 2, message_len: 3 },
            PackedRecord { timestamp_us: None, priority: Some(0), source_len: 0, host_len: 0, message_len: u32::MAX },
            PackedRecord { timestamp_us: Some(0), priority: None, ..PackedRecord::default() },
            PackedRecord::default(),
        ];
        let (mut lengths, mut timestamps, mut meta) = (Vec::new(), Vec::new(), Vec::new());
        for r in &records {
            let (l, t, m) = r.to_lists();
            lengths.extend(l);
            timestamps.push(t);
            meta.push(m);
        }
        assert_eq!(PackedRecord::from_lists(&lengths, &timestamps, &meta).unwrap().collect::<Vec<_>>(), records);
        let refused = |l: &[u32], t: &[i64], m: &[u16]| PackedRecord::from_lists(l, t, m).err().unwrap().to_string();
        assert!(refused(&lengths[1..], &timestamps, &meta).contains("do not make whole records"));
        assert!(refused(&lengths, &timestamps[1..], &meta).contains("do not make whole records"));
        let mut bad = meta.clone();
        bad[2] |= 1 << 10;
        assert!(refused(&lengths, &timestamps, &bad).contains("packed record 2: its meta 0x600"));
    }

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
