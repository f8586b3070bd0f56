//! A three-node cluster loses the node that leads some partitions and coordinates the group while
//! a group member consumes and a producer produces: leadership and the coordinator move, the
//! consumer validates its positions with the new leaders (KIP-320) and resumes at them, and every
//! record arrives exactly once, in order, with the commit landing at the new coordinator.
//!
//! The exactly-once runtime, as a child process, goes through a SIGKILL of the node that
//! coordinates its group and leads some of its partitions without a lost or repeated completion.
//!
//! A truncated log (what an unclean election leaves) cannot be had on demand from a real
//! cluster, so the scripted broker plays that part: the consumer detects it with
//! OffsetForLeaderEpoch and resumes at the divergence, or reports it under
//! `auto.offset.reset=none`.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_once::cluster::{Cluster, NewTopic};
use kafka_once::config::{AutoOffsetReset, ClientConfig};
use kafka_once::consumer::{Consumer, ConsumerError, GroupConsumer, TopicPartition, Validations};
use kafka_once::producer::{Producer, ProducerRecord};
use kafka_once::testing::LocalKafka;
use tokio::time::Instant;

use crate::common;
use crate::fake_broker::{FakeBroker, Script};

const PARTITIONS: i32 = 6;
const PER_PARTITION: usize = 100;

async fn produce(config: &ClientConfig, topic: &str, round: usize) {
    let producer = Producer::new(config.clone()).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..PER_PARTITION {
        for p in 0..PARTITIONS {
            let record = ProducerRecord::new(topic, format!("{round}:{p}:{i}")).partition(p);
            pending.push(producer.send(record).await.unwrap());
        }
    }
    producer.flush().await;
    for d in pending {
        d.await.unwrap();
    }
    producer.close().await;
}

/// (offset, leader epoch, value) per partition.
type Seen = BTreeMap<i32, Vec<(i64, i32, String)>>;

async fn read(consumer: &GroupConsumer, seen: &mut Seen, until: usize, deadline: Instant) {
    while seen.values().map(Vec::len).sum::<usize>() < until {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out with {seen:?}");
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(r)) => seen.entry(r.partition).or_default().push((
                r.offset,
                r.leader_epoch,
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
            )),
            Ok(Err(e)) => panic!("consumer error: {e}"),
            Err(_) => panic!("timed out with {seen:?}"),
        }
    }
}

