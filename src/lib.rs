//! # dogpipe
//!
//! The data plane of a node agent: it receives DogStatsD metrics and container logs, parses them
//! without copying, aggregates metrics, and ships compressed payloads in the formats the Datadog
//! intake accepts.
//!
//! The pipeline reads left to right: **receive → parse → aggregate → serialize → forward**, with
//! container logs beside it.
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
//! which it ends, for a registry of read positions. UTF-16 files
//! ([`DecoderConfig::with_encoding`]) are framed on their two-byte newline and transcoded to UTF-8.
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
//! use dogpipe::{FileSink, Flush, Point, Series, SeriesKind, Serializer, SerializerConfig, TagSet, write_flush};
//!
//! let series = Series {
//!     name: b"page.views".as_slice().into(),
//!     host: b"web1".as_slice().into(),
//!     tags: TagSet::from(vec!["env:prod"]),
//!     kind: SeriesKind::Rate,
//!     interval: 10,
//!     points: vec![Point { timestamp: 1_700_000_000, value: 0.3 }].into(),
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

//!
//! ## Aggregating
//!
//! [`Aggregator`] turns parsed messages into the series and sketches the Datadog Agent would send
//! (10 s buckets, counters as rates, histogram aggregates and percentiles, the Agent-flavoured
//! DDSketch for distributions, idle-counter zeros and context expiry), on a clock the caller
//! passes in. [`ShardedAggregator`] does the same over N shard threads fed in batches over bounded
//! channels, with no lock on the sample path.
//!
//! ```
//! use dogpipe::{parse_packet, Aggregator, AggregatorConfig, ParserConfig, SeriesKind};
//! let mut agg = Aggregator::new(AggregatorConfig::default().with_hostname("web1"));
//! let t0 = 1_700_000_000;
//! for m in parse_packet(b"hits:1|c|#b,a\nhits:2|c|#a,b,a\nlat:4|h\nsize:1|d", &ParserConfig::default()) {
//!     agg.insert(&m.unwrap(), t0 + 3);
//! }
//! let flush = agg.flush(t0 + 15); // emits the closed bucket [t0, t0 + 10)
//! let hits = flush.series.iter().find(|s| &*s.name == b"hits").unwrap();
//! assert_eq!((hits.kind, hits.points[0].value, hits.tags.len()), (SeriesKind::Rate, 0.3, 2));
//! assert_eq!(flush.series.len(), 1 + 5); // hits + lat.{max,median,avg,count,95percentile}
//! assert_eq!(flush.sketches[0].points[0].keys, [1338]);
//! ```
//!
//! **Memory.** A context costs about 200 bytes (a counter with a 30-byte name, measured by
//! `tests/aggregate_memory.rs`); contexts with the same tags share one interned tag set, and a
//! context with a tag set of its own adds the set: 32 bytes, plus 8 bytes per tag, each tag
//! string itself being interned once per shard (≈ 335 bytes in all for 5 tags totalling 70
//! bytes). A set that differs by a few tags from another of the same metric (one tag such as a
//! pod or request id varies) and shares at least eight with it is held as that difference, so
//! its size does not grow with the tags it shares (≈ 330 bytes a context with 20 shared tags
//! and one of its own). Live contexts
//! are capped by [`AggregatorConfig::with_context_limit`] (default [`DEFAULT_CONTEXT_LIMIT`],
//! 500 000, so about 100–165 MB at most for such contexts): over it, samples of new contexts
//! are dropped and counted in [`AggregateStats::context_limit`] while existing contexts keep
//! aggregating. A context that
//! is seen again costs no heap allocation.
//!
//! **Divergences from the Agent's aggregation**, each deliberate and tested:
//!
//! * **Metric type in the context.** The Agent shares one context between a gauge and a counter
//!   with the same name, tags and host; dogpipe keeps them apart (timings and histograms still
//!   share, as both are histograms).
//! * **Nonsense sample rates.** A rate outside [1/4294967295, 1] (0, negative, above 1, NaN or
//!   absurdly small) on a counter, histogram, timing or distribution is taken as 1 and counted in
//!   [`AggregateStats::rate_clamped`]; the Agent would emit ±Inf or flip signs for counters, and
//!   a tiny rate would make one sample weigh billions (distributions already treat ≤ 0 and > 1
//!   as 1 in the Agent). Gauges and sets ignore rates, as in the Agent.
//! * **Dropped values are counted**: NaN/±Inf values ([`AggregateStats::non_finite`], silent in
//!   the Agent), blocklisted names, the context limit, timestamped non-gauge/counter samples.
//! * **Empty tags** (`#a,,b`) are dropped; the Agent forwards them.
//! * **Idle-counter zeros do not depend on sharding.** The Agent keeps the set of existing
//!   buckets per time sampler, so with several pipelines a counter's zeros depend on which
//!   metrics share its sampler; dogpipe keeps one set per aggregator. A bucket exists once a
//!   metric message (not blocklisted, not timestamped) arrived in it; when a flush closes none
//!   and a bucket width passed since the last flush, the zeros go to the bucket before the
//!   cutoff, as in the Agent.
//! * **No tagger.** `dd.internal.entity_id:` and `dd.internal.card:` are extracted and removed
//!   as in the Agent, but no origin tags are added (there is no container tagger here).
//! * **Histogram and distribution details follow the Agent**: integer weights `trunc(1/rate)`,
//!   lower-median and `(p × count − 1) / 100` percentile ranks, `u32` bins that spill into a
//!   second bin with the same key, low-end collapse over 4096 bins.

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod aggregate;
mod dogstatsd;
mod forward;
mod logs;
mod net;
mod pipeline;
mod serialize;
mod simd;

pub use aggregate::{
    AggregateError, AggregateStats, Aggregator, AggregatorConfig, DEFAULT_CONTEXT_LIMIT,
    EventRecord, Flush, HistogramAggregate, MapperProfile, Point, Points, STANDARD_STATSD_PREFIXES,
    Series, SeriesKind, ServiceCheckRecord, ShardedAggregator, Sketch, SketchPoint, TagSet,
    TagSetIter, Text,
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

pub use logs::{
    BatchConfig, ContainerFilter, CriError, CriLine, DEFAULT_AGGREGATION_TIMEOUT,
    DEFAULT_BATCH_MAX_CONTENT_BYTES, DEFAULT_BATCH_MAX_MESSAGES, DEFAULT_BATCH_WAIT,
    DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_POD_LOGS_DIR, DEFAULT_RUN_PATH, Decoder, DecoderConfig,
    DecoderStats, DockerError, DockerErrorKind, DockerLine, Encoding, Frame, LineFramer, LogFormat,
    LogMessage, LogsConfig, LogsHandle, LogsPipeline, LogsStats, OwnedLogMessage, PodLogConfigs,
    PodLogPath, ProcessingRules, RuleError, RuleErrorKind, RuleScope, SelectionError, Stream,
    container_id_from_symlink_name, parse_cri, parse_docker,
};
pub use net::{ListenError, ListenerConfig, ListenerStats, Listeners, Packet};
pub use pipeline::{Agent, AgentError, ConfigError, Settings, Telemetry, check_health};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
