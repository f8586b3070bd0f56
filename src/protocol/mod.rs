//! Wire protocol: error codes, API versions.

pub mod error_code;
