use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::consumer::fetcher::aborted::{AbortedFilter, BatchFate};
use crate::consumer::fetcher::completed::{CompletedFetch, Step};
use crate::consumer::fetcher::state::Budget;
use crate::consumer::fetcher::{ConsumerError, TopicPartition};
use crate::protocol::records::{
    Compression, ControlRecord, EncodeOptions, RecordError, RecordToEncode, decode_batches,
    encode_batch, encode_control_batch,
};

fn records(n: usize, tag: &str) -> Vec<RecordToEncode> {
    (0..n)
        .map(|i| RecordToEncode {
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(format!("{tag}{i}"))),
            headers: vec![],
        })
        .collect()
}

/// A data batch of `n` records at `base`, from `producer` (-1: none).
fn data(base: i64, n: usize, producer: i64, transactional: bool, tag: &str) -> Bytes {
    encode_batch(
        &records(n, tag),
        &EncodeOptions {
            base_offset: base,
            producer_id: producer,
            producer_epoch: if producer >= 0 { 0 } else { -1 },
            base_sequence: if producer >= 0 { 0 } else { -1 },
            transactional,
            compression: Compression::Lz4,
            partition_leader_epoch: 5,
            ..Default::default()
        },
    )
    .unwrap()
}

fn marker(offset: i64, producer: i64, commit: bool) -> Bytes {
    encode_control_batch(
        &ControlRecord::marker(commit, 0),
        1_700_000_000_000,
        &EncodeOptions {
            base_offset: offset,
            producer_id: producer,
            producer_epoch: 0,
            transactional: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn concat(parts: &[Bytes]) -> Bytes {
    let mut b = BytesMut::new();
    for p in parts {
        b.extend_from_slice(p);
    }
    b.freeze()
}

fn fetch(raw: Bytes, fetch_offset: i64, filter: AbortedFilter, lso: Option<i64>) -> CompletedFetch {
    let budget = Arc::new(Budget::new(1 << 20));
    let charge = budget.charge(0, raw.len());
    CompletedFetch::new(
        TopicPartition::new("t", 0),
        1,
        fetch_offset,
        raw,
        1 << 20,
        filter,
        lso,
        charge,
    )
}

/// Runs a fetch to the end: (values delivered, final position, error if any).
fn drain(mut f: CompletedFetch) -> (Vec<(i64, String)>, i64, Option<ConsumerError>) {
    let mut out = Vec::new();
    loop {
        match f.next() {
            Step::Record(r, after) => {
                assert_eq!(after, f.position);
                assert_eq!(r.leader_epoch, 5);
                out.push((
                    r.offset,
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                ));
            }
            Step::Advance(p) => assert_eq!(p, f.position),
            Step::Error(e) => return (out, f.position, Some(e)),
            Step::Done => return (out, f.position, None),
        }
    }
}

fn values(v: &[(i64, String)]) -> Vec<&str> {
    v.iter().map(|(_, s)| s.as_str()).collect()
}

#[test]
fn read_committed_drops_aborted_transactions_and_markers() {
    // Producer 1: aborted txn at 0..3, abort marker at 3, then a committed txn at 4..6 + marker 6.
    // Producer 2: committed txn at 7..9 + marker 9. Plain data at 10..12.
    let raw = concat(&[
        data(0, 3, 1, true, "a"),
        marker(3, 1, false),
        data(4, 2, 1, true, "c"),
        marker(6, 1, true),
        data(7, 2, 2, true, "d"),
        marker(9, 2, true),
        data(10, 2, -1, false, "p"),
    ]);
    let committed = AbortedFilter::read_committed([(1, 0)]);
    let (got, position, error) = drain(fetch(raw.clone(), 0, committed, None));
    assert!(error.is_none());
    assert_eq!(values(&got), vec!["c0", "c1", "d0", "d1", "p0", "p1"]);
    assert_eq!(position, 12);

    let (got, position, _) = drain(fetch(raw, 0, AbortedFilter::read_uncommitted(), None));
    assert_eq!(
        values(&got),
        vec!["a0", "a1", "a2", "c0", "c1", "d0", "d1", "p0", "p1"]
    );
    assert_eq!(position, 12);
}

#[test]
fn interleaved_producers_only_the_aborted_one_is_dropped() {
    // Producer 1 (aborted) and producer 2 (committed) interleave batches.
    let raw = concat(&[
        data(0, 2, 1, true, "a"),
        data(2, 2, 2, true, "c"),
        data(4, 2, 1, true, "a"),
        marker(6, 1, false),
        data(7, 1, 2, true, "c"),
        marker(8, 2, true),
    ]);
    let (got, position, _) = drain(fetch(raw, 0, AbortedFilter::read_committed([(1, 0)]), None));
    assert_eq!(values(&got), vec!["c0", "c1", "c0"]);
    assert_eq!(
        got.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![2, 3, 7]
    );
    assert_eq!(position, 9);
}

#[test]
fn an_aborted_transaction_listed_later_does_not_drop_earlier_batches() {
    // Producer 1 commits at 0..2 (marker 2), then aborts a second transaction from offset 3.
    let raw = concat(&[
        data(0, 2, 1, true, "c"),
        marker(2, 1, true),
        data(3, 2, 1, true, "a"),
        marker(5, 1, false),
    ]);
    let (got, position, _) = drain(fetch(raw, 0, AbortedFilter::read_committed([(1, 3)]), None));
    assert_eq!(values(&got), vec!["c0", "c1"]);
    assert_eq!(position, 6);
}

#[test]
fn nothing_at_or_after_the_last_stable_offset_is_returned() {
    let raw = concat(&[data(0, 3, -1, false, "x"), data(3, 3, -1, false, "y")]);
    let (got, position, _) = drain(fetch(raw, 0, AbortedFilter::read_committed([]), Some(2)));
    assert_eq!(values(&got), vec!["x0", "x1"]);
    assert_eq!(position, 2, "the position stays at the LSO");
}

#[test]
fn records_before_the_fetch_offset_are_skipped() {
    let raw = data(10, 5, -1, false, "r");
    let (got, position, _) = drain(fetch(raw, 13, AbortedFilter::read_uncommitted(), None));
    assert_eq!(
        got.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![13, 14]
    );
    assert_eq!(position, 15);
}

#[test]
fn a_corrupt_batch_is_an_error_after_the_good_records_and_stops_at_its_offset() {
    let good = data(0, 3, -1, false, "g");
    let mut bad = BytesMut::from(&data(3, 3, -1, false, "b")[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let raw = concat(&[good, bad.freeze(), data(6, 3, -1, false, "n")]);
    let (got, position, error) = drain(fetch(raw, 0, AbortedFilter::read_uncommitted(), None));
    assert_eq!(values(&got), vec!["g0", "g1", "g2"]);
    assert_eq!(position, 3);
    match error {
        Some(ConsumerError::Corrupt {
            offset: 3,
            partition: 0,
            source: RecordError::CrcMismatch { base_offset: 3, .. },
            ..
        }) => {}
        other => panic!("expected a CRC error at offset 3, got {other:?}"),
    }
}

#[test]
fn a_truncated_tail_ends_the_fetch_without_error() {
    let first = data(0, 2, -1, false, "f");
    let second = data(2, 2, -1, false, "s");
    let raw = concat(&[first, second.slice(..second.len() - 5)]);
    let (got, position, error) = drain(fetch(raw, 0, AbortedFilter::read_uncommitted(), None));
    assert!(error.is_none());
    assert_eq!(values(&got), vec!["f0", "f1"]);
    assert_eq!(position, 2);
}

#[test]
fn the_filter_classifies_batches_like_the_java_client() {
    let decoded = decode_batches(
        concat(&[
            data(0, 1, 4, true, "a"),
            marker(1, 4, false),
            data(2, 1, 4, true, "b"),
        ]),
        &crate::protocol::records::BatchContext::new("t", 0),
    )
    .unwrap();
    let mut f = AbortedFilter::read_committed([(4, 0)]);
    let fates: Vec<BatchFate> = decoded
        .batches
        .iter()
        .map(|b| f.classify(&b.header, b.control.as_ref()))
        .collect();
    assert_eq!(
        fates,
        vec![BatchFate::Skip, BatchFate::Skip, BatchFate::Deliver]
    );
}

#[test]
fn charges_are_released_when_the_fetch_is_dropped() {
    let budget = Arc::new(Budget::new(1000));
    let reserved = budget.try_reserve(100, 600).unwrap();
    assert_eq!(reserved, 600);
    assert_eq!(budget.try_reserve(500, 600), None, "only 400 left");
    let charge = budget.charge(reserved, 300);
    assert_eq!(budget.buffered(), 300);
    assert_eq!(budget.try_reserve(700, 1000), Some(700));
    budget.release_reservation(700);
    drop(charge);
    assert_eq!(budget.buffered(), 0);
    assert_eq!(budget.peak(), 300);
}
