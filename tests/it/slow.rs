//! A handler far slower than the fetch rate: the runtime (a child process) must keep its memory
//! bounded, pausing the fetcher instead of buffering the topic, and stay in its group (no
//! rebalance) while commits keep following the completions.

use std::time::Duration;

use kafka_once::cluster::NewTopic;
use kafka_once::consumer::TopicPartition;
use kafka_once::consumer::group::GroupConsumer;
use kafka_once::producer::{Producer, ProducerRecord};
use tokio::time::Instant;

use crate::common;
use crate::dispatch::runtime_config;

const PARTITIONS: i32 = 3;
const RECORDS: usize = 100_000;
const VALUE: usize = 1_000;

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_keeps_memory_bounded_and_the_member_in_its_group() {
    let topic = common::unique("slow");
    let group = format!("{topic}-g");
    common::cluster()
        .await
        .create_topic(NewTopic::new(&topic, PARTITIONS))
        .await
        .unwrap();
    // 100 MB of records, all there before the worker starts.
    let producer = Producer::new(common::config()).await.unwrap();
    let value = "v".repeat(VALUE);
    let mut pending = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let r = ProducerRecord::new(&topic, value.clone()).key(format!("k{}", i % 97));
        pending.push(producer.send(r).await.unwrap());
    }
    for d in pending {
        d.await.unwrap();
    }
    producer.close().await;

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let log = dir.path().join("worker.log");
    // 32 in flight, 20 ms each: at most 1,600 records/s, a small fraction of the fetch rate.
    let args: [&std::ffi::OsStr; 8] = [
        "--path".as_ref(),
        journal.as_os_str(),
        "--ordering".as_ref(),
        "none".as_ref(),
        "--max-in-flight".as_ref(),
        "32".as_ref(),
        "--delay-ms".as_ref(),
        "20".as_ref(),
    ];
    let mut worker = common::demo_worker(&topic, &group, &args, &log);
    let pid = worker.id().unwrap();
    let run_for = Duration::from_secs(25); // two and a half session timeouts
    let start = Instant::now();
    let mut peak_rss = 0;
    while start.elapsed() < run_for {
        if let Ok(Some(status)) = worker.try_wait() {
            panic!(
                "the worker exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if let Some((rss, _)) = rss_kib(pid) {
            peak_rss = peak_rss.max(rss);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, hwm) = rss_kib(pid).expect("the worker runs");
    let probe = GroupConsumer::new(runtime_config(&group)).await.unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let committed = common::committed(&probe, &tps).await;
    probe.close().await;
    // The log up to now (stopping revokes the partitions).
    let text = std::fs::read_to_string(&log).unwrap();
    let status = common::stop_worker(&mut worker).await;
    assert!(status.success(), "{status}");
    let done: i64 = committed.values().sum();
    eprintln!(
        "slow handler: peak RSS {} MiB (VmHWM {} MiB) over {run_for:?} with {} MB in the topic; committed {done}: {committed:?}",
        peak_rss / 1024,
        hwm / 1024,
        RECORDS * VALUE / 1_000_000
    );
    // Buffering the topic would take more than its 100 MB.
    assert!(
        hwm < 80 * 1024,
        "peak RSS {} MiB: the slow handler let the buffer grow",
        hwm / 1024
    );
    // Work went on and was committed, far below the end (the handler is the bottleneck).
    assert!(
        (5_000..RECORDS as i64 / 2).contains(&done),
        "committed {done}"
    );
    // One generation throughout: each partition assigned once, no rebalance, nothing revoked or lost.
    assert_eq!(
        text.matches("partition assigned").count(),
        PARTITIONS as usize,
        "{text}"
    );
    for bad in [
        "partitions lost",
        "partitions revoked",
        "rebalancing",
        "evicted",
    ] {
        assert!(!text.contains(bad), "worker log has {bad:?}:\n{text}");
    }
}
