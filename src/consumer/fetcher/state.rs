//! State shared by the application's calls, the per-broker fetch loops and the supervisor task.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::completed::CompletedFetch;
use super::{ConsumerError, FetchRequestInfo, TopicPartition};
use crate::cluster::Cluster;
use crate::config::{AutoOffsetReset, ClientConfig, IsolationLevel};
use crate::connection::ConnectionConfig;

/// How many [`FetchRequestInfo`]s the consumer remembers.
pub(crate) const FETCH_HISTORY: usize = 64;

/// Settings read once from the [`ClientConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub isolation: IsolationLevel,
    pub reset: AutoOffsetReset,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub max_wait: Duration,
    pub partition_max_bytes: i32,
    pub max_poll_records: usize,
    pub budget: usize,
    pub request_timeout: Duration,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// Largest records section one compressed batch may inflate to.
    pub max_decompressed: usize,
}

impl Settings {
    pub fn from_config(config: &ClientConfig, budget: Option<usize>) -> Self {
        let c = config.consumer();
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let max_bytes = to_i32(c.fetch_max_bytes());
        Self {
            isolation: c.isolation_level(),
            reset: c.auto_offset_reset(),
            min_bytes: to_i32(c.fetch_min_bytes()),
            max_bytes,
            max_wait: c.fetch_max_wait(),
            partition_max_bytes: to_i32(c.max_partition_fetch_bytes()),
            max_poll_records: c.max_poll_records().max(1),
            budget: budget.unwrap_or_else(|| default_budget(c.fetch_max_bytes())),
            request_timeout: config.request_timeout(),
            retry_backoff: config.retry_backoff(),
            retry_backoff_max: config.retry_backoff_max(),
            // Ten times the fetch size, at least the decoder's default: a batch that inflates
            // more than that is a bomb, not data.
            max_decompressed: (usize::try_from(max_bytes).unwrap_or(usize::MAX))
                .saturating_mul(10)
                .max(crate::protocol::records::DEFAULT_MAX_DECOMPRESSED),
        }
    }
}

/// The default prefetch budget: two full fetch responses (`2 × fetch.max.bytes`).
pub(crate) fn default_budget(fetch_max_bytes: u32) -> usize {
    usize::try_from(fetch_max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_mul(2)
}

/// The leader of a partition, from metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leader {
    pub node: i32,
    pub epoch: i32,
}

/// Where a partition without a position starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetTo {
    Earliest,
    Latest,
}

impl ResetTo {
    /// The ListOffsets timestamp: -2 earliest, -1 latest.
    pub fn timestamp(self) -> i64 {
        match self {
            Self::Earliest => -2,
            Self::Latest => -1,
        }
    }
}

/// Everything the consumer knows about one assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub topic_id: Uuid,
    /// The next offset to hand out; `None` until the reset policy or a seek sets one.
    pub position: Option<i64>,
    /// Pending position lookup: set when the partition has no position and a policy applies.
    pub reset: Option<ResetTo>,
    /// The position that was out of range, for the warning when the reset lands.
    pub reset_from: Option<i64>,
    /// The leader epoch of the last record returned (the batch's partition leader epoch), when
    /// known; the position's epoch for KIP-320 validation.
    pub position_epoch: Option<i32>,
    /// The leader changed since the position was reached: check with OffsetForLeaderEpoch that the
    /// new leader's log has not diverged below the position before fetching again.
    pub validate: bool,
    /// `None` while metadata must be refreshed to find the leader.
    pub leader: Option<Leader>,
    pub paused: bool,
    /// When the partition was last paused (while it is).
    pub paused_at: Option<Instant>,
    /// Stopped after an error reported to the application; cleared by a seek.
    pub failed: bool,
    /// Bumped whenever the position changes other than by consumption, or the partition is
    /// reassigned; data fetched under an older version is dropped.
    pub version: u64,
    /// The id of the fetch request in flight for this partition.
    pub in_flight: Option<u64>,
    /// A completed fetch of this partition waits in the buffer (or is being drained).
    pub buffered: bool,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

impl PartitionState {
    pub fn new(topic_id: Uuid, leader: Option<Leader>, version: u64) -> Self {
        Self {
            topic_id,
            position: None,
            reset: None,
            reset_from: None,
            position_epoch: None,
            validate: false,
            leader,
            paused: false,
            paused_at: None,
            failed: false,
            version,
            in_flight: None,
            buffered: false,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
        }
    }

    /// Whether a fetch loop for `node` may fetch this partition now.
    pub fn fetchable_on(&self, node: i32) -> bool {
        self.position.is_some()
            && !self.paused
            && !self.failed
            && !self.validate
            && !self.buffered
            && self.in_flight.is_none()
            && self.led_by(node)
    }

