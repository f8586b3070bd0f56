//! Integration tests against a real Apache Kafka.
//!
//! One test binary, so one broker for the whole run: the first test that needs it starts a local
//! Kafka (see `kafka_once::testing`), or `KAFKA_BOOTSTRAP=host:port` points every test at an
//! existing broker. Tests use unique topic names and may run in parallel.

mod admin;
mod common;
mod connection;
mod consumer;
mod crash;
mod diskfull;
mod dispatch;
mod failover;
mod fake_broker;
mod faults;
mod golden;
mod group;
mod group_interop;
mod handoff;
mod interop;
mod model;
mod partitioner;
mod producer;
mod producer_scripted;
mod proxy;
mod restart;
mod send;
mod slow;
mod steps;
mod storm;
