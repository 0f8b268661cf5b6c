//! Runs parse + aggregate over a corpus a few times, for profilers (`perf`, `valgrind
//! --tool=cachegrind`): `cargo run --release --example aggregate_profile -- [corpus] [passes]
//! [parse-only]`.

// The benches' corpus reader (it panics, naming the file, when the corpus cannot be read).
#[path = "../benches/common/mod.rs"]
#[allow(dead_code)]
mod common;

use dogpipe::{Aggregator, AggregatorConfig, Message, ParserConfig, parse_packet};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "dsd_small10k".into());
    let passes: i64 = args.next().and_then(|p| p.parse().ok()).unwrap_or(3);
    let parse_only = args.next().is_some();
    let path = format!("../shared/corpus/{name}_16m.bin.zst");
    let corpus = common::load("corpus", &path.into());
    let datagrams: Vec<&[u8]> = corpus.datagrams().collect();
    let config = ParserConfig::default();
    let mut agg = Aggregator::new(AggregatorConfig::default().with_hostname("profile"));
    let mut n = 0u64;
    for pass in 0..passes {
        let now = 1_700_000_000 + pass * 10;
        let mut batch = Vec::new();
        for d in &datagrams {
            if std::env::var_os("XALL").is_some() {
                batch.clear();
                batch.extend(parse_packet(d, &config).flatten());
                agg.insert_all(&batch, now);
                continue;
            }
            for m in parse_packet(d, &config).flatten() {
                if parse_only {
                    if let Message::Metric(m) = m {
                        n += m.values().count() as u64 + m.tags().count() as u64;
                    }
                } else {
                    agg.insert(&m, now);
                }
            }
        }
        std::hint::black_box(agg.flush(now + 10));
    }
    eprintln!("{n} {:?}", agg.stats().live_contexts);
}
