//! What a flush produces: plain data for the serializer.

use crate::{AlertType, Priority, ServiceCheckStatus};
use triomphe::ThinArc;

/// An interned byte string: a metric name, a host or a tag. A thin pointer (8 bytes) to a
/// reference count, a length and the bytes; clones share one allocation. Compares, orders and
/// hashes as its bytes.
///
/// ```
/// use dogpipe::Text;
/// let name = Text::from("reqs");
/// assert_eq!(&*name, b"reqs");
/// assert_eq!(std::mem::size_of::<Text>(), 8);
/// ```
#[derive(Clone)]
pub struct Text(ThinArc<(), u8>);

/// One interned tag.
pub(crate) type Tag = Text;

impl Text {
    /// A text holding a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> Text {
        Text(ThinArc::from_header_and_slice((), bytes))
    }

    /// The bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.0.slice
    }

    /// Whether both are the same allocation, not merely equal.
    #[inline]
    pub fn ptr_eq(a: &Text, b: &Text) -> bool {
        std::ptr::eq(a.0.heap_ptr(), b.0.heap_ptr())
    }

    /// Whether anything besides the holder of this reference holds the text.
    pub(crate) fn is_shared(&self) -> bool {
        ThinArc::strong_count(&self.0) > 1
    }

    /// The address of the text's allocation (count, length, then the bytes), for prefetching.
    /// Reads nothing behind the pointer: unlike the slice, whose length lives on the heap.
    #[inline]
    pub(crate) fn heap_ptr(&self) -> *const u8 {
        self.0.heap_ptr().cast()
    }
}

impl std::ops::Deref for Text {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl std::borrow::Borrow<[u8]> for Text {
    fn borrow(&self) -> &[u8] {
        self.bytes()
    }
}

impl PartialEq for Text {
    #[inline]
    fn eq(&self, other: &Text) -> bool {
        Text::ptr_eq(self, other) || self.bytes() == other.bytes()
    }
}

impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes().hash(state);
    }
}

impl From<&[u8]> for Text {
    fn from(bytes: &[u8]) -> Text {
        Text::new(bytes)
    }
}

impl<const N: usize> From<&[u8; N]> for Text {
    fn from(bytes: &[u8; N]) -> Text {
        Text::new(bytes)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s.as_bytes())
    }
}

impl From<Vec<u8>> for Text {
    fn from(bytes: Vec<u8>) -> Text {
        Text::new(&bytes)
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new(b"")
    }
}

/// The tags of a series, sketch, event or service check: sorted, deduplicated and shared.
///
/// Every series of a context holds that context's one set, and contexts with the same tags share
/// one set, so a flush copies no tags: cloning a `TagSet` is one reference count. Each tag
/// string is itself interned, so a set costs 8 bytes per tag plus a 32-byte header; a set the
/// aggregator makes as a small difference from another set of the same metric (the usual shape
/// of high cardinality: one tag such as a pod or request id varies) holds only that difference:
/// 8 bytes per added tag, plus a 24-byte box naming its base and the base's tags it lacks.
///
/// ```
/// use dogpipe::TagSet;
/// let tags = TagSet::from(vec!["env:prod", "a:1", "env:prod"]);
/// let listed: Vec<&[u8]> = tags.iter().collect();
/// assert_eq!(listed, [&b"a:1"[..], &b"env:prod"[..]]);
/// ```
#[derive(Clone)]
pub struct TagSet(ThinArc<SetHeader, Tag>);

/// Most tags a difference adds to its base.
pub(crate) const MAX_ADDED: usize = 8;
/// Most tags a base may have (its removed tags are bits of a `u64`).
pub(crate) const MAX_BASE: usize = 64;

/// What a set knows about its tags without reading them. Sixteen bytes, so that with the
/// reference count and the length a flat set's tags start 32 bytes into its allocation: the
/// serializer's prefetch of a set's first cache line covers its header and first tags.
#[derive(Clone)]
struct SetHeader {
    /// The protobuf size of the tags as repeated string fields, saturated.
    wire_len: u32,
    /// The number of tags, and in the top bit whether a tag is one the series encoding turns
    /// into a resource.
    len_special: u32,
    /// For a set made as a difference: the set's own tags are the added ones.
    delta: Option<Box<Delta>>,
}

/// The top bit of [`SetHeader::len_special`].
const SPECIAL: u32 = 1 << 31;

