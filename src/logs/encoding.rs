//! UTF-16 log files: framing on the two-byte newline at an even offset, and transcoding each line
//! to UTF-8 for the rest of the decoder.

use super::framing::{Frame, FrameBuffer};
use std::io::{self, Read};

/// The character encoding of a log file (the Agent's `encoding` key in a log config).
///
/// UTF-8 files are framed on `\n` and their lines borrowed as they are. UTF-16 files are framed on
/// the two-byte newline (`0A 00` little-endian, `00 0A` big-endian) at an even offset from where
/// reading started, and each line is transcoded to UTF-8; an unpaired surrogate becomes U+FFFD.
/// Shift-JIS, which the Agent also knows, is not supported.
///
/// ```
/// use dogpipe::Encoding;
///
/// assert_eq!(Encoding::from_name("utf-16-le"), Some(Encoding::Utf16Le));
/// assert_eq!(Encoding::Utf16Be.as_str(), "utf-16-be");
/// assert_eq!(Encoding::from_name("shift-jis"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// UTF-8 (and ASCII): lines are passed on as bytes, without validation.
    #[default]
    Utf8,
    /// UTF-16, little-endian, without byte order mark handling.
    Utf16Le,
    /// UTF-16, big-endian, without byte order mark handling.
    Utf16Be,
}

impl Encoding {
    /// `utf-8`, `utf-16-le` or `utf-16-be`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16Le => "utf-16-le",
            Encoding::Utf16Be => "utf-16-be",
        }
    }

    /// Parses `utf-8`, `utf-16-le` or `utf-16-be` (ASCII case ignored).
    pub fn from_name(name: &str) -> Option<Encoding> {
        [Encoding::Utf8, Encoding::Utf16Le, Encoding::Utf16Be]
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(name))
    }
}

/// Splits a UTF-16 file into lines on the newline code unit, across reads; the UTF-16 twin of
/// [`LineFramer`](super::framing::LineFramer), with the same cut rule counted in file bytes: a
/// line longer than `max_bytes` (aligned down to an even number) is cut at exactly that many
/// bytes. An odd last byte waits for the other half of its code unit.
#[derive(Debug, Clone)]
pub(crate) struct Utf16Framer {
    buf: FrameBuffer,
    max_bytes: usize,
    big_endian: bool,
}

impl Utf16Framer {
    /// A framer for a file whose reading starts at byte `offset`, in the given byte order.
    pub fn starting_at(max_bytes: usize, offset: u64, big_endian: bool) -> Utf16Framer {
        Utf16Framer {
            buf: FrameBuffer::starting_at(offset),
            max_bytes: (max_bytes & !1).max(2),
            big_endian,
        }
    }

    /// Appends bytes read from the file.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.push(bytes);
    }

    /// Reads once from `reader` into the buffer (at most `max_read` bytes).
    ///
    /// # Errors
    ///
    /// The reader's error; the buffer is left as it was.
    pub fn read_from<R: Read>(&mut self, reader: &mut R, max_read: usize) -> io::Result<usize> {
        self.buf.read_from(reader, max_read)
    }

    /// The next complete (or cut) line as UTF-16 bytes without its newline, if any.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        let big_endian = self.big_endian;
        self.buf
            .next_frame(self.max_bytes, 2, |w| find_newline(w, big_endian))
    }

    /// File offset just after the last framed line.
    pub fn offset(&self) -> u64 {
        self.buf.offset()
    }

    /// Bytes held that do not form a complete line yet.
    pub fn pending_bytes(&self) -> usize {
        self.buf.pending_bytes()
    }
}

/// The even index of the first newline code unit in `units` (which starts on a unit boundary).
fn find_newline(units: &[u8], big_endian: bool) -> Option<usize> {
    memchr::memchr_iter(b'\n', units).find_map(|pos| {
        let unit = if big_endian {
            pos.checked_sub(1).filter(|_| pos % 2 == 1)?
        } else {
            Some(pos).filter(|_| pos % 2 == 0)?
        };
        let high = if big_endian { unit } else { unit + 1 };
        (units.get(high) == Some(&0)).then_some(unit)
    })
}

