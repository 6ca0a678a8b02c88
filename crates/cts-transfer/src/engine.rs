//! The delivery engine: every cycle, each enabled tracker with an `obs_info` bucket gets the trace files of every
//! window that has closed (and settled) since its cursor, and windows delivered within the late-trace lookback are
//! rewritten when late traces changed them. Then the tracker's status says how it went.
//!
//! Exactly once: a window's files have deterministic names (see [`crate::layout`]) and the cursor moves only
//! after they are written, so a cycle cut short (outage, crash, restart) is redone by overwriting the same
//! objects; a late trace makes its window's files be rewritten whole, still under the same names.
//!
//! Digests (trackers with `is_support_validate`): each delivered window's files are remembered in the cursor;
//! once every window of a digest period is delivered and past the late-trace lookback, the period's digest is
//! written (a deterministic name, so a retry overwrites it) and then the chain head in the cursor moves.

use crate::cursor::{CursorStore, DigestCursor, FileCursor, Fingerprint};
use crate::digest::{
    digest_time, sha256_hex, Digest, DigestCheckpoint, DigestLink, DigestTracker, FileRecord, DIGEST_VERSION,
};
use crate::envelope::Keyring;
use crate::error::TransferError;
use crate::history::{Delivery, DeliveryFailure, DeliveryHistory, DeliveryOutcome};
use crate::layout::{file_day, DigestName, Encoding, FileName, Window};
use crate::stream::TraceStream;
use crate::trace_file::{build_files, FileShape};
use cts_ledger::Ledger;
use cts_model::Trace;
use cts_obs::{BucketCheck, Obs};
use cts_resources::tracker::{delivery_detail, CompressType, ObsInfo};
use cts_resources::{Resources, Tracker, TrackerStatus, TrackerType};
use cts_store::{Filters, SortKey, Store, TraceQuery};
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Traces read from the store at once.
const QUERY_PAGE: usize = 10_000;
/// How often a tracker's expired files (`bucket_lifecycle`) are looked for.
const EXPIRY_EVERY_MS: i64 = 3_600_000;

/// How delivery runs.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// The cycle, and the length of a delivery window (`CTS_TRANSFER_INTERVAL`).
    pub interval: Duration,
    /// The region in object names (`CTS_REGION`).
    pub region: String,
    /// How long after a window closes it is delivered, for traces still on their way.
    pub settle: Duration,
    /// How long a delivered window is checked again for late traces (and rewritten when it gained some).
    pub late_lookback: Duration,
    /// A file holds at most this many bytes of trace JSON; larger windows are split into parts.
    pub max_file_bytes: usize,
    /// Master keys for trackers with trace file encryption (`CTS_KEYRING`).
    pub keyring: Keyring,
    /// The period each digest covers (aligned to the Unix epoch); a digest lists the files of the windows that
    /// start in it.
    pub digest_period: Duration,
}

