//! What a load run measured: per operation kind the requests, the failures by
//! HTTP status (429s also counted apart), throughput and latency percentiles
//! of the successful requests; the acknowledged-trace check. `Display` gives
//! the table, `Serialize` the JSON.

use crate::report::{grouped, percentile};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The kinds of request a load run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `POST /v3/{project_id}/traces` with a batch of seeded KooGallery traces.
    Ingest,
    /// ListTraces by `user` + `trace_name`, a page of 10.
    ListSelective,
    /// ListTraces by `resource_id`, a page of 10.
    ListByResource,
    /// ListTraces without filters, the first page of 100.
    ListBroad,
    /// ListTraces without filters, a following page of 100 (`next` = the previous page's marker).
    ListNextPage,
    /// The CSV export of one user's traces of one kind, read to the end.
    Export,
}

impl Operation {
    pub fn label(self) -> &'static str {
        match self {
            Operation::Ingest => "ingest (POST a batch)",
            Operation::ListSelective => "ListTraces user+trace_name (10)",
            Operation::ListByResource => "ListTraces resource_id (10)",
            Operation::ListBroad => "ListTraces first page (100)",
            Operation::ListNextPage => "ListTraces next page (100)",
            Operation::Export => "export CSV user+trace_name",
        }
    }
}

/// The label of a failure: the HTTP status, or `transport` when no answer came.
pub type FailureLabel = String;

/// The label of rate-limited requests.
pub const RATE_LIMITED: &str = "429";

/// What clients saw of one operation kind.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latencies of the successful requests.
    pub latencies: Vec<Duration>,
    /// Failed requests by label.
    pub failures: BTreeMap<FailureLabel, u64>,
    /// Traces the server accepted, and refused, in ingest answers.
    pub traces_accepted: u64,
    pub traces_rejected: u64,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (label, count) in other.failures {
            *self.failures.entry(label).or_default() += count;
        }
        self.traces_accepted += other.traces_accepted;
        self.traces_rejected += other.traces_rejected;
    }
}

/// One client's tallies, merged into the run's at the end.
#[derive(Debug, Default)]
pub struct Tallies(BTreeMap<Operation, Tally>);

impl Tallies {
    pub fn succeeded(&mut self, operation: Operation, latency: Duration) -> &mut Tally {
        let tally = self.0.entry(operation).or_default();
        tally.latencies.push(latency);
        tally
    }

    pub fn failed(&mut self, operation: Operation, label: FailureLabel) {
        *self.0.entry(operation).or_default().failures.entry(label).or_default() += 1;
    }

    pub fn merge(&mut self, other: Tallies) {
        for (operation, tally) in other.0 {
            self.0.entry(operation).or_default().absorb(tally);
        }
    }

    /// The per-operation rows over `elapsed`, in [`Operation`] order.
    pub fn reports(self, elapsed: Duration) -> Vec<OperationReport> {
        self.0.into_iter().map(|(operation, tally)| OperationReport::of(operation, tally, elapsed)).collect()
    }
}

/// Latency percentiles (nearest rank) and the maximum, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl LatencyMs {
    /// `None` without samples.
    pub fn of(samples: &[Duration]) -> Option<LatencyMs> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let max = *ms.last()?;
        Some(LatencyMs { p50: percentile(&ms, 0.50), p99: percentile(&ms, 0.99), p99_9: percentile(&ms, 0.999), max })
    }
}

/// One kind of request over the run.
#[derive(Debug, Clone, Serialize)]
pub struct OperationReport {
    pub operation: Operation,
    /// Requests answered or failed: `succeeded` + the sum of `failures`.
    pub requests: u64,
    pub succeeded: u64,
    /// Failed requests by HTTP status (`transport`: no answer).
    pub failures: BTreeMap<FailureLabel, u64>,
    /// The 429 answers among `failures`.
    pub rate_limited: u64,
    pub requests_per_second: f64,
    /// Ingest only: traces accepted and refused, and accepted traces per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces_accepted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces_rejected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces_per_second: Option<f64>,
    /// Of the successful requests; `None` when none succeeded.
    pub latency_ms: Option<LatencyMs>,
}

