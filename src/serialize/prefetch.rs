//! Software prefetch of the memory a series' encoding will read.
//!
//! The serializer's cost on a large flush is dominated by cache misses on the first read of
//! each tag's bytes: interned strings scattered over the heap. A prefetch issued a few series
//! ahead lets those misses overlap with the encoding of the series in between. Prefetching is
//! only a hint: it never changes what is read or written, only when memory arrives in cache.
//!
//! The hint itself is [`crate::simd::prefetch_line`], in the crate's one `unsafe` module.

use crate::Series;
use crate::simd::prefetch_line;

/// Hints that `slice` will be read soon: its first and last cache lines (slices here are short,
/// at most two lines, but often straddle a line boundary).
#[inline(always)]
fn prefetch_slice<T>(slice: &[T]) {
    let start = slice.as_ptr().cast::<u8>();
    prefetch_line(start);
    prefetch_line(start.wrapping_add(size_of_val(slice).saturating_sub(1)));
}

/// Hints that the block at `p` will be read soon when its length is unknown without reading
/// it: the cache lines holding its first 64 bytes (a header and a short string, or a header and
/// a handful of pointers).
#[inline(always)]
fn prefetch_block(p: *const u8) {
    prefetch_line(p);
    prefetch_line(p.wrapping_add(63));
}

/// First stage, issued far ahead: the series' own heap blocks (the tag list, and the points
/// when there are several: one point is held in the series itself). Only addresses held in the
/// series itself are used: reading the tag list's length would be the very cache miss this
/// hides.
#[inline(always)]
pub(crate) fn series_blocks(s: &Series) {
    prefetch_block(s.tags.heap_ptr());
    if s.points.spilled() {
        prefetch_line(s.points.as_ptr().cast());
    }
}

/// Second stage, issued once the tag list is likely in cache: the bytes of the name and of
/// every tag. Reads the tag list (the pointers), never the strings themselves.
#[inline(always)]
pub(crate) fn series_strings(s: &Series) {
    prefetch_slice(&s.name);
    // A difference's own tags, and its base's block (a base is shared by many sets: its tags
    // are likely in cache already).
    if let Some(base) = s.tags.base() {
        prefetch_block(base.heap_ptr());
    }
    for tag in s.tags.flat() {
        prefetch_block(tag.heap_ptr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Point, SeriesKind};

    #[test]
    fn prefetching_any_series_is_harmless_even_with_empty_strings_and_lists() {
        let empty = crate::Text::default();
        for s in [
            Series {
                name: empty.clone(),
                host: empty.clone(),
                tags: crate::TagSet::default(),
                kind: SeriesKind::Gauge,
                interval: 0,
                points: crate::Points::new(),
            },
            Series {
                name: crate::Text::from("a"),
                host: empty.clone(),
                tags: vec![empty.clone(), crate::Text::from("env:prod")].into(),
                kind: SeriesKind::Rate,
                interval: 10,
                points: smallvec::smallvec![Point {
                    timestamp: 1,
                    value: 1.0,
                }],
            },
        ] {
            series_blocks(&s);
            series_strings(&s);
        }
    }
}
