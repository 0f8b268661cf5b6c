//! Reading every datagram socket from one thread: wait until one is readable (`epoll`), then
//! read what each holds without blocking and hand every datagram to a callback straight from
//! the read buffer.
//!
//! The agent's ingest thread reads its sockets this way and parses each datagram where it lies:
//! no reader thread, no copy into a packet, and no wake-up between threads per batch — on a small
//! node those wake-ups cost more CPU than parsing. A reader thread of [`Listeners::start`]
//! (one per socket) uses the same code with a single socket.
//!
//! [`Listeners::start`]: super::Listeners::start

use super::udp::{UdpScratch, UdpSource};
use super::uds::UnixSource;
use super::{ListenerStats, bind_error};
use crate::ListenError;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

/// What a reader does with each datagram: the bytes, and the sender's container id when
/// origin detection found one.
pub(crate) type OnDatagram<'a> = &'a mut dyn FnMut(&[u8], Option<&Arc<str>>);

/// Datagrams read from one socket before the others get their turn (sockets stay readable, so
/// the next wait returns at once for what is left).
const BUDGET: usize = 256;

/// A datagram socket.
pub(super) enum Source {
    Udp(UdpSource),
    Unix(UnixSource),
}

impl Source {
    pub(super) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Source::Udp(s) => s.fd(),
            Source::Unix(s) => s.fd(),
        }
    }
}

/// Lets other threads wake a [`DatagramReader`] out of its wait (a stream connection that has
/// queued a packet).
#[derive(Debug, Clone)]
pub(crate) struct Waker(Arc<EventFd>);

impl Waker {
    /// Wakes the reader. Best effort: the reader also wakes on its own at least every timeout.
    pub(crate) fn wake(&self) {
        let _ = self.0.write(1);
    }
}

/// The token of the waker in the epoll set (sources use their index).
const WAKER: u64 = u64::MAX;

/// Datagram sockets bound for one thread to read: turned into a [`DatagramReader`] on that
/// thread.
pub(crate) struct DatagramSockets {
    epoll: Epoll,
    sources: Vec<Source>,
    waker: Waker,
    stats: Arc<ListenerStats>,
    buffer_size: usize,
}

impl std::fmt::Debug for DatagramSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramSockets")
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl DatagramSockets {
    pub(super) fn new(
        sources: Vec<Source>,
        stats: Arc<ListenerStats>,
        buffer_size: usize,
    ) -> Result<DatagramSockets, ListenError> {
        let what = "the socket poller";
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| bind_error(what, e))?;
        let waker = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| bind_error(what, e))?;
        epoll
            .add(waker.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKER))
            .map_err(|e| bind_error(what, e))?;
        for (i, source) in sources.iter().enumerate() {
            epoll
                .add(source.fd(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                .map_err(|e| bind_error(what, e))?;
        }
        Ok(DatagramSockets {
            epoll,
            sources,
            waker: Waker(Arc::new(waker)),
            stats,
            buffer_size,
        })
    }

    /// A handle that wakes the reader from another thread.
    pub(crate) fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// The reader, made on the thread that reads.
    pub(crate) fn into_reader(self) -> DatagramReader {
        DatagramReader {
            events: vec![EpollEvent::empty(); self.sources.len() + 1],
            udp: UdpScratch::new(self.buffer_size),
            sockets: self,
        }
    }
}

/// Datagram sockets read by one thread. See the module docs.
pub(crate) struct DatagramReader {
    sockets: DatagramSockets,
    events: Vec<EpollEvent>,
    udp: UdpScratch,
}

impl DatagramReader {
    /// Waits up to `timeout` for a socket to become readable (or for a [`Waker`]), then reads up
    /// to a budget of datagrams from each readable socket, calling `on_datagram` with each
    /// datagram and the sender's container id (Unix sockets with origin detection). Returns the
    /// number of datagrams read.
    ///
    /// With a zero `timeout`, reads what is waiting without blocking.
    pub(crate) fn wait(&mut self, timeout: Duration, on_datagram: OnDatagram<'_>) -> usize {
        let DatagramSockets {
            epoll,
            sources,
            waker,
            stats,
            ..
        } = &mut self.sockets;
        for source in sources.iter_mut() {
            if let Source::Udp(udp) = source {
                udp.poll_drops(stats);
            }
        }
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let ready = match epoll.wait(&mut self.events, EpollTimeout::from(millis)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => return 0,
            Err(_) => {
                // Counted, and not retried at once: a wait that keeps failing must not spin.
                ListenerStats::add(&stats.read_errors, 1);
                std::thread::sleep(timeout);
                return 0;
            }
        };
        let mut read = 0;
        for event in self.events.iter().take(ready) {
            let token = event.data();
            if token == WAKER {
                // Reset the counter; what woke us is read by the caller.
                let _ = waker.0.read();
                continue;
            }
            let Some(source) = usize::try_from(token).ok().and_then(|i| sources.get_mut(i)) else {
                continue;
            };
            read += match source {
                Source::Udp(s) => s.read(&mut self.udp, stats, BUDGET, on_datagram),
                Source::Unix(s) => s.read(stats, BUDGET, on_datagram),
            };
        }
        read
    }

