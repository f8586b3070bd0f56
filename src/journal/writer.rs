//! The journal's writer thread: every mutation goes through it, in order, and completions are
//! group-committed (one fsync for every completion that arrived while the previous one ran).

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use fjall::{Keyspace, PersistMode};
use tokio::sync::oneshot;

use super::{Entry, Inner, JournalError};

/// A write to an application state keyspace, applied with a completion.
#[derive(Clone)]
pub(crate) struct StateWrite {
    pub keyspace: Keyspace,
    pub key: Vec<u8>,
    /// `None` deletes.
    pub value: Option<Vec<u8>>,
}

/// A value a transaction read from committed state: the completion applies only if it is still
/// the same (optimistic concurrency).
#[derive(Clone)]
pub(crate) struct StateRead {
    pub keyspace: Keyspace,
    pub key: Vec<u8>,
    pub seen: Option<Vec<u8>>,
}

/// What became of a finishing write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinishResult {
    Written,
    /// The key was finished already; nothing was written.
    AlreadyFinished,
    /// A value the transaction read changed since; nothing was written.
    Conflict,
}

pub(crate) enum Op {
    /// A buffered write: reaches the OS with its batch, fsynced with the next durable op.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// A buffered write of a started run.
    PutRun { key: Vec<u8>, value: Vec<u8> },
    /// Durable writes of completed runs, acknowledged after the fsync that covers them.
    FinishRuns {
        runs: Vec<(Vec<u8>, Vec<u8>)>,
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
    /// As `Put`, skipped when the key holds a finished entry.
    PutUnlessFinished { key: Vec<u8>, value: Vec<u8> },
    /// A durable write of a finishing entry: acknowledged after the fsync that covers it, with
    /// `true` if written, `false` if the key was finished already (then nothing is written, the
    /// state writes neither: at most one completion per key).
    Finish {
        key: Vec<u8>,
        value: Vec<u8>,
        /// Whether the key may be finished already (else the read is skipped).
        check: bool,
        reads: Vec<StateRead>,
        state: Vec<StateWrite>,
        ack: oneshot::Sender<Result<FinishResult, JournalError>>,
    },
    /// A step checkpoint with its state writes: written only if no step is recorded at the key
    /// yet and the reads hold (`AlreadyFinished` / `Conflict` otherwise, writing nothing).
    Step {
        key: Vec<u8>,
        value: Vec<u8>,
        reads: Vec<StateRead>,
        state: Vec<StateWrite>,
        ack: oneshot::Sender<Result<FinishResult, JournalError>>,
    },
    /// State writes on their own, acknowledged once durable.
    State {
        state: Vec<StateWrite>,
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
    /// Removes the record entries (and their steps) from one key up to (not including) another.
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

impl Op {
    /// A finishing write: the group-commit linger waits for these.
    fn is_finish(&self) -> bool {
        matches!(self, Op::Finish { .. } | Op::FinishRuns { .. })
    }
}

pub(crate) fn run(inner: Arc<Inner>, rx: Receiver<Op>) {
    let max_batch = inner.options.max_batch.max(1);
    let linger = inner.options.group_commit_linger;
    // Finishing writes in the previous durable batch: when a batch has fewer, the writer waits
    // (up to `linger`) for the rest, so that writers that advance in lockstep (one record per
    // partition at a time, as `Ordering::Partition` does) share one fsync instead of each
    // getting their own.
    let mut expected = 0usize;
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        while ops.len() < max_batch {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let mut finishes = ops.iter().filter(|o| o.is_finish()).count();
        if finishes > 0 && finishes < expected && !linger.is_zero() {
            let deadline = Instant::now() + linger;
            while finishes < expected && ops.len() < max_batch {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                match rx.recv_timeout(left) {
                    Ok(op) => {
                        finishes += usize::from(op.is_finish());
                        ops.push(op);
                    }
                    Err(_) => break,
                }
            }
        }
        if finishes > 0 {
            expected = finishes;
        }
        if let Some(cause) = inner.poison_cause() {
            fail_all(ops, &cause);
            continue;
        }
        match apply(&inner, &ops) {
            Ok(results) => ack_all(&inner, ops, results),
            Err(e) => {
                let cause = inner.poison(e);
                fail_all(ops, &cause);
            }
        }
    }
}

/// Writes the ops as one atomic batch and persists it; returns each op's count (entries
/// pruned, or 1 when a finishing entry was written and 0 when it was finished already).
pub(super) fn apply(inner: &Inner, ops: &[Op]) -> Result<Vec<usize>, fjall::Error> {
    inner.wrote.store(true, Ordering::SeqCst);
    let mut batch = inner.db.batch();
    let mut durable = false;
    let mut results = Vec::with_capacity(ops.len());
    let mut finished_here: HashSet<&[u8]> = HashSet::new();
    // Completed runs written earlier in this batch: (partition prefix, first, end).
    let mut runs_here: Vec<(&[u8], i64, i64)> = Vec::new();
    let covered_here = |runs_here: &[(&[u8], i64, i64)], key: &[u8]| {
        super::key::split_record_key(key).is_some_and(|(prefix, offset)| {
            runs_here
                .iter()
                .any(|(p, first, end)| *p == prefix && (*first..*end).contains(&offset))
        })
    };
    // State written earlier in this batch (not readable from fjall until the batch commits).
    let mut written: HashMap<(&str, &[u8]), Option<&[u8]>> = HashMap::new();
    // A unit's started run and its completed run (same first offset, same end) often meet in
    // one batch: the batch lands whole or not at all, and a completed run supersedes a started
    // one for every reader, so the started run is not written (one memtable entry, log record
    // and later tombstone fewer per unit).
    let completed_here: HashSet<(&[u8], i64)> = ops
        .iter()
        .filter_map(|op| match op {
            Op::FinishRuns { runs, .. } => Some(runs),
            _ => None,
        })
        .flatten()
        .filter_map(|(key, value)| {
            Some((
                key.as_slice(),
                super::Run::decode(value, String::new).ok()?.end,
            ))
        })
        .collect();
    for op in ops {
        let n = match op {
            Op::Put { key, value } => {
                batch.insert(&inner.records, key.as_slice(), value.as_slice());
                0
            }
            Op::PutRun { key, value } => {
                let superseded = !completed_here.is_empty()
                    && super::Run::decode(value, String::new)
                        .is_ok_and(|run| completed_here.contains(&(key.as_slice(), run.end)));
                if !superseded {
                    batch.insert(&inner.started_runs, key.as_slice(), value.as_slice());
                }
                0
            }
            Op::FinishRuns { runs, .. } => {
                durable = true;
                for (key, value) in runs {
                    batch.insert(&inner.completed_runs, key.as_slice(), value.as_slice());
                    if let (Some((prefix, first)), Ok(run)) = (
                        super::key::split_record_key(key),
                        super::Run::decode(value, String::new),
                    ) {
                        runs_here.push((prefix, first, run.end));
                    }
                }
                0
            }
            Op::PutUnlessFinished { key, value } => {
                if !finished_here.contains(key.as_slice())
                    && !covered_here(&runs_here, key)
                    && !is_finished(inner, key)?
                {
                    batch.insert(&inner.records, key.as_slice(), value.as_slice());
                }
                0
            }
            Op::Finish {
                key,
                value,
                check,
                reads,
                state,
                ..
            } => {
                durable = true;
                if finished_here.contains(key.as_slice())
                    || covered_here(&runs_here, key)
                    || (*check && is_finished(inner, key)?)
                {
                    FINISHED
                } else if !reads_hold(reads, &written)? {
                    CONFLICT
                } else {
                    finished_here.insert(key.as_slice());
                    batch.insert(&inner.records, key.as_slice(), value.as_slice());
                    write_state(&mut batch, &mut written, state);
                    WRITTEN
                }
            }
            Op::Step {
                key,
                value,
                reads,
                state,
                ..
            } => {
                durable = true;
                if finished_here.contains(key.as_slice()) || inner.steps.get(key)?.is_some() {
                    FINISHED
                } else if !reads_hold(reads, &written)? {
                    CONFLICT
                } else {
                    finished_here.insert(key.as_slice());
                    batch.insert(&inner.steps, key.as_slice(), value.as_slice());
                    write_state(&mut batch, &mut written, state);
                    WRITTEN
                }
            }
            Op::Prune { prefix, below, .. } => {
                let mut n = 0;
                for keyspace in [&inner.records, &inner.steps] {
                    let range = (
                        Bound::Included(prefix.as_slice()),
                        Bound::Excluded(below.as_slice()),
                    );
                    for kv in keyspace.range::<&[u8], _>(range) {
                        let key = kv.key()?;
                        batch.remove(keyspace, key);
                        n += usize::from(std::ptr::eq(keyspace, &inner.records));
                    }
                }
                n + prune_runs(inner, &mut batch, prefix, below)?
            }
            Op::State { state, .. } => {
                durable = true;
                write_state(&mut batch, &mut written, state);
                0
            }
            Op::Sync { .. } => {
                durable = true;
                0
            }
        };
        results.push(n);
    }
    // Batches are numbered; see `DURABLE_MARKER`.
    let seq = inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
    batch.insert(&inner.meta, super::SEQ_KEY, seq.to_be_bytes());
    batch.commit()?;
    // The injected failure comes where a full disk's usually does: at the persist, with the batch
    // already in fjall's memtable (fjall writes its log through a buffer, so the write(2) that
    // finds no space is the persist's flush of it), where readers see it.
    if let Some(n) = inner.options.fail_after_batches
        && inner.stats.batches.load(Ordering::Relaxed) >= n
    {
        return Err(fjall::Error::Io(std::io::Error::other(
            "injected write failure (JournalOptions::fail_after_batches)",
        )));
    }
    let mode = if durable {
        inner.options.durability.persist_mode()
    } else {
        PersistMode::Buffer
    };
    inner.db.persist(mode)?;
    if durable && mode != PersistMode::Buffer {
        inner.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        // Durable up to here (and every batch before it, written earlier to the same log).
        use std::os::unix::fs::FileExt;
        if let Err(e) = inner.marker.write_all_at(&seq.to_be_bytes(), 0) {
            tracing::warn!(error = %e, "cannot record the last durable journal write");
        }
    }
    inner.stats.batches.fetch_add(1, Ordering::Relaxed);
    Ok(results)
}

/// Removes the runs that start in `[prefix, below)` (and the one before `prefix` that may reach
/// into it); a run reaching past `below` is trimmed to start there, so that no run starts below a
/// pruned offset (later prunes start their scan there). Returns the runs removed.
fn prune_runs(
    inner: &Inner,
    batch: &mut fjall::OwnedWriteBatch,
    prefix: &[u8],
    below: &[u8],
) -> Result<usize, fjall::Error> {
    let Some((partition, below_offset)) = super::key::split_record_key(below) else {
        return Ok(0);
    };
    let mut n = 0;
    for keyspace in [&inner.started_runs, &inner.completed_runs] {
        let before = keyspace.range::<&[u8], _>(..prefix).next_back();
        let within = keyspace.range::<&[u8], _>((Bound::Included(prefix), Bound::Excluded(below)));
        // The runs reaching across `below` become one run starting there (started runs may
        // overlap; completed runs never do, so for them this is the one run across).
        let mut across: Option<super::Run> = None;
        for kv in before.into_iter().chain(within) {
            let (key, value) = kv.into_inner()?;
            if super::key::split_record_key(&key).is_none_or(|(p, _)| p != partition) {
                continue;
            }
            // An undecodable run stays for `verify` to report.
            let Ok(run) = super::Run::decode(&value, String::new) else {
                continue;
            };
            batch.remove(keyspace, key.clone());
            n += 1;
            if run.end > below_offset {
                let merged = across.get_or_insert(run);
                merged.end = merged.end.max(run.end);
                merged.attempts = merged.attempts.max(run.attempts);
                merged.at_ms = merged.at_ms.max(run.at_ms);
            }
        }
        if let Some(mut run) = across {
            // A run starting at `below` itself is outside the range above: merge with it.
            if let Some(v) = keyspace.get(below)?
                && let Ok(old) = super::Run::decode(&v, String::new)
            {
                run.end = run.end.max(old.end);
                run.attempts = run.attempts.max(old.attempts);
                run.at_ms = run.at_ms.max(old.at_ms);
            }
            batch.insert(keyspace, below, run.encode());
        }
    }
    Ok(n)
}

/// Adds state writes to the batch, remembering them for later reads in the same batch.
fn write_state<'a>(
    batch: &mut fjall::OwnedWriteBatch,
    written: &mut HashMap<(&'a str, &'a [u8]), Option<&'a [u8]>>,
    state: &'a [StateWrite],
) {
    for w in state {
        written.insert((w.keyspace.name(), w.key.as_slice()), w.value.as_deref());
        match &w.value {
            Some(v) => batch.insert(&w.keyspace, w.key.as_slice(), v.as_slice()),
            None => batch.remove(&w.keyspace, w.key.as_slice()),
        }
    }
}

const FINISHED: usize = 0;
const WRITTEN: usize = 1;
const CONFLICT: usize = 2;

/// Whether every value a transaction read is still what it saw.
fn reads_hold(
    reads: &[StateRead],
    written: &HashMap<(&str, &[u8]), Option<&[u8]>>,
) -> Result<bool, fjall::Error> {
    for r in reads {
        let now = match written.get(&(r.keyspace.name(), r.key.as_slice())) {
            Some(v) => v.map(<[u8]>::to_vec),
            None => r.keyspace.get(&r.key)?.map(|v| v.to_vec()),
        };
        if now != r.seen {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the stored entry of `key` is finished. An undecodable entry counts as finished:
/// writing over it could hide a completion; `verify` reports it.
fn is_finished(inner: &Inner, key: &[u8]) -> Result<bool, fjall::Error> {
    let own = match inner.records.get(key)? {
        Some(v) => Entry::decode(&v, String::new).map_or(true, |e| e.is_finished()),
        None => false,
    };
    // Completed with a run (a started entry of its own may exist too: another assignment began
    // it)? An undecodable run counts as finished, as above.
    Ok(own || super::covering_run(&inner.completed_runs, key).map_or(true, |run| run.is_some()))
}

fn ack_all(inner: &Inner, ops: Vec<Op>, results: Vec<usize>) {
    for (op, n) in ops.into_iter().zip(results) {
        match op {
            Op::Put { .. } | Op::PutUnlessFinished { .. } | Op::PutRun { .. } => {}
            Op::FinishRuns { ack, runs } => {
                inner
                    .stats
                    .durable_writes
                    .fetch_add(runs.len() as u64, Ordering::Relaxed);
                let _ = ack.send(Ok(()));
            }
            Op::Finish { ack, .. } | Op::Step { ack, .. } => {
                let result = match n {
                    WRITTEN => {
                        inner.stats.durable_writes.fetch_add(1, Ordering::Relaxed);
                        FinishResult::Written
                    }
                    CONFLICT => FinishResult::Conflict,
                    _ => FinishResult::AlreadyFinished,
                };
                let _ = ack.send(Ok(result));
            }
            Op::Prune { ack, .. } => {
                inner.stats.pruned.fetch_add(n as u64, Ordering::Relaxed);
                let _ = ack.send(Ok(n));
            }
            Op::Sync { ack } | Op::State { ack, .. } => {
                let _ = ack.send(Ok(()));
            }
        }
    }
}

fn fail_all(ops: Vec<Op>, cause: &Arc<str>) {
    for op in ops {
        let err = || JournalError::Poisoned(cause.clone());
        match op {
            Op::Put { .. } | Op::PutUnlessFinished { .. } | Op::PutRun { .. } => {}
            Op::Finish { ack, .. } | Op::Step { ack, .. } => {
                let _ = ack.send(Err(err()));
            }
            Op::FinishRuns { ack, .. } => {
                let _ = ack.send(Err(err()));
            }
            Op::Sync { ack } | Op::State { ack, .. } => {
                let _ = ack.send(Err(err()));
            }
            Op::Prune { ack, .. } => {
                let _ = ack.send(Err(err()));
            }
        }
    }
}
