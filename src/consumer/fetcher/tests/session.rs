use uuid::Uuid;

use crate::consumer::fetcher::TopicPartition;
use crate::consumer::fetcher::session::{FetchSession, SessionPartition, next_epoch};
use crate::protocol::ErrorCode;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn data(offset: i64) -> SessionPartition {
    SessionPartition {
        topic_id: Uuid::from_u128(7),
        fetch_offset: offset,
        current_leader_epoch: 3,
        max_bytes: 1024,
    }
}

fn wanted(parts: &[(i32, i64)]) -> Vec<(TopicPartition, SessionPartition)> {
    parts.iter().map(|&(p, o)| (tp(p), data(o))).collect()
}

fn names(v: &[(TopicPartition, SessionPartition)]) -> Vec<i32> {
    v.iter().map(|(tp, _)| tp.partition).collect()
}

#[test]
fn first_request_is_full_then_incremental_with_only_changes() {
    let mut s = FetchSession::new();
    let r = s.build(wanted(&[(0, 0), (1, 0), (2, 0)]));
    assert!(r.full);
    assert_eq!((r.session_id, r.epoch), (0, 0));
    assert_eq!(names(&r.to_send), vec![0, 1, 2]);
    assert!(s.response_ok(None, 42));
    assert_eq!((s.session_id(), s.epoch(), s.len()), (42, 1, 3));

    // Nothing changed: an empty incremental request (the broker still fetches the session).
    let r = s.build(wanted(&[(0, 0), (1, 0), (2, 0)]));
    assert!(!r.full);
    assert_eq!((r.session_id, r.epoch), (42, 1));
    assert!(r.to_send.is_empty() && r.forgotten.is_empty());
    assert!(s.response_ok(None, 42));
    assert_eq!(s.epoch(), 2);

    // Partition 1 moved, partition 2 left (buffered or paused), partition 3 is new.
    let r = s.build(wanted(&[(0, 0), (1, 10), (3, 5)]));
    assert_eq!(names(&r.to_send), vec![1, 3]);
    assert_eq!(r.forgotten, vec![(tp(2), Uuid::from_u128(7))]);
    assert_eq!(r.epoch, 2);
    assert!(s.response_ok(None, 42));
    assert_eq!((s.epoch(), s.len()), (3, 3));

    // A leader epoch change is a change too.
    let mut moved = data(0);
    moved.current_leader_epoch = 4;
    let r = s.build(vec![(tp(0), moved), (tp(1), data(10)), (tp(3), data(5))]);
    assert_eq!(names(&r.to_send), vec![0]);
}

#[test]
fn a_new_topic_id_forgets_the_old_one_and_sends_the_new() {
    let mut s = FetchSession::new();
    s.build(wanted(&[(0, 0)]));
    assert!(s.response_ok(None, 9));
    let mut recreated = data(0);
    recreated.topic_id = Uuid::from_u128(8);
    let r = s.build(vec![(tp(0), recreated)]);
    assert_eq!(names(&r.to_send), vec![0]);
    assert_eq!(r.forgotten, vec![(tp(0), Uuid::from_u128(7))]);
}

#[test]
fn session_errors_start_a_new_full_session() {
    for code in [
        ErrorCode::FetchSessionIdNotFound,
        ErrorCode::InvalidFetchSessionEpoch,
    ] {
        let mut s = FetchSession::new();
        s.build(wanted(&[(0, 0), (1, 0)]));
        assert!(s.response_ok(None, 5));
        s.build(wanted(&[(0, 3), (1, 0)]));
        assert!(!s.response_ok(Some(code), 0));
        let r = s.build(wanted(&[(0, 3), (1, 0)]));
        assert!(r.full, "{code:?}");
        assert_eq!(r.epoch, 0);
        assert_eq!(names(&r.to_send), vec![0, 1]);
        // Not found: a brand-new session; invalid epoch: close session 5 and open a new one.
        let expected_id = if code == ErrorCode::FetchSessionIdNotFound {
            0
        } else {
            5
        };
        assert_eq!(r.session_id, expected_id, "{code:?}");
        assert!(s.response_ok(None, 6));
        assert_eq!((s.session_id(), s.epoch()), (6, 1));
    }
}

#[test]
fn a_failed_request_closes_the_session_and_the_next_is_full() {
    let mut s = FetchSession::new();
    s.build(wanted(&[(0, 0)]));
    assert!(s.response_ok(None, 5));
    s.build(wanted(&[(0, 1)]));
    s.response_failed();
    let r = s.build(wanted(&[(0, 1)]));
    assert!(r.full);
    assert_eq!((r.session_id, r.epoch), (5, 0));
}

#[test]
fn a_broker_without_session_slots_keeps_getting_full_requests() {
    let mut s = FetchSession::new();
    s.build(wanted(&[(0, 0)]));
    assert!(s.response_ok(None, 0));
    let r = s.build(wanted(&[(0, 4)]));
    assert!(r.full);
    assert_eq!((r.session_id, r.epoch), (0, 0));
}

#[test]
fn epochs_wrap_to_one() {
    assert_eq!(next_epoch(1), 2);
    assert_eq!(next_epoch(i32::MAX), 1);
}
