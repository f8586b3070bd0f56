//! The files a node runs from: `server.properties`, the log4j2 configuration, the JVM arguments, the cluster id.

use std::path::{Path, PathBuf};

/// One node's identity and places. All paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeSpec {
    pub(crate) id: i32,
    pub(crate) port: u16,
    pub(crate) controller_port: u16,
    pub(crate) dir: PathBuf,
    /// A second client listener (`CLIENT`), advertised at another address (a proxy in front of it).
    pub(crate) client: Option<ClientListener>,
}

/// The `CLIENT` listener of a node built with
/// [`advertise_clients_at`](super::LocalKafkaBuilder::advertise_clients_at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientListener {
    /// Where the node binds it on 127.0.0.1.
    pub(crate) port: u16,
    /// `host:port` the node advertises for it in metadata.
    pub(crate) advertised: String,
}

impl NodeSpec {
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(crate) fn config_file(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    pub(crate) fn log_file(&self) -> PathBuf {
        self.dir.join(format!("node-{}.log", self.id))
    }

    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join("kafka.pid")
    }

    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Broker settings the builder exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerSettings {
    pub(crate) partitions_default: u32,
    pub(crate) auto_create_topics: bool,
    pub(crate) internal_topic_partitions: u32,
    /// Applied last: replace a default with the same key, or add a new line.
    pub(crate) overrides: Vec<(String, String)>,
}

/// The directory name of node `id` under the cluster root.
pub(crate) fn node_dir_name(id: i32) -> String {
    format!("node-{id}")
}

/// `server.properties` for `node` in a cluster of `all` (combined broker+controller nodes, all voters).
pub(crate) fn server_properties(
    node: &NodeSpec,
    all: &[NodeSpec],
    settings: &BrokerSettings,
) -> String {
    let n = all.len();
    let client = node.client.as_ref();
    let replication = n.min(3);
    // With fewer than three replicas a min ISR of 2 would stop transactions whenever one node is down.
    let min_isr = if replication >= 3 { 2 } else { 1 };
    let voters: Vec<String> = all
        .iter()
        .map(|v| format!("{}@127.0.0.1:{}", v.id, v.controller_port))
        .collect();
    let mut props: Vec<(String, String)> = [
        ("process.roles", "broker,controller".to_string()),
        ("node.id", node.id.to_string()),
        ("controller.quorum.voters", voters.join(",")),
        (
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}{}",
                node.port,
                node.controller_port,
                client.map_or(String::new(), |c| format!(",CLIENT://127.0.0.1:{}", c.port))
            ),
        ),
        (
            "advertised.listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{}{}",
                node.port,
                client.map_or(String::new(), |c| format!(",CLIENT://{}", c.advertised))
            ),
        ),
        ("inter.broker.listener.name", "PLAINTEXT".into()),
        ("controller.listener.names", "CONTROLLER".into()),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,CLIENT:PLAINTEXT".into(),
        ),
        ("log.dirs", node.data_dir().display().to_string()),
        ("num.partitions", settings.partitions_default.to_string()),
        ("default.replication.factor", replication.to_string()),
        ("min.insync.replicas", "1".into()),
        (
            "auto.create.topics.enable",
            settings.auto_create_topics.to_string(),
        ),
        ("offsets.topic.replication.factor", replication.to_string()),
        (
            "offsets.topic.num.partitions",
            settings.internal_topic_partitions.to_string(),
        ),
        (
            "transaction.state.log.replication.factor",
            replication.to_string(),
        ),
        ("transaction.state.log.min.isr", min_isr.to_string()),
        (
            "transaction.state.log.num.partitions",
            settings.internal_topic_partitions.to_string(),
        ),
        (
            "share.coordinator.state.topic.replication.factor",
            replication.to_string(),
        ),
        ("share.coordinator.state.topic.min.isr", min_isr.to_string()),
        (
            "share.coordinator.state.topic.num.partitions",
            settings.internal_topic_partitions.to_string(),
        ),
        // A broker that restarts after a crash cannot register again until its old session expires (the controller
        // answers DUPLICATE_BROKER_REGISTRATION); 9 s by default. Shorter also fences a killed broker sooner.
        ("broker.heartbeat.interval.ms", "1000".into()),
        ("broker.session.timeout.ms", "5000".into()),
        // Tests join groups one consumer at a time; the default 3 s delay only slows them.
        ("group.initial.rebalance.delay.ms", "0".into()),
        // The cleaner's 128 MiB default is allocated on the heap at startup; compacted internal topics are tiny here.
        ("log.cleaner.dedupe.buffer.size", (32u32 << 20).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (key, value) in &settings.overrides {
        match props.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => props.push((key.clone(), value.clone())),
        }
    }
    let mut out = format!(
        "# Written by kafka-once's testing module for node {} of {n}.\n",
        node.id
    );
    for (key, value) in props {
        out.push_str(&format!("{key}={}\n", escape_value(&value)));
    }
    out
}

