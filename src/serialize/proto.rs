//! A hand-written protobuf writer for `MetricPayload` series and `SketchPayload` sketches.
//!
//! Each message's size is computed first (cheap: lengths and varint widths), then the message is
//! written once, straight into the payload's staging buffer. Zero scalars and empty strings are
//! omitted (proto3); repeated strings are always written.

use crate::Text;
use crate::{Series, SeriesKind, Sketch, SketchPoint};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// `origin_product` and `origin_category` of DogStatsD (spec §7.2): 10 and 10.
const ORIGIN_PRODUCT: u8 = 10;
const ORIGIN_CATEGORY: u8 = 10;

/// The footer of every sketch payload: an empty `metadata` (field 2) message.
pub(crate) const SKETCH_FOOTER: &[u8] = &[0x12, 0x00];

#[inline]
fn varint_len(v: u64) -> usize {
    if v < 0x80 {
        // Most lengths here: tags, names, small messages.
        return 1;
    }
    // 1 byte per 7 bits.
    (64 - v.leading_zeros() as usize).div_ceil(7)
}

/// Size of a length-delimited field with a one-byte key (fields 1–15).
#[inline]
fn ld_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[inline]
fn nonempty_len(bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        0
    } else {
        ld_len(bytes.len())
    }
}

#[inline]
fn double_len(v: f64) -> usize {
    if v.to_bits() == 0 { 0 } else { 9 }
}

#[inline]
fn int_len(v: u64) -> usize {
    if v == 0 { 0 } else { 1 + varint_len(v) }
}

/// Writes one message of a size computed beforehand into a slice of exactly that size.
///
/// Writing through a slice rather than pushing onto a `Vec` keeps the position in a register:
/// a push reloads the vector's length and capacity after every byte, as the byte written could
/// alias them. Writes past the end are skipped (the position still advances), so a size
/// computed wrong shows as [`Writer::finish`] failing, never as a panic.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    #[inline]
    fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer { buf, pos: 0 }
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.pos) {
            *slot = b;
        }
        self.pos += 1;
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }

    #[inline]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// A field key; every field written here is numbered 1–15, so the key is one byte.
    #[inline]
    fn key(&mut self, field: u8, wire: u8) {
        self.byte((field << 3) | wire);
    }

    #[inline]
    fn ld(&mut self, field: u8, len: usize) {
        self.key(field, LEN);
        self.varint(len as u64);
    }

    #[inline]
    fn field_bytes(&mut self, field: u8, bytes: &[u8]) {
        self.ld(field, bytes.len());
        self.bytes(bytes);
    }

    #[inline]
    fn nonempty(&mut self, field: u8, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.field_bytes(field, bytes);
        }
    }

    #[inline]
    fn double(&mut self, field: u8, v: f64) {
        if v.to_bits() != 0 {
            self.key(field, FIXED64);
            self.bytes(&v.to_le_bytes());
        }
    }

    #[inline]
    fn int(&mut self, field: u8, v: u64) {
        if v != 0 {
            self.key(field, VARINT);
            self.varint(v);
        }
    }

    /// `Metadata{origin: Origin{origin_product: 10, origin_category: 10}}` as field `field`.
    #[inline]
    fn metadata(&mut self, field: u8) {
        self.bytes(&[
            (field << 3) | LEN,
            METADATA_LEN as u8,
            (1 << 3) | LEN,
            ORIGIN_LEN as u8,
            (4 << 3) | VARINT,
            ORIGIN_PRODUCT,
            (5 << 3) | VARINT,
            ORIGIN_CATEGORY,
        ]);
    }

    /// Whether exactly the computed size was written.
    #[inline]
    fn finish(self) -> bool {
        self.pos == self.buf.len()
    }
}

/// `Metadata{origin: Origin{origin_product: 10, origin_category: 10}}` body size.
const ORIGIN_LEN: usize = 4;
const METADATA_LEN: usize = 1 + 1 + ORIGIN_LEN;

/// What a series tag becomes on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum TagRole<'a> {
    /// Sent as a tag.
    Keep,
    /// `device:<name>`: removed; the last one becomes a `device` resource.
    Device(&'a [u8]),
    /// `dd.internal.resource:<type>:<name>`: removed and sent as a resource.
    Resource(&'a [u8], &'a [u8]),
    /// A malformed `dd.internal.resource:` tag: removed.
    Drop,
}

