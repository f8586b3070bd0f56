//! A scripted single-node Kafka broker on 127.0.0.1, for error paths a real broker will not
//! produce on demand (franz-go's hostile-broker tests do the same).
//!
//! The client under test talks to it over real TCP. It answers ApiVersions, Metadata,
//! InitProducerId, Produce, and for consumers Fetch (without sessions, topics by name),
//! ListOffsets and OffsetForLeaderEpoch; any other API closes the connection. A test can append
//! records, and truncate partitions while electing a new leader epoch ([`FakeBroker::elect`]),
//! which is how an unclean leader election looks to a consumer (KIP-320). Produce keeps a log per
//! partition and per-(producer, partition) sequence state with the rules of a Kafka 2.5+ broker
//! (`ProducerStateManager` / `ProducerAppendInfo`):
//!
//! - a producer the partition has no state for may start at *any* sequence (KIP-360);
//! - under the same epoch a batch identical to one of the last 5 written is a duplicate, answered
//!   with error 0 and the original base offset;
//! - otherwise the base sequence must be the last one plus one, else
//!   `OUT_OF_ORDER_SEQUENCE_NUMBER`;
//! - a newer epoch must start at sequence 0; an older one is `INVALID_PRODUCER_EPOCH`.
//!
//! A test scripts faults with [`Rule`]s (each fires once, on the first Produce request or batch
//! it matches) and reads back every Produce batch the broker saw ([`FakeBroker::seen`]) and the
//! log ([`FakeBroker::log`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_once::kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_once::kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, PartitionData as FetchPartitionData,
};
use kafka_once::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_once::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_once::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_once::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use kafka_once::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_once::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_once::protocol::records::{
    BatchContext, EncodeOptions, RecordBatch, RecordToEncode, decode_batches, encode_batch,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// The broker's node id, and the leader of every partition.
pub const NODE_ID: i32 = 1;
/// The producer id handed to the first InitProducerId without an id.
pub const FIRST_PRODUCER_ID: i64 = 1000;

pub const NONE: i16 = 0;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const MESSAGE_TOO_LARGE: i16 = 10;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub const FENCED_LEADER_EPOCH: i16 = 74;
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
pub const UNKNOWN_PRODUCER_ID: i16 = 59;
pub const INVALID_RECORD: i16 = 87;

/// Largest request frame read; a larger size prefix closes the connection.
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Batches per producer and partition whose sequences the broker remembers for duplicate
/// detection (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
const RETAINED_BATCHES: usize = 5;
/// Responses queued per connection before the reader waits.
const RESPONSE_QUEUE: usize = 64;

/// Which Produce traffic a [`Rule`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The n-th Produce request the broker reads (1-based, over all connections), every batch in
    /// it.
    ProduceRequest(usize),
    /// The first batch read after the rule was added with this base sequence on this partition
    /// (any producer id or epoch).
    Batch { partition: i32, base_sequence: i32 },
}

/// What a [`Rule`] does to the request it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer the matched batches with this error code without appending them.
    Reject(i16),
    /// Hold the response this long. Later responses on the connection wait behind it, since a
    /// broker answers in request order.
    Delay(Duration),
    /// Close the connection as soon as the request is read, without applying it; responses
    /// still queued on the connection are lost too.
    CloseBeforeApply,
    /// Apply the request, then close the connection without answering: the "written, but the
    /// answer was lost" case.
    CloseAfterApply,
}

/// One scripted fault. It fires once, on the first request it matches; several rules may fire on
/// one request (say a rejection and a delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub trigger: Trigger,
    pub fault: Fault,
}

/// How InitProducerId answers a request that names a producer id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitMode {
    /// A known id with its current epoch gets the epoch bumped (what a KIP-360 epoch bump asks
    /// for); an unknown id or stale epoch gets `INVALID_PRODUCER_EPOCH`.
    BumpEpoch,
    /// Every request gets a new producer id with epoch 0, whatever it names. This is what Apache
    /// Kafka's `TransactionCoordinator.handleInitProducerId` does when the transactional id is
    /// null ("always blindly accept the request and return a new producerId").
    NewProducerId,
}

