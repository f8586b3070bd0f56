//! Consumer groups on the classic protocol: coordinator discovery, JoinGroup/SyncGroup with the
//! [`assignor`](super::assignor)s, heartbeats, rebalance listeners, and committed offsets.
//!
//! [`GroupConsumer`] wraps a [`Consumer`] (manual assignment) and drives its assignment from the
//! group:
//!
//! - **Membership task.** [`GroupConsumer::subscribe`] starts one task that joins the group
//!   (protocol type `consumer`, one protocol per `partition.assignment.strategy`), runs the
//!   assignor the coordinator picked when this member is the leader, and then sends heartbeats
//!   every `heartbeat.interval.ms`. It has its own coordinator connection, so neither a long-poll
//!   fetch nor a slow application delays a heartbeat. Offset commits and fetches use a second
//!   coordinator connection, so they never wait behind a JoinGroup.
//! - **Rebalances.** Eager protocols (`range`, `roundrobin`) revoke every partition before
//!   rejoining. The cooperative protocol (`cooperative-sticky`, KIP-429) keeps its partitions
//!   while the group rebalances, sends them as `owned_partitions`, revokes only those missing
//!   from the new assignment, and rejoins once more when it revoked any, so that the partitions
//!   reach their new owner. Revoked partitions are first unassigned from the fetcher (no more of
//!   their records are handed out), then auto-committed (with `enable.auto.commit`), then given
//!   to [`RebalanceListener::revoked`] with their positions while the generation is still valid.
//!   Partitions of a member that was evicted go to [`RebalanceListener::lost`], with no commit.
//! - **Errors.** REBALANCE_IN_PROGRESS rejoins; ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID lose the
//!   partitions, reset the member id and rejoin; MEMBER_ID_REQUIRED rejoins with the id the
//!   coordinator gave (KIP-394); NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE rediscover the
//!   coordinator; FENCED_INSTANCE_ID is fatal and [`GroupConsumer::recv`] reports it.
//! - **Cut off.** When no heartbeat or join has been answered by the coordinator for
//!   `session.timeout.ms` (the member cannot reach the cluster), the coordinator has evicted the
//!   member by then and given its partitions to others: they are lost here too, without waiting
//!   for a reconnect to say so (as librdkafka does), and the member joins again as a new one.
//! - **Positions.** New partitions start at the group's committed offset (OffsetFetch), or from
//!   `auto.offset.reset` when there is none.
//! - **`max.poll.interval.ms`.** When the application has not been inside
//!   [`recv`](GroupConsumer::recv) for longer than this, the member leaves the group (LeaveGroup,
//!   except for static members) and its partitions are lost; the next `recv` rejoins.
//! - **Commits.** [`GroupConsumer::commit`] and [`commit_async`](GroupConsumer::commit_async)
//!   commit the positions (the next offset to read) of the owned partitions under the current
//!   generation; [`commit_offsets`](GroupConsumer::commit_offsets) commits explicit offsets with
//!   metadata strings. A commit refused because of a rebalance or a stale generation returns a
//!   [`CommitError`] and is not retried under a newer generation. With `enable.auto.commit`,
//!   positions are committed every `auto.commit.interval.ms`, before revoking, and on close.
//! - **Static membership** (KIP-345): `group.instance.id` travels in JoinGroup, SyncGroup,
//!   Heartbeat and OffsetCommit; a static member does not send LeaveGroup on close.
//!
//! ```no_run
//! use kafka_once::config::ClientConfig;
//! use kafka_once::consumer::group::GroupConsumer;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("group.id", "orders-service"),
//!     ("auto.offset.reset", "earliest"),
//! ])?;
//! let consumer = GroupConsumer::new(config).await?;
//! consumer.subscribe(&["orders"])?;
//! for _ in 0..100 {
//!     let record = consumer.recv().await?;
//!     println!("{}/{}@{}", record.topic, record.partition, record.offset);
//! }
//! consumer.commit().await?;
//! consumer.close().await;
//! # Ok(())
//! # }
//! ```

mod error;
mod listener;
mod member;
mod membership;
mod offsets;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::config::{AssignmentStrategy, ClientConfig};
use crate::consumer::{Consumer, ConsumerRecord, TopicPartition};

pub use error::{CommitError, GroupError};
pub use listener::{ListenerFuture, NoopListener, RebalanceListener};
pub use offsets::{Generation, OffsetAndMetadata};

use offsets::Coordinator;

