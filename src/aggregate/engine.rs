//! The sharded engine: one thread per shard, fed in batches over bounded channels.
//!
//! The caller's thread parses and enriches (mapper, special tags, namespace, blocklist, context
//! key) and appends each sample to the batch of the shard its context hash selects; a full batch
//! goes over that shard's bounded `crossbeam` channel. Each shard thread owns its contexts
//! outright — there is no `Mutex` or `RwLock` anywhere on the sample path — and sends emptied
//! batches back for reuse, so a warm engine allocates nothing per sample.
//!
//! Memory queued per shard is bounded: at most [`QUEUE_BATCHES`] batches of [`BATCH_SAMPLES`]
//! messages. When a shard's queue is full, `insert` blocks until the shard catches up
//! (back-pressure, as the Agent's channels do).

use super::config::AggregatorConfig;
use super::context::{ContextRef, Kind, TagSpan};
use super::enrich::{Enricher, timestamped};
use super::output::Flush;
use super::shard::{BucketClock, Shard};
use super::stats::AggregateStats;
use crate::{Message, Metric};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, bounded};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Messages per batch sent to a shard.
pub(crate) const BATCH_SAMPLES: usize = 256;
/// Batches queued per shard before `insert` blocks.
pub(crate) const QUEUE_BATCHES: usize = 8;
/// A batch is sent once its copied names and tags reach this many bytes…
const BATCH_BYTES: usize = 32 * 1024;
/// …or its values this many.
const BATCH_VALUES: usize = 1024;
/// …or its tags this many.
const BATCH_TAGS: usize = 4096;
/// Most shards (threads) an engine starts.
pub(crate) const MAX_SHARDS: usize = 1024;

/// One message's worth of samples, as offsets into its batch's buffers.
#[derive(Debug, Clone, Copy)]
struct Item {
    hash: u64,
    kind: Kind,
    now: i64,
    rate: f64,
    name: (u32, u32),
    host: (u32, u32),
    tags: (u32, u32),
    /// Values (offsets into `values`), or the set member (offsets into `bytes`).
    values: (u32, u32),
    is_member: bool,
}

/// Samples on their way to one shard; emptied and sent back for reuse.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    tags: Vec<TagSpan>,
    values: Vec<f64>,
    items: Vec<Item>,
}

impl Batch {
    /// A batch whose buffers hold a full batch without growing (twice the send thresholds, so the
    /// message that crosses a threshold still fits unless it alone is huge).
    fn with_capacity() -> Batch {
        Batch {
            bytes: Vec::with_capacity(2 * BATCH_BYTES),
            tags: Vec::with_capacity(2 * BATCH_TAGS),
            values: Vec::with_capacity(2 * BATCH_VALUES),
            items: Vec::with_capacity(BATCH_SAMPLES),
        }
    }

    /// Whether the batch should be sent now.
    fn is_full(&self) -> bool {
        self.items.len() >= BATCH_SAMPLES
            || self.bytes.len() >= BATCH_BYTES
            || self.values.len() >= BATCH_VALUES
            || self.tags.len() >= BATCH_TAGS
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.tags.clear();
        self.values.clear();
        self.items.clear();
    }

