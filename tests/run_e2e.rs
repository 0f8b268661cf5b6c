//! `dogpipe run` end to end: the real binary, real sockets, real files and a local HTTP intake.

mod support;

use prost::Message as _;
use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Intake, pb, temp_dir};

const CONTAINER: &str = "3e6b2a0f1c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f";

struct Agent {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn start(env: &[(&str, String)]) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dogpipe"));
        cmd.arg("run")
            .env_clear()
            .env("DD_HEALTH_PORT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Agent { child, stderr }
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(l) = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no `{needle}` on stderr: {:?}", self.stderr.lock().unwrap());
    }

    fn udp_port(&self) -> u16 {
        let line = self.wait_for("listening on udp");
        line.rsplit(':').next().unwrap().trim().parse().unwrap()
    }

    /// SIGTERM, then the exit status and everything printed on stderr.
    fn stop(mut self) -> (i32, String) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "dogpipe did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        (
            status.code().unwrap_or(-1),
            self.stderr.lock().unwrap().join("\n"),
        )
    }
}

/// The series of every `/api/v2/series` request in a file sink directory.
fn sink_series(dir: &Path) -> Vec<pb::MetricSeries> {
    let index = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    let mut out = Vec::new();
    for line in index.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["path"] != "/api/v2/series" {
            continue;
        }
        let body = std::fs::read(dir.join(v["body_file"].as_str().unwrap())).unwrap();
        assert_eq!(v["content_encoding"], "zstd");
        let raw = zstd::decode_all(&body[..]).unwrap();
        out.extend(pb::MetricPayload::decode(&raw[..]).unwrap().series);
    }
    out
}

fn find<'a>(series: &'a [pb::MetricSeries], name: &str) -> &'a pb::MetricSeries {
    series.iter().find(|s| s.metric == name).unwrap_or_else(|| {
        panic!(
            "no series {name} in {:?}",
            series.iter().map(|s| &s.metric).collect::<Vec<_>>()
        )
    })
}

