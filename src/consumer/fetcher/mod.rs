//! The fetching consumer with manual assignment: positions, fetch loops with sessions, the
//! prefetch budget, and record delivery.
//!
//! # How it works
//!
//! - **Assignment.** [`Consumer::assign`] (or [`assign_partitions`](Consumer::assign_partitions),
//!   which a group layer calls with committed offsets) registers partitions. A partition without a
//!   position gets one from `auto.offset.reset` through ListOffsets (earliest = -2, latest = -1)
//!   before `assign` returns; with `none` it stays without one and [`Consumer::recv`] reports
//!   [`ConsumerError::NoOffset`] until [`Consumer::seek`] sets one.
//! - **Fetch loops.** One task per partition leader, each with its own connection (a long-poll
//!   fetch never waits in front of heartbeats or commits on the cluster's connection), and one
//!   fetch session (KIP-227, see `session.rs`): a full fetch first, then incremental fetches that
//!   carry only partitions whose fetch position changed, with `forgotten_topics_data` for those
//!   that left. Requests name topics by id from Fetch v13 and carry the leader epoch from
//!   metadata (KIP-320).
//! - **Errors per partition.** `NOT_LEADER_OR_FOLLOWER`, `FENCED_LEADER_EPOCH`,
//!   `UNKNOWN_LEADER_EPOCH`, `UNKNOWN_TOPIC_OR_PARTITION` and the like drop the partition's leader;
//!   a supervisor task refreshes metadata and the partition moves to the new leader's loop with
//!   its position unchanged. `OFFSET_OUT_OF_RANGE` applies `auto.offset.reset` (logged at warn
//!   with the old and new offsets), or with `none` stops the partition with
//!   [`ConsumerError::OffsetOutOfRange`].
//! - **Leader changes (KIP-320).** The position remembers the leader epoch of the last record
//!   returned. When a partition's leader changes, the supervisor asks the new leader with
//!   OffsetForLeaderEpoch where that epoch ends in its log before the partition is fetched again.
//!   An end below the position means records this consumer returned were truncated away (an
//!   unclean election): with a reset policy the position moves to the first diverging offset
//!   (logged at warn, as the Java client does), with `none` the partition stops with
//!   [`ConsumerError::LogTruncation`]. [`Consumer::validations`] counts both outcomes. A position
//!   set by a seek or a committed offset has no epoch and is not validated.
//! - **Prefetch budget.** Fetched bytes wait in a buffer until the application takes them. The
//!   bytes held plus the bytes promised to requests in flight stay within a budget, by default
//!   `2 × fetch.max.bytes` ([`ConsumerBuilder::prefetch_bytes`] changes it): each request
//!   reserves what it can bring back, what is left of the budget but at most `fetch.max.bytes`
//!   and `max.partition.fetch.bytes` per partition it asks for (so loops long-polling caught-up
//!   partitions on some brokers leave room for the others), and no request is sent while less
//!   than half the budget (or that much, if smaller) is free. A slow application therefore pauses the
//!   fetchers, however many partitions there are. A response's bytes are released when the last
//!   of its partitions' data has been handed out or dropped. The broker may exceed a request's
//!   `max_bytes` by one batch when the first batch is larger (KIP-74); with batches smaller than
//!   the budget the bound holds exactly. Compressed batches are inflated one at a time, when
//!   their turn comes.
//! - **Delivery.** Records come out per partition in offset order. Positions advance past control
//!   batches, aborted transactions (`read_committed`, see `aborted.rs`) and offsets removed by
//!   compaction. A batch that fails its checks (CRC, structure, codec) is reported as
//!   [`ConsumerError::Corrupt`] after the records before it, and the partition stops at that
//!   offset until the application seeks.
//!
//! # Example
//!
//! ```no_run
//! use kafka_once::config::ClientConfig;
//! use kafka_once::consumer::Consumer;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("auto.offset.reset", "earliest"),
//! ])?;
//! let consumer = Consumer::new(config).await?;
//! consumer.assign_topics(&["orders"]).await?;
//! loop {
//!     let record = consumer.recv().await?;
//!     println!("{}/{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
//! }
//! # }
//! ```

