//! The tailer: finds log files, reads them through rotations, batches their messages for the
//! sink and advances the registry only once the sink has accepted what was read.

use super::decoder::{Decoder, DecoderConfig};
use super::encoding::Encoding;
use super::intake::{BatchConfig, Batcher, SourceFields, encode_message};
use super::path::PodLogPath;
use super::registry::{Entry, Identity, Registry};
use super::rules::ProcessingRules;
use super::select::{Decision, PodLogConfig, Selection};
use crate::forward::Sink;
use crate::{Endpoint, Payload};
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Counters of the logs pipeline; every line, payload and file event lands in one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogsStats {
    /// Files opened for tailing (new, resumed, or the new file after a rotation).
    pub files_opened: u64,
    /// Files closed after being read to their end (rotated away or deleted).
    pub files_closed: u64,
    /// Files found at start-up from the registry and resumed at their offset (rotated ones
    /// included).
    pub files_resumed: u64,
    /// Registry entries whose file could not be found again (the file is gone).
    pub registry_entries_lost: u64,
    /// Rotations by rename (a new file at the path).
    pub rotations: u64,
    /// Truncations (copytruncate, or a file shorter than its offset): reading restarted at 0.
    pub truncations: u64,
    /// Scans that found more files than the open-files limit allows (files left untailed).
    pub open_files_limit_reached: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// Read, stat or open errors.
    pub io_errors: u64,
    /// Bytes of an unterminated last line of a rotated or deleted file, never completed.
    pub unterminated_bytes_dropped: u64,
    /// Messages encoded into batches.
    pub messages: u64,
    /// Messages larger than a batch's content limit, dropped.
    pub dropped_too_large: u64,
    /// Payloads handed to the sink.
    pub payloads_sent: u64,
    /// Payloads the sink has settled (delivered, or rejected / dropped and counted there).
    pub payloads_accepted: u64,
    /// Times the sink refused a payload (kept and offered again).
    pub send_errors: u64,
    /// Batches that could not be compressed (their messages are lost; counted here).
    pub compress_errors: u64,
    /// Ticks in which reading was paused because too many payloads await the sink.
    pub backpressure_pauses: u64,
    /// Registry writes, and failed ones.
    pub registry_writes: u64,
    /// Registry writes that failed (retried on the next tick).
    pub registry_write_errors: u64,
    /// Files not collected because a container include/exclude list excludes their container
    /// (never opened; each file counted once).
    pub files_excluded: u64,
    /// Files not collected because collect-all is off and no entry of the per-pod logs config
    /// file matches their container (never opened; each file counted once).
    pub files_not_configured: u64,
    /// Container include/exclude entries ignored because their prefix is not `name:`,
    /// `kube_namespace:` or `image:`.
    pub filter_entries_ignored: u64,
}

/// Settings of the tailer itself (see `LogsConfig` for the public ones).
#[derive(Debug, Clone)]
pub(crate) struct TailerConfig {
    pub(crate) pods_dir: PathBuf,
    pub(crate) run_dir: PathBuf,
    pub(crate) scan_period: Duration,
    pub(crate) open_files_limit: usize,
    pub(crate) batch: BatchConfig,
    pub(crate) rules: ProcessingRules,
    pub(crate) decoder: DecoderConfig,
    pub(crate) max_pending_payloads: usize,
    pub(crate) read_bytes: usize,
    pub(crate) registry_interval: Duration,
    pub(crate) hostname: String,
    pub(crate) selection: Selection,
}

/// One open file of a path.
#[derive(Debug)]
struct OpenFile {
    id: u64,
    file: File,
    identity: Identity,
    /// Bytes consumed from the file so far (its read position).
    pos: u64,
    /// Renamed away or deleted: read to its end, then closed.
    gone: bool,
    /// The modification time, and the tailer's time, when the first bytes were last compared
    /// with the fingerprint while the file's size equalled `pos` (see `check_truncation`).
    checked_mtime: Option<std::time::SystemTime>,
    checked_at: Option<Instant>,
}

/// Everything read from one path: the file being read and the files that replaced it.
#[derive(Debug)]
struct Tail {
    path: PathBuf,
    path_str: String,
    decoder: Decoder,
    fields: SourceFields,
    /// Global rules followed by the container's own.
    rules: ProcessingRules,
    /// The container's files' encoding (the pod config's, else the decoder config's).
    encoding: Encoding,
    /// Front: being read. Later ones: files that appeared at the path after rotations.
    files: VecDeque<OpenFile>,
    /// Seen by the current scan.
    seen: bool,
    last_mark: Option<(u64, u64)>,
}

