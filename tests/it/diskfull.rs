//! The disk fills up in the middle of a run. Each test runs its journal in a child process on a
//! small tmpfs, mounted in a mount namespace of the child's own (`unshare -m`, or `unshare -rm`
//! when not root), so the mount is private to it and goes away with it; before it goes, the
//! child's shell copies the journal out to an ordinary directory for the test to read.
//!
//! - The demo worker (the runtime, a real broker) on a 1 MiB tmpfs: the journal opens fine
//!   (fjall's 64 MiB write-ahead log is a sparse file) and its log fills the disk after some
//!   1,200 records. The worker must stop by itself with an error that says the disk is full, and
//!   the group's commits must not pass the completions in the journal it left. A worker restarted
//!   on the copy finishes the topic: every record completes exactly once.
//! - The journal alone, where a filler file leaves room for the write-ahead log but none for the
//!   table a memtable flush writes: fjall's flush fails in its background thread, and the journal
//!   must stop with an error that says the disk is full, having lost nothing it acknowledged.
//!
//! Needs `unshare` (util-linux) and the right to mount a tmpfs in a new mount namespace (root, or
//! unprivileged user namespaces); without them the tests fail and say so, they do not skip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use kafka_once::consumer::TopicPartition;
use kafka_once::demo::{DriveOptions, audit, done_key, drive};
use kafka_once::journal::{Entry, Journal, PartitionKey, RecordKey};

use crate::common;
use crate::crash::{MAX_IN_FLIGHT, produce_counted, worker_args};
use crate::dispatch::runtime_config;

const PARTITIONS: i32 = 3;

/// Records in the topic.
const RECORDS: usize = 6000;
/// The worker's disk: room for the journal to open (fjall's write-ahead log is sparse until
/// written) and for about 1,200 completions of the demo workflow, a fifth of the topic.
const SMALL_DISK: &str = "1m";

/// How long the worker may take to fill its disk and stop.
const STOP_DEADLINE: Duration = Duration::from_secs(60);

/// Mounts a tmpfs of `$SIZE` at `$MNT` (the namespace is the child's own), runs the child
/// (`"$@"`, its journal at `$MNT/journal`), shows what is left on the tmpfs, and copies the journal
/// out to `$COPY` before the namespace, and with it the tmpfs, goes away. Exits with the child's
/// status.
const SCRIPT: &str = r#"
mount -t tmpfs -o "size=$SIZE" tmpfs "$MNT" || {
    echo "diskfull-test: cannot mount a tmpfs at $MNT" >&2
    exit 97
}
echo "diskfull-test: mounted a tmpfs of $SIZE at $MNT" >&2
"$@"
rc=$?
echo "diskfull-test: the child exited with status $rc" >&2
df -k "$MNT" >&2
ls -la "$MNT/journal" >&2
cp -a "$MNT/journal" "$COPY" || {
    echo "diskfull-test: cannot copy the journal out" >&2
    exit 98
}
exit $rc
"#;

