//! Response schemas for the guard, one table per message.
//!
//! Written from Apache Kafka's message definitions
//! (`clients/src/main/resources/common/message/*Response.json`) and checked against the decoders
//! `kafka-protocol` 0.18 generates from them, which are what actually reads our bytes: version
//! ranges, field order, which fields are tagged, and which fields are `Option` there. Every struct
//! of a message is flexible from the message's first flexible version on.
//!
//! Field names are the `kafka-protocol` (snake case) names, so an error path such as
//! `topics.partitions.replica_nodes` can be looked up in its docs.

use kafka_protocol::messages::ApiKey;

/// An inclusive range of versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Versions {
    pub(super) min: i16,
    pub(super) max: i16,
}

impl Versions {
    /// Every version.
    pub(super) const ALL: Versions = Versions {
        min: 0,
        max: i16::MAX,
    };
    /// No version.
    pub(super) const NONE: Versions = Versions { min: 1, max: 0 };

    pub(super) const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// How a field is encoded. Non-flexible versions use the classic encodings (`i16` string length,
/// `i32` bytes length and array count); flexible versions use the compact ones (unsigned varint
/// holding length + 1, with 0 for null).
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// A scalar of this many bytes (`bool`, `int8` … `int64`, `uuid`).
    Fixed(usize),
    /// `string`: length-prefixed UTF-8.
    Str,
    /// `bytes` and `records`: length-prefixed bytes.
    Bytes,
    /// A struct inline, without a presence byte.
    Struct(&'static [Field]),
    /// An array whose elements are the given kind.
    Array(&'static Kind),
}

const BOOL: Kind = Kind::Fixed(1);
const I8: Kind = Kind::Fixed(1);
const I16: Kind = Kind::Fixed(2);
const I32: Kind = Kind::Fixed(4);
const I64: Kind = Kind::Fixed(8);
const UUID: Kind = Kind::Fixed(16);

/// One field of a struct.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    /// Versions in which the field is on the wire.
    pub(super) versions: Versions,
    /// Versions in which the field may be null (strings, bytes and arrays only).
    pub(super) nullable: Versions,
    /// Set for a tagged field: it lives in the struct's tagged-field section, not in line.
    pub(super) tag: Option<u32>,
}

/// A field present in every version, not nullable, not tagged.
const fn f(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        versions: Versions::ALL,
        nullable: Versions::NONE,
        tag: None,
    }
}

impl Field {
    /// Present from `min` on.
    const fn since(mut self, min: i16) -> Self {
        self.versions.min = min;
        self
    }

    /// Present up to and including `max`.
    const fn until(mut self, max: i16) -> Self {
        self.versions.max = max;
        self
    }

    /// Nullable in every version it is present in.
    const fn nullable(mut self) -> Self {
        self.nullable = Versions::ALL;
        self
    }

    /// Nullable from `min` on.
    const fn nullable_since(mut self, min: i16) -> Self {
        self.nullable = Versions { min, max: i16::MAX };
        self
    }

    /// A tagged field with this tag.
    const fn tag(mut self, tag: u32) -> Self {
        self.tag = Some(tag);
        self
    }
}

/// The schema of one response message.
#[derive(Debug)]
pub(super) struct Message {
    pub(super) api: ApiKey,
    /// Versions `kafka-protocol` can decode.
    pub(super) versions: Versions,
    /// First flexible version.
    pub(super) flexible_from: i16,
    /// Fields of the top-level struct.
    pub(super) fields: &'static [Field],
}

impl Message {
    pub(super) const fn is_flexible(&self, version: i16) -> bool {
        version >= self.flexible_from
    }
}

const fn msg(
    api: ApiKey,
    min: i16,
    max: i16,
    flexible_from: i16,
    fields: &'static [Field],
) -> Message {
    Message {
        api,
        versions: Versions { min, max },
        flexible_from,
        fields,
    }
}

/// The schema for `api`, if the guard covers it.
pub(super) fn lookup(api: ApiKey) -> Option<&'static Message> {
    MESSAGES.iter().find(|m| m.api == api)
}

