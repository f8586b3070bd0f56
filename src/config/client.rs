//! The validated configuration and its getters.

use std::time::Duration;

use super::{
    Acks, AssignmentStrategy, AutoOffsetReset, BrokerAddress, ClientConfigBuilder, CompressionType,
    ConfigError, IsolationLevel,
};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const MIB: u32 = 1024 * 1024;

/// A complete, validated client configuration.
///
/// Built with [`ClientConfig::builder`], [`ClientConfig::new`] or [`ClientConfig::from_properties`];
/// each runs [`ClientConfig::validate`], so every `ClientConfig` a later layer sees is consistent.
/// Connection and cluster settings are here; group and consumer settings are in
/// [`consumer`](Self::consumer), producer settings in [`producer`](Self::producer). Defaults follow
/// the Java client 4.x; the setters of [`ClientConfigBuilder`] document each one with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub(super) bootstrap_servers: Vec<BrokerAddress>,
    pub(super) client_id: String,
    pub(super) request_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) reconnect_backoff: Duration,
    pub(super) reconnect_backoff_max: Duration,
    pub(super) retry_backoff: Duration,
    pub(super) retry_backoff_max: Duration,
    pub(super) retries: u32,
    pub(super) metadata_max_age: Duration,
    pub(super) max_in_flight: usize,
    pub(super) receive_message_max_bytes: usize,
    pub(super) socket_send_buffer_bytes: Option<usize>,
    pub(super) socket_receive_buffer_bytes: Option<usize>,
    pub(super) connections_max_idle: Option<Duration>,
    pub(super) consumer: ConsumerSettings,
    pub(super) producer: ProducerSettings,
}

/// Group membership and fetch settings, used by the consumer layer. Part of [`ClientConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSettings {
    pub(super) group_id: Option<String>,
    pub(super) group_instance_id: Option<String>,
    pub(super) session_timeout: Duration,
    pub(super) heartbeat_interval: Duration,
    pub(super) max_poll_interval: Duration,
    pub(super) auto_offset_reset: AutoOffsetReset,
    pub(super) enable_auto_commit: bool,
    pub(super) auto_commit_interval: Duration,
    pub(super) isolation_level: IsolationLevel,
    pub(super) fetch_min_bytes: u32,
    pub(super) fetch_max_bytes: u32,
    pub(super) fetch_max_wait: Duration,
    pub(super) max_partition_fetch_bytes: u32,
    pub(super) partition_assignment_strategy: Vec<AssignmentStrategy>,
    pub(super) max_poll_records: usize,
    pub(super) check_crcs: bool,
}

/// Batching, delivery and idempotence settings, used by the producer layer. Part of
/// [`ClientConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSettings {
    pub(super) acks: Acks,
    pub(super) enable_idempotence: bool,
    pub(super) linger: Duration,
    pub(super) batch_size: u32,
    pub(super) compression_type: CompressionType,
    pub(super) buffer_memory: u64,
    pub(super) delivery_timeout: Duration,
    pub(super) max_request_size: u32,
    pub(super) transactional_id: Option<String>,
    pub(super) partitioner_ignore_keys: bool,
    pub(super) max_block: Duration,
}

impl ClientConfig {
    /// Every default, with an empty bootstrap list (which `validate` rejects).
    pub(super) fn defaults() -> Self {
        Self {
            bootstrap_servers: Vec::new(),
            client_id: "kafka-once".to_owned(),
            request_timeout: 30 * SECOND,
            connect_timeout: 10 * SECOND,
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: SECOND,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: SECOND,
            retries: i32::MAX as u32,
            metadata_max_age: 5 * MINUTE,
            max_in_flight: 5,
            // 100 MiB of records plus librdkafka's 512 bytes of protocol overhead.
            receive_message_max_bytes: 100 * MIB as usize + 512,
            socket_send_buffer_bytes: None,
            socket_receive_buffer_bytes: None,
            connections_max_idle: Some(9 * MINUTE),
            consumer: ConsumerSettings {
                group_id: None,
                group_instance_id: None,
                session_timeout: 45 * SECOND,
                heartbeat_interval: 3 * SECOND,
                max_poll_interval: 5 * MINUTE,
                auto_offset_reset: AutoOffsetReset::Latest,
                enable_auto_commit: true,
                auto_commit_interval: 5 * SECOND,
                isolation_level: IsolationLevel::ReadUncommitted,
                fetch_min_bytes: 1,
                fetch_max_bytes: 50 * MIB,
                fetch_max_wait: Duration::from_millis(500),
                max_partition_fetch_bytes: MIB,
                partition_assignment_strategy: vec![
                    AssignmentStrategy::Range,
                    AssignmentStrategy::CooperativeSticky,
                ],
                max_poll_records: 500,
                check_crcs: true,
            },
            producer: ProducerSettings {
                acks: Acks::All,
                enable_idempotence: true,
                linger: Duration::from_millis(5),
                batch_size: 16_384,
                compression_type: CompressionType::None,
                buffer_memory: 32 * u64::from(MIB),
                delivery_timeout: 120 * SECOND,
                max_request_size: MIB,
                transactional_id: None,
                partitioner_ignore_keys: false,
                max_block: MINUTE,
            },
        }
    }

