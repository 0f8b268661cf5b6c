//! One aggregation shard: its contexts, their buckets, and the flush.

use super::BUCKET_SECONDS;
use super::config::AggregatorConfig;
use super::context::{Context, ContextRef, ContextStore, Kind, Stamp};
use super::known::ContextKey;
use super::output::{Flush, Point, Points, Series, SeriesKind, Sketch, SketchPoint, Text};
use super::slot::{Agg, slot_for};
use super::stats::AggregateStats;
use std::sync::Arc;

/// The start of the 10 s bucket holding `t` (Unix seconds).
#[inline]
pub(crate) fn bucket_start(t: i64) -> i64 {
    t.saturating_sub(t.rem_euclid(BUCKET_SECONDS))
}

/// The smallest sample rate taken as given: `1 / u32::MAX`, so a sample weighs at most
/// `u32::MAX` (one sketch bin). Smaller (and non-positive, > 1 or NaN) rates are taken as 1.
pub(crate) const MIN_SAMPLE_RATE: f64 = 1.0 / u32::MAX as f64;

/// Whether the sample rate changes how a value of this kind counts.
fn rate_matters(kind: Kind) -> bool {
    matches!(kind, Kind::Counter | Kind::Histogram | Kind::Distribution)
}

/// The state one thread owns: contexts, buckets, counters. No locks: a shard is `&mut` only.
#[derive(Debug)]
pub(crate) struct Shard {
    config: Arc<AggregatorConfig>,
    store: ContextStore,
    limit: usize,
    stats: AggregateStats,
    /// Series name suffixes of histograms: aggregates then percentiles.
    suffixes: Vec<(Vec<u8>, SeriesKind)>,
    scratch: Vec<usize>,
    /// Hashes of the contexts the last flush removed, sorted.
    expired: Vec<u64>,
    /// The flush under way.
    walk: Option<Walk>,
}

/// A flush under way: where its walk over the context table is.
#[derive(Debug)]
struct Walk {
    now: i64,
    include_open: bool,
    zero_buckets: Vec<i64>,
    /// The next bucket of the table to visit.
    next: usize,
    /// Contexts visited (marked with the store's epoch).
    visited: usize,
    /// `contexts_created` when the walk began.
    created_before: u64,
    /// Series and sketches the walk can still emit at most.
    series: usize,
    sketches: usize,
}

impl Shard {
    /// A shard holding at most `limit` contexts.
    pub(crate) fn new(config: Arc<AggregatorConfig>, limit: usize) -> Shard {
        let mut suffixes = Vec::new();
        for a in &config.histogram_aggregates {
            let kind = if *a == super::HistogramAggregate::Count {
                SeriesKind::Rate
            } else {
                SeriesKind::Gauge
            };
            suffixes.push((format!(".{}", a.as_str()).into_bytes(), kind));
        }
        for p in &config.histogram_percentiles {
            suffixes.push((format!(".{p}percentile").into_bytes(), SeriesKind::Gauge));
        }
        Shard {
            config,
            store: ContextStore::default(),
            limit,
            stats: AggregateStats::default(),
            suffixes,
            scratch: Vec::new(),
            expired: Vec::new(),
            walk: None,
        }
    }

    /// Counters, with the live context count.
    pub(crate) fn stats(&self) -> AggregateStats {
        AggregateStats {
            live_contexts: self.store.len() as u64,
            interned_strings: (self.store.interner.len() + self.store.tags.len()) as u64,
            ..self.stats
        }
    }

    /// Aggregates the values of one message into the context `r`, at time `now`.
    ///
    /// `member` is the member of a set (then `values` is ignored). Non-finite values are dropped
    /// and counted; a sample rate outside (0, 1] is taken as 1 and counted.
    #[inline]
    pub(crate) fn ingest(
        &mut self,
        r: &ContextRef<'_>,
        values: impl Iterator<Item = f64>,
        member: Option<&[u8]>,
        rate: f64,
        now: i64,
    ) {
        let Shard {
            store,
            stats,
            limit,
            ..
        } = self;
        let limit = *limit;
        let stamp = store.stamp;
        // The context is looked up (and made) only once a value is known to count.
        let context = move || {
            // Moving the borrow in makes this closure `FnOnce`, so it may hand the borrow out.
            let store = store;
            let mut created = 0;
            let mut c = store.get_or_insert(r, limit, &mut created).ok();
            if let Some(c) = c.as_deref_mut() {
                c.seen(now, stamp);
            }
            (c, created)
        };
        add_values(stats, r.kind, context, values, member, rate, now);
    }

