//! CRI log lines (containerd, CRI-O, Podman): `<time> <stream> <P|F> <content>`.

use super::message::Stream;
use std::fmt;

/// A CRI log line, borrowed from the file's buffer; the content is never unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriLine<'b> {
    time: &'b [u8],
    stream: &'b [u8],
    tag: &'b [u8],
    content: &'b [u8],
}

/// Why a line is not a CRI line: it has fewer than three space-separated fields.
///
/// The Datadog Agent then passes the whole line through as the message content, with status
/// `info` — so does [`Decoder`](crate::Decoder), counting it in
/// [`DecoderStats::parse_fallbacks`](crate::DecoderStats::parse_fallbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriError {
    fields: u8,
}

impl fmt::Display for CriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a CRI log line: {} space-separated field(s), expected `<time> <stream> <P|F> <content>`; \
             if the file is in Docker json-file or plain format, choose that format",
            self.fields
        )
    }
}

impl std::error::Error for CriError {}

/// Parses one CRI line (without its `\n`) as the Agent does: split on single spaces into at most
/// four fields. Exactly three fields give an empty content; extra spaces stay in the content.
///
/// The line is accepted whatever its stream, tag and time (see [`CriLine::has_valid_time`]).
///
/// # Errors
///
/// [`CriError`] when the line has fewer than three fields.
///
/// ```
/// let line = dogpipe::parse_cri(b"2024-05-01T12:00:00.1Z stderr P  two spaces").unwrap();
/// assert_eq!(line.content(), b" two spaces");
/// assert!(line.is_partial());
/// assert_eq!(line.stream(), dogpipe::Stream::Stderr);
/// ```
#[inline]
pub fn parse_cri(line: &[u8]) -> Result<CriLine<'_>, CriError> {
    let Some(sp1) = memchr::memchr(b' ', line) else {
        return Err(CriError { fields: 1 });
    };
    let time = line.get(..sp1).unwrap_or_default();
    let rest = line.get(sp1 + 1..).unwrap_or_default();
    let Some(sp2) = memchr::memchr(b' ', rest) else {
        return Err(CriError { fields: 2 });
    };
    let stream = rest.get(..sp2).unwrap_or_default();
    let rest = rest.get(sp2 + 1..).unwrap_or_default();
    let (tag, content) = match memchr::memchr(b' ', rest) {
        Some(sp3) => (
            rest.get(..sp3).unwrap_or_default(),
            rest.get(sp3 + 1..).unwrap_or_default(),
        ),
        None => (rest, &b""[..]),
    };
    Ok(CriLine {
        time,
        stream,
        tag,
        content,
    })
}

