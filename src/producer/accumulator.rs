//! Per-partition queues of batches, the memory budget, and flush bookkeeping.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;

use super::fxhash::FxHashMap;
use super::partitioner::{StickyPartitions, partition_for_key};
use super::{ProducerError, ProducerRecord, RecordMetadata};
use crate::cluster::Cluster;
use crate::protocol::records::{Compression, Header, RecordToEncode};

/// A topic and partition.
pub(super) type TopicPartition = (Arc<str>, i32);

pub(super) type Delivery = oneshot::Sender<Result<RecordMetadata, ProducerError>>;

/// Producer settings, resolved from the client config once.
pub(super) struct Settings {
    pub idempotent: bool,
    pub acks: i16,
    pub linger: Duration,
    pub batch_size: usize,
    pub max_request_size: usize,
    pub buffer_memory: usize,
    pub delivery_timeout: Duration,
    pub request_timeout: Duration,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    pub max_block: Duration,
    pub compression: Compression,
    /// Batches of one partition in flight at once (`max.in.flight.requests.per.connection`).
    pub max_in_flight: usize,
}

/// Records on their way to one partition, sent as one unit.
pub(super) struct Batch {
    pub records: Vec<RecordToEncode>,
    pub deliveries: Vec<Delivery>,
    /// Estimated encoded size.
    pub size: usize,
    pub created: Instant,
    /// Memory this batch holds in `buffer.memory`; released when the batch is dropped.
    pub _permit: Option<OwnedSemaphorePermit>,
    /// Sequence number, fixed on first send (idempotence) so that retries are deduplicated.
    pub sequence: Option<i32>,
    /// Producer id and epoch the batch was encoded with, and the bytes.
    pub encoded: Option<(i64, i16, Bytes)>,
    pub attempts: u32,
    /// No resend before this instant (retry backoff).
    pub retry_at: Option<Instant>,
    /// Whether some attempt may have reached the broker without an answer.
    pub maybe_written: bool,
}

impl Batch {
    pub fn is_full(&self, batch_size: usize) -> bool {
        self.size >= batch_size
    }
}

/// Per-partition state.
#[derive(Default)]
pub(super) struct PartitionQueue {
    /// Batches waiting to be sent, in sequence order (retried batches go back to the front).
    pub batches: VecDeque<Batch>,
    /// Batches of this partition in requests right now.
    pub in_flight: usize,
    /// A batch failed: send nothing more until every in-flight batch has settled, then resend
    /// from the lowest sequence, so retries never reorder records.
    pub blocked: bool,
    /// Next sequence number to assign.
    pub next_sequence: i32,
    /// The sequence the broker expects next: the one after the last acknowledged batch.
    pub acked_sequence: i32,
    /// The connection ([`Connection::id`](crate::connection::Connection::id)) carrying this
    /// partition's in-flight batches.
    pub connection: Option<u64>,
    /// The broker acknowledged a batch of this partition under the current producer epoch.
    /// Until then only one batch is in flight: a broker that has no state for a producer on a
    /// partition accepts *any* first sequence (KIP-360), so a later batch overtaking the first
    /// one would be taken as the start of the partition's sequence.
    pub has_acked: bool,
}

impl PartitionQueue {
    /// Puts a batch back, keeping assigned sequences in order ahead of unsequenced batches.
    pub fn requeue(&mut self, batch: Batch) {
        let at = match batch.sequence {
            Some(seq) => self
                .batches
                .iter()
                .position(|b| b.sequence.is_none_or(|s| s > seq))
                .unwrap_or(self.batches.len()),
            None => self
                .batches
                .iter()
                .position(|b| b.sequence.is_none())
                .unwrap_or(self.batches.len()),
        };
        self.batches.insert(at, batch);
    }
}

pub(super) struct State {
    pub queues: FxHashMap<TopicPartition, PartitionQueue>,
    pub sticky: StickyPartitions,
    pub closed: bool,
    pub shutdown: bool,
    /// Raised by `flush`: send everything now.
    pub flushing: usize,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Set when the producer must bump its epoch before sending more (KIP-360).
    pub bump_epoch: bool,
    /// Batches in requests right now.
    pub in_flight_batches: usize,
}

