//! The consumer protocol encoding: Java's bytes, round trips, `kafka-protocol` as a second
//! oracle, and malformed input.

use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
    consumer_protocol_assignment, consumer_protocol_subscription,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::*;

/// The subscriptions `GenAssignorVectors.java` serialized, as written at the newest version.
fn java_subscriptions() -> Vec<(&'static str, Subscription)> {
    vec![
        ("empty", Subscription::default()),
        (
            "full",
            Subscription {
                topics: vec!["orders".into(), "payments".into()],
                user_data: Some(Bytes::from_static(&[0, 0, 0, 7])),
                owned_partitions: vec![
                    TopicPartitions::new("orders", [0, 2]),
                    TopicPartitions::new("payments", [1]),
                ],
                generation_id: 7,
                rack_id: Some("rack-a".into()),
                ..Subscription::default()
            },
        ),
        (
            "empty_user_data",
            Subscription {
                topics: vec!["t".into()],
                user_data: Some(Bytes::new()),
                owned_partitions: vec![TopicPartitions::new("t", [3])],
                generation_id: 0,
                ..Subscription::default()
            },
        ),
        (
            "many",
            Subscription {
                topics: vec!["a".into(), "b".into(), "c".into()],
                user_data: Some(Bytes::from_static(&[1, 2, 3, 4, 5])),
                owned_partitions: vec![
                    TopicPartitions::new("a", [0, 1]),
                    TopicPartitions::new("b", [10]),
                    TopicPartitions::new("c", [i32::MAX]),
                ],
                generation_id: i32::MAX,
                rack_id: Some(String::new()),
                ..Subscription::default()
            },
        ),
        (
            "unicode",
            Subscription {
                topics: vec!["té".into(), "日本".into()],
                owned_partitions: vec![TopicPartitions::new("日本", [5])],
                generation_id: 12,
                rack_id: Some("ré".into()),
                ..Subscription::default()
            },
        ),
    ]
}

fn java_assignments() -> Vec<(&'static str, Assignment)> {
    vec![
        ("empty", Assignment::default()),
        (
            "full",
            Assignment {
                partitions: vec![
                    TopicPartitions::new("orders", [0, 2]),
                    TopicPartitions::new("payments", [1]),
                ],
                user_data: Some(Bytes::from_static(&[9, 8, 7])),
                ..Assignment::default()
            },
        ),
        (
            "empty_user_data",
            Assignment {
                partitions: vec![TopicPartitions::new("t", [0])],
                user_data: Some(Bytes::new()),
                ..Assignment::default()
            },
        ),
        (
            "unsorted",
            Assignment::new(vec![
                TopicPartitions::new("z", [4, 0]),
                TopicPartitions::new("a", [1]),
            ]),
        ),
    ]
}

/// What decoding `s` encoded at `version` gives: the fields the version lacks at their defaults.
fn at_version(s: &Subscription, version: i16) -> Subscription {
    Subscription {
        version,
        topics: s.topics.clone(),
        user_data: s.user_data.clone(),
        owned_partitions: if version >= 1 {
            s.owned_partitions.clone()
        } else {
            Vec::new()
        },
        generation_id: if version >= 2 { s.generation_id } else { -1 },
        rack_id: if version >= 3 {
            s.rack_id.clone()
        } else {
            None
        },
    }
}

#[test]
fn subscriptions_match_java_bytes_at_every_version() {
    for (name, subscription) in java_subscriptions() {
        for version in 0..=3 {
            let java = java_bytes("sub", name, version);
            let ours = subscription.encode(version).expect("encodes");
            assert_eq!(hex_of(&ours), hex_of(&java), "sub {name} v{version}");
            let decoded = Subscription::decode(&java).expect("decodes");
            assert_eq!(
                decoded,
                at_version(&subscription, version),
                "sub {name} v{version}"
            );
        }
    }
}

#[test]
fn assignments_match_java_bytes_at_every_version() {
    for (name, assignment) in java_assignments() {
        for version in 0..=3 {
            let java = java_bytes("asg", name, version);
            let ours = assignment.encode(version).expect("encodes");
            assert_eq!(hex_of(&ours), hex_of(&java), "asg {name} v{version}");
            let decoded = Assignment::decode(&java).expect("decodes");
            assert_eq!(
                decoded,
                Assignment {
                    version,
                    ..assignment.clone()
                },
                "asg {name} v{version}"
            );
        }
    }
}

