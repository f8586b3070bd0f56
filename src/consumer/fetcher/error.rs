//! [`ConsumerError`]: what the consumer reports, with the topic, partition and offset concerned.

use std::sync::Arc;

use crate::cluster::ClusterError;
use crate::protocol::ErrorCode;
use crate::protocol::records::RecordError;

/// Errors of the consumer.
///
/// Partition errors ([`Corrupt`](Self::Corrupt), [`NoOffset`](Self::NoOffset),
/// [`OffsetOutOfRange`](Self::OffsetOutOfRange), [`LogTruncation`](Self::LogTruncation),
/// [`Partition`](Self::Partition)) are returned
/// once by [`Consumer::recv`](super::Consumer::recv); the partition then stops at its position
/// until [`Consumer::seek`](super::Consumer::seek) moves it. Other partitions keep flowing.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsumerError {
    /// A cluster call (metadata, connection) failed.
    #[error(transparent)]
    Cluster(Arc<ClusterError>),
    /// A fetched batch failed its checks (CRC, structure, codec). Nothing of it was delivered;
    /// records before it were. The partition stops at `offset` until the application seeks.
    #[error("{topic}/{partition}: cannot read batch at offset {offset}: {source}")]
    Corrupt {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The position the partition stopped at (the batch's base offset or, if the batch began
        /// before the position, the position).
        offset: i64,
        /// What the decoder found.
        #[source]
        source: RecordError,
    },
    /// `auto.offset.reset=none` and the partition has no position: call
    /// [`seek`](super::Consumer::seek).
    #[error("{topic}/{partition}: no position and auto.offset.reset=none; seek to an offset")]
    NoOffset {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
    },
    /// The position is outside the log (deleted by retention, or past the end) and
    /// `auto.offset.reset=none`.
    #[error(
        "{topic}/{partition}: offset {offset} is out of range and auto.offset.reset=none; seek to an offset"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The position the broker refused.
        offset: i64,
    },
    /// After a leader change the new leader's log ends, for the leader epoch of the last record
    /// returned, below the position: records this consumer returned were truncated away (KIP-320),
    /// and `auto.offset.reset=none`. With a reset policy the consumer logs a warning and resumes at
    /// `divergent_offset` (or by the policy when the leader cannot name one), as the Java client does.
    #[error(
        "{topic}/{partition}: log truncation detected at position {offset} (the leader's log diverges at {}); auto.offset.reset=none, seek to an offset",
        divergent_offset.map_or_else(|| "an unknown offset".to_string(), |o| o.to_string())
    )]
    LogTruncation {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The position: the offset after the last record returned.
        offset: i64,
        /// The first offset known to diverge, when the leader knows the epoch.
        divergent_offset: Option<i64>,
    },
    /// The broker answered a fetch or offset lookup for this partition with an error that
    /// retrying does not fix (for example an authorization failure).
    #[error("{topic}/{partition} at offset {offset}: {code}")]
    Partition {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The position at the time (-1 when there was none).
        offset: i64,
        /// The broker's error code.
        code: ErrorCode,
    },
    /// A topic named in [`assign`](super::Consumer::assign) does not exist.
    #[error("topic {topic:?} does not exist")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// A partition named in [`assign`](super::Consumer::assign) does not exist.
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The operation needs the partition to be assigned, and it is not.
    #[error("{topic}/{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The consumer was closed.
    #[error("the consumer is closed")]
    Closed,
}

impl From<ClusterError> for ConsumerError {
    fn from(e: ClusterError) -> Self {
        Self::Cluster(Arc::new(e))
    }
}

impl ConsumerError {
    /// The partition the error is about, if it is about one.
    pub fn partition(&self) -> Option<(&str, i32)> {
        match self {
            Self::Corrupt {
                topic, partition, ..
            }
            | Self::NoOffset { topic, partition }
            | Self::OffsetOutOfRange {
                topic, partition, ..
            }
            | Self::LogTruncation {
                topic, partition, ..
            }
            | Self::Partition {
                topic, partition, ..
            } => Some((topic, *partition)),
            Self::UnknownPartition { topic, partition }
            | Self::NotAssigned { topic, partition } => Some((topic, *partition)),
            Self::Cluster(_) | Self::UnknownTopic { .. } | Self::Closed => None,
        }
    }
}
