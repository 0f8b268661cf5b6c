//! Which containers' logs are collected: the Agent's include/exclude lists, collect-all, and
//! the per-pod configuration file that plays the role of pod annotations.

use super::encoding::Encoding;
use super::path::PodLogPath;
use super::rules::{ProcessingRules, RuleScope, go_compatible};
use regex::bytes::Regex;
use std::fmt;
use std::path::Path;

/// Why a container filter or a per-pod configuration file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectionError {
    /// An include/exclude entry whose regular expression does not compile.
    InvalidFilter {
        /// The entry as given (`name:…`, `image:…` or `kube_namespace:…`).
        entry: String,
        /// The regex error.
        reason: String,
    },
    /// The per-pod configuration file is unreadable, not YAML/JSON, or has a bad entry.
    PodConfig {
        /// The file.
        path: String,
        /// The position (from 0) of the faulty entry, when one is at fault.
        entry: Option<usize>,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for SelectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectionError::InvalidFilter { entry, reason } => write!(
                f,
                "container filter {entry:?}: the regular expression does not compile ({reason})"
            ),
            SelectionError::PodConfig {
                path,
                entry: Some(i),
                reason,
            } => write!(f, "logs config file {path}: entry #{i}: {reason}"),
            SelectionError::PodConfig {
                path,
                entry: None,
                reason,
            } => write!(f, "logs config file {path}: {reason}"),
        }
    }
}

impl std::error::Error for SelectionError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
    Image,
}

#[derive(Debug, Clone)]
struct Matcher {
    field: Field,
    re: Regex,
}

impl Matcher {
    fn matches(&self, name: &str, namespace: &str, image: Option<&str>) -> bool {
        let value = match self.field {
            Field::Name => name,
            Field::Namespace => namespace,
            Field::Image => image.unwrap_or_default(),
        };
        // An unknown (empty) value neither includes nor excludes.
        !value.is_empty() && self.re.is_match(value.as_bytes())
    }
}

/// One include/exclude pair of the Agent's container lists, e.g. `container_include` /
/// `container_exclude` or `container_include_logs` / `container_exclude_logs`.
///
/// Entries are `name:<regex>` (the container name), `kube_namespace:<regex>` and
/// `image:<regex>`; the regular expressions are unanchored, in Go's syntax (see
/// [`ProcessingRules`] for how it maps to Rust's). A container is excluded when an exclude entry
/// matches and no include entry does: include beats exclude. A value that is not known (the
/// image, for files found under `/var/log/pods`) matches no entry.
///
/// ```
/// use dogpipe::ContainerFilter;
///
/// let f = ContainerFilter::parse(&["name:^important"], &["kube_namespace:.*", "image:redis"]).unwrap();
/// assert!(f.is_excluded("web", "default", None));
/// assert!(!f.is_excluded("important-job", "default", None), "include beats exclude");
/// assert!(!ContainerFilter::parse(&[] as &[&str], &["image:redis"]).unwrap().is_excluded("redis", "ns", None));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    include: Vec<Matcher>,
    exclude: Vec<Matcher>,
    ignored: Vec<String>,
}

impl ContainerFilter {
    /// A filter from include and exclude entries. Entries with an unknown prefix are ignored
    /// (as the Agent ignores them) and listed by [`ignored`](Self::ignored).
    ///
    /// # Errors
    ///
    /// [`SelectionError::InvalidFilter`] for an entry whose regular expression does not compile.
    pub fn parse<S: AsRef<str>>(
        include: &[S],
        exclude: &[S],
    ) -> Result<ContainerFilter, SelectionError> {
        let mut filter = ContainerFilter::default();
        for (entries, into_include) in [(include, true), (exclude, false)] {
            for entry in entries {
                let entry = entry.as_ref();
                let Some(matcher) = parse_entry(entry)? else {
                    filter.ignored.push(entry.to_string());
                    continue;
                };
                if into_include {
                    filter.include.push(matcher);
                } else {
                    filter.exclude.push(matcher);
                }
            }
        }
        Ok(filter)
    }

