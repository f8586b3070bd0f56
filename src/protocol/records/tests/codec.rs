//! Each codec: its encoder's output decodes back, and streams written by other implementations
//! (the `gzip`, `lz4` and `zstd` command-line tools, Python's gzip, hand-built snappy) decode.

use super::super::codec::{CodecError, XERIAL_MAGIC, compress, decompress};
use super::*;

const LIMIT: usize = 1 << 20;
/// What every command-line vector below holds.
const TEXT: &[u8] = b"kafka-once codec vector: hello hello hello hello kafka";

/// A zstd frame of `blocks` RLE blocks of 128 KiB zeros, no checksum: 4 bytes per 128 KiB.
pub(super) fn zstd_rle_frame(blocks: usize) -> Vec<u8> {
    // Magic; frame header descriptor 0 (no content size, no checksum, not single-segment);
    // window descriptor: 2^(10 + 7) = 128 KiB.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        // Block header, 3 bytes little-endian: last flag, type 1 (RLE), size 128 KiB.
        let header = last | (1 << 1) | ((128 * 1024) << 3);
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

/// Input that compresses but not trivially, spanning several codec blocks.
fn varied(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + i / 1000) % 251) as u8).collect()
}

#[test]
fn every_encoder_output_decodes_back() {
    for compression in Compression::ALL {
        for input in [Vec::new(), b"x".to_vec(), varied(300_000), vec![0; 70_000]] {
            let packed = compress(compression, &input).unwrap();
            let unpacked = decompress(compression, &packed, LIMIT).unwrap();
            assert_eq!(unpacked, input, "{compression}, {} bytes", input.len());
        }
    }
}

#[test]
fn gzip_vectors_from_the_command_line_tool_and_python_decode() {
    // printf '%s' "$TEXT" | gzip -n -9
    let cli = hex(
        "1f8b0800000000000203cb4e4ccb4ed4cdcf4b4e5548ce4f494d56284b4d2ec92fb252c848cdc9c9c742668334\
         000047967aef36000000",
    );
    assert_eq!(decompress(Compression::Gzip, &cli, LIMIT).unwrap(), TEXT);
    // gzip.compress(b'one', mtime=0) + gzip.compress(b'two', mtime=0): two members.
    let members = hex(
        "1f8b0800000000000203cbcf4b0500f1866c7a030000001f8b08000000000002032b29cf0700668aca1103000000",
    );
    assert_eq!(
        decompress(Compression::Gzip, &members, LIMIT).unwrap(),
        b"onetwo"
    );
    // A flipped bit in the deflate data fails the member's CRC.
    let mut bad = cli.clone();
    bad[20] ^= 0x01;
    assert!(matches!(
        decompress(Compression::Gzip, &bad, LIMIT),
        Err(CodecError::Invalid(_))
    ));
}

#[test]
fn lz4_vectors_from_the_command_line_tool_decode() {
    // lz4 -c: 4 MiB independent blocks, content checksum.
    let cli = hex(
        "04224d186440a729000000ff0f6b61666b612d6f6e636520636f64656320766563746f723a2068656c6c6f0600\
         00506b61666b61000000003a633290",
    );
    assert_eq!(decompress(Compression::Lz4, &cli, LIMIT).unwrap(), TEXT);
    // lz4 -c -BD --no-frame-crc -B4: linked blocks, no content checksum.
    let linked = hex(
        "04224d1860408229000000ff0f6b61666b612d6f6e636520636f64656320766563746f723a2068656c6c6f0600\
         00506b61666b6100000000",
    );
    assert_eq!(decompress(Compression::Lz4, &linked, LIMIT).unwrap(), TEXT);
    // Two frames back to back.
    let both = [cli.clone(), linked].concat();
    assert_eq!(
        decompress(Compression::Lz4, &both, LIMIT).unwrap(),
        [TEXT, TEXT].concat()
    );
    // A wrong content checksum is an error.
    let mut bad = cli;
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    assert!(matches!(
        decompress(Compression::Lz4, &bad, LIMIT),
        Err(CodecError::Invalid(_))
    ));
}

#[test]
fn lz4_encoder_writes_64k_independent_blocks_without_checksums() {
    let frame = compress(Compression::Lz4, &varied(200_000)).unwrap();
    assert_eq!(frame[..4], [0x04, 0x22, 0x4d, 0x18]); // frame magic
    // FLG: version 01, block independence, no block checksum, no content size or checksum.
    assert_eq!(frame[4], 0b0110_0000);
    // BD: block max size 4 (64 KiB).
    assert_eq!(frame[5], 0x40);
}

