//! The runtime of one registered consumer: the dispatch loop, per-partition bookkeeping, the
//! rebalance listener, workflow tasks with retries, and coupled commits.
//!
//! Tasks and who owns what:
//! - the **dispatch loop** ([`run`]) takes records from the group consumer, decides skip / hold /
//!   dispatch, pauses and resumes partitions, and starts periodic commits;
//! - one **workflow task** per dispatched record waits for its predecessor (ordering), runs the
//!   attempts, writes the outcome to the journal and reports back through [`Shared::finish`];
//! - the group's **membership task** calls the [`Listener`]: `assigning` loads a partition's
//!   journal entries and completion map, `revoked` fences, waits and commits, `lost` fences.
//!
//! Everything per partition lives in [`Part`] behind one mutex, held only briefly and never
//! across an await.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior, sleep};
use tracing::Instrument;

use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::consumer::group::{
    GroupConsumer, GroupError, GroupHandle, ListenerFuture, OffsetAndMetadata, RebalanceListener,
};
use crate::consumer::{ConsumerRecord, TopicPartition};
use crate::journal::{
    Entry, FinishResult, Journal, JournalError, PartitionKey, RecordKey, StateWrite,
};
use crate::producer::{Producer, ProducerRecord};

use super::completion_map;
use super::context::ProducerSource;
use super::direct::{self, DeadLetter, WorkflowRecord, WorkflowStatus};
use super::metrics::{Halted, Metrics, MetricsSnapshot};
use super::runs::RunSet;
use super::{
    DispatchError, FailurePolicy, KafkaMessage, Ordering, Settings, WorkflowContext, WorkflowError,
};

/// The registered workflow, type-erased.
pub(crate) type Handler = Arc<
    dyn Fn(
            WorkflowContext,
            KafkaMessage,
        ) -> Pin<Box<dyn Future<Output = Result<(), WorkflowError>> + Send>>
        + Send
        + Sync,
>;

/// A consumer registered with the app, not started yet.
pub(crate) struct Registered {
    pub config: ClientConfig,
    pub topics: Vec<String>,
    pub settings: Settings,
    pub handler: Handler,
}

/// Which records must run one after another: `None` for unordered, else the chain's key.
type ChainKey = Option<Bytes>;

/// Bookkeeping of one owned partition for one assignment.
struct Part {
    pk: PartitionKey,
    /// Unique per assignment: a task of an earlier assignment never touches a later one.
    epoch: u64,
    /// Revoke in progress: nothing new starts, the final commit is still to come.
    revoking: bool,
    /// The committed offset when assigned.
    base: Option<i64>,
    /// One past the last record received.
    next: Option<i64>,
    /// Received and not finished: the commit stays at the smallest.
    pending: BTreeSet<i64>,
    /// Finished, above the commit point: completed in this assignment, or known finished when
    /// it began (from the journal and the commit's completion map). A received record found
    /// here is skipped.
    done: RunSet,
    /// Attempts made before this assignment (journal `started` entries).
    attempts: HashMap<i64, u32>,
    /// Workflow tasks alive (waiting for their turn or running).
    running: usize,
    /// Received records waiting for capacity, in offset order; the partition is paused
    /// meanwhile, so this holds one record, or a few that were already on their way.
    held: VecDeque<ConsumerRecord>,
    paused: bool,
    halted: bool,
    /// The completion map did not fit the metadata limit: hold new records until it does.
    throttled: bool,
    chains: HashMap<ChainKey, (u64, oneshot::Receiver<()>)>,
    seq: u64,
    last_commit: Option<(i64, String)>,
    /// Tasks of an earlier assignment of this partition were still running when this one
    /// began: completions must check the journal for an earlier finish of the same key.
    check_finished: bool,
    /// The journal is pruned below this offset.
    pruned_to: Option<i64>,
}

impl Part {
    /// The offset to commit: the first received record not finished, else one past the last
    /// received, else the committed offset we started from.
    fn commit_point(&self) -> Option<i64> {
        self.pending.first().copied().or(self.next).or(self.base)
    }
}

