use crate::connection::ConnectionError;
use crate::protocol::{ErrorAction, ErrorCode, ProtocolError};

/// Errors of the cluster layer.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A connection failed; see [`ConnectionError::is_retriable`].
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// A message could not be encoded or decoded.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// No broker of the bootstrap list or the metadata answered.
    #[error("no broker reachable (tried {}){}", tried.join(", "), last.as_ref().map(|e| format!(": last error: {e}")).unwrap_or_default())]
    NoBrokerReachable {
        /// The addresses tried, in order.
        tried: Vec<String>,
        /// The last connection error.
        last: Option<Box<ClusterError>>,
    },
    /// The metadata names no broker with this node id.
    #[error("no broker with node id {node_id} in the cluster metadata")]
    UnknownBroker {
        /// The node id asked for.
        node_id: i32,
    },
    /// The broker answered with an error code.
    #[error("{context}: {code}{}", message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        /// The error code.
        code: ErrorCode,
        /// What was being done, e.g. `create topic "orders"`.
        context: String,
        /// The broker's error message, when it sent one.
        message: Option<String>,
    },
    /// Something did not happen within its deadline.
    #[error("timed out after {elapsed:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        elapsed: std::time::Duration,
    },
}

impl ClusterError {
    /// Whether retrying the same operation may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connection(e) => e.is_retriable(),
            Self::NoBrokerReachable { .. } | Self::UnknownBroker { .. } => true,
            Self::Broker { code, .. } => match code.action() {
                ErrorAction::Retry
                | ErrorAction::RefreshMetadata
                | ErrorAction::RediscoverCoordinator => true,
                // Group membership is the consumer's business; at this layer it is final.
                ErrorAction::Rejoin | ErrorAction::Fail => false,
            },
            Self::Protocol(_) | Self::Timeout { .. } => false,
        }
    }

    /// The broker error code, if this is a broker error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A broker error with context.
    pub(crate) fn broker(
        code: ErrorCode,
        context: impl Into<String>,
        message: Option<String>,
    ) -> Self {
        Self::Broker {
            code,
            context: context.into(),
            message,
        }
    }
}
