//! The supervisor task: finds leaders for partitions that lost theirs (metadata refresh) and
//! positions for partitions that have none (ListOffsets under `auto.offset.reset`).

use std::collections::{BTreeMap, BTreeSet};
use std::pin::pin;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::broker_loop::ensure_loop;
use super::state::{Leader, ResetTo, Shared};
use super::{ConsumerError, TopicPartition};
use crate::cluster::{Backoff, MetadataSnapshot};
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
    let state = shared.lock();
    state
        .partitions
        .values()
        .any(|p| !p.failed && (p.leader.is_none() || (p.position.is_none() && p.reset.is_some())))
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
