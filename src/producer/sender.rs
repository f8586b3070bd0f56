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
        queue.acked_sequence = 0;
        queue.has_acked = false;
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
        while let Some(done) = requests.try_join_next() {
            log_panic(done);
        }

        if needs_epoch_bump(&shared) {
            if let Err(e) = init_producer_id(&shared).await {
                tracing::warn!(error = %e, "producer epoch bump failed; retrying");
                tokio::time::sleep(shared.settings.retry_backoff).await;
            }
            continue;
        }
        let (rounds, next_wake) = drain(&shared).await;
        if !rounds.is_empty() {
            // Round k holds the k-th batch of each partition: requests go out round by round, so
            // the batches of one partition reach its leader's connection in sequence order.
            for round in rounds {
                for (node, batches) in group_by_leader(&shared, round).await {
                    if let Some(pending) = enqueue(&shared, node, batches).await {
                        let shared = shared.clone();
                        requests.spawn(async move { pending.settle(&shared).await });
                    }
                }
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
            Some(done) = requests.join_next(), if !requests.is_empty() => log_panic(done),
            () = sleep_until(next_wake) => {}
        }
    }
}

/// A settle task that panicked lost its batches' bookkeeping; that is a bug, so say so loudly.
fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "a produce request task panicked; its records will time out");
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
/// another batch; up to `max_in_flight` per partition. Returns them in rounds (the k-th batch of
/// every partition in round k) with the next instant something becomes ready.
async fn drain(shared: &Shared) -> (Vec<Vec<InFlight>>, Option<Instant>) {
    let now = Instant::now();
    let settings = &shared.settings;
    let mut rounds: Vec<Vec<InFlight>> = Vec::new();
    let mut next_wake: Option<Instant> = None;
    let mut expired = Vec::new();
    {
        let mut state = shared.lock();
        if state.bump_epoch {
            return (rounds, None);
        }
        let flushing = state.flushing > 0 || state.closed;
        let (pid, epoch) = (state.producer_id, state.producer_epoch);
        let mut taken = 0;
        let mut bump = false;
        for (tp, queue) in state.queues.iter_mut() {
            let mut round = 0;
            let limit = if queue.has_acked {
                settings.max_in_flight
            } else {
                1
            };
            while !queue.blocked && queue.in_flight < limit {
                let Some(front) = queue.batches.front() else {
                    break;
                };
                if front.created + settings.delivery_timeout <= now {
                    let batch = queue.batches.pop_front().expect("front exists");
                    // An attempt whose answer was lost may have been written: the sequence may
                    // now have a gap, which only a new epoch closes (as the Java client does).
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
                    break;
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
                queue.in_flight += 1;
                taken += 1;
                if rounds.len() <= round {
                    rounds.push(Vec::new());
                }
                rounds[round].push(InFlight {
                    tp: tp.clone(),
                    batch,
                });
                round += 1;
            }
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
        complete(shared, batch, err);
    }
    (rounds, next_wake)
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

/// A Produce request in the connection's hands.
struct PendingProduce {
    batches: Vec<InFlight>,
    response: crate::connection::PendingResponse<ProduceRequest>,
}

impl PendingProduce {
    async fn settle(self, shared: &Shared) {
        match self.response.response().await {
            Ok(response) => settle(shared, self.batches, &response),
            Err(e) => request_failed(shared, self.batches, ClusterError::from(e)).await,
        }
    }
}

/// Encodes (once per producer id/epoch) and hands one Produce request for `node` to its
/// connection. Returns `None` when nothing was sent (the batches were requeued or failed).
async fn enqueue(shared: &Shared, node: i32, mut batches: Vec<InFlight>) -> Option<PendingProduce> {
    let (pid, epoch) = shared.producer_id();
    let settings = &shared.settings;
    // A partition that failed since its batches were drained must not get later batches ahead
    // of the failed one.
    let blocked: Vec<InFlight> = {
        let state = shared.lock();
        let (blocked, open) = batches
            .into_iter()
            .partition(|i| state.queues.get(&i.tp).is_some_and(|q| q.blocked));
        batches = open;
        blocked
    };
    for item in blocked {
        retry_later(shared, item, Some(std::time::Duration::ZERO));
    }
    let mut encoded = Vec::with_capacity(batches.len());
    for mut item in batches {
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
                    finish_in_flight(shared, &item.tp);
                    complete(shared, item.batch, e.into());
                    continue;
                }
            }
        }
        encoded.push(item);
    }
    let mut batches = encoded;
    if batches.is_empty() {
        return None;
    }
    let conn = match shared.cluster.broker(node).await {
        Ok(conn) => conn,
        Err(e) => {
            request_failed(shared, batches, e).await;
            return None;
        }
    };
    // A partition pipelines batches on one connection only. Were a later batch to go out on a
    // new connection while an earlier one is still on a dying one, the broker could append the
    // later one first (it accepts any first sequence from a producer it has no state for).
    let conflicting: Vec<InFlight> = {
        let mut state = shared.lock();
        let (conflicting, open): (Vec<_>, Vec<_>) = batches.into_iter().partition(|i| {
            state
                .queues
                .get(&i.tp)
                .and_then(|q| q.connection)
                .is_some_and(|id| id != conn.id())
        });
        for item in &open {
            if let Some(q) = state.queues.get_mut(&item.tp) {
                q.connection = Some(conn.id());
            }
        }
        batches = open;
        conflicting
    };
    for item in conflicting {
        retry_later(shared, item, Some(std::time::Duration::ZERO));
    }
    if batches.is_empty() {
        return None;
    }
    let result = async {
        let version = conn.version_for::<ProduceRequest>()?;
        let request = build_request(shared, &batches);
        Ok::<_, ClusterError>(
            conn.enqueue(&request, version, settings.request_timeout)
                .await?,
        )
    }
    .await;
    match result {
        Ok(response) => {
            for item in &mut batches {
                item.batch.attempts += 1;
                item.batch.maybe_written = true;
            }
            Some(PendingProduce { batches, response })
        }
        Err(e) => {
            request_failed(shared, batches, e).await;
            None
        }
    }
}

