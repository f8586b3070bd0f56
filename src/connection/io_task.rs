//! The task that owns one socket: writes queued frames, reads response frames, matches them to
//! waiting requests by correlation id, and poisons the connection on the first violation.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Command, ConnectionError};
use crate::protocol;

/// Bounds the task enforces.
pub(super) struct Limits {
    pub max_in_flight: usize,
    pub max_frame_size: usize,
}

struct Pending {
    deadline: Instant,
    api: kafka_protocol::messages::ApiKey,
    timeout: std::time::Duration,
    reply: oneshot::Sender<Result<Bytes, ConnectionError>>,
}

/// Initial read buffer; it grows only to the size of the frame being read.
pub(super) const READ_CHUNK: usize = 64 * 1024;

pub(super) async fn run<S>(
    stream: S,
    mut commands: mpsc::Receiver<Command>,
    poison: Arc<OnceLock<Arc<ConnectionError>>>,
    close: Arc<tokio::sync::Notify>,
    limits: Limits,
    addr: String,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut in_flight: HashMap<i32, Pending> = HashMap::new();
    let mut read_buf = BytesMut::with_capacity(READ_CHUNK);
    let mut write_queue: VecDeque<Bytes> = VecDeque::new();
    let mut needs_flush = false;

    let cause = loop {
        // Hand out every complete frame already buffered.
        match next_frame(&mut read_buf, limits.max_frame_size, &addr) {
            Ok(Some(frame)) => match deliver(frame, &mut in_flight, &addr) {
                Ok(()) => continue,
                Err(e) => break e,
            },
            Ok(None) => {}
            Err(e) => break e,
        }
        let next_deadline = in_flight.values().map(|p| p.deadline).min();
        let can_accept = in_flight.len() < limits.max_in_flight && write_queue.is_empty();
        // Write the queue's front frame (a cheap `Bytes` clone), or flush once it is drained.
        let write_job = match write_queue.front() {
            Some(front) => Some(WriteJob::Write(front.clone())),
            None if needs_flush => Some(WriteJob::Flush),
            None => None,
        };

        tokio::select! {
            biased;
            read = reader.read_buf(&mut read_buf) => match read {
                Ok(0) => break ConnectionError::PeerClosed {
                    addr: addr.clone(),
                    in_flight: in_flight.len(),
                    partial_bytes: read_buf.len(),
                },
                Ok(_) => {}
                Err(e) => break ConnectionError::Io { addr: addr.clone(), source: Arc::new(e) },
            },
            written = write_step(&mut writer, write_job.as_ref()), if write_job.is_some() => match written {
                Ok(0) if !write_queue.is_empty() => break ConnectionError::Io {
                    addr: addr.clone(),
                    source: Arc::new(std::io::ErrorKind::WriteZero.into()),
                },
                Ok(n) => match write_queue.front_mut() {
                    Some(front) => {
                        front.advance(n);
                        if front.is_empty() {
                            write_queue.pop_front();
                        }
                        needs_flush = true;
                    }
                    None => needs_flush = false,
                },
                Err(e) => break ConnectionError::Io { addr: addr.clone(), source: Arc::new(e) },
            },
            command = commands.recv(), if can_accept => match command {
                Some(cmd) => {
                    // A caller that already gave up (dropped or timed out) before its frame reached
                    // the socket: skip it, so no orphan request is sent.
                    if cmd.reply.is_closed() || cmd.deadline <= Instant::now() {
                        continue;
                    }
                    in_flight.insert(cmd.correlation_id, Pending {
                        deadline: cmd.deadline,
                        api: cmd.api,
                        timeout: cmd.timeout,
                        reply: cmd.reply,
                    });
                    write_queue.push_back(cmd.frame);
                }
                // Every handle is gone; nobody can receive a response any more.
                None => break ConnectionError::Closed { addr: addr.clone() },
            },
            () = close.notified() => break ConnectionError::Closed { addr: addr.clone() },
            () = sleep_until_opt(next_deadline), if next_deadline.is_some() => {
                let now = Instant::now();
                // The broker may still act on a request we stop waiting for, and its response
                // would arrive for a forgotten id: close the connection, as the Java client does.
                if let Some(p) = in_flight.values().find(|p| p.deadline <= now) {
                    break ConnectionError::RequestTimeout {
                        addr: addr.clone(),
                        api: p.api,
                        timeout: p.timeout,
                    };
                }
            }
        }
    };

    let cause = Arc::new(cause);
    let _ = poison.set(cause.clone());
    tracing::debug!(%addr, cause = %cause, in_flight = in_flight.len(), "connection closed");
    for (_, pending) in in_flight.drain() {
        let _ = pending
            .reply
            .send(Err(ConnectionError::Poisoned(cause.clone())));
    }
    commands.close();
    while let Ok(cmd) = commands.try_recv() {
        let _ = cmd
            .reply
            .send(Err(ConnectionError::Poisoned(cause.clone())));
    }
}

enum WriteJob {
    Write(Bytes),
    Flush,
}

/// One cancel-safe step of writing: `write` either writes some bytes or none, `flush` is
/// idempotent. Returns the bytes written (0 for a flush).
async fn write_step<W: AsyncWrite + Unpin>(
    writer: &mut W,
    job: Option<&WriteJob>,
) -> std::io::Result<usize> {
    match job {
        Some(WriteJob::Write(bytes)) => writer.write(bytes).await,
        Some(WriteJob::Flush) => writer.flush().await.map(|()| 0),
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Splits one complete frame body off the front of `buf`, if there is one.
///
/// The size prefix is checked against the maximum before the buffer is grown for it.
pub(super) fn next_frame(
    buf: &mut BytesMut,
    max_frame_size: usize,
    addr: &str,
) -> Result<Option<Bytes>, ConnectionError> {
    if buf.len() < 4 {
        buf.reserve(READ_CHUNK);
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(ConnectionError::NegativeFrameSize {
            addr: addr.to_string(),
            size,
        });
    }
    let size = size as usize;
    if size > max_frame_size {
        return Err(ConnectionError::FrameTooLarge {
            addr: addr.to_string(),
            size: size as i64,
            max: max_frame_size,
        });
    }
    if buf.len() < 4 + size {
        // Room for the rest of this frame (bounded by the check above) plus a little more.
        buf.reserve((4 + size - buf.len()).max(READ_CHUNK.min(max_frame_size)));
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

/// Hands a response frame to the request waiting for its correlation id.
fn deliver(
    frame: Bytes,
    in_flight: &mut HashMap<i32, Pending>,
    addr: &str,
) -> Result<(), ConnectionError> {
    let correlation_id = protocol::peek_correlation_id(&frame)?;
    match in_flight.remove(&correlation_id) {
        // The receiver may be gone (caller dropped); the response is consumed all the same.
        Some(pending) => {
            let _ = pending.reply.send(Ok(frame));
            Ok(())
        }
        None => Err(ConnectionError::UnknownCorrelationId {
            addr: addr.to_string(),
            correlation_id,
        }),
    }
}
