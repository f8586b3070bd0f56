//! Hostile-peer tests: a scripted broker over an in-memory stream produces the failures a real
//! broker will not produce on demand.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

/// Records the largest single allocation made on the current thread while tracking is on, so a
/// test can prove that a hostile size prefix allocated nothing near its claimed size.
struct TrackingAllocator;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// Runs `f` on this thread with allocation tracking and returns its output and the largest
/// allocation. `#[tokio::test]` uses a current-thread runtime, so the socket task runs here too.
async fn largest_allocation<F: std::future::Future>(f: F) -> (F::Output, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f.await;
    TRACKING.with(|t| t.set(false));
    (out, LARGEST.with(Cell::get))
}

const MAX_FRAME: usize = 1024 * 1024;

fn config() -> ConnectionConfig {
    ConnectionConfig {
        request_timeout: Duration::from_secs(5),
        max_frame_size: MAX_FRAME,
        ..ConnectionConfig::default()
    }
}

/// A connection to a scripted peer, and the peer's end of the stream.
fn pair() -> (Connection, DuplexStream) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    (
        Connection::spawn(client, "scripted:9092", &config()),
        server,
    )
}

/// Reads one request frame from the peer's side; returns its correlation id.
async fn read_request(server: &mut DuplexStream) -> i32 {
    let size = server.read_i32().await.unwrap();
    let mut body = vec![0; size as usize];
    server.read_exact(&mut body).await.unwrap();
    i32::from_be_bytes(body[4..8].try_into().unwrap())
}

fn frame(correlation_id: i32, body: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i32(4 + body.len() as i32);
    b.put_i32(correlation_id);
    b.put_slice(body);
    b
}

fn assert_poisoned(err: &ConnectionError) {
    assert!(matches!(err, ConnectionError::Poisoned(_)), "{err:?}");
    assert!(err.is_retriable(), "{err:?}");
}

