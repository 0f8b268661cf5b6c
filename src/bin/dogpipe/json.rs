//! A small JSON writer for the command line's output: lossy UTF-8 strings, numbers, nulls.

use std::fmt::Write as _;

/// Builds one JSON object into a reusable `String`.
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Starts an object at the end of `out`.
    pub fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, key.as_bytes());
        self.out.push(':');
        self.out
    }

    /// `"key":"value"` with `value` as lossy UTF-8.
    pub fn str(&mut self, key: &str, value: &[u8]) -> &mut Self {
        string(self.key(key), value);
        self
    }

    /// `"key":"value"` or `"key":null`.
    pub fn opt_str(&mut self, key: &str, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// `"key":<integer>` or `"key":null`.
    pub fn opt_int(&mut self, key: &str, value: Option<i64>) -> &mut Self {
        match value {
            Some(v) => {
                let out = self.key(key);
                let _ = write!(out, "{v}");
                self
            }
            None => self.raw(key, "null"),
        }
    }

    /// `"key":<number>`, non-finite numbers as the strings `"NaN"`, `"Inf"`, `"-Inf"`.
    pub fn num(&mut self, key: &str, value: f64) -> &mut Self {
        number(self.key(key), value);
        self
    }

    /// `"key":[…]` of strings.
    pub fn str_array<'v>(
        &mut self,
        key: &str,
        values: impl IntoIterator<Item = &'v [u8]>,
    ) -> &mut Self {
        let out = self.key(key);
        out.push('[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(out, v);
        }
        out.push(']');
        self
    }

    /// `"key":[…]` of numbers.
    pub fn num_array(&mut self, key: &str, values: impl IntoIterator<Item = f64>) -> &mut Self {
        let out = self.key(key);
        out.push('[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            number(out, v);
        }
        out.push(']');
        self
    }

    /// `"key":<raw JSON>`.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }

    /// Closes the object.
    pub fn end(&mut self) {
        self.out.push('}');
    }
}

/// Appends a JSON number, or `"NaN"`, `"Inf"`, `"-Inf"`.
pub fn number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v == f64::INFINITY {
        out.push_str("\"Inf\"");
    } else if v == f64::NEG_INFINITY {
        out.push_str("\"-Inf\"");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Appends `bytes` as a JSON string, invalid UTF-8 replaced by U+FFFD.
pub fn string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