/// State shared by the dispatch loop, the workflow tasks and the listener.
pub(crate) struct Shared {
    group: Arc<str>,
    journal: Journal,
    handler: Handler,
    settings: Settings,
    metrics: Metrics,
    cluster: Cluster,
    consumer: OnceLock<GroupConsumer>,
    /// The idempotent producer for `ctx.send` and the dead-letter topic, made on first use.
    producer: Arc<tokio::sync::OnceCell<Producer>>,
    producer_source: ProducerSource,
    parts: Mutex<HashMap<TopicPartition, Part>>,
    /// Partitions whose held record, pause or resume needs the dispatch loop's attention.
    attention: Mutex<BTreeSet<TopicPartition>>,
    wake: Notify,
    /// Workflow tasks alive, all partitions.
    in_flight: AtomicUsize,
    epochs: AtomicU64,
    stopping: AtomicBool,
    fatal: watch::Sender<Option<DispatchError>>,
    /// Serializes commits, so that offsets computed under it are committed in order.
    commit_lock: tokio::sync::Mutex<()>,
    /// Where transactions re-run after a conflict take turns.
    lane: Arc<tokio::sync::Mutex<()>>,
    /// Workflow tasks still running for partitions whose assignment ended.
    orphans: Mutex<HashMap<TopicPartition, usize>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Creates the group consumer (and the dead-letter producer) and subscribes.
pub(crate) async fn start(journal: Journal, r: Registered) -> Result<Arc<Shared>, DispatchError> {
    let group: Arc<str> = r.config.consumer().group_id().unwrap_or_default().into();
    let cluster = Cluster::connect(r.config.clone()).await?;
    let producer = Arc::new(tokio::sync::OnceCell::new());
    let shared = Arc::new(Shared {
        group,
        journal,
        handler: r.handler,
        settings: r.settings,
        metrics: Metrics::default(),
        cluster,
        consumer: OnceLock::new(),
        producer: producer.clone(),
        producer_source: producer_source(producer, r.config.clone()),
        parts: Mutex::new(HashMap::new()),
        attention: Mutex::new(BTreeSet::new()),
        wake: Notify::new(),
        in_flight: AtomicUsize::new(0),
        epochs: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        fatal: watch::channel(None).0,
        commit_lock: tokio::sync::Mutex::new(()),
        orphans: Mutex::new(HashMap::new()),
        lane: Arc::default(),
    });
    let listener = Arc::new(Listener(Arc::downgrade(&shared)));
    let consumer = GroupConsumer::with_listener(r.config, listener).await?;
    let topics: Vec<&str> = r.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let _ = shared.consumer.set(consumer);
    Ok(shared)
}

/// The producer, made on first use with the consumer's client configuration.
pub(crate) fn producer_source(
    cell: Arc<tokio::sync::OnceCell<Producer>>,
    config: ClientConfig,
) -> ProducerSource {
    Arc::new(move || {
        let cell = cell.clone();
        let config = config.clone();
        Box::pin(async move {
            cell.get_or_try_init(|| Producer::new(config))
                .await
                .cloned()
                .map_err(|e| e.to_string())
        })
    })
}

/// The dispatch loop: until shutdown or a fatal error; then a clean exit (final commit, leave).
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DispatchError> {
    let Some(consumer) = shared.consumer.get() else {
        return Err(DispatchError::Config("consumer not started".into()));
    };
    let mut fatal = shared.fatal.subscribe();
    let mut tick = tokio::time::interval(shared.settings.commit_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut committing: Option<tokio::task::JoinHandle<()>> = None;
    let result = loop {
        shared.attend(consumer);
        if let Some(e) = fatal.borrow_and_update().clone() {
            break Err(e);
        }
        if *shutdown.borrow_and_update() {
            break Ok(());
        }
        tokio::select! {
            biased;
            r = shutdown.changed() => if r.is_err() { break Ok(()) },
            _ = fatal.changed() => {}
            _ = shared.wake.notified() => {}
            _ = tick.tick() => {
                if committing.as_ref().is_none_or(|t| t.is_finished()) {
                    let s = shared.clone();
                    committing = Some(tokio::spawn(async move { s.commit(None).await }));
                }
            }
            r = consumer.recv() => match r {
                Ok(record) => shared.on_record(consumer, record),
                Err(e @ GroupError::Fenced { .. }) => break Err(e.into()),
                Err(GroupError::Closed) => break Ok(()),
                Err(e) => {
                    tracing::warn!(group = %shared.group, error = %e, "consumer error");
                    sleep(Duration::from_millis(100)).await;
                }
            },
        }
    };
    // Stop starting workflows; closing the group revokes every partition, and the listener lets
    // running workflows finish (within the grace period) and commits.
    shared.stopping.store(true, AtomicOrdering::SeqCst);
    if let Some(t) = committing {
        let _ = t.await;
    }
    consumer.close().await;
    if let Some(p) = shared.producer.get() {
        p.close().await;
    }
    shared.cluster.close();
    match shared.journal.poisoned() {
        Some(e) if result.is_ok() => Err(e.into()),
        _ => result,
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, Part>> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flag(&self, tp: &TopicPartition) {
        self.attention
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tp.clone());
        self.wake.notify_one();
    }

    fn fail(&self, e: impl Into<DispatchError>) {
        let e = e.into();
        tracing::error!(group = %self.group, error = %e, "the runtime stops");
        self.fatal.send_if_modified(|f| {
            if f.is_none() {
                *f = Some(e);
                true
            } else {
                false
            }
        });
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let mut lag = Vec::new();
        if let Some(c) = self.consumer.get() {
            for tp in c.assignment() {
                if let Some(l) = c.consumer().lag(&tp.topic, tp.partition) {
                    lag.push((tp, l));
                }
            }
        }
        self.metrics.snapshot(&self.group, lag)
    }

    fn has_room(&self, part: &Part) -> bool {
        part.running < self.settings.max_in_flight_per_partition
            && self.in_flight.load(AtomicOrdering::SeqCst) < self.settings.max_in_flight
            && !part.throttled
    }

    /// A record from the consumer: skip it, hold it, or start its workflow.
    fn on_record(self: &Arc<Self>, consumer: &GroupConsumer, record: ConsumerRecord) {
        let tp = record.topic_partition();
        let mut parts = self.lock();
        let Some(part) = parts.get_mut(&tp) else {
            tracing::debug!(partition = %tp, offset = record.offset, "record of a partition not owned; dropped");
            return;
        };
        if part.revoking || part.halted || self.stopping.load(AtomicOrdering::SeqCst) {
            // Not started, so still pending (or never counted): the commit cannot pass it.
            return;
        }
        let offset = record.offset;
        if part.base.is_some_and(|b| offset < b) {
            // A record of an earlier assignment that was on its way out of the fetcher: this
            // assignment starts at `base`.
            return;
        }
        if part.next.is_some_and(|n| offset < n) {
            // Delivered again within the assignment (the fetcher reset its position): only
            // records never seen before may start.
            if part.pending.contains(&offset)
                || part.done.contains(offset)
                || part.commit_point().is_some_and(|c| offset < c)
            {
                return;
            }
        } else {
            part.next = Some(offset + 1);
        }
        if part.done.contains(offset) {
            Metrics::add(&self.metrics.skipped, 1);
            return;
        }
        part.pending.insert(offset);
        Metrics::add(&self.metrics.in_flight, 1);
        if !part.held.is_empty() || !self.has_room(part) {
            // The partition is paused until its held records run.
            part.held.push_back(record);
            if !part.paused {
                part.paused = true;
                consumer
                    .consumer()
                    .pause(&[(tp.topic.as_ref(), tp.partition)]);
            }
            drop(parts);
            self.flag(&tp);
            return;
        }
        self.dispatch(&tp, part, record);
    }

    /// Releases held records that have room, and applies pauses and resumes.
    fn attend(self: &Arc<Self>, consumer: &GroupConsumer) {
        let flagged =
            std::mem::take(&mut *self.attention.lock().unwrap_or_else(|p| p.into_inner()));
        if flagged.is_empty() {
            return;
        }
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        let mut parts = self.lock();
        for tp in flagged {
            let Some(part) = parts.get_mut(&tp) else {
                continue;
            };
            while !part.revoking && !part.halted && self.has_room(part) {
                let Some(record) = part.held.pop_front() else {
                    break;
                };
                self.dispatch(&tp, part, record);
            }
            let want_paused = !part.held.is_empty() || part.halted;
            if want_paused != part.paused {
                part.paused = want_paused;
                if want_paused {
                    pause.push(tp.clone());
                } else {
                    resume.push(tp.clone());
                }
            }
            if !part.held.is_empty() && !part.halted {
                // Still waiting: look again when capacity frees up.
                self.attention
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(tp);
            }
        }
        drop(parts);
        let as_refs = |v: &[TopicPartition]| -> Vec<(String, i32)> {
            v.iter()
                .map(|tp| (tp.topic.to_string(), tp.partition))
                .collect()
        };
        if !pause.is_empty() {
            let v = as_refs(&pause);
            let r: Vec<(&str, i32)> = v.iter().map(|(t, p)| (t.as_str(), *p)).collect();
            consumer.consumer().pause(&r);
        }
        if !resume.is_empty() {
            let v = as_refs(&resume);
            let r: Vec<(&str, i32)> = v.iter().map(|(t, p)| (t.as_str(), *p)).collect();
            consumer.consumer().resume(&r);
        }
    }

    /// Starts the workflow task of `record` (its offset is already pending).
    fn dispatch(self: &Arc<Self>, tp: &TopicPartition, part: &mut Part, record: ConsumerRecord) {
        let offset = record.offset;
        let chain: Option<ChainKey> = match self.settings.ordering {
            Ordering::None => None,
            Ordering::Partition => Some(None),
            Ordering::Key => Some(Some(record.key.clone().unwrap_or_default())),
        };
        let (done_tx, done_rx) = oneshot::channel();
        let mut link = None;
        if let Some(c) = chain {
            part.seq += 1;
            let prev = part.chains.insert(c.clone(), (part.seq, done_rx));
            link = Some((c, part.seq, prev.map(|(_, rx)| rx)));
        }
        part.running += 1;
        self.in_flight.fetch_add(1, AtomicOrdering::SeqCst);
        let task = Task {
            tp: tp.clone(),
            epoch: part.epoch,
            key: Arc::new(part.pk.record(offset)),
            record: Arc::new(record),
            prior_attempts: part.attempts.remove(&offset).unwrap_or(0),
            check: part.check_finished,
            link,
            done_tx,
        };
        tokio::spawn(self.clone().run_task(task));
    }

    /// Whether assignment `epoch` of `tp` is still the current one. A task of an ended one
    /// completes with a journal check: a later assignment may have run its record meanwhile.
    fn epoch_current(&self, tp: &TopicPartition, epoch: u64) -> bool {
        self.lock().get(tp).is_some_and(|p| p.epoch == epoch)
    }

    /// Whether the workflow of a record of `tp` (assignment `epoch`) may start or retry.
    fn may_run(&self, tp: &TopicPartition, epoch: u64) -> bool {
        if self.stopping.load(AtomicOrdering::SeqCst) || self.fatal.borrow().is_some() {
            return false;
        }
        self.lock()
            .get(tp)
            .is_some_and(|p| p.epoch == epoch && !p.revoking && !p.halted)
    }

    /// A workflow task ended: `finished` if its record is durably finished.
    fn finish(&self, t: &TaskEnd, finished: bool) {
        self.in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
        let mut parts = self.lock();
        if let Some(part) = parts.get_mut(&t.tp)
            && part.epoch == t.epoch
        {
            part.running -= 1;
            if finished {
                part.pending.remove(&t.offset);
                part.done.insert(t.offset);
                self.metrics.in_flight.fetch_sub(1, AtomicOrdering::Relaxed);
            }
            if let Some((chain, seq)) = &t.chain
                && part.chains.get(chain).is_some_and(|(s, _)| s == seq)
            {
                part.chains.remove(chain);
            }
            if !part.held.is_empty() {
                drop(parts);
                self.flag(&t.tp);
                return;
            }
        } else {
            drop(parts);
            let mut orphans = self.orphans.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = orphans.get_mut(&t.tp) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    orphans.remove(&t.tp);
                }
            }
        }
        // Capacity freed: held records (of any partition) may go.
        let waiting = !self
            .attention
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if waiting {
            self.wake.notify_one();
        }
    }

