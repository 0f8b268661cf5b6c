//! The decoding vectors of `shared/spec/logs.md` §9 (numbers in test names), through the public
//! `Decoder`, each fed whole, byte by byte and in 7-byte reads.

use dogpipe::{
    Decoder, DecoderConfig, Encoding, LogFormat, OwnedLogMessage, ProcessingRules, RuleScope,
};
use std::time::{Duration, Instant};

const TS: &str = "2024-05-01T12:00:00.123456789Z";
const OUT: &str = r#","stream":"stdout","time":"2024-05-01T12:00:00.1Z"}"#;
const ERR: &str = r#","stream":"stderr","time":"2024-05-01T12:00:00.1Z"}"#;

/// Messages before and after an idle second, and the settled offset at the end.
#[derive(Debug, PartialEq)]
struct Run {
    now: Vec<OwnedLogMessage>,
    after_idle: Vec<OwnedLogMessage>,
    settled: u64,
}

fn run_in_reads(config: &DecoderConfig, input: &[u8], read: usize) -> Run {
    let mut decoder = Decoder::new(config.clone());
    let start = Instant::now();
    let mut now = Vec::new();
    for chunk in input.chunks(read.max(1)) {
        decoder.push(chunk, start, |m| now.push(m.to_owned()));
    }
    let mut after_idle = Vec::new();
    decoder.poll(start + Duration::from_millis(999), |m| {
        after_idle.push(m.to_owned())
    });
    assert!(
        after_idle.is_empty(),
        "nothing is flushed before the timeout"
    );
    decoder.poll(start + Duration::from_millis(1000), |m| {
        after_idle.push(m.to_owned())
    });
    decoder.poll(start + Duration::from_millis(2000), |m| {
        after_idle.push(m.to_owned())
    });
    Run {
        now,
        after_idle,
        settled: decoder.settled_offset(),
    }
}

fn run(config: DecoderConfig, input: &[u8]) -> Run {
    let whole = run_in_reads(&config, input, input.len());
    assert_eq!(run_in_reads(&config, input, 1), whole, "byte by byte");
    assert_eq!(run_in_reads(&config, input, 7), whole, "7-byte reads");
    whole
}

fn contents(messages: &[OwnedLogMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.content).into_owned())
        .collect()
}

fn statuses(messages: &[OwnedLogMessage]) -> Vec<&'static str> {
    messages.iter().map(|m| m.as_message().status()).collect()
}

fn docker(input: &str) -> Run {
    run(
        DecoderConfig::default().with_format(LogFormat::Docker),
        input.as_bytes(),
    )
}

fn cri(input: &[u8]) -> Run {
    run(DecoderConfig::default().with_format(LogFormat::Cri), input)
}

fn raw(max: usize, input: &[u8]) -> Run {
    run(
        DecoderConfig::default()
            .with_format(LogFormat::Raw)
            .with_max_message_bytes(max),
        input,
    )
}

fn one(r: &Run) -> (String, &'static str) {
    assert_eq!(r.now.len(), 1, "{r:?}");
    assert!(r.after_idle.is_empty(), "{r:?}");
    (contents(&r.now).remove(0), statuses(&r.now)[0])
}

#[test]
fn vector_01_docker_stdout_line() {
    let input = format!("{{\"log\":\"hello\\n\"{OUT}\n");
    let r = docker(&input);
    assert_eq!(one(&r), ("hello".into(), "info"));
    assert_eq!(r.now[0].end_offset, input.len() as u64);
    assert_eq!(r.now[0].time, b"2024-05-01T12:00:00.1Z");
}

#[test]
fn vector_02_docker_stderr_is_error() {
    assert_eq!(
        one(&docker(&format!("{{\"log\":\"boom\\n\"{ERR}\n"))),
        ("boom".into(), "error")
    );
}

#[test]
fn vector_03_04_unknown_or_missing_stream_is_info() {
    let r = docker("{\"log\":\"x\\n\",\"stream\":\"weird\",\"time\":\"t\"}\n");
    assert_eq!(one(&r), ("x".into(), "info"));
    assert_eq!(
        one(&docker("{\"log\":\"x\\n\",\"time\":\"t\"}\n")),
        ("x".into(), "info")
    );
}

