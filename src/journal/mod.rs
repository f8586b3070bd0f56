//! The durable journal: one [`fjall`] database beside the process that records, per record key,
//! that its workflow started (with an attempt count) and then completed or was dead-lettered,
//! and holds the application's state keyspaces.
//!
//! - **Group commit.** Every write goes through one writer thread in order. Durable writes
//!   ([`Journal::complete`]) are acknowledged only after the fsync that covers them, and one fsync
//!   covers every durable write that arrived while the previous one ran, so a busy runtime pays one
//!   fsync for many completions. [`Durability`] picks `fdatasync` (default), `fsync`, or OS buffers
//!   only (survives a process crash, not a power loss).
//! - **Poisoning.** A failed write or fsync poisons the journal: that write and every later one
//!   fail with [`JournalError::Poisoned`], which names the first cause. Nothing after it counts as
//!   durable, so the runtime commits nothing past it. A failure in one of fjall's background
//!   threads (a memtable flush to a table, a compaction) poisons fjall, and with it the journal's
//!   next write; fjall does not hand over its cause, so the journal probes the disk with a test
//!   write and names what that finds (a full disk, say).
//! - **Pruning.** [`Journal::prune`] removes a partition's entries below an offset (after the
//!   broker confirmed a commit there), so the journal's size follows the in-flight window.
//! - **Recovery.** fjall recovers a torn tail at open; anything it cannot read, and any key or
//!   entry this crate cannot decode, is a typed error naming the key.
//!
//! ```no_run
//! use kafka_once::journal::{Entry, Journal, PartitionKey};
//!
//! # async fn demo() -> Result<(), kafka_once::journal::JournalError> {
//! let journal = Journal::open("./journal")?;
//! let partition = PartitionKey {
//!     group: "orders-service".into(),
//!     topic: "orders".into(),
//!     topic_id: uuid::Uuid::nil(),
//!     partition: 0,
//! };
//! let key = partition.record(42);
//! journal.started(&key, 1)?;
//! journal.complete(&key, Entry::Completed { attempts: 1, at_ms: 0 }).await?;
//! assert!(journal.get(&key)?.is_some_and(|e| e.is_finished()));
//! # Ok(())
//! # }
//! ```

mod entry;
mod key;
mod run;
mod step;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use tokio::sync::oneshot;

pub use entry::Entry;
pub use key::{DIRECT_TOPIC, PartitionKey, RecordKey};
pub use run::Run;
pub use step::StepRecord;
pub(crate) use writer::{FinishResult, StateRead, StateWrite};

use writer::Op;

/// Journal errors.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The database could not be opened (corrupt files, permissions, a newer format).
    #[error("cannot open the journal at {path}: {cause}")]
    Open {
        /// The journal directory.
        path: PathBuf,
        /// What fjall reported.
        cause: Arc<str>,
    },
    /// Another process has the journal open.
    #[error("the journal at {0} is in use by another process")]
    Locked(PathBuf),
    /// A key or entry could not be decoded.
    #[error("corrupt journal data: {what}: {why}")]
    Corrupt {
        /// Which key or entry.
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// The write-ahead log ends before writes that were durable: a corrupt stretch in it was
    /// cut off when the journal was opened, together with everything written after it. The
    /// journal refuses to open rather than lose those completions silently.
    #[error(
        "the journal at {path} lost durable writes: it now ends at write {recovered}, but write \
         {durable} was durable before (a corrupt stretch of its write-ahead log was cut off, with \
         everything after it). The records whose completions were lost would run again; to accept \
         that, delete {} and open the journal again",
        marker.display()
    )]
    LostWrites {
        /// The journal directory.
        path: PathBuf,
        /// The last write the journal holds.
        recovered: u64,
        /// The last write known to have been durable.
        durable: u64,
        /// The file recording the last durable write.
        marker: PathBuf,
    },
    /// A write or fsync failed earlier; the journal accepts nothing more. Restart the process
    /// once the cause (a full disk, a failing device) is fixed.
    #[error("the journal is stopped after a failed write or fsync: {0}")]
    Poisoned(Arc<str>),
    /// A read failed.
    #[error("journal read failed: {0}")]
    Read(Arc<str>),
    /// A name does not fit a key, or a keyspace name is invalid.
    #[error("invalid journal key: {0}")]
    InvalidKey(String),
    /// The journal was closed.
    #[error("the journal is closed")]
    Closed,
}