mod aborted;
mod broker_loop;
mod completed;
mod error;
mod offsets;
mod record;
mod session;
mod state;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};
use std::pin::pin;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::{AutoOffsetReset, ClientConfig};
use crate::connection::ConnectionConfig;

use completed::{CompletedFetch, Step};
use state::{Budget, Leader, PartitionState, ResetTo, Settings, Shared};

pub use error::ConsumerError;
pub use record::{ConsumerRecord, TopicPartition};
pub use state::Validations;

/// Pass to [`Consumer::seek`] to start at the log's first offset.
pub const OFFSET_BEGINNING: i64 = -2;
/// Pass to [`Consumer::seek`] to start at the log's end (the next record produced).
pub const OFFSET_END: i64 = -1;

/// One Fetch request as sent, kept for diagnostics and tests ([`Consumer::fetch_history`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequestInfo {
    /// The broker it went to.
    pub node: i32,
    /// Its `session_id` (0: no session yet).
    pub session_id: i32,
    /// Its `session_epoch` (0: a full fetch that creates a session).
    pub session_epoch: i32,
    /// Whether it was a full fetch (every wanted partition sent).
    pub full: bool,
    /// The partitions in its `topics` field.
    pub partitions: Vec<TopicPartition>,
    /// The partitions in its `forgotten_topics_data` field.
    pub forgotten: Vec<TopicPartition>,
    /// The Fetch version used.
    pub version: i16,
    /// Its `max_wait_ms`: how long the broker could hold it. `fetch.max.wait.ms`, shorter while a
    /// partition of this broker is paused with records behind it (the wait is then at most the
    /// pause's age, so a resumed partition is not parked behind a long poll).
    pub max_wait: std::time::Duration,
}

/// Builds a [`Consumer`] with options beyond the [`ClientConfig`].
#[derive(Debug)]
pub struct ConsumerBuilder {
    config: ClientConfig,
    cluster: Option<Cluster>,
    prefetch_bytes: Option<usize>,
}

impl ConsumerBuilder {
    /// The prefetch budget: fetched bytes held for the application plus bytes requested in
    /// flight stay at or below this. Default `2 × fetch.max.bytes` (100 MiB with the default
    /// 50 MiB). Smaller values bound memory more tightly at the cost of throughput; each fetch
    /// request asks for at most what is left of the budget.
    pub fn prefetch_bytes(mut self, bytes: usize) -> Self {
        self.prefetch_bytes = Some(bytes.max(1));
        self
    }

    /// Uses an existing cluster client (sharing its metadata and connections) instead of
    /// connecting a new one. [`Consumer::close`] then leaves the cluster's connections open.
    pub fn cluster(mut self, cluster: Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Connects (unless a cluster was given) and starts the consumer's supervisor task.
    ///
    /// Cancel safety: safe; nothing is started before the cluster is connected.
    pub async fn build(self) -> Result<Consumer, ConsumerError> {
        let (cluster, owns_cluster) = match self.cluster {
            Some(c) => (c, false),
            None => (Cluster::connect(self.config.clone()).await?, true),
        };
        let config = &self.config;
        let settings = Settings::from_config(config, self.prefetch_bytes);
        let connection_config = ConnectionConfig {
            client_id: config.client_id().to_string(),
            request_timeout: config.request_timeout() + settings.max_wait,
            connect_timeout: config.connect_timeout(),
            // One fetch at a time per connection.
            max_in_flight: 1,
            max_frame_size: config.receive_message_max_bytes(),
        };
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            cluster,
            budget: Arc::new(Budget::new(settings.budget)),
            settings,
            connection_config,
            state: Mutex::new(state::State::default()),
            fetch_wake: Notify::new(),
            data_ready: Notify::new(),
            supervisor_wake: Notify::new(),
            shutdown,
        });
        let supervisor = tokio::spawn(offsets::supervise(shared.clone()));
        Ok(Consumer {
            shared,
            drain: Mutex::new(None),
            supervisor: Mutex::new(Some(supervisor)),
            owns_cluster,
        })
    }
}