/// Everything the producer handle and the sender task share.
pub(super) struct Shared {
    pub cluster: Cluster,
    pub settings: Settings,
    pub state: Mutex<State>,
    pub memory: Arc<Semaphore>,
    /// Wakes the sender: new data, flush, close, or a finished request.
    pub wake: Notify,
    /// Wakes flushers when records complete.
    pub progress: Notify,
    pub pending: AtomicUsize,
    /// Batches put back for a resend, since the start.
    pub retries: AtomicUsize,
    /// Per topic: its shared name, partition count, and when that was last checked against the
    /// cluster's metadata.
    pub topics: Mutex<FxHashMap<String, TopicSlot>>,
}

/// A producer's view of one topic.
pub(super) struct TopicSlot {
    pub name: Arc<str>,
    pub partitions: i32,
    pub checked: Instant,
}

/// How long a topic's partition count is trusted before it is checked against the metadata
/// again (which itself refreshes after `metadata.max.age.ms`).
const TOPIC_RECHECK: Duration = Duration::from_secs(1);

/// Fixed overhead of a v2 batch header.
const BATCH_OVERHEAD: usize = 61;

/// Upper bound of one record's encoded size (varints at their widest).
pub(super) fn record_size(key: Option<&Bytes>, value: Option<&Bytes>, headers: &[Header]) -> usize {
    let mut size = 5 + 1 + 10 + 5 + 5 + 5 + 5;
    size += key.map_or(0, Bytes::len) + value.map_or(0, Bytes::len);
    for h in headers {
        size += 10 + h.key.len() + h.value.as_ref().map_or(0, Bytes::len);
    }
    size
}

