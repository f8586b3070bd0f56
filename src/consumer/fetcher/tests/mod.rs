//! Unit tests of the fetcher's pure parts: session bookkeeping, the aborted-transaction filter,
//! and lazy decoding of completed fetches (with crafted batches, including corrupt ones).

mod completed;
mod session;
