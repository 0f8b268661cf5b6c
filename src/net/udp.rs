//! The UDP listener: `recvmmsg` batches, truncation and kernel-drop detection.

use super::{
    Gather, ListenError, ListenerConfig, ListenerStats, POLL, Packet, bind_error, stopped,
};
use crossbeam_channel::Sender;
use nix::sys::socket::{
    AddressFamily, MsgFlags, MultiHeaders, SockFlag, SockType, SockaddrIn, recvmmsg, setsockopt,
    socket, sockopt,
};
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

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
            setsockopt(&fd, sockopt::RcvBuf, &config.so_rcvbuf).map_err(|e| bind_error(addr, e))?;
        }
        nix::sys::socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr))
            .map_err(|e| bind_error(addr, e))?;
        let socket = UdpSocket::from(fd);
        socket
            .set_read_timeout(Some(POLL))
            .map_err(|e| bind_error(addr, e))?;
        if let Ok(std::net::SocketAddr::V4(bound)) = socket.local_addr() {
            // With port 0, the next sockets join the port the first one got.
            addr = bound;
        }
        sockets.push(socket);
    }
    Ok(sockets)
}

pub(super) fn spawn(
    socket: UdpSocket,
    config: &ListenerConfig,
    out: Sender<Packet>,
    stop: Arc<AtomicBool>,
    stats: Arc<ListenerStats>,
) -> Result<JoinHandle<()>, ListenError> {
    let buffer_size = config.buffer_size;
    std::thread::Builder::new()
        .name("dogpipe-udp".into())
        .spawn(move || read_loop(&socket, buffer_size, &out, &stop, &stats))
        .map_err(|e| bind_error("a UDP reader thread", e))
}

fn read_loop(
    socket: &UdpSocket,
    buffer_size: usize,
    out: &Sender<Packet>,
    stop: &AtomicBool,
    stats: &ListenerStats,
) {
    let mut buffers = vec![0u8; buffer_size * BATCH];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let mut drops = DropCounter::new(inode);
    let mut gather = Gather::new();
    let mut received: Vec<(usize, bool)> = Vec::with_capacity(BATCH);
    while !stopped(stop) {
        drops.poll(stats);
        received.clear();
        {
            let mut chunks = buffers.chunks_mut(buffer_size);
            let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
            let results = match recvmmsg(
                socket.as_raw_fd(),
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => results,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    ListenerStats::add(&stats.read_errors, 1);
                    continue;
                }
            };
            for msg in results {
                received.push((msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC)));
            }
        }
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
            if !gather.push(data, None, out) {
                return;
            }
        }
        if !gather.send(out) {
            return;
        }
    }
    drops.checked = None;
    drops.poll(stats);
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
