//! The completion map carried in a commit's metadata string: which offsets above the committed
//! one are already finished, so that whoever takes the partition over skips them.
//!
//! Format `ko1:` followed by numbers, each a little-endian base-32 varint written with the URL-safe
//! base-64 alphabet (a character's bit 5 says "more follows", its low 5 bits carry data). The
//! numbers come in pairs, one per run of finished offsets: the gap since the end of the previous
//! run (the first run counts from committed offset + 1, since the committed offset itself is by
//! definition not finished), then the run's length. The version is in the prefix; another prefix
//! (or another client's metadata) is not a map and is ignored.

use std::collections::BTreeMap;

const PREFIX: &str = "ko1:";
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The broker's default `offset.metadata.max.bytes`.
pub const MAX_METADATA: usize = 4096;

fn push_varint(out: &mut String, mut n: u64) {
    while n >= 32 {
        out.push(ALPHABET[(32 | (n & 31)) as usize] as char);
        n >>= 5;
    }
    out.push(ALPHABET[n as usize] as char);
}

/// Encodes the finished offsets `done` (sorted, each above `committed`) as the metadata for a
/// commit of `committed`, in at most `limit` bytes. Returns the string and whether every run fit;
/// when not, the string holds the runs that fit (a prefix: still correct, just less complete).
#[cfg(test)]
pub fn encode(committed: i64, done: impl IntoIterator<Item = i64>, limit: usize) -> (String, bool) {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for o in done {
        match runs.last_mut() {
            Some((_, end)) if *end == o => *end += 1,
            _ => runs.push((o, o + 1)),
        }
    }
    encode_runs(committed, runs, limit)
}

/// As [`encode`], from runs `(start, end)` (end exclusive), sorted and disjoint.
pub fn encode_runs(
    committed: i64,
    runs: impl IntoIterator<Item = (i64, i64)>,
    limit: usize,
) -> (String, bool) {
    // No offset lies above i64::MAX, so a commit there (a coordinator can report it) has no map.
    let Some(mut prev) = committed.checked_add(1) else {
        return (String::new(), true);
    };
    let mut out = String::from(PREFIX);
    for (start, end) in runs {
        // The map speaks only of offsets above the committed one: a run reaching down to it
        // (known finished from the journal at assignment) is clipped, never shifted up.
        let start = start.max(prev);
        if end <= start {
            continue;
        }
        let mut pair = String::new();
        push_varint(&mut pair, (start - prev) as u64);
        push_varint(&mut pair, (end - start) as u64);
        if out.len() + pair.len() > limit {
            return (out, false);
        }
        out.push_str(&pair);
        prev = end;
    }
    if out.len() == PREFIX.len() {
        out.clear();
    }
    (out, true)
}

/// Why a metadata string is not a valid map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid completion map in commit metadata: {0}")]
pub struct MapError(pub String);

