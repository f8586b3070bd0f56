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
    WorkflowStatus,
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
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let c = consumer.committed(&tps).await.unwrap();
    consumer.close().await;
    c.into_iter()
        .map(|(tp, o)| (tp.partition, o.offset))
        .collect()
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
        assert!(
            start.elapsed() < DEADLINE,
            "timed out; metrics {:?}",
            app.metrics()
        );
        assert!(!runner.is_finished(), "the app stopped early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.shutdown();
    runner.await.unwrap().unwrap();
}

fn processed(app: &KafkaOnce) -> u64 {
    app.metrics()
        .iter()
        .map(|m| m.processed + m.dead_lettered)
        .sum()
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
                })
                .await?;
                Ok(())
            }
        })
        .unwrap();
    run_until(app.clone(), |a| processed(a) >= 1500).await;
    let metrics = &app.metrics()[0];
    let done = app.journal().state_scan("done").unwrap();
    assert_eq!(done.len(), 1500);
    assert!(
        done.iter().all(|(_, v)| v[..] == [1]),
        "a record completed twice"
    );
    assert_eq!(metrics.processed, 1500);
    assert!(metrics.retried > 0 && metrics.failed_attempts == metrics.retried);
    let committed = committed(&group, &topic, 3).await;
    let total: i64 = committed.values().sum();
    assert_eq!(total, 1500, "committed {committed:?}");
    // Committed and pruned: the journal keeps nothing of this group.
    let left = app.journal().entries().count();
    assert_eq!(left, 0, "journal entries left after the final commit");
}

