/// Settings of the DogStatsD parser.
///
/// Every limit is checked while parsing; a message over a limit is rejected with a typed
/// [`ParseError`](crate::ParseError) (so it is counted like any bad line) and the rest of the
/// packet is still parsed. The Datadog Agent has no such limits; the defaults are far above
/// what clients send, so only abusive traffic meets them.
///
/// ```
/// use dogpipe::ParserConfig;
/// let config = ParserConfig::default().with_max_tags(64).with_origin_detection_client(true);
/// assert_eq!(config.max_tags(), 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserConfig {
    origin_detection_client: bool,
    timestamps: bool,
    max_tags: u32,
    max_tag_bytes: u32,
    max_message_bytes: u32,
}

/// Default of [`ParserConfig::with_max_tags`].
pub(crate) const DEFAULT_MAX_TAGS: u32 = 256;
/// Default of [`ParserConfig::with_max_tag_bytes`].
pub(crate) const DEFAULT_MAX_TAG_BYTES: u32 = 1024;
/// Default of [`ParserConfig::with_max_message_bytes`]: the largest UDP payload.
pub(crate) const DEFAULT_MAX_MESSAGE_BYTES: u32 = 65_535;

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            origin_detection_client: false,
            timestamps: true,
            max_tags: DEFAULT_MAX_TAGS,
            max_tag_bytes: DEFAULT_MAX_TAG_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl ParserConfig {
    /// Reads the client origin fields `c:`, `e:` and `card:` (the Agent's
    /// `dogstatsd_origin_detection_client`). When off they are ignored like unknown fields.
    /// Defaults to `false`.
    pub fn with_origin_detection_client(mut self, on: bool) -> Self {
        self.origin_detection_client = on;
        self
    }

    /// Reads the `T<unix seconds>` field of metrics (the Agent's
    /// `dogstatsd_no_aggregation_pipeline`). When off, `T` fields are ignored without being
    /// validated. Defaults to `true`.
    pub fn with_timestamps(mut self, on: bool) -> Self {
        self.timestamps = on;
        self
    }

    /// Maximum number of tags in one message (the tags of the last `#` field); a message with more
    /// is rejected with [`ParseErrorKind::TooManyTags`](crate::ParseErrorKind::TooManyTags).
    /// Defaults to 256.
    pub fn with_max_tags(mut self, max: u32) -> Self {
        self.max_tags = max;
        self
    }

    /// Maximum length in bytes of one tag; a message with a longer tag is rejected with
    /// [`ParseErrorKind::TagTooLong`](crate::ParseErrorKind::TagTooLong). Defaults to 1024.
    pub fn with_max_tag_bytes(mut self, max: u32) -> Self {
        self.max_tag_bytes = max;
        self
    }

    /// Maximum length in bytes of one message (one line of a packet); a longer message is rejected
    /// with [`ParseErrorKind::MessageTooLong`](crate::ParseErrorKind::MessageTooLong).
    /// Defaults to 65 535.
    pub fn with_max_message_bytes(mut self, max: u32) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// Whether `c:`, `e:` and `card:` fields are read.
    pub fn origin_detection_client(&self) -> bool {
        self.origin_detection_client
    }

    /// Whether `T` fields are read.
    pub fn timestamps(&self) -> bool {
        self.timestamps
    }

    /// Maximum number of tags in one message.
    pub fn max_tags(&self) -> u32 {
        self.max_tags
    }

    /// Maximum length in bytes of one tag.
    pub fn max_tag_bytes(&self) -> u32 {
        self.max_tag_bytes
    }

    /// Maximum length in bytes of one message.
    pub fn max_message_bytes(&self) -> u32 {
        self.max_message_bytes
    }
}
