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

#[tokio::test]
async fn dropping_the_last_handle_releases_the_journal_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        let j = Journal::open(dir.path()).unwrap_or_else(|e| panic!("reopen {i}: {e}"));
        let copy = j.clone();
        copy.complete(&partition(0).record(i), done())
            .await
            .unwrap();
        // Buffered writes the writer thread is still applying when the handles drop.
        for o in 0..2_000 {
            copy.started(&partition(1).record(o), 1).unwrap();
        }
        // The writer thread's reference to the database (and with it fjall's lock) is gone by
        // the time the last handle's drop returns, not whenever the thread gets to end.
        let db = Arc::downgrade(&j.inner);
        drop(j);
        assert!(db.strong_count() > 0, "a handle is left");
        drop(copy);
        assert_eq!(
            db.strong_count(),
            0,
            "iteration {i}: the writer still holds the database"
        );
    }
    let j = Journal::open(dir.path()).unwrap();
    for i in 0..5 {
        assert!(
            j.get(&partition(0).record(i)).unwrap().is_some(),
            "record {i}"
        );
    }
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
        // The last write, then a crash that tears it: cut into its bytes. A torn write never
        // finished its fsync, so the durable-write marker still names the write before it.
        let marker = std::fs::read(dir.path().join(super::DURABLE_MARKER)).unwrap();
        assert!(j.complete(&partition(0).record(100), done()).await.unwrap());
        std::fs::write(dir.path().join(super::DURABLE_MARKER), marker).unwrap();
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

/// Runs: a completed run answers for every offset in it (and refuses a second completion of
/// one), a started run gives attempts, both survive a reopen, and a prune removes the runs below
/// its offset and trims the one reaching across it.
#[tokio::test]
async fn runs_cover_their_offsets_and_prune_trims_the_one_across_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = partition(0);
    {
        let j = Journal::open(dir.path()).unwrap();
        j.started_run(&p, 0, 20, 1).unwrap();
        j.complete_runs(&p, &[(0, 10), (12, 15)], 1, 77)
            .await
            .unwrap();
        // Another partition with the same offsets is not covered.
        j.complete_runs(&partition(1), &[(100, 101)], 1, 77)
            .await
            .unwrap();
        let completed = Entry::Completed {
            attempts: 1,
            at_ms: 77,
        };
        assert_eq!(j.get(&p.record(0)).unwrap(), Some(completed.clone()));
        assert_eq!(j.get(&p.record(9)).unwrap(), Some(completed.clone()));
        assert_eq!(j.get(&p.record(13)).unwrap(), Some(completed));
        assert_eq!(
            j.get(&p.record(10)).unwrap(),
            Some(Entry::Started { attempts: 1 }),
            "in the started run only"
        );
        assert_eq!(j.get(&p.record(25)).unwrap(), None);
        assert_eq!(j.get(&partition(1).record(5)).unwrap(), None);
        // At most one completion per record: a finish of a covered record writes nothing, and a
        // started entry does not go over it.
        assert!(!j.complete(&p.record(5), done()).await.unwrap());
        j.started_unless_finished(&p.record(6), 2).unwrap();
        assert!(j.complete(&p.record(10), done()).await.unwrap());
        j.sync().await.unwrap();
        assert!(j.get(&p.record(6)).unwrap().unwrap().is_finished());
    }
    let j = Journal::open(dir.path()).unwrap();
    let PartitionRuns { completed, started } = j.partition_runs(&p, 0).unwrap();
    let ends = |runs: &[(i64, Run)]| runs.iter().map(|(f, r)| (*f, r.end)).collect::<Vec<_>>();
    assert_eq!(ends(&completed), vec![(0, 10), (12, 15)]);
    assert_eq!(ends(&started), vec![(0, 20)]);
    // From offset 13 on: the runs reaching it, the one starting below included.
    let PartitionRuns { completed, started } = j.partition_runs(&p, 13).unwrap();
    assert_eq!(ends(&completed), vec![(12, 15)]);
    assert_eq!(ends(&started), vec![(0, 20)]);

    // Pruning below 13 removes [0, 10) and trims [12, 15) and [0, 20) to start at 13.
    j.prune(&p, 13).await.unwrap();
    let PartitionRuns { completed, started } = j.partition_runs(&p, 0).unwrap();
    assert_eq!(ends(&completed), vec![(13, 15)]);
    assert_eq!(ends(&started), vec![(13, 20)]);
    assert_eq!(j.get(&p.record(5)).unwrap(), None);
    assert!(j.get(&p.record(14)).unwrap().unwrap().is_finished());
    let (n, problems) = j.verify();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        n, 3,
        "two runs of partition 0, one of partition 1; offset 10's entry pruned"
    );
}

