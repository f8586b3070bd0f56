//! The fetch loop of one broker: one task and one dedicated connection per leader, so a
//! long-poll fetch never delays the cluster connection that heartbeats and commits use.
//!
//! Each round: wait until some partition led by this broker is fetchable and the prefetch budget
//! has room, reserve the bytes the response may take, send a Fetch in the broker's fetch session
//! (full the first time, incremental after), and turn the response into per-partition
//! [`CompletedFetch`]es or state changes (new leader needed, position reset, error).

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::aborted::AbortedFilter;
use super::completed::CompletedFetch;
use super::session::{FetchSession, SessionPartition, SessionRequest};
use super::state::{FETCH_HISTORY, ResetTo, Shared, State, long_poll_wait};
use super::{ConsumerError, FetchRequestInfo, TopicPartition};
use crate::cluster::Backoff;
use crate::config::{AutoOffsetReset, IsolationLevel};
use crate::connection::Connection;
use crate::protocol::{ErrorAction, ErrorCode};

/// Starts the fetch loop for `node` unless one runs.
pub(crate) fn ensure_loop(shared: &Arc<Shared>, state: &mut State, node: i32) {
    if state.closed || state.loops.get(&node).is_some_and(|h| !h.is_finished()) {
        return;
    }
    // The client id tells the fetch loops of several consumers in one process apart in logs.
    let span =
        tracing::debug_span!("fetch_loop", client = %shared.connection_config.client_id, node);
    let handle = tokio::spawn(tracing::Instrument::instrument(
        run(shared.clone(), node),
        span,
    ));
    state.loops.insert(node, handle);
}

/// A partition in one fetch request.
#[derive(Debug, Clone)]
struct Target {
    tp: TopicPartition,
    version: u64,
    offset: i64,
    topic_id: Uuid,
    leader_epoch: i32,
}

/// What one round found to do.
enum Work {
    Fetch {
        id: u64,
        targets: Vec<Target>,
        reserved: usize,
        /// How long the broker may hold the request (see [`long_poll_wait`]).
        wait: Duration,
    },
    /// Nothing is fetchable on this broker.
    Idle,
    /// Something is fetchable but the budget is full.
    NoBudget,
}

async fn run(shared: Arc<Shared>, node: i32) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut session = FetchSession::new();
    let mut conn: Option<Connection> = None;
    let settings = shared.settings.clone();
    let mut backoff = Backoff::new(settings.retry_backoff, settings.retry_backoff_max);
    tracing::debug!(node, "fetch loop started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let mut woken = pin!(shared.fetch_wake.notified());
        woken.as_mut().enable();
        let mut freed = pin!(shared.budget.freed.notified());
        freed.as_mut().enable();
        let (id, targets, reserved, wait) = match claim(&shared, node) {
            Work::Fetch {
                id,
                targets,
                reserved,
                wait,
            } => (id, targets, reserved, wait),
            Work::Idle => {
                tokio::select! {
                    _ = woken => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            Work::NoBudget => {
                tokio::select! {
                    _ = woken => {}
                    _ = freed => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
        };
        // A dedicated connection, opened on first use and replaced when it dies.
        let c = match conn.as_ref().filter(|c| !c.is_poisoned()) {
            Some(c) => c.clone(),
            None => match connect(&shared, node).await {
                Ok(c) => {
                    conn = Some(c.clone());
                    c
                }
                Err(e) => {
                    tracing::warn!(node, error = %e, "fetch connection failed");
                    abandon(&shared, id, &targets, reserved, true);
                    session.reset_to_new();
                    sleep_or_shutdown(backoff.next_delay(), &mut shutdown).await;
                    continue;
                }
            },
        };
        let (request, version, info) =
            build_request(&shared, &mut session, &c, node, &targets, reserved, wait);
        let timeout = settings.request_timeout + wait;
        tracing::trace!(
            node,
            partitions = targets.len(),
            sent = info.partitions.len(),
            forgotten = info.forgotten.len(),
            full = info.full,
            reserved,
            wait_ms = wait.as_millis(),
            "fetch sent"
        );
        let result = tokio::select! {
            r = c.request_with_timeout(&request, version, timeout) => r,
            _ = shutdown.changed() => {
                abandon(&shared, id, &targets, reserved, false);
                break;
            }
        };
        record_history(&shared, info);
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(node, error = %e, "fetch failed");
                session.response_failed();
                if c.is_poisoned() {
                    conn = None;
                }
                abandon(
                    &shared,
                    id,
                    &targets,
                    reserved,
                    e.is_retriable() && c.is_poisoned(),
                );
                sleep_or_shutdown(backoff.next_delay(), &mut shutdown).await;
                continue;
            }
        };
        let top_error = ErrorCode::from_i16(response.error_code);
        if !session.response_ok(top_error, response.session_id) {
            abandon(&shared, id, &targets, reserved, false);
            match top_error {
                Some(ErrorCode::FetchSessionIdNotFound | ErrorCode::InvalidFetchSessionEpoch) => {
                    tracing::debug!(node, error = ?top_error, "fetch session lost; starting a new one");
                }
                other => {
                    tracing::warn!(node, error = ?other, "fetch failed; starting a new session");
                    if other.is_some_and(|c| c.action() == ErrorAction::RefreshMetadata) {
                        invalidate_leaders(&shared, &targets);
                    }
                    sleep_or_shutdown(backoff.next_delay(), &mut shutdown).await;
                }
            }
            continue;
        }
        backoff.reset();
        let retry_later = handle_response(&shared, id, &targets, reserved, response, version >= 13);
        if retry_later {
            sleep_or_shutdown(settings.retry_backoff, &mut shutdown).await;
        }
    }
    if let Some(c) = conn {
        c.close();
    }
    tracing::debug!(node, "fetch loop stopped");
}

async fn sleep_or_shutdown(
    delay: std::time::Duration,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = shutdown.changed() => {}
    }
}

