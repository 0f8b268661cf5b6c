//! `dogpipe run`: the node agent. Listeners → parser → aggregation shards → flusher (every 15 s)
//! → serializer → forwarder (or the file sink), on threads joined by bounded channels.
//!
//! Queues and what happens when they are full:
//! - listeners → parser: `DOGPIPE_QUEUE_PACKETS` packets (1024); **blocks**, so back-pressure
//!   reaches the kernel socket buffer, whose drops are counted (`kernel_drops`).
//! - parser → shards: the aggregator's own bounded batch queues; **block**.
//! - flusher → sender: 4 flushes; **blocks** the flusher (data is never dropped here; the
//!   forwarder's retry queue is where bounded memory is enforced, dropping the oldest payload
//!   and counting it).

use crate::aggregate::config_from_env;
use dogpipe::{
    AggregateStats, Flush, ForwardStats, ForwarderConfig, Heartbeat, ListenerConfig, ListenerStats,
    Listeners, Message, MessageKind, Packet, ParserConfig, Serializer, SerializerConfig, Settings,
    ShardedAggregator, Sink, open_sink, parse_message, write_flush,
};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const USAGE: &str = "usage: dogpipe run [--config datadog.yaml]";

/// The flush interval of the Agent's DogStatsD, in seconds.
const FLUSH_SECONDS: i64 = 15;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Counts kept by the parser thread.
#[derive(Debug, Default, Clone, Copy)]
struct ParseCounts {
    ok: [u64; 3],
    bad: [u64; 3],
}

fn kind_index(kind: MessageKind) -> usize {
    match kind {
        MessageKind::Metric => 0,
        MessageKind::Event => 1,
        MessageKind::ServiceCheck => 2,
    }
}

struct Config {
    hostname: String,
    parser: ParserConfig,
    listeners: ListenerConfig,
    shards: usize,
    queue_packets: usize,
    grace: Duration,
    health_port: u16,
    output_dir: PathBuf,
    use_dogstatsd: bool,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn hostname(settings: &Settings) -> String {
    settings
        .string("hostname")
        .or_else(|| settings.string("kubernetes_kubelet_nodename"))
        .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok())
        .unwrap_or_default()
}

fn config(settings: &Settings) -> Result<Config, String> {
    let port = settings.parsed(
        "dogstatsd_port",
        "a port number (0 disables UDP) or __random__",
        |s| match s {
            "__random__" => Some(Some(0)),
            "0" => Some(None),
            s => s.parse::<u16>().ok().map(Some),
        },
    );
    let port = port.map_err(err)?.unwrap_or(Some(8125));
    let proc_root = settings
        .string("dogpipe_proc_root")
        .unwrap_or_else(|| "/proc".into());
    let mut listeners = ListenerConfig::default()
        .with_udp_port(port)
        .with_non_local_traffic(
            settings
                .bool("dogstatsd_non_local_traffic")
                .map_err(err)?
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
                .bool("dogstatsd_origin_detection")
                .map_err(err)?
                .unwrap_or(false),
        )
        .with_proc_root(PathBuf::from(proc_root));
    if let Some(n) = settings.u64("dogstatsd_buffer_size").map_err(err)? {
        listeners = listeners.with_buffer_size(n as usize);
    }
    if let Some(n) = settings.u64("dogstatsd_so_rcvbuf").map_err(err)? {
        listeners = listeners.with_so_rcvbuf(n as usize);
    }
    if let Some(n) = settings.u64("dogpipe_udp_sockets").map_err(err)? {
        listeners = listeners.with_udp_sockets(n as usize);
    }
    let parser = ParserConfig::default()
        .with_origin_detection_client(
            settings
                .bool("dogstatsd_origin_detection_client")
                .map_err(err)?
                .unwrap_or(false),
        )
        .with_timestamps(
            settings
                .bool("dogstatsd_no_aggregation_pipeline")
                .map_err(err)?
                .unwrap_or(true),
        )
        .with_max_message_bytes(u32::try_from(listeners.buffer_size()).unwrap_or(u32::MAX));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(Config {
        hostname: hostname(settings),
        parser,
        listeners,
        shards: settings
            .u64("dogpipe_shards")
            .map_err(err)?
            .map_or(cores.saturating_sub(1).max(1), |n| n as usize),
        queue_packets: settings
            .u64("dogpipe_queue_packets")
            .map_err(err)?
            .map_or(1024, |n| n.max(1) as usize),
        grace: Duration::from_secs(
            settings
                .u64("dogpipe_shutdown_grace_seconds")
                .map_err(err)?
                .unwrap_or(10),
        ),
        health_port: settings
            .parsed("health_port", "a port number (0 disables)", |s| {
                s.parse::<u16>().ok()
            })
            .map_err(err)?
            .unwrap_or(5555),
        output_dir: settings
            .string("dogpipe_output_dir")
            .map_or_else(|| PathBuf::from("dogpipe-out"), PathBuf::from),
        use_dogstatsd: settings.bool("use_dogstatsd").map_err(err)?.unwrap_or(true),
    })
}

