//! The wired pipeline: configuration, telemetry, and the threads that connect the stages.

mod settings;

pub use settings::{ConfigError, Settings};