impl JournalError {
    fn read(e: fjall::Error) -> Self {
        JournalError::Read(e.to_string().into())
    }
}

/// How far a durable write goes before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `fdatasync`: survives a crash of the machine. The default.
    #[default]
    SyncData,
    /// `fsync`, including file metadata.
    SyncAll,
    /// Written to the OS only: survives the process being killed, not a power loss.
    Buffer,
}

impl Durability {
    fn persist_mode(self) -> PersistMode {
        match self {
            Durability::SyncData => PersistMode::SyncData,
            Durability::SyncAll => PersistMode::SyncAll,
            Durability::Buffer => PersistMode::Buffer,
        }
    }
}

/// Journal settings.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Default [`Durability::SyncData`].
    pub durability: Durability,
    /// The most writes in one group commit. Default 4,096.
    pub max_batch: usize,
    /// Capacity of the queue in front of the writer thread; a full queue makes writers wait.
    /// Default 16,384.
    pub queue: usize,
    /// fjall's block cache, bytes. Default 16 MiB.
    pub cache_bytes: u64,
    /// The most bytes of write-ahead log kept before memtables are flushed to tables (where
    /// pruned entries get compacted away). At least 64 MiB; default 64 MiB.
    pub max_wal_bytes: u64,
    /// Memtable size of the record entries, bytes. At least 1 MiB; default 8 MiB.
    pub memtable_bytes: u64,
    /// How long a group commit may wait for more completions when fewer arrived than went into
    /// the previous fsync. Zero turns the wait off. Default 500 µs.
    pub group_commit_linger: std::time::Duration,
    /// Fault injection for tests: every write batch after this many fails as an I/O error
    /// would (the journal is then poisoned). `None` (the default) in production.
    #[doc(hidden)]
    pub fail_after_batches: Option<u64>,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            durability: Durability::SyncData,
            max_batch: 4096,
            queue: 16_384,
            cache_bytes: 16 << 20,
            max_wal_bytes: 64 << 20,
            memtable_bytes: 8 << 20,
            group_commit_linger: std::time::Duration::from_micros(500),
            fail_after_batches: None,
        }
    }
}

#[derive(Default)]
struct Stats {
    fsyncs: AtomicU64,
    batches: AtomicU64,
    durable_writes: AtomicU64,
    pruned: AtomicU64,
}

/// Counters since the journal was opened, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStats {
    /// fsyncs (or fdatasyncs) issued for durable writes.
    pub fsyncs: u64,
    /// Write batches (group commits) applied.
    pub batches: u64,
    /// Finishing entries written (completions and dead-letters).
    pub durable_writes: u64,
    /// Entries removed by pruning.
    pub pruned: u64,
    /// Bytes on disk (tables and write-ahead journal).
    pub disk_bytes: u64,
}

pub(crate) struct Inner {
    db: Database,
    records: Keyspace,
    steps: Keyspace,
    /// Started runs (see [`Run`]).
    started_runs: Keyspace,
    /// Completed runs; they never overlap.
    completed_runs: Keyspace,
    /// The number of the last batch written (`SEQ_KEY`), written with every batch.
    meta: Keyspace,
    /// The number of the last batch written.
    seq: AtomicU64,
    /// `DURABLE_MARKER`: the number of the last batch known to be durable (after its fsync).
    marker: std::fs::File,
    options: JournalOptions,
    stats: Stats,
    poisoned: Mutex<Option<Arc<str>>>,
    /// Set before this process's first batch goes to fjall (from then on, a read may see a batch
    /// that is not durable yet).
    wrote: std::sync::atomic::AtomicBool,
    /// The journal directory (for [`poison_cause`]'s probe).
    dir: PathBuf,
}