#[test]
fn vector_05_06_docker_partials_merge_without_separator_with_the_last_status() {
    let input = format!("{{\"log\":\"abc\"{OUT}\n{{\"log\":\"def\\n\"{OUT}\n");
    let r = docker(&input);
    assert_eq!(one(&r), ("abcdef".into(), "info"));
    assert_eq!(r.now[0].end_offset, input.len() as u64);
    let r = docker(&format!(
        "{{\"log\":\"abc\"{OUT}\n{{\"log\":\"def\\n\"{ERR}\n"
    ));
    assert_eq!(one(&r), ("abcdef".into(), "error"));
}

#[test]
fn vector_07_08_docker_unescaping() {
    let r = docker(&format!(
        "{{\"log\":\"a\\u0009b \\u00e9 \\ud83d\\ude00\\n\"{OUT}\n"
    ));
    assert_eq!(one(&r).0, "a\tb é 😀");
    assert_eq!(
        one(&docker(&format!("{{\"log\":\"l1\\nl2\\n\"{OUT}\n"))).0,
        "l1\nl2"
    );
}

#[test]
fn vector_09_an_empty_docker_line_is_dropped_but_its_bytes_are_counted() {
    let input = format!("{{\"log\":\"\\n\"{OUT}\n");
    let r = docker(&input);
    assert!(r.now.is_empty() && r.after_idle.is_empty());
    assert_eq!(
        r.settled,
        input.len() as u64,
        "no offset drift (spec §2.4, §11)"
    );
}

#[test]
fn vector_10_11_docker_white_space_is_trimmed() {
    assert_eq!(
        one(&docker(&format!("{{\"log\":\"hello\\r\\n\"{OUT}\n"))).0,
        "hello"
    );
    assert_eq!(
        one(&docker(&format!("{{\"log\":\"  padded\\t \\n\"{OUT}\n"))).0,
        "padded"
    );
}

#[test]
fn vector_12_13_14_docker_html_escapes_replacement_and_lone_surrogates() {
    assert_eq!(
        one(&docker(&format!(
            "{{\"log\":\"\\u003cb\\u003e \\u0026\\n\"{OUT}\n"
        )))
        .0,
        "<b> &"
    );
    assert_eq!(
        one(&docker(&format!("{{\"log\":\"bad \\ufffd b\\n\"{OUT}\n"))).0,
        "bad \u{fffd} b"
    );
    assert_eq!(
        one(&docker(&format!("{{\"log\":\"lone \\ud800\\n\"{OUT}\n"))).0,
        "lone \u{fffd}"
    );
}

