//! Docker `json-file` log lines: `{"log":"…","stream":"…","time":"…"}`, decoded as Go's
//! `encoding/json` decodes them into the Agent's struct, borrowing the content when it needs no
//! unescaping.

use super::message::Stream;
use std::borrow::Cow;
use std::fmt;

/// Go's `encoding/json` maximum nesting depth.
const MAX_DEPTH: usize = 10_000;

/// A Docker json-file log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerLine<'b> {
    log: Cow<'b, [u8]>,
    partial: bool,
    stream: Stream,
    time: Cow<'b, [u8]>,
}

impl<'b> DockerLine<'b> {
    /// The `log` value, unescaped, with one trailing `\n` removed. Borrowed from the line when the
    /// value holds no escape other than that final `\n` and is valid UTF-8; always valid UTF-8.
    pub fn content(&self) -> &[u8] {
        &self.log
    }

    /// The content, borrowed or owned.
    pub fn into_content(self) -> Cow<'b, [u8]> {
        self.log
    }

    /// Whether the `log` value did not end with `\n`: dockerd splits output longer than 16 KiB
    /// into such chunks. An empty value is not partial.
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// `stdout`, `stderr`, or [`Stream::Unknown`] when absent or anything else.
    pub fn stream(&self) -> Stream {
        self.stream
    }

    /// The `time` value, unescaped, not validated (empty when absent).
    pub fn time(&self) -> &[u8] {
        &self.time
    }
}

/// Why a line is not a Docker json-file line. The [`Decoder`](crate::Decoder) then passes the
/// whole line through as the content with status `info`, as the Datadog Agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DockerError {
    kind: DockerErrorKind,
    offset: usize,
}

/// The kind of a [`DockerError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DockerErrorKind {
    /// The line is the JSON literal `null`.
    Null,
    /// The line is JSON but not an object.
    NotAnObject,
    /// The line is not valid JSON.
    Syntax,
    /// `log`, `stream` or `time` holds something other than a string or `null`.
    FieldNotAString,
    /// Values nest deeper than 10 000 levels (Go's limit).
    TooDeep,
}

impl DockerError {
    /// What is wrong.
    pub fn kind(&self) -> DockerErrorKind {
        self.kind
    }

    /// Byte offset in the line where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DockerErrorKind::Null => "the line is `null`",
            DockerErrorKind::NotAnObject => "the line is not a JSON object",
            DockerErrorKind::Syntax => "invalid JSON",
            DockerErrorKind::FieldNotAString => "`log`, `stream` and `time` must be strings",
            DockerErrorKind::TooDeep => "JSON nested deeper than 10000 levels",
        };
        write!(
            f,
            "not a Docker json-file log line at byte {}: {what}; \
             if the file is in CRI or plain format, choose that format",
            self.offset
        )
    }
}

impl std::error::Error for DockerError {}

/// Parses one Docker json-file line (without its `\n`) as the Agent's Go code does.
///
/// Keys are matched case-insensitively (Go's folding, so `LOG` and `ſtream` match), a later
/// duplicate wins, `null` leaves a field unset, unknown fields (such as `attrs`) are validated and
/// ignored. Strings are unescaped like Go: surrogate pairs are joined, a lone surrogate and every
/// invalid UTF-8 byte become U+FFFD.
///
/// # Errors
///
/// [`DockerError`] when the line is not a JSON object with string-or-null `log`, `stream`, `time`.
///
/// ```
/// let line = dogpipe::parse_docker(br#"{"log":"hello\n","stream":"stderr","time":"t"}"#).unwrap();
/// assert_eq!(line.content(), b"hello");
/// assert!(!line.is_partial());
/// assert!(matches!(line.into_content(), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn parse_docker(line: &[u8]) -> Result<DockerLine<'_>, DockerError> {
    let fields = parse_fields(line)?;
    let (log, ends_with_lf) = match fields.log {
        Some(JsonStr::RawThenLf(raw)) => (utf8_or_replace(raw), true),
        Some(other) => {
            let mut log = other.decode();
            let ends_with_lf = log.last() == Some(&b'\n');
            if ends_with_lf {
                log = match log {
                    Cow::Borrowed(b) => Cow::Borrowed(b.get(..b.len() - 1).unwrap_or_default()),
                    Cow::Owned(mut v) => {
                        v.pop();
                        Cow::Owned(v)
                    }
                };
            }
            (log, ends_with_lf)
        }
        None => (Cow::Borrowed(&b""[..]), false),
    };
    Ok(fields.into_line(log, ends_with_lf))
}

