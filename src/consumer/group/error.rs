//! [`GroupError`] and [`CommitError`]: what group membership and offset commits report.

use std::sync::Arc;

use crate::cluster::ClusterError;
use crate::consumer::ConsumerError;
use crate::protocol::{ErrorAction, ErrorCode};

/// Errors of group membership and of offset fetches.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// A cluster call (connection, metadata) failed.
    #[error(transparent)]
    Cluster(Arc<ClusterError>),
    /// The underlying fetching consumer failed.
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// The coordinator answered with an error code.
    #[error("group {group:?}: {context}: {code}")]
    Broker {
        /// The group.
        group: String,
        /// What was being done (`JoinGroup`, `OffsetFetch`, …).
        context: &'static str,
        /// The error code.
        code: ErrorCode,
    },
    /// Another member registered with this member's `group.instance.id` (FENCED_INSTANCE_ID):
    /// this member is out of the group for good.
    #[error("group {group:?}: fenced: another member uses group.instance.id {instance_id:?}")]
    Fenced {
        /// The group.
        group: String,
        /// The static member id.
        instance_id: String,
    },
    /// The configuration has no `group.id`.
    #[error("group membership needs group.id")]
    NoGroupId,
    /// The leader could not compute an assignment.
    #[error("group {group:?}: assignment failed: {message}")]
    Assignment {
        /// The group.
        group: String,
        /// The assignor's complaint.
        message: String,
    },
    /// No answer within the deadline.
    #[error("group {group:?}: timed out: {what}")]
    Timeout {
        /// The group.
        group: String,
        /// What was awaited.
        what: String,
    },
    /// The group consumer was closed.
    #[error("the group consumer is closed")]
    Closed,
}

impl From<ClusterError> for GroupError {
    fn from(e: ClusterError) -> Self {
        Self::Cluster(Arc::new(e))
    }
}

impl From<crate::connection::ConnectionError> for GroupError {
    fn from(e: crate::connection::ConnectionError) -> Self {
        ClusterError::from(e).into()
    }
}

impl From<crate::protocol::ProtocolError> for GroupError {
    fn from(e: crate::protocol::ProtocolError) -> Self {
        ClusterError::from(e).into()
    }
}

impl GroupError {
    /// Whether retrying the same call (after rediscovering the coordinator where needed) may
    /// succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Cluster(e) => e.is_retriable(),
            Self::Broker { code, .. } => matches!(
                code.action(),
                ErrorAction::Retry
                    | ErrorAction::RediscoverCoordinator
                    | ErrorAction::RefreshMetadata
            ),
            Self::Consumer(_)
            | Self::Fenced { .. }
            | Self::NoGroupId
            | Self::Assignment { .. }
            | Self::Timeout { .. }
            | Self::Closed => false,
        }
    }

    /// The broker error code, if this is a broker error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Broker { code, .. } => Some(*code),
            Self::Cluster(e) => e.code(),
            _ => None,
        }
    }
}

/// Why an offset commit did not happen. Every variant means **not committed**: the offsets the
/// group holds are the ones from before the call (a commit is never retried under a newer
/// generation).
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The group is rebalancing (REBALANCE_IN_PROGRESS, or the member is between generations):
    /// the partitions may already belong to someone else.
    #[error("group {group:?}: not committed: rebalance in progress (generation {generation})")]
    RebalanceInProgress {
        /// The group.
        group: String,
        /// The generation the commit was made under.
        generation: i32,
    },
    /// The generation the commit was made under is over (ILLEGAL_GENERATION).
    #[error("group {group:?}: not committed: generation {generation} is no longer current")]
    IllegalGeneration {
        /// The group.
        group: String,
        /// The stale generation.
        generation: i32,
    },
    /// The coordinator no longer knows this member (UNKNOWN_MEMBER_ID): it was evicted.
    #[error("group {group:?}: not committed: member {member_id:?} is unknown to the coordinator")]
    UnknownMember {
        /// The group.
        group: String,
        /// The member id the commit carried.
        member_id: String,
    },
    /// Another member uses this member's `group.instance.id` (FENCED_INSTANCE_ID).
    #[error("group {group:?}: not committed: fenced static member {instance_id:?}")]
    Fenced {
        /// The group.
        group: String,
        /// The static member id.
        instance_id: String,
    },
    /// The broker refused one partition's offset (for example OFFSET_METADATA_TOO_LARGE or an
    /// authorization failure). Other partitions of the same request may have been committed.
    #[error("group {group:?}: {topic}/{partition} not committed: {code}")]
    Partition {
        /// The group.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The error code.
        code: ErrorCode,
    },
    /// The commit could not be delivered or its outcome is unknown (coordinator unreachable,
    /// timeout). Treat as not committed.
    #[error(transparent)]
    Group(#[from] GroupError),
}

impl CommitError {
    /// Whether the commit failed because the member's generation is over or rebalancing
    /// (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID).
    pub fn is_generation_error(&self) -> bool {
        matches!(
            self,
            Self::RebalanceInProgress { .. }
                | Self::IllegalGeneration { .. }
                | Self::UnknownMember { .. }
                | Self::Fenced { .. }
        )
    }
}
