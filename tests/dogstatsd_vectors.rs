//! The parsing vectors of spec §9.1–§9.4, plus edge cases, through the public API.
//!
//! Every vector is checked twice: parsed alone, and inside a packet between other messages with
//! CRLF endings (through the framer), where it must give the same result.

use dogpipe::{
    AlertType, Cardinality, Message, MessageKind, MetricType, ParseErrorKind, ParserConfig,
    Priority, ServiceCheckStatus, parse_message, parse_packet,
};

fn default() -> ParserConfig {
    ParserConfig::default()
}

/// Parses `line` alone and framed; asserts both agree, returns the result.
fn parse<'b>(line: &'b [u8], config: &ParserConfig) -> Result<Message<'b>, ParseErrorKind> {
    let alone = parse_message(line, config).map_err(|e| e.kind());
    let mut packet = b"before:1|c\r\n".to_vec();
    packet.extend_from_slice(line);
    packet.extend_from_slice(b"\r\nafter:2|g\n");
    let framed: Vec<_> = parse_packet(&packet, config)
        .map(|r| r.map(|m| m.to_owned_message()).map_err(|e| e.kind()))
        .collect();
    assert_eq!(
        framed.len(),
        3,
        "framing of {:?}",
        String::from_utf8_lossy(line)
    );
    match (&alone, &framed[1]) {
        // Debug, not ==, so that NaN values compare equal.
        (Ok(a), Ok(b)) => assert_eq!(
            format!("{a:?}"),
            format!("{:?}", b.message()),
            "framed differs"
        ),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("alone {a:?} but framed {b:?}"),
    }
    alone
}

fn metric(line: &[u8]) -> dogpipe::Metric<'_> {
    metric_with(line, &default())
}

fn metric_with<'b>(line: &'b [u8], config: &ParserConfig) -> dogpipe::Metric<'b> {
    match parse(line, config) {
        Ok(Message::Metric(m)) => m,
        other => panic!(
            "{:?}: expected a metric, got {other:?}",
            String::from_utf8_lossy(line)
        ),
    }
}

fn rejected(line: &[u8]) -> ParseErrorKind {
    match parse(line, &default()) {
        Err(kind) => kind,
        Ok(m) => panic!(
            "{:?} should be rejected, got {m:?}",
            String::from_utf8_lossy(line)
        ),
    }
}

fn values(m: &dogpipe::Metric<'_>) -> Vec<f64> {
    m.values().collect()
}

fn tags<'b>(t: impl Iterator<Item = &'b [u8]>) -> Vec<&'b str> {
    t.map(|t| std::str::from_utf8(t).unwrap()).collect()
}

#[test]
fn m1_to_m8_basic_metrics() {
    let m = metric(b"page.views:1|c");
    assert_eq!(
        (
            m.name(),
            m.metric_type(),
            values(&m),
            m.sample_rate(),
            m.tag_count()
        ),
        (&b"page.views"[..], MetricType::Count, vec![1.0], 1.0, 0)
    );
    let m = metric(b"fuel.level:0.5|g");
    assert_eq!(
        (m.metric_type(), values(&m)),
        (MetricType::Gauge, vec![0.5])
    );
    let m = metric(b"song.length:240|h|@0.5");
    assert_eq!(
        (m.metric_type(), values(&m), m.sample_rate()),
        (MetricType::Histogram, vec![240.0], 0.5)
    );
    let m = metric(b"users.uniques:1234|s");
    assert_eq!(
        (m.metric_type(), m.set_member(), m.value_count()),
        (MetricType::Set, Some(&b"1234"[..]), 1)
    );
    assert_eq!(values(&m), Vec::<f64>::new());
    let m = metric(b"users.online:1|c|#country:china");
    assert_eq!(tags(m.tags()), ["country:china"]);
    let a = metric(b"users.online:1|c|#country:china|@0.5");
    let b = metric(b"users.online:1|c|@0.5|#country:china");
    assert_eq!(
        (a.sample_rate(), tags(a.tags())),
        (b.sample_rate(), tags(b.tags()))
    );
    let m = metric(b"page.views:1:2:32|d");
    assert_eq!(
        (m.metric_type(), values(&m), m.value_count()),
        (MetricType::Distribution, vec![1.0, 2.0, 32.0], 3)
    );
    let m = metric(b"daemon:abc:def|s");
    assert_eq!(m.set_member(), Some(&b"abc:def"[..]));
}

