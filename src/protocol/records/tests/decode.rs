//! Decoder behaviour on valid, partial and corrupt input.

use super::*;

#[test]
fn every_codec_round_trips_with_absolute_offsets_and_timestamps() {
    let records = sample_records();
    for compression in Compression::ALL {
        let batches = decode_ok(encode(&records, compression));
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.header.compression, compression);
        assert_eq!(batch.header.base_offset, 100);
        assert_eq!(batch.header.last_offset_delta, 2);
        assert_eq!(batch.header.record_count, 3);
        assert_eq!(batch.header.base_timestamp, 1_700_000_000_000);
        assert_eq!(batch.header.max_timestamp, 1_700_000_000_005);
        assert_eq!(batch.header.magic, 2);
        assert_eq!(batch.control, None);
        assert_same_records(&batch.records, &records, 100);
    }
}

#[test]
fn next_offset_follows_the_last_complete_batch() {
    let mut buf = encode(&sample_records(), Compression::None).to_vec();
    let second = encode_batch(
        &sample_records()[..1],
        &EncodeOptions {
            base_offset: 103,
            ..opts(Compression::Gzip)
        },
    )
    .unwrap();
    buf.extend_from_slice(&second);
    let decoded = decode_batches(buf.into(), &ctx()).unwrap();
    assert_eq!(decoded.batches.len(), 2);
    assert_eq!(decoded.batches[1].records[0].offset, 103);
    assert_eq!(decoded.next_offset, Some(104));
    assert_eq!(decoded.truncated_tail_bytes, 0);
}

#[test]
fn empty_input_has_no_batches_and_no_next_offset() {
    let decoded = decode_batches(Bytes::new(), &ctx()).unwrap();
    assert_eq!(decoded, DecodedBatches::default());
}

#[test]
fn log_append_time_gives_every_record_the_max_timestamp() {
    let records = sample_records();
    let batch = encode_batch(
        &records,
        &EncodeOptions {
            timestamp_type: TimestampType::LogAppendTime,
            ..opts(Compression::None)
        },
    )
    .unwrap();
    let batches = decode_ok(batch);
    assert_eq!(
        batches[0].header.timestamp_type,
        TimestampType::LogAppendTime
    );
    for record in &batches[0].records {
        assert_eq!(record.timestamp, 1_700_000_000_005);
    }
}

#[test]
fn producer_fields_and_flags_survive() {
    let batch = encode_batch(
        &sample_records(),
        &EncodeOptions {
            producer_id: 77,
            producer_epoch: 5,
            base_sequence: 1000,
            transactional: true,
            partition_leader_epoch: 9,
            ..opts(Compression::Snappy)
        },
    )
    .unwrap();
    let header = &decode_ok(batch)[0].header;
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (77, 5, 1000)
    );
    assert!(header.is_transactional && !header.is_control && !header.has_delete_horizon);
    assert_eq!(header.partition_leader_epoch, 9);
    assert_eq!(header.attributes(), 0x12); // snappy | transactional
}

#[test]
fn crc_mismatch_names_topic_partition_and_offset() {
    let mut batch = encode(&sample_records(), Compression::None).to_vec();
    let last = batch.len() - 1;
    batch[last] ^= 0x01;
    let err = decode_err(batch.clone());
    let RecordError::CrcMismatch {
        topic,
        partition,
        base_offset,
        expected,
        actual,
    } = &err
    else {
        panic!("expected CrcMismatch, got {err:?}");
    };
    assert_eq!((&**topic, *partition, *base_offset), ("t", 3, 100));
    assert_eq!(
        *expected,
        u32::from_be_bytes(batch[17..21].try_into().unwrap())
    );
    assert_eq!(*actual, crc32c::crc32c(&batch[21..]));
    assert!(err.to_string().contains("t/3 offset 100"), "{err}");
}

