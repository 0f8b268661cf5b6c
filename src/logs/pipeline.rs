//! The logs pipeline's entry point: configuration from settings, a tailing thread, a handle.

use super::decoder::DecoderConfig;
use super::intake::BatchConfig;
use super::rules::{ProcessingRules, RuleScope};
use super::select::{ContainerFilter, PodLogConfigs, Selection, SelectionError};
use super::tailer::{LogsStats, Tailer, TailerConfig};
use crate::forward::Sink;
use crate::{Compression, ConfigError, Settings};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default of [`LogsConfig::with_pods_dir`].
pub const DEFAULT_POD_LOGS_DIR: &str = "/var/log/pods";
/// Default of [`LogsConfig::with_run_path`].
pub const DEFAULT_RUN_PATH: &str = "/opt/dogpipe/run";

/// Settings of the logs pipeline.
#[derive(Debug, Clone)]
pub struct LogsConfig {
    enabled: bool,
    pods_dir: PathBuf,
    run_path: PathBuf,
    scan_period: Duration,
    open_files_limit: usize,
    batch: BatchConfig,
    rules: ProcessingRules,
    decoder: DecoderConfig,
    max_pending_payloads: usize,
    logs_url: Option<String>,
    stop_wait: Duration,
    collect_all: bool,
    container_filter: ContainerFilter,
    logs_container_filter: ContainerFilter,
    pod_configs: PodLogConfigs,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: false,
            pods_dir: PathBuf::from(DEFAULT_POD_LOGS_DIR),
            run_path: PathBuf::from(DEFAULT_RUN_PATH),
            scan_period: Duration::from_secs(10),
            open_files_limit: 500,
            batch: BatchConfig::default(),
            rules: ProcessingRules::default(),
            decoder: DecoderConfig::default(),
            max_pending_payloads: 10,
            logs_url: None,
            stop_wait: Duration::from_secs(10),
            collect_all: false,
            container_filter: ContainerFilter::default(),
            logs_container_filter: ContainerFilter::default(),
            pod_configs: PodLogConfigs::default(),
        }
    }
}