#[test]
fn cooperative_sticky_user_data_is_javas() {
    // Java's CooperativeStickyAssignor.subscriptionUserData: the generation as an INT32.
    let assignor = CooperativeStickyAssignor;
    assert_eq!(
        assignor.subscription_user_data(-1).as_deref(),
        Some(&[0xff, 0xff, 0xff, 0xff][..])
    );
    assert_eq!(
        assignor.subscription_user_data(7).as_deref(),
        Some(&[0, 0, 0, 7][..])
    );
    assert_eq!(RangeAssignor.subscription_user_data(7), None);
    assert_eq!(RoundRobinAssignor.subscription_user_data(7), None);
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn newer_versions_decode_known_fields_and_ignore_the_rest() {
    // "When it encounters a newer version, it parses it using the current format."
    let (_, full) = java_subscriptions().swap_remove(1);
    for version in [4, 5, i16::MAX] {
        let mut bytes = java_bytes("sub", "full", 3);
        bytes[..2].copy_from_slice(&version.to_be_bytes());
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0xff]);
        let decoded = Subscription::decode(&bytes).expect("newer subscription decodes");
        assert_eq!(
            decoded,
            Subscription {
                version,
                ..full.clone()
            }
        );

        let mut bytes = java_bytes("asg", "full", 3);
        bytes[..2].copy_from_slice(&version.to_be_bytes());
        bytes.extend_from_slice(&[1, 2, 3]);
        let decoded = Assignment::decode(&bytes).expect("newer assignment decodes");
        assert_eq!(decoded.version, version);
        assert_eq!(decoded.partitions, java_assignments()[1].1.partitions);
    }
}

#[test]
fn trailing_bytes_at_a_known_version_are_ignored_like_java() {
    let mut bytes = java_bytes("sub", "full", 1);
    bytes.extend_from_slice(&[0, 0, 0, 9]);
    let decoded = Subscription::decode(&bytes).expect("decodes");
    assert_eq!(
        decoded.generation_id, -1,
        "v1 has no generation, trailing bytes are not one"
    );
}

#[test]
fn encoding_above_the_newest_version_writes_the_newest() {
    let (_, full) = java_subscriptions().swap_remove(1);
    for version in [4, i16::MAX] {
        assert_eq!(full.encode(version).unwrap(), full.encode(3).unwrap());
        let assignment = &java_assignments()[1].1;
        assert_eq!(
            assignment.encode(version).unwrap(),
            assignment.encode(3).unwrap()
        );
    }
}

