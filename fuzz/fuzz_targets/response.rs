//! Every response the client decodes, through `protocol::decode_response` (response header, the
//! guard's bounds check `check_response_body`, the `kafka-protocol` decoder, the trailing-bytes
//! check), then whatever the client decodes further from it: a Fetch response's record batches,
//! a JoinGroup response's member subscriptions, a SyncGroup response's assignment, the
//! completion maps in an OffsetFetch response's metadata, an ApiVersions response's table.
//!
//! Input: byte 0 is the API key (a key not in the list below picks one by index), byte 1 the
//! version (one outside the range the client may negotiate, `versions::client_range`, is taken
//! modulo that range); the rest is the response frame without its size prefix. The seeds in
//! `fuzz/seeds/response/` are named after both (`Metadata-v12.bin`).
//!
//! The APIs are the ones the client sends (ApiVersions through OffsetForLeaderEpoch below) and
//! the other responses the guard claims to cover (transactions, group and config admin), whose
//! decoders must be as safe once the client sends them.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use kafka_once::consumer::assignor::{Assignment, Subscription};
use kafka_once::dispatch::fuzzing as completion_map;
use kafka_once::protocol::records::{BatchContext, decode_batches};
use kafka_once::protocol::versions::client_range;
use kafka_once::protocol::{ApiVersionTable, decode_response};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Request;
use libfuzzer_sys::fuzz_target;

const APIS: [ApiKey; 25] = [
    // Sent by the client.
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::Produce,
    ApiKey::InitProducerId,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    // Covered by the guard, not sent yet.
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::DescribeConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DeleteRecords,
];

fuzz_target!(|data: &[u8]| {
    let [key, version, frame @ ..] = data else {
        return;
    };
    let api = APIS
        .iter()
        .copied()
        .find(|a| *a as i16 == i16::from(*key))
        .unwrap_or(APIS[usize::from(*key) % APIS.len()]);
    let range = client_range(api);
    let version = i16::from(*version);
    let version = if (range.min..=range.max).contains(&version) {
        version
    } else {
        range.min + version % (range.max - range.min + 1)
    };
    let frame = Bytes::copy_from_slice(frame);
    match api {
        ApiKey::ApiVersions => {
            if let Some(r) = decode::<ApiVersionsRequest>(frame, version) {
                let table = ApiVersionTable::from_response(&r);
                for api in APIS {
                    let _ = table.negotiate(api);
                }
            }
        }
        ApiKey::Metadata => drop(decode::<MetadataRequest>(frame, version)),
        ApiKey::CreateTopics => drop(decode::<CreateTopicsRequest>(frame, version)),
        ApiKey::DeleteTopics => drop(decode::<DeleteTopicsRequest>(frame, version)),
        ApiKey::Produce => drop(decode::<ProduceRequest>(frame, version)),
        ApiKey::InitProducerId => drop(decode::<InitProducerIdRequest>(frame, version)),
        ApiKey::Fetch => {
            if let Some(r) = decode::<FetchRequest>(frame, version) {
                fetched_records(&r, version);
            }
        }
        ApiKey::ListOffsets => drop(decode::<ListOffsetsRequest>(frame, version)),
        ApiKey::OffsetForLeaderEpoch => drop(decode::<OffsetForLeaderEpochRequest>(frame, version)),
        ApiKey::FindCoordinator => drop(decode::<FindCoordinatorRequest>(frame, version)),
        ApiKey::JoinGroup => {
            if let Some(r) = decode::<JoinGroupRequest>(frame, version) {
                for m in &r.members {
                    let _ = Subscription::decode(&m.metadata);
                }
            }
        }
        ApiKey::SyncGroup => {
            if let Some(r) = decode::<SyncGroupRequest>(frame, version) {
                let _ = Assignment::decode(&r.assignment);
            }
        }
        ApiKey::Heartbeat => drop(decode::<HeartbeatRequest>(frame, version)),
        ApiKey::LeaveGroup => drop(decode::<LeaveGroupRequest>(frame, version)),
        ApiKey::OffsetCommit => drop(decode::<OffsetCommitRequest>(frame, version)),
        ApiKey::OffsetFetch => {
            if let Some(r) = decode::<OffsetFetchRequest>(frame, version) {
                committed_maps(&r);
            }
        }
        ApiKey::AddPartitionsToTxn => drop(decode::<AddPartitionsToTxnRequest>(frame, version)),
        ApiKey::AddOffsetsToTxn => drop(decode::<AddOffsetsToTxnRequest>(frame, version)),
        ApiKey::EndTxn => drop(decode::<EndTxnRequest>(frame, version)),
        ApiKey::TxnOffsetCommit => drop(decode::<TxnOffsetCommitRequest>(frame, version)),
        ApiKey::DescribeGroups => drop(decode::<DescribeGroupsRequest>(frame, version)),
        ApiKey::ListGroups => drop(decode::<ListGroupsRequest>(frame, version)),
        ApiKey::DescribeConfigs => drop(decode::<DescribeConfigsRequest>(frame, version)),
        ApiKey::CreatePartitions => drop(decode::<CreatePartitionsRequest>(frame, version)),
        ApiKey::DeleteRecords => drop(decode::<DeleteRecordsRequest>(frame, version)),
        _ => unreachable!("not in APIS"),
    }
});

/// The response to `R`, if the frame decodes as the client decodes it.
fn decode<R: Request>(frame: Bytes, version: i16) -> Option<R::Response> {
    decode_response::<R>(frame, version)
        .ok()
        .map(|(_, body)| body)
}

/// Every partition's records through the batch decoder, as the fetcher does.
fn fetched_records(response: &FetchResponse, version: i16) {
    for topic in &response.responses {
        let name: Arc<str> = if version >= 13 {
            topic.topic_id.to_string().into()
        } else {
            topic.topic.0.as_str().into()
        };
        for partition in &topic.partitions {
            if let Some(records) = &partition.records {
                let ctx = BatchContext::new(name.clone(), partition.partition_index)
                    .with_max_decompressed(1 << 20);
                let _ = decode_batches(records.clone(), &ctx);
            }
        }
    }
}

/// Every committed offset's metadata through the completion map decoder, as the runtime does on
/// assignment (only for a committed offset, which is non-negative).
fn committed_maps(response: &OffsetFetchResponse) {
    let old = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.committed_offset, &p.metadata));
    let grouped = response
        .groups
        .iter()
        .flat_map(|g| &g.topics)
        .flat_map(|t| &t.partitions)
        .map(|p| (p.committed_offset, &p.metadata));
    for (offset, metadata) in old.chain(grouped) {
        if let Some(metadata) = metadata
            && offset >= 0
        {
            let _ = completion_map::decode(offset, metadata.as_str());
        }
    }
}
