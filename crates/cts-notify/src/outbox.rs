//! The persistent outbox: every delivery a matched trace calls for, kept until the subscriber
//! acknowledged it or it was dead-lettered, and the matcher's durable cursor.
//!
//! One log file, `<data_dir>/notify/outbox.log`, of records `[u32 len][u32 crc32c][JSON entry]`
//! (little endian). Each change appends its entries and fsyncs before it is visible; opening
//! replays the log and cuts a torn or damaged tail. When most of the log is history, it is
//! rewritten (atomically) with only the live state: pending deliveries, dead letters, the ids
//! delivered within [`Outbox::REMEMBER_DELIVERED_MS`] (so a re-evaluated trace is not sent twice),
//! the cursor, and the insights' durable state ([`InsightState`]: open insights, insight traces not
//! yet appended to the store).
//!
//! Delivery is at least once: a delivery is marked delivered only after the subscriber answered;
//! a crash in between sends it again with the same `message_id`, by which receivers deduplicate.

use crate::error::NotifyError;
use crate::insights::InsightState;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One message to one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Unique per delivery: `{message_id}/{subscription_urn}`.
    pub id: String,
    /// What receivers deduplicate by: the same for every subscription, and for every retry and replay.
    pub message_id: String,
    pub project_id: String,
    pub subscription_urn: String,
    pub subject: String,
    /// The message document (the webhook body; the email's text).
    pub body: serde_json::Value,
    /// When the delivery was created, UTC ms (dead-lettering counts from here).
    pub created_ms: i64,
}

impl Delivery {
    pub fn new(
        message_id: String,
        project_id: String,
        subscription_urn: String,
        subject: String,
        body: serde_json::Value,
    ) -> Delivery {
        Delivery {
            id: format!("{message_id}/{subscription_urn}"),
            message_id,
            project_id,
            subscription_urn,
            subject,
            body,
            created_ms: cts_model::now_ms(),
        }
    }
}

/// A delivery not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pending {
    pub delivery: Delivery,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

/// A delivery given up on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempts: u32,
    pub last_error: String,
    pub dead_lettered_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
enum Entry {
    Enqueued { delivery: Delivery },
    Retry { id: String, attempts: u32, next_attempt_ms: i64, error: String },
    Delivered { id: String, at_ms: i64 },
    Dead { id: String, at_ms: i64, error: String },
    Cursor { record_time_ms: i64 },
    Insights { state: InsightState },
}

#[derive(Debug, Default)]
struct State {
    pending: BTreeMap<String, Pending>,
    dead: BTreeMap<String, DeadLetter>,
    /// Delivered ids and when.
    delivered: HashMap<String, i64>,
    cursor_ms: Option<i64>,
    insights: InsightState,
    /// Entries in the log file.
    logged: usize,
}

impl State {
    fn knows(&self, id: &str) -> bool {
        self.pending.contains_key(id) || self.dead.contains_key(id) || self.delivered.contains_key(id)
    }

    fn apply(&mut self, entry: Entry) {
        self.logged += 1;
        match entry {
            Entry::Enqueued { delivery } => {
                let next_attempt_ms = delivery.created_ms;
                let pending = Pending { delivery, attempts: 0, next_attempt_ms, last_error: None };
                self.pending.insert(pending.delivery.id.clone(), pending);
            }
            Entry::Retry { id, attempts, next_attempt_ms, error } => {
                if let Some(pending) = self.pending.get_mut(&id) {
                    pending.attempts = attempts;
                    pending.next_attempt_ms = next_attempt_ms;
                    pending.last_error = Some(error);
                }
            }
            Entry::Delivered { id, at_ms } => {
                self.pending.remove(&id);
                self.delivered.insert(id, at_ms);
            }
            Entry::Dead { id, at_ms, error } => {
                if let Some(pending) = self.pending.remove(&id) {
                    let letter = DeadLetter {
                        delivery: pending.delivery,
                        attempts: pending.attempts,
                        last_error: error,
                        dead_lettered_ms: at_ms,
                    };
                    self.dead.insert(id, letter);
                }
            }
            Entry::Cursor { record_time_ms } => self.cursor_ms = Some(record_time_ms),
            Entry::Insights { state } => self.insights = state,
        }
    }

