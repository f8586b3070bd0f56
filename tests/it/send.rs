//! `ctx.send` exactly once: the output topic holds one copy of every input record, also when the
//! worker dies between the broker's acknowledgement and the step's checkpoint (a fail point),
//! and through random SIGKILLs.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_once::cluster::NewTopic;
use kafka_once::config::AutoOffsetReset;
use kafka_once::consumer::{Consumer, TopicPartition};
use kafka_once::demo::{DriveOptions, drive};
use kafka_once::dispatch::SEND_ID;

use crate::common;
use crate::crash::produce_counted;
use crate::dispatch::runtime_config;

/// Every record of `topic`, as send-id → copies.
async fn read_all(topic: &str, partitions: i32, expect: usize) -> BTreeMap<String, usize> {
    let config = common::config()
        .to_builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .build()
        .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    let tps: Vec<(&str, i32)> = (0..partitions).map(|p| (topic, p)).collect();
    consumer.assign(&tps).await.unwrap();
    let mut ids = BTreeMap::new();
    let mut n = 0;
    // Read what is expected, then a little longer to catch any extra copy.
    let mut wait = Duration::from_secs(30);
    while let Ok(r) = tokio::time::timeout(wait, consumer.recv()).await {
        let r = r.unwrap();
        let id = r
            .headers
            .iter()
            .find(|h| h.key == SEND_ID)
            .and_then(|h| h.value.clone())
            .map(|v| String::from_utf8_lossy(&v).to_string())
            .expect("every copy has a send id");
        *ids.entry(id).or_insert(0) += 1;
        n += 1;
        if n >= expect {
            wait = Duration::from_secs(2);
        }
    }
    consumer.close().await;
    ids
}

fn worker_args(topic: &str, group: &str, dir: &std::path::Path, out: &str) -> Vec<String> {
    [
        "--bootstrap",
        &common::bootstrap(),
        "--topic",
        topic,
        "--group",
        group,
        "--path",
        dir.join("journal").to_str().unwrap(),
        "--ordering",
        "partition",
        "--instance-id",
        "send-worker",
        "--send-to",
        out,
        "--max-in-flight",
        "64",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn send_run(records: usize, kills: usize, fail_point: bool) {
    let topic = common::unique("send-in");
    let out = format!("{topic}-out");
    let group = format!("{topic}-g");
    common::cluster()
        .await
        .create_topic(NewTopic::new(&out, 3))
        .await
        .unwrap();
    let (end, _) = produce_counted(&topic, 2, records).await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("after-send.killed");
    let opts = DriveOptions {
        exe: env!("CARGO_BIN_EXE_kafka-once").into(),
        worker_args: worker_args(&topic, &group, dir.path(), &out),
        log: dir.path().join("worker.log"),
        probe_config: runtime_config(&group),
        end_offsets: end
            .iter()
            .map(|(&p, &e)| (TopicPartition::new(topic.as_str(), p), e))
            .collect(),
        kills,
        kill_after: Duration::from_millis(300)..Duration::from_millis(1500),
        deadline: Duration::from_secs(240),
        env: if fail_point {
            vec![(
                "KAFKA_ONCE_FAILPOINTS".into(),
                format!("after-send:{}", marker.display()),
            )]
        } else {
            Vec::new()
        },
        restart_crashed: fail_point,
    };
    drive(&opts, |_| {}).await.unwrap_or_else(|e| {
        let log = std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default();
        panic!(
            "{e}\n{}",
            log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
        )
    });
    if fail_point {
        assert!(marker.exists(), "the fail point was never reached");
    }
    let ids = read_all(&out, 3, records).await;
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(ids.len(), records, "one copy per input record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_ack_and_the_checkpoint_sends_no_second_copy() {
    send_run(300, 0, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_under_sigkills_leaves_one_copy_per_input_record() {
    send_run(10_000, 20, false).await;
}
