//! The HTTP forwarder: ordered delivery per endpoint, retries with backoff, a bounded retry
//! queue in memory and an optional spool on disk.

use super::http::{HttpTransport, Transport};
use super::retry::{Clock, Jitter, SystemClock, backoff};
use super::spool::Spool;
use super::{ForwardError, ForwarderConfig, Sink};
use crate::{Compression, Endpoint, Payload};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

const USER_AGENT: &str = concat!("dogpipe/", env!("CARGO_PKG_VERSION"));
/// Sent as `DD-Agent-Payload` with protobuf bodies (the agent-payload schema major version).
const AGENT_PAYLOAD_VERSION: &str = "5.0.0";

/// Counts of a [`Forwarder`]. Every payload submitted ends in exactly one of `delivered`,
/// `rejected`, `dropped_queue_full`, `dropped_spool_error` or `dropped_on_close`, or is still
/// queued (in memory or on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ForwardStats {
    /// Payloads the intake accepted (2xx).
    pub delivered: u64,
    /// Body bytes the intake accepted.
    pub delivered_bytes: u64,
    /// Failed attempts that will be retried (network errors, 408, 429, 5xx).
    pub retries: u64,
    /// Payloads the intake refused for good (400, 401, 403, 413 and other 4xx), dropped.
    pub rejected: u64,
    /// Payloads dropped because memory and spool were full (the oldest first).
    pub dropped_queue_full: u64,
    /// Spooled payloads that could not be read back, dropped.
    pub dropped_spool_error: u64,
    /// Payloads still in memory when the forwarder closed without room in a spool, dropped.
    pub dropped_on_close: u64,
    /// Payloads written to the spool.
    pub spooled: u64,
    /// Spool writes that failed (the payload was kept in memory or dropped and counted).
    pub spool_write_errors: u64,
}

#[derive(Debug)]
enum Stored {
    Memory(Vec<u8>),
    Disk(PathBuf),
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    compression: Compression,
    len: usize,
    stored: Stored,
}

#[derive(Debug, Default)]
struct Lane {
    queue: VecDeque<Entry>,
    failures: u32,
    not_before: Duration,
}

enum Outcome {
    Delivered,
    Dropped,
    Retry,
}

