//! Payloads and the builder that splits a stream of items into payloads within limits.

use super::compress::{Compressor, ZstdContext};
use super::{Compression, PayloadLimits, SerializeError};

/// Where a payload goes on the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/api/v2/series`, protobuf `MetricPayload`.
    SeriesV2,
    /// `/api/v1/series`, JSON.
    SeriesV1,
    /// `/api/beta/sketches`, protobuf `SketchPayload`.
    Sketches,
    /// `/api/v1/check_run`, JSON array.
    ServiceChecks,
    /// `/intake/`, JSON events object.
    Events,
    /// `/api/v2/logs`, a JSON array of log messages (on the logs intake).
    Logs,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 6] = [
        Endpoint::SeriesV2,
        Endpoint::SeriesV1,
        Endpoint::Sketches,
        Endpoint::ServiceChecks,
        Endpoint::Events,
        Endpoint::Logs,
    ];

    /// The request path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::SeriesV2 => "/api/v2/series",
            Endpoint::SeriesV1 => "/api/v1/series",
            Endpoint::Sketches => "/api/beta/sketches",
            Endpoint::ServiceChecks => "/api/v1/check_run",
            Endpoint::Events => "/intake/",
            Endpoint::Logs => "/api/v2/logs",
        }
    }

    /// The endpoint of a request path.
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Endpoint::SeriesV2 | Endpoint::Sketches => "application/x-protobuf",
            Endpoint::SeriesV1 | Endpoint::ServiceChecks | Endpoint::Events | Endpoint::Logs => {
                "application/json"
            }
        }
    }

    /// A short name: `series_v2`, `series_v1`, `sketches`, `service_checks`, `events`, `logs`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::SeriesV2 => "series_v2",
            Endpoint::SeriesV1 => "series_v1",
            Endpoint::Sketches => "sketches",
            Endpoint::ServiceChecks => "service_checks",
            Endpoint::Events => "events",
            Endpoint::Logs => "logs",
        }
    }

    /// The endpoint of a [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// One request body, ready to send: compressed, within its endpoint's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    endpoint: Endpoint,
    compression: Compression,
    pub(crate) body: Vec<u8>,
    items: usize,
}

impl Payload {
    /// A payload from parts (a body read back from a spool or a file).
    pub fn new(endpoint: Endpoint, compression: Compression, body: Vec<u8>) -> Payload {
        Payload {
            endpoint,
            compression,
            body,
            items: 0,
        }
    }
    /// The endpoint.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }
    /// The request path.
    pub fn path(&self) -> &'static str {
        self.endpoint.path()
    }
    /// The `Content-Type` header value.
    pub fn content_type(&self) -> &'static str {
        self.endpoint.content_type()
    }
    /// The `Content-Encoding` header value, if any.
    pub fn content_encoding(&self) -> Option<&'static str> {
        self.compression.content_encoding()
    }
    /// The compression of the body.
    pub fn compression(&self) -> Compression {
        self.compression
    }
    /// The (compressed) body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The body, moved out.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
    /// Items (series, sketches, events, checks) in the body; 0 when unknown.
    pub fn item_count(&self) -> usize {
        self.items
    }
}

/// Most flushes of the compressor to make room in one payload before closing it.
const MAX_REPACKS: u32 = 40;
/// The staging buffer is fed to the compressor when it holds this much.
const STAGE_BYTES: usize = 64 << 10;

/// Streams items into compressed payloads, closing a payload before any limit would be passed.
///
/// Accounting: `base` is the compressor's output at its last flush, when every byte fed so far
/// had been emitted; `pending` bytes were fed since (or are staged). The finished payload is then
/// at most `base + bound(pending + footer)`, and an item is admitted only if that stays within
/// the compressed limit with the item included. zstd says how far it got without a flush
/// (every whole block it took is compressed): there `base` is its output so far and `pending`
/// the input it holds uncompressed, so a payload far below the limit is never flushed early.
pub(crate) struct PayloadBuilder<'h> {
    endpoint: Endpoint,
    compression: Compression,
    limits: PayloadLimits,
    header: &'h [u8],
    separator: &'static [u8],
    footer: &'h [u8],
    compressor: Option<Compressor>,
    stage: Stage,
    zstd: Option<ZstdContext>,
    base: usize,
    fed_since_flush: usize,
    uncompressed: usize,
    points: usize,
    items: usize,
    repacks: u32,
    reserved: usize,
    /// Bytes (items and separators) the open payload can still take with no check: every
    /// limit holds for them, computed when the last item was admitted the slow way.
    fast_bytes: usize,
    /// Points the open payload can still take with no check.
    fast_points: usize,
}