/// The broker's setup: one topic and the faults to inject.
#[derive(Debug, Clone)]
pub struct Script {
    pub topic: String,
    pub partitions: i32,
    pub topic_id: uuid::Uuid,
    pub init_mode: InitMode,
    pub rules: Vec<Rule>,
}

impl Script {
    /// One topic with `partitions` partitions, no faults.
    pub fn new(topic: &str, partitions: i32) -> Self {
        Self {
            topic: topic.to_string(),
            partitions,
            topic_id: uuid::Uuid::from_u128(0x6b61_666b_612d_6f6e_6365_0000_0000_0001),
            init_mode: InitMode::BumpEpoch,
            rules: Vec::new(),
        }
    }

    /// Adds a fault.
    pub fn rule(mut self, trigger: Trigger, fault: Fault) -> Self {
        self.rules.push(Rule { trigger, fault });
        self
    }

    /// Sets how InitProducerId answers.
    pub fn init_mode(mut self, mode: InitMode) -> Self {
        self.init_mode = mode;
        self
    }
}

/// What became of one batch of a Produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written at this base offset.
    Appended { base_offset: i64 },
    /// Already written by an earlier attempt; answered with its base offset.
    Duplicate { base_offset: i64 },
    /// Answered with this error code, not written (scripted or by the sequence rules).
    Rejected(i16),
    /// The connection was closed before the request was applied.
    Dropped,
}

/// One batch of one Produce request, as the broker read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenBatch {
    /// Which Produce request (1-based, over all connections).
    pub request: usize,
    /// Which connection (1-based, in accept order).
    pub connection: usize,
    /// Requests read earlier on this connection whose response was not written yet: how deep
    /// the client was pipelining when this request arrived.
    pub unanswered: usize,
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records: i32,
    pub outcome: Outcome,
}

/// One record in a partition's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRecord {
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The record's own sequence (batch base sequence plus its index), or -1.
    pub sequence: i32,
    /// The leader epoch it was written in.
    pub leader_epoch: i32,
}

/// One InitProducerId request: the id and epoch it named, and the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitSeen {
    pub asked: (i64, i16),
    pub answered: (i64, i16),
    pub error_code: i16,
}

/// Sequence metadata of one written batch.
#[derive(Debug, Clone, Copy)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

/// What the broker remembers of one producer on one partition.
#[derive(Debug)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
}

struct State {
    script: Script,
    logs: Vec<Vec<LoggedRecord>>,
    /// The leader epoch of every partition.
    leader_epoch: i32,
    /// Per partition, (epoch, start offset) of every leader epoch, oldest first (Kafka's
    /// leader-epoch cache).
    epochs: Vec<Vec<(i32, i64)>>,
    producers: HashMap<(i64, i32), ProducerEntry>,
    /// Current epoch of every producer id handed out.
    producer_epochs: HashMap<i64, i16>,
    next_producer_id: i64,
    produce_requests: usize,
    connections: usize,
    seen: Vec<SeenBatch>,
    inits: Vec<InitSeen>,
}

