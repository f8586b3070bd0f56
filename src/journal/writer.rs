//! The journal's writer thread: every mutation goes through it, in order, and completions are
//! group-committed (one fsync for every completion that arrived while the previous one ran).

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};

use fjall::{Keyspace, PersistMode};
use tokio::sync::oneshot;

use super::{Inner, JournalError};

/// A write to an application state keyspace, applied with a completion.
#[derive(Clone)]
pub(crate) struct StateWrite {
    pub keyspace: Keyspace,
    pub key: Vec<u8>,
    /// `None` deletes.
    pub value: Option<Vec<u8>>,
}

pub(crate) enum Op {
    /// A buffered write: reaches the OS with its batch, fsynced with the next durable op.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// A durable write: acknowledged after the fsync that covers it.
    Durable {
        key: Vec<u8>,
        value: Vec<u8>,
        state: Vec<StateWrite>,
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
    /// Removes the record entries of one partition prefix below an offset key.
    Prune {
        prefix: Vec<u8>,
        below: Vec<u8>,
        ack: oneshot::Sender<Result<usize, JournalError>>,
    },
    /// Acknowledged once everything before it is durable.
    Sync {
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
}

pub(crate) fn run(inner: Arc<Inner>, rx: Receiver<Op>) {
    let max_batch = inner.options.max_batch.max(1);
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        while ops.len() < max_batch {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if let Some(cause) = inner.poison_cause() {
            fail_all(ops, &cause);
            continue;
        }
        match apply(&inner, &ops) {
            Ok(pruned) => ack_all(&inner, ops, pruned),
            Err(e) => {
                let cause = inner.poison(e);
                fail_all(ops, &cause);
            }
        }
    }
}

/// Writes the ops as one atomic batch and persists it; returns each prune's count in order.
fn apply(inner: &Inner, ops: &[Op]) -> Result<Vec<usize>, fjall::Error> {
    let mut batch = inner.db.batch();
    let mut durable = false;
    let mut pruned = Vec::new();
    for op in ops {
        match op {
            Op::Put { key, value } => batch.insert(&inner.records, key.as_slice(), value.as_slice()),
            Op::Durable {
                key, value, state, ..
            } => {
                durable = true;
                batch.insert(&inner.records, key.as_slice(), value.as_slice());
                for w in state {
                    match &w.value {
                        Some(v) => batch.insert(&w.keyspace, w.key.as_slice(), v.as_slice()),
                        None => batch.remove(&w.keyspace, w.key.as_slice()),
                    }
                }
            }
            Op::Prune { prefix, below, .. } => {
                let mut n = 0;
                let range = (
                    Bound::Included(prefix.as_slice()),
                    Bound::Excluded(below.as_slice()),
                );
                for kv in inner.records.range::<&[u8], _>(range) {
                    let key = kv.key()?;
                    batch.remove(&inner.records, key);
                    n += 1;
                }
                pruned.push(n);
            }
            Op::Sync { .. } => durable = true,
        }
    }
    batch.commit()?;
    let mode = if durable {
        inner.options.durability.persist_mode()
    } else {
        PersistMode::Buffer
    };
    inner.db.persist(mode)?;
    if durable && mode != PersistMode::Buffer {
        inner.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
    }
    inner.stats.batches.fetch_add(1, Ordering::Relaxed);
    Ok(pruned)
}

fn ack_all(inner: &Inner, ops: Vec<Op>, pruned: Vec<usize>) {
    let mut pruned = pruned.into_iter();
    for op in ops {
        match op {
            Op::Put { .. } => {}
            Op::Durable { ack, .. } => {
                inner.stats.durable_writes.fetch_add(1, Ordering::Relaxed);
                let _ = ack.send(Ok(()));
            }
            Op::Prune { ack, .. } => {
                let n = pruned.next().unwrap_or(0);
                inner.stats.pruned.fetch_add(n as u64, Ordering::Relaxed);
                let _ = ack.send(Ok(n));
            }
            Op::Sync { ack } => {
                let _ = ack.send(Ok(()));
            }
        }
    }
}

fn fail_all(ops: Vec<Op>, cause: &Arc<str>) {
    for op in ops {
        let err = || JournalError::Poisoned(cause.clone());
        match op {
            Op::Put { .. } => {}
            Op::Durable { ack, .. } | Op::Sync { ack } => {
                let _ = ack.send(Err(err()));
            }
            Op::Prune { ack, .. } => {
                let _ = ack.send(Err(err()));
            }
        }
    }
}
