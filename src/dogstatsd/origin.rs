use super::span::Span;
use memchr::memchr;

/// Where a client says a message comes from: the `c:`, `e:` and `card:` fields (protocol 1.2–1.6),
/// read only when [`ParserConfig::with_origin_detection_client`](crate::ParserConfig::with_origin_detection_client) is on.
///
/// The raw text is kept as received; the accessors decode it lazily and, like the Agent, never
/// reject a message for a malformed origin field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Origin<'b> {
    local_data: Option<&'b [u8]>,
    external_data: Option<&'b [u8]>,
    cardinality: Option<&'b [u8]>,
}

/// The spans of the origin fields in a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OriginLayout {
    pub(crate) local_data: Option<Span>,
    pub(crate) external_data: Option<Span>,
    pub(crate) cardinality: Option<Span>,
}

impl OriginLayout {
    /// Records `field` (the whole `|`-separated field starting at `start`) if it is an origin
    /// field; returns whether it was one.
    #[inline]
    pub(crate) fn record(&mut self, field: &[u8], start: usize) -> bool {
        let end = start + field.len();
        if field.starts_with(b"c:") {
            self.local_data = Some(Span::new(start + 2, end));
        } else if field.starts_with(b"e:") {
            self.external_data = Some(Span::new(start + 2, end));
        } else if field.starts_with(b"card:") {
            self.cardinality = Some(Span::new(start + 5, end));
        } else {
            return false;
        }
        true
    }

    #[inline]
    pub(crate) fn bind(self, line: &[u8]) -> Origin<'_> {
        Origin {
            local_data: self.local_data.map(|s| s.get(line)),
            external_data: self.external_data.map(|s| s.get(line)),
            cardinality: self.cardinality.map(|s| s.get(line)),
        }
    }
}

/// The tag cardinality a client asks for (`card:` field or `dd.internal.card:` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cardinality {
    /// `none`: no origin tags at all.
    None,
    /// `low`.
    Low,
    /// `orchestrator`.
    Orchestrator,
    /// `high`.
    High,
}

impl Cardinality {
    /// Parses `none`, `low`, `orchestrator` or `high`, ignoring ASCII case.
    pub fn parse(raw: &[u8]) -> Option<Cardinality> {
        [
            (&b"none"[..], Cardinality::None),
            (b"low", Cardinality::Low),
            (b"orchestrator", Cardinality::Orchestrator),
            (b"high", Cardinality::High),
        ]
        .into_iter()
        .find(|(name, _)| raw.eq_ignore_ascii_case(name))
        .map(|(_, c)| c)
    }
}

/// Iterates the `,`-separated items of a field.
fn items(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|&b| b == b',')
}

impl<'b> Origin<'b> {
    /// True when no origin field was present.
    pub fn is_empty(&self) -> bool {
        self.local_data.is_none() && self.external_data.is_none() && self.cardinality.is_none()
    }

    /// The raw text of the `c:` field, after `c:`.
    #[inline]
    pub fn local_data(&self) -> Option<&'b [u8]> {
        self.local_data
    }

    /// The raw text of the `e:` field, after `e:`.
    #[inline]
    pub fn external_data(&self) -> Option<&'b [u8]> {
        self.external_data
    }

    /// The raw text of the `card:` field, after `card:`.
    #[inline]
    pub fn cardinality_raw(&self) -> Option<&'b [u8]> {
        self.cardinality
    }

    /// The container id of the `c:` field: its `ci-<id>` item, or (legacy forms, a single item)
    /// `cid-<id>` or a bare `<id>`.
    pub fn container_id(&self) -> Option<&'b [u8]> {
        let raw = self.local_data.filter(|r| !r.is_empty())?;
        if let Some(id) = items(raw).find_map(|item| item.strip_prefix(b"ci-")) {
            return Some(id);
        }
        if memchr(b',', raw).is_some() || raw.starts_with(b"in-") {
            return None;
        }
        Some(raw.strip_prefix(b"cid-").unwrap_or(raw))
    }

    /// The cgroup inode of the `c:` field's `in-<inode>` item (decimal digits only, as Go's
    /// `ParseUint`).
    pub fn cgroup_inode(&self) -> Option<u64> {
        let digits = items(self.local_data?).find_map(|item| item.strip_prefix(b"in-"))?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    /// `it-<bool>` of the `e:` field: whether the client is an init container (Go `ParseBool`
    /// spellings: `1`, `t`, `T`, `true`, `TRUE`, `True` and their false forms).
    pub fn external_init(&self) -> Option<bool> {
        match self.external_item(b"it-")? {
            b"1" | b"t" | b"T" | b"true" | b"TRUE" | b"True" => Some(true),
            b"0" | b"f" | b"F" | b"false" | b"FALSE" | b"False" => Some(false),
            _ => None,
        }
    }

    /// `cn-<name>` of the `e:` field: the client's container name.
    pub fn external_container_name(&self) -> Option<&'b [u8]> {
        self.external_item(b"cn-")
    }

    /// `pu-<uid>` of the `e:` field: the client's pod UID.
    pub fn external_pod_uid(&self) -> Option<&'b [u8]> {
        self.external_item(b"pu-")
    }

    fn external_item(&self, prefix: &[u8]) -> Option<&'b [u8]> {
        items(self.external_data?).find_map(|item| item.strip_prefix(prefix))
    }

    /// The `card:` field, decoded; `None` when absent or not one of the four values.
    pub fn cardinality(&self) -> Option<Cardinality> {
        Cardinality::parse(self.cardinality?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(raw: &[u8]) -> Origin<'_> {
        Origin {
            local_data: Some(raw),
            ..Origin::default()
        }
    }

    #[test]
    fn reads_container_ids_in_every_form() {
        assert_eq!(local(b"abc123").container_id(), Some(&b"abc123"[..]));
        assert_eq!(local(b"cid-abc").container_id(), Some(&b"abc"[..]));
        assert_eq!(local(b"ci-abc,in-42").container_id(), Some(&b"abc"[..]));
        assert_eq!(local(b"in-42,ci-abc").container_id(), Some(&b"abc"[..]));
        assert_eq!(local(b"in-42").container_id(), None);
        assert_eq!(local(b"ci-abc,in-42").cgroup_inode(), Some(42));
        assert_eq!(local(b"in-x").cgroup_inode(), None);
        assert_eq!(local(b"in-+42").cgroup_inode(), None);
        assert_eq!(local(b"in-").cgroup_inode(), None);
        assert_eq!(local(b"").container_id(), None);
    }

    #[test]
    fn reads_external_data_items() {
        let o = Origin {
            external_data: Some(b"it-false,cn-redis,pu-810f"),
            ..Origin::default()
        };
        assert_eq!(o.external_init(), Some(false));
        assert_eq!(o.external_container_name(), Some(&b"redis"[..]));
        assert_eq!(o.external_pod_uid(), Some(&b"810f"[..]));
        for (raw, init) in [
            (&b"it-1"[..], Some(true)),
            (b"it-T", Some(true)),
            (b"it-False", Some(false)),
            (b"it-yes", None),
        ] {
            let o = Origin {
                external_data: Some(raw),
                ..Origin::default()
            };
            assert_eq!(
                o.external_init(),
                init,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn reads_cardinality_ignoring_case() {
        assert_eq!(Cardinality::parse(b"HIGH"), Some(Cardinality::High));
        assert_eq!(
            Cardinality::parse(b"orchestrator"),
            Some(Cardinality::Orchestrator)
        );
        assert_eq!(Cardinality::parse(b"medium"), None);
    }
}
