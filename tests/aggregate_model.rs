//! The sharded engine (and the single-shard aggregator) against a deliberately naive model: plain
//! maps from contexts to the raw samples of each bucket, statistics recomputed from scratch.

use dogpipe::{
    Aggregator, AggregatorConfig, Flush, ParserConfig, ShardedAggregator, parse_message,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const TYPES: [&str; 6] = ["c", "g", "s", "h", "ms", "d"];
const TAGS: [&str; 5] = ["a", "b:1", "c:2", "host:h1", "host:h2"];
const RATES: [&str; 6] = ["", "|@0.5", "|@0.25", "|@0", "|@2", "|@1"];
const VALUES: [&str; 6] = ["1", "2.5", "-3", "1e-10", "100", "NaN"];

#[derive(Debug, Clone)]
enum Step {
    Sample {
        name: u8,
        ty: usize,
        tags: Vec<usize>,
        values: Vec<usize>,
        rate: usize,
    },
    Advance(i64),
    Flush,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..3, 0..TYPES.len(), prop::collection::vec(0..TAGS.len(), 0..4),
              prop::collection::vec(0..VALUES.len(), 1..4), 0..RATES.len())
            .prop_map(|(name, ty, tags, values, rate)| Step::Sample { name, ty, tags, values, rate }),
        2 => (0i64..40).prop_map(Step::Advance),
        1 => Just(Step::Flush),
    ]
}

fn line(name: u8, ty: usize, tags: &[usize], values: &[usize], rate: usize) -> String {
    let values: Vec<&str> = if TYPES[ty] == "s" {
        vec![["x", "y", "z:1", "x", "y", "w"][values[0]]]
    } else {
        values.iter().map(|&v| VALUES[v]).collect()
    };
    let tags: Vec<&str> = tags.iter().map(|&t| TAGS[t]).collect();
    let mut l = format!("m{name}:{}|{}{}", values.join(":"), TYPES[ty], RATES[rate]);
    if !tags.is_empty() {
        l.push_str("|#");
        l.push_str(&tags.join(","));
    }
    l
}

// ---------------------------------------------------------------- the naive model

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Counter,
    Gauge,
    Set,
    Histogram,
    Distribution,
}

type Key = (Kind, String, String, Vec<String>);

#[derive(Debug, Default)]
struct Bucket {
    counter: f64,
    gauge: f64,
    members: BTreeSet<String>,
    hist: Vec<(f64, u64)>,
    hist_sum: f64,
    sketch_keys: BTreeMap<i32, u64>,
    sketch_cnt: i64,
    sketch_sum: f64,
    sketch_min: f64,
    sketch_max: f64,
}

#[derive(Debug, Default)]
struct Model {
    contexts: BTreeMap<Key, (i64, BTreeMap<i64, Bucket>)>,
    buckets: BTreeSet<i64>,
    last_cutoff: i64,
}

fn sketch_key(v: f64) -> i32 {
    if v < 0.0 {
        return -sketch_key(-v);
    }
    let ln_gamma = (2.0f64 / 128.0).ln_1p();
    if v == 0.0 || v < 1.015625f64.powi(1 - 1338) {
        return 0;
    }
    ((v.ln() / ln_gamma).round_ties_even() + 1338.0).max(1.0) as i32
}

