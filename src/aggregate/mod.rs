//! Aggregation: samples into the series and sketches the Agent would send.

mod output;

pub use output::{
    EventRecord, Flush, Point, Series, SeriesKind, ServiceCheckRecord, Sketch, SketchPoint,
};
