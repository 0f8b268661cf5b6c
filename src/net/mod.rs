//! Receiving DogStatsD packets: UDP, Unix datagram and Unix stream listeners.
//!
//! Each listener runs on its own thread and hands whole packets ([`Packet`]) to a bounded
//! channel. Sends **block** when the channel is full: back-pressure reaches the kernel socket
//! buffer, and datagrams the kernel then drops are counted (the socket's `drops` in `/proc/net/udp`) rather than lost
//! silently. A datagram longer than the read buffer is detected (`MSG_TRUNC`), counted, and
//! dropped whole instead of being parsed as if complete.

mod origin;
mod poll;
mod udp;
mod uds;

pub(crate) use poll::{DatagramReader, DatagramSockets};
use poll::{Source, Waker};
use udp::UdpSource;

use bytes::{Bytes, BytesMut};
use crossbeam_channel::Sender;
use nix::sys::socket::{setsockopt, sockopt};
use std::fmt;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Messages as received, with their origin when known: a stream frame, or the datagrams one
/// read of a socket found waiting (from one sender), joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The bytes (one or more `\n`-separated messages).
    pub data: Bytes,
    /// The sender's container id, from Unix socket credentials (origin detection).
    pub container_id: Option<Arc<str>>,
}

/// Settings of the listeners (the Agent's `dogstatsd_*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    udp_port: Option<u16>,
    non_local_traffic: bool,
    buffer_size: usize,
    so_rcvbuf: usize,
    udp_sockets: usize,
    socket: Option<PathBuf>,
    stream_socket: Option<PathBuf>,
    origin_detection: bool,
    proc_root: PathBuf,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            udp_port: Some(8125),
            non_local_traffic: false,
            buffer_size: 8192,
            so_rcvbuf: 0,
            udp_sockets: 1,
            socket: None,
            stream_socket: None,
            origin_detection: false,
            proc_root: PathBuf::from("/proc"),
        }
    }
}

impl ListenerConfig {
    /// UDP port (`DD_DOGSTATSD_PORT`); `None` disables UDP. Port 0 picks a free port (see
    /// [`Listeners::udp_addr`]). Defaults to 8125.
    pub fn with_udp_port(mut self, port: Option<u16>) -> Self {
        self.udp_port = port;
        self
    }

    /// Listen on all interfaces instead of 127.0.0.1 (`DD_DOGSTATSD_NON_LOCAL_TRAFFIC`).
    /// Defaults to `false`.
    pub fn with_non_local_traffic(mut self, on: bool) -> Self {
        self.non_local_traffic = on;
        self
    }

    /// Read buffer per datagram or frame, the largest packet accepted
    /// (`DD_DOGSTATSD_BUFFER_SIZE`). Defaults to 8192.
    pub fn with_buffer_size(mut self, bytes: usize) -> Self {
        self.buffer_size = bytes.clamp(64, 1 << 24);
        self
    }

    /// `SO_RCVBUF` of the datagram sockets; 0 keeps the OS default (`DD_DOGSTATSD_SO_RCVBUF`).
    /// Defaults to 0.
    pub fn with_so_rcvbuf(mut self, bytes: usize) -> Self {
        self.so_rcvbuf = bytes;
        self
    }

    /// Number of UDP sockets bound to the port with `SO_REUSEPORT`, each read by its own thread.
    /// Defaults to 1.
    pub fn with_udp_sockets(mut self, n: usize) -> Self {
        self.udp_sockets = n.clamp(1, 64);
        self
    }

    /// Unix datagram socket path (`DD_DOGSTATSD_SOCKET`). Defaults to none.
    pub fn with_socket(mut self, path: Option<PathBuf>) -> Self {
        self.socket = path;
        self
    }

    /// Unix stream socket path (`DD_DOGSTATSD_STREAM_SOCKET`). Defaults to none.
    pub fn with_stream_socket(mut self, path: Option<PathBuf>) -> Self {
        self.stream_socket = path;
        self
    }

    /// Read the sender's PID from Unix socket credentials and map it to a container id
    /// (`DD_DOGSTATSD_ORIGIN_DETECTION`). Defaults to `false`.
    pub fn with_origin_detection(mut self, on: bool) -> Self {
        self.origin_detection = on;
        self
    }

    /// Where `/proc` is mounted (the DaemonSet mounts the host's at `/host/proc`).
    /// Defaults to `/proc`.
    pub fn with_proc_root(mut self, path: PathBuf) -> Self {
        self.proc_root = path;
        self
    }

    /// The read buffer size.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// The `SO_RCVBUF` asked for (0: the OS default).
    pub fn so_rcvbuf(&self) -> usize {
        self.so_rcvbuf
    }