fn invalid(name: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

impl LogsConfig {
    /// Reads `DD_LOGS_ENABLED`, `DOGPIPE_POD_LOGS_DIR`, `DD_LOGS_CONFIG_RUN_PATH`,
    /// `DD_LOGS_CONFIG_FILE_SCAN_PERIOD` (s), `DD_LOGS_CONFIG_BATCH_WAIT` (s),
    /// `DD_LOGS_CONFIG_OPEN_FILES_LIMIT`, `DD_LOGS_CONFIG_COMPRESSION_KIND` (`zstd` or `gzip`),
    /// `DD_LOGS_CONFIG_LOGS_DD_URL`, `DD_LOGS_CONFIG_PROCESSING_RULES` (a JSON array),
    /// `DD_LOGS_CONFIG_CONTAINER_COLLECT_ALL`, the container lists `DD_CONTAINER_INCLUDE` /
    /// `DD_CONTAINER_EXCLUDE` (each falling back to the legacy `DD_AC_INCLUDE` / `DD_AC_EXCLUDE`
    /// when empty) and `DD_CONTAINER_INCLUDE_LOGS` / `DD_CONTAINER_EXCLUDE_LOGS`, and the
    /// per-pod logs config file `DOGPIPE_LOGS_CONFIG_FILE` (read here).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting whose value is not understood (an include or
    /// exclude entry whose regex does not compile among them), [`ConfigError::File`] naming the
    /// per-pod logs config file, and the entry, when it cannot be used.
    pub fn from_settings(settings: &Settings) -> Result<LogsConfig, ConfigError> {
        let mut c = LogsConfig::default();
        if let Some(on) = settings.bool("logs_enabled")? {
            c.enabled = on;
        }
        if let Some(dir) = settings.string("dogpipe_pod_logs_dir") {
            c.pods_dir = dir.into();
        }
        if let Some(dir) = settings.string("logs_config.run_path") {
            c.run_path = dir.into();
        }
        let seconds = |key: &str| {
            settings.parsed(key, "a positive number of seconds", |s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e9)
                    .map(Duration::from_secs_f64)
            })
        };
        if let Some(d) = seconds("logs_config.file_scan_period")? {
            c.scan_period = d;
        }
        if let Some(d) = seconds("logs_config.batch_wait")? {
            c.batch = c.batch.with_wait(d);
        }
        if let Some(n) = settings.u64("logs_config.open_files_limit")? {
            c.open_files_limit = usize::try_from(n).unwrap_or(usize::MAX).max(1);
        }
        if let Some(kind) = settings.string("logs_config.compression_kind") {
            let compression = match kind.trim() {
                "zstd" => Compression::default(),
                "gzip" => Compression::GZIP_DEFAULT,
                other => {
                    return Err(invalid(
                        "DD_LOGS_CONFIG_COMPRESSION_KIND",
                        other,
                        "`zstd` or `gzip`",
                    ));
                }
            };
            c.batch = c.batch.with_compression(compression);
        }
        c.logs_url = settings.string("logs_config.logs_dd_url");
        if let Some(json) = settings.string("logs_config.processing_rules") {
            c.rules = ProcessingRules::from_json(&json, RuleScope::Global).map_err(|e| {
                invalid(
                    "DD_LOGS_CONFIG_PROCESSING_RULES",
                    &json,
                    &format!("a JSON array of processing rules ({e})"),
                )
            })?;
        }
        let list = |key: &str| settings.list(key).unwrap_or_default();
        let with_fallback = |key: &'static str, legacy: &'static str| {
            let new = list(key);
            if new.is_empty() {
                (legacy, list(legacy))
            } else {
                (key, new)
            }
        };
        let filter = |(include_key, include): (&str, Vec<String>),
                      (exclude_key, exclude): (&str, Vec<String>)| {
            ContainerFilter::parse(&include, &exclude).map_err(|e| {
                let SelectionError::InvalidFilter { entry, reason } = &e else {
                    return invalid(include_key, "", &e.to_string());
                };
                let key = if include.contains(entry) {
                    include_key
                } else {
                    exclude_key
                };
                invalid(
                    &settings.source_name(key),
                    entry,
                    &format!(
                        "`name:`, `kube_namespace:` or `image:` followed by a regular \
                         expression ({reason})"
                    ),
                )
            })
        };
        c.container_filter = filter(
            with_fallback("container_include", "ac_include"),
            with_fallback("container_exclude", "ac_exclude"),
        )?;
        c.logs_container_filter = filter(
            ("container_include_logs", list("container_include_logs")),
            ("container_exclude_logs", list("container_exclude_logs")),
        )?;
        if let Some(on) = settings.bool("logs_config.container_collect_all")? {
            c.collect_all = on;
        }
        if let Some(path) = settings.string("dogpipe_logs_config_file") {
            c.pod_configs = PodLogConfigs::load(Path::new(&path)).map_err(|e| match e {
                SelectionError::PodConfig {
                    path,
                    entry: Some(i),
                    reason,
                } => ConfigError::File {
                    path,
                    reason: format!("entry #{i}: {reason} (DOGPIPE_LOGS_CONFIG_FILE)"),
                },
                SelectionError::PodConfig { path, reason, .. } => ConfigError::File {
                    path,
                    reason: format!("{reason} (DOGPIPE_LOGS_CONFIG_FILE)"),
                },
                other => ConfigError::File {
                    path: path.clone(),
                    reason: other.to_string(),
                },
            })?;
        }
        Ok(c)
    }

    /// Whether every container's logs are collected (`DD_LOGS_CONFIG_CONTAINER_COLLECT_ALL`),
    /// minus the excluded ones. When false, only containers matched by an entry of the per-pod
    /// configs ([`with_pod_configs`](Self::with_pod_configs)) are collected, as the Agent
    /// collects only containers with a logs annotation. Defaults to false, the Agent's default.
    pub fn with_container_collect_all(mut self, all: bool) -> Self {
        self.collect_all = all;
        self
    }

    /// The global container filter (`DD_CONTAINER_INCLUDE` / `DD_CONTAINER_EXCLUDE`). A file is
    /// not collected when this filter or the
    /// [logs one](Self::with_logs_container_filter) excludes its container. Defaults to an
    /// empty filter (nothing excluded).
    pub fn with_container_filter(mut self, filter: ContainerFilter) -> Self {
        self.container_filter = filter;
        self
    }

    /// The logs-only container filter (`DD_CONTAINER_INCLUDE_LOGS` /
    /// `DD_CONTAINER_EXCLUDE_LOGS`). Defaults to an empty filter (nothing excluded).
    pub fn with_logs_container_filter(mut self, filter: ContainerFilter) -> Self {
        self.logs_container_filter = filter;
        self
    }

    /// Per-pod logs configs (`DOGPIPE_LOGS_CONFIG_FILE`): source, service, tags and processing
    /// rules by container, and which containers are collected when collect-all is off.
    /// Defaults to none.
    pub fn with_pod_configs(mut self, configs: PodLogConfigs) -> Self {
        self.pod_configs = configs;
        self
    }

    /// Whether logs are collected (`DD_LOGS_ENABLED`). Defaults to false.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The directory scanned for `*.log` files. Defaults to `/var/log/pods`.
    pub fn with_pods_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pods_dir = dir.into();
        self
    }

    /// The directory holding `registry.json`. Defaults to `/opt/dogpipe/run`.
    pub fn with_run_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.run_path = dir.into();
        self
    }

    /// How often the pods directory is listed and rotations are checked. Defaults to 10 s.
    pub fn with_scan_period(mut self, period: Duration) -> Self {
        self.scan_period = period;
        self
    }

    /// Most files tailed at once (at least 1). Defaults to 500.
    pub fn with_open_files_limit(mut self, limit: usize) -> Self {
        self.open_files_limit = limit.max(1);
        self
    }

    /// Batching and compression. Defaults to [`BatchConfig::default`].
    pub fn with_batch(mut self, batch: BatchConfig) -> Self {
        self.batch = batch;
        self
    }

    /// Global processing rules, applied to every file. Defaults to none.
    pub fn with_rules(mut self, rules: ProcessingRules) -> Self {
        self.rules = rules;
        self
    }

    /// Decoder settings (format, maximum message size, aggregation timeout); its rules are
    /// replaced by [`with_rules`](Self::with_rules). Defaults to [`DecoderConfig::default`].
    pub fn with_decoder(mut self, decoder: DecoderConfig) -> Self {
        self.decoder = decoder;
        self
    }

    /// Most payloads closed but not yet accepted by the sink; beyond it tailers stop reading.
    /// Defaults to 10.
    pub fn with_max_pending_payloads(mut self, n: usize) -> Self {
        self.max_pending_payloads = n.max(1);
        self
    }

    /// How long [`LogsHandle::stop`] waits for the sink to deliver. Defaults to 10 s.
    pub fn with_stop_wait(mut self, wait: Duration) -> Self {
        self.stop_wait = wait;
        self
    }

    /// Whether logs are collected.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The logs intake URL to build the sink's forwarder with (`DD_LOGS_CONFIG_LOGS_DD_URL`),
    /// if set; else use `https://agent-http-intake.logs.<site>`.
    pub fn logs_url(&self) -> Option<&str> {
        self.logs_url.as_deref()
    }

    /// The pods directory.
    pub fn pods_dir(&self) -> &Path {
        &self.pods_dir
    }

    /// The run directory.
    pub fn run_path(&self) -> &Path {
        &self.run_path
    }

    pub(crate) fn tailer_config(&self, hostname: &str) -> TailerConfig {
        TailerConfig {
            pods_dir: self.pods_dir.clone(),
            run_dir: self.run_path.clone(),
            scan_period: self.scan_period,
            open_files_limit: self.open_files_limit,
            batch: self.batch,
            rules: self.rules.clone(),
            decoder: self.decoder.clone(),
            max_pending_payloads: self.max_pending_payloads,
            read_bytes: 256 << 10,
            registry_interval: Duration::from_secs(1),
            hostname: hostname.to_string(),
            selection: Selection {
                collect_all: self.collect_all,
                filters: vec![
                    self.container_filter.clone(),
                    self.logs_container_filter.clone(),
                ],
                pods: self.pod_configs.clone(),
            },
        }
    }
}

