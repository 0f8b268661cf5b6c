//! Number grammar of the DogStatsD protocol, matching Go's `strconv`.
//!
//! The Agent parses values and sample rates with `strconv.ParseFloat(s, 64)` and timestamps with
//! `strconv.ParseInt(s, 10, 64)`. This module reproduces those grammars for decimal input:
//!
//! * optional `+`/`-`, digits with an optional `.` and fraction, optional `e`/`E` exponent;
//! * `_` between two digits (Go's digit separator, e.g. `1_000.5`);
//! * `inf`, `infinity` (any case, optional sign) and `nan` (any case, **no** sign);
//! * a finite literal whose value overflows `f64` (`1e400`) is an error, as Go returns `ErrRange`.
//!
//! Divergence: Go also accepts hexadecimal floats (`0x1p3`); dogpipe rejects them.

/// Why a number did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Not in the grammar.
    Syntax,
    /// In the grammar but outside the type's range.
    Range,
}

/// Powers of ten that are exact in an `f64`, for the Clinger fast path.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a float with Go `ParseFloat` semantics (decimal forms, see the module docs).
#[inline]
pub(crate) fn parse_f64(s: &[u8]) -> Result<f64, NumberError> {
    if let Some(v) = fast_decimal(s) {
        return Ok(v);
    }
    parse_f64_slow(s)
}

/// Most significant digits the fast path reads: any 19-digit number fits a `u64`.
const FAST_PATH_MAX_DIGITS: usize = 19;

/// Exact conversion of plain decimals, the forms clients print.
///
/// * An integer of at most 19 digits (`-7154712251503669000`) is `m as f64`, which Rust rounds
///   to nearest, ties to even — the correctly rounded value `ParseFloat` returns.
/// * A decimal with a fraction whose digits make a mantissa `m <= 2^53` (`123.456`) is
///   `m / 10^f`: both operands are exact in `f64`, so the one division is correctly rounded.
///
/// Anything else (exponents, `_`, specials, longer mantissas) returns `None` for the slow path.
#[inline]
fn fast_decimal(s: &[u8]) -> Option<f64> {
    match parse_f64_prefix(s)? {
        (v, len) if len == s.len() => Some(v),
        _ => None,
    }
}

/// The plain decimal at the start of `s` (the forms of [`fast_decimal`]) and its length in
/// bytes; `None` when `s` does not start with one the fast path reads exactly. The caller checks
/// what follows: `1e5` yields `(1.0, 1)`.
#[inline(always)]
pub(crate) fn parse_f64_prefix(s: &[u8]) -> Option<(f64, usize)> {
    let (negative, digits) = match s.first()? {
        b'-' => (true, s.get(1..)?),
        b'+' => (false, s.get(1..)?),
        _ => (false, s),
    };
    let mut mantissa: u64 = 0;
    let mut count = 0;
    let mut rest = read_digits(digits, &mut mantissa, &mut count);
    let int_digits = count;
    let mut fraction_digits = 0;
    if let Some((b'.', tail)) = rest.split_first() {
        rest = read_digits(tail, &mut mantissa, &mut count);
        fraction_digits = count - int_digits;
    }
    // Wrapping arithmetic above is harmless: results past 19 digits are discarded here.
    if count == 0 || count > FAST_PATH_MAX_DIGITS {
        return None;
    }
    let magnitude = if fraction_digits == 0 {
        mantissa as f64
    } else {
        if mantissa > (1 << 53) {
            return None;
        }
        // `count <= 19` bounds the fraction length inside the table.
        mantissa as f64 / *EXACT_POWERS_OF_TEN.get(fraction_digits)?
    };
    let value = if negative { -magnitude } else { magnitude };
    Some((value, s.len() - rest.len()))
}

/// Reads the run of ASCII digits at the start of `s` into `mantissa` (wrapping: the caller
/// discards results past [`FAST_PATH_MAX_DIGITS`]), eight digits at a time while it can; returns
/// what follows the run.
#[inline(always)]
fn read_digits<'s>(mut s: &'s [u8], mantissa: &mut u64, count: &mut usize) -> &'s [u8] {
    while let Some((word, tail)) = s.split_first_chunk::<8>() {
        let word = u64::from_le_bytes(*word);
        if !eight_digits(word) {
            break;
        }
        *mantissa = mantissa
            .wrapping_mul(100_000_000)
            .wrapping_add(eight_digits_value(word));
        *count += 8;
        s = tail;
    }
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    *count += i;
    s.get(i..).unwrap_or_default()
}

/// Whether all eight bytes of `word` are ASCII digits: each high nibble is 3, and adding 6 to
/// the byte keeps it so (no carry can cross bytes once every high nibble is 3).
#[inline(always)]
fn eight_digits(word: u64) -> bool {
    const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    let high = word & HIGH_NIBBLES;
    let high_after_six = word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES;
    (high | (high_after_six >> 4)) == 0x3333_3333_3333_3333
}

