//! The classic group protocol's calls: JoinGroup (with MEMBER_ID_REQUIRED), the leader's
//! assignment, SyncGroup, Heartbeat and LeaveGroup. No state here beyond the arguments; the
//! membership task in `member.rs` drives them.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::AssignmentStrategy;
use crate::consumer::TopicPartition;
use crate::consumer::assignor::{
    Assignment, ClusterTopics, MemberSubscription, PROTOCOL_TYPE, RebalanceProtocol, Subscription,
    TopicPartitions, assignor_for, check_cooperative,
};
use crate::protocol::ErrorCode;

use super::error::GroupError;
use super::offsets::Coordinator;

/// What a member sends when it joins.
pub(crate) struct JoinParams<'a> {
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub strategies: &'a [AssignmentStrategy],
    pub topics: &'a [String],
    /// Partitions owned now (cooperative only; empty for eager).
    pub owned: &'a BTreeSet<TopicPartition>,
    /// Generation of `owned` (-1 without one).
    pub generation_id: i32,
}

/// A successful JoinGroup + SyncGroup.
pub(crate) struct Joined {
    pub generation_id: i32,
    pub member_id: String,
    pub protocol: AssignmentStrategy,
    pub assignment: BTreeSet<TopicPartition>,
}

/// How a join attempt failed.
pub(crate) enum JoinFailure {
    /// Retry the join now with this member id (MEMBER_ID_REQUIRED, or a reset after
    /// UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION with an empty id).
    Rejoin { member_id: String, reset: bool },
    /// Retry after a backoff (coordinator moving, connection lost, REBALANCE_IN_PROGRESS).
    Retry(GroupError),
    /// Give up: fenced, misconfigured, unauthorized.
    Fatal(GroupError),
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn to_set(tps: &[TopicPartitions], topics: &[String]) -> BTreeSet<TopicPartition> {
    tps.iter()
        .filter(|t| topics.contains(&t.topic))
        .flat_map(|t| {
            let topic: std::sync::Arc<str> = std::sync::Arc::from(t.topic.as_str());
            t.partitions
                .iter()
                .map(move |p| TopicPartition::new(topic.clone(), *p))
        })
        .collect()
}

/// Consumer-protocol form of a partition set, topics in name order, partitions ascending.
pub(crate) fn to_topic_partitions(set: &BTreeSet<TopicPartition>) -> Vec<TopicPartitions> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in set {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
        .into_iter()
        .map(|(t, ps)| TopicPartitions::new(t, ps))
        .collect()
}

fn classify(coordinator: &Coordinator, context: &'static str, code: ErrorCode) -> JoinFailure {
    let group = coordinator.group().to_string();
    match code {
        ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => JoinFailure::Rejoin {
            member_id: String::new(),
            reset: true,
        },
        ErrorCode::FencedInstanceId => JoinFailure::Fatal(GroupError::Fenced {
            group,
            instance_id: String::new(),
        }),
        ErrorCode::RebalanceInProgress
        | ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::NotCoordinator => JoinFailure::Retry(GroupError::Broker {
            group,
            context,
            code,
        }),
        code => JoinFailure::Fatal(GroupError::Broker {
            group,
            context,
            code,
        }),
    }
}

/// One JoinGroup and SyncGroup round.
///
/// Cancel safety: not cancel safe: the coordinator may count the member as joined.
pub(crate) async fn join_and_sync(
    coordinator: &Coordinator,
    p: &JoinParams<'_>,
) -> Result<Joined, JoinFailure> {
    let protocol_kind = RebalanceProtocol::for_strategies(p.strategies);
    let mut protocols = Vec::new();
    for strategy in p.strategies {
        let assignor = assignor_for(*strategy);
        let mut sub = Subscription::new(p.topics.iter().cloned());
        sub.user_data = assignor.subscription_user_data(p.generation_id);
        if protocol_kind == RebalanceProtocol::Cooperative {
            sub.owned_partitions = to_topic_partitions(p.owned);
            sub.generation_id = p.generation_id;
        }
        let metadata = sub.encode(3).map_err(|e| {
            JoinFailure::Fatal(GroupError::Assignment {
                group: coordinator.group().to_string(),
                message: e.to_string(),
            })
        })?;
        protocols.push(
            JoinGroupRequestProtocol::default()
                .with_name(s(strategy.as_str()))
                .with_metadata(metadata),
        );
    }
    let group_id = GroupId(s(coordinator.group()));
    let request = JoinGroupRequest::default()
        .with_group_id(group_id.clone())
        .with_session_timeout_ms(p.session_timeout.as_millis() as i32)
        .with_rebalance_timeout_ms(p.rebalance_timeout.as_millis() as i32)
        .with_member_id(s(p.member_id))
        .with_group_instance_id(p.instance_id.map(s))
        .with_protocol_type(s(PROTOCOL_TYPE))
        .with_protocols(protocols);
    // The coordinator holds JoinGroup until every member rejoined, up to the rebalance timeout.
    let timeout = p.rebalance_timeout + coordinator.cluster().request_timeout();
    let (response, _) = coordinator
        .send(&request, i16::MAX, timeout)
        .await
        .map_err(JoinFailure::Retry)?;
    if let Some(code) = ErrorCode::from_i16(response.error_code) {
        if code == ErrorCode::MemberIdRequired {
            // KIP-394: the broker assigned an id; join again with it.
            return Err(JoinFailure::Rejoin {
                member_id: response.member_id.to_string(),
                reset: false,
            });
        }
        if code == ErrorCode::FencedInstanceId {
            return Err(JoinFailure::Fatal(GroupError::Fenced {
                group: coordinator.group().to_string(),
                instance_id: p.instance_id.unwrap_or_default().to_string(),
            }));
        }
        return Err(classify(coordinator, "JoinGroup", code));
    }
    let member_id = response.member_id.to_string();
    let generation_id = response.generation_id;
    let protocol_name = response
        .protocol_name
        .as_ref()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let protocol = AssignmentStrategy::from_str(&protocol_name).map_err(|_| {
        JoinFailure::Fatal(GroupError::Assignment {
            group: coordinator.group().to_string(),
            message: format!("the coordinator chose unknown protocol {protocol_name:?}"),
        })
    })?;
    let mut assignments = Vec::new();
    if response.leader.as_str() == member_id && !response.skip_assignment {
        let group_assignment = lead(coordinator, protocol, &response.members)
            .await
            .map_err(|e| match e {
                e if e.is_retriable() => JoinFailure::Retry(e),
                e => JoinFailure::Fatal(e),
            })?;
        for (member, tps) in group_assignment {
            let bytes = Assignment::new(tps).encode(3).map_err(|e| {
                JoinFailure::Fatal(GroupError::Assignment {
                    group: coordinator.group().to_string(),
                    message: e.to_string(),
                })
            })?;
            assignments.push(
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(bytes),
            );
        }
    }
    let request = SyncGroupRequest::default()
        .with_group_id(group_id)
        .with_generation_id(generation_id)
        .with_member_id(s(&member_id))
        .with_group_instance_id(p.instance_id.map(s))
        .with_protocol_type(Some(s(PROTOCOL_TYPE)))
        .with_protocol_name(Some(s(&protocol_name)))
        .with_assignments(assignments);
    let (response, _) = coordinator
        .send(&request, i16::MAX, timeout)
        .await
        .map_err(JoinFailure::Retry)?;
    if let Some(code) = ErrorCode::from_i16(response.error_code) {
        return Err(match classify(coordinator, "SyncGroup", code) {
            // REBALANCE_IN_PROGRESS at sync: rejoin at once, keeping the member id.
            JoinFailure::Retry(GroupError::Broker {
                code: ErrorCode::RebalanceInProgress,
                ..
            }) => JoinFailure::Rejoin {
                member_id,
                reset: false,
            },
            other => other,
        });
    }
    let assignment = if response.assignment.is_empty() {
        Assignment::default()
    } else {
        Assignment::decode(&response.assignment).map_err(|e| {
            JoinFailure::Fatal(GroupError::Assignment {
                group: coordinator.group().to_string(),
                message: e.to_string(),
            })
        })?
    };
    Ok(Joined {
        generation_id,
        member_id,
        protocol,
        assignment: to_set(&assignment.partitions, p.topics),
    })
}

/// The leader's part: decode the members' subscriptions, look up their topics and run the
/// assignor the coordinator chose.
async fn lead(
    coordinator: &Coordinator,
    protocol: AssignmentStrategy,
    members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
) -> Result<crate::consumer::assignor::GroupAssignment, GroupError> {
    let group = coordinator.group().to_string();
    let bad = |message: String| GroupError::Assignment {
        group: group.clone(),
        message,
    };
    let mut subs = BTreeMap::new();
    let mut topics = BTreeSet::new();
    for m in members {
        let sub = Subscription::decode(&m.metadata)
            .map_err(|e| bad(format!("member {}: {e}", m.member_id.as_str())))?;
        topics.extend(sub.topics.iter().cloned());
        let mut member = MemberSubscription::new(sub);
        member.group_instance_id = m.group_instance_id.as_ref().map(|i| i.to_string());
        subs.insert(m.member_id.to_string(), member);
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let snapshot = coordinator.cluster().refresh_topics(&names).await?;
    let metadata: ClusterTopics = names
        .iter()
        .filter_map(|t| snapshot.topic(t).map(|m| (*t, m.partitions.len() as i32)))
        .collect();
    let assignor = assignor_for(protocol);
    let assignment = assignor
        .assign(&metadata, &subs)
        .map_err(|e| bad(e.to_string()))?;
    if assignor.protocol_kind() == RebalanceProtocol::Cooperative {
        check_cooperative(&subs, &assignment).map_err(|e| bad(e.to_string()))?;
    }
    tracing::info!(group = %group, protocol = protocol.as_str(), members = subs.len(), "computed the group's assignment as leader");
    Ok(assignment)
}

/// One heartbeat. `Ok(None)`: fine; `Ok(Some(code))`: a group error code to act on.
pub(crate) async fn heartbeat(
    coordinator: &Coordinator,
    generation_id: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<Option<ErrorCode>, GroupError> {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(s(coordinator.group())))
        .with_generation_id(generation_id)
        .with_member_id(s(member_id))
        .with_group_instance_id(instance_id.map(s));
    let timeout = coordinator.cluster().request_timeout();
    let (response, _) = coordinator.send(&request, i16::MAX, timeout).await?;
    Ok(ErrorCode::from_i16(response.error_code))
}

/// LeaveGroup for a dynamic member; errors are logged, not returned (the session timeout
/// removes the member anyway).
pub(crate) async fn leave(coordinator: &Coordinator, member_id: &str, reason: &str) {
    if member_id.is_empty() {
        return;
    }
    let mut request = LeaveGroupRequest::default().with_group_id(GroupId(s(coordinator.group())));
    // v3 and later (KIP-345) name the leaving members in a list; before, one top-level id.
    match coordinator.version::<LeaveGroupRequest>(i16::MAX).await {
        Ok(v) if v >= 3 => {
            let mut member = MemberIdentity::default().with_member_id(s(member_id));
            if v >= 5 {
                member = member.with_reason(Some(s(reason)));
            }
            request = request.with_members(vec![member]);
        }
        Ok(_) => request = request.with_member_id(s(member_id)),
        Err(e) => {
            tracing::warn!(group = coordinator.group(), member_id, error = %e, "LeaveGroup failed");
            return;
        }
    }
    let timeout = coordinator.cluster().request_timeout();
    match coordinator.send(&request, i16::MAX, timeout).await {
        Ok((r, _)) if r.error_code == 0 => {
            tracing::info!(
                group = coordinator.group(),
                member_id,
                reason,
                "left the group"
            );
        }
        Ok((r, _)) => {
            tracing::warn!(
                group = coordinator.group(),
                member_id,
                code = r.error_code,
                "LeaveGroup failed"
            );
        }
        Err(e) => {
            tracing::warn!(group = coordinator.group(), member_id, error = %e, "LeaveGroup failed")
        }
    }
}
