//! The background threads: the WAL writer (group commit, memtable inserts, rotation) and the
//! sealer (memtable -> segment).

use crate::append_log::{AppendRefusal, LeafHash, LogEntry};
use crate::error::StoreError;
use crate::ids::IdKey;
use crate::memtable::{Memtable, RecordAt};
use crate::segment::{segment_path, write_segment, Segment};
use crate::store::{sync_dir, temporary_path, AppendOutcome, Location, Shared};
use crate::stored::{stored_path, write_stored};
use crate::subscribe::CommitGroup;
use crate::wal::{is_out_of_space, wal_path, EncodedBatch, SinkFactory, WalSink, RECORD_START};
use cts_model::Trace;
use std::collections::HashSet;
use std::fs;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// At most this many commands are committed with one fsync.
const MAX_GROUP: usize = 256;
/// At most this many full memtables wait for the sealer; the writer waits before filling another.
const MAX_SEALING: usize = 2;
/// How often a waiting writer looks whether the sealer caught up.
const SEALER_POLL: std::time::Duration = std::time::Duration::from_millis(5);

pub(crate) enum Command {
    Append {
        traces: Vec<Trace>,
        /// The identity key of each trace.
        keys: Vec<IdKey>,
        encoded: EncodedBatch,
        /// The leaf hash of each trace when the store has an append log (else empty).
        leaf_hashes: Vec<LeafHash>,
        done: oneshot::Sender<Result<AppendOutcome, StoreError>>,
        /// The append's room in the store's queue (async appends), released when the writer takes it.
        queued: Option<tokio::sync::OwnedSemaphorePermit>,
    },
    /// Seal the memtable now; `done` is answered once every pending seal has finished.
    Rotate { done: oneshot::Sender<Result<(), StoreError>> },
}

pub(crate) enum SealCommand {
    Seal(Arc<Memtable>),
    /// Answered when every seal queued before it is done, with the first failure since the last barrier.
    Barrier(oneshot::Sender<Result<(), StoreError>>),
}

/// The state of the writer thread.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    sink: Box<dyn WalSink>,
    sink_factory: Arc<SinkFactory>,
    generation: u64,
    sealer: mpsc::Sender<SealCommand>,
}