/// The value of eight ASCII digits loaded little-endian (first digit in the lowest byte):
/// adjacent digits are combined into pairs, then pairs into fours, then the two fours, with
/// multiplies that keep every partial sum in its own lane.
#[inline(always)]
fn eight_digits_value(word: u64) -> u64 {
    const LANES: u64 = 0x0000_00ff_0000_00ff;
    const PAIRS_HIGH: u64 = 100 + (1_000_000 << 32);
    const PAIRS_LOW: u64 = 1 + (10_000 << 32);
    let digits = word.wrapping_sub(0x3030_3030_3030_3030);
    let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8);
    ((pairs & LANES)
        .wrapping_mul(PAIRS_HIGH)
        .wrapping_add(((pairs >> 16) & LANES).wrapping_mul(PAIRS_LOW)))
        >> 32
}

#[cold]
fn parse_f64_slow(s: &[u8]) -> Result<f64, NumberError> {
    if let Some(v) = special(s) {
        return Ok(v);
    }
    if !is_decimal_float(s) {
        return Err(NumberError::Syntax);
    }
    let value = if s.contains(&b'_') {
        let cleaned: Vec<u8> = s.iter().copied().filter(|&b| b != b'_').collect();
        std_parse(&cleaned)?
    } else {
        std_parse(s)?
    };
    if value.is_infinite() {
        // A finite literal that rounds to infinity: Go's ErrRange.
        return Err(NumberError::Range);
    }
    Ok(value)
}

fn std_parse(s: &[u8]) -> Result<f64, NumberError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or(NumberError::Syntax)
}

/// `inf`/`infinity` with an optional sign, `nan` without one; ASCII case-insensitive.
fn special(s: &[u8]) -> Option<f64> {
    let (sign, rest) = match s.first()? {
        b'-' => (-1.0, s.get(1..)?),
        b'+' => (1.0, s.get(1..)?),
        _ => (1.0, s),
    };
    if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        return Some(sign * f64::INFINITY);
    }
    if rest.len() == s.len() && s.eq_ignore_ascii_case(b"nan") {
        return Some(f64::NAN);
    }
    None
}

/// `[+-] digits [. digits] [(e|E) [+-] digits]` with at least one mantissa digit, where `_` may
/// stand only between two digits.
fn is_decimal_float(s: &[u8]) -> bool {
    let mut i = 0;
    if matches!(s.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let (int_digits, next) = digit_run(s, i);
    i = next;
    let mut frac_digits = 0;
    if s.get(i) == Some(&b'.') {
        let (n, next) = digit_run(s, i + 1);
        frac_digits = n;
        i = next;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (n, next) = digit_run(s, i);
        if n == 0 {
            return false;
        }
        i = next;
    }
    i == s.len()
}

/// Length in digits of the run of digits (with single `_` separators between digits) at `start`,
/// and the index after it. A `_` not followed by a digit ends the run before the `_`.
fn digit_run(s: &[u8], start: usize) -> (usize, usize) {
    let mut i = start;
    let mut digits = 0;
    while let Some(&b) = s.get(i) {
        if b.is_ascii_digit() {
            digits += 1;
            i += 1;
        } else if b == b'_' && digits > 0 && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
        } else {
            break;
        }
    }
    (digits, i)
}

