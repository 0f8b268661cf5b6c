use super::config::ParserConfig;
use super::error::{MessageKind, ParseError, ParseErrorKind};
use super::fields::walk_fields_to;
use super::number::{NumberError, parse_f64, parse_f64_prefix, parse_i64};
use super::origin::{Origin, OriginLayout};
use super::scan;
use super::span::Span;
use super::tags::Tags;
use std::iter::FusedIterator;

/// The type of a metric, from its `|type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `c`: a counter, flushed as a rate.
    Count,
    /// `g`: a gauge, last value wins.
    Gauge,
    /// `ms`: a timing, aggregated as a histogram (unit millisecond).
    Timing,
    /// `h`: a histogram.
    Histogram,
    /// `s`: a set, counting distinct members.
    Set,
    /// `d`: a distribution, aggregated into a sketch.
    Distribution,
}

impl MetricType {
    /// Parses the wire type (`c`, `g`, `ms`, `h`, `s`, `d`; case-sensitive).
    pub fn parse(raw: &[u8]) -> Option<MetricType> {
        Some(match raw {
            b"c" => MetricType::Count,
            b"g" => MetricType::Gauge,
            b"ms" => MetricType::Timing,
            b"h" => MetricType::Histogram,
            b"s" => MetricType::Set,
            b"d" => MetricType::Distribution,
            _ => return None,
        })
    }

    /// The wire form: `c`, `g`, `ms`, `h`, `s` or `d`.
    pub fn as_wire(self) -> &'static str {
        match self {
            MetricType::Count => "c",
            MetricType::Gauge => "g",
            MetricType::Timing => "ms",
            MetricType::Histogram => "h",
            MetricType::Set => "s",
            MetricType::Distribution => "d",
        }
    }

    /// The long name: `count`, `gauge`, `timing`, `histogram`, `set` or `distribution`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Count => "count",
            MetricType::Gauge => "gauge",
            MetricType::Timing => "timing",
            MetricType::Histogram => "histogram",
            MetricType::Set => "set",
            MetricType::Distribution => "distribution",
        }
    }
}

/// Where the pieces of a parsed metric are in its line, and its decoded scalars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MetricLayout {
    name: Span,
    values: Span,
    metric_type: MetricType,
    first_value: f64,
    /// Offset, relative to `values`, of the bytes after the first value.
    rest_of_values: u32,
    value_count: u32,
    sample_rate: f64,
    tags: Span,
    tag_count: u32,
    timestamp: Option<i64>,
    origin: OriginLayout,
}

/// A parsed DogStatsD metric message, borrowing from the packet it came from.
///
/// ```
/// use dogpipe::{parse_message, Message, MetricType, ParserConfig};
/// let line = b"page.views:1:2|c|@0.5|#env:prod,team:web";
/// let Ok(Message::Metric(m)) = parse_message(line, &ParserConfig::default()) else { panic!() };
/// assert_eq!(m.name(), b"page.views");
/// assert_eq!(m.metric_type(), MetricType::Count);
/// assert_eq!(m.values().collect::<Vec<_>>(), [1.0, 2.0]);
/// assert_eq!(m.sample_rate(), 0.5);
/// assert_eq!(m.tags().collect::<Vec<_>>(), [&b"env:prod"[..], b"team:web"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric<'b> {
    line: &'b [u8],
    layout: MetricLayout,
}

impl<'b> Metric<'b> {
    #[inline]
    pub(crate) fn bind(line: &'b [u8], layout: MetricLayout) -> Metric<'b> {
        Metric { line, layout }
    }

    #[inline]
    pub(crate) fn layout(&self) -> MetricLayout {
        self.layout
    }

    /// The whole message.
    #[inline]
    pub fn line(&self) -> &'b [u8] {
        self.line
    }

