//! The logs pipeline end to end on real files: CRI files under a pods directory, rotated by
//! rename while running and while stopped, shipped through the file sink.

use dogpipe::{BatchConfig, FileSink, LogsConfig, LogsPipeline};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dogpipe-logs-it-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn write_lines(path: &Path, from: usize, to: usize) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in from..to {
        writeln!(f, "2024-05-01T12:00:00.000000000Z stdout F line {i}").unwrap();
    }
}

/// Every message the file sink wrote, in order.
fn delivered(out: &Path) -> Vec<serde_json::Value> {
    let Ok(index) = fs::read_to_string(out.join("requests.jsonl")) else {
        return Vec::new();
    };
    let mut messages = Vec::new();
    for line in index.lines() {
        let req: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(req["path"], "/api/v2/logs");
        assert_eq!(req["content_encoding"], "zstd");
        let body = fs::read(out.join(req["body_file"].as_str().unwrap())).unwrap();
        let array: Vec<serde_json::Value> =
            serde_json::from_slice(&zstd::decode_all(&body[..]).unwrap()).unwrap();
        messages.extend(array);
    }
    messages
}

fn contents(out: &Path) -> Vec<String> {
    delivered(out)
        .iter()
        .map(|m| m["message"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (up to a generous deadline, never asserting on time) until `n` messages arrived.
fn wait_for(out: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while contents(out).len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config(pods: &Path, run: &Path) -> LogsConfig {
    LogsConfig::default()
        .with_enabled(true)
        .with_container_collect_all(true)
        .with_pods_dir(pods)
        .with_run_path(run)
        .with_scan_period(Duration::from_millis(50))
        .with_batch(BatchConfig::default().with_wait(Duration::from_millis(50)))
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("line {i}")).collect()
}

#[test]
fn rotation_while_running_and_while_stopped_loses_nothing_and_restarts_from_the_registry() {
    let dir = temp("rotation");
    let (pods, run, out) = (dir.join("pods"), dir.join("run"), dir.join("out"));
    let container = pods.join("ns_web-1_0f3c/app");
    fs::create_dir_all(&container).unwrap();
    let log = container.join("0.log");
    write_lines(&log, 0, 100);

    let handle = LogsPipeline::start(
        config(&pods, &run),
        Box::new(FileSink::create(&out).unwrap()),
        "node-1",
    );
    wait_for(&out, 100);
    // kubelet-style rotation: rename, new file, more lines.
    write_lines(&log, 100, 120);
    fs::rename(&log, container.join("0.log.20240501-120000")).unwrap();
    write_lines(&log, 120, 150);
    wait_for(&out, 150);
    let stats = handle.stop();
    assert_eq!(contents(&out), expected(0..150));
    assert!(stats.rotations >= 1, "{stats:?}");
    assert_eq!(stats.messages, 150);
    let registry = fs::read_to_string(run.join("registry.json")).unwrap();
    assert!(registry.contains("0.log"), "{registry}");

    let first = &delivered(&out)[0];
    assert_eq!(first["hostname"], "node-1");
    assert_eq!(first["service"], "app");
    assert_eq!(first["ddsource"], "app");
    assert_eq!(first["status"], "info");
    assert!(
        first["ddtags"]
            .as_str()
            .unwrap()
            .contains("kube_namespace:ns,pod_name:web-1,kube_container_name:app")
    );

    // While stopped: more lines, then another rotation and a new file.
    write_lines(&log, 150, 170);
    fs::rename(&log, container.join("0.log.20240501-130000")).unwrap();
    write_lines(&log, 170, 180);
    let handle = LogsPipeline::start(
        config(&pods, &run),
        Box::new(FileSink::create(&out).unwrap()),
        "node-1",
    );
    wait_for(&out, 180);
    let stats = handle.stop();
    assert_eq!(contents(&out), expected(0..180), "resumed at the offsets");
    assert_eq!(stats.files_resumed, 1, "{stats:?}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_deleted_file_is_drained_and_a_copytruncated_one_restarts_at_zero() {
    let dir = temp("delete");
    let (pods, run, out) = (dir.join("pods"), dir.join("run"), dir.join("out"));
    let a = pods.join("ns_a_1/app/0.log");
    let b = pods.join("ns_b_2/app/0.log");
    for p in [&a, &b] {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
    }
    write_lines(&a, 0, 10);
    write_lines(&b, 100, 110);
    let handle = LogsPipeline::start(
        config(&pods, &run),
        Box::new(FileSink::create(&out).unwrap()),
        "node-1",
    );
    wait_for(&out, 20);
    // copytruncate of b: copy, truncate, new lines at the start.
    fs::copy(&b, b.with_extension("log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&b)
        .unwrap()
        .set_len(0)
        .unwrap();
    write_lines(&b, 110, 112);
    wait_for(&out, 22);
    fs::remove_file(&a).unwrap();
    wait_for(&out, 22);
    let stats = handle.stop();
    let mut got = contents(&out);
    got.sort();
    let mut want = [expected(0..10), expected(100..112)].concat();
    want.sort();
    assert_eq!(got, want);
    assert!(stats.truncations >= 1, "{stats:?}");
    fs::remove_dir_all(&dir).unwrap();
}
