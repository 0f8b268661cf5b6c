//! Property tests of the DogStatsD parser.
//!
//! * (a) generated valid messages, rendered to the wire by a small renderer here, parse back to the
//!   fields they were generated from;
//! * (b) arbitrary and mutated packets never panic, yield one result per non-empty line, and every
//!   accepted message can be read whole and respects the configured limits;
//! * (c) the parser agrees with a deliberately naive reference parser written from the spec's
//!   algorithm text (§1.2–§1.4, decision table §2.2), on valid messages and near misses.

use dogpipe::{
    AlertType, Cardinality, Message, MessageKind, MetricType, Origin, OwnedMessage, ParseErrorKind,
    ParserConfig, Priority, parse_message, parse_packet,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// What a message says, owned: both the parser's output and the expectations are turned into this.
// ---------------------------------------------------------------------------------------------

type Bytes = Vec<u8>;

#[derive(Debug, Clone, PartialEq)]
enum Observed {
    Metric {
        name: Bytes,
        metric_type: &'static str,
        /// Bit patterns, NaN canonicalised, so that equality is exact.
        values: Vec<u64>,
        set_member: Option<Bytes>,
        sample_rate: u64,
        tags: Vec<Bytes>,
        timestamp: Option<i64>,
        origin: [Option<Bytes>; 3],
    },
    Event {
        /// Unescaped (`\n` escapes replaced).
        title: Bytes,
        text: Bytes,
        timestamp: Option<i64>,
        hostname: Option<Bytes>,
        aggregation_key: Option<Bytes>,
        priority: &'static str,
        source_type_name: Option<Bytes>,
        alert_type: &'static str,
        tags: Vec<Bytes>,
        origin: [Option<Bytes>; 3],
    },
    ServiceCheck {
        name: Bytes,
        status: u8,
        timestamp: Option<i64>,
        hostname: Option<Bytes>,
        message: Option<Bytes>,
        tags: Vec<Bytes>,
        origin: [Option<Bytes>; 3],
    },
}

fn bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

fn owned(b: Option<&[u8]>) -> Option<Bytes> {
    b.map(<[u8]>::to_vec)
}

/// Reads every origin accessor (decoders included) and returns the raw fields.
fn observe_origin(o: &Origin<'_>) -> [Option<Bytes>; 3] {
    let _ = (
        o.is_empty(),
        o.container_id(),
        o.cgroup_inode(),
        o.external_init(),
        o.external_container_name(),
        o.external_pod_uid(),
        o.cardinality(),
    );
    [
        owned(o.local_data()),
        owned(o.external_data()),
        owned(o.cardinality_raw()),
    ]
}

/// Consumes every accessor of a parsed message.
fn observe(message: &Message<'_>) -> Observed {
    match message {
        Message::Metric(m) => {
            let values: Vec<u64> = m.values().map(bits).collect();
            assert_eq!(m.values().len(), values.len());
            if m.metric_type() == MetricType::Set {
                assert!(values.is_empty());
                assert_eq!(m.value_count(), 1);
            } else {
                assert_eq!(m.value_count(), values.len());
            }
            let tags: Vec<Bytes> = m.tags().map(<[u8]>::to_vec).collect();
            assert_eq!(tags.len(), m.tag_count());
            Observed::Metric {
                name: m.name().to_vec(),
                metric_type: m.metric_type().as_wire(),
                values,
                set_member: owned(m.set_member()),
                sample_rate: bits(m.sample_rate()),
                tags,
                timestamp: m.timestamp(),
                origin: observe_origin(&m.origin()),
            }
        }
        Message::Event(e) => Observed::Event {
            title: e.title().into_owned(),
            text: e.text().into_owned(),
            timestamp: e.timestamp(),
            hostname: owned(e.hostname()),
            aggregation_key: owned(e.aggregation_key()),
            priority: e.priority().as_str(),
            source_type_name: owned(e.source_type_name()),
            alert_type: e.alert_type().as_str(),
            tags: e.tags().map(<[u8]>::to_vec).collect(),
            origin: observe_origin(&e.origin()),
        },
        Message::ServiceCheck(sc) => Observed::ServiceCheck {
            name: sc.name().to_vec(),
            status: sc.status().as_u8(),
            timestamp: sc.timestamp(),
            hostname: owned(sc.hostname()),
            message: owned(sc.message()),
            tags: sc.tags().map(<[u8]>::to_vec).collect(),
            origin: observe_origin(&sc.origin()),
        },
    }
}

fn tags_of(message: &Message<'_>) -> Vec<Bytes> {
    match message {
        Message::Metric(m) => m.tags().map(<[u8]>::to_vec).collect(),
        Message::Event(e) => e.tags().map(<[u8]>::to_vec).collect(),
        Message::ServiceCheck(sc) => sc.tags().map(<[u8]>::to_vec).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Generated valid messages and their renderer.
// ---------------------------------------------------------------------------------------------

/// The client origin fields of a generated message.
#[derive(Debug, Clone, Default)]
struct GenOrigin {
    /// `c:` raw text, expected container id and inode.
    local: Option<(String, Option<String>, Option<u64>)>,
    /// `e:` raw text and its (init, container name, pod uid).
    external: Option<(String, bool, String, String)>,
    /// `card:` raw text and its decoded value.
    cardinality: Option<(String, Cardinality)>,
}

impl GenOrigin {
    fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((raw, ..)) = &self.local {
            out.push(format!("c:{raw}"));
        }
        if let Some((raw, ..)) = &self.external {
            out.push(format!("e:{raw}"));
        }
        if let Some((raw, _)) = &self.cardinality {
            out.push(format!("card:{raw}"));
        }
        out
    }

    fn expected(&self) -> [Option<Bytes>; 3] {
        [
            self.local.as_ref().map(|l| l.0.clone().into_bytes()),
            self.external.as_ref().map(|e| e.0.clone().into_bytes()),
            self.cardinality.as_ref().map(|c| c.0.clone().into_bytes()),
        ]
    }

    /// Checks the decoded accessors against what was generated.
    fn check_decoded(&self, o: &Origin<'_>) {
        if let Some((_, id, inode)) = &self.local {
            assert_eq!(o.container_id(), id.as_deref().map(str::as_bytes));
            assert_eq!(o.cgroup_inode(), *inode);
        }
        if let Some((_, init, name, pod)) = &self.external {
            assert_eq!(o.external_init(), Some(*init));
            assert_eq!(o.external_container_name(), Some(name.as_bytes()));
            assert_eq!(o.external_pod_uid(), Some(pod.as_bytes()));
        }
        if let Some((_, c)) = &self.cardinality {
            assert_eq!(o.cardinality(), Some(*c));
        }
        let none = self.local.is_none() && self.external.is_none() && self.cardinality.is_none();
        assert_eq!(o.is_empty(), none);
    }
}

#[derive(Debug, Clone)]
struct GenMetric {
    name: String,
    metric_type: MetricType,
    /// Value texts and their values; for a set, the member is `set_member`.
    values: Vec<(String, f64)>,
    /// Per value, whether an empty item (`::`) precedes it; and a trailing `:`.
    empty_before: Vec<bool>,
    trailing_colon: bool,
    set_member: String,
    sample_rate: Option<(String, f64)>,
    tags: Option<Vec<String>>,
    timestamp: Option<(String, i64)>,
    origin: GenOrigin,
    /// Fields the parser must ignore.
    unknown: Vec<String>,
    /// Whether earlier duplicates of the present fields come first (the real ones must win).
    decoys: bool,
    order: Vec<u8>,
}

#[derive(Debug, Clone)]
struct GenEvent {
    title: String,
    text: String,
    timestamp: Option<i64>,
    hostname: Option<String>,
    aggregation_key: Option<String>,
    priority: Option<Priority>,
    source_type_name: Option<String>,
    alert_type: Option<AlertType>,
    tags: Option<Vec<String>>,
    origin: GenOrigin,
    unknown: Vec<String>,
    invalid_tail: bool,
    order: Vec<u8>,
}

#[derive(Debug, Clone)]
struct GenServiceCheck {
    name: String,
    status: u8,
    timestamp: Option<i64>,
    hostname: Option<String>,
    message: Option<String>,
    tags: Option<Vec<String>>,
    origin: GenOrigin,
    unknown: Vec<String>,
    order: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Gen {
    Metric(GenMetric),
    Event(GenEvent),
    ServiceCheck(GenServiceCheck),
}

/// Sorts `fields` by the random keys in `order` (a shuffle driven by the generator).
fn shuffled(fields: Vec<String>, order: &[u8]) -> Vec<String> {
    let mut keyed: Vec<(u8, usize, String)> = fields
        .into_iter()
        .enumerate()
        .map(|(i, f)| (order.get(i).copied().unwrap_or(0), i, f))
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, _, f)| f).collect()
}

fn tags_field(tags: &[String]) -> String {
    format!("#{}", tags.join(","))
}

/// The tags a `#` field yields: a lone empty tag is written `#`, which means no tags.
fn expected_tags(tags: &Option<Vec<String>>) -> Vec<Bytes> {
    match tags {
        Some(t) if !(t.len() == 1 && t[0].is_empty()) => {
            t.iter().map(|s| s.clone().into_bytes()).collect()
        }
        _ => Vec::new(),
    }
}

fn unescape(s: &str) -> Bytes {
    s.replace("\\n", "\n").into_bytes()
}

impl Gen {
    fn render(&self) -> String {
        match self {
            Gen::Metric(m) => {
                let mut out = format!("{}:", m.name);
                if m.metric_type == MetricType::Set {
                    out.push_str(&m.set_member);
                } else {
                    for (i, (text, _)) in m.values.iter().enumerate() {
                        if m.empty_before[i] {
                            out.push(':');
                        }
                        if i > 0 {
                            out.push(':');
                        }
                        out.push_str(text);
                    }
                    if m.trailing_colon {
                        out.push(':');
                    }
                }
                out.push('|');
                out.push_str(m.metric_type.as_wire());
                let mut fields = m.unknown.clone();
                if let Some((text, _)) = &m.sample_rate {
                    fields.push(format!("@{text}"));
                }
                if let Some(tags) = &m.tags {
                    fields.push(tags_field(tags));
                }
                if let Some((text, _)) = &m.timestamp {
                    fields.push(format!("T{text}"));
                }
                fields.extend(m.origin.fields());
                let mut all = Vec::new();
                if m.decoys {
                    // Earlier occurrences of the fields present: the last one must win.
                    let o = &m.origin;
                    for (present, decoy) in [
                        (m.sample_rate.is_some(), "@0.125"),
                        (m.tags.is_some(), "#decoy:1,decoy:2"),
                        (m.timestamp.is_some(), "T42"),
                        (o.local.is_some(), "c:ci-decoy"),
                        (o.external.is_some(), "e:cn-decoy"),
                        (o.cardinality.is_some(), "card:none"),
                    ] {
                        if present {
                            all.push(decoy.to_string());
                        }
                    }
                }
                all.extend(shuffled(fields, &m.order));
                for f in all {
                    out.push('|');
                    out.push_str(&f);
                }
                out
            }
            Gen::Event(e) => {
                let mut out = format!(
                    "_e{{{},{}}}:{}|{}",
                    e.title.len(),
                    e.text.len(),
                    e.title,
                    e.text
                );
                let mut fields = e.unknown.clone();
                if let Some(ts) = e.timestamp {
                    fields.push(format!("d:{ts}"));
                }
                for (prefix, value) in [
                    ("h:", &e.hostname),
                    ("k:", &e.aggregation_key),
                    ("s:", &e.source_type_name),
                ] {
                    if let Some(v) = value {
                        fields.push(format!("{prefix}{v}"));
                    }
                }
                if let Some(p) = e.priority {
                    fields.push(format!("p:{}", p.as_str()));
                }
                if let Some(t) = e.alert_type {
                    fields.push(format!("t:{}", t.as_str()));
                }
                if let Some(tags) = &e.tags {
                    fields.push(tags_field(tags));
                }
                fields.extend(e.origin.fields());
                let mut all = shuffled(fields, &e.order);
                if e.invalid_tail {
                    // Invalid values are ignored: the fields keep their earlier value.
                    all.extend(["p:urgent".to_string(), "t:fatal".into(), "d:abc".into()]);
                }
                for f in all {
                    out.push('|');
                    out.push_str(&f);
                }
                out
            }
            Gen::ServiceCheck(sc) => {
                let mut out = format!("_sc|{}|{}", sc.name, sc.status);
                let mut fields = sc.unknown.clone();
                if let Some(ts) = sc.timestamp {
                    fields.push(format!("d:{ts}"));
                }
                if let Some(h) = &sc.hostname {
                    fields.push(format!("h:{h}"));
                }
                if let Some(m) = &sc.message {
                    fields.push(format!("m:{m}"));
                }
                if let Some(tags) = &sc.tags {
                    fields.push(tags_field(tags));
                }
                fields.extend(sc.origin.fields());
                for f in shuffled(fields, &sc.order) {
                    out.push('|');
                    out.push_str(&f);
                }
                out
            }
        }
    }

    fn expected(&self) -> Observed {
        let b = |s: &Option<String>| s.as_ref().map(|s| s.clone().into_bytes());
        match self {
            Gen::Metric(m) => Observed::Metric {
                name: m.name.clone().into_bytes(),
                metric_type: m.metric_type.as_wire(),
                values: if m.metric_type == MetricType::Set {
                    Vec::new()
                } else {
                    m.values.iter().map(|(_, v)| bits(*v)).collect()
                },
                set_member: (m.metric_type == MetricType::Set)
                    .then(|| m.set_member.clone().into_bytes()),
                sample_rate: bits(m.sample_rate.as_ref().map_or(1.0, |r| r.1)),
                tags: expected_tags(&m.tags),
                timestamp: m.timestamp.as_ref().map(|t| t.1),
                origin: m.origin.expected(),
            },
            Gen::Event(e) => Observed::Event {
                title: unescape(&e.title),
                text: unescape(&e.text),
                timestamp: e.timestamp,
                hostname: b(&e.hostname),
                aggregation_key: b(&e.aggregation_key),
                priority: e.priority.unwrap_or_default().as_str(),
                source_type_name: b(&e.source_type_name),
                alert_type: e.alert_type.unwrap_or_default().as_str(),
                tags: expected_tags(&e.tags),
                origin: e.origin.expected(),
            },
            Gen::ServiceCheck(sc) => Observed::ServiceCheck {
                name: sc.name.clone().into_bytes(),
                status: sc.status,
                timestamp: sc.timestamp,
                hostname: b(&sc.hostname),
                message: b(&sc.message),
                tags: expected_tags(&sc.tags),
                origin: sc.origin.expected(),
            },
        }
    }

    fn origin(&self) -> &GenOrigin {
        match self {
            Gen::Metric(m) => &m.origin,
            Gen::Event(e) => &e.origin,
            Gen::ServiceCheck(sc) => &sc.origin,
        }
    }
}

fn finite_f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |v| v.is_finite())
}

