//! The CRI parser and the decoder in CRI mode: no panic, borrowed fields, and the same messages
//! whatever the read sizes.
#![no_main]

use dogpipe::{Decoder, DecoderConfig, LogFormat, OwnedLogMessage, parse_cri};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fn decode(data: &[u8], split: usize, max: usize) -> (Vec<OwnedLogMessage>, u64) {
    let config = DecoderConfig::default()
        .with_format(LogFormat::Cri)
        .with_max_message_bytes(max);
    let mut decoder = Decoder::new(config);
    let now = Instant::now();
    let mut out = Vec::new();
    let (a, b) = data.split_at(split.min(data.len()));
    decoder.push(a, now, |m| out.push(m.to_owned()));
    decoder.push(b, now, |m| out.push(m.to_owned()));
    decoder.finish(now, |m| out.push(m.to_owned()));
    (out, decoder.settled_offset())
}

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        if let Ok(cri) = parse_cri(line) {
            assert!(line.ends_with(cri.content()));
            assert!(line.starts_with(cri.time()));
        }
    }
    let max = 1 + data.first().copied().unwrap_or(0) as usize;
    let whole = decode(data, data.len(), max);
    let split = decode(data, data.len() / 2, max);
    assert_eq!(whole, split);
    let mut last = 0;
    for m in &whole.0 {
        assert!(m.end_offset >= last && m.end_offset <= data.len() as u64);
        last = m.end_offset;
        assert!(!m.content.is_empty());
    }
    assert!(whole.1 <= data.len() as u64);
});
