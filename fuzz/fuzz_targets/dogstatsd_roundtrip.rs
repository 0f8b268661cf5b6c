//! Parse a message, render it again from its fields, parse the rendering: the fields must be equal.
#![no_main]

use dogpipe::{ParserConfig, parse_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, line)) = data.split_first() else {
        return;
    };
    let config = ParserConfig::default()
        .with_origin_detection_client(flags & 1 != 0)
        .with_timestamps(flags & 2 != 0);
    // One message: the framer's job is the packet target's.
    if line.contains(&b'\n') {
        return;
    }
    let Ok(first) = parse_message(line, &config) else {
        return;
    };
    let rendered = dogpipe_fuzz::render(&first);
    let second = match parse_message(&rendered, &config) {
        Ok(second) => second,
        Err(e) => panic!(
            "rendering of {:?} is rejected: {e}\nrendered: {:?}",
            String::from_utf8_lossy(line),
            String::from_utf8_lossy(&rendered)
        ),
    };
    assert_eq!(
        dogpipe_fuzz::fields(&first),
        dogpipe_fuzz::fields(&second),
        "rendered: {:?}",
        String::from_utf8_lossy(&rendered)
    );
});
