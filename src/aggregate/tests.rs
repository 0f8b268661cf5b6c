//! The aggregation vectors of the spec (§9.5 A1–A12, and the metric vectors that concern
//! aggregation), through the library.
//!
//! Test code only: the parent module declares this file under `#[cfg(test)]`, and the
//! attribute below repeats it, so nothing here (its `unwrap`s included) is built into dogpipe.

#![cfg(test)]

use super::*;
use crate::{ParserConfig, parse_packet};

const T0: i64 = 1_700_000_000;

fn agg() -> Aggregator {
    Aggregator::new(AggregatorConfig::default().with_hostname("agent-host"))
}

fn feed(a: &mut Aggregator, packet: &str, now: i64) {
    for m in parse_packet(packet.as_bytes(), &ParserConfig::default()) {
        a.insert(&m.unwrap(), now);
    }
}

fn text(t: &[u8]) -> String {
    String::from_utf8(t.to_vec()).unwrap()
}

/// `name kind host [tags] (ts,value)…` per series, sorted.
fn series(f: &Flush) -> Vec<String> {
    let mut out: Vec<String> = f
        .series
        .iter()
        .map(|s| {
            let tags: Vec<String> = s.tags.iter().map(text).collect();
            let points: Vec<String> = s
                .points
                .iter()
                .map(|p| format!("({},{})", p.timestamp - T0, p.value))
                .collect();
            assert_eq!(s.interval, 10);
            format!(
                "{} {} {} [{}] {}",
                text(&s.name),
                s.kind.as_str(),
                text(&s.host),
                tags.join(","),
                points.join("")
            )
        })
        .collect();
    out.sort();
    out
}

fn one(packet: &str) -> Flush {
    let mut a = agg();
    feed(&mut a, packet, T0 + 1);
    a.flush(T0 + 10)
}

#[test]
fn a1_counters_flush_as_a_rate_over_ten_seconds() {
    assert_eq!(
        series(&one("c:1|c\nc:1|c\nc:1|c")),
        ["c rate agent-host [] (0,0.3)"]
    );
}

#[test]
fn a2_a_counter_sample_rate_scales_the_value() {
    assert_eq!(series(&one("c:1|c|@0.5")), ["c rate agent-host [] (0,0.2)"]);
}

#[test]
fn a3_a_gauge_keeps_its_last_value() {
    assert_eq!(
        series(&one("g:1|g\ng:5|g")),
        ["g gauge agent-host [] (0,5)"]
    );
}

#[test]
fn a4_a_set_counts_distinct_members() {
    assert_eq!(
        series(&one("s:a|s\ns:b|s\ns:a|s")),
        ["s gauge agent-host [] (0,2)"]
    );
}

#[test]
fn a5_histograms_emit_the_default_aggregates_and_the_95th_percentile() {
    assert_eq!(
        series(&one("h:1|h\nh:2|h\nh:3|h\nh:4|h")),
        [
            "h.95percentile gauge agent-host [] (0,4)",
            "h.avg gauge agent-host [] (0,2.5)",
            "h.count rate agent-host [] (0,0.4)",
            "h.max gauge agent-host [] (0,4)",
            "h.median gauge agent-host [] (0,2)",
        ]
    );
}

#[test]
fn a6_a_histogram_sample_rate_weights_the_count() {
    assert_eq!(
        series(&one("h:10|h|@0.5")),
        [
            "h.95percentile gauge agent-host [] (0,10)",
            "h.avg gauge agent-host [] (0,10)",
            "h.count rate agent-host [] (0,0.2)",
            "h.max gauge agent-host [] (0,10)",
            "h.median gauge agent-host [] (0,10)",
        ]
    );
}

#[test]
fn timings_aggregate_like_histograms_with_configured_aggregates() {
    let config = AggregatorConfig::default()
        .with_histogram_aggregates(vec![HistogramAggregate::Min, HistogramAggregate::Sum])
        .with_histogram_percentiles(&[0.5, 0.99])
        .unwrap();
    let mut a = Aggregator::new(config);
    feed(&mut a, "t:1|ms\nt:3|ms", T0);
    assert_eq!(
        series(&a.flush(T0 + 10)),
        [
            "t.50percentile gauge  [] (0,1)",
            "t.99percentile gauge  [] (0,3)",
            "t.min gauge  [] (0,1)",
            "t.sum gauge  [] (0,4)",
        ]
    );
}

fn sketch_point(f: &Flush) -> &SketchPoint {
    assert_eq!(f.sketches.len(), 1);
    assert_eq!(f.sketches[0].points.len(), 1);
    &f.sketches[0].points[0]
}

