//! One project's log: the append-only entries file, the tree kept in memory, lookups by trace id,
//! and the signed checkpoint history.
//!
//! `<dir>/entries`: one frame per leaf (see [`crate::frame`]), payload `[i64 LE time][32-byte leaf
//! hash][trace id, UTF-8]`, fsynced before the append returns. `<dir>/checkpoints`: one frame per
//! signed checkpoint note, oldest first; the last is the latest. A torn tail of either is truncated at open.
//!
//! Memory: the hashes of complete subtrees of 256 leaves and more (tile levels 1 and up: about 64
//! bytes per 256 leaves), the leaf hashes of the last, incomplete tile, the file offset of every 256th
//! entry, and a map from a 64-bit hash of each trace id to its leaf index (ids are compared against the
//! file on lookup). Leaf hashes below the last tile are read from the file, one tile at a time.

use crate::error::LedgerError;
use crate::frame::{push_frame, FrameReader};
use crate::merkle::{self, Hash, HashSource};
use crate::note::{Checkpoint, NoteSigner};
use parking_lot::{Mutex, RwLock};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Leaves per tile (C2SP tlog-tiles), and its height.
pub const TILE_WIDTH: u64 = 256;
pub const TILE_HEIGHT: u32 = 8;
const ENTRY_FIXED_LEN: usize = 8 + 32;

/// A leaf to append: the trace's time, its leaf hash and its id.
pub(crate) type NewLeaf<'a> = (i64, Hash, &'a str);

/// One leaf as the entries file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntryRecord {
    pub time: i64,
    pub leaf_hash: Hash,
    pub trace_id: String,
}

impl LogEntryRecord {
    fn encode(time: i64, leaf_hash: &Hash, trace_id: &str, out: &mut Vec<u8>) {
        let mut payload = Vec::with_capacity(ENTRY_FIXED_LEN + trace_id.len());
        payload.extend_from_slice(&time.to_le_bytes());
        payload.extend_from_slice(leaf_hash);
        payload.extend_from_slice(trace_id.as_bytes());
        push_frame(&payload, out);
    }

    fn decode(payload: &[u8]) -> Option<LogEntryRecord> {
        if payload.len() < ENTRY_FIXED_LEN {
            return None;
        }
        let time = i64::from_le_bytes(payload[..8].try_into().ok()?);
        let leaf_hash = payload[8..40].try_into().ok()?;
        let trace_id = std::str::from_utf8(&payload[40..]).ok()?.to_owned();
        Some(LogEntryRecord { time, leaf_hash, trace_id })
    }
}

/// The entries of an entries file, read without changing it: every valid entry, and whether bytes
/// after them were unreadable (a torn or damaged tail).
pub fn read_entries_file(path: &Path) -> Result<(Vec<LogEntryRecord>, bool), LedgerError> {
    let file = File::open(path).map_err(|e| LedgerError::io(path, e))?;
    let len = file.metadata().map_err(|e| LedgerError::io(path, e))?.len();
    let mut reader = FrameReader::new(BufReader::with_capacity(1 << 20, file));
    let mut entries = Vec::new();
    while let Some(payload) = reader.next_frame().map_err(|e| LedgerError::io(path, e))? {
        entries.push(LogEntryRecord::decode(payload).ok_or_else(|| LedgerError::corrupt(path, "a bad entry"))?);
    }
    Ok((entries, reader.valid_len < len))
}

/// The notes of a checkpoints file, oldest first, read without changing it, and whether it has a torn tail.
pub fn read_checkpoints_file(path: &Path) -> Result<(Vec<String>, bool), LedgerError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(LedgerError::io(path, e)),
    };
    let len = file.metadata().map_err(|e| LedgerError::io(path, e))?.len();
    let mut reader = FrameReader::new(BufReader::new(file));
    let mut notes = Vec::new();
    while let Some(payload) = reader.next_frame().map_err(|e| LedgerError::io(path, e))? {
        notes.push(String::from_utf8(payload.to_vec()).map_err(|_| LedgerError::corrupt(path, "a note is not UTF-8"))?);
    }
    Ok((notes, reader.valid_len < len))
}

