//! Consumer-group interop with the Java client: a Java `KafkaConsumer` (the peer in
//! `tests/peers/java`) and our `GroupConsumer` share one group and split the partitions with no
//! overlap and no orphan, for `range` and `cooperative-sticky`, whichever of the two leads the
//! group (the first member to join is the leader and computes the assignment).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_once::cluster::NewTopic;
use kafka_once::config::{AssignmentStrategy, AutoOffsetReset, ClientConfig};
use kafka_once::consumer::group::GroupConsumer;
use serde_json::Value;
use tokio::time::Instant;

use crate::common;

const PARTITIONS: i32 = 6;
/// How long the Java peer stays in the group.
const PEER_DURATION: Duration = Duration::from_secs(25);
/// Every test must finish well within this (the first run may build the peer with Maven).
const DEADLINE: Duration = Duration::from_secs(90);
/// How long both assignments must hold still before they are compared.
const STABLE: Duration = Duration::from_secs(3);

fn group_config(group: &str, strategy: AssignmentStrategy) -> ClientConfig {
    common::config()
        .to_builder()
        .group_id(group)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(300))
        .max_poll_interval(Duration::from_secs(20))
        .partition_assignment_strategy(vec![strategy])
        .fetch_max_wait(Duration::from_millis(100))
        .build()
        .unwrap()
}

/// The Java peer's stdout lines, parsed, as they arrive.
type PeerLog = Arc<Mutex<Vec<Value>>>;

/// Kills and reaps the peer when dropped, so a failing test leaves no process behind.
struct Peer {
    child: Child,
    log: PeerLog,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn start(topic: &str, group: &str, strategy: &str) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/java/peer.sh");
        let mut child = Command::new("bash")
            .arg(script)
            .args(["group-consume", "--bootstrap", &common::bootstrap()])
            .args(["--topic", topic, "--group", group, "--strategy", strategy])
            .args(["--duration-ms", &PEER_DURATION.as_millis().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Java peer (needs Java 17+ and Maven)");
        let stdout = child.stdout.take().unwrap();
        let log = PeerLog::default();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("peer printed {line:?}: {e}"));
                sink.lock().unwrap().push(value);
            }
        });
        Peer { child, log }
    }

    /// The peer's partitions after its latest rebalance callback, and how many events it printed.
    fn owned(&self) -> (BTreeSet<i32>, usize) {
        let log = self.log.lock().unwrap();
        let owned = log
            .iter()
            .rev()
            .find_map(|e| e.get("owned"))
            .map(partitions)
            .unwrap_or_default();
        (owned, log.len())
    }

    fn events(&self) -> Vec<Value> {
        self.log.lock().unwrap().clone()
    }
}

fn partitions(v: &Value) -> BTreeSet<i32> {
    v.as_array()
        .expect("a partition list")
        .iter()
        .map(|p| p.as_i64().expect("a partition number") as i32)
        .collect()
}

fn ours(c: &GroupConsumer, topic: &str) -> BTreeSet<i32> {
    c.assignment()
        .into_iter()
        .map(|tp| {
            assert_eq!(&*tp.topic, topic, "assigned a partition of another topic");
            tp.partition
        })
        .collect()
}

/// Calls `recv` (the topic is empty: this only drives the group) until `cond` holds.
async fn drive_until(
    c: &GroupConsumer,
    what: &str,
    deadline: Instant,
    peer: Option<&Peer>,
    mut cond: impl FnMut() -> bool,
) {
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; peer events: {:?}",
            peer.map(Peer::events)
        );
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), c.recv()).await {
            r.expect("recv");
        }
    }
}

async fn share_with_java(strategy: AssignmentStrategy, java_first: bool) {
    let deadline = Instant::now() + DEADLINE;
    let topic = common::unique("group-interop");
    let group = common::unique("g-interop");
    common::cluster()
        .await
        .create_topic(NewTopic::new(&topic, PARTITIONS))
        .await
        .unwrap();
    let all: BTreeSet<i32> = (0..PARTITIONS).collect();

    let ours_consumer;
    let peer;
    if java_first {
        // The Java peer joins alone (so it leads the group) and takes every partition.
        peer = Peer::start(&topic, &group, strategy.as_str());
        while peer.owned().0 != all {
            assert!(
                Instant::now() < deadline,
                "the Java peer alone never owned every partition: {:?}",
                peer.events()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ours_consumer = GroupConsumer::new(group_config(&group, strategy))
            .await
            .unwrap();
        ours_consumer.subscribe(&[&topic]).unwrap();
    } else {
        // We join alone (so we lead the group) and take every partition; then the peer joins.
        ours_consumer = GroupConsumer::new(group_config(&group, strategy))
            .await
            .unwrap();
        ours_consumer.subscribe(&[&topic]).unwrap();
        let c = &ours_consumer;
        drive_until(c, "us alone to own every partition", deadline, None, || {
            ours(c, &topic) == all
        })
        .await;
        peer = Peer::start(&topic, &group, strategy.as_str());
    }
    let joined = Instant::now();
    let c = &ours_consumer;

    // Both sides' assignments must stop moving for STABLE, then they are compared.
    let mut last = (ours(c, &topic), peer.owned());
    let mut since = Instant::now();
    drive_until(
        c,
        "both assignments to settle",
        deadline,
        Some(&peer),
        || {
            let now = (ours(c, &topic), peer.owned());
            if now != last {
                last = now;
                since = Instant::now();
            }
            let (mine, (theirs, _)) = &last;
            since.elapsed() >= STABLE && !mine.is_empty() && !theirs.is_empty()
        },
    )
    .await;
    assert!(
        joined.elapsed() < PEER_DURATION - Duration::from_secs(2),
        "the peer's session may be ending; the comparison is not trustworthy"
    );

    let (mine, (theirs, _)) = last;
    let events = peer.events();
    assert!(
        mine.is_disjoint(&theirs),
        "{strategy:?}: both own {:?} (ours {mine:?}, Java {theirs:?}; peer events {events:?})",
        mine.intersection(&theirs).collect::<Vec<_>>()
    );
    let union: BTreeSet<i32> = mine.union(&theirs).copied().collect();
    assert_eq!(
        union, all,
        "{strategy:?}: orphaned partitions (ours {mine:?}, Java {theirs:?}; peer events {events:?})"
    );
    if strategy == AssignmentStrategy::Range {
        // RangeAssignor gives each of two members a contiguous half of the six partitions.
        assert_eq!(mine.len(), 3, "range split: ours {mine:?}, Java {theirs:?}");
    }
    ours_consumer.close().await;
    drop(peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn range_with_java_leading() {
    share_with_java(AssignmentStrategy::Range, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn range_with_us_leading() {
    share_with_java(AssignmentStrategy::Range, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_sticky_with_java_leading() {
    share_with_java(AssignmentStrategy::CooperativeSticky, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_sticky_with_us_leading() {
    share_with_java(AssignmentStrategy::CooperativeSticky, false).await;
}
