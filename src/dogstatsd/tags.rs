use super::error::ParseErrorKind;
use super::scan;
use super::span::Span;
use crate::simd;
use std::iter::FusedIterator;

/// The tags of a message: a lazy iterator over the `,`-separated pieces of its `#` field, exactly
/// as received (no trimming, no dedupe; `#a,,b` yields `a`, an empty tag, `b`).
///
/// It allocates nothing: each tag is a slice of the message. The commas are found 128 bytes at
/// a time, as a bit mask that the following tags are cut from. (A wider window needs fewer
/// loads of the next one, and whether a tag needs one is the branch that random tag lengths
/// make the CPU mispredict.)
#[derive(Debug, Clone)]
pub struct Tags<'b> {
    field: &'b [u8],
    /// Where the next tag starts.
    start: usize,
    /// Where the window after the one `commas` covers starts.
    next_window: usize,
    /// The commas of the current window not passed yet.
    commas: u128,
    remaining: usize,
}

impl<'b> Tags<'b> {
    pub(crate) fn new(raw: &'b [u8], count: u32) -> Tags<'b> {
        Tags {
            field: raw,
            start: 0,
            next_window: 0,
            commas: 0,
            remaining: count as usize,
        }
    }

    /// The tags not iterated yet, as one slice still joined by `,` (empty when there are none).
    pub fn as_bytes(&self) -> &'b [u8] {
        if self.remaining == 0 {
            return &[];
        }
        self.field.get(self.start..).unwrap_or_default()
    }
}

impl<'b> Iterator for Tags<'b> {
    type Item = &'b [u8];