/// The tree: complete subtrees of height ≥ 8 and the leaves of the incomplete last tile.
#[derive(Debug, Default)]
struct Tree {
    size: u64,
    /// `upper[k][i]`: the subtree of height 8 + k with index i.
    upper: Vec<Vec<Hash>>,
    /// The leaf hashes of tile `size / 256` (fewer than 256).
    tail: Vec<Hash>,
}

impl Tree {
    fn push(&mut self, leaf: Hash) {
        self.tail.push(leaf);
        self.size += 1;
        if self.tail.len() as u64 == TILE_WIDTH {
            let mut carry = power_of_two_root(&self.tail);
            self.tail.clear();
            for level in 0.. {
                if self.upper.len() == level {
                    self.upper.push(Vec::new());
                }
                self.upper[level].push(carry);
                let nodes = &self.upper[level];
                if nodes.len() % 2 == 1 {
                    break;
                }
                carry = merkle::node_hash(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
            }
        }
    }
}

/// The root of a power-of-two number of leaves.
fn power_of_two_root(leaves: &[Hash]) -> Hash {
    let height = leaves.len().trailing_zeros();
    match merkle::subtree_levels(leaves, height).pop() {
        Some(level) => level[0],
        None => leaves[0],
    }
}

/// Trace id → leaf index, by a 64-bit hash of the id; ids sharing a hash (or appended again after
/// expiring) keep every index, newest last.
#[derive(Debug, Default)]
struct IdIndex {
    hasher: ahash::RandomState,
    single: HashMap<u64, u64, ahash::RandomState>,
    shared: HashMap<u64, Vec<u64>, ahash::RandomState>,
}

impl IdIndex {
    fn insert(&mut self, trace_id: &str, index: u64) {
        let key = self.hasher.hash_one(trace_id);
        if let Some(indexes) = self.shared.get_mut(&key) {
            indexes.push(index);
        } else if let Some(previous) = self.single.insert(key, index) {
            self.single.remove(&key);
            self.shared.insert(key, vec![previous, index]);
        }
    }

