//! Decoding alone, no broker: how fast `decode_batches` turns real Fetch-response `records` bytes
//! into records, per codec, on one core.
//!
//! The inputs are `testdata/bench/bench-<codec>-<100b|1kb>.bin`, captured from a real broker
//! (Apache Kafka 4.1.1, Java producer; see `testdata/README.md`), with a `.json` summary beside
//! each saying how many records and payload bytes were produced. Every file is first decoded once
//! and checked against that summary (record count, key and value bytes, offsets); a mismatch
//! stops the benchmark with an error. Then each file is decoded repeatedly on this thread: rounds
//! of about `--secs` seconds of CPU time (default 1), five rounds, the median and best round
//! reported. One pass is `decode_batches` over the whole file plus dropping what it returned.
//!
//! Time is the CPU time of this thread (`CLOCK_THREAD_CPUTIME_ID`), so time spent descheduled on
//! a busy machine does not count; the wall time of the rounds is printed too.
//!
//! ```text
//! cargo bench --bench decode                    # every file
//! cargo bench --bench decode -- none-100b       # files whose name contains a filter
//! cargo bench --bench decode -- --secs 3 --rounds 7
//! ```

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_once::protocol::records::{BatchContext, decode_batches};

/// One captured file and what its producer sent.
struct Input {
    name: String,
    compression: String,
    data: Bytes,
    records: u64,
    /// Key plus value bytes of all records: the payload an application receives.
    payload: u64,
    batches: usize,
}

/// CPU time of the calling thread.
#[cfg(unix)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID needs nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Elsewhere: wall time since the first call, the best this benchmark can do without a
/// per-platform thread clock.
#[cfg(not(unix))]
fn thread_cpu() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

fn load(dir: &Path) -> Result<Vec<Input>, String> {
    let mut bins: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "{}: {e} (capture it: testdata/capture.sh --bench)",
                dir.display()
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    bins.sort();
    let mut out = Vec::new();
    for bin in bins {
        let json_path = bin.with_extension("json");
        let text = std::fs::read_to_string(&json_path)
            .map_err(|e| format!("{}: {e}", json_path.display()))?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json_path.display()))?;
        let field = |k: &str| {
            doc[k]
                .as_u64()
                .ok_or_else(|| format!("{}: no number `{k}`", json_path.display()))
        };
        let data = std::fs::read(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
        let name = bin
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        let input = Input {
            compression: doc["compression"].as_str().unwrap_or("?").to_string(),
            records: field("records")?,
            payload: field("key_bytes")? + field("value_bytes")?,
            batches: 0,
            data: Bytes::from(data),
            name,
        };
        out.push(check(input)?);
    }
    // By dataset, then codec in Kafka's order (none, gzip, snappy, lz4, zstd).
    let codec_rank = |c: &str| {
        ["none", "gzip", "snappy", "lz4", "zstd"]
            .iter()
            .position(|&k| k == c)
    };
    out.sort_by(|a, b| {
        let dataset = |i: &Input| i.name.rsplit('-').next().map(str::to_string);
        (dataset(a), codec_rank(&a.compression)).cmp(&(dataset(b), codec_rank(&b.compression)))
    });
    Ok(out)
}

/// Decodes `input` once and checks it against what was produced.
fn check(mut input: Input) -> Result<Input, String> {
    let ctx = BatchContext::new("bench", 0);
    let decoded = decode_batches(input.data.clone(), &ctx)
        .map_err(|e| format!("{}: decoding failed: {e}", input.name))?;
    let records: u64 = decoded.batches.iter().map(|b| b.records.len() as u64).sum();
    let payload: u64 = decoded
        .batches
        .iter()
        .flat_map(|b| &b.records)
        .map(|r| {
            (r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len)) as u64
        })
        .sum();
    let offsets_in_order = decoded
        .batches
        .iter()
        .flat_map(|b| &b.records)
        .enumerate()
        .all(|(i, r)| r.offset == i as i64);
    let problems = [
        (records != input.records).then(|| {
            format!(
                "decoded {records} records, the producer sent {}",
                input.records
            )
        }),
        (payload != input.payload).then(|| {
            format!(
                "decoded {payload} key+value bytes, the producer sent {}",
                input.payload
            )
        }),
        (!offsets_in_order).then(|| "offsets are not 0, 1, 2, …".to_string()),
        (decoded.truncated_tail_bytes != 0)
            .then(|| format!("{} bytes of partial batch", decoded.truncated_tail_bytes)),
        decoded
            .batches
            .iter()
            .find(|b| b.header.compression.as_str() != input.compression)
            .map(|b| {
                format!(
                    "batch at {} is {}, expected {}",
                    b.header.base_offset, b.header.compression, input.compression
                )
            }),
    ];
    let problems: Vec<String> = problems.into_iter().flatten().collect();
    if !problems.is_empty() {
        return Err(format!("{}: {}", input.name, problems.join("; ")));
    }
    input.batches = decoded.batches.len();
    Ok(input)
}

