//! One broker connection: framing, pipelining, correlation ids and version negotiation.
//!
//! One task owns each socket (`io_task`). Callers hand it whole, already encoded frames over a
//! bounded channel and wait for the matching response on a oneshot. That split is what makes
//! request futures cancel safe: a frame is either entirely in the task's hands or not at all, so
//! dropping a caller never leaves half a frame on the wire, and the correlation entry of a
//! dropped caller is consumed by its response (or by the connection's death) like any other.
//!
//! Any protocol violation, I/O error or request timeout *poisons* the connection: the task stops,
//! every in-flight request fails with one shared cause ([`ConnectionError::Poisoned`]), marked
//! retriable because the outcome is unknown, and every later request fails the same way. The
//! cluster layer replaces poisoned connections.

mod error;
mod io_task;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::protocol::{self, ApiVersionTable, ErrorCode, ProtocolError};

pub use error::ConnectionError;

/// Settings of one broker connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Sent as `client_id` in every request header. Default `kafka-once`.
    pub client_id: String,
    /// Upper bound on one request, from hand-off to the socket task until the response is
    /// decoded. Default 30 s (`request.timeout.ms`).
    pub request_timeout: Duration,
    /// Upper bound on TCP connect plus the ApiVersions handshake. Default 10 s
    /// (`socket.connection.setup.timeout.ms`).
    pub connect_timeout: Duration,
    /// Requests written but not yet answered, per connection. Further requests wait. Default 5
    /// (`max.in.flight.requests.per.connection`).
    pub max_in_flight: usize,
    /// Largest response frame accepted; a larger size prefix poisons the connection before any
    /// allocation. Default 100 MiB + 512 B (`receive.message.max.bytes`).
    pub max_frame_size: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            client_id: "kafka-once".into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_in_flight: 5,
            max_frame_size: 100 * 1024 * 1024 + 512,
        }
    }
}

/// A request handed to the socket task.
struct Command {
    correlation_id: i32,
    api: ApiKey,
    timeout: Duration,
    frame: Bytes,
    deadline: Instant,
    reply: oneshot::Sender<Result<Bytes, ConnectionError>>,
}

struct Inner {
    addr: String,
    client_id: StrBytes,
    request_timeout: Duration,
    commands: mpsc::Sender<Command>,
    next_correlation_id: AtomicI32,
    versions: OnceLock<ApiVersionTable>,
    /// Set once by the socket task when it dies.
    poison: Arc<OnceLock<Arc<ConnectionError>>>,
    /// Tells the socket task to close the connection.
    close: Arc<tokio::sync::Notify>,
    /// Unique per connection for the life of the process.
    id: u64,
}

/// Source of [`Connection::id`]s.
static NEXT_CONNECTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A handle to one broker connection. Cheap to clone; all clones share the socket.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.inner.addr)
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

