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
//! ## Serializing and forwarding
//!
//! A [`Serializer`] turns a [`Flush`] into [`Payload`]s: series v2 (`MetricPayload` protobuf) or
//! v1 JSON, sketches (`SketchPayload`), service checks and events JSON, each compressed while it
//! is written (zstd level 1 by default, zlib, or none) and split before any of the intake's
//! limits (compressed bytes, uncompressed bytes, points per payload; see [`PayloadLimits`]). An
//! item that fits in no payload is dropped and counted in [`SerializeStats`].
//!
//! Payloads go to a [`Sink`]: the HTTP [`Forwarder`] (ordered per endpoint, retries with capped
//! jittered backoff, bounded memory queue, optional disk spool surviving restarts) or a
//! [`FileSink`] (body files plus `requests.jsonl`, read back by `dogpipe decode`).
//!
//! ```
//! use dogpipe::{FileSink, Flush, Point, Series, SeriesKind, Serializer, SerializerConfig, write_flush};
//!
//! let series = Series {
//!     name: b"page.views".as_slice().into(),
//!     host: b"web1".as_slice().into(),
//!     tags: vec![b"env:prod".as_slice().into()],
//!     kind: SeriesKind::Rate,
//!     interval: 10,
//!     points: vec![Point { timestamp: 1_700_000_000, value: 0.3 }],
//! };
//! let flush = Flush { series: vec![series], ..Flush::default() };
//! let dir = std::env::temp_dir().join(format!("dogpipe-doc-{}", std::process::id()));
//! let mut sink = FileSink::create(&dir)?;
//! let mut serializer = Serializer::new(SerializerConfig::default());
//! assert_eq!(write_flush(&mut serializer, &flush, &mut sink)?, 1);
//! let index = std::fs::read_to_string(dir.join("requests.jsonl"))?;
//! assert!(index.starts_with(r#"{"seq":1,"path":"/api/v2/series","content_type":"application/x-protobuf","content_encoding":"zstd","body_file":"000001.body""#));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
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
//! * **Events payloads.** The Agent groups all events of a payload by source type in one object;
//!   dogpipe sends one payload per source type (same JSON shape, one group each).
//! * **Series resources.** Every `device:` tag is removed from a series' tags and the last one
//!   becomes the `device` resource; `dd.internal.resource:<type>:<name>` tags become resources
//!   (malformed ones are dropped), as the Agent does.
//! * **Limits.** The Agent has no limit on tags or message size; dogpipe rejects a message over
//!   [`ParserConfig`]'s limits (defaults far above real traffic) and counts it as a bad message.

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod aggregate;
mod dogstatsd;
mod forward;
mod serialize;

pub use aggregate::{
    EventRecord, Flush, Point, Series, SeriesKind, ServiceCheckRecord, Sketch, SketchPoint,
};

pub use forward::{
    ApiKey, Clock, FileSink, ForwardError, ForwardStats, Forwarder, ForwarderConfig, HttpTransport,
    Response, Sink, SystemClock, Transport, open_sink, write_flush,
};
#[doc(hidden)]
pub use serialize::compress_all;
pub use serialize::{
    Compression, Endpoint, Payload, PayloadLimits, SerializeError, SerializeStats, Serializer,
    SerializerConfig,
};

pub use dogstatsd::{
    AlertType, Cardinality, Event, Lines, Message, MessageKind, Messages, Metric, MetricType,
    Origin, OwnedMessage, ParseError, ParseErrorKind, ParserConfig, Priority, ServiceCheck,
    ServiceCheckStatus, Tags, Values, lines, parse_message, parse_packet,
};
