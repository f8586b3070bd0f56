//! Workflows started directly, not by a Kafka record: [`KafkaOnce::start_workflow`](super::KafkaOnce::start_workflow) with an id,
//! idempotent per id, with [`WorkflowHandle`]s and recovery from the journal.
//!
//! A direct workflow's key is [`RecordKey::direct`]`(id)`; its steps are journaled like a Kafka
//! workflow's, and its completion is the same at-most-once journal entry. Its status, input and
//! result live in the state keyspace `kafka-once-workflows` (id → JSON [`WorkflowRecord`]).

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::journal::{Entry, FinishResult, Journal, JournalError, RecordKey, StateWrite};

use super::context::ProducerSource;
use super::{DispatchError, KafkaMessage, RetryPolicy, WorkflowContext, WorkflowError};
use crate::consumer::ConsumerRecord;
use crate::protocol::records::{Header, TimestampType};

/// The state keyspace of direct workflows.
pub const WORKFLOWS: &str = "kafka-once-workflows";

/// Where a workflow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkflowStatus {
    /// Started, not finished (running, waiting for a retry, or interrupted by a crash).
    Pending,
    /// Finished with a result.
    Completed,
    /// Every attempt failed.
    Failed,
    /// Dead-lettered (Kafka workflows).
    DeadLettered,
    /// Cancelled before it finished.
    Cancelled,
}

/// What the journal keeps of a direct workflow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkflowRecord {
    /// Record format version (1).
    pub version: u8,
    /// The status.
    pub status: WorkflowStatus,
    /// The input, JSON.
    pub input: serde_json::Value,
    /// The result, JSON, once completed.
    pub output: Option<serde_json::Value>,
    /// The last error, once failed.
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The registered workflow that runs it: a name given to
    /// [`KafkaOnce::register_workflow`](super::KafkaOnce::register_workflow), or `kafka:<group>`
    /// for a dead-lettered Kafka record (its consumer's workflow); `None` for a workflow started
    /// with a closure. [`KafkaOnce::recover_workflows`](super::KafkaOnce::recover_workflows)
    /// resumes pending workflows by this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

/// The input recorded for a dead-lettered Kafka record, from which
/// [`workflows retry`](crate::dispatch) runs its consumer's workflow again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// The consumer group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The topic id (hyphenated UUID).
    pub topic_id: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The leader epoch of the record's batch.
    pub leader_epoch: i32,
    /// The timestamp, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Option<Vec<u8>>,
    /// The headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl DeadLetter {
    /// What to record of the record `r` with idempotency key `key`.
    pub(crate) fn of(r: &ConsumerRecord, key: &RecordKey) -> Self {
        Self {
            group: key.group.to_string(),
            topic: r.topic.to_string(),
            topic_id: key.topic_id.to_string(),
            partition: r.partition,
            offset: r.offset,
            leader_epoch: r.leader_epoch,
            timestamp: r.timestamp,
            key: r.key.as_ref().map(|b| b.to_vec()),
            value: r.value.as_ref().map(|b| b.to_vec()),
            headers: r
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec())))
                .collect(),
        }
    }

    /// The message again, with its original idempotency key, for a run in `ctx`.
    pub(crate) fn into_message(self, ctx: &WorkflowContext) -> Result<KafkaMessage, WorkflowError> {
        let topic_id = uuid::Uuid::parse_str(&self.topic_id).map_err(|e| {
            WorkflowError::from(format!(
                "dead letter {}/{}/{}: topic id {:?}: {e}",
                self.topic, self.partition, self.offset, self.topic_id
            ))
        })?;
        let key = RecordKey {
            group: self.group.into(),
            topic: self.topic.as_str().into(),
            topic_id,
            partition: self.partition,
            offset: self.offset,
        };
        let record = ConsumerRecord {
            topic: self.topic.into(),
            partition: self.partition,
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            timestamp: self.timestamp,
            timestamp_type: TimestampType::CreateTime,
            key: self.key.map(Bytes::from),
            value: self.value.map(Bytes::from),
            headers: self
                .headers
                .into_iter()
                .map(|(key, value)| Header {
                    key,
                    value: value.map(Bytes::from),
                })
                .collect(),
        };
        Ok(KafkaMessage::new(super::message::KeyCell::from_record(
            key,
            record,
            ctx.env(),
        )))
    }
}

