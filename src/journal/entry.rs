//! [`Entry`]: what the journal holds for one record, and its versioned binary form.
//!
//! Layout: `version (1) | tag (1) | attempts (u32 BE) | …`, where `…` is, per tag:
//! `1` started: nothing; `2` completed: finished-at millis (i64 BE); `3` dead-lettered:
//! finished-at millis, then the error as u32 length + UTF-8.

use super::JournalError;
use super::key::hex;

const VERSION: u8 = 1;
const STARTED: u8 = 1;
const COMPLETED: u8 = 2;
const DEAD_LETTERED: u8 = 3;

/// The journal's state for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The workflow started `attempts` times and has not completed.
    Started {
        /// How many attempts began (1 for the first).
        attempts: u32,
    },
    /// The workflow completed; durable once the journal acknowledged it.
    Completed {
        /// The attempt that succeeded.
        attempts: u32,
        /// When it completed, milliseconds since the Unix epoch.
        at_ms: i64,
    },
    /// Every attempt failed and the failure policy copied the record to the dead-letter topic.
    DeadLettered {
        /// How many attempts were made.
        attempts: u32,
        /// When it was dead-lettered, milliseconds since the Unix epoch.
        at_ms: i64,
        /// The last attempt's error.
        error: String,
    },
}

impl Entry {
    /// Whether the record needs no more work: completed or dead-lettered.
    pub fn is_finished(&self) -> bool {
        !matches!(self, Entry::Started { .. })
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        match self {
            Entry::Started { attempts }
            | Entry::Completed { attempts, .. }
            | Entry::DeadLettered { attempts, .. } => *attempts,
        }
    }

    /// A short name for the state: `started`, `completed` or `dead-lettered`.
    pub fn state_name(&self) -> &'static str {
        match self {
            Entry::Started { .. } => "started",
            Entry::Completed { .. } => "completed",
            Entry::DeadLettered { .. } => "dead-lettered",
        }
    }

    /// The binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.push(VERSION);
        match self {
            Entry::Started { attempts } => {
                out.push(STARTED);
                out.extend_from_slice(&attempts.to_be_bytes());
            }
            Entry::Completed { attempts, at_ms } => {
                out.push(COMPLETED);
                out.extend_from_slice(&attempts.to_be_bytes());
                out.extend_from_slice(&at_ms.to_be_bytes());
            }
            Entry::DeadLettered {
                attempts,
                at_ms,
                error,
            } => {
                out.push(DEAD_LETTERED);
                out.extend_from_slice(&attempts.to_be_bytes());
                out.extend_from_slice(&at_ms.to_be_bytes());
                out.extend_from_slice(&(error.len() as u32).to_be_bytes());
                out.extend_from_slice(error.as_bytes());
            }
        }
        out
    }

    /// Parses the binary form; `what` names the key for the error message.
    pub fn decode(bytes: &[u8], what: impl Fn() -> String) -> Result<Self, JournalError> {
        let corrupt = |why: String| JournalError::Corrupt {
            what: format!("entry of {} ({})", what(), hex(bytes)),
            why,
        };
        let [version, tag, rest @ ..] = bytes else {
            return Err(corrupt("shorter than its header".into()));
        };
        if *version != VERSION {
            return Err(corrupt(format!(
                "entry format {version} is not known to this version (knows {VERSION})"
            )));
        }
        let u32_at = |b: &[u8], at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        let i64_at = |b: &[u8], at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
        };
        let attempts = u32_at(rest, 0).ok_or_else(|| corrupt("truncated attempts".into()))?;
        let (entry, used) = match *tag {
            STARTED => (Entry::Started { attempts }, 4),
            COMPLETED => {
                let at_ms = i64_at(rest, 4).ok_or_else(|| corrupt("truncated time".into()))?;
                (Entry::Completed { attempts, at_ms }, 12)
            }
            DEAD_LETTERED => {
                let at_ms = i64_at(rest, 4).ok_or_else(|| corrupt("truncated time".into()))?;
                let len = u32_at(rest, 12).ok_or_else(|| corrupt("truncated error".into()))?;
                let text = rest
                    .get(16..16 + len as usize)
                    .ok_or_else(|| corrupt("truncated error".into()))?;
                let error = std::str::from_utf8(text)
                    .map_err(|_| corrupt("error text is not UTF-8".into()))?
                    .to_string();
                let used = 16 + len as usize;
                (
                    Entry::DeadLettered {
                        attempts,
                        at_ms,
                        error,
                    },
                    used,
                )
            }
            other => return Err(corrupt(format!("unknown entry tag {other}"))),
        };
        if rest.len() != used {
            return Err(corrupt("trailing bytes".into()));
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Entry> {
        vec![
            Entry::Started { attempts: 3 },
            Entry::Completed {
                attempts: 1,
                at_ms: 1_700_000_000_000,
            },
            Entry::DeadLettered {
                attempts: 5,
                at_ms: -1,
                error: "boom: ünïcode".into(),
            },
        ]
    }

    #[test]
    fn round_trip() {
        for e in all() {
            assert_eq!(Entry::decode(&e.encode(), String::new).unwrap(), e);
        }
    }

    #[test]
    fn every_truncation_and_extension_is_a_typed_error() {
        for e in all() {
            let bytes = e.encode();
            for cut in 0..bytes.len() {
                let err = Entry::decode(&bytes[..cut], || "k".into()).unwrap_err();
                assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(matches!(
                Entry::decode(&long, String::new),
                Err(JournalError::Corrupt { .. })
            ));
        }
    }

    #[test]
    fn unknown_version_names_both() {
        let mut bytes = Entry::Started { attempts: 1 }.encode();
        bytes[0] = 9;
        let err = Entry::decode(&bytes, || "g/t/id/0/7".into()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("format 9") && text.contains("g/t/id/0/7"),
            "{text}"
        );
    }
}
