use super::config::ParserConfig;
use super::error::ParseError;
use super::{Message, parse_message};
use std::iter::FusedIterator;

/// The messages of a packet: its `\n`-separated lines, with a `\r` before the `\n` (or at the end
/// of the packet) stripped and empty lines skipped.
#[derive(Debug, Clone)]
pub struct Lines<'b> {
    rest: &'b [u8],
}

/// Splits a packet (a datagram, or a stream frame) into messages.
///
/// ```
/// let lines: Vec<&[u8]> = dogpipe::lines(b"a:1|c\r\n\nb:2|c").collect();
/// assert_eq!(lines, [&b"a:1|c"[..], b"b:2|c"]);
/// ```
pub fn lines(packet: &[u8]) -> Lines<'_> {
    Lines { rest: packet }
}

impl<'b> Iterator for Lines<'b> {
    type Item = &'b [u8];

    #[inline]
    fn next(&mut self) -> Option<&'b [u8]> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let line = match memchr::memchr(b'\n', self.rest) {
                Some(i) => {
                    let line = self.rest.get(..i).unwrap_or_default();
                    self.rest = self.rest.get(i + 1..).unwrap_or_default();
                    line
                }
                None => std::mem::take(&mut self.rest),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                return Some(line);
            }
        }
    }
}

impl FusedIterator for Lines<'_> {}

/// The parsed messages of a packet, in order; a bad message yields its error and parsing goes on.
#[derive(Debug, Clone)]
pub struct Messages<'b, 'c> {
    lines: Lines<'b>,
    config: &'c ParserConfig,
}

/// Parses every message of a packet.
///
/// ```
/// use dogpipe::{parse_packet, ParserConfig};
/// let config = ParserConfig::default();
/// let results: Vec<_> = parse_packet(b"a:1|c\nbad\nb:2|c", &config).collect();
/// assert_eq!(results.len(), 3);
/// assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
/// ```
pub fn parse_packet<'b, 'c>(packet: &'b [u8], config: &'c ParserConfig) -> Messages<'b, 'c> {
    Messages {
        lines: lines(packet),
        config,
    }
}

impl<'b> Iterator for Messages<'b, '_> {
    type Item = Result<Message<'b>, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let line = self.lines.next()?;
        Some(parse_message(line, self.config))
    }
}

impl FusedIterator for Messages<'_, '_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(p: &[u8]) -> Vec<&[u8]> {
        lines(p).collect()
    }

    #[test]
    fn splits_on_newlines_and_skips_empty_lines() {
        assert_eq!(split(b"a:1|c\nb:2|c\n"), [&b"a:1|c"[..], b"b:2|c"]);
        assert_eq!(split(b"a:1|c\n\nb:2|c"), [&b"a:1|c"[..], b"b:2|c"]);
        assert_eq!(split(b"\n\n\n"), Vec::<&[u8]>::new());
        assert_eq!(split(b""), Vec::<&[u8]>::new());
    }

    #[test]
    fn strips_one_carriage_return_before_newline_or_end() {
        assert_eq!(split(b"a:1|c\r\nb:2|c\r\n"), [&b"a:1|c"[..], b"b:2|c"]);
        assert_eq!(split(b"a:1|c\r"), [&b"a:1|c"[..]]);
        assert_eq!(split(b"a\r\r\n"), [&b"a\r"[..]]);
        assert_eq!(split(b"\r\n"), Vec::<&[u8]>::new());
    }
}
