//! A detached broker for the `kafka-once broker start|status|stop` command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::config::parse_properties;
use super::lock::FileLock;
use super::process::{pid_alive, pid_runs_kafka, signal};
use super::{KAFKA_VERSION, LocalKafka, TestingError, env_var, probe};

/// Environment variable overriding [`default_state_dir`].
const HOME_ENV: &str = "KAFKA_ONCE_HOME";
/// What `cli_start` records about the running broker.
const STATE_FILE: &str = "broker.state";
/// The cluster's directory under the state directory.
const CLUSTER_DIR: &str = "cluster";
/// Kafka's usual port, taken when free so `localhost:9092` examples work as written.
const CLI_PORT: u16 = 9092;
/// A broker with real data deserves longer than a test's to shut down cleanly.
const CLI_STOP_GRACE: Duration = Duration::from_secs(30);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// A detached broker, as recorded by [`cli_start`] and checked by [`cli_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStatus {
    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub bootstrap: String,
    /// The JVM's pid.
    pub pid: u32,
    /// The broker's log file.
    pub log_file: PathBuf,
    /// The broker's data directory.
    pub data_dir: PathBuf,
    /// Whether it answered an ApiVersions request just now (false while it is still starting).
    pub answering: bool,
}

/// Where the CLI keeps its broker: `$KAFKA_ONCE_HOME`, else `$XDG_STATE_HOME/kafka-once/broker`, else
/// `~/.local/state/kafka-once/broker`.
pub fn default_state_dir() -> Result<PathBuf, TestingError> {
    state_dir_from(env_var).ok_or_else(|| TestingError::InvalidConfig {
        message: format!("cannot choose a state directory for the broker: set {HOME_ENV} or HOME"),
    })
}

fn state_dir_from(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    if let Some(dir) = env(HOME_ENV) {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Some(xdg.join("kafka-once").join("broker"));
    }
    env("HOME").map(|home| PathBuf::from(home).join(".local/state/kafka-once/broker"))
}

/// Starts a single-node broker that outlives this process, or finds the one already running for `state_dir`, and
/// returns its bootstrap address (`127.0.0.1:9092`). [`cli_status`] tells its pid and log file.
///
/// Idempotent: if the state file names a live broker it is returned (after waiting for it to answer if it is still
/// starting). Otherwise a broker starts in its own process group, without a watchdog, with its data under
/// `state_dir/cluster`: on port 9092 when that is free, else a random free port. Data from an earlier start is
/// reused, with the same port. Concurrent calls for one `state_dir` start one broker.
///
/// Cancel safety: a cancelled start may leave a broker starting without a state file; the next `cli_start` for the
/// same directory then fails to bind its port and says so.
pub async fn cli_start(state_dir: &Path) -> Result<String, TestingError> {
    Ok(start_with_port(state_dir, Some(CLI_PORT)).await?.bootstrap)
}

async fn start_with_port(
    state_dir: &Path,
    port: Option<u16>,
) -> Result<BrokerStatus, TestingError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| TestingError::io(format!("creating {}", state_dir.display()), e))?;
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let _lock = FileLock::acquire(&state_dir.join("start.lock"), deadline, || false).await?;
    if let Some(status) = cli_status(state_dir).await {
        return wait_answering(status, deadline).await;
    }
    let mut builder = LocalKafka::builder()
        .data_dir(state_dir.join(CLUSTER_DIR))
        .stop_grace(CLI_STOP_GRACE)
        .startup_timeout(STARTUP_TIMEOUT)
        .detached();
    if let Some(port) = port {
        builder = builder.preferred_port(port);
    }
    let kafka = builder.start().await?;
    let node = kafka.into_detached().remove(0);
    let pid = node.pid.expect("a started node has a pid");
    let state = [
        ("bootstrap", node.address.clone()),
        ("pid", pid.to_string()),
        ("log_file", node.log_file.display().to_string()),
        ("config_file", node.config_file.display().to_string()),
        ("data_dir", node.data_dir.display().to_string()),
        ("kafka_version", KAFKA_VERSION.to_string()),
    ];
    let text: String = state.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let path = state_dir.join(STATE_FILE);
    std::fs::write(&path, text)
        .map_err(|e| TestingError::io(format!("writing {}", path.display()), e))?;
    Ok(BrokerStatus {
        bootstrap: node.address,
        pid,
        log_file: node.log_file,
        data_dir: node.data_dir,
        answering: true,
    })
}

