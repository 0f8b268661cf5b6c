//! Mapper profiles (`dogstatsd_mapper_profiles`): rename metrics by wildcard or regex and add
//! tags from the captures, with an LRU cache of results.

use super::config::AggregateError;
use hashbrown::HashMap;
use regex::bytes::Regex;
use std::sync::Arc;

/// One mapping of a profile: a pattern, the new name and the tags to add.
#[derive(Debug, Clone)]
struct Mapping {
    regex: Regex,
    name: Vec<u8>,
    tags: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A mapper profile: mappings tried in order for metric names starting with `prefix`.
///
/// ```
/// use dogpipe::MapperProfile;
/// let profiles = MapperProfile::parse_json(r#"[{"name":"airflow","prefix":"airflow.",
///   "mappings":[{"match":"airflow.job.duration.*.*","name":"airflow.job.duration",
///                "tags":{"job_type":"$1","job_name":"${2}"}}]}]"#).unwrap();
/// assert_eq!(profiles.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct MapperProfile {
    name: String,
    prefix: Vec<u8>,
    mappings: Vec<Mapping>,
}

/// What a mapping made of a name: the new name and `key:value` tags to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapped {
    pub(crate) name: Vec<u8>,
    pub(crate) tags: Vec<Vec<u8>>,
}

fn invalid(why: impl Into<String>) -> AggregateError {
    AggregateError::InvalidMapperProfiles(why.into())
}

/// Turns a wildcard pattern into an anchored regex: `*` captures `[^.]*`.
fn wildcard_regex(pattern: &str) -> Result<String, AggregateError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_*.".contains(c);
    if pattern.is_empty() || !pattern.chars().all(allowed) || pattern.contains("**") {
        return Err(AggregateError::InvalidWildcard(pattern.to_string()));
    }
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '.' => re.push_str("\\."),
            '*' => re.push_str("([^.]*)"),
            c => re.push(c),
        }
    }
    re.push('$');
    Ok(re)
}

impl MapperProfile {
    /// A profile for names starting with `prefix` (`*` for every name).
    pub fn new(name: impl Into<String>, prefix: impl AsRef<[u8]>) -> MapperProfile {
        MapperProfile {
            name: name.into(),
            prefix: prefix.as_ref().to_vec(),
            mappings: Vec::new(),
        }
    }

    /// Adds a mapping: `pattern` (wildcard, or a regex when `regex` is true, anchored at both
    /// ends), the new `name` and `tags` whose values may use `$1`, `${1}` or named groups.
    ///
    /// # Errors
    /// [`AggregateError::InvalidWildcard`] or [`AggregateError::InvalidRegex`].
    pub fn with_mapping(
        mut self,
        pattern: &str,
        regex: bool,
        name: impl AsRef<[u8]>,
        tags: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<MapperProfile, AggregateError> {
        let source = if regex {
            format!("^(?:{pattern})$")
        } else {
            wildcard_regex(pattern)?
        };
        let regex = Regex::new(&source).map_err(|e| AggregateError::InvalidRegex(e.to_string()))?;
        self.mappings.push(Mapping {
            regex,
            name: name.as_ref().to_vec(),
            tags,
        });
        Ok(self)
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parses the JSON form of `dogstatsd_mapper_profiles` (as in `DD_DOGSTATSD_MAPPER_PROFILES`):
    /// `[{"name","prefix","mappings":[{"match","match_type":"wildcard"|"regex","name","tags":{…}}]}]`.
    ///
    /// # Errors
    /// [`AggregateError::InvalidMapperProfiles`] naming the missing or mistyped field, or the
    /// pattern errors of [`with_mapping`](Self::with_mapping).
    pub fn parse_json(json: &str) -> Result<Vec<MapperProfile>, AggregateError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let list = value
            .as_array()
            .ok_or_else(|| invalid("expected a JSON array of profiles"))?;
        let mut profiles = Vec::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            let field = |key: &str| {
                p.get(key)
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        invalid(format!("profile {i}: `{key}` must be a non-empty string"))
                    })
            };
            let mut profile = MapperProfile::new(field("name")?, field("prefix")?);
            let mappings = p
                .get("mappings")
                .and_then(|m| m.as_array())
                .ok_or_else(|| invalid(format!("profile {i}: `mappings` must be an array")))?;
            for (j, m) in mappings.iter().enumerate() {
                let field = |key: &str| {
                    m.get(key)
                        .and_then(|v| v.as_str())
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| {
                            invalid(format!(
                                "profile {i} mapping {j}: `{key}` must be a non-empty string"
                            ))
                        })
                };
                let regex = match m.get("match_type").and_then(|v| v.as_str()) {
                    None | Some("") | Some("wildcard") => false,
                    Some("regex") => true,
                    Some(other) => {
                        return Err(invalid(format!(
                            "profile {i} mapping {j}: match_type `{other}` is not wildcard or regex"
                        )));
                    }
                };
                let mut tags = Vec::new();
                if let Some(t) = m.get("tags") {
                    let t = t.as_object().ok_or_else(|| {
                        invalid(format!("profile {i} mapping {j}: `tags` must be an object"))
                    })?;
                    for (k, v) in t {
                        let v = v.as_str().ok_or_else(|| {
                            invalid(format!(
                                "profile {i} mapping {j}: tag `{k}` must be a string"
                            ))
                        })?;
                        tags.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
                    }
                }
                profile = profile.with_mapping(field("match")?, regex, field("name")?, tags)?;
            }
            profiles.push(profile);
        }
        Ok(profiles)
    }

    fn applies_to(&self, name: &[u8]) -> bool {
        self.prefix == b"*" || name.starts_with(&self.prefix)
    }
}