    fn put(&mut self, b: &[u8]) -> (u32, u32) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(b);
        (start, b.len() as u32)
    }

    fn push(&mut self, r: &ContextRef<'_>, m: &Metric<'_>, now: i64) {
        let name = self.put(r.name);
        let host = self.put(r.host);
        let tags_start = self.tags.len() as u32;
        for t in r.tags {
            let (start, len) = self.put(t.get(r.tag_bytes));
            self.tags.push(TagSpan {
                start,
                len,
                hash: t.hash,
            });
        }
        let (values, is_member) = match m.set_member() {
            Some(member) => (self.put(member), true),
            None => {
                let start = self.values.len() as u32;
                self.values.extend(m.values());
                ((start, self.values.len() as u32 - start), false)
            }
        };
        self.items.push(Item {
            hash: r.hash,
            kind: r.kind,
            now,
            rate: m.sample_rate(),
            name,
            host,
            tags: (tags_start, r.tags.len() as u32),
            values,
            is_member,
        });
    }

    fn span(&self, (start, len): (u32, u32)) -> &[u8] {
        self.bytes
            .get(start as usize..(start + len) as usize)
            .unwrap_or_default()
    }

    /// Feeds every item to `shard`.
    fn apply(&self, shard: &mut Shard) {
        for item in &self.items {
            let (ts, tn) = item.tags;
            let r = ContextRef {
                hash: item.hash,
                kind: item.kind,
                name: self.span(item.name),
                host: self.span(item.host),
                tag_bytes: &self.bytes,
                tags: self
                    .tags
                    .get(ts as usize..(ts + tn) as usize)
                    .unwrap_or_default(),
            };
            if item.is_member {
                shard.ingest(
                    &r,
                    std::iter::empty(),
                    Some(self.span(item.values)),
                    item.rate,
                    item.now,
                );
            } else {
                let (vs, vn) = item.values;
                let values = self
                    .values
                    .get(vs as usize..(vs + vn) as usize)
                    .unwrap_or_default();
                shard.ingest(&r, values.iter().copied(), None, item.rate, item.now);
            }
        }
    }
}

enum Command {
    Batch(Batch),
    Flush {
        now: i64,
        include_open: bool,
        zero_buckets: Arc<[i64]>,
        chunk: usize,
        reply: Sender<Flush>,
    },
    Stats(Sender<AggregateStats>),
}

struct ShardHandle {
    tx: Option<Sender<Command>>,
    batch: Batch,
    thread: Option<JoinHandle<()>>,
}

/// The multi-threaded aggregator: [`Aggregator`](crate::Aggregator)'s semantics over N shards,
/// each owned by its own thread.
///
/// The calling thread parses and enriches; samples travel to their shard (chosen by context
/// hash, so a context always lives on one shard) in batches of 256 messages over a bounded
/// channel of 8 batches per shard. When a shard falls behind, `insert` blocks (back-pressure);
/// nothing is dropped silently. The batches form a fixed pool allocated up front
/// (`shards × 10` batches of about 160 KiB each) and recycled: the engine allocates nothing per
/// sample, and waits for a batch to come back rather than allocate another.
///
/// ```
/// use dogpipe::{parse_packet, AggregatorConfig, ParserConfig, ShardedAggregator};
/// let mut agg = ShardedAggregator::new(AggregatorConfig::default(), 2);
/// for m in parse_packet(b"a:1|c\nb:2|g\nc:3|d", &ParserConfig::default()) {
///     agg.insert(&m.unwrap(), 1_700_000_000);
/// }
/// let flush = agg.flush(1_700_000_010);
/// assert_eq!((flush.series.len(), flush.sketches.len()), (2, 1));
/// ```
pub struct ShardedAggregator {
    enricher: Enricher,
    pending: Flush,
    passthrough: AggregateStats,
    shards: Vec<ShardHandle>,
    recycled: Receiver<Batch>,
    /// Batches that could not be sent (a shard thread is gone), kept for reuse.
    spare: Vec<Batch>,
    clock: BucketClock,
    /// Samples lost because a shard thread was gone (never expected; counted, not hidden).
    lost: u64,
    /// The flush under way: what was received and not aggregated (its first chunk), and the
    /// shards' chunks as they come (the channel closes after every shard's last chunk).
    flushing: Option<(Option<Flush>, Receiver<Flush>)>,
}

