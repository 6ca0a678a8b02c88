//! The hook through which a verifiable log (the ledger) sees every stored trace, and the read-only
//! scan of the store's files that verification uses.
//!
//! The store does not know what the log does; it only promises the log:
//! - every new (non-duplicate) trace is appended, in WAL order, after the WAL fsync and before the
//!   trace becomes queryable or its append is acknowledged; a failed append fails the group and
//!   poisons the store like a failed WAL write;
//! - at open, traces replayed from the WAL that the log does not hold are appended (in WAL order);
//! - before retention deletes segment files, the log is told which traces expire;
//! - once a segment's files are durable (sealed, or a sidecar rebuilt at open), the log is told
//!   their paths, so it can record what they hold byte for byte.

use crate::error::StoreError;
use crate::segment::{read_parquet_traces, segment_path};
use crate::stored::{stored_path, StoredTraces};
use crate::wal;
use cts_model::Trace;
use std::path::{Path, PathBuf};

/// A SHA-256 leaf hash, computed by [`AppendLog::leaf_hash`].
pub type LeafHash = [u8; 32];

/// One trace as the log sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry<'a> {
    pub project_id: &'a str,
    pub trace_id: &'a str,
    /// The trace's `time` (UTC ms), so the log can tell traces expired by retention apart.
    pub time: i64,
    pub leaf_hash: LeafHash,
}

/// A log every stored trace is appended to. Errors are reasons for the logs; the store turns them
/// into [`StoreError::AppendLog`].
pub trait AppendLog: Send + Sync {
    /// The leaf hash of a trace; called on the appending threads (in parallel across requests).
    fn leaf_hash(&self, trace: &Trace) -> LeafHash;
    /// Makes `entries` durable, in order. Called by the writer thread only. On
    /// [`AppendRefusal::OutOfSpace`] the log keeps none of them.
    fn append(&self, entries: &[LogEntry<'_>]) -> Result<(), AppendRefusal>;
    /// Whether the log holds the trace (recovery asks this for traces replayed from the WAL).
    fn contains(&self, project_id: &str, trace_id: &str) -> Result<bool, String>;
    /// Records durably that retention drops every trace older than `cutoff_ms` (called before any file
    /// is deleted; the dropped traces are all older than the cutoff).
    fn record_expiry(&self, cutoff_ms: i64) -> Result<(), String>;
    /// A segment's files are durable and in place; called before the WAL file they cover is deleted.
    /// A failure fails the seal (the WAL file stays).
    fn segment_files_written(&self, paths: &[&Path]) -> Result<(), String>;
}

/// Why an append log did not take entries.
#[derive(Debug, thiserror::Error)]
pub enum AppendRefusal {
    /// The disk is full; the log kept none of the entries (the store then refuses the group and
    /// takes writes again once there is room).
    #[error("out of disk space")]
    OutOfSpace,
    /// Anything else; what the log kept is unknown (the store refuses further writes).
    #[error("{0}")]
    Failed(String),
}

/// Which of the store's files a scanned batch of traces came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredFileKind {
    /// A segment's Parquet file.
    Parquet,
    /// A segment's stored-traces sidecar.
    Sidecar,
    /// A WAL file (traces not sealed yet); its complete records, a torn tail left as it is.
    Wal,
}

/// One of the store's files and what could be read from it.
#[derive(Debug)]
pub struct StoredFile {
    pub path: PathBuf,
    pub kind: StoredFileKind,
    /// Every trace of the file, or why it could not be read.
    pub traces: Result<Vec<Trace>, StoreError>,
}

/// Reads every segment file (Parquet and sidecar) and WAL file under `<data_dir>/store` without
/// changing anything, one file at a time, oldest generation first. Unreadable files are reported,
/// not fatal. Meant for verification of a store no process has open.
pub fn scan_stored_files(data_dir: &Path, mut visit: impl FnMut(StoredFile)) -> Result<(), StoreError> {
    let root = data_dir.join("store");
    let segment_dir = root.join("segments");
    let wal_dir = root.join("wal");
    let mut generations = Vec::new();
    for (dir, extension) in [(&segment_dir, "parquet"), (&segment_dir, "traces"), (&wal_dir, "wal")] {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(StoreError::io(dir, error)),
        };
        for entry in entries {
            let path = entry.map_err(|e| StoreError::io(dir, e))?.path();
            if let Some(generation) = crate::store::generation_of(&path, extension) {
                generations.push((generation, extension));
            }
        }
    }
    generations.sort_unstable();
    for (generation, extension) in generations {
        let file = match extension {
            "parquet" => {
                let path = segment_path(&segment_dir, generation);
                StoredFile { traces: read_parquet_traces(&path), path, kind: StoredFileKind::Parquet }
            }
            "traces" => {
                let path = stored_path(&segment_dir, generation);
                let traces = StoredTraces::open(&path).and_then(|stored| stored.fetch_all());
                StoredFile { traces, path, kind: StoredFileKind::Sidecar }
            }
            _ => {
                let path = wal::wal_path(&wal_dir, generation);
                StoredFile { traces: wal::read_complete_records(&path), path, kind: StoredFileKind::Wal }
            }
        };
        visit(file);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