    /// The candidate indexes of a trace id, newest first.
    fn candidates(&self, trace_id: &str) -> Vec<u64> {
        let key = self.hasher.hash_one(trace_id);
        match self.shared.get(&key) {
            Some(indexes) => indexes.iter().rev().copied().collect(),
            None => self.single.get(&key).copied().into_iter().collect(),
        }
    }
}

#[derive(Debug, Default)]
struct LogState {
    tree: Tree,
    /// The file offset of entry `256 * t`, for every tile `t` up to and including the last one.
    tile_offsets: Vec<u64>,
    /// The end of the durable entries.
    end: u64,
    ids: IdIndex,
}

/// The latest signed checkpoint and the history file.
struct Checkpoints {
    file: File,
    latest: Option<(Checkpoint, String)>,
}

/// One project's log.
/// Leaves on disk but not yet part of the tree: where each one's record ends, from the old end.
#[must_use = "written leaves are published or withdrawn"]
pub(crate) struct WrittenLeaves {
    ends: Vec<u64>,
}

pub(crate) struct ProjectLog {
    entries_path: PathBuf,
    checkpoints_path: PathBuf,
    /// Appends go through this handle (the store's writer thread is the only appender).
    appender: Mutex<File>,
    reader: File,
    state: RwLock<LogState>,
    checkpoints: Mutex<Checkpoints>,
}

fn open_append(path: &Path) -> Result<File, LedgerError> {
    OpenOptions::new().create(true).read(true).append(true).open(path).map_err(|e| LedgerError::io(path, e))
}

/// Truncates a torn tail after `valid_len` bytes (and fsyncs), logging it.
fn truncate_torn_tail(file: &File, path: &Path, valid_len: u64) -> Result<(), LedgerError> {
    let len = file.metadata().map_err(|e| LedgerError::io(path, e))?.len();
    if len > valid_len {
        tracing::warn!(path = %path.display(), truncated_bytes = len - valid_len, "truncating a torn ledger tail");
        file.set_len(valid_len).and_then(|()| file.sync_all()).map_err(|e| LedgerError::io(path, e))?;
    }
    Ok(())
}

impl ProjectLog {
    /// Opens (creating) the log in `dir`: replays the entries, truncates torn tails, and checks that
    /// the entries extend the latest checkpoint.
    pub(crate) fn open(dir: &Path) -> Result<ProjectLog, LedgerError> {
        std::fs::create_dir_all(dir).map_err(|e| LedgerError::io(dir, e))?;
        let entries_path = dir.join("entries");
        let checkpoints_path = dir.join("checkpoints");
        let appender = open_append(&entries_path)?;
        let mut state = LogState { tile_offsets: vec![0], ..LogState::default() };
        let mut reader = FrameReader::new(BufReader::with_capacity(1 << 20, &appender));
        loop {
            let offset = reader.valid_len;
            let Some(payload) = reader.next_frame().map_err(|e| LedgerError::io(&entries_path, e))? else { break };
            let entry =
                LogEntryRecord::decode(payload).ok_or_else(|| LedgerError::corrupt(&entries_path, "a bad entry"))?;
            state.add(offset, &entry.trace_id, entry.leaf_hash);
        }
        state.end = reader.valid_len;
        truncate_torn_tail(&appender, &entries_path, state.end)?;
        let reader = File::open(&entries_path).map_err(|e| LedgerError::io(&entries_path, e))?;
        let (notes, _) = read_checkpoints_file(&checkpoints_path)?;
        let checkpoints_file = open_append(&checkpoints_path)?;
        let valid_len: u64 = notes.iter().map(|note| (crate::frame::HEADER_LEN + note.len()) as u64).sum();
        truncate_torn_tail(&checkpoints_file, &checkpoints_path, valid_len)?;
        let latest = match notes.last() {
            Some(note) => {
                let body = note.split_once("\n\n").map_or("", |(body, _)| body);
                Some((Checkpoint::parse_body(&format!("{body}\n"))?, note.clone()))
            }
            None => None,
        };
        let log = ProjectLog {
            entries_path,
            checkpoints_path,
            appender: Mutex::new(appender),
            reader,
            state: RwLock::new(state),
            checkpoints: Mutex::new(Checkpoints { file: checkpoints_file, latest }),
        };
        log.check_extends_latest_checkpoint()?;
        Ok(log)
    }

    fn check_extends_latest_checkpoint(&self) -> Result<(), LedgerError> {
        let checkpoints = self.checkpoints.lock();
        let Some((checkpoint, _)) = &checkpoints.latest else { return Ok(()) };
        let state = self.state.read();
        let extends = checkpoint.size <= state.tree.size
            && merkle::root(&View::new(self, &state), checkpoint.size)? == checkpoint.root;
        if !extends {
            return Err(LedgerError::corrupt(
                &self.entries_path,
                format!("the entries do not extend the latest checkpoint (size {})", checkpoint.size),
            ));
        }
        Ok(())
    }