/// Group settings taken from the configuration.
struct Settings {
    instance_id: Option<String>,
    session_timeout: Duration,
    heartbeat_interval: Duration,
    max_poll_interval: Duration,
    strategies: Vec<AssignmentStrategy>,
    auto_commit: Option<Duration>,
}

/// Membership state, shared by the membership task and the application's calls.
#[derive(Default)]
struct State {
    topics: Vec<String>,
    member_id: String,
    generation_id: i32,
    protocol: Option<AssignmentStrategy>,
    owned: BTreeSet<TopicPartition>,
    /// A rejoin was asked for (subscription change, cooperative follow-up).
    rejoin: bool,
    /// The member left because of `max.poll.interval.ms` and waits for the next `recv`.
    left_for_poll: bool,
    started: bool,
    /// The last answer from the group coordinator to a join or a heartbeat.
    contact: Option<tokio::time::Instant>,
}

struct Inner {
    consumer: Consumer,
    cluster: Cluster,
    group: String,
    settings: Settings,
    listener: Arc<dyn RebalanceListener>,
    /// Commits and offset fetches.
    offsets: Coordinator,
    /// JoinGroup, SyncGroup, Heartbeat, LeaveGroup.
    membership: Coordinator,
    state: Mutex<State>,
    /// Wakes the membership task (rejoin asked, `recv` after a poll timeout).
    wake: Notify,
    shutdown: watch::Sender<bool>,
    fatal: watch::Sender<Option<GroupError>>,
    /// `recv` calls in progress, and when the last one ended.
    polling: AtomicUsize,
    last_poll: Mutex<Instant>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn generation(&self) -> Option<Generation> {
        let state = self.lock();
        (state.generation_id >= 0 && !state.member_id.is_empty()).then(|| Generation {
            generation_id: state.generation_id,
            member_id: state.member_id.clone(),
            group_instance_id: self.settings.instance_id.clone(),
        })
    }

    /// The generation to commit under: the current one when subscribed, none for a consumer
    /// that never subscribed (manual assignment with a `group.id`).
    fn commit_generation(&self) -> Result<Generation, CommitError> {
        let started = self.lock().started;
        if !started {
            return Ok(Generation::NONE);
        }
        self.generation()
            .ok_or_else(|| CommitError::RebalanceInProgress {
                group: self.group.clone(),
                generation: -1,
            })
    }

    /// The positions of the owned partitions, as offsets to commit.
    fn owned_positions(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        let owned = self.lock().owned.clone();
        self.consumer
            .positions()
            .into_iter()
            .filter(|(tp, _)| owned.contains(tp))
            .map(|(tp, o)| (tp, OffsetAndMetadata::new(o)))
            .collect()
    }

    fn poll_expired(&self) -> bool {
        self.polling.load(Ordering::SeqCst) == 0
            && self
                .last_poll
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed()
                > self.settings.max_poll_interval
    }
}

/// A handle to the group given to [`RebalanceListener`] methods: commit and look up offsets
/// under the member's current generation.
#[derive(Clone)]
pub struct GroupHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GroupHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupHandle")
            .field("group", &self.inner.group)
            .field("generation", &self.inner.generation())
            .finish()
    }
}

impl GroupHandle {
    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.inner.group
    }

    /// The member's current generation, `None` while it has none (before the first join,
    /// after an eviction).
    pub fn generation(&self) -> Option<Generation> {
        self.inner.generation()
    }

    /// The partitions the member owns now, sorted.
    pub fn owned(&self) -> Vec<TopicPartition> {
        self.inner.lock().owned.iter().cloned().collect()
    }

    /// Commits explicit offsets (each the next offset to read) with their metadata strings,
    /// under the current generation (see [`GroupConsumer::commit_offsets`]).
    ///
    /// Cancel safety: not cancel safe: a dropped call may or may not have committed.
    pub async fn commit_offsets(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), CommitError> {
        let generation = self.inner.commit_generation()?;
        self.inner.offsets.commit(&generation, offsets).await
    }

    /// Commits explicit offsets under `generation`, whatever the current one is. A stale
    /// generation gets [`CommitError::IllegalGeneration`] (or another generation error) from
    /// the coordinator.
    ///
    /// Cancel safety: not cancel safe: a dropped call may or may not have committed.
    pub async fn commit_offsets_as(
        &self,
        generation: &Generation,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), CommitError> {
        self.inner.offsets.commit(generation, offsets).await
    }

    /// The group's committed offsets for `partitions` (those without one are left out).
    ///
    /// Cancel safety: safe.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, GroupError> {
        self.inner.offsets.fetch_committed(partitions).await
    }
}

