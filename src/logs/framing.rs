//! Framing a file's bytes into lines: split on `\n`, cut at the maximum message size, and keep
//! the unterminated tail across reads.

use std::io::{self, Read};

/// Splits the bytes of a file into lines, across reads, reporting the file offset after each line.
///
/// Bytes are appended with [`push`](LineFramer::push) (or read straight into the framer's buffer
/// with [`read_from`](LineFramer::read_from)); complete lines are taken with
/// [`next_frame`](LineFramer::next_frame), which borrows them from the buffer without copying.
/// The `\n` is not part of a frame but is counted in its end offset; a `\r` before it is kept.
///
/// A line whose content exceeds `max_bytes` is cut: exactly `max_bytes` bytes are emitted as a
/// frame flagged [`truncated`](Frame::truncated), and the rest is framed as the next line. So the
/// buffer never holds more than `max_bytes + 1` bytes of an unfinished line plus one read.
///
/// An unterminated tail is never emitted: it waits for its `\n` (the Datadog Agent's file framer has
/// no timeout either). Unlike the Agent, the cut point never depends on how reads are aligned: a
/// line of exactly `max_bytes` bytes whose `\n` comes in the next read is one frame, not a cut frame
/// followed by an empty one — so framing a file whole or byte by byte gives the same frames.
///
/// ```
/// use dogpipe::LineFramer;
///
/// let mut framer = LineFramer::new(10);
/// framer.push(b"a\nbcd");
/// let frame = framer.next_frame().unwrap();
/// assert_eq!((frame.bytes(), frame.end_offset()), (&b"a"[..], 2));
/// assert!(framer.next_frame().is_none()); // `bcd` waits for its newline
/// framer.push(b"\n");
/// assert_eq!(framer.next_frame().unwrap().end_offset(), 6);
/// ```
#[derive(Debug, Clone)]
pub struct LineFramer {
    buf: FrameBuffer,
    max_bytes: usize,
}

/// What a framer holds between reads, whatever its newline: the bytes not framed yet, where the
/// search for the next newline resumes, and the file offset of the first byte held.
#[derive(Debug, Clone)]
pub(crate) struct FrameBuffer {
    buf: Vec<u8>,
    /// Index in `buf` of the first byte not yet framed (a whole number of code units).
    start: usize,
    /// Index in `buf` from which to look for the next newline (bytes before it were searched).
    scan: usize,
    /// File offset of `buf[0]`.
    base_offset: u64,
}

impl FrameBuffer {
    /// An empty buffer for a file whose reading starts at byte `offset`.
    pub(crate) fn starting_at(offset: u64) -> FrameBuffer {
        FrameBuffer {
            buf: Vec::new(),
            start: 0,
            scan: 0,
            base_offset: offset,
        }
    }

    /// Appends bytes read from the file.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Drops everything held and holds `tail`, which starts at file offset `offset`.
    fn restart(&mut self, offset: u64, tail: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(tail);
        self.start = 0;
        self.scan = 0;
        self.base_offset = offset;
    }

    /// Reads once from `reader` into the buffer (at most `max_read` bytes, no intermediate copy);
    /// returns the number of bytes read, 0 at end of file. On error the buffer is left as it was.
    pub(crate) fn read_from<R: Read>(
        &mut self,
        reader: &mut R,
        max_read: usize,
    ) -> io::Result<usize> {
        self.compact();
        let old_len = self.buf.len();
        self.buf.resize(old_len.saturating_add(max_read), 0);
        let result = match self.buf.get_mut(old_len..) {
            Some(spare) => reader.read(spare),
            None => Ok(0),
        };
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old_len.saturating_add(n));
        result
    }

    /// The next line of at most `max_bytes` bytes (cut there when longer), for a newline of
    /// `unit` bytes (1 or 2, `max_bytes` a multiple of it) that `find` locates in a window of
    /// whole units (returning its index, a multiple of `unit`).
    #[inline(always)]
    pub(crate) fn next_frame(
        &mut self,
        max_bytes: usize,
        unit: usize,
        find: impl Fn(&[u8]) -> Option<usize>,
    ) -> Option<Frame<'_>> {
        let avail = self.buf.get(self.start..)?;
        let whole = avail.len() - avail.len() % unit;
        // A newline right after `max_bytes` bytes still ends a line of `max_bytes` bytes: look
        // one unit further.
        let window = whole.min(max_bytes.saturating_add(unit));
        let scanned = self.scan.saturating_sub(self.start).min(window);
        let (len, consumed, truncated) = match avail.get(scanned..window).and_then(find) {
            Some(i) => (scanned + i, scanned + i + unit, false),
            None if whole > max_bytes => (max_bytes, max_bytes, true),
            None => {
                self.scan = self.start + window;
                return None;
            }
        };
        let bytes = avail.get(..len)?;
        self.start += consumed;
        self.scan = self.start;
        let end_offset = self.base_offset.saturating_add(self.start as u64);
        Some(Frame {
            bytes,
            end_offset,
            truncated,
        })
    }

    /// File offset just after the last framed line.
    pub(crate) fn offset(&self) -> u64 {
        self.base_offset.saturating_add(self.start as u64)
    }

    /// Bytes held that do not form a complete line yet.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// Drops framed bytes from the front of the buffer.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buf.drain(..self.start);
        self.base_offset = self.base_offset.saturating_add(self.start as u64);
        self.scan = self.scan.saturating_sub(self.start);
        self.start = 0;
    }
}

