//! Serializer configuration: compression and payload limits.

use super::SerializeError;

/// How payload bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// No compression: no `Content-Encoding` header.
    None,
    /// An RFC 1950 zlib stream, sent as `Content-Encoding: deflate`.
    Zlib {
        /// 0 (store) to 9 (best); the Agent uses 6.
        level: u32,
    },
    /// A gzip (RFC 1952) stream, sent as `Content-Encoding: gzip` (the logs intake's option).
    Gzip {
        /// 0 (store) to 9 (best); the Agent uses 6.
        level: u32,
    },
    /// One zstd frame, sent as `Content-Encoding: zstd`.
    Zstd {
        /// 1 (fastest) to 22; the Agent uses 1.
        level: i32,
    },
}

impl Default for Compression {
    /// zstd level 1, the Agent's default.
    fn default() -> Self {
        Compression::Zstd { level: 1 }
    }
}

impl Compression {
    /// zlib at the Agent's level, 6.
    pub const ZLIB_DEFAULT: Compression = Compression::Zlib { level: 6 };
    /// gzip at the Agent's level, 6.
    pub const GZIP_DEFAULT: Compression = Compression::Gzip { level: 6 };

    /// The `Content-Encoding` header value, if any.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Zlib { .. } => Some("deflate"),
            Compression::Gzip { .. } => Some("gzip"),
            Compression::Zstd { .. } => Some("zstd"),
        }
    }

    /// `"none"`, `"zlib"`, `"gzip"` or `"zstd"` (the values of `DD_SERIALIZER_COMPRESSOR_KIND`,
    /// and `gzip` of `DD_LOGS_CONFIG_COMPRESSION_KIND`).
    pub fn kind(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib { .. } => "zlib",
            Compression::Gzip { .. } => "gzip",
            Compression::Zstd { .. } => "zstd",
        }
    }

    /// The compression a `Content-Encoding` value names (`deflate`, `zstd`, or none/empty).
    pub fn from_content_encoding(value: Option<&str>) -> Option<Compression> {
        match value {
            None | Some("") | Some("identity") => Some(Compression::None),
            Some("deflate") => Some(Compression::ZLIB_DEFAULT),
            Some("gzip") => Some(Compression::GZIP_DEFAULT),
            Some("zstd") => Some(Compression::default()),
            Some(_) => None,
        }
    }

    /// An upper bound on the compressed size of `n` more bytes written after a flush of the
    /// stream, including the end of the stream. The zlib and zstd library formulas (spec §7.7)
    /// plus a 64-byte margin for the block that a flush closes.
    pub(crate) fn bound(self, n: usize) -> usize {
        match self {
            Compression::None => n,
            Compression::Zlib { .. } | Compression::Gzip { .. } => n
                .saturating_add(n >> 12)
                .saturating_add(n >> 14)
                .saturating_add(n >> 25)
                .saturating_add(18 + 16 + 64),
            Compression::Zstd { .. } => {
                const KIB_128: usize = 128 << 10;
                let small = if n < KIB_128 { (KIB_128 - n) >> 11 } else { 0 };
                n.saturating_add(n >> 8)
                    .saturating_add(small)
                    .saturating_add(64)
            }
        }
    }
}

/// The limits of one kind of payload. A payload closes before it would pass any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLimits {
    pub(crate) max_compressed_bytes: usize,
    pub(crate) max_uncompressed_bytes: usize,
    pub(crate) max_points: usize,
}

impl PayloadLimits {
    /// The series limits: 512 000 B compressed, 5 242 880 B uncompressed, 10 000 points.
    pub const SERIES: PayloadLimits = PayloadLimits {
        max_compressed_bytes: 512_000,
        max_uncompressed_bytes: 5_242_880,
        max_points: 10_000,
    };
    /// The limits of sketches and JSON payloads: 2 621 440 B compressed, 4 194 304 B
    /// uncompressed, no point limit.
    pub const OTHER: PayloadLimits = PayloadLimits {
        max_compressed_bytes: 2_621_440,
        max_uncompressed_bytes: 4_194_304,
        max_points: usize::MAX,
    };

