//! Partition assignors and the consumer protocol they speak inside JoinGroup and SyncGroup.
//!
//! A consumer group on the classic protocol elects a leader; the broker hands the leader every
//! member's [`Subscription`], and the leader runs an [`Assignor`] and sends back one
//! [`Assignment`] per member. Both travel as opaque bytes (protocol type [`PROTOCOL_TYPE`],
//! `"consumer"`) in the encoding the Java client, librdkafka and franz-go share; this module
//! encodes and decodes them byte for byte like kafka-clients 4.1 (tests hold its output).
//!
//! The assignors follow the Java client's semantics, named as in `partition.assignment.strategy`:
//!
//! | name | type | rebalance protocol |
//! |---|---|---|
//! | `range` | [`RangeAssignor`] | [`RebalanceProtocol::Eager`] |
//! | `roundrobin` | [`RoundRobinAssignor`] | [`RebalanceProtocol::Eager`] |
//! | `cooperative-sticky` | [`CooperativeStickyAssignor`] | [`RebalanceProtocol::Cooperative`] |
//!
//! Everything here is pure: no I/O, no clock, no randomness. The same input always gives the same
//! assignment, which the cooperative protocol relies on (a partition held back in one rebalance
//! lands in the follow-up one).
//!
//! ```
//! use std::collections::BTreeMap;
//! use kafka_once::config::AssignmentStrategy;
//! use kafka_once::consumer::assignor::{
//!     assignor_for, ClusterTopics, MemberSubscription, Subscription, TopicPartitions,
//! };
//!
//! let metadata: ClusterTopics = [("t0", 3), ("t1", 3)].into_iter().collect();
//! let members: BTreeMap<String, MemberSubscription> = ["C0", "C1"]
//!     .into_iter()
//!     .map(|id| (id.to_string(), MemberSubscription::new(Subscription::new(["t0", "t1"]))))
//!     .collect();
//! let assignment = assignor_for(AssignmentStrategy::Range).assign(&metadata, &members)?;
//! assert_eq!(
//!     assignment["C1"],
//!     [TopicPartitions::new("t0", [2]), TopicPartitions::new("t1", [2])]
//! );
//! # Ok::<(), kafka_once::consumer::assignor::AssignorError>(())
//! ```
//!
//! # The consumer protocol encoding
//!
//! [`Subscription`] travels in JoinGroup (`protocols[].metadata`), [`Assignment`] in SyncGroup
//! (`assignments[].assignment`). Each is a big-endian `i16` version followed by a struct in the
//! classic (non-flexible) encoding of the Java client's `ConsumerProtocolSubscription.json` and
//! `ConsumerProtocolAssignment.json`, versions 0 to 3:
//!
//! ```text
//! Subscription => version:int16 topics:[string] user_data:nullable_bytes
//!                 owned_partitions:[topic:string partitions:[int32]]   (v1+)
//!                 generation_id:int32                                  (v2+)
//!                 rack_id:nullable_string                              (v3+)
//! Assignment   => version:int16 assigned_partitions:[topic:string partitions:[int32]]
//!                 user_data:nullable_bytes                             (v0..v3 alike)
//! ```
//!
//! Strings have an `i16` length, bytes and arrays an `i32` one, -1 meaning null. The rule for
//! newer versions, quoted from the schemas: "When it encounters a newer version, it parses it
//! using the current format. This basically means that new versions cannot remove or reorder
//! any of the existing fields." So [`Subscription::decode`] and [`Assignment::decode`] read a
//! version above 3 as version 3 and ignore what follows the fields they know; like the Java
//! client they also ignore trailing bytes at known versions. Encoding at a version above 3
//! writes version 3, as Java does.
//!
//! The schemas have no flexible versions, so `kafka-protocol`'s `ConsumerProtocolSubscription`
//! and `ConsumerProtocolAssignment` would save little (tests use them as a second oracle); the
//! codec here checks every length and count against the bytes left before allocating anything
//! (the `kafka-protocol` decoders reserve `count` elements up front), and reports a typed
//! [`AssignorError::Malformed`] naming the field.
//!
//! # Not implemented
//!
//! The rack-aware variants of the Java assignors (KIP-881), which Java switches to when members
//! send a `rack_id` and the partitions' replicas sit on different racks. These assignors take no
//! replica placement and ignore racks, so they match Java whenever no member sets `client.rack`.
//! The eager `sticky` assignor is not offered either.

mod common;
mod consumer_protocol;
mod cooperative_sticky;
mod error;
mod range;
mod round_robin;
#[cfg(test)]
mod tests;

