//! Parsing through the borrowed API allocates nothing.
//!
//! A counting global allocator wraps the system one and counts allocations made by the current
//! thread while counting is switched on (other threads of the test harness are not counted). This
//! file holds a single test so nothing else runs in this binary at the same time.

use dogpipe::{Message, ParserConfig, parse_packet};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator can be called while thread locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to `System`, which upholds the `GlobalAlloc`
// contract; counting touches only const-initialised thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the number of allocations it made on this thread.
fn allocations_in<T>(f: impl FnOnce() -> T) -> (T, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let out = f();
    COUNTING.with(|on| on.set(false));
    (out, ALLOCATIONS.with(Cell::get))
}

/// A packet like a busy client sends: metric lines with 5 to 15 tags, packed values, sets, a
/// distribution with a timestamp, an event (no `\n` escape, so its text is borrowed), a service
/// check, client origin fields, CRLF endings, an empty line and a bad line.
fn realistic_packet() -> Vec<u8> {
    let mut packet = Vec::new();
    let tags = [
        "env:prod",
        "service:checkout",
        "version:1.42.0",
        "region:eu-west-1",
        "az:eu-west-1b",
        "host:web-17",
        "team:payments",
        "kube_namespace:shop",
        "pod_name:checkout-7d9f8b6c5d-x2x9q",
        "container_name:app",
        "image_tag:2024-11-28",
        "runtime:go1.22",
        "shard:3",
        "tier:frontend",
        "owner:alice",
    ];
    for i in 0..40 {
        let n = 5 + i % 11; // 5..=15 tags
        let tag_list = tags[..n].join(",");
        let line = match i % 6 {
            0 => format!("http.requests:{i}|c|@0.5|#{tag_list}"),
            1 => format!("cpu.load:0.{i}|g|#{tag_list}|c:ci-4d2f9a,in-1234"),
            2 => format!("latency:12.5:13:14.25:{i}|ms|#{tag_list}"),
            3 => format!("payload.size:1e3:2e3:{i}|h|@0.25|#{tag_list}"),
            4 => format!("users.online:user-{i}:session|s|#{tag_list}"),
            _ => format!(
                "queue.depth:{i}:{i}.5|d|T1700000000|#{tag_list}|e:it-false,cn-app|card:high"
            ),
        };
        packet.extend_from_slice(line.as_bytes());
        packet.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
    }
    packet.extend_from_slice(
        b"_e{21,36}:An exception occurred|Cannot parse CSV file from 10.0.0.17|t:warning|p:low|h:web-17|k:csv|s:app|d:1700000000|#err_type:bad_file,env:prod\n",
    );
    packet.extend_from_slice(
        b"_sc|Redis connection|2|#env:dev,service:cache|h:web-17|d:1700000000|m:Redis connection timed out after 10s\n\n",
    );
    packet.extend_from_slice(b"a line that is not a metric\n");
    packet
}

/// Reads every field of every message; returns a checksum and the number of accepted messages.
fn consume_packet(packet: &[u8], config: &ParserConfig) -> (f64, usize, usize) {
    let mut sum = 0.0;
    let mut bytes = 0usize;
    let mut ok = 0;
    for result in parse_packet(packet, config) {
        let Ok(message) = result else {
            bytes += 1;
            continue;
        };
        ok += 1;
        match message {
            Message::Metric(m) => {
                bytes += m.name().len();
                sum += m.values().sum::<f64>() * m.sample_rate();
                bytes += m.set_member().map_or(0, <[u8]>::len);
                for tag in m.tags() {
                    bytes += tag.len();
                }
                sum += m.timestamp().unwrap_or(0) as f64;
                let o = m.origin();
                bytes += o.container_id().map_or(0, <[u8]>::len);
                bytes += o.external_container_name().map_or(0, <[u8]>::len);
                sum += o.cgroup_inode().unwrap_or(0) as f64;
                bytes += usize::from(o.cardinality().is_some());
            }
            Message::Event(e) => {
                bytes += e.title().len() + e.text().len();
                bytes += e.hostname().map_or(0, <[u8]>::len);
                bytes += e.aggregation_key().map_or(0, <[u8]>::len);
                bytes += e.source_type_name().map_or(0, <[u8]>::len);
                bytes += e.priority().as_str().len() + e.alert_type().as_str().len();
                sum += e.timestamp().unwrap_or(0) as f64;
                for tag in e.tags() {
                    bytes += tag.len();
                }
                bytes += usize::from(e.origin().is_empty());
            }
            Message::ServiceCheck(sc) => {
                bytes += sc.name().len() + usize::from(sc.status().as_u8());
                bytes += sc.hostname().map_or(0, <[u8]>::len);
                bytes += sc.message().map_or(0, <[u8]>::len);
                sum += sc.timestamp().unwrap_or(0) as f64;
                for tag in sc.tags() {
                    bytes += tag.len();
                }
                bytes += usize::from(sc.origin().is_empty());
            }
        }
    }
    (sum, bytes, ok)
}

#[test]
fn parsing_a_realistic_packet_through_the_borrowed_api_allocates_nothing() {
    let packet = realistic_packet();
    let config = ParserConfig::default().with_origin_detection_client(true);

    // Warm up once outside the counter (lazy statics, first-use initialisation).
    let expected = consume_packet(&packet, &config);
    assert_eq!(expected.2, 42, "40 metrics, an event and a service check");

    let (result, allocations) = allocations_in(|| consume_packet(&packet, &config));
    assert_eq!(result.1, expected.1);
    assert_eq!(result.2, expected.2);
    assert_eq!(allocations, 0, "parsing the packet allocated");

    // The counter works: an owned copy of a message allocates.
    let (owned, allocations) = allocations_in(|| {
        parse_packet(&packet, &config)
            .flatten()
            .map(|m| m.to_owned_message())
            .collect::<Vec<_>>()
    });
    assert_eq!(owned.len(), 42);
    assert!(
        allocations >= 42,
        "counter saw only {allocations} allocations"
    );
}
