//! Helpers shared by the DogStatsD fuzz targets: consuming every accessor of a message, a config
//! chosen by the input, a snapshot of a message's fields, and a renderer back to the wire format.

use dogpipe::{Message, Origin, ParserConfig, Tags};
use std::fmt::Write as _;

/// Reads every accessor of `message`, so that a bad span or a panicking lazy decoder shows up.
/// Returns a number that depends on everything read (wrapping sums), so nothing is optimised
/// away.
pub fn consume(message: &Message<'_>) -> u64 {
    let mut acc = message.line().len() as u64;
    acc ^= message.kind() as u64;
    match message {
        Message::Metric(m) => {
            acc = acc.wrapping_add(m.name().len() as u64 + m.raw_values().len() as u64);
            let values = m.values();
            let expected = values.len();
            let mut n = 0;
            for v in values {
                acc = acc.wrapping_add(v.to_bits());
                n += 1;
            }
            assert!(n == expected || m.set_member().is_some());
            if let Some(member) = m.set_member() {
                acc = acc.wrapping_add(member.len() as u64);
            }
            acc = acc.wrapping_add(m.value_count() as u64);
            acc = acc.wrapping_add(m.sample_rate().to_bits());
            acc = acc.wrapping_add(consume_tags(m.tags(), m.tag_count()));
            acc = acc.wrapping_add(m.timestamp().unwrap_or(0) as u64);
            acc = acc.wrapping_add(consume_origin(&m.origin()));
        }
        Message::Event(e) => {
            acc = acc.wrapping_add(e.title().len() as u64 + e.text().len() as u64);
            acc = acc.wrapping_add(e.title_raw().len() as u64 + e.text_raw().len() as u64);
            acc = acc.wrapping_add(e.timestamp().unwrap_or(0) as u64);
            for field in [e.hostname(), e.aggregation_key(), e.source_type_name()] {
                acc = acc.wrapping_add(field.map_or(0, <[u8]>::len) as u64);
            }
            acc = acc.wrapping_add(
                e.priority().as_str().len() as u64 + e.alert_type().as_str().len() as u64,
            );
            let tags = e.tags();
            let count = tags.len();
            acc = acc.wrapping_add(consume_tags(tags, count));
            acc = acc.wrapping_add(consume_origin(&e.origin()));
        }
        Message::ServiceCheck(sc) => {
            acc = acc.wrapping_add(sc.name().len() as u64 + u64::from(sc.status().as_u8()));
            acc = acc.wrapping_add(sc.timestamp().unwrap_or(0) as u64);
            acc = acc.wrapping_add(sc.hostname().map_or(0, <[u8]>::len) as u64);
            acc = acc.wrapping_add(sc.message().map_or(0, <[u8]>::len) as u64);
            let tags = sc.tags();
            let count = tags.len();
            acc = acc.wrapping_add(consume_tags(tags, count));
            acc = acc.wrapping_add(consume_origin(&sc.origin()));
        }
    }
    acc
}

fn consume_tags(tags: Tags<'_>, count: usize) -> u64 {
    let mut n = 0;
    let mut acc = tags.as_bytes().len() as u64;
    for tag in tags {
        acc = acc.wrapping_add(tag.len() as u64);
        n += 1;
    }
    assert_eq!(n, count, "tag iterator length differs from the tag count");
    acc
}

fn consume_origin(o: &Origin<'_>) -> u64 {
    let mut acc = u64::from(o.is_empty());
    for raw in [
        o.local_data(),
        o.external_data(),
        o.cardinality_raw(),
        o.container_id(),
        o.external_container_name(),
        o.external_pod_uid(),
    ] {
        acc = acc.wrapping_add(raw.map_or(0, <[u8]>::len) as u64);
    }
    acc = acc.wrapping_add(o.cgroup_inode().unwrap_or(0));
    acc = acc.wrapping_add(u64::from(o.external_init().unwrap_or(false)));
    acc = acc.wrapping_add(o.cardinality().map_or(0, |c| c as u64));
    acc
}

