//! 16-byte compares for the DogStatsD scanner and the logs JSON encoder, and the prefetch hint
//! of the serializer: the one module of the crate allowed `unsafe`, for CPU instructions.
//!
//! On x86-64, SSE2 is part of the baseline instruction set (every x86-64 CPU has it, and the
//! compiler enables it for every x86-64 target), so no run-time detection is needed: one unaligned
//! load, one byte compare and one `movemask` test sixteen bytes, where the SWAR fallback needs
//! two words of five operations each. On other targets the same masks are computed byte by byte,
//! in safe code.
//!
//! The `unsafe` blocks are the load (it reads exactly the 16 bytes of a `&[u8; 16]`), the
//! register-only SSE2 intrinsics (unsafe to call only because they are `#[target_feature]`
//! functions; SSE2 is always present on x86-64) and `prefetch` (a hint, never a load).
#![allow(unsafe_code)]

/// Hints that the cache line holding `p` will be read soon. Only a hint: it never changes what
/// the program reads or writes, only when memory arrives in cache; a no-op off x86-64 and under
/// Miri.
#[inline(always)]
pub(crate) fn prefetch_line(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `prefetch` is a hint, not a load: it never faults, whatever the address (dangling,
    // unmapped or null), reads nothing into the program and writes nothing; it takes a raw
    // pointer only to name an address. SSE, which provides it, is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}

/// A 16-bit mask with bit `i` set where `chunk[i] == needle`.
#[inline(always)]
pub(crate) fn mask1(chunk: &[u8; 16], needle: u8) -> u32 {
    imp::mask1(chunk, needle)
}

/// A 16-bit mask with bit `i` set where `chunk[i]` is `a` or `b`.
#[inline(always)]
pub(crate) fn mask2(chunk: &[u8; 16], a: u8, b: u8) -> u32 {
    imp::mask2(chunk, a, b)
}

/// A 16-bit mask with bit `i` set where `chunk[i]` is `a`, `b` or `c`.
#[inline(always)]
pub(crate) fn mask3(chunk: &[u8; 16], a: u8, b: u8, c: u8) -> u32 {
    imp::mask3(chunk, a, b, c)
}

/// A 16-bit mask with bit `i` set where `chunk[i]` cannot be copied as is into a JSON string
/// the way Go writes one: below 0x20, 0x80 or above (not ASCII), `"`, `\\`, `<`, `>` or `&`.
#[inline(always)]
pub(crate) fn mask_json(chunk: &[u8; 16]) -> u32 {
    imp::mask_json(chunk)
}

/// Whether a byte is one [`mask_json`] flags.
#[inline(always)]
pub(crate) fn json_special(b: u8) -> bool {
    !(0x20..0x80).contains(&b) || matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&')
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    #[inline(always)]
    fn load(chunk: &[u8; 16]) -> __m128i {
        // SAFETY: `chunk` is a reference to 16 initialised bytes, exactly the 16 bytes the load
        // reads; `_mm_loadu_si128` has no alignment requirement; SSE2 is enabled on every x86-64
        // target (it is part of the baseline), so the instruction exists.
        unsafe { _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>()) }
    }

    #[inline(always)]
    pub(super) fn mask1(chunk: &[u8; 16], needle: u8) -> u32 {
        let v = load(chunk);
        // SAFETY: register-only SSE2 instructions, which every x86-64 CPU has (baseline).
        let bits = unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(needle as i8))) };
        // Only the low 16 bits of a `movemask` can be set: the cast is exact.
        bits as u32
    }

    #[inline(always)]
    pub(super) fn mask2(chunk: &[u8; 16], a: u8, b: u8) -> u32 {
        let v = load(chunk);
        // SAFETY: register-only SSE2 instructions, which every x86-64 CPU has (baseline).
        let bits = unsafe {
            _mm_movemask_epi8(_mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(a as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)),
            ))
        };
        bits as u32
    }

    #[inline(always)]
    pub(super) fn mask3(chunk: &[u8; 16], a: u8, b: u8, c: u8) -> u32 {
        let v = load(chunk);
        // SAFETY: register-only SSE2 instructions, which every x86-64 CPU has (baseline).
        let bits = unsafe {
            let eq = |x: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(x as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(eq(a), eq(b)), eq(c)))
        };
        bits as u32
    }

    #[inline(always)]
    pub(super) fn mask_json(chunk: &[u8; 16]) -> u32 {
        let v = load(chunk);
        // SAFETY: register-only SSE2 instructions, which every x86-64 CPU has (baseline).
        let bits = unsafe {
            let eq = |b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
            // A signed compare: bytes 0x80..=0xff are negative, so one `< 0x20` flags both the
            // control characters and every non-ASCII byte.
            let low_or_high = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            let quote_or_backslash = _mm_or_si128(eq(b'"'), eq(b'\\'));
            let html = _mm_or_si128(_mm_or_si128(eq(b'<'), eq(b'>')), eq(b'&'));
            _mm_movemask_epi8(_mm_or_si128(
                low_or_high,
                _mm_or_si128(quote_or_backslash, html),
            ))
        };
        bits as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    #[inline(always)]
    pub(super) fn mask1(chunk: &[u8; 16], needle: u8) -> u32 {
        chunk
            .iter()
            .enumerate()
            .fold(0, |m, (i, &x)| m | (u32::from(x == needle) << i))
    }

    #[inline(always)]
    pub(super) fn mask2(chunk: &[u8; 16], a: u8, b: u8) -> u32 {
        chunk
            .iter()
            .enumerate()
            .fold(0, |m, (i, &x)| m | (u32::from(x == a || x == b) << i))
    }

    #[inline(always)]
    pub(super) fn mask3(chunk: &[u8; 16], a: u8, b: u8, c: u8) -> u32 {
        chunk.iter().enumerate().fold(0, |m, (i, &x)| {
            m | (u32::from(x == a || x == b || x == c) << i)
        })
    }

    #[inline(always)]
    pub(super) fn mask_json(chunk: &[u8; 16]) -> u32 {
        chunk
            .iter()
            .enumerate()
            .fold(0, |m, (i, &x)| m | (u32::from(super::json_special(x)) << i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(chunk: &[u8; 16], is_match: impl Fn(u8) -> bool) -> u32 {
        let mut m = 0;
        for (i, &x) in chunk.iter().enumerate() {
            if is_match(x) {
                m |= 1 << i;
            }
        }
        m
    }

    #[test]
    fn masks_flag_high_bit_bytes_only_when_equal() {
        let mut chunk = [0u8; 16];
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = 0x78 + i as u8;
        }
        assert_eq!(mask1(&chunk, 0x80), 1 << 8);
        assert_eq!(mask1(&chunk, 0x00), 0);
        assert_eq!(mask2(&chunk, 0x78, 0x87), 1 | 1 << 15);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn property_test_masks_agree_with_a_naive_compare(
            chunk in proptest::array::uniform16(prop_oneof![Just(b','), Just(b'|'), any::<u8>()]),
            a in prop_oneof![Just(b','), any::<u8>()],
            b in prop_oneof![Just(b'|'), any::<u8>()],
        ) {
            prop_assert_eq!(mask1(&chunk, a), naive(&chunk, |x| x == a));
            prop_assert_eq!(mask2(&chunk, a, b), naive(&chunk, |x| x == a || x == b));
            prop_assert_eq!(
                mask3(&chunk, a, b, b'\n'),
                naive(&chunk, |x| x == a || x == b || x == b'\n')
            );
        }

        #[test]
        fn property_test_the_json_mask_flags_exactly_the_special_bytes(
            chunk in proptest::array::uniform16(prop_oneof![
                Just(b'"'), Just(b'\\'), Just(b'<'), Just(b'>'), Just(b'&'), Just(0x1f),
                Just(0x20), Just(0x7f), Just(0x80), any::<u8>()
            ]),
        ) {
            let naive_mask = naive(&chunk, |x| {
                !(0x20..0x80).contains(&x) || b"\"\\<>&".contains(&x)
            });
            prop_assert_eq!(mask_json(&chunk), naive_mask);
        }
    }
}