/// A Kafka consumer with manual partition assignment.
///
/// Every method takes `&self`; share a consumer between tasks with an `Arc` (for example an
/// application task calling [`recv`](Self::recv) and a group-membership task calling
/// [`assign_partitions`](Self::assign_partitions) and reading [`positions`](Self::positions)).
/// Dropping the consumer stops its tasks; [`close`](Self::close) also waits for them.
pub struct Consumer {
    shared: Arc<Shared>,
    /// The completed fetch being handed out (decoded outside the state lock).
    drain: Mutex<Option<CompletedFetch>>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
    owns_cluster: bool,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Consumer")
            .field("partitions", &state.partitions.len())
            .field("buffered_fetches", &state.completed.len())
            .field("buffered_bytes", &self.shared.budget.buffered())
            .finish()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.shutdown.send_replace(true);
    }
}

impl Consumer {
    /// Connects to the cluster and returns a consumer with nothing assigned.
    ///
    /// Cancel safety: safe.
    pub async fn new(config: ClientConfig) -> Result<Self, ConsumerError> {
        Self::builder(config).build().await
    }

    /// A builder for options beyond the configuration (prefetch budget, shared cluster).
    pub fn builder(config: ClientConfig) -> ConsumerBuilder {
        ConsumerBuilder {
            config,
            cluster: None,
            prefetch_bytes: None,
        }
    }

    /// The cluster client this consumer uses.
    pub fn cluster(&self) -> &Cluster {
        &self.shared.cluster
    }

    /// Replaces the assignment with `partitions`. Partitions that stay keep their positions and
    /// buffered data; new ones start from `auto.offset.reset`, looked up before this returns
    /// (a lookup that keeps failing is retried in the background). With
    /// `auto.offset.reset=none`, new partitions have no position: `recv` reports
    /// [`ConsumerError::NoOffset`] for each until [`seek`](Self::seek) sets one.
    ///
    /// Fails with [`ConsumerError::UnknownTopic`] / [`ConsumerError::UnknownPartition`] (and
    /// changes nothing) when a partition does not exist.
    ///
    /// Cancel safety: not cancel safe as a whole: if dropped after the metadata lookup, the
    /// assignment may be changed with positions still being looked up in the background.
    pub async fn assign(&self, partitions: &[(&str, i32)]) -> Result<(), ConsumerError> {
        let entries = partitions
            .iter()
            .map(|(t, p)| (TopicPartition::new(*t, *p), None))
            .collect();
        self.add(entries, true).await
    }

    /// Replaces the assignment with every partition of `topics` (as [`assign`](Self::assign)).
    ///
    /// Cancel safety: as [`assign`](Self::assign).
    pub async fn assign_topics(&self, topics: &[&str]) -> Result<(), ConsumerError> {
        let snapshot = self.shared.cluster.refresh_topics(topics).await?;
        let mut entries = Vec::new();
        for t in topics {
            let meta = snapshot
                .topic(t)
                .ok_or_else(|| ConsumerError::UnknownTopic {
                    topic: t.to_string(),
                })?;
            let name: Arc<str> = Arc::from(*t);
            entries.extend(
                meta.partitions
                    .iter()
                    .map(|p| (TopicPartition::new(name.clone(), p.partition), None)),
            );
        }
        self.add(entries, true).await
    }

    /// Adds partitions to the assignment, each at the given offset (for example the group's
    /// committed offset), or from `auto.offset.reset` when `None`. A partition already assigned
    /// is moved to the given offset (or left alone when `None`). This is the call a group layer
    /// makes after a rebalance (incremental for cooperative assignors).
    ///
    /// Cancel safety: as [`assign`](Self::assign).
    pub async fn assign_partitions(
        &self,
        partitions: &[(TopicPartition, Option<i64>)],
    ) -> Result<(), ConsumerError> {
        self.add(partitions.to_vec(), false).await
    }

    /// Removes partitions from the assignment and returns each one's position at that moment
    /// (`None` if it had none), which is what a group layer commits on revoke. Buffered data of
    /// these partitions is dropped; records already returned by `recv` are before the position.
    pub fn unassign_partitions(
        &self,
        partitions: &[TopicPartition],
    ) -> Vec<(TopicPartition, Option<i64>)> {
        let mut state = self.shared.lock();
        let mut out = Vec::new();
        for tp in partitions {
            state.drop_buffered(tp);
            if let Some(p) = state.partitions.remove(tp) {
                out.push((tp.clone(), p.position));
            }
            state
                .errors
                .retain(|e| e.partition() != Some((&tp.topic, tp.partition)));
        }
        drop(state);
        self.shared.wake_fetchers();
        out
    }

