//! Delivery history: per tracker, the last [`HISTORY_LIMIT`] delivery cycles that did something or failed
//! (what was written, streamed, digested and expired, or why delivery failed), newest first, for the console and
//! `GET /v3/{project_id}/trackers/{tracker_name}/deliveries`.
//!
//! On disk: `<data_dir>/transfer/deliveries.jsonl`, one JSON object per line, `{"tracker_id":..., <Delivery>}`,
//! appended and fsynced before [`DeliveryHistory::record`] returns. A crash mid-append leaves a torn last line;
//! opening cuts it off (an unreadable line anywhere else is corruption and an error). The file is compacted —
//! rewritten with only the entries kept, through `cts-durable` (temp, fsync, rename, directory fsync) — when it
//! holds twice as many lines as are kept (at least 2 × [`HISTORY_LIMIT`]), and at once when the history of
//! deleted trackers is dropped ([`DeliveryHistory::retain`]).

use crate::error::TransferError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The most entries kept per tracker.
pub const HISTORY_LIMIT: usize = 200;

/// How a tracker's delivery cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOutcome {
    Delivered,
    Failed,
}

/// Why a cycle failed: the tracker status's `detail` (`bucketPolicyError`, `noBucket`, `kmsKeyError`, or
/// `streamError` for the SIEM stream) and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFailure {
    pub detail: String,
    pub reason: String,
}

/// One tracker's delivery cycle. Counts include what was done before a failure cut the cycle short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// When the cycle ran, UTC milliseconds.
    pub time_ms: i64,
    pub outcome: DeliveryOutcome,
    pub windows_delivered: usize,
    /// Delivered windows written again because late traces changed them.
    pub windows_rewritten: usize,
    pub files_written: usize,
    pub traces_written: usize,
    pub digests_written: usize,
    /// Files deleted because they outlived the tracker's `bucket_lifecycle`.
    pub files_expired: usize,
    pub windows_streamed: usize,
    pub traces_streamed: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeliveryFailure>,
}

/// A line of the file, as written.
#[derive(Serialize)]
struct LineOut<'a> {
    tracker_id: &'a str,
    #[serde(flatten)]
    delivery: &'a Delivery,
}

/// A line of the file, as read.
#[derive(Deserialize)]
struct LineIn {
    tracker_id: String,
    #[serde(flatten)]
    delivery: Delivery,
}

struct History {
    /// Per tracker id, oldest first, at most [`HISTORY_LIMIT`].
    entries: HashMap<String, VecDeque<Delivery>>,
    /// The file, open for appending.
    file: File,
    /// Lines in the file (kept entries and those already dropped from memory).
    lines: usize,
}

impl History {
    fn kept(&self) -> usize {
        self.entries.values().map(VecDeque::len).sum()
    }
}

/// The delivery history of every tracker, in memory and on disk; share it in an `Arc` (the engine records, the API
/// reads).
pub struct DeliveryHistory {
    path: PathBuf,
    history: Mutex<History>,
}

impl std::fmt::Debug for DeliveryHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryHistory").field("path", &self.path).finish_non_exhaustive()
    }
}

