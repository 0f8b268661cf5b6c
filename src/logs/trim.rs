//! Go's `bytes.TrimSpace`: ASCII and Unicode `White_Space`, stopping at invalid UTF-8.

/// Removes leading and trailing white space as Go's `bytes.TrimSpace` does: ASCII white space
/// (including `\r` and `\v`) and Unicode `White_Space` characters such as U+00A0 and U+0085.
/// Trimming stops at an invalid UTF-8 sequence.
#[inline]
pub(crate) fn trim_space(mut s: &[u8]) -> &[u8] {
    loop {
        match s.first() {
            Some(&b) if b < 0x80 => {
                if !is_ascii_space(b) {
                    break;
                }
                s = s.get(1..).unwrap_or_default();
            }
            Some(_) => match first_char(s) {
                Some((c, len)) if c.is_whitespace() => s = s.get(len..).unwrap_or_default(),
                _ => break,
            },
            None => return s,
        }
    }
    loop {
        match s.last() {
            Some(&b) if b < 0x80 => {
                if !is_ascii_space(b) {
                    break;
                }
                s = s.get(..s.len() - 1).unwrap_or_default();
            }
            Some(_) => match last_char(s) {
                Some((c, len)) if c.is_whitespace() => {
                    s = s.get(..s.len() - len).unwrap_or_default();
                }
                _ => break,
            },
            None => return s,
        }
    }
    s
}

#[inline]
fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn first_char(s: &[u8]) -> Option<(char, usize)> {
    let len = s.len().min(4);
    (1..=len).find_map(|n| {
        let c = std::str::from_utf8(s.get(..n)?).ok()?.chars().next()?;
        Some((c, n))
    })
}

fn last_char(s: &[u8]) -> Option<(char, usize)> {
    let len = s.len().min(4);
    (1..=len).find_map(|n| {
        let c = std::str::from_utf8(s.get(s.len() - n..)?)
            .ok()?
            .chars()
            .next_back()?;
        Some((c, n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_ascii_space_including_carriage_return_and_vertical_tab() {
        assert_eq!(trim_space(b" \t\r\x0b\x0chi \r\n"), b"hi");
        assert_eq!(trim_space(b"  "), b"");
        assert_eq!(trim_space(b""), b"");
    }

    #[test]
    fn trims_unicode_white_space_like_go() {
        assert_eq!(trim_space("\u{a0}hi\u{a0}".as_bytes()), b"hi");
        assert_eq!(trim_space("\u{85}\u{3000}hi\u{2029}".as_bytes()), b"hi");
        assert_eq!(trim_space("é ".as_bytes()), "é".as_bytes());
    }

    #[test]
    fn stops_at_invalid_utf8() {
        assert_eq!(trim_space(b"\xe9 x \xe9"), b"\xe9 x \xe9");
        assert_eq!(trim_space(b" caf\xe9 "), b"caf\xe9");
    }

    #[test]
    fn does_not_trim_separators_go_does_not_consider_space() {
        assert_eq!(trim_space(b"\x1chi\x1f"), b"\x1chi\x1f");
        assert_eq!(trim_space("\u{200b}hi".as_bytes()), "\u{200b}hi".as_bytes());
    }
}
