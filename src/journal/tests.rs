use super::*;

fn partition(p: i32) -> PartitionKey {
    PartitionKey {
        group: "g".into(),
        topic: "t".into(),
        topic_id: uuid::Uuid::from_u128(7),
        partition: p,
    }
}

fn done() -> Entry {
    Entry::Completed {
        attempts: 1,
        at_ms: 5,
    }
}

#[tokio::test]
async fn completions_survive_reopen_and_prune_removes_only_below() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = Journal::open(dir.path()).unwrap();
        for o in 0..10 {
            j.started(&partition(0).record(o), 1).unwrap();
        }
        for o in 0..6 {
            j.complete(&partition(0).record(o), done()).await.unwrap();
        }
        j.complete(&partition(1).record(3), done()).await.unwrap();
        assert_eq!(j.prune(&partition(0), 4).await.unwrap(), 4);
        j.sync().await.unwrap();
    }
    let j = Journal::open(dir.path()).unwrap();
    let entries = j.partition_entries(&partition(0), 0).unwrap();
    let offsets: Vec<i64> = entries.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, vec![4, 5, 6, 7, 8, 9]);
    assert!(entries[0].1.is_finished() && entries[1].1.is_finished());
    assert_eq!(entries[2].1, Entry::Started { attempts: 1 });
    // The other partition is untouched by partition 0's prune.
    assert_eq!(j.get(&partition(1).record(3)).unwrap(), Some(done()));
    assert_eq!(j.partition_entries(&partition(0), 8).unwrap().len(), 2);
    let (n, problems) = j.verify();
    assert_eq!((n, problems), (7, Vec::<String>::new()));
}

#[tokio::test]
async fn concurrent_completions_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut tasks = Vec::new();
    for o in 0..2000 {
        let j = j.clone();
        tasks.push(tokio::spawn(async move {
            j.complete(&partition(o % 4).record(o as i64), done()).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap());
    }
    let stats = j.stats();
    assert_eq!(stats.durable_writes, 2000);
    assert!(stats.fsyncs >= 1 && stats.fsyncs < 2000, "{stats:?}");
}

#[tokio::test]
async fn state_writes_commit_with_the_completion() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let ks = j.state_keyspace("tally").unwrap();
    let writes = vec![StateWrite {
        keyspace: ks,
        key: b"k".to_vec(),
        value: Some(b"1".to_vec()),
    }];
    let again = writes.clone();
    assert_eq!(
        j.complete_with(&partition(0).record(0), done(), true, vec![], writes)
            .await
            .unwrap(),
        FinishResult::Written
    );
    assert_eq!(
        j.state_get("tally", b"k").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    // A second completion of the same key writes nothing, state included.
    j.state_keyspace("tally")
        .unwrap()
        .remove(b"k".as_slice())
        .unwrap();
    assert_eq!(
        j.complete_with(&partition(0).record(0), done(), true, vec![], again.clone())
            .await
            .unwrap(),
        FinishResult::AlreadyFinished
    );
    assert_eq!(j.state_get("tally", b"k").unwrap(), None);
    // A read that no longer holds is a conflict: nothing is written, the key stays open.
    let ks = j.state_keyspace("tally").unwrap();
    let stale = vec![StateRead {
        keyspace: ks.clone(),
        key: b"k".to_vec(),
        seen: Some(b"0".to_vec()),
    }];
    assert_eq!(
        j.complete_with(&partition(0).record(1), done(), true, stale, again.clone())
            .await
            .unwrap(),
        FinishResult::Conflict
    );
    assert_eq!(j.get(&partition(0).record(1)).unwrap(), None);
    let current = vec![StateRead {
        keyspace: ks,
        key: b"k".to_vec(),
        seen: None,
    }];
    assert_eq!(
        j.complete_with(&partition(0).record(1), done(), true, current, again)
            .await
            .unwrap(),
        FinishResult::Written
    );
    assert!(matches!(
        j.state_keyspace("bad name"),
        Err(JournalError::InvalidKey(_))
    ));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _j = Journal::open(dir.path()).unwrap();
    let err = Journal::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, JournalError::Locked(_) | JournalError::Open { .. }),
        "{err}"
    );
}

#[test]
fn garbage_in_the_database_files_is_an_error_at_open_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let _j = Journal::open(dir.path()).unwrap();
    }
    // Overwrite every file fjall wrote with junk of the same length.
    let mut stack = vec![dir.path().to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "lock") {
                let len = std::fs::metadata(&p).unwrap().len().max(64) as usize;
                std::fs::write(&p, vec![0xA5; len]).unwrap();
                files += 1;
            }
        }
    }
    assert!(files > 0);
    let err = Journal::open(dir.path()).unwrap_err();
    assert!(matches!(err, JournalError::Open { .. }), "{err}");
}

fn wal_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_torn_tail_is_recovered_and_earlier_completions_survive() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = Journal::open(dir.path()).unwrap();
        for o in 0..100 {
            assert!(j.complete(&partition(0).record(o), done()).await.unwrap());
        }
        // The last write, then a crash that tears it: cut into its bytes.
        assert!(j.complete(&partition(0).record(100), done()).await.unwrap());
    }
    // fjall preallocates its log file: the data ends at the last non-zero byte. Zero the last 7
    // bytes written, as a crash in the middle of the last write would leave them.
    let wal = wal_files(dir.path()).pop().expect("a write-ahead log file");
    let mut bytes = std::fs::read(&wal).unwrap();
    let end = bytes
        .iter()
        .rposition(|&b| b != 0)
        .expect("data in the log")
        + 1;
    bytes[end - 7..end].fill(0);
    std::fs::write(&wal, &bytes).unwrap();
    let j = Journal::open(dir.path()).expect("a torn tail is recovered at open");
    let offsets: Vec<i64> = j
        .partition_entries(&partition(0), 0)
        .unwrap()
        .iter()
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(
        offsets,
        (0..100).collect::<Vec<i64>>(),
        "only the torn write may go"
    );
    // The journal takes writes again.
    assert!(j.complete(&partition(0).record(100), done()).await.unwrap());
}