/// A closed batch on its way to (or waiting in) the sink, with the registry updates its
/// acceptance allows.
#[derive(Debug)]
struct Unit {
    payload: Option<Payload>,
    marks: Vec<Mark>,
}

#[derive(Debug, Clone, Copy)]
enum Mark {
    Offset(u64, u64),
    Remove(u64),
}

/// The single-threaded tailing engine: call [`tick`](Tailer::tick) repeatedly.
#[derive(Debug)]
pub(crate) struct Tailer {
    config: TailerConfig,
    tails: Vec<Tail>,
    batcher: Batcher,
    /// Marks for messages in the open batch.
    open_marks: Vec<Mark>,
    /// Closed, not yet handed to the sink (front first).
    ready: VecDeque<Unit>,
    /// Handed to the sink, not yet settled (front first).
    in_flight: VecDeque<Unit>,
    registry: Registry,
    last_registry_write: Option<Instant>,
    next_scan: Option<Instant>,
    next_id: u64,
    stats: LogsStats,
    scratch: Vec<u8>,
    warnings: Vec<String>,
    /// Paths the selection skipped, as of the last scan (each counted once).
    skipped: HashSet<PathBuf>,
    /// Container directories whose skipping was logged, as of the last scan.
    skipped_containers: HashSet<PathBuf>,
    /// Whether the "no per-pod entry" warning was given.
    warned_not_configured: bool,
}

/// The service, source and tags of a file's messages: from the path, overridden and extended
/// by the per-pod entry that matched it.
fn json_tags(path: &str, config: Option<&PodLogConfig>) -> (String, String, String) {
    match PodLogPath::parse(path) {
        Some(p) => {
            let mut tags = p.tags();
            let (mut service, mut source) = (p.service(), p.source());
            if let Some(c) = config {
                service = c.service.as_deref().unwrap_or(service);
                source = c.source.as_deref().unwrap_or(source);
                tags.extend(c.tags.iter().cloned());
            }
            (service.to_string(), source.to_string(), tags.join(","))
        }
        None => {
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            (
                String::new(),
                String::new(),
                format!("filename:{name},dirname:{dir}"),
            )
        }
    }
}

impl Tailer {
    /// A tailer that resumes the files of the registry in the run directory.
    pub(crate) fn new(config: TailerConfig) -> Tailer {
        let (registry, saved, warning) = match Registry::load(&config.run_dir) {
            Ok((r, saved)) => (r, saved, None),
            Err(e) => (Registry::empty(&config.run_dir), Vec::new(), Some(e)),
        };
        let mut t = Tailer {
            batcher: Batcher::new(config.batch),
            config,
            tails: Vec::new(),
            open_marks: Vec::new(),
            ready: VecDeque::new(),
            in_flight: VecDeque::new(),
            registry,
            last_registry_write: None,
            next_scan: None,
            next_id: 1,
            stats: LogsStats::default(),
            scratch: Vec::new(),
            warnings: Vec::new(),
            skipped: HashSet::new(),
            skipped_containers: HashSet::new(),
            warned_not_configured: false,
        };
        for entry in t.config.selection.filters.iter().flat_map(|f| f.ignored()) {
            t.stats.filter_entries_ignored += 1;
            t.warnings.push(format!(
                "container filter entry {entry:?} ignored: it does not start with `name:`, \
                 `kube_namespace:` or `image:`"
            ));
        }
        if let Some(w) = warning {
            t.warnings.push(format!(
                "{w}; starting without a registry (files read from their start)"
            ));
        }
        t.resume(saved);
        t
    }

    pub(crate) fn stats(&self) -> LogsStats {
        self.stats
    }

    /// Warnings produced since the last call (the caller logs them).
    pub(crate) fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The id and read position of the newest file at `path` (tests: which lines were read).
    #[cfg(test)]
    pub(crate) fn read_position(&self, path: &Path) -> Option<(u64, u64)> {
        let tail = self.tails.iter().find(|t| t.path == path)?;
        tail.files.back().map(|f| (f.id, f.pos))
    }

