//! Context keys, interning and the per-shard context store.
//!
//! A context is (kind, name, host, set of tags). Its key is computed from the raw bytes without
//! allocating: the tags are put in a canonical order (byte order) and deduplicated, each is
//! hashed, and the per-tag hashes are summed (so the order they arrived in does not matter).
//! A lookup compares the stored name, host and tags with the candidate byte for byte: two contexts
//! are never merged because their hashes are equal.
//!
//! Stored strings are interned: every context holding the tag `env:prod` shares one [`Tag`], and
//! contexts with the same tags share one [`TagSet`] (8 bytes per tag: it holds no bytes of its
//! own). A new set that differs by a few tags from the last large flat set made for its metric
//! name (or, for a new name, the last one made since the last sweep) is held as that
//! difference when it saves at least eight tags: high cardinality from one varying tag costs a
//! set of ≈ 72 bytes per context whatever the number of tags it shares.

use super::known::ContextKey;
use super::output::{Tag, TagSet, Text};
use super::slot::Slot;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use std::hash::BuildHasher;

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

/// The first eight bytes of `tag` as a big-endian integer (zero-padded): ordering these orders
/// tags by their bytes, up to ties between tags sharing eight bytes (or a shorter prefix
/// followed by zeros), which a full comparison then settles.
#[inline]
fn prefix_key(tag: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    let n = tag.len().min(8);
    if let (Some(dst), Some(src)) = (k.get_mut(..n), tag.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_be_bytes(k)
}

/// Puts `tags` in canonical order (byte order, the order of a [`TagSet`]) and removes
/// duplicates; returns the order-independent hash of the set.
#[inline]
pub(crate) fn canonicalize(bytes: &[u8], tags: &mut Vec<TagSpan>) -> u64 {
    if tags.len() > 1 {
        // Sort on each tag's first eight bytes as a big-endian integer (in `hash` for now):
        // the same order as the bytes', and most comparisons end there without a `memcmp`.
        for t in tags.iter_mut() {
            t.hash = prefix_key(t.get(bytes));
        }
        tags.sort_unstable_by(|a, b| {
            a.hash
                .cmp(&b.hash)
                .then_with(|| a.get(bytes).cmp(b.get(bytes)))
        });
        tags.dedup_by(|a, b| a.hash == b.hash && a.get(bytes) == b.get(bytes));
    }
    let mut sum = 0u64;
    for t in tags.iter_mut() {
        t.hash = tag_hash(t.get(bytes));
        sum = sum.wrapping_add(t.hash);
    }
    sum
}

/// The hash of one tag; a set's hash is the sum over its tags.
#[inline]
pub(crate) fn tag_hash(tag: &[u8]) -> u64 {
    hash_bytes(TAG_SEED, tag)
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

/// Whether `set` holds exactly the tags of `r` (both in canonical order).
#[inline]
fn set_matches(set: &TagSet, r: &ContextRef<'_>) -> bool {
    set.len() == r.tags.len()
        && set
            .iter()
            .zip(r.tags)
            .all(|(tag, t)| tag == t.get(r.tag_bytes))
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
    pub(crate) tags: TagSet,
    /// Unix seconds of the last sample.
    pub(crate) last_seen: i64,
    /// The store's epoch when a flush last visited this context (or when it was made).
    pub(crate) epoch: u8,
    /// While a flush under way has not visited this context: the time of its last sample since
    /// the flush began, as seconds after the flush's `now` ([`NOT_LATE`] when none).
    pub(crate) late: i32,
    /// Bucket aggregates; a slot whose bucket was flushed stays for its buffers' capacity.
    /// (Boxed, not a `Vec`: slots grow one at a time, so the capacity is the length.)
    pub(crate) slots: Box<[Slot]>,
}

/// [`Context::late`] when no sample waits.
pub(crate) const NOT_LATE: i32 = i32::MIN;

/// The store's flush epoch and the `now` of the flush under way (see [`Context::seen`]).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stamp {
    pub(crate) epoch: u8,
    pub(crate) since: i64,
}

impl Context {
    /// Notes a sample at `now`. While a flush under way has not visited the context, its last
    /// sample's time before the flush is kept for that flush (which decides with it which
    /// zeros an idle counter gets), and `now` waits in [`late`](Self::late).
    #[inline]
    pub(crate) fn seen(&mut self, now: i64, stamp: Stamp) {
        if self.epoch == stamp.epoch {
            self.last_seen = self.last_seen.max(now);
        } else {
            let late = now
                .saturating_sub(stamp.since)
                .clamp(i64::from(NOT_LATE) + 1, i64::from(i32::MAX));
            self.late = self.late.max(late as i32);
        }
    }

    /// Marks the context visited by the flush of `stamp`; a sample's time that waited for it
    /// becomes the last seen time.
    pub(crate) fn visited(&mut self, stamp: Stamp) {
        self.epoch = stamp.epoch;
        if self.late != NOT_LATE {
            let late = stamp.since.saturating_add(i64::from(self.late));
            self.last_seen = self.last_seen.max(late);
            self.late = NOT_LATE;
        }
    }

    #[inline]
    fn matches(&self, r: &ContextRef<'_>) -> bool {
        self.hash == r.hash
            && self.kind == r.kind
            && *self.name == *r.name
            && *self.host == *r.host
            && set_matches(&self.tags, r)
    }
}

/// A string an [`Interner`] can hold.
pub(crate) trait Interned: Clone {
    fn new(bytes: &[u8]) -> Self;
    fn bytes(&self) -> &[u8];
    fn is_shared(&self) -> bool;
}

impl Interned for Text {
    fn new(bytes: &[u8]) -> Text {
        Text::new(bytes)
    }
    fn bytes(&self) -> &[u8] {
        Text::bytes(self)
    }
    fn is_shared(&self) -> bool {
        Text::is_shared(self)
    }
}

/// Fewest tags a difference must save over a flat set: a flat set holds 8 bytes per tag, a
/// difference 8 per added tag plus a 24-byte box (32 with the allocator's header), and every
/// read of it goes through its base; eight tags' worth nets at least 32 bytes.
const MIN_SAVED: usize = 8;

/// `r`'s tags as a difference from `base` when that is smaller than a flat
/// set: few tags added (interned here), any removed.
fn difference(base: &TagSet, r: &ContextRef<'_>, interner: &mut Interner<Tag>) -> Option<TagSet> {
    use super::output::MAX_ADDED;
    if !base.can_be_base() {
        return None;
    }
    let base_tags = base.flat();
    let mut removed = 0u64;
    let mut added: smallvec::SmallVec<[(&[u8], u8); MAX_ADDED]> = smallvec::SmallVec::new();
    let mut i = 0;
    for t in r.tags {
        let bytes = t.get(r.tag_bytes);
        while base_tags.get(i).is_some_and(|b| b.bytes() < bytes) {
            removed |= 1 << i;
            i += 1;
        }
        if base_tags.get(i).is_some_and(|b| b.bytes() == bytes) {
            i += 1;
            continue;
        }
        if added.len() == MAX_ADDED || added.len() + 1 + MIN_SAVED > r.tags.len() {
            return None;
        }
        added.push((bytes, u8::try_from(i).ok()?));
    }
    // (Also when nothing was added: a subset of the base must be large enough too.)
    if added.len() + MIN_SAVED > r.tags.len() {
        return None;
    }
    for k in i..base_tags.len() {
        removed |= 1 << k;
    }
    let added: smallvec::SmallVec<[(Tag, u8); MAX_ADDED]> = added
        .iter()
        .map(|&(bytes, at)| (interner.intern(bytes), at))
        .collect();
    TagSet::delta(
        base,
        removed,
        &added,
        r.tags.iter().map(|t| t.get(r.tag_bytes)),
    )
}

/// Strings shared by the contexts of one shard.
#[derive(Debug)]
pub(crate) struct Interner<T> {
    table: HashTable<T>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            table: HashTable::new(),
        }
    }
}

