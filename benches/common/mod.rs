//! DogStatsD corpora shared by the benches: the realistic captures in `../shared/corpus/`, or a
//! deterministic generated corpus of the same shape when that folder is absent.
//!
//! A corpus file is zstd-compressed; decompressed, it is a sequence of records
//! `[u32 little-endian length][datagram bytes]`, each datagram at most 8 KiB of `\n`-separated
//! messages.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use std::ops::Range;
use std::path::{Path, PathBuf};

mod cpu;
pub use cpu::thread_cpu_nanos;

/// The largest datagram a client sends over a Unix datagram socket (and the corpora hold).
pub const MAX_DATAGRAM_BYTES: usize = 8192;

/// Bytes of datagrams a generated corpus holds, like the captured ones.
const GENERATED_CORPUS_BYTES: usize = 16 << 20;

/// The datagrams of one corpus, kept in a single buffer.
pub struct Corpus {
    /// Short name used in benchmark ids: `smp3k` or `small10k`.
    pub name: &'static str,
    /// Where the datagrams came from: a file path, or "generated".
    pub source: String,
    buffer: Vec<u8>,
    datagrams: Vec<Range<usize>>,
    messages: u64,
}

impl Corpus {
    fn new(
        name: &'static str,
        source: String,
        buffer: Vec<u8>,
        datagrams: Vec<Range<usize>>,
    ) -> Self {
        let mut corpus = Corpus {
            name,
            source,
            buffer,
            datagrams,
            messages: 0,
        };
        corpus.messages = corpus
            .datagrams()
            .map(|d| dogpipe::lines(d).count() as u64)
            .sum();
        corpus
    }

    /// The datagrams, in order.
    pub fn datagrams(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.datagrams.iter().map(|r| &self.buffer[r.clone()])
    }

    /// Number of datagrams.
    pub fn datagram_count(&self) -> usize {
        self.datagrams.len()
    }

    /// Total bytes of datagrams (the record length prefixes are not counted).
    pub fn bytes(&self) -> u64 {
        self.datagrams.iter().map(|r| r.len() as u64).sum()
    }

    /// Total messages (non-empty lines) in all datagrams.
    pub fn messages(&self) -> u64 {
        self.messages
    }
}

/// The shape of a corpus, as the payload generator that made the captures was configured.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Distinct contexts (name + tag set) messages are drawn from.
    pub contexts: usize,
    /// Metric name length in bytes, inclusive range.
    pub name_bytes: (usize, usize),
    /// Tags per context, inclusive range.
    pub tags: (usize, usize),
    /// Tag length in bytes, inclusive range.
    pub tag_bytes: (usize, usize),
}

/// `dsd_smp3k`: few, huge messages.
pub const SMP3K: Shape = Shape {
    contexts: 3_000,
    name_bytes: (1, 200),
    tags: (2, 50),
    tag_bytes: (3, 150),
};

/// `dsd_small10k`: many short messages.
pub const SMALL10K: Shape = Shape {
    contexts: 10_000,
    name_bytes: (10, 60),
    tags: (3, 10),
    tag_bytes: (5, 40),
};

/// Both corpora, `smp3k` then `small10k`: read from `../shared/corpus/` relative to the crate
/// root, or generated when the folder is absent (or when `DOGPIPE_BENCH_GENERATED` is set, to
/// exercise the generator).
///
/// # Panics
/// When a corpus file exists but cannot be read or is malformed (a broken bench setup).
pub fn corpora() -> Vec<Corpus> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    [
        ("smp3k", "dsd_smp3k_16m.bin.zst", SMP3K, 0x5eed_0003),
        (
            "small10k",
            "dsd_small10k_16m.bin.zst",
            SMALL10K,
            0x5eed_0010,
        ),
    ]
    .into_iter()
    .map(|(name, file, shape, seed)| {
        let path = dir.join(file);
        if path.exists() && std::env::var_os("DOGPIPE_BENCH_GENERATED").is_none() {
            load(name, &path)
        } else {
            generate(name, shape, seed)
        }
    })
    .collect()
}

/// Reads a zstd-compressed corpus file.
///
/// # Panics
/// When the file cannot be read or its records are malformed.
pub fn load(name: &'static str, path: &PathBuf) -> Corpus {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let raw =
        zstd::stream::decode_all(file).unwrap_or_else(|e| panic!("zstd {}: {e}", path.display()));
    let mut buffer = Vec::with_capacity(raw.len());
    let mut datagrams = Vec::new();
    let mut rest = &raw[..];
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .unwrap_or_else(|| panic!("{}: truncated record length", path.display()));
        let len = u32::from_le_bytes(*len) as usize;
        let datagram = tail
            .get(..len)
            .unwrap_or_else(|| panic!("{}: truncated record", path.display()));
        let start = buffer.len();
        buffer.extend_from_slice(datagram);
        datagrams.push(start..buffer.len());
        rest = &tail[len..];
    }
    Corpus::new(name, path.display().to_string(), buffer, datagrams)
}