/// Transcodes UTF-16 bytes (an even number; an odd last byte is ignored) to UTF-8 into `out`,
/// replacing it; unpaired surrogates become U+FFFD.
pub(crate) fn utf16_to_utf8(bytes: &[u8], big_endian: bool, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(bytes.len());
    let units = bytes.chunks_exact(2).map(|pair| match *pair {
        [a, b] if big_endian => u16::from_be_bytes([a, b]),
        [a, b] => u16::from_le_bytes([a, b]),
        _ => 0,
    });
    let mut utf8 = [0u8; 4];
    for c in char::decode_utf16(units) {
        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
        if c.is_ascii() {
            out.push(c as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(max: usize, big: bool, chunks: &[&[u8]]) -> Vec<(String, u64, bool)> {
        let mut framer = Utf16Framer::starting_at(max, 0, big);
        let mut out = Vec::new();
        let mut text = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            while let Some(f) = framer.next_frame() {
                utf16_to_utf8(f.bytes(), big, &mut text);
                out.push((
                    String::from_utf8(text.clone()).unwrap(),
                    f.end_offset(),
                    f.truncated(),
                ));
            }
        }
        out
    }

    fn encode(text: &str, big: bool) -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|u| {
                if big {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    }

    #[test]
    fn frames_little_endian_on_the_two_byte_newline() {
        assert_eq!(
            frames(100, false, &[b"h\0i\0\n\0"]),
            [("hi".to_string(), 6, false)]
        );
    }

    #[test]
    fn frames_big_endian_on_the_two_byte_newline() {
        assert_eq!(
            frames(100, true, &[b"\0h\0i\0\n\0\n"]),
            [("hi".to_string(), 6, false), (String::new(), 8, false)]
        );
    }

    #[test]
    fn a_newline_byte_inside_another_code_unit_does_not_end_the_line() {
        // U+0A0A (Gurmukhi) is `0A 0A`; U+010A is `0A 01` in little-endian.
        let input = encode("\u{a0a}\u{10a}x\n", false);
        assert_eq!(
            frames(100, false, &[&input]),
            [("\u{a0a}\u{10a}x".to_string(), 8, false)]
        );
        let input = encode("\u{a00}y\n", true);
        assert_eq!(
            frames(100, true, &[&input]),
            [("\u{a00}y".to_string(), 6, false)]
        );
    }

    #[test]
    fn a_line_longer_than_the_maximum_is_cut_at_an_even_number_of_bytes() {
        let input = encode("abcdefg\n", false);
        // 7 aligns down to 6 bytes: three characters per frame.
        assert_eq!(
            frames(7, false, &[&input]),
            [
                ("abc".to_string(), 6, true),
                ("def".to_string(), 12, true),
                ("g".to_string(), 16, false)
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_the_maximum_is_not_cut_even_when_its_newline_comes_later() {
        let input = encode("abc\nd\n", false);
        let expected = [("abc".to_string(), 8, false), ("d".to_string(), 12, false)];
        assert_eq!(frames(6, false, &[&input]), expected);
        let (a, b) = input.split_at(6);
        assert_eq!(frames(6, false, &[a, b]), expected);
    }

    #[test]
    fn an_odd_last_byte_waits_for_the_rest_of_its_code_unit() {
        let mut framer = Utf16Framer::starting_at(100, 0, false);
        framer.push(b"a\0\n");
        assert!(framer.next_frame().is_none());
        assert_eq!(framer.pending_bytes(), 3);
        framer.push(b"\0");
        assert_eq!(framer.next_frame().unwrap().end_offset(), 4);
        assert_eq!(framer.offset(), 4);
    }

    #[test]
    fn unpaired_surrogates_become_the_replacement_character() {
        let mut out = Vec::new();
        // A lone high surrogate, a lone low surrogate, then a valid pair (U+1F600).
        utf16_to_utf8(b"\x00\xd8a\0\x00\xdc\x3d\xd8\x00\xde", false, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\u{fffd}a\u{fffd}\u{1f600}"
        );
    }

    #[test]
    fn resumes_offsets_from_a_start_position() {
        let mut framer = Utf16Framer::starting_at(100, 1000, false);
        framer.push(b"x\0\n\0");
        assert_eq!(framer.next_frame().unwrap().end_offset(), 1004);
    }

    #[test]
    fn reads_straight_from_a_reader() {
        let mut framer = Utf16Framer::starting_at(100, 0, false);
        let mut input: &[u8] = b"a\0\n\0b\0\n";
        while framer.read_from(&mut input, 3).unwrap() > 0 {}
        assert_eq!(framer.next_frame().unwrap().bytes(), b"a\0");
        assert!(framer.next_frame().is_none());
        assert_eq!(framer.pending_bytes(), 3);
    }

    /// The naive model: the whole input as code units, split on 0x000A, each piece cut into
    /// pieces of at most `max_units` units (a piece of exactly `max_units` is not cut), decoded
    /// with `String::from_utf16_lossy`; the unterminated tail is not emitted.
    fn model(input: &[u8], max_bytes: usize, big: bool) -> Vec<(String, u64, bool)> {
        let max_units = (max_bytes & !1).max(2) / 2;
        let units: Vec<u16> = input
            .chunks_exact(2)
            .map(|p| {
                if big {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    u16::from_le_bytes([p[0], p[1]])
                }
            })
            .collect();
        let mut out = Vec::new();
        let mut pos = 0usize;
        let mut rest: &[u16] = &units;
        loop {
            match rest.iter().position(|&u| u == 0x000A) {
                Some(i) if i <= max_units => {
                    pos += i + 1;
                    out.push((String::from_utf16_lossy(&rest[..i]), pos as u64 * 2, false));
                    rest = &rest[i + 1..];
                }
                _ if rest.len() > max_units => {
                    pos += max_units;
                    out.push((
                        String::from_utf16_lossy(&rest[..max_units]),
                        pos as u64 * 2,
                        true,
                    ));
                    rest = &rest[max_units..];
                }
                _ => break,
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn property_test_utf16_framing_and_decoding_match_the_naive_model(
            // Bytes biased towards newlines, zeros and surrogate halves.
            input in proptest::collection::vec(
                prop_oneof![
                    Just(0x0Au8), Just(0u8), Just(0xD8u8), Just(0xDCu8), any::<u8>()
                ],
                0..200,
            ),
            max in 1usize..24,
            big in any::<bool>(),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let expected = model(&input, max, big);
            prop_assert_eq!(frames(max, big, &[&input]), expected.clone());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for c in cuts {
                chunks.push(&input[at..c]);
                at = c;
            }
            chunks.push(&input[at..]);
            prop_assert_eq!(frames(max, big, &chunks), expected);
        }
    }
}
