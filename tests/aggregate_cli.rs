//! `dogpipe aggregate` through the built binary: the spec's aggregation vectors (§9.5 A1–A12,
//! M35, M42–M48, M54–M57), the clock, the flush schedule and the environment.

use std::io::Write;
use std::process::{Command, Stdio};

const T0: i64 = 1_700_000_010; // a multiple of 10 and of 15

fn run_with(input: &str, args: &[&str], env: &[(&str, &str)]) -> (Vec<String>, String, bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dogpipe"));
    cmd.arg("aggregate")
        .args(["--hostname", "h0"])
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        stdout.lines().map(str::to_string).collect(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.success(),
    )
}

/// Messages arriving at T0 + 1, then end of input (the final flush includes the open bucket).
fn run(messages: &str) -> Vec<String> {
    let (lines, stderr, ok) = run_with(&format!("@{}\n{messages}\n", T0 + 1), &[], &[]);
    assert!(ok, "{stderr}");
    lines
}

fn series(metric: &str, kind: &str, host: &str, tags: &str, value: &str) -> String {
    format!(
        "{{\"kind\":\"series\",\"metric\":\"{metric}\",\"type\":\"{kind}\",\"interval\":10,\"host\":\"{host}\",\"tags\":[{tags}],\"points\":[[{T0},{value}]]}}"
    )
}

#[test]
fn a1_a2_counters_are_rates() {
    assert_eq!(
        run("c:1|c\nc:1|c\nc:1|c"),
        [series("c", "rate", "h0", "", "0.3")]
    );
    assert_eq!(run("c:1|c|@0.5"), [series("c", "rate", "h0", "", "0.2")]);
}

#[test]
fn a3_a4_gauges_and_sets() {
    assert_eq!(run("g:1|g\ng:5|g"), [series("g", "gauge", "h0", "", "5")]);
    assert_eq!(
        run("s:a|s\ns:b|s\ns:a|s"),
        [series("s", "gauge", "h0", "", "2")]
    );
}

#[test]
fn a5_a6_histograms() {
    assert_eq!(
        run("h:1|h\nh:2|h\nh:3|h\nh:4|h"),
        [
            series("h.95percentile", "gauge", "h0", "", "4"),
            series("h.avg", "gauge", "h0", "", "2.5"),
            series("h.count", "rate", "h0", "", "0.4"),
            series("h.max", "gauge", "h0", "", "4"),
            series("h.median", "gauge", "h0", "", "2"),
        ]
    );
    assert_eq!(
        run("h:10|h|@0.5")[2],
        series("h.count", "rate", "h0", "", "0.2")
    );
}

fn sketch(point: &str) -> String {
    format!(
        "{{\"kind\":\"sketch\",\"metric\":\"d\",\"host\":\"h0\",\"tags\":[],\"points\":[{point}]}}"
    )
}

#[test]
fn a7_a8_a9_distributions() {
    assert_eq!(
        run("d:1|d"),
        [sketch(&format!(
            "{{\"ts\":{T0},\"cnt\":1,\"min\":1,\"max\":1,\"avg\":1,\"sum\":1,\"k\":[1338],\"n\":[1]}}"
        ))]
    );
    assert_eq!(
        run("d:1|d|@0.5"),
        [sketch(&format!(
            "{{\"ts\":{T0},\"cnt\":2,\"min\":1,\"max\":1,\"avg\":1,\"sum\":2,\"k\":[1338],\"n\":[2]}}"
        ))]
    );
    assert_eq!(
        run("d:-2.5|d\nd:0|d\nd:1e-10|d"),
        [sketch(&format!(
            "{{\"ts\":{T0},\"cnt\":3,\"min\":-2.5,\"max\":0.0000000001,\"avg\":-0.8333333333,\"sum\":-2.4999999999,\"k\":[-1397,0],\"n\":[1,2]}}"
        ))
        .replace("-0.8333333333", &(-2.4999999999f64 / 3.0).to_string())
        .replace("0.0000000001", &1e-10f64.to_string())]
    );
}

#[test]
fn a10_an_idle_counter_emits_zeros_until_300_seconds_then_stops() {
    let mut input = format!("@{T0}\nc:1|c\n");
    for t in (T0 + 15..=T0 + 400).step_by(15) {
        input.push_str(&format!("@{t}\n"));
    }
    let (lines, stderr, ok) = run_with(&input, &[], &[]);
    assert!(ok, "{stderr}");
    assert_eq!(lines[0], series("c", "rate", "h0", "", "0.1"));
    assert!(lines.len() > 10, "{lines:?}");
    for l in &lines[1..] {
        assert!(l.contains(",0]]"), "{l}");
    }
    let last: i64 = lines
        .last()
        .unwrap()
        .split("[[")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(last < T0 + 300, "{last}");
    assert!(stderr.contains("0 contexts live"), "{stderr}");
}

