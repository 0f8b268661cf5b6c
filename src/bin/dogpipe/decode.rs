//! `dogpipe decode`: payload bodies (or a file sink's `requests.jsonl`) into JSON lines.

use crate::json::{Obj, number, string};
use std::fmt::Write as _;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

pub const USAGE: &str =
    "usage: dogpipe decode [--path PATH] [--encoding zstd|deflate|none] [--max-bytes N] FILE…
  FILE is a body file or a file sink's requests.jsonl (or its directory). The payload type comes
  from requests.jsonl (also found beside a body file), else from --path (/api/v2/series,
  /api/beta/sketches, /api/v1/series, /api/v1/check_run, /intake/); JSON bodies are recognised.
  The encoding is detected from the body's magic bytes unless given. Bodies decompressing to more
  than --max-bytes (default 67108864) are refused.";

const DEFAULT_MAX_BYTES: u64 = 64 << 20;

struct Options {
    path: Option<String>,
    encoding: Option<String>,
    max_bytes: u64,
}

/// One request to decode.
struct Request {
    seq: Option<u64>,
    path: Option<String>,
    encoding: Option<String>,
    body_file: PathBuf,
}

/// Runs the command.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut options = Options {
        path: None,
        encoding: None,
        max_bytes: DEFAULT_MAX_BYTES,
    };
    let mut files = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("decode: {name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--path" => options.path = Some(value("--path")?),
            "--encoding" => options.encoding = Some(value("--encoding")?),
            "--max-bytes" => {
                let v = value("--max-bytes")?;
                options.max_bytes = v
                    .parse()
                    .map_err(|_| format!("decode: --max-bytes `{v}` is not a number"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other if other.starts_with("--") => {
                return Err(format!("decode: unknown argument `{other}`\n{USAGE}"));
            }
            file => files.push(PathBuf::from(file)),
        }
    }
    if files.is_empty() {
        return Err(format!("decode: no file given\n{USAGE}"));
    }
    let mut requests = Vec::new();
    for file in &files {
        requests.extend(requests_of(file)?);
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failed = 0;
    for request in &requests {
        match decode_request(request, &options) {
            Ok(lines) => out
                .write_all(lines.as_bytes())
                .map_err(|e| format!("decode: cannot write stdout: {e}"))?,
            Err(e) => {
                failed += 1;
                eprintln!("dogpipe decode: {}: {e}", request.body_file.display());
            }
        }
    }
    out.flush()
        .map_err(|e| format!("decode: cannot write stdout: {e}"))?;
    if failed > 0 {
        return Err(format!(
            "decode: {failed} of {} bodies could not be decoded",
            requests.len()
        ));
    }
    Ok(())
}

/// The requests a command-line file stands for.
fn requests_of(file: &Path) -> Result<Vec<Request>, String> {
    let index = if file.is_dir() {
        Some(file.join("requests.jsonl"))
    } else if file.file_name().is_some_and(|n| n == "requests.jsonl") {
        Some(file.to_path_buf())
    } else {
        None
    };
    if let Some(index) = index {
        return read_index(&index);
    }
    // A body file: look for its line in a requests.jsonl beside it.
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let beside = file
        .parent()
        .unwrap_or(Path::new("."))
        .join("requests.jsonl");
    if beside.is_file() {
        if let Some(r) = read_index(&beside)?.into_iter().find(|r| {
            r.body_file
                .file_name()
                .is_some_and(|n| n.to_string_lossy() == name)
        }) {
            return Ok(vec![r]);
        }
    }
    Ok(vec![Request {
        seq: None,
        path: None,
        encoding: None,
        body_file: file.to_path_buf(),
    }])
}

fn read_index(index: &Path) -> Result<Vec<Request>, String> {
    let text = std::fs::read_to_string(index)
        .map_err(|e| format!("decode: cannot read `{}`: {e}", index.display()))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut requests = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let body = field(line, "body_file")
            .ok_or_else(|| format!("decode: `{}` line {}: no body_file", index.display(), n + 1))?;
        requests.push(Request {
            seq: field(line, "seq").and_then(|s| s.parse().ok()),
            path: field(line, "path"),
            encoding: field(line, "content_encoding").filter(|e| e != "null"),
            body_file: dir.join(body),
        });
    }
    Ok(requests)
}

/// The value of `"key":` in one line of our own index format (strings without escapes).
fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = line.get(start..)?;
    if let Some(s) = rest.strip_prefix('"') {
        Some(s.get(..s.find('"')?)?.to_string())
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest.get(..end)?.trim().to_string())
    }
}

