//! The synchronous, single-shard aggregator: no threads, usable from tests and replays.

use super::config::AggregatorConfig;
use super::context::Kind;
use super::enrich::{Enricher, timestamped};
use super::known::{KnownLines, RawLine};
use super::output::Flush;
use super::shard::{BucketClock, Shard};
use super::stats::AggregateStats;
use crate::{Message, Metric};
use std::sync::Arc;

/// Messages [`Aggregator::insert_all`] looks up together.
const AHEAD: usize = 16;

/// Aggregates DogStatsD messages into the series and sketches the Datadog Agent would send.
///
/// The clock is the caller's: [`insert`](Self::insert) and [`flush`](Self::flush) take the
/// current Unix time in seconds, so replays and tests are deterministic.
///
/// ```
/// use dogpipe::{parse_packet, Aggregator, AggregatorConfig, Message, ParserConfig};
/// let mut agg = Aggregator::new(AggregatorConfig::default().with_hostname("web1"));
/// for m in parse_packet(b"reqs:1|c\nreqs:2|c|#env:a\nreqs:1|c", &ParserConfig::default()) {
///     agg.insert(&m.unwrap(), 1_700_000_003);
/// }
/// let flush = agg.flush(1_700_000_015);
/// let mut rates: Vec<f64> = flush.series.iter().map(|s| s.points[0].value).collect();
/// rates.sort_by(f64::total_cmp);
/// assert_eq!(rates, [0.2, 0.2]); // 2 samples / 10 s, and 2 / 10 s for env:a
/// assert_eq!(flush.series[0].points[0].timestamp, 1_700_000_000);
/// ```
#[derive(Debug)]
pub struct Aggregator {
    enricher: Enricher,
    shard: Shard,
    pending: Flush,
    /// While a flush is under way: the start of its next chunk.
    head: Option<Flush>,
    /// The chunk size of the flush under way.
    chunk: usize,
    passthrough: AggregateStats,
    clock: BucketClock,
    known: KnownLines,
}

impl Aggregator {
    /// An aggregator with `config`.
    pub fn new(config: AggregatorConfig) -> Aggregator {
        let (limit, known_lines) = (config.context_limit, config.known_lines);
        let config = Arc::new(config);
        Aggregator {
            enricher: Enricher::new(Arc::clone(&config)),
            shard: Shard::new(config, limit),
            pending: Flush::default(),
            head: None,
            chunk: usize::MAX,
            passthrough: AggregateStats::default(),
            clock: BucketClock::default(),
            known: KnownLines::new(known_lines),
        }
    }

    /// Adds one parsed message received at `now` (Unix seconds). Metrics are aggregated (or, with
    /// a `T` timestamp, passed through); events and service checks are kept for the next flush.
    pub fn insert(&mut self, message: &Message<'_>, now: i64) {
        match message {
            Message::Metric(m) => self.insert_metric(m, None, now),
            Message::Event(e) => {
                let record = self.enricher.event(e, now);
                self.pending.events.push(record);
            }
            Message::ServiceCheck(sc) => {
                let record = self.enricher.service_check(sc, now);
                self.pending.service_checks.push(record);
            }
        }
    }

