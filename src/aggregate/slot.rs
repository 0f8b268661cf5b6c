//! One bucket of one context: the per-type aggregate (counter sum, last gauge, set members,
//! histogram samples, sketch).
//!
//! A slot whose bucket was flushed is cleared, not freed, so the next bucket reuses its buffers:
//! a context that keeps receiving samples allocates nothing once warm.

use super::config::HistogramAggregate;
use super::context::{Kind, hash_bytes};
use super::sketch::AgentSketch;
use hashbrown::HashTable;

const SET_SEED: u64 = 0x510e_527f_ade6_82d1;

/// The distinct members of a set: their bytes in one buffer, indexed by a hash table.
#[derive(Debug, Default)]
pub(crate) struct SetMembers {
    bytes: Vec<u8>,
    members: HashTable<(u32, u32)>,
}

impl SetMembers {
    fn insert(&mut self, member: &[u8]) {
        let hash = hash_bytes(SET_SEED, member);
        let bytes = &self.bytes;
        let get =
            |&(s, l): &(u32, u32)| bytes.get(s as usize..(s + l) as usize).unwrap_or_default();
        if self.members.find(hash, |m| get(m) == member).is_some() {
            return;
        }
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(member);
        let bytes = &self.bytes;
        self.members
            .insert_unique(hash, (start, member.len() as u32), |&(s, l)| {
                hash_bytes(
                    SET_SEED,
                    bytes.get(s as usize..(s + l) as usize).unwrap_or_default(),
                )
            });
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.members.clear();
    }
}

/// The samples of a histogram or timing bucket.
#[derive(Debug, Default)]
pub(crate) struct HistogramSamples {
    /// (value, weight = trunc(1/rate)).
    values: Vec<(f64, u64)>,
    count: u64,
    sum: f64,
}

impl HistogramSamples {
    fn insert(&mut self, v: f64, rate: f64) {
        let n = 1.0 / rate;
        let weight = n as u64;
        self.values.push((v, weight));
        self.count = self.count.saturating_add(weight);
        self.sum += v * n;
    }

    fn clear(&mut self) {
        self.values.clear();
        self.count = 0;
        self.sum = 0.0;
    }

    /// The first value (ascending) whose cumulative weight exceeds `target`.
    fn rank(&self, target: i128) -> f64 {
        let mut seen: i128 = 0;
        for &(v, w) in &self.values {
            seen += i128::from(w);
            if seen > target {
                return v;
            }
        }
        self.values.last().map_or(0.0, |&(v, _)| v)
    }

    /// Sorts the values; then [`stat`](Self::stat) and [`percentile`](Self::percentile) answer.
    pub(crate) fn prepare(&mut self) {
        self.values.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// One aggregate (spec §5.3); `.count` is already divided by the 10 s interval.
    pub(crate) fn stat(&self, a: HistogramAggregate) -> f64 {
        let count = self.count as f64;
        match a {
            HistogramAggregate::Max => self.values.last().map_or(0.0, |v| v.0),
            HistogramAggregate::Min => self.values.first().map_or(0.0, |v| v.0),
            HistogramAggregate::Median => self.rank((i128::from(self.count) - 1) / 2),
            HistogramAggregate::Avg => {
                if self.count == 0 {
                    0.0
                } else {
                    self.sum / count
                }
            }
            HistogramAggregate::Sum => self.sum,
            HistogramAggregate::Count => count / f64::from(super::BUCKET_SECONDS as u32),
        }
    }

    /// Percentile `p` (an integer percent): the Agent's rank `(p × count − 1) / 100`.
    pub(crate) fn percentile(&self, p: u32) -> f64 {
        self.rank((i128::from(p) * i128::from(self.count) - 1) / 100)
    }
}

/// The aggregate of one bucket.
#[derive(Debug)]
pub(crate) enum Agg {
    Counter(f64),
    Gauge(f64),
    Set(Box<SetMembers>),
    Histogram(Box<HistogramSamples>),
    Distribution(Box<AgentSketch>),
}

impl Agg {
    fn new(kind: Kind) -> Agg {
        match kind {
            Kind::Counter => Agg::Counter(0.0),
            Kind::Gauge => Agg::Gauge(0.0),
            Kind::Set => Agg::Set(Box::default()),
            Kind::Histogram => Agg::Histogram(Box::default()),
            Kind::Distribution => Agg::Distribution(Box::default()),
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Agg::Counter(v) | Agg::Gauge(v) => *v = 0.0,
            Agg::Set(s) => s.clear(),
            Agg::Histogram(h) => h.clear(),
            Agg::Distribution(d) => d.clear(),
        }
    }

