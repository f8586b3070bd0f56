//! The consumer protocol's subscription and assignment encoding; the format and its rules are
//! described in the [parent module](super#the-consumer-protocol-encoding).

use bytes::{BufMut, Bytes, BytesMut};

use super::TopicPartitions;
use super::common::java_cmp;
use super::error::{AssignorError, Malformed};

/// The protocol type of consumer groups in JoinGroup: `"consumer"`.
pub const PROTOCOL_TYPE: &str = "consumer";

/// The newest consumer protocol version this module knows (3: subscriptions carry a rack id).
pub const CONSUMER_PROTOCOL_VERSION: i16 = 3;

const SUBSCRIPTION: &str = "subscription";
const ASSIGNMENT: &str = "assignment";

/// A member's subscription, sent in JoinGroup and given to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The version the subscription was decoded from, as it appeared on the wire (possibly newer
    /// than [`CONSUMER_PROTOCOL_VERSION`]). [`Subscription::encode`] takes its version as an
    /// argument and ignores this field.
    pub version: i16,
    /// The topics the member subscribes to. The Java client sends them sorted.
    pub topics: Vec<String>,
    /// Assignor-specific data; see [`Assignor::subscription_user_data`](super::Assignor::subscription_user_data).
    pub user_data: Option<Bytes>,
    /// Partitions the member owns now (version 1 and later; empty before). Cooperative
    /// assignors keep them where they are when they can. The Java client sends them sorted by
    /// topic and partition, one entry per topic.
    pub owned_partitions: Vec<TopicPartitions>,
    /// The generation in which the member got `owned_partitions` (version 2 and later; -1 when
    /// absent or unknown). When two members claim a partition, the higher generation wins.
    pub generation_id: i32,
    /// The member's `client.rack` (version 3 and later). The Java client sends null when it has
    /// none and reads an empty string as none.
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            version: CONSUMER_PROTOCOL_VERSION,
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

impl Subscription {
    /// A subscription to `topics`, owning nothing, generation -1, at the newest version. The
    /// topics are sorted (in Java's string order) and deduplicated, as the Java client sends them.
    pub fn new(topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        topics.sort_by(|a, b| java_cmp(a, b));
        topics.dedup();
        Subscription {
            topics,
            ..Subscription::default()
        }
    }

    /// Encodes the subscription with its `i16` version prefix.
    ///
    /// Fields the version does not have are left out, as the Java client does (they are all
    /// "ignorable"): `owned_partitions` before 1, `generation_id` before 2, `rack_id` before 3. A
    /// version above [`CONSUMER_PROTOCOL_VERSION`] is written as that version (Java clamps the
    /// same way). Lists are written in the order given. Fails on a negative version, or a string
    /// longer than 32767 bytes.
    pub fn encode(&self, version: i16) -> Result<Bytes, AssignorError> {
        let mut w = Writer::new(SUBSCRIPTION, version)?;
        w.array("topics", &self.topics, |w, topic| w.string("topics", topic))?;
        w.bytes("user_data", self.user_data.as_deref())?;
        if w.version >= 1 {
            w.topic_partitions("owned_partitions", &self.owned_partitions)?;
        }
        if w.version >= 2 {
            w.buf.put_i32(self.generation_id);
        }
        if w.version >= 3 {
            w.nullable_string("rack_id", self.rack_id.as_deref())?;
        }
        Ok(w.finish())
    }

    /// Decodes a subscription with its version prefix; see [the encoding
    /// rules](super#the-consumer-protocol-encoding) for newer versions and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, AssignorError> {
        let mut r = Reader::new(SUBSCRIPTION, bytes);
        let version = r.version()?;
        let topics = r.array("topics", 2, |r| r.string("topics"))?;
        let user_data = r.bytes("user_data")?;
        let owned_partitions = if version >= 1 {
            r.topic_partitions("owned_partitions")?
        } else {
            Vec::new()
        };
        let generation_id = if version >= 2 {
            r.i32("generation_id")?
        } else {
            -1
        };
        let rack_id = if version >= 3 {
            r.nullable_string("rack_id")?
        } else {
            None
        };
        Ok(Subscription {
            version,
            topics,
            user_data,
            owned_partitions,
            generation_id,
            rack_id,
        })
    }
}