    /// Adds messages received at `now`: the same as [`insert`](Self::insert) on each in turn,
    /// but faster for a packet's worth of metrics. A known line's lookup reads memory scattered
    /// over megabytes, each read waiting for the one before: its cache set, its slot and
    /// remembered text, then its context and the context's buckets. Here, for 16 messages at a
    /// time, each of those is prefetched for all 16 before the next, and only then are the
    /// messages inserted, so that the cache misses of neighbouring messages overlap.
    ///
    /// ```
    /// use dogpipe::{parse_packet, Aggregator, AggregatorConfig, ParserConfig};
    /// let mut agg = Aggregator::new(AggregatorConfig::default().with_hostname("web1"));
    /// let packet = b"reqs:1|c|#env:a\nreqs:2|c|#env:a\nlatency:3|d";
    /// let messages: Vec<_> = parse_packet(packet, &ParserConfig::default()).flatten().collect();
    /// agg.insert_all(&messages, 1_700_000_003);
    /// assert_eq!(agg.flush(1_700_000_015).series[0].points[0].value, 0.3);
    /// ```
    pub fn insert_all(&mut self, messages: &[Message<'_>], now: i64) {
        for chunk in messages.chunks(AHEAD) {
            let mut hashes = [0u64; AHEAD];
            for (m, h) in chunk.iter().zip(&mut hashes) {
                if let Message::Metric(m) = m {
                    *h = raw_line(m).hash();
                    self.known.prefetch_slots(*h);
                }
            }
            for (m, &h) in chunk.iter().zip(&hashes) {
                if matches!(m, Message::Metric(_)) {
                    self.known.prefetch_text(h);
                }
            }
            for (m, &h) in chunk.iter().zip(&hashes) {
                if let (Message::Metric(_), Some(key)) = (m, self.known.peek(h)) {
                    self.shard.prefetch_known(key);
                }
            }
            for (m, &h) in chunk.iter().zip(&hashes) {
                match m {
                    Message::Metric(metric) => self.insert_metric(metric, Some(h), now),
                    _ => self.insert(m, now),
                }
            }
        }
    }

    /// Adds a metric; `hash` is its line's, when already computed.
    #[inline]
    fn insert_metric(&mut self, m: &Metric<'_>, hash: Option<u64>, now: i64) {
        if let Some(ts) = m.timestamp() {
            let Some(r) = self.enricher.metric(m) else {
                return;
            };
            timestamped(&r, m, ts, &mut self.passthrough, &mut self.pending.series);
            return;
        }
        // A line seen before goes straight to its context (see `known`).
        let line = raw_line(m);
        let hash = hash.unwrap_or_else(|| line.hash());
        if let Some(key) = self.known.get_hashed(hash, &line) {
            let (values, member, rate) = (m.values(), m.set_member(), m.sample_rate());
            if self.shard.ingest_known(key, values, member, rate, now) {
                self.clock.note(now);
                return;
            }
        }
        let Some(r) = self.enricher.metric(m) else {
            return;
        };
        self.clock.note(now);
        self.shard
            .ingest(&r, m.values(), m.set_member(), m.sample_rate(), now);
        if let Some(key) = self.shard.key_of(&r) {
            self.known.put(&line, key);
        }
    }

    /// Emits the buckets closed at `now` (those starting before the current 10 s bucket), the
    /// timestamped series, events and service checks received since the last flush; then removes
    /// expired contexts.
    pub fn flush(&mut self, now: i64) -> Flush {
        Flush::joined(|each| self.flush_inner(now, false, usize::MAX, each))
    }

    /// Like [`flush`](Self::flush) but emits the open buckets too: for shutdown.
    pub fn flush_all(&mut self, now: i64) -> Flush {
        Flush::joined(|each| self.flush_inner(now, true, usize::MAX, each))
    }

    /// Like [`flush`](Self::flush) (or [`flush_all`](Self::flush_all) when `include_open`), but
    /// hands the output to `each` in chunks of about `chunk` series and sketches, as it is made:
    /// a flush of many contexts is never held whole. The first chunk also carries what was
    /// received since the last flush and is not aggregated (timestamped series, events, service
    /// checks), however many; `each` is not called for an empty flush.
    ///
    /// ```
    /// use dogpipe::{parse_packet, Aggregator, AggregatorConfig, ParserConfig};
    /// let mut agg = Aggregator::new(AggregatorConfig::default());
    /// for m in parse_packet(b"a:1|g\nb:1|g\nc:1|g", &ParserConfig::default()) {
    ///     agg.insert(&m.unwrap(), 1_700_000_003);
    /// }
    /// let mut sizes = Vec::new();
    /// agg.flush_in_chunks(1_700_000_015, false, 2, |chunk| sizes.push(chunk.series.len()));
    /// assert_eq!(sizes, [2, 1]);
    /// ```
    pub fn flush_in_chunks(
        &mut self,
        now: i64,
        include_open: bool,
        chunk: usize,
        mut each: impl FnMut(Flush),
    ) {
        self.flush_inner(now, include_open, chunk, &mut each);
    }

    fn flush_inner(
        &mut self,
        now: i64,
        include_open: bool,
        chunk: usize,
        each: &mut dyn FnMut(Flush),
    ) {
        // A flush under way is finished first.
        while let Some(out) = self.next_flush_chunk() {
            each(out);
        }
        self.begin_flush(now, include_open, chunk);
        while let Some(out) = self.next_flush_chunk() {
            each(out);
        }
    }

    /// Starts a flush like [`flush`](Self::flush) (or [`flush_all`](Self::flush_all) when
    /// `include_open`) whose output [`next_flush_chunk`](Self::next_flush_chunk) makes a chunk
    /// of about `chunk` series and sketches at a time, so that messages can be inserted between
    /// the chunks: an agent keeps taking in traffic while a slow sender catches up. Returns
    /// false, starting nothing, while a flush is under way.
    ///
    /// Metrics inserted during the flush land in buckets open at `now`, so the next flush emits
    /// them (unless `include_open`: then they are emitted by this flush if their context was
    /// not visited yet, else by the next); events and service checks go to the next flush.
    ///
    /// ```
    /// use dogpipe::{parse_packet, Aggregator, AggregatorConfig, ParserConfig};
    /// let p = ParserConfig::default();
    /// let mut agg = Aggregator::new(AggregatorConfig::default());
    /// for m in parse_packet(b"a:1|c\nb:1|c\nc:1|c", &p) {
    ///     agg.insert(&m.unwrap(), 1_700_000_003);
    /// }
    /// assert!(agg.begin_flush(1_700_000_015, false, 2));
    /// let first = agg.next_flush_chunk().unwrap();
    /// for m in parse_packet(b"a:5|c\nd:1|c", &p) {
    ///     agg.insert(&m.unwrap(), 1_700_000_016); // between two chunks
    /// }
    /// let second = agg.next_flush_chunk().unwrap();
    /// assert!(agg.next_flush_chunk().is_none());
    /// assert_eq!(first.series.len() + second.series.len(), 3);
    /// // The samples inserted during the flush are the next flush's.
    /// let next = agg.flush(1_700_000_030);
    /// assert_eq!(next.series.len(), 4); // a and d, and zeros for the idle counters b and c
    /// ```
    pub fn begin_flush(&mut self, now: i64, include_open: bool, chunk: usize) -> bool {
        if self.head.is_some() {
            return false;
        }
        let zero_buckets = self.clock.close(now, include_open);
        self.head = Some(std::mem::take(&mut self.pending));
        self.chunk = chunk;
        self.shard.begin_flush(now, include_open, zero_buckets);
        true
    }

    /// The next chunk of the flush under way (see [`begin_flush`](Self::begin_flush)): about
    /// the `chunk` given there series and sketches, the first also carrying what was received and not
    /// aggregated (timestamped series, events, service checks). `None` when no flush is under
    /// way: the last chunk was taken, and the expired contexts were removed.
    pub fn next_flush_chunk(&mut self) -> Option<Flush> {
        let mut out = self.head.take()?;
        match self.shard.flush_step(self.chunk, &mut out) {
            None => {
                self.head = Some(Flush::default());
                Some(out)
            }
            Some(expired) => {
                if expired > 0 {
                    // The cache holds contexts' strings: forget the lines of the contexts that
                    // just expired, so that their strings are released. (A live context whose
                    // hash equals an expired one's loses its lines too, and finds them again on
                    // the slow path.)
                    let shard = &self.shard;
                    self.known.forget(|hash| shard.expired(hash));
                    self.shard.sweep();
                }
                (!out.is_empty()).then_some(out)
            }
        }
    }

    /// Whether a flush is under way (see [`begin_flush`](Self::begin_flush)).
    pub fn is_flushing(&self) -> bool {
        self.head.is_some()
    }

    /// Counters of what was aggregated and dropped.
    pub fn stats(&self) -> AggregateStats {
        let mut s = self.shard.stats();
        s.add(&self.enricher.stats);
        s.add(&self.passthrough);
        s
    }

    #[cfg(test)]
    pub(crate) fn enricher(&self) -> &Enricher {
        &self.enricher
    }
}

/// A metric's line as the cache of known lines sees it.
#[inline]
fn raw_line<'b>(m: &Metric<'b>) -> RawLine<'b> {
    RawLine {
        name: m.name(),
        tags: m.tags().as_bytes(),
        kind: Kind::of(m.metric_type()),
        card: m.origin().cardinality_raw().is_some(),
    }
}