/// Kills the child's process group (the namespace's shell and the child) if the test ends before
/// they did.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    /// The group ended (its shell waits for the child): nothing to kill.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0
            && let Ok(pgid) = i32::try_from(pgid)
        {
            // SAFETY: kill(2) with a negative pid signals the process group this test created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// `unshare -m sh -c SCRIPT sh PROGRAM` (`-rm` when not root: a user namespace grants the mount),
/// in a process group of its own (see [`GroupGuard`]); the caller adds PROGRAM's arguments.
fn on_a_small_disk(size: &str, mnt: &Path, copy: &Path, program: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("unshare");
    cmd.arg(if is_root() { "-m" } else { "-rm" })
        .args(["sh", "-c", SCRIPT, "sh", program])
        .env("SIZE", size)
        .env("MNT", mnt)
        .env("COPY", copy)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no failure case.
    unsafe { libc::geteuid() == 0 }
}

/// Fails (never skips) when the namespace or the mount could not be made.
fn assert_mounted(output: &str, status: std::process::ExitStatus) {
    assert!(
        output.contains("diskfull-test: mounted a tmpfs"),
        "cannot give the child a small disk of its own: `unshare {} sh -c 'mount -t tmpfs ...'` \
         failed ({status}); the test needs util-linux's unshare and the right to mount a tmpfs in \
         a new mount namespace (root, or unprivileged user namespaces)\n{output}",
        if is_root() { "-m" } else { "-rm" },
    );
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_fills_mid_run_stops_the_worker_commits_nothing_past_its_journal_and_a_restart_finishes_once()
 {
    let (records, size) = (RECORDS, SMALL_DISK);
    let topic = common::unique("diskfull");
    let group = format!("{topic}-g");
    let (end, tally) = produce_counted(&topic, PARTITIONS, records).await;
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small-disk");
    std::fs::create_dir(&mnt).unwrap();
    let copy = dir.path().join("journal");
    let ledger = dir.path().join("ledger.txt");
    let log = dir.path().join("worker.log");
    let worker_args = worker_args(
        &topic,
        &group,
        "partition",
        &ledger,
        "diskfull-worker",
        true,
    );

    // Life 1: on the small disk.
    let small_journal = mnt.join("journal");
    let mut child = on_a_small_disk(size, &mnt, &copy, env!("CARGO_BIN_EXE_kafka-once"))
        .arg("demo-worker")
        .args(&worker_args)
        .arg("--path")
        .arg(&small_journal)
        .env("KAFKA_ONCE_LOG", common::worker_log_filter())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux) for the disk-full test: {e}"));
    let mut guard = GroupGuard(child.id());
    let status = tokio::time::timeout(STOP_DEADLINE, child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the worker did not stop by itself within {STOP_DEADLINE:?} on a full disk\n{}",
                tail(&log, 40)
            )
        })
        .unwrap();
    guard.disarm();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_mounted(&text, status);
    assert_ne!(status.code(), Some(98), "{text}");
    assert!(
        !status.success(),
        "the worker exited cleanly on a full disk\n{}",
        tail(&log, 40)
    );
    // The worker's last words: the error it stopped with.
    let error = text
        .lines()
        .rfind(|l| l.starts_with("error: "))
        .unwrap_or_else(|| {
            panic!(
                "the worker stopped without an error line\n{}",
                tail(&log, 40)
            )
        });
    assert!(
        error.contains("No space left on device"),
        "the worker's error does not say the disk is full: {error}\n{}",
        tail(&log, 40)
    );
    eprintln!("life 1 on a {size} tmpfs: {status}: {error}");

    // Nothing committed past the journal. Below a committed offset, every record's transaction
    // (its `done` entry) is in the journal left behind, and so is its completion unless a prune
    // removed it: the runtime prunes a partition below an offset once the broker confirmed a
    // commit there. So a partition's completions start at its last durable prune and must reach
    // its committed offset without a gap.
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let probe = kafka_once::consumer::group::GroupConsumer::new(runtime_config(&group))
        .await
        .unwrap();
    let committed = common::committed(&probe, &tps).await;
    probe.close().await;
    let mut checked = BTreeMap::new();
    let (ran, problems) = {
        let journal = Journal::open(&copy).unwrap();
        let done: BTreeMap<Vec<u8>, Vec<u8>> = journal
            .state_scan("done")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let mut completions: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
        for run in journal.runs() {
            let (key, completed, run) = run.unwrap();
            if completed && *key.topic == *topic {
                completions
                    .entry(key.partition)
                    .or_default()
                    .extend(key.offset..run.end);
            }
        }
        for entry in journal.entries() {
            let (key, entry) = entry.unwrap();
            if entry.is_finished() && *key.topic == *topic {
                completions
                    .entry(key.partition)
                    .or_default()
                    .insert(key.offset);
            }
        }
        for (p, &c) in &committed {
            for o in 0..c {
                let n = done.get(done_key(*p, o).as_bytes());
                assert_eq!(
                    n.map(Vec::as_slice),
                    Some(&1u64.to_be_bytes()[..]),
                    "{p}/{o} is committed ({committed:?}) but its transaction is not in the journal \
                     once"
                );
            }
            let kept = completions.remove(p).unwrap_or_default();
            let from = kept.first().map_or(c, |&first| first.min(c));
            checked.insert(*p, from..c);
            for o in from..c {
                assert!(
                    kept.contains(&o),
                    "{p}/{o} is committed ({committed:?}) but its completion is not in the journal \
                     (completions kept from {from})"
                );
            }
        }
        (done.len(), journal.verify().1)
    };
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        ran > 0,
        "the disk was full before any record ran: nothing tested"
    );
    assert!(
        ran < records,
        "every record ran before the disk filled: nothing tested"
    );
    eprintln!(
        "life 1: {ran} of {records} records ran (their transactions are in the journal); \
         committed {committed:?} of {end:?}; completions checked {checked:?}"
    );

    // Life 2: the journal on an ordinary disk; the worker finishes the topic.
    let opts = DriveOptions {
        exe: env!("CARGO_BIN_EXE_kafka-once").into(),
        worker_args: worker_args
            .into_iter()
            .chain(["--path".to_string(), copy.to_str().unwrap().to_string()])
            .collect(),
        log: log.clone(),
        probe_config: runtime_config(&group),
        end_offsets: end
            .iter()
            .map(|(&p, &e)| (TopicPartition::new(topic.as_str(), p), e))
            .collect(),
        kills: 0,
        kill_after: Duration::ZERO..Duration::ZERO,
        deadline: Duration::from_secs(120),
        env: Vec::new(),
        restart_crashed: false,
    };
    let (_, took) = drive(&opts, |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", tail(&log, 40)));
    let journal = Journal::open(&copy).unwrap();
    let report = audit(&journal, &end, &tally, Some(&ledger)).unwrap();
    eprintln!("life 2 finished in {took:?}\n{report}");
    common::assert_exactly_once(&report, records);
    assert_eq!(report.counter, records as u64, "{report}");
    // Re-runs only for records in flight when the disk filled.
    let reruns = report.invocations - records as u64;
    assert!(
        reruns <= MAX_IN_FLIGHT as u64,
        "{reruns} re-runs after one stop\n{report}"
    );
    let (n, problems) = journal.verify();
    assert!(problems.is_empty(), "{problems:?} in {n} entries");
}

