//! Decoding the `records` field of a Fetch response partition: a sequence of v2 batches,
//! possibly ending in a partial one.

use std::sync::Arc;

use bytes::Bytes;

use super::codec::{self, CodecError};
use super::types::KNOWN_ATTRIBUTES;
use super::wire::{Reader, WireResult};
use super::{
    BatchHeader, Compression, ControlKind, ControlRecord, Header, Record, RecordBatch, RecordError,
    TimestampType,
};

/// `baseOffset` and `batchLength`: the part of every batch (and legacy message) that precedes
/// the bytes `batchLength` counts.
pub const LOG_OVERHEAD: usize = 12;
/// Size of a v2 batch header, up to and including `recordCount`; the records follow.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// Smallest `batchLength` of a v2 batch: the header after `batchLength`.
const MIN_BATCH_LENGTH: usize = RECORD_BATCH_OVERHEAD - LOG_OVERHEAD;
/// Offset of the magic byte, the same in v2 batches and legacy message sets.
const MAGIC_OFFSET: usize = 16;
/// Offset of the CRC in a v2 batch.
const CRC_OFFSET: usize = 17;
/// The CRC covers the batch from `attributes` to its end.
const ATTRIBUTES_OFFSET: usize = 21;
/// The smallest possible record: a length varint and six one-byte fields (attributes, timestamp
/// delta, offset delta, key length, value length, header count).
const MIN_RECORD_SIZE: usize = 7;
/// The smallest possible header: key length and value length varints.
const MIN_HEADER_SIZE: usize = 2;
/// Default for [`BatchContext::max_decompressed`]: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 << 20;

/// Where the bytes being decoded come from, and the limits that apply to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchContext {
    /// The topic, named in every error.
    pub topic: Arc<str>,
    /// The partition, named in every error.
    pub partition: i32,
    /// Largest records section one compressed batch may inflate to; larger gives
    /// [`RecordError::DecompressedTooLarge`]. Default [`DEFAULT_MAX_DECOMPRESSED`] (64 MiB); a
    /// consumer may derive it from its fetch size (say ten times `fetch.max.bytes`).
    pub max_decompressed: usize,
}

impl BatchContext {
    /// A context with the default decompression limit.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
        }
    }

    /// Sets [`max_decompressed`](Self::max_decompressed).
    pub fn with_max_decompressed(mut self, max_decompressed: usize) -> Self {
        self.max_decompressed = max_decompressed;
        self
    }

    fn corrupt(&self, base_offset: i64, reason: impl Into<String>) -> RecordError {
        RecordError::Corrupt {
            topic: self.topic.clone(),
            partition: self.partition,
            base_offset,
            reason: reason.into(),
        }
    }
}

/// The batches of one partition's `records` field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecodedBatches {
    /// The complete batches, in order.
    pub batches: Vec<RecordBatch>,
    /// The offset after the last complete batch (`base_offset + last_offset_delta + 1`): where
    /// the next fetch starts. `None` when no batch was complete.
    pub next_offset: Option<i64>,
    /// Bytes of a partial batch at the end, which Kafka sends when a fetch's byte limit cuts a
    /// batch. Not an error: fetch again from `next_offset` (with a larger limit if no batch was
    /// complete).
    pub truncated_tail_bytes: usize,
}

/// Decodes every complete batch in `buf`, the `records` of one Fetch response partition.
///
/// A partial batch at the end is reported in [`DecodedBatches::truncated_tail_bytes`]. Any
/// complete batch that fails a check is an error, even when batches before it were fine; use
/// [`BatchDecoder`] to hand those out first.
pub fn decode_batches(buf: Bytes, ctx: &BatchContext) -> Result<DecodedBatches, RecordError> {
    let mut decoder = BatchDecoder::new(buf, ctx);
    let mut batches = Vec::new();
    for batch in &mut decoder {
        batches.push(batch?);
    }
    Ok(DecodedBatches {
        batches,
        next_offset: decoder.next_offset(),
        truncated_tail_bytes: decoder.remaining_bytes(),
    })
}

/// Decodes the batches of one partition's `records` one at a time, so a consumer can deliver
/// the good batches that precede a corrupt one before reporting it.
///
/// The iterator ends after the last complete batch, or after the first error.
#[derive(Debug)]
pub struct BatchDecoder<'a> {
    buf: Bytes,
    pos: usize,
    ctx: &'a BatchContext,
    next_offset: Option<i64>,
    done: bool,
}

