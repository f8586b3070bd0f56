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
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    pub last_commit: Mutex<Option<SystemTime>>,
    pub halted: Mutex<Vec<Halted>>,
    /// Record timestamp → durable completion, milliseconds.
    pub latency: Histogram,
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
    /// The partitions this consumer owns (its group assignment), sorted.
    pub assigned: Vec<TopicPartition>,
    /// Owned partitions whose fetching is paused, sorted: their in-flight bound is full (or they
    /// are halted). One that stays here while `in_flight` is 0 is stuck.
    pub paused: Vec<TopicPartition>,
    /// Lag per owned partition (records between position and end), where known.
    pub lag: Vec<(TopicPartition, i64)>,
    /// Partitions stopped by the halt policy.
    pub halted: Vec<Halted>,
    /// Median time from a record's timestamp (its broker append time on topics with
    /// `message.timestamp.type=LogAppendTime`, else its create time) to its durable completion,
    /// milliseconds, over every completion in this process.
    pub completion_p50_ms: Option<u64>,
    /// The 99th percentile of the same.
    pub completion_p99_ms: Option<u64>,
}

impl Metrics {
    pub fn snapshot(&self, group: &str, in_flight: u64) -> MetricsSnapshot {
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
            in_flight,
            commits: get(&self.commits),
            commit_failures: get(&self.commit_failures),
            last_commit: *self.last_commit.lock().unwrap_or_else(|p| p.into_inner()),
            // The consumer's side, filled in by the runtime.
            assigned: Vec::new(),
            paused: Vec::new(),
            lag: Vec::new(),
            halted: self
                .halted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            completion_p50_ms: self.latency.quantile(0.5),
            completion_p99_ms: self.latency.quantile(0.99),
        }
    }
}

/// A histogram of milliseconds with about 12% resolution: exact below 16 ms, then 8 buckets per
/// power of two. Lock-free, fixed size.
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS],
}

const BUCKETS: usize = 16 + 8 * 60;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < 16 {
            return v as usize;
        }
        let log = 63 - v.leading_zeros() as usize; // ≥ 4
        let sub = ((v >> (log - 3)) & 7) as usize;
        (16 + 8 * (log - 4) + sub).min(BUCKETS - 1)
    }

    /// The largest value of bucket `i`.
    fn upper(i: usize) -> u64 {
        if i < 16 {
            return i as u64;
        }
        let log = (i - 16) / 8 + 4;
        let sub = ((i - 16) % 8) as u128;
        let end = (8 + sub + 1) << (log - 3);
        u64::try_from(end - 1).unwrap_or(u64::MAX)
    }

    #[cfg(test)]
    pub fn record(&self, ms: u64) {
        self.buckets[Self::index(ms)].fetch_add(1, Ordering::Relaxed);
    }

    /// Records every value of `values`, one atomic add per run of values in the same bucket (the
    /// values of a batch of completions mostly share one) rather than one per value.
    pub fn record_all(&self, values: impl IntoIterator<Item = u64>) {
        let mut run: Option<(usize, u64)> = None;
        for v in values {
            let i = Self::index(v);
            match &mut run {
                Some((j, n)) if *j == i => *n += 1,
                _ => {
                    if let Some((j, n)) = run.replace((i, 1)) {
                        self.buckets[j].fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
        }
        if let Some((j, n)) = run {
            self.buckets[j].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The value at quantile `q` (0..=1), as its bucket's upper bound; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::upper(i));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_all_counts_like_one_record_per_value() {
        let (one, all) = (Histogram::default(), Histogram::default());
        let values = [3, 3, 3, 200, 201, 3, 9000, 9000, 0];
        for v in values {
            one.record(v);
        }
        all.record_all(values);
        let counts = |h: &Histogram| -> Vec<u64> {
            h.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect()
        };
        assert_eq!(counts(&one), counts(&all));
        assert_eq!(counts(&all).iter().sum::<u64>(), values.len() as u64);
    }

    #[test]
    fn quantiles_are_within_the_bucket_resolution() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((500..=565).contains(&p50), "{p50}");
        assert!((990..=1120).contains(&p99), "{p99}");
        for v in [0u64, 7, 15, 16, 17, 100, 12345, u64::MAX / 2] {
            let i = Histogram::index(v);
            assert!(
                Histogram::upper(i) >= v.min(Histogram::upper(BUCKETS - 1)),
                "{v}"
            );
            if i > 0 {
                assert!(Histogram::upper(i - 1) < v, "{v}");
            }
        }
    }
}
