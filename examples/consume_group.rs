//! Consume a topic in a consumer group and commit what was processed.
//!
//! ```sh
//! kafka-once broker start                       # or point KAFKA_BOOTSTRAP at any broker
//! kafka-once topics create orders --partitions 3
//! seq 1 20 | kafka-once produce --topic orders
//! KAFKA_BOOTSTRAP=127.0.0.1:9092 cargo run --example consume_group
//! ```
//! Run it twice at once to watch the partitions split between the two members.

use kafka_once::config::ClientConfig;
use kafka_once::consumer::GroupConsumer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string());
    let consumer = GroupConsumer::new(ClientConfig::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "consume-group-example"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("partition.assignment.strategy", "cooperative-sticky"),
    ])?)
    .await?;
    consumer.subscribe(&["orders"])?;
    for _ in 0..20 {
        let record = consumer.recv().await?;
        let value = record.value.as_deref().map(String::from_utf8_lossy);
        println!(
            "{}-{} @ {}: {value:?}",
            record.topic, record.partition, record.offset
        );
    }
    // Commits the next offset to read of every assigned partition, under the current generation;
    // a commit refused because of a rebalance is an error, never silently retried.
    consumer.commit().await?;
    consumer.close().await;
    Ok(())
}
