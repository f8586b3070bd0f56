//! Kafka record batches (message format v2): decoding what brokers return in Fetch responses and
//! encoding what producers send, with the four codecs in pure Rust. No I/O happens here.
//!
//! # Decoding
//!
//! [`decode_batches`] takes the `records` bytes of one Fetch response partition and returns its
//! batches ([`BatchDecoder`] does the same one batch at a time). Each batch is decoded only after
//! its length is checked against the bytes present:
//!
//! - A partial batch at the end is normal (Kafka cuts the last batch at the fetch's byte limit);
//!   it is reported in [`DecodedBatches::truncated_tail_bytes`], and
//!   [`DecodedBatches::next_offset`] says where to fetch next.
//! - The CRC32C of every batch is verified; a mismatch is [`RecordError::CrcMismatch`], naming
//!   topic, partition and base offset. Nothing in a batch is trusted before its CRC passes.
//! - Every length and count read from the wire is checked against the bytes that remain before
//!   anything is allocated or sliced: a record count above what the records section could hold
//!   (each record takes at least 7 bytes), a negative length other than -1 (null), a record whose
//!   fields do not fill exactly its declared length are all [`RecordError::Corrupt`].
//! - A compressed records section may inflate to at most [`BatchContext::max_decompressed`]
//!   bytes; past that, [`RecordError::DecompressedTooLarge`] (decompression bombs cost at most
//!   the limit in memory).
//! - Attribute bits no Kafka version defines, and the undefined codecs 5 to 7, are typed errors
//!   rather than guesses.
//!
//! Offsets and timestamps of decoded [`Record`]s are absolute. With
//! [`TimestampType::LogAppendTime`] every record's timestamp is the batch's max timestamp, as in
//! the Java client.
//!
//! For uncompressed batches, keys, values and header values are [`Bytes::slice`](bytes::Bytes::slice)s of the input
//! buffer: decoding copies no payload. Compressed batches are inflated into one new buffer per
//! batch, and the records slice that.
//!
//! ## Control batches
//!
//! Transaction markers (commit and abort, written by the transaction coordinator) arrive as
//! control batches. Their record is parsed into [`RecordBatch::control`] and never appears in
//! [`RecordBatch::records`], so applications never see it, while the batch still advances
//! [`DecodedBatches::next_offset`]. The batch header keeps the producer id and the transactional
//! flag, which read_committed filtering needs (together with the aborted-transaction list of the
//! Fetch response).
//!
//! ## Legacy message sets (magic 0 and 1): not supported
//!
//! A batch whose magic byte is not 2 gives [`RecordError::UnsupportedMagic`]. Kafka 4 removed
//! message formats v0 and v1 (KIP-724): its brokers convert nothing down and store only v2
//! batches, and this crate targets Kafka 4 (see `DESIGN.md`). Data written in the old formats
//! before an upgrade to 3.x was rewritten as v2 only if compacted or re-produced, so a topic that
//! still holds it is reported with the topic, partition and offset instead of being skipped. The
//! magic byte sits at the same position (byte 16) in both layouts, so the check is exact.
//!
//! # Encoding
//!
//! [`encode_batch`] lays out a v2 batch as the Java client's `MemoryRecordsBuilder` does:
//! offset deltas 0, 1, 2, …, timestamp deltas from the first record, the max timestamp, the
//! lengths, the attributes and the CRC. [`BatchSizer`] tracks the exact uncompressed size while a
//! producer fills a batch. [`encode_control_batch`] writes transaction markers (for tests).
//!
//! # Codecs
//!
//! gzip (flate2's Rust backend), snappy (snap; xerial framing as the Java client writes it, and
//! raw blocks), lz4 (lz4_flex, frame format, 64 KiB independent blocks) and zstd (ruzstd). See
//! the codec notes in the source (`codec.rs`) for what each encoder writes.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use kafka_once::protocol::records::{
//!     decode_batches, encode_batch, BatchContext, Compression, EncodeOptions, RecordToEncode,
//! };
//!
//! let records = [RecordToEncode {
//!     timestamp: 1_700_000_000_000,
//!     key: Some(Bytes::from_static(b"k")),
//!     value: Some(Bytes::from_static(b"v")),
//!     headers: vec![],
//! }];
//! let opts = EncodeOptions { base_offset: 42, compression: Compression::Lz4, ..Default::default() };
//! let batch = encode_batch(&records, &opts)?;
//!
//! let decoded = decode_batches(batch, &BatchContext::new("orders", 0))?;
//! assert_eq!(decoded.batches[0].records[0].offset, 42);
//! assert_eq!(decoded.next_offset, Some(43));
//! # Ok::<(), kafka_once::protocol::records::RecordError>(())
//! ```

mod codec;
mod decode;
mod encode;
mod error;
mod types;
mod wire;

#[cfg(test)]
mod tests;

pub use decode::{
    BatchContext, BatchDecoder, DEFAULT_MAX_DECOMPRESSED, DecodedBatches, LOG_OVERHEAD,
    RECORD_BATCH_OVERHEAD, decode_batches,
};
pub use encode::{
    BatchSizer, EncodeOptions, RecordToEncode, encode_batch, encode_control_batch, estimated_size,
};
pub use error::RecordError;
pub use types::{
    BatchHeader, Compression, ControlKind, ControlRecord, Header, Record, RecordBatch,
    TimestampType,
};