#[test]
fn vector_15_16_17_invalid_docker_lines_pass_through_raw_as_info() {
    assert_eq!(
        one(&docker("not json at all\n")),
        ("not json at all".into(), "info")
    );
    assert_eq!(one(&docker("null\n")), ("null".into(), "info"));
    assert_eq!(
        one(&docker("e\\n\",\"stream\":\"stdout\",\"time\":\"x\"}\n")),
        (r#"e\n","stream":"stdout","time":"x"}"#.into(), "info")
    );
}

#[test]
fn vector_18_docker_keys_are_case_insensitive() {
    assert_eq!(
        one(&docker("{\"LOG\":\"x\\n\",\"Stream\":\"stderr\"}\n")),
        ("x".into(), "error")
    );
}

#[test]
fn vector_19_a_docker_partial_is_flushed_after_one_idle_second() {
    let input = format!("{{\"log\":\"prompt> \"{OUT}\n");
    let r = docker(&input);
    assert!(r.now.is_empty());
    assert_eq!(contents(&r.after_idle), ["prompt>"]);
    assert_eq!(r.after_idle[0].end_offset, input.len() as u64);
    assert_eq!(r.settled, input.len() as u64);
}

#[test]
fn vector_20_merged_partials_are_cut_once_they_reach_the_maximum() {
    let mut input = String::new();
    for c in ["a", "b", "c", "d"] {
        let line = format!("{{\"log\":\"{}\"{OUT}\n", c.repeat(30));
        assert!(line.len() < 100);
        input.push_str(&line);
    }
    input.push_str(&format!("{{\"log\":\"e\\n\"{OUT}\n"));
    let r = run(
        DecoderConfig::default()
            .with_format(LogFormat::Docker)
            .with_max_message_bytes(100),
        input.as_bytes(),
    );
    let first = format!(
        "{}{}{}{}...TRUNCATED...",
        "a".repeat(30),
        "b".repeat(30),
        "c".repeat(30),
        "d".repeat(30)
    );
    assert_eq!(contents(&r.now), [first, "...TRUNCATED...e".into()]);
    assert_eq!(
        r.now.iter().map(|m| m.truncated).collect::<Vec<_>>(),
        [true, false]
    );
}

#[test]
fn vector_21_docker_extra_fields_are_ignored() {
    assert_eq!(
        one(&docker(&format!(
            "{{\"log\":\"x\\n\",\"attrs\":{{\"k\":\"v\"}}{OUT}\n"
        )))
        .0,
        "x"
    );
}

#[test]
fn vector_22_23_cri_full_lines() {
    let r = cri(format!("{TS} stdout F hello world\n").as_bytes());
    assert_eq!(one(&r), ("hello world".into(), "info"));
    assert_eq!(r.now[0].time, TS.as_bytes());
    assert_eq!(
        one(&cri(format!("{TS} stderr F oops\n").as_bytes())),
        ("oops".into(), "error")
    );
}

#[test]
fn vector_24_cri_partials_are_concatenated() {
    let input = format!("{TS} stdout P hel\n{TS} stdout P lo wo\n{TS} stdout F rld\n");
    let r = cri(input.as_bytes());
    assert_eq!(one(&r).0, "hello world");
    assert_eq!(r.now[0].end_offset, input.len() as u64);
}

#[test]
fn vector_25_26_empty_cri_content_gives_no_message() {
    for input in [format!("{TS} stdout F \n"), format!("{TS} stdout F\n")] {
        let r = cri(input.as_bytes());
        assert!(r.now.is_empty() && r.after_idle.is_empty(), "{input}");
        assert_eq!(r.settled, input.len() as u64);
    }
}

#[test]
fn vector_27_cri_extra_spaces_are_trimmed() {
    assert_eq!(
        one(&cri(format!("{TS} stdout F   spaced out  \n").as_bytes())).0,
        "spaced out"
    );
}

#[test]
fn vector_28_29_30_31_lenient_cri() {
    assert_eq!(one(&cri(b"garbage\n")), ("garbage".into(), "info"));
    assert_eq!(
        one(&cri(b"not-a-time stdout F hi\n")),
        ("hi".into(), "info")
    );
    assert_eq!(one(&cri(format!("{TS} stdout X hi\n").as_bytes())).0, "hi");
    assert_eq!(
        one(&cri(format!("{TS} foo F hi\n").as_bytes())),
        ("hi".into(), "info")
    );
}

#[test]
fn vector_32_33_offset_timestamps_and_carriage_returns() {
    assert_eq!(
        one(&cri(b"2024-05-01T14:00:00.5+02:00 stdout F hi\n")).0,
        "hi"
    );
    assert_eq!(
        one(&cri(format!("{TS} stdout F hi\r\n").as_bytes())).0,
        "hi"
    );
}

#[test]
fn vector_34_invalid_utf8_is_kept_raw() {
    let r = cri(format!("{TS} stdout F caf\u{0}\n")
        .replace('\0', "\u{e9}")
        .as_bytes());
    assert_eq!(r.now[0].content, "café".as_bytes());
    let mut input = format!("{TS} stdout F caf").into_bytes();
    input.extend_from_slice(b"\xe9\n");
    assert_eq!(cri(&input).now[0].content, b"caf\xe9");
}

#[test]
fn vector_35_an_unparseable_line_ends_the_merge_and_is_appended() {
    let r = cri(format!("{TS} stdout P part\ngarbage\n").as_bytes());
    assert_eq!(one(&r), ("partgarbage".into(), "info"));
}

#[test]
fn vector_36_a_cri_partial_is_flushed_after_one_idle_second() {
    let r = cri(format!("{TS} stdout P part\n").as_bytes());
    assert!(r.now.is_empty());
    assert_eq!(contents(&r.after_idle), ["part"]);
}

#[test]
fn vector_37_38_cri_content_is_never_unescaped_and_unicode_space_is_trimmed() {
    assert_eq!(
        one(&cri(format!("{TS} stdout F a\\nb\n").as_bytes())).0,
        "a\\nb"
    );
    assert_eq!(
        one(&cri(format!("{TS} stdout F \u{a0}hi\u{a0}\n").as_bytes())).0,
        "hi"
    );
}

#[test]
fn vector_39_40_41_plain_lines_and_offsets() {
    let r = raw(100, b"a\nb\n");
    assert_eq!(contents(&r.now), ["a", "b"]);
    assert_eq!(
        r.now.iter().map(|m| m.end_offset).collect::<Vec<_>>(),
        [2, 4]
    );
    let r = raw(100, b"abc");
    assert!(r.now.is_empty() && r.after_idle.is_empty());
    assert_eq!(r.settled, 0, "an unterminated line waits");
    let r = raw(100, b"\n");
    assert!(r.now.is_empty());
    assert_eq!(r.settled, 1, "an empty line still advances the offset");
}

#[test]
fn vector_42_a_long_line_is_cut_with_markers() {
    let r = raw(10, b"abcdefghijklmnopqrstu\n");
    assert_eq!(
        contents(&r.now),
        [
            "abcdefghij...TRUNCATED...",
            "...TRUNCATED...klmnopqrst...TRUNCATED...",
            "...TRUNCATED...u"
        ]
    );
    assert_eq!(
        r.now
            .iter()
            .map(|m| (m.truncated, m.end_offset))
            .collect::<Vec<_>>(),
        [(true, 10), (true, 20), (false, 22)]
    );
}

#[test]
fn vector_43_a_line_of_exactly_the_maximum_is_marked() {
    let r = raw(10, b"abcdefghij\nk\n");
    assert_eq!(
        contents(&r.now),
        ["abcdefghij...TRUNCATED...", "...TRUNCATED...k"]
    );
}

fn utf16(encoding: Encoding, max: usize, input: &[u8]) -> Run {
    run(
        DecoderConfig::default()
            .with_encoding(encoding)
            .with_max_message_bytes(max),
        input,
    )
}

fn ends(messages: &[OwnedLogMessage]) -> Vec<(bool, u64)> {
    messages
        .iter()
        .map(|m| (m.truncated, m.end_offset))
        .collect()
}

#[test]
fn vector_44_utf16_le_is_framed_on_its_two_byte_newline() {
    let r = utf16(Encoding::Utf16Le, 100, b"h\0i\0\n\0");
    assert_eq!(contents(&r.now), ["hi"]);
    assert_eq!(ends(&r.now), [(false, 6)]);
    assert_eq!(r.settled, 6, "offsets are byte offsets in the file");
}

#[test]
fn vector_44_utf16_be_is_framed_on_its_two_byte_newline() {
    // `0A` as the low byte of `00 0A` ends the line; `0A 00` at an odd offset does not.
    let r = utf16(Encoding::Utf16Be, 100, b"\0h\0i\0\n\x0a\0\0\n");
    assert_eq!(contents(&r.now), ["hi", "\u{a00}"]);
    assert_eq!(ends(&r.now), [(false, 6), (false, 10)]);
}

#[test]
fn vector_44_utf16_text_is_transcoded_to_utf8_and_trimmed() {
    let input: Vec<u8> = " été \u{1F600}\r\nx\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let r = utf16(Encoding::Utf16Le, 100, &input);
    assert_eq!(contents(&r.now), ["été \u{1F600}", "x"]);
    assert_eq!(ends(&r.now), [(false, 18), (false, 22)]);
}

#[test]
fn vector_44_a_long_utf16_line_is_cut_at_an_even_number_of_file_bytes() {
    // A maximum of 7 bytes aligns down to 6: three UTF-16 code units per frame, each marked.
    let input: Vec<u8> = "abcdefg\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let r = utf16(Encoding::Utf16Le, 7, &input);
    assert_eq!(
        contents(&r.now),
        [
            "abc...TRUNCATED...",
            "...TRUNCATED...def...TRUNCATED...",
            "...TRUNCATED...g"
        ]
    );
    assert_eq!(ends(&r.now), [(true, 6), (true, 12), (false, 16)]);
}

#[test]
fn vector_44_an_odd_trailing_utf16_byte_waits_for_more_data() {
    let mut decoder = Decoder::new(DecoderConfig::default().with_encoding(Encoding::Utf16Le));
    let now = Instant::now();
    let mut out = Vec::new();
    decoder.push(b"a\0\n\0b\0\n", now, |m| out.push(m.to_owned()));
    assert_eq!(contents(&out), ["a"]);
    assert_eq!((decoder.pending_bytes(), decoder.settled_offset()), (3, 4));
    decoder.push(b"\0", now, |m| out.push(m.to_owned()));
    assert_eq!(contents(&out), ["a", "b"]);
    assert_eq!(decoder.settled_offset(), 8);
}

#[test]
fn vector_44_an_unpaired_utf16_surrogate_becomes_the_replacement_character() {
    // A high surrogate followed by `x`, then a lone low surrogate.
    let r = utf16(Encoding::Utf16Le, 100, b"\x00\xd8x\0\x00\xdc\n\0");
    assert_eq!(contents(&r.now), ["\u{FFFD}x\u{FFFD}"]);
}

#[test]
fn vector_44_utf16_lines_go_through_rules_and_multi_line() {
    let rules = ProcessingRules::from_json(
        r#"[{"type":"multi_line","name":"m","pattern":"\\d"},
            {"type":"mask_sequences","name":"s","pattern":"secret","replace_placeholder":"***"}]"#,
        RuleScope::Source,
    )
    .unwrap();
    let input: Vec<u8> = "1 secret\n  at x\n2 y\n"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let r = run(
        DecoderConfig::default()
            .with_encoding(Encoding::Utf16Be)
            .with_rules(rules),
        &input,
    );
    assert_eq!(contents(&r.now), ["1 ***\\n  at x"]);
    assert_eq!(contents(&r.after_idle), ["2 y"]);
    assert_eq!(r.settled, input.len() as u64);
}