/// The bytes waiting to be fed to the compressor. The buffer is zeroed only when it grows: its
/// length is a high-water mark and `filled` the bytes staged, so an item's bytes are handed out
/// as a slice to overwrite, with no per-item zeroing or length bookkeeping.
#[derive(Default)]
struct Stage {
    buf: Vec<u8>,
    filled: usize,
}

impl Stage {
    fn from_vec(mut buf: Vec<u8>) -> Stage {
        // Whatever it held is stale, but initialized: keep it as room.
        buf.resize(buf.capacity(), 0);
        Stage { buf, filled: 0 }
    }

    /// The next `len` bytes, to be overwritten entirely.
    #[inline]
    fn take(&mut self, len: usize) -> &mut [u8] {
        let start = self.filled;
        let end = start.saturating_add(len);
        if end > self.buf.len() {
            self.buf.resize(end.max(self.buf.len() * 2), 0);
        }
        self.filled = end;
        self.buf.get_mut(start..end).unwrap_or_default()
    }

    #[inline]
    fn extend(&mut self, bytes: &[u8]) {
        copy(self.take(bytes.len()), bytes);
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.filled).unwrap_or_default()
    }

    #[inline]
    fn len(&self) -> usize {
        self.filled
    }

    #[inline]
    fn clear(&mut self) {
        self.filled = 0;
    }
}

/// Copies `src` into `dst`, which [`Stage::take`] made the same length.
#[inline]
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// What a builder leaves for the next one: the staging buffer and the zstd context.
#[derive(Default)]
pub(crate) struct Reusable {
    stage: Vec<u8>,
    zstd: Option<ZstdContext>,
}

impl std::fmt::Debug for Reusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reusable")
            .field("stage", &self.stage.len())
            .field("zstd", &self.zstd.is_some())
            .finish()
    }
}

/// How many bytes may follow `used` uncompressed bytes with `bound(used + room)` still at most
/// `avail`.
fn compressed_room(compression: Compression, avail: usize, used: usize) -> usize {
    // Every compression's bound is at most n + n/128 + 200, so any n up to
    // (avail - 200) * 128/129 keeps the bound within `avail`.
    let total = avail.saturating_sub(200) / 129 * 128;
    let room = total.saturating_sub(used);
    if compression.bound(used.saturating_add(room)) > avail {
        // Never expected (tested); stay correct by leaving no room: the slow path checks.
        return 0;
    }
    room
}

/// Where closed payloads go.
pub(crate) type Out<'o> = &'o mut dyn FnMut(Payload);

/// The capacity a payload's body starts with.
const INITIAL_BODY_BYTES: usize = 64 * 1024;

