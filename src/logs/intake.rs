//! The logs intake format: one JSON object per message, batched into compressed JSON arrays.

use crate::serialize::BatchCompressor;
use crate::simd;
use crate::{Compression, Endpoint, Payload, SerializeError};
use std::time::{Duration, Instant};

/// Default of [`BatchConfig::with_max_messages`].
pub const DEFAULT_BATCH_MAX_MESSAGES: usize = 1000;
/// Default of [`BatchConfig::with_max_content_bytes`].
pub const DEFAULT_BATCH_MAX_CONTENT_BYTES: usize = 5_000_000;
/// Default of [`BatchConfig::with_wait`].
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_secs(5);

/// When a batch of logs is closed, and how it is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    max_messages: usize,
    max_content_bytes: usize,
    wait: Duration,
    compression: Compression,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_messages: DEFAULT_BATCH_MAX_MESSAGES,
            max_content_bytes: DEFAULT_BATCH_MAX_CONTENT_BYTES,
            wait: DEFAULT_BATCH_WAIT,
            compression: Compression::default(),
        }
    }
}

impl BatchConfig {
    /// Most messages per batch (at least 1). Defaults to 1000.
    pub fn with_max_messages(mut self, n: usize) -> Self {
        self.max_messages = n.max(1);
        self
    }

    /// Most bytes of encoded messages per batch (brackets and commas not counted); a single
    /// larger message is dropped and counted. Defaults to 5 000 000.
    pub fn with_max_content_bytes(mut self, n: usize) -> Self {
        self.max_content_bytes = n.max(1);
        self
    }

    /// How long the first message of a batch may wait before the batch is sent. Defaults to 5 s.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The body's compression (`Compression::GZIP_DEFAULT` for gzip). Defaults to zstd level 1.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The batch wait.
    pub fn wait(&self) -> Duration {
        self.wait
    }
}

/// Appends `content` to `out` as a JSON string the way Go's encoder writes it: `<`, `>`, `&`,
/// U+2028 and U+2029 as `\u` escapes, each invalid UTF-8 byte as `\ufffd`.
pub(crate) fn push_json_string(out: &mut Vec<u8>, content: &[u8]) {
    out.push(b'"');
    let mut i = 0;
    let mut run = 0;
    loop {
        // Skip plain bytes sixteen at a time, then one at a time near the end.
        let b = loop {
            if let Some(chunk) = content
                .get(i..i + 16)
                .and_then(|c| <&[u8; 16]>::try_from(c).ok())
            {
                match simd::mask_json(chunk) {
                    0 => i += 16,
                    m => {
                        i += m.trailing_zeros() as usize;
                        break content.get(i).copied();
                    }
                }
            } else {
                match content.get(i) {
                    Some(&b) if !simd::json_special(b) => i += 1,
                    other => break other.copied(),
                }
            }
        };
        let Some(b) = b else { break };
        out.extend_from_slice(content.get(run..i).unwrap_or_default());
        if b < 0x80 {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                _ => {
                    let hex = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
                    out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]);
                }
            }
            i += 1;
        } else {
            let width = match b {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => 0,
            };
            let char_bytes = content
                .get(i..i.saturating_add(width))
                .filter(|c| width > 0 && std::str::from_utf8(c).is_ok());
            match char_bytes {
                Some([0xe2, 0x80, last @ (0xa8 | 0xa9)]) => {
                    out.extend_from_slice(if *last == 0xa8 {
                        b"\\u2028"
                    } else {
                        b"\\u2029"
                    });
                    i += 3;
                }
                Some(c) => {
                    out.extend_from_slice(c);
                    i += width;
                }
                None => {
                    out.extend_from_slice(b"\\ufffd");
                    i += 1;
                }
            }
        }
        run = i;
    }
    out.extend_from_slice(content.get(run..).unwrap_or_default());
    out.push(b'"');
}

/// The fields every message of one source shares, encoded once: everything after `timestamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceFields {
    tail: Vec<u8>,
}

