//! [`KafkaMessage`]: the record a workflow is given, with its idempotency key.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::context::{AttemptState, ContextEnv, Turn};
use crate::consumer::ConsumerRecord;
use crate::journal::{PartitionKey, RecordKey};
use crate::protocol::records::Header;

/// The records of one workflow task, shared by their messages and contexts: one allocation per
/// task instead of two per record, and the records are dropped together when the task and every
/// message of it are gone.
pub(crate) struct Records {
    pk: Arc<PartitionKey>,
    /// What the records' workflow contexts use (the journal, the producer): shared per task,
    /// not per context (the count of one `Arc` for every context was contended across threads).
    env: Arc<ContextEnv>,
    /// In an ordered unit: where a record's context asks for its turn (see `WorkflowContext`).
    turn: Option<Turn>,
    records: Vec<ConsumerRecord>,
    /// Each record's idempotency key, made when first asked for: most workflows never ask, and
    /// making one per record (two shared names cloned, then dropped) was a measurable part of
    /// the runtime's work. The table itself is made on the first ask too (a unit whose
    /// workflows finish at once journals runs of offsets, and never asks).
    keys: OnceLock<Box<[OnceLock<RecordKey>]>>,
    /// A unit's records: each one's first attempt's state (see
    /// [`WorkflowContext::first_in_unit`](super::WorkflowContext)), one allocation for the lot
    /// instead of one per record, made when a context first needs one (a workflow that takes no
    /// step, turn or transaction never does). Never made for a single record.
    first: OnceLock<Box<[AttemptState]>>,
    /// What the first attempts' states are made with ([`AttemptState::fresh`]).
    takes_turn: bool,
}

impl Records {
    /// `records` of the partition `pk`, their keys made when asked for; `takes_turn` as for the
    /// first attempts' contexts ([`WorkflowContext::first_in_unit`](super::WorkflowContext)).
    pub(crate) fn new(
        pk: &Arc<PartitionKey>,
        records: Vec<ConsumerRecord>,
        env: &Arc<ContextEnv>,
        turn: Option<Turn>,
        takes_turn: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            pk: pk.clone(),
            env: env.clone(),
            turn,
            records,
            keys: OnceLock::new(),
            first: OnceLock::new(),
            takes_turn,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// The records, if `all` is the last handle.
    pub(crate) fn into_records(all: Arc<Self>) -> Option<Vec<ConsumerRecord>> {
        Arc::into_inner(all).map(|r| r.records)
    }
}

/// One record of a [`Records`] (or a key alone: see [`KeyCell::from_key`]), cheap to clone.
#[derive(Clone)]
pub(crate) struct KeyCell {
    all: Arc<Records>,
    index: usize,
}

impl KeyCell {
    /// Record `index` of `all`.
    pub(crate) fn at(all: &Arc<Records>, index: usize) -> Self {
        debug_assert!(index < all.records.len());
        Self {
            all: all.clone(),
            index,
        }
    }

    /// A key with no record (a context outside the runtime): [`record`](Self::record) must not
    /// be asked of it.
    pub(crate) fn from_key(key: RecordKey, env: &Arc<ContextEnv>) -> Self {
        Self::with_record(key, Vec::new(), env)
    }

    /// `record` under `key`.
    pub(crate) fn from_record(
        key: RecordKey,
        record: ConsumerRecord,
        env: &Arc<ContextEnv>,
    ) -> Self {
        Self::with_record(key, vec![record], env)
    }

    fn with_record(key: RecordKey, records: Vec<ConsumerRecord>, env: &Arc<ContextEnv>) -> Self {
        Self {
            all: Arc::new(Records {
                pk: Arc::new(key.partition_key()),
                env: env.clone(),
                turn: None,
                records,
                keys: OnceLock::from(Box::new([OnceLock::from(key)]) as Box<[_]>),
                first: OnceLock::new(),
                takes_turn: false,
            }),
            index: 0,
        }
    }

    /// This cell, borrowed.
    pub(crate) fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            all: &self.all,
            index: self.index,
        }
    }

    pub(crate) fn get(&self) -> &RecordKey {
        self.as_ref().get()
    }

    /// The record (a cell made by [`from_key`](Self::from_key) has none).
    pub(crate) fn record(&self) -> &ConsumerRecord {
        self.as_ref().record()
    }

    pub(crate) fn topic_id(&self) -> uuid::Uuid {
        self.all.pk.topic_id
    }

    pub(crate) fn env(&self) -> &Arc<ContextEnv> {
        &self.all.env
    }

    pub(crate) fn turn(&self) -> Option<&Turn> {
        self.all.turn.as_ref()
    }

    /// The state of this record's first attempt in its unit, if it is in a unit.
    pub(crate) fn first_attempt(&self) -> Option<&AttemptState> {
        self.as_ref().first_attempt()
    }
}