use Kind::{Array, Bytes, Str, Struct};

/// Every covered response, in API key order: API, versions `kafka-protocol` decodes, first
/// flexible version, fields.
#[rustfmt::skip]
pub(super) static MESSAGES: &[Message] = &[
    msg(ApiKey::Produce, 3, 13, 9, PRODUCE),
    msg(ApiKey::Fetch, 4, 18, 12, FETCH),
    msg(ApiKey::ListOffsets, 1, 10, 6, LIST_OFFSETS),
    msg(ApiKey::Metadata, 0, 13, 9, METADATA),
    msg(ApiKey::OffsetCommit, 2, 10, 8, OFFSET_COMMIT),
    msg(ApiKey::OffsetFetch, 1, 10, 6, OFFSET_FETCH),
    msg(ApiKey::FindCoordinator, 0, 6, 3, FIND_COORDINATOR),
    msg(ApiKey::JoinGroup, 0, 9, 6, JOIN_GROUP),
    msg(ApiKey::Heartbeat, 0, 4, 4, HEARTBEAT),
    msg(ApiKey::LeaveGroup, 0, 5, 4, LEAVE_GROUP),
    msg(ApiKey::SyncGroup, 0, 5, 4, SYNC_GROUP),
    msg(ApiKey::DescribeGroups, 0, 6, 5, DESCRIBE_GROUPS),
    msg(ApiKey::ListGroups, 0, 5, 3, LIST_GROUPS),
    msg(ApiKey::ApiVersions, 0, 4, 3, API_VERSIONS),
    msg(ApiKey::CreateTopics, 2, 7, 5, CREATE_TOPICS),
    msg(ApiKey::DeleteTopics, 1, 6, 4, DELETE_TOPICS),
    msg(ApiKey::DeleteRecords, 0, 2, 2, DELETE_RECORDS),
    msg(ApiKey::InitProducerId, 0, 6, 2, INIT_PRODUCER_ID),
    msg(ApiKey::OffsetForLeaderEpoch, 2, 4, 4, OFFSET_FOR_LEADER_EPOCH),
    msg(ApiKey::AddPartitionsToTxn, 0, 5, 3, ADD_PARTITIONS_TO_TXN),
    msg(ApiKey::AddOffsetsToTxn, 0, 4, 3, ADD_OFFSETS_TO_TXN),
    msg(ApiKey::EndTxn, 0, 5, 3, END_TXN),
    msg(ApiKey::TxnOffsetCommit, 0, 5, 3, TXN_OFFSET_COMMIT),
    msg(ApiKey::DescribeConfigs, 1, 4, 4, DESCRIBE_CONFIGS),
    msg(ApiKey::CreatePartitions, 0, 3, 2, CREATE_PARTITIONS),
];

// ProduceResponse (key 0): v3-13, flexible 9+.
const PRODUCE: &[Field] = &[
    f("responses", Array(&Struct(PRODUCE_TOPIC))),
    f("throttle_time_ms", I32),
    f("node_endpoints", Array(&Struct(PRODUCE_NODE_ENDPOINT)))
        .since(10)
        .tag(0),
];
const PRODUCE_TOPIC: &[Field] = &[
    f("name", Str).until(12),
    f("topic_id", UUID).since(13),
    f("partition_responses", Array(&Struct(PRODUCE_PARTITION))),
];
const PRODUCE_PARTITION: &[Field] = &[
    f("index", I32),
    f("error_code", I16),
    f("base_offset", I64),
    f("log_append_time_ms", I64),
    f("log_start_offset", I64).since(5),
    f("record_errors", Array(&Struct(PRODUCE_BATCH_INDEX_ERROR))).since(8),
    f("error_message", Str).since(8).nullable(),
    f("current_leader", Struct(PRODUCE_LEADER_ID_AND_EPOCH))
        .since(10)
        .tag(0),
];
const PRODUCE_BATCH_INDEX_ERROR: &[Field] = &[
    f("batch_index", I32).since(8),
    f("batch_index_error_message", Str).since(8).nullable(),
];
const PRODUCE_LEADER_ID_AND_EPOCH: &[Field] = &[
    f("leader_id", I32).since(10),
    f("leader_epoch", I32).since(10),
];
const PRODUCE_NODE_ENDPOINT: &[Field] = &[
    f("node_id", I32).since(10),
    f("host", Str).since(10),
    f("port", I32).since(10),
    f("rack", Str).since(10).nullable(),
];

