//! Delivery semantics as properties. proptest draws a case (an ordering mode, handler failures
//! and panics on first attempts) and a sequence of operations: produce, a Java transaction that
//! commits or aborts, let the workers run, SIGKILL the first member and restart it, a second
//! member (its own journal, as on another machine) joining and leaving. The operations run
//! against the broker (the shared one, or `KAFKA_BOOTSTRAP`) with the demo worker as child
//! processes. Checked after every step:
//!
//! - commits are monotonic;
//! - commits never outrun the journals: after a kill, every data record below a committed
//!   offset completed in a journal that can be read then;
//!
//! and at the end, after the members drain the topic:
//!
//! - offset gaps (transaction markers, aborted records) do not stall: the commit reaches the end;
//! - no loss: every committed-data record completed, in at most one completion per journal;
//! - no record of an aborted transaction ever ran;
//! - in `Ordering::Partition`, each member ran each partition's records in offset order.
//!
//! A failing case is shrunk (a few steps) and its seed saved in `proptest-regressions/`, which
//! is committed. CI runs 3 cases; `KAFKA_ONCE_SOAK=1` runs 20.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kafka_once::cluster::NewTopic;
use kafka_once::consumer::TopicPartition;
use kafka_once::consumer::group::GroupConsumer;
use kafka_once::demo::done_key;
use kafka_once::journal::Journal;
use kafka_once::producer::{Producer, ProducerRecord};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use tokio::process::Child;
use tokio::time::Instant;

use crate::common;
use crate::dispatch::runtime_config;

const PARTITIONS: i32 = 3;
const MAX_IN_FLIGHT: usize = 64;

#[derive(Debug, Clone)]
enum Op {
    /// Plain records, spread over the partitions by key.
    Produce(u16),
    /// A Java producer's transaction of this many records on partition 0, committed or aborted.
    Transaction { records: u8, abort: bool },
    /// Let the members work for this many milliseconds.
    Run(u16),
    /// SIGKILL the first member (if it runs), at once.
    Kill,
    /// Start the first member (if it is down).
    Restart,
    /// Start the second member (if it is down).
    Join,
    /// Stop the second member cleanly (if it runs).
    Leave,
}

#[derive(Debug, Clone)]
struct Case {
    ordering: &'static str,
    fail_every: Option<u64>,
    panic_every: Option<u64>,
    ops: Vec<Op>,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (50u16..1_500).prop_map(Op::Produce),
        1 => (1u8..20, any::<bool>()).prop_map(|(records, abort)| Op::Transaction { records, abort }),
        3 => (100u16..2_000).prop_map(Op::Run),
        2 => Just(Op::Kill),
        2 => Just(Op::Restart),
        1 => Just(Op::Join),
        1 => Just(Op::Leave),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just("none"), Just("key"), Just("partition")],
        proptest::option::of(5u64..50),
        proptest::option::of(5u64..50),
        proptest::collection::vec(op(), 4..12),
    )
        .prop_map(|(ordering, fail_every, panic_every, ops)| Case {
            ordering,
            fail_every,
            panic_every,
            ops,
        })
}

/// One member: a demo worker with its own journal and ledger.
struct Member {
    name: &'static str,
    journal: PathBuf,
    ledger: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Length of the log when the running child started.
    log_from: usize,
}

impl Member {
    fn new(dir: &Path, name: &'static str) -> Member {
        Member {
            name,
            journal: dir.join(format!("{name}-journal")),
            ledger: dir.join(format!("{name}-ledger.txt")),
            log: dir.join(format!("{name}.log")),
            child: None,
            log_from: 0,
        }
    }

    fn start(&mut self, case: &Case, topic: &str, group: &str) {
        if self.running() {
            return;
        }
        let mut args: Vec<String> = vec![
            "--path".into(),
            self.journal.display().to_string(),
            "--ordering".into(),
            case.ordering.into(),
            "--ledger".into(),
            self.ledger.display().to_string(),
            "--max-in-flight".into(),
            MAX_IN_FLIGHT.to_string(),
            "--instance-id".into(),
            format!("model-{}", self.name),
        ];
        if let Some(n) = case.fail_every {
            args.extend(["--fail-every".into(), n.to_string()]);
        }
        if let Some(n) = case.panic_every {
            args.extend(["--panic-every".into(), n.to_string()]);
        }
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        self.log_from = std::fs::read(&self.log).map_or(0, |l| l.len());
        self.child = Some(common::demo_worker(topic, group, &args, &self.log));
    }

