//! The decoder: framer → parser → partial-line merger → line handler → processing rules.

use super::cri::{is_rfc3339, parse_cri};
use super::docker::parse_docker_reusing;
use super::encoding::{Encoding, Utf16Framer, utf16_to_utf8};
use super::framing::{Frame, LineFramer};
use super::handler::{MultiLine, Sent, SingleLine};
use super::message::{LogMessage, Stream};
use super::partial::{Line, PartialMerger};
use super::rules::ProcessingRules;
use std::io::{self, Read};
use std::time::{Duration, Instant};

/// Default of [`DecoderConfig::with_max_message_bytes`] (the Agent's newer default).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 900_000;
/// Default of [`DecoderConfig::with_aggregation_timeout`].
pub const DEFAULT_AGGREGATION_TIMEOUT: Duration = Duration::from_millis(1000);

/// The on-disk format of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    /// Decided on the first non-blank line: `{` → Docker; `<RFC 3339 time> stdout|stderr P|F` →
    /// CRI; else plain. Blank lines before it are plain (and dropped as empty).
    #[default]
    Auto,
    /// CRI (containerd, CRI-O, Podman): `<time> <stream> <P|F> <content>`.
    Cri,
    /// Docker `json-file`.
    Docker,
    /// Plain text, one message per line.
    Raw,
}

impl LogFormat {
    /// `auto`, `cri`, `docker` or `raw`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Auto => "auto",
            LogFormat::Cri => "cri",
            LogFormat::Docker => "docker",
            LogFormat::Raw => "raw",
        }
    }

    /// Parses `auto`, `cri`, `docker` or `raw`.
    pub fn from_name(name: &str) -> Option<LogFormat> {
        [
            LogFormat::Auto,
            LogFormat::Cri,
            LogFormat::Docker,
            LogFormat::Raw,
        ]
        .into_iter()
        .find(|f| f.as_str() == name)
    }

    /// The format a file's first non-blank line shows; `None` for a blank line.
    pub fn detect(line: &[u8]) -> Option<LogFormat> {
        let trimmed = super::trim::trim_space(line);
        if trimmed.is_empty() {
            return None;
        }
        if trimmed.first() == Some(&b'{') {
            return Some(LogFormat::Docker);
        }
        let is_cri = parse_cri(line).is_ok_and(|l| {
            is_rfc3339(l.time()) && l.stream() != Stream::Unknown && matches!(l.tag(), b"P" | b"F")
        });
        Some(if is_cri {
            LogFormat::Cri
        } else {
            LogFormat::Raw
        })
    }
}

/// Settings of a [`Decoder`].
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    format: LogFormat,
    encoding: Encoding,
    max_message_bytes: usize,
    aggregation_timeout: Duration,
    rules: ProcessingRules,
    start_offset: u64,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            format: LogFormat::Auto,
            encoding: Encoding::Utf8,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            aggregation_timeout: DEFAULT_AGGREGATION_TIMEOUT,
            rules: ProcessingRules::default(),
            start_offset: 0,
        }
    }
}

impl DecoderConfig {
    /// The file's format. Defaults to [`LogFormat::Auto`].
    pub fn with_format(mut self, format: LogFormat) -> Self {
        self.format = format;
        self
    }

    /// The file's character encoding (the Agent's `encoding`). A UTF-16 file is framed on its
    /// two-byte newline, with the maximum message size counted in file bytes and aligned down to
    /// an even number; each line is transcoded to UTF-8 (unpaired surrogates become U+FFFD) and
    /// then goes on as a line of the configured format would (auto-detected, CRI, Docker or raw),
    /// while offsets stay byte offsets in the file. A line cut at the maximum size ends with
    /// `...TRUNCATED...` (and the next starts with it) even when its UTF-8 text is shorter than
    /// the maximum. Defaults to [`Encoding::Utf8`].
    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// The Agent's `max_message_size_bytes` (at least 1): a longer line is cut into frames of this
    /// size (for CRI and Docker, the raw line envelope included), merged partial lines and
    /// multi-line messages are emitted once they reach it, and messages that reach it end with
    /// `...TRUNCATED...` (the next one starts with it). Defaults to 900 000.
    pub fn with_max_message_bytes(mut self, max: usize) -> Self {
        self.max_message_bytes = max.max(1);
        self
    }

