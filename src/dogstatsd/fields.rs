use super::config::ParserConfig;
use super::error::{MessageKind, ParseError};
use super::scan;
use super::span::Span;
use super::tags::scan_tags;

/// Walks the `|`-separated fields of `line` from `start`. `#` fields are scanned as tags (the last
/// one wins) and returned as `(span, count)`; every other field is passed to `on_field` with its
/// offset in the line.
#[inline]
pub(crate) fn walk_fields(
    line: &[u8],
    start: usize,
    config: &ParserConfig,
    kind: MessageKind,
    on_field: impl FnMut(usize, &[u8]) -> Result<(), ParseError>,
) -> Result<(Span, u32), ParseError> {
    walk_fields_to::<false>(line, start, line.len(), config, kind, on_field).map(|(tags, _)| tags)
}

/// [`walk_fields`] over `input[..end]`. With `OPEN`, `input` is the rest of a packet whose
/// message ends at the first `\n` (or at `end`): each field's search stops at a `\n` too, and
/// the message's end is returned with the tags.
#[inline]
pub(crate) fn walk_fields_to<const OPEN: bool>(
    input: &[u8],
    start: usize,
    end: usize,
    config: &ParserConfig,
    kind: MessageKind,
    mut on_field: impl FnMut(usize, &[u8]) -> Result<(), ParseError>,
) -> Result<((Span, u32), usize), ParseError> {
    let mut tags = (Span::default(), 0);
    let mut limit = end;
    let mut pos = start;
    while pos <= limit {
        let line = input.get(..limit).unwrap_or_default();
        let rest = line.get(pos..).unwrap_or_default();
        if rest.first() == Some(&b'#') {
            let (span, count) =
                scan_tags::<OPEN>(line, pos + 1, config.max_tags(), config.max_tag_bytes())
                    .map_err(|(error, at)| ParseError::new(error, kind, at))?;
            tags = (span, count);
            if OPEN && line.get(span.end()) == Some(&b'\n') {
                limit = span.end();
            }
            pos = span.end() + 1;
            continue;
        }
        let field_end = match scan::find_pipe::<OPEN>(rest) {
            Some((i, newline)) => {
                if newline {
                    limit = pos + i;
                }
                pos + i
            }
            None => limit,
        };
        on_field(pos, line.get(pos..field_end).unwrap_or_default())?;
        pos = field_end + 1;
    }
    Ok((tags, limit))
}
