//! The tokenizer: a log message becomes a list of lowercase terms, with the
//! variable parts (numbers, ids, addresses, paths, ...) masked so that lines
//! of the same kind share their terms.
//!
//! Words are split at white space and at `, ; ( ) [ ] { } < > | = "`, and
//! at dot leaders (`threshold.......0`, like `=`); each
//! word is then classified as a whole, which is both faster and more exact
//! than running a set of regular expressions over the line. Masks:
//!
//! | mask     | examples                                             |
//! |----------|------------------------------------------------------|
//! | `<ip>`   | `10.0.0.1`, `10.0.0.1:22`, `fe80::1`, `[::1]:8080`   |
//! | `<host>` | `bolt.dropbox.com:443`, `db-2.internal.example:5432` |
//! | `<mac>`  | `00:1a:2b:3c:4d:5e`, `00-1A-2B-3C-4D-5E`             |
//! | `<uuid>` | `123e4567-e89b-12d3-a456-426614174000`               |
//! | `<hex>`  | `0x7f3a`, `0XFF`                                     |
//! | `<num>`  | `42`, `-3.5`, `250ms`, `1h30m`, `4KiB`, `99%`, and bare hex ids `deadbeef42`, `55D23E9B8D` |
//! | `<time>` | `08:00:01`, `08:00:01.123`                           |
//! | `<path>` | `/var/log/syslog`, `./run.sh`, `~/x`                 |
//! | `<url>`  | `https://example.org/x`                              |
//! | `<str>`  | `"quoted text"`, `'single quoted'`                   |
//!
//! A message with no word at all that holds control characters or bytes
//! that were not text (a run of NULs, as a crash leaves in a log) is one
//! term, `<binary>`: without a term it scored 0, whatever it was. A blank
//! line or one of punctuation only (a separator, a closing brace) still has
//! no term, and is nothing unusual.
//!
//! Remaining words keep their letters with each run of digits replaced by
//! `#` (`sda1` → `sda#`, `blk_-1608` → `blk_-#`).

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::Ipv6Addr;

/// The term of a message without words that holds control characters or
/// bytes that were not text.
pub const BINARY: &str = "<binary>";

/// At most this many terms are taken from one message; the rest of a giant
/// line cannot change what kind of line it is, only cost time.
pub const MAX_TOKENS: usize = 512;

/// Splits messages into terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokenizer {
    /// Mask variable parts (the default). Off only for evaluation baselines.
    pub mask: bool,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self { mask: true }
    }
}

/// Bytes that end a word: white space and `, ; ( ) [ ] { } < > | =`, and
/// `"` (which starts a quoted value). A table: this test runs for every
/// byte of every line (issue 11).
const ENDS_WORD: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    let bytes = b" \t\n\r,;()[]{}<>|=\"";
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
};

fn is_separator(b: u8) -> bool {
    b != b'"' && ENDS_WORD[b as usize]
}

/// What a word holds, as bits of [`BYTE_CLASS`] OR-ed over its bytes: taken
/// while the word is scanned, so that classifying it needs no pass of its
/// own (issue 11: the tokenizer walked each word five times).
const DIGIT: u8 = 1;
const COLON: u8 = 2;
/// `:`, `/` or `+`, where a word that is not a value splits.
const SPLIT: u8 = 4;
const DOT: u8 = 8;
const UPPER: u8 = 16;
const ALPHANUMERIC: u8 = 32;
const NON_ASCII: u8 = 64;
const NON_DIGIT: u8 = 128;

const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut class = if b.is_ascii_digit() { DIGIT } else { NON_DIGIT };
        if b == b':' {
            class |= COLON;
        }
        if matches!(b, b':' | b'/' | b'+') {
            class |= SPLIT;
        }
        if b == b'.' {
            class |= DOT;
        }
        if b.is_ascii_uppercase() {
            class |= UPPER;
        }
        if b.is_ascii_alphanumeric() {
            class |= ALPHANUMERIC;
        }
        if !b.is_ascii() {
            class |= NON_ASCII;
        }
        table[i] = class;
        i += 1;
    }
    table
};

