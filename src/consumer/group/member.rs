//! The membership task: join, sync, apply the assignment, heartbeat, rejoin, leave.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until};

use crate::cluster::Backoff;
use crate::consumer::TopicPartition;
use crate::consumer::assignor::{RebalanceProtocol, assignor_for};
use crate::protocol::{ErrorAction, ErrorCode};

use super::membership::{self, JoinFailure, JoinParams, Joined};
use super::{GroupError, GroupHandle, Inner, OffsetAndMetadata};

/// Runs until shutdown or a fatal error.
pub(super) async fn run(inner: Arc<Inner>) {
    let handle = GroupHandle {
        inner: inner.clone(),
    };
    let mut shutdown = inner.shutdown.subscribe();
    let config = inner.cluster.config();
    let mut backoff = Backoff::new(
        config.retry_backoff(),
        config.retry_backoff_max().max(Duration::from_secs(1)),
    );
    // The last answer from the coordinator. With none for `session.timeout.ms` the coordinator has
    // evicted this member by now and given its partitions to others, so they are lost here too
    // (as librdkafka does) instead of waiting for a reconnect to say so: a member cut off from
    // the cluster stops working on partitions that are no longer its own.
    inner.lock().contact = Some(Instant::now());
    'join: loop {
        if *shutdown.borrow() {
            break;
        }
        if inner.lock().left_for_poll {
            tokio::select! {
                _ = inner.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        inner.lock().rejoin = false;
        with_heartbeats(&inner, prepare_join(&handle)).await;
        let (member_id, generation_id, owned, topics) = {
            let s = inner.lock();
            (
                s.member_id.clone(),
                s.generation_id,
                s.owned.clone(),
                s.topics.clone(),
            )
        };
        let params = JoinParams {
            member_id: &member_id,
            instance_id: inner.settings.instance_id.as_deref(),
            session_timeout: inner.settings.session_timeout,
            rebalance_timeout: inner.settings.max_poll_interval,
            strategies: &inner.settings.strategies,
            topics: &topics,
            owned: &owned,
            generation_id,
        };
        let join = membership::join_and_sync(&inner.membership, &params);
        tokio::pin!(join);
        let mut expired = false;
        let joined = loop {
            let owns = !inner.lock().owned.is_empty();
            tokio::select! {
                r = &mut join => break r,
                _ = shutdown.changed() => break 'join,
                // Partitions kept through a cooperative rebalance: with no answer from the
                // coordinator for a session they are no longer this member's (it may be cut
                // off), so they are lost while the join goes on. A rebalance that legitimately
                // takes longer than the session costs them too: safe, and rare.
                _ = sleep_until(session_end(&inner)), if owns && !expired => {
                    expired = true;
                    session_timed_out(&handle).await;
                }
            }
        };
        match joined {
            Ok(j) => {
                backoff.reset();
                inner.lock().contact = Some(Instant::now());
                with_heartbeats(&inner, apply(&handle, j)).await;
            }
            Err(JoinFailure::Rejoin { member_id, reset }) => {
                if reset {
                    tracing::info!(group = %inner.group, "member id or generation reset; rejoining");
                    lose_all(&handle, "generation reset").await;
                    reset_member(&inner);
                } else {
                    inner.lock().member_id = member_id;
                }
                continue;
            }
            Err(JoinFailure::Retry(e)) => {
                inner.membership.on_error(&e).await;
                session_timed_out(&handle).await;
                let delay = backoff.next_delay();
                tracing::debug!(group = %inner.group, error = %e, ?delay, "join failed; retrying");
                tokio::select! {
                    _ = sleep(delay) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            }
            Err(JoinFailure::Fatal(e)) => {
                fatal(&handle, e).await;
                return;
            }
        }

        // Stable: heartbeat until something asks for a rejoin.
        let heartbeat = inner.settings.heartbeat_interval;
        let mut next_heartbeat = Instant::now() + heartbeat;
        let mut next_commit = inner.settings.auto_commit.map(|d| Instant::now() + d);
        loop {
            if inner.lock().rejoin {
                continue 'join;
            }
            let commit_at = next_commit.unwrap_or(next_heartbeat + Duration::from_secs(3600));
            tokio::select! {
                _ = sleep_until(next_heartbeat) => {}
                _ = sleep_until(commit_at), if next_commit.is_some() => {
                    next_commit = inner.settings.auto_commit.map(|d| Instant::now() + d);
                    spawn_auto_commit(&inner);
                    continue;
                }
                _ = inner.wake.notified() => continue,
                _ = shutdown.changed() => break 'join,
            }
            next_heartbeat = Instant::now() + heartbeat;
            if inner.poll_expired() {
                tracing::warn!(
                    group = %inner.group,
                    max_poll_interval = ?inner.settings.max_poll_interval,
                    "the application did not call recv within max.poll.interval.ms; leaving the group"
                );
                lose_all(&handle, "max.poll.interval.ms exceeded").await;
                if inner.settings.instance_id.is_none() {
                    let member_id = inner.lock().member_id.clone();
                    membership::leave(
                        &inner.membership,
                        &member_id,
                        "consumer poll timeout has expired",
                    )
                    .await;
                }
                reset_member(&inner);
                inner.lock().left_for_poll = true;
                continue 'join;
            }
            let (generation_id, member_id) = {
                let s = inner.lock();
                (s.generation_id, s.member_id.clone())
            };
            let beat = membership::heartbeat(
                &inner.membership,
                generation_id,
                &member_id,
                inner.settings.instance_id.as_deref(),
            );
            let Ok(result) = tokio::time::timeout_at(session_end(&inner), beat).await else {
                session_timed_out(&handle).await;
                continue 'join;
            };
            heard_from_coordinator(&inner, &result);
            match result {
                Ok(None) => {}
                Ok(Some(ErrorCode::RebalanceInProgress)) => {
                    tracing::info!(group = %inner.group, generation_id, "the group is rebalancing; rejoining");
                    continue 'join;
                }
                Ok(Some(code @ (ErrorCode::IllegalGeneration | ErrorCode::UnknownMemberId))) => {
                    tracing::warn!(group = %inner.group, generation_id, %code, "evicted from the group; partitions lost");
                    lose_all(&handle, "evicted").await;
                    reset_member(&inner);
                    continue 'join;
                }
                Ok(Some(ErrorCode::FencedInstanceId)) => {
                    let e = GroupError::Fenced {
                        group: inner.group.clone(),
                        instance_id: inner.settings.instance_id.clone().unwrap_or_default(),
                    };
                    fatal(&handle, e).await;
                    return;
                }
                Ok(Some(code)) if code.action() == ErrorAction::RediscoverCoordinator => {
                    inner.membership.invalidate().await;
                    if session_timed_out(&handle).await {
                        continue 'join;
                    }
                    next_heartbeat = Instant::now() + backoff.next_delay();
                }
                Ok(Some(code)) => {
                    tracing::warn!(group = %inner.group, %code, "heartbeat failed");
                    next_heartbeat = Instant::now() + backoff.next_delay();
                }
                Err(e) => {
                    tracing::debug!(group = %inner.group, error = %e, "heartbeat failed; retrying");
                    inner.membership.on_error(&e).await;
                    if session_timed_out(&handle).await {
                        continue 'join;
                    }
                    next_heartbeat = Instant::now() + backoff.next_delay().min(heartbeat);
                }
            }
        }
    }
    // Shutdown: revoke in order, then leave (dynamic members only, as the Java client).
    if inner.generation().is_some() {
        let owned: BTreeSet<TopicPartition> = inner.lock().owned.clone();
        with_heartbeats(&inner, revoke(&handle, &owned)).await;
        if inner.settings.instance_id.is_none() {
            let member_id = inner.lock().member_id.clone();
            membership::leave(
                &inner.membership,
                &member_id,
                "the consumer is being closed",
            )
            .await;
        }
    } else {
        lose_all(&handle, "closed without a generation").await;
    }
    reset_member(&inner);
}

/// Runs `work` (listener calls, commits, offset lookups) while heartbeats keep going every
/// `heartbeat.interval.ms`, so a slow listener does not cost the member its session. Their
/// answers are ignored here: a rebalance or an eviction shows again in the next heartbeat of
/// the main loop, which acts on it.
async fn with_heartbeats<F: std::future::Future>(inner: &Inner, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = sleep(inner.settings.heartbeat_interval) => {}
        }
        let Some(g) = inner.generation() else {
            continue;
        };
        let beat = membership::heartbeat(
            &inner.membership,
            g.generation_id,
            &g.member_id,
            g.group_instance_id.as_deref(),
        );
        // Keep `work` going while the heartbeat is in flight.
        let mut beat = std::pin::pin!(beat);
        tokio::select! {
            out = &mut work => return out,
            r = &mut beat => {
                heard_from_coordinator(inner, &r);
                if let Err(e) = r {
                    tracing::debug!(group = %inner.group, error = %e, "heartbeat during a callback failed");
                }
            }
        }
    }
}

