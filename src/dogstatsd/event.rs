use super::config::ParserConfig;
use super::error::{MessageKind, ParseError, ParseErrorKind};
use super::fields::walk_fields;
use super::number::parse_i64;
use super::origin::{Origin, OriginLayout};
use super::span::Span;
use super::tags::Tags;
use memchr::{memchr, memmem};
use std::borrow::Cow;

/// The priority of an event (`p:` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// `normal`, the default.
    #[default]
    Normal,
    /// `low`.
    Low,
}

impl Priority {
    /// `"normal"` or `"low"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// The alert type of an event (`t:` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AlertType {
    /// `info`, the default.
    #[default]
    Info,
    /// `error`.
    Error,
    /// `warning`.
    Warning,
    /// `success`.
    Success,
}

impl AlertType {
    /// `"info"`, `"error"`, `"warning"` or `"success"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::Info => "info",
            AlertType::Error => "error",
            AlertType::Warning => "warning",
            AlertType::Success => "success",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventLayout {
    title: Span,
    text: Span,
    timestamp: Option<i64>,
    hostname: Option<Span>,
    aggregation_key: Option<Span>,
    priority: Priority,
    source_type_name: Option<Span>,
    alert_type: AlertType,
    tags: Span,
    tag_count: u32,
    origin: OriginLayout,
}

/// A parsed DogStatsD event, borrowing from the packet it came from.
///
/// ```
/// use dogpipe::{parse_message, AlertType, Message, ParserConfig};
/// let line = b"_e{5,9}:title|line1\\nl2|t:warning|#env:a";
/// let Ok(Message::Event(e)) = parse_message(line, &ParserConfig::default()) else { panic!() };
/// assert_eq!(&*e.title(), b"title");
/// assert_eq!(&*e.text(), b"line1\nl2");
/// assert_eq!(e.alert_type(), AlertType::Warning);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'b> {
    line: &'b [u8],
    layout: EventLayout,
}

/// Replaces each two-byte `\n` escape by a newline; borrows when there is none.
fn unescape(raw: &[u8]) -> Cow<'_, [u8]> {
    if memmem::find(raw, b"\\n").is_none() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = memmem::find(rest, b"\\n") {
        out.extend_from_slice(rest.get(..i).unwrap_or_default());
        out.push(b'\n');
        rest = rest.get(i + 2..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

impl<'b> Event<'b> {
    pub(crate) fn bind(line: &'b [u8], layout: EventLayout) -> Event<'b> {
        Event { line, layout }
    }

    pub(crate) fn layout(&self) -> EventLayout {
        self.layout
    }

    /// The whole message.
    pub fn line(&self) -> &'b [u8] {
        self.line
    }

    /// The title as received, with `\n` escapes still in place.
    pub fn title_raw(&self) -> &'b [u8] {
        self.layout.title.get(self.line)
    }

    /// The text as received, with `\n` escapes still in place.
    pub fn text_raw(&self) -> &'b [u8] {
        self.layout.text.get(self.line)
    }

    /// The title with `\n` escapes replaced by newlines (allocates only when there is one).
    pub fn title(&self) -> Cow<'b, [u8]> {
        unescape(self.title_raw())
    }

    /// The text with `\n` escapes replaced by newlines (allocates only when there is one).
    pub fn text(&self) -> Cow<'b, [u8]> {
        unescape(self.text_raw())
    }

    /// The `d:` timestamp; `None` when absent or not an integer (the Agent then uses "now").
    pub fn timestamp(&self) -> Option<i64> {
        self.layout.timestamp
    }

    /// The `h:` hostname, possibly empty.
    pub fn hostname(&self) -> Option<&'b [u8]> {
        self.layout.hostname.map(|s| s.get(self.line))
    }

    /// The `k:` aggregation key.
    pub fn aggregation_key(&self) -> Option<&'b [u8]> {
        self.layout.aggregation_key.map(|s| s.get(self.line))
    }

    /// The `p:` priority; `normal` when absent or invalid.
    pub fn priority(&self) -> Priority {
        self.layout.priority
    }

    /// The `s:` source type name.
    pub fn source_type_name(&self) -> Option<&'b [u8]> {
        self.layout.source_type_name.map(|s| s.get(self.line))
    }

    /// The `t:` alert type; `info` when absent or invalid.
    pub fn alert_type(&self) -> AlertType {
        self.layout.alert_type
    }

    /// The tags of the last `#` field, as received.
    pub fn tags(&self) -> Tags<'b> {
        Tags::new(self.layout.tags.get(self.line), self.layout.tag_count)
    }

    /// The client origin fields (empty unless client origin detection is on).
    pub fn origin(&self) -> Origin<'b> {
        self.layout.origin.bind(self.line)
    }
}

