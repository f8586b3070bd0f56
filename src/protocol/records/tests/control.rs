//! Control batches: transaction markers and the other control record types.

use super::*;

#[test]
fn control_batches_yield_markers_not_records() {
    let commit = encode_control_batch(
        &ControlRecord::marker(true, 11),
        1_700_000_000_000,
        &EncodeOptions {
            base_offset: 500,
            producer_id: 4242,
            producer_epoch: 3,
            ..EncodeOptions::default()
        },
    )
    .unwrap();
    let mut buf = encode(&sample_records(), Compression::None).to_vec();
    buf.extend_from_slice(&commit);
    let decoded = decode_batches(buf.into(), &ctx()).unwrap();
    let marker = &decoded.batches[1];
    assert!(marker.records.is_empty());
    assert!(marker.header.is_control && marker.header.is_transactional);
    assert_eq!(marker.header.producer_id, 4242);
    assert_eq!(marker.header.base_sequence, -1);
    assert_eq!(
        marker.control,
        Some(ControlRecord {
            kind: ControlKind::Commit,
            version: 0,
            value_version: 0,
            coordinator_epoch: 11
        })
    );
    assert_eq!(decoded.next_offset, Some(501));

    let abort = encode_control_batch(
        &ControlRecord::marker(false, 2),
        0,
        &EncodeOptions::default(),
    )
    .unwrap();
    assert_eq!(
        decode_ok(abort)[0].control.unwrap().kind,
        ControlKind::Abort
    );
}

#[test]
fn unknown_control_types_and_emptied_control_batches_are_kept_apart() {
    let leader_change = ControlRecord {
        kind: ControlKind::Unknown(2),
        version: 0,
        value_version: 0,
        coordinator_epoch: 0,
    };
    let batch = encode_control_batch(&leader_change, 0, &EncodeOptions::default()).unwrap();
    let control = decode_ok(batch)[0].control.unwrap();
    assert_eq!(control.kind, ControlKind::Unknown(2));
    assert!(!control.kind.is_transaction_marker());
    assert_eq!(control.coordinator_epoch, -1);

    // Compaction can leave a control batch with no record: offsets still advance.
    let mut batch = encode_control_batch(
        &ControlRecord::marker(true, 1),
        0,
        &EncodeOptions::default(),
    )
    .unwrap()
    .to_vec();
    batch.truncate(RECORD_BATCH_OVERHEAD);
    batch[8..12].copy_from_slice(&49i32.to_be_bytes());
    batch[57..61].copy_from_slice(&0i32.to_be_bytes());
    fix_crc(&mut batch);
    let decoded = decode_batches(batch.into(), &ctx()).unwrap();
    assert_eq!(decoded.batches[0].control, None);
    assert_eq!(decoded.next_offset, Some(1));
}

#[test]
fn malformed_control_records_are_corrupt() {
    let mut short_key = encode_batch(
        &[RecordToEncode {
            timestamp: 0,
            key: Some(Bytes::from_static(&[0, 0, 0])),
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 1])),
            headers: vec![],
        }],
        &opts(Compression::None),
    )
    .unwrap()
    .to_vec();
    short_key[22] |= 0x30; // control + transactional
    fix_crc(&mut short_key);
    assert_corrupt(decode_err(short_key), "control record key has 3 bytes");

    let mut short_value = encode_batch(
        &[RecordToEncode {
            timestamp: 0,
            key: Some(Bytes::from_static(&[0, 0, 0, 1])),
            value: None,
            headers: vec![],
        }],
        &opts(Compression::None),
    )
    .unwrap()
    .to_vec();
    short_value[22] |= 0x30;
    fix_crc(&mut short_value);
    assert_corrupt(
        decode_err(short_value),
        "transaction marker value has 0 bytes",
    );
}
