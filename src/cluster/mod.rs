//! The cluster: a pool of broker connections, the metadata cache, retries with backoff, and the
//! admin calls (create, delete and list topics).
//!
//! Connections are opened lazily, one per broker, and replaced when they die (a poisoned
//! connection fails its in-flight requests; the next call here opens a new one after an
//! exponential backoff with jitter). Metadata is cached in immutable snapshots with a generation
//! number; a refresh is shared by all callers that ask for one at the same time.

mod admin;
mod backoff;
mod error;
mod metadata;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::config::{BrokerAddress, ClientConfig};
use crate::connection::{Connection, ConnectionConfig};
use crate::protocol::ErrorAction;

pub use admin::{CreatedTopic, NewTopic};
pub use backoff::Backoff;
pub use error::ClusterError;
pub use metadata::{BrokerInfo, MetadataSnapshot, PartitionMetadata, TopicMetadata};

/// Connection state of one broker.
struct BrokerSlot {
    connection: Option<Connection>,
    backoff: Backoff,
    /// No new connection attempt before this instant.
    not_before: Instant,
    /// Serialises connection attempts, so concurrent callers share one.
    connecting: Arc<tokio::sync::Mutex<()>>,
}

struct Inner {
    config: ClientConfig,
    connection_config: ConnectionConfig,
    /// Keyed by `host:port`: bootstrap entries and known brokers share slots.
    slots: Mutex<HashMap<String, BrokerSlot>>,
    metadata: RwLock<Arc<MetadataSnapshot>>,
    refresh: tokio::sync::Mutex<()>,
}

/// A client's view of a Kafka cluster. Cheap to clone; clones share connections and metadata.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap", &self.inner.config.bootstrap_servers())
            .field("generation", &self.metadata().generation)
            .finish()
    }
}

