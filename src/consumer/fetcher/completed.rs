//! One partition's data from one Fetch response, decoded lazily, one batch at a time, as the
//! application pulls records (so a compressed batch is inflated only when its turn comes, and
//! only one inflated batch per partition is in memory at a time).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::aborted::{AbortedFilter, BatchFate};
use super::state::Charge;
use super::{ConsumerError, ConsumerRecord, TopicPartition};
use crate::protocol::records::{BatchContext, BatchDecoder};

/// What [`CompletedFetch::next`] yields.
#[derive(Debug)]
pub(crate) enum Step {
    /// A record to hand out; the position after it.
    Record(ConsumerRecord, i64),
    /// No record, but the position moves to this offset (control batch, aborted data).
    Advance(i64),
    /// The data at the position cannot be read.
    Error(ConsumerError),
    /// Nothing more in this fetch.
    Done,
}

/// One partition's records from one response, not yet handed out.
#[derive(Debug)]
pub(crate) struct CompletedFetch {
    pub tp: TopicPartition,
    /// The partition version the fetch was made under.
    pub version: u64,
    /// The position after everything handed out so far (starts at the fetch offset).
    pub position: i64,
    /// Bytes not decoded yet.
    raw: Bytes,
    ctx: BatchContext,
    filter: AbortedFilter,
    /// read_committed: nothing at or after this offset is returned.
    last_stable_offset: Option<i64>,
    /// Records of the current batch not handed out yet, with the position after each.
    ready: VecDeque<(ConsumerRecord, i64)>,
    done: bool,
    /// Records handed out from this fetch since it last went to the back of the queue.
    pub handed_out: usize,
    _charge: Arc<Charge>,
}

impl CompletedFetch {
    /// `raw` is the partition's `records` field, fetched from `fetch_offset`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tp: TopicPartition,
        version: u64,
        fetch_offset: i64,
        raw: Bytes,
        max_decompressed: usize,
        filter: AbortedFilter,
        last_stable_offset: Option<i64>,
        charge: Arc<Charge>,
    ) -> Self {
        let ctx = BatchContext::new(tp.topic.clone(), tp.partition)
            .with_max_decompressed(max_decompressed);
        Self {
            tp,
            version,
            position: fetch_offset,
            raw,
            ctx,
            filter,
            last_stable_offset,
            ready: VecDeque::new(),
            done: false,
            handed_out: 0,
            _charge: charge,
        }
    }

    /// The next step, decoding the next batch when the current one is used up.
    pub fn next(&mut self) -> Step {
        loop {
            if let Some((record, after)) = self.ready.pop_front() {
                self.position = after;
                self.handed_out += 1;
                return Step::Record(record, after);
            }
            if self.done {
                return Step::Done;
            }
            let mut decoder = BatchDecoder::new(self.raw.clone(), &self.ctx);
            let batch = match decoder.next() {
                // A partial batch at the end is normal: the next fetch starts at the position.
                None => {
                    self.done = true;
                    return Step::Done;
                }
                Some(Err(source)) => {
                    self.done = true;
                    return Step::Error(ConsumerError::Corrupt {
                        topic: self.tp.topic.clone(),
                        partition: self.tp.partition,
                        offset: self.position,
                        source,
                    });
                }
                Some(Ok(batch)) => batch,
            };
            let consumed = self.raw.len() - decoder.remaining_bytes();
            self.raw = self.raw.slice(consumed..);
            let header = &batch.header;
            if self
                .last_stable_offset
                .is_some_and(|lso| lso >= 0 && header.base_offset >= lso)
            {
                // "Nothing at or after the last stable offset is returned" under read_committed.
                // The broker does not send such data; if it did, stop without moving past it.
                self.done = true;
                return Step::Done;
            }
            let next = header.next_offset().max(self.position);
            match self.filter.classify(header, batch.control.as_ref()) {
                BatchFate::Skip => {
                    if next > self.position {
                        self.position = next;
                        return Step::Advance(next);
                    }
                }
                BatchFate::Deliver => {
                    let leader_epoch = header.partition_leader_epoch;
                    let timestamp_type = header.timestamp_type;
                    let position = self.position;
                    let lso = self.last_stable_offset.filter(|&l| l >= 0);
                    // Into `ready`'s own room (empty now; it keeps its capacity from batch to
                    // batch: collecting each batch anew grew a new deque by doubling).
                    let tp = &self.tp;
                    let records = &mut self.ready;
                    records.reserve(batch.records.len());
                    records.extend(
                        batch
                            .records
                            .into_iter()
                            .filter(|r| r.offset >= position && lso.is_none_or(|l| r.offset < l))
                            .map(|r| {
                                let after = r.offset + 1;
                                (
                                    ConsumerRecord {
                                        topic: tp.topic.clone(),
                                        partition: tp.partition,
                                        offset: r.offset,
                                        leader_epoch,
                                        timestamp: r.timestamp,
                                        timestamp_type,
                                        key: r.key,
                                        value: r.value,
                                        headers: r.headers,
                                    },
                                    after,
                                )
                            }),
                    );
                    // After the batch's last record the position is the batch's next offset,
                    // which skips offsets that compaction removed.
                    let whole = lso.is_none_or(|l| next <= l);
                    if let Some(last) = records.back_mut().filter(|_| whole) {
                        last.1 = next;
                    }
                    if records.is_empty() && whole && next > self.position {
                        self.position = next;
                        return Step::Advance(next);
                    }
                }
            }
        }
    }
}