/// A member's assignment, computed by the leader and delivered in SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The version the assignment was decoded from, as it appeared on the wire.
    /// [`Assignment::encode`] takes its version as an argument and ignores this field.
    pub version: i16,
    /// The partitions assigned to the member.
    pub partitions: Vec<TopicPartitions>,
    /// Assignor-specific data (none of ours sends any).
    pub user_data: Option<Bytes>,
}

impl Default for Assignment {
    fn default() -> Self {
        Assignment {
            version: CONSUMER_PROTOCOL_VERSION,
            partitions: Vec::new(),
            user_data: None,
        }
    }
}

impl Assignment {
    /// An assignment of `partitions` without user data, at the newest version.
    pub fn new(partitions: Vec<TopicPartitions>) -> Self {
        Assignment {
            partitions,
            ..Assignment::default()
        }
    }

    /// Encodes the assignment with its `i16` version prefix. Versions 0 to 3 share one layout;
    /// a version above [`CONSUMER_PROTOCOL_VERSION`] is written as that version. The Java leader
    /// writes every member's assignment at its newest version (older members read a newer
    /// version with the layout they know). Fails on a negative version or a topic name longer
    /// than 32767 bytes.
    pub fn encode(&self, version: i16) -> Result<Bytes, AssignorError> {
        let mut w = Writer::new(ASSIGNMENT, version)?;
        w.topic_partitions("assigned_partitions", &self.partitions)?;
        w.bytes("user_data", self.user_data.as_deref())?;
        Ok(w.finish())
    }

    /// Decodes an assignment with its version prefix; see [the encoding
    /// rules](super#the-consumer-protocol-encoding) for newer versions and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, AssignorError> {
        let mut r = Reader::new(ASSIGNMENT, bytes);
        let version = r.version()?;
        let partitions = r.topic_partitions("assigned_partitions")?;
        let user_data = r.bytes("user_data")?;
        Ok(Assignment {
            version,
            partitions,
            user_data,
        })
    }
}

struct Writer {
    message: &'static str,
    version: i16,
    buf: BytesMut,
}

impl Writer {
    fn new(message: &'static str, version: i16) -> Result<Self, AssignorError> {
        if version < 0 {
            return Err(AssignorError::Encode {
                message,
                version,
                reason: "versions start at 0".into(),
            });
        }
        let version = version.min(CONSUMER_PROTOCOL_VERSION);
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(version);
        Ok(Writer {
            message,
            version,
            buf,
        })
    }

    fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    fn too_long(&self, field: &str, len: usize, max: usize) -> AssignorError {
        AssignorError::Encode {
            message: self.message,
            version: self.version,
            reason: format!("{field}: length {len} exceeds the maximum {max}"),
        }
    }

    /// A length that must fit in an `i32` (bytes and array lengths).
    fn len_i32(&mut self, field: &str, len: usize) -> Result<(), AssignorError> {
        let len = i32::try_from(len).map_err(|_| self.too_long(field, len, i32::MAX as usize))?;
        self.buf.put_i32(len);
        Ok(())
    }

    fn string(&mut self, field: &str, s: &str) -> Result<(), AssignorError> {
        let len =
            i16::try_from(s.len()).map_err(|_| self.too_long(field, s.len(), i16::MAX as usize))?;
        self.buf.put_i16(len);
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }

    fn nullable_string(&mut self, field: &str, s: Option<&str>) -> Result<(), AssignorError> {
        match s {
            None => {
                self.buf.put_i16(-1);
                Ok(())
            }
            Some(s) => self.string(field, s),
        }
    }

    fn bytes(&mut self, field: &str, b: Option<&[u8]>) -> Result<(), AssignorError> {
        match b {
            None => self.buf.put_i32(-1),
            Some(b) => {
                self.len_i32(field, b.len())?;
                self.buf.put_slice(b);
            }
        }
        Ok(())
    }

    fn array<T>(
        &mut self,
        field: &str,
        items: &[T],
        mut each: impl FnMut(&mut Self, &T) -> Result<(), AssignorError>,
    ) -> Result<(), AssignorError> {
        self.len_i32(field, items.len())?;
        items.iter().try_for_each(|item| each(self, item))
    }