/// A config picked by the first bytes of `data` (5 bytes), and the rest of the input.
///
/// Limits are kept small so that the fuzzer meets them often.
pub fn config_from(data: &[u8]) -> (ParserConfig, &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<5>() else {
        return (ParserConfig::default(), data);
    };
    let [flags, tags, tag_bytes, msg_lo, msg_hi] = *head;
    let mut config = ParserConfig::default()
        .with_origin_detection_client(flags & 1 != 0)
        .with_timestamps(flags & 2 != 0);
    if flags & 4 != 0 {
        config = config.with_max_tags(u32::from(tags % 32));
    }
    if flags & 8 != 0 {
        config = config.with_max_tag_bytes(u32::from(tag_bytes));
    }
    if flags & 16 != 0 {
        config = config.with_max_message_bytes(u32::from(u16::from_le_bytes([msg_lo, msg_hi])));
    }
    (config, rest)
}

/// Asserts that an accepted message respects every limit of `config`.
pub fn assert_limits(message: &Message<'_>, config: &ParserConfig) {
    assert!(
        message.line().len() <= config.max_message_bytes() as usize,
        "accepted a line longer than max_message_bytes"
    );
    let tags = match message {
        Message::Metric(m) => m.tags(),
        Message::Event(e) => e.tags(),
        Message::ServiceCheck(sc) => sc.tags(),
    };
    let mut count = 0;
    for tag in tags {
        count += 1;
        assert!(
            tag.len() <= config.max_tag_bytes() as usize,
            "accepted a tag longer than max_tag_bytes"
        );
    }
    assert!(
        count <= config.max_tags() as usize,
        "accepted more tags than max_tags"
    );
}

/// Every field of a message, owned, with floats as bit patterns (NaN compares equal to itself).
#[derive(Debug, PartialEq, Eq)]
pub enum Fields {
    /// A metric.
    Metric {
        name: Vec<u8>,
        metric_type: &'static str,
        values: Vec<u64>,
        set_member: Option<Vec<u8>>,
        sample_rate: u64,
        tags: Vec<Vec<u8>>,
        timestamp: Option<i64>,
        origin: [Option<Vec<u8>>; 3],
    },
    /// An event.
    Event {
        title: Vec<u8>,
        text: Vec<u8>,
        timestamp: Option<i64>,
        hostname: Option<Vec<u8>>,
        aggregation_key: Option<Vec<u8>>,
        priority: &'static str,
        source_type_name: Option<Vec<u8>>,
        alert_type: &'static str,
        tags: Vec<Vec<u8>>,
        origin: [Option<Vec<u8>>; 3],
    },
    /// A service check.
    ServiceCheck {
        name: Vec<u8>,
        status: u8,
        timestamp: Option<i64>,
        hostname: Option<Vec<u8>>,
        message: Option<Vec<u8>>,
        tags: Vec<Vec<u8>>,
        origin: [Option<Vec<u8>>; 3],
    },
}

fn owned(b: Option<&[u8]>) -> Option<Vec<u8>> {
    b.map(<[u8]>::to_vec)
}

fn origin_fields(o: &Origin<'_>) -> [Option<Vec<u8>>; 3] {
    [
        owned(o.local_data()),
        owned(o.external_data()),
        owned(o.cardinality_raw()),
    ]
}

/// Snapshots every field of `message`.
pub fn fields(message: &Message<'_>) -> Fields {
    match message {
        Message::Metric(m) => Fields::Metric {
            name: m.name().to_vec(),
            metric_type: m.metric_type().as_wire(),
            values: m.values().map(canonical_bits).collect(),
            set_member: owned(m.set_member()),
            sample_rate: canonical_bits(m.sample_rate()),
            tags: m.tags().map(<[u8]>::to_vec).collect(),
            timestamp: m.timestamp(),
            origin: origin_fields(&m.origin()),
        },
        Message::Event(e) => Fields::Event {
            title: e.title_raw().to_vec(),
            text: e.text_raw().to_vec(),
            timestamp: e.timestamp(),
            hostname: owned(e.hostname()),
            aggregation_key: owned(e.aggregation_key()),
            priority: e.priority().as_str(),
            source_type_name: owned(e.source_type_name()),
            alert_type: e.alert_type().as_str(),
            tags: e.tags().map(<[u8]>::to_vec).collect(),
            origin: origin_fields(&e.origin()),
        },
        Message::ServiceCheck(sc) => Fields::ServiceCheck {
            name: sc.name().to_vec(),
            status: sc.status().as_u8(),
            timestamp: sc.timestamp(),
            hostname: owned(sc.hostname()),
            message: owned(sc.message()),
            tags: sc.tags().map(<[u8]>::to_vec).collect(),
            origin: origin_fields(&sc.origin()),
        },
    }
}