/// Produces `values` to one partition of an existing topic.
async fn produce_to(topic: &str, partition: i32, values: &[String]) {
    let producer = Producer::new(common::config()).await.unwrap();
    let mut deliveries = Vec::new();
    for v in values {
        let r = ProducerRecord::new(topic, v.clone())
            .key(format!("key-{}", deliveries.len() % 5))
            .partition(partition);
        deliveries.push(producer.send(r).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await;
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

/// Records per-partition (or per-key) overlap and order as the workflows run.
#[derive(Default)]
struct Watch {
    running: Mutex<HashMap<String, usize>>,
    seen: Mutex<HashMap<String, Vec<i64>>>,
    overlaps: AtomicUsize,
}

async fn ordering_run(ordering: Ordering, lane_of: fn(&KafkaMessage) -> String) -> Arc<Watch> {
    let topic = common::unique("order");
    let group = common::unique("order-g");
    produce(&topic, 3, 600).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
    let watch = Arc::new(Watch::default());
    let w = watch.clone();
    app.kafka_consumer(runtime_config(&group), [topic.clone()])
        .ordering(ordering)
        .workflow(move |_ctx: WorkflowContext, msg: KafkaMessage| {
            let w = w.clone();
            async move {
                let lane = lane_of(&msg);
                {
                    let mut r = w.running.lock().unwrap();
                    let n = r.entry(lane.clone()).or_default();
                    *n += 1;
                    if *n > 1 {
                        w.overlaps.fetch_add(1, AtomicOrdering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_micros(
                    200 + (msg.offset() as u64 * 37) % 800,
                ))
                .await;
                w.seen
                    .lock()
                    .unwrap()
                    .entry(lane.clone())
                    .or_default()
                    .push(msg.offset());
                *w.running.lock().unwrap().get_mut(&lane).unwrap() -= 1;
                Ok::<(), WorkflowError>(())
            }
        })
        .unwrap();
    run_until(app.clone(), |a| processed(a) >= 600).await;
    watch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_order_runs_each_partition_sequentially_by_offset() {
    let watch = ordering_run(Ordering::Partition, |m| m.partition().to_string()).await;
    assert_eq!(watch.overlaps.load(AtomicOrdering::SeqCst), 0);
    let seen = watch.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for (p, offsets) in seen.iter() {
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "partition {p}: {offsets:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_ordering_runs_each_key_sequentially_and_keys_in_parallel() {
    let watch = ordering_run(Ordering::Key, |m| {
        format!(
            "{}/{}",
            m.partition(),
            String::from_utf8_lossy(m.key().unwrap())
        )
    })
    .await;
    assert_eq!(watch.overlaps.load(AtomicOrdering::SeqCst), 0);
    let seen = watch.seen.lock().unwrap();
    assert!(seen.len() > 3, "keys seen: {}", seen.len());
    for (k, offsets) in seen.iter() {
        assert!(
            offsets.windows(2).all(|w| w[1] > w[0]),
            "key {k}: {offsets:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_dead_lettered_once_and_the_partition_moves_on() {
    let topic = common::unique("poison");
    let dlq = format!("{topic}-dlq");
    let group = common::unique("poison-g");
    let cluster = common::cluster().await;
    cluster
        .create_topic(NewTopic::new(&topic, 1))
        .await
        .unwrap();
    cluster.create_topic(NewTopic::new(&dlq, 1)).await.unwrap();
    let values: Vec<String> = (0..40)
        .map(|i| {
            if i == 10 {
                "poison".into()
            } else {
                i.to_string()
            }
        })
        .collect();
    produce_to(&topic, 0, &values).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    app.kafka_consumer(runtime_config(&group), [topic.clone()])
        .in_order(true)
        .retry(quick_retry(3))
        .on_failure(FailurePolicy::DeadLetter { topic: dlq.clone() })
        .workflow(move |_ctx: WorkflowContext, msg: KafkaMessage| {
            let c = c.clone();
            async move {
                c.fetch_add(1, AtomicOrdering::SeqCst);
                if msg.value() == b"poison" {
                    panic!("cannot digest {}", msg.offset());
                }
                Ok::<(), WorkflowError>(())
            }
        })
        .unwrap();
    run_until(app.clone(), |a| processed(a) >= 40).await;
    let m = &app.metrics()[0];
    assert_eq!(
        (m.processed, m.dead_lettered, m.failed_attempts),
        (39, 1, 3)
    );
    assert_eq!(calls.load(AtomicOrdering::SeqCst), 42);
    assert_eq!(committed(&group, &topic, 1).await[&0], 40);
    // The dead-letter topic holds the record once, with the error and its origin.
    let consumer = kafka_once::consumer::Consumer::new(runtime_config(&common::unique("dlq-read")))
        .await
        .unwrap();
    consumer.assign(&[(dlq.as_str(), 0)]).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.value.as_deref(), Some(&b"poison"[..]));
    let header = |k: &str| {
        r.headers
            .iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value.clone())
            .map(|v| String::from_utf8_lossy(&v).to_string())
    };
    assert_eq!(header("kafka-once.offset").as_deref(), Some("10"));
    assert_eq!(header("kafka-once.attempts").as_deref(), Some("3"));
    assert!(
        header("kafka-once.error")
            .unwrap()
            .contains("cannot digest 10")
    );
    let more = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await;
    assert!(more.is_err(), "a second dead-letter copy: {more:?}");
    consumer.close().await;

    // The journal lists it dead-lettered, with the message; `workflows retry` makes it pending
    // and the next run of the app runs the (fixed) workflow on it once, with its original key.
    let records = kafka_once::dispatch::list_workflows(app.journal()).unwrap();
    let [(id, record)] = records.as_slice() else {
        panic!("one workflow record expected: {records:?}");
    };
    assert_eq!(record.status, WorkflowStatus::DeadLettered);
    assert_eq!(
        record.workflow.as_deref(),
        Some(format!("kafka:{group}").as_str())
    );
    assert!(id.ends_with("/0/10"), "{id}");
    let letter: kafka_once::dispatch::DeadLetter =
        serde_json::from_value(record.input.clone()).unwrap();
    assert_eq!(letter.value.as_deref(), Some(&b"poison"[..]));
    let id = id.clone();
    drop(app);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-once"))
            .args(args)
            .arg("--path")
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let listed = cli(&["workflows", "list", "--status", "dead-lettered"]);
    assert_eq!(listed.matches(&id).count(), 1, "{listed}");
    let retried = cli(&["workflows", "retry", &id]);
    assert!(retried.contains("dead-lettered -> pending"), "{retried}");

    let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    app.kafka_consumer(runtime_config(&group), [topic.clone()])
        .in_order(true)
        .on_failure(FailurePolicy::DeadLetter { topic: dlq.clone() })
        .workflow(move |_ctx: WorkflowContext, msg: KafkaMessage| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push((
                    msg.offset(),
                    msg.value().to_vec(),
                    msg.idempotency_key().to_string(),
                ));
                Ok::<(), WorkflowError>(())
            }
        })
        .unwrap();
    let status = |a: &KafkaOnce| {
        kafka_once::dispatch::list_workflows(a.journal())
            .unwrap()
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, r)| r.status)
    };
    run_until(app.clone(), |a| {
        status(a) == Some(WorkflowStatus::Completed)
    })
    .await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(10, b"poison".to_vec(), id.clone())],
        "the retried dead letter ran once and nothing else ran again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_halt_policy_a_poison_record_pins_the_commit() {
    let topic = common::unique("halt");
    let group = common::unique("halt-g");
    let cluster = common::cluster().await;
    cluster
        .create_topic(NewTopic::new(&topic, 2))
        .await
        .unwrap();
    let values: Vec<String> = (0..30)
        .map(|i| {
            if i == 12 {
                "poison".into()
            } else {
                i.to_string()
            }
        })
        .collect();
    produce_to(&topic, 0, &values).await;
    produce_to(
        &topic,
        1,
        &values[..20]
            .iter()
            .map(|v| format!("ok-{v}"))
            .collect::<Vec<_>>(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
    let after_poison = Arc::new(AtomicUsize::new(0));
    let a = after_poison.clone();
    app.kafka_consumer(runtime_config(&group), [topic.clone()])
        .in_order(true)
        .retry(quick_retry(2))
        .on_failure(FailurePolicy::Halt)
        .workflow(move |_ctx: WorkflowContext, msg: KafkaMessage| {
            let a = a.clone();
            async move {
                if msg.value() == b"poison" {
                    return Err::<(), WorkflowError>("poison".into());
                }
                if msg.partition() == 0 && msg.offset() > 12 {
                    a.fetch_add(1, AtomicOrdering::SeqCst);
                }
                Ok(())
            }
        })
        .unwrap();
    // 12 of partition 0 and 20 of partition 1 complete; then partition 0 halts.
    run_until(app.clone(), |a| {
        processed(a) >= 32 && a.metrics()[0].halted.len() == 1 && a.metrics()[0].commits > 0
    })
    .await;
    let m = &app.metrics()[0];
    assert_eq!(m.halted[0].offset, 12);
    assert_eq!(m.halted[0].partition.partition, 0);
    assert_eq!(m.processed, 32);
    assert_eq!(
        after_poison.load(AtomicOrdering::SeqCst),
        0,
        "records after the poison ran"
    );
    // Stopped: the partitions were let go, and with them the records held behind the poison.
    assert_eq!(m.in_flight, 0, "in flight after the runtime stopped");
    let c = committed(&group, &topic, 2).await;
    assert_eq!(c[&0], 12, "the commit must stay at the poison record");
    assert_eq!(c[&1], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_and_recreated_topic_is_processed_again_from_offset_zero() {
    use kafka_once::journal::{Entry, PartitionKey};
    let topic = common::unique("recreate");
    let group = common::unique("recreate-g");
    let cluster = common::cluster().await;
    let old = cluster
        .create_topic(NewTopic::new(&topic, 1))
        .await
        .unwrap();
    produce_to(
        &topic,
        0,
        &(0..20).map(|i| i.to_string()).collect::<Vec<_>>(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let journal = kafka_once::journal::Journal::open(dir.path()).unwrap();
    // The old incarnation's records 0..20 are completed in the journal (as after a crash before
    // any commit).
    let key = |id| PartitionKey {
        group: group.as_str().into(),
        topic: topic.as_str().into(),
        topic_id: id,
        partition: 0,
    };
    for o in 0..20 {
        let done = Entry::Completed {
            attempts: 1,
            at_ms: 0,
        };
        assert!(
            journal
                .complete(&key(old.id).record(o), done)
                .await
                .unwrap()
        );
    }
    cluster.delete_topics(&[topic.as_str()]).await.unwrap();
    let new = loop {
        match cluster.create_topic(NewTopic::new(&topic, 1)).await {
            Ok(t) => break t,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert_ne!(new.id, old.id);
    produce_to(
        &topic,
        0,
        &(0..20).map(|i| format!("new-{i}")).collect::<Vec<_>>(),
    )
    .await;
    // Control: records 0..5 of the new incarnation are completed too; those must be skipped.
    for o in 0..5 {
        let done = Entry::Completed {
            attempts: 1,
            at_ms: 0,
        };
        assert!(
            journal
                .complete(&key(new.id).record(o), done)
                .await
                .unwrap()
        );
    }
    let app = Arc::new(KafkaOnce::with_journal(journal).handle_signals(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    app.kafka_consumer(runtime_config(&group), [topic.clone()])
        .workflow(move |_ctx: WorkflowContext, msg: KafkaMessage| {
            let s = s.clone();
            async move {
                s.lock()
                    .unwrap()
                    .push((msg.offset(), msg.value().to_vec(), msg.topic_id()));
                Ok::<(), WorkflowError>(())
            }
        })
        .unwrap();
    run_until(app.clone(), |a| processed(a) >= 15).await;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let offsets: Vec<i64> = seen.iter().map(|(o, _, _)| *o).collect();
    assert_eq!(offsets, (5..20).collect::<Vec<i64>>());
    assert!(
        seen.iter()
            .all(|(o, v, id)| *v == format!("new-{o}").into_bytes() && *id == new.id)
    );
    assert_eq!(app.metrics()[0].skipped_duplicates, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_follows_the_in_flight_window_not_the_history() {
    const N: u64 = 200_000;
    let topic = common::unique("bounded");
    let group = common::unique("bounded-g");
    produce(&topic, 4, N as usize).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
    app.kafka_consumer(runtime_config(&group), [topic.clone()])
        .max_in_flight(1024)
        .commit_interval(Duration::from_millis(200))
        .workflow(|_ctx: WorkflowContext, _msg: KafkaMessage| async { Ok::<(), WorkflowError>(()) })
        .unwrap();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let s = samples.clone();
    let next = std::sync::atomic::AtomicU64::new(N / 8);
    run_until(app.clone(), move |a| {
        let done = processed(a);
        if done >= next.load(AtomicOrdering::SeqCst) {
            next.fetch_add(N / 8, AtomicOrdering::SeqCst);
            let live = a.journal().entries().count();
            s.lock()
                .unwrap()
                .push((done, live, a.journal().stats().disk_bytes));
        }
        done >= N
    })
    .await;
    let samples = samples.lock().unwrap().clone();
    let live_end = app.journal().entries().count();
    let bytes_end = app.journal().stats().disk_bytes;
    eprintln!(
        "journal over {N} records (processed, live entries, bytes): {samples:?}; at the end {live_end} entries, {bytes_end} bytes"
    );
    assert_eq!(live_end, 0, "entries left after the final commit");
    assert!(samples.len() >= 4);
    // Live entries at any sample stay within a small multiple of the in-flight window, however
    // many records went before.
    for (done, live, _) in &samples {
        assert!(*live <= 20_000, "{live} live entries after {done} records");
    }
    // The bytes on disk do not grow with the history (8 times as many records as at the first
    // sample).
    assert!(
        bytes_end <= samples[0].2 * 3 / 2,
        "{bytes_end} bytes at the end, {} after {} records",
        samples[0].2,
        samples[0].0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transactions_never_run_and_their_gaps_do_not_stall_the_commit() {
    use kafka_once::config::IsolationLevel;
    let topic = common::unique("eo-txn");
    let group = common::unique("eo-txn-g");
    common::cluster()
        .await
        .create_topic(NewTopic::new(&topic, 1))
        .await
        .unwrap();
    let mut committed_values = Vec::new();
    for round in 0..3 {
        for (id, end) in [("a", "abort"), ("c", "commit")] {
            let values: Vec<String> = (0..10).map(|i| format!("{id}-{round}-{i}-{end}")).collect();
            crate::consumer::java_transaction(&topic, &format!("{topic}-{id}"), end, &values);
            if end == "commit" {
                committed_values.extend(values);
            }
        }
    }
    // The consumer's default is read_uncommitted; the runtime reads committed data regardless.
    let config = runtime_config(&group);
    assert_eq!(
        config.consumer().isolation_level(),
        IsolationLevel::ReadUncommitted
    );
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    app.kafka_consumer(config, [topic.clone()])
        .in_order(true)
        .workflow(move |_ctx: WorkflowContext, msg: KafkaMessage| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push((
                    msg.offset(),
                    String::from_utf8_lossy(msg.value()).to_string(),
                ));
                Ok::<(), WorkflowError>(())
            }
        })
        .unwrap();
    let runner = {
        let app = app.clone();
        tokio::spawn(async move { app.run().await })
    };
    // The commit moves past every aborted record and marker, the last marker included: to the
    // end of the log, one past the last committed record (60 records, 6 markers).
    let end = 66;
    let start = Instant::now();
    while committed(&group, &topic, 1).await.get(&0) != Some(&end) {
        assert!(
            start.elapsed() < DEADLINE && !runner.is_finished(),
            "committed {:?}, end {end}; metrics {:?}",
            committed(&group, &topic, 1).await,
            app.metrics()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.shutdown_handle().shutdown();
    runner.await.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    let values: Vec<String> = seen.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(values, committed_values, "only committed records, in order");
    assert_eq!(seen.last().unwrap().0, end - 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_skips_what_the_commits_completion_map_says_is_done() {
    let topic = common::unique("map");
    let group = common::unique("map-g");
    common::cluster()
        .await
        .create_topic(NewTopic::new(&topic, 1))
        .await
        .unwrap();
    produce_to(
        &topic,
        0,
        &(0..50).map(|i| i.to_string()).collect::<Vec<_>>(),
    )
    .await;
    // Instance 1: records 5 and 6 never finish (they block until the revoke grace ends), the
    // others complete; the commit stays at 5 with 7..50 in the completion map.
    let dir1 = tempfile::tempdir().unwrap();
    let app1 = Arc::new(KafkaOnce::open(dir1.path()).unwrap().handle_signals(false));
    app1.kafka_consumer(runtime_config(&group), [topic.clone()])
        .revoke_grace(Duration::from_millis(500))
        .workflow(|_ctx: WorkflowContext, msg: KafkaMessage| async move {
            if msg.offset() == 5 || msg.offset() == 6 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok::<(), WorkflowError>(())
        })
        .unwrap();
    run_until(app1.clone(), |a| {
        processed(a) >= 48 && a.metrics()[0].commits > 0
    })
    .await;
    let c = {
        let consumer = GroupConsumer::new(runtime_config(&group)).await.unwrap();
        let c = consumer
            .committed(&[TopicPartition::new(topic.as_str(), 0)])
            .await
            .unwrap();
        consumer.close().await;
        c.into_values().next().unwrap()
    };
    assert_eq!(c.offset, 5);
    assert!(c.metadata.starts_with("ko1:"), "{:?}", c.metadata);
    // Instance 2, with its own (empty) journal: runs only records 5 and 6. It is in order and
    // slow on record 5, so 6 is held and the partition paused (7..50 not received yet) while it
    // commits every 100 ms: those commits must keep instance 1's completion map (regression: a
    // new owner used to commit (5, "") here, and a third owner would have run 7..50 again).
    let dir2 = tempfile::tempdir().unwrap();
    let app2 = Arc::new(KafkaOnce::open(dir2.path()).unwrap().handle_signals(false));
    let ran = Arc::new(Mutex::new(Vec::new()));
    let r = ran.clone();
    app2.kafka_consumer(runtime_config(&group), [topic.clone()])
        .in_order(true)
        .max_in_flight_per_partition(1)
        .commit_interval(Duration::from_millis(100))
        .workflow(move |_ctx: WorkflowContext, msg: KafkaMessage| {
            let r = r.clone();
            async move {
                if msg.offset() == 5 {
                    tokio::time::sleep(Duration::from_millis(2500)).await;
                }
                r.lock().unwrap().push(msg.offset());
                Ok::<(), WorkflowError>(())
            }
        })
        .unwrap();
    let probe = {
        let (group, topic) = (group.clone(), topic.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1800)).await;
            let consumer = GroupConsumer::new(runtime_config(&group)).await.unwrap();
            let c = consumer
                .committed(&[TopicPartition::new(topic.as_str(), 0)])
                .await
                .unwrap();
            consumer.close().await;
            c.into_values().next().unwrap()
        })
    };
    run_until(app2.clone(), |a| {
        a.metrics()
            .first()
            .is_some_and(|m| m.processed == 2 && m.skipped_duplicates == 43)
    })
    .await;
    let during = probe.await.unwrap();
    assert_eq!(during.offset, 5);
    assert_eq!(
        during.metadata, c.metadata,
        "the new owner's commits must carry the completion map it took over"
    );
    assert_eq!(*ran.lock().unwrap(), vec![5, 6]);
    assert_eq!(committed(&group, &topic, 1).await[&0], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_share_one_app_and_journal() {
    let (t1, t2) = (common::unique("two-a"), common::unique("two-b"));
    produce(&t1, 2, 100).await;
    produce(&t2, 2, 60).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
    for (topic, group) in [
        (&t1, common::unique("two-ga")),
        (&t2, common::unique("two-gb")),
    ] {
        app.kafka_consumer(runtime_config(&group), [topic.clone()])
            .workflow(|ctx: WorkflowContext, msg: KafkaMessage| async move {
                let key = format!("{}/{}/{}", msg.topic(), msg.partition(), msg.offset());
                ctx.transaction(|tx| tx.put("seen", key.as_bytes(), b"1"))
                    .await?;
                Ok::<(), WorkflowError>(())
            })
            .unwrap();
    }
    run_until(app.clone(), |a| processed(a) >= 160).await;
    let m = app.metrics();
    let mut per: Vec<u64> = m.iter().map(|m| m.processed).collect();
    per.sort();
    assert_eq!(per, vec![60, 100]);
    assert_eq!(app.journal().state_scan("seen").unwrap().len(), 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_write_failure_stops_the_runtime_and_commits_nothing_past_durable_data() {
    let topic = common::unique("fsync-fail");
    let group = common::unique("fsync-fail-g");
    const RECORDS: u64 = 20_000;
    produce(&topic, 3, RECORDS as usize).await;
    let dir = tempfile::tempdir().unwrap();
    // Few write batches: the runtime journals hundreds of records per batch, and the fault must
    // come before the end, but after the first completions (on a loaded machine the first ten
    // batches once held none: started runs of a few records each, prunes).
    let options = kafka_once::journal::JournalOptions {
        fail_after_batches: Some(40),
        ..Default::default()
    };
    let app = Arc::new(
        KafkaOnce::open_with(dir.path(), options)
            .unwrap()
            .handle_signals(false),
    );
    app.kafka_consumer(runtime_config(&group), [topic.clone()])
        .commit_interval(Duration::from_millis(50))
        // Smaller than the default, so that the records take more than ten write batches.
        .max_in_flight(256)
        .workflow(|ctx: WorkflowContext, msg: KafkaMessage| async move {
            let key = format!("{}/{}", msg.partition(), msg.offset());
            ctx.transaction(|tx| tx.put("done", key.as_bytes(), b"1"))
                .await?;
            Ok::<(), WorkflowError>(())
        })
        .unwrap();
    let err = tokio::time::timeout(DEADLINE, app.run())
        .await
        .expect("the runtime must stop by itself")
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("injected write failure"), "{text}");
    let processed = app.metrics()[0].processed;
    assert!(
        processed < RECORDS,
        "the fault came too late to test anything"
    );
    assert!(processed > 0, "the fault came too early to test anything");
    // Every offset below each committed one has its transaction in the journal: the commits
    // never passed durable data.
    let done: std::collections::HashSet<String> = app
        .journal()
        .state_scan("done")
        .unwrap()
        .into_iter()
        .map(|(k, _)| String::from_utf8(k.to_vec()).unwrap())
        .collect();
    let committed = committed(&group, &topic, 3).await;
    for (p, c) in &committed {
        for o in 0..*c {
            assert!(
                done.contains(&format!("{p}/{o}")),
                "{p}/{o} committed without a durable completion"
            );
        }
    }
    eprintln!("stopped after {processed} completions; committed {committed:?}");
}

/// `Ordering::Partition` runs a unit's records one after another and sends their completions
/// together, and starts a unit once the one before it ran (not yet durable); a record's first
/// step (here: every one's but offset 0's) must still wait until the record before it is durably
/// complete, also across units (more records than one unit holds), or a crash could leave record
/// n+1's step recorded (and its effect done) with record n to run again after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_order_a_step_runs_only_after_the_record_before_is_durably_complete() {
    use kafka_once::journal::Entry;
    /// More than one unit (512 records) holds.
    const PER_PARTITION: usize = 1200;
    let topic = common::unique("in-order-steps");
    let group = common::unique("in-order-steps-g");
    let cluster = common::cluster().await;
    cluster
        .create_topic(NewTopic::new(&topic, 2))
        .await
        .unwrap();
    let values: Vec<String> = (0..PER_PARTITION).map(|i| i.to_string()).collect();
    produce_to(&topic, 0, &values).await;
    produce_to(&topic, 1, &values).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
    let journal = app.journal().clone();
    let (checked, early) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, e) = (checked.clone(), early.clone());
    app.kafka_consumer(runtime_config(&group), [topic.clone()])
        .in_order(true)
        .workflow(move |ctx: WorkflowContext, msg: KafkaMessage| {
            let (journal, c, e) = (journal.clone(), c.clone(), e.clone());
            async move {
                if msg.offset() > 0 {
                    let mut before = msg.idempotency_key().clone();
                    before.offset -= 1;
                    ctx.step("check the record before", || async {
                        let done = matches!(journal.get(&before)?, Some(Entry::Completed { .. }));
                        c.fetch_add(1, AtomicOrdering::SeqCst);
                        if !done {
                            e.fetch_add(1, AtomicOrdering::SeqCst);
                        }
                        Ok::<bool, WorkflowError>(done)
                    })
                    .await?;
                }
                Ok::<(), WorkflowError>(())
            }
        })
        .unwrap();
    run_until(app.clone(), |a| processed(a) >= 2 * PER_PARTITION as u64).await;
    assert_eq!(
        checked.load(AtomicOrdering::SeqCst),
        2 * (PER_PARTITION - 1)
    );
    assert_eq!(
        early.load(AtomicOrdering::SeqCst),
        0,
        "steps that ran before the record before them was durably complete"
    );
}