impl OperationReport {
    fn of(operation: Operation, tally: Tally, elapsed: Duration) -> OperationReport {
        let succeeded = tally.latencies.len() as u64;
        let requests = succeeded + tally.failures.values().sum::<u64>();
        let per_second = |count: u64| count as f64 / elapsed.as_secs_f64().max(1e-9);
        let ingest = operation == Operation::Ingest;
        OperationReport {
            operation,
            requests,
            succeeded,
            rate_limited: tally.failures.get(RATE_LIMITED).copied().unwrap_or(0),
            requests_per_second: per_second(requests),
            traces_accepted: ingest.then_some(tally.traces_accepted),
            traces_rejected: ingest.then_some(tally.traces_rejected),
            traces_per_second: ingest.then(|| per_second(tally.traces_accepted)),
            latency_ms: LatencyMs::of(&tally.latencies),
            failures: tally.failures,
        }
    }
}

/// Why the clients stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The duration bound passed.
    Duration,
    /// The request bound was reached.
    Requests,
}

/// Whether every acknowledged trace can be found again by ListTraces `trace_id`.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Trace ids the server acknowledged during the run.
    pub acknowledged: u64,
    /// Of those, how many were looked up (every one, or a seeded sample).
    pub looked_up: u64,
    /// Of those, how many ListTraces returned.
    pub found: u64,
    /// The first few looked up but not found.
    pub missing: Vec<String>,
}

/// A whole load run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// What was loaded: the URL, and whether the run started it.
    pub target: String,
    pub seed: u64,
    pub batch: usize,
    pub ingest_clients: usize,
    pub query_clients: usize,
    pub duration_limit_seconds: f64,
    pub request_limit: u64,
    pub stopped_by: StopReason,
    /// From the first request to the last answer.
    pub elapsed_seconds: f64,
    /// Time ingest clients spent waiting for the producer thread to generate bodies, all clients together
    /// (when large, generation rather than cts bounded the ingest rate).
    pub waited_for_bodies_seconds: f64,
    /// The sum of every operation's `requests`.
    pub requests: u64,
    pub operations: Vec<OperationReport>,
    pub verification: Verification,
}

impl LoadReport {
    /// Failed requests whose status is 5xx, over every operation.
    pub fn server_errors(&self) -> u64 {
        self.operations
            .iter()
            .flat_map(|operation| &operation.failures)
            .filter(|(label, _)| label.starts_with('5'))
            .map(|(_, count)| count)
            .sum()
    }
}