    /// A tail for a file the selection collects; `None` when it skips it.
    fn new_tail(&self, path: PathBuf, path_str: String, start: u64) -> Option<Tail> {
        let Decision::Collect(config) = self.config.selection.decide(&path_str) else {
            return None;
        };
        let (service, source, tags) = json_tags(&path_str, config);
        let rules = match config {
            Some(c) => self.config.rules.clone().followed_by(c.rules.clone()),
            None => self.config.rules.clone(),
        };
        let encoding = config
            .and_then(|c| c.encoding)
            .unwrap_or(self.config.decoder.encoding());
        Some(Tail {
            fields: SourceFields::new(&self.config.hostname, &service, &source, &tags),
            decoder: self.decoder(&rules, encoding, start),
            rules,
            encoding,
            path,
            path_str,
            files: VecDeque::new(),
            seen: true,
            last_mark: None,
        })
    }

    fn decoder(&self, rules: &ProcessingRules, encoding: Encoding, start: u64) -> Decoder {
        Decoder::new(
            self.config
                .decoder
                .clone()
                .with_rules(rules.clone())
                .with_encoding(encoding)
                .with_start_offset(start),
        )
    }

    fn open_file(&mut self, file: File, identity: Identity, path: &str, start: u64) -> OpenFile {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(ID_STRIDE);
        self.registry.set(
            id,
            Entry {
                path: path.to_string(),
                identity,
                offset: start,
            },
        );
        self.stats.files_opened += 1;
        OpenFile {
            id,
            file,
            identity,
            pos: start,
            gone: false,
            checked_mtime: None,
            checked_at: None,
        }
    }

    /// Re-finds the files of the registry: at their path if the identity matches, else a file
    /// with the same device, inode and fingerprint in the same directory (a rotated file).
    fn resume(&mut self, saved: Vec<Entry>) {
        // Per tail, the files to resume in reading order, before they get ids.
        type Resumed = (File, Identity, String, u64, bool);
        let mut staged: Vec<Vec<Resumed>> = self.tails.iter().map(|_| Vec::new()).collect();
        for entry in saved {
            if !matches!(
                self.config.selection.decide(&entry.path),
                Decision::Collect(_)
            ) {
                // Excluded since it was read: counted and logged when a scan finds it.
                continue;
            }
            let path = PathBuf::from(&entry.path);
            let found = find_by_identity(&path, &entry.identity);
            let Some((mut file, at_path, same_content)) = found else {
                self.stats.registry_entries_lost += 1;
                continue;
            };
            let already = staged
                .iter()
                .flatten()
                .any(|(_, id, ..)| id.dev == entry.identity.dev && id.ino == entry.identity.ino);
            if already {
                // An older entry of the same file (before a truncation) was resumed already.
                continue;
            }
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let start = if size < entry.offset || !same_content {
                // Truncated (and maybe rewritten) while dogpipe was down.
                self.stats.truncations += 1;
                0
            } else {
                entry.offset
            };
            let identity = if same_content {
                entry.identity
            } else {
                Identity::of(&file).unwrap_or(entry.identity)
            };
            if file.seek(SeekFrom::Start(start)).is_err() {
                self.stats.io_errors += 1;
                continue;
            }
            let idx = match self.tails.iter().position(|t| t.path == path) {
                Some(i) => i,
                None => {
                    let Some(tail) = self.new_tail(path.clone(), entry.path.clone(), start) else {
                        continue;
                    };
                    self.tails.push(tail);
                    staged.push(Vec::new());
                    self.tails.len() - 1
                }
            };
            if let Some(files) = staged.get_mut(idx) {
                let gone = !at_path;
                let resumed = (file, identity, entry.path, start, gone);
                if gone {
                    // Rotated files (oldest first: the registry lists files in the order they
                    // were read) are read before the file now at the path.
                    let at = files.iter().position(|f| !f.4).unwrap_or(files.len());
                    files.insert(at, resumed);
                } else {
                    files.push(resumed);
                }
            }
        }
        // Ids (and so the registry's order) follow the order the files will be read in, so
        // that the next restart sees the same order even when a file's place changed (an
        // entry whose inode was reused by a newer file at the path).
        for (idx, files) in staged.into_iter().enumerate() {
            for (file, identity, path, start, gone) in files {
                let mut open = self.open_file(file, identity, &path, start);
                open.gone = gone;
                self.stats.files_resumed += 1;
                if let Some(tail) = self.tails.get_mut(idx) {
                    tail.files.push_back(open);
                }
            }
        }
        // The decoder starts where the first file to read resumes.
        for i in 0..self.tails.len() {
            let Some(tail) = self.tails.get(i) else {
                continue;
            };
            let Some(front) = tail.files.front() else {
                continue;
            };
            if tail.decoder.read_offset() != front.pos {
                let decoder = self.decoder(&tail.rules, tail.encoding, front.pos);
                if let Some(tail) = self.tails.get_mut(i) {
                    tail.decoder = decoder;
                }
            }
        }
    }