/// A cluster of three nodes of its own (one `__consumer_offsets` partition).
async fn three_nodes() -> LocalKafka {
    LocalKafka::builder()
        .brokers(3)
        .internal_topic_partitions(1)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_coordinator_failover_lose_and_repeat_nothing() {
    let _serial = common::OWN_CLUSTER.lock().await;
    let _ = common::bootstrap(); // the log filter
    let kafka = three_nodes().await;
    let config = ClientConfig::new(kafka.bootstrap()).unwrap();
    let cluster = Cluster::connect(config.clone()).await.unwrap();
    let topic = common::unique("failover");
    cluster
        .create_topic(
            NewTopic::new(&topic, PARTITIONS)
                .replication_factor(3)
                .config("min.insync.replicas", "2"),
        )
        .await
        .unwrap();
    produce(&config, &topic, 0).await;

    let group_config = config
        .to_builder()
        .group_id(common::unique("failover-group"))
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(500))
        .enable_auto_commit(false)
        .fetch_max_wait(Duration::from_millis(100))
        .build()
        .unwrap();
    let consumer = GroupConsumer::new(group_config).await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Seen::new();
    read(
        &consumer,
        &mut seen,
        PARTITIONS as usize * PER_PARTITION,
        deadline,
    )
    .await;
    consumer.commit().await.unwrap();

    // The group's coordinator leads the one __consumer_offsets partition; it also leads some of
    // the topic's partitions (Kafka spreads six leaders over three nodes).
    let meta = cluster
        .refresh_topics(&["__consumer_offsets", &topic])
        .await
        .unwrap();
    let victim = meta
        .leader("__consumer_offsets", 0)
        .expect("a leader")
        .0
        .node_id;
    let moved: Vec<(i32, i32)> = (0..PARTITIONS)
        .filter_map(|p| {
            let (broker, epoch) = meta.leader(&topic, p)?;
            (broker.node_id == victim).then_some((p, epoch))
        })
        .collect();
    assert!(
        !moved.is_empty(),
        "node {victim} leads none of {topic}'s partitions"
    );
    let before = consumer.consumer().validations();
    kafka.stop_node(victim).await.unwrap();

    produce(&config, &topic, 1).await;
    read(
        &consumer,
        &mut seen,
        2 * PARTITIONS as usize * PER_PARTITION,
        deadline,
    )
    .await;
    // The commit reaches the new coordinator (the old one's errors send the member to find it).
    loop {
        match consumer.commit().await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("commit after the coordinator moved: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("no commit after the coordinator moved: {e}"),
        }
    }

    for p in 0..PARTITIONS {
        let got = &seen[&p];
        let offsets: Vec<i64> = got.iter().map(|(o, ..)| *o).collect();
        let want: Vec<i64> = (0..2 * PER_PARTITION as i64).collect();
        assert_eq!(offsets, want, "partition {p}: every offset once, in order");
        for (i, (_, _, value)) in got.iter().enumerate() {
            let (round, n) = (i / PER_PARTITION, i % PER_PARTITION);
            assert_eq!(
                value,
                &format!("{round}:{p}:{n}"),
                "partition {p} offset {i}"
            );
        }
    }
    for (p, old_epoch) in &moved {
        let last = seen[p].last().unwrap().1;
        assert!(
            last > *old_epoch,
            "partition {p}: records after the failover carry the new leader's epoch (got {last}, old {old_epoch})"
        );
    }
    let after = consumer.consumer().validations();
    assert!(
        after.valid > before.valid,
        "positions of the moved partitions {moved:?} were validated with the new leaders: {before:?} -> {after:?}"
    );
    assert_eq!(
        after.truncated, 0,
        "a controlled shutdown truncates nothing"
    );
    let all: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let committed = consumer.committed(&all).await.unwrap();
    for tp in &all {
        assert_eq!(
            committed.get(tp).map(|o| o.offset),
            Some(2 * PER_PARTITION as i64),
            "{tp}: the commit after the failover is stored"
        );
    }
    consumer.close().await;
    kafka.stop().await.unwrap();
}

/// Reads `n` records (offset, leader epoch, value) from a consumer of the fake broker.
async fn read_fake(consumer: &Consumer, n: usize) -> Vec<(i64, i32, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let r = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out after {out:?}"))
            .unwrap_or_else(|e| panic!("after {out:?}: {e}"));
        out.push((
            r.offset,
            r.leader_epoch,
            String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
        ));
    }
    out
}

/// A fake broker holding `old-0..old-9` in epoch 0 on partition 0, and a consumer of it that has
/// read them all.
async fn truncation_setup(reset: AutoOffsetReset) -> (FakeBroker, Consumer) {
    let broker = FakeBroker::start(Script::new("truncated", 1)).await;
    let old: Vec<String> = (0..10).map(|i| format!("old-{i}")).collect();
    broker.append_values(0, &old.iter().map(String::as_str).collect::<Vec<_>>());
    let config = ClientConfig::new(broker.addr())
        .unwrap()
        .to_builder()
        .auto_offset_reset(reset)
        .fetch_max_wait(Duration::from_millis(50))
        .retry_backoff(Duration::from_millis(20))
        .build()
        .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    consumer
        .assign_partitions(&[(TopicPartition::new("truncated", 0), Some(0))])
        .await
        .unwrap();
    let got = read_fake(&consumer, 10).await;
    let want: Vec<(i64, i32, String)> = (0..10).map(|i| (i, 0, format!("old-{i}"))).collect();
    assert_eq!(got, want);
    (broker, consumer)
}

/// An unclean election keeps only six of the ten records and the new leader (epoch 1) appends
/// four others at offsets 6..9. The consumer's next fetch is fenced; it finds the new leader,
/// asks it where epoch 0 ends (6, below its position 10), and resumes at 6: the new records are
/// delivered, not skipped as if they were the ones it had read.
#[tokio::test]
async fn truncation_after_a_leader_change_resumes_at_the_divergence() {
    let (broker, consumer) = truncation_setup(AutoOffsetReset::Earliest).await;
    broker.elect(1, 0, 6);
    broker.append_values(0, &["new-6", "new-7", "new-8", "new-9"]);
    let got = read_fake(&consumer, 4).await;
    let want: Vec<(i64, i32, String)> = (6..10).map(|i| (i, 1, format!("new-{i}"))).collect();
    assert_eq!(got, want);
    assert_eq!(
        consumer.validations(),
        Validations {
            valid: 0,
            truncated: 1
        }
    );
    assert_eq!(consumer.position("truncated", 0), Some(10));
    consumer.close().await;
}

