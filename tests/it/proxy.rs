//! A fault-injecting TCP proxy for the reliability tests, in process.
//!
//! It listens on one port per node; a cluster started with
//! [`advertise_clients_at(proxy.addresses())`](kafka_once::testing::LocalKafkaBuilder::advertise_clients_at)
//! advertises those ports for its `CLIENT` listener, so a client that bootstraps from
//! [`FaultProxy::bootstrap`] sends every byte through here. The proxy reads Kafka frames (a 4-byte
//! length, then the body) in both directions, so it can act on requests of a given API key and on
//! the responses that answer them. Faults apply to every connection of the proxy:
//!
//! - [`delay`](FaultProxy::delay): each frame waits this long before it is forwarded;
//! - [`blackhole`](FaultProxy::blackhole): nothing is forwarded and new connections get no answer,
//!   as when a network partition cuts the client off; lifting it resets the connections it held;
//! - [`reset_after_bytes`](FaultProxy::reset_after_bytes): a connection opened from now on is
//!   reset once it has carried that many bytes, in the middle of a frame if that is where the count ends;
//! - [`drop_response`](FaultProxy::drop_response): the response to the Kth request of an API key
//!   (counted across connections from the moment of the call) is swallowed and its connection
//!   reset: the broker applied the request, the client never learns it. For OffsetCommit that is an
//!   ambiguous commit.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Largest frame the proxy forwards; a bigger length prefix is a broken stream.
const MAX_FRAME: usize = 256 << 20;

/// See the module docs.
pub struct FaultProxy {
    addresses: Vec<SocketAddr>,
    targets: Arc<Mutex<Vec<Option<SocketAddr>>>>,
    faults: Arc<Faults>,
    tasks: JoinSet<()>,
}

#[derive(Default)]
struct Faults {
    delay_ms: AtomicU64,
    /// Raised while blackholed; every pipe watches it.
    blackhole: watch::Sender<bool>,
    reset_after: Mutex<Option<u64>>,
    /// Requests still to pass before the one whose response is dropped, per API key.
    drops: Mutex<Vec<DropRule>>,
    dropped: AtomicU64,
    connections: AtomicU64,
    resets: AtomicU64,
}

struct DropRule {
    api_key: i16,
    remaining: u32,
}

/// One proxied connection's shared state.
struct Conn {
    /// Correlation ids whose responses are to be dropped.
    doomed: Mutex<HashSet<i32>>,
    /// Bytes still allowed through, when reset after N bytes.
    budget: Mutex<Option<u64>>,
    /// Set when either direction ended: the other stops too.
    closed: AtomicBool,
}

impl FaultProxy {
    /// Binds `nodes` listening ports on 127.0.0.1; connections wait for [`route`](Self::route).
    pub async fn bind(nodes: usize) -> FaultProxy {
        let faults = Arc::new(Faults::default());
        let targets = Arc::new(Mutex::new(vec![None; nodes]));
        let mut tasks = JoinSet::new();
        let mut addresses = Vec::with_capacity(nodes);
        for node in 0..nodes {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addresses.push(listener.local_addr().unwrap());
            tasks.spawn(accept_loop(listener, node, targets.clone(), faults.clone()));
        }
        FaultProxy {
            addresses,
            targets,
            faults,
            tasks,
        }
    }

    /// `host:port` of each node's listening port, for `advertise_clients_at`.
    pub fn addresses(&self) -> Vec<String> {
        self.addresses.iter().map(ToString::to_string).collect()
    }

