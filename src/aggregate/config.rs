//! Settings of the aggregator, with the Agent's defaults.

use super::mapper::MapperProfile;
use std::fmt;

/// One statistic a histogram or timing emits per bucket (the Agent's `histogram_aggregates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HistogramAggregate {
    /// `.max`: the largest value.
    Max,
    /// `.min`: the smallest value.
    Min,
    /// `.median`: the lower median (weights applied).
    Median,
    /// `.avg`: sum / count.
    Avg,
    /// `.sum`: the sum of values divided by their sample rates.
    Sum,
    /// `.count`: the number of samples (sample rates applied), sent as a RATE over 10 s.
    Count,
}

impl HistogramAggregate {
    /// Parses `max`, `min`, `median`, `avg`, `sum` or `count`.
    pub fn parse(name: &str) -> Option<HistogramAggregate> {
        Some(match name {
            "max" => HistogramAggregate::Max,
            "min" => HistogramAggregate::Min,
            "median" => HistogramAggregate::Median,
            "avg" => HistogramAggregate::Avg,
            "sum" => HistogramAggregate::Sum,
            "count" => HistogramAggregate::Count,
            _ => return None,
        })
    }

    /// The series name suffix, without the dot.
    pub fn as_str(self) -> &'static str {
        match self {
            HistogramAggregate::Max => "max",
            HistogramAggregate::Min => "min",
            HistogramAggregate::Median => "median",
            HistogramAggregate::Avg => "avg",
            HistogramAggregate::Sum => "sum",
            HistogramAggregate::Count => "count",
        }
    }
}

/// A setting the aggregator cannot use (the error type of the aggregation layer).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AggregateError {
    /// A histogram percentile outside [0, 1] or not a number.
    InvalidPercentile(String),
    /// A histogram aggregate other than max, min, median, avg, sum, count.
    UnknownHistogramAggregate(String),
    /// The mapper profiles are not the JSON the Agent reads; the text says where.
    InvalidMapperProfiles(String),
    /// A wildcard mapping pattern with characters outside `[a-zA-Z0-9-_*.]` or with `**`.
    InvalidWildcard(String),
    /// A regex mapping pattern that does not compile.
    InvalidRegex(String),
    /// A setting whose value is not understood.
    InvalidSetting {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong and what is accepted.
        why: String,
    },
}

impl fmt::Display for AggregateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggregateError::InvalidPercentile(p) => write!(
                f,
                "invalid histogram percentile `{p}`: use a number between 0 and 1, such as 0.95"
            ),
            AggregateError::UnknownHistogramAggregate(a) => write!(
                f,
                "unknown histogram aggregate `{a}`: use max, min, median, avg, sum or count"
            ),
            AggregateError::InvalidMapperProfiles(why) => {
                write!(f, "invalid mapper profiles: {why}")
            }
            AggregateError::InvalidWildcard(p) => write!(
                f,
                "invalid wildcard mapping `{p}`: only letters, digits, `-`, `_`, `.` and single `*` are allowed"
            ),
            AggregateError::InvalidRegex(why) => write!(f, "invalid regex mapping: {why}"),
            AggregateError::InvalidSetting { name, value, why } => {
                write!(f, "{name}=`{value}` is invalid: {why}")
            }
        }
    }
}

impl std::error::Error for AggregateError {}

/// The Agent's default `statsd_metric_namespace_blacklist`: names starting with these are never
/// namespaced.
pub const STANDARD_STATSD_PREFIXES: &[&str] = &[
    "datadog.agent",
    "datadog.dogstatsd",
    "datadog.process",
    "datadog.trace_agent",
    "datadog.tracer",
    "activemq",
    "activemq_58",
    "airflow",
    "cassandra",
    "confluent",
    "hazelcast",
    "hive",
    "ignite",
    "jboss",
    "jvm",
    "kafka",
    "presto",
    "sidekiq",
    "solr",
    "tomcat",
    "runtime",
];

/// Default of [`AggregatorConfig::with_context_limit`].
pub const DEFAULT_CONTEXT_LIMIT: usize = 500_000;

/// Default of [`AggregatorConfig::with_known_lines`].
pub(crate) const DEFAULT_KNOWN_LINES: usize = 32_768;