fn decode_request(request: &Request, options: &Options) -> Result<String, String> {
    let body = std::fs::read(&request.body_file).map_err(|e| format!("cannot read: {e}"))?;
    let encoding = options
        .encoding
        .clone()
        .or_else(|| request.encoding.clone())
        .unwrap_or_else(|| detect(&body).to_string());
    let raw = decompress(&body, &encoding, options.max_bytes)?;
    let path = options.path.clone().or_else(|| request.path.clone());
    let first = raw.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let kind = match (path.as_deref(), first) {
        (Some("/api/v2/series"), _) => Kind::Series,
        (Some("/api/beta/sketches"), _) => Kind::Sketches,
        (Some(_), _) | (None, Some(b'{' | b'[')) => Kind::Json,
        (None, _) => {
            return Err(
                "cannot tell the payload type: pass --path /api/v2/series or /api/beta/sketches"
                    .into(),
            );
        }
    };
    let mut out = String::new();
    let prefix = |o: &mut Obj<'_>| {
        o.opt_int("seq", request.seq.map(|s| s as i64));
        o.opt_str("path", path.as_deref().map(str::as_bytes));
    };
    match kind {
        Kind::Series => {
            for entry in entries(&raw)? {
                let mut line = String::new();
                let mut o = Obj::new(&mut line);
                prefix(&mut o);
                o.str("kind", b"series");
                series(&mut o, entry)?;
                o.end();
                out.push_str(&line);
                out.push('\n');
            }
        }
        Kind::Sketches => {
            for entry in entries(&raw)? {
                let mut line = String::new();
                let mut o = Obj::new(&mut line);
                prefix(&mut o);
                o.str("kind", b"sketch");
                sketch(&mut o, entry)?;
                o.end();
                out.push_str(&line);
                out.push('\n');
            }
        }
        Kind::Json => {
            let text =
                std::str::from_utf8(&raw).map_err(|_| "the JSON body is not UTF-8".to_string())?;
            let mut o = Obj::new(&mut out);
            prefix(&mut o);
            o.str("kind", b"json");
            o.raw("body", text.trim());
            o.end();
            out.push('\n');
        }
    }
    Ok(out)
}

enum Kind {
    Series,
    Sketches,
    Json,
}

fn detect(body: &[u8]) -> &'static str {
    match body {
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        [a, b, ..] if a & 0x0f == 8 && (u16::from(*a) << 8 | u16::from(*b)) % 31 == 0 => "deflate",
        _ => "none",
    }
}

/// Decompresses, refusing output larger than `max` bytes.
fn decompress(body: &[u8], encoding: &str, max: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let read = match encoding {
        "zstd" => zstd::stream::read::Decoder::new(body)
            .and_then(|d| d.take(max + 1).read_to_end(&mut out)),
        "deflate" | "zlib" => flate2::read::ZlibDecoder::new(body)
            .take(max + 1)
            .read_to_end(&mut out),
        "none" | "identity" => {
            out.extend_from_slice(body);
            Ok(body.len())
        }
        other => {
            return Err(format!(
                "unknown encoding `{other}` (expected zstd, deflate or none)"
            ));
        }
    };
    read.map_err(|e| format!("cannot decompress ({encoding}): {e}"))?;
    if out.len() as u64 > max {
        return Err(format!(
            "decompresses to more than {max} bytes (raise --max-bytes)"
        ));
    }
    Ok(out)
}

/// A protobuf wire value.
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

/// Reads the fields of one protobuf message.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first().ok_or("truncated varint")?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err("truncated field".into());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| "bad fixed64")?,
            )),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed32
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