impl TransferConfig {
    /// Defaults: windows settle for a fifth of the interval (at most a minute), late traces are looked for over
    /// the last hour (at least two windows), files hold up to 50 MiB of JSON, no master keys, hourly digests.
    pub fn new(interval: Duration, region: impl Into<String>) -> TransferConfig {
        TransferConfig {
            interval,
            region: region.into(),
            settle: (interval / 5).min(Duration::from_secs(60)),
            late_lookback: Duration::from_secs(3600).max(interval * 2),
            max_file_bytes: 50 << 20,
            keyring: Keyring::default(),
            digest_period: Duration::from_secs(3600),
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub windows_delivered: usize,
    /// Delivered windows written again because late traces changed them.
    pub windows_rewritten: usize,
    pub files_written: usize,
    pub traces_written: usize,
    /// Trackers whose delivery failed this cycle (their status is `error`).
    pub trackers_failed: usize,
    /// Trace files deleted because they outlived the tracker's `bucket_lifecycle`.
    pub files_expired: usize,
    /// Windows whose traces went to the SIEM stream.
    pub windows_streamed: usize,
    pub traces_streamed: usize,
    /// Trackers whose stream stopped at a sink that failed (retried next cycle).
    pub streams_failed: usize,
    pub digests_written: usize,
}

impl CycleReport {
    fn add(&mut self, other: &CycleReport) {
        self.windows_delivered += other.windows_delivered;
        self.windows_rewritten += other.windows_rewritten;
        self.files_written += other.files_written;
        self.traces_written += other.traces_written;
        self.trackers_failed += other.trackers_failed;
        self.files_expired += other.files_expired;
        self.windows_streamed += other.windows_streamed;
        self.traces_streamed += other.traces_streamed;
        self.streams_failed += other.streams_failed;
        self.digests_written += other.digests_written;
    }
}

/// The `detail` of a stream's failure in the delivery history (a tracker's status does not show stream failures).
const STREAM_ERROR: &str = "streamError";

/// Why a tracker's files could not be delivered: the detail its status shows, and what happened.
#[derive(Debug)]
struct Problem {
    detail: &'static str,
    reason: String,
}

/// Delivers trace files; share it in an `Arc` and [`Transfer::run`] it in a task.
pub struct Transfer {
    store: Store,
    resources: Arc<Resources>,
    obs: Arc<Obs>,
    cursors: CursorStore,
    config: TransferConfig,
    stream: Option<TraceStream>,
    /// Each tracker's recent cycles, shared with whoever shows them.
    history: Arc<DeliveryHistory>,
    /// Signs digests and provides their checkpoints; without it trackers get no digests.
    ledger: Option<Arc<Ledger>>,
    /// When each tracker's expired files were last looked for (in memory: a restart looks again).
    expiry_runs: std::sync::Mutex<HashMap<String, i64>>,
}

impl Transfer {
    /// Opens the cursors and the delivery history under `data_dir`.
    pub fn open(
        data_dir: &Path,
        store: Store,
        resources: Arc<Resources>,
        obs: Arc<Obs>,
        config: TransferConfig,
    ) -> Result<Transfer, TransferError> {
        Ok(Transfer {
            store,
            resources,
            obs,
            cursors: CursorStore::open(data_dir)?,
            history: Arc::new(DeliveryHistory::open(data_dir)?),
            config,
            stream: None,
            ledger: None,
            expiry_runs: Default::default(),
        })
    }

    /// Also streams the traces of trackers with `is_lts_enabled`.
    pub fn with_stream(self, stream: TraceStream) -> Transfer {
        Transfer { stream: Some(stream), ..self }
    }

    /// Writes the digests of trackers with `is_support_validate`, signed with the ledger's key.
    pub fn with_ledger(self, ledger: Arc<Ledger>) -> Transfer {
        Transfer { ledger: Some(ledger), ..self }
    }

    /// The delivery history this engine records, for the API.
    pub fn history(&self) -> Arc<DeliveryHistory> {
        self.history.clone()
    }

    /// Runs a cycle every interval, forever (abort the task to stop: the next start redoes what was cut short).
    pub async fn run(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.run_cycle(cts_model::now_ms()).await {
                Ok(report) if report.files_written == 0 && report.traces_streamed == 0 => {}
                Ok(report) => tracing::info!(?report, "trace file delivery cycle"),
                Err(error) => tracing::error!(%error, "trace file delivery cycle failed"),
            }
        }
    }

    /// One cycle at `now_ms`: every tracker that delivers files, one after the other. Each tracker's cycle that
    /// did something or failed goes to its delivery history.
    pub async fn run_cycle(&self, now_ms: i64) -> Result<CycleReport, TransferError> {
        let trackers = self.resources.all_trackers();
        let tracker_ids = trackers.iter().map(|t| t.id.clone()).collect::<BTreeSet<_>>();
        self.cursors.retain(&tracker_ids)?;
        self.history.retain(&tracker_ids)?;
        let mut report = CycleReport::default();
        for tracker in trackers {
            let mut done = CycleReport::default();
            let mut failure = None;
            if let Some(stream) = self.stream.as_ref().filter(|_| streams(&tracker)) {
                match self.stream_tracker(stream, &tracker, now_ms, &mut done).await {
                    Ok(()) => {}
                    Err(DeliveryError::Destination(problem)) => {
                        done.streams_failed += 1;
                        tracing::warn!(
                            project_id = %tracker.project_id, tracker = %tracker.tracker_name,
                            reason = %problem.reason, "traces not streamed; retrying next cycle"
                        );
                        failure = Some(problem);
                    }
                    Err(DeliveryError::Internal(error)) => return Err(error),
                }
            }
            if let Some(obs_info) = delivers_files(&tracker) {
                let delivered = self.deliver(&tracker, obs_info, now_ms, &mut done).await;
                self.record_lag(&tracker, now_ms, delivered.is_ok());
                match delivered {
                    Ok(()) => self.set_health(&tracker, None).await?,
                    Err(DeliveryError::Destination(problem)) => {
                        done.trackers_failed += 1;
                        tracing::warn!(
                            project_id = %tracker.project_id, tracker = %tracker.tracker_name,
                            detail = problem.detail, reason = %problem.reason, "trace files not delivered"
                        );
                        self.set_health(&tracker, Some(problem.detail)).await?;
                        // The tracker's status names the file delivery's problem: so does its history.
                        failure = Some(problem);
                    }
                    Err(DeliveryError::Internal(error)) => return Err(error),
                }
            }
            if let Some(delivery) = history_entry(now_ms, &done, failure) {
                self.history.record(&tracker.id, delivery)?;
            }
            report.add(&done);
        }
        Ok(report)
    }

    /// Metrics of one tracker's cycle: how far its delivered windows lag behind `now_ms`, and the cycle's outcome.
    fn record_lag(&self, tracker: &Tracker, now_ms: i64, delivered: bool) {
        let labels = [("project_id", tracker.project_id.clone()), ("tracker", tracker.tracker_name.clone())];
        if let Some(cursor) = self.cursors.files(&tracker.id) {
            let lag_ms = now_ms.saturating_sub(cursor.next_window_ms).max(0);
            metrics::gauge!("cts_transfer_lag_seconds", &labels).set(lag_ms as f64 / 1000.0);
        }
        let outcome = if delivered { "delivered" } else { "failed" };
        metrics::counter!("cts_transfer_cycles_total", "outcome" => outcome).increment(1);
    }

    async fn set_health(&self, tracker: &Tracker, problem: Option<&'static str>) -> Result<(), TransferError> {
        let (resources, tracker) = (self.resources.clone(), tracker.clone());
        tokio::task::spawn_blocking(move || resources.set_delivery_health(&tracker, problem)).await??;
        Ok(())
    }

    /// Delivers what is due for one tracker, moving its cursor as windows are written; adds what it did to `report`
    /// (also when it fails part way).
    async fn deliver(
        &self,
        tracker: &Tracker,
        obs_info: &ObsInfo,
        now_ms: i64,
        report: &mut CycleReport,
    ) -> Result<(), DeliveryError> {
        let length = window_length(&self.config);
        // A tracker starts at the window of the first cycle that sees it, delivered or not.
        let (mut cursor, fresh) = match self.cursors.files(&tracker.id) {
            Some(cursor) => (cursor, false),
            None => {
                let start =
                    FileCursor { next_window_ms: Window::containing(now_ms, length).start_ms, ..Default::default() };
                self.cursors.set_files(&tracker.id, start.clone())?;
                (start, true)
            }
        };
        self.start_or_stop_digests(tracker, &mut cursor, fresh)?;
        let bucket = obs_info.bucket_name.as_deref().expect("delivers_files checked the bucket");
        self.ensure_bucket(bucket, obs_info.is_obs_created).await?;
        let kms_id = encryption_key(tracker);
        if let Some(kms_id) = kms_id {
            if !self.config.keyring.contains(kms_id) {
                return Err(DeliveryError::Destination(Problem {
                    detail: delivery_detail::KMS_KEY_ERROR,
                    reason: format!("no master key {kms_id:?} in the keyring"),
                }));
            }
        }
        let objects = self.obs.bucket(bucket).map_err(|e| destination(delivery_detail::BUCKET_POLICY_ERROR, e))?;
        let settle = self.config.settle.as_millis() as i64;
        let lookback = self.config.late_lookback.as_millis() as i64;
        let writer = WindowWriter { transfer: self, tracker, obs_info, kms_id, objects: &objects };

        // Late traces first: rewrite delivered windows whose traces changed.
        cursor.delivered.retain(|start, _| *start >= now_ms - lookback);
        for (start, fingerprint) in cursor.delivered.clone() {
            let window = Window::starting_at(start, length);
            let traces = self.window_traces(tracker, window).await?;
            let now = Fingerprint::of(traces.iter().map(|t| t.trace_id.as_str()));
            if now != fingerprint {
                let written = writer.write(window, traces).await?;
                report.windows_rewritten += 1;
                report.files_written += written.files.len();
                report.traces_written += written.traces;
                remember_files(&mut cursor, window, written.files);
                cursor.delivered.insert(start, now);
                self.cursors.set_files(&tracker.id, cursor.clone())?;
            }
        }
        // Then every window that has closed and settled.
        loop {
            let window = Window::starting_at(cursor.next_window_ms, length);
            if window.end_ms + settle > now_ms {
                break;
            }
            let traces = self.window_traces(tracker, window).await?;
            let fingerprint = Fingerprint::of(traces.iter().map(|t| t.trace_id.as_str()));
            let written = writer.write(window, traces).await?;
            report.windows_delivered += 1;
            report.files_written += written.files.len();
            report.traces_written += written.traces;
            cursor.next_window_ms = window.end_ms;
            if window.start_ms >= now_ms - lookback {
                cursor.delivered.insert(window.start_ms, fingerprint);
            }
            // Empty windows are remembered with the next write: redoing one writes nothing.
            if !written.files.is_empty() {
                remember_files(&mut cursor, window, written.files);
                self.cursors.set_files(&tracker.id, cursor.clone())?;
            }
            report.digests_written += self.write_due_digests(&writer, &mut cursor, now_ms).await?;
        }
        report.digests_written += self.write_due_digests(&writer, &mut cursor, now_ms).await?;
        self.cursors.set_files(&tracker.id, cursor)?;
        report.files_expired += self.expire(tracker, obs_info, &objects, now_ms).await?;
        Ok(())
    }

    /// Starts the digest chain of a tracker that asks for validation (with the period of its first window when
    /// the tracker is new, else with the next whole period: earlier windows' files were not remembered), and
    /// forgets it when the tracker no longer asks (asking again starts a new chain).
    fn start_or_stop_digests(
        &self,
        tracker: &Tracker,
        cursor: &mut FileCursor,
        fresh: bool,
    ) -> Result<(), TransferError> {
        let validates = tracker.is_support_validate == Some(true);
        if validates && self.ledger.is_none() {
            tracing::warn!(tracker = %tracker.tracker_name, "is_support_validate without a ledger: no digests");
        }
        match (validates && self.ledger.is_some(), cursor.digest.is_some()) {
            (true, false) => {
                let period = Window::containing(cursor.next_window_ms, digest_period(&self.config));
                let next_period_ms =
                    if fresh || period.start_ms == cursor.next_window_ms { period.start_ms } else { period.end_ms };
                cursor.digest = Some(DigestCursor { next_period_ms, ..DigestCursor::default() });
            }
            (false, true) => cursor.digest = None,
            _ => return Ok(()),
        }
        self.cursors.set_files(&tracker.id, cursor.clone())
    }

    /// Writes the digest of every period whose windows are all delivered and past the late-trace lookback (their
    /// files are final), oldest first, moving the chain head after each; returns how many.
    async fn write_due_digests(
        &self,
        writer: &WindowWriter<'_>,
        cursor: &mut FileCursor,
        now_ms: i64,
    ) -> Result<usize, DeliveryError> {
        let Some(ledger) = &self.ledger else { return Ok(0) };
        let tracker = writer.tracker;
        let final_before = now_ms - self.config.late_lookback.as_millis() as i64;
        let mut written = 0;
        while let Some(chain) = &cursor.digest {
            let period = Window::starting_at(chain.next_period_ms, digest_period(&self.config));
            if period.end_ms > cursor.next_window_ms || period.end_ms > final_before {
                break;
            }
            let files =
                chain.files.range(period.start_ms..period.end_ms).flat_map(|(_, files)| files.clone()).collect();
            let digest = Digest {
                version: DIGEST_VERSION,
                digest_start_time: digest_time(period.start_ms),
                digest_end_time: digest_time(period.end_ms),
                region: self.config.region.clone(),
                tracker: DigestTracker {
                    id: tracker.id.clone(),
                    name: tracker.tracker_name.clone(),
                    project_id: tracker.project_id.clone(),
                },
                files,
                previous_digest: chain.head.clone(),
                checkpoint: latest_checkpoint(ledger, &tracker.project_id).await?,
            };
            let name = DigestName {
                region: &self.config.region,
                tracker_name: &tracker.tracker_name,
                file_prefix: &writer.obs_info.file_prefix_name,
                period_start_ms: period.start_ms,
            };
            let key = name.object_path();
            let bytes = digest.seal(ledger.signer());
            let head = DigestLink { key: key.clone(), sha256: sha256_hex(&bytes) };
            writer.put(&key, bytes).await?;
            let chain = cursor.digest.as_mut().expect("checked above");
            chain.head = Some(head);
            chain.next_period_ms = period.end_ms;
            chain.files = chain.files.split_off(&period.end_ms);
            self.cursors.set_files(&tracker.id, cursor.clone())?;
            written += 1;
        }
        Ok(written)
    }

    /// `bucket_lifecycle`: deletes the tracker's files of days more than that many days before `now_ms`'s, at most
    /// once an hour.
    async fn expire(
        &self,
        tracker: &Tracker,
        obs_info: &ObsInfo,
        objects: &Arc<dyn ObjectStore>,
        now_ms: i64,
    ) -> Result<usize, DeliveryError> {
        let Some(days) = obs_info.bucket_lifecycle.filter(|days| *days > 0) else { return Ok(0) };
        {
            let mut runs = self.expiry_runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if runs.get(&tracker.id).is_some_and(|last| now_ms - last < EXPIRY_EVERY_MS) {
                return Ok(0);
            }
            runs.insert(tracker.id.clone(), now_ms);
        }
        let today = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default().date_naive();
        let oldest_kept = today - chrono::Days::new(u64::from(days));
        let prefix = ObjectPath::from(format!("CloudTraces/{}", self.config.region));
        let failed = |e: object_store::Error| destination(delivery_detail::BUCKET_POLICY_ERROR, e);
        let listed: Vec<_> = objects.list(Some(&prefix)).try_collect().await.map_err(failed)?;
        let mut expired = 0;
        for object in listed {
            let path = object.location;
            if file_day(path.as_ref(), &self.config.region, &tracker.tracker_name).is_some_and(|day| day < oldest_kept)
            {
                objects.delete(&path).await.map_err(failed)?;
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Streams every closed and settled window since the tracker's stream cursor, one window at a time; adds what
    /// it streamed to `report`.
    async fn stream_tracker(
        &self,
        stream: &TraceStream,
        tracker: &Tracker,
        now_ms: i64,
        report: &mut CycleReport,
    ) -> Result<(), DeliveryError> {
        let length = window_length(&self.config);
        let settle = self.config.settle.as_millis() as i64;
        let mut next = match self.cursors.stream(&tracker.id) {
            Some(next) => next,
            None => {
                let start = Window::containing(now_ms, length).start_ms;
                self.cursors.set_stream(&tracker.id, start)?;
                start
            }
        };
        loop {
            let window = Window::starting_at(next, length);
            if window.end_ms + settle > now_ms {
                return Ok(());
            }
            let traces = self.window_traces(tracker, window).await?;
            stream.send(&traces).await.map_err(|e| destination(STREAM_ERROR, e))?;
            report.windows_streamed += 1;
            report.traces_streamed += traces.len();
            next = window.end_ms;
            self.cursors.set_stream(&tracker.id, next)?;
        }
    }

    /// Makes sure the bucket can be written: it exists (or is created when the tracker asks for it) and these
    /// credentials may use it.
    async fn ensure_bucket(&self, bucket: &str, create: bool) -> Result<(), DeliveryError> {
        let policy = delivery_detail::BUCKET_POLICY_ERROR;
        match self.obs.check_bucket(bucket).await.map_err(|e| destination(policy, e))? {
            BucketCheck::Usable => Ok(()),
            BucketCheck::Refused { status: 404, .. } if create => {
                self.obs.create_bucket(bucket, None).await.map_err(|e| destination(policy, e))
            }
            BucketCheck::Refused { status: 404, code } => {
                Err(destination(delivery_detail::NO_BUCKET, format!("bucket {bucket}: {code}")))
            }
            BucketCheck::Refused { status, code } => {
                Err(destination(policy, format!("bucket {bucket}: HTTP {status} {code}")))
            }
            BucketCheck::Unreachable(reason) => Err(destination(policy, reason)),
        }
    }

    /// Every trace of the window the tracker delivers, read page by page.
    async fn window_traces(&self, tracker: &Tracker, window: Window) -> Result<Vec<Trace>, TransferError> {
        let store = self.store.clone();
        let data = tracker.tracker_type == TrackerType::Data;
        let mut query = TraceQuery {
            project_id: tracker.project_id.clone(),
            data,
            tracker_name: data.then(|| tracker.tracker_name.clone()),
            from_ms: window.start_ms,
            to_ms: window.end_ms - 1,
            filters: Filters::default(),
            after: None,
            limit: QUERY_PAGE,
        };
        let excluded: Vec<String> =
            tracker.management_event_selector.as_ref().map(|s| s.exclude_service.clone()).unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            let mut traces = Vec::new();
            loop {
                let page = store.query(&query)?;
                let full = page.len() == query.limit;
                query.after = page.last().map(SortKey::of);
                traces.extend(page.into_iter().filter(|t| !excluded.contains(&t.service_type)));
                if !full {
                    return Ok(traces);
                }
            }
        })
        .await?
    }
}

/// Writes a window's files for one tracker.
struct WindowWriter<'a> {
    transfer: &'a Transfer,
    tracker: &'a Tracker,
    obs_info: &'a ObsInfo,
    kms_id: Option<&'a str>,
    objects: &'a Arc<dyn ObjectStore>,
}

impl WindowWriter<'_> {
    /// Writes the window's files (none for an empty window).
    async fn write(&self, window: Window, traces: Vec<Trace>) -> Result<Written, DeliveryError> {
        let config = &self.transfer.config;
        let shape = FileShape {
            sort_by_service: self.obs_info.is_sort_by_service,
            encoding: match self.obs_info.compress_type {
                CompressType::Gzip => Encoding::Gzip,
                CompressType::Json => Encoding::Json,
                CompressType::Parquet => Encoding::Parquet,
            },
            max_file_bytes: config.max_file_bytes,
        };
        let traces_written = traces.len();
        let files =
            tokio::task::spawn_blocking(move || build_files(traces, shape)).await.map_err(TransferError::from)?;
        let mut records = Vec::with_capacity(files.len());
        for file in &files {
            let name = FileName {
                region: &config.region,
                tracker_id: &self.tracker.id,
                tracker_name: &self.tracker.tracker_name,
                file_prefix: &self.obs_info.file_prefix_name,
                service: file.service.as_deref(),
                window,
                part: file.part,
                encoding: shape.encoding,
                encrypted: self.kms_id.is_some(),
            };
            let body = match self.kms_id {
                Some(kms_id) => config
                    .keyring
                    .seal(kms_id, &file.body)
                    .map_err(|e| destination(delivery_detail::KMS_KEY_ERROR, e))?,
                None => file.body.clone(),
            };
            let key = name.object_path();
            let record = FileRecord { sha256: sha256_hex(&body), key, trace_count: file.trace_ids.len() };
            self.put(&record.key, body).await?;
            records.push(record);
        }
        Ok(Written { files: records, traces: traces_written })
    }

