//! The producer: per-partition batching, an idempotent sender, the Java client's partitioner.
//!
//! [`Producer::send`] places a record in its partition's open batch and returns a
//! [`DeliveryFuture`] that resolves once the broker acknowledged it (or the record failed). A
//! sender task drains batches that are full, past `linger.ms`, or flushed, groups them by leader
//! and writes one Produce request per broker at a time per partition.
//!
//! Idempotence (default on): the producer takes a producer id from `InitProducerId`, and every
//! batch carries a per-partition sequence number fixed on its first send. A retry resends the very
//! same bytes, so the broker drops duplicates, and since each partition has at most one batch in
//! flight, retries never reorder records. Buffered memory is bounded by `buffer.memory`: `send`
//! waits for room instead of growing without limit.

mod accumulator;
mod error;
mod fxhash;
pub mod partitioner;
mod sender;

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::protocol::records::Header;

pub use error::ProducerError;

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Destination topic.
    pub topic: String,
    /// Explicit partition; `None` lets the partitioner choose (murmur2 of the key, or sticky for
    /// records without a key).
    pub partition: Option<i32>,
    /// The key, or none.
    pub key: Option<Bytes>,
    /// The value, or none (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Create time in milliseconds since the epoch; `None` takes the current time.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition explicitly.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Sets the create time (milliseconds since the Unix epoch).
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; `-1` if the broker reported the batch as an already written
    /// duplicate without its offset.
    pub offset: i64,
    /// The record's timestamp: the create time, or the broker's append time on topics with
    /// `message.timestamp.type=LogAppendTime`.
    pub timestamp: i64,
}

/// Resolves when the broker has acknowledged the record, or with the reason it failed.
///
/// Dropping it does not cancel the send.
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata, ProducerError>>,
}

impl std::future::Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ProducerError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ProducerError::Closed)))
    }
}

/// A Kafka producer. Cheap to clone; clones share batches and connections.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<accumulator::Shared>,
    sender: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// Connects to the cluster and, when idempotence is on, obtains a producer id.
    ///
    /// Cancel safety: safe.
    pub async fn new(config: ClientConfig) -> Result<Self, ProducerError> {
        let cluster = Cluster::connect(config).await?;
        Self::with_cluster(cluster).await
    }

    /// A producer on an existing cluster client (sharing its connections and metadata).
    ///
    /// Cancel safety: safe.
    pub async fn with_cluster(cluster: Cluster) -> Result<Self, ProducerError> {
        let shared = Arc::new(accumulator::Shared::new(cluster)?);
        if shared.settings.idempotent {
            sender::init_producer_id(&shared).await?;
        }
        let handle = tokio::spawn(sender::run(shared.clone()));
        Ok(Self {
            inner: shared,
            sender: Arc::new(tokio::sync::Mutex::new(Some(handle))),
        })
    }

    /// Queues a record and returns the future of its delivery.
    ///
    /// Waits while the buffer (`buffer.memory`) is full, up to `max.block.ms`; that wait is the
    /// producer's backpressure. Fails at once for a record larger than `max.request.size`, an
    /// unknown topic, or a closed producer.
    ///
    /// Cancel safety: safe; a cancelled call has not queued the record.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProducerError> {
        let rx = self.inner.append(record).await?;
        Ok(DeliveryFuture { rx })
    }

    /// Sends every queued record now (ignoring `linger.ms`) and waits until all records sent
    /// before this call are delivered or failed.
    ///
    /// Cancel safety: safe.
    pub async fn flush(&self) {
        self.inner.flush().await;
    }

    /// Flushes, then stops the sender. Later sends fail with [`ProducerError::Closed`].
    ///
    /// Cancel safety: safe; the producer stays closed.
    pub async fn close(&self) {
        self.inner.close();
        self.inner.flush().await;
        self.inner.shutdown();
        if let Some(handle) = self.sender.lock().await.take() {
            let _ = handle.await;
        }
    }

    /// The cluster client the producer uses.
    pub fn cluster(&self) -> &Cluster {
        &self.inner.cluster
    }

    /// The current producer id and epoch (`-1, -1` when idempotence is off).
    pub fn producer_id(&self) -> (i64, i16) {
        self.inner.producer_id()
    }

    /// Bytes currently held by queued and in-flight records.
    pub fn buffered_bytes(&self) -> usize {
        self.inner.buffered_bytes()
    }

    /// How many times a batch was put back to be resent (after a lost connection, a leader
    /// change or a retriable broker error) since the producer started.
    pub fn retried_batches(&self) -> usize {
        self.inner
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records queued or in flight.
    pub fn pending_records(&self) -> usize {
        self.inner.pending_records()
    }

    /// A one-line-per-partition dump of the sender's bookkeeping, for diagnosing a stuck send.
    #[doc(hidden)]
    pub fn debug_state(&self) -> String {
        let state = self.inner.lock();
        let mut lines: Vec<String> = state
            .queues
            .iter()
            .map(|((t, p), q)| {
                format!(
                    "{t}-{p}: queued={} in_flight={} blocked={} next_seq={} acked_seq={} conn={:?} front_seq={:?} front_attempts={:?}",
                    q.batches.len(),
                    q.in_flight,
                    q.blocked,
                    q.next_sequence,
                    q.acked_sequence,
                    q.connection,
                    q.batches.front().map(|b| b.sequence),
                    q.batches.front().map(|b| b.attempts),
                )
            })
            .collect();
        lines.sort();
        lines.push(format!(
            "in_flight_batches={} bump_epoch={} pid={} epoch={}",
            state.in_flight_batches, state.bump_epoch, state.producer_id, state.producer_epoch
        ));
        lines.join("\n")
    }

    /// Test hook: drops every broker connection, as a network fault would. In-flight requests
    /// fail with a retriable error and are resent.
    #[doc(hidden)]
    pub fn cut_connections(&self) {
        self.inner.cluster.close();
    }
}
