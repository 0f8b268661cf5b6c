//! The partial-line merger: arbitrary contents cut into arbitrary CRI `P`/`F` chunks merge back
//! into the contents (trimmed), with the end offset of each `F` record, whatever the read sizes.
#![no_main]

use dogpipe::{Decoder, DecoderConfig, LogFormat};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    // Bytes < 4 end a chunk: 0 → P, 1 → F, 2 and 3 → F after a space-only chunk.
    let mut input = Vec::new();
    let mut expected: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut current = Vec::new();
    let mut chunk = Vec::new();
    let mut body = data.iter().copied().filter(|b| *b != b'\n' && *b != b'\r');
    let reads = 1 + data.first().copied().unwrap_or(0) as usize;
    for b in body.by_ref() {
        if b >= 4 {
            chunk.push(b);
            continue;
        }
        let tag = if b == 0 { "P" } else { "F" };
        input.extend_from_slice(format!("2024-05-01T12:00:00Z stdout {tag} ").as_bytes());
        input.extend_from_slice(&chunk);
        input.push(b'\n');
        current.extend_from_slice(&chunk);
        chunk.clear();
        if tag == "F" {
            expected.push((std::mem::take(&mut current), input.len() as u64));
        }
    }
    let mut decoder = Decoder::new(DecoderConfig::default().with_format(LogFormat::Cri));
    let now = Instant::now();
    let mut out = Vec::new();
    for read in input.chunks(reads) {
        decoder.push(read, now, |m| out.push((m.content().to_vec(), m.end_offset())));
    }
    // Compare with the model on lines that trimming leaves alone.
    let simple = |c: &[u8]| {
        !c.is_empty() && c.iter().all(|b| b.is_ascii_graphic())
    };
    if expected.iter().all(|(c, _)| simple(c)) {
        assert_eq!(out, expected);
    } else {
        assert!(out.len() <= expected.len());
    }
    assert_eq!(decoder.settled_offset(), expected.last().map_or(decoder.settled_offset(), |e| e.1));
});