    fn halt(&self, t: &TaskEnd, error: &str) {
        let mut parts = self.lock();
        if let Some(part) = parts.get_mut(&t.tp)
            && part.epoch == t.epoch
        {
            part.halted = true;
            part.held.clear();
        }
        drop(parts);
        tracing::error!(group = %self.group, partition = %t.tp, offset = t.offset, error, "every attempt failed; partition halted");
        self.metrics
            .halted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Halted {
                partition: t.tp.clone(),
                offset: t.offset,
                error: error.to_string(),
            });
        self.flag(&t.tp);
    }

    async fn run_task(self: Arc<Self>, mut t: Task) {
        let end = TaskEnd {
            tp: t.tp.clone(),
            epoch: t.epoch,
            offset: t.record.offset,
            chain: t.link.as_ref().map(|(c, s, _)| (c.clone(), *s)),
        };
        if let Some(prev) = t.link.as_mut().and_then(|(_, _, prev)| prev.take()) {
            // The predecessor signals only when it finished durably; a dropped sender means it
            // did not (halted, fenced, shutdown), and then this one must not start either.
            if prev.await.is_err() {
                self.finish(&end, false);
                return;
            }
        }
        if !self.may_run(&t.tp, t.epoch) {
            self.finish(&end, false);
            return;
        }
        let span = tracing::info_span!("workflow", key = %t.key);
        let outcome = self.attempts(&t).instrument(span).await;
        match outcome {
            Outcome::Finished => {
                let _ = t.done_tx.send(());
                let waited = now_ms().saturating_sub(t.record.timestamp);
                self.metrics.latency.record(waited.max(0) as u64);
                self.finish(&end, true);
            }
            Outcome::Halt(error) => {
                self.halt(&end, &error);
                self.finish(&end, false);
            }
            Outcome::Abandoned => self.finish(&end, false),
        }
    }

    /// Runs the attempts of one record and records the outcome.
    async fn attempts(&self, t: &Task) -> Outcome {
        let msg = KafkaMessage::new(t.record.clone(), t.key.clone());
        let retry = self.settings.retry;
        let mut backoff = retry.initial_backoff;
        let mut attempt = t.prior_attempts;
        let mut failures = 0;
        loop {
            attempt += 1;
            let started = if t.check {
                // Another assignment's task may have finished this key: never overwrite that.
                self.journal.started_unless_finished(&t.key, attempt)
            } else {
                self.journal.started(&t.key, attempt)
            };
            let ctx = match started.and_then(|()| {
                WorkflowContext::load(
                    t.key.clone(),
                    attempt,
                    self.journal.clone(),
                    Some(self.producer_source.clone()),
                    self.lane.clone(),
                    // Steps exist only if the workflow ran before: in an earlier process (a
                    // started entry), an earlier attempt here, or an ended assignment's task.
                    attempt == 1 && !t.check,
                )
            }) {
                Ok(ctx) => ctx,
                Err(e) => {
                    self.fail(e);
                    return Outcome::Abandoned;
                }
            };
            let fut = (self.handler)(ctx.clone(), msg.clone());
            let result = CatchUnwind(fut).await;
            Metrics::add(&self.metrics.conflicts, u64::from(ctx.conflicts()));
            let error = match result {
                Ok(Ok(())) => {
                    let entry = Entry::Completed {
                        attempts: attempt,
                        at_ms: now_ms(),
                    };
                    return self.record_finish(t, entry).await;
                }
                Ok(Err(e)) => e.to_string(),
                Err(panic) => format!("panicked: {}", panic_text(panic)),
            };
            Metrics::add(&self.metrics.failed_attempts, 1);
            failures += 1;
            tracing::warn!(attempt, error, "workflow attempt failed");
            if failures >= retry.max_attempts {
                return match &self.settings.failure {
                    FailurePolicy::Halt => Outcome::Halt(error),
                    FailurePolicy::DeadLetter { topic } => {
                        self.dead_letter(t, topic, attempt, error).await
                    }
                };
            }
            sleep(backoff).await;
            backoff = (backoff * 2).min(retry.max_backoff);
            if !self.may_run(&t.tp, t.epoch) {
                return Outcome::Abandoned;
            }
            Metrics::add(&self.metrics.retried, 1);
        }
    }

    /// Writes the finishing entry and waits until it is durable.
    async fn record_finish(&self, t: &Task, entry: Entry) -> Outcome {
        self.record_finish_with(t, entry, Vec::new()).await
    }

    /// [`record_finish`](Self::record_finish) with state writes committed atomically with it.
    async fn record_finish_with(&self, t: &Task, entry: Entry, writes: Vec<StateWrite>) -> Outcome {
        let key = &t.key;
        // A task of an ended assignment checks the journal: a later one may have finished it.
        let check = t.check || !self.epoch_current(&t.tp, t.epoch);
        let dead = matches!(entry, Entry::DeadLettered { .. });
        match self
            .journal
            .complete_with(key, entry, check, Vec::new(), writes)
            .await
        {
            Ok(FinishResult::Written) if dead => Metrics::add(&self.metrics.dead_lettered, 1),
            Ok(FinishResult::Written) => Metrics::add(&self.metrics.processed, 1),
            Ok(FinishResult::AlreadyFinished) => Metrics::add(&self.metrics.suppressed, 1),
            Ok(FinishResult::Conflict) => {
                tracing::error!(%key, "internal error: a completion without reads conflicted");
                return Outcome::Abandoned;
            }
            Err(e) => {
                self.fail(e);
                return Outcome::Abandoned;
            }
        }
        Outcome::Finished
    }

    /// Copies the record to the dead-letter topic (retrying until it is acknowledged or the
    /// partition goes), then records it dead-lettered.
    async fn dead_letter(&self, t: &Task, topic: &str, attempts: u32, error: String) -> Outcome {
        let producer = match (self.producer_source)().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "no producer for the dead-letter topic");
                return Outcome::Halt(error);
            }
        };
        let r = &t.record;
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut out = ProducerRecord::new(topic, r.value.clone().unwrap_or_default());
            if let Some(k) = &r.key {
                out = out.key(k.clone());
            }
            for h in &r.headers {
                out = out.header(h.key.clone(), h.value.clone().unwrap_or_default());
            }
            out = out
                .header("kafka-once.error", error.clone())
                .header("kafka-once.attempts", attempts.to_string())
                .header("kafka-once.topic", r.topic.to_string())
                .header("kafka-once.partition", r.partition.to_string())
                .header("kafka-once.offset", r.offset.to_string())
                .header("kafka-once.key", t.key.to_string());
            let sent = match producer.send(out).await {
                Ok(delivery) => delivery.await.map(|_| ()),
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, topic, "dead-letter copy failed; retrying");
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if !self.may_run(&t.tp, t.epoch) {
                        return Outcome::Abandoned;
                    }
                }
            }
        }
        // The record goes into the workflow records too, dead-lettered, with the message as its
        // input: `workflows retry` makes it pending, and the app runs this consumer's workflow on
        // it again (see `KafkaOnce::recover_workflows`).
        let id = t.key.to_string();
        let record = WorkflowRecord {
            version: 1,
            status: WorkflowStatus::DeadLettered,
            input: serde_json::to_value(DeadLetter::of(&t.record, &t.key)).unwrap_or_default(),
            output: None,
            error: Some(error.clone()),
            attempts,
            workflow: Some(direct::kafka_workflow_name(&t.key.group)),
        };
        let write = match direct::record_write(&self.journal, &id, &record) {
            Ok(w) => w,
            Err(e) => {
                self.fail(e);
                return Outcome::Abandoned;
            }
        };
        let entry = Entry::DeadLettered {
            attempts,
            at_ms: now_ms(),
            error,
        };
        self.record_finish_with(t, entry, vec![write]).await
    }

    /// Commits the commit point and completion map of every owned partition (or of `only`)
    /// whose values changed since their last commit; prunes the journal below what the broker
    /// confirmed.
    pub(crate) async fn commit(&self, only: Option<&[TopicPartition]>) {
        let Some(consumer) = self.consumer.get() else {
            return;
        };
        let _serial = self.commit_lock.lock().await;
        let (offsets, keys) = self.collect_commits(only);
        if offsets.is_empty() {
            return;
        }
        match consumer.handle().commit_offsets(&offsets).await {
            Ok(()) => {
                Metrics::add(&self.metrics.commits, 1);
                *self
                    .metrics
                    .last_commit
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(SystemTime::now());
                let mut prunes = Vec::new();
                {
                    let mut parts = self.lock();
                    for (tp, (epoch, pk)) in &keys {
                        if let (Some(part), Some(o)) = (parts.get_mut(tp), offsets.get(tp))
                            && part.epoch == *epoch
                        {
                            part.last_commit = Some((o.offset, o.metadata.clone()));
                            prunes.push((tp.clone(), pk.clone(), part.pruned_to, o.offset));
                            part.pruned_to = Some(o.offset);
                        }
                    }
                }
                for (tp, pk, from, to) in prunes {
                    if let Err(e) = self.journal.prune_range(&pk, from, to).await {
                        tracing::warn!(error = %e, partition = %tp, "journal prune failed");
                    }
                }
            }
            Err(e) => {
                Metrics::add(&self.metrics.commit_failures, 1);
                tracing::warn!(group = %self.group, error = %e, "commit failed; counts as not committed");
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn collect_commits(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> (
        BTreeMap<TopicPartition, OffsetAndMetadata>,
        HashMap<TopicPartition, (u64, PartitionKey)>,
    ) {
        let mut offsets = BTreeMap::new();
        let mut keys = HashMap::new();
        let mut unthrottled = Vec::new();
        let mut parts = self.lock();
        for (tp, part) in parts.iter_mut() {
            if only.is_some_and(|o| !o.contains(tp)) {
                continue;
            }
            let Some(point) = part.commit_point() else {
                continue;
            };
            part.done.remove_below(point);
            let (metadata, fits) =
                completion_map::encode_runs(point, part.done.runs(), self.settings.metadata_limit);
            if part.throttled && fits {
                unthrottled.push(tp.clone());
            }
            part.throttled = !fits;
            if part
                .last_commit
                .as_ref()
                .is_some_and(|(o, m)| *o == point && *m == metadata)
            {
                continue;
            }
            offsets.insert(
                tp.clone(),
                OffsetAndMetadata {
                    offset: point,
                    leader_epoch: None,
                    metadata,
                },
            );
            keys.insert(tp.clone(), (part.epoch, part.pk.clone()));
        }
        drop(parts);
        for tp in unthrottled {
            self.flag(&tp);
        }
        (offsets, keys)
    }

    /// A partition's running workflows, summed over `tps`.
    fn running(&self, tps: &[TopicPartition]) -> usize {
        let parts = self.lock();
        tps.iter()
            .filter_map(|tp| parts.get(tp))
            .map(|p| p.running)
            .sum()
    }

    async fn topic_id(&self, topic: &str) -> Result<uuid::Uuid, DispatchError> {
        let mut backoff = Duration::from_millis(50);
        for _ in 0..10 {
            match self.cluster.topic(topic).await {
                Ok(Some(t)) if !t.id.is_nil() => return Ok(t.id),
                Ok(_) => {}
                Err(e) if !e.is_retriable() => return Err(e.into()),
                Err(_) => {}
            }
            let _ = self.cluster.refresh_topics(&[topic]).await;
            sleep(backoff).await;
            backoff *= 2;
        }
        Err(DispatchError::Config(format!(
            "topic {topic:?} has no topic id: the journal key needs one (Kafka 2.8 or later)"
        )))
    }

    /// Builds the bookkeeping of newly assigned partitions.
    async fn assigning(&self, partitions: &[(TopicPartition, Option<OffsetAndMetadata>)]) {
        for (tp, committed) in partitions {
            let topic_id = match self.topic_id(&tp.topic).await {
                Ok(id) => id,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            };
            let pk = PartitionKey {
                group: self.group.clone(),
                topic: tp.topic.clone(),
                topic_id,
                partition: tp.partition,
            };
            let base = committed.as_ref().map(|c| c.offset).filter(|o| *o >= 0);
            let map_done = match (base, committed) {
                (Some(b), Some(c)) => completion_map::decode(b, &c.metadata).unwrap_or_else(|e| {
                    tracing::warn!(partition = %tp, error = %e, "ignoring the commit's completion map");
                    BTreeMap::new()
                }),
                _ => BTreeMap::new(),
            };
            let entries = match self.journal.partition_entries(&pk, base.unwrap_or(0)) {
                Ok(e) => e,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            };
            let mut journal_done = HashSet::new();
            let mut attempts = HashMap::new();
            for (offset, entry) in entries {
                if entry.is_finished() {
                    journal_done.insert(offset);
                } else {
                    attempts.insert(offset, entry.attempts());
                }
            }
            tracing::info!(
                partition = %tp,
                committed = ?base,
                finished_in_journal = journal_done.len(),
                finished_in_map = map_done.len(),
                started = attempts.len(),
                "partition assigned"
            );
            let check_finished = self
                .orphans
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(tp);
            // What is known finished above the commit goes into the next commit's map right
            // away: a commit made before those records are received again must not drop it.
            let mut done = RunSet::default();
            for (&start, &end) in &map_done {
                done.insert_range(start, end);
            }
            for &o in &journal_done {
                done.insert(o);
            }
            let part = Part {
                pk: pk.clone(),
                epoch: self.epochs.fetch_add(1, AtomicOrdering::SeqCst),
                revoking: false,
                base,
                next: None,
                pending: BTreeSet::new(),
                done,
                attempts,
                running: 0,
                held: VecDeque::new(),
                paused: false,
                halted: false,
                throttled: false,
                chains: HashMap::new(),
                seq: 0,
                last_commit: committed.as_ref().map(|c| (c.offset, c.metadata.clone())),
                check_finished,
                pruned_to: base,
            };
            let old = self.lock().insert(tp.clone(), part);
            if let Some(old) = old {
                tracing::debug!(partition = %tp, epoch = old.epoch, "replaced an old assignment");
                self.orphan(tp, &old);
                if let Some(p) = self.lock().get_mut(tp) {
                    p.check_finished = true;
                }
            }
            if let Some(b) = base
                && let Err(e) = self.journal.prune(&pk, b).await
            {
                tracing::warn!(error = %e, partition = %tp, "journal prune failed");
            }
        }
    }

    /// Fences `tps`, lets their running workflows finish (within the grace period), commits.
    async fn revoked(&self, tps: &[TopicPartition]) {
        {
            let mut parts = self.lock();
            for tp in tps {
                if let Some(p) = parts.get_mut(tp) {
                    p.revoking = true;
                    p.held.clear();
                }
            }
        }
        let deadline = Instant::now() + self.settings.revoke_grace;
        loop {
            let running = self.running(tps);
            if running == 0 {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    running,
                    "revoke grace passed with workflows still running; they finish into the journal but their offsets are not committed"
                );
                break;
            }
            sleep(Duration::from_millis(5)).await;
        }
        self.commit(Some(tps)).await;
        self.remove(tps);
    }

    async fn lost(&self, tps: &[TopicPartition]) {
        // After a periodic commit in flight, so that nothing is committed for them afterwards.
        let _serial = self.commit_lock.lock().await;
        self.remove(tps);
    }

    fn remove(&self, tps: &[TopicPartition]) {
        let removed: Vec<(TopicPartition, Part)> = {
            let mut parts = self.lock();
            tps.iter()
                .filter_map(|tp| parts.remove(tp).map(|p| (tp.clone(), p)))
                .collect()
        };
        for (tp, part) in removed {
            self.orphan(&tp, &part);
        }
    }

    /// Counts the still-running tasks of an assignment that ended.
    fn orphan(&self, tp: &TopicPartition, part: &Part) {
        if part.running > 0 {
            *self
                .orphans
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(tp.clone())
                .or_default() += part.running;
        }
    }
}

struct Task {
    tp: TopicPartition,
    epoch: u64,
    key: Arc<RecordKey>,
    record: Arc<ConsumerRecord>,
    prior_attempts: u32,
    check: bool,
    link: Option<(ChainKey, u64, Option<oneshot::Receiver<()>>)>,
    done_tx: oneshot::Sender<()>,
}

struct TaskEnd {
    tp: TopicPartition,
    epoch: u64,
    offset: i64,
    chain: Option<(ChainKey, u64)>,
}

enum Outcome {
    Finished,
    Halt(String),
    Abandoned,
}

/// Polls a workflow future, turning a panic into an `Err` with its payload (the future is
/// dropped afterwards and never polled again, so unwind safety is not a concern).
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

/// Runs `fut` to completion, turning a panic into an `Err` with its payload.
pub(crate) async fn catch_unwind<F: Future>(
    fut: F,
) -> Result<F::Output, Box<dyn std::any::Any + Send>> {
    CatchUnwind(Box::pin(fut)).await
}

pub(crate) fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}

/// The group's rebalance listener, holding the runtime weakly (the runtime owns the consumer).
struct Listener(Weak<Shared>);

impl RebalanceListener for Listener {
    fn assigning<'a>(
        &'a self,
        _group: &'a GroupHandle,
        partitions: &'a [(TopicPartition, Option<OffsetAndMetadata>)],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                s.assigning(partitions).await;
            }
        })
    }

    fn revoked<'a>(
        &'a self,
        _group: &'a GroupHandle,
        partitions: &'a [(TopicPartition, Option<i64>)],
    ) -> ListenerFuture<'a> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                let tps: Vec<TopicPartition> =
                    partitions.iter().map(|(tp, _)| tp.clone()).collect();
                s.revoked(&tps).await;
            }
        })
    }

    fn lost<'a>(&'a self, partitions: &'a [TopicPartition]) -> ListenerFuture<'a> {
        Box::pin(async move {
            if let Some(s) = self.0.upgrade() {
                s.lost(partitions).await;
            }
        })
    }
}

impl From<JournalError> for Outcome {
    fn from(_: JournalError) -> Self {
        Outcome::Abandoned
    }
}