    /// How long partial lines and a multi-line message wait for more lines before being emitted
    /// (the Agent's `aggregation_timeout`). Defaults to 1 s.
    pub fn with_aggregation_timeout(mut self, timeout: Duration) -> Self {
        self.aggregation_timeout = timeout;
        self
    }

    /// Processing rules, global then source ones (see [`ProcessingRules::followed_by`]); a
    /// `multi_line` rule makes the decoder aggregate lines. Defaults to no rules.
    pub fn with_rules(mut self, rules: ProcessingRules) -> Self {
        self.rules = rules;
        self
    }

    /// The file offset the first byte given to the decoder comes from (a registry position).
    /// Defaults to 0.
    pub fn with_start_offset(mut self, offset: u64) -> Self {
        self.start_offset = offset;
        self
    }

    /// The configured format.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// The configured encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The maximum message size in bytes.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// The aggregation timeout.
    pub fn aggregation_timeout(&self) -> Duration {
        self.aggregation_timeout
    }
}

/// What a [`Decoder`] has seen and dropped; every line is counted in one way or another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderStats {
    /// Framed lines (including cut frames and empty lines).
    pub lines: u64,
    /// Bytes framed, newlines included.
    pub bytes: u64,
    /// Messages delivered to the sink.
    pub messages: u64,
    /// Lines that were not valid CRI / Docker lines and were passed through raw.
    pub parse_fallbacks: u64,
    /// CRI lines whose timestamp is not RFC 3339 (kept, as the Agent does).
    pub invalid_timestamps: u64,
    /// Messages dropped because they were empty (after merging or trimming).
    pub empty_dropped: u64,
    /// Messages dropped by `exclude_at_match`, `include_at_match` or `exclude_truncated`.
    pub rule_dropped: u64,
    /// Messages flagged truncated (cut by the framer, or reaching the maximum size when merged,
    /// aggregated or marked), delivered or dropped.
    pub truncated: u64,
    /// Pending partial lines or multi-line messages emitted by the aggregation timeout.
    pub timeout_flushes: u64,
}

/// Turns the bytes of one log file into messages, across reads.
///
/// Feed it reads with [`push`](Decoder::push) (or [`read_from`](Decoder::read_from)); each
/// message is handed to the sink callback as a [`LogMessage`] that borrows the decoder's buffers
/// (zero-copy from the read when the line needs no merging, unescaping or marker), with the file
/// offset at which it ends. Time is injected: pass the current instant, and call
/// [`poll`](Decoder::poll) when [`next_deadline`](Decoder::next_deadline) is reached so that a
/// partial line or a multi-line message waiting for more is emitted after the idle timeout.
///
/// ```
/// use dogpipe::{Decoder, DecoderConfig, LogFormat};
/// use std::time::{Duration, Instant};
///
/// let mut decoder = Decoder::new(DecoderConfig::default().with_format(LogFormat::Cri));
/// let start = Instant::now();
/// let mut out = Vec::new();
/// let input = b"2024-05-01T12:00:00Z stdout P hel\n2024-05-01T12:00:00Z stderr F lo\n2024-05-01T12:00:01Z stdout P >";
/// decoder.push(input, start, |m| out.push((m.content().to_vec(), m.status(), m.end_offset())));
/// assert_eq!(out, [(b"hello".to_vec(), "error", 67)]);
/// decoder.push(b"\n", start, |_| unreachable!("the prompt waits for more"));
/// decoder.poll(start + Duration::from_secs(1), |m| out.push((m.content().to_vec(), m.status(), m.end_offset())));
/// assert_eq!(out[1], (b">".to_vec(), "info", 99));
/// assert_eq!(decoder.settled_offset(), 99);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    format: LogFormat,
    max_bytes: usize,
    timeout: Duration,
    framer: LineFramer,
    merger: PartialMerger,
    handler: Handler,
    rules: ProcessingRules,
    stats: DecoderStats,
    last_end: u64,
    settled: u64,
    /// Where Docker content with escapes is decoded, reused from line to line.
    docker_scratch: Vec<u8>,
    /// The framer and transcoded line of a UTF-16 file (`framer` is then unused).
    utf16: Option<Utf16>,
}

