//! A real local Apache Kafka for tests and the CLI.
//!
//! [`LocalKafka`] runs Apache Kafka 4.1.1 in KRaft mode from the official jars on Maven Central, under the machine's
//! Java 17 or newer. Each node is a combined broker and controller (`process.roles=broker,controller`) on its own free
//! ports of 127.0.0.1, and every node is a voter of the controller quorum.
//!
//! # What it needs
//! `java` (17+; `$JAVA_HOME/bin/java` wins over `PATH`) and, the first time only, `mvn` on `PATH`
//! (`apt-get install openjdk-17-jre-headless maven`). Missing tools give [`TestingError::MissingTool`]; nothing is ever
//! skipped silently. To use another broker instead (a Redpanda container, a cluster), set `KAFKA_BOOTSTRAP=host:port`:
//! [`shared_bootstrap`] then returns it without starting anything.
//!
//! # The jar cache
//! The Maven project `testing/kafka-pom.xml` is compiled into the crate, so an installed `kafka-once` works anywhere.
//! On first use it is written to the cache and `mvn dependency:copy-dependencies` copies the broker's runtime jars
//! (about 45 jars, 43 MB) into [`kafka_libs_dir`]: `$KAFKA_ONCE_CACHE`, else `$XDG_CACHE_HOME/kafka-once`, else
//! `~/.cache/kafka-once`, then `kafka-4.1.1/libs`. The copy goes to a private directory that is renamed into place
//! only when complete (with a marker file inside), under a lock file, so an interrupted fetch is redone and
//! concurrent processes never see half a cache.
//!
//! # Processes and cleanup
//! Every node is a `java … kafka.Kafka server.properties` child process whose stdout and stderr go to
//! [`NodeInfo::log_file`] (log4j2 writes there at INFO too). [`LocalKafka::stop_node`] sends SIGTERM, waits a grace
//! period (10 s by default), then sends SIGKILL. Stopping the whole cluster does the same when its data is kept, and
//! sends SIGKILL at once when the data is about to be deleted anyway. [`LocalKafka`]'s `Drop` stops the cluster
//! synchronously, so a panicking test still stops its brokers.
//!
//! For a test process that dies without unwinding (SIGKILL, abort, or a `static` that is never dropped, as in
//! [`shared_bootstrap`]), each JVM has a watchdog: a small `sh` process that blocks reading a pipe whose only writer
//! is the test process. The kernel closes that pipe when the test process ends, however it ends; the watchdog then
//! stops the JVM the same way and removes its data unless asked to keep it. This needs no `libc`, no
//! `PR_SET_PDEATHSIG` and no polling of the parent's pid (which could be reused). The watchdog is disarmed (killed)
//! before the crate stops a node itself. Each node's pid is also written to [`NodeInfo::pid_file`].
//!
//! Brokers for the `kafka-once broker` command ([`cli_start`], [`cli_status`], [`cli_stop`], [`cli_purge`]) are detached instead:
//! their own process group, no watchdog, data under a state directory, so they outlive the command.
//!
//! This module uses only std, tokio, tempfile, tracing, thiserror and rand; it does not depend on the client layers.

mod cache;
mod cli;
mod config;
mod local;
mod lock;
mod probe;
mod process;
mod shared;

use std::path::PathBuf;
use std::time::Duration;

pub use cache::{KAFKA_POM, cache_dir, ensure_kafka_jars, kafka_libs_dir};
pub use cli::{BrokerStatus, cli_purge, cli_start, cli_status, cli_stop, default_state_dir};
pub use local::{LocalKafka, LocalKafkaBuilder, NodeInfo};
pub use shared::{shared_bootstrap, shared_local};

/// The Apache Kafka version that [`LocalKafka`] runs (`org.apache.kafka:kafka_2.13`, pinned in `testing/kafka-pom.xml`).
pub const KAFKA_VERSION: &str = "4.1.1";

