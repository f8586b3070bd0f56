//! Fetch session bookkeeping (KIP-227), as pure state: which partitions the broker's session
//! holds, and what the next request must carry.
//!
//! The protocol, from KIP-227:
//!
//! | `session_id` | `session_epoch` | meaning |
//! |---|---|---|
//! | 0 | 0 (`INITIAL`) | full fetch; create a new session |
//! | 0 | -1 (`FINAL`) | full fetch; no session |
//! | X | 0 | close session X, full fetch, create a new session |
//! | X | N > 0 | incremental fetch in session X |
//!
//! "The full fetch request contains all partitions. An incremental fetch request contains only
//! the partitions that were added or changed since the last request; partitions to remove are
//! listed in `forgotten_topics_data`." The broker remembers each session partition's fetch offset
//! as last sent, so a partition whose position moved is "changed" and must be sent again, and a
//! partition that must not be fetched now (paused, data still buffered) has to leave the session,
//! or the broker would keep returning its data. The Java client's `FetchSessionHandler` does the
//! same.
//!
//! The session epoch advances by one with every successful incremental exchange (wrapping from
//! `i32::MAX` to 1). A response with `FETCH_SESSION_ID_NOT_FOUND` or
//! `INVALID_FETCH_SESSION_EPOCH`, any other top-level error, or a failed request ends the session:
//! the next request is full again.

use std::collections::HashMap;

use uuid::Uuid;

use super::TopicPartition;
use crate::protocol::ErrorCode;

/// `session_epoch` of a request that creates a session (full fetch).
pub(crate) const INITIAL_EPOCH: i32 = 0;

/// What the broker's session holds for one partition: the fields of `FetchPartition` as last
/// sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionPartition {
    /// The topic id (nil for brokers before topic ids; requests below v13 send names).
    pub topic_id: Uuid,
    /// Where the fetch starts.
    pub fetch_offset: i64,
    /// The leader epoch from metadata (KIP-320); -1 when unknown.
    pub current_leader_epoch: i32,
    /// `max.partition.fetch.bytes`.
    pub max_bytes: i32,
}

/// The session fields and partitions of the next Fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRequest {
    /// `session_id` to send.
    pub session_id: i32,
    /// `session_epoch` to send.
    pub epoch: i32,
    /// Whether this is a full fetch (every wanted partition is sent).
    pub full: bool,
    /// Partitions to put in `topics`: all of them for a full fetch, the added and changed ones
    /// for an incremental fetch. In the order they were wanted.
    pub to_send: Vec<(TopicPartition, SessionPartition)>,
    /// Partitions to put in `forgotten_topics_data`, with the topic id the session knows.
    pub forgotten: Vec<(TopicPartition, Uuid)>,
}

/// One broker's fetch session, as the client tracks it.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    /// 0 when there is no session.
    session_id: i32,
    /// `INITIAL_EPOCH` when the next request must be full.
    epoch: i32,
    /// What the broker's session holds, after the last successful exchange.
    partitions: HashMap<TopicPartition, SessionPartition>,
    /// What it will hold once the request in flight succeeds.
    pending: Option<HashMap<TopicPartition, SessionPartition>>,
    /// Whether the request in flight is a full fetch.
    pending_full: bool,
}

impl FetchSession {
    /// A client with no session yet: the first request is full.
    pub fn new() -> Self {
        Self::default()
    }

    /// The session id (0 for none).
    #[cfg(test)]
    pub fn session_id(&self) -> i32 {
        self.session_id
    }

    /// The epoch of the next request.
    #[cfg(test)]
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// Number of partitions the broker's session holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.partitions.len()
    }

    /// Builds the next request for `wanted` (the partitions to fetch now, in order) and
    /// remembers it as in flight until [`response_ok`](Self::response_ok) or
    /// [`response_failed`](Self::response_failed).
    pub fn build(&mut self, wanted: Vec<(TopicPartition, SessionPartition)>) -> SessionRequest {
        let next: HashMap<TopicPartition, SessionPartition> = wanted.iter().cloned().collect();
        let full = self.epoch == INITIAL_EPOCH;
        let request = if full {
            SessionRequest {
                session_id: self.session_id,
                epoch: INITIAL_EPOCH,
                full: true,
                to_send: wanted,
                forgotten: Vec::new(),
            }
        } else {
            let mut forgotten: Vec<(TopicPartition, Uuid)> = self
                .partitions
                .iter()
                .filter(|(tp, old)| next.get(*tp).is_none_or(|new| new.topic_id != old.topic_id))
                .map(|(tp, old)| (tp.clone(), old.topic_id))
                .collect();
            forgotten.sort_by(|a, b| a.0.cmp(&b.0));
            let to_send = wanted
                .into_iter()
                .filter(|(tp, new)| self.partitions.get(tp) != Some(new))
                .collect();
            SessionRequest {
                session_id: self.session_id,
                epoch: self.epoch,
                full: false,
                to_send,
                forgotten,
            }
        };
        self.pending = Some(next);
        self.pending_full = full;
        request
    }

    /// The broker answered the request in flight with this top-level error code and session
    /// id. Returns whether the response's partition data can be used.
    pub fn response_ok(&mut self, error: Option<ErrorCode>, response_session_id: i32) -> bool {
        let pending = self.pending.take();
        if let Some(code) = error {
            match code {
                // "The session was evicted or the broker restarted": start from scratch.
                ErrorCode::FetchSessionIdNotFound => self.reset_to_new(),
                // Anything else: close our session and ask for a new one.
                _ => self.close_and_renew(),
            }
            return false;
        }
        let Some(pending) = pending else {
            return true;
        };
        if self.pending_full {
            if response_session_id == 0 {
                // The broker declined to create a session (its cache is full): stay sessionless;
                // the next request is full again and asks once more.
                self.reset_to_new();
            } else {
                self.session_id = response_session_id;
                self.epoch = 1;
                self.partitions = pending;
            }
        } else {
            self.partitions = pending;
            self.epoch = next_epoch(self.epoch);
        }
        true
    }

    /// The request in flight failed without a response (connection error, timeout): its effect
    /// on the broker's session is unknown, so the next request closes it and starts a new one.
    pub fn response_failed(&mut self) {
        self.pending = None;
        self.close_and_renew();
    }

    /// Forces the next request to be full with a fresh session.
    pub fn reset_to_new(&mut self) {
        self.session_id = 0;
        self.epoch = INITIAL_EPOCH;
        self.partitions.clear();
        self.pending = None;
    }

    fn close_and_renew(&mut self) {
        // Session X with epoch 0: "close session X and create a new one" (KIP-227).
        self.epoch = INITIAL_EPOCH;
        self.partitions.clear();
    }
}

/// The epoch after `epoch`: +1, wrapping from `i32::MAX` to 1 (0 and -1 are reserved).
pub(crate) fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}