/// The registry name under which the workflow of the consumer of `group` runs retried dead
/// letters.
pub(crate) fn kafka_workflow_name(group: &str) -> String {
    format!("kafka:{group}")
}

/// A registered workflow with its types erased: starts (or attaches to) workflow `id` with a
/// JSON input.
pub(crate) type Starter = Arc<
    dyn Fn(
            String,
            serde_json::Value,
        )
            -> Pin<Box<dyn Future<Output = Result<WorkflowHandle<()>, DispatchError>> + Send>>
        + Send
        + Sync,
>;

/// Erases `handler`'s types: the starter decodes the JSON input as `I` and starts the workflow
/// under `name`.
pub(crate) fn starter<I, O, F, Fut, E>(
    journal: Journal,
    running: Arc<Running>,
    name: String,
    producer: Option<ProducerSource>,
    handler: F,
) -> Starter
where
    I: Serialize + DeserializeOwned + Send + 'static,
    O: Serialize + DeserializeOwned + Send + 'static,
    F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    E: Into<WorkflowError> + Send + 'static,
{
    let handler = Arc::new(handler);
    Arc::new(move |id: String, input: serde_json::Value| {
        let (journal, running, name, producer, handler) = (
            journal.clone(),
            running.clone(),
            name.clone(),
            producer.clone(),
            handler.clone(),
        );
        Box::pin(async move {
            let input: I = serde_json::from_value(input).map_err(|e| {
                DispatchError::Config(format!("workflow {id} ({name}): input: {e}"))
            })?;
            let run = move |ctx: WorkflowContext, input: I| handler(ctx, input);
            let origin = Origin {
                name: Some(&name),
                producer,
            };
            let handle: WorkflowHandle<O> = start(
                &journal,
                &running,
                RetryPolicy::default(),
                origin,
                &id,
                input,
                run,
            )
            .await?;
            Ok(handle.cast())
        })
    })
}

/// Who starts a direct workflow: the registered name it is recorded under, and a producer for
/// `ctx.send` (a Kafka consumer's, for its retried dead letters).
#[derive(Default)]
pub(crate) struct Origin<'a> {
    pub name: Option<&'a str>,
    pub producer: Option<ProducerSource>,
}

/// The shared, in-process view of running direct workflows: id → a flag set when it ends.
#[derive(Default)]
pub(crate) struct Running {
    /// id → a flag set when the workflow's task ends.
    map: Mutex<HashMap<String, watch::Receiver<bool>>>,
}

/// A handle to a direct workflow: its status and, once finished, its result.
pub struct WorkflowHandle<O> {
    id: String,
    journal: Journal,
    /// Set when the task running the workflow in this process ends.
    done: Option<watch::Receiver<bool>>,
    _output: PhantomData<fn() -> O>,
}

impl<O> std::fmt::Debug for WorkflowHandle<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowHandle")
            .field("id", &self.id)
            .finish()
    }
}

/// Why [`WorkflowHandle::result`] has no output.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowFailure {
    /// Every attempt failed; the last error.
    #[error("workflow {id} failed: {error}")]
    Failed {
        /// The workflow id.
        id: String,
        /// The last attempt's error.
        error: String,
    },
    /// The workflow was cancelled.
    #[error("workflow {0} was cancelled")]
    Cancelled(String),
    /// The workflow is pending and nothing in this process runs it (resume it with
    /// [`KafkaOnce::start_workflow`](super::KafkaOnce::start_workflow) or [`KafkaOnce::resume_workflows`](super::KafkaOnce::resume_workflows)).
    #[error("workflow {0} is pending and not running in this process")]
    NotRunning(String),
    /// The recorded output is not of the type asked for.
    #[error("workflow {id}: output does not deserialize: {error}")]
    Output {
        /// The workflow id.
        id: String,
        /// serde's message.
        error: String,
    },
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

pub(crate) fn read_record(
    journal: &Journal,
    id: &str,
) -> Result<Option<WorkflowRecord>, JournalError> {
    match journal.state_get(WORKFLOWS, id.as_bytes())? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| JournalError::Corrupt {
                what: format!("workflow record {id:?}"),
                why: e.to_string(),
            }),
    }
}

pub(crate) fn record_write(
    journal: &Journal,
    id: &str,
    r: &WorkflowRecord,
) -> Result<StateWrite, JournalError> {
    Ok(StateWrite {
        keyspace: journal.state_keyspace(WORKFLOWS)?,
        key: id.as_bytes().to_vec(),
        value: Some(serde_json::to_vec(r).map_err(|e| JournalError::InvalidKey(e.to_string()))?),
    })
}

