//! One Fetch request with kafka-once's own connection layer, returning the raw `records` bytes of
//! one partition exactly as the broker sent them.

use std::time::Duration;

use bytes::Bytes;
use kafka_once::cluster::Cluster;
use kafka_once::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_once::kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_once::kafka_protocol::protocol::StrBytes;
use kafka_once::protocol::ErrorCode;
use tokio::time::Instant;

use crate::batch;

/// Room for the 1 MB values and everything else a golden topic holds.
const MAX_BYTES: i32 = 16 << 20;

/// What the broker answered for one partition.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub records: Bytes,
    pub version: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    /// `(producer_id, first_offset)` of aborted transactions (READ_COMMITTED fetches only).
    pub aborted: Vec<(i64, i64)>,
}

/// Fetches `topic`/`partition` from `offset`. `isolation_level` 0 is READ_UNCOMMITTED, which
/// returns everything up to the high watermark: aborted transactional data and control batches
/// too.
///
/// Retries retriable errors, such as NOT_LEADER_OR_FOLLOWER right after the topic was created,
/// for up to 30 s.
pub async fn fetch(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation_level: i8,
) -> Result<Fetched, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let error = match fetch_once(cluster, topic, partition, offset, isolation_level).await {
            Ok(f) => return Ok(f),
            Err((error, retriable)) if retriable && Instant::now() < deadline => error,
            Err((error, _)) => return Err(error),
        };
        eprintln!("fetch {topic}/{partition}: {error}; retrying");
        let _ = cluster.refresh_metadata().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn fetch_once(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation_level: i8,
) -> Result<Fetched, (String, bool)> {
    let meta = cluster
        .topic(topic)
        .await
        .map_err(|e| (format!("metadata: {e}"), e.is_retriable()))?
        .ok_or_else(|| (format!("topic {topic} not in metadata"), true))?;
    let leader = meta
        .partitions
        .iter()
        .find(|p| p.partition == partition)
        .map(|p| p.leader)
        .filter(|&l| l >= 0)
        .ok_or_else(|| (format!("no leader for {topic}/{partition}"), true))?;
    let conn = cluster
        .broker(leader)
        .await
        .map_err(|e| (format!("connect to leader {leader}: {e}"), e.is_retriable()))?;
    let version = conn
        .version_for::<FetchRequest>()
        .map_err(|e| (e.to_string(), false))?;
    // Versions 13 and later name the topic by id, earlier ones by name; set both.
    let request = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(MAX_BYTES)
        .with_isolation_level(isolation_level)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_topic_id(meta.id)
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(MAX_BYTES)
                        .with_log_start_offset(-1)
                        .with_current_leader_epoch(-1),
                ]),
        ]);
    let response = conn
        .request_with_timeout(&request, version, Duration::from_secs(10))
        .await
        .map_err(|e| (format!("fetch v{version}: {e}"), true))?;
    if let Some(code) = ErrorCode::from_i16(response.error_code) {
        return Err((format!("fetch v{version}: {code:?}"), code.is_retriable()));
    }
    let p = response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| {
            (
                format!("fetch v{version}: partition missing in the response"),
                true,
            )
        })?;
    if let Some(code) = ErrorCode::from_i16(p.error_code) {
        return Err((
            format!("fetch v{version} {topic}/{partition}: {code:?}"),
            code.is_retriable(),
        ));
    }
    Ok(Fetched {
        records: p.records.clone().unwrap_or_default(),
        version,
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        aborted: p
            .aborted_transactions
            .iter()
            .flatten()
            .map(|a| (a.producer_id.0, a.first_offset))
            .collect(),
    })
}

/// Fetches from offset 0 until the complete batches reach `next_offset` (transaction markers
/// are written asynchronously, after the producer's commit or abort returned).
pub async fn fetch_through(
    cluster: &Cluster,
    topic: &str,
    next_offset: i64,
) -> Result<Fetched, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fetched = fetch(cluster, topic, 0, 0, 0).await?;
        let (batches, tail) = batch::walk(&fetched.records);
        let reached = batches.last().map_or(0, batch::Hdr::next_offset);
        if reached >= next_offset && tail == 0 {
            return Ok(fetched);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{topic}: batches reach offset {reached} (tail {tail} bytes), expected {next_offset}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads `topic` partition 0 from offset 0 up to `next_offset` in as few fetches as the broker
/// needs, each starting where the complete batches of the previous one ended; returns the
/// complete batches of all of them, concatenated (a valid `records` field in itself), and the
/// number of fetches.
pub async fn fetch_all(
    cluster: &Cluster,
    topic: &str,
    next_offset: i64,
) -> Result<(Fetched, usize), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut offset = 0;
    let mut fetches = 0;
    let mut records = Vec::new();
    let mut first: Option<Fetched> = None;
    while offset < next_offset {
        let fetched = fetch(cluster, topic, 0, offset, 0).await?;
        fetches += 1;
        let (batches, _tail) = batch::walk(&fetched.records);
        match batches.last() {
            Some(last) => {
                records.extend_from_slice(&fetched.records[..last.end()]);
                offset = last.next_offset();
            }
            None if Instant::now() > deadline => {
                return Err(format!(
                    "{topic}: no complete batch at offset {offset} (expected up to {next_offset})"
                ));
            }
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
        first.get_or_insert(fetched);
    }
    let mut out = first.ok_or_else(|| format!("{topic}: nothing to fetch"))?;
    out.records = Bytes::from(records);
    Ok((out, fetches))
}
