//! The DogStatsD wire protocol: framing, the three message kinds, tags, values and errors.
//!
//! Everything here borrows from the packet: parsing allocates nothing.

mod config;
mod error;
mod event;
mod fields;
mod framing;
mod metric;
mod number;
mod origin;
mod scan;
mod service_check;
mod span;
mod tags;

pub use config::ParserConfig;
pub use error::{MessageKind, ParseError, ParseErrorKind};
pub use event::{AlertType, Event, Priority};
pub use framing::{Lines, Messages, lines, parse_packet};
pub use metric::{Metric, MetricType, Values};
pub use origin::{Cardinality, Origin};
pub use service_check::{ServiceCheck, ServiceCheckStatus};
pub use tags::Tags;

use bytes::Bytes;
use event::EventLayout;
use metric::MetricLayout;
use service_check::ServiceCheckLayout;

/// One parsed DogStatsD message, borrowing from its packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Message<'b> {
    /// A metric sample (or several, packed).
    Metric(Metric<'b>),
    /// An event.
    Event(Event<'b>),
    /// A service check.
    ServiceCheck(ServiceCheck<'b>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    Metric(MetricLayout),
    Event(EventLayout),
    ServiceCheck(ServiceCheckLayout),
}

impl<'b> Message<'b> {
    /// Which kind of message this is.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Metric(_) => MessageKind::Metric,
            Message::Event(_) => MessageKind::Event,
            Message::ServiceCheck(_) => MessageKind::ServiceCheck,
        }
    }

    /// The whole message (one line of the packet).
    pub fn line(&self) -> &'b [u8] {
        match self {
            Message::Metric(m) => m.line(),
            Message::Event(e) => e.line(),
            Message::ServiceCheck(sc) => sc.line(),
        }
    }

    fn layout(&self) -> Layout {
        match self {
            Message::Metric(m) => Layout::Metric(m.layout()),
            Message::Event(e) => Layout::Event(e.layout()),
            Message::ServiceCheck(sc) => Layout::ServiceCheck(sc.layout()),
        }
    }

    /// An owned copy that can outlive the packet (copies the line once).
    pub fn to_owned_message(&self) -> OwnedMessage {
        OwnedMessage {
            line: Bytes::copy_from_slice(self.line()),
            layout: self.layout(),
        }
    }

    /// An owned message sharing `packet`'s memory when this message was parsed from it (no copy),
    /// or a copy otherwise.
    pub fn share(&self, packet: &Bytes) -> OwnedMessage {
        let line = self.line();
        let inside = packet.as_ptr() as usize <= line.as_ptr() as usize
            && line.as_ptr() as usize + line.len() <= packet.as_ptr() as usize + packet.len();
        OwnedMessage {
            line: if inside && !line.is_empty() {
                packet.slice_ref(line)
            } else {
                Bytes::copy_from_slice(line)
            },
            layout: self.layout(),
        }
    }
}

/// A parsed message that owns (or shares, through [`Bytes`]) its bytes, so it can be sent to
/// another thread or kept after the packet buffer is reused. It is not parsed again:
/// [`message`](Self::message) re-binds the layout found by the first parse.
///
/// ```
/// use bytes::Bytes;
/// use dogpipe::{parse_packet, ParserConfig};
/// let packet = Bytes::from_static(b"a:1|c\nb:2|g\n");
/// let owned: Vec<_> = parse_packet(&packet, &ParserConfig::default())
///     .filter_map(Result::ok)
///     .map(|m| m.share(&packet))
///     .collect();
/// assert_eq!(owned[1].message().line(), b"b:2|g");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedMessage {
    line: Bytes,
    layout: Layout,
}

impl OwnedMessage {
    /// Parses `line` (one message, without its newline) into an owned message.
    ///
    /// # Errors
    /// The [`ParseError`] of [`parse_message`].
    pub fn parse(line: Bytes, config: &ParserConfig) -> Result<OwnedMessage, ParseError> {
        let layout = parse_message(&line, config)?.layout();
        Ok(OwnedMessage { line, layout })
    }

    /// The message, borrowing from this owner.
    pub fn message(&self) -> Message<'_> {
        match self.layout {
            Layout::Metric(l) => Message::Metric(Metric::bind(&self.line, l)),
            Layout::Event(l) => Message::Event(Event::bind(&self.line, l)),
            Layout::ServiceCheck(l) => Message::ServiceCheck(ServiceCheck::bind(&self.line, l)),
        }
    }

    /// The bytes of the message.
    pub fn line(&self) -> &Bytes {
        &self.line
    }
}

/// Parses one message (a line of a packet, without its `\n`).
///
/// The kind is chosen by prefix ([`MessageKind::of`]); the rules are the Datadog Agent's, with the
/// divergences listed in the crate docs.
///
/// # Errors
/// A [`ParseError`] naming what was wrong and where, when the Agent would reject the message or a
/// configured limit is exceeded.
///
/// ```
/// use dogpipe::{parse_message, ParseErrorKind, ParserConfig};
/// let e = parse_message(b"m:1|C", &ParserConfig::default()).unwrap_err();
/// assert_eq!(e.kind(), ParseErrorKind::UnknownType);
/// assert_eq!(e.offset(), 4);
/// ```
#[inline]
pub fn parse_message<'b>(line: &'b [u8], config: &ParserConfig) -> Result<Message<'b>, ParseError> {
    let kind = MessageKind::of(line);
    if line.len() > config.max_message_bytes() as usize {
        return Err(ParseError::new(
            ParseErrorKind::MessageTooLong,
            kind,
            config.max_message_bytes() as usize,
        ));
    }
    Ok(match kind {
        MessageKind::Metric => {
            Message::Metric(Metric::bind(line, metric::parse_metric(line, config)?))
        }
        MessageKind::Event => Message::Event(Event::bind(line, event::parse_event(line, config)?)),
        MessageKind::ServiceCheck => Message::ServiceCheck(ServiceCheck::bind(
            line,
            service_check::parse_service_check(line, config)?,
        )),
    })
}
