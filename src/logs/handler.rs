//! Line handlers: single-line (trim, truncation markers) and the `multi_line` rule's aggregation.

use super::partial::Line;
use super::trim::trim_space;
use regex::bytes::Regex;
use std::time::{Duration, Instant};

/// Added at the end of a message cut at the maximum size, and at the start of the next one.
pub(crate) const TRUNCATED_MARKER: &[u8] = b"...TRUNCATED...";

/// Joins the lines of a multi-line message: backslash and `n`, not a real newline.
const MULTI_LINE_JOINER: &[u8] = b"\\n";

/// Trims each line; marks lines of at least `max_bytes` (before trimming) and the line after.
#[derive(Debug, Clone, Default)]
pub(crate) struct SingleLine {
    continued: bool,
    /// Also mark lines the framer cut (UTF-16 files, where the cut is counted in file bytes and
    /// the UTF-8 content of a cut line can be shorter than `max_bytes`).
    mark_cut: bool,
    scratch: Vec<u8>,
}

impl SingleLine {
    /// A handler that also marks every line the framer cut, whatever its length.
    pub fn marking_cut_lines() -> SingleLine {
        SingleLine {
            mark_cut: true,
            ..SingleLine::default()
        }
    }

    /// The processed line, `None` when it is empty after trimming.
    #[inline]
    pub fn process<'a>(&'a mut self, line: Line<'a>, max_bytes: usize) -> Option<Line<'a>> {
        let prefix = std::mem::replace(&mut self.continued, false);
        let suffix = line.content.len() >= max_bytes || (self.mark_cut && line.truncated);
        self.continued = suffix;
        let trimmed = trim_space(line.content);
        let content = if prefix || suffix {
            self.scratch.clear();
            if prefix {
                self.scratch.extend_from_slice(TRUNCATED_MARKER);
            }
            self.scratch.extend_from_slice(trimmed);
            if suffix {
                self.scratch.extend_from_slice(TRUNCATED_MARKER);
            }
            &self.scratch[..]
        } else {
            trimmed
        };
        (!content.is_empty()).then_some(Line {
            content,
            truncated: line.truncated || suffix,
            ..line
        })
    }
}

/// Aggregates lines into messages that start with a line matching `^pattern`.
#[derive(Debug, Clone)]
pub(crate) struct MultiLine {
    start: Regex,
    buf: Vec<u8>,
    lines: usize,
    time: Vec<u8>,
    stream: super::message::Stream,
    truncated: bool,
    end_offset: u64,
    continued: bool,
    /// Length of the `...TRUNCATED...` prefix in `buf` (not counted against the maximum).
    prefix_len: usize,
    last_at: Option<Instant>,
}

/// What happened to an aggregate sent by [`MultiLine`].
pub(crate) enum Sent<'a> {
    Message(Line<'a>),
    Empty,
}

impl MultiLine {
    pub fn new(start: Regex) -> MultiLine {
        MultiLine {
            start,
            buf: Vec::new(),
            lines: 0,
            time: Vec::new(),
            stream: super::message::Stream::Unknown,
            truncated: false,
            end_offset: 0,
            continued: false,
            prefix_len: 0,
            last_at: None,
        }
    }

