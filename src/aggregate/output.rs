//! What a flush produces: plain data for the serializer.

use crate::{AlertType, Priority, ServiceCheckStatus};
use std::sync::Arc;

/// An interned byte string (metric names, hosts, tags). Clones share one allocation.
pub(crate) type Text = Arc<[u8]>;

/// The type of a series, as sent to the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeriesKind {
    /// A value at a point in time (gauges, sets, histogram aggregates).
    Gauge,
    /// A per-second rate over the interval (DogStatsD counters, histogram `.count`).
    Rate,
    /// A count over the interval.
    Count,
}

impl SeriesKind {
    /// `"gauge"`, `"rate"` or `"count"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeriesKind::Gauge => "gauge",
            SeriesKind::Rate => "rate",
            SeriesKind::Count => "count",
        }
    }
}

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix seconds (the start of the 10 s bucket for aggregated samples).
    pub timestamp: i64,
    /// The value.
    pub value: f64,
}

/// A metric series: one context, its points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name (after namespace and mapping).
    pub name: Text,
    /// Host; empty for a host-less series.
    pub host: Text,
    /// Tags, sorted and deduplicated.
    pub tags: Vec<Text>,
    /// Series type.
    pub kind: SeriesKind,
    /// Interval in seconds (10 for DogStatsD).
    pub interval: u32,
    /// Points, oldest first.
    pub points: Vec<Point>,
}

/// One bucket of a distribution: the summary and the Agent-flavoured DDSketch bins.
#[derive(Debug, Clone, PartialEq)]
pub struct SketchPoint {
    /// Unix seconds, the start of the bucket.
    pub timestamp: i64,
    /// Number of samples (sample rates applied).
    pub count: i64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values (sample rates applied).
    pub sum: f64,
    /// `sum / count`.
    pub avg: f64,
    /// Bin keys, ascending.
    pub keys: Vec<i32>,
    /// Bin counts, one per key.
    pub counts: Vec<u32>,
}

/// A distribution: one context, its sketch points.
#[derive(Debug, Clone, PartialEq)]
pub struct Sketch {
    /// Metric name.
    pub name: Text,
    /// Host; empty for a host-less sketch.
    pub host: Text,
    /// Tags, sorted and deduplicated.
    pub tags: Vec<Text>,
    /// Points, oldest first.
    pub points: Vec<SketchPoint>,
}

/// An event after enrichment, ready to serialize.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Title, `\n` escapes decoded.
    pub title: Vec<u8>,
    /// Text, `\n` escapes decoded.
    pub text: Vec<u8>,
    /// Unix seconds (the arrival time when the message had none).
    pub timestamp: i64,
    /// Host (`h:` field, else `host:` tag, else the agent's hostname).
    pub host: Text,
    /// `k:` aggregation key.
    pub aggregation_key: Option<Vec<u8>>,
    /// Priority.
    pub priority: Priority,
    /// `s:` source type name.
    pub source_type_name: Option<Vec<u8>>,
    /// Alert type.
    pub alert_type: AlertType,
    /// Tags, sorted and deduplicated.
    pub tags: Vec<Text>,
}

/// A service check after enrichment, ready to serialize.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCheckRecord {
    /// Check name.
    pub name: Vec<u8>,
    /// Status.
    pub status: ServiceCheckStatus,
    /// Unix seconds (the arrival time when the message had none).
    pub timestamp: i64,
    /// Host (`h:` field, else `host:` tag, else the agent's hostname).
    pub host: Text,
    /// `m:` message.
    pub message: Option<Vec<u8>>,
    /// Tags, sorted and deduplicated.
    pub tags: Vec<Text>,
}

/// Everything one flush produces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flush {
    /// Series (counters, gauges, sets, histogram aggregates, timestamped samples).
    pub series: Vec<Series>,
    /// Distributions.
    pub sketches: Vec<Sketch>,
    /// Events.
    pub events: Vec<EventRecord>,
    /// Service checks.
    pub service_checks: Vec<ServiceCheckRecord>,
}
