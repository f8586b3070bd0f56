//! Unit tests of the fetcher's pure parts: session bookkeeping, the aborted-transaction filter,
//! lazy decoding of completed fetches (with crafted batches, including corrupt ones), and the
//! prefetch budget's reservations.

mod budget;
mod completed;
mod session;