/// A value as text, and the f64 Go's `ParseFloat` reads from it.
fn value() -> impl Strategy<Value = (String, f64)> {
    prop_oneof![
        4 => (-1_000_000i64..1_000_000).prop_map(|i| (i.to_string(), i as f64)),
        3 => (0u32..100_000, 0u32..1000).prop_map(|(a, b)| {
            let s = format!("{a}.{b:03}");
            let v = s.parse().unwrap();
            (s, v)
        }),
        // Up to 17 digits with a dot anywhere: both sides of the parser's short-decimal fast
        // path, checked against std's correctly rounded conversion.
        2 => ("[0-9]{1,17}", any::<usize>(), select(vec!["", "-", "+"])).prop_map(
            |(digits, dot, sign)| {
                let at = dot % (digits.len() + 1);
                let s = format!("{sign}{}.{}", &digits[..at], &digits[at..]);
                let v = s.parse().unwrap();
                (s, v)
            }
        ),
        2 => finite_f64().prop_map(|v| (format!("{v:?}"), v)),
        1 => finite_f64().prop_map(|v| (format!("{v:e}"), v)),
        1 => finite_f64().prop_map(|v| (format!("{:E}", v), v)),
        1 => select(vec![
            ("NaN", f64::NAN),
            ("nan", f64::NAN),
            ("Inf", f64::INFINITY),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("infinity", f64::INFINITY),
            ("-INFINITY", f64::NEG_INFINITY),
            (".5", 0.5),
            ("5.", 5.0),
            ("+4", 4.0),
            ("-0", -0.0),
            ("1_000.5", 1000.5),
            ("1e-400", 0.0),
            ("1.7976931348623157e308", f64::MAX),
        ])
        .prop_map(|(s, v)| (s.to_string(), v)),
    ]
}

