//! The exactly-once demo's workflow and its audit, shared by `kafka-once demo` and the crash
//! tests: a worker whose workflow keeps a durable per-key tally, and an audit that counts, from
//! the journal's state, records completed once, twice or never, and order violations.
//!
//! The workflow's transaction (committed atomically with its completion) writes:
//! - `done`: `PPPP/OOOOOOOOOOOO` → completions of that record (u64 BE);
//! - `tally`: record key → completions of records with that key (u64 BE);
//! - `last`: partition (i32 BE) → the last offset completed (i64 BE);
//! - `order`: partition → completions that did not directly follow the previous one (u64 BE).
//!
//! Before its transaction it appends `partition offset attempt` to a side-effect ledger file (not
//! transactional, like any external effect), which shows how often workflows ran, and logs the
//! run at debug (target `kafka_once::demo`), in order with the group's events in the worker's log.
//! The `last` and `order` keyspaces are kept only in ordered modes (in `Ordering::None`
//! they would be one hot key per partition that every workflow conflicts on).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::ClientConfig;
use crate::dispatch::Transaction;
use crate::dispatch::{
    DispatchError, KafkaMessage, KafkaOnce, Ordering, WorkflowContext, WorkflowError,
};
use crate::journal::{Journal, JournalError};

/// How a demo worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Client configuration with `group.id` (and, for fast restarts, `group.instance.id`).
    pub config: ClientConfig,
    /// The topic to consume.
    pub topic: String,
    /// The journal directory.
    pub path: PathBuf,
    /// The ordering mode.
    pub ordering: Ordering,
    /// The side-effect ledger file, appended to by every workflow run.
    pub ledger: Option<PathBuf>,
    /// In-flight bound over all partitions.
    pub max_in_flight: usize,
    /// Commit interval.
    pub commit_interval: Duration,
    /// What the workflow does.
    pub workflow: DemoWorkflow,
    /// Copy every record (key and value, plus the `kafka-once.send-id` header) to this topic
    /// with `ctx.send`, before the tally.
    pub send_to: Option<String>,
    /// How long each workflow sleeps first (a slow handler); zero for none.
    pub handler_delay: Duration,
    /// The first attempt of every record whose offset + 1 is a multiple of this fails (after
    /// its ledger line); the retry succeeds.
    pub fail_every: Option<u64>,
    /// The first attempt of every record whose offset + 2 is a multiple of this panics (after
    /// its ledger line); the retry succeeds.
    pub panic_every: Option<u64>,
    /// Every attempt fails (after its ledger line) for records whose value is this: a poison
    /// record, which with the default halt policy stops its partition and pins its commit.
    pub poison: Option<Vec<u8>>,
}

/// The demo worker's workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DemoWorkflow {
    /// One transaction: the per-record, per-key and order bookkeeping.
    #[default]
    Tally,
    /// The tally, plus one global counter (`counters/total`, u64 BE) incremented in the same
    /// transaction: every workflow contends on that key.
    Counter,
    /// Three checkpointed steps, each appending `partition offset step-N attempt` to the ledger,
    /// then the tally. With `kill_after: Some(k)`, the worker SIGKILLs itself right after step k
    /// of the first record that reaches it, once (a marker file beside the ledger remembers it).
    Steps {
        /// The step after which to die.
        kill_after: Option<u32>,
    },
}

fn get_u64(tx: &mut Transaction<'_>, ks: &str, key: &[u8]) -> Result<u64, JournalError> {
    Ok(tx
        .get(ks, key)?
        .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
        .map_or(0, u64::from_be_bytes))
}

/// The key of a record in the `done` keyspace.
pub fn done_key(partition: i32, offset: i64) -> String {
    format!("{partition:04}/{offset:012}")
}

