//! In-order processing (DBOS's `in_order=True`): within a partition, a record's workflow starts only
//! after the previous record's completed durably; partitions run in parallel. The order survives
//! restarts. Prints each record as it completes.
//!
//! ```sh
//! cargo run --example in_order -- localhost:9092 events
//! ```

use kafka_once::config::ClientConfig;
use kafka_once::dispatch::{KafkaMessage, KafkaOnce, WorkflowContext, WorkflowError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "events".into());
    let app = KafkaOnce::open("./events-journal")?;
    app.kafka_consumer(
        ClientConfig::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", "in-order-example"),
            ("auto.offset.reset", "earliest"),
        ])?,
        [topic.as_str()],
    )
    .in_order(true)
    .workflow(|_ctx: WorkflowContext, msg: KafkaMessage| async move {
        println!(
            "{}/{} @ {}: {}",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            String::from_utf8_lossy(msg.value())
        );
        Ok::<(), WorkflowError>(())
    })?;
    app.run().await?;
    Ok(())
}
