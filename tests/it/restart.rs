//! The broker stops mid-run: in-flight requests fail with a retriable error, and the client
//! reconnects once the broker is back.
//!
//! This test needs a broker it may stop, so it always starts its own local Kafka (Java and Maven
//! required), even when `KAFKA_BOOTSTRAP` points the other tests elsewhere.

use std::time::Duration;

use kafka_once::cluster::{Cluster, NewTopic};
use kafka_once::config::ClientConfig;
use kafka_once::connection::ConnectionError;
use kafka_once::testing::LocalKafka;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::protocol::StrBytes;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_fails_in_flight_requests_then_reconnects() {
    let kafka = LocalKafka::builder()
        .start()
        .await
        .expect("start a private broker");
    let node = kafka.nodes()[0].clone();
    eprintln!("private broker log: {}", node.log_file.display());
    let config = ClientConfig::builder()
        .bootstrap_servers([kafka.bootstrap()])
        .request_timeout(Duration::from_secs(40))
        .reconnect_backoff(Duration::from_millis(50))
        .reconnect_backoff_max(Duration::from_millis(500))
        .build()
        .unwrap();
    let cluster = Cluster::connect(config).await.unwrap();
    let topic = common::unique("restart");
    let created = cluster
        .create_topic(NewTopic::new(&topic, 1).replication_factor(1))
        .await
        .unwrap();

    // A long-poll fetch on an empty partition: the broker holds it, so it is in flight when the
    // broker goes away.
    let leader = cluster.metadata().leader(&topic, 0).unwrap().0.node_id;
    let conn = cluster.broker(leader).await.unwrap();
    let fetch = FetchRequest::default()
        .with_max_wait_ms(30_000)
        .with_min_bytes(1)
        .with_max_bytes(1024 * 1024)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_topic_id(created.id)
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1024 * 1024),
                ]),
        ]);
    let version = conn.version_for::<FetchRequest>().unwrap();
    // Right after creation the partition may briefly answer NOT_LEADER_OR_FOLLOWER; resend
    // until the broker parks the fetch.
    let mut parked = None;
    for _ in 0..40 {
        let attempt = {
            let (conn, fetch) = (conn.clone(), fetch.clone());
            tokio::spawn(async move {
                conn.request_with_timeout(&fetch, version, Duration::from_secs(60))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        if attempt.is_finished() {
            let response = attempt.await.unwrap().expect("fetch answered");
            let code = response.responses[0].partitions[0].error_code;
            assert!(
                code != 0,
                "an empty partition answered a 30 s long poll at once"
            );
            continue;
        }
        parked = Some(attempt);
        break;
    }
    let in_flight = parked.expect("the fetch should be parked on the broker");

    kafka.kill_node(node.id).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), in_flight)
        .await
        .expect("in-flight request fails promptly")
        .unwrap()
        .expect_err("the broker died");
    assert!(err.is_retriable(), "{err:?}");
    assert!(matches!(err, ConnectionError::Poisoned(_)), "{err:?}");
    assert!(conn.is_poisoned());

    // While the broker is down, new attempts fail with retriable errors.
    let down = cluster.broker(leader).await.unwrap_err();
    assert!(down.is_retriable(), "{down:?}");

    kafka.start_node(node.id).await.unwrap();
    // The pool reconnects on its own, with a new connection.
    let mut reconnected = None;
    for _ in 0..120 {
        match cluster.refresh_metadata().await {
            Ok(_) => match cluster.broker(leader).await {
                Ok(c) => {
                    reconnected = Some(c);
                    break;
                }
                Err(e) => assert!(e.is_retriable(), "{e:?}"),
            },
            Err(e) => assert!(e.is_retriable(), "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let fresh = reconnected.expect("reconnected after the broker restarted");
    assert!(!fresh.is_poisoned());
    let t = cluster
        .await_topic(&topic, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(t.id, created.id, "same topic after the restart");
    kafka.stop().await.unwrap();
}