#[test]
fn a11_a12_context_identity() {
    assert_eq!(
        run("x:1|g|#a,b\nx:2|g|#b,a,a"),
        [series("x", "gauge", "h0", "\"a\",\"b\"", "2")]
    );
    assert_eq!(
        run("x:1|g|#host:h1\nx:1|g|#host:h2"),
        [
            series("x", "gauge", "h1", "", "1"),
            series("x", "gauge", "h2", "", "1")
        ]
    );
}

#[test]
fn m35_m42_m43_timestamped_samples() {
    assert_eq!(
        run("m:1234|g|#onetag|T1657100430\nm:4|c|@0.25|T1657100430\nm:4|h|T1657100430"),
        [
            "{\"kind\":\"series\",\"metric\":\"m\",\"type\":\"rate\",\"interval\":10,\"host\":\"h0\",\"tags\":[],\"points\":[[1657100430,0.4]]}",
            "{\"kind\":\"series\",\"metric\":\"m\",\"type\":\"gauge\",\"interval\":10,\"host\":\"h0\",\"tags\":[\"onetag\"],\"points\":[[1657100430,1234]]}",
        ]
    );
    let (_, stderr, _) = run_with(&format!("@{T0}\nm:4|h|T1657100430\n"), &[], &[]);
    assert!(stderr.contains("1 unsupported timestamped"), "{stderr}");
}

#[test]
fn m44_to_m48_values() {
    let (lines, stderr, _) = run_with(&format!("@{T0}\nm:NaN|g\nd:-Inf|d\nm:1e400|g\n"), &[], &[]);
    assert!(lines.is_empty(), "{lines:?}");
    assert!(
        stderr.contains("1 bad") && stderr.contains("2 non-finite"),
        "{stderr}"
    );
    assert_eq!(
        run("m:+4|g\nm:-10|g"),
        [series("m", "gauge", "h0", "", "-10")]
    );
    assert_eq!(run("m:-3|c"), [series("m", "rate", "h0", "", "-0.3")]);
}

#[test]
fn m54_to_m57_special_tags() {
    assert_eq!(
        run("m:1|c|#host:myhost,env:a"),
        [series("m", "rate", "myhost", "\"env:a\"", "0.1")]
    );
    assert_eq!(
        run("m:1|c|#env:a,host:"),
        [series("m", "rate", "", "\"env:a\"", "0.1")]
    );
    assert_eq!(
        run("m:1|c|#dd.internal.entity_id:pod-uid,env:a"),
        [series("m", "rate", "h0", "\"env:a\"", "0.1")]
    );
    assert_eq!(
        run("m:1|c|#dd.internal.card:none"),
        [series("m", "rate", "h0", "", "0.1")]
    );
}

#[test]
fn flushes_run_at_multiples_of_the_interval_and_emit_closed_buckets_only() {
    let input = format!("@{}\ng:1|g\n@{}\ng:2|g\n@{}\n", T0 + 1, T0 + 12, T0 + 15);
    let (lines, stderr, ok) = run_with(&input, &[], &[]);
    assert!(ok, "{stderr}");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], series("g", "gauge", "h0", "", "1"));
    assert!(lines[1].contains(&format!("[[{},2]]", T0 + 10)));
    let (lines, _, _) = run_with(&input, &["--flush-interval", "60"], &[]);
    assert_eq!(lines.len(), 1, "one final flush: {lines:?}");
    assert!(lines[0].contains(&format!("[[{T0},1],[{},2]]", T0 + 10)));
}

#[test]
fn the_clock_must_not_go_back_and_must_be_set_first() {
    let (_, stderr, ok) = run_with(&format!("@{T0}\n@{}\n", T0 - 1), &[], &[]);
    assert!(
        !ok && stderr.contains("line 2") && stderr.contains("goes back"),
        "{stderr}"
    );
    let (_, stderr, ok) = run_with("m:1|c\n", &[], &[]);
    assert!(!ok && stderr.contains("set the clock first"), "{stderr}");
    let (_, stderr, ok) = run_with("@soon\n", &[], &[]);
    assert!(!ok && stderr.contains("@<unix_seconds>"), "{stderr}");
}