    /// Whether the container `name` in `namespace` (with `image`, when known) is excluded.
    pub fn is_excluded(&self, name: &str, namespace: &str, image: Option<&str>) -> bool {
        if self
            .include
            .iter()
            .any(|m| m.matches(name, namespace, image))
        {
            return false;
        }
        self.exclude
            .iter()
            .any(|m| m.matches(name, namespace, image))
    }

    /// Entries ignored because their prefix is not `name:`, `kube_namespace:` or `image:`.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// Whether the filter has no include or exclude entry.
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

fn parse_entry(entry: &str) -> Result<Option<Matcher>, SelectionError> {
    let (field, pattern) = if let Some(p) = entry.strip_prefix("name:") {
        (Field::Name, p)
    } else if let Some(p) = entry.strip_prefix("kube_namespace:") {
        (Field::Namespace, p)
    } else if let Some(p) = entry.strip_prefix("image:") {
        (Field::Image, p)
    } else {
        return Ok(None);
    };
    let re = Regex::new(&go_compatible(pattern)).map_err(|e| SelectionError::InvalidFilter {
        entry: entry.to_string(),
        reason: e.to_string(),
    })?;
    Ok(Some(Matcher { field, re }))
}

/// What one entry of the per-pod configuration file gives the containers it matches (what an
/// `ad.datadoghq.com/<container>.logs` annotation gives in the Agent).
#[derive(Debug, Clone, Default)]
pub(crate) struct PodLogConfig {
    namespace: Option<Regex>,
    pod: Option<Regex>,
    container: Option<Regex>,
    pub(crate) source: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) rules: ProcessingRules,
    /// The files' character encoding, when the entry gives one.
    pub(crate) encoding: Option<Encoding>,
}

impl PodLogConfig {
    fn matches(&self, namespace: &str, pod: &str, container: &str) -> bool {
        let ok = |re: &Option<Regex>, value: &str| {
            re.as_ref().is_none_or(|r| r.is_match(value.as_bytes()))
        };
        ok(&self.namespace, namespace) && ok(&self.pod, pod) && ok(&self.container, container)
    }
}

/// The per-pod logs configuration file (`DOGPIPE_LOGS_CONFIG_FILE`): a YAML or JSON list of
/// entries, each matching containers by `kube_namespace`, `pod_name` and/or `container_name`
/// and giving them a `source`, a `service`, `tags`, `log_processing_rules` and an `encoding`
/// (`utf-8`, `utf-16-le` or `utf-16-be`, see [`Encoding`](crate::Encoding)), as the Agent's
/// `ad.datadoghq.com/<container>.logs` pod annotation does.
///
/// The match fields are regular expressions (Go syntax) that must match the **whole** value, so
/// a plain name matches exactly that name; every field given must match; an entry needs at least
/// one. The first entry that matches a container wins. Unknown keys are errors, so that a
/// misspelt key stops start-up instead of being ignored.
///
/// ```
/// use dogpipe::PodLogConfigs;
///
/// let configs = PodLogConfigs::parse("pods.yaml", r#"
/// - kube_namespace: payments
///   container_name: api|worker
///   source: java
///   service: payments
///   tags: ["team:pay"]
///   log_processing_rules:
///     - {type: exclude_at_match, name: no_health, pattern: "GET /health"}
/// "#).unwrap();
/// assert_eq!(configs.len(), 1);
/// let e = PodLogConfigs::parse("pods.yaml", "- {source: x}").unwrap_err();
/// assert!(e.to_string().contains("pods.yaml: entry #0"), "{e}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct PodLogConfigs {
    entries: Vec<PodLogConfig>,
}

const ENTRY_KEYS: &str = "kube_namespace, pod_name, container_name, source, service, tags, log_processing_rules, \
     encoding";