use std::collections::btree_map;
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::config::AssignmentStrategy;

pub use consumer_protocol::{Assignment, CONSUMER_PROTOCOL_VERSION, PROTOCOL_TYPE, Subscription};
pub use cooperative_sticky::CooperativeStickyAssignor;
pub use error::{AssignorError, Malformed};
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;

/// Partitions of one topic, as the consumer protocol lists them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicPartitions {
    /// The topic name.
    pub topic: String,
    /// Partition numbers. The assignors produce them ascending and without duplicates; decoded
    /// ones keep the wire order.
    pub partitions: Vec<i32>,
}

impl TopicPartitions {
    /// Partitions `partitions` of `topic`.
    pub fn new(topic: impl Into<String>, partitions: impl IntoIterator<Item = i32>) -> Self {
        TopicPartitions {
            topic: topic.into(),
            partitions: partitions.into_iter().collect(),
        }
    }
}

/// How a group moves partitions between members during a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining; the new assignment starts from
    /// nothing.
    Eager,
    /// Incremental cooperative rebalancing (KIP-429): members keep their partitions while the
    /// group rebalances and revoke only those the new assignment takes away. A partition that
    /// moves is first revoked by its owner and given to its new member in a follow-up
    /// rebalance, which the revoking member triggers by rejoining.
    Cooperative,
}

impl RebalanceProtocol {
    /// The protocol a consumer configured with `strategies` follows, chosen as the Java consumer
    /// does: among the protocols every configured assignor supports, the most advanced.
    ///
    /// `cooperative-sticky` supports both, `range` and `roundrobin` only eager, so a consumer is
    /// cooperative exactly when every strategy it lists is `cooperative-sticky` (the Java
    /// client's former default, `range, cooperative-sticky`, is therefore eager). An empty list
    /// is eager.
    pub fn for_strategies(strategies: &[AssignmentStrategy]) -> RebalanceProtocol {
        let all_cooperative = !strategies.is_empty()
            && strategies
                .iter()
                .all(|s| assignor_for(*s).protocol_kind() == RebalanceProtocol::Cooperative);
        if all_cooperative {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }
}

/// Partition counts of the topics the group subscribes to, from the cluster metadata.
///
/// Topics missing here are skipped by every assignor (the Java client does the same for topics
/// without metadata); a count of zero means the topic has nothing to assign, and a negative count
/// makes [`Assignor::assign`] fail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterTopics {
    counts: BTreeMap<String, i32>,
}

impl ClusterTopics {
    /// No topics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `topic` has `partitions` partitions (numbered `0..partitions`); returns the
    /// count it replaces.
    pub fn insert(&mut self, topic: impl Into<String>, partitions: i32) -> Option<i32> {
        self.counts.insert(topic.into(), partitions)
    }

    /// The partition count of `topic`, if the metadata has it.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        self.counts.get(topic).copied()
    }

    /// Topics and their partition counts, by topic name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32)> {
        self.counts.iter().map(|(t, n)| (t.as_str(), *n))
    }

    /// Number of topics.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether there are no topics.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

impl<S: Into<String>> FromIterator<(S, i32)> for ClusterTopics {
    fn from_iter<I: IntoIterator<Item = (S, i32)>>(iter: I) -> Self {
        let mut topics = ClusterTopics::new();
        topics.extend(iter);
        topics
    }
}

impl<S: Into<String>> Extend<(S, i32)> for ClusterTopics {
    fn extend<I: IntoIterator<Item = (S, i32)>>(&mut self, iter: I) {
        for (topic, count) in iter {
            self.insert(topic, count);
        }
    }
}

impl<'a> IntoIterator for &'a ClusterTopics {
    type Item = (&'a String, &'a i32);
    type IntoIter = btree_map::Iter<'a, String, i32>;

    fn into_iter(self) -> Self::IntoIter {
        self.counts.iter()
    }
}

/// One member as the group leader sees it: its decoded subscription and its static identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSubscription {
    /// What the member sent in JoinGroup, decoded with [`Subscription::decode`].
    pub subscription: Subscription,
    /// The member's `group.instance.id` (static membership, KIP-345), from the JoinGroup
    /// response's member list. Static members sort by it in `range` and `roundrobin`, so their
    /// partitions survive a restart that changes their member id.
    pub group_instance_id: Option<String>,
}

impl MemberSubscription {
    /// A dynamic member (no `group.instance.id`).
    pub fn new(subscription: Subscription) -> Self {
        MemberSubscription {
            subscription,
            group_instance_id: None,
        }
    }

    /// Sets the member's `group.instance.id`.
    pub fn with_group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }
}

