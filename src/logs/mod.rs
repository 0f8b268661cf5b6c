//! Container log decoding: framing, CRI and Docker json-file lines, partial lines, truncation,
//! multi-line aggregation and processing rules, with the Datadog Agent's behaviour.

mod cri;
mod decoder;
mod docker;
mod encoding;
mod framing;
mod handler;
mod intake;
mod message;
mod partial;
mod path;
mod pipeline;
mod registry;
mod rules;
mod select;
mod tailer;
#[cfg(test)]
mod tailer_tests;
mod trim;

pub use cri::{CriError, CriLine, parse_cri};
pub use decoder::{
    DEFAULT_AGGREGATION_TIMEOUT, DEFAULT_MAX_MESSAGE_BYTES, Decoder, DecoderConfig, DecoderStats,
    LogFormat,
};
pub use docker::{DockerError, DockerErrorKind, DockerLine, parse_docker};
pub use encoding::Encoding;
pub use framing::{Frame, LineFramer};
pub use intake::{
    BatchConfig, DEFAULT_BATCH_MAX_CONTENT_BYTES, DEFAULT_BATCH_MAX_MESSAGES, DEFAULT_BATCH_WAIT,
};
pub use message::{LogMessage, OwnedLogMessage, Stream};
pub use path::{PodLogPath, container_id_from_symlink_name};
pub use pipeline::{DEFAULT_POD_LOGS_DIR, DEFAULT_RUN_PATH, LogsConfig, LogsHandle, LogsPipeline};
pub use rules::{ProcessingRules, RuleError, RuleErrorKind, RuleScope};
pub use select::{ContainerFilter, PodLogConfigs, SelectionError};
pub use tailer::LogsStats;
