//! The exactly-once runtime: run a workflow once for every record of some topics, through
//! crashes, rebalances and redeliveries, with completions recorded in the [`journal`](crate::journal)
//! and offset commits coupled to them.
//!
//! ```no_run
//! use kafka_once::config::ClientConfig;
//! use kafka_once::dispatch::{KafkaMessage, KafkaOnce, WorkflowContext, WorkflowError};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let app = KafkaOnce::open("./journal")?;
//! app.kafka_consumer(
//!     ClientConfig::from_properties([
//!         ("bootstrap.servers", "localhost:9092"),
//!         ("group.id", "dbos-kafka-group"),
//!         ("auto.offset.reset", "earliest"),
//!     ])?,
//!     ["example-topic"],
//! )
//! .in_order(true)
//! .workflow(|ctx: WorkflowContext, msg: KafkaMessage| async move {
//!     println!("message received: {}", String::from_utf8_lossy(msg.value()));
//!     // A transaction is a step: its writes commit atomically with its checkpoint, once.
//!     ctx.transaction(|tx| {
//!         let seen = tx.get("seen", msg.key().unwrap_or_default())?.map_or(0, |v| v.len());
//!         tx.put("seen", msg.key().unwrap_or_default(), &vec![b'x'; seen + 1])
//!     })
//!     .await?;
//!     Ok::<(), WorkflowError>(())
//! })?;
//! app.run().await?; // until SIGINT, SIGTERM or app.shutdown_handle().shutdown()
//! # Ok(())
//! # }
//! ```
//!
//! # How it keeps its promises
//!
//! - **Keys.** A record's key is (group, topic, topic id, partition, offset); see
//!   [`RecordKey`](crate::journal::RecordKey).
//! - **Completion.** A workflow's success is written to the journal and counts only once the
//!   group-committed fsync covering it returned. The journal refuses a second completion of a key.
//! - **Steps.** [`WorkflowContext::step`], [`transaction`](WorkflowContext::transaction),
//!   [`sleep`](WorkflowContext::sleep) and [`send`](WorkflowContext::send) are checkpointed: the
//!   output (and a transaction's state writes, atomically) is journaled before the workflow goes
//!   on, and a re-run returns the recorded output without running the step again.
//! - **Commits.** Per partition the runtime commits the first offset it received that is not
//!   finished yet (so offset gaps never stall it), with the finished offsets above it encoded in
//!   the commit's metadata (see `completion_map`), periodically, on revoke (after the partition's
//!   running workflows finish or `revoke_grace` passes) and on shutdown. Lost partitions are never
//!   committed; a commit refused for a generation change counts as not committed. After the broker
//!   confirms a commit, the journal's entries below it are pruned.
//! - **Recovery.** On assignment the runtime loads the partition's journal entries and the
//!   commit's completion map; finished records are skipped without calling the workflow, started
//!   ones run again with their attempt count increased.
//! - **Ordering.** [`Ordering::Partition`]: a partition's records run one at a time in offset
//!   order, and their completions become durable in that order. Record n+1's workflow starts
//!   once n's returned, while n's completion may still be on its way to the disk (several go
//!   to the disk together); nothing of n+1 becomes durable, and no step, send or sleep of it
//!   runs, before n's completion is durable (a transaction of n+1, whose effect is in the
//!   journal alone, runs once n's completion is queued to the journal ahead of it, so it never
//!   becomes durable first). After a crash, the records whose
//!   completion was not durable run again, in order. [`Ordering::Key`]: sequential per key,
//!   each record starting after the previous one of its key finished durably.
//!   [`Ordering::None`]: concurrent, up to the in-flight bounds.
//! - **Failures.** Errors and panics are retried with exponential backoff
//!   ([`RetryPolicy`]); after the last attempt the [`FailurePolicy`] applies: copy to a
//!   dead-letter topic and mark dead-lettered, or halt the partition (its commit stays pinned).
//! - **Backpressure.** In-flight records are bounded in total and per partition; a partition at
//!   its bound is paused in the fetcher, whose prefetch is bounded in bytes.
//!
//! The one duplicate window left across machines: a completion made durable in one instance's
//! journal but not yet committed when that machine died is unknown to the instance that takes
//! the partition over, which runs the record again. Within one journal there is no such window.

