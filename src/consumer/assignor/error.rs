//! Errors of the assignors and the consumer protocol encoding.

use super::TopicPartitions;

fn format_partitions(partitions: &[TopicPartitions]) -> String {
    partitions
        .iter()
        .flat_map(|tp| {
            tp.partitions
                .iter()
                .map(move |p| format!("{}-{p}", tp.topic))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Errors of the assignors and of the consumer protocol's subscription and assignment encoding.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignorError {
    /// Subscription or assignment bytes from another member could not be decoded.
    #[error("malformed consumer protocol {message}: {field}: {reason}")]
    Malformed {
        /// `"subscription"` or `"assignment"`.
        message: &'static str,
        /// The field being read, as the schema names it (`owned_partitions.partitions`).
        field: &'static str,
        /// What is wrong with it.
        reason: Malformed,
    },
    /// A subscription or assignment cannot be encoded at the requested version.
    #[error("cannot encode consumer protocol {message} v{version}: {reason}")]
    Encode {
        /// `"subscription"` or `"assignment"`.
        message: &'static str,
        /// The version asked for.
        version: i16,
        /// Why not.
        reason: String,
    },
    /// A cooperative assignment gives a member partitions that another member still owns and
    /// has to revoke first (see [`check_cooperative`](super::check_cooperative)).
    #[error("cooperative assignment reassigns partitions still owned by other members: {}", format_partitions(.partitions))]
    ReassignedWhileOwned {
        /// The offending partitions, by topic.
        partitions: Vec<TopicPartitions>,
    },
    /// The metadata handed to an assignor has a negative partition count.
    #[error("topic {topic:?} has a negative partition count ({count}) in the metadata")]
    InvalidPartitionCount {
        /// The topic.
        topic: String,
        /// Its count.
        count: i32,
    },
}

/// What is wrong with a field of a malformed subscription or assignment.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The bytes end inside the field.
    #[error("truncated: needs {needed} bytes, {remaining} left")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A string or bytes length larger than the bytes left.
    #[error("length {len} exceeds the {remaining} bytes left")]
    LengthTooLong {
        /// The length read.
        len: usize,
        /// Bytes left after the length.
        remaining: usize,
    },
    /// An array count whose elements cannot fit in the bytes left, even at their smallest.
    #[error(
        "{count} elements cannot fit in the {remaining} bytes left (at least {min_element_size} bytes each)"
    )]
    ArrayTooLong {
        /// The count read.
        count: usize,
        /// Smallest encoding of one element.
        min_element_size: usize,
        /// Bytes left after the count.
        remaining: usize,
    },
    /// A length or count below -1.
    #[error("negative length {0}")]
    NegativeLength(i32),
    /// A null (-1 length) in a field that is not nullable.
    #[error("null in a non-nullable field")]
    UnexpectedNull,
    /// A string that is not UTF-8.
    #[error("not valid UTF-8")]
    InvalidUtf8,
    /// A negative version prefix; versions start at 0.
    #[error("unsupported version {0}")]
    UnsupportedVersion(i16),
}
