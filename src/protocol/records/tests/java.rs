//! Batches written by the Java client (`java_vectors.txt`): they decode to what was written, and
//! the encoder reproduces the uncompressed and control batches byte for byte.

use super::*;

const VECTORS: &str = include_str!("java_vectors.txt");

fn vector(name: &str) -> Bytes {
    let line = VECTORS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no vector {name}"));
    hex(line).into()
}

/// The producer fields the Java vectors were written with.
fn java_opts(base_offset: i64, compression: Compression) -> EncodeOptions {
    EncodeOptions {
        base_offset,
        compression,
        producer_id: 4242,
        producer_epoch: 3,
        base_sequence: 17,
        ..EncodeOptions::default()
    }
}

fn big_records() -> Vec<RecordToEncode> {
    let value: Vec<u8> = (0..200_000)
        .map(|i| ((i * 7 + i / 1000) % 251) as u8)
        .collect();
    vec![
        RecordToEncode {
            timestamp: 1_700_000_000_000,
            key: bytes("big"),
            value: Some(value.into()),
            headers: vec![],
        },
        RecordToEncode {
            timestamp: 1_700_000_000_001,
            key: bytes("small"),
            value: bytes("x"),
            headers: vec![],
        },
    ]
}

#[test]
fn java_batches_decode_for_every_codec() {
    for compression in Compression::ALL {
        let name = format!("small_{compression}");
        let batches = decode_ok(vector(&name));
        assert_eq!(batches.len(), 1, "{name}");
        let header = &batches[0].header;
        assert_eq!(header.compression, compression, "{name}");
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (4242, 3, 17),
            "{name}"
        );
        assert_eq!(header.max_timestamp, 1_700_000_000_005);
        assert_same_records(&batches[0].records, &sample_records(), 100);

        if compression != Compression::None {
            let name = format!("big_{compression}");
            let batches = decode_ok(vector(&name));
            assert_same_records(&batches[0].records, &big_records(), 0);
        }
    }
}

#[test]
fn uncompressed_encoding_matches_java_byte_for_byte() {
    let ours = encode_batch(&sample_records(), &java_opts(100, Compression::None)).unwrap();
    assert_eq!(ours, vector("small_none"));
}

#[test]
fn compressed_encodings_differ_from_java_only_inside_the_compressed_section() {
    // Java and this crate use different compressor implementations, so compare what they
    // compress: the decoded batches are equal, and so are the header fields outside the length
    // and CRC.
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let java = vector(&format!("big_{compression}"));
        let ours = encode_batch(&big_records(), &java_opts(0, compression)).unwrap();
        let (mut java_batch, mut our_batch) = (decode_ok(java.clone()), decode_ok(ours.clone()));
        for batch in [&mut java_batch[0], &mut our_batch[0]] {
            batch.header.batch_length = 0;
            batch.header.crc = 0;
        }
        assert_eq!(java_batch, our_batch, "{compression}");
        assert_eq!(
            java[21..61],
            ours[21..61],
            "{compression}: header after the CRC"
        );
    }
}

#[test]
fn java_transaction_markers_decode_and_reencode_identically() {
    for (name, commit, offset, timestamp, epoch) in [
        ("control_commit", true, 500, 1_700_000_000_000, 11),
        ("control_abort", false, 501, 1_700_000_000_001, 12),
    ] {
        let java = vector(name);
        let decoded = decode_batches(java.clone(), &ctx()).unwrap();
        let batch = &decoded.batches[0];
        assert!(batch.records.is_empty());
        assert!(batch.header.is_control && batch.header.is_transactional);
        assert_eq!(batch.header.producer_id, 4242);
        assert_eq!(batch.control, Some(ControlRecord::marker(commit, epoch)));
        assert_eq!(decoded.next_offset, Some(offset + 1));

        let ours = encode_control_batch(
            &ControlRecord::marker(commit, epoch),
            timestamp,
            &EncodeOptions {
                base_offset: offset,
                partition_leader_epoch: 7,
                ..java_opts(offset, Compression::None)
            },
        )
        .unwrap();
        assert_eq!(ours, java, "{name}");
    }
}
