//! Memory of the aggregator, measured with a counting global allocator: a warm context costs no
//! allocation, a context costs a known number of bytes, and a flood of new contexts stays bounded.

use dogpipe::{Aggregator, AggregatorConfig, ParserConfig, ShardedAggregator, parse_packet};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: none needed — this allocator only forwards to `System` and counts (no `unsafe` code of
// ours touches the memory).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The measurements read process-wide counters (the sharded engine allocates on its own
/// threads), so they run one after another in this file's only test: with several tests, the
/// harness's allocations for one test's result landed in another's measurement.
#[test]
fn memory() {
    aggregating_known_contexts_allocates_nothing();
    a_warm_sharded_engine_allocates_nothing_per_sample();
    a_context_costs_a_documented_number_of_bytes_and_repeated_tags_are_stored_once();
    a_second_open_bucket_costs_one_more_slot();
    a_flood_of_unique_contexts_stays_within_the_limit();
    the_known_lines_cache_costs_a_bounded_amount_whatever_the_contexts();
}

const PACKET: &[u8] = b"req.count:1|c|#env:prod,service:web,host:web-1\n\
req.count:2:3|c|@0.5|#service:web,env:prod,host:web-1\n\
mem.used:512|g|#env:prod\n\
latency:12|ms|#env:prod,route:/a\n\
size:100:200|h|@0.25|#env:prod\n\
payload:1.5:2.5:1e6|d|#env:prod,region:eu\n\
users:alice|s|#env:prod\n\
users:bob|s|#env:prod\n\
tagless:1|c";

fn insert_all(agg: &mut Aggregator, now: i64) {
    for m in parse_packet(PACKET, &ParserConfig::default()) {
        agg.insert(&m.unwrap(), now);
    }
}

fn aggregating_known_contexts_allocates_nothing() {
    let mut agg = Aggregator::new(AggregatorConfig::default().with_hostname("agent"));
    let t0 = 1_700_000_000;
    // Warm up over two buckets and flushes, so every slot buffer has grown once. (A histogram
    // keeps every sample of its bucket, as the Agent does: a bucket with more samples than any
    // before it grows its buffer.)
    for i in 0..600 {
        insert_all(&mut agg, t0 + i % 10);
    }
    drop(agg.flush(t0 + 10));
    for i in 0..600 {
        insert_all(&mut agg, t0 + 10 + i % 10);
    }
    drop(agg.flush(t0 + 20));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 0..600 {
        insert_all(&mut agg, t0 + 20 + i % 10);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "600 packets of known contexts allocated {allocations} times"
    );
    assert_eq!(agg.stats().live_contexts, 7);
}

fn a_warm_sharded_engine_allocates_nothing_per_sample() {
    let mut agg = ShardedAggregator::new(AggregatorConfig::default(), 2);
    let t0 = 1_700_000_000;
    let packets: Vec<_> = parse_packet(PACKET, &ParserConfig::default())
        .map(|m| m.unwrap())
        .collect();
    // Warm up over two buckets, so that every context's per-bucket storage has reached the size
    // this volume needs and has been recycled by a flush.
    for bucket in 0..2 {
        for _ in 0..5_000 {
            for m in &packets {
                agg.insert(m, t0 + 10 * bucket);
            }
        }
        drop(agg.flush(t0 + 10 * (bucket + 1)));
    }
    let _ = agg.stats(); // waits for the shards to catch up
    // `stats()` itself makes a reply channel; measure that cost to set it apart.
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let _ = agg.stats();
    let stats_cost = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..5_000 {
        for m in &packets {
            agg.insert(m, t0 + 20);
        }
    }
    let s = agg.stats(); // waits until the shards have applied every batch
    // (Saturating: the measured `stats()` may itself have been the first wait on a channel.)
    let allocations = (ALLOCATIONS.load(Ordering::Relaxed) - before).saturating_sub(stats_cost);
    // Batches come from a pool allocated up front and are recycled; contexts are known. The
    // only allocation left is crossbeam's: the first time a thread waits on a given channel
    // (a full shard queue, the empty recycle queue), that channel keeps a slot for it. There
    // are shards + 1 such channels, so the bound does not grow with the number of messages.
    let channels = 2 + 1;
    assert!(
        allocations <= channels,
        "65 000 messages allocated {allocations} times"
    );
    assert_eq!(s.live_contexts, 7);
}

/// Live heap bytes per context, for `n` contexts named `service.request.count.<i>` with the tags
/// `tags(i)`.
fn bytes_per_context(n: usize, tags: impl Fn(usize) -> String) -> f64 {
    // The store alone: the known-lines cache is a bounded cost of its own (see below).
    let config = AggregatorConfig::default()
        .with_hostname("agent")
        .with_known_lines(0);
    let mut agg = Aggregator::new(config);
    let mut line = Vec::new();
    // Warm the buffers with one context first.
    let warm = format!("warm:1|c|#{}", tags(n + 1));
    agg.insert(
        &parse_packet(warm.as_bytes(), &ParserConfig::default())
            .next()
            .unwrap()
            .unwrap(),
        0,
    );
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for i in 0..n {
        line.clear();
        line.extend_from_slice(format!("service.request.count.{i:08}:1|c|#{}", tags(i)).as_bytes());
        let m = parse_packet(&line, &ParserConfig::default())
            .next()
            .unwrap()
            .unwrap();
        agg.insert(&m, 0);
    }
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    assert_eq!(agg.stats().live_contexts as usize, n + 1);
    (after - before) as f64 / n as f64
}

fn a_context_costs_a_documented_number_of_bytes_and_repeated_tags_are_stored_once() {
    const SHARED: &str = "env:production,service:checkout,region:eu-west-1,team:payments";
    let n = 20_000;
    let no_tags = bytes_per_context(n, |_| String::new());
    let shared_set = bytes_per_context(n, |_| SHARED.to_string());
    let own_set = bytes_per_context(n, |i| format!("{SHARED},id:{i:08}"));
    eprintln!(
        "bytes per context: {no_tags:.0} without tags, {shared_set:.0} sharing a 4-tag set, \
         {own_set:.0} with its own 5-tag set (4 tags shared with other sets)"
    );
    // Documented (crate docs, BENCHMARKS.md): a counter context with a 30-byte name costs about
    // 200 B; contexts with the same tags share one interned tag set, so tags add nothing; a
    // context with a tag set of its own adds the set (32 B + 8 B per tag) and the strings only it
    // holds, while each tag string is still stored once per shard.
    assert!(no_tags < 220.0, "{no_tags}");
    assert!(
        shared_set - no_tags < 8.0,
        "a shared tag set costs {}",
        shared_set - no_tags
    );
    let tag_bytes = SHARED.len() - 3 + "id:00000000".len();
    let own_extra = own_set - no_tags;
    assert!(
        own_extra < 80.0 + tag_bytes as f64 + 5.0 * 20.0 + 100.0,
        "an own tag set costs {own_extra} B"
    );
    // High cardinality: 20 tags shared, one that differs per context. Each set is held as its
    // difference from the name's first set, so the 16 more shared tags add nothing per context
    // (a flat set would hold 8 bytes for each: 128 B more).
    let wide: Vec<String> = (0..20).map(|t| format!("shared{t:02}:value")).collect();
    let wide = wide.join(",");
    let wide_set = bytes_per_context(n, |i| format!("{wide},id:{i:08}"));
    eprintln!("bytes per context: {wide_set:.0} with its own 21-tag set (20 shared)");
    assert!(
        wide_set - own_set < 32.0,
        "a 21-tag set costs {} B more than a 5-tag one",
        wide_set - own_set
    );
}

fn a_second_open_bucket_costs_one_more_slot() {
    let n = 20_000;
    let config = AggregatorConfig::default()
        .with_hostname("agent")
        .with_known_lines(0);
    let mut agg = Aggregator::new(config);
    let mut line = Vec::new();
    let mut feed = |agg: &mut Aggregator, now: i64| {
        for i in 0..n {
            line.clear();
            line.extend_from_slice(
                format!("service.request.count.{i:08}:1|c|#env:prod").as_bytes(),
            );
            let m = parse_packet(&line, &ParserConfig::default())
                .next()
                .unwrap()
                .unwrap();
            agg.insert(&m, now);
        }
    };
    feed(&mut agg, 0);
    let one_bucket = LIVE_BYTES.load(Ordering::Relaxed);
    // The same contexts in the next 10 s bucket, before any flush: two open buckets each.
    feed(&mut agg, 10);
    let two_buckets = LIVE_BYTES.load(Ordering::Relaxed);
    let per_context = (two_buckets - one_bucket) as f64 / n as f64;
    eprintln!("a second open bucket costs {per_context:.0} B per context");
    // A slot is 32 B; its vector grows from one slot to two, not to four (which cost 96 B more).
    assert!(per_context <= 48.0, "a second bucket costs {per_context} B");
    assert_eq!(agg.stats().live_contexts as usize, n);
}

fn a_flood_of_unique_contexts_stays_within_the_limit() {
    let limit = 1_000;
    let mut agg = Aggregator::new(AggregatorConfig::default().with_context_limit(limit));
    let mut line = Vec::new();
    let mut fill = |agg: &mut Aggregator, from: usize, to: usize| {
        for i in from..to {
            line.clear();
            line.extend_from_slice(format!("flood.{i}:1|g|#id:{i},env:prod").as_bytes());
            let m = parse_packet(&line, &ParserConfig::default())
                .next()
                .unwrap()
                .unwrap();
            agg.insert(&m, 0);
        }
    };
    fill(&mut agg, 0, 2 * limit);
    let at_limit = LIVE_BYTES.load(Ordering::Relaxed);
    fill(&mut agg, 2 * limit, 100 * limit);
    let grown = LIVE_BYTES.load(Ordering::Relaxed) - at_limit;
    let s = agg.stats();
    assert_eq!(s.live_contexts as usize, limit);
    assert_eq!(s.context_limit as usize, 99 * limit);
    assert!(grown < 4096, "memory grew by {grown} B under the flood");
}

/// Live heap bytes after `n` distinct counter lines go through an aggregator with `config`.
fn live_bytes_after(config: AggregatorConfig, n: usize) -> isize {
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut agg = Aggregator::new(config);
    for i in 0..n {
        let line = format!("cache.bound.{i:08}:1|c|#env:prod,service:checkout,id:{i:08}");
        let m = parse_packet(line.as_bytes(), &ParserConfig::default())
            .next()
            .unwrap()
            .unwrap();
        agg.insert(&m, 0);
    }
    let live = LIVE_BYTES.load(Ordering::Relaxed) - before;
    drop(agg);
    live
}

fn the_known_lines_cache_costs_a_bounded_amount_whatever_the_contexts() {
    let n = 20_000;
    let without = live_bytes_after(AggregatorConfig::default().with_known_lines(0), n);
    let lines = 1024;
    let with = live_bytes_after(AggregatorConfig::default().with_known_lines(lines), n);
    // Each remembered line: its name and tags (≈ 60 B here), a slot (≈ 100 B), and the handles
    // it holds (no copies: the context's own interned strings).
    let line_bytes = "cache.bound.00000000env:prod,service:checkout,id:00000000".len();
    let bound = (lines * (line_bytes + 160)) as isize;
    eprintln!(
        "known lines: {} B for {lines} lines over {n} contexts",
        with - without
    );
    assert!(with - without <= bound, "{} > {bound}", with - without);
    assert!(with > without, "the cache holds something");
}