/// Each member's assigned partitions, by member id: one entry per member of the input (empty if
/// it gets nothing), topics in name order, partitions ascending.
pub type GroupAssignment = BTreeMap<String, Vec<TopicPartitions>>;

/// A partition assignment strategy, run by the group leader.
pub trait Assignor {
    /// The protocol name announced in JoinGroup (`range`, `roundrobin`, `cooperative-sticky`),
    /// the same as the `partition.assignment.strategy` value.
    fn name(&self) -> &'static str;

    /// The rebalance protocol this assignor is built for. A consumer follows
    /// [`RebalanceProtocol::for_strategies`] of all its configured assignors.
    fn protocol_kind(&self) -> RebalanceProtocol;

    /// The `user_data` a member using this assignor puts in its [`Subscription`], given the
    /// generation of its current assignment (-1 before the first one). `cooperative-sticky`
    /// sends the generation as a big-endian `i32`, as the Java client does, for leaders that read
    /// subscriptions older than version 2; the others send none.
    fn subscription_user_data(&self, generation_id: i32) -> Option<Bytes> {
        let _ = generation_id;
        None
    }

    /// Assigns the partitions of `metadata`'s topics to `members` (member id → subscription).
    ///
    /// Every partition of a topic in `metadata` that some member subscribes to goes to at most
    /// one member, which subscribes to its topic. Eager assignors hand out all of them;
    /// `cooperative-sticky` may hold some back for one rebalance (see
    /// [`CooperativeStickyAssignor`]). Fails only on invalid input (a negative partition count).
    fn assign(
        &self,
        metadata: &ClusterTopics,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> Result<GroupAssignment, AssignorError>;
}

/// The assignor for a configured strategy.
pub fn assignor_for(strategy: AssignmentStrategy) -> Box<dyn Assignor + Send + Sync> {
    match strategy {
        AssignmentStrategy::Range => Box::new(RangeAssignor),
        AssignmentStrategy::RoundRobin => Box::new(RoundRobinAssignor),
        AssignmentStrategy::CooperativeSticky => Box::new(CooperativeStickyAssignor),
    }
}

/// The first of `ours` (in our preference order) that every member lists among its protocols,
/// or `None` if no strategy is common to all. With no members, the first of `ours`.
///
/// `members` holds each member's JoinGroup protocol names. This is a check the leader can make
/// locally; the broker is the one that picks the group's protocol and reports it in the
/// JoinGroup response's `protocol_name`, which is authoritative. The broker's rule
/// (`ClassicGroup.selectProtocol`) differs when members order their lists differently: among the
/// protocols all members support, each member votes for the first in its own list, and the most
/// votes win.
pub fn choose_protocol<M, S>(
    ours: &[AssignmentStrategy],
    members: &[M],
) -> Option<AssignmentStrategy>
where
    M: AsRef<[S]>,
    S: AsRef<str>,
{
    ours.iter().copied().find(|strategy| {
        members.iter().all(|protocols| {
            protocols
                .as_ref()
                .iter()
                .any(|name| name.as_ref() == strategy.as_str())
        })
    })
}

/// Checks the rule of the cooperative protocol that the Java leader enforces after its assignor
/// ran (`ConsumerCoordinator.validateCooperativeAssignment`): no partition is added to one
/// member's assignment while it is revoked from another's. "Added" means assigned but not in the
/// member's `owned_partitions`, "revoked" the reverse. [`CooperativeStickyAssignor`] always
/// passes; the leader should run this before SyncGroup when the group is cooperative, whatever
/// the assignor.
pub fn check_cooperative(
    members: &BTreeMap<String, MemberSubscription>,
    assignment: &GroupAssignment,
) -> Result<(), AssignorError> {
    fn set(tps: &[TopicPartitions]) -> BTreeSet<(&str, i32)> {
        tps.iter()
            .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.as_str(), *p)))
            .collect()
    }
    let mut added = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    for (id, member) in members {
        let owned = set(&member.subscription.owned_partitions);
        let assigned = assignment.get(id).map(|tps| set(tps)).unwrap_or_default();
        added.extend(assigned.difference(&owned).copied());
        revoked.extend(owned.difference(&assigned).copied());
    }
    let mut both: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in added.intersection(&revoked) {
        both.entry(topic).or_default().push(*p);
    }
    if both.is_empty() {
        return Ok(());
    }
    Err(AssignorError::ReassignedWhileOwned {
        partitions: both
            .into_iter()
            .map(|(topic, partitions)| TopicPartitions::new(topic, partitions))
            .collect(),
    })
}
