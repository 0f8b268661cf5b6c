//! Where settings come from: `DD_*` environment variables (as the Datadog Agent reads them) over
//! an optional `datadog.yaml`-style file, with typed getters whose errors name the variable.

use std::collections::BTreeMap;
use std::fmt;
use yaml_rust2::{Yaml, YamlLoader};

/// Every setting dogpipe reads: the Agent's key (nested keys joined by `.`), and what it means.
/// The environment variable is `DD_` + the key upper-cased with `.` → `_`, except for dogpipe's
/// own settings, whose keys start with `dogpipe_` and whose variables are `DOGPIPE_…`.
pub(crate) const KEYS: &[(&str, &str)] = &[
    (
        "api_key",
        "Datadog API key; without it requests go to the file sink",
    ),
    ("site", "Datadog site (default datadoghq.com)"),
    ("dd_url", "metrics intake URL, overrides site"),
    ("hostname", "host name of this node"),
    (
        "kubernetes_kubelet_nodename",
        "node name, the hostname when `hostname` is unset",
    ),
    (
        "cluster_name",
        "Kubernetes cluster name, added as kube_cluster_name tag",
    ),
    ("use_dogstatsd", "run the DogStatsD server (default true)"),
    ("dogstatsd_port", "UDP port, 0 disables UDP (default 8125)"),
    (
        "dogstatsd_non_local_traffic",
        "listen on all interfaces (default false)",
    ),
    (
        "dogstatsd_buffer_size",
        "read buffer, the largest datagram (default 8192)",
    ),
    (
        "dogstatsd_so_rcvbuf",
        "socket receive buffer, 0 = OS default",
    ),
    ("dogstatsd_socket", "Unix datagram socket path"),
    ("dogstatsd_stream_socket", "Unix stream socket path"),
    (
        "dogstatsd_origin_detection",
        "container id from Unix socket credentials",
    ),
    (
        "dogstatsd_origin_detection_client",
        "read the c:, e:, card: fields",
    ),
    (
        "dogstatsd_no_aggregation_pipeline",
        "honour |T timestamps (default true)",
    ),
    (
        "dogstatsd_tags",
        "tags added to every metric, event and service check",
    ),
    (
        "dogstatsd_expiry_seconds",
        "idle counters keep reporting 0 this long (default 300)",
    ),
    (
        "dogstatsd_context_expiry_seconds",
        "idle contexts are forgotten after this (default 20)",
    ),
    (
        "dogstatsd_mapper_profiles",
        "metric name mapping profiles (JSON)",
    ),
    (
        "dogstatsd_mapper_cache_size",
        "mapper result cache entries (default 1000)",
    ),
    (
        "dogstatsd_flush_incomplete_buckets",
        "flush open buckets at shutdown",
    ),
    (
        "histogram_aggregates",
        "histogram aggregates (default max median avg count)",
    ),
    (
        "histogram_percentiles",
        "histogram percentiles (default 0.95)",
    ),
    ("statsd_metric_namespace", "prefix added to metric names"),
    (
        "statsd_metric_namespace_blacklist",
        "name prefixes exempt from the namespace",
    ),
    ("statsd_metric_blocklist", "metric names dropped"),
    (
        "statsd_metric_blocklist_match_prefix",
        "blocklist entries match as prefixes",
    ),
    (
        "serializer_compressor_kind",
        "zstd, zlib or none (default zstd)",
    ),
    ("serializer_zstd_compressor_level", "zstd level (default 1)"),
    (
        "health_port",
        "port of the liveness endpoint on 127.0.0.1 (default 5555, 0 disables)",
    ),
    ("logs_enabled", "collect container logs (default false)"),
    (
        "logs_config.container_collect_all",
        "collect the logs of every container, not only configured ones (default false)",
    ),
    (
        "logs_config.run_path",
        "directory of the registry of read positions",
    ),
    (
        "logs_config.file_scan_period",
        "seconds between scans for new log files",
    ),
    ("logs_config.batch_wait", "seconds a logs batch may wait"),
    ("logs_config.open_files_limit", "log files tailed at once"),
    ("logs_config.compression_kind", "zstd or gzip"),
    ("logs_config.logs_dd_url", "logs intake URL"),
    (
        "logs_config.processing_rules",
        "global log processing rules (JSON)",
    ),
    (
        "container_include",
        "containers to include (name:, image:, kube_namespace: regexes)",
    ),
    ("container_exclude", "containers to exclude"),
    ("container_include_logs", "containers whose logs to include"),
    ("container_exclude_logs", "containers whose logs to exclude"),
    ("ac_include", "legacy container_include"),
    ("ac_exclude", "legacy container_exclude"),
    (
        "dogpipe_proc_root",
        "where the host's /proc is mounted (default /proc)",
    ),
    (
        "dogpipe_output_dir",
        "file sink directory without an API key (default ./dogpipe-out)",
    ),
    (
        "dogpipe_workers",
        "parser threads (default: from the cores)",
    ),
    (
        "dogpipe_shards",
        "aggregation shard threads; 0 aggregates on the ingest thread (default: cores − 1, 0 with two cores or fewer)",
    ),
    (
        "dogpipe_udp_sockets",
        "SO_REUSEPORT UDP sockets (default 1)",
    ),
    (
        "dogpipe_queue_packets",
        "packets queued from Unix stream connections to the parser (default 1024)",
    ),
    (
        "dogpipe_flush_chunk",
        "series and sketches per chunk of a flush on its way to the serializer (default 4096)",
    ),
    (
        "dogpipe_flush_queue",
        "chunks of a flush queued for the serializer (default 4)",
    ),
    (
        "dogpipe_shutdown_grace_seconds",
        "how long shutdown waits for the forwarder to deliver what is queued (default 10)",
    ),
    (
        "dogpipe_known_lines",
        "metric lines remembered with their context (default 32768; 0 = off)",
    ),
    (
        "dogpipe_context_limit",
        "live contexts per node before new ones are dropped",
    ),
    (
        "dogpipe_pod_logs_dir",
        "pod logs directory (default /var/log/pods)",
    ),
    (
        "dogpipe_logs_config_file",
        "per-pod logs configs (YAML or JSON): source, service, tags, rules",
    ),
];

