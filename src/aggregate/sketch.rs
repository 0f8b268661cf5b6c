//! The Agent-flavoured DDSketch used for distributions.
//!
//! Parameters (spec §6): relative accuracy 1/128, γ = 1.015625, smallest indexable value 1e-9
//! (bias 1338), signed 16-bit keys, at most 4096 bins (the lowest keys are collapsed when over),
//! keys rounded half-to-even, bin counts `u32` (an overflowing bin spills into a second bin with
//! the same key, as the Agent does).
//!
//! Insertion buffers keys and merges them into the sorted bins every [`BUFFER_KEYS`] keys or at
//! flush, so an insert is a push; once the buffers have grown, inserting allocates nothing.

/// γ = 1 + 2 × (1/128).
const GAMMA: f64 = 1.015625;
/// Key offset: `-floor(ln(1e-9) / ln γ) + 1`.
const BIAS: i32 = 1338;
/// The key of +Inf (and the largest key).
const MAX_KEY: i32 = i16::MAX as i32;
/// The largest finite key.
const MAX_FINITE_KEY: i32 = MAX_KEY - 1;
/// At most this many bins per sketch.
pub(crate) const MAX_BINS: usize = 4096;
/// Keys buffered before they are merged into the bins.
const BUFFER_KEYS: usize = 512;

fn ln_gamma() -> f64 {
    (2.0f64 / 128.0).ln_1p()
}

/// The smallest value with a non-zero key: γ^(1 − bias).
fn norm_min() -> f64 {
    GAMMA.powi(1 - BIAS)
}

/// Rounds half to even (the Agent's `math.RoundToEven`).
fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// The bin key of a finite value (spec §6.2).
pub(crate) fn key(v: f64) -> i32 {
    if v < 0.0 {
        return -key(-v);
    }
    if v == 0.0 || v < norm_min() {
        return 0;
    }
    if v.is_infinite() {
        return MAX_KEY;
    }
    let i = round_half_even(v.ln() / ln_gamma()) + f64::from(BIAS);
    if i > f64::from(MAX_FINITE_KEY) {
        MAX_KEY
    } else if i < 1.0 {
        1
    } else {
        i as i32
    }
}

#[cfg(test)]
/// The value a key stands for: γ^(k − bias), mirrored for negative keys, 0 for key 0.
pub(crate) fn key_value(k: i32) -> f64 {
    match k.cmp(&0) {
        std::cmp::Ordering::Equal => 0.0,
        std::cmp::Ordering::Greater => GAMMA.powi(k - BIAS),
        std::cmp::Ordering::Less => -GAMMA.powi(-k - BIAS),
    }
}

/// One distribution bucket: summary plus bins.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AgentSketch {
    /// Sorted by key; a key may repeat when a bin overflowed `u32`.
    bins: Vec<(i16, u32)>,
    /// Inserted but not yet merged.
    pending: Vec<(i16, u32)>,
    /// Merge scratch, kept for its capacity.
    scratch: Vec<(i16, u32)>,
    count: i64,
    min: f64,
    max: f64,
    sum: f64,
}

impl AgentSketch {
    /// Forgets every value, keeping the buffers' capacity.
    pub(crate) fn clear(&mut self) {
        self.bins.clear();
        self.pending.clear();
        self.count = 0;
        self.min = 0.0;
        self.max = 0.0;
        self.sum = 0.0;
    }

    /// Inserts `v` with weight `n = 1/rate` (≥ 1; the caller has validated the rate). The summary
    /// counts `trunc(n)` samples and adds `n × v` to the sum; the bin gets `trunc(n)`. Non-finite
    /// values are the caller's to drop.
    pub(crate) fn insert(&mut self, v: f64, n: f64) {
        let whole = n as i64;
        if whole <= 0 {
            return;
        }
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count = self.count.saturating_add(whole);
        self.sum += n * v;
        let k = key(v) as i16;
        let mut left = u64::try_from(whole).unwrap_or(0);
        while left > 0 {
            let part = left.min(u64::from(u32::MAX));
            left -= part;
            self.pending.push((k, part as u32));
        }
        if self.pending.len() >= BUFFER_KEYS {
            self.compact();
        }
    }