/// The first profile applying to `name`, or `None`.
pub(crate) fn applicable(profiles: &[MapperProfile], name: &[u8]) -> Option<usize> {
    profiles.iter().position(|p| p.applies_to(name))
}

/// Maps `name` with the first applicable profile only (later profiles are not tried).
pub(crate) fn map(profile: &MapperProfile, name: &[u8]) -> Option<Mapped> {
    for m in &profile.mappings {
        if let Some(caps) = m.regex.captures(name) {
            let mut new_name = Vec::new();
            caps.expand(&m.name, &mut new_name);
            let tags = m
                .tags
                .iter()
                .map(|(k, v)| {
                    let mut tag = k.clone();
                    tag.push(b':');
                    caps.expand(v, &mut tag);
                    tag
                })
                .collect();
            return Some(Mapped {
                name: new_name,
                tags,
            });
        }
    }
    None
}

const NIL: usize = usize::MAX;

struct Entry {
    key: Arc<[u8]>,
    value: Option<Arc<Mapped>>,
    prev: usize,
    next: usize,
}

/// A least-recently-used cache of mapping results (negative results included), keyed by name.
pub(crate) struct MapperCache {
    index: HashMap<Arc<[u8]>, usize>,
    entries: Vec<Entry>,
    head: usize,
    tail: usize,
    capacity: usize,
}