    /// Removes every partition from the assignment.
    pub fn unassign(&self) {
        let all = self.assignment();
        self.unassign_partitions(&all);
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let state = self.shared.lock();
        let mut v: Vec<_> = state.partitions.keys().cloned().collect();
        v.sort();
        v
    }

    async fn add(
        &self,
        entries: Vec<(TopicPartition, Option<i64>)>,
        replace: bool,
    ) -> Result<(), ConsumerError> {
        let topics: BTreeSet<Arc<str>> = entries.iter().map(|(tp, _)| tp.topic.clone()).collect();
        let names: Vec<&str> = topics.iter().map(|t| &**t).collect();
        let snapshot = if names.is_empty() {
            self.shared.cluster.metadata()
        } else {
            self.shared.cluster.refresh_topics(&names).await?
        };
        for (tp, _) in &entries {
            let meta = snapshot
                .topic(&tp.topic)
                .ok_or_else(|| ConsumerError::UnknownTopic {
                    topic: tp.topic.to_string(),
                })?;
            if !meta.partitions.iter().any(|p| p.partition == tp.partition) {
                return Err(ConsumerError::UnknownPartition {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                });
            }
        }
        let reset = self.shared.settings.reset;
        let mut fresh = Vec::new();
        {
            let mut state = self.shared.lock();
            if state.closed {
                return Err(ConsumerError::Closed);
            }
            if replace {
                let keep: HashSet<&TopicPartition> = entries.iter().map(|(tp, _)| tp).collect();
                let gone: Vec<TopicPartition> = state
                    .partitions
                    .keys()
                    .filter(|tp| !keep.contains(tp))
                    .cloned()
                    .collect();
                for tp in gone {
                    state.drop_buffered(&tp);
                    state.partitions.remove(&tp);
                    state
                        .errors
                        .retain(|e| e.partition() != Some((&tp.topic, tp.partition)));
                }
            }
            for (tp, offset) in entries {
                if state.partitions.contains_key(&tp) {
                    if let Some(offset) = offset {
                        self.seek_locked(&mut state, &tp, offset);
                    }
                    continue;
                }
                let meta = snapshot.topic(&tp.topic).expect("checked above");
                let leader = meta
                    .partitions
                    .iter()
                    .find(|p| p.partition == tp.partition)
                    .filter(|p| p.leader >= 0 && snapshot.brokers.contains_key(&p.leader))
                    .map(|p| Leader {
                        node: p.leader,
                        epoch: p.leader_epoch,
                    });
                let version = state.bump_version();
                let mut p = PartitionState::new(meta.id, leader, version);
                match offset {
                    Some(o) if o >= 0 => p.position = Some(o),
                    Some(OFFSET_BEGINNING) => p.reset = Some(ResetTo::Earliest),
                    Some(_) => p.reset = Some(ResetTo::Latest),
                    None => match reset {
                        AutoOffsetReset::Earliest => p.reset = Some(ResetTo::Earliest),
                        AutoOffsetReset::Latest => p.reset = Some(ResetTo::Latest),
                        AutoOffsetReset::None => {
                            p.failed = true;
                            let e = ConsumerError::NoOffset {
                                topic: tp.topic.clone(),
                                partition: tp.partition,
                            };
                            self.shared.report(&mut state, e);
                        }
                    },
                }
                if let Some(l) = leader {
                    broker_loop::ensure_loop(&self.shared, &mut state, l.node);
                }
                state.partitions.insert(tp.clone(), p);
                fresh.push(tp);
            }
        }
        self.shared.wake_fetchers();
        self.settle(&fresh).await;
        Ok(())
    }