    /// Hints that the context of `key` will be updated soon (see
    /// [`ContextStore::prefetch_known`]).
    #[inline]
    pub(crate) fn prefetch_known(&self, key: &ContextKey) {
        self.store.prefetch_known(key);
    }

    /// Like [`ingest`](Self::ingest) for a context known by its interned handles. Returns
    /// `false`, having counted nothing, when the context is gone (expired since it was cached).
    #[inline]
    pub(crate) fn ingest_known(
        &mut self,
        key: &ContextKey,
        values: impl Iterator<Item = f64>,
        member: Option<&[u8]>,
        rate: f64,
        now: i64,
    ) -> bool {
        let Shard { store, stats, .. } = self;
        let stamp = store.stamp;
        let Some(c) = store.find_known(key) else {
            return false;
        };
        let context = move || {
            c.seen(now, stamp);
            (Some(c), 0)
        };
        add_values(stats, key.kind, context, values, member, rate, now);
        true
    }

    /// The interned handles of the context of `r`, when it exists.
    pub(crate) fn key_of(&mut self, r: &ContextRef<'_>) -> Option<ContextKey> {
        self.store.key_of(r)
    }

    /// Starts a flush that [`flush_step`](Self::flush_step) makes a chunk at a time, with
    /// samples ingested between the chunks: it emits every bucket that closed before `now` (all
    /// buckets when `include_open`), with zeros for idle counters in `zero_buckets` (from
    /// [`BucketClock::close`]), then removes expired contexts. A flush under way must be
    /// finished first.
    ///
    /// What a sample ingested during the walk does: it lands in a bucket that is open at the
    /// flush's `now` (unless the clock went back), so it is emitted by the next flush whether its
    /// context was visited yet or not. A context made during the walk is not visited.
    pub(crate) fn begin_flush(&mut self, now: i64, include_open: bool, zero_buckets: Vec<i64>) {
        // Series and sketches this flush can emit at most (one series per context, one per
        // suffix for histograms, one sketch per distribution), so that a chunk reserves what it
        // can hold instead of growing by doubling: on a large flush the doublings' waste was a
        // third of its memory.
        let (mut series, mut sketches) = (0usize, 0usize);
        for kind in self.store.kinds() {
            match kind {
                Kind::Histogram => series += self.suffixes.len(),
                Kind::Distribution => sketches += 1,
                _ => series += 1,
            }
        }
        debug_assert!(self.walk.is_none(), "a flush is under way");
        self.store.stamp = Stamp {
            epoch: self.store.stamp.epoch.wrapping_add(1),
            since: now,
        };
        self.walk = Some(Walk {
            now,
            include_open,
            zero_buckets,
            next: 0,
            visited: 0,
            created_before: self.stats.contexts_created,
            series,
            sketches,
        });
    }

    /// Emits the closed buckets of contexts of the flush under way into `out` until it holds
    /// `chunk` series and sketches or every context was visited. Then (and when no flush is
    /// under way) removes the expired contexts and returns how many.
    pub(crate) fn flush_step(&mut self, chunk: usize, out: &mut Flush) -> Option<usize> {
        let Some(walk) = self.walk.as_mut() else {
            return Some(0);
        };
        let chunk = chunk.max(1);
        if out.series.capacity() == 0 && out.sketches.capacity() == 0 {
            out.series
                .reserve_exact(walk.series.min(chunk.saturating_add(64)));
            out.sketches.reserve_exact(walk.sketches.min(chunk));
        }
        let cutoff = bucket_start(walk.now);
        let include_open = walk.include_open;
        let closes = |start: i64| include_open || start < cutoff;
        let stamp = self.store.stamp;
        loop {
            if walk.next >= self.store.buckets() {
                // Every context was visited or made during the walk, unless an insert rehashed
                // the table (moving contexts behind the cursor): then walk again, skipping them.
                let made = self.stats.contexts_created - walk.created_before;
                if walk.visited.saturating_add(made as usize) >= self.store.len() {
                    break;
                }
                walk.next = 0;
            }
            let i = walk.next;
            walk.next += 1;
            let Some(c) = self.store.at(i) else { continue };
            if c.epoch == stamp.epoch {
                continue;
            }
            walk.visited += 1;
            let before = (out.series.len(), out.sketches.len());
            emit(
                c,
                &self.config,
                &self.suffixes,
                &walk.zero_buckets,
                &closes,
                &mut self.scratch,
                out,
            );
            c.visited(stamp);
            walk.series = walk.series.saturating_sub(out.series.len() - before.0);
            walk.sketches = walk.sketches.saturating_sub(out.sketches.len() - before.1);
            if out.series.len() + out.sketches.len() >= chunk {
                return None;
            }
        }
        let now = walk.now;
        self.walk = None;
        let config = &*self.config;
        let gone = &mut self.expired;
        gone.clear();
        let expired = self.store.retain(|c| {
            let ttl = config.context_expiry_seconds
                + if c.kind == Kind::Counter {
                    config.expiry_seconds
                } else {
                    0
                };
            let keep = c.slots.iter().any(|s| s.live) || c.last_seen.saturating_add(ttl) >= now;
            if !keep {
                gone.push(c.hash);
            }
            keep
        });
        gone.sort_unstable();
        self.stats.contexts_expired += expired as u64;
        Some(expired)
    }

