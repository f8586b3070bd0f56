//! Create a topic, list the cluster's topics, and delete it again.
//!
//! ```sh
//! kafka-once broker start          # or point KAFKA_BOOTSTRAP at any broker
//! KAFKA_BOOTSTRAP=127.0.0.1:PORT cargo run --example topics
//! ```

use kafka_once::cluster::{Cluster, NewTopic};
use kafka_once::config::ClientConfig;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string());
    let config = ClientConfig::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("client.id", "topics-example"),
    ])?;
    let cluster = Cluster::connect(config).await?;

    let created = cluster
        .create_topic(NewTopic::new("example-topic", 3).config("retention.ms", "3600000"))
        .await?;
    println!("created {} with id {}", created.name, created.id);

    for topic in cluster.list_topics(false).await? {
        let leaders: Vec<i32> = topic.partitions.iter().map(|p| p.leader).collect();
        println!(
            "{:<30} partitions={} leaders={leaders:?}",
            topic.name,
            topic.partitions.len()
        );
    }

    for result in cluster.delete_topics(&["example-topic"]).await? {
        result?;
    }
    println!("deleted example-topic");
    Ok(())
}
