//! Encoder layout and the batch sizer.

use super::*;

#[test]
fn an_empty_batch_is_refused() {
    assert_eq!(
        encode_batch(&[], &EncodeOptions::default()),
        Err(RecordError::EmptyBatch)
    );
}

#[test]
fn header_fields_are_laid_out_as_java_does() {
    let batch = encode_batch(
        &sample_records(),
        &EncodeOptions {
            base_offset: 5,
            compression: Compression::Gzip,
            producer_id: 9,
            producer_epoch: 2,
            base_sequence: 40,
            transactional: true,
            partition_leader_epoch: -1,
            timestamp_type: TimestampType::CreateTime,
        },
    )
    .unwrap();
    let i16_at = |at: usize| i16::from_be_bytes(batch[at..at + 2].try_into().unwrap());
    let i32_at = |at: usize| i32::from_be_bytes(batch[at..at + 4].try_into().unwrap());
    let i64_at = |at: usize| i64::from_be_bytes(batch[at..at + 8].try_into().unwrap());
    assert_eq!(i64_at(0), 5); // base offset
    assert_eq!(i32_at(8) as usize, batch.len() - 12); // batch length
    assert_eq!(i32_at(12), -1); // partition leader epoch
    assert_eq!(batch[16], 2); // magic
    assert_eq!(i32_at(17) as u32, crc32c::crc32c(&batch[21..]));
    assert_eq!(i16_at(21), 0x11); // gzip | transactional
    assert_eq!(i32_at(23), 2); // last offset delta
    assert_eq!(i64_at(27), 1_700_000_000_000); // base timestamp: the first record's
    assert_eq!(i64_at(35), 1_700_000_000_005); // max timestamp
    assert_eq!(i64_at(43), 9);
    assert_eq!(i16_at(51), 2);
    assert_eq!(i32_at(53), 40);
    assert_eq!(i32_at(57), 3); // record count
    assert_eq!(batch[61..63], [0x1f, 0x8b]); // the gzip stream starts after the count
}

#[test]
fn the_sizer_predicts_the_uncompressed_size_exactly() {
    let records = sample_records();
    let mut sizer = BatchSizer::new();
    assert_eq!(sizer.size(), RECORD_BATCH_OVERHEAD);
    assert!(sizer.is_empty());
    for (i, record) in records.iter().enumerate() {
        let predicted = sizer.size_with(record);
        assert_eq!(sizer.push(record), predicted);
        let encoded = encode(&records[..=i], Compression::None);
        assert_eq!(sizer.size(), encoded.len(), "after {} records", i + 1);
    }
    assert_eq!(sizer.len(), 3);
    assert_eq!(estimated_size(&records), sizer.size());
}

#[test]
fn records_far_apart_in_time_get_long_deltas() {
    let records = [
        RecordToEncode {
            timestamp: i64::MIN,
            ..RecordToEncode::default()
        },
        RecordToEncode {
            timestamp: i64::MAX,
            ..RecordToEncode::default()
        },
    ];
    let batch = encode(&records, Compression::None);
    assert_eq!(batch.len(), estimated_size(&records));
    let decoded = decode_ok(batch);
    assert_eq!(decoded[0].records[0].timestamp, i64::MIN);
    assert_eq!(decoded[0].records[1].timestamp, i64::MAX);
}