impl<T: Interned> Interner<T> {
    pub(crate) fn intern(&mut self, bytes: &[u8]) -> T {
        let hash = hash_bytes(INTERN_SEED, bytes);
        if let Some(t) = self.table.find(hash, |t| t.bytes() == bytes) {
            return t.clone();
        }
        let t = T::new(bytes);
        self.table
            .insert_unique(hash, t.clone(), |t| hash_bytes(INTERN_SEED, t.bytes()));
        t
    }

    /// Forgets strings nothing holds any more.
    pub(crate) fn sweep(&mut self) {
        self.table.retain(|t| t.is_shared());
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
    tag_sets: HashTable<TagSet>,
    /// Per metric name, the flat tag set new sets of that name are made as differences from…
    bases: HashTable<(Text, TagSet)>,
    /// …or, for a name without one, the last flat set made.
    last_base: Option<TagSet>,
    /// Names and hosts.
    pub(crate) interner: Interner<Text>,
    pub(crate) tags: Interner<Tag>,
    scratch: Vec<Tag>,
    /// Advanced by each flush, which marks the contexts it visited with it.
    pub(crate) stamp: Stamp,
}

/// Why a context could not be found or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverLimit;

impl ContextStore {
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Hints that the context with these handles will be updated soon: finds it (the table's
    /// cache misses, taken here while other lookups are in flight) and prefetches its slots.
    #[inline]
    pub(crate) fn prefetch_known(&self, key: &ContextKey) {
        if let Some(c) = self
            .table
            .find(key.hash, |c| key.same(&c.name, &c.host, &c.tags, c.kind))
        {
            crate::simd::prefetch_line(c.slots.as_ptr().cast());
        }
    }

    /// The context with exactly these interned handles (see [`ContextKey`]).
    #[inline]
    pub(crate) fn find_known(&mut self, key: &ContextKey) -> Option<&mut Context> {
        self.table
            .find_mut(key.hash, |c| key.same(&c.name, &c.host, &c.tags, c.kind))
    }

    /// The interned handles of the context of `r`, when it exists.
    pub(crate) fn key_of(&self, r: &ContextRef<'_>) -> Option<ContextKey> {
        self.table
            .find(r.hash, |c| c.matches(r))
            .map(|c| ContextKey {
                hash: c.hash,
                kind: c.kind,
                name: c.name.clone(),
                host: c.host.clone(),
                tags: c.tags.clone(),
            })
    }

    /// The number of buckets of the context table: the range of [`at`](Self::at).
    pub(crate) fn buckets(&self) -> usize {
        self.table.num_buckets()
    }

    /// The context in bucket `i` of the table, if any. A bucket's context stays in it until a
    /// context is removed or an insert rehashes the table.
    pub(crate) fn at(&mut self, i: usize) -> Option<&mut Context> {
        self.table.get_bucket_mut(i)
    }

    /// The kind of every context.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.table.iter().map(|c| c.kind)
    }