/// The environment variable of a key.
pub(crate) fn env_name(key: &str) -> String {
    if key.starts_with("dogpipe_") {
        key.to_ascii_uppercase().replace('.', "_")
    } else {
        format!("DD_{}", key.to_ascii_uppercase().replace('.', "_"))
    }
}

/// A setting that could not be used: which one, its value, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value of the wrong form.
    Invalid {
        /// The variable (or file key) that holds it.
        name: String,
        /// The value as given.
        value: String,
        /// What the setting accepts.
        expected: String,
    },
    /// The configuration file could not be read or parsed.
    File {
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid {
                name,
                value,
                expected,
            } => write!(f, "{name}={value:?} is invalid: expected {expected}"),
            ConfigError::File { path, reason } => {
                write!(f, "cannot use config file {path}: {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Settings from the environment over a YAML file.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    env: BTreeMap<String, String>,
    yaml: Option<Yaml>,
}

impl Settings {
    /// Settings from `vars` (name, value) and an optional YAML document.
    ///
    /// # Errors
    /// [`ConfigError::File`] when `yaml` is not a YAML mapping.
    pub fn new(
        vars: impl IntoIterator<Item = (String, String)>,
        yaml: Option<(&str, &str)>,
    ) -> Result<Settings, ConfigError> {
        let yaml = match yaml {
            None => None,
            Some((path, text)) => {
                let docs = YamlLoader::load_from_str(text).map_err(|e| ConfigError::File {
                    path: path.to_string(),
                    reason: e.to_string(),
                })?;
                match docs.into_iter().next() {
                    None | Some(Yaml::Null) => None,
                    Some(doc @ Yaml::Hash(_)) => Some(doc),
                    Some(_) => {
                        return Err(ConfigError::File {
                            path: path.to_string(),
                            reason: "the document is not a mapping of keys to values".into(),
                        });
                    }
                }
            }
        };
        Ok(Settings {
            env: vars
                .into_iter()
                .filter(|(k, _)| k.starts_with("DD_") || k.starts_with("DOGPIPE_"))
                .collect(),
            yaml,
        })
    }

    /// Settings from this process's environment and, when `DD_CONF_PATH` or `path` names one,
    /// a YAML file. Variables whose value is not UTF-8 are reported as invalid.
    ///
    /// # Errors
    /// [`ConfigError`] for an unreadable file or a non-UTF-8 `DD_*` value.
    pub fn from_process(path: Option<&str>) -> Result<Settings, ConfigError> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().map(str::to_owned) else {
                continue;
            };
            if !(name.starts_with("DD_") || name.starts_with("DOGPIPE_")) {
                continue;
            }
            match value.into_string() {
                Ok(v) => vars.push((name, v)),
                Err(v) => {
                    return Err(ConfigError::Invalid {
                        name,
                        value: v.to_string_lossy().into_owned(),
                        expected: "UTF-8 text".into(),
                    });
                }
            }
        }
        let path = path.map(str::to_owned).or_else(|| {
            vars.iter()
                .find(|(k, _)| k == "DD_CONF_PATH")
                .map(|(_, v)| v.clone())
        });
        match path {
            None => Settings::new(vars, None),
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                Settings::new(vars, Some((&path, &text)))
            }
        }
    }

    /// `DD_*`/`DOGPIPE_*` variables that are set but that dogpipe does not read (ignored, as the
    /// Agent ignores them).
    pub fn unknown_variables(&self) -> Vec<&str> {
        self.env
            .keys()
            .filter(|name| name.as_str() != "DD_CONF_PATH")
            .filter(|name| !KEYS.iter().any(|(key, _)| env_name(key) == **name))
            .map(String::as_str)
            .collect()
    }

    fn yaml_value(&self, key: &str) -> Option<&Yaml> {
        let mut node = self.yaml.as_ref()?;
        for part in key.split('.') {
            match node {
                Yaml::Hash(map) => node = map.get(&Yaml::String(part.to_string()))?,
                _ => return None,
            }
        }
        (!matches!(node, Yaml::Null | Yaml::BadValue)).then_some(node)
    }

    /// The raw value and where it came from (variable name or file key).
    fn raw(&self, key: &str) -> Option<(String, Raw<'_>)> {
        debug_assert!(
            KEYS.iter().any(|(k, _)| *k == key),
            "`{key}` is read but not in KEYS, so setting it is reported as unknown"
        );
        let name = env_name(key);
        if let Some(v) = self.env.get(&name) {
            return Some((name, Raw::Text(v)));
        }
        self.yaml_value(key)
            .map(|y| (key.to_string(), Raw::Yaml(y)))
    }

    /// The value of a variable by its environment name (`DD_…`/`DOGPIPE_…`), falling back to the
    /// file for the variables of known settings: a lookup for the `from_lookup` constructors.
    pub fn var(&self, name: &str) -> Option<String> {
        if let Some(v) = self.env.get(name) {
            return Some(v.clone());
        }
        let (key, _) = KEYS.iter().find(|(key, _)| env_name(key) == name)?;
        self.string(key)
    }

    /// Where a key's value comes from, for messages: its variable when set there, else the file
    /// key when set there, else the variable.
    pub(crate) fn source_name(&self, key: &str) -> String {
        self.raw(key)
            .map_or_else(|| env_name(key), |(name, _)| name)
    }

    /// A string setting; empty values count as unset.
    pub fn string(&self, key: &str) -> Option<String> {
        match self.raw(key)? {
            (_, Raw::Text(t)) => Some(t.to_string()),
            (_, Raw::Yaml(y)) => scalar(y),
        }
        .filter(|s| !s.is_empty())
    }

    /// A setting parsed by `parse`; `expected` describes the accepted form for the error.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable when `parse` fails.
    pub fn parsed<T>(
        &self,
        key: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((name, raw)) = self.raw(key) else {
            return Ok(None);
        };
        let text = match raw {
            Raw::Text(t) => t.to_string(),
            Raw::Yaml(y) => scalar(y).ok_or_else(|| ConfigError::Invalid {
                name: name.clone(),
                value: format!("{y:?}"),
                expected: format!("a single value: {expected}"),
            })?,
        };
        if text.trim().is_empty() {
            return Ok(None);
        }
        parse(text.trim()).map(Some).ok_or(ConfigError::Invalid {
            name,
            value: text,
            expected: expected.to_string(),
        })
    }

    /// A boolean, with Go `strconv.ParseBool` spellings (`1`, `t`, `true`, `TRUE`, `0`, `f`, …).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for another value.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.parsed(key, "true or false", |s| match s {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
            _ => None,
        })
    }

    /// A non-negative integer.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for another value.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        self.parsed(key, "a non-negative integer", |s| s.parse().ok())
    }

    /// A list: space-separated in a variable (as the Agent reads lists from the environment), a
    /// sequence (or a space-separated string) in the file.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        match self.raw(key)? {
            (_, Raw::Text(t)) => Some(t.split_whitespace().map(str::to_owned).collect()),
            (_, Raw::Yaml(Yaml::Array(items))) => Some(items.iter().filter_map(scalar).collect()),
            (_, Raw::Yaml(y)) => {
                scalar(y).map(|s| s.split_whitespace().map(str::to_owned).collect())
            }
        }
    }
}