fn tag_list() -> impl Strategy<Value = Vec<String>> {
    vec("[a-z0-9:._/ é-]{0,12}", 0..=15)
}

fn origin() -> impl Strategy<Value = GenOrigin> {
    let local = prop_oneof![
        "[a-f0-9]{1,12}".prop_map(|id| (format!("ci-{id}"), Some(id), None)),
        ("[a-f0-9]{1,12}", any::<u32>()).prop_map(|(id, n)| (
            format!("ci-{id},in-{n}"),
            Some(id),
            Some(u64::from(n))
        )),
        any::<u32>().prop_map(|n| (format!("in-{n}"), None, Some(u64::from(n)))),
        "[a-f0-9]{1,16}".prop_map(|id| (id.clone(), Some(id), None)),
        "[a-f0-9]{1,12}".prop_map(|id| (format!("cid-{id}"), Some(id), None)),
    ];
    let external = (any::<bool>(), "[a-z]{0,8}", "[a-f0-9-]{0,12}")
        .prop_map(|(it, cn, pu)| (format!("it-{it},cn-{cn},pu-{pu}"), it, cn, pu));
    let cardinality = select(vec![
        ("none", Cardinality::None),
        ("low", Cardinality::Low),
        ("orchestrator", Cardinality::Orchestrator),
        ("high", Cardinality::High),
        ("HIGH", Cardinality::High),
        ("Low", Cardinality::Low),
    ])
    .prop_map(|(s, c)| (s.to_string(), c));
    (
        option::of(local),
        option::of(external),
        option::of(cardinality),
    )
        .prop_map(|(local, external, cardinality)| GenOrigin {
            local,
            external,
            cardinality,
        })
}