impl<'a> BatchDecoder<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: Bytes, ctx: &'a BatchContext) -> Self {
        Self {
            buf,
            pos: 0,
            ctx,
            next_offset: None,
            done: false,
        }
    }

    /// The offset after the last batch returned so far; `None` before the first.
    pub fn next_offset(&self) -> Option<i64> {
        self.next_offset
    }

    /// Bytes not yet decoded. Once the iterator has ended without an error, this is the size of
    /// the partial batch at the end (0 if there is none).
    pub fn remaining_bytes(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn decode_next(&mut self) -> Result<Option<RecordBatch>, RecordError> {
        let buf = &self.buf;
        let rest = &buf[self.pos..];
        let (Some(offset_bytes), Some(length_bytes)) = (rest.get(0..8), rest.get(8..12)) else {
            return Ok(None);
        };
        let base_offset = i64::from_be_bytes(offset_bytes.try_into().expect("8 bytes"));
        let batch_length = i32::from_be_bytes(length_bytes.try_into().expect("4 bytes"));
        let magic = rest.get(MAGIC_OFFSET).map(|&m| m as i8);
        let unsupported_magic = |magic: i8| RecordError::UnsupportedMagic {
            topic: self.ctx.topic.clone(),
            partition: self.ctx.partition,
            base_offset,
            magic,
        };
        // Checked before the partial-tail test, as the Java client does: a length below the
        // minimum is corruption, not a batch still to come.
        let length = match usize::try_from(batch_length) {
            Ok(len) if len >= MIN_BATCH_LENGTH => len,
            _ => {
                return Err(match magic {
                    Some(m) if m != 2 => unsupported_magic(m),
                    _ => self.ctx.corrupt(
                        base_offset,
                        format!(
                            "batch length {batch_length} is below the v2 minimum {MIN_BATCH_LENGTH}"
                        ),
                    ),
                });
            }
        };
        let total = LOG_OVERHEAD + length;
        if total > rest.len() {
            return Ok(None); // a partial batch: normal at the end of a fetch
        }
        let magic = rest[MAGIC_OFFSET] as i8;
        if magic != 2 {
            // Magic 0 and 1 are legacy message sets, which Kafka 4 brokers no longer store
            // (KIP-724); see the module docs.
            return Err(unsupported_magic(magic));
        }
        let start = self.pos;
        let end = start + total;
        let batch = decode_batch(buf, start, end, self.ctx)?;
        self.pos = end;
        self.next_offset = Some(batch.header.next_offset());
        Ok(Some(batch))
    }
}

impl Iterator for BatchDecoder<'_> {
    type Item = Result<RecordBatch, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.decode_next().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

impl std::iter::FusedIterator for BatchDecoder<'_> {}

