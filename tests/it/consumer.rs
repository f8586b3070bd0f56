//! The consumer with manual assignment, against the real broker: everything our producer wrote
//! comes back in order, seek/pause/resume, auto.offset.reset, the prefetch budget, incremental
//! fetch sessions, and read_committed against the Java transactional producer.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_once::cluster::NewTopic;
use kafka_once::config::{AutoOffsetReset, ClientConfig, CompressionType, IsolationLevel};
use kafka_once::consumer::{Consumer, ConsumerError, ConsumerRecord, TopicPartition};
use kafka_once::producer::{Producer, ProducerRecord};
use kafka_once::protocol::records::Header;

use crate::common;

/// (partition, offset) → (key, value, headers), as produced.
type Sent = BTreeMap<(i32, i64), (Option<Bytes>, Option<Bytes>, Vec<Header>)>;

const CODECS: [CompressionType; 5] = [
    CompressionType::None,
    CompressionType::Gzip,
    CompressionType::Snappy,
    CompressionType::Lz4,
    CompressionType::Zstd,
];

fn consumer_config(reset: AutoOffsetReset) -> ClientConfig {
    common::config()
        .to_builder()
        .auto_offset_reset(reset)
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

/// Produces `n` records with keys, null keys and values, and headers; `partition` pins them.
async fn produce(
    topic: &str,
    n: usize,
    codec: CompressionType,
    partition: Option<i32>,
    tag: &str,
) -> Sent {
    let config = common::config_with_codec(codec);
    let producer = Producer::new(config).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let key = (i % 5 != 4).then(|| Bytes::from(format!("key-{}", i % 11)));
        let value =
            (i % 7 != 6).then(|| Bytes::from(format!("{tag} value {i} {}", "x".repeat(i % 50))));
        let headers = match i % 3 {
            0 => vec![],
            1 => vec![Header::new("trace", format!("t{i}"))],
            _ => vec![
                Header::new("a", "1"),
                Header {
                    key: "null".into(),
                    value: None,
                },
            ],
        };
        let record = ProducerRecord {
            topic: topic.to_string(),
            partition,
            key: key.clone(),
            value: value.clone(),
            headers: headers.clone(),
            timestamp: None,
        };
        pending.push((producer.send(record).await.unwrap(), (key, value, headers)));
    }
    producer.flush().await;
    let mut sent = Sent::new();
    for (delivery, record) in pending {
        let meta = delivery.await.unwrap();
        sent.insert((meta.partition, meta.offset), record);
    }
    producer.close().await;
    sent
}

/// Receives until `n` records arrived (panics after 60 s without progress).
async fn recv_n(consumer: &Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await {
            Ok(Ok(r)) => out.push(r),
            Ok(Err(e)) => panic!("recv failed after {} records: {e}", out.len()),
            Err(_) => panic!("no record for 60 s after {} of {n}", out.len()),
        }
    }
    out
}

/// Asserts nothing more arrives within `wait`.
async fn assert_quiet(consumer: &Consumer, wait: Duration) {
    if let Ok(r) = tokio::time::timeout(wait, consumer.recv()).await {
        panic!("unexpected delivery: {r:?}");
    }
}