impl Model {
    fn sample(&mut self, l: &str, now: i64) {
        let (name_values, rest) = l.split_once('|').unwrap();
        let (name, values) = name_values.split_once(':').unwrap();
        let mut fields = rest.split('|');
        let ty = fields.next().unwrap();
        let mut rate = 1.0;
        let mut tags = Vec::new();
        for f in fields {
            if let Some(r) = f.strip_prefix('@') {
                rate = r.parse().unwrap();
            } else if let Some(t) = f.strip_prefix('#') {
                tags = t.split(',').map(str::to_string).collect();
            }
        }
        let mut host = "agent".to_string();
        tags.retain(|t| match t.strip_prefix("host:") {
            Some(h) => {
                host = h.to_string();
                false
            }
            None => true,
        });
        tags.sort();
        tags.dedup();
        let kind = match ty {
            "c" => Kind::Counter,
            "g" => Kind::Gauge,
            "s" => Kind::Set,
            "h" | "ms" => Kind::Histogram,
            _ => Kind::Distribution,
        };
        if !(rate > 0.0 && rate <= 1.0) || kind == Kind::Gauge || kind == Kind::Set {
            rate = 1.0;
        }
        let bucket_start = now - now.rem_euclid(10);
        let parsed: Vec<f64> = if kind == Kind::Set {
            vec![0.0]
        } else {
            values
                .split(':')
                .map(|v| v.parse().unwrap())
                .filter(|v: &f64| v.is_finite())
                .collect()
        };
        self.buckets.insert(bucket_start);
        if parsed.is_empty() {
            return;
        }
        let entry = self
            .contexts
            .entry((kind, name.to_string(), host, tags))
            .or_default();
        entry.0 = entry.0.max(now);
        let b = entry.1.entry(bucket_start).or_default();
        for v in parsed {
            let n = 1.0 / rate;
            match kind {
                Kind::Counter => b.counter += v * n,
                Kind::Gauge => b.gauge = v,
                Kind::Set => {
                    b.members.insert(values.to_string());
                }
                Kind::Histogram => {
                    b.hist.push((v, n as u64));
                    b.hist_sum += v * n;
                }
                Kind::Distribution => {
                    if b.sketch_cnt == 0 {
                        (b.sketch_min, b.sketch_max) = (v, v);
                    }
                    b.sketch_min = b.sketch_min.min(v);
                    b.sketch_max = b.sketch_max.max(v);
                    b.sketch_cnt += n as i64;
                    b.sketch_sum += n * v;
                    *b.sketch_keys.entry(sketch_key(v)).or_default() += n as u64;
                }
            }
        }
    }

    fn flush(&mut self, now: i64, include_open: bool) -> Vec<String> {
        let cutoff = now - now.rem_euclid(10);
        let closes = |b: i64| include_open || b < cutoff;
        let mut zero: Vec<i64> = self
            .buckets
            .iter()
            .copied()
            .filter(|&b| closes(b))
            .collect();
        self.buckets.retain(|&b| !closes(b));
        if zero.is_empty() && cutoff - self.last_cutoff >= 10 {
            zero.push(cutoff - 10);
        }
        self.last_cutoff = self.last_cutoff.max(cutoff);
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (key, (last_seen, buckets)) in &mut self.contexts {
            let (kind, name, host, tags) = key;
            let closed: Vec<i64> = buckets.keys().copied().filter(|&b| closes(b)).collect();
            let series = |suffix: &str, ty: &str, points: &[(i64, f64)]| {
                format!("{name}{suffix} {ty} {host} {tags:?} {points:?}")
            };
            match kind {
                Kind::Counter => {
                    let mut points: Vec<(i64, f64)> = closed
                        .iter()
                        .map(|b| (*b, buckets[b].counter / 10.0))
                        .collect();
                    for &b in &zero {
                        if !closed.contains(&b) && *last_seen + 300 > b {
                            points.push((b, 0.0));
                        }
                    }
                    points.sort_by_key(|p| p.0);
                    if !points.is_empty() {
                        out.push(series("", "rate", &points));
                    }
                }
                Kind::Gauge | Kind::Set => {
                    let points: Vec<(i64, f64)> = closed
                        .iter()
                        .map(|b| {
                            let bk = &buckets[b];
                            (
                                *b,
                                if *kind == Kind::Gauge {
                                    bk.gauge
                                } else {
                                    bk.members.len() as f64
                                },
                            )
                        })
                        .collect();
                    if !points.is_empty() {
                        out.push(series("", "gauge", &points));
                    }
                }
                Kind::Histogram => {
                    let mut stats: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 5];
                    for b in &closed {
                        let bk = &buckets[b];
                        let mut v = bk.hist.clone();
                        v.sort_by(|a, b| a.0.total_cmp(&b.0));
                        let count: u64 = v.iter().map(|x| x.1).sum();
                        let rank = |target: i128| {
                            let mut seen = 0i128;
                            for &(x, w) in &v {
                                seen += w as i128;
                                if seen > target {
                                    return x;
                                }
                            }
                            v.last().unwrap().0
                        };
                        let values = [
                            v.last().unwrap().0,
                            rank((count as i128 - 1) / 2),
                            bk.hist_sum / count as f64,
                            count as f64 / 10.0,
                            rank((95 * count as i128 - 1) / 100),
                        ];
                        for (s, value) in stats.iter_mut().zip(values) {
                            s.push((*b, value));
                        }
                    }
                    if !closed.is_empty() {
                        for (i, (suffix, ty)) in [
                            (".max", "gauge"),
                            (".median", "gauge"),
                            (".avg", "gauge"),
                            (".count", "rate"),
                            (".95percentile", "gauge"),
                        ]
                        .into_iter()
                        .enumerate()
                        {
                            out.push(series(suffix, ty, &stats[i]));
                        }
                    }
                }
                Kind::Distribution => {
                    let points: Vec<String> = closed
                        .iter()
                        .map(|b| {
                            let bk = &buckets[b];
                            format!(
                                "({b},{},{},{},{},{:?})",
                                bk.sketch_cnt,
                                bk.sketch_min,
                                bk.sketch_max,
                                bk.sketch_sum,
                                bk.sketch_keys
                            )
                        })
                        .collect();
                    if !points.is_empty() {
                        out.push(format!("sketch {name} {host} {tags:?} {}", points.join("")));
                    }
                }
            }
            for b in closed {
                buckets.remove(&b);
            }
            let ttl = 20 + if *kind == Kind::Counter { 300 } else { 0 };
            if buckets.is_empty() && *last_seen + ttl < now {
                dead.push(key.clone());
            }
        }
        for k in dead {
            self.contexts.remove(&k);
        }
        out.sort();
        out
    }
}

