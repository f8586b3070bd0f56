//! [`LocalKafka`]: a cluster of local Kafka nodes, each one JVM.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::config::{self, BrokerSettings, NodeSpec};
use super::process::{self, Watchdog};
use super::{TestingError, probe};

/// Most nodes a builder accepts; far beyond what a laptop runs, it only catches typos.
const MAX_BROKERS: usize = 32;
/// Lines of a node's log quoted in errors.
const TAIL_LINES: usize = 30;
/// Time allowed for one readiness request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between readiness rounds.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// Attempts when a chosen port was taken before the JVM bound it.
const PORT_ATTEMPTS: u32 = 3;

/// Settings for a [`LocalKafka`]; see [`LocalKafka::builder`].
#[derive(Debug, Clone)]
pub struct LocalKafkaBuilder {
    brokers: usize,
    partitions_default: u32,
    auto_create_topics: bool,
    internal_topic_partitions: u32,
    startup_timeout: Duration,
    stop_grace: Duration,
    keep_data: bool,
    data_dir: Option<PathBuf>,
    preferred_port: Option<u16>,
    jvm_args: Vec<String>,
    overrides: Vec<(String, String)>,
    detached: bool,
    advertise_clients: Option<Vec<String>>,
}

impl Default for LocalKafkaBuilder {
    fn default() -> Self {
        LocalKafkaBuilder {
            brokers: 1,
            partitions_default: 1,
            auto_create_topics: false,
            internal_topic_partitions: 4,
            startup_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(10),
            keep_data: false,
            data_dir: None,
            preferred_port: None,
            jvm_args: Vec::new(),
            overrides: Vec::new(),
            detached: false,
            advertise_clients: None,
        }
    }
}

impl LocalKafkaBuilder {
    /// The same as [`LocalKafka::builder`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes, each a combined broker and controller and a voter of the quorum, with ids `1..=n`.
    /// Default 1. Internal topics and `default.replication.factor` get `min(n, 3)` replicas.
    pub fn brokers(mut self, n: usize) -> Self {
        self.brokers = n;
        self
    }

    /// Partitions of a topic created without a count (`num.partitions`). Default 1.
    pub fn partitions_default(mut self, partitions: u32) -> Self {
        self.partitions_default = partitions;
        self
    }

    /// Whether producing to or fetching metadata for an unknown topic creates it (`auto.create.topics.enable`).
    /// Default false, so tests create their topics explicitly.
    pub fn auto_create_topics(mut self, enabled: bool) -> Self {
        self.auto_create_topics = enabled;
        self
    }

    /// Partitions of `__consumer_offsets`, `__transaction_state` and the share-group state topic. Default 4 (Kafka's
    /// is 50), which makes the first group and transaction operations much quicker.
    pub fn internal_topic_partitions(mut self, partitions: u32) -> Self {
        self.internal_topic_partitions = partitions;
        self
    }

    /// How long [`start`](Self::start) and [`LocalKafka::start_node`] wait for nodes to answer. Default 60 s.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// How long stopping waits after SIGTERM before SIGKILL. Default 10 s. Applies to [`LocalKafka::stop_node`],
    /// and to stopping the whole cluster when its data is kept (otherwise that uses SIGKILL at once).
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Keep the data and logs after stopping. Default false: a temporary directory is removed on stop.
    pub fn keep_data(mut self, keep: bool) -> Self {
        self.keep_data = keep;
        self
    }

    /// Use this directory for the cluster instead of a temporary one; it is never removed. If it already holds a
    /// cluster of the same size started earlier, that cluster restarts with its data and ports (settings apply anew).
    /// Default: a new temporary directory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Give node `i` (1-based) the client port `port + i - 1` when it is free, else a random free port.
    /// Default: random free ports.
    pub fn preferred_port(mut self, port: u16) -> Self {
        self.preferred_port = Some(port);
        self
    }

    /// Add a JVM option after the defaults (`-Xms256m -Xmx1g -XX:+UseG1GC …`), so `-Xmx2g` here wins. Default none.
    pub fn jvm_arg(mut self, arg: impl Into<String>) -> Self {
        self.jvm_args.push(arg.into());
        self
    }