impl Connection {
    /// Opens a TCP connection to `addr` (`host:port`) and negotiates API versions.
    ///
    /// Cancel safety: safe; dropping the future closes the half-open socket.
    pub async fn connect(addr: &str, config: &ConnectionConfig) -> Result<Self, ConnectionError> {
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectionError::ConnectTimeout {
                addr: addr.to_string(),
                timeout: config.connect_timeout,
            })?
            .map_err(|source| ConnectionError::Connect {
                addr: addr.to_string(),
                source: Arc::new(source),
            })?;
        // Requests are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let conn = Self::spawn(stream, addr, config);
        tokio::time::timeout(config.connect_timeout, conn.handshake())
            .await
            .map_err(|_| ConnectionError::ConnectTimeout {
                addr: addr.to_string(),
                timeout: config.connect_timeout,
            })??;
        Ok(conn)
    }

    /// Starts the socket task on an already connected stream, without any handshake.
    ///
    /// Used by [`connect`](Self::connect) and by tests that script the peer. Requests that need
    /// version negotiation fail with [`ConnectionError::NotNegotiated`] until
    /// [`handshake`](Self::handshake) ran; [`request_version`](Self::request_version) works at once.
    pub fn spawn<S>(stream: S, addr: &str, config: &ConnectionConfig) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(config.max_in_flight.max(1));
        let poison = Arc::new(OnceLock::new());
        let close = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(io_task::run(
            stream,
            rx,
            poison.clone(),
            close.clone(),
            io_task::Limits {
                max_in_flight: config.max_in_flight.max(1),
                max_frame_size: config.max_frame_size,
            },
            addr.to_string(),
        ));
        Self {
            inner: Arc::new(Inner {
                addr: addr.to_string(),
                client_id: StrBytes::from_string(config.client_id.clone()),
                request_timeout: config.request_timeout,
                commands: tx,
                next_correlation_id: AtomicI32::new(0),
                versions: OnceLock::new(),
                poison,
                close,
                id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            }),
        }
    }

    /// Asks the broker which API versions it supports and remembers them.
    ///
    /// Sends ApiVersions v3 first; a broker that does not know v3 answers `UNSUPPORTED_VERSION`
    /// with a v0 body listing its range, and the request is repeated at the highest common version.
    ///
    /// Cancel safety: safe.
    pub async fn handshake(&self) -> Result<&ApiVersionTable, ConnectionError> {
        if let Some(v) = self.inner.versions.get() {
            return Ok(v);
        }
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kafka-once"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = protocol::versions::client_range(ApiKey::ApiVersions).max;
        let response = loop {
            let frame = self
                .request_raw(&request, version, self.inner.request_timeout)
                .await?;
            let response = decode_api_versions(frame.clone(), version);
            let fallback = match &response {
                Ok(r) if r.error_code == ErrorCode::UnsupportedVersion.code() => {
                    Some(r.api_keys.clone())
                }
                Ok(_) => None,
                // "If the broker does not support the request version it responds with a v0
                // response" (KIP-511): decode as v0 to learn its range.
                Err(_) if version > 0 => decode_api_versions(frame, 0).ok().map(|r| r.api_keys),
                Err(_) => None,
            };
            match fallback {
                Some(keys) if version > 0 => {
                    let broker_max = keys
                        .iter()
                        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                        .map_or(0, |k| k.max_version);
                    if broker_max >= version {
                        return Err(ConnectionError::Protocol(ProtocolError::Decode {
                            api: ApiKey::ApiVersions,
                            version,
                            len: 0,
                            reason: "broker rejected a version it claims to support".into(),
                        }));
                    }
                    version = broker_max.max(0);
                }
                _ => break response?,
            }
        };
        if let Some(code) = ErrorCode::from_i16(response.error_code) {
            return Err(ConnectionError::Broker {
                addr: self.inner.addr.clone(),
                api: ApiKey::ApiVersions,
                code,
            });
        }
        let table = ApiVersionTable::from_response(&response);
        let _ = self.inner.versions.set(table);
        Ok(self.inner.versions.get().expect("just set"))
    }

    /// The versions the broker advertised, once [`handshake`](Self::handshake) ran.
    pub fn versions(&self) -> Option<&ApiVersionTable> {
        self.inner.versions.get()
    }

    /// The version that [`request`](Self::request) would use for `R`.
    pub fn version_for<R: Request>(&self) -> Result<i16, ConnectionError> {
        let table = self
            .versions()
            .ok_or_else(|| ConnectionError::NotNegotiated {
                addr: self.inner.addr.clone(),
            })?;
        Ok(table.negotiate_for::<R>()?)
    }

    /// Sends `request` at the highest version both sides support and waits for its response.
    ///
    /// Cancel safety: safe. If the future is dropped after the frame was handed to the socket
    /// task, the frame is still written whole and its response is read and discarded.
    pub async fn request<R: Request>(&self, request: &R) -> Result<R::Response, ConnectionError> {
        let version = self.version_for::<R>()?;
        self.request_version(request, version).await
    }

    /// Sends `request` at an explicit `version`, with the connection's request timeout.
    ///
    /// Cancel safety: as [`request`](Self::request).
    pub async fn request_version<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ConnectionError> {
        self.request_with_timeout(request, version, self.inner.request_timeout)
            .await
    }

    /// Sends `request` at `version` with a specific timeout (for example a long-poll fetch,
    /// whose timeout must exceed its `max_wait`).
    ///
    /// Cancel safety: as [`request`](Self::request).
    pub async fn request_with_timeout<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ConnectionError> {
        let frame = self.request_raw(request, version, timeout).await?;
        let (_header, body) = protocol::decode_response::<R>(frame, version)?;
        Ok(body)
    }

    /// Hands `request` to the socket task and returns a future of its response, without waiting
    /// for it. Requests enqueued one after another on a connection are written in that order,
    /// which is what the producer needs to pipeline several batches of one partition.
    ///
    /// The returned future enforces `timeout`, counted from now. Cancel safety: the enqueue step
    /// is cancel safe (a dropped call has enqueued nothing); dropping the returned future is safe
    /// as for [`request`](Self::request).
    pub async fn enqueue<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<PendingResponse<R>, ConnectionError> {
        let deadline = Instant::now() + timeout;
        let raw = self
            .enqueue_raw(request, version, deadline, timeout)
            .await?;
        Ok(PendingResponse {
            raw,
            version,
            _request: std::marker::PhantomData,
        })
    }

    /// Sends a request and returns the raw response frame (the header included, the size
    /// prefix not).
    async fn request_raw<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes, ConnectionError> {
        let deadline = Instant::now() + timeout;
        self.enqueue_raw(request, version, deadline, timeout)
            .await?
            .wait()
            .await
    }

    async fn enqueue_raw<R: Request>(
        &self,
        request: &R,
        version: i16,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<RawPending, ConnectionError> {
        if let Some(cause) = self.inner.poison.get() {
            return Err(ConnectionError::Poisoned(cause.clone()));
        }
        let correlation_id = self
            .inner
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed)
            // Keep ids non-negative; wrapping after 2^31 requests is fine, since ids only need to
            // be unique among the few requests in flight.
            & i32::MAX;
        let frame =
            protocol::encode_request(request, version, correlation_id, &self.inner.client_id)?;
        let (reply, response) = oneshot::channel();
        let api = protocol::api_key::<R>();
        let command = Command {
            correlation_id,
            api,
            timeout,
            frame,
            deadline,
            reply,
        };
        let timed_out = || ConnectionError::RequestTimeout {
            addr: self.inner.addr.clone(),
            api,
            timeout,
        };
        match tokio::time::timeout_at(deadline, self.inner.commands.send(command)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(self.poisoned()),
            Err(_) => return Err(timed_out()),
        }
        Ok(RawPending {
            conn: self.clone(),
            response,
            deadline,
            api,
            timeout,
        })
    }

    fn poisoned(&self) -> ConnectionError {
        match self.inner.poison.get() {
            Some(cause) => ConnectionError::Poisoned(cause.clone()),
            None => ConnectionError::Poisoned(Arc::new(ConnectionError::Closed {
                addr: self.inner.addr.clone(),
            })),
        }
    }

    /// Closes the connection now. Requests in flight fail with a retriable
    /// [`ConnectionError::Poisoned`] (their outcome is unknown), as with a network fault.
    pub fn close(&self) {
        self.inner.close.notify_one();
    }

    /// Whether the socket task has died; every request on this handle will fail.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poison.get().is_some() || self.inner.commands.is_closed()
    }

    /// Why the connection died, if it did.
    pub fn poison_cause(&self) -> Option<Arc<ConnectionError>> {
        self.inner.poison.get().cloned()
    }

    /// An identity of the underlying socket, equal for all clones of this handle and different
    /// from every other connection this process opened (never reused).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }
}