    /// A builder holding every default; set at least
    /// [`bootstrap_servers`](ClientConfigBuilder::bootstrap_servers).
    ///
    /// ```rust
    /// use std::time::Duration;
    /// use kafka_once::config::ClientConfig;
    ///
    /// let config = ClientConfig::builder()
    ///     .bootstrap_servers(["localhost:9092"])
    ///     .client_id("x")
    ///     .request_timeout(Duration::from_secs(30))
    ///     .build()?;
    /// assert_eq!(config.client_id(), "x");
    /// # Ok::<(), kafka_once::config::ConfigError>(())
    /// ```
    pub fn builder() -> ClientConfigBuilder {
        ClientConfigBuilder::from_config(Self::defaults())
    }

    /// Every default, with `bootstrap` as the comma-separated `bootstrap.servers` list.
    ///
    /// ```rust
    /// let config = kafka_once::config::ClientConfig::new("localhost:9092")?;
    /// assert_eq!(config.bootstrap_servers()[0].to_string(), "localhost:9092");
    /// # Ok::<(), kafka_once::config::ConfigError>(())
    /// ```
    pub fn new(bootstrap: impl AsRef<str>) -> Result<Self, ConfigError> {
        Self::builder().bootstrap_servers([bootstrap]).build()
    }

    /// A builder starting from this configuration, to change a few settings.
    pub fn to_builder(&self) -> ClientConfigBuilder {
        ClientConfigBuilder::from_config(self.clone())
    }

    /// Brokers to ask for cluster metadata first (`bootstrap.servers`); never empty.
    pub fn bootstrap_servers(&self) -> &[BrokerAddress] {
        &self.bootstrap_servers
    }

    /// The name sent in every request header (`client.id`).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How long to wait for a broker's response before failing the request
    /// (`request.timeout.ms`); never zero.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// How long a TCP connect may take (`socket.connection.setup.timeout.ms`).
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// First wait before reconnecting to a broker (`reconnect.backoff.ms`).
    pub fn reconnect_backoff(&self) -> Duration {
        self.reconnect_backoff
    }

    /// Cap of the exponential reconnect backoff (`reconnect.backoff.max.ms`).
    pub fn reconnect_backoff_max(&self) -> Duration {
        self.reconnect_backoff_max
    }

    /// First wait before retrying a failed request (`retry.backoff.ms`).
    pub fn retry_backoff(&self) -> Duration {
        self.retry_backoff
    }

    /// Cap of the exponential retry backoff (`retry.backoff.max.ms`).
    pub fn retry_backoff_max(&self) -> Duration {
        self.retry_backoff_max
    }

    /// How many times a retriable failure is retried (`retries`). The default, `i32::MAX`, means
    /// "until a deadline" such as `delivery.timeout.ms`.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Age after which cached metadata is refreshed even without errors (`metadata.max.age.ms`).
    pub fn metadata_max_age(&self) -> Duration {
        self.metadata_max_age
    }

    /// Requests the connection layer pipelines on one socket before waiting for responses
    /// (`max.in.flight.requests.per.connection`); at least 1.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Largest response frame accepted from a broker; a larger size prefix kills the connection
    /// before anything is allocated (`receive.message.max.bytes`). Between 1 KiB and `i32::MAX`.
    pub fn receive_message_max_bytes(&self) -> usize {
        self.receive_message_max_bytes
    }

    /// `SO_SNDBUF` for broker sockets; `None` leaves the OS default (`socket.send.buffer.bytes`).
    pub fn socket_send_buffer_bytes(&self) -> Option<usize> {
        self.socket_send_buffer_bytes
    }

    /// `SO_RCVBUF` for broker sockets; `None` leaves the OS default
    /// (`socket.receive.buffer.bytes`).
    pub fn socket_receive_buffer_bytes(&self) -> Option<usize> {
        self.socket_receive_buffer_bytes
    }

    /// Idle time after which a connection is closed; `None` keeps idle connections open
    /// (`connections.max.idle.ms`).
    pub fn connections_max_idle(&self) -> Option<Duration> {
        self.connections_max_idle
    }

    /// Group membership and fetch settings.
    pub fn consumer(&self) -> &ConsumerSettings {
        &self.consumer
    }

    /// Producer settings.
    pub fn producer(&self) -> &ProducerSettings {
        &self.producer
    }
}