mod completion_map;
mod context;
mod direct;
mod error;
mod handler;
mod message;
mod metrics;
mod runs;
mod runtime;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::ClientConfig;
use crate::journal::{Journal, JournalOptions};

pub use completion_map::MAX_METADATA;
pub use context::{SEND_ID, Sent, StepError, Transaction, WorkflowContext};
pub use direct::{
    DeadLetter, WORKFLOWS, WorkflowFailure, WorkflowHandle, WorkflowRecord, WorkflowStatus,
    list as list_workflows, set_status as set_workflow_status,
};
pub use error::{DispatchError, WorkflowError};
pub use message::KafkaMessage;
pub use metrics::{Halted, MetricsSnapshot};

use handler::Handler;
use runtime::Registered;

/// The completion map's codec, for the fuzz targets in `fuzz/` (feature `fuzzing`); not a stable
/// API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use super::completion_map::{MapError, decode, encode_runs};
}

/// How workflows of one partition may overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Ordering {
    /// Concurrent, up to the in-flight bounds. The default.
    #[default]
    None,
    /// Within a partition, strictly sequential by offset; partitions run in parallel. A
    /// workflow's steps, transactions, sends and sleeps run only after the previous record's
    /// completion is durable (see the [module docs](self)).
    Partition,
    /// Sequential per record key within a partition (null keys form one sequence).
    Key,
}

/// Retries of a failing workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failed attempts (errors or panics) in this process before the failure policy applies.
    /// Default 5. Runs cut short by a crash do not count.
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each later one. Default 100 ms.
    pub initial_backoff: Duration,
    /// The longest wait. Default 10 s.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// What happens to a record whose last attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Stop the partition: no further record of it runs, its commit stays below the failed
    /// record, and [`MetricsSnapshot::halted`] reports it. The default.
    #[default]
    Halt,
    /// Copy the record (key, value, headers) to `topic` through the idempotent producer, with
    /// headers `kafka-once.error`, `kafka-once.attempts`, `kafka-once.topic`,
    /// `kafka-once.partition` and `kafka-once.offset`; then mark it dead-lettered (finished).
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}

/// Settings of one registered consumer.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub ordering: Ordering,
    pub max_in_flight: usize,
    pub max_in_flight_per_partition: usize,
    pub retry: RetryPolicy,
    pub failure: FailurePolicy,
    pub commit_interval: Duration,
    pub revoke_grace: Duration,
    pub metadata_limit: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ordering: Ordering::None,
            max_in_flight: 16_384,
            max_in_flight_per_partition: 4096,
            retry: RetryPolicy::default(),
            failure: FailurePolicy::Halt,
            commit_interval: Duration::from_secs(1),
            revoke_grace: Duration::from_secs(10),
            metadata_limit: MAX_METADATA,
        }
    }
}

/// Stops a running app: [`shutdown`](Self::shutdown) has the effect of SIGINT.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    /// Asks the app to stop: stop fetching, let in-flight workflows finish within the revoke
    /// grace period, commit, leave the groups.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

/// An exactly-once app: one journal, any number of consumers.
pub struct KafkaOnce {
    journal: Journal,
    registered: Mutex<Vec<Registered>>,
    shutdown: watch::Sender<bool>,
    running: Mutex<Vec<Arc<runtime::Shared>>>,
    signals: bool,
    direct: Arc<direct::Running>,
    /// Registered direct workflows by name (and `kafka:<group>` for each consumer's workflow
    /// once [`run`](Self::run) starts).
    workflows: Mutex<HashMap<String, direct::Starter>>,
}

