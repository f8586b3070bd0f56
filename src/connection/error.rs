use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use crate::protocol::{ErrorCode, ProtocolError};

/// Errors of one broker connection.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectionError {
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Broker address.
        addr: String,
        /// The OS error.
        source: Arc<std::io::Error>,
    },
    /// TCP connect or the version handshake took longer than the connect timeout.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// Broker address.
        addr: String,
        /// The configured connect timeout.
        timeout: Duration,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error on connection to {addr}: {source}")]
    Io {
        /// Broker address.
        addr: String,
        /// The OS error.
        source: Arc<std::io::Error>,
    },
    /// The peer closed the connection.
    #[error(
        "{addr} closed the connection with {in_flight} requests in flight and {partial_bytes} bytes of an unfinished frame"
    )]
    PeerClosed {
        /// Broker address.
        addr: String,
        /// Requests that were waiting for a response.
        in_flight: usize,
        /// Bytes of a frame that was cut off (0 if the stream ended between frames).
        partial_bytes: usize,
    },
    /// The peer announced a frame larger than `receive.message.max.bytes`; nothing was allocated.
    #[error(
        "{addr} sent a frame of {size} bytes, more than the maximum of {max} (receive.message.max.bytes)"
    )]
    FrameTooLarge {
        /// Broker address.
        addr: String,
        /// The announced size.
        size: i64,
        /// The configured maximum.
        max: usize,
    },
    /// The peer announced a negative frame size.
    #[error("{addr} sent a negative frame size {size}")]
    NegativeFrameSize {
        /// Broker address.
        addr: String,
        /// The announced size.
        size: i32,
    },
    /// A response carried a correlation id that no request is waiting for.
    #[error("{addr} sent a response with unknown correlation id {correlation_id}")]
    UnknownCorrelationId {
        /// Broker address.
        addr: String,
        /// The id in the response header.
        correlation_id: i32,
    },
    /// No response within the request timeout. The connection is closed, as the Java client does,
    /// since the broker may still act on the request.
    #[error("{api:?} request to {addr} timed out after {timeout:?}")]
    RequestTimeout {
        /// Broker address.
        addr: String,
        /// The request's API.
        api: ApiKey,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection handle was used after its socket task ended without a recorded cause.
    #[error("connection to {addr} is closed")]
    Closed {
        /// Broker address.
        addr: String,
    },
    /// The connection died; this is the shared cause. The request's outcome is unknown.
    #[error("connection poisoned: {0}")]
    Poisoned(Arc<ConnectionError>),
    /// A request needed version negotiation before the handshake ran.
    #[error("API versions of {addr} are not known yet; call handshake() first")]
    NotNegotiated {
        /// Broker address.
        addr: String,
    },
    /// The broker answered the version handshake with an error.
    #[error("{addr} rejected {api:?}: {code}")]
    Broker {
        /// Broker address.
        addr: String,
        /// The request's API.
        api: ApiKey,
        /// The broker's error code.
        code: ErrorCode,
    },
    /// Encoding the request or decoding the response failed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl ConnectionError {
    /// Whether trying again on a new connection may succeed.
    ///
    /// Everything that kills a connection is retriable: the request's outcome is unknown, not
    /// rejected. Version and encoding problems are not.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::ConnectTimeout { .. }
            | Self::Io { .. }
            | Self::PeerClosed { .. }
            | Self::FrameTooLarge { .. }
            | Self::NegativeFrameSize { .. }
            | Self::UnknownCorrelationId { .. }
            | Self::RequestTimeout { .. }
            | Self::Closed { .. }
            | Self::Poisoned(_) => true,
            Self::Broker { code, .. } => code.is_retriable(),
            Self::NotNegotiated { .. } | Self::Protocol(_) => false,
        }
    }

    /// The cause behind a [`Poisoned`](Self::Poisoned) wrapper, or `self`.
    pub fn root(&self) -> &ConnectionError {
        match self {
            Self::Poisoned(cause) => cause.root(),
            other => other,
        }
    }
}