/// What `word` holds ([`BYTE_CLASS`]).
fn held(word: &str) -> u8 {
    word.bytes().fold(0, |held, b| held | BYTE_CLASS[b as usize])
}

/// The next word at or after `i`: where it starts (after the separators
/// there), where it ends, and what it holds ([`held`]). It starts where it
/// ends at a `"` (which the caller reads as a quoted value) and at the end
/// of `bytes`.
///
/// A function of its own, not inlined, and four bytes a loop turn while none
/// of them ends the word: in the component each loop turn checks for
/// interruption (wasmtime's epoch, which the call time limit needs), and in
/// a function as large as [`Tokenizer::tokenize`] Cranelift keeps the loop's
/// state in memory around that check: a turn per byte there cost about 33
/// instructions a byte, this about 11. The separators before the word are
/// skipped here too, for the same reason (issue 11).
#[inline(never)]
fn next_word(bytes: &[u8], mut i: usize) -> (usize, usize, u8) {
    while i < bytes.len() && is_separator(bytes[i]) {
        i += 1;
    }
    let start = i;
    if bytes.get(i) == Some(&b'"') {
        return (start, start, 0);
    }
    let mut held = 0;
    while let Some(four) = bytes.get(i..i + 4) {
        let (mut ends, mut these) = (false, 0);
        for &b in four {
            ends |= ENDS_WORD[b as usize];
            these |= BYTE_CLASS[b as usize];
        }
        if ends {
            break;
        }
        held |= these;
        i += 4;
    }
    while i < bytes.len() && !ENDS_WORD[bytes[i] as usize] {
        held |= BYTE_CLASS[bytes[i] as usize];
        i += 1;
    }
    (start, i, held)
}

