//! Broker error codes: the Kafka protocol's error table as a `Copy` enum.
//!
//! Every response carries `error_code: int16`, where `0` (`NONE`) is success. [`ErrorCode`] has one
//! variant per other code in the protocol guide's "Error Codes" table
//! (<https://kafka.apache.org/protocol#protocol_error_codes>), which is generated from the Java
//! client's `org.apache.kafka.common.protocol.Errors`: `-1` and then `1` up to `133`
//! (`SHARE_SESSION_LIMIT_REACHED`, Kafka 4.1). A code from a newer broker decodes as
//! [`ErrorCode::Unknown`] rather than failing.
//!
//! [`ErrorCode::is_retriable`] is the protocol's own flag. [`ErrorCode::action`] is this client's
//! decision of what to do next, kept in one exhaustive `match` so a new variant cannot be added
//! without deciding it.
//!
//! ```
//! use kafka_once::protocol::error_code::{ErrorAction, ErrorCode};
//!
//! assert_eq!(ErrorCode::from_i16(0), None);
//! let err = ErrorCode::from_i16(6).unwrap();
//! assert_eq!(err, ErrorCode::NotLeaderOrFollower);
//! assert!(err.is_retriable());
//! assert_eq!(err.action(), ErrorAction::RefreshMetadata);
//! ```

use std::fmt;