impl MapperCache {
    pub(crate) fn new(capacity: usize) -> MapperCache {
        MapperCache {
            index: HashMap::new(),
            entries: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = match self.entries.get(i) {
            Some(e) => (e.prev, e.next),
            None => return,
        };
        match self.entries.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.entries.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front(&mut self, i: usize) {
        let old = self.head;
        if let Some(e) = self.entries.get_mut(i) {
            e.prev = NIL;
            e.next = old;
        }
        if let Some(h) = self.entries.get_mut(old) {
            h.prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// The cached result for `name` (`Some(None)` for a cached miss), marking it recently used.
    pub(crate) fn get(&mut self, name: &[u8]) -> Option<Option<Arc<Mapped>>> {
        let i = *self.index.get(name)?;
        self.unlink(i);
        self.push_front(i);
        self.entries.get(i).map(|e| e.value.clone())
    }

    /// Stores a result, evicting the least recently used entry when full.
    pub(crate) fn put(&mut self, name: &[u8], value: Option<Arc<Mapped>>) {
        if self.capacity == 0 {
            return;
        }
        let key: Arc<[u8]> = Arc::from(name);
        let i = if self.entries.len() < self.capacity {
            self.entries.push(Entry {
                key: key.clone(),
                value,
                prev: NIL,
                next: NIL,
            });
            self.entries.len() - 1
        } else {
            let i = self.tail;
            self.unlink(i);
            let Some(e) = self.entries.get_mut(i) else {
                return;
            };
            self.index.remove(&e.key);
            e.key = key.clone();
            e.value = value;
            i
        };
        self.index.insert(key, i);
        self.push_front(i);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(json: &str) -> Vec<MapperProfile> {
        MapperProfile::parse_json(json).unwrap()
    }

    fn map_name(p: &[MapperProfile], name: &str) -> Option<(String, Vec<String>)> {
        let i = applicable(p, name.as_bytes())?;
        map(&p[i], name.as_bytes()).map(|m| {
            (
                String::from_utf8(m.name).unwrap(),
                m.tags
                    .into_iter()
                    .map(|t| String::from_utf8(t).unwrap())
                    .collect(),
            )
        })
    }

    #[test]
    fn wildcard_captures_expand_in_name_and_tags() {
        let p = profiles(
            r#"[{"name":"p","prefix":"test.","mappings":[
                {"match":"test.job.*.*","name":"test.job.$1","tags":{"name":"${2}","both":"$1-$2"}}]}]"#,
        );
        assert_eq!(
            map_name(&p, "test.job.duration.my_job"),
            Some((
                "test.job.duration".into(),
                vec!["both:duration-my_job".into(), "name:my_job".into()]
            ))
        );
        assert_eq!(
            map_name(&p, "test.job.a.b.c"),
            None,
            "`*` does not cross dots"
        );
    }

    #[test]
    fn regex_mappings_are_anchored_and_support_named_groups() {
        let p = profiles(
            r#"[{"name":"p","prefix":"*","mappings":[
                {"match":"svc\\.(?P<svc>[a-z]+)\\.hits","match_type":"regex","name":"svc.hits","tags":{"svc":"$svc"}}]}]"#,
        );
        assert_eq!(
            map_name(&p, "svc.web.hits"),
            Some(("svc.hits".into(), vec!["svc:web".into()]))
        );
        assert_eq!(map_name(&p, "x.svc.web.hits"), None);
    }

    #[test]
    fn only_the_first_applicable_profile_is_tried() {
        let p = profiles(
            r#"[{"name":"a","prefix":"x.","mappings":[{"match":"x.nomatch","name":"n"}]},
                {"name":"b","prefix":"x.","mappings":[{"match":"x.*","name":"mapped"}]}]"#,
        );
        assert_eq!(map_name(&p, "x.y"), None);
    }

    #[test]
    fn rejects_bad_profiles_naming_the_problem() {
        for (json, needle) in [
            ("{}", "array"),
            ("[{\"prefix\":\"a\",\"mappings\":[]}]", "`name`"),
            (
                "[{\"name\":\"a\",\"prefix\":\"a\",\"mappings\":[{\"match\":\"a**\",\"name\":\"b\"}]}]",
                "wildcard",
            ),
            (
                "[{\"name\":\"a\",\"prefix\":\"a\",\"mappings\":[{\"match\":\"a b\",\"name\":\"b\"}]}]",
                "wildcard",
            ),
            (
                "[{\"name\":\"a\",\"prefix\":\"a\",\"mappings\":[{\"match\":\"(\",\"match_type\":\"regex\",\"name\":\"b\"}]}]",
                "regex",
            ),
            (
                "[{\"name\":\"a\",\"prefix\":\"a\",\"mappings\":[{\"match\":\"a\",\"match_type\":\"glob\",\"name\":\"b\"}]}]",
                "match_type",
            ),
            ("nope", "not JSON"),
        ] {
            let e = MapperProfile::parse_json(json).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_entry() {
        let mut c = MapperCache::new(2);
        c.put(b"a", None);
        c.put(b"b", None);
        assert_eq!(c.get(b"a"), Some(None));
        c.put(b"c", None);
        assert_eq!(c.get(b"b"), None, "b was least recently used");
        assert!(c.get(b"a").is_some() && c.get(b"c").is_some());
        assert_eq!(c.len(), 2);
        let mut zero = MapperCache::new(0);
        zero.put(b"a", None);
        assert_eq!(zero.get(b"a"), None);
    }
}
