//! `kafka-once demo`: produce records, run an exactly-once worker as a child process, SIGKILL it
//! at random moments, restart it, and audit the journal. `demo-worker` is the child.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use kafka_once::cluster::{Cluster, NewTopic};
use kafka_once::config::{AutoOffsetReset, ClientConfig};
use kafka_once::consumer::TopicPartition;
use kafka_once::demo::{DemoWorkflow, DriveOptions, WorkerOptions, audit, drive, run_worker};
use kafka_once::dispatch::Ordering;
use kafka_once::journal::Journal;
use kafka_once::producer::{Producer, ProducerRecord};
use tokio::time::Instant;

use crate::Error;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Records to produce.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Partitions of the demo topic.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// How many times the worker is SIGKILLed and restarted.
    #[arg(long, default_value_t = 3)]
    pub kills: usize,
    /// Ordering mode of the worker.
    #[arg(long, value_enum, default_value = "partition")]
    pub ordering: OrderingArg,
    /// Journal directory (default: a new temporary directory, kept afterwards).
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Bootstrap servers; default `KAFKA_BOOTSTRAP`, else a local broker started for the demo.
    #[arg(long)]
    pub bootstrap: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum OrderingArg {
    None,
    Partition,
    Key,
}

impl OrderingArg {
    fn name(self) -> &'static str {
        match self {
            OrderingArg::None => "none",
            OrderingArg::Partition => "partition",
            OrderingArg::Key => "key",
        }
    }
}