/// A UTF-16 file's framer and the UTF-8 text of its current line, reused from line to line.
#[derive(Debug, Clone)]
struct Utf16 {
    framer: Utf16Framer,
    big_endian: bool,
    text: Vec<u8>,
}

impl Utf16 {
    fn new(encoding: Encoding, max_bytes: usize, offset: u64) -> Option<Utf16> {
        let big_endian = match encoding {
            Encoding::Utf8 => return None,
            Encoding::Utf16Le => false,
            Encoding::Utf16Be => true,
        };
        Some(Utf16 {
            framer: Utf16Framer::starting_at(max_bytes, offset, big_endian),
            big_endian,
            text: Vec::new(),
        })
    }
}

#[derive(Debug, Clone)]
enum Handler {
    Single(SingleLine),
    Multi(MultiLine),
}

impl Decoder {
    /// A decoder for one file.
    pub fn new(config: DecoderConfig) -> Decoder {
        let max_bytes = config.max_message_bytes.max(1);
        let handler = match config.rules.multi_line() {
            Some(re) => Handler::Multi(MultiLine::new(re.clone())),
            None if config.encoding != Encoding::Utf8 => {
                Handler::Single(SingleLine::marking_cut_lines())
            }
            None => Handler::Single(SingleLine::default()),
        };
        Decoder {
            format: config.format,
            max_bytes,
            timeout: config.aggregation_timeout,
            framer: LineFramer::starting_at(max_bytes, config.start_offset),
            merger: PartialMerger::new(max_bytes),
            handler,
            rules: config.rules,
            stats: DecoderStats::default(),
            last_end: config.start_offset,
            settled: config.start_offset,
            docker_scratch: Vec::new(),
            utf16: Utf16::new(config.encoding, max_bytes, config.start_offset),
        }
    }

    /// Decodes bytes read from the file, handing each complete message to `sink`. Pending
    /// aggregates whose timeout passed at `now` are emitted first.
    pub fn push<F: FnMut(LogMessage<'_>)>(&mut self, bytes: &[u8], now: Instant, mut sink: F) {
        self.poll_dyn(now, &mut sink);
        if let Some(utf16) = &mut self.utf16 {
            utf16.framer.push(bytes);
            self.drain(now, &mut sink);
            return;
        }
        let mut framer = std::mem::replace(&mut self.framer, LineFramer::new(1));
        framer.push_with(bytes, |frame| self.frame(frame, now, &mut sink));
        self.framer = framer;
    }

    /// Reads once from `reader` (at most `max_read` bytes, straight into the decoder's buffer) and
    /// decodes; returns the number of bytes read, 0 at end of file.
    ///
    /// # Errors
    ///
    /// The reader's error; nothing is decoded then.
    pub fn read_from<R: Read, F: FnMut(LogMessage<'_>)>(
        &mut self,
        reader: &mut R,
        max_read: usize,
        now: Instant,
        mut sink: F,
    ) -> io::Result<usize> {
        self.poll_dyn(now, &mut sink);
        let n = match &mut self.utf16 {
            Some(utf16) => utf16.framer.read_from(reader, max_read)?,
            None => self.framer.read_from(reader, max_read)?,
        };
        self.drain(now, &mut sink);
        Ok(n)
    }

    /// Emits the partial line and the multi-line message whose idle timeout has passed at `now`.
    pub fn poll<F: FnMut(LogMessage<'_>)>(&mut self, now: Instant, mut sink: F) {
        self.poll_dyn(now, &mut sink);
    }

