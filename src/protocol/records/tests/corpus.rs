//! Runs the fuzz seeds (`fuzz/seeds/`) and the captured batches (`testdata/batches/`) through
//! the decoders, so CI exercises the fuzz targets' inputs without a nightly toolchain.
//!
//! `write_fuzz_seeds` (ignored) regenerates `fuzz/seeds/`:
//! `cargo test --lib protocol::records::tests::corpus::write_fuzz_seeds -- --ignored`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::*;
use crate::protocol::guard::check_response_body;

/// Lowest and highest Fetch response versions `kafka-protocol` decodes.
const FETCH_VERSIONS: (i16, i16) = (4, 18);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every regular file under `dir`, recursively, sorted; empty if `dir` does not exist.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The `record_batch` fuzz target's body.
fn record_batch_target(data: &[u8]) {
    let ctx = BatchContext::new("fuzz", 0).with_max_decompressed(1 << 20);
    let _ = decode_batches(Bytes::copy_from_slice(data), &ctx);
}

/// The `fetch_response` fuzz target's body: the first byte picks the version, the rest is a
/// Fetch response body, bounds-checked by the guard, decoded, then every partition's records.
fn fetch_response_target(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let span = (FETCH_VERSIONS.1 - FETCH_VERSIONS.0 + 1) as u8;
    let version = FETCH_VERSIONS.0 + i16::from(selector % span);
    if check_response_body(ApiKey::Fetch, version, body).is_err() {
        return;
    }
    let Ok(response) = FetchResponse::decode(&mut Bytes::copy_from_slice(body), version) else {
        return;
    };
    for topic in &response.responses {
        let name: Arc<str> = if version >= 13 {
            topic.topic_id.to_string().into()
        } else {
            topic.topic.0.as_str().into()
        };
        for partition in &topic.partitions {
            if let Some(records) = &partition.records {
                let ctx = BatchContext::new(name.clone(), partition.partition_index)
                    .with_max_decompressed(1 << 20);
                let _ = decode_batches(records.clone(), &ctx);
            }
        }
    }
}

#[test]
fn fuzz_seeds_and_captured_batches_decode_without_panicking() {
    let batches = [
        files_under(&root().join("fuzz/seeds/record_batch")),
        files_under(&root().join("testdata/batches"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .collect(),
    ]
    .concat();
    for path in &batches {
        record_batch_target(&std::fs::read(path).unwrap());
    }
    let responses = files_under(&root().join("fuzz/seeds/fetch_response"));
    for path in &responses {
        fetch_response_target(&std::fs::read(path).unwrap());
    }
    // The seeds are committed with the fuzz crate, so there is always something to run.
    assert!(batches.len() >= 10, "only {} batch seeds", batches.len());
    assert!(!responses.is_empty(), "no fetch response seeds");
}

/// Encodes a Fetch response body holding `records` for one partition of topic "t", with the
/// version-selector byte the `fetch_response` target reads first.
fn fetch_seed(version: i16, records: Bytes) -> Vec<u8> {
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_high_watermark(1000)
        .with_records(Some(records));
    let topic = FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("t")))
        .with_topic_id(uuid::Uuid::from_u128(0x1234))
        .with_partitions(vec![partition]);
    let response = FetchResponse::default().with_responses(vec![topic]);
    let mut body = bytes::BytesMut::new();
    response.encode(&mut body, version).expect("encodes");
    let mut seed = vec![(version - FETCH_VERSIONS.0) as u8];
    seed.extend_from_slice(&body);
    seed
}

/// The committed fuzz seeds are exactly what the encoder makes today. After a deliberate encoder
/// change, regenerate them with `KAFKA_ONCE_WRITE_SEEDS=1 cargo test fuzz_seeds_are_current`.
#[test]
fn fuzz_seeds_are_current() {
    let mut batches: Vec<(String, Bytes)> = Vec::new();
    for compression in Compression::ALL {
        batches.push((
            format!("ours_{compression}"),
            encode(&sample_records(), compression),
        ));
    }
    let marker = encode_control_batch(
        &ControlRecord::marker(true, 1),
        0,
        &EncodeOptions::default(),
    );
    batches.push(("ours_control_commit".into(), marker.unwrap()));
    let vectors = include_str!("java_vectors.txt");
    for line in vectors
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, data) = line.split_once(' ').unwrap();
        batches.push((format!("java_{name}"), hex(data).into()));
    }
    let two = [batches[0].1.to_vec(), batches[3].1.to_vec()].concat();
    batches.push((
        "ours_two_batches_partial_tail".into(),
        two[..two.len() - 10].to_vec().into(),
    ));

    let mut files: Vec<(std::path::PathBuf, Vec<u8>)> = Vec::new();
    let dir = root().join("fuzz/seeds/record_batch");
    for (name, data) in &batches {
        files.push((dir.join(format!("{name}.bin")), data.to_vec()));
    }
    let dir = root().join("fuzz/seeds/fetch_response");
    for (version, (name, data)) in [4, 7, 11, 12, 13, 16, 18].into_iter().zip(&batches) {
        files.push((
            dir.join(format!("v{version}_{name}.bin")),
            fetch_seed(version, data.clone()),
        ));
    }
    let write = std::env::var_os("KAFKA_ONCE_WRITE_SEEDS").is_some();
    for (path, data) in files {
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &data).unwrap();
        } else {
            let committed = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; regenerate the seeds", path.display()));
            assert!(
                committed == data,
                "{} differs from what the encoder makes now; regenerate the seeds",
                path.display()
            );
        }
    }
}