impl From<OrderingArg> for Ordering {
    fn from(o: OrderingArg) -> Self {
        match o {
            OrderingArg::None => Ordering::None,
            OrderingArg::Partition => Ordering::Partition,
            OrderingArg::Key => Ordering::Key,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub group: String,
    #[arg(long)]
    pub path: PathBuf,
    #[arg(long, value_enum, default_value = "partition")]
    pub ordering: OrderingArg,
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Static member id (restarts within the session timeout cause no rebalance).
    #[arg(long)]
    pub instance_id: Option<String>,
    #[arg(long, default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Also increment one global counter in every workflow's transaction.
    #[arg(long)]
    pub counter: bool,
    /// Run three checkpointed steps per record (ledger lines per step).
    #[arg(long)]
    pub steps: bool,
    /// Copy every record to this topic with `ctx.send` (exactly once).
    #[arg(long)]
    pub send_to: Option<String>,
    /// With --steps: SIGKILL the worker once, right after this step of the first record.
    #[arg(long, requires = "steps")]
    pub kill_after_step: Option<u32>,
    /// Each workflow sleeps this many milliseconds first (a slow handler).
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// The first attempt fails for every record whose offset + 1 is a multiple of N.
    #[arg(long, value_name = "N")]
    pub fail_every: Option<u64>,
    /// The first attempt panics for every record whose offset + 2 is a multiple of N.
    #[arg(long, value_name = "N")]
    pub panic_every: Option<u64>,
    /// Every attempt fails for records whose value is VALUE (with the halt policy, the
    /// partition stops there).
    #[arg(long, value_name = "VALUE")]
    pub poison: Option<String>,
}

fn worker_config(
    bootstrap: &str,
    group: &str,
    instance: Option<&str>,
) -> Result<ClientConfig, Error> {
    let mut b = ClientConfig::new(bootstrap)?
        .to_builder()
        .group_id(group)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(500))
        .fetch_max_wait(Duration::from_millis(100));
    if let Some(i) = instance {
        b = b.group_instance_id(i);
    }
    Ok(b.build()?)
}

pub async fn worker(args: WorkerArgs) -> Result<(), Error> {
    // A panic message in one locked write: the default hook writes it in pieces to an unlocked
    // stderr, tearing the log lines of other threads that tests parse (the injected panics).
    std::panic::set_hook(Box::new(|info| {
        use std::io::Write;
        let thread = std::thread::current();
        let message = format!("thread '{}' {info}\n", thread.name().unwrap_or("<unnamed>"));
        let _ = std::io::stderr().lock().write_all(message.as_bytes());
    }));
    let config = worker_config(&args.bootstrap, &args.group, args.instance_id.as_deref())?;
    run_worker(WorkerOptions {
        config,
        topic: args.topic,
        path: args.path,
        ordering: args.ordering.into(),
        ledger: args.ledger,
        max_in_flight: args.max_in_flight,
        commit_interval: Duration::from_millis(200),
        send_to: args.send_to,
        handler_delay: Duration::from_millis(args.delay_ms),
        fail_every: args.fail_every,
        panic_every: args.panic_every,
        poison: args.poison.map(String::into_bytes),
        workflow: if args.steps {
            DemoWorkflow::Steps {
                kill_after: args.kill_after_step,
            }
        } else if args.counter {
            DemoWorkflow::Counter
        } else {
            DemoWorkflow::Tally
        },
    })
    .await?;
    Ok(())
}

pub async fn demo(args: DemoArgs) -> Result<(), Error> {
    let (bootstrap, local) = crate::bootstrap_or_local(args.bootstrap.clone()).await?;
    println!("broker {bootstrap}");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let topic = format!("kafka-once-demo-{stamp}");
    let group = format!("{topic}-group");
    let base = ClientConfig::new(&bootstrap)?;
    let cluster = Cluster::connect(base.clone()).await?;
    cluster
        .create_topic(NewTopic::new(&topic, args.partitions))
        .await?;
    println!("created {topic} with {} partitions", args.partitions);

    let producer = Producer::new(base.clone()).await?;
    let mut expected_tally: HashMap<Vec<u8>, u64> = HashMap::new();
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    let mut end_offsets: BTreeMap<i32, i64> = (0..args.partitions).map(|p| (p, 0)).collect();
    let mut note = |m: kafka_once::producer::RecordMetadata| {
        let end = end_offsets.entry(m.partition).or_default();
        *end = (*end).max(m.offset + 1);
    };
    for i in 0..args.records {
        let key = format!("key-{}", i % 1000);
        *expected_tally.entry(key.clone().into_bytes()).or_default() += 1;
        pending.push_back(
            producer
                .send(ProducerRecord::new(&topic, i.to_string()).key(key))
                .await?,
        );
        if pending.len() >= 10_000 {
            note(pending.pop_front().expect("non-empty").await?);
        }
    }
    for d in pending {
        note(d.await?);
    }
    producer.close().await;
    println!(
        "produced {} records in {:.1}s",
        args.records,
        started.elapsed().as_secs_f64()
    );
    let total: i64 = end_offsets.values().sum();

    let path = match &args.path {
        Some(p) => p.clone(),
        None => tempfile::Builder::new()
            .prefix("kafka-once-demo-")
            .tempdir()?
            .keep(),
    };
    std::fs::create_dir_all(&path)?;
    let ledger = path.join("ledger.txt");
    let log = path.join("worker.log");
    let worker_args: Vec<String> = vec![
        "--bootstrap".into(),
        bootstrap.clone(),
        "--topic".into(),
        topic.clone(),
        "--group".into(),
        group.clone(),
        "--path".into(),
        path.join("journal").display().to_string(),
        "--ordering".into(),
        args.ordering.name().into(),
        "--ledger".into(),
        ledger.display().to_string(),
        "--instance-id".into(),
        "demo-worker".into(),
    ];
    println!(
        "worker journal {}, log {}",
        path.join("journal").display(),
        log.display()
    );
    let end: BTreeMap<TopicPartition, i64> = end_offsets
        .iter()
        .map(|(&p, &e)| (TopicPartition::new(topic.as_str(), p), e))
        .collect();
    let opts = DriveOptions {
        exe: std::env::current_exe()?,
        worker_args,
        log: log.clone(),
        probe_config: worker_config(&bootstrap, &group, None)?,
        end_offsets: end,
        kills: args.kills,
        kill_after: Duration::from_millis(1500)..Duration::from_millis(6000),
        deadline: Duration::from_secs(3600),
        env: Vec::new(),
        restart_crashed: false,
    };
    let (kills, took) = drive(&opts, |p| {
        if p.killed {
            println!(
                "  SIGKILL #{} with {} committed; restarting the worker",
                p.kills, p.committed
            );
        } else {
            println!(
                "  committed {:>8}/{}  {:>8.0} records/s  {} kills",
                p.committed,
                p.total,
                p.committed.max(0) as f64 / p.elapsed.as_secs_f64().max(0.001),
                p.kills
            );
        }
    })
    .await?;
    let elapsed = took.as_secs_f64();

    let journal = Journal::open(path.join("journal"))?;
    let report = audit(&journal, &end_offsets, &expected_tally, Some(&ledger))?;
    let stats = journal.stats();
    println!("\naudit (from the journal's state and the side-effect ledger)");
    println!("{report}");
    println!(
        "throughput              {:.0} records/s over {elapsed:.1}s with {kills} SIGKILLs",
        total as f64 / elapsed
    );
    println!("journal on disk         {} bytes", stats.disk_bytes);
    drop(local);
    let in_order = !matches!(args.ordering, OrderingArg::None);
    if report.is_clean(in_order) {
        println!(
            "\nexactly once: every record completed once; 0 duplicates, 0 missing, 0 order violations"
        );
        Ok(())
    } else {
        Err("the audit found violations (see above)".into())
    }
}