/// Container log collection: tails the pods directory on a thread of its own and ships
/// batches to a sink.
///
/// ```no_run
/// use dogpipe::{FileSink, LogsConfig, LogsPipeline};
///
/// let config = LogsConfig::default()
///     .with_container_collect_all(true)
///     .with_pods_dir("/var/log/pods")
///     .with_run_path("/tmp/dogpipe-run");
/// let sink = FileSink::create("/tmp/dogpipe-out")?;
/// let handle = LogsPipeline::start(config, Box::new(sink), "node-1");
/// // …
/// let stats = handle.stop();
/// println!("{} messages", stats.messages);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LogsPipeline;

/// A running [`LogsPipeline`].
#[derive(Debug)]
pub struct LogsHandle {
    stop: crossbeam_channel::Sender<()>,
    stats: Arc<Mutex<LogsStats>>,
    thread: Option<JoinHandle<LogsStats>>,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How long the thread sleeps when a tick found nothing to read.
const IDLE_SLEEP: Duration = Duration::from_millis(50);

impl LogsPipeline {
    /// Starts tailing (resuming from the registry in the run directory). Warnings (unreadable
    /// directories, the open-files limit, sink refusals, skipped containers, nothing selected)
    /// go to stderr.
    pub fn start(config: LogsConfig, mut sink: Box<dyn Sink + Send>, hostname: &str) -> LogsHandle {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let stats = Arc::new(Mutex::new(LogsStats::default()));
        let shared = Arc::clone(&stats);
        if !config.collect_all && config.pod_configs.is_empty() {
            eprintln!(
                "dogpipe logs: DD_LOGS_CONFIG_CONTAINER_COLLECT_ALL is false and no \
                 DOGPIPE_LOGS_CONFIG_FILE entry selects containers: no container logs are \
                 collected"
            );
        }
        let tailer_config = config.tailer_config(hostname);
        let stop_wait = config.stop_wait;
        let thread = std::thread::Builder::new()
            .name("dogpipe-logs".into())
            .spawn(move || {
                let mut tailer = Tailer::new(tailer_config);
                loop {
                    let before = tailer.stats().bytes_read;
                    tailer.tick(sink.as_mut(), Instant::now(), wall_ms());
                    for w in tailer.take_warnings() {
                        eprintln!("dogpipe logs: {w}");
                    }
                    let now = tailer.stats();
                    if let Ok(mut s) = shared.lock() {
                        *s = now;
                    }
                    let idle = now.bytes_read == before;
                    let wait = if idle { IDLE_SLEEP } else { Duration::ZERO };
                    match stopped.recv_timeout(wait) {
                        Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    }
                }
                tailer.stop(sink.as_mut(), Instant::now(), wall_ms(), stop_wait);
                for w in tailer.take_warnings() {
                    eprintln!("dogpipe logs: {w}");
                }
                tailer.stats()
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("dogpipe logs: cannot start the logs thread: {e}");
                None
            }
        };
        LogsHandle {
            stop,
            stats,
            thread,
        }
    }
}

impl LogsHandle {
    /// Counters as of the last round.
    pub fn stats(&self) -> LogsStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Stops reading, sends what is batched (waiting for the sink up to the configured stop
    /// wait), writes the registry a last time and returns the final counters.
    pub fn stop(mut self) -> LogsStats {
        let _ = self.stop.try_send(());
        let last = self.stats();
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or(last)
    }
}

impl Drop for LogsHandle {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::new(vars, None).unwrap()
    }