    fn topic_partitions(
        &mut self,
        field: &str,
        topics: &[TopicPartitions],
    ) -> Result<(), AssignorError> {
        self.array(field, topics, |w, tp| {
            w.string(field, &tp.topic)?;
            w.array(field, &tp.partitions, |w, p| {
                w.buf.put_i32(*p);
                Ok(())
            })
        })
    }
}

/// Reads the classic encoding, checking every length against the bytes left before using it.
struct Reader<'a> {
    message: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(message: &'static str, buf: &'a [u8]) -> Self {
        Reader {
            message,
            buf,
            pos: 0,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn error(&self, field: &'static str, reason: Malformed) -> AssignorError {
        AssignorError::Malformed {
            message: self.message,
            field,
            reason,
        }
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], AssignorError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(self.error(
                field,
                Malformed::Truncated {
                    needed: n,
                    remaining,
                },
            ));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], AssignorError> {
        let bytes = self.take(field, N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, AssignorError> {
        self.fixed(field).map(i16::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, AssignorError> {
        self.fixed(field).map(i32::from_be_bytes)
    }

    fn version(&mut self) -> Result<i16, AssignorError> {
        let version = self.i16("version")?;
        if version < 0 {
            return Err(self.error("version", Malformed::UnsupportedVersion(version)));
        }
        Ok(version)
    }

    /// A length prefix: `None` for -1 (null), an error below that.
    fn length(&self, field: &'static str, len: i32) -> Result<Option<usize>, AssignorError> {
        match len {
            -1 => Ok(None),
            len if len < -1 => Err(self.error(field, Malformed::NegativeLength(len))),
            len => Ok(Some(len as usize)),
        }
    }

    /// `len` bytes of a string or bytes field, after checking they are there.
    fn payload(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], AssignorError> {
        let remaining = self.remaining();
        if len > remaining {
            return Err(self.error(field, Malformed::LengthTooLong { len, remaining }));
        }
        self.take(field, len)
    }

    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, AssignorError> {
        let len = self.i16(field)?;
        let Some(len) = self.length(field, i32::from(len))? else {
            return Ok(None);
        };
        let bytes = self.payload(field, len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => Err(self.error(field, Malformed::InvalidUtf8)),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, AssignorError> {
        self.nullable_string(field)?
            .ok_or_else(|| self.error(field, Malformed::UnexpectedNull))
    }

    fn bytes(&mut self, field: &'static str) -> Result<Option<Bytes>, AssignorError> {
        let len = self.i32(field)?;
        let Some(len) = self.length(field, len)? else {
            return Ok(None);
        };
        Ok(Some(Bytes::copy_from_slice(self.payload(field, len)?)))
    }

    /// A non-nullable array whose elements take at least `min_element_size` bytes each.
    fn array<T>(
        &mut self,
        field: &'static str,
        min_element_size: usize,
        mut each: impl FnMut(&mut Self) -> Result<T, AssignorError>,
    ) -> Result<Vec<T>, AssignorError> {
        let count = self.i32(field)?;
        let count = self
            .length(field, count)?
            .ok_or_else(|| self.error(field, Malformed::UnexpectedNull))?;
        // Reserve only what the bytes left can hold: `count` elements of at least
        // `min_element_size` bytes each must fit.
        let remaining = self.remaining();
        if count.saturating_mul(min_element_size) > remaining {
            return Err(self.error(
                field,
                Malformed::ArrayTooLong {
                    count,
                    min_element_size,
                    remaining,
                },
            ));
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(each(self)?);
        }
        Ok(items)
    }

    /// `[topic:string partitions:[int32]]`; `field` is the array's name in the schema.
    fn topic_partitions(
        &mut self,
        field: &'static str,
    ) -> Result<Vec<TopicPartitions>, AssignorError> {
        let (topic_field, partitions_field) = match field {
            "owned_partitions" => ("owned_partitions.topic", "owned_partitions.partitions"),
            _ => (
                "assigned_partitions.topic",
                "assigned_partitions.partitions",
            ),
        };
        // Smallest element: an empty topic name (2) and an empty partition array (4).
        self.array(field, 6, |r| {
            let topic = r.string(topic_field)?;
            let partitions = r.array(partitions_field, 4, |r| r.i32(partitions_field))?;
            Ok(TopicPartitions { topic, partitions })
        })
    }
}