/// The field-1 entries of a `MetricPayload` / `SketchPayload`.
fn entries(raw: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut f = fields(raw);
    while let Some((n, v)) = f.next()? {
        if let (1, Value::Bytes(b)) = (n, v) {
            out.push(b);
        }
    }
    Ok(out)
}

fn f64_of(v: &Value<'_>) -> f64 {
    match v {
        Value::Fixed64(bits) => f64::from_bits(*bits),
        _ => 0.0,
    }
}

fn int_of(v: &Value<'_>) -> i64 {
    match v {
        Value::Varint(x) => *x as i64,
        _ => 0,
    }
}

fn str_array(items: &[&[u8]]) -> String {
    let mut s = String::from("[");
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        string(&mut s, t);
    }
    s.push(']');
    s
}

fn series(o: &mut Obj<'_>, msg: &[u8]) -> Result<(), String> {
    let (mut metric, mut kind, mut interval): (&[u8], i64, i64) = (b"", 0, 0);
    let (mut tags, mut resources, mut points, mut origin) = (
        Vec::new(),
        String::from("["),
        String::from("["),
        String::from("null"),
    );
    let mut f = fields(msg);
    while let Some((n, v)) = f.next()? {
        match (n, v) {
            (1, Value::Bytes(r)) => {
                let (mut t, mut name): (&[u8], &[u8]) = (b"", b"");
                let mut rf = fields(r);
                while let Some((n, v)) = rf.next()? {
                    match (n, v) {
                        (1, Value::Bytes(b)) => t = b,
                        (2, Value::Bytes(b)) => name = b,
                        _ => {}
                    }
                }
                if resources.len() > 1 {
                    resources.push(',');
                }
                Obj::new(&mut resources)
                    .str("type", t)
                    .str("name", name)
                    .end();
            }
            (2, Value::Bytes(b)) => metric = b,
            (3, Value::Bytes(b)) => tags.push(b),
            (4, Value::Bytes(p)) => {
                let (mut ts, mut value) = (0i64, 0.0);
                let mut pf = fields(p);
                while let Some((n, v)) = pf.next()? {
                    match n {
                        1 => value = f64_of(&v),
                        2 => ts = int_of(&v),
                        _ => {}
                    }
                }
                if points.len() > 1 {
                    points.push(',');
                }
                let _ = write!(points, "[{ts},");
                number(&mut points, value);
                points.push(']');
            }
            (5, v) => kind = int_of(&v),
            (8, v) => interval = int_of(&v),
            (9, Value::Bytes(m)) => origin = origin_json(m)?,
            _ => {}
        }
    }
    resources.push(']');
    points.push(']');
    let kind = match kind {
        1 => "count",
        2 => "rate",
        3 => "gauge",
        _ => "unspecified",
    };
    o.str("metric", metric)
        .str("type", kind.as_bytes())
        .opt_int("interval", Some(interval))
        .raw("resources", &resources)
        .raw("tags", &str_array(&tags))
        .raw("points", &points)
        .raw("origin", &origin);
    Ok(())
}

fn origin_json(metadata: &[u8]) -> Result<String, String> {
    let mut out = String::from("null");
    let mut f = fields(metadata);
    while let Some((n, v)) = f.next()? {
        if let (1, Value::Bytes(origin)) = (n, v) {
            let (mut product, mut category, mut service) = (0, 0, 0);
            let mut of = fields(origin);
            while let Some((n, v)) = of.next()? {
                match n {
                    4 => product = int_of(&v),
                    5 => category = int_of(&v),
                    6 => service = int_of(&v),
                    _ => {}
                }
            }
            out =
                format!("{{\"product\":{product},\"category\":{category},\"service\":{service}}}");
        }
    }
    Ok(out)
}