impl SetHeader {
    fn new<'a>(tags: impl Iterator<Item = &'a [u8]> + Clone, delta: Option<Box<Delta>>) -> Self {
        let len = u32::try_from(tags.clone().count())
            .unwrap_or(u32::MAX)
            .min(SPECIAL - 1);
        let special = tags.clone().any(crate::serialize::is_resource_tag);
        SetHeader {
            wire_len: crate::serialize::tags_wire_len(tags),
            len_special: len | if special { SPECIAL } else { 0 },
            delta,
        }
    }
}

/// A set as a difference from a flat set: `base` without the tags at the positions whose bits
/// are set in `removed`, plus the added tags, the i-th of which comes before the base's tag at
/// position `at[i]` (or after the last one when `at[i]` is the base's length).
#[derive(Clone)]
struct Delta {
    base: TagSet,
    removed: u64,
    at: [u8; MAX_ADDED],
}

impl TagSet {
    /// A flat set of tags already sorted and deduplicated.
    pub(crate) fn from_sorted(tags: &[Tag]) -> TagSet {
        let header = SetHeader::new(tags.iter().map(Tag::bytes), None);
        TagSet(ThinArc::from_header_and_iter(header, tags.iter().cloned()))
    }

    /// The set `base` (a flat set of at most [`MAX_BASE`] tags) without the tags at the
    /// positions set in `removed`, plus `added` (at most [`MAX_ADDED`], sorted, none in the
    /// base), each with the base position it goes before. `like` is any iterator over the
    /// resulting set's tags in order, for the header's sizes. `None` when the shape does not
    /// allow a difference.
    pub(crate) fn delta<'a>(
        base: &TagSet,
        removed: u64,
        added: &[(Tag, u8)],
        like: impl Iterator<Item = &'a [u8]> + Clone,
    ) -> Option<TagSet> {
        if base.0.header.header.delta.is_some()
            || base.0.slice.len() > MAX_BASE
            || added.len() > MAX_ADDED
        {
            return None;
        }
        let mut at = [0u8; MAX_ADDED];
        for (slot, (_, pos)) in at.iter_mut().zip(added) {
            *slot = *pos;
        }
        let delta = Delta {
            base: base.clone(),
            removed,
            at,
        };
        let header = SetHeader::new(like, Some(Box::new(delta)));
        Some(TagSet(ThinArc::from_header_and_iter(
            header,
            added.iter().map(|(t, _)| t.clone()),
        )))
    }

    /// The protobuf size of the tags as repeated string fields (key, length, bytes), computed
    /// once when the set is made rather than at every flush; `u32::MAX` if larger.
    #[inline]
    pub(crate) fn wire_len(&self) -> u32 {
        self.0.header.header.wire_len
    }

    /// Whether a tag is a `device:` or `dd.internal.resource:` tag, which series v2 sends as
    /// resources.
    #[inline]
    pub(crate) fn has_resource_tags(&self) -> bool {
        self.0.header.header.len_special & SPECIAL != 0
    }

    /// The number of tags.
    pub fn len(&self) -> usize {
        (self.0.header.header.len_special & !SPECIAL) as usize
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tags, in byte order.
    pub fn iter(&self) -> TagSetIter<'_> {
        TagSetIter(self.handles())
    }

    /// The interned tags, in byte order.
    #[inline]
    pub(crate) fn handles(&self) -> Handles<'_> {
        let h = &self.0.header.header;
        match &h.delta {
            None => Handles::Flat(self.0.slice.iter()),
            Some(d) => Handles::Merge(Merge {
                base: &d.base.0.slice,
                removed: d.removed,
                added: &self.0.slice,
                at: &d.at,
                i: 0,
                j: 0,
                left: (h.len_special & !SPECIAL) as usize,
            }),
        }
    }

    /// The flat set this one is a difference from, if it is one.
    #[inline]
    pub(crate) fn base(&self) -> Option<&TagSet> {
        self.0.header.header.delta.as_ref().map(|d| &d.base)
    }

    /// Whether the set is flat (not a difference) and small enough to be a base.
    pub(crate) fn can_be_base(&self) -> bool {
        self.0.header.header.delta.is_none() && self.0.slice.len() <= MAX_BASE
    }

    /// The tags of a flat set (those of the added ones for a difference).
    #[inline]
    pub(crate) fn flat(&self) -> &[Tag] {
        &self.0.slice
    }

    /// The number of references to this set.
    pub(crate) fn references(&self) -> usize {
        ThinArc::strong_count(&self.0)
    }

    /// Whether anything besides the holder of this reference holds the set.
    pub(crate) fn is_shared(&self) -> bool {
        ThinArc::strong_count(&self.0) > 1
    }

    /// Whether both are the same set (one allocation), not merely equal.
    #[inline]
    pub(crate) fn ptr_eq(&self, other: &TagSet) -> bool {
        std::ptr::eq(self.0.heap_ptr(), other.0.heap_ptr())
    }

    /// The address of the set's allocation (count, header, length, then the tag pointers), for
    /// prefetching. Reads nothing behind the pointer.
    #[inline]
    pub(crate) fn heap_ptr(&self) -> *const u8 {
        self.0.heap_ptr().cast()
    }

    /// The order-independent hash the context store keys sets by (the sum of the tags'
    /// hashes), computed from the tags.
    pub(crate) fn hash(&self) -> u64 {
        self.iter()
            .fold(0u64, |h, t| h.wrapping_add(super::context::tag_hash(t)))
    }
}

