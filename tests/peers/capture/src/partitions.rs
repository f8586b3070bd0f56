//! Partition-for-key vectors from the Java client's default partitioner, for the producer's
//! murmur2 partitioner tests: `testdata/partitioner/murmur2.json`. Needs no broker.

use std::path::Path;
use std::process::Stdio;

use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::model::{Data, base64};
use crate::run::repo_root;

const PARTITION_COUNTS: [u32; 7] = [1, 2, 3, 7, 12, 100, 1000];

/// The keys: text of assorted lengths (murmur2 handles 0..3 trailing bytes separately), non-ASCII
/// text, and pseudo-random binary keys.
fn keys() -> Vec<Data> {
    let mut out: Vec<Data> = [
        "",
        "a",
        "ab",
        "abc",
        "abcd",
        "abcde",
        "ünïcødé",
        "日本語",
        "🦀",
    ]
    .iter()
    .map(|s| Data::text(s))
    .collect();
    out.extend((0..100).map(|i| Data::Utf8(format!("key-{i}"))));
    out.push(Data::Utf8("x".repeat(1000)));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for len in 1..=40 {
        let bytes = (0..len)
            .map(|_| {
                // xorshift64: deterministic, no dependency.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        out.push(Data::Bytes(bytes));
    }
    out
}

async fn java(args: &[&str], input: &str) -> Result<Vec<i64>, String> {
    let mut child = Command::new(repo_root().join("tests/peers/java/peer.sh"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("java peer: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(input.as_bytes())
        .await
        .map_err(|e| format!("java peer stdin: {e}"))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("java peer: {e}"))?;
    if !out.status.success() {
        return Err(format!("java peer partition failed ({})", out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.trim()
                .parse()
                .map_err(|_| format!("java peer printed {l:?}"))
        })
        .collect()
}

pub async fn generate(path: &Path) -> Result<(), String> {
    let keys = keys();
    let input: String = keys.iter().map(|k| base64(&k.bytes()) + "\n").collect();
    let hashes = java(&["partition", "--hash", "--base64"], &input).await?;
    let mut partitions = Map::new();
    for n in PARTITION_COUNTS {
        let p = java(
            &["partition", "--partitions", &n.to_string(), "--base64"],
            &input,
        )
        .await?;
        if p.len() != keys.len() {
            return Err(format!(
                "java peer printed {} partitions for {} keys",
                p.len(),
                keys.len()
            ));
        }
        partitions.insert(n.to_string(), json!(p));
    }
    if hashes.len() != keys.len() {
        return Err("java peer printed the wrong number of hashes".into());
    }
    let doc = json!({
        "description": "Partition of keyed records under the Java client's default partitioner \
                        (kafka-clients 4.1.1, BuiltInPartitioner.partitionForKey): \
                        Utils.toPositive(Utils.murmur2(key)) % partitions, where toPositive is \
                        `n & 0x7fffffff`. `murmur2` is the raw signed 32-bit hash of each key; \
                        `partitions` maps a partition count to the partition of each key, in the \
                        order of `keys`. Made by tests/peers/capture (`capture partitions`).",
        "keys": keys.iter().map(Data::to_json).collect::<Vec<Value>>(),
        "murmur2": hashes,
        "partitions": partitions,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string(&doc).expect("json") + "\n")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "wrote {} keys × {} partition counts to {}",
        keys.len(),
        PARTITION_COUNTS.len(),
        path.display()
    );
    Ok(())
}