/// Settings of the aggregator. The defaults are the Agent's.
///
/// ```
/// use dogpipe::{AggregatorConfig, HistogramAggregate};
/// let config = AggregatorConfig::default()
///     .with_hostname("web1")
///     .with_histogram_aggregates(vec![HistogramAggregate::Max, HistogramAggregate::Count])
///     .with_histogram_percentiles(&[0.5, 0.99])
///     .unwrap();
/// assert_eq!(config.hostname(), b"web1");
/// ```
#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    pub(crate) hostname: Vec<u8>,
    pub(crate) histogram_aggregates: Vec<HistogramAggregate>,
    /// Integer percents, sorted and deduplicated.
    pub(crate) histogram_percentiles: Vec<u32>,
    pub(crate) namespace: Vec<u8>,
    pub(crate) namespace_exempt: Vec<Vec<u8>>,
    pub(crate) blocklist: Vec<Vec<u8>>,
    pub(crate) blocklist_match_prefix: bool,
    pub(crate) extra_tags: Vec<Vec<u8>>,
    pub(crate) expiry_seconds: i64,
    pub(crate) context_expiry_seconds: i64,
    pub(crate) context_limit: usize,
    pub(crate) mapper_profiles: Vec<MapperProfile>,
    pub(crate) mapper_cache_size: usize,
    pub(crate) known_lines: usize,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            hostname: Vec::new(),
            histogram_aggregates: vec![
                HistogramAggregate::Max,
                HistogramAggregate::Median,
                HistogramAggregate::Avg,
                HistogramAggregate::Count,
            ],
            histogram_percentiles: vec![95],
            namespace: Vec::new(),
            namespace_exempt: STANDARD_STATSD_PREFIXES
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect(),
            blocklist: Vec::new(),
            blocklist_match_prefix: false,
            extra_tags: Vec::new(),
            expiry_seconds: 300,
            context_expiry_seconds: 20,
            context_limit: DEFAULT_CONTEXT_LIMIT,
            mapper_profiles: Vec::new(),
            mapper_cache_size: 1000,
            known_lines: DEFAULT_KNOWN_LINES,
        }
    }
}

impl AggregatorConfig {
    /// The host of every sample without a `host:` tag (the Agent's hostname). Defaults to empty
    /// (host-less series).
    pub fn with_hostname(mut self, hostname: impl AsRef<[u8]>) -> Self {
        self.hostname = hostname.as_ref().to_vec();
        self
    }

    /// Statistics emitted per histogram/timing bucket, in this order (the Agent's
    /// `histogram_aggregates`). Defaults to max, median, avg, count.
    pub fn with_histogram_aggregates(mut self, aggregates: Vec<HistogramAggregate>) -> Self {
        self.histogram_aggregates = aggregates;
        self
    }

    /// Percentiles emitted per histogram/timing bucket, as fractions in [0, 1] (the Agent's
    /// `histogram_percentiles`); each becomes `.<round(p × 100)>percentile`. Defaults to 0.95.
    ///
    /// # Errors
    /// [`AggregateError::InvalidPercentile`] for a value outside [0, 1] or NaN.
    pub fn with_histogram_percentiles(
        mut self,
        percentiles: &[f64],
    ) -> Result<Self, AggregateError> {
        let mut out = Vec::with_capacity(percentiles.len());
        for &p in percentiles {
            if !(0.0..=1.0).contains(&p) {
                return Err(AggregateError::InvalidPercentile(p.to_string()));
            }
            out.push((p * 100.0 + 0.5) as u32);
        }
        out.sort_unstable();
        out.dedup();
        self.histogram_percentiles = out;
        Ok(self)
    }

    /// A prefix added to every metric name (a `.` is appended when missing), except names
    /// starting with an exempt prefix (the Agent's `statsd_metric_namespace`). Defaults to none.
    pub fn with_namespace(mut self, namespace: impl AsRef<[u8]>) -> Self {
        let mut ns = namespace.as_ref().to_vec();
        if !ns.is_empty() && !ns.ends_with(b".") {
            ns.push(b'.');
        }
        self.namespace = ns;
        self
    }

    /// Names starting with one of these are not namespaced (the Agent's
    /// `statsd_metric_namespace_blacklist`). Defaults to [`STANDARD_STATSD_PREFIXES`].
    pub fn with_namespace_exempt_prefixes(mut self, prefixes: Vec<Vec<u8>>) -> Self {
        self.namespace_exempt = prefixes;
        self
    }

