//! Arbitrary text as a per-pod logs config file and as container include/exclude lists: an
//! error or a value, never a panic or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(configs) = dogpipe::PodLogConfigs::parse("fuzz.yaml", text) {
        std::hint::black_box(configs.len());
    }
    let entries: Vec<&str> = text.split_whitespace().collect();
    let (include, exclude) = entries.split_at(entries.len() / 2);
    if let Ok(filter) = dogpipe::ContainerFilter::parse(include, exclude) {
        std::hint::black_box(filter.is_excluded("app", "default", Some("redis:7")));
        std::hint::black_box(filter.ignored().len());
    }
});