    /// Merges the pending keys into the bins and enforces the bin limit.
    pub(crate) fn compact(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.sort_unstable_by_key(|&(k, _)| k);
        self.scratch.clear();
        let (mut a, mut b) = (self.bins.iter().peekable(), self.pending.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) => {
                    if x.0 <= y.0 {
                        a.next();
                        x
                    } else {
                        b.next();
                        y
                    }
                }
                (Some(&&x), None) => {
                    a.next();
                    x
                }
                (None, Some(&&y)) => {
                    b.next();
                    y
                }
                (None, None) => break,
            };
            push_bin(&mut self.scratch, next);
        }
        std::mem::swap(&mut self.bins, &mut self.scratch);
        self.pending.clear();
        self.trim();
    }

    /// Collapses the lowest bins into the lowest retained one while over [`MAX_BINS`].
    fn trim(&mut self) {
        let over = self.bins.len().saturating_sub(MAX_BINS);
        if over == 0 {
            return;
        }
        let removed: u64 = self
            .bins
            .iter()
            .take(over + 1)
            .map(|&(_, n)| u64::from(n))
            .sum();
        let Some(&(keep_key, _)) = self.bins.get(over) else {
            return;
        };
        self.scratch.clear();
        let mut left = removed;
        while left > 0 {
            let part = left.min(u64::from(u32::MAX));
            left -= part;
            self.scratch.push((keep_key, part as u32));
        }
        self.scratch
            .extend_from_slice(self.bins.get(over + 1..).unwrap_or_default());
        std::mem::swap(&mut self.bins, &mut self.scratch);
        // Spill bins may push the total back over the limit only with > 4 billion samples in the
        // collapsed range; the next trim collapses them again.
    }

    /// Adds every value of `other` into `self` (bin-wise sum, then trim). Shards never need it
    /// (a context lives on one shard); it is kept, and tested, for combining flushed sketches.
    #[allow(dead_code)]
    pub(crate) fn merge(&mut self, other: &AgentSketch) {
        let mut other = other.clone();
        other.compact();
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.pending.extend_from_slice(&other.bins);
        self.compact();
    }

    /// Number of samples.
    pub(crate) fn count(&self) -> i64 {
        self.count
    }
    /// Smallest value.
    pub(crate) fn min(&self) -> f64 {
        self.min
    }
    /// Largest value.
    pub(crate) fn max(&self) -> f64 {
        self.max
    }
    /// Sum of values (weighted).
    pub(crate) fn sum(&self) -> f64 {
        self.sum
    }
    /// `sum / count`.
    pub(crate) fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The bins, ascending by key (call [`compact`](Self::compact) first).
    pub(crate) fn bins(&self) -> &[(i16, u32)] {
        &self.bins
    }

    /// The value at quantile `q` in [0, 1]: the representative value of the bin holding the
    /// sample of rank `floor(q × (count − 1))` (call [`compact`](Self::compact) first).
    #[cfg(test)]
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.bins.iter().map(|&(_, n)| u64::from(n)).sum();
        if total == 0 {
            return None;
        }
        let rank = (q * (total - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        for &(k, n) in &self.bins {
            seen += u64::from(n);
            if seen > rank {
                return Some(key_value(i32::from(k)));
            }
        }
        None
    }
}