/// `verify` reports completed runs that overlap (a record completed twice).
#[tokio::test]
async fn verify_reports_overlapping_completed_runs() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    j.complete_runs(&partition(0), &[(0, 10)], 1, 1)
        .await
        .unwrap();
    j.complete_runs(&partition(0), &[(5, 12)], 1, 1)
        .await
        .unwrap();
    let (_, problems) = j.verify();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("overlaps"), "{problems:?}");
}

/// A record covered by a completed run is finished even when it has a started entry of its own
/// (another assignment began it), also for a finish queued right behind the run (same batch).
#[tokio::test]
async fn a_completed_run_wins_over_a_started_entry_and_within_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let p = partition(0);
    j.started(&p.record(3), 2).unwrap();
    let run = j.complete_runs(&p, &[(0, 10)], 1, 9);
    let four = p.record(4);
    let again = j.complete(&four, done());
    let (run, again) = tokio::join!(run, again);
    run.unwrap();
    assert!(!again.unwrap(), "a finish behind the run writes nothing");
    assert!(!j.complete(&p.record(3), done()).await.unwrap());
    assert_eq!(
        j.get(&p.record(3)).unwrap(),
        Some(Entry::Completed {
            attempts: 1,
            at_ms: 9
        })
    );
}

#[tokio::test]
async fn a_corrupt_middle_of_the_log_is_an_error_at_open_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = Journal::open(dir.path()).unwrap();
        for o in 0..200 {
            assert!(j.complete(&partition(0).record(o), done()).await.unwrap());
        }
    }
    // One flipped byte halfway through the write-ahead log: fjall cuts the log there as if it
    // were a torn tail, which would drop the 100 durable completions after it.
    let wal = wal_files(dir.path()).pop().expect("a write-ahead log file");
    let mut bytes = std::fs::read(&wal).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes[end / 2] ^= 0x5a;
    std::fs::write(&wal, &bytes).unwrap();
    let err = Journal::open(dir.path()).expect_err("durable writes were lost");
    let JournalError::LostWrites {
        recovered,
        durable,
        ref marker,
        ..
    } = err
    else {
        panic!("{err}");
    };
    assert!(recovered < durable && durable >= 200, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("lost durable writes") && text.contains("delete"),
        "{text}"
    );
    // Again on the next open: the loss does not become silent.
    assert!(matches!(
        Journal::open(dir.path()),
        Err(JournalError::LostWrites { .. })
    ));
    // Accepting the loss: without the marker the journal opens with what it kept.
    std::fs::remove_file(marker).unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let kept = j.partition_entries(&partition(0), 0).unwrap().len();
    assert!((1..200).contains(&kept), "{kept} entries kept");
    assert!(j.complete(&partition(0).record(500), done()).await.unwrap());
}

#[tokio::test]
async fn without_fsyncs_the_durable_marker_stays_behind() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        durability: Durability::Buffer,
        ..JournalOptions::default()
    };
    {
        let j = Journal::open_with(dir.path(), options.clone()).unwrap();
        for o in 0..10 {
            assert!(j.complete(&partition(0).record(o), done()).await.unwrap());
        }
    }
    // Nothing was fsynced, so a crash may lose any of it: no write counts as durable.
    let marker = std::fs::read(dir.path().join(super::DURABLE_MARKER)).unwrap();
    assert!(
        marker.is_empty() || marker == 0u64.to_be_bytes(),
        "{marker:?}"
    );
    Journal::open_with(dir.path(), options).unwrap();
}

