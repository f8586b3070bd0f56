//! The four codecs of the records section, in pure Rust, both directions.
//!
//! Decompression is bounded: every decoder stops once its output would pass the caller's limit
//! and reports [`CodecError::TooLarge`], so a few kilobytes that inflate to gigabytes cost at most
//! the limit in memory. Each decoder accepts what the Java client and librdkafka write:
//!
//! - gzip: one or more gzip members (`GZIPOutputStream`; `GZIPInputStream` reads concatenations).
//! - snappy: xerial framing as snappy-java's `SnappyOutputStream` writes it (the Java client), or
//!   one raw snappy block (other clients); told apart by the xerial magic, as snappy-java does.
//! - lz4: the LZ4 frame format, one or more frames, any block size, with or without checksums.
//! - zstd: one or more zstd frames; the content checksum is verified when present.
//!
//! The encoders write what the Java client writes and reads: gzip at the default level, xerial
//! snappy with 32 KiB blocks, LZ4 frames with 64 KiB independent blocks and no content checksum
//! (`KafkaLZ4BlockInputStream` decompresses each block on its own), and zstd at ruzstd's fastest
//! level (about zstd level 1).

use std::io::{Read, Write};

use super::Compression;

/// The magic that opens a xerial snappy stream: `\x82SNAPPY\0`.
pub(crate) const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Xerial header: magic, then version and minimum compatible version as big-endian `i32`s.
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's `SnappyOutputStream` default block size, which the Java client uses.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;
/// Smallest zstd window the decoder always accepts, whatever the output limit: producers stream
/// with windows of a few MiB (zstd level 3 uses 2 MiB) whatever the batch size.
const MIN_ZSTD_WINDOW: u64 = 8 << 20;

/// Why the records section of a batch could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodecError {
    /// The output would exceed the limit.
    TooLarge,
    /// The input is not valid for the codec.
    Invalid(String),
}

/// Decompresses `input` with `compression`, producing at most `limit` bytes.
///
/// [`Compression::None`] is never passed here: uncompressed sections are sliced, not copied.
pub(crate) fn decompress(
    compression: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, CodecError> {
    match compression {
        Compression::None => bounded_copy(input, limit),
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), limit),
        Compression::Snappy if input.starts_with(&XERIAL_MAGIC) => xerial_decompress(input, limit),
        Compression::Snappy => {
            let mut out = Vec::new();
            snappy_block(input, limit, &mut out)?;
            Ok(out)
        }
        Compression::Lz4 => lz4_decompress(input, limit),
        Compression::Zstd => zstd_decompress(input, limit),
    }
}

/// Compresses `input` with `compression` the way the Java client does.
pub(crate) fn compress(compression: Compression, input: &[u8]) -> Result<Vec<u8>, String> {
    match compression {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(input.len() / 2 + 64),
                flate2::Compression::default(),
            );
            encoder.write_all(input).map_err(|e| e.to_string())?;
            encoder.finish().map_err(|e| e.to_string())
        }
        Compression::Snappy => xerial_compress(input),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .content_checksum(false);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(input.len() / 2 + 64),
            );
            encoder.write_all(input).map_err(|e| e.to_string())?;
            encoder.finish().map_err(|e| e.to_string())
        }
        Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            input,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
    }
}

fn bounded_copy(input: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    if input.len() > limit {
        return Err(CodecError::TooLarge);
    }
    Ok(input.to_vec())
}

/// Reads `reader` to its end, failing once more than `limit` bytes come out.
fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    append_bounded(reader, limit, &mut out)?;
    Ok(out)
}

/// Appends `reader`'s output to `out`, failing once `out` would hold more than `limit` bytes.
fn append_bounded(reader: impl Read, limit: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
    // Read one byte past the budget: getting it proves the output is too large.
    let budget = limit.saturating_sub(out.len()) as u64 + 1;
    reader
        .take(budget)
        .read_to_end(out)
        .map_err(|e| CodecError::Invalid(e.to_string()))?;
    if out.len() > limit {
        return Err(CodecError::TooLarge);
    }
    Ok(())
}

/// Decompresses one raw snappy block onto `out`, checking its declared length first.
fn snappy_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let invalid = |e: snap::Error| CodecError::Invalid(format!("snappy: {e}"));
    let len = snap::raw::decompress_len(block).map_err(invalid)?;
    if len > limit.saturating_sub(out.len()) {
        return Err(CodecError::TooLarge);
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(invalid)?;
    out.truncate(start + written);
    Ok(())
}

