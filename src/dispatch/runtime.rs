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
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
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
    Entry, FinishResult, Journal, JournalError, PartitionKey, PartitionRuns, StateWrite,
};
use crate::producer::{Producer, ProducerRecord};

use super::completion_map;
use super::context::{ConflictSource, ContextEnv, ProducerSource};
use super::direct::{self, DeadLetter, WorkflowRecord, WorkflowStatus};
use super::handler::{Handler, Slot, SlotRun};
use super::message::{KeyRef, Records};
use super::metrics::{Halted, Metrics, MetricsSnapshot};
use super::runs::RunSet;
use super::{
    DispatchError, FailurePolicy, KafkaMessage, Ordering, Settings, WorkflowContext, WorkflowError,
};
use crate::consumer::fast_hash::FastMap;

/// A consumer registered with the app, not started yet.
pub(crate) struct Registered {
    pub config: ClientConfig,
    pub topics: Vec<String>,
    pub settings: Settings,
    pub handler: Handler,
}

/// Which records must run one after another: `None` for unordered, else the chain's key.
type ChainKey = Option<Bytes>;

/// Most records started as one unit (one task, one started and one completed run in the
/// journal).
const MAX_UNIT: usize = 1024;

/// The room a partition with work running waits for before it starts more (see
/// [`Shared::may_start`]).
const MIN_ROOM: usize = 512;

/// How long a unit in `Ordering::Partition` holds first-attempt successes before sending their
/// completed run (a slow workflow must not keep the records before it from committing).
const UNIT_FLUSH_AFTER: Duration = Duration::from_millis(20);

/// Records waiting for room (all partitions) at which the dispatch loop stops taking more.
const MAX_HELD: usize = 2 * MAX_RECEIVED;

/// Most records the dispatch loop takes from the consumer at once.
const MAX_RECEIVED: usize = 2048;

/// Splits `records` into units of at most `MAX_UNIT`.
fn chunks(mut records: Vec<ConsumerRecord>) -> Vec<Vec<ConsumerRecord>> {
    let mut out = Vec::new();
    while records.len() > MAX_UNIT {
        let rest = records.split_off(MAX_UNIT);
        out.push(std::mem::replace(&mut records, rest));
    }
    if !records.is_empty() {
        out.push(records);
    }
    out
}

/// Waits for the unit before to be durable; never, if there is nothing to wait for.
async fn durable(
    prev: &mut Option<oneshot::Receiver<()>>,
) -> Result<(), oneshot::error::RecvError> {
    match prev {
        Some(rx) => rx.await,
        None => std::future::pending().await,
    }
}

