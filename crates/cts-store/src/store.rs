//! The store: opening and recovery, the public operations, and the shared state the writer and
//! sealer threads (see [`crate::writer`]) work on.

use crate::append_log::{AppendLog, LogEntry};
use crate::error::StoreError;
use crate::ids::{IdHasher, IdMap};
use crate::memtable::{Candidate, Memtable};
use crate::plan::Plan;
use crate::query::TraceQuery;
use crate::record::RecordBuffer;
use crate::segment::{read_parquet_traces, segment_path, Segment};
use crate::stored::{stored_path, write_stored};
use crate::wal::{self, open_file_sink, wal_path, EncodedBatch, SinkFactory};
use crate::writer::{run_sealer, run_writer, Command, SealCommand, Writer};
use cts_model::Trace;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A child module, to read the parts of [`State`].
#[path = "count.rs"]
mod count;
/// A child module, to read the parts of [`State`].
#[path = "distinct.rs"]
mod distinct;

pub use count::RatingCounts;

/// Where and how the store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The store uses `<data_dir>/store/...`.
    pub data_dir: PathBuf,
    /// Traces older than now − retention are never returned; `enforce_retention` drops them a whole
    /// segment at a time.
    pub retention_ms: i64,
    /// The memtable is sealed into a segment when it holds this many traces.
    pub memtable_max_traces: usize,
    /// At most this many traces wait in [`Store::append`] for the writer; further appends wait for room
    /// (backpressure when the disk is slower than ingest).
    pub max_queued_traces: usize,
}

impl StoreConfig {
    /// Defaults: 7 days of retention, memtables of 65,536 traces, 65,536 traces queued.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            retention_ms: 7 * DAY_MS,
            memtable_max_traces: 65_536,
            max_queued_traces: 65_536,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Traces stored by this append.
    pub stored: usize,
    /// Traces already stored (or repeated within the batch), not stored again.
    pub duplicates: usize,
}

/// A snapshot of the store's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub traces: u64,
    pub segments: usize,
    /// Traces not yet in a segment (the memtable and memtables being sealed).
    pub memtable_traces: usize,
    /// Segments (Parquet files and sidecars) plus WAL files.
    pub bytes_on_disk: u64,
    /// Segments' Parquet files and sidecars.
    pub segment_bytes: u64,
    /// WAL files.
    pub wal_bytes: u64,
    /// Traces of async appends waiting for the writer (at most `max_queued_traces`).
    pub queued_traces: usize,
}

/// The directories of a store.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub root: PathBuf,
    pub wal_dir: PathBuf,
    pub segment_dir: PathBuf,
}

impl Layout {
    fn new(data_dir: &Path) -> Layout {
        let root = data_dir.join("store");
        Layout { wal_dir: root.join("wal"), segment_dir: root.join("segments"), root }
    }
}

/// Where a trace lives: the part of that generation (memtable, sealing memtable or segment) and its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub generation: u64,
    pub row: u32,
}

/// Everything queries read. The writer thread adds to the memtable, the sealer swaps sealed
/// memtables for segments, retention removes segments.
#[derive(Debug)]
pub(crate) struct State {
    pub memtable: Memtable,
    /// Memtables whose segments are being written, oldest first; queryable until their segment is.
    pub sealing: Vec<Arc<Memtable>>,
    /// Segments by generation.
    pub segments: BTreeMap<u64, Arc<Segment>>,
    pub locations: IdMap<Location>,
}

/// One part of the store, as a query sees it.
enum Part<'a> {
    Memtable(&'a Memtable),
    Segment(&'a Arc<Segment>),
}

impl Part<'_> {
    fn time_range(&self) -> (i64, i64) {
        match self {
            Part::Memtable(memtable) => memtable.time_range(),
            Part::Segment(segment) => segment.time_range(),
        }
    }
}