    /// The name, exactly as received (no trimming or validation, as the Agent does).
    #[inline]
    pub fn name(&self) -> &'b [u8] {
        self.layout.name.get(self.line)
    }

    /// The type.
    #[inline]
    pub fn metric_type(&self) -> MetricType {
        self.layout.metric_type
    }

    /// The values, parsed lazily (protocol 1.1 packs several: `m:1:2:3|d`). Empty for a set: use
    /// [`set_member`](Self::set_member).
    #[inline]
    pub fn values(&self) -> Values<'b> {
        if self.layout.metric_type == MetricType::Set {
            return Values::EMPTY;
        }
        let values = self.layout.values.get(self.line);
        Values {
            first: Some(self.layout.first_value),
            rest: values
                .get(self.layout.rest_of_values as usize..)
                .unwrap_or_default(),
            remaining: self.layout.value_count as usize,
        }
    }

    /// The raw values text (after the first `:`, up to the first `|`).
    #[inline]
    pub fn raw_values(&self) -> &'b [u8] {
        self.layout.values.get(self.line)
    }

    /// How many samples the message carries: the number of values, or 1 for a set.
    #[inline]
    pub fn value_count(&self) -> usize {
        self.layout.value_count as usize
    }

    /// The member of a set (the whole raw value, `:` included); `None` for other types.
    #[inline]
    pub fn set_member(&self) -> Option<&'b [u8]> {
        (self.layout.metric_type == MetricType::Set).then(|| self.raw_values())
    }

    /// The sample rate of the last `@` field; 1 when absent. Not range-checked here: 0, negative
    /// and > 1 rates are the aggregator's to handle, as in the Agent.
    #[inline]
    pub fn sample_rate(&self) -> f64 {
        self.layout.sample_rate
    }

    /// The tags of the last `#` field, as received.
    #[inline]
    pub fn tags(&self) -> Tags<'b> {
        Tags::new(self.layout.tags.get(self.line), self.layout.tag_count)
    }

    /// The number of tags.
    #[inline]
    pub fn tag_count(&self) -> usize {
        self.layout.tag_count as usize
    }

    /// The timestamp of the last `T` field (always ≥ 1); `None` when absent or when timestamps
    /// are off in the config.
    #[inline]
    pub fn timestamp(&self) -> Option<i64> {
        self.layout.timestamp
    }

    /// The client origin fields (empty unless client origin detection is on).
    #[inline]
    pub fn origin(&self) -> Origin<'b> {
        self.layout.origin.bind(self.line)
    }
}

/// The values of a metric, parsed lazily from the message.
///
/// Every value was validated when the message was parsed, so iterating cannot fail.
#[derive(Debug, Clone)]
pub struct Values<'b> {
    first: Option<f64>,
    rest: &'b [u8],
    remaining: usize,
}

impl Values<'_> {
    const EMPTY: Values<'static> = Values {
        first: None,
        rest: b"",
        remaining: 0,
    };
}

