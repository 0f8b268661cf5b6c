//! `dogpipe parse`: DogStatsD packets on stdin, one JSON object per message on stdout.

use crate::json::Obj;
use dogpipe::{
    Event, Message, Metric, MetricType, ParserConfig, ServiceCheck, lines, parse_message,
};
use std::io::{self, BufWriter, Read, Write};

/// Runs the command; returns the process exit code.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut config = ParserConfig::default();
    for arg in args {
        match arg.as_str() {
            "--origin-detection-client" => config = config.with_origin_detection_client(true),
            other => return Err(format!("parse: unknown argument `{other}`\n{USAGE}")),
        }
    }
    let mut input = Vec::new();
    io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("parse: cannot read stdin: {e}"))?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (ok, bad) = render_all(&input, &config, &mut out)
        .map_err(|e| format!("parse: cannot write stdout: {e}"))?;
    eprintln!("dogpipe parse: {ok} ok, {bad} bad");
    Ok(())
}

pub const USAGE: &str = "usage: dogpipe parse [--origin-detection-client] < packets";

/// Renders every message of `input` (split as a datagram is); returns the ok and bad counts.
fn render_all(input: &[u8], config: &ParserConfig, out: &mut impl Write) -> io::Result<(u64, u64)> {
    let (mut ok, mut bad) = (0, 0);
    let mut buf = String::new();
    for line in lines(input) {
        buf.clear();
        match parse_message(line, config) {
            Ok(message) => {
                ok += 1;
                render(&message, &mut buf);
            }
            Err(e) => {
                bad += 1;
                Obj::new(&mut buf)
                    .str("kind", b"error")
                    .str("error", e.to_string().as_bytes())
                    .str("input", line)
                    .end();
            }
        }
        buf.push('\n');
        out.write_all(buf.as_bytes())?;
    }
    out.flush()?;
    Ok((ok, bad))
}

/// Renders one message as the JSON object of the `parse` contract.
pub fn render(message: &Message<'_>, out: &mut String) {
    match message {
        Message::Metric(m) => metric(m, out),
        Message::Event(e) => event(e, out),
        Message::ServiceCheck(sc) => service_check(sc, out),
    }
}

fn metric(m: &Metric<'_>, out: &mut String) {
    let mut o = Obj::new(out);
    o.str("kind", b"metric")
        .str("name", m.name())
        .str("type", m.metric_type().as_str().as_bytes());
    match m.set_member() {
        Some(member) if m.metric_type() == MetricType::Set => o.str_array("values", [member]),
        _ => o.num_array("values", m.values()),
    };
    let origin = m.origin();
    o.num("sample_rate", m.sample_rate())
        .str_array("tags", m.tags())
        .opt_int("timestamp", m.timestamp())
        .opt_str("container_id", origin.local_data())
        .opt_str("external_data", origin.external_data())
        .opt_str("cardinality", origin.cardinality_raw())
        .end();
}

fn event(e: &Event<'_>, out: &mut String) {
    Obj::new(out)
        .str("kind", b"event")
        .str("title", &e.title())
        .str("text", &e.text())
        .opt_int("timestamp", e.timestamp())
        .opt_str("hostname", e.hostname())
        .opt_str("aggregation_key", e.aggregation_key())
        .str("priority", e.priority().as_str().as_bytes())
        .opt_str("source_type_name", e.source_type_name())
        .str("alert_type", e.alert_type().as_str().as_bytes())
        .str_array("tags", e.tags())
        .end();
}

fn service_check(sc: &ServiceCheck<'_>, out: &mut String) {
    Obj::new(out)
        .str("kind", b"service_check")
        .str("name", sc.name())
        .opt_int("status", Some(i64::from(sc.status().as_u8())))
        .opt_int("timestamp", sc.timestamp())
        .opt_str("hostname", sc.hostname())
        .opt_str("message", sc.message())
        .str_array("tags", sc.tags())
        .end();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_str(input: &[u8]) -> String {
        let mut out = Vec::new();
        render_all(input, &ParserConfig::default(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn renders_non_finite_values_as_strings() {
        assert_eq!(
            render_str(b"m:NaN:Inf:-Inf:1.5|g"),
            "{\"kind\":\"metric\",\"name\":\"m\",\"type\":\"gauge\",\"values\":[\"NaN\",\"Inf\",\"-Inf\",1.5],\"sample_rate\":1,\"tags\":[],\"timestamp\":null,\"container_id\":null,\"external_data\":null,\"cardinality\":null}\n"
        );
    }

    #[test]
    fn renders_invalid_utf8_lossily_and_escapes_controls() {
        let out = render_str(b"m\xff\x01\"x:1|c");
        assert!(out.contains("\"name\":\"m\u{fffd}\\u0001\\\"x\""), "{out}");
    }
}
