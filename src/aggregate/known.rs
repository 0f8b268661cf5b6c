//! Known lines: a cache from a metric's name, type and tags exactly as the client sent them to
//! the context they resolved to, so that a repeated line skips enrichment (special tags, mapper,
//! namespace, extra tags), sorting and hashing its tags, and the byte-by-byte context match.
//!
//! A client sends the same context the same way again and again: the same name, the same tags
//! in the same order. The cache is keyed by a hash of those raw bytes; a hit is confirmed by
//! comparing them with a copy (two lines are never taken for one because their hashes match),
//! and yields the context's interned name, host and tag set. The context store then finds the
//! context by pointer equality of those handles: interned strings and sets are unique per store,
//! so equal pointers mean equal contents.
//!
//! The cache is eight-way set-associative: a line may sit in any of the eight slots of the set its
//! hash picks, and the eight slots' hashes share one 64-byte cache line, so a lookup reads one line
//! of hashes (a small, cache-resident array) and then only the slot that matches. A new line
//! takes an empty slot, else one not hit since the set was last swept (not recently used). With
//! two ways, 10 000 lines in 32 768 slots missed on 5 % of messages: three or more lines wanted
//! the same pair and evicted each other in turn. It holds at most a configured number of lines
//! (`AggregatorConfig::with_known_lines`, 32 768 by default, rounded up to a power of two) of at
//! most [`KNOWN_LINE_BYTES`] bytes each
//! and 256 bytes of line text per line in total (8 MiB by default), and
//! reuses each slot's buffer: once warm it allocates nothing. It is cleared when a flush expires
//! contexts, so that it does not keep their strings alive.

use super::context::{Kind, hash_bytes};
use super::output::{TagSet, Text};
use crate::simd::prefetch_line;
use std::cell::Cell;

/// Longer names plus tags are not cached: the default read buffer (`DD_DOGSTATSD_BUFFER_SIZE`),
/// so every line of a default setup may be. Long lines gain the most: their enrichment sorts and
/// interns dozens of tags.
pub(crate) const KNOWN_LINE_BYTES: usize = 8192;
/// Line text the cache holds at most, per line it holds: 8 MiB for the default 32 768 lines
/// (the 2 800 contexts of `dsd_smp3k`, 1.8 KB a line on average, take 5.8 MB).
const BYTES_PER_LINE: usize = 256;

const LINE_SEED: u64 = 0x1f83_d9ab_fb41_bd6b;
const TAGS_SEED: u64 = 0x5be0_cd19_137e_2179;

/// The interned handles of a context, enough to find it in its store.
#[derive(Debug, Clone)]
pub(crate) struct ContextKey {
    pub(crate) hash: u64,
    pub(crate) kind: Kind,
    pub(crate) name: Text,
    pub(crate) host: Text,
    pub(crate) tags: TagSet,
}

impl ContextKey {
    /// Whether `self` and `other` hold the very same interned handles.
    #[inline]
    pub(crate) fn same(&self, name: &Text, host: &Text, tags: &TagSet, kind: Kind) -> bool {
        self.kind == kind
            && Text::ptr_eq(&self.name, name)
            && Text::ptr_eq(&self.host, host)
            && self.tags.ptr_eq(tags)
    }
}

/// A metric line as the cache sees it: the raw name and tags field, the type, and whether the
/// line had a `card:` field (which changes how `dd.internal.card:` tags are read).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawLine<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) tags: &'a [u8],
    pub(crate) kind: Kind,
    pub(crate) card: bool,
}

impl RawLine<'_> {
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        hash_bytes(LINE_SEED, self.name)
            ^ hash_bytes(TAGS_SEED, self.tags).rotate_left(23)
            ^ (self.kind as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ u64::from(self.card)
    }
}

#[derive(Debug, Default)]
struct Slot {
    hash: u64,
    kind: Option<Kind>,
    card: bool,
    /// Name then tags.
    bytes: Vec<u8>,
    name_len: usize,
    context: Option<ContextKey>,
    /// Hit since its set was last swept (a slot not hit goes first; see [`KnownLines::put`]).
    used: Cell<bool>,
}

impl Slot {
    #[inline]
    fn holds(&self, hash: u64, line: &RawLine<'_>) -> bool {
        self.hash == hash
            && self.kind == Some(line.kind)
            && self.card == line.card
            && self.name_len == line.name.len()
            && self.bytes.len() == line.name.len() + line.tags.len()
            && self.bytes.get(..self.name_len) == Some(line.name)
            && self.bytes.get(self.name_len..) == Some(line.tags)
    }
}

