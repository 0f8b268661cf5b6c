//! Serializer throughput on a flush of 100 000 series contexts: encode + compress against
//! compressing the same uncompressed payloads alone.
//!
//! `cargo bench --bench serialize` runs criterion groups and first prints the minimum of 15
//! interleaved runs of each side of the ratio. `DOGPIPE_BENCH_CPU_TIME=1` times those runs with
//! the thread's CPU time instead of wall time (steadier on a shared machine);
//! `DOGPIPE_BENCH_RATIO_ONLY=1` prints the ratios and skips the criterion groups.

#[allow(dead_code)]
mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dogpipe::{
    Aggregator, AggregatorConfig, Compression, Flush, ParserConfig, Payload, Serializer,
    SerializerConfig, compress_all, parse_message,
};
use std::hint::black_box;
use std::io::Read;
use std::time::Duration;

const CONTEXTS: usize = 100_000;

/// A deterministic flush shaped like real DogStatsD traffic, made by the real aggregator (so
/// that names, tags and tag sets are interned exactly as in a flush of `dogpipe run`): a few
/// hundred metric names, four tags per context drawn from pools of 3, 40, 2 991 and 50 000
/// strings, gauges and counters, one point each.
fn fixture() -> Flush {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut aggregator = Aggregator::new(
        AggregatorConfig::default()
            .with_hostname("ip-10-0-12-34.ec2.internal")
            .with_context_limit(4 * CONTEXTS),
    );
    let config = ParserConfig::default();
    let t0 = 1_700_000_000;
    let mut line = String::new();
    for i in 0..CONTEXTS {
        let r = next();
        line.clear();
        line.push_str(&format!(
            "app.{}.request.duration.{}:{}|{}|#env:{},service:svc-{},endpoint:/api/v{}/items/{},pod_name:web-{:x}",
            r % 300,
            ["avg", "max", "count", "p95"][i % 4],
            (r % 10_000) as f64 / 7.0,
            if i % 4 == 2 { "c" } else { "g" },
            ["prod", "staging", "dev"][(r % 3) as usize],
            r % 40,
            r % 3,
            i % 997,
            (r >> 20) % 50_000,
        ));
        let message = parse_message(line.as_bytes(), &config).unwrap();
        aggregator.insert(&message, t0);
    }
    let flush = aggregator.flush(t0 + 20);
    assert!(flush.series.len() > CONTEXTS * 99 / 100);
    flush
}

fn serialize(serializer: &mut Serializer, flush: &Flush, out: &mut Vec<Payload>) {
    out.clear();
    serializer.serialize(flush, out).unwrap();
}

/// The uncompressed bodies of `payloads`: exactly the bytes the compressor was fed.
fn decompressed(payloads: &[Payload]) -> Vec<Vec<u8>> {
    payloads
        .iter()
        .map(|p| match p.compression() {
            Compression::Zlib { .. } => {
                let mut back = Vec::new();
                flate2::read::ZlibDecoder::new(p.body())
                    .read_to_end(&mut back)
                    .unwrap();
                back
            }
            Compression::Zstd { .. } => zstd::decode_all(p.body()).unwrap(),
            _ => p.body().to_vec(),
        })
        .collect()
}

/// A clock for [`ratio`]: the thread's CPU time with `DOGPIPE_BENCH_CPU_TIME`, else wall time.
struct Clock {
    cpu: bool,
    epoch: std::time::Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            cpu: std::env::var_os("DOGPIPE_BENCH_CPU_TIME").is_some(),
            epoch: std::time::Instant::now(),
        }
    }

    fn now(&self) -> Duration {
        if self.cpu {
            Duration::from_nanos(common::thread_cpu_nanos())
        } else {
            self.epoch.elapsed()
        }
    }
}