struct PendingAppend {
    traces: Vec<Trace>,
    keys: Vec<IdKey>,
    encoded: EncodedBatch,
    leaf_hashes: Vec<LeafHash>,
    done: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        sink: Box<dyn WalSink>,
        sink_factory: Arc<SinkFactory>,
        generation: u64,
        sealer: mpsc::Sender<SealCommand>,
    ) -> Writer {
        Writer { shared, sink, sink_factory, generation, sealer }
    }

    fn poisoned(&self) -> Option<StoreError> {
        self.shared.poisoned.lock().clone().map(|reason| StoreError::Poisoned { reason })
    }

    fn poison(&self, error: &StoreError) {
        self.shared.poisoned.lock().get_or_insert_with(|| error.to_string());
    }

    /// Writes the new traces of every pending append with one fsync, makes them queryable, then
    /// answers every waiter.
    fn commit(&mut self, appends: Vec<PendingAppend>) {
        if appends.is_empty() {
            return;
        }
        if let Some(error) = self.poisoned() {
            for append in appends {
                let _ = append.done.send(Err(error.clone_for_waiter()));
            }
            return;
        }
        // Which traces are new: not stored yet and not earlier in this group.
        let mut is_new: Vec<Vec<bool>> = Vec::with_capacity(appends.len());
        {
            let state = self.shared.state.read();
            let mut seen = HashSet::new();
            for append in &appends {
                let flags: Vec<bool> =
                    append.keys.iter().map(|&key| !state.locations.contains_key(&key) && seen.insert(key)).collect();
                is_new.push(flags);
            }
        }
        // A group that would overflow the memtable starts the next one instead: the memtable's rows
        // stay within the room reserved for them (growing a full one would copy every trace).
        let new_count: usize = is_new.iter().map(|flags| flags.iter().filter(|&&new| new).count()).sum();
        let len = self.shared.state.read().memtable.len();
        if len > 0 && len + new_count > self.shared.config.memtable_max_traces {
            if let Err(error) = self.rotate() {
                self.fail_group(appends, error, "WAL rotation failed; refusing further writes");
                return;
            }
        }
        // The WAL bytes of the group: each append's encoded records, whole when all are new (the usual
        // case), else its new ones; the memtable then keeps the appends' buffers as the binary records.
        let mut parts: Vec<&[u8]> = Vec::with_capacity(appends.len());
        for (append, flags) in appends.iter().zip(&is_new) {
            if flags.iter().all(|&new| new) {
                parts.push(&append.encoded.bytes);
            } else {
                let new_records = flags.iter().enumerate().filter(|(_, &new)| new);
                parts.extend(new_records.map(|(index, _)| append.encoded.record(index)));
            }
        }
        // The WAL's length before the group, when the group wrote to it.
        let written = if parts.is_empty() { Ok(None) } else { self.write_wal(&parts).map(Some) };
        // The log's entries are durable before anything is queryable or acknowledged.
        let logged = written.and_then(|committed| match self.append_to_log(&appends, &is_new) {
            // The log kept nothing: neither may the WAL (its records were never acknowledged).
            Err(AppendRefusal::OutOfSpace) => match committed {
                Some(committed) => Err(self.cut_wal_back(committed)),
                None => Err(StoreError::OutOfSpace { path: self.shared.layout.wal_dir.clone() }),
            },
            Err(AppendRefusal::Failed(reason)) => Err(StoreError::AppendLog { reason }),
            Ok(()) => Ok(()),
        });
        if let Err(error @ StoreError::OutOfSpace { .. }) = logged {
            metrics::counter!("cts_store_out_of_space_total").increment(1);
            tracing::warn!(%error, "the disk is full: refusing this group, the WAL is cut back to its last commit");
            for append in appends {
                let _ = append.done.send(Err(error.clone_for_waiter()));
            }
            return;
        }
        if let Err(error) = logged {
            self.fail_group(appends, error, "WAL or append-log write failed; refusing further writes");
            return;
        }
        // The new traces move into one shared group: the memtable keeps it, subscribers get a handle.
        let mut new_traces = Vec::with_capacity(new_count);
        let mut new_keys = Vec::with_capacity(new_count);
        let mut records = Vec::with_capacity(new_count);
        let mut chunks = Vec::with_capacity(appends.len());
        let mut outcomes = Vec::with_capacity(appends.len());
        let mut waiters = Vec::with_capacity(appends.len());
        for (append, flags) in appends.into_iter().zip(is_new) {
            let mut outcome = AppendOutcome::default();
            let traces = append.traces.into_iter().zip(append.keys).zip(flags).enumerate();
            for (index, ((trace, key), new)) in traces {
                if new {
                    let framed = append.encoded.range(index);
                    records.push(RecordAt { chunk: chunks.len(), range: framed.start + RECORD_START..framed.end });
                    new_traces.push(trace);
                    new_keys.push(key);
                    outcome.stored += 1;
                } else {
                    outcome.duplicates += 1;
                }
            }
            if outcome.stored > 0 {
                chunks.push(append.encoded.bytes);
            }
            outcomes.push(outcome);
            waiters.push(append.done);
        }
        let group: CommitGroup = Arc::new(new_traces);
        if !group.is_empty() {
            let mut state = self.shared.state.write();
            let state = &mut *state;
            let first = state.memtable.push_group(Arc::clone(&group), &new_keys, chunks, records);
            for (offset, key) in new_keys.into_iter().enumerate() {
                state.locations.insert(key, Location { generation: self.generation, row: first + offset as u32 });
            }
        }
        let full = self.shared.state.read().memtable.len() >= self.shared.config.memtable_max_traces;
        if full {
            if let Err(error) = self.rotate() {
                tracing::error!(%error, "WAL rotation failed; refusing further writes");
                self.poison(&error);
            }
        }
        if !group.is_empty() {
            self.shared.committed.publish(group);
        }
        for (done, outcome) in waiters.into_iter().zip(outcomes) {
            let _ = done.send(Ok(outcome));
        }
    }

    /// Appends the group's records (`parts`) to the WAL and fsyncs them. A write that
    /// finds the disk full is cut back to the last commit ([`StoreError::OutOfSpace`]: the store takes
    /// writes again once there is room); any other failure, and every failed fsync, is left for the
    /// caller to poison the store with (after a failed fsync nothing says what reached the disk).
    /// Returns the WAL's length before the group (see [`Writer::cut_wal_back`]).
    fn write_wal(&mut self, parts: &[&[u8]]) -> Result<u64, StoreError> {
        let path = wal_path(&self.shared.layout.wal_dir, self.generation);
        let committed = self.sink.len().map_err(|e| StoreError::io(&path, e))?;
        let started = std::time::Instant::now();
        match self.sink.append(parts) {
            Err(error) if is_out_of_space(&error) => return Err(self.cut_wal_back(committed)),
            Err(error) => return Err(StoreError::io(&path, error)),
            Ok(()) => {}
        }
        self.sink.sync().map_err(|e| StoreError::io(&path, e))?;
        metrics::histogram!("cts_wal_commit_seconds").record(started.elapsed().as_secs_f64());
        let bytes: usize = parts.iter().map(|part| part.len()).sum();
        metrics::counter!("cts_wal_bytes_total").increment(bytes as u64);
        Ok(committed)
    }

    /// Cuts the WAL back to `committed` bytes (durably) after the disk filled up during a group:
    /// [`StoreError::OutOfSpace`] when that worked, else the I/O error the store is poisoned with.
    fn cut_wal_back(&mut self, committed: u64) -> StoreError {
        let path = wal_path(&self.shared.layout.wal_dir, self.generation);
        match self.sink.truncate(committed).and_then(|()| self.sink.sync()) {
            Ok(()) => StoreError::OutOfSpace { path },
            Err(error) => StoreError::io(&path, error),
        }
    }

    /// Poisons the store with `error` and answers every append of the group with it.
    fn fail_group(&self, appends: Vec<PendingAppend>, error: StoreError, message: &str) {
        tracing::error!(%error, "{message}");
        self.poison(&error);
        for append in appends {
            let _ = append.done.send(Err(error.clone_for_waiter()));
        }
    }

    /// Appends the new traces of the group, in WAL order, to the store's append log (if any).
    fn append_to_log(&self, appends: &[PendingAppend], is_new: &[Vec<bool>]) -> Result<(), AppendRefusal> {
        let Some(log) = &self.shared.log else { return Ok(()) };
        let mut entries = Vec::new();
        for (append, flags) in appends.iter().zip(is_new) {
            for ((trace, leaf_hash), _) in
                append.traces.iter().zip(&append.leaf_hashes).zip(flags).filter(|(_, &new)| new)
            {
                let (project_id, trace_id) = (trace.project_id.as_str(), trace.trace_id.as_str());
                entries.push(LogEntry { project_id, trace_id, time: trace.time, leaf_hash: *leaf_hash });
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        log.append(&entries)
    }

    /// Starts a new WAL generation and hands the full memtable to the sealer (no-op when empty).
    fn rotate(&mut self) -> Result<(), StoreError> {
        if self.shared.state.read().memtable.is_empty() {
            return Ok(());
        }
        self.wait_for_sealer();
        let generation = self.generation + 1;
        let path = wal_path(&self.shared.layout.wal_dir, generation);
        let sink = (self.sink_factory)(&path).map_err(|e| StoreError::io(&path, e))?;
        sync_dir(&self.shared.layout.wal_dir)?;
        self.sink = sink;
        self.generation = generation;
        let sealed = {
            let mut state = self.shared.state.write();
            let next = Memtable::with_room(generation, self.shared.config.memtable_max_traces);
            let full = std::mem::replace(&mut state.memtable, next);
            let full = Arc::new(full);
            state.sealing.push(full.clone());
            full
        };
        // The sealer only exits after this thread does.
        let _ = self.sealer.send(SealCommand::Seal(sealed));
        Ok(())
    }
}

impl Writer {
    /// Backpressure: while [`MAX_SEALING`] full memtables wait for the sealer (a disk slower than ingest), the
    /// writer takes no new appends, so callers wait in the store's queue instead of memory growing.
    fn wait_for_sealer(&self) {
        let started = std::time::Instant::now();
        while self.shared.state.read().sealing.len() >= MAX_SEALING && !self.shared.closing.load(Ordering::SeqCst) {
            std::thread::sleep(SEALER_POLL);
        }
        let waited = started.elapsed();
        if waited >= SEALER_POLL {
            metrics::histogram!("cts_store_sealer_wait_seconds").record(waited.as_secs_f64());
            tracing::debug!(waited_ms = waited.as_millis() as u64, "the WAL writer waited for the sealer");
        }
    }
}

impl StoreError {
    /// A copy of a commit failure for one of the waiters of the group.
    fn clone_for_waiter(&self) -> StoreError {
        match self {
            StoreError::Io { path, source } => {
                StoreError::Io { path: path.clone(), source: std::io::Error::new(source.kind(), source.to_string()) }
            }
            StoreError::Poisoned { reason } => StoreError::Poisoned { reason: reason.clone() },
            StoreError::OutOfSpace { path } => StoreError::OutOfSpace { path: path.clone() },
            StoreError::AppendLog { reason } => StoreError::AppendLog { reason: reason.clone() },
            other => StoreError::Poisoned { reason: other.to_string() },
        }
    }
}

/// The writer thread: takes every pending command, commits the appends with one fsync, and exits
/// when every store handle is gone (after committing what was sent).
pub(crate) fn run_writer(mut writer: Writer, commands: mpsc::Receiver<Command>) {
    while let Ok(first) = commands.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match commands.try_recv() {
                Ok(command) => group.push(command),
                Err(_) => break,
            }
        }
        let mut appends = Vec::new();
        for command in group {
            match command {
                // Taken by the writer: the append's room in the queue is free again.
                Command::Append { traces, keys, encoded, leaf_hashes, done, queued } => {
                    drop(queued);
                    appends.push(PendingAppend { traces, keys, encoded, leaf_hashes, done })
                }
                Command::Rotate { done } => {
                    writer.commit(std::mem::take(&mut appends));
                    let rotated = match writer.poisoned() {
                        Some(error) => Err(error),
                        None => writer.rotate(),
                    };
                    match rotated {
                        Ok(()) => {
                            let _ = writer.sealer.send(SealCommand::Barrier(done));
                        }
                        Err(error) => {
                            writer.poison(&error);
                            let _ = done.send(Err(error));
                        }
                    }
                }
            }
        }
        writer.commit(appends);
    }
}