impl DeliveryHistory {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("transfer").join("deliveries.jsonl")
    }

    /// Reads the history under `data_dir` (none yet: empty), cutting off a torn last line.
    pub fn open(data_dir: &Path) -> Result<DeliveryHistory, TransferError> {
        let path = DeliveryHistory::path(data_dir);
        let io_error = |source| TransferError::History { path: path.clone(), source };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(io_error(source)),
        };
        let (lines, valid_len) = read_lines(&path, &bytes)?;
        let mut entries: HashMap<String, VecDeque<Delivery>> = HashMap::new();
        for line in &lines {
            push_bounded(entries.entry(line.tracker_id.clone()).or_default(), line.delivery.clone());
        }
        std::fs::create_dir_all(path.parent().expect("the path has a parent")).map_err(io_error)?;
        let file = OpenOptions::new().append(true).create(true).mode(0o600).open(&path).map_err(io_error)?;
        if valid_len < bytes.len() {
            tracing::warn!(path = %path.display(), cut = bytes.len() - valid_len, "delivery history: torn last line cut");
            file.set_len(valid_len as u64).and_then(|()| file.sync_all()).map_err(io_error)?;
        }
        let history = History { entries, file, lines: lines.len() };
        Ok(DeliveryHistory { path, history: Mutex::new(history) })
    }

    /// Records a cycle of the tracker `tracker_id`: on disk before it returns.
    pub fn record(&self, tracker_id: &str, delivery: Delivery) -> Result<(), TransferError> {
        let mut history = self.lock();
        let mut line = serde_json::to_vec(&LineOut { tracker_id, delivery: &delivery }).expect("entries serialize");
        line.push(b'\n');
        history
            .file
            .write_all(&line)
            .and_then(|()| history.file.sync_data())
            .map_err(|source| TransferError::History { path: self.path.clone(), source })?;
        history.lines += 1;
        push_bounded(history.entries.entry(tracker_id.to_owned()).or_default(), delivery);
        if history.lines >= 2 * history.kept().max(HISTORY_LIMIT) {
            self.compact(&mut history)?;
        }
        Ok(())
    }

    /// The tracker's last `limit` cycles, newest first.
    pub fn recent(&self, tracker_id: &str, limit: usize) -> Vec<Delivery> {
        let history = self.lock();
        history.entries.get(tracker_id).map(|kept| kept.iter().rev().take(limit).cloned().collect()).unwrap_or_default()
    }

    /// Drops the history of trackers that no longer exist (from the file too).
    pub fn retain(&self, tracker_ids: &BTreeSet<String>) -> Result<(), TransferError> {
        let mut history = self.lock();
        let before = history.entries.len();
        history.entries.retain(|id, _| tracker_ids.contains(id));
        if history.entries.len() == before {
            return Ok(());
        }
        self.compact(&mut history)
    }

    /// Rewrites the file with only the entries kept, and appends to the new file from then on.
    fn compact(&self, history: &mut History) -> Result<(), TransferError> {
        let io_error = |source| TransferError::History { path: self.path.clone(), source };
        let mut bytes = Vec::new();
        let mut trackers: Vec<_> = history.entries.iter().collect();
        trackers.sort_by(|a, b| a.0.cmp(b.0));
        for (tracker_id, kept) in trackers {
            for delivery in kept {
                serde_json::to_writer(&mut bytes, &LineOut { tracker_id, delivery }).expect("entries serialize");
                bytes.push(b'\n');
            }
        }
        cts_durable::write_atomically(&self.path, &bytes).map_err(io_error)?;
        history.file = OpenOptions::new().append(true).open(&self.path).map_err(io_error)?;
        history.lines = history.kept();
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn push_bounded(kept: &mut VecDeque<Delivery>, delivery: Delivery) {
    if kept.len() == HISTORY_LIMIT {
        kept.pop_front();
    }
    kept.push_back(delivery);
}

/// The lines of the file and the length of its valid part: a last line that is incomplete or unreadable (a torn
/// append) is left out; an unreadable line before it is corruption.
fn read_lines(path: &Path, bytes: &[u8]) -> Result<(Vec<LineIn>, usize), TransferError> {
    let mut lines = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let (text, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(end) => (&rest[..end], offset + end + 1),
            None => return Ok((lines, offset)),
        };
        match serde_json::from_slice::<LineIn>(text) {
            Ok(line) => lines.push(line),
            Err(_) if next == bytes.len() => return Ok((lines, offset)),
            Err(e) => {
                let reason = format!("line {}: {e}", lines.len() + 1);
                return Err(TransferError::CorruptHistory { path: path.to_owned(), reason });
            }
        }
        offset = next;
    }
    Ok((lines, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn delivery(time_ms: i64, failed: bool) -> Delivery {
        Delivery {
            time_ms,
            outcome: if failed { DeliveryOutcome::Failed } else { DeliveryOutcome::Delivered },
            windows_delivered: usize::from(!failed),
            windows_rewritten: 0,
            files_written: 2,
            traces_written: 7,
            digests_written: 0,
            files_expired: 0,
            windows_streamed: 0,
            traces_streamed: 0,
            error: failed.then(|| DeliveryFailure { detail: "bucketPolicyError".into(), reason: "refused".into() }),
        }
    }

    fn times(deliveries: &[Delivery]) -> Vec<i64> {
        deliveries.iter().map(|d| d.time_ms).collect()
    }

    #[test]
    fn keeps_the_last_200_per_tracker_newest_first_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let history = DeliveryHistory::open(dir.path()).unwrap();
        for time in 0..250 {
            history.record("t1", delivery(time, time % 3 == 0)).unwrap();
        }
        history.record("t2", delivery(1000, true)).unwrap();
        let expected: Vec<i64> = (50..250).rev().collect();
        assert_eq!(times(&history.recent("t1", 500)), expected);
        assert_eq!(times(&history.recent("t1", 3)), [249, 248, 247]);
        assert_eq!(history.recent("t2", 50), [delivery(1000, true)]);
        assert!(history.recent("t3", 50).is_empty());

        let reopened = DeliveryHistory::open(dir.path()).unwrap();
        assert_eq!(times(&reopened.recent("t1", 500)), expected);
        assert_eq!(reopened.recent("t1", 1), [delivery(249, true)]);
        assert_eq!(reopened.recent("t2", 50), [delivery(1000, true)]);
    }

    #[test]
    fn the_file_is_compacted_so_it_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let history = DeliveryHistory::open(dir.path()).unwrap();
        for time in 0..2_000 {
            history.record("t1", delivery(time, false)).unwrap();
        }
        let lines = std::fs::read(DeliveryHistory::path(dir.path())).unwrap().split(|b| *b == b'\n').count() - 1;
        assert!((HISTORY_LIMIT..2 * HISTORY_LIMIT).contains(&lines), "{lines} lines");
        let reopened = DeliveryHistory::open(dir.path()).unwrap();
        assert_eq!(times(&reopened.recent("t1", 1)), [1_999]);
        assert_eq!(reopened.recent("t1", HISTORY_LIMIT + 1).len(), HISTORY_LIMIT);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_appending_goes_on_after_it() {
        for torn in [&b"{\"tracker_id\":\"t1\",\"time_ms\":9"[..], b"\0\0\0\0", b"{\"tracker_id\":\"t1\"}\n"] {
            let dir = tempfile::tempdir().unwrap();
            let history = DeliveryHistory::open(dir.path()).unwrap();
            history.record("t1", delivery(1, false)).unwrap();
            drop(history);
            let path = DeliveryHistory::path(dir.path());
            let whole = std::fs::read(&path).unwrap();
            std::fs::write(&path, [whole.as_slice(), torn].concat()).unwrap();

            let history = DeliveryHistory::open(dir.path()).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), whole, "{torn:?}");
            history.record("t1", delivery(2, true)).unwrap();
            let reopened = DeliveryHistory::open(dir.path()).unwrap();
            assert_eq!(times(&reopened.recent("t1", 10)), [2, 1], "{torn:?}");
        }
    }

    #[test]
    fn an_unreadable_line_before_the_last_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let history = DeliveryHistory::open(dir.path()).unwrap();
        history.record("t1", delivery(1, false)).unwrap();
        drop(history);
        let path = DeliveryHistory::path(dir.path());
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, [b"not json\n".as_slice(), &whole].concat()).unwrap();
        assert!(matches!(DeliveryHistory::open(dir.path()), Err(TransferError::CorruptHistory { .. })));
    }

    #[test]
    fn deleted_trackers_history_is_dropped_from_the_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let history = DeliveryHistory::open(dir.path()).unwrap();
        history.record("gone", delivery(1, true)).unwrap();
        history.record("kept", delivery(2, false)).unwrap();
        history.retain(&["kept".to_owned()].into()).unwrap();
        assert!(history.recent("gone", 10).is_empty());
        history.record("kept", delivery(3, false)).unwrap();
        let reopened = DeliveryHistory::open(dir.path()).unwrap();
        assert!(reopened.recent("gone", 10).is_empty());
        assert_eq!(times(&reopened.recent("kept", 10)), [3, 2]);
        assert!(!String::from_utf8(std::fs::read(DeliveryHistory::path(dir.path())).unwrap())
            .unwrap()
            .contains("gone"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Against a model (every entry ever recorded, per tracker): what is answered, and what a reopen reads,
        /// is the newest `min(limit, 200)` of the tracker's entries.
        #[test]
        fn answers_the_newest_entries_of_the_model(
            records in proptest::collection::vec((0..3usize, any::<bool>()), 0..600),
            limit in 1..=HISTORY_LIMIT,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let history = DeliveryHistory::open(dir.path()).unwrap();
            let mut model: Vec<Vec<Delivery>> = vec![Vec::new(); 3];
            for (time, (tracker, failed)) in records.into_iter().enumerate() {
                let entry = delivery(time as i64, failed);
                history.record(&format!("t{tracker}"), entry.clone()).unwrap();
                model[tracker].push(entry);
            }
            let reopened = DeliveryHistory::open(dir.path()).unwrap();
            for (tracker, recorded) in model.iter().enumerate() {
                let expected: Vec<Delivery> = recorded.iter().rev().take(limit).cloned().collect();
                prop_assert_eq!(&history.recent(&format!("t{tracker}"), limit), &expected);
                prop_assert_eq!(&reopened.recent(&format!("t{tracker}"), limit), &expected);
            }
        }
    }
}
