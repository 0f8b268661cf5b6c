use super::error::ParseErrorKind;
use super::span::Span;
use std::iter::FusedIterator;

/// The tags of a message: a lazy iterator over the `,`-separated pieces of its `#` field, exactly
/// as received (no trimming, no dedupe; `#a,,b` yields `a`, an empty tag, `b`).
///
/// It allocates nothing: each tag is a slice of the message.
#[derive(Debug, Clone)]
pub struct Tags<'b> {
    rest: Option<&'b [u8]>,
    remaining: usize,
}

impl<'b> Tags<'b> {
    pub(crate) fn new(raw: &'b [u8], count: u32) -> Tags<'b> {
        Tags {
            rest: if count == 0 { None } else { Some(raw) },
            remaining: count as usize,
        }
    }

    /// The tags as one slice, still joined by `,` (empty when there are none).
    pub fn as_bytes(&self) -> &'b [u8] {
        self.rest.unwrap_or_default()
    }
}

impl<'b> Iterator for Tags<'b> {
    type Item = &'b [u8];

    #[inline]
    fn next(&mut self) -> Option<&'b [u8]> {
        let rest = self.rest?;
        self.remaining = self.remaining.saturating_sub(1);
        match memchr::memchr(b',', rest) {
            Some(i) => {
                self.rest = rest.get(i + 1..);
                rest.get(..i)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Tags<'_> {}
impl FusedIterator for Tags<'_> {}

/// The `#` field starting at `start` (just after the `#`): where it ends (the next `|` or the end
/// of the line) and how many tags it holds, checking the tag limits on the way.
///
/// On error, returns the kind and the byte offset of the offending tag.
#[inline]
pub(crate) fn scan_tags(
    line: &[u8],
    start: usize,
    max_tags: u32,
    max_tag_bytes: u32,
) -> Result<(Span, u32), (ParseErrorKind, usize)> {
    let field = line.get(start..).unwrap_or_default();
    let mut count: u32 = 0;
    let mut tag_start = 0;
    let end = loop {
        let (tag_end, at_field_end) =
            match memchr::memchr2(b',', b'|', field.get(tag_start..).unwrap_or_default()) {
                Some(i) => (tag_start + i, field.get(tag_start + i) == Some(&b'|')),
                None => (field.len(), true),
            };
        if at_field_end && tag_end == 0 {
            // `#` alone: no tags.
            break tag_end;
        }
        count += 1;
        if count > max_tags {
            return Err((ParseErrorKind::TooManyTags, start + tag_start));
        }
        if tag_end - tag_start > max_tag_bytes as usize {
            return Err((ParseErrorKind::TagTooLong, start + tag_start));
        }
        if at_field_end {
            break tag_end;
        }
        tag_start = tag_end + 1;
    };
    Ok((Span::new(start, start + end), count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(field: &str) -> Vec<String> {
        let line = field.as_bytes();
        let (span, count) = scan_tags(line, 0, 100, 100).unwrap();
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

    #[test]
    fn enforces_the_tag_limits_with_offsets() {
        assert_eq!(
            scan_tags(b"a,b,c", 0, 2, 10),
            Err((ParseErrorKind::TooManyTags, 4))
        );
        assert_eq!(
            scan_tags(b"a,bbbb,c", 0, 10, 3),
            Err((ParseErrorKind::TagTooLong, 2))
        );
        assert!(scan_tags(b"a,bbb,c", 0, 3, 3).is_ok());
        assert_eq!(
            scan_tags(b"a", 0, 0, 3),
            Err((ParseErrorKind::TooManyTags, 0))
        );
        assert!(scan_tags(b"", 0, 0, 0).is_ok());
    }
}