/// The interned tags of a [`TagSet`], in byte order: a flat set's own, or a difference merged
/// with its base.
#[derive(Debug, Clone)]
pub(crate) enum Handles<'a> {
    Flat(std::slice::Iter<'a, Tag>),
    Merge(Merge<'a>),
}

/// A difference merged with its base.
#[derive(Debug, Clone)]
pub(crate) struct Merge<'a> {
    base: &'a [Tag],
    removed: u64,
    added: &'a [Tag],
    at: &'a [u8],
    /// Next base position.
    i: usize,
    /// Next added tag.
    j: usize,
    left: usize,
}

impl<'a> Iterator for Handles<'a> {
    type Item = &'a Tag;
    #[inline]
    fn next(&mut self) -> Option<&'a Tag> {
        match self {
            Handles::Flat(tags) => tags.next(),
            Handles::Merge(m) => m.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Handles::Flat(tags) => tags.size_hint(),
            Handles::Merge(m) => (m.left, Some(m.left)),
        }
    }
}

impl<'a> Merge<'a> {
    #[inline]
    fn next(&mut self) -> Option<&'a Tag> {
        loop {
            if let (Some(tag), Some(&pos)) = (self.added.get(self.j), self.at.get(self.j)) {
                if usize::from(pos) <= self.i {
                    self.j += 1;
                    self.left = self.left.saturating_sub(1);
                    return Some(tag);
                }
            }
            let tag = self.base.get(self.i)?;
            let gone = self.i < 64 && self.removed & (1 << self.i) != 0;
            self.i += 1;
            if !gone {
                self.left = self.left.saturating_sub(1);
                return Some(tag);
            }
        }
    }
}

impl ExactSizeIterator for Handles<'_> {}

impl Default for TagSet {
    fn default() -> TagSet {
        TagSet::from_sorted(&[])
    }
}

impl PartialEq for TagSet {
    fn eq(&self, other: &TagSet) -> bool {
        self.ptr_eq(other) || (self.len() == other.len() && self.iter().eq(other.iter()))
    }
}

impl Eq for TagSet {}

impl PartialOrd for TagSet {
    fn partial_cmp(&self, other: &TagSet) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TagSet {
    fn cmp(&self, other: &TagSet) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl std::hash::Hash for TagSet {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for t in self.iter() {
            t.hash(state);
        }
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for TagSet {
    /// Sorts and deduplicates.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> TagSet {
        let owned: Vec<T> = iter.into_iter().collect();
        let mut tags: Vec<&[u8]> = owned.iter().map(AsRef::as_ref).collect();
        tags.sort_unstable();
        tags.dedup();
        let tags: Vec<Tag> = tags.into_iter().map(Tag::new).collect();
        TagSet::from_sorted(&tags)
    }
}

impl<T: AsRef<[u8]>> From<Vec<T>> for TagSet {
    /// Sorts and deduplicates.
    fn from(tags: Vec<T>) -> TagSet {
        tags.into_iter().collect()
    }
}

impl std::fmt::Debug for TagSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl<'a> IntoIterator for &'a TagSet {
    type Item = &'a [u8];
    type IntoIter = TagSetIter<'a>;
    fn into_iter(self) -> TagSetIter<'a> {
        self.iter()
    }
}

/// The tags of a [`TagSet`], in byte order.
#[derive(Debug, Clone)]
pub struct TagSetIter<'a>(Handles<'a>);

impl<'a> Iterator for TagSetIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next().map(Tag::bytes)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for TagSetIter<'_> {}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.bytes()))
    }
}

/// The type of a series, as sent to the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeriesKind {
    /// A value at a point in time (gauges, sets, histogram aggregates).
    Gauge,
    /// A per-second rate over the interval (DogStatsD counters, histogram `.count`).
    Rate,
    /// A count over the interval.
    Count,
}

