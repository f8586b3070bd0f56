use std::sync::Arc;
use std::time::Duration;

use crate::cluster::ClusterError;
use crate::protocol::ErrorCode;
use crate::protocol::records::RecordError;

/// Errors of the producer. `Clone`, because one failed batch fails each of its records.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProducerError {
    /// Talking to the cluster failed.
    #[error(transparent)]
    Cluster(Arc<ClusterError>),
    /// The broker rejected the batch.
    #[error("produce to {topic}-{partition}: {code}{}", message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        /// Topic.
        topic: Arc<str>,
        /// Partition.
        partition: i32,
        /// The broker's error code.
        code: ErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// The topic does not exist (and is not auto-created).
    #[error("topic {topic:?} does not exist")]
    UnknownTopic {
        /// Topic.
        topic: String,
    },
    /// The record names a partition the topic does not have.
    #[error("topic {topic:?} has {partitions} partitions; partition {partition} does not exist")]
    InvalidPartition {
        /// Topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many the topic has.
        partitions: usize,
    },
    /// The record alone is larger than `max.request.size` or `buffer.memory`.
    #[error("record of {size} bytes is larger than {setting} ({max} bytes)")]
    RecordTooLarge {
        /// Estimated encoded size.
        size: usize,
        /// The limit.
        max: usize,
        /// Which setting sets the limit.
        setting: &'static str,
    },
    /// `send` waited longer than `max.block.ms` for buffer space.
    #[error("buffer.memory full for {0:?} (max.block.ms)")]
    BufferFull(Duration),
    /// The record was not acknowledged within `delivery.timeout.ms`.
    #[error("record to {topic}-{partition} not delivered within {timeout:?} (delivery.timeout.ms)")]
    DeliveryTimeout {
        /// Topic.
        topic: Arc<str>,
        /// Partition.
        partition: i32,
        /// The configured timeout.
        timeout: Duration,
    },
    /// Encoding the batch failed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The configuration is not supported by this producer.
    #[error("unsupported producer configuration: {0}")]
    Unsupported(&'static str),
    /// The producer was closed.
    #[error("the producer is closed")]
    Closed,
}

impl From<ClusterError> for ProducerError {
    fn from(e: ClusterError) -> Self {
        Self::Cluster(Arc::new(e))
    }
}
