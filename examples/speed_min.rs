//! Minimum and median time per pass over a corpus: `cargo run --release --example speed_min --
//! [corpus] [decode|notags|parse|insert_all|aggregate] [passes]` (`notags`: decode without
//! reading tags; `aggregate`: `insert_all` alone, on messages parsed beforehand). The minimum
//! is the figure least disturbed by other work on a shared machine; use it to compare two
//! builds run alternately.

// The benches' corpus reader (it panics, naming the file, when the corpus cannot be read).
#[path = "../benches/common/mod.rs"]
#[allow(dead_code)]
mod common;

use dogpipe::{Aggregator, AggregatorConfig, Message, ParserConfig, parse_packet};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "dsd_small10k".into());
    let mode = args.next().unwrap_or_else(|| "decode".into());
    let passes: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(40);
    let path = format!("../shared/corpus/{name}_16m.bin.zst");
    let corpus = common::load("corpus", &path.into());
    let datagrams: Vec<&[u8]> = corpus.datagrams().collect();
    let messages: usize = datagrams.iter().map(|d| dogpipe::lines(d).count()).sum();
    let origin = ParserConfig::default().with_origin_detection_client(true);
    let plain = ParserConfig::default();
    let mut agg = Aggregator::new(AggregatorConfig::default().with_hostname("bench"));
    let mut batch = Vec::new();
    let mut now = 1_700_000_000;
    let parsed: Vec<Vec<Message<'_>>> = datagrams
        .iter()
        .map(|d| parse_packet(d, &plain).flatten().collect())
        .collect();
    let mut times = Vec::new();
    for _ in 0..passes + 2 {
        let start = Instant::now();
        let mut acc = 0usize;
        let mut sum = 0f64;
        if mode == "aggregate" {
            for batch in &parsed {
                agg.insert_all(batch, now);
            }
        }
        for d in &datagrams {
            match mode.as_str() {
                "aggregate" => break,
                "decode" | "notags" => {
                    for m in parse_packet(d, &origin) {
                        if let Ok(Message::Metric(m)) = m {
                            acc += black_box(m.name()).len();
                            for v in m.values() {
                                sum += v;
                            }
                            if mode != "notags" {
                                for t in m.tags() {
                                    acc += black_box(t).len();
                                }
                            }
                            sum += m.sample_rate();
                            black_box(m.timestamp());
                            let o = m.origin();
                            for f in [o.local_data(), o.external_data(), o.cardinality_raw()] {
                                acc += black_box(f).map_or(0, <[u8]>::len);
                            }
                        }
                    }
                }
                "parse" => {
                    for m in parse_packet(d, &plain) {
                        if let Ok(Message::Metric(m)) = m {
                            acc += m.value_count();
                        }
                    }
                }
                _ => {
                    batch.clear();
                    batch.extend(parse_packet(d, &plain).flatten());
                    agg.insert_all(&batch, now);
                }
            }
        }
        times.push(start.elapsed().as_secs_f64());
        black_box((acc, sum));
        if mode == "insert_all" || mode == "aggregate" {
            now += 10;
            black_box(agg.flush(now));
        }
    }
    times.drain(..2);
    times.sort_by(f64::total_cmp);
    let (Some(&min), Some(&med)) = (times.first(), times.get(times.len() / 2)) else {
        return;
    };
    println!(
        "{name} {mode}: min {:.2} ms ({:.2} M msg/s), median {:.2} ms ({:.2} M msg/s)",
        min * 1e3,
        messages as f64 / min / 1e6,
        med * 1e3,
        messages as f64 / med / 1e6
    );
}
