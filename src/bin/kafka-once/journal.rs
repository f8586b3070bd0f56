//! `kafka-once journal stats|verify|dump --path DIR`.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Subcommand;
use kafka_once::journal::Journal;

use crate::Error;

#[derive(Subcommand, Debug)]
pub enum JournalAction {
    /// Entries and runs per partition and state, and the size on disk.
    Stats,
    /// Check every key, entry and run; exit non-zero when anything is wrong.
    Verify,
    /// Print every entry (key, state, attempts), then every run (`first-key..end`, kind, attempts).
    Dump,
}

pub fn run(action: JournalAction, path: &Path) -> Result<(), Error> {
    if !path.exists() {
        return Err(format!("no journal at {}", path.display()).into());
    }
    let journal = Journal::open(path)?;
    match action {
        JournalAction::Stats => {
            let mut per: BTreeMap<String, [u64; 3]> = BTreeMap::new();
            let mut corrupt = 0;
            for item in journal.entries() {
                match item {
                    Ok((key, entry)) => {
                        let slot = match entry.state_name() {
                            "started" => 0,
                            "completed" => 1,
                            _ => 2,
                        };
                        per.entry(key.partition_key().to_string()).or_default()[slot] += 1;
                    }
                    Err(_) => corrupt += 1,
                }
            }
            // Runs: records that started or completed together (counted as their records).
            let mut runs: BTreeMap<String, [u64; 2]> = BTreeMap::new();
            for item in journal.runs() {
                match item {
                    Ok((key, completed, run)) => {
                        let n = u64::try_from(run.end - key.offset).unwrap_or(0);
                        runs.entry(key.partition_key().to_string()).or_default()
                            [usize::from(completed)] += n;
                    }
                    Err(_) => corrupt += 1,
                }
            }
            println!(
                "{:<70} {:>9} {:>10} {:>14} {:>12} {:>14}",
                "PARTITION",
                "STARTED",
                "COMPLETED",
                "DEAD-LETTERED",
                "RUN-STARTED",
                "RUN-COMPLETED"
            );
            let names: std::collections::BTreeSet<&String> =
                per.keys().chain(runs.keys()).collect();
            for p in names {
                let [s, c, d] = per.get(p).copied().unwrap_or_default();
                let [rs, rc] = runs.get(p).copied().unwrap_or_default();
                println!("{p:<70} {s:>9} {c:>10} {d:>14} {rs:>12} {rc:>14}");
            }
            println!("bytes on disk: {}", journal.stats().disk_bytes);
            if corrupt > 0 {
                println!("corrupt entries: {corrupt} (run `journal verify`)");
            }
        }
        JournalAction::Verify => {
            let (n, problems) = journal.verify();
            for p in &problems {
                println!("{p}");
            }
            if !problems.is_empty() {
                return Err(format!("{} problems in {n} entries", problems.len()).into());
            }
            println!("ok: {n} entries, no problems");
        }
        JournalAction::Dump => {
            for item in journal.entries() {
                match item {
                    Ok((key, entry)) => {
                        println!("{key}\t{}\t{}", entry.state_name(), entry.attempts())
                    }
                    Err(e) => println!("ERROR\t{e}"),
                }
            }
            for item in journal.runs() {
                match item {
                    Ok((key, completed, run)) => {
                        let kind = if completed {
                            "run-completed"
                        } else {
                            "run-started"
                        };
                        println!("{key}..{}\t{kind}\t{}", run.end, run.attempts)
                    }
                    Err(e) => println!("ERROR\t{e}"),
                }
            }
        }
    }
    Ok(())
}
