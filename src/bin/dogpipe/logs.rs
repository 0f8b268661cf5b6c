//! `dogpipe logs decode`: decode container log files, one JSON object per message on stdout.

use crate::json::Obj;
use dogpipe::{
    Decoder, DecoderConfig, Encoding, LogFormat, LogMessage, ProcessingRules, RuleScope,
};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::time::Instant;

pub const USAGE: &str = "usage: dogpipe logs decode [--format auto|cri|docker|raw] \
[--encoding utf-8|utf-16-le|utf-16-be] [--max-message-bytes N] [--rules JSON] FILE...";

/// Bytes asked of the file per read.
const READ_BYTES: usize = 256 * 1024;

/// Runs `dogpipe logs <args>`.
pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("decode") => decode(args.get(1..).unwrap_or_default()),
        Some(other) => Err(format!("logs: unknown command `{other}`\n{USAGE}")),
        None => Err(USAGE.to_string()),
    }
}

fn decode(args: &[String]) -> Result<(), String> {
    let mut config = DecoderConfig::default();
    let mut files = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("logs decode: {name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--format" => {
                let name = value("--format")?;
                let format = LogFormat::from_name(name).ok_or_else(|| {
                    format!("logs decode: unknown format `{name}` (auto, cri, docker or raw)")
                })?;
                config = config.with_format(format);
            }
            "--encoding" => {
                let name = value("--encoding")?;
                let encoding = Encoding::from_name(name).ok_or_else(|| {
                    format!(
                        "logs decode: unknown encoding `{name}` (utf-8, utf-16-le or utf-16-be)"
                    )
                })?;
                config = config.with_encoding(encoding);
            }
            "--max-message-bytes" => {
                let n = value("--max-message-bytes")?;
                let n = n.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("logs decode: --max-message-bytes `{n}` is not a positive integer")
                })?;
                config = config.with_max_message_bytes(n);
            }
            "--rules" => {
                let rules = ProcessingRules::from_json(value("--rules")?, RuleScope::Source)
                    .map_err(|e| format!("logs decode: {e}"))?;
                config = config.with_rules(rules);
            }
            flag if flag.starts_with("--") => {
                return Err(format!("logs decode: unknown argument `{flag}`\n{USAGE}"));
            }
            file => files.push(file.to_string()),
        }
    }
    if files.is_empty() {
        return Err(format!("logs decode: no file given\n{USAGE}"));
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failed = 0;
    for path in &files {
        match decode_file(path, &config, &mut out) {
            Ok(summary) => eprintln!("dogpipe logs decode: {path}: {summary}"),
            Err(e) => {
                failed += 1;
                eprintln!("dogpipe logs decode: {path}: {e}");
            }
        }
    }
    out.flush()
        .map_err(|e| format!("logs decode: cannot write stdout: {e}"))?;
    if failed > 0 {
        return Err(format!(
            "logs decode: {failed} file(s) could not be decoded"
        ));
    }
    Ok(())
}

/// Decodes one file to `out`; returns a one-line summary.
fn decode_file(path: &str, config: &DecoderConfig, out: &mut impl Write) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut decoder = Decoder::new(config.clone());
    let mut buf = String::new();
    let mut write_error = None;
    let mut emit = |m: LogMessage<'_>| {
        if write_error.is_none() {
            buf.clear();
            render(&m, &mut buf);
            if let Err(e) = out.write_all(buf.as_bytes()) {
                write_error = Some(e);
            }
        }
    };
    while decoder.read_from(&mut file, READ_BYTES, Instant::now(), &mut emit)? > 0 {}
    decoder.finish(Instant::now(), &mut emit);
    if let Some(e) = write_error {
        return Err(e);
    }
    let s = decoder.stats();
    let mut summary = format!(
        "format {}, {} lines, {} messages, {} not parsed (passed through raw), {} bad timestamps, \
         {} empty, {} dropped by rules, {} truncated",
        decoder.format().as_str(),
        s.lines,
        s.messages,
        s.parse_fallbacks,
        s.invalid_timestamps,
        s.empty_dropped,
        s.rule_dropped,
        s.truncated
    );
    if decoder.pending_bytes() > 0 {
        summary.push_str(&format!(
            "; {} trailing bytes without a newline were not decoded",
            decoder.pending_bytes()
        ));
    }
    Ok(summary)
}

/// One message as the JSON object of the `logs decode` contract.
fn render(m: &LogMessage<'_>, out: &mut String) {
    let stream = m.stream().as_str();
    Obj::new(out)
        .str("message", m.content())
        .str("status", m.status().as_bytes())
        .opt_str("stream", (!stream.is_empty()).then_some(stream.as_bytes()))
        .opt_str("time", (!m.time().is_empty()).then_some(m.time()))
        .raw("truncated", if m.truncated() { "true" } else { "false" })
        .opt_int("offset", i64::try_from(m.end_offset()).ok())
        .end();
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_decode_contract() {
        let mut d = Decoder::new(DecoderConfig::default());
        let mut out = String::new();
        d.push(
            b"2024-05-01T12:00:00Z stderr F caf\xe9 \"x\"\n",
            Instant::now(),
            |m| render(&m, &mut out),
        );
        assert_eq!(
            out,
            "{\"message\":\"caf\u{fffd} \\\"x\\\"\",\"status\":\"error\",\"stream\":\"stderr\",\
             \"time\":\"2024-05-01T12:00:00Z\",\"truncated\":false,\"offset\":39}\n"
        );
    }

    #[test]
    fn plain_lines_have_no_stream_or_time() {
        let mut d = Decoder::new(DecoderConfig::default().with_format(LogFormat::Raw));
        let mut out = String::new();
        d.push(b"hi\n", Instant::now(), |m| render(&m, &mut out));
        assert_eq!(
            out,
            "{\"message\":\"hi\",\"status\":\"info\",\"stream\":null,\"time\":null,\"truncated\":false,\"offset\":3}\n"
        );
    }
}