/// Notes a heartbeat answered by the group coordinator (any answer but "not the coordinator").
fn heard_from_coordinator(inner: &Inner, result: &Result<Option<ErrorCode>, GroupError>) {
    let answered = match result {
        Ok(None) => true,
        Ok(Some(code)) => code.action() != ErrorAction::RediscoverCoordinator,
        Err(_) => false,
    };
    if answered {
        inner.lock().contact = Some(Instant::now());
    }
}

/// When the coordinator will have evicted this member, without an answer before then.
fn session_end(inner: &Inner) -> Instant {
    inner.lock().contact.unwrap_or_else(Instant::now) + inner.settings.session_timeout
}

/// When the coordinator has not answered for `session.timeout.ms`: the member's partitions are
/// lost (no commit) and it must join again as a new member. Returns whether that happened.
async fn session_timed_out(handle: &GroupHandle) -> bool {
    let inner = &handle.inner;
    if Instant::now() < session_end(inner) {
        return false;
    }
    tracing::warn!(
        group = %inner.group,
        session_timeout = ?inner.settings.session_timeout,
        "no answer from the group coordinator within session.timeout.ms; the member counts as evicted"
    );
    lose_all(handle, "session timed out").await;
    reset_member(inner);
    true
}

fn reset_member(inner: &Inner) {
    let mut s = inner.lock();
    s.member_id.clear();
    s.generation_id = -1;
}

