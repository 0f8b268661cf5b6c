//! The UDP listener: `recvmmsg` batches, truncation and kernel-drop detection.

use super::poll::OnDatagram;
use super::{ListenError, ListenerConfig, ListenerStats, bind_error, set_receive_buffer};
use nix::sys::socket::{
    AddressFamily, MsgFlags, MultiHeaders, SockFlag, SockType, SockaddrIn, recvmmsg, setsockopt,
    socket, sockopt,
};
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Datagrams read per `recvmmsg` call.
const BATCH: usize = 32;

/// Binds `config.udp_sockets` sockets on the port (with `SO_REUSEPORT` when more than one).
pub(super) fn bind(config: &ListenerConfig, port: u16) -> Result<Vec<UdpSocket>, ListenError> {
    let ip = if config.non_local_traffic {
        Ipv4Addr::UNSPECIFIED
    } else {
        Ipv4Addr::LOCALHOST
    };
    let mut addr = SocketAddrV4::new(ip, port);
    let mut sockets = Vec::new();
    for _ in 0..config.udp_sockets.max(1) {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| bind_error(addr, e))?;
        if config.udp_sockets > 1 {
            setsockopt(&fd, sockopt::ReusePort, &true).map_err(|e| bind_error(addr, e))?;
        }
        if config.so_rcvbuf > 0 {
            set_receive_buffer(&fd, config.so_rcvbuf).map_err(|e| bind_error(addr, e))?;
        }
        nix::sys::socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr))
            .map_err(|e| bind_error(addr, e))?;
        let socket = UdpSocket::from(fd);
        if let Ok(std::net::SocketAddr::V4(bound)) = socket.local_addr() {
            // With port 0, the next sockets join the port the first one got.
            addr = bound;
        }
        sockets.push(socket);
    }
    Ok(sockets)
}

/// A UDP socket, read with `recvmmsg` into a [`UdpScratch`].
pub(crate) struct UdpSource {
    socket: UdpSocket,
    drops: DropCounter,
}

/// The buffers of `recvmmsg`: [`BATCH`] datagrams per call. Shared by a thread's UDP sockets,
/// and made on that thread (the headers hold raw pointers, which cannot move between threads).
pub(super) struct UdpScratch {
    buffer_size: usize,
    buffers: Vec<u8>,
    headers: MultiHeaders<SockaddrIn>,
    received: Vec<(usize, bool)>,
}

impl UdpScratch {
    pub(super) fn new(buffer_size: usize) -> UdpScratch {
        UdpScratch {
            buffer_size,
            buffers: vec![0u8; buffer_size * BATCH],
            headers: MultiHeaders::<SockaddrIn>::preallocate(BATCH, None),
            received: Vec::with_capacity(BATCH),
        }
    }
}

impl UdpSource {
    pub(super) fn new(socket: UdpSocket) -> UdpSource {
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        UdpSource {
            socket,
            drops: DropCounter::new(inode),
        }
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Counts the kernel's drops on this socket (at most once a second).
    pub(super) fn poll_drops(&mut self, stats: &ListenerStats) {
        self.drops.poll(stats);
    }

    /// Counts the kernel's drops now (on shutdown).
    pub(super) fn final_drops(&mut self, stats: &ListenerStats) {
        self.drops.checked = None;
        self.drops.poll(stats);
    }

    /// Reads up to about `budget` datagrams without blocking; truncated ones are counted and
    /// skipped. Returns how many were read.
    pub(super) fn read(
        &mut self,
        scratch: &mut UdpScratch,
        stats: &ListenerStats,
        budget: usize,
        on_datagram: OnDatagram<'_>,
    ) -> usize {
        let UdpScratch {
            buffer_size,
            buffers,
            headers,
            received,
        } = scratch;
        let buffer_size = *buffer_size;
        let mut read = 0;
        while read < budget {
            received.clear();
            {
                let mut chunks = buffers.chunks_mut(buffer_size);
                let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
                    std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
                let results = match recvmmsg(
                    self.socket.as_raw_fd(),
                    headers,
                    iovs.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                ) {
                    Ok(results) => results,
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => {
                        ListenerStats::add(&stats.read_errors, 1);
                        break;
                    }
                };
                for msg in results {
                    received.push((msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC)));
                }
            }
            read += received.len();
            for (i, &(len, truncated)) in received.iter().enumerate() {
                if truncated {
                    ListenerStats::add(&stats.truncated, 1);
                    continue;
                }
                let start = i * buffer_size;
                let Some(data) = buffers.get(start..start + len) else {
                    continue;
                };
                ListenerStats::add(&stats.packets, 1);
                ListenerStats::add(&stats.bytes, len as u64);
                on_datagram(data, None);
            }
            if received.len() < BATCH {
                // The socket is empty (a full batch may mean more is waiting).
                break;
            }
        }
        read
    }
}

/// Datagrams the kernel dropped on this socket (its receive buffer was full), read from the
/// `drops` column of `/proc/net/udp` for the socket's inode at most once a second: it counts
/// drops even when no later datagram arrives, which `SO_RXQ_OVFL` cannot.
struct DropCounter {
    inode: Option<u64>,
    last: u64,
    checked: Option<std::time::Instant>,
}

impl DropCounter {
    fn new(inode: Option<u64>) -> DropCounter {
        DropCounter {
            inode,
            last: 0,
            checked: None,
        }
    }

    fn poll(&mut self, stats: &ListenerStats) {
        let Some(inode) = self.inode else { return };
        let now = std::time::Instant::now();
        if self
            .checked
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1))
        {
            return;
        }
        self.checked = Some(now);
        let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
        if let Some(total) = udp_drops(&table, inode) {
            ListenerStats::add(&stats.kernel_drops, total.saturating_sub(self.last));
            self.last = self.last.max(total);
        }
    }
}

/// The `drops` (last) column of the `/proc/net/udp` line whose `inode` (tenth) column is
/// `inode`.
fn udp_drops(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ino: u64 = fields.get(9)?.parse().ok()?;
        (ino == inode).then(|| fields.last()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::udp_drops;

    #[test]
    fn reads_the_drops_of_one_socket_from_proc_net_udp() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  381: 0100007F:C4DA 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123456 2 0000000000000000 79784
  382: 0100007F:C4DB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 123457 2 0000000000000000 5";
        assert_eq!(udp_drops(table, 123456), Some(79784));
        assert_eq!(udp_drops(table, 123457), Some(5));
        assert_eq!(udp_drops(table, 9), None);
        assert_eq!(udp_drops("garbage", 1), None);
    }
}
