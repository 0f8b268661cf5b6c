//! `dogpipe blast`: replays a DogStatsD corpus at a paced rate — a load generator.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const USAGE: &str =
    "usage: dogpipe blast --corpus FILE (--udp HOST:PORT | --uds PATH | --uds-stream PATH)
                     [--rate BYTES_PER_S] [--duration S] [--contexts N] [--max-datagram BYTES]
  FILE: records [u32 little-endian length][datagram], optionally zstd-compressed (.zst).
  --rate accepts suffixes k, M, G (×1000) and KiB, MiB, GiB (×1024); default 10MiB.
  --contexts N raises the stream to about N distinct contexts: every message gets a tag
    dogpipe_blast:<k>, k cycling over ceil(N / C) values, C the corpus's own contexts.";

enum Target {
    Udp(UdpSocket),
    Uds(UnixDatagram),
    Stream(UnixStream),
}

impl Target {
    fn send(&mut self, datagram: &[u8]) -> std::io::Result<()> {
        match self {
            Target::Udp(s) => s.send(datagram).map(drop),
            Target::Uds(s) => s.send(datagram).map(drop),
            Target::Stream(s) => {
                let len = u32::try_from(datagram.len()).unwrap_or(u32::MAX);
                s.write_all(&len.to_le_bytes())?;
                s.write_all(datagram)
            }
        }
    }
}

struct Args {
    corpus: PathBuf,
    target: Target,
    rate: f64,
    duration: Duration,
    contexts: u64,
    max_datagram: usize,
}

/// Parses `100MiB`, `5M`, `2000`, … into bytes.
pub fn parse_rate(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match unit {
        "" | "B" => 1.0,
        "k" | "K" | "kB" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(n * factor).filter(|r| r.is_finite() && *r > 0.0)
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut corpus = None;
    let mut target = None;
    let mut rate = 10.0 * 1024.0 * 1024.0;
    let mut duration = Duration::from_secs(10);
    let mut contexts = 0;
    let mut max_datagram = 8192;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("blast: {flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--corpus" => corpus = Some(PathBuf::from(value()?)),
            "--udp" => {
                let addr = value()?;
                let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("blast: {e}"))?;
                s.connect(addr)
                    .map_err(|e| format!("blast: cannot reach {addr}: {e}"))?;
                target = Some(Target::Udp(s));
            }
            "--uds" => {
                let path = value()?;
                let s = UnixDatagram::unbound().map_err(|e| format!("blast: {e}"))?;
                s.connect(path)
                    .map_err(|e| format!("blast: cannot reach {path}: {e}"))?;
                target = Some(Target::Uds(s));
            }
            "--uds-stream" => {
                let path = value()?;
                let s = UnixStream::connect(path)
                    .map_err(|e| format!("blast: cannot reach {path}: {e}"))?;
                target = Some(Target::Stream(s));
            }
            "--rate" => {
                let v = value()?;
                rate = parse_rate(v)
                    .ok_or_else(|| format!("blast: --rate `{v}` is not a rate such as 100MiB"))?;
            }
            "--duration" => {
                let v = value()?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| {
                        format!("blast: --duration `{v}` is not a positive number of seconds")
                    })?;
                duration = Duration::from_secs_f64(s);
            }
            "--contexts" => {
                let v = value()?;
                contexts = v
                    .parse()
                    .map_err(|_| format!("blast: --contexts `{v}` is not a count"))?;
            }
            "--max-datagram" => {
                let v = value()?;
                max_datagram =
                    v.parse().ok().filter(|n| *n >= 64).ok_or_else(|| {
                        format!("blast: --max-datagram `{v}` must be at least 64")
                    })?;
            }
            other => return Err(format!("blast: unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(Args {
        corpus: corpus.ok_or_else(|| format!("blast: --corpus is required\n{USAGE}"))?,
        target: target.ok_or_else(|| {
            format!("blast: one of --udp, --uds, --uds-stream is required\n{USAGE}")
        })?,
        rate,
        duration,
        contexts,
        max_datagram,
    })
}

