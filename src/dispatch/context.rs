//! [`WorkflowContext`]: what a workflow gets besides its message: its attempt, checkpointed
//! steps, transactions on the app's state, durable sleeps and sends.
//!
//! Every step (including a transaction, a sleep and a send) has an index, its position in the
//! workflow's sequence of steps. Its output is journaled (durably) before the workflow goes on;
//! when the workflow runs again after a crash or a failure, a recorded step returns its recorded
//! output without running. A step whose name differs from the one recorded at its index is a
//! [`StepError::Nondeterministic`] error naming both.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::journal::{
    FinishResult, Journal, JournalError, RecordKey, StateRead, StateWrite, StepRecord,
};
use crate::producer::{Producer, ProducerRecord};

use super::message::{KeyCell, KeyRef};
use super::{RetryPolicy, WorkflowError};

/// Errors of the step API.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The workflow asked for a different step than the one recorded at this position: the
    /// workflow's code changed, or it is not deterministic. The recorded output is not used.
    #[error(
        "non-deterministic workflow {key}: step {index} is recorded as {recorded:?} but the workflow now runs {requested:?}"
    )]
    Nondeterministic {
        /// The workflow's key.
        key: String,
        /// The step's position.
        index: u32,
        /// The name in the journal.
        recorded: String,
        /// The name the workflow asked for.
        requested: String,
    },
    /// A step's output could not be serialized, or a recorded one deserialized as the type asked.
    #[error("step {name:?} of {key}: output {what}: {error}")]
    Output {
        /// The workflow's key.
        key: String,
        /// The step.
        name: String,
        /// `serialize` or `deserialize`.
        what: &'static str,
        /// serde's message.
        error: String,
    },
    /// `send` needs a producer and the runtime has none (it runs outside a consumer).
    #[error("ctx.send is not available here: {0}")]
    NoProducer(String),
}

/// Where `ctx.send` gets its producer (created on first use, shared).
pub(crate) type ProducerSource = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<Producer, String>> + Send>>
        + Send
        + Sync,
>;

/// The context of one workflow attempt.
///
/// Cheap to clone; clones share the step counter, so steps must be called in a deterministic
/// order (not concurrently from clones).
#[derive(Clone)]
pub struct WorkflowContext {
    key: KeyCell,
    attempt: u32,
    /// `None`: the state is the key's in its unit (see [`KeyCell::first_attempt`]).
    state: Option<Arc<AttemptState>>,
}

/// One attempt's state, shared by the context's clones: one allocation per attempt, or for a
/// unit's first attempts a slot of the unit's (one allocation for all of them).
pub(crate) struct AttemptState {
    steps: Mutex<Steps>,
    conflicts: AtomicU32,
    /// The turn this context holds (see [`Turn`]): [`TURN_NONE`] until it asks, [`TURN_QUEUED`]
    /// or [`TURN_DURABLE`] after. In an ordered unit (the key's [`KeyCell::turn`]) a transaction
    /// needs the completions of the records before this one queued to the journal before its own
    /// commit (the journal's writer keeps order, so it cannot become durable before them); a
    /// step, send or sleep, whose effect is outside the journal, needs them durable. Set to
    /// [`TURN_DURABLE`] from the start when no turn is to be asked for.
    turn_held: std::sync::atomic::AtomicU8,
}

impl AttemptState {
    /// A first attempt's state (no recorded steps).
    pub(crate) const fn fresh(takes_turn: bool) -> Self {
        Self::new(Vec::new(), takes_turn)
    }

    const fn new(recorded: Vec<Option<StepRecord>>, takes_turn: bool) -> Self {
        Self {
            steps: Mutex::new(Steps { recorded, next: 0 }),
            conflicts: AtomicU32::new(0),
            turn_held: std::sync::atomic::AtomicU8::new(first_turn(takes_turn)),
        }
    }
}

/// A context's conflict count, readable without the context: its own attempt state, or (`None`)
/// the unit's slot of the record's key.
pub(crate) struct ConflictSource(Option<Arc<AttemptState>>);

impl ConflictSource {
    /// The count of the attempt of `key`'s record.
    pub(crate) fn count(&self, key: KeyRef<'_>) -> u32 {
        self.0
            .as_deref()
            .or_else(|| key.first_attempt_made())
            .map_or(0, |s| s.conflicts.load(AtomicOrdering::Relaxed))
    }
}

