//! Broker error codes.