impl Cluster {
    /// Creates a cluster client and fetches the initial metadata from the bootstrap list (each
    /// address in turn until one answers).
    ///
    /// Cancel safety: safe.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClusterError> {
        let cluster = Self::new(config);
        cluster.refresh_metadata().await?;
        Ok(cluster)
    }

    /// Creates a cluster client without contacting any broker yet.
    pub fn new(config: ClientConfig) -> Self {
        let connection_config = ConnectionConfig {
            client_id: config.client_id().to_string(),
            request_timeout: config.request_timeout(),
            connect_timeout: config.connect_timeout(),
            max_in_flight: config.max_in_flight(),
            max_frame_size: config.receive_message_max_bytes(),
        };
        Self {
            inner: Arc::new(Inner {
                config,
                connection_config,
                slots: Mutex::new(HashMap::new()),
                metadata: RwLock::new(Arc::new(MetadataSnapshot::empty())),
                refresh: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The current metadata snapshot (possibly empty or stale; see
    /// [`refresh_metadata`](Self::refresh_metadata)).
    pub fn metadata(&self) -> Arc<MetadataSnapshot> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A connection to the broker with this node id, opening one if needed.
    ///
    /// Cancel safety: safe.
    pub async fn broker(&self, node_id: i32) -> Result<Connection, ClusterError> {
        let address = match self.metadata().brokers.get(&node_id) {
            Some(b) => b.address.clone(),
            None => {
                self.refresh_metadata().await?;
                self.metadata()
                    .brokers
                    .get(&node_id)
                    .map(|b| b.address.clone())
                    .ok_or(ClusterError::UnknownBroker { node_id })?
            }
        };
        self.connection_to(&address).await
    }

    /// A connection to any reachable broker: known brokers first, then the bootstrap list, each
    /// in turn.
    ///
    /// Cancel safety: safe.
    pub async fn any_broker(&self) -> Result<Connection, ClusterError> {
        let mut candidates: Vec<BrokerAddress> = self
            .metadata()
            .brokers
            .values()
            .map(|b| b.address.clone())
            .collect();
        // Start at a random broker so that load spreads.
        if !candidates.is_empty() {
            let start = rand::random_range(0..candidates.len());
            candidates.rotate_left(start);
        }
        for b in self.inner.config.bootstrap_servers() {
            if !candidates.contains(b) {
                candidates.push(b.clone());
            }
        }
        // A live connection beats a new one.
        {
            let slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
            for c in &candidates {
                if let Some(conn) = slots
                    .get(&c.to_string())
                    .and_then(|s| s.connection.as_ref())
                    .filter(|c| !c.is_poisoned())
                {
                    return Ok(conn.clone());
                }
            }
        }
        let mut last = None;
        for c in &candidates {
            match self.connection_to(c).await {
                Ok(conn) => return Ok(conn),
                Err(e) => {
                    tracing::debug!(broker = %c, error = %e, "broker unreachable");
                    last = Some(Box::new(e));
                }
            }
        }
        Err(ClusterError::NoBrokerReachable {
            tried: candidates.iter().map(ToString::to_string).collect(),
            last,
        })
    }

    /// A connection to `address`, reusing a live one or opening a new one after the backoff.
    async fn connection_to(&self, address: &BrokerAddress) -> Result<Connection, ClusterError> {
        let key = address.to_string();
        let connecting = {
            let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(key.clone()).or_insert_with(|| self.new_slot());
            if let Some(conn) = slot.connection.as_ref().filter(|c| !c.is_poisoned()) {
                return Ok(conn.clone());
            }
            slot.connecting.clone()
        };
        // One attempt at a time per broker; waiters reuse the winner's connection.
        let _guard = connecting.lock().await;
        let not_before = {
            let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
            // `close()` may have emptied the pool meanwhile.
            let slot = slots.entry(key.clone()).or_insert_with(|| self.new_slot());
            if let Some(conn) = slot.connection.as_ref().filter(|c| !c.is_poisoned()) {
                return Ok(conn.clone());
            }
            slot.not_before
        };
        tokio::time::sleep_until(not_before).await;
        let result = Connection::connect(&key, &self.inner.connection_config).await;
        let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(key.clone()).or_insert_with(|| self.new_slot());
        match result {
            Ok(conn) => {
                slot.backoff.reset();
                slot.not_before = Instant::now();
                slot.connection = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                let delay = slot.backoff.next_delay();
                slot.not_before = Instant::now() + delay;
                slot.connection = None;
                tracing::debug!(broker = %key, error = %e, ?delay, "connect failed");
                Err(e.into())
            }
        }
    }

    fn new_slot(&self) -> BrokerSlot {
        BrokerSlot {
            connection: None,
            backoff: Backoff::new(
                self.inner.config.reconnect_backoff(),
                self.inner.config.reconnect_backoff_max(),
            ),
            not_before: Instant::now(),
            connecting: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Fetches metadata for all topics and replaces the cache.
    ///
    /// Callers that ask at the same time share one request. Cancel safety: safe.
    pub async fn refresh_metadata(&self) -> Result<Arc<MetadataSnapshot>, ClusterError> {
        self.refresh(None).await
    }

    /// Fetches metadata for `topics` and merges it into the cache.
    ///
    /// Cancel safety: safe.
    pub async fn refresh_topics(
        &self,
        topics: &[&str],
    ) -> Result<Arc<MetadataSnapshot>, ClusterError> {
        self.refresh(Some(topics)).await
    }

    async fn refresh(
        &self,
        topics: Option<&[&str]>,
    ) -> Result<Arc<MetadataSnapshot>, ClusterError> {
        let seen = self.metadata().generation;
        let _guard = self.inner.refresh.lock().await;
        // Someone else refreshed everything while we waited: their answer is as fresh as ours.
        let current = self.metadata();
        if topics.is_none() && current.generation > seen {
            return Ok(current);
        }
        let request = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.to_string()))))
                    })
                    .collect()
            }));
        let response = self
            .with_retries("metadata", || async {
                let conn = self.any_broker().await?;
                Ok(conn.request(&request).await?)
            })
            .await?;
        let next = Arc::new(self.metadata().apply(&response, topics.is_none()));
        *self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|p| p.into_inner()) = next.clone();
        tracing::debug!(
            generation = next.generation,
            brokers = next.brokers.len(),
            topics = next.topics.len(),
            "metadata refreshed"
        );
        Ok(next)
    }

    /// Metadata for `topic`, refreshing when it is unknown or older than `metadata.max.age.ms`.
    ///
    /// Cancel safety: safe.
    pub async fn topic(&self, topic: &str) -> Result<Option<Arc<TopicMetadata>>, ClusterError> {
        let snapshot = self.metadata();
        let fresh = snapshot.fetched_at.elapsed() < self.inner.config.metadata_max_age();
        if let Some(t) = snapshot.topic(topic).filter(|_| fresh) {
            return Ok(Some(t.clone()));
        }
        Ok(self.refresh_topics(&[topic]).await?.topic(topic).cloned())
    }

    /// Runs `op` until it succeeds, fails with a non-retriable error, or `retries` /
    /// `request.timeout.ms` run out; waits `retry.backoff.ms` (growing to `retry.backoff.max.ms`)
    /// between attempts.
    pub(crate) async fn with_retries<T, F, Fut>(
        &self,
        what: &str,
        mut op: F,
    ) -> Result<T, ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let config = &self.inner.config;
        let deadline = Instant::now() + config.request_timeout();
        let mut backoff = Backoff::new(config.retry_backoff(), config.retry_backoff_max());
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retriable() => {
                    let delay = backoff.next_delay();
                    if e.code().map(|c| c.action()) == Some(ErrorAction::RefreshMetadata) {
                        // Stale leaders or topic ids: the retry must see fresh metadata. Failing to
                        // refresh is itself retried on the next round.
                        let _ = Box::pin(self.refresh_metadata()).await;
                    }
                    if backoff.attempts() > config.retries() || Instant::now() + delay > deadline {
                        return Err(e);
                    }
                    tracing::debug!(what, error = %e, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes every connection. Requests in flight fail with a retriable error; later calls
    /// open new connections.
    pub fn close(&self) {
        let slots =
            std::mem::take(&mut *self.inner.slots.lock().unwrap_or_else(|p| p.into_inner()));
        for slot in slots.into_values() {
            if let Some(conn) = slot.connection {
                conn.close();
            }
        }
    }

    /// The request timeout (`request.timeout.ms`), which also bounds retried admin calls.
    pub fn request_timeout(&self) -> Duration {
        self.inner.config.request_timeout()
    }
}
