//! What the decoder produces: a message with its status, stream, time and end offset.

/// The output stream a container wrote a line to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Absent or any other value (plain files, or an unexpected field).
    #[default]
    Unknown,
}

impl Stream {
    pub(crate) fn from_field(field: &[u8]) -> Stream {
        match field {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => Stream::Unknown,
        }
    }

    /// `"stdout"`, `"stderr"` or `""`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Unknown => "",
        }
    }

    /// The status the Agent gives a line of this stream: `error` for stderr, else `info`. The
    /// message body is never inspected for a level.
    pub fn status(self) -> &'static str {
        match self {
            Stream::Stderr => "error",
            _ => "info",
        }
    }
}

/// One decoded log message, borrowed from the decoder for the duration of the callback that
/// receives it (call [`to_owned`](LogMessage::to_owned) to keep it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMessage<'a> {
    pub(crate) content: &'a [u8],
    pub(crate) stream: Stream,
    pub(crate) time: &'a [u8],
    pub(crate) truncated: bool,
    pub(crate) end_offset: u64,
}

impl<'a> LogMessage<'a> {
    /// The content after merging, trimming, truncation markers and processing rules. Raw bytes:
    /// CRI and plain content may be invalid UTF-8 (the intake encoder replaces bad bytes).
    pub fn content(&self) -> &'a [u8] {
        self.content
    }

    /// The stream of the message's last line.
    pub fn stream(&self) -> Stream {
        self.stream
    }

    /// `error` for stderr, else `info` (of the message's last line).
    pub fn status(&self) -> &'static str {
        self.stream.status()
    }

    /// The runtime's timestamp of the last line, as written (empty for plain files). Metadata only:
    /// the intake timestamp is the send-side clock.
    pub fn time(&self) -> &'a [u8] {
        self.time
    }

    /// Whether the message was cut at the maximum message size (its content then ends with
    /// `...TRUNCATED...`, and the next message of the file starts with it).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// File offset just after the last byte of this message's last line: once the message is
    /// delivered, a restart may resume reading there.
    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    /// An owned copy.
    pub fn to_owned(&self) -> OwnedLogMessage {
        OwnedLogMessage {
            content: self.content.to_vec(),
            stream: self.stream,
            time: self.time.to_vec(),
            truncated: self.truncated,
            end_offset: self.end_offset,
        }
    }
}

/// An owned [`LogMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedLogMessage {
    /// See [`LogMessage::content`].
    pub content: Vec<u8>,
    /// See [`LogMessage::stream`].
    pub stream: Stream,
    /// See [`LogMessage::time`].
    pub time: Vec<u8>,
    /// See [`LogMessage::truncated`].
    pub truncated: bool,
    /// See [`LogMessage::end_offset`].
    pub end_offset: u64,
}

impl OwnedLogMessage {
    /// Borrows it back as a [`LogMessage`].
    pub fn as_message(&self) -> LogMessage<'_> {
        LogMessage {
            content: &self.content,
            stream: self.stream,
            time: &self.time,
            truncated: self.truncated,
            end_offset: self.end_offset,
        }
    }
}
