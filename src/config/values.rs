//! Typed values of the enumerated settings, each parsed the way the Java client and librdkafka
//! spell it (case-insensitive, aliases included).

use std::fmt;
use std::str::FromStr;

/// A value could not be parsed; says what was expected. [`ConfigError::InvalidValue`] adds the key.
///
/// [`ConfigError::InvalidValue`]: super::ConfigError::InvalidValue
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?}: expected {expected}")]
pub struct ParseValueError {
    /// The text that was rejected.
    pub value: String,
    /// What a valid value looks like.
    pub expected: &'static str,
}

impl ParseValueError {
    pub(super) fn new(value: &str, expected: &'static str) -> Self {
        Self {
            value: value.to_owned(),
            expected,
        }
    }
}

/// Where a consumer starts when its group has no committed offset for a partition
/// (`auto.offset.reset`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutoOffsetReset {
    /// Start at the log start offset (`earliest`; librdkafka also `smallest`, `beginning`).
    Earliest,
    /// Start at the log end offset, seeing only new records (`latest`; librdkafka also `largest`,
    /// `end`). The default, as in the Java client.
    #[default]
    Latest,
    /// Fail instead of guessing (`none`; librdkafka `error`).
    None,
}

impl AutoOffsetReset {
    const EXPECTED: &'static str =
        "earliest, latest or none (or librdkafka's smallest, beginning, largest, end, error)";

    /// The canonical property value: `earliest`, `latest` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earliest => "earliest",
            Self::Latest => "latest",
            Self::None => "none",
        }
    }
}

impl FromStr for AutoOffsetReset {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "earliest" | "smallest" | "beginning" => Ok(Self::Earliest),
            "latest" | "largest" | "end" => Ok(Self::Latest),
            "none" | "error" => Ok(Self::None),
            _ => Err(ParseValueError::new(s, Self::EXPECTED)),
        }
    }
}

/// Which records a consumer may read (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// Every record, including those of open or aborted transactions (`read_uncommitted`). The
    /// default, as in the Java client.
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions, up to the last stable offset (`read_committed`).
    ReadCommitted,
}

impl IsolationLevel {
    const EXPECTED: &'static str = "read_uncommitted or read_committed";

    /// The canonical property value: `read_uncommitted` or `read_committed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadUncommitted => "read_uncommitted",
            Self::ReadCommitted => "read_committed",
        }
    }

    /// The value of the Fetch request's `isolation_level` field.
    pub fn as_i8(self) -> i8 {
        match self {
            Self::ReadUncommitted => 0,
            Self::ReadCommitted => 1,
        }
    }
}

impl FromStr for IsolationLevel {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read_uncommitted" => Ok(Self::ReadUncommitted),
            "read_committed" => Ok(Self::ReadCommitted),
            _ => Err(ParseValueError::new(s, Self::EXPECTED)),
        }
    }
}

/// A partition assignor the consumer offers its group (`partition.assignment.strategy`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentStrategy {
    /// Contiguous partition ranges per topic (`range`, Java `RangeAssignor`). Eager.
    Range,
    /// Partitions dealt out in turn (`roundrobin`, Java `RoundRobinAssignor`). Eager.
    RoundRobin,
    /// Sticky assignment with incremental rebalancing (`cooperative-sticky`, Java
    /// `CooperativeStickyAssignor`).
    CooperativeSticky,
}

impl AssignmentStrategy {
    const EXPECTED: &'static str = "range, roundrobin or cooperative-sticky \
        (or a Java class name such as org.apache.kafka.clients.consumer.RangeAssignor)";

    /// The canonical property value, which is also the protocol name the assignor announces in
    /// JoinGroup: `range`, `roundrobin` or `cooperative-sticky`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::RoundRobin => "roundrobin",
            Self::CooperativeSticky => "cooperative-sticky",
        }
    }
}

impl FromStr for AssignmentStrategy {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        // Java configs name assignor classes; only the simple name matters.
        let name = trimmed
            .strip_prefix("org.apache.kafka.clients.consumer.")
            .unwrap_or(trimmed);
        match name.to_ascii_lowercase().as_str() {
            "range" | "rangeassignor" => Ok(Self::Range),
            "roundrobin" | "roundrobinassignor" => Ok(Self::RoundRobin),
            "cooperative-sticky" | "cooperativestickyassignor" => Ok(Self::CooperativeSticky),
            _ => Err(ParseValueError::new(s, Self::EXPECTED)),
        }
    }
}

/// How many replicas must have a record before the producer counts it as written (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// Do not wait for the broker at all (`0`).
    None,
    /// Wait for the partition leader only (`1`).
    Leader,
    /// Wait for every in-sync replica (`all` or `-1`). The default, as in the Java client, and
    /// required by idempotence.
    #[default]
    All,
}

impl Acks {
    const EXPECTED: &'static str = "0, 1, all or -1";

    /// The canonical property value: `0`, `1` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "0",
            Self::Leader => "1",
            Self::All => "all",
        }
    }

    /// The value of the Produce request's `acks` field.
    pub fn as_i16(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Leader => 1,
            Self::All => -1,
        }
    }
}

impl FromStr for Acks {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "0" => Ok(Self::None),
            "1" => Ok(Self::Leader),
            "all" | "-1" => Ok(Self::All),
            _ => Err(ParseValueError::new(s, Self::EXPECTED)),
        }
    }
}

/// The codec the producer compresses record batches with (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompressionType {
    /// No compression (`none`). The default.
    #[default]
    None,
    /// Gzip (`gzip`).
    Gzip,
    /// Snappy (`snappy`).
    Snappy,
    /// LZ4 frames (`lz4`).
    Lz4,
    /// Zstandard (`zstd`).
    Zstd,
}

impl CompressionType {
    const EXPECTED: &'static str = "none, gzip, snappy, lz4 or zstd";

    /// The canonical property value: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

impl FromStr for CompressionType {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "gzip" => Ok(Self::Gzip),
            "snappy" => Ok(Self::Snappy),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd),
            _ => Err(ParseValueError::new(s, Self::EXPECTED)),
        }
    }
}

macro_rules! display_as_str {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(
    AutoOffsetReset,
    IsolationLevel,
    AssignmentStrategy,
    Acks,
    CompressionType
);
