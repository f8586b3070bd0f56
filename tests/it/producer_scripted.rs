//! The idempotent producer against the scripted broker of `fake_broker`: rejected, lost and cut
//! requests that a real broker will not produce on demand. No real Kafka is needed.
//!
//! Every test sends one record per batch (`batch.size=1`, `linger.ms=0`) to partition 0, so the
//! n-th record of a producer epoch carries sequence n, and a rule can aim at one batch.

use std::future::Future;
use std::time::Duration;

use kafka_once::config::ClientConfig;
use kafka_once::producer::{
    DeliveryFuture, Producer, ProducerError, ProducerRecord, RecordMetadata,
};

use crate::fake_broker::{
    FIRST_PRODUCER_ID, FakeBroker, Fault, INVALID_RECORD, InitMode, InitSeen, MESSAGE_TOO_LARGE,
    NOT_LEADER_OR_FOLLOWER, OUT_OF_ORDER_SEQUENCE_NUMBER, Outcome, Script, Trigger,
    UNKNOWN_PRODUCER_ID, describe,
};

const TOPIC: &str = "scripted";
/// Upper bound of any step of a test; a hang fails instead of blocking the run.
const DEADLINE: Duration = Duration::from_secs(15);

fn config(fake: &FakeBroker) -> ClientConfig {
    ClientConfig::builder()
        .bootstrap_servers([fake.addr()])
        .linger(Duration::ZERO)
        .batch_size(1)
        .max_in_flight(5)
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(50))
        .reconnect_backoff(Duration::from_millis(10))
        .reconnect_backoff_max(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(5))
        .delivery_timeout(Duration::from_secs(10))
        .build()
        .expect("valid config")
}

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no progress within {DEADLINE:?}"))
}

async fn producer(fake: &FakeBroker) -> Producer {
    let producer = within("Producer::new", Producer::new(config(fake)))
        .await
        .expect("producer starts");
    assert_eq!(producer.producer_id(), (FIRST_PRODUCER_ID, 0));
    producer
}

fn value(i: usize) -> String {
    format!("r{i}")
}

fn values(range: impl IntoIterator<Item = usize>) -> Vec<String> {
    range.into_iter().map(value).collect()
}

/// Queues records `range` to partition 0, in order.
async fn send(producer: &Producer, range: std::ops::Range<usize>) -> Vec<DeliveryFuture> {
    let mut deliveries = Vec::new();
    for i in range {
        let record = ProducerRecord::new(TOPIC, value(i)).partition(0);
        deliveries.push(within("send", producer.send(record)).await.expect("queued"));
    }
    deliveries
}

/// Waits for every delivery; on a hang, fails with the producer's and the broker's view.
async fn settle(
    producer: &Producer,
    fake: &FakeBroker,
    deliveries: Vec<DeliveryFuture>,
) -> Vec<Result<RecordMetadata, ProducerError>> {
    let all = async {
        let mut out = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            out.push(d.await);
        }
        out
    };
    match tokio::time::timeout(DEADLINE, all).await {
        Ok(results) => results,
        Err(_) => panic!(
            "deliveries not settled within {DEADLINE:?}\nproducer:\n{}\nbroker saw:\n{}",
            producer.debug_state(),
            describe(&fake.seen())
        ),
    }
}

/// Sends record 0 and waits for its acknowledgement, so the partition has an acked batch and
/// the producer pipelines from then on.
async fn first_ack(producer: &Producer, fake: &FakeBroker) {
    let first = settle(producer, fake, send(producer, 0..1).await).await;
    assert_eq!(first[0].as_ref().expect("record 0 delivered").offset, 0);
}

fn assert_offsets(results: &[Result<RecordMetadata, ProducerError>], first: usize) {
    for (i, r) in results.iter().enumerate() {
        let meta = r
            .as_ref()
            .unwrap_or_else(|e| panic!("record {}: {e}", first + i));
        assert_eq!(
            meta.offset,
            (first + i) as i64,
            "offset of record {}",
            first + i
        );
        assert_eq!(meta.partition, 0);
    }
}