/// Xerial framing (snappy-java `SnappyOutputStream`): a 16-byte header, then blocks, each a
/// big-endian `i32` length and a raw snappy block of that length. Like snappy-java's
/// `SnappyInputStream`, a second header where a block length is expected starts a concatenated
/// stream and is skipped.
fn xerial_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    if input.len() < XERIAL_HEADER_LEN {
        return Err(CodecError::Invalid(format!(
            "xerial snappy header needs {XERIAL_HEADER_LEN} bytes, got {}",
            input.len()
        )));
    }
    let mut rest = &input[XERIAL_HEADER_LEN..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.starts_with(&XERIAL_MAGIC) {
            if rest.len() < XERIAL_HEADER_LEN {
                return Err(CodecError::Invalid(
                    "truncated concatenated xerial header".into(),
                ));
            }
            rest = &rest[XERIAL_HEADER_LEN..];
            continue;
        }
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(CodecError::Invalid(format!(
                "xerial block length needs 4 bytes, {} remain",
                rest.len()
            )));
        };
        let len = i32::from_be_bytes(*len);
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= tail.len())
            .ok_or_else(|| {
                CodecError::Invalid(format!(
                    "xerial block length {len} does not fit the {} remaining bytes",
                    tail.len()
                ))
            })?;
        let (block, next) = tail.split_at(len);
        snappy_block(block, limit, &mut out)?;
        rest = next;
    }
    Ok(out)
}

fn xerial_compress(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + input.len() / 2 + 64);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
    let mut encoder = snap::raw::Encoder::new();
    let mut block = vec![0; snap::raw::max_compress_len(XERIAL_BLOCK_SIZE)];
    for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
        let n = encoder
            .compress(chunk, &mut block)
            .map_err(|e| e.to_string())?;
        // n <= max_compress_len(32 KiB), far below i32::MAX.
        out.extend_from_slice(&(n as i32).to_be_bytes());
        out.extend_from_slice(&block[..n]);
    }
    Ok(out)
}

/// Magic number of an LZ4 frame (little-endian on the wire).
const LZ4_MAGIC: u32 = 0x184D_2204;

/// One or more LZ4 frames. Each frame is delimited by walking its blocks first: `lz4_flex` takes
/// the end of its input for the end of a frame, so without this a frame cut before its end mark
/// (and content checksum) would decode as if complete.
fn lz4_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let mut rest = input;
    let mut out = Vec::new();
    loop {
        let (frame, next) = rest.split_at(lz4_frame_len(rest)?);
        append_bounded(lz4_flex::frame::FrameDecoder::new(frame), limit, &mut out)?;
        rest = next;
        if rest.is_empty() {
            return Ok(out);
        }
    }
}

/// Length of the LZ4 frame at the start of `input` (LZ4 frame format: magic, FLG, BD, optional
/// content size and dictionary id, header checksum, then blocks of `u32` little-endian size, high
/// bit meaning stored, each followed by a checksum if FLG says so; a zero size is the end mark,
/// followed by the content checksum if FLG says so).
fn lz4_frame_len(input: &[u8]) -> Result<usize, CodecError> {
    let invalid = |what: &str| CodecError::Invalid(format!("lz4: {what}"));
    let [m0, m1, m2, m3, flg, _bd, ..] = *input else {
        return Err(invalid("frame header truncated"));
    };
    if u32::from_le_bytes([m0, m1, m2, m3]) != LZ4_MAGIC {
        return Err(invalid("not an LZ4 frame (bad magic)"));
    }
    let block_checksums = flg & 0x10 != 0;
    let content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    let dict_id = flg & 0x01 != 0;
    // magic, FLG, BD, [content size], [dictionary id], header checksum
    let mut pos = 6 + if content_size { 8 } else { 0 } + if dict_id { 4 } else { 0 } + 1;
    loop {
        let size = input
            .get(pos..pos + 4)
            .ok_or_else(|| invalid("frame ends before its end mark"))?;
        pos += 4;
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
        if size == 0 {
            break;
        }
        let len = (size & 0x7fff_ffff) as usize + if block_checksums { 4 } else { 0 };
        pos = pos
            .checked_add(len)
            .filter(|&end| end <= input.len())
            .ok_or_else(|| invalid("block runs past the end of the input"))?;
    }
    if content_checksum {
        pos += 4;
    }
    if pos > input.len() {
        return Err(invalid("content checksum truncated"));
    }
    Ok(pos)
}

/// One or more zstd frames, each with its window bounded and its checksum (if any) verified.
fn zstd_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let window = (limit as u64).max(MIN_ZSTD_WINDOW);
    let mut rest = input;
    let mut out = Vec::new();
    loop {
        let mut decoder =
            ruzstd::decoding::StreamingDecoder::new_with_max_window_size(&mut rest, window)
                .map_err(|e| CodecError::Invalid(format!("zstd: {e}")))?;
        append_bounded(&mut decoder, limit, &mut out)?;
        let frame = decoder.into_frame_decoder();
        if let (Some(stored), Some(computed)) = (
            frame.get_checksum_from_data(),
            frame.get_calculated_checksum(),
        ) && stored != computed
        {
            return Err(CodecError::Invalid(format!(
                "zstd content checksum {stored:#010x} does not match the content ({computed:#010x})"
            )));
        }
        if rest.is_empty() {
            return Ok(out);
        }
    }
}
