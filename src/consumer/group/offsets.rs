//! The group coordinator connection (FindCoordinator with rediscovery), OffsetFetch and
//! OffsetCommit.
//!
//! Each [`Coordinator`] owns one connection to the group's coordinator, opened outside the
//! cluster's pool: the membership task has one (JoinGroup may block for a whole rebalance, and a
//! broker answers one connection's requests in order) and offset calls have another, so a commit
//! never waits behind a JoinGroup or a long-poll fetch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes, VersionRange};
use tokio::time::Instant;

use crate::cluster::{Backoff, Cluster};
use crate::connection::{Connection, ConnectionConfig};
use crate::consumer::TopicPartition;
use crate::protocol::{ErrorAction, ErrorCode, api_key};

use super::error::{CommitError, GroupError};

/// A committed offset: the next offset to read, with the metadata string stored beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to read (one past the last processed record).
    pub offset: i64,
    /// The leader epoch of the last processed record, when known (KIP-320).
    pub leader_epoch: Option<i32>,
    /// Free-form metadata stored with the offset (the broker caps its size,
    /// `offset.metadata.max.bytes`, 4096 by default).
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// `offset` with no leader epoch and empty metadata.
    pub fn new(offset: i64) -> Self {
        Self {
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }

    /// Sets the metadata string.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }
}

/// The member identity a commit is made under. Commits outside any generation (manual
/// assignment with a `group.id`) use [`Generation::NONE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The generation id from JoinGroup (-1: none).
    pub generation_id: i32,
    /// The member id from JoinGroup (empty: none).
    pub member_id: String,
    /// The static member id (`group.instance.id`).
    pub group_instance_id: Option<String>,
}

impl Generation {
    /// No generation: a commit by a consumer that is not a group member (manual assignment).
    pub const NONE: Generation = Generation {
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
    };
}

/// FindCoordinator v4 and later batch keys; one group needs no batching.
const FIND_COORDINATOR_MAX: i16 = 3;
/// OffsetFetch v8 and later batch groups.
const OFFSET_FETCH_MAX: i16 = 7;
/// `COORDINATOR_KEY_TYPE_GROUP`.
const KEY_TYPE_GROUP: i8 = 0;

/// One group coordinator connection, rediscovered when the coordinator moves.
pub(crate) struct Coordinator {
    cluster: Cluster,
    group: String,
    connection_config: ConnectionConfig,
    current: tokio::sync::Mutex<Option<Connection>>,
}

impl Coordinator {
    pub(crate) fn new(cluster: Cluster, group: String) -> Self {
        let config = cluster.config();
        let connection_config = ConnectionConfig {
            client_id: config.client_id().to_string(),
            request_timeout: config.request_timeout(),
            connect_timeout: config.connect_timeout(),
            max_in_flight: 5,
            max_frame_size: config.receive_message_max_bytes(),
        };
        Self {
            cluster,
            group,
            connection_config,
            current: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) fn group(&self) -> &str {
        &self.group
    }

    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Forgets the coordinator (after NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or a dead
    /// connection); the next call rediscovers it.
    pub(crate) async fn invalidate(&self) {
        if let Some(c) = self.current.lock().await.take() {
            c.close();
        }
    }

    /// The coordinator connection, discovering the coordinator first if needed. One attempt:
    /// errors are returned (retriable ones marked so), the caller's loop retries.
    async fn connection(&self) -> Result<Connection, GroupError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref().filter(|c| !c.is_poisoned()) {
            return Ok(c.clone());
        }
        let conn = self.cluster.any_broker().await?;
        let version = negotiate::<FindCoordinatorRequest>(&conn, FIND_COORDINATOR_MAX)?;
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(self.group.clone()))
            .with_key_type(KEY_TYPE_GROUP);
        let response = conn.request_version(&request, version).await?;
        if let Some(code) = ErrorCode::from_i16(response.error_code) {
            // COORDINATOR_NOT_AVAILABLE (the offsets topic is being created, or its leader
            // moves) and COORDINATOR_LOAD_IN_PROGRESS are retriable: the caller backs off.
            return Err(self.broker_error("FindCoordinator", code));
        }
        let address = format!("{}:{}", response.host, response.port);
        tracing::debug!(group = %self.group, node = response.node_id.0, %address, "coordinator found");
        let coordinator = Connection::connect(&address, &self.connection_config).await?;
        *current = Some(coordinator.clone());
        Ok(coordinator)
    }