/// fjall writes a full memtable out to a table in a background thread; when that write finds the
/// disk full, fjall stops accepting writes, but its error goes only to its log and the next write
/// fails with a bare `Poisoned`. The journal must still say what is wrong, and lose nothing it had
/// acknowledged as durable. The journal runs in this process on a tmpfs of a mount namespace that
/// a holder process (`sleep` under [`on_a_small_disk`]) keeps alive, reached through
/// `/proc/<holder>/root`; a filler file keeps [`SLACK`] bytes free: room for each write-ahead log
/// batch, none for a table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_flush_that_finds_the_disk_full_stops_the_journal_with_a_clear_error() {
    use std::io::Write;
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small-disk");
    std::fs::create_dir(&mnt).unwrap();
    let unused = dir.path().join("unused");
    let mut holder = on_a_small_disk("16m", &mnt, &unused, "sleep")
        .arg("600")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux) for the disk-full test: {e}"));
    let _guard = GroupGuard(holder.id());
    let mut lines = tokio::io::BufReader::new(holder.stderr.take().unwrap()).lines();
    let mut said = String::new();
    let mounted = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            said.push_str(&line);
            said.push('\n');
            if line.contains("diskfull-test: mounted a tmpfs") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        mounted,
        "cannot make a small disk: `unshare {} sh -c 'mount -t tmpfs ...'` failed; the test needs \
         util-linux's unshare and the right to mount a tmpfs in a new mount namespace (root, or \
         unprivileged user namespaces)\n{said}",
        if is_root() { "-m" } else { "-rm" },
    );
    let root = format!("/proc/{}/root", holder.id().unwrap());
    let disk = Path::new(&root).join(mnt.strip_prefix("/").unwrap());
    assert!(
        free_bytes(&disk) <= 16 << 20,
        "{} is not the small disk",
        disk.display()
    );
    let options = kafka_once::journal::JournalOptions {
        memtable_bytes: 1 << 20,
        ..Default::default()
    };
    let journal = Journal::open_with(disk.join("journal"), options).unwrap();
    // Appending: a write after `set_len` shrank the file lands at its new end, not in a hole.
    let mut filler = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(disk.join("filler"))
        .unwrap();
    let mut filler_len = 0u64;
    let mut durable = 0i64;
    let error = loop {
        assert!(durable < 1_000_000, "no write failed");
        let free = free_bytes(&disk);
        if free > SLACK {
            filler
                .write_all(&vec![0u8; (free - SLACK) as usize])
                .unwrap();
            filler_len += free - SLACK;
        } else if free < SLACK {
            filler_len -= filler_len.min(SLACK - free);
            filler.set_len(filler_len).unwrap();
        }
        let started =
            (durable..durable + PER_BATCH).try_for_each(|i| journal.started(&flush_key(i), 1));
        if let Err(e) = started {
            break e.to_string();
        }
        match journal.sync().await {
            Ok(()) => durable += PER_BATCH,
            Err(e) => break e.to_string(),
        }
        settle(&disk).await;
    };
    drop(journal);
    eprintln!("after {durable} durable entries: {error}");
    assert!(
        durable > 0,
        "the first batch failed already; nothing tested: {error}"
    );
    assert!(
        error.contains("No space left on device"),
        "the error does not say the disk is full: {error}"
    );
    assert!(
        error.contains("background flush"),
        "the write-ahead log filled before the failed flush stopped the journal; the flush's \
         failure is not what was tested: {error}"
    );
    // Everything acknowledged as durable survives (fjall replays its log into the memtable whose
    // flush failed): read from a copy, on a disk with room.
    let copy = dir.path().join("journal");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(disk.join("journal"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cannot copy the journal off the small disk"
    );
    let journal = Journal::open(&copy).unwrap();
    for i in 0..durable {
        assert_eq!(
            journal.get(&flush_key(i)).unwrap(),
            Some(Entry::Started { attempts: 1 }),
            "entry {i} of {durable} durable ones is lost"
        );
    }
    let (_, problems) = journal.verify();
    assert!(problems.is_empty(), "{problems:?}");
}