/// Delivers payloads to the intake. Per endpoint, payloads go in the order submitted; a failed
/// one blocks its endpoint until it is delivered or dropped.
///
/// Memory is bounded by [`ForwarderConfig::with_retry_queue_bytes`] (body bytes; each queued
/// payload also holds a 56-byte entry) and disk by
/// [`ForwarderConfig::with_spool`]; when both are full the oldest payload is dropped and
/// counted. [`close`](Self::close) (or dropping the forwarder) moves what is still in memory to
/// the spool, which the next forwarder on the same directory sends first.
pub struct Forwarder {
    config: ForwarderConfig,
    transport: Box<dyn Transport>,
    clock: Box<dyn Clock>,
    log: Box<dyn FnMut(&str) + Send>,
    lanes: [(Endpoint, Lane); 6],
    memory_bytes: usize,
    spool: Option<Spool>,
    next_seq: u64,
    jitter: Jitter,
    stats: ForwardStats,
    closed: bool,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("config", &self.config)
            .field("queued", &self.queued())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder over HTTP with the real clock, logging to stderr; loads the spool, if any.
    ///
    /// # Errors
    /// [`ForwardError::Io`] when the spool directory cannot be created or read.
    pub fn new(config: ForwarderConfig) -> Result<Forwarder, ForwardError> {
        let transport = Box::new(HttpTransport::new(config.timeout));
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5eed);
        let mut f = Forwarder {
            config,
            transport,
            clock: Box::new(SystemClock::default()),
            log: Box::new(|line| eprintln!("dogpipe forwarder: {line}")),
            lanes: Endpoint::ALL.map(|e| (e, Lane::default())),
            memory_bytes: 0,
            spool: None,
            next_seq: 1,
            jitter: Jitter::new(seed),
            stats: ForwardStats::default(),
            closed: false,
        };
        if let Some(dir) = f.config.spool_dir.clone() {
            let (spool, found, unknown) = Spool::open(&dir, f.config.spool_bytes)?;
            for name in unknown {
                f.log(format!(
                    "ignoring unknown file `{name}` in the spool directory"
                ));
            }
            if !found.is_empty() {
                f.log(format!(
                    "{} spooled payloads to send from `{}`",
                    found.len(),
                    dir.display()
                ));
            }
            for s in found {
                f.next_seq = f.next_seq.max(s.seq.saturating_add(1));
                f.lane(s.endpoint).queue.push_back(Entry {
                    seq: s.seq,
                    compression: s.compression,
                    len: s.len,
                    stored: Stored::Disk(s.path),
                });
            }
            f.spool = Some(spool);
        }
        Ok(f)
    }

    /// Replaces the transport (tests, proxies).
    pub fn with_transport(mut self, transport: Box<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// Replaces the clock (tests: a clock whose `sleep` only advances time).
    pub fn with_clock(mut self, clock: Box<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the logger. Defaults to lines on stderr. Lines never contain the API key.
    pub fn with_logger(mut self, log: impl FnMut(&str) + Send + 'static) -> Self {
        self.log = Box::new(log);
        self
    }

    /// Counts so far.
    pub fn stats(&self) -> ForwardStats {
        self.stats
    }

    /// Payloads waiting, in memory and on disk.
    pub fn queued(&self) -> usize {
        self.lanes.iter().map(|(_, l)| l.queue.len()).sum()
    }

    /// Bytes of payloads waiting in memory.
    pub fn queued_memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    fn log(&mut self, line: String) {
        let key = self.config.api_key.expose();
        let line = if key.is_empty() {
            line
        } else {
            line.replace(key, "<redacted>")
        };
        (self.log)(&line);
    }

    fn lane(&mut self, endpoint: Endpoint) -> &mut Lane {
        // One lane per endpoint, in `Endpoint::ALL` order.
        let [a, b, c, d, e, l] = &mut self.lanes;
        match endpoint {
            Endpoint::SeriesV2 => &mut a.1,
            Endpoint::SeriesV1 => &mut b.1,
            Endpoint::Sketches => &mut c.1,
            Endpoint::ServiceChecks => &mut d.1,
            Endpoint::Events => &mut e.1,
            Endpoint::Logs => &mut l.1,
        }
    }

    /// Queues a payload; it is sent by [`send_ready`](Self::send_ready) or
    /// [`flush`](Self::flush). When memory and spool are full, the oldest payloads are dropped
    /// (and counted) to make room; a payload larger than both is dropped itself.
    pub fn submit(&mut self, payload: Payload) {
        let endpoint = payload.endpoint();
        let compression = payload.compression();
        let body = payload.into_body();
        let len = body.len();
        let in_memory = len <= self.config.retry_queue_bytes;
        let on_disk = self.spool.as_ref().is_some_and(|s| s.fits_at_all(len));
        if !in_memory && !on_disk {
            self.stats.dropped_queue_full += 1;
            self.log(format!(
                "dropped a {len}-byte {} payload: larger than the retry queue and the spool",
                endpoint.path()
            ));
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut spool_failed = false;
        loop {
            if in_memory && self.memory_bytes + len <= self.config.retry_queue_bytes {
                self.memory_bytes += len;
                self.lane(endpoint).queue.push_back(Entry {
                    seq,
                    compression,
                    len,
                    stored: Stored::Memory(body),
                });
                return;
            }
            if !spool_failed {
                if let Some(spool) = self.spool.as_mut().filter(|s| s.has_room(len)) {
                    match spool.write(seq, endpoint, compression, &body) {
                        Ok(path) => {
                            self.stats.spooled += 1;
                            self.lane(endpoint).queue.push_back(Entry {
                                seq,
                                compression,
                                len,
                                stored: Stored::Disk(path),
                            });
                            return;
                        }
                        Err(e) => {
                            spool_failed = true;
                            self.stats.spool_write_errors += 1;
                            self.log(format!("cannot spool a payload: {e}"));
                            if !in_memory {
                                self.stats.dropped_queue_full += 1;
                                return;
                            }
                        }
                    }
                }
            }
            if !self.drop_oldest() {
                self.stats.dropped_queue_full += 1;
                self.log(format!(
                    "dropped a {len}-byte {} payload: the retry queue is full",
                    endpoint.path()
                ));
                return;
            }
        }
    }

    /// Drops the oldest queued payload of any endpoint; false if nothing is queued.
    fn drop_oldest(&mut self) -> bool {
        let oldest = self
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(i, (_, l))| l.queue.front().map(|e| (e.seq, i)))
            .min();
        let Some((_, i)) = oldest else { return false };
        let Some((endpoint, entry)) = self
            .lanes
            .get_mut(i)
            .and_then(|(e, l)| l.queue.pop_front().map(|x| (*e, x)))
        else {
            return false;
        };
        self.release(&entry);
        self.stats.dropped_queue_full += 1;
        self.log(format!(
            "retry queue and spool full: dropped the oldest {} payload ({} bytes)",
            endpoint.path(),
            entry.len
        ));
        true
    }

    fn release(&mut self, entry: &Entry) {
        match &entry.stored {
            Stored::Memory(_) => self.memory_bytes = self.memory_bytes.saturating_sub(entry.len),
            Stored::Disk(path) => {
                if let Some(spool) = self.spool.as_mut() {
                    spool.remove(path, entry.len);
                }
            }
        }
    }

    /// Tries every endpoint whose backoff has passed, in order; returns how many payloads were
    /// delivered. Never sleeps.
    pub fn send_ready(&mut self) -> usize {
        let mut delivered = 0;
        for i in 0..self.lanes.len() {
            loop {
                let now = self.clock.now();
                match self.lanes.get(i) {
                    Some((_, lane)) if !lane.queue.is_empty() && lane.not_before <= now => {}
                    _ => break,
                }
                match self.attempt(i) {
                    Outcome::Delivered => delivered += 1,
                    Outcome::Dropped => {}
                    Outcome::Retry => break,
                }
            }
        }
        delivered
    }

    /// Sends until nothing is queued, sleeping (on the clock) through backoffs, but not past
    /// `max_wait`; returns whether everything was delivered or dropped.
    pub fn flush(&mut self, max_wait: Duration) -> bool {
        let deadline = self.clock.now().saturating_add(max_wait);
        loop {
            self.send_ready();
            let next = self
                .lanes
                .iter()
                .filter(|(_, l)| !l.queue.is_empty())
                .map(|(_, l)| l.not_before)
                .min();
            let Some(next) = next else { return true };
            if next > deadline {
                return false;
            }
            let now = self.clock.now();
            if next > now {
                self.clock.sleep(next - now);
            }
        }
    }

    fn attempt(&mut self, lane_index: usize) -> Outcome {
        let Some((endpoint, lane)) = self.lanes.get(lane_index) else {
            return Outcome::Dropped;
        };
        let endpoint = *endpoint;
        let Some(entry) = lane.queue.front() else {
            return Outcome::Dropped;
        };
        let (seq, compression, len) = (entry.seq, entry.compression, entry.len);
        let body: Cow<'_, [u8]> = match &entry.stored {
            Stored::Memory(b) => Cow::Borrowed(b),
            Stored::Disk(path) => match self.spool.as_ref().map(|s| s.read(path)) {
                Some(Ok(b)) => Cow::Owned(b),
                Some(Err(e)) => {
                    let message = format!("dropped spooled payload {seq}: {e}");
                    self.pop(lane_index);
                    self.stats.dropped_spool_error += 1;
                    self.log(message);
                    return Outcome::Dropped;
                }
                None => return Outcome::Dropped,
            },
        };
        let url = format!("{}{}", self.config.url, endpoint.path());
        let mut headers = vec![
            ("DD-API-KEY", self.config.api_key.expose()),
            ("Content-Type", endpoint.content_type()),
            ("User-Agent", USER_AGENT),
        ];
        if let Some(encoding) = compression.content_encoding() {
            headers.push(("Content-Encoding", encoding));
        }
        if endpoint.content_type() == "application/x-protobuf" {
            headers.push(("DD-Agent-Payload", AGENT_PAYLOAD_VERSION));
        }
        let sent_ms;
        if endpoint == Endpoint::Logs {
            sent_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
                .to_string();
            headers.push(("DD-PROTOCOL", "agent-json"));
            headers.push(("DD-EVP-ORIGIN", "agent"));
            headers.push(("DD-EVP-ORIGIN-VERSION", env!("CARGO_PKG_VERSION")));
            headers.push(("dd-current-timestamp", &sent_ms));
        }
        let result = self.transport.post(&url, &headers, &body);
        drop(body);
        let (retry_after, problem) = match result {
            Ok(r) if (200..300).contains(&r.status) => {
                self.pop(lane_index);
                self.stats.delivered += 1;
                self.stats.delivered_bytes += len as u64;
                if let Some((_, lane)) = self.lanes.get_mut(lane_index) {
                    lane.failures = 0;
                }
                return Outcome::Delivered;
            }
            Ok(r) if matches!(r.status, 408 | 429 | 500..=599) => (
                r.retry_after,
                format!("HTTP {}: {}", r.status, r.body.trim()),
            ),
            Ok(r) => {
                self.pop(lane_index);
                self.stats.rejected += 1;
                self.log(format!(
                    "the intake rejected a {len}-byte {} payload, dropped: HTTP {}: {}",
                    endpoint.path(),
                    r.status,
                    r.body.trim()
                ));
                return Outcome::Dropped;
            }
            Err(e) => (None, e),
        };
        self.stats.retries += 1;
        let random = self.jitter.next();
        let now = self.clock.now();
        let (initial, max) = (self.config.initial_backoff, self.config.max_backoff);
        let Some((_, lane)) = self.lanes.get_mut(lane_index) else {
            return Outcome::Retry;
        };
        lane.failures = lane.failures.saturating_add(1);
        let mut delay = backoff(initial, max, lane.failures, random);
        if let Some(asked) = retry_after {
            delay = delay.max(asked.min(max));
        }
        lane.not_before = now.saturating_add(delay);
        let failures = lane.failures;
        self.log(format!(
            "sending a {len}-byte {} payload failed ({problem}); retry {failures} in {:.1} s",
            endpoint.path(),
            delay.as_secs_f64()
        ));
        Outcome::Retry
    }

    fn pop(&mut self, lane_index: usize) {
        let entry = self
            .lanes
            .get_mut(lane_index)
            .and_then(|(_, l)| l.queue.pop_front());
        if let Some(entry) = entry {
            self.release(&entry);
        }
    }

    /// Moves payloads still in memory to the spool (or counts them as dropped when there is no
    /// room) and returns the final counts.
    pub fn close(mut self) -> ForwardStats {
        self.persist();
        self.stats
    }

    fn persist(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let mut lost = 0u64;
        let mut kept = 0u64;
        let mut errors = Vec::new();
        for (endpoint, lane) in self.lanes.iter_mut() {
            for entry in lane.queue.iter_mut() {
                let Stored::Memory(body) = &entry.stored else {
                    continue;
                };
                let written = match self.spool.as_mut().filter(|s| s.has_room(entry.len)) {
                    Some(spool) => match spool.write(entry.seq, *endpoint, entry.compression, body)
                    {
                        Ok(path) => Some(path),
                        Err(e) => {
                            errors.push(e.to_string());
                            None
                        }
                    },
                    None => None,
                };
                self.memory_bytes = self.memory_bytes.saturating_sub(entry.len);
                match written {
                    Some(path) => {
                        entry.stored = Stored::Disk(path);
                        kept += 1;
                    }
                    None => {
                        entry.stored = Stored::Memory(Vec::new());
                        lost += 1;
                    }
                }
            }
        }
        self.stats.spooled += kept;
        self.stats.spool_write_errors += errors.len() as u64;
        self.stats.dropped_on_close += lost;
        for e in errors {
            self.log(format!("cannot spool a payload: {e}"));
        }
        if kept > 0 {
            self.log(format!("closing: {kept} queued payloads kept in the spool"));
        }
        if lost > 0 {
            self.log(format!(
                "closing: {lost} queued payloads dropped (no spool or no room)"
            ));
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.persist();
    }
}

impl Sink for Forwarder {
    /// Queues the payload and sends whatever is ready.
    fn send(&mut self, payload: Payload) -> Result<(), ForwardError> {
        self.submit(payload);
        self.send_ready();
        Ok(())
    }

    fn finish(&mut self, max_wait: Duration) -> bool {
        self.flush(max_wait)
    }

    fn poll(&mut self) {
        self.send_ready();
    }

    fn stats(&self) -> ForwardStats {
        Forwarder::stats(self)
    }

    fn pending(&mut self, endpoint: Endpoint) -> usize {
        self.send_ready();
        self.lanes
            .iter()
            .find(|(e, _)| *e == endpoint)
            .map_or(0, |(_, l)| l.queue.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::Response;
    use std::sync::{Arc, Mutex};

    type Seen = (String, Vec<u8>);

    /// Answers from a script (then 200), recording each request's path and body.
    #[derive(Clone, Default)]
    struct Scripted {
        answers: Arc<Mutex<VecDeque<Result<u16, String>>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Transport for Scripted {
        fn post(&mut self, url: &str, _: &[(&str, &str)], body: &[u8]) -> Result<Response, String> {
            self.seen
                .lock()
                .unwrap()
                .push((url.to_string(), body.to_vec()));
            let status = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Ok(200))?;
            Ok(Response {
                status,
                body: "answer".into(),
                retry_after: None,
            })
        }
    }

    #[derive(Clone, Default)]
    struct FakeClock(Arc<Mutex<Duration>>);

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            *self.0.lock().unwrap()
        }
        fn sleep(&mut self, d: Duration) {
            *self.0.lock().unwrap() += d;
        }
    }

    fn forwarder(
        config: ForwarderConfig,
        script: &[Result<u16, String>],
    ) -> (Forwarder, Scripted, Arc<Mutex<Vec<String>>>) {
        let t = Scripted::default();
        t.answers.lock().unwrap().extend(script.iter().cloned());
        let logs = Arc::new(Mutex::new(Vec::new()));
        let l = logs.clone();
        let f = Forwarder::new(config.with_url("http://intake.test"))
            .unwrap()
            .with_transport(Box::new(t.clone()))
            .with_clock(Box::new(FakeClock::default()))
            .with_logger(move |line| l.lock().unwrap().push(line.to_string()));
        (f, t, logs)
    }

    fn payload(endpoint: Endpoint, byte: u8, len: usize) -> Payload {
        Payload::new(endpoint, Compression::None, vec![byte; len])
    }

    #[test]
    fn logs_payloads_are_pending_until_delivered_and_go_to_the_logs_path() {
        let (mut f, t, _) = forwarder(ForwarderConfig::default(), &[Ok(503)]);
        f.send(payload(Endpoint::Logs, 1, 10)).unwrap();
        f.submit(payload(Endpoint::Events, 2, 10));
        assert_eq!(f.pending(Endpoint::Logs), 1, "the 503 keeps it queued");
        assert!(f.flush(Duration::from_secs(600)));
        assert_eq!(f.pending(Endpoint::Logs), 0);
        let seen = t.seen.lock().unwrap();
        assert_eq!(seen[0].0, "http://intake.test/api/v2/logs");
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn when_memory_is_full_the_oldest_payload_is_dropped_and_counted() {
        let config = ForwarderConfig::default().with_retry_queue_bytes(100);
        let (mut f, t, logs) = forwarder(config, &[]);
        for (i, e) in [Endpoint::SeriesV2, Endpoint::Events, Endpoint::SeriesV2]
            .into_iter()
            .enumerate()
        {
            f.submit(payload(e, i as u8, 40));
        }
        assert_eq!(f.stats().dropped_queue_full, 1);
        assert_eq!(f.queued_memory_bytes(), 80);
        assert!(
            logs.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("dropped the oldest /api/v2/series"))
        );
        assert!(f.flush(Duration::ZERO));
        let bodies: Vec<u8> = t.seen.lock().unwrap().iter().map(|(_, b)| b[0]).collect();
        assert_eq!(
            bodies,
            [2, 1],
            "series lane first, then events; payload 0 dropped"
        );
        f.submit(payload(Endpoint::Events, 9, 101));
        assert_eq!(
            f.stats().dropped_queue_full,
            2,
            "larger than the whole queue"
        );
        assert_eq!(f.stats().delivered, 2);
    }

    #[test]
    fn a_failing_endpoint_blocks_only_itself_and_keeps_its_order() {
        let (mut f, t, _) = forwarder(ForwarderConfig::default(), &[Ok(503)]);
        f.submit(payload(Endpoint::SeriesV2, 1, 10));
        f.submit(payload(Endpoint::SeriesV2, 2, 10));
        f.submit(payload(Endpoint::Events, 3, 10));
        assert_eq!(f.send_ready(), 1, "events delivered while series backs off");
        assert_eq!(f.queued(), 2);
        assert!(f.flush(Duration::from_secs(10)));
        let bodies: Vec<u8> = t.seen.lock().unwrap().iter().map(|(_, b)| b[0]).collect();
        assert_eq!(bodies, [1, 3, 1, 2]);
        assert_eq!((f.stats().delivered, f.stats().retries), (3, 1));
    }

    #[test]
    fn network_errors_are_retried_with_growing_capped_delays() {
        let config =
            ForwarderConfig::default().with_backoff(Duration::from_secs(1), Duration::from_secs(8));
        let script: Vec<_> = (0..6)
            .map(|_| Err("connection refused".to_string()))
            .collect();
        let (mut f, _, logs) = forwarder(config, &script);
        let clock = FakeClock::default();
        f = f.with_clock(Box::new(clock.clone()));
        f.submit(payload(Endpoint::Sketches, 1, 10));
        assert!(
            !f.flush(Duration::from_secs(3)),
            "gives up waiting at max_wait, keeps the payload"
        );
        assert_eq!(f.queued(), 1);
        assert!(f.flush(Duration::from_secs(3600)));
        // Delays: [0.5,1] + [1,2] + [2,4] + [4,8] + [4,8] + [4,8] seconds.
        let waited = clock.now();
        assert!(
            waited >= Duration::from_millis(15_500) && waited <= Duration::from_secs(31),
            "{waited:?}"
        );
        assert_eq!(f.stats().retries, 6);
        assert!(logs.lock().unwrap()[0].contains("connection refused"));
    }

    #[test]
    fn permanent_errors_drop_the_payload_and_log_the_answer() {
        let (mut f, _, logs) = forwarder(
            ForwarderConfig::default(),
            &[Ok(400), Ok(401), Ok(403), Ok(413), Ok(404)],
        );
        for i in 0..5 {
            f.submit(payload(Endpoint::ServiceChecks, i, 5));
        }
        assert!(f.flush(Duration::ZERO));
        assert_eq!(
            (f.stats().rejected, f.stats().delivered, f.stats().retries),
            (5, 0, 0)
        );
        let logs = logs.lock().unwrap();
        assert!(
            logs.iter().any(|l| l.contains("HTTP 413: answer")),
            "{logs:?}"
        );
    }

    #[test]
    fn without_a_spool_payloads_left_at_close_are_counted_as_dropped() {
        let (mut f, _, _) = forwarder(ForwarderConfig::default(), &[Ok(500)]);
        f.submit(payload(Endpoint::SeriesV2, 1, 5));
        f.send_ready();
        assert_eq!(f.close().dropped_on_close, 1);
    }

    #[test]
    fn when_memory_and_spool_are_full_the_oldest_is_dropped_from_either() {
        let dir = std::env::temp_dir().join(format!("dogpipe-spool-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = ForwarderConfig::default()
            .with_retry_queue_bytes(20)
            .with_spool(&dir, 20);
        let (mut f, t, _) = forwarder(config, &[Ok(500)]);
        for i in 0..5 {
            f.submit(payload(Endpoint::SeriesV2, i, 10));
        }
        // 0,1 in memory; 2,3 on disk; 4 arrives: 0 is dropped, 4 takes its memory.
        assert_eq!(f.stats().spooled, 2);
        assert_eq!(f.stats().dropped_queue_full, 1);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        assert!(f.flush(Duration::from_secs(100)));
        let bodies: Vec<u8> = t.seen.lock().unwrap().iter().map(|(_, b)| b[0]).collect();
        assert_eq!(bodies, [1, 1, 2, 3, 4]);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "delivered files removed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_queued_payload_costs_its_body_plus_a_56_byte_entry() {
        assert!(
            std::mem::size_of::<Entry>() <= 56,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn a_spooled_payload_that_vanished_is_dropped_and_counted() {
        let dir = std::env::temp_dir().join(format!("dogpipe-spool-vanish-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = ForwarderConfig::default()
            .with_retry_queue_bytes(0)
            .with_spool(&dir, 1000);
        let (mut f, t, logs) = forwarder(config, &[]);
        f.submit(payload(Endpoint::Events, 1, 10));
        f.submit(payload(Endpoint::Events, 2, 10));
        assert_eq!(f.stats().spooled, 2);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        std::fs::remove_file(&files[0]).unwrap();
        assert!(f.flush(Duration::ZERO));
        assert_eq!((f.stats().dropped_spool_error, f.stats().delivered), (1, 1));
        assert_eq!(t.seen.lock().unwrap()[0].1[0], 2);
        assert!(
            logs.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("dropped spooled payload 1"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_api_key_is_never_logged_even_when_the_intake_echoes_it() {
        let config = ForwarderConfig::default().with_api_key(crate::ApiKey::new("sekret-key-0123"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let l = logs.clone();
        struct Echo;
        impl Transport for Echo {
            fn post(
                &mut self,
                _: &str,
                headers: &[(&str, &str)],
                _: &[u8],
            ) -> Result<Response, String> {
                let key = headers
                    .iter()
                    .find(|(n, _)| *n == "DD-API-KEY")
                    .map(|(_, v)| *v)
                    .unwrap_or("");
                Ok(Response {
                    status: 403,
                    body: format!("invalid key {key}"),
                    retry_after: None,
                })
            }
        }
        let mut f = Forwarder::new(config)
            .unwrap()
            .with_transport(Box::new(Echo))
            .with_logger(move |line| l.lock().unwrap().push(line.to_string()));
        f.submit(payload(Endpoint::SeriesV2, 1, 5));
        f.send_ready();
        let shown = format!("{:?} {:?}", f, logs.lock().unwrap());
        assert!(!shown.contains("sekret"), "{shown}");
        assert!(shown.contains("invalid key <redacted>"), "{shown}");
    }

    type Attempt = (Vec<u8>, Result<u16, String>);

    /// Answers from a random script; records (body, status) of every attempt.
    #[derive(Clone, Default)]
    struct Random {
        answers: Arc<Mutex<VecDeque<Result<u16, String>>>>,
        attempts: Arc<Mutex<Vec<Attempt>>>,
    }

    impl Transport for Random {
        fn post(&mut self, _: &str, _: &[(&str, &str)], body: &[u8]) -> Result<Response, String> {
            let answer = self.answers.lock().unwrap().pop_front().unwrap_or(Ok(200));
            self.attempts
                .lock()
                .unwrap()
                .push((body.to_vec(), answer.clone()));
            let status = answer?;
            Ok(Response {
                status,
                body: String::new(),
                retry_after: None,
            })
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Submit(usize, usize),
        SendReady,
        Wait(u64),
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]

        #[test]
        fn property_test_every_payload_is_delivered_once_in_order_or_counted(
            ops in proptest::collection::vec(proptest::prop_oneof![
                4 => proptest::prelude::Strategy::prop_map((0usize..3, 1usize..60), |(e, n)| Op::Submit(e, n)),
                2 => proptest::prelude::Just(Op::SendReady),
                1 => proptest::prelude::Strategy::prop_map(0u64..200, Op::Wait),
            ], 0..40),
            answers in proptest::collection::vec(proptest::prop_oneof![
                3 => proptest::prelude::Just(Ok(200u16)),
                1 => proptest::prelude::Just(Ok(500u16)),
                1 => proptest::prelude::Just(Ok(429u16)),
                1 => proptest::prelude::Just(Ok(403u16)),
                1 => proptest::prelude::Just(Err("refused".to_string())),
            ], 0..40),
            memory in 0usize..200,
            spool in proptest::option::of(0u64..200),
            case in 0u64..u64::MAX,
        ) {
            let dir = std::env::temp_dir().join(format!("dogpipe-prop-{}-{case}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut config = ForwarderConfig::default().with_url("http://x").with_retry_queue_bytes(memory);
            if let Some(bytes) = spool {
                config = config.with_spool(&dir, bytes);
            }
            let t = Random::default();
            t.answers.lock().unwrap().extend(answers);
            let clock = FakeClock::default();
            let mut f = Forwarder::new(config).unwrap()
                .with_transport(Box::new(t.clone()))
                .with_clock(Box::new(clock.clone()))
                .with_logger(|_| {});
            let endpoints = [Endpoint::SeriesV2, Endpoint::Sketches, Endpoint::Events];
            let mut submitted = 0u64;
            let mut endpoint_of = Vec::new();
            for op in ops {
                match op {
                    Op::Submit(e, n) => {
                        // The body names the payload: its submission number, then padding.
                        let mut body = submitted.to_le_bytes().to_vec();
                        body.resize(8 + n, 0);
                        f.submit(Payload::new(endpoints[e], Compression::None, body));
                        endpoint_of.push(e);
                        submitted += 1;
                    }
                    Op::SendReady => { f.send_ready(); }
                    Op::Wait(s) => { let mut c = clock.clone(); c.sleep(Duration::from_secs(s)); }
                }
                proptest::prop_assert!(f.queued_memory_bytes() <= memory);
            }
            let stats = f.close();
            let on_disk = std::fs::read_dir(&dir).map(|d| d.count() as u64).unwrap_or(0);
            let accounted = stats.delivered + stats.rejected + stats.dropped_queue_full
                + stats.dropped_spool_error + stats.dropped_on_close + on_disk;
            proptest::prop_assert_eq!(accounted, submitted);

            let attempts = t.attempts.lock().unwrap().clone();
            let id = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap());
            let delivered: Vec<u64> = attempts.iter().filter(|(_, a)| *a == Ok(200)).map(|(b, _)| id(b)).collect();
            proptest::prop_assert_eq!(delivered.len() as u64, stats.delivered);
            let mut unique = delivered.clone();
            unique.sort_unstable();
            unique.dedup();
            proptest::prop_assert_eq!(unique.len(), delivered.len(), "delivered twice");
            // Per endpoint, delivery follows submission order.
            for e in 0..endpoints.len() {
                let order: Vec<u64> = delivered.iter().copied().filter(|&i| endpoint_of[i as usize] == e).collect();
                proptest::prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "out of order: {:?}", order);
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