    fn running(&mut self) -> bool {
        match &mut self.child {
            None => false,
            Some(c) => match c.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => panic!(
                    "member {} exited by itself ({status}); log:\n{}",
                    self.name,
                    tail(&self.log)
                ),
                Err(e) => panic!("{e}"),
            },
        }
    }

    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.start_kill().unwrap();
            c.wait().await.unwrap();
        }
    }

    async fn stop(&mut self) {
        if self.running() {
            // SIGTERM asks for a clean stop once the worker runs; before it has joined its
            // group it would only end the process.
            let start = Instant::now();
            while !std::fs::read(&self.log).is_ok_and(|l| {
                String::from_utf8_lossy(&l[self.log_from.min(l.len())..])
                    .contains("joined the group")
            }) {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "member {} never joined",
                    self.name
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut c = self.child.take().unwrap();
            let status = common::stop_worker(&mut c).await;
            assert!(status.success(), "member {} exit {status}", self.name);
        }
    }

    /// `done` counts per record key, if the member ever ran; only while it is down.
    fn done(&self) -> HashMap<Vec<u8>, u64> {
        if !self.journal.exists() {
            return HashMap::new();
        }
        let j = Journal::open(&self.journal).unwrap_or_else(|e| panic!("{}: {e}", self.name));
        j.state_scan("done")
            .unwrap()
            .into_iter()
            .map(|(k, v)| {
                let n = <[u8; 8]>::try_from(&v[..]).map_or(0, u64::from_be_bytes);
                (k.to_vec(), n)
            })
            .collect()
    }

    /// (partition, offset) of every workflow run, in the order they started.
    fn runs(&self) -> Vec<(i32, i64)> {
        let text = std::fs::read_to_string(&self.ledger).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
            })
            .collect()
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(30).collect();
    lines.join("\n")
}

