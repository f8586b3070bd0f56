//! The consumer protocol's `Subscription` and `Assignment` (`consumer::assignor`), which reach
//! the client as opaque bytes from other group members: subscriptions in the JoinGroup response
//! the leader gets, an assignment in SyncGroup.
//!
//! Byte 0 picks the mode: an assignment, a subscription, or a group of up to four members whose
//! subscriptions follow as `u16` length + bytes each. A value that decodes must encode back (at
//! its version, capped at 3) to bytes that decode to the same value. A group's decoded
//! subscriptions go through every assignor, as the leader does, and the result must keep the
//! assignors' contract: every member present, each partition of a subscribed topic to at most one
//! member that subscribes to it (to exactly one for the eager assignors), topics in name order,
//! partitions ascending, and `cooperative-sticky` passing `check_cooperative`.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use kafka_once::config::AssignmentStrategy;
use kafka_once::consumer::assignor::{
    Assignment, ClusterTopics, MemberSubscription, RebalanceProtocol, Subscription, assignor_for,
    check_cooperative,
};
use libfuzzer_sys::fuzz_target;

const MAX_MEMBERS: usize = 4;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(a) = Assignment::decode(bytes) {
                let again = Assignment::decode(&a.encode(a.version).expect("encodes")).unwrap();
                let expected = Assignment {
                    version: a.version.min(3),
                    ..a
                };
                assert_eq!(again, expected);
            }
        }
        1 => {
            if let Ok(s) = Subscription::decode(bytes) {
                let again = Subscription::decode(&s.encode(s.version).expect("encodes")).unwrap();
                let expected = Subscription {
                    version: s.version.min(3),
                    ..s
                };
                assert_eq!(again, expected);
            }
        }
        _ => group(bytes),
    }
});

fn group(mut bytes: &[u8]) {
    let mut members = BTreeMap::new();
    while members.len() < MAX_MEMBERS {
        let Some((len, rest)) = bytes.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_be_bytes(*len));
        let Some((member, rest)) = rest.split_at_checked(len.min(rest.len())) else {
            break;
        };
        bytes = rest;
        // The leader gives up on the whole group when one subscription does not decode.
        let Ok(sub) = Subscription::decode(member) else {
            return;
        };
        let id = format!("m{}", members.len());
        let mut member = MemberSubscription::new(sub);
        if len % 2 == 1 {
            // Some members static, so the assignors' instance-id ordering is exercised.
            member = member.with_group_instance_id(format!("static-{}", 3 - members.len()));
        }
        members.insert(id, member);
    }
    // Partition counts from a hash of the name: 0..=5, and some topics without metadata.
    let mut metadata = ClusterTopics::new();
    for member in members.values() {
        for topic in &member.subscription.topics {
            let h = topic
                .bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            if h % 7 != 6 {
                metadata.insert(topic.clone(), (h % 6) as i32);
            }
        }
    }
    for strategy in [
        AssignmentStrategy::Range,
        AssignmentStrategy::RoundRobin,
        AssignmentStrategy::CooperativeSticky,
    ] {
        let assignor = assignor_for(strategy);
        let assignment = assignor
            .assign(&metadata, &members)
            .unwrap_or_else(|e| panic!("{strategy:?} failed on valid counts: {e}"));
        assert_eq!(
            assignment.keys().collect::<Vec<_>>(),
            members.keys().collect::<Vec<_>>(),
            "{strategy:?}"
        );
        let mut given = BTreeSet::new();
        for (id, tps) in &assignment {
            let subscribed = &members[id].subscription.topics;
            assert!(
                tps.windows(2).all(|w| w[0].topic < w[1].topic),
                "{strategy:?}: {tps:?}"
            );
            for tp in tps {
                assert!(
                    subscribed.contains(&tp.topic),
                    "{strategy:?}: {id} got {tp:?}"
                );
                let count = metadata.partition_count(&tp.topic).expect("a known topic");
                assert!(
                    tp.partitions.windows(2).all(|w| w[0] < w[1]),
                    "{strategy:?}: {tp:?}"
                );
                for &p in &tp.partitions {
                    assert!((0..count).contains(&p), "{strategy:?}: {tp:?} of {count}");
                    assert!(
                        given.insert((tp.topic.clone(), p)),
                        "{strategy:?}: {tp:?} twice"
                    );
                }
            }
        }
        if assignor.protocol_kind() == RebalanceProtocol::Cooperative {
            check_cooperative(&members, &assignment)
                .unwrap_or_else(|e| panic!("{strategy:?}: {e}"));
        } else {
            let subscribed: BTreeSet<&str> = members
                .values()
                .flat_map(|m| m.subscription.topics.iter().map(String::as_str))
                .collect();
            let all: usize = metadata
                .iter()
                .filter(|(t, _)| subscribed.contains(t))
                .map(|(_, n)| n as usize)
                .sum();
            assert_eq!(given.len(), all, "{strategy:?} left partitions out");
        }
    }
}
