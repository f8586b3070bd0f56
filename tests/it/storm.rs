//! A rebalance storm: members of one group, each an app with its own journal (as if on its own
//! machine), join and leave every couple of seconds while records keep arriving. Members leave
//! cleanly (revoke: in-flight workflows finish, then commit with the completion map), so no
//! record may run in two members, none may run twice in one, and none may be missed.
//!
//! CI runs the storm for 30 seconds; `KAFKA_ONCE_SOAK=1` runs it for 5 minutes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_once::cluster::NewTopic;
use kafka_once::consumer::TopicPartition;
use kafka_once::consumer::group::GroupConsumer;
use kafka_once::dispatch::{KafkaMessage, KafkaOnce, Ordering, WorkflowContext, WorkflowError};
use kafka_once::producer::{Producer, ProducerRecord};
use rand::Rng;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::common;
use crate::dispatch::runtime_config;

const PARTITIONS: i32 = 6;
const MAX_MEMBERS: usize = 4;

/// (member, partition, offset) of every workflow run.
type Runs = Arc<Mutex<Vec<(usize, i32, i64)>>>;

struct Member {
    id: usize,
    app: Arc<KafkaOnce>,
    run: JoinHandle<Result<(), kafka_once::dispatch::DispatchError>>,
}

fn start_member(
    id: usize,
    dir: &std::path::Path,
    group: &str,
    topic: &str,
    ordering: Ordering,
    runs: &Runs,
) -> Member {
    let app = Arc::new(
        KafkaOnce::open(dir.join(format!("member-{id}")))
            .unwrap()
            .handle_signals(false),
    );
    let runs = runs.clone();
    app.kafka_consumer(runtime_config(group), [topic.to_string()])
        .ordering(ordering)
        .max_in_flight(128)
        .commit_interval(Duration::from_millis(300))
        .workflow(move |_ctx: WorkflowContext, msg: KafkaMessage| {
            let runs = runs.clone();
            async move {
                runs.lock()
                    .unwrap()
                    .push((id, msg.partition(), msg.offset()));
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<(), WorkflowError>(())
            }
        })
        .unwrap();
    let run = {
        let app = app.clone();
        tokio::spawn(async move { app.run().await })
    };
    Member { id, app, run }
}

async fn stop_member(member: Member) {
    member.app.shutdown_handle().shutdown();
    match tokio::time::timeout(Duration::from_secs(60), member.run).await {
        Ok(r) => r
            .unwrap()
            .unwrap_or_else(|e| panic!("member {} failed: {e}", member.id)),
        Err(_) => panic!("member {} did not stop within 60 s", member.id),
    }
}

async fn storm(ordering: Ordering) {
    let soak = std::env::var_os("KAFKA_ONCE_SOAK").is_some();
    let length = Duration::from_secs(if soak { 300 } else { 30 });
    let topic = common::unique("storm");
    let group = format!("{topic}-g");
    common::cluster()
        .await
        .create_topic(NewTopic::new(&topic, PARTITIONS))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runs: Runs = Arc::default();

    // Records keep arriving through the storm.
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (topic, producing) = (topic.clone(), producing.clone());
        tokio::spawn(async move {
            let producer = Producer::new(common::config()).await.unwrap();
            let mut pending = Vec::new();
            let mut i = 0u64;
            while producing.load(AtomicOrdering::SeqCst) {
                for _ in 0..100 {
                    let r = ProducerRecord::new(&topic, i.to_string()).key(format!("k{}", i % 31));
                    pending.push(producer.send(r).await.unwrap());
                    i += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut end: HashMap<i32, i64> = HashMap::new();
            for d in pending {
                let m = d.await.unwrap();
                let e = end.entry(m.partition).or_default();
                *e = (*e).max(m.offset + 1);
            }
            producer.close().await;
            (i, end)
        })
    };

    let mut members: Vec<Member> = Vec::new();
    let mut next_id = 0;
    let mut joins = 0;
    let mut leaves = 0;
    let start = Instant::now();
    while start.elapsed() < length {
        let join =
            members.len() < 2 || (members.len() < MAX_MEMBERS && rand::rng().random_bool(0.5));
        if join {
            members.push(start_member(
                next_id,
                dir.path(),
                &group,
                &topic,
                ordering,
                &runs,
            ));
            next_id += 1;
            joins += 1;
        } else {
            let i = rand::rng().random_range(0..members.len());
            stop_member(members.swap_remove(i)).await;
            leaves += 1;
        }
        let pause = rand::rng().random_range(1_000..3_000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    producing.store(false, AtomicOrdering::SeqCst);
    let (produced, end) = producer.await.unwrap();
    let total: i64 = end.values().sum();
    assert_eq!(total as u64, produced);

    // The members left finish the backlog; every record ends committed.
    let probe = GroupConsumer::new(runtime_config(&group)).await.unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let wait = Instant::now();
    loop {
        let committed: i64 = common::committed(&probe, &tps).await.values().sum();
        if committed == total {
            break;
        }
        assert!(
            wait.elapsed() < Duration::from_secs(120),
            "committed {committed} of {total} after the storm"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    probe.close().await;
    for m in members.drain(..) {
        stop_member(m).await;
    }

    let runs = runs.lock().unwrap();
    let mut by_record: HashMap<(i32, i64), Vec<usize>> = HashMap::new();
    for &(member, p, o) in runs.iter() {
        by_record.entry((p, o)).or_default().push(member);
    }
    let missing = total - by_record.len() as i64;
    let twice: Vec<_> = by_record
        .iter()
        .filter(|(_, who)| who.len() > 1)
        .take(10)
        .collect();
    eprintln!(
        "{ordering:?}: {joins} joins, {leaves} leaves in {length:?}; {total} records, {} runs",
        runs.len()
    );
    assert!(leaves >= 3 && joins >= 5, "{joins} joins, {leaves} leaves");
    assert_eq!(missing, 0, "records that never ran");
    assert!(
        twice.is_empty(),
        "records that ran more than once (by members): {twice:?}"
    );
    assert_eq!(runs.len() as i64, total);
    if ordering == Ordering::Partition {
        // Across all members, each partition's records ran in offset order.
        let mut last: HashMap<i32, i64> = HashMap::new();
        for &(_, p, o) in runs.iter() {
            let prev = last.insert(p, o);
            assert!(
                prev.is_none_or(|prev| prev < o),
                "partition {p}: {o} ran after {prev:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_storm_runs_every_record_exactly_once_unordered() {
    storm(Ordering::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_storm_keeps_partition_order_and_runs_every_record_once() {
    storm(Ordering::Partition).await;
}