    /// Set any broker property, replacing the module's default for that key. Default none.
    pub fn server_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.push((key.into(), value.into()));
        self
    }

    /// Give every node a second client listener, `CLIENT`, advertised at `addresses[i]` for node `i + 1`
    /// (`host:port` each, one per node). Clients that bootstrap from those addresses see only them in metadata,
    /// so a proxy listening there and forwarding to [`NodeInfo::client_port`] carries all their traffic, as the
    /// reliability tests' fault proxy does. The `PLAINTEXT` listener ([`LocalKafka::bootstrap`]) stays direct, and
    /// the nodes replicate over it. Default: no such listener.
    pub fn advertise_clients_at<S: Into<String>>(
        mut self,
        addresses: impl IntoIterator<Item = S>,
    ) -> Self {
        self.advertise_clients = Some(addresses.into_iter().map(Into::into).collect());
        self
    }

    /// Detached nodes (for the CLI): own process group, no watchdog, not stopped on drop.
    pub(crate) fn detached(mut self) -> Self {
        self.detached = true;
        self
    }

    /// Checks the settings without starting anything.
    pub fn validate(&self) -> Result<(), TestingError> {
        let invalid = |message: String| Err(TestingError::InvalidConfig { message });
        if self.brokers == 0 || self.brokers > MAX_BROKERS {
            return invalid(format!(
                "brokers must be between 1 and {MAX_BROKERS}, not {}",
                self.brokers
            ));
        }
        if self.partitions_default == 0 {
            return invalid("partitions_default must be at least 1".into());
        }
        if self.internal_topic_partitions == 0 {
            return invalid("internal_topic_partitions must be at least 1".into());
        }
        if let Some(addresses) = &self.advertise_clients {
            if addresses.len() != self.brokers {
                return invalid(format!(
                    "advertise_clients_at needs one address per node: {} for {} nodes",
                    addresses.len(),
                    self.brokers
                ));
            }
            if let Some(bad) = addresses.iter().find(|a| {
                a.rsplit_once(':')
                    .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
                    || a.contains([',', ' ', '\n', '\r'])
            }) {
                return invalid(format!(
                    "advertised client address {bad:?} is not host:port"
                ));
            }
        }
        if self.startup_timeout.is_zero() {
            return invalid("startup_timeout must be positive".into());
        }
        for (key, value) in &self.overrides {
            if key.is_empty()
                || key.contains(|c: char| c.is_whitespace() || c == '=' || c == ':' || c == '#')
            {
                return invalid(format!(
                    "server property key {key:?} is not a plain Kafka config name"
                ));
            }
            if value.contains(['\n', '\r']) {
                return invalid(format!(
                    "server property {key} has a line break in its value"
                ));
            }
        }
        Ok(())
    }

    /// Starts the nodes and waits until every one answers ApiVersions and lists all nodes in its metadata.
    ///
    /// Fetches the jars on first use (see [`ensure_kafka_jars`](super::ensure_kafka_jars)). On failure every
    /// started JVM is stopped and the error quotes the failing node's log; a temporary directory is then kept so the
    /// log can be read.
    ///
    /// Cancel safety: dropping the future stops the JVMs started so far (through [`LocalKafka`]'s `Drop`).
    pub async fn start(&self) -> Result<LocalKafka, TestingError> {
        self.validate()?;
        let java = process::java_binary()?;
        process::check_java_version(&java).await?;
        let libs = super::ensure_kafka_jars().await?;
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            match self.start_once(&java, &libs).await {
                Err(e) if e.is_port_clash() && attempt < PORT_ATTEMPTS => {
                    tracing::warn!(
                        "a chosen port was taken before Kafka bound it; retrying with new ports"
                    );
                    attempt += 1;
                }
                Ok(kafka) => {
                    tracing::info!(bootstrap = %kafka.bootstrap(), elapsed = ?started.elapsed(), "local Kafka ready");
                    return Ok(kafka);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn start_once(&self, java: &Path, libs: &Path) -> Result<LocalKafka, TestingError> {
        let (root, temp) = match &self.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| TestingError::io(format!("creating {}", dir.display()), e))?;
                let dir = std::path::absolute(dir)
                    .map_err(|e| TestingError::io("resolving the data dir", e))?;
                (dir, None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("kafka-once-")
                    .tempdir()
                    .map_err(|e| TestingError::io("creating a temporary directory", e))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let existing = existing_cluster(&root, self.brokers)?;
        let fresh = existing.is_none();
        let specs = match existing {
            Some(specs) => specs,
            None => {
                let clients = self.advertise_clients.as_ref();
                let ports = free_ports(self.brokers, self.preferred_port, clients.is_some())?;
                (1..=self.brokers)
                    .zip(ports)
                    .map(|(i, (port, controller_port, client_port))| {
                        let id = i32::try_from(i).expect("at most MAX_BROKERS");
                        NodeSpec {
                            id,
                            port,
                            controller_port,
                            dir: root.join(config::node_dir_name(id)),
                            client: clients.zip(client_port).map(|(addresses, port)| {
                                config::ClientListener {
                                    port,
                                    advertised: addresses[i - 1].clone(),
                                }
                            }),
                        }
                    })
                    .collect()
            }
        };
        let mut kafka = LocalKafka {
            nodes: specs
                .into_iter()
                .map(|spec| Node {
                    spec,
                    pid: AtomicU32::new(0),
                    running: Default::default(),
                })
                .collect(),
            log4j2: root.join("log4j2.xml"),
            root,
            remove_data: temp.is_some() && !self.keep_data,
            temp,
            java: java.to_path_buf(),
            libs: libs.to_path_buf(),
            jvm_args: self.jvm_args.clone(),
            grace: self.stop_grace,
            startup_timeout: self.startup_timeout,
            detached: self.detached,
        };
        let deadline = Instant::now() + self.startup_timeout;
        let booted = async {
            kafka.write_files(&self.settings())?;
            if fresh {
                kafka.format(deadline).await?;
            }
            for node in &kafka.nodes {
                *node.running.lock().await = kafka.spawn(node)?;
            }
            let ids: Vec<i32> = kafka.nodes.iter().map(|n| n.spec.id).collect();
            kafka.wait_ready(&ids, deadline).await
        }
        .await;
        match booted {
            Ok(()) => Ok(kafka),
            Err(e) => {
                kafka.kill_all_blocking(Duration::ZERO);
                if e.is_port_clash() && fresh && kafka.temp.is_none() {
                    // A cluster formatted by this attempt in the caller's directory: remove it so the retry chooses
                    // new ports instead of reusing the taken one.
                    for node in &kafka.nodes {
                        let _ = std::fs::remove_dir_all(&node.spec.dir);
                    }
                }
                if !e.is_port_clash()
                    && let Some(temp) = kafka.temp.take()
                {
                    let kept = temp.keep();
                    tracing::warn!(dir = %kept.display(), "local Kafka failed to start; keeping its logs");
                }
                Err(e)
            }
        }
    }

    fn settings(&self) -> BrokerSettings {
        BrokerSettings {
            partitions_default: self.partitions_default,
            auto_create_topics: self.auto_create_topics,
            internal_topic_partitions: self.internal_topic_partitions,
            overrides: self.overrides.clone(),
        }
    }
}

/// Specs of a cluster formatted earlier under `root`, if there is one of `n` nodes.
fn existing_cluster(root: &Path, n: usize) -> Result<Option<Vec<NodeSpec>>, TestingError> {
    let first = root.join(config::node_dir_name(1));
    if !first.join("data").join("meta.properties").is_file() {
        return Ok(None);
    }
    let mut specs = Vec::with_capacity(n);
    for i in 1..=n {
        let id = i32::try_from(i).expect("at most MAX_BROKERS");
        let dir = root.join(config::node_dir_name(id));
        let file = dir.join("server.properties");
        let text = std::fs::read_to_string(&file).map_err(|e| {
            TestingError::io(
                format!("reading {} of an existing cluster", file.display()),
                e,
            )
        })?;
        let spec = config::spec_from_properties(&dir, &text)
            .filter(|s| s.id == id)
            .ok_or_else(|| TestingError::InvalidConfig {
                message: format!("{} is not a kafka-once node configuration", file.display()),
            })?;
        specs.push(spec);
    }
    if root
        .join(config::node_dir_name(
            i32::try_from(n + 1).unwrap_or(i32::MAX),
        ))
        .exists()
    {
        return Err(TestingError::InvalidConfig {
            message: format!("{} holds a cluster of more than {n} nodes", root.display()),
        });
    }
    Ok(Some(specs))
}

/// `(client port, controller port, CLIENT listener port if `with_client`)` for `n` nodes, all bound at once so they
/// differ, then released for Kafka.
///
/// Ports are drawn below the kernel's ephemeral range when there is room: a port from `bind(0)` comes from that
/// range, and the outgoing connections of every other process draw from it too, so one of them can take the port in
/// the moment between its release here and the JVM's bind.
fn free_ports(
    n: usize,
    preferred: Option<u16>,
    with_client: bool,
) -> Result<Vec<(u16, u16, Option<u16>)>, TestingError> {
    let bind = |port: u16| TcpListener::bind(("127.0.0.1", port));
    let io = |e| TestingError::io("finding a free port on 127.0.0.1", e);
    let quiet = quiet_port_range();
    let any = || -> Result<TcpListener, TestingError> {
        if let Some((low, high)) = quiet {
            for _ in 0..64 {
                if let Ok(l) = bind(rand::random_range(low..=high)) {
                    return Ok(l);
                }
            }
        }
        bind(0).map_err(io)
    };
    let mut held = Vec::with_capacity(2 * n);
    let mut ports = Vec::with_capacity(n);
    for i in 0..n {
        let wanted = preferred.and_then(|p| p.checked_add(u16::try_from(i).ok()?));
        let client = match wanted.map(bind) {
            Some(Ok(l)) => l,
            _ => any()?,
        };
        let controller = any()?;
        let extra = if with_client { Some(any()?) } else { None };
        ports.push((
            client.local_addr().map_err(io)?.port(),
            controller.local_addr().map_err(io)?.port(),
            match &extra {
                Some(l) => Some(l.local_addr().map_err(io)?.port()),
                None => None,
            },
        ));
        held.push(client);
        held.push(controller);
        held.extend(extra);
    }
    Ok(ports)
}

/// Ports from 20000 up to just below the kernel's ephemeral range, when that range starts high enough to leave some.
fn quiet_port_range() -> Option<(u16, u16)> {
    const LOW: u16 = 20_000;
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let first: u16 = range.split_whitespace().next()?.parse().ok()?;
    (first > LOW + 1_000).then(|| (LOW, first - 1))
}

/// A local Apache Kafka cluster of one or more nodes, stopped when dropped.
///
/// Each node is one JVM running a combined broker and controller; see the [module docs](super) for what it needs,
/// where the jars come from and how the processes are cleaned up even when a test panics or is killed.
///
/// ```no_run
/// use kafka_once::testing::LocalKafka;
///
/// # async fn demo() -> Result<(), kafka_once::testing::TestingError> {
/// let kafka = LocalKafka::builder().brokers(3).partitions_default(6).start().await?;
/// let bootstrap = kafka.bootstrap(); // "127.0.0.1:41234,127.0.0.1:41236,127.0.0.1:41238"
/// # let _ = bootstrap;
/// // … run clients against `bootstrap` …
/// kafka.stop_node(2).await?; // graceful: SIGTERM, then SIGKILL after the grace period
/// kafka.start_node(2).await?; // same port, same data; waits until it serves again
/// println!("node 1 logs to {}", kafka.nodes()[0].log_file.display());
/// kafka.stop().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LocalKafka {
    nodes: Vec<Node>,
    root: PathBuf,
    /// The temporary directory holding `root`, removed on stop unless `keep_data`.
    temp: Option<TempDir>,
    /// Watchdogs also remove the data when the owner dies.
    remove_data: bool,
    log4j2: PathBuf,
    java: PathBuf,
    libs: PathBuf,
    jvm_args: Vec<String>,
    grace: Duration,
    startup_timeout: Duration,
    detached: bool,
}

#[derive(Debug)]
struct Node {
    spec: NodeSpec,
    /// The JVM's pid while it runs, else 0; readable without the lock.
    pid: AtomicU32,
    running: tokio::sync::Mutex<Running>,
}

#[derive(Debug, Default)]
struct Running {
    child: Option<Child>,
    watchdog: Option<Watchdog>,
}

impl Running {
    /// Stops the watchdog and hands out the JVM, if any.
    fn take_child(&mut self) -> Option<Child> {
        if let Some(dog) = self.watchdog.take() {
            dog.disarm();
        }
        self.child.take()
    }
}

/// One node of a [`LocalKafka`], as returned by [`LocalKafka::nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// The node id (`node.id`), from 1.
    pub id: i32,
    /// The client (PLAINTEXT) port on 127.0.0.1; it stays the same across restarts.
    pub port: u16,
    /// The controller (KRaft quorum) port on 127.0.0.1.
    pub controller_port: u16,
    /// The `CLIENT` listener's port on 127.0.0.1, with
    /// [`advertise_clients_at`](LocalKafkaBuilder::advertise_clients_at); a proxy forwards to it.
    pub client_port: Option<u16>,
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// The node's directory: configuration, pid file, log file and data.
    pub dir: PathBuf,
    /// The data directory (`log.dirs`, which also holds the metadata log).
    pub data_dir: PathBuf,
    /// Where the JVM's stdout, stderr and log4j2 output go; print it when a test fails.
    pub log_file: PathBuf,
    /// The node's `server.properties`.
    pub config_file: PathBuf,
    /// The file holding the JVM's pid while it runs.
    pub pid_file: PathBuf,
    /// The JVM's pid, or `None` when the node is stopped.
    pub pid: Option<u32>,
}