#[test]
fn m9_to_m11_empty_multi_value_items_are_skipped() {
    assert_eq!(values(&metric(b"m:1::2|c")), [1.0, 2.0]);
    assert_eq!(values(&metric(b"m:1:|c")), [1.0]);
    let m = metric(b"m::1|c");
    assert_eq!((m.name(), values(&m)), (&b"m"[..], vec![1.0]));
    assert_eq!(rejected(b"m::|c"), ParseErrorKind::EmptyValue);
}

#[test]
fn m12_to_m22_rejections() {
    assert_eq!(rejected(b"m:|c"), ParseErrorKind::EmptyValue);
    assert_eq!(rejected(b":1|c"), ParseErrorKind::EmptyName);
    assert_eq!(rejected(b"m:1"), ParseErrorKind::MissingType);
    assert_eq!(rejected(b"m:1|"), ParseErrorKind::UnknownType);
    assert_eq!(rejected(b"m1|c"), ParseErrorKind::MissingValue);
    assert_eq!(rejected(b"m:abc|g"), ParseErrorKind::InvalidValue);
    assert_eq!(rejected(b"m:1:abc|g"), ParseErrorKind::InvalidValue);
    assert_eq!(rejected(b"m:1|x"), ParseErrorKind::UnknownType);
    assert_eq!(rejected(b"m:1|C"), ParseErrorKind::UnknownType);
    assert_eq!(rejected(b"m:1|c "), ParseErrorKind::UnknownType);
    assert_eq!(rejected(b"m: 1|c"), ParseErrorKind::InvalidValue);
}

#[test]
fn errors_carry_the_offset_of_the_problem() {
    let e = |l: &[u8]| parse_message(l, &default()).unwrap_err();
    assert_eq!(e(b"m:1:abc|g").offset(), 4);
    assert_eq!(e(b"m:1|c|@x").offset(), 6);
    assert_eq!(e(b"m:1|zz").offset(), 4);
    assert_eq!(e(b"m:1|zz").message_kind(), MessageKind::Metric);
    assert_eq!(e(b"_sc|n|9").offset(), 6);
}

#[test]
fn m23_m24_names_are_not_trimmed_and_ms_is_a_timing() {
    assert_eq!(metric(b" m:1|c").name(), b" m");
    let m = metric(b"m:21|ms");
    assert_eq!(
        (m.metric_type(), values(&m)),
        (MetricType::Timing, vec![21.0])
    );
}

#[test]
fn m25_to_m28_sample_rates() {
    assert_eq!(rejected(b"m:1|g|@abc"), ParseErrorKind::InvalidSampleRate);
    assert_eq!(rejected(b"m:1|g|@"), ParseErrorKind::InvalidSampleRate);
    assert_eq!(metric(b"m:1|g|@0.21").sample_rate(), 0.21);
    assert_eq!(metric(b"m:1|c|@0.5|@0.25").sample_rate(), 0.25);
    // No range check at parse time, as in the Agent.
    assert_eq!(metric(b"m:1|c|@0").sample_rate(), 0.0);
    assert_eq!(metric(b"m:1|c|@-2").sample_rate(), -2.0);
}