    /// The listening ports, comma-separated, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addresses().join(",")
    }

    /// Forwards node `index`'s port (0-based) to `target`.
    pub fn route(&self, index: usize, target: SocketAddr) {
        self.targets.lock().unwrap()[index] = Some(target);
    }

    /// Routes every node to its `CLIENT` listener.
    pub fn route_to(&self, kafka: &kafka_once::testing::LocalKafka) {
        for (i, node) in kafka.nodes().iter().enumerate() {
            let port = node.client_port.expect("the cluster advertises the proxy");
            self.route(i, SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }

    /// Delays every frame by `delay` from now on (zero: none).
    pub fn delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.faults.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Cuts every connection off (`true`) or lets traffic through again (`false`).
    pub fn blackhole(&self, on: bool) {
        self.faults.blackhole.send_replace(on);
    }

    /// Connections opened from now on are reset after `bytes` bytes in both directions together.
    pub fn reset_after_bytes(&self, bytes: Option<u64>) {
        *self.faults.reset_after.lock().unwrap() = bytes;
    }

    /// The response to the `nth` (from 1) request of `api_key` from now on is dropped and its
    /// connection reset.
    pub fn drop_response(&self, api_key: i16, nth: u32) {
        assert!(nth >= 1, "requests are counted from 1");
        self.faults.drops.lock().unwrap().push(DropRule {
            api_key,
            remaining: nth,
        });
    }

    /// Forgets the drops asked for with [`drop_response`](Self::drop_response) and not made yet.
    pub fn clear_drops(&self) {
        self.faults.drops.lock().unwrap().clear();
    }

    /// Responses dropped so far.
    pub fn dropped(&self) -> u64 {
        self.faults.dropped.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.faults.connections.load(Ordering::Relaxed)
    }

    /// Connections reset by a fault so far.
    pub fn resets(&self) -> u64 {
        self.faults.resets.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

async fn accept_loop(
    listener: TcpListener,
    node: usize,
    targets: Arc<Mutex<Vec<Option<SocketAddr>>>>,
    faults: Arc<Faults>,
) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        faults.connections.fetch_add(1, Ordering::Relaxed);
        let target = targets.lock().unwrap()[node];
        let faults = faults.clone();
        conns.spawn(async move {
            // A blackholed connect waits (the client sees a connection that never answers).
            let mut hole = faults.blackhole.subscribe();
            if *hole.borrow_and_update() {
                let _ = hole.wait_for(|on| !on).await;
                return;
            }
            let Some(target) = target else { return };
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let conn = Arc::new(Conn {
                doomed: Mutex::default(),
                budget: Mutex::new(*faults.reset_after.lock().unwrap()),
                closed: AtomicBool::new(false),
            });
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let up = pipe(
                client_read,
                server_write,
                Direction::Request,
                conn.clone(),
                faults.clone(),
            );
            let down = pipe(
                server_read,
                client_write,
                Direction::Response,
                conn.clone(),
                faults.clone(),
            );
            // Either direction ending ends the connection (both halves dropped).
            tokio::select! {
                _ = up => {}
                _ = down => {}
            }
            conn.closed.store(true, Ordering::Relaxed);
        });
        // Reap finished connections.
        while conns.try_join_next().is_some() {}
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Request,
    Response,
}

/// Forwards frames from `from` to `to` until either side closes or a fault ends the connection.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    conn: Arc<Conn>,
    faults: Arc<Faults>,
) {
    let mut hole = faults.blackhole.subscribe();
    loop {
        let mut len = [0u8; 4];
        let read = tokio::select! {
            r = from.read_exact(&mut len) => Some(r),
            _ = hole.wait_for(|on| *on) => None,
        };
        let Some(read) = read else {
            return reset_when_healed(&mut hole, &faults).await;
        };
        if read.is_err() || conn.closed.load(Ordering::Relaxed) {
            return;
        }
        let size = i32::from_be_bytes(len);
        let Ok(size) = usize::try_from(size) else {
            return;
        };
        if size > MAX_FRAME {
            return;
        }
        let mut frame = vec![0u8; 4 + size];
        frame[..4].copy_from_slice(&len);
        let read = tokio::select! {
            r = from.read_exact(&mut frame[4..]) => Some(r),
            _ = hole.wait_for(|on| *on) => None,
        };
        let Some(read) = read else {
            return reset_when_healed(&mut hole, &faults).await;
        };
        if read.is_err() {
            return;
        }
        let delay = faults.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if *hole.borrow() {
            return reset_when_healed(&mut hole, &faults).await;
        }
        match direction {
            Direction::Request if frame.len() >= 12 => {
                let api_key = i16::from_be_bytes([frame[4], frame[5]]);
                let correlation = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                let mut drops = faults.drops.lock().unwrap();
                if let Some(i) = drops.iter().position(|r| r.api_key == api_key) {
                    drops[i].remaining -= 1;
                    if drops[i].remaining == 0 {
                        drops.remove(i);
                        conn.doomed.lock().unwrap().insert(correlation);
                    }
                }
            }
            Direction::Response if frame.len() >= 8 => {
                let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                if conn.doomed.lock().unwrap().remove(&correlation) {
                    faults.dropped.fetch_add(1, Ordering::Relaxed);
                    faults.resets.fetch_add(1, Ordering::Relaxed);
                    conn.closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
            _ => {}
        }
        // Reset after N bytes: forward what the budget allows, then end the connection.
        let allowed = {
            let mut budget = conn.budget.lock().unwrap();
            match budget.as_mut() {
                None => frame.len(),
                Some(left) => {
                    let n = (*left).min(frame.len() as u64);
                    *left -= n;
                    n as usize
                }
            }
        };
        if to.write_all(&frame[..allowed]).await.is_err() {
            return;
        }
        if allowed < frame.len() {
            let _ = to.flush().await;
            faults.resets.fetch_add(1, Ordering::Relaxed);
            conn.closed.store(true, Ordering::Relaxed);
            return;
        }
    }
}

/// A blackholed connection forwards nothing until the hole is lifted, then it is reset (as a TCP
/// connection that timed out during a partition would be).
async fn reset_when_healed(hole: &mut watch::Receiver<bool>, faults: &Faults) {
    let _ = hole.wait_for(|on| !on).await;
    faults.resets.fetch_add(1, Ordering::Relaxed);
}