/// A whole request failed: resend its batches when the error is retriable (the outcome is
/// unknown, and idempotence makes the resend safe), else fail them.
async fn request_failed(shared: &Shared, batches: Vec<InFlight>, e: ClusterError) {
    tracing::debug!(error = %e, "produce request failed");
    let fatal = !e.is_retriable();
    let e = Arc::new(e);
    for item in batches {
        if fatal {
            if item.batch.maybe_written && shared.settings.idempotent {
                // Possibly written: a gap in sequences must be closed by a new epoch.
                shared.lock().bump_epoch = true;
            }
            finish_in_flight(shared, &item.tp);
            complete(shared, item.batch, ProducerError::Cluster(e.clone()));
        } else {
            retry_later(shared, item, None);
        }
    }
    let _ = shared.cluster.refresh_metadata().await;
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
        let (topic, partition) = (item.tp.0.clone(), item.tp.1);
        let topic_id = metadata
            .topic(&topic)
            .map(|t| t.id)
            .filter(|id| !id.is_nil());
        let answer = response
            .responses
            .iter()
            .find(|t| t.name.as_str() == &*topic || topic_id.is_some_and(|id| t.topic_id == id))
            .and_then(|t| t.partition_responses.iter().find(|p| p.index == partition));
        let Some(p) = answer else {
            // The broker did not answer for this partition; resend it.
            retry_later(shared, item, None);
            continue;
        };
        let message = p.error_message.as_ref().map(|m| m.to_string());
        let code = ErrorCode::from_i16(p.error_code);
        match code {
            None => deliver(shared, item, p.base_offset, p.log_append_time_ms),
            // Written by an earlier attempt whose answer was lost.
            Some(ErrorCode::DuplicateSequenceNumber) => deliver(shared, item, -1, -1),
            Some(ErrorCode::OutOfOrderSequenceNumber) if shared.settings.idempotent => {
                let expected = shared.lock().queues.get(&item.tp).map(|q| q.acked_sequence);
                tracing::debug!(%topic, partition, seq = ?item.batch.sequence, ?expected,
                    attempts = item.batch.attempts, records = item.batch.records.len(), "out of order sequence");
                let behind = matches!((item.batch.sequence, expected), (Some(s), Some(e)) if s < e);
                if behind {
                    // The broker acknowledged later sequences without this one. With one batch in
                    // flight until the first ack and in-order resends this does not happen; if it
                    // does (producer state lost and rebuilt mid-stream), whether this batch was
                    // written is unknown. Say so rather than guess either way.
                    tracing::warn!(%topic, partition, seq = ?item.batch.sequence, ?expected,
                        "sequence behind the acknowledged one; failing the batch");
                    let err = ProducerError::Broker {
                        topic,
                        partition,
                        code: ErrorCode::OutOfOrderSequenceNumber,
                        message: Some(
                            "later sequences were acknowledged first; this batch may or may not have been written"
                                .into(),
                        ),
                    };
                    finish_in_flight(shared, &item.tp);
                    complete(shared, item.batch, err);
                } else if item.batch.sequence != expected {
                    // An earlier batch of this partition failed, so the broker saw a gap. Resend
                    // once the earlier one is through.
                    rejected_retry(shared, item);
                } else {
                    // The broker lost our sequence state (KIP-360): a new epoch restarts
                    // sequences. The batch was rejected, so resending it cannot duplicate it.
                    tracing::warn!(%topic, partition, "out of order sequence; bumping producer epoch");
                    bump_and_requeue(shared, item);
                }
            }
            Some(ErrorCode::UnknownProducerId) if shared.settings.idempotent => {
                tracing::warn!(%topic, partition, "unknown producer id; bumping producer epoch");
                bump_and_requeue(shared, item);
            }
            Some(code) => match code.action() {
                ErrorAction::RefreshMetadata => {
                    refresh = true;
                    rejected_retry(shared, item);
                }
                ErrorAction::Retry | ErrorAction::RediscoverCoordinator => {
                    rejected_retry(shared, item)
                }
                ErrorAction::Rejoin | ErrorAction::Fail => {
                    let err = ProducerError::Broker {
                        topic,
                        partition,
                        code,
                        message,
                    };
                    if shared.settings.idempotent {
                        // Later batches of the partition carry sequences after this one, which
                        // will never be written: restart sequences under a new epoch.
                        shared.lock().bump_epoch = true;
                    }
                    finish_in_flight(shared, &item.tp);
                    complete(shared, item.batch, err);
                }
            },
        }
    }
    if refresh {
        let cluster = shared.cluster.clone();
        tokio::spawn(async move {
            let _ = cluster.refresh_metadata().await;
        });
    }
}

