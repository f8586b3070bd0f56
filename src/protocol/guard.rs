//! A bounds check for response bodies, run before `kafka-protocol` decodes them.
//!
//! `kafka-protocol` decodes an array by reading its element count from the wire and calling
//! `Vec::with_capacity(count)` before reading a single element, so a corrupt or hostile count such
//! as `0x7fffffff` makes it try to allocate `count * size_of::<T>()` bytes and the process aborts.
//! [`check_response_body`] walks the body with a schema of the response, allocating nothing, and
//! verifies that every array count, string length and bytes length fits in the bytes that remain.
//!
//! Once it passes, every array of `count` elements spans at least `count` times its element's
//! smallest encoding, so the decoder reserves at most the array's own bytes times
//! `size_of::<T>() / smallest encoding` (about 50 at worst, for a struct of a few compact strings);
//! the total stays linear in the body size.
//!
//! The walk reads the bytes exactly as the decoder will, so the two cannot disagree about where a
//! length is:
//!
//! - Classic (non-flexible) versions: `i16` string length, `i32` bytes length and array count,
//!   with -1 meaning null.
//! - Flexible versions: the same as an unsigned varint holding length + 1 (0 meaning null), and a
//!   tagged-field section at the end of every struct: a varint count, then per field a varint tag,
//!   a varint size and the value. Unknown tags are skipped by their size. Known tags are walked as
//!   their type, because that is how the decoder reads them: it ignores the size and decodes the
//!   value in place, `Vec::with_capacity` included.
//! - Varints are read like `kafka-protocol` reads them: at most 5 bytes, excess bits dropped.
//!
//! Responses this module has no schema for pass unchecked (see [`is_covered`]).

mod schema;
#[cfg(test)]
mod tests;

use std::fmt;

use kafka_protocol::messages::ApiKey;

use schema::{Field, Kind, Message};

/// Deepest nesting the walk tracks for error paths; the covered schemas nest at most four levels.
const MAX_DEPTH: usize = 8;

/// Where in a response an error was found: field names from the top-level struct down, as
/// `kafka-protocol` names them (`topics.partitions.replica_nodes`). Elements of an array share
/// the array's path; `_tagged_fields` stands for a struct's tagged-field section.
#[derive(Clone, PartialEq, Eq)]
pub struct FieldPath(Box<[&'static str]>);

impl FieldPath {
    /// The field names, outermost first.
    pub fn segments(&self) -> &[&'static str] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<body>");
        }
        for (i, segment) in self.segments().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(segment)?;
        }
        Ok(())
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// The walk's position in the schema, kept without allocating; errors copy it into a
/// [`FieldPath`].
#[derive(Clone, Copy)]
struct PathStack {
    segments: [&'static str; MAX_DEPTH],
    len: usize,
}

impl PathStack {
    const ROOT: PathStack = PathStack {
        segments: [""; MAX_DEPTH],
        len: 0,
    };

    fn push(&mut self, name: &'static str) {
        // The schemas are shallower than MAX_DEPTH (a test checks it); were one deeper, error
        // paths would just lose their innermost names.
        if self.len < MAX_DEPTH {
            self.segments[self.len] = name;
        }
        self.len += 1;
    }

    fn pop(&mut self) {
        self.len -= 1;
    }

    fn snapshot(&self) -> FieldPath {
        FieldPath(self.segments[..self.len.min(MAX_DEPTH)].into())
    }

    fn child(mut self, name: &'static str) -> FieldPath {
        self.push(name);
        self.snapshot()
    }
}

/// A response body that would make the decoder allocate by an unchecked length, or that cannot
/// be a valid body for its API and version.
///
/// The errors carry the field path but not the API and version; the caller knows those.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    /// An array count larger than the remaining bytes could hold, even with every element at
    /// its smallest encoding.
    #[error(
        "{field}: array of {count} elements cannot fit in the {remaining} bytes left (at least {min_element_size} bytes each)"
    )]
    ArrayTooLong {
        /// The array field.
        field: FieldPath,
        /// The element count read from the wire.
        count: u64,
        /// Smallest encoding of one element at this version.
        min_element_size: usize,
        /// Bytes left in the body after the count.
        remaining: usize,
    },
    /// A string, bytes or tagged-field length larger than the remaining bytes.
    #[error("{field}: length {len} exceeds the {remaining} bytes left")]
    LengthTooLong {
        /// The field.
        field: FieldPath,
        /// The length read from the wire.
        len: u64,
        /// Bytes left in the body after the length.
        remaining: usize,
    },
    /// A length or count below -1.
    #[error("{field}: negative length {len}")]
    NegativeLength {
        /// The field.
        field: FieldPath,
        /// The length read from the wire.
        len: i32,
    },
    /// A null where this version does not allow one.
    #[error("{field}: null, but the field is not nullable at this version")]
    UnexpectedNull {
        /// The field.
        field: FieldPath,
    },
    /// A tagged field this version does not define, under a tag the decoder knows from other
    /// versions (so it rejects it rather than skipping it).
    #[error("{field}: tagged field {tag} is not valid at this version")]
    UnexpectedTag {
        /// The tagged field.
        field: FieldPath,
        /// Its tag.
        tag: u32,
    },
    /// The body ends inside this field.
    #[error("{field}: body ends inside this field")]
    Truncated {
        /// The field being read.
        field: FieldPath,
    },
}