/// A request in the socket task's hands; resolves to the raw response frame.
struct RawPending {
    conn: Connection,
    response: oneshot::Receiver<Result<Bytes, ConnectionError>>,
    deadline: Instant,
    api: ApiKey,
    timeout: Duration,
}

impl RawPending {
    async fn wait(self) -> Result<Bytes, ConnectionError> {
        match tokio::time::timeout_at(self.deadline, self.response).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.conn.poisoned()),
            Err(_) => Err(ConnectionError::RequestTimeout {
                addr: self.conn.inner.addr.clone(),
                api: self.api,
                timeout: self.timeout,
            }),
        }
    }
}

/// The response to a request handed to the socket task by [`Connection::enqueue`].
pub struct PendingResponse<R: Request> {
    raw: RawPending,
    version: i16,
    _request: std::marker::PhantomData<fn() -> R>,
}

impl<R: Request> PendingResponse<R> {
    /// Waits for the response and decodes it.
    ///
    /// Cancel safety: safe; the response is read and discarded.
    pub async fn response(self) -> Result<R::Response, ConnectionError> {
        let frame = self.raw.wait().await?;
        let (_header, body) = protocol::decode_response::<R>(frame, self.version)?;
        Ok(body)
    }
}

fn decode_api_versions(
    mut frame: Bytes,
    version: i16,
) -> Result<ApiVersionsResponse, ConnectionError> {
    // ApiVersions responses always use response header v0 (just the correlation id), so that a
    // client can read them before it knows which header versions the broker speaks.
    let len = frame.len();
    if len < 4 {
        return Err(ProtocolError::ShortFrame { len }.into());
    }
    let _ = frame.split_to(4);
    // As in `protocol::decode_response`: the decoder reserves every array by its count on the
    // wire, so the counts must fit the frame first.
    protocol::guard::check_response_body(ApiKey::ApiVersions, version, &frame).map_err(
        |source| ProtocolError::Malformed {
            api: ApiKey::ApiVersions,
            version,
            source,
        },
    )?;
    let body =
        ApiVersionsResponse::decode(&mut frame, version).map_err(|e| ProtocolError::Decode {
            api: ApiKey::ApiVersions,
            version,
            len,
            reason: e.to_string(),
        })?;
    if !frame.is_empty() {
        return Err(ProtocolError::TrailingBytes {
            api: ApiKey::ApiVersions,
            version,
            trailing: frame.len(),
        }
        .into());
    }
    Ok(body)
}

/// The socket task's framing and the handshake's decoder, for the fuzz targets in `fuzz/`
/// (feature `fuzzing`); not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::ApiVersionsResponse;

    use super::ConnectionError;

    /// The initial read buffer of the socket task; it grows only to the frame being read.
    pub const READ_CHUNK: usize = super::io_task::READ_CHUNK;

    /// Splits one complete frame body off the front of `buf`, as the socket task does after
    /// every read.
    pub fn next_frame(
        buf: &mut BytesMut,
        max_frame_size: usize,
    ) -> Result<Option<Bytes>, ConnectionError> {
        super::io_task::next_frame(buf, max_frame_size, "fuzz")
    }

    /// Decodes an ApiVersions response frame (header included) as the handshake does.
    pub fn decode_api_versions(
        frame: Bytes,
        version: i16,
    ) -> Result<ApiVersionsResponse, ConnectionError> {
        super::decode_api_versions(frame, version)
    }
}

#[cfg(test)]
mod tests;
