//! [`RecordKey`]: the identity of a record in the journal, binary and displayable.
//!
//! Binary layout (every field fixed or length-prefixed, so two different keys never encode to
//! the same bytes, and the keys of one partition sort by offset):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | tag `0x01` (record key, format 1) |
//! | 2 + n | group id: u16 length (big endian), UTF-8 bytes |
//! | 2 + n | topic name: u16 length, UTF-8 bytes |
//! | 16 | topic id (UUID) |
//! | 4 | partition, big endian with the sign bit flipped |
//! | 8 | offset, big endian with the sign bit flipped |
//!
//! Everything before the offset is the *partition prefix*: a range scan over it yields the
//! partition's entries in offset order.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use super::JournalError;

const TAG_RECORD: u8 = 0x01;

/// The key of one record: (group id, topic, topic id, partition, offset).
///
/// The topic id (a UUID the broker assigns) tells a deleted-and-recreated topic, whose offsets
/// restart at 0, from the old one. The [`Display`](fmt::Display) form is stable:
/// `group/topic/topic-id/partition/offset`, with `%` and `/` in the group id escaped as `%25`
/// and `%2F` (topic names cannot contain either).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    /// The consumer group id.
    pub group: Arc<str>,
    /// The topic name.
    pub topic: Arc<str>,
    /// The topic id.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

/// The part of a [`RecordKey`] without the offset: one partition of one topic incarnation, as
/// seen by one group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// The consumer group id.
    pub group: Arc<str>,
    /// The topic name.
    pub topic: Arc<str>,
    /// The topic id.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
}

impl PartitionKey {
    /// The key of the record at `offset` in this partition.
    pub fn record(&self, offset: i64) -> RecordKey {
        RecordKey {
            group: self.group.clone(),
            topic: self.topic.clone(),
            topic_id: self.topic_id,
            partition: self.partition,
            offset,
        }
    }

    /// The binary prefix every record key of this partition starts with.
    pub fn encode_prefix(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 4 + self.group.len() + self.topic.len() + 20 + 8);
        out.push(TAG_RECORD);
        put_str(&mut out, &self.group);
        put_str(&mut out, &self.topic);
        out.extend_from_slice(self.topic_id.as_bytes());
        out.extend_from_slice(&((self.partition as u32) ^ 0x8000_0000).to_be_bytes());
        out
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.group)?;
        write!(f, "/{}/{}/{}", self.topic, self.topic_id, self.partition)
    }
}

/// The length a group id or topic name may have in a key (u16 length prefix).
const MAX_NAME: usize = u16::MAX as usize;

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Group ids and topic names longer than 65,535 bytes are refused by `RecordKey::check` and
    // by the broker; truncation here never happens for a checked key.
    let len = s.len().min(MAX_NAME);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

fn encode_offset(offset: i64) -> [u8; 8] {
    ((offset as u64) ^ 0x8000_0000_0000_0000).to_be_bytes()
}

/// A record key's partition prefix and offset, without decoding the names (the offset is the
/// last 8 bytes of every record key).
pub(crate) fn split_record_key(key: &[u8]) -> Option<(&[u8], i64)> {
    let at = key.len().checked_sub(8)?;
    let (prefix, offset) = key.split_at(at);
    let raw = u64::from_be_bytes(offset.try_into().ok()?) ^ 0x8000_0000_0000_0000;
    Some((prefix, raw as i64))
}

impl RecordKey {
    /// The partition this record belongs to.
    pub fn partition_key(&self) -> PartitionKey {
        PartitionKey {
            group: self.group.clone(),
            topic: self.topic.clone(),
            topic_id: self.topic_id,
            partition: self.partition,
        }
    }

