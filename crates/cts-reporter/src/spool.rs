//! The disk spool: batches of traces waiting for cts, kept across restarts.
//!
//! One file per batch, `<seq>-<traces>.batch` (sequence number zero-padded to 20 digits, so names sort in
//! submission order), written atomically ([`cts_durable::write_atomically`]: temp file, fsync, rename, directory
//! fsync), so a crash leaves whole files or none. A file is `[u32 crc32c of the body, little endian][body]`, the
//! body one JSON trace per line. Files are deleted only after cts acknowledged their traces; a file that fails
//! its checksum is renamed to `*.corrupt` and its traces counted as dropped.
//!
//! The files together take at most `max_bytes`; a batch that does not fit is cut to the traces that do, and the
//! rest dropped, with one error log per episode of fullness (not one per trace). `LOCK` keeps a second process
//! from replaying the same spool.

use crate::batch::EncodedTrace;
use crate::stats::{DropReason, Stats};
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const HEADER_BYTES: u64 = 4;
const EXTENSION: &str = "batch";

/// The bytes a trace takes in a spool file.
fn spooled_bytes(trace: &EncodedTrace) -> u64 {
    trace.json.len() as u64 + 1
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool directory {dir}: {source}")]
    Open { dir: PathBuf, source: io::Error },
    #[error("spool directory {0} is in use by another reporter")]
    Locked(PathBuf),
    #[error("reading spool file {file}: {source}")]
    Read { file: PathBuf, source: io::Error },
    #[error("spool file {file} is corrupt: {reason}")]
    Corrupt { file: PathBuf, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpoolFile {
    traces: u64,
    bytes: u64,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<u64, SpoolFile>,
    /// Bytes of the files, plus those being written.
    bytes: u64,
    next_seq: u64,
    /// Traces dropped for want of room since the spool became full; `None` while it has room.
    dropped_while_full: Option<u64>,
    /// Whether the last write failed (its error is logged once until a write succeeds).
    write_failing: bool,
}

pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    stats: Arc<Stats>,
    state: Mutex<State>,
    /// Held (locked) while the spool is open.
    _lock: File,
}

impl Spool {
    /// Opens (creating) `dir`, takes its lock, and indexes the batches a previous process left; temp files of
    /// interrupted writes are removed.
    pub(crate) fn open(dir: &Path, max_bytes: u64, stats: Arc<Stats>) -> Result<Spool, SpoolError> {
        let open_error = |source| SpoolError::Open { dir: dir.to_owned(), source };
        fs::create_dir_all(dir).map_err(open_error)?;
        let lock = File::create(dir.join("LOCK")).map_err(open_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir.to_owned())),
            Err(TryLockError::Error(source)) => return Err(open_error(source)),
        }
        let mut state = State::default();
        for entry in fs::read_dir(dir).map_err(open_error)? {
            let entry = entry.map_err(open_error)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                fs::remove_file(entry.path()).map_err(open_error)?;
            } else if let Some((seq, traces)) = parse_file_name(&name) {
                let bytes = entry.metadata().map_err(open_error)?.len();
                state.files.insert(seq, SpoolFile { traces, bytes });
                state.bytes += bytes;
                state.next_seq = state.next_seq.max(seq + 1);
            }
        }
        if !state.files.is_empty() {
            tracing::info!(dir = %dir.display(), batches = state.files.len(), bytes = state.bytes,
                "spool holds traces from before; replaying them");
        }
        stats.spool_bytes(state.bytes);
        Ok(Spool { dir: dir.to_owned(), max_bytes, stats, state: Mutex::new(state), _lock: lock })
    }

    /// A new sequence number: batches are replayed in the order of theirs.
    pub(crate) fn next_seq(&self) -> u64 {
        let mut state = self.state.lock();
        state.next_seq += 1;
        state.next_seq - 1
    }

    /// Stores `traces` as batch `seq`: as many as fit (in order), the rest dropped for want of room; all of them
    /// dropped when writing fails. Counts and logs what happened; returns how many were stored.
    pub(crate) fn store(&self, seq: u64, traces: &[EncodedTrace]) -> usize {
        if traces.is_empty() {
            return 0;
        }
        let (fitting, bytes) = {
            let mut state = self.state.lock();
            let room = self.max_bytes.saturating_sub(state.bytes);
            let (fitting, bytes) = fitting_prefix(traces, room);
            self.note_room(&mut state, traces.len() - fitting);
            state.bytes += bytes;
            (fitting, bytes)
        };
        if fitting == 0 {
            return 0;
        }
        let traces = &traces[..fitting];
        let path = self.path(seq, traces.len() as u64);
        let written = cts_durable::write_atomically(&path, &encode(traces));
        let mut state = self.state.lock();
        match written {
            Ok(()) => {
                if std::mem::take(&mut state.write_failing) {
                    tracing::info!(dir = %self.dir.display(), "spool writes succeed again");
                }
                state.files.insert(seq, SpoolFile { traces: traces.len() as u64, bytes });
                self.stats.spooled(traces.len() as u64);
                self.stats.spool_bytes(state.bytes);
                traces.len()
            }
            Err(error) => {
                state.bytes -= bytes;
                if !std::mem::replace(&mut state.write_failing, true) {
                    tracing::error!(file = %path.display(), %error,
                        "writing the spool failed; traces cts cannot take now are dropped until a write succeeds");
                }
                self.stats.dropped(DropReason::SpoolWriteFailed, traces.len() as u64);
                0
            }
        }
    }

    /// Counts `dropped` traces refused for want of room, logging when the spool becomes full and when it has
    /// room again.
    fn note_room(&self, state: &mut State, dropped: usize) {
        match (state.dropped_while_full, dropped) {
            (None, 0) => {}
            (Some(earlier), 0) => {
                tracing::warn!(dir = %self.dir.display(), dropped = earlier,
                    "the spool has room again; traces were dropped while it was full");
                state.dropped_while_full = None;
            }
            (None, _) => {
                tracing::error!(dir = %self.dir.display(), max_bytes = self.max_bytes,
                    "the spool is full: new traces are dropped until cts takes the spooled ones");
                state.dropped_while_full = Some(dropped as u64);
            }
            (Some(earlier), _) => state.dropped_while_full = Some(earlier + dropped as u64),
        }
        self.stats.dropped(DropReason::SpoolFull, dropped as u64);
    }

    /// The sequence number of the oldest spooled batch.
    pub(crate) fn oldest(&self) -> Option<u64> {
        self.state.lock().files.keys().next().copied()
    }

    /// The traces in the spool.
    pub(crate) fn traces(&self) -> u64 {
        self.state.lock().files.values().map(|file| file.traces).sum()
    }

    /// Reads batch `seq`.
    pub(crate) fn read(&self, seq: u64) -> Result<Vec<EncodedTrace>, SpoolError> {
        let path = self.path_of(seq);
        let contents = fs::read(&path).map_err(|source| SpoolError::Read { file: path.clone(), source })?;
        decode(&contents).map_err(|reason| SpoolError::Corrupt { file: path, reason })
    }

    /// Deletes batch `seq` (cts acknowledged it). A file that cannot be deleted is forgotten all the same: a
    /// later process replays it, and cts keeps each trace once.
    pub(crate) fn remove(&self, seq: u64) {
        let path = self.path_of(seq);
        if let Err(error) = fs::remove_file(&path) {
            tracing::error!(file = %path.display(), %error, "deleting a delivered spool file failed");
        }
        self.forget(seq);
    }

    /// Moves a corrupt batch aside (`*.corrupt`) and counts its traces as dropped.
    pub(crate) fn quarantine(&self, seq: u64, error: &SpoolError) {
        let path = self.path_of(seq);
        let mut aside = path.clone().into_os_string();
        aside.push(".corrupt");
        tracing::error!(%error, kept_as = %aside.to_string_lossy(), "dropping a corrupt spool file");
        if let Err(error) = fs::rename(&path, &aside) {
            tracing::error!(file = %path.display(), %error, "moving a corrupt spool file aside failed");
        }
        if let Some(file) = self.forget(seq) {
            self.stats.dropped(DropReason::SpoolCorrupt, file.traces);
        }
    }

    fn forget(&self, seq: u64) -> Option<SpoolFile> {
        let mut state = self.state.lock();
        let file = state.files.remove(&seq)?;
        state.bytes -= file.bytes;
        self.stats.spool_bytes(state.bytes);
        Some(file)
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        let traces = self.state.lock().files.get(&seq).map_or(0, |file| file.traces);
        self.path(seq, traces)
    }

    fn path(&self, seq: u64, traces: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}-{traces}.{EXTENSION}"))
    }
}

