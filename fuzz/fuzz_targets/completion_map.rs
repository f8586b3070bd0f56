//! The completion map in a commit's metadata string (`dispatch::completion_map`), as read back
//! from the group coordinator by whoever takes a partition over: bytes 0..8 are the committed
//! offset (big endian, any value, though the runtime passes only non-negative ones), the rest
//! the metadata string (invalid UTF-8 is skipped: the protocol decoder never yields it).
//!
//! A map that decodes must describe disjoint, non-empty runs above the committed offset, and
//! encode back (with no size limit) to a string that decodes to the same runs.
#![no_main]

use kafka_once::dispatch::fuzzing::{decode, encode_runs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((committed, metadata)) = data.split_first_chunk::<8>() else {
        return;
    };
    let committed = i64::from_be_bytes(*committed);
    let Ok(metadata) = std::str::from_utf8(metadata) else {
        return;
    };
    let Ok(runs) = decode(committed, metadata) else {
        return;
    };
    let mut previous_end = None;
    for (&start, &end) in &runs {
        assert!(
            start > committed,
            "run {start}..{end} at or below {committed}"
        );
        assert!(end > start, "empty run {start}..{end}");
        if let Some(previous_end) = previous_end {
            assert!(
                start >= previous_end,
                "run {start}..{end} overlaps one ending at {previous_end}"
            );
        }
        previous_end = Some(end);
    }
    let (encoded, fits) = encode_runs(committed, runs.iter().map(|(&s, &e)| (s, e)), usize::MAX);
    assert!(fits);
    assert_eq!(
        decode(committed, &encoded).as_ref(),
        Ok(&runs),
        "{metadata:?} → {encoded:?}"
    );
});
