//! The decoder's steady state allocates nothing per message for CRI and Docker lines, escaped or
//! not, nor for UTF-16 lines (a counting allocator proves it).

use dogpipe::{Decoder, DecoderConfig, Encoding, LogFormat};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates to the system allocator; only counts calls on the current thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations while decoding `input` a second time in 4 KiB reads (the first pass sizes the
/// buffers), and the number of messages.
fn steady_state_allocations(format: LogFormat, input: &[u8]) -> (u64, u64) {
    steady_state_allocations_with(DecoderConfig::default().with_format(format), input)
}

fn steady_state_allocations_with(config: DecoderConfig, input: &[u8]) -> (u64, u64) {
    let mut decoder = Decoder::new(config);
    let now = Instant::now();
    let mut messages = 0u64;
    for read in input.chunks(4096) {
        decoder.push(read, now, |_| {});
    }
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    for read in input.chunks(4096) {
        decoder.push(read, now, |m| {
            messages += u64::from(!m.content().is_empty());
        });
    }
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.with(Cell::get), messages)
}

#[test]
fn decoding_cri_and_docker_lines_allocates_nothing_per_message() {
    let mut cri = String::new();
    let mut docker = String::new();
    let mut escaped = String::new();
    for i in 0..2000 {
        let stream = if i % 7 == 0 { "stderr" } else { "stdout" };
        cri.push_str(&format!(
            "2024-05-01T12:00:00.{i:09}Z {stream} F  request {i} done in {}ms \n",
            i % 97
        ));
        if i % 10 == 0 {
            cri.push_str(&format!("2024-05-01T12:00:00Z {stream} P partial {i} "));
            cri.push_str(&format!("\n2024-05-01T12:00:00Z {stream} F and the rest\n"));
        }
        docker.push_str(&format!(
            "{{\"log\":\"request {i} é done\\n\",\"stream\":\"{stream}\",\"time\":\"2024-05-01T12:00:00.{i}Z\"}}\n"
        ));
        escaped.push_str(&format!(
            "{{\"log\":\"\\\"q\\\"\\u0009{i} \\u003cb\\u003e\\ud83d\\ude00\\n\",\"stream\":\"{stream}\",\"time\":\"t\"}}\n"
        ));
    }
    assert_eq!(
        steady_state_allocations(LogFormat::Cri, cri.as_bytes()),
        (0, 2200)
    );
    assert_eq!(
        steady_state_allocations(LogFormat::Docker, docker.as_bytes()),
        (0, 2000)
    );
    assert_eq!(
        steady_state_allocations(LogFormat::Docker, escaped.as_bytes()),
        (0, 2000)
    );
}

#[test]
fn decoding_utf16_lines_allocates_nothing_per_message() {
    let mut text = String::new();
    for i in 0..2000 {
        text.push_str(&format!(
            " request {i} é done in {}ms \u{1F600}\r\n",
            i % 97
        ));
    }
    for (encoding, big) in [(Encoding::Utf16Le, false), (Encoding::Utf16Be, true)] {
        let input: Vec<u8> = text
            .encode_utf16()
            .flat_map(|u| {
                if big {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect();
        let config = DecoderConfig::default().with_encoding(encoding);
        assert_eq!(
            steady_state_allocations_with(config, &input),
            (0, 2000),
            "{encoding:?}"
        );
    }
}
