//! The broker's jars: fetched once with Maven into a cache outside `target/`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::lock::FileLock;
use super::process::find_in_path;
use super::{KAFKA_VERSION, TestingError, env_var};

/// The Maven project naming the broker's jars (`testing/kafka-pom.xml`), compiled in so the installed CLI works
/// anywhere.
pub const KAFKA_POM: &str = include_str!("../../testing/kafka-pom.xml");

/// Written inside the libs directory once the copy is complete.
const MARKER: &str = ".complete";
/// The jar whose presence proves Maven copied the broker.
const BROKER_JAR: &str = "kafka_2.13-4.1.1.jar";
/// Maven normally takes seconds; this bounds a hung download.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The cache root: `$KAFKA_ONCE_CACHE`, else `$XDG_CACHE_HOME/kafka-once`, else `~/.cache/kafka-once`.
///
/// Relative values of `XDG_CACHE_HOME` are ignored, as the XDG spec asks.
pub fn cache_dir() -> Result<PathBuf, TestingError> {
    cache_dir_from(env_var).ok_or_else(|| TestingError::InvalidConfig {
        message: "cannot choose a cache directory for the Kafka jars: set KAFKA_ONCE_CACHE or HOME"
            .into(),
    })
}

pub(crate) fn cache_dir_from(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    if let Some(dir) = env("KAFKA_ONCE_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Some(xdg.join("kafka-once"));
    }
    env("HOME").map(|home| PathBuf::from(home).join(".cache").join("kafka-once"))
}

/// Where the jars of Kafka [`KAFKA_VERSION`] live: `<cache_dir>/kafka-4.1.1/libs`. It may not exist yet; see
/// [`ensure_kafka_jars`].
pub fn kafka_libs_dir() -> Result<PathBuf, TestingError> {
    Ok(version_dir(&cache_dir()?).join("libs"))
}

fn version_dir(cache: &Path) -> PathBuf {
    cache.join(format!("kafka-{KAFKA_VERSION}"))
}

/// True when `libs` holds a complete copy.
fn is_complete(libs: &Path) -> bool {
    libs.join(MARKER).is_file() && libs.join(BROKER_JAR).is_file()
}

/// Returns the directory of the broker's jars, fetching them with Maven first if the cache lacks a complete copy.
///
/// Needs `mvn` on `PATH` only when fetching. Concurrent callers, in this process or others, wait for one fetch.
///
/// Cancel safety: cancelling may leave a private partial directory, which the next fetch removes; the cache itself is
/// never half-written.
pub async fn ensure_kafka_jars() -> Result<PathBuf, TestingError> {
    let libs = kafka_libs_dir()?;
    if is_complete(&libs) {
        return Ok(libs);
    }
    let dir = libs.parent().expect("libs has a parent").to_path_buf();
    std::fs::create_dir_all(&dir)
        .map_err(|e| TestingError::io(format!("creating {}", dir.display()), e))?;
    let deadline = Instant::now() + FETCH_TIMEOUT;
    let Some(_lock) =
        FileLock::acquire(&dir.join("fetch.lock"), deadline, || is_complete(&libs)).await?
    else {
        return Ok(libs); // another process fetched while we waited
    };
    if is_complete(&libs) {
        return Ok(libs);
    }
    fetch(&dir, &libs).await?;
    Ok(libs)
}