/// Parses an `i64` with Go `ParseInt(s, 10, 64)` semantics: optional sign, ASCII digits only.
pub(crate) fn parse_i64(s: &[u8]) -> Result<i64, NumberError> {
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(NumberError::Syntax);
    }
    let mut value: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(NumberError::Syntax);
        }
        let d = i64::from(b - b'0');
        value = value
            .checked_mul(10)
            .and_then(|v| {
                if negative {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })
            .ok_or(NumberError::Range)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Result<f64, NumberError> {
        parse_f64(s.as_bytes())
    }

    #[test]
    fn parses_the_decimal_forms_go_accepts() {
        assert_eq!(f("1"), Ok(1.0));
        assert_eq!(f("+4"), Ok(4.0));
        assert_eq!(f("-10"), Ok(-10.0));
        assert_eq!(f(".5"), Ok(0.5));
        assert_eq!(f("5."), Ok(5.0));
        assert_eq!(f("1e3"), Ok(1000.0));
        assert_eq!(f("1E-3"), Ok(0.001));
        assert_eq!(f("2.39"), Ok(2.39));
        assert_eq!(f("0.1"), Ok(0.1));
        assert_eq!(f("1e-400"), Ok(0.0));
        assert_eq!(
            f("123456789012345678901234567890"),
            Ok(1.2345678901234568e29)
        );
    }

    #[test]
    fn fast_path_agrees_with_std_on_short_decimals() {
        for s in [
            "0.3",
            "9007199254740993",
            "123.456",
            "0.000001",
            "99999.99999",
            "-0.5",
            "1.",
        ] {
            let expected: f64 = s.parse().unwrap();
            assert_eq!(f(s), Ok(expected), "{s}");
        }
    }

    #[test]
    fn fast_path_rounds_long_integers_like_std() {
        for s in [
            "5034700276886511626",
            "-7154712251503669000",
            "9007199254740993",
            "9007199254740995",
            "9999999999999999999",
            "-9223372036854775808",
            "0000000000000000001",
            "12345678901234567.8",
            "1234567890.123456789",
        ] {
            let expected: f64 = s.parse().unwrap();
            assert_eq!(
                fast_decimal(s.as_bytes()).unwrap_or(expected),
                expected,
                "{s}"
            );
            assert_eq!(f(s), Ok(expected), "{s}");
        }
        assert_eq!(
            fast_decimal(b"5034700276886511626"),
            Some(5034700276886511626.0)
        );
        assert_eq!(fast_decimal(b"12345678901234567890"), None);
        assert_eq!(fast_decimal(b"1e5"), None);
    }

    #[test]
    fn reads_eight_digits_at_a_time_exactly() {
        for s in [
            b"00000000",
            b"12345678",
            b"99999999",
            b"10000001",
            b"87654321",
        ] {
            let word = u64::from_le_bytes(*s);
            assert!(eight_digits(word));
            let expected: u64 = std::str::from_utf8(s).unwrap().parse().unwrap();
            assert_eq!(eight_digits_value(word), expected);
        }
        for s in [
            b"1234567/",
            b":2345678",
            b"1234 678",
            b"12345\xb678",
            b"\xff2345678",
        ] {
            assert!(!eight_digits(u64::from_le_bytes(*s)), "{s:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn property_test_eight_digit_words_match_a_digit_by_digit_reading(
            bytes in proptest::array::uniform8(proptest::prop_oneof![b'0'..=b'9', proptest::prelude::any::<u8>()])
        ) {
            let word = u64::from_le_bytes(bytes);
            proptest::prop_assert_eq!(eight_digits(word), bytes.iter().all(u8::is_ascii_digit));
            if bytes.iter().all(u8::is_ascii_digit) {
                let expected = bytes.iter().fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
                proptest::prop_assert_eq!(eight_digits_value(word), expected);
            }
        }

        #[test]
        fn property_test_plain_decimals_parse_like_std(
            s in "[+-]?[0-9]{0,21}(\\.[0-9]{0,21})?"
        ) {
            let expected = s.parse::<f64>().map_err(|_| NumberError::Syntax);
            let got = f(&s);
            proptest::prop_assert_eq!(got.map(f64::to_bits), expected.map(f64::to_bits), "{:?}", s);
        }
    }

    #[test]
    fn accepts_underscores_between_digits_only() {
        assert_eq!(f("1_000"), Ok(1000.0));
        assert_eq!(f("1_23.50_0_0e+1_2"), Ok(1.235e14));
        for bad in ["_1", "1_", "1__0", "1_.5", "1._5", "1e_5", "1e5_", "-_1"] {
            assert_eq!(f(bad), Err(NumberError::Syntax), "{bad}");
        }
    }

    #[test]
    fn accepts_go_special_values() {
        for s in ["inf", "Inf", "+Inf", "INFINITY", "infinity", "+infinity"] {
            assert_eq!(f(s), Ok(f64::INFINITY), "{s}");
        }
        assert_eq!(f("-Inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(f("-infinity"), Ok(f64::NEG_INFINITY));
        assert!(f("NaN").unwrap().is_nan());
        assert!(f("nan").unwrap().is_nan());
    }

    #[test]
    fn rejects_what_go_rejects() {
        for s in [
            "", "+", "-", ".", "e5", "1e", "1e+", "abc", " 1", "1 ", "1x", "1.1.", "+nan", "-NaN",
            "infin", "in", "0x1p3", "--1", "1,5",
        ] {
            assert_eq!(f(s), Err(NumberError::Syntax), "{s:?}");
        }
    }

    #[test]
    fn rejects_overflow_as_a_range_error() {
        assert_eq!(f("1e400"), Err(NumberError::Range));
        assert_eq!(f("-1e400"), Err(NumberError::Range));
        assert_eq!(f("1.8e308"), Err(NumberError::Range));
        assert_eq!(f("1.7976931348623157e308"), Ok(f64::MAX));
    }

    #[test]
    fn parses_integers_like_go_parse_int() {
        assert_eq!(parse_i64(b"1657100430"), Ok(1_657_100_430));
        assert_eq!(parse_i64(b"+12"), Ok(12));
        assert_eq!(parse_i64(b"-12"), Ok(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), Err(NumberError::Range));
        for s in ["", "+", "-", "1_0", "ABCD", "1.0", " 1"] {
            assert_eq!(parse_i64(s.as_bytes()), Err(NumberError::Syntax), "{s:?}");
        }
    }
}