#[test]
fn m29_to_m33_tags_and_unknown_fields() {
    assert_eq!(tags(metric(b"m:1|g|#").tags()), Vec::<&str>::new());
    assert_eq!(tags(metric(b"m:1|g|#a,,b").tags()), ["a", "", "b"]);
    assert_eq!(tags(metric(b"m:1|g|#a|#b").tags()), ["b"]);
    assert_eq!(tags(metric(b"m:1|g|#a:b,a:b").tags()), ["a:b", "a:b"]);
    let m = metric(b"daemon:666|g|m:test");
    assert_eq!((m.name(), values(&m)), (&b"daemon"[..], vec![666.0]));
    assert_eq!(tags(metric(b"m:1|g||#a|").tags()), ["a"]);
}

#[test]
fn m34_to_m36_timestamps_and_ignored_origin_fields() {
    let m = metric(b"m:2.39|d|T1657100540|@1.0|#env:dev|c:2a25f7|f:x|f2:y");
    assert_eq!(
        (values(&m), m.timestamp(), m.sample_rate(), tags(m.tags())),
        (vec![2.39], Some(1_657_100_540), 1.0, vec!["env:dev"])
    );
    assert!(m.origin().is_empty());
    let m = metric(b"m:1234|g|#onetag|T1657100430");
    assert_eq!(
        (m.timestamp(), tags(m.tags())),
        (Some(1_657_100_430), vec!["onetag"])
    );
    let off = default().with_timestamps(false);
    assert_eq!(
        metric_with(b"m:1234|g|#onetag|T1657100430", &off).timestamp(),
        None
    );
    assert_eq!(metric_with(b"m:1|g|TABCD", &off).timestamp(), None);
}

#[test]
fn m37_to_m41_timestamp_validation() {
    for bad in [
        &b"m:1|g|TABCD"[..],
        b"m:1|g|T",
        b"m:1|g|T0",
        b"m:1|g|T-102348932",
        b"m:1|g|T99999999999999999999",
    ] {
        assert_eq!(rejected(bad), ParseErrorKind::InvalidTimestamp);
    }
    assert_eq!(
        metric(b"m:1|g|T+1657100430").timestamp(),
        Some(1_657_100_430)
    );
    // M42/M43 parse; their aggregation is the aggregator's.
    let m = metric(b"m:4|c|@0.25|T1657100430");
    assert_eq!(
        (m.sample_rate(), m.timestamp()),
        (0.25, Some(1_657_100_430))
    );
    assert_eq!(
        metric(b"m:4|h|T1657100430").metric_type(),
        MetricType::Histogram
    );
}

#[test]
fn m44_to_m48_special_and_signed_values() {
    assert!(values(&metric(b"m:NaN|g"))[0].is_nan());
    assert_eq!(values(&metric(b"m:-Inf|d")), [f64::NEG_INFINITY]);
    assert_eq!(rejected(b"m:1e400|g"), ParseErrorKind::ValueOutOfRange);
    assert_eq!(rejected(b"m:1:1e400|g"), ParseErrorKind::ValueOutOfRange);
    assert_eq!(values(&metric(b"m:+4|g")), [4.0]);
    assert_eq!(values(&metric(b"m:-10|g")), [-10.0]);
    assert_eq!(values(&metric(b"m:-3|c")), [-3.0]);
}

#[test]
fn m49_to_m53_client_origin_fields() {
    assert!(metric(b"m:1|c|c:abc123").origin().is_empty());
    let on = default().with_origin_detection_client(true);
    let m = metric_with(b"m:1|c|c:abc123", &on);
    assert_eq!(m.origin().container_id(), Some(&b"abc123"[..]));
    let m = metric_with(b"m:1|c|c:ci-abc,in-42", &on);
    assert_eq!(
        (m.origin().container_id(), m.origin().cgroup_inode()),
        (Some(&b"abc"[..]), Some(42))
    );
    assert_eq!(m.origin().local_data(), Some(&b"ci-abc,in-42"[..]));
    let m = metric_with(b"m:1|c|e:it-false,cn-redis,pu-810f", &on);
    let o = m.origin();
    assert_eq!(
        (
            o.external_init(),
            o.external_container_name(),
            o.external_pod_uid()
        ),
        (Some(false), Some(&b"redis"[..]), Some(&b"810f"[..]))
    );
    let m = metric_with(b"m:1|c|card:high", &on);
    assert_eq!(m.origin().cardinality(), Some(Cardinality::High));
    // Malformed origin fields never reject the message.
    let m = metric_with(b"m:1|c|c:in-notanumber|card:bogus", &on);
    assert_eq!(
        (m.origin().cgroup_inode(), m.origin().cardinality()),
        (None, None)
    );
}

