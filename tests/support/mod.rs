//! A test intake: an HTTP/1.1 server on 127.0.0.1 that records and decodes what it gets, and
//! answers from a script. Plus the spec's protobuf schema as `prost` messages.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricPayload {
        #[prost(message, repeated, tag = "1")]
        pub series: Vec<MetricSeries>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricSeries {
        #[prost(message, repeated, tag = "1")]
        pub resources: Vec<Resource>,
        #[prost(string, tag = "2")]
        pub metric: String,
        #[prost(string, repeated, tag = "3")]
        pub tags: Vec<String>,
        #[prost(message, repeated, tag = "4")]
        pub points: Vec<MetricPoint>,
        #[prost(int32, tag = "5")]
        pub r#type: i32,
        #[prost(int64, tag = "8")]
        pub interval: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricPoint {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(string, tag = "2")]
        pub name: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SketchPayload {
        #[prost(message, repeated, tag = "1")]
        pub sketches: Vec<Sketch>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sketch {
        #[prost(string, tag = "1")]
        pub metric: String,
        #[prost(string, tag = "2")]
        pub host: String,
        #[prost(string, repeated, tag = "4")]
        pub tags: Vec<String>,
        #[prost(message, repeated, tag = "7")]
        pub dogsketches: Vec<Dogsketch>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dogsketch {
        #[prost(int64, tag = "1")]
        pub ts: i64,
        #[prost(int64, tag = "2")]
        pub cnt: i64,
        #[prost(sint32, repeated, tag = "7")]
        pub k: Vec<i32>,
        #[prost(uint32, repeated, tag = "8")]
        pub n: Vec<u32>,
    }
}

/// One request the intake received.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, decompressed according to `Content-Encoding`.
    pub fn decoded(&self) -> Vec<u8> {
        match self.header("content-encoding") {
            Some("zstd") => zstd::decode_all(&self.body[..]).unwrap(),
            Some("deflate") => {
                let mut out = Vec::new();
                flate2::read::ZlibDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            None => self.body.clone(),
            Some(other) => panic!("unexpected encoding {other}"),
        }
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            body: format!("{{\"status\":{status}}}"),
            retry_after: None,
        }
    }
}

/// The running intake.
#[derive(Clone)]
pub struct Intake {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl Intake {
    /// Starts an intake on 127.0.0.1:0 answering `script` in order, then 200.
    pub fn start(script: Vec<Answer>) -> Intake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let intake = Intake {
            url,
            requests: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        };
        let server = intake.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = server.handle(stream);
            }
        });
        intake
    }

    fn handle(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        self.requests.lock().unwrap().push(Request {
            path,
            headers,
            body,
        });
        let answer = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Answer::status(200));
        let retry = answer
            .retry_after
            .map(|s| format!("Retry-After: {s}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "HTTP/1.1 {} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{retry}Connection: close\r\n\r\n{}",
            answer.status,
            answer.body.len(),
            answer.body
        )?;
        stream.flush()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// A URL where nothing listens.
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// A clock whose `sleep` only advances time, recording each sleep.
#[derive(Clone, Default)]
pub struct FakeClock {
    pub now: Arc<Mutex<Duration>>,
    pub sleeps: Arc<Mutex<Vec<Duration>>>,
}

impl dogpipe::Clock for FakeClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap()
    }
    fn sleep(&mut self, d: Duration) {
        *self.now.lock().unwrap() += d;
        self.sleeps.lock().unwrap().push(d);
    }
}

/// A fresh temporary directory.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dogpipe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
