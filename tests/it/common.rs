//! Shared helpers: the broker, unique names, a cluster client.

use std::sync::atomic::{AtomicU32, Ordering};

use kafka_once::cluster::Cluster;
use kafka_once::config::ClientConfig;

/// The bootstrap address of the run's shared broker, started on first use.
///
/// Prints where the broker's log is, which the test harness shows when a test fails.
pub fn bootstrap() -> String {
    // `KAFKA_ONCE_LOG=kafka_once=debug` shows the client's logs in failing tests' output.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("KAFKA_ONCE_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    match kafka_once::testing::shared_bootstrap() {
        Ok(b) => {
            if let Some(kafka) = kafka_once::testing::shared_local() {
                for node in kafka.nodes() {
                    eprintln!("broker node {} log: {}", node.id, node.log_file.display());
                }
            }
            b
        }
        Err(e) => panic!("no Kafka broker for the integration tests: {e}"),
    }
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    )
}

fn rand_suffix() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// A client config for the shared broker.
pub fn config() -> ClientConfig {
    ClientConfig::new(bootstrap()).expect("valid bootstrap address")
}

/// A client config for the shared broker with a producer compression codec.
pub fn config_with_codec(codec: kafka_once::config::CompressionType) -> ClientConfig {
    config()
        .to_builder()
        .compression_type(codec)
        .build()
        .expect("valid config")
}

/// A connected cluster client for the shared broker.
pub async fn cluster() -> Cluster {
    Cluster::connect(config())
        .await
        .expect("connect to the shared broker")
}

/// Reads every record of a partition from `from` up to its high watermark with plain Fetch
/// requests and the batch decoder (a stand-in for the consumer in tests of the producer).
pub async fn fetch_all(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
) -> Vec<kafka_once::protocol::records::Record> {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use kafka_once::protocol::records::{BatchContext, decode_batches};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let meta = cluster.topic(topic).await.unwrap().expect("topic exists");
    let ctx = BatchContext {
        topic: Arc::from(topic),
        partition,
        max_decompressed: 256 * 1024 * 1024,
    };
    let mut out = Vec::new();
    let mut offset = 0i64;
    let mut empty_rounds = 0;
    loop {
        let leader = cluster
            .metadata()
            .leader(topic, partition)
            .unwrap()
            .0
            .node_id;
        let conn = cluster.broker(leader).await.unwrap();
        let request = FetchRequest::default()
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(8 * 1024 * 1024)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_topic_id(meta.id)
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(4 * 1024 * 1024),
                    ]),
            ]);
        let version = conn.version_for::<FetchRequest>().unwrap();
        let response = conn
            .request_with_timeout(&request, version, Duration::from_secs(30))
            .await
            .unwrap();
        let p = &response.responses[0].partitions[0];
        if p.error_code != 0 {
            // Leadership may still be settling right after creation.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let records: Bytes = p.records.clone().unwrap_or_default();
        let decoded = decode_batches(records, &ctx).expect("batches decode");
        for batch in decoded.batches {
            out.extend(batch.records.into_iter().filter(|r| r.offset >= offset));
        }
        if let Some(next) = decoded.next_offset {
            offset = offset.max(next);
        }
        if offset >= p.high_watermark {
            break;
        }
        empty_rounds += 1;
        assert!(empty_rounds < 100_000, "fetch made no progress");
    }
    out
}

/// Starts `kafka-once demo-worker` for `topic` and `group` on the shared broker, with `args`
/// after those; its stderr (info logs) is appended to `log`. Killed when dropped.
pub fn demo_worker(
    topic: &str,
    group: &str,
    args: &[&std::ffi::OsStr],
    log: &std::path::Path,
) -> tokio::process::Child {
    demo_worker_at(&bootstrap(), topic, group, args, log)
}

/// As [`demo_worker`], on the brokers at `bootstrap`.
pub fn demo_worker_at(
    bootstrap: &str,
    topic: &str,
    group: &str,
    args: &[&std::ffi::OsStr],
    log: &std::path::Path,
) -> tokio::process::Child {
    demo_worker_logging(bootstrap, topic, group, args, log, &worker_log_filter())
}

/// The worker's log filter: `KAFKA_ONCE_LOG`, else `kafka_once=info` (assignments, revocations
/// and losses show in the log; tests read it).
pub fn worker_log_filter() -> String {
    std::env::var("KAFKA_ONCE_LOG").unwrap_or_else(|_| "kafka_once=info".into())
}

/// As [`demo_worker_at`], with the worker's log filter (`KAFKA_ONCE_LOG`) given.
pub fn demo_worker_logging(
    bootstrap: &str,
    topic: &str,
    group: &str,
    args: &[&std::ffi::OsStr],
    log: &std::path::Path,
    filter: &str,
) -> tokio::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_kafka-once"))
        .arg("demo-worker")
        .args(["--bootstrap", bootstrap, "--topic", topic, "--group", group])
        .args(args)
        .env("KAFKA_ONCE_LOG", filter)
        .stderr(log)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Sends SIGTERM to a child process (a clean shutdown request).
pub fn terminate(child: &tokio::process::Child) {
    let pid = child.id().expect("the child is running").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
}

/// Asks a worker to stop (SIGTERM) and waits up to a minute for it; returns its exit status.
pub async fn stop_worker(child: &mut tokio::process::Child) -> std::process::ExitStatus {
    terminate(child);
    tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .expect("the worker stops on SIGTERM")
        .unwrap()
}

/// Held by a test while it runs a cluster of its own (three JVMs): one such test at a time on a
/// two-core machine.
pub static OWN_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A group's committed offsets for `tps`, as partition → offset (partitions without a commit are
/// absent), read through `probe`; retried for up to ten seconds while the coordinator is moving
/// or not yet reachable, then a panic.
pub async fn committed(
    probe: &kafka_once::consumer::group::GroupConsumer,
    tps: &[kafka_once::consumer::TopicPartition],
) -> std::collections::BTreeMap<i32, i64> {
    let mut last = None;
    for _ in 0..100 {
        match probe.committed(tps).await {
            Ok(c) => {
                return c
                    .into_iter()
                    .map(|(tp, o)| (tp.partition, o.offset))
                    .collect();
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("cannot read the committed offsets: {last:?}");
}

/// What every exactly-once run's audit must show: each of the `records` completed once, none
/// missing or twice, the tally right and no order violation (per partition or per key, as the
/// worker ran).
#[track_caller]
pub fn assert_exactly_once(report: &kafka_once::demo::Audit, records: usize) {
    assert_eq!(report.records, records as u64);
    assert_eq!(report.completed_once, records as u64, "{report}");
    assert_eq!(report.duplicates, 0, "{report}");
    assert_eq!(report.missing, 0, "{report}");
    assert_eq!(report.tally_mismatches, 0, "{report}");
    assert_eq!(report.order_violations, 0, "{report}");
}