fn host(s: &pb::MetricSeries) -> &str {
    s.resources
        .iter()
        .find(|r| r.r#type == "host")
        .map_or("", |r| r.name.as_str())
}

fn fake_proc(dir: &Path) -> PathBuf {
    let proc_root = dir.join("proc");
    let pid_dir = proc_root.join(std::process::id().to_string());
    std::fs::create_dir_all(&pid_dir).unwrap();
    std::fs::write(
        pid_dir.join("cgroup"),
        format!("0::/kubepods.slice/cri-containerd-{CONTAINER}.scope\n"),
    )
    .unwrap();
    proc_root
}

#[test]
fn metrics_over_udp_unix_datagram_and_stream_reach_the_file_sink() {
    let dir = temp_dir("e2e-sink");
    let out = dir.join("out");
    let dgram = dir.join("dsd.socket");
    let stream = dir.join("dsd-stream.socket");
    let agent = Agent::start(&[
        ("DD_DOGSTATSD_PORT", "__random__".into()),
        ("DD_DOGSTATSD_SOCKET", dgram.display().to_string()),
        ("DD_DOGSTATSD_STREAM_SOCKET", stream.display().to_string()),
        ("DD_DOGSTATSD_ORIGIN_DETECTION", "true".into()),
        ("DOGPIPE_PROC_ROOT", fake_proc(&dir).display().to_string()),
        ("DD_HOSTNAME", "e2e-host".into()),
        ("DOGPIPE_OUTPUT_DIR", out.display().to_string()),
        // Aggregation on the ingest thread (the default with two cores or fewer); the intake
        // test below uses shard threads.
        ("DOGPIPE_SHARDS", "0".into()),
        // Every series travels to the serializer in a chunk of its own: each is a payload.
        ("DOGPIPE_FLUSH_CHUNK", "1".into()),
    ]);
    let port = agent.udp_port();
    agent.wait_for("writing requests to");

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"udp.count:1|c|#env:a\nudp.count:2|c|#env:a\nnot a metric\nudp.gauge:5|g|#host:other",
        ("127.0.0.1", port),
    )
    .unwrap();
    udp.send_to(&b"big.count:1|c\n".repeat(700), ("127.0.0.1", port))
        .unwrap(); // 9 800 B > 8 192
    let uds = UnixDatagram::unbound().unwrap();
    uds.send_to(b"uds.count:3|c|#env:b", &dgram).unwrap();
    let mut s = UnixStream::connect(&stream).unwrap();
    let frame = b"stream.gauge:7|g\n_sc|svc.up|1|m:slow";
    s.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
    s.write_all(frame).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let (code, stderr) = agent.stop();
    assert_eq!(code, 0, "{stderr}");
    let series = sink_series(&out);
    let count = find(&series, "udp.count");
    assert_eq!(
        (count.r#type, count.interval, host(count)),
        (2, 10, "e2e-host"),
        "RATE over 10 s"
    );
    assert_eq!(count.points[0].value, 0.3);
    assert_eq!(count.tags, ["env:a"]);
    let gauge = find(&series, "udp.gauge");
    assert_eq!(
        (gauge.r#type, gauge.points[0].value, host(gauge)),
        (3, 5.0, "other")
    );
    let uds_count = find(&series, "uds.count");
    let mut tags = uds_count.tags.clone();
    tags.sort();
    assert_eq!(
        tags,
        [format!("container_id:{CONTAINER}"), "env:b".to_string()]
    );
    assert_eq!(find(&series, "stream.gauge").points[0].value, 7.0);
    assert!(
        series.iter().all(|s| s.metric != "big.count"),
        "a truncated datagram is not parsed"
    );

    let index = std::fs::read_to_string(out.join("requests.jsonl")).unwrap();
    assert!(index.contains("/api/v1/check_run"), "{index}");
    let series_requests = index
        .lines()
        .filter(|l| l.contains("/api/v2/series"))
        .count();
    assert!(
        series_requests >= 4,
        "one payload per chunk of one: {index}"
    );
    assert!(stderr.contains("flush series="), "{stderr}");
    assert!(stderr.contains("held_ingest_ms="), "{stderr}");
    assert!(stderr.contains("truncated=1"), "{stderr}");
    assert!(stderr.contains("metrics ok=5 bad=1"), "{stderr}");
    assert!(stderr.contains("service_checks ok=1"), "{stderr}");
}

#[test]
fn with_an_api_key_requests_go_to_the_intake_and_the_key_is_never_printed() {
    let intake = Intake::start(vec![support::Answer::status(500)]);
    let agent = Agent::start(&[
        ("DD_DOGSTATSD_PORT", "__random__".into()),
        ("DD_API_KEY", "e2e-secret-key-0123456789".into()),
        ("DD_DD_URL", intake.url.clone()),
        ("DD_HOSTNAME", "h".into()),
        ("DOGPIPE_SHARDS", "2".into()),
    ]);
    let port = agent.udp_port();
    agent.wait_for("shipping to");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"shipped:1|g|#env:prod", ("127.0.0.1", port))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (code, stderr) = agent.stop();
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("e2e-secret-key"), "{stderr}");
    let requests = intake.requests();
    let series: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/api/v2/series"))
        .collect();
    // The first request is answered 500 and sent again. (A regular flush may add a request of
    // dogpipe's own metrics when the test crosses a 15 s boundary: look for the retry and the
    // metric rather than count requests.)
    let first = series.first().expect("a series request");
    let retried = series.iter().skip(1).any(|r| r.body == first.body);
    assert!(retried, "a 500 is retried: {requests:?}");
    let shipped = series
        .iter()
        .rev()
        .find(|r| {
            pb::MetricPayload::decode(&r.decoded()[..])
                .unwrap()
                .series
                .iter()
                .any(|s| s.metric == "shipped")
        })
        .expect("the metric reaches the intake");
    assert_eq!(
        shipped.header("DD-API-KEY"),
        Some("e2e-secret-key-0123456789")
    );
}