impl Inner {
    fn poison_cause(&self) -> Option<Arc<str>> {
        self.poisoned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn poison(&self, e: fjall::Error) -> Arc<str> {
        let mut p = self.poisoned.lock().unwrap_or_else(|p| p.into_inner());
        p.get_or_insert_with(|| {
            let cause = poison_cause(&e, &self.dir);
            tracing::error!(error = %cause, "journal write failed; the journal is poisoned");
            cause.into()
        })
        .clone()
    }
}

/// How much a probe write beside the journal tries to write (see [`poison_cause`]).
const PROBE_BYTES: usize = 1 << 20;

/// The cause a poisoned journal reports, one a person can act on. An I/O error is named as the OS
/// names it ("No space left on device (os error 28)"), not in fjall's debug form. fjall's own
/// `Poisoned` means that one of its background threads (a memtable flush, a compaction, a
/// rotation of its log) failed earlier: fjall stops accepting writes then, but its error only
/// goes to its log (target `fjall`). So a probe write of [`PROBE_BYTES`] in the journal's
/// directory says whether the disk is full (or failing).
fn poison_cause(e: &fjall::Error, dir: &Path) -> String {
    if matches!(e, fjall::Error::Poisoned) {
        let probe = match probe_write(dir) {
            Ok(()) => format!(
                "a test write of {} KiB to {} succeeds",
                PROBE_BYTES >> 10,
                dir.display()
            ),
            Err(e) => format!(
                "a test write of {} KiB to {} fails: {e}",
                PROBE_BYTES >> 10,
                dir.display()
            ),
        };
        return format!(
            "a background flush or compaction of the journal failed (fjall logs the cause under \
             target `fjall`); {probe}"
        );
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.to_string();
        }
        source = s.source();
    }
    e.to_string()
}

/// Writes (and syncs) [`PROBE_BYTES`] to a file in `dir`, then removes it.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join("kafka-once.probe");
    let result = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&vec![0u8; PROBE_BYTES])?;
        f.sync_data()
    });
    let _ = std::fs::remove_file(&path);
    result
}

/// One partition's runs (see [`Run`]), as `(first offset, run)` pairs in offset order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionRuns {
    /// Runs of records that completed together.
    pub completed: Vec<(i64, Run)>,
    /// Runs of records that started together.
    pub started: Vec<(i64, Run)>,
}

/// The journal: cheap to clone, shared by every consumer of an app.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
    path: Arc<Path>,
    tx: SyncSender<Op>,
    state: Arc<Mutex<HashMap<String, Keyspace>>>,
    /// Declared after `tx`: when the last handle drops, its sender goes first (the writer sees
    /// the channel close and ends) and then this joins the writer thread, so the database and
    /// its lock are released when the last handle is gone, not a moment later.
    _writer: Arc<WriterThread>,
}

/// The writer thread, joined when the last [`Journal`] handle drops.
struct WriterThread(Option<std::thread::JoinHandle<()>>);

impl Drop for WriterThread {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            // Never join from the writer itself (it holds no handle today; this keeps it so).
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

const RECORDS: &str = "records";
const STEPS: &str = "steps";
const STARTED_RUNS: &str = "runs.started";
const COMPLETED_RUNS: &str = "runs.completed";
const STATE_PREFIX: &str = "state.";
const META: &str = "meta";

/// fjall creates a database in steps (lock file, keyspaces folder, log) and writes its
/// `version` marker last. A process killed in between leaves a directory that fjall can neither
/// recover (no marker) nor create again (the log exists). Nothing was written to such a journal
/// (writes begin after `open`), so, holding fjall's lock, its log and keyspaces folder are
/// removed and it is created afresh. A directory without the marker that holds anything else is
/// left alone (opening it is then an error); one whose lock another process holds is `Locked`.
fn clear_unfinished_creation(path: &Path) -> Result<(), JournalError> {
    if !path.is_dir() || path.join("version").exists() {
        return Ok(());
    }
    let names = |dir: &Path| -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir).map_or_else(
            |_| Vec::new(),
            |entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name())
                    .collect()
            },
        )
    };
    let root = names(path);
    let keyspaces = path.join("keyspaces");
    let pieces_only = !root.is_empty()
        && root
            .iter()
            .all(|n| n == "lock" || n == "0.jnl" || n == "keyspaces")
        && names(&keyspaces).iter().all(|n| n == "0");
    if !pieces_only || !root.iter().any(|n| n == "0.jnl" || n == "keyspaces") {
        return Ok(());
    }
    let io = |e: std::io::Error| JournalError::Open {
        path: path.to_path_buf(),
        cause: format!("removing an interrupted creation: {e}").into(),
    };
    // fjall's own lock: a process creating the journal right now holds it.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path.join("lock"))
        .map_err(io)?;
    if let Err(e) = lock.try_lock() {
        return Err(match e {
            std::fs::TryLockError::WouldBlock => JournalError::Locked(path.to_path_buf()),
            std::fs::TryLockError::Error(e) => io(e),
        });
    }
    tracing::warn!(path = %path.display(), "the journal's creation was interrupted; creating it again");
    if keyspaces.exists() {
        std::fs::remove_dir_all(&keyspaces).map_err(io)?;
    }
    let log = path.join("0.jnl");
    if log.exists() {
        std::fs::remove_file(log).map_err(io)?;
    }
    Ok(())
}