/// With `auto.offset.reset=none` the truncation is an error naming the divergent offset, and
/// the partition waits for a seek.
#[tokio::test]
async fn truncation_without_a_reset_policy_is_an_error() {
    let (broker, consumer) = truncation_setup(AutoOffsetReset::None).await;
    broker.elect(1, 0, 6);
    broker.append_values(0, &["new-6"]);
    let error = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .expect("an answer")
        .expect_err("a truncation error");
    match &error {
        ConsumerError::LogTruncation {
            partition: 0,
            offset: 10,
            divergent_offset: Some(6),
            ..
        } => {}
        other => panic!("expected LogTruncation at 10 diverging at 6, got {other:?}"),
    }
    assert!(error.to_string().contains("diverges at 6"), "{error}");
    consumer.seek("truncated", 0, 6).unwrap();
    assert_eq!(
        read_fake(&consumer, 1).await,
        vec![(6, 1, "new-6".to_string())]
    );
    consumer.close().await;
}

/// A leader change that loses nothing (the new leader's epoch 0 ends at the log end) is
/// validated and consumption goes on where it was.
#[tokio::test]
async fn a_leader_change_without_truncation_is_validated() {
    let (broker, consumer) = truncation_setup(AutoOffsetReset::Earliest).await;
    broker.elect(1, 0, 10);
    broker.append_values(0, &["next-10"]);
    assert_eq!(
        read_fake(&consumer, 1).await,
        vec![(10, 1, "next-10".to_string())]
    );
    assert_eq!(
        consumer.validations(),
        Validations {
            valid: 1,
            truncated: 0
        }
    );
    consumer.close().await;
}

/// What happens to the node that coordinates the group.
#[derive(Debug, Clone, Copy)]
enum BrokerFault {
    /// SIGKILL, 3 s down, restart.
    Kill,
    /// SIGSTOP for 12 s (past the controller's 5 s broker session and the member's 10 s
    /// session), then SIGCONT: a frozen JVM, its connections open and silent.
    Pause,
}

/// The exactly-once runtime (the demo worker in a child process: `Ordering::Partition`, a
/// transactional tally per record) consumes from the three-node cluster while the node that
/// coordinates its group and leads some of its partitions is SIGKILLed, then restarted: every
/// record completes exactly once, in offset order per partition, and the tallies are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_through_a_broker_sigkill() {
    exactly_once_through(BrokerFault::Kill).await;
}

/// As above, with the node frozen (SIGSTOP) for longer than every session timeout, then thawed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_through_a_frozen_broker() {
    exactly_once_through(BrokerFault::Pause).await;
}