/// A consumer that is a member of a consumer group: the group assigns its partitions.
///
/// Every method takes `&self`. Dropping it stops the membership task, which then revokes its
/// partitions and leaves the group (unless static); [`close`](Self::close) does the same and
/// waits.
pub struct GroupConsumer {
    handle: GroupHandle,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.handle.fmt(f)
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.handle.inner.shutdown.send_replace(true);
    }
}

impl GroupConsumer {
    /// Connects to the cluster, with no rebalance listener. Needs `group.id`.
    ///
    /// Cancel safety: safe.
    pub async fn new(config: ClientConfig) -> Result<Self, GroupError> {
        Self::with_listener(config, Arc::new(NoopListener)).await
    }

    /// Connects to the cluster, with `listener` told of every assignment change.
    ///
    /// Cancel safety: safe.
    pub async fn with_listener(
        config: ClientConfig,
        listener: Arc<dyn RebalanceListener>,
    ) -> Result<Self, GroupError> {
        let c = config.consumer();
        let group = c.group_id().ok_or(GroupError::NoGroupId)?.to_string();
        let settings = Settings {
            instance_id: c.group_instance_id().map(str::to_string),
            session_timeout: c.session_timeout(),
            heartbeat_interval: c.heartbeat_interval(),
            max_poll_interval: c.max_poll_interval(),
            strategies: c.partition_assignment_strategy().to_vec(),
            auto_commit: c.enable_auto_commit().then(|| c.auto_commit_interval()),
        };
        let cluster = Cluster::connect(config.clone()).await?;
        let consumer = Consumer::builder(config)
            .cluster(cluster.clone())
            .build()
            .await?;
        let inner = Arc::new(Inner {
            consumer,
            offsets: Coordinator::new(cluster.clone(), group.clone()),
            membership: Coordinator::new(cluster.clone(), group.clone()),
            cluster,
            group,
            settings,
            listener,
            state: Mutex::new(State {
                generation_id: -1,
                ..State::default()
            }),
            wake: Notify::new(),
            shutdown: watch::channel(false).0,
            fatal: watch::channel(None).0,
            polling: AtomicUsize::new(0),
            last_poll: Mutex::new(Instant::now()),
        });
        Ok(Self {
            handle: GroupHandle { inner },
            task: Mutex::new(None),
        })
    }

    /// Subscribes to `topics` (replacing an earlier subscription) and starts the membership
    /// task, which joins the group in the background; records flow from [`recv`](Self::recv)
    /// once partitions are assigned.
    pub fn subscribe(&self, topics: &[&str]) -> Result<(), GroupError> {
        let inner = &self.handle.inner;
        if *inner.shutdown.borrow() {
            return Err(GroupError::Closed);
        }
        let mut topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        topics.sort();
        topics.dedup();
        let start = {
            let mut state = inner.lock();
            state.topics = topics;
            state.rejoin = true;
            !std::mem::replace(&mut state.started, true)
        };
        *inner.last_poll.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        if start {
            let task = tokio::spawn(member::run(inner.clone()));
            *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        } else {
            inner.wake.notify_one();
        }
        Ok(())
    }

    /// Waits for the next record of an assigned partition, or an error: a partition error of
    /// the fetcher ([`GroupError::Consumer`]) or a fatal group error such as
    /// [`GroupError::Fenced`].
    ///
    /// Time spent inside `recv` counts as polling for `max.poll.interval.ms`; the interval is
    /// measured from when the previous call returned. After the member left the group for
    /// exceeding it, a call rejoins.
    ///
    /// Cancel safety: safe (as [`Consumer::recv`]).
    pub async fn recv(&self) -> Result<ConsumerRecord, GroupError> {
        let inner = &self.handle.inner;
        let _guard = PollGuard::enter(inner);
        let mut fatal = inner.fatal.subscribe();
        loop {
            if let Some(e) = fatal.borrow_and_update().clone() {
                return Err(e);
            }
            tokio::select! {
                r = inner.consumer.recv() => return r.map_err(GroupError::from),
                _ = fatal.changed() => {}
            }
        }
    }

    /// The next record or error if one is ready, without waiting (as
    /// [`Consumer::try_recv`]); counts as a poll for `max.poll.interval.ms` like
    /// [`recv`](Self::recv).
    pub fn try_recv(&self) -> Option<Result<ConsumerRecord, GroupError>> {
        let inner = &self.handle.inner;
        let _guard = PollGuard::enter(inner);
        if let Some(e) = inner.fatal.borrow().clone() {
            return Some(Err(e));
        }
        inner
            .consumer
            .try_recv()
            .map(|r| r.map_err(GroupError::from))
    }

