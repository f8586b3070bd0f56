//! [`WorkflowContext`]: what a workflow gets besides its message: the attempt number and
//! transactional access to the app's state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::journal::{Journal, JournalError, RecordKey, StateRead, StateWrite};

/// The context of one workflow attempt.
///
/// Cheap to clone; clones share the attempt's pending state writes.
#[derive(Clone)]
pub struct WorkflowContext {
    key: Arc<RecordKey>,
    attempt: u32,
    conflicts: u32,
    journal: Journal,
    writes: Arc<Mutex<Pending>>,
}

impl std::fmt::Debug for WorkflowContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowContext")
            .field("key", &self.key.to_string())
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// State writes of one attempt, in order, with the last value per (keyspace, key) for reads.
#[derive(Default)]
struct Pending {
    writes: Vec<StateWrite>,
    latest: HashMap<(String, Vec<u8>), Option<Vec<u8>>>,
    /// Committed values read, checked again at completion.
    reads: HashMap<(String, Vec<u8>), StateRead>,
}

impl WorkflowContext {
    pub(crate) fn new(key: Arc<RecordKey>, attempt: u32, conflicts: u32, journal: Journal) -> Self {
        Self {
            key,
            attempt,
            conflicts,
            journal,
            writes: Arc::default(),
        }
    }

    /// The record's idempotency key.
    pub fn key(&self) -> &RecordKey {
        &self.key
    }

    /// This run's number for the record: 1 for the first run, more after a failure, a crash or
    /// a transaction conflict.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How many runs of this record in this process ended in a transaction conflict (see
    /// [`transaction`](Self::transaction)): 0 unless this run is a re-run after one.
    pub fn conflicts(&self) -> u32 {
        self.conflicts
    }

    /// Runs `f` against the app's state (named keyspaces in the journal's database). Its writes
    /// are held back and committed atomically with the workflow's completion: they happen exactly
    /// once, or not at all when the workflow fails or the process dies first. Reads see the
    /// committed state plus this attempt's own earlier writes.
    ///
    /// Isolation is optimistic: values read from committed state are checked again at
    /// completion, and a workflow whose reads changed meanwhile (another workflow completed a
    /// write to them) runs again instead of completing. Read-modify-write is therefore safe in
    /// every [`Ordering`](super::Ordering); the ordered modes just make such re-runs rare.
    ///
    /// An `Err` from `f` discards its writes.
    pub fn transaction<T, E>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<JournalError>,
    {
        let mut tx = Transaction {
            ctx: self,
            writes: Vec::new(),
            latest: HashMap::new(),
            reads: HashMap::new(),
        };
        let out = f(&mut tx)?;
        let mut pending = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        pending.latest.extend(tx.latest);
        pending.writes.extend(tx.writes);
        for (k, r) in tx.reads {
            pending.reads.entry(k).or_insert(r);
        }
        Ok(out)
    }

    /// The attempt's committed reads and its writes, for the completion.
    pub(crate) fn take_state(&self) -> (Vec<StateRead>, Vec<StateWrite>) {
        let mut p = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let reads = std::mem::take(&mut p.reads).into_values().collect();
        (reads, std::mem::take(&mut p.writes))
    }

    /// Reads committed state, from outside any transaction.
    pub fn state_get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Bytes>, JournalError> {
        self.journal.state_get(keyspace, key)
    }
}

/// Reads and writes inside [`WorkflowContext::transaction`].
pub struct Transaction<'a> {
    ctx: &'a WorkflowContext,
    writes: Vec<StateWrite>,
    latest: HashMap<(String, Vec<u8>), Option<Vec<u8>>>,
    reads: HashMap<(String, Vec<u8>), StateRead>,
}

impl Transaction<'_> {
    /// The value of `key` in `keyspace`: this attempt's latest write, else the committed value.
    ///
    /// A committed value read here is checked again when the workflow completes: if another
    /// workflow's completion changed it meanwhile, this completion is refused and the workflow
    /// runs again (optimistic concurrency), so no update is ever lost.
    pub fn get(&mut self, keyspace: &str, key: &[u8]) -> Result<Option<Bytes>, JournalError> {
        let k = (keyspace.to_string(), key.to_vec());
        if let Some(v) = self.latest.get(&k) {
            return Ok(v.clone().map(Bytes::from));
        }
        let earlier = {
            let p = self.ctx.writes.lock().unwrap_or_else(|p| p.into_inner());
            p.latest
                .get(&k)
                .cloned()
                .or_else(|| p.reads.get(&k).map(|r| r.seen.clone()))
        };
        if let Some(v) = earlier {
            return Ok(v.map(Bytes::from));
        }
        if let Some(r) = self.reads.get(&k) {
            return Ok(r.seen.clone().map(Bytes::from));
        }
        let ks = self.ctx.journal.state_keyspace(keyspace)?;
        let value = self.ctx.journal.state_get(keyspace, key)?;
        self.reads.insert(
            k,
            StateRead {
                keyspace: ks,
                key: key.to_vec(),
                seen: value.as_ref().map(|v| v.to_vec()),
            },
        );
        Ok(value)
    }

    /// Sets `key` in `keyspace` (keyspace names: 1–200 characters of `[A-Za-z0-9_-]`).
    pub fn put(&mut self, keyspace: &str, key: &[u8], value: &[u8]) -> Result<(), JournalError> {
        self.write(keyspace, key, Some(value.to_vec()))
    }

    /// Removes `key` from `keyspace`.
    pub fn delete(&mut self, keyspace: &str, key: &[u8]) -> Result<(), JournalError> {
        self.write(keyspace, key, None)
    }

    fn write(
        &mut self,
        keyspace: &str,
        key: &[u8],
        value: Option<Vec<u8>>,
    ) -> Result<(), JournalError> {
        let ks = self.ctx.journal.state_keyspace(keyspace)?;
        self.latest
            .insert((keyspace.to_string(), key.to_vec()), value.clone());
        self.writes.push(StateWrite {
            keyspace: ks,
            key: key.to_vec(),
            value,
        });
        Ok(())
    }
}