pub fn run(args: &[String]) -> Result<(), String> {
    let config_path = match args {
        [] => None,
        [flag, path] if flag == "--config" => Some(path.as_str()),
        _ => return Err(USAGE.into()),
    };
    let settings = Settings::from_process(config_path).map_err(err)?;
    for name in settings.unknown_variables() {
        eprintln!("dogpipe: note: {name} is not a setting dogpipe reads; ignored");
    }
    let cfg = config(&settings)?;
    let lookup = |name: &str| settings.var(name);
    let aggregator_config = config_from_env(lookup, Some(cfg.hostname.clone()))?;
    let serializer_config = SerializerConfig::from_lookup(lookup).map_err(err)?;
    let forwarder_config = ForwarderConfig::from_lookup(lookup).map_err(err)?;
    let shipping = !forwarder_config.api_key().is_empty();
    let url = forwarder_config.url().to_string();
    let sink = open_sink(forwarder_config, Some(&cfg.output_dir)).map_err(err)?;
    if shipping {
        eprintln!("dogpipe: shipping to {url} as host {:?}", cfg.hostname);
    } else {
        eprintln!(
            "dogpipe: no DD_API_KEY set: writing requests to {}/ (read them with `dogpipe decode {}`)",
            cfg.output_dir.display(),
            cfg.output_dir.display()
        );
    }

    let term = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&term)).map_err(err)?;
    }

    let (packets_tx, packets_rx) = crossbeam_channel::bounded::<Packet>(cfg.queue_packets);
    let listeners = if cfg.use_dogstatsd {
        Some(Listeners::start(&cfg.listeners, packets_tx).map_err(err)?)
    } else {
        drop(packets_tx);
        None
    };
    if let Some(l) = &listeners {
        if let Some(addr) = l.udp_addr() {
            eprintln!("dogpipe: DogStatsD listening on udp {addr}");
        }
    }
    let listener_stats = listeners.as_ref().map_or_else(
        || Arc::new(ListenerStats::default()),
        |l| Arc::clone(l.stats()),
    );

    let heartbeat = Arc::new(Heartbeat::default());
    heartbeat.beat();
    let health_stop = Arc::new(AtomicBool::new(false));
    let health = if cfg.health_port > 0 {
        let max_age = Duration::from_secs(3 * FLUSH_SECONDS as u64);
        match dogpipe::serve_health(
            cfg.health_port,
            Arc::clone(&heartbeat),
            max_age,
            Arc::clone(&health_stop),
        ) {
            Ok((addr, handle)) => {
                eprintln!("dogpipe: liveness on http://{addr}/live");
                Some(handle)
            }
            Err(e) => {
                return Err(format!(
                    "cannot serve the liveness endpoint on port {}: {e} (set DD_HEALTH_PORT)",
                    cfg.health_port
                ));
            }
        }
    } else {
        None
    };

    // The sender: serializes each flush and hands it to the sink, retrying in between.
    let (flush_tx, flush_rx) = crossbeam_channel::bounded::<(Flush, String)>(4);
    let grace = cfg.grace;
    let sender = std::thread::Builder::new()
        .name("dogpipe-sender".into())
        .spawn(move || sender_loop(sink, Serializer::new(serializer_config), &flush_rx, grace))
        .map_err(err)?;

    // The parser and aggregation, on this thread.
    let mut engine = ShardedAggregator::new(aggregator_config, cfg.shards);
    let mut counts = ParseCounts::default();
    let mut line = Vec::new();
    let mut next_flush = (unix_now() / FLUSH_SECONDS + 1) * FLUSH_SECONDS;
    let mut last_counts = (ParseCounts::default(), snapshot(&listener_stats));
    loop {
        let stopping = term.load(Ordering::Relaxed);
        match packets_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(packet) => ingest(&packet, &cfg.parser, &mut engine, &mut counts, &mut line),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                if !stopping {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        let now = unix_now();
        if now >= next_flush && !stopping {
            next_flush = (now / FLUSH_SECONDS + 1) * FLUSH_SECONDS;
            self_telemetry(
                &mut engine,
                &cfg.parser,
                &counts,
                &listener_stats,
                &mut last_counts,
                now,
            );
            let flush = engine.flush(now);
            let summary = summary(now, &counts, &listener_stats, &engine.stats(), &flush);
            heartbeat.beat();
            if flush_tx.send((flush, summary)).is_err() {
                return Err("the sender thread stopped".into());
            }
        }
        if stopping {
            break;
        }
    }

    // Shutdown: stop receiving, drain what was received, flush open buckets, deliver.
    eprintln!(
        "dogpipe: stopping: flushing everything and delivering for up to {}s",
        grace.as_secs()
    );
    if let Some(l) = listeners {
        l.stop();
    }
    while let Ok(packet) = packets_rx.try_recv() {
        ingest(&packet, &cfg.parser, &mut engine, &mut counts, &mut line);
    }
    let now = unix_now();
    let flush = engine.flush_all(now);
    let summary = summary(now, &counts, &listener_stats, &engine.stats(), &flush);
    let _ = flush_tx.send((flush, summary));
    drop(flush_tx);
    let delivered = sender.join().unwrap_or(false);
    health_stop.store(true, Ordering::Release);
    if let Some(h) = health {
        let _ = h.join();
    }
    if delivered {
        eprintln!("dogpipe: stopped");
        Ok(())
    } else {
        Err("stopped with payloads still undelivered after the grace period (they were spooled if DD_FORWARDER_SPOOL_DIR is set, else dropped and counted)".into())
    }
}

