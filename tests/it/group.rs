//! Consumer groups against the real broker: members share partitions with no overlap and no
//! orphan, every record is delivered exactly once across rebalances, committed offsets (with
//! metadata) are where a new member resumes, stale-generation commits are refused, and the
//! cooperative protocol only revokes the partitions that move.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_once::cluster::NewTopic;
use kafka_once::config::{AssignmentStrategy, AutoOffsetReset, ClientConfig};
use kafka_once::consumer::TopicPartition;
use kafka_once::consumer::group::{
    CommitError, Generation, GroupConsumer, GroupHandle, ListenerFuture, OffsetAndMetadata,
    RebalanceListener,
};
use kafka_once::producer::{Producer, ProducerRecord};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::common;

/// Every test must finish well within this.
const DEADLINE: Duration = Duration::from_secs(30);

fn group_config(group: &str, strategy: AssignmentStrategy, auto_commit: bool) -> ClientConfig {
    common::config()
        .to_builder()
        .group_id(group)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(300))
        .max_poll_interval(Duration::from_secs(20))
        .partition_assignment_strategy(vec![strategy])
        .enable_auto_commit(auto_commit)
        .auto_commit_interval(Duration::from_millis(500))
        .fetch_max_wait(Duration::from_millis(100))
        .build()
        .unwrap()
}

async fn create(topic: &str, partitions: i32) {
    common::cluster()
        .await
        .create_topic(NewTopic::new(topic, partitions))
        .await
        .unwrap();
}

/// Produces `per_partition` records to each of `partitions`, value `"{p}:{i}"`.
async fn produce(topic: &str, partitions: i32, per_partition: usize, tag: &str) {
    let producer = Producer::new(common::config()).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..per_partition {
        for p in 0..partitions {
            let record = ProducerRecord::new(topic, format!("{tag}{p}:{i}")).partition(p);
            pending.push(producer.send(record).await.unwrap());
        }
    }
    producer.flush().await;
    for d in pending {
        d.await.unwrap();
    }
    producer.close().await;
}

/// (member, partition, offset) of every record received.
type Log = Arc<Mutex<Vec<(usize, i32, i64)>>>;

/// Runs `recv` on `consumer` in a task, logging records, until `stop`.
fn spawn_reader(
    idx: usize,
    consumer: Arc<GroupConsumer>,
    log: Log,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
                Ok(Ok(r)) => log.lock().unwrap().push((idx, r.partition, r.offset)),
                Ok(Err(e)) => panic!("member {idx}: recv failed: {e}"),
                Err(_) => {}
            }
        }
    })
}