/// Slots per set.
const WAYS: usize = 8;

/// The hashes of one set's slots, in one cache line; 0 marks an empty slot (a line's own hash is
/// stored with its low bit set, see [`tag`]).
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct SetHashes([u64; WAYS]);

/// What a set's hash array holds for a line of hash `hash`: never 0, the empty mark.
#[inline]
fn tag(hash: u64) -> u64 {
    hash | 1
}

/// The cache; see the module documentation.
#[derive(Debug)]
pub(crate) struct KnownLines {
    hashes: Box<[SetHashes]>,
    slots: Box<[Slot]>,
    /// Slots per set: [`WAYS`], or fewer for a cache of fewer lines.
    ways: usize,
    /// Sets − 1 (their number is a power of two).
    mask: usize,
    /// Capacity of every slot's buffer, and the most it may reach.
    bytes: usize,
    budget: usize,
    /// Slots holding a line, so forgetting costs what was filled.
    filled: Vec<usize>,
}

impl KnownLines {
    /// A cache of `lines` lines (rounded up to a power of two; 0 caches nothing).
    pub(crate) fn new(lines: usize) -> KnownLines {
        let n = if lines == 0 {
            0
        } else {
            lines
                .checked_next_power_of_two()
                .unwrap_or(1 << 20)
                .min(1 << 20)
        };
        let ways = n.min(WAYS);
        let sets = n.checked_div(ways).unwrap_or(0);
        KnownLines {
            hashes: vec![SetHashes::default(); sets].into_boxed_slice(),
            slots: (0..n).map(|_| Slot::default()).collect(),
            ways,
            mask: sets.saturating_sub(1),
            bytes: 0,
            budget: n.saturating_mul(BYTES_PER_LINE),
            filled: Vec::with_capacity(n),
        }
    }

    /// The set a line of this hash belongs to.
    #[inline]
    fn set(&self, hash: u64) -> usize {
        // The high bits: the low ones are in every tag alike.
        (hash >> 40) as usize & self.mask
    }

    /// The first slot of the set of `hash` that holds a line of that hash and passes `ok`.
    #[inline(always)]
    fn find(&self, hash: u64, ok: impl Fn(&Slot) -> bool) -> Option<&Slot> {
        let set = self.set(hash);
        let want = tag(hash);
        let hashes = &self.hashes.get(set)?.0;
        // One compare per way, no branch: a bit mask of the ways whose hash matches.
        let mut matches = 0u32;
        for (way, &t) in hashes.iter().enumerate() {
            matches |= u32::from(t == want) << way;
        }
        matches &= (1u32 << self.ways) - 1;
        while matches != 0 {
            let way = matches.trailing_zeros() as usize;
            matches &= matches - 1;
            if let Some(slot) = self.slots.get(set * self.ways + way)
                && ok(slot)
            {
                return Some(slot);
            }
        }
        None
    }

    /// The context `line` resolved to when last seen, if the cache still holds it.
    #[cfg(test)]
    pub(crate) fn get(&self, line: &RawLine<'_>) -> Option<&ContextKey> {
        self.get_hashed(line.hash(), line)
    }

    /// The context `line` resolved to when last seen, if the cache still holds it; `hash` is
    /// the line's ([`RawLine::hash`]).
    #[inline]
    pub(crate) fn get_hashed(&self, hash: u64, line: &RawLine<'_>) -> Option<&ContextKey> {
        let slot = self.find(hash, |s| s.holds(hash, line))?;
        slot.used.set(true);
        slot.context.as_ref()
    }

    /// Hints that a line of this hash will be looked up soon: its set's line of hashes.
    #[inline]
    pub(crate) fn prefetch_slots(&self, hash: u64) {
        if let Some(h) = self.hashes.get(self.set(hash)) {
            prefetch_line(std::ptr::from_ref(h).cast());
        }
    }

    /// The slot holding a line of this hash, unverified: for hints only (a different line may
    /// share the hash).
    #[inline]
    fn peek_slot(&self, hash: u64) -> Option<&Slot> {
        self.find(hash, |s| s.context.is_some())
    }

    /// Hints that a line of this hash will be compared soon: the slot holding a line of that
    /// hash (found in its set's hashes, which [`prefetch_slots`](Self::prefetch_slots) brought
    /// in), and its text, the first and last 256 bytes at most.
    #[inline]
    pub(crate) fn prefetch_text(&self, hash: u64) {
        let Some(slot) = self.peek_slot(hash) else {
            return;
        };
        let text = slot.bytes.as_slice();
        for chunk in text.chunks(64).take(4) {
            prefetch_line(chunk.as_ptr());
        }
        if text.len() > 256 {
            for chunk in text.rchunks(64).take(4) {
                prefetch_line(chunk.as_ptr());
            }
        }
    }

