//! The UDP listener: `recvmmsg` batches, truncation and kernel-drop detection.

use super::{Arena, ListenError, ListenerConfig, ListenerStats, POLL, Packet, bind_error, stopped};
use crossbeam_channel::Sender;
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, MultiHeaders, SockFlag, SockType, SockaddrIn,
    recvmmsg, setsockopt, socket, sockopt,
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
        // Best effort: kernels without SO_RXQ_OVFL still receive, without the drop counter.
        let _ = setsockopt(&fd, sockopt::RxqOvfl, &1);
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
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, Some(nix::cmsg_space!(u32)));
    let mut arena = Arena::new();
    // SO_RXQ_OVFL reports the total drops since the socket was created.
    let mut last_drops: u32 = 0;
    let mut received: Vec<(usize, bool)> = Vec::with_capacity(BATCH);
    while !stopped(stop) {
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
                if let Ok(cmsgs) = msg.cmsgs() {
                    for cmsg in cmsgs {
                        if let ControlMessageOwned::RxqOvfl(total) = cmsg {
                            let new = total.wrapping_sub(last_drops);
                            ListenerStats::add(&stats.kernel_drops, u64::from(new));
                            last_drops = total;
                        }
                    }
                }
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
            let packet = Packet {
                data: arena.copy(data),
                container_id: None,
            };
            if out.send(packet).is_err() {
                return;
            }
        }
    }
}
