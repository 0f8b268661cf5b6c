//! Serialization: a [`Flush`](crate::Flush) into compressed payloads within the intake's limits.

mod compress;
mod config;
mod json;
mod payload;
mod prefetch;
mod proto;
mod serializer;
#[cfg(test)]
mod tests;

pub(crate) use compress::BatchCompressor;
pub use compress::compress_all;
pub use config::{Compression, PayloadLimits, SerializerConfig};
pub use payload::{Endpoint, Payload};
pub(crate) use proto::{is_resource_tag, tags_wire_len};
pub use serializer::{SerializeStats, Serializer};

use std::fmt;

/// What went wrong while serializing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerializeError {
    /// A configuration value is not understood.
    InvalidSetting {
        /// The setting (environment variable) name.
        name: &'static str,
        /// The value given (first 64 characters).
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The compression library failed (for example an unsupported level).
    Compressor {
        /// The library's message.
        reason: String,
    },
}

impl fmt::Display for SerializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerializeError::InvalidSetting {
                name,
                value,
                expected,
            } => write!(f, "{name}=`{value}` is not valid: expected {expected}"),
            SerializeError::Compressor { reason } => {
                write!(
                    f,
                    "the compressor failed: {reason}; check the compression settings"
                )
            }
        }
    }
}

impl std::error::Error for SerializeError {}
