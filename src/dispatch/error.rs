//! Errors of the exactly-once runtime.

use std::sync::Arc;

use crate::cluster::ClusterError;
use crate::config::ConfigError;
use crate::consumer::group::GroupError;
use crate::journal::JournalError;
use crate::producer::ProducerError;

/// Why the runtime could not start or had to stop.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The journal failed (open, a write, an fsync): nothing past durable data was committed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Group membership failed for good (for example FENCED_INSTANCE_ID).
    #[error(transparent)]
    Group(Arc<GroupError>),
    /// The dead-letter producer failed to start.
    #[error(transparent)]
    Producer(Arc<ProducerError>),
    /// A cluster call failed.
    #[error(transparent)]
    Cluster(Arc<ClusterError>),
    /// The configuration does not suit the runtime.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
    /// A setting of the client configuration is invalid.
    #[error(transparent)]
    ClientConfig(#[from] ConfigError),
}

impl From<GroupError> for DispatchError {
    fn from(e: GroupError) -> Self {
        DispatchError::Group(Arc::new(e))
    }
}

impl From<ProducerError> for DispatchError {
    fn from(e: ProducerError) -> Self {
        DispatchError::Producer(Arc::new(e))
    }
}

impl From<ClusterError> for DispatchError {
    fn from(e: ClusterError) -> Self {
        DispatchError::Cluster(Arc::new(e))
    }
}

/// The error a workflow returns: anything that converts into a boxed error.
pub type WorkflowError = Box<dyn std::error::Error + Send + Sync + 'static>;
