//! Enrichment before aggregation (spec §4.1): mapper, special tags, namespace, blocklist, extra
//! tags, then the context key — all in reused buffers, so a known metric costs no allocation.

use super::config::AggregatorConfig;
use super::context::{ContextRef, Kind, TagSpan, canonicalize, context_hash};
use super::mapper::{self, Mapped, MapperCache};
use super::output::{
    EventRecord, Point, Series, SeriesKind, ServiceCheckRecord, Tag, TagSet, Text,
};
use super::stats::AggregateStats;
use crate::{Event, Metric, MetricType, ServiceCheck, Tags};
use hashbrown::HashSet;
use std::sync::Arc;

const HOST_TAG: &[u8] = b"host:";
const ENTITY_ID_TAG: &[u8] = b"dd.internal.entity_id:";
const CARDINALITY_TAG: &[u8] = b"dd.internal.card:";
const JMX_CHECK_TAG: &[u8] = b"dd.internal.jmx_check_name:";

/// What the special tags of a message said.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extracted<'a> {
    /// `host:` (last one wins; empty means host-less).
    pub(crate) host: Option<&'a [u8]>,
    /// `dd.internal.entity_id:` (the pod UID an origin tagger would use).
    pub(crate) entity_id: Option<&'a [u8]>,
    /// `dd.internal.card:` when no cardinality was set before it.
    pub(crate) cardinality: Option<&'a [u8]>,
}

/// Sorts tags out: special tags go to `found`, the others to `keep`. Empty tags are dropped (the
/// Agent keeps them; the intake has no use for them).
#[inline]
fn classify<'a>(tag: &'a [u8], found: &mut Extracted<'a>, card_set: &mut bool) -> bool {
    if tag.is_empty() {
        return false;
    }
    if tag.first() == Some(&b'h') {
        if let Some(h) = tag.strip_prefix(HOST_TAG) {
            found.host = Some(h);
            return false;
        }
    } else if tag.first() == Some(&b'd') {
        if let Some(e) = tag.strip_prefix(ENTITY_ID_TAG) {
            found.entity_id = Some(e);
            return false;
        }
        if let Some(c) = tag.strip_prefix(CARDINALITY_TAG) {
            // Only the first cardinality counts; a later one stays as an ordinary tag (Agent quirk).
            if !*card_set {
                *card_set = true;
                found.cardinality = Some(c);
                return false;
            }
        } else if tag.starts_with(JMX_CHECK_TAG) {
            return false;
        }
    }
    true
}

/// Turns parsed messages into context keys and pass-through records.
#[derive(Debug)]
pub(crate) struct Enricher {
    config: Arc<AggregatorConfig>,
    blocklist: HashSet<Vec<u8>>,
    cache: MapperCacheBox,
    name: Vec<u8>,
    host: Vec<u8>,
    tag_bytes: Vec<u8>,
    tags: Vec<TagSpan>,
    pub(crate) stats: AggregateStats,
    #[cfg(test)]
    pub(crate) last_extracted: (Option<Vec<u8>>, Option<Vec<u8>>),
}

/// The mapper cache, behind a `Debug` shim.
struct MapperCacheBox(MapperCache);

impl std::fmt::Debug for MapperCacheBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MapperCache")
    }
}

impl Enricher {
    pub(crate) fn new(config: Arc<AggregatorConfig>) -> Enricher {
        Enricher {
            blocklist: config.blocklist.iter().cloned().collect(),
            cache: MapperCacheBox(MapperCache::new(config.mapper_cache_size)),
            config,
            name: Vec::new(),
            host: Vec::new(),
            tag_bytes: Vec::new(),
            tags: Vec::new(),
            stats: AggregateStats::default(),
            #[cfg(test)]
            last_extracted: (None, None),
        }
    }

    fn mapped(&mut self, name: &[u8]) -> Option<Arc<Mapped>> {
        let profiles = &self.config.mapper_profiles;
        let profile = profiles.get(mapper::applicable(profiles, name)?)?;
        if let Some(hit) = self.cache.0.get(name) {
            return hit;
        }
        let result = mapper::map(profile, name).map(Arc::new);
        self.cache.0.put(name, result.clone());
        result
    }

