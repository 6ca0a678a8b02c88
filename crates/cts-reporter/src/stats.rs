//! What the reporter did with the traces it was given: counters kept in the process (for
//! [`crate::Reporter::stats`]) and published through the `metrics` crate at the same time.
//!
//! Metric names: `cts_reporter_submitted_total`, `cts_reporter_delivered_total`,
//! `cts_reporter_spooled_total`, `cts_reporter_dropped_total{reason}`, `cts_reporter_batches_total` and the gauge
//! `cts_reporter_spool_bytes`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a trace was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// cts refused the trace as invalid; sending it again cannot change that.
    Rejected,
    /// cts refused a whole batch with a client error other than throttling or authentication.
    BatchRejected,
    /// The encoded trace is larger than a batch may be.
    TooLarge,
    /// The spool had no room left.
    SpoolFull,
    /// Writing the spool failed.
    SpoolWriteFailed,
    /// A spool file failed its checksum or could not be parsed (it is kept aside as `*.corrupt`).
    SpoolCorrupt,
    /// The in-memory queue was full and so was the buffer of traces on their way to the spool.
    Overloaded,
    /// Submitted after the reporter was shut down.
    Stopped,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::Rejected,
        DropReason::BatchRejected,
        DropReason::TooLarge,
        DropReason::SpoolFull,
        DropReason::SpoolWriteFailed,
        DropReason::SpoolCorrupt,
        DropReason::Overloaded,
        DropReason::Stopped,
    ];

    /// The `reason` label of `cts_reporter_dropped_total`.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Rejected => "rejected",
            DropReason::BatchRejected => "batch_rejected",
            DropReason::TooLarge => "too_large",
            DropReason::SpoolFull => "spool_full",
            DropReason::SpoolWriteFailed => "spool_write_failed",
            DropReason::SpoolCorrupt => "spool_corrupt",
            DropReason::Overloaded => "overloaded",
            DropReason::Stopped => "stopped",
        }
    }

    fn index(self) -> usize {
        DropReason::ALL.iter().position(|reason| *reason == self).expect("ALL lists every reason")
    }
}

/// A snapshot of the counters. Every submitted trace ends up delivered, dropped, or still pending
/// (in memory or in the spool); a spooled trace is counted as spooled and later as delivered.
/// Traces replayed from a spool a previous process left count as delivered, not as submitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReporterStats {
    pub submitted: u64,
    /// Acknowledged by cts (stored, or already stored before).
    pub delivered: u64,
    /// Written to the spool (a trace spooled once counts once).
    pub spooled: u64,
    /// Ingest requests cts answered (acknowledged, or refused as a whole).
    pub batches: u64,
    dropped: [u64; DropReason::ALL.len()],
    /// The bytes the spool's files take now.
    pub spool_bytes: u64,
}

impl ReporterStats {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// The live counters, shared by the reporter's handles and its tasks.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    submitted: AtomicU64,
    delivered: AtomicU64,
    spooled: AtomicU64,
    batches: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    spool_bytes: AtomicU64,
}

impl Stats {
    pub(crate) fn submitted(&self, traces: u64) {
        self.submitted.fetch_add(traces, Ordering::Relaxed);
        metrics::counter!("cts_reporter_submitted_total").increment(traces);
    }

    pub(crate) fn delivered(&self, traces: u64) {
        self.delivered.fetch_add(traces, Ordering::Relaxed);
        metrics::counter!("cts_reporter_delivered_total").increment(traces);
    }

    pub(crate) fn spooled(&self, traces: u64) {
        self.spooled.fetch_add(traces, Ordering::Relaxed);
        metrics::counter!("cts_reporter_spooled_total").increment(traces);
    }

    pub(crate) fn batch_answered(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cts_reporter_batches_total").increment(1);
    }

    pub(crate) fn dropped(&self, reason: DropReason, traces: u64) {
        if traces == 0 {
            return;
        }
        self.dropped[reason.index()].fetch_add(traces, Ordering::Relaxed);
        metrics::counter!("cts_reporter_dropped_total", "reason" => reason.label()).increment(traces);
    }

    pub(crate) fn spool_bytes(&self, bytes: u64) {
        self.spool_bytes.store(bytes, Ordering::Relaxed);
        metrics::gauge!("cts_reporter_spool_bytes").set(bytes as f64);
    }

    pub(crate) fn snapshot(&self) -> ReporterStats {
        ReporterStats {
            submitted: self.submitted.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            spooled: self.spooled.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            dropped: std::array::from_fn(|index| self.dropped[index].load(Ordering::Relaxed)),
            spool_bytes: self.spool_bytes.load(Ordering::Relaxed),
        }
    }
}