impl State {
    fn parts(&self) -> impl Iterator<Item = Part<'_>> {
        std::iter::once(Part::Memtable(&self.memtable))
            .chain(self.sealing.iter().map(|memtable| Part::Memtable(memtable)))
            .chain(self.segments.values().map(Part::Segment))
    }

    fn part(&self, generation: u64) -> Option<Part<'_>> {
        self.parts().find(|part| match part {
            Part::Memtable(memtable) => memtable.generation == generation,
            Part::Segment(segment) => segment.generation == generation,
        })
    }
}

/// State shared by the handles and the background threads.
pub(crate) struct Shared {
    pub config: StoreConfig,
    pub layout: Layout,
    pub state: RwLock<State>,
    pub hasher: IdHasher,
    /// Set when a WAL write failed: every later append fails with this reason.
    pub poisoned: Mutex<Option<String>>,
    /// Set when the last handle is dropped: the sealer starts no new segment.
    pub closing: AtomicBool,
    /// Where every new trace is appended before it is acknowledged (the ledger), if anywhere.
    pub log: Option<Arc<dyn AppendLog>>,
    /// Where the writer publishes committed traces ([`Store::subscribe`]).
    pub committed: crate::subscribe::Committed,
    /// Held (and locked) for the store's lifetime.
    _lock: File,
}

/// The store handle. Cheap to clone; the writer thread finishes pending appends and exits when the
/// last handle is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    commands: Option<mpsc::Sender<Command>>,
    /// One permit per trace an async append may queue ([`StoreConfig::max_queued_traces`]).
    queue: Arc<Semaphore>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.commands.take();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a store thread panicked");
            }
        }
    }
}

impl Store {
    /// Opens (creating if needed) and recovers: replays the WAL, truncating a torn tail.
    /// Takes an exclusive lock on the data dir (a second open fails with [`StoreError::Locked`]).
    pub fn open(config: StoreConfig) -> Result<Store, StoreError> {
        Store::open_with_log(config, None)
    }

    /// [`Store::open`] with an append log: every new trace is appended to `log` before it is
    /// acknowledged, and traces replayed from the WAL that `log` lacks are appended during recovery.
    pub fn open_with_log(config: StoreConfig, log: Option<Arc<dyn AppendLog>>) -> Result<Store, StoreError> {
        Store::open_with_sink(config, Arc::new(open_file_sink), log)
    }

