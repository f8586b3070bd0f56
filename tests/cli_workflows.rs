//! `kafka-once workflows list|show|retry|cancel` and `journal verify` on a journal written through
//! the library (no broker needed).

use std::process::Command;

use kafka_once::dispatch::{KafkaOnce, WorkflowContext, WorkflowError, WorkflowStatus};

fn cli(args: &[&str], path: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kafka-once"))
        .args(args)
        .arg("--path")
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn list_show_retry_and_cancel_direct_workflows() {
    let dir = tempfile::tempdir().unwrap();
    {
        let app = KafkaOnce::open(dir.path()).unwrap();
        let ok = app
            .start_workflow("ok-1", 2u32, |ctx: WorkflowContext, n: u32| async move {
                let sq: u32 = ctx
                    .step("square", || async move { Ok::<_, WorkflowError>(n * n) })
                    .await?;
                Ok::<u32, WorkflowError>(sq)
            })
            .await
            .unwrap();
        assert_eq!(ok.result().await.unwrap(), 4);
        let bad = app
            .start_workflow("bad-1", (), |ctx: WorkflowContext, ()| async move {
                let _: String = ctx
                    .step("lookup", || async {
                        Ok::<_, WorkflowError>("found".to_string())
                    })
                    .await?;
                Err::<(), WorkflowError>("downstream refused".into())
            })
            .await
            .unwrap();
        assert!(bad.result().await.is_err());
        assert_eq!(bad.status().unwrap(), WorkflowStatus::Failed);
    }
    let p = dir.path();
    let (ok, text) = cli(&["workflows", "list"], p);
    assert!(ok, "{text}");
    assert!(
        text.contains("completed") && text.contains("workflow/ok-1"),
        "{text}"
    );
    assert!(
        text.contains("failed") && text.contains("workflow/bad-1"),
        "{text}"
    );
    let (ok, text) = cli(&["workflows", "list", "--status", "failed"], p);
    assert!(
        ok && text.contains("bad-1") && !text.contains("ok-1"),
        "{text}"
    );
    let (ok, text) = cli(&["workflows", "show", "bad-1"], p);
    assert!(ok, "{text}");
    assert!(
        text.contains("downstream refused") && text.contains(r#"step 0 "lookup": "found""#),
        "{text}"
    );
    let (ok, text) = cli(&["workflows", "retry", "bad-1"], p);
    assert!(ok && text.contains("failed -> pending"), "{text}");
    let (ok, text) = cli(&["workflows", "cancel", "workflow/bad-1"], p);
    assert!(ok && text.contains("cancelled"), "{text}");
    // A completed workflow can be neither retried nor cancelled: a clear error, non-zero exit.
    let (ok, text) = cli(&["workflows", "cancel", "ok-1"], p);
    assert!(!ok && text.contains("Completed"), "{text}");
    let (ok, text) = cli(&["journal", "verify"], p);
    assert!(ok && text.contains("no problems"), "{text}");
    let (ok, text) = cli(&["workflows", "list"], &p.join("missing"));
    assert!(!ok && text.contains("no journal"), "{text}");
}
