//! The delivery task: one tokio task that owns every decision about the traces a [`crate::Reporter`] took.
//!
//! - It drains the queue into batches ([`Batcher`]); a batch is sealed when full or when its first trace waited
//!   `batch_max_delay`, and gets a sequence number from the spool.
//! - One batch is in flight at a time, always the pending batch with the lowest sequence number, in memory or
//!   in the spool, so traces reach cts in the order they were sealed, across outages and restarts.
//! - While cts answers, sealed batches wait in memory (up to `max_batches_in_memory`, then in the spool). When
//!   a send fails transiently (no connection, timeout, 5xx, 429, 401/403), that batch and every batch in memory
//!   go to the spool, new batches go straight there, and the oldest spooled batch is retried with exponential
//!   backoff and jitter until cts answers; then the spool is replayed and its files deleted as cts acknowledges
//!   them.
//! - cts's answer lists each trace it rejected as invalid: those are logged with their trace_id and error code,
//!   counted, and not sent again. A whole batch refused with another 4xx is dropped the same way.
//!
//! Spool I/O runs on tokio's blocking threads; sends run in their own tasks, so the queue keeps draining while
//! a send waits.

use crate::batch::{ingest_body, Batcher, EncodedTrace};
use crate::client::{FlushError, Shared};
use crate::config::ReporterConfig;
use crate::stats::DropReason;
use cts_client::{Client, ClientError, IngestResponse};
use cts_model::TraceInput;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// What a reporter's handles ask of the delivery task.
pub(crate) enum Command {
    Flush {
        timeout: Duration,
        done: oneshot::Sender<Result<(), FlushError>>,
    },
    /// Traces were spooled outside the task: look at the spool again.
    Spooled,
    Stop,
}

struct Batch {
    seq: u64,
    traces: Arc<Vec<EncodedTrace>>,
}

struct InFlight {
    batch: Batch,
    /// Whether the batch is in the spool (its file is deleted once cts acknowledged it).
    spooled: bool,
}

struct PendingFlush {
    /// Done once no batch sealed before this sequence number is pending. Taken once the overflow (traces that
    /// found the queue full) is spooled, so that its batches count as before the flush.
    watermark: Option<u64>,
    deadline: Instant,
    done: oneshot::Sender<Result<(), FlushError>>,
}

/// Why cts did not take a batch.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Sending it again later may succeed.
    Transient(String),
    /// Sending it again cannot succeed.
    Refused { status: u16, error_code: Option<String>, error: String },
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        let status = match &error {
            ClientError::Transport(_) => return Failure::Transient(error.to_string()),
            ClientError::Api { status, .. } | ClientError::UnexpectedResponse { status, .. } => *status,
            ClientError::InvalidEndpoint { .. } | ClientError::InvalidProjectId(_) => 0,
        };
        // 401/403: credentials or clock being fixed; the spool keeps the traces meanwhile.
        if matches!(status, 401 | 403 | 408 | 429 | 500..) {
            Failure::Transient(error.to_string())
        } else {
            Failure::Refused { status, error_code: error.error_code().map(str::to_owned), error: error.to_string() }
        }
    }
}

type SendOutcome = Result<IngestResponse, Failure>;

pub(crate) struct Delivery {
    config: ReporterConfig,
    client: Client,
    shared: Arc<Shared>,
    queue: mpsc::Receiver<TraceInput>,
    commands: mpsc::UnboundedReceiver<Command>,
    outcomes: mpsc::Sender<SendOutcome>,
    received_outcomes: mpsc::Receiver<SendOutcome>,
    batcher: Batcher,
    /// When the forming batch is sealed however full it is.
    batch_deadline: Option<Instant>,
    /// Sealed batches in sequence order, not spooled.
    in_memory: VecDeque<Batch>,
    in_flight: Option<InFlight>,
    /// False from a transient failure until cts answers again.
    reachable: bool,
    /// Transient failures in a row.
    failures: u32,
    retry_at: Option<Instant>,
    flushes: Vec<PendingFlush>,
}

