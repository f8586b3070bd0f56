//! One broker connection.
