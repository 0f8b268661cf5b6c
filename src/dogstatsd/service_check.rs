use super::config::ParserConfig;
use super::error::{MessageKind, ParseError, ParseErrorKind};
use super::fields::walk_fields;
use super::number::parse_i64;
use super::origin::{Origin, OriginLayout};
use super::span::Span;
use super::tags::Tags;
use memchr::memchr;

/// The status of a service check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceCheckStatus {
    /// `0`.
    Ok,
    /// `1`.
    Warning,
    /// `2`.
    Critical,
    /// `3`.
    Unknown,
}

impl ServiceCheckStatus {
    /// The wire number, 0 to 3.
    pub fn as_u8(self) -> u8 {
        match self {
            ServiceCheckStatus::Ok => 0,
            ServiceCheckStatus::Warning => 1,
            ServiceCheckStatus::Critical => 2,
            ServiceCheckStatus::Unknown => 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServiceCheckLayout {
    name: Span,
    status: ServiceCheckStatus,
    timestamp: Option<i64>,
    hostname: Option<Span>,
    message: Option<Span>,
    tags: Span,
    tag_count: u32,
    origin: OriginLayout,
}

/// A parsed DogStatsD service check, borrowing from the packet it came from.
///
/// ```
/// use dogpipe::{parse_message, Message, ParserConfig, ServiceCheckStatus};
/// let line = b"_sc|redis.up|2|#env:dev|m:timed out";
/// let Ok(Message::ServiceCheck(sc)) = parse_message(line, &ParserConfig::default()) else { panic!() };
/// assert_eq!(sc.name(), b"redis.up");
/// assert_eq!(sc.status(), ServiceCheckStatus::Critical);
/// assert_eq!(sc.message(), Some(&b"timed out"[..]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCheck<'b> {
    line: &'b [u8],
    layout: ServiceCheckLayout,
}

impl<'b> ServiceCheck<'b> {
    pub(crate) fn bind(line: &'b [u8], layout: ServiceCheckLayout) -> ServiceCheck<'b> {
        ServiceCheck { line, layout }
    }

    pub(crate) fn layout(&self) -> ServiceCheckLayout {
        self.layout
    }

    /// The whole message.
    pub fn line(&self) -> &'b [u8] {
        self.line
    }

    /// The check name.
    pub fn name(&self) -> &'b [u8] {
        self.layout.name.get(self.line)
    }

    /// The status.
    pub fn status(&self) -> ServiceCheckStatus {
        self.layout.status
    }

    /// The `d:` timestamp; `None` when absent or not an integer (the Agent then uses "now").
    pub fn timestamp(&self) -> Option<i64> {
        self.layout.timestamp
    }

    /// The `h:` hostname, possibly empty.
    pub fn hostname(&self) -> Option<&'b [u8]> {
        self.layout.hostname.map(|s| s.get(self.line))
    }

    /// The `m:` message. It ends at the next `|`, as in the Agent: fields may follow it.
    pub fn message(&self) -> Option<&'b [u8]> {
        self.layout.message.map(|s| s.get(self.line))
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
    ParseError::new(kind, MessageKind::ServiceCheck, offset)
}

/// Parses `_sc|<name>|<status>[|field]*` (the caller has checked the `_sc|` prefix).
pub(crate) fn parse_service_check(
    line: &[u8],
    config: &ParserConfig,
) -> Result<ServiceCheckLayout, ParseError> {
    const NAME_START: usize = 4;
    let after_prefix = line.get(NAME_START..).unwrap_or_default();
    let name_end = memchr(b'|', after_prefix)
        .map(|i| NAME_START + i)
        .ok_or_else(|| err(ParseErrorKind::MissingServiceCheckFields, line.len()))?;
    if name_end == NAME_START {
        return Err(err(ParseErrorKind::EmptyServiceCheckName, NAME_START));
    }
    let status_start = name_end + 1;
    let after_name = line.get(status_start..).unwrap_or_default();
    let status_end = memchr(b'|', after_name).map_or(line.len(), |i| status_start + i);
    let status = match line.get(status_start..status_end).unwrap_or_default() {
        b"0" => ServiceCheckStatus::Ok,
        b"1" => ServiceCheckStatus::Warning,
        b"2" => ServiceCheckStatus::Critical,
        b"3" => ServiceCheckStatus::Unknown,
        _ => return Err(err(ParseErrorKind::InvalidServiceCheckStatus, status_start)),
    };
    let mut layout = ServiceCheckLayout {
        name: Span::new(NAME_START, name_end),
        status,
        timestamp: None,
        hostname: None,
        message: None,
        tags: Span::default(),
        tag_count: 0,
        origin: OriginLayout::default(),
    };
    let (tags, tag_count) = walk_fields(
        line,
        status_end + 1,
        config,
        MessageKind::ServiceCheck,
        |pos, field| {
            let value = Span::new((pos + 2).min(pos + field.len()), pos + field.len());
            match field.get(..2).unwrap_or_default() {
                b"d:" => {
                    if let Ok(ts) = parse_i64(value.get(line)) {
                        layout.timestamp = Some(ts);
                    }
                }
                b"h:" => layout.hostname = Some(value),
                b"m:" => layout.message = Some(value),
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
