//! The forwarder against a local intake on 127.0.0.1 that decodes what it gets.

mod support;

use dogpipe::Text;
use dogpipe::{
    ApiKey, Compression, EventRecord, Flush, Forwarder, ForwarderConfig, Point, Priority,
    Serializer, SerializerConfig, Series, SeriesKind, ServiceCheckRecord, ServiceCheckStatus,
    Sketch, SketchPoint, write_flush,
};
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Answer, FakeClock, Intake, dead_url, pb, temp_dir};

const KEY: &str = "0123456789abcdef-test-key";

fn text(s: &str) -> Text {
    Text::from(s)
}

fn series(name: &str) -> Series {
    Series {
        name: text(name),
        host: text("web1"),
        tags: vec![text("env:prod")].into(),
        kind: SeriesKind::Rate,
        interval: 10,
        points: vec![Point {
            timestamp: 1_700_000_000,
            value: 2.5,
        }]
        .into(),
    }
}

fn flush() -> Flush {
    Flush {
        series: vec![series("a"), series("b")],
        sketches: vec![Sketch {
            name: text("lat"),
            host: text("web1"),
            tags: dogpipe::TagSet::default(),
            points: vec![SketchPoint {
                timestamp: 1_700_000_000,
                count: 2,
                min: 1.0,
                max: 2.0,
                sum: 3.0,
                avg: 1.5,
                keys: vec![1338, 1349],
                counts: vec![1, 1],
            }],
        }],
        events: vec![EventRecord {
            title: b"deploy".to_vec(),
            text: b"v2".to_vec(),
            timestamp: 1_700_000_000,
            host: text("web1"),
            aggregation_key: None,
            priority: Priority::Normal,
            source_type_name: None,
            alert_type: Default::default(),
            tags: dogpipe::TagSet::default(),
        }],
        service_checks: vec![ServiceCheckRecord {
            name: b"db.up".to_vec(),
            status: ServiceCheckStatus::Ok,
            timestamp: 1_700_000_000,
            host: text("web1"),
            message: None,
            tags: dogpipe::TagSet::default(),
        }],
    }
}

struct Harness {
    forwarder: Forwarder,
    clock: FakeClock,
    logs: Arc<Mutex<Vec<String>>>,
}

fn harness(config: ForwarderConfig) -> Harness {
    let clock = FakeClock::default();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let l = logs.clone();
    let forwarder = Forwarder::new(config.with_api_key(ApiKey::new(KEY)))
        .unwrap()
        .with_clock(Box::new(clock.clone()))
        .with_logger(move |line| l.lock().unwrap().push(line.to_string()));
    Harness {
        forwarder,
        clock,
        logs,
    }
}

fn serialize(flush: &Flush, compression: Compression) -> Vec<dogpipe::Payload> {
    let mut out = Vec::new();
    Serializer::new(SerializerConfig::default().with_compression(compression))
        .serialize(flush, &mut out)
        .unwrap();
    out
}

#[test]
fn every_payload_kind_reaches_the_intake_with_the_agent_headers() {
    for compression in [Compression::default(), Compression::ZLIB_DEFAULT] {
        let intake = Intake::start(vec![]);
        let mut h = harness(ForwarderConfig::default().with_url(&intake.url));
        let mut serializer =
            Serializer::new(SerializerConfig::default().with_compression(compression));
        assert_eq!(
            write_flush(&mut serializer, &flush(), &mut h.forwarder).unwrap(),
            4
        );
        assert!(h.forwarder.flush(Duration::from_secs(60)));
        assert_eq!(h.forwarder.stats().delivered, 4);
        let requests = intake.requests();
        let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/api/v2/series",
                "/api/beta/sketches",
                "/api/v1/check_run",
                "/intake/"
            ]
        );
        for r in &requests {
            assert_eq!(r.header("dd-api-key"), Some(KEY));
            assert_eq!(r.header("content-encoding"), compression.content_encoding());
            assert!(r.header("user-agent").unwrap().starts_with("dogpipe/"));
        }
        let s = &requests[0];
        assert_eq!(s.header("content-type"), Some("application/x-protobuf"));
        let decoded = pb::MetricPayload::decode(&s.decoded()[..]).unwrap();
        let names: Vec<&str> = decoded.series.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            decoded.series[0].points,
            [pb::MetricPoint {
                value: 2.5,
                timestamp: 1_700_000_000
            }]
        );
        assert_eq!(decoded.series[0].resources[0].name, "web1");
        let sk = pb::SketchPayload::decode(&requests[1].decoded()[..]).unwrap();
        assert_eq!(sk.sketches[0].dogsketches[0].k, [1338, 1349]);
        let checks: serde_json::Value = serde_json::from_slice(&requests[2].decoded()).unwrap();
        assert_eq!(checks[0]["check"], "db.up");
        let events: serde_json::Value = serde_json::from_slice(&requests[3].decoded()).unwrap();
        assert_eq!(events["events"]["api"][0]["msg_title"], "deploy");
    }
}