    pub fn process(
        &mut self,
        line: Line<'_>,
        max_bytes: usize,
        now: Instant,
        emit: &mut dyn FnMut(Sent<'_>),
    ) {
        if self.lines > 0 && self.start.is_match(line.content) {
            self.send(emit);
        }
        if self.lines == 0 && self.continued {
            self.buf.extend_from_slice(TRUNCATED_MARKER);
            self.prefix_len = TRUNCATED_MARKER.len();
            self.continued = false;
        }
        if self.lines > 0 {
            self.buf.extend_from_slice(MULTI_LINE_JOINER);
        }
        self.buf.extend_from_slice(line.content);
        self.lines += 1;
        self.time.clear();
        self.time.extend_from_slice(line.time);
        self.stream = line.stream;
        self.truncated |= line.truncated;
        self.end_offset = line.end_offset;
        self.last_at = Some(now);
        if self.buf.len().saturating_sub(self.prefix_len) >= max_bytes {
            self.buf.extend_from_slice(TRUNCATED_MARKER);
            self.truncated = true;
            self.send(emit);
            self.continued = true;
        }
    }

    /// Sends the aggregate if lines are pending.
    pub fn flush(&mut self, emit: &mut dyn FnMut(Sent<'_>)) {
        if self.lines > 0 {
            self.send(emit);
        }
    }

    pub fn deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.lines == 0 {
            return None;
        }
        self.last_at.and_then(|at| at.checked_add(timeout))
    }

    pub fn is_pending(&self) -> bool {
        self.lines > 0
    }

    fn send(&mut self, emit: &mut dyn FnMut(Sent<'_>)) {
        let content = trim_space(&self.buf);
        if content.is_empty() {
            emit(Sent::Empty);
        } else {
            emit(Sent::Message(Line {
                content,
                stream: self.stream,
                time: &self.time,
                truncated: self.truncated,
                end_offset: self.end_offset,
            }));
        }
        self.buf.clear();
        self.prefix_len = 0;
        self.lines = 0;
        self.truncated = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::message::Stream;

    fn line(content: &[u8]) -> Line<'_> {
        Line {
            content,
            stream: Stream::Stdout,
            time: b"",
            truncated: false,
            end_offset: 0,
        }
    }

    fn single(max: usize, inputs: &[&[u8]]) -> Vec<Option<String>> {
        let mut h = SingleLine::default();
        inputs
            .iter()
            .map(|i| {
                h.process(line(i), max)
                    .map(|l| String::from_utf8(l.content.to_vec()).unwrap())
            })
            .collect()
    }

    #[test]
    fn single_line_trims_and_drops_empty_lines() {
        assert_eq!(
            single(100, &[b"  hi \r", b" \t "]),
            [Some("hi".into()), None]
        );
    }

    #[test]
    fn single_line_marks_a_line_of_the_maximum_size_and_the_next_one() {
        assert_eq!(
            single(3, &[b"abc", b"def", b"g", b"h"]),
            [
                Some("abc...TRUNCATED...".into()),
                Some("...TRUNCATED...def...TRUNCATED...".into()),
                Some("...TRUNCATED...g".into()),
                Some("h".into())
            ]
        );
    }

    #[test]
    fn single_line_borrows_when_no_marker_is_needed() {
        let mut h = SingleLine::default();
        let input = b" x ".to_vec();
        let out = h.process(line(&input), 100).unwrap();
        assert_eq!(out.content.as_ptr(), input[1..].as_ptr());
    }

    fn multi(max: usize, inputs: &[&[u8]]) -> (Vec<String>, MultiLine) {
        let mut h = MultiLine::new(Regex::new(r"^[0-9]{4}-").unwrap());
        let mut out = Vec::new();
        let now = Instant::now();
        for i in inputs {
            h.process(line(i), max, now, &mut |s| {
                if let Sent::Message(l) = s {
                    out.push(String::from_utf8(l.content.to_vec()).unwrap());
                }
            });
        }
        (out, h)
    }

    #[test]
    fn multi_line_joins_with_a_literal_backslash_n_until_the_next_start() {
        let (out, mut h) = multi(
            1000,
            &[
                b"2024-05-01 ERROR x",
                b"  at a.B(C.java:1)",
                b"2024-05-01 INFO y",
            ],
        );
        assert_eq!(out, ["2024-05-01 ERROR x\\n  at a.B(C.java:1)"]);
        assert!(h.is_pending());
        let mut flushed = Vec::new();
        h.flush(&mut |s| {
            if let Sent::Message(l) = s {
                flushed.push(l.content.to_vec());
            }
        });
        assert_eq!(flushed, [b"2024-05-01 INFO y".to_vec()]);
    }

    #[test]
    fn multi_line_cuts_at_the_maximum_and_marks_the_next_message() {
        let (out, _) = multi(10, &[b"2024-0", b"abcdefgh", b"x"]);
        assert_eq!(out, ["2024-0\\nabcdefgh...TRUNCATED..."]);
        let (out, mut h) = multi(10, &[b"2024-0", b"abcdefgh", b"x", b"2024-1"]);
        assert_eq!(out[1], "...TRUNCATED...x");
        assert!(h.is_pending());
        h.flush(&mut |_| {});
        assert!(!h.is_pending());
    }
}
