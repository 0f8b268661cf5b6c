//! `dogpipe parse`, the black-box contract of the parser: packets on stdin, one JSON object per
//! message on stdout in input order, exit code 0 even with bad lines, counts on stderr.

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn parse(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .arg("parse")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dogpipe runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("stdin takes the input");
    child.wait_with_output().expect("dogpipe exits")
}

fn objects(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

/// Every kind of message, CRLF, an empty line, a bad line and a byte that is not UTF-8.
const INPUT: &[u8] = b"page.views:1:2|c|@0.5|#env:prod,team:web\r\n\nbad\n\
_e{5,4}:title|text|p:low|#a\n_sc|db|1|m:down\ns:abc:d|s\n\
g:nan|g|c:ci-123|T1700000000\nn:1|c|#\xff";

#[test]
fn prints_one_object_per_message_in_order_with_the_contract_fields() {
    let out = parse(&[], INPUT);
    assert!(out.status.success(), "{out:?}");
    let got = objects(&out);
    let metric = |name: &str, ty: &str, values: Value, rate: Value, tags: Value, ts: Value| {
        json!({"kind": "metric", "name": name, "type": ty, "values": values,
               "sample_rate": rate, "tags": tags, "timestamp": ts,
               "container_id": null, "external_data": null, "cardinality": null})
    };
    let expected = vec![
        metric(
            "page.views",
            "count",
            json!([1, 2]),
            json!(0.5),
            json!(["env:prod", "team:web"]),
            json!(null),
        ),
        json!({"kind": "error",
               "error": "invalid metric at byte 3: metric has no `|type` (expected name:value|type)",
               "input": "bad"}),
        json!({"kind": "event", "title": "title", "text": "text", "timestamp": null,
               "hostname": null, "aggregation_key": null, "priority": "low",
               "source_type_name": null, "alert_type": "info", "tags": ["a"]}),
        json!({"kind": "service_check", "name": "db", "status": 1, "timestamp": null,
               "hostname": null, "message": "down", "tags": []}),
        metric(
            "s",
            "set",
            json!(["abc:d"]),
            json!(1),
            json!([]),
            json!(null),
        ),
        metric(
            "g",
            "gauge",
            json!(["NaN"]),
            json!(1),
            json!([]),
            json!(1_700_000_000),
        ),
        metric(
            "n",
            "count",
            json!([1]),
            json!(1),
            json!(["\u{fffd}"]),
            json!(null),
        ),
    ];
    assert_eq!(got, expected);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("6 ok, 1 bad"), "{stderr}");
}

#[test]
fn origin_fields_are_read_only_with_client_origin_detection() {
    let line = b"g:1|g|c:ci-123|e:it-false,cn-x|card:high\n";
    let off = &objects(&parse(&[], line))[0];
    assert_eq!(off["container_id"], Value::Null);
    let on = &objects(&parse(&["--origin-detection-client"], line))[0];
    assert_eq!(on["container_id"], "ci-123");
    assert_eq!(on["external_data"], "it-false,cn-x");
    assert_eq!(on["cardinality"], "high");
}

#[test]
fn an_unknown_argument_is_an_error_with_the_usage() {
    let out = parse(&["--bogus"], b"a:1|c\n");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown argument `--bogus`") && stderr.contains("usage"),
        "{stderr}"
    );
}