    /// Emits everything pending as if the idle timeout had passed (when a tailer stops). An
    /// unterminated last line stays unread, as in the Agent: its bytes are re-read on restart.
    pub fn finish<F: FnMut(LogMessage<'_>)>(&mut self, now: Instant, mut sink: F) {
        let far = now.checked_add(self.timeout).unwrap_or(now);
        self.poll_dyn(far, &mut sink);
        self.poll_dyn(far.checked_add(self.timeout).unwrap_or(far), &mut sink);
    }

    /// Goes on with the next file of the same container (after a rotation, once the old file was
    /// read to its end): framing restarts at `start_offset` of the new file, but a pending partial
    /// line or multi-line message is kept, so a line whose `P` records straddle the rotation is
    /// still one message (its end offset is then in the new file). Returns the number of bytes of
    /// an unterminated last line of the old file, which are dropped.
    pub fn switch_file(&mut self, start_offset: u64) -> usize {
        let dropped = self.pending_bytes();
        self.framer = LineFramer::starting_at(self.max_bytes, start_offset);
        if let Some(utf16) = &mut self.utf16 {
            utf16.framer = Utf16Framer::starting_at(self.max_bytes, start_offset, utf16.big_endian);
        }
        self.last_end = start_offset;
        self.settled = start_offset;
        dropped
    }

    /// When [`poll`](Decoder::poll) must next be called, if something is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        let handler = match &self.handler {
            Handler::Multi(m) => m.deadline(self.timeout),
            Handler::Single(_) => None,
        };
        match (self.merger.deadline(self.timeout), handler) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The file offset up to which every byte belongs to a message already handed to the sink or
    /// dropped (and counted): nothing before it is pending. Empty and rule-dropped lines advance
    /// it too, so a tail of dropped lines is not re-read after a restart.
    pub fn settled_offset(&self) -> u64 {
        self.settled
    }

    /// The file offset after the last complete line read (pending lines included).
    pub fn read_offset(&self) -> u64 {
        match &self.utf16 {
            Some(utf16) => utf16.framer.offset(),
            None => self.framer.offset(),
        }
    }

    /// The format in use: the configured one, or the detected one once a line was seen.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Counters.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Bytes of an unterminated last line waiting for its newline.
    pub fn pending_bytes(&self) -> usize {
        match &self.utf16 {
            Some(utf16) => utf16.framer.pending_bytes(),
            None => self.framer.pending_bytes(),
        }
    }

    fn is_pending(&self) -> bool {
        self.merger.is_pending()
            || match &self.handler {
                Handler::Multi(m) => m.is_pending(),
                Handler::Single(_) => false,
            }
    }

    fn settle(&mut self) {
        if !self.is_pending() {
            self.settled = self.last_end;
        }
    }

    fn poll_dyn(&mut self, now: Instant, sink: &mut dyn FnMut(LogMessage<'_>)) {
        if self.merger.deadline(self.timeout).is_some_and(|d| d <= now) {
            self.stats.timeout_flushes += 1;
            if let Some(line) = self.merger.flush() {
                route(
                    line,
                    &mut self.handler,
                    &self.rules,
                    &mut self.stats,
                    self.max_bytes,
                    now,
                    sink,
                );
            }
        }
        if let Handler::Multi(m) = &mut self.handler {
            if m.deadline(self.timeout).is_some_and(|d| d <= now) {
                self.stats.timeout_flushes += 1;
                m.flush(&mut |sent| deliver(sent, &self.rules, &mut self.stats, sink));
            }
        }
        self.settle();
    }

    fn drain(&mut self, now: Instant, sink: &mut dyn FnMut(LogMessage<'_>)) {
        if let Some(mut utf16) = self.utf16.take() {
            while let Some(frame) = utf16.framer.next_frame() {
                utf16_to_utf8(frame.bytes(), utf16.big_endian, &mut utf16.text);
                let line = Frame::new(&utf16.text, frame.end_offset(), frame.truncated());
                self.frame(line, now, sink);
            }
            self.utf16 = Some(utf16);
            return;
        }
        let mut framer = std::mem::replace(&mut self.framer, LineFramer::new(1));
        while let Some(frame) = framer.next_frame() {
            self.frame(frame, now, sink);
        }
        self.framer = framer;
    }

    /// One framed line through the parser, the merger, the handler and the rules.
    #[inline]
    fn frame(&mut self, frame: Frame<'_>, now: Instant, sink: &mut dyn FnMut(LogMessage<'_>)) {
        let bytes = frame.bytes();
        self.stats.lines += 1;
        self.stats.bytes += frame.end_offset().saturating_sub(self.last_end);
        self.last_end = frame.end_offset();
        if self.format == LogFormat::Auto {
            if let Some(detected) = LogFormat::detect(bytes) {
                self.format = detected;
            }
        }
        let raw = Line {
            content: bytes,
            stream: Stream::Unknown,
            time: b"",
            truncated: frame.truncated(),
            end_offset: frame.end_offset(),
        };
        // A line that does not parse is passed through raw, and ends a pending partial line.
        let docker;
        let (line, partial) = match self.format {
            LogFormat::Auto | LogFormat::Raw => {
                let stats = &mut self.stats;
                route(
                    raw,
                    &mut self.handler,
                    &self.rules,
                    stats,
                    self.max_bytes,
                    now,
                    sink,
                );
                self.settle();
                return;
            }
            LogFormat::Cri => match parse_cri(bytes) {
                Ok(cri) => {
                    if !cri.has_valid_time() {
                        self.stats.invalid_timestamps += 1;
                    }
                    let line = Line {
                        content: cri.content(),
                        stream: cri.stream(),
                        time: cri.time(),
                        ..raw
                    };
                    (line, cri.is_partial())
                }
                Err(_) => {
                    self.stats.parse_fallbacks += 1;
                    (raw, false)
                }
            },
            LogFormat::Docker => match parse_docker_reusing(bytes, &mut self.docker_scratch) {
                Ok(parsed) => {
                    docker = parsed;
                    let line = Line {
                        content: docker.content(),
                        stream: docker.stream(),
                        time: docker.time(),
                        ..raw
                    };
                    (line, docker.is_partial())
                }
                Err(_) => {
                    self.stats.parse_fallbacks += 1;
                    (raw, false)
                }
            },
        };
        if let Some(merged) = self.merger.push(line, partial, now) {
            // Empty merged lines are dropped before the line handler, as in the Agent.
            if merged.content.is_empty() {
                self.stats.empty_dropped += 1;
            } else {
                let stats = &mut self.stats;
                route(
                    merged,
                    &mut self.handler,
                    &self.rules,
                    stats,
                    self.max_bytes,
                    now,
                    sink,
                );
            }
        }
        self.settle();
    }
}

