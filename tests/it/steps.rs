//! Checkpointed steps through SIGKILL: a three-step workflow whose process is killed right after
//! step k (for each k); after the restart the steps before k are not run again (the side-effect
//! ledger written by each step shows every step once per record) and the later steps run once.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_once::consumer::TopicPartition;
use kafka_once::consumer::group::GroupConsumer;
use kafka_once::journal::Journal;
use tokio::time::Instant;

use crate::common;
use crate::dispatch::{produce, runtime_config};

const RECORDS: usize = 5;

async fn worker(
    dir: &std::path::Path,
    topic: &str,
    group: &str,
    kill_after: u32,
) -> std::process::ExitStatus {
    let journal = dir.join("journal");
    let ledger = dir.join("ledger.txt");
    let kill_after = kill_after.to_string();
    let args: [&std::ffi::OsStr; 11] = [
        "--path".as_ref(),
        journal.as_os_str(),
        "--ledger".as_ref(),
        ledger.as_os_str(),
        "--ordering".as_ref(),
        "partition".as_ref(),
        "--instance-id".as_ref(),
        "steps-worker".as_ref(),
        "--steps".as_ref(),
        "--kill-after-step".as_ref(),
        kill_after.as_ref(),
    ];
    let mut child = common::demo_worker(topic, group, &args, &dir.join("worker.log"));
    let probe = GroupConsumer::new(runtime_config(group)).await.unwrap();
    let tp = [TopicPartition::new(topic, 0)];
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let done = probe
            .committed(&tp)
            .await
            .ok()
            .and_then(|c| c.values().next().map(|o| o.offset))
            .unwrap_or(0);
        if done >= RECORDS as i64 {
            common::terminate(&child);
            break child.wait().await.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "worker made no progress"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    probe.close().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_step_k_reruns_only_the_steps_after_k() {
    for k in 1..=3u32 {
        let topic = common::unique(&format!("steps-{k}"));
        let group = format!("{topic}-g");
        produce(&topic, 1, RECORDS).await;
        let dir = tempfile::tempdir().unwrap();
        let first = worker(dir.path(), &topic, &group, k).await;
        assert!(
            !first.success(),
            "k={k}: the worker should have died after step {k}"
        );
        assert!(dir.path().join("ledger.killed").exists());
        let second = worker(dir.path(), &topic, &group, k).await;
        assert!(
            second.success(),
            "k={k}: the restarted worker should finish cleanly"
        );

        let ledger = std::fs::read_to_string(dir.path().join("ledger.txt")).unwrap();
        let mut runs: BTreeMap<(i64, String), Vec<u32>> = BTreeMap::new();
        for line in ledger.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 4, "{line}");
            runs.entry((f[1].parse().unwrap(), f[2].to_string()))
                .or_default()
                .push(f[3].parse().unwrap());
        }
        assert_eq!(runs.len(), RECORDS * 3, "k={k}: {runs:?}");
        for ((offset, step), attempts) in &runs {
            assert_eq!(attempts.len(), 1, "k={k}: {offset}/{step} ran {attempts:?}");
        }
        // The killed record's steps after k ran in its second attempt, the ones up to k in its
        // first.
        for i in 1..=3u32 {
            let want = if i <= k { 1 } else { 2 };
            assert_eq!(
                runs[&(0, format!("step-{i}"))],
                vec![want],
                "k={k} step {i}"
            );
        }
        let journal = Journal::open(dir.path().join("journal")).unwrap();
        let done = journal.state_scan("done").unwrap();
        assert_eq!(done.len(), RECORDS);
        assert!(done.iter().all(|(_, v)| v[..] == 1u64.to_be_bytes()));
        // Completed and committed: the steps were pruned with the records.
        assert_eq!(journal.entries().count(), 0);
    }
}
