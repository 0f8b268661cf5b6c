//! # dogpipe
//!
//! The data plane of a node agent: it receives DogStatsD metrics and container logs, parses them
//! without copying, aggregates metrics, and ships compressed payloads in the formats the Datadog
//! intake accepts.
//!
//! The pipeline reads left to right: **receive → parse → aggregate → serialize → forward**, with
//! container logs beside it. This release holds the DogStatsD parser and the log decoder.
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
//! ## Decoding container logs
//!
//! A [`Decoder`] turns the bytes of one log file — CRI (containerd, CRI-O), Docker json-file or
//! plain, detected from the first line — into messages the way the Datadog Agent does: lines
//! framed on `\n` and cut at the maximum message size with `...TRUNCATED...` markers, partial
//! lines merged, white space trimmed, an optional `multi_line` rule aggregating lines, then the
//! processing rules. Each message borrows the decoder's buffers and carries the file offset at
//! which it ends, for a registry of read positions.
//!
//! ```
//! use dogpipe::{Decoder, DecoderConfig, ProcessingRules, RuleScope};
//! use std::time::Instant;
//!
//! let rules = ProcessingRules::from_json(
//!     r#"[{"type":"exclude_at_match","name":"no_health","pattern":"GET /healthz"}]"#,
//!     RuleScope::Source,
//! ).unwrap();
//! let mut decoder = Decoder::new(DecoderConfig::default().with_rules(rules));
//! let file = concat!(
//!     r#"{"log":"GET /healthz\n","stream":"stdout","time":"2024-05-01T12:00:00.1Z"}"#, "\n",
//!     r#"{"log":"db \u003cdown\u003e\n","stream":"stderr","time":"2024-05-01T12:00:00.2Z"}"#, "\n",
//! );
//! let mut messages = Vec::new();
//! decoder.push(file.as_bytes(), Instant::now(), |m| {
//!     messages.push((String::from_utf8_lossy(m.content()).into_owned(), m.status(), m.end_offset()))
//! });
//! assert_eq!(messages, [("db <down>".to_string(), "error", file.len() as u64)]);
//! assert_eq!(decoder.stats().rule_dropped, 1);
//! ```
//!
//! Divergences from the Agent, each deliberate and tested: the framer's cut point does not depend
//! on how reads are aligned; bytes of empty and dropped lines always count towards the settled
//! offset (no registry drift); [`Decoder::switch_file`] keeps a partial line across a rotation.
//! Auto multi-line detection and UTF-16/Shift-JIS files are not supported yet.
//!
//! ## Compatibility with the Datadog Agent (DogStatsD)
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
mod logs;

pub use aggregate::{
    EventRecord, Flush, Point, Series, SeriesKind, ServiceCheckRecord, Sketch, SketchPoint,
};

pub use dogstatsd::{
    AlertType, Cardinality, Event, Lines, Message, MessageKind, Messages, Metric, MetricType,
    Origin, OwnedMessage, ParseError, ParseErrorKind, ParserConfig, Priority, ServiceCheck,
    ServiceCheckStatus, Tags, Values, lines, parse_message, parse_packet,
};

pub use logs::{
    CriError, CriLine, DEFAULT_AGGREGATION_TIMEOUT, DEFAULT_MAX_MESSAGE_BYTES, Decoder,
    DecoderConfig, DecoderStats, DockerError, DockerErrorKind, DockerLine, Frame, LineFramer,
    LogFormat, LogMessage, OwnedLogMessage, PodLogPath, ProcessingRules, RuleError, RuleErrorKind,
    RuleScope, Stream, container_id_from_symlink_name, parse_cri, parse_docker,
};