/// A non-zero error code from a Kafka broker.
///
/// Variants are the protocol's names in UpperCamelCase; [`ErrorCode::name`] gives the protocol
/// spelling. Build one from the wire with [`ErrorCode::from_i16`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `UNKNOWN_SERVER_ERROR` (-1).
    UnknownServerError,
    /// `OFFSET_OUT_OF_RANGE` (1).
    OffsetOutOfRange,
    /// `CORRUPT_MESSAGE` (2), retriable.
    CorruptMessage,
    /// `UNKNOWN_TOPIC_OR_PARTITION` (3), retriable.
    UnknownTopicOrPartition,
    /// `INVALID_FETCH_SIZE` (4).
    InvalidFetchSize,
    /// `LEADER_NOT_AVAILABLE` (5), retriable.
    LeaderNotAvailable,
    /// `NOT_LEADER_OR_FOLLOWER` (6), retriable.
    NotLeaderOrFollower,
    /// `REQUEST_TIMED_OUT` (7), retriable.
    RequestTimedOut,
    /// `BROKER_NOT_AVAILABLE` (8).
    BrokerNotAvailable,
    /// `REPLICA_NOT_AVAILABLE` (9), retriable.
    ReplicaNotAvailable,
    /// `MESSAGE_TOO_LARGE` (10).
    MessageTooLarge,
    /// `STALE_CONTROLLER_EPOCH` (11).
    StaleControllerEpoch,
    /// `OFFSET_METADATA_TOO_LARGE` (12).
    OffsetMetadataTooLarge,
    /// `NETWORK_EXCEPTION` (13), retriable.
    NetworkException,
    /// `COORDINATOR_LOAD_IN_PROGRESS` (14), retriable.
    CoordinatorLoadInProgress,
    /// `COORDINATOR_NOT_AVAILABLE` (15), retriable.
    CoordinatorNotAvailable,
    /// `NOT_COORDINATOR` (16), retriable.
    NotCoordinator,
    /// `INVALID_TOPIC_EXCEPTION` (17).
    InvalidTopicException,
    /// `RECORD_LIST_TOO_LARGE` (18).
    RecordListTooLarge,
    /// `NOT_ENOUGH_REPLICAS` (19), retriable.
    NotEnoughReplicas,
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND` (20), retriable.
    NotEnoughReplicasAfterAppend,
    /// `INVALID_REQUIRED_ACKS` (21).
    InvalidRequiredAcks,
    /// `ILLEGAL_GENERATION` (22).
    IllegalGeneration,
    /// `INCONSISTENT_GROUP_PROTOCOL` (23).
    InconsistentGroupProtocol,
    /// `INVALID_GROUP_ID` (24).
    InvalidGroupId,
    /// `UNKNOWN_MEMBER_ID` (25).
    UnknownMemberId,
    /// `INVALID_SESSION_TIMEOUT` (26).
    InvalidSessionTimeout,
    /// `REBALANCE_IN_PROGRESS` (27).
    RebalanceInProgress,
    /// `INVALID_COMMIT_OFFSET_SIZE` (28).
    InvalidCommitOffsetSize,
    /// `TOPIC_AUTHORIZATION_FAILED` (29).
    TopicAuthorizationFailed,
    /// `GROUP_AUTHORIZATION_FAILED` (30).
    GroupAuthorizationFailed,
    /// `CLUSTER_AUTHORIZATION_FAILED` (31).
    ClusterAuthorizationFailed,
    /// `INVALID_TIMESTAMP` (32).
    InvalidTimestamp,
    /// `UNSUPPORTED_SASL_MECHANISM` (33).
    UnsupportedSaslMechanism,
    /// `ILLEGAL_SASL_STATE` (34).
    IllegalSaslState,
    /// `UNSUPPORTED_VERSION` (35).
    UnsupportedVersion,
    /// `TOPIC_ALREADY_EXISTS` (36).
    TopicAlreadyExists,
    /// `INVALID_PARTITIONS` (37).
    InvalidPartitions,
    /// `INVALID_REPLICATION_FACTOR` (38).
    InvalidReplicationFactor,
    /// `INVALID_REPLICA_ASSIGNMENT` (39).
    InvalidReplicaAssignment,
    /// `INVALID_CONFIG` (40).
    InvalidConfig,
    /// `NOT_CONTROLLER` (41), retriable.
    NotController,
    /// `INVALID_REQUEST` (42).
    InvalidRequest,
    /// `UNSUPPORTED_FOR_MESSAGE_FORMAT` (43).
    UnsupportedForMessageFormat,
    /// `POLICY_VIOLATION` (44).
    PolicyViolation,
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` (45).
    OutOfOrderSequenceNumber,
    /// `DUPLICATE_SEQUENCE_NUMBER` (46).
    DuplicateSequenceNumber,
    /// `INVALID_PRODUCER_EPOCH` (47).
    InvalidProducerEpoch,
    /// `INVALID_TXN_STATE` (48).
    InvalidTxnState,
    /// `INVALID_PRODUCER_ID_MAPPING` (49).
    InvalidProducerIdMapping,
    /// `INVALID_TRANSACTION_TIMEOUT` (50).
    InvalidTransactionTimeout,
    /// `CONCURRENT_TRANSACTIONS` (51), retriable.
    ConcurrentTransactions,
    /// `TRANSACTION_COORDINATOR_FENCED` (52).
    TransactionCoordinatorFenced,
    /// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` (53).
    TransactionalIdAuthorizationFailed,
    /// `SECURITY_DISABLED` (54).
    SecurityDisabled,
    /// `OPERATION_NOT_ATTEMPTED` (55).
    OperationNotAttempted,
    /// `KAFKA_STORAGE_ERROR` (56), retriable.
    KafkaStorageError,
    /// `LOG_DIR_NOT_FOUND` (57).
    LogDirNotFound,
    /// `SASL_AUTHENTICATION_FAILED` (58).
    SaslAuthenticationFailed,
    /// `UNKNOWN_PRODUCER_ID` (59).
    UnknownProducerId,
    /// `REASSIGNMENT_IN_PROGRESS` (60).
    ReassignmentInProgress,
    /// `DELEGATION_TOKEN_AUTH_DISABLED` (61).
    DelegationTokenAuthDisabled,
    /// `DELEGATION_TOKEN_NOT_FOUND` (62).
    DelegationTokenNotFound,
    /// `DELEGATION_TOKEN_OWNER_MISMATCH` (63).
    DelegationTokenOwnerMismatch,
    /// `DELEGATION_TOKEN_REQUEST_NOT_ALLOWED` (64).
    DelegationTokenRequestNotAllowed,
    /// `DELEGATION_TOKEN_AUTHORIZATION_FAILED` (65).
    DelegationTokenAuthorizationFailed,
    /// `DELEGATION_TOKEN_EXPIRED` (66).
    DelegationTokenExpired,
    /// `INVALID_PRINCIPAL_TYPE` (67).
    InvalidPrincipalType,
    /// `NON_EMPTY_GROUP` (68).
    NonEmptyGroup,
    /// `GROUP_ID_NOT_FOUND` (69).
    GroupIdNotFound,
    /// `FETCH_SESSION_ID_NOT_FOUND` (70), retriable.
    FetchSessionIdNotFound,
    /// `INVALID_FETCH_SESSION_EPOCH` (71), retriable.
    InvalidFetchSessionEpoch,
    /// `LISTENER_NOT_FOUND` (72), retriable.
    ListenerNotFound,
    /// `TOPIC_DELETION_DISABLED` (73).
    TopicDeletionDisabled,
    /// `FENCED_LEADER_EPOCH` (74), retriable.
    FencedLeaderEpoch,
    /// `UNKNOWN_LEADER_EPOCH` (75), retriable.
    UnknownLeaderEpoch,
    /// `UNSUPPORTED_COMPRESSION_TYPE` (76).
    UnsupportedCompressionType,
    /// `STALE_BROKER_EPOCH` (77).
    StaleBrokerEpoch,
    /// `OFFSET_NOT_AVAILABLE` (78), retriable.
    OffsetNotAvailable,
    /// `MEMBER_ID_REQUIRED` (79).
    MemberIdRequired,
    /// `PREFERRED_LEADER_NOT_AVAILABLE` (80), retriable.
    PreferredLeaderNotAvailable,
    /// `GROUP_MAX_SIZE_REACHED` (81).
    GroupMaxSizeReached,
    /// `FENCED_INSTANCE_ID` (82).
    FencedInstanceId,
    /// `ELIGIBLE_LEADERS_NOT_AVAILABLE` (83), retriable.
    EligibleLeadersNotAvailable,
    /// `ELECTION_NOT_NEEDED` (84), retriable.
    ElectionNotNeeded,
    /// `NO_REASSIGNMENT_IN_PROGRESS` (85).
    NoReassignmentInProgress,
    /// `GROUP_SUBSCRIBED_TO_TOPIC` (86).
    GroupSubscribedToTopic,
    /// `INVALID_RECORD` (87).
    InvalidRecord,
    /// `UNSTABLE_OFFSET_COMMIT` (88), retriable.
    UnstableOffsetCommit,
    /// `THROTTLING_QUOTA_EXCEEDED` (89), retriable.
    ThrottlingQuotaExceeded,
    /// `PRODUCER_FENCED` (90).
    ProducerFenced,
    /// `RESOURCE_NOT_FOUND` (91).
    ResourceNotFound,
    /// `DUPLICATE_RESOURCE` (92).
    DuplicateResource,
    /// `UNACCEPTABLE_CREDENTIAL` (93).
    UnacceptableCredential,
    /// `INCONSISTENT_VOTER_SET` (94).
    InconsistentVoterSet,
    /// `INVALID_UPDATE_VERSION` (95).
    InvalidUpdateVersion,
    /// `FEATURE_UPDATE_FAILED` (96).
    FeatureUpdateFailed,
    /// `PRINCIPAL_DESERIALIZATION_FAILURE` (97).
    PrincipalDeserializationFailure,
    /// `SNAPSHOT_NOT_FOUND` (98).
    SnapshotNotFound,
    /// `POSITION_OUT_OF_RANGE` (99).
    PositionOutOfRange,
    /// `UNKNOWN_TOPIC_ID` (100), retriable.
    UnknownTopicId,
    /// `DUPLICATE_BROKER_REGISTRATION` (101).
    DuplicateBrokerRegistration,
    /// `BROKER_ID_NOT_REGISTERED` (102).
    BrokerIdNotRegistered,
    /// `INCONSISTENT_TOPIC_ID` (103), retriable.
    InconsistentTopicId,
    /// `INCONSISTENT_CLUSTER_ID` (104).
    InconsistentClusterId,
    /// `TRANSACTIONAL_ID_NOT_FOUND` (105).
    TransactionalIdNotFound,
    /// `FETCH_SESSION_TOPIC_ID_ERROR` (106), retriable.
    FetchSessionTopicIdError,
    /// `INELIGIBLE_REPLICA` (107).
    IneligibleReplica,
    /// `NEW_LEADER_ELECTED` (108).
    NewLeaderElected,
    /// `OFFSET_MOVED_TO_TIERED_STORAGE` (109).
    OffsetMovedToTieredStorage,
    /// `FENCED_MEMBER_EPOCH` (110).
    FencedMemberEpoch,
    /// `UNRELEASED_INSTANCE_ID` (111).
    UnreleasedInstanceId,
    /// `UNSUPPORTED_ASSIGNOR` (112).
    UnsupportedAssignor,
    /// `STALE_MEMBER_EPOCH` (113).
    StaleMemberEpoch,
    /// `MISMATCHED_ENDPOINT_TYPE` (114).
    MismatchedEndpointType,
    /// `UNSUPPORTED_ENDPOINT_TYPE` (115).
    UnsupportedEndpointType,
    /// `UNKNOWN_CONTROLLER_ID` (116).
    UnknownControllerId,
    /// `UNKNOWN_SUBSCRIPTION_ID` (117).
    UnknownSubscriptionId,
    /// `TELEMETRY_TOO_LARGE` (118).
    TelemetryTooLarge,
    /// `INVALID_REGISTRATION` (119).
    InvalidRegistration,
    /// `TRANSACTION_ABORTABLE` (120).
    TransactionAbortable,
    /// `INVALID_RECORD_STATE` (121).
    InvalidRecordState,
    /// `SHARE_SESSION_NOT_FOUND` (122), retriable.
    ShareSessionNotFound,
    /// `INVALID_SHARE_SESSION_EPOCH` (123), retriable.
    InvalidShareSessionEpoch,
    /// `FENCED_STATE_EPOCH` (124).
    FencedStateEpoch,
    /// `INVALID_VOTER_KEY` (125).
    InvalidVoterKey,
    /// `DUPLICATE_VOTER` (126).
    DuplicateVoter,
    /// `VOTER_NOT_FOUND` (127).
    VoterNotFound,
    /// `INVALID_REGULAR_EXPRESSION` (128).
    InvalidRegularExpression,
    /// `REBOOTSTRAP_REQUIRED` (129).
    RebootstrapRequired,
    /// `STREAMS_INVALID_TOPOLOGY` (130).
    StreamsInvalidTopology,
    /// `STREAMS_INVALID_TOPOLOGY_EPOCH` (131).
    StreamsInvalidTopologyEpoch,
    /// `STREAMS_TOPOLOGY_FENCED` (132).
    StreamsTopologyFenced,
    /// `SHARE_SESSION_LIMIT_REACHED` (133), retriable.
    ShareSessionLimitReached,
    /// A code missing from this client's table, most likely from a newer broker. Holds the raw
    /// code. [`ErrorCode::from_i16`] never builds it for `0` or for a code in the table.
    Unknown(i16),
}

