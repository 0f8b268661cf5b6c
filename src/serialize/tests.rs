//! Round trips: every payload decoded with `prost` messages declared from the spec's schema
//! (an independent decoder) and compared with the input.
//!
//! Test code only: the parent module declares this file under `#[cfg(test)]`, and the
//! attribute below repeats it, so nothing here (its `unwrap`s included) is built into dogpipe.

#![cfg(test)]

use super::proto::{TagRole, tag_role};
use super::*;
use crate::Text;
use crate::{
    AlertType, EventRecord, Flush, Point, Priority, Series, SeriesKind, ServiceCheckRecord,
    ServiceCheckStatus, Sketch, SketchPoint,
};
use proptest::prelude::*;
use prost::Message;
use std::io::Read;

/// The spec's §7.2 / §7.4 schema; strings as bytes so that non-UTF-8 input round-trips.
pub(crate) mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricPayload {
        #[prost(message, repeated, tag = "1")]
        pub series: Vec<MetricSeries>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricSeries {
        #[prost(message, repeated, tag = "1")]
        pub resources: Vec<Resource>,
        #[prost(bytes = "vec", tag = "2")]
        pub metric: Vec<u8>,
        #[prost(bytes = "vec", repeated, tag = "3")]
        pub tags: Vec<Vec<u8>>,
        #[prost(message, repeated, tag = "4")]
        pub points: Vec<MetricPoint>,
        #[prost(int32, tag = "5")]
        pub r#type: i32,
        #[prost(string, tag = "6")]
        pub unit: String,
        #[prost(string, tag = "7")]
        pub source_type_name: String,
        #[prost(int64, tag = "8")]
        pub interval: i64,
        #[prost(message, optional, tag = "9")]
        pub metadata: Option<Metadata>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricPoint {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(bytes = "vec", tag = "1")]
        pub r#type: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub name: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metadata {
        #[prost(message, optional, tag = "1")]
        pub origin: Option<Origin>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Origin {
        #[prost(uint32, tag = "4")]
        pub origin_product: u32,
        #[prost(uint32, tag = "5")]
        pub origin_category: u32,
        #[prost(uint32, tag = "6")]
        pub origin_service: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SketchPayload {
        #[prost(message, repeated, tag = "1")]
        pub sketches: Vec<Sketch>,
        #[prost(message, optional, tag = "2")]
        pub metadata: Option<CommonMetadata>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CommonMetadata {}
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sketch {
        #[prost(bytes = "vec", tag = "1")]
        pub metric: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub host: Vec<u8>,
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub tags: Vec<Vec<u8>>,
        #[prost(message, repeated, tag = "7")]
        pub dogsketches: Vec<Dogsketch>,
        #[prost(message, optional, tag = "8")]
        pub metadata: Option<Metadata>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dogsketch {
        #[prost(int64, tag = "1")]
        pub ts: i64,
        #[prost(int64, tag = "2")]
        pub cnt: i64,
        #[prost(double, tag = "3")]
        pub min: f64,
        #[prost(double, tag = "4")]
        pub max: f64,
        #[prost(double, tag = "5")]
        pub avg: f64,
        #[prost(double, tag = "6")]
        pub sum: f64,
        #[prost(sint32, repeated, tag = "7")]
        pub k: Vec<i32>,
        #[prost(uint32, repeated, tag = "8")]
        pub n: Vec<u32>,
    }
}

fn t(s: &[u8]) -> Text {
    Text::from(s)
}

pub(crate) fn decompress(p: &Payload) -> Vec<u8> {
    let body = p.body();
    match p.compression() {
        Compression::None => body.to_vec(),
        Compression::Zlib { .. } => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        Compression::Gzip { .. } => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        Compression::Zstd { .. } => {
            assert_eq!(
                body.get(..4),
                Some(&[0x28, 0xb5, 0x2f, 0xfd][..]),
                "a zstd frame"
            );
            zstd::decode_all(body).unwrap()
        }
    }
}

fn origin() -> Option<pb::Metadata> {
    Some(pb::Metadata {
        origin: Some(pb::Origin {
            origin_product: 10,
            origin_category: 10,
            origin_service: 0,
        }),
    })
}

/// The naive model: what the intake should see for a series.
fn expected_series(s: &Series) -> pb::MetricSeries {
    let mut resources = vec![pb::Resource {
        r#type: b"host".to_vec(),
        name: s.host.to_vec(),
    }];
    let mut device = None;
    let mut tags = Vec::new();
    for tag in &s.tags {
        match tag_role(tag) {
            TagRole::Keep => tags.push(tag.to_vec()),
            TagRole::Device(d) => device = Some(d.to_vec()),
            TagRole::Resource(k, n) => resources.push(pb::Resource {
                r#type: k.to_vec(),
                name: n.to_vec(),
            }),
            TagRole::Drop => {}
        }
    }
    if let Some(d) = device {
        resources.push(pb::Resource {
            r#type: b"device".to_vec(),
            name: d,
        });
    }
    pb::MetricSeries {
        resources,
        metric: s.name.to_vec(),
        tags,
        points: s
            .points
            .iter()
            .map(|p| pb::MetricPoint {
                value: p.value,
                timestamp: p.timestamp,
            })
            .collect(),
        r#type: match s.kind {
            SeriesKind::Count => 1,
            SeriesKind::Rate => 2,
            SeriesKind::Gauge => 3,
        },
        unit: String::new(),
        source_type_name: String::new(),
        interval: i64::from(s.interval),
        metadata: origin(),
    }
}

fn expected_sketch(s: &Sketch) -> pb::Sketch {
    pb::Sketch {
        metric: s.name.to_vec(),
        host: s.host.to_vec(),
        tags: s.tags.iter().map(|t| t.to_vec()).collect(),
        dogsketches: s
            .points
            .iter()
            .map(|p| pb::Dogsketch {
                ts: p.timestamp,
                cnt: p.count,
                min: p.min,
                max: p.max,
                avg: p.avg,
                sum: p.sum,
                k: p.keys.clone(),
                n: p.counts.clone(),
            })
            .collect(),
        metadata: origin(),
    }
}

/// Decodes series payloads; also checks each against `limits`.
fn decode_series(payloads: &[Payload], limits: &PayloadLimits) -> Vec<pb::MetricSeries> {
    let mut all = Vec::new();
    for p in payloads {
        assert_eq!(p.endpoint(), Endpoint::SeriesV2);
        assert!(
            p.body().len() <= limits.max_compressed_bytes(),
            "compressed {}",
            p.body().len()
        );
        let raw = decompress(p);
        assert!(
            raw.len() <= limits.max_uncompressed_bytes(),
            "uncompressed {}",
            raw.len()
        );
        let decoded = pb::MetricPayload::decode(&raw[..]).unwrap();
        let points: usize = decoded.series.iter().map(|s| s.points.len()).sum();
        assert!(points <= limits.max_points(), "points {points}");
        assert!(!decoded.series.is_empty(), "no empty payload");
        assert_eq!(decoded.series.len(), p.item_count());
        all.extend(decoded.series);
    }
    all
}

fn decode_sketches(payloads: &[Payload], limits: &PayloadLimits) -> Vec<pb::Sketch> {
    let mut all = Vec::new();
    for p in payloads {
        assert_eq!(p.endpoint(), Endpoint::Sketches);
        assert!(p.body().len() <= limits.max_compressed_bytes());
        let raw = decompress(p);
        assert!(raw.len() <= limits.max_uncompressed_bytes());
        assert!(raw.ends_with(&[0x12, 0x00]), "the empty metadata footer");
        let decoded = pb::SketchPayload::decode(&raw[..]).unwrap();
        assert_eq!(decoded.metadata, Some(pb::CommonMetadata {}));
        all.extend(decoded.sketches);
    }
    all
}

fn series(name: &str, tags: &[&str], points: usize) -> Series {
    Series {
        name: t(name.as_bytes()),
        host: t(b"web1"),
        tags: tags.iter().map(|s| t(s.as_bytes())).collect(),
        kind: SeriesKind::Rate,
        interval: 10,
        points: (0..points)
            .map(|i| Point {
                timestamp: 1_700_000_000 + 10 * i as i64,
                value: i as f64 * 0.5,
            })
            .collect(),
    }
}

fn sketch(name: &str, bins: usize) -> Sketch {
    Sketch {
        name: t(name.as_bytes()),
        host: t(b""),
        tags: vec![t(b"env:prod")].into(),
        points: vec![SketchPoint {
            timestamp: 1_700_000_000,
            count: bins as i64,
            min: -2.0,
            max: 9.5,
            sum: 30.0,
            avg: 30.0 / bins.max(1) as f64,
            keys: (0..bins as i32).map(|k| k * 7 - 300).collect(),
            counts: (0..bins as u32).map(|n| n * 1000 + 1).collect(),
        }],
    }
}

const ALL_COMPRESSIONS: [Compression; 3] = [
    Compression::Zstd { level: 1 },
    Compression::Zlib { level: 6 },
    Compression::None,
];

fn run(config: SerializerConfig, flush: &Flush) -> (Vec<Payload>, SerializeStats) {
    let mut s = Serializer::new(config);
    let mut out = Vec::new();
    s.serialize(flush, &mut out).unwrap();
    (out, s.stats())
}

#[test]
fn series_v2_round_trip_through_prost_for_every_compression() {
    let flush = Flush {
        series: vec![
            series(
                "a.b",
                &[
                    "env:prod",
                    "device:sda",
                    "dd.internal.resource:database_instance:db1",
                ],
                2,
            ),
            series("gauge", &[], 1),
            Series {
                host: t(b""),
                kind: SeriesKind::Gauge,
                ..series("c", &["z"], 3)
            },
            Series {
                kind: SeriesKind::Count,
                ..series("n\u{e9}", &["device:a", "device:b"], 1)
            },
        ],
        ..Flush::default()
    };
    for compression in ALL_COMPRESSIONS {
        let (payloads, stats) = run(
            SerializerConfig::default().with_compression(compression),
            &flush,
        );
        assert_eq!(payloads.len(), 1);
        let p = &payloads[0];
        assert_eq!(
            (p.path(), p.content_type()),
            ("/api/v2/series", "application/x-protobuf")
        );
        assert_eq!(p.content_encoding(), compression.content_encoding());
        let decoded = decode_series(&payloads, &PayloadLimits::SERIES);
        let expected: Vec<_> = flush.series.iter().map(expected_series).collect();
        assert_eq!(decoded, expected);
        assert_eq!(stats.payloads, 1);
        assert_eq!(stats.too_big(), 0);
    }
}

#[test]
fn device_and_internal_resource_tags_become_resources() {
    let s = series(
        "m",
        &[
            "dd.internal.resource:db:x",
            "dd.internal.resource:oops",
            "device:sda",
            "env:a",
        ],
        1,
    );
    let (payloads, _) = run(
        SerializerConfig::default(),
        &Flush {
            series: vec![s],
            ..Flush::default()
        },
    );
    let got = &decode_series(&payloads, &PayloadLimits::SERIES)[0];
    let names: Vec<(&[u8], &[u8])> = got
        .resources
        .iter()
        .map(|r| (&r.r#type[..], &r.name[..]))
        .collect();
    assert_eq!(
        names,
        [
            (&b"host"[..], &b"web1"[..]),
            (b"db", b"x"),
            (b"device", b"sda")
        ]
    );
    assert_eq!(got.tags, [b"env:a".to_vec()]);
    assert_eq!(got.metadata, origin());
    assert_eq!(got.interval, 10);
}

#[test]
fn sketches_round_trip_with_the_metadata_footer_for_every_compression() {
    let flush = Flush {
        sketches: vec![
            sketch("lat", 5),
            sketch("empty.bins", 0),
            sketch("big", 2000),
        ],
        ..Flush::default()
    };
    for compression in ALL_COMPRESSIONS {
        let (payloads, _) = run(
            SerializerConfig::default().with_compression(compression),
            &flush,
        );
        assert_eq!(payloads.len(), 1);
        assert_eq!(payloads[0].path(), "/api/beta/sketches");
        let decoded = decode_sketches(&payloads, &PayloadLimits::OTHER);
        let expected: Vec<_> = flush.sketches.iter().map(expected_sketch).collect();
        assert_eq!(decoded, expected);
    }
}

fn check(name: &str, message: Option<&str>, tags: &[&str]) -> ServiceCheckRecord {
    ServiceCheckRecord {
        name: name.as_bytes().to_vec(),
        status: ServiceCheckStatus::Critical,
        timestamp: 1_700_000_000,
        host: t(b"myhost"),
        message: message.map(|m| m.as_bytes().to_vec()),
        tags: tags.iter().map(|s| t(s.as_bytes())).collect(),
    }
}

fn event(title: &str, source: Option<&str>) -> EventRecord {
    EventRecord {
        title: title.as_bytes().to_vec(),
        text: b"line1\nline2 \"q\"".to_vec(),
        timestamp: 1_700_000_000,
        host: t(b"myhost"),
        aggregation_key: Some(b"k".to_vec()),
        priority: Priority::Low,
        source_type_name: source.map(|s| s.as_bytes().to_vec()),
        alert_type: AlertType::Warning,
        tags: vec![t(b"a:b")].into(),
    }
}

fn json_bodies(payloads: &[Payload]) -> Vec<serde_json::Value> {
    payloads
        .iter()
        .map(|p| serde_json::from_slice(&decompress(p)).unwrap())
        .collect()
}

#[test]
fn service_checks_are_a_json_array_with_null_tags_when_empty() {
    let flush = Flush {
        service_checks: vec![
            check("redis.up", Some("timed out"), &["env:dev"]),
            check("x", None, &[]),
        ],
        ..Flush::default()
    };
    for compression in ALL_COMPRESSIONS {
        let (payloads, _) = run(
            SerializerConfig::default().with_compression(compression),
            &flush,
        );
        assert_eq!(payloads[0].path(), "/api/v1/check_run");
        assert_eq!(payloads[0].content_type(), "application/json");
        let expected = serde_json::json!([
            {"check":"redis.up","host_name":"myhost","timestamp":1700000000,"status":2,"message":"timed out","tags":["env:dev"]},
            {"check":"x","host_name":"myhost","timestamp":1700000000,"status":2,"message":"","tags":null}
        ]);
        assert_eq!(json_bodies(&payloads), [expected]);
    }
}

#[test]
fn events_are_grouped_by_source_type_one_group_per_payload() {
    let mut plain = event("t", None);
    plain.aggregation_key = None;
    plain.tags = crate::TagSet::default();
    let flush = Flush {
        events: vec![
            event("a", Some("nagios")),
            plain,
            event("b", Some("nagios")),
        ],
        ..Flush::default()
    };
    let config = SerializerConfig::default()
        .with_hostname("agent-host")
        .with_compression(Compression::ZLIB_DEFAULT);
    let (payloads, _) = run(config, &flush);
    assert!(payloads.iter().all(|p| p.path() == "/intake/"));
    let bodies = json_bodies(&payloads);
    assert_eq!(
        bodies[0],
        serde_json::json!({"apiKey":"","events":{"api":[
        {"msg_title":"t","msg_text":"line1\nline2 \"q\"","timestamp":1700000000,"priority":"low","host":"myhost","alert_type":"warning"}
    ]},"internalHostname":"agent-host"})
    );
    let nagios = &bodies[1]["events"]["nagios"];
    assert_eq!(nagios.as_array().unwrap().len(), 2);
    assert_eq!(
        nagios[1],
        serde_json::json!({"msg_title":"b","msg_text":"line1\nline2 \"q\"","timestamp":1700000000,
        "priority":"low","host":"myhost","tags":["a:b"],"alert_type":"warning","aggregation_key":"k","source_type_name":"nagios"})
    );
}

#[test]
fn series_v1_is_the_json_series_object_when_chosen() {
    let mut s = series("page.views", &["device:sda", "env:prod"], 1);
    s.points[0].value = 0.3;
    let mut nan = series("nan", &[], 1);
    nan.points[0].value = f64::NAN;
    let flush = Flush {
        series: vec![s, nan],
        ..Flush::default()
    };
    let (payloads, _) = run(SerializerConfig::default().with_series_v1(true), &flush);
    assert_eq!(payloads[0].path(), "/api/v1/series");
    assert_eq!(
        json_bodies(&payloads),
        [serde_json::json!({"series":[
            {"metric":"page.views","points":[[1700000000,0.3]],"tags":["env:prod"],"host":"web1","device":"sda","type":"rate","interval":10},
            {"metric":"nan","points":[[1700000000,null]],"tags":[],"host":"web1","type":"rate","interval":10}
        ]})]
    );
}

#[test]
fn series_split_at_the_point_limit_and_oversized_series_are_counted() {
    let limits = PayloadLimits::SERIES.with_max_points(10);
    let flush = Flush {
        series: vec![
            series("a", &[], 6),
            series("b", &[], 4),
            series("c", &[], 11),
            series("d", &[], 1),
        ],
        ..Flush::default()
    };
    let (payloads, stats) = run(
        SerializerConfig::default().with_series_limits(limits),
        &flush,
    );
    let decoded = decode_series(&payloads, &limits);
    assert_eq!(payloads.len(), 2);
    let names: Vec<&[u8]> = decoded.iter().map(|s| &s.metric[..]).collect();
    assert_eq!(names, [&b"a"[..], b"b", b"d"]);
    assert_eq!(stats.series_too_big, 1);
}

#[test]
fn the_default_point_limit_splits_ten_thousand_points_per_payload() {
    let flush = Flush {
        series: (0..25_000)
            .map(|i| series(&format!("m{i}"), &["env:x"], 1))
            .collect(),
        ..Flush::default()
    };
    let (payloads, stats) = run(SerializerConfig::default(), &flush);
    assert_eq!(
        payloads.iter().map(Payload::item_count).collect::<Vec<_>>(),
        [10_000, 10_000, 5_000]
    );
    assert_eq!(
        decode_series(&payloads, &PayloadLimits::SERIES).len(),
        25_000
    );
    assert_eq!(stats.payloads, 3);
}

#[test]
fn payloads_are_handed_over_as_they_close_without_spare_capacity() {
    let flush = Flush {
        series: (0..25_000)
            .map(|i| series(&format!("m{i}"), &["env:x"], 1))
            .collect(),
        ..Flush::default()
    };
    let (collected, _) = run(SerializerConfig::default(), &flush);
    let mut serializer = Serializer::new(SerializerConfig::default());
    let mut handed = Vec::new();
    serializer
        .serialize_each(&flush, |p| {
            // A closed body keeps no slack for the time it waits in a queue.
            assert!(p.body.capacity() <= p.body.len() + p.body.len() / 8);
            handed.push(p);
        })
        .unwrap();
    assert_eq!(handed, collected);
    assert_eq!(serializer.stats().payloads, 3);
}

#[test]
fn compressed_limit_closes_payloads_for_every_compression() {
    let flush = Flush {
        series: (0..3_000)
            .map(|i| {
                series(
                    &format!("metric.{i}.{}", i * 7919 % 1000),
                    &["env:x", "k:v"],
                    2,
                )
            })
            .collect(),
        ..Flush::default()
    };
    for compression in ALL_COMPRESSIONS {
        let limits = PayloadLimits::SERIES.with_max_compressed_bytes(1_000);
        let config = SerializerConfig::default()
            .with_compression(compression)
            .with_series_limits(limits);
        let (payloads, stats) = run(config, &flush);
        assert!(
            payloads.len() > 3,
            "{compression:?}: {} {:?}",
            payloads.len(),
            payloads.iter().map(|p| p.body().len()).collect::<Vec<_>>()
        );
        let decoded = decode_series(&payloads, &limits);
        assert_eq!(
            decoded,
            flush.series.iter().map(expected_series).collect::<Vec<_>>()
        );
        assert_eq!(stats.too_big(), 0);
    }
}

#[test]
fn uncompressed_limit_splits_sketches_and_drops_one_that_fits_nowhere() {
    let limits = PayloadLimits::OTHER.with_max_uncompressed_bytes(1_200);
    let flush = Flush {
        sketches: vec![
            sketch("a", 100),
            sketch("b", 100),
            sketch("huge", 1000),
            sketch("c", 100),
        ],
        ..Flush::default()
    };
    let (payloads, stats) = run(SerializerConfig::default().with_limits(limits), &flush);
    let decoded = decode_sketches(&payloads, &limits);
    let names: Vec<&[u8]> = decoded.iter().map(|s| &s.metric[..]).collect();
    assert_eq!(names, [&b"a"[..], b"b", b"c"]);
    assert!(payloads.len() >= 2);
    assert_eq!(stats.sketches_too_big, 1);
}

#[test]
fn json_payloads_split_and_each_stays_valid_json() {
    let limits = PayloadLimits::OTHER.with_max_uncompressed_bytes(400);
    let flush = Flush {
        service_checks: (0..20)
            .map(|i| check(&format!("c{i}"), Some("m"), &["t"]))
            .collect(),
        events: (0..10).map(|i| event(&format!("e{i}"), None)).collect(),
        ..Flush::default()
    };
    let (payloads, stats) = run(SerializerConfig::default().with_limits(limits), &flush);
    assert_eq!(stats.too_big(), 0);
    let (mut checks, mut events) = (0, 0);
    for (p, body) in payloads.iter().zip(json_bodies(&payloads)) {
        assert!(decompress(p).len() <= 400);
        match p.endpoint() {
            Endpoint::ServiceChecks => checks += body.as_array().unwrap().len(),
            Endpoint::Events => events += body["events"]["api"].as_array().unwrap().len(),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((checks, events), (20, 10));
    assert!(payloads.len() > 4);
}

#[test]
fn an_empty_flush_produces_no_payload() {
    let (payloads, stats) = run(SerializerConfig::default(), &Flush::default());
    assert!(payloads.is_empty());
    assert_eq!(stats, SerializeStats::default());
}

fn arb_text() -> impl Strategy<Value = Text> {
    prop_oneof![
        3 => "[a-z.]{1,12}".prop_map(|s| Text::from(s.as_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Text::from),
        1 => "(device|dd\\.internal\\.resource):[a-z:]{0,8}".prop_map(|s| Text::from(s.as_bytes())),
    ]
}

fn arb_series() -> impl Strategy<Value = Series> {
    (
        arb_text(),
        arb_text(),
        prop::collection::vec(arb_text(), 0..6),
        prop_oneof![
            Just(SeriesKind::Gauge),
            Just(SeriesKind::Rate),
            Just(SeriesKind::Count)
        ],
        any::<u32>(),
        prop::collection::vec((any::<i64>(), any::<f64>()), 0..30),
    )
        .prop_map(|(name, host, tags, kind, interval, points)| Series {
            name,
            host,
            tags: tags.into(),
            kind,
            interval,
            points: points
                .into_iter()
                .map(|(timestamp, value)| Point { timestamp, value })
                .collect(),
        })
}

fn arb_sketch() -> impl Strategy<Value = Sketch> {
    let point = (
        any::<i64>(),
        any::<i64>(),
        any::<[f64; 4]>(),
        prop::collection::vec((any::<i32>(), any::<u32>()), 0..60),
    )
        .prop_map(
            |(timestamp, count, [min, max, sum, avg], bins)| SketchPoint {
                timestamp,
                count,
                min,
                max,
                sum,
                avg,
                keys: bins.iter().map(|b| b.0).collect(),
                counts: bins.iter().map(|b| b.1).collect(),
            },
        );
    (
        arb_text(),
        arb_text(),
        prop::collection::vec(arb_text(), 0..4),
        prop::collection::vec(point, 0..4),
    )
        .prop_map(|(name, host, tags, points)| Sketch {
            name,
            host,
            tags: tags.into(),
            points,
        })
}

/// The naive size model: an item fits if, alone in a payload, it is within the limits.
fn fits_alone(
    item_bytes: usize,
    footer: usize,
    points: usize,
    limits: &PayloadLimits,
    c: Compression,
) -> bool {
    let total = item_bytes + footer;
    points <= limits.max_points()
        && total <= limits.max_uncompressed_bytes()
        && c.bound(total) <= limits.max_compressed_bytes()
}

fn floats_eq(a: &[pb::MetricSeries], b: &[pb::MetricSeries]) -> bool {
    // Compare bit patterns so that NaN points compare equal.
    format!("{a:?}") == format!("{b:?}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn property_test_every_payload_respects_every_limit_and_decodes_to_the_input(
        series in prop::collection::vec(arb_series(), 0..40),
        sketches in prop::collection::vec(arb_sketch(), 0..12),
        compression in prop_oneof![Just(Compression::None), Just(Compression::ZLIB_DEFAULT), (1i32..4).prop_map(|level| Compression::Zstd { level })],
        series_compressed in 100usize..6_000,
        series_uncompressed in 100usize..8_000,
        series_points in 1usize..80,
        compressed in 100usize..9_000,
        uncompressed in 100usize..9_000,
    ) {
        let series_limits = PayloadLimits::SERIES
            .with_max_compressed_bytes(series_compressed)
            .with_max_uncompressed_bytes(series_uncompressed)
            .with_max_points(series_points);
        let limits = PayloadLimits::OTHER.with_max_compressed_bytes(compressed).with_max_uncompressed_bytes(uncompressed);
        let config = SerializerConfig::default()
            .with_compression(compression)
            .with_series_limits(series_limits)
            .with_limits(limits);
        let flush = Flush { series: series.clone(), sketches: sketches.clone(), ..Flush::default() };
        let (payloads, stats) = run(config, &flush);
        let (series_payloads, sketch_payloads): (Vec<_>, Vec<_>) =
            payloads.into_iter().partition(|p| p.endpoint() == Endpoint::SeriesV2);

        let kept: Vec<_> = series
            .iter()
            .filter(|s| fits_alone(super::proto::series_item_len(s), 0, s.points.len(), &series_limits, compression))
            .map(expected_series)
            .collect();
        let decoded = decode_series(&series_payloads, &series_limits);
        prop_assert!(floats_eq(&decoded, &kept));
        prop_assert_eq!(stats.series_too_big as usize, series.len() - kept.len());

        let kept: Vec<_> = sketches
            .iter()
            .filter(|s| fits_alone(super::proto::sketch_item_len(s), 2, 1, &limits, compression))
            .map(expected_sketch)
            .collect();
        let decoded = decode_sketches(&sketch_payloads, &limits);
        prop_assert_eq!(format!("{decoded:?}"), format!("{kept:?}"));
        prop_assert_eq!(stats.sketches_too_big as usize, sketches.len() - kept.len());
    }
}