    pub(crate) fn open_with_sink(
        config: StoreConfig,
        sink_factory: Arc<SinkFactory>,
        log: Option<Arc<dyn AppendLog>>,
    ) -> Result<Store, StoreError> {
        let layout = Layout::new(&config.data_dir);
        for dir in [&layout.root, &layout.wal_dir, &layout.segment_dir] {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        sync_dir(&config.data_dir)?;
        sync_dir(&layout.root)?;
        let lock = lock_dir(&layout.root)?;
        let hasher = IdHasher::default();
        let mut locations = IdMap::default();
        let segments = open_segments(&layout.segment_dir, &hasher, &mut locations, log.as_deref())?;
        let recovered = recover_wal(&layout, &segments, &hasher, &mut locations)?;
        if let Some(log) = &log {
            append_missing_to_log(log.as_ref(), &recovered)?;
        }
        let mut sealing: Vec<Arc<Memtable>> = recovered.into_iter().map(Arc::new).collect();
        let newest_generation = segments.keys().chain(sealing.iter().map(|m| &m.generation)).max().copied();
        // The newest recovered WAL generation continues as the memtable unless a segment is newer.
        let memtable = match sealing.last() {
            Some(last) if Some(last.generation) == newest_generation => {
                let last = sealing.pop().expect("checked");
                Arc::try_unwrap(last).expect("just created")
            }
            _ => Memtable::with_room(newest_generation.map_or(1, |g| g + 1), config.memtable_max_traces),
        };
        let wal_file = wal_path(&layout.wal_dir, memtable.generation);
        let sink = sink_factory(&wal_file).map_err(|e| StoreError::io(&wal_file, e))?;
        sync_dir(&layout.wal_dir)?;
        let generation = memtable.generation;
        // Older recovered generations are sealed in the background; empty ones need no segment.
        for empty in sealing.iter().filter(|m| m.is_empty()) {
            let path = wal_path(&layout.wal_dir, empty.generation);
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
        }
        sealing.retain(|m| !m.is_empty());
        sync_dir(&layout.wal_dir)?;
        let to_seal = sealing.clone();
        let shared = Arc::new(Shared {
            config,
            layout,
            state: RwLock::new(State { memtable, sealing, segments, locations }),
            hasher,
            poisoned: Mutex::new(None),
            closing: AtomicBool::new(false),
            log,
            committed: Default::default(),
            _lock: lock,
        });
        let (seal_sender, seal_receiver) = mpsc::channel();
        for memtable in to_seal {
            seal_sender.send(SealCommand::Seal(memtable)).expect("the receiver is alive");
        }
        let (command_sender, command_receiver) = mpsc::channel();
        let writer = Writer::new(shared.clone(), sink, sink_factory, generation, seal_sender);
        let sealer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("cts-store-sealer".into())
                .spawn(move || run_sealer(&shared, seal_receiver))
        };
        let sealer = sealer.map_err(|e| StoreError::io("sealer thread", e))?;
        let writer = std::thread::Builder::new()
            .name("cts-store-wal".into())
            .spawn(move || run_writer(writer, command_receiver))
            .map_err(|e| StoreError::io("writer thread", e))?;
        let queue = Arc::new(Semaphore::new(shared.config.max_queued_traces.max(1)));
        let inner = Inner { shared, commands: Some(command_sender), queue, threads: vec![writer, sealer] };
        Ok(Store { inner: Arc::new(inner) })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        let sender = self.inner.commands.as_ref().ok_or(StoreError::Closed)?;
        sender.send(command).map_err(|_| StoreError::Closed)
    }

    /// Sends an append to the writer; `queued` (its room in the queue) is released once the writer answers.
    fn submit(
        &self,
        traces: Vec<Trace>,
        queued: Option<OwnedSemaphorePermit>,
    ) -> Result<oneshot::Receiver<Result<AppendOutcome, StoreError>>, StoreError> {
        // One pass over the traces: each is encoded, keyed and hashed while its strings are in cache.
        let (hasher, log) = (&self.shared().hasher, self.shared().log.as_deref());
        let mut encoded = EncodedBatch::with_room(traces.len());
        let mut keys = Vec::with_capacity(traces.len());
        let mut leaf_hashes = Vec::with_capacity(if log.is_some() { traces.len() } else { 0 });
        for trace in &traces {
            encoded.push(trace);
            keys.push(hasher.key(&trace.project_id, &trace.trace_id));
            if let Some(log) = log {
                leaf_hashes.push(log.leaf_hash(trace));
            }
        }
        let (done, receiver) = oneshot::channel();
        self.send(Command::Append { traces, keys, encoded, leaf_hashes, done, queued })?;
        Ok(receiver)
    }

    /// Appends traces durably (group commit). Returns only after the traces are fsynced.
    /// Idempotent on (project_id, trace_id): a trace whose id is already stored (or repeated in the
    /// batch) is not stored again. Waits first while [`StoreConfig::max_queued_traces`] traces are queued.
    pub async fn append(&self, traces: Vec<Trace>) -> Result<AppendOutcome, StoreError> {
        if traces.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let permits = traces.len().min(self.shared().config.max_queued_traces).max(1) as u32;
        let queued = self.inner.queue.clone().acquire_many_owned(permits).await.map_err(|_| StoreError::Closed)?;
        self.submit(traces, Some(queued))?.await.map_err(|_| StoreError::Closed)?
    }