/// The turn an attempt holds when it begins: none when it is to ask for one, else as good as
/// durable.
const fn first_turn(takes_turn: bool) -> u8 {
    if takes_turn { TURN_NONE } else { TURN_DURABLE }
}

const TURN_NONE: u8 = 0;
const TURN_QUEUED: u8 = 1;
const TURN_DURABLE: u8 = 2;

/// A request for one's turn, and whether it needs the records before durable (`true`) or only
/// their completions queued to the journal (`false`): answered (or dropped) once they are.
pub(crate) type Turn = tokio::sync::mpsc::UnboundedSender<(tokio::sync::oneshot::Sender<()>, bool)>;

/// What every context of one runtime shares: the journal, the producer for `ctx.send`, and the
/// lane where transactions re-run after a conflict take turns (so that on a hot key re-runs
/// never conflict with each other).
pub(crate) struct ContextEnv {
    pub(crate) journal: Journal,
    pub(crate) producer: Option<ProducerSource>,
    pub(crate) lane: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for WorkflowContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowContext")
            .field("key", &self.key.get().to_string())
            .field("attempt", &self.attempt)
            .finish()
    }
}

/// The recorded steps (by index) and the next index.
struct Steps {
    recorded: Vec<Option<StepRecord>>,
    next: u32,
}

