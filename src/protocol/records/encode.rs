//! Encoding v2 record batches, laid out as the Java client's `MemoryRecordsBuilder` does.

use bytes::{BufMut, Bytes, BytesMut};

use super::codec;
use super::decode::{LOG_OVERHEAD, RECORD_BATCH_OVERHEAD};
use super::types::{CONTROL_BIT, TRANSACTIONAL_BIT};
use super::wire::{put_varint, put_varlong, varint_len, varlong_len};
use super::{Compression, ControlRecord, Header, RecordError, TimestampType};

/// A record to put into a batch; the encoder assigns offsets (base offset + position).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordToEncode {
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value.
    pub value: Option<Bytes>,
    /// The headers, in order.
    pub headers: Vec<Header>,
}

/// The batch-level fields [`encode_batch`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Offset of the first record; 0 for Produce requests (the broker assigns offsets).
    pub base_offset: i64,
    /// Codec for the records section.
    pub compression: Compression,
    /// Producer id from InitProducerId; -1 for a producer that is not idempotent.
    pub producer_id: i64,
    /// Producer epoch; -1 without a producer id.
    pub producer_epoch: i16,
    /// Sequence number of the first record; -1 without a producer id.
    pub base_sequence: i32,
    /// The batch belongs to a transaction.
    pub transactional: bool,
    /// Leader epoch; -1 from producers (the broker stamps it).
    pub partition_leader_epoch: i32,
    /// Timestamp type; producers write [`TimestampType::CreateTime`].
    pub timestamp_type: TimestampType,
}

impl Default for EncodeOptions {
    /// What a non-idempotent producer writes: base offset 0, no compression, no producer id,
    /// create time.
    fn default() -> Self {
        Self {
            base_offset: 0,
            compression: Compression::None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            partition_leader_epoch: -1,
            timestamp_type: TimestampType::CreateTime,
        }
    }
}

/// Encodes `records` as one v2 batch: offset deltas 0, 1, 2, …, timestamp deltas from the first
/// record's timestamp, the max timestamp, every length, the attributes and the CRC32C.
///
/// Errors: [`RecordError::EmptyBatch`] for no records, [`RecordError::BatchTooLarge`] past 2 GiB
/// or `i32::MAX` records, [`RecordError::Compress`] if the codec fails.
pub fn encode_batch(
    records: &[RecordToEncode],
    opts: &EncodeOptions,
) -> Result<Bytes, RecordError> {
    encode(records, opts, 0)
}

/// Encodes a control batch holding `marker`, as a transaction coordinator writes one: control
/// and transactional flags set, no compression, base sequence -1, one record with the marker's
/// key (`version, type`) and value (`version, coordinator_epoch`). The producer id, epoch, base
/// offset and leader epoch come from `opts`; its compression, sequence and transactional flag are
/// ignored. Brokers write these; the crate uses them in tests.
pub fn encode_control_batch(
    marker: &ControlRecord,
    timestamp: i64,
    opts: &EncodeOptions,
) -> Result<Bytes, RecordError> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&marker.version.to_be_bytes());
    key.extend_from_slice(&marker.kind.as_i16().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&marker.value_version.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let record = RecordToEncode {
        timestamp,
        key: Some(key.into()),
        value: Some(value.into()),
        headers: Vec::new(),
    };
    let opts = EncodeOptions {
        compression: Compression::None,
        base_sequence: -1,
        transactional: true,
        ..opts.clone()
    };
    encode(std::slice::from_ref(&record), &opts, CONTROL_BIT)
}

fn too_large(reason: impl Into<String>) -> RecordError {
    RecordError::BatchTooLarge {
        reason: reason.into(),
    }
}

fn encode(
    records: &[RecordToEncode],
    opts: &EncodeOptions,
    extra_attributes: i16,
) -> Result<Bytes, RecordError> {
    let first = records.first().ok_or(RecordError::EmptyBatch)?;
    let last_offset_delta = i32::try_from(records.len() - 1)
        .map_err(|_| too_large(format!("{} records", records.len())))?;
    let base_timestamp = first.timestamp;
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(base_timestamp);

    let mut sizer = BatchSizer::new();
    for record in records {
        check_lengths(record)?;
        sizer.push(record);
    }
    // Also bounds every record's length varint: no record is larger than the whole batch.
    if i32::try_from(sizer.size()).is_err() {
        return Err(too_large(format!(
            "{} bytes before compression",
            sizer.size()
        )));
    }
    let mut section = Vec::with_capacity(sizer.size() - RECORD_BATCH_OVERHEAD);
    for (i, record) in records.iter().enumerate() {
        // i <= last_offset_delta, which fits an i32.
        write_record(
            &mut section,
            i as i32,
            record.timestamp.wrapping_sub(base_timestamp),
            record,
        );
    }
    let section = if opts.compression == Compression::None {
        section
    } else {
        codec::compress(opts.compression, &section).map_err(|reason| RecordError::Compress {
            compression: opts.compression,
            reason,
        })?
    };
    let batch_length = i32::try_from(RECORD_BATCH_OVERHEAD - LOG_OVERHEAD + section.len())
        .map_err(|_| too_large(format!("records section of {} bytes", section.len())))?;

    let attributes = opts.compression.attribute_bits()
        | opts.timestamp_type.attribute_bits()
        | if opts.transactional {
            TRANSACTIONAL_BIT
        } else {
            0
        }
        | extra_attributes;
    let mut buf = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + section.len());
    buf.put_i64(opts.base_offset);
    buf.put_i32(batch_length);
    buf.put_i32(opts.partition_leader_epoch);
    buf.put_i8(2); // magic
    buf.put_u32(0); // CRC, filled in below
    buf.put_i16(attributes);
    buf.put_i32(last_offset_delta);
    buf.put_i64(base_timestamp);
    buf.put_i64(max_timestamp);
    buf.put_i64(opts.producer_id);
    buf.put_i16(opts.producer_epoch);
    buf.put_i32(opts.base_sequence);
    buf.put_i32(last_offset_delta + 1); // record count
    debug_assert_eq!(buf.len(), RECORD_BATCH_OVERHEAD);
    buf.put_slice(&section);
    // The CRC covers the attributes to the end of the batch.
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(buf.freeze())
}

