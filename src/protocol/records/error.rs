//! [`RecordError`]: what can go wrong decoding or encoding a record batch.

use std::sync::Arc;

use super::Compression;

/// A record batch could not be decoded or encoded.
///
/// Every decode variant names the topic, partition and base offset of the batch it refers to, so
/// a consumer can report exactly which data it refuses to read. None of them is retriable:
/// fetching the same bytes again gives the same error.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The CRC32C stored in a batch header does not match the bytes of the batch.
    #[error(
        "CRC mismatch in batch at {topic}/{partition} offset {base_offset}: \
         header says {expected:#010x}, bytes give {actual:#010x}"
    )]
    CrcMismatch {
        /// Topic of the batch.
        topic: Arc<str>,
        /// Partition of the batch.
        partition: i32,
        /// First offset of the batch.
        base_offset: i64,
        /// The CRC stored in the batch header.
        expected: u32,
        /// The CRC computed over the batch's bytes.
        actual: u32,
    },
    /// The batch uses a message format other than v2 (magic 0 and 1 are the legacy message sets
    /// that Kafka 4 no longer stores; anything above 2 does not exist yet).
    #[error(
        "unsupported message format (magic {magic}) at {topic}/{partition} offset {base_offset}: \
         only record batch v2 (magic 2) is supported"
    )]
    UnsupportedMagic {
        /// Topic of the batch.
        topic: Arc<str>,
        /// Partition of the batch.
        partition: i32,
        /// First offset of the batch (for legacy message sets: the offset of the first message).
        base_offset: i64,
        /// The magic byte found.
        magic: i8,
    },
    /// The batch's attributes name a compression codec that does not exist (5, 6 or 7).
    #[error(
        "unknown compression codec {codec} in batch at {topic}/{partition} offset {base_offset}"
    )]
    UnsupportedCompression {
        /// Topic of the batch.
        topic: Arc<str>,
        /// Partition of the batch.
        partition: i32,
        /// First offset of the batch.
        base_offset: i64,
        /// The codec bits of the attributes (0..=7).
        codec: u8,
    },
    /// The batch's attributes set bits that no Kafka version defines (bits 7 to 15).
    #[error(
        "unknown attribute bits {attributes:#06x} in batch at {topic}/{partition} offset {base_offset}"
    )]
    UnknownAttributes {
        /// Topic of the batch.
        topic: Arc<str>,
        /// Partition of the batch.
        partition: i32,
        /// First offset of the batch.
        base_offset: i64,
        /// The whole attributes field.
        attributes: i16,
    },
    /// The compressed records section of a batch is not valid for its codec.
    #[error(
        "cannot decompress {compression} batch at {topic}/{partition} offset {base_offset}: {reason}"
    )]
    Decompress {
        /// Topic of the batch.
        topic: Arc<str>,
        /// Partition of the batch.
        partition: i32,
        /// First offset of the batch.
        base_offset: i64,
        /// The batch's codec.
        compression: Compression,
        /// What the codec reported.
        reason: String,
    },
    /// The records section of a compressed batch inflates past the configured limit
    /// ([`BatchContext::max_decompressed`](super::BatchContext::max_decompressed)); a
    /// decompression bomb, or a limit set too low for the topic's batches.
    #[error(
        "{compression} batch at {topic}/{partition} offset {base_offset} decompresses to more \
         than {limit} bytes"
    )]
    DecompressedTooLarge {
        /// Topic of the batch.
        topic: Arc<str>,
        /// Partition of the batch.
        partition: i32,
        /// First offset of the batch.
        base_offset: i64,
        /// The batch's codec.
        compression: Compression,
        /// The limit in force.
        limit: usize,
    },
    /// The batch is structurally invalid: a length, count or varint that does not fit the bytes.
    #[error("corrupt batch at {topic}/{partition} offset {base_offset}: {reason}")]
    Corrupt {
        /// Topic of the batch.
        topic: Arc<str>,
        /// Partition of the batch.
        partition: i32,
        /// First offset of the batch.
        base_offset: i64,
        /// What is wrong, naming the field.
        reason: String,
    },
    /// [`encode_batch`](super::encode_batch) was given no records; Kafka has no use for an empty
    /// produced batch.
    #[error("cannot encode a batch of zero records")]
    EmptyBatch,
    /// A batch to encode would exceed the format's limits (2 GiB, or `i32::MAX` records).
    #[error("batch too large to encode: {reason}")]
    BatchTooLarge {
        /// Which limit was hit.
        reason: String,
    },
    /// A codec failed while compressing a batch.
    #[error("cannot compress batch with {compression}: {reason}")]
    Compress {
        /// The codec.
        compression: Compression,
        /// What the codec reported.
        reason: String,
    },
}

impl RecordError {
    /// The base offset of the batch a decode error refers to; `None` for encode errors.
    pub fn base_offset(&self) -> Option<i64> {
        match self {
            Self::CrcMismatch { base_offset, .. }
            | Self::UnsupportedMagic { base_offset, .. }
            | Self::UnsupportedCompression { base_offset, .. }
            | Self::UnknownAttributes { base_offset, .. }
            | Self::Decompress { base_offset, .. }
            | Self::DecompressedTooLarge { base_offset, .. }
            | Self::Corrupt { base_offset, .. } => Some(*base_offset),
            Self::EmptyBatch | Self::BatchTooLarge { .. } | Self::Compress { .. } => None,
        }
    }
}
