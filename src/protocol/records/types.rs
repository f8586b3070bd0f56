//! The decoded forms of records, batches and their attributes.

use std::fmt;

use bytes::Bytes;

use crate::config::CompressionType;

/// Bits 0..=2 of the batch attributes: the compression codec.
pub(crate) const COMPRESSION_MASK: i16 = 0x07;
/// Bit 3: the timestamp type (0 create time, 1 log append time).
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 0x08;
/// Bit 4: the batch belongs to a transaction.
pub(crate) const TRANSACTIONAL_BIT: i16 = 0x10;
/// Bit 5: the batch holds a control record (a transaction marker).
pub(crate) const CONTROL_BIT: i16 = 0x20;
/// Bit 6: the base timestamp is the delete horizon set by log compaction (KIP-534).
pub(crate) const DELETE_HORIZON_BIT: i16 = 0x40;
/// Every attribute bit some Kafka version defines; the rest (bits 7..=15) must be zero.
pub(crate) const KNOWN_ATTRIBUTES: i16 =
    COMPRESSION_MASK | TIMESTAMP_TYPE_BIT | TRANSACTIONAL_BIT | CONTROL_BIT | DELETE_HORIZON_BIT;

/// One record header: a string key and an optional byte value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header's key. On the wire a key is bytes; the decoder replaces invalid UTF-8 the way
    /// the Java client does (`U+FFFD`), because refusing a whole batch over a header name would
    /// halt a partition the Java consumer reads fine.
    pub key: String,
    /// The header's value; `None` is a null value (length -1 on the wire).
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// A data record as an application sees it, with absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's offset: the batch's base offset plus the record's offset delta.
    pub offset: i64,
    /// Milliseconds since the Unix epoch: the batch's base timestamp plus the record's delta, or
    /// the batch's max timestamp when the batch uses [`TimestampType::LogAppendTime`].
    pub timestamp: i64,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// The headers, in wire order (keys may repeat).
    pub headers: Vec<Header>,
}

/// What a record's timestamp means (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer when it created the record.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch (`message.timestamp.type=LogAppendTime`).
    LogAppendTime,
}

impl TimestampType {
    /// The type named by a batch's attributes.
    pub fn from_attributes(attributes: i16) -> Self {
        if attributes & TIMESTAMP_TYPE_BIT != 0 {
            Self::LogAppendTime
        } else {
            Self::CreateTime
        }
    }

    /// This type's bit in the batch attributes.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Self::CreateTime => 0,
            Self::LogAppendTime => TIMESTAMP_TYPE_BIT,
        }
    }
}

/// The compression codec of a batch's records section (attribute bits 0..=2).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Uncompressed (0).
    #[default]
    None,
    /// Gzip (1): a gzip stream, as `java.util.zip.GZIPOutputStream` writes it.
    Gzip,
    /// Snappy (2): xerial framing as the Java client writes it, or raw snappy (librdkafka reads
    /// both; so does this crate).
    Snappy,
    /// LZ4 (3): the LZ4 frame format.
    Lz4,
    /// Zstandard (4): one or more zstd frames.
    Zstd,
}

impl Compression {
    /// The codec named by a batch's attributes; `None` for the undefined codecs 5, 6 and 7.
    pub fn from_attributes(attributes: i16) -> Option<Self> {
        match attributes & COMPRESSION_MASK {
            0 => Some(Self::None),
            1 => Some(Self::Gzip),
            2 => Some(Self::Snappy),
            3 => Some(Self::Lz4),
            4 => Some(Self::Zstd),
            _ => None,
        }
    }