/// [`parse_docker`] decoding the content into `scratch` instead of a new allocation when it
/// cannot be borrowed (the decoder's steady state then allocates nothing).
pub(crate) fn parse_docker_reusing<'a>(
    line: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Result<DockerLine<'a>, DockerError> {
    let fields = parse_fields(line)?;
    let (log, ends_with_lf): (&'a [u8], bool) = match fields.log {
        Some(JsonStr::Raw(raw)) if std::str::from_utf8(raw).is_ok() => (raw, false),
        Some(JsonStr::RawThenLf(raw)) if std::str::from_utf8(raw).is_ok() => (raw, true),
        Some(other) => {
            scratch.clear();
            match other {
                JsonStr::Raw(raw) => push_replacing_invalid(scratch, raw),
                JsonStr::RawThenLf(raw) => {
                    push_replacing_invalid(scratch, raw);
                    scratch.push(b'\n');
                }
                JsonStr::Escaped(raw) => unescape(raw, scratch),
            }
            let ends_with_lf = scratch.last() == Some(&b'\n');
            if ends_with_lf {
                scratch.pop();
            }
            (&scratch[..], ends_with_lf)
        }
        None => (&b""[..], false),
    };
    Ok(fields.into_line(Cow::Borrowed(log), ends_with_lf))
}

/// The raw `log`, `stream` and `time` strings of a valid line.
struct Fields<'b> {
    log: Option<JsonStr<'b>>,
    stream: Option<JsonStr<'b>>,
    time: Option<JsonStr<'b>>,
}

impl<'b> Fields<'b> {
    fn into_line<'c>(self, log: Cow<'c, [u8]>, ends_with_lf: bool) -> DockerLine<'c>
    where
        'b: 'c,
    {
        let partial = !ends_with_lf && !log.is_empty();
        let stream = match self.stream {
            Some(JsonStr::Raw(s)) => Stream::from_field(s),
            Some(other) => Stream::from_field(&other.decode()),
            None => Stream::Unknown,
        };
        let time = self.time.map_or(Cow::Borrowed(&b""[..]), JsonStr::decode);
        DockerLine {
            log,
            partial,
            stream,
            time,
        }
    }
}

fn parse_fields(line: &[u8]) -> Result<Fields<'_>, DockerError> {
    let mut p = Parser { s: line, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(top_level_error(line));
    }
    p.i += 1;
    let mut log: Option<JsonStr<'_>> = None;
    let mut stream: Option<JsonStr<'_>> = None;
    let mut time: Option<JsonStr<'_>> = None;
    let mut wrong_type = None;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            if p.peek() != Some(b'"') {
                return Err(p.err(DockerErrorKind::Syntax));
            }
            let key = p.string()?;
            p.ws();
            p.expect_byte(b':')?;
            p.ws();
            let field = match key {
                JsonStr::Raw(k) if key_is(k, b"log") => Some(&mut log),
                JsonStr::Raw(k) if key_is(k, b"stream") => Some(&mut stream),
                JsonStr::Raw(k) if key_is(k, b"time") => Some(&mut time),
                JsonStr::Raw(_) => None,
                other => {
                    let k = other.decode();
                    if key_is(&k, b"log") {
                        Some(&mut log)
                    } else if key_is(&k, b"stream") {
                        Some(&mut stream)
                    } else if key_is(&k, b"time") {
                        Some(&mut time)
                    } else {
                        None
                    }
                }
            };
            match (field, p.peek()) {
                (Some(slot), Some(b'"')) => *slot = Some(p.string()?),
                (Some(_), Some(b'n')) => p.literal(b"null")?,
                (Some(_), _) => {
                    wrong_type.get_or_insert(p.i);
                    p.skip_value(1)?;
                }
                (None, _) => p.skip_value(1)?,
            }
            p.ws();
            match p.peek() {
                Some(b',') => p.i += 1,
                Some(b'}') => {
                    p.i += 1;
                    break;
                }
                _ => return Err(p.err(DockerErrorKind::Syntax)),
            }
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err(DockerErrorKind::Syntax));
    }
    if let Some(offset) = wrong_type {
        return Err(DockerError {
            kind: DockerErrorKind::FieldNotAString,
            offset,
        });
    }
    Ok(Fields { log, stream, time })
}

