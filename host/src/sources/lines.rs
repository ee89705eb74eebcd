//! Reading lines from a byte stream: CRLF endings stripped, invalid UTF-8
//! replaced (never dropped), lines longer than the cap cut there, on a
//! character boundary, and marked `truncated` (the rest of the line is
//! skipped), and a partial last line kept until it is completed. A reader
//! may keep lines that start a JSON object whole up to a higher bound
//! ([`LineReader::keeping_objects_whole`]), so that a long record is still
//! read as a record, its fields cut after. The reader counts bytes, so
//! every line knows the offset just after it (its checkpoint). Only LF ends
//! a line (as for rsyslog, Fluent Bit's `tail` and Vector): a lone CR does
//! not.

use std::io::{self, BufRead};

/// One line as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// The text (lossy UTF-8, no line ending): at most the cap's bytes
    /// before replacement, or, when the reader keeps objects whole and the
    /// line starts one, up to that bound (the reader of records cuts it).
    pub text: String,
    /// The line was longer than the cap: it was cut (at the cap, or at the
    /// bound of an object kept whole), or kept whole past the cap.
    pub truncated: bool,
    /// Offset just after the line (and its newline) in the stream.
    pub end_offset: u64,
}

/// Reads capped lines from a buffered stream.
pub struct LineReader<R> {
    reader: R,
    max: usize,
    /// The cap of a line that starts a JSON object (at least `max`).
    objects_max: usize,
    buf: Vec<u8>,
    dropped: usize,
    /// A CR read just past the cap, not yet known to be the CR of a CRLF
    /// ending (then the line is whole) or the first byte cut.
    held_cr: bool,
    /// Offset of the next byte the reader will consume.
    consumed: u64,
}

impl<R: BufRead> LineReader<R> {
    /// A reader of `reader`, which is at byte `offset` of its stream.
    pub fn new(reader: R, offset: u64, max_line_bytes: usize) -> Self {
        let max = max_line_bytes.max(1);
        Self { reader, max, objects_max: max, buf: Vec::new(), dropped: 0, held_cr: false, consumed: offset }
    }

    /// Keeps a line longer than the cap whole, up to `bound` bytes, when it
    /// starts a JSON object (`{`, after a byte-order mark): cut at the cap,
    /// it would no longer parse, and its record would lose its host, source
    /// and severity. Such a line is returned `truncated` with its whole
    /// text, which the reader of records parses and then cuts.
    pub fn keeping_objects_whole(mut self, bound: usize) -> Self {
        self.objects_max = bound.max(self.max);
        self
    }

    /// The next complete line, or `None` when none is available now. With
    /// `flush_partial`, a partial last line at end of input is returned as a
    /// line (end of a file read once, end of stdin, a rotated file).
    pub fn next_line(&mut self, flush_partial: bool) -> io::Result<Option<RawLine>> {
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if flush_partial && self.has_partial() {
                    return Ok(Some(self.take_line()));
                }
                return Ok(None);
            }
            let (chunk, ends_line) = match available.iter().position(|&b| b == b'\n') {
                Some(pos) => (&available[..pos], true),
                None => (available, false),
            };
            // In two steps when the line reaches the cap in this chunk: its
            // start then tells whether it is an object, kept whole.
            let mut keep = 0;
            loop {
                let room = cap(self.max, self.objects_max, &self.buf, self.dropped).saturating_sub(self.buf.len());
                let more = (chunk.len() - keep).min(room);
                if more == 0 {
                    break;
                }
                self.buf.extend_from_slice(&chunk[keep..keep + more]);
                keep += more;
            }
            let rest = &chunk[keep..];
            if self.dropped == 0 && !self.held_cr && rest == b"\r" {
                // The text fills the cap exactly; a CRLF ending is no cut.
                self.held_cr = true;
            } else if !rest.is_empty() {
                self.dropped += rest.len() + usize::from(std::mem::take(&mut self.held_cr));
            }
            let consumed = chunk.len() + usize::from(ends_line);
            self.reader.consume(consumed);
            self.consumed += consumed as u64;
            if ends_line {
                return Ok(Some(self.take_line()));
            }
        }
    }

    /// True when bytes of an unfinished line are held.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.dropped > 0 || self.held_cr
    }

    /// Offset just after the last complete line returned (where a restart
    /// must resume: a held partial line is read again).
    pub fn line_offset(&self) -> u64 {
        self.consumed - (self.buf.len() + self.dropped + usize::from(self.held_cr)) as u64
    }

    fn take_line(&mut self) -> RawLine {
        if self.dropped > 0 {
            // The cut may have split a character: its first bytes go with
            // the rest of the line, rather than become a U+FFFD of their own.
            let whole = whole_chars(&self.buf);
            self.dropped += self.buf.len() - whole;
            self.buf.truncate(whole);
        } else if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let truncated = self.dropped > 0 || self.buf.len() > self.max;
        let text = match String::from_utf8(std::mem::take(&mut self.buf)) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        self.dropped = 0;
        self.held_cr = false;
        RawLine { text, truncated, end_offset: self.consumed }
    }
}