impl GuardError {
    /// The field the error is about.
    pub fn field(&self) -> &FieldPath {
        match self {
            GuardError::ArrayTooLong { field, .. }
            | GuardError::LengthTooLong { field, .. }
            | GuardError::NegativeLength { field, .. }
            | GuardError::UnexpectedNull { field }
            | GuardError::UnexpectedTag { field, .. }
            | GuardError::Truncated { field } => field,
        }
    }
}

/// Whether [`check_response_body`] has a schema for this response.
///
/// Covered: every version `kafka-protocol` decodes of ApiVersions, Metadata, CreateTopics,
/// DeleteTopics, Produce, Fetch, ListOffsets, FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
/// LeaveGroup, OffsetCommit, OffsetFetch, InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
/// EndTxn, TxnOffsetCommit, DescribeGroups, ListGroups, OffsetForLeaderEpoch, DescribeConfigs,
/// CreatePartitions and DeleteRecords.
pub fn is_covered(api: ApiKey, version: i16) -> bool {
    schema::lookup(api).is_some_and(|m| m.versions.contains(version))
}

/// Checks that decoding `body` as the `api` response at `version` allocates nothing sized by an
/// unchecked length.
///
/// `body` is the response after its header. Every array count must satisfy
/// `count * smallest element encoding <= bytes left`, and every string and bytes length must be
/// at most the bytes left; nested arrays and the arrays inside known tagged fields are checked
/// element by element. Trailing bytes after the body are not an error here (the decoder reports
/// them).
///
/// Fails open: a response that is not covered (see [`is_covered`]) returns `Ok(())`.
pub fn check_response_body(api: ApiKey, version: i16, body: &[u8]) -> Result<(), GuardError> {
    walk_body(api, version, body, &mut ()).map(|_| ())
}

/// Walks `body` and returns how many bytes the response occupies, or `None` if not covered.
fn walk_body<V: Visit>(
    api: ApiKey,
    version: i16,
    body: &[u8],
    visit: &mut V,
) -> Result<Option<usize>, GuardError> {
    let Some(message) = schema::lookup(api).filter(|m| m.versions.contains(version)) else {
        return Ok(None);
    };
    let mut walker = Walker::new(message, version, body, visit);
    walker.walk_struct(message.fields)?;
    Ok(Some(walker.pos))
}

/// Observes the walk; tests use it to find every length prefix in an encoded response.
trait Visit {
    /// The length or count prefix of a string, bytes or array (`kind`) occupies `body[start..end]`.
    fn length_prefix(&mut self, _start: usize, _end: usize, _path: &PathStack, _kind: &Kind) {}
}

impl Visit for () {}

/// Name of the pseudo-field for a struct's tagged-field section in error paths.
const TAGGED_FIELDS: &str = "_tagged_fields";

struct Walker<'a, V> {
    body: &'a [u8],
    pos: usize,
    version: i16,
    flexible: bool,
    path: PathStack,
    visit: &'a mut V,
}

impl<'a, V: Visit> Walker<'a, V> {
    fn new(message: &Message, version: i16, body: &'a [u8], visit: &'a mut V) -> Self {
        Walker {
            body,
            pos: 0,
            version,
            flexible: message.is_flexible(version),
            path: PathStack::ROOT,
            visit,
        }
    }

    fn remaining(&self) -> usize {
        self.body.len() - self.pos
    }

    fn truncated(&self) -> GuardError {
        GuardError::Truncated {
            field: self.path.snapshot(),
        }
    }