fn metric_type() -> impl Strategy<Value = MetricType> {
    select(vec![
        MetricType::Count,
        MetricType::Gauge,
        MetricType::Timing,
        MetricType::Histogram,
        MetricType::Set,
        MetricType::Distribution,
    ])
}

fn gen_metric() -> impl Strategy<Value = Gen> {
    let head = (
        "[a-zA-Z0-9_. @#é♬-]{1,16}",
        metric_type(),
        vec((value(), prop::bool::weighted(0.15)), 1..6),
        any::<bool>(),
        "[a-z0-9:.é]{1,10}",
    );
    let fields = (
        option::of(prop_oneof![
            finite_f64().prop_map(|v| (format!("{v:?}"), v)),
            (1u32..=1000).prop_map(|n| {
                let v = f64::from(n) / 1000.0;
                (format!("{v}"), v)
            }),
        ]),
        option::of(tag_list()),
        option::of(
            (1i64..=i64::MAX, any::<bool>())
                .prop_map(|(t, plus)| (if plus { format!("+{t}") } else { t.to_string() }, t)),
        ),
        origin(),
        vec(select(vec!["", "f:x", "m:test", "zz", "x:1|y"]), 0..3),
        prop::bool::weighted(0.2),
        vec(any::<u8>(), 12),
    );
    (head, fields).prop_map(
        |(
            (name, metric_type, values, trailing_colon, set_member),
            (sample_rate, tags, timestamp, origin, unknown, decoys, order),
        )| {
            let (values, empty_before) = values.into_iter().unzip();
            Gen::Metric(GenMetric {
                name,
                metric_type,
                values,
                empty_before,
                trailing_colon,
                set_member,
                sample_rate,
                tags,
                timestamp,
                origin,
                unknown: unknown.into_iter().map(str::to_string).collect(),
                decoys,
                order,
            })
        },
    )
}

/// Title or text: pieces that include `|`, `:`, `\n` escapes and multi-byte characters.
fn event_text(min: usize) -> impl Strategy<Value = String> {
    vec(
        select(vec![
            "a", "Z", "é", "♬", "|", ":", " ", "\\n", "x|y:z", "#", "}", "{", ",",
        ]),
        min..8,
    )
    .prop_map(|pieces| pieces.concat())
}

fn field_value() -> impl Strategy<Value = String> {
    "[a-z0-9.:é #,-]{0,10}"
}

fn gen_event() -> impl Strategy<Value = Gen> {
    (
        (event_text(1), event_text(0), option::of(any::<i64>())),
        (
            option::of(field_value()),
            option::of(field_value()),
            option::of(select(vec![Priority::Low, Priority::Normal])),
            option::of(field_value()),
            option::of(select(vec![
                AlertType::Error,
                AlertType::Warning,
                AlertType::Info,
                AlertType::Success,
            ])),
        ),
        (
            option::of(tag_list()),
            origin(),
            vec(select(vec!["", "f:x", "m:test", "zz"]), 0..3),
            any::<bool>(),
            vec(any::<u8>(), 14),
        ),
    )
        .prop_map(
            |(
                (title, text, timestamp),
                (hostname, aggregation_key, priority, source_type_name, alert_type),
                (tags, origin, unknown, invalid_tail, order),
            )| {
                Gen::Event(GenEvent {
                    title,
                    text,
                    timestamp,
                    hostname,
                    aggregation_key,
                    priority,
                    source_type_name,
                    alert_type,
                    tags,
                    origin,
                    unknown: unknown.into_iter().map(str::to_string).collect(),
                    invalid_tail,
                    order,
                })
            },
        )
}

fn gen_service_check() -> impl Strategy<Value = Gen> {
    (
        "[a-zA-Z0-9_. é:#@-]{1,16}",
        0u8..4,
        option::of(any::<i64>()),
        option::of(field_value()),
        option::of("[a-zA-Z0-9 .:,#é-]{0,20}"),
        option::of(tag_list()),
        origin(),
        vec(select(vec!["", "f:x", "zz"]), 0..3),
        vec(any::<u8>(), 10),
    )
        .prop_map(
            |(name, status, timestamp, hostname, message, tags, origin, unknown, order)| {
                Gen::ServiceCheck(GenServiceCheck {
                    name,
                    status,
                    timestamp,
                    hostname,
                    message,
                    tags,
                    origin,
                    unknown: unknown.into_iter().map(str::to_string).collect(),
                    order,
                })
            },
        )
}

fn gen_message() -> impl Strategy<Value = Gen> {
    prop_oneof![6 => gen_metric(), 2 => gen_event(), 2 => gen_service_check()]
}