/// Runs the demo worker until SIGTERM, SIGINT or a fatal error.
pub async fn run_worker(opts: WorkerOptions) -> Result<(), DispatchError> {
    let app = KafkaOnce::open(&opts.path)?;
    let ledger = match &opts.ledger {
        Some(p) => Some(Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| DispatchError::Config(format!("ledger {}: {e}", p.display())))?,
        ))),
        None => None,
    };
    let ordering = opts.ordering;
    let workflow = opts.workflow;
    let marker = opts.ledger.as_ref().map(|l| l.with_extension("killed"));
    let send_to = opts.send_to.clone();
    let delay = opts.handler_delay;
    let (fail_every, panic_every) = (opts.fail_every, opts.panic_every);
    let poison = opts.poison.clone();
    let injected = move |o: i64, attempt: u32, every: Option<u64>, shift: i64| {
        attempt == 1
            && every.is_some_and(|n| n > 0 && u64::try_from(o + shift).is_ok_and(|v| v % n == 0))
    };
    app.kafka_consumer(opts.config, [opts.topic])
        .ordering(opts.ordering)
        .max_in_flight(opts.max_in_flight)
        .max_in_flight_per_partition(opts.max_in_flight)
        .commit_interval(opts.commit_interval)
        .workflow(move |ctx: WorkflowContext, msg: KafkaMessage| {
            let ledger = ledger.clone();
            let marker = marker.clone();
            let send_to = send_to.clone();
            let poison = poison.clone();
            async move {
                let append = |line: String| -> std::io::Result<()> {
                    if let Some(l) = &ledger {
                        // One append per line: a SIGKILL keeps what was written (page cache).
                        l.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .write_all(line.as_bytes())?;
                    }
                    Ok(())
                };
                let (p, o, attempt) = (msg.partition(), msg.offset(), ctx.attempt());
                // Each run, in the log's order relative to the group's events (the model test
                // checks fencing with it).
                tracing::debug!(partition = p, offset = o, attempt, "demo workflow run");
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                match workflow {
                    DemoWorkflow::Tally | DemoWorkflow::Counter => {
                        append(format!("{p} {o} {attempt}\n"))?;
                        if poison.as_deref().is_some_and(|v| v == msg.value()) {
                            return Err(WorkflowError::from("poison record (--poison)"));
                        }
                        if injected(o, attempt, fail_every, 1) {
                            return Err(WorkflowError::from("injected failure (--fail-every)"));
                        }
                        if injected(o, attempt, panic_every, 2) {
                            panic!("injected panic (--panic-every) at {p}/{o}");
                        }
                    }
                    DemoWorkflow::Steps { kill_after } => {
                        for i in 1..=3u32 {
                            let name = format!("step-{i}");
                            let out: u32 = ctx
                                .step(&name, || async {
                                    append(format!("{p} {o} {name} {attempt}\n"))?;
                                    Ok::<u32, WorkflowError>(i)
                                })
                                .await?;
                            if out != i {
                                return Err(format!("step {i} returned {out}").into());
                            }
                            if kill_after == Some(i)
                                && let Some(m) = &marker
                                && std::fs::OpenOptions::new()
                                    .write(true)
                                    .create_new(true)
                                    .open(m)
                                    .is_ok()
                            {
                                let _ = std::process::Command::new("kill")
                                    .args(["-KILL", &std::process::id().to_string()])
                                    .status();
                            }
                        }
                    }
                }
                if let Some(topic) = &send_to {
                    let mut copy =
                        crate::producer::ProducerRecord::new(topic, msg.value().to_vec());
                    if let Some(k) = msg.key() {
                        copy = copy.key(k.to_vec());
                    }
                    ctx.send(copy).await?;
                }
                tally(&ctx, &msg, ordering, workflow == DemoWorkflow::Counter).await?;
                Ok::<(), WorkflowError>(())
            }
        })?;
    app.run().await
}

async fn tally(
    ctx: &WorkflowContext,
    msg: &KafkaMessage,
    ordering: Ordering,
    counter: bool,
) -> Result<(), WorkflowError> {
    ctx.transaction(|tx| {
        if counter {
            let n = get_u64(tx, "counters", b"total")?;
            tx.put("counters", b"total", &(n + 1).to_be_bytes())?;
        }
        let (p, o) = (msg.partition(), msg.offset());
        let dk = done_key(p, o);
        let n = get_u64(tx, "done", dk.as_bytes())?;
        tx.put("done", dk.as_bytes(), &(n + 1).to_be_bytes())?;
        // A record without a key (or with an empty one) counts under "(none)": state keys are
        // never empty.
        let key = msg.key().filter(|k| !k.is_empty()).unwrap_or(b"(none)");
        let t = get_u64(tx, "tally", key)?;
        tx.put("tally", key, &(t + 1).to_be_bytes())?;
        // The order check: `Partition`, each record of a partition right after the one before
        // it; `Key`, each record of a key after the one before it (offsets of a key are not
        // consecutive); `None`, nothing. Violations count per partition.
        let pk = p.to_be_bytes();
        let lane = match ordering {
            Ordering::None => return Ok(()),
            Ordering::Partition => pk.to_vec(),
            Ordering::Key => [&pk[..], key].concat(),
        };
        let last = tx
            .get("last", &lane)?
            .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
            .map(i64::from_be_bytes);
        let follows = match (last, ordering) {
            (None, _) => true,
            (Some(l), Ordering::Partition) => o == l + 1,
            (Some(l), _) => o > l,
        };
        if !follows {
            let v = get_u64(tx, "order", &pk)?;
            tx.put("order", &pk, &(v + 1).to_be_bytes())?;
        }
        tx.put("last", &lane, &o.to_be_bytes())
    })
    .await
}