/// How many bytes the line that starts with `buf` may keep: `max`, or
/// `objects_max` once it is known to start an object (or too short to
/// tell, inside a byte-order mark) and nothing of it was skipped yet.
fn cap(max: usize, objects_max: usize, buf: &[u8], dropped: usize) -> usize {
    if objects_max > max && dropped == 0 && buf.len() >= max && may_start_object(buf) { objects_max } else { max }
}

/// Whether a line starting with `start` may be a JSON object, as the
/// record mapping reads one (`parse::parse_text`): `{`, after a byte-order
/// mark; also a part of the mark, too short to tell.
fn may_start_object(start: &[u8]) -> bool {
    const BOM: &[u8] = "\u{feff}".as_bytes();
    match start.strip_prefix(BOM) {
        Some(rest) => rest.first().is_none_or(|&b| b == b'{'),
        None => start.first() == Some(&b'{') || BOM.starts_with(start),
    }
}

/// The length of `bytes` without the first bytes of a character that a
/// cut left unfinished at their end. Bytes that are not UTF-8 anyway are
/// kept (to be replaced, as in any line).
pub fn whole_chars(bytes: &[u8]) -> usize {
    // A character is at most 4 bytes: an unfinished one, at most 3.
    let tail = &bytes[bytes.len().saturating_sub(3)..];
    let Some(start) = tail.iter().rposition(|&b| b & 0xC0 != 0x80) else { return bytes.len() };
    match std::str::from_utf8(&tail[start..]) {
        // The input ended inside the character: it was cut there.
        Err(e) if e.error_len().is_none() => bytes.len() - tail.len() + start,
        _ => bytes.len(),
    }
}

impl<R: io::Read> LineReader<io::BufReader<R>> {
    /// True when a whole line is already buffered, so that the next
    /// [`LineReader::next_line`] will not wait for input.
    pub fn has_buffered_line(&self) -> bool {
        self.reader.buffer().contains(&b'\n')
    }

    /// What it reads: a file, to look at without moving its offset
    /// (`fstat`, positional reads), so that a followed file costs one
    /// descriptor, not two.
    pub fn source(&self) -> &R {
        self.reader.get_ref()
    }
}