fn canonical_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// Renders `message` back to the wire format from its fields (not by copying its line).
pub fn render(message: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match message {
        Message::Metric(m) => {
            out.extend_from_slice(m.name());
            out.push(b':');
            if let Some(member) = m.set_member() {
                out.extend_from_slice(member);
            } else {
                let mut text = String::new();
                for (i, v) in m.values().enumerate() {
                    if i > 0 {
                        text.push(':');
                    }
                    // `{:?}` prints the shortest text that reads back to the same f64.
                    let _ = write!(text, "{v:?}");
                }
                out.extend_from_slice(text.as_bytes());
            }
            out.push(b'|');
            out.extend_from_slice(m.metric_type().as_wire().as_bytes());
            out.extend_from_slice(format!("|@{:?}", m.sample_rate()).as_bytes());
            render_tags(&mut out, m.tags());
            if let Some(ts) = m.timestamp() {
                out.extend_from_slice(format!("|T{ts}").as_bytes());
            }
            render_origin(&mut out, &m.origin());
        }
        Message::Event(e) => {
            let (title, text) = (e.title_raw(), e.text_raw());
            out.extend_from_slice(format!("_e{{{},{}}}:", title.len(), text.len()).as_bytes());
            out.extend_from_slice(title);
            out.push(b'|');
            out.extend_from_slice(text);
            if let Some(ts) = e.timestamp() {
                out.extend_from_slice(format!("|d:{ts}").as_bytes());
            }
            for (prefix, field) in [
                (&b"|h:"[..], e.hostname()),
                (b"|k:", e.aggregation_key()),
                (b"|s:", e.source_type_name()),
            ] {
                if let Some(value) = field {
                    out.extend_from_slice(prefix);
                    out.extend_from_slice(value);
                }
            }
            out.extend_from_slice(format!("|p:{}", e.priority().as_str()).as_bytes());
            out.extend_from_slice(format!("|t:{}", e.alert_type().as_str()).as_bytes());
            render_tags(&mut out, e.tags());
            render_origin(&mut out, &e.origin());
        }
        Message::ServiceCheck(sc) => {
            out.extend_from_slice(b"_sc|");
            out.extend_from_slice(sc.name());
            out.extend_from_slice(format!("|{}", sc.status().as_u8()).as_bytes());
            if let Some(ts) = sc.timestamp() {
                out.extend_from_slice(format!("|d:{ts}").as_bytes());
            }
            for (prefix, field) in [(&b"|h:"[..], sc.hostname()), (b"|m:", sc.message())] {
                if let Some(value) = field {
                    out.extend_from_slice(prefix);
                    out.extend_from_slice(value);
                }
            }
            render_tags(&mut out, sc.tags());
            render_origin(&mut out, &sc.origin());
        }
    }
    out
}

fn render_tags(out: &mut Vec<u8>, tags: Tags<'_>) {
    if tags.len() == 0 {
        return;
    }
    out.extend_from_slice(b"|#");
    for (i, tag) in tags.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(tag);
    }
}

fn render_origin(out: &mut Vec<u8>, o: &Origin<'_>) {
    for (prefix, field) in [
        (&b"|c:"[..], o.local_data()),
        (b"|e:", o.external_data()),
        (b"|card:", o.cardinality_raw()),
    ] {
        if let Some(value) = field {
            out.extend_from_slice(prefix);
            out.extend_from_slice(value);
        }
    }
}