impl Shared {
    pub fn new(cluster: Cluster) -> Result<Self, ProducerError> {
        let config = cluster.config();
        let p = config.producer();
        let acks = p.acks().as_i16();
        if acks == 0 {
            return Err(ProducerError::Unsupported(
                "acks=0 (fire and forget) is not implemented yet; use acks=1 or acks=all",
            ));
        }
        let buffer_memory = p.buffer_memory().min(u64::from(u32::MAX)) as usize;
        let settings = Settings {
            idempotent: p.enable_idempotence(),
            acks,
            linger: p.linger(),
            batch_size: (p.batch_size() as usize).max(1),
            max_request_size: p.max_request_size() as usize,
            buffer_memory,
            delivery_timeout: p.delivery_timeout(),
            request_timeout: config.request_timeout(),
            retry_backoff: config.retry_backoff(),
            retry_backoff_max: config.retry_backoff_max(),
            max_block: p.max_block(),
            compression: p.compression_type().into(),
            max_in_flight: config.max_in_flight().max(1),
        };
        Ok(Self {
            memory: Arc::new(Semaphore::new(settings.buffer_memory)),
            settings,
            state: Mutex::new(State {
                queues: FxHashMap::default(),
                sticky: StickyPartitions::default(),
                closed: false,
                shutdown: false,
                flushing: 0,
                producer_id: -1,
                producer_epoch: -1,
                bump_epoch: false,
                in_flight_batches: 0,
            }),
            wake: Notify::new(),
            progress: Notify::new(),
            pending: AtomicUsize::new(0),
            retries: AtomicUsize::new(0),
            topics: Mutex::new(FxHashMap::default()),
            cluster,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn producer_id(&self) -> (i64, i16) {
        let s = self.lock();
        (s.producer_id, s.producer_epoch)
    }

    pub fn buffered_bytes(&self) -> usize {
        self.settings.buffer_memory - self.memory.available_permits()
    }

    pub fn pending_records(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// The topic's shared name and partition count, from a per-producer cache that is checked
    /// against the cluster's metadata at most once per [`TOPIC_RECHECK`].
    async fn topic(&self, topic: &str) -> Result<(Arc<str>, i32), ProducerError> {
        {
            let topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = topics.get(topic)
                && slot.checked.elapsed() < TOPIC_RECHECK
            {
                return Ok((slot.name.clone(), slot.partitions));
            }
        }
        let meta = self
            .cluster
            .topic(topic)
            .await?
            .filter(|t| !t.partitions.is_empty())
            .ok_or_else(|| ProducerError::UnknownTopic {
                topic: topic.to_string(),
            })?;
        let partitions = meta.partitions.len() as i32;
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let slot = topics
            .entry(topic.to_string())
            .or_insert_with(|| TopicSlot {
                name: Arc::from(topic),
                partitions,
                checked: Instant::now(),
            });
        slot.partitions = partitions;
        slot.checked = Instant::now();
        Ok((slot.name.clone(), partitions))
    }

    /// Queues a record; returns the receiver of its delivery.
    pub async fn append(
        &self,
        record: ProducerRecord,
    ) -> Result<oneshot::Receiver<Result<RecordMetadata, ProducerError>>, ProducerError> {
        if self.lock().closed {
            return Err(ProducerError::Closed);
        }
        let size = record_size(record.key.as_ref(), record.value.as_ref(), &record.headers);
        if size + BATCH_OVERHEAD > self.settings.max_request_size {
            return Err(ProducerError::RecordTooLarge {
                size,
                max: self.settings.max_request_size,
                setting: "max.request.size",
            });
        }
        if size > self.settings.buffer_memory {
            return Err(ProducerError::RecordTooLarge {
                size,
                max: self.settings.buffer_memory,
                setting: "buffer.memory",
            });
        }
        let (topic, partitions) = self.topic(&record.topic).await?;
        // Backpressure: wait for room in buffer.memory.
        let permit = match self.memory.clone().try_acquire_many_owned(size as u32) {
            Ok(p) => p,
            Err(_) => {
                self.wake.notify_one();
                tokio::time::timeout(
                    self.settings.max_block,
                    self.memory.clone().acquire_many_owned(size as u32),
                )
                .await
                .map_err(|_| ProducerError::BufferFull(self.settings.max_block))?
                .map_err(|_| ProducerError::Closed)?
            }
        };
        let timestamp = record.timestamp.unwrap_or_else(now_millis);
        let (tx, rx) = oneshot::channel();
        let mut state = self.lock();
        if state.closed {
            return Err(ProducerError::Closed);
        }
        let sticky = record.partition.is_none()
            && (record.key.is_none() || self.cluster.config().producer().partitioner_ignore_keys());
        let partition = match record.partition {
            Some(p) if (0..partitions).contains(&p) => p,
            Some(p) => {
                return Err(ProducerError::InvalidPartition {
                    topic: record.topic,
                    partition: p,
                    partitions: partitions as usize,
                });
            }
            None => match &record.key {
                Some(key) if !self.cluster.config().producer().partitioner_ignore_keys() => {
                    partition_for_key(key, partitions)
                }
                _ => state.sticky.partition(&topic, partitions),
            },
        };
        let batch_size = self.settings.batch_size;
        let queue = state.queues.entry((topic.clone(), partition)).or_default();
        let needs_new = match queue.batches.back() {
            // A batch already sent once is sealed; so is a full one.
            Some(b) => {
                b.sequence.is_some() || b.size + size > batch_size.max(size + BATCH_OVERHEAD)
            }
            None => true,
        };
        if needs_new {
            queue.batches.push_back(Batch {
                records: Vec::new(),
                deliveries: Vec::new(),
                size: BATCH_OVERHEAD,
                created: Instant::now(),
                _permit: None,
                sequence: None,
                encoded: None,
                attempts: 0,
                retry_at: None,
                maybe_written: false,
            });
        }
        let batch = queue.batches.back_mut().expect("just ensured");
        batch.records.push(RecordToEncode {
            timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
        });
        batch.deliveries.push(tx);
        batch.size += size;
        match &mut batch._permit {
            Some(p) => p.merge(permit),
            None => batch._permit = Some(permit),
        }
        let full = batch.is_full(batch_size);
        let first = batch.records.len() == 1;
        if sticky {
            state
                .sticky
                .produced(&topic, partition, size, batch_size, partitions);
        }
        drop(state);
        self.pending.fetch_add(1, Ordering::AcqRel);
        if full || first {
            // A full batch is ready; a first record arms the linger timer.
            self.wake.notify_one();
        }
        Ok(rx)
    }

    /// Sends everything now and waits until every record queued before the call completed.
    pub async fn flush(&self) {
        self.lock().flushing += 1;
        self.wake.notify_one();
        loop {
            let notified = self.progress.notified();
            if self.pending.load(Ordering::Acquire) == 0 {
                break;
            }
            notified.await;
        }
        self.lock().flushing -= 1;
    }

    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.wake.notify_one();
    }
}

pub(super) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