/// A sent record, as `ctx.send` returns it (and records it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sent {
    /// The topic.
    pub topic: String,
    /// The partition it went to.
    pub partition: i32,
    /// Its offset (-1 when the broker did not say).
    pub offset: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl WorkflowContext {
    /// A context for `key`'s workflow, with its recorded steps loaded from the journal.
    ///
    /// `fresh` says the workflow never ran before (no started entry, first attempt here): then it
    /// has no recorded steps and the journal is not read.
    pub(crate) fn load(
        key: Arc<RecordKey>,
        attempt: u32,
        journal: Journal,
        producer: Option<ProducerSource>,
        lane: Arc<tokio::sync::Mutex<()>>,
        fresh: bool,
    ) -> Result<Self, JournalError> {
        let env = Arc::new(ContextEnv {
            journal,
            producer,
            lane,
        });
        let key = KeyCell::from_key(Arc::unwrap_or_clone(key), &env);
        Self::load_in(key, attempt, fresh, false)
    }

    /// As [`load`](Self::load), with the journal, producer and lane of the key's environment
    /// (shared by every context of a task: one allocation per context). `takes_turn`: the first
    /// step waits for the record's turn (see `AttemptState::turn_held`).
    pub(crate) fn load_in(
        key: KeyCell,
        attempt: u32,
        fresh: bool,
        takes_turn: bool,
    ) -> Result<Self, JournalError> {
        let mut recorded = Vec::new();
        let steps = if fresh {
            Vec::new()
        } else {
            key.env().journal.steps(key.get())?
        };
        for (index, step) in steps {
            if index > MAX_STEPS {
                return Err(JournalError::Corrupt {
                    what: format!("steps of {key}"),
                    why: format!("step index {index} is beyond the limit of {MAX_STEPS}"),
                });
            }
            let i = index as usize;
            if i >= recorded.len() {
                recorded.resize(i + 1, None);
            }
            recorded[i] = Some(step);
        }
        Ok(Self {
            key,
            attempt,
            state: Some(Arc::new(AttemptState::new(recorded, takes_turn))),
        })
    }

    /// The first attempt of a record of a unit (never run before: no recorded steps), its
    /// state in the unit's slot for it ([`KeyCell::first_attempt`]; one per record, so one
    /// context per record may be made this way). `takes_turn` as for
    /// [`load_in`](Self::load_in).
    pub(crate) fn first_in_unit(key: KeyCell, takes_turn: bool) -> Self {
        let state = if key.as_ref().in_unit() {
            // The unit's states are made with its records' value when first needed (most
            // workflows never need one); only a context that differs makes and sets its own.
            if key.as_ref().unit_takes_turn() != takes_turn
                && let Some(slot) = key.first_attempt()
            {
                slot.turn_held
                    .store(first_turn(takes_turn), AtomicOrdering::SeqCst);
            }
            None
        } else {
            Some(Arc::new(AttemptState::fresh(takes_turn)))
        };
        Self {
            key,
            attempt: 1,
            state,
        }
    }

    /// Where [`conflicts`](Self::conflicts) is read once the context has been handed to the
    /// workflow.
    pub(crate) fn conflict_source(&self) -> ConflictSource {
        ConflictSource(self.state.clone())
    }

    fn state(&self) -> &AttemptState {
        match &self.state {
            Some(state) => state,
            // Made so only when the key has the slot.
            None => self
                .key
                .first_attempt()
                .expect("a unit context's key has its first attempt's state"),
        }
    }

    /// A context for `key`'s workflow outside the runtime (tools, tests, migrations): steps,
    /// transactions and sleeps work against `journal` as they do inside a workflow; `send` does
    /// not (there is no producer).
    pub fn detached(journal: Journal, key: RecordKey, attempt: u32) -> Result<Self, JournalError> {
        Self::load(Arc::new(key), attempt, journal, None, Arc::default(), false)
    }

    /// The journal, producer and lane this context uses.
    pub(crate) fn env(&self) -> &Arc<ContextEnv> {
        self.key.env()
    }

    /// The record's idempotency key.
    pub fn key(&self) -> &RecordKey {
        self.key.get()
    }

    /// This run's number for the record: 1 for the first run, more after a failure or a crash.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How many times a transaction of this run was re-run because a value it read changed
    /// before it committed.
    pub fn conflicts(&self) -> u32 {
        self.state().conflicts.load(AtomicOrdering::Relaxed)
    }

    /// Takes the next step index; returns the recorded step there, if any. When there is none
    /// (the step is to run now), waits for this record's turn first (see [`AttemptState::turn_held`]):
    /// `durable` for an effect outside the journal, else only the earlier completions queued. So
    /// in `Ordering::Partition` nothing of record n+1 becomes durable (or runs an effect outside
    /// the journal) before record n's completion is durable.
    async fn begin_step(
        &self,
        name: &str,
        durable: bool,
    ) -> Result<(u32, Option<StepRecord>), WorkflowError> {
        let (index, recorded) = self.next_step(name)?;
        let want = if durable { TURN_DURABLE } else { TURN_QUEUED };
        if recorded.is_none()
            && let Some(turn) = self.key.turn()
            && self
                .state()
                .turn_held
                .fetch_max(want, AtomicOrdering::SeqCst)
                < want
        {
            let (tx, rx) = tokio::sync::oneshot::channel();
            // A dropped request or answer means the unit stopped waiting: the records before
            // did not finish durably (the runtime or the assignment stops). The step must not
            // run ahead of them.
            if turn.send((tx, durable)).is_err() || rx.await.is_err() {
                return Err("the records before this one did not finish durably".into());
            }
        }
        Ok((index, recorded))
    }

    /// Takes the next step index; returns the recorded step there, if any.
    fn next_step(&self, name: &str) -> Result<(u32, Option<StepRecord>), WorkflowError> {
        let mut s = self.state().steps.lock().unwrap_or_else(|p| p.into_inner());
        let index = s.next;
        if index >= MAX_STEPS {
            return Err(format!("workflow {} has more than {MAX_STEPS} steps", self.key).into());
        }
        s.next += 1;
        let recorded = s.recorded.get(index as usize).cloned().flatten();
        if let Some(r) = &recorded
            && r.name != name
        {
            return Err(StepError::Nondeterministic {
                key: self.key.to_string(),
                index,
                recorded: r.name.clone(),
                requested: name.to_string(),
            }
            .into());
        }
        Ok((index, recorded))
    }

    fn decode<T: DeserializeOwned>(&self, step: &StepRecord) -> Result<T, WorkflowError> {
        serde_json::from_slice(&step.output).map_err(|e| {
            StepError::Output {
                key: self.key.to_string(),
                name: step.name.clone(),
                what: "deserialize",
                error: e.to_string(),
            }
            .into()
        })
    }

    fn encode<T: Serialize>(&self, name: &str, value: &T) -> Result<StepRecord, WorkflowError> {
        let output = serde_json::to_vec(value).map_err(|e| StepError::Output {
            key: self.key.to_string(),
            name: name.to_string(),
            what: "serialize",
            error: e.to_string(),
        })?;
        Ok(StepRecord {
            name: name.to_string(),
            output,
        })
    }

    /// Records step `index`; when another run recorded it first, returns that output instead.
    async fn record<T: Serialize + DeserializeOwned>(
        &self,
        index: u32,
        name: &str,
        value: T,
        reads: Vec<StateRead>,
        writes: Vec<StateWrite>,
    ) -> Result<Option<T>, WorkflowError> {
        let step = self.encode(name, &value)?;
        match self
            .key
            .env()
            .journal
            .record_step(self.key.get(), index, &step, reads, writes)
            .await?
        {
            FinishResult::Written => Ok(Some(value)),
            FinishResult::Conflict => Ok(None),
            FinishResult::AlreadyFinished => {
                let recorded = self
                    .key
                    .env()
                    .journal
                    .steps(self.key.get())?
                    .into_iter()
                    .find(|(i, _)| *i == index)
                    .map(|(_, s)| s)
                    .ok_or_else(|| JournalError::Corrupt {
                        what: format!("step {index} of {}", self.key),
                        why: "reported as recorded but not found".into(),
                    })?;
                Ok(Some(self.decode(&recorded)?))
            }
        }
    }

    /// As [`record`](Self::record) for a step that read no state, so it cannot conflict.
    async fn record_unread<T: Serialize + DeserializeOwned>(
        &self,
        index: u32,
        name: &str,
        value: T,
        writes: Vec<StateWrite>,
    ) -> Result<T, WorkflowError> {
        self.record(index, name, value, Vec::new(), writes)
            .await?
            .ok_or_else(|| "internal error: a step without reads reported a conflict".into())
    }

    /// Runs `f` as a checkpointed step named `name`: its output is journaled before this
    /// returns, and when the workflow runs again (after a crash or a failed attempt) the
    /// recorded output is returned without running `f`. `f` itself is tried once; see
    /// [`step_with`](Self::step_with) for retries.
    ///
    /// ```no_run
    /// # use kafka_once::dispatch::{WorkflowContext, WorkflowError};
    /// # async fn charge(_: &[u8]) -> Result<String, WorkflowError> { Ok(String::new()) }
    /// # async fn demo(ctx: WorkflowContext, payload: Vec<u8>) -> Result<(), WorkflowError> {
    /// let receipt: String = ctx.step("charge", || charge(&payload)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn step<T, F, Fut, E>(&self, name: &str, f: F) -> Result<T, WorkflowError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<WorkflowError>,
    {
        let once = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        self.step_with(name, once, f).await
    }

    /// As [`step`](Self::step), retrying `f` per `policy` (attempts with exponential backoff)
    /// before the step fails.
    pub async fn step_with<T, F, Fut, E>(
        &self,
        name: &str,
        policy: RetryPolicy,
        mut f: F,
    ) -> Result<T, WorkflowError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<WorkflowError>,
    {
        let (index, recorded) = self.begin_step(name, true).await?;
        if let Some(r) = recorded {
            return self.decode(&r);
        }
        let mut backoff = policy.initial_backoff;
        let mut tries = 0;
        let value = loop {
            tries += 1;
            match f().await {
                Ok(v) => break v,
                Err(e) if tries >= policy.max_attempts.max(1) => return Err(e.into()),
                Err(e) => {
                    let e: WorkflowError = e.into();
                    tracing::debug!(step = name, tries, error = %e, "step failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(policy.max_backoff);
                }
            }
        };
        self.record_unread(index, name, value, Vec::new()).await
    }

    /// Runs `f` against the app's state (named keyspaces in the journal's database) as a step:
    /// its writes commit atomically with the step's checkpoint, so they happen exactly once,
    /// and a re-run of the workflow gets the recorded result without running `f` again.
    ///
    /// Reads see the committed state plus the transaction's own writes. Isolation is optimistic:
    /// the values read are checked again when the transaction commits, and if another
    /// workflow's transaction changed one meanwhile, `f` runs again on fresh state (so `f` may
    /// run more than once, but only one run's writes commit). An `Err` from `f` discards its
    /// writes and fails the step.
    ///
    /// ```no_run
    /// # use kafka_once::dispatch::{WorkflowContext, WorkflowError};
    /// # async fn demo(ctx: WorkflowContext) -> Result<(), WorkflowError> {
    /// let total: u64 = ctx
    ///     .transaction(|tx| {
    ///         let n = tx
    ///             .get("counters", b"orders")?
    ///             .map_or(0, |v| u64::from_be_bytes(v[..8].try_into().unwrap_or([0; 8])));
    ///         tx.put("counters", b"orders", &(n + 1).to_be_bytes())?;
    ///         Ok::<u64, WorkflowError>(n + 1)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn transaction<T, E, F>(&self, mut f: F) -> Result<T, WorkflowError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut Transaction<'_>) -> Result<T, E>,
        E: Into<WorkflowError>,
    {
        const NAME: &str = "transaction";
        // Its effect is in the journal only: the earlier completions queued before it suffice.
        let (index, recorded) = self.begin_step(NAME, false).await?;
        if let Some(r) = recorded {
            return self.decode(&r);
        }
        let mut lane = None;
        loop {
            let mut tx = Transaction {
                journal: &self.key.env().journal,
                writes: Vec::new(),
                latest: Default::default(),
                reads: Default::default(),
            };
            let value = f(&mut tx).map_err(Into::into)?;
            let reads = tx.reads.into_values().collect();
            match self.record(index, NAME, value, reads, tx.writes).await? {
                Some(v) => return Ok(v),
                None => {
                    self.state().conflicts.fetch_add(1, AtomicOrdering::Relaxed);
                    if lane.is_none() {
                        lane = Some(self.key.env().lane.lock().await);
                    }
                }
            }
        }
    }

    /// Sleeps durably for `duration`: the wake-up time is journaled as a step, so after a
    /// restart the workflow waits only for what is left of it.
    pub async fn sleep(&self, duration: Duration) -> Result<(), WorkflowError> {
        const NAME: &str = "sleep";
        let (index, recorded) = self.begin_step(NAME, true).await?;
        let wake_ms: i64 = match recorded {
            Some(r) => self.decode(&r)?,
            None => {
                let wake = now_ms().saturating_add(duration.as_millis() as i64);
                self.record_unread(index, NAME, wake, Vec::new()).await?
            }
        };
        let left = wake_ms.saturating_sub(now_ms());
        if left > 0 {
            tokio::time::sleep(Duration::from_millis(left as u64)).await;
        }
        Ok(())
    }

    /// Produces `record` through the runtime's idempotent producer as a step, exactly once:
    /// once the step is recorded a re-run does not send again, and a re-run after a crash
    /// between the broker's acknowledgement and the step's checkpoint finds the record it sent
    /// instead of sending a second copy.
    ///
    /// How: before sending, the partition is fixed (the record's own, else the Java client's
    /// key hash, else a hash of the step's id) and an intent (partition, time) is journaled; the
    /// record carries the header `kafka-once.send-id` = `<workflow key>#<step index>`. A re-run
    /// that finds an intent but no recorded step reads that partition from the intent's time
    /// (ListOffsets by timestamp, with a minute of margin for clock skew) to its end, looking
    /// for the header, and records what it finds; only when nothing is there does it send.
    pub async fn send(&self, mut record: ProducerRecord) -> Result<Sent, WorkflowError> {
        const INTENTS: &str = "kafka-once-send-intents";
        let name = format!("send {}", record.topic);
        let (index, recorded) = self.begin_step(&name, true).await?;
        if let Some(r) = recorded {
            return self.decode(&r);
        }
        let source = self
            .key
            .env()
            .producer
            .clone()
            .ok_or_else(|| StepError::NoProducer("no producer configured".into()))?;
        let producer: Producer = source().await.map_err(StepError::NoProducer)?;
        let token = format!("{}#{index}", self.key);
        let intent_key = Journal::step_key(self.key.get(), index);
        let intents = self.key.env().journal.state_keyspace(INTENTS)?;
        let forget = || StateWrite {
            keyspace: intents.clone(),
            key: intent_key.clone(),
            value: None,
        };
        match self.key.env().journal.state_get(INTENTS, &intent_key)? {
            Some(intent) => {
                let intent: SendIntent =
                    serde_json::from_slice(&intent).map_err(|e| StepError::Output {
                        key: self.key.to_string(),
                        name: name.clone(),
                        what: "deserialize intent",
                        error: e.to_string(),
                    })?;
                if let Some(sent) = find_sent(
                    &producer,
                    &record.topic,
                    intent.partition,
                    intent.since_ms,
                    &token,
                )
                .await?
                {
                    tracing::info!(%token, offset = sent.offset, "found the record a crashed run sent");
                    return self.record_unread(index, &name, sent, vec![forget()]).await;
                }
                record.partition = Some(intent.partition);
            }
            None => {
                let partition = match record.partition {
                    Some(p) => p,
                    None => {
                        let count = producer
                            .cluster()
                            .topic(&record.topic)
                            .await?
                            .filter(|t| !t.partitions.is_empty())
                            .map(|t| t.partitions.len() as i32)
                            .ok_or_else(|| format!("unknown topic {:?}", record.topic))?;
                        let hashed = record.key.as_deref().unwrap_or(token.as_bytes());
                        crate::producer::partitioner::partition_for_key(hashed, count)
                    }
                };
                record.partition = Some(partition);
                let intent = SendIntent {
                    partition,
                    since_ms: now_ms() - 60_000,
                };
                self.key
                    .env()
                    .journal
                    .write_state(vec![StateWrite {
                        keyspace: intents.clone(),
                        key: intent_key.clone(),
                        value: Some(serde_json::to_vec(&intent).map_err(|e| e.to_string())?),
                    }])
                    .await?;
            }
        }
        let record = record.header(SEND_ID, token);
        let meta = producer.send(record).await?.await?;
        fail_point("after-send");
        let sent = Sent {
            topic: meta.topic.to_string(),
            partition: meta.partition,
            offset: meta.offset,
        };
        self.record_unread(index, &name, sent, vec![forget()]).await
    }

    /// Reads committed state, outside any transaction.
    pub fn state_get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Bytes>, JournalError> {
        self.key.env().journal.state_get(keyspace, key)
    }
}

/// Fault injection for crash tests: with `KAFKA_ONCE_FAILPOINTS=name:/path/marker`, the process
/// SIGKILLs itself the first time it passes the named point (the marker file, created then,
/// makes it once). Unset, this does nothing.
fn fail_point(name: &str) {
    let Some(spec) = std::env::var_os("KAFKA_ONCE_FAILPOINTS") else {
        return;
    };
    let spec = spec.to_string_lossy();
    for item in spec.split(',') {
        if let Some((point, marker)) = item.split_once(':')
            && point == name
            && std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(marker)
                .is_ok()
        {
            tracing::warn!(point, "fail point reached: SIGKILL");
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &std::process::id().to_string()])
                .status();
        }
    }
}