/// Parses a packet and feeds the engine. With origin detection, the sender's container id
/// becomes a `container_id:` tag (the message is rewritten with a last `#` field, which wins).
fn ingest(
    packet: &Packet,
    parser: &ParserConfig,
    engine: &mut ShardedAggregator,
    counts: &mut ParseCounts,
    line: &mut Vec<u8>,
) {
    let now = unix_now();
    for raw in dogpipe::lines(&packet.data) {
        let message = match parse_message(raw, parser) {
            Ok(m) => m,
            Err(e) => {
                counts.bad[kind_index(e.message_kind())] += 1;
                continue;
            }
        };
        counts.ok[kind_index(message.kind())] += 1;
        let origin_id = match &message {
            Message::Metric(m) => packet
                .container_id
                .as_deref()
                .map(str::as_bytes)
                .or_else(|| m.origin().container_id()),
            _ => packet.container_id.as_deref().map(str::as_bytes),
        };
        let Some(id) = origin_id else {
            engine.insert(&message, now);
            continue;
        };
        let tags = match &message {
            Message::Metric(m) => m.tags().as_bytes(),
            Message::Event(e) => e.tags().as_bytes(),
            Message::ServiceCheck(sc) => sc.tags().as_bytes(),
        };
        line.clear();
        line.extend_from_slice(raw);
        line.extend_from_slice(b"|#");
        if !tags.is_empty() {
            line.extend_from_slice(tags);
            line.push(b',');
        }
        line.extend_from_slice(b"container_id:");
        line.extend_from_slice(id);
        match parse_message(line, parser) {
            Ok(tagged) => engine.insert(&tagged, now),
            // The tag pushed the message over a limit: keep it without the origin tag.
            Err(_) => engine.insert(&message, now),
        }
    }
}