impl<O> WorkflowHandle<O> {
    /// The same workflow, its output read as `P`.
    pub(crate) fn cast<P>(self) -> WorkflowHandle<P> {
        WorkflowHandle {
            id: self.id,
            journal: self.journal,
            done: self.done,
            _output: PhantomData,
        }
    }
}

impl<O: DeserializeOwned> WorkflowHandle<O> {
    /// The workflow id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The status now.
    pub fn status(&self) -> Result<WorkflowStatus, JournalError> {
        Ok(read_record(&self.journal, &self.id)?.map_or(WorkflowStatus::Pending, |r| r.status))
    }

    /// Waits until the workflow finishes and returns its output.
    ///
    /// Cancel safety: safe.
    pub async fn result(&self) -> Result<O, WorkflowFailure> {
        if let Some(mut done) = self.done.clone() {
            // An error means the task is gone; the journal says how it ended either way.
            let _ = done.wait_for(|d| *d).await;
        }
        let record = read_record(&self.journal, &self.id)?
            .ok_or_else(|| WorkflowFailure::NotRunning(self.id.clone()))?;
        match record.status {
            WorkflowStatus::Completed => serde_json::from_value(record.output.unwrap_or_default())
                .map_err(|e| WorkflowFailure::Output {
                    id: self.id.clone(),
                    error: e.to_string(),
                }),
            WorkflowStatus::Failed | WorkflowStatus::DeadLettered => Err(WorkflowFailure::Failed {
                id: self.id.clone(),
                error: record.error.unwrap_or_default(),
            }),
            WorkflowStatus::Cancelled => Err(WorkflowFailure::Cancelled(self.id.clone())),
            WorkflowStatus::Pending => Err(WorkflowFailure::NotRunning(self.id.clone())),
        }
    }
}

/// Starts (or attaches to) the direct workflow `id`.
pub(crate) async fn start<I, O, F, Fut, E>(
    journal: &Journal,
    running: &Arc<Running>,
    retry: RetryPolicy,
    origin: Origin<'_>,
    id: &str,
    input: I,
    handler: F,
) -> Result<WorkflowHandle<O>, DispatchError>
where
    I: Serialize + DeserializeOwned + Send + 'static,
    O: Serialize + DeserializeOwned + Send + 'static,
    F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    E: Into<WorkflowError> + Send + 'static,
{
    if id.is_empty() || id.len() > 1024 {
        return Err(DispatchError::Config(
            "a workflow id has 1 to 1024 bytes".into(),
        ));
    }
    let handle = |done| WorkflowHandle {
        id: id.to_string(),
        journal: journal.clone(),
        done,
        _output: PhantomData,
    };
    // Claim the id in this process before looking at the journal, so that two concurrent starts
    // (an app's recovery and a caller, say) run it once: the second attaches to the first.
    let (tx, rx) = watch::channel(false);
    {
        let mut map = running.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = map.get(id) {
            return Ok(handle(Some(rx.clone())));
        }
        map.insert(id.to_string(), rx.clone());
    }
    let release = || {
        running
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        tx.send_replace(true);
    };
    let prepared = prepare(journal, &origin, id, input).await;
    let (input, attempts) = match prepared {
        Ok(Some(p)) => p,
        Ok(None) => {
            release();
            return Ok(handle(None));
        }
        Err(e) => {
            release();
            return Err(e);
        }
    };
    let journal2 = journal.clone();
    let running2 = running.clone();
    let id2 = id.to_string();
    let producer = origin.producer;
    tokio::spawn(async move {
        if let Err(e) = run(&journal2, retry, &id2, input, attempts, producer, handler).await {
            tracing::error!(workflow = %id2, error = %e, "direct workflow stopped");
        }
        running2
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id2);
        tx.send_replace(true);
    });
    Ok(handle(Some(rx)))
}

