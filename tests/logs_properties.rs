//! Property tests of the log parsers and the partial-line merger against naive models.

use dogpipe::{Decoder, DecoderConfig, LineFramer, LogFormat, Stream, parse_cri, parse_docker};
use proptest::prelude::*;
use std::time::Instant;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// CRI-shaped lines: fields from a small alphabet rich in spaces and tags.
fn cri_line() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b" ".to_vec()),
            Just(b"stdout".to_vec()),
            Just(b"stderr".to_vec()),
            Just(b"P".to_vec()),
            Just(b"F".to_vec()),
            Just(b"2024-05-01T12:00:00.5Z".to_vec()),
            prop::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..4),
        ],
        0..10,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn property_test_cri_parser_matches_a_naive_splitn(line in cri_line()) {
        let parts: Vec<&[u8]> = line.splitn(4, |b| *b == b' ').collect();
        match parse_cri(&line) {
            Ok(cri) => {
                prop_assert!(parts.len() >= 3);
                prop_assert_eq!(cri.time(), parts[0]);
                prop_assert_eq!(cri.stream_field(), parts[1]);
                prop_assert_eq!(cri.tag(), parts[2]);
                prop_assert_eq!(cri.content(), parts.get(3).copied().unwrap_or(b""));
                prop_assert_eq!(cri.is_partial(), parts[2] == b"P");
                let stream = match parts[1] {
                    b"stdout" => Stream::Stdout,
                    b"stderr" => Stream::Stderr,
                    _ => Stream::Unknown,
                };
                prop_assert_eq!(cri.stream(), stream);
            }
            Err(_) => prop_assert!(parts.len() < 3),
        }
    }
}

/// A JSON value of an unknown field.
#[derive(Debug, Clone)]
enum Value {
    Str(String),
    Null,
    Num(&'static str),
    Bool(bool),
    Obj(Vec<(String, Value)>),
    Arr(Vec<Value>),
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('a'),
            Just(' '),
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just('\t'),
            Just('\u{1}'),
            Just('<'),
            Just('é'),
            Just('\u{2028}'),
            Just('😀'),
            Just('/'),
        ],
        0..12,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        text().prop_map(Value::Str),
        Just(Value::Null),
        prop_oneof![Just("0"), Just("-1.5e3"), Just("42")].prop_map(Value::Num),
        any::<bool>().prop_map(Value::Bool),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(("[a-z]{1,3}", inner.clone()), 0..3).prop_map(Value::Obj),
            prop::collection::vec(inner, 0..3).prop_map(Value::Arr),
        ]
    })
}

/// Encodes a string as JSON; `style` picks, per character, raw or escaped forms.
fn encode_str(s: &str, style: &[u8], out: &mut String) {
    out.push('"');
    for (i, c) in s.chars().enumerate() {
        let pick = style.get(i % style.len().max(1)).copied().unwrap_or(0) % 3;
        match (c, pick) {
            ('"', _) => out.push_str("\\\""),
            ('\\', _) => out.push_str("\\\\"),
            ('\n', 0 | 1) => out.push_str("\\n"),
            ('\t', 0 | 1) => out.push_str("\\t"),
            (c, p) if (c as u32) < 0x20 || p == 2 => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            }
            (c, _) => out.push(c),
        }
    }
    out.push('"');
}