impl SeriesKind {
    /// `"gauge"`, `"rate"` or `"count"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeriesKind::Gauge => "gauge",
            SeriesKind::Rate => "rate",
            SeriesKind::Count => "count",
        }
    }
}

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix seconds (the start of the 10 s bucket for aggregated samples).
    pub timestamp: i64,
    /// The value.
    pub value: f64,
}

/// The points of a series: held inline when there is one (nearly always, one bucket per
/// flush), so a flush allocates nothing per series for them. Build one with `vec![…].into()`,
/// `Points::from_slice` or `collect()`.
pub type Points = smallvec::SmallVec<[Point; 1]>;

/// A metric series: one context, its points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name (after namespace and mapping).
    pub name: Text,
    /// Host; empty for a host-less series.
    pub host: Text,
    /// Tags, sorted and deduplicated.
    pub tags: TagSet,
    /// Series type.
    pub kind: SeriesKind,
    /// Interval in seconds (10 for DogStatsD).
    pub interval: u32,
    /// Points, oldest first.
    pub points: Points,
}

/// One bucket of a distribution: the summary and the Agent-flavoured DDSketch bins.
#[derive(Debug, Clone, PartialEq)]
pub struct SketchPoint {
    /// Unix seconds, the start of the bucket.
    pub timestamp: i64,
    /// Number of samples (sample rates applied).
    pub count: i64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values (sample rates applied).
    pub sum: f64,
    /// `sum / count`.
    pub avg: f64,
    /// Bin keys, ascending.
    pub keys: Vec<i32>,
    /// Bin counts, one per key.
    pub counts: Vec<u32>,
}

/// A distribution: one context, its sketch points.
#[derive(Debug, Clone, PartialEq)]
pub struct Sketch {
    /// Metric name.
    pub name: Text,
    /// Host; empty for a host-less sketch.
    pub host: Text,
    /// Tags, sorted and deduplicated.
    pub tags: TagSet,
    /// Points, oldest first.
    pub points: Vec<SketchPoint>,
}

/// An event after enrichment, ready to serialize.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Title, `\n` escapes decoded.
    pub title: Vec<u8>,
    /// Text, `\n` escapes decoded.
    pub text: Vec<u8>,
    /// Unix seconds (the arrival time when the message had none).
    pub timestamp: i64,
    /// Host (`h:` field, else `host:` tag, else the agent's hostname).
    pub host: Text,
    /// `k:` aggregation key.
    pub aggregation_key: Option<Vec<u8>>,
    /// Priority.
    pub priority: Priority,
    /// `s:` source type name.
    pub source_type_name: Option<Vec<u8>>,
    /// Alert type.
    pub alert_type: AlertType,
    /// Tags, sorted and deduplicated.
    pub tags: TagSet,
}

/// A service check after enrichment, ready to serialize.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCheckRecord {
    /// Check name.
    pub name: Vec<u8>,
    /// Status.
    pub status: ServiceCheckStatus,
    /// Unix seconds (the arrival time when the message had none).
    pub timestamp: i64,
    /// Host (`h:` field, else `host:` tag, else the agent's hostname).
    pub host: Text,
    /// `m:` message.
    pub message: Option<Vec<u8>>,
    /// Tags, sorted and deduplicated.
    pub tags: TagSet,
}

/// Everything one flush produces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flush {
    /// Series (counters, gauges, sets, histogram aggregates, timestamped samples).
    pub series: Vec<Series>,
    /// Distributions.
    pub sketches: Vec<Sketch>,
    /// Events.
    pub events: Vec<EventRecord>,
    /// Service checks.
    pub service_checks: Vec<ServiceCheckRecord>,
}

impl Flush {
    /// Whether the flush holds nothing.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
            && self.sketches.is_empty()
            && self.events.is_empty()
            && self.service_checks.is_empty()
    }

    /// Every chunk `flush` hands to its callback, joined into one flush.
    pub(crate) fn joined(flush: impl FnOnce(&mut dyn FnMut(Flush))) -> Flush {
        let mut all = Flush::default();
        flush(&mut |chunk| all.append(chunk));
        all
    }

    /// Moves everything `more` holds to the end of `self` (taking `more`'s vectors whole when
    /// `self`'s are empty, so nothing is copied when one chunk holds everything).
    pub fn append(&mut self, more: Flush) {
        fn join<T>(out: &mut Vec<T>, mut more: Vec<T>) {
            if out.is_empty() && more.capacity() >= out.capacity() {
                std::mem::swap(out, &mut more);
            } else {
                out.append(&mut more);
            }
        }
        join(&mut self.series, more.series);
        join(&mut self.sketches, more.sketches);
        join(&mut self.events, more.events);
        join(&mut self.service_checks, more.service_checks);
    }
}
