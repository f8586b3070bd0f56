//! Admin calls: create, delete and list topics.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{CreateTopicsRequest, DeleteTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Cluster, ClusterError, TopicMetadata};
use crate::connection::Connection;
use crate::protocol::ErrorCode;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Number of partitions; `-1` takes the broker's `num.partitions`.
    pub partitions: i32,
    /// Replication factor; `-1` takes the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs such as `("cleanup.policy", "compact")`.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and the broker's default replication factor.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }

    /// Sets the replication factor.
    pub fn replication_factor(mut self, factor: i16) -> Self {
        self.replication_factor = factor;
        self
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// A topic the broker created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// Topic name.
    pub name: String,
    /// The id the broker assigned.
    pub id: Uuid,
    /// Partitions created.
    pub partitions: i32,
}

impl Cluster {
    /// The connection admin requests go to: the controller the metadata names, else any broker.
    ///
    /// In KRaft mode every broker forwards admin requests to the active controller, so any live
    /// broker works; the metadata's `controller_id` is preferred to save a hop where it is real.
    async fn admin_connection(&self) -> Result<Connection, ClusterError> {
        let controller = self.metadata().controller_id;
        if controller >= 0
            && let Ok(conn) = self.broker(controller).await
        {
            return Ok(conn);
        }
        self.any_broker().await
    }

