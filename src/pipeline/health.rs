//! Liveness: a tiny HTTP endpoint on 127.0.0.1 for the DaemonSet probe, and its client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A heartbeat the pipeline beats on every flush; stale means not alive.
#[derive(Debug, Default)]
pub(crate) struct Heartbeat(AtomicU64);

impl Heartbeat {
    /// Records that the pipeline made progress now.
    pub(crate) fn beat(&self) {
        // Relaxed: a single timestamp, read only to answer probes.
        self.0.store(unix_now(), Ordering::Relaxed);
    }

    fn age(&self) -> u64 {
        unix_now().saturating_sub(self.0.load(Ordering::Relaxed))
    }
}

/// Serves `GET /live` on `127.0.0.1:port` (0 picks a free port) until `stop` is set: `200 ok`
/// while the heartbeat is younger than `max_age`, `503` otherwise.
///
/// # Errors
/// The port cannot be bound.
pub(crate) fn serve(
    port: u16,
    heartbeat: Arc<Heartbeat>,
    max_age: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = std::thread::Builder::new()
        .name("dogpipe-health".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((conn, _)) => answer(conn, &heartbeat, max_age),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })?;
    Ok((addr, handle))
}

fn answer(mut conn: TcpStream, heartbeat: &Heartbeat, max_age: Duration) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let mut request = [0u8; 512];
    let n = conn.read(&mut request).unwrap_or(0);
    let live = request
        .get(..n)
        .is_some_and(|r| r.starts_with(b"GET /live"));
    let response: &[u8] = if !live {
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    } else if heartbeat.age() <= max_age.as_secs() {
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
    } else {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 6\r\nConnection: close\r\n\r\nstale\n"
    };
    let _ = conn.write_all(response);
}

/// Asks the endpoint on `127.0.0.1:port`; `Ok` when it answers 200.
///
/// # Errors
/// A message saying why the agent is not live.
pub fn check(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("no dogpipe health endpoint on {addr}: {e}"))?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    conn.write_all(b"GET /live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("health request to {addr} failed: {e}"))?;
    let mut response = Vec::new();
    let _ = conn.take(4096).read_to_end(&mut response);
    if response.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        let status = response.split(|&b| b == b'\r').next().unwrap_or_default();
        Err(format!(
            "dogpipe is not live: {}",
            String::from_utf8_lossy(status)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_live_while_the_heartbeat_is_fresh_and_stale_after() {
        let heartbeat = Arc::new(Heartbeat::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, handle) =
            serve(0, heartbeat.clone(), Duration::from_secs(60), stop.clone()).unwrap();
        assert!(check(addr.port()).unwrap_err().contains("503"));
        heartbeat.beat();
        assert_eq!(check(addr.port()), Ok(()));
        stop.store(true, Ordering::Release);
        handle.join().unwrap();
        assert!(
            check(addr.port())
                .unwrap_err()
                .contains("no dogpipe health endpoint")
        );
    }
}
