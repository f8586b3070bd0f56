//! What a producer is told to send, and its JSON form in the golden `.json` files.
//!
//! Bytes are written as `{"utf8": "..."}` when they are text, `{"base64": "..."}` when binary,
//! and `{"generator": "mod251", "len": N}` for large generated values (byte `i` is `i % 251`), so
//! a 1 MB value costs a line of JSON instead of a megabyte. A null key, value or header value is
//! JSON `null`. The Java peer (`tests/peers/java/Peer.java`) reads the same forms.

use serde_json::{Value, json};

/// Bytes a producer is told to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// UTF-8 text.
    Utf8(String),
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
    /// `len` bytes where byte `i` is `i % 251`.
    Mod251(usize),
}

impl Data {
    pub fn text(s: &str) -> Self {
        Self::Utf8(s.to_string())
    }

    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Utf8(s) => s.as_bytes().to_vec(),
            Self::Bytes(b) => b.clone(),
            Self::Mod251(len) => (0..*len).map(|i| (i % 251) as u8).collect(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Self::Utf8(s) => json!({ "utf8": s }),
            Self::Bytes(b) => json!({ "base64": base64(b) }),
            Self::Mod251(len) => json!({ "generator": "mod251", "len": len }),
        }
    }

    /// As kcat takes it on stdin: text only, no delimiters.
    pub fn kcat_text(&self) -> &str {
        match self {
            Self::Utf8(s) if !s.is_empty() && !s.contains(['\t', '\n']) => s,
            other => {
                panic!("kcat can only send non-empty text without tabs or newlines: {other:?}")
            }
        }
    }
}

pub fn opt_json(d: &Option<Data>) -> Value {
    d.as_ref().map_or(Value::Null, Data::to_json)
}

/// One record a producer is told to send.
#[derive(Debug, Clone)]
pub struct Rec {
    pub key: Option<Data>,
    pub value: Option<Data>,
    pub headers: Vec<(String, Option<Data>)>,
    /// An explicit CreateTime; `None` lets the producer stamp the time.
    pub timestamp: Option<i64>,
}

impl Rec {
    pub fn kv(key: Option<&str>, value: Option<&str>) -> Self {
        Self {
            key: key.map(Data::text),
            value: value.map(Data::text),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    pub fn with_headers(mut self, headers: &[(&str, Option<&str>)]) -> Self {
        self.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(Data::text)))
            .collect();
        self
    }

    pub fn at(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    pub fn headers_json(&self) -> Value {
        Value::Array(
            self.headers
                .iter()
                .map(|(k, v)| json!({ "key": k, "value": opt_json(v) }))
                .collect(),
        )
    }

    /// The Java peer's input line.
    pub fn java_line(&self, partition: i32) -> String {
        json!({
            "key": opt_json(&self.key),
            "value": opt_json(&self.value),
            "headers": self.headers_json(),
            "timestamp": self.timestamp,
            "partition": partition,
        })
        .to_string()
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on a bad character.
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Bytes from a JSON bytes form (the golden files' and the Java peer's).
pub fn json_bytes(v: &Value) -> Option<Option<Vec<u8>>> {
    if v.is_null() {
        return Some(None);
    }
    if let Some(s) = v.get("utf8").and_then(Value::as_str) {
        return Some(Some(s.as_bytes().to_vec()));
    }
    if let Some(s) = v.get("base64").and_then(Value::as_str) {
        return unbase64(s).map(Some);
    }
    if v.get("generator").and_then(Value::as_str) == Some("mod251") {
        let len = v.get("len")?.as_u64()? as usize;
        return Some(Some(Data::Mod251(len).bytes()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(unbase64(&base64(&data)).unwrap(), data);
        }
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }
}
