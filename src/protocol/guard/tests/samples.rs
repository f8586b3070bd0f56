//! Non-trivial responses for every covered API and version, built with `kafka-protocol`'s own
//! types and encoded by its encoder, so the guard is tested against what the decoder expects.
//!
//! Each builder sets a field only at the versions that carry it (the encoder rejects others),
//! fills nested arrays, and adds unknown tagged fields to every struct of a flexible version.
//! [`Variant::Nulls`] makes every field null that may be null at that version and drops the
//! optional tagged fields; [`Variant::Full`] sets everything.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

/// Which flavour of sample to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Variant {
    /// Every field set, nullable ones included, known tagged fields present.
    Full,
    /// Nullable fields null where the version allows it, known tagged fields absent.
    Nulls,
}

/// Every variant.
pub(super) const VARIANTS: [Variant; 2] = [Variant::Full, Variant::Nulls];

/// Applies `f` only when `cond` holds; keeps the builders one expression long.
trait When: Sized {
    fn when(self, cond: bool, f: impl FnOnce(Self) -> Self) -> Self {
        if cond { f(self) } else { self }
    }
}

impl<T> When for T {}

struct Ctx {
    v: i16,
    flexible: bool,
    nulls: bool,
}

impl Ctx {
    fn s(&self, text: &'static str) -> StrBytes {
        StrBytes::from_static_str(text)
    }

    fn topic(&self, name: &'static str) -> TopicName {
        TopicName(self.s(name))
    }

    /// `Some(text)`, or null in the null variant when `nullable` (at this version).
    fn opt(&self, nullable: bool, text: &'static str) -> Option<StrBytes> {
        if self.nulls && nullable {
            None
        } else {
            Some(self.s(text))
        }
    }

    /// Present in the full variant only.
    fn full(&self) -> bool {
        !self.nulls
    }

    /// Unknown tagged fields for a struct: two in flexible versions (one empty, one with a
    /// two-byte tag), none otherwise.
    fn tags(&self) -> BTreeMap<i32, Bytes> {
        if !self.flexible {
            return BTreeMap::new();
        }
        BTreeMap::from([
            (100, Bytes::from_static(b"\x01\x02\x03")),
            (7000, Bytes::new()),
        ])
    }

    fn bytes(&self, content: &'static [u8]) -> Bytes {
        Bytes::from_static(content)
    }
}

/// Encodes a sample of the `api` response at `version`.
pub(super) fn encode(api: ApiKey, version: i16, variant: Variant) -> Bytes {
    let c = Ctx {
        v: version,
        // Flexible versions have response header v1, except ApiVersions (always header v0).
        flexible: match api {
            ApiKey::ApiVersions => version >= 3,
            _ => api.response_header_version(version) >= 1,
        },
        nulls: variant == Variant::Nulls,
    };
    let mut buf = BytesMut::new();
    macro_rules! encode_with {
        ($($key:ident => $build:ident,)*) => {
            match api {
                $(ApiKey::$key => $build(&c).encode(&mut buf, version),)*
                other => panic!("no sample for {other:?}"),
            }
        };
    }
    encode_with! {
        Produce => produce,
        Fetch => fetch,
        ListOffsets => list_offsets,
        Metadata => metadata,
        OffsetCommit => offset_commit,
        OffsetFetch => offset_fetch,
        FindCoordinator => find_coordinator,
        JoinGroup => join_group,
        Heartbeat => heartbeat,
        LeaveGroup => leave_group,
        SyncGroup => sync_group,
        DescribeGroups => describe_groups,
        ListGroups => list_groups,
        ApiVersions => api_versions,
        CreateTopics => create_topics,
        DeleteTopics => delete_topics,
        DeleteRecords => delete_records,
        InitProducerId => init_producer_id,
        OffsetForLeaderEpoch => offset_for_leader_epoch,
        AddPartitionsToTxn => add_partitions_to_txn,
        AddOffsetsToTxn => add_offsets_to_txn,
        EndTxn => end_txn,
        TxnOffsetCommit => txn_offset_commit,
        DescribeConfigs => describe_configs,
        CreatePartitions => create_partitions,
    }
    .unwrap_or_else(|e| panic!("encoding the {api:?} v{version} sample: {e}"));
    buf.freeze()
}

