//! Wire protocol: request and response framing on top of the `kafka-protocol` message types,
//! broker error codes, and the API versions this client speaks. No I/O happens here.
//!
//! A Kafka frame is a big-endian `i32` size followed by that many bytes. A request frame holds a
//! request header (API key, API version, correlation id, client id) and the request body; a
//! response frame holds a response header (correlation id, plus tagged fields for flexible
//! versions) and the response body.

pub mod error_code;
pub mod guard;
pub mod records;
pub mod versions;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

pub use error_code::{ErrorAction, ErrorCode};
pub use versions::ApiVersionTable;

/// Errors of the protocol layer: a message could not be encoded or decoded.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProtocolError {
    /// A request could not be encoded (a field does not fit the chosen version).
    #[error("cannot encode {api:?} v{version}: {reason}")]
    Encode {
        /// The request's API.
        api: ApiKey,
        /// The version it was encoded at.
        version: i16,
        /// What went wrong.
        reason: String,
    },
    /// A response could not be decoded: malformed or truncated bytes from the broker.
    #[error("malformed {api:?} v{version} response ({len} bytes): {reason}")]
    Decode {
        /// The response's API.
        api: ApiKey,
        /// The version it was decoded at.
        version: i16,
        /// Size of the frame body.
        len: usize,
        /// What went wrong.
        reason: String,
    },
    /// A response failed the bounds pre-check: a length or element count cannot fit in the
    /// bytes that follow it. Caught before the decoder could allocate by that count.
    #[error("malformed {api:?} v{version} response: {source}")]
    Malformed {
        /// The response's API.
        api: ApiKey,
        /// The version it was checked at.
        version: i16,
        /// The offending field.
        source: guard::GuardError,
    },
    /// A response decoded fine but left bytes unread, so its layout did not match the version.
    #[error("{api:?} v{version} response has {trailing} trailing bytes")]
    TrailingBytes {
        /// The response's API.
        api: ApiKey,
        /// The version it was decoded at.
        version: i16,
        /// Bytes left over.
        trailing: usize,
    },
    /// The response frame is shorter than a response header.
    #[error("response frame of {len} bytes is too short for a header")]
    ShortFrame {
        /// Size of the frame body.
        len: usize,
    },
    /// The broker and this client share no version of an API.
    #[error(
        "broker supports {api:?} v{broker_min}..=v{broker_max}, this client v{client_min}..=v{client_max}: no common version"
    )]
    NoCommonVersion {
        /// The API.
        api: ApiKey,
        /// Lowest version the broker supports.
        broker_min: i16,
        /// Highest version the broker supports.
        broker_max: i16,
        /// Lowest version this client supports.
        client_min: i16,
        /// Highest version this client supports.
        client_max: i16,
    },
    /// The broker does not support an API at all.
    #[error("broker does not support {api:?}")]
    UnsupportedApi {
        /// The API.
        api: ApiKey,
    },
    /// A record batch could not be decoded or encoded.
    #[error(transparent)]
    Records(#[from] records::RecordError),
}

/// Returns the [`ApiKey`] of a request type.
pub fn api_key<R: Request>() -> ApiKey {
    // Every `Request` impl in kafka-protocol uses a key from the same generated table.
    ApiKey::try_from(R::KEY).expect("kafka-protocol request types have known API keys")
}

/// Encodes a whole request frame: the `i32` size prefix, the header and the body.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<Bytes, ProtocolError> {
    let api = api_key::<R>();
    let err = |reason: String| ProtocolError::Encode {
        api,
        version,
        reason,
    };
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let header_version = api.request_header_version(version);
    let size = header
        .compute_size(header_version)
        .map_err(|e| err(e.to_string()))?
        .checked_add(
            request
                .compute_size(version)
                .map_err(|e| err(e.to_string()))?,
        )
        .filter(|&s| s <= i32::MAX as usize)
        .ok_or_else(|| ProtocolError::Encode {
            api,
            version,
            reason: "request larger than 2 GiB".into(),
        })?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| err(e.to_string()))?;
    request
        .encode(&mut buf, version)
        .map_err(|e| err(e.to_string()))?;
    debug_assert_eq!(buf.len(), 4 + size);
    Ok(buf.freeze())
}

/// Reads the correlation id at the start of a response frame body (without the size prefix).
///
/// Both response header versions start with it.
pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, ProtocolError> {
    match frame {
        [a, b, c, d, ..] => Ok(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(ProtocolError::ShortFrame { len: frame.len() }),
    }
}

/// Decodes a response frame body (without the size prefix) as the response to `R` at `version`.
///
/// The whole body must be consumed: trailing bytes mean the layout did not match the version.
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, R::Response), ProtocolError> {
    let api = api_key::<R>();
    let len = frame.len();
    let err = |reason: String| ProtocolError::Decode {
        api,
        version,
        len,
        reason,
    };
    let header_version = api.response_header_version(version);
    let header =
        ResponseHeader::decode(&mut frame, header_version).map_err(|e| err(e.to_string()))?;
    // kafka-protocol sizes arrays by the count on the wire before reading them; make sure every
    // count and length fits the frame first.
    guard::check_response_body(api, version, &frame).map_err(|source| {
        ProtocolError::Malformed {
            api,
            version,
            source,
        }
    })?;
    let body = R::Response::decode(&mut frame, version).map_err(|e| err(e.to_string()))?;
    if frame.has_remaining() {
        return Err(ProtocolError::TrailingBytes {
            api,
            version,
            trailing: frame.remaining(),
        });
    }
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};

    #[test]
    fn encoded_request_frame_has_size_prefix_and_header() {
        let client = StrBytes::from_static_str("t");
        let frame = encode_request(&ApiVersionsRequest::default(), 0, 77, &client).unwrap();
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(size, frame.len() - 4);
        assert_eq!(i16::from_be_bytes([frame[4], frame[5]]), 18); // ApiVersions key
        assert_eq!(i16::from_be_bytes([frame[6], frame[7]]), 0);
        assert_eq!(i32::from_be_bytes(frame[8..12].try_into().unwrap()), 77);
    }

    #[test]
    fn truncated_response_is_a_typed_error() {
        // correlation id, then a Metadata v12 body cut short.
        let frame = Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 5]);
        let err = decode_response::<MetadataRequest>(frame, 12).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::Malformed {
                api: ApiKey::Metadata,
                version: 12,
                ..
            }
        ));
    }

    #[test]
    fn short_frame_has_no_correlation_id() {
        assert!(matches!(
            peek_correlation_id(&[0, 1]),
            Err(ProtocolError::ShortFrame { len: 2 })
        ));
        assert_eq!(peek_correlation_id(&[0, 0, 1, 0, 9]).unwrap(), 256);
    }
}