    /// The same as [`Store::append`], for callers outside an async runtime (it blocks; do not call it
    /// from async code). Each caller has one append in flight, so these are not counted in the queue.
    pub fn append_blocking(&self, traces: Vec<Trace>) -> Result<AppendOutcome, StoreError> {
        if traces.is_empty() {
            return Ok(AppendOutcome::default());
        }
        self.submit(traces, None)?.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Newest-first page of traces matching the query (see [`TraceQuery`]). Never returns traces
    /// older than now − retention.
    pub fn query(&self, query: &TraceQuery) -> Result<Vec<Trace>, StoreError> {
        let cutoff = cts_model::now_ms().saturating_sub(self.shared().config.retention_ms);
        let plan = Plan::new(query, cutoff);
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(trace_id) = plan.trace_id {
            let found = self.get(&query.project_id, trace_id)?;
            return Ok(found.filter(|trace| plan.matches(trace)).into_iter().collect());
        }
        let state = self.shared().state.read();
        let mut parts: Vec<Part<'_>> = state
            .parts()
            .filter(|part| {
                let (min, max) = part.time_range();
                plan.overlaps(min, max)
            })
            .collect();
        parts.sort_by_key(|part| std::cmp::Reverse(part.time_range().1));
        let mut best: Vec<Candidate<'_>> = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            // Parts come newest first: once `limit` candidates are newer than everything left, stop.
            if best.len() >= plan.limit && best.last().is_some_and(|worst| worst.time > part.time_range().1) {
                break;
            }
            match part {
                Part::Memtable(memtable) => memtable.candidates(&plan, index, &mut best),
                Part::Segment(segment) => segment.candidates(&plan, index, &mut best)?,
            }
            best.sort_unstable_by(Candidate::newest_first);
            best.truncate(plan.limit);
        }
        let mut traces: Vec<Option<Trace>> = vec![None; best.len()];
        let mut segment_rows: BTreeMap<usize, Vec<(u32, usize)>> = BTreeMap::new();
        for (slot, candidate) in best.iter().enumerate() {
            match parts[candidate.part] {
                Part::Memtable(memtable) => traces[slot] = Some(memtable.trace(candidate.row).clone()),
                Part::Segment(_) => segment_rows.entry(candidate.part).or_default().push((candidate.row, slot)),
            }
        }
        // Each segment to read, with its (row, result slot) pairs.
        type SegmentReads = Vec<(Arc<Segment>, Vec<(u32, usize)>)>;
        let reads: SegmentReads = segment_rows
            .into_iter()
            .map(|(part, rows)| match parts[part] {
                Part::Segment(segment) => (segment.clone(), rows),
                Part::Memtable(_) => unreachable!("only segment rows are collected"),
            })
            .collect();
        drop(parts);
        drop(state);
        for (segment, mut rows) in reads {
            rows.sort_unstable();
            let fetched = segment.fetch(&rows.iter().map(|&(row, _)| row).collect::<Vec<_>>())?;
            for (trace, (_, slot)) in fetched.into_iter().zip(rows) {
                traces[slot] = Some(trace);
            }
        }
        Ok(traces.into_iter().flatten().collect())
    }

    /// One trace by id within a project (any age still retained).
    pub fn get(&self, project_id: &str, trace_id: &str) -> Result<Option<Trace>, StoreError> {
        let state = self.shared().state.read();
        let key = self.shared().hasher.key(project_id, trace_id);
        let Some(location) = state.locations.get(&key).copied() else { return Ok(None) };
        let found = match state.part(location.generation) {
            Some(Part::Memtable(memtable)) => Some(memtable.trace(location.row).clone()),
            Some(Part::Segment(segment)) => {
                let segment = segment.clone();
                drop(state);
                segment.fetch(&[location.row])?.pop()
            }
            None => None,
        };
        Ok(found.filter(|trace| trace.project_id == project_id && trace.trace_id == trace_id))
    }