fn protocol_kind(inner: &Inner) -> RebalanceProtocol {
    match inner.lock().protocol {
        Some(p) => assignor_for(p).protocol_kind(),
        None => RebalanceProtocol::for_strategies(&inner.settings.strategies),
    }
}

/// Before JoinGroup: the eager protocol gives up everything (revoked while the generation is
/// valid, lost otherwise); the cooperative one keeps its partitions.
async fn prepare_join(handle: &GroupHandle) {
    let inner = &handle.inner;
    if inner.lock().owned.is_empty() {
        return;
    }
    if inner.generation().is_none() {
        lose_all(handle, "no generation").await;
        return;
    }
    if protocol_kind(inner) == RebalanceProtocol::Eager {
        let owned = inner.lock().owned.clone();
        revoke(handle, &owned).await;
    }
}

/// Takes `partitions` away in order: unassign (no more records), auto-commit, listener.
async fn revoke(handle: &GroupHandle, partitions: &BTreeSet<TopicPartition>) {
    let inner = &handle.inner;
    if partitions.is_empty() {
        return;
    }
    let tps: Vec<TopicPartition> = partitions.iter().cloned().collect();
    let positions = inner.consumer.unassign_partitions(&tps);
    inner.lock().owned.retain(|tp| !partitions.contains(tp));
    if inner.settings.auto_commit.is_some()
        && let Some(generation) = inner.generation()
    {
        let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = positions
            .iter()
            .filter_map(|(tp, p)| p.map(|o| (tp.clone(), OffsetAndMetadata::new(o))))
            .collect();
        if let Err(e) = inner.offsets.commit(&generation, &offsets).await {
            tracing::warn!(group = %inner.group, error = %e, "auto-commit before revoke failed");
        }
    }
    tracing::info!(group = %inner.group, partitions = ?tps, "partitions revoked");
    inner.listener.revoked(handle, &positions).await;
}