/// One pass: decode everything, drop it; returns the record count so that nothing is optimized
/// away.
fn pass(data: &Bytes, ctx: &BatchContext) -> usize {
    let decoded = decode_batches(black_box(data.clone()), ctx).expect("checked before");
    let n = decoded.batches.iter().map(|b| b.records.len()).sum();
    drop(black_box(decoded));
    n
}

struct Round {
    per_pass: Duration,
    wall_per_pass: Duration,
}

fn measure(input: &Input, secs: f64, rounds: usize) -> Vec<Round> {
    let ctx = BatchContext::new("bench", 0);
    // Warm up, and size a round to about `secs` of CPU time.
    let start = thread_cpu();
    let mut warm = 0u64;
    while thread_cpu() - start < Duration::from_millis(200) || warm < 3 {
        black_box(pass(&input.data, &ctx));
        warm += 1;
    }
    let one = (thread_cpu() - start).as_secs_f64() / warm as f64;
    let passes = ((secs / one).ceil() as u64).max(3);
    (0..rounds)
        .map(|_| {
            let wall = Instant::now();
            let cpu = thread_cpu();
            let mut n = 0;
            for _ in 0..passes {
                n += pass(&input.data, &ctx);
            }
            let cpu = thread_cpu() - cpu;
            let wall = wall.elapsed();
            assert_eq!(n as u64, input.records * passes, "{}", input.name);
            Round {
                per_pass: cpu / passes as u32,
                wall_per_pass: wall / passes as u32,
            }
        })
        .collect()
}

fn main() -> ExitCode {
    let mut filters = Vec::new();
    let mut secs = 1.0;
    let mut rounds = 5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).unwrap_or(secs),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            f if !f.starts_with('-') => filters.push(f.to_string()),
            _ => {}
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bench");
    let inputs = match load(&dir) {
        Ok(inputs) if !inputs.is_empty() => inputs,
        Ok(_) => {
            eprintln!("decode bench: no .bin files in {}", dir.display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("decode bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "decode_batches, one thread, thread CPU time; {rounds} rounds of ~{secs} s each, median (best)"
    );
    println!();
    println!(
        "| file | codec | records | batches | bytes in | payload bytes | one pass, µs | input MB/s | payload GB/s | M records/s | wall/CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for input in inputs
        .iter()
        .filter(|i| filters.is_empty() || filters.iter().any(|f| i.name.contains(f.as_str())))
    {
        let mut r = measure(input, secs, rounds);
        r.sort_by_key(|r| r.per_pass);
        let median = &r[r.len() / 2];
        let best = &r[0];
        let rate = |t: Duration, amount: f64| amount / t.as_secs_f64();
        let bytes_in = input.data.len() as f64;
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} ({:.0}) | {:.0} ({:.0}) | {:.2} ({:.2}) | {:.1} ({:.1}) | {:.2} |",
            input.name,
            input.compression,
            input.records,
            input.batches,
            input.data.len(),
            input.payload,
            median.per_pass.as_secs_f64() * 1e6,
            best.per_pass.as_secs_f64() * 1e6,
            rate(median.per_pass, bytes_in) / 1e6,
            rate(best.per_pass, bytes_in) / 1e6,
            rate(median.per_pass, input.payload as f64) / 1e9,
            rate(best.per_pass, input.payload as f64) / 1e9,
            rate(median.per_pass, input.records as f64) / 1e6,
            rate(best.per_pass, input.records as f64) / 1e6,
            median.wall_per_pass.as_secs_f64() / median.per_pass.as_secs_f64(),
        );
    }
    ExitCode::SUCCESS
}
