//! The supervisor task: finds leaders for partitions that lost theirs (metadata refresh) and
//! positions for partitions that have none (ListOffsets under `auto.offset.reset`).

use std::collections::{BTreeMap, BTreeSet};
use std::pin::pin;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, ListOffsetsRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::broker_loop::ensure_loop;
use super::state::{Leader, ResetTo, Shared};
use super::{ConsumerError, TopicPartition};
use crate::cluster::{Backoff, MetadataSnapshot};
use crate::config::AutoOffsetReset;
use crate::protocol::{ErrorAction, ErrorCode};

/// Runs until shutdown: whenever woken (or, while work remains, every backoff), refreshes
/// leaders and resolves positions.
pub(crate) async fn supervise(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let settings = shared.settings.clone();
    let mut backoff = Backoff::new(settings.retry_backoff, settings.retry_backoff_max);
    loop {
        if *shutdown.borrow() {
            break;
        }
        let pending = tokio::select! {
            p = run_once(&shared) => p,
            _ = shutdown.changed() => break,
        };
        if pending {
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = shutdown.changed() => {}
            }
        } else {
            backoff.reset();
            let woken = pin!(shared.supervisor_wake.notified());
            tokio::select! {
                _ = woken => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// One round of leader and position work. Returns whether some remains (to retry later).
pub(crate) async fn run_once(shared: &Arc<Shared>) -> bool {
    let topics: BTreeSet<Arc<str>> = {
        let state = shared.lock();
        state
            .partitions
            .iter()
            .filter(|(_, p)| p.leader.is_none() && !p.failed)
            .map(|(tp, _)| tp.topic.clone())
            .collect()
    };
    if !topics.is_empty() {
        let names: Vec<&str> = topics.iter().map(|t| &**t).collect();
        match shared.cluster.refresh_topics(&names).await {
            Ok(snapshot) => apply_leaders(shared, &snapshot),
            Err(e) => tracing::warn!(error = %e, "metadata refresh for the consumer failed"),
        }
    }
    resolve_positions(shared).await;
    validate_positions(shared).await;
    let state = shared.lock();
    state.partitions.values().any(|p| {
        !p.failed
            && (p.leader.is_none() || p.validate || (p.position.is_none() && p.reset.is_some()))
    })
}

/// Takes leaders and leader epochs from `snapshot` for every assigned partition, starting fetch
/// loops for new leaders. An older leader epoch than the one known is ignored (stale metadata).
pub(crate) fn apply_leaders(shared: &Arc<Shared>, snapshot: &MetadataSnapshot) {
    let mut state = shared.lock();
    let mut nodes = BTreeSet::new();
    for (tp, p) in state.partitions.iter_mut() {
        let Some(meta) = snapshot
            .topic(&tp.topic)
            .and_then(|t| t.partitions.iter().find(|m| m.partition == tp.partition))
        else {
            continue;
        };
        if meta.leader < 0 || !snapshot.brokers.contains_key(&meta.leader) {
            continue;
        }
        let new = Leader {
            node: meta.leader,
            epoch: meta.leader_epoch,
        };
        let stale = p
            .leader
            .is_some_and(|old| new.epoch >= 0 && old.epoch > new.epoch);
        if !stale {
            if p.leader != Some(new) {
                tracing::debug!(%tp, node = new.node, epoch = new.epoch, "partition leader");
                // KIP-320: a new leader may have a log that diverges below our position.
                if p.position.is_some() && p.position_epoch.is_some() {
                    p.validate = true;
                }
            }
            p.leader = Some(new);
        }
        if let Some(l) = p.leader {
            nodes.insert(l.node);
        }
    }
    for node in nodes {
        ensure_loop(shared, &mut state, node);
    }
    drop(state);
    shared.wake_fetchers();
}

/// Looks up positions for partitions that need one, with ListOffsets at their leaders.
pub(crate) async fn resolve_positions(shared: &Arc<Shared>) {
    // By leader: (partition, version, leader epoch, where to).
    let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, u64, i32, ResetTo)>> = BTreeMap::new();
    {
        let state = shared.lock();
        for (tp, p) in &state.partitions {
            if let (None, Some(to), Some(leader), false) = (p.position, p.reset, p.leader, p.failed)
            {
                by_leader.entry(leader.node).or_default().push((
                    tp.clone(),
                    p.version,
                    leader.epoch,
                    to,
                ));
            }
        }
    }
    for (node, wanted) in by_leader {
        if let Err(e) = list_offsets(shared, node, &wanted).await {
            tracing::debug!(node, error = %e, "ListOffsets failed; will retry");
            let mut state = shared.lock();
            for (tp, version, ..) in &wanted {
                if let Some(p) = state.partitions.get_mut(tp)
                    && p.version == *version
                    && e.is_retriable()
                {
                    p.leader = None;
                }
            }
        }
    }
    shared.wake_fetchers();
}

async fn list_offsets(
    shared: &Arc<Shared>,
    node: i32,
    wanted: &[(TopicPartition, u64, i32, ResetTo)],
) -> Result<(), crate::cluster::ClusterError> {
    let conn = shared.cluster.broker(node).await?;
    let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for (tp, _, epoch, to) in wanted {
        topics.entry(&tp.topic).or_default().push(
            ListOffsetsPartition::default()
                .with_partition_index(tp.partition)
                .with_current_leader_epoch(*epoch)
                .with_timestamp(to.timestamp()),
        );
    }
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(shared.settings.isolation.as_i8())
        .with_timeout_ms(
            i32::try_from(shared.settings.request_timeout.as_millis()).unwrap_or(i32::MAX),
        )
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = conn.request(&request).await?;
    let mut state = shared.lock();
    let mut errors = Vec::new();
    for topic in &response.topics {
        for r in &topic.partitions {
            let Some((tp, version, ..)) = wanted.iter().find(|(tp, ..)| {
                &*tp.topic == topic.name.0.as_str() && tp.partition == r.partition_index
            }) else {
                continue;
            };
            let Some(p) = state.partitions.get_mut(tp) else {
                continue;
            };
            if p.version != *version || p.position.is_some() {
                continue;
            }
            match ErrorCode::from_i16(r.error_code) {
                None => {
                    p.position = Some(r.offset);
                    p.reset = None;
                    if let Some(old) = p.reset_from.take() {
                        tracing::warn!(
                            %tp,
                            old_offset = old,
                            new_offset = r.offset,
                            policy = shared.settings.reset.as_str(),
                            "offset out of range; reset by auto.offset.reset"
                        );
                    } else {
                        tracing::debug!(%tp, offset = r.offset, "position from auto.offset.reset");
                    }
                }
                Some(ErrorCode::UnknownLeaderEpoch) => p.leader = None,
                Some(code) => match code.action() {
                    ErrorAction::RefreshMetadata => p.leader = None,
                    ErrorAction::Retry => {}
                    ErrorAction::RediscoverCoordinator
                    | ErrorAction::Rejoin
                    | ErrorAction::Fail => {
                        p.failed = true;
                        errors.push(ConsumerError::Partition {
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                            offset: -1,
                            code,
                        });
                    }
                },
            }
        }
    }
    for e in errors {
        shared.report(&mut state, e);
    }
    Ok(())
}

/// What an OffsetForLeaderEpoch answer means for a position (KIP-320; the Java client's
/// `SubscriptionState.maybeCompleteValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validation {
    /// The leader's log holds everything below the position.
    Valid,
    /// The leader's log for the position's epoch ends at `end_offset` (in `epoch`), below the
    /// position: the records from there on were truncated.
    Diverged { end_offset: i64, epoch: i32 },
    /// The leader does not know the position's epoch or an end offset for it.
    Unknown,
}

/// Judges the leader's `(leader_epoch, end_offset)` answer for a partition at `position`.
pub(crate) fn judge(position: i64, leader_epoch: i32, end_offset: i64) -> Validation {
    if leader_epoch < 0 || end_offset < 0 {
        Validation::Unknown
    } else if end_offset < position {
        Validation::Diverged {
            end_offset,
            epoch: leader_epoch,
        }
    } else {
        Validation::Valid
    }
}

/// Validates positions whose partition changed leader, with OffsetForLeaderEpoch at the leader.
pub(crate) async fn validate_positions(shared: &Arc<Shared>) {
    // By leader: (partition, version, current leader epoch, position, position epoch).
    let mut by_leader: BTreeMap<i32, Vec<Check>> = BTreeMap::new();
    {
        let state = shared.lock();
        for (tp, p) in &state.partitions {
            if let (true, false, Some(leader), Some(position), Some(epoch)) =
                (p.validate, p.failed, p.leader, p.position, p.position_epoch)
            {
                by_leader.entry(leader.node).or_default().push(Check {
                    tp: tp.clone(),
                    version: p.version,
                    leader_epoch: leader.epoch,
                    position,
                    position_epoch: epoch,
                });
            }
        }
    }
    for (node, checks) in by_leader {
        if let Err(e) = offset_for_leader_epoch(shared, node, &checks).await {
            tracing::debug!(node, error = %e, "OffsetForLeaderEpoch failed; will retry");
            let mut state = shared.lock();
            for c in &checks {
                if let Some(p) = state.partitions.get_mut(&c.tp)
                    && p.version == c.version
                {
                    if e.is_retriable() {
                        p.leader = None;
                    } else {
                        // A broker without the API (or refusing it) cannot validate; fetch on, as
                        // a client without KIP-320 would.
                        tracing::warn!(tp = %c.tp, error = %e, "cannot validate the position after a leader change");
                        p.validate = false;
                    }
                }
            }
        }
    }
    shared.wake_fetchers();
}

/// One partition's position to validate.
struct Check {
    tp: TopicPartition,
    version: u64,
    leader_epoch: i32,
    position: i64,
    position_epoch: i32,
}

async fn offset_for_leader_epoch(
    shared: &Arc<Shared>,
    node: i32,
    checks: &[Check],
) -> Result<(), crate::cluster::ClusterError> {
    let conn = shared.cluster.broker(node).await?;
    let mut topics: BTreeMap<&str, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
    for c in checks {
        topics.entry(&c.tp.topic).or_default().push(
            OffsetForLeaderPartition::default()
                .with_partition(c.tp.partition)
                .with_current_leader_epoch(c.leader_epoch)
                .with_leader_epoch(c.position_epoch),
        );
    }
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = conn.request(&request).await?;
    let mut state = shared.lock();
    let mut errors = Vec::new();
    let mut reset = false;
    for topic in &response.topics {
        for r in &topic.partitions {
            let Some(c) = checks
                .iter()
                .find(|c| &*c.tp.topic == topic.topic.0.as_str() && c.tp.partition == r.partition)
            else {
                continue;
            };
            let next_version = state.next_version + 1;
            let Some(p) = state.partitions.get_mut(&c.tp) else {
                continue;
            };
            if p.version != c.version || !p.validate || p.position != Some(c.position) {
                continue;
            }
            match ErrorCode::from_i16(r.error_code) {
                None => {}
                Some(ErrorCode::UnknownLeaderEpoch) => {
                    p.leader = None;
                    continue;
                }
                Some(code) => {
                    match code.action() {
                        ErrorAction::RefreshMetadata => p.leader = None,
                        ErrorAction::Retry => {}
                        ErrorAction::RediscoverCoordinator
                        | ErrorAction::Rejoin
                        | ErrorAction::Fail => {
                            p.failed = true;
                            errors.push(ConsumerError::Partition {
                                topic: c.tp.topic.clone(),
                                partition: c.tp.partition,
                                offset: c.position,
                                code,
                            });
                        }
                    }
                    continue;
                }
            }
            p.validate = false;
            let verdict = judge(c.position, r.leader_epoch, r.end_offset);
            let divergent_offset = match verdict {
                Validation::Valid => {
                    state.validations.valid += 1;
                    tracing::debug!(tp = %c.tp, position = c.position, "position validated after a leader change");
                    continue;
                }
                Validation::Diverged { end_offset, .. } => Some(end_offset),
                Validation::Unknown => None,
            };
            state.validations.truncated += 1;
            let Some(p) = state.partitions.get_mut(&c.tp) else {
                continue;
            };
            let policy = shared.settings.reset;
            if policy == AutoOffsetReset::None {
                p.failed = true;
                errors.push(ConsumerError::LogTruncation {
                    topic: c.tp.topic.clone(),
                    partition: c.tp.partition,
                    offset: c.position,
                    divergent_offset,
                });
                continue;
            }
            // Data fetched from the old leader past the divergence is dropped with the version.
            p.version = next_version;
            reset = true;
            match verdict {
                Validation::Diverged { end_offset, epoch } => {
                    tracing::warn!(tp = %c.tp, position = c.position, new_position = end_offset,
                        "log truncation detected; resuming at the first offset known to diverge");
                    p.position = Some(end_offset);
                    p.position_epoch = Some(epoch);
                }
                _ => {
                    tracing::warn!(tp = %c.tp, position = c.position, policy = policy.as_str(),
                        "log truncation detected and the leader has no end offset for the position's epoch; resetting by auto.offset.reset");
                    p.position = None;
                    p.position_epoch = None;
                    p.reset_from = Some(c.position);
                    p.reset = Some(if policy == AutoOffsetReset::Earliest {
                        ResetTo::Earliest
                    } else {
                        ResetTo::Latest
                    });
                }
            }
            state.next_version = next_version;
            state.drop_buffered(&c.tp);
        }
    }
    for e in errors {
        shared.report(&mut state, e);
    }
    drop(state);
    if reset {
        shared.supervisor_wake.notify_one();
    }
    Ok(())
}