/// Waits (bounded by the test deadline) until `cond` holds.
async fn wait_until(what: &str, deadline: Instant, mut cond: impl FnMut() -> bool) {
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The members' assignments are disjoint and cover all `n` partitions of `topic`.
fn covers_exactly(members: &[&Arc<GroupConsumer>], topic: &str, n: i32) -> bool {
    let mut seen = BTreeSet::new();
    for m in members {
        for tp in m.assignment() {
            if &*tp.topic != topic || !seen.insert(tp.partition) {
                return false;
            }
        }
    }
    seen.len() == n as usize && members.iter().all(|m| !m.assignment().is_empty())
}

/// Every (partition, offset) below `per_partition` appears exactly once, and each member saw
/// each partition's offsets in increasing order.
fn assert_exactly_once(log: &[(usize, i32, i64)], partitions: i32, per_partition: i64) {
    let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let mut last: BTreeMap<(usize, i32), i64> = BTreeMap::new();
    for &(m, p, o) in log {
        *count.entry((p, o)).or_default() += 1;
        if let Some(prev) = last.insert((m, p), o) {
            assert!(o > prev, "member {m} saw {p}@{o} after {p}@{prev}");
        }
    }
    let dups: Vec<_> = count.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "delivered more than once: {dups:?}");
    for p in 0..partitions {
        for o in 0..per_partition {
            assert!(count.contains_key(&(p, o)), "{p}@{o} never delivered");
        }
    }
    assert_eq!(count.len(), (partitions as i64 * per_partition) as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_members_share_six_partitions_exactly_once() {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-share");
    let group = common::unique("g-share");
    create(&topic, 6).await;
    produce(&topic, 6, 200, "").await;

    let log: Log = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut members = Vec::new();
    let mut readers = Vec::new();
    for idx in 0..3 {
        let c = Arc::new(
            GroupConsumer::new(group_config(&group, AssignmentStrategy::Range, true))
                .await
                .unwrap(),
        );
        c.subscribe(&[&topic]).unwrap();
        readers.push(spawn_reader(idx, c.clone(), log.clone(), stop.clone()));
        members.push(c);
        // Let the earlier members consume part of the topic before the next one joins.
        let want = (idx + 1) * 150;
        wait_until("records before the next member joins", deadline, || {
            log.lock().unwrap().len() >= want
        })
        .await;
    }
    let refs: Vec<&Arc<GroupConsumer>> = members.iter().collect();
    wait_until("a stable, complete assignment", deadline, || {
        covers_exactly(&refs, &topic, 6)
    })
    .await;
    // Records produced now go to the current owners.
    produce(&topic, 6, 50, "late").await;
    wait_until("every record", deadline, || {
        log.lock().unwrap().len() >= 6 * 250
    })
    .await;
    // Anything extra (a duplicate) would show up shortly after.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        r.await.unwrap();
    }
    assert!(covers_exactly(&refs, &topic, 6));
    let generations: BTreeSet<i32> = members
        .iter()
        .map(|m| m.generation().expect("in the group").generation_id)
        .collect();
    assert_eq!(generations.len(), 1, "members disagree on the generation");
    assert_exactly_once(&log.lock().unwrap(), 6, 250);
    for m in &members {
        m.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn member_leaving_moves_its_partitions_and_nothing_is_lost() {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-leave");
    let group = common::unique("g-leave");
    create(&topic, 6).await;
    produce(&topic, 6, 100, "").await;

    let log: Log = Arc::default();
    let stop0 = Arc::new(AtomicBool::new(false));
    let stop1 = Arc::new(AtomicBool::new(false));
    let a = Arc::new(
        GroupConsumer::new(group_config(&group, AssignmentStrategy::RoundRobin, true))
            .await
            .unwrap(),
    );
    let b = Arc::new(
        GroupConsumer::new(group_config(&group, AssignmentStrategy::RoundRobin, true))
            .await
            .unwrap(),
    );
    a.subscribe(&[&topic]).unwrap();
    b.subscribe(&[&topic]).unwrap();
    wait_until("both members assigned", deadline, || {
        covers_exactly(&[&a, &b], &topic, 6)
    })
    .await;
    let ra = spawn_reader(0, a.clone(), log.clone(), stop0.clone());
    let rb = spawn_reader(1, b.clone(), log.clone(), stop1.clone());
    wait_until("some records", deadline, || {
        log.lock().unwrap().len() >= 300
    })
    .await;
    // `a` leaves: its reader stops first (no record handed out after close), then close
    // commits its positions and sends LeaveGroup.
    stop0.store(true, Ordering::SeqCst);
    ra.await.unwrap();
    let a_had = a.assignment();
    a.close().await;
    wait_until("b owns everything", deadline, || b.assignment().len() == 6).await;
    produce(&topic, 6, 50, "after").await;
    wait_until("every record", deadline, || {
        log.lock().unwrap().len() >= 6 * 150
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop1.store(true, Ordering::SeqCst);
    rb.await.unwrap();
    assert_eq!(a_had.len(), 3);
    assert_exactly_once(&log.lock().unwrap(), 6, 150);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_offsets_and_metadata_are_where_a_new_member_resumes() {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-commit");
    let group = common::unique("g-commit");
    create(&topic, 2).await;
    produce(&topic, 2, 20, "").await;

    let a = GroupConsumer::new(group_config(&group, AssignmentStrategy::Range, false))
        .await
        .unwrap();
    a.subscribe(&[&topic]).unwrap();
    let mut seen = 0;
    while seen < 40 {
        assert!(Instant::now() < deadline, "timed out reading");
        let r = tokio::time::timeout(Duration::from_secs(10), a.recv())
            .await
            .expect("a record within 10 s")
            .unwrap();
        assert!(r.offset < 20);
        seen += 1;
    }
    let p0 = TopicPartition::new(topic.as_str(), 0);
    let p1 = TopicPartition::new(topic.as_str(), 1);
    // Partition 0 explicitly at 7 with metadata; partition 1 through commit() at its position.
    let mut offsets = BTreeMap::new();
    offsets.insert(
        p0.clone(),
        OffsetAndMetadata::new(7).with_metadata("completed: 9,12"),
    );
    a.commit_offsets(&offsets).await.unwrap();
    a.consumer().seek(&topic, 1, 13).unwrap();
    // The position of p1 is 13 now; commit() commits positions, p0's too (20).
    a.commit().await.unwrap();
    let committed = a.committed(&[p0.clone(), p1.clone()]).await.unwrap();
    assert_eq!(committed[&p0].offset, 20);
    assert_eq!(committed[&p1].offset, 13);
    // Put p0 back at 7 with its metadata, then leave.
    a.commit_offsets(&offsets).await.unwrap();
    a.close().await;

    let b = GroupConsumer::new(group_config(&group, AssignmentStrategy::Range, false))
        .await
        .unwrap();
    let committed = b.committed(&[p0.clone(), p1.clone()]).await.unwrap();
    assert_eq!(
        committed[&p0],
        OffsetAndMetadata::new(7).with_metadata("completed: 9,12")
    );
    assert_eq!(committed[&p1].offset, 13);
    b.subscribe(&[&topic]).unwrap();
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    while first.len() < 2 {
        assert!(Instant::now() < deadline, "timed out reading");
        let r = tokio::time::timeout(Duration::from_secs(10), b.recv())
            .await
            .expect("a record within 10 s")
            .unwrap();
        first.entry(r.partition).or_insert(r.offset);
    }
    assert_eq!(first, BTreeMap::from([(0, 7), (1, 13)]));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_under_a_stale_generation_is_not_committed() {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-stale");
    let group = common::unique("g-stale");
    create(&topic, 4).await;

    let a = Arc::new(
        GroupConsumer::new(group_config(&group, AssignmentStrategy::Range, false))
            .await
            .unwrap(),
    );
    a.subscribe(&[&topic]).unwrap();
    wait_until("a assigned", deadline, || a.assignment().len() == 4).await;
    let old: Generation = a.generation().unwrap();
    let b = Arc::new(
        GroupConsumer::new(group_config(&group, AssignmentStrategy::Range, false))
            .await
            .unwrap(),
    );
    b.subscribe(&[&topic]).unwrap();
    wait_until("the rebalance", deadline, || {
        covers_exactly(&[&a, &b], &topic, 4)
    })
    .await;
    assert!(a.generation().unwrap().generation_id > old.generation_id);

    let mut offsets = BTreeMap::new();
    offsets.insert(
        TopicPartition::new(topic.as_str(), 0),
        OffsetAndMetadata::new(5),
    );
    let err = a
        .handle()
        .commit_offsets_as(&old, &offsets)
        .await
        .expect_err("a commit under the old generation must fail");
    assert!(
        matches!(err, CommitError::IllegalGeneration { .. }),
        "unexpected: {err:?}"
    );
    assert!(err.is_generation_error());
    // A member id the coordinator never gave out.
    let stranger = Generation {
        generation_id: old.generation_id + 1,
        member_id: "stranger".into(),
        group_instance_id: None,
    };
    let err = a
        .handle()
        .commit_offsets_as(&stranger, &offsets)
        .await
        .expect_err("a commit by an unknown member must fail");
    assert!(err.is_generation_error(), "unexpected: {err:?}");
    // Nothing was committed.
    let committed = a
        .committed(&[TopicPartition::new(topic.as_str(), 0)])
        .await
        .unwrap();
    assert!(committed.is_empty(), "committed: {committed:?}");
    // The current generation commits.
    a.commit_offsets(&BTreeMap::from([(
        a.assignment()[0].clone(),
        OffsetAndMetadata::new(0),
    )]))
    .await
    .unwrap();
    a.close().await;
    b.close().await;
}

/// Records when partitions are revoked, assigned and lost.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(Instant, &'static str, Vec<TopicPartition>)>>,
}

impl RebalanceListener for Recorder {
    fn assigned<'a>(
        &'a self,
        _group: &'a GroupHandle,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        self.events
            .lock()
            .unwrap()
            .push((Instant::now(), "assigned", partitions.to_vec()));
        Box::pin(std::future::ready(()))
    }

    fn revoked<'a>(
        &'a self,
        _group: &'a GroupHandle,
        partitions: &'a [(TopicPartition, Option<i64>)],
    ) -> ListenerFuture<'a> {
        let tps = partitions.iter().map(|(tp, _)| tp.clone()).collect();
        self.events
            .lock()
            .unwrap()
            .push((Instant::now(), "revoked", tps));
        Box::pin(std::future::ready(()))
    }

    fn lost<'a>(&'a self, partitions: &'a [TopicPartition]) -> ListenerFuture<'a> {
        self.events
            .lock()
            .unwrap()
            .push((Instant::now(), "lost", partitions.to_vec()));
        Box::pin(std::future::ready(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_sticky_keeps_partitions_that_do_not_move() {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-coop");
    let group = common::unique("g-coop");
    create(&topic, 6).await;

    let rec_a = Arc::new(Recorder::default());
    let a = Arc::new(
        GroupConsumer::with_listener(
            group_config(&group, AssignmentStrategy::CooperativeSticky, true),
            rec_a.clone(),
        )
        .await
        .unwrap(),
    );
    a.subscribe(&[&topic]).unwrap();
    wait_until("a owns all six", deadline, || a.assignment().len() == 6).await;
    let log: Log = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let ra = spawn_reader(0, a.clone(), log.clone(), stop.clone());
    let joined_at = Instant::now();
    let b = Arc::new(
        GroupConsumer::new(group_config(
            &group,
            AssignmentStrategy::CooperativeSticky,
            true,
        ))
        .await
        .unwrap(),
    );
    b.subscribe(&[&topic]).unwrap();
    let rb = spawn_reader(1, b.clone(), log.clone(), stop.clone());
    wait_until("a 3/3 split", deadline, || {
        covers_exactly(&[&a, &b], &topic, 6) && a.assignment().len() == 3
    })
    .await;
    let kept: BTreeSet<TopicPartition> = a.assignment().into_iter().collect();
    let moved: BTreeSet<TopicPartition> = b.assignment().into_iter().collect();
    let events = rec_a.events.lock().unwrap().clone();
    let revoked: BTreeSet<TopicPartition> = events
        .iter()
        .filter(|(at, kind, _)| *at >= joined_at && *kind == "revoked")
        .flat_map(|(_, _, tps)| tps.iter().cloned())
        .collect();
    assert_eq!(
        revoked, moved,
        "a revoked exactly the partitions that moved: {events:?}"
    );
    assert!(revoked.is_disjoint(&kept));
    assert!(
        !events.iter().any(|(_, kind, _)| *kind == "lost"),
        "nothing lost: {events:?}"
    );
    // The kept partitions stayed assigned to `a` all along: still at the position they had,
    // and they keep delivering.
    produce(&topic, 6, 20, "").await;
    wait_until("every record", deadline, || {
        log.lock().unwrap().len() >= 120
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    ra.await.unwrap();
    rb.await.unwrap();
    let log = log.lock().unwrap().clone();
    for &(m, p, _) in &log {
        let tp = TopicPartition::new(topic.as_str(), p);
        let owner = if kept.contains(&tp) { 0 } else { 1 };
        assert_eq!(m, owner, "{tp} delivered by member {m}");
    }
    assert_exactly_once(&log, 6, 20);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fenced_static_member_is_reported_to_the_caller() {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-fenced");
    let group = common::unique("g-fenced");
    create(&topic, 2).await;
    let config = group_config(&group, AssignmentStrategy::Range, false)
        .to_builder()
        .group_instance_id("instance-1")
        .build()
        .unwrap();
    let a = GroupConsumer::new(config.clone()).await.unwrap();
    a.subscribe(&[&topic]).unwrap();
    wait_until("a assigned", deadline, || a.assignment().len() == 2).await;
    // A second process with the same group.instance.id takes over the identity.
    let b = GroupConsumer::new(config).await.unwrap();
    b.subscribe(&[&topic]).unwrap();
    wait_until("b assigned", deadline, || b.assignment().len() == 2).await;
    let err = tokio::time::timeout(Duration::from_secs(10), a.recv())
        .await
        .expect("a learns it is fenced within 10 s")
        .expect_err("a is fenced");
    assert!(
        matches!(err, kafka_once::consumer::GroupError::Fenced { .. }),
        "unexpected: {err:?}"
    );
    assert!(a.assignment().is_empty());
    assert!(a.generation().is_none());
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_member_restart_within_the_session_keeps_its_assignment() {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-static");
    let group = common::unique("g-static");
    create(&topic, 4).await;
    let config = |id: &str| {
        group_config(&group, AssignmentStrategy::Range, false)
            .to_builder()
            .group_instance_id(id)
            .build()
            .unwrap()
    };
    let a = Arc::new(GroupConsumer::new(config("a")).await.unwrap());
    let b = Arc::new(GroupConsumer::new(config("b")).await.unwrap());
    a.subscribe(&[&topic]).unwrap();
    b.subscribe(&[&topic]).unwrap();
    wait_until("a 2/2 split", deadline, || {
        covers_exactly(&[&a, &b], &topic, 4)
    })
    .await;
    let generation = b.generation().unwrap().generation_id;
    let a_had = a.assignment();
    // A static member sends no LeaveGroup on close.
    a.close().await;
    let a2 = Arc::new(GroupConsumer::new(config("a")).await.unwrap());
    a2.subscribe(&[&topic]).unwrap();
    wait_until("a back", deadline, || !a2.assignment().is_empty()).await;
    assert_eq!(a2.assignment(), a_had);
    assert_eq!(
        b.generation().unwrap().generation_id,
        generation,
        "no rebalance"
    );
    assert_eq!(a2.generation().unwrap().generation_id, generation);
    a2.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_application_stays_in_the_group() {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-slow");
    let group = common::unique("g-slow");
    create(&topic, 2).await;
    produce(&topic, 2, 5, "").await;
    let config = group_config(&group, AssignmentStrategy::Range, false)
        .to_builder()
        .session_timeout(Duration::from_secs(6))
        .build()
        .unwrap();
    let a = GroupConsumer::new(config).await.unwrap();
    a.subscribe(&[&topic]).unwrap();
    tokio::time::timeout(Duration::from_secs(10), a.recv())
        .await
        .unwrap()
        .unwrap();
    let generation = a.generation().unwrap();
    // Longer than the session timeout, shorter than max.poll.interval.ms: heartbeats go on.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(Instant::now() < deadline);
    assert_eq!(a.generation(), Some(generation));
    assert_eq!(a.assignment().len(), 2);
    tokio::time::timeout(Duration::from_secs(10), a.recv())
        .await
        .unwrap()
        .unwrap();
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exceeding_max_poll_interval_leaves_the_group_and_recv_rejoins() {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-poll");
    let group = common::unique("g-poll");
    create(&topic, 4).await;
    let config = group_config(&group, AssignmentStrategy::Range, false)
        .to_builder()
        .max_poll_interval(Duration::from_secs(3))
        .build()
        .unwrap();
    let rec_a = Arc::new(Recorder::default());
    let a = Arc::new(
        GroupConsumer::with_listener(config.clone(), rec_a.clone())
            .await
            .unwrap(),
    );
    let b = Arc::new(GroupConsumer::new(config).await.unwrap());
    a.subscribe(&[&topic]).unwrap();
    b.subscribe(&[&topic]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let log: Log = Arc::default();
    // Only b polls.
    let rb = spawn_reader(1, b.clone(), log.clone(), stop.clone());
    // a joins (in the background) and gets its share first: until then b may own everything
    // only because it was alone in the first generation.
    let had = |kind: &str| {
        rec_a
            .events
            .lock()
            .unwrap()
            .iter()
            .any(|(_, k, tps)| *k == kind && !tps.is_empty())
    };
    wait_until("a gets partitions", deadline, || had("assigned")).await;
    wait_until("b owns everything", deadline, || b.assignment().len() == 4).await;
    assert!(a.assignment().is_empty());
    assert!(had("lost"), "a's partitions were lost");
    // a polls again: it rejoins.
    let ra = spawn_reader(0, a.clone(), log.clone(), stop.clone());
    wait_until("a back in", deadline, || {
        covers_exactly(&[&a, &b], &topic, 4)
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    ra.await.unwrap();
    rb.await.unwrap();
    a.close().await;
    b.close().await;
}

/// Sleeps in `assigned` longer than the session timeout.
struct SlowListener {
    lost: AtomicBool,
    done: AtomicBool,
}

impl RebalanceListener for SlowListener {
    fn assigned<'a>(
        &'a self,
        _group: &'a GroupHandle,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let slow = !partitions.is_empty();
        Box::pin(async move {
            if slow {
                tokio::time::sleep(Duration::from_secs(8)).await;
                self.done.store(true, Ordering::SeqCst);
            }
        })
    }

    fn lost<'a>(&'a self, _partitions: &'a [TopicPartition]) -> ListenerFuture<'a> {
        self.lost.store(true, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heartbeats_continue_during_a_slow_listener() {
    let topic = common::unique("group-slow-listener");
    let group = common::unique("g-slow-listener");
    create(&topic, 2).await;
    produce(&topic, 2, 3, "").await;
    let config = group_config(&group, AssignmentStrategy::Range, false)
        .to_builder()
        .session_timeout(Duration::from_secs(6))
        .build()
        .unwrap();
    let listener = Arc::new(SlowListener {
        lost: AtomicBool::new(false),
        done: AtomicBool::new(false),
    });
    let a = GroupConsumer::with_listener(config, listener.clone())
        .await
        .unwrap();
    a.subscribe(&[&topic]).unwrap();
    let first = tokio::time::timeout(Duration::from_secs(20), a.recv())
        .await
        .expect("a record within 20 s")
        .unwrap();
    assert_eq!(first.offset, 0);
    let generation = a.generation().unwrap();
    let deadline = Instant::now() + DEADLINE;
    wait_until("the slow callback", deadline, || {
        listener.done.load(Ordering::SeqCst)
    })
    .await;
    // Without heartbeats during the callback the coordinator would have evicted the member
    // after 6 s, and the next heartbeat (every 300 ms) would find out.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.generation(), Some(generation));
    assert!(!listener.lost.load(Ordering::SeqCst));
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_consume_with_a_group_resumes_where_the_last_run_committed() {
    let topic = common::unique("cli-group");
    let group = common::unique("cli-group-g");
    crate::dispatch::produce(&topic, 1, 30).await;
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-once"))
            .args([
                "consume",
                "--topic",
                &topic,
                "--group",
                &group,
                "--from-beginning",
            ])
            .args(["-n", "10", "--bootstrap", &common::bootstrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first: Vec<String> = run().lines().map(str::to_string).collect();
    let second: Vec<String> = run().lines().map(str::to_string).collect();
    let want = |r: std::ops::Range<u32>| r.map(|i| i.to_string()).collect::<Vec<_>>();
    assert_eq!(first, want(0..10));
    assert_eq!(second, want(10..20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_come_out_of_a_stream_as_from_recv() {
    use futures::StreamExt;
    let topic = common::unique("stream");
    let group = common::unique("stream-g");
    crate::dispatch::produce(&topic, 2, 40).await;
    let consumer = GroupConsumer::new(group_config(&group, AssignmentStrategy::Range, false))
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let records: Vec<_> =
        tokio::time::timeout(DEADLINE, consumer.stream().take(40).collect::<Vec<_>>())
            .await
            .unwrap();
    let mut values: Vec<u32> = records
        .into_iter()
        .map(|r| {
            String::from_utf8(r.unwrap().value.unwrap().to_vec())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    values.sort();
    assert_eq!(values, (0..40).collect::<Vec<u32>>());
    consumer.close().await;
    // A closed consumer's stream ends.
    assert!(consumer.stream().next().await.is_none());
}

/// Produces values `from..to` (keyed, spread over the partitions) to an existing topic.
async fn produce_range(topic: &str, from: u32, to: u32) {
    let producer = Producer::new(common::config()).await.unwrap();
    let mut deliveries = Vec::new();
    for i in from..to {
        let r = ProducerRecord::new(topic, i.to_string()).key(format!("k{i}"));
        deliveries.push(producer.send(r).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await;
}

fn printed(path: &std::path::Path) -> BTreeSet<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_members_partitions_go_to_the_survivor_and_nothing_is_lost() {
    let topic = common::unique("kill-member");
    let group = common::unique("kill-member-g");
    common::cluster()
        .await
        .create_topic(NewTopic::new(&topic, 6))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let member = |name: &str| {
        let out = std::fs::File::create(dir.path().join(name)).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_kafka-once"))
            .args([
                "consume",
                "--topic",
                &topic,
                "--group",
                &group,
                "--from-beginning",
            ])
            .args(["--bootstrap", &common::bootstrap()])
            .args([
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=300",
            ])
            .args([
                "-X",
                "enable.auto.commit=true",
                "-X",
                "auto.commit.interval.ms=200",
            ])
            .args(["-X", "fetch.max.wait.ms=100"])
            .stdout(out)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut a = member("a.txt");
    let mut b = member("b.txt");
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Both members own partitions once both print records.
    let mut next = 0;
    loop {
        produce_range(&topic, next, next + 120).await;
        next += 120;
        tokio::time::sleep(Duration::from_millis(700)).await;
        if !printed(&dir.path().join("a.txt")).is_empty()
            && !printed(&dir.path().join("b.txt")).is_empty()
        {
            break;
        }
        assert!(next < 2400, "the two members never shared the partitions");
    }
    wait_for("everything so far printed", &|| {
        let mut all = printed(&dir.path().join("a.txt"));
        all.extend(printed(&dir.path().join("b.txt")));
        all.len() >= next as usize
    });
    b.kill().unwrap(); // SIGKILL
    b.wait().unwrap();
    let before = next;
    produce_range(&topic, before, before + 300).await;
    next += 300;
    // After B's session times out, A owns every partition and prints everything B would have.
    wait_for(
        "the survivor prints every record produced after the kill",
        &|| {
            let a_seen = printed(&dir.path().join("a.txt"));
            (before..next).all(|v| a_seen.contains(&v))
        },
    );
    a.kill().unwrap();
    a.wait().unwrap();
    let mut all = printed(&dir.path().join("a.txt"));
    all.extend(printed(&dir.path().join("b.txt")));
    assert_eq!(all, (0..next).collect::<BTreeSet<u32>>(), "no record lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_members_on_twelve_partitions_through_repeated_joins_and_leaves() {
    let deadline = Instant::now() + Duration::from_secs(90);
    let topic = common::unique("group-churn");
    let group = common::unique("g-churn");
    create(&topic, 12).await;
    produce(&topic, 12, 40, "").await;
    let log: Log = Arc::default();
    let join = |idx: usize| {
        let (group, topic, log) = (group.clone(), topic.clone(), log.clone());
        async move {
            let c = Arc::new(
                GroupConsumer::new(group_config(
                    &group,
                    AssignmentStrategy::CooperativeSticky,
                    true,
                ))
                .await
                .unwrap(),
            );
            c.subscribe(&[&topic]).unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let reader = spawn_reader(idx, c.clone(), log, stop.clone());
            (c, stop, reader)
        }
    };
    let mut members = Vec::new();
    for idx in 0..3 {
        members.push(join(idx).await);
    }
    // Five rounds: the oldest member leaves cleanly (reader stopped first, then close commits
    // and leaves), a new one joins, and more records arrive meanwhile.
    for round in 0..5 {
        produce(&topic, 12, 20, &format!("r{round}")).await;
        let (c, stop, reader) = members.remove(0);
        stop.store(true, Ordering::SeqCst);
        reader.await.unwrap();
        c.close().await;
        members.push(join(3 + round).await);
        let refs: Vec<&Arc<GroupConsumer>> = members.iter().map(|(c, ..)| c).collect();
        wait_until(
            "a complete, disjoint assignment after the churn",
            deadline,
            || covers_exactly(&refs, &topic, 12),
        )
        .await;
    }
    let total = 12 * (40 + 5 * 20);
    wait_until("every record", deadline, || {
        log.lock().unwrap().len() >= total
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (c, stop, reader) in members {
        stop.store(true, Ordering::SeqCst);
        reader.await.unwrap();
        c.close().await;
    }
    assert_exactly_once(&log.lock().unwrap(), 12, 140);
}