impl std::fmt::Debug for ShardedAggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedAggregator")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl ShardedAggregator {
    /// An engine with `shards` shard threads (clamped to 1..=1024). The context limit of
    /// `config` is shared evenly: each shard holds at most `ceil(limit / shards)` contexts.
    pub fn new(config: AggregatorConfig, shards: usize) -> ShardedAggregator {
        let n = shards.clamp(1, MAX_SHARDS);
        let per_shard = config.context_limit.div_ceil(n);
        let config = Arc::new(config);
        // Every batch that exists: one being filled per shard, QUEUE_BATCHES queued per shard,
        // one being applied per shard. All fit in the recycle queue, so a shard never waits on it.
        let pool = n * (QUEUE_BATCHES + 2);
        let (recycle_tx, recycled) = bounded(pool);
        for _ in n..pool {
            let _ = recycle_tx.try_send(Batch::with_capacity());
        }
        let handles = (0..n)
            .map(|i| {
                let (tx, rx) = bounded::<Command>(QUEUE_BATCHES);
                let mut shard = Shard::new(Arc::clone(&config), per_shard);
                let recycle = recycle_tx.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("dogpipe-shard-{i}"))
                    .spawn(move || run_shard(&mut shard, &rx, &recycle))
                    .ok();
                ShardHandle {
                    tx: thread.is_some().then_some(tx),
                    batch: Batch::with_capacity(),
                    thread,
                }
            })
            .collect();
        ShardedAggregator {
            enricher: Enricher::new(config),
            pending: Flush::default(),
            passthrough: AggregateStats::default(),
            shards: handles,
            recycled,
            spare: Vec::new(),
            clock: BucketClock::default(),
            lost: 0,
            flushing: None,
        }
    }

    /// Adds one parsed message received at `now` (Unix seconds); see
    /// [`Aggregator::insert`](crate::Aggregator::insert).
    pub fn insert(&mut self, message: &Message<'_>, now: i64) {
        match message {
            Message::Metric(m) => {
                let Some(r) = self.enricher.metric(m) else {
                    return;
                };
                if let Some(ts) = m.timestamp() {
                    timestamped(&r, m, ts, &mut self.passthrough, &mut self.pending.series);
                    return;
                }
                self.clock.note(now);
                let n = self.shards.len() as u64;
                let i = (((r.hash >> 32) * n) >> 32) as usize;
                let Some(handle) = self.shards.get_mut(i) else {
                    return;
                };
                handle.batch.push(&r, m, now);
                if handle.batch.is_full() {
                    let fresh = fresh_batch(&self.recycled, &mut self.spare);
                    if let Some(unsent) = send_batch(handle, fresh, &mut self.lost) {
                        self.spare.push(unsent);
                    }
                }
            }
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

    /// Sends every partly filled batch to its shard.
    fn drain(&mut self) {
        for handle in &mut self.shards {
            if !handle.batch.items.is_empty() {
                let fresh = fresh_batch(&self.recycled, &mut self.spare);
                if let Some(unsent) = send_batch(handle, fresh, &mut self.lost) {
                    self.spare.push(unsent);
                }
            }
        }
    }

    /// See [`Aggregator::flush`](crate::Aggregator::flush). Waits for every shard.
    pub fn flush(&mut self, now: i64) -> Flush {
        Flush::joined(|each| self.flush_inner(now, false, usize::MAX, each))
    }

    /// See [`Aggregator::flush_all`](crate::Aggregator::flush_all). Waits for every shard.
    pub fn flush_all(&mut self, now: i64) -> Flush {
        Flush::joined(|each| self.flush_inner(now, true, usize::MAX, each))
    }

    /// See [`Aggregator::flush_in_chunks`](crate::Aggregator::flush_in_chunks): the shards
    /// flush at once, and their chunks reach `each` as they come, after one chunk of what was
    /// received and not aggregated (timestamped series, events, service checks). Waits for
    /// every shard.
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

    /// See [`Aggregator::begin_flush`](crate::Aggregator::begin_flush): each shard walks its
    /// contexts between the batches it receives, and has at most one chunk waiting to be taken.
    pub fn begin_flush(&mut self, now: i64, include_open: bool, chunk: usize) -> bool {
        if self.flushing.is_some() {
            return false;
        }
        self.drain();
        let head = std::mem::take(&mut self.pending);
        let zero_buckets: Arc<[i64]> = self.clock.close(now, include_open).into();
        let (reply, replies) = bounded(self.shards.len());
        for handle in &self.shards {
            if let Some(tx) = &handle.tx {
                let _ = tx.send(Command::Flush {
                    now,
                    include_open,
                    zero_buckets: Arc::clone(&zero_buckets),
                    chunk,
                    reply: reply.clone(),
                });
            }
        }
        self.flushing = Some((Some(head), replies));
        true
    }

    /// See [`Aggregator::next_flush_chunk`](crate::Aggregator::next_flush_chunk). Waits for a
    /// shard to make its next chunk.
    pub fn next_flush_chunk(&mut self) -> Option<Flush> {
        let (head, replies) = self.flushing.as_mut()?;
        if let Some(head) = head.take().filter(|h| !h.is_empty()) {
            return Some(head);
        }
        // Ends when every shard has dropped its sender: after its last chunk.
        let next = replies.recv().ok();
        if next.is_none() {
            self.flushing = None;
        }
        next
    }

    /// Whether a flush is under way (see [`begin_flush`](Self::begin_flush)).
    pub fn is_flushing(&self) -> bool {
        self.flushing.is_some()
    }

    /// Counters of every shard and of the enrichment stage. Waits for every shard to process
    /// what was sent to it.
    pub fn stats(&mut self) -> AggregateStats {
        self.drain();
        let mut s = self.enricher.stats;
        s.add(&self.passthrough);
        s.context_limit += self.lost;
        let (reply, replies) = bounded(self.shards.len());
        for handle in &self.shards {
            if let Some(tx) = &handle.tx {
                let _ = tx.send(Command::Stats(reply.clone()));
            }
        }
        drop(reply);
        for shard in replies.iter() {
            s.add(&shard);
        }
        s
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }
}

/// A batch from the pool: a spare one, a recycled one, or — waiting — the next one a shard
/// returns. Only when every shard thread is gone (nothing can come back) is a batch allocated.
fn fresh_batch(recycled: &Receiver<Batch>, spare: &mut Vec<Batch>) -> Batch {
    if let Some(batch) = spare.pop() {
        return batch;
    }
    match recycled.try_recv() {
        Ok(batch) => batch,
        Err(_) => recycled.recv().unwrap_or_else(|_| Batch::with_capacity()),
    }
}

/// Sends the handle's batch and puts `fresh` in its place; returns the batch, emptied, when its
/// shard is gone (its samples are counted as lost).
fn send_batch(handle: &mut ShardHandle, fresh: Batch, lost: &mut u64) -> Option<Batch> {
    let batch = std::mem::replace(&mut handle.batch, fresh);
    let count = batch.values.len().max(batch.items.len()) as u64;
    let unsent = match &handle.tx {
        Some(tx) => match tx.send(Command::Batch(batch)) {
            Ok(()) => return None,
            Err(crossbeam_channel::SendError(Command::Batch(b))) => Some(b),
            Err(_) => None,
        },
        None => Some(batch),
    };
    *lost += count;
    unsent.map(|mut b| {
        b.clear();
        b
    })
}

/// A shard's flush under way: where its chunks go, their size, and the chunk being filled.
struct ShardFlush {
    reply: Sender<Flush>,
    chunk: usize,
    out: Flush,
}

impl ShardFlush {
    /// Walks on until a chunk is full and sends it; false when the walk is done (the last
    /// chunk sent).
    fn step(&mut self, shard: &mut Shard) -> bool {
        let done = shard.flush_step(self.chunk, &mut self.out).is_some();
        if !self.out.is_empty() {
            // The receiver is gone only when the engine is: nothing to send to, nothing lost.
            let _ = self.reply.send(std::mem::take(&mut self.out));
        }
        !done
    }
}

/// How long a shard with a chunk waiting waits for a command before it looks again.
const FLUSH_POLL: Duration = Duration::from_millis(2);

fn run_shard(shard: &mut Shard, rx: &Receiver<Command>, recycle: &Sender<Batch>) {
    let mut flushing: Option<ShardFlush> = None;
    loop {
        // While a flush is under way, the shard takes a command when there is one and makes its
        // next chunk when the last was taken: batches are never held up by a slow reader.
        let command = match &flushing {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(f) if f.reply.is_full() => rx.recv_timeout(FLUSH_POLL),
            Some(_) => rx.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            }),
        };
        match command {
            Ok(Command::Batch(mut batch)) => {
                batch.apply(shard);
                batch.clear();
                // A full recycle queue means the producer has enough spare batches.
                let _ = recycle.try_send(batch);
            }
            Ok(Command::Flush {
                now,
                include_open,
                zero_buckets,
                chunk,
                reply,
            }) => {
                if let Some(mut f) = flushing.take() {
                    while f.step(shard) {}
                }
                shard.begin_flush(now, include_open, zero_buckets.to_vec());
                flushing = Some(ShardFlush {
                    reply,
                    chunk,
                    out: Flush::default(),
                });
            }
            Ok(Command::Stats(reply)) => {
                let _ = reply.send(shard.stats());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(mut f) = flushing.take() {
                    while f.step(shard) {}
                }
                return;
            }
        }
        if let Some(f) = flushing.as_mut().filter(|f| !f.reply.is_full())
            && !f.step(shard)
        {
            flushing = None;
        }
    }
}