async fn connect(shared: &Shared, node: i32) -> Result<Connection, ConsumerError> {
    let address = match shared.cluster.metadata().brokers.get(&node) {
        Some(b) => b.address.to_string(),
        None => {
            return Err(crate::cluster::ClusterError::UnknownBroker { node_id: node }.into());
        }
    };
    Connection::connect(&address, &shared.connection_config)
        .await
        .map_err(|e| crate::cluster::ClusterError::from(e).into())
}

/// Picks the fetchable partitions of `node`, reserves budget, and marks them in flight.
fn claim(shared: &Shared, node: i32) -> Work {
    let settings = &shared.settings;
    let mut state = shared.lock();
    if state.closed {
        return Work::Idle;
    }
    let mut fetchable: Vec<(&TopicPartition, &super::state::PartitionState)> = state
        .partitions
        .iter()
        .filter(|(_, p)| p.fetchable_on(node))
        .collect();
    if fetchable.is_empty() {
        return Work::Idle;
    }
    // The connection carries one request at a time, and a request whose partitions all sit at
    // the log end is held by the broker for `fetch.max.wait.ms`. Sending one while another
    // partition of this broker is only waiting for its buffered data to be handed out parks that
    // partition behind the long poll: a hot partition is then fetched once per
    // `fetch.max.wait.ms`. So until it comes back (draining it wakes this loop), fetch only when
    // some partition may have data; the caught-up ones ride along with it.
    let isolation = settings.isolation;
    let returning = state
        .partitions
        .values()
        .any(|p| p.buffered && !p.paused && !p.failed && p.led_by(node));
    if returning && fetchable.iter().all(|(_, p)| p.caught_up(isolation)) {
        return Work::Idle;
    }
    // A stable order keeps incremental requests small (unchanged partitions are not resent).
    fetchable.sort_by(|a, b| a.0.cmp(b.0));
    let (min, max) = reservation_bounds(settings, fetchable.len(), shared.budget.limit);
    let Some(reserved) = shared.budget.try_reserve(min, max) else {
        return Work::NoBudget;
    };
    let targets: Vec<Target> = fetchable
        .into_iter()
        .map(|(tp, p)| Target {
            tp: tp.clone(),
            version: p.version,
            offset: p.position.unwrap_or_default(),
            topic_id: p.topic_id,
            leader_epoch: p.leader.map_or(-1, |l| l.epoch),
        })
        .collect();
    let wait = long_poll_wait(
        settings.max_wait,
        isolation,
        node,
        state.partitions.values(),
        Instant::now(),
    );
    state.next_fetch_id += 1;
    let id = state.next_fetch_id;
    for t in &targets {
        if let Some(p) = state.partitions.get_mut(&t.tp) {
            p.in_flight = Some(id);
        }
    }
    Work::Fetch {
        id,
        targets,
        reserved,
        wait,
    }
}

/// The least and the most budget a request for `partitions` partitions reserves: at most
/// `fetch.max.bytes` and at most what the partitions can return (`max.partition.fetch.bytes`
/// each; KIP-74's oversized first batch aside), and it waits for half the budget (or that much,
/// if less) to be free.
///
/// Reserving `fetch.max.bytes` for every request, whatever it asks for, let two brokers'
/// loops long-polling caught-up partitions hold the whole default budget (`2 ×
/// fetch.max.bytes`) between them: each re-reserved as soon as its answer came, and a third
/// broker's loop, woken by the release, found it taken again, so its partitions were not
/// fetched for as long as that lasted (seen: minutes).
pub(crate) fn reservation_bounds(
    settings: &super::state::Settings,
    partitions: usize,
    limit: usize,
) -> (usize, usize) {
    let per_partition = usize::try_from(settings.partition_max_bytes)
        .unwrap_or(0)
        .max(1);
    let max = usize::try_from(settings.max_bytes)
        .unwrap_or(usize::MAX)
        .min(per_partition.saturating_mul(partitions.max(1)));
    let min = max.min(limit / 2).max(1);
    (min, max)
}