struct Shared {
    state: Mutex<State>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake broker. Dropping it stops the listener and closes every connection.
pub struct FakeBroker {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        for task in self
            .shared
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl FakeBroker {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let partitions = usize::try_from(script.partitions).expect("partition count");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                script,
                logs: vec![Vec::new(); partitions],
                leader_epoch: 0,
                epochs: vec![vec![(0, 0)]; partitions],
                producers: HashMap::new(),
                producer_epochs: HashMap::new(),
                next_producer_id: FIRST_PRODUCER_ID,
                produce_requests: 0,
                connections: 0,
                seen: Vec::new(),
                inits: Vec::new(),
            }),
            tasks: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), addr));
        shared
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(accept.abort_handle());
        Self { addr, shared }
    }

    /// `127.0.0.1:port`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Adds a fault while the broker runs.
    pub fn add_rule(&self, trigger: Trigger, fault: Fault) {
        self.shared
            .lock()
            .script
            .rules
            .push(Rule { trigger, fault });
    }

    /// Rules that have not fired yet.
    pub fn pending_rules(&self) -> Vec<Rule> {
        self.shared.lock().script.rules.clone()
    }

    /// Every Produce batch read so far, in the order the broker read them.
    pub fn seen(&self) -> Vec<SeenBatch> {
        self.shared.lock().seen.clone()
    }

    /// Every InitProducerId request so far.
    pub fn inits(&self) -> Vec<InitSeen> {
        self.shared.lock().inits.clone()
    }

    /// The log of a partition.
    pub fn log(&self, partition: i32) -> Vec<LoggedRecord> {
        self.shared.lock().logs[partition as usize].clone()
    }

    /// The values of a partition's log, as strings.
    pub fn values(&self, partition: i32) -> Vec<String> {
        self.log(partition)
            .iter()
            .map(|r| {
                r.value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Appends records with these values (no key, no producer id) to a partition's log in the
    /// current leader epoch.
    pub fn append_values(&self, partition: i32, values: &[&str]) {
        let mut state = self.shared.lock();
        let epoch = state.leader_epoch;
        let log = &mut state.logs[partition as usize];
        for v in values {
            log.push(LoggedRecord {
                offset: log.len() as i64,
                key: None,
                value: Some(Bytes::copy_from_slice(v.as_bytes())),
                producer_id: -1,
                producer_epoch: -1,
                sequence: -1,
                leader_epoch: epoch,
            });
        }
    }

    /// A new leader is elected with leader epoch `epoch` whose copy of `partition` ends at
    /// `len` records: the log is truncated there (an unclean election loses what the old leader
    /// alone had), and every partition's epoch history gains `epoch` starting at its log end.
    pub fn elect(&self, epoch: i32, partition: i32, len: usize) {
        let mut state = self.shared.lock();
        assert!(epoch > state.leader_epoch, "leader epochs only grow");
        state.leader_epoch = epoch;
        state.logs[partition as usize].truncate(len);
        let State { logs, epochs, .. } = &mut *state;
        for (log, history) in logs.iter().zip(epochs.iter_mut()) {
            let end = log.len() as i64;
            history.retain(|(_, start)| *start <= end);
            history.push((epoch, end));
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, addr: SocketAddr) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or the like: try again shortly rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let number = {
            let mut state = shared.lock();
            state.connections += 1;
            state.connections
        };
        let task = tokio::spawn(serve(stream, shared.clone(), addr, number));
        shared
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task.abort_handle());
    }
}

/// A response waiting to be written.
struct Outgoing {
    frame: Bytes,
    not_before: Instant,
}

/// What to do after handling a request.
enum Next {
    Respond {
        frame: Bytes,
        delay: Duration,
    },
    /// Nothing to write (a Produce request with `acks=0`).
    Silent,
    Close,
}

/// Serves one connection: this task reads and applies requests in order; a writer task writes
/// the responses in the same order, each no earlier than its delay allows.
async fn serve(stream: TcpStream, shared: Arc<Shared>, addr: SocketAddr, connection: usize) {
    let (mut reader, mut writer) = stream.into_split();
    let unanswered = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel::<Outgoing>(RESPONSE_QUEUE);
    let writer_unanswered = unanswered.clone();
    let writer_task = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            tokio::time::sleep_until(out.not_before).await;
            if writer.write_all(&out.frame).await.is_err() {
                return;
            }
            writer_unanswered.fetch_sub(1, Ordering::AcqRel);
        }
    });
    while let Ok(size) = reader.read_i32().await {
        // At least the api key, version and correlation id; at most MAX_FRAME.
        let Some(size) = usize::try_from(size)
            .ok()
            .filter(|s| (8..=MAX_FRAME).contains(s))
        else {
            break;
        };
        let mut frame = vec![0; size];
        if reader.read_exact(&mut frame).await.is_err() {
            break;
        }
        let context = Context {
            shared: &shared,
            addr,
            connection,
            unanswered: unanswered.load(Ordering::Acquire),
        };
        match handle(&context, Bytes::from(frame)) {
            Some(Next::Respond { frame, delay }) => {
                unanswered.fetch_add(1, Ordering::AcqRel);
                let out = Outgoing {
                    frame,
                    not_before: Instant::now() + delay,
                };
                if tx.send(out).await.is_err() {
                    break;
                }
            }
            Some(Next::Silent) => {}
            Some(Next::Close) | None => break,
        }
    }
    // Dropping both halves closes the socket; responses not yet written are lost, as on a cut
    // (one being written when the writer is aborted may leave half a frame, as a cut may too).
    writer_task.abort();
}