    fn broker_error(&self, context: &'static str, code: ErrorCode) -> GroupError {
        GroupError::Broker {
            group: self.group.clone(),
            context,
            code,
        }
    }

    /// The version of `R` (up to `cap`) that [`send`](Self::send) would use now, for requests
    /// whose fields depend on it.
    pub(crate) async fn version<R: Request>(&self, cap: i16) -> Result<i16, GroupError> {
        negotiate::<R>(&self.connection().await?, cap)
    }

    /// Sends `request` once to the coordinator at the highest version up to `cap`, with
    /// `timeout`. A dead connection is dropped so the next call reconnects.
    pub(crate) async fn send<R: Request>(
        &self,
        request: &R,
        cap: i16,
        timeout: Duration,
    ) -> Result<(R::Response, i16), GroupError> {
        let conn = self.connection().await?;
        let version = negotiate::<R>(&conn, cap)?;
        match conn.request_with_timeout(request, version, timeout).await {
            Ok(r) => Ok((r, version)),
            Err(e) => {
                self.invalidate().await;
                Err(e.into())
            }
        }
    }

    /// Handles a coordinator-level error before a retry: rediscovers on NOT_COORDINATOR and
    /// COORDINATOR_NOT_AVAILABLE.
    pub(crate) async fn on_error(&self, e: &GroupError) {
        if e.code().map(ErrorCode::action) == Some(ErrorAction::RediscoverCoordinator) {
            self.invalidate().await;
        }
    }