/// Regression: a broker with no state for a producer on a partition accepts any first sequence
/// (KIP-360). When the partition's first batch (seq 0) was rejected with a retriable error while
/// later batches were pipelined behind it, the broker took the second batch as the start; the
/// resent seq 0 then got OUT_OF_ORDER_SEQUENCE_NUMBER, the producer bumped its epoch and resent
/// everything, duplicating records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_batch_rejected_is_not_overtaken_by_a_pipelined_one() {
    let seq0 = Trigger::Batch {
        partition: 0,
        base_sequence: 0,
    };
    // The rejection is held back, so that batches pipelined behind seq 0 would reach the broker
    // before its resend.
    let fake = FakeBroker::start(
        Script::new(TOPIC, 1)
            .rule(seq0, Fault::Reject(NOT_LEADER_OR_FOLLOWER))
            .rule(seq0, Fault::Delay(Duration::from_millis(200))),
    )
    .await;
    let producer = producer(&fake).await;
    let deliveries = send(&producer, 0..10).await;
    let results = settle(&producer, &fake, deliveries).await;

    let seen = fake.seen();
    assert_eq!(seen[0].base_sequence, 0);
    assert_eq!(seen[0].outcome, Outcome::Rejected(NOT_LEADER_OR_FOLLOWER));
    let written = seen
        .iter()
        .position(|s| s.base_sequence == 0 && matches!(s.outcome, Outcome::Appended { .. }))
        .unwrap_or_else(|| panic!("seq 0 never written:\n{}", describe(&seen)));
    assert!(
        seen[..written].iter().all(|s| s.base_sequence == 0),
        "a later batch reached the broker before seq 0 was written:\n{}",
        describe(&seen)
    );
    assert_eq!(fake.values(0), values(0..10), "{}", describe(&seen));
    assert_offsets(&results, 0);
    assert!(
        seen.iter().all(|s| s.producer_epoch == 0),
        "{}",
        describe(&seen)
    );
    assert_eq!(
        producer.producer_id(),
        (FIRST_PRODUCER_ID, 0),
        "no epoch bump"
    );
    assert_eq!(fake.inits().len(), 1);
    within("close", producer.close()).await;
}

/// The broker appends the first batch, then the connection dies before the answer is written.
/// The resend on a new connection is a duplicate, answered with the original offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_lost_after_append_is_deduplicated() {
    let fake = FakeBroker::start(Script::new(TOPIC, 1).rule(
        Trigger::Batch {
            partition: 0,
            base_sequence: 0,
        },
        Fault::CloseAfterApply,
    ))
    .await;
    let producer = producer(&fake).await;
    let deliveries = send(&producer, 0..3).await;
    let results = settle(&producer, &fake, deliveries).await;

    let seen = fake.seen();
    assert_offsets(&results, 0);
    assert_eq!(fake.values(0), values(0..3), "{}", describe(&seen));
    let seq0: Vec<_> = seen.iter().filter(|s| s.base_sequence == 0).collect();
    assert_eq!(seq0.len(), 2, "{}", describe(&seen));
    assert_eq!(seq0[0].outcome, Outcome::Appended { base_offset: 0 });
    assert_eq!(seq0[1].outcome, Outcome::Duplicate { base_offset: 0 });
    assert!(
        seq0[1].connection > seq0[0].connection,
        "resent on a new connection"
    );
    assert_eq!(
        producer.producer_id(),
        (FIRST_PRODUCER_ID, 0),
        "no epoch bump"
    );
    within("close", producer.close()).await;
}