/// How many of `traces` (from the start) fit in `room` bytes as one file, and the file's size.
fn fitting_prefix(traces: &[EncodedTrace], room: u64) -> (usize, u64) {
    let mut bytes = HEADER_BYTES;
    for (index, trace) in traces.iter().enumerate() {
        if bytes + spooled_bytes(trace) > room {
            return if index == 0 { (0, 0) } else { (index, bytes) };
        }
        bytes += spooled_bytes(trace);
    }
    (traces.len(), bytes)
}

/// `(seq, traces)` from a batch file's name.
fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    let (seq, traces) = stem.split_once('-')?;
    Some((seq.parse().ok()?, traces.parse().ok()?))
}

fn encode(traces: &[EncodedTrace]) -> Vec<u8> {
    let mut body = Vec::with_capacity(traces.iter().map(|trace| spooled_bytes(trace) as usize).sum());
    for trace in traces {
        body.extend_from_slice(trace.json.as_bytes());
        body.push(b'\n');
    }
    let mut file = Vec::with_capacity(HEADER_BYTES as usize + body.len());
    file.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    file.extend_from_slice(&body);
    file
}

fn decode(contents: &[u8]) -> Result<Vec<EncodedTrace>, String> {
    #[derive(Deserialize)]
    struct Id {
        trace_id: String,
    }
    let (header, body) = contents.split_at_checked(HEADER_BYTES as usize).ok_or("shorter than its header")?;
    let expected = u32::from_le_bytes(header.try_into().expect("the header is 4 bytes"));
    if crc32c::crc32c(body) != expected {
        return Err("checksum mismatch".to_owned());
    }
    let body = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    body.lines()
        .map(|line| {
            let id: Id = serde_json::from_str(line).map_err(|e| format!("a trace without its id: {e}"))?;
            Ok(EncodedTrace { trace_id: id.trace_id, json: line.to_owned() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trace(n: usize, padding: usize) -> EncodedTrace {
        let trace_id = format!("00000000-0000-4000-8000-{n:012}");
        let json = serde_json::json!({"trace_id": trace_id, "message": "x".repeat(padding)}).to_string();
        EncodedTrace { trace_id, json }
    }

    fn open(dir: &Path, max_bytes: u64) -> (Spool, Arc<Stats>) {
        let stats = Arc::new(Stats::default());
        (Spool::open(dir, max_bytes, stats.clone()).unwrap(), stats)
    }

    #[test]
    fn batches_survive_reopening_in_order_and_are_deleted_once_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let batches: Vec<Vec<EncodedTrace>> = vec![(0..3).map(|n| trace(n, 10)).collect(), vec![trace(3, 0)]];
        {
            let (spool, stats) = open(dir.path(), 1 << 20);
            for batch in &batches {
                assert_eq!(spool.store(spool.next_seq(), batch), batch.len());
            }
            assert_eq!(stats.snapshot().spooled, 4);
        }
        let (spool, stats) = open(dir.path(), 1 << 20);
        assert_eq!(spool.traces(), 4);
        assert!(stats.snapshot().spool_bytes > 0);
        assert_eq!(spool.next_seq(), 2, "sequence numbers continue after the spooled ones");
        for batch in &batches {
            let seq = spool.oldest().unwrap();
            assert_eq!(&spool.read(seq).unwrap(), batch);
            spool.remove(seq);
        }
        assert_eq!(spool.oldest(), None);
        assert_eq!(stats.snapshot().spool_bytes, 0);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["LOCK"]);
    }

    #[test]
    fn a_second_spool_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_first, _) = open(dir.path(), 1 << 20);
        let second = Spool::open(dir.path(), 1 << 20, Arc::new(Stats::default()));
        assert!(matches!(second, Err(SpoolError::Locked(_))));
    }

    #[test]
    fn leftover_temp_files_are_removed_and_corrupt_files_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (spool, _) = open(dir.path(), 1 << 20);
            spool.store(spool.next_seq(), &[trace(0, 0), trace(1, 0)]);
        }
        let batch = dir.path().join(format!("{:020}-2.batch", 0));
        assert!(batch.exists());
        let mut contents = fs::read(&batch).unwrap();
        *contents.last_mut().unwrap() ^= 1;
        fs::write(&batch, contents).unwrap();
        fs::write(dir.path().join(format!("{:020}-1.batch.tmp", 1)), b"torn").unwrap();

        let (spool, stats) = open(dir.path(), 1 << 20);
        assert!(!dir.path().join(format!("{:020}-1.batch.tmp", 1)).exists());
        let seq = spool.oldest().unwrap();
        let error = spool.read(seq).unwrap_err();
        assert!(matches!(error, SpoolError::Corrupt { .. }), "{error}");
        spool.quarantine(seq, &error);
        assert_eq!(spool.oldest(), None);
        assert_eq!(stats.snapshot().dropped(DropReason::SpoolCorrupt), 2);
        assert!(dir.path().join(format!("{:020}-2.batch.corrupt", 0)).exists());
    }

    #[test]
    fn decoding_refuses_damaged_files() {
        let good = encode(&[trace(0, 5)]);
        let mut flipped = good.clone();
        flipped[6] ^= 0x20;
        let body_without_id = b"{\"message\":\"x\"}\n";
        let mut without_id = crc32c::crc32c(body_without_id).to_le_bytes().to_vec();
        without_id.extend_from_slice(body_without_id);
        assert!(decode(&good).is_ok());
        for (case, contents) in [("short", &good[..3]), ("flipped", &flipped[..]), ("no id", &without_id[..])] {
            assert!(decode(contents).is_err(), "{case}");
        }
    }

    #[test]
    fn a_write_failure_drops_the_batch_and_the_next_success_stores_again() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let (spool, stats) = open(&spool_dir, 1 << 20);
        fs::remove_dir_all(&spool_dir).unwrap();
        fs::write(&spool_dir, b"not a directory").unwrap();
        assert_eq!(spool.store(spool.next_seq(), &[trace(0, 0), trace(1, 0)]), 0);
        assert_eq!(stats.snapshot().dropped(DropReason::SpoolWriteFailed), 2);
        assert_eq!(stats.snapshot().spool_bytes, 0);
        fs::remove_file(&spool_dir).unwrap();
        assert_eq!(spool.store(spool.next_seq(), &[trace(2, 0)]), 1);
        assert_eq!(spool.traces(), 1);
    }

    /// Log lines written while `work` runs.
    fn logs_of(work: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                self.0.lock().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        tracing::subscriber::with_default(subscriber, work);
        let logs = captured.0.lock().clone();
        String::from_utf8(logs).unwrap()
    }

    #[test]
    fn a_full_spool_logs_once_per_episode_not_per_trace() {
        let dir = tempfile::tempdir().unwrap();
        let one_trace_file = HEADER_BYTES + spooled_bytes(&trace(0, 0));
        let (spool, stats) = open(dir.path(), one_trace_file);
        let logs = logs_of(|| {
            for episode in 0..2 {
                assert_eq!(spool.store(spool.next_seq(), &[trace(0, 0)]), 1);
                for n in 1..20 {
                    assert_eq!(spool.store(spool.next_seq(), &[trace(n, 0), trace(n + 100, 0)]), 0, "{episode}");
                }
                spool.remove(spool.oldest().unwrap());
            }
            assert_eq!(spool.store(spool.next_seq(), &[trace(0, 0)]), 1);
        });
        assert_eq!(stats.snapshot().dropped(DropReason::SpoolFull), 2 * 19 * 2);
        assert_eq!(logs.matches("the spool is full").count(), 2, "{logs}");
        assert_eq!(logs.matches("the spool has room again").count(), 2, "{logs}");
        assert_eq!(logs.matches("dropped=38").count(), 2, "{logs}");
    }

    proptest! {
        // Every step may fsync: few cases keep the test short.
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Against a simple model: every batch stores the longest prefix that fits in the room left, the spool
        /// never exceeds its bound, and removing batches frees exactly their bytes.
        #[test]
        fn the_bound_holds_and_prefixes_are_kept(
            max_bytes in 0u64..2_000,
            steps in prop::collection::vec((0usize..6, 0usize..200, any::<bool>()), 1..20),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (spool, stats) = open(dir.path(), max_bytes);
            let mut model_bytes = 0u64;
            let mut model_files = BTreeMap::new();
            let mut next_id = 0;
            for (count, padding, remove_oldest) in steps {
                if remove_oldest {
                    if let Some((seq, bytes)) = model_files.pop_first() {
                        spool.remove(seq);
                        model_bytes -= bytes;
                    }
                    continue;
                }
                let batch: Vec<_> = (0..count).map(|n| trace(next_id + n, padding)).collect();
                next_id += count;
                let mut expected = 0;
                let mut file_bytes = HEADER_BYTES;
                for trace in &batch {
                    if model_bytes + file_bytes + trace.json.len() as u64 + 1 > max_bytes {
                        break;
                    }
                    file_bytes += trace.json.len() as u64 + 1;
                    expected += 1;
                }
                let seq = spool.next_seq();
                prop_assert_eq!(spool.store(seq, &batch), expected);
                if expected > 0 {
                    model_bytes += file_bytes;
                    model_files.insert(seq, file_bytes);
                    prop_assert_eq!(&spool.read(seq).unwrap()[..], &batch[..expected]);
                }
                prop_assert!(stats.snapshot().spool_bytes <= max_bytes);
                prop_assert_eq!(stats.snapshot().spool_bytes, model_bytes);
            }
        }
    }
}
