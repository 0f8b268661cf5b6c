//! Context keys, interning and the per-shard context store.
//!
//! A context is (kind, name, host, set of tags). Its key is computed from the raw bytes without
//! allocating: each tag is hashed, the tags are put in a canonical order (by hash, then bytes) and
//! deduplicated, and the per-tag hashes are summed (so the order they arrived in does not matter).
//! A lookup compares the stored name, host and tags with the candidate byte for byte: two contexts
//! are never merged because their hashes are equal.
//!
//! Stored strings are interned: every context holding the tag `env:prod` shares one `Arc<[u8]>`.

use super::output::Text;
use super::slot::Slot;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::Arc;

const TAG_SEED: u64 = 0x6a09_e667_f3bc_c908;
const NAME_SEED: u64 = 0xbb67_ae85_84ca_a73b;
const HOST_SEED: u64 = 0x3c6e_f372_fe94_f82b;
const INTERN_SEED: u64 = 0xa54f_f53a_5f1d_36f1;

/// Hashes bytes with one of the seeds above.
#[inline]
pub(crate) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    FixedState::with_seed(seed).hash_one(bytes)
}

/// How a context aggregates. Part of the key: a gauge and a counter with the same name, host and
/// tags are two contexts (the Agent shares one context between them, a quirk we do not copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Set,
    /// Histograms and timings.
    Histogram,
    Distribution,
}

impl Kind {
    pub(crate) fn of(t: crate::MetricType) -> Kind {
        use crate::MetricType as T;
        match t {
            T::Count => Kind::Counter,
            T::Gauge => Kind::Gauge,
            T::Set => Kind::Set,
            T::Histogram | T::Timing => Kind::Histogram,
            T::Distribution => Kind::Distribution,
        }
    }
}

/// A tag inside a byte buffer, with its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagSpan {
    pub(crate) start: u32,
    pub(crate) len: u32,
    pub(crate) hash: u64,
}

impl TagSpan {
    #[inline]
    pub(crate) fn get<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        let start = self.start as usize;
        bytes
            .get(start..start + self.len as usize)
            .unwrap_or_default()
    }
}

/// Puts `tags` in canonical order (hash, then bytes) and removes duplicates; returns the
/// order-independent hash of the set.
#[inline]
pub(crate) fn canonicalize(bytes: &[u8], tags: &mut Vec<TagSpan>) -> u64 {
    for t in tags.iter_mut() {
        t.hash = hash_bytes(TAG_SEED, t.get(bytes));
    }
    if tags.len() > 1 {
        tags.sort_unstable_by(|a, b| {
            a.hash
                .cmp(&b.hash)
                .then_with(|| a.get(bytes).cmp(b.get(bytes)))
        });
        tags.dedup_by(|a, b| a.hash == b.hash && a.get(bytes) == b.get(bytes));
    }
    tags.iter().fold(0u64, |acc, t| acc.wrapping_add(t.hash))
}

/// The key hash of a context.
#[inline]
pub(crate) fn context_hash(kind: Kind, name: &[u8], host: &[u8], tag_set: u64) -> u64 {
    let h = hash_bytes(NAME_SEED, name)
        ^ hash_bytes(HOST_SEED, host).rotate_left(17)
        ^ tag_set.rotate_left(41)
        ^ (kind as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // Final avalanche (from splitmix64) so shard selection can use any bits.
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A context as a sample names it, borrowing the enricher's (or a batch's) buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ContextRef<'a> {
    pub(crate) hash: u64,
    pub(crate) kind: Kind,
    pub(crate) name: &'a [u8],
    pub(crate) host: &'a [u8],
    pub(crate) tag_bytes: &'a [u8],
    /// Canonical order, deduplicated.
    pub(crate) tags: &'a [TagSpan],
}

/// A live context and its open buckets.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) hash: u64,
    pub(crate) kind: Kind,
    pub(crate) name: Text,
    pub(crate) host: Text,
    /// Canonical order (as [`canonicalize`] leaves them).
    pub(crate) tags: Box<[Text]>,
    /// Unix seconds of the last sample.
    pub(crate) last_seen: i64,
    /// Bucket aggregates; a slot whose bucket was flushed stays for its buffers' capacity.
    pub(crate) slots: Vec<Slot>,
}

impl Context {
    #[inline]
    fn matches(&self, r: &ContextRef<'_>) -> bool {
        self.hash == r.hash
            && self.kind == r.kind
            && *self.name == *r.name
            && *self.host == *r.host
            && self.tags.len() == r.tags.len()
            && self
                .tags
                .iter()
                .zip(r.tags)
                .all(|(a, b)| **a == *b.get(r.tag_bytes))
    }
}

/// Strings shared by the contexts of one shard.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    table: HashTable<Text>,
}

impl Interner {
    pub(crate) fn intern(&mut self, bytes: &[u8]) -> Text {
        let hash = hash_bytes(INTERN_SEED, bytes);
        if let Some(t) = self.table.find(hash, |t| **t == *bytes) {
            return t.clone();
        }
        let t: Text = Arc::from(bytes);
        self.table
            .insert_unique(hash, t.clone(), |t| hash_bytes(INTERN_SEED, t));
        t
    }

