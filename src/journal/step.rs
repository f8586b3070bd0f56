//! [`StepRecord`]: a workflow step's checkpoint, and its versioned binary form.
//!
//! Key: the workflow's record key followed by the step's index (u32 big endian), so a
//! workflow's steps sort in order right after its record key, and pruning a range of record keys
//! prunes their steps too.
//!
//! Value, format 1: `version (1) | name length (u16 BE) | name (UTF-8) | output`, where the
//! output is the step's result as serde JSON. A later format adds a new version byte; format 1
//! stays readable (a fixture journal in `testdata/` checks it).

use super::JournalError;
use super::key::hex;

const VERSION: u8 = 1;

/// A recorded step: its name and its serialized output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// The name the workflow gave the step.
    pub name: String,
    /// The output, serde JSON.
    pub output: Vec<u8>,
}

impl StepRecord {
    /// The binary form.
    pub fn encode(&self) -> Vec<u8> {
        let name = &self.name.as_bytes()[..self.name.len().min(u16::MAX as usize)];
        let mut out = Vec::with_capacity(3 + name.len() + self.output.len());
        out.push(VERSION);
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&self.output);
        out
    }

    /// Parses the binary form; `what` names the step for the error.
    pub fn decode(bytes: &[u8], what: impl Fn() -> String) -> Result<Self, JournalError> {
        let corrupt = |why: &str| JournalError::Corrupt {
            what: format!("step {} ({})", what(), hex(bytes)),
            why: why.to_string(),
        };
        match bytes.first() {
            Some(&VERSION) => {}
            Some(v) => {
                return Err(corrupt(&format!(
                    "step format {v} is not known to this version (knows {VERSION})"
                )));
            }
            None => return Err(corrupt("empty")),
        }
        let len = bytes
            .get(1..3)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| corrupt("truncated name length"))?;
        let name = bytes
            .get(3..3 + len)
            .ok_or_else(|| corrupt("truncated name"))?;
        let name = std::str::from_utf8(name)
            .map_err(|_| corrupt("name is not UTF-8"))?
            .to_string();
        Ok(Self {
            name,
            output: bytes[3 + len..].to_vec(),
        })
    }
}

/// The key of step `index` of the workflow whose record key encodes to `record`.
pub fn step_key(record: &[u8], index: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(record.len() + 4);
    k.extend_from_slice(record);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_typed_errors() {
        let s = StepRecord {
            name: "charge card".into(),
            output: br#"{"id":7}"#.to_vec(),
        };
        let bytes = s.encode();
        assert_eq!(StepRecord::decode(&bytes, String::new).unwrap(), s);
        for cut in 0..3 + s.name.len() {
            assert!(matches!(
                StepRecord::decode(&bytes[..cut], String::new),
                Err(JournalError::Corrupt { .. })
            ));
        }
        let mut v2 = bytes;
        v2[0] = 2;
        let e = StepRecord::decode(&v2, || "g/t/id/0/1#0".into()).unwrap_err();
        assert!(e.to_string().contains("step format 2"), "{e}");
    }

    #[test]
    fn step_keys_sort_after_their_record_and_by_index() {
        let rec = [1u8, 2, 3];
        assert!(step_key(&rec, 0).as_slice() > rec.as_slice());
        assert!(step_key(&rec, 1) < step_key(&rec, 2));
        assert!(step_key(&rec, u32::MAX) < vec![1u8, 2, 4]);
    }
}