fn with_rules(format: LogFormat, json: &str, input: &[u8]) -> Run {
    let rules = ProcessingRules::from_json(json, RuleScope::Source).unwrap();
    run(
        DecoderConfig::default()
            .with_format(format)
            .with_rules(rules),
        input,
    )
}

#[test]
fn vector_45_multi_line_joins_with_a_literal_backslash_n() {
    let r = with_rules(
        LogFormat::Raw,
        r#"[{"type":"multi_line","name":"ml","pattern":"\\d{4}-\\d{2}-\\d{2}"}]"#,
        b"2024-05-01 ERROR x\n  at a.B(C.java:1)\n2024-05-01 INFO y\n",
    );
    assert_eq!(
        contents(&r.now),
        ["2024-05-01 ERROR x\\n  at a.B(C.java:1)"]
    );
    assert_eq!(r.now[0].end_offset, 38);
    assert_eq!(contents(&r.after_idle), ["2024-05-01 INFO y"]);
    assert_eq!(r.settled, 56);
}

#[test]
fn vector_45_multi_line_over_cri_partials() {
    let input = format!("{TS} stdout F 2024-05-01 boom\n{TS} stdout P   at \n{TS} stderr F x.y\n");
    let r = with_rules(
        LogFormat::Cri,
        r#"[{"type":"multi_line","name":"ml","pattern":"\\d{4}-"}]"#,
        input.as_bytes(),
    );
    assert!(r.now.is_empty());
    assert_eq!(contents(&r.after_idle), ["2024-05-01 boom\\n  at x.y"]);
    assert_eq!(statuses(&r.after_idle), ["error"]);
}

