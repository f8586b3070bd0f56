//! Network faults between the exactly-once runtime and a three-node cluster (replication factor
//! 3, `min.insync.replicas` 2), injected by the in-process [`FaultProxy`] that the cluster
//! advertises to its clients:
//!
//! - lost responses (an ambiguous commit: applied by the broker, never confirmed; and lost Fetch,
//!   OffsetFetch, SyncGroup and Heartbeat answers), with and without a SIGKILL of the worker right
//!   after, connections reset mid-frame, and slow links: every record still completes exactly
//!   once, audited from the journal and the side-effect ledger;
//! - a member cut off from the cluster for longer than its session timeout: it counts itself
//!   evicted and starts no workflow after that, its partitions move to the other member, which
//!   completes the records produced meanwhile; after the cut heals everything completes, with
//!   re-runs across the two journals only for what the cut-off member had in flight.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_once::cluster::NewTopic;
use kafka_once::config::{AutoOffsetReset, ClientConfig};
use kafka_once::consumer::TopicPartition;
use kafka_once::consumer::group::GroupConsumer;
use kafka_once::demo::audit;
use kafka_once::dispatch::{KafkaMessage, KafkaOnce, Ordering, WorkflowContext, WorkflowError};
use kafka_once::journal::Journal;
use kafka_once::testing::LocalKafka;
use tokio::time::Instant;

use crate::common;
use crate::crash::produce_counted_to;
use crate::proxy::FaultProxy;

const OFFSET_COMMIT: i16 = 8;
const FETCH: i16 = 1;
const OFFSET_FETCH: i16 = 9;
const HEARTBEAT: i16 = 12;
const SYNC_GROUP: i16 = 14;

/// A three-node cluster whose `CLIENT` listeners are reached through a fresh fault proxy.
async fn proxied_cluster() -> (LocalKafka, FaultProxy) {
    let _ = common::bootstrap(); // the log filter
    let proxy = FaultProxy::bind(3).await;
    let kafka = LocalKafka::builder()
        .brokers(3)
        .internal_topic_partitions(1)
        .advertise_clients_at(proxy.addresses())
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    proxy.route_to(&kafka);
    (kafka, proxy)
}