impl PodLogConfigs {
    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    ///
    /// [`SelectionError::PodConfig`] naming the file (and the entry) when it cannot be read or
    /// an entry is invalid.
    pub fn load(path: &Path) -> Result<PodLogConfigs, SelectionError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SelectionError::PodConfig {
            path: name.clone(),
            entry: None,
            reason: e.to_string(),
        })?;
        PodLogConfigs::parse(&name, &text)
    }

    /// Parses the text of a file (YAML, or JSON, which is read as such when it starts with `[`);
    /// `path` names it in errors. An empty file has no entries.
    ///
    /// # Errors
    ///
    /// [`SelectionError::PodConfig`] naming `path` and the faulty entry.
    pub fn parse(path: &str, text: &str) -> Result<PodLogConfigs, SelectionError> {
        let err = |entry: Option<usize>, reason: String| SelectionError::PodConfig {
            path: path.to_string(),
            entry,
            reason,
        };
        let value = if text.trim_start().starts_with('[') {
            serde_json::from_str(text).map_err(|e| err(None, format!("not valid JSON ({e})")))?
        } else {
            let docs = yaml_rust2::YamlLoader::load_from_str(text)
                .map_err(|e| err(None, format!("not valid YAML ({e})")))?;
            match docs.first() {
                None => serde_json::Value::Null,
                Some(doc) => yaml_to_json(doc).map_err(|reason| err(None, reason))?,
            }
        };
        let items = match &value {
            serde_json::Value::Null => return Ok(PodLogConfigs::default()),
            serde_json::Value::Array(items) => items,
            _ => return Err(err(None, "expected a list of entries".into())),
        };
        let mut entries = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            entries.push(parse_pod_entry(item).map_err(|reason| err(Some(i), reason))?);
        }
        Ok(PodLogConfigs { entries })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first entry matching the container, if any.
    pub(crate) fn find(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Option<&PodLogConfig> {
        self.entries
            .iter()
            .find(|e| e.matches(namespace, pod, container))
    }
}

fn parse_pod_entry(item: &serde_json::Value) -> Result<PodLogConfig, String> {
    let object = item
        .as_object()
        .ok_or_else(|| format!("expected a mapping with keys among {ENTRY_KEYS}"))?;
    let mut entry = PodLogConfig::default();
    for (key, value) in object {
        let text = || -> Result<String, String> {
            match value {
                serde_json::Value::String(s) => Ok(s.clone()),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                serde_json::Value::Bool(b) => Ok(b.to_string()),
                _ => Err(format!("`{key}` must be a string")),
            }
        };
        let whole = |pattern: String| -> Result<Option<Regex>, String> {
            Regex::new(&format!("^(?:{})$", go_compatible(&pattern)))
                .map(Some)
                .map_err(|e| format!("`{key}`: the regular expression does not compile ({e})"))
        };
        match key.as_str() {
            "kube_namespace" => entry.namespace = whole(text()?)?,
            "pod_name" => entry.pod = whole(text()?)?,
            "container_name" => entry.container = whole(text()?)?,
            "source" => entry.source = Some(text()?).filter(|s| !s.is_empty()),
            "service" => entry.service = Some(text()?).filter(|s| !s.is_empty()),
            "tags" => {
                entry.tags = match value {
                    serde_json::Value::Array(tags) => tags
                        .iter()
                        .map(|t| {
                            t.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| "`tags` must be a list of strings".to_string())
                        })
                        .collect::<Result<_, _>>()?,
                    serde_json::Value::String(s) => s.split(',').map(str::to_owned).collect(),
                    _ => return Err("`tags` must be a list of strings".into()),
                };
                entry.tags.retain(|t| !t.trim().is_empty());
                for t in &mut entry.tags {
                    *t = t.trim().to_string();
                }
            }
            "encoding" => {
                let name = text()?;
                entry.encoding = Some(Encoding::from_name(&name).ok_or_else(|| {
                    format!(
                        "unknown `encoding` `{name}` (utf-8, utf-16-le or utf-16-be; \
                         shift-jis is not supported)"
                    )
                })?);
            }
            "log_processing_rules" => {
                entry.rules = ProcessingRules::from_value(value, RuleScope::Source)
                    .map_err(|e| format!("log_processing_rules: {e}"))?;
            }
            other => {
                return Err(format!("unknown key `{other}` (supported: {ENTRY_KEYS})"));
            }
        }
    }
    if entry.namespace.is_none() && entry.pod.is_none() && entry.container.is_none() {
        return Err(
            "needs at least one of kube_namespace, pod_name, container_name to match pods".into(),
        );
    }
    Ok(entry)
}