    /// Writes leaves durably (write, fsync) without making them visible: [`ProjectLog::publish`]
    /// does, or [`ProjectLog::withdraw`] takes them back. A failed write is cut off the file again.
    pub(crate) fn write(&self, entries: &[NewLeaf<'_>]) -> Result<WrittenLeaves, LedgerError> {
        let mut bytes = Vec::with_capacity(entries.len() * 96);
        let mut ends = Vec::with_capacity(entries.len());
        for (time, leaf_hash, trace_id) in entries {
            LogEntryRecord::encode(*time, leaf_hash, trace_id, &mut bytes);
            ends.push(bytes.len() as u64);
        }
        let appender = self.appender.lock();
        if let Err(error) = (&*appender).write_all(&bytes).and_then(|()| appender.sync_data()) {
            // What part of the leaves reached the file goes again; a later append must not follow it.
            if let Err(cut) = appender.set_len(self.state.read().end) {
                tracing::error!(error = %cut, path = %self.entries_path.display(), "cutting a failed append back failed");
            }
            return Err(LedgerError::io(&self.entries_path, error));
        }
        Ok(WrittenLeaves { ends })
    }

    /// Cuts leaves written but not published off the file (durably).
    pub(crate) fn withdraw(&self) -> Result<(), LedgerError> {
        let appender = self.appender.lock();
        appender
            .set_len(self.state.read().end)
            .and_then(|()| appender.sync_data())
            .map_err(|e| LedgerError::io(&self.entries_path, e))
    }

    /// Makes leaves [`ProjectLog::write`] wrote visible.
    pub(crate) fn publish(&self, entries: &[NewLeaf<'_>], written: WrittenLeaves) {
        let WrittenLeaves { ends } = written;
        let mut state = self.state.write();
        let start = state.end;
        let mut offset = start;
        for ((_, leaf_hash, trace_id), end) in entries.iter().zip(ends) {
            state.add(offset, trace_id, *leaf_hash);
            offset = start + end;
        }
        state.end = offset;
    }

    pub(crate) fn size(&self) -> u64 {
        self.state.read().tree.size
    }

    /// The leaf index of a trace id (the newest, if the id was appended more than once).
    pub(crate) fn index_of(&self, trace_id: &str) -> Result<Option<u64>, LedgerError> {
        let state = self.state.read();
        let view = View::new(self, &state);
        for index in state.ids.candidates(trace_id) {
            if view.entry(index)?.trace_id == trace_id {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// Runs `read` on a consistent view of the tree.
    pub(crate) fn with_view<T>(
        &self,
        read: impl FnOnce(&View<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let state = self.state.read();
        read(&View::new(self, &state))
    }

    pub(crate) fn latest_checkpoint(&self) -> Option<(Checkpoint, String)> {
        self.checkpoints.lock().latest.clone()
    }

    /// Signs a checkpoint of the current size if the log grew since the latest one; returns it.
    /// Every leaf of the tree is durable, and sizes only grow, so checkpoints are always consistent.
    pub(crate) fn sign_checkpoint(&self, origin: &str, signer: &NoteSigner) -> Result<Option<Checkpoint>, LedgerError> {
        let mut checkpoints = self.checkpoints.lock();
        let (size, root) = {
            let state = self.state.read();
            let size = state.tree.size;
            if size == 0 || checkpoints.latest.as_ref().is_some_and(|(latest, _)| latest.size >= size) {
                return Ok(None);
            }
            (size, merkle::root(&View::new(self, &state), size)?)
        };
        let checkpoint = Checkpoint { origin: origin.to_owned(), size, root };
        let note = signer.sign(&checkpoint.body());
        let mut frame = Vec::with_capacity(note.len() + 8);
        push_frame(note.as_bytes(), &mut frame);
        (&checkpoints.file)
            .write_all(&frame)
            .and_then(|()| checkpoints.file.sync_data())
            .map_err(|e| LedgerError::io(&self.checkpoints_path, e))?;
        checkpoints.latest = Some((checkpoint.clone(), note));
        Ok(Some(checkpoint))
    }
}

impl LogState {
    /// Adds the leaf whose entry starts at `offset`.
    fn add(&mut self, offset: u64, trace_id: &str, leaf_hash: Hash) {
        let index = self.tree.size;
        if index > 0 && index.is_multiple_of(TILE_WIDTH) {
            self.tile_offsets.push(offset);
        }
        self.tree.push(leaf_hash);
        self.ids.insert(trace_id, index);
    }
}

/// A read-locked view of a log: subtree hashes (from memory, or one tile of the entries file),
/// entries, tiles. Caches the last tile it read.
pub(crate) struct View<'a> {
    log: &'a ProjectLog,
    state: &'a LogState,
    cached_tile: RefCell<Option<(u64, Vec<LogEntryRecord>)>>,
}

impl<'a> View<'a> {
    fn new(log: &'a ProjectLog, state: &'a LogState) -> View<'a> {
        View { log, state, cached_tile: RefCell::new(None) }
    }

    pub(crate) fn size(&self) -> u64 {
        self.state.tree.size
    }

    /// The entries of tile `tile` (256, or fewer for the last tile), read from the file.
    pub(crate) fn tile_entries(&self, tile: u64) -> Result<Vec<LogEntryRecord>, LedgerError> {
        if let Some((cached, entries)) = &*self.cached_tile.borrow() {
            if *cached == tile {
                return Ok(entries.clone());
            }
        }
        let offsets = &self.state.tile_offsets;
        let start = *offsets.get(tile as usize).filter(|_| tile * TILE_WIDTH < self.size()).ok_or_else(|| {
            LedgerError::OutOfRange(format!("tile {tile} is beyond the log's {} leaves", self.size()))
        })?;
        let end = offsets.get(tile as usize + 1).copied().unwrap_or(self.state.end);
        let path = &self.log.entries_path;
        let mut bytes = vec![0; (end - start) as usize];
        self.log.reader.read_exact_at(&mut bytes, start).map_err(|e| LedgerError::io(path, e))?;
        let frames = crate::frame::frames_of(&bytes)
            .map_err(|at| LedgerError::corrupt(path, format!("a damaged entry at byte {}", start + at as u64)))?;
        let entries = frames
            .into_iter()
            .map(|payload| LogEntryRecord::decode(payload).ok_or_else(|| LedgerError::corrupt(path, "a bad entry")))
            .collect::<Result<Vec<_>, _>>()?;
        *self.cached_tile.borrow_mut() = Some((tile, entries.clone()));
        Ok(entries)
    }

    pub(crate) fn entry(&self, index: u64) -> Result<LogEntryRecord, LedgerError> {
        let entries = self.tile_entries(index / TILE_WIDTH)?;
        entries
            .into_iter()
            .nth((index % TILE_WIDTH) as usize)
            .ok_or_else(|| LedgerError::OutOfRange(format!("leaf {index} is beyond the log")))
    }

    /// The leaf hashes of tile `tile`.
    fn tile_leaves(&self, tile: u64) -> Result<Vec<Hash>, LedgerError> {
        if tile == self.size() / TILE_WIDTH {
            return Ok(self.state.tree.tail.clone());
        }
        Ok(self.tile_entries(tile)?.into_iter().map(|entry| entry.leaf_hash).collect())
    }

    /// The hashes of tile `index` at tile level `level` (`width` of them): the nodes of height
    /// `8 * level` starting at node `256 * index`.
    pub(crate) fn hash_tile(&self, level: u32, index: u64, width: u64) -> Result<Vec<Hash>, LedgerError> {
        let height = level * TILE_HEIGHT;
        let available = if height >= 64 { 0 } else { self.size() >> height };
        let first = index.checked_mul(TILE_WIDTH).filter(|first| first + width <= available).ok_or_else(|| {
            LedgerError::OutOfRange(format!("tile {level}/{index} of width {width} is beyond the log"))
        })?;
        if level == 0 {
            return Ok(self.tile_leaves(index)?[..width as usize].to_vec());
        }
        let nodes = &self.state.tree.upper[(height - TILE_HEIGHT) as usize];
        Ok(nodes[first as usize..(first + width) as usize].to_vec())
    }
}

impl HashSource for View<'_> {
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, LedgerError> {
        let out_of_range = || LedgerError::OutOfRange(format!("subtree {level}/{index} is beyond the log"));
        if level >= TILE_HEIGHT {
            let nodes = self.state.tree.upper.get((level - TILE_HEIGHT) as usize).ok_or_else(out_of_range)?;
            return nodes.get(index as usize).copied().ok_or_else(out_of_range);
        }
        let first_leaf = index << level;
        if first_leaf + (1 << level) > self.size() {
            return Err(out_of_range());
        }
        let leaves = self.tile_leaves(first_leaf / TILE_WIDTH)?;
        let start = (first_leaf % TILE_WIDTH) as usize;
        Ok(power_of_two_root(&leaves[start..start + (1 << level)]))
    }
}

#[cfg(test)]
mod tests;