/// With an acknowledged batch the producer pipelines; the connection dies after the broker
/// appended three pipelined batches whose answers never left. The resends are duplicates for
/// those three and new writes for the rest, all in sequence order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_resent_in_order_after_a_cut() {
    let fake = FakeBroker::start(Script::new(TOPIC, 1)).await;
    let producer = producer(&fake).await;
    first_ack(&producer, &fake).await;
    // Seq 1's answer is held, so seqs 2 and 3 are read while it is still in flight; the
    // connection closes once seq 3 is appended.
    fake.add_rule(
        Trigger::Batch {
            partition: 0,
            base_sequence: 1,
        },
        Fault::Delay(Duration::from_millis(500)),
    );
    fake.add_rule(
        Trigger::Batch {
            partition: 0,
            base_sequence: 3,
        },
        Fault::CloseAfterApply,
    );
    let deliveries = send(&producer, 1..11).await;
    let results = settle(&producer, &fake, deliveries).await;

    let seen = fake.seen();
    assert!(fake.pending_rules().is_empty(), "{}", describe(&seen));
    assert_offsets(&results, 1);
    assert_eq!(fake.values(0), values(0..11), "{}", describe(&seen));
    let cut = seen
        .iter()
        .find(|s| s.base_sequence == 3)
        .expect("seq 3 was read");
    assert!(
        cut.unanswered >= 2,
        "seqs 1 to 3 in flight together when the connection was cut:\n{}",
        describe(&seen)
    );
    for seq in 1..=3 {
        let attempts: Vec<Outcome> = seen
            .iter()
            .filter(|s| s.base_sequence == seq)
            .map(|s| s.outcome)
            .collect();
        assert_eq!(
            attempts,
            [
                Outcome::Appended {
                    base_offset: i64::from(seq)
                },
                Outcome::Duplicate {
                    base_offset: i64::from(seq)
                }
            ],
            "seq {seq}:\n{}",
            describe(&seen)
        );
    }
    assert!(fake.connections() >= 2);
    assert_eq!(
        producer.producer_id(),
        (FIRST_PRODUCER_ID, 0),
        "no epoch bump"
    );
    within("close", producer.close()).await;
}

/// Sends records 1..=6 after record 0 was acknowledged, while the broker answers seq 2 with
/// `code` after a delay (so seqs 3 to 6 are pipelined behind it). Returns the deliveries of
/// records 1..=6.
async fn reject_seq_2(
    fake: &FakeBroker,
    producer: &Producer,
    code: i16,
) -> Vec<Result<RecordMetadata, ProducerError>> {
    first_ack(producer, fake).await;
    let seq2 = Trigger::Batch {
        partition: 0,
        base_sequence: 2,
    };
    fake.add_rule(seq2, Fault::Reject(code));
    fake.add_rule(seq2, Fault::Delay(Duration::from_millis(300)));
    let deliveries = send(producer, 1..7).await;
    settle(producer, fake, deliveries).await
}

/// KIP-360: the broker lost the producer's state and answers UNKNOWN_PRODUCER_ID. The producer
/// bumps its epoch with InitProducerId (naming its id and epoch) and resends from sequence 0;
/// every record lands once, in order.
///
/// Order is the hard part: the batches pipelined behind the rejected one come back (refused as
/// out of order) after it, and must still be resent after it under the new epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_producer_id_bumps_epoch_and_resends() {
    let fake = FakeBroker::start(Script::new(TOPIC, 1)).await;
    let producer = producer(&fake).await;
    let results = reject_seq_2(&fake, &producer, UNKNOWN_PRODUCER_ID).await;

    let seen = fake.seen();
    assert_eq!(fake.values(0), values(0..7), "{}", describe(&seen));
    assert_offsets(&results, 1);
    assert_eq!(
        fake.inits(),
        [
            InitSeen {
                asked: (-1, -1),
                answered: (FIRST_PRODUCER_ID, 0),
                error_code: 0
            },
            InitSeen {
                asked: (FIRST_PRODUCER_ID, 0),
                answered: (FIRST_PRODUCER_ID, 1),
                error_code: 0
            },
        ]
    );
    assert_eq!(producer.producer_id(), (FIRST_PRODUCER_ID, 1));
    // Records 0 and 1 were written under epoch 0; the rest under epoch 1 from sequence 0.
    let log = fake.log(0);
    let epochs: Vec<(i16, i32)> = log.iter().map(|r| (r.producer_epoch, r.sequence)).collect();
    assert_eq!(
        epochs,
        [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (1, 3), (1, 4)]
    );
    within("close", producer.close()).await;
}

