//! The `range` assignor.

use std::collections::BTreeMap;

use super::common::{Collector, check_metadata, java_member_cmp, topic_sets};
use super::{
    Assignor, AssignorError, ClusterTopics, GroupAssignment, MemberSubscription, RebalanceProtocol,
};

/// `range` (Java `RangeAssignor`): per topic, the partitions in numeric order are cut into
/// contiguous ranges, one per subscribed member, and when they do not divide evenly the first
/// members get one extra.
///
/// Members are ordered as the Java client orders them: static members first, by
/// `group.instance.id`, then dynamic members by member id (Java's UTF-16 string order). So with
/// two members `C0`, `C1` and topics `t0`, `t1` of three partitions each, `C0` gets
/// `t0-0, t0-1, t1-0, t1-1` and `C1` gets `t0-2, t1-2`. Topics with the same partition count and
/// the same subscribers are co-partitioned: partition `n` of each goes to the same member.
///
/// Eager; balanced per topic (counts differ by at most one per topic), not across topics. The
/// rack-aware variant (Java uses it when members set `client.rack`) is not implemented.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
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
        for (topic, count) in metadata.iter().filter(|(_, n)| *n > 0) {
            let mut consumers: Vec<(&str, &MemberSubscription)> = members
                .iter()
                .filter(|(id, _)| subscribed[id.as_str()].contains(topic))
                .map(|(id, m)| (id.as_str(), m))
                .collect();
            if consumers.is_empty() {
                continue;
            }
            consumers.sort_by(|a, b| java_member_cmp(*a, *b));
            let k = consumers.len();
            let count = count as usize;
            let (per_member, extra) = (count / k, count % k);
            let mut next = 0usize;
            for (i, (member, _)) in consumers.into_iter().enumerate() {
                let len = per_member + usize::from(i < extra);
                for p in next..next + len {
                    // p < count <= i32::MAX.
                    out.add(member, topic, p as i32);
                }
                next += len;
            }
        }
        Ok(out.finish())
    }
}
