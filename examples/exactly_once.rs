//! Exactly-once processing: count orders per customer in the app's durable state. Every record's
//! workflow completes once, and the count is updated once per record, even when the process is
//! killed and restarted at any moment.
//!
//! ```sh
//! kafka-once broker start
//! kafka-once topics create orders --partitions 3
//! seq 1 1000 | awk '{print "customer-" $1 % 7 "\t" $1}' | kafka-once produce --topic orders --keyed
//! cargo run --example exactly_once -- localhost:9092 orders
//! ```

use kafka_once::config::ClientConfig;
use kafka_once::dispatch::{
    FailurePolicy, KafkaMessage, KafkaOnce, Ordering, WorkflowContext, WorkflowError,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "orders".into());

    let app = KafkaOnce::open("./orders-journal")?;
    app.kafka_consumer(
        ClientConfig::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("group.id", "order-counter"),
            ("auto.offset.reset", "earliest"),
        ])?,
        [topic.as_str()],
    )
    // Records of one customer (one key) in order; different customers in parallel.
    .ordering(Ordering::Key)
    .on_failure(FailurePolicy::DeadLetter {
        topic: format!("{topic}-dlq"),
    })
    .workflow(|ctx: WorkflowContext, msg: KafkaMessage| async move {
        let customer = msg.key().unwrap_or(b"unknown").to_vec();
        let count = ctx
            .transaction(|tx| {
                let n = tx
                    .get("orders_per_customer", &customer)?
                    .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
                    .map_or(0, u64::from_be_bytes);
                tx.put("orders_per_customer", &customer, &(n + 1).to_be_bytes())?;
                Ok::<u64, WorkflowError>(n + 1)
            })
            .await?;
        println!(
            "{} (attempt {}): {} has {count} orders",
            msg.idempotency_key(),
            ctx.attempt(),
            String::from_utf8_lossy(&customer)
        );
        Ok::<(), WorkflowError>(())
    })?;
    // Stops on Ctrl-C: in-flight workflows finish, offsets are committed, the group is left.
    app.run().await?;
    for m in app.metrics() {
        println!("{m:?}");
    }
    Ok(())
}
