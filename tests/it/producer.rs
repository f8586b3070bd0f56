//! The producer against the real broker.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_once::cluster::{Cluster, NewTopic};
use kafka_once::config::{ClientConfig, CompressionType};
use kafka_once::producer::partitioner::partition_for_key;
use kafka_once::producer::{Producer, ProducerRecord};

use crate::common;

async fn topic(cluster: &Cluster, prefix: &str, partitions: i32) -> String {
    let name = common::unique(prefix);
    cluster
        .create_topic(NewTopic::new(&name, partitions))
        .await
        .unwrap();
    name
}

fn config_with(compression: CompressionType) -> ClientConfig {
    common::config()
        .to_builder()
        .compression_type(compression)
        .linger(Duration::from_millis(5))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_round_trip_with_every_codec() {
    let cluster = common::cluster().await;
    for codec in [
        CompressionType::None,
        CompressionType::Gzip,
        CompressionType::Snappy,
        CompressionType::Lz4,
        CompressionType::Zstd,
    ] {
        let name = topic(&cluster, &format!("produce-{codec}"), 4).await;
        let producer = Producer::new(config_with(codec)).await.unwrap();
        let (pid, epoch) = producer.producer_id();
        assert!(pid >= 0 && epoch >= 0, "idempotent by default");
        let mut deliveries = Vec::new();
        for i in 0..500 {
            let key = format!("key-{}", i % 37);
            let mut record = ProducerRecord::new(&name, format!("value-{i}"))
                .key(key.clone())
                .timestamp(1_700_000_000_000 + i)
                .header("i", i.to_string());
            if i % 50 == 0 {
                record.value = None;
            }
            deliveries.push((key, producer.send(record).await.unwrap()));
        }
        producer.flush().await;
        let mut by_partition: HashMap<i32, Vec<i64>> = HashMap::new();
        for (key, d) in deliveries {
            let meta = d.await.unwrap();
            assert_eq!(
                meta.partition,
                partition_for_key(key.as_bytes(), 4),
                "{codec}"
            );
            by_partition
                .entry(meta.partition)
                .or_default()
                .push(meta.offset);
        }
        for (partition, offsets) in &by_partition {
            let expected: Vec<i64> = (0..offsets.len() as i64).collect();
            assert_eq!(offsets, &expected, "{codec} partition {partition}");
        }
        // Read back: every record once, in send order, with its key, value, headers, timestamp.
        let mut total = 0;
        for partition in 0..4 {
            let records = common::fetch_all(&cluster, &name, partition).await;
            let mut last_i = -1;
            for r in &records {
                let i: i64 = std::str::from_utf8(&r.headers[0].value.clone().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(i > last_i, "{codec}: order within partition {partition}");
                last_i = i;
                assert_eq!(r.timestamp, 1_700_000_000_000 + i);
                assert_eq!(r.key.as_deref(), Some(format!("key-{}", i % 37).as_bytes()));
                if i % 50 == 0 {
                    assert_eq!(r.value, None);
                } else {
                    assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
                }
            }
            total += records.len();
        }
        assert_eq!(total, 500, "{codec}");
        producer.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotence_survives_cut_connections() {
    const RECORDS: usize = 100_000;
    const PARTITIONS: i32 = 6;
    let cluster = common::cluster().await;
    let name = topic(&cluster, "idempotent", PARTITIONS).await;
    let producer = Producer::new(
        common::config()
            .to_builder()
            .linger(Duration::from_millis(2))
            .batch_size(16 * 1024)
            .retry_backoff(Duration::from_millis(10))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();

    let cutter = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut cuts = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(150)).await;
                producer.cut_connections();
                cuts += 1;
                if cuts == 8 {
                    return cuts;
                }
            }
        })
    };
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let p = (i % PARTITIONS as usize) as i32;
        let record = ProducerRecord::new(&name, Bytes::from(format!("{p}:{i}"))).partition(p);
        deliveries.push(producer.send(record).await.unwrap());
    }
    if tokio::time::timeout(Duration::from_secs(60), producer.flush())
        .await
        .is_err()
    {
        panic!("flush stuck:\n{}", producer.debug_state());
    }
    let cuts = cutter.await.unwrap();
    assert_eq!(cuts, 8);
    for d in deliveries {
        d.await.expect("every record delivered despite the cuts");
    }
    let retried = producer.retried_batches();
    eprintln!(
        "batches resent after cuts: {retried}, producer id/epoch {:?}",
        producer.producer_id()
    );
    assert!(retried > 0, "the cuts should have forced resends");
    producer.close().await;

    let mut total = 0;
    for p in 0..PARTITIONS {
        let records = common::fetch_all(&cluster, &name, p).await;
        let sent: Vec<String> = (0..RECORDS)
            .filter(|i| (i % PARTITIONS as usize) as i32 == p)
            .map(|i| format!("{p}:{i}"))
            .collect();
        let got: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
            .collect();
        if got.len() != sent.len() {
            let mut seen = std::collections::HashMap::new();
            for r in &records {
                let v = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
                seen.entry(v).or_insert_with(Vec::new).push(r.offset);
            }
            let mut dups: Vec<_> = seen.iter().filter(|(_, o)| o.len() > 1).collect();
            dups.sort_by_key(|(_, o)| o[0]);
            eprintln!(
                "{} duplicated values; first: {:?}",
                dups.len(),
                dups.iter().take(3).collect::<Vec<_>>()
            );
        }
        assert_eq!(got.len(), sent.len(), "partition {p}: duplicates or losses");
        assert!(got == sent, "partition {p}: records out of send order");
        total += got.len();
    }
    assert_eq!(total, RECORDS);
}

