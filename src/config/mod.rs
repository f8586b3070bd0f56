//! Client configuration.
//!
//! A [`ClientConfig`] holds every setting of the client as a typed value: connection and cluster
//! settings at the top, group and fetch settings in [`ConsumerSettings`], producer settings in
//! [`ProducerSettings`]. Build one with the typed [`ClientConfigBuilder`] (whose setters document
//! each default and property key), or from the string properties a Java client, librdkafka, rdkafka
//! or DBOS user already has, with [`ClientConfig::from_properties`]. Both end in
//! [`ClientConfig::validate`], which rejects contradictory settings; an unknown key or a malformed
//! value is a [`ConfigError`] naming the key.
//!
//! ```rust
//! use std::time::Duration;
//! use kafka_once::config::{ClientConfig, IsolationLevel};
//!
//! let config = ClientConfig::builder()
//!     .bootstrap_servers(["localhost:9092"])
//!     .group_id("orders")
//!     .isolation_level(IsolationLevel::ReadCommitted)
//!     .session_timeout(Duration::from_secs(30))
//!     .build()?;
//! assert_eq!(config.consumer().session_timeout(), Duration::from_secs(30));
//! # Ok::<(), kafka_once::config::ConfigError>(())
//! ```
//!
//! # Layout
//! - `client.rs`: [`ClientConfig`], [`ConsumerSettings`], [`ProducerSettings`], defaults, getters.
//! - `builder.rs`: [`ClientConfigBuilder`].
//! - `properties.rs`: the key table behind `from_properties` and `to_properties`.
//! - `validate.rs`: [`ClientConfig::validate`].
//! - `values.rs`, `address.rs`: enumerated values and [`BrokerAddress`].

mod address;
mod builder;
mod client;
mod error;
mod properties;
mod validate;
mod values;

#[cfg(test)]
mod tests;

pub use address::BrokerAddress;
pub use builder::ClientConfigBuilder;
pub use client::{ClientConfig, ConsumerSettings, ProducerSettings};
pub use error::ConfigError;
pub use values::{
    Acks, AssignmentStrategy, AutoOffsetReset, CompressionType, IsolationLevel, ParseValueError,
};
