//! Model-based tests of the tailer: random sequences of file actions, sink failures and
//! restarts, on real temporary files, with an injected clock and a test sink.
//!
//! Test code only: the parent module declares this file under `#[cfg(test)]`, and the
//! attribute below repeats it, so nothing here (its `unwrap`s included) is built into dogpipe.

#![cfg(test)]

use super::decoder::{DecoderConfig, LogFormat};
use super::intake::BatchConfig;
use super::rules::ProcessingRules;
use super::tailer::{Tailer, TailerConfig};
use crate::forward::{ForwardError, Sink};
use crate::{Endpoint, Payload};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every payload is accepted on send.
    Accept,
    /// Payloads are received but not acknowledged until the mode changes.
    Hold,
    /// `send` fails.
    Fail,
}

/// Records every message of every payload it receives.
struct TestSink {
    mode: Mode,
    received: Vec<String>,
    unacked: usize,
}

impl TestSink {
    fn new() -> TestSink {
        TestSink {
            mode: Mode::Accept,
            received: Vec::new(),
            unacked: 0,
        }
    }
}

impl Sink for TestSink {
    fn send(&mut self, payload: Payload) -> Result<(), ForwardError> {
        if self.mode == Mode::Fail {
            return Err(ForwardError::InvalidSetting {
                name: "test",
                expected: "a working sink",
            });
        }
        assert_eq!(payload.endpoint(), Endpoint::Logs);
        let body = zstd::decode_all(payload.body()).unwrap();
        let array: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        for m in array {
            self.received
                .push(m["message"].as_str().unwrap().to_string());
        }
        if self.mode == Mode::Hold {
            self.unacked += 1;
        }
        Ok(())
    }

    fn pending(&mut self, endpoint: Endpoint) -> usize {
        assert_eq!(endpoint, Endpoint::Logs);
        if self.mode != Mode::Hold {
            self.unacked = 0;
        }
        self.unacked
    }
}

#[derive(Debug, Clone)]
enum Action {
    Write(usize, usize),
    WritePartial(usize),
    CompletePartial(usize),
    Rotate(usize),
    CopyTruncate(usize),
    Delete(usize),
    Sink(Mode),
    Tick(u64),
    Crash,
    /// A crash, then path `k` is rotated and written to while dogpipe is down.
    CrashRotate(usize),
    Stop,
}

fn action() -> impl Strategy<Value = Action> {
    let file = 0..3usize;
    prop_oneof![
        6 => (file.clone(), 1..20usize).prop_map(|(f, n)| Action::Write(f, n)),
        1 => file.clone().prop_map(Action::WritePartial),
        1 => file.clone().prop_map(Action::CompletePartial),
        1 => file.clone().prop_map(Action::Rotate),
        1 => file.clone().prop_map(Action::CopyTruncate),
        1 => file.prop_map(Action::Delete),
        1 => prop_oneof![Just(Mode::Accept), Just(Mode::Hold), Just(Mode::Fail)].prop_map(Action::Sink),
        4 => (0..3000u64).prop_map(Action::Tick),
        1 => Just(Action::Crash),
        1 => (0..3usize).prop_map(Action::CrashRotate),
        1 => Just(Action::Stop),
    ]
}

/// What was written to one path.
#[derive(Default)]
struct PathModel {
    /// Bytes in the file now at the path (0 when missing).
    size: u64,
    exists: bool,
    /// An unterminated line at the end of the file.
    partial: Option<String>,
    /// Complete lines of the current file with their end offsets, not yet known read.
    lines: Vec<(u64, String)>,
    rotations: u32,
    /// The tailer's file id when the file was last copy-truncated.
    truncated_id: Option<u64>,
}

struct World {
    dir: PathBuf,
    pods: PathBuf,
    run: PathBuf,
    paths: Vec<PathBuf>,
    models: Vec<PathModel>,
    /// Every complete line written, by path, in order.
    written: Vec<Vec<String>>,
    /// Lines that may be missing (written after the last read before a copytruncate, or in a
    /// deleted file never delivered before a crash).
    optional: HashSet<String>,
    seq: u64,
    now: Instant,
    wall: u64,
    restarts: u32,
    down: bool,
}

