//! A minimal reader of v2 record batch headers, written independently of the crate's decoder
//! (which the golden data exists to test): enough to check a capture and to make corrupt variants.

/// Size of the v2 batch header, up to and including the record count.
pub const HEADER: usize = 61;
pub const LENGTH_AT: usize = 8;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
pub const ATTRIBUTES_AT: usize = 21;
pub const COUNT_AT: usize = 57;

#[derive(Debug, Clone)]
pub struct Hdr {
    /// Where the batch starts in the buffer.
    pub pos: usize,
    /// Bytes of the whole batch (12 + batch length).
    pub size: usize,
    pub base_offset: i64,
    pub magic: i8,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub count: i32,
}

impl Hdr {
    pub fn compression(&self) -> &'static str {
        match self.attributes & 7 {
            0 => "none",
            1 => "gzip",
            2 => "snappy",
            3 => "lz4",
            4 => "zstd",
            _ => "invalid",
        }
    }
    pub fn log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
    pub fn transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    pub fn next_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta) + 1
    }
    pub fn records_at(&self) -> usize {
        self.pos + HEADER
    }
    pub fn end(&self) -> usize {
        self.pos + self.size
    }
}

fn be<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf[at..at + N].try_into().expect("in range")
}

/// The complete batches of `buf`, and the number of bytes of a partial batch at the end.
pub fn walk(buf: &[u8]) -> (Vec<Hdr>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= HEADER {
        let b = &buf[pos..];
        let length = i32::from_be_bytes(be(b, LENGTH_AT));
        let size = 12 + length.max(0) as usize;
        if size < HEADER || size > b.len() {
            break;
        }
        out.push(Hdr {
            pos,
            size,
            base_offset: i64::from_be_bytes(be(b, 0)),
            magic: b[MAGIC_AT] as i8,
            attributes: i16::from_be_bytes(be(b, ATTRIBUTES_AT)),
            last_offset_delta: i32::from_be_bytes(be(b, 23)),
            base_timestamp: i64::from_be_bytes(be(b, 27)),
            max_timestamp: i64::from_be_bytes(be(b, 35)),
            producer_id: i64::from_be_bytes(be(b, 43)),
            count: i32::from_be_bytes(be(b, COUNT_AT)),
        });
        pos += size;
    }
    (out, buf.len() - pos)
}

/// Recomputes the CRC32C of the batch starting at `pos` (over attributes..end).
pub fn fix_crc(buf: &mut [u8], pos: usize) {
    let length = i32::from_be_bytes(be(buf, pos + LENGTH_AT)) as usize;
    let end = pos + 12 + length;
    let crc = crc32c::crc32c(&buf[pos + ATTRIBUTES_AT..end]);
    buf[pos + CRC_AT..pos + CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Reads a zigzag varint at `at`; returns the value and its size in bytes.
pub fn varint(buf: &[u8], at: usize) -> (i64, usize) {
    let mut raw = 0u64;
    for i in 0..10 {
        let byte = buf[at + i];
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (((raw >> 1) as i64) ^ -((raw & 1) as i64), i + 1);
        }
    }
    panic!("varint too long at {at}");
}

/// Encodes a zigzag varint.
pub fn encode_varint(value: i64) -> Vec<u8> {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let byte = (raw & 0x7f) as u8;
        raw >>= 7;
        if raw == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Where the fields of one uncompressed record are.
#[derive(Debug, Clone)]
pub struct RecordFields {
    /// The record's length varint.
    pub length_at: usize,
    pub length: i64,
    pub key_length_at: usize,
    pub key_length: i64,
    pub value_length_at: usize,
    pub value_length: i64,
}

/// The fields of the records of an uncompressed batch.
pub fn records(buf: &[u8], hdr: &Hdr) -> Vec<RecordFields> {
    assert_eq!(hdr.attributes & 7, 0, "only uncompressed batches");
    let mut out = Vec::new();
    let mut at = hdr.records_at();
    for _ in 0..hdr.count {
        let (length, n) = varint(buf, at);
        let body = at + n;
        let end = body + length as usize;
        let mut p = body + 1; // attributes
        p += varint(buf, p).1; // timestamp delta
        p += varint(buf, p).1; // offset delta
        let key_length_at = p;
        let (key_length, n) = varint(buf, p);
        p += n + key_length.max(0) as usize;
        let value_length_at = p;
        let (value_length, _) = varint(buf, p);
        out.push(RecordFields {
            length_at: at,
            length,
            key_length_at,
            key_length,
            value_length_at,
            value_length,
        });
        at = end;
    }
    out
}

/// Replaces `buf[at..at + len]` with `with` inside the batch at `hdr`, fixing the batch length
/// and the CRC.
pub fn splice(buf: &[u8], hdr: &Hdr, at: usize, len: usize, with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + with.len());
    out.extend_from_slice(&buf[..at]);
    out.extend_from_slice(with);
    out.extend_from_slice(&buf[at + len..]);
    let new_length = (hdr.size - 12 + with.len() - len) as i32;
    out[hdr.pos + LENGTH_AT..hdr.pos + LENGTH_AT + 4].copy_from_slice(&new_length.to_be_bytes());
    fix_crc(&mut out, hdr.pos);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            -2,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
        ] {
            let enc = encode_varint(v);
            assert_eq!(varint(&enc, 0), (v, enc.len()));
        }
        assert_eq!(encode_varint(-2), vec![3]);
    }
}