    #[inline(always)]
    fn next(&mut self) -> Option<&'b [u8]> {
        self.remaining = self.remaining.checked_sub(1)?;
        let rest = self.field.get(self.start..).unwrap_or_default();
        if self.remaining == 0 {
            // The count came from the scan: the last tag holds no comma, no need to look.
            return Some(rest);
        }
        loop {
            if self.commas != 0 {
                let at = self.next_window - 128 + self.commas.trailing_zeros() as usize;
                self.commas &= self.commas - 1;
                let tag = self.field.get(self.start..at).unwrap_or_default();
                self.start = at + 1;
                return Some(tag);
            }
            if self.next_window >= self.field.len() {
                // Fewer commas than the count said (not from the parser): the rest is one tag.
                self.remaining = 0;
                return Some(rest);
            }
            // Windows follow each other, so `start` (just past a comma of the last one) is
            // never past the next.
            self.commas = u128::from(scan::mask64(b',', self.field, self.next_window))
                | u128::from(scan::mask64(b',', self.field, self.next_window + 64)) << 64;
            self.next_window += 128;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Tags<'_> {}
impl FusedIterator for Tags<'_> {}

/// The `#` field starting at `start` (just after the `#`): where it ends (the next `|` or the end
/// of the line; with `OPEN`, a `\n` too) and how many tags it holds, checking the tag limits on
/// the way.
///
/// On error, returns the kind and the byte offset of the offending tag.
///
/// The common case takes one vector pass over the field that finds its end and counts its
/// commas, and, for a field longer than one tag may be, short searches that check no comma-free
/// run is too long; only a field that breaks a limit is walked tag by tag, to report the first
/// offending tag.
#[inline]
pub(crate) fn scan_tags<const OPEN: bool>(
    line: &[u8],
    start: usize,
    max_tags: u32,
    max_tag_bytes: u32,
) -> Result<(Span, u32), (ParseErrorKind, usize)> {
    let rest = line.get(start..).unwrap_or_default();
    // One pass finds the field's end and counts its commas.
    let (end, commas) = simd::find2_counting(rest, b'|', if OPEN { b'\n' } else { b'|' }, b',');
    let field = rest.get(..end).unwrap_or_default();
    if field.is_empty() {
        // `#` alone: no tags.
        return Ok((Span::new(start, start), 0));
    }
    let count = commas + 1;
    if count <= max_tags as usize && every_tag_fits(field, max_tag_bytes as usize) {
        // `count <= max_tags`, a `u32`.
        return Ok((Span::new(start, start + end), count as u32));
    }
    match first_offending_tag(field, max_tags, max_tag_bytes) {
        Some((kind, at)) => Err((kind, start + at)),
        None => Ok((Span::new(start, start + end), count as u32)),
    }
}

/// A quick sufficient check that every `,`-separated tag of `field` is at most `max` bytes long
/// (`false` means "maybe not": [`first_offending_tag`] decides).
///
/// A tag longer than `max` is a comma-free run of `max + 1` bytes, and such a run contains a whole
/// block of `(max + 1) / 2` bytes (blocks cut from the field's start), or, at the field's end,
/// its last `(max + 1) / 2` bytes. So it is enough that each of those holds a comma: up to four
/// 64-byte masks from the block's start, then a search of the rest of the block.
#[inline]
fn every_tag_fits(field: &[u8], max: usize) -> bool {
    if field.len() <= max {
        return true;
    }
    let block = max.div_ceil(2);
    if block == 0 {
        // `max == 0`: let the exact walk decide.
        return false;
    }
    // Tags are usually much shorter than a block: the first few 64-byte masks of one find a
    // comma, where a search would often go on to `memchr`.
    let has_comma = |at: usize| {
        let Some(b) = field.get(at..at + block) else {
            return false;
        };
        let mut w = 0;
        while w + 64 <= b.len() && w < 256 {
            if scan::mask64(b',', b, w) != 0 {
                return true;
            }
            w += 64;
        }
        scan::find(b',', b.get(w..).unwrap_or_default()).is_some()
    };
    let mut at = 0;
    while at + block <= field.len() {
        if !has_comma(at) {
            return false;
        }
        at += block;
    }
    has_comma(field.len() - block)
}

/// The first tag of `field` that breaks a limit, in field order — the tag past `max_tags`, or a
/// tag longer than `max_tag_bytes` — with its offset in `field`; `None` when all are within them.
#[cold]
fn first_offending_tag(
    field: &[u8],
    max_tags: u32,
    max_tag_bytes: u32,
) -> Option<(ParseErrorKind, usize)> {
    let mut count: u32 = 0;
    let mut tag_start = 0;
    for tag in field.split(|&b| b == b',') {
        count = count.saturating_add(1);
        if count > max_tags {
            return Some((ParseErrorKind::TooManyTags, tag_start));
        }
        if tag.len() > max_tag_bytes as usize {
            return Some((ParseErrorKind::TagTooLong, tag_start));
        }
        tag_start += tag.len() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(field: &str) -> Vec<String> {
        let line = field.as_bytes();
        let (span, count) = scan_tags::<false>(line, 0, 100, 100).unwrap();
        let tags = Tags::new(span.get(line), count);
        assert_eq!(tags.len(), count as usize);
        tags.map(|t| String::from_utf8(t.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn splits_on_commas_keeping_empty_pieces() {
        assert_eq!(tags("a,,b"), ["a", "", "b"]);
        assert_eq!(tags("a:b,c"), ["a:b", "c"]);
        assert_eq!(tags(","), ["", ""]);
        assert!(tags("").is_empty());
    }

    #[test]
    fn stops_at_the_next_field() {
        assert_eq!(tags("a,b|@0.5"), ["a", "b"]);
        assert!(tags("|x").is_empty());
    }

    /// The limits checked the obvious way: tag by tag, left to right.
    fn naive_scan(
        line: &[u8],
        max_tags: u32,
        max_tag_bytes: u32,
    ) -> Result<(usize, u32), (ParseErrorKind, usize)> {
        let end = line.iter().position(|&b| b == b'|').unwrap_or(line.len());
        let field = &line[..end];
        if field.is_empty() {
            return Ok((0, 0));
        }
        let mut at = 0;
        for (i, tag) in field.split(|&b| b == b',').enumerate() {
            if i + 1 > max_tags as usize {
                return Err((ParseErrorKind::TooManyTags, at));
            }
            if tag.len() > max_tag_bytes as usize {
                return Err((ParseErrorKind::TagTooLong, at));
            }
            at += tag.len() + 1;
        }
        Ok((end, field.split(|&b| b == b',').count() as u32))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn property_test_tags_iterate_like_a_naive_split(
            field in "([a-z]{0,90},){0,12}[a-z]{0,90}",
            taken in 0usize..14,
        ) {
            let line = field.as_bytes();
            let (span, count) = scan_tags::<false>(line, 0, 1000, 1000).unwrap();
            let mut tags = Tags::new(span.get(line), count);
            let naive: Vec<&[u8]> = if line.is_empty() {
                Vec::new()
            } else {
                line.split(|&b| b == b',').collect()
            };
            // Part of the way, then the rest as one slice, then to the end.
            let head: Vec<&[u8]> = tags.by_ref().take(taken).collect();
            proptest::prop_assert_eq!(&head[..], &naive[..taken.min(naive.len())]);
            let rest = naive.get(taken..).map(|r| r.join(&b","[..])).unwrap_or_default();
            proptest::prop_assert_eq!(tags.as_bytes(), &rest[..]);
            proptest::prop_assert_eq!(tags.len(), naive.len().saturating_sub(taken));
            let tail: Vec<&[u8]> = tags.collect();
            proptest::prop_assert_eq!(&tail[..], naive.get(taken..).unwrap_or_default());
        }

        #[test]
        fn property_test_scan_tags_agrees_with_a_naive_scan(
            line in "[a,|]{0,120}",
            max_tags in 0u32..12,
            max_tag_bytes in 0u32..40,
        ) {
            let got = scan_tags::<false>(line.as_bytes(), 0, max_tags, max_tag_bytes)
                .map(|(span, count)| (span.end(), count));
            proptest::prop_assert_eq!(got, naive_scan(line.as_bytes(), max_tags, max_tag_bytes));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Long tags against a long limit: the blocks of the quick check are 64 bytes or more.
        #[test]
        fn property_test_long_tags_fit_like_a_naive_scan(
            tags in proptest::collection::vec("[a-z]{0,260}", 1..10),
            next_field in proptest::option::of("[a-z]{0,3}"),
            max_tag_bytes in 100u32..300,
        ) {
            let mut line = tags.join(",");
            if let Some(f) = next_field {
                line = format!("{line}|{f}");
            }
            let got = scan_tags::<false>(line.as_bytes(), 0, 1000, max_tag_bytes)
                .map(|(span, count)| (span.end(), count));
            proptest::prop_assert_eq!(got, naive_scan(line.as_bytes(), 1000, max_tag_bytes));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Limits near the default (1 KiB): blocks over 320 bytes, searched past their first
        /// four masks.
        #[test]
        fn property_test_tags_near_the_default_limit_fit_like_a_naive_scan(
            tags in proptest::collection::vec(
                proptest::prop_oneof![1 => "[a-z]{0,40}", 1 => "[a-z]{300,2000}"],
                1..6,
            ),
            max_tag_bytes in 640u32..2000,
        ) {
            let line = tags.join(",");
            let got = scan_tags::<false>(line.as_bytes(), 0, 1000, max_tag_bytes)
                .map(|(span, count)| (span.end(), count));
            proptest::prop_assert_eq!(got, naive_scan(line.as_bytes(), 1000, max_tag_bytes));
        }
    }

    #[test]
    fn enforces_the_tag_limits_with_offsets() {
        assert_eq!(
            scan_tags::<false>(b"a,b,c", 0, 2, 10),
            Err((ParseErrorKind::TooManyTags, 4))
        );
        assert_eq!(
            scan_tags::<false>(b"a,bbbb,c", 0, 10, 3),
            Err((ParseErrorKind::TagTooLong, 2))
        );
        assert!(scan_tags::<false>(b"a,bbb,c", 0, 3, 3).is_ok());
        assert_eq!(
            scan_tags::<false>(b"a", 0, 0, 3),
            Err((ParseErrorKind::TooManyTags, 0))
        );
        assert!(scan_tags::<false>(b"", 0, 0, 0).is_ok());
        // A 101-byte tag (bytes 60..161) under a 100-byte limit, so 50-byte blocks: the block
        // at 100 holds no comma, though the 64 bytes from its start do.
        let a = "a".repeat(20) + "," + &"a".repeat(38);
        let line = format!("{a},{},{}", "b".repeat(101), "c".repeat(5));
        assert_eq!(
            scan_tags::<false>(line.as_bytes(), 0, 10, 100),
            Err((ParseErrorKind::TagTooLong, 60))
        );
    }
}