    /// Adds a finite value with a valid rate in (0, 1].
    #[inline]
    pub(crate) fn add(&mut self, v: f64, rate: f64) {
        match self {
            Agg::Counter(sum) => *sum += v * (1.0 / rate),
            Agg::Gauge(last) => *last = v,
            Agg::Histogram(h) => h.insert(v, rate),
            Agg::Distribution(d) => d.insert(v, 1.0 / rate),
            Agg::Set(_) => {}
        }
    }

    /// Adds a set member.
    #[inline]
    pub(crate) fn add_member(&mut self, member: &[u8]) {
        if let Agg::Set(s) = self {
            s.insert(member);
        }
    }
}

/// One bucket of one context.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Bucket start, Unix seconds.
    pub(crate) start: i64,
    /// False once flushed: the slot waits, cleared, for a later bucket.
    pub(crate) live: bool,
    pub(crate) agg: Agg,
}

/// The live slot of bucket `start`, reusing a flushed slot (or creating one) when absent.
#[inline]
pub(crate) fn slot_for(slots: &mut Box<[Slot]>, kind: Kind, start: i64) -> Option<&mut Agg> {
    let pos = match slots.iter().position(|s| s.live && s.start == start) {
        Some(i) => i,
        None => match slots.iter().position(|s| !s.live) {
            Some(i) => {
                if let Some(s) = slots.get_mut(i) {
                    s.agg.clear();
                    s.start = start;
                    s.live = true;
                }
                i
            }
            None => {
                // Grow one slot at a time: a context rarely holds more than two buckets, and
                // the default growth (to four) would double what its slots cost.
                let mut grown = std::mem::take(slots).into_vec();
                grown.reserve_exact(1);
                grown.push(Slot {
                    start,
                    live: true,
                    agg: Agg::new(kind),
                });
                *slots = grown.into_boxed_slice();
                slots.len() - 1
            }
        },
    };
    slots.get_mut(pos).map(|s| &mut s.agg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[(f64, f64)]) -> HistogramSamples {
        let mut h = HistogramSamples::default();
        for &(v, r) in values {
            h.insert(v, r);
        }
        h.prepare();
        h
    }

    #[test]
    fn histogram_statistics_follow_the_agent_rank_formulas() {
        let h = hist(&[(3.0, 1.0), (1.0, 1.0), (4.0, 1.0), (2.0, 1.0)]);
        assert_eq!(h.stat(HistogramAggregate::Max), 4.0);
        assert_eq!(h.stat(HistogramAggregate::Min), 1.0);
        assert_eq!(h.stat(HistogramAggregate::Median), 2.0);
        assert_eq!(h.stat(HistogramAggregate::Avg), 2.5);
        assert_eq!(h.stat(HistogramAggregate::Sum), 10.0);
        assert_eq!(h.stat(HistogramAggregate::Count), 0.4);
        assert_eq!(h.percentile(95), 4.0);
        assert_eq!(h.percentile(50), 2.0);
        assert_eq!(h.percentile(0), 1.0);
    }

    #[test]
    fn histogram_weights_are_truncated_but_sums_are_not() {
        let h = hist(&[(10.0, 0.3)]);
        assert_eq!(h.stat(HistogramAggregate::Count), 0.3);
        assert!((h.stat(HistogramAggregate::Sum) - 10.0 / 0.3).abs() < 1e-9);
    }

    #[test]
    fn set_members_are_counted_once() {
        let mut s = SetMembers::default();
        for m in [&b"a"[..], b"b", b"a", b""] {
            s.insert(m);
        }
        assert_eq!(s.len(), 3);
        s.clear();
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_flushed_slot_is_reused_for_the_next_bucket() {
        let mut slots: Box<[Slot]> = Box::default();
        slot_for(&mut slots, Kind::Counter, 0)
            .unwrap()
            .add(1.0, 1.0);
        slots[0].live = false;
        slot_for(&mut slots, Kind::Counter, 10)
            .unwrap()
            .add(2.0, 1.0);
        assert_eq!(slots.len(), 1);
        assert!(matches!(slots[0].agg, Agg::Counter(v) if v == 2.0));
    }
}