/// Decodes `body` with `kafka-protocol` as the `api` response at `version`; on success returns
/// how many bytes were left over.
pub(super) fn decode(api: ApiKey, version: i16, mut body: Bytes) -> Result<usize, String> {
    macro_rules! decode_as {
        ($($key:ident => $ty:ty,)*) => {
            match api {
                $(ApiKey::$key => <$ty as Decodable>::decode(&mut body, version).map(drop),)*
                other => panic!("no decoder for {other:?}"),
            }
        };
    }
    decode_as! {
        Produce => ProduceResponse,
        Fetch => FetchResponse,
        ListOffsets => ListOffsetsResponse,
        Metadata => MetadataResponse,
        OffsetCommit => OffsetCommitResponse,
        OffsetFetch => OffsetFetchResponse,
        FindCoordinator => FindCoordinatorResponse,
        JoinGroup => JoinGroupResponse,
        Heartbeat => HeartbeatResponse,
        LeaveGroup => LeaveGroupResponse,
        SyncGroup => SyncGroupResponse,
        DescribeGroups => DescribeGroupsResponse,
        ListGroups => ListGroupsResponse,
        ApiVersions => ApiVersionsResponse,
        CreateTopics => CreateTopicsResponse,
        DeleteTopics => DeleteTopicsResponse,
        DeleteRecords => DeleteRecordsResponse,
        InitProducerId => InitProducerIdResponse,
        OffsetForLeaderEpoch => OffsetForLeaderEpochResponse,
        AddPartitionsToTxn => AddPartitionsToTxnResponse,
        AddOffsetsToTxn => AddOffsetsToTxnResponse,
        EndTxn => EndTxnResponse,
        TxnOffsetCommit => TxnOffsetCommitResponse,
        DescribeConfigs => DescribeConfigsResponse,
        CreatePartitions => CreatePartitionsResponse,
    }
    .map(|()| body.remaining())
    .map_err(|e| e.to_string())
}

fn produce(c: &Ctx) -> ProduceResponse {
    use produce_response::*;
    let v = c.v;
    let record_error = |index| {
        BatchIndexAndErrorMessage::default()
            .with_batch_index(index)
            .with_batch_index_error_message(c.opt(true, "invalid record"))
            .with_unknown_tagged_fields(c.tags())
    };
    let partition = |index| {
        PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(0)
            .with_base_offset(1_000)
            .with_log_append_time_ms(-1)
            .when(v >= 5, |p| p.with_log_start_offset(10))
            .when(v >= 8, |p| {
                p.with_record_errors(vec![record_error(0), record_error(3)])
                    .with_error_message(c.opt(true, "some records failed"))
            })
            .when(v >= 10 && c.full(), |p| {
                p.with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(2))
                        .with_leader_epoch(7)
                        .with_unknown_tagged_fields(c.tags()),
                )
            })
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = TopicProduceResponse::default()
        .when(v <= 12, |t| t.with_name(c.topic("orders")))
        .when(v >= 13, |t| t.with_topic_id(Uuid::from_u128(13)))
        .with_partition_responses(vec![partition(0), partition(1)])
        .with_unknown_tagged_fields(c.tags());
    let node = |id| {
        NodeEndpoint::default()
            .with_node_id(BrokerId(id))
            .with_host(c.s("broker.example"))
            .with_port(9092)
            .with_rack(c.opt(true, "rack-a"))
            .with_unknown_tagged_fields(c.tags())
    };
    ProduceResponse::default()
        .with_responses(vec![topic.clone(), topic])
        .with_throttle_time_ms(0)
        .when(v >= 10 && c.full(), |m| {
            m.with_node_endpoints(vec![node(1), node(2)])
        })
        .with_unknown_tagged_fields(c.tags())
}

