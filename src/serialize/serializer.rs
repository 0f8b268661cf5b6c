//! The serializer: one flush in, payloads out.

use super::payload::{self, Out, PayloadBuilder, Reusable};
use super::{Endpoint, Payload, SerializeError, SerializerConfig, json, prefetch, proto};
use crate::Flush;

/// How many series ahead the serializer prefetches tag strings (and twice that, tag lists).
const PREFETCH_AHEAD: usize = 12;

/// Counts of one or more [`Serializer::serialize`] calls. Every dropped item is counted here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SerializeStats {
    /// Payloads produced.
    pub payloads: u64,
    /// Uncompressed bytes of items and framing written.
    pub items_written: u64,
    /// Series dropped because they fit in no payload (too many points or bytes).
    pub series_too_big: u64,
    /// Sketches dropped because they fit in no payload.
    pub sketches_too_big: u64,
    /// Events dropped because they fit in no payload.
    pub events_too_big: u64,
    /// Service checks dropped because they fit in no payload.
    pub service_checks_too_big: u64,
}

impl SerializeStats {
    /// All items dropped as too big.
    pub fn too_big(&self) -> u64 {
        self.series_too_big
            + self.sketches_too_big
            + self.events_too_big
            + self.service_checks_too_big
    }
}

/// Turns flushes into payloads, reusing its buffers from one flush to the next.
///
/// ```
/// use dogpipe::{Flush, Point, Series, SeriesKind, Serializer, SerializerConfig, TagSet};
///
/// let series = Series {
///     name: b"reqs".as_slice().into(),
///     host: b"web1".as_slice().into(),
///     tags: TagSet::from(vec!["env:prod"]),
///     kind: SeriesKind::Rate,
///     interval: 10,
///     points: vec![Point { timestamp: 1_700_000_000, value: 0.5 }].into(),
/// };
/// let flush = Flush { series: vec![series], ..Flush::default() };
/// let mut serializer = Serializer::new(SerializerConfig::default());
/// let mut payloads = Vec::new();
/// serializer.serialize(&flush, &mut payloads)?;
/// assert_eq!(payloads.len(), 1);
/// assert_eq!(payloads[0].path(), "/api/v2/series");
/// assert_eq!(payloads[0].content_encoding(), Some("zstd"));
/// # Ok::<(), dogpipe::SerializeError>(())
/// ```
#[derive(Debug)]
pub struct Serializer {
    config: SerializerConfig,
    stats: SerializeStats,
    reusable: Reusable,
    scratch: Vec<u8>,
}