struct Context<'a> {
    shared: &'a Shared,
    addr: SocketAddr,
    connection: usize,
    unanswered: usize,
}

/// Decodes one request frame and handles it; `None` for anything it cannot decode or does not
/// serve (the connection is closed, as a broker does).
fn handle(cx: &Context<'_>, mut frame: Bytes) -> Option<Next> {
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(api_key).ok()?;
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version)).ok()?;
    let correlation_id = header.correlation_id;
    match api {
        ApiKey::ApiVersions => {
            let (_, _, max) = advertised()[0];
            let frame = if version > max {
                // KIP-511: a version the broker does not know gets a v0 body with
                // UNSUPPORTED_VERSION and the supported range, so the client can step down.
                let body = api_versions().with_error_code(UNSUPPORTED_VERSION);
                encode_response(correlation_id, 0, &body, 0)?
            } else {
                let _ = ApiVersionsRequest::decode(&mut frame, version).ok()?;
                respond(correlation_id, api, version, &api_versions())?
            };
            Some(Next::Respond {
                frame,
                delay: Duration::ZERO,
            })
        }
        ApiKey::Metadata => {
            let request = MetadataRequest::decode(&mut frame, version).ok()?;
            let state = cx.shared.lock();
            let body = metadata(
                &state.script,
                state.leader_epoch,
                cx.addr,
                &request,
                version,
            );
            drop(state);
            let frame = respond(correlation_id, api, version, &body)?;
            Some(Next::Respond {
                frame,
                delay: Duration::ZERO,
            })
        }
        ApiKey::InitProducerId => {
            let request = InitProducerIdRequest::decode(&mut frame, version).ok()?;
            let body = init_producer_id(&mut cx.shared.lock(), &request);
            let frame = respond(correlation_id, api, version, &body)?;
            Some(Next::Respond {
                frame,
                delay: Duration::ZERO,
            })
        }
        ApiKey::Produce => {
            let request = ProduceRequest::decode(&mut frame, version).ok()?;
            produce(cx, correlation_id, version, &request)
        }
        ApiKey::Fetch => {
            let request = FetchRequest::decode(&mut frame, version).ok()?;
            let (body, empty) = fetch(&cx.shared.lock(), &request);
            let frame = respond(correlation_id, api, version, &body)?;
            // An empty answer waits a little, like a long poll, so the client does not spin.
            let wait = u64::try_from(request.max_wait_ms).unwrap_or(0).min(50);
            Some(Next::Respond {
                frame,
                delay: if empty {
                    Duration::from_millis(wait)
                } else {
                    Duration::ZERO
                },
            })
        }
        ApiKey::ListOffsets => {
            let request = ListOffsetsRequest::decode(&mut frame, version).ok()?;
            let body = list_offsets(&cx.shared.lock(), &request);
            let frame = respond(correlation_id, api, version, &body)?;
            Some(Next::Respond {
                frame,
                delay: Duration::ZERO,
            })
        }
        ApiKey::OffsetForLeaderEpoch => {
            let request = OffsetForLeaderEpochRequest::decode(&mut frame, version).ok()?;
            let body = offset_for_leader_epoch(&cx.shared.lock(), &request);
            let frame = respond(correlation_id, api, version, &body)?;
            Some(Next::Respond {
                frame,
                delay: Duration::ZERO,
            })
        }
        _ => None,
    }
}