fn fetch(c: &Ctx) -> FetchResponse {
    use fetch_response::*;
    let v = c.v;
    let aborted = AbortedTransaction::default()
        .with_producer_id(ProducerId(5))
        .with_first_offset(100)
        .with_unknown_tagged_fields(c.tags());
    let partition = |index| {
        PartitionData::default()
            .with_partition_index(index)
            .with_error_code(0)
            .with_high_watermark(1_000)
            .with_last_stable_offset(990)
            .when(v >= 5, |p| p.with_log_start_offset(0))
            .with_aborted_transactions(c.full().then(|| vec![aborted.clone(), aborted.clone()]))
            .when(v >= 11, |p| p.with_preferred_read_replica(BrokerId(2)))
            .with_records(c.full().then(|| c.bytes(b"not really a record batch")))
            .when(v >= 12 && c.full(), |p| {
                p.with_diverging_epoch(
                    EpochEndOffset::default()
                        .with_epoch(4)
                        .with_end_offset(500)
                        .with_unknown_tagged_fields(c.tags()),
                )
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(3))
                        .with_leader_epoch(9),
                )
                .with_snapshot_id(SnapshotId::default().with_end_offset(400).with_epoch(3))
            })
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = FetchableTopicResponse::default()
        .when(v <= 12, |t| t.with_topic(c.topic("orders")))
        .when(v >= 13, |t| t.with_topic_id(Uuid::from_u128(13)))
        .with_partitions(vec![partition(0), partition(1)])
        .with_unknown_tagged_fields(c.tags());
    let node = |id| {
        NodeEndpoint::default()
            .with_node_id(BrokerId(id))
            .with_host(c.s("broker.example"))
            .with_port(9092)
            .with_rack(c.opt(true, "rack-a"))
            .with_unknown_tagged_fields(c.tags())
    };
    FetchResponse::default()
        .with_throttle_time_ms(0)
        .when(v >= 7, |m| m.with_error_code(0).with_session_id(77))
        .with_responses(vec![topic.clone(), topic])
        .when(v >= 16 && c.full(), |m| {
            m.with_node_endpoints(vec![node(1), node(2)])
        })
        .with_unknown_tagged_fields(c.tags())
}