/// Environment variable naming an existing broker (`host:port[,host:port…]`) to use instead of starting one.
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP";

/// What to tell a person who lacks the tools.
const INSTALL_HINT: &str = "install Java 17 or newer and Maven (for example `apt-get install openjdk-17-jre-headless \
                            maven`), or set KAFKA_BOOTSTRAP=host:port to use an existing broker";

/// Errors of the `testing` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestingError {
    /// `java` or `mvn` is not installed.
    #[error("`{tool}` was not found ({where_looked}): {INSTALL_HINT}")]
    MissingTool {
        /// The program that is missing: `java` or `mvn`.
        tool: &'static str,
        /// Where it was looked for.
        where_looked: String,
    },
    /// The Java found is older than 17, which Kafka 4.x requires.
    #[error("{java} is Java {found}, Kafka {KAFKA_VERSION} needs Java 17 or newer: {INSTALL_HINT}")]
    JavaTooOld {
        /// The `java` binary that was run.
        java: PathBuf,
        /// The version it reported.
        found: String,
    },
    /// Maven could not fetch the broker's jars.
    #[error("fetching the Kafka {KAFKA_VERSION} jars with Maven into {dir} failed: {message}")]
    Fetch {
        /// The cache directory.
        dir: PathBuf,
        /// What went wrong, with the end of Maven's output.
        message: String,
    },
    /// `kafka-storage format` failed for a node.
    #[error("formatting the storage of Kafka node {node} failed ({status}); last lines of {}:\n{tail}", log_file.display())]
    Format {
        /// The node id.
        node: i32,
        /// How the tool ended.
        status: String,
        /// The node's log file, which holds the tool's output.
        log_file: PathBuf,
        /// The last lines of that file.
        tail: String,
    },
    /// A node's JVM exited before it was ready.
    #[error("Kafka node {node} exited during startup ({status}); last lines of {}:\n{tail}", log_file.display())]
    NodeExited {
        /// The node id.
        node: i32,
        /// The exit status.
        status: String,
        /// The node's log file.
        log_file: PathBuf,
        /// The last lines of that file.
        tail: String,
    },
    /// A node did not become ready before the deadline.
    #[error("Kafka node {node} was not ready after {waited:?} ({waiting_for}); last lines of {}:\n{tail}", log_file.display())]
    StartupTimeout {
        /// The node id.
        node: i32,
        /// How long it was given.
        waited: Duration,
        /// What was still missing, for example "ApiVersions: connection refused".
        waiting_for: String,
        /// The node's log file.
        log_file: PathBuf,
        /// The last lines of that file.
        tail: String,
    },
    /// No node has this id.
    #[error("no Kafka node with id {node} (ids are 1..={count})")]
    UnknownNode {
        /// The id asked for.
        node: i32,
        /// How many nodes the cluster has.
        count: usize,
    },
    /// A builder setting or an environment variable is invalid.
    #[error("invalid setting: {message}")]
    InvalidConfig {
        /// Which setting, and why.
        message: String,
    },
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path or program.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The process-wide broker of [`shared_bootstrap`] failed to start earlier; this repeats why.
    #[error("the shared local Kafka failed to start: {message}")]
    Shared {
        /// The original error's message.
        message: String,
    },
}

impl TestingError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TestingError::Io {
            context: context.into(),
            source,
        }
    }

    /// True when a node could not bind one of its ports (another process took it after it was chosen).
    pub(crate) fn is_port_clash(&self) -> bool {
        matches!(self, TestingError::NodeExited { tail, .. } if tail.contains("Address already in use"))
    }
}

/// Reads an environment variable, treating empty as unset.
pub(crate) fn env_var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// A stand-in for the process environment in tests of the path-selection functions, which take
/// their variable lookup as a closure.
#[cfg(test)]
pub(crate) fn fake_env<'a>(
    vars: &'a [(&'a str, &'a str)],
) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| std::ffi::OsString::from(v))
    }
}
