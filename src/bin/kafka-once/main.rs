//! `kafka-once`: a thin command line over the library's public API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kafka_once::cluster::{Cluster, NewTopic};
use kafka_once::config::ClientConfig;

mod bench;
mod consume;
mod demo;
mod journal;
mod produce;
mod workflows;

#[derive(Parser)]
#[command(
    name = "kafka-once",
    version,
    about = "A pure-Rust Kafka client with exactly-once dispatch"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The exactly-once demo: produce records, run a worker that is SIGKILLed and restarted at
    /// random moments, and audit that every record completed exactly once.
    Demo(demo::DemoArgs),
    /// Benchmarks against a local broker (or `--bootstrap`).
    Bench {
        #[command(subcommand)]
        action: bench::BenchAction,
    },
    /// The demo's worker process (started by `demo`).
    #[command(hide = true)]
    DemoWorker(demo::WorkerArgs),
    /// Durable workflows in a journal: `list`, `show`, `retry`, `cancel`.
    Workflows {
        #[command(subcommand)]
        action: workflows::WorkflowsAction,
        /// The journal directory.
        #[arg(long, global = true, default_value = "./journal")]
        path: PathBuf,
    },
    /// Inspect a journal: `stats`, `verify`, `dump`.
    Journal {
        #[command(subcommand)]
        action: journal::JournalAction,
        /// The journal directory.
        #[arg(long, global = true, default_value = "./journal")]
        path: PathBuf,
    },
    /// Run a local Apache Kafka (KRaft, from the official jars) for development and tests.
    Broker {
        #[command(subcommand)]
        action: BrokerAction,
        /// Where the broker's state, data and log live.
        #[arg(long, env = "KAFKA_ONCE_HOME")]
        state_dir: Option<PathBuf>,
    },
    /// Produce records: lines from stdin, or generated ones with `--count`.
    Produce {
        /// Destination topic.
        #[arg(long, short)]
        topic: String,
        /// Read `key<TAB>value` lines instead of plain values.
        #[arg(long, short = 'K')]
        keyed: bool,
        /// Generate this many records instead of reading stdin.
        #[arg(long, short = 'n')]
        count: Option<u64>,
        /// Size in bytes of each generated value.
        #[arg(long, short, default_value_t = 100, requires = "count")]
        size: usize,
        /// Send every record to this partition.
        #[arg(long, short)]
        partition: Option<i32>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Consume records and print them (text or JSON lines), with manual assignment.
    Consume {
        /// Source topic.
        #[arg(long, short)]
        topic: String,
        /// Read only this partition (default: every partition).
        #[arg(long, short)]
        partition: Option<i32>,
        /// Start at the beginning of each partition instead of its end.
        #[arg(long)]
        from_beginning: bool,
        /// Output format.
        #[arg(long, short, value_enum, default_value = "text")]
        format: consume::Format,
        /// Exit after this many records.
        #[arg(long, short = 'n')]
        count: Option<u64>,
        /// Exit when every partition has been read to its end (kcat -e).
        #[arg(long, short = 'e')]
        exit: bool,
        /// Consume as a member of this consumer group (commits what it printed on exit).
        #[arg(long, short = 'G')]
        group: Option<String>,
        #[command(flatten)]
        connect: Connect,
    },
    /// Create, list or delete topics.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
        #[command(flatten)]
        connect: Connect,
    },
}

#[derive(Subcommand)]
enum BrokerAction {
    /// Start the broker in the background (does nothing if it already runs); prints its address.
    Start,
    /// Stop the broker started by `broker start`.
    Stop,
    /// Print whether the broker runs, and its address.
    Status,
}

