//! The bytes a broker socket delivers, as the connection's socket task reads them: arbitrary
//! chunks appended to the read buffer, complete frames split off by their `i32` size prefix
//! (`next_frame`), the correlation id peeked from each, and the frame decoded as an ApiVersions
//! response the way the handshake does (at the version it asked for, then as v0 when that fails,
//! per KIP-511), with the version table built from it.
//!
//! Input: byte 0 picks the frame size limit, byte 1 the read chunk size, byte 2 the ApiVersions
//! version asked for; the rest is the byte stream. Besides "never panic", the read buffer must
//! never grow past what the size limit allows.
#![no_main]

use bytes::BytesMut;
use kafka_once::connection::fuzzing::{READ_CHUNK, decode_api_versions, next_frame};
use kafka_once::protocol::versions::client_range;
use kafka_once::protocol::{ApiVersionTable, peek_correlation_id};
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

/// Frame size limits to try: tiny ones make the limit check reachable, the last is the default
/// (`receive.message.max.bytes`).
const LIMITS: [usize; 6] = [0, 4, 100, 4096, 1 << 20, 100 * 1024 * 1024 + 512];

fuzz_target!(|data: &[u8]| {
    let [limit, chunk, version, stream @ ..] = data else {
        return;
    };
    let max_frame_size = LIMITS[usize::from(*limit) % LIMITS.len()];
    let chunk = usize::from(*chunk) + 1;
    let asked = *version as i16 % (client_range(ApiKey::ApiVersions).max + 1);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let next = next_frame(&mut buf, max_frame_size);
            // The buffer holds at most one frame being read plus a read chunk; Vec-style
            // doubling on growth allows twice that.
            let bound = 2 * (4 + max_frame_size + READ_CHUNK);
            assert!(
                buf.capacity() <= bound,
                "read buffer of {} bytes for a {max_frame_size}-byte limit",
                buf.capacity()
            );
            match next {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max_frame_size);
                    if peek_correlation_id(&frame).is_err() {
                        return;
                    }
                    let response = match decode_api_versions(frame.clone(), asked) {
                        Ok(r) => Some(r),
                        Err(_) if asked > 0 => decode_api_versions(frame, 0).ok(),
                        Err(_) => None,
                    };
                    if let Some(response) = response {
                        let table = ApiVersionTable::from_response(&response);
                        for k in &response.api_keys {
                            if let Ok(api) = ApiKey::try_from(k.api_key) {
                                let _ = table.negotiate(api);
                            }
                        }
                    }
                }
                Ok(None) => break,
                // The connection is poisoned; nothing more is read.
                Err(_) => return,
            }
        }
    }
});