    /// Metric names dropped after namespacing (the Agent's `statsd_metric_blocklist`), matched
    /// exactly or, with `match_prefix`, as prefixes. Dropped samples are counted in
    /// [`AggregateStats::blocklisted`](crate::AggregateStats). Defaults to none, exact.
    pub fn with_blocklist(mut self, names: Vec<Vec<u8>>, match_prefix: bool) -> Self {
        self.blocklist = names;
        self.blocklist_match_prefix = match_prefix;
        self
    }

    /// Tags appended to every metric, event and service check (the Agent's `dogstatsd_tags`);
    /// a `host:` tag here is an ordinary tag. Defaults to none.
    pub fn with_extra_tags(mut self, tags: Vec<Vec<u8>>) -> Self {
        self.extra_tags = tags;
        self
    }

    /// How long an idle counter keeps emitting 0 (the Agent's `dogstatsd_expiry_seconds`).
    /// Defaults to 300.
    pub fn with_expiry_seconds(mut self, seconds: i64) -> Self {
        self.expiry_seconds = seconds;
        self
    }

    /// How long an idle context is kept (the Agent's `dogstatsd_context_expiry_seconds`;
    /// counters keep theirs this long after their zeros stop). Defaults to 20.
    pub fn with_context_expiry_seconds(mut self, seconds: i64) -> Self {
        self.context_expiry_seconds = seconds;
        self
    }

    /// The most live contexts (shared evenly between shards). A sample that would create one
    /// more is dropped and counted in [`AggregateStats::context_limit`](crate::AggregateStats);
    /// existing contexts keep aggregating. Defaults to [`DEFAULT_CONTEXT_LIMIT`] (500 000).
    pub fn with_context_limit(mut self, limit: usize) -> Self {
        self.context_limit = limit;
        self
    }

    /// Metric lines remembered with the context they resolved to, so that a line sent again
    /// exactly as before (name, type and tags, in the same order) skips enrichment and the
    /// context match. Each remembered line costs its name and tags (lines over 8 KiB are not
    /// remembered) plus about 100 bytes, and the text of all lines stays under 256 bytes per
    /// line (8 MiB by default); 0 turns the cache off (`DOGPIPE_KNOWN_LINES`). Used by
    /// [`Aggregator`](crate::Aggregator). Defaults to 32 768.
    pub fn with_known_lines(mut self, lines: usize) -> Self {
        self.known_lines = lines;
        self
    }

    /// Mapper profiles that rename metrics and add tags (the Agent's
    /// `dogstatsd_mapper_profiles`). Defaults to none.
    pub fn with_mapper_profiles(mut self, profiles: Vec<MapperProfile>) -> Self {
        self.mapper_profiles = profiles;
        self
    }

    /// Entries of the mapper's LRU cache of results (the Agent's `dogstatsd_mapper_cache_size`).
    /// Defaults to 1000.
    pub fn with_mapper_cache_size(mut self, entries: usize) -> Self {
        self.mapper_cache_size = entries;
        self
    }

    /// The configured hostname.
    pub fn hostname(&self) -> &[u8] {
        &self.hostname
    }

    /// The context limit.
    pub fn context_limit(&self) -> usize {
        self.context_limit
    }
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split_ascii_whitespace()
}