/// The most steps one workflow may record.
const MAX_STEPS: u32 = 1 << 20;

/// The header that identifies a record sent by `ctx.send`.
pub const SEND_ID: &str = "kafka-once.send-id";

/// What `ctx.send` journals before sending.
#[derive(serde::Serialize, serde::Deserialize)]
struct SendIntent {
    partition: i32,
    since_ms: i64,
}

/// Looks for the record with `kafka-once.send-id` = `token` in `topic`/`partition`, from the
/// first record at or after `since_ms` to the partition's current end.
async fn find_sent(
    producer: &Producer,
    topic: &str,
    partition: i32,
    since_ms: i64,
    token: &str,
) -> Result<Option<Sent>, WorkflowError> {
    let cluster = producer.cluster();
    let Some(start) = cluster
        .offset_for_timestamp(topic, partition, since_ms)
        .await?
    else {
        return Ok(None);
    };
    let end = cluster
        .offset_for_timestamp(topic, partition, -1)
        .await?
        .unwrap_or(start);
    if end <= start {
        return Ok(None);
    }
    let consumer = crate::consumer::Consumer::builder(cluster.config().clone())
        .cluster(cluster.clone())
        .build()
        .await?;
    let tp = crate::consumer::TopicPartition::new(topic, partition);
    consumer.assign_partitions(&[(tp, Some(start))]).await?;
    let mut found = None;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // The end may be a transaction marker that no record reaches: stop at the position.
        if consumer
            .position(topic, partition)
            .is_some_and(|p| p >= end)
        {
            break;
        }
        let r = match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            Ok(r) => r?,
            Err(_) if tokio::time::Instant::now() < give_up => continue,
            Err(_) => {
                consumer.close().await;
                return Err(format!("timed out reading {topic}/{partition} for {token}").into());
            }
        };
        let hit = r
            .headers
            .iter()
            .any(|h| h.key == SEND_ID && h.value.as_deref() == Some(token.as_bytes()));
        if hit {
            found = Some(Sent {
                topic: topic.to_string(),
                partition,
                offset: r.offset,
            });
            break;
        }
        if r.offset + 1 >= end {
            break;
        }
    }
    consumer.close().await;
    Ok(found)
}