/// One row of the protocol's error table.
struct Row {
    error: ErrorCode,
    code: i16,
    name: &'static str,
    retriable: bool,
    description: &'static str,
}

const fn row(
    error: ErrorCode,
    code: i16,
    name: &'static str,
    retriable: bool,
    description: &'static str,
) -> Row {
    Row {
        error,
        code,
        name,
        retriable,
        description,
    }
}

/// The protocol's error table, in code order: (variant, code, name, retriable, description).
///
/// The codes have no gaps (`-1`, then `1..=133`; `0` is `NONE`), so [`index`] maps a code to its row
/// without a search. The `const _` check below enforces both.
#[rustfmt::skip]
const TABLE: &[Row] = {
    use ErrorCode::*;
    &[
        row(UnknownServerError, -1, "UNKNOWN_SERVER_ERROR", false, "The server experienced an unexpected error when processing the request."),
        row(OffsetOutOfRange, 1, "OFFSET_OUT_OF_RANGE", false, "The requested offset is not within the range of offsets maintained by the server."),
        row(CorruptMessage, 2, "CORRUPT_MESSAGE", true, "This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt."),
        row(UnknownTopicOrPartition, 3, "UNKNOWN_TOPIC_OR_PARTITION", true, "This server does not host this topic-partition."),
        row(InvalidFetchSize, 4, "INVALID_FETCH_SIZE", false, "The requested fetch size is invalid."),
        row(LeaderNotAvailable, 5, "LEADER_NOT_AVAILABLE", true, "There is no leader for this topic-partition as we are in the middle of a leadership election."),
        row(NotLeaderOrFollower, 6, "NOT_LEADER_OR_FOLLOWER", true, "For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition."),
        row(RequestTimedOut, 7, "REQUEST_TIMED_OUT", true, "The request timed out."),
        row(BrokerNotAvailable, 8, "BROKER_NOT_AVAILABLE", false, "The broker is not available."),
        row(ReplicaNotAvailable, 9, "REPLICA_NOT_AVAILABLE", true, "The replica is not available for the requested topic-partition. Produce/Fetch requests and other requests intended only for the leader or follower return NOT_LEADER_OR_FOLLOWER if the broker is not a replica of the topic-partition."),
        row(MessageTooLarge, 10, "MESSAGE_TOO_LARGE", false, "The request included a message larger than the max message size the server will accept."),
        row(StaleControllerEpoch, 11, "STALE_CONTROLLER_EPOCH", false, "The controller moved to another broker."),
        row(OffsetMetadataTooLarge, 12, "OFFSET_METADATA_TOO_LARGE", false, "The metadata field of the offset request was too large."),
        row(NetworkException, 13, "NETWORK_EXCEPTION", true, "The server disconnected before a response was received."),
        row(CoordinatorLoadInProgress, 14, "COORDINATOR_LOAD_IN_PROGRESS", true, "The coordinator is loading and hence can't process requests."),
        row(CoordinatorNotAvailable, 15, "COORDINATOR_NOT_AVAILABLE", true, "The coordinator is not available."),
        row(NotCoordinator, 16, "NOT_COORDINATOR", true, "This is not the correct coordinator."),
        row(InvalidTopicException, 17, "INVALID_TOPIC_EXCEPTION", false, "The request attempted to perform an operation on an invalid topic."),
        row(RecordListTooLarge, 18, "RECORD_LIST_TOO_LARGE", false, "The request included message batch larger than the configured segment size on the server."),
        row(NotEnoughReplicas, 19, "NOT_ENOUGH_REPLICAS", true, "Messages are rejected since there are fewer in-sync replicas than required."),
        row(NotEnoughReplicasAfterAppend, 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true, "Messages are written to the log, but to fewer in-sync replicas than required."),
        row(InvalidRequiredAcks, 21, "INVALID_REQUIRED_ACKS", false, "Produce request specified an invalid value for required acks."),
        row(IllegalGeneration, 22, "ILLEGAL_GENERATION", false, "Specified group generation id is not valid."),
        row(InconsistentGroupProtocol, 23, "INCONSISTENT_GROUP_PROTOCOL", false, "The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list."),
        row(InvalidGroupId, 24, "INVALID_GROUP_ID", false, "The group id is invalid."),
        row(UnknownMemberId, 25, "UNKNOWN_MEMBER_ID", false, "The coordinator is not aware of this member."),
        row(InvalidSessionTimeout, 26, "INVALID_SESSION_TIMEOUT", false, "The session timeout is not within the range allowed by the broker (as configured by group.min.session.timeout.ms and group.max.session.timeout.ms)."),
        row(RebalanceInProgress, 27, "REBALANCE_IN_PROGRESS", false, "The group is rebalancing, so a rejoin is needed."),
        row(InvalidCommitOffsetSize, 28, "INVALID_COMMIT_OFFSET_SIZE", false, "The committing offset data size is not valid."),
        row(TopicAuthorizationFailed, 29, "TOPIC_AUTHORIZATION_FAILED", false, "Topic authorization failed."),
        row(GroupAuthorizationFailed, 30, "GROUP_AUTHORIZATION_FAILED", false, "Group authorization failed."),
        row(ClusterAuthorizationFailed, 31, "CLUSTER_AUTHORIZATION_FAILED", false, "Cluster authorization failed."),
        row(InvalidTimestamp, 32, "INVALID_TIMESTAMP", false, "The timestamp of the message is out of acceptable range."),
        row(UnsupportedSaslMechanism, 33, "UNSUPPORTED_SASL_MECHANISM", false, "The broker does not support the requested SASL mechanism."),
        row(IllegalSaslState, 34, "ILLEGAL_SASL_STATE", false, "Request is not valid given the current SASL state."),
        row(UnsupportedVersion, 35, "UNSUPPORTED_VERSION", false, "The version of API is not supported."),
        row(TopicAlreadyExists, 36, "TOPIC_ALREADY_EXISTS", false, "Topic with this name already exists."),
        row(InvalidPartitions, 37, "INVALID_PARTITIONS", false, "Number of partitions is below 1."),
        row(InvalidReplicationFactor, 38, "INVALID_REPLICATION_FACTOR", false, "Replication factor is below 1 or larger than the number of available brokers."),
        row(InvalidReplicaAssignment, 39, "INVALID_REPLICA_ASSIGNMENT", false, "Replica assignment is invalid."),
        row(InvalidConfig, 40, "INVALID_CONFIG", false, "Configuration is invalid."),
        row(NotController, 41, "NOT_CONTROLLER", true, "This is not the correct controller for this cluster."),
        row(InvalidRequest, 42, "INVALID_REQUEST", false, "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details."),
        row(UnsupportedForMessageFormat, 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false, "The message format version on the broker does not support the request."),
        row(PolicyViolation, 44, "POLICY_VIOLATION", false, "Request parameters do not satisfy the configured policy."),
        row(OutOfOrderSequenceNumber, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false, "The broker received an out of order sequence number."),
        row(DuplicateSequenceNumber, 46, "DUPLICATE_SEQUENCE_NUMBER", false, "The broker received a duplicate sequence number."),
        row(InvalidProducerEpoch, 47, "INVALID_PRODUCER_EPOCH", false, "Producer attempted to produce with an old epoch."),
        row(InvalidTxnState, 48, "INVALID_TXN_STATE", false, "The producer attempted a transactional operation in an invalid state."),
        row(InvalidProducerIdMapping, 49, "INVALID_PRODUCER_ID_MAPPING", false, "The producer attempted to use a producer id which is not currently assigned to its transactional id."),
        row(InvalidTransactionTimeout, 50, "INVALID_TRANSACTION_TIMEOUT", false, "The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms)."),
        row(ConcurrentTransactions, 51, "CONCURRENT_TRANSACTIONS", true, "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing."),
        row(TransactionCoordinatorFenced, 52, "TRANSACTION_COORDINATOR_FENCED", false, "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer."),
        row(TransactionalIdAuthorizationFailed, 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false, "Transactional Id authorization failed."),
        row(SecurityDisabled, 54, "SECURITY_DISABLED", false, "Security features are disabled."),
        row(OperationNotAttempted, 55, "OPERATION_NOT_ATTEMPTED", false, "The broker did not attempt to execute this operation. This may happen for batched RPCs where some operations in the batch failed, causing the broker to respond without trying the rest."),
        row(KafkaStorageError, 56, "KAFKA_STORAGE_ERROR", true, "Disk error when trying to access log file on the disk."),
        row(LogDirNotFound, 57, "LOG_DIR_NOT_FOUND", false, "The user-specified log directory is not found in the broker config."),
        row(SaslAuthenticationFailed, 58, "SASL_AUTHENTICATION_FAILED", false, "SASL Authentication failed."),
        row(UnknownProducerId, 59, "UNKNOWN_PRODUCER_ID", false, "This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question. This could happen if, for instance, the producer's records were deleted because their retention time had elapsed. Once the last records of the producerId are removed, the producer's metadata is removed from the broker, and future appends by the producer will return this exception."),
        row(ReassignmentInProgress, 60, "REASSIGNMENT_IN_PROGRESS", false, "A partition reassignment is in progress."),
        row(DelegationTokenAuthDisabled, 61, "DELEGATION_TOKEN_AUTH_DISABLED", false, "Delegation Token feature is not enabled."),
        row(DelegationTokenNotFound, 62, "DELEGATION_TOKEN_NOT_FOUND", false, "Delegation Token is not found on server."),
        row(DelegationTokenOwnerMismatch, 63, "DELEGATION_TOKEN_OWNER_MISMATCH", false, "Specified Principal is not valid Owner/Renewer."),
        row(DelegationTokenRequestNotAllowed, 64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false, "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels."),
        row(DelegationTokenAuthorizationFailed, 65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false, "Delegation Token authorization failed."),
        row(DelegationTokenExpired, 66, "DELEGATION_TOKEN_EXPIRED", false, "Delegation Token is expired."),
        row(InvalidPrincipalType, 67, "INVALID_PRINCIPAL_TYPE", false, "Supplied principalType is not supported."),
        row(NonEmptyGroup, 68, "NON_EMPTY_GROUP", false, "The group is not empty."),
        row(GroupIdNotFound, 69, "GROUP_ID_NOT_FOUND", false, "The group id does not exist."),
        row(FetchSessionIdNotFound, 70, "FETCH_SESSION_ID_NOT_FOUND", true, "The fetch session ID was not found."),
        row(InvalidFetchSessionEpoch, 71, "INVALID_FETCH_SESSION_EPOCH", true, "The fetch session epoch is invalid."),
        row(ListenerNotFound, 72, "LISTENER_NOT_FOUND", true, "There is no listener on the leader broker that matches the listener on which metadata request was processed."),
        row(TopicDeletionDisabled, 73, "TOPIC_DELETION_DISABLED", false, "Topic deletion is disabled."),
        row(FencedLeaderEpoch, 74, "FENCED_LEADER_EPOCH", true, "The leader epoch in the request is older than the epoch on the broker."),
        row(UnknownLeaderEpoch, 75, "UNKNOWN_LEADER_EPOCH", true, "The leader epoch in the request is newer than the epoch on the broker."),
        row(UnsupportedCompressionType, 76, "UNSUPPORTED_COMPRESSION_TYPE", false, "The requesting client does not support the compression type of given partition."),
        row(StaleBrokerEpoch, 77, "STALE_BROKER_EPOCH", false, "Broker epoch has changed."),
        row(OffsetNotAvailable, 78, "OFFSET_NOT_AVAILABLE", true, "The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing."),
        row(MemberIdRequired, 79, "MEMBER_ID_REQUIRED", false, "The group member needs to have a valid member id before actually entering a consumer group."),
        row(PreferredLeaderNotAvailable, 80, "PREFERRED_LEADER_NOT_AVAILABLE", true, "The preferred leader was not available."),
        row(GroupMaxSizeReached, 81, "GROUP_MAX_SIZE_REACHED", false, "The group has reached its maximum size."),
        row(FencedInstanceId, 82, "FENCED_INSTANCE_ID", false, "The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id."),
        row(EligibleLeadersNotAvailable, 83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true, "Eligible topic partition leaders are not available."),
        row(ElectionNotNeeded, 84, "ELECTION_NOT_NEEDED", true, "Leader election not needed for topic partition."),
        row(NoReassignmentInProgress, 85, "NO_REASSIGNMENT_IN_PROGRESS", false, "No partition reassignment is in progress."),
        row(GroupSubscribedToTopic, 86, "GROUP_SUBSCRIBED_TO_TOPIC", false, "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it."),
        row(InvalidRecord, 87, "INVALID_RECORD", false, "This record has failed the validation on broker and hence will be rejected."),
        row(UnstableOffsetCommit, 88, "UNSTABLE_OFFSET_COMMIT", true, "There are unstable offsets that need to be cleared."),
        row(ThrottlingQuotaExceeded, 89, "THROTTLING_QUOTA_EXCEEDED", true, "The throttling quota has been exceeded."),
        row(ProducerFenced, 90, "PRODUCER_FENCED", false, "There is a newer producer with the same transactionalId which fences the current one."),
        row(ResourceNotFound, 91, "RESOURCE_NOT_FOUND", false, "A request illegally referred to a resource that does not exist."),
        row(DuplicateResource, 92, "DUPLICATE_RESOURCE", false, "A request illegally referred to the same resource twice."),
        row(UnacceptableCredential, 93, "UNACCEPTABLE_CREDENTIAL", false, "Requested credential would not meet criteria for acceptability."),
        row(InconsistentVoterSet, 94, "INCONSISTENT_VOTER_SET", false, "Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters."),
        row(InvalidUpdateVersion, 95, "INVALID_UPDATE_VERSION", false, "The given update version was invalid."),
        row(FeatureUpdateFailed, 96, "FEATURE_UPDATE_FAILED", false, "Unable to update finalized features due to an unexpected server error."),
        row(PrincipalDeserializationFailure, 97, "PRINCIPAL_DESERIALIZATION_FAILURE", false, "Request principal deserialization failed during forwarding. This indicates an internal error on the broker cluster security setup."),
        row(SnapshotNotFound, 98, "SNAPSHOT_NOT_FOUND", false, "Requested snapshot was not found."),
        row(PositionOutOfRange, 99, "POSITION_OUT_OF_RANGE", false, "Requested position is not greater than or equal to zero, and less than the size of the snapshot."),
        row(UnknownTopicId, 100, "UNKNOWN_TOPIC_ID", true, "This server does not host this topic ID."),
        row(DuplicateBrokerRegistration, 101, "DUPLICATE_BROKER_REGISTRATION", false, "This broker ID is already in use."),
        row(BrokerIdNotRegistered, 102, "BROKER_ID_NOT_REGISTERED", false, "The given broker ID was not registered."),
        row(InconsistentTopicId, 103, "INCONSISTENT_TOPIC_ID", true, "The log's topic ID did not match the topic ID in the request."),
        row(InconsistentClusterId, 104, "INCONSISTENT_CLUSTER_ID", false, "The clusterId in the request does not match that found on the server."),
        row(TransactionalIdNotFound, 105, "TRANSACTIONAL_ID_NOT_FOUND", false, "The transactionalId could not be found."),
        row(FetchSessionTopicIdError, 106, "FETCH_SESSION_TOPIC_ID_ERROR", true, "The fetch session encountered inconsistent topic ID usage."),
        row(IneligibleReplica, 107, "INELIGIBLE_REPLICA", false, "The new ISR contains at least one ineligible replica."),
        row(NewLeaderElected, 108, "NEW_LEADER_ELECTED", false, "The AlterPartition request successfully updated the partition state but the leader has changed."),
        row(OffsetMovedToTieredStorage, 109, "OFFSET_MOVED_TO_TIERED_STORAGE", false, "The requested offset is moved to tiered storage."),
        row(FencedMemberEpoch, 110, "FENCED_MEMBER_EPOCH", false, "The member epoch is fenced by the group coordinator. The member must abandon all its partitions and rejoin."),
        row(UnreleasedInstanceId, 111, "UNRELEASED_INSTANCE_ID", false, "The instance ID is still used by another member in the consumer group. That member must leave first."),
        row(UnsupportedAssignor, 112, "UNSUPPORTED_ASSIGNOR", false, "The assignor or its version range is not supported by the consumer group."),
        row(StaleMemberEpoch, 113, "STALE_MEMBER_EPOCH", false, "The member epoch is stale. The member must retry after receiving its updated member epoch via the ConsumerGroupHeartbeat API."),
        row(MismatchedEndpointType, 114, "MISMATCHED_ENDPOINT_TYPE", false, "The request was sent to an endpoint of the wrong type."),
        row(UnsupportedEndpointType, 115, "UNSUPPORTED_ENDPOINT_TYPE", false, "This endpoint type is not supported yet."),
        row(UnknownControllerId, 116, "UNKNOWN_CONTROLLER_ID", false, "This controller ID is not known."),
        row(UnknownSubscriptionId, 117, "UNKNOWN_SUBSCRIPTION_ID", false, "Client sent a push telemetry request with an invalid or outdated subscription ID."),
        row(TelemetryTooLarge, 118, "TELEMETRY_TOO_LARGE", false, "Client sent a push telemetry request larger than the maximum size the broker will accept."),
        row(InvalidRegistration, 119, "INVALID_REGISTRATION", false, "The controller has considered the broker registration to be invalid."),
        row(TransactionAbortable, 120, "TRANSACTION_ABORTABLE", false, "The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID."),
        row(InvalidRecordState, 121, "INVALID_RECORD_STATE", false, "The record state is invalid. The acknowledgement of delivery could not be completed."),
        row(ShareSessionNotFound, 122, "SHARE_SESSION_NOT_FOUND", true, "The share session was not found."),
        row(InvalidShareSessionEpoch, 123, "INVALID_SHARE_SESSION_EPOCH", true, "The share session epoch is invalid."),
        row(FencedStateEpoch, 124, "FENCED_STATE_EPOCH", false, "The share coordinator rejected the request because the share-group state epoch did not match."),
        row(InvalidVoterKey, 125, "INVALID_VOTER_KEY", false, "The voter key doesn't match the receiving replica's key."),
        row(DuplicateVoter, 126, "DUPLICATE_VOTER", false, "The voter is already part of the set of voters."),
        row(VoterNotFound, 127, "VOTER_NOT_FOUND", false, "The voter is not part of the set of voters."),
        row(InvalidRegularExpression, 128, "INVALID_REGULAR_EXPRESSION", false, "The regular expression is not valid."),
        row(RebootstrapRequired, 129, "REBOOTSTRAP_REQUIRED", false, "Client metadata is stale. The client should rebootstrap to obtain new metadata."),
        row(StreamsInvalidTopology, 130, "STREAMS_INVALID_TOPOLOGY", false, "The supplied topology is invalid."),
        row(StreamsInvalidTopologyEpoch, 131, "STREAMS_INVALID_TOPOLOGY_EPOCH", false, "The supplied topology epoch is invalid."),
        row(StreamsTopologyFenced, 132, "STREAMS_TOPOLOGY_FENCED", false, "The supplied topology epoch is outdated."),
        row(ShareSessionLimitReached, 133, "SHARE_SESSION_LIMIT_REACHED", true, "The limit of share sessions has been reached."),
    ]
};

