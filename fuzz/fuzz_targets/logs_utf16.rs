//! UTF-16 log files: arbitrary bytes, either byte order, any maximum size and read size, never
//! panic; reads give the messages of one whole push; offsets stay on code unit boundaries within
//! the input; raw lines come out as valid UTF-8.
#![no_main]

use dogpipe::{Decoder, DecoderConfig, Encoding, LogFormat};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let [mode, max, read, input @ ..] = data else {
        return;
    };
    let encoding = if mode & 1 == 0 {
        Encoding::Utf16Le
    } else {
        Encoding::Utf16Be
    };
    let format = if mode & 2 == 0 {
        LogFormat::Raw
    } else {
        LogFormat::Auto
    };
    let config = DecoderConfig::default()
        .with_encoding(encoding)
        .with_format(format)
        .with_max_message_bytes(usize::from(*max));
    let now = Instant::now();
    let decode = |reads: usize| {
        let mut decoder = Decoder::new(config.clone());
        let mut out = Vec::new();
        for chunk in input.chunks(reads.max(1)) {
            decoder.push(chunk, now, |m| {
                out.push((m.content().to_vec(), m.end_offset(), m.truncated()))
            });
        }
        decoder.finish(now, |m| {
            out.push((m.content().to_vec(), m.end_offset(), m.truncated()))
        });
        (out, decoder.read_offset(), decoder.pending_bytes())
    };
    let whole = decode(input.len());
    assert_eq!(decode(usize::from(*read)), whole);
    let (messages, read_offset, pending) = whole;
    assert_eq!(read_offset % 2, 0);
    assert_eq!(read_offset + pending as u64, input.len() as u64);
    for (content, end, _) in &messages {
        assert!(*end % 2 == 0 && *end <= read_offset);
        if format == LogFormat::Raw {
            assert!(std::str::from_utf8(content).is_ok());
        }
    }
});
