//! The file sink's directory, read back by `dogpipe decode`.

mod support;

use dogpipe::Text;
use dogpipe::{
    Compression, FileSink, Flush, Point, Serializer, SerializerConfig, Series, SeriesKind,
    ServiceCheckRecord, ServiceCheckStatus, Sketch, SketchPoint, write_flush,
};
use serde_json::{Value, json};
use std::process::Command;
use support::temp_dir;

fn text(s: &str) -> Text {
    Text::from(s)
}

fn flush() -> Flush {
    Flush {
        series: (0..3)
            .map(|i| Series {
                name: text(&format!("m{i}")),
                host: text("web1"),
                tags: vec![text("device:sda"), text("env:prod")].into(),
                kind: SeriesKind::Gauge,
                interval: 10,
                points: vec![Point {
                    timestamp: 1_700_000_000,
                    value: i as f64 + 0.25,
                }]
                .into(),
            })
            .collect(),
        sketches: vec![Sketch {
            name: text("lat"),
            host: text("web1"),
            tags: vec![text("a:b")].into(),
            points: vec![SketchPoint {
                timestamp: 1_700_000_010,
                count: 3,
                min: -1.0,
                max: 4.0,
                sum: 6.0,
                avg: 2.0,
                keys: vec![-1200, 0, 1400],
                counts: vec![1, 1, 1],
            }],
        }],
        service_checks: vec![ServiceCheckRecord {
            name: b"db.up".to_vec(),
            status: ServiceCheckStatus::Warning,
            timestamp: 1_700_000_000,
            host: text("web1"),
            message: Some(b"slow".to_vec()),
            tags: dogpipe::TagSet::default(),
        }],
        events: vec![],
    }
}

fn decode(args: &[&str]) -> (Vec<Value>, String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .arg("decode")
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn file_sink_requests_decode_back_to_the_flush_for_both_compressions() {
    for (compression, encoding) in [
        (Compression::default(), "zstd"),
        (Compression::ZLIB_DEFAULT, "deflate"),
    ] {
        let dir = temp_dir(&format!("sink-decode-{encoding}"));
        let mut sink = FileSink::create(&dir).unwrap();
        let mut serializer =
            Serializer::new(SerializerConfig::default().with_compression(compression));
        assert_eq!(
            write_flush(&mut serializer, &flush(), &mut sink).unwrap(),
            3
        );

        let index = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
        let first: Value = serde_json::from_str(index.lines().next().unwrap()).unwrap();
        let bytes = std::fs::metadata(dir.join("000001.body")).unwrap().len();
        assert_eq!(
            first,
            json!({"seq":1,"path":"/api/v2/series","content_type":"application/x-protobuf",
                   "content_encoding":encoding,"body_file":"000001.body","bytes":bytes})
        );
        assert_eq!(index.lines().count(), 3);

        let (lines, stderr, ok) = decode(&[dir.join("requests.jsonl").to_str().unwrap()]);
        assert!(ok, "{stderr}");
        assert_eq!(lines.len(), 5, "3 series, 1 sketch, 1 JSON payload");
        assert_eq!(
            lines[1],
            json!({"seq":1,"path":"/api/v2/series","kind":"series","metric":"m1","type":"gauge","interval":10,
                   "resources":[{"type":"host","name":"web1"},{"type":"device","name":"sda"}],
                   "tags":["env:prod"],"points":[[1700000000,1.25]],
                   "origin":{"product":10,"category":10,"service":0}})
        );
        assert_eq!(
            lines[3],
            json!({"seq":2,"path":"/api/beta/sketches","kind":"sketch","metric":"lat","host":"web1","tags":["a:b"],
                   "points":[{"ts":1700000010,"cnt":3,"min":-1,"max":4,"avg":2,"sum":6,"k":[-1200,0,1400],"n":[1,1,1]}],
                   "origin":{"product":10,"category":10,"service":0}})
        );
        assert_eq!(lines[4]["body"][0]["message"], "slow");
        assert_eq!(lines[4]["path"], "/api/v1/check_run");

        // A body file alone finds its line in the index beside it; the directory works too.
        let (single, _, ok) = decode(&[dir.join("000002.body").to_str().unwrap()]);
        assert!(ok);
        assert_eq!(single, [lines[3].clone()]);
        assert_eq!(decode(&[dir.to_str().unwrap()]).0, lines);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn decode_refuses_a_decompression_bomb_and_unknown_protobuf() {
    let dir = temp_dir("decode-bomb");
    let bomb = dir.join("bomb.body");
    std::fs::write(
        &bomb,
        zstd::encode_all(&vec![b'['; 1 << 20][..], 3).unwrap(),
    )
    .unwrap();
    let (lines, stderr, ok) = decode(&["--max-bytes", "1000", bomb.to_str().unwrap()]);
    assert!(!ok && lines.is_empty());
    assert!(stderr.contains("more than 1000 bytes"), "{stderr}");
    let proto = dir.join("p.body");
    std::fs::write(&proto, [0x0a, 0x00]).unwrap();
    let (_, stderr, ok) = decode(&[proto.to_str().unwrap()]);
    assert!(!ok && stderr.contains("--path"), "{stderr}");
    let (lines, _, ok) = decode(&["--path", "/api/v2/series", proto.to_str().unwrap()]);
    assert!(ok);
    assert_eq!(lines[0]["metric"], "");
    std::fs::remove_dir_all(&dir).unwrap();
}
