//! Merging partial lines: CRI `P` records up to the next `F`, Docker chunks without a final `\n`.

use super::message::Stream;
use std::time::Instant;

/// One line between decoder stages, borrowed from the framer, a parser or a stage's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    pub content: &'a [u8],
    pub stream: Stream,
    pub time: &'a [u8],
    pub truncated: bool,
    pub end_offset: u64,
}

/// Appends partial chunks without separator until a complete one (or `max_bytes` of content).
///
/// The merged line keeps the stream and time of its last chunk (a stdout `P` then a stderr `F`
/// is one stderr line) — partials are not keyed by stream, as in the Agent.
#[derive(Debug, Clone)]
pub(crate) struct PartialMerger {
    buf: Vec<u8>,
    time: Vec<u8>,
    stream: Stream,
    truncated: bool,
    end_offset: u64,
    /// Chunks are waiting in `buf`.
    pending: bool,
    /// `buf` was handed out by the last call and must be cleared first.
    stale: bool,
    last_at: Option<Instant>,
    max_bytes: usize,
}

impl PartialMerger {
    pub fn new(max_bytes: usize) -> PartialMerger {
        PartialMerger {
            buf: Vec::new(),
            time: Vec::new(),
            stream: Stream::Unknown,
            truncated: false,
            end_offset: 0,
            pending: false,
            stale: false,
            last_at: None,
            max_bytes,
        }
    }

    /// Takes one parsed chunk; returns a complete line when there is one. A complete chunk with
    /// nothing pending passes through without copying.
    #[inline]
    pub fn push<'a>(
        &'a mut self,
        chunk: Line<'a>,
        partial: bool,
        now: Instant,
    ) -> Option<Line<'a>> {
        self.clear_if_stale();
        if !self.pending && !partial {
            return Some(chunk);
        }
        self.buf.extend_from_slice(chunk.content);
        self.time.clear();
        self.time.extend_from_slice(chunk.time);
        self.stream = chunk.stream;
        self.truncated |= chunk.truncated;
        self.end_offset = chunk.end_offset;
        self.pending = true;
        self.last_at = Some(now);
        if !partial {
            Some(self.take(false))
        } else if self.buf.len() >= self.max_bytes {
            Some(self.take(true))
        } else {
            None
        }
    }

    /// Emits the pending chunks as they are (idle timeout, or the end of input).
    pub fn flush(&mut self) -> Option<Line<'_>> {
        self.clear_if_stale();
        self.pending.then(|| self.take(false))
    }

    /// When pending chunks must be flushed.
    pub fn deadline(&self, timeout: std::time::Duration) -> Option<Instant> {
        self.pending
            .then_some(self.last_at)
            .flatten()
            .and_then(|at| at.checked_add(timeout))
    }

    pub fn is_pending(&self) -> bool {
        self.pending
    }

    fn take(&mut self, forced: bool) -> Line<'_> {
        self.pending = false;
        self.stale = true;
        Line {
            content: &self.buf,
            stream: self.stream,
            time: &self.time,
            truncated: self.truncated || forced,
            end_offset: self.end_offset,
        }
    }

    fn clear_if_stale(&mut self) {
        if self.stale {
            self.buf.clear();
            self.truncated = false;
            self.stale = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(content: &[u8], end_offset: u64, stream: Stream) -> Line<'_> {
        Line {
            content,
            stream,
            time: b"t",
            truncated: false,
            end_offset,
        }
    }

    #[test]
    fn concatenates_partial_chunks_without_separator() {
        let now = Instant::now();
        let mut m = PartialMerger::new(100);
        assert!(
            m.push(line(b"hel", 10, Stream::Stdout), true, now)
                .is_none()
        );
        assert!(
            m.push(line(b"lo wo", 20, Stream::Stdout), true, now)
                .is_none()
        );
        let out = m
            .push(line(b"rld", 30, Stream::Stderr), false, now)
            .unwrap();
        assert_eq!(out.content, b"hello world");
        assert_eq!((out.end_offset, out.stream), (30, Stream::Stderr));
        assert!(!m.is_pending());
    }

    #[test]
    fn a_complete_chunk_with_nothing_pending_is_not_copied() {
        let now = Instant::now();
        let mut m = PartialMerger::new(100);
        let input = b"whole".to_vec();
        let out = m.push(line(&input, 6, Stream::Stdout), false, now).unwrap();
        assert_eq!(out.content.as_ptr(), input.as_ptr());
    }

    #[test]
    fn emits_a_truncated_line_once_the_buffer_reaches_the_maximum() {
        let now = Instant::now();
        let mut m = PartialMerger::new(10);
        assert!(
            m.push(line(b"abcdef", 1, Stream::Stdout), true, now)
                .is_none()
        );
        let out = m
            .push(line(b"ghijkl", 2, Stream::Stdout), true, now)
            .unwrap();
        assert_eq!(out.content, b"abcdefghijkl");
        assert!(out.truncated);
        let out = m.push(line(b"m", 3, Stream::Stdout), false, now).unwrap();
        assert_eq!((out.content, out.truncated), (&b"m"[..], false));
    }

    #[test]
    fn flushes_pending_chunks_after_the_deadline() {
        let now = Instant::now();
        let mut m = PartialMerger::new(100);
        let timeout = std::time::Duration::from_secs(1);
        assert_eq!(m.deadline(timeout), None);
        m.push(line(b"prompt> ", 9, Stream::Stdout), true, now);
        assert_eq!(m.deadline(timeout), Some(now + timeout));
        assert_eq!(m.flush().unwrap().content, b"prompt> ");
        assert!(m.flush().is_none());
    }
}