#[test]
fn m54_to_m57_special_tags_are_kept_verbatim_at_parse() {
    // Extraction of host:, dd.internal.* is enrichment, after parsing.
    assert_eq!(
        tags(metric(b"m:1|c|#host:myhost,env:a").tags()),
        ["host:myhost", "env:a"]
    );
    assert_eq!(
        tags(metric(b"m:1|c|#env:a,host:").tags()),
        ["env:a", "host:"]
    );
}

#[test]
fn m58_unicode_is_kept_verbatim() {
    let m = metric("♬†øU:666|g|#intitulé:T0µ".as_bytes());
    assert_eq!(m.name(), "♬†øU".as_bytes());
    assert_eq!(tags(m.tags()), ["intitulé:T0µ"]);
}

#[test]
fn m59_hexadecimal_floats_are_a_documented_divergence() {
    // Go's ParseFloat accepts 0x1p3 (= 8); dogpipe rejects it (see the crate docs).
    assert_eq!(rejected(b"m:0x1p3|g"), ParseErrorKind::InvalidValue);
}

#[test]
fn go_float_forms_are_accepted() {
    assert_eq!(values(&metric(b"m:1_000.5|g")), [1000.5]);
    assert_eq!(
        values(&metric(b"m:.5:5.:1e3:1E-3|g")),
        [0.5, 5.0, 1000.0, 0.001]
    );
    assert_eq!(
        values(&metric(b"m:Infinity:+inf|g")),
        [f64::INFINITY, f64::INFINITY]
    );
    assert_eq!(rejected(b"m:-nan|g"), ParseErrorKind::InvalidValue);
    assert_eq!(rejected(b"m:1_|g"), ParseErrorKind::InvalidValue);
}

#[test]
fn p1_to_p4_packet_framing() {
    let count = |p: &[u8]| parse_packet(p, &default()).filter(Result::is_ok).count();
    assert_eq!(count(b"a:1|c\nb:2|c\n"), 2);
    assert_eq!(count(b"a:1|c\n\nb:2|c"), 2);
    assert_eq!(count(b"a:1|c\r\nb:2|c\r\n"), 2);
    let results: Vec<_> = parse_packet(b"a:1|c\nbad\nb:2|c", &default()).collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
}

fn event(line: &[u8]) -> dogpipe::Event<'_> {
    match parse(line, &default()) {
        Ok(Message::Event(e)) => e,
        other => panic!(
            "{:?}: expected an event, got {other:?}",
            String::from_utf8_lossy(line)
        ),
    }
}

#[test]
fn e1_to_e3_events() {
    let e = event(b"_e{5,4}:title|text");
    assert_eq!(
        (
            &*e.title(),
            &*e.text(),
            e.priority(),
            e.alert_type(),
            e.timestamp()
        ),
        (
            &b"title"[..],
            &b"text"[..],
            Priority::Normal,
            AlertType::Info,
            None
        )
    );
    let e = event(b"_e{21,36}:An exception occurred|Cannot parse CSV file from 10.0.0.17|t:warning|#err_type:bad_file");
    assert_eq!(&*e.title(), b"An exception occurred");
    assert_eq!(&*e.text(), b"Cannot parse CSV file from 10.0.0.17");
    assert_eq!(
        (e.alert_type(), tags(e.tags())),
        (AlertType::Warning, vec!["err_type:bad_file"])
    );
    let e = event(b"_e{5,9}:title|line1\\nl2");
    assert_eq!(&*e.text(), b"line1\nl2");
    assert_eq!(e.text_raw(), b"line1\\nl2");
}

