//! The wired DogStatsD agent: sockets → parser → aggregation shards → flusher (every 15 s) →
//! serializer → forwarder (or the file sink), on threads joined by bounded channels.
//!
//! The ingest thread reads the datagram sockets (UDP, Unix datagram) itself, waiting on all of
//! them at once (`epoll`), and parses each datagram in its read buffer: no reader thread, no copy,
//! no wake-up between threads per batch. While it parses, datagrams wait in the kernel's socket
//! buffer (`DD_DOGSTATSD_SO_RCVBUF`), and what overflows it is counted (`kernel_drops`).
//!
//! Queues and what happens when they are full:
//! - Unix stream connections → parser: `DOGPIPE_QUEUE_PACKETS` packets (1024); **blocks** the
//!   connection's reader, so back-pressure reaches the sender.
//! - parser → shards: the aggregator's bounded batch queues; **block**.
//! - flusher → sender: a flush goes in chunks of `DOGPIPE_FLUSH_CHUNK` series and sketches
//!   (4096), at most `DOGPIPE_FLUSH_QUEUE` chunks queued (4), so a flush of many contexts is
//!   never held whole. The ingest thread is the flusher, and it **never waits** on the sender:
//!   it hands over the next chunk when the queue has room and reads packets meanwhile
//!   (`Aggregator::begin_flush`; shard threads likewise walk their contexts between batches,
//!   one chunk waiting each), so a slow serializer does not stop ingestion (the Agent's flush
//!   waits on its serializer). A flush still under way at the next flush time (the sender a
//!   whole interval behind) is finished first, waiting; so is the shutdown flush. Each summary line
//!   gives the flush's duration (`flush_ms`) and how long it kept the ingest thread from
//!   reading (`held_ingest_ms`). Bounded memory for undelivered data is the forwarder's retry
//!   queue, which drops the oldest payload and counts it.

use super::health::{self, Heartbeat};
use super::settings::{ConfigError, Settings};
use crate::net::{DatagramReader, DatagramSockets};
use crate::{
    AggregateStats, Aggregator, AggregatorConfig, FileSink, Flush, ForwardStats, Forwarder,
    ForwarderConfig, ListenError, ListenerConfig, ListenerStats, Listeners, LogsConfig, LogsHandle,
    LogsPipeline, LogsStats, Message, MessageKind, Packet, ParserConfig, Serializer,
    SerializerConfig, ShardedAggregator, Sink, lines, open_sink, parse_message, parse_packet,
    write_flush,
};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use smallvec::SmallVec;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Series and sketches per chunk of a flush on its way to the sender (`DOGPIPE_FLUSH_CHUNK`).
const FLUSH_CHUNK: usize = 4096;
/// Chunks queued between the flusher and the sender (`DOGPIPE_FLUSH_QUEUE`).
const FLUSH_QUEUE: usize = 4;

/// Messages of a packet handed to the engine together.
const BATCH: usize = 16;

/// How long the ingest thread waits for a packet before it checks the clock and the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// The same while a flush is under way and the sender's queue may have room.
const FLUSH_POLL: Duration = Duration::from_millis(2);