    fn blocked(&self, name: &[u8]) -> bool {
        if self.config.blocklist_match_prefix {
            self.config.blocklist.iter().any(|p| name.starts_with(p))
        } else {
            !self.blocklist.is_empty() && self.blocklist.contains(name)
        }
    }

    #[cfg(test)]
    fn note_extracted(&mut self, found: &Extracted<'_>) {
        self.last_extracted = (
            found.entity_id.map(<[u8]>::to_vec),
            found.cardinality.map(<[u8]>::to_vec),
        );
    }

    fn push_tag(&mut self, tag: &[u8]) {
        let start = self.tag_bytes.len() as u32;
        self.tag_bytes.extend_from_slice(tag);
        self.tags.push(TagSpan {
            start,
            len: tag.len() as u32,
            hash: 0,
        });
    }

    /// The context of a metric, or `None` when it is blocklisted (counted).
    #[inline]
    pub(crate) fn metric<'s, 'b: 's>(&'s mut self, m: &Metric<'b>) -> Option<ContextRef<'s>> {
        self.tags.clear();
        let raw = m.name();
        let mapped = if self.config.mapper_profiles.is_empty() {
            None
        } else {
            self.mapped(raw)
        };
        let base: &[u8] = mapped.as_ref().map_or(raw, |m| &m.name);
        let ns = &self.config.namespace;
        let namespaced = !ns.is_empty()
            && !self
                .config
                .namespace_exempt
                .iter()
                .any(|p| base.starts_with(p));
        // The name is borrowed from the message unless the mapper or the namespace changed it.
        let owned_name = mapped.is_some() || namespaced;
        if owned_name {
            self.name.clear();
            if namespaced {
                self.name.extend_from_slice(ns);
            }
            self.name.extend_from_slice(base);
        }
        if self.blocked(if owned_name { &self.name } else { raw }) {
            self.stats.blocklisted += m.value_count() as u64;
            return None;
        }

        let mut card_set = m.origin().cardinality_raw().is_some();
        // Tags are referenced in place in the message unless tags must be added (mapper or
        // `dogstatsd_tags`); then they are all copied into one scratch buffer.
        let borrow_tags = mapped.is_none() && self.config.extra_tags.is_empty();
        // `Some(Some(h))`: a `host:` tag in the message; `Some(None)`: one copied to `self.host`.
        let mut host_tag: Option<Option<&'b [u8]>> = None;
        if borrow_tags {
            let mut found = Extracted::default();
            let line = m.line();
            let base_addr = line.as_ptr() as usize;
            for tag in m.tags() {
                if classify(tag, &mut found, &mut card_set) {
                    self.tags.push(TagSpan {
                        start: (tag.as_ptr() as usize).saturating_sub(base_addr) as u32,
                        len: tag.len() as u32,
                        hash: 0,
                    });
                }
            }
            host_tag = found.host.map(Some);
            #[cfg(test)]
            self.note_extracted(&found);
        } else {
            let mut found = Extracted::default();
            self.tag_bytes.clear();
            let mapped_tags = mapped
                .as_ref()
                .map(|m| m.tags.as_slice())
                .unwrap_or_default();
            for tag in m.tags().chain(mapped_tags.iter().map(Vec::as_slice)) {
                if classify(tag, &mut found, &mut card_set) {
                    self.push_tag(tag);
                }
            }
            for tag in &self.config.extra_tags {
                let start = self.tag_bytes.len() as u32;
                self.tag_bytes.extend_from_slice(tag);
                self.tags.push(TagSpan {
                    start,
                    len: tag.len() as u32,
                    hash: 0,
                });
            }
            if let Some(h) = found.host {
                self.host.clear();
                self.host.extend_from_slice(h);
                host_tag = Some(None);
            }
            #[cfg(test)]
            self.note_extracted(&found);
        }
        let tag_bytes: &[u8] = if borrow_tags {
            m.line()
        } else {
            &self.tag_bytes
        };
        let tag_set = canonicalize(tag_bytes, &mut self.tags);
        let host: &[u8] = match host_tag {
            Some(Some(h)) => h,
            Some(None) => &self.host,
            None => &self.config.hostname,
        };
        let name: &[u8] = if owned_name { &self.name } else { raw };
        let kind = Kind::of(m.metric_type());
        Some(ContextRef {
            hash: context_hash(kind, name, host, tag_set),
            kind,
            name,
            host,
            tag_bytes,
            tags: &self.tags,
        })
    }

