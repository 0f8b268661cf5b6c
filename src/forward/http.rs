//! The HTTP transport: one blocking POST per payload.

use std::io::Read;
use std::time::Duration;

/// The intake's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The first bytes of the response body, lossy UTF-8.
    pub body: String,
    /// A `Retry-After` delay in seconds, if the intake gave one.
    pub retry_after: Option<Duration>,
}

/// Sends one request; a network failure is an `Err` with a message.
pub trait Transport: Send {
    /// POSTs `body` to `url` with `headers`.
    ///
    /// # Errors
    /// A message describing a network failure (connection refused, timeout, TLS…).
    fn post(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String>;
}

/// Most bytes of an intake's answer kept for the log.
const MAX_ANSWER_BYTES: u64 = 512;

/// [`Transport`] over `ureq` with rustls (TLS with the Mozilla roots), no redirects.
#[derive(Debug)]
pub struct HttpTransport {
    agent: ureq::Agent,
}

impl HttpTransport {
    /// A transport whose requests time out after `timeout`.
    pub fn new(timeout: Duration) -> HttpTransport {
        HttpTransport {
            agent: ureq::AgentBuilder::new()
                .timeout(timeout)
                .redirects(0)
                .build(),
        }
    }
}

impl Transport for HttpTransport {
    fn post(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, String> {
        let mut request = self.agent.post(url);
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let response = match request.send_bytes(body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(t.to_string()),
        };
        let status = response.status();
        let retry_after = response
            .header("Retry-After")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut answer = Vec::new();
        let _ = response
            .into_reader()
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut answer);
        Ok(Response {
            status,
            body: String::from_utf8_lossy(&answer).into_owned(),
            retry_after,
        })
    }
}
