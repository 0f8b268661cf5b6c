//! Unix socket listeners: datagram (one packet per datagram, sender credentials for origin
//! detection) and stream (4-byte little-endian length framing).

use super::origin::OriginCache;
use super::{
    Arena, Gather, ListenError, ListenerConfig, ListenerStats, POLL, Packet, bind_error,
    prepare_socket_path, stopped,
};
use crossbeam_channel::Sender;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg, setsockopt, sockopt};
use std::io::{ErrorKind, IoSliceMut, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

/// Socket file mode, as the Agent sets it: anyone may write, only the owner may read.
const SOCKET_MODE: u32 = 0o722;

fn set_mode(path: &Path) -> Result<(), ListenError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| bind_error(path.display(), e))
}

pub(super) fn spawn_datagram(
    path: &Path,
    config: &ListenerConfig,
    out: Sender<Packet>,
    stop: Arc<AtomicBool>,
    stats: Arc<ListenerStats>,
) -> Result<JoinHandle<()>, ListenError> {
    prepare_socket_path(path)?;
    let socket = UnixDatagram::bind(path).map_err(|e| bind_error(path.display(), e))?;
    set_mode(path)?;
    socket
        .set_read_timeout(Some(POLL))
        .map_err(|e| bind_error(path.display(), e))?;
    if config.so_rcvbuf > 0 {
        setsockopt(&socket, sockopt::RcvBuf, &config.so_rcvbuf)
            .map_err(|e| bind_error(path.display(), e))?;
    }
    let origin = config
        .origin_detection
        .then(|| OriginCache::new(&config.proc_root));
    if origin.is_some() {
        setsockopt(&socket, sockopt::PassCred, &true).map_err(|e| bind_error(path.display(), e))?;
    }
    let buffer_size = config.buffer_size;
    std::thread::Builder::new()
        .name("dogpipe-uds".into())
        .spawn(move || datagram_loop(&socket, buffer_size, origin, &out, &stop, &stats))
        .map_err(|e| bind_error("a Unix socket reader thread", e))
}

fn datagram_loop(
    socket: &UnixDatagram,
    buffer_size: usize,
    mut origin: Option<OriginCache>,
    out: &Sender<Packet>,
    stop: &AtomicBool,
    stats: &ListenerStats,
) {
    let mut buf = vec![0u8; buffer_size];
    let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let mut gather = Gather::new();
    // After a datagram, read on without blocking until the socket is empty: what was waiting
    // goes to the ingest thread as one packet.
    let mut draining = false;
    while !stopped(stop) {
        let flags = if draining {
            MsgFlags::MSG_DONTWAIT
        } else {
            MsgFlags::empty()
        };
        let (len, truncated, pid) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg =
                match recvmsg::<UnixAddr>(socket.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) {
                    Ok(msg) => msg,
                    Err(nix::errno::Errno::EAGAIN) if draining => {
                        draining = false;
                        if !gather.send(out) {
                            return;
                        }
                        continue;
                    }
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
                    Err(_) => {
                        ListenerStats::add(&stats.read_errors, 1);
                        continue;
                    }
                };
            let pid = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|m| match m {
                    ControlMessageOwned::ScmCredentials(creds) => Some(creds.pid()),
                    _ => None,
                })
            });
            (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC), pid)
        };
        draining = true;
        if truncated {
            ListenerStats::add(&stats.truncated, 1);
            continue;
        }
        let Some(data) = buf.get(..len) else { continue };
        if data.is_empty() {
            continue;
        }
        let container_id = match (&mut origin, pid) {
            (Some(cache), Some(pid)) => {
                let id = cache.container_id(pid);
                if id.is_none() {
                    ListenerStats::add(&stats.origin_errors, 1);
                }
                id
            }
            (Some(_), None) => {
                ListenerStats::add(&stats.origin_errors, 1);
                None
            }
            (None, _) => None,
        };
        ListenerStats::add(&stats.packets, 1);
        ListenerStats::add(&stats.bytes, len as u64);
        if !gather.push(data, container_id, out) {
            return;
        }
    }
    gather.send(out);
}

pub(super) fn spawn_stream(
    path: &Path,
    config: &ListenerConfig,
    out: Sender<Packet>,
    stop: Arc<AtomicBool>,
    stats: Arc<ListenerStats>,
) -> Result<JoinHandle<()>, ListenError> {
    prepare_socket_path(path)?;
    let listener = UnixListener::bind(path).map_err(|e| bind_error(path.display(), e))?;
    set_mode(path)?;
    listener
        .set_nonblocking(true)
        .map_err(|e| bind_error(path.display(), e))?;
    let config = config.clone();
    std::thread::Builder::new()
        .name("dogpipe-uds-stream".into())
        .spawn(move || {
            let mut connections: Vec<JoinHandle<()>> = Vec::new();
            while !stopped(&stop) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (out, stop2, stats2) = (out.clone(), stop.clone(), stats.clone());
                        let config = config.clone();
                        let spawned = std::thread::Builder::new()
                            .name("dogpipe-uds-conn".into())
                            .spawn(move || connection_loop(conn, &config, &out, &stop2, &stats2));
                        match spawned {
                            Ok(handle) => connections.push(handle),
                            Err(_) => ListenerStats::add(&stats.read_errors, 1),
                        }
                        connections.retain(|h| !h.is_finished());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL / 2),
                    Err(_) => ListenerStats::add(&stats.read_errors, 1),
                }
            }
            for handle in connections {
                let _ = handle.join();
            }
        })
        .map_err(|e| bind_error("a Unix stream accept thread", e))
}

/// Reads length-prefixed frames until EOF, an error, an oversized frame, or shutdown.
fn connection_loop(
    mut conn: UnixStream,
    config: &ListenerConfig,
    out: &Sender<Packet>,
    stop: &AtomicBool,
    stats: &ListenerStats,
) {
    if conn.set_nonblocking(false).is_err() || conn.set_read_timeout(Some(POLL)).is_err() {
        ListenerStats::add(&stats.read_errors, 1);
        return;
    }
    let container_id = if config.origin_detection {
        let pid = nix::sys::socket::getsockopt(&conn, sockopt::PeerCredentials)
            .ok()
            .map(|c| c.pid());
        let id = pid.and_then(|pid| OriginCache::new(&config.proc_root).container_id(pid));
        if id.is_none() {
            ListenerStats::add(&stats.origin_errors, 1);
        }
        id
    } else {
        None
    };
    let max = config.buffer_size;
    let mut buf: Vec<u8> = Vec::with_capacity(max + 4);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut arena = Arena::new();
    while !stopped(stop) {
        let n = match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => {
                ListenerStats::add(&stats.read_errors, 1);
                return;
            }
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut consumed = 0;
        while let Some(prefix) = buf.get(consumed..consumed + 4) {
            let mut len_bytes = [0u8; 4];
            len_bytes.copy_from_slice(prefix);
            let len = u32::from_le_bytes(len_bytes) as usize;
            if len > max {
                ListenerStats::add(&stats.oversized_frames, 1);
                return;
            }
            let Some(frame) = buf.get(consumed + 4..consumed + 4 + len) else {
                break;
            };
            consumed += 4 + len;
            if frame.is_empty() {
                continue;
            }
            ListenerStats::add(&stats.packets, 1);
            ListenerStats::add(&stats.bytes, len as u64);
            let packet = Packet {
                data: arena.copy(frame),
                container_id: container_id.clone(),
            };
            if out.send(packet).is_err() {
                return;
            }
        }
        buf.drain(..consumed);
    }
}