/// One line of a file, borrowed from the framer's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    end_offset: u64,
    truncated: bool,
}

impl<'a> Frame<'a> {
    /// A frame of `bytes` ending at file offset `end_offset` (for the UTF-16 framer).
    pub(crate) fn new(bytes: &'a [u8], end_offset: u64, truncated: bool) -> Frame<'a> {
        Frame {
            bytes,
            end_offset,
            truncated,
        }
    }

    /// The line without its `\n`.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// File offset just after this frame (after its `\n` when it has one).
    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    /// Whether the line was cut at the maximum size (the rest is the next frame).
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl LineFramer {
    /// A framer for a file read from its beginning, cutting lines longer than `max_bytes`
    /// (at least 1).
    pub fn new(max_bytes: usize) -> LineFramer {
        LineFramer::starting_at(max_bytes, 0)
    }

    /// A framer for a file whose reading starts at byte `offset` (a position from the registry).
    pub fn starting_at(max_bytes: usize, offset: u64) -> LineFramer {
        LineFramer {
            buf: FrameBuffer::starting_at(offset),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Appends bytes read from the file.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.push(bytes);
    }

    /// Frames `input` (the next bytes of the file), handing each frame to `each`: complete lines
    /// are borrowed straight from `input` without copying; only an unfinished line is copied into
    /// the buffer (and the bytes that finish one pending from an earlier call). Gives the same
    /// frames as [`push`](LineFramer::push) followed by [`next_frame`](LineFramer::next_frame).
    pub fn push_with(&mut self, input: &[u8], mut each: impl FnMut(Frame<'_>)) {
        let mut input = input;
        // Finish the line pending in the buffer, copying only the bytes it needs.
        while self.pending_bytes() > 0 && !input.is_empty() {
            let reach = (self.max_bytes + 1)
                .saturating_sub(self.pending_bytes())
                .clamp(1, input.len());
            let head = input.get(..reach).unwrap_or_default();
            let take = memchr::memchr(b'\n', head).map_or(reach, |i| i + 1);
            self.push(input.get(..take).unwrap_or_default());
            input = input.get(take..).unwrap_or_default();
            while let Some(frame) = self.next_frame() {
                each(frame);
            }
        }
        if input.is_empty() {
            return;
        }
        // Nothing pending: frame straight from `input`.
        let base = self.buf.offset();
        let mut pos = 0usize;
        loop {
            let avail = input.get(pos..).unwrap_or_default();
            let window = avail.len().min(self.max_bytes.saturating_add(1));
            let (len, consumed, truncated) =
                match avail.get(..window).and_then(|w| memchr::memchr(b'\n', w)) {
                    Some(i) => (i, i + 1, false),
                    None if avail.len() > self.max_bytes => (self.max_bytes, self.max_bytes, true),
                    None => break,
                };
            pos += consumed;
            each(Frame {
                bytes: avail.get(..len).unwrap_or_default(),
                end_offset: base.saturating_add(pos as u64),
                truncated,
            });
        }
        self.buf.restart(
            base.saturating_add(pos as u64),
            input.get(pos..).unwrap_or_default(),
        );
    }

    /// Reads once from `reader` into the buffer (at most `max_read` bytes, no intermediate copy);
    /// returns the number of bytes read, 0 at end of file.
    ///
    /// # Errors
    ///
    /// The reader's error; the buffer is left as it was.
    pub fn read_from<R: Read>(&mut self, reader: &mut R, max_read: usize) -> io::Result<usize> {
        self.buf.read_from(reader, max_read)
    }

    /// The next complete (or cut) line, if any.
    #[inline]
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        self.buf
            .next_frame(self.max_bytes, 1, |w| memchr::memchr(b'\n', w))
    }

    /// File offset just after the last framed line: where a restart must resume reading.
    pub fn offset(&self) -> u64 {
        self.buf.offset()
    }

    /// Bytes held that do not form a complete line yet.
    pub fn pending_bytes(&self) -> usize {
        self.buf.pending_bytes()
    }

    /// The maximum line content size.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<(Vec<u8>, u64, bool)> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            while let Some(f) = framer.next_frame() {
                out.push((f.bytes().to_vec(), f.end_offset(), f.truncated()));
            }
        }
        out
    }