fn encode(v: &Value, style: &[u8], out: &mut String) {
    match v {
        Value::Str(s) => encode_str(s, style, out),
        Value::Null => out.push_str("null"),
        Value::Num(n) => out.push_str(n),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Obj(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_str(k, style, out);
                out.push_str(" : ");
                encode(v, style, out);
            }
            out.push('}');
        }
        Value::Arr(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                encode(v, style, out);
            }
            out.push(']');
        }
    }
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("log"),
        Just("LOG"),
        Just("Log"),
        Just("stream"),
        Just("Stream"),
        Just("time"),
        Just("TIME"),
        Just("attrs"),
        Just("x"),
    ]
    .prop_map(str::to_string)
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => text().prop_map(Value::Str),
        2 => prop_oneof![Just("stdout"), Just("stderr"), Just("weird")]
            .prop_map(|s| Value::Str(s.to_string())),
        1 => Just(Value::Null),
        1 => value(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn property_test_docker_parser_matches_a_model_of_go_decoding(
        fields in prop::collection::vec((key(), field_value()), 0..6),
        style in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let mut line = String::new();
        encode(&Value::Obj(fields.clone()), &style, &mut line);
        // The model: the last non-null string of each field, matched case-insensitively.
        let (mut log, mut stream, mut time, mut wrong_type) = (None, None, None, false);
        for (k, v) in &fields {
            let slot = match k.to_ascii_lowercase().as_str() {
                "log" => &mut log,
                "stream" => &mut stream,
                "time" => &mut time,
                _ => continue,
            };
            match v {
                Value::Str(s) => *slot = Some(s.clone()),
                Value::Null => {}
                _ => wrong_type = true,
            }
        }
        let parsed = parse_docker(line.as_bytes());
        if wrong_type {
            prop_assert!(parsed.is_err(), "{}", line);
            return Ok(());
        }
        let parsed = parsed.map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        let log = log.unwrap_or_default();
        let content = log.strip_suffix('\n').unwrap_or(&log);
        prop_assert_eq!(parsed.content(), content.as_bytes(), "{}", line);
        prop_assert_eq!(parsed.is_partial(), !log.ends_with('\n') && !log.is_empty());
        let expected_stream = match stream.as_deref() {
            Some("stdout") => Stream::Stdout,
            Some("stderr") => Stream::Stderr,
            _ => Stream::Unknown,
        };
        prop_assert_eq!(parsed.stream(), expected_stream);
        let time = time.unwrap_or_default();
        prop_assert_eq!(parsed.time(), time.as_bytes());
    }

    #[test]
    fn property_test_docker_parser_accepts_what_serde_json_accepts(
        line in prop::collection::vec(
            prop_oneof![
                Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b'"'), Just(b':'),
                Just(b','), Just(b'\\'), Just(b' '), Just(b'1'), Just(b'-'), Just(b'.'),
                Just(b'e'), Just(b'n'), Just(b'u'), Just(b'l'), Just(b'x'), Just(b't'),
            ],
            0..24,
        )
    ) {
        // Apart from invalid UTF-8 and lone surrogates (replaced by Go, absent here) and the
        // depth limit, Go's and serde_json's JSON grammars agree.
        let reference = serde_json::from_slice::<serde_json::Value>(&line);
        let ours = parse_docker(&line);
        match reference {
            Ok(serde_json::Value::Object(map)) => {
                let strings = map.iter().all(|(k, v)| {
                    !["log", "stream", "time"].contains(&k.to_ascii_lowercase().as_str())
                        || v.is_string() || v.is_null()
                });
                prop_assert_eq!(ours.is_ok(), strings, "{}", String::from_utf8_lossy(&line));
            }
            Ok(_) => prop_assert!(ours.is_err()),
            Err(e) if e.is_syntax() || e.is_eof() => prop_assert!(ours.is_err(), "{}", String::from_utf8_lossy(&line)),
            Err(_) => {}
        }
    }
}

/// Lines of content that survive trimming unchanged.
fn lines() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z0-9][a-z0-9 \"\\\\]{0,30}[a-z0-9]", 1..12)
}

/// Splits each line into 1..=4 chunks at arbitrary byte positions.
fn split(lines: &[String], cuts: &[usize]) -> Vec<Vec<String>> {
    let mut cut = cuts.iter().cycle();
    lines
        .iter()
        .map(|l| {
            let n = 1 + cut.next().copied().unwrap_or(0) % 4;
            let mut points: Vec<usize> = (1..n)
                .map(|_| cut.next().copied().unwrap_or(0) % (l.len() + 1))
                .collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for p in points {
                chunks.push(l[start..p].to_string());
                start = p;
            }
            chunks.push(l[start..].to_string());
            chunks
        })
        .collect()
}

