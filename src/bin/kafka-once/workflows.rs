//! `kafka-once workflows list|show|retry|cancel --path DIR`.

use std::path::Path;

use clap::Subcommand;
use kafka_once::dispatch::{WorkflowRecord, WorkflowStatus, list_workflows, set_workflow_status};
use kafka_once::journal::{Entry, Journal, RecordKey};

use crate::Error;

#[derive(Subcommand, Debug)]
pub enum WorkflowsAction {
    /// Workflows by status: direct ones (by id) and Kafka ones still in the journal (by key).
    List {
        /// Only this status: pending, completed, failed, dead-lettered, cancelled.
        #[arg(long)]
        status: Option<String>,
    },
    /// One workflow with its steps and their outputs: a direct workflow's id, or a Kafka
    /// workflow's key `group/topic/topic-id/partition/offset`.
    Show { id: String },
    /// Make a failed or cancelled direct workflow, or a dead-lettered Kafka record (by its key),
    /// pending again. The app's next `run` (or `recover_workflows`) runs it with the registered
    /// workflow (a dead letter with its consumer's workflow, on the recorded message); one started
    /// with a closure resumes on its next `start_workflow` / `resume_workflows`.
    Retry { id: String },
    /// Cancel a pending direct workflow: it runs no further attempt.
    Cancel { id: String },
}

/// Parses the display form of a Kafka workflow key (`%2F` and `%25` unescaped in the group).
fn parse_key(s: &str) -> Option<RecordKey> {
    let mut parts = s.rsplitn(5, '/');
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let topic_id = parts.next()?.parse().ok()?;
    let topic = parts.next()?;
    let group = parts.next()?.replace("%2F", "/").replace("%25", "%");
    Some(RecordKey {
        group: group.into(),
        topic: topic.into(),
        topic_id,
        partition,
        offset,
    })
}

/// How a workflow record is named in listings: a Kafka record's dead letter by its key, a direct
/// workflow as `workflow/<id>`.
fn shown_id(id: &str, r: &WorkflowRecord) -> String {
    if r.workflow
        .as_deref()
        .is_some_and(|w| w.starts_with("kafka:"))
    {
        id.to_string()
    } else {
        format!("workflow/{id}")
    }
}

fn status_name(s: WorkflowStatus) -> &'static str {
    match s {
        WorkflowStatus::Pending => "pending",
        WorkflowStatus::Completed => "completed",
        WorkflowStatus::Failed => "failed",
        WorkflowStatus::DeadLettered => "dead-lettered",
        WorkflowStatus::Cancelled => "cancelled",
    }
}

pub async fn run(action: WorkflowsAction, path: &Path) -> Result<(), Error> {
    if !path.exists() {
        return Err(format!("no journal at {}", path.display()).into());
    }
    let journal = Journal::open(path)?;
    match action {
        WorkflowsAction::List { status } => {
            println!("{:<14} {:>8}  WORKFLOW", "STATUS", "ATTEMPTS");
            let records = list_workflows(&journal)?;
            for (id, r) in &records {
                let name = status_name(r.status);
                if status.as_deref().is_none_or(|s| s == name) {
                    println!("{name:<14} {:>8}  {}", r.attempts, shown_id(id, r));
                }
            }
            for item in journal.entries() {
                let (key, entry) = item?;
                if key.direct_id().is_some() {
                    continue;
                }
                // A dead-lettered record is listed once, by its workflow record above.
                let shown = key.to_string();
                if records.iter().any(|(id, _)| *id == shown) {
                    continue;
                }
                let name = match entry {
                    Entry::Started { .. } => "pending",
                    Entry::Completed { .. } => "completed",
                    Entry::DeadLettered { .. } => "dead-lettered",
                };
                if status.as_deref().is_none_or(|s| s == name) {
                    println!("{name:<14} {:>8}  {key}", entry.attempts());
                }
            }
        }
        WorkflowsAction::Show { id } => {
            let direct = id.strip_prefix("workflow/").unwrap_or(&id).to_string();
            let record = list_workflows(&journal)?
                .into_iter()
                .find(|(i, _)| *i == direct)
                .map(|(_, r)| r);
            let kafka_key = parse_key(&id);
            if record.is_none() && kafka_key.is_none() {
                return Err(format!("no workflow {direct:?}").into());
            }
            let mut keys = Vec::new();
            if let Some(record) = &record {
                println!(
                    "{}: {}",
                    shown_id(&direct, record),
                    status_name(record.status)
                );
                if let Some(w) = &record.workflow {
                    println!("  workflow: {w}");
                }
                println!("  attempts: {}", record.attempts);
                println!("  input:    {}", record.input);
                if let Some(o) = &record.output {
                    println!("  output:   {o}");
                }
                if let Some(e) = &record.error {
                    println!("  error:    {e}");
                }
                keys.push(RecordKey::direct(&direct));
            }
            if let Some(key) = kafka_key {
                match journal.get(&key)? {
                    Some(e) => {
                        println!("{key}: {} after {} attempts", e.state_name(), e.attempts())
                    }
                    None => println!(
                        "{key}: not in the journal (never started, or pruned after its commit)"
                    ),
                }
                keys.push(key);
            }
            for key in keys {
                let steps = journal.steps(&key)?;
                if steps.is_empty() {
                    println!("  no recorded steps under {key}");
                }
                for (i, step) in steps {
                    println!(
                        "  step {i} {:?}: {}",
                        step.name,
                        String::from_utf8_lossy(&step.output)
                    );
                }
            }
        }
        WorkflowsAction::Retry { id } => {
            let id = id.strip_prefix("workflow/").unwrap_or(&id);
            let from = set_workflow_status(&journal, id, WorkflowStatus::Pending).await?;
            println!(
                "{id}: {} -> pending (runs when the app next runs, if its workflow is registered; \
                 one started with a closure by start_workflow or resume_workflows)",
                status_name(from)
            );
        }
        WorkflowsAction::Cancel { id } => {
            let id = id.strip_prefix("workflow/").unwrap_or(&id);
            set_workflow_status(&journal, id, WorkflowStatus::Cancelled).await?;
            println!("workflow/{id}: cancelled");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_display_form() {
        let key = RecordKey {
            group: "billing/eu%1".into(),
            topic: "orders".into(),
            topic_id: uuid::Uuid::from_u128(77),
            partition: 4,
            offset: 1234,
        };
        assert_eq!(parse_key(&key.to_string()), Some(key));
        assert_eq!(parse_key("no-slashes"), None);
        assert_eq!(parse_key("g/t/not-a-uuid/1/2"), None);
    }
}
