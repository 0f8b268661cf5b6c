//! Byte search tuned for DogStatsD's short distances.
//!
//! Separators in a message are usually a few to a few dozen bytes apart (a tag, a value, a name),
//! where a call into `memchr` costs more than the search. These functions test sixteen bytes at
//! a time with one vector compare ([`simd`]) for the first [`VECTOR_BYTES`] bytes, then hand the
//! rest to `memchr`'s vector code, which wins on long runs. Haystacks shorter than sixteen bytes
//! are tested eight bytes at a time in a `u64` (SWAR).

use crate::simd;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set bit is the high bit of the first byte of `word` (in little-endian
/// order) that equals the byte repeated in `pattern`; zero when none does.
///
/// Bits above the first match may be spurious (a borrow from a zero byte can flag the byte
/// above it), so only the lowest set bit is meaningful — all the callers use.
#[inline(always)]
fn matches(word: u64, pattern: u64) -> u64 {
    let x = word ^ pattern;
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The index of the lowest byte flagged in a non-zero `matches` mask.
#[inline(always)]
fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// The search of the last, partial word of `haystack` (from `offset`, fewer than eight bytes
/// left): the last eight bytes are tested as one word. The bytes it shares with words already
/// tested hold no match, so its first match is the answer. Byte by byte when `haystack` is
/// shorter than a word.
#[inline(always)]
fn last_word(
    haystack: &[u8],
    offset: usize,
    mask: impl Fn(u64) -> u64,
    is_match: impl Fn(u8) -> bool,
) -> Option<usize> {
    if offset >= haystack.len() {
        return None;
    }
    match haystack.split_last_chunk::<8>() {
        Some((head, word)) => {
            let found = mask(u64::from_le_bytes(*word));
            (found != 0).then(|| head.len() + first(found))
        }
        None => haystack.iter().position(|&b| is_match(b)),
    }
}

/// The index of the first `needle` in `haystack`.
#[inline]
pub(crate) fn find(needle: u8, haystack: &[u8]) -> Option<usize> {
    if haystack.len() < VECTOR {
        return find_swar(needle, haystack);
    }
    find_vector(
        haystack,
        |chunk| simd::mask1(chunk, needle),
        |rest| memchr::memchr(needle, rest),
    )
}

/// The index of the first `a` or `b` in `haystack`.
#[inline]
pub(crate) fn find2(a: u8, b: u8, haystack: &[u8]) -> Option<usize> {
    if haystack.len() < VECTOR {
        return find2_swar(a, b, haystack);
    }
    find_vector(
        haystack,
        |chunk| simd::mask2(chunk, a, b),
        |rest| memchr::memchr2(a, b, rest),
    )
}

/// The index of the first `a`, `b` or `c` in `haystack`.
#[inline]
pub(crate) fn find3(a: u8, b: u8, c: u8, haystack: &[u8]) -> Option<usize> {
    if haystack.len() < VECTOR {
        let (pa, pb, pc) = (
            ONES * u64::from(a),
            ONES * u64::from(b),
            ONES * u64::from(c),
        );
        let mask = |word| matches(word, pa) | matches(word, pb) | matches(word, pc);
        let is_match = |x| x == a || x == b || x == c;
        if let Some((word, _)) = haystack.split_first_chunk::<8>() {
            let found = mask(u64::from_le_bytes(*word));
            if found != 0 {
                return Some(first(found));
            }
            return last_word(haystack, 8, mask, is_match);
        }
        return last_word(haystack, 0, mask, is_match);
    }
    find_vector(
        haystack,
        |chunk| simd::mask3(chunk, a, b, c),
        |rest| memchr::memchr3(a, b, c, rest),
    )
}

/// The first `|` of `s`; with `OPEN`, the first `|` or `\n`, and whether it was a `\n`.
#[inline(always)]
pub(crate) fn find_pipe<const OPEN: bool>(s: &[u8]) -> Option<(usize, bool)> {
    if OPEN {
        let i = find2(b'|', b'\n', s)?;
        Some((i, s.get(i) == Some(&b'\n')))
    } else {
        Some((find(b'|', s)?, false))
    }
}

/// Bytes per vector compare.
const VECTOR: usize = 16;

/// Bytes searched sixteen at a time before switching to `memchr`.
const VECTOR_BYTES: usize = 64;

/// The search of a `haystack` of at least [`VECTOR`] bytes: sixteen bytes at a time for the first
/// [`VECTOR_BYTES`], then `long` on the rest. A last partial chunk is tested as the last sixteen
/// bytes of `haystack`: the bytes it shares with chunks already tested hold no match, so its
/// first match is the answer.
#[inline(always)]
fn find_vector(
    haystack: &[u8],
    mask: impl Fn(&[u8; VECTOR]) -> u32,
    long: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    let mut offset = 0;
    let mut rest = haystack;
    while offset < VECTOR_BYTES {
        let Some((chunk, tail)) = rest.split_first_chunk::<VECTOR>() else {
            if rest.is_empty() {
                return None;
            }
            let (head, chunk) = haystack.split_last_chunk::<VECTOR>()?;
            let found = mask(chunk);
            return (found != 0).then(|| head.len() + found.trailing_zeros() as usize);
        };
        let found = mask(chunk);
        if found != 0 {
            return Some(offset + found.trailing_zeros() as usize);
        }
        offset += VECTOR;
        rest = tail;
    }
    long(rest).map(|i| offset + i)
}

/// [`find`] on a haystack shorter than [`VECTOR`], a word at a time.
#[inline(always)]
fn find_swar(needle: u8, haystack: &[u8]) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let mask = |word| matches(word, pattern);
    if let Some((word, _)) = haystack.split_first_chunk::<8>() {
        let found = mask(u64::from_le_bytes(*word));
        if found != 0 {
            return Some(first(found));
        }
        return last_word(haystack, 8, mask, |b| b == needle);
    }
    last_word(haystack, 0, mask, |b| b == needle)
}

/// [`find2`] on a haystack shorter than [`VECTOR`], a word at a time.
#[inline(always)]
fn find2_swar(a: u8, b: u8, haystack: &[u8]) -> Option<usize> {
    let (pa, pb) = (ONES * u64::from(a), ONES * u64::from(b));
    let mask = |word| matches(word, pa) | matches(word, pb);
    if let Some((word, _)) = haystack.split_first_chunk::<8>() {
        let found = mask(u64::from_le_bytes(*word));
        if found != 0 {
            return Some(first(found));
        }
        return last_word(haystack, 8, mask, |x| x == a || x == b);
    }
    last_word(haystack, 0, mask, |x| x == a || x == b)
}

/// A mask of where `needle` is in the (up to) 64 bytes of `haystack` from `base`: bit `i` is set
/// when `haystack[base + i] == needle`. Sixteen bytes per vector compare. Fewer than 64 bytes
/// from `base` are tested as the last 64 bytes of `haystack`, their bits shifted past the bytes
/// that come before `base`; only a haystack shorter than 64 bytes takes a slower path.
#[inline]
pub(crate) fn mask64(needle: u8, haystack: &[u8], base: usize) -> u64 {
    if let Some(block) = haystack.get(base..).and_then(<[u8]>::first_chunk::<64>) {
        return mask_block(needle, block);
    }
    match haystack.last_chunk::<64>() {
        // The last 64 bytes, without the bits of the bytes before `base`. (`base` is past the
        // start of that block, or a whole block would have been there; a `base` past the end
        // shifts every bit out.)
        Some(last) => u32::try_from(base + 64 - haystack.len())
            .ok()
            .and_then(|shift| mask_block(needle, last).checked_shr(shift))
            .unwrap_or(0),
        None => mask_short(needle, haystack, base),
    }
}

/// [`mask64`] on a whole block: four compares, no bounds to check.
#[inline(always)]
fn mask_block(needle: u8, block: &[u8; 64]) -> u64 {
    let mut found = 0u64;
    for (k, chunk) in block.chunks_exact(VECTOR).enumerate() {
        if let Some(chunk) = chunk.first_chunk::<VECTOR>() {
            found |= u64::from(simd::mask1(chunk, needle)) << (VECTOR * k);
        }
    }
    found
}

/// [`mask64`] on a haystack shorter than 64 bytes.
#[inline(never)]
fn mask_short(needle: u8, haystack: &[u8], base: usize) -> u64 {
    let mut found = 0u64;
    for k in 0..4 {
        let offset = base + VECTOR * k;
        let rest = haystack.get(offset..).unwrap_or_default();
        if let Some(chunk) = rest.first_chunk::<VECTOR>() {
            found |= u64::from(simd::mask1(chunk, needle)) << (VECTOR * k);
            continue;
        }
        if rest.is_empty() {
            break;
        }
        let partial = match haystack.last_chunk::<VECTOR>() {
            // The last chunk's first `VECTOR - rest.len()` bytes come before `offset`.
            Some(last) => simd::mask1(last, needle) >> (VECTOR - rest.len()),
            None => rest
                .iter()
                .enumerate()
                .fold(0, |m, (i, &b)| m | (u32::from(b == needle) << i)),
        };
        found |= u64::from(partial) << (VECTOR * k);
        break;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_the_first_match_in_every_position_and_length() {
        for len in 0..150 {
            for at in 0..len {
                let mut hay = vec![b'a'; len];
                hay[at] = b',';
                if at + 1 < len {
                    hay[at + 1] = b',';
                }
                assert_eq!(find(b',', &hay), Some(at), "len {len} at {at}");
                assert_eq!(find2(b',', b'|', &hay), Some(at), "len {len} at {at}");
                assert_eq!(find3(b':', b',', b'|', &hay), Some(at), "len {len} at {at}");
                hay[at] = b'|';
                assert_eq!(find3(b':', b',', b'|', &hay), Some(at), "len {len} at {at}");
                assert_eq!(find2(b',', b'|', &hay), Some(at), "len {len} at {at}");
            }
            assert_eq!(find(b',', &vec![b'a'; len]), None);
            assert_eq!(find2(b',', b'|', &vec![b'a'; len]), None);
        }
    }

    #[test]
    fn does_not_match_bytes_that_differ_only_in_the_high_bit_or_by_carry() {
        let hay = [0xac, 0x2d, 0x2b, 0x00, 0xff, 0x01, 0x80, 0x7f, b','];
        assert_eq!(find(b',', &hay), Some(8));
        assert_eq!(find2(b',', 0x00, &hay), Some(3));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn property_test_find_agrees_with_a_naive_search(
            hay in proptest::collection::vec(prop_oneof![Just(b','), Just(b'|'), any::<u8>()], 0..300),
            a in any::<u8>(),
            b in any::<u8>(),
        ) {
            prop_assert_eq!(find(a, &hay), hay.iter().position(|&x| x == a));
            prop_assert_eq!(find2(a, b, &hay), hay.iter().position(|&x| x == a || x == b));
            prop_assert_eq!(
                find3(a, b, b'\n', &hay),
                hay.iter().position(|&x| x == a || x == b || x == b'\n')
            );
            for base in [0, 1, 15, 16, 17, 63, 64, 100, 299, 300, 400] {
                let naive = (0..64)
                    .filter(|i| hay.get(base + i) == Some(&a))
                    .fold(0u64, |m, i| m | 1 << i);
                prop_assert_eq!(mask64(a, &hay, base), naive, "base {}", base);
            }
        }
    }
}