/// Interleaved runs: the ratio of each adjacent pair of runs (serializer, then compression
/// alone), and its median — robust on a shared machine whose speed changes from one second to
/// the next — with the minimum of each side for the absolute figures.
fn ratio(
    name: &str,
    serializer: &mut Serializer,
    flush: &Flush,
    raw: &[Vec<u8>],
    compression: Compression,
) {
    const RUNS: usize = 21;
    let (mut both, mut alone, mut encode) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut ratios = Vec::with_capacity(RUNS);
    let mut plain =
        Serializer::new(SerializerConfig::default().with_compression(Compression::None));
    let mut out = Vec::new();
    let clock = Clock::new();
    for _ in 0..RUNS {
        let t = clock.now();
        serialize(&mut plain, flush, &mut out);
        encode = encode.min(clock.now() - t);
        let t = clock.now();
        serialize(serializer, flush, &mut out);
        let b = clock.now() - t;
        let t = clock.now();
        for r in raw {
            black_box(compress_all(compression, r).unwrap());
        }
        let a = clock.now() - t;
        both = both.min(b);
        alone = alone.min(a);
        ratios.push(b.as_secs_f64() / a.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let bytes: usize = raw.iter().map(Vec::len).sum();
    eprintln!(
        "{name}: {RUNS} interleaved runs ({}): encode+compress min {both:?} ({:.0} series/s, {:.1} MB/s), compress alone min {alone:?} ({:.1} MB/s), encode alone (none) min {encode:?}; ratio median {:.3} (quartiles {:.3}–{:.3})",
        if clock.cpu {
            "thread CPU time"
        } else {
            "wall time"
        },
        CONTEXTS as f64 / both.as_secs_f64(),
        bytes as f64 / both.as_secs_f64() / 1e6,
        bytes as f64 / alone.as_secs_f64() / 1e6,
        ratios[RUNS / 2],
        ratios[RUNS / 4],
        ratios[3 * RUNS / 4],
    );
}

fn bench(c: &mut Criterion) {
    let flush = fixture();
    let ratio_only = std::env::var_os("DOGPIPE_BENCH_RATIO_ONLY").is_some();
    for (name, compression) in [
        ("zstd1", Compression::Zstd { level: 1 }),
        ("zlib6", Compression::Zlib { level: 6 }),
    ] {
        let mut group = c.benchmark_group("serialize/series_v2");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(8))
            .warm_up_time(Duration::from_secs(1));
        let mut serializer =
            Serializer::new(SerializerConfig::default().with_compression(compression));
        let mut out = Vec::new();
        serialize(&mut serializer, &flush, &mut out);
        let compressed: usize = out.iter().map(|p| p.body().len()).sum();
        let raw = decompressed(&out);
        let raw_bytes: usize = raw.iter().map(Vec::len).sum();
        eprintln!(
            "{name}: {CONTEXTS} series, {} payloads, {raw_bytes} uncompressed bytes ({} B/series), {compressed} compressed",
            out.len(),
            raw_bytes / CONTEXTS
        );
        group.throughput(Throughput::Bytes(raw_bytes as u64));
        ratio(name, &mut serializer, &flush, &raw, compression);
        if ratio_only {
            continue;
        }
        group.bench_function(BenchmarkId::new("encode_and_compress", name), |b| {
            b.iter(|| serialize(&mut serializer, black_box(&flush), &mut out))
        });
        group.bench_function(BenchmarkId::new("compress_only", name), |b| {
            b.iter(|| {
                for r in &raw {
                    black_box(compress_all(compression, black_box(r)).unwrap());
                }
            })
        });
        group.finish();
    }
    if ratio_only {
        return;
    }
    let mut group = c.benchmark_group("serialize/series_v2");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    let mut serializer =
        Serializer::new(SerializerConfig::default().with_compression(Compression::None));
    let mut out = Vec::new();
    serialize(&mut serializer, &flush, &mut out);
    let raw_bytes: usize = out.iter().map(|p| p.body().len()).sum();
    group.throughput(Throughput::Bytes(raw_bytes as u64));
    group.bench_function(BenchmarkId::new("encode_only", "none"), |b| {
        b.iter(|| serialize(&mut serializer, black_box(&flush), &mut out))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