#[test]
fn a7_a_distribution_value_becomes_one_sketch_bin() {
    let f = one("d:1|d");
    let p = sketch_point(&f);
    assert_eq!(
        (p.timestamp, p.count, p.min, p.max, p.avg, p.sum),
        (T0, 1, 1.0, 1.0, 1.0, 1.0)
    );
    assert_eq!(
        (p.keys.as_slice(), p.counts.as_slice()),
        (&[1338][..], &[1][..])
    );
    assert!(f.series.is_empty());
}

#[test]
fn a8_a_distribution_sample_rate_weights_count_sum_and_bin() {
    let f = one("d:1|d|@0.5");
    let p = sketch_point(&f);
    assert_eq!(
        (p.count, p.sum, p.min, p.max, p.avg),
        (2, 2.0, 1.0, 1.0, 1.0)
    );
    assert_eq!(
        (p.keys.as_slice(), p.counts.as_slice()),
        (&[1338][..], &[2][..])
    );
}

#[test]
fn a9_tiny_distribution_values_collapse_into_key_zero() {
    let f = one("d:-2.5|d\nd:0|d\nd:1e-10|d");
    let p = sketch_point(&f);
    assert_eq!(
        (p.keys.as_slice(), p.counts.as_slice()),
        (&[-1397, 0][..], &[1, 2][..])
    );
    assert_eq!(p.count, 3);
}

#[test]
fn a10_an_idle_counter_emits_zeros_for_300_seconds_then_expires() {
    let mut a = agg();
    feed(&mut a, "c:1|c", T0);
    let mut points = Vec::new();
    let mut t = T0 + 15;
    while t <= T0 + 400 {
        let f = a.flush(t);
        for s in &f.series {
            points.extend(s.points.iter().map(|p| (p.timestamp - T0, p.value)));
        }
        if t == T0 + 315 {
            assert_eq!(
                a.stats().live_contexts,
                1,
                "kept until 320 s after the last sample"
            );
        }
        t += 15;
    }
    assert_eq!(points[0], (0, 0.1));
    assert!(points[1..].iter().all(|&(_, v)| v == 0.0));
    let last_zero = points.last().unwrap().0;
    assert!(
        (280..300).contains(&last_zero),
        "zeros stop at 300 s: {points:?}"
    );
    assert_eq!(a.stats().live_contexts, 0);
    assert_eq!(a.stats().contexts_expired, 1);
}

#[test]
fn idle_counters_get_zeros_in_buckets_other_metrics_opened() {
    let mut a = agg();
    feed(&mut a, "c:1|c", T0);
    feed(&mut a, "g:1|g", T0 + 10);
    assert_eq!(
        series(&a.flush(T0 + 20)),
        [
            "c rate agent-host [] (0,0.1)(10,0)",
            "g gauge agent-host [] (10,1)"
        ]
    );
}

#[test]
fn gauges_expire_after_the_context_expiry() {
    let mut a = agg();
    feed(&mut a, "g:1|g", T0);
    a.flush(T0 + 10);
    a.flush(T0 + 20);
    assert_eq!(a.stats().live_contexts, 1);
    a.flush(T0 + 21);
    assert_eq!(a.stats().live_contexts, 0);
    assert_eq!(
        a.stats().interned_strings,
        0,
        "interned strings are released too"
    );
}

#[test]
fn a11_tag_order_and_duplicates_do_not_split_a_context() {
    assert_eq!(
        series(&one("x:1|g|#a,b\nx:2|g|#b,a,a")),
        ["x gauge agent-host [a,b] (0,2)"]
    );
}

#[test]
fn a12_different_hosts_are_different_contexts() {
    assert_eq!(
        series(&one("x:1|g|#host:h1\nx:1|g|#host:h2")),
        ["x gauge h1 [] (0,1)", "x gauge h2 [] (0,1)"]
    );
}

#[test]
fn only_closed_buckets_are_flushed_and_open_ones_on_shutdown() {
    let mut a = agg();
    feed(&mut a, "g:1|g", T0 + 5);
    feed(&mut a, "g:2|g", T0 + 12);
    assert_eq!(series(&a.flush(T0 + 15)), ["g gauge agent-host [] (0,1)"]);
    assert_eq!(series(&a.flush(T0 + 19)), Vec::<String>::new());
    assert_eq!(
        series(&a.flush_all(T0 + 19)),
        ["g gauge agent-host [] (10,2)"]
    );
}

#[test]
fn several_closed_buckets_become_points_of_one_series() {
    let mut a = agg();
    feed(&mut a, "g:1|g", T0);
    feed(&mut a, "g:2|g", T0 + 10);
    assert_eq!(
        series(&a.flush(T0 + 20)),
        ["g gauge agent-host [] (0,1)(10,2)"]
    );
}

