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
    mut on_field: impl FnMut(usize, &[u8]) -> Result<(), ParseError>,
) -> Result<(Span, u32), ParseError> {
    let mut tags = (Span::default(), 0);
    let mut pos = start;
    while pos <= line.len() {
        let rest = line.get(pos..).unwrap_or_default();
        if rest.first() == Some(&b'#') {
            let (span, count) = scan_tags(line, pos + 1, config.max_tags(), config.max_tag_bytes())
                .map_err(|(error, at)| ParseError::new(error, kind, at))?;
            tags = (span, count);
            pos = span.end() + 1;
            continue;
        }
        let end = scan::find(b'|', rest).map_or(line.len(), |i| pos + i);
        on_field(pos, line.get(pos..end).unwrap_or_default())?;
        pos = end + 1;
    }
    Ok(tags)
}
