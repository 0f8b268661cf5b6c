//! kill -9 of the running binary while log files rotate: after a restart every line arrives.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .arg("run")
        .env_clear()
        .env("DD_LOGS_ENABLED", "true")
        .env("DD_LOGS_CONFIG_CONTAINER_COLLECT_ALL", "true")
        .env("DOGPIPE_POD_LOGS_DIR", dir.join("pods"))
        .env("DD_LOGS_CONFIG_RUN_PATH", dir.join("run"))
        .env("DD_LOGS_CONFIG_FILE_SCAN_PERIOD", "1")
        .env("DD_LOGS_CONFIG_BATCH_WAIT", "1")
        .env("DOGPIPE_OUTPUT_DIR", dir.join("out"))
        .env("DD_DOGSTATSD_PORT", "0")
        .env("DD_HEALTH_PORT", "0")
        .env("DD_HOSTNAME", "crash-test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn append(path: &Path, from: usize, to: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in from..to {
        writeln!(f, "2024-05-01T12:00:00.000000000Z stdout F line-{i:05}").unwrap();
    }
    f.flush().unwrap();
}

/// Rotates like the kubelet: rename to a timestamped name, start a new file.
fn rotate(log: &Path, n: usize) {
    let rotated = log.with_file_name(format!("0.log.2024050112000{n}"));
    std::fs::rename(log, rotated).unwrap();
}

/// Every message delivered to the file sink so far.
fn delivered(out: &Path) -> Vec<String> {
    let Ok(index) = std::fs::read_to_string(out.join("logs/requests.jsonl")) else {
        return Vec::new();
    };
    let mut messages = Vec::new();
    for line in index.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let body = std::fs::read(out.join("logs").join(v["body_file"].as_str().unwrap())).unwrap();
        let raw = zstd::decode_all(&body[..]).unwrap();
        let batch: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        for m in batch.as_array().unwrap() {
            messages.push(m["message"].as_str().unwrap().to_string());
        }
    }
    messages
}

fn kill9(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn every_line_arrives_after_a_kill_9_during_rotations() {
    let dir: PathBuf = std::env::temp_dir().join(format!("dogpipe-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let container = dir.join("pods/default_web_0d9f1c2e-uid/app");
    std::fs::create_dir_all(&container).unwrap();
    let log = container.join("0.log");
    append(&log, 0, 1000);

    let mut agent = start(&dir);
    std::thread::sleep(Duration::from_millis(1500));
    append(&log, 1000, 1500);
    rotate(&log, 1);
    append(&log, 1500, 2000);
    // Long enough for a scan (1 s) to find the new file and the registry (written at most
    // every second) to record it; a file created and rotated away again within that window
    // around a crash is not found again (a known limit, see the issue notes).
    std::thread::sleep(Duration::from_millis(2500));
    append(&log, 2000, 2200);
    kill9(&mut agent); // mid-stream: some lines read, some batched, some not yet read

    // While dogpipe is down: more lines, and another rotation.
    append(&log, 2200, 2500);
    rotate(&log, 2);
    append(&log, 2500, 3000);

    let mut agent = start(&dir);
    let want: BTreeSet<String> = (0..3000).map(|i| format!("line-{i:05}")).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got: BTreeSet<String> = delivered(&dir.join("out")).into_iter().collect();
        if want.is_subset(&got) || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    kill9(&mut agent);
    let missing: Vec<_> = want.difference(&got).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} lines missing, e.g. {missing:?}",
        want.difference(&got).count()
    );
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(extra.is_empty(), "delivered lines never written: {extra:?}");
}