    /// This codec's bits in the batch attributes.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The codec's name as `compression.type` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// Every codec, uncompressed first.
    pub const ALL: [Self; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<CompressionType> for Compression {
    fn from(value: CompressionType) -> Self {
        match value {
            CompressionType::None => Self::None,
            CompressionType::Gzip => Self::Gzip,
            CompressionType::Snappy => Self::Snappy,
            CompressionType::Lz4 => Self::Lz4,
            CompressionType::Zstd => Self::Zstd,
        }
    }
}

/// Every field of a v2 record batch header, with the attributes decoded.
///
/// Wire layout (61 bytes, big-endian), from the Kafka protocol guide:
///
/// ```text
/// baseOffset: int64, batchLength: int32, partitionLeaderEpoch: int32, magic: int8 (2),
/// crc: uint32, attributes: int16, lastOffsetDelta: int32, baseTimestamp: int64,
/// maxTimestamp: int64, producerId: int64, producerEpoch: int16, baseSequence: int32,
/// recordCount: int32
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (or of the first offset the batch covered before compaction).
    pub base_offset: i64,
    /// Bytes after the `batchLength` field: the batch occupies `12 + batch_length` bytes.
    pub batch_length: i32,
    /// Leader epoch the broker stamped on the batch; -1 from producers.
    pub partition_leader_epoch: i32,
    /// Message format version; always 2 for a decoded batch.
    pub magic: i8,
    /// CRC32C of the bytes from `attributes` to the end of the batch, as stored (and verified).
    pub crc: u32,
    /// Compression codec of the records section.
    pub compression: Compression,
    /// What the record timestamps mean.
    pub timestamp_type: TimestampType,
    /// The batch was written inside a transaction.
    pub is_transactional: bool,
    /// The batch holds a control record (a transaction marker), not data.
    pub is_control: bool,
    /// `base_timestamp` is the delete horizon set by log compaction.
    pub has_delete_horizon: bool,
    /// Offset of the last record relative to `base_offset`. Kept by compaction, so it can point
    /// past the last remaining record.
    pub last_offset_delta: i32,
    /// Timestamp the record deltas are relative to.
    pub base_timestamp: i64,
    /// Largest record timestamp, or the log append time.
    pub max_timestamp: i64,
    /// Producer id of an idempotent or transactional producer; -1 otherwise.
    pub producer_id: i64,
    /// Producer epoch; -1 when there is no producer id.
    pub producer_epoch: i16,
    /// Sequence number of the first record; -1 when there is no producer id.
    pub base_sequence: i32,
    /// Number of records in the batch (after compaction, possibly 0).
    pub record_count: i32,
}

impl BatchHeader {
    /// The attributes field these decoded flags come from.
    pub fn attributes(&self) -> i16 {
        let flag = |set: bool, bit: i16| if set { bit } else { 0 };
        self.compression.attribute_bits()
            | self.timestamp_type.attribute_bits()
            | flag(self.is_transactional, TRANSACTIONAL_BIT)
            | flag(self.is_control, CONTROL_BIT)
            | flag(self.has_delete_horizon, DELETE_HORIZON_BIT)
    }

    /// Offset of the last record the batch covers: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset to fetch after this batch: `last_offset() + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The batch comes from an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// What a control record marks (the `type` of its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlKind {
    /// The producer's open transaction on this partition was aborted (type 0).
    Abort,
    /// The producer's open transaction on this partition was committed (type 1).
    Commit,
    /// Another type: KRaft's own control records (leader change, snapshot markers, voters) or a
    /// future one. Not a transaction marker.
    Unknown(i16),
}

impl ControlKind {
    /// The kind for a control record key's `type` field.
    pub fn from_i16(kind: i16) -> Self {
        match kind {
            0 => Self::Abort,
            1 => Self::Commit,
            other => Self::Unknown(other),
        }
    }

    /// The `type` field of the control record key.
    pub fn as_i16(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
            Self::Unknown(other) => other,
        }
    }

    /// Whether this is a transaction marker (commit or abort).
    pub fn is_transaction_marker(self) -> bool {
        matches!(self, Self::Abort | Self::Commit)
    }
}

/// The record of a control batch: a transaction marker written by the transaction coordinator.
///
/// Key: `version: int16, type: int16`. Value, for commit and abort markers:
/// `version: int16, coordinator_epoch: int32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// What the marker says.
    pub kind: ControlKind,
    /// Version of the control record key (0 today).
    pub version: i16,
    /// Version of the marker value (0 today); -1 for [`ControlKind::Unknown`], whose value is not
    /// parsed.
    pub value_version: i16,
    /// Epoch of the transaction coordinator that wrote the marker; -1 for
    /// [`ControlKind::Unknown`].
    pub coordinator_epoch: i32,
}

impl ControlRecord {
    /// A commit or abort marker, as the coordinator writes it (versions 0).
    pub fn marker(commit: bool, coordinator_epoch: i32) -> Self {
        Self {
            kind: if commit {
                ControlKind::Commit
            } else {
                ControlKind::Abort
            },
            version: 0,
            value_version: 0,
            coordinator_epoch,
        }
    }
}

/// One decoded v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// The header, attributes decoded.
    pub header: BatchHeader,
    /// The data records, with absolute offsets and timestamps. Empty for control batches.
    pub records: Vec<Record>,
    /// The marker of a control batch (its first record); `None` for data batches and for control
    /// batches emptied by compaction.
    pub control: Option<ControlRecord>,
}