impl std::fmt::Debug for KafkaOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOnce")
            .field("journal", &self.journal)
            .finish()
    }
}

impl KafkaOnce {
    /// Opens the journal in directory `path` (created if missing) with default options.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, DispatchError> {
        Self::open_with(path, JournalOptions::default())
    }

    /// Opens the journal in directory `path` with `options`.
    pub fn open_with(
        path: impl AsRef<std::path::Path>,
        options: JournalOptions,
    ) -> Result<Self, DispatchError> {
        Ok(Self::with_journal(Journal::open_with(path, options)?))
    }

    /// An app over an open journal.
    pub fn with_journal(journal: Journal) -> Self {
        Self {
            journal,
            registered: Mutex::new(Vec::new()),
            shutdown: watch::channel(false).0,
            running: Mutex::new(Vec::new()),
            signals: true,
            direct: Arc::default(),
            workflows: Mutex::default(),
        }
    }

    /// Whether [`run`](Self::run) stops on SIGINT and SIGTERM (default true).
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.signals = yes;
        self
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Reads the app's state, the named keyspaces that workflows write with
    /// [`WorkflowContext::transaction`], from outside workflows (as committed: a transaction's
    /// writes appear together, with its step's checkpoint).
    ///
    /// ```no_run
    /// # use kafka_once::dispatch::KafkaOnce;
    /// # fn demo(app: &KafkaOnce) -> Result<(), Box<dyn std::error::Error>> {
    /// if let Some(v) = app.state().get("counters", b"orders")? {
    ///     println!("orders: {}", u64::from_be_bytes(v[..8].try_into()?));
    /// }
    /// for (key, value) in app.state().scan("tally")? {
    ///     println!("{key:?} = {value:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn state(&self) -> AppState<'_> {
        AppState {
            journal: &self.journal,
        }
    }

    /// Starts registering a consumer of `topics` with `config` (which needs `group.id`;
    /// `enable.auto.commit` is turned off, the runtime commits; `isolation.level` is always
    /// `read_committed`, so records of aborted transactions never run; `max.poll.records` is at
    /// least 1,024, the most records the runtime starts as one unit: with no poll loop to bound,
    /// it only sets how many records of a partition are taken before the next partition's).
    /// Each consumer of an app has its own group id: register one consumer with all its topics
    /// rather than two with one group ([`run`](Self::run) refuses that).
    pub fn kafka_consumer<I, S>(&self, config: ClientConfig, topics: I) -> ConsumerBuilder<'_>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ConsumerBuilder {
            app: self,
            config,
            topics: topics.into_iter().map(Into::into).collect(),
            settings: Settings::default(),
            grace: None,
        }
    }

    /// Starts the workflow `id` outside Kafka: `handler(ctx, input)` with the same steps,
    /// transactions and sleeps as a Kafka workflow, retried per [`RetryPolicy::default`].
    ///
    /// Idempotent per id: when `id` was started before, this returns a handle to that workflow
    /// (and its result), and does not run it again. A workflow left pending by a crashed process
    /// is resumed (with its recorded input and steps) by the first `start_workflow` with its id,
    /// or by [`resume_workflows`](Self::resume_workflows).
    ///
    /// ```no_run
    /// # use kafka_once::dispatch::{KafkaOnce, WorkflowContext, WorkflowError};
    /// # async fn demo(app: KafkaOnce) -> Result<(), Box<dyn std::error::Error>> {
    /// let handle = app
    ///     .start_workflow("invoice-2026-42", 42u64, |ctx: WorkflowContext, n: u64| async move {
    ///         let total: u64 = ctx.step("sum", || async move { Ok::<_, WorkflowError>(n * 2) }).await?;
    ///         Ok::<u64, WorkflowError>(total)
    ///     })
    ///     .await?;
    /// assert_eq!(handle.result().await?, 84);
    /// # Ok(()) }
    /// ```
    pub async fn start_workflow<I, O, F, Fut, E>(
        &self,
        id: &str,
        input: I,
        handler: F,
    ) -> Result<WorkflowHandle<O>, DispatchError>
    where
        I: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
        O: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<O, E>> + Send + 'static,
        E: Into<WorkflowError> + Send + 'static,
    {
        direct::start(
            &self.journal,
            &self.direct,
            RetryPolicy::default(),
            direct::Origin::default(),
            id,
            input,
            handler,
        )
        .await
    }

    /// Registers `handler` as the direct workflow `name`, so it can be started by name
    /// ([`start_registered`](Self::start_registered)) and, above all, so a workflow of that name
    /// left pending by a crash (or made pending again by `kafka-once workflows retry`) is resumed
    /// by [`recover_workflows`](Self::recover_workflows), which [`run`](Self::run) calls at
    /// start. Names are unique per app; `kafka:` is reserved.
    ///
    /// ```no_run
    /// # use kafka_once::dispatch::{KafkaOnce, WorkflowContext, WorkflowError};
    /// # async fn demo(app: KafkaOnce) -> Result<(), Box<dyn std::error::Error>> {
    /// app.register_workflow("invoice", |ctx: WorkflowContext, n: u64| async move {
    ///     let total: u64 = ctx.step("sum", || async move { Ok::<_, WorkflowError>(n * 2) }).await?;
    ///     Ok::<u64, WorkflowError>(total)
    /// })?;
    /// // Resumes every pending "invoice" workflow in the journal.
    /// app.recover_workflows().await?;
    /// let handle = app.start_registered::<u64, u64>("invoice", "invoice-2026-42", 42).await?;
    /// assert_eq!(handle.result().await?, 84);
    /// # Ok(()) }
    /// ```
    pub fn register_workflow<I, O, F, Fut, E>(
        &self,
        name: &str,
        handler: F,
    ) -> Result<(), DispatchError>
    where
        I: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
        O: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<O, E>> + Send + 'static,
        E: Into<WorkflowError> + Send + 'static,
    {
        if name.is_empty() || name.starts_with("kafka:") {
            return Err(DispatchError::Config(format!(
                "a workflow name is not empty and does not start with \"kafka:\" (reserved): {name:?}"
            )));
        }
        let starter = direct::starter(
            self.journal.clone(),
            self.direct.clone(),
            name.to_string(),
            None,
            handler,
        );
        self.add_starter(name.to_string(), starter)
    }

    fn add_starter(&self, name: String, starter: direct::Starter) -> Result<(), DispatchError> {
        let mut workflows = self.workflows.lock().unwrap_or_else(|p| p.into_inner());
        if workflows.contains_key(&name) {
            return Err(DispatchError::Config(format!(
                "a workflow named {name:?} is already registered"
            )));
        }
        workflows.insert(name, starter);
        Ok(())
    }

    /// Starts (or attaches to) the workflow `id` of the registered workflow `name` with
    /// `input`; idempotent per id like [`start_workflow`](Self::start_workflow). `I` and `O`
    /// must be (or serialize like) the registered handler's input and output types.
    pub async fn start_registered<I, O>(
        &self,
        name: &str,
        id: &str,
        input: I,
    ) -> Result<WorkflowHandle<O>, DispatchError>
    where
        I: serde::Serialize,
    {
        let starter = self.starter(name)?;
        let input = serde_json::to_value(input)
            .map_err(|e| DispatchError::Config(format!("workflow {id}: input: {e}")))?;
        Ok(starter(id.to_string(), input).await?.cast())
    }

    fn starter(&self, name: &str) -> Result<direct::Starter, DispatchError> {
        self.workflows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| DispatchError::Config(format!("no workflow registered as {name:?}")))
    }

    /// Resumes every pending workflow in the journal whose workflow is registered: direct
    /// workflows by their [`register_workflow`](Self::register_workflow) name, dead-lettered
    /// Kafka records made pending by `workflows retry` by their consumer's workflow (registered
    /// when [`run`](Self::run) starts, which calls this). Each runs in the background, resuming
    /// after its last recorded step. Returns the ids started; pending workflows of a name not
    /// registered here are logged and left pending (a closure-started one is resumed by
    /// [`start_workflow`](Self::start_workflow) or [`resume_workflows`](Self::resume_workflows)).
    pub async fn recover_workflows(&self) -> Result<Vec<String>, DispatchError> {
        let mut started = Vec::new();
        for (id, record) in direct::list(&self.journal)? {
            if record.status != WorkflowStatus::Pending {
                continue;
            }
            let Some(name) = record.workflow else {
                tracing::info!(workflow = %id, "pending workflow started with a closure: resume it with start_workflow");
                continue;
            };
            match self.starter(&name) {
                Ok(starter) => {
                    starter(id.clone(), record.input).await?;
                    started.push(id);
                }
                Err(_) => {
                    tracing::warn!(workflow = %id, name, "pending workflow of a workflow not registered in this app");
                }
            }
        }
        if !started.is_empty() {
            tracing::info!(count = started.len(), "pending workflows resumed");
        }
        Ok(started)
    }

    /// Resumes every pending direct workflow in the journal that was started with a closure
    /// ([`start_workflow`](Self::start_workflow)) with `handler` (for an app with one kind of
    /// such workflow; with several, call `start_workflow` per id, or better, register them by name
    /// with [`register_workflow`](Self::register_workflow)). Returns their handles.
    pub async fn resume_workflows<I, O, F, Fut, E>(
        &self,
        handler: F,
    ) -> Result<Vec<WorkflowHandle<O>>, DispatchError>
    where
        I: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
        O: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
        F: Fn(WorkflowContext, I) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<O, E>> + Send + 'static,
        E: Into<WorkflowError> + Send + 'static,
    {
        let mut handles = Vec::new();
        for (id, record) in direct::list(&self.journal)? {
            if record.status == WorkflowStatus::Pending && record.workflow.is_none() {
                let input: I = serde_json::from_value(record.input).map_err(|e| {
                    DispatchError::Config(format!("workflow {id}: recorded input: {e}"))
                })?;
                handles.push(self.start_workflow(&id, input, handler.clone()).await?);
            }
        }
        Ok(handles)
    }

    /// A handle that stops [`run`](Self::run) from anywhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// The counters of every running consumer.
    pub fn metrics(&self) -> Vec<MetricsSnapshot> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        running.iter().map(|s| s.snapshot()).collect()
    }

    /// Runs every registered consumer until shutdown (SIGINT, SIGTERM, or a
    /// [`ShutdownHandle`]) or a fatal error (a journal write failure, a fenced static member).
    /// On the way out: stop fetching, let in-flight workflows finish within the revoke grace
    /// period, commit, leave the groups. Returns the first fatal error.
    ///
    /// Cancel safety: not cancel safe: dropping the future abandons the consumers without the
    /// final commit (as a crash would; nothing is lost, records run again after the last commit
    /// unless the journal has them).
    pub async fn run(&self) -> Result<(), DispatchError> {
        let registered =
            std::mem::take(&mut *self.registered.lock().unwrap_or_else(|p| p.into_inner()));
        let named = !self
            .workflows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if registered.is_empty() && !named {
            return Err(DispatchError::Config(
                "nothing to run: call kafka_consumer(..).workflow(..) or register_workflow first"
                    .into(),
            ));
        }
        let mut groups: Vec<&str> = registered
            .iter()
            .filter_map(|r| r.config.consumer().group_id())
            .collect();
        groups.sort_unstable();
        if let Some(w) = groups.windows(2).find(|w| w[0] == w[1]) {
            return Err(DispatchError::Config(format!(
                "two consumers of one app share group.id {:?}: register one consumer with all \
                 its topics instead",
                w[0]
            )));
        }
        if self.signals {
            spawn_signal_watch(self.shutdown.clone());
        }
        // Each consumer's workflow also runs its dead letters made pending by `workflows retry`.
        for r in &registered {
            let Some(group) = r.config.consumer().group_id() else {
                continue;
            };
            let handler = r.handler.clone();
            let starter = direct::starter(
                self.journal.clone(),
                self.direct.clone(),
                direct::kafka_workflow_name(group),
                Some(runtime::producer_source(Arc::default(), r.config.clone())),
                move |ctx: WorkflowContext, letter: direct::DeadLetter| match letter
                    .into_message(&ctx)
                {
                    Ok(message) => handler.call(ctx, message),
                    Err(e) => Box::pin(std::future::ready(Err(e))),
                },
            );
            self.add_starter(direct::kafka_workflow_name(group), starter)?;
        }
        self.recover_workflows().await?;
        let mut tasks = tokio::task::JoinSet::new();
        for r in registered {
            let shared = runtime::start(self.journal.clone(), r).await?;
            self.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(shared.clone());
            let shutdown = self.shutdown.subscribe();
            tasks.spawn(runtime::run(shared, shutdown));
        }
        if tasks.is_empty() {
            // Only direct workflows: they run in the background until shutdown.
            let mut shutdown = self.shutdown.subscribe();
            let _ = shutdown.wait_for(|s| *s).await;
            return Ok(());
        }
        let mut first_error = None;
        while let Some(done) = tasks.join_next().await {
            let result = done.unwrap_or_else(|e| {
                Err(DispatchError::Config(format!(
                    "a consumer task failed: {e}"
                )))
            });
            if let Err(e) = result {
                // One consumer's fatal error stops the others.
                self.shutdown.send_replace(true);
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Read access to an app's state keyspaces; see [`KafkaOnce::state`].
#[derive(Debug, Clone, Copy)]
pub struct AppState<'a> {
    journal: &'a Journal,
}

impl AppState<'_> {
    /// The committed value of `key` in the keyspace `keyspace`.
    pub fn get(
        &self,
        keyspace: &str,
        key: &[u8],
    ) -> Result<Option<bytes::Bytes>, crate::journal::JournalError> {
        self.journal.state_get(keyspace, key)
    }

    /// Every committed key and value of the keyspace `keyspace`, in key order.
    pub fn scan(
        &self,
        keyspace: &str,
    ) -> Result<Vec<(bytes::Bytes, bytes::Bytes)>, crate::journal::JournalError> {
        self.journal.state_scan(keyspace)
    }
}

fn spawn_signal_watch(shutdown: watch::Sender<bool>) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::warn!("cannot install signal handlers; use a ShutdownHandle");
                return;
            };
            let mut closed = shutdown.subscribe();
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                _ = closed.wait_for(|s| *s) => return,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        shutdown.send_replace(true);
    });
}

