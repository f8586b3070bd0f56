//! Shared helpers: the broker, unique names, a cluster client.

use std::sync::atomic::{AtomicU32, Ordering};

use kafka_once::cluster::Cluster;
use kafka_once::config::ClientConfig;

/// The bootstrap address of the run's shared broker, started on first use.
///
/// Prints where the broker's log is, which the test harness shows when a test fails.
pub fn bootstrap() -> String {
    match kafka_once::testing::shared_bootstrap() {
        Ok(b) => {
            if let Some(kafka) = kafka_once::testing::shared_local() {
                for node in kafka.nodes() {
                    eprintln!("broker node {} log: {}", node.id, node.log_file.display());
                }
            }
            b
        }
        Err(e) => panic!("no Kafka broker for the integration tests: {e}"),
    }
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    )
}

fn rand_suffix() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// A client config for the shared broker.
pub fn config() -> ClientConfig {
    ClientConfig::new(bootstrap()).expect("valid bootstrap address")
}

/// A connected cluster client for the shared broker.
pub async fn cluster() -> Cluster {
    Cluster::connect(config())
        .await
        .expect("connect to the shared broker")
}