    /// Largest compressed body, in bytes.
    pub fn max_compressed_bytes(&self) -> usize {
        self.max_compressed_bytes
    }
    /// Largest uncompressed body, in bytes.
    pub fn max_uncompressed_bytes(&self) -> usize {
        self.max_uncompressed_bytes
    }
    /// Most points (series) or items in one payload.
    pub fn max_points(&self) -> usize {
        self.max_points
    }
    /// Sets the largest compressed body. Defaults to the constant the limits came from.
    pub fn with_max_compressed_bytes(mut self, bytes: usize) -> Self {
        self.max_compressed_bytes = bytes;
        self
    }
    /// Sets the largest uncompressed body. Defaults to the constant the limits came from.
    pub fn with_max_uncompressed_bytes(mut self, bytes: usize) -> Self {
        self.max_uncompressed_bytes = bytes;
        self
    }
    /// Sets the most points in one payload. Defaults to the constant the limits came from.
    pub fn with_max_points(mut self, points: usize) -> Self {
        self.max_points = points;
        self
    }
}

/// How a [`Flush`](crate::Flush) becomes payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializerConfig {
    pub(crate) compression: Compression,
    pub(crate) series_limits: PayloadLimits,
    pub(crate) limits: PayloadLimits,
    pub(crate) series_v1: bool,
    pub(crate) hostname: String,
}

impl Default for SerializerConfig {
    fn default() -> Self {
        SerializerConfig {
            compression: Compression::default(),
            series_limits: PayloadLimits::SERIES,
            limits: PayloadLimits::OTHER,
            series_v1: false,
            hostname: String::new(),
        }
    }
}

impl SerializerConfig {
    /// Sets the compression. Defaults to zstd level 1.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }
    /// Sets the limits of series payloads. Defaults to [`PayloadLimits::SERIES`].
    pub fn with_series_limits(mut self, limits: PayloadLimits) -> Self {
        self.series_limits = limits;
        self
    }
    /// Sets the limits of sketch, event and service check payloads. Defaults to
    /// [`PayloadLimits::OTHER`].
    pub fn with_limits(mut self, limits: PayloadLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Sends series as v1 JSON (`/api/v1/series`) instead of v2 protobuf. Defaults to `false`.
    pub fn with_series_v1(mut self, v1: bool) -> Self {
        self.series_v1 = v1;
        self
    }
    /// Sets the agent's hostname, sent as `internalHostname` with events. Defaults to empty.
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = hostname.into();
        self
    }
    /// The compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Reads the configuration from the process environment; see
    /// [`from_lookup`](Self::from_lookup).
    ///
    /// # Errors
    /// As [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> Result<SerializerConfig, SerializeError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from variables given by `lookup`: `DD_SERIALIZER_COMPRESSOR_KIND`
    /// (`zstd`, `zlib`, `none`), `DD_SERIALIZER_ZSTD_COMPRESSOR_LEVEL` (1–22),
    /// `DD_SERIALIZER_MAX_SERIES_PAYLOAD_SIZE`, `DD_SERIALIZER_MAX_SERIES_UNCOMPRESSED_PAYLOAD_SIZE`,
    /// `DD_SERIALIZER_MAX_SERIES_POINTS_PER_PAYLOAD`, `DD_SERIALIZER_MAX_PAYLOAD_SIZE`,
    /// `DD_SERIALIZER_MAX_UNCOMPRESSED_PAYLOAD_SIZE`, `DD_USE_V2_API_SERIES` (`false` selects v1
    /// JSON) and `DD_HOSTNAME`. Unset variables keep their defaults.
    ///
    /// # Errors
    /// [`SerializeError::InvalidSetting`] naming the variable whose value is not understood.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<SerializerConfig, SerializeError> {
        let mut config = SerializerConfig::default();
        let level = match lookup("DD_SERIALIZER_ZSTD_COMPRESSOR_LEVEL") {
            None => 1,
            Some(v) => match v.trim().parse::<i32>() {
                Ok(l) if (1..=22).contains(&l) => l,
                _ => {
                    return Err(invalid(
                        "DD_SERIALIZER_ZSTD_COMPRESSOR_LEVEL",
                        &v,
                        "1 to 22",
                    ));
                }
            },
        };
        config.compression = match lookup("DD_SERIALIZER_COMPRESSOR_KIND")
            .as_deref()
            .map(str::trim)
        {
            None | Some("zstd") => Compression::Zstd { level },
            Some("zlib") => Compression::ZLIB_DEFAULT,
            Some("none") => Compression::None,
            Some(other) => {
                return Err(invalid(
                    "DD_SERIALIZER_COMPRESSOR_KIND",
                    other,
                    "`zstd`, `zlib` or `none`",
                ));
            }
        };
        let size = |name: &'static str, default: usize| -> Result<usize, SerializeError> {
            match lookup(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(invalid(name, &v, "a positive integer")),
                },
            }
        };
        let s = PayloadLimits::SERIES;
        config.series_limits = PayloadLimits {
            max_compressed_bytes: size(
                "DD_SERIALIZER_MAX_SERIES_PAYLOAD_SIZE",
                s.max_compressed_bytes,
            )?,
            max_uncompressed_bytes: size(
                "DD_SERIALIZER_MAX_SERIES_UNCOMPRESSED_PAYLOAD_SIZE",
                s.max_uncompressed_bytes,
            )?,
            max_points: size("DD_SERIALIZER_MAX_SERIES_POINTS_PER_PAYLOAD", s.max_points)?,
        };
        let o = PayloadLimits::OTHER;
        config.limits = PayloadLimits {
            max_compressed_bytes: size("DD_SERIALIZER_MAX_PAYLOAD_SIZE", o.max_compressed_bytes)?,
            max_uncompressed_bytes: size(
                "DD_SERIALIZER_MAX_UNCOMPRESSED_PAYLOAD_SIZE",
                o.max_uncompressed_bytes,
            )?,
            max_points: o.max_points,
        };
        config.series_v1 = match lookup("DD_USE_V2_API_SERIES").as_deref().map(str::trim) {
            None | Some("true") | Some("1") => false,
            Some("false") | Some("0") => true,
            Some(other) => return Err(invalid("DD_USE_V2_API_SERIES", other, "`true` or `false`")),
        };
        if let Some(host) = lookup("DD_HOSTNAME") {
            config.hostname = host;
        }
        Ok(config)
    }
}

