//! Counters of one consumer of the runtime, and their snapshot.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::consumer::TopicPartition;

#[derive(Default)]
pub(crate) struct Metrics {
    pub processed: AtomicU64,
    pub skipped: AtomicU64,
    pub suppressed: AtomicU64,
    pub conflicts: AtomicU64,
    pub retried: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub in_flight: AtomicU64,
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    pub last_commit: Mutex<Option<SystemTime>>,
    pub halted: Mutex<Vec<Halted>>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A partition stopped by the halt policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halted {
    /// The partition.
    pub partition: TopicPartition,
    /// The record that failed every attempt; the commit stays below it.
    pub offset: i64,
    /// Its last error.
    pub error: String,
}

/// A point-in-time view of one consumer's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// The group id.
    pub group: String,
    /// Workflows that completed (durably) in this process.
    pub processed: u64,
    /// Records skipped without calling the workflow, because the journal or the commit's
    /// completion map said they were finished.
    pub skipped_duplicates: u64,
    /// Completions the journal refused because the key was finished already (a workflow that
    /// ran twice across a rebalance; its second completion had no effect).
    pub suppressed_completions: u64,
    /// Workflows run again because a value their transaction read changed before they
    /// completed.
    pub transaction_conflicts: u64,
    /// Attempts that were retried after a failure.
    pub retried: u64,
    /// Attempts that failed (errors and panics).
    pub failed_attempts: u64,
    /// Records copied to the dead-letter topic.
    pub dead_lettered: u64,
    /// Records received and not finished yet.
    pub in_flight: u64,
    /// Successful offset commits.
    pub commits: u64,
    /// Offset commits that failed (each counts as not committed).
    pub commit_failures: u64,
    /// When the last commit succeeded.
    pub last_commit: Option<SystemTime>,
    /// Lag per owned partition (records between position and end), where known.
    pub lag: Vec<(TopicPartition, i64)>,
    /// Partitions stopped by the halt policy.
    pub halted: Vec<Halted>,
}

impl Metrics {
    pub fn snapshot(&self, group: &str, lag: Vec<(TopicPartition, i64)>) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            group: group.to_string(),
            processed: get(&self.processed),
            skipped_duplicates: get(&self.skipped),
            suppressed_completions: get(&self.suppressed),
            transaction_conflicts: get(&self.conflicts),
            retried: get(&self.retried),
            failed_attempts: get(&self.failed_attempts),
            dead_lettered: get(&self.dead_lettered),
            in_flight: get(&self.in_flight),
            commits: get(&self.commits),
            commit_failures: get(&self.commit_failures),
            last_commit: *self.last_commit.lock().unwrap_or_else(|p| p.into_inner()),
            lag,
            halted: self
                .halted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}
