//! The cluster's metadata as of one Metadata response: brokers, topics, partitions, leaders.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::MetadataResponse;
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::BrokerAddress;
use crate::protocol::ErrorCode;

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker's node id.
    pub node_id: i32,
    /// Where to reach it.
    pub address: BrokerAddress,
    /// Its rack, if configured.
    pub rack: Option<String>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Node id of the leader, or -1 when there is none.
    pub leader: i32,
    /// The leader epoch (KIP-320), or -1 when the broker does not report one.
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Offline replica node ids.
    pub offline_replicas: Vec<i32>,
    /// The partition-level error, such as `LEADER_NOT_AVAILABLE`.
    pub error: Option<ErrorCode>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// The topic name.
    pub name: String,
    /// The topic id the broker assigned (nil for brokers before Kafka 2.8).
    pub id: Uuid,
    /// Whether it is an internal topic such as `__consumer_offsets`.
    pub is_internal: bool,
    /// Partitions, sorted by index.
    pub partitions: Vec<PartitionMetadata>,
    /// The topic-level error, such as `UNKNOWN_TOPIC_OR_PARTITION`.
    pub error: Option<ErrorCode>,
}

impl TopicMetadata {
    /// Whether the topic exists and every partition has a leader.
    pub fn is_ready(&self) -> bool {
        self.error.is_none()
            && !self.partitions.is_empty()
            && self
                .partitions
                .iter()
                .all(|p| p.error.is_none() && p.leader >= 0)
    }
}

/// An immutable snapshot of cluster metadata.
///
/// Each refresh produces a new snapshot with a higher `generation`, so a caller that saw
/// generation `g` fail can ask for "anything newer than `g`" and many callers share one refresh.
#[derive(Debug, Clone)]
pub struct MetadataSnapshot {
    /// Increases by one with every refresh.
    pub generation: u64,
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The node id the broker reported as controller (in KRaft, a broker that forwards).
    pub controller_id: i32,
    /// Brokers by node id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: HashMap<String, Arc<TopicMetadata>>,
    /// When this snapshot was taken.
    pub fetched_at: Instant,
}

impl MetadataSnapshot {
    /// An empty snapshot, before the first refresh.
    pub fn empty() -> Self {
        Self {
            generation: 0,
            cluster_id: None,
            controller_id: -1,
            brokers: BTreeMap::new(),
            topics: HashMap::new(),
            fetched_at: Instant::now(),
        }
    }

    /// The next snapshot: brokers and controller from `response`; topics from `response` replace
    /// or (for a full refresh) entirely define the topic map.
    pub fn apply(&self, response: &MetadataResponse, full: bool) -> Self {
        let brokers = response
            .brokers
            .iter()
            .map(|b| {
                let info = BrokerInfo {
                    node_id: b.node_id.0,
                    address: BrokerAddress {
                        host: b.host.to_string(),
                        port: u16::try_from(b.port).unwrap_or(0),
                    },
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                };
                (info.node_id, info)
            })
            .collect();
        let mut topics = if full {
            HashMap::new()
        } else {
            self.topics.clone()
        };
        for t in &response.topics {
            let Some(name) = &t.name else { continue };
            let mut partitions: Vec<_> = t
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                    error: ErrorCode::from_i16(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let topic = TopicMetadata {
                name: name.to_string(),
                id: t.topic_id,
                is_internal: t.is_internal,
                partitions,
                error: ErrorCode::from_i16(t.error_code),
            };
            if topic.error == Some(ErrorCode::UnknownTopicOrPartition) {
                topics.remove(&topic.name);
            } else {
                topics.insert(topic.name.clone(), Arc::new(topic));
            }
        }
        Self {
            generation: self.generation + 1,
            cluster_id: response.cluster_id.as_ref().map(|c| c.to_string()),
            controller_id: response.controller_id.0,
            brokers,
            topics,
            fetched_at: Instant::now(),
        }
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMetadata>> {
        self.topics.get(name)
    }

    /// The leader of a partition, with its epoch, if it has one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<(&BrokerInfo, i32)> {
        let p = self
            .topic(topic)?
            .partitions
            .iter()
            .find(|p| p.partition == partition)?;
        Some((self.brokers.get(&p.leader)?, p.leader_epoch))
    }
}