impl Serializer {
    /// A serializer with `config`.
    pub fn new(config: SerializerConfig) -> Serializer {
        Serializer {
            config,
            stats: SerializeStats::default(),
            reusable: Reusable::default(),
            scratch: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SerializerConfig {
        &self.config
    }

    /// Counts since the serializer was made.
    pub fn stats(&self) -> SerializeStats {
        self.stats
    }

    /// Serializes every series, sketch, event and service check of `flush`, appending the
    /// payloads to `out` (series, then sketches, service checks, events). Items too big for any
    /// payload are dropped and counted in [`stats`](Self::stats); empty kinds produce no payload.
    ///
    /// # Errors
    /// [`SerializeError::Compressor`] if the compression library fails; payloads closed before
    /// the failure are in `out`.
    pub fn serialize(
        &mut self,
        flush: &Flush,
        out: &mut Vec<Payload>,
    ) -> Result<(), SerializeError> {
        self.serialize_each(flush, |p| out.push(p))
    }

    /// Like [`serialize`](Self::serialize), but hands each payload to `each` as soon as it is
    /// closed, so a large flush never holds all of its payloads at once.
    ///
    /// # Errors
    /// As [`serialize`](Self::serialize); payloads closed before the failure were handed over.
    pub fn serialize_each(
        &mut self,
        flush: &Flush,
        mut each: impl FnMut(Payload),
    ) -> Result<(), SerializeError> {
        let mut count = 0u64;
        let result = self.serialize_inner(flush, &mut |p| {
            count += 1;
            each(p);
        });
        self.stats.payloads += count;
        result
    }

    fn serialize_inner(&mut self, flush: &Flush, out: Out<'_>) -> Result<(), SerializeError> {
        if !flush.series.is_empty() {
            if self.config.series_v1 {
                self.series_v1(flush, out)?;
            } else {
                self.series_v2(flush, out)?;
            }
        }
        if !flush.sketches.is_empty() {
            self.sketches(flush, out)?;
        }
        if !flush.service_checks.is_empty() {
            self.service_checks(flush, out)?;
        }
        if !flush.events.is_empty() {
            self.events(flush, out)?;
        }
        Ok(())
    }

    fn builder<'h>(
        &mut self,
        endpoint: Endpoint,
        framing: (&'h [u8], &'static [u8], &'h [u8]),
    ) -> PayloadBuilder<'h> {
        let limits = match endpoint {
            Endpoint::SeriesV2 | Endpoint::SeriesV1 => self.config.series_limits,
            _ => self.config.limits,
        };
        PayloadBuilder::new(
            endpoint,
            self.config.compression,
            limits,
            framing,
            std::mem::take(&mut self.reusable),
        )
    }

    fn series_v2(&mut self, flush: &Flush, out: Out<'_>) -> Result<(), SerializeError> {
        let mut b = self.builder(Endpoint::SeriesV2, (b"", b"", b""));
        // Reading a series' tag strings for the first time is a cache miss each (interned
        // strings scattered over the heap): prefetch the tag list of the series
        // `2 * PREFETCH_AHEAD` ahead, and the strings of the one `PREFETCH_AHEAD` ahead, so that
        // the misses overlap with the encoding of the series in between.
        let mut host = proto::HostResource::default();
        for (i, s) in flush.series.iter().enumerate() {
            if let Some(ahead) = flush.series.get(i + 2 * PREFETCH_AHEAD) {
                prefetch::series_blocks(ahead);
            }
            if let Some(ahead) = flush.series.get(i + PREFETCH_AHEAD) {
                prefetch::series_strings(ahead);
            }
            let host_entry = host.entry(&s.host);
            let layout = proto::series_layout(s, host_entry);
            let len = proto::item_len(layout.body_len);
            if b.reserve(len, s.points.len(), out)? {
                let exact = proto::write_series(b.item(), s, layout, host_entry);
                debug_assert!(exact, "series layout computed wrong");
                self.stats.items_written += len as u64;
                b.commit(s.points.len())?;
            } else {
                self.stats.series_too_big += 1;
            }
        }
        b.close(out)?;
        self.reusable = b.into_reusable();
        Ok(())
    }

    fn sketches(&mut self, flush: &Flush, out: Out<'_>) -> Result<(), SerializeError> {
        let mut b = self.builder(Endpoint::Sketches, (b"", b"", proto::SKETCH_FOOTER));
        for s in &flush.sketches {
            let body = proto::sketch_body_len(s);
            let len = proto::item_len(body);
            if b.reserve(len, 1, out)? {
                let exact = proto::write_sketch(b.item(), s, body);
                debug_assert!(exact, "sketch size computed wrong");
                self.stats.items_written += len as u64;
                b.commit(1)?;
            } else {
                self.stats.sketches_too_big += 1;
            }
        }
        b.close(out)?;
        self.reusable = b.into_reusable();
        Ok(())
    }

    /// Runs `write` for each item into the scratch buffer, then copies it into a payload.
    fn json_items<T>(
        &mut self,
        builder: &mut PayloadBuilder<'_>,
        items: impl Iterator<Item = T>,
        points: impl Fn(&T) -> usize,
        write: impl Fn(&mut Vec<u8>, &T),
        out: Out<'_>,
    ) -> Result<u64, SerializeError> {
        let mut too_big = 0;
        for item in items {
            self.scratch.clear();
            write(&mut self.scratch, &item);
            let n = points(&item);
            if builder.reserve(self.scratch.len(), n, out)? {
                payload::copy(builder.item(), &self.scratch);
                self.stats.items_written += self.scratch.len() as u64;
                builder.commit(n)?;
            } else {
                too_big += 1;
            }
        }
        builder.close(out)?;
        Ok(too_big)
    }

    fn series_v1(&mut self, flush: &Flush, out: Out<'_>) -> Result<(), SerializeError> {
        let mut b = self.builder(Endpoint::SeriesV1, json::SERIES_FRAMING);
        let dropped = self.json_items(
            &mut b,
            flush.series.iter(),
            |s| s.points.len(),
            |o, s| json::write_series(o, s),
            out,
        )?;
        self.stats.series_too_big += dropped;
        self.reusable = b.into_reusable();
        Ok(())
    }

    fn service_checks(&mut self, flush: &Flush, out: Out<'_>) -> Result<(), SerializeError> {
        let mut b = self.builder(Endpoint::ServiceChecks, json::CHECKS_FRAMING);
        let dropped = self.json_items(
            &mut b,
            flush.service_checks.iter(),
            |_| 1,
            |o, c| json::write_service_check(o, c),
            out,
        )?;
        self.stats.service_checks_too_big += dropped;
        self.reusable = b.into_reusable();
        Ok(())
    }

    fn events(&mut self, flush: &Flush, out: Out<'_>) -> Result<(), SerializeError> {
        // One payload stream per source type: each payload holds a single group.
        let mut groups: Vec<&[u8]> = flush.events.iter().map(json::event_group).collect();
        groups.sort_unstable();
        groups.dedup();
        for group in groups {
            let (header, footer) = json::events_framing(group, &self.config.hostname);
            let mut b = self.builder(Endpoint::Events, (&header, b",", &footer));
            let events = flush
                .events
                .iter()
                .filter(|e| json::event_group(e) == group);
            let dropped =
                self.json_items(&mut b, events, |_| 1, |o, e| json::write_event(o, e), out)?;
            self.stats.events_too_big += dropped;
            self.reusable = b.into_reusable();
        }
        Ok(())
    }
}