async fn exactly_once_through(fault: BrokerFault) {
    let _serial = common::OWN_CLUSTER.lock().await;
    const RECORDS: usize = 20_000;
    let kafka = three_nodes().await;
    let bootstrap = kafka.bootstrap();
    let config = ClientConfig::new(bootstrap.clone()).unwrap();
    let topic = common::unique("eo-broker-fault");
    let group = format!("{topic}-g");
    let new = NewTopic::new(&topic, PARTITIONS)
        .replication_factor(3)
        .config("min.insync.replicas", "2");
    let (end, tally) = crate::crash::produce_counted_to(&config, new, RECORDS).await;

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let args: [&std::ffi::OsStr; 4] = [
        "--path".as_ref(),
        journal.as_os_str(),
        "--ordering".as_ref(),
        "partition".as_ref(),
    ];
    let log = dir.path().join("worker.log");
    let mut worker = common::demo_worker_at(&bootstrap, &topic, &group, &args, &log);
    let probe_config = config.to_builder().group_id(&group).build().unwrap();
    let probe = GroupConsumer::new(probe_config).await.unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let committed = async |probe: &GroupConsumer| -> i64 {
        match probe.committed(&tps).await {
            Ok(c) => c.values().map(|o| o.offset.max(0)).sum(),
            Err(_) => 0,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let tail = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    };
    // Some progress first, then the coordinator dies mid-run and comes back.
    while committed(&probe).await < (RECORDS / 5) as i64 {
        assert!(
            Instant::now() < deadline,
            "no progress; worker log:\n{}",
            tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let meta = Cluster::connect(config.clone())
        .await
        .unwrap()
        .refresh_topics(&["__consumer_offsets"])
        .await
        .unwrap();
    let victim = meta
        .leader("__consumer_offsets", 0)
        .expect("a leader")
        .0
        .node_id;
    match fault {
        BrokerFault::Kill => {
            kafka.kill_node(victim).await.unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            kafka.start_node(victim).await.unwrap();
        }
        BrokerFault::Pause => {
            kafka.pause_node(victim).await.unwrap();
            tokio::time::sleep(Duration::from_secs(12)).await;
            kafka.resume_node(victim).await.unwrap();
        }
    }
    let total: i64 = end.values().sum();
    while committed(&probe).await < total {
        assert!(
            Instant::now() < deadline,
            "not all committed; worker log:\n{}",
            tail()
        );
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker died; log:\n{}",
            tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = common::stop_worker(&mut worker).await;
    assert!(status.success(), "worker exit {status}; log:\n{}", tail());
    probe.close().await;

    let journal = kafka_once::journal::Journal::open(&journal).unwrap();
    let report = kafka_once::demo::audit(&journal, &end, &tally, None).unwrap();
    eprintln!("broker {victim}: {fault:?} mid-run:\n{report}");
    assert_eq!(report.records, RECORDS as u64, "{report}");
    assert_eq!(report.completed_once, RECORDS as u64, "{report}");
    assert_eq!(report.duplicates, 0, "{report}");
    assert_eq!(report.missing, 0, "{report}");
    assert_eq!(report.order_violations, 0, "{report}");
    assert_eq!(report.tally_mismatches, 0, "{report}");
    let (n, problems) = journal.verify();
    assert!(problems.is_empty(), "{problems:?} in {n} entries");
    kafka.stop().await.unwrap();
}

/// A consumer's fetch loops for three brokers: while two of them long-poll caught-up partitions,
/// the third still fetches. (Each fetch used to reserve all of `fetch.max.bytes`, so the two
/// polling loops held the whole prefetch budget between them, re-reserving it as each answer
/// came, and the third broker's partition went unfetched for as long as that lasted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_brokers_partitions_are_fetched_while_others_long_poll() {
    let _serial = common::OWN_CLUSTER.lock().await;
    let _ = common::bootstrap(); // the log filter
    let kafka = three_nodes().await;
    let config = ClientConfig::new(kafka.bootstrap()).unwrap();
    let cluster = Cluster::connect(config.clone()).await.unwrap();
    let topic = common::unique("budget");
    cluster
        .create_topic(NewTopic::new(&topic, 3).replication_factor(1))
        .await
        .unwrap();
    let meta = cluster.refresh_topics(&[&topic]).await.unwrap();
    let leaders: std::collections::BTreeSet<i32> = (0..3)
        .map(|p| meta.leader(&topic, p).expect("a leader").0.node_id)
        .collect();
    assert_eq!(
        leaders.len(),
        3,
        "the partitions' leaders are not three brokers"
    );
    let consumer = Consumer::new(
        config
            .to_builder()
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .fetch_max_wait(Duration::from_millis(100))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    consumer
        .assign(&[(&topic, 0), (&topic, 1), (&topic, 2)])
        .await
        .unwrap();
    let producer = Producer::new(config.clone()).await.unwrap();
    // Each partition in turn gets a record while the other two sit caught up, long-polling.
    for round in 0..3 {
        for p in 0..3 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let value = format!("{round}:{p}");
            producer
                .send(ProducerRecord::new(&topic, value.clone()).partition(p))
                .await
                .unwrap()
                .await
                .unwrap();
            let sent = Instant::now();
            let record = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
                .await
                .unwrap_or_else(|_| panic!("partition {p} (round {round}) not fetched within 10 s"))
                .unwrap();
            assert_eq!(
                (record.partition, record.value.as_deref()),
                (p, Some(value.as_bytes()))
            );
            eprintln!("round {round} partition {p}: {:?}", sent.elapsed());
        }
    }
    producer.close().await;
    consumer.close().await;
}
