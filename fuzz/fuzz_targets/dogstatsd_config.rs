//! The first bytes pick an arbitrary parser config (small limits included); the rest is a packet.
//! Every accepted message must respect every limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (config, packet) = dogpipe_fuzz::config_from(data);
    for message in dogpipe::parse_packet(packet, &config).flatten() {
        dogpipe_fuzz::assert_limits(&message, &config);
        std::hint::black_box(dogpipe_fuzz::consume(&message));
    }
});
