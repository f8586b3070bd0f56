//! The typed builder.

use std::time::Duration;

use super::properties::parse_list;
use super::{
    Acks, AssignmentStrategy, AutoOffsetReset, BrokerAddress, ClientConfig, CompressionType,
    ConfigError, IsolationLevel,
};

/// Builds a [`ClientConfig`]; from [`ClientConfig::builder`] or [`ClientConfig::to_builder`].
///
/// Each setter's doc gives the default and the matching property key. Setters never fail; a value
/// that cannot be used (an unparsable bootstrap address) is reported by [`build`](Self::build),
/// which also runs [`ClientConfig::validate`].
#[must_use]
#[derive(Debug, Clone)]
pub struct ClientConfigBuilder {
    config: ClientConfig,
    /// The first setter error, returned by `build`.
    error: Option<ConfigError>,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: Option<String> => $($field:ident).+) => {
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<String>) -> Self {
            self.config.$($field).+ = Some(value.into());
            self
        }
    };
    ($(#[$doc:meta])* $name:ident: String => $($field:ident).+) => {
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<String>) -> Self {
            self.config.$($field).+ = value.into();
            self
        }
    };
    ($(#[$doc:meta])* $name:ident: $ty:ty => $($field:ident).+) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$($field).+ = value;
            self
        }
    };
}

impl ClientConfigBuilder {
    pub(super) fn from_config(config: ClientConfig) -> Self {
        Self {
            config,
            error: None,
        }
    }

