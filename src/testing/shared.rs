//! One broker per test process, started on first use.

use std::sync::OnceLock;

use super::{BOOTSTRAP_ENV, LocalKafka, TestingError, env_var};

/// The process-wide broker, or why it failed to start. Never dropped: statics are not.
static SHARED: OnceLock<Result<LocalKafka, String>> = OnceLock::new();

/// The bootstrap address for tests: `$KAFKA_BOOTSTRAP` if set, else a single-node [`LocalKafka`] shared by every test
/// of this process, started on the first call.
///
/// Blocking: the first call waits for the broker to start (a few seconds; longer when the jars are fetched), and
/// concurrent callers wait for that same start. It may be called from inside a tokio runtime (`#[tokio::test]`): the
/// broker is started on a dedicated thread with its own runtime, and afterwards needs no runtime at all (its JVM is a
/// plain `std::process::Child`), so it outlives each test's runtime. A failed start is remembered and reported by
/// every later call as [`TestingError::Shared`].
///
/// Cleanup: a `static` is never dropped, so the broker is not stopped by `Drop`. Its watchdog (see the
/// [module docs](super)) stops the JVM and removes its temporary directory when the test process exits, however it
/// exits.
///
/// ```no_run
/// # fn demo() -> Result<(), kafka_once::testing::TestingError> {
/// let bootstrap = kafka_once::testing::shared_bootstrap()?;
/// # let _ = bootstrap;
/// # Ok(())
/// # }
/// ```
pub fn shared_bootstrap() -> Result<String, TestingError> {
    if let Some(bootstrap) = env_var(BOOTSTRAP_ENV) {
        return bootstrap
            .into_string()
            .map_err(|_| TestingError::InvalidConfig {
                message: format!("{BOOTSTRAP_ENV} is not valid UTF-8"),
            });
    }
    match SHARED.get_or_init(start_shared) {
        Ok(kafka) => Ok(kafka.bootstrap()),
        Err(message) => Err(TestingError::Shared {
            message: message.clone(),
        }),
    }
}

/// The broker [`shared_bootstrap`] started, if it started one; for its [`nodes`](LocalKafka::nodes) and log files.
/// `None` before the first call, when `KAFKA_BOOTSTRAP` is used, or when the start failed.
pub fn shared_local() -> Option<&'static LocalKafka> {
    SHARED.get().and_then(|r| r.as_ref().ok())
}

fn start_shared() -> Result<LocalKafka, String> {
    let starter = std::thread::Builder::new()
        .name("kafka-once-shared-broker".into())
        .spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("building a tokio runtime: {e}"))?;
            runtime
                .block_on(LocalKafka::builder().start())
                .map_err(|e| e.to_string())
        });
    match starter {
        Ok(thread) => thread
            .join()
            .unwrap_or_else(|_| Err("the thread starting it panicked".into())),
        Err(e) => Err(format!("spawning a thread: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts the real shared broker (unless `KAFKA_BOOTSTRAP` is set); its watchdog stops it when the tests end.
    #[test]
    fn shared_broker_starts_once_for_concurrent_callers() {
        let other = std::thread::spawn(shared_bootstrap);
        let here = shared_bootstrap().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(other.join().unwrap().unwrap(), here);
        if env_var(BOOTSTRAP_ENV).is_none() {
            let kafka = shared_local().expect("started here");
            assert_eq!(kafka.bootstrap(), here);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let answer = runtime.block_on(super::super::probe::api_versions(
                &here,
                std::time::Duration::from_secs(2),
            ));
            assert_eq!(answer, Ok(()));
        }
    }
}
