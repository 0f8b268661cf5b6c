//! `dogpipe aggregate`: a deterministic replay of what the aggregator would send.
//!
//! stdin holds DogStatsD messages, one per line, and clock lines `@<unix_seconds>`. A flush runs
//! at every multiple of the flush interval the clock reaches; at the end of input a final flush
//! includes the open buckets. Output: one JSON object per series, sketch, event or service check.

use crate::json::Obj;
use dogpipe::{
    AggregateStats, Aggregator, AggregatorConfig, EventRecord, Flush, ParserConfig, Series,
    ServiceCheckRecord, Sketch, parse_message,
};
use std::io::{self, BufRead, BufWriter, Write};

pub const USAGE: &str =
    "usage: dogpipe aggregate [--flush-interval SECONDS] [--hostname HOST] [--output-dir DIR] < input
  input lines: `@<unix_seconds>` sets the clock (never backwards); any other non-empty line is a
  DogStatsD message arriving at the current time.
  --output-dir DIR: also serialize every flush through the real serializer into DIR with the
  file sink (body files + requests.jsonl; read them back with `dogpipe decode DIR`).
  environment: DD_HOSTNAME, DD_HISTOGRAM_AGGREGATES, DD_HISTOGRAM_PERCENTILES,
  DD_DOGSTATSD_MAPPER_PROFILES, DD_STATSD_METRIC_NAMESPACE, DD_STATSD_METRIC_BLOCKLIST,
  DD_STATSD_METRIC_BLOCKLIST_MATCH_PREFIX, DD_DOGSTATSD_TAGS, DD_DOGSTATSD_EXPIRY_SECONDS,
  DD_DOGSTATSD_CONTEXT_EXPIRY_SECONDS, DD_DOGSTATSD_CONTEXT_LIMIT";

/// Most flushes one clock line may cause while contexts are alive (a guard against a typo such
/// as `@17000000000` running for hours).
const MAX_FLUSHES_PER_STEP: u32 = 1_000_000;

/// Default of `--flush-interval`: the Agent's flush period.
const DEFAULT_FLUSH_SECONDS: i64 = 15;

/// Runs the command.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut flush_interval = DEFAULT_FLUSH_SECONDS;
    let mut hostname: Option<String> = None;
    let mut output_dir: Option<std::path::PathBuf> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--flush-interval" => {
                let v = args
                    .next()
                    .ok_or("aggregate: --flush-interval needs a value")?;
                flush_interval = v.parse::<i64>().ok().filter(|&s| s > 0).ok_or_else(|| {
                    format!("aggregate: --flush-interval `{v}` is not a positive number of seconds")
                })?;
            }
            "--hostname" => {
                hostname = Some(
                    args.next()
                        .ok_or("aggregate: --hostname needs a value")?
                        .clone(),
                );
            }
            "--output-dir" => {
                output_dir = Some(
                    args.next()
                        .ok_or("aggregate: --output-dir needs a directory")?
                        .into(),
                );
            }
            other => return Err(format!("aggregate: unknown argument `{other}`\n{USAGE}")),
        }
    }
    let config = config_from_env(|k| std::env::var(k).ok(), hostname)?;
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut ship = match &output_dir {
        None => None,
        Some(dir) => {
            let serializer =
                dogpipe::SerializerConfig::from_env().map_err(|e| format!("aggregate: {e}"))?;
            let sink = dogpipe::FileSink::create(dir).map_err(|e| format!("aggregate: {e}"))?;
            Some((dogpipe::Serializer::new(serializer), sink))
        }
    };
    let mut on_flush = |flush: &Flush| -> Result<(), String> {
        if let Some((serializer, sink)) = ship.as_mut() {
            dogpipe::write_flush(serializer, flush, sink)
                .map_err(|e| format!("aggregate: cannot write the payloads: {e}"))?;
        }
        Ok(())
    };
    let summary = replay(
        stdin.lock(),
        config,
        flush_interval,
        &mut out,
        &mut on_flush,
    )?;
    out.flush()
        .map_err(|e| format!("aggregate: cannot write stdout: {e}"))?;
    eprintln!("dogpipe aggregate: {summary}");
    Ok(())
}

/// Builds the configuration from `DD_*` variables (read through `var`) and `--hostname`.
pub fn config_from_env(
    var: impl Fn(&str) -> Option<String>,
    hostname: Option<String>,
) -> Result<AggregatorConfig, String> {
    AggregatorConfig::from_lookup(var, hostname).map_err(|e| e.to_string())
}