    /// One round: settle what the sink accepted, scan if due, read files (unless too much
    /// awaits the sink), send due batches, write the registry if due. `wall_ms` is the intake
    /// timestamp of messages encoded now.
    pub(crate) fn tick(&mut self, sink: &mut dyn Sink, now: Instant, wall_ms: u64) {
        self.settle(sink);
        self.offer(sink);
        if self.next_scan.is_none_or(|t| t <= now) {
            self.scan();
            self.next_scan = now.checked_add(self.config.scan_period);
        }
        if self.backlog() >= self.config.max_pending_payloads {
            self.stats.backpressure_pauses += 1;
        } else {
            self.read_all(now, wall_ms);
        }
        if self.batcher.is_due(now) {
            self.close_batch();
        }
        self.place_open_marks();
        self.offer(sink);
        self.settle(sink);
        let registry_due = self
            .last_registry_write
            .is_none_or(|t| now.saturating_duration_since(t) >= self.config.registry_interval);
        if registry_due && self.registry.is_dirty() {
            self.write_registry();
            self.last_registry_write = Some(now);
        }
    }

    /// Sends what is open, waits up to `max_wait` for the sink, and writes the registry.
    pub(crate) fn stop(
        &mut self,
        sink: &mut dyn Sink,
        now: Instant,
        wall_ms: u64,
        max_wait: Duration,
    ) {
        for tail in &mut self.tails {
            let Tail {
                decoder,
                fields,
                files,
                ..
            } = tail;
            let _ = files;
            let mut sink_state = Emit {
                batcher: &mut self.batcher,
                scratch: &mut self.scratch,
                open_marks: &mut self.open_marks,
                ready: &mut self.ready,
                stats: &mut self.stats,
                fields,
                now,
                wall_ms,
            };
            decoder.finish(now, |m| sink_state.message(m));
        }
        for i in 0..self.tails.len() {
            self.mark_settled(i);
        }
        self.close_batch();
        self.place_open_marks();
        self.offer(sink);
        sink.finish(max_wait);
        self.settle(sink);
        self.write_registry();
    }

    fn backlog(&self) -> usize {
        self.ready.len() + self.in_flight.len()
    }

    fn write_registry(&mut self) {
        match self.registry.write() {
            Ok(()) => self.stats.registry_writes += 1,
            Err(e) => {
                self.stats.registry_write_errors += 1;
                self.warnings.push(format!(
                    "cannot write the logs registry `{}`: {e}; check DD_LOGS_CONFIG_RUN_PATH",
                    self.registry.path().display()
                ));
            }
        }
    }

    /// Applies the marks of every unit the sink has settled.
    fn settle(&mut self, sink: &mut dyn Sink) {
        let pending = sink.pending(Endpoint::Logs);
        while self.in_flight.len() > pending {
            let Some(unit) = self.in_flight.pop_front() else {
                break;
            };
            self.stats.payloads_accepted += 1;
            apply(&mut self.registry, &unit.marks);
        }
    }

    /// Hands ready payloads to the sink, in order; stops at the first refusal.
    fn offer(&mut self, sink: &mut dyn Sink) {
        while let Some(unit) = self.ready.front_mut() {
            if let Some(payload) = unit.payload.as_ref() {
                match sink.send(payload.clone()) {
                    Ok(()) => self.stats.payloads_sent += 1,
                    Err(e) => {
                        self.stats.send_errors += 1;
                        self.warnings
                            .push(format!("the sink refused a logs payload: {e}; will retry"));
                        return;
                    }
                }
            }
            if let Some(mut unit) = self.ready.pop_front() {
                unit.payload = None;
                self.in_flight.push_back(unit);
            }
        }
    }

    fn close_batch(&mut self) {
        let marks = std::mem::take(&mut self.open_marks);
        match self.batcher.close() {
            Ok(Some((payload, _))) => self.ready.push_back(Unit {
                payload: Some(payload),
                marks,
            }),
            Ok(None) => self.open_marks = marks,
            Err(e) => {
                self.stats.compress_errors += 1;
                self.warnings
                    .push(format!("cannot compress a logs batch, dropped: {e}"));
                self.ready.push_back(Unit {
                    payload: None,
                    marks,
                });
            }
        }
    }