impl Tokenizer {
    /// Appends the terms of `text` to `out` (at most [`MAX_TOKENS`] in all).
    pub fn tokenize<'a>(&self, text: &'a str, out: &mut Vec<Cow<'a, str>>) {
        let bytes = text.as_bytes();
        let mut i = 0;
        let first = out.len();
        let limit = first + MAX_TOKENS;
        while out.len() < limit {
            let (start, end, held) = next_word(bytes, i);
            if start == bytes.len() {
                break;
            }
            if start == end {
                // At a `"`: a quoted string is one value, masked whole when it closes.
                if let Some(len) = bytes[start + 1..].iter().position(|&c| c == b'"') {
                    if self.mask {
                        out.push(Cow::Borrowed("<str>"));
                    } else {
                        let mut inner = Vec::new();
                        self.tokenize(&text[start + 1..start + 1 + len], &mut inner);
                        out.extend(inner);
                    }
                    i = start + len + 2;
                } else {
                    i = start + 1;
                }
                continue;
            }
            i = end;
            // Separators are ASCII, so `start..end` lies on char boundaries.
            self.push_word(&text[start..end], held, out, limit);
        }
        out.truncate(limit);
        if out.len() == first && self.mask && binary(text) {
            out.push(Cow::Borrowed(BINARY));
        }
    }

    /// Pushes the term(s) of one word, split at its dot leaders
    /// ([`split_dot_leader`]).
    /// `held`: what the word holds ([`held`]).
    fn push_word<'a>(&self, mut word: &'a str, mut held: u8, out: &mut Vec<Cow<'a, str>>, limit: usize) {
        if held & DOT != 0 {
            // A loop, not recursion, that stops at the limit: a giant word
            // of many leaders costs neither stack nor time. Its rounds are
            // counted too, since a leader after punctuation pushes nothing
            // (`!..!..!..`), and what the rest holds is scanned once, after
            // it (scanned each round, 64 KiB of `!..` took 44 s).
            let mut rounds = 0;
            let mut split = false;
            while let Some((name, rest)) = split_dot_leader(word) {
                if out.len() >= limit || rounds >= limit {
                    return;
                }
                self.push_part(name, self::held(name), out);
                (word, rounds, split) = (rest, rounds + 1, true);
            }
            if split {
                held = self::held(word);
            }
        }
        // Most words with dots have no leader (`10.0.0.1`, `cron.hourly`):
        // what they hold is known from the scan already.
        self.push_part(word, held, out);
    }

    /// Pushes the term(s) of a word without dot leaders. A word that is not
    /// a value as a whole is split at `:`, `/` and `+` (`SHA256:9f3a…`,
    /// `sshd:session`, `postfix/smtpd`, `7f3a+1c0`) and each part is a term
    /// of its own.
    fn push_part<'a>(&self, word: &'a str, held: u8, out: &mut Vec<Cow<'a, str>>) {
        // Whether the word splits decides first, so that a word that does
        // is not lowercased only to be thrown away (issue 11). The same
        // terms: a word's term is its mask or else a plain word, and only a
        // mask is kept whole (a plain term cannot start with `<`, which
        // ends a word).
        if held & SPLIT == 0 {
            out.extend(self.term(word, held));
            return;
        }
        if let Some(mask) = self.mask_of(word, held) {
            out.push(Cow::Borrowed(mask));
            return;
        }
        for part in word.split([':', '/', '+']) {
            if !part.is_empty()
                && let Some(term) = self.term(part, self::held(part))
            {
                out.push(term);
            }
        }
    }

    /// The mask of a word that is a value as a whole (with the punctuation
    /// around it or without), if masking is on and it is one.
    fn mask_of(&self, word: &str, held: u8) -> Option<&'static str> {
        self.mask_or_trimmed(word, held).ok()
    }

    /// [`Tokenizer::mask_of`], or else the word trimmed ([`trim`]), which
    /// [`Tokenizer::term`] needs next: trimmed once, not twice (issue 11).
    // Inlined, like `term` and `classify_held`'s test: in the component a
    // call per word costs more than most of what it calls (issue 11).
    #[inline(always)]
    fn mask_or_trimmed<'a>(&self, word: &'a str, held: u8) -> Result<&'static str, &'a str> {
        if !self.mask {
            return Err(trim(word));
        }
        if word.len() > 2 && word.starts_with('\'') && word.ends_with('\'') {
            return Ok("<str>");
        }
        // Before trimming: `::1` is an address, not `1` behind punctuation.
        if let Some(mask) = classify_held(word, held) {
            return Ok(mask);
        }
        let trimmed = trim(word);
        // A word trimming left alone was classified above.
        if trimmed.is_empty() || trimmed.len() == word.len() {
            return Err(trimmed);
        }
        classify(trimmed).ok_or(trimmed)
    }

    /// One word to its term, or `None` when nothing of it is worth keeping.
    #[inline(always)]
    fn term<'a>(&self, word: &'a str, held: u8) -> Option<Cow<'a, str>> {
        let word = match self.mask_or_trimmed(word, held) {
            Ok(mask) => return Some(Cow::Borrowed(mask)),
            Err(trimmed) => trimmed,
        };
        if word.is_empty() {
            return None;
        }
        // Trimming took punctuation only: the trimmed word holds the same
        // digits, letters and non-ASCII bytes.
        let (ascii, alphanumeric, digit, upper) = (held & NON_ASCII == 0, held & ALPHANUMERIC != 0, held & DIGIT != 0, held & UPPER != 0);
        let (alphanumeric, upper) =
            if ascii { (alphanumeric, upper) } else { (word.chars().any(char::is_alphanumeric), word.chars().any(char::is_uppercase)) };
        if !alphanumeric {
            return None;
        }
        let needs_digit_mask = self.mask && digit;
        if !needs_digit_mask && !upper {
            return Some(Cow::Borrowed(word));
        }
        if ascii && !needs_digit_mask {
            // The usual case (`Deactivated`, `GET`): std's byte loop, not
            // one char at a time.
            return Some(Cow::Owned(word.to_ascii_lowercase()));
        }
        let mut s = String::with_capacity(word.len());
        let mut in_digits = false;
        for c in word.chars() {
            if needs_digit_mask && c.is_ascii_digit() {
                if !in_digits {
                    s.push('#');
                }
                in_digits = true;
                continue;
            }
            in_digits = false;
            if ascii {
                s.push(c.to_ascii_lowercase());
            } else {
                s.extend(c.to_lowercase());
            }
        }
        Some(Cow::Owned(s))
    }
}