    #[test]
    fn reports_the_offset_after_each_newline() {
        assert_eq!(
            frames(100, &[b"a\nb\n"]),
            [(b"a".to_vec(), 2, false), (b"b".to_vec(), 4, false)]
        );
    }

    #[test]
    fn holds_an_unterminated_tail_until_its_newline() {
        let mut framer = LineFramer::new(100);
        framer.push(b"abc");
        assert!(framer.next_frame().is_none());
        assert_eq!(framer.pending_bytes(), 3);
        assert_eq!(framer.offset(), 0);
    }

    #[test]
    fn an_empty_line_still_advances_the_offset() {
        assert_eq!(frames(100, &[b"\n"]), [(vec![], 1, false)]);
    }

    #[test]
    fn cuts_a_long_line_at_the_maximum_size() {
        assert_eq!(
            frames(10, &[b"abcdefghijklmnopqrstu\n"]),
            [
                (b"abcdefghij".to_vec(), 10, true),
                (b"klmnopqrst".to_vec(), 20, true),
                (b"u".to_vec(), 22, false)
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_the_maximum_size_is_not_cut_even_when_its_newline_comes_later() {
        let expected = [
            (b"abcdefghij".to_vec(), 11, false),
            (b"k".to_vec(), 13, false),
        ];
        assert_eq!(frames(10, &[b"abcdefghij\nk\n"]), expected);
        assert_eq!(frames(10, &[b"abcdefghij", b"\nk\n"]), expected);
    }

    #[test]
    fn a_cut_happens_only_when_more_than_the_maximum_is_buffered() {
        let mut framer = LineFramer::new(4);
        framer.push(b"abcd");
        assert!(framer.next_frame().is_none());
        framer.push(b"e");
        assert_eq!(framer.next_frame().unwrap().bytes(), b"abcd");
    }

    #[test]
    fn keeps_carriage_returns() {
        assert_eq!(frames(100, &[b"a\r\n"]), [(b"a\r".to_vec(), 3, false)]);
    }

    #[test]
    fn resumes_offsets_from_a_start_position() {
        let mut framer = LineFramer::starting_at(100, 1000);
        framer.push(b"x\n");
        assert_eq!(framer.next_frame().unwrap().end_offset(), 1002);
    }

    #[test]
    fn reads_straight_from_a_reader() {
        let mut framer = LineFramer::new(100);
        let mut input: &[u8] = b"one\ntwo\nthr";
        while framer.read_from(&mut input, 3).unwrap() > 0 {}
        let mut lines = Vec::new();
        while let Some(f) = framer.next_frame() {
            lines.push(f.bytes().to_vec());
        }
        assert_eq!(lines, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(framer.pending_bytes(), 3);
    }

    fn frames_with(max: usize, chunks: &[&[u8]]) -> Vec<(Vec<u8>, u64, bool)> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push_with(chunk, |f| {
                out.push((f.bytes().to_vec(), f.end_offset(), f.truncated()))
            });
        }
        out
    }

    #[test]
    fn push_with_borrows_complete_lines_from_the_input() {
        let mut framer = LineFramer::new(100);
        let input = b"ab\ncd\nef".to_vec();
        let mut ptrs = Vec::new();
        framer.push_with(&input, |f| ptrs.push(f.bytes().as_ptr()));
        assert_eq!(ptrs, [input.as_ptr(), input[3..].as_ptr()]);
        assert_eq!(framer.pending_bytes(), 2);
        let mut rest = Vec::new();
        framer.push_with(b"\n", |f| rest.push((f.bytes().to_vec(), f.end_offset())));
        assert_eq!(rest, [(b"ef".to_vec(), 9)]);
    }

    #[test]
    fn push_with_gives_the_frames_of_push() {
        let input = b"abc\n\nabcdefghijkl\nabcdefgh\n0123456789\nxyz";
        for max in 1..12 {
            for split in 0..input.len() {
                let (a, b) = input.split_at(split);
                assert_eq!(
                    frames_with(max, &[a, b]),
                    frames(max, &[input]),
                    "{max} {split}"
                );
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(frames_with(max, &bytes), frames(max, &[input]));
        }
    }

    #[test]
    fn framing_whole_or_byte_by_byte_gives_the_same_frames() {
        let input = b"abc\n\nabcdefghijkl\nabcdefgh\n0123456789\nxyz";
        let whole = frames(8, &[input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(frames(8, &bytes), whole);
    }
}