    /// With no open batch, marks go with the newest unit (or apply at once when nothing is
    /// pending): everything they cover was handed over already.
    fn place_open_marks(&mut self) {
        if !self.batcher.is_empty() || self.open_marks.is_empty() {
            return;
        }
        let marks = std::mem::take(&mut self.open_marks);
        if let Some(unit) = self.ready.back_mut() {
            unit.marks.extend(marks);
        } else if let Some(unit) = self.in_flight.back_mut() {
            unit.marks.extend(marks);
        } else {
            apply(&mut self.registry, &marks);
        }
    }

    fn mark_settled(&mut self, i: usize) {
        let Some(tail) = self.tails.get_mut(i) else {
            return;
        };
        let Some(front) = tail.files.front() else {
            return;
        };
        let mark = (front.id, tail.decoder.settled_offset());
        if tail.last_mark != Some(mark) {
            tail.last_mark = Some(mark);
            self.open_marks.push(Mark::Offset(mark.0, mark.1));
        }
    }

    fn read_all(&mut self, now: Instant, wall_ms: u64) {
        let mut i = 0;
        while i < self.tails.len() {
            if self.backlog() >= self.config.max_pending_payloads {
                self.stats.backpressure_pauses += 1;
                return;
            }
            self.check_truncation(i, now);
            let remove = self.read_tail(i, now, wall_ms);
            // Fingerprint what was just read of a file opened short (or empty).
            if let Some(pos) = self
                .tails
                .get(i)
                .and_then(|t| t.files.front())
                .map(|f| f.pos)
            {
                self.refresh_fingerprint(i, 0, pos);
            }
            self.mark_settled(i);
            if remove {
                if let Some(tail) = self.tails.get(i) {
                    if let Some(f) = tail.files.front() {
                        self.open_marks.push(Mark::Remove(f.id));
                    }
                }
                self.tails.remove(i);
                self.stats.files_closed += 1;
            } else {
                i += 1;
            }
        }
    }