    /// Forgets strings no context holds any more.
    pub(crate) fn sweep(&mut self) {
        self.table.retain(|t| Arc::strong_count(t) > 1);
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

/// The contexts of one shard: a hash table of indices into a slab.
#[derive(Debug, Default)]
pub(crate) struct ContextStore {
    table: HashTable<u32>,
    slab: Vec<Option<Context>>,
    free: Vec<u32>,
    pub(crate) interner: Interner,
}

/// Why a context could not be found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverLimit;

impl ContextStore {
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The context of `r`, created (strings interned) when new and under `limit`.
    #[inline]
    pub(crate) fn get_or_insert(
        &mut self,
        r: &ContextRef<'_>,
        limit: usize,
        created: &mut u64,
    ) -> Result<&mut Context, OverLimit> {
        let slab = &self.slab;
        let found = self.table.find(r.hash, |&i| {
            slab.get(i as usize)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.matches(r))
        });
        let index = match found {
            Some(&i) => i as usize,
            None => {
                if self.table.len() >= limit {
                    return Err(OverLimit);
                }
                let context = Context {
                    hash: r.hash,
                    kind: r.kind,
                    name: self.interner.intern(r.name),
                    host: self.interner.intern(r.host),
                    tags: r
                        .tags
                        .iter()
                        .map(|t| self.interner.intern(t.get(r.tag_bytes)))
                        .collect(),
                    last_seen: i64::MIN,
                    // Most contexts only ever have one open bucket at a time.
                    slots: Vec::with_capacity(1),
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        if let Some(slot) = self.slab.get_mut(i as usize) {
                            *slot = Some(context);
                        }
                        i
                    }
                    None => {
                        self.slab.push(Some(context));
                        (self.slab.len() - 1) as u32
                    }
                };
                let slab = &self.slab;
                self.table.insert_unique(r.hash, i, |&j| {
                    slab.get(j as usize)
                        .and_then(Option::as_ref)
                        .map_or(0, |c| c.hash)
                });
                *created += 1;
                i as usize
            }
        };
        self.slab
            .get_mut(index)
            .and_then(Option::as_mut)
            .ok_or(OverLimit)
    }

    /// Every live context, mutably, with its slab index.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Context)> {
        self.slab
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| c.as_mut().map(|c| (i, c)))
    }

    /// Removes the context at slab index `i`.
    pub(crate) fn remove(&mut self, i: usize) {
        let Some(context) = self.slab.get_mut(i).and_then(Option::take) else {
            return;
        };
        if let Ok(entry) = self.table.find_entry(context.hash, |&j| j as usize == i) {
            entry.remove();
        }
        self.free.push(i as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(bytes: &[u8]) -> Vec<TagSpan> {
        let mut out = Vec::new();
        let mut start = 0;
        for piece in bytes.split(|&b| b == b',') {
            out.push(TagSpan {
                start: start as u32,
                len: piece.len() as u32,
                hash: 0,
            });
            start += piece.len() + 1;
        }
        out
    }

    #[test]
    fn tag_order_and_duplicates_do_not_change_the_key() {
        let (a, b) = (b"x:1,y:2".as_slice(), b"y:2,x:1,x:1".as_slice());
        let (mut ta, mut tb) = (spans(a), spans(b));
        assert_eq!(canonicalize(a, &mut ta), canonicalize(b, &mut tb));
        assert_eq!(tb.len(), 2);
        let (mut tc, c) = (spans(b"x:1"), b"x:1".as_slice());
        assert_ne!(canonicalize(a, &mut ta), canonicalize(c, &mut tc));
    }

    #[test]
    fn contexts_with_equal_hashes_but_different_bytes_stay_apart() {
        let mut store = ContextStore::default();
        let mut created = 0;
        let (tb1, tb2) = (b"a".as_slice(), b"b".as_slice());
        let t = [TagSpan {
            start: 0,
            len: 1,
            hash: 0,
        }];
        let r1 = ContextRef {
            hash: 42,
            kind: Kind::Gauge,
            name: b"m",
            host: b"",
            tag_bytes: tb1,
            tags: &t,
        };
        let r2 = ContextRef {
            tag_bytes: tb2,
            ..r1
        };
        store
            .get_or_insert(&r1, 10, &mut created)
            .unwrap()
            .last_seen = 1;
        store
            .get_or_insert(&r2, 10, &mut created)
            .unwrap()
            .last_seen = 2;
        assert_eq!((store.len(), created), (2, 2));
        assert_eq!(
            store
                .get_or_insert(&r1, 10, &mut created)
                .unwrap()
                .last_seen,
            1
        );
        assert_eq!(
            store
                .get_or_insert(&r2, 10, &mut created)
                .unwrap()
                .last_seen,
            2
        );
    }

    #[test]
    fn the_interner_shares_strings_and_forgets_unused_ones() {
        let mut i = Interner::default();
        let a = i.intern(b"env:prod");
        let b = i.intern(b"env:prod");
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        let _keep = i.intern(b"kept");
        i.sweep();
        assert_eq!(i.len(), 1);
    }
}