#[test]
fn e4_to_e8_event_rejections() {
    assert_eq!(rejected(b"_e{0,4}:|text"), ParseErrorKind::EmptyEventTitle);
    assert_eq!(event(b"_e{5,0}:title|").text_raw(), b"");
    assert_eq!(
        rejected(b"_e{5,4}:title|tex"),
        ParseErrorKind::EventTooShort
    );
    assert_eq!(
        rejected(b"_e{a,4}:title|text"),
        ParseErrorKind::InvalidEventHeader
    );
    assert_eq!(
        rejected(b"_e{5,4}title|text"),
        ParseErrorKind::InvalidEventHeader
    );
    assert_eq!(
        rejected(b"_e{-1,4}:title|text"),
        ParseErrorKind::InvalidEventHeader
    );
    assert_eq!(
        rejected(b"_e{}:title|text"),
        ParseErrorKind::InvalidEventHeader
    );
    assert_eq!(
        rejected(b"_e{99999999999999999999,1}:t|x"),
        ParseErrorKind::InvalidEventHeader
    );
    assert_eq!(
        rejected(b"_e{9223372036854775807,9223372036854775807}:t|x"),
        ParseErrorKind::EventTooShort
    );
}

#[test]
fn event_header_must_end_with_a_brace_a_documented_divergence() {
    // The Agent accepts this header (it never looks at the last byte); dogpipe rejects it.
    assert_eq!(
        rejected(b"_e{5,4x:title|text"),
        ParseErrorKind::InvalidEventHeader
    );
}

#[test]
fn e9_to_e14_event_fields() {
    let e = event(b"_e{5,4}:title|text|p:low|d:1700000000|h:myhost|k:agg|s:src");
    assert_eq!(
        (
            e.priority(),
            e.timestamp(),
            e.hostname(),
            e.aggregation_key(),
            e.source_type_name()
        ),
        (
            Priority::Low,
            Some(1_700_000_000),
            Some(&b"myhost"[..]),
            Some(&b"agg"[..]),
            Some(&b"src"[..])
        )
    );
    assert_eq!(
        event(b"_e{5,4}:title|text|p:urgent").priority(),
        Priority::Normal
    );
    assert_eq!(
        event(b"_e{5,4}:title|text|t:fatal").alert_type(),
        AlertType::Info
    );
    assert_eq!(event(b"_e{5,4}:title|text|d:soon").timestamp(), None);
    assert_eq!(
        tags(event(b"_e{5,4}:title|text|#host:h1,env:a").tags()),
        ["host:h1", "env:a"]
    );
    let e = event(b"_e{5,4}:title|text|h:h2|#host:h1");
    assert_eq!(e.hostname(), Some(&b"h2"[..]));
    let e = event(b"_e{10,5}:ab|cd|efgh|ij|kl");
    assert_eq!(
        (e.title_raw(), e.text_raw()),
        (&b"ab|cd|efgh"[..], &b"ij|kl"[..])
    );
    let on = default().with_origin_detection_client(true);
    let Ok(Message::Event(e)) = parse(b"_e{1,1}:a|b|c:ci-x|card:low", &on) else {
        panic!()
    };
    assert_eq!(
        (e.origin().container_id(), e.origin().cardinality()),
        (Some(&b"x"[..]), Some(Cardinality::Low))
    );
}

fn service_check(line: &[u8]) -> dogpipe::ServiceCheck<'_> {
    match parse(line, &default()) {
        Ok(Message::ServiceCheck(sc)) => sc,
        other => panic!(
            "{:?}: expected a service check, got {other:?}",
            String::from_utf8_lossy(line)
        ),
    }
}