/// The longest state key fjall stores.
const MAX_STATE_KEY: usize = u16::MAX as usize;

/// State keys are 1 to 65,535 bytes (fjall's bounds; it panics outside them).
pub(crate) fn check_state_key(keyspace: &str, key: &[u8]) -> Result<(), JournalError> {
    if key.is_empty() || key.len() > MAX_STATE_KEY {
        return Err(JournalError::InvalidKey(format!(
            "a key of state keyspace {keyspace:?} must be 1 to {MAX_STATE_KEY} bytes, not {}",
            key.len()
        )));
    }
    Ok(())
}
const SEQ_KEY: &[u8] = b"seq";
/// Beside fjall's files: 8 bytes, big-endian, the last batch that was durable. It is written
/// (without an fsync of its own) only after that batch's fsync, so it never runs ahead of the
/// data; after a crash it may lag. fjall cuts a write-ahead log short at the first corrupt entry
/// as if it were a torn tail, dropping whatever follows; a journal that then ends before this
/// number lost durable writes, and opening it is an error ([`JournalError::LostWrites`]).
const DURABLE_MARKER: &str = "kafka-once.durable";

impl Journal {
    /// Opens (or creates) the journal in directory `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_with(path, JournalOptions::default())
    }

    /// Opens (or creates) the journal in directory `path`.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: JournalOptions,
    ) -> Result<Self, JournalError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |e: fjall::Error| match e {
            fjall::Error::Locked => JournalError::Locked(path.clone()),
            e => JournalError::Open {
                path: path.clone(),
                cause: e.to_string().into(),
            },
        };
        if options.max_wal_bytes < 64 << 20 || options.memtable_bytes < 1 << 20 {
            return Err(JournalError::Open {
                path,
                cause: "invalid options: max_wal_bytes must be at least 64 MiB and \
                        memtable_bytes at least 1 MiB"
                    .into(),
            });
        }
        clear_unfinished_creation(&path)?;
        let db = Database::builder(&path)
            .manual_journal_persist(true)
            .cache_size(options.cache_bytes)
            .max_journaling_size(options.max_wal_bytes)
            .open()
            .map_err(open_err)?;
        let memtable = options.memtable_bytes;
        let records = db
            .keyspace(RECORDS, || {
                KeyspaceCreateOptions::default().max_memtable_size(memtable)
            })
            .map_err(open_err)?;
        let steps = db
            .keyspace(STEPS, KeyspaceCreateOptions::default)
            .map_err(open_err)?;
        let started_runs = db
            .keyspace(STARTED_RUNS, KeyspaceCreateOptions::default)
            .map_err(open_err)?;
        let completed_runs = db
            .keyspace(COMPLETED_RUNS, KeyspaceCreateOptions::default)
            .map_err(open_err)?;
        let meta = db
            .keyspace(META, KeyspaceCreateOptions::default)
            .map_err(open_err)?;
        let recovered = match meta.get(SEQ_KEY).map_err(open_err)? {
            None => 0,
            Some(v) => {
                u64::from_be_bytes(v.as_ref().try_into().map_err(|_| JournalError::Corrupt {
                    what: "the journal's write counter".into(),
                    why: format!("{} bytes, not 8", v.len()),
                })?)
            }
        };
        let marker_path = path.join(DURABLE_MARKER);
        let durable = match std::fs::read(&marker_path) {
            Ok(b) if b.is_empty() => 0,
            Ok(b) => {
                u64::from_be_bytes(b.as_slice().try_into().map_err(|_| JournalError::Corrupt {
                    what: marker_path.display().to_string(),
                    why: format!("{} bytes, not 8", b.len()),
                })?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(JournalError::Open {
                    path: path.clone(),
                    cause: format!("reading {}: {e}", marker_path.display()).into(),
                });
            }
        };
        if durable > recovered {
            return Err(JournalError::LostWrites {
                path,
                recovered,
                durable,
                marker: marker_path,
            });
        }
        let marker = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&marker_path)
            .map_err(|e| JournalError::Open {
                path: path.clone(),
                cause: format!("opening {}: {e}", marker_path.display()).into(),
            })?;
        let (tx, rx) = std::sync::mpsc::sync_channel(options.queue.max(1));
        let inner = Arc::new(Inner {
            db,
            records,
            steps,
            started_runs,
            completed_runs,
            meta,
            seq: AtomicU64::new(recovered),
            marker,
            options,
            stats: Stats::default(),
            poisoned: Mutex::new(None),
            wrote: std::sync::atomic::AtomicBool::new(false),
            dir: path.clone(),
        });
        let writer = inner.clone();
        let thread = std::thread::Builder::new()
            .name("kafka-once-journal".into())
            .spawn(move || writer::run(writer, rx))
            .map_err(|e| JournalError::Open {
                path: path.clone(),
                cause: format!("cannot start the writer thread: {e}").into(),
            })?;
        Ok(Self {
            inner,
            path: path.into(),
            tx,
            state: Arc::default(),
            _writer: Arc::new(WriterThread(Some(thread))),
        })
    }

    /// The journal directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first write error, if the journal is poisoned.
    pub fn poisoned(&self) -> Option<JournalError> {
        self.inner.poison_cause().map(JournalError::Poisoned)
    }

    /// A poisoned journal is neither written nor read: fjall shows a batch to readers as soon
    /// as it is in its memtable, before the persist, so after a failed one they would see writes
    /// that are not on the disk (and may never be).
    fn usable(&self) -> Result<(), JournalError> {
        match self.poisoned() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn send(&self, op: Op) -> Result<(), JournalError> {
        self.usable()?;
        self.tx.send(op).map_err(|_| JournalError::Closed)
    }

    /// Records that attempt `attempts` of `key`'s workflow begins. Buffered: it reaches the OS
    /// with its batch (so it survives a killed process) and the disk with the next fsync. Waits
    /// only when the writer's queue is full.
    pub fn started(&self, key: &RecordKey, attempts: u32) -> Result<(), JournalError> {
        self.send(Op::Put {
            key: key.encode(),
            value: Entry::Started { attempts }.encode(),
        })
    }

    /// Records that the records of `partition` in `[first, end)` started attempt `attempts`
    /// together (buffered, as [`started`](Self::started)).
    pub fn started_run(
        &self,
        partition: &PartitionKey,
        first: i64,
        end: i64,
        attempts: u32,
    ) -> Result<(), JournalError> {
        self.send(Op::PutRun {
            key: partition.record(first).encode(),
            value: Run {
                end,
                attempts,
                at_ms: 0,
            }
            .encode(),
        })
    }

    /// Records that every record of `partition` in each run `[first, end)` completed in attempt
    /// `attempts`; the returned future resolves once that is durable. The write is queued when
    /// this is called (so calls are applied in call order), not when the future is polled. The
    /// caller guarantees that none of the records is finished already and that no other task
    /// finishes them (the runtime's own records of a current assignment); the runs must not
    /// overlap each other or earlier completed runs.
    pub fn complete_runs(
        &self,
        partition: &PartitionKey,
        runs: &[(i64, i64)],
        attempts: u32,
        at_ms: i64,
    ) -> impl std::future::Future<Output = Result<(), JournalError>> + Send + use<> {
        let (ack, rx) = oneshot::channel();
        let runs = runs
            .iter()
            .map(|&(first, end)| {
                let value = Run {
                    end,
                    attempts,
                    at_ms,
                }
                .encode();
                (partition.record(first).encode(), value)
            })
            .collect();
        let sent = self.send(Op::FinishRuns { runs, ack });
        async move {
            sent?;
            rx.await.map_err(|_| JournalError::Closed)?
        }
    }

    /// `partition`'s runs reaching `from` or beyond, in offset order.
    ///
    /// Reads what fjall holds, which includes writes on their way to the disk: a caller that acts
    /// on what it read as durable syncs after reading (see [`sync`](Self::sync)). Fails once the
    /// journal is poisoned.
    pub fn partition_runs(
        &self,
        partition: &PartitionKey,
        from: i64,
    ) -> Result<PartitionRuns, JournalError> {
        self.usable()?;
        let read = |keyspace: &Keyspace| -> Result<Vec<(i64, Run)>, JournalError> {
            let start = partition.record(from).encode();
            let end = partition.record(i64::MAX).encode();
            let mut out = Vec::new();
            // A run that starts below `from` may reach past it.
            let before = keyspace
                .range(partition.encode_prefix()..start.clone())
                .next_back();
            for kv in before.into_iter().chain(keyspace.range(start..=end)) {
                let (k, v) = kv.into_inner().map_err(JournalError::read)?;
                let key = RecordKey::decode(&k)?;
                let run = Run::decode(&v, || key.to_string())?;
                if run.end > from {
                    out.push((key.offset, run));
                }
            }
            Ok(out)
        };
        Ok(PartitionRuns {
            completed: read(&self.inner.completed_runs)?,
            started: read(&self.inner.started_runs)?,
        })
    }

    /// Every run in key order, `(first record key, completed?, run)` (for `journal dump` and
    /// `verify`); a corrupt one is an `Err` item, and iteration goes on.
    pub fn runs(&self) -> impl Iterator<Item = Result<(RecordKey, bool, Run), JournalError>> + '_ {
        let tagged = |keyspace: &Keyspace, completed: bool| {
            keyspace.iter().map(move |kv| {
                let (k, v) = kv.into_inner().map_err(JournalError::read)?;
                let key = RecordKey::decode(&k)?;
                let run = Run::decode(&v, || key.to_string())?;
                Ok((key, completed, run))
            })
        };
        tagged(&self.inner.completed_runs, true).chain(tagged(&self.inner.started_runs, false))
    }

    /// As [`started`](Self::started), but leaves a finished entry of `key` alone (for a caller
    /// that cannot rule out that another task finished the key meanwhile).
    pub fn started_unless_finished(
        &self,
        key: &RecordKey,
        attempts: u32,
    ) -> Result<(), JournalError> {
        self.send(Op::PutUnlessFinished {
            key: key.encode(),
            value: Entry::Started { attempts }.encode(),
        })
    }

    /// Records that `key` finished (`entry` is [`Entry::Completed`] or
    /// [`Entry::DeadLettered`]) and waits until that is durable. Returns `false`, writing
    /// nothing, when `key` was finished already: the journal holds at most one completion per key.
    ///
    /// Cancel safety: the write happens whether or not the future is polled to the end; a
    /// dropped future only loses the acknowledgement.
    pub async fn complete(&self, key: &RecordKey, entry: Entry) -> Result<bool, JournalError> {
        let r = self
            .complete_with(key, entry, true, Vec::new(), Vec::new())
            .await?;
        Ok(r == FinishResult::Written)
    }

    /// As [`complete`](Self::complete), with state writes applied in the same atomic batch, only
    /// if the key is not finished yet and every value in `reads` is unchanged (else nothing is
    /// written). `check: false` skips the look-up of an earlier finish, for a caller that knows
    /// no other writer of the key can exist.
    pub(crate) async fn complete_with(
        &self,
        key: &RecordKey,
        entry: Entry,
        check: bool,
        reads: Vec<StateRead>,
        state: Vec<StateWrite>,
    ) -> Result<FinishResult, JournalError> {
        let (ack, rx) = oneshot::channel();
        self.send(Op::Finish {
            key: key.encode(),
            value: entry.encode(),
            check,
            reads,
            state,
            ack,
        })?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Records step `index` of `key`'s workflow, with state writes in the same atomic batch, and
    /// waits until durable. Nothing is written when a step is recorded there already
    /// (`AlreadyFinished`: read it with [`steps`](Self::steps)) or a value in `reads` changed
    /// (`Conflict`).
    pub(crate) async fn record_step(
        &self,
        key: &RecordKey,
        index: u32,
        step: &StepRecord,
        reads: Vec<StateRead>,
        state: Vec<StateWrite>,
    ) -> Result<FinishResult, JournalError> {
        let (ack, rx) = oneshot::channel();
        self.send(Op::Step {
            key: step::step_key(&key.encode(), index),
            value: step.encode(),
            reads,
            state,
            ack,
        })?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// The recorded steps of `key`'s workflow, by index.
    pub fn steps(&self, key: &RecordKey) -> Result<Vec<(u32, StepRecord)>, JournalError> {
        let record = key.encode();
        let start = step::step_key(&record, 0);
        let end = step::step_key(&record, u32::MAX);
        let mut out = Vec::new();
        for kv in self.inner.steps.range(start..=end) {
            let (k, v) = kv.into_inner().map_err(JournalError::read)?;
            let index = k
                .get(record.len()..)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| JournalError::Corrupt {
                    what: format!("step key of {key}"),
                    why: "not a record key and a 4-byte index".into(),
                })?;
            out.push((index, StepRecord::decode(&v, || format!("{key}#{index}"))?));
        }
        Ok(out)
    }

    /// Applies state writes on their own and waits until they are durable.
    pub(crate) async fn write_state(&self, state: Vec<StateWrite>) -> Result<(), JournalError> {
        let (ack, rx) = oneshot::channel();
        self.send(Op::State { state, ack })?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// The key under which step `index` of `key`'s workflow is stored.
    pub(crate) fn step_key(key: &RecordKey, index: u32) -> Vec<u8> {
        step::step_key(&key.encode(), index)
    }

    /// Makes what a read saw durable: a [`sync`](Self::sync) once this process wrote to the
    /// journal (fjall shows a batch to readers before its fsync), nothing before that (what a read
    /// sees then was recovered from the disk at open).
    pub async fn sync_reads(&self) -> Result<(), JournalError> {
        self.usable()?;
        if self.inner.wrote.load(std::sync::atomic::Ordering::SeqCst) {
            self.sync().await?;
        }
        Ok(())
    }

    /// Waits until every write sent before this call is durable.
    pub async fn sync(&self) -> Result<(), JournalError> {
        let (ack, rx) = oneshot::channel();
        self.send(Op::Sync { ack })?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Removes `partition`'s entries below `offset`; returns how many went.
    pub async fn prune(
        &self,
        partition: &PartitionKey,
        offset: i64,
    ) -> Result<usize, JournalError> {
        self.prune_range(partition, None, offset).await
    }

    /// Removes `partition`'s entries from `from` (the start of the partition when `None`) up to
    /// `offset`. A caller that pruned up to `from` before passes it, so the scan does not walk
    /// over the tombstones of earlier prunes again.
    pub async fn prune_range(
        &self,
        partition: &PartitionKey,
        from: Option<i64>,
        offset: i64,
    ) -> Result<usize, JournalError> {
        let (ack, rx) = oneshot::channel();
        let prefix = match from {
            Some(f) => partition.record(f).encode(),
            None => partition.encode_prefix(),
        };
        self.send(Op::Prune {
            prefix,
            below: partition.record(offset).encode(),
            ack,
        })?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// The entry of `key`, if any: its own when finished, else what a completed run covering it
    /// says (a completion), else its own started entry, else what the last started run reaching
    /// it says.
    pub fn get(&self, key: &RecordKey) -> Result<Option<Entry>, JournalError> {
        let encoded = key.encode();
        let value = self
            .inner
            .records
            .get(&encoded)
            .map_err(JournalError::read)?;
        let own = value
            .map(|v| Entry::decode(&v, || key.to_string()))
            .transpose()?;
        if own.as_ref().is_some_and(Entry::is_finished) {
            return Ok(own);
        }
        if let Some(run) = covering_run(&self.inner.completed_runs, &encoded)? {
            return Ok(Some(Entry::Completed {
                attempts: run.attempts,
                at_ms: run.at_ms,
            }));
        }
        if own.is_some() {
            return Ok(own);
        }
        Ok(
            covering_run(&self.inner.started_runs, &encoded)?.map(|run| Entry::Started {
                attempts: run.attempts,
            }),
        )
    }

    /// `partition`'s entries at or above `from`, in offset order.
    ///
    /// Reads what fjall holds, which includes writes on their way to the disk: a caller that acts
    /// on what it read as durable syncs after reading (see [`sync`](Self::sync)). Fails once the
    /// journal is poisoned.
    pub fn partition_entries(
        &self,
        partition: &PartitionKey,
        from: i64,
    ) -> Result<Vec<(i64, Entry)>, JournalError> {
        self.usable()?;
        let start = partition.record(from).encode();
        let end = partition.record(i64::MAX).encode();
        let mut out = Vec::new();
        for kv in self.inner.records.range(start..=end) {
            let (k, v) = kv.into_inner().map_err(JournalError::read)?;
            let key = RecordKey::decode(&k)?;
            out.push((key.offset, Entry::decode(&v, || key.to_string())?));
        }
        Ok(out)
    }

    /// Every record entry in key order (for `journal dump` and `verify`); a corrupt one is an
    /// `Err` item, and iteration goes on.
    pub fn entries(&self) -> impl Iterator<Item = Result<(RecordKey, Entry), JournalError>> + '_ {
        self.inner.records.iter().map(|kv| {
            let (k, v) = kv.into_inner().map_err(JournalError::read)?;
            let key = RecordKey::decode(&k)?;
            let entry = Entry::decode(&v, || key.to_string())?;
            Ok((key, entry))
        })
    }

    /// Counters and size.
    pub fn stats(&self) -> JournalStats {
        let s = &self.inner.stats;
        JournalStats {
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            durable_writes: s.durable_writes.load(Ordering::Relaxed),
            pruned: s.pruned.load(Ordering::Relaxed),
            disk_bytes: self.inner.db.disk_space().unwrap_or(0),
        }
    }

    /// The state keyspace `name` (created on first use). Names are 1–200 characters of
    /// `[A-Za-z0-9_-]`.
    pub(crate) fn state_keyspace(&self, name: &str) -> Result<Keyspace, JournalError> {
        let valid = !name.is_empty()
            && name.len() <= 200
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(JournalError::InvalidKey(format!(
                "state keyspace name {name:?}: use 1-200 characters of A-Z a-z 0-9 _ -"
            )));
        }
        let mut cache = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ks) = cache.get(name) {
            return Ok(ks.clone());
        }
        let ks = self
            .inner
            .db
            .keyspace(
                &format!("{STATE_PREFIX}{name}"),
                KeyspaceCreateOptions::default,
            )
            .map_err(JournalError::read)?;
        cache.insert(name.to_string(), ks.clone());
        Ok(ks)
    }

    /// Reads `key` from the state keyspace `name` (as committed; see
    /// [`dispatch::WorkflowContext::transaction`](crate::dispatch::WorkflowContext::transaction)).
    pub fn state_get(&self, name: &str, key: &[u8]) -> Result<Option<Bytes>, JournalError> {
        check_state_key(name, key)?;
        let ks = self.state_keyspace(name)?;
        let v = ks.get(key).map_err(JournalError::read)?;
        Ok(v.map(|v| Bytes::copy_from_slice(&v)))
    }

    /// Every key and value of the state keyspace `name`, in key order.
    pub fn state_scan(&self, name: &str) -> Result<Vec<(Bytes, Bytes)>, JournalError> {
        let ks = self.state_keyspace(name)?;
        let mut out = Vec::new();
        for kv in ks.iter() {
            let (k, v) = kv.into_inner().map_err(JournalError::read)?;
            out.push((Bytes::copy_from_slice(&k), Bytes::copy_from_slice(&v)));
        }
        Ok(out)
    }

    /// Checks that every key, entry and run decodes and holds sane values (at least one attempt,
    /// an offset of 0 or more, runs that are not empty, completed runs that do not overlap);
    /// returns the number of entries and runs read and the problems found (empty when the
    /// journal is sound).
    pub fn verify(&self) -> (usize, Vec<String>) {
        let mut problems = Vec::new();
        let mut n = 0;
        let mut last_completed: Option<(PartitionKey, i64)> = None;
        for item in self.runs() {
            n += 1;
            match item {
                Ok((key, completed, run)) => {
                    let kind = if completed { "completed" } else { "started" };
                    if run.end <= key.offset || key.offset < 0 {
                        problems.push(format!("{key}: {kind} run ending at {} is empty", run.end));
                    }
                    if run.attempts == 0 {
                        problems.push(format!("{key}: {kind} run with 0 attempts"));
                    }
                    if completed {
                        let pk = key.partition_key();
                        if let Some((last_pk, last_end)) = &last_completed
                            && *last_pk == pk
                            && key.offset < *last_end
                        {
                            problems.push(format!(
                                "{key}: completed run overlaps the one before (ending at {last_end})"
                            ));
                        }
                        last_completed = Some((pk, run.end));
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        for item in self.entries() {
            n += 1;
            match item {
                Ok((key, entry)) => {
                    if entry.attempts() == 0 {
                        problems.push(format!("{key}: {} with 0 attempts", entry.state_name()));
                    }
                    if key.offset < 0 {
                        problems.push(format!("{key}: negative offset"));
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        (n, problems)
    }
}

#[cfg(test)]
mod tests;

/// The last run in `keyspace` starting at or before the record `key` (encoded) if it reaches
/// past it.
pub(crate) fn covering_run(keyspace: &Keyspace, key: &[u8]) -> Result<Option<Run>, JournalError> {
    let Some((prefix, offset)) = key::split_record_key(key) else {
        return Ok(None);
    };
    let Some(kv) = keyspace.range(..=key).next_back() else {
        return Ok(None);
    };
    let (k, v) = kv.into_inner().map_err(JournalError::read)?;
    match key::split_record_key(&k) {
        Some((p, _)) if p == prefix => {}
        _ => return Ok(None),
    }
    let run = Run::decode(&v, || key::hex(&k))?;
    Ok((run.end > offset).then_some(run))
}
