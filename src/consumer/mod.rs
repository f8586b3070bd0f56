//! The consumer: group membership, partition assignors, fetching with sessions, and offsets.
//!
//! Today this holds the [`assignor`] module: the `range`, `roundrobin` and `cooperative-sticky`
//! assignors and the consumer protocol's subscription and assignment encoding, as pure code with
//! no I/O. Group membership, fetching and offsets build on it.

pub mod assignor;