    fn skip(&mut self, n: usize) -> Result<(), GuardError> {
        if n > self.remaining() {
            return Err(self.truncated());
        }
        self.pos += n;
        Ok(())
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], GuardError> {
        let bytes = self
            .body
            .get(self.pos..self.pos + N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or_else(|| self.truncated())?;
        self.pos += N;
        Ok(bytes)
    }

    fn i16(&mut self) -> Result<i16, GuardError> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, GuardError> {
        self.take().map(i32::from_be_bytes)
    }

    /// An unsigned varint, read as `kafka-protocol`'s `UnsignedVarInt` reads it: up to five
    /// bytes, stopping at the first without the continuation bit, bits past 32 dropped.
    fn uvarint(&mut self) -> Result<u32, GuardError> {
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.take::<1>()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    fn walk_struct(&mut self, fields: &'static [Field]) -> Result<(), GuardError> {
        let version = self.version;
        for field in fields
            .iter()
            .filter(|f| f.tag.is_none() && f.versions.contains(version))
        {
            self.walk_field(field)?;
        }
        if self.flexible {
            self.walk_tagged_fields(fields)?;
        }
        Ok(())
    }

    fn walk_field(&mut self, field: &'static Field) -> Result<(), GuardError> {
        self.path.push(field.name);
        self.walk_kind(&field.kind, field.nullable.contains(self.version))?;
        self.path.pop();
        Ok(())
    }

    /// "Tagged fields": an unsigned varint count, then per field an unsigned varint tag, an
    /// unsigned varint size and the value.
    fn walk_tagged_fields(&mut self, fields: &'static [Field]) -> Result<(), GuardError> {
        self.path.push(TAGGED_FIELDS);
        let count = self.uvarint()?;
        // Each field takes at least two bytes (tag and size), so the loop ends with the body.
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()?;
            match fields.iter().find(|f| f.tag == Some(tag)) {
                Some(field) if field.versions.contains(self.version) => {
                    // The decoder reads a known tagged field in place and ignores `size`.
                    self.path.pop();
                    self.walk_field(field)?;
                    self.path.push(TAGGED_FIELDS);
                }
                Some(field) => {
                    self.path.pop();
                    return Err(GuardError::UnexpectedTag {
                        field: self.path.child(field.name),
                        tag,
                    });
                }
                None => self.skip_len(u64::from(size))?,
            }
        }
        self.path.pop();
        Ok(())
    }

    fn walk_kind(&mut self, kind: &'static Kind, nullable: bool) -> Result<(), GuardError> {
        match kind {
            Kind::Fixed(size) => self.skip(*size),
            Kind::Str | Kind::Bytes => match self.length(kind)? {
                None => self.null(nullable),
                Some(len) => self.skip_len(len),
            },
            Kind::Struct(fields) => self.walk_struct(fields),
            Kind::Array(element) => match self.length(kind)? {
                None => self.null(nullable),
                Some(count) => self.walk_array(element, count),
            },
        }
    }

    /// Reads the length (or count) prefix of a string, bytes or array; `None` for null.
    fn length(&mut self, kind: &Kind) -> Result<Option<u64>, GuardError> {
        let start = self.pos;
        let len = if self.flexible {
            // COMPACT_STRING / COMPACT_BYTES / COMPACT_ARRAY: "length N + 1 as an UNSIGNED_VARINT";
            // 0 is null.
            self.uvarint()?.checked_sub(1).map(u64::from)
        } else {
            // STRING: INT16 length; BYTES and ARRAY: INT32 length. -1 is null.
            let len = match kind {
                Kind::Str => i32::from(self.i16()?),
                _ => self.i32()?,
            };
            match len {
                -1 => None,
                len if len < -1 => {
                    return Err(GuardError::NegativeLength {
                        field: self.path.snapshot(),
                        len,
                    });
                }
                len => Some(len as u64),
            }
        };
        self.visit.length_prefix(start, self.pos, &self.path, kind);
        Ok(len)
    }

    fn null(&self, nullable: bool) -> Result<(), GuardError> {
        if nullable {
            Ok(())
        } else {
            Err(GuardError::UnexpectedNull {
                field: self.path.snapshot(),
            })
        }
    }

    /// Skips `len` bytes of a string, bytes or unknown tagged field.
    fn skip_len(&mut self, len: u64) -> Result<(), GuardError> {
        let remaining = self.remaining();
        if len > remaining as u64 {
            return Err(GuardError::LengthTooLong {
                field: self.path.snapshot(),
                len,
                remaining,
            });
        }
        self.skip(len as usize)
    }

    fn walk_array(&mut self, element: &'static Kind, count: u64) -> Result<(), GuardError> {
        // The decoder reserves `count` elements before reading any; allow only counts whose
        // smallest possible encoding fits in what is left.
        let min_element_size = self.min_size(element).max(1);
        let remaining = self.remaining();
        if count.saturating_mul(min_element_size as u64) > remaining as u64 {
            return Err(GuardError::ArrayTooLong {
                field: self.path.snapshot(),
                count,
                min_element_size,
                remaining,
            });
        }
        if let Kind::Fixed(size) = element {
            // Checked above: count * size <= remaining.
            return self.skip(count as usize * size);
        }
        for _ in 0..count {
            self.walk_kind(element, false)?;
        }
        Ok(())
    }

    /// Smallest encoding of `kind` at this version: scalars by size, strings, bytes and arrays by
    /// their length prefix, structs by their fields plus the tagged-field count.
    fn min_size(&self, kind: &Kind) -> usize {
        min_size(kind, self.version, self.flexible)
    }
}

fn min_size(kind: &Kind, version: i16, flexible: bool) -> usize {
    match kind {
        Kind::Fixed(size) => *size,
        Kind::Str if !flexible => 2,
        Kind::Bytes | Kind::Array(_) if !flexible => 4,
        Kind::Str | Kind::Bytes | Kind::Array(_) => 1,
        Kind::Struct(fields) => {
            let inline: usize = fields
                .iter()
                .filter(|f| f.tag.is_none() && f.versions.contains(version))
                .map(|f| min_size(&f.kind, version, flexible))
                .sum();
            inline + usize::from(flexible)
        }
    }
}