/// Decodes the complete v2 batch at `buf[start..end]`, whose length and magic are checked.
fn decode_batch(
    buf: &Bytes,
    start: usize,
    end: usize,
    ctx: &BatchContext,
) -> Result<RecordBatch, RecordError> {
    let batch = &buf[start..end];
    let base_offset = i64::from_be_bytes(batch[0..8].try_into().expect("8 bytes"));
    let expected = u32::from_be_bytes(
        batch[CRC_OFFSET..CRC_OFFSET + 4]
            .try_into()
            .expect("4 bytes"),
    );
    // "The CRC covers the data from the attributes to the end of the batch" (protocol guide).
    let actual = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    if expected != actual {
        return Err(RecordError::CrcMismatch {
            topic: ctx.topic.clone(),
            partition: ctx.partition,
            base_offset,
            expected,
            actual,
        });
    }
    let (mut header, attributes) =
        read_header(buf, start, end).map_err(|e| ctx.corrupt(base_offset, e))?;
    if attributes & !KNOWN_ATTRIBUTES != 0 {
        return Err(RecordError::UnknownAttributes {
            topic: ctx.topic.clone(),
            partition: ctx.partition,
            base_offset,
            attributes,
        });
    }
    header.compression = Compression::from_attributes(attributes).ok_or_else(|| {
        RecordError::UnsupportedCompression {
            topic: ctx.topic.clone(),
            partition: ctx.partition,
            base_offset,
            codec: (attributes & super::types::COMPRESSION_MASK) as u8,
        }
    })?;
    let count = usize::try_from(header.record_count).map_err(|_| {
        ctx.corrupt(
            base_offset,
            format!("negative record count {}", header.record_count),
        )
    })?;
    let section_start = start + RECORD_BATCH_OVERHEAD;
    let records = if header.compression == Compression::None {
        read_records(buf, section_start, end, count, &header, ctx)?
    } else if count == 0 && section_start == end {
        Vec::new()
    } else {
        // Checked before inflating anything: the records cannot take less than this.
        if count > ctx.max_decompressed / MIN_RECORD_SIZE {
            return Err(ctx.corrupt(
                base_offset,
                format!(
                    "record count {count} cannot fit the {} byte decompression limit",
                    ctx.max_decompressed
                ),
            ));
        }
        let inflated = codec::decompress(
            header.compression,
            &buf[section_start..end],
            ctx.max_decompressed,
        )
        .map_err(|e| match e {
            CodecError::TooLarge => RecordError::DecompressedTooLarge {
                topic: ctx.topic.clone(),
                partition: ctx.partition,
                base_offset,
                compression: header.compression,
                limit: ctx.max_decompressed,
            },
            CodecError::Invalid(reason) => RecordError::Decompress {
                topic: ctx.topic.clone(),
                partition: ctx.partition,
                base_offset,
                compression: header.compression,
                reason,
            },
        })?;
        let inflated = Bytes::from(inflated);
        read_records(&inflated, 0, inflated.len(), count, &header, ctx)?
    };
    if header.is_control {
        // A control batch holds one control record; like the Java consumer, read the first.
        let control = match records.first() {
            Some(record) => Some(parse_control(record).map_err(|e| ctx.corrupt(base_offset, e))?),
            None => None,
        };
        return Ok(RecordBatch {
            header,
            records: Vec::new(),
            control,
        });
    }
    Ok(RecordBatch {
        header,
        records,
        control: None,
    })
}

/// Reads the fixed header; returns it (compression still unset) and the raw attributes.
fn read_header(buf: &Bytes, start: usize, end: usize) -> WireResult<(BatchHeader, i16)> {
    let mut r = Reader::new(buf, start, end);
    let base_offset = r.i64("baseOffset")?;
    let batch_length = r.i32("batchLength")?;
    let partition_leader_epoch = r.i32("partitionLeaderEpoch")?;
    let magic = r.i8("magic")?;
    let crc = r.i32("crc")? as u32;
    let attributes = r.i16("attributes")?;
    let header = BatchHeader {
        base_offset,
        batch_length,
        partition_leader_epoch,
        magic,
        crc,
        compression: Compression::None,
        timestamp_type: TimestampType::from_attributes(attributes),
        is_transactional: attributes & super::types::TRANSACTIONAL_BIT != 0,
        is_control: attributes & super::types::CONTROL_BIT != 0,
        has_delete_horizon: attributes & super::types::DELETE_HORIZON_BIT != 0,
        last_offset_delta: r.i32("lastOffsetDelta")?,
        base_timestamp: r.i64("baseTimestamp")?,
        max_timestamp: r.i64("maxTimestamp")?,
        producer_id: r.i64("producerId")?,
        producer_epoch: r.i16("producerEpoch")?,
        base_sequence: r.i32("baseSequence")?,
        record_count: r.i32("recordCount")?,
    };
    debug_assert_eq!(r.position(), start + RECORD_BATCH_OVERHEAD);
    Ok((header, attributes))
}

/// Reads exactly `count` records filling `buf[start..end]`.
fn read_records(
    buf: &Bytes,
    start: usize,
    end: usize,
    count: usize,
    header: &BatchHeader,
    ctx: &BatchContext,
) -> Result<Vec<Record>, RecordError> {
    let base_offset = header.base_offset;
    let mut r = Reader::new(buf, start, end);
    // Checked before allocating: every record takes at least MIN_RECORD_SIZE bytes.
    if count > r.remaining() / MIN_RECORD_SIZE {
        return Err(ctx.corrupt(
            base_offset,
            format!(
                "record count {count} cannot fit in {} bytes of records",
                r.remaining()
            ),
        ));
    }
    let mut records = Vec::with_capacity(count);
    for i in 0..count {
        let record = read_record(&mut r, header)
            .map_err(|e| ctx.corrupt(base_offset, format!("record {i} of {count}: {e}")))?;
        records.push(record);
    }
    if r.remaining() != 0 {
        return Err(ctx.corrupt(
            base_offset,
            format!("{} bytes follow the last of {count} records", r.remaining()),
        ));
    }
    Ok(records)
}