    fn udp_port(&self) -> Option<u16> {
        self.udp_port
    }
}

/// Counters of the listeners, shared with the embedding program. All are totals since start.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Packets (datagrams or frames) received and forwarded.
    pub packets: AtomicU64,
    /// Bytes of those packets.
    pub bytes: AtomicU64,
    /// Datagrams longer than the read buffer, dropped whole.
    pub truncated: AtomicU64,
    /// UDP datagrams the kernel dropped because the socket buffer was full (from the socket's
    /// `drops` in `/proc/net/udp`, read about once a second).
    pub kernel_drops: AtomicU64,
    /// Stream frames announcing more than the read buffer; their connection was closed.
    pub oversized_frames: AtomicU64,
    /// Socket read errors (other than timeouts).
    pub read_errors: AtomicU64,
    /// Unix packets whose sender could not be mapped to a container.
    pub origin_errors: AtomicU64,
}

impl ListenerStats {
    fn add(counter: &AtomicU64, n: u64) {
        // Relaxed: independent monotonic counters, read only for reporting.
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why the listeners could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListenError {
    /// A socket could not be created, configured or bound.
    Bind {
        /// What was being bound (an address or a path).
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file that is not a socket exists at a socket path; dogpipe does not remove it.
    NotASocket(PathBuf),
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::Bind { what, source } => write!(f, "cannot listen on {what}: {source}"),
            ListenError::NotASocket(path) => write!(
                f,
                "{} exists and is not a socket; remove it or choose another path",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ListenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ListenError::Bind { source, .. } => Some(source),
            ListenError::NotASocket(_) => None,
        }
    }
}

fn bind_error(what: impl fmt::Display, source: impl Into<std::io::Error>) -> ListenError {
    ListenError::Bind {
        what: what.to_string(),
        source: source.into(),
    }
}

/// How often a blocked read wakes up to check for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// Packets are copied out of the read buffers into arenas of this size, so that a packet costs
/// one small copy and no allocation of its own.
const ARENA_BYTES: usize = 1 << 20;

/// Copies received bytes into a shared arena and hands out `Bytes` views of it.
struct Arena {
    buf: BytesMut,
}

impl Arena {
    fn new() -> Arena {
        Arena {
            buf: BytesMut::with_capacity(ARENA_BYTES),
        }
    }

    fn copy(&mut self, data: &[u8]) -> Bytes {
        if self.buf.capacity() - self.buf.len() < data.len() {
            self.buf = BytesMut::with_capacity(ARENA_BYTES.max(data.len()));
        }
        self.buf.extend_from_slice(data);
        self.buf.split().freeze()
    }
}

/// Datagrams read in one drain of a socket, joined with `\n` into one packet (a packet is one
/// or more `\n`-separated messages, so this changes nothing for the parser): the reader hands
/// the ingest thread one packet per drain instead of one per datagram, and the ingest thread
/// wakes once per drain.
struct Gather {
    buf: BytesMut,
    container_id: Option<Arc<str>>,
    pending: bool,
}

/// The most bytes one gathered packet holds (the packet queue holds at most
/// `DOGPIPE_QUEUE_PACKETS` of them: 16 MiB with the default 1024).
const GATHER_BYTES: usize = 16 * 1024;

impl Gather {
    fn new() -> Gather {
        Gather {
            buf: BytesMut::with_capacity(ARENA_BYTES),
            container_id: None,
            pending: false,
        }
    }

    /// Adds one datagram; sends what was gathered first when it is from another sender or the
    /// packet is full. Returns `false` when the receiving side is gone.
    fn push(&mut self, data: &[u8], container_id: Option<Arc<str>>, out: &Sender<Packet>) -> bool {
        if self.pending
            && (self.container_id != container_id || self.buf.len() + 1 + data.len() > GATHER_BYTES)
            && !self.send(out)
        {
            return false;
        }
        if self.buf.capacity() - self.buf.len() < data.len() + 1 {
            // A new arena: what is gathered in the old one goes first.
            if !self.send(out) {
                return false;
            }
            self.buf = BytesMut::with_capacity(ARENA_BYTES.max(data.len() + 1));
        }
        if self.pending {
            self.buf.extend_from_slice(b"\n");
        }
        self.buf.extend_from_slice(data);
        self.container_id = container_id;
        self.pending = true;
        true
    }

    /// Sends what was gathered. Returns `false` when the receiving side is gone.
    fn send(&mut self, out: &Sender<Packet>) -> bool {
        if !self.pending {
            return true;
        }
        self.pending = false;
        let packet = Packet {
            data: self.buf.split().freeze(),
            container_id: self.container_id.take(),
        };
        out.send(packet).is_ok()
    }
}

/// Running listeners; dropping the handle does not stop them, [`stop`](Self::stop) does.
#[derive(Debug)]
pub struct Listeners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    udp_addr: Option<SocketAddr>,
    stats: Arc<ListenerStats>,
    receive_buffer: Option<usize>,
}

impl Listeners {
    /// Binds every configured socket and starts one thread per socket (plus one per stream
    /// connection). Packets go to `out`; a full channel blocks the reader.
    ///
    /// # Errors
    /// [`ListenError`] when a socket cannot be bound or a socket path holds another kind of file.
    pub fn start(config: &ListenerConfig, out: Sender<Packet>) -> Result<Listeners, ListenError> {
        let (mut listeners, sources) = Listeners::bind(config)?;
        let started = || -> Result<(), ListenError> {
            for source in sources {
                let sockets = DatagramSockets::new(
                    vec![source],
                    Arc::clone(&listeners.stats),
                    config.buffer_size,
                )?;
                let (out, stop) = (out.clone(), Arc::clone(&listeners.stop));
                let handle = std::thread::Builder::new()
                    .name("dogpipe-dgram".into())
                    .spawn(move || reader_loop(sockets.into_reader(), &out, &stop))
                    .map_err(|e| bind_error("a datagram reader thread", e))?;
                listeners.threads.push(handle);
            }
            listeners.start_stream(config, out, None)
        };
        match started() {
            Ok(()) => Ok(listeners),
            Err(e) => {
                // Threads already started stop with the handle rather than run on unowned.
                listeners.stop();
                Err(e)
            }
        }
    }