    /// Reads one tail up to the read budget; returns whether it is finished (deleted and
    /// drained).
    fn read_tail(&mut self, i: usize, now: Instant, wall_ms: u64) -> bool {
        let mut budget = self.config.read_bytes;
        loop {
            let Some(tail) = self.tails.get_mut(i) else {
                return false;
            };
            let Tail {
                decoder,
                fields,
                files,
                ..
            } = tail;
            let Some(front) = files.front_mut() else {
                return true;
            };
            let mut emit = Emit {
                batcher: &mut self.batcher,
                scratch: &mut self.scratch,
                open_marks: &mut self.open_marks,
                ready: &mut self.ready,
                stats: &mut self.stats,
                fields,
                now,
                wall_ms,
            };
            let want = budget.min(self.config.read_bytes);
            let n = match decoder.read_from(&mut front.file, want, now, |m| emit.message(m)) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    emit.stats.io_errors += 1;
                    0
                }
            };
            front.pos = front.pos.saturating_add(n as u64);
            emit.stats.bytes_read = emit.stats.bytes_read.saturating_add(n as u64);
            budget = budget.saturating_sub(n);
            if n > 0 {
                let backlog = emit.ready.len() + self.in_flight.len();
                if budget == 0 || backlog >= self.config.max_pending_payloads {
                    return false;
                }
                continue;
            }
            // At the end of the front file.
            decoder.poll(now, |m| emit.message(m));
            if !front.gone {
                return false;
            }
            let finished = front.id;
            if files.len() > 1 {
                // Rotated: go on with the next file, keeping a pending partial line.
                let dropped = decoder.switch_file(files.get(1).map_or(0, |f| f.pos));
                emit.stats.unterminated_bytes_dropped += dropped as u64;
                files.pop_front();
                emit.stats.files_closed += 1;
                emit.open_marks.push(Mark::Remove(finished));
                // The next file is read from the next tick on, after `check_truncation` has
                // looked at it: it may have been truncated and rewritten meanwhile.
                return false;
            }
            // Deleted: emit what is pending, then the tail ends.
            decoder.finish(now, |m| emit.message(m));
            emit.stats.unterminated_bytes_dropped += decoder.pending_bytes() as u64;
            return true;
        }
    }

    /// Lists `*.log` files under the pods directory and updates the tails: new files, rotations,
    /// truncations, deletions, the open-files limit.
    fn scan(&mut self) {
        let mut found = Vec::new();
        if let Err(e) = list_logs(&self.config.pods_dir, 0, &mut found) {
            self.stats.io_errors += 1;
            self.warnings.push(format!(
                "cannot list `{}`: {e}; check DOGPIPE_POD_LOGS_DIR",
                self.config.pods_dir.display()
            ));
        }
        found.sort();
        for tail in &mut self.tails {
            tail.seen = false;
        }
        let mut over_limit = false;
        let mut skipped = HashSet::new();
        let mut skipped_containers = HashSet::new();
        for path in found {
            if let Some(i) = self.tails.iter().position(|t| t.path == path) {
                if let Some(t) = self.tails.get_mut(i) {
                    t.seen = true;
                }
                self.check_rotation(i);
                continue;
            }
            if self.skipped.contains(&path) {
                if let Some(dir) = path.parent() {
                    skipped_containers.insert(dir.to_path_buf());
                }
                skipped.insert(path);
                continue;
            }
            let Some(path_str) = path.to_str().map(str::to_owned) else {
                continue;
            };
            if !matches!(
                self.config.selection.decide(&path_str),
                Decision::Collect(_)
            ) {
                self.skip(&path, &path_str, &mut skipped_containers);
                skipped.insert(path);
                continue;
            }
            if self.tails.len() >= self.config.open_files_limit {
                over_limit = true;
                continue;
            }
            let opened = File::open(&path).and_then(|f| Identity::of(&f).map(|id| (f, id)));
            match opened {
                Ok((file, identity)) => {
                    let Some(mut tail) = self.new_tail(path, path_str.clone(), 0) else {
                        continue;
                    };
                    let open = self.open_file(file, identity, &path_str, 0);
                    tail.files.push_back(open);
                    self.tails.push(tail);
                }
                Err(_) => self.stats.io_errors += 1,
            }
        }
        self.skipped = skipped;
        self.skipped_containers = skipped_containers;
        if over_limit {
            self.stats.open_files_limit_reached += 1;
            self.warnings.push(format!(
                "more log files than the open-files limit ({}): some are not tailed; raise \
                 DD_LOGS_CONFIG_OPEN_FILES_LIMIT",
                self.config.open_files_limit
            ));
        }
        for tail in &mut self.tails {
            if !tail.seen {
                for f in &mut tail.files {
                    f.gone = true;
                }
            }
        }
    }

    /// Counts a file the selection skips (it is never opened) and logs its container once.
    fn skip(&mut self, path: &Path, path_str: &str, logged: &mut HashSet<PathBuf>) {
        let excluded = matches!(self.config.selection.decide(path_str), Decision::Excluded);
        if excluded {
            self.stats.files_excluded += 1;
        } else {
            self.stats.files_not_configured += 1;
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let first = !self.skipped_containers.contains(&dir) && !logged.contains(&dir);
        logged.insert(dir);
        if !first {
            return;
        }
        let container = PodLogPath::parse(path_str).map_or_else(
            || format!("`{path_str}`"),
            |p| {
                format!(
                    "container {} of pod {}/{}",
                    p.container(),
                    p.namespace(),
                    p.pod()
                )
            },
        );
        if excluded {
            self.warnings.push(format!(
                "{container}: logs not collected, excluded by DD_CONTAINER_EXCLUDE[_LOGS] \
                 (or DD_AC_EXCLUDE)"
            ));
        } else if !self.warned_not_configured {
            self.warned_not_configured = true;
            self.warnings.push(format!(
                "{container}: logs not collected, no entry of DOGPIPE_LOGS_CONFIG_FILE matches \
                 it and DD_LOGS_CONFIG_CONTAINER_COLLECT_ALL is false (other such files are \
                 only counted, in files_not_configured)"
            ));
        }
    }

    /// Compares the newest file of tail `i` with what is at its path now.
    fn check_rotation(&mut self, i: usize) {
        let Some(tail) = self.tails.get(i) else {
            return;
        };
        let path = tail.path.clone();
        let path_str = tail.path_str.clone();
        let Ok(meta) = fs::metadata(&path) else {
            return;
        };
        let Some(newest) = tail.files.back() else {
            return;
        };
        let same_inode = newest.identity.dev == meta.dev() && newest.identity.ino == meta.ino();
        if !same_inode {
            let opened = File::open(&path).and_then(|f| Identity::of(&f).map(|id| (f, id)));
            let Ok((file, identity)) = opened else {
                self.stats.io_errors += 1;
                return;
            };
            let open = self.open_file(file, identity, &path_str, 0);
            self.stats.rotations += 1;
            if let Some(tail) = self.tails.get_mut(i) {
                for old in &mut tail.files {
                    old.gone = true;
                }
                tail.files.push_back(open);
            }
            return;
        }
        // Same inode: truncated (shorter than read, or first bytes rewritten)?
        let is_front = tail.files.len() == 1;
        let (pos, content_ok) = match tail.files.back() {
            Some(f) => (f.pos, f.identity.content_matches(&f.file).unwrap_or(false)),
            None => return,
        };
        if meta.len() < pos || !content_ok {
            let newest = tail.files.len().saturating_sub(1);
            self.restart_truncated(i, newest);
            return;
        }
        let _ = is_front;
        let newest = tail.files.len().saturating_sub(1);
        self.refresh_fingerprint(i, newest, meta.len());
    }

    /// Fingerprints file `j` of tail `i` again when it was fingerprinted while shorter than
    /// the fingerprint and now has `len` bytes: a file opened empty (just created by a
    /// rotation) would otherwise match any content, and a truncation that rewrites it to the
    /// same size would go unseen.
    fn refresh_fingerprint(&mut self, i: usize, j: usize, len: u64) {
        let Some(tail) = self.tails.get_mut(i) else {
            return;
        };
        let path = tail.path_str.clone();
        let Some(f) = tail.files.get_mut(j) else {
            return;
        };
        if f.identity.fp_len >= super::registry::FINGERPRINT_BYTES as u64
            || len <= f.identity.fp_len
        {
            return;
        }
        if let Ok(id) = Identity::of(&f.file) {
            f.identity = id;
            let entry = Entry {
                path,
                identity: id,
                offset: self.registry.entries.get(&f.id).map_or(0, |e| e.offset),
            };
            self.registry.set(f.id, entry);
        }
    }

    /// Before reading new bytes of a tail's only file: was it truncated and rewritten (shorter
    /// than what was read, or its first bytes changed)? Checked on the open handle, so that
    /// bytes of the new content are never read from the old position.
    fn check_truncation(&mut self, i: usize, now: Instant) {
        let Some(tail) = self.tails.get(i) else {
            return;
        };
        let Some(f) = tail.files.front() else {
            return;
        };
        let Ok(meta) = f.file.metadata() else {
            return;
        };
        // Without new bytes, the file may still have been truncated and rewritten to exactly
        // the size already read: check its first bytes when it goes away, when its mtime
        // changed since the last check, and at least every `CONTENT_RECHECK` of the tailer's
        // time (mtimes are coarse: two writes within a few milliseconds can share one). An
        // idle file costs one small read per `CONTENT_RECHECK`.
        let modified = meta.modified().ok();
        let same_size = meta.len() == f.pos && f.pos > 0;
        let due = f
            .checked_at
            .is_none_or(|t| now.saturating_duration_since(t) >= CONTENT_RECHECK);
        let check_content =
            meta.len() > f.pos || (same_size && (f.gone || due || modified != f.checked_mtime));
        let truncated = meta.len() < f.pos
            || (check_content && !f.identity.content_matches(&f.file).unwrap_or(true));
        if truncated {
            self.restart_truncated(i, 0);
            return;
        }
        if same_size && check_content {
            if let Some(f) = self.tails.get_mut(i).and_then(|t| t.files.front_mut()) {
                f.checked_mtime = modified;
                f.checked_at = Some(now);
            }
        }
    }

    /// Copytruncate: the file restarts at 0 under a new registry id (marks of the old content
    /// then only ever touch the old id, which is removed).
    fn restart_truncated(&mut self, i: usize, j: usize) {
        self.stats.truncations += 1;
        let Some(tail) = self.tails.get_mut(i) else {
            return;
        };
        let path_str = tail.path_str.clone();
        let is_front = j == 0;
        let Some(mut old) = tail.files.remove(j) else {
            return;
        };
        let gone = old.gone;
        if old.file.seek(SeekFrom::Start(0)).is_err() {
            self.stats.io_errors += 1;
        }
        let identity = Identity::of(&old.file).unwrap_or(old.identity);
        self.open_marks.push(Mark::Remove(old.id));
        let mut open = self.open_file(old.file, identity, &path_str, 0);
        // The file keeps its place among the files of its path, and its id keeps its place in
        // the registry's order (the order a restart reads rotated files in): the old id plus
        // one, unless the stride is used up.
        let next = old.id.saturating_add(1);
        if next % ID_STRIDE != 0 && !self.registry.entries.contains_key(&next) {
            if let Some(entry) = self.registry.entries.get(&open.id).cloned() {
                self.registry.remove(open.id);
                self.registry.set(next, entry);
                open.id = next;
            }
        }
        open.gone = gone;
        if let Some(tail) = self.tails.get_mut(i) {
            if is_front {
                let dropped = tail.decoder.switch_file(0);
                self.stats.unterminated_bytes_dropped += dropped as u64;
                tail.last_mark = None;
            }
            let at = j.min(tail.files.len());
            tail.files.insert(at, open);
        }
    }
}