/// Reads and writes inside [`WorkflowContext::transaction`].
pub struct Transaction<'a> {
    journal: &'a Journal,
    writes: Vec<StateWrite>,
    latest: std::collections::HashMap<(String, Vec<u8>), Option<Vec<u8>>>,
    reads: std::collections::HashMap<(String, Vec<u8>), StateRead>,
}

impl Transaction<'_> {
    /// The value of `key` in `keyspace`: this transaction's latest write, else the committed
    /// value (which is checked again at commit).
    pub fn get(&mut self, keyspace: &str, key: &[u8]) -> Result<Option<Bytes>, JournalError> {
        crate::journal::check_state_key(keyspace, key)?;
        let k = (keyspace.to_string(), key.to_vec());
        if let Some(v) = self.latest.get(&k) {
            return Ok(v.clone().map(Bytes::from));
        }
        if let Some(r) = self.reads.get(&k) {
            return Ok(r.seen.clone().map(Bytes::from));
        }
        let ks = self.journal.state_keyspace(keyspace)?;
        let value = self.journal.state_get(keyspace, key)?;
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

    /// Sets `key` in `keyspace` (keyspace names: 1–200 characters of `[A-Za-z0-9_-]`; keys: 1 to
    /// 65,535 bytes, else [`JournalError::InvalidKey`]).
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
        crate::journal::check_state_key(keyspace, key)?;
        let ks = self.journal.state_keyspace(keyspace)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(offset: i64) -> Arc<RecordKey> {
        Arc::new(RecordKey {
            group: "g".into(),
            topic: "t".into(),
            topic_id: uuid::Uuid::from_u128(9),
            partition: 0,
            offset,
        })
    }

    fn ctx(journal: &Journal, offset: i64, attempt: u32) -> WorkflowContext {
        WorkflowContext::load(
            key(offset),
            attempt,
            journal.clone(),
            None,
            Arc::default(),
            false,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_recorded_step_returns_its_output_without_running() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let runs = AtomicU32::new(0);
        let run = || async {
            runs.fetch_add(1, AtomicOrdering::SeqCst);
            Ok::<_, WorkflowError>(vec![1u32, 2, 3])
        };
        let first = ctx(&journal, 1, 1);
        assert_eq!(first.step("fetch", run).await.unwrap(), vec![1, 2, 3]);
        let n: u64 = first
            .step("count", || async { Ok::<_, WorkflowError>(7u64) })
            .await
            .unwrap();
        assert_eq!(n, 7);
        // A re-run: both steps come from the journal; a third one runs.
        let again = ctx(&journal, 1, 2);
        assert_eq!(again.step("fetch", run).await.unwrap(), vec![1, 2, 3]);
        let n: u64 = again
            .step("count", || async { Ok::<_, WorkflowError>(99u64) })
            .await
            .unwrap();
        assert_eq!(n, 7);
        assert_eq!(runs.load(AtomicOrdering::SeqCst), 1);
        // Another record's steps are its own.
        let other = ctx(&journal, 2, 1);
        let v: Vec<u32> = other
            .step("fetch", || async { Ok::<_, WorkflowError>(vec![9]) })
            .await
            .unwrap();
        assert_eq!(v, vec![9]);
    }

    #[tokio::test]
    async fn a_changed_workflow_is_a_determinism_error_naming_both_steps() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let v1 = ctx(&journal, 1, 1);
        let _: u8 = v1
            .step("reserve-stock", || async { Ok::<_, WorkflowError>(1u8) })
            .await
            .unwrap();
        let v2 = ctx(&journal, 1, 2);
        let err = v2
            .step("charge-card", || async { Ok::<_, WorkflowError>(2u8) })
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("reserve-stock")
                && text.contains("charge-card")
                && text.contains("step 0"),
            "{text}"
        );
        // The wrong type for a recorded output is an error too, not a silent default.
        let v3 = ctx(&journal, 1, 3);
        let err = v3
            .step("reserve-stock", || async {
                Ok::<_, WorkflowError>(String::new())
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("deserialize"), "{err}");
    }

    #[tokio::test]
    async fn a_failed_step_is_not_recorded_and_step_with_retries() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let c = ctx(&journal, 1, 1);
        let tries = AtomicU32::new(0);
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        };
        let out: u32 = c
            .step_with("flaky", policy, || async {
                let n = tries.fetch_add(1, AtomicOrdering::SeqCst) + 1;
                if n < 3 {
                    Err::<u32, WorkflowError>("not yet".into())
                } else {
                    Ok(n)
                }
            })
            .await
            .unwrap();
        assert_eq!(out, 3);
        let failing = ctx(&journal, 2, 1);
        assert!(
            failing
                .step("broken", || async {
                    Err::<u32, WorkflowError>("no".into())
                })
                .await
                .is_err()
        );
        assert!(journal.steps(&key(2)).unwrap().is_empty());
    }

    #[tokio::test]
    async fn empty_and_oversized_state_keys_are_errors_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let c = ctx(&journal, 1, 1);
        let huge = vec![b'k'; 65_536];
        for bad in [&b""[..], &huge[..]] {
            let err = c
                .transaction(|tx| tx.put("tally", bad, b"1"))
                .await
                .expect_err("an invalid key");
            assert!(err.to_string().contains("1 to 65535 bytes"), "{err}");
            assert!(
                c.transaction(|tx| tx.get("tally", bad).map(|v| v.map(|b| b.to_vec())))
                    .await
                    .is_err()
            );
            assert!(c.transaction(|tx| tx.delete("tally", bad)).await.is_err());
            assert!(journal.state_get("tally", bad).is_err());
        }
        // Nothing reached the journal's writer, which still takes writes.
        c.transaction(|tx| tx.put("tally", &huge[..65_535], b"1"))
            .await
            .unwrap();
        assert!(journal.poisoned().is_none());
        assert_eq!(
            journal
                .state_get("tally", &huge[..65_535])
                .unwrap()
                .as_deref(),
            Some(&b"1"[..])
        );
    }

    #[tokio::test]
    async fn concurrent_transactions_on_one_key_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let lane: Arc<tokio::sync::Mutex<()>> = Arc::default();
        let mut tasks = Vec::new();
        for offset in 0..200 {
            let c =
                WorkflowContext::load(key(offset), 1, journal.clone(), None, lane.clone(), false)
                    .unwrap();
            tasks.push(tokio::spawn(async move {
                c.transaction(|tx| {
                    let n = tx
                        .get("counters", b"total")?
                        .map_or(0, |v| u64::from_be_bytes(v[..8].try_into().unwrap()));
                    tx.put("counters", b"total", &(n + 1).to_be_bytes())
                })
                .await
                .unwrap();
                c.conflicts()
            }));
        }
        let mut conflicts = 0;
        for t in tasks {
            conflicts += t.await.unwrap();
        }
        let total = journal.state_get("counters", b"total").unwrap().unwrap();
        assert_eq!(u64::from_be_bytes(total[..8].try_into().unwrap()), 200);
        eprintln!("{conflicts} conflicts for 200 concurrent increments");
        // A re-run of one of them returns the recorded step and does not increment again.
        let again = WorkflowContext::load(key(5), 2, journal.clone(), None, lane, false).unwrap();
        again
            .transaction(|tx| tx.put("counters", b"total", &0u64.to_be_bytes()))
            .await
            .unwrap();
        let total = journal.state_get("counters", b"total").unwrap().unwrap();
        assert_eq!(u64::from_be_bytes(total[..8].try_into().unwrap()), 200);
    }

    #[tokio::test]
    async fn a_durable_sleep_waits_only_for_what_is_left_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let first = ctx(&journal, 1, 1);
        // The first run records the wake-up time, then "crashes" (is dropped) mid-sleep.
        let sleeping = first.sleep(Duration::from_millis(1500));
        let _ = tokio::time::timeout(Duration::from_millis(1000), sleeping).await;
        let started = std::time::Instant::now();
        ctx(&journal, 1, 2)
            .sleep(Duration::from_millis(1500))
            .await
            .unwrap();
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(1000),
            "waited {waited:?} after restart"
        );
    }
}
