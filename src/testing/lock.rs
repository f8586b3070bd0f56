//! A lock file shared between processes: created exclusively, holding the owner's pid, removed on drop.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::TestingError;
use super::process::pid_alive;

/// A lock older than this is taken to be abandoned even if its pid looks alive (pid reuse, another pid namespace).
const STALE_AFTER: Duration = Duration::from_secs(20 * 60);

/// Held while the lock file exists; dropping it removes the file.
#[derive(Debug)]
pub(crate) struct FileLock {
    path: PathBuf,
}

impl FileLock {
    /// Waits until the lock is ours or `deadline` passes. `done` is checked between attempts: when it returns true the
    /// work the lock protects was finished by someone else and `Ok(None)` is returned.
    ///
    /// A lock whose owner is dead, or which is older than 20 minutes, is removed. Two processes removing the same
    /// stale lock at once may both proceed; callers therefore also publish their result atomically (rename).
    pub(crate) async fn acquire(
        path: &Path,
        deadline: Instant,
        mut done: impl FnMut() -> bool,
    ) -> Result<Option<FileLock>, TestingError> {
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    // The pid is only a hint for stale-lock detection; failing to write it is harmless.
                    let _ = writeln!(file, "{}", std::process::id());
                    return Ok(Some(FileLock {
                        path: path.to_path_buf(),
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(TestingError::io(
                        format!("creating lock file {}", path.display()),
                        e,
                    ));
                }
            }
            if done() {
                return Ok(None);
            }
            if is_stale(path) {
                tracing::warn!(lock = %path.display(), "removing an abandoned lock file");
                let _ = std::fs::remove_file(path);
                continue;
            }
            if Instant::now() >= deadline {
                return Err(TestingError::io(
                    format!(
                        "waiting for lock file {} (remove it if no other process holds it)",
                        path.display()
                    ),
                    std::io::Error::from(std::io::ErrorKind::TimedOut),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// True when the lock's owner is gone or the lock is very old.
fn is_stale(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false; // vanished: the next create attempt will tell
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok());
    if age.is_some_and(|a| a > STALE_AFTER) {
        return true;
    }
    match std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        Some(pid) => !pid_alive(pid),
        // Empty: the owner is between create and write, unless it died there; only age can tell.
        None => age.is_some_and(|a| a > Duration::from_secs(30)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let deadline = Instant::now() + Duration::from_secs(5);
        let held = FileLock::acquire(&path, deadline, || false).await.unwrap();
        assert!(held.is_some());
        let short = Instant::now() + Duration::from_millis(300);
        let second = FileLock::acquire(&path, short, || false).await;
        assert!(matches!(second, Err(TestingError::Io { .. })));
        let finished_elsewhere = FileLock::acquire(&path, short, || true).await.unwrap();
        assert!(finished_elsewhere.is_none());
        drop(held);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn lock_of_a_dead_pid_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // Pids are below 2^22 on Linux, so this one cannot be alive.
        std::fs::write(&path, "99999999\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let held = FileLock::acquire(&path, deadline, || false).await.unwrap();
        assert!(held.is_some());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
    }
}
