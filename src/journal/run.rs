//! [`Run`]: consecutive records of one partition that started, or completed, together.
//!
//! The runtime dispatches the records a fetch delivered for one partition as one unit, and
//! journals the unit with one entry instead of one per record: a started run when the unit begins
//! and a completed run when its records' workflows have succeeded. Runs live in their own
//! keyspaces (`runs.started`, `runs.completed`), keyed by the record key of the run's first
//! offset. A run `[first, end)` covers the records with offsets in it; offsets without a record
//! (transaction markers, compacted records) may lie inside. Completed runs never overlap (a record
//! completes at most once, and a unit holds records received one after another), so the
//! completed run covering an offset, if any, is the last one starting at or before it.
//!
//! Value layout: `version (1) | end offset (i64 BE, exclusive) | attempts (u32 BE) | at millis
//! (i64 BE)`.

use super::JournalError;
use super::key::hex;

const VERSION: u8 = 1;
const LEN: usize = 1 + 8 + 4 + 8;

/// A started or completed run of one partition's records, `[first, end)`; `first` is in the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// One past the run's last offset.
    pub end: i64,
    /// The attempt every record of the run made (started) or succeeded in (completed).
    pub attempts: u32,
    /// When it completed, milliseconds since the Unix epoch (0 for a started run).
    pub at_ms: i64,
}

impl Run {
    /// The binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.end.to_be_bytes());
        out.extend_from_slice(&self.attempts.to_be_bytes());
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        out
    }

    /// Parses the binary form; `what` names the key for the error message.
    pub fn decode(bytes: &[u8], what: impl Fn() -> String) -> Result<Self, JournalError> {
        let corrupt = |why: String| JournalError::Corrupt {
            what: format!("run of {} ({})", what(), hex(bytes)),
            why,
        };
        match bytes.first() {
            None => return Err(corrupt("empty".into())),
            Some(&VERSION) => {}
            Some(v) => {
                return Err(corrupt(format!(
                    "run format {v} is not known to this version (knows {VERSION})"
                )));
            }
        }
        if bytes.len() != LEN {
            return Err(corrupt(format!("{} bytes, not {LEN}", bytes.len())));
        }
        let i64_at = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Ok(Run {
            end: i64_at(1),
            attempts: u32::from_be_bytes(bytes[9..13].try_into().expect("4 bytes")),
            at_ms: i64_at(13),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_damage_is_a_typed_error() {
        let run = Run {
            end: 1 << 40,
            attempts: 3,
            at_ms: 1_700_000_000_000,
        };
        let bytes = run.encode();
        assert_eq!(Run::decode(&bytes, String::new).unwrap(), run);
        for cut in 0..bytes.len() {
            assert!(matches!(
                Run::decode(&bytes[..cut], String::new),
                Err(JournalError::Corrupt { .. })
            ));
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Run::decode(&long, String::new).is_err());
        let mut other = bytes;
        other[0] = 2;
        let err = Run::decode(&other, || "g/t/id/0/5".into()).unwrap_err();
        assert!(err.to_string().contains("format 2"), "{err}");
    }
}