    /// Whether the last flush removed a context of this hash.
    pub(crate) fn expired(&self, hash: u64) -> bool {
        self.expired.binary_search(&hash).is_ok()
    }

    /// See [`ContextStore::sweep`].
    pub(crate) fn sweep(&mut self) {
        self.store.sweep();
    }
}

/// Adds the values (or the set member) of one message to a context, which `context` yields
/// (with the number of contexts it created, having noted the sample's time with
/// [`Context::seen`]) the first time a value counts; `None` from it means the context limit
/// dropped the message.
#[inline]
fn add_values<'s>(
    stats: &mut AggregateStats,
    kind: Kind,
    context: impl FnOnce() -> (Option<&'s mut Context>, u64),
    values: impl Iterator<Item = f64>,
    member: Option<&[u8]>,
    rate: f64,
    now: i64,
) {
    let bucket = bucket_start(now);
    let rate_ok = !rate_matters(kind) || (MIN_SAMPLE_RATE..=1.0).contains(&rate);
    let rate = if rate_ok { rate } else { 1.0 };
    let mut context = Some(context);
    let mut open = |stats: &mut AggregateStats| -> Option<&'s mut Agg> {
        let (c, created) = context.take()?();
        stats.contexts_created += created;
        let c = c?;
        slot_for(&mut c.slots, kind, bucket)
    };
    if let Some(member) = member {
        match open(stats) {
            Some(a) => {
                a.add_member(member);
                stats.samples += 1;
            }
            None => stats.context_limit += 1,
        }
        return;
    }
    let mut agg: Option<&mut Agg> = None;
    let mut over = false;
    let mut added = 0u64;
    for v in values {
        if !v.is_finite() {
            stats.non_finite += 1;
            continue;
        }
        if over {
            stats.context_limit += 1;
            continue;
        }
        if agg.is_none() {
            agg = open(stats);
            if agg.is_none() {
                over = true;
                stats.context_limit += 1;
                continue;
            }
        }
        if let Some(a) = agg.as_deref_mut() {
            a.add(v, rate);
            added += 1;
        }
    }
    if added > 0 {
        stats.samples += added;
        if !rate_ok {
            stats.rate_clamped += added;
        }
    }
}

/// Which buckets exist (received a metric) and are not flushed yet: the buckets where idle
/// counters get their zeros (spec §5.4).
///
/// One clock is kept by whoever feeds the shards, not per shard, so the output does not depend
/// on the number of shards (in the Agent each time sampler keeps its own, and an idle counter's
/// zeros depend on which other metrics share its sampler).
#[derive(Debug, Default)]
pub(crate) struct BucketClock {
    buckets: Vec<i64>,
    last_cutoff: i64,
}

impl BucketClock {
    /// Records that a metric arrived at `now`.
    #[inline]
    pub(crate) fn note(&mut self, now: i64) {
        let b = bucket_start(now);
        if self.buckets.last() == Some(&b) {
            return;
        }
        if let Err(pos) = self.buckets.binary_search(&b) {
            self.buckets.insert(pos, b);
        }
    }

    /// The buckets a flush at `now` closes, forgetting them; when there are none and a bucket's
    /// width passed since the last flush, the bucket just before the cutoff (the Agent's
    /// synthetic bucket for counter zeros).
    pub(crate) fn close(&mut self, now: i64, include_open: bool) -> Vec<i64> {
        let cutoff = bucket_start(now);
        let closes = |b: i64| include_open || b < cutoff;
        let mut closed: Vec<i64> = self
            .buckets
            .iter()
            .copied()
            .filter(|&b| closes(b))
            .collect();
        self.buckets.retain(|&b| !closes(b));
        if closed.is_empty() && cutoff - self.last_cutoff >= BUCKET_SECONDS {
            closed.push(cutoff - BUCKET_SECONDS);
        }
        self.last_cutoff = self.last_cutoff.max(cutoff);
        closed
    }
}

