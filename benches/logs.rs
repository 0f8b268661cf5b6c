//! Container log decoding throughput: CRI and Docker json-file, with and without escapes, on a
//! deterministic generated corpus, fed to the `Decoder` in 256 KiB reads like a tailer would.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dogpipe::{Decoder, DecoderConfig, LogFormat};
use std::hint::black_box;
use std::time::Instant;

const CORPUS_BYTES: usize = 8 << 20;
const READ_BYTES: usize = 256 << 10;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "GET",
    "/api/v1/users",
    "200",
    "latency_ms=12",
    "INFO",
    "request",
    "completed",
    "user_id=42",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
    "db",
    "query",
    "took",
    "cache",
    "miss",
    "ok",
];

/// A log message of 40–400 bytes; `escapes` adds quotes, tabs and `<>&` that Docker escapes.
fn message(rng: &mut Rng, escapes: bool) -> String {
    let target = 40 + rng.below(360) as usize;
    let mut m = String::new();
    while m.len() < target {
        if !m.is_empty() {
            m.push(if escapes && rng.below(8) == 0 {
                '\t'
            } else {
                ' '
            });
        }
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        if escapes && rng.below(6) == 0 {
            m.push_str(&format!("\"{w}\" <{w}>&"));
        } else {
            m.push_str(w);
        }
    }
    m
}

fn docker_escape(m: &str) -> String {
    let mut out = String::new();
    for c in m.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\t' => out.push_str("\\u0009"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

fn stream(rng: &mut Rng) -> &'static str {
    if rng.below(10) == 0 {
        "stderr"
    } else {
        "stdout"
    }
}

/// CRI lines, one in 50 split into `P` records.
fn cri_corpus() -> (Vec<u8>, u64) {
    let mut rng = Rng(0x5eed_0001);
    let (mut out, mut lines) = (String::new(), 0);
    while out.len() < CORPUS_BYTES {
        let m = message(&mut rng, false);
        let s = stream(&mut rng);
        let ts = format!(
            "2024-05-01T12:00:{:02}.{:09}Z",
            rng.below(60),
            rng.below(1_000_000_000)
        );
        if rng.below(50) == 0 && m.len() > 20 {
            out.push_str(&format!("{ts} {s} P {}\n", &m[..20]));
            out.push_str(&format!("{ts} {s} F {}\n", &m[20..]));
            lines += 2;
        } else {
            out.push_str(&format!("{ts} {s} F {m}\n"));
            lines += 1;
        }
    }
    (out.into_bytes(), lines)
}

fn docker_corpus(escapes: bool) -> (Vec<u8>, u64) {
    let mut rng = Rng(0x5eed_0002);
    let (mut out, mut lines) = (String::new(), 0);
    while out.len() < CORPUS_BYTES {
        let m = docker_escape(&message(&mut rng, escapes));
        let s = stream(&mut rng);
        let ts = format!(
            "2024-05-01T12:00:{:02}.{:09}Z",
            rng.below(60),
            rng.below(1_000_000_000)
        );
        out.push_str(&format!(
            "{{\"log\":\"{m}\\n\",\"stream\":\"{s}\",\"time\":\"{ts}\"}}\n"
        ));
        lines += 1;
    }
    (out.into_bytes(), lines)
}

fn decode_all(format: LogFormat, corpus: &[u8]) -> u64 {
    let mut decoder = Decoder::new(DecoderConfig::default().with_format(format));
    let now = Instant::now();
    let mut bytes = 0u64;
    for read in corpus.chunks(READ_BYTES) {
        decoder.push(read, now, |m| bytes += m.content().len() as u64);
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let corpora = [
        ("cri", LogFormat::Cri, cri_corpus()),
        ("docker_no_escapes", LogFormat::Docker, docker_corpus(false)),
        ("docker_escapes", LogFormat::Docker, docker_corpus(true)),
    ];
    let mut group = c.benchmark_group("logs/decode_bytes");
    group.sample_size(20);
    for (name, format, (corpus, _)) in &corpora {
        group.throughput(Throughput::Bytes(corpus.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), corpus, |b, corpus| {
            b.iter(|| black_box(decode_all(*format, corpus)))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("logs/decode_lines");
    group.sample_size(20);
    for (name, format, (corpus, lines)) in &corpora {
        group.throughput(Throughput::Elements(*lines));
        group.bench_with_input(BenchmarkId::from_parameter(name), corpus, |b, corpus| {
            b.iter(|| black_box(decode_all(*format, corpus)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
