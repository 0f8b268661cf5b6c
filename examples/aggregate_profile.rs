//! Runs parse + aggregate over a corpus a few times, for profilers (`perf`, `valgrind
//! --tool=cachegrind`): `cargo run --release --example aggregate_profile -- [corpus] [passes]
//! [parse-only]`.

use dogpipe::{Aggregator, AggregatorConfig, Message, ParserConfig, parse_packet};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "dsd_small10k".into());
    let passes: i64 = args.next().and_then(|p| p.parse().ok()).unwrap_or(3);
    let parse_only = args.next().is_some();
    let path = format!("../shared/corpus/{name}_16m.bin.zst");
    let Ok(compressed) = std::fs::read(&path) else {
        eprintln!("cannot read {path}");
        std::process::exit(1);
    };
    let Ok(raw) = zstd::decode_all(&compressed[..]) else {
        eprintln!("cannot decompress {path}");
        std::process::exit(1);
    };
    let mut datagrams = Vec::new();
    let mut rest = &raw[..];
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        let Some(d) = tail.get(..len) else { break };
        datagrams.push(d);
        rest = &tail[len..];
    }
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
