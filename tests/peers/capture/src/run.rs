//! Runs one scenario against a broker: create the topic, run the producer, fetch the raw
//! records, check them against the expectation (with an independent header walk and with the
//! Java consumer's view), and write `<name>.bin` and `<name>.json`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_once::cluster::{Cluster, NewTopic};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::batch::{self, Hdr};
use crate::fetch;
use crate::model::{json_bytes, opt_json};
use crate::scenarios::{Producer, Scenario, Step, Txn};

/// `segment.ms` of every golden topic: ten years.
pub const SEGMENT_MS: &str = "315360000000";

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Where the repository is (this crate lives at `tests/peers/capture`).
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    root.canonicalize().unwrap_or(root)
}

fn java_peer() -> PathBuf {
    repo_root().join("tests/peers/java/peer.sh")
}

/// `kcat 1.7.1 (librdkafka 2.0.2)`, from `kcat -V`.
pub async fn kcat_version() -> Result<String, String> {
    let out = Command::new("kcat")
        .arg("-V")
        .output()
        .await
        .map_err(|e| format!("kcat not found ({e}): apt-get install kcat"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("Version "))
        .ok_or("kcat -V printed no version")?;
    let version = line.split_whitespace().nth(1).unwrap_or("?");
    let librdkafka = line
        .split("librdkafka ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("?");
    Ok(format!("kcat {version} (librdkafka {librdkafka})"))
}

pub struct Env<'a> {
    pub cluster: &'a Cluster,
    pub bootstrap: &'a str,
    pub out_dir: &'a Path,
    pub kcat_version: &'a str,
}

/// Timing of one step: wall clock before the producer started and after it exited.
#[derive(Debug, Clone, Copy)]
struct Window(i64, i64);

/// What one scenario's capture produced, checked against its expectation.
struct Captured {
    fetched: fetch::Fetched,
    /// Fetch requests it took to read the topic from offset 0.
    fetches: usize,
    /// READ_COMMITTED view, for transactional scenarios.
    committed: Option<fetch::Fetched>,
    batches: Vec<Hdr>,
    records: Vec<Value>,
    next_offset: i64,
}

/// Creates the topic, runs the producer, fetches everything back and checks it two ways (header
/// walk, Java consumer). `in_pieces`: read with as many fetches as the broker needs, each from
/// the end of the previous one (the benchmark data), instead of waiting for one fetch to hold
/// everything (the golden data, whose transaction markers are written asynchronously).
async fn capture(env: &Env<'_>, s: &Scenario, in_pieces: bool) -> Result<Captured, String> {
    let topic = format!("golden-{}-{}", s.name, now_ms());
    // Kafka rolls a segment when its first timestamp is older than segment.ms (7 days), and a
    // Fetch reads from one segment only: with explicit 2023 timestamps every producer run would
    // start a new segment and the capture would need one fetch per run. Ten years instead.
    let mut new_topic = NewTopic::new(&topic, 1).config("segment.ms", SEGMENT_MS);
    for (k, v) in &s.topic_configs {
        new_topic = new_topic.config(*k, v.clone());
    }
    env.cluster
        .create_topic(new_topic)
        .await
        .map_err(|e| format!("create {topic}: {e}"))?;

    let mut windows = Vec::new();
    let mut offset = 0i64;
    for (i, step) in s.steps.iter().enumerate() {
        let start = now_ms();
        match s.producer {
            Producer::Kcat => run_kcat(env, s, &topic, step).await?,
            Producer::Java => run_java(env, s, &topic, step, i, offset).await?,
        }
        windows.push(Window(start, now_ms()));
        offset += step.records.len() as i64 + i64::from(step.txn != Txn::None);
    }
    let next_offset = offset;
    let (fetched, fetches) = if in_pieces {
        fetch::fetch_all(env.cluster, &topic, next_offset).await?
    } else {
        (
            fetch::fetch_through(env.cluster, &topic, next_offset).await?,
            1,
        )
    };
    let observed_at = now_ms();
    let committed = if s.steps.iter().any(|st| st.txn != Txn::None) {
        Some(fetch::fetch(env.cluster, &topic, 0, 0, 1).await?)
    } else {
        None
    };

    let records = expected_records(s, &windows, observed_at);
    let (batches, tail) = batch::walk(&fetched.records);
    if tail != 0 {
        return Err(format!(
            "{}: {tail} bytes of partial batch at the end",
            s.name
        ));
    }
    check_headers(s, &batches, &records, next_offset)?;
    check_with_java(env, s, &topic, &records).await?;
    Ok(Captured {
        fetched,
        fetches,
        committed,
        batches,
        records,
        next_offset,
    })
}

/// Captures one golden scenario: `<name>.bin` and `<name>.json` (every expected record).
pub async fn run(env: &Env<'_>, s: &Scenario) -> Result<(), String> {
    let Captured {
        fetched,
        committed,
        batches,
        records,
        next_offset,
        ..
    } = capture(env, s, false).await?;

    let mut observed = Map::new();
    observed.insert("fetch_version".into(), json!(fetched.version));
    observed.insert("high_watermark".into(), json!(fetched.high_watermark));
    observed.insert("batches".into(), json!(batches.len()));
    observed.insert("bytes".into(), json!(fetched.records.len()));
    if let Some(c) = &committed {
        observed.insert("last_stable_offset".into(), json!(c.last_stable_offset));
        observed.insert(
            "aborted_transactions".into(),
            Value::Array(
                c.aborted
                    .iter()
                    .map(|(pid, first)| json!({ "producer_id": pid, "first_offset": first }))
                    .collect(),
            ),
        );
    }
    let doc = json!({
        "name": s.name,
        "description": s.description,
        "producer": producer_json(env, s),
        "broker": format!("Apache Kafka {}", kafka_once::testing::KAFKA_VERSION),
        "topic_configs": std::iter::once(("segment.ms".to_string(), json!(SEGMENT_MS)))
            .chain(s.topic_configs.iter().map(|(k, v)| (k.to_string(), json!(v))))
            .collect::<Map<_, _>>(),
        "partition": 0,
        "fetch": { "isolation_level": 0, "fetch_offset": 0 },
        "compression": s.compression,
        "next_offset": next_offset,
        "records": records,
        "observed": observed,
    });
    let bin = env.out_dir.join(format!("{}.bin", s.name));
    let json_path = env.out_dir.join(format!("{}.json", s.name));
    std::fs::write(&bin, &fetched.records).map_err(|e| format!("{}: {e}", bin.display()))?;
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    std::fs::write(&json_path, text).map_err(|e| format!("{}: {e}", json_path.display()))?;
    eprintln!(
        "captured {:<24} {:>8} bytes, {} batches, offsets 0..{next_offset}",
        s.name,
        fetched.records.len(),
        batches.len()
    );
    Ok(())
}

fn producer_json(env: &Env<'_>, s: &Scenario) -> Value {
    let txn = s.steps.iter().any(|st| st.txn != Txn::None);
    match s.producer {
        Producer::Kcat => json!({
            "client": env.kcat_version,
            "settings": {
                "compression.codec": s.compression,
                "enable.idempotence": txn,
                "transactional.id": if txn { json!("set") } else { Value::Null },
                "acks": "all",
                "linger.ms": 100,
            },
        }),
        Producer::Java => json!({
            "client": format!("kafka-clients {} (Java)", kafka_once::testing::KAFKA_VERSION),
            "settings": {
                "compression.type": s.compression,
                "enable.idempotence": true,
                "transactional.id": if txn { json!("set") } else { Value::Null },
                "acks": "all",
                "linger.ms": 100,
                "max.request.size": s.max_request_size.unwrap_or(1_048_576),
            },
        }),
    }
}

/// The expected decoded form, from what the producer was told and when each step ran.
fn expected_records(s: &Scenario, windows: &[Window], observed_at: i64) -> Vec<Value> {
    let timestamp_type = if s.log_append_time() {
        "log_append"
    } else {
        "create"
    };
    let mut out = Vec::new();
    let mut offset = 0i64;
    for (step, &Window(start, end)) in s.steps.iter().zip(windows) {
        let transactional = step.txn != Txn::None;
        let pid = if s.has_producer_id(step) {
            "present"
        } else {
            "none"
        };
        for rec in &step.records {
            let timestamp = match rec.timestamp {
                Some(t) if !s.log_append_time() => json!(t),
                _ => json!({ "between": [start, end] }),
            };
            let mut entry = json!({
                "offset": offset,
                "batch": {
                    "compression": s.compression,
                    "timestamp_type": timestamp_type,
                    "transactional": transactional,
                    "control": false,
                    "producer_id": pid,
                },
                "timestamp": timestamp,
                "key": opt_json(&rec.key),
                "value": opt_json(&rec.value),
                "headers": rec.headers_json(),
            });
            if step.txn == Txn::Abort {
                entry["aborted"] = json!(true);
            }
            out.push(entry);
            offset += 1;
        }
        if transactional {
            // The coordinator writes the marker after the producer's commit or abort; it is
            // stamped with the coordinator's clock.
            out.push(json!({
                "offset": offset,
                "batch": {
                    "compression": "none",
                    "timestamp_type": timestamp_type,
                    "transactional": true,
                    "control": true,
                    "producer_id": "present",
                },
                "timestamp": { "between": [start, observed_at] },
                "control": if step.txn == Txn::Commit { "commit" } else { "abort" },
            }));
            offset += 1;
        }
    }
    out
}

async fn run_kcat(env: &Env<'_>, s: &Scenario, topic: &str, step: &Step) -> Result<(), String> {
    let mut cmd = Command::new("kcat");
    cmd.args([
        "-P",
        "-b",
        env.bootstrap,
        "-t",
        topic,
        "-p",
        "0",
        "-K",
        "\\t",
        "-Z",
    ])
    .args(["-X", "acks=all", "-X", "linger.ms=100", "-m", "30"]);
    cmd.args(["-X", &format!("compression.codec={}", s.compression)]);
    match step.txn {
        Txn::None => {
            cmd.args(["-X", "enable.idempotence=false"]);
        }
        Txn::Commit => {
            cmd.args(["-X", &format!("transactional.id={topic}-txn")]);
        }
        Txn::Abort => return Err("kcat aborts only on a signal; not a golden scenario".into()),
    }
    // kcat applies -H to every record of a run: all records of a step share one header list.
    let headers = &step.records[0].headers;
    for (k, v) in headers {
        match v {
            Some(v) => cmd.args(["-H", &format!("{k}={}", v.kcat_text())]),
            None => cmd.args(["-H", k]),
        };
    }
    let mut input = String::new();
    for rec in &step.records {
        assert_eq!(&rec.headers, headers, "kcat: one header list per step");
        assert!(rec.timestamp.is_none(), "kcat cannot set timestamps");
        // With -Z an empty key or value is sent as null.
        let key = rec.key.as_ref().map_or("", |k| k.kcat_text());
        let value = rec.value.as_ref().map_or("", |v| v.kcat_text());
        input.push_str(&format!("{key}\t{value}\n"));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("kcat not found ({e}): apt-get install kcat"))?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(input.as_bytes())
        .await
        .map_err(|e| format!("kcat stdin: {e}"))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("kcat: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "kcat failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

async fn run_java(
    env: &Env<'_>,
    s: &Scenario,
    topic: &str,
    step: &Step,
    index: usize,
    first_offset: i64,
) -> Result<(), String> {
    let input = std::env::temp_dir().join(format!("capture-{topic}-{index}.jsonl"));
    let lines: String = step.records.iter().map(|r| r.java_line(0) + "\n").collect();
    std::fs::write(&input, lines).map_err(|e| format!("{}: {e}", input.display()))?;
    let mut cmd = Command::new(java_peer());
    cmd.args(["produce", "--bootstrap", env.bootstrap, "--topic", topic])
        .args([
            "--compression",
            s.compression,
            "--acks",
            "all",
            "--linger-ms",
            "100",
        ])
        .arg("--input")
        .arg(&input);
    if let Some(max) = s.max_request_size {
        cmd.args(["--max-request-size", &max.to_string()]);
    }
    match step.txn {
        Txn::None => {}
        Txn::Commit | Txn::Abort => {
            let end = if step.txn == Txn::Commit {
                "commit"
            } else {
                "abort"
            };
            cmd.args(["--transactional-id", &format!("{topic}-txn"), "--end", end]);
        }
    }
    let out = cmd.output().await.map_err(|e| format!("java peer: {e}"))?;
    let _ = std::fs::remove_file(&input);
    if !out.status.success() {
        return Err(format!(
            "java peer produce failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The producer's own delivery reports: the offsets must be the ones expected.
    let offsets: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["offset"].as_i64())
        .collect();
    let expected: Vec<i64> = (0..step.records.len() as i64)
        .map(|i| first_offset + i)
        .collect();
    if offsets != expected {
        return Err(format!(
            "{}: Java delivered offsets {offsets:?}, expected {expected:?}",
            s.name
        ));
    }
    Ok(())
}

/// Checks every batch header against the expectation of each offset it covers.
fn check_headers(
    s: &Scenario,
    batches: &[Hdr],
    records: &[Value],
    next_offset: i64,
) -> Result<(), String> {
    let fail = |what: String| Err(format!("{}: {what}", s.name));
    let mut expect_offset = 0;
    for b in batches {
        if b.magic != 2 || b.base_offset != expect_offset {
            return fail(format!(
                "batch {b:?} (expected base offset {expect_offset})"
            ));
        }
        if i64::from(b.count) != i64::from(b.last_offset_delta) + 1 {
            return fail(format!("batch {b:?} has gaps"));
        }
        for offset in b.base_offset..b.next_offset() {
            let e = &records[offset as usize]["batch"];
            let actual = json!({
                "compression": b.compression(),
                "timestamp_type": if b.log_append_time() { "log_append" } else { "create" },
                "transactional": b.transactional(),
                "control": b.control(),
                "producer_id": if b.producer_id >= 0 { "present" } else { "none" },
            });
            if *e != actual {
                return fail(format!(
                    "offset {offset}: batch is {actual}, expected {e} (a codec that did not pay \
                     off? make the values more compressible)"
                ));
            }
        }
        expect_offset = b.next_offset();
    }
    if expect_offset != next_offset {
        return fail(format!(
            "batches end at {expect_offset}, expected {next_offset}"
        ));
    }
    Ok(())
}

/// Reads the topic with the Java consumer (READ_UNCOMMITTED) and compares every data record with
/// the expectation: an independent decoder agreeing with what the producer was told.
async fn check_with_java(
    env: &Env<'_>,
    s: &Scenario,
    topic: &str,
    records: &[Value],
) -> Result<(), String> {
    let data: Vec<&Value> = records
        .iter()
        .filter(|r| r.get("control").is_none())
        .collect();
    let out = Command::new(java_peer())
        .args(["consume", "--bootstrap", env.bootstrap, "--topic", topic])
        .args([
            "--count",
            &data.len().to_string(),
            "--isolation",
            "read_uncommitted",
        ])
        .output()
        .await
        .map_err(|e| format!("java peer: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "java peer consume failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let consumed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("java peer output {l:?}: {e}")))
        .collect::<Result<_, _>>()?;
    if consumed.len() != data.len() {
        return Err(format!(
            "{}: Java consumer read {} records, expected {}",
            s.name,
            consumed.len(),
            data.len()
        ));
    }
    for (c, e) in consumed.iter().zip(data) {
        let fail = |what: &str| {
            Err(format!(
                "{} offset {}: Java consumer disagrees on {what}: got {c}, expected {e}",
                s.name, e["offset"]
            ))
        };
        if c["offset"] != e["offset"] || c["partition"] != json!(0) {
            return fail("offset");
        }
        let ts = c["timestamp"].as_i64().unwrap_or(i64::MIN);
        let ts_ok = match &e["timestamp"] {
            Value::Number(n) => n.as_i64() == Some(ts),
            w => {
                let (lo, hi) = (w["between"][0].as_i64(), w["between"][1].as_i64());
                lo.is_some_and(|lo| lo <= ts) && hi.is_some_and(|hi| ts <= hi)
            }
        };
        let ts_type = if e["batch"]["timestamp_type"] == "log_append" {
            "LogAppendTime"
        } else {
            "CreateTime"
        };
        if !ts_ok || c["timestamp_type"] != ts_type {
            return fail("timestamp");
        }
        if json_bytes(&c["key"]) != json_bytes(&e["key"]) || json_bytes(&e["key"]).is_none() {
            return fail("key");
        }
        if json_bytes(&c["value"]) != json_bytes(&e["value"]) || json_bytes(&e["value"]).is_none() {
            return fail("value");
        }
        // (key, value) per header; `None` where the JSON is malformed.
        type Headers = Vec<(Option<String>, Option<Option<Vec<u8>>>)>;
        let headers = |v: &Value| -> Headers {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    (
                        h["key"].as_str().map(str::to_string),
                        json_bytes(&h["value"]),
                    )
                })
                .collect()
        };
        if headers(&c["headers"]) != headers(&e["headers"]) {
            return fail("headers");
        }
    }
    Ok(())
}

/// Captures one benchmark dataset: `<name>.bin` (the `records` bytes of every fetch, complete
/// batches only, concatenated) and a short `<name>.json` (what was produced and how it was read;
/// not every record, which the Java consumer has already checked).
pub async fn run_bench(env: &Env<'_>, s: &Scenario) -> Result<(), String> {
    let c = capture(env, s, true).await?;
    let step = &s.steps[0];
    let value_bytes: usize = step
        .records
        .iter()
        .map(|r| r.value.as_ref().map_or(0, |v| v.bytes().len()))
        .sum();
    let key_bytes: usize = step
        .records
        .iter()
        .map(|r| r.key.as_ref().map_or(0, |k| k.bytes().len()))
        .sum();
    let doc = json!({
        "name": s.name,
        "description": s.description,
        "producer": producer_json(env, s),
        "broker": format!("Apache Kafka {}", kafka_once::testing::KAFKA_VERSION),
        "compression": s.compression,
        "records": step.records.len(),
        "value_bytes": value_bytes,
        "key_bytes": key_bytes,
        "next_offset": c.next_offset,
        "observed": {
            "fetch_version": c.fetched.version,
            "fetches": c.fetches,
            "batches": c.batches.len(),
            "bytes": c.fetched.records.len(),
        },
    });
    let bin = env.out_dir.join(format!("{}.bin", s.name));
    let json_path = env.out_dir.join(format!("{}.json", s.name));
    std::fs::write(&bin, &c.fetched.records).map_err(|e| format!("{}: {e}", bin.display()))?;
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    std::fs::write(&json_path, text).map_err(|e| format!("{}: {e}", json_path.display()))?;
    eprintln!(
        "captured {:<24} {:>8} bytes, {} batches, {} fetches, offsets 0..{}",
        s.name,
        c.fetched.records.len(),
        c.batches.len(),
        c.fetches,
        c.next_offset
    );
    Ok(())
}
