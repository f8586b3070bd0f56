//! Two hand-encoded requests that tell whether a broker is ready: ApiVersions v0 and Metadata v4.
//!
//! Kept free of the crate's protocol layer on purpose: `testing` sits beside the layers and must work even when they
//! are broken.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const API_VERSIONS: i16 = 18;
const METADATA: i16 = 3;
/// Metadata v4 is the oldest version Kafka 4.x still serves (KIP-896) and the newest without tagged fields.
const METADATA_VERSION: i16 = 4;
const CLIENT_ID: &str = "kafka-once-testing";
/// Both responses are a few hundred bytes; refuse anything absurd before allocating.
const MAX_FRAME: usize = 1 << 20;

/// Sends ApiVersions v0 and checks the answer carries our correlation id and error code 0 (NONE).
///
/// Cancel safe: the connection is private to the call.
pub(crate) async fn api_versions(addr: &str, timeout: Duration) -> Result<(), String> {
    let correlation_id = 0x6b6f_0001;
    let body = round_trip(
        addr,
        timeout,
        &request(API_VERSIONS, 0, correlation_id, &[]),
    )
    .await?;
    parse_api_versions(&body, correlation_id)
}

/// Sends Metadata v4 for no topics and returns how many brokers the answer lists (registered and unfenced).
///
/// Cancel safe: the connection is private to the call.
pub(crate) async fn metadata_broker_count(addr: &str, timeout: Duration) -> Result<usize, String> {
    let correlation_id = 0x6b6f_0002;
    // topics: empty array (not null, which would mean all topics); allow_auto_topic_creation: false.
    let body = [0, 0, 0, 0, 0];
    let frame = round_trip(
        addr,
        timeout,
        &request(METADATA, METADATA_VERSION, correlation_id, &body),
    )
    .await?;
    parse_metadata_broker_count(&frame, correlation_id)
}

/// A request frame: length, header v1 (api key, version, correlation id, client id), body.
pub(crate) fn request(api_key: i16, api_version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(10 + CLIENT_ID.len() + body.len());
    header.extend_from_slice(&api_key.to_be_bytes());
    header.extend_from_slice(&api_version.to_be_bytes());
    header.extend_from_slice(&correlation_id.to_be_bytes());
    header.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    header.extend_from_slice(CLIENT_ID.as_bytes());
    header.extend_from_slice(body);
    let mut frame = (header.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&header);
    frame
}

async fn round_trip(addr: &str, timeout: Duration, frame: &[u8]) -> Result<Vec<u8>, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(frame).await?;
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await?;
        let len = i32::from_be_bytes(len);
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_FRAME)
            .ok_or_else(|| {
                std::io::Error::other(format!("response frame length {len} out of range"))
            })?;
        let mut response = vec![0u8; len];
        stream.read_exact(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Response header v0 (correlation id) then `error_code: i16`, …
pub(crate) fn parse_api_versions(frame: &[u8], correlation_id: i32) -> Result<(), String> {
    let rest = check_correlation(frame, correlation_id)?;
    let error_code = rest.get(..2).ok_or("ApiVersions response too short")?;
    match i16::from_be_bytes([error_code[0], error_code[1]]) {
        0 => Ok(()),
        code => Err(format!("ApiVersions error code {code}")),
    }
}

/// Response header v0 (correlation id) then `throttle_time_ms: i32, brokers: [..]` whose count is an `i32`.
pub(crate) fn parse_metadata_broker_count(
    frame: &[u8],
    correlation_id: i32,
) -> Result<usize, String> {
    let rest = check_correlation(frame, correlation_id)?;
    let count = rest.get(4..8).ok_or("Metadata response too short")?;
    let count = i32::from_be_bytes([count[0], count[1], count[2], count[3]]);
    usize::try_from(count).map_err(|_| format!("Metadata response has {count} brokers"))
}

fn check_correlation(frame: &[u8], expected: i32) -> Result<&[u8], String> {
    let (id, rest) = frame
        .split_first_chunk::<4>()
        .ok_or("response shorter than its header")?;
    let id = i32::from_be_bytes(*id);
    if id == expected {
        Ok(rest)
    } else {
        Err(format!("correlation id {id}, expected {expected}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_v0_request_bytes() {
        let frame = request(API_VERSIONS, 0, 7, &[]);
        let mut expected = vec![0, 0, 0, 28, 0, 18, 0, 0, 0, 0, 0, 7, 0, 18];
        expected.extend_from_slice(b"kafka-once-testing");
        assert_eq!(frame, expected);
    }

    #[test]
    fn api_versions_response_checks() {
        assert_eq!(
            parse_api_versions(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0], 7),
            Ok(())
        );
        assert_eq!(
            parse_api_versions(&[0, 0, 0, 7, 0, 35], 7),
            Err("ApiVersions error code 35".into())
        );
        assert!(
            parse_api_versions(&[0, 0, 0, 8, 0, 0], 7)
                .unwrap_err()
                .contains("correlation id 8")
        );
        assert!(parse_api_versions(&[0, 0, 0, 7, 0], 7).is_err());
        assert!(parse_api_versions(&[0, 0], 7).is_err());
    }

    #[test]
    fn metadata_broker_count_is_read() {
        let frame = [0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 3, 0xff];
        assert_eq!(parse_metadata_broker_count(&frame, 9), Ok(3));
        assert!(
            parse_metadata_broker_count(&[0, 0, 0, 9, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 9)
                .is_err()
        );
        assert!(parse_metadata_broker_count(&[0, 0, 0, 9, 0, 0], 9).is_err());
    }
}
