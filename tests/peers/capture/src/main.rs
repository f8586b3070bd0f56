//! `capture`: records real record batches from real producers for kafka-once's golden data.
//!
//! ```text
//! capture all [--out DIR] [--bootstrap HOST:PORT] [--only NAME,NAME]
//!     Start a local Apache Kafka (unless --bootstrap or KAFKA_BOOTSTRAP names one), run every
//!     scenario (kcat and the Java producer, each codec, 1 MiB values, transactions,
//!     LogAppendTime), write DIR/<name>.bin (the raw `records` bytes of the Fetch response) and
//!     DIR/<name>.json (the expected decoded form), then the corrupt variants. DIR defaults to
//!     testdata/batches of this repository.
//! capture bench [--out DIR] [--bootstrap HOST:PORT] [--only NAME,NAME]
//!     The decoding benchmark's data: per codec, 10,000 records of 100 B and 1,000 of 1,000 B from
//!     the Java producer, read back from offset 0; writes DIR/bench-<codec>-<100b|1kb>.bin (the
//!     raw `records` bytes, complete batches of every fetch needed) and a short .json summary.
//!     DIR defaults to testdata/bench of this repository.
//! capture fetch --bootstrap HOST:PORT --topic T [--partition P] [--offset O] [--isolation 0|1] --out FILE
//!     One Fetch with kafka-once's connection layer; writes the partition's raw records bytes.
//! capture corrupt [--dir DIR]
//!     Regenerate the corrupt variants and corrupt.json from the captures in DIR.
//! capture partitions [--out FILE]
//!     Partition-for-key vectors from the Java client's default partitioner (no broker needed);
//!     FILE defaults to testdata/partitioner/murmur2.json.
//! capture walk FILE
//!     Print the batch headers of a records file as JSON.
//! ```
//!
//! Needs kcat (`apt-get install kcat`), Java 17 and Maven (for the Java peer and the broker).

mod batch;
mod corrupt;
mod fetch;
mod model;
mod partitions;
mod run;
mod scenarios;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use kafka_once::cluster::Cluster;
use kafka_once::config::ClientConfig;

fn usage() -> ExitCode {
    eprintln!(
        "usage: capture all|bench [--out DIR] [--bootstrap B] [--only N,N] | capture fetch --bootstrap B \
         --topic T [--partition P] [--offset O] [--isolation 0|1] --out FILE | capture corrupt \
         [--dir DIR] | capture partitions [--out FILE] | capture walk FILE"
    );
    ExitCode::from(2)
}

fn options(args: &[String]) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let name = a.strip_prefix("--")?;
        out.insert(name.to_string(), it.next()?.clone());
    }
    Some(out)
}

fn default_dir() -> PathBuf {
    run::repo_root().join("testdata/batches")
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return usage();
    };
    let result = match command.as_str() {
        "walk" => match args.get(1) {
            Some(file) => std::fs::read(file)
                .map_err(|e| format!("{file}: {e}"))
                .map(|data| {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&corrupt::describe(&data)).expect("json")
                    )
                }),
            None => return usage(),
        },
        other => {
            let Some(opts) = options(&args[1..]) else {
                return usage();
            };
            match other {
                "all" => all(&opts, false).await,
                "bench" => all(&opts, true).await,
                "fetch" => fetch_one(&opts).await,
                "partitions" => {
                    let out = opts.get("out").map_or_else(
                        || run::repo_root().join("testdata/partitioner/murmur2.json"),
                        PathBuf::from,
                    );
                    partitions::generate(&out).await
                }
                "corrupt" => {
                    corrupt::generate(&opts.get("dir").map_or_else(default_dir, PathBuf::from))
                }
                _ => return usage(),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capture: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(bootstrap: &str) -> Result<Cluster, String> {
    let config = ClientConfig::new(bootstrap).map_err(|e| e.to_string())?;
    Cluster::connect(config)
        .await
        .map_err(|e| format!("connect to {bootstrap}: {e}"))
}

async fn fetch_one(opts: &HashMap<String, String>) -> Result<(), String> {
    let get = |k: &str| opts.get(k).ok_or(format!("missing --{k}"));
    let num = |k: &str, default: i64| -> Result<i64, String> {
        opts.get(k).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("--{k}: not a number"))
        })
    };
    let cluster = connect(get("bootstrap")?).await?;
    let fetched = fetch::fetch(
        &cluster,
        get("topic")?,
        num("partition", 0)? as i32,
        num("offset", 0)?,
        num("isolation", 0)? as i8,
    )
    .await?;
    let out = get("out")?;
    std::fs::write(out, &fetched.records).map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "wrote {} bytes (fetch v{}, high watermark {})",
        fetched.records.len(),
        fetched.version,
        fetched.high_watermark
    );
    Ok(())
}

/// `capture all` (golden scenarios, then the corrupt variants) or, with `bench`, `capture bench`.
async fn all(opts: &HashMap<String, String>, bench: bool) -> Result<(), String> {
    let out_dir = opts.get("out").map_or_else(
        || {
            if bench {
                run::repo_root().join("testdata/bench")
            } else {
                default_dir()
            }
        },
        PathBuf::from,
    );
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let only: Option<Vec<&str>> = opts.get("only").map(|s| s.split(',').collect());
    let kcat_version = if bench {
        String::from("(not used)") // Java-only datasets
    } else {
        run::kcat_version().await?
    };

    let bootstrap_arg = opts
        .get("bootstrap")
        .cloned()
        .or_else(|| std::env::var(kafka_once::testing::BOOTSTRAP_ENV).ok());
    let local = match &bootstrap_arg {
        Some(_) => None,
        None => {
            eprintln!(
                "starting a local Apache Kafka {}",
                kafka_once::testing::KAFKA_VERSION
            );
            Some(
                kafka_once::testing::LocalKafka::builder()
                    .start()
                    .await
                    .map_err(|e| format!("start Kafka: {e}"))?,
            )
        }
    };
    let bootstrap = bootstrap_arg.unwrap_or_else(|| local.as_ref().expect("started").bootstrap());
    let cluster = connect(&bootstrap).await?;
    let env = run::Env {
        cluster: &cluster,
        bootstrap: &bootstrap,
        out_dir: &out_dir,
        kcat_version: &kcat_version,
    };
    let mut result = Ok(());
    let scenarios = if bench {
        scenarios::bench()
    } else {
        scenarios::all()
    };
    for s in scenarios {
        if only.as_ref().is_some_and(|o| !o.contains(&s.name.as_str())) {
            continue;
        }
        let captured = if bench {
            run::run_bench(&env, &s).await
        } else {
            run::run(&env, &s).await
        };
        if let Err(e) = captured {
            result = Err(e);
            break;
        }
    }
    cluster.close();
    if let Some(kafka) = local {
        let _ = kafka.stop().await;
    }
    result?;
    if bench {
        return Ok(());
    }
    corrupt::generate(&out_dir)
}