#[test]
fn settings_come_from_the_agent_environment_variables() {
    let env = [
        ("DD_HISTOGRAM_AGGREGATES", "max sum"),
        ("DD_HISTOGRAM_PERCENTILES", "0.5"),
        ("DD_STATSD_METRIC_NAMESPACE", "app"),
        ("DD_STATSD_METRIC_BLOCKLIST", "app.no app.nope"),
        ("DD_DOGSTATSD_TAGS", "env:prod team:a"),
        (
            "DD_DOGSTATSD_MAPPER_PROFILES",
            r#"[{"name":"p","prefix":"job.","mappings":[{"match":"job.*","name":"job","tags":{"kind":"$1"}}]}]"#,
        ),
    ];
    let (lines, stderr, ok) =
        run_with(&format!("@{T0}\nh:2|h\nno:1|c\njob.build:1|g\n"), &[], &env);
    assert!(ok, "{stderr}");
    let tags = "\"env:prod\",\"team:a\"";
    assert_eq!(
        lines,
        [
            series("app.h.50percentile", "gauge", "h0", tags, "2"),
            series("app.h.max", "gauge", "h0", tags, "2"),
            series("app.h.sum", "gauge", "h0", tags, "2"),
            series(
                "app.job",
                "gauge",
                "h0",
                "\"env:prod\",\"kind:build\",\"team:a\"",
                "1"
            ),
        ]
    );
    assert!(stderr.contains("1 blocklisted"), "{stderr}");
    let (_, stderr, ok) = run_with("", &[], &[("DD_DOGSTATSD_CONTEXT_LIMIT", "lots")]);
    assert!(
        !ok && stderr.contains("DD_DOGSTATSD_CONTEXT_LIMIT"),
        "{stderr}"
    );
}

#[test]
fn the_context_limit_variable_bounds_contexts() {
    let (lines, stderr, ok) = run_with(
        &format!("@{T0}\na:1|c\nb:1|c\nc:1|c\n"),
        &[],
        &[("DD_DOGSTATSD_CONTEXT_LIMIT", "2")],
    );
    assert!(ok, "{stderr}");
    assert_eq!(lines.len(), 2);
    assert!(stderr.contains("1 over the context limit"), "{stderr}");
}

#[test]
fn events_and_service_checks_are_enriched() {
    let (lines, stderr, ok) = run_with(
        &format!("@{T0}\n_e{{5,4}}:title|text|#host:h1,b,a\n_sc|db|2|#z,a|m:down\n"),
        &[],
        &[("DD_DOGSTATSD_TAGS", "env:prod")],
    );
    assert!(ok, "{stderr}");
    assert_eq!(
        lines,
        [
            format!(
                "{{\"kind\":\"event\",\"title\":\"title\",\"text\":\"text\",\"timestamp\":{T0},\"host\":\"h1\",\"aggregation_key\":null,\"priority\":\"normal\",\"source_type_name\":null,\"alert_type\":\"info\",\"tags\":[\"a\",\"b\",\"env:prod\"]}}"
            ),
            format!(
                "{{\"kind\":\"service_check\",\"name\":\"db\",\"status\":2,\"timestamp\":{T0},\"host\":\"h0\",\"message\":\"down\",\"tags\":[\"a\",\"env:prod\",\"z\"]}}"
            ),
        ]
    );
}

#[test]
fn huge_clock_jumps_and_extreme_clock_values_do_not_hang_or_panic() {
    let input = format!("@{T0}\nc:1|c\n@9223372036854775807\nm:1|g\n");
    let (lines, stderr, ok) = run_with(&input, &[], &[]);
    assert!(ok, "{stderr}");
    assert_eq!(lines[0], series("c", "rate", "h0", "", "0.1"));
    let (_, stderr, ok) = run_with(
        "@-9223372036854775808\nm:1|g\n@-9223372036854775808\n",
        &[],
        &[],
    );
    assert!(ok, "{stderr}");
    let (_, stderr, ok) = run_with(
        &format!("@{T0}\ng:1|g\n@{}\n", T0 + 100_000_000),
        &["--flush-interval", "1"],
        &[("DD_DOGSTATSD_CONTEXT_EXPIRY_SECONDS", "9000000000")],
    );
    assert!(
        !ok && stderr.contains("more than 1000000 flush intervals"),
        "{stderr}"
    );
}

#[test]
fn output_dir_serializes_every_flush_through_the_file_sink() {
    let dir = std::env::temp_dir().join(format!("dogpipe-aggregate-out-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let input = format!(
        "@{}\nc:1|c|#env:a\nd:2|d\n_sc|svc|0\n@{}\nc:1|c|#env:a\n",
        T0 + 1,
        T0 + 15
    );
    let (_, stderr, ok) = run_with(&input, &["--output-dir", dir.to_str().unwrap()], &[]);
    assert!(ok, "{stderr}");
    let index = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    let paths: Vec<String> = index
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for path in ["/api/v2/series", "/api/beta/sketches", "/api/v1/check_run"] {
        assert!(paths.iter().any(|p| p == path), "{path} in {paths:?}");
    }
    let decoded = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .arg("decode")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(decoded.status.success());
    let text = String::from_utf8(decoded.stdout).unwrap();
    assert!(
        text.contains("\"metric\":\"c\"") && text.contains("\"env:a\""),
        "{text}"
    );
    assert!(
        text.contains(&format!("[{T0},0.1]")),
        "the first bucket's rate: {text}"
    );
}
