//! read_committed filtering: which batches of a Fetch response belong to aborted transactions.
//!
//! The algorithm is the Java client's (`CompletedFetch`): the response lists, per partition, the
//! aborted transactions that overlap the returned range as `(producer_id, first_offset)`. Walking
//! the batches in offset order:
//!
//! - before looking at a batch from a producer, every listed transaction whose `first_offset` is
//!   at or before the batch's last offset becomes "open and aborted" for its producer;
//! - a transactional data batch of a producer with an open aborted transaction is dropped;
//! - the producer's ABORT marker (a control batch) closes that transaction, so its later batches
//!   (a new transaction) are delivered again;
//! - control batches are never delivered.
//!
//! With `read_uncommitted` only the last rule applies.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use crate::protocol::records::{BatchHeader, ControlKind, ControlRecord};

/// What to do with one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchFate {
    /// Hand its records to the application.
    Deliver,
    /// Skip it (a control batch, or data of an aborted transaction), advancing the position.
    Skip,
}

/// The aborted-transaction state of one partition's fetched data.
#[derive(Debug, Default)]
pub(crate) struct AbortedFilter {
    read_committed: bool,
    /// Listed aborted transactions not reached yet, smallest first offset first.
    upcoming: BinaryHeap<Reverse<(i64, i64)>>,
    /// Producers whose current transaction is aborted.
    aborted_producers: HashSet<i64>,
}

impl AbortedFilter {
    /// A filter for `read_uncommitted`: drops control batches only.
    pub fn read_uncommitted() -> Self {
        Self::default()
    }

    /// A filter for `read_committed` from the response's `(producer_id, first_offset)` list.
    pub fn read_committed(aborted: impl IntoIterator<Item = (i64, i64)>) -> Self {
        Self {
            read_committed: true,
            upcoming: aborted
                .into_iter()
                .map(|(producer_id, first_offset)| Reverse((first_offset, producer_id)))
                .collect(),
            aborted_producers: HashSet::new(),
        }
    }

    /// Decides the fate of the next batch, in offset order.
    pub fn classify(&mut self, header: &BatchHeader, control: Option<&ControlRecord>) -> BatchFate {
        if self.read_committed && header.has_producer_id() {
            let last = header.last_offset();
            while let Some(Reverse((first_offset, producer_id))) = self.upcoming.peek().copied() {
                if first_offset > last {
                    break;
                }
                self.upcoming.pop();
                self.aborted_producers.insert(producer_id);
            }
            let is_abort_marker =
                header.is_control && control.is_some_and(|c| c.kind == ControlKind::Abort);
            if is_abort_marker {
                self.aborted_producers.remove(&header.producer_id);
            } else if header.is_transactional
                && self.aborted_producers.contains(&header.producer_id)
            {
                return BatchFate::Skip;
            }
        }
        if header.is_control {
            BatchFate::Skip
        } else {
            BatchFate::Deliver
        }
    }
}