fn sketch(o: &mut Obj<'_>, msg: &[u8]) -> Result<(), String> {
    let (mut metric, mut host): (&[u8], &[u8]) = (b"", b"");
    let (mut tags, mut points, mut origin) = (Vec::new(), String::from("["), String::from("null"));
    let mut f = fields(msg);
    while let Some((n, v)) = f.next()? {
        match (n, v) {
            (1, Value::Bytes(b)) => metric = b,
            (2, Value::Bytes(b)) => host = b,
            (4, Value::Bytes(b)) => tags.push(b),
            (7, Value::Bytes(d)) => {
                if points.len() > 1 {
                    points.push(',');
                }
                dogsketch(&mut points, d)?;
            }
            (8, Value::Bytes(m)) => origin = origin_json(m)?,
            _ => {}
        }
    }
    points.push(']');
    o.str("metric", metric)
        .str("host", host)
        .raw("tags", &str_array(&tags))
        .raw("points", &points)
        .raw("origin", &origin);
    Ok(())
}

fn dogsketch(out: &mut String, msg: &[u8]) -> Result<(), String> {
    let (mut ts, mut cnt) = (0i64, 0i64);
    let mut stats = [0.0f64; 4];
    let (mut keys, mut counts) = (Vec::new(), Vec::new());
    let mut f = fields(msg);
    while let Some((n, v)) = f.next()? {
        match (n, v) {
            (1, v) => ts = int_of(&v),
            (2, v) => cnt = int_of(&v),
            (3..=6, v) => {
                if let Some(slot) = stats.get_mut((n - 3) as usize) {
                    *slot = f64_of(&v);
                }
            }
            (7, Value::Bytes(packed)) => {
                let mut p = fields(packed);
                while !p.buf.is_empty() {
                    let z = p.varint()?;
                    keys.push(((z >> 1) as i64) ^ -((z & 1) as i64));
                }
            }
            (7, Value::Varint(z)) => keys.push(((z >> 1) as i64) ^ -((z & 1) as i64)),
            (8, Value::Bytes(packed)) => {
                let mut p = fields(packed);
                while !p.buf.is_empty() {
                    counts.push(p.varint()?);
                }
            }
            (8, Value::Varint(c)) => counts.push(c),
            _ => {}
        }
    }
    let [min, max, avg, sum] = stats;
    let join = |v: Vec<String>| v.join(",");
    let mut o = Obj::new(out);
    o.opt_int("ts", Some(ts))
        .opt_int("cnt", Some(cnt))
        .num("min", min)
        .num("max", max)
        .num("avg", avg)
        .num("sum", sum);
    o.raw(
        "k",
        &format!("[{}]", join(keys.iter().map(|k| k.to_string()).collect())),
    );
    o.raw(
        "n",
        &format!("[{}]", join(counts.iter().map(|c| c.to_string()).collect())),
    );
    o.end();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_protobuf_is_an_error_not_a_panic() {
        for bad in [
            &[0x0a, 0x05, 0x01][..],
            &[0x80],
            &[0x0b],
            &[0x09, 1, 2],
            &[0xff; 11],
        ] {
            assert!(entries(bad).is_err(), "{bad:?}");
        }
        assert!(series(&mut Obj::new(&mut String::new()), &[0x22, 0x03, 0x09, 0x00]).is_err());
    }

    #[test]
    fn decompression_is_capped() {
        let big = zstd::encode_all(&vec![0u8; 10_000][..], 1).unwrap();
        assert!(
            decompress(&big, "zstd", 9_999)
                .unwrap_err()
                .contains("more than 9999")
        );
        assert_eq!(decompress(&big, "zstd", 10_000).unwrap().len(), 10_000);
        assert_eq!(detect(&big), "zstd");
        assert_eq!(detect(&[0x78, 0x9c, 0]), "deflate");
        assert_eq!(detect(b"{}"), "none");
    }

    #[test]
    fn index_fields_are_read_back() {
        let line = r#"{"seq":12,"path":"/api/v2/series","content_type":"application/x-protobuf","content_encoding":null,"body_file":"000012.body","bytes":3}"#;
        assert_eq!(field(line, "seq").as_deref(), Some("12"));
        assert_eq!(field(line, "path").as_deref(), Some("/api/v2/series"));
        assert_eq!(field(line, "content_encoding").as_deref(), Some("null"));
        assert_eq!(field(line, "body_file").as_deref(), Some("000012.body"));
    }
}
