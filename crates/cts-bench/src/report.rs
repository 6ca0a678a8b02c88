//! The benchmark's findings: one record per system, latency summaries, and the
//! side-by-side table (`Display`) with the ratios; `Serialize` gives the JSON.

use crate::query::QueryKind;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Latency of one kind of page over the timed runs.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub kind: QueryKind,
    pub runs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Traces per page, averaged over the runs.
    pub mean_page_traces: f64,
}

impl Latency {
    /// Summarises per-run durations and page sizes; `None` without runs.
    pub fn of(kind: QueryKind, durations: &[Duration], page_traces: &[usize]) -> Option<Latency> {
        if durations.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        Some(Latency {
            kind,
            runs: ms.len(),
            p50_ms: percentile(&ms, 0.50),
            p99_ms: percentile(&ms, 0.99),
            mean_page_traces: page_traces.iter().sum::<usize>() as f64 / page_traces.len().max(1) as f64,
        })
    }
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What one system did with the workload.
#[derive(Debug, Clone, Serialize)]
pub struct SystemReport {
    pub ingest_seconds: f64,
    pub ingest_traces_per_second: f64,
    pub queries: Vec<Latency>,
    pub bytes_on_disk: u64,
    pub bytes_per_trace: f64,
}

impl SystemReport {
    fn latency(&self, kind: QueryKind) -> Option<&Latency> {
        self.queries.iter().find(|l| l.kind == kind)
    }
}

/// `cts import` of the workload written as JSON Lines.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub seconds: f64,
    pub traces_per_second: f64,
    pub file_bytes: u64,
}

/// The whole benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub traces: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub seed: u64,
    /// Bytes of the traces' JSON as sent (request bodies, without the envelope).
    pub workload_json_bytes: u64,
    /// Client-side JSON into validated `cts_model::Trace`s, on one core.
    pub parse_traces_per_second: f64,
    pub cts: SystemReport,
    pub cts_import: Option<ImportReport>,
    pub postgres: Option<SystemReport>,
    /// How the pages of the two sides compared (with PostgreSQL only).
    pub page_agreement: Option<PageAgreement>,
}

/// Timed pages run on both sides, and how many had identical traces (all fields but `record_time`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PageAgreement {
    pub identical: usize,
    pub compared: usize,
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}x", numerator / denominator)
    } else {
        "-".to_owned()
    }
}

/// 1234567.8 -> "1,234,568".
pub(crate) fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let (sign, digits) = digits.split_at(if digits.starts_with('-') { 1 } else { 0 });
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cts bench: {} KooGallery traces (seed {}), batches of {}, {} concurrent clients, {:.0} bytes of JSON per trace",
            grouped(self.traces as f64),
            self.seed,
            self.batch,
            self.concurrency,
            self.workload_json_bytes as f64 / self.traces.max(1) as f64
        )?;
        writeln!(f)?;
        let pg = self.postgres.as_ref();
        let row = |f: &mut fmt::Formatter<'_>, label: &str, cts: String, pg: Option<String>, ratio: Option<String>| {
            writeln!(
                f,
                "{label:<44} {cts:>12} {:>12} {:>10}",
                pg.unwrap_or_else(|| "-".into()),
                ratio.unwrap_or_default()
            )
        };
        writeln!(f, "{:<44} {:>12} {:>12} {:>10}", "", "cts", "PostgreSQL", "ratio")?;
        row(
            f,
            "durable ingest over HTTP/COPY (traces/s)",
            grouped(self.cts.ingest_traces_per_second),
            pg.map(|p| grouped(p.ingest_traces_per_second)),
            pg.map(|p| ratio(self.cts.ingest_traces_per_second, p.ingest_traces_per_second) + " (a)"),
        )?;
        row(
            f,
            "  wall time (s)",
            format!("{:.2}", self.cts.ingest_seconds),
            pg.map(|p| format!("{:.2}", p.ingest_seconds)),
            None,
        )?;
        for kind in QueryKind::ALL {
            let Some(cts) = self.cts.latency(kind) else { continue };
            let pg = pg.and_then(|p| p.latency(kind));
            row(
                f,
                &format!("{} p50 (ms)", kind.label()),
                format!("{:.2}", cts.p50_ms),
                pg.map(|p| format!("{:.2}", p.p50_ms)),
                pg.map(|p| ratio(p.p50_ms, cts.p50_ms) + " (b)"),
            )?;
            row(
                f,
                &format!("{} p99 (ms)", kind.label()),
                format!("{:.2}", cts.p99_ms),
                pg.map(|p| format!("{:.2}", p.p99_ms)),
                pg.map(|p| ratio(p.p99_ms, cts.p99_ms) + " (b)"),
            )?;
        }
        row(
            f,
            "bytes per trace on disk",
            format!("{:.0}", self.cts.bytes_per_trace),
            pg.map(|p| format!("{:.0}", p.bytes_per_trace)),
            pg.map(|p| ratio(p.bytes_per_trace, self.cts.bytes_per_trace) + " (c)"),
        )?;
        if let Some(import) = &self.cts_import {
            row(f, "cts import of JSON Lines (traces/s)", grouped(import.traces_per_second), None, None)?;
        }
        row(f, "parse + validate only, one core (traces/s)", grouped(self.parse_traces_per_second), None, None)?;
        writeln!(f)?;
        if let Some(PageAgreement { identical, compared }) = self.page_agreement {
            writeln!(f, "identical pages on both sides: {identical} of {compared}")?;
        }
        write!(f, "ratios: (a) cts / PostgreSQL, (b) PostgreSQL / cts, (c) PostgreSQL / cts; above 1 favours cts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[1.0, 2.0], 0.5), 1.0);
    }

    #[test]
    fn latency_summarises_runs_and_page_sizes() {
        let durations: Vec<Duration> = (1..=10).rev().map(Duration::from_millis).collect();
        let latency = Latency::of(QueryKind::Broad, &durations, &[10, 10, 4]).unwrap();
        assert_eq!((latency.p50_ms, latency.p99_ms, latency.mean_page_traces), (5.0, 10.0, 8.0));
        assert!(Latency::of(QueryKind::Broad, &[], &[]).is_none());
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        for (value, text) in
            [(0.0, "0"), (999.0, "999"), (1000.0, "1,000"), (1234567.8, "1,234,568"), (-4321.0, "-4,321")]
        {
            assert_eq!(grouped(value), text);
        }
    }
}
