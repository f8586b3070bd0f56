//! Golden data: record batches written by real producers (kcat/librdkafka and the Java client),
//! captured from a real broker into `testdata/batches/` (see `testdata/README.md`), decoded here
//! and compared field by field with what the producers were told to send. The corrupt variants
//! (`testdata/batches/corrupt.json`) must give their typed errors.
//!
//! The stored files need no broker. `kcat_batches_decode_live` does: kcat produces to the shared
//! broker with every codec, and our connection fetches and our decoder reads what it wrote.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_once::cluster::{Cluster, NewTopic};
use kafka_once::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_once::kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_once::kafka_protocol::protocol::StrBytes;
use kafka_once::protocol::ErrorCode;
use kafka_once::protocol::records::{
    BatchContext, BatchHeader, ControlKind, DecodedBatches, RecordError, TimestampType,
    decode_batches,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

fn batches_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/batches")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_bin(name: &str) -> Bytes {
    let path = batches_dir().join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Standard base64 (padding optional), for the expectations' `{"base64": ...}`.
pub fn unbase64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|&x| x == c)
            .unwrap_or_else(|| panic!("bad base64 character {:?}", c as char));
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The bytes an expectation describes: `null`, `{"utf8"}`, `{"base64"}` or
/// `{"generator": "mod251", "len"}` (byte `i` is `i % 251`).
fn expected_bytes(v: &Value) -> Option<Vec<u8>> {
    if v.is_null() {
        return None;
    }
    if let Some(s) = v.get("utf8").and_then(Value::as_str) {
        return Some(s.as_bytes().to_vec());
    }
    if let Some(s) = v.get("base64").and_then(Value::as_str) {
        return Some(unbase64(s));
    }
    match (
        v.get("generator").and_then(Value::as_str),
        v.get("len").and_then(Value::as_u64),
    ) {
        (Some("mod251"), Some(len)) => Some((0..len).map(|i| (i % 251) as u8).collect()),
        _ => panic!("unknown bytes form in expectation: {v}"),
    }
}

/// Short, readable form of bytes for failure messages.
fn show(b: Option<&[u8]>) -> String {
    match b {
        None => "null".into(),
        Some(b) if b.len() > 80 => format!("{} bytes", b.len()),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
    }
}

fn timestamp_matches(expected: &Value, actual: i64) -> bool {
    match expected {
        Value::Number(n) => n.as_i64() == Some(actual),
        w => match (w["between"][0].as_i64(), w["between"][1].as_i64()) {
            (Some(lo), Some(hi)) => lo <= actual && actual <= hi,
            _ => panic!("unknown timestamp expectation {w}"),
        },
    }
}

fn check_batch_fields(e: &Value, h: &BatchHeader, at: &str, errors: &mut Vec<String>) {
    let timestamp_type = match h.timestamp_type {
        TimestampType::CreateTime => "create",
        TimestampType::LogAppendTime => "log_append",
    };
    let actual = json!({
        "compression": h.compression.as_str(),
        "timestamp_type": timestamp_type,
        "transactional": h.is_transactional,
        "control": h.is_control,
        "producer_id": if h.has_producer_id() { "present" } else { "none" },
    });
    if e["batch"] != actual {
        errors.push(format!("{at}: batch is {actual}, expected {}", e["batch"]));
    }
}