#[test]
fn s1_to_s9_service_checks() {
    let sc =
        service_check(b"_sc|Redis connection|2|#env:dev|m:Redis connection timed out after 10s");
    assert_eq!(
        (sc.name(), sc.status(), tags(sc.tags()), sc.message()),
        (
            &b"Redis connection"[..],
            ServiceCheckStatus::Critical,
            vec!["env:dev"],
            Some(&b"Redis connection timed out after 10s"[..])
        )
    );
    assert_eq!(
        rejected(b"_sc|name|4"),
        ParseErrorKind::InvalidServiceCheckStatus
    );
    assert_eq!(
        rejected(b"_sc|name|ok"),
        ParseErrorKind::InvalidServiceCheckStatus
    );
    assert_eq!(
        rejected(b"_sc|name|"),
        ParseErrorKind::InvalidServiceCheckStatus
    );
    assert_eq!(rejected(b"_sc||0"), ParseErrorKind::EmptyServiceCheckName);
    assert_eq!(
        rejected(b"_sc|name"),
        ParseErrorKind::MissingServiceCheckFields
    );
    let sc = service_check(b"_sc|name|0|m:msg|#env:a");
    assert_eq!(
        (sc.status(), sc.message(), tags(sc.tags())),
        (ServiceCheckStatus::Ok, Some(&b"msg"[..]), vec!["env:a"])
    );
    assert_eq!(
        service_check(b"_sc|name|0|m:a|b").message(),
        Some(&b"a"[..])
    );
    assert_eq!(service_check(b"_sc|name|0|d:abc").timestamp(), None);
    let sc = service_check(b"_sc|name|3|h:web1|d:1700000000");
    assert_eq!(
        (sc.status(), sc.hostname(), sc.timestamp()),
        (
            ServiceCheckStatus::Unknown,
            Some(&b"web1"[..]),
            Some(1_700_000_000)
        )
    );
}

#[test]
fn metrics_named_like_service_checks_are_a_documented_divergence() {
    // The Agent classifies anything starting with `_sc` as a service check and rejects this.
    assert_eq!(metric(b"_scheduler.runs:1|c").name(), b"_scheduler.runs");
}

#[test]
fn limits_reject_the_message_and_name_the_setting() {
    let config = default()
        .with_max_tags(2)
        .with_max_tag_bytes(5)
        .with_max_message_bytes(40);
    let kind = |l: &[u8]| parse_message(l, &config).map(|_| ()).map_err(|e| e.kind());
    assert_eq!(kind(b"m:1|c|#a,b"), Ok(()));
    assert_eq!(kind(b"m:1|c|#a,b,c"), Err(ParseErrorKind::TooManyTags));
    assert_eq!(kind(b"m:1|c|#a,b,c|#a"), Err(ParseErrorKind::TooManyTags));
    assert_eq!(kind(b"m:1|c|#abcde"), Ok(()));
    assert_eq!(kind(b"m:1|c|#abcdef"), Err(ParseErrorKind::TagTooLong));
    assert_eq!(kind(b"_sc|n|0|#a,b,c"), Err(ParseErrorKind::TooManyTags));
    assert_eq!(
        kind(b"_e{1,1}:a|b|#abcdef"),
        Err(ParseErrorKind::TagTooLong)
    );
    assert_eq!(kind(&[b'x'; 41]), Err(ParseErrorKind::MessageTooLong));
    let e = parse_message(b"m:1|c|#a,b,c", &config).unwrap_err();
    assert!(e.to_string().contains("max_tags"), "{e}");
}

#[test]
fn default_limits_are_documented_values() {
    let c = default();
    assert_eq!(
        (c.max_tags(), c.max_tag_bytes(), c.max_message_bytes()),
        (256, 1024, 65_535)
    );
    assert!(!c.origin_detection_client());
    assert!(c.timestamps());
}