enum Raw<'a> {
    Text(&'a str),
    Yaml(&'a Yaml),
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)], yaml: Option<&str>) -> Settings {
        Settings::new(
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            yaml.map(|y| ("datadog.yaml", y)),
        )
        .unwrap()
    }

    #[test]
    fn environment_beats_the_file_and_nested_keys_map_to_variables() {
        let s = settings(
            &[
                ("DD_DOGSTATSD_PORT", "9125"),
                ("DD_LOGS_CONFIG_RUN_PATH", "/run/x"),
            ],
            Some(
                "dogstatsd_port: 7125\nsite: datadoghq.eu\nlogs_config:\n  run_path: /file\n  batch_wait: 3\n",
            ),
        );
        assert_eq!(s.u64("dogstatsd_port"), Ok(Some(9125)));
        assert_eq!(s.string("site").as_deref(), Some("datadoghq.eu"));
        assert_eq!(s.string("logs_config.run_path").as_deref(), Some("/run/x"));
        assert_eq!(s.u64("logs_config.batch_wait"), Ok(Some(3)));
        assert_eq!(s.string("hostname"), None);
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_expected_form() {
        let s = settings(
            &[("DD_DOGSTATSD_PORT", "eighty"), ("DD_LOGS_ENABLED", "yes")],
            None,
        );
        let e = s.u64("dogstatsd_port").unwrap_err();
        assert_eq!(
            e.to_string(),
            "DD_DOGSTATSD_PORT=\"eighty\" is invalid: expected a non-negative integer"
        );
        let e = s.bool("logs_enabled").unwrap_err();
        assert!(e.to_string().starts_with("DD_LOGS_ENABLED=\"yes\""), "{e}");
        let s = settings(&[], Some("dogstatsd_port: [1]\n"));
        let e = s.u64("dogstatsd_port").unwrap_err();
        assert!(e.to_string().starts_with("dogstatsd_port="), "{e}");
    }

    #[test]
    fn lists_are_space_separated_in_variables_and_sequences_in_files() {
        let s = settings(
            &[("DD_HISTOGRAM_AGGREGATES", "max  min avg")],
            Some("dogstatsd_tags: [a:b, c]\n"),
        );
        assert_eq!(
            s.list("histogram_aggregates"),
            Some(vec!["max".into(), "min".into(), "avg".into()])
        );
        assert_eq!(
            s.list("dogstatsd_tags"),
            Some(vec!["a:b".into(), "c".into()])
        );
    }

    #[test]
    fn go_booleans_are_accepted() {
        for (v, want) in [
            ("1", true),
            ("TRUE", true),
            ("t", true),
            ("false", false),
            ("F", false),
        ] {
            assert_eq!(
                settings(&[("DD_LOGS_ENABLED", v)], None).bool("logs_enabled"),
                Ok(Some(want))
            );
        }
    }

    #[test]
    fn lookup_by_variable_name_falls_back_to_the_file() {
        let s = settings(
            &[("DD_SITE", "env.example")],
            Some("site: file.example\nlogs_config:\n  run_path: /r\n"),
        );
        assert_eq!(s.var("DD_SITE").as_deref(), Some("env.example"));
        assert_eq!(s.var("DD_LOGS_CONFIG_RUN_PATH").as_deref(), Some("/r"));
        assert_eq!(s.var("DD_API_KEY"), None);
    }

    #[test]
    fn unknown_variables_are_listed_not_fatal() {
        let s = settings(
            &[
                ("DD_APM_ENABLED", "true"),
                ("DD_SITE", "x"),
                ("DOGPIPE_SHARDS", "2"),
                ("HOME", "/"),
            ],
            None,
        );
        assert_eq!(s.unknown_variables(), ["DD_APM_ENABLED"]);
    }

    #[test]
    fn a_file_that_is_not_a_mapping_is_an_error() {
        let e = Settings::new(Vec::new(), Some(("x.yaml", "- a\n- b\n"))).unwrap_err();
        assert!(e.to_string().contains("x.yaml"), "{e}");
        let e = Settings::new(Vec::new(), Some(("x.yaml", "a: [\n"))).unwrap_err();
        assert!(e.to_string().contains("x.yaml"), "{e}");
    }
}