/// The next request for a turn; never, without a channel.
async fn recv_turn(
    turns: &mut Option<tokio::sync::mpsc::UnboundedReceiver<(oneshot::Sender<()>, bool)>>,
) -> Option<(oneshot::Sender<()>, bool)> {
    match turns {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The latency metric of a record finished at `now` (ms): from its timestamp (the broker's
/// append time under `LogAppendTime`), never negative.
fn wait_ms(now: i64, record: &ConsumerRecord) -> u64 {
    now.saturating_sub(record.timestamp).max(0) as u64
}

/// What a unit's journal write of first-attempt successes reports back.
enum Written {
    /// Durably completed: the items `idxs`, whose offsets are `runs` (`[first, end)`).
    Runs {
        idxs: Vec<usize>,
        runs: Vec<(i64, i64)>,
    },
    /// Each item's outcome (written one by one, or not durable).
    Each(Vec<(usize, Outcome)>),
}

/// What becomes of a received record.
enum Admit {
    /// Start it (pending, counted running).
    Start,
    /// Already done, not for this assignment, or not now (revoking, halted, stopping).
    Skipped,
    /// Waits in `held` for room; the partition is paused.
    Held,
}

/// Bookkeeping of one owned partition for one assignment.
struct Part {
    pk: Arc<PartitionKey>,
    /// Unique per assignment: a task of an earlier assignment never touches a later one.
    epoch: u64,
    /// Revoke in progress: nothing new starts, the final commit is still to come.
    revoking: bool,
    /// Open while this assignment may start workflows: closed (for good) when it is revoking,
    /// halted or ended. Tasks check it before each record without taking the partition lock.
    open: Arc<AtomicBool>,
    /// The committed offset when assigned.
    base: Option<i64>,
    /// One past the last record received.
    next: Option<i64>,
    /// Received and not finished: the commit stays at the smallest.
    pending: RunSet,
    /// Finished, above the commit point: completed in this assignment, or known finished when
    /// it began (from the journal and the commit's completion map). A received record found
    /// here is skipped.
    done: RunSet,
    /// Attempts made before this assignment (journal `started` entries).
    attempts: HashMap<i64, u32>,
    /// Started runs from before this assignment: `(first, end, attempts)`.
    started_runs: Vec<(i64, i64, u32)>,
    /// Workflow tasks alive (waiting for their turn or running).
    running: usize,
    /// Received records waiting for capacity, in offset order; the partition is paused
    /// meanwhile, so this holds one record, or a few that were already on their way.
    held: VecDeque<ConsumerRecord>,
    paused: bool,
    halted: bool,
    /// The completion map did not fit the metadata limit: hold new records until it does.
    throttled: bool,
    chains: HashMap<ChainKey, (u64, Link)>,
    seq: u64,
    last_commit: Option<(i64, String)>,
    /// Tasks of an earlier assignment of this partition were still running when this one
    /// began: completions must check the journal for an earlier finish of the same key.
    check_finished: bool,
    /// The journal is pruned below this offset.
    pruned_to: Option<i64>,
}

impl Part {
    /// Whether some record of the partition has attempts from before this assignment.
    fn ran_before(&self) -> bool {
        !self.attempts.is_empty() || !self.started_runs.is_empty()
    }

    /// Attempts the record at `offset` made before this assignment: its own started entry, or
    /// the started runs that reach it.
    fn prior_attempts(&self, offset: i64) -> u32 {
        let own = self.attempts.get(&offset).copied().unwrap_or(0);
        let runs = self
            .started_runs
            .iter()
            .filter(|(first, end, _)| (*first..*end).contains(&offset))
            .map(|(_, _, a)| *a)
            .max()
            .unwrap_or(0);
        own.max(runs)
    }

    /// The offset to commit: the first received record not finished, else one past the last
    /// received, else the committed offset we started from.
    fn commit_point(&self) -> Option<i64> {
        self.pending.first().or(self.next).or(self.base)
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
    parts: Mutex<FastMap<TopicPartition, Part>>,
    /// Partitions whose held record, pause or resume needs the dispatch loop's attention.
    attention: Mutex<BTreeSet<TopicPartition>>,
    wake: Notify,
    /// Workflow tasks alive, all partitions.
    in_flight: AtomicUsize,
    /// Records in the partitions' `held` queues, all partitions.
    held: AtomicUsize,
    epochs: AtomicU64,
    stopping: AtomicBool,
    /// Set with `fatal` (read per record without the watch's lock).
    failed: AtomicBool,
    fatal: watch::Sender<Option<DispatchError>>,
    /// Serializes commits, so that offsets computed under it are committed in order.
    commit_lock: tokio::sync::Mutex<()>,
    /// What the workflow contexts share (journal, producer, the lane where transactions re-run
    /// after a conflict take turns).
    ctx_env: Arc<ContextEnv>,
    /// Workflow tasks still running for partitions whose assignment ended.
    orphans: Mutex<HashMap<TopicPartition, usize>>,
    /// Records of finished units, dropped by the dispatch loop (see [`retire`](Self::retire)).
    spent: Mutex<Vec<Vec<ConsumerRecord>>>,
}

/// Units whose records wait in [`Shared::spent`] at most; beyond, a task drops its own.
const MAX_SPENT: usize = 256;

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
    let producer_source = producer_source(producer.clone(), r.config.clone());
    let ctx_env = Arc::new(ContextEnv {
        journal: journal.clone(),
        producer: Some(producer_source.clone()),
        lane: Arc::default(),
    });
    let shared = Arc::new(Shared {
        group,
        journal,
        handler: r.handler,
        settings: r.settings,
        metrics: Metrics::default(),
        cluster,
        consumer: OnceLock::new(),
        producer,
        producer_source,
        parts: Mutex::new(FastMap::default()),
        attention: Mutex::new(BTreeSet::new()),
        wake: Notify::new(),
        in_flight: AtomicUsize::new(0),
        held: AtomicUsize::new(0),
        epochs: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        fatal: watch::channel(None).0,
        commit_lock: tokio::sync::Mutex::new(()),
        orphans: Mutex::new(HashMap::new()),
        spent: Mutex::new(Vec::new()),
        ctx_env,
    });
    let listener = Arc::new(Listener(Arc::downgrade(&shared)));
    // Records of aborted transactions never run: the group consumer reads committed data only,
    // whatever `isolation.level` says (as Kafka Streams does under exactly-once). The lookups of
    // `ctx.send` keep the configured level.
    // The fetcher hands out a partition's records in runs of up to `max.poll.records` before it
    // turns to another partition, and a run is the most the dispatch loop can start as one
    // unit. The runtime has no poll loop for the setting to bound (records go to tasks, not to a
    // caller), so its runs are at least a whole unit.
    let max_poll = r.config.consumer().max_poll_records().max(MAX_UNIT);
    let config = r
        .config
        .to_builder()
        .isolation_level(crate::config::IsolationLevel::ReadCommitted)
        .max_poll_records(max_poll)
        .build()?;
    let consumer = GroupConsumer::with_listener(config, listener).await?;
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
    shutdown: watch::Receiver<bool>,
) -> Result<(), DispatchError> {
    // The group and client id tell several consumers in one process apart in logs.
    let span = tracing::debug_span!(
        "dispatch",
        group = %shared.group,
        client = %shared.cluster.config().client_id()
    );
    dispatch_loop(shared, shutdown).instrument(span).await
}

async fn dispatch_loop(
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
    let mut received = Vec::with_capacity(MAX_RECEIVED);
    let result = loop {
        shared.drop_spent();
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
                tracing::trace!(
                    in_flight = shared.in_flight.load(AtomicOrdering::SeqCst),
                    held = shared.held.load(AtomicOrdering::SeqCst),
                    "commit tick"
                );
                // A failed journal write stops the runtime, whichever write it was.
                if let Some(e) = shared.journal.poisoned() {
                    shared.fail(e);
                    continue;
                }
                shared.note_positions(consumer);
                if committing.as_ref().is_none_or(|t| t.is_finished()) {
                    let s = shared.clone();
                    committing = Some(tokio::spawn(async move { s.commit(None).await }));
                }
            }
            r = consumer.recv(), if shared.receiving() => match r {
                Ok(record) => {
                    // Take what else is ready, so that a partition's records start as a unit.
                    received.push(record);
                    let error = consumer.try_recv_into(&mut received, MAX_RECEIVED - 1);
                    shared.on_records(consumer, &mut received);
                    match error {
                        Some(e @ GroupError::Fenced { .. }) => break Err(e.into()),
                        Some(GroupError::Closed) => break Ok(()),
                        Some(e) => tracing::warn!(group = %shared.group, error = %e, "consumer error"),
                        None => {}
                    }
                }
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
    shared.drop_spent();
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
    fn lock(&self) -> std::sync::MutexGuard<'_, FastMap<TopicPartition, Part>> {
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
        self.failed.store(true, AtomicOrdering::SeqCst);
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
        // Received and not finished: pending in the owned partitions, plus the tasks of ended
        // assignments still running.
        let pending: u64 = self.lock().values().map(|p| p.pending.len()).sum();
        let orphaned: usize = self
            .orphans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum();
        let mut snapshot = self
            .metrics
            .snapshot(&self.group, pending + orphaned as u64);
        if let Some(c) = self.consumer.get() {
            snapshot.assigned = c.assignment();
            snapshot.lag = snapshot
                .assigned
                .iter()
                .filter_map(|tp| Some((tp.clone(), c.consumer().lag(&tp.topic, tp.partition)?)))
                .collect();
            snapshot.paused = c.consumer().paused();
        }
        snapshot
    }

    fn has_room(&self, part: &Part, uncounted: usize) -> bool {
        self.room(part, uncounted) > 0
    }

    /// How many more records of `part` may start now, with `uncounted` records started and not
    /// yet added to the total in flight (see [`count_started`](Self::count_started)).
    fn room(&self, part: &Part, uncounted: usize) -> usize {
        if part.throttled {
            return 0;
        }
        let partition = self
            .settings
            .max_in_flight_per_partition
            .saturating_sub(part.running);
        let total = self
            .settings
            .max_in_flight
            .saturating_sub(self.in_flight.load(AtomicOrdering::SeqCst) + uncounted);
        partition.min(total)
    }

    /// Adds the records started by the dispatch loop since the last call to the total in flight:
    /// once per unit, before it is spawned (so that its end never subtracts them first), instead
    /// of once per record on a counter the workers update too.
    fn count_started(&self, started: &mut usize) {
        if *started > 0 {
            self.in_flight
                .fetch_add(std::mem::take(started), AtomicOrdering::SeqCst);
        }
    }

    /// Whether `wanted` records of `part` should start now: there is room for all of them, or
    /// for some while nothing of the partition runs. A partition with work running waits for
    /// room for `MIN_ROOM` records (half a unit) rather than starting a sliver, which would keep
    /// its units small for good (each unit's end frees exactly the room the next one gets).
    fn may_start(&self, part: &Part, wanted: usize, uncounted: usize) -> bool {
        let room = self.room(part, uncounted);
        room > 0 && (room >= wanted.min(MIN_ROOM) || part.running == 0)
    }

    /// Moves each partition's `next` up to the consumer's position, which passes transaction
    /// markers and aborted records as well as the records returned: with nothing pending, the
    /// commit then reaches past a trailing marker instead of stopping one short of the end.
    /// Called from the dispatch loop only, between receives: every record below the position
    /// has been returned and admitted by then.
    fn note_positions(&self, consumer: &GroupConsumer) {
        // Positions read under the partition lock (lock order: partitions, then the fetcher's),
        // so that they belong to the assignments in `parts`: a partition assigned anew meanwhile
        // gets its entry before the fetcher gets the partition.
        let mut parts = self.lock();
        let positions = consumer.consumer().positions();
        for (tp, position) in positions {
            if let Some(part) = parts.get_mut(&tp)
                && part.next.or(part.base).is_none_or(|n| n < position)
            {
                part.next = Some(position);
            }
        }
    }

    /// Records from the consumer, in the order received: each is skipped, held, or started.
    /// Records of one partition that arrive one after another start together, as one unit (at
    /// most `MAX_UNIT`).
    fn on_records(self: &Arc<Self>, consumer: &GroupConsumer, records: &mut Vec<ConsumerRecord>) {
        let mut parts = self.lock();
        let mut flagged: Vec<TopicPartition> = Vec::new();
        let mut spawns = Vec::new();
        // Records are moved once, from here to their unit (or the held queue): each is looked at
        // in place first (they are large, and were copied several times a record before).
        let mut records = records.drain(..);
        // Started and not yet counted in flight: counted before each unit is spawned.
        let mut started = 0;
        while let Some(head) = records.as_slice().first() {
            let tp = head.topic_partition();
            let Some(part) = parts.get_mut(&tp) else {
                tracing::debug!(partition = %tp, offset = head.offset, "record of a partition not owned; dropped");
                records.next();
                continue;
            };
            // The records of `tp` that follow one another here are decided on in place; a run
            // of admitted ones is then moved at once into its unit (moved one by one through an
            // `Option`, each was copied three times), the others to the held queue or dropped.
            let same = |r: &ConsumerRecord| tp.is(&r.topic, r.partition);
            // Admitted records at the front of `records`, not moved yet.
            let mut admitted = 0;
            loop {
                let decision = records
                    .as_slice()
                    .get(admitted)
                    .filter(|r| same(r))
                    .map(|r| self.admit(consumer, &tp, part, r, admitted > 0, &mut started));
                if matches!(decision, Some(Admit::Start)) {
                    admitted += 1;
                    if admitted < MAX_UNIT {
                        continue;
                    }
                }
                if admitted > 0 {
                    let mut unit = Vec::with_capacity(admitted);
                    unit.extend(records.by_ref().take(admitted));
                    admitted = 0;
                    self.count_started(&mut started);
                    self.dispatch_unit(&tp, part, unit, &mut spawns);
                }
                match decision {
                    None => break,
                    Some(Admit::Start) => {}
                    Some(Admit::Skipped) => records.by_ref().take(1).for_each(drop),
                    Some(Admit::Held) => {
                        part.held.extend(records.by_ref().take(1));
                        if flagged.last() != Some(&tp) {
                            flagged.push(tp.clone());
                        }
                    }
                }
            }
        }
        drop(parts);
        self.spawn_all(spawns);
        for tp in flagged {
            self.flag(&tp);
        }
    }

    /// Decides about one received record of an owned partition: skip it, hold it (the caller
    /// puts it in `part.held`; the partition is paused), or let it start (then it is pending and
    /// counted running).
    fn admit(
        &self,
        consumer: &GroupConsumer,
        tp: &TopicPartition,
        part: &mut Part,
        record: &ConsumerRecord,
        continuing: bool,
        started: &mut usize,
    ) -> Admit {
        if part.revoking || part.halted || self.stopping.load(AtomicOrdering::SeqCst) {
            // Not started, so still pending (or never counted): the commit cannot pass it.
            return Admit::Skipped;
        }
        let offset = record.offset;
        if part.base.is_some_and(|b| offset < b) {
            // A record of an earlier assignment that was on its way out of the fetcher: this
            // assignment starts at `base`.
            return Admit::Skipped;
        }
        if part.next.is_some_and(|n| offset < n) {
            // Delivered again within the assignment (the fetcher reset its position): only
            // records never seen before may start.
            if part.pending.contains(offset)
                || part.done.contains(offset)
                || part.commit_point().is_some_and(|c| offset < c)
            {
                return Admit::Skipped;
            }
        } else {
            part.next = Some(offset + 1);
        }
        if part.done.contains(offset) {
            Metrics::add(&self.metrics.skipped, 1);
            return Admit::Skipped;
        }
        part.pending.insert(offset);
        let room = if continuing {
            self.has_room(part, *started)
        } else {
            self.may_start(part, MAX_UNIT, *started)
        };
        if !part.held.is_empty() || !room {
            // The partition is paused until its held records run (the caller holds the record).
            self.held.fetch_add(1, AtomicOrdering::SeqCst);
            if !part.paused {
                part.paused = true;
                consumer
                    .consumer()
                    .pause(&[(tp.topic.as_ref(), tp.partition)]);
            }
            return Admit::Held;
        }
        part.running += 1;
        *started += 1;
        Admit::Start
    }

    /// A prune that failed because the journal failed (a write or fsync error poisons it) stops
    /// the runtime like any failed journal write; else it is left for the next commit.
    fn prune_failed(&self, tp: &TopicPartition, e: JournalError) {
        if self.journal.poisoned().is_some() {
            self.fail(e);
        } else {
            tracing::warn!(error = %e, partition = %tp, "journal prune failed");
        }
    }

    /// Drops the held records of `part` (they were never started: still pending, never committed
    /// past).
    fn clear_held(&self, part: &mut Part) {
        self.held.fetch_sub(part.held.len(), AtomicOrdering::SeqCst);
        part.held.clear();
    }

    /// Whether the dispatch loop takes more records from the consumer: not while the records
    /// held for room (all partitions) reach `MAX_HELD`, so that memory stays within the
    /// in-flight bound and a little more however many partitions wait (the rest waits in the
    /// fetcher, bounded in bytes). Held records always move on or are dropped (room frees as
    /// workflows end; a halt or revoke drops them), and each move wakes the loop.
    fn receiving(&self) -> bool {
        self.held.load(AtomicOrdering::SeqCst) < MAX_HELD
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
        let mut spawns = Vec::new();
        let mut parts = self.lock();
        for tp in flagged {
            let Some(part) = parts.get_mut(&tp) else {
                continue;
            };
            let mut released = Vec::new();
            if !part.revoking && !part.halted && self.may_start(part, part.held.len(), 0) {
                let n = self.room(part, 0).min(part.held.len());
                released.extend(part.held.drain(..n));
                self.held.fetch_sub(n, AtomicOrdering::SeqCst);
                part.running += n;
                self.in_flight.fetch_add(n, AtomicOrdering::SeqCst);
            }
            for chunk in chunks(released) {
                self.dispatch_unit(&tp, part, chunk, &mut spawns);
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
                tracing::trace!(
                    partition = %tp,
                    held = part.held.len(),
                    running = part.running,
                    in_flight = self.in_flight.load(AtomicOrdering::SeqCst),
                    "held records wait for room"
                );
                // Still waiting: look again when capacity frees up.
                self.attention
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(tp);
            }
        }
        drop(parts);
        self.spawn_all(spawns);
        let as_refs = |v: &[TopicPartition]| -> Vec<(String, i32)> {
            v.iter()
                .map(|tp| (tp.topic.to_string(), tp.partition))
                .collect()
        };
        if !pause.is_empty() || !resume.is_empty() {
            tracing::trace!(?pause, ?resume, "backpressure");
        }
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

    /// Starts the workflow task of `record` (its offset is already pending and counted running).
    fn dispatch(
        self: &Arc<Self>,
        tp: &TopicPartition,
        part: &mut Part,
        record: ConsumerRecord,
        spawns: &mut Vec<Task>,
    ) {
        let chain: Option<ChainKey> = match self.settings.ordering {
            Ordering::None => None,
            Ordering::Partition => Some(None),
            Ordering::Key => Some(Some(record.key.clone().unwrap_or_default())),
        };
        self.queue_unit(tp, part, chain, vec![record], spawns);
    }

    /// Starts the records of `tp` received one after another (offsets already pending and counted
    /// running) as one unit: one task and one journal entry for the lot (see `run_unit`), unless
    /// something needs the one-record path (key ordering, a record that ran before, a journal
    /// check).
    fn dispatch_unit(
        self: &Arc<Self>,
        tp: &TopicPartition,
        part: &mut Part,
        records: Vec<ConsumerRecord>,
        spawns: &mut Vec<Task>,
    ) {
        let batchable = records.len() > 1
            && self.settings.ordering != Ordering::Key
            && !part.check_finished
            && (!part.ran_before() || records.iter().all(|r| part.prior_attempts(r.offset) == 0));
        if !batchable {
            for record in records {
                self.dispatch(tp, part, record, spawns);
            }
            return;
        }
        // A unit's runs cover the offsets between its records: none of those may be finished
        // already (skipped while the unit's records waited), or completed runs would overlap.
        // Where a new group begins: at offsets that go back, or past a finished one. Usually
        // nowhere, and the records go on as they are.
        let starts: Vec<usize> = (1..records.len())
            .filter(|&i| {
                let (prev, offset) = (records[i - 1].offset, records[i].offset);
                offset <= prev || part.done.intersects(prev + 1, offset)
            })
            .collect();
        let mut records = records;
        let mut groups = Vec::with_capacity(starts.len() + 1);
        for &i in starts.iter().rev() {
            groups.push(records.split_off(i));
        }
        groups.push(records);
        for mut group in groups.into_iter().rev() {
            if group.len() == 1 {
                let record = group.pop().expect("one record");
                self.dispatch(tp, part, record, spawns);
            } else {
                let chain = (self.settings.ordering == Ordering::Partition).then_some(None);
                self.queue_unit(tp, part, chain, group, spawns);
            }
        }
    }

    /// Makes the task of `records` (linked into `chain`, if ordered) and queues it in `spawns`
    /// for [`spawn_all`](Self::spawn_all).
    fn queue_unit(
        self: &Arc<Self>,
        tp: &TopicPartition,
        part: &mut Part,
        chain: Option<ChainKey>,
        records: Vec<ConsumerRecord>,
        spawns: &mut Vec<Task>,
    ) {
        let (done_tx, durable) = oneshot::channel();
        let (ran_tx, ran) = oneshot::channel();
        let mut link = None;
        if let Some(c) = chain {
            part.seq += 1;
            let prev = part
                .chains
                .insert(c.clone(), (part.seq, Link { ran, durable }));
            link = Some((c, part.seq, prev.map(|(_, l)| l)));
        }
        // The items are made in the task (on a worker; their records are dropped by the dispatch
        // loop, see `retire`).
        let prior = if part.ran_before() {
            records
                .iter()
                .map(|r| part.prior_attempts(r.offset))
                .collect()
        } else {
            Vec::new()
        };
        let task = Task {
            unit: Unit {
                tp: tp.clone(),
                pk: part.pk.clone(),
                epoch: part.epoch,
                open: part.open.clone(),
                check: part.check_finished,
            },
            records,
            prior,
            link,
            ran_tx,
            done_tx,
        };
        spawns.push(task);
    }

    /// Spawns the tasks [`queue_unit`](Self::queue_unit) made, after the partition lock is
    /// released (a spawn may wake a worker thread: a system call the workers finishing units,
    /// which take the lock, would wait behind).
    fn spawn_all(self: &Arc<Self>, spawns: Vec<Task>) {
        for task in spawns {
            tokio::spawn(self.clone().run_task(task));
        }
    }

    /// Whether assignment `epoch` of `tp` is still the current one. A task of an ended one
    /// completes with a journal check: a later assignment may have run its record meanwhile.
    fn epoch_current(&self, tp: &TopicPartition, epoch: u64) -> bool {
        self.lock().get(tp).is_some_and(|p| p.epoch == epoch)
    }

    /// Whether the workflow of a record of `unit` may start or retry: the runtime goes on and
    /// the unit's assignment is current, not revoking and not halted.
    fn may_run(&self, unit: &Unit) -> bool {
        !self.stopping.load(AtomicOrdering::SeqCst)
            && !self.failed.load(AtomicOrdering::SeqCst)
            && unit.open.load(AtomicOrdering::SeqCst)
    }

    /// Records of a workflow task ended: `finished` lists whether each one is durably finished.
    fn finish(&self, t: &TaskEnd, finished: &[(i64, bool)]) {
        // By stretches of consecutive offsets (a unit's are), not one by one.
        let mut done: Vec<i64> = Vec::with_capacity(finished.len());
        done.extend(finished.iter().filter(|f| f.1).map(|f| f.0));
        done.sort_unstable();
        let mut runs = Vec::new();
        let mut i = 0;
        while i < done.len() {
            let start = done[i];
            let mut end = start + 1;
            i += 1;
            while i < done.len() && done[i] <= end {
                end = end.max(done[i] + 1);
                i += 1;
            }
            runs.push((start, end));
        }
        self.finish_runs(t, finished.len(), &runs);
    }

    /// `n` records of a workflow task ended, of which those in `runs` (`[first, end)` offsets)
    /// are durably finished.
    fn finish_runs(&self, t: &TaskEnd, n: usize, runs: &[(i64, i64)]) {
        self.in_flight.fetch_sub(n, AtomicOrdering::SeqCst);
        let mut parts = self.lock();
        if let Some(part) = parts.get_mut(&t.tp)
            && part.epoch == t.epoch
        {
            part.running -= n;
            for &(start, end) in runs {
                part.pending.remove_range(start, end);
                part.done.insert_range(start, end);
            }
            if !part.held.is_empty() {
                drop(parts);
                self.flag(&t.tp);
                return;
            }
        } else {
            // Still under the partition lock: see `orphan`.
            let mut orphans = self.orphans.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(left) = orphans.get_mut(&t.tp) {
                *left = left.saturating_sub(n);
                if *left == 0 {
                    orphans.remove(&t.tp);
                }
            }
            drop(orphans);
            drop(parts);
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

    /// A task ended: its link is no longer the one the partition's next task waits for (unless
    /// a later task replaced it already).
    fn unchain(&self, t: &TaskEnd) {
        let Some((chain, seq)) = &t.chain else {
            return;
        };
        let mut parts = self.lock();
        if let Some(part) = parts.get_mut(&t.tp)
            && part.epoch == t.epoch
            && part.chains.get(chain).is_some_and(|(s, _)| s == seq)
        {
            part.chains.remove(chain);
        }
    }

    fn halt(&self, t: &TaskEnd, offset: i64, error: &str) {
        let mut parts = self.lock();
        if let Some(part) = parts.get_mut(&t.tp)
            && part.epoch == t.epoch
        {
            part.halted = true;
            part.open.store(false, AtomicOrdering::SeqCst);
            self.clear_held(part);
        }
        drop(parts);
        tracing::error!(group = %self.group, partition = %t.tp, offset, error, "every attempt failed; partition halted");
        self.metrics
            .halted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Halted {
                partition: t.tp.clone(),
                offset,
                error: error.to_string(),
            });
        self.flag(&t.tp);
    }

    async fn run_task(self: Arc<Self>, mut t: Task) {
        let prior = std::mem::take(&mut t.prior);
        // A unit's records ask for their turns here (see `run_unit`); only in
        // `Ordering::Partition` do they take turns.
        let ordered = self.settings.ordering == Ordering::Partition;
        let (turn, turns) = if t.records.len() > 1 && ordered {
            let (turn, turns) = tokio::sync::mpsc::unbounded_channel();
            (Some(turn), Some(turns))
        } else {
            (None, None)
        };
        let all = Records::new(
            &t.unit.pk,
            std::mem::take(&mut t.records),
            &self.ctx_env,
            turn,
            ordered,
        );
        let items = Items { all, prior };
        let end = TaskEnd {
            tp: t.unit.tp.clone(),
            epoch: t.unit.epoch,
            chain: t.link.as_ref().map(|(c, s, _)| (c.clone(), *s)),
        };
        let abandon_all = |items: &Items| -> Vec<(usize, Outcome)> {
            (0..items.len()).map(|i| (i, Outcome::Abandoned)).collect()
        };
        // In `Ordering::Partition` a unit of several records starts once the one before it ran
        // every record (its completions queued to the journal, in order before any of this
        // unit's); its first step waits until they are durable (see `run_unit`). A single
        // record (and `Ordering::Key`) waits until the one before finished durably.
        let mut prev_durable = None;
        if let Some(prev) = t.link.as_mut().and_then(|(_, _, prev)| prev.take()) {
            // A dropped sender means the predecessor did not get that far (halted, fenced,
            // shutdown, a journal failure), and then this one must not start either.
            let pipelined = items.len() > 1 && self.settings.ordering == Ordering::Partition;
            let ready = if pipelined {
                prev_durable = Some(prev.durable);
                prev.ran.await.is_ok()
            } else {
                prev.ran.await.is_ok() && prev.durable.await.is_ok()
            };
            if !ready {
                self.unchain(&end);
                self.settle(&end, &items, abandon_all(&items));
                self.retire(items);
                return;
            }
        }
        if !self.may_run(&t.unit) {
            self.unchain(&end);
            self.settle(&end, &items, abandon_all(&items));
            self.retire(items);
            return;
        }
        let mut ran_tx = Some(t.ran_tx);
        let mut all_finished = if items.len() == 1 {
            let item = items.at(0);
            let span = tracing::info_span!("workflow", key = %item.key);
            let outcome = self.attempts(&t.unit, item, None).instrument(span).await;
            self.settle(&end, &items, vec![(0, outcome)])
        } else {
            self.run_unit(&t.unit, &items, &end, turns, &mut prev_durable, &mut ran_tx)
                .await
        };
        // Durable only once everything before is: the next unit's steps wait for this.
        if let Some(prev) = prev_durable {
            all_finished &= prev.await.is_ok();
        }
        self.unchain(&end);
        if all_finished {
            if let Some(ran) = ran_tx {
                let _ = ran.send(());
            }
            let _ = t.done_tx.send(());
        }
        self.retire(items);
    }

    /// Hands the records of a finished task back to the dispatch loop, which drops them.
    ///
    /// A record's key and value are slices of the fetch response, counted in one atomic shared
    /// by every record of the response: the dispatch loop increments it as it decodes, and a
    /// record dropped here on a worker would decrement it from another core, the cache line
    /// bouncing between the two for every record (~10 % of the runtime's CPU with a no-op
    /// workflow). Dropped on the decoding loop, the line stays put. Once the runtime stops (the
    /// loop no longer drains them), a task drops its own. While the loop idles they wait for its
    /// next turn (at most `MAX_SPENT` units, within the in-flight bound they were part of).
    fn retire(&self, items: Items) {
        let Some(records) = Records::into_records(items.all) else {
            return;
        };
        if self.stopping.load(AtomicOrdering::SeqCst) {
            return;
        }
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if spent.len() < MAX_SPENT {
            spent.push(records);
        }
    }

    /// Drops the records of finished tasks (see [`retire`](Self::retire)).
    fn drop_spent(&self) {
        let spent = std::mem::take(&mut *self.spent.lock().unwrap_or_else(|p| p.into_inner()));
        drop(spent);
    }

    /// Reports what a unit's journal write came to (see [`settle`](Self::settle)).
    fn settle_written(&self, end: &TaskEnd, items: &Items, written: Written) -> bool {
        match written {
            Written::Each(results) => self.settle(end, items, results),
            Written::Runs { idxs, runs } => {
                let now = now_ms();
                let waits = idxs.iter().map(|&i| wait_ms(now, items.at(i).key.record()));
                self.metrics.latency.record_all(waits);
                self.finish_runs(end, idxs.len(), &runs);
                true
            }
        }
    }

    /// Reports outcomes of a task's items (by index): latency of the finished ones, halts, and
    /// the bookkeeping of [`finish`](Self::finish). Returns whether every one finished.
    fn settle(&self, end: &TaskEnd, items: &Items, results: Vec<(usize, Outcome)>) -> bool {
        let now = now_ms();
        let mut all = true;
        let mut finished = Vec::with_capacity(results.len());
        let mut waits = Vec::with_capacity(results.len());
        for (i, outcome) in results {
            let record = items.at(i).key.record();
            match outcome {
                Outcome::Finished => {
                    waits.push(wait_ms(now, record));
                    finished.push((record.offset, true));
                }
                Outcome::Halt(error) => {
                    self.halt(end, record.offset, &error);
                    finished.push((record.offset, false));
                    all = false;
                }
                Outcome::Abandoned => {
                    finished.push((record.offset, false));
                    all = false;
                }
            }
        }
        self.metrics.latency.record_all(waits);
        self.finish(end, &finished);
        all
    }

    /// Runs a unit of several records of one partition (received one after another, none run
    /// before): one started run in the journal for all, then each record's first attempt. First-
    /// attempt successes are journaled as completed runs (one per stretch of consecutive items),
    /// sent as they accumulate and reported finished once durable; a record whose first attempt
    /// fails goes on alone (its retries and its finish are journaled per record). In
    /// `Ordering::Partition` the records run one after another and a halt stops the rest; else
    /// they run concurrently. Returns whether every record finished.
    async fn run_unit(
        &self,
        unit: &Unit,
        items: &Items,
        end: &TaskEnd,
        turns: Option<tokio::sync::mpsc::UnboundedReceiver<(oneshot::Sender<()>, bool)>>,
        prev_durable: &mut Option<oneshot::Receiver<()>>,
        ran_tx: &mut Option<oneshot::Sender<()>>,
    ) -> bool {
        let first = items.at(0).key.record().offset;
        let last = items.at(items.len() - 1).key.record().offset;
        let pk = &unit.pk;
        if let Err(e) = self.journal.started_run(pk, first, last + 1, 1) {
            self.fail(e);
            let all = (0..items.len()).map(|i| (i, Outcome::Abandoned)).collect();
            self.settle(end, items, all);
            return false;
        }
        let mut all = true;
        let mut writes = FuturesUnordered::new();
        // Where the first attempts are polled, reused while they finish at once.
        let mut slot: Option<Box<dyn Slot>> = None;
        let mut unflushed: Vec<usize> = Vec::with_capacity(items.len());
        let mut oldest: Option<Instant> = None;
        // Sends the completions of the first-attempt successes in `unflushed`: as completed runs
        // (one per stretch of consecutive items) while the assignment is current, decided and
        // queued under the partition lock so that no later assignment of the partition can come
        // between; else one by one with the journal check, as a task of an ended assignment
        // finishes (a later assignment may have run them).
        let flush = |unflushed: &mut Vec<usize>, writes: &mut FuturesUnordered<_>| {
            if unflushed.is_empty() {
                return;
            }
            unflushed.sort_unstable();
            // The next ones get as much room (grown by doubling they were reallocated often).
            let room = unflushed.len();
            let idxs = std::mem::replace(unflushed, Vec::with_capacity(room));
            // One run per stretch of consecutive items; only a stretch's ends are read (the
            // records between are not touched again: a cache miss each, on this core).
            let mut runs: Vec<(i64, i64)> = Vec::new();
            let mut k = 0;
            while k < idxs.len() {
                let start = k;
                while k + 1 < idxs.len() && idxs[k + 1] == idxs[k] + 1 {
                    k += 1;
                }
                let first = items.at(idxs[start]).key.record().offset;
                let last = items.at(idxs[k]).key.record().offset;
                runs.push((first, last + 1));
                k += 1;
            }
            let ack = {
                let parts = self.lock();
                let current = parts.get(&unit.tp).is_some_and(|p| p.epoch == unit.epoch);
                current.then(|| self.journal.complete_runs(pk, &runs, 1, now_ms()))
            };
            writes.push(async move {
                let Some(ack) = ack else {
                    let mut out = Vec::with_capacity(idxs.len());
                    for i in idxs {
                        let entry = Entry::Completed {
                            attempts: 1,
                            at_ms: now_ms(),
                        };
                        out.push((i, self.record_finish(unit, items.at(i), entry).await));
                    }
                    return Written::Each(out);
                };
                match ack.await {
                    Ok(()) => {
                        Metrics::add(&self.metrics.processed, idxs.len() as u64);
                        Written::Runs { idxs, runs }
                    }
                    Err(e) => {
                        self.fail(e);
                        Written::Each(idxs.into_iter().map(|i| (i, Outcome::Abandoned)).collect())
                    }
                }
            });
        };
        if self.settings.ordering == Ordering::Partition {
            let mut stop = false;
            // A record's first step, transaction, send or sleep waits here until the
            // completions of the records before it are durable: record n+1 may run while n's
            // completion is on its way to the disk, but nothing of it becomes durable (or runs
            // a step's effect) before n's completion.
            // (The channel's sender is in the items' `Records`; `None` only for one record.)
            let mut turns = turns;
            let mut waiting: Option<oneshot::Sender<()>> = None;
            let mut broken = false;
            for (i, item) in items.iter().enumerate() {
                if broken {
                    all = false;
                    stop = true;
                }
                if stop || !self.may_run(unit) {
                    self.settle(end, items, vec![(i, Outcome::Abandoned)]);
                    all = false;
                    stop = true;
                    continue;
                }
                let first = match self.try_first(item, true, &mut slot) {
                    Ok(first) => first,
                    Err(attempt) => {
                        let attempt = attempt.finish(self, item);
                        tokio::pin!(attempt);
                        // While it runs: send what waited long enough, report what became
                        // durable, and give it its turn once everything before it is.
                        loop {
                            let due = oldest.map(|t| t + UNIT_FLUSH_AFTER);
                            tokio::select! {
                                r = &mut attempt => break r,
                                Some((waiter, needs_durable)) = recv_turn(&mut turns) => {
                                    flush(&mut unflushed, &mut writes);
                                    oldest = None;
                                    // A transaction needs the completions before it queued,
                                    // which they are if the assignment is still current now
                                    // (then every flush of it so far, this unit's and the unit
                                    // before's, queued its completions at once; the journal's
                                    // writer keeps that order).
                                    let queued = !needs_durable
                                        && self.epoch_current(&unit.tp, unit.epoch);
                                    if queued || (writes.is_empty() && prev_durable.is_none()) {
                                        let _ = waiter.send(());
                                    } else {
                                        waiting = Some(waiter);
                                    }
                                }
                                r = durable(prev_durable) => {
                                    *prev_durable = None;
                                    if r.is_err() {
                                        // The unit before did not finish durably: its answer
                                        // dropped, the step fails, and this unit stops.
                                        waiting = None;
                                        broken = true;
                                    } else if writes.is_empty()
                                        && let Some(waiter) = waiting.take()
                                    {
                                        let _ = waiter.send(());
                                    }
                                }
                                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                                    flush(&mut unflushed, &mut writes);
                                    oldest = None;
                                }
                                Some(r) = writes.next(), if !writes.is_empty() => {
                                    all &= self.settle_written(end, items, r);
                                    if writes.is_empty()
                                        && prev_durable.is_none()
                                        && let Some(waiter) = waiting.take()
                                    {
                                        let _ = waiter.send(());
                                    }
                                }
                            }
                        }
                    }
                };
                match first {
                    First::Succeeded => {
                        unflushed.push(i);
                        // The clock is read when the first success waits and then every 16th
                        // (records that finish at once take microseconds; a slow one that awaits
                        // is covered by the timer above).
                        let since = *oldest.get_or_insert_with(Instant::now);
                        if unflushed.len().is_multiple_of(16) && since.elapsed() >= UNIT_FLUSH_AFTER
                        {
                            flush(&mut unflushed, &mut writes);
                            oldest = None;
                        }
                    }
                    First::Failed(error) => {
                        // The successes before it become durable before its retries may
                        // finish it (in offset order, also across a crash).
                        flush(&mut unflushed, &mut writes);
                        oldest = None;
                        while let Some(r) = writes.next().await {
                            all &= self.settle_written(end, items, r);
                        }
                        if let Some(prev) = prev_durable.take() {
                            all &= prev.await.is_ok();
                        }
                        if !all {
                            self.settle(end, items, vec![(i, Outcome::Abandoned)]);
                            stop = true;
                            continue;
                        }
                        let span = tracing::info_span!("workflow", key = %item.key);
                        let outcome = self
                            .attempts(unit, item, Some(error))
                            .instrument(span)
                            .await;
                        stop = !matches!(outcome, Outcome::Finished);
                        all &= self.settle(end, items, vec![(i, outcome)]);
                    }
                }
            }
            if !stop && !broken && all {
                // Every record ran: the next unit may start (its completions queue behind these).
                flush(&mut unflushed, &mut writes);
                if let Some(ran) = ran_tx.take() {
                    let _ = ran.send(());
                }
            }
        } else {
            // Each record's attempt begins now; those that finish at once are counted here, the
            // others run on concurrently.
            let mut running = FuturesUnordered::new();
            for (i, item) in items.iter().enumerate() {
                let begun = match self.try_first(item, false, &mut slot) {
                    Ok(First::Succeeded) => {
                        unflushed.push(i);
                        continue;
                    }
                    begun => begun,
                };
                running.push(async move {
                    let first = match begun {
                        Ok(first) => first,
                        Err(attempt) => attempt.finish(self, item).await,
                    };
                    let outcome = match first {
                        First::Succeeded => None,
                        First::Failed(error) => {
                            let span = tracing::info_span!("workflow", key = %item.key);
                            let retried = self.attempts(unit, item, Some(error));
                            Some(retried.instrument(span).await)
                        }
                    };
                    (i, outcome)
                });
            }
            flush(&mut unflushed, &mut writes);
            let done =
                |i: usize, outcome: Option<Outcome>, unflushed: &mut Vec<usize>| match outcome {
                    None => {
                        unflushed.push(i);
                        true
                    }
                    Some(o) => self.settle(end, items, vec![(i, o)]),
                };
            loop {
                tokio::select! {
                    Some((i, outcome)) = running.next(), if !running.is_empty() => {
                        all &= done(i, outcome, &mut unflushed);
                        while let Some(Some((i, outcome))) = running.next().now_or_never() {
                            all &= done(i, outcome, &mut unflushed);
                        }
                        flush(&mut unflushed, &mut writes);
                    }
                    Some(r) = writes.next(), if !writes.is_empty() => {
                        all &= self.settle_written(end, items, r);
                    }
                    else => break,
                }
            }
        }
        flush(&mut unflushed, &mut writes);
        while let Some(r) = writes.next().await {
            all &= self.settle_written(end, items, r);
        }
        all
    }

    /// Begins the first attempt of a record in a unit (whose start the unit journaled) and polls
    /// it once: a workflow that finishes without waiting (most do, or their awaits are ready)
    /// is done here, with no task, timer or queue node of its own. Otherwise the attempt is
    /// returned to be awaited ([`Attempt::finish`]). Its retries are up to the caller.
    ///
    /// `slot` is where the unit's runs are polled (see [`Slot`]): taken by a run that waits,
    /// made when missing, and dropped after a panic.
    fn try_first(
        &self,
        item: Item<'_>,
        takes_turn: bool,
        slot: &mut Option<Box<dyn Slot>>,
    ) -> Result<First, Attempt> {
        let span = tracing::info_span!("workflow", key = %item.key);
        let ctx = WorkflowContext::first_in_unit(item.key.cell(), takes_turn);
        // The context goes to the workflow; its conflict count is read afterwards through this
        // (no third handle on the records per record: each is an atomic increment and decrement).
        let conflicts = ctx.conflict_source();
        let msg = KafkaMessage::new(item.key.cell());
        let mut run = slot.take().unwrap_or_else(|| self.handler.clone().slot());
        let polled = {
            let _entered = span.enter();
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run.begin(ctx, msg, &mut cx)
            }))
        };
        match polled {
            Ok(std::task::Poll::Ready(result)) => {
                *slot = Some(run);
                Ok(self.first_outcome(conflicts.count(item.key), Ok(result)))
            }
            Ok(std::task::Poll::Pending) => Err(Attempt {
                conflicts,
                future: CatchUnwind(SlotRun(run)),
                span,
            }),
            // The handler panicked, before it returned its future or in its first poll.
            Err(panic) => Ok(self.first_outcome(conflicts.count(item.key), Err(panic))),
        }
    }

    fn first_outcome(
        &self,
        conflicts: u32,
        result: Result<Result<(), WorkflowError>, Box<dyn std::any::Any + Send>>,
    ) -> First {
        if conflicts > 0 {
            Metrics::add(&self.metrics.conflicts, u64::from(conflicts));
        }
        match result {
            Ok(Ok(())) => First::Succeeded,
            Ok(Err(e)) => First::Failed(e.to_string()),
            Err(panic) => First::Failed(format!("panicked: {}", panic_text(panic))),
        }
    }

    /// Runs the attempts of one record and records the outcome. `failed` is the error of a first
    /// attempt made already (by a unit, which journaled its start).
    async fn attempts(&self, unit: &Unit, item: Item<'_>, failed: Option<String>) -> Outcome {
        let msg = KafkaMessage::new(item.key.cell());
        let retry = &self.settings.retry;
        let mut backoff = retry.initial_backoff;
        let mut attempt = item.prior_attempts;
        let mut failures = 0;
        // The error of the attempt just made, if it failed (a unit's first attempt, to begin).
        let mut failed = failed;
        if failed.is_some() {
            attempt = attempt.max(1);
        }
        loop {
            if let Some(error) = failed.take() {
                if let Some(error) = self.after_failure(attempt, &mut failures, error) {
                    return self.give_up(unit, item, attempt, error).await;
                }
                sleep(backoff).await;
                backoff = (backoff * 2).min(retry.max_backoff);
                if !self.may_run(unit) {
                    return Outcome::Abandoned;
                }
                Metrics::add(&self.metrics.retried, 1);
            }
            attempt += 1;
            let started = if unit.check {
                // Another assignment's task may have finished this key: never overwrite that.
                self.journal
                    .started_unless_finished(item.key.get(), attempt)
            } else {
                self.journal.started(item.key.get(), attempt)
            };
            let ctx = match started.and_then(|()| {
                WorkflowContext::load_in(
                    item.key.cell(),
                    attempt,
                    // Steps exist only if the workflow ran before: in an earlier process (a
                    // started entry), an earlier attempt here, or an ended assignment's task.
                    attempt == 1 && !unit.check,
                    // Retries run after the records before are durable (see `run_unit`).
                    false,
                )
            }) {
                Ok(ctx) => ctx,
                Err(e) => {
                    self.fail(e);
                    return Outcome::Abandoned;
                }
            };
            let fut = self.handler.call(ctx.clone(), msg.clone());
            let result = CatchUnwind(fut).await;
            Metrics::add(&self.metrics.conflicts, u64::from(ctx.conflicts()));
            failed = Some(match result {
                Ok(Ok(())) => {
                    let entry = Entry::Completed {
                        attempts: attempt,
                        at_ms: now_ms(),
                    };
                    return self.record_finish(unit, item, entry).await;
                }
                Ok(Err(e)) => e.to_string(),
                Err(panic) => format!("panicked: {}", panic_text(panic)),
            });
        }
    }

    /// Counts a failed attempt; returns the error when it was the last one the retry policy
    /// allows.
    fn after_failure(&self, attempt: u32, failures: &mut u32, error: String) -> Option<String> {
        Metrics::add(&self.metrics.failed_attempts, 1);
        *failures += 1;
        tracing::warn!(attempt, error, "workflow attempt failed");
        (*failures >= self.settings.retry.max_attempts).then_some(error)
    }

    /// Applies the failure policy to a record whose every attempt failed.
    async fn give_up(&self, unit: &Unit, item: Item<'_>, attempts: u32, error: String) -> Outcome {
        match &self.settings.failure {
            FailurePolicy::Halt => Outcome::Halt(error),
            FailurePolicy::DeadLetter { topic } => {
                self.dead_letter(unit, item, topic, attempts, error).await
            }
        }
    }

    /// Writes the finishing entry and waits until it is durable.
    async fn record_finish(&self, unit: &Unit, item: Item<'_>, entry: Entry) -> Outcome {
        self.record_finish_with(unit, item, entry, Vec::new()).await
    }

    /// [`record_finish`](Self::record_finish) with state writes committed atomically with it.
    async fn record_finish_with(
        &self,
        unit: &Unit,
        item: Item<'_>,
        entry: Entry,
        writes: Vec<StateWrite>,
    ) -> Outcome {
        let key = item.key.get();
        // A task of an ended assignment checks the journal: a later one may have finished it.
        let check = unit.check || !self.epoch_current(&unit.tp, unit.epoch);
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
    async fn dead_letter(
        &self,
        unit: &Unit,
        item: Item<'_>,
        topic: &str,
        attempts: u32,
        error: String,
    ) -> Outcome {
        let producer = match (self.producer_source)().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "no producer for the dead-letter topic");
                return Outcome::Halt(error);
            }
        };
        let r = item.key.record();
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
                .header("kafka-once.key", item.key.to_string());
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
                    if !self.may_run(unit) {
                        return Outcome::Abandoned;
                    }
                }
            }
        }
        // The record goes into the workflow records too, dead-lettered, with the message as its
        // input: `workflows retry` makes it pending, and the app runs this consumer's workflow on
        // it again (see `KafkaOnce::recover_workflows`).
        let id = item.key.to_string();
        let record = WorkflowRecord {
            version: 1,
            status: WorkflowStatus::DeadLettered,
            input: serde_json::to_value(DeadLetter::of(item.key.record(), item.key.get()))
                .unwrap_or_default(),
            output: None,
            error: Some(error.clone()),
            attempts,
            workflow: Some(direct::kafka_workflow_name(&item.key.get().group)),
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
        self.record_finish_with(unit, item, entry, vec![write])
            .await
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
                        self.prune_failed(&tp, e);
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
            keys.insert(tp.clone(), (part.epoch, (*part.pk).clone()));
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
            let PartitionRuns {
                completed: completed_runs,
                started: started_runs,
            } = match self.journal.partition_runs(&pk, base.unwrap_or(0)) {
                Ok(r) => r,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            };
            // What fjall showed may include writes still on their way to the disk (a batch is
            // readable once in fjall's memtable, before its fsync), such as the completions of a
            // task of an earlier assignment of this partition that is finishing now. Finished
            // offsets read here get committed, so they must be durable: a sync after the reads
            // makes them so, or fails (and the runtime stops, committing none of them). (No
            // sync before this process wrote: then the reads saw only what was recovered.)
            if let Err(e) = self.journal.sync_reads().await {
                self.fail(e);
                return;
            }
            let mut journal_done = HashSet::new();
            let mut attempts = HashMap::new();
            for (offset, entry) in entries {
                if entry.is_finished() {
                    journal_done.insert(offset);
                } else {
                    attempts.insert(offset, entry.attempts());
                }
            }
            // A record in a started run and in no completed one started (at least) that often
            // (looked up when it is dispatched: a run may span a long offset gap).
            let started_runs: Vec<(i64, i64, u32)> = started_runs
                .iter()
                .map(|(first, run)| (*first, run.end, run.attempts))
                .collect();
            tracing::info!(
                partition = %tp,
                committed = ?base,
                finished_in_journal = journal_done.len(),
                finished_in_runs = completed_runs.len(),
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
            for (first, run) in &completed_runs {
                done.insert_range(*first, run.end);
            }
            let part = Part {
                pk: Arc::new(pk.clone()),
                epoch: self.epochs.fetch_add(1, AtomicOrdering::SeqCst),
                revoking: false,
                open: Arc::new(AtomicBool::new(true)),
                base,
                next: None,
                pending: RunSet::default(),
                done,
                attempts,
                started_runs,
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
            {
                // Under one hold of the lock, so that a task of the old assignment ending now is
                // counted either as running there or as an orphan, never lost between the two.
                let mut parts = self.lock();
                if let Some(old) = parts.insert(tp.clone(), part) {
                    tracing::debug!(partition = %tp, epoch = old.epoch, "replaced an old assignment");
                    self.orphan(tp, &old);
                    if let Some(p) = parts.get_mut(tp) {
                        p.check_finished = true;
                    }
                }
            }
            if let Some(b) = base
                && let Err(e) = self.journal.prune(&pk, b).await
            {
                self.prune_failed(tp, e);
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
                    p.open.store(false, AtomicOrdering::SeqCst);
                    self.clear_held(p);
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
        // Fenced at once: no workflow of theirs starts from now on (a running unit stops before
        // its next record) and no later commit includes them. Then wait out a commit already in
        // flight (it may hang for request.timeout.ms when the member is cut off), so that the
        // member rejoins only after it.
        self.remove(tps);
        let _serial = self.commit_lock.lock().await;
    }

    fn remove(&self, tps: &[TopicPartition]) {
        let mut parts = self.lock();
        for tp in tps {
            if let Some(part) = parts.remove(tp) {
                self.orphan(tp, &part);
            }
        }
    }

    /// Counts the still-running tasks of an assignment that ended. Called with the partition
    /// lock held (lock order: partitions, then orphans), as `finish` decrements.
    fn orphan(&self, tp: &TopicPartition, part: &Part) {
        part.open.store(false, AtomicOrdering::SeqCst);
        self.held.fetch_sub(part.held.len(), AtomicOrdering::SeqCst);
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

/// What a task's records share: their partition, its assignment, whether finishes check the
/// journal first.
struct Unit {
    tp: TopicPartition,
    pk: Arc<PartitionKey>,
    epoch: u64,
    /// The assignment's [`Part::open`].
    open: Arc<AtomicBool>,
    check: bool,
}

/// The records of a task, shared with their workflows' contexts and messages, and how often
/// each ran before.
struct Items {
    all: Arc<Records>,
    /// By index; empty when none ran before.
    prior: Vec<u32>,
}

impl Items {
    fn len(&self) -> usize {
        self.all.len()
    }

    fn at(&self, i: usize) -> Item<'_> {
        Item {
            key: KeyRef::at(&self.all, i),
            prior_attempts: self.prior.get(i).copied().unwrap_or(0),
        }
    }

    fn iter(&self) -> impl Iterator<Item = Item<'_>> {
        (0..self.len()).map(|i| self.at(i))
    }
}

/// One record of a task.
#[derive(Clone, Copy)]
struct Item<'a> {
    /// The record and its key.
    key: KeyRef<'a>,
    prior_attempts: u32,
}

/// A workflow task: one record, or a unit of records of one partition received one after
/// another (see `Shared::run_unit`).
struct Task {
    unit: Unit,
    records: Vec<ConsumerRecord>,
    /// Attempts before this assignment, per record; empty when none has any.
    prior: Vec<u32>,
    /// Its chain, place in it and the task before it in the chain (if still running).
    link: Option<(ChainKey, u64, Option<Link>)>,
    /// Signalled when every record ran and the completions are queued to the journal.
    ran_tx: oneshot::Sender<()>,
    /// Signalled when every record finished durably, and everything before it in the chain.
    done_tx: oneshot::Sender<()>,
}

/// What the next task of a chain waits for: the signals of the task before it. A dropped
/// sender means that task did not get that far.
struct Link {
    ran: oneshot::Receiver<()>,
    durable: oneshot::Receiver<()>,
}

struct TaskEnd {
    tp: TopicPartition,
    epoch: u64,
    chain: Option<(ChainKey, u64)>,
}

#[derive(Clone)]
enum Outcome {
    Finished,
    Halt(String),
    Abandoned,
}

/// A unit record's first attempt that did not finish at its first poll.
struct Attempt {
    conflicts: ConflictSource,
    future: CatchUnwind<SlotRun>,
    span: tracing::Span,
}

impl Attempt {
    /// Waits for the attempt of `item` to end.
    async fn finish(self, shared: &Shared, item: Item<'_>) -> First {
        let Attempt {
            conflicts,
            future,
            span,
        } = self;
        let result = future.instrument(span).await;
        shared.first_outcome(conflicts.count(item.key), result)
    }
}

/// How a unit record's first attempt went.
enum First {
    /// Succeeded; its completion is still to be journaled.
    Succeeded,
    /// Failed with this error; retries (and the failure policy) are next.
    Failed(String),
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
