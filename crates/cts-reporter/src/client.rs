//! [`Reporter`], the delivery client: takes traces without ever blocking or failing, and delivers them to cts
//! in the background (see [`crate::delivery`] for how).
//!
//! `submit` gives each trace its `trace_id` (a UUID v4) and `time` (now) when absent, so that a trace sent again
//! after a lost answer or a restart is the same trace to cts, which keeps it once. It then queues the trace in
//! memory; when the queue is full the trace goes to the spool, written by a blocking task off the caller's thread.

use crate::batch::{Batcher, EncodedTrace};
use crate::config::{ConfigError, ReporterConfig};
use crate::delivery::{Command, Delivery};
use crate::spool::{Spool, SpoolError};
use crate::stats::{DropReason, ReporterStats, Stats};
use crate::TraceSink;
use cts_client::{Client, ClientError};
use cts_model::TraceInput;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Why a reporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cts client: {0}")]
    Client(#[from] ClientError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("the reporter must be started inside a tokio runtime")]
    NoRuntime,
}

/// Why a flush ended without every trace delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    /// The time ran out; what was not delivered is in the spool (and will be, by this reporter or the next one
    /// on the same spool directory).
    #[error("flush timed out; {spooled} traces wait in the spool")]
    TimedOut { spooled: u64 },
    /// The reporter was shut down.
    #[error("the reporter is shut down")]
    Stopped,
}

/// Reports traces to cts. Cheap to clone; every clone feeds the same background delivery.
#[derive(Clone)]
pub struct Reporter {
    queue: mpsc::Sender<TraceInput>,
    shared: Arc<Shared>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

/// What the reporter's handles and its delivery task share.
pub(crate) struct Shared {
    pub(crate) stats: Arc<Stats>,
    pub(crate) spool: Arc<Spool>,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    overflow: Mutex<Overflow>,
    batch_max_traces: usize,
    batch_max_bytes: usize,
    queue_capacity: usize,
    runtime: tokio::runtime::Handle,
}

/// Traces that found the queue full, on their way to the spool.
#[derive(Default)]
struct Overflow {
    traces: Vec<TraceInput>,
    /// Whether a blocking task is writing them.
    writing: bool,
    /// Traces dropped because this buffer was full too, since the last time it drained.
    dropped: u64,
}

impl Reporter {
    /// Opens the spool and starts delivering in a task of the current tokio runtime.
    pub fn start(config: ReporterConfig) -> Result<Reporter, ReporterError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ReporterError::NoRuntime)?;
        let client = Client::new(&config.endpoint, config.credentials.clone())?;
        let stats = Arc::new(Stats::default());
        let spool = Arc::new(Spool::open(&config.spool_dir, config.spool_max_bytes, stats.clone())?);
        let (queue, queued) = mpsc::channel(config.queue_capacity);
        let (commands, received_commands) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            stats,
            spool,
            commands,
            overflow: Mutex::new(Overflow::default()),
            batch_max_traces: config.batch_max_traces,
            batch_max_bytes: config.batch_max_bytes,
            queue_capacity: config.queue_capacity,
            runtime: runtime.clone(),
        });
        let delivery = Delivery::new(config, client, shared.clone(), queued, received_commands);
        let task = runtime.spawn(delivery.run());
        Ok(Reporter { queue, shared, task: Arc::new(Mutex::new(Some(task))) })
    }

    /// Takes a trace for delivery. Never blocks, never fails: a trace that cannot be kept is counted as dropped
    /// and logged.
    pub fn submit(&self, mut trace: TraceInput) {
        let trace_id = trace.trace_id.get_or_insert_with(|| uuid::Uuid::new_v4().hyphenated().to_string());
        tracing::trace!(%trace_id, "trace submitted");
        trace.time.get_or_insert_with(cts_model::now_ms);
        self.shared.stats.submitted(1);
        match self.queue.try_send(trace) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(trace)) => self.shared.overflow(trace),
            Err(mpsc::error::TrySendError::Closed(trace)) => {
                tracing::warn!(
                    trace_id = trace.trace_id.as_deref().unwrap_or_default(),
                    "trace submitted after the reporter shut down; dropping it"
                );
                self.shared.stats.dropped(DropReason::Stopped, 1);
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ReporterStats {
        self.shared.stats.snapshot()
    }

    /// Waits until every trace submitted before the call, and every trace the spool held, is delivered or given
    /// up (rejected by cts, or dropped and counted): `Ok`. When `timeout` runs out first, what is still in memory
    /// goes to the spool and the error says how many traces wait there.
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let (done, finished) = oneshot::channel();
        if self.shared.commands.send(Command::Flush { timeout, done }).is_err() {
            return Err(FlushError::Stopped);
        }
        finished.await.unwrap_or(Err(FlushError::Stopped))
    }

    /// Flushes (see [`Reporter::flush`]) and stops delivering: traces still pending then go to the spool, and
    /// traces submitted afterwards through other clones are dropped. Returns once the delivery task ended.
    pub async fn shutdown(self, timeout: Duration) -> Result<(), FlushError> {
        let flushed = self.flush(timeout).await;
        // The task may be gone already, its channel with it: then there is nothing left to stop.
        let _ = self.shared.commands.send(Command::Stop);
        let task = self.task.lock().take();
        if let Some(task) = task {
            if let Err(error) = task.await {
                tracing::error!(%error, "the reporter's delivery task failed");
            }
        }
        flushed
    }
}