impl AggregatorConfig {
    /// Reads the Agent's variables through `var` (`DD_HOSTNAME`, `DD_HISTOGRAM_AGGREGATES`,
    /// `DD_HISTOGRAM_PERCENTILES`, `DD_DOGSTATSD_MAPPER_PROFILES`, `DD_STATSD_METRIC_NAMESPACE`,
    /// `DD_STATSD_METRIC_BLOCKLIST`, `DD_STATSD_METRIC_BLOCKLIST_MATCH_PREFIX`,
    /// `DD_DOGSTATSD_TAGS`, `DD_DOGSTATSD_EXPIRY_SECONDS`, `DD_DOGSTATSD_CONTEXT_EXPIRY_SECONDS`,
    /// `DD_DOGSTATSD_CONTEXT_LIMIT`; lists space-separated). `hostname` wins over
    /// `DD_HOSTNAME`; without either, the OS hostname.
    ///
    /// # Errors
    /// [`AggregateError::InvalidSetting`] naming the variable whose value is not understood.
    pub fn from_lookup(
        var: impl Fn(&str) -> Option<String>,
        hostname: Option<String>,
    ) -> Result<AggregatorConfig, AggregateError> {
        let bad = |name: &str, value: &str, why: &str| AggregateError::InvalidSetting {
            name: name.to_string(),
            value: value.to_string(),
            why: why.to_string(),
        };
        let mut config = AggregatorConfig::default();
        let host = hostname
            .or_else(|| var("DD_HOSTNAME").filter(|h| !h.is_empty()))
            .unwrap_or_else(os_hostname);
        config = config.with_hostname(host);
        if let Some(v) = var("DD_HISTOGRAM_AGGREGATES") {
            let mut aggs = Vec::new();
            for a in list(&v) {
                aggs.push(HistogramAggregate::parse(a).ok_or_else(|| {
                bad(
                    "DD_HISTOGRAM_AGGREGATES",
                    &v,
                    &format!("unknown aggregate `{a}` (use max, min, median, avg, sum, count separated by spaces)"),
                )
            })?);
            }
            config = config.with_histogram_aggregates(aggs);
        }
        if let Some(v) = var("DD_HISTOGRAM_PERCENTILES") {
            let mut ps = Vec::new();
            for p in list(&v) {
                ps.push(p.parse::<f64>().map_err(|_| {
                    bad(
                        "DD_HISTOGRAM_PERCENTILES",
                        &v,
                        &format!("`{p}` is not a number"),
                    )
                })?);
            }
            config = config
                .with_histogram_percentiles(&ps)
                .map_err(|e| bad("DD_HISTOGRAM_PERCENTILES", &v, &e.to_string()))?;
        }
        if let Some(v) = var("DD_DOGSTATSD_MAPPER_PROFILES").filter(|v| !v.trim().is_empty()) {
            let profiles = MapperProfile::parse_json(&v)
                .map_err(|e| bad("DD_DOGSTATSD_MAPPER_PROFILES", &v, &e.to_string()))?;
            config = config.with_mapper_profiles(profiles);
        }
        if let Some(v) = var("DD_STATSD_METRIC_NAMESPACE") {
            config = config.with_namespace(v.trim());
        }
        let prefix = match var("DD_STATSD_METRIC_BLOCKLIST_MATCH_PREFIX") {
            None => false,
            Some(v) => parse_bool(&v).ok_or_else(|| {
                bad(
                    "DD_STATSD_METRIC_BLOCKLIST_MATCH_PREFIX",
                    &v,
                    "use true or false",
                )
            })?,
        };
        if let Some(v) = var("DD_STATSD_METRIC_BLOCKLIST") {
            config =
                config.with_blocklist(list(&v).map(|s| s.as_bytes().to_vec()).collect(), prefix);
        }
        if let Some(v) = var("DD_DOGSTATSD_TAGS") {
            config = config.with_extra_tags(list(&v).map(|s| s.as_bytes().to_vec()).collect());
        }
        let seconds = |name: &str| -> Result<Option<i64>, AggregateError> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse::<i64>()
                        .ok()
                        .filter(|&s| s >= 0)
                        .ok_or_else(|| bad(name, &v, "use a whole number of seconds, 0 or more"))
                })
                .transpose()
        };
        if let Some(s) = seconds("DD_DOGSTATSD_EXPIRY_SECONDS")? {
            config = config.with_expiry_seconds(s);
        }
        if let Some(s) = seconds("DD_DOGSTATSD_CONTEXT_EXPIRY_SECONDS")? {
            config = config.with_context_expiry_seconds(s);
        }
        let count = |name: &str, what: &str| -> Result<Option<usize>, AggregateError> {
            var(name)
                .map(|v| v.trim().parse::<usize>().map_err(|_| bad(name, &v, what)))
                .transpose()
        };
        if let Some(n) = count(
            "DOGPIPE_KNOWN_LINES",
            "use a whole number of lines (0 = off)",
        )? {
            config = config.with_known_lines(n);
        }
        if let Some(n) = count(
            "DD_DOGSTATSD_CONTEXT_LIMIT",
            "use a whole number of contexts",
        )? {
            config = config.with_context_limit(n);
        }
        Ok(config)
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// The OS hostname, or empty when it cannot be read.
fn os_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