#[inline]
pub(crate) fn tag_role(tag: &[u8]) -> TagRole<'_> {
    // Both special prefixes start with `d`: most tags are decided by their first byte.
    if tag.first() != Some(&b'd') {
        return TagRole::Keep;
    }
    if let Some(device) = tag.strip_prefix(b"device:") {
        return TagRole::Device(device);
    }
    if let Some(rest) = tag.strip_prefix(b"dd.internal.resource:") {
        if let Some(colon) = memchr::memchr(b':', rest) {
            let (kind, name) = (rest.get(..colon), rest.get(colon + 1..));
            if let (Some(kind), Some(name)) = (kind, name) {
                if !kind.is_empty() && !name.is_empty() {
                    return TagRole::Resource(kind, name);
                }
            }
        }
        return TagRole::Drop;
    }
    TagRole::Keep
}

/// Whether `tag` is sent as a resource (or dropped) rather than as a series tag.
pub(crate) fn is_resource_tag(tag: &[u8]) -> bool {
    tag_role(tag) != TagRole::Keep
}

/// The protobuf size of `tags` as repeated string fields (fields 1–15), saturating at
/// `u32::MAX`.
pub(crate) fn tags_wire_len<'a>(tags: impl Iterator<Item = &'a [u8]>) -> u32 {
    let total = tags.fold(0usize, |sum, t| sum.saturating_add(ld_len(t.len())));
    u32::try_from(total).unwrap_or(u32::MAX)
}

/// The device a series' tags name (the last `device:` tag), if any.
pub(crate) fn device_of(series: &Series) -> Option<&[u8]> {
    series
        .tags
        .iter()
        .filter_map(|t| match tag_role(t) {
            TagRole::Device(d) => Some(d),
            _ => None,
        })
        .last()
}

fn resource_len(kind: &[u8], name: &[u8]) -> usize {
    nonempty_len(kind) + nonempty_len(name)
}

fn series_kind(kind: SeriesKind) -> u64 {
    match kind {
        SeriesKind::Count => 1,
        SeriesKind::Rate => 2,
        SeriesKind::Gauge => 3,
    }
}

fn point_len(p: &crate::Point) -> usize {
    double_len(p.value) + int_len(p.timestamp as u64)
}

/// What the writer needs to know about a series, computed in one pass over it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeriesLayout {
    /// Size of the `MetricSeries` message body.
    pub(crate) body_len: usize,
    /// Whether any tag is a `device:` or `dd.internal.resource:` tag.
    special_tags: bool,
}

/// The `host` resource entry of a series (`resources` field), encoded once per distinct host:
/// most flushes have one host for every series.
#[derive(Debug, Default)]
pub(crate) struct HostResource {
    host: Option<Text>,
    entry: Vec<u8>,
}

impl HostResource {
    /// The encoded entry for `host`.
    #[inline]
    pub(crate) fn entry(&mut self, host: &Text) -> &[u8] {
        if !self.host.as_ref().is_some_and(|h| Text::ptr_eq(h, host)) {
            self.encode(host);
        }
        &self.entry
    }

    #[cold]
    fn encode(&mut self, host: &Text) {
        let len = resource_len(b"host", host);
        self.entry.clear();
        self.entry.resize(ld_len(len), 0);
        let mut w = Writer::new(&mut self.entry);
        w.ld(1, len);
        w.field_bytes(1, b"host");
        w.nonempty(2, host);
        let exact = w.finish();
        debug_assert!(exact);
        self.host = Some(host.clone());
    }
}

/// Size of the `MetricSeries` message body, given the series' encoded `host` resource entry.
pub(crate) fn series_layout(s: &Series, host_entry: &[u8]) -> SeriesLayout {
    let mut len = host_entry.len();
    let special_tags = s.tags.has_resource_tags();
    let wire = s.tags.wire_len();
    if !special_tags && wire != u32::MAX {
        // The usual case: the set knows its size.
        len += wire as usize;
    } else {
        let mut device = None;
        for tag in &s.tags {
            match tag_role(tag) {
                TagRole::Keep => len += ld_len(tag.len()),
                TagRole::Device(d) => device = Some(d),
                TagRole::Resource(k, n) => len += ld_len(resource_len(k, n)),
                TagRole::Drop => {}
            }
        }
        if let Some(d) = device {
            len += ld_len(resource_len(b"device", d));
        }
    }
    len += nonempty_len(&s.name);
    for p in &s.points {
        len += ld_len(point_len(p));
    }
    len += int_len(series_kind(s.kind));
    len += int_len(u64::from(s.interval));
    SeriesLayout {
        body_len: len + ld_len(METADATA_LEN),
        special_tags,
    }
}

