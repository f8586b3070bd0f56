//! Admin calls: create, list and delete topics.

use kafka_once::cluster::NewTopic;
use kafka_once::protocol::ErrorCode;

use crate::common;

#[tokio::test]
async fn create_list_delete_round_trip() {
    let cluster = common::cluster().await;
    let a = common::unique("admin-a");
    let b = common::unique("admin-b");
    let results = cluster
        .create_topics(&[
            NewTopic::new(&a, 2),
            NewTopic::new(&b, 1).config("cleanup.policy", "compact"),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    for r in &results {
        let created = r.as_ref().expect("created");
        assert!(!created.id.is_nil());
    }
    cluster
        .await_topic(&a, cluster.request_timeout())
        .await
        .unwrap();
    cluster
        .await_topic(&b, cluster.request_timeout())
        .await
        .unwrap();

    // Creating it again is a typed broker error naming the topic.
    let again = cluster
        .create_topics(&[NewTopic::new(&a, 2)])
        .await
        .unwrap();
    let err = again[0].as_ref().unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TopicAlreadyExists));
    assert!(err.to_string().contains(&a), "{err}");

    let names: Vec<String> = cluster
        .list_topics(false)
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(names.contains(&a) && names.contains(&b), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("__")),
        "internal topics listed: {names:?}"
    );

    let deleted = cluster.delete_topics(&[&a, &b]).await.unwrap();
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    // Deletion completes asynchronously on the controller; wait for the metadata to drop them.
    let mut names = Vec::new();
    for _ in 0..60 {
        names = cluster
            .list_topics(true)
            .await
            .unwrap()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        if !names.contains(&a) && !names.contains(&b) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(!names.contains(&a) && !names.contains(&b), "{names:?}");

    // Deleting a missing topic is a typed error too.
    let missing = cluster.delete_topics(&[&a]).await.unwrap();
    assert_eq!(
        missing[0].as_ref().unwrap_err().code(),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
}

#[tokio::test]
async fn invalid_topic_is_rejected_with_the_brokers_reason() {
    let cluster = common::cluster().await;
    let results = cluster
        .create_topics(&[NewTopic::new("bad/name", 1)])
        .await
        .unwrap();
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidTopicException));
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn config_errors_name_the_key() {
    use kafka_once::config::{ClientConfig, ConfigError};
    let unknown = ClientConfig::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("bootstrap.server", "localhost:9092"),
    ])
    .unwrap_err();
    assert!(matches!(&unknown, ConfigError::UnknownKey { key, .. } if key == "bootstrap.server"));
    assert!(unknown.to_string().contains("bootstrap.server"));
    let bad = ClientConfig::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("request.timeout.ms", "soon"),
    ])
    .unwrap_err();
    assert!(matches!(&bad, ConfigError::InvalidValue { key, .. } if key == "request.timeout.ms"));
    assert!(bad.to_string().contains("request.timeout.ms"));
}
