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

use crate::{Endpoint, Flush, Payload, SerializeError, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where payloads go: the HTTP [`Forwarder`] or a [`FileSink`].
pub trait Sink {
    /// Takes one payload.
    ///
    /// # Errors
    /// The sink could not accept the payload (for a file sink, a write failed).
    fn send(&mut self, payload: Payload) -> Result<(), ForwardError>;

    /// Delivers what is still pending, waiting at most `max_wait`; returns whether nothing is
    /// left. Defaults to `true` (sinks that write at once).
    fn finish(&mut self, max_wait: Duration) -> bool {
        let _ = max_wait;
        true
    }

    /// Gives the sink a chance to retry what is waiting (call it regularly, e.g. every second).
    /// Defaults to nothing.
    fn poll(&mut self) {}

    /// Delivery counters. Defaults to zeros (sinks that cannot fail to deliver once written).
    fn stats(&self) -> ForwardStats {
        ForwardStats::default()
    }

    /// How many payloads of `endpoint` given to [`send`](Sink::send) are not settled yet: not
    /// delivered, permanently rejected or dropped (and counted). Payloads of one endpoint settle
    /// in the order sent, so the first `sent - pending` are settled: the acceptance signal that
    /// lets a log pipeline advance its read offsets only after delivery. Sinks that write at once
    /// keep the default, 0. May make progress (send what is ready) before answering.
    fn pending(&mut self, endpoint: Endpoint) -> usize {
        let _ = endpoint;
        0
    }
}

/// The sink the Agent's defaults call for: the HTTP [`Forwarder`] when `config` has an API key,
/// else a [`FileSink`] writing into `output_dir`.
///
/// # Errors
/// [`ForwardError::Io`] when the spool or output directory cannot be created, or
/// [`ForwardError::InvalidSetting`] when there is no API key and no output directory.
pub fn open_sink(
    config: ForwarderConfig,
    output_dir: Option<&std::path::Path>,
) -> Result<Box<dyn Sink + Send>, ForwardError> {
    if !config.api_key().is_empty() {
        return Ok(Box::new(Forwarder::new(config)?));
    }
    match output_dir {
        Some(dir) => Ok(Box::new(FileSink::create(dir)?)),
        None => Err(ForwardError::InvalidSetting {
            name: "DD_API_KEY",
            expected: "an API key, or an output directory for the file sink",
        }),
    }
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
/// The sink's first error (the payloads after a failed one are still offered to the sink), or a
/// [`ForwardError::Serialize`] from the serializer (payloads closed before it have been sent).
pub fn write_flush(
    serializer: &mut Serializer,
    flush: &Flush,
    sink: &mut dyn Sink,
) -> Result<usize, ForwardError> {
    let mut count = 0;
    let mut failed = None;
    // Each payload goes to the sink as soon as it is closed; a failure does not stop the
    // payloads after it.
    let result = serializer.serialize_each(flush, |payload| match sink.send(payload) {
        Ok(()) => count += 1,
        Err(e) => {
            failed.get_or_insert(e);
        }
    });
    if let Some(e) = failed {
        return Err(e);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKey;

    #[test]
    fn without_an_api_key_the_file_sink_is_the_default() {
        let dir = std::env::temp_dir().join(format!("dogpipe-open-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut sink = open_sink(ForwarderConfig::default(), Some(&dir)).unwrap();
        let payload = Payload::new(
            crate::Endpoint::Events,
            crate::Compression::None,
            b"{}".to_vec(),
        );
        sink.send(payload).unwrap();
        assert!(sink.finish(Duration::ZERO));
        assert!(dir.join("000001.body").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
        let err = open_sink(ForwarderConfig::default(), None).err().unwrap();
        assert_eq!(
            err.to_string(),
            "DD_API_KEY is not valid: expected an API key, or an output directory for the file sink"
        );
        let with_key = ForwarderConfig::default().with_api_key(ApiKey::new("k"));
        assert!(open_sink(with_key, None).is_ok());
    }
}