/// The input and prior attempts to run workflow `id` with: a new one is recorded pending; a
/// pending one from an earlier process resumes with its recorded input, counting the attempts
/// its journal entry says began. `None` when it has finished (or was cancelled).
async fn prepare<I: Serialize + DeserializeOwned>(
    journal: &Journal,
    origin: &Origin<'_>,
    id: &str,
    input: I,
) -> Result<Option<(I, u32)>, DispatchError> {
    Ok(Some(match read_record(journal, id)? {
        Some(r) if r.status != WorkflowStatus::Pending => return Ok(None),
        Some(r) => (
            serde_json::from_value::<I>(r.input.clone()).map_err(|e| {
                DispatchError::Config(format!("workflow {id}: recorded input: {e}"))
            })?,
            journal
                .get(&RecordKey::direct(id))?
                .map_or(0, |e| e.attempts())
                .max(r.attempts),
        ),
        None => {
            let record = WorkflowRecord {
                version: 1,
                status: WorkflowStatus::Pending,
                input: serde_json::to_value(&input)
                    .map_err(|e| DispatchError::Config(format!("workflow {id}: input: {e}")))?,
                output: None,
                error: None,
                attempts: 0,
                workflow: origin.name.map(str::to_string),
            };
            journal
                .write_state(vec![record_write(journal, id, &record)?])
                .await?;
            (input, 0)
        }
    }))
}