// FetchResponse (key 1): v4-18, flexible 12+.
const FETCH: &[Field] = &[
    f("throttle_time_ms", I32),
    f("error_code", I16).since(7),
    f("session_id", I32).since(7),
    f("responses", Array(&Struct(FETCH_TOPIC))),
    f("node_endpoints", Array(&Struct(FETCH_NODE_ENDPOINT)))
        .since(16)
        .tag(0),
];
const FETCH_TOPIC: &[Field] = &[
    f("topic", Str).until(12),
    f("topic_id", UUID).since(13),
    f("partitions", Array(&Struct(FETCH_PARTITION))),
];
const FETCH_PARTITION: &[Field] = &[
    f("partition_index", I32),
    f("error_code", I16),
    f("high_watermark", I64),
    f("last_stable_offset", I64),
    f("log_start_offset", I64).since(5),
    f(
        "aborted_transactions",
        Array(&Struct(FETCH_ABORTED_TRANSACTION)),
    )
    .nullable(),
    f("preferred_read_replica", I32).since(11),
    f("records", Bytes).nullable(),
    f("diverging_epoch", Struct(FETCH_EPOCH_END_OFFSET))
        .since(12)
        .tag(0),
    f("current_leader", Struct(FETCH_LEADER_ID_AND_EPOCH))
        .since(12)
        .tag(1),
    f("snapshot_id", Struct(FETCH_SNAPSHOT_ID)).since(12).tag(2),
];
const FETCH_ABORTED_TRANSACTION: &[Field] = &[f("producer_id", I64), f("first_offset", I64)];
const FETCH_EPOCH_END_OFFSET: &[Field] =
    &[f("epoch", I32).since(12), f("end_offset", I64).since(12)];
const FETCH_LEADER_ID_AND_EPOCH: &[Field] = &[
    f("leader_id", I32).since(12),
    f("leader_epoch", I32).since(12),
];
const FETCH_SNAPSHOT_ID: &[Field] = &[f("end_offset", I64), f("epoch", I32)];
const FETCH_NODE_ENDPOINT: &[Field] = &[
    f("node_id", I32).since(16),
    f("host", Str).since(16),
    f("port", I32).since(16),
    f("rack", Str).since(16).nullable(),
];

// ListOffsetsResponse (key 2): v1-10, flexible 6+.
const LIST_OFFSETS: &[Field] = &[
    f("throttle_time_ms", I32).since(2),
    f("topics", Array(&Struct(LIST_OFFSETS_TOPIC))),
];
const LIST_OFFSETS_TOPIC: &[Field] = &[
    f("name", Str),
    f("partitions", Array(&Struct(LIST_OFFSETS_PARTITION))),
];
const LIST_OFFSETS_PARTITION: &[Field] = &[
    f("partition_index", I32),
    f("error_code", I16),
    f("timestamp", I64),
    f("offset", I64),
    f("leader_epoch", I32).since(4),
];

