//! Forwarder configuration.

use super::ForwardError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// An API key. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (surrounding whitespace removed).
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into().trim().to_string())
    }
    /// The key, for the `DD-API-KEY` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the [`Forwarder`](super::Forwarder) reaches the intake and what it keeps when it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwarderConfig {
    pub(crate) url: String,
    pub(crate) api_key: ApiKey,
    pub(crate) timeout: Duration,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) retry_queue_bytes: usize,
    pub(crate) spool_dir: Option<PathBuf>,
    pub(crate) spool_bytes: u64,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        ForwarderConfig {
            url: "https://api.datadoghq.com".to_string(),
            api_key: ApiKey::new(""),
            timeout: Duration::from_secs(20),
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(64),
            retry_queue_bytes: 15 << 20,
            spool_dir: None,
            spool_bytes: 100 << 20,
        }
    }
}

impl ForwarderConfig {
    /// Sets the intake's base URL (`http://` is allowed, for tests and proxies). Defaults to
    /// `https://api.datadoghq.com`.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into().trim_end_matches('/').to_string();
        self
    }
    /// Sets the intake to `https://api.<site>`. Defaults to site `datadoghq.com`.
    pub fn with_site(self, site: &str) -> Self {
        self.with_url(format!("https://api.{}", site.trim()))
    }
    /// Sets the API key. Defaults to empty.
    pub fn with_api_key(mut self, key: ApiKey) -> Self {
        self.api_key = key;
        self
    }
    /// Sets the timeout of one request. Defaults to 20 s.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Sets the first retry delay; each failure doubles it, up to `max`, and the actual delay is
    /// drawn between half and all of it. Defaults to 2 s and 64 s.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }
    /// Sets the bytes of payloads kept in memory while the intake cannot take them. Defaults to
    /// 15 MiB.
    pub fn with_retry_queue_bytes(mut self, bytes: usize) -> Self {
        self.retry_queue_bytes = bytes;
        self
    }
    /// Keeps payloads that do not fit in memory, and those still queued when the forwarder is
    /// closed, in `dir`, at most `max_bytes` of them; they are sent after a restart. Defaults to
    /// no spool.
    pub fn with_spool(mut self, dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        self.spool_dir = Some(dir.into());
        self.spool_bytes = max_bytes;
        self
    }
    /// The intake's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The API key.
    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }

    /// Reads `DD_API_KEY`, `DD_DD_URL` (any URL) or else `DD_SITE` (default `datadoghq.com`),
    /// and `DD_FORWARDER_SPOOL_DIR` / `DD_FORWARDER_SPOOL_MAX_BYTES` from `lookup`.
    ///
    /// # Errors
    /// [`ForwardError::InvalidSetting`] for a URL that is not `http://` or `https://`, or a
    /// size that is not a number.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ForwarderConfig, ForwardError> {
        let mut config = ForwarderConfig::default();
        if let Some(key) = lookup("DD_API_KEY") {
            config.api_key = ApiKey::new(key);
        }
        match lookup("DD_DD_URL").filter(|u| !u.trim().is_empty()) {
            Some(url) => {
                let url = url.trim();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ForwardError::InvalidSetting {
                        name: "DD_DD_URL",
                        expected: "a URL starting with `http://` or `https://`",
                    });
                }
                config = config.with_url(url);
            }
            None => {
                let site = lookup("DD_SITE").filter(|s| !s.trim().is_empty());
                config = config.with_site(site.as_deref().unwrap_or("datadoghq.com"));
            }
        }
        if let Some(dir) = lookup("DD_FORWARDER_SPOOL_DIR").filter(|d| !d.is_empty()) {
            let bytes = match lookup("DD_FORWARDER_SPOOL_MAX_BYTES") {
                None => config.spool_bytes,
                Some(v) => v.trim().parse().map_err(|_| ForwardError::InvalidSetting {
                    name: "DD_FORWARDER_SPOOL_MAX_BYTES",
                    expected: "a number of bytes",
                })?,
            };
            config = config.with_spool(dir, bytes);
        }
        Ok(config)
    }

    /// [`from_lookup`](Self::from_lookup) over the process environment.
    ///
    /// # Errors
    /// As [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> Result<ForwarderConfig, ForwardError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_and_url_choose_the_intake() {
        let c = ForwarderConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c.url(), "https://api.datadoghq.com");
        let c = ForwarderConfig::from_lookup(|n| (n == "DD_SITE").then(|| "datadoghq.eu".into()))
            .unwrap();
        assert_eq!(c.url(), "https://api.datadoghq.eu");
        let c = ForwarderConfig::from_lookup(|n| match n {
            "DD_SITE" => Some("datadoghq.eu".into()),
            "DD_DD_URL" => Some("http://127.0.0.1:9/".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:9");
        assert!(
            ForwarderConfig::from_lookup(|n| (n == "DD_DD_URL").then(|| "ftp://x".into())).is_err()
        );
    }

    #[test]
    fn debug_output_never_shows_the_api_key() {
        let c = ForwarderConfig::from_lookup(|n| {
            (n == "DD_API_KEY").then(|| "abcdef0123456789secret".into())
        })
        .unwrap();
        assert_eq!(c.api_key().expose(), "abcdef0123456789secret");
        let shown = format!("{c:?} {} {:?}", c.api_key(), c.api_key());
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