    /// Waits (bounded by `request.timeout.ms`) until the partitions in `fresh` have a leader and
    /// a position or have failed; what is left continues in the background.
    async fn settle(&self, fresh: &[TopicPartition]) {
        let deadline = tokio::time::Instant::now() + self.shared.settings.request_timeout;
        let mut backoff = crate::cluster::Backoff::new(
            self.shared.settings.retry_backoff,
            self.shared.settings.retry_backoff_max,
        );
        loop {
            let pending = {
                let state = self.shared.lock();
                fresh.iter().any(|tp| {
                    state.partitions.get(tp).is_some_and(|p| {
                        !p.failed
                            && (p.leader.is_none() || (p.position.is_none() && p.reset.is_some()))
                    })
                })
            };
            if !pending {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                self.shared.supervisor_wake.notify_one();
                break;
            }
            if !offsets::run_once(&self.shared).await {
                break;
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Moves the partition's position to `offset` (the next record returned is the one at
    /// `offset`, or the first after it). [`OFFSET_BEGINNING`] and [`OFFSET_END`] look up the
    /// log's start or end (asynchronously; [`position`](Self::position) is `None` meanwhile).
    /// Buffered data of the partition is dropped, and a partition stopped by an error resumes.
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), ConsumerError> {
        let tp = TopicPartition::new(topic, partition);
        let mut state = self.shared.lock();
        if !state.partitions.contains_key(&tp) {
            return Err(ConsumerError::NotAssigned {
                topic: topic.to_string(),
                partition,
            });
        }
        self.seek_locked(&mut state, &tp, offset);
        drop(state);
        self.shared.wake_fetchers();
        if offset < 0 {
            self.shared.supervisor_wake.notify_one();
        }
        Ok(())
    }

    fn seek_locked(&self, state: &mut state::State, tp: &TopicPartition, offset: i64) {
        state.drop_buffered(tp);
        state
            .errors
            .retain(|e| e.partition() != Some((&tp.topic, tp.partition)));
        let version = state.bump_version();
        let Some(p) = state.partitions.get_mut(tp) else {
            return;
        };
        p.version = version;
        p.failed = false;
        p.reset_from = None;
        p.position_epoch = None;
        p.validate = false;
        if offset >= 0 {
            p.position = Some(offset);
            p.reset = None;
        } else {
            p.position = None;
            p.reset = Some(if offset == OFFSET_BEGINNING {
                ResetTo::Earliest
            } else {
                ResetTo::Latest
            });
        }
    }

    /// The partition's position: the offset of the next record `recv` would return (after the
    /// last returned one, past control batches and aborted data). `None` when the partition is
    /// not assigned or has no position yet. This is the offset to commit.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        let state = self.shared.lock();
        state
            .partitions
            .get(&TopicPartition::new(topic, partition))
            .and_then(|p| p.position)
    }

    /// Every assigned partition's position (partitions without one are left out), sorted.
    pub fn positions(&self) -> Vec<(TopicPartition, i64)> {
        let state = self.shared.lock();
        let mut v: Vec<_> = state
            .partitions
            .iter()
            .filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), o)))
            .collect();
        v.sort();
        v
    }

    /// The high watermark from the partition's last fetch response (`None` before one).
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let state = self.shared.lock();
        state
            .partitions
            .get(&TopicPartition::new(topic, partition))
            .map(|p| p.high_watermark)
            .filter(|&h| h >= 0)
    }

    /// Records between the position and the end of what this consumer may read (the high
    /// watermark, or the last stable offset under `read_committed`), as of the last fetch
    /// response. `None` when unknown.
    pub fn lag(&self, topic: &str, partition: i32) -> Option<i64> {
        let state = self.shared.lock();
        let p = state
            .partitions
            .get(&TopicPartition::new(topic, partition))?;
        let end = match self.shared.settings.isolation {
            crate::config::IsolationLevel::ReadCommitted => p.last_stable_offset,
            crate::config::IsolationLevel::ReadUncommitted => p.high_watermark,
        };
        let position = p.position?;
        (end >= 0).then(|| (end - position).max(0))
    }

    /// Stops fetching the partitions; buffered data is kept but not returned until
    /// [`resume`](Self::resume). Unknown partitions are ignored.
    pub fn pause(&self, partitions: &[(&str, i32)]) {
        self.set_paused(partitions, true);
    }

    /// Resumes paused partitions.
    pub fn resume(&self, partitions: &[(&str, i32)]) {
        self.set_paused(partitions, false);
    }

    fn set_paused(&self, partitions: &[(&str, i32)], paused: bool) {
        let now = std::time::Instant::now();
        let mut state = self.shared.lock();
        for (t, p) in partitions {
            if let Some(p) = state.partitions.get_mut(&TopicPartition::new(*t, *p)) {
                p.set_paused(paused, now);
            }
        }
        drop(state);
        self.shared.wake_fetchers();
        if !paused {
            self.shared.data_ready.notify_waiters();
        }
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        let state = self.shared.lock();
        let mut v: Vec<_> = state
            .partitions
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect();
        v.sort();
        v
    }

    /// Bytes of fetched data held for the application now.
    pub fn buffered_bytes(&self) -> usize {
        self.shared.budget.buffered()
    }

    /// The most bytes of fetched data ever held at once.
    pub fn peak_buffered_bytes(&self) -> usize {
        self.shared.budget.peak()
    }

    /// The prefetch budget in bytes (see [`ConsumerBuilder::prefetch_bytes`]).
    pub fn prefetch_budget(&self) -> usize {
        self.shared.budget.limit
    }

    /// The most recent Fetch requests (up to 64), oldest first: session id and epoch, whether
    /// full, which partitions were sent and forgotten.
    pub fn fetch_history(&self) -> Vec<FetchRequestInfo> {
        self.shared.lock().history.iter().cloned().collect()
    }

    /// How many positions were validated with OffsetForLeaderEpoch after a leader change (KIP-320),
    /// and how many of them found the new leader's log truncated below the position.
    pub fn validations(&self) -> Validations {
        self.shared.lock().validations
    }

    /// Waits for the next record, or a partition error (see [`ConsumerError`]).
    ///
    /// Records of one partition come in offset order. Waits forever when nothing is assigned;
    /// returns [`ConsumerError::Closed`] once the consumer is closed.
    ///
    /// Cancel safety: safe. A record is taken from the buffer and the position advanced in the
    /// same poll that returns it, so dropping the future loses nothing; use it in `select!` or
    /// under `tokio::time::timeout` freely.
    pub async fn recv(&self) -> Result<ConsumerRecord, ConsumerError> {
        let mut shutdown = self.shared.shutdown.subscribe();
        loop {
            let mut ready = pin!(self.shared.data_ready.notified());
            ready.as_mut().enable();
            if let Some(r) = self.try_recv() {
                return r;
            }
            tokio::select! {
                _ = ready => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// The next record or partition error if one is buffered, without waiting.
    pub fn try_recv(&self) -> Option<Result<ConsumerRecord, ConsumerError>> {
        let mut one = None;
        match self.take_into(&mut one, 1) {
            Some(e) => Some(Err(e)),
            None => one.map(Ok),
        }
    }

    /// Moves up to `max` buffered records into `out`, as that many [`try_recv`](Self::try_recv)
    /// calls would, but taking the locks once per run of records of one fetch rather than once
    /// per record. Returns the first partition error met (the records before it are in `out`);
    /// `None` when `max` records were moved or nothing more is ready.
    pub fn try_recv_into(
        &self,
        out: &mut Vec<ConsumerRecord>,
        max: usize,
    ) -> Option<ConsumerError> {
        self.take_into(out, max)
    }

    /// [`try_recv_into`](Self::try_recv_into) for any [`Sink`] (a `Vec`, or an `Option` for
    /// one record).
    fn take_into(&self, out: &mut impl Sink, max: usize) -> Option<ConsumerError> {
        let max_poll = self.shared.settings.max_poll_records.max(1);
        let mut drain = self.drain.lock().unwrap_or_else(|p| p.into_inner());
        let mut left = max;
        while left > 0 {
            {
                let mut state = self.shared.lock();
                if drain.is_none() {
                    if state.closed {
                        return Some(ConsumerError::Closed);
                    }
                    if let Some(e) = state.errors.pop_front() {
                        return Some(e);
                    }
                    let st = &mut *state;
                    let next = st.completed.iter().position(|c| {
                        st.partitions
                            .get(&c.tp)
                            .is_none_or(|p| !p.paused || p.version != c.version)
                    })?;
                    *drain = st.completed.remove(next);
                } else if let Some(cf) = drain.as_ref()
                    && st_paused(&state, cf)
                {
                    // Paused since its last record was handed out: back to the front of the
                    // queue, as `try_recv` does after handing out a record of a paused partition.
                    let cf = drain.take().expect("checked above");
                    state.completed.push_front(cf);
                    continue;
                }
            }
            let cf = drain.as_mut().expect("set above");
            // A run of records decoded outside the state lock: up to `left`, no further than the
            // point where the fetch goes to the back of the queue, and up to the first step that
            // is not a record.
            let limit = left.min(max_poll.saturating_sub(cf.handed_out).max(1));
            let start = out.len();
            let (mut after_last, mut epoch) = (None, None);
            let mut other = None;
            while out.len() - start < limit {
                match cf.next() {
                    Step::Record(record, after) => {
                        if record.leader_epoch >= 0 {
                            epoch = Some(record.leader_epoch);
                        }
                        after_last = Some(after);
                        out.push(record);
                    }
                    step => {
                        other = Some(step);
                        break;
                    }
                }
            }
            let n = out.len() - start;
            let mut state = self.shared.lock();
            let st = &mut *state;
            let Some(p) = st
                .partitions
                .get_mut(&cf.tp)
                .filter(|p| p.version == cf.version)
            else {
                // Seeked, reset or unassigned meanwhile: the run is not for the current position.
                out.truncate(start);
                *drain = None;
                continue;
            };
            if n > 0 {
                left -= n;
                p.position = after_last;
                if epoch.is_some() {
                    p.position_epoch = epoch;
                }
            }
            match other {
                Some(Step::Error(e)) => {
                    p.failed = true;
                    p.buffered = false;
                    *drain = None;
                    return Some(e);
                }
                Some(Step::Done) => {
                    p.buffered = false;
                    *drain = None;
                    drop(state);
                    self.shared.wake_fetchers();
                    continue;
                }
                Some(Step::Advance(position)) => p.position = Some(position),
                Some(Step::Record(..)) | None => {}
            }
            let rotate =
                n > 0 && (p.paused || (cf.handed_out >= max_poll && !st.completed.is_empty()));
            if rotate {
                let mut cf = drain.take().expect("set above");
                if p.paused {
                    st.completed.push_front(cf);
                } else {
                    cf.handed_out = 0;
                    st.completed.push_back(cf);
                }
            }
        }
        None
    }

    /// Stops the fetch loops and the supervisor, waits for them, drops buffered data, and (unless
    /// the cluster was given to the builder) closes the cluster's connections. Later calls to
    /// `recv` return [`ConsumerError::Closed`].
    ///
    /// Cancel safety: safe; if dropped, the tasks still stop on their own.
    pub async fn close(&self) {
        let handles: Vec<JoinHandle<()>> = {
            let mut state = self.shared.lock();
            state.closed = true;
            state.completed.clear();
            state.loops.drain().map(|(_, h)| h).collect()
        };
        *self.drain.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.shared.shutdown.send_replace(true);
        self.shared.data_ready.notify_waiters();
        let supervisor = self
            .supervisor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for h in handles.into_iter().chain(supervisor) {
            let _ = h.await;
        }
        if self.owns_cluster {
            self.shared.cluster.close();
        }
    }
}

/// Whether the partition of `cf` is paused (in its current version).
fn st_paused(state: &state::State, cf: &CompletedFetch) -> bool {
    state
        .partitions
        .get(&cf.tp)
        .is_some_and(|p| p.paused && p.version == cf.version)
}

/// Where [`Consumer::take_into`] puts records.
trait Sink {
    fn len(&self) -> usize;
    fn push(&mut self, record: ConsumerRecord);
    /// Drops the records after the first `len`.
    fn truncate(&mut self, len: usize);
}

impl Sink for Vec<ConsumerRecord> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn push(&mut self, record: ConsumerRecord) {
        Vec::push(self, record);
    }

    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
}

/// Room for one record (`try_recv`, with no allocation).
impl Sink for Option<ConsumerRecord> {
    fn len(&self) -> usize {
        usize::from(self.is_some())
    }

    fn push(&mut self, record: ConsumerRecord) {
        *self = Some(record);
    }

    fn truncate(&mut self, len: usize) {
        if len == 0 {
            *self = None;
        }
    }
}
