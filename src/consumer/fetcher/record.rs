//! What the consumer hands to the application: [`ConsumerRecord`], and the [`TopicPartition`] key.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::records::{Header, TimestampType};

/// A topic name and a partition index: the key of everything per-partition in the consumer.
///
/// Cheap to clone (the name is shared).
#[derive(Debug, Clone, Eq, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: Arc<str>,
    /// The partition index.
    pub partition: i32,
}

impl std::hash::Hash for TopicPartition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As derived: consistent with `eq`, which compares the names' contents.
        self.topic.hash(state);
        self.partition.hash(state);
    }
}

impl PartialEq for TopicPartition {
    fn eq(&self, other: &Self) -> bool {
        self.is(&other.topic, other.partition)
    }
}

impl TopicPartition {
    /// Whether this is `topic`'s `partition`. Names are mostly shared: equal pointers spare the
    /// comparison of the bytes.
    pub(crate) fn is(&self, topic: &Arc<str>, partition: i32) -> bool {
        self.partition == partition && (Arc::ptr_eq(&self.topic, topic) || self.topic == *topic)
    }
}

impl TopicPartition {
    /// A key for `topic` and `partition`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// One data record, as the consumer delivers it.
///
/// Control records (transaction markers) never appear; with `read_committed`, neither do records
/// of aborted transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic (shared by every record of the topic).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The leader epoch the broker stamped on the record's batch (KIP-320); -1 if unknown.
    pub leader_epoch: i32,
    /// Milliseconds since the Unix epoch; see [`timestamp_type`](Self::timestamp_type).
    pub timestamp: i64,
    /// Whether the producer or the broker set the timestamp.
    pub timestamp_type: TimestampType,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// The headers, in wire order (keys may repeat).
    pub headers: Vec<Header>,
}

impl ConsumerRecord {
    /// The record's partition as a [`TopicPartition`].
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }

    /// Bytes of key, value and headers: what the record costs in memory beyond its struct.
    pub fn payload_len(&self) -> usize {
        self.key.as_ref().map_or(0, Bytes::len)
            + self.value.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
                .sum::<usize>()
    }
}