fn check_against(sent: &Sent, got: &[ConsumerRecord]) {
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in got {
        by_partition.entry(r.partition).or_default().push(r.offset);
        let (key, value, headers) = sent
            .get(&(r.partition, r.offset))
            .unwrap_or_else(|| panic!("unexpected record {}/{}", r.partition, r.offset));
        assert_eq!(&r.key, key, "key at {}/{}", r.partition, r.offset);
        assert_eq!(&r.value, value, "value at {}/{}", r.partition, r.offset);
        assert_eq!(
            &r.headers, headers,
            "headers at {}/{}",
            r.partition, r.offset
        );
        assert!(r.leader_epoch >= 0, "leader epoch stamped by the broker");
        assert!(r.timestamp > 0);
    }
    let mut expected: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o) in sent.keys() {
        expected.entry(*p).or_default().push(*o);
    }
    // Per-partition offset order, no gaps, no duplicates.
    assert_eq!(by_partition, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumes_everything_our_producer_wrote_in_order_for_every_codec() {
    for codec in CODECS {
        let topic = common::unique(&format!("consume-{codec}"));
        create(&topic, 3).await;
        let sent = produce(&topic, 400, codec, None, "c").await;
        let consumer = Consumer::new(consumer_config(AutoOffsetReset::Earliest))
            .await
            .unwrap();
        consumer.assign_topics(&[&topic]).await.unwrap();
        let got = recv_n(&consumer, sent.len()).await;
        check_against(&sent, &got);
        assert_quiet(&consumer, Duration::from_millis(300)).await;
        for p in 0..3 {
            let end = sent
                .keys()
                .filter(|(q, _)| *q == p)
                .map(|(_, o)| o + 1)
                .max();
            assert_eq!(
                consumer.position(&topic, p),
                end.or(Some(0)),
                "{codec} p{p}"
            );
        }
        consumer.close().await;
        assert!(matches!(consumer.recv().await, Err(ConsumerError::Closed)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_offset_reset_earliest_latest_and_none() {
    let topic = common::unique("reset");
    create(&topic, 1).await;
    produce(&topic, 10, CompressionType::None, Some(0), "old").await;

    let earliest = Consumer::new(consumer_config(AutoOffsetReset::Earliest))
        .await
        .unwrap();
    earliest.assign(&[(&topic, 0)]).await.unwrap();
    assert_eq!(earliest.position(&topic, 0), Some(0));

    let latest = Consumer::new(consumer_config(AutoOffsetReset::Latest))
        .await
        .unwrap();
    latest.assign(&[(&topic, 0)]).await.unwrap();
    assert_eq!(latest.position(&topic, 0), Some(10));

    let none = Consumer::new(consumer_config(AutoOffsetReset::None))
        .await
        .unwrap();
    none.assign(&[(&topic, 0)]).await.unwrap();
    assert_eq!(none.position(&topic, 0), None);
    let err = tokio::time::timeout(Duration::from_secs(10), none.recv())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, ConsumerError::NoOffset { topic: t, partition: 0 } if **t == *topic),
        "{err}"
    );
    // Reported once; the partition stays stopped until a seek.
    assert_quiet(&none, Duration::from_millis(300)).await;
    none.seek(&topic, 0, 7).unwrap();
    let got = recv_n(&none, 3).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![7, 8, 9]
    );

    produce(&topic, 5, CompressionType::None, Some(0), "new").await;
    let new = recv_n(&latest, 5).await;
    assert_eq!(
        new.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![10, 11, 12, 13, 14]
    );
    assert!(
        new.iter()
            .all(|r| r.value.as_ref().unwrap().starts_with(b"new"))
    );
    let all = recv_n(&earliest, 15).await;
    assert_eq!(
        all.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..15).collect::<Vec<_>>()
    );

    // An out-of-range position with `none` is a typed error naming the offset.
    none.seek(&topic, 0, 1_000).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), none.recv())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConsumerError::OffsetOutOfRange {
                offset: 1_000,
                partition: 0,
                ..
            }
        ),
        "{err}"
    );
    // With `earliest`, an out-of-range position resets to the start.
    earliest.seek(&topic, 0, 1_000).unwrap();
    let again = recv_n(&earliest, 2).await;
    assert_eq!(again[0].offset, 0);
    for c in [earliest, latest, none] {
        c.close().await;
    }
}