fn bump_and_requeue(shared: &Shared, mut item: InFlight) {
    shared.lock().bump_epoch = true;
    // Keep the old sequence until the bump: it places the batch back in order ahead of the
    // batches that were behind it; `init_producer_id` then renumbers the queue in that order.
    item.batch.encoded = None;
    item.batch.maybe_written = false;
    retry_later(shared, item, None);
}

/// The broker rejected the batch with a retriable error: this attempt was not written.
fn rejected_retry(shared: &Shared, mut item: InFlight) {
    // An earlier attempt may still have been.
    item.batch.maybe_written = item.batch.attempts > 1 && item.batch.maybe_written;
    retry_later(shared, item, None);
}

fn deliver(shared: &Shared, item: InFlight, base_offset: i64, append_time: i64) {
    let tp = item.tp.clone();
    tracing::trace!(topic = %tp.0, partition = tp.1, seq = ?item.batch.sequence, base_offset,
        records = item.batch.records.len(), attempts = item.batch.attempts, "delivered");
    {
        let mut state = shared.lock();
        if let Some(q) = state.queues.get_mut(&tp)
            && let Some(seq) = item.batch.sequence
        {
            // A resent batch may settle after a later one; never move backwards.
            let end = seq.wrapping_add(item.batch.records.len() as i32) & i32::MAX;
            q.acked_sequence = q.acked_sequence.max(end);
            q.has_acked = true;
        }
    }
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

/// Frees one in-flight slot of the partition; the last one lifts a retry block.
fn finish_in_flight(shared: &Shared, tp: &TopicPartition) {
    let mut state = shared.lock();
    state.in_flight_batches = state.in_flight_batches.saturating_sub(1);
    if let Some(q) = state.queues.get_mut(tp) {
        q.in_flight = q.in_flight.saturating_sub(1);
        if q.in_flight == 0 {
            q.blocked = false;
            q.connection = None;
        }
    }
}

/// Puts a batch back in sequence order, to be resent after a backoff, and blocks its partition
/// until every other in-flight batch of it has settled.
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
    queue.in_flight = queue.in_flight.saturating_sub(1);
    queue.blocked = queue.in_flight > 0;
    if queue.in_flight == 0 {
        queue.connection = None;
    }
    queue.requeue(item.batch);
    drop(state);
    shared.wake.notify_one();
}

/// Fails every record of a batch that is no longer in flight.
fn complete(shared: &Shared, batch: Batch, err: ProducerError) {
    let n = batch.deliveries.len();
    for tx in batch.deliveries {
        let _ = tx.send(Err(err.clone()));
    }
    shared.pending.fetch_sub(n, Ordering::AcqRel);
    shared.progress.notify_waiters();
    shared.wake.notify_one();
}