/// The ranges this broker advertises (ApiVersions first); the client negotiates within them.
fn advertised() -> [(ApiKey, i16, i16); 7] {
    [
        (ApiKey::ApiVersions, 0, 3),
        (ApiKey::Metadata, 0, 12),
        // v13 names topics by id only; stay below it to keep this broker simple.
        (ApiKey::Produce, 3, 11),
        (ApiKey::InitProducerId, 0, 4),
        // The same for Fetch; v4 is the first with the isolation level and v2 batches.
        (ApiKey::Fetch, 4, 12),
        (ApiKey::ListOffsets, 1, 7),
        (ApiKey::OffsetForLeaderEpoch, 3, 4),
    ]
}

fn api_versions() -> ApiVersionsResponse {
    let keys = advertised()
        .into_iter()
        .map(|(api, min, max)| {
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default().with_api_keys(keys)
}

/// Encodes a response at the request's version, unless the version is outside the advertised
/// range (then `None`).
fn respond<B: Encodable>(
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    body: &B,
) -> Option<Bytes> {
    let (_, min, max) = advertised().into_iter().find(|(a, _, _)| *a == api)?;
    if !(min..=max).contains(&version) {
        return None;
    }
    // ApiVersions responses always use header v0, so that a client can read them before it
    // knows which header versions the broker speaks; `response_header_version` says so too.
    let header_version = api.response_header_version(version);
    encode_response(correlation_id, header_version, body, version)
}

fn encode_response<B: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body: &B,
    version: i16,
) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    let size = i32::try_from(buf.len() - 4).ok()?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Some(buf.freeze())
}

fn metadata(
    script: &Script,
    leader_epoch: i32,
    addr: SocketAddr,
    request: &MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(addr.ip().to_string()))
        .with_port(i32::from(addr.port()));
    let ours = || {
        let partitions = (0..script.partitions)
            .map(|p| {
                let mut partition = MetadataResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(BrokerId(NODE_ID))
                    .with_replica_nodes(vec![BrokerId(NODE_ID)])
                    .with_isr_nodes(vec![BrokerId(NODE_ID)]);
                if version >= 7 {
                    partition = partition.with_leader_epoch(leader_epoch);
                }
                partition
            })
            .collect();
        let mut topic = MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(script.topic.clone()))))
            .with_partitions(partitions);
        if version >= 10 {
            topic = topic.with_topic_id(script.topic_id);
        }
        topic
    };
    let topics = match &request.topics {
        // Null: every topic.
        None => vec![ours()],
        Some(asked) => asked
            .iter()
            .map(|t| match &t.name {
                Some(name) if name.as_str() == script.topic => ours(),
                name => MetadataResponseTopic::default()
                    .with_error_code(UNKNOWN_TOPIC_OR_PARTITION)
                    .with_name(name.clone()),
            })
            .collect(),
    };
    let mut body = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    if version >= 1 {
        body = body.with_controller_id(BrokerId(NODE_ID));
    }
    if version >= 2 {
        body = body.with_cluster_id(Some(StrBytes::from_static_str("fake-cluster")));
    }
    body
}

fn init_producer_id(state: &mut State, request: &InitProducerIdRequest) -> InitProducerIdResponse {
    let asked = (request.producer_id.0, request.producer_epoch);
    let fresh = |state: &mut State| {
        let id = state.next_producer_id;
        state.next_producer_id += 1;
        state.producer_epochs.insert(id, 0);
        (id, 0)
    };
    let (answered, error_code) = if asked.0 < 0 || state.script.init_mode == InitMode::NewProducerId
    {
        (fresh(state), NONE)
    } else {
        match state.producer_epochs.get_mut(&asked.0) {
            Some(epoch) if *epoch == asked.1 => {
                *epoch += 1;
                ((asked.0, *epoch), NONE)
            }
            _ => ((-1, -1), INVALID_PRODUCER_EPOCH),
        }
    };
    state.inits.push(InitSeen {
        asked,
        answered,
        error_code,
    });
    InitProducerIdResponse::default()
        .with_error_code(error_code)
        .with_producer_id(answered.0.into())
        .with_producer_epoch(answered.1)
}