async fn run<I, O, F, Fut, E>(
    journal: &Journal,
    retry: RetryPolicy,
    id: &str,
    input: I,
    prior: u32,
    producer: Option<ProducerSource>,
    handler: F,
) -> Result<WorkflowRecord, JournalError>
where
    I: Serialize + DeserializeOwned,
    O: Serialize,
    F: Fn(WorkflowContext, I) -> Fut,
    Fut: Future<Output = Result<O, E>>,
    E: Into<WorkflowError>,
{
    let key = RecordKey::direct(id);
    let input_json = serde_json::to_value(&input).unwrap_or_default();
    let name = read_record(journal, id)?.and_then(|r| r.workflow);
    let mut backoff = retry.initial_backoff;
    let mut attempt = prior;
    let mut failures = 0;
    loop {
        if let Some(r) = read_record(journal, id)?
            && r.status == WorkflowStatus::Cancelled
        {
            return Ok(r);
        }
        attempt += 1;
        journal.started(&key, attempt)?;
        let ctx = WorkflowContext::load(
            Arc::new(key.clone()),
            attempt,
            journal.clone(),
            producer.clone(),
            Arc::default(),
            false,
        )?;
        let input: I =
            serde_json::from_value(input_json.clone()).map_err(|e| JournalError::Corrupt {
                what: format!("workflow {id} input"),
                why: e.to_string(),
            })?;
        let result = super::runtime::catch_unwind(handler(ctx, input)).await;
        let error = match result {
            Ok(Ok(output)) => {
                let record = WorkflowRecord {
                    version: 1,
                    status: WorkflowStatus::Completed,
                    input: input_json.clone(),
                    output: Some(serde_json::to_value(&output).unwrap_or_default()),
                    error: None,
                    attempts: attempt,
                    workflow: name.clone(),
                };
                let write = record_write(journal, id, &record)?;
                let entry = Entry::Completed {
                    attempts: attempt,
                    at_ms: 0,
                };
                let result = journal
                    .complete_with(&key, entry, true, Vec::new(), vec![write])
                    .await?;
                // The status record holds the result now: the steps and the entry can go.
                journal
                    .prune_range(&key.partition_key(), Some(0), 1)
                    .await?;
                return match result {
                    FinishResult::Written => Ok(record),
                    _ => read_record(journal, id).map(|r| r.unwrap_or(record)),
                };
            }
            Ok(Err(e)) => e.into().to_string(),
            Err(p) => format!("panicked: {}", super::runtime::panic_text(p)),
        };
        failures += 1;
        tracing::warn!(workflow = %id, attempt, error, "direct workflow attempt failed");
        if failures >= retry.max_attempts {
            let record = WorkflowRecord {
                version: 1,
                status: WorkflowStatus::Failed,
                input: input_json,
                output: None,
                error: Some(error),
                attempts: attempt,
                workflow: name,
            };
            journal
                .write_state(vec![record_write(journal, id, &record)?])
                .await?;
            return Ok(record);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(retry.max_backoff.max(Duration::from_millis(1)));
    }
}

/// Sets a direct workflow's status (for `workflows retry` and `cancel`): `Pending` again for a
/// failed, cancelled or dead-lettered one, `Cancelled` for a pending one. Returns the old status.
/// A pending workflow with a registered name runs at the app's next
/// [`recover_workflows`](super::KafkaOnce::recover_workflows) (which [`run`](super::KafkaOnce::run)
/// calls).
pub async fn set_status(
    journal: &Journal,
    id: &str,
    to: WorkflowStatus,
) -> Result<WorkflowStatus, DispatchError> {
    let id = id.to_string();
    {
        let mut r = read_record(journal, &id)?
            .ok_or_else(|| DispatchError::Config(format!("no workflow {id:?}")))?;
        let from = r.status;
        let allowed = matches!(
            (from, to),
            (
                WorkflowStatus::Failed | WorkflowStatus::Cancelled | WorkflowStatus::DeadLettered,
                WorkflowStatus::Pending
            ) | (WorkflowStatus::Pending, WorkflowStatus::Cancelled)
        );
        if !allowed {
            return Err(DispatchError::Config(format!(
                "workflow {id:?} is {from:?}; cannot make it {to:?}"
            )));
        }
        r.status = to;
        if to == WorkflowStatus::Pending {
            r.error = None;
        }
        journal
            .write_state(vec![record_write(journal, &id, &r)?])
            .await?;
        Ok(from)
    }
}

/// Every direct workflow in the journal, by id.
pub fn list(journal: &Journal) -> Result<Vec<(String, WorkflowRecord)>, JournalError> {
    let mut out = Vec::new();
    for (k, v) in journal.state_scan(WORKFLOWS)? {
        let id = String::from_utf8_lossy(&k).to_string();
        let r: WorkflowRecord = serde_json::from_slice(&v).map_err(|e| JournalError::Corrupt {
            what: format!("workflow record {id:?}"),
            why: e.to_string(),
        })?;
        out.push((id, r));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::dispatch::KafkaOnce;

    #[tokio::test]
    async fn a_second_start_with_the_same_id_returns_the_first_result_without_running() {
        let dir = tempfile::tempdir().unwrap();
        let app = KafkaOnce::open(dir.path()).unwrap();
        let runs = Arc::new(AtomicU32::new(0));
        let handler = {
            let runs = runs.clone();
            move |ctx: WorkflowContext, n: u64| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let doubled: u64 = ctx
                        .step("double", || async move { Ok::<_, WorkflowError>(n * 2) })
                        .await?;
                    Ok::<u64, WorkflowError>(doubled + 1)
                }
            }
        };
        let first = app
            .start_workflow("wf-1", 20u64, handler.clone())
            .await
            .unwrap();
        assert_eq!(first.result().await.unwrap(), 41);
        assert_eq!(first.status().unwrap(), WorkflowStatus::Completed);
        let second = app.start_workflow("wf-1", 999u64, handler).await.unwrap();
        assert_eq!(second.result().await.unwrap(), 41);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Finished: its steps and entry were pruned, the status record stays.
        assert!(
            app.journal()
                .steps(&RecordKey::direct("wf-1"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(list(app.journal()).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_workflow_retried_resumes_after_its_recorded_steps() {
        let dir = tempfile::tempdir().unwrap();
        let app = KafkaOnce::open(dir.path()).unwrap();
        let step_runs = Arc::new(AtomicU32::new(0));
        let failing = {
            let step_runs = step_runs.clone();
            move |ctx: WorkflowContext, _: String| {
                let step_runs = step_runs.clone();
                async move {
                    let _: u32 = ctx
                        .step("reserve", || async {
                            Ok::<_, WorkflowError>(step_runs.fetch_add(1, Ordering::SeqCst))
                        })
                        .await?;
                    Err::<String, WorkflowError>("payment service down".into())
                }
            }
        };
        let h = app
            .start_workflow("order-7", "A-1".to_string(), failing)
            .await
            .unwrap();
        let err = h.result().await.unwrap_err();
        assert!(err.to_string().contains("payment service down"), "{err}");
        assert_eq!(h.status().unwrap(), WorkflowStatus::Failed);
        assert_eq!(
            step_runs.load(Ordering::SeqCst),
            1,
            "the recorded step ran once over 5 attempts"
        );
        // `workflows retry`: pending again; the next start resumes it, after the recorded step.
        assert_eq!(
            set_status(app.journal(), "order-7", WorkflowStatus::Pending)
                .await
                .unwrap(),
            WorkflowStatus::Failed
        );
        let fixed = {
            let step_runs = step_runs.clone();
            move |ctx: WorkflowContext, sku: String| {
                let step_runs = step_runs.clone();
                async move {
                    let n: u32 = ctx
                        .step("reserve", || async {
                            Ok::<_, WorkflowError>(100 + step_runs.fetch_add(1, Ordering::SeqCst))
                        })
                        .await?;
                    Ok::<String, WorkflowError>(format!("{sku} reserved as #{n}"))
                }
            }
        };
        let handles = app.resume_workflows(fixed).await.unwrap();
        assert_eq!(handles.len(), 1);
        assert_eq!(handles[0].result().await.unwrap(), "A-1 reserved as #0");
        assert_eq!(step_runs.load(Ordering::SeqCst), 1);
        // Completed workflows cannot be cancelled; unknown ids are an error.
        assert!(
            set_status(app.journal(), "order-7", WorkflowStatus::Cancelled)
                .await
                .is_err()
        );
        assert!(
            set_status(app.journal(), "nope", WorkflowStatus::Pending)
                .await
                .is_err()
        );
    }

    /// A registered workflow interrupted after its first step (its process's runtime dies with
    /// the task in the middle, which is what a crash leaves in the journal) is resumed by the
    /// next app's `run`, after the recorded step, with no call naming it.
    #[test]
    fn a_pending_registered_workflow_is_resumed_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Mutex::new(Vec::<String>::new()));
        let register = |app: &KafkaOnce, stall: bool| {
            let ledger = ledger.clone();
            app.register_workflow("transfer", move |ctx: WorkflowContext, amount: u64| {
                let ledger = ledger.clone();
                async move {
                    let l = &ledger;
                    ctx.step("debit", || async move {
                        l.lock().unwrap().push(format!("debit {amount}"));
                        Ok::<_, WorkflowError>(())
                    })
                    .await?;
                    if stall {
                        std::future::pending::<()>().await;
                    }
                    let l = &ledger;
                    ctx.step("credit", || async move {
                        l.lock().unwrap().push(format!("credit {amount}"));
                        Ok::<_, WorkflowError>(())
                    })
                    .await?;
                    ctx.transaction(|tx| tx.put("balances", b"t-1", &amount.to_be_bytes()))
                        .await?;
                    Ok::<u64, WorkflowError>(amount)
                }
            })
            .unwrap();
        };

        // The first process: its runtime goes away while the workflow waits after "debit".
        let first = tokio::runtime::Runtime::new().unwrap();
        first.block_on(async {
            let app = KafkaOnce::open(dir.path()).unwrap();
            register(&app, true);
            let h = app
                .start_registered::<u64, u64>("transfer", "t-1", 30)
                .await
                .unwrap();
            while ledger.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(h.status().unwrap(), WorkflowStatus::Pending);
        });
        first.shutdown_timeout(Duration::from_secs(5));

        let second = tokio::runtime::Runtime::new().unwrap();
        second.block_on(async {
            let app = Arc::new(KafkaOnce::open(dir.path()).unwrap().handle_signals(false));
            register(&app, false);
            assert!(
                app.register_workflow("transfer", |_: WorkflowContext, n: u64| async move {
                    Ok::<u64, WorkflowError>(n)
                })
                .is_err(),
                "a name is registered once"
            );
            let runner = {
                let app = app.clone();
                tokio::spawn(async move { app.run().await })
            };
            let handle: WorkflowHandle<u64> = loop {
                let h = app
                    .start_registered::<u64, u64>("transfer", "t-1", 999)
                    .await
                    .unwrap();
                if h.status().unwrap() == WorkflowStatus::Completed {
                    break h;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            assert_eq!(handle.result().await.unwrap(), 30, "the recorded input");
            let balance = app.state().get("balances", b"t-1").unwrap().unwrap();
            assert_eq!(
                balance.as_ref(),
                30u64.to_be_bytes(),
                "app.state() reads what it wrote"
            );
            assert_eq!(app.state().scan("balances").unwrap().len(), 1);
            app.shutdown_handle().shutdown();
            runner.await.unwrap().unwrap();
        });
        assert_eq!(
            *ledger.lock().unwrap(),
            vec!["debit 30".to_string(), "credit 30".to_string()],
            "debit ran once, before the crash; credit once, after it"
        );
        let record = read_record(&crate::journal::Journal::open(dir.path()).unwrap(), "t-1")
            .unwrap()
            .unwrap();
        assert_eq!(record.workflow.as_deref(), Some("transfer"));
        assert_eq!(record.attempts, 2);
    }
}
