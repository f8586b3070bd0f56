//! Two instances with separate journals share one group: partitions move between them when one
//! joins, leaves and is SIGKILLed. No record is lost; a record completes in both journals only
//! inside the documented window (completed locally, not yet committed when its instance died),
//! which the test counts, reports and checks against the commits made before the kill.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use kafka_once::consumer::TopicPartition;
use kafka_once::consumer::group::GroupConsumer;
use kafka_once::demo::done_key;
use kafka_once::journal::Journal;
use tokio::process::Child;
use tokio::time::Instant;

use crate::common;
use crate::dispatch::{produce, runtime_config};

const RECORDS: usize = 20_000;
const PARTITIONS: i32 = 6;

fn worker(dir: &Path, name: &str, topic: &str, group: &str) -> Child {
    let journal = dir.join(format!("{name}-journal"));
    let args: [&std::ffi::OsStr; 6] = [
        "--path".as_ref(),
        journal.as_os_str(),
        "--ordering".as_ref(),
        "none".as_ref(),
        "--max-in-flight".as_ref(),
        "128".as_ref(),
    ];
    common::demo_worker(topic, group, &args, &dir.join(format!("{name}.log")))
}

async fn wait_committed(probe: &GroupConsumer, tps: &[TopicPartition], at_least: i64) {
    let start = Instant::now();
    while common::committed(probe, tps).await.values().sum::<i64>() < at_least {
        assert!(start.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn done_counts(journal: &Path) -> HashMap<Vec<u8>, u64> {
    let j = Journal::open(journal).unwrap();
    j.state_scan("done")
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_vec(), u64::from_be_bytes(v[..].try_into().unwrap())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_move_between_two_instances_without_loss() {
    let topic = common::unique("handoff");
    let group = format!("{topic}-g");
    produce(&topic, PARTITIONS, RECORDS).await;
    let dir = tempfile::tempdir().unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let probe = GroupConsumer::new(runtime_config(&group)).await.unwrap();
    let total = RECORDS as i64;

    let mut a = worker(dir.path(), "a", &topic, &group);
    wait_committed(&probe, &tps, total / 10).await;
    // B joins: partitions move from A to B (A revokes, waits, commits).
    let mut b = worker(dir.path(), "b", &topic, &group);
    wait_committed(&probe, &tps, total / 4).await;
    // B leaves cleanly: its partitions go back to A.
    common::terminate(&b);
    assert!(b.wait().await.unwrap().success(), "B did not exit cleanly");
    wait_committed(&probe, &tps, total * 2 / 5).await;
    // B joins again, then A is SIGKILLed: after A's session times out, B owns everything.
    b = worker(dir.path(), "b", &topic, &group);
    wait_committed(&probe, &tps, total / 2).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before_kill = common::committed(&probe, &tps).await;
    a.start_kill().unwrap();
    a.wait().await.unwrap();
    wait_committed(&probe, &tps, total).await;
    common::terminate(&b);
    assert!(b.wait().await.unwrap().success(), "B did not exit cleanly");

    let (da, db) = (
        done_counts(&dir.path().join("a-journal")),
        done_counts(&dir.path().join("b-journal")),
    );
    let mut missing = 0;
    let mut twice = Vec::new();
    let end = common::committed(&probe, &tps).await;
    for (&p, &e) in &end {
        for o in 0..e {
            let k = done_key(p, o).into_bytes();
            let (x, y) = (
                da.get(&k).copied().unwrap_or(0),
                db.get(&k).copied().unwrap_or(0),
            );
            assert!(x <= 1 && y <= 1, "{p}/{o} completed twice in one journal");
            match x + y {
                0 => missing += 1,
                1 => {}
                _ => twice.push((p, o)),
            }
        }
    }
    eprintln!(
        "handoff: {} records, A completed {}, B completed {}, {} in both journals (the kill window), {missing} missing",
        end.values().sum::<i64>(),
        da.len(),
        db.len(),
        twice.len()
    );
    assert_eq!(end.values().sum::<i64>(), total);
    assert_eq!(missing, 0);
    // Every record completed in both journals lies in the window of the kill: at or above the
    // offset committed for its partition just before A died.
    for (p, o) in &twice {
        assert!(
            *o >= before_kill[p],
            "{p}/{o} completed twice outside the kill window (committed before the kill: {before_kill:?})"
        );
    }
    probe.close().await;
}