impl Iterator for Values<'_> {
    type Item = f64;

    #[inline(always)]
    fn next(&mut self) -> Option<f64> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        if let Some(v) = self.first.take() {
            return Some(v);
        }
        // Fast path: a plain number ending at a `:` or at the end.
        if let Some((v, len)) = parse_f64_prefix(self.rest) {
            match self.rest.get(len) {
                None => {
                    self.rest = &[];
                    return Some(v);
                }
                Some(b':') => {
                    self.rest = self.rest.get(len + 1..).unwrap_or_default();
                    return Some(v);
                }
                Some(_) => {}
            }
        }
        loop {
            let (item, rest) = split_value(self.rest)?;
            self.rest = rest;
            // Items were validated at parse time; an empty item is skipped as the Agent does.
            if let Ok(v) = parse_f64(item) {
                return Some(v);
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Values<'_> {}
impl FusedIterator for Values<'_> {}

/// The next `:`-separated item and what follows it; `None` when `s` is empty.
#[inline]
fn split_value(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.is_empty() {
        return None;
    }
    Some(match scan::find(b':', s) {
        Some(i) => (s.get(..i)?, s.get(i + 1..)?),
        None => (s, &[][..]),
    })
}

fn err(kind: ParseErrorKind, offset: usize) -> ParseError {
    ParseError::new(kind, MessageKind::Metric, offset)
}

fn value_error(e: NumberError, offset: usize) -> ParseError {
    match e {
        NumberError::Syntax => err(ParseErrorKind::InvalidValue, offset),
        NumberError::Range => err(ParseErrorKind::ValueOutOfRange, offset),
    }
}

/// Parses a metric line (already checked against the message length limit).
pub(crate) fn parse_metric(line: &[u8], config: &ParserConfig) -> Result<MetricLayout, ParseError> {
    parse_metric_to::<false>(line, config).map(|(layout, _)| layout)
}

/// Parses a metric, and returns its layout and its length. Without `OPEN`, `input` is the
/// message. With `OPEN`, it is the rest of a packet, and the message ends at the first `\n`
/// (or at the end of `input`): every search stops at a `\n` too, so the message's end is found
/// by the passes that parse it, not by a pass of its own. An `OPEN` parse gives up (with some
/// error) on anything unusual, and the caller parses the message again as a line: it is exact
/// only where it succeeds.
#[inline]
pub(crate) fn parse_metric_to<const OPEN: bool>(
    input: &[u8],
    config: &ParserConfig,
) -> Result<(MetricLayout, usize), ParseError> {
    let line = input;
    // One pass over the name: the first `:` or `|` (a `|` first means there is no value).
    let colon = if OPEN {
        scan::find3(b':', b'|', b'\n', line)
    } else {
        scan::find2(b':', b'|', line)
    }
    .ok_or_else(|| err(ParseErrorKind::MissingType, line.len()))?;
    match line.get(colon) {
        Some(b'|') => return Err(err(ParseErrorKind::MissingValue, colon)),
        Some(b'\n') if OPEN => return Err(err(ParseErrorKind::MissingType, colon)),
        _ => {}
    }
    // Fast path: the values are plain numbers, read in the same pass that finds the `|`. Anything
    // else (a set member, an exponent, an empty item, no `|`) takes the general path below.
    let fast = plain_values(line, colon + 1);
    let pipe = match fast {
        Some(values) => values.pipe,
        None => match line.get(colon + 1..).and_then(scan::find_pipe::<OPEN>) {
            Some((i, false)) => colon + 1 + i,
            _ => return Err(err(ParseErrorKind::MissingType, line.len())),
        },
    };
    if colon == 0 {
        return Err(err(ParseErrorKind::EmptyName, 0));
    }
    let values_span = Span::new(colon + 1, pipe);
    let raw_values = values_span.get(line);
    if raw_values.is_empty() {
        return Err(err(ParseErrorKind::EmptyValue, colon + 1));
    }

    let type_start = pipe + 1;
    let after_type = line.get(type_start..).unwrap_or_default();
    let (type_end, mut end) = match scan::find_pipe::<OPEN>(after_type) {
        Some((i, true)) => (type_start + i, type_start + i),
        Some((i, false)) => (type_start + i, line.len()),
        None => (line.len(), line.len()),
    };
    let metric_type = MetricType::parse(line.get(type_start..type_end).unwrap_or_default())
        .ok_or_else(|| err(ParseErrorKind::UnknownType, type_start))?;

    let (first_value, rest_of_values, value_count) = match fast {
        _ if metric_type == MetricType::Set => (0.0, 0, 1),
        Some(values) => (values.first, values.rest_of_values, values.count),
        None => parse_values(raw_values, colon + 1)?,
    };

    // The fields go to locals, and the layout is built once at the end, from them. (A layout
    // filled in by the walk lives in memory and is copied out field by field to the caller,
    // whose wider loads then wait on the narrower stores.)
    let mut sample_rate = 1.0;
    let mut timestamp = None;
    let mut origin = OriginLayout::default();
    let ((tags, tag_count), fields_end) = walk_fields_to::<OPEN>(
        line,
        type_end + 1,
        end,
        config,
        MessageKind::Metric,
        |pos, field| {
            match field.first() {
                Some(b'@') => {
                    sample_rate = parse_f64(field.get(1..).unwrap_or_default())
                        .map_err(|_| err(ParseErrorKind::InvalidSampleRate, pos))?;
                }
                Some(b'T') if config.timestamps() => {
                    timestamp = Some(
                        parse_i64(field.get(1..).unwrap_or_default())
                            .ok()
                            .filter(|&t| t >= 1)
                            .ok_or_else(|| err(ParseErrorKind::InvalidTimestamp, pos))?,
                    );
                }
                _ => {
                    if config.origin_detection_client() {
                        origin.record(field, pos);
                    }
                }
            }
            Ok(())
        },
    )?;
    end = fields_end;
    let layout = MetricLayout {
        name: Span::new(0, colon),
        values: values_span,
        metric_type,
        first_value,
        rest_of_values,
        value_count,
        sample_rate,
        tags,
        tag_count,
        timestamp,
        origin,
    };
    Ok((layout, end))
}

/// Values read by [`plain_values`].
#[derive(Clone, Copy)]
struct PlainValues {
    /// Where the values end: the `|` before the type.
    pipe: usize,
    first: f64,
    /// Offset, relative to the values, of the bytes after the first value.
    rest_of_values: u32,
    count: u32,
}

/// Reads the values starting at `start` when they are all plain numbers (the fast path of
/// [`parse_f64_prefix`]) separated by single `:` and ended by a `|`; `None` otherwise, and the
/// caller goes the general way. Where it returns values, [`parse_values`] would return the same.
#[inline]
fn plain_values(line: &[u8], start: usize) -> Option<PlainValues> {
    let mut pos = start;
    let mut first = None;
    let mut count: u32 = 0;
    loop {
        let (v, len) = parse_f64_prefix(line.get(pos..)?)?;
        let end = pos + len;
        let separator = *line.get(end)?;
        if separator != b':' && separator != b'|' {
            return None;
        }
        count += 1;
        if first.is_none() {
            let after = if separator == b':' { end + 1 } else { end };
            first = Some((v, (after - start) as u32));
        }
        if separator == b'|' {
            let (first, rest_of_values) = first?;
            return Some(PlainValues {
                pipe: end,
                first,
                rest_of_values,
                count,
            });
        }
        pos = end + 1;
    }
}

/// Validates every value; returns the first value, where the rest starts (relative to
/// `raw`), and the count.
#[inline]
fn parse_values(raw: &[u8], offset: usize) -> Result<(f64, u32, u32), ParseError> {
    let Some(first_colon) = scan::find(b':', raw) else {
        let v = parse_f64(raw).map_err(|e| value_error(e, offset))?;
        return Ok((v, raw.len() as u32, 1));
    };
    let mut first: Option<(f64, u32)> = None;
    let mut count: u32 = 0;
    let mut start = 0;
    let mut next_colon = Some(first_colon);
    loop {
        let end = next_colon.unwrap_or(raw.len());
        let item = raw.get(start..end).unwrap_or_default();
        if !item.is_empty() {
            let v = parse_f64(item).map_err(|e| value_error(e, offset + start))?;
            if first.is_none() {
                first = Some((v, (end + 1).min(raw.len()) as u32));
            }
            count += 1;
        }
        if next_colon.is_none() {
            break;
        }
        start = end + 1;
        next_colon = raw
            .get(start..)
            .and_then(|r| scan::find(b':', r))
            .map(|i| start + i);
    }
    match first {
        Some((v, rest)) => Ok((v, rest, count)),
        None => Err(err(ParseErrorKind::EmptyValue, offset)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn property_test_plain_values_agree_with_the_general_path(values in "[0-9.:e_-]{1,40}") {
            let line = format!("m:{values}|d");
            let line = line.as_bytes();
            if let Some(fast) = plain_values(line, 2) {
                prop_assert_eq!(fast.pipe, line.len() - 2);
                let (first, rest, count) = parse_values(&line[2..fast.pipe], 2).unwrap();
                prop_assert_eq!(
                    (fast.first.to_bits(), fast.rest_of_values, fast.count),
                    (first.to_bits(), rest, count)
                );
            }
            if let Ok(layout) = parse_metric(line, &ParserConfig::default()) {
                let metric = Metric::bind(line, layout);
                let expected: Vec<u64> = values
                    .split(':')
                    .filter(|item| !item.is_empty())
                    .map(|item| parse_f64(item.as_bytes()).unwrap().to_bits())
                    .collect();
                let got: Vec<u64> = metric.values().map(f64::to_bits).collect();
                prop_assert_eq!(got, expected);
            }
        }
    }
}