    /// Seals the memtable into a segment now and waits until every pending seal is done.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (done, receiver) = oneshot::channel();
        self.send(Command::Rotate { done })?;
        receiver.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Drops whole segments entirely older than the retention (their newest trace is older than
    /// `now_ms` − retention); returns how many traces were dropped. Memtables are never dropped
    /// (queries hide their expired traces).
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64, StoreError> {
        let shared = self.shared();
        let cutoff = now_ms.saturating_sub(shared.config.retention_ms);
        let expired: Vec<u64> = {
            let state = shared.state.read();
            state.segments.values().filter(|s| s.time_range().1 < cutoff).map(|s| s.generation).collect()
        };
        if expired.is_empty() {
            return Ok(0);
        }
        if let Some(log) = &shared.log {
            log.record_expiry(cutoff).map_err(|reason| StoreError::AppendLog { reason })?;
        }
        let dropped: Vec<Arc<Segment>> = {
            let mut state = shared.state.write();
            state.locations.retain(|_, location| !expired.contains(&location.generation));
            expired.iter().filter_map(|generation| state.segments.remove(generation)).collect()
        };
        for segment in &dropped {
            for path in segment.paths() {
                fs::remove_file(path).map_err(|e| StoreError::io(path, e))?;
            }
            tracing::info!(path = %segment.path.display(), traces = segment.len(), "dropped an expired segment");
        }
        sync_dir(&shared.layout.segment_dir)?;
        Ok(dropped.iter().map(|segment| segment.len() as u64).sum())
    }

    pub fn stats(&self) -> StoreStats {
        let shared = self.shared();
        let state = shared.state.read();
        let memtable_traces = state.memtable.len() + state.sealing.iter().map(|m| m.len()).sum::<usize>();
        let segment_traces: usize = state.segments.values().map(|s| s.len()).sum();
        let segment_bytes: u64 = state.segments.values().map(|s| s.file_sizes().0 + s.file_sizes().1).sum();
        let segments = state.segments.len();
        drop(state);
        let wal_bytes: u64 = fs::read_dir(&shared.layout.wal_dir)
            .map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        StoreStats {
            traces: (memtable_traces + segment_traces) as u64,
            segments,
            memtable_traces,
            bytes_on_disk: segment_bytes + wal_bytes,
            segment_bytes,
            wal_bytes,
            queued_traces: shared.config.max_queued_traces.max(1) - self.inner.queue.available_permits(),
        }
    }

    /// Why the store refuses writes (a failed fsync or write poisoned it), or `None` while it takes them.
    pub fn refusal(&self) -> Option<String> {
        self.shared().poisoned.lock().clone()
    }
}

/// Where a file is written before it is renamed into place: `<path>.tmp`.
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    PathBuf::from(temporary)
}

/// Makes a directory's entries (created, renamed, deleted files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(dir, e))
}

fn lock_dir(root: &Path) -> Result<File, StoreError> {
    let path = root.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked { path: root.to_owned() }),
        Err(fs::TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
    }
}

/// The generation in a file name `<generation:020>.<extension>`.
pub(crate) fn generation_of(path: &Path, extension: &str) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(extension)?.strip_suffix('.')?.parse().ok()
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| StoreError::io(dir, e))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// Opens every segment and fills the id map. Leftover temporary files are deleted; so is a sidecar
/// without its Parquet file (a seal that did not finish, whose WAL file is still there, or a retention
/// drop that did not finish). A Parquet file without its sidecar (a seal whose sidecar rename was not
/// yet durable, or a segment written before sidecars existed) gets its sidecar rebuilt from its rows.
fn open_segments(
    segment_dir: &Path,
    hasher: &IdHasher,
    locations: &mut IdMap<Location>,
    log: Option<&dyn AppendLog>,
) -> Result<BTreeMap<u64, Arc<Segment>>, StoreError> {
    let mut parquet_files = BTreeSet::new();
    let mut sidecars = BTreeSet::new();
    for path in list_dir(segment_dir)? {
        if let Some(generation) = generation_of(&path, "parquet") {
            parquet_files.insert(generation);
        } else if let Some(generation) = generation_of(&path, "traces") {
            sidecars.insert(generation);
        } else if path.extension().is_some_and(|e| e == "tmp") {
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
        }
    }
    for &generation in sidecars.difference(&parquet_files) {
        let path = stored_path(segment_dir, generation);
        tracing::warn!(path = %path.display(), "deleting a stored-traces file without its Parquet file");
        fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
    }
    let mut segments = BTreeMap::new();
    for &generation in &parquet_files {
        if !sidecars.contains(&generation) {
            rebuild_sidecar(segment_dir, generation)?;
            if let Some(log) = log {
                let paths = [stored_path(segment_dir, generation), segment_path(segment_dir, generation)];
                let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
                log.segment_files_written(&paths).map_err(|reason| StoreError::AppendLog { reason })?;
            }
        }
        let (segment, keys) = Segment::open(&segment_path(segment_dir, generation), generation, hasher)?;
        for (row, key) in keys.into_iter().enumerate() {
            locations.insert(key, Location { generation, row: row as u32 });
        }
        segments.insert(generation, Arc::new(segment));
    }
    sync_dir(segment_dir)?;
    Ok(segments)
}

