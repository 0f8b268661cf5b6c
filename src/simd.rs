//! Vector compares for the DogStatsD scanner (16-byte masks, and a search that counts a byte
//! on the way) and the logs JSON encoder, and the prefetch hint of the serializer: the one
//! module of the crate allowed `unsafe`, for CPU instructions.
//!
//! On x86-64, SSE2 is part of the baseline instruction set (every x86-64 CPU has it, and the
//! compiler enables it for every x86-64 target), so no run-time detection is needed: one unaligned
//! load, one byte compare and one `movemask` test sixteen bytes, where the SWAR fallback needs
//! two words of five operations each. On other targets the same masks are computed byte by byte,
//! in safe code. One search, the counting search over a long `#` field, goes on 32 bytes a step
//! with AVX2 when the CPU has it (detected at run time, once).
//!
//! The `unsafe` blocks are the loads (each reads exactly the 16 or 32 bytes of a `&[u8; N]`),
//! the register-only SSE2 and AVX2 intrinsics (unsafe to call only because they are
//! `#[target_feature]` functions; SSE2 is always present on x86-64, and the AVX2 function is
//! only called after the run-time check), and `prefetch` (a hint, never a load).
//!
//! CI runs this module's unit tests under Miri twice: as built for baseline x86-64 (the SSE2
//! paths), and with `-C target-feature=+avx2` (the AVX2 path).
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

