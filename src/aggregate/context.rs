//! Context keys, interning and the per-shard context store.
//!
//! A context is (kind, name, host, set of tags). Its key is computed from the raw bytes without
//! allocating: each tag is hashed, the tags are put in a canonical order (by hash, then bytes) and
//! deduplicated, and the per-tag hashes are summed (so the order they arrived in does not matter).
//! A lookup compares the stored name, host and tags with the candidate byte for byte: two contexts
//! are never merged because their hashes are equal.
//!
//! Stored strings are interned: every context holding the tag `env:prod` shares one `Arc<[u8]>`,
//! and contexts with the same tag set share one [`TagSet`].

use super::output::Text;
use super::slot::Slot;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
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
        // Duplicates are adjacent and share a hash; tags rarely repeat, so look before editing.
        if tags
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.hash == b.hash))
        {
            tags.dedup_by(|a, b| a.hash == b.hash && a.get(bytes) == b.get(bytes));
        }
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

/// An interned tag set: the tags' bytes in canonical order, contiguous (so matching a context
/// reads one buffer), and the same tags as interned strings sorted for output. Contexts with the
/// same tags share one set; sets share their strings.
#[derive(Debug)]
pub(crate) struct TagSet {
    hash: u64,
    /// Canonical order, concatenated.
    bytes: Box<[u8]>,
    /// End offset of each tag in `bytes`.
    ends: Box<[u32]>,
    /// Lexicographic order, for output.
    pub(crate) sorted: Box<[Text]>,
}

impl TagSet {
    #[inline]
    fn matches(&self, r: &ContextRef<'_>) -> bool {
        if self.ends.len() != r.tags.len() {
            return false;
        }
        let mut start = 0usize;
        for (&end, t) in self.ends.iter().zip(r.tags) {
            let end = end as usize;
            if self.bytes.get(start..end) != Some(t.get(r.tag_bytes)) {
                return false;
            }
            start = end;
        }
        true
    }
}

/// The order-independent hash of a context's tags (the sum `canonicalize` returns).
fn tag_set_hash(r: &ContextRef<'_>) -> u64 {
    r.tags.iter().fold(0u64, |acc, t| acc.wrapping_add(t.hash))
}

/// A live context and its open buckets.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) hash: u64,
    pub(crate) kind: Kind,
    pub(crate) name: Text,
    pub(crate) host: Text,
    pub(crate) tags: Arc<TagSet>,
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
            && self.tags.matches(r)
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

    /// Forgets strings nothing holds any more.
    pub(crate) fn sweep(&mut self) {
        self.table.retain(|t| Arc::strong_count(t) > 1);
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

/// The contexts of one shard, stored inline in a hash table keyed by context hash (one probe and
/// one contiguous read per lookup); tag sets and strings interned beside them.
#[derive(Debug, Default)]
pub(crate) struct ContextStore {
    table: HashTable<Context>,
    tag_sets: HashTable<Arc<TagSet>>,
    pub(crate) interner: Interner,
}

/// Why a context could not be found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverLimit;

impl ContextStore {
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The interned tag set of `r`.
    fn tag_set(
        tag_sets: &mut HashTable<Arc<TagSet>>,
        interner: &mut Interner,
        r: &ContextRef<'_>,
    ) -> Arc<TagSet> {
        let hash = tag_set_hash(r);
        if let Some(t) = tag_sets.find(hash, |t| t.hash == hash && t.matches(r)) {
            return Arc::clone(t);
        }
        let mut bytes = Vec::with_capacity(r.tags.iter().map(|t| t.len as usize).sum());
        let mut ends = Vec::with_capacity(r.tags.len());
        for t in r.tags {
            bytes.extend_from_slice(t.get(r.tag_bytes));
            ends.push(bytes.len() as u32);
        }
        let mut sorted: Vec<Text> = r
            .tags
            .iter()
            .map(|t| interner.intern(t.get(r.tag_bytes)))
            .collect();
        sorted.sort();
        let set = Arc::new(TagSet {
            hash,
            bytes: bytes.into(),
            ends: ends.into(),
            sorted: sorted.into(),
        });
        tag_sets.insert_unique(hash, Arc::clone(&set), |t| t.hash);
        set
    }

    /// The context of `r`, created (strings and tag set interned) when new and under `limit`.
    #[inline]
    pub(crate) fn get_or_insert(
        &mut self,
        r: &ContextRef<'_>,
        limit: usize,
        created: &mut u64,
    ) -> Result<&mut Context, OverLimit> {
        let len = self.table.len();
        let ContextStore {
            table,
            tag_sets,
            interner,
        } = self;
        match table.entry(r.hash, |c| c.matches(r), |c| c.hash) {
            Entry::Occupied(o) => Ok(o.into_mut()),
            Entry::Vacant(_) if len >= limit => Err(OverLimit),
            Entry::Vacant(v) => {
                let context = Context {
                    hash: r.hash,
                    kind: r.kind,
                    name: interner.intern(r.name),
                    host: interner.intern(r.host),
                    tags: Self::tag_set(tag_sets, interner, r),
                    last_seen: i64::MIN,
                    // Most contexts only ever have one open bucket at a time.
                    slots: Vec::with_capacity(1),
                };
                *created += 1;
                Ok(v.insert(context).into_mut())
            }
        }
    }

    /// Calls `f` on every context; removes those for which it returns false, then forgets the
    /// tag sets and strings no context holds any more. Returns how many were removed.
    pub(crate) fn retain(&mut self, mut f: impl FnMut(&mut Context) -> bool) -> usize {
        let before = self.table.len();
        self.table.retain(|c| f(c));
        let removed = before - self.table.len();
        if removed > 0 {
            self.tag_sets.retain(|t| Arc::strong_count(t) > 1);
            self.interner.sweep();
        }
        removed
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