// ---------------------------------------------------------------- the real thing, rendered alike

fn text(t: &[u8]) -> String {
    String::from_utf8(t.to_vec()).unwrap()
}

fn render(f: &Flush) -> Vec<String> {
    let mut out = Vec::new();
    for s in &f.series {
        let tags: Vec<String> = s.tags.iter().map(text).collect();
        let points: Vec<(i64, f64)> = s.points.iter().map(|p| (p.timestamp, p.value)).collect();
        out.push(format!(
            "{} {} {} {tags:?} {points:?}",
            text(&s.name),
            s.kind.as_str(),
            text(&s.host)
        ));
    }
    for s in &f.sketches {
        let tags: Vec<String> = s.tags.iter().map(text).collect();
        let points: Vec<String> = s
            .points
            .iter()
            .map(|p| {
                let keys: BTreeMap<i32, u64> = p
                    .keys
                    .iter()
                    .zip(&p.counts)
                    .map(|(&k, &n)| (k, u64::from(n)))
                    .collect();
                format!(
                    "({},{},{},{},{},{keys:?})",
                    p.timestamp, p.count, p.min, p.max, p.sum
                )
            })
            .collect();
        out.push(format!(
            "sketch {} {} {tags:?} {}",
            text(&s.name),
            text(&s.host),
            points.join("")
        ));
    }
    out.sort();
    out
}

/// The chunks `flush_in_chunks` hands over, joined, after checking each: not empty, and not
/// larger than `chunk` plus what one context can emit less one (five histogram series).
fn joined(chunk: usize, flush_in_chunks: impl FnOnce(&mut dyn FnMut(Flush))) -> Flush {
    let mut all = Flush::default();
    flush_in_chunks(&mut |part: Flush| {
        let items = part.series.len() + part.sketches.len();
        assert!(!part.is_empty(), "an empty chunk");
        assert!(items < chunk + 5, "{items} items in a chunk of {chunk}");
        all.append(part);
    });
    all
}