/// What the audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Records in the topic (from the end offsets given).
    pub records: u64,
    /// Records whose workflow completed exactly once.
    pub completed_once: u64,
    /// Extra completions (a record completed k > 1 times adds k − 1).
    pub duplicates: u64,
    /// Records with no completion.
    pub missing: u64,
    /// Completions that did not directly follow the previous one of their partition (meaningful
    /// for `Ordering::Partition`).
    pub order_violations: u64,
    /// Keys whose tally differs from the records produced with that key.
    pub tally_mismatches: u64,
    /// Workflow runs in the side-effect ledger (≥ completions; the excess are re-runs of
    /// records in flight at a kill).
    pub invocations: u64,
    /// The most runs of one record in the ledger.
    pub max_runs_per_record: u64,
    /// The global counter (`counters/total`) of [`DemoWorkflow::Counter`], 0 otherwise.
    pub counter: u64,
}

impl Audit {
    /// Whether exactly-once held: no duplicate, nothing missing, tallies right, and (when
    /// `in_order`) no order violation.
    pub fn is_clean(&self, in_order: bool) -> bool {
        self.duplicates == 0
            && self.missing == 0
            && self.tally_mismatches == 0
            && (!in_order || self.order_violations == 0)
    }
}

impl std::fmt::Display for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "records                 {}", self.records)?;
        writeln!(f, "completed once          {}", self.completed_once)?;
        writeln!(f, "duplicates              {}", self.duplicates)?;
        writeln!(f, "missing                 {}", self.missing)?;
        writeln!(f, "order violations        {}", self.order_violations)?;
        writeln!(f, "tally mismatches        {}", self.tally_mismatches)?;
        write!(
            f,
            "workflow runs (ledger)  {} (at most {} per record)",
            self.invocations, self.max_runs_per_record
        )?;
        if self.counter > 0 {
            write!(f, "\nglobal counter          {}", self.counter)?;
        }
        Ok(())
    }
}

/// Audits a demo journal: `end_offsets` are the partitions' end offsets (records 0..end, no
/// gaps), `expected_tally` the records produced per key.
pub fn audit(
    journal: &Journal,
    end_offsets: &BTreeMap<i32, i64>,
    expected_tally: &HashMap<Vec<u8>, u64>,
    ledger: Option<&Path>,
) -> Result<Audit, JournalError> {
    let mut a = Audit::default();
    let mut done: HashMap<Vec<u8>, u64> = HashMap::new();
    for (k, v) in journal.state_scan("done")? {
        let n = <[u8; 8]>::try_from(&v[..]).map_or(0, u64::from_be_bytes);
        done.insert(k.to_vec(), n);
    }
    for (&p, &end) in end_offsets {
        for o in 0..end {
            a.records += 1;
            match done.remove(done_key(p, o).as_bytes()) {
                None | Some(0) => a.missing += 1,
                Some(1) => a.completed_once += 1,
                Some(n) => {
                    a.completed_once += 1;
                    a.duplicates += n - 1;
                }
            }
        }
    }
    // Completions of records that should not exist count as duplicates too.
    a.duplicates += done.values().sum::<u64>();
    for (_, v) in journal.state_scan("order")? {
        a.order_violations += <[u8; 8]>::try_from(&v[..]).map_or(0, u64::from_be_bytes);
    }
    let mut tallies: HashMap<Vec<u8>, u64> = HashMap::new();
    for (k, v) in journal.state_scan("tally")? {
        tallies.insert(
            k.to_vec(),
            <[u8; 8]>::try_from(&v[..]).map_or(0, u64::from_be_bytes),
        );
    }
    for (k, want) in expected_tally {
        if tallies.remove(k).unwrap_or(0) != *want {
            a.tally_mismatches += 1;
        }
    }
    a.tally_mismatches += tallies.len() as u64;
    a.counter = journal
        .state_get("counters", b"total")?
        .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
        .map_or(0, u64::from_be_bytes);
    if let Some(path) = ledger {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut runs: HashMap<&str, u64> = HashMap::new();
        for line in text.lines() {
            // `p o attempt` per run, or `p o step-N attempt` per step run.
            let mut fields = line.split(' ');
            let (Some(p), Some(o)) = (fields.next(), fields.next()) else {
                continue;
            };
            if fields.clone().count() != 1 {
                continue;
            }
            let po = &line[..p.len() + 1 + o.len()];
            a.invocations += 1;
            *runs.entry(po).or_default() += 1;
        }
        a.max_runs_per_record = runs.values().copied().max().unwrap_or(0);
    }
    Ok(a)
}

