//! The journal's on-disk decoders, on bytes as a damaged or foreign journal could hold them:
//! byte 0 picks the decoder (record key, record entry, run, step), the rest is the key or value.
//! Each must return a value or `JournalError::Corrupt`, never panic; the error's message (which
//! quotes the bytes) is built too. Whatever decodes must encode back to the same bytes, since
//! every layout is fixed or length-prefixed with no slack.
#![no_main]

use kafka_once::journal::{Entry, RecordKey, Run, StepRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let what = || "g/t/00000000-0000-0000-0000-000000000000/0/0".to_string();
    match selector % 4 {
        0 => match RecordKey::decode(bytes) {
            Ok(key) => {
                assert_eq!(key.encode(), bytes);
                let _ = key.to_string();
                assert_eq!(key.partition_key().record(key.offset), key);
            }
            Err(e) => drop(e.to_string()),
        },
        1 => match Entry::decode(bytes, what) {
            Ok(entry) => assert_eq!(entry.encode(), bytes),
            Err(e) => drop(e.to_string()),
        },
        2 => match Run::decode(bytes, what) {
            Ok(run) => assert_eq!(run.encode(), bytes),
            Err(e) => drop(e.to_string()),
        },
        _ => match StepRecord::decode(bytes, what) {
            Ok(step) => assert_eq!(step.encode(), bytes),
            Err(e) => drop(e.to_string()),
        },
    }
});
