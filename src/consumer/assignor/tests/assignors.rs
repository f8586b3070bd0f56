//! All three assignors: the Java client's known answers, and properties over random groups.

use crate::config::AssignmentStrategy;

use super::*;

const ALL: [AssignmentStrategy; 3] = [
    AssignmentStrategy::Range,
    AssignmentStrategy::RoundRobin,
    AssignmentStrategy::CooperativeSticky,
];

fn group(members: &[(&str, &[&str])]) -> BTreeMap<String, MemberSubscription> {
    members
        .iter()
        .map(|(id, topics)| {
            let subscription = Subscription::new(topics.iter().copied());
            (id.to_string(), MemberSubscription::new(subscription))
        })
        .collect()
}

/// A member's expected partitions: `(topic, partitions)` pairs.
type Partitions<'a> = &'a [(&'a str, &'a [i32])];

fn expect(members: &[(&str, Partitions)]) -> GroupAssignment {
    members
        .iter()
        .map(|(id, tps)| {
            let tps = tps
                .iter()
                .map(|(t, ps)| TopicPartitions::new(*t, ps.iter().copied()))
                .collect();
            (id.to_string(), tps)
        })
        .collect()
}

#[test]
fn names_and_protocols() {
    for strategy in ALL {
        let assignor = assignor_for(strategy);
        assert_eq!(assignor.name(), strategy.as_str());
        assert_eq!(
            strategy.as_str().parse::<AssignmentStrategy>(),
            Ok(strategy)
        );
    }
    assert_eq!(
        assignor_for(AssignmentStrategy::Range).protocol_kind(),
        RebalanceProtocol::Eager
    );
    assert_eq!(
        assignor_for(AssignmentStrategy::RoundRobin).protocol_kind(),
        RebalanceProtocol::Eager
    );
    assert_eq!(
        assignor_for(AssignmentStrategy::CooperativeSticky).protocol_kind(),
        RebalanceProtocol::Cooperative
    );
}

#[test]
fn rebalance_protocol_is_the_one_all_configured_assignors_support() {
    use AssignmentStrategy::*;
    assert_eq!(
        RebalanceProtocol::for_strategies(&[CooperativeSticky]),
        RebalanceProtocol::Cooperative
    );
    // The Java client's 3.x default list.
    assert_eq!(
        RebalanceProtocol::for_strategies(&[Range, CooperativeSticky]),
        RebalanceProtocol::Eager
    );
    assert_eq!(
        RebalanceProtocol::for_strategies(&[RoundRobin]),
        RebalanceProtocol::Eager
    );
    assert_eq!(
        RebalanceProtocol::for_strategies(&[]),
        RebalanceProtocol::Eager
    );
}

#[test]
fn choose_protocol_takes_our_first_choice_that_every_member_lists() {
    use AssignmentStrategy::*;
    let ours = [CooperativeSticky, Range];
    let members: [&[&str]; 2] = [&["range", "cooperative-sticky"], &["cooperative-sticky"]];
    assert_eq!(choose_protocol(&ours, &members), Some(CooperativeSticky));
    let members = [
        vec!["range".to_string()],
        vec!["roundrobin".into(), "range".into()],
    ];
    assert_eq!(choose_protocol(&ours, &members), Some(Range));
    let members: [&[&str]; 2] = [&["range"], &["roundrobin"]];
    assert_eq!(choose_protocol(&ours, &members), None);
    let none: [&[&str]; 0] = [];
    assert_eq!(choose_protocol(&ours, &none), Some(CooperativeSticky));
    assert_eq!(choose_protocol::<&[&str], &str>(&[], &[&["range"]]), None);
}

