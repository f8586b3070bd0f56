//! `kafka-once consume`: print records of a topic, as kcat users expect.
//!
//! `--format text` prints each value on its own line (a null value prints an empty line).
//! `--format json` prints one JSON object per line:
//!
//! ```text
//! {"topic":"t","partition":0,"offset":42,"timestamp":1700000000000,"timestamp_type":"create",
//!  "key":"k","value":"v","headers":[{"key":"h","value":"x"}]}
//! ```
//!
//! Keys, values and header values are JSON strings when they are valid UTF-8, `null` when null,
//! and `{"base64":"..."}` (standard alphabet, padded) when they are binary.

use std::io::Write;
use std::time::Duration;

use kafka_once::config::{AutoOffsetReset, ClientConfig};
use kafka_once::consumer::{Consumer, ConsumerRecord};
use kafka_once::protocol::records::TimestampType;

use crate::Error;

/// Output format.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// The value of each record, one per line.
    Text,
    /// One JSON object per record and line.
    Json,
}

/// What to consume and when to stop.
#[derive(Clone)]
pub struct Options {
    pub topic: String,
    pub partition: Option<i32>,
    pub from_beginning: bool,
    pub format: Format,
    pub count: Option<u64>,
    pub exit_at_end: bool,
    pub group: Option<String>,
}

pub async fn run(config: ClientConfig, opts: Options) -> Result<(), Error> {
    if let Some(group) = &opts.group {
        return run_group(config, group, opts.clone()).await;
    }
    let reset = reset_policy(opts.from_beginning);
    let config = config.to_builder().auto_offset_reset(reset).build()?;
    let consumer = Consumer::new(config).await?;
    match opts.partition {
        Some(p) => consumer.assign(&[(&opts.topic, p)]).await?,
        None => consumer.assign_topics(&[&opts.topic]).await?,
    }
    let wait = || async {
        if opts.exit_at_end && at_end(&consumer) {
            return Waited::Stop;
        }
        match tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
            Ok(r) => Waited::Record(r),
            Err(_) => Waited::Again,
        }
    };
    // Ready records in runs (one lock per run, see `Consumer::try_recv_into`), never more than
    // `--count` still wants. (Not in the group mode below: what was taken counts as consumed when
    // it commits on exit, so there only printed records may be taken.)
    let (mut ready, mut run) = (std::collections::VecDeque::new(), Vec::new());
    let (mut taken, mut failed) = (0u64, None);
    let try_recv = || {
        if ready.is_empty() && failed.is_none() {
            let max = opts
                .count
                .map_or(1024, |n| n.saturating_sub(taken).min(1024) as usize);
            failed = consumer.try_recv_into(&mut run, max);
            ready.extend(run.drain(..));
        }
        match ready.pop_front() {
            Some(record) => {
                taken += 1;
                Some(Ok(record))
            }
            None => failed.take().map(Err),
        }
    };
    let result = print_records(&opts, try_recv, wait).await;
    consumer.close().await;
    result
}

/// What waiting for the next record gave.
enum Waited<E> {
    Record(Result<ConsumerRecord, E>),
    /// Nothing yet; look again.
    Again,
    /// Done (`--exit` and every partition read to its end).
    Stop,
}

/// Prints records until `--count` is reached, `wait` says stop, an error, or Ctrl-C: those
/// `try_recv` has ready without a flush, then (after flushing stdout) what `wait` brings.
async fn print_records<E, F>(
    opts: &Options,
    mut try_recv: impl FnMut() -> Option<Result<ConsumerRecord, E>>,
    mut wait: impl FnMut() -> F,
) -> Result<(), Error>
where
    F: std::future::Future<Output = Waited<E>>,
    Error: From<E>,
{
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let result = loop {
        if opts.count.is_some_and(|n| printed >= n) {
            break Ok(());
        }
        let next = match try_recv() {
            Some(r) => r,
            None => {
                out.flush()?;
                tokio::select! {
                    w = wait() => match w {
                        Waited::Record(r) => r,
                        Waited::Again => continue,
                        Waited::Stop => break Ok(()),
                    },
                    _ = tokio::signal::ctrl_c() => break Ok(()),
                }
            }
        };
        match next {
            Ok(record) => {
                print(&mut out, &record, opts.format)?;
                printed += 1;
            }
            Err(e) => break Err(Error::from(e)),
        }
    };
    out.flush()?;
    result
}

