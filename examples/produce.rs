//! Produce keyed records with the idempotent producer and print where each landed.
//!
//! ```sh
//! kafka-once broker start                       # or point KAFKA_BOOTSTRAP at any broker
//! kafka-once topics create orders --partitions 3
//! KAFKA_BOOTSTRAP=127.0.0.1:9092 cargo run --example produce
//! ```

use kafka_once::config::ClientConfig;
use kafka_once::producer::{Producer, ProducerRecord};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string());
    let config = ClientConfig::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("compression.type", "lz4"),
        ("linger.ms", "10"),
    ])?;
    let producer = Producer::new(config).await?;

    // `send` queues the record (waiting only if buffer.memory is full) and returns the future
    // of its delivery; many records can be in flight at once.
    let mut deliveries = Vec::new();
    for i in 0..10 {
        let record = ProducerRecord::new("orders", format!("order #{i}"))
            .key(format!("customer-{}", i % 3))
            .header("source", "example");
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        let meta = delivery.await?;
        println!("{}-{} @ {}", meta.topic, meta.partition, meta.offset);
    }
    producer.close().await;
    Ok(())
}