/// The first `a` or `b` of `haystack` (its length when there is none), and how many `c` come
/// before it: one pass where a search and a count would take two.
#[inline]
pub(crate) fn find2_counting(haystack: &[u8], a: u8, b: u8, c: u8) -> (usize, usize) {
    imp::find2_counting(haystack, a, b, c, true)
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
        __m128i, _mm_add_epi64, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_cvtsi128_si64, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_or_si128, _mm_sad_epu8, _mm_set1_epi8, _mm_setzero_si128,
        _mm_srli_si128, _mm_sub_epi8,
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

    /// The sum of the 16 bytes of `v`.
    #[inline(always)]
    fn byte_sum(v: __m128i) -> usize {
        // SAFETY: register-only SSE2 instructions, which every x86-64 CPU has (baseline).
        let sum = unsafe {
            // Two sums of eight bytes, in the low 16 bits of each half; then added.
            let halves = _mm_sad_epu8(v, _mm_setzero_si128());
            _mm_cvtsi128_si64(_mm_add_epi64(halves, _mm_srli_si128::<8>(halves)))
        };
        // At most 16 * 255: the cast is exact.
        sum as usize
    }

    /// With `wide`, a search still going after [`LONG`] bytes, with [`LONG`] or more left, goes
    /// on 32 bytes a step when the CPU has AVX2 (tests turn it off to test the 16-byte steps on
    /// any CPU).
    #[inline]
    pub(super) fn find2_counting(
        haystack: &[u8],
        a: u8,
        b: u8,
        c: u8,
        wide: bool,
    ) -> (usize, usize) {
        // SAFETY: register-only SSE2 instructions, which every x86-64 CPU has (baseline).
        let (va, vb, vc) = unsafe {
            (
                _mm_set1_epi8(a as i8),
                _mm_set1_epi8(b as i8),
                _mm_set1_epi8(c as i8),
            )
        };
        // Per byte lane, how many `c` the chunks so far held: summed every 255 chunks, before
        // a lane can wrap.
        // SAFETY: as above.
        let mut lanes = unsafe { _mm_setzero_si128() };
        let mut chunks_in_lanes = 0;
        let mut counted = 0;
        let mut offset = 0;
        while let Some(chunk) = haystack.get(offset..).and_then(<[u8]>::first_chunk::<16>) {
            if wide && offset == LONG && haystack.len() - offset >= LONG && avx2() {
                let rest = haystack.get(offset..).unwrap_or_default();
                // SAFETY: the CPU has AVX2, the one requirement of the function.
                let (at, before) = unsafe { avx2::find2_counting(rest, a, b, c) };
                return (offset + at, counted + byte_sum(lanes) + before);
            }
            let v = load(chunk);
            // SAFETY: as above.
            let (stop, cs) = unsafe {
                let stop = _mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb));
                (_mm_movemask_epi8(stop) as u32, _mm_cmpeq_epi8(v, vc))
            };
            if stop != 0 {
                let at = stop.trailing_zeros();
                // SAFETY: as above.
                let before = unsafe { _mm_movemask_epi8(cs) as u32 } & ((1 << at) - 1);
                let total = counted + byte_sum(lanes) + before.count_ones() as usize;
                return (offset + at as usize, total);
            }
            // A match is all ones, -1: subtracting it adds one.
            // SAFETY: as above.
            lanes = unsafe { _mm_sub_epi8(lanes, cs) };
            chunks_in_lanes += 1;
            if chunks_in_lanes == 255 {
                counted += byte_sum(lanes);
                // SAFETY: as above.
                lanes = unsafe { _mm_setzero_si128() };
                chunks_in_lanes = 0;
            }
            offset += 16;
        }
        counted += byte_sum(lanes);
        // Fewer than 16 bytes left: byte by byte.
        let rest = haystack.get(offset..).unwrap_or_default();
        let (at, before) = super::find2_counting_bytes(rest, a, b, c);
        (offset + at, counted + before)
    }

    /// Bytes searched 16 at a time before a long search goes on 32 at a time, when it can.
    const LONG: usize = 64;

    /// Whether the CPU has AVX2 (not part of the x86-64 baseline); detected once, then cached.
    #[inline(always)]
    pub(super) fn avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// The 32-byte forms, for CPUs that have AVX2.
    // Newer compilers let an AVX2 function call AVX2 intrinsics without `unsafe`; the blocks
    // stay for the oldest compiler the crate supports (`rust-version`), which needs them.
    #[allow(unused_unsafe)]
    mod avx2 {
        use std::arch::x86_64::{
            __m256i, _mm_add_epi64, _mm_cvtsi128_si64, _mm_srli_si128, _mm256_castsi256_si128,
            _mm256_cmpeq_epi8, _mm256_extracti128_si256, _mm256_loadu_si256, _mm256_movemask_epi8,
            _mm256_or_si256, _mm256_sad_epu8, _mm256_set1_epi8, _mm256_setzero_si256,
            _mm256_sub_epi8,
        };

        /// The sum of the 32 bytes of `v`.
        ///
        /// # Safety
        /// The CPU must have AVX2.
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn byte_sum(v: __m256i) -> usize {
            // SAFETY: register-only AVX2 instructions; the caller checked the CPU has AVX2.
            let sum = unsafe {
                // Four sums of eight bytes, one per 64-bit lane; then added.
                let quads = _mm256_sad_epu8(v, _mm256_setzero_si256());
                let pairs = _mm_add_epi64(
                    _mm256_castsi256_si128(quads),
                    _mm256_extracti128_si256::<1>(quads),
                );
                _mm_cvtsi128_si64(_mm_add_epi64(pairs, _mm_srli_si128::<8>(pairs)))
            };
            // At most 32 * 255: the cast is exact.
            sum as usize
        }

        /// [`super::find2_counting`] 32 bytes a step.
        ///
        /// # Safety
        /// The CPU must have AVX2.
        #[target_feature(enable = "avx2")]
        pub(super) unsafe fn find2_counting(
            haystack: &[u8],
            a: u8,
            b: u8,
            c: u8,
        ) -> (usize, usize) {
            // SAFETY: register-only AVX2 instructions; the caller checked the CPU has AVX2.
            let (va, vb, vc, mut lanes) = unsafe {
                (
                    _mm256_set1_epi8(a as i8),
                    _mm256_set1_epi8(b as i8),
                    _mm256_set1_epi8(c as i8),
                    _mm256_setzero_si256(),
                )
            };
            let mut chunks_in_lanes = 0;
            let mut counted = 0;
            let mut offset = 0;
            while let Some(chunk) = haystack.get(offset..).and_then(<[u8]>::first_chunk::<32>) {
                // SAFETY: `chunk` is a reference to 32 initialised bytes, exactly the bytes the
                // unaligned load reads; the other instructions are register-only AVX2, and
                // the caller checked the CPU has AVX2.
                let (stop, cs) = unsafe {
                    let v = _mm256_loadu_si256(chunk.as_ptr().cast::<__m256i>());
                    let stop = _mm256_or_si256(_mm256_cmpeq_epi8(v, va), _mm256_cmpeq_epi8(v, vb));
                    (_mm256_movemask_epi8(stop) as u32, _mm256_cmpeq_epi8(v, vc))
                };
                if stop != 0 {
                    let at = stop.trailing_zeros();
                    // SAFETY: as above.
                    let before =
                        unsafe { _mm256_movemask_epi8(cs) as u32 } & ((1u64 << at) - 1) as u32;
                    // SAFETY: as above.
                    let total = counted + unsafe { byte_sum(lanes) } + before.count_ones() as usize;
                    return (offset + at as usize, total);
                }
                // SAFETY: as above.
                lanes = unsafe { _mm256_sub_epi8(lanes, cs) };
                if offset % 64 == 0 {
                    if let Some(ahead) = haystack.get(offset + 1024) {
                        super::super::prefetch_line(ahead);
                    }
                }
                chunks_in_lanes += 1;
                if chunks_in_lanes == 255 {
                    // SAFETY: as above.
                    counted += unsafe { byte_sum(lanes) };
                    // SAFETY: as above.
                    lanes = unsafe { _mm256_setzero_si256() };
                    chunks_in_lanes = 0;
                }
                offset += 32;
            }
            // SAFETY: as above.
            counted += unsafe { byte_sum(lanes) };
            // Fewer than 32 bytes left.
            let rest = haystack.get(offset..).unwrap_or_default();
            let (at, before) = super::super::find2_counting_bytes(rest, a, b, c);
            (offset + at, counted + before)
        }
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

/// [`find2_counting`] a byte at a time.
#[inline(always)]
fn find2_counting_bytes(haystack: &[u8], a: u8, b: u8, c: u8) -> (usize, usize) {
    let at = haystack
        .iter()
        .position(|&x| x == a || x == b)
        .unwrap_or(haystack.len());
    let before = haystack.get(..at).unwrap_or_default();
    (at, before.iter().filter(|&&x| x == c).count())
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    #[inline(always)]
    pub(super) fn find2_counting(
        haystack: &[u8],
        a: u8,
        b: u8,
        c: u8,
        _wide: bool,
    ) -> (usize, usize) {
        super::find2_counting_bytes(haystack, a, b, c)
    }

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

    #[test]
    fn find2_counting_counts_past_what_a_byte_lane_holds() {
        // The 16-byte lanes are summed after 255 chunks (4080 bytes); the 32-byte ones, which
        // start at byte 64, after 64 + 255 * 32 = 8224 bytes, and again at 16384.
        for len in [
            0, 15, 16, 17, 4080, 4095, 4096, 4097, 8223, 8224, 8225, 16_384, 16_385,
        ] {
            let mut hay = vec![b','; len];
            for wide in [false, true] {
                let found = imp::find2_counting(&hay, b'|', b'\n', b',', wide);
                assert_eq!(found, (len, len), "wide {wide}");
            }
            hay.push(b'\n');
            hay.push(b',');
            for wide in [false, true] {
                let found = imp::find2_counting(&hay, b'|', b'\n', b',', wide);
                assert_eq!(found, (len, len), "wide {wide}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        #[test]
        fn property_test_find2_counting_agrees_with_a_search_and_a_count(
            haystack in proptest::collection::vec(
                prop_oneof![4 => Just(b'x'), 2 => Just(b','), 1 => Just(b'|'), 1 => any::<u8>()],
                0..600,
            ),
            stop_at in proptest::option::of(0usize..8000),
        ) {
            let mut haystack = haystack;
            // Long stretches without a stop byte, to cross the 255-chunk sums.
            if let Some(at) = stop_at {
                haystack.retain(|&x| x != b'|' && x != b'\n');
                haystack = haystack.repeat(14);
                if let Some(x) = haystack.get_mut(at) {
                    *x = b'|';
                }
            }
            let expected = find2_counting_bytes(&haystack, b'|', b'\n', b',');
            for wide in [false, true] {
                prop_assert_eq!(imp::find2_counting(&haystack, b'|', b'\n', b',', wide), expected);
            }
        }
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
