//! The listeners on real sockets: UDP, Unix datagram, Unix stream.

use dogpipe::{ListenError, ListenerConfig, Listeners, Packet};
use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dogpipe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn recv(rx: &crossbeam_channel::Receiver<Packet>) -> Packet {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("a packet within 5 s")
}

/// The messages of packets received until `n` have arrived: a packet holds one datagram or
/// several joined with `\n` (those one read found waiting).
fn messages(rx: &crossbeam_channel::Receiver<Packet>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let p = recv(rx);
        out.extend(
            String::from_utf8(p.data.to_vec())
                .unwrap()
                .split('\n')
                .map(str::to_owned),
        );
    }
    out
}

fn udp_only() -> ListenerConfig {
    ListenerConfig::default().with_udp_port(Some(0))
}

#[test]
fn udp_packets_arrive_whole_and_are_counted() {
    let (tx, rx) = crossbeam_channel::bounded(16);
    let listeners = Listeners::start(&udp_only(), tx).unwrap();
    let addr = listeners.udp_addr().unwrap();
    assert!(addr.ip().is_loopback(), "binds 127.0.0.1 by default");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"a:1|c\nb:2|g", addr).unwrap();
    client.send_to(b"c:3|c", addr).unwrap();
    assert_eq!(messages(&rx, 3), ["a:1|c", "b:2|g", "c:3|c"]);
    let stats = listeners.stats().clone();
    assert_eq!(stats.packets.load(Ordering::Relaxed), 2);
    assert_eq!(stats.bytes.load(Ordering::Relaxed), 16);
    listeners.stop();
}

#[test]
fn truncated_udp_datagrams_are_counted_and_not_forwarded() {
    let (tx, rx) = crossbeam_channel::bounded(16);
    let config = udp_only().with_buffer_size(8192);
    let listeners = Listeners::start(&config, tx).unwrap();
    let addr = listeners.udp_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut big = b"big:1|c\n".repeat(1125); // 9000 bytes
    big.truncate(9000);
    client.send_to(&big, addr).unwrap();
    client.send_to(b"after:1|c", addr).unwrap();
    assert_eq!(recv(&rx).data, &b"after:1|c"[..]);
    assert_eq!(listeners.stats().truncated.load(Ordering::Relaxed), 1);
    assert_eq!(listeners.stats().packets.load(Ordering::Relaxed), 1);
    listeners.stop();
}

#[test]
fn several_reuseport_sockets_share_the_port() {
    let (tx, rx) = crossbeam_channel::bounded(64);
    let listeners = Listeners::start(&udp_only().with_udp_sockets(3), tx).unwrap();
    let addr = listeners.udp_addr().unwrap();
    for i in 0..20 {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .send_to(format!("m{i}:1|c").as_bytes(), addr)
            .unwrap();
    }
    let mut got = messages(&rx, 20);
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 20);
    listeners.stop();
}

#[test]
fn unix_datagrams_arrive_and_the_socket_file_is_world_writable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("uds");
    let path = dir.join("dsd.socket");
    let (tx, rx) = crossbeam_channel::bounded(16);
    let config = ListenerConfig::default()
        .with_udp_port(None)
        .with_socket(Some(path.clone()));
    let listeners = Listeners::start(&config, tx).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o722);
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(b"u:1|c", &path).unwrap();
    let p = recv(&rx);
    assert_eq!((p.data.as_ref(), p.container_id), (&b"u:1|c"[..], None));
    listeners.stop();
}

#[test]
fn many_fast_datagrams_arrive_whole_and_in_order_when_gathered() {
    let dir = temp_dir("gather");
    let path = dir.join("dsd.socket");
    let (tx, rx) = crossbeam_channel::bounded(16);
    let config = ListenerConfig::default()
        .with_udp_port(None)
        .with_socket(Some(path.clone()));
    let client = UnixDatagram::unbound().unwrap();
    // Sent faster than one read per datagram: reads find several waiting and join them.
    let listeners = Listeners::start(&config, tx).unwrap();
    let sent: Vec<String> = (0..2000).map(|i| format!("g{i}:1|c")).collect();
    let sender = std::thread::spawn(move || {
        for m in &sent {
            client.send_to(m.as_bytes(), &path).unwrap();
        }
    });
    let mut packets = 0;
    let mut got = Vec::new();
    while got.len() < 2000 {
        let p = recv(&rx);
        packets += 1;
        got.extend(
            String::from_utf8(p.data.to_vec())
                .unwrap()
                .split('\n')
                .map(str::to_owned),
        );
    }
    sender.join().unwrap();
    let expected: Vec<String> = (0..2000).map(|i| format!("g{i}:1|c")).collect();
    assert_eq!(got, expected, "every datagram, whole and in order");
    assert_eq!(listeners.stats().packets.load(Ordering::Relaxed), 2000);
    assert!(packets <= 2000, "{packets} packets");
    listeners.stop();
}

