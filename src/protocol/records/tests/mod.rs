//! Tests of the record batch codec: hand-made corrupt batches, vectors from the Java client and
//! the codecs' command-line tools, property tests and the fuzz corpus.

use bytes::Bytes;

use super::*;

mod codec;
mod control;
mod corpus;
mod decode;
mod encode;
mod java;
mod props;

/// The context every test decodes with.
fn ctx() -> BatchContext {
    BatchContext::new("t", 3)
}

fn bytes(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

/// Three records covering null keys and values, headers and a negative timestamp delta.
fn sample_records() -> Vec<RecordToEncode> {
    vec![
        RecordToEncode {
            timestamp: 1_700_000_000_000,
            key: bytes("key-0"),
            value: bytes("value-0"),
            headers: vec![
                Header::new("h1", "v1"),
                Header {
                    key: "h2".into(),
                    value: None,
                },
            ],
        },
        RecordToEncode {
            timestamp: 1_700_000_000_005,
            key: None,
            value: bytes("value-1 value-1 value-1"),
            headers: vec![],
        },
        RecordToEncode {
            timestamp: 1_699_999_999_990,
            key: bytes("k2"),
            value: None,
            headers: vec![Header::new("é", "")],
        },
    ]
}

fn opts(compression: Compression) -> EncodeOptions {
    EncodeOptions {
        base_offset: 100,
        compression,
        ..EncodeOptions::default()
    }
}

fn encode(records: &[RecordToEncode], compression: Compression) -> Bytes {
    encode_batch(records, &opts(compression)).expect("encodes")
}

/// Decodes a buffer that must hold only complete, valid batches.
fn decode_ok(buf: Bytes) -> Vec<RecordBatch> {
    let decoded = decode_batches(buf, &ctx()).expect("decodes");
    assert_eq!(decoded.truncated_tail_bytes, 0);
    decoded.batches
}

fn decode_err(buf: impl Into<Bytes>) -> RecordError {
    decode_batches(buf.into(), &ctx()).expect_err("must fail")
}

/// Recomputes the CRC of the single batch in `batch`, so a test can corrupt a field behind the
/// CRC check.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Asserts `err` is `Corrupt` for the test context and base offset 100, with `needle` in the
/// reason.
#[track_caller]
fn assert_corrupt(err: RecordError, needle: &str) {
    match err {
        RecordError::Corrupt {
            topic,
            partition,
            base_offset,
            reason,
        } => {
            assert_eq!((&*topic, partition, base_offset), ("t", 3, 100));
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("expected Corrupt({needle}), got {other:?}"),
    }
}

/// Checks that decoded records equal the encoded ones, with offsets from `base_offset`.
#[track_caller]
fn assert_same_records(decoded: &[Record], encoded: &[RecordToEncode], base_offset: i64) {
    assert_eq!(decoded.len(), encoded.len());
    for (i, (d, e)) in decoded.iter().zip(encoded).enumerate() {
        assert_eq!(d.offset, base_offset + i as i64, "record {i}");
        assert_eq!(d.timestamp, e.timestamp, "record {i}");
        assert_eq!(d.key, e.key, "record {i}");
        assert_eq!(d.value, e.value, "record {i}");
        assert_eq!(d.headers, e.headers, "record {i}");
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