fn snapshot(s: &ListenerStats) -> [u64; 7] {
    let r = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    [
        r(&s.packets),
        r(&s.bytes),
        r(&s.truncated),
        r(&s.kernel_drops),
        r(&s.oversized_frames),
        r(&s.read_errors),
        r(&s.origin_errors),
    ]
}

/// Feeds dogpipe's own counters through the pipeline as `dogpipe.*` metrics: deltas since the
/// last flush as counters, levels as gauges.
fn self_telemetry(
    engine: &mut ShardedAggregator,
    parser: &ParserConfig,
    counts: &ParseCounts,
    listeners: &ListenerStats,
    last: &mut (ParseCounts, [u64; 7]),
    now: i64,
) {
    let listener_now = snapshot(listeners);
    let mut lines = String::new();
    let names = [
        "packets",
        "bytes",
        "truncated_datagrams",
        "kernel_drops",
        "oversized_frames",
        "read_errors",
        "origin_errors",
    ];
    for ((name, new), old) in names.iter().zip(listener_now).zip(last.1) {
        let _ = writeln!(
            lines,
            "dogpipe.listener.{name}:{}|c",
            new.saturating_sub(old)
        );
    }
    for (i, kind) in ["metric", "event", "service_check"].iter().enumerate() {
        let ok = counts.ok[i].saturating_sub(last.0.ok[i]);
        let bad = counts.bad[i].saturating_sub(last.0.bad[i]);
        let _ = writeln!(lines, "dogpipe.messages:{ok}|c|#kind:{kind},state:ok");
        let _ = writeln!(lines, "dogpipe.messages:{bad}|c|#kind:{kind},state:error");
    }
    let stats = engine.stats();
    let _ = writeln!(
        lines,
        "dogpipe.aggregator.contexts:{}|g",
        stats.live_contexts
    );
    let _ = writeln!(lines, "dogpipe.aggregator.dropped:{}|g", stats.dropped());
    let _ = writeln!(
        lines,
        "dogpipe.aggregator.context_limit_drops:{}|g",
        stats.context_limit
    );
    *last = (*counts, listener_now);
    for line in dogpipe::lines(lines.as_bytes()) {
        if let Ok(m) = parse_message(line, parser) {
            engine.insert(&m, now);
        }
    }
}

fn summary(now: i64, c: &ParseCounts, l: &ListenerStats, a: &AggregateStats, f: &Flush) -> String {
    let l = snapshot(l);
    format!(
        "flush t={now} packets={} bytes={} truncated={} kernel_drops={} metrics ok={} bad={} events ok={} bad={} service_checks ok={} bad={} contexts={} context_limit_drops={} dropped_samples={} series={} sketches={} events={} service_checks={}",
        l[0],
        l[1],
        l[2],
        l[3],
        c.ok[0],
        c.bad[0],
        c.ok[1],
        c.bad[1],
        c.ok[2],
        c.bad[2],
        a.live_contexts,
        a.context_limit,
        a.dropped(),
        f.series.len(),
        f.sketches.len(),
        f.events.len(),
        f.service_checks.len()
    )
}

fn sender_loop(
    mut sink: Box<dyn Sink + Send>,
    mut serializer: Serializer,
    flushes: &crossbeam_channel::Receiver<(Flush, String)>,
    grace: Duration,
) -> bool {
    loop {
        match flushes.recv_timeout(Duration::from_secs(1)) {
            Ok((flush, summary)) => {
                let sent = write_flush(&mut serializer, &flush, &mut *sink);
                let s: ForwardStats = sink.stats();
                let st = serializer.stats();
                let sent = match sent {
                    Ok(n) => n.to_string(),
                    Err(e) => format!("error ({e})"),
                };
                eprintln!(
                    "dogpipe: {summary} payloads={sent} delivered={} retries={} rejected={} dropped={} too_big={}",
                    s.delivered,
                    s.retries,
                    s.rejected,
                    s.dropped_queue_full + s.dropped_spool_error + s.dropped_on_close,
                    st.series_too_big
                        + st.sketches_too_big
                        + st.events_too_big
                        + st.service_checks_too_big
                );
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => sink.poll(),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return sink.finish(grace),
        }
    }
}
