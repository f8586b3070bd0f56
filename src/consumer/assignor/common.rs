//! Helpers the assignors share: Java's orderings, metadata checks and result grouping.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use super::{AssignorError, ClusterTopics, GroupAssignment, MemberSubscription, TopicPartitions};

/// Java's `String.compareTo`: by UTF-16 code units, which differs from Rust's `str` order only
/// when characters above U+FFFF meet characters in U+E000..=U+FFFF.
pub(super) fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The order of the Java client's `AbstractPartitionAssignor.MemberInfo`: static members first,
/// by `group.instance.id`, then dynamic members by member id.
pub(super) fn java_member_cmp(
    a: (&str, &MemberSubscription),
    b: (&str, &MemberSubscription),
) -> Ordering {
    match (&a.1.group_instance_id, &b.1.group_instance_id) {
        (Some(x), Some(y)) => java_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        // Member ids are unique, so the order is total among dynamic members.
        (None, None) => java_cmp(a.0, b.0),
    }
}

/// Rejects negative partition counts.
pub(super) fn check_metadata(metadata: &ClusterTopics) -> Result<(), AssignorError> {
    match metadata.iter().find(|(_, count)| *count < 0) {
        Some((topic, count)) => Err(AssignorError::InvalidPartitionCount {
            topic: topic.to_owned(),
            count,
        }),
        None => Ok(()),
    }
}

/// Each member's subscribed topics as a set.
pub(super) fn topic_sets(
    members: &BTreeMap<String, MemberSubscription>,
) -> BTreeMap<&str, BTreeSet<&str>> {
    members
        .iter()
        .map(|(id, m)| {
            let topics = m.subscription.topics.iter().map(String::as_str).collect();
            (id.as_str(), topics)
        })
        .collect()
}

/// Collects `(member, topic, partition)` triples into a [`GroupAssignment`] with an entry for
/// every member, topics by name and partitions ascending.
pub(super) struct Collector<'a> {
    members: BTreeMap<&'a str, BTreeMap<&'a str, BTreeSet<i32>>>,
}

impl<'a> Collector<'a> {
    pub(super) fn new(members: &'a BTreeMap<String, MemberSubscription>) -> Self {
        Collector {
            members: members
                .keys()
                .map(|id| (id.as_str(), BTreeMap::new()))
                .collect(),
        }
    }

    pub(super) fn add(&mut self, member: &'a str, topic: &'a str, partition: i32) {
        self.members
            .entry(member)
            .or_default()
            .entry(topic)
            .or_default()
            .insert(partition);
    }

    pub(super) fn finish(self) -> GroupAssignment {
        self.members
            .into_iter()
            .map(|(member, topics)| {
                let topics = topics
                    .into_iter()
                    .map(|(topic, partitions)| TopicPartitions::new(topic, partitions))
                    .collect();
                (member.to_owned(), topics)
            })
            .collect()
    }
}
