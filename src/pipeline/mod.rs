//! The wired pipeline: configuration, telemetry, and the threads that connect the stages.

mod health;
mod settings;

pub use health::{Heartbeat, check as check_health, serve as serve_health};
pub use settings::{ConfigError, Settings};