async fn wait_answering(
    mut status: BrokerStatus,
    deadline: Instant,
) -> Result<BrokerStatus, TestingError> {
    loop {
        match probe::api_versions(&status.bootstrap, Duration::from_secs(2)).await {
            Ok(()) => {
                status.answering = true;
                return Ok(status);
            }
            Err(e) if Instant::now() >= deadline || !pid_alive(status.pid) => {
                return Err(TestingError::StartupTimeout {
                    node: 1,
                    waited: STARTUP_TIMEOUT,
                    waiting_for: format!(
                        "ApiVersions from the running broker, pid {}: {e}",
                        status.pid
                    ),
                    tail: super::process::log_tail(&status.log_file, 30),
                    log_file: status.log_file,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The broker recorded in `state_dir`, if its process still runs; `answering` tells whether it serves requests.
/// `None` when nothing was started, or the recorded process is gone.
///
/// Cancel safe.
pub async fn cli_status(state_dir: &Path) -> Option<BrokerStatus> {
    let state = read_state(state_dir)?;
    if !pid_runs_kafka(state.pid, &state.config_file) {
        return None;
    }
    let answering = probe::api_versions(&state.bootstrap, Duration::from_secs(2))
        .await
        .is_ok();
    Some(BrokerStatus {
        bootstrap: state.bootstrap,
        pid: state.pid,
        log_file: state.log_file,
        data_dir: state.data_dir,
        answering,
    })
}

/// Stops the broker recorded in `state_dir` (SIGTERM, SIGKILL after 30 s) and forgets it; its data stays for the
/// next [`cli_start`]. Returns whether a broker was running.
///
/// Cancel safety: a cancelled stop may leave the broker shutting down with its state file in place; calling again
/// finishes the job.
pub async fn cli_stop(state_dir: &Path) -> Result<bool, TestingError> {
    stop(state_dir, false).await
}

/// Like [`cli_stop`], then deletes the broker's topics and logs, so the next start is fresh.
///
/// Cancel safety: as [`cli_stop`].
pub async fn cli_purge(state_dir: &Path) -> Result<bool, TestingError> {
    stop(state_dir, true).await
}

async fn stop(state_dir: &Path, remove_data: bool) -> Result<bool, TestingError> {
    let state = read_state(state_dir);
    let mut was_running = false;
    if let Some(state) = &state
        && pid_runs_kafka(state.pid, &state.config_file)
    {
        was_running = true;
        let _ = signal(state.pid, "TERM");
        let deadline = Instant::now() + CLI_STOP_GRACE;
        while pid_alive(state.pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if pid_alive(state.pid) {
            tracing::warn!(
                pid = state.pid,
                "the broker did not stop within {CLI_STOP_GRACE:?}; sending SIGKILL"
            );
            let _ = signal(state.pid, "KILL");
            while pid_alive(state.pid) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    if let Some(state) = &state
        && let Some(node_dir) = state.config_file.parent()
    {
        let _ = std::fs::remove_file(node_dir.join("kafka.pid"));
    }
    let state_file = state_dir.join(STATE_FILE);
    if state_file.exists() {
        std::fs::remove_file(&state_file)
            .map_err(|e| TestingError::io(format!("removing {}", state_file.display()), e))?;
    }
    let cluster = state_dir.join(CLUSTER_DIR);
    if remove_data && cluster.exists() {
        std::fs::remove_dir_all(&cluster)
            .map_err(|e| TestingError::io(format!("removing {}", cluster.display()), e))?;
    }
    Ok(was_running)
}

#[derive(Debug)]
struct State {
    bootstrap: String,
    pid: u32,
    log_file: PathBuf,
    config_file: PathBuf,
    data_dir: PathBuf,
}

fn read_state(state_dir: &Path) -> Option<State> {
    let text = std::fs::read_to_string(state_dir.join(STATE_FILE)).ok()?;
    let props = parse_properties(&text);
    let get = |key: &str| props.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    Some(State {
        bootstrap: get("bootstrap")?,
        pid: get("pid")?.parse().ok()?,
        log_file: get("log_file")?.into(),
        config_file: get("config_file")?.into(),
        data_dir: get("data_dir")?.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_env as env;

    #[test]
    fn state_dir_selection() {
        let all = [
            ("KAFKA_ONCE_HOME", "/k"),
            ("XDG_STATE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(state_dir_from(env(&all)), Some(PathBuf::from("/k")));
        let xdg = [("XDG_STATE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(
            state_dir_from(env(&xdg)),
            Some(PathBuf::from("/x/kafka-once/broker"))
        );
        let home = [("XDG_STATE_HOME", "rel"), ("HOME", "/h")];
        assert_eq!(
            state_dir_from(env(&home)),
            Some(PathBuf::from("/h/.local/state/kafka-once/broker"))
        );
        assert_eq!(state_dir_from(env(&[])), None);
    }

    #[tokio::test]
    async fn status_of_nothing_and_of_a_dead_pid_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cli_status(dir.path()).await, None);
        let state =
            "bootstrap=127.0.0.1:1\npid=99999999\nlog_file=/x\nconfig_file=/y\ndata_dir=/z\n";
        std::fs::write(dir.path().join(STATE_FILE), state).unwrap();
        assert_eq!(cli_status(dir.path()).await, None);
        assert!(!cli_stop(dir.path()).await.unwrap());
        assert!(!dir.path().join(STATE_FILE).exists());
    }

    /// Starts a real detached broker, checks idempotence, stops it, restarts it on its old data, and purges it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn detached_broker_start_status_stop() {
        let dir = tempfile::tempdir().unwrap();
        let first = start_with_port(dir.path(), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(first.answering);
        let status = cli_status(dir.path()).await.expect("running");
        assert_eq!(status, first);
        let again = cli_start(dir.path()).await.unwrap();
        assert_eq!(again, first.bootstrap);
        assert_eq!(cli_status(dir.path()).await.map(|s| s.pid), Some(first.pid));

        let pid_file = first.log_file.with_file_name("kafka.pid");
        assert_eq!(
            std::fs::read_to_string(&pid_file).unwrap().trim(),
            first.pid.to_string()
        );
        assert!(cli_stop(dir.path()).await.unwrap());
        assert!(!pid_alive(first.pid));
        assert!(!pid_file.exists());
        assert_eq!(cli_status(dir.path()).await, None);

        let restarted = start_with_port(dir.path(), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            restarted.bootstrap, first.bootstrap,
            "an old cluster keeps its port"
        );
        assert_ne!(restarted.pid, first.pid);
        assert!(cli_purge(dir.path()).await.unwrap());
        assert!(!pid_alive(restarted.pid));
        assert!(!dir.path().join(CLUSTER_DIR).exists());
    }
}
