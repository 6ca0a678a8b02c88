//! Persistence: a journal of applied commands plus periodic snapshots.
//!
//! ```text
//! <dir>/journal.jsonl   one JournalEntry per line, appended and fsynced before the change is answered
//! <dir>/snapshot.json   {"seq": N, "market": {...}}: the state after entry N, replaced atomically (cts-durable)
//! ```
//!
//! Opening replays the snapshot and then every journal entry after it; a torn last line (a crash mid-append) is cut
//! off. Every [`SNAPSHOT_EVERY`] entries the state is snapshotted and the journal emptied. Only commands that
//! succeeded are journaled, and the marketplace is deterministic, so replay rebuilds exactly the state that was
//! answered. The fault hook makes the next appends fail, to provoke incidents on purpose.

use crate::error::StorageError;
use crate::market::{Command, Marketplace};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Journal entries between snapshots.
pub const SNAPSHOT_EVERY: u64 = 2_000;

/// One applied command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    pub at: i64,
    pub actor: Option<String>,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Deserialize)]
struct Snapshot {
    seq: u64,
    market: Marketplace,
}

/// What [`Snapshot`] reads, written from a borrowed state.
#[derive(Serialize)]
struct SnapshotOf<'a> {
    seq: u64,
    market: &'a Marketplace,
}

/// The open journal of a data directory.
pub struct Journal {
    dir: PathBuf,
    file: File,
    /// Bytes of complete entries: where a failed append is cut back to.
    len: u64,
    last_seq: u64,
    since_snapshot: u64,
    faults: Arc<AtomicU32>,
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and rebuilds the marketplace it records. `faults` counts appends still
    /// to fail on purpose (shared so that it survives a reopen).
    pub fn open(dir: &Path, faults: Arc<AtomicU32>) -> Result<(Journal, Marketplace), StorageError> {
        std::fs::create_dir_all(dir)?;
        let snapshot_path = dir.join("snapshot.json");
        let (mut last_seq, mut market) = match std::fs::read(&snapshot_path) {
            Ok(bytes) => {
                let snapshot: Snapshot = serde_json::from_slice(&bytes).map_err(|e| corrupt(&snapshot_path, e))?;
                (snapshot.seq, snapshot.market)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, Marketplace::new()),
            Err(e) => return Err(e.into()),
        };
        let journal_path = dir.join("journal.jsonl");
        let file = OpenOptions::new().create(true).read(true).append(true).open(&journal_path)?;
        let mut len = 0u64;
        let mut since_snapshot = 0;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        loop {
            line.clear();
            let read = reader.read_line(&mut line)?;
            // A line without its newline is a torn append: it was never acknowledged.
            if read == 0 || !line.ends_with('\n') {
                break;
            }
            let entry: JournalEntry = match serde_json::from_str(&line) {
                Ok(entry) => entry,
                Err(_) if reader.fill_buf()?.is_empty() => break,
                Err(e) => return Err(corrupt(&journal_path, e)),
            };
            if entry.seq > last_seq {
                market
                    .execute(entry.at, entry.actor.as_deref(), &entry.command)
                    .map_err(|e| corrupt(&journal_path, format!("entry {} no longer applies: {e}", entry.seq)))?;
                last_seq = entry.seq;
                since_snapshot += 1;
            }
            len += read as u64;
        }
        drop(reader);
        if file.metadata()?.len() != len {
            file.set_len(len)?;
            file.sync_all()?;
        }
        Ok((Journal { dir: dir.to_owned(), file, len, last_seq, since_snapshot, faults }, market))
    }

    /// Appends `command` as applied at `at` by `actor`, durably; snapshots `market` (the state after it) when due.
    pub fn append(
        &mut self,
        at: i64,
        actor: Option<&str>,
        command: &Command,
        market: &Marketplace,
    ) -> Result<(), StorageError> {
        let injected = self.faults.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if injected {
            return Err(StorageError::InjectedFault);
        }
        let entry =
            JournalEntry { seq: self.last_seq + 1, at, actor: actor.map(str::to_owned), command: command.clone() };
        let mut line = serde_json::to_vec(&entry).expect("journal entries serialise");
        line.push(b'\n');
        if let Err(error) = self.file.write_all(&line).and_then(|()| self.file.sync_data()) {
            // Cut a partial line so the next append starts on a line of its own.
            let _ = self.file.set_len(self.len);
            return Err(error.into());
        }
        self.len += line.len() as u64;
        self.last_seq = entry.seq;
        self.since_snapshot += 1;
        if self.since_snapshot >= SNAPSHOT_EVERY {
            self.snapshot(market)?;
        }
        Ok(())
    }

    /// Writes the state as the snapshot and empties the journal.
    pub fn snapshot(&mut self, market: &Marketplace) -> Result<(), StorageError> {
        let snapshot =
            serde_json::to_vec(&SnapshotOf { seq: self.last_seq, market }).expect("the marketplace serialises");
        cts_durable::write_atomically(&self.dir.join("snapshot.json"), &snapshot)?;
        // Entries up to `seq` are skipped on replay, so a crash before this truncation is harmless.
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.len = 0;
        self.since_snapshot = 0;
        Ok(())
    }
}

fn corrupt(path: &Path, reason: impl ToString) -> StorageError {
    StorageError::Corrupt { path: path.display().to_string(), reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> Command {
        Command::CreateAccount { name: name.to_owned() }
    }

    /// Executes and journals `command`, as the service does.
    fn apply(journal: &mut Journal, market: &mut Marketplace, command: Command) {
        market.execute(1, None, &command).unwrap();
        journal.append(1, None, &command, market).unwrap();
    }

    #[test]
    fn reopening_replays_snapshot_and_journal_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(AtomicU32::new(0));
        let (mut journal, mut market) = Journal::open(dir.path(), faults.clone()).unwrap();
        apply(&mut journal, &mut market, account("a"));
        journal.snapshot(&market).unwrap();
        apply(&mut journal, &mut market, account("b"));
        drop(journal);
        // A crash in the middle of an append.
        let mut file = OpenOptions::new().append(true).open(dir.path().join("journal.jsonl")).unwrap();
        file.write_all(br#"{"seq":3,"at":1,"actor":null,"command":"create_acc"#).unwrap();

        let (mut journal, mut reopened) = Journal::open(dir.path(), faults.clone()).unwrap();
        assert_eq!(reopened, market);
        apply(&mut journal, &mut reopened, account("c"));
        faults.store(1, Ordering::SeqCst);
        let refused = journal.append(1, None, &account("d"), &reopened);
        assert!(matches!(refused, Err(StorageError::InjectedFault)));
        drop(journal);
        let (_, last) = Journal::open(dir.path(), faults).unwrap();
        assert_eq!(last, reopened);
        assert!(last.account("acct-00000003").is_some());
        assert!(last.account("acct-00000004").is_none());
    }
}
