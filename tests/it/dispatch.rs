//! The exactly-once runtime in process against the real broker: every record completes once,
//! commits follow completions, ordering modes hold, failures retry, dead-letter or halt.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_once::cluster::NewTopic;
use kafka_once::config::{AutoOffsetReset, ClientConfig};
use kafka_once::consumer::TopicPartition;
use kafka_once::consumer::group::GroupConsumer;
use kafka_once::dispatch::{
    FailurePolicy, KafkaMessage, KafkaOnce, Ordering, RetryPolicy, WorkflowContext, WorkflowError,
};
use kafka_once::producer::{Producer, ProducerRecord};
use tokio::time::Instant;

use crate::common;

const DEADLINE: Duration = Duration::from_secs(60);

pub fn runtime_config(group: &str) -> ClientConfig {
    common::config()
        .to_builder()
        .group_id(group)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(300))
        .fetch_max_wait(Duration::from_millis(100))
        .build()
        .unwrap()
}

/// Creates `topic` with `partitions` and produces `n` records keyed `k{i % 50}`, value `i`.
pub async fn produce(topic: &str, partitions: i32, n: usize) {
    let cluster = common::cluster().await;
    cluster
        .create_topic(NewTopic::new(topic, partitions))
        .await
        .unwrap();
    let producer = Producer::new(common::config()).await.unwrap();
    let mut deliveries = Vec::new();
    for i in 0..n {
        let r = ProducerRecord::new(topic, i.to_string()).key(format!("k{}", i % 50));
        deliveries.push(producer.send(r).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await;
}

/// The group's committed offsets for every partition of `topic`.
pub async fn committed(group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer = GroupConsumer::new(runtime_config(group)).await.unwrap();
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    let c = consumer.committed(&tps).await.unwrap();
    consumer.close().await;
    c.into_iter().map(|(tp, o)| (tp.partition, o.offset)).collect()
}

/// Runs `app` until `done` holds (checked every 50 ms) or the deadline, then shuts it down.
async fn run_until(app: Arc<KafkaOnce>, done: impl Fn(&KafkaOnce) -> bool) {
    let handle = app.shutdown_handle();
    let runner = {
        let app = app.clone();
        tokio::spawn(async move { app.run().await })
    };
    let start = Instant::now();
    while !done(&app) {
        assert!(start.elapsed() < DEADLINE, "timed out; metrics {:?}", app.metrics());
        assert!(!runner.is_finished(), "the app stopped early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.shutdown();
    runner.await.unwrap().unwrap();
}

fn processed(app: &KafkaOnce) -> u64 {
    app.metrics().iter().map(|m| m.processed + m.dead_lettered).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_completes_once_and_the_commit_follows() {
    let topic = common::unique("once");
    let group = common::unique("once-g");
    produce(&topic, 3, 1500).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    app.kafka_consumer(runtime_config(&group), [topic.clone()])
        .retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        })
        .workflow(move |ctx: WorkflowContext, msg: KafkaMessage| {
            let c = c.clone();
            async move {
                c.fetch_add(1, AtomicOrdering::SeqCst);
                // Every 7th record fails its first attempt.
                if msg.offset() % 7 == 0 && ctx.attempt() == 1 {
                    return Err::<(), WorkflowError>("first attempt fails".into());
                }
                let key = format!("{}/{}", msg.partition(), msg.offset());
                ctx.transaction(|tx| {
                    let n = tx.get("done", key.as_bytes())?.map_or(0, |v| v[0]);
                    tx.put("done", key.as_bytes(), &[n + 1])
                })?;
                Ok(())
            }
        })
        .unwrap();
    run_until(app.clone(), |a| processed(a) >= 1500).await;
    let metrics = &app.metrics()[0];
    let done = app.journal().state_scan("done").unwrap();
    assert_eq!(done.len(), 1500);
    assert!(done.iter().all(|(_, v)| v[..] == [1]), "a record completed twice");
    assert_eq!(metrics.processed, 1500);
    assert!(metrics.retried > 0 && metrics.failed_attempts == metrics.retried);
    let committed = committed(&group, &topic, 3).await;
    let total: i64 = committed.values().sum();
    assert_eq!(total, 1500, "committed {committed:?}");
    // Committed and pruned: the journal keeps nothing of this group.
    let left = app.journal().entries().count();
    assert_eq!(left, 0, "journal entries left after the final commit");
}
