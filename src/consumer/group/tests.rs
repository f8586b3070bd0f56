//! Unit tests of the pure parts: commit error mapping and the partition-set conversions.

use std::collections::BTreeSet;

use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::consumer::TopicPartition;
use crate::consumer::assignor::TopicPartitions;
use crate::protocol::ErrorCode;

use super::membership::to_topic_partitions;
use super::offsets::{Coordinator, Generation};
use super::{CommitError, GroupError};

fn coordinator() -> Coordinator {
    let config = ClientConfig::new("localhost:9").unwrap();
    Coordinator::new(Cluster::new(config), "g".into())
}

fn generation() -> Generation {
    Generation {
        generation_id: 7,
        member_id: "m-1".into(),
        group_instance_id: Some("i-1".into()),
    }
}

#[tokio::test]
async fn generation_errors_are_final_and_not_committed() {
    let c = coordinator();
    let g = generation();
    let map = |code| c.commit_error(&g, "t".into(), 0, code);
    assert!(matches!(
        map(ErrorCode::IllegalGeneration),
        Some(CommitError::IllegalGeneration { generation: 7, .. })
    ));
    assert!(matches!(
        map(ErrorCode::RebalanceInProgress),
        Some(CommitError::RebalanceInProgress { generation: 7, .. })
    ));
    assert!(matches!(
        map(ErrorCode::UnknownMemberId),
        Some(CommitError::UnknownMember { ref member_id, .. }) if member_id == "m-1"
    ));
    assert!(matches!(
        map(ErrorCode::FencedInstanceId),
        Some(CommitError::Fenced { ref instance_id, .. }) if instance_id == "i-1"
    ));
    for code in [
        ErrorCode::IllegalGeneration,
        ErrorCode::RebalanceInProgress,
        ErrorCode::UnknownMemberId,
        ErrorCode::FencedInstanceId,
    ] {
        assert!(map(code).unwrap().is_generation_error(), "{code:?}");
    }
}

#[tokio::test]
async fn coordinator_moves_are_retried_and_other_errors_name_the_partition() {
    let c = coordinator();
    let g = generation();
    for code in [
        ErrorCode::NotCoordinator,
        ErrorCode::CoordinatorNotAvailable,
        ErrorCode::CoordinatorLoadInProgress,
    ] {
        assert!(
            c.commit_error(&g, "t".into(), 0, code).is_none(),
            "{code:?}"
        );
    }
    let e = c
        .commit_error(&g, "t".into(), 3, ErrorCode::OffsetMetadataTooLarge)
        .unwrap();
    assert!(matches!(
        e,
        CommitError::Partition { ref topic, partition: 3, code: ErrorCode::OffsetMetadataTooLarge, .. }
            if topic == "t"
    ));
    assert!(!e.is_generation_error());
}

#[test]
fn group_error_retriability_follows_the_error_action() {
    let broker = |code| GroupError::Broker {
        group: "g".into(),
        context: "test",
        code,
    };
    assert!(broker(ErrorCode::NotCoordinator).is_retriable());
    assert!(broker(ErrorCode::CoordinatorLoadInProgress).is_retriable());
    assert!(!broker(ErrorCode::GroupAuthorizationFailed).is_retriable());
    assert!(!broker(ErrorCode::FencedInstanceId).is_retriable());
    assert!(!GroupError::NoGroupId.is_retriable());
}

#[test]
fn partition_sets_encode_per_topic_in_order() {
    let set: BTreeSet<TopicPartition> = [("b", 1), ("a", 2), ("a", 0), ("b", 0)]
        .into_iter()
        .map(|(t, p)| TopicPartition::new(t, p))
        .collect();
    assert_eq!(
        to_topic_partitions(&set),
        [
            TopicPartitions::new("a", [0, 2]),
            TopicPartitions::new("b", [0, 1])
        ]
    );
    assert!(to_topic_partitions(&BTreeSet::new()).is_empty());
}

#[tokio::test]
async fn no_group_id_is_a_typed_error() {
    let config = ClientConfig::new("localhost:9").unwrap();
    let e = super::GroupConsumer::new(config).await.unwrap_err();
    assert!(matches!(e, GroupError::NoGroupId));
}