/// Runs Maven into a private directory and renames it to `libs` when complete. Called with the lock held.
async fn fetch(dir: &Path, libs: &Path) -> Result<(), TestingError> {
    let mvn = find_in_path("mvn").ok_or(TestingError::MissingTool {
        tool: "mvn",
        where_looked: "not on PATH; needed once to fetch the jars".into(),
    })?;
    let fetch_err = |message: String| TestingError::Fetch {
        dir: dir.to_path_buf(),
        message,
    };
    remove_leftovers(dir);
    let pom = dir.join("kafka-pom.xml");
    std::fs::write(&pom, KAFKA_POM)
        .map_err(|e| TestingError::io(format!("writing {}", pom.display()), e))?;
    let partial = dir.join(format!(
        "libs.partial-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    tracing::info!(cache = %libs.display(), "fetching the Kafka {KAFKA_VERSION} jars with Maven (once)");
    let started = Instant::now();
    let output = tokio::process::Command::new(&mvn)
        .current_dir(dir)
        .args(["-B", "-q", "-Dstyle.color=never", "-f"])
        .arg(&pom)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", partial.display()))
        .arg("-DincludeScope=runtime")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(FETCH_TIMEOUT, output)
        .await
        .map_err(|_| fetch_err(format!("Maven did not finish within {FETCH_TIMEOUT:?}")))?
        .map_err(|e| TestingError::io(format!("running {}", mvn.display()), e))?;
    if !output.status.success() || !partial.join(BROKER_JAR).is_file() {
        let _ = std::fs::remove_dir_all(&partial);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(fetch_err(format!(
            "`mvn` ended with {}:\n{}",
            output.status,
            tail.join("\n")
        )));
    }
    let marker = partial.join(MARKER);
    std::fs::write(&marker, format!("kafka {KAFKA_VERSION}\n"))
        .map_err(|e| TestingError::io(format!("writing {}", marker.display()), e))?;
    // An incomplete `libs` (from an older layout or a damaged cache) is moved aside: rename cannot replace a
    // non-empty directory.
    if libs.exists() {
        let stale = dir.join(format!(
            "libs.stale-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::rename(libs, &stale)
            .map_err(|e| TestingError::io(format!("moving aside {}", libs.display()), e))?;
        let _ = std::fs::remove_dir_all(&stale);
    }
    match std::fs::rename(&partial, libs) {
        Ok(()) => {}
        // Someone else (who stole a stale lock) published first; theirs is as good as ours.
        Err(_) if is_complete(libs) => {
            let _ = std::fs::remove_dir_all(&partial);
        }
        Err(e) => {
            return Err(TestingError::io(
                format!("renaming {} to {}", partial.display(), libs.display()),
                e,
            ));
        }
    }
    tracing::info!(elapsed = ?started.elapsed(), "fetched the Kafka jars");
    Ok(())
}

/// Removes partial and stale copies left by interrupted fetches. Called with the lock held.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("libs.partial-") || name.starts_with("libs.stale-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_env as env;

    #[test]
    fn cache_dir_prefers_kafka_once_cache() {
        let vars = [
            ("KAFKA_ONCE_CACHE", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cache_dir_from(env(&vars)), Some(PathBuf::from("/c")));
    }

    #[test]
    fn cache_dir_then_xdg_then_home() {
        let vars = [("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(
            cache_dir_from(env(&vars)),
            Some(PathBuf::from("/x/kafka-once"))
        );
        let vars = [("XDG_CACHE_HOME", "relative"), ("HOME", "/h")];
        assert_eq!(
            cache_dir_from(env(&vars)),
            Some(PathBuf::from("/h/.cache/kafka-once"))
        );
        assert_eq!(cache_dir_from(env(&[])), None);
    }

    #[test]
    fn version_dir_names_the_version() {
        assert_eq!(
            version_dir(Path::new("/c")),
            PathBuf::from("/c/kafka-4.1.1")
        );
        assert!(BROKER_JAR.contains(KAFKA_VERSION));
    }

    #[test]
    fn embedded_pom_pins_the_version() {
        assert!(KAFKA_POM.contains("<artifactId>kafka_2.13</artifactId>"));
        assert!(KAFKA_POM.contains(&format!("<version>{KAFKA_VERSION}</version>")));
    }

    #[test]
    fn incomplete_copy_is_not_complete() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(BROKER_JAR), b"").unwrap();
        assert!(!is_complete(dir.path()));
        std::fs::write(dir.path().join(MARKER), b"").unwrap();
        assert!(is_complete(dir.path()));
    }
}