fn origin_config() -> ParserConfig {
    ParserConfig::default().with_origin_detection_client(true)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn property_test_rendered_messages_parse_back(
        messages in vec(gen_message(), 1..8),
        crlf in any::<bool>(),
    ) {
        let config = origin_config();
        for g in &messages {
            let line = g.render();
            let parsed = parse_message(line.as_bytes(), &config);
            let message = match parsed {
                Ok(m) => m,
                Err(e) => panic!("{line:?} rejected: {e}"),
            };
            prop_assert_eq!(observe(&message), g.expected(), "line {:?}", line);
            let origin = match &message {
                Message::Metric(m) => m.origin(),
                Message::Event(e) => e.origin(),
                Message::ServiceCheck(sc) => sc.origin(),
            };
            g.origin().check_decoded(&origin);
        }

        // The same messages in one packet, through the framer.
        let eol = if crlf { "\r\n" } else { "\n" };
        let packet: String = messages.iter().map(|g| g.render() + eol).collect();
        let parsed: Vec<_> = parse_packet(packet.as_bytes(), &config).collect();
        prop_assert_eq!(parsed.len(), messages.len());
        for (g, result) in messages.iter().zip(&parsed) {
            let message = result.as_ref().unwrap();
            prop_assert_eq!(observe(message), g.expected());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Arbitrary and mutated bytes.
// ---------------------------------------------------------------------------------------------

/// Bytes that make up the protocol's structure, so random packets reach deep into the parser.
const ALPHABET: &[u8] = b"ab:|#@Tce,_{}0123456789.\n\r-+xpnNI \\";

fn arbitrary_config() -> impl Strategy<Value = ParserConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        option::of(0u32..20),
        option::of(0u32..40),
        option::of(0u32..300),
    )
        .prop_map(|(origin, timestamps, tags, tag_bytes, message_bytes)| {
            let mut c = ParserConfig::default()
                .with_origin_detection_client(origin)
                .with_timestamps(timestamps);
            if let Some(n) = tags {
                c = c.with_max_tags(n);
            }
            if let Some(n) = tag_bytes {
                c = c.with_max_tag_bytes(n);
            }
            if let Some(n) = message_bytes {
                c = c.with_max_message_bytes(n);
            }
            c
        })
}

#[derive(Debug, Clone)]
enum ByteMutation {
    Delete(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    let byte = prop_oneof![any::<u8>(), select(ALPHABET.to_vec())];
    prop_oneof![
        any::<usize>().prop_map(ByteMutation::Delete),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| ByteMutation::Insert(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| ByteMutation::Replace(i, b)),
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| ByteMutation::Duplicate(i, n)),
        any::<usize>().prop_map(ByteMutation::Truncate),
    ]
}

fn apply_bytes(packet: &mut Vec<u8>, mutation: &ByteMutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *mutation {
        ByteMutation::Delete(i) if !packet.is_empty() => {
            packet.remove(at(i, packet.len()));
        }
        ByteMutation::Insert(i, b) => packet.insert(at(i, packet.len() + 1), b),
        ByteMutation::Replace(i, b) if !packet.is_empty() => {
            let i = at(i, packet.len());
            packet[i] = b;
        }
        ByteMutation::Duplicate(i, n) if !packet.is_empty() => {
            let i = at(i, packet.len());
            let end = (i + n).min(packet.len());
            let piece = packet[i..end].to_vec();
            packet.splice(i..i, piece);
        }
        ByteMutation::Truncate(i) => packet.truncate(at(i, packet.len() + 1)),
        _ => {}
    }
}

fn arbitrary_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..300),
        vec(select(ALPHABET.to_vec()), 0..300),
        (vec(gen_message(), 1..5), vec(byte_mutation(), 0..6)).prop_map(|(messages, muts)| {
            let mut packet: Vec<u8> = messages
                .iter()
                .flat_map(|g| (g.render() + "\n").into_bytes())
                .collect();
            for m in &muts {
                apply_bytes(&mut packet, m);
            }
            packet
        }),
    ]
}