#[derive(Subcommand)]
enum TopicsAction {
    /// Create a topic and wait until every partition has a leader.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions.
        #[arg(long, short, default_value_t = 1)]
        partitions: i32,
        /// Replication factor (default: the broker's).
        #[arg(long, short, default_value_t = -1)]
        replication_factor: i16,
        /// Topic config `key=value`, repeatable.
        #[arg(long = "config", short = 'c', value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics with their partition count and id.
    List {
        /// Include internal topics such as `__consumer_offsets`.
        #[arg(long)]
        internal: bool,
    },
    /// Delete topics.
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(clap::Args)]
struct Connect {
    /// Bootstrap servers `host:port[,host:port…]`. Default: `KAFKA_BOOTSTRAP`, else the broker
    /// started by `kafka-once broker start`.
    #[arg(long, short, global = true)]
    bootstrap: Option<String>,
    /// Client property `key=value` (Kafka/librdkafka names), repeatable.
    #[arg(long = "property", short = 'X', global = true, value_parser = parse_key_value)]
    properties: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KAFKA_ONCE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Demo(args) => demo::demo(args).await,
        Command::Bench { action } => bench::run(action).await,
        Command::DemoWorker(args) => demo::worker(args).await,
        Command::Journal { action, path } => journal::run(action, &path),
        Command::Workflows { action, path } => workflows::run(action, &path).await,
        Command::Broker { action, state_dir } => broker(action, state_dir).await,
        Command::Topics { action, connect } => topics(action, connect).await,
        Command::Produce {
            topic,
            keyed,
            count,
            size,
            partition,
            connect,
        } => {
            let source = match count {
                Some(n) => produce::Source::Generated { count: n, size },
                None => produce::Source::Stdin { keyed },
            };
            produce::run(client_config(connect).await?, &topic, partition, source).await
        }
        Command::Consume {
            topic,
            partition,
            from_beginning,
            format,
            count,
            exit,
            group,
            connect,
        } => {
            let opts = consume::Options {
                topic,
                partition,
                from_beginning,
                format,
                count,
                exit_at_end: exit,
                group,
            };
            consume::run(client_config(connect).await?, opts).await
        }
    }
}

async fn broker(action: BrokerAction, state_dir: Option<PathBuf>) -> Result<(), Error> {
    use kafka_once::testing;
    let dir = match state_dir {
        Some(d) => d,
        None => testing::default_state_dir()?,
    };
    match action {
        BrokerAction::Start => {
            let bootstrap = testing::cli_start(&dir).await?;
            println!("{bootstrap}");
        }
        BrokerAction::Stop => {
            if testing::cli_stop(&dir).await? {
                println!("stopped");
            } else {
                println!("not running");
            }
        }
        BrokerAction::Status => match testing::cli_status(&dir).await {
            Some(status) => println!("running at {}", status.bootstrap),
            None => {
                println!("not running");
                return Err("no broker running; start one with `kafka-once broker start`".into());
            }
        },
    }
    Ok(())
}

/// `--bootstrap`, else `KAFKA_BOOTSTRAP`, else a local broker started now (it runs as long as
/// the returned handle lives).
async fn bootstrap_or_local(
    arg: Option<String>,
) -> Result<(String, Option<kafka_once::testing::LocalKafka>), Error> {
    match arg.or_else(|| std::env::var("KAFKA_BOOTSTRAP").ok()) {
        Some(b) => Ok((b, None)),
        None => {
            eprintln!("starting a local Apache Kafka (the first run downloads its jars)…");
            let kafka = kafka_once::testing::LocalKafka::builder().start().await?;
            Ok((kafka.bootstrap(), Some(kafka)))
        }
    }
}

/// Resolves where to connect: `--bootstrap`, `KAFKA_BOOTSTRAP`, or the CLI's own broker.
async fn client_config(connect: Connect) -> Result<ClientConfig, Error> {
    let bootstrap = match connect.bootstrap {
        Some(b) => b,
        None => match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(b) => b,
            Err(_) => {
                let dir = kafka_once::testing::default_state_dir()?;
                kafka_once::testing::cli_status(&dir)
                    .await
                    .map(|s| s.bootstrap)
                    .ok_or(
                        "no broker given: pass --bootstrap, set KAFKA_BOOTSTRAP, or run `kafka-once broker start`",
                    )?
            }
        },
    };
    let mut props = vec![("bootstrap.servers".to_string(), bootstrap)];
    props.extend(connect.properties);
    Ok(ClientConfig::from_properties(props)?)
}

async fn topics(action: TopicsAction, connect: Connect) -> Result<(), Error> {
    let cluster = Cluster::connect(client_config(connect).await?).await?;
    match action {
        TopicsAction::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut topic = NewTopic::new(&name, partitions).replication_factor(replication_factor);
            topic.configs = configs;
            let created = cluster.create_topic(topic).await?;
            println!(
                "created {} ({} partitions, id {})",
                created.name, created.partitions, created.id
            );
        }
        TopicsAction::List { internal } => {
            let topics = cluster.list_topics(internal).await?;
            println!("{:<40} {:>10}  ID", "TOPIC", "PARTITIONS");
            for t in topics {
                println!("{:<40} {:>10}  {}", t.name, t.partitions.len(), t.id);
            }
        }
        TopicsAction::Delete { names } => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut failed = 0;
            for (name, result) in names.iter().zip(cluster.delete_topics(&refs).await?) {
                match result {
                    Ok(()) => println!("deleted {name}"),
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: {e}");
                    }
                }
            }
            if failed > 0 {
                return Err(format!("{failed} of {} topics not deleted", names.len()).into());
            }
        }
    }
    Ok(())
}