// MetadataResponse (key 3): v0-13, flexible 9+.
const METADATA: &[Field] = &[
    f("throttle_time_ms", I32).since(3),
    f("brokers", Array(&Struct(METADATA_BROKER))),
    f("cluster_id", Str).since(2).nullable(),
    f("controller_id", I32).since(1),
    f("topics", Array(&Struct(METADATA_TOPIC))),
    f("cluster_authorized_operations", I32).since(8).until(10),
    f("error_code", I16).since(13),
];
const METADATA_BROKER: &[Field] = &[
    f("node_id", I32),
    f("host", Str),
    f("port", I32),
    f("rack", Str).since(1).nullable(),
];
const METADATA_TOPIC: &[Field] = &[
    f("error_code", I16),
    f("name", Str).nullable_since(12),
    f("topic_id", UUID).since(10),
    f("is_internal", BOOL).since(1),
    f("partitions", Array(&Struct(METADATA_PARTITION))),
    f("topic_authorized_operations", I32).since(8),
];
const METADATA_PARTITION: &[Field] = &[
    f("error_code", I16),
    f("partition_index", I32),
    f("leader_id", I32),
    f("leader_epoch", I32).since(7),
    f("replica_nodes", Array(&I32)),
    f("isr_nodes", Array(&I32)),
    f("offline_replicas", Array(&I32)).since(5),
];

// OffsetCommitResponse (key 8): v2-10, flexible 8+.
const OFFSET_COMMIT: &[Field] = &[
    f("throttle_time_ms", I32).since(3),
    f("topics", Array(&Struct(OFFSET_COMMIT_TOPIC))),
];
const OFFSET_COMMIT_TOPIC: &[Field] = &[
    f("name", Str).until(9),
    f("topic_id", UUID).since(10),
    f("partitions", Array(&Struct(OFFSET_COMMIT_PARTITION))),
];
const OFFSET_COMMIT_PARTITION: &[Field] = &[f("partition_index", I32), f("error_code", I16)];

// OffsetFetchResponse (key 9): v1-10, flexible 6+. Versions 8+ answer per group.
const OFFSET_FETCH: &[Field] = &[
    f("throttle_time_ms", I32).since(3),
    f("topics", Array(&Struct(OFFSET_FETCH_TOPIC))).until(7),
    f("error_code", I16).since(2).until(7),
    f("groups", Array(&Struct(OFFSET_FETCH_GROUP))).since(8),
];
const OFFSET_FETCH_TOPIC: &[Field] = &[
    f("name", Str).until(7),
    f("partitions", Array(&Struct(OFFSET_FETCH_PARTITION))).until(7),
];
const OFFSET_FETCH_PARTITION: &[Field] = &[
    f("partition_index", I32).until(7),
    f("committed_offset", I64).until(7),
    f("committed_leader_epoch", I32).since(5).until(7),
    f("metadata", Str).until(7).nullable(),
    f("error_code", I16).until(7),
];
const OFFSET_FETCH_GROUP: &[Field] = &[
    f("group_id", Str).since(8),
    f("topics", Array(&Struct(OFFSET_FETCH_GROUP_TOPIC))).since(8),
    f("error_code", I16).since(8),
];
const OFFSET_FETCH_GROUP_TOPIC: &[Field] = &[
    f("name", Str).since(8).until(9),
    f("topic_id", UUID).since(10),
    f("partitions", Array(&Struct(OFFSET_FETCH_GROUP_PARTITION))).since(8),
];
const OFFSET_FETCH_GROUP_PARTITION: &[Field] = &[
    f("partition_index", I32).since(8),
    f("committed_offset", I64).since(8),
    f("committed_leader_epoch", I32).since(8),
    f("metadata", Str).since(8).nullable(),
    f("error_code", I16).since(8),
];

// FindCoordinatorResponse (key 10): v0-6, flexible 3+. Versions 4+ answer per key.
const FIND_COORDINATOR: &[Field] = &[
    f("throttle_time_ms", I32).since(1),
    f("error_code", I16).until(3),
    f("error_message", Str).since(1).until(3).nullable(),
    f("node_id", I32).until(3),
    f("host", Str).until(3),
    f("port", I32).until(3),
    f("coordinators", Array(&Struct(FIND_COORDINATOR_COORDINATOR))).since(4),
];
const FIND_COORDINATOR_COORDINATOR: &[Field] = &[
    f("key", Str).since(4),
    f("node_id", I32).since(4),
    f("host", Str).since(4),
    f("port", I32).since(4),
    f("error_code", I16).since(4),
    f("error_message", Str).since(4).nullable(),
];