/// Compares decoded batches with an expectation document (the `.json` beside a golden `.bin`,
/// or one the live test builds the same way). Returns every mismatch.
fn compare(name: &str, doc: &Value, decoded: &DecodedBatches) -> Vec<String> {
    let mut errors = Vec::new();
    // Flatten: one item per offset, data records and control markers alike.
    let mut actual = Vec::new();
    for batch in &decoded.batches {
        if batch.header.is_control {
            if !batch.records.is_empty() {
                errors.push(format!(
                    "{name}: control batch at {} hands out {} data records",
                    batch.header.base_offset,
                    batch.records.len()
                ));
            }
            actual.push((batch.header.base_offset, &batch.header, None, batch.control));
        } else {
            for r in &batch.records {
                actual.push((r.offset, &batch.header, Some(r), None));
            }
        }
    }
    let expected = doc["records"].as_array().expect("records array");
    if actual.len() != expected.len() {
        errors.push(format!(
            "{name}: decoded {} records and markers, expected {}",
            actual.len(),
            expected.len()
        ));
    }
    for (e, (offset, header, record, control)) in expected.iter().zip(&actual) {
        let at = format!("{name} offset {}", e["offset"]);
        if e["offset"].as_i64() != Some(*offset) {
            errors.push(format!("{at}: decoded offset {offset}"));
            continue;
        }
        check_batch_fields(e, header, &at, &mut errors);
        match (e.get("control").and_then(Value::as_str), record, control) {
            (Some(kind), None, control) => {
                let want = if kind == "commit" {
                    ControlKind::Commit
                } else {
                    ControlKind::Abort
                };
                match control {
                    Some(c) if c.kind == want => {}
                    other => {
                        errors.push(format!("{at}: control record {other:?}, expected {kind}"))
                    }
                }
                // A marker's timestamp is the batch's (the coordinator's clock).
                if !timestamp_matches(&e["timestamp"], header.max_timestamp) {
                    errors.push(format!(
                        "{at}: marker timestamp {}, expected {}",
                        header.max_timestamp, e["timestamp"]
                    ));
                }
            }
            (None, Some(r), None) => {
                if !timestamp_matches(&e["timestamp"], r.timestamp) {
                    errors.push(format!(
                        "{at}: timestamp {}, expected {}",
                        r.timestamp, e["timestamp"]
                    ));
                }
                let key = expected_bytes(&e["key"]);
                if r.key.as_deref() != key.as_deref() {
                    errors.push(format!(
                        "{at}: key {}, expected {}",
                        show(r.key.as_deref()),
                        show(key.as_deref())
                    ));
                }
                let value = expected_bytes(&e["value"]);
                if r.value.as_deref() != value.as_deref() {
                    errors.push(format!(
                        "{at}: value {}, expected {}",
                        show(r.value.as_deref()),
                        show(value.as_deref())
                    ));
                }
                let want_headers: Vec<(String, Option<Vec<u8>>)> = e["headers"]
                    .as_array()
                    .expect("headers array")
                    .iter()
                    .map(|h| {
                        (
                            h["key"].as_str().expect("header key").to_string(),
                            expected_bytes(&h["value"]),
                        )
                    })
                    .collect();
                let got_headers: Vec<(String, Option<Vec<u8>>)> = r
                    .headers
                    .iter()
                    .map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec())))
                    .collect();
                if got_headers != want_headers {
                    errors.push(format!(
                        "{at}: headers {got_headers:?}, expected {want_headers:?}"
                    ));
                }
            }
            (kind, _, control) => errors.push(format!(
                "{at}: expected {}, decoded {}",
                kind.map_or("a data record".to_string(), |k| format!("a {k} marker")),
                if control.is_some() {
                    "a control record"
                } else {
                    "a data record"
                }
            )),
        }
    }
    if decoded.next_offset != doc["next_offset"].as_i64() {
        errors.push(format!(
            "{name}: next_offset {:?}, expected {}",
            decoded.next_offset, doc["next_offset"]
        ));
    }
    if decoded.truncated_tail_bytes != 0 {
        errors.push(format!(
            "{name}: {} bytes reported as a partial tail",
            decoded.truncated_tail_bytes
        ));
    }
    if let Some(n) = doc["observed"]["batches"].as_u64()
        && decoded.batches.len() as u64 != n
    {
        errors.push(format!(
            "{name}: {} batches, the capture counted {n}",
            decoded.batches.len()
        ));
    }
    errors
}