    /// Moves the records buffered now (at most `max`) into `out`, without waiting, as repeated
    /// [`try_recv`](Self::try_recv) would; returns the error that stopped it, if one did (the
    /// records before it are in `out`). Cheaper per record than `try_recv`: the poll is
    /// accounted once, and the consumer's locks are taken once per run of records (see
    /// [`Consumer::try_recv_into`]).
    pub fn try_recv_into(&self, out: &mut Vec<ConsumerRecord>, max: usize) -> Option<GroupError> {
        let inner = &self.handle.inner;
        let _guard = PollGuard::enter(inner);
        if let Some(e) = inner.fatal.borrow().clone() {
            return Some(e);
        }
        inner.consumer.try_recv_into(out, max).map(GroupError::from)
    }

    /// Commits the positions of the owned partitions (the next offset to read of each) under
    /// the current generation, and waits for the answer. An error means not committed.
    ///
    /// Cancel safety: not cancel safe: a dropped call may or may not have committed.
    pub async fn commit(&self) -> Result<(), CommitError> {
        let inner = &self.handle.inner;
        let generation = inner.commit_generation()?;
        let offsets = inner.owned_positions_or_assigned();
        inner.offsets.commit(&generation, &offsets).await
    }

    /// Starts committing the current positions (as [`commit`](Self::commit)) and returns at
    /// once; await the handle for the outcome, or drop it. The positions and the generation
    /// are taken now.
    pub fn commit_async(&self) -> JoinHandle<Result<(), CommitError>> {
        let inner = self.handle.inner.clone();
        let generation = inner.commit_generation();
        let offsets = inner.owned_positions_or_assigned();
        tokio::spawn(async move { inner.offsets.commit(&generation?, &offsets).await })
    }

    /// Commits explicit offsets (each the next offset to read) with their metadata strings under
    /// the current generation. An error means not committed (for
    /// [`CommitError::Partition`], not committed for that partition).
    ///
    /// Cancel safety: not cancel safe: a dropped call may or may not have committed.
    pub async fn commit_offsets(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), CommitError> {
        self.handle.commit_offsets(offsets).await
    }

    /// The group's committed offsets for `partitions` (those without one are left out).
    ///
    /// Cancel safety: safe.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, GroupError> {
        self.handle.committed(partitions).await
    }

    /// The partitions this member owns now, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.handle.owned()
    }

    /// The member's current generation (`None` before the first join and while evicted).
    pub fn generation(&self) -> Option<Generation> {
        self.handle.generation()
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        self.handle.group_id()
    }

    /// The handle the rebalance listener gets (commits and offset lookups).
    pub fn handle(&self) -> &GroupHandle {
        &self.handle
    }

    /// The fetching consumer underneath, for positions, pause/resume, lag and seek.
    pub fn consumer(&self) -> &Consumer {
        &self.handle.inner.consumer
    }

    /// Stops the membership task, which revokes the owned partitions (auto-committing them
    /// with `enable.auto.commit`, then calling [`RebalanceListener::revoked`]) and sends
    /// LeaveGroup unless the member is static; then closes the consumer.
    ///
    /// Cancel safety: safe; if dropped, the task still finishes on its own.
    pub async fn close(&self) {
        let inner = &self.handle.inner;
        inner.shutdown.send_replace(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        inner.consumer.close().await;
        inner.cluster.close();
    }
}

impl Inner {
    /// Owned partitions' positions when subscribed; every assigned partition's otherwise.
    fn owned_positions_or_assigned(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        if self.lock().started {
            self.owned_positions()
        } else {
            self.consumer
                .positions()
                .into_iter()
                .map(|(tp, o)| (tp, OffsetAndMetadata::new(o)))
                .collect()
        }
    }
}

/// Counts a `recv` in progress; records when it ended.
struct PollGuard<'a>(&'a Inner);

impl<'a> PollGuard<'a> {
    fn enter(inner: &'a Inner) -> Self {
        inner.polling.fetch_add(1, Ordering::SeqCst);
        let rejoin = std::mem::take(&mut inner.lock().left_for_poll);
        if rejoin {
            inner.wake.notify_one();
        }
        PollGuard(inner)
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        *self.0.last_poll.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.polling.fetch_sub(1, Ordering::SeqCst);
    }
}