    /// The committed offsets of `partitions` (partitions without one are left out).
    ///
    /// Retries retriable errors (coordinator moving or loading, UNSTABLE_OFFSET_COMMIT) until
    /// `request.timeout.ms` runs out. Cancel safety: safe.
    pub(crate) async fn fetch_committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>, GroupError> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_require_stable(true)
            .with_topics(Some(
                by_topic
                    .iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partition_indexes(ps.clone())
                    })
                    .collect(),
            ));
        let timeout = self.cluster.request_timeout();
        self.retrying("OffsetFetch", || async {
            let (response, _) = self.send(&request, OFFSET_FETCH_MAX, timeout).await?;
            if let Some(code) = ErrorCode::from_i16(response.error_code) {
                return Err(self.broker_error("OffsetFetch", code));
            }
            let mut out = BTreeMap::new();
            for t in &response.topics {
                let topic: Arc<str> = Arc::from(t.name.0.as_str());
                for p in &t.partitions {
                    if let Some(code) = ErrorCode::from_i16(p.error_code) {
                        return Err(self.broker_error("OffsetFetch", code));
                    }
                    // -1: nothing committed for this partition.
                    if p.committed_offset < 0 {
                        continue;
                    }
                    out.insert(
                        TopicPartition::new(topic.clone(), p.partition_index),
                        OffsetAndMetadata {
                            offset: p.committed_offset,
                            leader_epoch: (p.committed_leader_epoch >= 0)
                                .then_some(p.committed_leader_epoch),
                            metadata: p
                                .metadata
                                .as_ref()
                                .map(|m| m.to_string())
                                .unwrap_or_default(),
                        },
                    );
                }
            }
            Ok(out)
        })
        .await
    }

    /// Commits `offsets` under `generation`.
    ///
    /// Coordinator moves and loads are retried under the **same** generation until
    /// `request.timeout.ms` runs out; a generation error (ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID) is returned at once as not
    /// committed. Cancel safety: not cancel safe: a dropped call may or may not have committed.
    pub(crate) async fn commit(
        &self,
        generation: &Generation,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), CommitError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, o) in offsets {
            by_topic.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(o.offset)
                    .with_committed_leader_epoch(o.leader_epoch.unwrap_or(-1))
                    .with_committed_metadata(Some(StrBytes::from_string(o.metadata.clone()))),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id_or_member_epoch(generation.generation_id)
            .with_member_id(StrBytes::from_string(generation.member_id.clone()))
            .with_group_instance_id(
                generation
                    .group_instance_id
                    .clone()
                    .map(StrBytes::from_string),
            )
            .with_retention_time_ms(-1)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let timeout = self.cluster.request_timeout();
        let deadline = Instant::now() + timeout;
        let config = self.cluster.config();
        let mut backoff = Backoff::new(config.retry_backoff(), config.retry_backoff_max());
        loop {
            let error = match self.send(&request, i16::MAX, timeout).await {
                Ok((response, _)) => {
                    let mut first = None;
                    for t in &response.topics {
                        for p in &t.partitions {
                            if let Some(code) = ErrorCode::from_i16(p.error_code) {
                                first.get_or_insert((
                                    t.name.0.to_string(),
                                    p.partition_index,
                                    code,
                                ));
                            }
                        }
                    }
                    let Some((topic, partition, code)) = first else {
                        return Ok(());
                    };
                    match self.commit_error(generation, topic, partition, code) {
                        Some(e) => return Err(e),
                        None => self.broker_error("OffsetCommit", code),
                    }
                }
                Err(e) if e.is_retriable() => e,
                Err(e) => return Err(e.into()),
            };
            self.on_error(&error).await;
            let delay = backoff.next_delay();
            if Instant::now() + delay > deadline {
                return Err(error.into());
            }
            tracing::debug!(group = %self.group, error = %error, ?delay, "retrying OffsetCommit");
            tokio::time::sleep(delay).await;
        }
    }

    /// The final error for a partition's commit error code, or `None` to retry.
    pub(super) fn commit_error(
        &self,
        generation: &Generation,
        topic: String,
        partition: i32,
        code: ErrorCode,
    ) -> Option<CommitError> {
        let group = self.group.clone();
        Some(match code {
            ErrorCode::RebalanceInProgress => CommitError::RebalanceInProgress {
                group,
                generation: generation.generation_id,
            },
            ErrorCode::IllegalGeneration => CommitError::IllegalGeneration {
                group,
                generation: generation.generation_id,
            },
            ErrorCode::UnknownMemberId => CommitError::UnknownMember {
                group,
                member_id: generation.member_id.clone(),
            },
            ErrorCode::FencedInstanceId => CommitError::Fenced {
                group,
                instance_id: generation.group_instance_id.clone().unwrap_or_default(),
            },
            c if matches!(
                c.action(),
                ErrorAction::Retry | ErrorAction::RediscoverCoordinator
            ) =>
            {
                return None;
            }
            c => CommitError::Partition {
                group,
                topic,
                partition,
                code: c,
            },
        })
    }

    /// Runs `op` until it succeeds or fails for good, rediscovering the coordinator when told
    /// to, within `request.timeout.ms`.
    pub(crate) async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, GroupError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, GroupError>>,
    {
        let config = self.cluster.config();
        let deadline = Instant::now() + config.request_timeout();
        let mut backoff = Backoff::new(config.retry_backoff(), config.retry_backoff_max());
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retriable() => {
                    self.on_error(&e).await;
                    let delay = backoff.next_delay();
                    if Instant::now() + delay > deadline {
                        return Err(e);
                    }
                    tracing::debug!(group = %self.group, what, error = %e, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The highest version of `R` up to `cap` that the connection's broker supports.
pub(crate) fn negotiate<R: Request>(conn: &Connection, cap: i16) -> Result<i16, GroupError> {
    let table =
        conn.versions()
            .ok_or_else(|| crate::connection::ConnectionError::NotNegotiated {
                addr: conn.addr().to_string(),
            })?;
    let range = VersionRange {
        min: R::VERSIONS.min,
        max: R::VERSIONS.max.min(cap),
    };
    Ok(table.negotiate_within(api_key::<R>(), range)?)
}