impl SourceFields {
    pub(crate) fn new(hostname: &str, service: &str, source: &str, tags: &str) -> SourceFields {
        let mut tail = Vec::with_capacity(64 + tags.len());
        tail.extend_from_slice(b",\"hostname\":");
        push_json_string(&mut tail, hostname.as_bytes());
        tail.extend_from_slice(b",\"service\":");
        push_json_string(&mut tail, service.as_bytes());
        tail.extend_from_slice(b",\"ddsource\":");
        push_json_string(&mut tail, source.as_bytes());
        tail.extend_from_slice(b",\"ddtags\":");
        push_json_string(&mut tail, tags.as_bytes());
        tail.push(b'}');
        SourceFields { tail }
    }
}

/// Appends one message object, keys in the intake's order.
pub(crate) fn encode_message(
    out: &mut Vec<u8>,
    content: &[u8],
    status: &str,
    timestamp_ms: u64,
    fields: &SourceFields,
) {
    out.extend_from_slice(b"{\"message\":");
    push_json_string(out, content);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\",\"timestamp\":");
    let mut digits = [0u8; 20];
    let mut n = timestamp_ms;
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
    out.extend_from_slice(&fields.tail);
}

/// Encoded messages collected into a JSON array, closed by count, size or age.
#[derive(Debug)]
pub(crate) struct Batcher {
    config: BatchConfig,
    compressor: BatchCompressor,
    body: Vec<u8>,
    count: usize,
    content_bytes: usize,
    opened: Option<Instant>,
}

impl Batcher {
    pub(crate) fn new(config: BatchConfig) -> Batcher {
        Batcher {
            config,
            compressor: BatchCompressor::default(),
            body: Vec::new(),
            count: 0,
            content_bytes: 0,
            opened: None,
        }
    }

    /// Whether one encoded message of `len` bytes would not fit in the open batch (close it
    /// first), `None` if it fits in no batch at all.
    pub(crate) fn must_close_before(&self, len: usize) -> Option<bool> {
        if len > self.config.max_content_bytes {
            return None;
        }
        Some(
            self.count > 0
                && (self.count >= self.config.max_messages
                    || self.content_bytes.saturating_add(len) > self.config.max_content_bytes),
        )
    }

    /// Adds an encoded message (after [`must_close_before`](Self::must_close_before)).
    pub(crate) fn push(&mut self, encoded: &[u8], now: Instant) {
        self.body.push(if self.count == 0 { b'[' } else { b',' });
        self.body.extend_from_slice(encoded);
        self.count += 1;
        self.content_bytes = self.content_bytes.saturating_add(encoded.len());
        self.opened.get_or_insert(now);
    }