/// The datagrams of a corpus file (zstd-compressed or not).
pub fn read_corpus(path: &PathBuf) -> Result<Vec<Vec<u8>>, String> {
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        raw = zstd::stream::decode_all(raw.as_slice())
            .map_err(|e| format!("cannot decompress {}: {e}", path.display()))?;
    }
    let mut datagrams = Vec::new();
    let mut rest = raw.as_slice();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| format!("{}: truncated record header", path.display()))?;
        let len = u32::from_le_bytes(*len) as usize;
        let datagram = tail
            .get(..len)
            .ok_or_else(|| format!("{}: record longer than the file", path.display()))?;
        datagrams.push(datagram.to_vec());
        rest = tail.get(len..).unwrap_or_default();
    }
    if datagrams.is_empty() {
        return Err(format!("{}: no datagrams", path.display()));
    }
    Ok(datagrams)
}

/// The context of a message line, roughly as an aggregator keys it: name, type and tags (the
/// values and the other fields left out).
fn context_key(line: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let mut fields = line.split(|&b| b == b'|');
    let name = fields.next().unwrap_or_default();
    let name = name.split(|&b| b == b':').next().unwrap_or_default();
    // Timings and histograms aggregate alike.
    let kind = match fields.next().unwrap_or_default() {
        b"ms" => b"h".as_slice(),
        kind => kind,
    };
    let tags = fields
        .find(|f| f.first() == Some(&b'#'))
        .unwrap_or_default();
    (name, kind, tags)
}

/// How `--contexts` rewrites the corpus: the tag's value `k` for the i-th message sent is
/// `(i / messages + i mod messages) mod values`, so each pass over the corpus shifts which message gets
/// which value and, after `values` passes, every (message, value) pair has been sent.
struct Cardinality {
    /// Messages in the corpus.
    messages: u64,
    /// Values of the tag: ceil(N / contexts in the corpus).
    values: u64,
}

impl Cardinality {
    fn new(corpus: &[Vec<u8>], target: u64) -> Cardinality {
        let mut keys = std::collections::HashSet::new();
        let mut messages = 0u64;
        for line in corpus.iter().flat_map(|d| d.split(|&b| b == b'\n')) {
            if !line.is_empty() {
                messages += 1;
                keys.insert(context_key(line));
            }
        }
        let own = (keys.len() as u64).max(1);
        Cardinality {
            messages: messages.max(1),
            values: target.div_ceil(own).max(1),
        }
    }

    fn value(&self, i: u64) -> u64 {
        (i / self.messages + i % self.messages) % self.values
    }
}