/// Bytes trimmed from the start of a word (`'`, `:`, `.`, `!`, `?`, `*`,
/// `` ` ``, and `@`: a leading `@` is decoration (`@all`), and reserved for
/// context terms, `features::record_terms`), and from its end (the same but
/// `@`). A table, like [`ENDS_WORD`]; ASCII, so a trimmed word still lies
/// on char boundaries.
const TRIM_START: [bool; 256] = byte_set(b"':.!?*`@");
const TRIM_END: [bool; 256] = byte_set(b"':.!?*`");

const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// A word without the punctuation around it.
fn trim(word: &str) -> &str {
    let b = word.as_bytes();
    let start = b.iter().position(|&c| !TRIM_START[c as usize]).unwrap_or(b.len());
    let end = b[start..].iter().rposition(|&c| !TRIM_END[c as usize]).map_or(start, |last| start + last + 1);
    &word[start..end]
}

/// The mask for a word that is entirely a variable value, if it is one.
pub fn classify(word: &str) -> Option<&'static str> {
    classify_held(word, held(word))
}

/// [`classify`], given what the word holds ([`held`]).
///
/// Most words are plain words: every mask but a path needs a digit or a `:`
/// (URL, IPv6), except a UUID of letters only. This test spares them the
/// parsers (issue 11: classify was the top of a profile), and is inlined
/// where it is asked, sparing them a call too (in the component, a call
/// saves and restores registers and checks the stack and the epoch).
#[inline(always)]
fn classify_held(word: &str, held: u8) -> Option<&'static str> {
    if !may_hold_a_value(word, held) && word.len() != UUID_LEN {
        return None;
    }
    classify_value(word, held)
}

/// Whether a word may be a value other than a UUID: a digit, a `:` or a
/// path's first byte.
#[inline(always)]
fn may_hold_a_value(word: &str, held: u8) -> bool {
    held & (DIGIT | COLON) != 0 || matches!(word.as_bytes().first(), Some(b'/' | b'~' | b'.'))
}

/// [`classify_held`] for a word that may be a value.
fn classify_value(word: &str, held: u8) -> Option<&'static str> {
    let b = word.as_bytes();
    let colon = held & COLON != 0;
    if !may_hold_a_value(word, held) && !is_uuid(word) {
        return None;
    }
    // Digits alone are a number (and nothing below says otherwise: no
    // `.`, `:`, `-`, `/` or `0x` for the other masks).
    if held & NON_DIGIT == 0 {
        return Some("<num>");
    }
    // Bytes, not `str::contains`, which sets up a substring searcher per
    // call (issue 11: it showed in a profile of the component).
    if colon && b.windows(3).any(|w| w == b"://") {
        return Some("<url>");
    }
    if (b[0] == b'/' && b.len() > 1) || word.starts_with("~/") || word.starts_with("./") || word.starts_with("../") {
        return Some("<path>");
    }
    // What the word holds rules the address and time parsers out without
    // a search for `.` or `:` of their own.
    if (held & DOT != 0 && is_ipv4(word)) || (colon && is_ipv6(word)) {
        return Some("<ip>");
    }
    if colon && held & DOT != 0 && is_host_port(word) {
        return Some("<host>");
    }
    if is_mac(word) {
        return Some("<mac>");
    }
    if is_uuid(word) {
        return Some("<uuid>");
    }
    if colon && is_time(word) {
        return Some("<time>");
    }
    if is_hex(word) {
        return Some("<hex>");
    }
    if is_bare_hex_id(word, held) || is_number(word) {
        return Some("<num>");
    }
    None
}

/// `a.b.c.d`, optionally with `:port` or `/prefix`. The address is what
/// [`std::net::Ipv4Addr`] parses: four decimal octets up to 255 without
/// leading zeros (a test checks the two agree). One pass, in place: std's
/// parser, after a pass to count the dots, was a tenth of classifying
/// values in the component (issue 11).
fn is_ipv4(word: &str) -> bool {
    let b = word.as_bytes();
    let (mut dots, mut octet, mut digits) = (0, 0u32, 0);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                // A fourth digit, or a digit after a leading zero.
                if digits == 3 || digits == 1 && octet == 0 {
                    return false;
                }
                octet = octet * 10 + u32::from(c - b'0');
                digits += 1;
                if octet > 255 {
                    return false;
                }
            }
            b'.' if digits > 0 && dots < 3 => (dots, octet, digits) = (dots + 1, 0, 0),
            b':' | b'/' => return dots == 3 && digits > 0 && i + 1 < b.len() && b[i + 1..].iter().all(u8::is_ascii_digit),
            _ => return false,
        }
    }
    dots == 3 && digits > 0
}

