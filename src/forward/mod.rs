//! Forwarding: payloads to the intake over HTTP (with retries and a spool), or to files.

mod config;
mod file;
mod forwarder;
mod http;
mod retry;
mod spool;

pub use config::{ApiKey, ForwarderConfig};
pub use file::FileSink;
pub use forwarder::{ForwardStats, Forwarder};
pub use http::{HttpTransport, Response, Transport};
pub use retry::{Clock, SystemClock};

use crate::{Flush, Payload, SerializeError, Serializer};
use std::fmt;
use std::path::PathBuf;

/// Where payloads go: the HTTP [`Forwarder`] or a [`FileSink`].
pub trait Sink {
    /// Takes one payload.
    ///
    /// # Errors
    /// The sink could not accept the payload (for a file sink, a write failed).
    fn send(&mut self, payload: Payload) -> Result<(), ForwardError>;
}

/// Serializes `flush` and hands every payload to `sink`; returns how many payloads were sent.
/// Items too big for any payload are counted in the serializer's
/// [`stats`](Serializer::stats).
///
/// ```no_run
/// use dogpipe::{FileSink, Flush, Serializer, SerializerConfig, write_flush};
///
/// let mut sink = FileSink::create("/tmp/dogpipe-out")?;
/// let mut serializer = Serializer::new(SerializerConfig::from_env()?);
/// let sent = write_flush(&mut serializer, &Flush::default(), &mut sink)?;
/// assert_eq!(sent, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// A [`ForwardError::Serialize`] from the serializer, or the sink's error; payloads before the
/// failure have been sent.
pub fn write_flush(
    serializer: &mut Serializer,
    flush: &Flush,
    sink: &mut dyn Sink,
) -> Result<usize, ForwardError> {
    let mut payloads = Vec::new();
    let result = serializer.serialize(flush, &mut payloads);
    let count = payloads.len();
    for payload in payloads {
        sink.send(payload)?;
    }
    result.map_err(ForwardError::Serialize)?;
    Ok(count)
}

/// What went wrong while forwarding.
#[derive(Debug)]
#[non_exhaustive]
pub enum ForwardError {
    /// A file or directory could not be read or written.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration value is not understood.
    InvalidSetting {
        /// The setting (environment variable) name.
        name: &'static str,
        /// What is accepted.
        expected: &'static str,
    },
    /// Serialization failed.
    Serialize(SerializeError),
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::Io { path, source } => {
                write!(
                    f,
                    "cannot write or read `{}`: {source}; check the path and its permissions",
                    path.display()
                )
            }
            ForwardError::InvalidSetting { name, expected } => {
                write!(f, "{name} is not valid: expected {expected}")
            }
            ForwardError::Serialize(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ForwardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ForwardError::Io { source, .. } => Some(source),
            ForwardError::Serialize(e) => Some(e),
            ForwardError::InvalidSetting { .. } => None,
        }
    }
}

impl From<SerializeError> for ForwardError {
    fn from(e: SerializeError) -> Self {
        ForwardError::Serialize(e)
    }
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ForwardError {
    let path = path.into();
    move |source| ForwardError::Io { path, source }
}
