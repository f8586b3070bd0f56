//! Tests of the assignors and the consumer protocol encoding.
//!
//! `../testdata/assignor_vectors.txt` holds kafka-clients 4.1.1 output (subscription and
//! assignment bytes, and range/roundrobin known answers), written by `GenAssignorVectors.java`
//! beside it.

mod assignors;
mod protocol;
mod sticky;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

const VECTORS: &str = include_str!("../testdata/assignor_vectors.txt");

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The Java bytes of vector `kind` (`sub` or `asg`) `name` at `version`.
fn java_bytes(kind: &str, name: &str, version: i16) -> Vec<u8> {
    let prefix = format!("{kind} {name} {version} ");
    let line = VECTORS
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no vector {prefix}"));
    hex(line)
}

/// A known-answer assignor case from the Java client.
#[derive(Debug)]
struct JavaCase {
    assignor: String,
    name: String,
    metadata: ClusterTopics,
    members: BTreeMap<String, MemberSubscription>,
    expected: GroupAssignment,
}

fn java_cases() -> Vec<JavaCase> {
    let mut cases = Vec::new();
    let mut current: Option<JavaCase> = None;
    for line in VECTORS.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let list = |s: &str| -> Vec<String> {
            if s == "-" {
                Vec::new()
            } else {
                s.split(',').map(str::to_owned).collect()
            }
        };
        match words.as_slice() {
            ["case", assignor, name] => {
                current = Some(JavaCase {
                    assignor: assignor.to_string(),
                    name: name.to_string(),
                    metadata: ClusterTopics::new(),
                    members: BTreeMap::new(),
                    expected: BTreeMap::new(),
                })
            }
            ["topic", topic, count] => {
                let case = current.as_mut().expect("inside a case");
                case.metadata.insert(*topic, count.parse().expect("count"));
            }
            ["member", id, instance, topics] => {
                let case = current.as_mut().expect("inside a case");
                let mut member = MemberSubscription::new(Subscription::new(list(topics)));
                if *instance != "-" {
                    member = member.with_group_instance_id(*instance);
                }
                case.members.insert(id.to_string(), member);
            }
            ["expect", id, partitions] => {
                let case = current.as_mut().expect("inside a case");
                let mut by_topic: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
                for tp in list(partitions) {
                    let (topic, p) = tp.rsplit_once('-').expect("topic-partition");
                    by_topic
                        .entry(topic.to_owned())
                        .or_default()
                        .insert(p.parse().expect("partition"));
                }
                let tps = by_topic
                    .into_iter()
                    .map(|(t, ps)| TopicPartitions::new(t, ps))
                    .collect();
                case.expected.insert(id.to_string(), tps);
            }
            ["end"] => cases.push(current.take().expect("inside a case")),
            _ => {}
        }
    }
    cases
}

/// Partitions of an assignment as `(member, topic, partition)`.
fn flatten(assignment: &GroupAssignment) -> Vec<(&str, &str, i32)> {
    assignment
        .iter()
        .flat_map(|(member, tps)| {
            tps.iter().flat_map(move |tp| {
                tp.partitions
                    .iter()
                    .map(move |p| (member.as_str(), tp.topic.as_str(), *p))
            })
        })
        .collect()
}

/// Number of partitions per member.
fn counts(assignment: &GroupAssignment) -> BTreeMap<&str, usize> {
    assignment
        .iter()
        .map(|(m, tps)| (m.as_str(), tps.iter().map(|tp| tp.partitions.len()).sum()))
        .collect()
}

fn subscribes(member: &MemberSubscription, topic: &str) -> bool {
    member.subscription.topics.iter().any(|t| t == topic)
}

