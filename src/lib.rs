//! kafka-once: a pure-Rust Kafka client with an exactly-once dispatch runtime.
//!
//! The client speaks the Kafka wire protocol itself, with message types from the
//! [`kafka-protocol`](kafka_protocol) crate (re-exported), and has no C in its dependency graph.
//! Today the crate provides the foundation: typed configuration, broker connections, the cluster
//! layer with metadata and topic admin, and (feature `testing`) a real local Apache Kafka.
//!
//! ```no_run
//! use kafka_once::cluster::{Cluster, NewTopic};
//! use kafka_once::config::ClientConfig;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::from_properties([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("client.id", "orders-service"),
//! ])?;
//! let cluster = Cluster::connect(config).await?;
//! let created = cluster.create_topic(NewTopic::new("orders", 3)).await?;
//! println!("topic {} has id {}", created.name, created.id);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! Layers, lowest first. A lower layer never imports a higher one.
//!
//! | module | role |
//! |---|---|
//! | [`protocol`] | bytes ⇄ typed messages, error codes, supported API versions; no I/O |
//! | [`connection`] | one broker socket: framing, pipelining, correlation ids, version negotiation |
//! | [`cluster`] | broker pool, metadata cache with generations, backoff, admin calls |
//! | [`producer`] | batching, idempotence, partitioner |
//! | [`consumer`] | fetcher with sessions and a byte budget, assignors, group membership and offsets |
//! | [`config`] | typed client configuration and the ecosystem's string keys |
//! | `testing` | a real local Apache Kafka for tests and the CLI (feature `testing`) |

#![warn(missing_docs)]

/// The `kafka-protocol` crate whose message types this client sends, re-exported so that callers
/// of [`connection::Connection::request`] use the same version.
pub use kafka_protocol;

pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
#[cfg(feature = "testing")]
pub mod demo;
pub mod dispatch;
#[cfg(test)]
mod fuzz_seeds;
pub mod journal;
pub mod producer;
pub mod protocol;
#[cfg(feature = "testing")]
pub mod testing;
