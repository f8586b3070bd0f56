//! Keyed records land where the Java client's default partitioner puts them.

use kafka_once::producer::partitioner::{murmur2, partition_for_key};
use serde_json::Value;

use crate::golden::unbase64;

/// `testdata/partitioner/murmur2.json` was made by kafka-clients 4.1.1 itself (see
/// `tests/peers/capture partitions`): 150 text and binary keys at several partition counts.
#[test]
fn partitions_match_the_java_default_partitioner() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/partitioner/murmur2.json"
    );
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let keys: Vec<Vec<u8>> = data["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| match (k.get("utf8"), k.get("base64")) {
            (Some(s), _) => s.as_str().unwrap().as_bytes().to_vec(),
            (_, Some(b)) => unbase64(b.as_str().unwrap()),
            _ => panic!("key without utf8 or base64: {k}"),
        })
        .collect();
    assert!(keys.len() >= 100);
    let hashes = data["murmur2"].as_array().unwrap();
    for (key, hash) in keys.iter().zip(hashes) {
        assert_eq!(
            i64::from(murmur2(key)),
            hash.as_i64().unwrap(),
            "murmur2 of {key:?}"
        );
    }
    let mut checked = 0;
    for (count, partitions) in data["partitions"].as_object().unwrap() {
        let count: i32 = count.parse().unwrap();
        for (key, expected) in keys.iter().zip(partitions.as_array().unwrap()) {
            assert_eq!(
                i64::from(partition_for_key(key, count)),
                expected.as_i64().unwrap(),
                "key {key:?} with {count} partitions"
            );
            checked += 1;
        }
    }
    assert!(checked >= 700, "{checked}");
}
