//! A bounded memory of recent verdicts, so that a line of a kind seen a
//! moment ago skips sorting its terms, features, the network, the
//! explanation and its kind's hash.
//!
//! Logs repeat: most lines differ from an earlier one only in the values the
//! tokenizer masks. A verdict is a pure function of the line's terms (as a
//! multiset: features sort them) and its own severity, so those — the terms
//! in line order, a finer key that needs no sort — are the key, compared in
//! full (never by a hash alone): a cached verdict is exactly the verdict the
//! line would get. Only the score, the explanation and the kind are kept;
//! whether it is anomalous is decided against the threshold in force (the
//! detector forgets everything when the threshold or the explanation
//! setting changes: a normal line is remembered without its explanation).
//!
//! Lines also repeat word for word: a line of a kind seen before is
//! remembered by its own text too (severity, source and message), so that
//! its next exact repeat skips even the tokenizer (issue 11: 39% of a
//! generated host's lines, 7% less time end to end). Lines of new kinds are
//! not, so that lines that are each unique pay only a lookup.
//!
//! Memory is bounded: at most [`MAX_ENTRIES`] entries with keys of at most
//! [`MAX_KEY_BYTES`] (longer lines are scored without it; they rarely
//! repeat), and when it is full it starts over empty, which is exact and
//! cheap, and costs one miss per kind still in use.

use crate::detector::Term;
use crate::features::{hash_bytes as hash, same_bytes};
use nohash_hasher::BuildNoHashHasher;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Most verdicts kept.
pub const MAX_ENTRIES: usize = 4096;
/// Longest key kept, bytes (the line's terms, length-prefixed).
pub const MAX_KEY_BYTES: usize = 1024;

/// A remembered verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    /// The calibrated score.
    pub score: f64,
    /// The explanation, shared by the entries by terms and by text.
    pub terms: Arc<[Term]>,
    /// The line's kind ([`crate::kinds::kind_of`]).
    pub kind: u64,
    /// The kind's usual count per window ([`crate::kinds::Rates::usual`]),
    /// looked up once, not for every line (issue 11: 2% on templated lines).
    pub usual: u32,
}

impl Cached {
    /// An explanation to remember: a normal line's, which has no terms
    /// unless asked for, shares one empty list instead of allocating its
    /// own (issue 11: new lines).
    pub fn share(terms: &[Term]) -> Arc<[Term]> {
        thread_local! {
            static NONE: Arc<[Term]> = Arc::new([]);
        }
        if terms.is_empty() { NONE.with(Arc::clone) } else { terms.into() }
    }
}

/// Remembered verdicts by the hash of their key, with the key.
type Entries = HashMap<u64, (Box<[u8]>, Cached), BuildNoHashHasher<u64>>;

/// Recent verdicts by the line's severity and terms.
#[derive(Debug, Clone, Default)]
pub struct VerdictCache {
    /// By the hash of the key ([`hash`]), with the key itself to compare: a
    /// hash collision is a miss, never a wrong verdict.
    entries: Entries,
    /// The key of the last lookup (reused: no allocation per line), and
    /// its hash.
    key: Vec<u8>,
    hash: u64,
    /// The same verdicts by the record's own text (severity, source and
    /// message, byte for byte), so that a line repeated word for word skips
    /// even the tokenizer; with its last key and hash, and the same bounds.
    by_text: Entries,
    text_key: Vec<u8>,
    text_hash: u64,
    /// The hashes of texts offered to [`VerdictCache::store_text`] once: a
    /// text is kept on its second offer, so that the many lines that never
    /// repeat word for word (they differ in a pid, an address, a count) do
    /// not each cost a key allocated, copied and freed (issue 11). Bounded
    /// like the entries; a collision only keeps a text one offer early.
    offered: HashSet<u64, BuildNoHashHasher<u64>>,
    /// Lookups answered, and not, since the start (for benchmarks).
    pub hits: u64,
    /// Lookups not answered.
    pub misses: u64,
}

