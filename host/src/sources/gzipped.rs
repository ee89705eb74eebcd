//! Reading a rotated log that logrotate compressed (`compress`: `app.log.1.gz`,
//! or with `delaycompress`, Debian's default, `app.log.2.gz`).
//!
//! A log compressed while the monitor was down, or between two of its polls,
//! may hold lines it never read: the rest of the file it was reading, or a
//! whole rotation. The tailer reads such a file as it reads any other, from
//! an unnamed temporary file holding its decompressed bytes, so offsets,
//! fingerprints and checkpoints are in decompressed bytes, under the
//! compressed file's inode. Only gzip, logrotate's default; other
//! compressions are not read.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::checkpoint::FINGERPRINT_BYTES;

/// Whether `path` names a gzip-compressed file.
pub(super) fn is_gzipped(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// The first decompressed bytes of `file`, at most [`FINGERPRINT_BYTES`]:
/// enough to tell whose copy it is without decompressing all of it.
pub(super) fn head(path: &Path, file: File) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(FINGERPRINT_BYTES);
    MultiGzDecoder::new(BufReader::new(file))
        .take(FINGERPRINT_BYTES as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot decompress {}: {e}", path.display()))?;
    Ok(bytes)
}

/// The decompressed contents of `file` (read from `path`) that the tailer
/// reads from `offset` on, in an unnamed temporary file (gone when closed),
/// and how many lines end before `offset`. Only the first
/// [`FINGERPRINT_BYTES`] (its fingerprint) and the bytes from `offset` on
/// are written; the rest is a hole, so it takes the disk space of what is
/// left to read. Its length is the decompressed length. A damaged file
/// (cut short: logrotate still writing it, a full disk) gives what could
/// be decompressed, with a warning; nothing at all is an error.
pub(super) fn unpacked_from(path: &Path, file: File, offset: u64) -> Result<(File, u64), String> {
    let fail = |e: std::io::Error| format!("cannot decompress {}: {e}", path.display());
    let out = tempfile::tempfile().map_err(|e| {
        format!("cannot decompress {}: no temporary file in {} (TMPDIR): {e}", path.display(), std::env::temp_dir().display())
    })?;
    let mut gz = MultiGzDecoder::new(BufReader::new(file));
    let mut buf = vec![0u8; 64 * 1024];
    let (mut at, mut lines) = (0u64, 0u64);
    // Where the last complete line ends: a damaged file is read up to it,
    // not up to a fragment of the line the damage cut.
    let mut complete = 0u64;
    loop {
        let n = match gz.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if at == 0 => return Err(fail(e)),
            Err(e) => {
                tracing::warn!("{} is damaged after {at} decompressed bytes ({e}); reading its lines before that", path.display());
                at = complete;
                break;
            }
        };
        let chunk = &buf[..n];
        // The parts of [at, at + n) in the head or from `offset` on.
        let skipped = usize::try_from(offset.saturating_sub(at)).unwrap_or(usize::MAX).min(n);
        lines += chunk[..skipped].iter().filter(|&&b| b == b'\n').count() as u64;
        let head = usize::try_from((FINGERPRINT_BYTES as u64).saturating_sub(at)).unwrap_or(usize::MAX).min(skipped);
        out.write_all_at(&chunk[..head], at).map_err(fail)?;
        out.write_all_at(&chunk[skipped..], at + skipped as u64).map_err(fail)?;
        if let Some(last) = chunk.iter().rposition(|&b| b == b'\n') {
            complete = at + last as u64 + 1;
        }
        at += n as u64;
    }
    out.set_len(at).map_err(fail)?;
    Ok((out, lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(bytes).unwrap();
        let mut file = tempfile::Builder::new().suffix(".gz").tempfile().unwrap();
        file.write_all(&gz.finish().unwrap()).unwrap();
        file
    }

    fn read_all(file: &File) -> Vec<u8> {
        let mut bytes = vec![0; file.metadata().unwrap().len() as usize];
        file.read_exact_at(&mut bytes, 0).unwrap();
        bytes
    }

    #[test]
    fn keeps_the_head_and_what_is_left_to_read() {
        // Any bytes: invalid UTF-8, NUL, CJK; long enough to span chunks.
        let text: Vec<u8> = (0..20_000u32).flat_map(|i| [format!("línea {i} 日本 \0\u{1b}[31m").as_bytes(), b"\xff\n"].concat()).collect();
        let gz = gzip(&text);
        assert!(is_gzipped(gz.path()));
        assert_eq!(head(gz.path(), gz.reopen().unwrap()).unwrap(), text[..FINGERPRINT_BYTES]);
        let offset = text.len() as u64 / 2 + 3;
        let (file, lines) = unpacked_from(gz.path(), gz.reopen().unwrap(), offset).unwrap();
        let got = read_all(&file);
        assert_eq!(got.len(), text.len());
        assert_eq!(got[..FINGERPRINT_BYTES], text[..FINGERPRINT_BYTES]);
        assert_eq!(got[offset as usize..], text[offset as usize..]);
        assert!(got[FINGERPRINT_BYTES..offset as usize].iter().all(|&b| b == 0), "a hole between");
        assert_eq!(lines, text[..offset as usize].iter().filter(|&&b| b == b'\n').count() as u64);
        // From the start: all of it; past its end: only the head.
        assert_eq!(read_all(&unpacked_from(gz.path(), gz.reopen().unwrap(), 0).unwrap().0), text);
        let (file, lines) = unpacked_from(gz.path(), gz.reopen().unwrap(), u64::MAX).unwrap();
        assert_eq!(file.metadata().unwrap().len(), text.len() as u64);
        assert_eq!(lines, 20_000);
    }

    #[test]
    fn a_damaged_file_gives_what_it_can_or_an_error_that_names_it() {
        // Cut short: the lines before the cut.
        let text: Vec<u8> =
            (0..50_000u32).flat_map(|i| format!("Nov  2 08:00:00 web01 app[7]: line {i} {}\n", i * 7919 % 1000).into_bytes()).collect();
        let mut gz = gzip(&text).into_temp_path().keep().unwrap();
        let bytes = std::fs::read(&gz).unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        let got = read_all(&unpacked_from(&gz, File::open(&gz).unwrap(), 0).unwrap().0);
        assert!(got.len() > text.len() / 4 && got.len() < text.len(), "{} of {}", got.len(), text.len());
        assert_eq!(got, text[..got.len()]);
        assert!(got.ends_with(b"\n"), "whole lines, not the fragment the damage cut");
        // Cut before anything decompresses: an error.
        std::fs::write(&gz, &bytes[..12]).unwrap();
        let err = unpacked_from(&gz, File::open(&gz).unwrap(), 0).unwrap_err();
        assert!(err.starts_with(&format!("cannot decompress {}: ", gz.display())), "{err}");
        std::fs::write(&gz, b"not gzip at all\n").unwrap();
        assert!(head(&gz, File::open(&gz).unwrap()).is_err());
        std::fs::remove_file(&gz).unwrap();
        gz.set_extension("log");
        assert!(!is_gzipped(&gz));
    }
}