    /// Binds every configured socket; the datagram sockets are returned for one thread to
    /// read ([`DatagramSockets::into_reader`]), and only the stream socket gets threads, whose
    /// packets go to `out` (waking the reader).
    pub(crate) fn start_polled(
        config: &ListenerConfig,
        out: Sender<Packet>,
    ) -> Result<(Listeners, DatagramSockets), ListenError> {
        let (mut listeners, sources) = Listeners::bind(config)?;
        let sockets =
            DatagramSockets::new(sources, Arc::clone(&listeners.stats), config.buffer_size)?;
        listeners.start_stream(config, out, Some(sockets.waker()))?;
        Ok((listeners, sockets))
    }

    /// Binds the datagram sockets (returned); no thread is started yet.
    fn bind(config: &ListenerConfig) -> Result<(Listeners, Vec<Source>), ListenError> {
        let mut sources: Vec<Source> = Vec::new();
        let mut udp_addr = None;
        if let Some(port) = config.udp_port() {
            let sockets = udp::bind(config, port)?;
            udp_addr = sockets.first().and_then(|s| s.local_addr().ok());
            sources.extend(sockets.into_iter().map(|s| Source::Udp(UdpSource::new(s))));
        }
        if let Some(path) = &config.socket {
            sources.push(Source::Unix(uds::bind_datagram(path, config)?));
        }
        let receive_buffer = if config.so_rcvbuf > 0 {
            sources
                .first()
                .and_then(|s| nix::sys::socket::getsockopt(&s.fd(), sockopt::RcvBuf).ok())
        } else {
            None
        };
        let listeners = Listeners {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            udp_addr,
            stats: Arc::new(ListenerStats::default()),
            receive_buffer,
        };
        Ok((listeners, sources))
    }

    /// Binds the stream socket, if one is configured, and starts its accept thread.
    fn start_stream(
        &mut self,
        config: &ListenerConfig,
        out: Sender<Packet>,
        waker: Option<Waker>,
    ) -> Result<(), ListenError> {
        if let Some(path) = &config.stream_socket {
            self.threads.push(uds::spawn_stream(
                path,
                config,
                out,
                waker,
                Arc::clone(&self.stop),
                Arc::clone(&self.stats),
            )?);
        }
        Ok(())
    }