#[test]
fn negative_versions_are_errors() {
    assert!(matches!(
        Subscription::default().encode(-1),
        Err(AssignorError::Encode { version: -1, .. })
    ));
    assert!(matches!(
        Assignment::default().encode(-1),
        Err(AssignorError::Encode { version: -1, .. })
    ));
    assert_eq!(
        Subscription::decode(&[0xff, 0xfe, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
        Err(AssignorError::Malformed {
            message: "subscription",
            field: "version",
            reason: Malformed::UnsupportedVersion(-2),
        })
    );
    assert!(matches!(
        Assignment::decode(&[0x80, 0]),
        Err(AssignorError::Malformed {
            reason: Malformed::UnsupportedVersion(i16::MIN),
            ..
        })
    ));
}

#[test]
fn overlong_strings_fail_to_encode() {
    let long = "x".repeat(i16::MAX as usize + 1);
    let subscription = Subscription::new([long.clone()]);
    assert!(matches!(
        subscription.encode(3),
        Err(AssignorError::Encode { .. })
    ));
    let subscription = Subscription {
        rack_id: Some(long.clone()),
        ..Subscription::default()
    };
    assert!(matches!(
        subscription.encode(3),
        Err(AssignorError::Encode { .. })
    ));
    // Not written below v3, so no error there.
    assert!(subscription.encode(2).is_ok());
    let assignment = Assignment::new(vec![TopicPartitions::new(long, [0])]);
    assert!(matches!(
        assignment.encode(0),
        Err(AssignorError::Encode { .. })
    ));
    // The longest allowed.
    let max = Subscription::new(["y".repeat(i16::MAX as usize)]);
    let decoded = Subscription::decode(&max.encode(3).unwrap()).unwrap();
    assert_eq!(decoded.topics, max.topics);
}

#[test]
fn every_truncation_of_a_java_vector_is_an_error() {
    for kind in ["sub", "asg"] {
        let names: Vec<&str> = if kind == "sub" {
            java_subscriptions().into_iter().map(|(n, _)| n).collect()
        } else {
            java_assignments().into_iter().map(|(n, _)| n).collect()
        };
        for name in names {
            for version in 0..=3 {
                let bytes = java_bytes(kind, name, version);
                for len in 0..bytes.len() {
                    let result = if kind == "sub" {
                        Subscription::decode(&bytes[..len]).map(|_| ())
                    } else {
                        Assignment::decode(&bytes[..len]).map(|_| ())
                    };
                    assert!(
                        matches!(
                            result,
                            Err(AssignorError::Malformed {
                                reason: Malformed::Truncated { .. }
                                    | Malformed::LengthTooLong { .. }
                                    | Malformed::ArrayTooLong { .. },
                                ..
                            })
                        ),
                        "{kind} {name} v{version} cut at {len}: {result:?}"
                    );
                }
            }
        }
    }
}

/// A subscription v1 whose bytes after the version are `rest`.
fn sub_v1(rest: &[u8]) -> Result<Subscription, AssignorError> {
    let mut bytes = vec![0, 1];
    bytes.extend_from_slice(rest);
    Subscription::decode(&bytes)
}

fn reason(result: Result<impl std::fmt::Debug, AssignorError>) -> (&'static str, Malformed) {
    match result {
        Err(AssignorError::Malformed { field, reason, .. }) => (field, reason),
        other => panic!("expected a malformed error, got {other:?}"),
    }
}

#[test]
fn huge_counts_and_lengths_are_rejected_before_allocating() {
    // topics: 0x7fffffff strings in 4 bytes.
    assert_eq!(
        reason(sub_v1(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0])),
        (
            "topics",
            Malformed::ArrayTooLong {
                count: i32::MAX as usize,
                min_element_size: 2,
                remaining: 4
            }
        )
    );
    // A topic name of 32767 bytes in 2.
    assert_eq!(
        reason(sub_v1(&[0, 0, 0, 1, 0x7f, 0xff, b'a', b'b'])),
        (
            "topics",
            Malformed::LengthTooLong {
                len: 32767,
                remaining: 2
            }
        )
    );
    // user_data of i32::MAX bytes.
    assert_eq!(
        reason(sub_v1(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1])),
        (
            "user_data",
            Malformed::LengthTooLong {
                len: i32::MAX as usize,
                remaining: 1
            }
        )
    );
    // owned_partitions: a billion topics in 6 bytes.
    assert_eq!(
        reason(sub_v1(&[
            0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ])),
        (
            "owned_partitions",
            Malformed::ArrayTooLong {
                count: 0x4000_0000,
                min_element_size: 6,
                remaining: 6
            }
        )
    );
    // owned_partitions.partitions: 2 partitions in 4 bytes.
    assert_eq!(
        reason(sub_v1(&[
            0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0
        ])),
        (
            "owned_partitions.partitions",
            Malformed::ArrayTooLong {
                count: 2,
                min_element_size: 4,
                remaining: 4
            }
        )
    );
    // assigned_partitions of i32::MAX topics.
    assert_eq!(
        reason(Assignment::decode(&[0, 3, 0x7f, 0xff, 0xff, 0xff])),
        (
            "assigned_partitions",
            Malformed::ArrayTooLong {
                count: i32::MAX as usize,
                min_element_size: 6,
                remaining: 0
            }
        )
    );
}

