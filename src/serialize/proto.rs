//! A hand-written protobuf writer for `MetricPayload` series and `SketchPayload` sketches.
//!
//! Each message's size is computed first (cheap: lengths and varint widths), then the message is
//! written once, straight into the payload's staging buffer. Zero scalars and empty strings are
//! omitted (proto3); repeated strings are always written.

use crate::{Series, SeriesKind, Sketch, SketchPoint};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// `origin_product` and `origin_category` of DogStatsD (spec §7.2): 10 and 10.
const ORIGIN_PRODUCT: u64 = 10;
const ORIGIN_CATEGORY: u64 = 10;

/// The footer of every sketch payload: an empty `metadata` (field 2) message.
pub(crate) const SKETCH_FOOTER: &[u8] = &[0x12, 0x00];

#[inline]
fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// Size of a length-delimited field with a one-byte key (fields 1–15).
#[inline]
fn ld_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[inline]
fn put_ld(out: &mut Vec<u8>, field: u32, len: usize) {
    put_key(out, field, LEN);
    put_varint(out, len as u64);
}

#[inline]
fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_ld(out, field, bytes.len());
    out.extend_from_slice(bytes);
}

#[inline]
fn put_nonempty(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes(out, field, bytes);
    }
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
fn put_double(out: &mut Vec<u8>, field: u32, v: f64) {
    if v.to_bits() != 0 {
        put_key(out, field, FIXED64);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

#[inline]
fn int_len(v: u64) -> usize {
    if v == 0 { 0 } else { 1 + varint_len(v) }
}

#[inline]
fn put_int(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(out, field, VARINT);
        put_varint(out, v);
    }
}

/// `Metadata{origin: Origin{origin_product: 10, origin_category: 10}}` body size.
const ORIGIN_LEN: usize = 4;
const METADATA_LEN: usize = 1 + 1 + ORIGIN_LEN;

fn put_metadata(out: &mut Vec<u8>, field: u32) {
    put_ld(out, field, METADATA_LEN);
    put_ld(out, 1, ORIGIN_LEN);
    put_int(out, 4, ORIGIN_PRODUCT);
    put_int(out, 5, ORIGIN_CATEGORY);
}

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

pub(crate) fn tag_role(tag: &[u8]) -> TagRole<'_> {
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

/// The device a series' tags name (the last `device:` tag), if any.
pub(crate) fn device_of(series: &Series) -> Option<&[u8]> {
    series.tags.iter().rev().find_map(|t| match tag_role(t) {
        TagRole::Device(d) => Some(d),
        _ => None,
    })
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

/// Size of the `MetricSeries` message body.
pub(crate) fn series_layout(s: &Series) -> SeriesLayout {
    let mut len = ld_len(resource_len(b"host", &s.host));
    let mut device = None;
    let mut special_tags = false;
    for tag in &s.tags {
        match tag_role(tag) {
            TagRole::Keep => len += ld_len(tag.len()),
            TagRole::Device(d) => {
                device = Some(d);
                special_tags = true;
            }
            TagRole::Resource(k, n) => {
                len += ld_len(resource_len(k, n));
                special_tags = true;
            }
            TagRole::Drop => special_tags = true,
        }
    }
    if let Some(d) = device {
        len += ld_len(resource_len(b"device", d));
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
    ld_len(series_layout(s).body_len)
}

/// Writes one `series` (field 1) entry laid out by [`series_layout`].
pub(crate) fn write_series(out: &mut Vec<u8>, s: &Series, layout: SeriesLayout) {
    put_ld(out, 1, layout.body_len);
    put_ld(out, 1, resource_len(b"host", &s.host));
    put_bytes(out, 1, b"host");
    put_nonempty(out, 2, &s.host);
    if !layout.special_tags {
        put_nonempty(out, 2, &s.name);
        for tag in &s.tags {
            put_bytes(out, 3, tag);
        }
    } else {
        write_special_tags(out, s);
    }
    put_int(out, 5, series_kind(s.kind));
    put_int(out, 8, u64::from(s.interval));
    for p in &s.points {
        put_ld(out, 4, point_len(p));
        put_double(out, 1, p.value);
        put_int(out, 2, p.timestamp as u64);
    }
    put_metadata(out, 9);
}

/// Resources from tags, then the name and the remaining tags.
fn write_special_tags(out: &mut Vec<u8>, s: &Series) {
    let mut device = None;
    for tag in &s.tags {
        match tag_role(tag) {
            TagRole::Device(d) => device = Some(d),
            TagRole::Resource(k, n) => {
                put_ld(out, 1, resource_len(k, n));
                put_nonempty(out, 1, k);
                put_nonempty(out, 2, n);
            }
            TagRole::Keep | TagRole::Drop => {}
        }
    }
    if let Some(d) = device {
        put_ld(out, 1, resource_len(b"device", d));
        put_bytes(out, 1, b"device");
        put_nonempty(out, 2, d);
    }
    put_nonempty(out, 2, &s.name);
    for tag in &s.tags {
        if tag_role(tag) == TagRole::Keep {
            put_bytes(out, 3, tag);
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
    for tag in &s.tags {
        len += ld_len(tag.len());
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

/// Writes one `sketches` (field 1) entry whose body is `body_len` bytes.
pub(crate) fn write_sketch(out: &mut Vec<u8>, s: &Sketch, body_len: usize) {
    put_ld(out, 1, body_len);
    put_nonempty(out, 1, &s.name);
    put_nonempty(out, 2, &s.host);
    for tag in &s.tags {
        put_bytes(out, 4, tag);
    }
    for p in &s.points {
        put_ld(out, 7, dogsketch_len(p));
        put_int(out, 1, p.timestamp as u64);
        put_int(out, 2, p.count as u64);
        put_double(out, 3, p.min);
        put_double(out, 4, p.max);
        put_double(out, 5, p.avg);
        put_double(out, 6, p.sum);
        let keys = packed_keys_len(&p.keys);
        if keys > 0 {
            put_ld(out, 7, keys);
            for &k in &p.keys {
                put_varint(out, zigzag(k));
            }
        }
        let counts = packed_counts_len(&p.counts);
        if counts > 0 {
            put_ld(out, 8, counts);
            for &n in &p.counts {
                put_varint(out, u64::from(n));
            }
        }
    }
    put_metadata(out, 8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Point;
    use std::sync::Arc;

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
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
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
        let t = |s: &str| -> Arc<[u8]> { Arc::from(s.as_bytes()) };
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
            points: vec![
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
        let mut out = Vec::new();
        write_series(&mut out, &series, series_layout(&series));
        assert_eq!(out.len(), series_item_len(&series));
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
        out.clear();
        write_sketch(&mut out, &sketch, sketch_body_len(&sketch));
        assert_eq!(out.len(), sketch_item_len(&sketch));
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