#[tokio::test]
async fn unknown_topic_and_oversized_records_fail_with_typed_errors() {
    let producer = Producer::new(common::config()).await.unwrap();
    let err = producer
        .send(ProducerRecord::new(common::unique("missing"), "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            kafka_once::producer::ProducerError::UnknownTopic { .. }
        ),
        "{err:?}"
    );
    let cluster = common::cluster().await;
    let name = topic(&cluster, "big", 1).await;
    let err = producer
        .send(ProducerRecord::new(&name, vec![0u8; 2 * 1024 * 1024]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            kafka_once::producer::ProducerError::RecordTooLarge {
                setting: "max.request.size",
                ..
            }
        ),
        "{err:?}"
    );
    producer.close().await;
    let err = producer
        .send(ProducerRecord::new(&name, "late"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kafka_once::producer::ProducerError::Closed),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_memory_bounds_what_is_queued() {
    const BUFFER: u64 = 32 * 1024;
    let cluster = common::cluster().await;
    let name = topic(&cluster, "backpressure", 2).await;
    let producer = Producer::new(
        common::config()
            .to_builder()
            .buffer_memory(BUFFER)
            .batch_size(8 * 1024)
            .linger(Duration::from_millis(20))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let watcher = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            for _ in 0..2000 {
                peak = peak.max(producer.buffered_bytes());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            peak
        })
    };
    let mut deliveries = Vec::new();
    let mut peak_seen_by_sender = 0;
    for i in 0..3000 {
        deliveries.push(
            producer
                .send(ProducerRecord::new(&name, vec![b'v'; 200]).key(format!("{i}")))
                .await
                .unwrap(),
        );
        peak_seen_by_sender = peak_seen_by_sender.max(producer.buffered_bytes());
    }
    producer.flush().await;
    for d in deliveries {
        d.await.unwrap();
    }
    let peak = watcher.await.unwrap().max(peak_seen_by_sender);
    // 3000 records of ~230 bytes is ~20x the buffer: sends had to wait for deliveries.
    assert!(
        peak as u64 <= BUFFER,
        "buffered {peak} bytes with buffer.memory={BUFFER}"
    );
    assert!(
        peak as u64 > BUFFER / 2,
        "the buffer never filled ({peak}): no backpressure shown"
    );
    assert_eq!(producer.buffered_bytes(), 0);
    producer.close().await;
}

/// Regression: unkeyed records stayed on one partition forever, because the sticky partition
/// moved on only when a batch filled up, and with linger the sender drained batches before that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_records_spread_over_all_partitions() {
    let cluster = common::cluster().await;
    let name = topic(&cluster, "sticky", 6).await;
    let producer = Producer::new(
        common::config()
            .to_builder()
            .batch_size(8 * 1024)
            .linger(Duration::from_millis(1))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..20_000 {
        deliveries.push(
            producer
                .send(ProducerRecord::new(&name, vec![b'x'; 100]))
                .await
                .unwrap(),
        );
        if i % 40 == 39 {
            // Let the linger drain the batch before it fills, as a steady, slower stream does.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    producer.flush().await;
    let mut per_partition = [0usize; 6];
    for d in deliveries {
        per_partition[d.await.unwrap().partition as usize] += 1;
    }
    // ~2.4 MB in 8 KiB stints over 6 partitions: every partition gets a share.
    assert!(per_partition.iter().all(|&n| n > 0), "{per_partition:?}");
    producer.close().await;
}
