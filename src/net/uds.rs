//! Unix socket listeners: datagram (one packet per datagram, sender credentials for origin
//! detection) and stream (4-byte little-endian length framing).

use super::origin::OriginCache;
use super::poll::{OnDatagram, Waker};
use super::{
    Arena, ListenError, ListenerConfig, ListenerStats, POLL, Packet, bind_error,
    prepare_socket_path, set_receive_buffer, stopped,
};
use crossbeam_channel::Sender;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg, setsockopt, sockopt};
use std::io::{ErrorKind, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
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

/// Binds the Unix datagram socket at `path` (replacing a stale socket file).
pub(super) fn bind_datagram(
    path: &Path,
    config: &ListenerConfig,
) -> Result<UnixSource, ListenError> {
    prepare_socket_path(path)?;
    let socket = UnixDatagram::bind(path).map_err(|e| bind_error(path.display(), e))?;
    set_mode(path)?;
    if config.so_rcvbuf > 0 {
        set_receive_buffer(&socket, config.so_rcvbuf).map_err(|e| bind_error(path.display(), e))?;
    }
    let origin = config
        .origin_detection
        .then(|| OriginCache::new(&config.proc_root));
    if origin.is_some() {
        setsockopt(&socket, sockopt::PassCred, &true).map_err(|e| bind_error(path.display(), e))?;
    }
    Ok(UnixSource {
        socket,
        buf: vec![0u8; config.buffer_size],
        cmsg: nix::cmsg_space!(nix::sys::socket::UnixCredentials),
        origin,
    })
}

/// A Unix datagram socket, with the senders' credentials when origin detection is on.
pub(crate) struct UnixSource {
    socket: UnixDatagram,
    buf: Vec<u8>,
    /// Room for the sender's credentials.
    cmsg: Vec<u8>,
    origin: Option<OriginCache>,
}

impl UnixSource {
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Reads up to `budget` datagrams without blocking; truncated ones are counted and
    /// skipped. Returns how many were read.
    pub(super) fn read(
        &mut self,
        stats: &ListenerStats,
        budget: usize,
        on_datagram: OnDatagram<'_>,
    ) -> usize {
        let mut read = 0;
        while read < budget {
            let (len, truncated, pid) = {
                let mut iov = [IoSliceMut::new(&mut self.buf)];
                let cmsg = self.origin.is_some().then_some(self.cmsg.as_mut_slice());
                let msg = match recvmsg::<UnixAddr>(
                    self.socket.as_raw_fd(),
                    &mut iov,
                    cmsg,
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(msg) => msg,
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => {
                        ListenerStats::add(&stats.read_errors, 1);
                        break;
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
            read += 1;
            if truncated {
                ListenerStats::add(&stats.truncated, 1);
                continue;
            }
            let Some(data) = self.buf.get(..len) else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            let container_id = match (&mut self.origin, pid) {
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
            on_datagram(data, container_id.as_ref());
        }
        read
    }
}

pub(super) fn spawn_stream(
    path: &Path,
    config: &ListenerConfig,
    out: Sender<Packet>,
    waker: Option<Waker>,
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
                        let (config, waker) = (config.clone(), waker.clone());
                        let spawned = std::thread::Builder::new()
                            .name("dogpipe-uds-conn".into())
                            .spawn(move || {
                                connection_loop(
                                    conn,
                                    &config,
                                    &out,
                                    waker.as_ref(),
                                    &stop2,
                                    &stats2,
                                )
                            });
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

/// Reads length-prefixed frames until EOF, an error, an oversized frame, or shutdown; wakes
/// `waker`, if any, after queueing frames.
fn connection_loop(
    mut conn: UnixStream,
    config: &ListenerConfig,
    out: &Sender<Packet>,
    waker: Option<&Waker>,
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
        if consumed > 0 {
            if let Some(waker) = waker {
                waker.wake();
            }
        }
        buf.drain(..consumed);
    }
}