#[tokio::test]
async fn a_creation_cut_short_by_a_crash_is_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    // What fjall leaves when killed before its version marker: the lock file, an empty log and
    // the keyspaces folder with the meta tree's folder.
    std::fs::create_dir_all(path.join("keyspaces").join("0")).unwrap();
    std::fs::write(path.join("lock"), b"").unwrap();
    std::fs::write(path.join("0.jnl"), b"").unwrap();
    // While another process holds fjall's lock (it may be creating the journal now), nothing
    // is touched.
    let held = std::fs::File::open(path.join("lock")).unwrap();
    held.lock().unwrap();
    assert!(matches!(Journal::open(&path), Err(JournalError::Locked(_))));
    assert!(path.join("0.jnl").exists());
    drop(held);
    let j = Journal::open(&path).expect("an interrupted creation is redone");
    assert!(j.complete(&partition(0).record(1), done()).await.unwrap());
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert!(
        j.get(&partition(0).record(1))
            .unwrap()
            .unwrap()
            .is_finished()
    );
}

#[test]
fn a_directory_with_other_files_and_no_version_marker_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    std::fs::create_dir_all(path.join("keyspaces").join("0")).unwrap();
    std::fs::write(path.join("0.jnl"), b"").unwrap();
    std::fs::write(path.join("notes.txt"), b"mine").unwrap();
    assert!(Journal::open(path).is_err());
    assert_eq!(std::fs::read(path.join("notes.txt")).unwrap(), b"mine");
    assert!(path.join("0.jnl").exists() && path.join("keyspaces").exists());
}

#[tokio::test]
async fn a_journal_that_lost_its_version_marker_is_not_wiped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.complete(&partition(0).record(1), done()).await.unwrap());
    }
    std::fs::remove_file(dir.path().join("version")).unwrap();
    assert!(Journal::open(dir.path()).is_err());
    // The data is still there.
    assert!(
        wal_files(dir.path())
            .iter()
            .any(|f| std::fs::metadata(f).unwrap().len() > 0)
    );
    assert!(dir.path().join("keyspaces").read_dir().unwrap().count() > 1);
}

/// The `journal_entry` fuzz target's seeds: its selector byte (0 record key, 1 entry, 2 run,
/// 3 step), then an encoded value.
#[test]
fn journal_entry_fuzz_seeds_are_current() {
    let mut files = std::collections::BTreeMap::new();
    let mut add = |name: &str, selector: u8, bytes: Vec<u8>| {
        files.insert(format!("{name}.bin"), [vec![selector], bytes].concat());
    };
    add("key", 0, partition(3).record(1234).encode());
    add("key_direct", 0, RecordKey::direct("order/7").encode());
    add("entry_started", 1, Entry::Started { attempts: 2 }.encode());
    add("entry_completed", 1, done().encode());
    let dead = Entry::DeadLettered {
        attempts: 5,
        at_ms: 1_700_000_000_000,
        error: "boom".into(),
    };
    add("entry_dead_lettered", 1, dead.encode());
    let run = Run {
        end: 1 << 40,
        attempts: 1,
        at_ms: 1_700_000_000_000,
    };
    add("run", 2, run.encode());
    let step = StepRecord {
        name: "charge card".into(),
        output: br#"{"id":7}"#.to_vec(),
    };
    add("step", 3, step.encode());
    crate::fuzz_seeds::check_or_write("journal_entry", files);
}

/// A poisoned journal names an I/O cause as the OS does, not in fjall's debug form.
#[test]
fn a_poison_cause_names_the_io_error_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let full = fjall::Error::Io(std::io::Error::from_raw_os_error(28));
    let cause = poison_cause(&full, dir.path());
    assert!(cause.starts_with("No space left on device"), "{cause}");
    assert!(!cause.contains("FjallError"), "{cause}");
}

