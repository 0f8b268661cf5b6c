//! Arbitrary bytes as one packet, default config and with client origin detection: every line
//! yields a message or a typed error, every accessor of an accepted message can be read, and
//! the packet parses exactly as its lines do one by one (`parse_packet` finds a metric's end
//! while parsing it).
#![no_main]

use dogpipe::{ParserConfig, lines, parse_message, parse_packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|packet: &[u8]| {
    for config in [
        ParserConfig::default(),
        ParserConfig::default().with_origin_detection_client(true),
    ] {
        let mut results = 0;
        let mut acc = 0u64;
        for result in parse_packet(packet, &config) {
            results += 1;
            match result {
                Ok(message) => acc = acc.wrapping_add(dogpipe_fuzz::consume(&message)),
                Err(e) => acc = acc.wrapping_add(e.to_string().len() as u64 + e.offset() as u64),
            }
        }
        assert_eq!(results, lines(packet).count());
        // Compared as printed: a NaN value is not equal to itself.
        let whole: Vec<_> = parse_packet(packet, &config).collect();
        let by_line: Vec<_> = lines(packet).map(|l| parse_message(l, &config)).collect();
        assert_eq!(
            format!("{whole:?}"),
            format!("{by_line:?}"),
            "the packet parses differently from its lines"
        );
        std::hint::black_box(acc);
    }
});
