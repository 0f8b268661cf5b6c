//! The tag iterator's cost per tag on synthetic fields of 22 tags, their lengths drawn from
//! `lo..=hi` bytes: `cargo run --release --example tag_iter -- 3 150` (random lengths, the
//! corpora's shape) or `-- 20 20` (fixed, where the window branch is predictable). Prints the
//! fastest of 200 passes.
use dogpipe::{Message, ParserConfig, parse_message};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let lo: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let hi: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(150);
    let mut seed = 12345u64;
    let mut rnd = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut lines = Vec::new();
    for _ in 0..2000 {
        let mut l = b"name:1|c|#".to_vec();
        for t in 0..22 {
            if t > 0 {
                l.push(b',');
            }
            let len = lo + rnd(hi - lo + 1);
            l.extend(std::iter::repeat_n(b'a', len));
        }
        lines.push(l);
    }
    let config = ParserConfig::default();
    let metrics: Vec<_> = lines
        .iter()
        .filter_map(|l| match parse_message(l, &config) {
            Ok(Message::Metric(m)) => Some(m),
            _ => None,
        })
        .collect();
    let tags: usize = metrics.iter().map(|m| m.tag_count()).sum();
    let mut best = f64::MAX;
    for _ in 0..200 {
        let start = Instant::now();
        let mut acc = 0;
        for m in &metrics {
            for t in black_box(m).tags() {
                acc += black_box(t).len();
            }
        }
        black_box(acc);
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!("tags {lo}..={hi}: {:.2} ns/tag", best * 1e9 / tags as f64);
}