#[test]
fn range_javadoc_example() {
    // RangeAssignor javadoc: C0 and C1 subscribe to t0 and t1, three partitions each.
    let metadata: ClusterTopics = [("t0", 3), ("t1", 3)].into_iter().collect();
    let members = group(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
    assert_eq!(
        RangeAssignor.assign(&metadata, &members).unwrap(),
        expect(&[
            ("C0", &[("t0", &[0, 1]), ("t1", &[0, 1])]),
            ("C1", &[("t0", &[2]), ("t1", &[2])]),
        ])
    );
}

#[test]
fn roundrobin_javadoc_examples() {
    // RoundRobinAssignor javadoc, identical subscriptions.
    let metadata: ClusterTopics = [("t0", 3), ("t1", 3)].into_iter().collect();
    let members = group(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
    assert_eq!(
        RoundRobinAssignor.assign(&metadata, &members).unwrap(),
        expect(&[
            ("C0", &[("t0", &[0, 2]), ("t1", &[1])]),
            ("C1", &[("t0", &[1]), ("t1", &[0, 2])]),
        ])
    );
    // Different subscriptions: members not subscribed to a topic are skipped.
    let metadata: ClusterTopics = [("t0", 1), ("t1", 2), ("t2", 3)].into_iter().collect();
    let members = group(&[
        ("C0", &["t0"]),
        ("C1", &["t0", "t1"]),
        ("C2", &["t0", "t1", "t2"]),
    ]);
    assert_eq!(
        RoundRobinAssignor.assign(&metadata, &members).unwrap(),
        expect(&[
            ("C0", &[("t0", &[0])]),
            ("C1", &[("t1", &[0])]),
            ("C2", &[("t1", &[1]), ("t2", &[0, 1, 2])]),
        ])
    );
}

#[test]
fn static_members_sort_by_instance_id_before_dynamic_ones() {
    // Member ids sort A9, C3, C4, C5, but C5, C3, C4 are static I0, I1, I2 and go first.
    let metadata: ClusterTopics = [("t0", 3), ("t1", 3)].into_iter().collect();
    let mut members = group(&[
        ("A9", &["t0", "t1"]),
        ("C3", &["t0", "t1"]),
        ("C4", &["t0", "t1"]),
        ("C5", &["t0", "t1"]),
    ]);
    for (id, instance) in [("C5", "I0"), ("C3", "I1"), ("C4", "I2")] {
        members.get_mut(id).unwrap().group_instance_id = Some(instance.into());
    }
    assert_eq!(
        RangeAssignor.assign(&metadata, &members).unwrap(),
        expect(&[
            ("A9", &[]),
            ("C3", &[("t0", &[1]), ("t1", &[1])]),
            ("C4", &[("t0", &[2]), ("t1", &[2])]),
            ("C5", &[("t0", &[0]), ("t1", &[0])]),
        ])
    );
}

#[test]
fn java_known_answers() {
    let cases = java_cases();
    assert!(cases.len() >= 45, "only {} cases", cases.len());
    for case in cases {
        let assignor: Box<dyn Assignor> = match case.assignor.as_str() {
            "range" => Box::new(RangeAssignor),
            "roundrobin" => Box::new(RoundRobinAssignor),
            other => panic!("unknown assignor {other}"),
        };
        let ours = assignor.assign(&case.metadata, &case.members).unwrap();
        assert_eq!(ours, case.expected, "{} {}", case.assignor, case.name);
    }
}

#[test]
fn java_string_order_is_utf16_order() {
    // Rust orders by code point, U+FF5E first; Java by UTF-16 unit, where U+1F600's leading
    // surrogate 0xD83D comes before 0xFF5E.
    assert_eq!(
        common::java_cmp("\u{1F600}", "\u{FF5E}"),
        std::cmp::Ordering::Less
    );
    assert!("\u{1F600}" > "\u{FF5E}");
    let metadata: ClusterTopics = [("t", 2)].into_iter().collect();
    let members = group(&[("\u{FF5E}", &["t"]), ("\u{1F600}", &["t"])]);
    let assignment = RangeAssignor.assign(&metadata, &members).unwrap();
    assert_eq!(assignment["\u{1F600}"], [TopicPartitions::new("t", [0])]);
}

#[test]
fn edge_cases() {
    let metadata: ClusterTopics = [("t0", 4), ("empty", 0)].into_iter().collect();
    for strategy in ALL {
        let assignor = assignor_for(strategy);
        // No members.
        assert_eq!(
            assignor.assign(&metadata, &BTreeMap::new()).unwrap(),
            BTreeMap::new()
        );
        // Nobody subscribes to anything in the metadata; a topic of no partitions.
        let members = group(&[("a", &["missing", "empty"]), ("b", &[])]);
        assert_eq!(
            assignor.assign(&metadata, &members).unwrap(),
            expect(&[("a", &[]), ("b", &[])])
        );
        // More members than partitions.
        let members = group(&[
            ("a", &["t0"]),
            ("b", &["t0"]),
            ("c", &["t0"]),
            ("d", &["t0"]),
            ("e", &["t0"]),
        ]);
        let spread: Vec<usize> = counts(&assignor.assign(&metadata, &members).unwrap())
            .into_values()
            .collect();
        assert_eq!(spread.iter().sum::<usize>(), 4);
        assert!(spread.iter().all(|c| *c <= 1));
        // A duplicated topic in a decoded subscription counts once.
        let mut members = group(&[("a", &["t0"]), ("b", &["t0"])]);
        members.get_mut("a").unwrap().subscription.topics = vec!["t0".into(), "t0".into()];
        let assignment = assignor.assign(&metadata, &members).unwrap();
        assert_eq!(
            counts(&assignment).into_values().collect::<Vec<_>>(),
            [2, 2]
        );
        // A negative partition count is an error.
        let bad: ClusterTopics = [("t0", -1)].into_iter().collect();
        assert_eq!(
            assignor.assign(&bad, &members),
            Err(AssignorError::InvalidPartitionCount {
                topic: "t0".into(),
                count: -1
            })
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn range_is_valid_complete_and_contiguous((metadata, members) in arb_group(false)) {
        let assignment = RangeAssignor.assign(&metadata, &members).unwrap();
        check_valid(&metadata, &members, &assignment)?;
        check_complete(&metadata, &members, &assignment)?;
        // Per topic: each subscriber has a contiguous range, sizes within one.
        for (topic, _) in metadata.iter() {
            let mut sizes = Vec::new();
            for (id, member) in &members {
                if !subscribes(member, topic) {
                    continue;
                }
                let partitions = assignment[id]
                    .iter()
                    .find(|tp| tp.topic == topic)
                    .map_or(&[][..], |tp| &tp.partitions[..]);
                prop_assert!(partitions.windows(2).all(|w| w[1] == w[0] + 1), "range not contiguous");
                sizes.push(partitions.len());
            }
            if let (Some(min), Some(max)) = (sizes.iter().min(), sizes.iter().max()) {
                prop_assert!(max - min <= 1, "{topic}: sizes {sizes:?}");
            }
        }
    }

    #[test]
    fn roundrobin_is_valid_and_complete((metadata, members) in arb_group(false)) {
        let assignment = RoundRobinAssignor.assign(&metadata, &members).unwrap();
        check_valid(&metadata, &members, &assignment)?;
        check_complete(&metadata, &members, &assignment)?;
    }

    #[test]
    fn roundrobin_balances_identical_subscriptions((metadata, members) in arb_group(true)) {
        let assignment = RoundRobinAssignor.assign(&metadata, &members).unwrap();
        check_valid(&metadata, &members, &assignment)?;
        check_complete(&metadata, &members, &assignment)?;
        check_identical_within_one(&members, &assignment)?;
    }

    /// A fresh group (nobody owns anything): nothing is held back, everything is assigned,
    /// balanced.
    #[test]
    fn cooperative_sticky_fresh_group((metadata, members) in arb_group(false)) {
        let assignment = CooperativeStickyAssignor.assign(&metadata, &members).unwrap();
        check_valid(&metadata, &members, &assignment)?;
        check_complete(&metadata, &members, &assignment)?;
        check_sticky_balance(&members, &assignment)?;
        check_identical_within_one(&members, &assignment)?;
    }

    #[test]
    fn cooperative_sticky_identical_subscriptions_get_floor_or_ceil((metadata, members) in arb_group(true)) {
        let assignment = CooperativeStickyAssignor.assign(&metadata, &members).unwrap();
        check_valid(&metadata, &members, &assignment)?;
        check_complete(&metadata, &members, &assignment)?;
        let total: usize = counts(&assignment).values().sum();
        let n = members.len();
        for count in counts(&assignment).into_values() {
            prop_assert!(count == total / n || count == total.div_ceil(n), "{count} of {total} over {n}");
        }
    }

    /// Deterministic: the same input gives the same output.
    #[test]
    fn assignors_are_deterministic((metadata, members) in arb_group(false)) {
        for strategy in ALL {
            let assignor = assignor_for(strategy);
            prop_assert_eq!(
                assignor.assign(&metadata, &members).unwrap(),
                assignor.assign(&metadata, &members).unwrap()
            );
        }
    }
}