fn invalid(name: &'static str, value: &str, expected: &'static str) -> SerializeError {
    SerializeError::InvalidSetting {
        name,
        value: value.chars().take(64).collect(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn defaults_are_zstd_level_one_and_the_agent_limits() {
        let c = SerializerConfig::from_lookup(env(&[])).unwrap();
        assert_eq!(c, SerializerConfig::default());
        assert_eq!(c.compression, Compression::Zstd { level: 1 });
        assert_eq!(c.series_limits.max_compressed_bytes(), 512_000);
        assert_eq!(c.series_limits.max_uncompressed_bytes(), 5_242_880);
        assert_eq!(c.series_limits.max_points(), 10_000);
        assert_eq!(c.limits.max_compressed_bytes(), 2_621_440);
        assert_eq!(c.limits.max_uncompressed_bytes(), 4_194_304);
    }

    #[test]
    fn environment_selects_compressor_level_and_limits() {
        let c = SerializerConfig::from_lookup(env(&[
            ("DD_SERIALIZER_COMPRESSOR_KIND", "zstd"),
            ("DD_SERIALIZER_ZSTD_COMPRESSOR_LEVEL", "5"),
            ("DD_SERIALIZER_MAX_SERIES_POINTS_PER_PAYLOAD", "7"),
            ("DD_USE_V2_API_SERIES", "false"),
        ]))
        .unwrap();
        assert_eq!(c.compression, Compression::Zstd { level: 5 });
        assert_eq!(c.series_limits.max_points(), 7);
        assert!(c.series_v1);
        let z = SerializerConfig::from_lookup(env(&[("DD_SERIALIZER_COMPRESSOR_KIND", "zlib")]));
        assert_eq!(z.unwrap().compression, Compression::Zlib { level: 6 });
        let n = SerializerConfig::from_lookup(env(&[("DD_SERIALIZER_COMPRESSOR_KIND", "none")]));
        assert_eq!(n.unwrap().compression, Compression::None);
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let e = SerializerConfig::from_lookup(env(&[("DD_SERIALIZER_COMPRESSOR_KIND", "lz4")]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "DD_SERIALIZER_COMPRESSOR_KIND=`lz4` is not valid: expected `zstd`, `zlib` or `none`"
        );
        assert!(
            SerializerConfig::from_lookup(env(&[("DD_SERIALIZER_ZSTD_COMPRESSOR_LEVEL", "0")]))
                .is_err()
        );
        assert!(
            SerializerConfig::from_lookup(env(&[("DD_SERIALIZER_MAX_PAYLOAD_SIZE", "-3")]))
                .is_err()
        );
    }
}