impl<'b> CriLine<'b> {
    /// The timestamp field, as written.
    pub fn time(&self) -> &'b [u8] {
        self.time
    }

    /// Whether the timestamp is RFC 3339 (`Z` or a numeric offset, optional fraction). The Agent
    /// only logs a bad timestamp and keeps the line.
    pub fn has_valid_time(&self) -> bool {
        is_rfc3339(self.time)
    }

    /// The stream field as written.
    pub fn stream_field(&self) -> &'b [u8] {
        self.stream
    }

    /// `stdout`, `stderr`, or [`Stream::Unknown`] for anything else.
    pub fn stream(&self) -> Stream {
        Stream::from_field(self.stream)
    }

    /// The tag field (`P` or `F` when written by a runtime).
    pub fn tag(&self) -> &'b [u8] {
        self.tag
    }

    /// Whether this is a partial record (tag exactly `P`); any other tag ends a line.
    pub fn is_partial(&self) -> bool {
        self.tag == b"P"
    }

    /// The content, raw bytes after the third space.
    pub fn content(&self) -> &'b [u8] {
        self.content
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, as Go's `time.Parse(time.RFC3339Nano, …)` accepts.
pub(crate) fn is_rfc3339(t: &[u8]) -> bool {
    fn num(t: &[u8], at: usize, len: usize) -> Option<u32> {
        let digits = t.get(at..at + len)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    }
    fn sep(t: &[u8], at: usize, c: u8) -> Option<()> {
        (t.get(at) == Some(&c)).then_some(())
    }
    let check = || -> Option<()> {
        let year = num(t, 0, 4)?;
        sep(t, 4, b'-')?;
        let month = num(t, 5, 2)?;
        sep(t, 7, b'-')?;
        let day = num(t, 8, 2)?;
        sep(t, 10, b'T')?;
        let hour = num(t, 11, 2)?;
        sep(t, 13, b':')?;
        let minute = num(t, 14, 2)?;
        sep(t, 16, b':')?;
        let second = num(t, 17, 2)?;
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        if day == 0 || day > days || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut at = 19;
        if t.get(at) == Some(&b'.') {
            let digits = t
                .get(at + 1..)?
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .count();
            if digits == 0 {
                return None;
            }
            at += 1 + digits;
        }
        match t.get(at)? {
            b'Z' => (t.len() == at + 1).then_some(()),
            b'+' | b'-' => {
                let (h, m) = (num(t, at + 1, 2)?, num(t, at + 4, 2)?);
                sep(t, at + 3, b':')?;
                (h <= 23 && m <= 59 && t.len() == at + 6).then_some(())
            }
            _ => None,
        }
    };
    check().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &[u8] = b"2024-05-01T12:00:00.123456789Z";

    #[test]
    fn splits_time_stream_tag_and_content() {
        let line = parse_cri(b"2024-05-01T12:00:00.123456789Z stdout F hello world").unwrap();
        assert_eq!(line.time(), TS);
        assert_eq!(line.stream(), Stream::Stdout);
        assert_eq!(line.tag(), b"F");
        assert!(!line.is_partial());
        assert_eq!(line.content(), b"hello world");
        assert!(line.has_valid_time());
    }

    #[test]
    fn three_fields_give_an_empty_content() {
        let line = parse_cri(b"ts stdout F").unwrap();
        assert_eq!((line.tag(), line.content()), (&b"F"[..], &b""[..]));
    }

    #[test]
    fn fewer_than_three_fields_is_an_error() {
        assert_eq!(parse_cri(b"garbage"), Err(CriError { fields: 1 }));
        assert_eq!(parse_cri(b"ts stdout"), Err(CriError { fields: 2 }));
        assert!(parse_cri(b"").is_err());
        assert!(
            CriError { fields: 1 }
                .to_string()
                .starts_with("not a CRI log line")
        );
    }

    #[test]
    fn extra_spaces_stay_in_the_content() {
        assert_eq!(
            parse_cri(b"ts stdout F   spaced out  ").unwrap().content(),
            b"  spaced out  "
        );
    }

    #[test]
    fn only_the_tag_p_is_partial_and_unknown_streams_are_unknown() {
        assert!(parse_cri(b"ts stdout P x").unwrap().is_partial());
        assert!(!parse_cri(b"ts stdout X x").unwrap().is_partial());
        assert!(!parse_cri(b"ts stdout p x").unwrap().is_partial());
        assert_eq!(parse_cri(b"ts foo F x").unwrap().stream(), Stream::Unknown);
    }

    #[test]
    fn validates_rfc3339_timestamps() {
        for good in [
            &b"2024-05-01T12:00:00Z"[..],
            b"2024-05-01T12:00:00.5+02:00",
            b"2024-02-29T23:59:59.123456789-07:30",
            TS,
        ] {
            assert!(is_rfc3339(good), "{}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"not-a-time"[..],
            b"2023-02-29T00:00:00Z",
            b"2024-05-01 12:00:00Z",
            b"2024-05-01T12:00:00.Z",
            b"2024-05-01T12:00:00",
            b"2024-05-01T24:00:00Z",
            b"2024-05-01T12:00:00+0200",
            b"2024-05-01T12:00:00Zx",
            b"ts",
        ] {
            assert!(!is_rfc3339(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