#[test]
fn vector_46_rules_apply_in_order() {
    let r = with_rules(
        LogFormat::Raw,
        r#"[{"type":"exclude_at_match","name":"e","pattern":"DEBUG"},
            {"type":"mask_sequences","name":"m","pattern":"token=\\w+","replace_placeholder":"token=[REDACTED]"}]"#,
        b"DEBUG x\ncall token=abc123\n",
    );
    assert_eq!(contents(&r.now), ["call token=[REDACTED]"]);
    assert_eq!(r.settled, 26);
}

#[test]
fn vector_47_include_at_match() {
    let r = with_rules(
        LogFormat::Raw,
        r#"[{"type":"include_at_match","name":"i","pattern":"ERROR"}]"#,
        b"INFO a\nERROR b\n",
    );
    assert_eq!(contents(&r.now), ["ERROR b"]);
}

#[test]
fn vector_49_exclude_truncated_keeps_only_the_unflagged_tail() {
    let rules = ProcessingRules::from_json(
        r#"[{"type":"exclude_truncated","name":"t"}]"#,
        RuleScope::Global,
    )
    .unwrap();
    let r = run(
        DecoderConfig::default()
            .with_format(LogFormat::Raw)
            .with_max_message_bytes(10)
            .with_rules(rules),
        b"abcdefghijklmnopqrstu\n",
    );
    assert_eq!(contents(&r.now), ["...TRUNCATED...u"]);
    assert_eq!(r.settled, 22);
}