#[test]
fn nulls_negative_lengths_and_bad_utf8_are_rejected() {
    // A null topics array.
    assert_eq!(
        reason(sub_v1(&[0xff, 0xff, 0xff, 0xff])),
        ("topics", Malformed::UnexpectedNull)
    );
    // A null topic name.
    assert_eq!(
        reason(sub_v1(&[0, 0, 0, 1, 0xff, 0xff])),
        ("topics", Malformed::UnexpectedNull)
    );
    // Lengths below -1.
    assert_eq!(
        reason(sub_v1(&[0xff, 0xff, 0xff, 0xfe])),
        ("topics", Malformed::NegativeLength(-2))
    );
    assert_eq!(
        reason(sub_v1(&[0, 0, 0, 1, 0x80, 0])),
        ("topics", Malformed::NegativeLength(-32768))
    );
    assert_eq!(
        reason(sub_v1(&[0, 0, 0, 0, 0x80, 0, 0, 0])),
        ("user_data", Malformed::NegativeLength(i32::MIN))
    );
    // A null partitions array inside owned_partitions.
    assert_eq!(
        reason(sub_v1(&[
            0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff
        ])),
        ("owned_partitions.partitions", Malformed::UnexpectedNull)
    );
    // A null assigned topic.
    assert_eq!(
        reason(Assignment::decode(&[
            0, 0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0
        ])),
        ("assigned_partitions.topic", Malformed::UnexpectedNull)
    );
    // Invalid UTF-8 in a topic and in the rack id.
    assert_eq!(
        reason(sub_v1(&[0, 0, 0, 1, 0, 2, 0xc3, 0x28])),
        ("topics", Malformed::InvalidUtf8)
    );
    let mut bytes = java_bytes("sub", "full", 3);
    let len = bytes.len();
    bytes[len - 1] = 0xff;
    assert_eq!(
        reason(Subscription::decode(&bytes)),
        ("rack_id", Malformed::InvalidUtf8)
    );
    // Errors read well.
    let error = sub_v1(&[0x7f, 0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "malformed consumer protocol subscription: topics: 2147483647 elements cannot fit in \
         the 0 bytes left (at least 2 bytes each)"
    );
}

/// The `consumer_protocol` fuzz target's seeds: its mode byte (0 assignment, 1 subscription,
/// 2 a group of members, each a `u16` length and a subscription), then the Java client's vectors at
/// every version, and one group of three members with overlapping subscriptions and owned
/// partitions.
#[test]
fn consumer_protocol_fuzz_seeds_are_current() {
    let mut files = std::collections::BTreeMap::new();
    for version in 0..=CONSUMER_PROTOCOL_VERSION {
        for (name, a) in java_assignments() {
            let seed = [&[0][..], &a.encode(version).unwrap()].concat();
            files.insert(format!("assignment_{name}_v{version}.bin"), seed);
        }
        for (name, s) in java_subscriptions() {
            let seed = [&[1][..], &s.encode(version).unwrap()].concat();
            files.insert(format!("subscription_{name}_v{version}.bin"), seed);
        }
    }
    let members = [
        Subscription {
            owned_partitions: vec![TopicPartitions::new("orders", [0, 1])],
            generation_id: 4,
            ..Subscription::new(["orders", "payments"])
        },
        Subscription {
            owned_partitions: vec![TopicPartitions::new("payments", [0])],
            generation_id: 4,
            ..Subscription::new(["payments"])
        },
        Subscription::new(["orders", "refunds"]),
    ];
    let mut seed = vec![2];
    for m in &members {
        let bytes = m.encode(CONSUMER_PROTOCOL_VERSION).unwrap();
        seed.extend((bytes.len() as u16).to_be_bytes());
        seed.extend(&bytes);
    }
    files.insert("group_of_three.bin".into(), seed);
    crate::fuzz_seeds::check_or_write("consumer_protocol", files);
}

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

fn arb_topic_partitions() -> impl Strategy<Value = Vec<TopicPartitions>> {
    prop::collection::vec(
        (arb_string(), prop::collection::vec(any::<i32>(), 0..5))
            .prop_map(|(topic, partitions)| TopicPartitions { topic, partitions }),
        0..4,
    )
}

fn arb_user_data() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from))
}

fn arb_subscription() -> impl Strategy<Value = Subscription> {
    (
        prop::collection::vec(arb_string(), 0..4),
        arb_user_data(),
        arb_topic_partitions(),
        any::<i32>(),
        prop::option::of(arb_string()),
    )
        .prop_map(
            |(topics, user_data, owned_partitions, generation_id, rack_id)| Subscription {
                version: CONSUMER_PROTOCOL_VERSION,
                topics,
                user_data,
                owned_partitions,
                generation_id,
                rack_id,
            },
        )
}