/// Free bytes the filler leaves on the child's tmpfs before each batch: several write-ahead log
/// batches' worth, a fraction of a flushed table (the memtable is 1 MiB of incompressible keys).
const SLACK: u64 = 256 << 10;
/// Entries per batch: about 100 bytes each in the write-ahead log.
const PER_BATCH: i64 = 500;

/// A key of the flush test: a long pseudo-random group name, so that a table does not compress
/// into the slack.
fn flush_key(i: i64) -> RecordKey {
    let mut x = i as u64;
    let group: String = (0..8)
        .map(|_| {
            // splitmix64
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            format!("{:016x}", z ^ (z >> 31))
        })
        .collect();
    PartitionKey {
        group: group.into(),
        topic: "t".into(),
        topic_id: uuid::Uuid::nil(),
        partition: 0,
    }
    .record(i)
}

fn free_bytes(dir: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string and a zeroed statvfs for the call to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
    assert_eq!(rc, 0, "statvfs {}", dir.display());
    st.f_bavail as u64 * st.f_frsize as u64
}

/// Waits until a flush that may be running wrote what it could: until the free space on `disk`
/// stayed the same for 150 ms (at most 5 s).
async fn settle(disk: &Path) {
    let mut last = free_bytes(disk);
    let mut same = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = free_bytes(disk);
        same = if now == last { same + 1 } else { 0 };
        if same == 3 {
            return;
        }
        last = now;
    }
}