fn suffixed(name: &[u8], suffix: &[u8]) -> Text {
    let mut v = Vec::with_capacity(name.len() + suffix.len());
    v.extend_from_slice(name);
    v.extend_from_slice(suffix);
    Text::from(v)
}

/// Emits the closed buckets of one context and marks their slots free.
fn emit(
    c: &mut Context,
    config: &AggregatorConfig,
    suffixes: &[(Vec<u8>, SeriesKind)],
    zero_buckets: &[i64],
    closes: &dyn Fn(i64) -> bool,
    order: &mut Vec<usize>,
    out: &mut Flush,
) {
    order.clear();
    order.extend(
        c.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live && closes(s.start))
            .map(|(i, _)| i),
    );
    if order.is_empty() && (c.kind != Kind::Counter || zero_buckets.is_empty()) {
        return;
    }
    let tags = c.tags.clone();
    let (name, host, last_seen, context_kind) =
        (c.name.clone(), c.host.clone(), c.last_seen, c.kind);
    let slots = &mut c.slots;
    order.sort_unstable_by_key(|&i| slots.get(i).map_or(0, |s| s.start));
    let interval = BUCKET_SECONDS as u32;
    let series = |name: Text, kind: SeriesKind, points: Points| Series {
        name,
        host: host.clone(),
        tags: tags.clone(),
        kind,
        interval,
        points,
    };
    match context_kind {
        Kind::Counter => {
            let mut points: Points = order
                .iter()
                .filter_map(|&i| slots.get(i))
                .map(|s| Point {
                    timestamp: s.start,
                    value: match s.agg {
                        Agg::Counter(sum) => sum / BUCKET_SECONDS as f64,
                        _ => 0.0,
                    },
                })
                .collect();
            for &b in zero_buckets {
                let has = points.iter().any(|p| p.timestamp == b);
                if !has && last_seen.saturating_add(config.expiry_seconds) > b {
                    points.push(Point {
                        timestamp: b,
                        value: 0.0,
                    });
                }
            }
            if !points.is_empty() {
                points.sort_by_key(|p| p.timestamp);
                out.series
                    .push(series(name.clone(), SeriesKind::Rate, points));
            }
        }
        Kind::Gauge | Kind::Set => {
            let points: Points = order
                .iter()
                .filter_map(|&i| slots.get(i))
                .map(|s| Point {
                    timestamp: s.start,
                    value: match &s.agg {
                        Agg::Gauge(v) => *v,
                        Agg::Set(m) => m.len() as f64,
                        _ => 0.0,
                    },
                })
                .collect();
            if !points.is_empty() {
                out.series
                    .push(series(name.clone(), SeriesKind::Gauge, points));
            }
        }
        Kind::Histogram => {
            let mut per_suffix: Vec<Points> =
                vec![Points::with_capacity(order.len()); suffixes.len()];
            for &i in order.iter() {
                let Some(s) = slots.get_mut(i) else { continue };
                let Agg::Histogram(h) = &mut s.agg else {
                    continue;
                };
                if h.is_empty() {
                    continue;
                }
                h.prepare();
                let stats = config
                    .histogram_aggregates
                    .iter()
                    .map(|&a| h.stat(a))
                    .chain(
                        config
                            .histogram_percentiles
                            .iter()
                            .map(|&p| h.percentile(p)),
                    );
                for (points, value) in per_suffix.iter_mut().zip(stats) {
                    points.push(Point {
                        timestamp: s.start,
                        value,
                    });
                }
            }
            for ((suffix, kind), points) in suffixes.iter().zip(per_suffix) {
                if !points.is_empty() {
                    out.series
                        .push(series(suffixed(&name, suffix), *kind, points));
                }
            }
        }
        Kind::Distribution => {
            let mut points = Vec::new();
            for &i in order.iter() {
                let Some(s) = slots.get_mut(i) else { continue };
                let Agg::Distribution(d) = &mut s.agg else {
                    continue;
                };
                d.compact();
                if d.count() == 0 {
                    continue;
                }
                points.push(SketchPoint {
                    timestamp: s.start,
                    count: d.count(),
                    min: d.min(),
                    max: d.max(),
                    sum: d.sum(),
                    avg: d.avg(),
                    keys: d.bins().iter().map(|&(k, _)| i32::from(k)).collect(),
                    counts: d.bins().iter().map(|&(_, n)| n).collect(),
                });
            }
            if !points.is_empty() {
                out.sketches.push(Sketch {
                    name: name.clone(),
                    host: host.clone(),
                    tags: tags.clone(),
                    points,
                });
            }
        }
    }
    for &i in order.iter() {
        if let Some(s) = slots.get_mut(i) {
            s.live = false;
            s.agg.clear();
        }
    }
}