fn decode(format: LogFormat, input: &[u8], reads: &[usize]) -> Vec<(String, u64)> {
    let mut decoder = Decoder::new(DecoderConfig::default().with_format(format));
    let now = Instant::now();
    let mut out = Vec::new();
    let mut rest = input;
    let mut sizes = reads.iter().cycle();
    while !rest.is_empty() {
        let n = (1 + sizes.next().copied().unwrap_or(0)).min(rest.len());
        let (read, tail) = rest.split_at(n);
        decoder.push(read, now, |m| {
            out.push((
                String::from_utf8_lossy(m.content()).into_owned(),
                m.end_offset(),
            ))
        });
        rest = tail;
    }
    assert_eq!(decoder.settled_offset(), input.len() as u64);
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn property_test_cri_partial_chunks_merge_back_into_the_lines(
        lines in lines(),
        cuts in prop::collection::vec(any::<usize>(), 1..16),
        reads in prop::collection::vec(0usize..200, 1..8),
    ) {
        let mut input = String::new();
        let mut ends = Vec::new();
        for chunks in split(&lines, &cuts) {
            let last = chunks.len() - 1;
            for (i, c) in chunks.iter().enumerate() {
                let tag = if i == last { "F" } else { "P" };
                input.push_str(&format!("2024-05-01T12:00:00Z stdout {tag} {c}\n"));
            }
            ends.push(input.len() as u64);
        }
        let expected: Vec<(String, u64)> = lines.into_iter().zip(ends).collect();
        prop_assert_eq!(decode(LogFormat::Cri, input.as_bytes(), &reads), expected);
    }

    #[test]
    fn property_test_docker_partial_chunks_merge_back_into_the_lines(
        lines in lines(),
        cuts in prop::collection::vec(any::<usize>(), 1..16),
        reads in prop::collection::vec(0usize..200, 1..8),
    ) {
        let mut input = String::new();
        let mut ends = Vec::new();
        for chunks in split(&lines, &cuts) {
            let last = chunks.len() - 1;
            for (i, c) in chunks.iter().enumerate() {
                // dockerd never writes an empty chunk.
                if c.is_empty() && i != last {
                    continue;
                }
                let mut log = c.clone();
                if i == last {
                    log.push('\n');
                }
                let mut encoded = String::new();
                encode_str(&log, &[0], &mut encoded);
                input.push_str(&format!("{{\"log\":{encoded},\"stream\":\"stdout\",\"time\":\"t\"}}\n"));
            }
            ends.push(input.len() as u64);
        }
        let expected: Vec<(String, u64)> = lines.into_iter().zip(ends).collect();
        prop_assert_eq!(decode(LogFormat::Docker, input.as_bytes(), &reads), expected);
    }

    #[test]
    fn property_test_framing_does_not_depend_on_read_sizes(
        input in prop::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), Just(b'\r')], 0..200),
        max in 1usize..12,
        reads in prop::collection::vec(1usize..20, 1..8),
    ) {
        let frames = |sizes: &[usize]| {
            let mut framer = LineFramer::new(max);
            let mut out = Vec::new();
            let mut rest = &input[..];
            let mut sizes = sizes.iter().cycle();
            while !rest.is_empty() {
                let n = sizes.next().copied().unwrap_or(1).min(rest.len());
                framer.push(&rest[..n]);
                rest = &rest[n..];
                while let Some(f) = framer.next_frame() {
                    out.push((f.bytes().to_vec(), f.end_offset(), f.truncated()));
                }
            }
            out
        };
        let borrowed_frames = |sizes: &[usize]| {
            let mut framer = LineFramer::new(max);
            let mut out = Vec::new();
            let mut rest = &input[..];
            let mut sizes = sizes.iter().cycle();
            while !rest.is_empty() {
                let n = sizes.next().copied().unwrap_or(1).min(rest.len());
                framer.push_with(&rest[..n], |f| {
                    out.push((f.bytes().to_vec(), f.end_offset(), f.truncated()))
                });
                rest = &rest[n..];
            }
            out
        };
        let whole = frames(&[input.len().max(1)]);
        prop_assert_eq!(frames(&reads), whole.clone());
        prop_assert_eq!(borrowed_frames(&reads), whole.clone());
        // The naive model: split on LF, then cut every line into pieces of `max`.
        let mut model = Vec::new();
        let mut offset = 0u64;
        let complete = input.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for line in input[..complete].split(|b| *b == b'\n').take(input[..complete].iter().filter(|b| **b == b'\n').count()) {
            let mut rest = line;
            while rest.len() > max {
                offset += max as u64;
                model.push((rest[..max].to_vec(), offset, true));
                rest = &rest[max..];
            }
            offset += rest.len() as u64 + 1;
            model.push((rest.to_vec(), offset, false));
        }
        // Cuts of the unterminated tail are emitted too.
        let mut tail = &input[complete..];
        while tail.len() > max {
            offset += max as u64;
            model.push((tail[..max].to_vec(), offset, true));
            tail = &tail[max..];
        }
        prop_assert_eq!(whole, model);
    }
}