/// A complete line into the line handler, then the rules, then the sink.
fn route(
    line: Line<'_>,
    handler: &mut Handler,
    rules: &ProcessingRules,
    stats: &mut DecoderStats,
    max_bytes: usize,
    now: Instant,
    sink: &mut dyn FnMut(LogMessage<'_>),
) {
    match handler {
        Handler::Single(single) => {
            let sent = match single.process(line, max_bytes) {
                Some(line) => Sent::Message(line),
                None => Sent::Empty,
            };
            deliver(sent, rules, stats, sink);
        }
        Handler::Multi(multi) => {
            multi.process(line, max_bytes, now, &mut |sent| {
                deliver(sent, rules, stats, sink)
            });
        }
    }
}

fn deliver(
    sent: Sent<'_>,
    rules: &ProcessingRules,
    stats: &mut DecoderStats,
    sink: &mut dyn FnMut(LogMessage<'_>),
) {
    let line = match sent {
        Sent::Message(line) => line,
        Sent::Empty => {
            stats.empty_dropped += 1;
            return;
        }
    };
    if line.truncated {
        stats.truncated += 1;
    }
    match rules.apply(line.content, line.truncated) {
        Some(content) => {
            stats.messages += 1;
            sink(LogMessage {
                content: &content,
                stream: line.stream,
                time: line.time,
                truncated: line.truncated,
                end_offset: line.end_offset,
            });
        }
        None => stats.rule_dropped += 1,
    }
}