    #[test]
    fn settings_configure_the_pipeline_and_bad_values_name_the_variable() {
        let c = LogsConfig::from_settings(&settings(&[
            ("DD_LOGS_ENABLED", "true"),
            ("DOGPIPE_POD_LOGS_DIR", "/pods"),
            ("DD_LOGS_CONFIG_RUN_PATH", "/run/x"),
            ("DD_LOGS_CONFIG_FILE_SCAN_PERIOD", "2"),
            ("DD_LOGS_CONFIG_BATCH_WAIT", "0.5"),
            ("DD_LOGS_CONFIG_OPEN_FILES_LIMIT", "3"),
            ("DD_LOGS_CONFIG_COMPRESSION_KIND", "gzip"),
            ("DD_LOGS_CONFIG_LOGS_DD_URL", "http://127.0.0.1:1"),
        ]))
        .unwrap();
        assert!(c.enabled());
        assert_eq!(c.pods_dir(), Path::new("/pods"));
        assert_eq!(c.run_path(), Path::new("/run/x"));
        assert_eq!(c.scan_period, Duration::from_secs(2));
        assert_eq!(c.batch.wait(), Duration::from_millis(500));
        assert_eq!(c.open_files_limit, 3);
        assert_eq!(c.batch.compression(), Compression::GZIP_DEFAULT);
        assert_eq!(c.logs_url(), Some("http://127.0.0.1:1"));
        let d = LogsConfig::from_settings(&settings(&[])).unwrap();
        assert!(!d.enabled());
        assert_eq!(d.pods_dir(), Path::new("/var/log/pods"));
        assert_eq!(d.run_path(), Path::new("/opt/dogpipe/run"));
        let e = LogsConfig::from_settings(&settings(&[("DD_LOGS_CONFIG_COMPRESSION_KIND", "lz4")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("DD_LOGS_CONFIG_COMPRESSION_KIND"),
            "{e}"
        );
        let e = LogsConfig::from_settings(&settings(&[("DD_LOGS_CONFIG_PROCESSING_RULES", "[{")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("DD_LOGS_CONFIG_PROCESSING_RULES"),
            "{e}"
        );
    }

    fn excluded(c: &LogsConfig, namespace: &str, name: &str) -> bool {
        let path = format!("/var/log/pods/{namespace}_p_u/{name}/0.log");
        matches!(
            c.tailer_config("h").selection.decide(&path),
            super::super::select::Decision::Excluded
        )
    }

    #[test]
    fn container_lists_come_from_the_new_keys_else_the_legacy_ones() {
        let c = LogsConfig::from_settings(&settings(&[
            ("DD_AC_EXCLUDE", "name:legacy"),
            ("DD_AC_INCLUDE", "name:x"),
            ("DD_CONTAINER_EXCLUDE", "name:new kube_namespace:^kube-"),
        ]))
        .unwrap();
        assert!(excluded(&c, "default", "new"));
        assert!(excluded(&c, "kube-system", "y"));
        assert!(
            !excluded(&c, "kube-system", "x"),
            "the legacy include is used while the new one is empty"
        );
        assert!(!excluded(&c, "default", "legacy"), "legacy exclude ignored");
        let c = LogsConfig::from_settings(&settings(&[
            ("DD_AC_EXCLUDE", "name:legacy"),
            ("DD_CONTAINER_EXCLUDE", ""),
        ]))
        .unwrap();
        assert!(
            excluded(&c, "default", "legacy"),
            "an empty new key falls back"
        );
        let c = LogsConfig::from_settings(&settings(&[
            ("DD_CONTAINER_EXCLUDE_LOGS", "kube_namespace:.*"),
            ("DD_CONTAINER_INCLUDE_LOGS", "name:^app$"),
        ]))
        .unwrap();
        assert!(excluded(&c, "ns", "sidecar"));
        assert!(!excluded(&c, "ns", "app"));
    }

    #[test]
    fn container_lists_are_read_from_yaml_sequences() {
        let s = Settings::new(
            Vec::new(),
            Some((
                "datadog.yaml",
                "container_exclude_logs: [\"name:a\", \"name:b\"]\nlogs_config:\n  container_collect_all: true\n",
            )),
        )
        .unwrap();
        let c = LogsConfig::from_settings(&s).unwrap();
        assert!(c.collect_all);
        assert!(excluded(&c, "ns", "a") && excluded(&c, "ns", "b"));
        assert!(!excluded(&c, "ns", "c"));
        let s = Settings::new(
            Vec::new(),
            Some(("datadog.yaml", "container_include:\n  - \"name:(\"\n")),
        )
        .unwrap();
        let e = LogsConfig::from_settings(&s).unwrap_err();
        assert!(
            e.to_string().starts_with("container_include=\"name:(\""),
            "the file key is named: {e}"
        );
    }

    #[test]
    fn an_invalid_container_regex_names_the_variable_and_the_entry() {
        for var in [
            "DD_CONTAINER_EXCLUDE",
            "DD_CONTAINER_INCLUDE",
            "DD_AC_EXCLUDE",
            "DD_CONTAINER_EXCLUDE_LOGS",
            "DD_CONTAINER_INCLUDE_LOGS",
        ] {
            let e =
                LogsConfig::from_settings(&settings(&[(var, "name:ok image:[z-a]")])).unwrap_err();
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("{var}=\"image:[z-a]\"")),
                "{text}"
            );
        }
    }

    #[test]
    fn collect_all_defaults_to_false_and_the_pod_config_file_is_loaded() {
        let c = LogsConfig::from_settings(&settings(&[])).unwrap();
        assert!(!c.collect_all);
        let dir = std::env::temp_dir().join(format!("dogpipe-logs-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.yaml");
        std::fs::write(&good, "- {container_name: app, source: s}\n").unwrap();
        let c = LogsConfig::from_settings(&settings(&[
            ("DOGPIPE_LOGS_CONFIG_FILE", good.to_str().unwrap()),
            ("DD_LOGS_CONFIG_CONTAINER_COLLECT_ALL", "true"),
        ]))
        .unwrap();
        assert!(c.collect_all);
        assert_eq!(c.pod_configs.len(), 1);
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "- {container_name: app}\n- {pods: x}\n").unwrap();
        let e = LogsConfig::from_settings(&settings(&[(
            "DOGPIPE_LOGS_CONFIG_FILE",
            bad.to_str().unwrap(),
        )]))
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains(bad.to_str().unwrap()), "{text}");
        assert!(text.contains("entry #1"), "{text}");
        let e = LogsConfig::from_settings(&settings(&[(
            "DOGPIPE_LOGS_CONFIG_FILE",
            "/nonexistent/pods.yaml",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pods.yaml"), "{e}");
        let e = LogsConfig::from_settings(&settings(&[(
            "DD_LOGS_CONFIG_CONTAINER_COLLECT_ALL",
            "maybe",
        )]))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("DD_LOGS_CONFIG_CONTAINER_COLLECT_ALL"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