/// Appends a bin, adding into the last one when the key repeats (spilling past `u32::MAX`).
fn push_bin(bins: &mut Vec<(i16, u32)>, (k, n): (i16, u32)) {
    if let Some(last) = bins.last_mut() {
        if last.0 == k {
            let total = u64::from(last.1) + u64::from(n);
            if total <= u64::from(u32::MAX) {
                last.1 = total as u32;
                return;
            }
            last.1 = u32::MAX;
            bins.push((k, (total - u64::from(u32::MAX)) as u32));
            return;
        }
    }
    bins.push((k, n));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_match_the_reference_table() {
        for (v, k) in [
            (1.0, 1338),
            (2.0, 1383),
            (3.0, 1409),
            (10.0, 1487),
            (100.0, 1635),
            (1000.0, 1784),
            (1e6, 2229),
            (0.5, 1293),
            (1e-9, 1),
            (1e-10, 0),
            (0.0, 0),
            (-1.0, -1338),
            (-2.5, -1397),
            (f64::MAX, MAX_KEY),
        ] {
            assert_eq!(key(v), k, "key({v})");
        }
    }

    #[test]
    fn rounds_exact_halves_to_even() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(-2.5), -2.0);
        assert_eq!(round_half_even(2.4), 2.0);
        assert_eq!(round_half_even(2.6), 3.0);
    }

    #[test]
    fn a_rate_weights_the_summary_and_the_bin() {
        let mut s = AgentSketch::default();
        s.insert(1.0, 2.0);
        s.compact();
        assert_eq!(
            (s.count(), s.sum(), s.min(), s.max(), s.avg()),
            (2, 2.0, 1.0, 1.0, 1.0)
        );
        assert_eq!(s.bins(), [(1338, 2)]);
    }

    #[test]
    fn tiny_values_collapse_into_key_zero() {
        let mut s = AgentSketch::default();
        for v in [-2.5, 0.0, 1e-10] {
            s.insert(v, 1.0);
        }
        s.compact();
        assert_eq!(s.bins(), [(-1397, 1), (0, 2)]);
        assert_eq!(s.count(), 3);
    }

    #[test]
    fn over_4096_bins_the_lowest_keys_collapse() {
        let mut s = AgentSketch::default();
        // 5000 distinct keys: successive powers of γ.
        for i in 0..5000 {
            s.insert(GAMMA.powi(i - 2000), 1.0);
        }
        s.compact();
        assert_eq!(s.bins().len(), MAX_BINS);
        let total: u64 = s.bins().iter().map(|&(_, n)| u64::from(n)).sum();
        assert_eq!(total, 5000);
        assert_eq!(s.bins()[0].1, 5000 - 4095);
        assert!(s.bins().windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn an_overflowing_bin_spills_into_a_second_bin_with_the_same_key() {
        let mut s = AgentSketch::default();
        s.insert(1.0, 4_000_000_000.0);
        s.insert(1.0, 4_000_000_000.0);
        s.compact();
        assert_eq!(
            s.bins(),
            [
                (1338, u32::MAX),
                (1338, (8_000_000_000u64 - u64::from(u32::MAX)) as u32)
            ]
        );
    }

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn property_test_sketch_quantiles_are_within_the_relative_accuracy(
            values in prop::collection::vec(prop_oneof![1e-3f64..1e6, -1e6f64..-1e-3], 1..400),
            q in 0.0f64..=1.0,
        ) {
            let mut s = AgentSketch::default();
            for &v in &values {
                s.insert(v, 1.0);
            }
            s.compact();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let exact = exact_quantile(&sorted, q);
            let got = s.quantile(q).unwrap();
            prop_assert!(((got - exact) / exact).abs() <= 1.0 / 128.0, "q={q} exact={exact} got={got}");
        }

        #[test]
        fn property_test_merging_sketches_equals_inserting_everything_into_one(
            a in prop::collection::vec((-1e9f64..1e9, 1u32..5), 0..300),
            b in prop::collection::vec((-1e9f64..1e9, 1u32..5), 0..300),
        ) {
            let (mut left, mut right, mut all) =
                (AgentSketch::default(), AgentSketch::default(), AgentSketch::default());
            for &(v, n) in &a {
                left.insert(v, f64::from(n));
                all.insert(v, f64::from(n));
            }
            for &(v, n) in &b {
                right.insert(v, f64::from(n));
                all.insert(v, f64::from(n));
            }
            left.merge(&right);
            left.compact();
            all.compact();
            prop_assert_eq!(left.bins(), all.bins());
            prop_assert_eq!(left.count(), all.count());
            prop_assert_eq!(left.min(), all.min());
            prop_assert_eq!(left.max(), all.max());
            prop_assert!((left.sum() - all.sum()).abs() <= 1e-9 * all.sum().abs().max(1.0) * 1e3);
        }
    }
}
