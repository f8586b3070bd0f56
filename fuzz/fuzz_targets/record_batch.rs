//! `decode_batches` on arbitrary bytes: the `records` field of a Fetch response partition as a
//! hostile broker could send it. It must return batches, a partial tail or a typed error, never
//! panic, and never allocate more than the decompression limit allows.
//!
//! Random mutations almost always break a batch's CRC, which the decoder checks before anything
//! else, so each input is decoded twice: as given, and with every complete batch's CRC recomputed,
//! which lets the fuzzer reach the attribute, record and codec parsers.
#![no_main]

use bytes::Bytes;
use kafka_once::protocol::records::{BatchContext, decode_batches};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small limit keeps bombs cheap; the limit logic is the same at any size.
    let ctx = BatchContext::new("fuzz", 0).with_max_decompressed(1 << 20);
    let _ = decode_batches(Bytes::copy_from_slice(data), &ctx);
    let mut fixed = data.to_vec();
    if fix_crcs(&mut fixed) {
        let _ = decode_batches(Bytes::from(fixed), &ctx);
    }
});

/// Recomputes the CRC32C (over attributes..end) of every complete batch, walking them by their
/// lengths as the decoder does. Returns whether any CRC changed.
fn fix_crcs(buf: &mut [u8]) -> bool {
    let mut pos = 0;
    let mut changed = false;
    while let Some(header) = buf.get(pos..pos + 12) {
        let len = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let Some(end) = usize::try_from(len)
            .ok()
            .filter(|&len| len >= 9)
            .and_then(|len| (pos + 12).checked_add(len))
            .filter(|&end| end <= buf.len())
        else {
            break;
        };
        let crc = crc32c::crc32c(&buf[pos + 21..end]).to_be_bytes();
        if buf[pos + 17..pos + 21] != crc {
            buf[pos + 17..pos + 21].copy_from_slice(&crc);
            changed = true;
        }
        pos = end;
    }
    changed
}
