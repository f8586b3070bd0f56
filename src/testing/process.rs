//! Finding programs, signalling and reaping processes, and the watchdog that stops a JVM when its owner dies.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::{TestingError, env_var};

/// How often exits are polled while stopping.
const POLL: Duration = Duration::from_millis(50);

/// Finds an executable on `PATH`.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = env_var("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// The `java` to run: `$JAVA_HOME/bin/java` if it exists, else `java` on `PATH`.
pub(crate) fn java_binary() -> Result<PathBuf, TestingError> {
    if let Some(home) = env_var("JAVA_HOME") {
        let java = PathBuf::from(home).join("bin").join("java");
        if is_executable(&java) {
            return Ok(java);
        }
    }
    find_in_path("java").ok_or(TestingError::MissingTool {
        tool: "java",
        where_looked: "not in $JAVA_HOME/bin nor on PATH".into(),
    })
}

/// Runs `java -version` and checks it is 17 or newer.
pub(crate) async fn check_java_version(java: &Path) -> Result<(), TestingError> {
    let out = tokio::process::Command::new(java)
        .arg("-version")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| TestingError::io(format!("running {} -version", java.display()), e))?;
    // `java -version` prints to stderr; some wrappers use stdout.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    match parse_java_version(&text) {
        Some((_, major)) if major >= 17 => Ok(()),
        Some((found, _)) => Err(TestingError::JavaTooOld {
            java: java.to_path_buf(),
            found,
        }),
        None => Err(TestingError::JavaTooOld {
            java: java.to_path_buf(),
            found: format!("unknown (`-version` said: {})", text.trim()),
        }),
    }
}

/// Parses `openjdk version "17.0.15" 2025-04-15` (or `java version "1.8.0_402"`) into the quoted text and the major
/// version.
pub(crate) fn parse_java_version(text: &str) -> Option<(String, u32)> {
    let line = text.lines().find(|l| l.contains(" version \""))?;
    let quoted = line.split('"').nth(1)?;
    let mut parts = quoted.split(|c: char| !c.is_ascii_digit());
    let first: u32 = parts.next()?.parse().ok()?;
    let major = if first == 1 {
        parts.next()?.parse().ok()?
    } else {
        first
    };
    Some((quoted.to_string(), major))
}

/// Sends a signal (`TERM`, `KILL`) with the shell's `kill`, which exists wherever `sh` does.
pub(crate) fn signal(pid: u32, sig: &str) -> std::io::Result<()> {
    let status = Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" \"$2\" 2>/dev/null",
            "sh",
            sig,
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "kill -s {sig} {pid} failed ({status})"
        )))
    }
}

/// True when the process exists and is not a zombie.
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    if Path::new("/proc/self/stat").exists() {
        // Linux: the state letter follows the last ')' of /proc/<pid>/stat; 'Z' and 'X' are dead.
        return match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state != 'Z' && state != 'X'),
            Err(_) => false,
        };
    }
    Command::new("sh")
        .args(["-c", "kill -0 \"$1\" 2>/dev/null", "sh", &pid.to_string()])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when `pid` runs `kafka.Kafka` with `config` (checked through /proc where there is one; elsewhere assumed).
pub(crate) fn pid_runs_kafka(pid: u32, config: &Path) -> bool {
    if !Path::new("/proc/self/cmdline").exists() {
        return pid_alive(pid);
    }
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    let config = config.as_os_str().as_encoded_bytes();
    pid_alive(pid) && args.contains(&b"kafka.Kafka".as_slice()) && args.contains(&config)
}

/// The last `lines` lines of a log file (read from its last 256 KiB), preceded by the first few `ERROR` and
/// exception lines of that window when the tail does not show them (a JVM that fails to bind a port logs the cause,
/// then a screenful of shutdown), or a note saying why there are none.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    const MAX: u64 = 256 * 1024;
    const CAUSES: usize = 8;
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX)))?;
        let mut buf = Vec::new();
        file.take(MAX).read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            let is_cause = |l: &&&str| l.contains(" ERROR ") || l.contains("Exception");
            let causes: Vec<&str> = all[..start]
                .iter()
                .filter(is_cause)
                .take(CAUSES)
                .copied()
                .collect();
            let tail = all[start..].join("\n");
            if causes.is_empty() {
                tail
            } else {
                format!("{}\n[…]\n{tail}", causes.join("\n"))
            }
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// A `sh` process that stops a JVM when the process owning this value dies.
///
/// It blocks in `read` on a pipe whose write end only this process holds (std creates pipes close-on-exec, so no
/// other child inherits it). When this process ends in any way the kernel closes the pipe, `read` returns, and the
/// script sends SIGTERM to the JVM, waits the grace period, sends SIGKILL, and removes `remove` if given. With a zero
/// grace period it sends SIGKILL at once.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    /// Held, never written: its closing is the signal.
    _pipe: ChildStdin,
}

const WATCHDOG_SCRIPT: &str = r#"
read _ignored
if [ "$2" -eq 0 ]; then
  kill -s KILL "$1" 2>/dev/null
elif kill -s TERM "$1" 2>/dev/null; then
  i=0
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt "$2" ]; then kill -s KILL "$1" 2>/dev/null; break; fi
    sleep 1
  done
fi
if [ -n "$3" ]; then
  rm -rf "$3"
  rm -f "$4/log4j2.xml"
  rmdir "$4" 2>/dev/null