/// Inserts the lines received since the last call as one packet (`insert_all`).
fn insert_pending(
    agg: &mut Aggregator,
    pending: &mut Vec<String>,
    parser: &ParserConfig,
    now: i64,
) {
    let messages: Vec<_> = pending
        .iter()
        .map(|l| parse_message(l.as_bytes(), parser).unwrap())
        .collect();
    agg.insert_all(&messages, now);
    pending.clear();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn property_test_the_sharded_engine_equals_a_naive_model(
        steps in prop::collection::vec(step(), 1..80),
        shards in 1usize..4,
        chunk in 1usize..6,
    ) {
        let config = AggregatorConfig::default().with_hostname("agent");
        let mut engine = ShardedAggregator::new(config.clone(), shards);
        // The single-shard aggregator remembers lines (16 384 by default); a two-line cache
        // evicts constantly; none at all is the plain path.
        let mut tiny = Aggregator::new(config.clone().with_known_lines(2));
        let mut plain = Aggregator::new(config.clone().with_known_lines(0));
        let mut single = Aggregator::new(config.clone());
        // The same messages a packet at a time (`insert_all`), with a small cache that evicts.
        let mut batched = Aggregator::new(config.with_known_lines(4));
        let mut pending: Vec<String> = Vec::new();
        let mut model = Model::default();
        let parser = ParserConfig::default();
        let mut now = 1_700_000_000i64;
        let check = |engine_flush: Flush, single_flush: Flush, model_flush: Vec<String>| {
            let got = render(&engine_flush);
            prop_assert_eq!(&got, &model_flush);
            prop_assert_eq!(render(&single_flush), model_flush);
            Ok(())
        };
        for s in steps {
            match s {
                Step::Sample { name, ty, tags, values, rate } => {
                    let l = line(name, ty, &tags, &values, rate);
                    let m = parse_message(l.as_bytes(), &parser).unwrap();
                    engine.insert(&m, now);
                    single.insert(&m, now);
                    tiny.insert(&m, now);
                    plain.insert(&m, now);
                    model.sample(&l, now);
                    pending.push(l);
                }
                Step::Advance(d) => {
                    insert_pending(&mut batched, &mut pending, &parser, now);
                    now += d;
                }
                Step::Flush => {
                    insert_pending(&mut batched, &mut pending, &parser, now);
                    let reference = render(&plain.flush(now));
                    prop_assert_eq!(render(&tiny.flush(now)), reference.clone());
                    // Two of them flush in chunks.
                    let got = joined(chunk, |each| batched.flush_in_chunks(now, false, chunk, each));
                    prop_assert_eq!(render(&got), reference);
                    let got = joined(chunk, |each| engine.flush_in_chunks(now, false, chunk, each));
                    check(got, single.flush(now), model.flush(now, false))?;
                    prop_assert_eq!(engine.stats().live_contexts as usize, model.contexts.len());
                    prop_assert_eq!(single.stats().live_contexts as usize, model.contexts.len());
                }
            }
        }
        // Every counter agrees too (interned strings aside: a cache holds some alive until the
        // next expiry).
        insert_pending(&mut batched, &mut pending, &parser, now);
        let (mut t, mut p, mut b) = (tiny.stats(), plain.stats(), batched.stats());
        t.interned_strings = 0;
        p.interned_strings = 0;
        b.interned_strings = 0;
        prop_assert_eq!(&t, &p);
        prop_assert_eq!(&b, &p);
        now += 400;
        let reference = render(&plain.flush(now));
        prop_assert_eq!(render(&tiny.flush(now)), reference.clone());
        prop_assert_eq!(render(&batched.flush(now)), reference);
        let reference = render(&plain.flush_all(now));
        prop_assert_eq!(render(&tiny.flush_all(now)), reference.clone());
        let got = joined(chunk, |each| batched.flush_in_chunks(now, true, chunk, each));
        prop_assert_eq!(render(&got), reference);
        check(engine.flush(now), single.flush(now), model.flush(now, false))?;
        let got = joined(chunk, |each| engine.flush_in_chunks(now, true, chunk, each));
        check(got, single.flush_all(now), model.flush(now, true))?;
        prop_assert_eq!(engine.stats().live_contexts, 0);
    }
}

#[derive(Debug, Clone)]
enum Turn {
    Step(Step),
    /// Takes the next chunk of the flush under way.
    Chunk,
}

fn turn() -> impl Strategy<Value = Turn> {
    prop_oneof![3 => step().prop_map(Turn::Step), 2 => Just(Turn::Chunk)]
}

/// The flush under way: what the reference emitted when it began, and the chunks taken so far.
type UnderWay = Option<(Vec<String>, Flush)>;