/// Undoes [`claim`] after a failed request; with `suspect_leader`, asks for fresh metadata.
fn abandon(shared: &Shared, id: u64, targets: &[Target], reserved: usize, suspect_leader: bool) {
    {
        let mut state = shared.lock();
        for t in targets {
            if let Some(p) = state.partitions.get_mut(&t.tp)
                && p.in_flight == Some(id)
            {
                p.in_flight = None;
            }
        }
    }
    shared.budget.release_reservation(reserved);
    if suspect_leader {
        invalidate_leaders(shared, targets);
    }
}

/// Forgets the leaders of `targets` so the supervisor refreshes metadata for them.
fn invalidate_leaders(shared: &Shared, targets: &[Target]) {
    let mut state = shared.lock();
    for t in targets {
        if let Some(p) = state.partitions.get_mut(&t.tp)
            && p.version == t.version
        {
            p.leader = None;
        }
    }
    drop(state);
    shared.supervisor_wake.notify_one();
}

fn build_request(
    shared: &Shared,
    session: &mut FetchSession,
    conn: &Connection,
    node: i32,
    targets: &[Target],
    reserved: usize,
    wait: Duration,
) -> (FetchRequest, i16, FetchRequestInfo) {
    let settings = &shared.settings;
    let max_bytes = i32::try_from(reserved).unwrap_or(i32::MAX);
    let partition_max = settings.partition_max_bytes.min(max_bytes).max(1);
    let wanted = targets
        .iter()
        .map(|t| {
            (
                t.tp.clone(),
                SessionPartition {
                    topic_id: t.topic_id,
                    fetch_offset: t.offset,
                    current_leader_epoch: t.leader_epoch,
                    max_bytes: partition_max,
                },
            )
        })
        .collect();
    let plan = session.build(wanted);
    // Topic ids from v13; a topic without an id (brokers before 2.8) needs a name-based version.
    let mut version = conn.version_for::<FetchRequest>().unwrap_or(12);
    if targets.iter().any(|t| t.topic_id.is_nil()) {
        version = version.min(12);
    }
    let info = FetchRequestInfo {
        node,
        session_id: plan.session_id,
        session_epoch: plan.epoch,
        full: plan.full,
        partitions: plan.to_send.iter().map(|(tp, _)| tp.clone()).collect(),
        forgotten: plan.forgotten.iter().map(|(tp, _)| tp.clone()).collect(),
        version,
        max_wait: wait,
    };
    let request = encode_plan(shared, plan, max_bytes, wait);
    (request, version, info)
}

fn encode_plan(
    shared: &Shared,
    plan: SessionRequest,
    max_bytes: i32,
    wait: Duration,
) -> FetchRequest {
    let settings = &shared.settings;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, data) in plan.to_send {
        let partition = FetchPartition::default()
            .with_partition(tp.partition)
            .with_current_leader_epoch(data.current_leader_epoch)
            .with_fetch_offset(data.fetch_offset)
            .with_partition_max_bytes(data.max_bytes);
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == &*tp.topic && t.topic_id == data.topic_id => {
                t.partitions.push(partition)
            }
            _ => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.to_string())))
                    .with_topic_id(data.topic_id)
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    for (tp, topic_id) in plan.forgotten {
        match forgotten.last_mut() {
            Some(t) if t.topic.0.as_str() == &*tp.topic && t.topic_id == topic_id => {
                t.partitions.push(tp.partition)
            }
            _ => forgotten.push(
                ForgottenTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.to_string())))
                    .with_topic_id(topic_id)
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    FetchRequest::default()
        .with_max_wait_ms(i32::try_from(wait.as_millis()).unwrap_or(i32::MAX))
        .with_min_bytes(settings.min_bytes.min(max_bytes))
        .with_max_bytes(max_bytes)
        .with_isolation_level(settings.isolation.as_i8())
        .with_session_id(plan.session_id)
        .with_session_epoch(plan.epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}

fn record_history(shared: &Shared, info: FetchRequestInfo) {
    let mut state = shared.lock();
    if state.history.len() >= FETCH_HISTORY {
        state.history.pop_front();
    }
    state.history.push_back(info);
}