impl Delivery {
    pub(crate) fn new(
        config: ReporterConfig,
        client: Client,
        shared: Arc<Shared>,
        queue: mpsc::Receiver<TraceInput>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Delivery {
        let (outcomes, received_outcomes) = mpsc::channel(1);
        Delivery {
            batcher: shared.batcher(),
            config,
            client,
            shared,
            queue,
            commands,
            outcomes,
            received_outcomes,
            batch_deadline: None,
            in_memory: VecDeque::new(),
            in_flight: None,
            reachable: true,
            failures: 0,
            retry_at: None,
            flushes: Vec::new(),
        }
    }

    /// Delivers until stopped or until every reporter handle is gone, then spools what is left in memory.
    pub(crate) async fn run(mut self) {
        loop {
            self.send_next().await;
            self.answer_flushes();
            let wake = [self.batch_deadline, self.retry_at, self.flushes.iter().map(|flush| flush.deadline).min()]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                trace = self.queue.recv() => match trace {
                    Some(trace) => self.take(trace).await,
                    None => break,
                },
                Some(outcome) = self.received_outcomes.recv() => self.finish(outcome).await,
                command = self.commands.recv() => match command {
                    Some(Command::Flush { timeout, done }) => self.start_flush(timeout, done).await,
                    Some(Command::Spooled) => {}
                    Some(Command::Stop) | None => break,
                },
                _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    self.on_timers().await
                }
            }
        }
        self.stop().await;
    }

    /// Adds a submitted trace to the forming batch.
    async fn take(&mut self, trace: TraceInput) {
        let Some(encoded) = self.shared.encode(&trace, &self.batcher) else { return };
        let was_empty = self.batcher.is_empty();
        let sealed = self.batcher.push(encoded);
        if self.batcher.is_empty() {
            self.batch_deadline = None;
        } else if was_empty || !sealed.is_empty() {
            self.batch_deadline = Some(Instant::now() + self.config.batch_max_delay);
        }
        for traces in sealed {
            self.seal(traces).await;
        }
    }

    async fn seal_forming(&mut self) {
        self.batch_deadline = None;
        let traces = self.batcher.take();
        self.seal(traces).await;
    }

    /// Numbers a batch and keeps it in memory, or spools it when cts is unreachable or memory holds enough.
    async fn seal(&mut self, traces: Vec<EncodedTrace>) {
        if traces.is_empty() {
            return;
        }
        let batch = Batch { seq: self.shared.spool.next_seq(), traces: Arc::new(traces) };
        if self.reachable && self.in_memory.len() < self.config.max_batches_in_memory {
            self.in_memory.push_back(batch);
            // Sealing many batches at once (a flush draining the queue) must not leave cts idle meanwhile.
            self.send_next().await;
        } else {
            self.spool(&batch).await;
        }
    }

    async fn spool(&self, batch: &Batch) {
        let (spool, seq, traces) = (self.shared.spool.clone(), batch.seq, batch.traces.clone());
        blocking(move || spool.store(seq, &traces)).await;
    }

    /// Sends the oldest pending batch, unless one is in flight or a retry is not due yet.
    async fn send_next(&mut self) {
        while self.in_flight.is_none() && self.retry_at.is_none() {
            let oldest_in_memory = self.in_memory.front().map(|batch| batch.seq);
            let spooled_first = self
                .shared
                .spool
                .oldest()
                .filter(|spooled| oldest_in_memory.is_none_or(|in_memory| *spooled < in_memory));
            let (batch, spooled) = if let Some(seq) = spooled_first {
                let spool = self.shared.spool.clone();
                match blocking(move || spool.read(seq).map_err(|error| (spool, error))).await {
                    Ok(traces) => (Batch { seq, traces: Arc::new(traces) }, true),
                    Err((spool, error)) => {
                        blocking(move || spool.quarantine(seq, &error)).await;
                        continue;
                    }
                }
            } else if let Some(batch) = self.in_memory.pop_front() {
                (batch, false)
            } else {
                return;
            };
            self.launch(batch, spooled);
        }
    }

    fn launch(&mut self, batch: Batch, spooled: bool) {
        let body = ingest_body(&batch.traces);
        let (client, outcomes, timeout) = (self.client.clone(), self.outcomes.clone(), self.config.request_timeout);
        tokio::spawn(async move {
            let outcome = match tokio::time::timeout(timeout, client.ingest_raw(body)).await {
                Ok(answer) => answer.map_err(Failure::from),
                Err(_) => Err(Failure::Transient(format!("no answer within {timeout:?}"))),
            };
            // The delivery task holds a sender too, so the channel is open while anyone waits for this.
            let _ = outcomes.send(outcome).await;
        });
        self.in_flight = Some(InFlight { batch, spooled });
    }

    /// Acts on cts's answer to the batch in flight.
    async fn finish(&mut self, outcome: SendOutcome) {
        let Some(InFlight { batch, spooled }) = self.in_flight.take() else { return };
        match outcome {
            Ok(answer) => {
                self.cts_answered();
                for rejected in &answer.rejected {
                    let trace_id = batch.traces.get(rejected.index).map_or("", |trace| trace.trace_id.as_str());
                    tracing::warn!(trace_id, error_code = %rejected.error_code, error_msg = %rejected.error_msg,
                        "cts rejected a trace as invalid; dropping it");
                }
                self.shared.stats.dropped(DropReason::Rejected, answer.rejected.len() as u64);
                self.shared.stats.delivered(answer.accepted.len() as u64);
            }
            Err(Failure::Refused { status, error_code, error }) => {
                self.cts_answered();
                let first_trace_id = batch.traces.first().map_or("", |trace| trace.trace_id.as_str());
                tracing::error!(status, error_code = error_code.as_deref().unwrap_or_default(), %error,
                    traces = batch.traces.len(), first_trace_id, "cts refused a whole batch; dropping it");
                self.shared.stats.dropped(DropReason::BatchRejected, batch.traces.len() as u64);
            }
            Err(Failure::Transient(error)) => {
                self.failures += 1;
                let delay = self.config.backoff(self.failures);
                self.retry_at = Some(Instant::now() + delay);
                if std::mem::replace(&mut self.reachable, false) {
                    tracing::warn!(%error, "cts did not take a batch; spooling traces until it does");
                } else {
                    tracing::debug!(%error, retry_in = ?delay, "cts still does not take batches");
                }
                if !spooled {
                    self.spool(&batch).await;
                }
                self.spool_in_memory().await;
                return;
            }
        }
        if spooled {
            let spool = self.shared.spool.clone();
            blocking(move || spool.remove(batch.seq)).await;
        }
    }

    fn cts_answered(&mut self) {
        self.shared.stats.batch_answered();
        if !std::mem::replace(&mut self.reachable, true) {
            tracing::info!(spooled = self.shared.spool.traces(), "cts answers again; replaying the spool");
        }
        self.failures = 0;
        self.retry_at = None;
    }

    /// Spools the sealed batches waiting in memory.
    async fn spool_in_memory(&mut self) {
        while let Some(batch) = self.in_memory.pop_front() {
            self.spool(&batch).await;
        }
    }

    /// Spools everything in memory: the forming batch, the sealed ones, and a copy of the one in flight.
    async fn spool_everything(&mut self) {
        self.seal_forming().await;
        self.spool_in_memory().await;
        if let Some(in_flight) = self.in_flight.as_mut().filter(|in_flight| !in_flight.spooled) {
            in_flight.spooled = true;
            let (spool, seq, traces) = (self.shared.spool.clone(), in_flight.batch.seq, in_flight.batch.traces.clone());
            blocking(move || spool.store(seq, &traces)).await;
        }
    }

    async fn start_flush(&mut self, timeout: Duration, done: oneshot::Sender<Result<(), FlushError>>) {
        while let Ok(trace) = self.queue.try_recv() {
            self.take(trace).await;
        }
        self.seal_forming().await;
        self.flushes.push(PendingFlush { watermark: None, deadline: Instant::now() + timeout, done });
    }

    /// Answers the flushes whose batches were all delivered.
    fn answer_flushes(&mut self) {
        if self.flushes.is_empty() {
            return;
        }
        let oldest_pending = [
            self.in_flight.as_ref().map(|in_flight| in_flight.batch.seq),
            self.in_memory.front().map(|batch| batch.seq),
            self.shared.spool.oldest(),
        ]
        .into_iter()
        .flatten()
        .min();
        if self.shared.overflow_is_idle() {
            for flush in self.flushes.iter_mut().filter(|flush| flush.watermark.is_none()) {
                flush.watermark = Some(self.shared.spool.next_seq());
            }
        }
        let delivered = |flush: &PendingFlush| {
            flush.watermark.is_some_and(|watermark| oldest_pending.is_none_or(|oldest| oldest >= watermark))
        };
        for flush in extract(&mut self.flushes, delivered) {
            let _ = flush.done.send(Ok(()));
        }
    }

    async fn on_timers(&mut self) {
        let now = Instant::now();
        if self.batch_deadline.is_some_and(|deadline| deadline <= now) {
            self.seal_forming().await;
        }
        if self.retry_at.is_some_and(|retry_at| retry_at <= now) {
            self.retry_at = None;
        }
        let expired = extract(&mut self.flushes, |flush| flush.deadline <= now);
        if !expired.is_empty() {
            self.spool_everything().await;
            let spooled = self.shared.spool.traces();
            for flush in expired {
                let _ = flush.done.send(Err(FlushError::TimedOut { spooled }));
            }
        }
    }

    /// Takes what is still queued, spools everything in memory, and answers the flushes still waiting.
    async fn stop(mut self) {
        self.queue.close();
        while let Ok(trace) = self.queue.try_recv() {
            self.take(trace).await;
        }
        self.spool_everything().await;
        let spooled = self.shared.spool.traces();
        for flush in self.flushes.drain(..) {
            let _ = flush.done.send(Err(FlushError::TimedOut { spooled }));
        }
        tracing::debug!(spooled, "reporter delivery stopped");
    }
}