    /// Reads everything the sockets hold now, without blocking (on shutdown).
    pub(crate) fn drain(&mut self, on_datagram: OnDatagram<'_>) {
        // Bounded: a sender that never stops must not hold shutdown up.
        for _ in 0..64 {
            if self.wait(Duration::ZERO, on_datagram) == 0 {
                break;
            }
        }
        let DatagramSockets { sources, stats, .. } = &mut self.sockets;
        for source in sources.iter_mut() {
            if let Source::Udp(udp) = source {
                udp.final_drops(stats);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ListenerConfig;
    use std::os::unix::net::UnixDatagram;
    use std::time::Instant;

    fn reader_on(config: &ListenerConfig) -> (crate::Listeners, DatagramReader) {
        let (tx, _rx) = crossbeam_channel::bounded(1);
        let (listeners, sockets) = crate::Listeners::start_polled(config, tx).unwrap();
        (listeners, sockets.into_reader())
    }

    #[test]
    fn one_wait_set_reads_udp_and_unix_datagrams_in_place() {
        let dir = std::env::temp_dir().join(format!("dogpipe-poll-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dsd.sock");
        let config = ListenerConfig::default()
            .with_udp_port(Some(0))
            .with_socket(Some(path.clone()));
        let (listeners, mut reader) = reader_on(&config);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(b"a:1|c", listeners.udp_addr().unwrap())
            .unwrap();
        let unix = UnixDatagram::unbound().unwrap();
        unix.send_to(b"b:2|g\nc:3|c", &path).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 2 && Instant::now() < deadline {
            reader.wait(Duration::from_millis(100), &mut |d, id| {
                assert!(id.is_none(), "no origin detection");
                got.push(d.to_vec());
            });
        }
        got.sort();
        assert_eq!(got, [b"a:1|c".to_vec(), b"b:2|g\nc:3|c".to_vec()]);
        let stats = listeners.stats();
        assert_eq!(stats.packets.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(stats.bytes.load(std::sync::atomic::Ordering::Relaxed), 16);
        listeners.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_wait_reads_at_most_a_budget_per_socket_and_drain_reads_the_rest() {
        let config = ListenerConfig::default()
            .with_udp_port(Some(0))
            .with_so_rcvbuf(4 << 20);
        let (listeners, mut reader) = reader_on(&config);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent = BUDGET * 2 + 7;
        for i in 0..sent {
            udp.send_to(format!("m:{i}|c").as_bytes(), listeners.udp_addr().unwrap())
                .unwrap();
        }
        // Loopback delivers synchronously: everything is queued before the first wait.
        let mut first = 0;
        reader.wait(Duration::from_secs(5), &mut |_, _| first += 1);
        assert!(
            (BUDGET..BUDGET + 32).contains(&first),
            "one turn reads about a budget, read {first}"
        );
        let mut rest = Vec::new();
        reader.drain(&mut |d, _| rest.push(String::from_utf8(d.to_vec()).unwrap()));
        assert_eq!(first + rest.len(), sent, "drain reads what is left");
        assert_eq!(rest.last().unwrap(), &format!("m:{}|c", sent - 1));
        listeners.stop();
    }

    #[test]
    fn a_waker_ends_a_wait_early() {
        let (listeners, mut reader) = reader_on(&ListenerConfig::default().with_udp_port(None));
        let waker = reader.sockets.waker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.wake();
        });
        let start = Instant::now();
        let read = reader.wait(Duration::from_secs(30), &mut |_, _| {});
        assert_eq!(read, 0);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "woken long before the 30 s timeout"
        );
        t.join().unwrap();
        listeners.stop();
    }
}