    /// The context a line of this hash probably resolves to, unverified: for hints only.
    #[inline]
    pub(crate) fn peek(&self, hash: u64) -> Option<&ContextKey> {
        self.peek_slot(hash)?.context.as_ref()
    }

    /// Remembers that `line` resolved to `context`.
    pub(crate) fn put(&mut self, line: &RawLine<'_>, context: ContextKey) {
        if line.name.len() + line.tags.len() > KNOWN_LINE_BYTES || self.ways == 0 {
            return;
        }
        let hash = line.hash();
        let set = self.set(hash);
        let first = set * self.ways;
        let ways = first..first + self.ways;
        // The slot already holding the line, else an empty one, else one not hit since the
        // set's last sweep; when every slot was hit, the sweep forgets those hits.
        let slots = &self.slots;
        let pick = |f: &dyn Fn(&Slot) -> bool| ways.clone().find(|&i| slots.get(i).is_some_and(f));
        let i = match pick(&|s| s.holds(hash, line))
            .or_else(|| pick(&|s| s.context.is_none()))
            .or_else(|| pick(&|s| !s.used.get()))
        {
            Some(i) => i,
            None => {
                for s in self.slots.get(ways.clone()).unwrap_or_default() {
                    s.used.set(false);
                }
                // Not always the first: spread the victims over the set.
                first + (hash >> 8) as usize % self.ways
            }
        };
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        slot.used.set(true);
        let need = line.name.len() + line.tags.len();
        let before = slot.bytes.capacity();
        if need > before && self.bytes + (need - before) > self.budget {
            // Out of room for line text: this line is not remembered.
            return;
        }
        slot.bytes.clear();
        slot.bytes.reserve_exact(need);
        self.bytes = self.bytes - before + slot.bytes.capacity();
        slot.hash = hash;
        slot.kind = Some(line.kind);
        slot.card = line.card;
        slot.bytes.clear();
        slot.bytes.extend_from_slice(line.name);
        slot.bytes.extend_from_slice(line.tags);
        slot.name_len = line.name.len();
        if slot.context.replace(context).is_none() {
            self.filled.push(i);
        }
        if let Some(h) = self
            .hashes
            .get_mut(set)
            .and_then(|h| h.0.get_mut(i - first))
        {
            *h = tag(hash);
        }
    }