impl Drop for ShardedAggregator {
    fn drop(&mut self) {
        // A shard finishing a flush must not wait for this end to take its chunks.
        self.flushing = None;
        for handle in &mut self.shards {
            handle.tx = None;
        }
        for handle in &mut self.shards {
            if let Some(t) = handle.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParserConfig, parse_message};

    fn feed(agg: &mut ShardedAggregator, lines: &[String], now: i64) {
        for l in lines {
            agg.insert(
                &parse_message(l.as_bytes(), &ParserConfig::default()).unwrap(),
                now,
            );
        }
    }

    #[test]
    fn the_context_limit_is_shared_between_shards_and_drops_are_counted() {
        let mut agg = ShardedAggregator::new(AggregatorConfig::default().with_context_limit(10), 3);
        let lines: Vec<String> = (0..1000).map(|i| format!("m{i}:1|g")).collect();
        feed(&mut agg, &lines, 0);
        let s = agg.stats();
        // ceil(10 / 3) = 4 per shard: at most 12, and each shard fills up under 1000 names.
        assert_eq!(s.live_contexts, 12);
        assert_eq!(s.samples + s.context_limit, 1000);
        assert_eq!(agg.flush(10).series.len(), 12);
    }

    #[test]
    fn more_than_a_batch_of_samples_reaches_the_shards_before_a_flush() {
        let mut agg = ShardedAggregator::new(AggregatorConfig::default(), 2);
        let lines: Vec<String> = (0..3 * BATCH_SAMPLES)
            .map(|i| format!("c:{i}|c|#k:{}", i % 7))
            .collect();
        feed(&mut agg, &lines, 0);
        let f = agg.flush(10);
        let total: f64 = f.series.iter().map(|s| s.points[0].value).sum();
        let expected: usize = (0..3 * BATCH_SAMPLES).sum();
        assert_eq!(f.series.len(), 7);
        assert!((total - expected as f64 / 10.0).abs() < 1e-6);
        assert_eq!(agg.shard_count(), 2);
    }

    #[test]
    fn events_service_checks_and_timestamped_samples_pass_through() {
        let mut agg = ShardedAggregator::new(AggregatorConfig::default(), 2);
        let lines = [
            "_e{1,1}:t|x".to_string(),
            "_sc|c|0".into(),
            "m:5|g|T100".into(),
        ];
        feed(&mut agg, &lines, 7);
        let f = agg.flush(7);
        assert_eq!(
            (f.events.len(), f.service_checks.len(), f.series.len()),
            (1, 1, 1)
        );
        assert_eq!(
            (f.events[0].timestamp, f.series[0].points[0].timestamp),
            (7, 100)
        );
    }
}