/// Receives with `try_recv_into` (runs of records per lock) until `n` arrived, `max` at a time.
async fn recv_into_n(consumer: &Consumer, n: usize, max: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let before = out.len();
        let want = max.min(n - out.len());
        if let Some(e) = consumer.try_recv_into(&mut out, want) {
            panic!("try_recv_into failed after {} records: {e}", out.len());
        }
        assert!(out.len() - before <= max, "more than max records at once");
        if out.len() == before {
            match tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await {
                Ok(Ok(r)) => out.push(r),
                Ok(Err(e)) => panic!("recv failed after {} records: {e}", out.len()),
                Err(_) => panic!("no record for 60 s after {} of {n}", out.len()),
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_recv_into_delivers_runs_in_order_and_honours_pause_and_seek() {
    let topic = common::unique("recv-into");
    create(&topic, 3).await;
    let mut sent = produce(&topic, 1500, CompressionType::None, Some(0), "p0").await;
    sent.extend(produce(&topic, 1500, CompressionType::Lz4, Some(1), "p1").await);
    sent.extend(produce(&topic, 1500, CompressionType::Zstd, Some(2), "p2").await);
    let config = consumer_config(AutoOffsetReset::Earliest)
        .to_builder()
        .max_poll_records(200)
        .build()
        .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    consumer
        .assign(&[(&topic, 0), (&topic, 1), (&topic, 2)])
        .await
        .unwrap();
    // Part of it, then partition 1 paused: nothing more of it until resumed, and its position
    // is one past the last record of it handed out.
    let mut got = recv_into_n(&consumer, 1000, 333).await;
    consumer.pause(&[(&topic, 1)]);
    let seen_1 = got.iter().filter(|r| r.partition == 1).count();
    let rest_0_2 = 3000 - got.iter().filter(|r| r.partition != 1).count();
    let more = recv_into_n(&consumer, rest_0_2, 333).await;
    assert!(
        more.iter().all(|r| r.partition != 1),
        "a paused partition delivered"
    );
    assert_eq!(consumer.position(&topic, 1), Some(seen_1 as i64));
    got.extend(more);
    let mut empty = Vec::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(consumer.try_recv_into(&mut empty, 100).is_none());
    assert!(empty.is_empty(), "a paused partition delivered");
    consumer.resume(&[(&topic, 1)]);
    got.extend(recv_into_n(&consumer, 1500 - seen_1, 1024).await);
    check_against(&sent, &got);
    assert_eq!(consumer.position(&topic, 0), Some(1500));
    assert_eq!(consumer.position(&topic, 2), Some(1500));
    // Seek into the middle of a compressed batch: the next run starts exactly there.
    consumer.seek(&topic, 2, 777).unwrap();
    let again = recv_into_n(&consumer, 1500 - 777, 1024).await;
    assert_eq!(
        again
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        (777..1500).map(|o| (2, o)).collect::<Vec<_>>()
    );
    consumer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_pause_and_resume() {
    let topic = common::unique("seek-pause");
    create(&topic, 2).await;
    produce(&topic, 20, CompressionType::Lz4, Some(0), "p0").await;
    produce(&topic, 20, CompressionType::None, Some(1), "p1").await;
    let consumer = Consumer::new(consumer_config(AutoOffsetReset::Earliest))
        .await
        .unwrap();
    consumer.assign(&[(&topic, 0), (&topic, 1)]).await.unwrap();
    consumer.pause(&[(&topic, 1)]);
    assert_eq!(
        consumer.paused(),
        vec![TopicPartition::new(topic.as_str(), 1)]
    );
    let got = recv_n(&consumer, 20).await;
    assert!(
        got.iter().all(|r| r.partition == 0),
        "paused partition delivered"
    );
    assert_quiet(&consumer, Duration::from_millis(500)).await;
    assert_eq!(consumer.position(&topic, 1), Some(0));

    consumer.resume(&[(&topic, 1)]);
    let got = recv_n(&consumer, 20).await;
    assert_eq!(
        got.iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        (0..20).map(|o| (1, o)).collect::<Vec<_>>()
    );

    // Seek back into the middle of a compressed batch: delivery starts exactly there.
    consumer.seek(&topic, 0, 13).unwrap();
    let got = recv_n(&consumer, 7).await;
    assert_eq!(
        got.iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        (13..20).map(|o| (0, o)).collect::<Vec<_>>()
    );
    assert!(matches!(
        consumer.seek(&topic, 5, 0),
        Err(ConsumerError::NotAssigned { partition: 5, .. })
    ));
    assert!(matches!(
        consumer.assign(&[(&topic, 9)]).await,
        Err(ConsumerError::UnknownPartition { partition: 9, .. })
    ));
    // Unassigning returns the positions a group layer would commit.
    let positions = consumer.unassign_partitions(&[TopicPartition::new(topic.as_str(), 0)]);
    assert_eq!(
        positions,
        vec![(TopicPartition::new(topic.as_str(), 0), Some(20))]
    );
    assert_eq!(
        consumer.assignment(),
        vec![TopicPartition::new(topic.as_str(), 1)]
    );
    consumer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_application_with_small_budget_keeps_memory_bounded() {
    let topic = common::unique("budget");
    create(&topic, 8).await;
    let mut sent = Sent::new();
    for p in 0..8 {
        sent.extend(produce(&topic, 300, CompressionType::None, Some(p), "b").await);
    }
    let budget = 16 * 1024;
    let config = consumer_config(AutoOffsetReset::Earliest)
        .to_builder()
        .max_partition_fetch_bytes(2048)
        .build()
        .unwrap();
    let consumer = Consumer::builder(config)
        .prefetch_bytes(budget)
        .build()
        .await
        .unwrap();
    assert_eq!(consumer.prefetch_budget(), budget);
    consumer.assign_topics(&[&topic]).await.unwrap();
    let mut got = Vec::new();
    while got.len() < sent.len() {
        assert!(
            consumer.buffered_bytes() <= budget,
            "buffered {} > budget {budget}",
            consumer.buffered_bytes()
        );
        let r = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("progress")
            .unwrap();
        got.push(r);
        if got.len() % 100 == 0 {
            // The application is slow: the fetchers must wait instead of queueing more.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(consumer.buffered_bytes() <= budget);
        }
    }
    check_against(&sent, &got);
    assert!(
        consumer.peak_buffered_bytes() <= budget,
        "peak {} > budget {budget}",
        consumer.peak_buffered_bytes()
    );
    assert!(consumer.peak_buffered_bytes() > 0);
    consumer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sessions_are_incremental() {
    let topic = common::unique("session");
    create(&topic, 6).await;
    let consumer = Consumer::new(consumer_config(AutoOffsetReset::Earliest))
        .await
        .unwrap();
    consumer.assign_topics(&[&topic]).await.unwrap();
    // Let the full fetch establish the session.
    assert_quiet(&consumer, Duration::from_millis(600)).await;
    let settled = consumer.fetch_history().len();
    produce(&topic, 30, CompressionType::None, Some(2), "s").await;
    let got = recv_n(&consumer, 30).await;
    assert!(got.iter().all(|r| r.partition == 2));
    produce(&topic, 10, CompressionType::None, Some(4), "s").await;
    recv_n(&consumer, 10).await;
    assert_quiet(&consumer, Duration::from_millis(300)).await;

    let history = consumer.fetch_history();
    let first = &history[0];
    assert!(
        first.full && first.session_id == 0 && first.session_epoch == 0,
        "{first:?}"
    );
    assert!(
        first.version >= 13,
        "topic ids expected on Kafka 4 (v{})",
        first.version
    );
    // Every request after the first is incremental in one session with consecutive epochs.
    let later = &history[1..];
    assert!(later.len() >= 2, "{history:?}");
    assert!(
        later.iter().all(|r| !r.full && r.session_id != 0),
        "{history:?}"
    );
    assert!(
        later.iter().all(|r| r.session_id == later[0].session_id),
        "{history:?}"
    );
    let epochs: Vec<i32> = later.iter().map(|r| r.session_epoch).collect();
    assert!(epochs.windows(2).all(|w| w[1] == w[0] + 1), "{epochs:?}");
    // All six partitions joined the session (positions may land at different times) before
    // any data was produced ...
    let joined: std::collections::BTreeSet<_> = history[..settled]
        .iter()
        .flat_map(|r| r.partitions.iter().cloned())
        .collect();
    assert_eq!(joined.len(), 6, "{history:?}");
    // ... and afterwards only the partitions whose position changed were sent or forgotten.
    let changed = [
        TopicPartition::new(topic.as_str(), 2),
        TopicPartition::new(topic.as_str(), 4),
    ];
    for r in &history[settled..] {
        assert!(r.partitions.iter().all(|tp| changed.contains(tp)), "{r:?}");
        assert!(r.forgotten.iter().all(|tp| changed.contains(tp)), "{r:?}");
    }
    assert!(
        history[settled..].iter().any(|r| !r.partitions.is_empty()),
        "{history:?}"
    );

    // Unassigning a partition removes it from the session (in the request after the one in
    // flight).
    let p5 = TopicPartition::new(topic.as_str(), 5);
    consumer.unassign_partitions(std::slice::from_ref(&p5));
    produce(&topic, 1, CompressionType::None, Some(0), "s").await;
    recv_n(&consumer, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !consumer
        .fetch_history()
        .iter()
        .any(|r| r.forgotten.contains(&p5))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            consumer.fetch_history()
        );
        // Keep the application draining: while a partition has undelivered records and the
        // others are caught up, the fetch loop waits for that buffer instead of long-polling.
        while consumer.try_recv().is_some() {}
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consumer.close().await;
}

/// Regression: while one partition's data was buffered, the fetch loop long-polled the caught-up
/// partitions without it (forgetting it from the session), so the hot partition was fetched again
/// only after `fetch.max.wait.ms`: one response per long poll, 13 s for 20 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_partition_is_not_parked_behind_a_long_poll_of_idle_ones() {
    let topic = common::unique("hot");
    create(&topic, 4).await;
    let sent = produce(&topic, 1000, CompressionType::None, Some(0), "h").await;
    let config = consumer_config(AutoOffsetReset::Earliest)
        .to_builder()
        .max_partition_fetch_bytes(1024)
        .build()
        .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    consumer.assign_topics(&[&topic]).await.unwrap();
    let got = recv_n(&consumer, sent.len()).await;
    check_against(&sent, &got);

    let history = consumer.fetch_history();
    let hot = TopicPartition::new(topic.as_str(), 0);
    assert!(
        history
            .iter()
            .filter(|r| r.partitions.contains(&hot))
            .count()
            >= 3,
        "several fetches expected: {history:?}"
    );
    // The hot partition never leaves the session: every request waits for it to come back.
    assert!(
        history.iter().all(|r| !r.forgotten.contains(&hot)),
        "{history:?}"
    );
    consumer.close().await;
}

/// A partition paused with records behind it (the exactly-once runtime's backpressure) is
/// resumed within milliseconds, usually: a long poll of the caught-up partitions sent meanwhile
/// would park it for `fetch.max.wait.ms`. The poll lasts at most the pause's age, growing to the
/// full wait when the pause lasts (no busy polling of idle partitions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_are_short_while_a_partition_with_a_backlog_is_paused() {
    let topic = common::unique("paused-wait");
    create(&topic, 2).await;
    let sent = produce(&topic, 200, CompressionType::None, Some(0), "w").await;
    let full = Duration::from_millis(400);
    let config = consumer_config(AutoOffsetReset::Earliest)
        .to_builder()
        .fetch_max_wait(full)
        .build()
        .unwrap();
    let consumer = Consumer::new(config).await.unwrap();
    consumer.assign_topics(&[&topic]).await.unwrap();
    let mut got = recv_n(&consumer, 1).await;
    // A long poll of partition 1 sent before the pause (its position may come after 0's) is
    // recorded when it returns: let it return first.
    tokio::time::sleep(full + Duration::from_millis(300)).await;
    // Counted first: the pause wakes the fetch loop, which sends a short poll at once.
    let at_pause = consumer.fetch_history().len();
    consumer.pause(&[(&topic, 0)]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let history = consumer.fetch_history();
    assert!(
        history[..at_pause].iter().all(|r| r.max_wait == full),
        "nothing was paused: {history:?}"
    );
    let paused: Vec<Duration> = history[at_pause..].iter().map(|r| r.max_wait).collect();
    assert!(paused.len() >= 2, "{history:?}");
    assert!(paused[0] < full / 2, "{paused:?}");
    assert!(paused.windows(2).all(|w| w[0] <= w[1]), "{paused:?}");
    assert_eq!(paused.last(), Some(&full), "{paused:?}");
    // Doubling from a few milliseconds: a handful of requests, not a busy loop.
    assert!(paused.len() <= 20, "{paused:?}");

    consumer.resume(&[(&topic, 0)]);
    got.extend(recv_n(&consumer, sent.len() - 1).await);
    check_against(&sent, &got);
    consumer.close().await;
}

fn java_peer() -> std::process::Command {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/java/peer.sh");
    let mut c = std::process::Command::new("bash");
    c.arg(script);
    c
}

/// Writes one transaction of `values` to partition 0 with the Java transactional producer.
pub fn java_transaction(topic: &str, id: &str, end: &str, values: &[String]) {
    java_transaction_at(&common::bootstrap(), topic, id, end, values);
}

/// As [`java_transaction`], on the brokers at `bootstrap`.
pub fn java_transaction_at(bootstrap: &str, topic: &str, id: &str, end: &str, values: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.jsonl");
    let lines: Vec<String> = values
        .iter()
        .map(|v| serde_json::json!({"key": null, "value": {"utf8": v}, "partition": 0}).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let mut cmd = java_peer();
    cmd.args(["produce", "--bootstrap", bootstrap, "--topic", topic])
        .args(["--transactional-id", id, "--end", end])
        .args(["--input", input.to_str().unwrap()]);
    let out = cmd.output().expect("run the Java peer");
    assert!(
        out.status.success(),
        "Java peer produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_drops_aborted_java_transactions() {
    let topic = common::unique("txn");
    create(&topic, 1).await;
    let mut committed = Vec::new();
    let mut all = Vec::new();
    // Two transactional ids interleaved, commits and aborts alternating.
    for round in 0..4 {
        for (id, end) in [("a", "abort"), ("c", "commit")] {
            let end = if round == 3 && id == "a" {
                "commit"
            } else {
                end
            };
            let values: Vec<String> = (0..25).map(|i| format!("{id}-{round}-{i}-{end}")).collect();
            java_transaction(&topic, &format!("{topic}-{id}"), end, &values);
            if end == "commit" {
                committed.extend(values.iter().cloned());
            }
            all.extend(values);
        }
    }
    let read = |isolation: IsolationLevel| {
        let topic = topic.clone();
        async move {
            let config = consumer_config(AutoOffsetReset::Earliest)
                .to_builder()
                .isolation_level(isolation)
                .build()
                .unwrap();
            let consumer = Consumer::new(config).await.unwrap();
            consumer.assign(&[(&topic, 0)]).await.unwrap();
            let mut values = Vec::new();
            // Read until nothing more comes; the position must then be at the end of the log
            // (past the control markers).
            loop {
                match tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
                    Ok(Ok(r)) => values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap()),
                    Ok(Err(e)) => panic!("{e}"),
                    Err(_) => break,
                }
            }
            let lag = consumer.lag(&topic, 0);
            consumer.close().await;
            (values, lag)
        }
    };
    let (values, lag) = read(IsolationLevel::ReadCommitted).await;
    assert_eq!(lag, Some(0));
    assert_eq!(values, committed, "read_committed");
    let (values, lag) = read(IsolationLevel::ReadUncommitted).await;
    assert_eq!(lag, Some(0));
    assert_eq!(values, all, "read_uncommitted");
}

fn cli() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_kafka-once"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_consume_prints_json_lines_and_text() {
    let topic = common::unique("cli-consume");
    create(&topic, 2).await;
    let producer = Producer::new(common::config()).await.unwrap();
    let records = [
        ProducerRecord::new(&topic, "plain").partition(0).key("k1"),
        ProducerRecord::new(&topic, vec![0xffu8, 0x00])
            .partition(0)
            .header("h", "x"),
        ProducerRecord::new(&topic, "quote \" and\nnewline").partition(1),
    ];
    for r in records {
        producer.send(r).await.unwrap().await.unwrap();
    }
    producer.close().await;
    let bootstrap = common::bootstrap();

    let out = cli()
        .args([
            "consume",
            "--topic",
            &topic,
            "--from-beginning",
            "--format",
            "json",
            "-e",
        ])
        .args(["--bootstrap", &bootstrap])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines.sort_by_key(|v| (v["partition"].as_i64(), v["offset"].as_i64()));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["topic"], topic.as_str());
    assert_eq!(lines[0]["key"], "k1");
    assert_eq!(lines[0]["value"], "plain");
    assert_eq!(lines[0]["timestamp_type"], "create");
    assert_eq!(lines[1]["key"], serde_json::Value::Null);
    assert_eq!(lines[1]["value"], serde_json::json!({"base64": "/wA="}));
    assert_eq!(
        lines[1]["headers"],
        serde_json::json!([{"key": "h", "value": "x"}])
    );
    assert_eq!(lines[2]["partition"], 1);
    assert_eq!(lines[2]["value"], "quote \" and\nnewline");

    let out = cli()
        .args([
            "consume",
            "--topic",
            &topic,
            "--from-beginning",
            "--partition",
            "0",
        ])
        .args(["--count", "1", "--bootstrap", &bootstrap])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "plain\n");

    let out = cli()
        .args([
            "consume",
            "--topic",
            &topic,
            "--group",
            "g",
            "--exit",
            "--bootstrap",
            &bootstrap,
        ])
        .output()
        .unwrap();
    // Group consumption works (see group::cli_consume_with_a_group_…); `--exit` (end of every
    // assigned partition) has no meaning in a group and is refused with a clear message.
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with --group"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
