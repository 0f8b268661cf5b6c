//! Container log decoding throughput: CRI and Docker json-file, with and without escapes, on a
//! deterministic generated corpus, fed to the `Decoder` in 256 KiB reads like a tailer would.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dogpipe::{
    Decoder, DecoderConfig, Encoding, Endpoint, ForwardError, LogFormat, LogsConfig, LogsPipeline,
    Payload, Sink,
};
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

/// Plain UTF-16 LE lines (the CRI corpus's text, non-ASCII included), framed and transcoded.
fn decode_utf16(corpus: &[u8]) -> u64 {
    let config = DecoderConfig::default()
        .with_format(LogFormat::Raw)
        .with_encoding(Encoding::Utf16Le);
    let mut decoder = Decoder::new(config);
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
    let (cri, lines) = &corpora[0].2;
    let utf16: Vec<u8> = String::from_utf8_lossy(cri)
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut group = c.benchmark_group("logs/decode_utf16");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(utf16.len() as u64));
    group.bench_function("le_raw_bytes", |b| {
        b.iter(|| black_box(decode_utf16(&utf16)))
    });
    group.throughput(Throughput::Elements(*lines));
    group.bench_function("le_raw_lines", |b| {
        b.iter(|| black_box(decode_utf16(&utf16)))
    });
    group.finish();
}

/// Counts compressed bytes; accepts everything at once.
struct CountingSink(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Sink for CountingSink {
    fn send(&mut self, payload: Payload) -> Result<(), ForwardError> {
        self.0.fetch_add(
            payload.body().len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    fn pending(&mut self, _: Endpoint) -> usize {
        0
    }
}

/// Files on disk to compressed batches: a pods directory with `files` CRI files of `corpus`,
/// the whole `LogsPipeline` (scan, read, decode, encode, batch, zstd) until every message was
/// encoded and the last batch sent. Returns the compressed bytes.
fn end_to_end(pods: &std::path::Path, run: &std::path::Path, messages: u64) -> u64 {
    let _ = std::fs::remove_dir_all(run);
    let compressed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let config = LogsConfig::default()
        .with_container_collect_all(true)
        .with_pods_dir(pods)
        .with_run_path(run)
        .with_decoder(DecoderConfig::default().with_format(LogFormat::Cri));
    let handle = LogsPipeline::start(config, Box::new(CountingSink(compressed.clone())), "node-1");
    while handle.stats().messages < messages {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let stats = handle.stop();
    assert_eq!(stats.messages, messages);
    compressed.load(std::sync::atomic::Ordering::Relaxed)
}

fn bench_end_to_end(c: &mut Criterion) {
    let (corpus, _) = cri_corpus();
    let dir = std::env::temp_dir().join(format!("dogpipe-bench-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pods = dir.join("pods");
    let files = 4;
    for k in 0..files {
        let container = pods.join(format!("ns_pod{k}_uid{k}/app"));
        std::fs::create_dir_all(&container).unwrap();
        std::fs::write(container.join("0.log"), &corpus).unwrap();
    }
    let run = dir.join("run");
    // The message count, from one run.
    let config = LogsConfig::default()
        .with_container_collect_all(true)
        .with_pods_dir(&pods)
        .with_run_path(&run);
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let handle = LogsPipeline::start(config, Box::new(CountingSink(counted.clone())), "node-1");
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = handle.stats();
        if now.bytes_read == (corpus.len() * files) as u64 && now.messages == last {
            break;
        }
        last = now.messages;
    }
    let messages = handle.stop().messages;
    let total = (corpus.len() * files) as u64;
    let mut group = c.benchmark_group("logs/end_to_end");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(total));
    group.bench_function("cri_files_to_zstd_batches_bytes", |b| {
        b.iter(|| black_box(end_to_end(&pods, &run, messages)))
    });
    group.throughput(Throughput::Elements(messages));
    group.bench_function("cri_files_to_zstd_batches_messages", |b| {
        b.iter(|| black_box(end_to_end(&pods, &run, messages)))
    });
    group.finish();
    // CPU time of the whole process (the pipeline thread plus the mostly sleeping poller): the
    // machine is shared, so wall time understates what one core does.
    let cpu = || {
        // Fields 14 and 15 of /proc/self/stat: user and system time in clock ticks (100 Hz).
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    };
    let (start, rounds) = (cpu(), 5);
    let mut compressed = 0;
    for _ in 0..rounds {
        compressed = end_to_end(&pods, &run, messages);
    }
    let seconds = (cpu() - start) / rounds as f64;
    eprintln!(
        "logs/end_to_end: {total} bytes, {messages} messages -> {compressed} compressed bytes; \
         {:.3} CPU s per run = {:.0} MB/s and {:.0} k messages/s per CPU second",
        seconds,
        total as f64 / seconds / 1e6,
        messages as f64 / seconds / 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench, bench_end_to_end);
criterion_main!(benches);