#[test]
fn the_liveness_endpoint_answers_while_running() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir("e2e-health");
    let agent = Agent::start(&[
        ("DD_DOGSTATSD_PORT", "__random__".into()),
        ("DD_HEALTH_PORT", port.to_string()),
        ("DOGPIPE_OUTPUT_DIR", dir.display().to_string()),
    ]);
    agent.wait_for("liveness on");
    let health = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .args(["health", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(health.status.success(), "{health:?}");
    let (code, _) = agent.stop();
    assert_eq!(code, 0);
    let health = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .args(["health", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(!health.status.success(), "not live once stopped");
}

#[test]
fn an_invalid_setting_stops_start_up_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .arg("run")
        .env_clear()
        .env("DD_DOGSTATSD_PORT", "eighty")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DD_DOGSTATSD_PORT=\"eighty\" is invalid"),
        "{stderr}"
    );
}

/// A flush goes a chunk at a time between packets: samples sent while the periodic flush is
/// under way are neither lost nor counted twice, with aggregation on the ingest thread and on
/// shard threads (two agents at once, to wait for one periodic flush).
#[test]
fn samples_sent_during_a_periodic_flush_are_counted_once() {
    let sharded = std::thread::spawn(|| counted_once("2"));
    counted_once("0");
    sharded.join().unwrap();
}

fn counted_once(shards: &str) {
    const COUNTERS: usize = 400;
    let dir = temp_dir(&format!("e2e-under-way-{shards}"));
    let out = dir.join("out");
    let dgram = dir.join("dsd.socket");
    let agent = Agent::start(&[
        ("DD_DOGSTATSD_PORT", "0".into()),
        ("DD_DOGSTATSD_SOCKET", dgram.display().to_string()),
        ("DOGPIPE_OUTPUT_DIR", out.display().to_string()),
        ("DOGPIPE_SHARDS", shards.into()),
        // One payload per series, one chunk queued: the flush lasts while samples arrive.
        ("DOGPIPE_FLUSH_CHUNK", "1".into()),
        ("DOGPIPE_FLUSH_QUEUE", "1".into()),
    ]);
    agent.wait_for("writing requests to");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (stop, dgram) = (Arc::clone(&stop), dgram.clone());
        std::thread::spawn(move || {
            let uds = UnixDatagram::unbound().unwrap();
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                for part in (0..COUNTERS).collect::<Vec<_>>().chunks(50) {
                    let packet: String = part.iter().map(|i| format!("under.c{i}:1|c\n")).collect();
                    uds.send_to(packet.as_bytes(), &dgram).unwrap();
                }
                rounds += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            rounds
        })
    };
    // The first periodic flush that emits something: within two flush intervals.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let flushed = agent
            .stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("flush series=") && !l.contains("flush series=0 "));
        if flushed {
            break;
        }
        assert!(Instant::now() < deadline, "no periodic flush");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Release);
    let rounds = sender.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (code, stderr) = agent.stop();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("flush_ms="), "{stderr}");

    assert!(!stderr.contains("not a setting"), "{stderr}");
    let mut totals = std::collections::BTreeMap::new();
    for s in sink_series(&out)
        .into_iter()
        .filter(|s| s.metric.starts_with("under."))
    {
        let sum: f64 = s.points.iter().map(|p| p.value * 10.0).sum();
        *totals.entry(s.metric.clone()).or_insert(0.0) += sum;
    }
    assert_eq!(totals.len(), COUNTERS, "{stderr}");
    for (name, total) in totals {
        assert!(
            (total - rounds as f64).abs() < 1e-6,
            "{name}: {total} counted, {rounds} sent"
        );
    }
}