/// Replays `input`; returns a one-line summary for stderr.
pub fn replay(
    input: impl BufRead,
    config: AggregatorConfig,
    flush_interval: i64,
    out: &mut impl Write,
    on_flush: &mut dyn FnMut(&Flush) -> Result<(), String>,
) -> Result<String, String> {
    let parser = ParserConfig::default();
    let mut agg = Aggregator::new(config);
    let mut clock: Option<i64> = None;
    let (mut messages, mut bad) = (0u64, 0u64);
    let mut buf = String::new();
    let write_err = |e: io::Error| format!("aggregate: cannot write stdout: {e}");
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("aggregate: cannot read stdin: {e}"))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.is_empty() {
            continue;
        }
        if let Some(t) = line.strip_prefix(b"@") {
            let t = std::str::from_utf8(t)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    format!(
                        "aggregate: line {}: `{}` is not @<unix_seconds>",
                        n + 1,
                        String::from_utf8_lossy(line)
                    )
                })?;
            if let Some(now) = clock {
                if t < now {
                    return Err(format!(
                        "aggregate: line {}: the clock goes back from {now} to {t}",
                        n + 1
                    ));
                }
                // A flush at every multiple of the interval in (now, t]. Once no context is
                // alive the remaining flushes would emit nothing: skip to the last one.
                let last = t.div_euclid(flush_interval).saturating_mul(flush_interval);
                let mut next = (now.div_euclid(flush_interval) + 1).saturating_mul(flush_interval);
                let mut flushes = 0u32;
                while next <= t {
                    let flush = agg.flush(next);
                    write_flush(&flush, &mut buf, out).map_err(write_err)?;
                    on_flush(&flush)?;
                    flushes += 1;
                    if flushes >= MAX_FLUSHES_PER_STEP {
                        return Err(format!(
                            "aggregate: line {}: the clock jumps over more than {MAX_FLUSHES_PER_STEP} flush intervals while contexts are alive",
                            n + 1
                        ));
                    }
                    next = if agg.stats().live_contexts == 0 && next < last {
                        last
                    } else {
                        next.saturating_add(flush_interval)
                    };
                    if next == i64::MAX {
                        break;
                    }
                }
            }
            clock = Some(t);
            continue;
        }
        let Some(now) = clock else {
            return Err(format!(
                "aggregate: line {}: a message before the first @<unix_seconds> line: set the clock first",
                n + 1
            ));
        };
        match parse_message(line, &parser) {
            Ok(m) => {
                messages += 1;
                agg.insert(&m, now);
            }
            Err(_) => bad += 1,
        }
    }
    if let Some(now) = clock {
        let flush = agg.flush_all(now);
        write_flush(&flush, &mut buf, out).map_err(write_err)?;
        on_flush(&flush)?;
    }
    Ok(summary(messages, bad, &agg.stats()))
}

fn summary(messages: u64, bad: u64, s: &AggregateStats) -> String {
    format!(
        "{messages} messages, {bad} bad; {} samples aggregated, {} timestamped, {} events, {} service checks; \
         dropped: {} non-finite, {} blocklisted, {} over the context limit, {} unsupported timestamped; \
         {} rates taken as 1; {} contexts live",
        s.samples,
        s.timestamped,
        s.events,
        s.service_checks,
        s.non_finite,
        s.blocklisted,
        s.context_limit,
        s.unsupported_timestamped,
        s.rate_clamped,
        s.live_contexts,
    )
}

/// Writes a flush: series and sketches sorted by name, host and tags; then events and service
/// checks in arrival order.
fn write_flush(f: &Flush, buf: &mut String, out: &mut impl Write) -> io::Result<()> {
    let mut series: Vec<&Series> = f.series.iter().collect();
    series.sort_by(|a, b| {
        (
            &a.name,
            &a.host,
            &a.tags,
            a.kind.as_str(),
            a.points.first().map(|p| p.timestamp),
        )
            .cmp(&(
                &b.name,
                &b.host,
                &b.tags,
                b.kind.as_str(),
                b.points.first().map(|p| p.timestamp),
            ))
    });
    let mut sketches: Vec<&Sketch> = f.sketches.iter().collect();
    sketches.sort_by(|a, b| (&a.name, &a.host, &a.tags).cmp(&(&b.name, &b.host, &b.tags)));
    for s in series {
        buf.clear();
        render_series(s, buf);
        buf.push('\n');
        out.write_all(buf.as_bytes())?;
    }
    for s in sketches {
        buf.clear();
        render_sketch(s, buf);
        buf.push('\n');
        out.write_all(buf.as_bytes())?;
    }
    for e in &f.events {
        buf.clear();
        render_event(e, buf);
        buf.push('\n');
        out.write_all(buf.as_bytes())?;
    }
    for sc in &f.service_checks {
        buf.clear();
        render_service_check(sc, buf);
        buf.push('\n');
        out.write_all(buf.as_bytes())?;
    }
    Ok(())
}