/// Appends `dogpipe_blast:<k>` to every message of `datagram` (see [`Cardinality`]) and packs
/// the result into datagrams of at most `max` bytes.
fn with_context_tags(
    datagram: &[u8],
    cardinality: &Cardinality,
    counter: &mut u64,
    max: usize,
    out: &mut Vec<Vec<u8>>,
) {
    let mut current = Vec::with_capacity(max);
    for line in datagram.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut message = line.to_vec();
        let sep: &[u8] = if line.windows(2).any(|w| w == b"|#") {
            b","
        } else {
            b"|#"
        };
        message.extend_from_slice(sep);
        message
            .extend_from_slice(format!("dogpipe_blast:{}", cardinality.value(*counter)).as_bytes());
        *counter += 1;
        if !current.is_empty() && current.len() + 1 + message.len() > max {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(b'\n');
        }
        current.extend_from_slice(&message);
    }
    if !current.is_empty() {
        out.push(current);
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut args = parse_args(args)?;
    let corpus = read_corpus(&args.corpus).map_err(|e| format!("blast: {e}"))?;
    let cardinality = Cardinality::new(&corpus, args.contexts);
    let start = Instant::now();
    let (mut bytes, mut datagrams, mut messages, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut counter = 0u64;
    let mut rewritten = Vec::new();
    let mut last_report = start;
    'outer: for source in corpus.iter().cycle() {
        rewritten.clear();
        if args.contexts > 0 {
            with_context_tags(
                source,
                &cardinality,
                &mut counter,
                args.max_datagram,
                &mut rewritten,
            );
        }
        let batch: Vec<&[u8]> = if args.contexts > 0 {
            rewritten.iter().map(Vec::as_slice).collect()
        } else {
            vec![source.as_slice()]
        };
        for datagram in batch {
            loop {
                let elapsed = start.elapsed();
                if elapsed >= args.duration {
                    break 'outer;
                }
                if (bytes as f64) < args.rate * elapsed.as_secs_f64() + args.max_datagram as f64 {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            match args.target.send(datagram) {
                Ok(()) => {
                    bytes += datagram.len() as u64;
                    datagrams += 1;
                    messages += datagram
                        .split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .count() as u64;
                }
                Err(_) => errors += 1,
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                let secs = start.elapsed().as_secs_f64();
                eprint!(
                    "\rblast: {secs:6.1} s  {:8.1} MiB ({:7.1} MiB/s)  {datagrams} datagrams  {messages} messages ({:.0} msg/s)  {errors} errors   ",
                    bytes as f64 / 1048576.0,
                    bytes as f64 / 1048576.0 / secs,
                    messages as f64 / secs
                );
            }
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    eprintln!();
    println!(
        "{{\"seconds\":{secs:.3},\"bytes\":{bytes},\"datagrams\":{datagrams},\"messages\":{messages},\"errors\":{errors},\"bytes_per_second\":{:.0},\"messages_per_second\":{:.0}}}",
        bytes as f64 / secs,
        messages as f64 / secs
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_with_units() {
        assert_eq!(parse_rate("2000"), Some(2000.0));
        assert_eq!(parse_rate("5M"), Some(5e6));
        assert_eq!(parse_rate("100MiB"), Some(104_857_600.0));
        assert_eq!(parse_rate("1.5k"), Some(1500.0));
        assert_eq!(parse_rate("fast"), None);
        assert_eq!(parse_rate("0"), None);
        assert_eq!(parse_rate("10XB"), None);
    }

    #[test]
    fn context_tags_are_appended_and_datagrams_stay_under_the_limit() {
        let mut out = Vec::new();
        let mut counter = 0;
        let two = Cardinality {
            messages: 2,
            values: 2,
        };
        with_context_tags(b"a:1|c|#x\nb:2|g\n", &two, &mut counter, 8192, &mut out);
        assert_eq!(
            out,
            [b"a:1|c|#x,dogpipe_blast:0\nb:2|g|#dogpipe_blast:1".to_vec()]
        );
        let mut out = Vec::new();
        let ten = Cardinality {
            messages: 3,
            values: 10,
        };
        with_context_tags(b"a:1|c\nb:2|c\nc:3|c", &ten, &mut counter, 30, &mut out);
        assert!(
            out.len() >= 2 && out.iter().all(|d| d.len() <= 30),
            "{out:?}"
        );
    }

    #[test]
    fn the_stream_carries_about_the_asked_number_of_contexts() {
        // 3 contexts in 4 messages (two share one); ask for 10 → ceil(10 / 3) = 4 values.
        let corpus = vec![
            b"a:1|c|#x:1\na:2|c|#x:1".to_vec(),
            b"b:1|g\nc:1|d|@0.5".to_vec(),
        ];
        let c = Cardinality::new(&corpus, 10);
        assert_eq!((c.messages, c.values), (4, 4));
        // Over `values` passes every (message, value) pair is sent exactly once, whatever the
        // sizes.
        for (messages, values) in [(4, 4), (3, 4), (5, 3), (9238, 84), (1, 7), (7, 1)] {
            let c = Cardinality { messages, values };
            let mut pairs = std::collections::HashSet::new();
            for i in 0..messages * values {
                pairs.insert((i % messages, c.value(i)));
            }
            assert_eq!(
                pairs.len() as u64,
                messages * values,
                "{messages} × {values}"
            );
        }
        // So the stream holds the corpus's contexts times the values: 3 × 4 = 12 ≈ 10.
        let mut contexts = std::collections::HashSet::new();
        let lines: Vec<&[u8]> = corpus
            .iter()
            .flat_map(|d| d.split(|&b| b == b'\n'))
            .collect();
        for i in 0..c.messages * c.values {
            let line = lines[(i % c.messages) as usize];
            contexts.insert((context_key(line), c.value(i)));
        }
        assert_eq!(contexts.len(), 12);
    }
}