#[tokio::test]
async fn two_gib_size_prefix_is_rejected_without_allocating() {
    let (conn, mut server) = pair();
    let peer = tokio::spawn(async move {
        read_request(&mut server).await;
        server.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.unwrap();
        server.write_all(&[0; 64]).await.unwrap();
        server
    });
    let (result, largest) =
        largest_allocation(conn.request_version(&ApiVersionsRequest::default(), 0)).await;
    let err = result.unwrap_err();
    assert_poisoned(&err);
    assert!(
        matches!(
            err.root(),
            ConnectionError::FrameTooLarge {
                size: 2147483647,
                max: MAX_FRAME,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(largest <= MAX_FRAME, "allocated {largest} bytes");
    assert!(conn.is_poisoned());
    // Later requests fail at once with the same cause.
    let again = conn
        .request_version(&ApiVersionsRequest::default(), 0)
        .await
        .unwrap_err();
    assert!(matches!(
        again.root(),
        ConnectionError::FrameTooLarge { .. }
    ));
    drop(peer.await.unwrap());
}

#[tokio::test]
async fn negative_size_prefix_is_rejected() {
    let (conn, mut server) = pair();
    tokio::spawn(async move {
        read_request(&mut server).await;
        server.write_all(&(-5i32).to_be_bytes()).await.unwrap();
        server
    });
    let err = conn
        .request_version(&ApiVersionsRequest::default(), 0)
        .await
        .unwrap_err();
    assert_poisoned(&err);
    assert!(matches!(
        err.root(),
        ConnectionError::NegativeFrameSize { size: -5, .. }
    ));
}

#[tokio::test]
async fn truncated_frame_then_close_fails_in_flight_requests() {
    let (conn, mut server) = pair();
    tokio::spawn(async move {
        read_request(&mut server).await;
        server.write_all(&100i32.to_be_bytes()).await.unwrap();
        server.write_all(&[1; 10]).await.unwrap();
        // Dropping the server closes the stream mid-frame.
    });
    let err = conn
        .request_version(&ApiVersionsRequest::default(), 0)
        .await
        .unwrap_err();
    assert_poisoned(&err);
    assert!(
        matches!(
            err.root(),
            ConnectionError::PeerClosed {
                in_flight: 1,
                partial_bytes: 14,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_correlation_id_poisons_every_request_in_flight() {
    let (conn, mut server) = pair();
    tokio::spawn(async move {
        read_request(&mut server).await;
        read_request(&mut server).await;
        server.write_all(&frame(4242, &[0, 0])).await.unwrap();
        server
    });
    let req = ApiVersionsRequest::default();
    let (a, b) = tokio::join!(conn.request_version(&req, 0), conn.request_version(&req, 0));
    let (a, b) = (a.unwrap_err(), b.unwrap_err());
    assert_poisoned(&a);
    assert_poisoned(&b);
    // One shared cause.
    match (&a, &b) {
        (ConnectionError::Poisoned(x), ConnectionError::Poisoned(y)) => {
            assert!(Arc::ptr_eq(x, y));
            assert!(matches!(
                **x,
                ConnectionError::UnknownCorrelationId {
                    correlation_id: 4242,
                    ..
                }
            ));
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn garbage_body_is_a_typed_decode_error_and_keeps_the_connection() {
    let (conn, mut server) = pair();
    tokio::spawn(async move {
        let id = read_request(&mut server).await;
        server.write_all(&frame(id, &[0xde, 0xad])).await.unwrap();
        let id = read_request(&mut server).await;
        // A valid (empty) ApiVersions v0 body: error code 0, empty array.
        server
            .write_all(&frame(id, &[0, 0, 0, 0, 0, 0]))
            .await
            .unwrap();
        server
    });
    let err = conn
        .request_version(&MetadataRequest::default(), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectionError::Protocol(ProtocolError::Malformed {
                api: ApiKey::Metadata,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(!err.is_retriable());
    // The frame boundary was intact, so the connection is still usable.
    let ok = conn
        .request_version(&ApiVersionsRequest::default(), 0)
        .await
        .unwrap();
    assert_eq!(ok.error_code, 0);
}

#[tokio::test]
async fn garbage_stream_gives_a_typed_error() {
    let (conn, mut server) = pair();
    tokio::spawn(async move {
        read_request(&mut server).await;
        server
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .unwrap();
        server
    });
    let err = conn
        .request_version(&ApiVersionsRequest::default(), 0)
        .await
        .unwrap_err();
    assert_poisoned(&err);
    // "HTTP" read as a big-endian size is 1.2 GB.
    assert!(
        matches!(err.root(), ConnectionError::FrameTooLarge { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn silent_peer_times_out_and_poisons() {
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let conn = Connection::spawn(
        client,
        "silent:9092",
        &ConnectionConfig {
            request_timeout: Duration::from_millis(200),
            ..config()
        },
    );
    tokio::spawn(async move {
        read_request(&mut server).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        server
    });
    let err = conn
        .request_version(&ApiVersionsRequest::default(), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectionError::RequestTimeout { .. }),
        "{err:?}"
    );
    assert!(err.is_retriable());
    // The socket task also gives up on the connection.
    for _ in 0..50 {
        if conn.is_poisoned() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(conn.is_poisoned());
}

#[tokio::test]
async fn dropped_request_leaves_no_half_frame_and_its_response_is_consumed() {
    let (conn, mut server) = pair();
    let (got_first, first_seen) = tokio::sync::oneshot::channel();
    let peer = tokio::spawn(async move {
        let first = read_request(&mut server).await;
        let _ = got_first.send(());
        let second = read_request(&mut server).await;
        // Answer the abandoned request first, then the live one.
        server
            .write_all(&frame(first, &[0, 0, 0, 0, 0, 0]))
            .await
            .unwrap();
        server
            .write_all(&frame(second, &[0, 0, 0, 0, 0, 0]))
            .await
            .unwrap();
        server
    });
    let req = ApiVersionsRequest::default();
    let abandoned = conn.request_version(&req, 0);
    tokio::select! {
        _ = abandoned => panic!("the peer never answers before the drop"),
        _ = first_seen => {}
    }
    let ok = conn
        .request_version(&ApiVersionsRequest::default(), 0)
        .await
        .unwrap();
    assert_eq!(ok.error_code, 0);
    assert!(!conn.is_poisoned());
    drop(peer);
}

#[tokio::test]
async fn handshake_falls_back_when_broker_rejects_v3() {
    let (conn, mut server) = pair();
    tokio::spawn(async move {
        // First ApiVersions v3: answer UNSUPPORTED_VERSION with a v0 body that says ApiVersions
        // is supported up to v2 and Metadata up to v9.
        let id = read_request(&mut server).await;
        let mut body = BytesMut::new();
        body.put_i16(35);
        body.put_i32(2);
        body.put_slice(&[0, 18, 0, 0, 0, 2]);
        body.put_slice(&[0, 3, 0, 0, 0, 9]);
        server.write_all(&frame(id, &body)).await.unwrap();
        // Then v2: error 0, same table, throttle time.
        let id = read_request(&mut server).await;
        let mut body = BytesMut::new();
        body.put_i16(0);
        body.put_i32(2);
        body.put_slice(&[0, 18, 0, 0, 0, 2]);
        body.put_slice(&[0, 3, 0, 0, 0, 9]);
        body.put_i32(0);
        server.write_all(&frame(id, &body)).await.unwrap();
        server
    });
    let table = conn.handshake().await.unwrap();
    assert_eq!(table.negotiate(ApiKey::Metadata).unwrap(), 9);
    assert_eq!(conn.version_for::<MetadataRequest>().unwrap(), 9);
    assert!(matches!(
        conn.version_for::<kafka_protocol::messages::FetchRequest>(),
        Err(ConnectionError::Protocol(
            ProtocolError::UnsupportedApi { .. }
        ))
    ));
}

/// Regression (found by the `frame` fuzz target): the handshake decoded ApiVersions responses
/// without the guard's bounds check, so an `api_keys` count of millions in a few bytes made
/// `kafka-protocol` reserve that many entries up front (gigabytes for a larger count, and the
/// process aborted).
#[tokio::test]
async fn handshake_rejects_a_huge_api_keys_count_without_allocating() {
    let (conn, mut server) = pair();
    tokio::spawn(async move {
        let id = read_request(&mut server).await;
        // ApiVersions v3: error_code 0, then api_keys as a compact array of 2^22 entries
        // (unsigned varint of count + 1), then nothing.
        let mut body = BytesMut::new();
        body.put_i16(0);
        let mut n: u32 = (1 << 22) + 1;
        while n >= 0x80 {
            body.put_u8(n as u8 | 0x80);
            n >>= 7;
        }
        body.put_u8(n as u8);
        server.write_all(&frame(id, &body)).await.unwrap();
        server
    });
    let (result, largest) = largest_allocation(conn.handshake()).await;
    assert!(
        largest <= MAX_FRAME + 64 * 1024,
        "allocated {largest} bytes"
    );
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectionError::Protocol(ProtocolError::Malformed {
                api: ApiKey::ApiVersions,
                version: 3,
                ..
            })
        ),
        "{err:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Whatever bytes the peer sends, a request ends in a typed error or a decoded response,
    /// never a panic, and nothing larger than the frame limit is allocated.
    #[test]
    fn arbitrary_peer_bytes_never_panic(reply in proptest::collection::vec(any::<u8>(), 0..256)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (result, largest) = rt.block_on(async move {
            let (conn, mut server) = pair();
            tokio::spawn(async move {
                read_request(&mut server).await;
                let _ = server.write_all(&reply).await;
            });
            largest_allocation(conn.request_version(&ApiVersionsRequest::default(), 0)).await
        });
        prop_assert!(largest <= MAX_FRAME + 64 * 1024, "allocated {}", largest);
        if let Err(e) = result {
            // Display must work for every error.
            let _ = e.to_string();
        }
    }

    /// A well-framed response with the right correlation id but an arbitrary body: the bounds
    /// check or the decoder rejects it with a typed error; nothing allocates by a hostile count.
    #[test]
    fn arbitrary_response_bodies_never_panic(
        version in 0i16..=12,
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (result, largest) = rt.block_on(async move {
            let (conn, mut server) = pair();
            tokio::spawn(async move {
                let id = read_request(&mut server).await;
                let _ = server.write_all(&frame(id, &body)).await;
                server
            });
            largest_allocation(conn.request_version(&MetadataRequest::default(), version)).await
        });
        prop_assert!(largest <= MAX_FRAME + 64 * 1024, "allocated {}", largest);
        if let Err(e) = result {
            prop_assert!(!matches!(e, ConnectionError::Poisoned(_)), "{e:?}");
        }
    }

    /// Hostile array counts in an otherwise valid Metadata response.
    #[test]
    fn huge_array_counts_are_rejected_before_allocation(count in 1_000u32..=u32::MAX, version in 1i16..=8) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (result, largest) = rt.block_on(async move {
            let (conn, mut server) = pair();
            tokio::spawn(async move {
                let id = read_request(&mut server).await;
                let mut body = BytesMut::new();
                if version >= 3 {
                    body.put_i32(0); // throttle_time_ms
                }
                body.put_u32(count); // brokers array count
                body.put_slice(&[0; 16]);
                let _ = server.write_all(&frame(id, &body)).await;
                server
            });
            largest_allocation(conn.request_version(&MetadataRequest::default(), version)).await
        });
        prop_assert!(largest <= MAX_FRAME + 64 * 1024, "allocated {}", largest);
        let err = result.unwrap_err();
        prop_assert!(
            matches!(err, ConnectionError::Protocol(ProtocolError::Malformed { .. })),
            "{err:?}"
        );
    }
}

/// The `frame` fuzz target's seeds: the target's three selector bytes (frame size limit, read
/// chunk size, ApiVersions version asked for), then a byte stream of size-prefixed frames.
#[test]
fn frame_fuzz_seeds_are_current() {
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::protocol::Encodable;

    /// A size-prefixed ApiVersions response frame at `version`, as a 4.x broker answers.
    fn api_versions(correlation_id: i32, version: i16, error_code: i16) -> Vec<u8> {
        let keys = [(0, 3, 12), (1, 4, 17), (3, 0, 12), (18, 0, 4)]
            .map(|(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .to_vec();
        let response = ApiVersionsResponse::default()
            .with_error_code(error_code)
            .with_api_keys(keys)
            .with_throttle_time_ms(0);
        let mut body = BytesMut::new();
        response.encode(&mut body, version).unwrap();
        frame(correlation_id, &body).to_vec()
    }
    // Selector bytes: limit index (5: the default 100 MiB, 3: 4 KiB, 2: 100 B), chunk - 1,
    // version.
    let mut files = std::collections::BTreeMap::new();
    for version in 0..=3 {
        let mut seed = vec![5, 255, version as u8];
        seed.extend(api_versions(0, version, 0));
        files.insert(format!("api_versions_v{version}.bin"), seed);
    }
    let mut seed = vec![5, 6, 3];
    seed.extend(api_versions(0, 3, 0));
    seed.extend(api_versions(1, 3, 0));
    files.insert("two_frames_in_7_byte_reads.bin".into(), seed);
    // KIP-511: a broker without v3 answers UNSUPPORTED_VERSION (35) with a v0 body.
    let mut seed = vec![5, 255, 3];
    seed.extend(api_versions(0, 0, 35));
    files.insert("v3_answered_with_v0_body.bin".into(), seed);
    let mut seed = vec![3, 255, 0];
    let next = api_versions(1, 0, 0);
    seed.extend(api_versions(0, 0, 0));
    seed.extend(&next[..next.len() / 2]);
    files.insert("frame_then_half_a_frame.bin".into(), seed);
    let mut seed = vec![2, 255, 0];
    seed.extend(5000_i32.to_be_bytes());
    seed.extend([0; 16]);
    files.insert("size_over_the_limit.bin".into(), seed);
    crate::fuzz_seeds::check_or_write("frame", files);
}