fn optional(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map(format).unwrap_or_else(|| "-".to_owned())
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cts bench load: {} ingest clients (batches of {}), {} query clients, seed {}; target {}",
            self.ingest_clients, self.batch, self.query_clients, self.seed, self.target
        )?;
        writeln!(
            f,
            "ran {:.1} s (bounds {:.0} s, {} requests; stopped by the {} bound)",
            self.elapsed_seconds,
            self.duration_limit_seconds,
            grouped(self.request_limit as f64),
            match self.stopped_by {
                StopReason::Duration => "duration",
                StopReason::Requests => "request",
            }
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<32} {:>9} {:>7} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}",
            "operation", "requests", "errors", "429", "req/s", "traces/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
        )?;
        for row in &self.operations {
            let latency = row.latency_ms;
            writeln!(
                f,
                "{:<32} {:>9} {:>7} {:>6} {:>8.1} {:>9} {:>8} {:>8} {:>8} {:>8}",
                row.operation.label(),
                grouped(row.requests as f64),
                grouped((row.requests - row.succeeded) as f64),
                grouped(row.rate_limited as f64),
                row.requests_per_second,
                optional(row.traces_per_second, grouped),
                optional(latency.map(|l| l.p50), |ms| format!("{ms:.2}")),
                optional(latency.map(|l| l.p99), |ms| format!("{ms:.2}")),
                optional(latency.map(|l| l.p99_9), |ms| format!("{ms:.2}")),
                optional(latency.map(|l| l.max), |ms| format!("{ms:.2}")),
            )?;
        }
        writeln!(
            f,
            "{:<32} {:>9} {:>7} {:>6} {:>8.1}",
            "all",
            grouped(self.requests as f64),
            grouped(self.operations.iter().map(|row| row.requests - row.succeeded).sum::<u64>() as f64),
            grouped(self.operations.iter().map(|row| row.rate_limited).sum::<u64>() as f64),
            self.requests as f64 / self.elapsed_seconds.max(1e-9),
        )?;
        for row in self.operations.iter().filter(|row| !row.failures.is_empty()) {
            let failures: Vec<String> = row.failures.iter().map(|(label, count)| format!("{label} x{count}")).collect();
            writeln!(f, "failures of {}: {}", row.operation.label(), failures.join(", "))?;
        }
        if let Some(rejected) = self.operations.iter().filter_map(|row| row.traces_rejected).find(|&n| n > 0) {
            writeln!(f, "traces refused in ingest answers: {}", grouped(rejected as f64))?;
        }
        writeln!(
            f,
            "ingest clients waited {:.2} s in all for the workload generator (not in the latencies)",
            self.waited_for_bodies_seconds
        )?;
        writeln!(f)?;
        let check = &self.verification;
        if check.looked_up == check.acknowledged {
            write!(f, "acknowledged {}, found {}", grouped(check.acknowledged as f64), grouped(check.found as f64))?;
        } else {
            write!(
                f,
                "acknowledged {}, looked up a seeded sample of {}, found {}",
                grouped(check.acknowledged as f64),
                grouped(check.looked_up as f64),
                grouped(check.found as f64)
            )?;
        }
        if !check.missing.is_empty() {
            write!(f, "\nnot found: {}", check.missing.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn latency_percentiles_use_the_nearest_rank_and_keep_the_maximum() {
        let latency = LatencyMs::of(&ms((1..=2_000).rev())).unwrap();
        assert_eq!(latency, LatencyMs { p50: 1_000.0, p99: 1_980.0, p99_9: 1_998.0, max: 2_000.0 });
        let one = LatencyMs::of(&ms([7])).unwrap();
        assert_eq!((one.p50, one.p99_9, one.max), (7.0, 7.0, 7.0));
        assert!(LatencyMs::of(&[]).is_none());
    }

    #[test]
    fn merged_tallies_add_up_per_operation() {
        let mut first = Tallies::default();
        first.succeeded(Operation::Ingest, Duration::from_millis(4)).traces_accepted += 100;
        first.failed(Operation::Ingest, RATE_LIMITED.to_owned());
        first.failed(Operation::ListBroad, "transport".to_owned());
        let mut second = Tallies::default();
        second.succeeded(Operation::Ingest, Duration::from_millis(2)).traces_accepted += 50;
        second.failed(Operation::Ingest, RATE_LIMITED.to_owned());
        second.failed(Operation::Ingest, "503".to_owned());
        first.merge(second);

        let reports = first.reports(Duration::from_secs(2));
        assert_eq!(reports.iter().map(|r| r.operation).collect::<Vec<_>>(), [Operation::Ingest, Operation::ListBroad]);
        let ingest = &reports[0];
        assert_eq!((ingest.requests, ingest.succeeded, ingest.rate_limited), (5, 2, 2));
        assert_eq!(ingest.failures, BTreeMap::from([("429".to_owned(), 2), ("503".to_owned(), 1)]));
        assert_eq!((ingest.traces_accepted, ingest.traces_per_second), (Some(150), Some(75.0)));
        assert_eq!(ingest.requests_per_second, 2.5);
        let broad = &reports[1];
        assert_eq!((broad.requests, broad.succeeded, broad.latency_ms), (1, 0, None));
        assert_eq!((broad.traces_accepted, broad.traces_per_second), (None, None));
    }

    fn report(acknowledged: u64, looked_up: u64, missing: Vec<String>) -> LoadReport {
        let mut tallies = Tallies::default();
        tallies.succeeded(Operation::Ingest, Duration::from_millis(3)).traces_accepted += acknowledged;
        tallies.failed(Operation::Export, "503".to_owned());
        let operations = tallies.reports(Duration::from_secs(1));
        LoadReport {
            target: "http://127.0.0.1:1".to_owned(),
            seed: 1,
            batch: 100,
            ingest_clients: 1,
            query_clients: 1,
            duration_limit_seconds: 60.0,
            request_limit: 2,
            stopped_by: StopReason::Requests,
            elapsed_seconds: 1.0,
            waited_for_bodies_seconds: 0.0,
            requests: 2,
            operations,
            verification: Verification { acknowledged, looked_up, found: looked_up - missing.len() as u64, missing },
        }
    }

    #[test]
    fn the_table_ends_with_the_acknowledged_trace_check() {
        let every = report(1_500, 1_500, Vec::new()).to_string();
        assert!(every.ends_with("acknowledged 1,500, found 1,500"), "{every}");
        let sampled = report(20_000, 1_000, vec!["t-9".to_owned()]).to_string();
        assert!(sampled.ends_with("acknowledged 20,000, looked up a seeded sample of 1,000, found 999\nnot found: t-9"));
        assert!(sampled.contains("failures of export CSV user+trace_name: 503 x1"), "{sampled}");
        assert_eq!(report(1, 1, Vec::new()).server_errors(), 1);
    }
}
