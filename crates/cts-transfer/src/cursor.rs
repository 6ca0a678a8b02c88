//! Durable delivery cursors, `<data_dir>/transfer/cursors.json`, replaced atomically (`cts-durable`).
//!
//! Per tracker id: for trace files, the start of the next window to deliver and a fingerprint of each recently
//! delivered window (to notice traces that arrive late); for the SIEM stream, the start of the next window to
//! send; for trackers with `is_support_validate`, where their digest chain stands (see [`DigestCursor`]). A
//! cursor moves only after what it covers has been written.

use crate::digest::{DigestLink, FileRecord};
use crate::error::TransferError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const VERSION: u32 = 1;

/// Which traces a delivered window held: their number and the XOR of their ids' hashes, so a window that gained a
/// trace (or, with retention, lost one) reads differently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub count: usize,
    pub xor: String,
}

impl Fingerprint {
    pub fn of<'a>(trace_ids: impl IntoIterator<Item = &'a str>) -> Fingerprint {
        let mut xor = [0u8; 16];
        let mut count = 0;
        for id in trace_ids {
            count += 1;
            for (acc, byte) in xor.iter_mut().zip(Sha256::digest(id.as_bytes())) {
                *acc ^= byte;
            }
        }
        Fingerprint { count, xor: hex::encode(xor) }
    }
}

/// Where a tracker's trace file delivery stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCursor {
    /// Windows starting before this are delivered.
    pub next_window_ms: i64,
    /// Recently delivered windows (by start), checked again for late traces.
    pub delivered: BTreeMap<i64, Fingerprint>,
    /// The digest chain, while the tracker has `is_support_validate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestCursor>,
}

/// Where a tracker's digest chain stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestCursor {
    /// The start of the next period to digest: periods starting before it have their digest written.
    pub next_period_ms: i64,
    /// The last digest written (the chain head the next one links to); `None` before the first.
    pub head: Option<DigestLink>,
    /// The files (as last written) of each delivered window not yet digested, by window start; empty windows
    /// have no entry.
    pub files: BTreeMap<i64, Vec<FileRecord>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursors {
    version: u32,
    files: BTreeMap<String, FileCursor>,
    /// Per tracker id, the start of the next window to stream.
    stream: BTreeMap<String, i64>,
}

/// The cursors of every tracker, in memory and on disk.
#[derive(Debug)]
pub struct CursorStore {
    path: PathBuf,
    cursors: Mutex<Cursors>,
}

impl CursorStore {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("transfer").join("cursors.json")
    }

    pub fn open(data_dir: &Path) -> Result<CursorStore, TransferError> {
        let path = CursorStore::path(data_dir);
        let cursors = match std::fs::read(&path) {
            Ok(bytes) => {
                let cursors: Cursors = serde_json::from_slice(&bytes)
                    .map_err(|e| TransferError::CorruptCursors { path: path.clone(), reason: e.to_string() })?;
                if cursors.version != VERSION {
                    let reason = format!("unsupported version {}", cursors.version);
                    return Err(TransferError::CorruptCursors { path, reason });
                }
                cursors
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Cursors { version: VERSION, ..Cursors::default() },
            Err(source) => return Err(TransferError::Cursors { path, source }),
        };
        Ok(CursorStore { path, cursors: Mutex::new(cursors) })
    }

    pub fn files(&self, tracker_id: &str) -> Option<FileCursor> {
        self.lock().files.get(tracker_id).cloned()
    }

    pub fn stream(&self, tracker_id: &str) -> Option<i64> {
        self.lock().stream.get(tracker_id).copied()
    }

    pub fn set_files(&self, tracker_id: &str, cursor: FileCursor) -> Result<(), TransferError> {
        self.change(|cursors| cursors.files.insert(tracker_id.to_owned(), cursor.clone()) != Some(cursor))
    }

    pub fn set_stream(&self, tracker_id: &str, next_window_ms: i64) -> Result<(), TransferError> {
        self.change(|cursors| cursors.stream.insert(tracker_id.to_owned(), next_window_ms) != Some(next_window_ms))
    }

    /// Forgets the cursors of trackers that no longer exist.
    pub fn retain(&self, tracker_ids: &BTreeSet<String>) -> Result<(), TransferError> {
        self.change(|cursors| {
            let before = cursors.files.len() + cursors.stream.len();
            cursors.files.retain(|id, _| tracker_ids.contains(id));
            cursors.stream.retain(|id, _| tracker_ids.contains(id));
            before != cursors.files.len() + cursors.stream.len()
        })
    }

    /// Applies `f`; when it reports a change, writes the file before returning.
    fn change(&self, f: impl FnOnce(&mut Cursors) -> bool) -> Result<(), TransferError> {
        let mut cursors = self.lock();
        if !f(&mut cursors) {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&*cursors).expect("cursors serialize");
        cts_durable::write_atomically(&self.path, &bytes)
            .map_err(|source| TransferError::Cursors { path: self.path.clone(), source })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cursors> {
        self.cursors.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_order_and_tell_sets_apart() {
        assert_eq!(Fingerprint::of(["a", "b", "c"]), Fingerprint::of(["c", "a", "b"]));
        assert_ne!(Fingerprint::of(["a", "b"]), Fingerprint::of(["a", "b", "c"]));
        assert_ne!(Fingerprint::of(["a", "b"]), Fingerprint::of(["a", "d"]));
        assert_eq!(Fingerprint::of([]).count, 0);
    }

    #[test]
    fn cursors_survive_reopening_and_deleted_trackers_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = CursorStore::open(dir.path()).unwrap();
        let digest = DigestCursor {
            next_period_ms: 0,
            head: Some(DigestLink { key: "d0".into(), sha256: "00".into() }),
            files: [(300, vec![FileRecord { key: "f".into(), sha256: "11".into(), trace_count: 1 }])].into(),
        };
        let cursor =
            FileCursor { next_window_ms: 600, delivered: [(300, Fingerprint::of(["x"]))].into(), digest: Some(digest) };
        store.set_files("t1", cursor.clone()).unwrap();
        store.set_files("t2", FileCursor::default()).unwrap();
        store.set_stream("t1", 900).unwrap();
        let reopened = CursorStore::open(dir.path()).unwrap();
        assert_eq!(reopened.files("t1"), Some(cursor));
        assert_eq!(reopened.stream("t1"), Some(900));
        reopened.retain(&["t2".to_owned()].into()).unwrap();
        let reopened = CursorStore::open(dir.path()).unwrap();
        assert_eq!((reopened.files("t1"), reopened.stream("t1")), (None, None));
        assert!(reopened.files("t2").is_some());

        std::fs::write(CursorStore::path(dir.path()), b"{not json").unwrap();
        assert!(matches!(CursorStore::open(dir.path()), Err(TransferError::CorruptCursors { .. })));
    }
}