fn render_series(s: &Series, out: &mut String) {
    let mut points = String::from("[");
    for (i, p) in s.points.iter().enumerate() {
        if i > 0 {
            points.push(',');
        }
        points.push_str(&format!("[{},", p.timestamp));
        crate::json::number(&mut points, p.value);
        points.push(']');
    }
    points.push(']');
    Obj::new(out)
        .str("kind", b"series")
        .str("metric", &s.name)
        .str("type", s.kind.as_str().as_bytes())
        .opt_int("interval", Some(i64::from(s.interval)))
        .str("host", &s.host)
        .str_array("tags", s.tags.iter())
        .raw("points", &points)
        .end();
}

fn render_sketch(s: &Sketch, out: &mut String) {
    let mut points = String::from("[");
    for (i, p) in s.points.iter().enumerate() {
        if i > 0 {
            points.push(',');
        }
        let keys: Vec<String> = p.keys.iter().map(i32::to_string).collect();
        let counts: Vec<String> = p.counts.iter().map(u32::to_string).collect();
        Obj::new(&mut points)
            .opt_int("ts", Some(p.timestamp))
            .opt_int("cnt", Some(p.count))
            .num("min", p.min)
            .num("max", p.max)
            .num("avg", p.avg)
            .num("sum", p.sum)
            .raw("k", &format!("[{}]", keys.join(",")))
            .raw("n", &format!("[{}]", counts.join(",")))
            .end();
    }
    points.push(']');
    Obj::new(out)
        .str("kind", b"sketch")
        .str("metric", &s.name)
        .str("host", &s.host)
        .str_array("tags", s.tags.iter())
        .raw("points", &points)
        .end();
}

fn render_event(e: &EventRecord, out: &mut String) {
    Obj::new(out)
        .str("kind", b"event")
        .str("title", &e.title)
        .str("text", &e.text)
        .opt_int("timestamp", Some(e.timestamp))
        .str("host", &e.host)
        .opt_str("aggregation_key", e.aggregation_key.as_deref())
        .str("priority", e.priority.as_str().as_bytes())
        .opt_str("source_type_name", e.source_type_name.as_deref())
        .str("alert_type", e.alert_type.as_str().as_bytes())
        .str_array("tags", e.tags.iter())
        .end();
}

fn render_service_check(sc: &ServiceCheckRecord, out: &mut String) {
    Obj::new(out)
        .str("kind", b"service_check")
        .str("name", &sc.name)
        .opt_int("status", Some(i64::from(sc.status.as_u8())))
        .opt_int("timestamp", Some(sc.timestamp))
        .str("host", &sc.host)
        .opt_str("message", sc.message.as_deref())
        .str_array("tags", sc.tags.iter())
        .end();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn invalid_variables_are_errors_naming_the_variable() {
        for (name, value) in [
            ("DD_HISTOGRAM_AGGREGATES", "max p99"),
            ("DD_HISTOGRAM_PERCENTILES", "0.95 1.5"),
            ("DD_HISTOGRAM_PERCENTILES", "x"),
            ("DD_DOGSTATSD_MAPPER_PROFILES", "[{]"),
            ("DD_STATSD_METRIC_BLOCKLIST_MATCH_PREFIX", "maybe"),
            ("DD_DOGSTATSD_EXPIRY_SECONDS", "-1"),
            ("DD_DOGSTATSD_CONTEXT_EXPIRY_SECONDS", "soon"),
            ("DD_DOGSTATSD_CONTEXT_LIMIT", "many"),
            ("DOGPIPE_KNOWN_LINES", "-3"),
        ] {
            let e = config_from_env(env(&[(name, value)]), Some("h".into())).unwrap_err();
            assert!(e.starts_with(name), "{e}");
        }
    }

    #[test]
    fn hostname_flag_beats_the_variable() {
        let c = config_from_env(env(&[("DD_HOSTNAME", "env-host")]), Some("flag".into())).unwrap();
        assert_eq!(c.hostname(), b"flag");
        let c = config_from_env(env(&[("DD_HOSTNAME", "env-host")]), None).unwrap();
        assert_eq!(c.hostname(), b"env-host");
    }
}