/// One record (protocol guide, "Record"):
///
/// ```text
/// length: varint, attributes: int8, timestampDelta: varlong, offsetDelta: varint,
/// keyLength: varint, key: byte[], valueLen: varint, value: byte[], headers: [Header]
/// Header: headerKeyLength: varint, headerKey: String, headerValueLength: varint, value: byte[]
/// ```
fn read_record(r: &mut Reader<'_>, header: &BatchHeader) -> WireResult<Record> {
    let length = r.varint("record length")?;
    let length = usize::try_from(length)
        .ok()
        .filter(|&len| len <= r.remaining())
        .ok_or_else(|| {
            format!(
                "record length {length} does not fit the {} remaining bytes",
                r.remaining()
            )
        })?;
    let mut body = r.split(length);
    let _attributes = body.i8("record attributes")?; // unused by every Kafka version
    let timestamp_delta = body.varlong("timestampDelta")?;
    let offset_delta = body.varint("offsetDelta")?;
    let key = body.nullable_bytes("key")?;
    let value = body.nullable_bytes("value")?;
    let header_count = body.varint("header count")?;
    let header_count = usize::try_from(header_count)
        .ok()
        .filter(|&n| n <= body.remaining() / MIN_HEADER_SIZE)
        .ok_or_else(|| {
            format!(
                "header count {header_count} cannot fit the {} remaining bytes of the record",
                body.remaining()
            )
        })?;
    let mut headers = Vec::with_capacity(header_count);
    for _ in 0..header_count {
        let key = body
            .nullable_bytes("header key")?
            .ok_or_else(|| "header key is null".to_owned())?;
        let value = body.nullable_bytes("header value")?;
        headers.push(Header {
            key: String::from_utf8_lossy(&key).into_owned(),
            value,
        });
    }
    if body.remaining() != 0 {
        return Err(format!(
            "record length {length} leaves {} bytes unread",
            body.remaining()
        ));
    }
    let offset = header
        .base_offset
        .checked_add(i64::from(offset_delta))
        .ok_or_else(|| format!("offset delta {offset_delta} overflows the base offset"))?;
    // Java rule: with LogAppendTime every record carries the batch's max timestamp.
    let timestamp = match header.timestamp_type {
        TimestampType::LogAppendTime => header.max_timestamp,
        TimestampType::CreateTime => header.base_timestamp.wrapping_add(timestamp_delta),
    };
    Ok(Record {
        offset,
        timestamp,
        key,
        value,
        headers,
    })
}

/// Parses a control record: key `version: int16, type: int16`; for commit and abort markers,
/// value `version: int16, coordinator_epoch: int32`. Longer keys and values (later versions) are
/// read by their known prefix, as the Java client does.
fn parse_control(record: &Record) -> Result<ControlRecord, String> {
    let key = record.key.as_deref().unwrap_or_default();
    let [v0, v1, t0, t1, ..] = *key else {
        return Err(format!(
            "control record key has {} bytes, needs 4",
            key.len()
        ));
    };
    let version = i16::from_be_bytes([v0, v1]);
    if version < 0 {
        return Err(format!("control record key has version {version}"));
    }
    let kind = ControlKind::from_i16(i16::from_be_bytes([t0, t1]));
    if !kind.is_transaction_marker() {
        return Ok(ControlRecord {
            kind,
            version,
            value_version: -1,
            coordinator_epoch: -1,
        });
    }
    let value = record.value.as_deref().unwrap_or_default();
    let [w0, w1, e0, e1, e2, e3, ..] = *value else {
        return Err(format!(
            "transaction marker value has {} bytes, needs 6",
            value.len()
        ));
    };
    let value_version = i16::from_be_bytes([w0, w1]);
    if value_version < 0 {
        return Err(format!(
            "transaction marker value has version {value_version}"
        ));
    }
    Ok(ControlRecord {
        kind,
        version,
        value_version,
        coordinator_epoch: i32::from_be_bytes([e0, e1, e2, e3]),
    })
}
