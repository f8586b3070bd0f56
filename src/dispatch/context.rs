//! [`WorkflowContext`]: what a workflow gets besides its message: the attempt number and
//! transactional access to the app's state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::journal::{Journal, JournalError, RecordKey, StateWrite};

/// The context of one workflow attempt.
///
/// Cheap to clone; clones share the attempt's pending state writes.
#[derive(Clone)]
pub struct WorkflowContext {
    key: Arc<RecordKey>,
    attempt: u32,
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
}

impl WorkflowContext {
    pub(crate) fn new(key: Arc<RecordKey>, attempt: u32, journal: Journal) -> Self {
        Self {
            key,
            attempt,
            journal,
            writes: Arc::default(),
        }
    }

    /// The record's idempotency key.
    pub fn key(&self) -> &RecordKey {
        &self.key
    }

    /// This attempt's number: 1 for the first run, more after a failure or a crash.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Runs `f` against the app's state (named keyspaces in the journal's database). Its writes
    /// are held back and committed atomically with the workflow's completion: they happen exactly
    /// once, or not at all when the workflow fails or the process dies first. Reads see the
    /// committed state plus this attempt's own earlier writes.
    ///
    /// With [`Ordering::Partition`](super::Ordering::Partition) or
    /// [`Ordering::Key`](super::Ordering::Key), records of one key never run concurrently, so a
    /// read-modify-write of per-key state is safe; with `Ordering::None`, two workflows may read
    /// the same value before either completes.
    ///
    /// An `Err` from `f` discards its writes.
    pub fn transaction<T, E>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<JournalError>,
    {
        let mut tx = Transaction {
            ctx: self,
            writes: Vec::new(),
            latest: HashMap::new(),
        };
        let out = f(&mut tx)?;
        let mut pending = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        pending.latest.extend(tx.latest);
        pending.writes.extend(tx.writes);
        Ok(out)
    }

    pub(crate) fn take_writes(&self) -> Vec<StateWrite> {
        std::mem::take(&mut self.writes.lock().unwrap_or_else(|p| p.into_inner()).writes)
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
}

impl Transaction<'_> {
    /// The value of `key` in `keyspace`: this attempt's latest write, else the committed value.
    pub fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Bytes>, JournalError> {
        let k = (keyspace.to_string(), key.to_vec());
        if let Some(v) = self.latest.get(&k) {
            return Ok(v.clone().map(Bytes::from));
        }
        let earlier = self
            .ctx
            .writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .latest
            .get(&k)
            .cloned();
        match earlier {
            Some(v) => Ok(v.map(Bytes::from)),
            None => self.ctx.journal.state_get(keyspace, key),
        }
    }

    /// Sets `key` in `keyspace` (keyspace names: 1–200 characters of `[A-Za-z0-9_-]`).
    pub fn put(&mut self, keyspace: &str, key: &[u8], value: &[u8]) -> Result<(), JournalError> {
        self.write(keyspace, key, Some(value.to_vec()))
    }

    /// Removes `key` from `keyspace`.
    pub fn delete(&mut self, keyspace: &str, key: &[u8]) -> Result<(), JournalError> {
        self.write(keyspace, key, None)
    }

    fn write(&mut self, keyspace: &str, key: &[u8], value: Option<Vec<u8>>) -> Result<(), JournalError> {
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