// JoinGroupResponse (key 11): v0-9, flexible 6+.
const JOIN_GROUP: &[Field] = &[
    f("throttle_time_ms", I32).since(2),
    f("error_code", I16),
    f("generation_id", I32),
    f("protocol_type", Str).since(7).nullable(),
    f("protocol_name", Str).nullable_since(7),
    f("leader", Str),
    f("skip_assignment", BOOL).since(9),
    f("member_id", Str),
    f("members", Array(&Struct(JOIN_GROUP_MEMBER))),
];
const JOIN_GROUP_MEMBER: &[Field] = &[
    f("member_id", Str),
    f("group_instance_id", Str).since(5).nullable(),
    f("metadata", Bytes),
];

// HeartbeatResponse (key 12): v0-4, flexible 4+.
const HEARTBEAT: &[Field] = &[f("throttle_time_ms", I32).since(1), f("error_code", I16)];

// LeaveGroupResponse (key 13): v0-5, flexible 4+.
const LEAVE_GROUP: &[Field] = &[
    f("throttle_time_ms", I32).since(1),
    f("error_code", I16),
    f("members", Array(&Struct(LEAVE_GROUP_MEMBER))).since(3),
];
const LEAVE_GROUP_MEMBER: &[Field] = &[
    f("member_id", Str).since(3),
    f("group_instance_id", Str).since(3).nullable(),
    f("error_code", I16).since(3),
];

// SyncGroupResponse (key 14): v0-5, flexible 4+.
const SYNC_GROUP: &[Field] = &[
    f("throttle_time_ms", I32).since(1),
    f("error_code", I16),
    f("protocol_type", Str).since(5).nullable(),
    f("protocol_name", Str).since(5).nullable(),
    f("assignment", Bytes),
];

// DescribeGroupsResponse (key 15): v0-6, flexible 5+.
const DESCRIBE_GROUPS: &[Field] = &[
    f("throttle_time_ms", I32).since(1),
    f("groups", Array(&Struct(DESCRIBE_GROUPS_GROUP))),
];
const DESCRIBE_GROUPS_GROUP: &[Field] = &[
    f("error_code", I16),
    f("error_message", Str).since(6).nullable(),
    f("group_id", Str),
    f("group_state", Str),
    f("protocol_type", Str),
    f("protocol_data", Str),
    f("members", Array(&Struct(DESCRIBE_GROUPS_MEMBER))),
    f("authorized_operations", I32).since(3),
];
const DESCRIBE_GROUPS_MEMBER: &[Field] = &[
    f("member_id", Str),
    f("group_instance_id", Str).since(4).nullable(),
    f("client_id", Str),
    f("client_host", Str),
    f("member_metadata", Bytes),
    f("member_assignment", Bytes),
];

// ListGroupsResponse (key 16): v0-5, flexible 3+.
const LIST_GROUPS: &[Field] = &[
    f("throttle_time_ms", I32).since(1),
    f("error_code", I16),
    f("groups", Array(&Struct(LIST_GROUPS_GROUP))),
];
const LIST_GROUPS_GROUP: &[Field] = &[
    f("group_id", Str),
    f("protocol_type", Str),
    f("group_state", Str).since(4),
    f("group_type", Str).since(5),
];

