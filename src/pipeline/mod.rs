//! The wired pipeline: configuration, telemetry, and the threads that connect the stages.

mod agent;
mod health;
mod settings;

pub use agent::{Agent, AgentError, Telemetry};
pub use health::check as check_health;
pub use settings::{ConfigError, Settings};