#[test]
fn m35_a_timestamped_gauge_passes_through() {
    let mut a = agg();
    feed(&mut a, "m:1234|g|#onetag|T1657100430", T0);
    assert_eq!(
        series(&a.flush(T0)),
        [format!(
            "m gauge agent-host [onetag] ({},1234)",
            1657100430 - T0
        )]
    );
}

#[test]
fn m42_a_timestamped_counter_is_a_rate_ignoring_the_sample_rate() {
    let mut a = agg();
    feed(&mut a, "m:4|c|@0.25|T1657100430", T0);
    assert_eq!(
        series(&a.flush(T0)),
        [format!("m rate agent-host [] ({},0.4)", 1657100430 - T0)]
    );
}

#[test]
fn m43_timestamped_histograms_are_dropped_and_counted() {
    let mut a = agg();
    feed(
        &mut a,
        "m:4|h|T1657100430\nm:1:2|d|T1657100430\nm:x|s|T1657100430",
        T0,
    );
    assert!(series(&a.flush(T0 + 100)).is_empty());
    assert_eq!(a.stats().unsupported_timestamped, 4);
    assert_eq!(a.stats().live_contexts, 0);
}

#[test]
fn m44_m45_non_finite_values_are_dropped_and_counted() {
    let mut a = agg();
    feed(
        &mut a,
        "m:NaN|g\nd:-Inf|d\nc:1:inf:2|c\nt:nan|g|T1657100430",
        T0,
    );
    let f = a.flush(T0 + 10);
    assert_eq!(series(&f), ["c rate agent-host [] (0,0.3)"]);
    assert!(f.sketches.is_empty());
    assert_eq!(a.stats().non_finite, 4);
    assert_eq!(
        a.stats().live_contexts,
        1,
        "no context for values that were all dropped"
    );
}

#[test]
fn m46_out_of_range_values_never_reach_the_aggregator() {
    let mut a = agg();
    for m in parse_packet(b"m:1e400|g", &ParserConfig::default()) {
        assert!(m.is_err());
    }
    assert!(a.flush(T0).series.is_empty());
}

#[test]
fn m47_signed_gauges_are_absolute_values() {
    assert_eq!(
        series(&one("m:+4|g\nm:-10|g")),
        ["m gauge agent-host [] (0,-10)"]
    );
}

#[test]
fn m48_negative_counts_subtract() {
    assert_eq!(
        series(&one("m:-3|c\nm:1|c")),
        ["m rate agent-host [] (0,-0.2)"]
    );
}

#[test]
fn m54_a_host_tag_sets_the_host_and_is_removed() {
    assert_eq!(
        series(&one("m:1|c|#host:myhost,env:a")),
        ["m rate myhost [env:a] (0,0.1)"]
    );
}

#[test]
fn m55_an_empty_host_tag_makes_a_hostless_series() {
    assert_eq!(
        series(&one("m:1|c|#env:a,host:")),
        ["m rate  [env:a] (0,0.1)"]
    );
}

#[test]
fn m56_the_entity_id_tag_is_extracted() {
    let mut a = agg();
    feed(&mut a, "m:1|c|#dd.internal.entity_id:pod-uid,env:a", T0);
    assert_eq!(
        a.enricher().last_extracted.0.as_deref(),
        Some(&b"pod-uid"[..])
    );
    assert_eq!(
        series(&a.flush(T0 + 10)),
        ["m rate agent-host [env:a] (0,0.1)"]
    );
}

#[test]
fn m57_the_cardinality_tag_is_extracted_once() {
    let mut a = agg();
    feed(&mut a, "m:1|c|#dd.internal.card:none", T0);
    assert_eq!(a.enricher().last_extracted.1.as_deref(), Some(&b"none"[..]));
    feed(
        &mut a,
        "n:1|c|#dd.internal.card:none,dd.internal.card:high",
        T0,
    );
    assert_eq!(
        series(&a.flush(T0 + 10)),
        [
            "m rate agent-host [] (0,0.1)",
            "n rate agent-host [dd.internal.card:high] (0,0.1)"
        ]
    );
}

#[test]
fn nonsense_sample_rates_count_as_one_and_are_counted() {
    let f = one(
        "c:1|c|@0\nc:1|c|@-2\nc:1|c|@7\nh:5|h|@0\ng:1|g|@0\nc:1|c|@nan\nc:1|c|@1e-300\nd:1|d|@1e-300",
    );
    assert_eq!(
        series(&f)
            .into_iter()
            .filter(|s| !s.starts_with("h."))
            .collect::<Vec<_>>(),
        [
            "c rate agent-host [] (0,0.5)",
            "g gauge agent-host [] (0,1)"
        ]
    );
    assert_eq!(f.sketches[0].points[0].count, 1);
    let mut a = agg();
    feed(
        &mut a,
        "c:1|c|@0\nc:1|c|@-2\nc:1|c|@7\nh:5|h|@0\ng:1|g|@0\nc:1|c|@nan\nc:1|c|@1e-300\nd:1|d|@1e-300",
        T0,
    );
    assert_eq!(
        a.stats().rate_clamped,
        7,
        "the gauge's rate is irrelevant, not clamped"
    );
}

