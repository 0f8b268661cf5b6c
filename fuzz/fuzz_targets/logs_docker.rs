//! The Docker json-file parser and the decoder in Docker mode: no panic, UTF-8 content, and the
//! same messages whatever the read sizes.
#![no_main]

use dogpipe::{Decoder, DecoderConfig, LogFormat, OwnedLogMessage, parse_docker};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fn decode(data: &[u8], split: usize) -> Vec<OwnedLogMessage> {
    let mut decoder = Decoder::new(DecoderConfig::default().with_format(LogFormat::Docker));
    let now = Instant::now();
    let mut out = Vec::new();
    let (a, b) = data.split_at(split.min(data.len()));
    decoder.push(a, now, |m| out.push(m.to_owned()));
    decoder.push(b, now, |m| out.push(m.to_owned()));
    decoder.finish(now, |m| out.push(m.to_owned()));
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = parse_docker(data) {
        // Go's decoder always yields valid UTF-8.
        assert!(std::str::from_utf8(line.content()).is_ok());
        assert!(std::str::from_utf8(line.time()).is_ok());
        assert!(!line.is_partial() || !line.content().is_empty());
    }
    assert_eq!(decode(data, data.len()), decode(data, data.len() / 3));
});