    /// Client tags of an event or service check after extraction, plus the extra tags, sorted
    /// and deduplicated; and the `host:` tag.
    fn record_tags<'a>(&self, tags: Tags<'a>) -> (TagSet, Option<&'a [u8]>) {
        let mut found = Extracted::default();
        let mut card_set = false;
        let mut kept: Vec<&[u8]> = tags
            .filter(|t| classify(t, &mut found, &mut card_set))
            .collect();
        kept.extend(self.config.extra_tags.iter().map(Vec::as_slice));
        (kept.into_iter().collect(), found.host)
    }

    fn record_host(&self, field: Option<&[u8]>, tag: Option<&[u8]>) -> Text {
        match (field.filter(|h| !h.is_empty()), tag) {
            (Some(h), _) | (None, Some(h)) => Text::new(h),
            (None, None) => Text::new(&self.config.hostname),
        }
    }

    /// An event, enriched; its timestamp is `now` when it had none.
    pub(crate) fn event(&mut self, e: &Event<'_>, now: i64) -> EventRecord {
        self.stats.events += 1;
        let (tags, host_tag) = self.record_tags(e.tags());
        EventRecord {
            title: e.title().into_owned(),
            text: e.text().into_owned(),
            timestamp: e.timestamp().filter(|&t| t != 0).unwrap_or(now),
            host: self.record_host(e.hostname(), host_tag),
            aggregation_key: e.aggregation_key().map(<[u8]>::to_vec),
            priority: e.priority(),
            source_type_name: e.source_type_name().map(<[u8]>::to_vec),
            alert_type: e.alert_type(),
            tags,
        }
    }

    /// A service check, enriched; its timestamp is `now` when it had none.
    pub(crate) fn service_check(&mut self, sc: &ServiceCheck<'_>, now: i64) -> ServiceCheckRecord {
        self.stats.service_checks += 1;
        let (tags, host_tag) = self.record_tags(sc.tags());
        ServiceCheckRecord {
            name: sc.name().to_vec(),
            status: sc.status(),
            timestamp: sc.timestamp().filter(|&t| t != 0).unwrap_or(now),
            host: self.record_host(sc.hostname(), host_tag),
            message: sc.message().map(<[u8]>::to_vec),
            tags,
        }
    }
}

/// The series of a timestamped metric (spec §5.6): a gauge value as a GAUGE point, a counter
/// value as a RATE point of `value / 10` (sample rate ignored), one series per value; other types
/// are dropped and counted.
pub(crate) fn timestamped(
    r: &ContextRef<'_>,
    m: &Metric<'_>,
    timestamp: i64,
    stats: &mut AggregateStats,
    out: &mut Vec<Series>,
) {
    let kind = match m.metric_type() {
        MetricType::Gauge => SeriesKind::Gauge,
        MetricType::Count => SeriesKind::Rate,
        _ => {
            stats.unsupported_timestamped += m.value_count() as u64;
            return;
        }
    };
    // Canonical order is byte order: the spans are sorted and deduplicated already.
    let list: Vec<Tag> = r
        .tags
        .iter()
        .map(|t| Tag::new(t.get(r.tag_bytes)))
        .collect();
    let tags = TagSet::from_sorted(&list);
    let name = Text::new(r.name);
    let host = Text::new(r.host);
    for v in m.values() {
        if !v.is_finite() {
            stats.non_finite += 1;
            continue;
        }
        stats.timestamped += 1;
        out.push(Series {
            name: name.clone(),
            host: host.clone(),
            tags: tags.clone(),
            kind,
            interval: super::BUCKET_SECONDS as u32,
            points: smallvec::smallvec![Point {
                timestamp,
                value: if kind == SeriesKind::Rate {
                    v / super::BUCKET_SECONDS as f64
                } else {
                    v
                },
            }],
        });
    }
}
