//! JSON writers for series v1, service checks and events (spec §7.3, §7.5, §7.6).
//!
//! Items are small and rare next to series v2, so each is written into a reusable scratch buffer
//! and then copied into the payload: that is the only way to know its length before admitting it.

use crate::{EventRecord, Series, ServiceCheckRecord};
use std::io::Write as _;

/// Appends `bytes` as a JSON string; invalid UTF-8 becomes U+FFFD.
pub(crate) fn put_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let text = String::from_utf8_lossy(bytes);
    let mut start = 0;
    let raw = text.as_bytes();
    for (i, &b) in raw.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(raw.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(raw.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// Appends a finite number in its shortest round-trip form; non-finite values become `null`.
pub(crate) fn put_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else {
        out.extend_from_slice(b"null");
    }
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    let _ = write!(out, "{v}");
}

fn put_str_array<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a [u8]>) {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_str(out, item);
    }
    out.push(b']');
}

/// Header, separator and footer of a v1 series payload.
pub(crate) const SERIES_FRAMING: (&[u8], &[u8], &[u8]) = (b"{\"series\":[", b",", b"]}");
/// Header, separator and footer of a service checks payload.
pub(crate) const CHECKS_FRAMING: (&[u8], &[u8], &[u8]) = (b"[", b",", b"]");

/// Writes one v1 series object.
pub(crate) fn write_series(out: &mut Vec<u8>, s: &Series) {
    out.extend_from_slice(b"{\"metric\":");
    put_str(out, &s.name);
    out.extend_from_slice(b",\"points\":[");
    for (i, p) in s.points.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        put_int(out, p.timestamp);
        out.push(b',');
        put_f64(out, p.value);
        out.push(b']');
    }
    out.extend_from_slice(b"],\"tags\":");
    let device = super::proto::device_of(s);
    put_str_array(out, s.tags.iter().filter(|t| !t.starts_with(b"device:")));
    out.extend_from_slice(b",\"host\":");
    put_str(out, &s.host);
    if let Some(d) = device {
        out.extend_from_slice(b",\"device\":");
        put_str(out, d);
    }
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(s.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"interval\":");
    put_int(out, i64::from(s.interval));
    out.push(b'}');
}

/// Writes one service check object.
pub(crate) fn write_service_check(out: &mut Vec<u8>, c: &ServiceCheckRecord) {
    out.extend_from_slice(b"{\"check\":");
    put_str(out, &c.name);
    out.extend_from_slice(b",\"host_name\":");
    put_str(out, &c.host);
    out.extend_from_slice(b",\"timestamp\":");
    put_int(out, c.timestamp);
    out.extend_from_slice(b",\"status\":");
    put_int(out, i64::from(c.status.as_u8()));
    out.extend_from_slice(b",\"message\":");
    put_str(out, c.message.as_deref().unwrap_or_default());
    out.extend_from_slice(b",\"tags\":");
    if c.tags.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        put_str_array(out, c.tags.iter());
    }
    out.push(b'}');
}

/// The group key of an event: its source type name, `api` when empty.
pub(crate) fn event_group(e: &EventRecord) -> &[u8] {
    match e.source_type_name.as_deref() {
        Some(s) if !s.is_empty() => s,
        _ => b"api",
    }
}

/// Header and footer of an events payload holding one group.
pub(crate) fn events_framing(group: &[u8], hostname: &str) -> (Vec<u8>, Vec<u8>) {
    let mut header = b"{\"apiKey\":\"\",\"events\":{".to_vec();
    put_str(&mut header, group);
    header.extend_from_slice(b":[");
    let mut footer = b"]},\"internalHostname\":".to_vec();
    put_str(&mut footer, hostname.as_bytes());
    footer.push(b'}');
    (header, footer)
}

/// Writes one event object.
pub(crate) fn write_event(out: &mut Vec<u8>, e: &EventRecord) {
    out.extend_from_slice(b"{\"msg_title\":");
    put_str(out, &e.title);
    out.extend_from_slice(b",\"msg_text\":");
    put_str(out, &e.text);
    out.extend_from_slice(b",\"timestamp\":");
    put_int(out, e.timestamp);
    out.extend_from_slice(b",\"priority\":\"");
    out.extend_from_slice(e.priority.as_str().as_bytes());
    out.extend_from_slice(b"\",\"host\":");
    put_str(out, &e.host);
    if !e.tags.is_empty() {
        out.extend_from_slice(b",\"tags\":");
        put_str_array(out, e.tags.iter());
    }
    out.extend_from_slice(b",\"alert_type\":\"");
    out.extend_from_slice(e.alert_type.as_str().as_bytes());
    out.push(b'"');
    if let Some(k) = e.aggregation_key.as_deref().filter(|k| !k.is_empty()) {
        out.extend_from_slice(b",\"aggregation_key\":");
        put_str(out, k);
    }
    if let Some(s) = e.source_type_name.as_deref().filter(|s| !s.is_empty()) {
        out.extend_from_slice(b",\"source_type_name\":");
        put_str(out, s);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        put_str(&mut out, bytes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_and_invalid_utf8_replaced() {
        assert_eq!(s(b"a\"b\\c\nd\x01"), r#""a\"b\\c\nd\u0001""#);
        assert_eq!(s(b"caf\xc3\xa9 \xff"), "\"café \u{fffd}\"");
        let parsed: String = serde_json::from_str(&s(b"\x00\x1f\t\r")).unwrap();
        assert_eq!(parsed, "\0\u{1f}\t\r");
    }

    #[test]
    fn numbers_round_trip_and_non_finite_become_null() {
        for v in [0.0, -0.0, 1.0, 0.1, 1e300, 5e-324, -123.456] {
            let mut out = Vec::new();
            put_f64(&mut out, v);
            let back: f64 = serde_json::from_slice(&out).unwrap();
            assert_eq!(back.to_bits(), v.to_bits());
        }
        let mut out = Vec::new();
        put_f64(&mut out, f64::NAN);
        assert_eq!(out, b"null");
    }
}
