use super::config::ParserConfig;
use super::error::MessageKind;
use super::error::ParseError;
use super::metric::{self, Metric};
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

/// Parses every message of a packet: the same results as `lines(packet)` with
/// [`parse_message`] on each line, but a metric's line end is found by the searches that parse
/// it rather than by a pass of its own (anything unusual is parsed as a line, the usual way).
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
        if let Some(message) = self.next_metric() {
            return Some(Ok(message));
        }
        let line = self.lines.next()?;
        Some(parse_message(line, self.config))
    }
}

impl<'b> Messages<'b, '_> {
    /// The next message when it is a metric that parses, found without a pass of its own for
    /// the line's end: the metric is parsed from the rest of the packet, up to the first `\n`
    /// (see [`metric::parse_metric_to`]). `None`, consuming nothing, for anything else — an
    /// empty line, a `\r` before the `\n`, an event or service check, a message over the
    /// length limit, any error — which the caller then takes as a line, the usual way.
    #[inline]
    fn next_metric(&mut self) -> Option<Message<'b>> {
        let rest = self.lines.rest;
        // Spans are `u32`: a longer packet goes the usual way (its lines are checked against
        // the `u32` length limit before they are parsed).
        if matches!(rest.first(), None | Some(b'\n' | b'\r'))
            || MessageKind::of(rest) != MessageKind::Metric
            || u32::try_from(rest.len()).is_err()
        {
            return None;
        }
        let (layout, len) = metric::parse_metric_to::<true>(rest, self.config).ok()?;
        let line = rest.get(..len)?;
        if len > self.config.max_message_bytes() as usize || line.last() == Some(&b'\r') {
            return None;
        }
        self.lines.rest = rest.get(len + 1..).unwrap_or_default();
        Some(Message::Metric(Metric::bind(line, layout)))
    }
}

impl FusedIterator for Messages<'_, '_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The usual way: split into lines, then parse each.
    fn line_by_line<'b>(
        packet: &'b [u8],
        config: &ParserConfig,
    ) -> Vec<Result<Message<'b>, ParseError>> {
        lines(packet).map(|l| parse_message(l, config)).collect()
    }

    /// What packets are made of: separators, every field kind, good and bad values.
    const PIECES: &[&[u8]] = &[
        b"\n",
        b"\r\n",
        b"\r",
        b":",
        b"|",
        b"#",
        b",",
        b"@0.5",
        b"@x",
        b"|c",
        b"|g",
        b"|ms",
        b"|s",
        b"|d",
        b"T1700000000",
        b"c:ci-ab",
        b"card:low",
        b"e:it-1",
        b"_e{1,1}:a|b",
        b"_sc|n|0",
        b"m",
        b"12",
        b"-3.5",
        b"1e3",
        b"abc",
        b"k:v",
        b"nan",
        b"0.1",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn property_test_packets_parse_as_their_lines_do(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..40),
            origin in any::<bool>(),
            max_message_bytes in prop_oneof![Just(65_535u32), 4u32..40],
            max_tags in prop_oneof![Just(256u32), 0u32..3],
        ) {
            let packet = pieces.concat();
            let config = ParserConfig::default()
                .with_origin_detection_client(origin)
                .with_timestamps(true)
                .with_max_message_bytes(max_message_bytes)
                .with_max_tags(max_tags);
            // Compared as printed: a NaN value is not equal to itself.
            let fast = format!("{:?}", parse_packet(&packet, &config).collect::<Vec<_>>());
            prop_assert_eq!(fast, format!("{:?}", line_by_line(&packet, &config)));
        }
    }

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