    /// Creates topics. Returns one result per topic, in order; a topic that already exists gives
    /// `TOPIC_ALREADY_EXISTS`.
    ///
    /// The broker's answer means the controller accepted the topic; use
    /// [`await_topic`](Self::await_topic) to wait until every partition has a leader.
    /// Cancel safety: safe, but a cancelled call may or may not have created the topics.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
    ) -> Result<Vec<Result<CreatedTopic, ClusterError>>, ClusterError> {
        let timeout_ms = i32::try_from(self.request_timeout().as_millis()).unwrap_or(i32::MAX);
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(timeout_ms)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = self
            .with_retries("create topics", || async {
                let conn = self.admin_connection().await?;
                let response = conn.request(&request).await?;
                // A controller move fails the whole request: learn the new one and retry.
                if let Some(r) = response
                    .topics
                    .iter()
                    .find(|r| ErrorCode::from_i16(r.error_code) == Some(ErrorCode::NotController))
                {
                    self.refresh_metadata().await?;
                    return Err(ClusterError::broker(
                        ErrorCode::NotController,
                        format!("create topic {:?}", r.name.as_str()),
                        None,
                    ));
                }
                Ok(response)
            })
            .await?;
        let results = topics
            .iter()
            .map(|t| {
                let r = response
                    .topics
                    .iter()
                    .find(|r| r.name.as_str() == t.name)
                    .ok_or_else(|| {
                        ClusterError::broker(
                            ErrorCode::UnknownServerError,
                            format!("create topic {:?}", t.name),
                            Some("the broker's response does not mention this topic".into()),
                        )
                    })?;
                match ErrorCode::from_i16(r.error_code) {
                    None => Ok(CreatedTopic {
                        name: t.name.clone(),
                        id: r.topic_id,
                        partitions: r.num_partitions,
                    }),
                    Some(code) => Err(ClusterError::broker(
                        code,
                        format!("create topic {:?}", t.name),
                        r.error_message.as_ref().map(|m| m.to_string()),
                    )),
                }
            })
            .collect();
        Ok(results)
    }

    /// Creates one topic and waits until all its partitions have leaders.
    ///
    /// Cancel safety: as [`create_topics`](Self::create_topics).
    pub async fn create_topic(&self, topic: NewTopic) -> Result<CreatedTopic, ClusterError> {
        let created = self
            .create_topics(std::slice::from_ref(&topic))
            .await?
            .pop()
            .expect("one result per topic")?;
        self.await_topic(&topic.name, self.request_timeout())
            .await?;
        Ok(created)
    }

    /// Waits until `topic` exists in the metadata and every partition has a leader.
    ///
    /// Cancel safety: safe.
    pub async fn await_topic(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Arc<TopicMetadata>, ClusterError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(20);
        loop {
            let snapshot = self.refresh_topics(&[topic]).await?;
            if let Some(t) = snapshot.topic(topic).filter(|t| t.is_ready()) {
                return Ok(t.clone());
            }
            if start.elapsed() + delay > timeout {
                return Err(ClusterError::Timeout {
                    what: format!("topic {topic:?} to have leaders for all partitions"),
                    elapsed: start.elapsed(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    /// Deletes topics by name. Returns one result per topic, in order.
    ///
    /// Cancel safety: safe, but a cancelled call may or may not have deleted the topics.
    pub async fn delete_topics(
        &self,
        names: &[&str],
    ) -> Result<Vec<Result<(), ClusterError>>, ClusterError> {
        let timeout_ms = i32::try_from(self.request_timeout().as_millis()).unwrap_or(i32::MAX);
        let topic_names: Vec<TopicName> = names
            .iter()
            .map(|n| TopicName(StrBytes::from_string(n.to_string())))
            .collect();
        let response = self
            .with_retries("delete topics", || async {
                let conn = self.admin_connection().await?;
                let version = conn.version_for::<DeleteTopicsRequest>()?;
                // v6 names topics in `topics` (name or id); earlier versions in `topic_names`.
                let request = if version >= 6 {
                    DeleteTopicsRequest::default().with_topics(
                        topic_names
                            .iter()
                            .map(|n| {
                                kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                                    .with_name(Some(n.clone()))
                            })
                            .collect(),
                    )
                } else {
                    DeleteTopicsRequest::default().with_topic_names(topic_names.clone())
                }
                .with_timeout_ms(timeout_ms);
                let response = conn.request_version(&request, version).await?;
                if response
                    .responses
                    .iter()
                    .any(|r| ErrorCode::from_i16(r.error_code) == Some(ErrorCode::NotController))
                {
                    self.refresh_metadata().await?;
                    return Err(ClusterError::broker(ErrorCode::NotController, "delete topics", None));
                }
                Ok(response)
            })
            .await?;
        let results = names
            .iter()
            .map(|name| {
                let r = response
                    .responses
                    .iter()
                    .find(|r| r.name.as_ref().is_some_and(|n| n.as_str() == *name))
                    .ok_or_else(|| {
                        ClusterError::broker(
                            ErrorCode::UnknownServerError,
                            format!("delete topic {name:?}"),
                            Some("the broker's response does not mention this topic".into()),
                        )
                    })?;
                match ErrorCode::from_i16(r.error_code) {
                    None => Ok(()),
                    Some(code) => Err(ClusterError::broker(
                        code,
                        format!("delete topic {name:?}"),
                        r.error_message.as_ref().map(|m| m.to_string()),
                    )),
                }
            })
            .collect();
        // The deleted topics are gone from the cache too.
        self.refresh_metadata().await?;
        Ok(results)
    }

    /// Lists the cluster's topics, sorted by name; internal topics only if asked.
    ///
    /// Cancel safety: safe.
    pub async fn list_topics(
        &self,
        include_internal: bool,
    ) -> Result<Vec<Arc<TopicMetadata>>, ClusterError> {
        let snapshot = self.refresh_metadata().await?;
        let mut topics: Vec<_> = snapshot
            .topics
            .values()
            .filter(|t| include_internal || !t.is_internal)
            .cloned()
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }
}

impl Cluster {
    /// The offset of the first record of `topic`/`partition` whose timestamp is at or after
    /// `timestamp_ms` (ListOffsets with a timestamp, as the Java client's `offsetsForTimes`), or
    /// `None` when no record is that recent. Special timestamps: -1 is the log end offset, -2 the
    /// log start offset.
    ///
    /// Cancel safety: safe.
    pub async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<i64>, ClusterError> {
        use kafka_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        use kafka_protocol::messages::{BrokerId, ListOffsetsRequest};
        let context = || format!("list offsets of {topic}/{partition}");
        self.with_retries("list offsets", || async {
            let snapshot = match self.metadata().leader(topic, partition) {
                Some(_) => self.metadata(),
                None => self.refresh_topics(&[topic]).await?,
            };
            let (leader, epoch) = snapshot
                .leader(topic, partition)
                .map(|(b, e)| (b.node_id, e))
                .ok_or_else(|| {
                    ClusterError::broker(ErrorCode::LeaderNotAvailable, context(), None)
                })?;
            let conn = self.broker(leader).await?;
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(partition)
                                .with_current_leader_epoch(epoch)
                                .with_timestamp(timestamp_ms),
                        ]),
                ]);
            let response = conn.request(&request).await?;
            let r = response
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == partition)
                .ok_or_else(|| {
                    ClusterError::broker(ErrorCode::UnknownServerError, context(), None)
                })?;
            if let Some(code) = ErrorCode::from_i16(r.error_code) {
                return Err(ClusterError::broker(code, context(), None));
            }
            Ok((r.offset >= 0).then_some(r.offset))
        })
        .await
    }
}
