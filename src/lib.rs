//! kafka-once: a pure-Rust Kafka client with an exactly-once dispatch runtime.
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
//! | [`config`] | typed client configuration and the ecosystem's string keys |
//! | `testing` | a real local Apache Kafka for tests and the CLI (feature `testing`) |

#![warn(missing_docs)]

pub mod cluster;
pub mod config;
pub mod connection;
pub mod protocol;
#[cfg(feature = "testing")]
pub mod testing;