    /// Whether the batch is full or has waited long enough at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.count >= self.config.max_messages
            || self
                .opened
                .is_some_and(|t| now.saturating_duration_since(t) >= self.config.wait)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Closes the open batch into a payload (`None` when empty).
    pub(crate) fn close(&mut self) -> Result<Option<(Payload, usize)>, SerializeError> {
        if self.count == 0 {
            return Ok(None);
        }
        self.body.push(b']');
        let body = self
            .compressor
            .compress(self.config.compression, &self.body);
        let count = self.count;
        self.body.clear();
        self.count = 0;
        self.content_bytes = 0;
        self.opened = None;
        Ok(Some((
            Payload::new(Endpoint::Logs, self.config.compression, body?),
            count,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(content: &[u8]) -> String {
        let mut out = Vec::new();
        push_json_string(&mut out, content);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn spec_vector_50_encodes_keys_in_order_with_go_escapes() {
        let fields = SourceFields::new(
            "node-1",
            "api",
            "java",
            "filename:0.log,dirname:/var/log/pods/ns_p_uid/app,kube_namespace:ns",
        );
        let mut out = Vec::new();
        encode_message(
            &mut out,
            "café <x>".as_bytes(),
            "error",
            1714564800123,
            &fields,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"message\":\"café \\u003cx\\u003e\",\"status\":\"error\",\"timestamp\":1714564800123,\
             \"hostname\":\"node-1\",\"service\":\"api\",\"ddsource\":\"java\",\
             \"ddtags\":\"filename:0.log,dirname:/var/log/pods/ns_p_uid/app,kube_namespace:ns\"}"
        );
    }

    #[test]
    fn invalid_utf8_bytes_become_one_replacement_each_and_controls_are_escaped() {
        assert_eq!(json(b"caf\xe9"), "\"caf\\ufffd\"");
        assert_eq!(json(b"\xe2\x80x"), "\"\\ufffd\\ufffdx\"");
        assert_eq!(json(b"\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
        assert_eq!(
            json(b"a\"b\\c\n\t\x01&"),
            "\"a\\\"b\\\\c\\n\\t\\u0001\\u0026\""
        );
        assert_eq!(
            json("x\u{2028}y\u{2029}😀".as_bytes()),
            "\"x\\u2028y\\u2029😀\""
        );
        assert_eq!(json(b"0"), "\"0\"");
    }

    #[test]
    fn every_output_is_json_that_decodes_to_the_lossy_content() {
        for bytes in [
            &b"plain"[..],
            b"\xff\xfe<>&",
            "é\u{2028}".as_bytes(),
            b"\x00\x1f",
        ] {
            let s = json(bytes);
            let back: String = serde_json::from_str(&s).unwrap();
            let expected: String = bytes
                .iter()
                .map(|&b| if b < 0x80 { b as char } else { '?' })
                .collect();
            if bytes.is_ascii() {
                assert_eq!(back, expected);
            }
        }
    }

    /// Go's JSON string encoding, written plainly: one character or invalid byte at a time.
    fn naive_json(content: &[u8]) -> String {
        let mut out = String::from("\"");
        for chunk in content.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                        out.push_str(&format!("\\u{:04x}", c as u32))
                    }
                    c => out.push(c),
                }
            }
            for _ in chunk.invalid() {
                out.push_str("\\ufffd");
            }
        }
        out.push('"');
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        #[test]
        fn property_test_json_strings_match_a_character_at_a_time_model(
            content in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => 0x20u8..0x7f,
                    1 => proptest::prelude::any::<u8>(),
                    1 => proptest::sample::select(b"\"\\<>&\n\x01\xe2\x80\xa8\xc3\xa9".to_vec()),
                ],
                0..100,
            ),
        ) {
            proptest::prop_assert_eq!(json(&content), naive_json(&content));
        }
    }

    #[test]
    fn timestamps_print_as_integers() {
        let fields = SourceFields::new("", "", "", "");
        for (ts, text) in [(0u64, "0"), (7, "7"), (u64::MAX, "18446744073709551615")] {
            let mut out = Vec::new();
            encode_message(&mut out, b"", "info", ts, &fields);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["timestamp"].to_string(), text);
            assert_eq!(v["hostname"], "");
        }
    }

    #[test]
    fn batches_close_by_count_size_and_age_into_compressed_arrays() {
        let start = Instant::now();
        let config = BatchConfig::default()
            .with_max_messages(2)
            .with_max_content_bytes(10)
            .with_wait(Duration::from_secs(5));
        let mut b = Batcher::new(config);
        assert_eq!(b.must_close_before(11), None);
        assert_eq!(b.must_close_before(4), Some(false));
        b.push(b"\"aaaa\"", start);
        assert!(!b.is_due(start + Duration::from_secs(4)));
        assert!(b.is_due(start + Duration::from_secs(5)));
        assert_eq!(b.must_close_before(5), Some(true), "6 + 5 > 10 bytes");
        b.push(b"1", start);
        assert!(b.is_due(start), "two messages");
        let (payload, count) = b.close().unwrap().unwrap();
        assert_eq!(count, 2);
        assert_eq!(payload.path(), "/api/v2/logs");
        assert_eq!(payload.content_encoding(), Some("zstd"));
        assert_eq!(zstd::decode_all(payload.body()).unwrap(), b"[\"aaaa\",1]");
        assert!(b.close().unwrap().is_none());
        let mut g = Batcher::new(config.with_compression(Compression::GZIP_DEFAULT));
        g.push(b"{}", start);
        let (payload, _) = g.close().unwrap().unwrap();
        assert_eq!(payload.content_encoding(), Some("gzip"));
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(payload.body()), &mut back)
            .unwrap();
        assert_eq!(back, b"[{}]");
    }
}