/// Size of a payload entry (field 1) whose message body is `body_len` bytes.
pub(crate) fn item_len(body_len: usize) -> usize {
    ld_len(body_len)
}

/// Size of one `series` entry of a `MetricPayload`, key and length included.
#[cfg(test)]
pub(crate) fn series_item_len(s: &Series) -> usize {
    ld_len(series_layout(s, HostResource::default().entry(&s.host)).body_len)
}

/// Writes one `series` (field 1) entry laid out by [`series_layout`] into `out`, which is
/// `item_len(layout.body_len)` bytes. Returns false if the layout was wrong (a bug).
pub(crate) fn write_series(
    out: &mut [u8],
    s: &Series,
    layout: SeriesLayout,
    host_entry: &[u8],
) -> bool {
    let mut w = Writer::new(out);
    w.ld(1, layout.body_len);
    w.bytes(host_entry);
    if !layout.special_tags {
        w.nonempty(2, &s.name);
        for tag in &s.tags {
            w.field_bytes(3, tag);
        }
    } else {
        write_special_tags(&mut w, s);
    }
    w.int(5, series_kind(s.kind));
    w.int(8, u64::from(s.interval));
    for p in &s.points {
        w.ld(4, point_len(p));
        w.double(1, p.value);
        w.int(2, p.timestamp as u64);
    }
    w.metadata(9);
    w.finish()
}

/// Resources from tags, then the name and the remaining tags.
fn write_special_tags(w: &mut Writer<'_>, s: &Series) {
    let mut device = None;
    for tag in &s.tags {
        match tag_role(tag) {
            TagRole::Device(d) => device = Some(d),
            TagRole::Resource(k, n) => {
                w.ld(1, resource_len(k, n));
                w.nonempty(1, k);
                w.nonempty(2, n);
            }
            TagRole::Keep | TagRole::Drop => {}
        }
    }
    if let Some(d) = device {
        w.ld(1, resource_len(b"device", d));
        w.field_bytes(1, b"device");
        w.nonempty(2, d);
    }
    w.nonempty(2, &s.name);
    for tag in &s.tags {
        if tag_role(tag) == TagRole::Keep {
            w.field_bytes(3, tag);
        }
    }
}