async fn committed_total(probe: &GroupConsumer, tps: &[TopicPartition]) -> i64 {
    common::committed(probe, tps).await.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_resets_and_delays_complete_every_record_exactly_once() {
    let _serial = common::OWN_CLUSTER.lock().await;
    let (kafka, proxy) = proxied_cluster().await;
    let direct = ClientConfig::new(kafka.bootstrap()).unwrap();
    let topic = common::unique("faults");
    let group = format!("{topic}-g");
    // Three times the faults in soak mode.
    let soak = std::env::var_os("KAFKA_ONCE_SOAK").is_some();
    let repeat = if soak { 3 } else { 1 };
    let (mut end, mut tally) = produce_counted_to(
        &direct,
        NewTopic::new(&topic, 6).replication_factor(3),
        12_000,
    )
    .await;
    let mut records = 12_000;
    let tps: Vec<TopicPartition> = end
        .keys()
        .map(|&p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let probe = GroupConsumer::new(direct.to_builder().group_id(&group).build().unwrap())
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let ledger = dir.path().join("ledger.txt");
    let log = dir.path().join("worker.log");
    let args: [&std::ffi::OsStr; 8] = [
        "--path".as_ref(),
        journal.as_os_str(),
        "--ordering".as_ref(),
        "partition".as_ref(),
        "--ledger".as_ref(),
        ledger.as_os_str(),
        "--instance-id".as_ref(),
        "faulty".as_ref(),
    ];
    let spawn = || common::demo_worker_at(&proxy.bootstrap(), &topic, &group, &args, &log);
    let fail = |what: String| -> ! {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        panic!(
            "{what}\nworker log tail (newest first):\n{}",
            tail.join("\n")
        )
    };

    // Each round: a fresh worker, one fault, then (mostly) a SIGKILL.
    enum Fault {
        /// Drop the response to the Nth request of an API key; kill this long after it happened.
        Drop(i16, u32, Option<Duration>),
        /// New connections reset after this many bytes, for a while.
        Reset(u64),
        /// Every frame delayed, for a while.
        Delay(Duration),
    }
    let rounds = [
        Fault::Drop(OFFSET_COMMIT, 1, Some(Duration::ZERO)),
        Fault::Drop(OFFSET_COMMIT, 3, Some(Duration::from_millis(800))),
        Fault::Drop(OFFSET_FETCH, 1, Some(Duration::from_millis(500))),
        Fault::Drop(SYNC_GROUP, 1, Some(Duration::from_millis(700))),
        Fault::Drop(FETCH, 4, Some(Duration::from_millis(300))),
        Fault::Reset(48 * 1024),
        Fault::Delay(Duration::from_millis(150)),
        Fault::Drop(HEARTBEAT, 2, Some(Duration::from_millis(400))),
    ];
    // Three times over with KAFKA_ONCE_SOAK=1. The last round is not killed: it must finish
    // through its own ambiguous commit.
    let last = Fault::Drop(OFFSET_COMMIT, 2, None);
    let mut kills = 0;
    let all = (0..repeat).flat_map(|_| rounds.iter()).chain([&last]);
    for (round, fault) in all.enumerate() {
        // A round needs traffic (a commit to lose, a connection carrying 48 KiB): top the topic
        // up when little is left to do.
        let done = committed_total(&probe, &tps).await;
        if end.values().sum::<i64>() - done < 3_000 {
            top_up(&direct, &topic, records, 3_000, &mut end, &mut tally).await;
            records += 3_000;
        }
        let total: i64 = end.values().sum();
        let mut worker = spawn();
        let dropped = proxy.dropped();
        let kill_after = match fault {
            Fault::Drop(api, nth, after) => {
                proxy.drop_response(*api, *nth);
                let start = Instant::now();
                while proxy.dropped() == dropped {
                    if start.elapsed() > Duration::from_secs(60) {
                        let c = committed_total(&probe, &tps).await;
                        fail(format!(
                            "round {round}: the response to request {nth} of API {api} never \
                             came; committed {c} of {total}"
                        ));
                    }
                    if let Ok(Some(status)) = worker.try_wait() {
                        fail(format!("round {round}: the worker exited ({status})"));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                *after
            }
            Fault::Reset(bytes) => {
                let resets = proxy.resets();
                proxy.reset_after_bytes(Some(*bytes));
                let start = Instant::now();
                while proxy.resets() == resets {
                    if start.elapsed() > Duration::from_secs(60) {
                        fail(format!(
                            "round {round}: no connection carried {bytes} bytes"
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                proxy.reset_after_bytes(None);
                Some(Duration::from_millis(1500))
            }
            Fault::Delay(delay) => {
                proxy.delay(*delay);
                tokio::time::sleep(Duration::from_secs(3)).await;
                proxy.delay(Duration::ZERO);
                Some(Duration::from_millis(500))
            }
        };
        let Some(after) = kill_after else {
            // Run to the end: every record committed, then a clean stop.
            let start = Instant::now();
            while committed_total(&probe, &tps).await != total {
                if start.elapsed() > Duration::from_secs(180) {
                    fail(format!(
                        "not all committed: {} of {total}",
                        committed_total(&probe, &tps).await
                    ));
                }
                if let Ok(Some(status)) = worker.try_wait() {
                    fail(format!("the last worker exited ({status})"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let status = common::stop_worker(&mut worker).await;
            assert!(status.success(), "{status}");
            break;
        };
        tokio::time::sleep(after).await;
        if let Ok(Some(status)) = worker.try_wait() {
            fail(format!("round {round}: the worker exited ({status})"));
        }
        worker.start_kill().unwrap();
        worker.wait().await.unwrap();
        kills += 1;
    }
    probe.close().await;
    // Six dropped responses per pass of the faults, and the last round's.
    assert!(
        proxy.dropped() > 6 * repeat as u64,
        "{} responses dropped",
        proxy.dropped()
    );
    assert!(
        proxy.resets() > proxy.dropped(),
        "no connection was reset mid-frame"
    );

    let journal = Journal::open(&journal).unwrap();
    let report = audit(&journal, &end, &tally, Some(&ledger)).unwrap();
    eprintln!(
        "{kills} kills, {} responses dropped, {} resets, {} connections\n{report}",
        proxy.dropped(),
        proxy.resets(),
        proxy.connections()
    );
    common::assert_exactly_once(&report, records);
    let (n, problems) = journal.verify();
    assert!(problems.is_empty(), "{problems:?} in {n} entries");
    drop(journal);
    kafka.stop().await.unwrap();
}

/// What the workflows of the fencing test saw: (member, partition, offset, when it started).
type Starts = Arc<Mutex<Vec<(char, i32, i64, Instant)>>>;

fn member(
    dir: &std::path::Path,
    name: char,
    config: ClientConfig,
    topic: &str,
    starts: &Starts,
) -> Arc<KafkaOnce> {
    let app = Arc::new(
        KafkaOnce::open(dir.join(format!("journal-{name}")))
            .unwrap()
            .handle_signals(false),
    );
    let starts = starts.clone();
    app.kafka_consumer(config, [topic.to_string()])
        .ordering(Ordering::Partition)
        .max_in_flight(64)
        .workflow(move |_ctx: WorkflowContext, msg: KafkaMessage| {
            let starts = starts.clone();
            async move {
                starts
                    .lock()
                    .unwrap()
                    .push((name, msg.partition(), msg.offset(), Instant::now()));
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok::<(), WorkflowError>(())
            }
        })
        .unwrap();
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_past_its_session_is_fenced_and_its_partitions_move() {
    let _serial = common::OWN_CLUSTER.lock().await;
    let (kafka, proxy) = proxied_cluster().await;
    let direct = ClientConfig::new(kafka.bootstrap()).unwrap();
    let topic = common::unique("fenced");
    let group = format!("{topic}-g");
    const FIRST: usize = 8_000;
    const SECOND: usize = 2_000;
    let (_, _) = produce_counted_to(
        &direct,
        NewTopic::new(&topic, 6).replication_factor(3),
        FIRST,
    )
    .await;
    let session = Duration::from_secs(6);
    // Each member's client id names it in the logs (`KAFKA_ONCE_LOG`).
    let settings = |bootstrap: String, client: &str| {
        ClientConfig::new(bootstrap)
            .unwrap()
            .to_builder()
            .client_id(client)
            .group_id(&group)
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .session_timeout(session)
            .heartbeat_interval(Duration::from_millis(500))
            .fetch_max_wait(Duration::from_millis(100))
            .build()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let starts: Starts = Arc::default();
    let a = member(
        dir.path(),
        'A',
        settings(proxy.bootstrap(), "member-a"),
        &topic,
        &starts,
    );
    let b = member(
        dir.path(),
        'B',
        settings(kafka.bootstrap(), "member-b"),
        &topic,
        &starts,
    );
    let run = |app: &Arc<KafkaOnce>| {
        let app = app.clone();
        tokio::spawn(async move { app.run().await })
    };
    let (run_a, run_b) = (run(&a), run(&b));
    let count = |who: char| starts.lock().unwrap().iter().filter(|s| s.0 == who).count();
    // Both members work.
    let start = Instant::now();
    while count('A') < 200 || count('B') < 200 {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "A {} B {}",
            count('A'),
            count('B')
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let probe = GroupConsumer::new(direct.to_builder().group_id(&group).build().unwrap())
        .await
        .unwrap();
    let tps: Vec<TopicPartition> = (0..6)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    // Cut A off for three session timeouts.
    proxy.blackhole(true);
    let cut = Instant::now();
    let fenced_by = cut + session + Duration::from_secs(2);
    // What A committed before the cut (a commit on its way when it came has landed by now).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let committed_at_cut = common::committed(&probe, &tps).await;
    produce_more(&direct, &topic, SECOND).await;
    // B takes A's partitions and completes everything produced, while A is still cut off.
    let total = (FIRST + SECOND) as u64;
    let done_b = || b.metrics().iter().map(|m| m.processed).sum::<u64>();
    while Instant::now() < cut + 3 * session {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let late: Vec<_> = starts
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.0 == 'A' && s.3 > fenced_by)
        .map(|s| (s.1, s.2))
        .collect();
    assert!(
        late.is_empty(),
        "the cut-off member started {} workflows after its session ended, first {:?}",
        late.len(),
        &late[..late.len().min(10)]
    );
    let seen_b: std::collections::HashSet<(i32, i64)> = starts
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.0 == 'B' && s.3 > cut)
        .map(|s| (s.1, s.2))
        .collect();
    let partitions_b: std::collections::BTreeSet<i32> = seen_b.iter().map(|s| s.0).collect();
    assert_eq!(
        partitions_b.len(),
        6,
        "B worked on {partitions_b:?} during the cut; A's partitions did not move"
    );
    // Heal: A rejoins; everything ends completed and committed.
    proxy.blackhole(false);
    let start = Instant::now();
    while committed_total(&probe, &tps).await != total as i64 {
        if start.elapsed() > Duration::from_secs(120) {
            // Say where it stuck: per-partition commits and both members' view.
            panic!(
                "committed {} of {total}; B processed {}\ncommitted {:?}\nA {:?}\nB {:?}",
                committed_total(&probe, &tps).await,
                done_b(),
                common::committed(&probe, &tps).await,
                a.metrics(),
                b.metrics()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    probe.close().await;
    a.shutdown_handle().shutdown();
    b.shutdown_handle().shutdown();
    run_a.await.unwrap().unwrap();
    run_b.await.unwrap().unwrap();
    // Every record ran. One that ran in both members is the documented window: A started it
    // before the cut, above what A had committed, and B ran it again after taking over.
    let mut runs: HashMap<(i32, i64), Vec<(char, Instant)>> = HashMap::new();
    for (who, p, o, at) in starts.lock().unwrap().iter() {
        runs.entry((*p, *o)).or_default().push((*who, *at));
    }
    assert_eq!(runs.len() as u64, total, "records that never ran");
    let twice: BTreeMap<(i32, i64), Vec<(char, Instant)>> =
        runs.into_iter().filter(|(_, who)| who.len() > 1).collect();
    for (&(p, o), who) in &twice {
        let names: Vec<char> = who.iter().map(|w| w.0).collect();
        assert!(
            names.len() == 2 && names.contains(&'A') && names.contains(&'B'),
            "record {p}/{o} ran as {names:?}"
        );
        let a_at = who.iter().find(|w| w.0 == 'A').unwrap().1;
        assert!(
            a_at < fenced_by,
            "record {p}/{o}: A ran it after its session ended and B ran it too"
        );
        assert!(
            o >= committed_at_cut.get(&p).copied().unwrap_or(0),
            "record {p}/{o} ran again below the offset committed before the cut ({})",
            committed_at_cut.get(&p).copied().unwrap_or(0)
        );
    }
    let a_after_cut = starts
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.0 == 'A' && s.3 > cut && s.3 <= fenced_by)
        .count();
    eprintln!(
        "{} records re-ran after the cut (A's uncommitted window); A started {a_after_cut} between \
         the cut and the end of its session; committed at the cut: {committed_at_cut:?}",
        twice.len()
    );
    kafka.stop().await.unwrap();
}

/// Appends `n` records keyed as `produce_counted_to` keys them (numbered from `from`), adding
/// them to `end` and `tally`.
async fn top_up(
    config: &ClientConfig,
    topic: &str,
    from: usize,
    n: usize,
    end: &mut BTreeMap<i32, i64>,
    tally: &mut HashMap<Vec<u8>, u64>,
) {
    let producer = kafka_once::producer::Producer::new(config.clone())
        .await
        .unwrap();
    let mut pending = Vec::with_capacity(n);
    for i in from..from + n {
        let key = format!("k{}", i % 97);
        *tally.entry(key.clone().into_bytes()).or_default() += 1;
        let record = kafka_once::producer::ProducerRecord::new(topic, i.to_string()).key(key);
        pending.push(producer.send(record).await.unwrap());
    }
    for d in pending {
        let m = d.await.unwrap();
        let e = end.entry(m.partition).or_default();
        *e = (*e).max(m.offset + 1);
    }
    producer.close().await;
}

async fn produce_more(config: &ClientConfig, topic: &str, n: usize) {
    let producer = kafka_once::producer::Producer::new(config.clone())
        .await
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let record = kafka_once::producer::ProducerRecord::new(topic, format!("late-{i}"))
            .key(format!("k{}", i % 97));
        pending.push(producer.send(record).await.unwrap());
    }
    for d in pending {
        d.await.unwrap();
    }
    producer.close().await;
}