// ApiVersionsResponse (key 18): v0-4, flexible 3+. (Its response header is always v0, but the
// body follows the flexible rules from v3 on.)
const API_VERSIONS: &[Field] = &[
    f("error_code", I16),
    f("api_keys", Array(&Struct(API_VERSIONS_API_KEY))),
    f("throttle_time_ms", I32).since(1),
    f(
        "supported_features",
        Array(&Struct(API_VERSIONS_SUPPORTED_FEATURE)),
    )
    .since(3)
    .tag(0),
    f("finalized_features_epoch", I64).since(3).tag(1),
    f(
        "finalized_features",
        Array(&Struct(API_VERSIONS_FINALIZED_FEATURE)),
    )
    .since(3)
    .tag(2),
    f("zk_migration_ready", BOOL).since(3).tag(3),
];
const API_VERSIONS_API_KEY: &[Field] = &[
    f("api_key", I16),
    f("min_version", I16),
    f("max_version", I16),
];
const API_VERSIONS_SUPPORTED_FEATURE: &[Field] = &[
    f("name", Str).since(3),
    f("min_version", I16).since(3),
    f("max_version", I16).since(3),
];
const API_VERSIONS_FINALIZED_FEATURE: &[Field] = &[
    f("name", Str).since(3),
    f("max_version_level", I16).since(3),
    f("min_version_level", I16).since(3),
];

// CreateTopicsResponse (key 19): v2-7, flexible 5+.
const CREATE_TOPICS: &[Field] = &[
    f("throttle_time_ms", I32),
    f("topics", Array(&Struct(CREATE_TOPICS_TOPIC))),
];
const CREATE_TOPICS_TOPIC: &[Field] = &[
    f("name", Str),
    f("topic_id", UUID).since(7),
    f("error_code", I16),
    f("error_message", Str).nullable(),
    f("topic_config_error_code", I16).since(5).tag(0),
    f("num_partitions", I32).since(5),
    f("replication_factor", I16).since(5),
    f("configs", Array(&Struct(CREATE_TOPICS_CONFIG)))
        .since(5)
        .nullable(),
];
const CREATE_TOPICS_CONFIG: &[Field] = &[
    f("name", Str).since(5),
    f("value", Str).since(5).nullable(),
    f("read_only", BOOL).since(5),
    f("config_source", I8).since(5),
    f("is_sensitive", BOOL).since(5),
];

// DeleteTopicsResponse (key 20): v1-6, flexible 4+.
const DELETE_TOPICS: &[Field] = &[
    f("throttle_time_ms", I32),
    f("responses", Array(&Struct(DELETE_TOPICS_RESULT))),
];
const DELETE_TOPICS_RESULT: &[Field] = &[
    f("name", Str).nullable_since(6),
    f("topic_id", UUID).since(6),
    f("error_code", I16),
    f("error_message", Str).since(5).nullable(),
];

// DeleteRecordsResponse (key 21): v0-2, flexible 2+.
const DELETE_RECORDS: &[Field] = &[
    f("throttle_time_ms", I32),
    f("topics", Array(&Struct(DELETE_RECORDS_TOPIC))),
];
const DELETE_RECORDS_TOPIC: &[Field] = &[
    f("name", Str),
    f("partitions", Array(&Struct(DELETE_RECORDS_PARTITION))),
];
const DELETE_RECORDS_PARTITION: &[Field] = &[
    f("partition_index", I32),
    f("low_watermark", I64),
    f("error_code", I16),
];

// InitProducerIdResponse (key 22): v0-6, flexible 2+.
const INIT_PRODUCER_ID: &[Field] = &[
    f("throttle_time_ms", I32),
    f("error_code", I16),
    f("producer_id", I64),
    f("producer_epoch", I16),
    f("ongoing_txn_producer_id", I64).since(6),
    f("ongoing_txn_producer_epoch", I16).since(6),
];

// OffsetForLeaderEpochResponse (key 23): v2-4, flexible 4+.
const OFFSET_FOR_LEADER_EPOCH: &[Field] = &[
    f("throttle_time_ms", I32),
    f("topics", Array(&Struct(OFFSET_FOR_LEADER_EPOCH_TOPIC))),
];
const OFFSET_FOR_LEADER_EPOCH_TOPIC: &[Field] = &[
    f("topic", Str),
    f(
        "partitions",
        Array(&Struct(OFFSET_FOR_LEADER_EPOCH_PARTITION)),
    ),
];
const OFFSET_FOR_LEADER_EPOCH_PARTITION: &[Field] = &[
    f("error_code", I16),
    f("partition", I32),
    f("leader_epoch", I32),
    f("end_offset", I64),
];