    /// The entries that recreate this state, delivered ids newer than `since_ms` only.
    fn snapshot(&self, since_ms: i64) -> Vec<Entry> {
        let mut entries = Vec::new();
        for pending in self.pending.values() {
            entries.push(Entry::Enqueued { delivery: pending.delivery.clone() });
            if let Some(error) = &pending.last_error {
                let (id, attempts, next_attempt_ms) =
                    (pending.delivery.id.clone(), pending.attempts, pending.next_attempt_ms);
                entries.push(Entry::Retry { id, attempts, next_attempt_ms, error: error.clone() });
            }
        }
        for letter in self.dead.values() {
            let id = letter.delivery.id.clone();
            entries.push(Entry::Enqueued { delivery: letter.delivery.clone() });
            entries.push(Entry::Retry {
                id: id.clone(),
                attempts: letter.attempts,
                next_attempt_ms: 0,
                error: letter.last_error.clone(),
            });
            entries.push(Entry::Dead { id, at_ms: letter.dead_lettered_ms, error: letter.last_error.clone() });
        }
        for (id, &at_ms) in self.delivered.iter().filter(|(_, &at)| at >= since_ms) {
            // A delivered id needs no delivery body: it only guards against sending again.
            entries.push(Entry::Delivered { id: id.clone(), at_ms });
        }
        if let Some(record_time_ms) = self.cursor_ms {
            entries.push(Entry::Cursor { record_time_ms });
        }
        if self.insights != InsightState::default() {
            entries.push(Entry::Insights { state: self.insights.clone() });
        }
        entries
    }
}

/// See the module documentation.
pub struct Outbox {
    path: PathBuf,
    /// The log is rewritten when it holds more than this many entries beyond twice the live ones.
    compact_slack: usize,
    inner: Mutex<(File, State)>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.path).finish_non_exhaustive()
    }
}

/// What [`Outbox::failed`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    RetryAt(i64),
    DeadLettered,
}

impl Outbox {
    /// Delivered ids are remembered this long after delivery (one day).
    pub const REMEMBER_DELIVERED_MS: i64 = 24 * 3600 * 1000;
    /// The default of `compact_slack`.
    const COMPACT_SLACK: usize = 4096;