/// Registers one consumer; finish with [`workflow`](Self::workflow).
#[must_use = "nothing is registered until .workflow(..) is called"]
pub struct ConsumerBuilder<'a> {
    app: &'a KafkaOnce,
    config: ClientConfig,
    topics: Vec<String>,
    settings: Settings,
    grace: Option<Duration>,
}

impl ConsumerBuilder<'_> {
    /// `true` is [`Ordering::Partition`], `false` is [`Ordering::None`] (DBOS's `in_order`).
    pub fn in_order(self, yes: bool) -> Self {
        self.ordering(if yes {
            Ordering::Partition
        } else {
            Ordering::None
        })
    }

    /// How workflows of one partition may overlap. Default [`Ordering::None`].
    pub fn ordering(mut self, ordering: Ordering) -> Self {
        self.settings.ordering = ordering;
        self
    }

    /// Workflows started and not durably finished, over all partitions (records received and
    /// waiting for room add at most 2,048). Default 16,384.
    ///
    /// It bounds memory (the records in flight and waiting) and the records that run again
    /// after a crash; it also bounds throughput, which is at most this many records per
    /// journal group-commit round trip (an fsync and the dispatch around it, a few
    /// milliseconds): with 4,096, a no-op workflow's rate stayed near 0.7 M/s on 2 cores; with
    /// 16,384, 1.3–1.5 M/s.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.settings.max_in_flight = n;
        self
    }

    /// Workflows started and not durably finished, per partition; a partition at the bound is
    /// paused. Default 4,096.
    pub fn max_in_flight_per_partition(mut self, n: usize) -> Self {
        self.settings.max_in_flight_per_partition = n;
        self
    }

    /// Retries of a failing workflow. Default [`RetryPolicy::default`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = policy;
        self
    }

    /// What happens after the last failed attempt. Default [`FailurePolicy::Halt`].
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.settings.failure = policy;
        self
    }

    /// How often finished offsets are committed. Default 1 s.
    pub fn commit_interval(mut self, every: Duration) -> Self {
        self.settings.commit_interval = every;
        self
    }

    /// How long a revoke (and shutdown) waits for the partitions' running workflows before it
    /// commits and lets them go. Must be below `session.timeout.ms`. Default 10 s, or half the
    /// session timeout when that is shorter.
    pub fn revoke_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// The size limit of a commit's completion map: the broker's `offset.metadata.max.bytes`.
    /// Default 4,096. A partition whose map would not fit is paused until it does.
    pub fn metadata_limit(mut self, bytes: usize) -> Self {
        self.settings.metadata_limit = bytes;
        self
    }

    /// Registers `handler` as the workflow: an async function of a [`WorkflowContext`] and a
    /// [`KafkaMessage`] returning `Result<(), E>`. Checks the settings and the configuration.
    pub fn workflow<F, Fut, E>(self, handler: F) -> Result<(), DispatchError>
    where
        F: Fn(WorkflowContext, KafkaMessage) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: Into<WorkflowError> + 'static,
    {
        let s = &self.settings;
        if self.topics.is_empty() {
            return Err(DispatchError::Config("no topics given".into()));
        }
        if s.max_in_flight == 0 || s.max_in_flight_per_partition == 0 {
            return Err(DispatchError::Config(
                "max_in_flight and max_in_flight_per_partition must be at least 1".into(),
            ));
        }
        if s.retry.max_attempts == 0 {
            return Err(DispatchError::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        if s.commit_interval.is_zero() {
            return Err(DispatchError::Config(
                "commit_interval must be above zero".into(),
            ));
        }
        if s.metadata_limit < 16 {
            return Err(DispatchError::Config(
                "metadata_limit must be at least 16 bytes".into(),
            ));
        }
        if let FailurePolicy::DeadLetter { topic } = &s.failure
            && topic.is_empty()
        {
            return Err(DispatchError::Config(
                "the dead-letter topic name is empty".into(),
            ));
        }
        let Some(group) = self.config.consumer().group_id() else {
            return Err(DispatchError::Config(
                "the consumer config needs group.id".into(),
            ));
        };
        for t in &self.topics {
            crate::journal::RecordKey::check(group, t)?;
        }
        let session = self.config.consumer().session_timeout();
        let grace = self
            .grace
            .unwrap_or_else(|| Duration::from_secs(10).min(session / 2));
        if grace >= session {
            return Err(DispatchError::Config(format!(
                "revoke_grace ({grace:?}) must be below session.timeout.ms ({session:?}): \
                 the member's heartbeats wait while a revoke waits"
            )));
        }
        let mut settings = self.settings;
        settings.revoke_grace = grace;
        let config = self.config.to_builder().enable_auto_commit(false).build()?;
        let handler: Handler = Arc::new(handler::FnWorkflow(handler));
        self.app
            .registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Registered {
                config,
                topics: self.topics,
                settings,
                handler,
            });
        Ok(())
    }
}