#[test]
fn a_partial_batch_at_the_end_is_not_an_error() {
    let first = encode(&sample_records(), Compression::None);
    let second = encode_batch(
        &sample_records(),
        &EncodeOptions {
            base_offset: 103,
            ..opts(Compression::Lz4)
        },
    )
    .unwrap();
    let mut whole = first.to_vec();
    whole.extend_from_slice(&second);
    // Cut anywhere inside the second batch, including inside its offset and length fields.
    for cut in first.len()..whole.len() {
        let decoded = decode_batches(Bytes::copy_from_slice(&whole[..cut]), &ctx()).unwrap();
        assert_eq!(decoded.batches.len(), 1, "cut at {cut}");
        assert_eq!(decoded.next_offset, Some(103));
        assert_eq!(decoded.truncated_tail_bytes, cut - first.len());
    }
    // Cut inside the first batch: nothing complete.
    for cut in 1..first.len() {
        let decoded = decode_batches(Bytes::copy_from_slice(&whole[..cut]), &ctx()).unwrap();
        assert!(decoded.batches.is_empty());
        assert_eq!(decoded.next_offset, None);
        assert_eq!(decoded.truncated_tail_bytes, cut);
    }
}

#[test]
fn batch_decoder_hands_out_good_batches_before_the_corrupt_one() {
    let good = encode(&sample_records(), Compression::None);
    let mut bad = encode_batch(
        &sample_records(),
        &EncodeOptions {
            base_offset: 103,
            ..opts(Compression::None)
        },
    )
    .unwrap()
    .to_vec();
    bad[30] ^= 0xff;
    let mut buf = good.to_vec();
    buf.extend_from_slice(&bad);
    let ctx = ctx();
    let mut decoder = BatchDecoder::new(buf.into(), &ctx);
    assert!(decoder.next().unwrap().is_ok());
    assert_eq!(decoder.next_offset(), Some(103));
    let err = decoder.next().unwrap().unwrap_err();
    assert!(matches!(
        err,
        RecordError::CrcMismatch {
            base_offset: 103,
            ..
        }
    ));
    assert!(decoder.next().is_none());
    // The whole-buffer form reports the error.
    assert!(matches!(
        decode_batches(Bytes::from([good.to_vec(), bad].concat()), &ctx),
        Err(RecordError::CrcMismatch {
            base_offset: 103,
            ..
        })
    ));
}

#[test]
fn batch_length_below_the_header_size_is_corrupt_even_at_the_end() {
    for length in [-1i32, 0, 48] {
        let mut batch = encode(&sample_records(), Compression::None).to_vec();
        batch[8..12].copy_from_slice(&length.to_be_bytes());
        assert_corrupt(decode_err(batch), "below the v2 minimum 49");
    }
    // Only the offset and length present: still corrupt, not a partial batch.
    let mut stub = 100i64.to_be_bytes().to_vec();
    stub.extend_from_slice(&(-5i32).to_be_bytes());
    assert_corrupt(decode_err(stub), "batch length -5");
}

#[test]
fn legacy_message_sets_are_a_typed_error() {
    // A magic v1 message as Kafka 0.10 wrote it: offset, size, crc, magic 1, attributes,
    // timestamp, key (null), value "v".
    let mut msg = 7i64.to_be_bytes().to_vec();
    let body: Vec<u8> = [
        &[0u8; 4][..],                       // crc (not checked: the format is refused first)
        &[1, 0],                             // magic 1, attributes
        &1_700_000_000_000i64.to_be_bytes(), // timestamp
        &(-1i32).to_be_bytes(),              // key: null
        &1i32.to_be_bytes(),                 // value length
        b"v",
    ]
    .concat();
    msg.extend_from_slice(&(body.len() as i32).to_be_bytes());
    msg.extend_from_slice(&body);
    let err = decode_err(msg);
    assert!(
        matches!(&err, RecordError::UnsupportedMagic { topic, partition: 3, base_offset: 7, magic: 1 } if &**topic == "t"),
        "{err:?}"
    );
    // Magic 0 and an unknown future magic on a full-size batch.
    for magic in [0i8, 3] {
        let mut batch = encode(&sample_records(), Compression::None).to_vec();
        batch[16] = magic as u8;
        assert!(matches!(
            decode_err(batch),
            RecordError::UnsupportedMagic { base_offset: 100, magic: m, .. } if m == magic
        ));
    }
}

/// A one-record uncompressed batch whose record section is replaced by `record` (with its length
/// prefix written here), CRC fixed.
fn batch_with_raw_record(record_body: &[u8]) -> Vec<u8> {
    let mut batch = encode(&sample_records()[..1], Compression::None).to_vec();
    batch.truncate(RECORD_BATCH_OVERHEAD);
    let mut len = Vec::new();
    super::super::wire::put_varint(&mut len, record_body.len() as i32);
    batch.extend_from_slice(&len);
    batch.extend_from_slice(record_body);
    let batch_length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    fix_crc(&mut batch);
    batch
}