/// A deterministic corpus of `shape`: the captures' type mix (count 208 : gauge 66 :
/// distribution 72 : set 9 : histogram 1), 8 % multi-value messages (2–32 values), ~40 % with
/// `|@rate`, a few with `|c:` container ids, packed into datagrams of at most 8 KiB.
pub fn generate(name: &'static str, shape: Shape, seed: u64) -> Corpus {
    let mut rng = Rng(seed);
    let contexts: Vec<(Vec<u8>, Vec<u8>)> = (0..shape.contexts)
        .map(|_| {
            let len = rng.between(shape.name_bytes);
            let name = rng.alphanumeric(len);
            let mut tags = Vec::new();
            for i in 0..rng.between(shape.tags) {
                if i > 0 {
                    tags.push(b',');
                }
                let len = rng.between(shape.tag_bytes);
                let key = 1 + rng.below(len.saturating_sub(1).max(1));
                tags.extend(rng.alphanumeric(key));
                if key < len {
                    tags.push(b':');
                    tags.extend(rng.alphanumeric(len - key - 1));
                }
            }
            (name, tags)
        })
        .collect();

    let mut buffer = Vec::with_capacity(GENERATED_CORPUS_BYTES + MAX_DATAGRAM_BYTES);
    let mut datagrams = Vec::new();
    let mut start = 0;
    let mut message = Vec::new();
    while buffer.len() < GENERATED_CORPUS_BYTES {
        message.clear();
        let (name, tags) = &contexts[rng.below(contexts.len())];
        message.extend_from_slice(name);
        let kind = match rng.below(356) {
            0..208 => "c",
            208..274 => "g",
            274..346 => "d",
            346..355 => "s",
            _ => "h",
        };
        if kind == "s" {
            message.push(b':');
            let len = rng.between((1, 20));
            message.extend(rng.alphanumeric(len));
        } else {
            let values = if rng.below(100) < 8 {
                rng.between((2, 32))
            } else {
                1
            };
            for _ in 0..values {
                message.push(b':');
                rng.value(&mut message);
            }
        }
        message.push(b'|');
        message.extend_from_slice(kind.as_bytes());
        if rng.below(100) < 40 {
            let rate = [0.1, 0.25, 0.5, 0.75, 1.0][rng.below(5)];
            message.extend_from_slice(format!("|@{rate}").as_bytes());
        }
        if !tags.is_empty() {
            message.extend_from_slice(b"|#");
            message.extend_from_slice(tags);
        }
        if rng.below(100) < 5 {
            message.extend_from_slice(b"|c:ci-");
            message.extend(rng.alphanumeric(64));
        }
        if message.len() > MAX_DATAGRAM_BYTES {
            continue;
        }
        let in_datagram = buffer.len() - start;
        if in_datagram > 0 && in_datagram + 1 + message.len() > MAX_DATAGRAM_BYTES {
            datagrams.push(start..buffer.len());
            start = buffer.len();
        }
        if buffer.len() > start {
            buffer.push(b'\n');
        }
        buffer.extend_from_slice(&message);
    }
    datagrams.push(start..buffer.len());
    Corpus::new(name, "generated".to_owned(), buffer, datagrams)
}

/// A small deterministic generator (SplitMix64); benches need reproducible input, not quality
/// randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in the inclusive range.
    fn between(&mut self, (low, high): (usize, usize)) -> usize {
        low + self.below(high - low + 1)
    }

    fn alphanumeric(&mut self, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }

    /// A value as clients print them: integers of any size, or floats.
    fn value(&mut self, out: &mut Vec<u8>) {
        let text = match self.below(4) {
            0 => (self.next() as i64).to_string(),
            1 => (self.below(10_000)).to_string(),
            2 => ((self.next() as i64) as f64).to_string(),
            _ => format!("{:.*}", self.below(7), self.next() as f64 / 1e15 - 9000.0),
        };
        out.extend_from_slice(text.as_bytes());
    }
}

/// A criterion measurement of the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`)
/// instead of wall time: on a machine shared with other work, time the thread spent waiting for
/// a core is not counted. Contention for the core's caches and execution units still is.
pub struct ThreadCpuTime(WallTime);

impl Default for ThreadCpuTime {
    fn default() -> Self {
        ThreadCpuTime(WallTime)
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_nanos()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_nanos().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, nanos: &u64) -> f64 {
        *nanos as f64
    }

    /// Values are nanoseconds, as for wall time, so wall time's formatting applies.
    fn formatter(&self) -> &dyn ValueFormatter {
        self.0.formatter()
    }
}