/// As above, against a broker that behaves as Apache Kafka does for a producer without a
/// transactional id: InitProducerId hands out a new producer id instead of bumping the epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_producer_id_with_a_broker_that_hands_out_a_new_id() {
    let fake = FakeBroker::start(Script::new(TOPIC, 1).init_mode(InitMode::NewProducerId)).await;
    let producer = producer(&fake).await;
    let results = reject_seq_2(&fake, &producer, UNKNOWN_PRODUCER_ID).await;

    let seen = fake.seen();
    assert_eq!(fake.values(0), values(0..7), "{}", describe(&seen));
    assert_offsets(&results, 1);
    assert_eq!(producer.producer_id(), (FIRST_PRODUCER_ID + 1, 0));
    let ids: Vec<i64> = fake.log(0).iter().map(|r| r.producer_id).collect();
    assert_eq!(ids[..2], [FIRST_PRODUCER_ID; 2]);
    assert!(ids[2..].iter().all(|&id| id == FIRST_PRODUCER_ID + 1));
    within("close", producer.close()).await;
}

/// The broker answers OUT_OF_ORDER_SEQUENCE_NUMBER for exactly the sequence the producer expects
/// to be next (its sequence state on the broker is gone). The producer bumps its epoch and
/// resends from sequence 0; every record lands once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_sequence_at_the_expected_sequence_bumps_epoch_and_resends_in_order() {
    let fake = FakeBroker::start(Script::new(TOPIC, 1)).await;
    let producer = producer(&fake).await;
    let results = reject_seq_2(&fake, &producer, OUT_OF_ORDER_SEQUENCE_NUMBER).await;

    let seen = fake.seen();
    assert_eq!(fake.values(0), values(0..7), "{}", describe(&seen));
    assert_offsets(&results, 1);
    assert_eq!(producer.producer_id(), (FIRST_PRODUCER_ID, 1));
    within("close", producer.close()).await;
}

/// A non-retriable error fails exactly the rejected batch's records with
/// `ProducerError::Broker`; the batches pipelined behind it (which the broker refused as out of
/// order) are resent under a bumped epoch, since their sequences would otherwise follow a gap
/// (see `settle` in `producer/sender.rs`), and land in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retriable_error_fails_only_its_batch() {
    for code in [INVALID_RECORD, MESSAGE_TOO_LARGE] {
        let fake = FakeBroker::start(Script::new(TOPIC, 1)).await;
        let producer = producer(&fake).await;
        let results = reject_seq_2(&fake, &producer, code).await;

        let seen = fake.seen();
        for (i, r) in results.iter().enumerate() {
            let record = i + 1;
            if record == 2 {
                match r {
                    Err(ProducerError::Broker {
                        code: got,
                        partition,
                        topic,
                        ..
                    }) => {
                        assert_eq!(got.code(), code);
                        assert_eq!(*partition, 0);
                        assert_eq!(&**topic, TOPIC);
                    }
                    other => panic!("record 2 with error {code}: {other:?}"),
                }
            } else {
                assert!(r.is_ok(), "record {record} with error {code}: {r:?}");
            }
        }
        let expected: Vec<String> = values((0..7).filter(|&i| i != 2));
        assert_eq!(
            fake.values(0),
            expected,
            "error {code}:\n{}",
            describe(&seen)
        );
        // Delivered offsets are where the records are in the log.
        let offsets: Vec<i64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|m| m.offset))
            .collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5], "error {code}");
        assert_eq!(
            producer.producer_id(),
            (FIRST_PRODUCER_ID, 1),
            "error {code}"
        );
        within("close", producer.close()).await;
    }
}

/// The connection dies as soon as the first Produce request is read, before anything is
/// written: the resend is the first write, and nothing is duplicated or bumped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_lost_before_append_is_resent() {
    let fake = FakeBroker::start(
        Script::new(TOPIC, 1).rule(Trigger::ProduceRequest(1), Fault::CloseBeforeApply),
    )
    .await;
    let producer = producer(&fake).await;
    let deliveries = send(&producer, 0..3).await;
    let results = settle(&producer, &fake, deliveries).await;

    let seen = fake.seen();
    assert_offsets(&results, 0);
    assert_eq!(fake.values(0), values(0..3), "{}", describe(&seen));
    assert_eq!(seen[0].outcome, Outcome::Dropped);
    assert_eq!(seen[1].base_sequence, 0);
    assert_eq!(seen[1].outcome, Outcome::Appended { base_offset: 0 });
    assert_eq!(
        producer.producer_id(),
        (FIRST_PRODUCER_ID, 0),
        "no epoch bump"
    );
    within("close", producer.close()).await;
}
