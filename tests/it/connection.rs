//! The connection layer against the real broker.

use std::collections::HashSet;

use kafka_once::cluster::NewTopic;
use kafka_once::connection::{Connection, ConnectionConfig};
use kafka_once::protocol::ErrorCode;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::common;

fn first_bootstrap() -> String {
    common::bootstrap()
        .split(',')
        .next()
        .expect("bootstrap has an address")
        .to_string()
}

#[tokio::test]
async fn negotiates_versions_and_sees_a_new_topic_with_its_id() {
    let conn = Connection::connect(&first_bootstrap(), &ConnectionConfig::default())
        .await
        .unwrap();
    let versions = conn.versions().expect("handshake ran");
    // Kafka 4.x supports Metadata v0..v13 at least from v4? It dropped v0-v3 in 4.0 (KIP-896).
    let metadata = versions.negotiate(ApiKey::Metadata).unwrap();
    assert!(metadata >= 12, "negotiated Metadata v{metadata}");
    assert!(versions.broker_range(ApiKey::Fetch).is_some());

    let cluster = common::cluster().await;
    let name = common::unique("meta");
    let created = cluster
        .create_topic(NewTopic::new(&name, 3).replication_factor(1))
        .await
        .unwrap();
    assert_eq!(created.partitions, 3);
    assert!(!created.id.is_nil());

    // A Metadata round trip on our own connection sees the topic, its partitions and its id.
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone())))),
        ]));
    let response = conn.request(&request).await.unwrap();
    let topic = &response.topics[0];
    assert_eq!(
        topic.name.as_deref().map(|s| s.as_str()),
        Some(name.as_str())
    );
    assert_eq!(topic.error_code, 0);
    assert_eq!(topic.topic_id, created.id);
    let mut partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition_index).collect();
    partitions.sort();
    assert_eq!(partitions, vec![0, 1, 2]);
    assert!(
        topic
            .partitions
            .iter()
            .all(|p| p.leader_id.0 >= 0 && p.leader_epoch >= 0)
    );

    // The cluster's cache agrees.
    let cached = cluster
        .topic(&name)
        .await
        .unwrap()
        .expect("topic is cached");
    assert_eq!(cached.id, created.id);
    assert_eq!(cached.partitions.len(), 3);
    assert!(cached.is_ready());
    assert!(!cluster.metadata().brokers.is_empty());
}

#[tokio::test]
async fn a_thousand_concurrent_requests_on_one_connection_are_matched() {
    let conn = Connection::connect(
        &first_bootstrap(),
        &ConnectionConfig {
            max_in_flight: 16,
            ..ConnectionConfig::default()
        },
    )
    .await
    .unwrap();
    let prefix = common::unique("absent");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let conn = conn.clone();
        let name = format!("{prefix}-{i}");
        tasks.spawn(async move {
            // Each request asks about its own (absent) topic; the response must name it back.
            let request = MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone())))),
                ]));
            let response = conn.request(&request).await.expect("request answered");
            assert_eq!(response.topics.len(), 1);
            let topic = &response.topics[0];
            assert_eq!(
                topic.name.as_deref().map(|s| s.as_str()),
                Some(name.as_str()),
                "response matched to the wrong request"
            );
            assert_eq!(
                ErrorCode::from_i16(topic.error_code),
                Some(ErrorCode::UnknownTopicOrPartition)
            );
            i
        });
    }
    let mut seen = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        seen.insert(done.expect("task did not panic"));
    }
    assert_eq!(seen.len(), 1000);
    assert!(!conn.is_poisoned());
}