fi
exit 0
"#;

impl Watchdog {
    /// Starts a watchdog for `pid`. `remove` is the node directory and the cluster root (removed if it is then
    /// empty), or `None` to keep the data.
    pub(crate) fn spawn(
        pid: u32,
        grace: Duration,
        remove: Option<(&Path, &Path)>,
    ) -> std::io::Result<Watchdog> {
        // Whole seconds; a zero grace means SIGKILL at once.
        let grace_secs = grace.as_secs_f64().ceil().to_string();
        let (node_dir, root) = match remove {
            Some((node, root)) => (node.as_os_str().to_owned(), root.as_os_str().to_owned()),
            None => Default::default(),
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("kafka-once-watchdog")
            .arg(pid.to_string())
            .arg(grace_secs)
            .arg(node_dir)
            .arg(root)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pipe = child.stdin.take().expect("stdin was piped");
        Ok(Watchdog { child, _pipe: pipe })
    }

    /// Kills the watchdog without letting it act, before the JVM is stopped on purpose.
    pub(crate) fn disarm(mut self) {
        // SIGKILL reaches the shell while it blocks in `read`, so its trap-free script never runs further.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when the child has exited (and is now reaped).
fn exited(child: &mut Child) -> bool {
    !matches!(child.try_wait(), Ok(None))
}

/// Sends SIGTERM to every child, waits up to `grace` for all of them, then SIGKILLs the rest (all of them at once
/// when `grace` is zero). Blocks the thread.
pub(crate) fn terminate_blocking(children: &mut [&mut Child], grace: Duration) {
    send_term(children, grace);
    let deadline = Instant::now() + grace;
    while !children.iter_mut().all(|c| exited(c)) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    kill_rest(children);
}

/// Like [`terminate_blocking`], sleeping on the tokio timer.
pub(crate) async fn terminate(children: &mut [&mut Child], grace: Duration) {
    send_term(children, grace);
    let deadline = Instant::now() + grace;
    while !children.iter_mut().all(|c| exited(c)) && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    kill_rest(children);
}

/// SIGTERM to every running child, unless there is no grace period to use it in.
fn send_term(children: &mut [&mut Child], grace: Duration) {
    if grace.is_zero() {
        return;
    }
    for child in children.iter_mut() {
        if !exited(child) {
            let _ = signal(child.id(), "TERM");
        }
    }
}

fn kill_rest(children: &mut [&mut Child]) {
    for child in children.iter_mut() {
        if !exited(child) {
            tracing::warn!(
                pid = child.id(),
                "Kafka node did not stop within the grace period; sending SIGKILL"
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_versions_are_parsed() {
        let modern =
            "openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6)";
        assert_eq!(parse_java_version(modern), Some(("17.0.15".into(), 17)));
        assert_eq!(
            parse_java_version("java version \"1.8.0_402\""),
            Some(("1.8.0_402".into(), 8))
        );
        assert_eq!(
            parse_java_version("openjdk version \"21\" 2023-09-19"),
            Some(("21".into(), 21))
        );
        assert_eq!(parse_java_version("bash: java: not found"), None);
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node-1.log");
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(log_tail(&path, 3), "line 98\nline 99\nline 100");
        assert!(log_tail(&dir.path().join("missing.log"), 3).starts_with("(could not read"));
    }

    #[test]
    fn log_tail_quotes_an_earlier_error_the_tail_does_not_show() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node-1.log");
        let mut text = String::from(
            "[t] INFO starting\n[t] ERROR [KafkaServer] Fatal error: Address already in use\n",
        );
        text.extend((1..=50).map(|i| format!("[t] INFO shutting down {i}\n")));
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path, 3);
        assert_eq!(
            tail,
            "[t] ERROR [KafkaServer] Fatal error: Address already in use\n[…]\n\
             [t] INFO shutting down 48\n[t] INFO shutting down 49\n[t] INFO shutting down 50"
        );
    }

    #[test]
    fn liveness_of_own_and_dead_pids() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(99_999_999));
        assert!(!pid_alive(0));
    }

    #[test]
    fn watchdog_stops_its_process_when_the_pipe_closes() {
        let mut victim = Command::new("sleep").arg("30").spawn().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node-1");
        std::fs::create_dir(&node).unwrap();
        let mut dog = Watchdog::spawn(
            victim.id(),
            Duration::from_secs(1),
            Some((&node, dir.path())),
        )
        .unwrap();
        // Closing the pipe is what the kernel does when this process dies.
        drop(std::mem::replace(&mut dog._pipe, dummy_stdin()));
        let status = victim.wait().unwrap();
        assert!(!status.success());
        dog.child.wait().unwrap();
        assert!(!node.exists());
    }

    #[test]
    fn disarmed_watchdog_leaves_its_process_alone() {
        let mut victim = Command::new("sleep").arg("30").spawn().unwrap();
        let dog = Watchdog::spawn(victim.id(), Duration::from_secs(1), None).unwrap();
        dog.disarm();
        std::thread::sleep(Duration::from_millis(300));
        assert!(victim.try_wait().unwrap().is_none());
        terminate_blocking(&mut [&mut victim], Duration::from_secs(5));
        assert!(victim.try_wait().unwrap().is_some());
    }

    /// A pipe end belonging to a throwaway `true`, to swap in for the one being closed.
    fn dummy_stdin() -> ChildStdin {
        let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let _ = child.wait();
        stdin
    }
}