#[inline]
fn zigzag(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

fn packed_keys_len(keys: &[i32]) -> usize {
    keys.iter().map(|&k| varint_len(zigzag(k))).sum()
}

fn packed_counts_len(counts: &[u32]) -> usize {
    counts.iter().map(|&n| varint_len(u64::from(n))).sum()
}

fn packed_len(inner: usize) -> usize {
    if inner == 0 { 0 } else { ld_len(inner) }
}

fn dogsketch_len(p: &SketchPoint) -> usize {
    int_len(p.timestamp as u64)
        + int_len(p.count as u64)
        + double_len(p.min)
        + double_len(p.max)
        + double_len(p.avg)
        + double_len(p.sum)
        + packed_len(packed_keys_len(&p.keys))
        + packed_len(packed_counts_len(&p.counts))
}

/// Size of the `Sketch` message body.
pub(crate) fn sketch_body_len(s: &Sketch) -> usize {
    let mut len = nonempty_len(&s.name) + nonempty_len(&s.host);
    match s.tags.wire_len() {
        u32::MAX => {
            for tag in &s.tags {
                len += ld_len(tag.len());
            }
        }
        wire => len += wire as usize,
    }
    for p in &s.points {
        len += ld_len(dogsketch_len(p));
    }
    len + ld_len(METADATA_LEN)
}

/// Size of one `sketches` entry of a `SketchPayload`, key and length included.
#[cfg(test)]
pub(crate) fn sketch_item_len(s: &Sketch) -> usize {
    ld_len(sketch_body_len(s))
}

/// Writes one `sketches` (field 1) entry whose body is `body_len` bytes into `out`, which is
/// `item_len(body_len)` bytes. Returns false if the size was wrong (a bug).
pub(crate) fn write_sketch(out: &mut [u8], s: &Sketch, body_len: usize) -> bool {
    let mut w = Writer::new(out);
    w.ld(1, body_len);
    w.nonempty(1, &s.name);
    w.nonempty(2, &s.host);
    for tag in &s.tags {
        w.field_bytes(4, tag);
    }
    for p in &s.points {
        w.ld(7, dogsketch_len(p));
        w.int(1, p.timestamp as u64);
        w.int(2, p.count as u64);
        w.double(3, p.min);
        w.double(4, p.max);
        w.double(5, p.avg);
        w.double(6, p.sum);
        let keys = packed_keys_len(&p.keys);
        if keys > 0 {
            w.ld(7, keys);
            for &k in &p.keys {
                w.varint(zigzag(k));
            }
        }
        let counts = packed_counts_len(&p.counts);
        if counts > 0 {
            w.ld(8, counts);
            for &n in &p.counts {
                w.varint(u64::from(n));
            }
        }
    }
    w.metadata(8);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Point;

    #[test]
    fn varint_len_matches_the_written_length() {
        for v in [
            0u64,
            1,
            127,
            128,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX,
            -1i64 as u64,
        ] {
            let mut out = vec![0; varint_len(v)];
            let mut w = Writer::new(&mut out);
            w.varint(v);
            assert!(w.finish(), "{v}");
        }
    }

    #[test]
    fn zigzag_maps_small_negative_keys_to_small_numbers() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(i32::MIN), u64::from(u32::MAX));
    }

    #[test]
    fn computed_sizes_match_the_bytes_written() {
        let t = |s: &str| -> Text { Text::from(s) };
        let series = Series {
            name: t("a.b"),
            host: t(""),
            tags: vec![
                t("dd.internal.resource:db:x"),
                t("dd.internal.resource:bad"),
                t("device:sda"),
                t("env:prod"),
            ]
            .into(),
            kind: SeriesKind::Rate,
            interval: 10,
            points: smallvec::smallvec![
                Point {
                    timestamp: -5,
                    value: 0.0,
                },
                Point {
                    timestamp: 1_700_000_000,
                    value: -1.5,
                },
            ],
        };
        let plain = Series {
            host: t("web-1"),
            tags: vec![t("env:prod"), t(&"x".repeat(200)), t("dev:1")].into(),
            ..series.clone()
        };
        assert!(series.tags.has_resource_tags());
        assert!(!plain.tags.has_resource_tags());
        let mut host = HostResource::default();
        for s in [&series, &plain, &series] {
            let entry = host.entry(&s.host);
            let layout = series_layout(s, entry);
            let mut out = vec![0; series_item_len(s)];
            assert!(write_series(&mut out, s, layout, entry));
            // One byte more or less than the computed size is caught, without a panic.
            let mut short = vec![0; out.len() - 1];
            assert!(!write_series(&mut short, s, layout, entry));
            let mut long = vec![0; out.len() + 1];
            assert!(!write_series(&mut long, s, layout, entry));
        }
        // The set's cached size is the sum over its tags.
        let by_tag: usize = plain.tags.iter().map(|t| ld_len(t.len())).sum();
        assert_eq!(plain.tags.wire_len() as usize, by_tag);
        let sketch = Sketch {
            name: t("d"),
            host: t("h"),
            tags: vec![t("")].into(),
            points: vec![SketchPoint {
                timestamp: 10,
                count: 3,
                min: 1.0,
                max: 3.0,
                sum: 6.0,
                avg: 2.0,
                keys: vec![-3, 0, 1400],
                counts: vec![1, 1, 70000],
            }],
        };
        let mut out = vec![0; sketch_item_len(&sketch)];
        assert!(write_sketch(&mut out, &sketch, sketch_body_len(&sketch)));
        let mut short = vec![0; out.len() - 1];
        assert!(!write_sketch(&mut short, &sketch, sketch_body_len(&sketch)));
    }

    #[test]
    fn internal_resource_tags_need_a_type_and_a_name() {
        assert_eq!(
            tag_role(b"dd.internal.resource:db:x:y"),
            TagRole::Resource(b"db", b"x:y")
        );
        assert_eq!(tag_role(b"dd.internal.resource:db:"), TagRole::Drop);
        assert_eq!(tag_role(b"dd.internal.resource::x"), TagRole::Drop);
        assert_eq!(tag_role(b"dd.internal.resource:"), TagRole::Drop);
        assert_eq!(tag_role(b"device:"), TagRole::Device(b""));
        assert_eq!(tag_role(b"devices:x"), TagRole::Keep);
    }
}