/// Consumes as a member of `group` (subscribed to the topic; `--from-beginning` applies when the
/// group has no committed offset), committing what was printed on exit. `--partition` and
/// `--exit` do not apply to a group.
async fn run_group(config: ClientConfig, group: &str, opts: Options) -> Result<(), Error> {
    use kafka_once::consumer::group::GroupConsumer;
    if opts.partition.is_some() || opts.exit_at_end {
        return Err("--partition and --exit cannot be used with --group".into());
    }
    let reset = reset_policy(opts.from_beginning);
    let config = config
        .to_builder()
        .group_id(group)
        .auto_offset_reset(reset)
        .build()?;
    let consumer = GroupConsumer::new(config).await?;
    consumer.subscribe(&[&opts.topic])?;
    let wait = || async { Waited::Record(consumer.recv().await) };
    let result = print_records(&opts, || consumer.try_recv(), wait).await;
    if let Err(e) = consumer.commit().await {
        eprintln!("warning: final commit failed: {e}");
    }
    consumer.close().await;
    result
}

/// Where to start without a committed offset: `--from-beginning` or the end.
fn reset_policy(from_beginning: bool) -> AutoOffsetReset {
    if from_beginning {
        AutoOffsetReset::Earliest
    } else {
        AutoOffsetReset::Latest
    }
}

/// Every assigned partition's position has reached the end known from the last fetch.
fn at_end(consumer: &Consumer) -> bool {
    consumer
        .assignment()
        .iter()
        .all(|tp| consumer.lag(&tp.topic, tp.partition) == Some(0))
}

fn print(out: &mut impl Write, r: &ConsumerRecord, format: Format) -> std::io::Result<()> {
    match format {
        Format::Text => {
            if let Some(v) = &r.value {
                out.write_all(v)?;
            }
            out.write_all(b"\n")
        }
        Format::Json => {
            let mut line = String::with_capacity(128);
            line.push_str("{\"topic\":");
            json_str(&mut line, &r.topic);
            line.push_str(&format!(
                ",\"partition\":{},\"offset\":{},\"timestamp\":{},\"timestamp_type\":\"{}\",\"key\":",
                r.partition,
                r.offset,
                r.timestamp,
                match r.timestamp_type {
                    TimestampType::CreateTime => "create",
                    TimestampType::LogAppendTime => "log_append",
                }
            ));
            json_bytes(&mut line, r.key.as_deref());
            line.push_str(",\"value\":");
            json_bytes(&mut line, r.value.as_deref());
            line.push_str(",\"headers\":[");
            for (i, h) in r.headers.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str("{\"key\":");
                json_str(&mut line, &h.key);
                line.push_str(",\"value\":");
                json_bytes(&mut line, h.value.as_deref());
                line.push('}');
            }
            line.push_str("]}\n");
            out.write_all(line.as_bytes())
        }
    }
}

/// A UTF-8 string, `null`, or `{"base64": ...}`.
fn json_bytes(out: &mut String, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push_str("null"),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => json_str(out, s),
            Err(_) => {
                out.push_str("{\"base64\":\"");
                base64(out, b);
                out.push_str("\"}");
            }
        },
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn base64(out: &mut String, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut s = String::new();
            base64(&mut s, input.as_bytes());
            assert_eq!(s, expected);
        }
    }

    #[test]
    fn json_escapes_and_binary() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, r#""a\"b\\c\nd\u0001""#);
        let mut s = String::new();
        json_bytes(&mut s, Some(&[0xff, 0x00]));
        assert_eq!(s, r#"{"base64":"/wA="}"#);
        let mut s = String::new();
        json_bytes(&mut s, None);
        assert_eq!(s, "null");
    }
}