#[test]
fn a_500_is_retried_and_the_payload_delivered_once() {
    let intake = Intake::start(vec![Answer::status(500)]);
    let mut h = harness(ForwarderConfig::default().with_url(&intake.url));
    for p in serialize(
        &Flush {
            series: vec![series("a")],
            ..Flush::default()
        },
        Compression::default(),
    ) {
        h.forwarder.submit(p);
    }
    assert!(h.forwarder.flush(Duration::from_secs(600)));
    let requests = intake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the same payload again");
    let stats = h.forwarder.stats();
    assert_eq!((stats.delivered, stats.retries, stats.rejected), (1, 1, 0));
    let sleeps = h.clock.sleeps.lock().unwrap().clone();
    assert_eq!(sleeps.len(), 1);
    assert!(
        sleeps[0] >= Duration::from_secs(1) && sleeps[0] <= Duration::from_secs(2),
        "{sleeps:?}"
    );
}

#[test]
fn a_429_backs_off_honouring_retry_after_and_keeps_order() {
    let slow_down = Answer {
        retry_after: Some(30),
        ..Answer::status(429)
    };
    let intake = Intake::start(vec![slow_down, Answer::status(429)]);
    let mut h = harness(ForwarderConfig::default().with_url(&intake.url));
    let payloads = serialize(
        &Flush {
            series: vec![series("first")],
            ..Flush::default()
        },
        Compression::None,
    );
    let second = serialize(
        &Flush {
            series: vec![series("second")],
            ..Flush::default()
        },
        Compression::None,
    );
    h.forwarder.submit(payloads[0].clone());
    h.forwarder.submit(second[0].clone());
    assert!(h.forwarder.flush(Duration::from_secs(600)));
    let sleeps = h.clock.sleeps.lock().unwrap().clone();
    assert_eq!(sleeps.len(), 2);
    assert!(
        sleeps[0] >= Duration::from_secs(30),
        "Retry-After honoured: {sleeps:?}"
    );
    assert!(
        sleeps[1] >= Duration::from_secs(2) && sleeps[1] <= Duration::from_secs(4),
        "second failure doubles: {sleeps:?}"
    );
    let names: Vec<String> = intake
        .requests()
        .iter()
        .map(|r| {
            pb::MetricPayload::decode(&r.decoded()[..]).unwrap().series[0]
                .metric
                .clone()
        })
        .collect();
    assert_eq!(names, ["first", "first", "first", "second"]);
    assert_eq!(h.forwarder.stats().delivered, 2);
}

#[test]
fn a_403_is_dropped_counted_and_logged_without_the_key() {
    let forbidden = Answer {
        body: format!("{{\"errors\":[\"Forbidden: bad key {KEY}\"]}}"),
        ..Answer::status(403)
    };
    let intake = Intake::start(vec![forbidden]);
    let mut h = harness(ForwarderConfig::default().with_url(&intake.url));
    for p in serialize(&flush(), Compression::default()) {
        h.forwarder.submit(p);
    }
    assert!(h.forwarder.flush(Duration::from_secs(60)));
    let stats = h.forwarder.stats();
    assert_eq!((stats.rejected, stats.delivered, stats.retries), (1, 3, 0));
    assert!(h.clock.sleeps.lock().unwrap().is_empty(), "no retry");
    let logs = h.logs.lock().unwrap().join("\n");
    assert!(
        logs.contains("HTTP 403") && logs.contains("Forbidden: bad key <redacted>"),
        "{logs}"
    );
    let debug = format!("{:?}", h.forwarder);
    assert!(!logs.contains(KEY) && !debug.contains(KEY), "{debug}");
}

#[test]
fn payloads_spooled_while_the_intake_is_down_are_delivered_after_a_restart() {
    let spool = temp_dir("spool-restart");
    let down = ForwarderConfig::default()
        .with_url(dead_url())
        .with_spool(&spool, 1 << 20);
    let mut h = harness(down);
    let payloads = serialize(&flush(), Compression::default());
    for p in &payloads {
        h.forwarder.submit(p.clone());
    }
    assert!(
        !h.forwarder.flush(Duration::from_secs(5)),
        "the intake is down"
    );
    assert!(h.forwarder.stats().retries >= 4);
    let logs = h.logs.lock().unwrap().join("\n");
    assert!(logs.contains("failed") && !logs.contains(KEY));
    let stats = h.forwarder.close();
    assert_eq!(
        (stats.spooled, stats.dropped_on_close, stats.delivered),
        (4, 0, 0)
    );
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 4);

    let intake = Intake::start(vec![]);
    let mut h = harness(
        ForwarderConfig::default()
            .with_url(&intake.url)
            .with_spool(&spool, 1 << 20),
    );
    assert_eq!(h.forwarder.queued(), 4);
    assert!(h.forwarder.flush(Duration::from_secs(60)));
    assert_eq!(h.forwarder.stats().delivered, 4);
    let requests = intake.requests();
    for (r, p) in requests.iter().zip(&payloads) {
        assert_eq!((r.path.as_str(), &r.body[..]), (p.path(), p.body()));
    }
    assert_eq!(requests.len(), 4);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    std::fs::remove_dir_all(&spool).unwrap();
}