/// Removes and returns the items that match.
fn extract<T>(items: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> Vec<T> {
    let (matching, rest) = std::mem::take(items).into_iter().partition(matches);
    *items = rest;
    matching
}

/// Runs blocking work (spool I/O) on tokio's blocking threads. A panic in it is re-raised here. The only other
/// failure, cancellation, happens when the runtime shuts down, which drops this future too: it then never resolves
/// rather than turning the shutdown into a panic.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_cancelled) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_told_from_refusals() {
        let api = |status: u16, code: &str| ClientError::Api {
            status,
            error_code: code.to_owned(),
            error_msg: "m".to_owned(),
        };
        let unexpected = |status: u16| ClientError::UnexpectedResponse { status, body: "b".to_owned() };
        let cases = [
            (api(500, "CTS.0004"), true),
            (api(503, "CTS.0004"), true),
            (api(429, "CTS.0006"), true),
            (api(401, "CTS.0001"), true),
            (api(403, "CTS.0002"), true),
            (api(400, "CTS.0003"), false),
            (api(413, "CTS.0003"), false),
            (api(404, "CTS.0100"), false),
            (unexpected(502), true),
            (unexpected(400), false),
            (unexpected(200), false),
        ];
        for (error, transient) in cases {
            let shown = error.to_string();
            match Failure::from(error) {
                Failure::Transient(_) => assert!(transient, "{shown}"),
                Failure::Refused { .. } => assert!(!transient, "{shown}"),
            }
        }
    }
}