fn list_offsets(c: &Ctx) -> ListOffsetsResponse {
    use list_offsets_response::*;
    let v = c.v;
    let partition = |index| {
        ListOffsetsPartitionResponse::default()
            .with_partition_index(index)
            .with_error_code(0)
            .with_timestamp(-1)
            .with_offset(42)
            .when(v >= 4, |p| p.with_leader_epoch(3))
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = ListOffsetsTopicResponse::default()
        .with_name(c.topic("orders"))
        .with_partitions(vec![partition(0), partition(1)])
        .with_unknown_tagged_fields(c.tags());
    ListOffsetsResponse::default()
        .when(v >= 2, |m| m.with_throttle_time_ms(0))
        .with_topics(vec![topic.clone(), topic])
        .with_unknown_tagged_fields(c.tags())
}

fn metadata(c: &Ctx) -> MetadataResponse {
    use metadata_response::*;
    let v = c.v;
    let broker = |id| {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(c.s("broker.example"))
            .with_port(9092)
            .when(v >= 1, |b| b.with_rack(c.opt(true, "rack-a")))
            .with_unknown_tagged_fields(c.tags())
    };
    let partition = |index| {
        MetadataResponsePartition::default()
            .with_error_code(0)
            .with_partition_index(index)
            .with_leader_id(BrokerId(1))
            .when(v >= 7, |p| p.with_leader_epoch(3))
            .with_replica_nodes(vec![BrokerId(1), BrokerId(2), BrokerId(3)])
            .with_isr_nodes(vec![BrokerId(1), BrokerId(2)])
            .when(v >= 5, |p| p.with_offline_replicas(vec![BrokerId(3)]))
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = MetadataResponseTopic::default()
        .with_error_code(0)
        .with_name(c.opt(v >= 12, "orders").map(TopicName))
        .when(v >= 10, |t| t.with_topic_id(Uuid::from_u128(42)))
        .when(v >= 1, |t| t.with_is_internal(false))
        .with_partitions(vec![partition(0), partition(1)])
        .when(v >= 8, |t| t.with_topic_authorized_operations(0x0f))
        .with_unknown_tagged_fields(c.tags());
    MetadataResponse::default()
        .when(v >= 3, |m| m.with_throttle_time_ms(0))
        .with_brokers(vec![broker(1), broker(2)])
        .when(v >= 2, |m| m.with_cluster_id(c.opt(true, "cluster-id")))
        .when(v >= 1, |m| m.with_controller_id(BrokerId(1)))
        .with_topics(vec![topic.clone(), topic])
        .when((8..=10).contains(&v), |m| {
            m.with_cluster_authorized_operations(0x10)
        })
        .when(v >= 13, |m| m.with_error_code(0))
        .with_unknown_tagged_fields(c.tags())
}

fn offset_commit(c: &Ctx) -> OffsetCommitResponse {
    use offset_commit_response::*;
    let v = c.v;
    let partition = |index| {
        OffsetCommitResponsePartition::default()
            .with_partition_index(index)
            .with_error_code(0)
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = OffsetCommitResponseTopic::default()
        .when(v <= 9, |t| t.with_name(c.topic("orders")))
        .when(v >= 10, |t| t.with_topic_id(Uuid::from_u128(10)))
        .with_partitions(vec![partition(0), partition(1)])
        .with_unknown_tagged_fields(c.tags());
    OffsetCommitResponse::default()
        .when(v >= 3, |m| m.with_throttle_time_ms(0))
        .with_topics(vec![topic.clone(), topic])
        .with_unknown_tagged_fields(c.tags())
}

fn offset_fetch(c: &Ctx) -> OffsetFetchResponse {
    use offset_fetch_response::*;
    let v = c.v;
    let old_partition = |index| {
        OffsetFetchResponsePartition::default()
            .with_partition_index(index)
            .with_committed_offset(10)
            .when(v >= 5, |p| p.with_committed_leader_epoch(2))
            .with_metadata(c.opt(true, "meta"))
            .with_error_code(0)
            .with_unknown_tagged_fields(c.tags())
    };
    let old_topic = OffsetFetchResponseTopic::default()
        .with_name(c.topic("orders"))
        .with_partitions(vec![old_partition(0), old_partition(1)])
        .with_unknown_tagged_fields(c.tags());
    let partition = |index| {
        OffsetFetchResponsePartitions::default()
            .with_partition_index(index)
            .with_committed_offset(10)
            .with_committed_leader_epoch(2)
            .with_metadata(c.opt(true, "meta"))
            .with_error_code(0)
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = OffsetFetchResponseTopics::default()
        .when(v <= 9, |t| t.with_name(c.topic("orders")))
        .when(v >= 10, |t| t.with_topic_id(Uuid::from_u128(10)))
        .with_partitions(vec![partition(0), partition(1)])
        .with_unknown_tagged_fields(c.tags());
    let group = OffsetFetchResponseGroup::default()
        .with_group_id(GroupId(c.s("group-a")))
        .with_topics(vec![topic.clone(), topic])
        .with_error_code(0)
        .with_unknown_tagged_fields(c.tags());
    OffsetFetchResponse::default()
        .when(v >= 3, |m| m.with_throttle_time_ms(0))
        .when(v <= 7, |m| {
            m.with_topics(vec![old_topic.clone(), old_topic])
        })
        .when((2..=7).contains(&v), |m| m.with_error_code(0))
        .when(v >= 8, |m| m.with_groups(vec![group.clone(), group]))
        .with_unknown_tagged_fields(c.tags())
}

fn find_coordinator(c: &Ctx) -> FindCoordinatorResponse {
    use find_coordinator_response::*;
    let v = c.v;
    let coordinator = |key| {
        Coordinator::default()
            .with_key(c.s(key))
            .with_node_id(BrokerId(1))
            .with_host(c.s("broker.example"))
            .with_port(9092)
            .with_error_code(0)
            .with_error_message(c.opt(true, "none"))
            .with_unknown_tagged_fields(c.tags())
    };
    FindCoordinatorResponse::default()
        .when(v >= 1, |m| m.with_throttle_time_ms(0))
        .when(v <= 3, |m| {
            m.with_error_code(0)
                .with_node_id(BrokerId(1))
                .with_host(c.s("broker.example"))
                .with_port(9092)
        })
        .when((1..=3).contains(&v), |m| {
            m.with_error_message(c.opt(true, "none"))
        })
        .when(v >= 4, |m| {
            m.with_coordinators(vec![coordinator("group-a"), coordinator("txn-b")])
        })
        .with_unknown_tagged_fields(c.tags())
}

fn join_group(c: &Ctx) -> JoinGroupResponse {
    use join_group_response::*;
    let v = c.v;
    let member = |id| {
        JoinGroupResponseMember::default()
            .with_member_id(c.s(id))
            .when(v >= 5, |m| {
                m.with_group_instance_id(c.opt(true, "instance-1"))
            })
            .with_metadata(c.bytes(b"\x00\x01subscription"))
            .with_unknown_tagged_fields(c.tags())
    };
    JoinGroupResponse::default()
        .when(v >= 2, |m| m.with_throttle_time_ms(0))
        .with_error_code(0)
        .with_generation_id(3)
        .when(v >= 7, |m| m.with_protocol_type(c.opt(true, "consumer")))
        .with_protocol_name(c.opt(v >= 7, "range"))
        .with_leader(c.s("member-1"))
        .when(v >= 9, |m| m.with_skip_assignment(true))
        .with_member_id(c.s("member-1"))
        .with_members(vec![member("member-1"), member("member-2")])
        .with_unknown_tagged_fields(c.tags())
}

fn heartbeat(c: &Ctx) -> HeartbeatResponse {
    HeartbeatResponse::default()
        .when(c.v >= 1, |m| m.with_throttle_time_ms(0))
        .with_error_code(27)
        .with_unknown_tagged_fields(c.tags())
}

fn leave_group(c: &Ctx) -> LeaveGroupResponse {
    use leave_group_response::*;
    let v = c.v;
    let member = |id| {
        MemberResponse::default()
            .with_member_id(c.s(id))
            .with_group_instance_id(c.opt(true, "instance-1"))
            .with_error_code(0)
            .with_unknown_tagged_fields(c.tags())
    };
    LeaveGroupResponse::default()
        .when(v >= 1, |m| m.with_throttle_time_ms(0))
        .with_error_code(0)
        .when(v >= 3, |m| {
            m.with_members(vec![member("member-1"), member("member-2")])
        })
        .with_unknown_tagged_fields(c.tags())
}

fn sync_group(c: &Ctx) -> SyncGroupResponse {
    let v = c.v;
    SyncGroupResponse::default()
        .when(v >= 1, |m| m.with_throttle_time_ms(0))
        .with_error_code(0)
        .when(v >= 5, |m| {
            m.with_protocol_type(c.opt(true, "consumer"))
                .with_protocol_name(c.opt(true, "range"))
        })
        .with_assignment(c.bytes(b"\x00\x01assignment"))
        .with_unknown_tagged_fields(c.tags())
}

fn describe_groups(c: &Ctx) -> DescribeGroupsResponse {
    use describe_groups_response::*;
    let v = c.v;
    let member = |id| {
        DescribedGroupMember::default()
            .with_member_id(c.s(id))
            .when(v >= 4, |m| {
                m.with_group_instance_id(c.opt(true, "instance-1"))
            })
            .with_client_id(c.s("client"))
            .with_client_host(c.s("/10.0.0.1"))
            .with_member_metadata(c.bytes(b"metadata"))
            .with_member_assignment(c.bytes(b"assignment"))
            .with_unknown_tagged_fields(c.tags())
    };
    let group = DescribedGroup::default()
        .with_error_code(0)
        .when(v >= 6, |g| g.with_error_message(c.opt(true, "none")))
        .with_group_id(GroupId(c.s("group-a")))
        .with_group_state(c.s("Stable"))
        .with_protocol_type(c.s("consumer"))
        .with_protocol_data(c.s("range"))
        .with_members(vec![member("member-1"), member("member-2")])
        .when(v >= 3, |g| g.with_authorized_operations(0x10))
        .with_unknown_tagged_fields(c.tags());
    DescribeGroupsResponse::default()
        .when(v >= 1, |m| m.with_throttle_time_ms(0))
        .with_groups(vec![group.clone(), group])
        .with_unknown_tagged_fields(c.tags())
}

fn list_groups(c: &Ctx) -> ListGroupsResponse {
    use list_groups_response::*;
    let v = c.v;
    let group = |id| {
        ListedGroup::default()
            .with_group_id(GroupId(c.s(id)))
            .with_protocol_type(c.s("consumer"))
            .when(v >= 4, |g| g.with_group_state(c.s("Stable")))
            .when(v >= 5, |g| g.with_group_type(c.s("classic")))
            .with_unknown_tagged_fields(c.tags())
    };
    ListGroupsResponse::default()
        .when(v >= 1, |m| m.with_throttle_time_ms(0))
        .with_error_code(0)
        .with_groups(vec![group("group-a"), group("group-b")])
        .with_unknown_tagged_fields(c.tags())
}

fn api_versions(c: &Ctx) -> ApiVersionsResponse {
    use api_versions_response::*;
    let v = c.v;
    let key = |api_key| {
        ApiVersion::default()
            .with_api_key(api_key)
            .with_min_version(0)
            .with_max_version(9)
            .with_unknown_tagged_fields(c.tags())
    };
    ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(vec![key(0), key(1), key(18)])
        .when(v >= 1, |m| m.with_throttle_time_ms(0))
        .when(v >= 3 && c.full(), |m| {
            m.with_supported_features(vec![
                SupportedFeatureKey::default()
                    .with_name(c.s("metadata.version"))
                    .with_min_version(1)
                    .with_max_version(20)
                    .with_unknown_tagged_fields(c.tags()),
            ])
            .with_finalized_features_epoch(7)
            .with_finalized_features(vec![
                FinalizedFeatureKey::default()
                    .with_name(c.s("metadata.version"))
                    .with_max_version_level(20)
                    .with_min_version_level(20),
            ])
            .with_zk_migration_ready(true)
        })
        .with_unknown_tagged_fields(c.tags())
}

fn create_topics(c: &Ctx) -> CreateTopicsResponse {
    use create_topics_response::*;
    let v = c.v;
    let config = |name| {
        CreatableTopicConfigs::default()
            .with_name(c.s(name))
            .with_value(c.opt(true, "1"))
            .with_read_only(false)
            .with_config_source(1)
            .with_is_sensitive(false)
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = CreatableTopicResult::default()
        .with_name(c.topic("orders"))
        .when(v >= 7, |t| t.with_topic_id(Uuid::from_u128(7)))
        .with_error_code(0)
        .with_error_message(c.opt(true, "created"))
        .when(v >= 5, |t| {
            t.with_num_partitions(3)
                .with_replication_factor(2)
                .with_configs(
                    c.full()
                        .then(|| vec![config("cleanup.policy"), config("retention.ms")]),
                )
        })
        .when(v >= 5 && c.full(), |t| t.with_topic_config_error_code(29))
        .with_unknown_tagged_fields(c.tags());
    CreateTopicsResponse::default()
        .with_throttle_time_ms(0)
        .with_topics(vec![topic.clone(), topic])
        .with_unknown_tagged_fields(c.tags())
}

fn delete_topics(c: &Ctx) -> DeleteTopicsResponse {
    use delete_topics_response::*;
    let v = c.v;
    let result = DeletableTopicResult::default()
        .with_name(c.opt(v >= 6, "orders").map(TopicName))
        .when(v >= 6, |r| r.with_topic_id(Uuid::from_u128(6)))
        .with_error_code(0)
        .when(v >= 5, |r| r.with_error_message(c.opt(true, "deleted")))
        .with_unknown_tagged_fields(c.tags());
    DeleteTopicsResponse::default()
        .with_throttle_time_ms(0)
        .with_responses(vec![result.clone(), result])
        .with_unknown_tagged_fields(c.tags())
}

fn delete_records(c: &Ctx) -> DeleteRecordsResponse {
    use delete_records_response::*;
    let partition = |index| {
        DeleteRecordsPartitionResult::default()
            .with_partition_index(index)
            .with_low_watermark(5)
            .with_error_code(0)
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = DeleteRecordsTopicResult::default()
        .with_name(c.topic("orders"))
        .with_partitions(vec![partition(0), partition(1)])
        .with_unknown_tagged_fields(c.tags());
    DeleteRecordsResponse::default()
        .with_throttle_time_ms(0)
        .with_topics(vec![topic.clone(), topic])
        .with_unknown_tagged_fields(c.tags())
}

fn init_producer_id(c: &Ctx) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(0)
        .with_producer_id(ProducerId(1_000))
        .with_producer_epoch(2)
        .when(c.v >= 6, |m| {
            m.with_ongoing_txn_producer_id(ProducerId(999))
                .with_ongoing_txn_producer_epoch(1)
        })
        .with_unknown_tagged_fields(c.tags())
}

fn offset_for_leader_epoch(c: &Ctx) -> OffsetForLeaderEpochResponse {
    use offset_for_leader_epoch_response::*;
    let partition = |index| {
        EpochEndOffset::default()
            .with_error_code(0)
            .with_partition(index)
            .with_leader_epoch(5)
            .with_end_offset(100)
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = OffsetForLeaderTopicResult::default()
        .with_topic(c.topic("orders"))
        .with_partitions(vec![partition(0), partition(1)])
        .with_unknown_tagged_fields(c.tags());
    OffsetForLeaderEpochResponse::default()
        .with_throttle_time_ms(0)
        .with_topics(vec![topic.clone(), topic])
        .with_unknown_tagged_fields(c.tags())
}

fn add_partitions_to_txn(c: &Ctx) -> AddPartitionsToTxnResponse {
    use add_partitions_to_txn_response::*;
    let v = c.v;
    let partition = |index| {
        AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(index)
            .with_partition_error_code(0)
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = AddPartitionsToTxnTopicResult::default()
        .with_name(c.topic("orders"))
        .with_results_by_partition(vec![partition(0), partition(1)])
        .with_unknown_tagged_fields(c.tags());
    let result = AddPartitionsToTxnResult::default()
        .with_transactional_id(TransactionalId(c.s("txn-a")))
        .with_topic_results(vec![topic.clone(), topic.clone()])
        .with_unknown_tagged_fields(c.tags());
    AddPartitionsToTxnResponse::default()
        .with_throttle_time_ms(0)
        .when(v >= 4, |m| {
            m.with_error_code(0)
                .with_results_by_transaction(vec![result.clone(), result])
        })
        .when(v <= 3, |m| {
            m.with_results_by_topic_v3_and_below(vec![topic.clone(), topic])
        })
        .with_unknown_tagged_fields(c.tags())
}

fn add_offsets_to_txn(c: &Ctx) -> AddOffsetsToTxnResponse {
    AddOffsetsToTxnResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(0)
        .with_unknown_tagged_fields(c.tags())
}

fn end_txn(c: &Ctx) -> EndTxnResponse {
    EndTxnResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(0)
        .when(c.v >= 5, |m| {
            m.with_producer_id(ProducerId(1_000)).with_producer_epoch(3)
        })
        .with_unknown_tagged_fields(c.tags())
}

fn txn_offset_commit(c: &Ctx) -> TxnOffsetCommitResponse {
    use txn_offset_commit_response::*;
    let partition = |index| {
        TxnOffsetCommitResponsePartition::default()
            .with_partition_index(index)
            .with_error_code(0)
            .with_unknown_tagged_fields(c.tags())
    };
    let topic = TxnOffsetCommitResponseTopic::default()
        .with_name(c.topic("orders"))
        .with_partitions(vec![partition(0), partition(1)])
        .with_unknown_tagged_fields(c.tags());
    TxnOffsetCommitResponse::default()
        .with_throttle_time_ms(0)
        .with_topics(vec![topic.clone(), topic])
        .with_unknown_tagged_fields(c.tags())
}

fn describe_configs(c: &Ctx) -> DescribeConfigsResponse {
    use describe_configs_response::*;
    let v = c.v;
    let synonym = |name| {
        DescribeConfigsSynonym::default()
            .with_name(c.s(name))
            .with_value(c.opt(true, "delete"))
            .with_source(4)
            .with_unknown_tagged_fields(c.tags())
    };
    let config = |name| {
        DescribeConfigsResourceResult::default()
            .with_name(c.s(name))
            .with_value(c.opt(true, "delete"))
            .with_read_only(false)
            .with_config_source(5)
            .with_is_sensitive(false)
            .with_synonyms(vec![
                synonym("log.cleanup.policy"),
                synonym("cleanup.policy"),
            ])
            .when(v >= 3, |r| {
                r.with_config_type(2)
                    .with_documentation(c.opt(true, "what to do with old segments"))
            })
            .with_unknown_tagged_fields(c.tags())
    };
    let result = DescribeConfigsResult::default()
        .with_error_code(0)
        .with_error_message(c.opt(true, ""))
        .with_resource_type(2)
        .with_resource_name(c.s("orders"))
        .with_configs(vec![config("cleanup.policy"), config("retention.ms")])
        .with_unknown_tagged_fields(c.tags());
    DescribeConfigsResponse::default()
        .with_throttle_time_ms(0)
        .with_results(vec![result.clone(), result])
        .with_unknown_tagged_fields(c.tags())
}

fn create_partitions(c: &Ctx) -> CreatePartitionsResponse {
    use create_partitions_response::*;
    let result = |name| {
        CreatePartitionsTopicResult::default()
            .with_name(c.topic(name))
            .with_error_code(0)
            .with_error_message(c.opt(true, "none"))
            .with_unknown_tagged_fields(c.tags())
    };
    CreatePartitionsResponse::default()
        .with_throttle_time_ms(0)
        .with_results(vec![result("orders"), result("payments")])
        .with_unknown_tagged_fields(c.tags())
}