/// The index of partition `partition` of `topic` for a request naming `current` as the leader
/// epoch (-1: not checked), or the error to answer with: `UNKNOWN_TOPIC_OR_PARTITION`, or for an
/// epoch older than the broker's `FENCED_LEADER_EPOCH`, newer `UNKNOWN_LEADER_EPOCH`.
fn led_partition(state: &State, topic: &str, partition: i32, current: i32) -> Result<usize, i16> {
    let i = usize::try_from(partition)
        .ok()
        .filter(|i| topic == state.script.topic && *i < state.logs.len())
        .ok_or(UNKNOWN_TOPIC_OR_PARTITION)?;
    match current {
        c if c < 0 || c == state.leader_epoch => Ok(i),
        c if c < state.leader_epoch => Err(FENCED_LEADER_EPOCH),
        _ => Err(UNKNOWN_LEADER_EPOCH),
    }
}

/// Answers a Fetch with everything from each position to the log end, one batch per run of
/// records written in the same leader epoch. Returns whether no records were sent.
fn fetch(state: &State, request: &FetchRequest) -> (FetchResponse, bool) {
    let mut empty = true;
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let answer = FetchPartitionData::default().with_partition_index(p.partition);
                    let log = match led_partition(
                        state,
                        t.topic.as_str(),
                        p.partition,
                        p.current_leader_epoch,
                    ) {
                        Ok(i) => &state.logs[i],
                        Err(code) => return answer.with_error_code(code),
                    };
                    let end = log.len() as i64;
                    let answer = answer
                        .with_high_watermark(end)
                        .with_last_stable_offset(end)
                        .with_log_start_offset(0);
                    if p.fetch_offset > end || p.fetch_offset < 0 {
                        return answer.with_error_code(OFFSET_OUT_OF_RANGE);
                    }
                    let mut bytes = BytesMut::new();
                    let rest = &log[p.fetch_offset as usize..];
                    for run in rest.chunk_by(|a, b| a.leader_epoch == b.leader_epoch) {
                        let records: Vec<RecordToEncode> = run
                            .iter()
                            .map(|r| RecordToEncode {
                                timestamp: 1_700_000_000_000,
                                key: r.key.clone(),
                                value: r.value.clone(),
                                headers: Vec::new(),
                            })
                            .collect();
                        let options = EncodeOptions {
                            base_offset: run[0].offset,
                            partition_leader_epoch: run[0].leader_epoch,
                            ..EncodeOptions::default()
                        };
                        bytes
                            .extend_from_slice(&encode_batch(&records, &options).expect("encodes"));
                    }
                    empty &= bytes.is_empty();
                    answer.with_records(Some(bytes.freeze()))
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    (FetchResponse::default().with_responses(topics), empty)
}