    /// The binary form (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.partition_key().encode_prefix();
        out.extend_from_slice(&encode_offset(self.offset));
        out
    }

    /// Refuses names that do not fit the binary form.
    pub fn check(group: &str, topic: &str) -> Result<(), JournalError> {
        for (what, s) in [("group id", group), ("topic", topic)] {
            if s.len() > MAX_NAME {
                return Err(JournalError::InvalidKey(format!(
                    "{what} is {} bytes; at most {MAX_NAME} fit a journal key",
                    s.len()
                )));
            }
        }
        Ok(())
    }

    /// Parses the binary form; any deviation is [`JournalError::Corrupt`].
    pub fn decode(bytes: &[u8]) -> Result<Self, JournalError> {
        let corrupt = |why: &str| JournalError::Corrupt {
            what: format!("record key {}", hex(bytes)),
            why: why.to_string(),
        };
        let mut r = Reader { bytes, pos: 0 };
        if r.take(1).ok_or_else(|| corrupt("empty key"))?[0] != TAG_RECORD {
            return Err(corrupt("unknown key tag"));
        }
        let group = r.string().ok_or_else(|| corrupt("bad group id"))?;
        let topic = r.string().ok_or_else(|| corrupt("bad topic name"))?;
        let id = r.take(16).ok_or_else(|| corrupt("truncated topic id"))?;
        let topic_id = Uuid::from_slice(id).map_err(|_| corrupt("bad topic id"))?;
        let p = r.take(4).ok_or_else(|| corrupt("truncated partition"))?;
        let partition = (u32::from_be_bytes(p.try_into().unwrap_or([0; 4])) ^ 0x8000_0000) as i32;
        let o = r.take(8).ok_or_else(|| corrupt("truncated offset"))?;
        let offset =
            (u64::from_be_bytes(o.try_into().unwrap_or([0; 8])) ^ 0x8000_0000_0000_0000) as i64;
        if r.pos != bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Self {
            group: group.into(),
            topic: topic.into(),
            topic_id,
            partition,
            offset,
        })
    }
}

/// The topic name that marks the key of a workflow started directly (not by a record); Kafka
/// topic names cannot contain `#`, so it never collides with a real topic.
pub const DIRECT_TOPIC: &str = "#workflow";

impl RecordKey {
    /// The key of the workflow started directly with id `id`.
    pub fn direct(id: &str) -> Self {
        Self {
            group: id.into(),
            topic: DIRECT_TOPIC.into(),
            topic_id: Uuid::nil(),
            partition: 0,
            offset: 0,
        }
    }

    /// The id, when this is the key of a directly started workflow.
    pub fn direct_id(&self) -> Option<&str> {
        (&*self.topic == DIRECT_TOPIC).then_some(&*self.group)
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.direct_id() {
            Some(id) => write!(f, "workflow/{id}"),
            None => write!(f, "{}/{}", self.partition_key(), self.offset),
        }
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '%' => f.write_str("%25")?,
            '/' => f.write_str("%2F")?,
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(64)];
    let mut s: String = shown.iter().map(|b| format!("{b:02x}")).collect();
    if bytes.len() > shown.len() {
        s.push('…');
    }
    s
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn string(&mut self) -> Option<&'a str> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(group: &str, topic: &str, partition: i32, offset: i64) -> RecordKey {
        RecordKey {
            group: group.into(),
            topic: topic.into(),
            topic_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            partition,
            offset,
        }
    }

    #[test]
    fn display_is_stable_and_escapes_the_group() {
        let k = key("billing/eu%1", "orders", 3, 1234);
        assert_eq!(
            k.to_string(),
            "billing%2Feu%251/orders/01234567-89ab-cdef-0123-456789abcdef/3/1234"
        );
    }

    #[test]
    fn group_and_topic_boundaries_do_not_collide() {
        // ("ab", "c") and ("a", "bc") would collide under plain concatenation.
        assert_ne!(key("ab", "c", 0, 0).encode(), key("a", "bc", 0, 0).encode());
    }

    #[test]
    fn corrupt_keys_are_typed_errors() {
        let good = key("g", "t", 1, 5).encode();
        for cut in 0..good.len() {
            let err = RecordKey::decode(&good[..cut]).unwrap_err();
            assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            RecordKey::decode(&long),
            Err(JournalError::Corrupt { .. })
        ));
        let mut bad_tag = good;
        bad_tag[0] = 9;
        assert!(matches!(
            RecordKey::decode(&bad_tag),
            Err(JournalError::Corrupt { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(group in ".{0,20}", topic in "[a-z._-]{1,20}", p in any::<i32>(), o in any::<i64>()) {
            let k = key(&group, &topic, p, o);
            prop_assert_eq!(RecordKey::decode(&k.encode()).unwrap(), k);
        }

        #[test]
        fn offsets_sort_numerically_within_a_partition(p in any::<i32>(), a in any::<i64>(), b in any::<i64>()) {
            let (ka, kb) = (key("g", "t", p, a).encode(), key("g", "t", p, b).encode());
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            prop_assert!(ka.starts_with(&key("g", "t", p, 0).partition_key().encode_prefix()));
        }
    }
}
