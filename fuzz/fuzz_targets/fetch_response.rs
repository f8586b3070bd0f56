//! The Fetch response path: the first byte picks a version (4..=18, every version
//! `kafka-protocol` decodes), the rest is a response body. The body goes through the guard's
//! bounds check, then `FetchResponse::decode`, then every partition's records through
//! `decode_batches`, as the consumer will do it.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use kafka_once::protocol::guard::check_response_body;
use kafka_once::protocol::records::{BatchContext, decode_batches};
use kafka_protocol::messages::{ApiKey, FetchResponse};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;

const MIN_VERSION: i16 = 4;
const MAX_VERSION: i16 = 18;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let span = (MAX_VERSION - MIN_VERSION + 1) as u8;
    let version = MIN_VERSION + i16::from(selector % span);
    // Without the guard, kafka-protocol allocates by unchecked array counts and aborts.
    if check_response_body(ApiKey::Fetch, version, body).is_err() {
        return;
    }
    let Ok(response) = FetchResponse::decode(&mut Bytes::copy_from_slice(body), version) else {
        return;
    };
    for topic in &response.responses {
        let name: Arc<str> = if version >= 13 {
            topic.topic_id.to_string().into()
        } else {
            topic.topic.0.as_str().into()
        };
        for partition in &topic.partitions {
            if let Some(records) = &partition.records {
                let ctx = BatchContext::new(name.clone(), partition.partition_index)
                    .with_max_decompressed(1 << 20);
                let _ = decode_batches(records.clone(), &ctx);
            }
        }
    }
});