#[test]
fn a_stale_socket_is_replaced_but_another_file_is_refused() {
    let dir = temp_dir("stale");
    let path = dir.join("dsd.socket");
    drop(UnixDatagram::bind(&path).unwrap()); // leaves a stale socket file
    let (tx, _rx) = crossbeam_channel::bounded(16);
    let config = ListenerConfig::default()
        .with_udp_port(None)
        .with_socket(Some(path.clone()));
    Listeners::start(&config, tx.clone()).unwrap().stop();

    let file = dir.join("not-a-socket");
    std::fs::write(&file, b"keep me").unwrap();
    let config = ListenerConfig::default()
        .with_udp_port(None)
        .with_socket(Some(file.clone()));
    let err = Listeners::start(&config, tx).unwrap_err();
    assert!(matches!(err, ListenError::NotASocket(_)), "{err}");
    assert!(err.to_string().contains("is not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn origin_detection_maps_the_sender_pid_to_its_container() {
    let dir = temp_dir("origin");
    let id = "3e6b2a0f1c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f";
    let proc_root = dir.join("proc");
    let pid_dir = proc_root.join(std::process::id().to_string());
    std::fs::create_dir_all(&pid_dir).unwrap();
    std::fs::write(
        pid_dir.join("cgroup"),
        format!("0::/kubepods.slice/cri-containerd-{id}.scope\n"),
    )
    .unwrap();
    let path = dir.join("dsd.socket");
    let stream_path = dir.join("dsd-stream.socket");
    let (tx, rx) = crossbeam_channel::bounded(16);
    let config = ListenerConfig::default()
        .with_udp_port(None)
        .with_socket(Some(path.clone()))
        .with_stream_socket(Some(stream_path.clone()))
        .with_origin_detection(true)
        .with_proc_root(proc_root);
    let listeners = Listeners::start(&config, tx).unwrap();
    let client = UnixDatagram::unbound().unwrap();
    client.send_to(b"o:1|c", &path).unwrap();
    assert_eq!(recv(&rx).container_id.as_deref(), Some(id));
    let mut stream = UnixStream::connect(&stream_path).unwrap();
    stream.write_all(&[5, 0, 0, 0]).unwrap();
    stream.write_all(b"s:1|c").unwrap();
    assert_eq!(recv(&rx).container_id.as_deref(), Some(id));
    listeners.stop();
}

#[test]
fn stream_frames_are_reassembled_and_an_oversized_frame_closes_only_its_connection() {
    let dir = temp_dir("stream");
    let path = dir.join("dsd-stream.socket");
    let (tx, rx) = crossbeam_channel::bounded(16);
    let config = ListenerConfig::default()
        .with_udp_port(None)
        .with_stream_socket(Some(path.clone()))
        .with_buffer_size(8192);
    let listeners = Listeners::start(&config, tx).unwrap();

    let mut good = UnixStream::connect(&path).unwrap();
    // One frame written in three pieces, then two frames in one write.
    good.write_all(&[5, 0]).unwrap();
    good.flush().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    good.write_all(&[0, 0, b'a', b':']).unwrap();
    good.flush().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    good.write_all(b"1|c").unwrap();
    good.write_all(&[
        5, 0, 0, 0, b'b', b':', b'2', b'|', b'c', 5, 0, 0, 0, b'c', b':', b'3', b'|', b'g',
    ])
    .unwrap();
    assert_eq!(messages(&rx, 3), ["a:1|c", "b:2|c", "c:3|g"]);

    let mut bad = UnixStream::connect(&path).unwrap();
    bad.write_all(&9000u32.to_le_bytes()).unwrap();
    bad.write_all(&[b'x'; 100]).unwrap();
    let mut buf = [0u8; 1];
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    use std::io::Read;
    assert_eq!(
        bad.read(&mut buf).unwrap_or(0),
        0,
        "the oversized connection is closed"
    );
    assert_eq!(
        listeners.stats().oversized_frames.load(Ordering::Relaxed),
        1
    );

    good.write_all(&[5, 0, 0, 0, b'd', b':', b'4', b'|', b'c'])
        .unwrap();
    assert_eq!(recv(&rx).data, &b"d:4|c"[..]);
    listeners.stop();
}

#[test]
fn datagrams_the_kernel_drops_are_counted() {
    // A queue of one packet that nobody reads: the reader blocks, the socket buffer fills and
    // the kernel drops the rest.
    let (tx, rx) = crossbeam_channel::bounded(1);
    let config = udp_only().with_so_rcvbuf(4096);
    let listeners = Listeners::start(&config, tx).unwrap();
    let addr = listeners.udp_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..2_000 {
        client.send_to(&[b'x'; 1000], addr).unwrap();
    }
    let stats = listeners.stats().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.kernel_drops.load(Ordering::Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no kernel drop counted"
        );
        std::thread::sleep(Duration::from_millis(50));
        let _ = rx.try_recv(); // one packet at a time, so the reader wakes and checks
    }
    drop(rx);
    listeners.stop();
    let received = stats.packets.load(Ordering::Relaxed);
    let dropped = stats.kernel_drops.load(Ordering::Relaxed);
    assert!(received + dropped <= 2_000, "{received} + {dropped}");
}
