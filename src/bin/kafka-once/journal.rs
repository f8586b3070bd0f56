//! `kafka-once journal stats|verify|dump --path DIR`.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Subcommand;
use kafka_once::journal::Journal;

use crate::Error;

#[derive(Subcommand, Debug)]
pub enum JournalAction {
    /// Entries per partition and state, and the size on disk.
    Stats,
    /// Check every key and entry; exit non-zero when anything is wrong.
    Verify,
    /// Print every entry: key, state, attempts.
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
            println!(
                "{:<70} {:>9} {:>10} {:>14}",
                "PARTITION", "STARTED", "COMPLETED", "DEAD-LETTERED"
            );
            for (p, [s, c, d]) in &per {
                println!("{p:<70} {s:>9} {c:>10} {d:>14}");
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
        }
    }
    Ok(())
}
