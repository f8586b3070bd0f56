//! The consumer: group membership, partition assignors, fetching with sessions, and offsets.
//!
//! Today it has:
//! - [`Consumer`] with manual assignment ([`fetcher`]): one fetch loop per leader on its own
//!   connection, incremental fetch sessions (KIP-227), topic ids, leader epochs, a bounded
//!   prefetch byte budget, `auto.offset.reset` through ListOffsets, seek/pause/resume, and
//!   `read_committed` filtering of aborted transactions;
//! - the [`assignor`] module: the `range`, `roundrobin` and `cooperative-sticky` assignors and the
//!   consumer protocol's subscription and assignment encoding, as pure code with no I/O;
//! - the [`group`] module: [`GroupConsumer`], consumer-group membership on the classic protocol
//!   (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, eager and cooperative rebalances, static
//!   membership, a rebalance listener) and committed offsets (OffsetFetch/OffsetCommit), built
//!   on both.

pub mod assignor;
pub(crate) mod fast_hash;
pub mod fetcher;
pub mod group;
mod stream;

pub use fetcher::{
    Consumer, ConsumerBuilder, ConsumerError, ConsumerRecord, FetchRequestInfo, OFFSET_BEGINNING,
    OFFSET_END, TopicPartition, Validations,
};
pub use group::{
    CommitError, Generation, GroupConsumer, GroupError, GroupHandle, OffsetAndMetadata,
    RebalanceListener,
};
pub use stream::{GroupRecordStream, RecordStream, RecvStream};
