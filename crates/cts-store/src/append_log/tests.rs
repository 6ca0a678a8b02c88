//! The append-log hook: what the log receives, when, and what a failing log does to the store.

use super::*;
use crate::tests::{all_traces, config, make_trace};
use crate::{Store, StoreConfig};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An in-memory log that records what it is given and can be told to fail.
#[derive(Default)]
struct RecordingLog {
    entries: Mutex<Vec<(String, String, LeafHash)>>,
    expiries: Mutex<Vec<i64>>,
    segment_files: Mutex<Vec<PathBuf>>,
    failing: AtomicBool,
}

fn hash_of(trace: &Trace) -> LeafHash {
    let mut hash = [0; 32];
    hash[..8].copy_from_slice(&trace.time.to_le_bytes());
    hash[8..8 + trace.trace_id.len().min(24)]
        .copy_from_slice(&trace.trace_id.as_bytes()[..trace.trace_id.len().min(24)]);
    hash
}

impl AppendLog for RecordingLog {
    fn leaf_hash(&self, trace: &Trace) -> LeafHash {
        hash_of(trace)
    }

    fn append(&self, entries: &[LogEntry<'_>]) -> Result<(), AppendRefusal> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AppendRefusal::Failed("injected log failure".into()));
        }
        let mut logged = self.entries.lock();
        logged.extend(entries.iter().map(|e| (e.project_id.to_owned(), e.trace_id.to_owned(), e.leaf_hash)));
        Ok(())
    }

    fn contains(&self, project_id: &str, trace_id: &str) -> Result<bool, String> {
        Ok(self.entries.lock().iter().any(|(p, t, _)| p == project_id && t == trace_id))
    }

    fn record_expiry(&self, cutoff_ms: i64) -> Result<(), String> {
        self.expiries.lock().push(cutoff_ms);
        Ok(())
    }

    fn segment_files_written(&self, paths: &[&Path]) -> Result<(), String> {
        self.segment_files.lock().extend(paths.iter().map(|path| path.to_path_buf()));
        Ok(())
    }
}

fn ids(entries: &[(String, String, LeafHash)]) -> Vec<String> {
    entries.iter().map(|(_, trace_id, _)| trace_id.clone()).collect()
}

#[test]
fn new_traces_reach_the_log_in_order_with_their_hashes_and_duplicates_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(RecordingLog::default());
    let store = Store::open_with_log(config(dir.path(), 1000), Some(log.clone())).unwrap();
    let first: Vec<Trace> = (0..5).map(make_trace).collect();
    store.append_blocking(first.clone()).unwrap();
    // A retry plus new traces, with a repeat inside the batch: only the new ones are logged, once.
    let second: Vec<Trace> = vec![make_trace(2), make_trace(7), make_trace(8), make_trace(7)];
    store.append_blocking(second).unwrap();
    let logged = log.entries.lock().clone();
    let expected: Vec<Trace> = (0..5).chain([7, 8]).map(make_trace).collect();
    assert_eq!(ids(&logged), expected.iter().map(|t| t.trace_id.clone()).collect::<Vec<_>>());
    for ((project, _, hash), trace) in logged.iter().zip(&expected) {
        assert_eq!((project, hash), (&trace.project_id, &hash_of(trace)));
    }
}

#[test]
fn a_failing_log_fails_the_append_poisons_the_store_and_nothing_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(RecordingLog::default());
    let store = Store::open_with_log(config(dir.path(), 1000), Some(log.clone())).unwrap();
    store.append_blocking(vec![make_trace(1)]).unwrap();
    log.failing.store(true, Ordering::SeqCst);
    assert!(matches!(store.append_blocking(vec![make_trace(2)]), Err(StoreError::AppendLog { .. })));
    log.failing.store(false, Ordering::SeqCst);
    assert!(matches!(store.append_blocking(vec![make_trace(3)]), Err(StoreError::Poisoned { .. })));
    assert_eq!(all_traces(&store), vec![make_trace(1)]);
    drop(store);
    // The unacknowledged trace is in the WAL: recovery stores it and appends it to the log.
    let store = Store::open_with_log(config(dir.path(), 1000), Some(log.clone())).unwrap();
    assert_eq!(ids(&log.entries.lock()), vec![make_trace(1).trace_id, make_trace(2).trace_id]);
    assert_eq!(all_traces(&store).len(), 2);
}

#[test]
fn recovery_appends_only_the_wal_traces_the_log_lacks_in_wal_order() {
    let dir = tempfile::tempdir().unwrap();
    let traces: Vec<Trace> = (0..6).map(make_trace).collect();
    let store = Store::open(config(dir.path(), 1000)).unwrap();
    store.append_blocking(traces.clone()).unwrap();
    drop(store);
    let log = Arc::new(RecordingLog::default());
    log.entries.lock().push((traces[1].project_id.clone(), traces[1].trace_id.clone(), hash_of(&traces[1])));
    let _store = Store::open_with_log(config(dir.path(), 1000), Some(log.clone())).unwrap();
    let expected: Vec<String> = [1, 0, 2, 3, 4, 5].iter().map(|&i| traces[i].trace_id.clone()).collect();
    assert_eq!(ids(&log.entries.lock()), expected);
}

#[test]
fn retention_tells_the_log_before_it_deletes_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(RecordingLog::default());
    let hour = 3_600_000;
    let config = StoreConfig { retention_ms: hour, ..config(dir.path(), 1000) };
    let store = Store::open_with_log(config, Some(log.clone())).unwrap();
    let now = cts_model::now_ms();
    store.append_blocking(vec![Trace { time: now - 2 * hour, ..make_trace(1) }]).unwrap();
    store.flush().unwrap();
    let written: Vec<String> =
        log.segment_files.lock().iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
    assert_eq!(
        written,
        ["00000000000000000001.traces", "00000000000000000001.parquet"],
        "told once the seal is durable"
    );
    assert_eq!(store.enforce_retention(now).unwrap(), 1);
    assert_eq!(*log.expiries.lock(), vec![now - hour]);
    // Nothing expired: the log is not told anything.
    assert_eq!(store.enforce_retention(now).unwrap(), 0);
    assert_eq!(log.expiries.lock().len(), 1);
}

#[test]
fn scanning_reads_every_segment_file_and_wal_without_changing_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path(), 4)).unwrap();
    let traces: Vec<Trace> = (0..10).map(make_trace).collect();
    store.append_blocking(traces[..4].to_vec()).unwrap();
    store.flush().unwrap();
    store.append_blocking(traces[4..].to_vec()).unwrap();
    drop(store);
    let mut seen: Vec<(StoredFileKind, usize)> = Vec::new();
    let mut ids = HashSet::new();
    scan_stored_files(dir.path(), |file| {
        let traces = file.traces.unwrap();
        ids.extend(traces.iter().map(|t| t.trace_id.clone()));
        seen.push((file.kind, traces.len()));
    })
    .unwrap();
    assert_eq!(ids.len(), 10);
    let count = |kind: StoredFileKind| seen.iter().filter(|(k, _)| *k == kind).map(|(_, n)| n).sum::<usize>();
    assert_eq!(count(StoredFileKind::Parquet), count(StoredFileKind::Sidecar));
    assert_eq!(count(StoredFileKind::Parquet) + count(StoredFileKind::Wal), 10);
}
