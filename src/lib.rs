//! # dogpipe
//!
//! The data plane of a node agent: it receives DogStatsD metrics and container logs, parses them
//! without copying, aggregates metrics, and ships compressed payloads in the formats the Datadog
//! intake accepts.
//!
//! The pipeline reads left to right: **receive → parse → aggregate → serialize → forward**. This
//! release holds the first stage, the DogStatsD parser.
//!
//! ## Parsing DogStatsD
//!
//! [`parse_packet`] splits a datagram into messages and parses each one, borrowing from the
//! packet: no allocation per message, and a bad message yields a typed [`ParseError`] without
//! stopping the rest of the packet.
//!
//! ```
//! use dogpipe::{parse_packet, Message, ParserConfig};
//!
//! let config = ParserConfig::default();
//! let packet = b"cpu.load:0.5|g|#host:web1,env:prod\nreqs:1:2:3|c|@0.5\noops\n_sc|db.up|0";
//! let (mut samples, mut bad) = (0, 0);
//! for result in parse_packet(packet, &config) {
//!     match result {
//!         Ok(Message::Metric(m)) => samples += m.value_count(),
//!         Ok(_) => {}
//!         Err(e) => {
//!             bad += 1;
//!             assert_eq!(e.to_string(), "invalid metric at byte 4: metric has no `|type` (expected name:value|type)");
//!         }
//!     }
//! }
//! assert_eq!((samples, bad), (4, 1));
//! ```
//!
//! ## Compatibility with the Datadog Agent
//!
//! The parser accepts what the Agent's DogStatsD server accepts and rejects what it rejects, with
//! these deliberate divergences (each one is tested):
//!
//! * **Service-check prefix.** The Agent treats any message starting with `_sc` as a service check,
//!   so it rejects metrics named `_sc…`; dogpipe requires `_sc|`, as Saluki does.
//! * **Event header.** The Agent does not check that an event header ends with `}`
//!   (`_e{5,4x:title|text` is accepted there); dogpipe rejects such a header.
//! * **Hexadecimal floats.** Go's `ParseFloat` accepts `0x1p3`; dogpipe rejects hexadecimal
//!   values. Decimal forms, `_` digit separators, `inf`/`infinity`/`nan` and the rejection of
//!   out-of-range literals such as `1e400` match Go exactly.
//! * **Limits.** The Agent has no limit on tags or message size; dogpipe rejects a message over
//!   [`ParserConfig`]'s limits (defaults far above real traffic) and counts it as a bad message.

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod aggregate;
mod dogstatsd;
mod net;
mod pipeline;

pub use aggregate::{
    EventRecord, Flush, Point, Series, SeriesKind, ServiceCheckRecord, Sketch, SketchPoint,
};

pub use dogstatsd::{
    AlertType, Cardinality, Event, Lines, Message, MessageKind, Messages, Metric, MetricType,
    Origin, OwnedMessage, ParseError, ParseErrorKind, ParserConfig, Priority, ServiceCheck,
    ServiceCheckStatus, Tags, Values, lines, parse_message, parse_packet,
};
pub use net::{ListenError, ListenerConfig, ListenerStats, Listeners, Packet};
pub use pipeline::{ConfigError, Heartbeat, Settings, check_health};
