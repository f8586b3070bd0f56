//! Properties: encode then decode is the identity for every codec, the sizer is exact, and the
//! decoder never panics, on arbitrary bytes or on mutations of valid batches.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

fn payload(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::weighted(0.8, vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn header() -> impl Strategy<Value = Header> {
    (".{0,8}", payload(16)).prop_map(|(key, value)| Header { key, value })
}

fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 1_600_000_000_000i64..1_800_000_000_000,
        1 => any::<i64>(),
        1 => Just(-1i64),
    ]
}

fn record() -> impl Strategy<Value = RecordToEncode> {
    (timestamp(), payload(48), payload(200), vec(header(), 0..4)).prop_map(
        |(timestamp, key, value, headers)| RecordToEncode {
            timestamp,
            key,
            value,
            headers,
        },
    )
}

fn compression() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

fn options() -> impl Strategy<Value = EncodeOptions> {
    (
        0i64..i64::MAX / 2,
        compression(),
        prop_oneof![Just(-1i64), 0i64..1 << 40],
        any::<i16>(),
        any::<i32>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                base_offset,
                compression,
                producer_id,
                producer_epoch,
                base_sequence,
                transactional,
                log_append,
            )| {
                EncodeOptions {
                    base_offset,
                    compression,
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    transactional,
                    partition_leader_epoch: -1,
                    timestamp_type: if log_append {
                        TimestampType::LogAppendTime
                    } else {
                        TimestampType::CreateTime
                    },
                }
            },
        )
}

/// A valid buffer: one to three batches with arbitrary records and options.
fn valid_buffer() -> impl Strategy<Value = Vec<u8>> {
    vec((vec(record(), 1..6), options()), 1..3).prop_map(|batches| {
        batches
            .iter()
            .flat_map(|(records, opts)| encode_batch(records, opts).unwrap().to_vec())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn encode_then_decode_is_the_identity(records in vec(record(), 1..20), opts in options()) {
        let batch = encode_batch(&records, &opts).unwrap();
        if opts.compression == Compression::None {
            prop_assert_eq!(batch.len(), estimated_size(&records));
        }
        let decoded = decode_batches(batch, &ctx()).unwrap();
        prop_assert_eq!(decoded.truncated_tail_bytes, 0);
        prop_assert_eq!(decoded.next_offset, Some(opts.base_offset + records.len() as i64));
        let batch = &decoded.batches[0];
        let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap();
        prop_assert_eq!(batch.header.max_timestamp, max_timestamp);
        prop_assert_eq!(batch.header.compression, opts.compression);
        prop_assert_eq!(batch.header.producer_id, opts.producer_id);
        prop_assert_eq!(batch.header.producer_epoch, opts.producer_epoch);
        prop_assert_eq!(batch.header.base_sequence, opts.base_sequence);
        prop_assert_eq!(batch.header.is_transactional, opts.transactional);
        prop_assert_eq!(batch.records.len(), records.len());
        for (i, (d, e)) in batch.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(d.offset, opts.base_offset + i as i64);
            let timestamp = match opts.timestamp_type {
                TimestampType::CreateTime => e.timestamp,
                TimestampType::LogAppendTime => max_timestamp,
            };
            prop_assert_eq!(d.timestamp, timestamp);
            prop_assert_eq!(&d.key, &e.key);
            prop_assert_eq!(&d.value, &e.value);
            prop_assert_eq!(&d.headers, &e.headers);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(buf in vec(any::<u8>(), 0..600)) {
        let _ = decode_batches(buf.into(), &ctx());
    }

    #[test]
    fn decoding_mutated_batches_never_panics(
        buf in valid_buffer(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        fix in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut buf = buf;
        for (at, byte) in &edits {
            let at = at.index(buf.len());
            buf[at] = *byte;
        }
        if fix && buf.len() >= RECORD_BATCH_OVERHEAD {
            // Reach past the CRC check: make the first batch's CRC match its (mutated) bytes.
            let len = i32::from_be_bytes(buf[8..12].try_into().unwrap());
            if let Ok(len) = usize::try_from(len) && len >= 9 && 12 + len <= buf.len() {
                fix_crc(&mut buf[..12 + len]);
            }
        }
        if truncate {
            let cut = cut.index(buf.len() + 1);
            buf.truncate(cut);
        }
        let limit = ctx().with_max_decompressed(1 << 16);
        let _ = decode_batches(buf.into(), &limit);
    }

    #[test]
    fn a_cut_batch_is_a_tail_never_an_error(buf in valid_buffer(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(buf.len());
        let decoded = decode_batches(Bytes::copy_from_slice(&buf[..cut]), &ctx()).unwrap();
        let used: usize = decoded.batches.iter().map(|b| 12 + b.header.batch_length as usize).sum();
        prop_assert_eq!(used + decoded.truncated_tail_bytes, cut);
        prop_assert_eq!(decoded.next_offset, decoded.batches.last().map(|b| b.header.next_offset()));
    }
}