// Checked at compile time: each row's code matches its variant's `code()` and sits where `index`
// looks for it, so a misplaced or mistyped row fails the build.
const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        let row = &TABLE[i];
        assert!(
            row.error.code() == row.code,
            "row code differs from ErrorCode::code"
        );
        match index(row.code) {
            Some(at) if at == i => {}
            _ => panic!("TABLE is not dense and in code order"),
        }
        i += 1;
    }
};

/// The row of `code` in [`TABLE`], if the table has one.
const fn index(code: i16) -> Option<usize> {
    match code {
        -1 => Some(0),
        // The row of a positive code sits at index `code`: row 0 holds -1 and code 0 has no row.
        1.. if (code as usize) < TABLE.len() => Some(code as usize),
        _ => None,
    }
}

impl ErrorCode {
    /// Every known error code (all variants but [`ErrorCode::Unknown`]), in code order.
    pub const ALL: &[ErrorCode] = &{
        let mut all = [ErrorCode::UnknownServerError; TABLE.len()];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].error;
            i += 1;
        }
        all
    };

    /// Decodes a response's `error_code` field.
    ///
    /// Returns `None` for `0` (`NONE`, success), the known variant for a code in the table, and
    /// [`ErrorCode::Unknown`] for any other code.
    pub const fn from_i16(code: i16) -> Option<ErrorCode> {
        if code == 0 {
            return None;
        }
        match index(code) {
            Some(i) => Some(TABLE[i].error),
            None => Some(ErrorCode::Unknown(code)),
        }
    }

    /// The wire value of this error code.
    pub const fn code(self) -> i16 {
        match self {
            Self::UnknownServerError => -1,
            Self::OffsetOutOfRange => 1,
            Self::CorruptMessage => 2,
            Self::UnknownTopicOrPartition => 3,
            Self::InvalidFetchSize => 4,
            Self::LeaderNotAvailable => 5,
            Self::NotLeaderOrFollower => 6,
            Self::RequestTimedOut => 7,
            Self::BrokerNotAvailable => 8,
            Self::ReplicaNotAvailable => 9,
            Self::MessageTooLarge => 10,
            Self::StaleControllerEpoch => 11,
            Self::OffsetMetadataTooLarge => 12,
            Self::NetworkException => 13,
            Self::CoordinatorLoadInProgress => 14,
            Self::CoordinatorNotAvailable => 15,
            Self::NotCoordinator => 16,
            Self::InvalidTopicException => 17,
            Self::RecordListTooLarge => 18,
            Self::NotEnoughReplicas => 19,
            Self::NotEnoughReplicasAfterAppend => 20,
            Self::InvalidRequiredAcks => 21,
            Self::IllegalGeneration => 22,
            Self::InconsistentGroupProtocol => 23,
            Self::InvalidGroupId => 24,
            Self::UnknownMemberId => 25,
            Self::InvalidSessionTimeout => 26,
            Self::RebalanceInProgress => 27,
            Self::InvalidCommitOffsetSize => 28,
            Self::TopicAuthorizationFailed => 29,
            Self::GroupAuthorizationFailed => 30,
            Self::ClusterAuthorizationFailed => 31,
            Self::InvalidTimestamp => 32,
            Self::UnsupportedSaslMechanism => 33,
            Self::IllegalSaslState => 34,
            Self::UnsupportedVersion => 35,
            Self::TopicAlreadyExists => 36,
            Self::InvalidPartitions => 37,
            Self::InvalidReplicationFactor => 38,
            Self::InvalidReplicaAssignment => 39,
            Self::InvalidConfig => 40,
            Self::NotController => 41,
            Self::InvalidRequest => 42,
            Self::UnsupportedForMessageFormat => 43,
            Self::PolicyViolation => 44,
            Self::OutOfOrderSequenceNumber => 45,
            Self::DuplicateSequenceNumber => 46,
            Self::InvalidProducerEpoch => 47,
            Self::InvalidTxnState => 48,
            Self::InvalidProducerIdMapping => 49,
            Self::InvalidTransactionTimeout => 50,
            Self::ConcurrentTransactions => 51,
            Self::TransactionCoordinatorFenced => 52,
            Self::TransactionalIdAuthorizationFailed => 53,
            Self::SecurityDisabled => 54,
            Self::OperationNotAttempted => 55,
            Self::KafkaStorageError => 56,
            Self::LogDirNotFound => 57,
            Self::SaslAuthenticationFailed => 58,
            Self::UnknownProducerId => 59,
            Self::ReassignmentInProgress => 60,
            Self::DelegationTokenAuthDisabled => 61,
            Self::DelegationTokenNotFound => 62,
            Self::DelegationTokenOwnerMismatch => 63,
            Self::DelegationTokenRequestNotAllowed => 64,
            Self::DelegationTokenAuthorizationFailed => 65,
            Self::DelegationTokenExpired => 66,
            Self::InvalidPrincipalType => 67,
            Self::NonEmptyGroup => 68,
            Self::GroupIdNotFound => 69,
            Self::FetchSessionIdNotFound => 70,
            Self::InvalidFetchSessionEpoch => 71,
            Self::ListenerNotFound => 72,
            Self::TopicDeletionDisabled => 73,
            Self::FencedLeaderEpoch => 74,
            Self::UnknownLeaderEpoch => 75,
            Self::UnsupportedCompressionType => 76,
            Self::StaleBrokerEpoch => 77,
            Self::OffsetNotAvailable => 78,
            Self::MemberIdRequired => 79,
            Self::PreferredLeaderNotAvailable => 80,
            Self::GroupMaxSizeReached => 81,
            Self::FencedInstanceId => 82,
            Self::EligibleLeadersNotAvailable => 83,
            Self::ElectionNotNeeded => 84,
            Self::NoReassignmentInProgress => 85,
            Self::GroupSubscribedToTopic => 86,
            Self::InvalidRecord => 87,
            Self::UnstableOffsetCommit => 88,
            Self::ThrottlingQuotaExceeded => 89,
            Self::ProducerFenced => 90,
            Self::ResourceNotFound => 91,
            Self::DuplicateResource => 92,
            Self::UnacceptableCredential => 93,
            Self::InconsistentVoterSet => 94,
            Self::InvalidUpdateVersion => 95,
            Self::FeatureUpdateFailed => 96,
            Self::PrincipalDeserializationFailure => 97,
            Self::SnapshotNotFound => 98,
            Self::PositionOutOfRange => 99,
            Self::UnknownTopicId => 100,
            Self::DuplicateBrokerRegistration => 101,
            Self::BrokerIdNotRegistered => 102,
            Self::InconsistentTopicId => 103,
            Self::InconsistentClusterId => 104,
            Self::TransactionalIdNotFound => 105,
            Self::FetchSessionTopicIdError => 106,
            Self::IneligibleReplica => 107,
            Self::NewLeaderElected => 108,
            Self::OffsetMovedToTieredStorage => 109,
            Self::FencedMemberEpoch => 110,
            Self::UnreleasedInstanceId => 111,
            Self::UnsupportedAssignor => 112,
            Self::StaleMemberEpoch => 113,
            Self::MismatchedEndpointType => 114,
            Self::UnsupportedEndpointType => 115,
            Self::UnknownControllerId => 116,
            Self::UnknownSubscriptionId => 117,
            Self::TelemetryTooLarge => 118,
            Self::InvalidRegistration => 119,
            Self::TransactionAbortable => 120,
            Self::InvalidRecordState => 121,
            Self::ShareSessionNotFound => 122,
            Self::InvalidShareSessionEpoch => 123,
            Self::FencedStateEpoch => 124,
            Self::InvalidVoterKey => 125,
            Self::DuplicateVoter => 126,
            Self::VoterNotFound => 127,
            Self::InvalidRegularExpression => 128,
            Self::RebootstrapRequired => 129,
            Self::StreamsInvalidTopology => 130,
            Self::StreamsInvalidTopologyEpoch => 131,
            Self::StreamsTopologyFenced => 132,
            Self::ShareSessionLimitReached => 133,
            Self::Unknown(code) => code,
        }
    }

    const fn row(self) -> Option<&'static Row> {
        if let Self::Unknown(_) = self {
            return None;
        }
        match index(self.code()) {
            Some(i) => Some(&TABLE[i]),
            None => None,
        }
    }

    /// The protocol's name for this error, e.g. `"NOT_LEADER_OR_FOLLOWER"`.
    ///
    /// [`ErrorCode::Unknown`] is `"UNKNOWN_ERROR_CODE"`, which is not a protocol name.
    pub const fn name(self) -> &'static str {
        match self.row() {
            Some(row) => row.name,
            None => "UNKNOWN_ERROR_CODE",
        }
    }

    /// Whether the protocol's error table marks this error retriable (in the Java client, whether
    /// its exception is a `RetriableException`). [`ErrorCode::Unknown`] is not retriable.
    ///
    /// This is the protocol's flag, not this client's decision; see [`ErrorCode::action`].
    pub const fn is_retriable(self) -> bool {
        match self.row() {
            Some(row) => row.retriable,
            None => false,
        }
    }

    /// The protocol's description of this error.
    pub fn description(self) -> &'static str {
        match self.row() {
            Some(row) => row.description,
            None => "The broker returned an error code that this client does not know.",
        }
    }

    /// What this client does on receiving this error.
    ///
    /// Mostly follows [`ErrorCode::is_retriable`], but names what must happen before a retry
    /// (metadata refresh, coordinator lookup, group rejoin). A few errors the protocol marks
    /// non-retriable still have a recovery path here (group membership, `REBOOTSTRAP_REQUIRED`),
    /// and `ELECTION_NOT_NEEDED`, marked retriable, is not retried.
    pub const fn action(self) -> ErrorAction {
        use ErrorAction::{Fail, RediscoverCoordinator, RefreshMetadata, Rejoin, Retry};
        match self {
            // Our view of leadership or topics is stale (the Java client's
            // `InvalidMetadataException` family).
            Self::UnknownTopicOrPartition
            | Self::LeaderNotAvailable
            | Self::NotLeaderOrFollower
            | Self::ReplicaNotAvailable
            | Self::KafkaStorageError
            | Self::ListenerNotFound
            | Self::FencedLeaderEpoch
            | Self::PreferredLeaderNotAvailable
            | Self::EligibleLeadersNotAvailable
            | Self::UnknownTopicId
            | Self::InconsistentTopicId => RefreshMetadata,
            // The broker lost a connection on our behalf; like the Java client, treat the leader as
            // suspect rather than retrying blindly.
            Self::NetworkException => RefreshMetadata,
            // Admin request sent to a broker that is no longer the controller: look it up again in
            // metadata (Java admin and franz-go forget the controller id).
            Self::NotController => RefreshMetadata,
            // The topic was recreated or its id is new to the session; the Java fetcher refreshes
            // metadata, and the fetch session restarts with a full fetch.
            Self::FetchSessionTopicIdError => RefreshMetadata,
            // KIP-1102: metadata is stale beyond repair from the known brokers; the refresh must start
            // again from the bootstrap servers. Marked non-retriable because the same request to the
            // same broker will not succeed.
            Self::RebootstrapRequired => RefreshMetadata,

            Self::CoordinatorNotAvailable | Self::NotCoordinator => RediscoverCoordinator,

            // Classic group protocol: our generation or member id is stale.
            Self::IllegalGeneration
            | Self::UnknownMemberId
            | Self::RebalanceInProgress
            | Self::MemberIdRequired => Rejoin,
            // KIP-848: "The member must abandon all its partitions and rejoin."
            Self::FencedMemberEpoch => Rejoin,
            // KIP-848 analogue of ILLEGAL_GENERATION on OffsetCommit: the group moved on. A commit may
            // only be retried once the heartbeat has brought the new epoch and the partitions are
            // still ours, so it goes through the membership path, never a blind retry.
            Self::StaleMemberEpoch => Rejoin,

            // Transient on the broker's side; the same request can succeed later.
            Self::CoordinatorLoadInProgress
            | Self::NotEnoughReplicas
            | Self::ConcurrentTransactions
            | Self::UnstableOffsetCommit
            | Self::ThrottlingQuotaExceeded
            | Self::ShareSessionLimitReached => Retry,
            // The outcome is unknown (REQUEST_TIMED_OUT) or the records were written without enough
            // replicas (NOT_ENOUGH_REPLICAS_AFTER_APPEND): a produce retry is duplicate-free only
            // with the idempotent producer, as in the Java client and franz-go.
            Self::RequestTimedOut | Self::NotEnoughReplicasAfterAppend => Retry,
            // Produce bytes damaged in transit: resend them.
            Self::CorruptMessage => Retry,
            // The session layer starts a new session with a full request; no metadata is stale.
            Self::FetchSessionIdNotFound
            | Self::InvalidFetchSessionEpoch
            | Self::ShareSessionNotFound
            | Self::InvalidShareSessionEpoch => Retry,
            // Our leader epoch is newer than the broker's: the broker has not caught up yet, so
            // fresh metadata would tell us nothing new. Back off and retry (Java fetcher, franz-go).
            Self::UnknownLeaderEpoch => Retry,
            // A new leader's high watermark has not caught up yet; retry after a backoff.
            Self::OffsetNotAvailable => Retry,

            // Retriable in the protocol table, but it reports that the preferred leader already
            // leads: asking again gives the same answer, so the caller sees it as an outcome.
            Self::ElectionNotNeeded => Fail,
            // The static member was replaced by another instance with the same group.instance.id;
            // rejoining would fence that one in turn.
            Self::FencedInstanceId | Self::UnreleasedInstanceId => Fail,
            // Idempotent producer sequence errors: the producer layer decides (epoch bump, or
            // DUPLICATE_SEQUENCE_NUMBER meaning the batch is already written); never a plain retry.
            Self::OutOfOrderSequenceNumber
            | Self::DuplicateSequenceNumber
            | Self::UnknownProducerId => Fail,
            // The protocol marks it non-retriable; the Java client does too.
            Self::BrokerNotAvailable => Fail,
            Self::UnknownServerError
            | Self::OffsetOutOfRange
            | Self::InvalidFetchSize
            | Self::MessageTooLarge
            | Self::StaleControllerEpoch
            | Self::OffsetMetadataTooLarge
            | Self::InvalidTopicException
            | Self::RecordListTooLarge
            | Self::InvalidRequiredAcks
            | Self::InconsistentGroupProtocol
            | Self::InvalidGroupId
            | Self::InvalidSessionTimeout
            | Self::InvalidCommitOffsetSize
            | Self::TopicAuthorizationFailed
            | Self::GroupAuthorizationFailed
            | Self::ClusterAuthorizationFailed
            | Self::InvalidTimestamp
            | Self::UnsupportedSaslMechanism
            | Self::IllegalSaslState
            | Self::UnsupportedVersion
            | Self::TopicAlreadyExists
            | Self::InvalidPartitions
            | Self::InvalidReplicationFactor
            | Self::InvalidReplicaAssignment
            | Self::InvalidConfig
            | Self::InvalidRequest
            | Self::UnsupportedForMessageFormat
            | Self::PolicyViolation
            | Self::InvalidProducerEpoch
            | Self::InvalidTxnState
            | Self::InvalidProducerIdMapping
            | Self::InvalidTransactionTimeout
            | Self::TransactionCoordinatorFenced
            | Self::TransactionalIdAuthorizationFailed
            | Self::SecurityDisabled
            | Self::OperationNotAttempted
            | Self::LogDirNotFound
            | Self::SaslAuthenticationFailed
            | Self::ReassignmentInProgress
            | Self::DelegationTokenAuthDisabled
            | Self::DelegationTokenNotFound
            | Self::DelegationTokenOwnerMismatch
            | Self::DelegationTokenRequestNotAllowed
            | Self::DelegationTokenAuthorizationFailed
            | Self::DelegationTokenExpired
            | Self::InvalidPrincipalType
            | Self::NonEmptyGroup
            | Self::GroupIdNotFound
            | Self::TopicDeletionDisabled
            | Self::UnsupportedCompressionType
            | Self::StaleBrokerEpoch
            | Self::GroupMaxSizeReached
            | Self::NoReassignmentInProgress
            | Self::GroupSubscribedToTopic
            | Self::InvalidRecord
            | Self::ProducerFenced
            | Self::ResourceNotFound
            | Self::DuplicateResource
            | Self::UnacceptableCredential
            | Self::InconsistentVoterSet
            | Self::InvalidUpdateVersion
            | Self::FeatureUpdateFailed
            | Self::PrincipalDeserializationFailure
            | Self::SnapshotNotFound
            | Self::PositionOutOfRange
            | Self::DuplicateBrokerRegistration
            | Self::BrokerIdNotRegistered
            | Self::InconsistentClusterId
            | Self::TransactionalIdNotFound
            | Self::IneligibleReplica
            | Self::NewLeaderElected
            | Self::OffsetMovedToTieredStorage
            | Self::UnsupportedAssignor
            | Self::MismatchedEndpointType
            | Self::UnsupportedEndpointType
            | Self::UnknownControllerId
            | Self::UnknownSubscriptionId
            | Self::TelemetryTooLarge
            | Self::InvalidRegistration
            | Self::TransactionAbortable
            | Self::InvalidRecordState
            | Self::FencedStateEpoch
            | Self::InvalidVoterKey
            | Self::DuplicateVoter
            | Self::VoterNotFound
            | Self::InvalidRegularExpression
            | Self::StreamsInvalidTopology
            | Self::StreamsInvalidTopologyEpoch
            | Self::StreamsTopologyFenced => Fail,
            Self::Unknown(_) => Fail,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.name(),
            self.code(),
            self.description()
        )
    }
}