/// Answers ListOffsets for the earliest (-2) and latest (-1) offsets.
fn list_offsets(state: &State, request: &ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let answer = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let log = match led_partition(
                        state,
                        t.name.as_str(),
                        p.partition_index,
                        p.current_leader_epoch,
                    ) {
                        Ok(i) => &state.logs[i],
                        Err(code) => return answer.with_error_code(code),
                    };
                    let offset = if p.timestamp == -2 {
                        0
                    } else {
                        log.len() as i64
                    };
                    answer
                        .with_offset(offset)
                        .with_timestamp(-1)
                        .with_leader_epoch(state.leader_epoch)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// Answers OffsetForLeaderEpoch from the epoch history: the largest epoch at or below the one
/// asked, and where it ends (the next epoch's start, or the log end for the newest).
fn offset_for_leader_epoch(
    state: &State,
    request: &OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let answer = EpochEndOffset::default().with_partition(p.partition);
                    let (log, history) = match led_partition(
                        state,
                        t.topic.as_str(),
                        p.partition,
                        p.current_leader_epoch,
                    ) {
                        Ok(i) => (&state.logs[i], &state.epochs[i]),
                        Err(code) => return answer.with_error_code(code),
                    };
                    match history.iter().rposition(|(e, _)| *e <= p.leader_epoch) {
                        None => answer.with_leader_epoch(-1).with_end_offset(-1),
                        Some(i) => {
                            let end = history
                                .get(i + 1)
                                .map_or(log.len() as i64, |(_, start)| *start);
                            answer.with_leader_epoch(history[i].0).with_end_offset(end)
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// The sequence after `seq` (sequences wrap from `i32::MAX` to 0).
fn next_seq(seq: i32) -> i32 {
    seq.wrapping_add(1) & i32::MAX
}

/// Applies one decoded batch to a partition under Kafka's producer-state rules.
fn append(state: &mut State, partition: i32, batch: &RecordBatch) -> Outcome {
    let h = &batch.header;
    let log = &mut state.logs[partition as usize];
    let base_offset = log.len() as i64;
    if h.producer_id >= 0 {
        let last_seq = h.base_sequence.wrapping_add(h.record_count - 1) & i32::MAX;
        if let Some(entry) = state.producers.get(&(h.producer_id, partition)) {
            if h.producer_epoch == entry.epoch
                && let Some(dup) = entry
                    .batches
                    .iter()
                    .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
            {
                return Outcome::Duplicate {
                    base_offset: dup.base_offset,
                };
            }
            if h.producer_epoch < entry.epoch {
                return Outcome::Rejected(INVALID_PRODUCER_EPOCH);
            }
            let in_sequence = if h.producer_epoch > entry.epoch {
                // "Invalid sequence number for new epoch": a new epoch starts at 0.
                h.base_sequence == 0
            } else {
                entry
                    .batches
                    .back()
                    .is_none_or(|b| h.base_sequence == next_seq(b.last_seq))
            };
            if !in_sequence {
                return Outcome::Rejected(OUT_OF_ORDER_SEQUENCE_NUMBER);
            }
        }
        // No state for this producer here: any first sequence is accepted (KIP-360).
        let entry = state
            .producers
            .entry((h.producer_id, partition))
            .or_insert(ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
            });
        if entry.epoch != h.producer_epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq,
            base_offset,
        });
        while entry.batches.len() > RETAINED_BATCHES {
            entry.batches.pop_front();
        }
    }
    for (i, r) in batch.records.iter().enumerate() {
        log.push(LoggedRecord {
            offset: base_offset + i as i64,
            key: r.key.clone(),
            value: r.value.clone(),
            leader_epoch: state.leader_epoch,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            sequence: if h.producer_id >= 0 {
                h.base_sequence.wrapping_add(i as i32) & i32::MAX
            } else {
                -1
            },
        });
    }
    Outcome::Appended { base_offset }
}

/// One partition of a Produce request, decoded.
struct PartitionData {
    topic: TopicName,
    partition: i32,
    /// The decoded batches, or the error code to answer with.
    batches: Result<Vec<RecordBatch>, i16>,
}

fn produce(
    cx: &Context<'_>,
    correlation_id: i32,
    version: i16,
    request: &ProduceRequest,
) -> Option<Next> {
    let mut state = cx.shared.lock();
    state.produce_requests += 1;
    let number = state.produce_requests;
    let script_topic = state.script.topic.clone();
    let partitions = state.script.partitions;

    let mut data = Vec::new();
    for topic in &request.topic_data {
        for p in &topic.partition_data {
            let batches =
                if topic.name.as_str() != script_topic || !(0..partitions).contains(&p.index) {
                    Err(UNKNOWN_TOPIC_OR_PARTITION)
                } else {
                    let bytes = p.records.clone().unwrap_or_default();
                    decode_batches(bytes, &BatchContext::new(script_topic.as_str(), p.index))
                        .map(|d| d.batches)
                        .map_err(|_| CORRUPT_MESSAGE)
                        .and_then(|b| {
                            if b.is_empty() {
                                Err(INVALID_RECORD)
                            } else {
                                Ok(b)
                            }
                        })
                };
            data.push(PartitionData {
                topic: topic.name.clone(),
                partition: p.index,
                batches,
            });
        }
    }

    // Fire the rules this request matches; each fires once.
    let mut rejected: HashMap<usize, i16> = HashMap::new();
    let mut delay = Duration::ZERO;
    let mut close_before = false;
    let mut close_after = false;
    let rules = std::mem::take(&mut state.script.rules);
    for rule in rules {
        let matched: Vec<usize> = match rule.trigger {
            Trigger::ProduceRequest(n) if n == number => (0..data.len()).collect(),
            Trigger::ProduceRequest(_) => Vec::new(),
            Trigger::Batch {
                partition,
                base_sequence,
            } => data
                .iter()
                .position(|d| {
                    d.partition == partition
                        && d.batches.as_ref().is_ok_and(|b| {
                            b.iter().any(|b| b.header.base_sequence == base_sequence)
                        })
                })
                .into_iter()
                .collect(),
        };
        if matched.is_empty() {
            state.script.rules.push(rule);
            continue;
        }
        match rule.fault {
            Fault::Reject(code) => {
                for i in matched {
                    rejected.insert(i, code);
                }
            }
            Fault::Delay(d) => delay = delay.max(d),
            Fault::CloseBeforeApply => close_before = true,
            Fault::CloseAfterApply => close_after = true,
        }
    }

    let mut responses: Vec<TopicProduceResponse> = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let mut answer = PartitionProduceResponse::default().with_index(d.partition);
        match &d.batches {
            Err(code) => answer = answer.with_error_code(*code),
            Ok(batches) => {
                // A request carries one batch per partition from this client; should there be
                // more, they are applied in order up to the first rejection, and the answer is
                // the first batch's.
                let mut first: Option<Outcome> = None;
                for batch in batches {
                    let outcome = if close_before {
                        Outcome::Dropped
                    } else if let Some(&code) = rejected.get(&i) {
                        Outcome::Rejected(code)
                    } else {
                        append(&mut state, d.partition, batch)
                    };
                    state.seen.push(SeenBatch {
                        request: number,
                        connection: cx.connection,
                        unanswered: cx.unanswered,
                        partition: d.partition,
                        producer_id: batch.header.producer_id,
                        producer_epoch: batch.header.producer_epoch,
                        base_sequence: batch.header.base_sequence,
                        records: batch.header.record_count,
                        outcome,
                    });
                    first.get_or_insert(outcome);
                    if matches!(outcome, Outcome::Rejected(_)) {
                        break;
                    }
                }
                answer = match first {
                    Some(
                        Outcome::Appended { base_offset } | Outcome::Duplicate { base_offset },
                    ) => answer.with_base_offset(base_offset),
                    Some(Outcome::Rejected(code)) => {
                        answer.with_error_code(code).with_base_offset(-1)
                    }
                    Some(Outcome::Dropped) | None => answer,
                };
            }
        }
        if version >= 5 {
            answer = answer.with_log_start_offset(0);
        }
        match responses.iter_mut().find(|t| t.name == d.topic) {
            Some(t) => t.partition_responses.push(answer),
            None => responses.push(
                TopicProduceResponse::default()
                    .with_name(d.topic.clone())
                    .with_partition_responses(vec![answer]),
            ),
        }
    }
    drop(state);
    if close_before || close_after {
        return Some(Next::Close);
    }
    if request.acks == 0 {
        // "The server will not send any response" (Produce, acks=0).
        return Some(Next::Silent);
    }
    let body = ProduceResponse::default().with_responses(responses);
    let frame = respond(correlation_id, ApiKey::Produce, version, &body)?;
    Some(Next::Respond { frame, delay })
}

/// One line per batch, for the message of a failing assertion.
pub fn describe(seen: &[SeenBatch]) -> String {
    let mut out = String::new();
    for s in seen {
        out.push_str(&format!(
            "req {} conn {} unanswered {} p{} pid {} epoch {} seq {} n {} {:?}\n",
            s.request,
            s.connection,
            s.unanswered,
            s.partition,
            s.producer_id,
            s.producer_epoch,
            s.base_sequence,
            s.records,
            s.outcome
        ));
    }
    out
}