/// The error for a line that does not start with `{`: Go fails differently on `null`, on other
/// JSON values and on invalid JSON.
fn top_level_error(line: &[u8]) -> DockerError {
    let mut p = Parser { s: line, i: 0 };
    p.ws();
    let start = p.i;
    let is_value = p.skip_value(0).is_ok() && {
        p.ws();
        p.i == p.s.len()
    };
    let kind = match (is_value, line.get(start)) {
        (true, Some(b'n')) => DockerErrorKind::Null,
        (true, _) => DockerErrorKind::NotAnObject,
        (false, _) => DockerErrorKind::Syntax,
    };
    DockerError {
        kind,
        offset: start,
    }
}

/// Whether a JSON key equals `name` (lowercase ASCII) under Go's case folding, which also maps
/// U+017F (ſ) to `s` and U+212A (Kelvin sign) to `k`.
fn key_is(key: &[u8], name: &[u8]) -> bool {
    let mut k = key;
    for &c in name {
        k = match k {
            [b, rest @ ..] if b.to_ascii_lowercase() == c => rest,
            [0xC5, 0xBF, rest @ ..] if c == b's' => rest,
            [0xE2, 0x84, 0xAA, rest @ ..] if c == b'k' => rest,
            _ => return false,
        };
    }
    k.is_empty()
}

/// A JSON string's raw bytes between its quotes, classified by the escapes it holds.
#[derive(Debug, Clone, Copy)]
enum JsonStr<'b> {
    /// No escape.
    Raw(&'b [u8]),
    /// No escape but a final `\n` (not included).
    RawThenLf(&'b [u8]),
    /// Escapes to decode (already validated).
    Escaped(&'b [u8]),
}

impl<'b> JsonStr<'b> {
    fn decode(self) -> Cow<'b, [u8]> {
        match self {
            JsonStr::Raw(raw) => utf8_or_replace(raw),
            JsonStr::RawThenLf(raw) => {
                let mut v = utf8_or_replace(raw).into_owned();
                v.push(b'\n');
                Cow::Owned(v)
            }
            JsonStr::Escaped(raw) => {
                let mut out = Vec::with_capacity(raw.len());
                unescape(raw, &mut out);
                Cow::Owned(out)
            }
        }
    }
}

/// The bytes, borrowed when valid UTF-8, else with each invalid byte replaced by U+FFFD (Go's
/// rule, which differs from Rust's `from_utf8_lossy` on truncated sequences).
fn utf8_or_replace(raw: &[u8]) -> Cow<'_, [u8]> {
    if std::str::from_utf8(raw).is_ok() {
        Cow::Borrowed(raw)
    } else {
        let mut out = Vec::with_capacity(raw.len() + 8);
        push_replacing_invalid(&mut out, raw);
        Cow::Owned(out)
    }
}

const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