/// A YAML document as JSON (scalars as YAML typed them).
fn yaml_to_json(y: &yaml_rust2::Yaml) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(s) | Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => {
            Value::Array(items.iter().map(yaml_to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Hash(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => return Err("mapping keys must be strings".into()),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err("unsupported YAML value".into()),
    })
}

/// What is done with one file.
#[derive(Debug)]
pub(crate) enum Decision<'s> {
    /// Collected, with the per-pod entry that matched it, if any.
    Collect(Option<&'s PodLogConfig>),
    /// Excluded by a container filter.
    Excluded,
    /// Not excluded, but collect-all is off and no per-pod entry matches it.
    NotConfigured,
}

/// Everything that decides which files are collected, and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    pub(crate) collect_all: bool,
    pub(crate) filters: Vec<ContainerFilter>,
    pub(crate) pods: PodLogConfigs,
}

impl Selection {
    /// Every file, no filter, no per-pod configuration.
    #[cfg(test)]
    pub(crate) fn collect_all() -> Selection {
        Selection {
            collect_all: true,
            ..Selection::default()
        }
    }

    /// The decision for a file at `path`. Files outside the pod layout have no container: no
    /// filter or entry applies to them, and they are collected only with collect-all.
    pub(crate) fn decide(&self, path: &str) -> Decision<'_> {
        let Some(p) = PodLogPath::parse(path) else {
            return if self.collect_all {
                Decision::Collect(None)
            } else {
                Decision::NotConfigured
            };
        };
        let (name, namespace) = (p.container(), p.namespace());
        if self
            .filters
            .iter()
            .any(|f| f.is_excluded(name, namespace, None))
        {
            return Decision::Excluded;
        }
        match self.pods.find(namespace, p.pod(), name) {
            Some(entry) => Decision::Collect(Some(entry)),
            None if self.collect_all => Decision::Collect(None),
            None => Decision::NotConfigured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> ContainerFilter {
        ContainerFilter::parse(include, exclude).unwrap()
    }

    #[test]
    fn include_beats_exclude() {
        let f = filter(
            &["name:^keep$"],
            &["kube_namespace:^kube-system$", "name:keep"],
        );
        assert!(!f.is_excluded("keep", "kube-system", None));
        assert!(f.is_excluded("other", "kube-system", None));
        assert!(
            f.is_excluded("keeper", "default", None),
            "excluded by name:keep"
        );
        assert!(!f.is_excluded("web", "default", None), "no match: included");
    }

    #[test]
    fn regexes_are_unanchored_and_match_their_own_field() {
        let f = filter(&[], &["name:agent"]);
        assert!(f.is_excluded("datadog-agent-x", "ns", None));
        assert!(
            !f.is_excluded("web", "agent", None),
            "name: does not look at the namespace"
        );
        let f = filter(&[], &["kube_namespace:^dev-"]);
        assert!(f.is_excluded("web", "dev-1", None));
        assert!(!f.is_excluded("dev-1", "prod", None));
    }

    #[test]
    fn image_rules_apply_only_when_the_image_is_known() {
        let f = filter(&[], &["image:redis"]);
        assert!(!f.is_excluded("redis", "ns", None));
        assert!(f.is_excluded("cache", "ns", Some("docker.io/redis:7")));
        let f = filter(&["image:redis"], &["name:.*"]);
        assert!(
            f.is_excluded("redis", "ns", None),
            "an unknown image is not included"
        );
        assert!(!f.is_excluded("redis", "ns", Some("redis:7")));
    }

    #[test]
    fn unknown_prefixes_are_ignored_and_listed() {
        let f = filter(&["label:x"], &["pod:web", "name:web"]);
        assert_eq!(f.ignored(), ["label:x", "pod:web"]);
        assert!(f.is_excluded("web", "ns", None));
        assert!(!f.is_excluded("api", "ns", None));
    }

    #[test]
    fn an_invalid_regex_is_an_error_naming_the_entry() {
        let e = ContainerFilter::parse(&[] as &[&str], &["name:ok", "kube_namespace:(unclosed"])
            .unwrap_err();
        assert!(
            matches!(&e, SelectionError::InvalidFilter { entry, .. } if entry == "kube_namespace:(unclosed"),
            "{e:?}"
        );
        assert!(e.to_string().contains("kube_namespace:(unclosed"), "{e}");
    }

    #[test]
    fn patterns_use_go_ascii_classes() {
        let f = filter(&[], &[r"name:^\w+$"]);
        assert!(f.is_excluded("web_1", "ns", None));
        assert!(
            !f.is_excluded("wéb", "ns", None),
            "\\w is ASCII-only as in Go"
        );
    }

    const GOOD: &str = r#"
# Payments: Java services.
- kube_namespace: payments
  container_name: api|worker
  source: java
  service: payments-api
  tags: [team:pay, "env:prod"]
  log_processing_rules:
    - type: exclude_at_match
      name: no_health
      pattern: GET /health
    - type: multi_line
      name: stack
      pattern: \d{4}-
- pod_name: web-.*
  source: nginx
  encoding: utf-16-le
"#;

    #[test]
    fn parses_a_yaml_file_and_the_first_matching_entry_wins() {
        let c = PodLogConfigs::parse("pods.yaml", GOOD).unwrap();
        assert_eq!(c.len(), 2);
        let e = c.find("payments", "web-1", "api").unwrap();
        assert_eq!(e.source.as_deref(), Some("java"));
        assert_eq!(e.service.as_deref(), Some("payments-api"));
        assert_eq!(e.tags, ["team:pay", "env:prod"]);
        assert_eq!(e.encoding, None);
        assert!(e.rules.multi_line().is_some());
        assert_eq!(e.rules.apply(b"GET /health 200", false), None);
        let e = c.find("default", "web-1", "api").unwrap();
        assert_eq!(
            (e.source.as_deref(), e.service.as_deref()),
            (Some("nginx"), None)
        );
        assert_eq!(e.encoding, Some(crate::Encoding::Utf16Le));
        assert!(
            c.find("payments", "db-0", "apiserver").is_none(),
            "whole-value match"
        );
        assert!(c.find("default", "xweb-1", "app").is_none());
    }

    #[test]
    fn parses_a_json_file_and_an_empty_one() {
        let c = PodLogConfigs::parse(
            "pods.json",
            r#"[{"container_name": "app", "tags": "a:1, b:2",
                 "log_processing_rules": [{"type": "mask_sequences", "name": "m",
                   "pattern": "\\d+", "replace_placeholder": "N"}]}]"#,
        )
        .unwrap();
        let e = c.find("ns", "p", "app").unwrap();
        assert_eq!(e.tags, ["a:1", "b:2"]);
        assert_eq!(e.rules.apply(b"id 42", false).unwrap().as_ref(), b"id N");
        assert!(PodLogConfigs::parse("x.yaml", "").unwrap().is_empty());
        assert!(
            PodLogConfigs::parse("x.yaml", "# nothing\n")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_bad_file_is_an_error_naming_the_file_and_the_entry() {
        for (text, entry, says) in [
            (
                "- {container_name: a}\n- {container: b}\n",
                Some(1),
                "unknown key `container`",
            ),
            ("- {source: x}\n", Some(0), "at least one of"),
            ("- {pod_name: '(x'}\n", Some(0), "pod_name"),
            ("- {pod_name: a, tags: {a: 1}}\n", Some(0), "tags"),
            ("- {pod_name: a, source: [x]}\n", Some(0), "source"),
            (
                "- {pod_name: a, encoding: shift-jis}\n",
                Some(0),
                "unknown `encoding` `shift-jis`",
            ),
            (
                "- {pod_name: a, log_processing_rules: [{type: nope, name: n}]}\n",
                Some(0),
                "log_processing_rules: processing rule #0",
            ),
            ("pod_name: a\n", None, "a list of entries"),
            ("[{", None, "not valid JSON"),
            ("- a: [\n", None, "not valid YAML"),
            ("- not a mapping\n", Some(0), "mapping"),
        ] {
            let e = PodLogConfigs::parse("/etc/pods.yaml", text).unwrap_err();
            let SelectionError::PodConfig {
                path,
                entry: at,
                reason,
            } = &e
            else {
                panic!("{e:?}");
            };
            assert_eq!(
                (path.as_str(), *at),
                ("/etc/pods.yaml", entry),
                "{text}: {e}"
            );
            assert!(reason.contains(says), "{text}: {e}");
            assert!(
                e.to_string().starts_with("logs config file /etc/pods.yaml"),
                "{e}"
            );
        }
        let e = PodLogConfigs::load(Path::new("/nonexistent/pods.yaml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/pods.yaml"), "{e}");
    }

    #[test]
    fn selection_excludes_then_needs_an_entry_unless_collecting_all() {
        let pods = PodLogConfigs::parse("p.yaml", "- {container_name: app, source: s}\n").unwrap();
        let mut s = Selection {
            collect_all: false,
            filters: vec![filter(&[], &["kube_namespace:^skip$"])],
            pods,
        };
        let path = |ns: &str, c: &str| format!("/var/log/pods/{ns}_p_u/{c}/0.log");
        assert!(matches!(
            s.decide(&path("ns", "app")),
            Decision::Collect(Some(_))
        ));
        assert!(matches!(s.decide(&path("skip", "app")), Decision::Excluded));
        assert!(matches!(
            s.decide(&path("ns", "other")),
            Decision::NotConfigured
        ));
        assert!(matches!(
            s.decide("/var/log/pods/plain.log"),
            Decision::NotConfigured
        ));
        s.collect_all = true;
        assert!(matches!(
            s.decide(&path("ns", "other")),
            Decision::Collect(None)
        ));
        assert!(matches!(
            s.decide(&path("skip", "other")),
            Decision::Excluded
        ));
        assert!(matches!(
            s.decide("/var/log/pods/plain.log"),
            Decision::Collect(None)
        ));
    }

    #[test]
    fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
        for text in [
            format!("- {}", "[".repeat(200_000)),
            format!("- {{a: {}1{}}}", "[".repeat(5_000), "]".repeat(5_000)),
            format!("[{}1{}]", "[".repeat(5_000), "]".repeat(5_000)),
        ] {
            let e = PodLogConfigs::parse("deep.yaml", &text).unwrap_err();
            assert!(e.to_string().contains("deep.yaml"), "{e}");
        }
    }

    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```yaml\n- kube_namespace: payments").unwrap() + 8;
        let len = readme[start..].find("```").unwrap();
        let c = PodLogConfigs::parse("README.md", &readme[start..start + len]).unwrap();
        assert_eq!(c.len(), 3);
        let e = c.find("payments", "api-5d8f", "api").unwrap();
        assert!(e.rules.multi_line().is_some());
        assert_eq!(
            c.find("ingress", "x", "y").unwrap().source.as_deref(),
            Some("nginx")
        );
        assert_eq!(
            c.find("apps", "p", "legacy-dotnet").unwrap().encoding,
            Some(crate::Encoding::Utf16Le)
        );
    }

    #[test]
    fn a_global_include_does_not_undo_a_logs_exclude() {
        // Two filters (container_* and container_*_logs), each with include-beats-exclude;
        // a file is excluded when either excludes it.
        let s = Selection {
            collect_all: true,
            filters: vec![
                filter(&["name:app"], &[]),
                filter(&[], &["kube_namespace:ns"]),
            ],
            pods: PodLogConfigs::default(),
        };
        assert!(matches!(
            s.decide("/p/ns_p_u/app/0.log"),
            Decision::Excluded
        ));
    }
}