/// A host name with a port, `bolt.dropbox.com:443`: the endpoint a client
/// connects to, as variable as an address with its port (a proxy or a
/// client logs one line per destination, and each destination must not make
/// a kind of its own). Two or more labels of letters, digits and `-`, the
/// last a top-level domain: two letters (a country), or one of the usual
/// generic and internal ones ([`GENERIC_TLDS`]), in lowercase. A logger or
/// a file with its line has the same shape (`c.z.h.HikariDataSource:110`,
/// `django.server:161`, `config.yaml:10`, `main.go:42`), so a last label of
/// any other word, or a two-letter source file's extension, keeps the word.
fn is_host_port(word: &str) -> bool {
    let Some((name, port)) = word.rsplit_once(':') else { return false };
    if !(1..=5).contains(&port.len()) || !port.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let Some((_, tld)) = name.rsplit_once('.') else { return false };
    let label =
        |l: &str| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
    let country = tld.len() == 2 && tld.bytes().all(|c| c.is_ascii_lowercase()) && !SOURCE_EXTENSIONS.contains(&tld);
    (country || GENERIC_TLDS.contains(&tld)) && name.split('.').all(label)
}

/// Generic and internal top-level domains a host name with a port ends in.
const GENERIC_TLDS: [&str; 24] = [
    "com",
    "net",
    "org",
    "edu",
    "gov",
    "mil",
    "int",
    "info",
    "biz",
    "io",
    "dev",
    "app",
    "cloud",
    "local",
    "localdomain",
    "internal",
    "lan",
    "home",
    "corp",
    "intra",
    "svc",
    "cluster",
    "example",
    "test",
];

/// Two-letter extensions of source files, whose `file.ext:line` is not an
/// endpoint though the extension looks like a country.
const SOURCE_EXTENSIONS: [&str; 14] = ["go", "cc", "hh", "rs", "py", "rb", "js", "ts", "kt", "cs", "pl", "pm", "ex", "hs"];

/// IPv6, optionally bracketed with a port, or with a `%zone`.
fn is_ipv6(word: &str) -> bool {
    // A hex digit, `:` or `[` first: most words with a `:` fail here,
    // before a search or a parser.
    if !matches!(word.as_bytes()[0], b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' | b':' | b'[') || !word.contains(':') {
        return false;
    }
    let mut addr = word;
    if let Some(rest) = addr.strip_prefix('[') {
        addr = match rest.find(']') {
            Some(end) => &rest[..end],
            None => rest,
        };
    }
    let addr = addr.split(['%', '/']).next().unwrap_or(addr);
    addr.len() >= 2 && addr.parse::<Ipv6Addr>().is_ok()
}

fn is_mac(word: &str) -> bool {
    let b = word.as_bytes();
    if b.len() != 17 {
        return false;
    }
    let sep = b[2];
    if sep != b':' && sep != b'-' {
        return false;
    }
    b.iter().enumerate().all(|(i, &c)| if i % 3 == 2 { c == sep } else { c.is_ascii_hexdigit() })
}

/// The length of a UUID in text.
const UUID_LEN: usize = 36;

fn is_uuid(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() == UUID_LEN && b.iter().enumerate().all(|(i, &c)| if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_hexdigit() })
}