impl LocalKafka {
    /// Settings for a new cluster; [`LocalKafkaBuilder::start`] starts it.
    pub fn builder() -> LocalKafkaBuilder {
        LocalKafkaBuilder::default()
    }

    /// The client addresses of all nodes, comma-separated, for `bootstrap.servers`. Includes stopped nodes.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.spec.address())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The nodes, in id order.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.iter().map(Node::info).collect()
    }

    /// The directory holding every node's files.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// The last `lines` lines of a node's log file.
    pub fn log_tail(&self, id: i32, lines: usize) -> Result<String, TestingError> {
        Ok(process::log_tail(&self.node(id)?.spec.log_file(), lines))
    }

    /// Stops a node gracefully: SIGTERM, then SIGKILL after the grace period. Its data and ports stay, for
    /// [`start_node`](Self::start_node). Does nothing if the node is stopped already.
    ///
    /// Cancel safety: if cancelled while waiting, the node stays recorded as running (SIGTERM already sent); a later
    /// call or [`LocalKafka`]'s `Drop` finishes the stop.
    pub async fn stop_node(&self, id: i32) -> Result<(), TestingError> {
        let node = self.node(id)?;
        let mut running = node.running.lock().await;
        if let Some(dog) = running.watchdog.take() {
            dog.disarm();
        }
        // The child stays in `running` until reaped, so a cancelled stop leaves it to `Drop`.
        if let Some(child) = running.child.as_mut() {
            process::terminate(&mut [child], self.grace).await;
        }
        running.child = None;
        node.stopped();
        Ok(())
    }

    /// Kills a node at once with SIGKILL, as a crash would. Its data and ports stay.
    pub async fn kill_node(&self, id: i32) -> Result<(), TestingError> {
        let node = self.node(id)?;
        let mut running = node.running.lock().await;
        if let Some(mut child) = running.take_child() {
            let _ = child.kill();
            let _ = child.wait();
        }
        node.stopped();
        Ok(())
    }

    /// Freezes a node's JVM with SIGSTOP, as a long GC pause or a frozen VM would: its connections stay open and
    /// nothing answers. [`resume_node`](Self::resume_node) lets it go on. Killing or stopping a paused node works
    /// (SIGKILL ends it; a graceful stop waits out the grace period first).
    pub async fn pause_node(&self, id: i32) -> Result<(), TestingError> {
        self.signal_node(id, "STOP").await
    }

    /// Lets a node paused by [`pause_node`](Self::pause_node) run again (SIGCONT).
    pub async fn resume_node(&self, id: i32) -> Result<(), TestingError> {
        self.signal_node(id, "CONT").await
    }

    async fn signal_node(&self, id: i32, signal: &str) -> Result<(), TestingError> {
        let node = self.node(id)?;
        let _running = node.running.lock().await;
        let pid = node.pid.load(Ordering::Relaxed);
        if pid == 0 {
            return Err(TestingError::InvalidConfig {
                message: format!("node {id} is not running"),
            });
        }
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .map_err(|e| TestingError::io(format!("sending SIG{signal} to node {id}"), e))?;
        if !status.success() {
            return Err(TestingError::io(
                format!("sending SIG{signal} to node {id} (pid {pid})"),
                std::io::Error::other(format!("kill exited with {status}")),
            ));
        }
        Ok(())
    }

    /// Starts a stopped node again with its data and ports, and waits until it answers and its metadata lists every
    /// running node. Does only the waiting if it runs already.
    ///
    /// Cancel safety: the node may be left running but not yet ready; a later call waits again.
    pub async fn start_node(&self, id: i32) -> Result<(), TestingError> {
        let node = self.node(id)?;
        {
            let mut running = node.running.lock().await;
            let alive = running
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
            if !alive {
                running.take_child();
                *running = self.spawn(node)?;
            }
        }
        self.wait_ready(&[id], Instant::now() + self.startup_timeout)
            .await
    }

    /// Stops every node and removes the temporary directory unless data is kept. Dropping a `LocalKafka` does the
    /// same, blocking the thread.
    ///
    /// When the data is kept, the nodes get SIGTERM all at once and SIGKILL after the grace period. When it is
    /// about to be deleted they get SIGKILL at once: a clean shutdown would only cost time.
    pub async fn stop(mut self) -> Result<(), TestingError> {
        // Cancelled midway, `self` is dropped and `Drop` finishes the job.
        let grace = self.final_grace();
        process::terminate(&mut self.disarm_all(), grace).await;
        self.forget_children();
        self.remove_temp()
    }

    /// Forgets the processes without stopping them; they keep running after this process exits.
    pub(crate) fn into_detached(mut self) -> Vec<NodeInfo> {
        for node in &mut self.nodes {
            let running = node.running.get_mut();
            running.take_child(); // dropping a std Child neither kills nor waits
        }
        self.nodes()
    }

    fn remove_temp(&mut self) -> Result<(), TestingError> {
        match self.temp.take() {
            Some(temp) if self.remove_data => {
                let path = temp.path().to_path_buf();
                temp.close()
                    .map_err(|e| TestingError::io(format!("removing {}", path.display()), e))
            }
            Some(temp) => {
                let _ = temp.keep();
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn node(&self, id: i32) -> Result<&Node, TestingError> {
        self.nodes
            .iter()
            .find(|n| n.spec.id == id)
            .ok_or(TestingError::UnknownNode {
                node: id,
                count: self.nodes.len(),
            })
    }

    fn write_files(&self, settings: &BrokerSettings) -> Result<(), TestingError> {
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text)
                .map_err(|e| TestingError::io(format!("writing {}", path.display()), e))
        };
        write(&self.log4j2, config::LOG4J2_XML)?;
        let specs: Vec<NodeSpec> = self.nodes.iter().map(|n| n.spec.clone()).collect();
        for spec in &specs {
            let data = spec.data_dir();
            std::fs::create_dir_all(&data)
                .map_err(|e| TestingError::io(format!("creating {}", data.display()), e))?;
            write(
                &spec.config_file(),
                &config::server_properties(spec, &specs, settings),
            )?;
        }
        Ok(())
    }

    /// Formats every node's storage with one new cluster id (`kafka-storage format`, static quorum), in parallel.
    async fn format(&self, deadline: Instant) -> Result<(), TestingError> {
        let cluster_id = config::random_cluster_id();
        let mut tasks = Vec::new();
        for node in &self.nodes {
            let spec = &node.spec;
            let log = open_log(
                &spec.log_file(),
                &format!("formatting storage, cluster id {cluster_id}"),
            )?;
            let (out, err) = split_log(&log, &spec.log_file())?;
            let mut cmd = tokio::process::Command::new(&self.java);
            cmd.args(config::tool_jvm_args(&self.log4j2))
                .arg("-cp")
                .arg(self.libs.join("*"))
                .args([
                    "kafka.tools.StorageTool",
                    "format",
                    "--cluster-id",
                    &cluster_id,
                    "--config",
                ])
                .arg(spec.config_file())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .kill_on_drop(true);
            let child = cmd
                .spawn()
                .map_err(|e| TestingError::io(format!("running {}", self.java.display()), e))?;
            tasks.push((spec, child));
        }
        for (spec, mut child) in tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            let status = match tokio::time::timeout(left, child.wait()).await {
                Ok(Ok(status)) if status.success() => continue,
                Ok(Ok(status)) => status.to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_string(),
            };
            return Err(TestingError::Format {
                node: spec.id,
                status,
                log_file: spec.log_file(),
                tail: process::log_tail(&spec.log_file(), TAIL_LINES),
            });
        }
        Ok(())
    }

    /// Starts a node's JVM (and its watchdog) and records its pid.
    fn spawn(&self, node: &Node) -> Result<Running, TestingError> {
        let spec = &node.spec;
        let log_file = spec.log_file();
        let log = open_log(
            &log_file,
            &format!("starting node {} on {}", spec.id, spec.address()),
        )?;
        let (out, err) = split_log(&log, &log_file)?;
        let mut cmd = Command::new(&self.java);
        cmd.args(config::jvm_args(&self.log4j2, &spec.dir, &self.jvm_args))
            .arg("-cp")
            .arg(self.libs.join("*"))
            .arg("kafka.Kafka")
            .arg(spec.config_file())
            .current_dir(&spec.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        #[cfg(unix)]
        if self.detached {
            // Its own process group: a Ctrl-C in the terminal that ran the CLI does not reach it.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| TestingError::io(format!("running {}", self.java.display()), e))?;
        let pid = child.id();
        let watchdog = if self.detached {
            None
        } else {
            let remove = self
                .remove_data
                .then_some((spec.dir.as_path(), self.root.as_path()));
            match Watchdog::spawn(pid, self.final_grace(), remove) {
                Ok(dog) => Some(dog),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(TestingError::io("starting the watchdog shell `sh`", e));
                }
            }
        };
        // The pid file is for people and scripts; failing to write it does not stop the node.
        let _ = std::fs::write(spec.pid_file(), format!("{pid}\n"));
        node.pid.store(pid, Ordering::Relaxed);
        tracing::debug!(node = spec.id, pid, log = %log_file.display(), "started Kafka node");
        Ok(Running {
            child: Some(child),
            watchdog,
        })
    }

    /// Waits until each node in `ids` answers ApiVersions and lists every running node in its metadata (so the
    /// quorum has a leader and the brokers are registered and unfenced).
    async fn wait_ready(&self, ids: &[i32], deadline: Instant) -> Result<(), TestingError> {
        let nodes: Vec<&Node> = ids
            .iter()
            .map(|id| self.node(*id))
            .collect::<Result<_, _>>()?;
        let mut answered = vec![false; nodes.len()];
        let mut waiting_for = vec![String::from("not probed yet"); nodes.len()];
        loop {
            for (i, node) in nodes.iter().enumerate() {
                node.check_alive().await?;
                if !answered[i] {
                    match probe::api_versions(&node.spec.address(), PROBE_TIMEOUT).await {
                        Ok(()) => answered[i] = true,
                        Err(e) => waiting_for[i] = format!("ApiVersions: {e}"),
                    }
                }
            }
            if answered.iter().all(|a| *a) {
                let expected = self
                    .nodes
                    .iter()
                    .filter(|n| n.pid.load(Ordering::Relaxed) != 0)
                    .count();
                let mut all_listed = true;
                for (i, node) in nodes.iter().enumerate() {
                    match probe::metadata_broker_count(&node.spec.address(), PROBE_TIMEOUT).await {
                        Ok(count) if count >= expected => waiting_for[i].clear(),
                        Ok(count) => {
                            waiting_for[i] =
                                format!("Metadata lists {count} of {expected} running brokers");
                            all_listed = false;
                        }
                        Err(e) => {
                            waiting_for[i] = format!("Metadata: {e}");
                            all_listed = false;
                        }
                    }
                }
                if all_listed {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                let i = waiting_for.iter().position(|w| !w.is_empty()).unwrap_or(0);
                let spec = &nodes[i].spec;
                return Err(TestingError::StartupTimeout {
                    node: spec.id,
                    waited: self.startup_timeout,
                    waiting_for: std::mem::take(&mut waiting_for[i]),
                    log_file: spec.log_file(),
                    tail: process::log_tail(&spec.log_file(), TAIL_LINES),
                });
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// Stops every JVM, blocking: SIGTERM, then SIGKILL after `grace`.
    fn kill_all_blocking(&mut self, grace: Duration) {
        process::terminate_blocking(&mut self.disarm_all(), grace);
        self.forget_children();
    }

    /// The grace period for stopping the whole cluster: none when its data is about to be deleted, since a clean
    /// shutdown would only slow the test down (three nodes take seconds to shut down together).
    fn final_grace(&self) -> Duration {
        if self.remove_data {
            Duration::ZERO
        } else {
            self.grace
        }
    }

    /// Disarms every watchdog and lends out the JVMs that were started.
    fn disarm_all(&mut self) -> Vec<&mut Child> {
        self.nodes
            .iter_mut()
            .filter_map(|n| {
                let running = n.running.get_mut();
                if let Some(dog) = running.watchdog.take() {
                    dog.disarm();
                }
                running.child.as_mut()
            })
            .collect()
    }

    /// Drops the (reaped) children and marks their nodes stopped.
    /// Only nodes that had a child are touched: after `into_detached` the pid files belong to running brokers.
    fn forget_children(&mut self) {
        for node in &mut self.nodes {
            if node.running.get_mut().child.take().is_some() {
                node.stopped();
            }
        }
    }
}

impl Drop for LocalKafka {
    fn drop(&mut self) {
        // After `into_detached` there are no children left, so this stops nothing.
        self.kill_all_blocking(self.final_grace());
        if let Err(e) = self.remove_temp() {
            tracing::warn!("{e}");
        }
    }
}

impl Node {
    fn info(&self) -> NodeInfo {
        let spec = &self.spec;
        let pid = self.pid.load(Ordering::Relaxed);
        NodeInfo {
            id: spec.id,
            port: spec.port,
            controller_port: spec.controller_port,
            client_port: spec.client.as_ref().map(|c| c.port),
            address: spec.address(),
            dir: spec.dir.clone(),
            data_dir: spec.data_dir(),
            log_file: spec.log_file(),
            config_file: spec.config_file(),
            pid_file: spec.pid_file(),
            pid: (pid != 0).then_some(pid),
        }
    }

    fn stopped(&self) {
        self.pid.store(0, Ordering::Relaxed);
        let _ = std::fs::remove_file(self.spec.pid_file());
    }

    /// An error if the node's JVM has exited (or was never started).
    async fn check_alive(&self) -> Result<(), TestingError> {
        let mut running = self.running.lock().await;
        let status = match running.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => return Ok(()),
            Some(Ok(Some(status))) => status.to_string(),
            Some(Err(e)) => e.to_string(),
            None => "not running".to_string(),
        };
        running.take_child();
        drop(running);
        self.stopped();
        let log_file = self.spec.log_file();
        Err(TestingError::NodeExited {
            node: self.spec.id,
            status,
            tail: process::log_tail(&log_file, TAIL_LINES),
            log_file,
        })
    }
}

/// Opens a node's log for appending and writes a header line, so restarts stay readable in one file.
fn open_log(path: &Path, what: &str) -> Result<File, TestingError> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TestingError::io(format!("opening {}", path.display()), e))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    writeln!(file, "----- kafka-once: {what} (unix time {now}) -----")
        .map_err(|e| TestingError::io(format!("writing {}", path.display()), e))?;
    Ok(file)
}

/// Two handles on the log, for a child's stdout and stderr.
fn split_log(log: &File, path: &Path) -> Result<(File, File), TestingError> {
    let dup = || {
        log.try_clone()
            .map_err(|e| TestingError::io(format!("duplicating {}", path.display()), e))
    };
    Ok((dup()?, dup()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_futures_can_cross_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let builder = LocalKafka::builder();
        send(builder.start());
        send(super::super::cli_start(Path::new("/nonexistent")));
        let dir = tempfile::tempdir().unwrap();
        let kafka = LocalKafka {
            nodes: Vec::new(),
            root: dir.path().to_path_buf(),
            temp: None,
            remove_data: false,
            log4j2: PathBuf::new(),
            java: PathBuf::new(),
            libs: PathBuf::new(),
            jvm_args: Vec::new(),
            grace: Duration::ZERO,
            startup_timeout: Duration::ZERO,
            detached: false,
        };
        send_sync(&kafka);
        send(kafka.stop_node(1));
        send(kafka.start_node(1));
        send(kafka.stop());
    }

    #[test]
    fn builder_rejects_contradictions() {
        assert!(LocalKafka::builder().validate().is_ok());
        let bad = [
            LocalKafka::builder().brokers(0),
            LocalKafka::builder().brokers(MAX_BROKERS + 1),
            LocalKafka::builder().partitions_default(0),
            LocalKafka::builder().internal_topic_partitions(0),
            LocalKafka::builder().startup_timeout(Duration::ZERO),
            LocalKafka::builder().server_property("a b", "1"),
            LocalKafka::builder().server_property("log.dirs", "x\ny=1"),
        ];
        for builder in bad {
            assert!(
                matches!(builder.validate(), Err(TestingError::InvalidConfig { .. })),
                "{builder:?}"
            );
        }
    }

    #[test]
    fn free_ports_are_distinct_and_prefer_the_asked_port() {
        let ports = free_ports(3, None, true).unwrap();
        let mut all: Vec<u16> = ports
            .iter()
            .flat_map(|(a, b, c)| [*a, *b, c.unwrap()])
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 9);
        assert!(free_ports(1, None, false).unwrap()[0].2.is_none());
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(free_ports(1, Some(free), false).unwrap()[0].0, free);
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap().port();
        assert_ne!(free_ports(1, Some(busy), false).unwrap()[0].0, busy);
    }

    #[test]
    fn existing_cluster_is_found_only_when_formatted() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(existing_cluster(dir.path(), 1).unwrap(), None);
        let spec = NodeSpec {
            id: 1,
            port: 19092,
            controller_port: 19093,
            dir: dir.path().join("node-1"),
            client: None,
        };
        let settings = LocalKafka::builder().settings();
        std::fs::create_dir_all(spec.data_dir()).unwrap();
        std::fs::write(
            spec.config_file(),
            config::server_properties(&spec, std::slice::from_ref(&spec), &settings),
        )
        .unwrap();
        assert_eq!(existing_cluster(dir.path(), 1).unwrap(), None);
        std::fs::write(spec.data_dir().join("meta.properties"), "").unwrap();
        assert_eq!(existing_cluster(dir.path(), 1).unwrap(), Some(vec![spec]));
        assert!(matches!(
            existing_cluster(dir.path(), 2),
            Err(TestingError::Io { .. })
        ));
    }

    /// Starts a real single-node broker (fetching the jars on first use), restarts it, and stops it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_node_starts_answers_restarts_and_stops() {
        let kafka = LocalKafka::builder()
            .start()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let node = kafka.nodes().remove(0);
        assert_eq!(kafka.bootstrap(), node.address);
        let pid = node.pid.expect("running");
        assert!(process::pid_alive(pid));
        assert_eq!(
            std::fs::read_to_string(&node.pid_file).unwrap().trim(),
            pid.to_string()
        );
        probe::api_versions(&node.address, PROBE_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(
            probe::metadata_broker_count(&node.address, PROBE_TIMEOUT).await,
            Ok(1)
        );

        kafka.stop_node(1).await.unwrap();
        assert!(!process::pid_alive(pid));
        assert_eq!(kafka.nodes()[0].pid, None);
        assert!(
            probe::api_versions(&node.address, PROBE_TIMEOUT)
                .await
                .is_err()
        );

        // Another process holding the port: the node exits, and the error says why (the bind failure is logged
        // long before the tail of shutdown lines, and it is what the port-clash retry looks for).
        let squatter = TcpListener::bind(("127.0.0.1", node.port)).unwrap();
        let clash = kafka.start_node(1).await.unwrap_err();
        assert!(clash.is_port_clash(), "{clash}");
        drop(squatter);

        kafka.start_node(1).await.unwrap();
        let restarted = kafka.nodes().remove(0);
        assert_eq!(restarted.port, node.port);
        probe::api_versions(&restarted.address, PROBE_TIMEOUT)
            .await
            .unwrap();

        let root = kafka.root_dir().to_path_buf();
        kafka.stop().await.unwrap();
        assert!(!process::pid_alive(restarted.pid.unwrap()));
        assert!(!root.exists());
    }
}