impl ConsumerSettings {
    /// The consumer group (`group.id`); `None` for a client that joins no group.
    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    /// Static membership id (`group.instance.id`); `None` for dynamic membership.
    pub fn group_instance_id(&self) -> Option<&str> {
        self.group_instance_id.as_deref()
    }

    /// Time without heartbeats after which the coordinator evicts this member
    /// (`session.timeout.ms`).
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// Time between heartbeats (`heartbeat.interval.ms`); less than the session timeout.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// Longest gap between polls before the member leaves the group; also the rebalance timeout
    /// sent in JoinGroup (`max.poll.interval.ms`).
    pub fn max_poll_interval(&self) -> Duration {
        self.max_poll_interval
    }

    /// Where to start without a committed offset (`auto.offset.reset`).
    pub fn auto_offset_reset(&self) -> AutoOffsetReset {
        self.auto_offset_reset
    }

    /// Whether consumed offsets are committed periodically (`enable.auto.commit`). Has no effect
    /// without a `group.id`; the exactly-once runtime commits itself and ignores it.
    pub fn enable_auto_commit(&self) -> bool {
        self.enable_auto_commit
    }

    /// Period of automatic commits (`auto.commit.interval.ms`).
    pub fn auto_commit_interval(&self) -> Duration {
        self.auto_commit_interval
    }

    /// Which records a fetch may return (`isolation.level`).
    pub fn isolation_level(&self) -> IsolationLevel {
        self.isolation_level
    }

    /// Bytes the broker waits to accumulate before answering a fetch (`fetch.min.bytes`).
    pub fn fetch_min_bytes(&self) -> u32 {
        self.fetch_min_bytes
    }

    /// Soft cap on the bytes of one fetch response (`fetch.max.bytes`).
    pub fn fetch_max_bytes(&self) -> u32 {
        self.fetch_max_bytes
    }

    /// Longest time the broker holds a fetch waiting for `fetch.min.bytes` (`fetch.max.wait.ms`);
    /// less than the request timeout.
    pub fn fetch_max_wait(&self) -> Duration {
        self.fetch_max_wait
    }

    /// Soft cap on the bytes returned per partition in one fetch (`max.partition.fetch.bytes`).
    pub fn max_partition_fetch_bytes(&self) -> u32 {
        self.max_partition_fetch_bytes
    }

    /// Assignors offered to the group, preferred first (`partition.assignment.strategy`); never
    /// empty.
    pub fn partition_assignment_strategy(&self) -> &[AssignmentStrategy] {
        &self.partition_assignment_strategy
    }

    /// Most records handed out per poll (`max.poll.records`); at least 1.
    pub fn max_poll_records(&self) -> usize {
        self.max_poll_records
    }

    /// Whether fetched record batches have their CRC-32C checked (`check.crcs`).
    pub fn check_crcs(&self) -> bool {
        self.check_crcs
    }
}

impl ProducerSettings {
    /// Replicas that must have a record before it counts as written (`acks`).
    pub fn acks(&self) -> Acks {
        self.acks
    }

    /// Whether the producer uses a producer id and sequence numbers so retries never duplicate
    /// (`enable.idempotence`).
    pub fn enable_idempotence(&self) -> bool {
        self.enable_idempotence
    }

    /// How long a batch waits for more records before it is sent (`linger.ms`).
    pub fn linger(&self) -> Duration {
        self.linger
    }

    /// Target size of one partition's record batch in bytes (`batch.size`).
    pub fn batch_size(&self) -> u32 {
        self.batch_size
    }

    /// Codec for record batches (`compression.type`).
    pub fn compression_type(&self) -> CompressionType {
        self.compression_type
    }

    /// Bytes of records the producer buffers before `send` waits (`buffer.memory`).
    pub fn buffer_memory(&self) -> u64 {
        self.buffer_memory
    }

    /// Upper bound on the time from `send` to success or failure, retries included
    /// (`delivery.timeout.ms`).
    pub fn delivery_timeout(&self) -> Duration {
        self.delivery_timeout
    }

    /// Largest Produce request in bytes (`max.request.size`).
    pub fn max_request_size(&self) -> u32 {
        self.max_request_size
    }

    /// Id for transactions, stable across restarts (`transactional.id`); `None` for no
    /// transactions.
    pub fn transactional_id(&self) -> Option<&str> {
        self.transactional_id.as_deref()
    }

    /// Whether keyed records are spread like unkeyed ones instead of hashed to a partition
    /// (`partitioner.ignore.keys`).
    pub fn partitioner_ignore_keys(&self) -> bool {
        self.partitioner_ignore_keys
    }

    /// Longest time `send` may block waiting for metadata or buffer space (`max.block.ms`).
    pub fn max_block(&self) -> Duration {
        self.max_block
    }
}
