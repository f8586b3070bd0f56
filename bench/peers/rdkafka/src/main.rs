//! rdkafka (librdkafka) peer for `bench/run`. Subcommands:
//!
//! - `consume-base` / `consume-stream --bootstrap B --topic T --count N`: assign every partition
//!   from the beginning (no group), write each value and a newline to stdout (as kcat and
//!   `kafka-once consume` do), stop after exactly N records; `read N` on stderr.
//! - `produce --bootstrap B --topic T --count N --size S [--batch-size X] [--linger-ms L]`: N values
//!   of S bytes without keys, acks=all, enable.idempotence=true; `delivered N` on stderr. Exits 1
//!   if any delivery failed.
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

type Error = Box<dyn std::error::Error>;

struct Args {
    cmd: String,
    bootstrap: String,
    topic: String,
    count: u64,
    size: usize,
    batch_size: String,
    linger_ms: String,
}

fn args() -> Result<Args, Error> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or("usage: rdkafka-peer consume-base|consume-stream|produce --bootstrap B --topic T --count N [--size S]")?;
    let mut a = Args {
        cmd,
        bootstrap: String::new(),
        topic: String::new(),
        count: 0,
        size: 100,
        batch_size: "1000000".into(),
        linger_ms: "5".into(),
    };
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--bootstrap" => a.bootstrap = v,
            "--topic" => a.topic = v,
            "--count" => a.count = v.parse()?,
            "--size" => a.size = v.parse()?,
            "--batch-size" => a.batch_size = v,
            "--linger-ms" => a.linger_ms = v,
            _ => return Err(format!("unknown option {k}").into()),
        }
    }
    if a.bootstrap.is_empty() || a.topic.is_empty() || a.count == 0 {
        return Err("--bootstrap, --topic and --count (> 0) are required".into());
    }
    Ok(a)
}

fn consumer_config(a: &Args) -> ClientConfig {
    let mut c = ClientConfig::new();
    // A group id is required by the client's config but unused: partitions are assigned, and
    // nothing is committed.
    c.set("bootstrap.servers", &a.bootstrap)
        .set("group.id", format!("rdkafka-peer-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    c
}

fn assign_all<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    topic: &str,
) -> Result<(), Error> {
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let t = md.topics().first().ok_or("topic missing from metadata")?;
    if t.partitions().is_empty() {
        return Err(format!("topic {topic} has no partitions").into());
    }
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(())
}

fn consume_base(a: &Args) -> Result<u64, Error> {
    let consumer: BaseConsumer = consumer_config(a).create()?;
    assign_all(&consumer, &a.topic)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut n = 0;
    while n < a.count {
        match consumer.poll(Duration::from_millis(100)) {
            None => out.flush()?,
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                out.write_all(m.payload().unwrap_or_default())?;
                out.write_all(b"\n")?;
                n += 1;
            }
        }
    }
    out.flush()?;
    Ok(n)
}

fn consume_stream(a: &Args) -> Result<u64, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let consumer: StreamConsumer = consumer_config(a).create()?;
        assign_all(&consumer, &a.topic)?;
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let mut n = 0;
        while n < a.count {
            let m = consumer.recv().await?;
            out.write_all(m.payload().unwrap_or_default())?;
            out.write_all(b"\n")?;
            n += 1;
        }
        out.flush()?;
        Ok(n)
    })
}

struct Counter {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counter {}

impl ProducerContext for Counter {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("delivery failed: {e}");
                }
                0
            }
        };
    }
}

fn produce(a: &Args) -> Result<u64, Error> {
    let producer: BaseProducer<Counter> = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", &a.linger_ms)
        .set("batch.size", &a.batch_size)
        .create_with_context(Counter {
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })?;
    let value = vec![b'x'; a.size];
    for _ in 0..a.count {
        let mut record = BaseRecord::<(), [u8]>::to(&a.topic).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120))?;
    let ctx = producer.context();
    let failed = ctx.failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!("{failed} deliveries failed").into());
    }
    Ok(ctx.ok.load(Ordering::Relaxed))
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("version") {
        println!("librdkafka {}", rdkafka::util::get_rdkafka_version().1);
        return;
    }
    let result = args().and_then(|a| match a.cmd.as_str() {
        "consume-base" => consume_base(&a).map(|n| eprintln!("read {n}")),
        "consume-stream" => consume_stream(&a).map(|n| eprintln!("read {n}")),
        "produce" => produce(&a).map(|n| eprintln!("delivered {n}")),
        other => Err(format!("unknown subcommand {other}").into()),
    });
    if let Err(e) = result {
        eprintln!("rdkafka-peer: {e}");
        std::process::exit(1);
    }
}