#[test]
fn golden_batches_decode_as_the_producers_sent_them() {
    let mut names: Vec<String> = std::fs::read_dir(batches_dir())
        .expect("testdata/batches exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_string))
        .filter(|n| n != "corrupt")
        .collect();
    names.sort();
    // Every producer and codec of the capture (testdata/README.md): a missing file is a failure.
    for required in [
        "kcat-none",
        "kcat-gzip",
        "kcat-snappy",
        "kcat-lz4",
        "kcat-zstd",
        "kcat-txn-commit",
        "java-none",
        "java-gzip",
        "java-snappy",
        "java-lz4",
        "java-zstd",
        "java-large-none",
        "java-large-zstd",
        "java-txn",
        "java-logappend-lz4",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "testdata/batches/{required}.json is missing"
        );
    }
    let mut errors = Vec::new();
    for name in &names {
        let doc = read_json(&batches_dir().join(format!("{name}.json")));
        let ctx = BatchContext::new(format!("golden-{name}"), 0);
        match decode_batches(read_bin(&format!("{name}.bin")), &ctx) {
            Ok(decoded) => errors.extend(compare(name, &doc, &decoded)),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    assert!(
        errors.is_empty(),
        "{} mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// Whether `err` is the outcome the manifest names.
fn is_expected_error(expect: &str, err: &RecordError) -> bool {
    match expect {
        "crc_mismatch" => matches!(err, RecordError::CrcMismatch { .. }),
        "corrupt" => matches!(err, RecordError::Corrupt { .. }),
        "unsupported_magic" => matches!(err, RecordError::UnsupportedMagic { .. }),
        "decompress" => matches!(err, RecordError::Decompress { .. }),
        "decompress_or_corrupt" => matches!(
            err,
            RecordError::Decompress { .. } | RecordError::Corrupt { .. }
        ),
        other => panic!("unknown expectation {other:?} in corrupt.json"),
    }
}

#[test]
fn corrupt_batches_give_their_typed_errors() {
    let manifest = read_json(&batches_dir().join("corrupt.json"));
    let variants = manifest["variants"].as_array().expect("variants");
    assert!(
        variants.len() >= 10,
        "corrupt.json lists {} variants",
        variants.len()
    );
    let mut errors = Vec::new();
    for v in variants {
        let file = v["file"].as_str().expect("file");
        let expect = v["expect"].as_str().expect("expect");
        let ctx = BatchContext::new("golden-corrupt", 3);
        let result = decode_batches(read_bin(file), &ctx);
        match (expect, result) {
            ("partial_tail", Ok(d)) => {
                let complete = v["complete_batches"].as_u64().expect("complete_batches");
                if d.batches.len() as u64 != complete || d.truncated_tail_bytes == 0 {
                    errors.push(format!(
                        "{file}: {} complete batches and a {}-byte tail, expected {complete} and a \
                         tail",
                        d.batches.len(),
                        d.truncated_tail_bytes
                    ));
                }
                let next = d.batches.last().map(|b| b.header.next_offset());
                if d.next_offset != next {
                    errors.push(format!(
                        "{file}: next_offset {:?} after a partial tail, expected {next:?}",
                        d.next_offset
                    ));
                }
            }
            ("partial_tail", Err(e)) => {
                errors.push(format!("{file}: expected a partial tail, got error {e}"))
            }
            (expect, Ok(d)) => errors.push(format!(
                "{file}: expected {expect}, decoded {} batches",
                d.batches.len()
            )),
            (expect, Err(e)) => {
                if !is_expected_error(expect, &e) {
                    errors.push(format!("{file}: expected {expect}, got {e:?}"));
                }
                let base = v["base_offset"].as_i64();
                if e.base_offset() != base {
                    errors.push(format!(
                        "{file}: error names base offset {:?}, expected {base:?}",
                        e.base_offset()
                    ));
                }
                // The error names where the data came from.
                let text = e.to_string();
                if !text.contains("golden-corrupt/3") {
                    errors.push(format!(
                        "{file}: error {text:?} does not name golden-corrupt/3"
                    ));
                }
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

// ---- live: kcat → broker → our fetch and decoder ------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs kcat as a producer; a missing kcat fails the test (it is a required test tool).
async fn kcat_produce(args: &[&str], input: &str) {
    let spawned = tokio::process::Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("kcat is not installed; the interop tests need it: apt-get install -y kcat")
        }
        Err(e) => panic!("cannot run kcat: {e}"),
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("write to kcat");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("kcat finished within 60 s")
        .expect("kcat ran");
    assert!(
        out.status.success(),
        "kcat {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One READ_UNCOMMITTED fetch of partition 0 from offset 0, with our connection; retried while
/// the new topic's leadership settles.
async fn fetch_records(cluster: &Cluster, topic: &str) -> Bytes {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let meta = cluster
            .topic(topic)
            .await
            .expect("metadata")
            .expect("topic exists");
        let leader = meta.partitions[0].leader;
        let conn = cluster.broker(leader).await.expect("leader connection");
        let version = conn.version_for::<FetchRequest>().expect("fetch version");
        let request = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(8 << 20)
            .with_isolation_level(0)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_topic_id(meta.id)
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(8 << 20)
                            .with_log_start_offset(-1)
                            .with_current_leader_epoch(-1),
                    ]),
            ]);
        let response = conn
            .request_with_timeout(&request, version, Duration::from_secs(10))
            .await
            .expect("fetch response");
        let partition = &response.responses[0].partitions[0];
        let code =
            ErrorCode::from_i16(response.error_code).or(ErrorCode::from_i16(partition.error_code));
        match code {
            None => return partition.records.clone().unwrap_or_default(),
            Some(code) if code.is_retriable() && tokio::time::Instant::now() < deadline => {
                let _ = cluster.refresh_metadata().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some(code) => panic!("fetch {topic}: {code:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kcat_batches_decode_live() {
    let bootstrap = crate::common::bootstrap();
    let cluster = crate::common::cluster().await;
    let filler = "the quick brown fox jumps over the lazy dog; ".repeat(6);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = crate::common::unique(&format!("golden-kcat-live-{codec}"));
        cluster
            .create_topic(NewTopic::new(&topic, 1))
            .await
            .expect("create topic");
        // One run: keyed records with headers; with -Z an empty key or value is null.
        let lines = [
            (Some("k-1"), Some(format!("v-1 {filler}"))),
            (None, Some(format!("no key {filler}"))),
            (Some("tombstone"), None),
            (Some("k-4"), Some("ünïcødé ✓".to_string())),
        ];
        let input: String = lines
            .iter()
            .map(|(k, v)| format!("{}\t{}\n", k.unwrap_or(""), v.as_deref().unwrap_or("")))
            .collect();
        let start = now_ms();
        let compression = format!("compression.codec={codec}");
        kcat_produce(
            &[
                "-P",
                "-b",
                &bootstrap,
                "-t",
                &topic,
                "-p",
                "0",
                "-K",
                "\\t",
                "-Z",
                "-H",
                "trace=abc",
                "-H",
                "dup=1",
                "-H",
                "dup=2",
                "-H",
                "null-header",
                "-X",
                &compression,
                "-X",
                "enable.idempotence=false",
                "-X",
                "linger.ms=100",
            ],
            &input,
        )
        .await;
        let end = now_ms();
        let headers = json!([
            { "key": "trace", "value": { "utf8": "abc" } },
            { "key": "dup", "value": { "utf8": "1" } },
            { "key": "dup", "value": { "utf8": "2" } },
            { "key": "null-header", "value": null },
        ]);
        let records: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                json!({
                    "offset": i,
                    "batch": {
                        "compression": codec, "timestamp_type": "create", "transactional": false,
                        "control": false, "producer_id": "none",
                    },
                    "timestamp": { "between": [start, end] },
                    "key": k.map_or(Value::Null, |k| json!({ "utf8": k })),
                    "value": v.as_ref().map_or(Value::Null, |v| json!({ "utf8": v })),
                    "headers": headers,
                })
            })
            .collect();
        let doc = json!({ "records": records, "next_offset": lines.len() });

        let mut decoded = None;
        for _ in 0..50 {
            let bytes = fetch_records(&cluster, &topic).await;
            let d = decode_batches(bytes, &BatchContext::new(topic.as_str(), 0))
                .unwrap_or_else(|e| panic!("decoding what kcat wrote with {codec}: {e}"));
            if d.next_offset == Some(lines.len() as i64) {
                decoded = Some(d);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let decoded = decoded.expect("all records fetched");
        let errors = compare(&format!("live kcat {codec}"), &doc, &decoded);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }
}