/// Every byte field's length must fit the varint that carries it.
fn check_lengths(record: &RecordToEncode) -> Result<(), RecordError> {
    let fits = |b: Option<&[u8]>| b.is_none_or(|b| i32::try_from(b.len()).is_ok());
    let ok = fits(record.key.as_deref())
        && fits(record.value.as_deref())
        && i32::try_from(record.headers.len()).is_ok()
        && record
            .headers
            .iter()
            .all(|h| fits(Some(h.key.as_bytes())) && fits(h.value.as_deref()));
    if ok {
        Ok(())
    } else {
        Err(too_large("a key, value or header longer than 2 GiB"))
    }
}

fn put_nullable_bytes(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i32);
            buf.extend_from_slice(b);
        }
    }
}

fn write_record(
    buf: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    record: &RecordToEncode,
) {
    let body = record_body_size(offset_delta, timestamp_delta, record);
    put_varint(buf, body as i32);
    buf.put_i8(0); // record attributes: unused
    put_varlong(buf, timestamp_delta);
    put_varint(buf, offset_delta);
    put_nullable_bytes(buf, record.key.as_deref());
    put_nullable_bytes(buf, record.value.as_deref());
    put_varint(buf, record.headers.len() as i32);
    for header in &record.headers {
        put_nullable_bytes(buf, Some(header.key.as_bytes()));
        put_nullable_bytes(buf, header.value.as_deref());
    }
}

fn nullable_bytes_size(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => 1,
        Some(b) => varlong_len(b.len() as i64) + b.len(),
    }
}

/// Size of a record after its length varint.
fn record_body_size(offset_delta: i32, timestamp_delta: i64, record: &RecordToEncode) -> usize {
    1 + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_bytes_size(record.key.as_deref())
        + nullable_bytes_size(record.value.as_deref())
        + varlong_len(record.headers.len() as i64)
        + record
            .headers
            .iter()
            .map(|h| {
                nullable_bytes_size(Some(h.key.as_bytes()))
                    + nullable_bytes_size(h.value.as_deref())
            })
            .sum::<usize>()
}

/// The exact size of a batch being filled, before compression, so a producer can tell when the
/// next record would pass `batch.size`.
///
/// Records are counted in the order [`encode_batch`] will write them; the first record pushed
/// sets the base timestamp the others' deltas are taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSizer {
    base_timestamp: Option<i64>,
    count: usize,
    size: usize,
}

impl Default for BatchSizer {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchSizer {
    /// An empty batch: [`size`](Self::size) is the 61-byte header.
    pub fn new() -> Self {
        Self {
            base_timestamp: None,
            count: 0,
            size: RECORD_BATCH_OVERHEAD,
        }
    }

    /// Size of the uncompressed batch so far, header included.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Records counted so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no record has been counted.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size the batch would have with `record` appended.
    pub fn size_with(&self, record: &RecordToEncode) -> usize {
        self.size + self.record_size(record)
    }

    /// Appends `record` and returns the new size.
    pub fn push(&mut self, record: &RecordToEncode) -> usize {
        self.size += self.record_size(record);
        self.base_timestamp.get_or_insert(record.timestamp);
        self.count += 1;
        self.size
    }

    fn record_size(&self, record: &RecordToEncode) -> usize {
        let base = self.base_timestamp.unwrap_or(record.timestamp);
        let offset_delta = i32::try_from(self.count).unwrap_or(i32::MAX);
        let body = record_body_size(offset_delta, record.timestamp.wrapping_sub(base), record);
        varlong_len(body as i64) + body
    }
}

/// The exact size [`encode_batch`] gives `records` without compression (an upper bound, in
/// practice, of the compressed size).
pub fn estimated_size(records: &[RecordToEncode]) -> usize {
    let mut sizer = BatchSizer::new();
    for record in records {
        sizer.push(record);
    }
    sizer.size()
}