fn apply(registry: &mut Registry, marks: &[Mark]) {
    for mark in marks {
        match *mark {
            Mark::Offset(id, offset) => registry.set_offset(id, offset),
            Mark::Remove(id) => registry.remove(id),
        }
    }
}

/// Ids of newly opened files are this far apart, so that a file restarted by a truncation
/// takes the next id after its old one and the registry's id order stays the reading order.
const ID_STRIDE: u64 = 1 << 20;

/// How often, at most, the first bytes of a file whose size did not change are compared with its
/// fingerprint when its mtime did not change either (see `check_truncation`).
const CONTENT_RECHECK: Duration = Duration::from_secs(1);

/// Finds the file of a registry entry by device and inode: at its path, else in the same
/// directory (a file renamed by a rotation). Returns the file, whether it is at its path, and
/// whether its first bytes still match the fingerprint (else it was truncated and rewritten, or
/// the inode was reused: either way it is read from the start).
fn find_by_identity(path: &Path, identity: &Identity) -> Option<(File, bool, bool)> {
    let open = |p: &Path| -> Option<(File, bool)> {
        let meta = fs::metadata(p).ok()?;
        if meta.dev() != identity.dev || meta.ino() != identity.ino {
            return None;
        }
        let f = File::open(p).ok()?;
        let same = identity.content_matches(&f).unwrap_or(false);
        Some((f, same))
    };
    if let Some((f, same)) = open(path) {
        return Some((f, true, same));
    }
    let dir = path.parent()?;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p != path {
            if let Some((f, same)) = open(&p) {
                return Some((f, false, same));
            }
        }
    }
    None
}

