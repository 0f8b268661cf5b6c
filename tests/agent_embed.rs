//! The agent as a library: started from settings, counters read live, stopped cleanly.

use dogpipe::{Agent, Settings};
use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[test]
fn an_embedding_program_reads_the_counters_and_stops_the_agent() {
    let dir = std::env::temp_dir().join(format!("dogpipe-embed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let vars = [
        ("DD_DOGSTATSD_PORT", "__random__"),
        ("DD_HEALTH_PORT", "0"),
        ("DD_HOSTNAME", "embedded"),
        ("DOGPIPE_OUTPUT_DIR", dir.to_str().unwrap()),
    ];
    let settings = Settings::new(
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        None,
    )
    .unwrap();
    let agent = Agent::start(&settings, |_| {}).unwrap();
    assert!(
        agent.description().contains("writing requests to"),
        "{}",
        agent.description()
    );
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"a:1|c\nb:2|g\nnot-a-metric", agent.udp_addr().unwrap())
        .unwrap();
    let t = agent.telemetry().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.messages_ok[0].load(Ordering::Relaxed) < 2 {
        assert!(Instant::now() < deadline, "{}", t.summary());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(t.messages_bad[0].load(Ordering::Relaxed), 1);
    assert_eq!(t.listeners.packets.load(Ordering::Relaxed), 1);
    assert!(agent.stop(), "everything delivered to the file sink");
    assert_eq!(t.contexts.load(Ordering::Relaxed), 2, "{}", t.summary());
    assert!(t.payloads.load(Ordering::Relaxed) >= 1);
    let index = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    assert!(index.contains("/api/v2/series"));
}

#[test]
fn a_port_in_use_is_a_start_up_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let vars = [
        ("DD_DOGSTATSD_PORT", port.as_str()),
        ("DD_HEALTH_PORT", "0"),
        ("DOGPIPE_OUTPUT_DIR", "/tmp/dogpipe-embed-unused"),
    ];
    let settings = Settings::new(
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        None,
    )
    .unwrap();
    let e = Agent::start(&settings, |_| {}).unwrap_err();
    assert!(e.to_string().contains("cannot listen on 127.0.0.1"), "{e}");
}