static CASE: AtomicU64 = AtomicU64::new(0);

impl World {
    fn new() -> World {
        let case = CASE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "dogpipe-tailer-model-{}-{case}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        let pods = dir.join("pods");
        let paths = (0..3)
            .map(|k| pods.join(format!("ns_pod{k}_uid{k}/app/0.log")))
            .collect::<Vec<_>>();
        for p in &paths {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
        }
        World {
            run: dir.join("run"),
            dir,
            pods,
            paths,
            models: (0..3).map(|_| PathModel::default()).collect(),
            written: vec![Vec::new(); 3],
            optional: HashSet::new(),
            seq: 0,
            now: Instant::now(),
            wall: 1_700_000_000_000,
            restarts: 0,
            down: false,
        }
    }

    fn config(&self) -> TailerConfig {
        TailerConfig {
            pods_dir: self.pods.clone(),
            run_dir: self.run.clone(),
            scan_period: Duration::from_secs(10),
            open_files_limit: 100,
            batch: BatchConfig::default()
                .with_max_messages(7)
                .with_wait(Duration::from_secs(1)),
            rules: ProcessingRules::default(),
            decoder: DecoderConfig::default().with_format(LogFormat::Raw),
            max_pending_payloads: 3,
            read_bytes: 64,
            registry_interval: Duration::from_secs(1),
            hostname: "node-1".into(),
            selection: crate::logs::select::Selection::collect_all(),
        }
    }

    fn tick(&mut self, tailer: &mut Tailer, sink: &mut TestSink, advance: Duration) {
        self.now += advance;
        self.wall += advance.as_millis() as u64;
        tailer.tick(sink, self.now, self.wall);
    }

    /// A scan right after a file appears, so that every file is opened before it can go.
    fn scan(&mut self, tailer: &mut Tailer, sink: &mut TestSink) {
        if self.down {
            return;
        }
        self.tick(tailer, sink, Duration::from_secs(10));
    }