/// A random group: 1..=8 members, 1..=5 topics of 1..=20 partitions, each member subscribing to
/// a random subset of the topics plus, sometimes, a topic missing from the metadata; about a
/// third of the members static. With `identical`, every member subscribes to the same topics.
fn arb_group(
    identical: bool,
) -> impl Strategy<Value = (ClusterTopics, BTreeMap<String, MemberSubscription>)> {
    let topics = prop::collection::vec(1..=20i32, 1..=5);
    (topics, 1..=8usize).prop_flat_map(move |(counts, n)| {
        let t = counts.len();
        // Bit t of a mask is the topic missing from the metadata.
        let masks = if identical {
            (0u32..(1 << (t + 1))).prop_map(move |m| vec![m; n]).boxed()
        } else {
            prop::collection::vec(0u32..(1 << (t + 1)), n).boxed()
        };
        let ids = prop::collection::btree_set("[a-z]{1,3}-[0-9a-f]{1,4}", n);
        let statics = prop::collection::vec(prop::option::weighted(0.3, "i-[0-9]{1,3}"), n);
        (Just(counts), masks, ids, statics).prop_map(|(counts, masks, ids, statics)| {
            let metadata: ClusterTopics = counts
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("t{i}"), *c))
                .collect();
            let mut used_instances = BTreeSet::new();
            let members = ids
                .into_iter()
                .zip(masks)
                .zip(statics)
                .map(|((id, mask), instance)| {
                    let topics = (0..=counts.len())
                        .filter(|i| mask & (1 << i) != 0)
                        .map(|i| format!("t{i}"));
                    let mut member = MemberSubscription::new(Subscription::new(topics));
                    // group.instance.id is unique within a group.
                    if let Some(instance) = instance.filter(|i| used_instances.insert(i.clone())) {
                        member = member.with_group_instance_id(instance);
                    }
                    (id, member)
                })
                .collect();
            (metadata, members)
        })
    })
}

/// Checks what every assignor promises: an entry per member, each partition valid, given to one
/// member only, which subscribes to its topic.
fn check_valid(
    metadata: &ClusterTopics,
    members: &BTreeMap<String, MemberSubscription>,
    assignment: &GroupAssignment,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        assignment.keys().collect::<Vec<_>>(),
        members.keys().collect::<Vec<_>>()
    );
    let mut seen = BTreeSet::new();
    for (member, topic, p) in flatten(assignment) {
        let count = metadata.partition_count(topic);
        prop_assert!(
            count.is_some_and(|c| (0..c).contains(&p)),
            "{topic}-{p} does not exist"
        );
        prop_assert!(
            subscribes(&members[member], topic),
            "{member} got {topic}-{p} unsubscribed"
        );
        prop_assert!(seen.insert((topic, p)), "{topic}-{p} assigned twice");
    }
    for tps in assignment.values() {
        for tp in tps {
            prop_assert!(!tp.partitions.is_empty(), "empty topic entry");
            prop_assert!(
                tp.partitions.windows(2).all(|w| w[0] < w[1]),
                "unsorted partitions"
            );
        }
        prop_assert!(
            tps.windows(2).all(|w| w[0].topic < w[1].topic),
            "unsorted topics"
        );
    }
    Ok(())
}

/// Checks that every partition of every subscribed topic in the metadata is assigned.
fn check_complete(
    metadata: &ClusterTopics,
    members: &BTreeMap<String, MemberSubscription>,
    assignment: &GroupAssignment,
) -> Result<(), TestCaseError> {
    let assigned: BTreeSet<(&str, i32)> = flatten(assignment)
        .into_iter()
        .map(|(_, t, p)| (t, p))
        .collect();
    for (topic, count) in metadata.iter() {
        if members.values().any(|m| subscribes(m, topic)) {
            for p in 0..count {
                prop_assert!(assigned.contains(&(topic, p)), "{topic}-{p} not assigned");
            }
        }
    }
    Ok(())
}

/// The balance criterion of the sticky assignors: no partition could move to a member that
/// subscribes to its topic and has at least two fewer partitions.
fn check_sticky_balance(
    members: &BTreeMap<String, MemberSubscription>,
    assignment: &GroupAssignment,
) -> Result<(), TestCaseError> {
    let counts = counts(assignment);
    for (from, topic, p) in flatten(assignment) {
        for (to, member) in members {
            prop_assert!(
                !(subscribes(member, topic) && counts[to.as_str()] + 2 <= counts[from]),
                "{topic}-{p} could move from {from} ({}) to {to} ({})",
                counts[from],
                counts[to.as_str()]
            );
        }
    }
    Ok(())
}

/// Members with the same subscription differ by at most one partition.
fn check_identical_within_one(
    members: &BTreeMap<String, MemberSubscription>,
    assignment: &GroupAssignment,
) -> Result<(), TestCaseError> {
    let counts = counts(assignment);
    let mut by_subscription: BTreeMap<BTreeSet<&str>, Vec<usize>> = BTreeMap::new();
    for (id, member) in members {
        let topics = member
            .subscription
            .topics
            .iter()
            .map(String::as_str)
            .collect();
        by_subscription
            .entry(topics)
            .or_default()
            .push(counts[id.as_str()]);
    }
    for counts in by_subscription.values() {
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        prop_assert!(max - min <= 1, "identical subscriptions got {counts:?}");
    }
    Ok(())
}
