//! Aggregation: samples into the series and sketches the Agent would send.
//!
//! The pipeline of a metric: [`enrich`] (mapper, special tags, namespace, blocklist, extra tags,
//! context key) → a [`shard`] (context lookup in [`context`], per-bucket [`slot`]s) → flush.

mod aggregator;
mod config;
mod context;
mod engine;
mod enrich;
mod known;
mod mapper;
mod output;
mod shard;
mod sketch;
mod slot;
mod stats;

pub use aggregator::Aggregator;
pub use config::{
    AggregateError, AggregatorConfig, DEFAULT_CONTEXT_LIMIT, HistogramAggregate,
    STANDARD_STATSD_PREFIXES,
};
pub use engine::ShardedAggregator;
pub use mapper::MapperProfile;
pub use output::{
    EventRecord, Flush, Point, Points, Series, SeriesKind, ServiceCheckRecord, Sketch, SketchPoint,
    TagSet, TagSetIter, Text,
};
pub use stats::AggregateStats;

/// Width of an aggregation bucket, and the interval of every series, in seconds.
pub(crate) const BUCKET_SECONDS: i64 = 10;

#[cfg(test)]
mod tests;
