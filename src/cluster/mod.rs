//! Broker pool, metadata cache and admin calls.