/// Drops every owned partition without committing and tells the listener they are lost.
async fn lose_all(handle: &GroupHandle, why: &str) {
    let inner = &handle.inner;
    let owned: Vec<TopicPartition> = std::mem::take(&mut inner.lock().owned)
        .into_iter()
        .collect();
    if owned.is_empty() {
        return;
    }
    inner.consumer.unassign_partitions(&owned);
    tracing::warn!(group = %inner.group, partitions = ?owned, why, "partitions lost");
    inner.listener.lost(&owned).await;
}

async fn fatal(handle: &GroupHandle, e: GroupError) {
    let inner = &handle.inner;
    tracing::error!(group = %inner.group, error = %e, "fatal group error");
    lose_all(handle, "fatal error").await;
    reset_member(inner);
    inner.fatal.send_replace(Some(e));
}

/// After SyncGroup: revoke what left, assign what came (at committed offsets).
async fn apply(handle: &GroupHandle, j: Joined) {
    let inner = &handle.inner;
    let kind = assignor_for(j.protocol).protocol_kind();
    let owned = {
        let mut s = inner.lock();
        s.member_id = j.member_id.clone();
        s.generation_id = j.generation_id;
        s.protocol = Some(j.protocol);
        s.owned.clone()
    };
    tracing::info!(
        group = %inner.group,
        generation = j.generation_id,
        member_id = %j.member_id,
        protocol = j.protocol.as_str(),
        assignment = ?j.assignment,
        "joined the group"
    );
    let revoked: BTreeSet<TopicPartition> = owned.difference(&j.assignment).cloned().collect();
    let added: Vec<TopicPartition> = j.assignment.difference(&owned).cloned().collect();
    if !revoked.is_empty() {
        revoke(handle, &revoked).await;
        if kind == RebalanceProtocol::Cooperative {
            // KIP-429: the revoked partitions go to their new owner in a follow-up rebalance.
            inner.lock().rejoin = true;
        }
    }
    if added.is_empty() {
        inner.listener.assigned(handle, &[]).await;
        return;
    }
    let committed = match inner.offsets.fetch_committed(&added).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(group = %inner.group, error = %e, "cannot fetch committed offsets; rejoining");
            inner.lock().rejoin = true;
            return;
        }
    };
    let with_metadata: Vec<(TopicPartition, Option<OffsetAndMetadata>)> = added
        .iter()
        .map(|tp| (tp.clone(), committed.get(tp).cloned()))
        .collect();
    inner.listener.assigning(handle, &with_metadata).await;
    let entries: Vec<(TopicPartition, Option<i64>)> = added
        .iter()
        .map(|tp| (tp.clone(), committed.get(tp).map(|o| o.offset)))
        .collect();
    if let Err(e) = inner.consumer.assign_partitions(&entries).await {
        tracing::warn!(group = %inner.group, error = %e, "cannot assign partitions; rejoining");
        inner.lock().rejoin = true;
        // `assigning` ran for them: tell the listener they are gone again, without a commit.
        inner.listener.lost(&added).await;
        return;
    }
    inner.lock().owned.extend(added.iter().cloned());
    inner.listener.assigned(handle, &added).await;
}

fn spawn_auto_commit(inner: &Arc<Inner>) {
    let Some(generation) = inner.generation() else {
        return;
    };
    let offsets = inner.owned_positions();
    if offsets.is_empty() {
        return;
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        if let Err(e) = inner.offsets.commit(&generation, &offsets).await {
            tracing::warn!(group = %inner.group, error = %e, "auto-commit failed");
        }
    });
}