    /// Whether `node` leads this partition (as far as the consumer knows).
    pub fn led_by(&self, node: i32) -> bool {
        self.leader.is_some_and(|l| l.node == node)
    }

    /// Whether the last fetch response showed nothing readable after the position (false while
    /// unknown).
    pub fn caught_up(&self, isolation: IsolationLevel) -> bool {
        let end = match isolation {
            IsolationLevel::ReadCommitted => self.last_stable_offset,
            IsolationLevel::ReadUncommitted => self.high_watermark,
        };
        end >= 0 && self.position.is_some_and(|p| p >= end)
    }

    /// Sets the pause flag, noting when a pause starts.
    pub fn set_paused(&mut self, paused: bool, now: Instant) {
        if paused && !self.paused {
            self.paused_at = Some(now);
        } else if !paused {
            self.paused_at = None;
        }
        self.paused = paused;
    }
}

/// Shortest long poll while a paused partition has records behind it.
pub(crate) const MIN_PAUSED_WAIT: Duration = Duration::from_millis(5);

/// How long a fetch of `node` may be held by the broker: `fetch.max.wait.ms`, but while a
/// partition of `node` is paused with records behind it, no longer than it has been paused
/// (at least [`MIN_PAUSED_WAIT`]).
///
/// The connection carries one request at a time, so a partition resumed while a long poll is
/// out waits for that poll to come back before it is fetched again. Pauses for backpressure
/// (the exactly-once runtime at its in-flight bound) last milliseconds: a 500 ms long poll of
/// the caught-up partitions would park the resumed ones for up to 500 ms, halving throughput.
/// Tying the wait to the pause's age bounds that delay by the time the partition was paused,
/// while a partition paused for long (a halted one) soon gets the full long poll again, so idle
/// partitions are not polled in a busy loop.
pub(crate) fn long_poll_wait<'a>(
    max_wait: Duration,
    isolation: IsolationLevel,
    node: i32,
    partitions: impl IntoIterator<Item = &'a PartitionState>,
    now: Instant,
) -> Duration {
    partitions
        .into_iter()
        .filter(|p| !p.failed && !p.caught_up(isolation) && p.led_by(node))
        .filter_map(|p| p.paused_at)
        .map(|at| now.saturating_duration_since(at).max(MIN_PAUSED_WAIT))
        .fold(max_wait, Duration::min)
}

/// The mutable state, behind one mutex that is never held across an await.
#[derive(Default)]
pub(crate) struct State {
    pub partitions: crate::consumer::fast_hash::FastMap<TopicPartition, PartitionState>,
    /// Fetched data not yet handed out, oldest first.
    pub completed: VecDeque<CompletedFetch>,
    /// Partition errors to report from `recv`, oldest first.
    pub errors: VecDeque<ConsumerError>,
    /// One fetch loop per leader.
    pub loops: HashMap<i32, JoinHandle<()>>,
    /// Source of partition versions (unique across reassignments).
    pub next_version: u64,
    /// Source of fetch request ids.
    pub next_fetch_id: u64,
    /// Recent fetch requests, newest last.
    pub history: VecDeque<FetchRequestInfo>,
    /// Positions checked with OffsetForLeaderEpoch after a leader change, and how many of those
    /// found the log truncated.
    pub validations: Validations,
    pub closed: bool,
}

impl State {
    pub fn bump_version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Drops buffered data of `tp` (after a seek, revoke or reset).
    pub fn drop_buffered(&mut self, tp: &TopicPartition) {
        self.completed.retain(|c| &c.tp != tp);
        if let Some(p) = self.partitions.get_mut(tp) {
            p.buffered = false;
        }
    }
}

/// Counts of KIP-320 position validations; see [`Consumer::validations`](super::Consumer::validations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Validations {
    /// Positions the new leader confirmed.
    pub valid: u64,
    /// Positions above the new leader's log end for their epoch (records were truncated).
    pub truncated: u64,
}

/// The prefetch byte budget: bytes of fetched data held (`buffered`) plus bytes promised to
/// fetch requests in flight (`reserved`) stay at or below `limit`.
#[derive(Debug)]
pub(crate) struct Budget {
    pub limit: usize,
    inner: Mutex<BudgetInner>,
    /// Woken whenever bytes are released.
    pub freed: Notify,
}

#[derive(Debug, Default)]
struct BudgetInner {
    buffered: usize,
    reserved: usize,
    peak: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            inner: Mutex::new(BudgetInner::default()),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BudgetInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves between `min` and `max` bytes for a fetch response, or nothing when less than
    /// `min` is free.
    pub fn try_reserve(&self, min: usize, max: usize) -> Option<usize> {
        let mut b = self.lock();
        let free = self.limit.saturating_sub(b.buffered + b.reserved);
        if free < min.max(1) {
            return None;
        }
        let granted = free.min(max);
        b.reserved += granted;
        Some(granted)
    }