/// The messages of a packet, split the simplest way: on `\n`, one trailing `\r` removed, empty
/// lines dropped.
fn naive_lines(packet: &[u8]) -> Vec<&[u8]> {
    packet
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn property_test_arbitrary_bytes_never_panic(
        packet in arbitrary_packet(),
        config in arbitrary_config(),
    ) {
        let lines = naive_lines(&packet);
        let results: Vec<_> = parse_packet(&packet, &config).collect();
        prop_assert_eq!(results.len(), lines.len());
        for (line, result) in lines.iter().zip(results) {
            match result {
                Ok(message) => {
                    prop_assert_eq!(message.line(), *line);
                    prop_assert_eq!(message.kind(), MessageKind::of(line));
                    let _ = observe(&message);
                    if let Message::Event(e) = &message {
                        let _ = (e.title_raw(), e.text_raw());
                    }
                    // The owned forms re-bind the same layout: copied, shared, or parsed
                    // from `Bytes`.
                    let seen = format!("{:?}", observe(&message));
                    let shared_packet = bytes::Bytes::copy_from_slice(&packet);
                    let reparsed = parse_packet(&shared_packet, &config)
                        .flatten()
                        .find(|m| m.line() == message.line())
                        .map(|m| m.share(&shared_packet));
                    let from_bytes =
                        OwnedMessage::parse(bytes::Bytes::copy_from_slice(line), &config);
                    for owned in [Some(message.to_owned_message()), reparsed, from_bytes.ok()] {
                        let owned = owned.expect("the owned form parses too");
                        prop_assert_eq!(&format!("{:?}", observe(&owned.message())), &seen);
                        prop_assert_eq!(owned.line().as_ref(), *line);
                    }
                    prop_assert!(line.len() <= config.max_message_bytes() as usize);
                    let tags = tags_of(&message);
                    prop_assert!(tags.len() <= config.max_tags() as usize);
                    for tag in &tags {
                        prop_assert!(tag.len() <= config.max_tag_bytes() as usize);
                    }
                }
                Err(e) => {
                    prop_assert_eq!(e.message_kind(), MessageKind::of(line));
                    let from_bytes =
                        OwnedMessage::parse(bytes::Bytes::copy_from_slice(line), &config);
                    prop_assert_eq!(from_bytes.err(), Some(e));
                    prop_assert!(e.offset() <= line.len(), "offset {} past {:?}", e.offset(), line);
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (c) A deliberately naive reference parser, straight from the spec text, with Strings and
// Vecs and split(). Its only job is to be obviously right, not fast.
// ---------------------------------------------------------------------------------------------

mod reference {
    use super::{Bytes, Observed, bits};
    use dogpipe::{ParseErrorKind as K, ParserConfig};

    /// Go's `strconv.ParseFloat(s, 64)`, by way of Rust's `str::parse::<f64>` plus the places
    /// where Go differs: no sign on NaN, `_` between digits, overflow is an error, and (dogpipe's
    /// documented divergence) no hexadecimal floats.
    pub fn go_parse_float(s: &str) -> Result<f64, K> {
        let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
        if unsigned.eq_ignore_ascii_case("nan") && unsigned.len() != s.len() {
            return Err(K::InvalidValue); // Go: "+NaN" is a syntax error; Rust accepts it.
        }
        let special = ["inf", "infinity", "nan"]
            .iter()
            .any(|w| unsigned.eq_ignore_ascii_case(w));
        let cleaned: String = if s.contains('_') {
            if !underscores_ok(s) {
                return Err(K::InvalidValue);
            }
            s.replace('_', "")
        } else {
            s.to_string()
        };
        // Rust accepts a few spellings Go does not, and the reverse: keep to digits, sign, `.`,
        // exponent for the non-special forms.
        if !special
            && !cleaned
                .chars()
                .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        {
            return Err(K::InvalidValue);
        }
        let v: f64 = cleaned.parse().map_err(|_| K::InvalidValue)?;
        if v.is_infinite() && !special {
            return Err(K::ValueOutOfRange);
        }
        Ok(v)
    }

    /// Go's rule: every `_` sits between two digits.
    fn underscores_ok(s: &str) -> bool {
        let c: Vec<char> = s.chars().collect();
        (0..c.len()).all(|i| {
            c[i] != '_'
                || (i > 0
                    && c[i - 1].is_ascii_digit()
                    && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        })
    }

    /// Go's `strconv.ParseInt(s, 10, 64)` (Rust's `i64` parser has the same grammar).
    fn go_parse_int(s: &str) -> Option<i64> {
        s.parse().ok()
    }

    fn bytes_parse_int(s: &[u8]) -> Option<i64> {
        go_parse_int(std::str::from_utf8(s).ok()?)
    }

    fn tags(raw: &[u8], config: &ParserConfig) -> Result<Vec<Bytes>, K> {
        let tags: Vec<Bytes> = if raw.is_empty() {
            Vec::new()
        } else {
            raw.split(|&b| b == b',').map(<[u8]>::to_vec).collect()
        };
        // Checked tag by tag, left to right: the first tag over a limit names the error.
        for (i, tag) in tags.iter().enumerate() {
            if i + 1 > config.max_tags() as usize {
                return Err(K::TooManyTags);
            }
            if tag.len() > config.max_tag_bytes() as usize {
                return Err(K::TagTooLong);
            }
        }
        Ok(tags)
    }

    fn origin_field(field: &[u8], origin: &mut [Option<Bytes>; 3]) {
        for (i, prefix) in [&b"c:"[..], b"e:", b"card:"].into_iter().enumerate() {
            if let Some(v) = field.strip_prefix(prefix) {
                origin[i] = Some(v.to_vec());
                return;
            }
        }
    }

    pub fn parse_line(line: &str, config: &ParserConfig) -> Result<Observed, K> {
        if line.len() > config.max_message_bytes() as usize {
            return Err(K::MessageTooLong);
        }
        if line.starts_with("_e{") {
            event(line, config)
        } else if line.starts_with("_sc|") {
            service_check(line, config)
        } else {
            metric(line, config)
        }
    }

    /// §1.2 steps 1–7.
    fn metric(line: &str, config: &ParserConfig) -> Result<Observed, K> {
        let Some((name_and_values, rest)) = line.split_once('|') else {
            return Err(K::MissingType);
        };
        let Some((name, raw_values)) = name_and_values.split_once(':') else {
            return Err(K::MissingValue);
        };
        if name.is_empty() {
            return Err(K::EmptyName);
        }
        if raw_values.is_empty() {
            return Err(K::EmptyValue);
        }
        let mut pieces: Vec<&str> = rest.split('|').collect();
        let metric_type = pieces.remove(0);
        if !["c", "g", "ms", "h", "s", "d"].contains(&metric_type) {
            return Err(K::UnknownType);
        }
        let mut values = Vec::new();
        let mut set_member = None;
        if metric_type == "s" {
            set_member = Some(raw_values.as_bytes().to_vec());
        } else if !raw_values.contains(':') {
            values.push(bits(go_parse_float(raw_values)?));
        } else {
            for item in raw_values.split(':').filter(|i| !i.is_empty()) {
                values.push(bits(go_parse_float(item)?));
            }
            if values.is_empty() {
                return Err(K::EmptyValue);
            }
        }
        let mut sample_rate = 1.0;
        let mut tag_list = Vec::new();
        let mut timestamp = None;
        let mut origin: [Option<Bytes>; 3] = Default::default();
        for field in pieces {
            if let Some(raw) = field.strip_prefix('#') {
                tag_list = tags(raw.as_bytes(), config)?;
            } else if let Some(raw) = field.strip_prefix('@') {
                sample_rate = go_parse_float(raw).map_err(|_| K::InvalidSampleRate)?;
            } else if field.starts_with('T') && config.timestamps() {
                match go_parse_int(&field[1..]) {
                    Some(t) if t >= 1 => timestamp = Some(t),
                    _ => return Err(K::InvalidTimestamp),
                }
            } else if config.origin_detection_client() {
                origin_field(field.as_bytes(), &mut origin);
            }
        }
        Ok(Observed::Metric {
            name: name.as_bytes().to_vec(),
            metric_type: match metric_type {
                "c" => "c",
                "g" => "g",
                "ms" => "ms",
                "h" => "h",
                "s" => "s",
                _ => "d",
            },
            values,
            set_member,
            sample_rate: bits(sample_rate),
            tags: tag_list,
            timestamp,
            origin,
        })
    }

    /// §1.3 steps 1–6, with dogpipe's documented divergence: the header must end with `}`.
    fn event(line: &str, config: &ParserConfig) -> Result<Observed, K> {
        let Some((header, _)) = line.split_once(':') else {
            return Err(K::InvalidEventHeader);
        };
        if header.len() < 7 || !header.ends_with('}') {
            return Err(K::InvalidEventHeader);
        }
        let lengths = &header[3..header.len() - 1];
        let Some((a, b)) = lengths.split_once(',') else {
            return Err(K::InvalidEventHeader);
        };
        let (Some(title_len), Some(text_len)) = (go_parse_int(a), go_parse_int(b)) else {
            return Err(K::InvalidEventHeader);
        };
        if title_len < 0 || text_len < 0 {
            return Err(K::InvalidEventHeader);
        }
        if title_len == 0 {
            return Err(K::EmptyEventTitle);
        }
        let (title_len, text_len) = (title_len as usize, text_len as usize);
        let body: Vec<u8> = line.as_bytes()[header.len() + 1..].to_vec();
        if (body.len() as u128) < title_len as u128 + 1 + text_len as u128 {
            return Err(K::EventTooShort);
        }
        let title = body[..title_len].to_vec();
        let text = body[title_len + 1..title_len + 1 + text_len].to_vec();
        let rest = body[title_len + 1 + text_len..].to_vec();
        let unescape = |raw: Vec<u8>| -> Bytes {
            let mut out = Vec::new();
            let mut i = 0;
            while i < raw.len() {
                if raw[i] == b'\\' && raw.get(i + 1) == Some(&b'n') {
                    out.push(b'\n');
                    i += 2;
                } else {
                    out.push(raw[i]);
                    i += 1;
                }
            }
            out
        };
        let mut timestamp = None;
        let (mut hostname, mut aggregation_key, mut source_type_name) = (None, None, None);
        let (mut priority, mut alert_type) = ("normal", "info");
        let mut tag_list = Vec::new();
        let mut origin: [Option<Bytes>; 3] = Default::default();
        for field in rest.split(|&b| b == b'|') {
            if let Some(raw) = field.strip_prefix(b"#") {
                tag_list = tags(raw, config)?;
            } else if let Some(v) = field.strip_prefix(b"d:") {
                if let Some(t) = bytes_parse_int(v) {
                    timestamp = Some(t);
                }
            } else if let Some(v) = field.strip_prefix(b"h:") {
                hostname = Some(v.to_vec());
            } else if let Some(v) = field.strip_prefix(b"k:") {
                aggregation_key = Some(v.to_vec());
            } else if let Some(v) = field.strip_prefix(b"s:") {
                source_type_name = Some(v.to_vec());
            } else if let Some(v) = field.strip_prefix(b"p:") {
                match v {
                    b"low" => priority = "low",
                    b"normal" => priority = "normal",
                    _ => {}
                }
            } else if let Some(v) = field.strip_prefix(b"t:") {
                match v {
                    b"error" => alert_type = "error",
                    b"warning" => alert_type = "warning",
                    b"info" => alert_type = "info",
                    b"success" => alert_type = "success",
                    _ => {}
                }
            } else if config.origin_detection_client() {
                origin_field(field, &mut origin);
            }
        }
        Ok(Observed::Event {
            title: unescape(title),
            text: unescape(text),
            timestamp,
            hostname,
            aggregation_key,
            priority,
            source_type_name,
            alert_type,
            tags: tag_list,
            origin,
        })
    }

    /// §1.4 steps 1–4 (with dogpipe's `_sc|` prefix).
    fn service_check(line: &str, config: &ParserConfig) -> Result<Observed, K> {
        if line.matches('|').count() < 2 {
            return Err(K::MissingServiceCheckFields);
        }
        let mut pieces = line[4..].split('|');
        let name = pieces.next().unwrap_or("");
        if name.is_empty() {
            return Err(K::EmptyServiceCheckName);
        }
        let status = match pieces.next().unwrap_or("") {
            "0" => 0,
            "1" => 1,
            "2" => 2,
            "3" => 3,
            _ => return Err(K::InvalidServiceCheckStatus),
        };
        let mut timestamp = None;
        let (mut hostname, mut message) = (None, None);
        let mut tag_list = Vec::new();
        let mut origin: [Option<Bytes>; 3] = Default::default();
        for field in pieces {
            if let Some(raw) = field.strip_prefix('#') {
                tag_list = tags(raw.as_bytes(), config)?;
            } else if let Some(v) = field.strip_prefix("d:") {
                if let Some(t) = go_parse_int(v) {
                    timestamp = Some(t);
                }
            } else if let Some(v) = field.strip_prefix("h:") {
                hostname = Some(v.as_bytes().to_vec());
            } else if let Some(v) = field.strip_prefix("m:") {
                message = Some(v.as_bytes().to_vec());
            } else if config.origin_detection_client() {
                origin_field(field.as_bytes(), &mut origin);
            }
        }
        Ok(Observed::ServiceCheck {
            name: name.as_bytes().to_vec(),
            status,
            timestamp,
            hostname,
            message,
            tags: tag_list,
            origin,
        })
    }

    /// §1.1: lines split on `\n`, one `\r` before it (or at the end) dropped, empty lines skipped.
    pub fn lines(packet: &str) -> Vec<String> {
        packet
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// A near-miss edit of a valid packet, on character boundaries (the input stays a `String`).
#[derive(Debug, Clone)]
enum Edit {
    /// Remove the n-th occurrence of a separator.
    Drop(char, usize),
    /// Double the n-th occurrence of a separator.
    Duplicate(char, usize),
    /// Insert a snippet at a character position.
    Insert(usize, &'static str),
    /// Replace the n-th field after a `|` by a snippet.
    ReplaceField(usize, &'static str),
    /// Replace what lies between the first `:` and the next `|` of the n-th line (a metric's
    /// values, an event's title) by a snippet.
    ReplaceValues(usize, &'static str),
    /// Remove what precedes the first `:` of the n-th line (a metric's name, an event header).
    DropName(usize),
    /// Put a snippet in front of the n-th line (another kind's prefix, a bad event header).
    Prefix(usize, &'static str),
    /// Cut the packet at a character position.
    Truncate(usize),
}

const VALUE_SNIPPETS: &[&str] = &[
    "",
    ":",
    "::",
    "1e400",
    "-1e400",
    "1:1e400",
    "1e308:1e309",
    "0x1p3",
    "1_0",
    "1__0",
    "_1",
    "+nan",
    "-NaN",
    "NaN",
    "+Inf",
    "infinity",
    "infinit",
    " 1",
    "1 ",
    "abc",
    "1.5e",
    ".",
    "-.5",
    "1.e5",
    "1e-400",
    "0,5",
    "1::2",
    "12345678901234567890",
];

const SNIPPETS: &[&str] = &[
    "|",
    ":",
    "#",
    "@",
    ",",
    "T",
    "|c",
    "|C",
    "|x",
    "|ms",
    "|@",
    "|@x",
    "|#",
    "||",
    "|T",
    "|T0",
    "|T-5",
    "|T+7",
    "é",
    "♬",
    "\r",
    "\r\n",
    "\n",
    "1e400",
    "-1e400",
    "0x1p3",
    "_",
    "1_0",
    "nan",
    "+nan",
    "-inf",
    "Infinity",
    " ",
    "}",
    "{",
    "_e{",
    "_sc|",
    "abc",
    "",
    "c:",
    "e:",
    "card:",
    "d:x",
    "p:low",
    "t:error",
    "h:",
    "m:",
    ".",
    "e5",
    "9999999999999999999",
];

fn edit() -> impl Strategy<Value = Edit> {
    let sep = select(vec!['|', ':', ',', '#', '@', '{', '}', 'T', '\n']);
    let snippet = select(SNIPPETS.to_vec());
    prop_oneof![
        (sep.clone(), 0usize..8).prop_map(|(c, n)| Edit::Drop(c, n)),
        (sep, 0usize..8).prop_map(|(c, n)| Edit::Duplicate(c, n)),
        (any::<usize>(), snippet.clone()).prop_map(|(i, s)| Edit::Insert(i, s)),
        (0usize..10, snippet).prop_map(|(i, s)| Edit::ReplaceField(i, s)),
        any::<usize>().prop_map(Edit::Truncate),
        (0usize..4, select(VALUE_SNIPPETS.to_vec())).prop_map(|(n, s)| Edit::ReplaceValues(n, s)),
        (0usize..4).prop_map(Edit::DropName),
        (
            0usize..4,
            select(vec![
                "_e{0,1}:",
                "_e{1,0}:",
                "_e{-1,2}:",
                "_e{2,1}",
                "_e{",
                "_sc|",
                "_sc",
                ":"
            ])
        )
            .prop_map(|(n, s)| Edit::Prefix(n, s)),
    ]
}

/// The byte range of the n-th line of `s` (without its `\n`).
fn line_range(s: &str, n: usize) -> Option<(usize, usize)> {
    let mut start = 0;
    for (i, line) in s.split('\n').enumerate() {
        if i == n {
            return Some((start, start + line.len()));
        }
        start += line.len() + 1;
    }
    None
}

fn char_position(s: &str, i: usize) -> usize {
    let boundaries: Vec<usize> = s.char_indices().map(|(b, _)| b).chain([s.len()]).collect();
    boundaries[i % boundaries.len()]
}

fn apply_edit(s: &mut String, e: &Edit) {
    match *e {
        Edit::Drop(c, n) => {
            if let Some((i, _)) = s.match_indices(c).nth(n) {
                s.remove(i);
            }
        }
        Edit::Duplicate(c, n) => {
            if let Some((i, _)) = s.match_indices(c).nth(n) {
                s.insert(i, c);
            }
        }
        Edit::Insert(i, snippet) => {
            let at = char_position(s, i);
            s.insert_str(at, snippet);
        }
        Edit::ReplaceField(n, snippet) => {
            if let Some((i, _)) = s.match_indices('|').nth(n) {
                let start = i + 1;
                let end = s[start..].find(['|', '\n']).map_or(s.len(), |j| start + j);
                s.replace_range(start..end, snippet);
            }
        }
        Edit::Truncate(i) => {
            let at = char_position(s, i);
            s.truncate(at);
        }
        Edit::ReplaceValues(n, snippet) => {
            if let Some((start, end)) = line_range(s, n) {
                let line = &s[start..end];
                if let Some(colon) = line.find(':') {
                    let from = start + colon + 1;
                    let to = line[colon..].find('|').map_or(end, |j| start + colon + j);
                    s.replace_range(from..to, snippet);
                }
            }
        }
        Edit::Prefix(n, snippet) => {
            if let Some((start, _)) = line_range(s, n) {
                s.insert_str(start, snippet);
            }
        }
        Edit::DropName(n) => {
            if let Some((start, end)) = line_range(s, n) {
                if let Some(colon) = s[start..end].find(':') {
                    s.replace_range(start..start + colon, "");
                }
            }
        }
    }
}

fn near_miss_packet() -> impl Strategy<Value = String> {
    (vec(gen_message(), 1..4), vec(edit(), 0..4), any::<bool>()).prop_map(
        |(messages, edits, crlf)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut packet: String = messages.iter().map(|g| g.render() + eol).collect();
            for e in &edits {
                apply_edit(&mut packet, e);
            }
            packet
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn property_test_agrees_with_naive_reference(
        packet in near_miss_packet(),
        config in arbitrary_config(),
    ) {
        let expected: Vec<Result<Observed, ParseErrorKind>> = reference::lines(&packet)
            .iter()
            .map(|line| reference::parse_line(line, &config))
            .collect();
        let actual: Vec<Result<Observed, ParseErrorKind>> = parse_packet(packet.as_bytes(), &config)
            .map(|r| r.map(|m| observe(&m)).map_err(|e| e.kind()))
            .collect();
        prop_assert_eq!(actual, expected, "packet {:?}", packet);
    }
}

#[test]
fn reference_float_parser_follows_go() {
    use reference::go_parse_float as f;
    assert_eq!(f("1_000.5"), Ok(1000.5));
    assert_eq!(f("1e400"), Err(ParseErrorKind::ValueOutOfRange));
    assert_eq!(f("+nan"), Err(ParseErrorKind::InvalidValue));
    assert_eq!(f("0x1p3"), Err(ParseErrorKind::InvalidValue));
    assert_eq!(f("1__0"), Err(ParseErrorKind::InvalidValue));
    assert_eq!(f("-Infinity"), Ok(f64::NEG_INFINITY));
    assert!(f("NaN").unwrap().is_nan());
}