impl<'h> PayloadBuilder<'h> {
    pub(crate) fn new(
        endpoint: Endpoint,
        compression: Compression,
        limits: PayloadLimits,
        framing: (&'h [u8], &'static [u8], &'h [u8]),
        reusable: Reusable,
    ) -> Self {
        let (header, separator, footer) = framing;
        PayloadBuilder {
            endpoint,
            compression,
            limits,
            header,
            separator,
            footer,
            compressor: None,
            stage: Stage::from_vec(reusable.stage),
            zstd: reusable.zstd,
            base: 0,
            fed_since_flush: 0,
            uncompressed: 0,
            points: 0,
            items: 0,
            repacks: 0,
            reserved: 0,
            fast_bytes: 0,
            fast_points: 0,
        }
    }

    /// Whether an item of `len` bytes and `points` points fits in an empty payload.
    fn fits_alone(&self, len: usize, points: usize) -> bool {
        let total = self
            .header
            .len()
            .saturating_add(len)
            .saturating_add(self.footer.len());
        points <= self.limits.max_points
            && total <= self.limits.max_uncompressed_bytes
            && self.compression.bound(total) <= self.limits.max_compressed_bytes
    }

    /// Makes room for an item of `len` bytes (without separator) and `points` points, closing
    /// the current payload into `out` if needed. Returns `Ok(false)` when the item cannot fit in
    /// any payload. After `Ok(true)`, write exactly `len` bytes into [`stage`](Self::stage) and
    /// call [`commit`](Self::commit).
    #[inline]
    pub(crate) fn reserve(
        &mut self,
        len: usize,
        points: usize,
        out: Out<'_>,
    ) -> Result<bool, SerializeError> {
        // The fast path, for nearly every item: within the room measured beforehand.
        let sep = if self.items > 0 {
            self.separator.len()
        } else {
            0
        };
        let need = len.saturating_add(sep);
        if self.compressor.is_some() && need <= self.fast_bytes && points <= self.fast_points {
            self.fast_bytes -= need;
            self.fast_points -= points;
            if sep > 0 {
                self.stage.extend(self.separator);
                self.uncompressed += sep;
            }
            self.reserved = len;
            return Ok(true);
        }
        self.reserve_slow(len, points, out)
    }

    /// [`reserve`](Self::reserve) past the measured room: checks every limit, flushing or
    /// closing the payload as needed.
    #[inline(never)]
    fn reserve_slow(
        &mut self,
        len: usize,
        points: usize,
        out: Out<'_>,
    ) -> Result<bool, SerializeError> {
        if !self.fits_alone(len, points) {
            return Ok(false);
        }
        loop {
            if self.compressor.is_none() {
                self.open()?;
            }
            let sep = if self.items > 0 {
                self.separator.len()
            } else {
                0
            };
            let need = len.saturating_add(sep);
            let after = need.saturating_add(self.footer.len());
            let within_points = self.points.saturating_add(points) <= self.limits.max_points;
            let within_uncompressed =
                self.uncompressed.saturating_add(after) <= self.limits.max_uncompressed_bytes;
            if within_points && within_uncompressed {
                if let Some((produced, held)) =
                    self.compressor.as_ref().and_then(Compressor::zstd_progress)
                {
                    self.base = produced;
                    self.fed_since_flush = held;
                }
                let pending = self.fed_since_flush + self.stage.len();
                let worst = self
                    .base
                    .saturating_add(self.compression.bound(pending.saturating_add(after)));
                if worst <= self.limits.max_compressed_bytes {
                    if sep > 0 {
                        self.stage.extend(self.separator);
                        self.uncompressed += sep;
                    }
                    self.reserved = len;
                    self.measure_room(pending.saturating_add(need), points);
                    return Ok(true);
                }
                if pending > 0 && self.repacks < MAX_REPACKS {
                    self.repack()?;
                    continue;
                }
            }
            if self.items == 0 {
                // Unreachable given `fits_alone`, but never loop forever.
                return Ok(false);
            }
            self.close(out)?;
        }
    }

    /// Sets the room the fast path of [`reserve`](Self::reserve) may use once the item being
    /// admitted (`pending` bytes fed or staged with it, `points` more points) is in: what keeps
    /// the uncompressed size, the points and the compressed bound within their limits.
    fn measure_room(&mut self, pending: usize, points: usize) {
        let footer = self.footer.len();
        let uncompressed = self.uncompressed.saturating_add(self.reserved);
        let by_uncompressed = self
            .limits
            .max_uncompressed_bytes
            .saturating_sub(uncompressed.saturating_add(footer));
        let avail = self.limits.max_compressed_bytes.saturating_sub(self.base);
        let by_compressed =
            compressed_room(self.compression, avail, pending.saturating_add(footer));
        self.fast_bytes = by_uncompressed.min(by_compressed);
        self.fast_points = self
            .limits
            .max_points
            .saturating_sub(self.points.saturating_add(points));
    }

    /// The bytes of the item just reserved, to be overwritten entirely: call once after each
    /// [`reserve`](Self::reserve) that returned `Ok(true)`.
    pub(crate) fn item(&mut self) -> &mut [u8] {
        self.stage.take(self.reserved)
    }

    /// Accounts for the item just written.
    pub(crate) fn commit(&mut self, points: usize) -> Result<(), SerializeError> {
        self.uncompressed += self.reserved;
        self.points += points;
        self.items += 1;
        self.reserved = 0;
        if self.stage.len() >= STAGE_BYTES {
            self.feed()?;
        }
        Ok(())
    }

    fn open(&mut self) -> Result<(), SerializeError> {
        // Most payloads are far below the limit; the body grows as needed.
        let guess = self.limits.max_compressed_bytes.min(INITIAL_BODY_BYTES);
        self.fast_bytes = 0;
        self.fast_points = 0;
        self.compressor = Some(Compressor::with_context(
            self.compression,
            guess,
            &mut self.zstd,
        )?);
        self.stage.clear();
        self.stage.extend(self.header);
        self.base = 0;
        self.fed_since_flush = 0;
        self.uncompressed = self.header.len();
        self.points = 0;
        self.items = 0;
        self.repacks = 0;
        Ok(())
    }

    fn feed(&mut self) -> Result<(), SerializeError> {
        if let Some(c) = self.compressor.as_mut() {
            c.write(self.stage.bytes())?;
            self.fed_since_flush += self.stage.len();
        }
        self.stage.clear();
        Ok(())
    }

    fn repack(&mut self) -> Result<(), SerializeError> {
        self.fast_bytes = 0;
        self.fast_points = 0;
        self.feed()?;
        if let Some(c) = self.compressor.as_mut() {
            c.flush()?;
            self.base = c.output_len();
        }
        self.fed_since_flush = 0;
        self.repacks += 1;
        Ok(())
    }

    /// Closes the open payload (if it holds any item) into `out`.
    pub(crate) fn close(&mut self, out: Out<'_>) -> Result<(), SerializeError> {
        let Some(mut c) = self.compressor.take() else {
            return Ok(());
        };
        if self.items == 0 {
            self.stage.clear();
            return Ok(());
        }
        self.stage.extend(self.footer);
        c.write(self.stage.bytes())?;
        self.stage.clear();
        let mut body = c.finish_into(&mut self.zstd)?;
        // The body grew in doublings: give back the slack before it waits in a queue.
        body.shrink_to_fit();
        out(Payload {
            endpoint: self.endpoint,
            compression: self.compression,
            body,
            items: self.items,
        });
        self.items = 0;
        Ok(())
    }

    /// Gives back the staging buffer and the zstd context for reuse.
    pub(crate) fn into_reusable(self) -> Reusable {
        Reusable {
            stage: self.stage.buf,
            zstd: self.zstd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_room_keeps_every_bound_within_the_limit() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for compression in [
            Compression::None,
            Compression::ZLIB_DEFAULT,
            Compression::GZIP_DEFAULT,
            Compression::default(),
        ] {
            let mut nonzero = 0;
            for i in 0..20_000usize {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let avail = (x as usize) % (8 << 20) + i % 300;
                let used = ((x >> 32) as usize) % (avail + 1);
                if compression.bound(used) > avail {
                    // Not a state the builder can be in: what it admitted fits.
                    continue;
                }
                let room = compressed_room(compression, avail, used);
                assert!(
                    compression.bound(used + room) <= avail,
                    "{compression:?} avail {avail} used {used} room {room}"
                );
                // Not merely safe: the room is nearly all of what the bound allows.
                if room > 0 {
                    nonzero += 1;
                    assert!(compression.bound(used + room + avail / 64 + 400) > avail);
                }
            }
            assert!(nonzero > 5_000, "{compression:?}: {nonzero}");
        }
    }
}
