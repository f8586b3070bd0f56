//! `kafka-once bench exactly-once`: the runtime's throughput against raw consumption of the same
//! topic in the same run, plus completion latency under a steady offered load.

use std::time::Duration;

use kafka_once::cluster::{Cluster, NewTopic};
use kafka_once::config::{AutoOffsetReset, ClientConfig};
use kafka_once::consumer::group::GroupConsumer;
use kafka_once::consumer::{Consumer, ConsumerRecord};
use kafka_once::dispatch::{KafkaMessage, KafkaOnce, Ordering, WorkflowContext, WorkflowError};
use kafka_once::producer::{Producer, ProducerRecord};
use tokio::time::Instant;

use crate::Error;

#[derive(clap::Args, Debug)]
pub struct EoArgs {
    /// Records in the topic.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Partitions.
    #[arg(long, default_value_t = 12)]
    pub partitions: i32,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Rounds; each figure is the median over them (min and max shown).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Offered load of the latency phase, records per second (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    pub live_rate: u64,
    /// Seconds of the latency phase.
    #[arg(long, default_value_t = 10)]
    pub live_secs: u64,
    /// Bootstrap servers; default `KAFKA_BOOTSTRAP`, else a local broker started for the run.
    #[arg(long)]
    pub bootstrap: Option<String>,
    /// Journal durability: `sync-data` (fdatasync, the default) or `buffer` (no fsync; shows
    /// what the disk costs).
    #[arg(long, default_value = "sync-data")]
    pub durability: String,
    /// The runtime's bound on records in flight, in total (`ConsumerBuilder::max_in_flight`).
    #[arg(long, default_value_t = 16_384)]
    pub max_in_flight: usize,
    /// The runtime's bound on records in flight per partition
    /// (`ConsumerBuilder::max_in_flight_per_partition`).
    #[arg(long, default_value_t = 4096)]
    pub per_partition: usize,
    /// Also run `Ordering::None` with a workflow of one checkpointed step (`ctx.step`).
    #[arg(long)]
    pub step: bool,
    /// The consumers' `fetch.max.wait.ms` (default: the client's, 500).
    #[arg(long)]
    pub fetch_max_wait_ms: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct JournalArgs {
    /// Records in the topic.
    #[arg(long, default_value_t = 10_000_000)]
    pub records: u64,
    /// Partitions.
    #[arg(long, default_value_t = 12)]
    pub partitions: i32,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Milliseconds between samples of the journal's size.
    #[arg(long, default_value_t = 1_000)]
    pub sample_ms: u64,
    /// Also write the samples here as TSV (seconds, records completed, journal bytes).
    #[arg(long)]
    pub tsv: Option<std::path::PathBuf>,
    /// Keep the journal in this (new) directory instead of a temporary one.
    #[arg(long)]
    pub path: Option<std::path::PathBuf>,
    /// Bootstrap servers; default `KAFKA_BOOTSTRAP`, else a local broker started for the run.
    #[arg(long)]
    pub bootstrap: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct SlowArgs {
    /// The topic to read (from the beginning, in a new group); it should hold more than the
    /// run can finish.
    #[arg(long)]
    pub topic: String,
    /// Milliseconds each workflow sleeps.
    #[arg(long, default_value_t = 250)]
    pub delay_ms: u64,
    /// Seconds to run.
    #[arg(long, default_value_t = 20)]
    pub secs: u64,
    /// Bootstrap servers; default `KAFKA_BOOTSTRAP`, else a local broker started for the run.
    #[arg(long)]
    pub bootstrap: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchAction {
    /// Exactly-once runtime (no-op workflow, durable journal) vs raw consumption.
    ExactlyOnce(EoArgs),
    /// The journal's bytes on disk, sampled while the runtime (`Ordering::None`, no-op workflow,
    /// default settings) works through a large topic: it follows the in-flight window, not
    /// the history.
    Journal(JournalArgs),
    /// Memory with a slow workflow: the runtime (default settings) reads a full topic with a
    /// workflow that sleeps `--delay-ms`, for `--secs`; prints records completed and peak RSS
    /// (run it under `/usr/bin/time -v` for the OS's figure). The fetcher must pause rather
    /// than buffer what the workflows cannot take.
    Slow(SlowArgs),
}

/// CPU seconds (user + system) of this process so far, from /proc (Linux; 100 ticks/s).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 overall, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

struct Phase {
    secs: f64,
    cpu: f64,
    fsyncs: u64,
}

impl Phase {
    /// A phase without journal writes that started at `start`, with `cpu` seconds used by then.
    fn since(start: Instant, cpu: f64) -> Self {
        Self {
            secs: start.elapsed().as_secs_f64(),
            cpu: cpu_seconds() - cpu,
            fsyncs: 0,
        }
    }
}

async fn raw(config: &ClientConfig, topic: &str, partitions: i32, n: u64) -> Result<Phase, Error> {
    let consumer = Consumer::new(config.clone()).await?;
    let parts: Vec<(&str, i32)> = (0..partitions).map(|p| (topic, p)).collect();
    let (start, cpu) = (Instant::now(), cpu_seconds());
    consumer.assign(&parts).await?;
    // The consumer's fastest path: runs of buffered records, waiting only when none is ready
    // (the runtime's dispatch loop receives the same way).
    take(&consumer, n).await?;
    let phase = Phase::since(start, cpu);
    consumer.close().await;
    Ok(phase)
}

/// Raw consumption as a group member (a new group, auto-commit off): what the runtime's own
/// consumer does, joining included, without the exactly-once work. The clock starts before the
/// consumer connects, as it does for the runtime.
async fn raw_group(config: &ClientConfig, topic: &str, n: u64) -> Result<Phase, Error> {
    let config = config
        .to_builder()
        .group_id(format!("bench-raw-{}", rand::random::<u64>()))
        .enable_auto_commit(false)
        .build()?;
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let consumer = GroupConsumer::new(config).await?;
    consumer.subscribe(&[topic])?;
    take(&consumer, n).await?;
    let phase = Phase::since(start, cpu);
    consumer.close().await;
    Ok(phase)
}

/// A consumer the raw baselines read from.
trait Source {
    /// Moves up to `max` buffered records into `out` (see `Consumer::try_recv_into`).
    fn try_recv_into(&self, out: &mut Vec<ConsumerRecord>, max: usize) -> Result<(), Error>;
    /// Waits for one record.
    async fn recv_one(&self) -> Result<(), Error>;
}

impl Source for Consumer {
    fn try_recv_into(&self, out: &mut Vec<ConsumerRecord>, max: usize) -> Result<(), Error> {
        Consumer::try_recv_into(self, out, max).map_or(Ok(()), |e| Err(e.into()))
    }

    async fn recv_one(&self) -> Result<(), Error> {
        self.recv().await?;
        Ok(())
    }
}

impl Source for GroupConsumer {
    fn try_recv_into(&self, out: &mut Vec<ConsumerRecord>, max: usize) -> Result<(), Error> {
        GroupConsumer::try_recv_into(self, out, max).map_or(Ok(()), |e| Err(e.into()))
    }

    async fn recv_one(&self) -> Result<(), Error> {
        self.recv().await?;
        Ok(())
    }
}

/// Takes `n` records from `consumer`: runs of buffered records, waiting only when none is ready.
async fn take(consumer: &impl Source, n: u64) -> Result<(), Error> {
    let mut got = 0;
    let mut batch = Vec::with_capacity(1024);
    while got < n {
        batch.clear();
        consumer.try_recv_into(&mut batch, 1024)?;
        if batch.is_empty() {
            consumer.recv_one().await?;
            got += 1;
        }
        got += batch.len() as u64;
    }
    Ok(())
}

async fn exactly_once(
    config: &ClientConfig,
    topic: &str,
    n: u64,
    ordering: Ordering,
    durability: kafka_once::journal::Durability,
    bounds: (usize, usize),
    step: bool,
) -> Result<(Phase, kafka_once::dispatch::MetricsSnapshot), Error> {
    let dir = tempfile::tempdir()?;
    let group = format!("bench-eo-{}", rand::random::<u64>());
    let config = config.to_builder().group_id(group).build()?;
    let options = kafka_once::journal::JournalOptions {
        durability,
        ..Default::default()
    };
    let app = std::sync::Arc::new(KafkaOnce::open_with(dir.path(), options)?.handle_signals(false));
    let consumer = app
        .kafka_consumer(config, [topic])
        .ordering(ordering)
        .max_in_flight(bounds.0)
        .max_in_flight_per_partition(bounds.1);
    if step {
        consumer.workflow(|ctx: WorkflowContext, _msg: KafkaMessage| async move {
            // One checkpointed step: its output is journaled (durably) before it returns.
            ctx.step("noop", || async { Ok::<u8, WorkflowError>(1) })
                .await?;
            Ok::<(), WorkflowError>(())
        })?;
    } else {
        // The no-op workflow as an application would write it (one closure for both, its
        // future would carry the step's state too, copied for every record).
        consumer.workflow(|_ctx: WorkflowContext, _msg: KafkaMessage| async {
            Ok::<(), WorkflowError>(())
        })?;
    }
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let runner = {
        let app = app.clone();
        tokio::spawn(async move { app.run().await })
    };
    let mut first_done = None;
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if runner.is_finished() {
            return Err("the runtime stopped early".into());
        }
        let processed = app.metrics().first().map_or(0, |m| m.processed);
        if processed > 0 && first_done.is_none() {
            first_done = Some(start.elapsed());
        }
        if processed >= n {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "  (first completion {:.0} ms after start: joining the group and the first fetch)",
        first_done.unwrap_or_default().as_secs_f64() * 1000.0
    );
    let cpu = cpu_seconds() - cpu;
    let metrics = app.metrics().remove(0);
    let fsyncs = app.journal().stats().fsyncs;
    app.shutdown_handle().shutdown();
    runner.await??;
    Ok((Phase { secs, cpu, fsyncs }, metrics))
}

/// One row of the results table.
struct Series {
    name: &'static str,
    rates: Vec<f64>,
    cpus: Vec<f64>,
    fsyncs: Vec<f64>,
    ratios: Vec<f64>,
    /// Ratios to raw consumption as a group member.
    group_ratios: Vec<f64>,
}

impl Series {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            rates: Vec::new(),
            cpus: Vec::new(),
            fsyncs: Vec::new(),
            ratios: Vec::new(),
            group_ratios: Vec::new(),
        }
    }

    fn print(&mut self) {
        let (m, lo, hi) = stats(&mut self.rates);
        let (c, _, _) = stats(&mut self.cpus);
        let f = if self.fsyncs.is_empty() {
            "–".to_string()
        } else {
            format!("{:.0}", stats(&mut self.fsyncs).0)
        };
        let ratio = |v: &mut Vec<f64>| {
            if v.is_empty() {
                "–".to_string()
            } else {
                let (q, qlo, qhi) = stats(v);
                format!("{q:.3} ({qlo:.3}–{qhi:.3})")
            }
        };
        let (q, g) = (ratio(&mut self.ratios), ratio(&mut self.group_ratios));
        println!(
            "| {} | {m:.0} ({lo:.0}–{hi:.0}) | {c:.2} | {f} | {q} | {g} |",
            self.name
        );
    }
}

fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

pub async fn run(action: BenchAction) -> Result<(), Error> {
    match action {
        BenchAction::ExactlyOnce(args) => run_exactly_once(args).await,
        BenchAction::Journal(args) => run_journal(args).await,
        BenchAction::Slow(args) => run_slow(args).await,
    }
}

/// Creates a topic (LogAppendTime, so that record timestamps are append times) and fills it
/// with `records` values of `size` bytes keyed over 10,000 keys; returns its name and the
/// seconds producing took.
async fn produce_dataset(
    base: &ClientConfig,
    cluster: &Cluster,
    partitions: i32,
    records: u64,
    size: usize,
) -> Result<(String, f64), Error> {
    let topic = format!("bench-eo-{}", rand::random::<u64>());
    cluster
        .create_topic(
            NewTopic::new(&topic, partitions).config("message.timestamp.type", "LogAppendTime"),
        )
        .await?;
    let producer = Producer::new(base.clone()).await?;
    let value = vec![b'x'; size];
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..records {
        let r = ProducerRecord::new(&topic, value.clone()).key(format!("k{}", i % 10_000));
        pending.push_back(producer.send(r).await?);
        if pending.len() > 50_000 {
            pending.pop_front().expect("non-empty").await?;
        }
    }
    for d in pending {
        d.await?;
    }
    producer.close().await;
    Ok((topic, started.elapsed().as_secs_f64()))
}

/// Bytes the files under `dir` take on disk (allocated blocks), recursively.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

async fn run_journal(args: JournalArgs) -> Result<(), Error> {
    let (bootstrap, local) = crate::bootstrap_or_local(args.bootstrap.clone()).await?;
    let base = ClientConfig::new(&bootstrap)?
        .to_builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .build()?;
    let cluster = Cluster::connect(base.clone()).await?;
    let (topic, produced) =
        produce_dataset(&base, &cluster, args.partitions, args.records, args.size).await?;
    println!(
        "machine: {} cores; broker {bootstrap}; topic {} partitions, {} records of {} B (produced in {produced:.1}s)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.partitions,
        args.records,
        args.size,
    );
    let temp = tempfile::tempdir()?;
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let config = base
        .to_builder()
        .group_id(format!("{topic}-journal"))
        .build()?;
    let app = std::sync::Arc::new(KafkaOnce::open(&dir)?.handle_signals(false));
    app.kafka_consumer(config, [topic.as_str()]).workflow(
        |_ctx: WorkflowContext, _msg: KafkaMessage| async { Ok::<(), WorkflowError>(()) },
    )?;
    let runner = {
        let app = app.clone();
        tokio::spawn(async move { app.run().await })
    };
    let mut tsv = String::from("seconds\tcompleted\tjournal_bytes\n");
    let start = Instant::now();
    let (mut max, mut max_at) = (0u64, 0u64);
    let mut last;
    println!("| seconds | records completed | journal bytes |\n|---|---|---|");
    loop {
        tokio::time::sleep(Duration::from_millis(args.sample_ms)).await;
        if runner.is_finished() {
            return Err("the runtime stopped early".into());
        }
        let done = app.metrics().first().map_or(0, |m| m.processed);
        let bytes = dir_bytes(&dir);
        let secs = start.elapsed().as_secs_f64();
        println!("| {secs:.1} | {done} | {bytes} |");
        tsv.push_str(&format!("{secs:.1}\t{done}\t{bytes}\n"));
        if bytes > max {
            (max, max_at) = (bytes, done);
        }
        last = bytes;
        if done >= args.records {
            break;
        }
    }
    // After the last commit the journal is pruned to what is above it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let settled = dir_bytes(&dir);
    app.shutdown_handle().shutdown();
    runner.await??;
    let closed = dir_bytes(&dir);
    println!(
        "\njournal bytes over {} records: at most {max} (at {max_at} completed), {last} when the last was completed, {settled} after the commits settled, {closed} after shutdown",
        args.records
    );
    if let Some(path) = &args.tsv {
        std::fs::write(path, tsv)?;
    }
    drop(local);
    Ok(())
}

/// `VmHWM` of /proc/self/status (peak resident set), in KiB; 0 where unknown.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn run_slow(args: SlowArgs) -> Result<(), Error> {
    let (bootstrap, local) = crate::bootstrap_or_local(args.bootstrap.clone()).await?;
    let config = ClientConfig::new(&bootstrap)?
        .to_builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .group_id(format!("bench-slow-{}", rand::random::<u64>()))
        .build()?;
    let dir = tempfile::tempdir()?;
    let app = std::sync::Arc::new(KafkaOnce::open(dir.path())?.handle_signals(false));
    let delay = Duration::from_millis(args.delay_ms);
    app.kafka_consumer(config, [args.topic.as_str()]).workflow(
        move |_ctx: WorkflowContext, _msg: KafkaMessage| async move {
            tokio::time::sleep(delay).await;
            Ok::<(), WorkflowError>(())
        },
    )?;
    let runner = {
        let app = app.clone();
        tokio::spawn(async move { app.run().await })
    };
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    if runner.is_finished() {
        return Err("the runtime stopped early".into());
    }
    let m = app.metrics().remove(0);
    app.shutdown_handle().shutdown();
    runner.await??;
    println!(
        "slow workflow ({} ms): {} records completed in {} s ({:.0}/s), {} in flight at the end, peak RSS {} KiB",
        args.delay_ms,
        m.processed,
        args.secs,
        m.processed as f64 / args.secs as f64,
        m.in_flight,
        peak_rss_kib()
    );
    drop(local);
    Ok(())
}

async fn run_exactly_once(args: EoArgs) -> Result<(), Error> {
    let durability = match args.durability.as_str() {
        "sync-data" => kafka_once::journal::Durability::SyncData,
        "buffer" => kafka_once::journal::Durability::Buffer,
        other => return Err(format!("--durability {other:?}: use sync-data or buffer").into()),
    };
    let (bootstrap, local) = crate::bootstrap_or_local(args.bootstrap.clone()).await?;
    let mut base = ClientConfig::new(&bootstrap)?
        .to_builder()
        .auto_offset_reset(AutoOffsetReset::Earliest);
    if let Some(ms) = args.fetch_max_wait_ms {
        base = base.fetch_max_wait(Duration::from_millis(ms));
    }
    let base = base.build()?;
    let cluster = Cluster::connect(base.clone()).await?;
    let (topic, produced) =
        produce_dataset(&base, &cluster, args.partitions, args.records, args.size).await?;
    let producer = Producer::new(base.clone()).await?;
    println!(
        "machine: {} cores; broker {bootstrap}; topic {} partitions, {} records of {} B (produced in {:.1}s)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.partitions,
        args.records,
        args.size,
        produced
    );
    let n = args.records;
    let mut raw_series = Series::new("raw consume (ours, assigned)");
    let mut group_series = Series::new("raw consume (ours, group member)");
    let mut eo = vec![
        (
            Ordering::None,
            false,
            Series::new("exactly-once, Ordering::None"),
        ),
        (
            Ordering::Partition,
            false,
            Series::new("exactly-once, Ordering::Partition"),
        ),
    ];
    if args.step {
        eo.push((
            Ordering::None,
            true,
            Series::new("exactly-once, Ordering::None, one durable step"),
        ));
    }
    for round in 1..=args.runs {
        let r = raw(&base, &topic, args.partitions, n).await?;
        let rate = n as f64 / r.secs;
        raw_series.rates.push(rate);
        raw_series.cpus.push(r.cpu * 1e6 / n as f64);
        raw_series.ratios.push(1.0);
        println!(
            "round {round}: raw consume {rate:>10.0} rec/s, {:.2} CPU s/M",
            r.cpu * 1e6 / n as f64
        );
        let g = raw_group(&base, &topic, n).await?;
        let group_rate = n as f64 / g.secs;
        group_series.rates.push(group_rate);
        group_series.cpus.push(g.cpu * 1e6 / n as f64);
        group_series.ratios.push(group_rate / rate);
        group_series.group_ratios.push(1.0);
        println!(
            "round {round}: raw consume as a group member {group_rate:>10.0} rec/s, {:.2} CPU s/M",
            g.cpu * 1e6 / n as f64
        );
        for (ordering, step, series) in eo.iter_mut() {
            let (p, m) = exactly_once(
                &base,
                &topic,
                n,
                *ordering,
                durability,
                (args.max_in_flight, args.per_partition),
                *step,
            )
            .await?;
            let r = n as f64 / p.secs;
            series.rates.push(r);
            series.cpus.push(p.cpu * 1e6 / n as f64);
            series.fsyncs.push(p.fsyncs as f64 / p.secs);
            series.ratios.push(r / rate);
            series.group_ratios.push(r / group_rate);
            println!(
                "round {round}: exactly-once {ordering:?}{}: {r:>10.0} rec/s, {:.2} CPU s/M, {:.0} fsyncs/s, {:.2}x raw, {:.2}x raw as a group member (skipped {}, conflicts {})",
                if *step { "+step" } else { "" },
                p.cpu * 1e6 / n as f64,
                p.fsyncs as f64 / p.secs,
                r / rate,
                r / group_rate,
                m.skipped_duplicates,
                m.transaction_conflicts
            );
        }
    }
    println!(
        "\n| mode | records/s median (min–max) | CPU s per M records | fsyncs/s | ratio to raw (assigned) | ratio to raw (group member) |"
    );
    println!("|---|---|---|---|---|---|");
    raw_series.print();
    group_series.print();
    for (_, _, series) in eo.iter_mut() {
        series.print();
    }
    if args.live_rate > 0 {
        println!(
            "\nlatency: record append time → durable completion at {} records/s offered for {}s",
            args.live_rate, args.live_secs
        );
        for ordering in [Ordering::None, Ordering::Partition] {
            let (p50, p99) = live_latency(
                &base,
                &cluster,
                &producer,
                args.partitions,
                args.live_rate,
                args.live_secs,
                ordering,
            )
            .await?;
            println!("| {ordering:?} | p50 {p50} ms | p99 {p99} ms |");
        }
    }
    producer.close().await;
    drop(local);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn live_latency(
    base: &ClientConfig,
    cluster: &Cluster,
    producer: &Producer,
    partitions: i32,
    rate: u64,
    secs: u64,
    ordering: Ordering,
) -> Result<(u64, u64), Error> {
    let topic = format!("bench-live-{}", rand::random::<u64>());
    cluster
        .create_topic(
            NewTopic::new(&topic, partitions).config("message.timestamp.type", "LogAppendTime"),
        )
        .await?;
    let dir = tempfile::tempdir()?;
    let config = base
        .to_builder()
        .group_id(format!("{topic}-g"))
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .build()?;
    let app = std::sync::Arc::new(KafkaOnce::open(dir.path())?.handle_signals(false));
    app.kafka_consumer(config, [topic.as_str()])
        .ordering(ordering)
        .workflow(|_ctx: WorkflowContext, _msg: KafkaMessage| async {
            Ok::<(), WorkflowError>(())
        })?;
    let runner = {
        let app = app.clone();
        tokio::spawn(async move { app.run().await })
    };
    // Let the group form before the load starts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let total = rate * secs;
    let start = Instant::now();
    let mut pending = Vec::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due).await;
        pending.push(
            producer
                .send(ProducerRecord::new(&topic, vec![b'x'; 100]).key(format!("k{i}")))
                .await?,
        );
    }
    for d in pending {
        d.await?;
    }
    while app.metrics().first().is_none_or(|m| m.processed < total) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = app.metrics().remove(0);
    app.shutdown_handle().shutdown();
    runner.await??;
    Ok((
        m.completion_p50_ms.unwrap_or(0),
        m.completion_p99_ms.unwrap_or(0),
    ))
}