    /// Opens (or creates) `<data_dir>/notify/outbox.log`, replaying it.
    pub fn open(data_dir: &Path) -> Result<Outbox, NotifyError> {
        let dir = data_dir.join("notify");
        std::fs::create_dir_all(&dir).map_err(|source| NotifyError::Write { path: dir.clone(), source })?;
        let path = dir.join("outbox.log");
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes).map_err(|source| NotifyError::Read { path: path.clone(), source })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(NotifyError::Read { path, source }),
        }
        let mut state = State::default();
        let (entries, valid_len) = decode(&bytes);
        for entry in entries {
            state.apply(entry);
        }
        if valid_len < bytes.len() {
            tracing::warn!(path = %path.display(), kept = valid_len, cut = bytes.len() - valid_len, "cutting the outbox log's torn tail");
        }
        let file = OpenOptions::new().create(true).append(true).open(&path);
        let file = file.map_err(|source| NotifyError::Write { path: path.clone(), source })?;
        file.set_len(valid_len as u64).map_err(|source| NotifyError::Write { path: path.clone(), source })?;
        Ok(Outbox { path, compact_slack: Self::COMPACT_SLACK, inner: Mutex::new((file, state)) })
    }

    /// Adds the deliveries whose ids the outbox does not know yet (pending, dead or recently
    /// delivered) and moves the cursor, durably. Returns how many were added.
    pub fn enqueue(&self, deliveries: Vec<Delivery>, cursor_ms: Option<i64>) -> Result<usize, NotifyError> {
        let mut inner = self.inner.lock();
        let mut seen = HashSet::new();
        let mut entries: Vec<Entry> = deliveries
            .into_iter()
            .filter(|delivery| !inner.1.knows(&delivery.id) && seen.insert(delivery.id.clone()))
            .map(|delivery| Entry::Enqueued { delivery })
            .collect();
        let added = entries.len();
        if let Some(record_time_ms) = cursor_ms.filter(|&ms| inner.1.cursor_ms.is_none_or(|cursor| ms > cursor)) {
            entries.push(Entry::Cursor { record_time_ms });
        }
        self.write(&mut inner, entries)?;
        Ok(added)
    }

    /// Up to `limit` pending deliveries due at `now_ms` and not in `busy`, the earliest due first.
    pub fn due(&self, now_ms: i64, limit: usize, busy: &HashSet<String>) -> Vec<Pending> {
        let inner = self.inner.lock();
        let mut due: Vec<&Pending> = inner
            .1
            .pending
            .values()
            .filter(|pending| pending.next_attempt_ms <= now_ms && !busy.contains(&pending.delivery.id))
            .collect();
        due.sort_by_key(|pending| pending.next_attempt_ms);
        due.into_iter().take(limit).cloned().collect()
    }

    /// When the next pending delivery not in `busy` is due.
    pub fn next_due_ms(&self, busy: &HashSet<String>) -> Option<i64> {
        let inner = self.inner.lock();
        let pending = inner.1.pending.values().filter(|pending| !busy.contains(&pending.delivery.id));
        pending.map(|pending| pending.next_attempt_ms).min()
    }

    /// The subscriber acknowledged `id`.
    pub fn delivered(&self, id: &str) -> Result<(), NotifyError> {
        let mut inner = self.inner.lock();
        let entries = vec![Entry::Delivered { id: id.to_owned(), at_ms: cts_model::now_ms() }];
        self.write(&mut inner, entries)
    }

    /// An attempt of `id` failed: retried at `retry_at_ms`, or dead-lettered when that is `None`.
    pub fn failed(&self, id: &str, error: &str, retry_at_ms: Option<i64>) -> Result<FailureOutcome, NotifyError> {
        let mut inner = self.inner.lock();
        let Some(pending) = inner.1.pending.get(id) else { return Ok(FailureOutcome::DeadLettered) };
        let attempts = pending.attempts + 1;
        let mut entries = vec![Entry::Retry {
            id: id.to_owned(),
            attempts,
            next_attempt_ms: retry_at_ms.unwrap_or(0),
            error: error.to_owned(),
        }];
        let outcome = match retry_at_ms {
            Some(at) => FailureOutcome::RetryAt(at),
            None => {
                entries.push(Entry::Dead { id: id.to_owned(), at_ms: cts_model::now_ms(), error: error.to_owned() });
                FailureOutcome::DeadLettered
            }
        };
        self.write(&mut inner, entries)?;
        Ok(outcome)
    }

    /// The project's dead letters, oldest first.
    pub fn dead_letters(&self, project_id: &str) -> Vec<DeadLetter> {
        let inner = self.inner.lock();
        let mut letters: Vec<DeadLetter> =
            inner.1.dead.values().filter(|letter| letter.delivery.project_id == project_id).cloned().collect();
        letters.sort_by_key(|letter| letter.dead_lettered_ms);
        letters
    }

    /// The record time of the newest trace the matcher has evaluated, if it ever ran.
    pub fn cursor_ms(&self) -> Option<i64> {
        self.inner.lock().1.cursor_ms
    }

    /// The insights' durable state as last recorded.
    pub fn insight_state(&self) -> InsightState {
        self.inner.lock().1.insights.clone()
    }

    /// Records the insights' state durably (replacing the previous one).
    pub fn record_insight_state(&self, state: InsightState) -> Result<(), NotifyError> {
        let mut inner = self.inner.lock();
        self.write(&mut inner, vec![Entry::Insights { state }])
    }

    /// How many deliveries wait.
    pub fn pending_len(&self) -> usize {
        self.inner.lock().1.pending.len()
    }

    /// Appends `entries`, fsyncs, applies them; rewrites the log when it is mostly history.
    fn write(&self, inner: &mut (File, State), entries: Vec<Entry>) -> Result<(), NotifyError> {
        if entries.is_empty() {
            return Ok(());
        }
        let failed = |source| NotifyError::Write { path: self.path.clone(), source };
        inner.0.write_all(&encode(&entries)).map_err(failed)?;
        inner.0.sync_data().map_err(failed)?;
        for entry in entries {
            inner.1.apply(entry);
        }
        let state = &inner.1;
        let live = state.pending.len() + 3 * state.dead.len() + state.delivered.len() + 2;
        if state.logged > 2 * live + self.compact_slack {
            self.compact(inner)?;
        }
        Ok(())
    }

    fn compact(&self, inner: &mut (File, State)) -> Result<(), NotifyError> {
        let failed = |source| NotifyError::Write { path: self.path.clone(), source };
        let since = cts_model::now_ms() - Self::REMEMBER_DELIVERED_MS;
        inner.1.delivered.retain(|_, at| *at >= since);
        let entries = inner.1.snapshot(since);
        inner.1.logged = entries.len();
        cts_durable::write_atomically(&self.path, &encode(&entries)).map_err(failed)?;
        inner.0 = OpenOptions::new().append(true).open(&self.path).map_err(failed)?;
        Ok(())
    }
}

fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in entries {
        let json = serde_json::to_vec(entry).expect("entries serialize");
        bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&json).to_le_bytes());
        bytes.extend_from_slice(&json);
    }
    bytes
}

/// The complete, intact entries at the start of `bytes`, and how many bytes they span.
fn decode(bytes: &[u8]) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(json) = bytes.get(at + 8..at + 8 + len) else { break };
        if crc32c::crc32c(json) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice(json) else { break };
        entries.push(entry);
        at += 8 + len;
    }
    (entries, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::RetryPolicy;
    use crate::insights::{InsightState, OpenInsight};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use std::time::Duration;

    fn delivery(message: &str, subscription: &str) -> Delivery {
        Delivery::new(
            message.to_owned(),
            crate::testing::PROJECT.to_owned(),
            subscription.to_owned(),
            format!("subject of {message}"),
            serde_json::json!({"message_id": message}),
        )
    }

    fn pending_ids(outbox: &Outbox) -> Vec<String> {
        outbox.due(i64::MAX, usize::MAX, &HashSet::new()).into_iter().map(|p| p.delivery.id).collect()
    }

    #[test]
    fn deliveries_persist_across_reopen_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let added = outbox.enqueue(vec![delivery("m1", "s1"), delivery("m1", "s2"), delivery("m2", "s1")], Some(10));
        assert_eq!(added.unwrap(), 3);
        outbox.delivered("m1/s1").unwrap();
        drop(outbox);
        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(pending_ids(&outbox), ["m1/s2", "m2/s1"]);
        assert_eq!(outbox.cursor_ms(), Some(10));
        let kept = outbox.due(i64::MAX, 1, &HashSet::new()).remove(0);
        let mut expected = delivery("m1", "s2");
        expected.created_ms = kept.delivery.created_ms;
        assert_eq!(kept.delivery, expected, "a delivery reads back as written");
    }

    #[test]
    fn a_delivery_id_is_taken_once_even_across_reopen_and_after_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(outbox.enqueue(vec![delivery("m1", "s1"), delivery("m1", "s1")], None).unwrap(), 1);
        outbox.delivered("m1/s1").unwrap();
        assert_eq!(outbox.enqueue(vec![delivery("m1", "s1")], None).unwrap(), 0, "delivered ids are remembered");
        assert_eq!(outbox.enqueue(vec![delivery("m2", "s1")], None).unwrap(), 1);
        drop(outbox);
        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(outbox.enqueue(vec![delivery("m1", "s1"), delivery("m2", "s1")], None).unwrap(), 0);
        assert_eq!(pending_ids(&outbox), ["m2/s1"]);
    }

    #[test]
    fn the_cursor_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        outbox.enqueue(vec![], Some(100)).unwrap();
        outbox.enqueue(vec![], Some(50)).unwrap();
        assert_eq!(outbox.cursor_ms(), Some(100));
    }

    #[test]
    fn a_failed_delivery_waits_for_its_retry_and_a_dead_letter_stays_dead_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        outbox.enqueue(vec![delivery("m1", "s1"), delivery("m2", "s1")], None).unwrap();
        assert_eq!(outbox.failed("m1/s1", "503", Some(i64::MAX - 1)).unwrap(), FailureOutcome::RetryAt(i64::MAX - 1));
        assert_eq!(outbox.failed("m2/s1", "gone", None).unwrap(), FailureOutcome::DeadLettered);
        let now = cts_model::now_ms();
        assert!(outbox.due(now, 10, &HashSet::new()).is_empty(), "not due before its retry");
        drop(outbox);
        let outbox = Outbox::open(dir.path()).unwrap();
        let pending = outbox.due(i64::MAX, 10, &HashSet::new());
        assert_eq!((pending.len(), pending[0].attempts, pending[0].last_error.as_deref()), (1, 1, Some("503")));
        let letters = outbox.dead_letters(crate::testing::PROJECT);
        assert_eq!(letters.len(), 1);
        assert_eq!((letters[0].delivery.id.as_str(), letters[0].last_error.as_str()), ("m2/s1", "gone"));
        assert!(outbox.dead_letters("another-project").is_empty());
        assert_eq!(outbox.enqueue(vec![delivery("m2", "s1")], None).unwrap(), 0, "a dead letter is not sent again");
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_log_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        outbox.enqueue(vec![delivery("m1", "s1")], None).unwrap();
        outbox.enqueue(vec![delivery("m2", "s1")], None).unwrap();
        drop(outbox);
        let path = dir.path().join("notify").join("outbox.log");
        let length = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(length - 3).unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(pending_ids(&outbox), ["m1/s1"]);
        outbox.enqueue(vec![delivery("m3", "s1")], None).unwrap();
        drop(outbox);
        assert_eq!(pending_ids(&Outbox::open(dir.path()).unwrap()), ["m1/s1", "m3/s1"]);
    }

    #[test]
    fn compaction_keeps_the_live_state() {
        let dir = tempfile::tempdir().unwrap();
        const SLACK: usize = 20;
        let outbox = Outbox { compact_slack: SLACK, ..Outbox::open(dir.path()).unwrap() };
        let state = InsightState {
            open: vec![OpenInsight {
                project_id: "p1".into(),
                service_type: "marketplace".into(),
                trace_name: "closeResource".into(),
                insight_type: crate::insights::CALL_RATE_INSIGHT.into(),
                insight_id: "i-1".into(),
            }],
            unappended: vec![crate::testing::trace(5)],
        };
        outbox.record_insight_state(state.clone()).unwrap();
        outbox.enqueue(vec![delivery("dead", "s1")], None).unwrap();
        outbox.failed("dead/s1", "gone", None).unwrap();
        for i in 0..(SLACK + 10) {
            let id = format!("m{i}");
            outbox.enqueue(vec![delivery(&id, "s1")], Some(i as i64)).unwrap();
            outbox.delivered(&format!("{id}/s1")).unwrap();
        }
        outbox.enqueue(vec![delivery("waiting", "s1")], None).unwrap();
        let logged = outbox.inner.lock().1.logged;
        assert!(logged < 2 * (SLACK + 10), "the log was compacted: {logged} entries");
        drop(outbox);
        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(pending_ids(&outbox), ["waiting/s1"]);
        assert_eq!(outbox.dead_letters("p1").len(), 1);
        assert_eq!(outbox.cursor_ms(), Some((SLACK + 9) as i64));
        assert_eq!(outbox.insight_state(), state);
        assert_eq!(outbox.enqueue(vec![delivery("m0", "s1")], None).unwrap(), 0, "delivered ids survive compaction");
    }

    proptest! {
        /// The retry schedule: after failure n the delay lies in [d/2, d] with d = initial × 2^(n-1) capped at
        /// the maximum, is never past the dead-letter deadline, and at or past the deadline the delivery is dead.
        #[test]
        fn retries_back_off_with_bounded_jitter_until_the_dead_letter_deadline(
            attempts in 1u32..40,
            age_ms in 0i64..2_000_000,
            seed in any::<u64>(),
        ) {
            let policy = RetryPolicy {
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(60),
                dead_letter_after: Duration::from_secs(1000),
            };
            let created = 1_000_000_000;
            let now = created + age_ms;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let full = (100i64 << (attempts - 1).min(30)).min(60_000);
            let deadline = created + 1_000_000;
            match policy.retry_at(attempts, created, now, &mut rng) {
                None => prop_assert!(now >= deadline),
                Some(at) => {
                    prop_assert!(now < deadline);
                    prop_assert!(at <= deadline);
                    let delay = at - now;
                    prop_assert!(delay <= full, "delay {} over {}", delay, full);
                    prop_assert!(delay >= full / 2 || at == deadline, "delay {} under {}", delay, full / 2);
                }
            }
        }
    }
}
