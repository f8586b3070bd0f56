//! The journal format 1 fixture in `testdata/journal-v1/` still loads: record entries of every
//! kind, step checkpoints with their outputs, and state. A later format must keep this test
//! green (or say in CHANGELOG.md that old journals no longer load).
//!
//! `KAFKA_ONCE_WRITE_FIXTURES=1 cargo test --test journal_fixture` rewrites the fixture (only
//! for a deliberate format change).

use std::path::{Path, PathBuf};

use kafka_once::dispatch::{WorkflowContext, WorkflowError};
use kafka_once::journal::{Entry, Journal, PartitionKey, StepRecord};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/journal-v1")
}

fn partition() -> PartitionKey {
    PartitionKey {
        group: "fixture-group".into(),
        topic: "orders".into(),
        topic_id: uuid::Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0001),
        partition: 3,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

async fn write_fixture(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let journal = Journal::open(dir).unwrap();
    let p = partition();
    journal.started(&p.record(10), 2).unwrap();
    let done = Entry::Completed {
        attempts: 1,
        at_ms: 1_795_000_000_000,
    };
    assert!(journal.complete(&p.record(11), done).await.unwrap());
    let dead = Entry::DeadLettered {
        attempts: 5,
        at_ms: 1_795_000_000_500,
        error: "card declined".into(),
    };
    assert!(journal.complete(&p.record(12), dead).await.unwrap());
    let ctx = WorkflowContext::detached(journal.clone(), p.record(10), 2).unwrap();
    let reserved: (String, u32) = ctx
        .step("reserve", || async {
            Ok::<_, WorkflowError>(("A-1".to_string(), 2))
        })
        .await
        .unwrap();
    assert_eq!(reserved.1, 2);
    let left: u64 = ctx
        .transaction(|tx| {
            tx.put("stock", b"A-1", b"39")?;
            Ok::<u64, WorkflowError>(41)
        })
        .await
        .unwrap();
    assert_eq!(left, 41);
    journal.sync().await.unwrap();
}

#[tokio::test]
async fn format_1_journal_still_loads() {
    if std::env::var_os("KAFKA_ONCE_WRITE_FIXTURES").is_some() {
        write_fixture(&fixture()).await;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    let journal = Journal::open(dir.path()).unwrap();
    let p = partition();
    let entries = journal.partition_entries(&p, 0).unwrap();
    assert_eq!(
        entries,
        vec![
            (10, Entry::Started { attempts: 2 }),
            (
                11,
                Entry::Completed {
                    attempts: 1,
                    at_ms: 1_795_000_000_000
                }
            ),
            (
                12,
                Entry::DeadLettered {
                    attempts: 5,
                    at_ms: 1_795_000_000_500,
                    error: "card declined".into()
                }
            ),
        ]
    );
    let steps = journal.steps(&p.record(10)).unwrap();
    assert_eq!(
        steps,
        vec![
            (
                0,
                StepRecord {
                    name: "reserve".into(),
                    output: br#"["A-1",2]"#.to_vec()
                }
            ),
            (
                1,
                StepRecord {
                    name: "transaction".into(),
                    output: b"41".to_vec()
                }
            ),
        ]
    );
    assert_eq!(
        journal.state_get("stock", b"A-1").unwrap().as_deref(),
        Some(&b"39"[..])
    );
    let (n, problems) = journal.verify();
    assert_eq!((n, problems), (3, Vec::<String>::new()));
}

#[tokio::test]
async fn a_detached_context_replays_the_fixtures_steps() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    let journal = Journal::open(dir.path()).unwrap();
    let ctx = WorkflowContext::detached(journal, partition().record(10), 3).unwrap();
    let reserved: (String, u32) = ctx
        .step("reserve", || async {
            Err::<(String, u32), WorkflowError>("must not run".into())
        })
        .await
        .unwrap();
    assert_eq!(reserved, ("A-1".to_string(), 2));
    let left: u64 = ctx
        .transaction(|_tx| Err::<u64, WorkflowError>("must not run".into()))
        .await
        .unwrap();
    assert_eq!(left, 41);
}