/// Decodes the metadata of a commit of `committed` into runs `start → end` (end exclusive). Not
/// a map (another prefix, empty) → `Ok(empty)`; a malformed map → `Err`.
pub fn decode(committed: i64, metadata: &str) -> Result<BTreeMap<i64, i64>, MapError> {
    let mut runs = BTreeMap::new();
    let Some(body) = metadata.strip_prefix(PREFIX) else {
        return Ok(runs);
    };
    let mut numbers = Vec::new();
    let (mut n, mut shift) = (0u64, 0u32);
    for c in body.bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or_else(|| MapError(format!("character {:?}", c as char)))? as u64;
        if shift > 60 {
            return Err(MapError("number too long".into()));
        }
        n |= (v & 31) << shift;
        if v & 32 == 0 {
            numbers.push(n);
            (n, shift) = (0, 0);
        } else {
            shift += 5;
        }
    }
    if shift != 0 || numbers.len() % 2 != 0 {
        return Err(MapError("truncated".into()));
    }
    let mut prev = committed
        .checked_add(1)
        .ok_or_else(|| MapError("offset overflow".into()))?;
    for pair in numbers.chunks(2) {
        let start = i64::try_from(pair[0])
            .ok()
            .and_then(|g| prev.checked_add(g))
            .ok_or_else(|| MapError("offset overflow".into()))?;
        let end = i64::try_from(pair[1])
            .ok()
            .and_then(|l| start.checked_add(l))
            .ok_or_else(|| MapError("offset overflow".into()))?;
        if end == start {
            return Err(MapError("empty run".into()));
        }
        runs.insert(start, end);
        prev = end;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encoding() {
        // committed 10; finished 11, 12, 15 → runs (11,13) (15,16) → gaps 0, 2; lengths 2, 1.
        let (s, fits) = encode(10, [11, 12, 15], MAX_METADATA);
        assert!(fits);
        assert_eq!(s, "ko1:ACCB");
        let runs = decode(10, &s).unwrap();
        assert_eq!(runs, BTreeMap::from([(11, 13), (15, 16)]));
        let mut set = super::super::runs::RunSet::default();
        for (&start, &end) in &runs {
            set.insert_range(start, end);
        }
        assert!(set.contains(12) && !set.contains(13) && !set.contains(10));
    }

    #[test]
    fn runs_at_or_below_the_committed_offset_are_clipped_not_shifted() {
        // Regression: a run starting at the committed offset was encoded one offset higher,
        // claiming an offset finished that was not.
        let (s, fits) = encode(10, [9, 10, 11, 12, 20], MAX_METADATA);
        assert!(fits);
        let runs = decode(10, &s).unwrap();
        assert_eq!(runs, BTreeMap::from([(11, 13), (20, 21)]));
        assert_eq!(encode(10, [8, 9, 10], MAX_METADATA), (String::new(), true));
    }

    /// Regression (found by the `completion_map` fuzz target): `committed + 1` overflowed (a
    /// panic in debug builds) for a committed offset of `i64::MAX`, which an OffsetFetch response
    /// can carry and the runtime then commits again with a map.
    #[test]
    fn committed_offset_i64_max_encodes_an_empty_map_without_overflow() {
        assert_eq!(
            encode_runs(i64::MAX, [(i64::MAX - 5, i64::MAX)], MAX_METADATA),
            (String::new(), true)
        );
        assert_eq!(encode(i64::MAX, [], MAX_METADATA), (String::new(), true));
        assert!(decode(i64::MAX, "").unwrap().is_empty());
    }

    #[test]
    fn nothing_finished_is_empty_metadata() {
        assert_eq!(encode(5, [], MAX_METADATA), (String::new(), true));
        assert!(decode(5, "").unwrap().is_empty());
        assert!(decode(5, "written by the Java client").unwrap().is_empty());
    }

    #[test]
    fn malformed_maps_are_errors() {
        for bad in [
            "ko1:A",
            "ko1:!",
            "ko1:AA",
            "ko1:g",
            "ko1:__________________AA",
        ] {
            assert!(decode(0, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_map_that_does_not_fit_keeps_a_prefix_and_says_so() {
        // Every other offset: one run per finished offset.
        let done: Vec<i64> = (0..5000).map(|i| 1 + 2 * i).collect();
        let (s, fits) = encode(0, done.iter().copied(), MAX_METADATA);
        assert!(!fits);
        assert!(s.len() <= MAX_METADATA);
        let runs = decode(0, &s).unwrap();
        assert!(!runs.is_empty());
        for (&start, &end) in &runs {
            assert_eq!(end, start + 1);
            assert!(done.contains(&start));
        }
    }

    /// The `completion_map` fuzz target's seeds: the committed offset (i64, big endian), then
    /// the metadata string.
    #[test]
    fn completion_map_fuzz_seeds_are_current() {
        let mut files = BTreeMap::new();
        let mut add = |name: &str, committed: i64, metadata: &str| {
            let seed = [&committed.to_be_bytes()[..], metadata.as_bytes()].concat();
            files.insert(format!("{name}.bin"), seed);
        };
        add("small", 10, &encode(10, [11, 12, 15], MAX_METADATA).0);
        let spread: Vec<i64> = (0..40).map(|i| 1_000_003 + i * i * 97).collect();
        add(
            "spread",
            1_000_000,
            &encode(1_000_000, spread, MAX_METADATA).0,
        );
        add(
            "long_run",
            0,
            &encode_runs(0, [(5, 1 << 40)], MAX_METADATA).0,
        );
        add("java_metadata", 42, "written by the Java client");
        add("empty", -1, "");
        crate::fuzz_seeds::check_or_write("completion_map", files);
    }

    proptest! {
        #[test]
        fn round_trip(committed in -1i64..1_000_000, gaps in proptest::collection::vec((1i64..5000, 1i64..300), 0..60)) {
            let mut done = Vec::new();
            let mut at = committed + 1;
            for (gap, len) in gaps {
                at += gap;
                done.extend(at..at + len);
                at += len;
            }
            let (s, fits) = encode(committed, done.iter().copied(), MAX_METADATA);
            prop_assert!(fits);
            let runs = decode(committed, &s).unwrap();
            let back: Vec<i64> = runs.iter().flat_map(|(&a, &b)| a..b).collect();
            prop_assert_eq!(back, done);
        }
    }
}