fn err(kind: ParseErrorKind, offset: usize) -> ParseError {
    ParseError::new(kind, MessageKind::Event, offset)
}

/// A length of the header: Go `strconv.Atoi`, non-negative.
fn header_length(raw: &[u8]) -> Option<usize> {
    usize::try_from(parse_i64(raw).ok()?).ok()
}

/// Parses an event line `_e{<title length>,<text length>}:<title>|<text>[|field]*`.
///
/// Divergence: the Agent takes the lengths from `header[3..len-1]` without checking that the
/// header ends with `}`; dogpipe requires it.
pub(crate) fn parse_event(line: &[u8], config: &ParserConfig) -> Result<EventLayout, ParseError> {
    let colon = memchr(b':', line).ok_or_else(|| err(ParseErrorKind::InvalidEventHeader, 0))?;
    let header = line.get(..colon).unwrap_or_default();
    if header.len() < 7 || header.last() != Some(&b'}') {
        return Err(err(ParseErrorKind::InvalidEventHeader, 0));
    }
    let lengths = header.get(3..header.len() - 1).unwrap_or_default();
    let comma = memchr(b',', lengths).ok_or_else(|| err(ParseErrorKind::InvalidEventHeader, 3))?;
    let title_len = lengths.get(..comma).and_then(header_length);
    let text_len = lengths.get(comma + 1..).and_then(header_length);
    let (Some(title_len), Some(text_len)) = (title_len, text_len) else {
        return Err(err(ParseErrorKind::InvalidEventHeader, 3));
    };
    if title_len == 0 {
        return Err(err(ParseErrorKind::EmptyEventTitle, 3));
    }
    let title_start = colon + 1;
    let body_len = line.len() - title_start;
    let needed = title_len
        .checked_add(text_len)
        .and_then(|n| n.checked_add(1))
        .filter(|&n| n <= body_len)
        .ok_or_else(|| err(ParseErrorKind::EventTooShort, line.len()))?;
    let text_start = title_start + title_len + 1;
    let mut layout = EventLayout {
        title: Span::new(title_start, title_start + title_len),
        text: Span::new(text_start, text_start + text_len),
        timestamp: None,
        hostname: None,
        aggregation_key: None,
        priority: Priority::Normal,
        source_type_name: None,
        alert_type: AlertType::Info,
        tags: Span::default(),
        tag_count: 0,
        origin: OriginLayout::default(),
    };

    let (tags, tag_count) = walk_fields(
        line,
        title_start + needed,
        config,
        MessageKind::Event,
        |pos, field| {
            let value = Span::new((pos + 2).min(pos + field.len()), pos + field.len());
            match field.get(..2).unwrap_or_default() {
                b"d:" => {
                    if let Ok(ts) = parse_i64(value.get(line)) {
                        layout.timestamp = Some(ts);
                    }
                }
                b"h:" => layout.hostname = Some(value),
                b"k:" => layout.aggregation_key = Some(value),
                b"s:" => layout.source_type_name = Some(value),
                b"p:" => match value.get(line) {
                    b"low" => layout.priority = Priority::Low,
                    b"normal" => layout.priority = Priority::Normal,
                    _ => {}
                },
                b"t:" => match value.get(line) {
                    b"error" => layout.alert_type = AlertType::Error,
                    b"warning" => layout.alert_type = AlertType::Warning,
                    b"info" => layout.alert_type = AlertType::Info,
                    b"success" => layout.alert_type = AlertType::Success,
                    _ => {}
                },
                _ => {
                    if config.origin_detection_client() {
                        layout.origin.record(field, pos);
                    }
                }
            }
            Ok(())
        },
    )?;
    layout.tags = tags;
    layout.tag_count = tag_count;
    Ok(layout)
}
