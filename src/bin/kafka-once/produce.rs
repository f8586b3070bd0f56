//! `kafka-once produce`: lines from stdin or generated records, with progress and a final rate.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_once::config::ClientConfig;
use kafka_once::producer::{DeliveryFuture, Producer, ProducerRecord};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::Error;

/// Where records come from.
pub enum Source {
    /// One record per stdin line; `key<TAB>value` when keyed.
    Stdin { keyed: bool },
    /// `count` records with `size`-byte values.
    Generated { count: u64, size: usize },
}

/// Deliveries awaited in order behind the sends, so memory stays bounded by the producer's
/// buffer, not by the record count.
const MAX_UNACKED: usize = 100_000;

pub async fn run(
    config: ClientConfig,
    topic: &str,
    partition: Option<i32>,
    source: Source,
) -> Result<(), Error> {
    let producer = Producer::new(config).await?;
    let started = Instant::now();
    let mut progress = Progress::new(started);
    let mut unacked = std::collections::VecDeque::<DeliveryFuture>::new();
    let mut sent = 0u64;
    let mut bytes = 0u64;
    let mut send = async |key: Option<Bytes>, value: Bytes, sent: &mut u64, bytes: &mut u64| {
        *bytes += value.len() as u64 + key.as_ref().map_or(0, |k| k.len() as u64);
        let mut record = ProducerRecord::new(topic, value);
        record.key = key;
        record.partition = partition;
        unacked.push_back(producer.send(record).await?);
        while unacked.len() > MAX_UNACKED {
            unacked.pop_front().expect("not empty").await?;
        }
        *sent += 1;
        Ok::<_, Error>(())
    };
    match source {
        Source::Generated { count, size } => {
            let payload = Bytes::from(vec![b'x'; size]);
            for _ in 0..count {
                send(None, payload.clone(), &mut sent, &mut bytes).await?;
                progress.tick(sent, bytes);
            }
        }
        Source::Stdin { keyed } => {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines.next_line().await? {
                let (key, value) = if keyed {
                    let (k, v) = line.split_once('\t').ok_or_else(|| {
                        format!("line {}: expected key<TAB>value with --keyed", sent + 1)
                    })?;
                    (Some(Bytes::from(k.to_string())), Bytes::from(v.to_string()))
                } else {
                    (None, Bytes::from(line))
                };
                send(key, value, &mut sent, &mut bytes).await?;
                progress.tick(sent, bytes);
            }
        }
    }
    producer.flush().await;
    for d in unacked {
        d.await?;
    }
    producer.close().await;
    let secs = started.elapsed().as_secs_f64();
    progress.clear();
    eprintln!(
        "produced {sent} records ({:.1} MB) in {secs:.2} s: {:.0} records/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        sent as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}

/// A once-a-second progress line on stderr, when stderr is a terminal.
struct Progress {
    last: Instant,
    started: Instant,
    enabled: bool,
}

impl Progress {
    fn new(started: Instant) -> Self {
        use std::io::IsTerminal;
        Self {
            last: started,
            started,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self, sent: u64, bytes: u64) {
        if !self.enabled
            || !sent.is_multiple_of(1024)
            || self.last.elapsed() < Duration::from_secs(1)
        {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        eprint!(
            "\r{sent} records, {:.1} MB, {:.0} records/s   ",
            bytes as f64 / 1e6,
            sent as f64 / secs
        );
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.enabled {
            eprint!("\r{:60}\r", "");
        }
    }
}