#[test]
fn a_gauge_and_a_counter_with_one_name_are_two_contexts() {
    assert_eq!(
        series(&one("m:1|c\nm:5|g")),
        [
            "m gauge agent-host [] (0,5)",
            "m rate agent-host [] (0,0.1)"
        ]
    );
}

#[test]
fn namespace_blocklist_extra_tags_and_mapper_apply_in_the_agent_order() {
    let profiles = MapperProfile::parse_json(
        r#"[{"name":"p","prefix":"job.","mappings":[{"match":"job.*.runs","name":"job.runs","tags":{"job":"$1"}}]}]"#,
    )
    .unwrap();
    let config = AggregatorConfig::default()
        .with_namespace("app")
        .with_blocklist(vec![b"app.secret".to_vec()], false)
        .with_extra_tags(vec![b"env:prod".to_vec(), b"host:not-a-host".to_vec()])
        .with_mapper_profiles(profiles);
    let mut a = Aggregator::new(config);
    feed(
        &mut a,
        "job.build.runs:1|c\nsecret:1|c\njvm.heap:1|g\njob.build.runs:1|c|#job:build",
        T0,
    );
    assert_eq!(
        series(&a.flush(T0 + 10)),
        [
            "app.job.runs rate  [env:prod,host:not-a-host,job:build] (0,0.2)",
            "jvm.heap gauge  [env:prod,host:not-a-host] (0,1)",
        ]
    );
    assert_eq!(a.stats().blocklisted, 1);
}

#[test]
fn blocklist_prefix_mode_matches_prefixes() {
    let config = AggregatorConfig::default().with_blocklist(vec![b"debug.".to_vec()], true);
    let mut a = Aggregator::new(config);
    feed(&mut a, "debug.x:1:2|c\nkeep:1|c", T0);
    assert_eq!(series(&a.flush(T0 + 10)), ["keep rate  [] (0,0.1)"]);
    assert_eq!(a.stats().blocklisted, 2);
}

#[test]
fn events_and_service_checks_pass_through_enriched() {
    let config = AggregatorConfig::default()
        .with_hostname("agent-host")
        .with_extra_tags(vec![b"env:prod".to_vec()]);
    let mut a = Aggregator::new(config);
    feed(
        &mut a,
        "_e{5,4}:title|text|#host:h1,b,a,b\n_e{1,1}:t|x|h:h2|d:1700000001|#host:h1\n_sc|db|2|#z,dd.internal.entity_id:x\n_sc|db|0|h:web|d:5",
        T0 + 3,
    );
    let f = a.flush(T0 + 10);
    let e: Vec<(String, i64, Vec<String>)> = f
        .events
        .iter()
        .map(|e| {
            (
                text(&e.host),
                e.timestamp,
                e.tags.iter().map(text).collect(),
            )
        })
        .collect();
    assert_eq!(
        e,
        [
            (
                "h1".into(),
                T0 + 3,
                vec!["a".into(), "b".into(), "env:prod".into()]
            ),
            ("h2".into(), 1700000001, vec!["env:prod".into()]),
        ]
    );
    let sc: Vec<(String, i64, Vec<String>)> = f
        .service_checks
        .iter()
        .map(|s| {
            (
                text(&s.host),
                s.timestamp,
                s.tags.iter().map(text).collect(),
            )
        })
        .collect();
    assert_eq!(
        sc,
        [
            (
                "agent-host".into(),
                T0 + 3,
                vec!["env:prod".into(), "z".into()]
            ),
            ("web".into(), 5, vec!["env:prod".into()]),
        ]
    );
    assert!(a.flush(T0 + 20).events.is_empty(), "sent once");
}

#[test]
fn the_context_limit_drops_new_contexts_and_keeps_existing_ones() {
    let mut a = Aggregator::new(AggregatorConfig::default().with_context_limit(2));
    feed(&mut a, "a:1|c\nb:1|c\nc:1|c\nc:2:3|c\na:1|c", T0);
    assert_eq!(
        series(&a.flush(T0 + 10)),
        ["a rate  [] (0,0.2)", "b rate  [] (0,0.1)"]
    );
    let s = a.stats();
    assert_eq!((s.context_limit, s.live_contexts, s.samples), (3, 2, 3));
}
