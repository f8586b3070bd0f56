//! The golden scenarios: which producer sends what, with which codec, into which topic.
//!
//! Every scenario gets its own topic with one partition. Each step is one producer run (one
//! kcat or Java process): a step usually becomes one batch, a transactional step becomes its data
//! batch(es) and then a control batch with the marker.

use crate::model::{Data, Rec};

pub const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// CreateTime base for records with explicit timestamps (2023-11-14T22:13:20Z).
pub const T0: i64 = 1_700_000_000_000;

/// 1 MiB: the large value.
pub const LARGE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producer {
    Kcat,
    Java,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Txn {
    /// Not transactional.
    None,
    /// One transaction around the step's records, committed.
    Commit,
    /// One transaction around the step's records, aborted after they were written.
    Abort,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub records: Vec<Rec>,
    pub txn: Txn,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub producer: Producer,
    pub compression: &'static str,
    pub topic_configs: Vec<(&'static str, String)>,
    /// The Java producer's `max.request.size`.
    pub max_request_size: Option<usize>,
    pub steps: Vec<Step>,
}

impl Scenario {
    pub fn log_append_time(&self) -> bool {
        self.topic_configs
            .iter()
            .any(|(k, v)| *k == "message.timestamp.type" && v == "LogAppendTime")
    }

    /// Producers here are idempotent (Java by default) or transactional; kcat is told not to be.
    pub fn has_producer_id(&self, step: &Step) -> bool {
        self.producer == Producer::Java || step.txn != Txn::None
    }
}

/// Text long and repetitive enough that every codec shrinks it: librdkafka sends a batch
/// uncompressed when compression does not pay, and the golden data must show each codec.
fn filler(tag: &str) -> String {
    format!(
        "{tag}: {}",
        "the quick brown fox jumps over the lazy dog; ".repeat(6)
    )
}

const UNICODE: &str = "ünïcødé ✓ – 日本語 – 🦀";

fn kcat_scenario(codec: &'static str) -> Scenario {
    // kcat applies its -H headers to every record of a run, so each step has one header set.
    let headers: &[(&str, Option<&str>)] = &[
        ("trace-id", Some("7f3a-0001")),
        ("content-type", Some("text/plain")),
        ("dup", Some("a")),
        ("dup", Some("b")),
        ("null-header", None),
    ];
    let first = vec![
        Rec::kv(Some("order-1"), Some(&filler("order-1"))).with_headers(headers),
        Rec::kv(Some("order-2"), Some(UNICODE)).with_headers(headers),
        Rec::kv(Some("order-3"), Some(&filler("order-3"))).with_headers(headers),
    ];
    let second = vec![
        Rec::kv(None, Some(&filler("no key"))),
        Rec::kv(Some("tombstone"), None),
        Rec::kv(None, None),
        Rec::kv(Some("plain"), Some(&filler("plain"))),
    ];
    Scenario {
        name: format!("kcat-{codec}"),
        description: format!(
            "kcat (librdkafka), compression.codec={codec}, two runs: three keyed records with five \
             headers (a repeated key, a null value), then records with a null key, a null value, \
             both null, and no headers. Timestamps are librdkafka's clock (CreateTime)."
        ),
        producer: Producer::Kcat,
        compression: codec,
        topic_configs: Vec::new(),
        max_request_size: None,
        steps: vec![
            Step {
                records: first,
                txn: Txn::None,
            },
            Step {
                records: second,
                txn: Txn::None,
            },
        ],
    }
}

fn kcat_txn() -> Scenario {
    Scenario {
        name: "kcat-txn-commit".into(),
        description: "kcat (librdkafka) with transactional.id: one transaction of three records, \
                      committed when kcat's input ends; then the commit marker."
            .into(),
        producer: Producer::Kcat,
        compression: "none",
        topic_configs: Vec::new(),
        max_request_size: None,
        steps: vec![Step {
            records: vec![
                Rec::kv(Some("txn-1"), Some("first in transaction")),
                Rec::kv(Some("txn-2"), Some("second in transaction")),
                Rec::kv(Some("txn-3"), Some("third in transaction")),
            ],
            txn: Txn::Commit,
        }],
    }
}

/// The Java producer's record set: explicit timestamps (one earlier than the batch's first, so a
/// negative timestamp delta), repeated and null-valued headers, binary, empty and null keys and
/// values.
fn java_records() -> Vec<Rec> {
    let binary_key: Vec<u8> = vec![0x00, 0xff, 0x80, 0x7f, 0x01, 0xfe, 0x0a, 0x09];
    let binary_value: Vec<u8> = (0..=255u8).collect();
    vec![
        Rec::kv(Some("order-1"), Some(&filler("order-1")))
            .with_headers(&[
                ("trace-id", Some("7f3a-0001")),
                ("content-type", Some("application/json")),
            ])
            .at(T0),
        Rec::kv(Some("order-2"), Some(UNICODE))
            .with_headers(&[
                ("dup", Some("a")),
                ("dup", Some("b")),
                ("null-header", None),
                ("empty-header", Some("")),
                ("ключ", Some("значение")),
            ])
            .at(T0 + 1),
        Rec::kv(None, Some("value without key")).at(T0 - 5_000),
        Rec::kv(Some("tombstone"), None).at(T0 + 2),
        Rec {
            key: Some(Data::Bytes(binary_key)),
            value: Some(Data::Bytes(binary_value)),
            headers: vec![("bin".into(), Some(Data::Bytes(vec![0, 1, 2, 0xff])))],
            timestamp: Some(T0 + 3),
        },
        Rec::kv(Some(""), Some("")).at(T0 + 4),
        Rec::kv(None, None).at(T0 + 5),
        Rec::kv(Some("order-3"), Some(&filler("order-3"))).at(T0 + 1_000_000),
    ]
}

fn java_scenario(codec: &'static str) -> Scenario {
    Scenario {
        name: format!("java-{codec}"),
        description: format!(
            "Java producer (kafka-clients 4.1.1, idempotent, acks=all), compression.type={codec}: \
             eight records with explicit CreateTimes (one before the first, a negative delta), \
             headers (repeated keys, a null and an empty value, non-ASCII), binary, empty and null \
             keys and values."
        ),
        producer: Producer::Java,
        compression: codec,
        topic_configs: Vec::new(),
        max_request_size: None,
        steps: vec![Step {
            records: java_records(),
            txn: Txn::None,
        }],
    }
}

fn java_large(codec: &'static str) -> Scenario {
    Scenario {
        name: format!("java-large-{codec}"),
        description: format!(
            "Java producer, compression.type={codec}: one record with a 1 MiB value (byte i is \
             i % 251), then a small record. Topic max.message.bytes and the producer's \
             max.request.size raised to 2 MiB."
        ),
        producer: Producer::Java,
        compression: codec,
        topic_configs: vec![("max.message.bytes", (2 * LARGE + 1024).to_string())],
        max_request_size: Some(2 * LARGE + 1024),
        steps: vec![Step {
            records: vec![
                Rec {
                    key: Some(Data::text("large")),
                    value: Some(Data::Mod251(LARGE)),
                    headers: vec![("size".into(), Some(Data::text(&LARGE.to_string())))],
                    timestamp: Some(T0),
                },
                Rec::kv(Some("after-large"), Some("small")).at(T0 + 1),
            ],
            txn: Txn::None,
        }],
    }
}

fn java_txn() -> Scenario {
    let recs = |prefix: &str, n: usize, t: i64| -> Vec<Rec> {
        (0..n)
            .map(|i| {
                Rec::kv(
                    Some(&format!("{prefix}-{i}")),
                    Some(&format!("{prefix} record {i}")),
                )
                .with_headers(&[("txn", Some(prefix))])
                .at(t + i as i64)
            })
            .collect()
    };
    Scenario {
        name: "java-txn".into(),
        description: "Java transactional producer (one transactional.id, three runs): a \
                      transaction of three records committed, one of two records aborted after \
                      they were written, one of one record committed; each followed by its \
                      control batch (commit, abort, commit)."
            .into(),
        producer: Producer::Java,
        compression: "none",
        topic_configs: Vec::new(),
        max_request_size: None,
        steps: vec![
            Step {
                records: recs("committed", 3, T0),
                txn: Txn::Commit,
            },
            Step {
                records: recs("aborted", 2, T0 + 100),
                txn: Txn::Abort,
            },
            Step {
                records: recs("committed-again", 1, T0 + 200),
                txn: Txn::Commit,
            },
        ],
    }
}

fn java_log_append(codec: &'static str) -> Scenario {
    Scenario {
        name: format!("java-logappend-{codec}"),
        description: format!(
            "Java producer, compression.type={codec}, into a topic with \
             message.timestamp.type=LogAppendTime: the producer's explicit timestamps are \
             replaced by the broker's append time (the batch's max timestamp)."
        ),
        producer: Producer::Java,
        compression: codec,
        topic_configs: vec![("message.timestamp.type", "LogAppendTime".into())],
        max_request_size: None,
        steps: vec![Step {
            records: vec![
                Rec::kv(Some("a"), Some(&filler("a"))).at(T0),
                Rec::kv(Some("b"), Some(&filler("b"))).at(T0 - 1_000),
                Rec::kv(Some("c"), Some(&filler("c"))).at(T0 + 1_000),
            ],
            txn: Txn::None,
        }],
    }
}

/// Every scenario, in capture order.
pub fn all() -> Vec<Scenario> {
    let mut out = Vec::new();
    out.extend(CODECS.iter().map(|c| kcat_scenario(c)));
    out.push(kcat_txn());
    out.extend(CODECS.iter().map(|c| java_scenario(c)));
    out.extend(CODECS.iter().map(|c| java_large(c)));
    out.push(java_txn());
    out.push(java_log_append("none"));
    out.push(java_log_append("lz4"));
    out
}

/// Records of each benchmark dataset: (name suffix, record count, value size in bytes).
pub const BENCH_DATASETS: [(&str, usize, usize); 2] =
    [("100b", 10_000, 100), ("1kb", 1_000, 1_000)];

/// A benchmark value of exactly `size` bytes: a JSON-like event (varying ids, names, amounts and
/// times) followed by pseudo-random hex, so that it compresses about as much as typical event
/// data does (roughly 2–3×), not like a run of one byte. Deterministic in `(seed, size)`.
pub fn bench_value(seed: u64, size: usize) -> String {
    // xorshift64*, seeded per record: the same values on every capture.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    const EVENTS: [&str; 5] = ["click", "view", "purchase", "signup", "logout"];
    let mut out = String::with_capacity(size + 64);
    while out.len() < size {
        let r = next();
        out.push_str(&format!(
            "{{\"id\":{},\"user\":\"user-{:05}\",\"event\":\"{}\",\"amount\":{}.{:02},\"ts\":{},\"trace\":\"{:016x}\"}}",
            seed,
            r % 50_000,
            EVENTS[(r >> 20) as usize % EVENTS.len()],
            (r >> 24) % 10_000,
            (r >> 40) % 100,
            T0 + (seed as i64) * 7 + ((r >> 48) % 1_000) as i64,
            next(),
        ));
    }
    out.truncate(size);
    out
}

/// The decoding benchmark's data (`testdata/bench/`): per codec, the Java producer (idempotent,
/// default `batch.size` 16384, `linger.ms` 100) sends 10,000 keyed records of 100 B values and
/// 1,000 keyed records of 1,000 B values; key `k<i>`, no headers, CreateTime from the producer.
pub fn bench() -> Vec<Scenario> {
    let mut out = Vec::new();
    for &(suffix, count, size) in &BENCH_DATASETS {
        for codec in CODECS {
            let records = (0..count)
                .map(|i| Rec {
                    key: Some(Data::text(&format!("k{i}"))),
                    value: Some(Data::Utf8(bench_value(i as u64, size))),
                    headers: Vec::new(),
                    timestamp: None,
                })
                .collect();
            out.push(Scenario {
                name: format!("bench-{codec}-{suffix}"),
                description: format!(
                    "Java producer (kafka-clients 4.1.1, idempotent, acks=all, batch.size 16384, \
                     linger.ms 100), compression.type={codec}: {count} records, key \"k<i>\", a \
                     {size} B value (a JSON-like event padded with pseudo-random hex), no \
                     headers, producer CreateTime."
                ),
                producer: Producer::Java,
                compression: codec,
                topic_configs: Vec::new(),
                max_request_size: None,
                steps: vec![Step {
                    records,
                    txn: Txn::None,
                }],
            });
        }
    }
    out
}