#[test]
fn zstd_vectors_from_the_command_line_tool_decode() {
    // zstd -19 (content checksum on).
    let checked = hex(
        "28b52ffd046855010034026b61666b612d6f6e636520636f64656320766563746f723a2068656c6c6f6b61666b\
         61010026294e8f1e2581",
    );
    assert_eq!(
        decompress(Compression::Zstd, &checked, LIMIT).unwrap(),
        TEXT
    );
    // zstd --no-check.
    let unchecked = hex(
        "28b52ffd005855010034026b61666b612d6f6e636520636f64656320766563746f723a2068656c6c6f6b61666b\
         61010026294e",
    );
    assert_eq!(
        decompress(Compression::Zstd, &unchecked, LIMIT).unwrap(),
        TEXT
    );
    let both = [checked.clone(), unchecked].concat();
    assert_eq!(
        decompress(Compression::Zstd, &both, LIMIT).unwrap(),
        [TEXT, TEXT].concat()
    );
    // A wrong content checksum is an error.
    let mut bad = checked;
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let err = decompress(Compression::Zstd, &bad, LIMIT).unwrap_err();
    assert!(
        matches!(&err, CodecError::Invalid(r) if r.contains("checksum")),
        "{err:?}"
    );
}

#[test]
fn zstd_rle_bomb_is_cut_at_the_limit() {
    let frame = zstd_rle_frame(3);
    assert_eq!(
        decompress(Compression::Zstd, &frame, LIMIT).unwrap(),
        vec![0; 3 * 128 * 1024]
    );
    assert_eq!(
        decompress(Compression::Zstd, &frame, 300_000),
        Err(CodecError::TooLarge)
    );
}

#[test]
fn raw_snappy_blocks_decode() {
    // Per the snappy format: uncompressed length 12, literal "abc" (tag 0x08), then a copy with
    // a 1-byte offset of length 9 at offset 3 (tag 0b101_01 = 0x15, offset 0x03).
    let block = [0x0c, 0x08, b'a', b'b', b'c', 0x15, 0x03];
    assert_eq!(
        decompress(Compression::Snappy, &block, LIMIT).unwrap(),
        b"abcabcabcabc"
    );
    let raw = snap::raw::Encoder::new().compress_vec(TEXT).unwrap();
    assert_eq!(decompress(Compression::Snappy, &raw, LIMIT).unwrap(), TEXT);
    // A declared length past the limit is refused before anything is allocated.
    let claims_2g = [0x80, 0x80, 0x80, 0x80, 0x08, 0x00];
    assert_eq!(
        decompress(Compression::Snappy, &claims_2g, LIMIT),
        Err(CodecError::TooLarge)
    );
}

#[test]
fn xerial_snappy_is_framed_like_snappy_java() {
    let input = varied(70_000);
    let framed = compress(Compression::Snappy, &input).unwrap();
    assert_eq!(framed[..8], XERIAL_MAGIC);
    assert_eq!(framed[8..16], [0, 0, 0, 1, 0, 0, 0, 1]); // version 1, compatible version 1
    // Blocks of 32 KiB input each: 32 KiB, 32 KiB, 4464 bytes.
    let mut rest = &framed[16..];
    let mut sizes = Vec::new();
    while !rest.is_empty() {
        let len = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        sizes.push(snap::raw::decompress_len(&rest[4..4 + len]).unwrap());
        rest = &rest[4 + len..];
    }
    assert_eq!(sizes, [32768, 32768, 70_000 - 65536]);
    // Two streams back to back, as snappy-java reads them.
    let second = compress(Compression::Snappy, b"tail").unwrap();
    let both = [framed.clone(), second].concat();
    assert_eq!(
        decompress(Compression::Snappy, &both, LIMIT).unwrap(),
        [&input[..], b"tail"].concat()
    );
    // Truncation inside a block, or inside a block length, is an error.
    for cut in [framed.len() - 1, 18] {
        assert!(matches!(
            decompress(Compression::Snappy, &framed[..cut], LIMIT),
            Err(CodecError::Invalid(_))
        ));
    }
    // The limit applies across blocks.
    assert_eq!(
        decompress(Compression::Snappy, &framed, 40_000),
        Err(CodecError::TooLarge)
    );
}

#[test]
fn every_decoder_respects_the_limit() {
    let input = vec![7u8; 50_000];
    for compression in Compression::ALL {
        let packed = compress(compression, &input).unwrap();
        assert_eq!(
            decompress(compression, &packed, 49_999),
            Err(CodecError::TooLarge),
            "{compression}"
        );
        assert_eq!(
            decompress(compression, &packed, 50_000).unwrap().len(),
            50_000
        );
    }
}

#[test]
fn compression_converts_from_the_config_setting() {
    use crate::config::CompressionType;
    for (setting, codec) in [
        (CompressionType::None, Compression::None),
        (CompressionType::Gzip, Compression::Gzip),
        (CompressionType::Snappy, Compression::Snappy),
        (CompressionType::Lz4, Compression::Lz4),
        (CompressionType::Zstd, Compression::Zstd),
    ] {
        assert_eq!(Compression::from(setting), codec);
        assert_eq!(codec.as_str(), setting.as_str());
        assert_eq!(
            Compression::from_attributes(codec.attribute_bits()),
            Some(codec)
        );
    }
    assert_eq!(Compression::from_attributes(5), None);
    assert_eq!(
        Compression::from_attributes(0x7ff8 | 2),
        Some(Compression::Snappy)
    );
}