#[test]
fn the_format_is_detected_from_the_first_non_blank_line() {
    let auto = |input: &[u8]| {
        let mut d = Decoder::new(DecoderConfig::default());
        let mut out = Vec::new();
        d.push(input, Instant::now(), |m| out.push(m.to_owned()));
        (d.format(), contents(&out))
    };
    assert_eq!(
        auto(format!("\n{{\"log\":\"x\\n\"{OUT}\n").as_bytes()),
        (LogFormat::Docker, vec!["x".into()])
    );
    assert_eq!(
        auto(format!("{TS} stdout F hi\n").as_bytes()),
        (LogFormat::Cri, vec!["hi".into()])
    );
    assert_eq!(
        auto(b"plain text\nx stdout F y\n"),
        (
            LogFormat::Raw,
            vec!["plain text".into(), "x stdout F y".into()]
        )
    );
}

#[test]
fn a_decoder_resumes_offsets_from_a_registry_position() {
    let mut d = Decoder::new(
        DecoderConfig::default()
            .with_format(LogFormat::Raw)
            .with_start_offset(1000),
    );
    let mut ends = Vec::new();
    d.push(b"a\nbc\n", Instant::now(), |m| ends.push(m.end_offset()));
    assert_eq!(ends, [1002, 1005]);
}

#[test]
fn counters_account_for_every_line() {
    let mut d = Decoder::new(DecoderConfig::default().with_format(LogFormat::Cri));
    let input = format!("{TS} stdout F a\ngarbage\nbad-time stdout F b\n{TS} stdout F \n");
    d.push(input.as_bytes(), Instant::now(), |_| {});
    let s = *d.stats();
    assert_eq!((s.lines, s.bytes, s.messages), (4, input.len() as u64, 3));
    assert_eq!(
        (s.parse_fallbacks, s.invalid_timestamps, s.empty_dropped),
        (1, 1, 1)
    );
}

#[test]
fn a_partial_line_straddling_a_rotation_is_merged_into_one_message() {
    let mut d = Decoder::new(DecoderConfig::default().with_format(LogFormat::Cri));
    let now = Instant::now();
    let mut out = Vec::new();
    d.push(
        format!("{TS} stdout P hel\n{TS} stdout F x\n{TS} stdout P he").as_bytes(),
        now,
        |m| out.push(m.to_owned()),
    );
    d.push(b"llo wo\nunterminated", now, |m| out.push(m.to_owned()));
    assert_eq!(
        d.switch_file(0),
        12,
        "the old file's unterminated tail is reported"
    );
    d.push(format!("{TS} stdout F rld\n").as_bytes(), now, |m| {
        out.push(m.to_owned())
    });
    assert_eq!(contents(&out), ["helx", "hello world"]);
    assert_eq!(out[1].end_offset, 44, "the offset is in the new file");
    assert_eq!(d.settled_offset(), 44);
}
