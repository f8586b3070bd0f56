//! The sender task: drains ready batches, sends one Produce request per leader, and settles each
//! batch from the response (deliver, retry with the same sequence, or fail).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::accumulator::{Batch, Shared, TopicPartition};
use super::{ProducerError, RecordMetadata};
use crate::cluster::{Backoff, ClusterError};
use crate::protocol::records::{EncodeOptions, encode_batch};
use crate::protocol::{ErrorAction, ErrorCode};

/// Obtains (or bumps) the producer id and epoch with InitProducerId.
pub(super) async fn init_producer_id(shared: &Shared) -> Result<(), ProducerError> {
    let (pid, epoch) = shared.producer_id();
    let timeout_ms = i32::try_from(shared.settings.request_timeout.as_millis()).unwrap_or(i32::MAX);
    let response = shared
        .cluster
        .with_retries("init producer id", || async {
            let conn = shared.cluster.any_broker().await?;
            let version = conn.version_for::<InitProducerIdRequest>()?;
            // KIP-360: from v3 an idempotent producer may bump its own epoch by naming its
            // current id and epoch; before that it can only get a fresh id.
            let mut request = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1);
            if version >= 3 && pid >= 0 {
                request = request
                    .with_producer_id(pid.into())
                    .with_producer_epoch(epoch);
            }
            let response = conn.request_version(&request, version).await?;
            match ErrorCode::from_i16(response.error_code) {
                None => Ok(response),
                Some(code) => Err(ClusterError::broker(code, "init producer id", None)),
            }
        })
        .await?;
    let mut state = shared.lock();
    state.producer_id = response.producer_id.0;
    state.producer_epoch = response.producer_epoch;
    // A new id or epoch restarts every partition's sequence at 0.
    for queue in state.queues.values_mut() {
        queue.next_sequence = 0;
        for batch in &mut queue.batches {
            batch.sequence = None;
            batch.encoded = None;
        }
    }
    state.bump_epoch = false;
    tracing::debug!(
        producer_id = state.producer_id,
        epoch = state.producer_epoch,
        "producer id"
    );
    Ok(())
}

/// A batch taken out of its queue for one request.
struct InFlight {
    tp: TopicPartition,
    batch: Batch,
}