impl<R: io::Read + io::Seek> LineReader<io::BufReader<R>> {
    /// Forgets any partial line and what is buffered, and reads again from
    /// `offset` (0: a file truncated in place).
    pub fn restart_at(&mut self, offset: u64) -> io::Result<()> {
        io::Seek::seek(&mut self.reader, io::SeekFrom::Start(offset))?;
        self.buf.clear();
        self.dropped = 0;
        self.held_cr = false;
        self.consumed = offset;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<RawLine> {
        let mut r = LineReader::new(input, 0, max);
        std::iter::from_fn(|| r.next_line(true).unwrap()).collect()
    }

    #[test]
    fn crlf_missing_newline_invalid_utf8_and_offsets() {
        let got = lines(b"a\r\nb\xff\xfec\nlast", 100);
        let texts: Vec<_> = got.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a", "b\u{fffd}\u{fffd}c", "last"]);
        assert_eq!(got.iter().map(|l| l.end_offset).collect::<Vec<_>>(), [3, 8, 12]);
    }

    #[test]
    fn long_lines_are_cut_and_marked_and_the_next_line_survives() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nnext\n");
        let got = lines(&input, 1000);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].text.len(), got[0].truncated, got[0].end_offset), (1000, true, 10_001));
        assert_eq!((got[1].text.as_str(), got[1].truncated), ("next", false));
    }

    /// Review: `--max-line-bytes 1` on `🔥🔥🔥` gave a message of U+FFFD.
    /// A cut falls on a character boundary; a cap smaller than the first
    /// character keeps nothing of it. Invalid bytes before the cut are
    /// still replaced, as in any line.
    #[test]
    fn a_cut_falls_on_a_character_boundary() {
        for (max, kept) in [(1, ""), (3, ""), (4, "🔥"), (7, "🔥"), (8, "🔥🔥"), (100, "🔥🔥🔥")] {
            let got = lines("🔥🔥🔥\nnext\n".as_bytes(), max);
            assert_eq!(got[0].text, kept, "cap {max}");
            assert_eq!(got[0].truncated, max < 12, "cap {max}");
            assert_eq!(got[0].end_offset, 13, "the whole line consumed at cap {max}");
            assert_eq!(got[1].text, if max >= 4 { "next" } else { &"next"[..max] }, "cap {max}");
        }
        assert_eq!(lines("aé日".as_bytes(), 5)[0].text, "aé", "cut inside a 3-byte character");
        assert_eq!(lines(b"a\xff\xe6\x97", 3)[0].text, "a\u{fffd}", "an invalid byte stays replaced");
        assert_eq!(lines(b"ab\xff\xff\xff\xff", 4)[0].text, "ab\u{fffd}\u{fffd}", "not mistaken for a cut character");
        // A cut that falls on a CR keeps it: the line did not end there.
        assert_eq!(lines(b"ab\rcd\n", 3)[0].text, "ab\r");
        // A CRLF line of exactly the cap is whole: its CR ends it.
        for (max, text, truncated) in [(3, "abc", true), (4, "abcd", false), (5, "abcd", false)] {
            let got = lines(b"abcd\r\nnext\r\n", max);
            assert_eq!((got[0].text.as_str(), got[0].truncated, got[0].end_offset), (text, truncated, 6), "cap {max}");
            assert_eq!((got[1].text.as_str(), got[1].truncated), (&"next"[..max.min(4)], max < 4), "cap {max}");
        }
        // The same when the CR comes in a read of its own; a CR followed by
        // more text is a cut.
        for (input, truncated, offset) in [(&b"abcd\r\n"[..], false, 6), (b"abcd\rx\n", true, 7), (b"abcd\r", false, 5)] {
            let mut r = LineReader::new(std::io::BufReader::with_capacity(1, input), 0, 4);
            let got = r.next_line(true).unwrap().unwrap();
            assert_eq!((got.text.as_str(), got.truncated, got.end_offset), ("abcd", truncated, offset), "{input:?}");
            assert!(r.next_line(true).unwrap().is_none());
        }
        assert_eq!((whole_chars("é".as_bytes()), whole_chars(&"é".as_bytes()[..1]), whole_chars(b"")), (2, 0, 0));
    }

    /// A reader keeping objects whole keeps a line that starts a JSON
    /// object (after a byte-order mark) up to its bound; other lines are
    /// still cut at the cap, and an object past the bound at the bound.
    #[test]
    fn objects_are_kept_whole_up_to_their_bound() {
        let read = |input: &[u8], max, bound| {
            let mut r = LineReader::new(input, 0, max).keeping_objects_whole(bound);
            std::iter::from_fn(|| r.next_line(true).unwrap()).collect::<Vec<_>>()
        };
        let object = format!("{{\"message\":\"{}\"}}", "x".repeat(1000));
        for prefix in ["", "\u{feff}"] {
            let input = format!("{prefix}{object}\n{}\nshort\n", "y".repeat(1000));
            for max in [1, 2, 3, 10, 100] {
                let got = read(input.as_bytes(), max, 10_000);
                assert_eq!((got[0].text.as_str(), got[0].truncated), (format!("{prefix}{object}").as_str(), true), "cap {max}");
                assert_eq!((got[1].text.len(), got[1].truncated), (max, true), "not an object: cut at {max}");
                assert_eq!(got[2].text, &"short"[..max.min(5)]);
                assert_eq!(
                    got.iter().map(|l| l.end_offset).collect::<Vec<_>>(),
                    [1015 + prefix.len() as u64, 2016 + prefix.len() as u64, 2022 + prefix.len() as u64]
                );
            }
            let got = read(input.as_bytes(), 10, 500);
            assert_eq!((got[0].text.len(), got[0].truncated), (500, true), "cut at the bound");
            assert_eq!(got[1].text.len(), 10);
        }
        // Read a byte at a time: the line's start is told across reads.
        let input = format!("{object}\n");
        let mut r = LineReader::new(io::BufReader::with_capacity(1, input.as_bytes()), 0, 1).keeping_objects_whole(1 << 20);
        assert_eq!(r.next_line(true).unwrap().unwrap().text, object);
        // Without keeping objects whole, an object is cut like any line.
        assert_eq!(lines(input.as_bytes(), 10)[0].text, &object[..10]);
    }

    #[test]
    fn partial_line_waits_for_its_end_and_is_not_checkpointed() {
        let mut r = LineReader::new(&b"done\npart"[..], 100, 100);
        assert_eq!(r.next_line(false).unwrap().unwrap().end_offset, 105);
        assert!(r.next_line(false).unwrap().is_none());
        assert!(r.has_partial());
        assert_eq!(r.line_offset(), 105);
    }
}