#[test]
fn absurd_and_negative_record_counts_are_corrupt() {
    for (count, needle) in [
        (i32::MAX, "record count 2147483647 cannot fit"),
        (1000, "record count 1000 cannot fit"),
        (-1, "negative record count -1"),
    ] {
        let mut batch = encode(&sample_records(), Compression::None).to_vec();
        batch[57..61].copy_from_slice(&count.to_be_bytes());
        fix_crc(&mut batch);
        assert_corrupt(decode_err(batch), needle);
    }
    // Compressed: rejected against the decompression limit before inflating.
    let mut batch = encode(&sample_records(), Compression::Zstd).to_vec();
    batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    fix_crc(&mut batch);
    assert_corrupt(decode_err(batch), "decompression limit");
    // Compressed, plausible for the limit but not for the inflated bytes.
    let mut batch = encode(&sample_records(), Compression::Gzip).to_vec();
    batch[57..61].copy_from_slice(&1000i32.to_be_bytes());
    fix_crc(&mut batch);
    assert_corrupt(decode_err(batch), "record count 1000 cannot fit");
}

#[test]
fn fewer_records_than_counted_or_bytes_after_the_last_are_corrupt() {
    let mut batch = encode(&sample_records(), Compression::None).to_vec();
    batch[57..61].copy_from_slice(&2i32.to_be_bytes());
    fix_crc(&mut batch);
    assert_corrupt(decode_err(batch), "bytes follow the last of 2 records");
    let mut batch = encode(&sample_records(), Compression::None).to_vec();
    batch[57..61].copy_from_slice(&4i32.to_be_bytes());
    fix_crc(&mut batch);
    assert_corrupt(decode_err(batch), "record 3 of 4");
}

#[test]
fn negative_lengths_other_than_null_are_corrupt() {
    // attributes, timestamp delta 0, offset delta 0, key length -2 (zigzag 3)
    assert_corrupt(
        decode_err(batch_with_raw_record(&[0, 0, 0, 3, 1, 0])),
        "key has negative length -2",
    );
    // key null, value length -7 (zigzag 13)
    assert_corrupt(
        decode_err(batch_with_raw_record(&[0, 0, 0, 1, 13, 0])),
        "value has negative length -7",
    );
    // key, value null; header count -1
    assert_corrupt(
        decode_err(batch_with_raw_record(&[0, 0, 0, 1, 1, 1])),
        "header count -1",
    );
    // one header with a null key
    assert_corrupt(
        decode_err(batch_with_raw_record(&[0, 0, 0, 1, 1, 2, 1, 1])),
        "header key is null",
    );
    // one header, value length -3 (zigzag 5)
    assert_corrupt(
        decode_err(batch_with_raw_record(&[0, 0, 0, 1, 1, 2, 2, b'h', 5])),
        "header value has negative length -3",
    );
    // The record's own length, negative: -2 (zigzag 3) where the body starts.
    let mut batch = batch_with_raw_record(&[0, 0, 0, 1, 1, 0]);
    batch[RECORD_BATCH_OVERHEAD] = 3;
    fix_crc(&mut batch);
    assert_corrupt(decode_err(batch), "record length -2 does not fit");
}

#[test]
fn lengths_past_the_record_and_records_with_leftovers_are_corrupt() {
    // key length 100 in a 6-byte record
    assert_corrupt(
        decode_err(batch_with_raw_record(&[0, 0, 0, 200, 1, 1, 0])),
        "key length 100 exceeds",
    );
    // header count 1000 in a tiny record
    assert_corrupt(
        decode_err(batch_with_raw_record(&[0, 0, 0, 1, 1, 0xd0, 0x0f])),
        "header count 1000",
    );
    // a valid record followed by a stray byte inside its declared length
    assert_corrupt(
        decode_err(batch_with_raw_record(&[0, 0, 0, 1, 1, 0, 9])),
        "leaves 1 bytes unread",
    );
    // a varint that never ends
    assert_corrupt(
        decode_err(batch_with_raw_record(&[
            0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1,
        ])),
        "varint longer than 10 bytes",
    );
    // sanity: the same helper makes valid records
    let ok = decode_ok(batch_with_raw_record(&[0, 0, 0, 1, 1, 0]).into());
    assert_eq!(ok[0].records[0].key, None);
    assert_eq!(ok[0].records[0].offset, 100);
}