/// `hh:mm`, `hh:mm:ss`, `hh:mm:ss.fff` (and `,fff`).
fn is_time(word: &str) -> bool {
    if !word.as_bytes()[0].is_ascii_digit() || !word.contains(':') {
        return false;
    }
    let main = word.split(['.', ',']).next().unwrap_or(word);
    let frac = &word[main.len()..];
    let mut parts = 0;
    for p in main.split(':') {
        parts += 1;
        if parts > 3 || !(1..=2).contains(&p.len()) || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    parts >= 2 && (frac.is_empty() || frac.len() > 1 && frac[1..].bytes().all(|c| c.is_ascii_digit()))
}

/// A number, optionally signed, with decimals or thousands separators, and
/// optionally followed by a short unit (`250ms`, `4KiB`, `99%`, `1h30m`).
fn is_number(word: &str) -> bool {
    let mut b = word.as_bytes();
    if let Some((&first, rest)) = b.split_first()
        && (first == b'-' || first == b'+')
    {
        b = rest;
    }
    if b.is_empty() || !b[0].is_ascii_digit() {
        return false;
    }
    // One or more (number, unit) groups; a unit is at most 4 letters or `%`.
    let mut i = 0;
    while i < b.len() {
        let num_start = i;
        while i < b.len() && (b[i].is_ascii_digit() || ((b[i] == b'.' || b[i] == b',') && i > num_start)) {
            i += 1;
        }
        if i == num_start {
            return false;
        }
        let unit_start = i;
        while i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'%' || b[i] == b'/') {
            i += 1;
        }
        if i - unit_start > 4 {
            return false;
        }
    }
    true
}