fn push_replacing_invalid(out: &mut Vec<u8>, mut bytes: &[u8]) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(_) => {
                out.extend_from_slice(bytes);
                return;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.extend_from_slice(bytes.get(..valid).unwrap_or_default());
                let bad = e.error_len().unwrap_or(bytes.len() - valid);
                for _ in 0..bad {
                    out.extend_from_slice(REPLACEMENT);
                }
                bytes = bytes.get(valid + bad..).unwrap_or_default();
            }
        }
    }
}

fn hex4(s: &[u8]) -> Option<u16> {
    let digits = s.get(..4)?;
    digits.iter().try_fold(0u16, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc << 4 | v as u16)
    })
}

/// Decodes validated escapes (see [`Parser::string`]) into `out`.
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    // Escapes are ASCII, so when the whole string is valid UTF-8 every piece between them is.
    let valid = std::str::from_utf8(raw).is_ok();
    let push = |out: &mut Vec<u8>, piece: &[u8]| {
        if valid {
            out.extend_from_slice(piece);
        } else {
            push_replacing_invalid(out, piece);
        }
    };
    let mut rest = raw;
    while let Some(k) = memchr::memchr(b'\\', rest) {
        push(out, rest.get(..k).unwrap_or_default());
        let esc = rest.get(k + 1).copied().unwrap_or(b'\\');
        rest = rest.get(k + 2..).unwrap_or_default();
        let simple = match esc {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let unit = hex4(rest).unwrap_or(0xfffd);
        rest = rest.get(4..).unwrap_or_default();
        let c = if (0xd800..0xe000).contains(&unit) {
            // A surrogate: joined with a following `\uDC00`–`\uDFFF`, else U+FFFD (Go's rule; the
            // following escape is then decoded on its own).
            let low = match rest {
                [b'\\', b'u', tail @ ..] => hex4(tail),
                _ => None,
            };
            match low {
                Some(low) if unit < 0xdc00 && (0xdc00..0xe000).contains(&low) => {
                    rest = rest.get(6..).unwrap_or_default();
                    let c =
                        0x10000 + ((u32::from(unit) - 0xd800) << 10) + (u32::from(low) - 0xdc00);
                    char::from_u32(c).unwrap_or('\u{fffd}')
                }
                _ => '\u{fffd}',
            }
        } else {
            char::from_u32(u32::from(unit)).unwrap_or('\u{fffd}')
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    push(out, rest);
}

struct Parser<'b> {
    s: &'b [u8],
    i: usize,
}

impl<'b> Parser<'b> {
    fn err(&self, kind: DockerErrorKind) -> DockerError {
        DockerError {
            kind,
            offset: self.i,
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect_byte(&mut self, c: u8) -> Result<(), DockerError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(DockerErrorKind::Syntax))
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), DockerError> {
        if self.s.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err(DockerErrorKind::Syntax))
        }
    }

    /// A string starting at the current `"`; escapes are validated, not decoded.
    #[inline]
    fn string(&mut self) -> Result<JsonStr<'b>, DockerError> {
        let start = self.i + 1;
        let rest = self.s.get(start..).unwrap_or_default();
        let Some(k) = memchr::memchr2(b'"', b'\\', rest) else {
            self.i = self.s.len();
            return Err(self.err(DockerErrorKind::Syntax));
        };
        let first = start + k;
        let prefix = self.s.get(start..first).unwrap_or_default();
        if has_control_byte(prefix) {
            self.i = start + prefix.iter().position(|&b| b < 0x20).unwrap_or(0);
            return Err(self.err(DockerErrorKind::Syntax));
        }
        if self.s.get(first) == Some(&b'"') {
            self.i = first + 1;
            return Ok(JsonStr::Raw(prefix));
        }
        // The common Docker case: the only escape is a final `\n`.
        if self.s.get(first + 1..first + 3) == Some(&b"n\""[..]) {
            self.i = first + 3;
            return Ok(JsonStr::RawThenLf(prefix));
        }
        // Escapes: one scalar pass finds the end and validates escapes and bytes.
        let mut at = first;
        let end = loop {
            match self.s.get(at) {
                None => {
                    self.i = self.s.len();
                    return Err(self.err(DockerErrorKind::Syntax));
                }
                Some(b'"') => break at,
                Some(b'\\') => match self.s.get(at + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => at += 2,
                    Some(b'u') if hex4(self.s.get(at + 2..).unwrap_or_default()).is_some() => {
                        at += 6;
                    }
                    _ => {
                        self.i = at;
                        return Err(self.err(DockerErrorKind::Syntax));
                    }
                },
                Some(&b) if b < 0x20 => {
                    self.i = at;
                    return Err(self.err(DockerErrorKind::Syntax));
                }
                Some(_) => at += 1,
            }
        };
        self.i = end + 1;
        Ok(JsonStr::Escaped(self.s.get(start..end).unwrap_or_default()))
    }

    fn number(&mut self) -> Result<(), DockerError> {
        let digits = |p: &mut Parser<'_>| {
            let n =
                p.s.get(p.i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
            p.i += n;
            n
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.err(DockerErrorKind::Syntax)),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err(DockerErrorKind::Syntax));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err(DockerErrorKind::Syntax));
            }
        }
        Ok(())
    }

    /// Skips one value, without recursion; `depth` is the nesting depth of its container.
    fn skip_value(&mut self, depth: usize) -> Result<(), DockerError> {
        // Bit i set: the container at relative depth i is an object.
        let mut stack = [0u64; MAX_DEPTH / 64 + 1];
        let mut level = 0usize;
        let set = |stack: &mut [u64], level: usize, object: bool| {
            if let Some(word) = stack.get_mut(level / 64) {
                let bit = 1u64 << (level % 64);
                *word = if object { *word | bit } else { *word & !bit };
            }
        };
        let is_object = |stack: &[u64], level: usize| {
            stack
                .get(level / 64)
                .is_some_and(|w| w & (1u64 << (level % 64)) != 0)
        };
        'value: loop {
            self.ws();
            match self.peek() {
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'{' | b'[') => {
                    let object = self.peek() == Some(b'{');
                    if depth + level + 1 > MAX_DEPTH {
                        return Err(self.err(DockerErrorKind::TooDeep));
                    }
                    self.i += 1;
                    level += 1;
                    set(&mut stack, level, object);
                    self.ws();
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        level -= 1;
                    } else {
                        if object {
                            self.key()?;
                        }
                        continue 'value;
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.err(DockerErrorKind::Syntax)),
            }
            // After a value: close containers or move to the next element.
            loop {
                if level == 0 {
                    return Ok(());
                }
                self.ws();
                let object = is_object(&stack, level);
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if object {
                            self.ws();
                            self.key()?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if object => {
                        self.i += 1;
                        level -= 1;
                    }
                    Some(b']') if !object => {
                        self.i += 1;
                        level -= 1;
                    }
                    _ => return Err(self.err(DockerErrorKind::Syntax)),
                }
            }
        }
    }

    /// `"key":` inside an object being skipped.
    fn key(&mut self) -> Result<(), DockerError> {
        if self.peek() != Some(b'"') {
            return Err(self.err(DockerErrorKind::Syntax));
        }
        self.string()?;
        self.ws();
        self.expect_byte(b':')
    }
}