#[test]
fn unknown_attribute_bits_and_codecs_are_typed_errors() {
    let mut batch = encode(&sample_records(), Compression::None).to_vec();
    batch[21..23].copy_from_slice(&0x0080i16.to_be_bytes());
    fix_crc(&mut batch);
    assert!(matches!(
        decode_err(batch),
        RecordError::UnknownAttributes {
            attributes: 0x80,
            base_offset: 100,
            ..
        }
    ));
    for codec in 5u8..=7 {
        let mut batch = encode(&sample_records(), Compression::None).to_vec();
        batch[22] = codec;
        fix_crc(&mut batch);
        assert!(matches!(
            decode_err(batch),
            RecordError::UnsupportedCompression { codec: c, base_offset: 100, .. } if c == codec
        ));
    }
}

#[test]
fn corrupt_compressed_sections_are_decompress_errors() {
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut batch = encode(&sample_records(), compression).to_vec();
        let last = batch.len() - 1;
        batch.truncate(last - 3); // cut the compressed stream short
        let batch_length = (batch.len() - 12) as i32;
        batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
        fix_crc(&mut batch);
        let err = decode_err(batch);
        assert!(
            matches!(&err, RecordError::Decompress { compression: c, base_offset: 100, .. } if *c == compression),
            "{compression}: {err:?}"
        );
    }
}

#[test]
fn decompression_is_bounded_by_the_context_limit() {
    let big = vec![RecordToEncode {
        timestamp: 0,
        key: None,
        value: Some(vec![0u8; 100_000].into()),
        headers: vec![],
    }];
    let limit = 10_000;
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = encode(&big, compression);
        assert!(batch.len() < limit, "{compression} compresses zeros");
        let err = decode_batches(batch.clone(), &ctx().with_max_decompressed(limit)).unwrap_err();
        assert!(
            matches!(err, RecordError::DecompressedTooLarge { compression: c, limit: l, .. } if c == compression && l == limit),
            "{compression}: {err:?}"
        );
        // The default limit lets it through.
        assert_eq!(
            decode_ok(batch)[0].records[0].value.as_ref().unwrap().len(),
            100_000
        );
    }
}

#[test]
fn a_zstd_bomb_stops_at_the_default_limit() {
    // 600 RLE blocks of 128 KiB: a 2.4 KB frame that inflates to 75 MiB.
    let frame = super::codec::zstd_rle_frame(600);
    assert!(frame.len() < 3000);
    let mut batch = encode(&sample_records()[..1], Compression::Zstd).to_vec();
    batch.truncate(RECORD_BATCH_OVERHEAD);
    batch.extend_from_slice(&frame);
    let batch_length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    fix_crc(&mut batch);
    let err = decode_err(batch);
    assert!(
        matches!(
            err,
            RecordError::DecompressedTooLarge {
                compression: Compression::Zstd,
                limit: DEFAULT_MAX_DECOMPRESSED,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn uncompressed_payloads_are_slices_of_the_input() {
    let buf = encode(&sample_records(), Compression::None);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let batches = decode_batches(buf.clone(), &ctx()).unwrap().batches;
    let mut checked = 0;
    for record in &batches[0].records {
        let headers = record.headers.iter().filter_map(|h| h.value.as_ref());
        for payload in record.key.iter().chain(&record.value).chain(headers) {
            let start = payload.as_ptr() as usize;
            assert!(
                range.contains(&start) || payload.is_empty(),
                "payload copied"
            );
            assert!(start + payload.len() <= range.end);
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

#[test]
fn invalid_utf8_header_keys_are_replaced_not_rejected() {
    // one header: key 0xff (1 byte), value null
    let batches = decode_ok(batch_with_raw_record(&[0, 0, 0, 1, 1, 2, 2, 0xff, 1]).into());
    assert_eq!(batches[0].records[0].headers[0].key, "\u{fffd}");
}
