//! The `roundrobin` assignor.

use std::collections::{BTreeMap, BTreeSet};

use super::common::{Collector, check_metadata, java_cmp, java_member_cmp, topic_sets};
use super::{
    Assignor, AssignorError, ClusterTopics, GroupAssignment, MemberSubscription, RebalanceProtocol,
};

/// `roundrobin` (Java `RoundRobinAssignor`): all subscribed partitions, sorted by topic and
/// partition, are dealt in turn to the members, skipping a member that does not subscribe to the
/// partition's topic.
///
/// Members are ordered as in [`RangeAssignor`](super::RangeAssignor) (static members by
/// `group.instance.id` first, then member id). With identical subscriptions the counts differ by
/// at most one; with different subscriptions the result can be unbalanced, as in Java.
///
/// Eager.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn protocol_kind(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        metadata: &ClusterTopics,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> Result<GroupAssignment, AssignorError> {
        check_metadata(metadata)?;
        let subscribed = topic_sets(members);
        let mut out = Collector::new(members);

        let mut order: Vec<(&str, &MemberSubscription)> =
            members.iter().map(|(id, m)| (id.as_str(), m)).collect();
        order.sort_by(|a, b| java_member_cmp(*a, *b));
        let order: Vec<(&str, &BTreeSet<&str>)> = order
            .into_iter()
            .map(|(id, _)| (id, &subscribed[id]))
            .collect();

        // Java sorts the topics with a TreeSet of Strings.
        let mut topics: Vec<&str> = subscribed
            .values()
            .flatten()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        topics.sort_by(|a, b| java_cmp(a, b));

        let mut next = 0;
        for topic in topics {
            let Some(count) = metadata.partition_count(topic) else {
                continue;
            };
            for partition in 0..count {
                // Some member subscribes to `topic` (it came from a subscription), so this ends.
                while !order[next].1.contains(topic) {
                    next = (next + 1) % order.len();
                }
                out.add(order[next].0, topic, partition);
                next = (next + 1) % order.len();
            }
        }
        Ok(out.finish())
    }
}