    /// Returns a reservation.
    pub fn release_reservation(&self, bytes: usize) {
        {
            let mut b = self.lock();
            b.reserved = b.reserved.saturating_sub(bytes);
        }
        self.freed.notify_waiters();
    }

    /// Turns a reservation into a charge of `actual` bytes of fetched data, released when the
    /// returned guard drops.
    pub fn charge(self: &Arc<Self>, reserved: usize, actual: usize) -> Arc<Charge> {
        {
            let mut b = self.lock();
            b.reserved = b.reserved.saturating_sub(reserved);
            b.buffered += actual;
            b.peak = b.peak.max(b.buffered);
        }
        self.freed.notify_waiters();
        Arc::new(Charge {
            bytes: actual,
            budget: self.clone(),
        })
    }

    /// Bytes of fetched data held now.
    pub fn buffered(&self) -> usize {
        self.lock().buffered
    }

    /// The most bytes ever held at once.
    pub fn peak(&self) -> usize {
        self.lock().peak
    }
}

/// Bytes of one fetch response held in memory; released when the last partition's data of the
/// response is dropped (the partitions' records are slices of one response frame).
#[derive(Debug)]
pub(crate) struct Charge {
    bytes: usize,
    budget: Arc<Budget>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        {
            let mut b = self.budget.lock();
            b.buffered = b.buffered.saturating_sub(self.bytes);
        }
        self.budget.freed.notify_waiters();
    }
}

/// What every task of one consumer shares.
pub(crate) struct Shared {
    pub cluster: Cluster,
    pub settings: Settings,
    pub connection_config: ConnectionConfig,
    pub state: Mutex<State>,
    pub budget: Arc<Budget>,
    /// Wakes fetch loops: assignment, positions, pause state or leaders changed.
    pub fetch_wake: Notify,
    /// Wakes `recv`: data or an error arrived.
    pub data_ready: Notify,
    /// Wakes the supervisor: a partition needs a leader or a position.
    pub supervisor_wake: Notify,
    /// `true` once the consumer closes.
    pub shutdown: watch::Sender<bool>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every fetch loop.
    pub fn wake_fetchers(&self) {
        self.fetch_wake.notify_waiters();
    }

    /// Queues a partition error for `recv` and wakes it.
    pub fn report(&self, state: &mut State, error: ConsumerError) {
        state.errors.push_back(error);
        self.data_ready.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_millis(500);

    fn partition(node: i32, position: i64, high_watermark: i64) -> PartitionState {
        let mut p = PartitionState::new(Uuid::nil(), Some(Leader { node, epoch: 0 }), 1);
        p.position = Some(position);
        p.high_watermark = high_watermark;
        p
    }

    fn wait(partitions: &[PartitionState], now: Instant) -> Duration {
        long_poll_wait(MAX, IsolationLevel::ReadUncommitted, 1, partitions, now)
    }

    #[test]
    fn a_paused_partition_with_a_backlog_caps_the_long_poll_at_its_pause_age() {
        let t0 = Instant::now();
        // Behind (offset 10 of 100), and caught up.
        let mut ps = [partition(1, 10, 100), partition(1, 100, 100)];
        assert_eq!(wait(&ps, t0), MAX);

        ps[0].set_paused(true, t0);
        assert_eq!(
            wait(&ps, t0),
            MIN_PAUSED_WAIT,
            "just paused: the shortest wait"
        );
        let later = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(wait(&ps, later(40)), Duration::from_millis(40));
        assert_eq!(
            wait(&ps, later(3_000)),
            MAX,
            "paused for long: the full wait"
        );

        // Pausing again does not restart the clock; resuming clears it.
        ps[0].set_paused(true, later(30));
        assert_eq!(ps[0].paused_at, Some(t0));
        ps[0].set_paused(false, later(50));
        assert_eq!(ps[0].paused_at, None);
        assert_eq!(wait(&ps, later(50)), MAX);
    }

    #[test]
    fn paused_partitions_without_a_backlog_or_on_another_broker_do_not_shorten_it() {
        let t0 = Instant::now();
        let mut caught_up = partition(1, 100, 100);
        caught_up.set_paused(true, t0);
        let mut elsewhere = partition(2, 0, 100);
        elsewhere.set_paused(true, t0);
        let mut failed = partition(1, 0, 100);
        failed.set_paused(true, t0);
        failed.failed = true;
        assert_eq!(wait(&[caught_up, elsewhere, failed], t0), MAX);
    }
}