    /// Forgets the lines whose context hash `gone` accepts (the contexts that just expired),
    /// keeping the others, so that an expiry does not send every line back to the slow path.
    pub(crate) fn forget(&mut self, gone: impl Fn(u64) -> bool) {
        let ways = self.ways.max(1);
        let (slots, hashes) = (&mut self.slots, &mut self.hashes);
        self.filled.retain(|&i| {
            let Some(slot) = slots.get_mut(i) else {
                return false;
            };
            if !slot.context.as_ref().is_some_and(|k| gone(k.hash)) {
                return true;
            }
            slot.kind = None;
            slot.context = None;
            if let Some(h) = hashes.get_mut(i / ways).and_then(|h| h.0.get_mut(i % ways)) {
                *h = 0;
            }
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ContextKey {
        ContextKey {
            hash: 1,
            kind: Kind::Counter,
            name: Text::from(name.as_bytes()),
            host: Text::default(),
            tags: TagSet::default(),
        }
    }

    fn line<'a>(name: &'a [u8], tags: &'a [u8]) -> RawLine<'a> {
        RawLine {
            name,
            tags,
            kind: Kind::Counter,
            card: false,
        }
    }

    #[test]
    fn a_line_is_found_only_with_the_same_name_tags_type_and_card_field() {
        let mut k = KnownLines::new(64);
        k.put(&line(b"a", b"x:1,y:2"), key("a"));
        assert!(k.get(&line(b"a", b"x:1,y:2")).is_some());
        assert!(
            k.get(&line(b"a", b"y:2,x:1")).is_none(),
            "raw bytes, not the set"
        );
        assert!(
            k.get(&line(b"ax", b":1,y:2")).is_none(),
            "the name boundary counts"
        );
        let gauge = RawLine {
            kind: Kind::Gauge,
            ..line(b"a", b"x:1,y:2")
        };
        assert!(k.get(&gauge).is_none());
        let card = RawLine {
            card: true,
            ..line(b"a", b"x:1,y:2")
        };
        assert!(k.get(&card).is_none());
        k.forget(|_| true);
        assert!(k.get(&line(b"a", b"x:1,y:2")).is_none());
    }

    #[test]
    fn forgetting_expired_contexts_keeps_the_other_lines() {
        let mut k = KnownLines::new(64);
        let keyed = |name: &str, hash: u64| ContextKey { hash, ..key(name) };
        k.put(&line(b"a", b""), keyed("a", 10));
        k.put(&line(b"b", b""), keyed("b", 20));
        k.put(&line(b"c", b""), keyed("c", 30));
        k.forget(|h| h == 20);
        assert!(k.get(&line(b"a", b"")).is_some());
        assert!(k.get(&line(b"b", b"")).is_none(), "its context expired");
        assert!(k.get(&line(b"c", b"")).is_some());
        // The freed slot is filled again, and forgetting everything empties the cache.
        k.put(&line(b"b", b""), keyed("b", 21));
        assert!(k.get(&line(b"b", b"")).is_some());
        k.forget(|_| true);
        assert!(k.get(&line(b"a", b"")).is_none());
    }

    #[test]
    fn two_lines_that_share_a_set_are_both_kept() {
        // A two-line cache is one set of two slots: every line maps to it.
        let mut k = KnownLines::new(2);
        k.put(&line(b"a", b""), key("a"));
        k.put(&line(b"b", b""), key("b"));
        for _ in 0..3 {
            assert!(k.get(&line(b"a", b"")).is_some());
            assert!(k.get(&line(b"b", b"")).is_some());
        }
        // A third line evicts one of them (both were hit: the first slot goes).
        assert!(k.get(&line(b"a", b"")).is_some());
        k.put(&line(b"c", b""), key("c"));
        assert!(k.get(&line(b"c", b"")).is_some());
        assert!(
            k.get(&line(b"a", b"")).is_some() != k.get(&line(b"b", b"")).is_some(),
            "exactly one of the two older lines was evicted"
        );
    }

    #[test]
    fn ten_thousand_lines_stay_in_the_default_cache() {
        // `dsd_small10k`'s shape: 10 000 lines against 32 768 slots. Two ways lost 4-5 % of them
        // to sets of three or more (and missed on 5 % of messages); eight ways keep 99 %+.
        let mut k = KnownLines::new(32_768);
        let lines: Vec<(String, String)> = (0..10_000)
            .map(|i| {
                (
                    format!("app.metric.{i}"),
                    format!("env:prod,shard:{}", i % 97),
                )
            })
            .collect();
        for (name, tags) in &lines {
            k.put(&line(name.as_bytes(), tags.as_bytes()), key(name));
        }
        let kept = lines
            .iter()
            .filter(|(n, t)| k.get(&line(n.as_bytes(), t.as_bytes())).is_some())
            .count();
        assert!(kept >= 9_900, "kept {kept} of 10 000");
    }

    #[test]
    fn a_cache_of_no_lines_caches_nothing() {
        let mut k = KnownLines::new(0);
        k.put(&line(b"a", b""), key("a"));
        assert!(k.get(&line(b"a", b"")).is_none());
        assert_eq!(KnownLines::new(3).slots.len(), 4);
    }

    #[test]
    fn line_text_stays_within_its_budget() {
        let mut k = KnownLines::new(4);
        let tags = vec![b'a'; 300];
        let names = [b"n0", b"n1", b"n2", b"n3", b"n4", b"n5", b"n6", b"n7"];
        for name in names {
            k.put(&line(name, &tags), key("n"));
        }
        let held: usize = k.slots.iter().map(|s| s.bytes.capacity()).sum();
        assert!(held <= 4 * BYTES_PER_LINE, "{held}");
        assert_eq!(k.bytes, held);
        // Short lines still fit.
        k.put(&line(b"s", b"x:1"), key("s"));
        assert!(k.get(&line(b"s", b"x:1")).is_some());
    }

    #[test]
    fn lines_up_to_the_read_buffer_are_cached_and_longer_ones_are_not() {
        let mut k = KnownLines::new(64);
        // A `dsd_smp3k` line: dozens of long tags, a few KB.
        let tags = vec![b'a'; 4000];
        k.put(&line(b"n", &tags), key("n"));
        assert!(k.get(&line(b"n", &tags)).is_some());
        let tags = vec![b'a'; KNOWN_LINE_BYTES];
        k.put(&line(b"n", &tags), key("n"));
        assert!(k.get(&line(b"n", &tags)).is_none());
    }
}