/// `*.log` files under `dir`, a few directory levels deep (the pods layout has two).
fn list_logs(dir: &Path, depth: u32, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() && depth < 4 {
            // A pod directory that vanished meanwhile is fine.
            let _ = list_logs(&path, depth + 1, out);
        } else if (kind.is_file() || kind.is_symlink())
            && path.extension().is_some_and(|e| e == "log")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Where the decoder's messages go: encoded into the open batch, closing it when full.
struct Emit<'a> {
    batcher: &'a mut Batcher,
    scratch: &'a mut Vec<u8>,
    open_marks: &'a mut Vec<Mark>,
    ready: &'a mut VecDeque<Unit>,
    stats: &'a mut LogsStats,
    fields: &'a SourceFields,
    now: Instant,
    wall_ms: u64,
}

impl Emit<'_> {
    fn message(&mut self, m: super::LogMessage<'_>) {
        self.scratch.clear();
        encode_message(
            self.scratch,
            m.content(),
            m.status(),
            self.wall_ms,
            self.fields,
        );
        match self.batcher.must_close_before(self.scratch.len()) {
            None => {
                self.stats.dropped_too_large += 1;
                return;
            }
            Some(true) => {
                let marks = std::mem::take(self.open_marks);
                match self.batcher.close() {
                    Ok(Some((payload, _))) => self.ready.push_back(Unit {
                        payload: Some(payload),
                        marks,
                    }),
                    Ok(None) => *self.open_marks = marks,
                    Err(_) => {
                        self.stats.compress_errors += 1;
                        self.ready.push_back(Unit {
                            payload: None,
                            marks,
                        });
                    }
                }
            }
            Some(false) => {}
        }
        self.batcher.push(self.scratch, self.now);
        self.stats.messages += 1;
    }
}