/// What both engines offer for a flush taken a chunk at a time.
trait Stepped {
    fn insert(&mut self, m: &dogpipe::Message<'_>, now: i64);
    fn begin(&mut self, now: i64, chunk: usize) -> bool;
    fn next(&mut self) -> Option<Flush>;
    fn is_flushing(&self) -> bool;
    fn flush(&mut self, now: i64, include_open: bool) -> Flush;
    fn live(&mut self) -> u64;
}

macro_rules! stepped {
    ($t:ty) => {
        impl Stepped for $t {
            fn insert(&mut self, m: &dogpipe::Message<'_>, now: i64) {
                <$t>::insert(self, m, now)
            }
            fn begin(&mut self, now: i64, chunk: usize) -> bool {
                self.begin_flush(now, false, chunk)
            }
            fn next(&mut self) -> Option<Flush> {
                self.next_flush_chunk()
            }
            fn is_flushing(&self) -> bool {
                <$t>::is_flushing(self)
            }
            fn flush(&mut self, now: i64, include_open: bool) -> Flush {
                if include_open {
                    self.flush_all(now)
                } else {
                    <$t>::flush(self, now)
                }
            }
            fn live(&mut self) -> u64 {
                self.stats().live_contexts
            }
        }
    };
}
stepped!(Aggregator);
stepped!(ShardedAggregator);

/// Takes the rest of the flush under way and checks it against the reference's.
fn finish(agg: &mut dyn Stepped, under_way: &mut UnderWay) -> Result<(), TestCaseError> {
    if let Some((expected, mut got)) = under_way.take() {
        while let Some(part) = agg.next() {
            got.append(part);
        }
        prop_assert!(!agg.is_flushing());
        prop_assert_eq!(render(&got), expected);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Samples inserted between the chunks of a flush (new contexts too, which make the table
    /// grow under the walk) change nothing in it: it equals a flush taken whole when it began,
    /// and the samples are the next flush's. For the single-shard and the sharded engine.
    #[test]
    fn property_test_a_flush_taken_between_inserts_equals_one_taken_at_once(
        turns in prop::collection::vec(turn(), 1..150),
        chunk in 1usize..6,
        shards in 1usize..4,
    ) {
        let config = AggregatorConfig::default().with_hostname("agent");
        let mut engines: Vec<(Box<dyn Stepped>, UnderWay)> = vec![
            (Box::new(Aggregator::new(config.clone().with_known_lines(4))), None),
            (Box::new(ShardedAggregator::new(config.clone(), shards)), None),
        ];
        let mut reference = Aggregator::new(config.with_known_lines(0));
        let parser = ParserConfig::default();
        let mut now = 1_700_000_000i64;
        for t in turns {
            match t {
                Turn::Step(Step::Sample { name, ty, tags, values, rate }) => {
                    let l = line(name, ty, &tags, &values, rate);
                    let m = parse_message(l.as_bytes(), &parser).unwrap();
                    for (engine, _) in &mut engines {
                        engine.insert(&m, now);
                    }
                    reference.insert(&m, now);
                }
                Turn::Step(Step::Advance(d)) => now += d,
                Turn::Step(Step::Flush) => {
                    for (engine, under_way) in &mut engines {
                        if engine.is_flushing() {
                            prop_assert!(!engine.begin(now, chunk));
                        }
                        finish(engine.as_mut(), under_way)?;
                    }
                    let expected = render(&reference.flush(now));
                    for (engine, under_way) in &mut engines {
                        prop_assert!(engine.begin(now, chunk));
                        *under_way = Some((expected.clone(), Flush::default()));
                    }
                }
                Turn::Chunk => {
                    for (engine, under_way) in &mut engines {
                        let Some((_, got)) = under_way.as_mut() else { continue };
                        match engine.next() {
                            Some(part) => {
                                let items = part.series.len() + part.sketches.len();
                                prop_assert!(!part.is_empty());
                                prop_assert!(items < chunk + 5, "{} items in a chunk of {}", items, chunk);
                                got.append(part);
                            }
                            None => finish(engine.as_mut(), under_way)?,
                        }
                    }
                }
            }
        }
        for (engine, under_way) in &mut engines {
            finish(engine.as_mut(), under_way)?;
        }
        for later in [15, 400] {
            now += later;
            let expected = render(&reference.flush(now));
            let live = reference.stats().live_contexts;
            for (engine, _) in &mut engines {
                prop_assert_eq!(render(&engine.flush(now, false)), expected.clone());
                prop_assert_eq!(engine.live(), live);
            }
        }
        let expected = render(&reference.flush_all(now));
        for (engine, _) in &mut engines {
            prop_assert_eq!(render(&engine.flush(now, true)), expected.clone());
        }
    }
}