/// `0x…`: an explicitly hexadecimal value.
fn is_hex(word: &str) -> bool {
    word.strip_prefix("0x")
        .or_else(|| word.strip_prefix("0X"))
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// A bare id of at least six hex digits with a digit in it (`55D23E9B8D`,
/// `deadbeef42`). It masks as `<num>` like an all-digit id, because such ids
/// (queue ids, hashes) are all digits now and then, and the same field must
/// not make two templates.
/// `held`: what the word holds ([`held`]), which says whether it has a
/// digit without a pass of its own.
fn is_bare_hex_id(word: &str, held: u8) -> bool {
    word.len() >= 6 && held & DIGIT != 0 && word.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Splits a word at its first dot leader, if it has one: a run of at least
/// two dots between two other characters (`threshold.......0`), the layout
/// of aligned `name....value` listings, which separates a name from its
/// value like `=` does. An ellipsis at either end is left to be trimmed as
/// punctuation, and `../x` stays a path.
/// Whether a message without words is binary: it holds control characters
/// (NUL, escapes) or bytes that were not text (U+FFFD). A blank line, or
/// one of punctuation only (a separator, a closing brace), has no term and
/// is nothing unusual.
fn binary(text: &str) -> bool {
    text.chars().any(|c| (c.is_control() && !c.is_whitespace()) || c == '\u{fffd}')
}

fn split_dot_leader(word: &str) -> Option<(&str, &str)> {
    let b = word.as_bytes();
    let at = first_dot_pair(b)?;
    let end = at + b[at..].iter().take_while(|&&c| c == b'.').count();
    (at > 0 && end < b.len() && b[end] != b'/').then(|| (&word[..at], &word[end..]))
}

/// Where the first two dots in a row start: eight bytes a step, because
/// this runs for every word with a dot, and in the component a loop turn
/// per byte costs an interruption check (issue 11).
fn first_dot_pair(b: &[u8]) -> Option<usize> {
    const DOTS: u64 = u64::from_ne_bytes([b'.'; 8]);
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut at = 0;
    while let Some(eight) = b.get(at..at + 8) {
        let x = u64::from_le_bytes(eight.try_into().expect("eight bytes")) ^ DOTS;
        // The top bit of each byte that is a dot (each byte's own sum: no
        // carry crosses into the next), then of each dot followed by one.
        let dots = !(((x & LOW7) + LOW7) | x | LOW7);
        let pairs = dots & (dots >> 8);
        if pairs != 0 {
            return Some(at + pairs.trailing_zeros() as usize / 8);
        }
        // A step of seven: a pair across two steps is found in the second.
        at += 7;
    }
    (at..b.len().saturating_sub(1)).find(|&i| b[i] == b'.' && b[i + 1] == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        Tokenizer::default().tokenize(text, &mut out);
        out.into_iter().map(Cow::into_owned).collect()
    }

    #[test]
    fn dot_pairs_are_found_like_windows_find_them() {
        for n in 0..40 {
            for pattern in 0..64u32 {
                // Dots among letters and non-ASCII bytes (0xae is '.' | 0x80),
                // in every arrangement of six bytes, repeated.
                let other = |i: usize| [b'a' + (i % 26) as u8, 0xae, b'/', 0xff][i % 4];
                let word: Vec<u8> = (0..n).map(|i| if (pattern >> (i % 6)) & 1 == 1 || i % 11 == 3 { b'.' } else { other(i) }).collect();
                let expected = word.windows(2).position(|w| w == b"..");
                assert_eq!(first_dot_pair(&word), expected, "{}", String::from_utf8_lossy(&word));
            }
        }
    }

    #[test]
    fn ipv4_addresses_are_what_std_parses() {
        use std::net::Ipv4Addr;
        // Every string of up to six bytes over an alphabet that makes
        // addresses, near misses and garbage ...
        let alphabet = ["0", "1", "2", "5", "9", ".", "a", "-"];
        let mut level = vec![String::new()];
        let mut words = Vec::new();
        for _ in 0..6 {
            level = level.iter().flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}"))).collect();
            words.extend(level.iter().cloned());
        }
        // ... and dotted quads of octets that are too big, too long, empty,
        // zero-prefixed, non-ASCII or just right.
        let octets = ["0", "1", "00", "01", "9", "10", "99", "100", "199", "255", "256", "300", "999", "1000", "", "١", " 1"];
        for a in octets {
            for b in octets {
                words.push(format!("{a}.{b}.1.{a}"));
                words.push(format!("1.{a}.{b}.2"));
            }
        }
        words.extend(["1.2.3.4.5", "1.2.3", "1.2.3.", ".1.2.3", "255.255.255.255"].map(String::from));
        for w in words.iter().filter(|w| !w.contains([':', '/'])) {
            assert_eq!(is_ipv4(w), w.parse::<Ipv4Addr>().is_ok(), "{w:?}");
        }
        // A port or a prefix: digits, at least one.
        for (w, ip) in [
            ("10.0.0.1:22", true),
            ("10.0.0.1/24", true),
            ("10.0.0.1:", false),
            ("10.0.0.1:a", false),
            ("10.0.0.1:2.2", false),
            ("10.0.0:1", false),
            ("01.0.0.1:22", false),
        ] {
            assert_eq!(is_ipv4(w), ip, "{w:?}");
        }
    }

    #[test]
    fn masks_real_world_values() {
        let cases: &[(&str, &[&str])] = &[
            ("from 192.168.1.20 port 22", &["from", "<ip>", "port", "<num>"]),
            ("peer 10.0.0.1:8443 closed", &["peer", "<ip>", "closed"]),
            // A host with a port is an endpoint; a source file's line, a
            // bundle id and a host without a port stay words.
            (
                "bolt.dropbox.com:443 error : Could not connect to proxy proxy.cse.cuhk.edu.hk:5070",
                &["<host>", "error", "could", "not", "connect", "to", "proxy", "<host>"],
            ),
            ("to db-2.internal.example:5432, (mail.example.org:25)", &["to", "<host>", "<host>"]),
            ("at Foo.java:123 main.go:42 posix.cc:306", &["at", "foo.java", "<num>", "main.go", "<num>", "posix.cc", "<num>"]),
            // Loggers and files with their line are not endpoints.
            (
                "c.z.h.HikariDataSource:110 django.server:161 config.yaml:10 index.html:45 app.py:3",
                &[
                    "c.z.h.hikaridatasource",
                    "<num>",
                    "django.server",
                    "<num>",
                    "config.yaml",
                    "<num>",
                    "index.html",
                    "<num>",
                    "app.py",
                    "<num>",
                ],
            ),
            ("web.svc.cluster.local:8080 files.example.de:21 api.acme.io:443", &["<host>", "<host>", "<host>"]),
            (
                "com.apple.geod example.org a.b:1 x.y2:8 -a.org:1",
                &["com.apple.geod", "example.org", "a.b", "<num>", "x.y#", "<num>", "-a.org", "<num>"],
            ),
            ("addr fe80::1ff:fe23:4567:890a%eth0", &["addr", "<ip>"]),
            ("listening on [::1]:8080", &["listening", "on", "<ip>", "<num>"]),
            ("link 00:1a:2b:3c:4d:5e up", &["link", "<mac>", "up"]),
            ("id 123e4567-e89b-12d3-a456-426614174000", &["id", "<uuid>"]),
            ("at 0x7f3a9c ip deadbeef42", &["at", "<hex>", "ip", "<num>"]),
            ("queue 55D23E9B8D and 4950711965", &["queue", "<num>", "and", "<num>"]),
            ("took 250ms of 1h30m, 4KiB 99%", &["took", "<num>", "of", "<num>", "<num>", "<num>"]),
            ("temp -3.5 and 1.5e3", &["temp", "<num>", "and", "<num>"]),
            ("at 08:00:01.123 done", &["at", "<time>", "done"]),
            ("open /var/log/syslog failed", &["open", "<path>", "failed"]),
            ("GET https://example.org/x?y=1", &["get", "<url>", "<num>"]),
            ("user \"bob smith\" and 'alice'", &["user", "<str>", "and", "<str>"]),
            // Without a word (review: these scored 0): corruption, a separator.
            ("\0\0\0\0", &["<binary>"]),
            ("\u{fffd}\u{fffd} \u{fffd}", &["<binary>"]),
            ("!!!@@@### \u{7}", &["<binary>"]),
            ("!!!@@@###", &[]),
            ("---------", &[]),
            (" \t ", &[]),
            ("", &[]),
            ("pid=4242 uid=0 comm=sshd", &["pid", "<num>", "uid", "<num>", "comm", "sshd"]),
            ("sshd[1234]: Accepted", &["sshd", "<num>", "accepted"]),
            ("sda1 blk_-1608999687919862906", &["sda#", "blk_-#"]),
            ("RSA SHA256:85de22ae5b0a0b9db5d0", &["rsa", "sha#", "<num>"]),
            ("in libc.so.6[7f3a9c2b1000+1c0a0]", &["in", "libc.so.#", "<num>", "<num>"]),
            ("pam_unix(sshd:session) postfix/smtpd", &["pam_unix", "sshd", "session", "postfix", "smtpd"]),
            ("Connection: CLOSED!", &["connection", "closed"]),
            ("-- --> ...", &[]),
            // Dot leaders separate a name from its value; an ellipsis and a
            // relative path stay what they were.
            ("icache prefetch threshold................0", &["icache", "prefetch", "threshold", "<num>"]),
            ("Checking disks.....OK", &["checking", "disks", "ok"]),
            ("tlb error....1 ....wait.. ../x", &["tlb", "error", "<num>", "wait", "<path>"]),
            ("range 1..5 of a..b", &["range", "<num>", "<num>", "of", "a", "b"]),
            ("a..b...c....d", &["a", "b", "c", "d"]),
        ];
        for (line, want) in cases {
            assert_eq!(terms(line), *want, "line: {line}");
        }
    }

    #[test]
    fn unmasked_keeps_values() {
        let mut out = Vec::new();
        Tokenizer { mask: false }.tokenize("from 10.0.0.1 port 22", &mut out);
        assert_eq!(out, ["from", "10.0.0.1", "port", "22"]);
    }

    #[test]
    fn caps_giant_lines_and_handles_unicode() {
        let line = "wörd ".repeat(100_000);
        assert_eq!(terms(&line).len(), MAX_TOKENS);
        // One giant word of leaders: no deep recursion, every part a term.
        let word = "ab..".repeat(1_000_000);
        assert_eq!(terms(&word).len(), MAX_TOKENS);
        // Leaders after punctuation push nothing: the rounds are capped, and
        // what the rest holds is scanned once (fuzzing found it quadratic).
        assert!(terms(&"!..".repeat(1_000_000)).is_empty());
        assert_eq!(terms(&format!("{}ab..cd", "!..".repeat(100))), ["ab", "cd"]);
        assert_eq!(terms("Ünïcode ÄBC \u{fffd}"), ["ünïcode", "äbc"]);
    }
}