/// Applies a successful response. Returns whether some partition asked for a retry after a
/// backoff.
fn handle_response(
    shared: &Arc<Shared>,
    id: u64,
    targets: &[Target],
    reserved: usize,
    response: FetchResponse,
    by_id: bool,
) -> bool {
    let settings = &shared.settings;
    let by_key: HashMap<(&str, i32), &Target> = targets
        .iter()
        .map(|t| ((&*t.tp.topic, t.tp.partition), t))
        .collect();
    let names_by_id: HashMap<Uuid, &str> =
        targets.iter().map(|t| (t.topic_id, &*t.tp.topic)).collect();
    let total: usize = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let charge = shared.budget.charge(reserved, total);
    tracing::trace!(
        partitions = response
            .responses
            .iter()
            .map(|t| t.partitions.len())
            .sum::<usize>(),
        bytes = total,
        "fetch response"
    );
    let mut retry_later = false;
    let mut need_supervisor = false;
    let mut delivered = false;
    let mut state = shared.lock();
    for t in targets {
        if let Some(p) = state.partitions.get_mut(&t.tp)
            && p.in_flight == Some(id)
        {
            p.in_flight = None;
        }
    }
    for topic in response.responses {
        let name: &str = if by_id {
            match names_by_id.get(&topic.topic_id) {
                Some(n) => n,
                None => continue,
            }
        } else {
            topic.topic.0.as_str()
        };
        for data in topic.partitions {
            let Some(target) = by_key.get(&(name, data.partition_index)) else {
                continue;
            };
            let Some(p) = state.partitions.get_mut(&target.tp) else {
                continue;
            };
            if p.version != target.version || p.position != Some(target.offset) {
                // Seeked, reset or reassigned meanwhile: this data is stale.
                continue;
            }
            if data.high_watermark >= 0 {
                p.high_watermark = data.high_watermark;
            }
            if data.last_stable_offset >= 0 {
                p.last_stable_offset = data.last_stable_offset;
            }
            if data.log_start_offset >= 0 {
                p.log_start_offset = data.log_start_offset;
            }
            match ErrorCode::from_i16(data.error_code) {
                None => {
                    let records = data.records.unwrap_or_default();
                    if records.is_empty() {
                        continue;
                    }
                    let filter = match settings.isolation {
                        IsolationLevel::ReadCommitted => AbortedFilter::read_committed(
                            data.aborted_transactions
                                .unwrap_or_default()
                                .into_iter()
                                .map(|a| (a.producer_id.0, a.first_offset)),
                        ),
                        IsolationLevel::ReadUncommitted => AbortedFilter::read_uncommitted(),
                    };
                    let lso = (settings.isolation == IsolationLevel::ReadCommitted)
                        .then_some(data.last_stable_offset);
                    p.buffered = true;
                    state.completed.push_back(CompletedFetch::new(
                        target.tp.clone(),
                        target.version,
                        target.offset,
                        records,
                        settings.max_decompressed,
                        filter,
                        lso,
                        charge.clone(),
                    ));
                    delivered = true;
                }
                Some(ErrorCode::OffsetOutOfRange) => {
                    let offset = target.offset;
                    match settings.reset {
                        AutoOffsetReset::None => {
                            p.failed = true;
                            let error = ConsumerError::OffsetOutOfRange {
                                topic: target.tp.topic.clone(),
                                partition: target.tp.partition,
                                offset,
                            };
                            shared.report(&mut state, error);
                        }
                        policy => {
                            p.position = None;
                            p.position_epoch = None;
                            p.reset_from = Some(offset);
                            p.reset = Some(match policy {
                                AutoOffsetReset::Earliest => ResetTo::Earliest,
                                _ => ResetTo::Latest,
                            });
                            let v = state.bump_version();
                            if let Some(p) = state.partitions.get_mut(&target.tp) {
                                p.version = v;
                            }
                            need_supervisor = true;
                        }
                    }
                }
                // KIP-320: our leader epoch is stale (fenced) or ahead of the broker (unknown):
                // find the leader again; the position stays.
                Some(ErrorCode::UnknownLeaderEpoch) => {
                    p.leader = None;
                    need_supervisor = true;
                }
                Some(code) => match code.action() {
                    ErrorAction::RefreshMetadata => {
                        tracing::debug!(tp = %target.tp, %code, "fetch: refreshing metadata");
                        p.leader = None;
                        need_supervisor = true;
                    }
                    ErrorAction::Retry => retry_later = true,
                    ErrorAction::RediscoverCoordinator
                    | ErrorAction::Rejoin
                    | ErrorAction::Fail => {
                        p.failed = true;
                        let error = ConsumerError::Partition {
                            topic: target.tp.topic.clone(),
                            partition: target.tp.partition,
                            offset: target.offset,
                            code,
                        };
                        shared.report(&mut state, error);
                    }
                },
            }
        }
    }
    drop(state);
    drop(charge);
    if delivered {
        shared.data_ready.notify_waiters();
    }
    if need_supervisor {
        shared.supervisor_wake.notify_one();
    }
    retry_later
}
