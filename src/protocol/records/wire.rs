//! Bounds-checked reading and writing of the primitive fields of a record batch: big-endian
//! integers and the zigzag varints of the v2 record format.

use bytes::{BufMut, Bytes};

/// A structural problem found while reading; the decoder adds topic, partition and offset.
pub(crate) type WireResult<T> = Result<T, String>;

/// A cursor over a `Bytes` buffer. Byte fields are returned as `Bytes::slice`s of the buffer, so
/// reading an uncompressed batch copies no key, value or header value.
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf[start..end]`. The caller guarantees `start <= end <= buf.len()`.
    pub(crate) fn new(buf: &'a Bytes, start: usize, end: usize) -> Self {
        debug_assert!(start <= end && end <= buf.len());
        Self {
            buf,
            pos: start,
            end,
        }
    }

    /// Bytes left before the end of this reader's range.
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Position in the underlying buffer.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Splits off the next `len` bytes as a reader of their own. The caller checked
    /// `len <= self.remaining()`.
    pub(crate) fn split(&mut self, len: usize) -> Reader<'a> {
        debug_assert!(len <= self.remaining());
        let sub = Reader {
            buf: self.buf,
            pos: self.pos,
            end: self.pos + len,
        };
        self.pos += len;
        sub
    }

    fn take(&mut self, n: usize, what: &str) -> WireResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(format!(
                "{what} needs {n} bytes but only {} remain",
                self.remaining()
            ));
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    pub(crate) fn i8(&mut self, what: &str) -> WireResult<i8> {
        Ok(self.take(1, what)?[0] as i8)
    }

    pub(crate) fn i16(&mut self, what: &str) -> WireResult<i16> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self, what: &str) -> WireResult<i32> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn i64(&mut self, what: &str) -> WireResult<i64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// An unsigned LEB128 value of at most `max_bytes` bytes. Like the Java client's
    /// `ByteUtils.readVarint`/`readVarlong`, a longer encoding is an error and excess high bits of
    /// the last byte are dropped.
    fn unsigned_varint(&mut self, max_bytes: usize, what: &str) -> WireResult<u64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            if self.pos >= self.end {
                return Err(format!("{what}: varint runs past the end"));
            }
            let byte = self.buf[self.pos];
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("{what}: varint longer than {max_bytes} bytes"))
    }

    /// A zigzag-encoded `int32` varint (at most 5 bytes).
    pub(crate) fn varint(&mut self, what: &str) -> WireResult<i32> {
        let raw = self.unsigned_varint(5, what)? as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zigzag-encoded `int64` varlong (at most 10 bytes).
    pub(crate) fn varlong(&mut self, what: &str) -> WireResult<i64> {
        let raw = self.unsigned_varint(10, what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A varint length followed by that many bytes; -1 is null. Any other negative length is an
    /// error, and the length is checked against the remaining bytes before anything is sliced.
    pub(crate) fn nullable_bytes(&mut self, what: &str) -> WireResult<Option<Bytes>> {
        let len = self.varint(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| format!("{what} has negative length {len}"))?;
        if len > self.remaining() {
            return Err(format!(
                "{what} length {len} exceeds the {} bytes left in the record",
                self.remaining()
            ));
        }
        let start = self.pos;
        self.pos += len;
        Ok(Some(self.buf.slice(start..start + len)))
    }
}

/// Bytes a zigzag varint of `value` takes.
pub(crate) fn varint_len(value: i32) -> usize {
    varlong_len(i64::from(value))
}

/// Bytes a zigzag varlong of `value` takes.
pub(crate) fn varlong_len(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let bits = 64 - (zigzag | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn put_unsigned_varint(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Writes a zigzag varint.
pub(crate) fn put_varint(buf: &mut impl BufMut, value: i32) {
    put_unsigned_varint(buf, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Writes a zigzag varlong.
pub(crate) fn put_varlong(buf: &mut impl BufMut, value: i64) {
    put_unsigned_varint(buf, ((value << 1) ^ (value >> 63)) as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_varint(bytes: &[u8]) -> WireResult<i32> {
        let buf = Bytes::copy_from_slice(bytes);
        Reader::new(&buf, 0, buf.len()).varint("v")
    }

    #[test]
    fn varints_round_trip_with_predicted_length() {
        for v in [0, 1, -1, 63, -64, 64, -65, 1 << 20, i32::MAX, i32::MIN] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "{v}");
            assert_eq!(read_varint(&buf).unwrap(), v);
        }
        for v in [0, -1, 1 << 40, i64::MAX, i64::MIN] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(buf.len(), varlong_len(v), "{v}");
            let b = Bytes::from(buf);
            assert_eq!(Reader::new(&b, 0, b.len()).varlong("v").unwrap(), v);
        }
    }

    #[test]
    fn zigzag_matches_the_protocol_guide() {
        // 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, 2 -> 4
        for (v, byte) in [(0, 0u8), (-1, 1), (1, 2), (-2, 3), (2, 4)] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf, [byte]);
        }
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        assert!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).is_err());
        assert!(read_varint(&[0x80]).is_err());
        assert!(read_varint(&[]).is_err());
    }

    #[test]
    fn bytes_lengths_are_checked_before_slicing() {
        let buf = Bytes::from_static(&[0x06, b'a', b'b']); // length 3, two bytes present
        let err = Reader::new(&buf, 0, buf.len()).nullable_bytes("key");
        assert!(err.unwrap_err().contains("exceeds"));
        let buf = Bytes::from_static(&[0x03]); // length -2
        let err = Reader::new(&buf, 0, buf.len()).nullable_bytes("key");
        assert!(err.unwrap_err().contains("negative length -2"));
        let buf = Bytes::from_static(&[0x01]); // -1: null
        assert_eq!(
            Reader::new(&buf, 0, buf.len())
                .nullable_bytes("key")
                .unwrap(),
            None
        );
    }
}
