//! [`RebalanceListener`]: the application's hooks into assignment changes.

use std::future::Future;
use std::pin::Pin;

use crate::consumer::TopicPartition;

use super::{GroupHandle, OffsetAndMetadata};

/// The future a [`RebalanceListener`] method returns.
pub type ListenerFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Called by the membership task when partitions come and go.
///
/// The methods run on the membership task, which also sends heartbeats: a listener that takes
/// longer than the session timeout gets the member evicted. Every method has an empty default.
pub trait RebalanceListener: Send + Sync {
    /// `partitions` are about to be added to this member's assignment, each with the group's
    /// committed offset and metadata (`None` when the group has none). It runs before the
    /// fetcher starts on them, so no record of theirs has been handed out yet: the place to
    /// load per-partition state that must exist before the first record.
    fn assigning<'a>(
        &'a self,
        group: &'a GroupHandle,
        partitions: &'a [(TopicPartition, Option<OffsetAndMetadata>)],
    ) -> ListenerFuture<'a> {
        let _ = (group, partitions);
        Box::pin(std::future::ready(()))
    }

    /// `partitions` were added to this member's assignment. They are already assigned to the
    /// fetcher at their committed offsets (or from `auto.offset.reset`), so `recv` may return
    /// their records while this runs.
    fn assigned<'a>(
        &'a self,
        group: &'a GroupHandle,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let _ = (group, partitions);
        Box::pin(std::future::ready(()))
    }

    /// `partitions` are being taken away in an orderly rebalance (or on close). They were
    /// already unassigned from the fetcher, so no more of their records are handed out; each
    /// comes with its last position (the next offset to read). The generation is still valid:
    /// committing through `group` here works, and is the last chance to.
    fn revoked<'a>(
        &'a self,
        group: &'a GroupHandle,
        partitions: &'a [(TopicPartition, Option<i64>)],
    ) -> ListenerFuture<'a> {
        let _ = (group, partitions);
        Box::pin(std::future::ready(()))
    }

    /// `partitions` were lost: the member was evicted (session timeout, `max.poll.interval.ms`,
    /// a generation error) and another member may own them already. Do not commit for them.
    fn lost<'a>(&'a self, partitions: &'a [TopicPartition]) -> ListenerFuture<'a> {
        let _ = partitions;
        Box::pin(std::future::ready(()))
    }
}

/// A listener that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopListener;

impl RebalanceListener for NoopListener {}