    /// Checks the settings with [`ClientConfig::validate`] and returns the configuration.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] for a bootstrap address that did not parse, otherwise
    /// whatever `validate` rejects.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.config.validate()?;
        Ok(self.config)
    }

    /// Brokers to bootstrap from, each `host:port` (`[::1]:9092` for IPv6; an item may also be a
    /// comma-separated list). Replaces any earlier list. Required: no default. Property:
    /// `bootstrap.servers`.
    pub fn bootstrap_servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed = Vec::new();
        for item in servers {
            match parse_list::<BrokerAddress>("bootstrap.servers", item.as_ref()) {
                Ok(addresses) => parsed.extend(addresses),
                Err(error) => {
                    self.error.get_or_insert(error);
                }
            }
        }
        self.config.bootstrap_servers = parsed;
        self
    }

    /// Brokers to bootstrap from, already parsed. Replaces any earlier list. Required: no
    /// default. Property: `bootstrap.servers`.
    pub fn bootstrap_addresses(mut self, servers: impl IntoIterator<Item = BrokerAddress>) -> Self {
        self.config.bootstrap_servers = servers.into_iter().collect();
        self
    }

    setter! {
        /// Name sent in every request header, shown in broker logs and quotas. Default
        /// `"kafka-once"`. Property: `client.id`.
        client_id: String => client_id
    }

    setter! {
        /// How long to wait for a response before failing the request; must be more than zero
        /// and more than `fetch.max.wait.ms`. Default 30 s. Property: `request.timeout.ms`.
        request_timeout: Duration => request_timeout
    }
    setter! {
        /// How long a TCP connect may take. Default 10 s. Property:
        /// `socket.connection.setup.timeout.ms`.
        connect_timeout: Duration => connect_timeout
    }
    setter! {
        /// First wait before reconnecting to a broker; doubles up to `reconnect.backoff.max.ms`.
        /// Default 50 ms. Property: `reconnect.backoff.ms`.
        reconnect_backoff: Duration => reconnect_backoff
    }
    setter! {
        /// Cap of the reconnect backoff; at least `reconnect.backoff.ms`. Default 1 s. Property:
        /// `reconnect.backoff.max.ms`.
        reconnect_backoff_max: Duration => reconnect_backoff_max
    }
    setter! {
        /// First wait before retrying a failed request; doubles up to `retry.backoff.max.ms`.
        /// Default 100 ms. Property: `retry.backoff.ms`.
        retry_backoff: Duration => retry_backoff
    }
    setter! {
        /// Cap of the retry backoff; at least `retry.backoff.ms`. Default 1 s. Property:
        /// `retry.backoff.max.ms`.
        retry_backoff_max: Duration => retry_backoff_max
    }
    setter! {
        /// How many times a retriable failure is retried. Default `i32::MAX` (2147483647), as the
        /// Java client: in effect unbounded, so deadlines such as `delivery.timeout.ms` decide.
        /// Must be more than 0 with idempotence. Property: `retries`.
        retries: u32 => retries
    }
    setter! {
        /// Age after which cached metadata is refreshed even without errors. Default 5 min.
        /// Property: `metadata.max.age.ms`.
        metadata_max_age: Duration => metadata_max_age
    }
    setter! {
        /// Requests pipelined on one connection before waiting for responses; at least 1, at
        /// most 5 with idempotence. Default 5. Property: `max.in.flight.requests.per.connection`.
        max_in_flight: usize => max_in_flight
    }
    setter! {
        /// Largest response frame accepted from a broker, from 1024 to `i32::MAX` and at least
        /// `fetch.max.bytes` + 512. Default 104858112 (100 MiB + 512). Property:
        /// `receive.message.max.bytes`.
        receive_message_max_bytes: usize => receive_message_max_bytes
    }
    setter! {
        /// `SO_SNDBUF` of broker sockets; `None` keeps the OS default. Default `None` (the Java
        /// client sets 128 KiB). Property: `socket.send.buffer.bytes` (`-1` = `None`).
        socket_send_buffer_bytes: Option<usize> => socket_send_buffer_bytes
    }
    setter! {
        /// `SO_RCVBUF` of broker sockets; `None` keeps the OS default. Default `None` (the Java
        /// client sets 64 KiB). Property: `socket.receive.buffer.bytes` (`-1` = `None`).
        socket_receive_buffer_bytes: Option<usize> => socket_receive_buffer_bytes
    }
    setter! {
        /// Idle time after which a connection is closed; `None` never closes idle connections.
        /// Default 9 min. Property: `connections.max.idle.ms` (`-1` = `None`).
        connections_max_idle: Option<Duration> => connections_max_idle
    }

    // Group and consumer settings.

    setter! {
        /// The consumer group to join; not empty. Default none. Property: `group.id`.
        group_id: Option<String> => consumer.group_id
    }
    setter! {
        /// Static membership id, stable across restarts of this member; needs `group.id`.
        /// Default none (dynamic membership). Property: `group.instance.id`.
        group_instance_id: Option<String> => consumer.group_instance_id
    }
    setter! {
        /// Time without heartbeats after which the coordinator evicts this member; more than
        /// `heartbeat.interval.ms`. Default 45 s. Property: `session.timeout.ms`.
        session_timeout: Duration => consumer.session_timeout
    }
    setter! {
        /// Time between heartbeats; more than zero and less than `session.timeout.ms`. Default
        /// 3 s. Property: `heartbeat.interval.ms`.
        heartbeat_interval: Duration => consumer.heartbeat_interval
    }
    setter! {
        /// Longest gap between polls before the member leaves its group; also the rebalance
        /// timeout. Default 5 min. Property: `max.poll.interval.ms`.
        max_poll_interval: Duration => consumer.max_poll_interval
    }
    setter! {
        /// Where to start without a committed offset. Default [`AutoOffsetReset::Latest`].
        /// Property: `auto.offset.reset`.
        auto_offset_reset: AutoOffsetReset => consumer.auto_offset_reset
    }
    setter! {
        /// Whether consumed offsets are committed periodically (ignored by the exactly-once
        /// runtime, which commits itself). Default `true`. Property: `enable.auto.commit`.
        enable_auto_commit: bool => consumer.enable_auto_commit
    }
    setter! {
        /// Period of automatic commits. Default 5 s. Property: `auto.commit.interval.ms`.
        auto_commit_interval: Duration => consumer.auto_commit_interval
    }
    setter! {
        /// Which records a fetch may return. Default [`IsolationLevel::ReadUncommitted`].
        /// Property: `isolation.level`.
        isolation_level: IsolationLevel => consumer.isolation_level
    }
    setter! {
        /// Bytes the broker waits to accumulate before answering a fetch; at most
        /// `fetch.max.bytes`. Default 1. Property: `fetch.min.bytes`.
        fetch_min_bytes: u32 => consumer.fetch_min_bytes
    }
    setter! {
        /// Soft cap on one fetch response's bytes; at most `receive.message.max.bytes` - 512.
        /// Default 52428800 (50 MiB). Property: `fetch.max.bytes`.
        fetch_max_bytes: u32 => consumer.fetch_max_bytes
    }
    setter! {
        /// Longest time the broker holds a fetch for `fetch.min.bytes`; less than
        /// `request.timeout.ms`. Default 500 ms. Property: `fetch.max.wait.ms` (librdkafka
        /// `fetch.wait.max.ms`).
        fetch_max_wait: Duration => consumer.fetch_max_wait
    }
    setter! {
        /// Soft cap on one partition's bytes in a fetch. Default 1048576 (1 MiB). Property:
        /// `max.partition.fetch.bytes` (librdkafka `fetch.message.max.bytes`).
        max_partition_fetch_bytes: u32 => consumer.max_partition_fetch_bytes
    }
    setter! {
        /// Assignors offered to the group, preferred first; not empty. Default
        /// `[Range, CooperativeSticky]`, as the Java client 4.x. Property:
        /// `partition.assignment.strategy`.
        partition_assignment_strategy: Vec<AssignmentStrategy> => consumer.partition_assignment_strategy
    }
    setter! {
        /// Most records handed out per poll; at least 1. Default 500. Property:
        /// `max.poll.records`.
        max_poll_records: usize => consumer.max_poll_records
    }
    setter! {
        /// Whether fetched batches have their CRC-32C checked. Default `true`. Property:
        /// `check.crcs`.
        check_crcs: bool => consumer.check_crcs
    }

    // Producer settings.

    setter! {
        /// Replicas that must have a record before it counts as written; must be
        /// [`Acks::All`] with idempotence. Default [`Acks::All`]. Property: `acks` (librdkafka
        /// `request.required.acks`).
        acks: Acks => producer.acks
    }
    setter! {
        /// Whether the producer uses a producer id and sequence numbers so retries never
        /// duplicate; needs `acks=all`, `retries` > 0 and at most 5 requests in flight. Default
        /// `true`. Property: `enable.idempotence`.
        enable_idempotence: bool => producer.enable_idempotence
    }
    setter! {
        /// How long a batch waits for more records before it is sent. Default 5 ms, as the Java
        /// client 4.x. Property: `linger.ms` (librdkafka `queue.buffering.max.ms`).
        linger: Duration => producer.linger
    }
    setter! {
        /// Target size of one partition's batch in bytes. Default 16384. Property: `batch.size`.
        batch_size: u32 => producer.batch_size
    }
    setter! {
        /// Codec for record batches. Default [`CompressionType::None`]. Property:
        /// `compression.type` (librdkafka `compression.codec`).
        compression_type: CompressionType => producer.compression_type
    }
    setter! {
        /// Bytes of records the producer buffers before `send` waits. Default 33554432
        /// (32 MiB). Property: `buffer.memory`.
        buffer_memory: u64 => producer.buffer_memory
    }
    setter! {
        /// Upper bound from `send` to success or failure, retries included; at least
        /// `linger.ms` + `request.timeout.ms`. Default 120 s. Property: `delivery.timeout.ms`
        /// (librdkafka `message.timeout.ms`).
        delivery_timeout: Duration => producer.delivery_timeout
    }
    setter! {
        /// Largest Produce request in bytes. Default 1048576 (1 MiB). Property:
        /// `max.request.size` (librdkafka `message.max.bytes`).
        max_request_size: u32 => producer.max_request_size
    }
    setter! {
        /// Id for transactions, stable across restarts; needs idempotence. Default none.
        /// Property: `transactional.id`.
        transactional_id: Option<String> => producer.transactional_id
    }
    setter! {
        /// Whether keyed records are spread like unkeyed ones instead of hashed to a partition.
        /// Default `false`. Property: `partitioner.ignore.keys`.
        partitioner_ignore_keys: bool => producer.partitioner_ignore_keys
    }
    setter! {
        /// Longest time `send` may block for metadata or buffer space. Default 60 s. Property:
        /// `max.block.ms`.
        max_block: Duration => producer.max_block
    }
}