impl TraceSink for Reporter {
    fn submit(&self, trace: TraceInput) {
        Reporter::submit(self, trace);
    }
}

impl Shared {
    /// Encodes a trace, or drops it (counted, logged) when it is larger than a batch may be.
    pub(crate) fn encode(&self, trace: &TraceInput, batcher: &Batcher) -> Option<EncodedTrace> {
        let encoded = EncodedTrace::encode(trace);
        if batcher.admits(&encoded) {
            return Some(encoded);
        }
        tracing::warn!(trace_id = %encoded.trace_id, bytes = encoded.json.len(), max_bytes = self.batch_max_bytes,
            "trace larger than a batch may be; dropping it");
        self.stats.dropped(DropReason::TooLarge, 1);
        None
    }

    pub(crate) fn batcher(&self) -> Batcher {
        Batcher::new(self.batch_max_traces, self.batch_max_bytes)
    }

    /// Whether no overflowing trace is waiting to be spooled.
    pub(crate) fn overflow_is_idle(&self) -> bool {
        let overflow = self.overflow.lock();
        overflow.traces.is_empty() && !overflow.writing
    }

    /// Queues a trace that found the queue full for the spool, starting a writer if none runs. Drops it when
    /// this buffer is full as well (the disk does not keep up).
    fn overflow(self: &Arc<Self>, trace: TraceInput) {
        let mut overflow = self.overflow.lock();
        if overflow.traces.len() >= self.queue_capacity {
            if overflow.dropped == 0 {
                tracing::error!(
                    capacity = self.queue_capacity,
                    "the reporter's queue and spool writer are both full; dropping traces until they catch up"
                );
            }
            overflow.dropped += 1;
            drop(overflow);
            self.stats.dropped(DropReason::Overloaded, 1);
            return;
        }
        overflow.traces.push(trace);
        if !std::mem::replace(&mut overflow.writing, true) {
            let shared = self.clone();
            self.runtime.spawn_blocking(move || shared.spool_overflow());
        }
    }

    /// Writes overflowing traces to the spool, in batches, until none are left.
    fn spool_overflow(&self) {
        loop {
            let traces = {
                let mut overflow = self.overflow.lock();
                if overflow.traces.is_empty() {
                    overflow.writing = false;
                    if overflow.dropped > 0 {
                        tracing::warn!(dropped = overflow.dropped, "the reporter caught up with its overflow");
                        overflow.dropped = 0;
                    }
                    break;
                }
                std::mem::take(&mut overflow.traces)
            };
            let mut batcher = self.batcher();
            let mut batches = Vec::new();
            for trace in &traces {
                if let Some(encoded) = self.encode(trace, &batcher) {
                    batches.extend(batcher.push(encoded));
                }
            }
            batches.push(batcher.take());
            for batch in batches.iter().filter(|batch| !batch.is_empty()) {
                self.spool.store(self.spool.next_seq(), batch);
            }
        }
        // Wakes the delivery task: the spool has more, or a flush may be waiting for the overflow to drain.
        let _ = self.commands.send(Command::Spooled);
    }
}