/// Writes the sidecar of a segment from its Parquet file (temporary file, fsync, rename).
fn rebuild_sidecar(segment_dir: &Path, generation: u64) -> Result<(), StoreError> {
    let parquet = segment_path(segment_dir, generation);
    tracing::warn!(path = %parquet.display(), "rebuilding the missing stored-traces file of a segment");
    let mut records = RecordBuffer::default();
    read_parquet_traces(&parquet)?.iter().for_each(|trace| records.push_trace(trace));
    let path = stored_path(segment_dir, generation);
    let temporary = temporary_path(&path);
    write_stored(&temporary, &records.records())?;
    fs::rename(&temporary, &path).map_err(|e| StoreError::io(&path, e))
}

/// Appends to the log, in WAL order, the recovered traces it does not hold (their appends were never
/// acknowledged: the process stopped between the WAL fsync and the log append).
fn append_missing_to_log(log: &dyn AppendLog, memtables: &[Memtable]) -> Result<(), StoreError> {
    let to_log = |reason| StoreError::AppendLog { reason };
    let mut missing = Vec::new();
    for memtable in memtables {
        for row in 0..memtable.len() as u32 {
            let trace = memtable.trace(row);
            if !log.contains(&trace.project_id, &trace.trace_id).map_err(to_log)? {
                missing.push((trace, log.leaf_hash(trace)));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    tracing::warn!(traces = missing.len(), "appending traces replayed from the WAL to the append log");
    let entries: Vec<LogEntry<'_>> = missing
        .iter()
        .map(|(trace, leaf_hash)| LogEntry {
            project_id: &trace.project_id,
            trace_id: &trace.trace_id,
            time: trace.time,
            leaf_hash: *leaf_hash,
        })
        .collect();
    log.append(&entries).map_err(|refusal| to_log(refusal.to_string()))
}

/// Replays the WAL files no segment covers into memtables (oldest first), deleting the covered ones.
fn recover_wal(
    layout: &Layout,
    segments: &BTreeMap<u64, Arc<Segment>>,
    hasher: &IdHasher,
    locations: &mut IdMap<Location>,
) -> Result<Vec<Memtable>, StoreError> {
    let mut memtables = Vec::new();
    for path in list_dir(&layout.wal_dir)? {
        let Some(generation) = generation_of(&path, "wal") else { continue };
        if segments.contains_key(&generation) {
            fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            continue;
        }
        let mut memtable = Memtable::new(generation);
        // The traces no earlier generation (or earlier record) holds.
        let (mut traces, mut keys) = (Vec::new(), Vec::new());
        for trace in wal::recover(&path)? {
            let key = hasher.key(&trace.project_id, &trace.trace_id);
            if let std::collections::hash_map::Entry::Vacant(entry) = locations.entry(key) {
                entry.insert(Location { generation, row: traces.len() as u32 });
                traces.push(trace);
                keys.push(key);
            }
        }
        // The memtable keeps each trace's binary record (JSON records of older WAL files are re-encoded).
        memtable.push_decoded(traces, &keys);
        memtables.push(memtable);
    }
    sync_dir(&layout.wal_dir)?;
    Ok(memtables)
}