/// How long the sealer waits before it tries a failed seal again (a full disk, say).
const SEAL_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The sealer thread: turns each full memtable into a segment, oldest first. A seal that fails (its
/// partial files removed; the WAL still holds the traces) is tried again every [`SEAL_RETRY`], and
/// newer memtables wait behind it. When the store is closing it starts no new segment (the WAL
/// still holds those traces).
pub(crate) fn run_sealer(shared: &Shared, commands: mpsc::Receiver<SealCommand>) {
    let mut failure: Option<StoreError> = None;
    let mut pending: std::collections::VecDeque<Arc<Memtable>> = std::collections::VecDeque::new();
    loop {
        while let Some(memtable) = pending.front() {
            if shared.closing.load(Ordering::SeqCst) {
                pending.clear();
                break;
            }
            let started = std::time::Instant::now();
            match seal(shared, memtable) {
                Ok(()) => {
                    metrics::histogram!("cts_seal_seconds").record(started.elapsed().as_secs_f64());
                    pending.pop_front();
                }
                Err(error) => {
                    metrics::counter!("cts_seal_failures_total").increment(1);
                    tracing::error!(%error, generation = memtable.generation, "sealing a memtable failed; retrying");
                    failure.get_or_insert(error);
                    break;
                }
            }
        }
        let command = if pending.is_empty() {
            commands.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        } else {
            commands.recv_timeout(SEAL_RETRY)
        };
        match command {
            Ok(SealCommand::Seal(memtable)) => pending.push_back(memtable),
            Ok(SealCommand::Barrier(done)) => {
                // A seal still waiting for its retry keeps its failure for the barriers after this one.
                let outcome = match &failure {
                    Some(error) if !pending.is_empty() => Err(error.clone_for_waiter()),
                    _ => failure.take().map_or(Ok(()), Err),
                };
                let _ = done.send(outcome);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Writes the segment of a memtable: the sidecar and the Parquet file (each a temporary file, fsynced,
/// then renamed: sidecar first), fsyncs the directory, makes the segment visible in place of the
/// memtable, then deletes the WAL file it covers.
fn seal(shared: &Shared, memtable: &Arc<Memtable>) -> Result<(), StoreError> {
    let generation = memtable.generation;
    let segment_dir = &shared.layout.segment_dir;
    let path = segment_path(segment_dir, generation);
    let stored = stored_path(segment_dir, generation);
    let rows = memtable.sorted_rows();
    let traces: Vec<&Trace> = rows.iter().map(|&row| memtable.trace(row)).collect();
    let records: Vec<&[u8]> = rows.iter().map(|&row| memtable.record(row)).collect();
    // The two files are encoded in parallel: sealing then keeps up with ingest when a core is free.
    let stored_temporary = temporary_path(&stored);
    let parquet_temporary = temporary_path(&path);
    let (stored_written, parquet_written) = std::thread::scope(|scope| {
        let stored_writer = scope.spawn(|| write_stored(&stored_temporary, &records));
        let parquet_written = write_segment(&parquet_temporary, &traces, generation);
        (stored_writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), parquet_written)
    });
    if let Err(error) = stored_written.and(parquet_written) {
        for temporary in [&stored_temporary, &parquet_temporary] {
            if let Err(removed) = fs::remove_file(temporary) {
                if removed.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %removed, path = %temporary.display(), "a partial segment file stays");
                }
            }
        }
        return Err(error);
    }
    for (temporary, path) in [(&stored_temporary, &stored), (&parquet_temporary, &path)] {
        fs::rename(temporary, path).map_err(|e| StoreError::io(path, e))?;
    }
    sync_dir(segment_dir)?;
    if let Some(log) = &shared.log {
        let paths = [stored.as_path(), path.as_path()];
        log.segment_files_written(&paths).map_err(|reason| StoreError::AppendLog { reason })?;
    }
    let (segment, keys) = Segment::from_memtable(&path, memtable, &rows)?;
    {
        let mut state = shared.state.write();
        state.sealing.retain(|sealing| !Arc::ptr_eq(sealing, memtable));
        for (row, key) in keys.into_iter().enumerate() {
            state.locations.insert(key, Location { generation, row: row as u32 });
        }
        state.segments.insert(generation, Arc::new(segment));
    }
    let wal = wal_path(&shared.layout.wal_dir, generation);
    fs::remove_file(&wal).map_err(|e| StoreError::io(&wal, e))?;
    sync_dir(&shared.layout.wal_dir)
}
