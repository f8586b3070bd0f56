//! Interop with real peers: what our producer writes, kcat (librdkafka) and the Java consumer
//! read back identically; what the Java producer writes, our decoder reads identically.
//!
//! kcat comes from Debian's package and the Java peer is built by Maven (`tests/peers/java`);
//! both must be installed. CI installs them; a missing one fails the test with the fix.

use std::collections::BTreeMap;
use std::process::Command;

use bytes::Bytes;
use kafka_once::cluster::NewTopic;
use kafka_once::config::CompressionType;
use kafka_once::producer::{Producer, ProducerRecord};
use serde_json::{Value, json};

use crate::common;
use crate::golden::unbase64;

/// One record as every reader must see it: (partition, offset) → (timestamp, key, value, headers).
type Expected = BTreeMap<
    (i32, i64),
    (
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(String, Vec<u8>)>,
    ),
>;

const CODECS: [CompressionType; 5] = [
    CompressionType::None,
    CompressionType::Gzip,
    CompressionType::Snappy,
    CompressionType::Lz4,
    CompressionType::Zstd,
];

fn kcat() -> Command {
    if Command::new("kcat").arg("-V").output().is_err() {
        panic!("kcat is not installed; the interop tests need it: apt-get install -y kcat");
    }
    Command::new("kcat")
}