/// A [`KeyCell`] borrowed from the records it is among: what the runtime's task holds per
/// record, so that only the contexts and messages handed to workflows count references to the
/// records (each count is an atomic increment and decrement per record).
#[derive(Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    all: &'a Arc<Records>,
    index: usize,
}

impl<'a> KeyRef<'a> {
    pub(crate) fn at(all: &'a Arc<Records>, index: usize) -> Self {
        debug_assert!(index < all.records.len());
        Self { all, index }
    }

    /// An owned cell for the same record.
    pub(crate) fn cell(self) -> KeyCell {
        KeyCell::at(self.all, self.index)
    }

    pub(crate) fn get(self) -> &'a RecordKey {
        let all = self.all;
        all.keys
            .get_or_init(|| all.records.iter().map(|_| OnceLock::new()).collect())[self.index]
            .get_or_init(|| all.pk.record(all.records[self.index].offset))
    }

    pub(crate) fn record(self) -> &'a ConsumerRecord {
        &self.all.records[self.index]
    }

    pub(crate) fn first_attempt(self) -> Option<&'a AttemptState> {
        let all = self.all;
        if !self.in_unit() {
            return None;
        }
        let first = all.first.get_or_init(|| {
            all.records
                .iter()
                .map(|_| AttemptState::fresh(all.takes_turn))
                .collect()
        });
        first.get(self.index)
    }

    /// Whether the record is in a unit (then its first attempt's state is the unit's: see
    /// [`first_attempt`](Self::first_attempt)).
    pub(crate) fn in_unit(self) -> bool {
        self.all.records.len() > 1
    }

    /// What the unit's first-attempt states are made with (see [`Records::new`]).
    pub(crate) fn unit_takes_turn(self) -> bool {
        self.all.takes_turn
    }

    /// The first attempt's state if it was made (it is made when a context first needs it).
    pub(crate) fn first_attempt_made(self) -> Option<&'a AttemptState> {
        self.all.first.get()?.get(self.index)
    }
}

impl std::fmt::Display for KeyRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
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
#[derive(Clone)]
pub struct KafkaMessage {
    key: KeyCell,
}

impl std::fmt::Debug for KafkaMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaMessage")
            .field("record", self.key.record())
            .field("key", &self.key)
            .finish()
    }
}

impl KafkaMessage {
    pub(crate) fn new(key: KeyCell) -> Self {
        Self { key }
    }

    fn rec(&self) -> &ConsumerRecord {
        self.key.record()
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.rec().topic
    }

    /// The topic's id (a UUID the broker assigned when the topic was created).
    pub fn topic_id(&self) -> uuid::Uuid {
        self.key.topic_id()
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.rec().partition
    }

    /// The offset.
    pub fn offset(&self) -> i64 {
        self.rec().offset
    }

    /// The leader epoch of the record's batch; -1 if unknown.
    pub fn leader_epoch(&self) -> i32 {
        self.rec().leader_epoch
    }

    /// The timestamp, milliseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.rec().timestamp
    }

    /// The key, `None` for a null key.
    pub fn key(&self) -> Option<&[u8]> {
        self.rec().key.as_deref()
    }

    /// The value; empty for a null value (see [`value_bytes`](Self::value_bytes)).
    pub fn value(&self) -> &[u8] {
        self.rec().value.as_deref().unwrap_or_default()
    }

    /// The value as shared bytes, `None` for a null value (a tombstone).
    pub fn value_bytes(&self) -> Option<&Bytes> {
        self.rec().value.as_ref()
    }

    /// The headers in wire order.
    pub fn headers(&self) -> &[Header] {
        &self.rec().headers
    }

    /// The idempotency key. Its [`Display`](std::fmt::Display) form is stable and can key
    /// external systems: `group/topic/topic-id/partition/offset`.
    pub fn idempotency_key(&self) -> &RecordKey {
        self.key.get()
    }

    /// The record as the consumer delivered it.
    pub fn record(&self) -> &ConsumerRecord {
        self.rec()
    }
}