impl VerdictCache {
    /// The verdict remembered for a line with this own severity and these
    /// terms (in line order); leaves the key for [`VerdictCache::store`].
    pub fn lookup(&mut self, priority: Option<u8>, terms: &[Cow<'_, str>]) -> Option<&Cached> {
        self.key.clear();
        self.key.push(priority.unwrap_or(u8::MAX));
        for t in terms {
            // Length-prefixed, so that no two term lists share a key.
            self.key.extend_from_slice(&(t.len() as u32).to_le_bytes());
            self.key.extend_from_slice(t.as_bytes());
        }
        self.hash = hash(&self.key);
        let found = self.entries.get(&self.hash).filter(|(key, _)| same_bytes(key, &self.key)).map(|(_, cached)| cached);
        match found {
            Some(_) => self.hits += 1,
            None => self.misses += 1,
        }
        found
    }

    /// Remembers `cached` under the key of the last [`VerdictCache::lookup`].
    pub fn store(&mut self, cached: Cached) {
        keep(&mut self.entries, &self.key, self.hash, cached);
    }

    /// The verdict remembered for a record with exactly this own severity,
    /// source and message (the terms are a function of these); a hit counts
    /// as a hit, a miss is left to [`VerdictCache::lookup`] to count. Leaves
    /// the key for [`VerdictCache::store_text`].
    pub fn lookup_text(&mut self, priority: Option<u8>, source: &str, message: &str) -> Option<&Cached> {
        self.text_key.clear();
        self.text_key.push(priority.unwrap_or(u8::MAX));
        self.text_key.extend_from_slice(&(source.len() as u32).to_le_bytes());
        self.text_key.extend_from_slice(source.as_bytes());
        self.text_key.extend_from_slice(message.as_bytes());
        if self.text_key.len() > MAX_KEY_BYTES {
            return None;
        }
        self.text_hash = hash(&self.text_key);
        let found = self.by_text.get(&self.text_hash).filter(|(key, _)| same_bytes(key, &self.text_key)).map(|(_, cached)| cached);
        self.hits += u64::from(found.is_some());
        found
    }

    /// Remembers `cached` under the key of the last
    /// [`VerdictCache::lookup_text`], if that text was offered before.
    pub fn store_text(&mut self, cached: Cached) {
        if self.text_key.len() > MAX_KEY_BYTES {
            return;
        }
        if self.offered.len() >= 4 * MAX_ENTRIES {
            self.offered.clear();
        }
        if !self.offered.insert(self.text_hash) {
            keep(&mut self.by_text, &self.text_key, self.text_hash, cached);
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.by_text.clear();
        self.offered.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Keeps `cached` under `key` in `map`, which starts over when full; keys
/// too long to keep are not.
fn keep(map: &mut Entries, key: &[u8], hash: u64, cached: Cached) {
    if key.len() > MAX_KEY_BYTES {
        return;
    }
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(hash, (key.into(), cached));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(ts: &[&str]) -> Vec<Cow<'static, str>> {
        ts.iter().map(|t| Cow::Owned((*t).to_owned())).collect()
    }

    #[test]
    fn keys_are_exact_and_memory_is_bounded() {
        let mut cache = VerdictCache::default();
        let v = |score| Cached { score, terms: Arc::new([]), kind: 0, usual: 1 };
        assert!(cache.lookup(None, &terms(&["a", "b"])).is_none());
        cache.store(v(0.5));
        assert_eq!(cache.lookup(None, &terms(&["a", "b"])).map(|c| c.score), Some(0.5));
        // Other severity, other split of the same bytes: other keys.
        assert!(cache.lookup(Some(3), &terms(&["a", "b"])).is_none());
        assert!(cache.lookup(None, &terms(&["ab"])).is_none());
        assert!(cache.lookup(None, &terms(&["a\u{1f}b"])).is_none());
        // Long keys are not kept; a full cache starts over.
        let long = "x".repeat(MAX_KEY_BYTES);
        assert!(cache.lookup(None, &terms(&[&long])).is_none());
        cache.store(v(0.9));
        assert!(cache.lookup(None, &terms(&[&long])).is_none());
        for i in 0..MAX_ENTRIES + 10 {
            cache.lookup(None, &terms(&[&i.to_string()]));
            cache.store(v(0.1));
        }
        assert!(cache.len() <= MAX_ENTRIES);
        assert_eq!((cache.hits, cache.misses > 0), (1, true));
    }

    #[test]
    fn text_keys_are_exact() {
        let mut cache = VerdictCache::default();
        let v = |score| Cached { score, terms: Arc::new([]), kind: 0, usual: 1 };
        // A text is kept on its second offer.
        assert!(cache.lookup_text(None, "sshd", "closed").is_none());
        cache.store_text(v(0.5));
        assert!(cache.lookup_text(None, "sshd", "closed").is_none());
        cache.store_text(v(0.5));
        assert_eq!(cache.lookup_text(None, "sshd", "closed").map(|c| c.score), Some(0.5));
        // The same bytes split otherwise between source and message, another
        // severity, another message: other keys.
        assert!(cache.lookup_text(None, "ssh", "dclosed").is_none());
        assert!(cache.lookup_text(Some(3), "sshd", "closed").is_none());
        assert!(cache.lookup_text(None, "sshd", "closed ").is_none());
        // Too long to keep; a clear forgets it all.
        let long = "x".repeat(MAX_KEY_BYTES);
        assert!(cache.lookup_text(None, "", &long).is_none());
        cache.store_text(v(0.9));
        cache.store_text(v(0.9));
        assert!(cache.lookup_text(None, "", &long).is_none());
        cache.clear();
        assert!(cache.lookup_text(None, "sshd", "closed").is_none());
        assert_eq!(cache.hits, 1);
    }
}