/// How [`drive`] runs a worker process and kills it.
#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// The `kafka-once` executable (its hidden `demo-worker` command is the worker).
    pub exe: PathBuf,
    /// Arguments after `demo-worker`.
    pub worker_args: Vec<String>,
    /// Where the workers' stderr goes (appended).
    pub log: PathBuf,
    /// Client configuration for reading the group's committed offsets.
    pub probe_config: ClientConfig,
    /// The partitions of the topic, and their end offsets.
    pub end_offsets: BTreeMap<crate::consumer::TopicPartition, i64>,
    /// SIGKILLs to deliver, each after a random run time in `kill_after`.
    pub kills: usize,
    /// The range of run time before each kill.
    pub kill_after: std::ops::Range<Duration>,
    /// Give up after this long.
    pub deadline: Duration,
    /// Extra environment variables for the worker processes.
    pub env: Vec<(String, String)>,
    /// Restart a worker that died on its own (a fail point), instead of failing.
    pub restart_crashed: bool,
}

/// Progress of [`drive`].
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Committed records so far.
    pub committed: i64,
    /// Records in the topic.
    pub total: i64,
    /// Kills so far.
    pub kills: usize,
    /// Time since the first worker started.
    pub elapsed: Duration,
    /// Set when this report is about a kill just made.
    pub killed: bool,
}

/// Runs the worker as a child process, SIGKILLs and restarts it `kills` times at random moments,
/// waits until the group committed every record, then stops it with SIGTERM. `progress` is called
/// about every second and after each kill. Returns the kills made and the time taken.
pub async fn drive(
    opts: &DriveOptions,
    mut progress: impl FnMut(Progress),
) -> Result<(usize, Duration), String> {
    use rand::Rng;
    use tokio::process::Command;
    let spawn = || -> Result<tokio::process::Child, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&opts.log)
            .map_err(|e| format!("{}: {e}", opts.log.display()))?;
        Command::new(&opts.exe)
            .arg("demo-worker")
            .args(&opts.worker_args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", opts.exe.display()))
    };
    let tps: Vec<_> = opts.end_offsets.keys().cloned().collect();
    let total: i64 = opts.end_offsets.values().sum();
    let probe = crate::consumer::group::GroupConsumer::new(opts.probe_config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let random_run = || {
        let (a, b) = (opts.kill_after.start, opts.kill_after.end);
        if b <= a {
            a
        } else {
            rand::rng().random_range(a..b)
        }
    };
    let start = tokio::time::Instant::now();
    let mut child = spawn()?;
    let mut kill_at = start + random_run();
    let mut kills = 0;
    let mut last_report = start;
    // The last committed count read, and when it last grew (for the deadline's message).
    let (mut seen, mut grew) = (0i64, start);
    let result = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if start.elapsed() > opts.deadline {
            break Err(format!(
                "not done within {:?}: {seen} of {total} committed after {kills} of {} kills, \
                 the last progress {:?} ago; see {}",
                opts.deadline,
                opts.kills,
                grew.elapsed(),
                opts.log.display()
            ));
        }
        if let Ok(Some(status)) = child.try_wait() {
            if opts.restart_crashed && !status.success() {
                tracing::info!(%status, "the worker died on its own; restarting it");
                child = spawn()?;
                continue;
            }
            break Err(format!(
                "the worker exited on its own ({status}); see {}",
                opts.log.display()
            ));
        }
        let committed: i64 = match probe.committed(&tps).await {
            Ok(c) => c.values().map(|o| o.offset).sum(),
            Err(_) => continue,
        };
        let now = tokio::time::Instant::now();
        if committed > seen {
            (seen, grew) = (committed, now);
        }
        let mut report = Progress {
            committed,
            total,
            kills,
            elapsed: start.elapsed(),
            killed: false,
        };
        if kills < opts.kills && now >= kill_at {
            let _ = child.start_kill();
            let _ = child.wait().await;
            kills += 1;
            report.kills = kills;
            report.killed = true;
            progress(report);
            child = spawn()?;
            kill_at = tokio::time::Instant::now() + random_run();
            continue;
        }
        if now - last_report >= Duration::from_secs(1) || committed >= total {
            last_report = now;
            progress(report);
        }
        if committed >= total && kills >= opts.kills {
            break Ok((kills, start.elapsed()));
        }
    };
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    probe.close().await;
    result
}
