//! Corrupt variants of valid captures, and their manifest `corrupt.json`.
//!
//! Each variant changes one thing. Where the point is a structural check (a count, a length)
//! rather than the CRC, the CRC is recomputed so that the structural check itself is what fails.

use std::path::Path;

use serde_json::{Value, json};

use crate::batch::{self, COUNT_AT, CRC_AT, Hdr, LENGTH_AT, MAGIC_AT};

struct Variant {
    file: String,
    from: &'static str,
    mutation: String,
    /// `crc_mismatch`, `corrupt`, `unsupported_magic`, `decompress`, or `partial_tail`.
    expect: &'static str,
    /// For errors: the base offset of the batch the error must name. For `partial_tail`: the
    /// number of complete batches before the tail.
    base_offset: Option<i64>,
    complete_batches: Option<usize>,
    data: Vec<u8>,
}

fn read(dir: &Path, name: &str) -> Result<(Vec<u8>, Vec<Hdr>), String> {
    let path = dir.join(name);
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (batches, tail) = batch::walk(&data);
    if batches.is_empty() || tail != 0 {
        return Err(format!("{name}: not a clean capture"));
    }
    Ok((data, batches))
}

/// Writes every variant and `corrupt.json` into `dir`, from the captures already there.
pub fn generate(dir: &Path) -> Result<(), String> {
    let mut out = Vec::new();
    let err = |file: &str, from, mutation: String, expect, base: i64, data: Vec<u8>| Variant {
        file: file.to_string(),
        from,
        mutation,
        expect,
        base_offset: Some(base),
        complete_batches: None,
        data,
    };
    let tail = |file: &str, from, mutation: String, complete: usize, data: Vec<u8>| Variant {
        file: file.to_string(),
        from,
        mutation,
        expect: "partial_tail",
        base_offset: None,
        complete_batches: Some(complete),
        data,
    };

    // Java, uncompressed, one batch of eight records with headers.
    let from = "java-none.bin";
    let (java, jb) = read(dir, from)?;
    let b0 = &jb[0];
    let recs = batch::records(&java, b0);

    let mut d = java.clone();
    d[b0.pos + CRC_AT] ^= 0xff;
    out.push(err(
        "corrupt-crc-field.bin",
        from,
        "first byte of the CRC field XOR 0xff".into(),
        "crc_mismatch",
        b0.base_offset,
        d,
    ));

    let mut d = java.clone();
    let at = b0.end() - 3;
    d[at] ^= 0x01;
    out.push(err(
        "corrupt-payload-bit.bin",
        from,
        format!("byte {at} (inside the last record) XOR 0x01; CRC left as it was"),
        "crc_mismatch",
        b0.base_offset,
        d,
    ));

    let mut d = java.clone();
    d[b0.pos + COUNT_AT..b0.pos + COUNT_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    batch::fix_crc(&mut d, b0.pos);
    out.push(err(
        "corrupt-record-count-absurd.bin",
        from,
        "record count set to 0x7fffffff, CRC recomputed".into(),
        "corrupt",
        b0.base_offset,
        d,
    ));

    let mut d = java.clone();
    d[b0.pos + COUNT_AT..b0.pos + COUNT_AT + 4].copy_from_slice(&(b0.count + 1).to_be_bytes());
    batch::fix_crc(&mut d, b0.pos);
    out.push(err(
        "corrupt-record-count-plus-one.bin",
        from,
        format!(
            "record count {} → {} (records end before the count), CRC recomputed",
            b0.count,
            b0.count + 1
        ),
        "corrupt",
        b0.base_offset,
        d,
    ));

    let mut d = java.clone();
    d[b0.pos + COUNT_AT..b0.pos + COUNT_AT + 4].copy_from_slice(&(b0.count - 1).to_be_bytes());
    batch::fix_crc(&mut d, b0.pos);
    out.push(err(
        "corrupt-record-count-minus-one.bin",
        from,
        format!(
            "record count {} → {} (bytes left after the counted records), CRC recomputed",
            b0.count,
            b0.count - 1
        ),
        "corrupt",
        b0.base_offset,
        d,
    ));

    let r0 = &recs[0];
    let d = batch::splice(
        &java,
        b0,
        r0.key_length_at,
        batch::varint(&java, r0.key_length_at).1,
        &batch::encode_varint(-2),
    );
    out.push(err(
        "corrupt-key-length-negative.bin",
        from,
        format!(
            "first record's key length {} → -2 (only -1 means null), batch length and CRC recomputed",
            r0.key_length
        ),
        "corrupt",
        b0.base_offset,
        d,
    ));

    let r2 = &recs[2];
    let d = batch::splice(
        &java,
        b0,
        r2.value_length_at,
        batch::varint(&java, r2.value_length_at).1,
        &batch::encode_varint(-7),
    );
    out.push(err(
        "corrupt-value-length-negative.bin",
        from,
        format!(
            "third record's value length {} → -7, batch length and CRC recomputed",
            r2.value_length
        ),
        "corrupt",
        b0.base_offset,
        d,
    ));

    let d = batch::splice(
        &java,
        b0,
        r0.length_at,
        batch::varint(&java, r0.length_at).1,
        &batch::encode_varint(r0.length + 100_000),
    );
    out.push(err(
        "corrupt-record-length-overrun.bin",
        from,
        format!(
            "first record's length {} → {} (past the end of the batch), batch length and CRC \
             recomputed",
            r0.length,
            r0.length + 100_000
        ),
        "corrupt",
        b0.base_offset,
        d,
    ));

    let mut d = java.clone();
    d[b0.pos + MAGIC_AT] = 3;
    out.push(err(
        "corrupt-magic-3.bin",
        from,
        "magic byte 2 → 3 (the CRC does not cover the magic)".into(),
        "unsupported_magic",
        b0.base_offset,
        d,
    ));

    let mut d = java.clone();
    d[b0.pos + LENGTH_AT..b0.pos + LENGTH_AT + 4].copy_from_slice(&20i32.to_be_bytes());
    out.push(err(
        "corrupt-batch-length-too-small.bin",
        from,
        "batch length set to 20, below the 49 bytes of a v2 header after the length field".into(),
        "corrupt",
        b0.base_offset,
        d,
    ));

    let mut d = java.clone();
    d[b0.pos + LENGTH_AT..b0.pos + LENGTH_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
    out.push(err(
        "corrupt-batch-length-negative.bin",
        from,
        "batch length set to -1".into(),
        "corrupt",
        b0.base_offset,
        d,
    ));

    let mut d = java.clone();
    let declared = (b0.size - 12 + 1000) as i32;
    d[b0.pos + LENGTH_AT..b0.pos + LENGTH_AT + 4].copy_from_slice(&declared.to_be_bytes());
    out.push(tail(
        "corrupt-batch-length-beyond-buffer.bin",
        from,
        format!(
            "batch length {} → {declared}, 1000 bytes more than the buffer holds: a fetch cut \
             short looks the same, so this is a partial tail, not an error",
            b0.size - 12
        ),
        0,
        d,
    ));

    out.push(tail(
        "corrupt-truncated-header.bin",
        from,
        "cut to the first 40 bytes (inside the 61-byte batch header)".into(),
        0,
        java[..40].to_vec(),
    ));

    out.push(tail(
        "corrupt-truncated-length-field.bin",
        from,
        "cut to the first 10 bytes (inside the batch length field)".into(),
        0,
        java[..10].to_vec(),
    ));

    // kcat, uncompressed: two batches, so truncation and corruption in the second one.
    let from = "kcat-none.bin";
    let (kcat, kb) = read(dir, from)?;
    if kb.len() < 2 {
        return Err(format!("{from}: expected two batches"));
    }
    let k1 = &kb[1];
    let cut = k1.pos + k1.size / 2;
    out.push(tail(
        "corrupt-truncated-mid-batch.bin",
        from,
        format!(
            "cut at byte {cut}, in the middle of the second batch: the first batch is complete"
        ),
        1,
        kcat[..cut].to_vec(),
    ));

    let mut d = kcat.clone();
    let at = k1.records_at() + 2;
    d[at] ^= 0x40;
    out.push(err(
        "corrupt-second-batch-crc.bin",
        from,
        format!("byte {at} (in the second batch's records) XOR 0x40; the first batch is intact"),
        "crc_mismatch",
        k1.base_offset,
        d,
    ));

    // Compressed batches whose payload is not valid for the codec, with a correct CRC.
    for (codec, name) in [
        ("lz4", "java-lz4.bin"),
        ("gzip", "java-gzip.bin"),
        ("zstd", "java-zstd.bin"),
    ] {
        let (data, bs) = read(dir, name)?;
        let b = &bs[0];
        let mut d = data.clone();
        let at = b.records_at();
        d[at..at + 4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        batch::fix_crc(&mut d, b.pos);
        out.push(Variant {
            file: format!("corrupt-{codec}-bad-frame.bin"),
            from: name,
            mutation: format!(
                "first 4 bytes of the {codec} payload (the format's magic number) replaced by \
                 de ad be ef, CRC recomputed"
            ),
            expect: "decompress",
            base_offset: Some(b.base_offset),
            complete_batches: None,
            data: d,
        });
    }

    let from = "java-lz4.bin";
    let (lz4, lb) = read(dir, from)?;
    let b = &lb[0];
    let payload = b.size - batch::HEADER;
    let keep = payload / 2;
    let d = batch::splice(&lz4, b, b.records_at() + keep, payload - keep, &[]);
    out.push(Variant {
        file: "corrupt-lz4-payload-truncated.bin".into(),
        from,
        mutation: format!(
            "lz4 payload cut from {payload} to {keep} bytes, batch length and CRC recomputed: the \
             frame ends early"
        ),
        expect: "decompress_or_corrupt",
        base_offset: Some(b.base_offset),
        complete_batches: None,
        data: d,
    });

    let mut manifest = Vec::new();
    for v in &out {
        let path = dir.join(&v.file);
        std::fs::write(&path, &v.data).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut entry = json!({
            "file": v.file,
            "derived_from": v.from,
            "mutation": v.mutation,
            "expect": v.expect,
        });
        if let Some(b) = v.base_offset {
            entry["base_offset"] = json!(b);
        }
        if let Some(c) = v.complete_batches {
            entry["complete_batches"] = json!(c);
        }
        manifest.push(entry);
    }
    let doc = json!({
        "description": "Corrupt variants of the golden captures, made by tests/peers/capture \
                        (`capture corrupt`). `expect` is the outcome decode_batches must give: \
                        crc_mismatch → RecordError::CrcMismatch, corrupt → RecordError::Corrupt, \
                        unsupported_magic → RecordError::UnsupportedMagic, decompress → \
                        RecordError::Decompress, decompress_or_corrupt → either of those two, each \
                        naming `base_offset`; partial_tail → Ok with `complete_batches` complete \
                        batches and the rest reported as a truncated tail (a fetch cut short by \
                        its byte limit looks exactly like this, so it is not an error).",
        "variants": manifest,
    });
    let path = dir.join("corrupt.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&doc).expect("json") + "\n",
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {} corrupt variants and corrupt.json", out.len());
    Ok(())
}

/// For `capture walk`: a one-line summary of each batch.
pub fn describe(data: &[u8]) -> Value {
    let (batches, tail) = batch::walk(data);
    json!({
        "batches": batches.iter().map(|b| json!({
            "pos": b.pos, "size": b.size, "base_offset": b.base_offset, "count": b.count,
            "compression": b.compression(), "transactional": b.transactional(),
            "control": b.control(), "log_append_time": b.log_append_time(),
            "producer_id": b.producer_id, "base_timestamp": b.base_timestamp,
            "max_timestamp": b.max_timestamp,
        })).collect::<Vec<_>>(),
        "tail_bytes": tail,
    })
}