fn arb_assignment() -> impl Strategy<Value = Assignment> {
    (arb_topic_partitions(), arb_user_data()).prop_map(|(partitions, user_data)| Assignment {
        version: CONSUMER_PROTOCOL_VERSION,
        partitions,
        user_data,
    })
}

/// Valid encodings with some bytes overwritten and the end cut at random: they get past the
/// header far more often than arbitrary bytes do.
fn arb_mangled() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            (arb_subscription(), 0..=3i16).prop_map(|(s, v)| s.encode(v).unwrap().to_vec()),
            (arb_assignment(), 0..=3i16).prop_map(|(a, v)| a.encode(v).unwrap().to_vec()),
        ],
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut bytes, edits, cut)| {
            if !bytes.is_empty() {
                for (at, value) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = value;
                }
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

fn kp_topic(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn subscriptions_round_trip(subscription in arb_subscription(), version in 0..=3i16) {
        let bytes = subscription.encode(version).unwrap();
        prop_assert_eq!(Subscription::decode(&bytes).unwrap(), at_version(&subscription, version));
    }

    #[test]
    fn assignments_round_trip(assignment in arb_assignment(), version in 0..=3i16) {
        let bytes = assignment.encode(version).unwrap();
        prop_assert_eq!(Assignment::decode(&bytes).unwrap(), Assignment { version, ..assignment });
    }

    /// `kafka-protocol`'s generated codec, a second oracle, agrees with ours both ways.
    #[test]
    fn kafka_protocol_agrees(subscription in arb_subscription(), assignment in arb_assignment(), version in 0..=3i16) {
        let ours = subscription.encode(version).unwrap();
        let mut body = ours.slice(2..);
        let theirs = ConsumerProtocolSubscription::decode(&mut body, version).unwrap();
        prop_assert_eq!(
            theirs.topics.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            subscription.topics.clone()
        );
        prop_assert_eq!(&theirs.user_data, &subscription.user_data);
        let mut encoded = bytes::BytesMut::new();
        encoded.extend_from_slice(&version.to_be_bytes());
        theirs.encode(&mut encoded, version).unwrap();
        prop_assert_eq!(&encoded[..], &ours[..]);

        let converted = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(
                assignment
                    .partitions
                    .iter()
                    .map(|tp| {
                        consumer_protocol_assignment::TopicPartition::default()
                            .with_topic(kp_topic(&tp.topic))
                            .with_partitions(tp.partitions.clone())
                    })
                    .collect(),
            )
            .with_user_data(assignment.user_data.clone());
        let mut encoded = bytes::BytesMut::new();
        encoded.extend_from_slice(&version.to_be_bytes());
        converted.encode(&mut encoded, version).unwrap();
        prop_assert_eq!(&encoded[..], &assignment.encode(version).unwrap()[..]);

        let owned = ConsumerProtocolSubscription::default()
            .with_owned_partitions(
                subscription
                    .owned_partitions
                    .iter()
                    .map(|tp| {
                        consumer_protocol_subscription::TopicPartition::default()
                            .with_topic(kp_topic(&tp.topic))
                            .with_partitions(tp.partitions.clone())
                    })
                    .collect(),
            )
            .with_generation_id(subscription.generation_id)
            .with_rack_id(subscription.rack_id.clone().map(StrBytes::from_string));
        let mut encoded = bytes::BytesMut::new();
        encoded.extend_from_slice(&version.to_be_bytes());
        owned.encode(&mut encoded, version).unwrap();
        let decoded = Subscription::decode(&encoded).unwrap();
        prop_assert_eq!(
            decoded,
            at_version(&Subscription { topics: vec![], user_data: None, ..subscription }, version)
        );
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Subscription::decode(&bytes);
        let _ = Assignment::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mangled_encodings(bytes in arb_mangled()) {
        // Either an error or a value that encodes again.
        if let Ok(s) = Subscription::decode(&bytes) {
            prop_assert!(s.encode(s.version).is_ok());
        }
        if let Ok(a) = Assignment::decode(&bytes) {
            prop_assert!(a.encode(a.version).is_ok());
        }
    }
}