/// Whether any byte is below 0x20 (not allowed raw in a JSON string). Branch-free over 32-byte
/// blocks so that the compiler vectorizes it.
#[inline]
fn has_control_byte(raw: &[u8]) -> bool {
    let mut blocks = raw.chunks_exact(32);
    let found = blocks
        .by_ref()
        .any(|block| block.iter().fold(false, |acc, &b| acc | (b < 0x20)));
    found || blocks.remainder().iter().any(|&b| b < 0x20)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(line: &str) -> String {
        String::from_utf8(parse_docker(line.as_bytes()).unwrap().content().to_vec()).unwrap()
    }

    fn kind(line: &[u8]) -> DockerErrorKind {
        parse_docker(line).unwrap_err().kind()
    }

    #[test]
    fn borrows_content_whose_only_escape_is_the_final_newline() {
        let line = parse_docker(br#"{"log":"hello\n","stream":"stdout","time":"t"}"#).unwrap();
        assert!(matches!(line.log, Cow::Borrowed(b"hello")));
        assert!(matches!(line.time, Cow::Borrowed(b"t")));
        assert_eq!(line.stream(), Stream::Stdout);
        assert!(!line.is_partial());
    }

    #[test]
    fn the_reusing_parser_agrees_and_decodes_into_the_scratch_buffer() {
        let mut scratch = Vec::new();
        for line in [
            &br#"{"log":"a\tb\n","stream":"stderr","time":"t"}"#[..],
            br#"{"log":"plain","stream":"stdout"}"#,
            br#"{"log":"x\n"}"#,
            b"{\"log\":\"bad \xff\"}",
            b"{\"log\":\"bad \xff\\n\"}",
            br#"{"log":"\u00e9\u0041"}"#,
            br#"{}"#,
            br#"{"log":1}"#,
        ] {
            assert_eq!(parse_docker_reusing(line, &mut scratch), parse_docker(line));
        }
        let line = br#"{"log":"a\tb\n"}"#;
        let mut scratch = Vec::with_capacity(64);
        let parsed = parse_docker_reusing(line, &mut scratch).unwrap();
        assert_eq!(parsed.content(), b"a\tb");
        assert!(matches!(parsed.log, Cow::Borrowed(_)));
    }

    #[test]
    fn borrows_content_without_escapes_and_marks_it_partial() {
        let line = parse_docker(br#"{"log":"abc","stream":"stdout"}"#).unwrap();
        assert!(matches!(line.log, Cow::Borrowed(b"abc")));
        assert!(line.is_partial());
    }

    #[test]
    fn unescapes_like_go() {
        assert_eq!(
            content(r#"{"log":"a\u0009b \u00e9 \ud83d\ude00\n"}"#),
            "a\tb é 😀"
        );
        assert_eq!(content(r#"{"log":"\u003cb\u003e \u0026\n"}"#), "<b> &");
        assert_eq!(
            content(r#"{"log":"q\"\\\/\b\f\r\n"}"#),
            "q\"\\/\u{8}\u{c}\r"
        );
        assert_eq!(content(r#"{"log":"l1\nl2\n"}"#), "l1\nl2");
    }

    #[test]
    fn replaces_lone_surrogates_like_go() {
        assert_eq!(content(r#"{"log":"lone \ud800\n"}"#), "lone \u{fffd}");
        assert_eq!(content(r#"{"log":"\udc00x"}"#), "\u{fffd}x");
        assert_eq!(content(r#"{"log":"\ud800\u0041"}"#), "\u{fffd}A");
        assert_eq!(
            content(r#"{"log":"\ud800\ud800\udc00"}"#),
            "\u{fffd}\u{10000}"
        );
    }

    #[test]
    fn replaces_each_invalid_utf8_byte() {
        let line = parse_docker(b"{\"log\":\"caf\xe9 \xe2\x82A\"}").unwrap();
        assert_eq!(line.content(), "caf\u{fffd} \u{fffd}\u{fffd}A".as_bytes());
        let line = parse_docker(b"{\"log\":\"\xff\\n\"}").unwrap();
        assert_eq!(line.content(), "\u{fffd}".as_bytes());
    }

    #[test]
    fn matches_keys_case_insensitively_and_the_last_duplicate_wins() {
        let line = parse_docker(br#"{"LOG":"x\n","Stream":"stderr"}"#).unwrap();
        assert_eq!((line.content(), line.stream()), (&b"x"[..], Stream::Stderr));
        assert_eq!(content(r#"{"log":"a","log":"b"}"#), "b");
        assert_eq!(content(r#"{"log":"a","log":null}"#), "a");
        assert_eq!(content("{\"\u{17f}tream\":\"stderr\",\"log\":\"x\"}"), "x");
        let line = parse_docker("{\"\u{17f}tream\":\"stderr\"}".as_bytes()).unwrap();
        assert_eq!(line.stream(), Stream::Stderr);
        assert_eq!(content(r#"{"\u006cog":"esc key"}"#), "esc key");
    }

    #[test]
    fn ignores_unknown_fields_of_any_type() {
        assert_eq!(
            content(
                r#"{"log":"x\n","attrs":{"k":"v","n":[1,-2.5e3,true,false,null,{}]},"stream":"stdout","time":"t"}"#
            ),
            "x"
        );
    }

    #[test]
    fn a_missing_or_unknown_stream_is_unknown() {
        assert_eq!(
            parse_docker(br#"{"log":"x\n"}"#).unwrap().stream(),
            Stream::Unknown
        );
        assert_eq!(
            parse_docker(br#"{"log":"x\n","stream":"weird"}"#)
                .unwrap()
                .stream(),
            Stream::Unknown
        );
    }

    #[test]
    fn an_empty_or_missing_log_is_complete_and_empty() {
        for line in [&br#"{"log":"\n"}"#[..], br#"{}"#, br#"{"log":""}"#] {
            let parsed = parse_docker(line).unwrap();
            assert_eq!(parsed.content(), b"");
            assert!(!parsed.is_partial());
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(kind(b"null"), DockerErrorKind::Null);
        assert_eq!(kind(b" null "), DockerErrorKind::Null);
        assert_eq!(kind(b"not json at all"), DockerErrorKind::Syntax);
        assert_eq!(kind(b"[1]"), DockerErrorKind::NotAnObject);
        assert_eq!(kind(b"\"s\""), DockerErrorKind::NotAnObject);
        assert_eq!(kind(br#"{"log":1}"#), DockerErrorKind::FieldNotAString);
        assert_eq!(kind(br#"{"log":"x"} x"#), DockerErrorKind::Syntax);
        assert_eq!(kind(br#"{"log":"x""#), DockerErrorKind::Syntax);
        assert_eq!(kind(b"{\"log\":\"a\tb\"}"), DockerErrorKind::Syntax);
        assert_eq!(kind(br#"{"log":"\x"}"#), DockerErrorKind::Syntax);
        assert_eq!(kind(br#"{"log":"\u12"}"#), DockerErrorKind::Syntax);
        assert_eq!(kind(br#"{"a":01}"#), DockerErrorKind::Syntax);
        assert_eq!(kind(br#"{"a":[1,]}"#), DockerErrorKind::Syntax);
        assert_eq!(kind(br#"{"a":{"b"}}"#), DockerErrorKind::Syntax);
        assert_eq!(kind(br#"{"log":"x",}"#), DockerErrorKind::Syntax);
        assert_eq!(
            kind(br#"e\n","stream":"stdout","time":"x"}"#),
            DockerErrorKind::Syntax
        );
        assert_eq!(kind(b""), DockerErrorKind::Syntax);
        assert!(
            parse_docker(b"nul")
                .unwrap_err()
                .to_string()
                .starts_with("not a Docker json-file log line at byte 0")
        );
    }

    #[test]
    fn accepts_surrounding_white_space_and_a_carriage_return() {
        assert_eq!(content(" {\"log\":\"x\\n\"} \r"), "x");
    }

    #[test]
    fn limits_nesting_like_go() {
        let ok = format!(
            r#"{{"a":{}{}}}"#,
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(parse_docker(ok.as_bytes()).is_ok());
        let deep = format!(
            r#"{{"a":{}{}}}"#,
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert_eq!(kind(deep.as_bytes()), DockerErrorKind::TooDeep);
    }
}