impl std::error::Error for ErrorCode {}

/// What to do after a broker returns an [`ErrorCode`]; see [`ErrorCode::action`].
///
/// Every action but [`ErrorAction::Fail`] ends in retrying the request, within the caller's retry
/// budget and after a backoff.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorAction {
    /// Transient on the broker's side: retry the same request after a backoff.
    Retry,
    /// Our view of the cluster (partition leaders, topic ids, the controller) is stale: refresh
    /// metadata, then retry against the broker it names.
    RefreshMetadata,
    /// The group or transaction coordinator moved or is not ready: look it up again with
    /// `FindCoordinator`, then retry.
    RediscoverCoordinator,
    /// This member's place in the consumer group is stale: rejoin the group (for KIP-848 groups,
    /// take the new member epoch from the heartbeat) before retrying. Work done under the old
    /// generation must not be committed as is.
    Rejoin,
    /// Not recoverable by retrying: return the error to the caller.
    Fail,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_known_code_round_trips() {
        for &error in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_i16(error.code()), Some(error), "{error:?}");
            assert!(!matches!(error, ErrorCode::Unknown(_)));
        }
    }

    #[test]
    fn table_is_dense_and_in_code_order() {
        assert_eq!(ErrorCode::ALL.len(), TABLE.len());
        assert_eq!(TABLE.len(), 134);
        let codes: Vec<i16> = ErrorCode::ALL.iter().map(|e| e.code()).collect();
        let expected: Vec<i16> = std::iter::once(-1).chain(1..=133).collect();
        assert_eq!(codes, expected);
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.error.code(), row.code, "{}", row.name);
            assert_eq!(index(row.code), Some(i), "{}", row.name);
        }
    }

    #[test]
    fn names_are_unique_and_match_variants() {
        let names: HashSet<&str> = ErrorCode::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for &error in ErrorCode::ALL {
            // The variant is the protocol name in UpperCamelCase.
            let camel: String = error
                .name()
                .split('_')
                .map(|word| word[..1].to_owned() + &word[1..].to_ascii_lowercase())
                .collect();
            assert_eq!(format!("{error:?}"), camel);
            assert!(!error.description().is_empty(), "{error:?}");
        }
    }

    #[test]
    fn zero_is_success() {
        assert_eq!(ErrorCode::from_i16(0), None);
    }

    #[test]
    fn spot_checks_against_the_protocol_table() {
        let check = |code: i16, error: ErrorCode, name: &str, retriable: bool| {
            assert_eq!(ErrorCode::from_i16(code), Some(error));
            assert_eq!(error.name(), name);
            assert_eq!(error.is_retriable(), retriable, "{name}");
        };
        check(
            -1,
            ErrorCode::UnknownServerError,
            "UNKNOWN_SERVER_ERROR",
            false,
        );
        check(1, ErrorCode::OffsetOutOfRange, "OFFSET_OUT_OF_RANGE", false);
        check(
            3,
            ErrorCode::UnknownTopicOrPartition,
            "UNKNOWN_TOPIC_OR_PARTITION",
            true,
        );
        check(
            6,
            ErrorCode::NotLeaderOrFollower,
            "NOT_LEADER_OR_FOLLOWER",
            true,
        );
        check(
            8,
            ErrorCode::BrokerNotAvailable,
            "BROKER_NOT_AVAILABLE",
            false,
        );
        check(
            15,
            ErrorCode::CoordinatorNotAvailable,
            "COORDINATOR_NOT_AVAILABLE",
            true,
        );
        check(25, ErrorCode::UnknownMemberId, "UNKNOWN_MEMBER_ID", false);
        check(
            45,
            ErrorCode::OutOfOrderSequenceNumber,
            "OUT_OF_ORDER_SEQUENCE_NUMBER",
            false,
        );
        check(
            51,
            ErrorCode::ConcurrentTransactions,
            "CONCURRENT_TRANSACTIONS",
            true,
        );
        check(
            59,
            ErrorCode::UnknownProducerId,
            "UNKNOWN_PRODUCER_ID",
            false,
        );
        check(90, ErrorCode::ProducerFenced, "PRODUCER_FENCED", false);
        check(100, ErrorCode::UnknownTopicId, "UNKNOWN_TOPIC_ID", true);
        check(
            129,
            ErrorCode::RebootstrapRequired,
            "REBOOTSTRAP_REQUIRED",
            false,
        );
        check(
            133,
            ErrorCode::ShareSessionLimitReached,
            "SHARE_SESSION_LIMIT_REACHED",
            true,
        );
    }

    #[test]
    fn spot_checks_of_actions() {
        use ErrorAction::*;
        assert_eq!(ErrorCode::NotLeaderOrFollower.action(), RefreshMetadata);
        assert_eq!(ErrorCode::FencedLeaderEpoch.action(), RefreshMetadata);
        assert_eq!(ErrorCode::NotCoordinator.action(), RediscoverCoordinator);
        assert_eq!(ErrorCode::CoordinatorLoadInProgress.action(), Retry);
        assert_eq!(ErrorCode::NotEnoughReplicas.action(), Retry);
        assert_eq!(ErrorCode::RebalanceInProgress.action(), Rejoin);
        assert_eq!(ErrorCode::FencedInstanceId.action(), Fail);
        assert_eq!(ErrorCode::OffsetOutOfRange.action(), Fail);
        assert_eq!(ErrorCode::ProducerFenced.action(), Fail);
    }

    #[test]
    fn actions_agree_with_the_retriable_flag() {
        for &error in ErrorCode::ALL {
            match error.action() {
                ErrorAction::Retry | ErrorAction::RediscoverCoordinator => {
                    assert!(error.is_retriable(), "{error:?}")
                }
                ErrorAction::RefreshMetadata => assert!(
                    error.is_retriable() || error == ErrorCode::RebootstrapRequired,
                    "{error:?}"
                ),
                ErrorAction::Rejoin => assert!(!error.is_retriable(), "{error:?}"),
                ErrorAction::Fail => assert!(
                    !error.is_retriable() || error == ErrorCode::ElectionNotNeeded,
                    "{error:?}"
                ),
            }
        }
    }

    #[test]
    fn unknown_code_is_kept_and_fails() {
        let error = ErrorCode::from_i16(9999).unwrap();
        assert_eq!(error, ErrorCode::Unknown(9999));
        assert_eq!(error.code(), 9999);
        assert!(!error.is_retriable());
        assert_eq!(error.action(), ErrorAction::Fail);
        assert_eq!(ErrorCode::from_i16(-2), Some(ErrorCode::Unknown(-2)));
        assert_eq!(ErrorCode::from_i16(134), Some(ErrorCode::Unknown(134)));
        assert!(error.to_string().starts_with("UNKNOWN_ERROR_CODE (9999): "));
    }

    #[test]
    fn display_names_code_and_description() {
        assert_eq!(
            ErrorCode::OffsetOutOfRange.to_string(),
            "OFFSET_OUT_OF_RANGE (1): The requested offset is not within the range of offsets \
             maintained by the server."
        );
    }
}
