//! DogStatsD parsing throughput on the realistic corpora (see `common`).
//!
//! "Parse" means what a consumer of the parser does: every datagram through `parse_packet`, and
//! every field of every message decoded — name, every value parsed to `f64`, every tag, sample
//! rate, timestamp, origin fields; the fields of events and service checks too.
//!
//! Run with `cargo bench --bench dogstatsd`. Two groups measure the same work:
//! `dogstatsd/parse` reports bytes/s, `dogstatsd/parse_messages` messages/s.
//!
//! On a machine shared with other work, `DOGPIPE_BENCH_CPU_TIME=1 cargo bench --bench dogstatsd`
//! measures the thread's CPU time instead of wall time (ids get a `/cpu-time` suffix), so time
//! spent waiting for a core is not counted.

mod common;

use common::{Corpus, ThreadCpuTime};
use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput};
use dogpipe::{Message, ParserConfig, parse_packet};
use std::hint::black_box;

/// What decoding a corpus saw; black-boxed so that no field read can be optimised away.
#[derive(Debug, Default, PartialEq)]
struct Decoded {
    messages: u64,
    errors: u64,
    value_sum: f64,
    field_bytes: usize,
}

/// Parses every datagram and reads every field of every message.
fn decode_all(corpus: &Corpus, config: &ParserConfig) -> Decoded {
    let mut out = Decoded::default();
    for datagram in corpus.datagrams() {
        for result in parse_packet(datagram, config) {
            let message = match result {
                Ok(message) => message,
                Err(e) => {
                    black_box(e);
                    out.errors += 1;
                    continue;
                }
            };
            out.messages += 1;
            match message {
                Message::Metric(m) => {
                    out.field_bytes += black_box(m.name()).len();
                    black_box(m.metric_type());
                    for v in m.values() {
                        out.value_sum += v;
                    }
                    if let Some(member) = m.set_member() {
                        out.field_bytes += black_box(member).len();
                    }
                    for tag in m.tags() {
                        out.field_bytes += black_box(tag).len();
                    }
                    out.value_sum += m.sample_rate();
                    black_box(m.timestamp());
                    decode_origin(m.origin(), &mut out);
                }
                Message::Event(e) => {
                    out.field_bytes += black_box(e.title()).len() + black_box(e.text()).len();
                    black_box((e.timestamp(), e.priority(), e.alert_type()));
                    for field in [e.hostname(), e.aggregation_key(), e.source_type_name()] {
                        out.field_bytes += black_box(field).map_or(0, <[u8]>::len);
                    }
                    for tag in e.tags() {
                        out.field_bytes += black_box(tag).len();
                    }
                    decode_origin(e.origin(), &mut out);
                }
                Message::ServiceCheck(sc) => {
                    out.field_bytes += black_box(sc.name()).len();
                    black_box((sc.status(), sc.timestamp()));
                    for field in [sc.hostname(), sc.message()] {
                        out.field_bytes += black_box(field).map_or(0, <[u8]>::len);
                    }
                    for tag in sc.tags() {
                        out.field_bytes += black_box(tag).len();
                    }
                    decode_origin(sc.origin(), &mut out);
                }
            }
        }
    }
    out
}

fn decode_origin(origin: dogpipe::Origin<'_>, out: &mut Decoded) {
    for field in [
        origin.local_data(),
        origin.external_data(),
        origin.cardinality_raw(),
    ] {
        out.field_bytes += black_box(field).map_or(0, <[u8]>::len);
    }
}

fn parse<M: Measurement>(c: &mut Criterion<M>, id_suffix: &str) {
    let corpora = common::corpora();
    // Origin detection on: the corpora carry `|c:` fields, and reading them is part of the work.
    let config = ParserConfig::default().with_origin_detection_client(true);
    for corpus in &corpora {
        let decoded = decode_all(corpus, &config);
        eprintln!(
            "{}: {} ({} datagrams, {} bytes, {} messages, {} rejected)",
            corpus.name,
            corpus.source,
            corpus.datagram_count(),
            corpus.bytes(),
            corpus.messages(),
            decoded.errors,
        );
        assert_eq!(decoded.messages + decoded.errors, corpus.messages());
    }
    for (group_name, per_bytes) in [
        ("dogstatsd/parse", true),
        ("dogstatsd/parse_messages", false),
    ] {
        let mut group = c.benchmark_group(group_name);
        for corpus in &corpora {
            group.throughput(if per_bytes {
                Throughput::Bytes(corpus.bytes())
            } else {
                Throughput::Elements(corpus.messages())
            });
            group.bench_function(format!("{}{id_suffix}", corpus.name), |b| {
                b.iter(|| black_box(decode_all(corpus, black_box(&config))))
            });
        }
        group.finish();
    }
}

fn main() {
    if std::env::var_os("DOGPIPE_BENCH_CPU_TIME").is_some() {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpuTime::default())
            .configure_from_args();
        parse(&mut c, "/cpu-time");
        c.final_summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        parse(&mut c, "");
        c.final_summary();
    }
}