fn java_peer() -> Command {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/java/peer.sh");
    let mut c = Command::new("bash");
    c.arg(script);
    c
}

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Produces text records with our producer and returns what was sent, by partition and offset.
async fn produce_ours(topic: &str, codec: CompressionType) -> Expected {
    let config = common::config_with_codec(codec);
    let producer = Producer::new(config).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..60i64 {
        let key = (i % 4 != 3).then(|| format!("key-{}", i % 7).into_bytes());
        let value = (i % 10 != 9).then(|| format!("value {i} with {codec}").into_bytes());
        let headers = match i % 3 {
            0 => vec![],
            1 => vec![("trace".to_string(), format!("t{i}").into_bytes())],
            _ => vec![
                ("a".to_string(), b"1".to_vec()),
                ("a".to_string(), b"2".to_vec()),
            ],
        };
        let ts = 1_700_000_000_000 + i * 1000;
        let record = ProducerRecord {
            topic: topic.to_string(),
            partition: None,
            key: key.clone().map(Bytes::from),
            value: value.clone().map(Bytes::from),
            headers: headers
                .iter()
                .map(|(k, v)| kafka_once::protocol::records::Header {
                    key: k.clone(),
                    value: Some(Bytes::from(v.clone())),
                })
                .collect(),
            timestamp: Some(ts),
        };
        sent.push((
            producer.send(record).await.unwrap(),
            (ts, key, value, headers),
        ));
    }
    producer.flush().await;
    let mut expected = Expected::new();
    for (delivery, record) in sent {
        let meta = delivery.await.unwrap();
        expected.insert((meta.partition, meta.offset), record);
    }
    producer.close().await;
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_reads_what_we_produce() {
    let cluster = common::cluster().await;
    let bootstrap = common::bootstrap();
    for codec in CODECS {
        let topic = common::unique(&format!("to-kcat-{codec}"));
        cluster
            .create_topic(NewTopic::new(&topic, 3))
            .await
            .unwrap();
        let expected = produce_ours(&topic, codec).await;
        let mut cmd = kcat();
        cmd.args([
            "-C",
            "-b",
            &bootstrap,
            "-t",
            &topic,
            "-o",
            "beginning",
            "-e",
            "-J",
            "-q",
        ]);
        let out = run(cmd, "kcat -C");
        let mut seen = Expected::new();
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap();
            let bytes = |x: &Value| x.as_str().map(|s| s.as_bytes().to_vec());
            let headers = v["headers"]
                .as_array()
                .map(|h| {
                    h.chunks(2)
                        .map(|kv| (kv[0].as_str().unwrap().to_string(), bytes(&kv[1]).unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(v["tstype"], "create", "{codec}");
            seen.insert(
                (
                    v["partition"].as_i64().unwrap() as i32,
                    v["offset"].as_i64().unwrap(),
                ),
                (
                    v["ts"].as_i64().unwrap(),
                    bytes(&v["key"]),
                    bytes(&v["payload"]),
                    headers,
                ),
            );
        }
        assert_eq!(seen, expected, "kcat's view differs for {codec}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_consumer_reads_what_we_produce() {
    let cluster = common::cluster().await;
    let bootstrap = common::bootstrap();
    for codec in CODECS {
        let topic = common::unique(&format!("to-java-{codec}"));
        cluster
            .create_topic(NewTopic::new(&topic, 3))
            .await
            .unwrap();
        let expected = produce_ours(&topic, codec).await;
        let mut cmd = java_peer();
        cmd.args(["consume", "--bootstrap", &bootstrap, "--topic", &topic])
            .args([
                "--count",
                &expected.len().to_string(),
                "--timeout-ms",
                "60000",
            ]);
        let out = run(cmd, "Java peer consume");
        let mut seen = Expected::new();
        let bytes = |x: &Value| x.get("base64").and_then(Value::as_str).map(unbase64);
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap();
            let headers = v["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let key = match &h["key"] {
                        Value::String(s) => s.clone(),
                        other => String::from_utf8(bytes(other).unwrap()).unwrap(),
                    };
                    (key, bytes(&h["value"]).unwrap())
                })
                .collect();
            seen.insert(
                (
                    v["partition"].as_i64().unwrap() as i32,
                    v["offset"].as_i64().unwrap(),
                ),
                (
                    v["timestamp"].as_i64().unwrap(),
                    bytes(&v["key"]),
                    bytes(&v["value"]),
                    headers,
                ),
            );
        }
        assert_eq!(
            seen, expected,
            "the Java consumer's view differs for {codec}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_read_what_the_java_producer_writes() {
    let cluster = common::cluster().await;
    let bootstrap = common::bootstrap();
    for codec in CODECS {
        let topic = common::unique(&format!("from-java-{codec}"));
        cluster
            .create_topic(NewTopic::new(&topic, 1))
            .await
            .unwrap();
        let mut input = String::new();
        for i in 0..40i64 {
            let key = if i % 5 == 4 {
                Value::Null
            } else {
                json!({"utf8": format!("k{i}")})
            };
            let value = if i % 7 == 6 {
                Value::Null
            } else {
                json!({"utf8": format!("java value {i}")})
            };
            let line = json!({
                "key": key, "value": value, "timestamp": 1_600_000_000_000i64 + i,
                "headers": [{"key": "n", "value": {"utf8": i.to_string()}}], "partition": 0
            });
            input.push_str(&line.to_string());
            input.push('\n');
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("records.jsonl");
        std::fs::write(&file, input).unwrap();
        let mut cmd = java_peer();
        cmd.args(["produce", "--bootstrap", &bootstrap, "--topic", &topic])
            .args(["--compression", &codec.to_string(), "--input"])
            .arg(&file);
        run(cmd, "Java peer produce");

        let records = common::fetch_all(&cluster, &topic, 0).await;
        assert_eq!(records.len(), 40, "{codec}");
        for (i, r) in records.iter().enumerate() {
            let i = i as i64;
            assert_eq!(r.offset, i);
            assert_eq!(r.timestamp, 1_600_000_000_000 + i, "{codec}");
            let key = (i % 5 != 4).then(|| format!("k{i}"));
            assert_eq!(
                r.key.as_deref(),
                key.as_deref().map(str::as_bytes),
                "{codec}"
            );
            let value = (i % 7 != 6).then(|| format!("java value {i}"));
            assert_eq!(
                r.value.as_deref(),
                value.as_deref().map(str::as_bytes),
                "{codec}"
            );
            assert_eq!(r.headers.len(), 1);
            assert_eq!(r.headers[0].key, "n");
            assert_eq!(
                r.headers[0].value.as_deref(),
                Some(i.to_string().as_bytes())
            );
        }
    }
}
