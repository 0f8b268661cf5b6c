use std::fmt;

/// The kind of DogStatsD message a line was classified as, before or after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// `name:value|type…`
    Metric,
    /// `_e{…}:title|text…`
    Event,
    /// `_sc|name|status…`
    ServiceCheck,
}

impl MessageKind {
    /// Classifies a message by its prefix: `_e{` is an event, `_sc|` a service check, anything
    /// else a metric.
    ///
    /// The Agent treats any message starting with `_sc` as a service check, so it rejects a metric
    /// such as `_scheduler.runs:1|c`; dogpipe requires the pipe (as Saluki does) and accepts it.
    pub fn of(message: &[u8]) -> MessageKind {
        if message.starts_with(b"_e{") {
            MessageKind::Event
        } else if message.starts_with(b"_sc|") {
            MessageKind::ServiceCheck
        } else {
            MessageKind::Metric
        }
    }

    /// `"metric"`, `"event"` or `"service_check"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Metric => "metric",
            MessageKind::Event => "event",
            MessageKind::ServiceCheck => "service_check",
        }
    }
}

/// Why a DogStatsD message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The message is longer than [`ParserConfig::with_max_message_bytes`](crate::ParserConfig::with_max_message_bytes).
    MessageTooLong,
    /// A metric without any `|`.
    MissingType,
    /// A metric without `:` between its name and its values.
    MissingValue,
    /// A metric with an empty name (`:1|c`).
    EmptyName,
    /// A metric with no value (`m:|c`).
    EmptyValue,
    /// A type other than `c`, `g`, `ms`, `h`, `s`, `d` (case-sensitive).
    UnknownType,
    /// A value that is not a number.
    InvalidValue,
    /// A finite value too large for a 64-bit float (`1e400`).
    ValueOutOfRange,
    /// An `@` field that is not a number.
    InvalidSampleRate,
    /// A `T` field that is not an integer ≥ 1.
    InvalidTimestamp,
    /// More tags than [`ParserConfig::with_max_tags`](crate::ParserConfig::with_max_tags).
    TooManyTags,
    /// A tag longer than [`ParserConfig::with_max_tag_bytes`](crate::ParserConfig::with_max_tag_bytes).
    TagTooLong,
    /// An event header that is not `_e{<title length>,<text length>}`.
    InvalidEventHeader,
    /// An event with a title length of 0.
    EmptyEventTitle,
    /// An event shorter than its header declares.
    EventTooShort,
    /// A service check without both a name and a status field.
    MissingServiceCheckFields,
    /// A service check with an empty name.
    EmptyServiceCheckName,
    /// A service check status other than `0`, `1`, `2` or `3`.
    InvalidServiceCheckStatus,
}

impl ParseErrorKind {
    fn describe(self) -> &'static str {
        use ParseErrorKind::*;
        match self {
            MessageTooLong => "message longer than the configured maximum; raise max_message_bytes",
            MissingType => "metric has no `|type` (expected name:value|type)",
            MissingValue => "metric has no `:` between name and value (expected name:value|type)",
            EmptyName => "metric name is empty",
            EmptyValue => "metric value is empty",
            UnknownType => "metric type must be one of c, g, ms, h, s, d (case-sensitive)",
            InvalidValue => "metric value is not a number",
            ValueOutOfRange => "metric value is out of the range of a 64-bit float",
            InvalidSampleRate => "sample rate after `@` is not a number",
            InvalidTimestamp => "timestamp after `T` must be an integer of at least 1",
            TooManyTags => "more tags than the configured maximum; raise max_tags",
            TagTooLong => "a tag is longer than the configured maximum; raise max_tag_bytes",
            InvalidEventHeader => "event header must be _e{<title length>,<text length>}",
            EmptyEventTitle => "event title is empty",
            EventTooShort => "event is shorter than the lengths its header declares",
            MissingServiceCheckFields => "service check needs _sc|<name>|<status>",
            EmptyServiceCheckName => "service check name is empty",
            InvalidServiceCheckStatus => "service check status must be 0, 1, 2 or 3",
        }
    }
}

/// A rejected DogStatsD message: what was wrong, in which kind of message, and where.
///
/// The offset counts bytes from the start of the message (the line, without its `\n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParseError {
    kind: ParseErrorKind,
    message: MessageKind,
    offset: u32,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, message: MessageKind, offset: usize) -> ParseError {
        ParseError {
            kind,
            message,
            offset: u32::try_from(offset).unwrap_or(u32::MAX),
        }
    }

    /// What was wrong.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The kind of message that was rejected, for per-kind error counters.
    pub fn message_kind(&self) -> MessageKind {
        self.message
    }

    /// Byte offset in the message where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset as usize
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} at byte {}: {}",
            self.message.as_str().replace('_', " "),
            self.offset,
            self.kind.describe()
        )
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_kind_the_offset_and_the_fix() {
        let e = ParseError::new(ParseErrorKind::TooManyTags, MessageKind::Metric, 12);
        assert_eq!(
            e.to_string(),
            "invalid metric at byte 12: more tags than the configured maximum; raise max_tags"
        );
        let e = ParseError::new(
            ParseErrorKind::EmptyServiceCheckName,
            MessageKind::ServiceCheck,
            4,
        );
        assert_eq!(
            e.to_string(),
            "invalid service check at byte 4: service check name is empty"
        );
    }

    #[test]
    fn classifies_by_prefix_and_requires_the_service_check_pipe() {
        assert_eq!(MessageKind::of(b"_e{1,1}:a|b"), MessageKind::Event);
        assert_eq!(MessageKind::of(b"_sc|a|0"), MessageKind::ServiceCheck);
        assert_eq!(MessageKind::of(b"_scheduler.runs:1|c"), MessageKind::Metric);
        assert_eq!(MessageKind::of(b"a:1|c"), MessageKind::Metric);
    }
}