    /// Writes one object.
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), DeliveryError> {
        let path = ObjectPath::from(key);
        self.objects
            .put(&path, body.into())
            .await
            .map_err(|e| destination(delivery_detail::BUCKET_POLICY_ERROR, format!("writing {path}: {e}")))?;
        Ok(())
    }
}

/// What a window's write wrote.
struct Written {
    /// Its files as a digest lists them.
    files: Vec<FileRecord>,
    traces: usize,
}

/// Remembers a window's files (as last written) for the digest of its period, when the tracker has digests and
/// that period is still to be digested.
fn remember_files(cursor: &mut FileCursor, window: Window, files: Vec<FileRecord>) {
    let Some(chain) = cursor.digest.as_mut().filter(|chain| window.start_ms >= chain.next_period_ms) else { return };
    if files.is_empty() {
        chain.files.remove(&window.start_ms);
    } else {
        chain.files.insert(window.start_ms, files);
    }
}

/// The project's latest signed checkpoint, after signing one over every trace acknowledged so far (so it covers
/// the traces of the files just digested); `None` when the project has no log yet.
async fn latest_checkpoint(ledger: &Arc<Ledger>, project_id: &str) -> Result<Option<DigestCheckpoint>, TransferError> {
    let (ledger, project_id) = (ledger.clone(), project_id.to_owned());
    tokio::task::spawn_blocking(move || {
        ledger.checkpoint_all()?;
        match ledger.latest_checkpoint(&project_id) {
            Ok(note) => {
                let tree_size = cts_ledger::Checkpoint::parse_body(&note)?.size;
                Ok(Some(DigestCheckpoint { note, tree_size }))
            }
            Err(cts_ledger::LedgerError::UnknownProject(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    })
    .await?
}

enum DeliveryError {
    /// The destination refused or could not be reached: the tracker's status says so, delivery retries.
    Destination(Problem),
    /// cts itself failed (store, cursors): the cycle stops and is logged.
    Internal(TransferError),
}

impl From<TransferError> for DeliveryError {
    fn from(error: TransferError) -> DeliveryError {
        DeliveryError::Internal(error)
    }
}

/// The history entry of a tracker's cycle: `None` when nothing was due and nothing failed.
fn history_entry(now_ms: i64, done: &CycleReport, failure: Option<Problem>) -> Option<Delivery> {
    let did_something = done.windows_delivered
        + done.windows_rewritten
        + done.digests_written
        + done.files_expired
        + done.windows_streamed
        > 0;
    if !did_something && failure.is_none() {
        return None;
    }
    Some(Delivery {
        time_ms: now_ms,
        outcome: if failure.is_some() { DeliveryOutcome::Failed } else { DeliveryOutcome::Delivered },
        windows_delivered: done.windows_delivered,
        windows_rewritten: done.windows_rewritten,
        files_written: done.files_written,
        traces_written: done.traces_written,
        digests_written: done.digests_written,
        files_expired: done.files_expired,
        windows_streamed: done.windows_streamed,
        traces_streamed: done.traces_streamed,
        error: failure.map(|problem| DeliveryFailure { detail: problem.detail.to_owned(), reason: problem.reason }),
    })
}

fn destination(detail: &'static str, reason: impl ToString) -> DeliveryError {
    DeliveryError::Destination(Problem { detail, reason: reason.to_string() })
}

/// The tracker's `obs_info` when it delivers trace files: not disabled, with a bucket.
fn delivers_files(tracker: &Tracker) -> Option<&ObsInfo> {
    if tracker.status == TrackerStatus::Disabled {
        return None;
    }
    tracker.obs_info.as_ref().filter(|info| info.bucket_name.is_some())
}

/// Whether the tracker streams its traces: not disabled, with `is_lts_enabled`.
fn streams(tracker: &Tracker) -> bool {
    tracker.status != TrackerStatus::Disabled && tracker.lts.is_lts_enabled
}

/// The master key a tracker's files are encrypted under, when it encrypts them.
fn encryption_key(tracker: &Tracker) -> Option<&str> {
    (tracker.is_support_trace_files_encryption == Some(true)).then_some(tracker.kms_id.as_deref()).flatten()
}

pub(crate) fn window_length(config: &TransferConfig) -> i64 {
    (config.interval.as_millis() as i64).max(1)
}

fn digest_period(config: &TransferConfig) -> i64 {
    (config.digest_period.as_millis() as i64).max(1)
}