/// fjall's bare `Poisoned` (a background flush or compaction failed; its cause went to fjall's
/// log only) gets a probe of the journal's directory: here the directory is writable, so the
/// probe says so and leaves no file behind. (The disk-full case: `tests/it/diskfull.rs`.)
#[test]
fn a_background_failure_is_named_with_what_a_probe_write_finds() {
    let dir = tempfile::tempdir().unwrap();
    let cause = poison_cause(&fjall::Error::Poisoned, dir.path());
    assert!(cause.contains("background flush or compaction"), "{cause}");
    assert!(cause.contains("succeeds"), "{cause}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// fjall shows a batch to readers as soon as it is in its memtable, before the persist that may
/// fail (a full disk fails the log's write there, as the injected failure does). Once that failed,
/// the journal's partition reads fail too, so that nobody takes the failed completion for a
/// durable one and commits past it.
#[tokio::test]
async fn a_poisoned_journal_does_not_show_the_completion_whose_write_failed() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        fail_after_batches: Some(0),
        ..Default::default()
    };
    let j = Journal::open_with(dir.path(), options).unwrap();
    let key = partition(0).record(0);
    assert!(j.complete(&key, done()).await.is_err());
    // In fjall's memtable (what a read that ignored the poison would take as finished) ...
    assert_eq!(j.get(&key).unwrap(), Some(done()));
    // ... but not durable, and not shown by the reads a new assignment makes.
    assert!(matches!(
        j.partition_entries(&partition(0), 0),
        Err(JournalError::Poisoned(_))
    ));
    assert!(matches!(
        j.partition_runs(&partition(0), 0),
        Err(JournalError::Poisoned(_))
    ));
    assert!(matches!(
        j.sync_reads().await,
        Err(JournalError::Poisoned(_))
    ));
    // (Reopened, this journal may show the completion after all: the injected failure leaves the
    // batch in fjall's log buffer, which fjall writes out when it closes. A full disk would not.)
}

/// A unit's started run that meets its completed run (same first offset and end) in one batch is
/// not written: the batch lands whole, and the completed run supersedes it. A started run without
/// its completion in the batch is written.
#[test]
fn a_started_run_completed_in_the_same_batch_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let run = |end: i64, at_ms: i64| {
        Run {
            end,
            attempts: 1,
            at_ms,
        }
        .encode()
    };
    let (ack, _rx) = oneshot::channel();
    let ops = [
        Op::PutRun {
            key: partition(0).record(0).encode(),
            value: run(10, 0),
        },
        Op::PutRun {
            key: partition(0).record(10).encode(),
            value: run(20, 0),
        },
        // Same first offset, another end: not the same run.
        Op::PutRun {
            key: partition(1).record(0).encode(),
            value: run(10, 0),
        },
        Op::FinishRuns {
            runs: vec![
                (partition(0).record(0).encode(), run(10, 5)),
                (partition(1).record(0).encode(), run(5, 5)),
            ],
            ack,
        },
    ];
    writer::apply(&j.inner, &ops).unwrap();
    let p0 = j.partition_runs(&partition(0), 0).unwrap();
    let firsts = |runs: &[(i64, Run)]| runs.iter().map(|(f, r)| (*f, r.end)).collect::<Vec<_>>();
    assert_eq!(firsts(&p0.completed), vec![(0, 10)]);
    assert_eq!(
        firsts(&p0.started),
        vec![(10, 20)],
        "the completed run's start was written"
    );
    let p1 = j.partition_runs(&partition(1), 0).unwrap();
    assert_eq!(firsts(&p1.completed), vec![(0, 5)]);
    assert_eq!(firsts(&p1.started), vec![(0, 10)]);
    assert_eq!(j.verify().1, Vec::<String>::new());
}