    fn append(&mut self, k: usize, bytes: &[u8]) -> bool {
        let created = !self.models[k].exists;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.paths[k])
            .unwrap();
        f.write_all(bytes).unwrap();
        let m = &mut self.models[k];
        m.exists = true;
        m.size += bytes.len() as u64;
        created
    }

    fn line(&mut self, k: usize) -> String {
        self.seq += 1;
        format!("f{k}-{}", self.seq)
    }

    fn complete(&mut self, k: usize, line: String) {
        let end = self.models[k].size;
        self.models[k].lines.push((end, line.clone()));
        self.written[k].push(line);
    }

    /// The current file at path `k` goes away: its partial line is abandoned.
    fn leave_file(&mut self, k: usize) {
        let m = &mut self.models[k];
        m.partial = None;
        m.size = 0;
        m.lines.clear();
    }

    fn apply(&mut self, a: &Action, tailer: &mut Tailer, sink: &mut TestSink) {
        match *a {
            Action::Write(k, n) => {
                let mut bytes = Vec::new();
                let mut lines = Vec::new();
                if let Some(p) = self.models[k].partial.take() {
                    // Ends the partial line first.
                    bytes.extend_from_slice(b"-end\n");
                    lines.push((bytes.len(), format!("{p}-end")));
                }
                for _ in 0..n {
                    let l = self.line(k);
                    bytes.extend_from_slice(l.as_bytes());
                    bytes.push(b'\n');
                    lines.push((bytes.len(), l));
                }
                let base = self.models[k].size;
                let created = self.append(k, &bytes);
                for (end, l) in lines {
                    self.models[k].lines.push((base + end as u64, l.clone()));
                    self.written[k].push(l);
                }
                if created {
                    self.scan(tailer, sink);
                }
            }
            Action::WritePartial(k) => {
                if self.models[k].partial.is_some() {
                    return;
                }
                let l = self.line(k);
                let created = self.append(k, l.as_bytes());
                self.models[k].partial = Some(l);
                if created {
                    self.scan(tailer, sink);
                }
            }
            Action::CompletePartial(k) => {
                if let Some(p) = self.models[k].partial.take() {
                    self.append(k, b"-end\n");
                    self.complete(k, format!("{p}-end"));
                }
            }
            Action::Rotate(k) => {
                if !self.models[k].exists {
                    return;
                }
                let m = &mut self.models[k];
                m.rotations += 1;
                let to = self.paths[k].with_extension(format!("log.{}", m.rotations));
                fs::rename(&self.paths[k], &to).unwrap();
                fs::File::create(&self.paths[k]).unwrap();
                self.leave_file(k);
                self.models[k].exists = true;
                self.scan(tailer, sink);
            }
            Action::CopyTruncate(k) => {
                if !self.models[k].exists {
                    return;
                }
                let (id, read) = tailer.read_position(&self.paths[k]).unwrap_or((0, 0));
                // A position in content truncated earlier, before the tailer noticed, says
                // nothing about the current content.
                let stale = self.models[k].truncated_id == Some(id);
                let read = if stale { 0 } else { read };
                self.models[k].truncated_id = Some(id);
                for (end, l) in &self.models[k].lines {
                    if *end > read {
                        self.optional.insert(l.clone());
                    }
                }
                let m = &mut self.models[k];
                m.rotations += 1;
                let to = self.paths[k].with_extension(format!("log.{}.copy", m.rotations));
                fs::copy(&self.paths[k], &to).unwrap();
                OpenOptions::new()
                    .write(true)
                    .open(&self.paths[k])
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                self.leave_file(k);
                self.models[k].exists = true;
            }
            Action::Delete(k) => {
                if !self.models[k].exists {
                    return;
                }
                fs::remove_file(&self.paths[k]).unwrap();
                self.leave_file(k);
                self.models[k].exists = false;
            }
            Action::Sink(mode) => sink.mode = mode,
            Action::Tick(ms) => self.tick(tailer, sink, Duration::from_millis(ms)),
            Action::Crash | Action::Stop | Action::CrashRotate(_) => {
                if matches!(a, Action::Stop) {
                    tailer.stop(sink, self.now, self.wall, Duration::ZERO);
                }
                // Lines of deleted files, or cut by copytruncate, that were never delivered are gone
                // with the process.
                let received: HashSet<&String> = sink.received.iter().collect();
                for k in 0..3 {
                    let deleted_generations = self.written[k]
                        .iter()
                        .filter(|l| !received.contains(l))
                        .cloned()
                        .collect::<Vec<_>>();
                    for l in deleted_generations {
                        if !self.in_some_file(&l) {
                            self.optional.insert(l);
                        }
                    }
                }
                self.restarts += 1;
                sink.unacked = 0;
                if let Action::CrashRotate(k) = *a {
                    self.down = true;
                    self.apply(&Action::Rotate(k), tailer, sink);
                    self.apply(&Action::Write(k, 2), tailer, sink);
                    self.down = false;
                }
                *tailer = Tailer::new(self.config());
                self.scan(tailer, sink);
            }
        }
    }

    /// Whether a line is still in a file the tailer can find (current or renamed; a copy made
    /// by copytruncate is a new file nobody tails).
    fn in_some_file(&self, line: &str) -> bool {
        let needle = format!("{line}\n");
        walk(&self.pods)
            .iter()
            .filter(|p| p.extension().is_none_or(|e| e != "copy"))
            .any(|p| fs::read_to_string(p).is_ok_and(|t| t.contains(&needle)))
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn run(actions: &[Action]) -> Result<(), TestCaseError> {
    let mut world = World::new();
    let mut sink = TestSink::new();
    let mut tailer = Tailer::new(world.config());
    world.scan(&mut tailer, &mut sink);
    for a in actions {
        world.apply(a, &mut tailer, &mut sink);
    }
    sink.mode = Mode::Accept;
    for _ in 0..20 {
        world.tick(&mut tailer, &mut sink, Duration::from_secs(2));
    }
    world.scan(&mut tailer, &mut sink);
    for _ in 0..10 {
        world.tick(&mut tailer, &mut sink, Duration::from_secs(2));
    }
    let stats = tailer.stats();
    let received: HashMap<&str, usize> = sink.received.iter().fold(HashMap::new(), |mut m, l| {
        *m.entry(l.as_str()).or_default() += 1;
        m
    });
    let all_written: HashSet<&str> = world.written.iter().flatten().map(String::as_str).collect();
    for l in received.keys() {
        prop_assert!(
            all_written.contains(l),
            "delivered but never written: {l:?}"
        );
    }
    for (k, lines) in world.written.iter().enumerate() {
        let mut last = None;
        let mut seen = HashSet::new();
        let position: HashMap<&str, usize> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        for l in &sink.received {
            let Some(&i) = position.get(l.as_str()) else {
                continue;
            };
            if !seen.insert(i) {
                continue;
            }
            prop_assert!(
                last.is_none_or(|p| p < i),
                "path {k}: {l:?} delivered out of order ({last:?} then {i})"
            );
            last = Some(i);
        }
        for l in lines {
            prop_assert!(
                received.contains_key(l.as_str()) || world.optional.contains(l),
                "path {k}: {l:?} never delivered; stats {stats:?}"
            );
        }
    }
    if world.restarts == 0 {
        for (l, n) in &received {
            prop_assert_eq!(*n, 1, "{:?} duplicated without a restart", l);
        }
    }
    let _ = fs::remove_dir_all(&world.dir);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn property_test_every_complete_line_is_delivered_in_order_across_rotations_and_restarts(
        actions in proptest::collection::vec(action(), 1..40)
    ) {
        run(&actions)?;
    }
}

#[test]
fn a_file_rotated_while_stopped_is_finished_from_its_offset_before_the_new_one() {
    use Action::*;
    run(&[
        Write(0, 5),
        Tick(1500),
        Sink(Mode::Hold),
        Write(0, 5),
        Tick(1500),
        CrashRotate(0),
        Write(0, 3),
    ])
    .unwrap();
}

#[test]
fn lines_held_by_a_failing_sink_are_delivered_once_it_recovers() {
    use Action::*;
    run(&[
        Sink(Mode::Fail),
        Write(1, 19),
        Tick(2000),
        Write(1, 19),
        Tick(2000),
        Rotate(1),
        Write(1, 4),
        Delete(1),
        Tick(2000),
    ])
    .unwrap();
}

#[test]
fn a_slow_sink_pauses_reading_instead_of_buffering_without_bound() {
    let mut world = World::new();
    let mut sink = TestSink::new();
    sink.mode = Mode::Hold;
    let mut tailer = Tailer::new(world.config());
    world.apply(&Action::Write(0, 19), &mut tailer, &mut sink);
    for _ in 0..30 {
        world.apply(&Action::Write(0, 19), &mut tailer, &mut sink);
        world.tick(&mut tailer, &mut sink, Duration::from_secs(2));
    }
    let held = tailer.stats();
    assert!(held.backpressure_pauses > 0, "{held:?}");
    // At most 3 payloads of 7 messages await the sink, plus one read of 64 bytes in the decoder.
    assert!(held.messages <= 3 * 7 + 8, "{held:?}");
    assert!(held.bytes_read < 31 * 19 * 6, "{held:?}");
    sink.mode = Mode::Accept;
    for _ in 0..400 {
        world.tick(&mut tailer, &mut sink, Duration::from_secs(2));
    }
    assert_eq!(sink.received, world.written[0]);
    let _ = fs::remove_dir_all(&world.dir);
}

#[test]
fn files_over_the_open_files_limit_wait_and_the_limit_is_counted() {
    let mut world = World::new();
    let mut sink = TestSink::new();
    let mut config = world.config();
    config.open_files_limit = 2;
    let mut tailer = Tailer::new(config);
    for k in 0..3 {
        world.apply(&Action::Write(k, 2), &mut tailer, &mut sink);
    }
    for _ in 0..5 {
        world.tick(&mut tailer, &mut sink, Duration::from_secs(2));
    }
    let stats = tailer.stats();
    assert!(stats.open_files_limit_reached >= 1, "{stats:?}");
    assert_eq!(stats.files_opened, 2);
    assert_eq!(stats.messages, 4);
    assert!(
        tailer
            .take_warnings()
            .iter()
            .any(|w| w.contains("DD_LOGS_CONFIG_OPEN_FILES_LIMIT"))
    );
    let _ = fs::remove_dir_all(&world.dir);
}

#[test]
fn excluded_files_are_never_opened_counted_once_each_and_logged_once_per_container() {
    use super::select::{ContainerFilter, Selection};
    let mut world = World::new();
    let mut sink = TestSink::new();
    let skip = world.pods.join("skip_web_u9/app");
    fs::create_dir_all(&skip).unwrap();
    fs::write(skip.join("0.log"), "old\n").unwrap();
    fs::write(skip.join("1.log"), "new\n").unwrap();
    let mut config = world.config();
    config.selection = Selection {
        filters: vec![ContainerFilter::parse(&[] as &[&str], &["kube_namespace:^skip$"]).unwrap()],
        ..Selection::collect_all()
    };
    let mut tailer = Tailer::new(config.clone());
    world.apply(&Action::Write(0, 2), &mut tailer, &mut sink);
    let mut warnings = Vec::new();
    for _ in 0..4 {
        world.scan(&mut tailer, &mut sink);
        warnings.extend(tailer.take_warnings());
    }
    let stats = tailer.stats();
    assert_eq!(stats.files_excluded, 2, "{stats:?}");
    assert_eq!(stats.files_opened, 1, "{stats:?}");
    assert_eq!(stats.messages, 2);
    let logged: Vec<_> = warnings.iter().filter(|w| w.contains("skip/web")).collect();
    assert_eq!(logged.len(), 1, "{warnings:?}");
    assert!(sink.received.iter().all(|m| m != "old" && m != "new"));

    // Collected in a first run, excluded after a restart: not resumed, not reopened.
    let mut sink = TestSink::new();
    tailer.stop(&mut sink, world.now, world.wall, Duration::ZERO);
    config.selection = Selection {
        filters: vec![ContainerFilter::parse(&[] as &[&str], &["name:^app$"]).unwrap()],
        ..Selection::collect_all()
    };
    let mut tailer = Tailer::new(config);
    world.scan(&mut tailer, &mut sink);
    let stats = tailer.stats();
    assert_eq!(
        (stats.files_resumed, stats.files_opened),
        (0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.files_excluded, 3, "{stats:?}");
    let _ = fs::remove_dir_all(&world.dir);
}

#[test]
fn a_pod_config_encoding_makes_that_containers_files_utf16_and_only_those() {
    use super::select::{PodLogConfigs, Selection};
    let mut world = World::new();
    let mut sink = TestSink::new();
    let utf16: Vec<u8> = "héllo\nwörld\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    fs::write(&world.paths[0], "plain\n").unwrap();
    fs::write(&world.paths[1], &utf16).unwrap();
    let mut config = world.config();
    config.selection = Selection {
        pods: PodLogConfigs::parse("p.yaml", "- {pod_name: pod1, encoding: utf-16-le}\n").unwrap(),
        ..Selection::collect_all()
    };
    let mut tailer = Tailer::new(config);
    for _ in 0..3 {
        world.scan(&mut tailer, &mut sink);
    }
    let (_, pos) = tailer.read_position(&world.paths[1]).unwrap();
    assert_eq!(
        pos,
        utf16.len() as u64,
        "offsets are byte offsets in the file"
    );
    tailer.stop(&mut sink, world.now, world.wall, Duration::ZERO);
    let mut received = sink.received.clone();
    received.sort();
    assert_eq!(received, ["héllo", "plain", "wörld"]);
    let _ = fs::remove_dir_all(&world.dir);
}