// AddPartitionsToTxnResponse (key 24): v0-5, flexible 3+. Versions 4+ answer per transaction.
const ADD_PARTITIONS_TO_TXN: &[Field] = &[
    f("throttle_time_ms", I32),
    f("error_code", I16).since(4),
    f(
        "results_by_transaction",
        Array(&Struct(ADD_PARTITIONS_TO_TXN_RESULT)),
    )
    .since(4),
    f(
        "results_by_topic_v3_and_below",
        Array(&Struct(ADD_PARTITIONS_TO_TXN_TOPIC)),
    )
    .until(3),
];
const ADD_PARTITIONS_TO_TXN_RESULT: &[Field] = &[
    f("transactional_id", Str).since(4),
    f("topic_results", Array(&Struct(ADD_PARTITIONS_TO_TXN_TOPIC))).since(4),
];
const ADD_PARTITIONS_TO_TXN_TOPIC: &[Field] = &[
    f("name", Str),
    f(
        "results_by_partition",
        Array(&Struct(ADD_PARTITIONS_TO_TXN_PARTITION)),
    ),
];
const ADD_PARTITIONS_TO_TXN_PARTITION: &[Field] =
    &[f("partition_index", I32), f("partition_error_code", I16)];

// AddOffsetsToTxnResponse (key 25): v0-4, flexible 3+.
const ADD_OFFSETS_TO_TXN: &[Field] = &[f("throttle_time_ms", I32), f("error_code", I16)];

// EndTxnResponse (key 26): v0-5, flexible 3+.
const END_TXN: &[Field] = &[
    f("throttle_time_ms", I32),
    f("error_code", I16),
    f("producer_id", I64).since(5),
    f("producer_epoch", I16).since(5),
];

// TxnOffsetCommitResponse (key 28): v0-5, flexible 3+.
const TXN_OFFSET_COMMIT: &[Field] = &[
    f("throttle_time_ms", I32),
    f("topics", Array(&Struct(TXN_OFFSET_COMMIT_TOPIC))),
];
const TXN_OFFSET_COMMIT_TOPIC: &[Field] = &[
    f("name", Str),
    f("partitions", Array(&Struct(TXN_OFFSET_COMMIT_PARTITION))),
];
const TXN_OFFSET_COMMIT_PARTITION: &[Field] = &[f("partition_index", I32), f("error_code", I16)];

// DescribeConfigsResponse (key 32): v1-4, flexible 4+.
const DESCRIBE_CONFIGS: &[Field] = &[
    f("throttle_time_ms", I32),
    f("results", Array(&Struct(DESCRIBE_CONFIGS_RESULT))),
];
const DESCRIBE_CONFIGS_RESULT: &[Field] = &[
    f("error_code", I16),
    f("error_message", Str).nullable(),
    f("resource_type", I8),
    f("resource_name", Str),
    f("configs", Array(&Struct(DESCRIBE_CONFIGS_CONFIG))),
];
const DESCRIBE_CONFIGS_CONFIG: &[Field] = &[
    f("name", Str),
    f("value", Str).nullable(),
    f("read_only", BOOL),
    f("config_source", I8),
    f("is_sensitive", BOOL),
    f("synonyms", Array(&Struct(DESCRIBE_CONFIGS_SYNONYM))),
    f("config_type", I8).since(3),
    f("documentation", Str).since(3).nullable(),
];
const DESCRIBE_CONFIGS_SYNONYM: &[Field] =
    &[f("name", Str), f("value", Str).nullable(), f("source", I8)];

// CreatePartitionsResponse (key 37): v0-3, flexible 2+.
const CREATE_PARTITIONS: &[Field] = &[
    f("throttle_time_ms", I32),
    f("results", Array(&Struct(CREATE_PARTITIONS_RESULT))),
];
const CREATE_PARTITIONS_RESULT: &[Field] = &[
    f("name", Str),
    f("error_code", I16),
    f("error_message", Str).nullable(),
];
