//! [`KafkaMessage`]: the record a workflow is given, with its idempotency key.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::consumer::ConsumerRecord;
use crate::journal::{PartitionKey, RecordKey};
use crate::protocol::records::Header;

/// A record's idempotency key, made when first asked for: most workflows never ask, and making
/// one per record (two shared names cloned, then dropped, on every record) was a measurable part
/// of the runtime's work.
pub(crate) struct KeyCell {
    pk: Arc<PartitionKey>,
    offset: i64,
    key: OnceLock<RecordKey>,
}

impl KeyCell {
    pub(crate) fn new(pk: &Arc<PartitionKey>, offset: i64) -> Self {
        Self {
            pk: pk.clone(),
            offset,
            key: OnceLock::new(),
        }
    }

    pub(crate) fn from_key(key: RecordKey) -> Self {
        Self {
            pk: Arc::new(key.partition_key()),
            offset: key.offset,
            key: OnceLock::from(key),
        }
    }

    pub(crate) fn get(&self) -> &RecordKey {
        self.key.get_or_init(|| self.pk.record(self.offset))
    }

    pub(crate) fn topic_id(&self) -> uuid::Uuid {
        self.pk.topic_id
    }
}

impl std::fmt::Display for KeyCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl std::fmt::Debug for KeyCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// One Kafka record as a workflow sees it: coordinates, payload, and the idempotency key
/// (group, topic, topic id, partition, offset) its completion is recorded under.
///
/// Cheap to clone (payloads are shared).
#[derive(Debug, Clone)]
pub struct KafkaMessage {
    record: Arc<ConsumerRecord>,
    key: Arc<KeyCell>,
}

impl KafkaMessage {
    pub(crate) fn new(record: Arc<ConsumerRecord>, key: Arc<KeyCell>) -> Self {
        Self { record, key }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.record.topic
    }

    /// The topic's id (a UUID the broker assigned when the topic was created).
    pub fn topic_id(&self) -> uuid::Uuid {
        self.key.topic_id()
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.record.partition
    }

    /// The offset.
    pub fn offset(&self) -> i64 {
        self.record.offset
    }

    /// The leader epoch of the record's batch; -1 if unknown.
    pub fn leader_epoch(&self) -> i32 {
        self.record.leader_epoch
    }

    /// The timestamp, milliseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.record.timestamp
    }

    /// The key, `None` for a null key.
    pub fn key(&self) -> Option<&[u8]> {
        self.record.key.as_deref()
    }

    /// The value; empty for a null value (see [`value_bytes`](Self::value_bytes)).
    pub fn value(&self) -> &[u8] {
        self.record.value.as_deref().unwrap_or_default()
    }

    /// The value as shared bytes, `None` for a null value (a tombstone).
    pub fn value_bytes(&self) -> Option<&Bytes> {
        self.record.value.as_ref()
    }

    /// The headers in wire order.
    pub fn headers(&self) -> &[Header] {
        &self.record.headers
    }

    /// The idempotency key. Its [`Display`](std::fmt::Display) form is stable and can key
    /// external systems: `group/topic/topic-id/partition/offset`.
    pub fn idempotency_key(&self) -> &RecordKey {
        self.key.get()
    }

    /// The record as the consumer delivered it.
    pub fn record(&self) -> &ConsumerRecord {
        &self.record
    }
}