async fn run_case(case: Case) {
    let topic = common::unique("model");
    let group = format!("{topic}-g");
    common::cluster()
        .await
        .create_topic(NewTopic::new(&topic, PARTITIONS))
        .await
        .unwrap();
    let producer = Producer::new(common::config()).await.unwrap();
    let probe = GroupConsumer::new(runtime_config(&group)).await.unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut a = Member::new(dir.path(), "a");
    let mut b = Member::new(dir.path(), "b");
    // Records that must complete, and records of aborted transactions, by (partition, offset).
    let mut data: HashSet<(i32, i64)> = HashSet::new();
    let mut aborted: HashSet<(i32, i64)> = HashSet::new();
    let mut produced = 0usize;
    // Each partition's log end: the producing here is sequential, so it is known exactly.
    let mut ends: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut last_commit: BTreeMap<i32, i64> = BTreeMap::new();
    a.start(&case, &topic, &group);
    for (step, op) in case.ops.iter().enumerate() {
        match op {
            Op::Produce(n) => {
                let mut pending = Vec::new();
                for i in 0..*n as usize {
                    let r = ProducerRecord::new(&topic, format!("v{}", produced + i))
                        .key(format!("k{}", (produced + i) % 23));
                    pending.push(producer.send(r).await.unwrap());
                }
                produced += *n as usize;
                for d in pending {
                    let m = d.await.unwrap();
                    data.insert((m.partition, m.offset));
                    let end = ends.get_mut(&m.partition).unwrap();
                    *end = (*end).max(m.offset + 1);
                }
            }
            Op::Transaction { records, abort } => {
                let before = ends[&0];
                let values: Vec<String> = (0..*records).map(|i| format!("t{step}-{i}")).collect();
                let end = if *abort { "abort" } else { "commit" };
                let (t, id) = (topic.clone(), format!("{topic}-txn-{step}"));
                tokio::task::spawn_blocking(move || {
                    crate::consumer::java_transaction(&t, &id, end, &values)
                })
                .await
                .unwrap();
                // The records sit at `before..before + records`; the marker follows them.
                let set = if *abort { &mut aborted } else { &mut data };
                for o in before..before + i64::from(*records) {
                    set.insert((0, o));
                }
                ends.insert(0, before + i64::from(*records) + 1);
            }
            Op::Run(ms) => tokio::time::sleep(Duration::from_millis(u64::from(*ms))).await,
            Op::Kill => {
                a.kill().await;
                if !b.running() {
                    check_commits_covered(&probe, &tps, &data, &[&a, &b]).await;
                }
            }
            Op::Restart => a.start(&case, &topic, &group),
            Op::Join => b.start(&case, &topic, &group),
            Op::Leave => b.stop().await,
        }
        // Commits never go back.
        let now = common::committed(&probe, &tps).await;
        for (p, o) in &now {
            let before = last_commit.get(p).copied().unwrap_or(0);
            assert!(
                *o >= before,
                "step {step} ({op:?}): partition {p} committed {o} after {before}"
            );
        }
        last_commit = now;
    }
    producer.close().await;

    // Drain: the first member runs until the commit reaches the end of every partition.
    a.start(&case, &topic, &group);
    let start = Instant::now();
    loop {
        let now = common::committed(&probe, &tps).await;
        if ends
            .iter()
            .all(|(p, e)| now.get(p).copied().unwrap_or(0) >= *e)
        {
            break;
        }
        assert!(
            a.running() && start.elapsed() < Duration::from_secs(120),
            "the commit stalls at {now:?}, end {ends:?}; log of a:\n{}",
            tail(&a.log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.stop().await;
    b.stop().await;
    probe.close().await;

    let members = [&a, &b];
    let done: Vec<HashMap<Vec<u8>, u64>> = members.iter().map(|m| m.done()).collect();
    for &(p, o) in &data {
        let key = done_key(p, o);
        let counts: Vec<u64> = done
            .iter()
            .map(|d| d.get(key.as_bytes()).copied().unwrap_or(0))
            .collect();
        assert!(
            counts.iter().sum::<u64>() >= 1,
            "record {p}/{o} never completed"
        );
        assert!(
            counts.iter().all(|&n| n <= 1),
            "record {p}/{o} completed {counts:?} times (per member)"
        );
    }
    let mut ran_aborted: Vec<(i32, i64)> = Vec::new();
    for m in members {
        let runs = m.runs();
        ran_aborted.extend(runs.iter().filter(|r| aborted.contains(r)));
        if case.ordering == "partition" {
            let mut last: HashMap<i32, i64> = HashMap::new();
            for &(p, o) in &runs {
                let prev = last.insert(p, o).unwrap_or(-1);
                assert!(
                    o >= prev,
                    "member {}: partition {p} ran {o} after {prev}",
                    m.name
                );
            }
        }
    }
    assert!(
        ran_aborted.is_empty(),
        "records of aborted transactions ran: {ran_aborted:?}"
    );
    let keys: HashSet<Vec<u8>> = data
        .iter()
        .map(|&(p, o)| done_key(p, o).into_bytes())
        .collect();
    for d in &done {
        if let Some(k) = d.keys().find(|k| !keys.contains(*k)) {
            panic!(
                "a completion for a record that is not data: {}",
                String::from_utf8_lossy(k)
            );
        }
    }
}

/// With every member down (the journals can be read): each data record below a committed offset
/// completed in some journal.
async fn check_commits_covered(
    probe: &GroupConsumer,
    tps: &[TopicPartition],
    data: &HashSet<(i32, i64)>,
    members: &[&Member],
) {
    let commits = common::committed(probe, tps).await;
    let done: Vec<HashMap<Vec<u8>, u64>> = members.iter().map(|m| m.done()).collect();
    for &(p, o) in data {
        if o < commits.get(&p).copied().unwrap_or(0) {
            let key = done_key(p, o);
            assert!(
                done.iter().any(|d| d.contains_key(key.as_bytes())),
                "partition {p} committed {} but record {o} completed in no journal",
                commits[&p]
            );
        }
    }
}

#[test]
fn delivery_properties_hold_under_random_operations() {
    let cases = if std::env::var_os("KAFKA_ONCE_SOAK").is_some() {
        20
    } else {
        3
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = Config {
        cases,
        max_shrink_iters: 8,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/model.txt",
        ))),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| {
        eprintln!("model case: {case:?}");
        rt.block_on(run_case(case));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