pub(super) async fn run(shared: Arc<Shared>) {
    let mut requests = tokio::task::JoinSet::new();
    loop {
        let notified = shared.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        if needs_epoch_bump(&shared) {
            if let Err(e) = init_producer_id(&shared).await {
                tracing::warn!(error = %e, "producer epoch bump failed; retrying");
                tokio::time::sleep(shared.settings.retry_backoff).await;
            }
            continue;
        }
        let (ready, next_wake) = drain(&shared).await;
        if !ready.is_empty() {
            for (node, batches) in group_by_leader(&shared, ready).await {
                let shared = shared.clone();
                requests.spawn(async move { send(&shared, node, batches).await });
            }
            continue;
        }
        {
            let state = shared.lock();
            if state.shutdown && requests.is_empty() && shared.pending.load(Ordering::Acquire) == 0
            {
                break;
            }
        }
        tokio::select! {
            () = &mut notified => {}
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            () = sleep_until(next_wake) => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn needs_epoch_bump(shared: &Shared) -> bool {
    let state = shared.lock();
    state.bump_epoch && state.in_flight_batches == 0
}

/// Takes every ready batch out of its queue: full, lingered long enough, flushed, or behind
/// another batch. Returns them with the next instant something becomes ready.
async fn drain(shared: &Shared) -> (Vec<InFlight>, Option<Instant>) {
    let now = Instant::now();
    let settings = &shared.settings;
    let mut ready = Vec::new();
    let mut next_wake: Option<Instant> = None;
    let mut expired = Vec::new();
    {
        let mut state = shared.lock();
        if state.bump_epoch {
            return (ready, None);
        }
        let flushing = state.flushing > 0 || state.closed;
        let (pid, epoch) = (state.producer_id, state.producer_epoch);
        let mut taken = 0;
        let mut bump = false;
        for (tp, queue) in state.queues.iter_mut() {
            if queue.in_flight {
                continue;
            }
            let Some(front) = queue.batches.front() else {
                continue;
            };
            if front.created + settings.delivery_timeout <= now {
                let batch = queue.batches.pop_front().expect("front exists");
                // An attempt whose answer was lost may have been written: the sequence may now
                // have a gap, which only a new epoch closes (the Java client does the same).
                bump |= batch.maybe_written && settings.idempotent;
                expired.push((tp.clone(), batch));
                continue;
            }
            let ready_at = match front.retry_at {
                Some(at) => at,
                None if flushing
                    || front.is_full(settings.batch_size)
                    || queue.batches.len() > 1 =>
                {
                    now
                }
                None => front.created + settings.linger,
            };
            if ready_at > now {
                next_wake = Some(next_wake.map_or(ready_at, |w| w.min(ready_at)));
                continue;
            }
            let mut batch = queue.batches.pop_front().expect("front exists");
            if settings.idempotent && batch.sequence.is_none() {
                batch.sequence = Some(queue.next_sequence);
                queue.next_sequence =
                    queue.next_sequence.wrapping_add(batch.records.len() as i32) & i32::MAX;
            }
            if batch
                .encoded
                .as_ref()
                .is_none_or(|(p, e, _)| (*p, *e) != (pid, epoch))
            {
                batch.encoded = None;
            }
            queue.in_flight = true;
            taken += 1;
            ready.push(InFlight {
                tp: tp.clone(),
                batch,
            });
        }
        state.in_flight_batches += taken;
        state.bump_epoch |= bump;
    }
    for (tp, batch) in expired {
        let err = ProducerError::DeliveryTimeout {
            topic: tp.0.clone(),
            partition: tp.1,
            timeout: settings.delivery_timeout,
        };
        complete(shared, &tp, batch, Err(err));
    }
    (ready, next_wake)
}

/// Groups batches by the leader of their partition. Batches whose partition has no known leader
/// go back to their queue after a metadata refresh.
async fn group_by_leader(shared: &Shared, ready: Vec<InFlight>) -> HashMap<i32, Vec<InFlight>> {
    let mut by_node: HashMap<i32, Vec<InFlight>> = HashMap::new();
    let mut leaderless = Vec::new();
    let metadata = shared.cluster.metadata();
    for item in ready {
        match metadata.leader(&item.tp.0, item.tp.1) {
            Some((broker, _epoch)) => by_node.entry(broker.node_id).or_default().push(item),
            None => leaderless.push(item),
        }
    }
    if !leaderless.is_empty() {
        let topics: Vec<&str> = leaderless.iter().map(|i| &*i.tp.0).collect();
        if let Err(e) = shared.cluster.refresh_topics(&topics).await {
            tracing::debug!(error = %e, "metadata refresh for leaderless partitions failed");
        }
        for item in leaderless {
            retry_later(shared, item, None);
        }
    }
    by_node
}

/// Encodes (once per producer id/epoch), sends one Produce request to `node`, and settles every
/// batch in it.
async fn send(shared: &Shared, node: i32, mut batches: Vec<InFlight>) {
    let (pid, epoch) = shared.producer_id();
    let settings = &shared.settings;
    for item in &mut batches {
        if item.batch.encoded.is_none() {
            let options = EncodeOptions {
                compression: settings.compression,
                producer_id: if settings.idempotent { pid } else { -1 },
                producer_epoch: if settings.idempotent { epoch } else { -1 },
                base_sequence: item.batch.sequence.unwrap_or(-1),
                ..EncodeOptions::default()
            };
            match encode_batch(&item.batch.records, &options) {
                Ok(bytes) => item.batch.encoded = Some((pid, epoch, bytes)),
                Err(e) => {
                    let tp = item.tp.clone();
                    let batch = std::mem::replace(&mut item.batch, empty_batch());
                    finish_in_flight(shared, &tp);
                    complete(shared, &tp, batch, Err(e.into()));
                }
            }
        }
    }
    batches.retain(|i| i.batch.encoded.is_some());
    if batches.is_empty() {
        return;
    }
    let result = async {
        let conn = shared.cluster.broker(node).await?;
        let version = conn.version_for::<ProduceRequest>()?;
        let request = build_request(shared, &batches);
        for item in &mut batches {
            item.batch.attempts += 1;
            item.batch.maybe_written = true;
        }
        let timeout = settings.request_timeout;
        Ok::<_, ClusterError>(
            conn.request_with_timeout(&request, version, timeout)
                .await?,
        )
    }
    .await;
    match result {
        Ok(response) => settle(shared, batches, &response),
        Err(e) => {
            // The outcome is unknown (or the request never left): resend the same bytes.
            tracing::debug!(node, error = %e, "produce request failed");
            let fatal = !e.is_retriable();
            let e = Arc::new(e);
            for item in batches {
                if fatal {
                    let err = ProducerError::Cluster(e.clone());
                    let tp = item.tp.clone();
                    if item.batch.maybe_written && settings.idempotent {
                        // Possibly written: a gap in sequences must be closed by a new epoch.
                        shared.lock().bump_epoch = true;
                    }
                    finish_in_flight(shared, &tp);
                    complete(shared, &tp, item.batch, Err(err));
                } else {
                    retry_later(shared, item, None);
                }
            }
            let _ = shared.cluster.refresh_metadata().await;
        }
    }
}

fn empty_batch() -> Batch {
    Batch {
        records: Vec::new(),
        deliveries: Vec::new(),
        size: 0,
        created: Instant::now(),
        _permit: None,
        sequence: None,
        encoded: None,
        attempts: 0,
        retry_at: None,
        maybe_written: false,
    }
}

fn build_request(shared: &Shared, batches: &[InFlight]) -> ProduceRequest {
    let metadata = shared.cluster.metadata();
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for item in batches {
        let name = TopicName(StrBytes::from_string(item.tp.0.to_string()));
        let records = item.batch.encoded.as_ref().map(|(_, _, b)| b.clone());
        let partition = PartitionProduceData::default()
            .with_index(item.tp.1)
            .with_records(records);
        match topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.partition_data.push(partition),
            None => {
                let id = metadata.topic(&item.tp.0).map(|t| t.id).unwrap_or_default();
                topics.push(
                    TopicProduceData::default()
                        .with_name(name)
                        .with_topic_id(id)
                        .with_partition_data(vec![partition]),
                );
            }
        }
    }
    ProduceRequest::default()
        .with_acks(shared.settings.acks)
        .with_timeout_ms(
            i32::try_from(shared.settings.request_timeout.as_millis()).unwrap_or(i32::MAX),
        )
        .with_topic_data(topics)
}

/// Applies a Produce response to the batches it answers.
fn settle(shared: &Shared, batches: Vec<InFlight>, response: &ProduceResponse) {
    let metadata = shared.cluster.metadata();
    let mut refresh = false;
    for item in batches {
        let (topic, partition) = (&item.tp.0, item.tp.1);
        let topic_id = metadata.topic(topic).map(|t| t.id);
        let answer = response
            .responses
            .iter()
            .find(|t| {
                t.name.as_str() == &**topic
                    || (topic_id.is_some_and(|id| !id.is_nil() && t.topic_id == id))
            })
            .and_then(|t| t.partition_responses.iter().find(|p| p.index == partition));
        let Some(p) = answer else {
            // The broker ignored this partition; resend it.
            retry_later(shared, item, None);
            continue;
        };
        let message = p.error_message.as_ref().map(|m| m.to_string());
        match ErrorCode::from_i16(p.error_code) {
            None => {
                let (base_offset, append_time) = (p.base_offset, p.log_append_time_ms);
                deliver(shared, item, base_offset, append_time);
            }
            // The batch was written by an earlier attempt whose answer we lost.
            Some(ErrorCode::DuplicateSequenceNumber) => deliver(shared, item, -1, -1),
            Some(code) => {
                let action = code.action();
                match (code, action) {
                    (ErrorCode::UnknownProducerId | ErrorCode::OutOfOrderSequenceNumber, _)
                        if shared.settings.idempotent =>
                    {
                        // KIP-360: the broker lost (or never had) our sequence state. A new epoch
                        // restarts sequences; this batch was rejected, so resending it under the
                        // new epoch cannot duplicate it.
                        tracing::warn!(%topic, partition, %code, "bumping producer epoch");
                        shared.lock().bump_epoch = true;
                        let mut item = item;
                        item.batch.sequence = None;
                        item.batch.encoded = None;
                        item.batch.maybe_written = false;
                        retry_later(shared, item, None);
                    }
                    (_, ErrorAction::RefreshMetadata) => {
                        refresh = true;
                        rejected_retry(shared, item);
                    }
                    (_, ErrorAction::Retry | ErrorAction::RediscoverCoordinator) => {
                        rejected_retry(shared, item)
                    }
                    _ => {
                        let err = ProducerError::Broker {
                            topic: topic.clone(),
                            partition,
                            code,
                            message,
                        };
                        let tp = item.tp.clone();
                        finish_in_flight(shared, &tp);
                        complete(shared, &tp, item.batch, Err(err));
                    }
                }
            }
        }
    }
    if refresh {
        let cluster = shared.cluster.clone();
        tokio::spawn(async move {
            let _ = cluster.refresh_metadata().await;
        });
    }
}

/// The broker rejected the batch with a retriable error: it was not written.
fn rejected_retry(shared: &Shared, mut item: InFlight) {
    // Not written by this attempt; an earlier attempt may still have been.
    let earlier_unknown = item.batch.attempts > 1 && item.batch.maybe_written;
    item.batch.maybe_written = earlier_unknown;
    retry_later(shared, item, None);
}

fn deliver(shared: &Shared, item: InFlight, base_offset: i64, append_time: i64) {
    let tp = item.tp.clone();
    finish_in_flight(shared, &tp);
    let Batch {
        records,
        deliveries,
        ..
    } = item.batch;
    for (i, (record, tx)) in records.iter().zip(deliveries).enumerate() {
        let _ = tx.send(Ok(RecordMetadata {
            topic: tp.0.clone(),
            partition: tp.1,
            offset: if base_offset >= 0 {
                base_offset + i as i64
            } else {
                -1
            },
            timestamp: if append_time >= 0 {
                append_time
            } else {
                record.timestamp
            },
        }));
    }
    shared.pending.fetch_sub(records.len(), Ordering::AcqRel);
    shared.progress.notify_waiters();
    shared.wake.notify_one();
}

/// Marks the partition's in-flight slot free.
fn finish_in_flight(shared: &Shared, tp: &TopicPartition) {
    let mut state = shared.lock();
    state.in_flight_batches = state.in_flight_batches.saturating_sub(1);
    if let Some(q) = state.queues.get_mut(tp) {
        q.in_flight = false;
    }
}

/// Puts a batch back at the front of its queue, to be resent after a backoff.
fn retry_later(shared: &Shared, mut item: InFlight, delay: Option<std::time::Duration>) {
    let delay = delay.unwrap_or_else(|| {
        let mut b = Backoff::new(
            shared.settings.retry_backoff,
            shared.settings.retry_backoff_max,
        );
        for _ in 1..item.batch.attempts {
            b.next_delay();
        }
        b.next_delay()
    });
    item.batch.retry_at = Some(Instant::now() + delay);
    shared.retries.fetch_add(1, Ordering::Relaxed);
    let mut state = shared.lock();
    state.in_flight_batches = state.in_flight_batches.saturating_sub(1);
    let queue = state.queues.entry(item.tp).or_default();
    queue.in_flight = false;
    queue.batches.push_front(item.batch);
    drop(state);
    shared.wake.notify_one();
}

/// Fails (or completes) every record of a batch that is no longer in flight.
fn complete(
    shared: &Shared,
    _tp: &TopicPartition,
    batch: Batch,
    result: Result<(), ProducerError>,
) {
    let n = batch.deliveries.len();
    for tx in batch.deliveries {
        let _ = tx.send(match &result {
            Ok(()) => Err(ProducerError::Closed),
            Err(e) => Err(e.clone()),
        });
    }
    shared.pending.fetch_sub(n, Ordering::AcqRel);
    shared.progress.notify_waiters();
    shared.wake.notify_one();
}