    /// The interned tag set of `r`, whose interned name is `name`.
    ///
    /// A new set is made as a difference from the last flat set made for the same name (or,
    /// for a new name, the last flat set made) when that is smaller (see [`TagSet`]); otherwise
    /// it is flat and becomes the name's base.
    fn tag_set(
        tag_sets: &mut HashTable<TagSet>,
        bases: &mut HashTable<(Text, TagSet)>,
        last_base: &mut Option<TagSet>,
        interner: &mut Interner<Tag>,
        scratch: &mut Vec<Tag>,
        name: &Text,
        r: &ContextRef<'_>,
    ) -> TagSet {
        let hash = tag_set_hash(r);
        if let Some(t) = tag_sets.find(hash, |t| set_matches(t, r)) {
            return t.clone();
        }
        let name_hash = hash_bytes(NAME_SEED, name);
        let base = bases
            .find(name_hash, |(n, _)| Text::ptr_eq(n, name))
            .map(|(_, base)| base)
            .or(last_base.as_ref());
        let set = match base.and_then(|base| difference(base, r, interner)) {
            Some(set) => set,
            None => {
                scratch.clear();
                scratch.extend(r.tags.iter().map(|t| interner.intern(t.get(r.tag_bytes))));
                let set = TagSet::from_sorted(scratch);
                scratch.clear();
                // Only a set large enough for a difference from it to pay becomes a base (a
                // small one would push out a good base of the name).
                if set.can_be_base() && set.len() > MIN_SAVED {
                    *last_base = Some(set.clone());
                    match bases.entry(
                        name_hash,
                        |(n, _)| Text::ptr_eq(n, name),
                        |(n, _)| hash_bytes(NAME_SEED, n),
                    ) {
                        Entry::Occupied(mut o) => o.get_mut().1 = set.clone(),
                        Entry::Vacant(v) => {
                            v.insert((name.clone(), set.clone()));
                        }
                    }
                }
                set
            }
        };
        tag_sets.insert_unique(hash, set.clone(), TagSet::hash);
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
            bases,
            last_base,
            interner,
            tags,
            scratch,
            stamp,
        } = self;
        match table.entry(r.hash, |c| c.matches(r), |c| c.hash) {
            Entry::Occupied(o) => Ok(o.into_mut()),
            Entry::Vacant(_) if len >= limit => Err(OverLimit),
            Entry::Vacant(v) => {
                let name = interner.intern(r.name);
                let context = Context {
                    hash: r.hash,
                    kind: r.kind,
                    tags: Self::tag_set(tag_sets, bases, last_base, tags, scratch, &name, r),
                    name,
                    host: interner.intern(r.host),
                    last_seen: i64::MIN,
                    epoch: stamp.epoch,
                    late: NOT_LATE,
                    slots: Box::default(),
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
            self.sweep();
        }
        removed
    }

    /// Forgets the tag sets and strings no context (or anything else) holds any more.
    pub(crate) fn sweep(&mut self) {
        self.last_base = None;
        // Differences first: each holds its base, so only once they are gone does a base that
        // nothing else uses show as unshared. Then the bases only this table and the set table
        // hold, then the flat sets.
        self.tag_sets
            .retain(|t| t.base().is_none() || t.is_shared());
        self.bases.retain(|(_, set)| set.references() > 2);
        self.tag_sets.retain(|t| t.is_shared());
        self.interner.sweep();
        self.tags.sweep();
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

    proptest::proptest! {
        #[test]
        fn property_test_canonical_order_is_byte_order_without_duplicates(
            tags in proptest::collection::vec(
                proptest::collection::vec(proptest::prop_oneof![proptest::strategy::Just(0u8), proptest::strategy::Just(b'a'), proptest::prelude::any::<u8>()], 0..12),
                0..12,
            ),
        ) {
            let bytes: Vec<u8> = tags.concat();
            let mut spans = Vec::new();
            let mut start = 0u32;
            for t in &tags {
                spans.push(TagSpan { start, len: t.len() as u32, hash: 0 });
                start += t.len() as u32;
            }
            canonicalize(&bytes, &mut spans);
            let got: Vec<&[u8]> = spans.iter().map(|t| t.get(&bytes)).collect();
            let mut expected: Vec<&[u8]> = tags.iter().map(Vec::as_slice).collect();
            expected.sort();
            expected.dedup();
            proptest::prop_assert_eq!(got, expected);
        }
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

    /// Inserts a gauge context named `name` with `tags` (comma-separated); returns its set.
    fn insert(store: &mut ContextStore, name: &[u8], tags: &[u8]) -> TagSet {
        let mut t = spans(tags);
        let set_hash = canonicalize(tags, &mut t);
        let r = ContextRef {
            hash: context_hash(Kind::Gauge, name, b"", set_hash),
            kind: Kind::Gauge,
            name,
            host: b"",
            tag_bytes: tags,
            tags: &t,
        };
        let mut created = 0;
        store
            .get_or_insert(&r, usize::MAX, &mut created)
            .map(|c| c.tags.clone())
            .unwrap_or_default()
    }

    /// The flat set of `tags` (comma-separated), as `TagSet::from` builds it.
    fn flat(tags: &[u8]) -> TagSet {
        TagSet::from(tags.split(|&b| b == b',').collect::<Vec<_>>())
    }

    fn assert_same(got: &TagSet, tags: &[u8]) {
        let want = flat(tags);
        let hash = |s: &TagSet| std::hash::BuildHasher::hash_one(&FixedState::with_seed(1), s);
        assert_eq!(got, &want);
        assert_eq!(got.cmp(&want), std::cmp::Ordering::Equal);
        assert_eq!(hash(got), hash(&want));
        assert_eq!(got.len(), want.len());
        assert_eq!(got.iter().len(), want.len());
        assert_eq!(got.wire_len(), want.wire_len());
        assert_eq!(got.has_resource_tags(), want.has_resource_tags());
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            want.iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_set_that_differs_a_little_from_its_names_base_holds_only_the_difference() {
        const A: &str = "a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9,j:10,k:11,l:12";
        const Q: &str = "q:1,r:2,s:3,t:4,u:5,v:6,w:7,x:8,y:9,z:10";
        let mut store = ContextStore::default();
        let mut m = |tags: &str| insert(&mut store, b"m", tags.as_bytes());
        let first = m(A);
        assert!(first.base().is_none());
        let second = m(&format!("{A},pod:7"));
        assert!(second.base().is_some_and(|b| b.ptr_eq(&first)));
        assert_eq!(second.flat().len(), 1, "only the added tag");
        assert_same(&second, format!("{A},pod:7").as_bytes());
        // Removed and added in the middle and at both ends.
        let mixed = "0:0,a:1,c:3,cc:1,d:4,f:6,g:7,h:8,i:9,j:10,k:11,l:12,z:9";
        let third = m(mixed);
        assert!(third.base().is_some());
        assert_same(&third, mixed.as_bytes());
        // A large subset of the base is a difference too; a small one is flat, and does not
        // push the name's base out.
        let subset = m("a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9,j:10,k:11");
        assert!(subset.base().is_some());
        let small = m("a:1,b:2");
        assert!(small.base().is_none());
        let after_small = m(&format!("{A},pod:8"));
        assert!(after_small.base().is_some_and(|b| b.ptr_eq(&first)));
        // Too different: flat, and the new base of the name.
        let fourth = m(Q);
        assert!(fourth.base().is_none());
        let fifth = m(&format!("{Q},zz:1"));
        assert!(fifth.base().is_some_and(|b| b.ptr_eq(&fourth)));
        // A name without a base of its own starts from the last flat set made.
        let other = insert(&mut store, b"n", format!("{Q},zz:2").as_bytes());
        assert!(other.base().is_some_and(|b| b.ptr_eq(&fourth)));
        // The same tags again: the same set.
        let again = insert(&mut store, b"m2", format!("{A},pod:7").as_bytes());
        assert!(again.ptr_eq(&second));

        let sets = [
            first,
            second,
            third,
            subset,
            small,
            after_small,
            fourth,
            fifth,
            other,
            again,
        ];
        let contexts = sets.len() - 1; // `again` is `second`'s set, another context
        drop(sets);
        assert_eq!(store.retain(|_| false), contexts + 1);
        assert_eq!(store.tag_sets.len(), 0, "every set is released");
        assert_eq!(store.bases.len(), 0);
        assert_eq!(store.tags.len(), 0);
    }

    #[test]
    fn a_replaced_base_is_released_with_its_differences() {
        // For each of 16 names: a base, a difference from it, then another base that stays.
        // Sixteen, so that the set table's order visits some bases before their differences.
        let mut store = ContextStore::default();
        let mut kept = Vec::new();
        for n in 0..16 {
            let name = format!("m{n}");
            let a: Vec<String> = (0..10).map(|t| format!("a{n}.{t}:x")).collect();
            let q: Vec<String> = (0..10).map(|t| format!("q{n}.{t}:x")).collect();
            let a = a.join(",");
            let base = insert(&mut store, name.as_bytes(), a.as_bytes());
            let d = insert(&mut store, name.as_bytes(), format!("{a},pod:1").as_bytes());
            assert!(d.base().is_some_and(|b| b.ptr_eq(&base)));
            kept.push(insert(&mut store, name.as_bytes(), q.join(",").as_bytes()));
        }
        // Every context but the kept ones expires.
        assert_eq!(store.retain(|c| kept.iter().any(|k| c.tags.ptr_eq(k))), 32);
        assert_eq!(store.tag_sets.len(), 16, "only the kept sets are left");
        assert_eq!(store.bases.len(), 16);
        assert_eq!(store.tags.len(), 160);
    }

    proptest::proptest! {
        #[test]
        fn property_test_sets_made_as_differences_equal_flat_sets(
            base in proptest::sample::subsequence(POOL.to_vec(), 0..POOL.len()),
            toggles in proptest::collection::vec(
                proptest::collection::vec(0..POOL.len(), 0..4),
                1..12,
            ),
        ) {
            // Sets a few tags away from one another, as high cardinality makes them.
            let mut store = ContextStore::default();
            for toggle in &toggles {
                let mut tags: Vec<&str> = base.clone();
                for &i in toggle {
                    let t = POOL.get(i).copied().unwrap_or_default();
                    match tags.iter().position(|&x| x == t) {
                        Some(p) => {
                            tags.remove(p);
                        }
                        None => tags.push(t),
                    }
                }
                let joined = tags.join(",");
                let got = insert(&mut store, b"m", joined.as_bytes());
                // (No tags at all is one empty tag here, in both.)
                assert_same(&got, joined.as_bytes());
            }
        }
    }

    const POOL: [&str; 16] = [
        "a:1",
        "b:2",
        "c:3",
        "d:4",
        "e:5",
        "f:6",
        "g:7",
        "h:8",
        "host:x",
        "device:sda",
        "pod:1",
        "pod:2",
        "pod:3",
        "z",
        "0",
        "dd.internal.resource:x:y",
    ];

    #[test]
    fn a_context_is_one_cache_line_in_the_table() {
        // Thin handles for the name, host and tags, and a boxed slice of slots: the context
        // table (one entry per bucket, 1.27 buckets per context at 207k contexts) costs 64 B a
        // bucket, not the 88 B of wide `Arc<[u8]>` names and a `Vec` of slots.
        assert_eq!(std::mem::size_of::<Context>(), 64);
        assert_eq!(std::mem::size_of::<ContextKey>(), 40);
    }

    #[test]
    fn the_interner_shares_strings_and_forgets_unused_ones() {
        let mut i = Interner::<Text>::default();
        let a = i.intern(b"env:prod");
        let b = i.intern(b"env:prod");
        assert!(Text::ptr_eq(&a, &b));
        drop((a, b));
        let _keep = i.intern(b"kept");
        i.sweep();
        assert_eq!(i.len(), 1);
    }
}