    /// The bound UDP address (useful with port 0).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// The receive buffer the kernel gave the datagram sockets, in bytes (`SO_RCVBUF` as read
    /// back: the kernel counts its own overhead in it and reports twice what was set); `None`
    /// when no size was asked for or no datagram socket is open.
    pub fn receive_buffer(&self) -> Option<usize> {
        self.receive_buffer
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<ListenerStats> {
        &self.stats
    }

    /// Stops receiving and waits for the reader threads (each notices within 100 ms).
    pub fn stop(self) {
        // Release pairs with the Acquire loads in the reader loops.
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// A reader thread of [`Listeners::start`]: what one wait reads goes out as one packet.
fn reader_loop(mut reader: DatagramReader, out: &Sender<Packet>, stop: &AtomicBool) {
    let mut gather = Gather::new();
    let mut open = true;
    while open && !stopped(stop) {
        reader.wait(POLL, &mut |data, container_id| {
            open = open && gather.push(data, container_id.cloned(), out);
        });
        open = open && gather.send(out);
    }
    if open {
        reader.drain(&mut |data, container_id| {
            open = open && gather.push(data, container_id.cloned(), out);
        });
        gather.send(out);
    }
}

/// Sets a datagram socket's receive buffer to `bytes`: forced past `net.core.rmem_max` when the
/// process may (`SO_RCVBUFFORCE`, which needs `CAP_NET_ADMIN`), else as the Agent does
/// (`SO_RCVBUF`, which the kernel caps at `net.core.rmem_max` without a word). Returns whether
/// the size was forced.
fn set_receive_buffer(fd: &impl AsFd, bytes: usize) -> nix::Result<bool> {
    match setsockopt(fd, sockopt::RcvBufForce, &bytes) {
        Ok(()) => Ok(true),
        Err(_) => setsockopt(fd, sockopt::RcvBuf, &bytes).map(|()| false),
    }
}

fn stopped(stop: &AtomicBool) -> bool {
    stop.load(Ordering::Acquire)
}

/// Removes a stale socket file at `path`; refuses any other kind of file.
fn prepare_socket_path(path: &Path) -> Result<(), ListenError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| bind_error(path.display(), e))
        }
        Ok(_) => Err(ListenError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(bind_error(path.display(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receive_buffer_past_rmem_max_is_forced_when_allowed_and_capped_otherwise() {
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(212_992);
        let asked = rmem_max * 2;
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let forced = set_receive_buffer(&socket, asked).unwrap();
        let got: usize = nix::sys::socket::getsockopt(&socket, sockopt::RcvBuf).unwrap();
        // The kernel reports twice what it set.
        let expected = if forced { asked } else { rmem_max };
        assert_eq!(got, 2 * expected, "forced: {forced}");
        // Through the listeners, reported back for the start-up warning.
        let config = ListenerConfig::default()
            .with_udp_port(Some(0))
            .with_so_rcvbuf(asked);
        let listeners = Listeners::start(&config, crossbeam_channel::bounded(1).0).unwrap();
        assert_eq!(listeners.receive_buffer(), Some(2 * expected));
        listeners.stop();
        let default = Listeners::start(
            &ListenerConfig::default().with_udp_port(Some(0)),
            crossbeam_channel::bounded(1).0,
        )
        .unwrap();
        assert_eq!(default.receive_buffer(), None, "none asked");
        default.stop();
    }

    #[test]
    fn gathered_datagrams_join_per_sender_and_within_the_size_cap() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut g = Gather::new();
        let a: Option<Arc<str>> = Some(Arc::from("ctr-a"));
        assert!(g.push(b"x:1|c", a.clone(), &tx));
        assert!(g.push(b"y:2|g\nz:3|c", a.clone(), &tx));
        // Another sender: what was gathered goes first, on its own.
        assert!(g.push(b"w:4|c", None, &tx));
        assert!(g.send(&tx));
        assert!(g.send(&tx), "nothing pending: nothing sent");
        let got: Vec<Packet> = rx.try_iter().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].data, &b"x:1|c\ny:2|g\nz:3|c"[..]);
        assert_eq!(got[0].container_id, a);
        assert_eq!(
            (got[1].data.as_ref(), got[1].container_id.clone()),
            (&b"w:4|c"[..], None)
        );
        // The size cap splits.
        let big = vec![b'a'; GATHER_BYTES / 2 - 1];
        for _ in 0..3 {
            assert!(g.push(&big, None, &tx));
        }
        assert!(g.send(&tx));
        let sizes: Vec<usize> = rx.try_iter().map(|p| p.data.len()).collect();
        assert_eq!(sizes, [GATHER_BYTES - 1, GATHER_BYTES / 2 - 1]);
        drop(rx);
        // Past the end of the arena, nothing gathered is lost.
        let (tx2, rx2) = crossbeam_channel::unbounded();
        let mut total = 0;
        for i in 0..(2 * ARENA_BYTES / 1000) {
            let d = vec![b'0' + (i % 10) as u8; 999];
            assert!(g.push(&d, None, &tx2));
            total += 999;
        }
        assert!(g.send(&tx2));
        let lines: usize = rx2
            .try_iter()
            .map(|p| {
                p.data
                    .split(|&b| b == b'\n')
                    .map(<[u8]>::len)
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(lines, total);
        assert!(g.push(b"q", None, &tx));
        assert!(!g.send(&tx), "a closed channel is reported");
    }
}