/// The flush interval of the Agent's DogStatsD, in seconds.
const FLUSH_SECONDS: i64 = 15;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Why the agent could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum AgentError {
    /// A setting is invalid.
    Config(ConfigError),
    /// A socket could not be bound.
    Listen(ListenError),
    /// The sink, a thread or the liveness endpoint could not be set up; the text says which.
    Start(String),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Config(e) => e.fmt(f),
            AgentError::Listen(e) => e.fmt(f),
            AgentError::Start(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for AgentError {}

impl From<ConfigError> for AgentError {
    fn from(e: ConfigError) -> Self {
        AgentError::Config(e)
    }
}

fn invalid(name: &str, e: impl fmt::Display) -> AgentError {
    AgentError::Config(ConfigError::Invalid {
        name: name.to_string(),
        value: String::new(),
        expected: e.to_string(),
    })
}

/// Counters of the whole agent, readable while it runs (all totals since start).
#[derive(Debug, Default)]
pub struct Telemetry {
    /// The listeners' counters (packets, bytes, truncated, kernel drops…).
    pub listeners: Arc<ListenerStats>,
    /// Messages parsed, by kind: metric, event, service check.
    pub messages_ok: [AtomicU64; 3],
    /// Messages rejected by the parser, by kind: metric, event, service check.
    pub messages_bad: [AtomicU64; 3],
    /// Live contexts at the last flush.
    pub contexts: AtomicU64,
    /// Samples dropped by the aggregator (all reasons) at the last flush.
    pub aggregator_drops: AtomicU64,
    /// Samples dropped because of the context limit, at the last flush.
    pub context_limit_drops: AtomicU64,
    /// Flushes done.
    pub flushes: AtomicU64,
    /// Payloads produced by the serializer.
    pub payloads: AtomicU64,
    /// Items too big for any payload, dropped.
    pub too_big: AtomicU64,
    /// Payloads the intake accepted.
    pub delivered: AtomicU64,
    /// Retried sends.
    pub retries: AtomicU64,
    /// Payloads the intake refused for good.
    pub rejected: AtomicU64,
    /// Payloads dropped because the retry queue and spool were full, or at close.
    pub dropped_payloads: AtomicU64,
}

fn get(c: &AtomicU64) -> u64 {
    // Relaxed: independent counters, read for reporting only.
    c.load(Ordering::Relaxed)
}

fn set(c: &AtomicU64, v: u64) {
    c.store(v, Ordering::Relaxed);
}

fn add(c: &AtomicU64, v: u64) {
    c.fetch_add(v, Ordering::Relaxed);
}

impl Telemetry {
    /// One line: every counter, as printed on stderr after each flush.
    pub fn summary(&self) -> String {
        let l = &self.listeners;
        format!(
            "packets={} bytes={} truncated={} kernel_drops={} oversized_frames={} metrics ok={} bad={} events ok={} bad={} service_checks ok={} bad={} contexts={} context_limit_drops={} dropped_samples={} flushes={} payloads={} delivered={} retries={} rejected={} dropped_payloads={} too_big={}",
            get(&l.packets),
            get(&l.bytes),
            get(&l.truncated),
            get(&l.kernel_drops),
            get(&l.oversized_frames),
            get(&self.messages_ok[0]),
            get(&self.messages_bad[0]),
            get(&self.messages_ok[1]),
            get(&self.messages_bad[1]),
            get(&self.messages_ok[2]),
            get(&self.messages_bad[2]),
            get(&self.contexts),
            get(&self.context_limit_drops),
            get(&self.aggregator_drops),
            get(&self.flushes),
            get(&self.payloads),
            get(&self.delivered),
            get(&self.retries),
            get(&self.rejected),
            get(&self.dropped_payloads),
            get(&self.too_big),
        )
    }
}

fn kind_index(kind: MessageKind) -> usize {
    match kind {
        MessageKind::Metric => 0,
        MessageKind::Event => 1,
        MessageKind::ServiceCheck => 2,
    }
}

/// Everything `dogpipe run` reads from the settings.
struct Plan {
    hostname: String,
    parser: ParserConfig,
    listeners: ListenerConfig,
    aggregator: AggregatorConfig,
    serializer: SerializerConfig,
    forwarder: ForwarderConfig,
    shards: usize,
    queue_packets: usize,
    flush_chunk: usize,
    flush_queue: usize,
    grace: Duration,
    health_port: u16,
    output_dir: PathBuf,
    use_dogstatsd: bool,
    logs: LogsConfig,
    site: String,
}

fn plan(settings: &Settings) -> Result<Plan, AgentError> {
    let port = settings
        .parsed(
            "dogstatsd_port",
            "a port number (0 disables UDP) or __random__",
            |s| match s {
                "__random__" => Some(Some(0)),
                "0" => Some(None),
                s => s.parse::<u16>().ok().map(Some),
            },
        )?
        .unwrap_or(Some(8125));
    let mut listeners = ListenerConfig::default()
        .with_udp_port(port)
        .with_non_local_traffic(
            settings
                .bool("dogstatsd_non_local_traffic")?
                .unwrap_or(false),
        )
        .with_socket(settings.string("dogstatsd_socket").map(PathBuf::from))
        .with_stream_socket(
            settings
                .string("dogstatsd_stream_socket")
                .map(PathBuf::from),
        )
        .with_origin_detection(
            settings
                .bool("dogstatsd_origin_detection")?
                .unwrap_or(false),
        )
        .with_proc_root(PathBuf::from(
            settings
                .string("dogpipe_proc_root")
                .unwrap_or_else(|| "/proc".into()),
        ));
    if let Some(n) = settings.u64("dogstatsd_buffer_size")? {
        listeners = listeners.with_buffer_size(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(n) = settings.u64("dogstatsd_so_rcvbuf")? {
        listeners = listeners.with_so_rcvbuf(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(n) = settings.u64("dogpipe_udp_sockets")? {
        listeners = listeners.with_udp_sockets(usize::try_from(n).unwrap_or(1));
    }
    let parser = ParserConfig::default()
        .with_origin_detection_client(
            settings
                .bool("dogstatsd_origin_detection_client")?
                .unwrap_or(false),
        )
        .with_timestamps(
            settings
                .bool("dogstatsd_no_aggregation_pipeline")?
                .unwrap_or(true),
        )
        .with_max_message_bytes(u32::try_from(listeners.buffer_size()).unwrap_or(u32::MAX));
    let hostname = settings
        .string("hostname")
        .or_else(|| settings.string("kubernetes_kubelet_nodename"))
        .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok())
        .unwrap_or_default();
    let lookup = |name: &str| settings.var(name);
    let aggregator = AggregatorConfig::from_lookup(lookup, Some(hostname.clone()))
        .map_err(|e| invalid("DD_DOGSTATSD_*", e))?;
    let serializer =
        SerializerConfig::from_lookup(lookup).map_err(|e| invalid("DD_SERIALIZER_*", e))?;
    let forwarder = ForwarderConfig::from_lookup(lookup).map_err(|e| invalid("DD_*", e))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(Plan {
        hostname,
        parser,
        listeners,
        aggregator,
        serializer,
        forwarder,
        // With two cores or fewer, a shard thread would only compete with the ingest thread.
        shards: settings
            .u64("dogpipe_shards")?
            .map_or(if cores <= 2 { 0 } else { cores - 1 }, to_usize),
        queue_packets: settings
            .u64("dogpipe_queue_packets")?
            .map_or(1024, |n| to_usize(n).max(1)),
        flush_chunk: settings
            .u64("dogpipe_flush_chunk")?
            .map_or(FLUSH_CHUNK, |n| to_usize(n).max(1)),
        flush_queue: settings
            .u64("dogpipe_flush_queue")?
            .map_or(FLUSH_QUEUE, |n| to_usize(n).max(1)),
        grace: Duration::from_secs(
            settings
                .u64("dogpipe_shutdown_grace_seconds")?
                .unwrap_or(10),
        ),
        health_port: settings
            .parsed("health_port", "a port number (0 disables)", |s| {
                s.parse::<u16>().ok()
            })?
            .unwrap_or(5555),
        output_dir: settings
            .string("dogpipe_output_dir")
            .map_or_else(|| PathBuf::from("dogpipe-out"), PathBuf::from),
        use_dogstatsd: settings.bool("use_dogstatsd")?.unwrap_or(true),
        logs: LogsConfig::from_settings(settings)?,
        site: settings
            .string("site")
            .unwrap_or_else(|| "datadoghq.com".into()),
    })
}

/// A running DogStatsD agent: what `dogpipe run` starts, for programs that embed dogpipe.
///
/// ```no_run
/// use dogpipe::{Agent, Settings};
/// let settings = Settings::from_process(None)?;
/// let agent = Agent::start(&settings, |line| eprintln!("{line}"))?;
/// println!("listening on {:?}", agent.udp_addr());
/// // … later:
/// let delivered_everything = agent.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Agent {
    stop: Arc<AtomicBool>,
    logs: Option<LogsHandle>,
    ingest: Option<JoinHandle<bool>>,
    health: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    telemetry: Arc<Telemetry>,
    udp_addr: Option<SocketAddr>,
    health_addr: Option<SocketAddr>,
    description: String,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("udp_addr", &self.udp_addr)
            .field("health_addr", &self.health_addr)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// Reads the settings, binds the sockets and starts every thread. `log` receives the
    /// agent's log lines (start-up notes, one summary per flush, shutdown).
    ///
    /// # Errors
    /// [`AgentError`] for an invalid setting, a socket that cannot be bound, or a sink or
    /// endpoint that cannot be opened.
    pub fn start(
        settings: &Settings,
        log: impl Fn(&str) + Send + Sync + 'static,
    ) -> Result<Agent, AgentError> {
        let log: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(log);
        let plan = plan(settings)?;
        let shipping = !plan.forwarder.api_key().is_empty();
        let description = if shipping {
            format!(
                "shipping to {} as host {:?}",
                plan.forwarder.url(),
                plan.hostname
            )
        } else {
            format!(
                "no DD_API_KEY set: writing requests to {}/ (read them with `dogpipe decode {}`)",
                plan.output_dir.display(),
                plan.output_dir.display()
            )
        };
        let sink = open_sink(plan.forwarder.clone(), Some(&plan.output_dir))
            .map_err(|e| AgentError::Start(e.to_string()))?;
        let logs = if plan.logs.enabled() {
            // Logs go to the logs intake with the API key, else to `<output dir>/logs`.
            let sink: Box<dyn Sink + Send> = if shipping {
                let url = plan.logs.logs_url().map_or_else(
                    || format!("https://agent-http-intake.logs.{}", plan.site),
                    str::to_owned,
                );
                Box::new(
                    Forwarder::new(plan.forwarder.clone().with_url(url))
                        .map_err(|e| AgentError::Start(e.to_string()))?,
                )
            } else {
                Box::new(
                    FileSink::create(plan.output_dir.join("logs"))
                        .map_err(|e| AgentError::Start(e.to_string()))?,
                )
            };
            log(&format!(
                "dogpipe: collecting container logs from {}",
                plan.logs.pods_dir().display()
            ));
            Some(LogsPipeline::start(plan.logs.clone(), sink, &plan.hostname))
        } else {
            None
        };

        let (packets_tx, packets_rx) = crossbeam_channel::bounded::<Packet>(plan.queue_packets);
        let (listeners, sockets) = if plan.use_dogstatsd {
            let (listeners, sockets) =
                Listeners::start_polled(&plan.listeners, packets_tx).map_err(AgentError::Listen)?;
            (Some(listeners), Some(sockets))
        } else {
            drop(packets_tx);
            (None, None)
        };
        let udp_addr = listeners.as_ref().and_then(Listeners::udp_addr);
        let asked = plan.listeners.so_rcvbuf();
        if let Some(got) = listeners.as_ref().and_then(Listeners::receive_buffer) {
            // The kernel reports twice what it set (its bookkeeping is counted in).
            if got / 2 < asked {
                log(&format!(
                    "dogpipe: DD_DOGSTATSD_SO_RCVBUF={asked} was capped at {} bytes by \
                     net.core.rmem_max; raise it, or give dogpipe CAP_NET_ADMIN to force the size",
                    got / 2
                ));
            }
        }
        let telemetry = Arc::new(Telemetry {
            listeners: listeners
                .as_ref()
                .map_or_else(Default::default, |l| Arc::clone(l.stats())),
            ..Telemetry::default()
        });

        let heartbeat = Arc::new(Heartbeat::default());
        heartbeat.beat();
        let (health, health_addr) = if plan.health_port > 0 {
            let stop = Arc::new(AtomicBool::new(false));
            let max_age = Duration::from_secs(3 * FLUSH_SECONDS as u64);
            let (addr, handle) = health::serve(
                plan.health_port,
                Arc::clone(&heartbeat),
                max_age,
                Arc::clone(&stop),
            )
            .map_err(|e| {
                AgentError::Start(format!(
                    "cannot serve the liveness endpoint on 127.0.0.1:{}: {e} (set DD_HEALTH_PORT)",
                    plan.health_port
                ))
            })?;
            (Some((stop, handle)), Some(addr))
        } else {
            (None, None)
        };

        let (flush_tx, flush_rx) = crossbeam_channel::bounded::<ToSender>(plan.flush_queue);
        let sender = {
            let (telemetry, log) = (Arc::clone(&telemetry), Arc::clone(&log));
            let serializer = Serializer::new(plan.serializer.clone());
            let grace = plan.grace;
            std::thread::Builder::new()
                .name("dogpipe-sender".into())
                .spawn(move || sender_loop(sink, serializer, &flush_rx, grace, &telemetry, &*log))
                .map_err(|e| AgentError::Start(format!("cannot start the sender thread: {e}")))?
        };

        let stop = Arc::new(AtomicBool::new(false));
        let ingest = {
            let stop = Arc::clone(&stop);
            let telemetry = Arc::clone(&telemetry);
            let engine = if plan.shards == 0 {
                Engine::Inline(Box::new(Aggregator::new(plan.aggregator.clone())))
            } else {
                Engine::Sharded(Box::new(ShardedAggregator::new(
                    plan.aggregator.clone(),
                    plan.shards,
                )))
            };
            let (parser, flush_chunk) = (plan.parser, plan.flush_chunk);
            std::thread::Builder::new()
                .name("dogpipe-ingest".into())
                .spawn(move || {
                    let mut ingest = Ingest {
                        parser,
                        engine,
                        flush_chunk,
                        telemetry,
                        line: Vec::new(),
                        last: [0; 9],
                        flushing: None,
                    };
                    let mut reader = sockets.map(DatagramSockets::into_reader);
                    ingest.run(
                        reader.as_mut(),
                        &packets_rx,
                        listeners,
                        &flush_tx,
                        &stop,
                        &heartbeat,
                    );
                    drop(flush_tx);
                    sender.join().unwrap_or(false)
                })
                .map_err(|e| AgentError::Start(format!("cannot start the ingest thread: {e}")))?
        };
        log(&format!("dogpipe: {description}"));
        if let Some(addr) = udp_addr {
            log(&format!("dogpipe: DogStatsD listening on udp {addr}"));
        }
        if let Some(addr) = health_addr {
            log(&format!("dogpipe: liveness on http://{addr}/live"));
        }
        Ok(Agent {
            stop,
            logs,
            ingest: Some(ingest),
            health,
            telemetry,
            udp_addr,
            health_addr,
            description,
        })
    }

    /// The bound UDP address, when UDP is on.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// The liveness endpoint's address, when it is on.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    /// Where requests go, in words.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The counters, live.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// The log pipeline's counters, when log collection is on (`DD_LOGS_ENABLED`).
    pub fn logs_stats(&self) -> Option<LogsStats> {
        self.logs.as_ref().map(LogsHandle::stats)
    }

    /// Stops receiving, drains what was received, flushes every bucket (open ones too) and
    /// delivers within the grace period (`DOGPIPE_SHUTDOWN_GRACE_SECONDS`, 10 s). Returns whether
    /// everything was delivered.
    pub fn stop(mut self) -> bool {
        self.shutdown()
    }

    fn shutdown(&mut self) -> bool {
        // Release pairs with the Acquire load in the ingest loop.
        self.stop.store(true, Ordering::Release);
        let logs_delivered = self.logs.take().is_none_or(|logs| {
            let stats = logs.stop();
            stats.payloads_accepted == stats.payloads_sent
        });
        let delivered = logs_delivered
            && self
                .ingest
                .take()
                .is_some_and(|h| h.join().unwrap_or(false));
        if let Some((stop, handle)) = self.health.take() {
            stop.store(true, Ordering::Release);
            let _ = handle.join();
        }
        delivered
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.ingest.is_some() || self.logs.is_some() {
            self.shutdown();
        }
    }
}

/// Where samples aggregate: on the ingest thread itself (no hand-off, no batch copy, no
/// wake-ups between threads: the default on machines of one or two cores, where a shard thread
/// only competes with the ingest thread), or on shard threads.
enum Engine {
    Inline(Box<Aggregator>),
    Sharded(Box<ShardedAggregator>),
}

impl Engine {
    fn insert(&mut self, message: &Message<'_>, now: i64) {
        match self {
            Engine::Inline(a) => a.insert(message, now),
            Engine::Sharded(a) => a.insert(message, now),
        }
    }

    fn insert_all(&mut self, messages: &[Message<'_>], now: i64) {
        match self {
            Engine::Inline(a) => a.insert_all(messages, now),
            Engine::Sharded(a) => messages.iter().for_each(|m| a.insert(m, now)),
        }
    }

    fn flush(&mut self, now: i64, include_open: bool, chunk: usize, each: impl FnMut(Flush)) {
        match self {
            Engine::Inline(a) => a.flush_in_chunks(now, include_open, chunk, each),
            Engine::Sharded(a) => a.flush_in_chunks(now, include_open, chunk, each),
        }
    }

    /// Starts a flush taken a chunk at a time ([`next_chunk`](Self::next_chunk)) between
    /// packets.
    fn begin_flush(&mut self, now: i64, chunk: usize) -> bool {
        match self {
            Engine::Inline(a) => a.begin_flush(now, false, chunk),
            Engine::Sharded(a) => a.begin_flush(now, false, chunk),
        }
    }

    fn next_chunk(&mut self) -> Option<Flush> {
        match self {
            Engine::Inline(a) => a.next_flush_chunk(),
            Engine::Sharded(a) => a.next_flush_chunk(),
        }
    }

    fn stats(&mut self) -> AggregateStats {
        match self {
            Engine::Inline(a) => a.stats(),
            Engine::Sharded(a) => a.stats(),
        }
    }
}

/// The parser-and-aggregation thread's state.
struct Ingest {
    parser: ParserConfig,
    engine: Engine,
    flush_chunk: usize,
    telemetry: Arc<Telemetry>,
    line: Vec<u8>,
    /// Counter values at the last self-telemetry, for deltas.
    last: [u64; 9],
    /// The flush under way, taken a chunk at a time between packets.
    flushing: Option<UnderWay>,
}

/// A flush under way: when it began, and how long its chunks took on the ingest thread (in
/// all, and the longest).
struct UnderWay {
    began: Instant,
    held: Duration,
    longest: Duration,
}

impl Ingest {
    fn run(
        &mut self,
        mut reader: Option<&mut DatagramReader>,
        packets: &Receiver<Packet>,
        listeners: Option<Listeners>,
        flushes: &Sender<ToSender>,
        stop: &AtomicBool,
        heartbeat: &Heartbeat,
    ) {
        let mut next_flush = (unix_now() / FLUSH_SECONDS + 1) * FLUSH_SECONDS;
        while !stop.load(Ordering::Acquire) {
            // While a flush is under way, the sender's room is checked often.
            let wait = match &self.flushing {
                None => POLL,
                // The next chunk can go at once: only what the sockets hold now is read first.
                Some(_) if !flushes.is_full() => Duration::ZERO,
                Some(_) => FLUSH_POLL,
            };
            match reader.as_deref_mut() {
                Some(reader) => {
                    reader.wait(wait, &mut |data, id| self.packet(data, id));
                }
                None => std::thread::sleep(wait),
            }
            while let Ok(packet) = packets.try_recv() {
                self.packet(&packet.data, packet.container_id.as_ref());
            }
            if !self.pump(flushes) {
                return;
            }
            let now = unix_now();
            if now >= next_flush {
                next_flush = (now / FLUSH_SECONDS + 1) * FLUSH_SECONDS;
                self.self_telemetry(now);
                if !self.begin_flush(now, flushes) {
                    return;
                }
                heartbeat.beat();
            }
        }
        // Stop receiving, then take in what the sockets and the queue still hold.
        if let Some(l) = listeners {
            l.stop();
        }
        if let Some(reader) = reader {
            reader.drain(&mut |data, id| self.packet(data, id));
        }
        while let Ok(packet) = packets.try_recv() {
            self.packet(&packet.data, packet.container_id.as_ref());
        }
        if self.finish(flushes) {
            self.flush(unix_now(), true, flushes);
        }
    }

    /// Starts the flush of the buckets closed at `now`, taken a chunk at a time between packets
    /// ([`pump`](Self::pump)). A flush still under way (the sender more than a flush interval
    /// behind) is finished first, waiting on the sender. False when the sender is gone.
    fn begin_flush(&mut self, now: i64, flushes: &Sender<ToSender>) -> bool {
        if !self.finish(flushes) {
            return false;
        }
        self.engine.begin_flush(now, self.flush_chunk);
        self.flushing = Some(UnderWay {
            began: Instant::now(),
            held: Duration::ZERO,
            longest: Duration::ZERO,
        });
        self.pump(flushes)
    }

    /// Hands the sender the next chunk of the flush under way when its queue has room, without
    /// waiting (one chunk a call, so that packets are read between chunks); the flush's end
    /// after its last chunk. False when the sender is gone.
    fn pump(&mut self, flushes: &Sender<ToSender>) -> bool {
        let Some(under_way) = self.flushing.as_mut() else {
            return true;
        };
        if flushes.is_full() {
            return true;
        }
        let started = Instant::now();
        let next = self.engine.next_chunk();
        let spent = started.elapsed();
        under_way.held += spent;
        under_way.longest = under_way.longest.max(spent);
        match next {
            Some(chunk) => flushes.send(ToSender::Chunk(chunk)).is_ok(),
            None => {
                let end = ToSender::End {
                    took: under_way.began.elapsed(),
                    held: under_way.held,
                    longest: under_way.longest,
                };
                self.flushing = None;
                self.note_stats();
                flushes.send(end).is_ok()
            }
        }
    }

    /// Finishes the flush under way, waiting on the sender. False when the sender is gone.
    fn finish(&mut self, flushes: &Sender<ToSender>) -> bool {
        let Some(under_way) = self.flushing.take() else {
            return true;
        };
        let started = Instant::now();
        let mut sent = true;
        while let Some(chunk) = self.engine.next_chunk() {
            sent &= flushes.send(ToSender::Chunk(chunk)).is_ok();
        }
        let spent = started.elapsed();
        self.note_stats();
        let end = ToSender::End {
            took: under_way.began.elapsed(),
            held: under_way.held + spent,
            longest: under_way.longest.max(spent),
        };
        sent && flushes.send(end).is_ok()
    }

    /// Flushes the engine to the sender chunk by chunk, waiting on it; false when the sender is
    /// gone.
    fn flush(&mut self, now: i64, include_open: bool, flushes: &Sender<ToSender>) -> bool {
        let mut sent = true;
        let started = Instant::now();
        self.engine
            .flush(now, include_open, self.flush_chunk, |chunk| {
                sent &= flushes.send(ToSender::Chunk(chunk)).is_ok();
            });
        let held = started.elapsed();
        self.note_stats();
        let end = ToSender::End {
            took: held,
            held,
            longest: held,
        };
        sent && flushes.send(end).is_ok()
    }

    fn note_stats(&mut self) {
        let s = self.engine.stats();
        let t = &self.telemetry;
        set(&t.contexts, s.live_contexts);
        set(&t.aggregator_drops, s.dropped());
        set(&t.context_limit_drops, s.context_limit);
        add(&t.flushes, 1);
    }

    /// Parses a packet and feeds the engine. With origin detection, the sender's container id
    /// (or, with client origin detection, the `c:` field's) becomes a `container_id:` tag: the
    /// message is re-parsed with one more `#` field, which wins.
    fn packet(&mut self, data: &[u8], container_id: Option<&Arc<str>>) {
        let now = unix_now();
        let (mut ok, mut bad) = ([0u64; 3], [0u64; 3]);
        // Messages go to the engine a few at a time (`insert_all`), which overlaps their lookups.
        let mut batch: SmallVec<[Message<'_>; BATCH]> = SmallVec::new();
        for result in parse_packet(data, &self.parser) {
            let message = match result {
                Ok(m) => m,
                Err(e) => {
                    bad[kind_index(e.message_kind())] += 1;
                    continue;
                }
            };
            let raw = message.line();
            ok[kind_index(message.kind())] += 1;
            let socket_id = container_id.map(|id| id.as_bytes());
            let (origin_id, tags) = match &message {
                Message::Metric(m) => (socket_id.or_else(|| m.origin().container_id()), m.tags()),
                Message::Event(e) => (socket_id.or_else(|| e.origin().container_id()), e.tags()),
                Message::ServiceCheck(sc) => {
                    (socket_id.or_else(|| sc.origin().container_id()), sc.tags())
                }
            };
            let Some(id) = origin_id else {
                batch.push(message);
                if batch.len() == BATCH {
                    self.engine.insert_all(&batch, now);
                    batch.clear();
                }
                continue;
            };
            // What came before goes first: order within a packet is kept (the last gauge wins).
            self.engine.insert_all(&batch, now);
            batch.clear();
            let line = &mut self.line;
            line.clear();
            line.extend_from_slice(raw);
            line.extend_from_slice(b"|#");
            if !tags.as_bytes().is_empty() {
                line.extend_from_slice(tags.as_bytes());
                line.push(b',');
            }
            line.extend_from_slice(b"container_id:");
            line.extend_from_slice(id);
            match parse_message(line, &self.parser) {
                Ok(tagged) => self.engine.insert(&tagged, now),
                // The tag pushed the message over a limit: keep it without the origin tag.
                Err(_) => self.engine.insert(&message, now),
            }
        }
        self.engine.insert_all(&batch, now);
        for i in 0..3 {
            add(&self.telemetry.messages_ok[i], ok[i]);
            add(&self.telemetry.messages_bad[i], bad[i]);
        }
    }

    /// Feeds dogpipe's own counters through the pipeline as `dogpipe.*` metrics: deltas since
    /// the last flush as counters, levels as gauges.
    fn self_telemetry(&mut self, now: i64) {
        let t = &self.telemetry;
        let l = &t.listeners;
        let current = [
            get(&l.packets),
            get(&l.bytes),
            get(&l.truncated),
            get(&l.kernel_drops),
            get(&l.oversized_frames),
            get(&t.messages_ok[0]),
            get(&t.messages_bad[0]),
            get(&t.delivered),
            get(&t.dropped_payloads),
        ];
        let names = [
            "dogpipe.listener.packets",
            "dogpipe.listener.bytes",
            "dogpipe.listener.truncated",
            "dogpipe.listener.kernel_drops",
            "dogpipe.listener.oversized_frames",
            "dogpipe.metrics.ok",
            "dogpipe.metrics.bad",
            "dogpipe.payloads.delivered",
            "dogpipe.payloads.dropped",
        ];
        let mut text = String::new();
        for ((name, new), old) in names.iter().zip(current).zip(self.last) {
            let _ = writeln!(text, "{name}:{}|c", new.saturating_sub(old));
        }
        let _ = writeln!(text, "dogpipe.aggregator.contexts:{}|g", get(&t.contexts));
        let _ = writeln!(
            text,
            "dogpipe.aggregator.dropped:{}|g",
            get(&t.aggregator_drops)
        );
        self.last = current;
        for line in lines(text.as_bytes()) {
            if let Ok(m) = parse_message(line, &self.parser) {
                self.engine.insert(&m, now);
            }
        }
    }
}

/// What the flusher sends the sender.
enum ToSender {
    /// Part of a flush.
    Chunk(Flush),
    /// The flush is complete. It `took` this long from its start to its last chunk, of which
    /// it `held` the ingest thread this long (making chunks; for a flush taken at once, also
    /// waiting while the sender was `DOGPIPE_FLUSH_QUEUE` chunks behind), at most `longest`
    /// at a time.
    End {
        took: Duration,
        held: Duration,
        longest: Duration,
    },
}

fn sender_loop(
    mut sink: Box<dyn Sink + Send>,
    mut serializer: Serializer,
    flushes: &Receiver<ToSender>,
    grace: Duration,
    telemetry: &Telemetry,
    log: &dyn Fn(&str),
) -> bool {
    let note = |sink: &dyn Sink, serializer: &Serializer| {
        let s: ForwardStats = sink.stats();
        let st = serializer.stats();
        set(&telemetry.payloads, st.payloads);
        set(
            &telemetry.too_big,
            st.series_too_big + st.sketches_too_big + st.events_too_big + st.service_checks_too_big,
        );
        set(&telemetry.delivered, s.delivered);
        set(&telemetry.retries, s.retries);
        set(&telemetry.rejected, s.rejected);
        set(
            &telemetry.dropped_payloads,
            s.dropped_queue_full + s.dropped_spool_error + s.dropped_on_close,
        );
    };
    // Series, sketches, events and service checks of the flush under way.
    let mut counts = [0usize; 4];
    loop {
        match flushes.recv_timeout(Duration::from_secs(1)) {
            Ok(ToSender::Chunk(flush)) => {
                for (n, more) in counts.iter_mut().zip([
                    flush.series.len(),
                    flush.sketches.len(),
                    flush.events.len(),
                    flush.service_checks.len(),
                ]) {
                    *n += more;
                }
                let result = write_flush(&mut serializer, &flush, &mut *sink);
                note(&*sink, &serializer);
                if let Err(e) = result {
                    log(&format!(
                        "dogpipe: a payload could not be handed to the sink: {e}"
                    ));
                }
            }
            Ok(ToSender::End {
                took,
                held,
                longest,
            }) => {
                let [series, sketches, events, service_checks] = std::mem::take(&mut counts);
                log(&format!(
                    "dogpipe: flush series={series} sketches={sketches} events={events} service_checks={service_checks} flush_ms={} held_ingest_ms={} longest_hold_ms={} | {}",
                    took.as_millis(),
                    held.as_millis(),
                    longest.as_millis(),
                    telemetry.summary()
                ));
            }
            Err(RecvTimeoutError::Timeout) => {
                sink.poll();
                note(&*sink, &serializer);
            }
            Err(RecvTimeoutError::Disconnected) => {
                let done = sink.finish(grace);
                note(&*sink, &serializer);
                log(&format!("dogpipe: stopped | {}", telemetry.summary()));
                return done;
            }
        }
    }
}