/// Java properties treat `\` as an escape; nothing else we write needs escaping (newlines are rejected earlier).
fn escape_value(value: &str) -> String {
    value.replace('\\', "\\\\")
}

/// Reads `key=value` lines (the subset [`server_properties`] writes), for restarting a broker from its files.
pub(crate) fn parse_properties(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().replace("\\\\", "\\")))
        .collect()
}

/// The port of listener `name` in a `listeners` value such as `PLAINTEXT://127.0.0.1:9092,CONTROLLER://…`.
pub(crate) fn listener_port(listeners: &str, name: &str) -> Option<u16> {
    listeners
        .split(',')
        .map(str::trim)
        .find_map(|l| l.strip_prefix(name)?.strip_prefix("://"))
        .and_then(|hostport| hostport.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
}

/// Rebuilds a node's spec from the `server.properties` in `dir`.
pub(crate) fn spec_from_properties(dir: &Path, text: &str) -> Option<NodeSpec> {
    let props = parse_properties(text);
    let get = |key: &str| {
        props
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let listeners = get("listeners")?;
    let client = match listener_port(listeners, "CLIENT") {
        None => None,
        Some(port) => Some(ClientListener {
            port,
            advertised: get("advertised.listeners")?
                .split(',')
                .find_map(|l| l.trim().strip_prefix("CLIENT://"))?
                .to_string(),
        }),
    };
    Some(NodeSpec {
        id: get("node.id")?.parse().ok()?,
        port: listener_port(listeners, "PLAINTEXT")?,
        controller_port: listener_port(listeners, "CONTROLLER")?,
        dir: dir.to_path_buf(),
        client,
    })
}

/// log4j2 configuration: everything at INFO to stdout, which the node's log file receives. log4j2's own shutdown hook
/// is off so that Kafka's shutdown is logged to the end.
pub(crate) const LOG4J2_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by kafka-once's testing module. stdout is the node's log file. -->
<Configuration status="warn" shutdownHook="disable">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="stdout"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="org.apache.kafka.common.config.AbstractConfig" level="warn"/>
  </Loggers>
</Configuration>
"#;

/// JVM options before the class path: a small heap, G1, headless, our log4j2 file. `extra` comes last, so a later
/// `-Xmx` wins.
pub(crate) fn jvm_args(log4j2: &Path, node_dir: &Path, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.push(format!("-Dlog4j2.configurationFile={}", log4j2.display()));
    args.push(format!("-Dkafka.logs.dir={}", node_dir.display()));
    args.extend(extra.iter().cloned());
    args
}

/// JVM options for the short-lived storage tool: quick start matters more than peak speed.
pub(crate) fn tool_jvm_args(log4j2: &Path) -> Vec<String> {
    vec![
        "-Xmx256m".into(),
        "-XX:TieredStopAtLevel=1".into(),
        "-Djava.awt.headless=true".into(),
        format!("-Dlog4j2.configurationFile={}", log4j2.display()),
    ]
}

/// A new cluster id: 16 random bytes in unpadded base64url (22 characters), as Kafka's `Uuid.randomUuid` makes them.
pub(crate) fn random_cluster_id() -> String {
    loop {
        let id = base64url(&rand::random::<[u8; 16]>());
        // Kafka avoids ids starting with '-' because command lines would read them as options.
        if !id.starts_with('-') {
            return id;
        }
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: i32) -> Vec<NodeSpec> {
        (1..=n)
            .map(|id| NodeSpec {
                id,
                port: 9000 + id as u16,
                controller_port: 9100 + id as u16,
                dir: PathBuf::from(format!("/tmp/k/node-{id}")),
                client: None,
            })
            .collect()
    }

    fn settings() -> BrokerSettings {
        BrokerSettings {
            partitions_default: 1,
            auto_create_topics: false,
            internal_topic_partitions: 4,
            overrides: vec![],
        }
    }

    fn get(props: &str, key: &str) -> Option<String> {
        parse_properties(props)
            .into_iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    #[test]
    fn single_node_properties() {
        let all = nodes(1);
        let text = server_properties(&all[0], &all, &settings());
        assert_eq!(
            get(&text, "process.roles").as_deref(),
            Some("broker,controller")
        );
        assert_eq!(get(&text, "node.id").as_deref(), Some("1"));
        assert_eq!(
            get(&text, "controller.quorum.voters").as_deref(),
            Some("1@127.0.0.1:9101")
        );
        assert_eq!(
            get(&text, "listeners").as_deref(),
            Some("PLAINTEXT://127.0.0.1:9001,CONTROLLER://127.0.0.1:9101")
        );
        assert_eq!(
            get(&text, "advertised.listeners").as_deref(),
            Some("PLAINTEXT://127.0.0.1:9001")
        );
        assert_eq!(
            get(&text, "log.dirs").as_deref(),
            Some("/tmp/k/node-1/data")
        );
        assert_eq!(
            get(&text, "offsets.topic.replication.factor").as_deref(),
            Some("1")
        );
        assert_eq!(
            get(&text, "transaction.state.log.replication.factor").as_deref(),
            Some("1")
        );
        assert_eq!(
            get(&text, "transaction.state.log.min.isr").as_deref(),
            Some("1")
        );
        assert_eq!(
            get(&text, "offsets.topic.num.partitions").as_deref(),
            Some("4")
        );
        assert_eq!(
            get(&text, "group.initial.rebalance.delay.ms").as_deref(),
            Some("0")
        );
        assert_eq!(
            get(&text, "auto.create.topics.enable").as_deref(),
            Some("false")
        );
        assert_eq!(get(&text, "num.partitions").as_deref(), Some("1"));
    }

    #[test]
    fn three_node_properties_share_the_quorum() {
        let all = nodes(3);
        let texts: Vec<String> = all
            .iter()
            .map(|n| server_properties(n, &all, &settings()))
            .collect();
        let voters = "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103";
        for (text, node) in texts.iter().zip(&all) {
            assert_eq!(
                get(text, "controller.quorum.voters").as_deref(),
                Some(voters)
            );
            assert_eq!(get(text, "node.id"), Some(node.id.to_string()));
            assert_eq!(
                get(text, "offsets.topic.replication.factor").as_deref(),
                Some("3")
            );
            assert_eq!(
                get(text, "transaction.state.log.min.isr").as_deref(),
                Some("2")
            );
        }
        let five = nodes(5);
        let text = server_properties(&five[4], &five, &settings());
        assert_eq!(
            get(&text, "default.replication.factor").as_deref(),
            Some("3")
        );
    }

    #[test]
    fn overrides_replace_defaults_and_add_keys() {
        let all = nodes(1);
        let mut s = settings();
        s.auto_create_topics = true;
        s.partitions_default = 6;
        s.overrides = vec![
            ("num.partitions".into(), "8".into()),
            ("log.retention.ms".into(), "1000".into()),
        ];
        let text = server_properties(&all[0], &all, &s);
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("num.partitions="))
                .count(),
            1
        );
        assert_eq!(get(&text, "num.partitions").as_deref(), Some("8"));
        assert_eq!(get(&text, "log.retention.ms").as_deref(), Some("1000"));
        assert_eq!(
            get(&text, "auto.create.topics.enable").as_deref(),
            Some("true")
        );
    }

    #[test]
    fn a_client_listener_is_advertised_elsewhere_and_read_back() {
        let mut all = nodes(2);
        all[1].client = Some(ClientListener {
            port: 9202,
            advertised: "127.0.0.1:7002".into(),
        });
        let text = server_properties(&all[1], &all, &settings());
        assert_eq!(
            get(&text, "listeners").as_deref(),
            Some("PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102,CLIENT://127.0.0.1:9202")
        );
        assert_eq!(
            get(&text, "advertised.listeners").as_deref(),
            Some("PLAINTEXT://127.0.0.1:9002,CLIENT://127.0.0.1:7002")
        );
        assert_eq!(
            get(&text, "inter.broker.listener.name").as_deref(),
            Some("PLAINTEXT")
        );
        assert_eq!(
            spec_from_properties(&all[1].dir, &text),
            Some(all[1].clone())
        );
        let plain = server_properties(&all[0], &all, &settings());
        assert!(!get(&plain, "listeners").unwrap().contains("CLIENT"));
        assert_eq!(
            spec_from_properties(&all[0].dir, &plain),
            Some(all[0].clone())
        );
    }

    #[test]
    fn backslashes_are_escaped_and_read_back() {
        let all = nodes(1);
        let mut s = settings();
        s.overrides = vec![("x.path".into(), r"a\b".into())];
        let text = server_properties(&all[0], &all, &s);
        assert!(text.contains(r"x.path=a\\b"));
        assert_eq!(get(&text, "x.path").as_deref(), Some(r"a\b"));
    }

    #[test]
    fn spec_round_trips_through_properties() {
        let all = nodes(3);
        let text = server_properties(&all[1], &all, &settings());
        assert_eq!(
            spec_from_properties(&all[1].dir, &text),
            Some(all[1].clone())
        );
        assert_eq!(spec_from_properties(&all[1].dir, "node.id=2\n"), None);
        assert_eq!(
            listener_port("PLAINTEXT://[::1]:9092", "PLAINTEXT"),
            Some(9092)
        );
        assert_eq!(listener_port("PLAINTEXT://h:1", "CONTROLLER"), None);
    }

    #[test]
    fn cluster_ids_are_22_base64url_chars() {
        for _ in 0..100 {
            let id = random_cluster_id();
            assert_eq!(id.len(), 22);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert!(!id.starts_with('-'));
        }
    }

    #[test]
    fn base64url_known_vectors() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn jvm_args_put_extra_last() {
        let args = jvm_args(
            Path::new("/r/log4j2.xml"),
            Path::new("/r/node-1"),
            &["-Xmx2g".into()],
        );
        assert_eq!(args.last().map(String::as_str), Some("-Xmx2g"));
        assert!(args.contains(&"-Dlog4j2.configurationFile=/r/log4j2.xml".to_string()));
        assert!(args.contains(&"-Xms256m".to_string()));
    }
}
