//! The benchmark's findings: the measurements of each system, and one table
//! (`figure | cts | PostgreSQL | ratio | target | met?`, [`Figure`]) with the
//! targets of issue #9, followed by what bounds each phase (CPU used by cts
//! serve, PostgreSQL and the bench client, from `/proc`). `Display` prints
//! the text report, `Serialize` gives the JSON (table included).

use crate::gzip_files::GzipTotals;
use crate::query::QueryKind;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Latency of one kind of query over the timed runs.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub kind: QueryKind,
    pub runs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Rows per answer, averaged over the runs.
    pub mean_page_traces: f64,
}

impl Latency {
    /// Summarises per-run durations and answer sizes; `None` without runs.
    pub fn of(kind: QueryKind, durations: &[Duration], page_traces: &[usize]) -> Option<Latency> {
        let ms = sorted_ms(durations);
        if ms.is_empty() {
            return None;
        }
        Some(Latency {
            kind,
            runs: ms.len(),
            p50_ms: percentile(&ms, 0.50),
            p99_ms: percentile(&ms, 0.99),
            mean_page_traces: page_traces.iter().sum::<usize>() as f64 / page_traces.len().max(1) as f64,
        })
    }
}

fn sorted_ms(durations: &[Duration]) -> Vec<f64> {
    let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn find(latencies: &[Latency], kind: QueryKind) -> Option<&Latency> {
    latencies.iter().find(|l| l.kind == kind)
}

/// What one system did with the workload.
#[derive(Debug, Clone, Serialize)]
pub struct SystemReport {
    pub ingest_seconds: f64,
    pub ingest_traces_per_second: f64,
    /// Measured once, at the end: broad pages, free text, aggregation (selective pages are per checkpoint).
    pub queries: Vec<Latency>,
    pub bytes_on_disk: u64,
    pub bytes_per_trace: f64,
    /// Peak resident memory after loading and serving the queries (`VmHWM`; for PostgreSQL its largest
    /// process, shared buffers it touched included).
    pub peak_rss_bytes: Option<u64>,
}

/// PostgreSQL's free text with a pg_trgm GIN index over request, response and message.
#[derive(Debug, Clone, Serialize)]
pub struct TrigramReport {
    pub queries: Vec<Latency>,
    pub index_bytes: u64,
    pub build_seconds: f64,
}

/// `cts import` of the workload written as JSON Lines.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub seconds: f64,
    pub traces_per_second: f64,
    pub file_bytes: u64,
}

/// The selective pages measured once `traces` were loaded into both systems.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    pub traces: usize,
    pub cts: Vec<Latency>,
    pub postgres: Vec<Latency>,
}

/// How the answers of the two sides to one kind of page compared.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PageAgreement {
    pub kind: QueryKind,
    /// Pages with identical traces (all fields but `record_time`).
    pub identical: usize,
    pub compared: usize,
    /// cts pages holding a trace without the free-text terms (a server that ignores `q` returns unfiltered pages).
    pub cts_pages_not_matching_terms: usize,
}

/// Time from an ingest acknowledgement to the trace being visible in ListTraces.
#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Freshness {
    pub fn of(durations: &[Duration]) -> Option<Freshness> {
        let ms = sorted_ms(durations);
        let max_ms = *ms.last()?;
        Some(Freshness { samples: ms.len(), p50_ms: percentile(&ms, 0.50), p99_ms: percentile(&ms, 0.99), max_ms })
    }
}

/// CPU (and cts's writes) during one phase, from `/proc`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseLoad {
    pub phase: String,
    pub wall_seconds: f64,
    pub cts_cpu_seconds: Option<f64>,
    pub postgres_cpu_seconds: Option<f64>,
    pub bench_cpu_seconds: Option<f64>,
    /// Bytes cts serve wrote to storage.
    pub cts_written_bytes: Option<u64>,
}

impl PhaseLoad {
    /// Cores busy on average: CPU seconds over wall seconds.
    fn cores(&self, cpu_seconds: Option<f64>) -> Option<f64> {
        cpu_seconds.map(|cpu| cpu / self.wall_seconds.max(1e-9))
    }

    /// One line: cores each process used, writes, and whether the machine's CPUs were the limit.
    pub fn describe(&self, cores: usize) -> String {
        let mut parts = Vec::new();
        let mut busy = 0.0;
        for (name, cpu) in [
            ("cts serve", self.cts_cpu_seconds),
            ("PostgreSQL", self.postgres_cpu_seconds),
            ("bench client", self.bench_cpu_seconds),
        ] {
            if let Some(used) = self.cores(cpu) {
                busy += used;
                parts.push(format!("{name} {used:.2}"));
            }
        }
        let mut line =
            format!("{}: {:.1} s, cores used of {cores}: {}", self.phase, self.wall_seconds, parts.join(", "));
        let cts_busy = self.cores(self.cts_cpu_seconds).is_some_and(|used| used >= 0.05);
        if let (Some(written), true) = (self.cts_written_bytes, cts_busy) {
            let rate = written as f64 / self.wall_seconds.max(1e-9) / 1_048_576.0;
            line.push_str(&format!("; cts wrote {rate:.1} MiB/s"));
        }
        let idle = (1.0 - busy / cores as f64).max(0.0) * 100.0;
        let verdict = if idle <= 15.0 {
            "CPU-bound".to_owned()
        } else {
            format!("not CPU-bound, {idle:.0}% idle (waiting on fsync/disk or on round trips)")
        };
        format!("{line} -> {verdict}")
    }
}

/// One row of the table. Ratios read "times better for cts": throughput cts / PostgreSQL, latency and bytes
/// PostgreSQL / cts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub figure: String,
    pub cts: String,
    pub postgres: String,
    pub ratio: String,
    pub target: String,
    /// `None` where the issue sets no target or a value is missing.
    pub met: Option<bool>,
}

/// The whole benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub traces: usize,
    pub batch: usize,
    pub concurrency: usize,
    pub seed: u64,
    pub cores: usize,
    /// Bytes of the traces' JSON as sent (request bodies, without the envelope).
    pub workload_json_bytes: u64,
    /// From the oldest to the newest trace's `time`.
    pub workload_span_hours: f64,
    /// Client-side JSON into validated `cts_model::Trace`s, on one core.
    pub parse_traces_per_second: f64,
    pub cts: SystemReport,
    pub cts_import: Option<ImportReport>,
    pub postgres: Option<SystemReport>,
    pub postgres_trigram: Option<TrigramReport>,
    pub checkpoints: Vec<Checkpoint>,
    pub agreement: Vec<PageAgreement>,
    /// Whether the SQL aggregation gave the same rows on both sides (`None`: not compared).
    pub aggregation_agrees: Option<bool>,
    /// The same traces as CTS trace files (`.json.gz`, JSON arrays, gzip level 6).
    pub gzip_files: GzipTotals,
    pub freshness: Option<Freshness>,
    pub phases: Vec<PhaseLoad>,
    /// The table, derived from the fields above by [`BenchReport::figures`].
    pub figures: Vec<Figure>,
}

fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}

fn times(value: f64) -> String {
    format!("{value:.2}x")
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1_048_576.0)
}

const NA: &str = "n/a";

/// Builds rows, each optionally with a target on the ratio or on cts's value.
struct Table(Vec<Figure>);

impl Table {
    fn row(&mut self, figure: impl Into<String>, cts: Option<String>, postgres: Option<String>, ratio: Option<f64>) {
        self.0.push(Figure {
            figure: figure.into(),
            cts: cts.unwrap_or_else(|| NA.into()),
            postgres: postgres.unwrap_or_else(|| "-".into()),
            ratio: ratio.map(times).unwrap_or_else(|| "-".into()),
            target: "-".into(),
            met: None,
        });
    }

    /// Sets the target of the last row and whether `value` meets it.
    fn target(&mut self, target: &str, met: Option<bool>) {
        let last = self.0.last_mut().expect("a row before its target");
        last.target = target.into();
        last.met = met;
    }

    /// A latency row comparing the two sides' values of one percentile.
    fn latency(&mut self, figure: String, cts: Option<f64>, postgres: Option<f64>) {
        let ratio = cts.zip(postgres).map(|(c, p)| p / c.max(1e-9));
        self.row(figure, cts.map(ms), postgres.map(ms), ratio);
    }
}

fn ratio_of(cts: Option<f64>, other: Option<f64>) -> Option<f64> {
    cts.zip(other).map(|(c, o)| o / c.max(1e-9))
}

impl BenchReport {
    /// The table of figures and targets of issue #9.
    pub fn figures(&self) -> Vec<Figure> {
        let mut table = Table(Vec::new());
        let pg = self.postgres.as_ref();
        let ingest_ratio = pg.map(|p| self.cts.ingest_traces_per_second / p.ingest_traces_per_second.max(1e-9));
        table.row(
            "durable ingest, HTTP vs COPY (traces/s)",
            Some(grouped(self.cts.ingest_traces_per_second)),
            pg.map(|p| grouped(p.ingest_traces_per_second)),
            ingest_ratio,
        );
        table.target(">= 20x", ingest_ratio.map(|r| r >= 20.0));
        table.0.push(Figure {
            figure: "parse + validate only, one core (traces/s)".into(),
            cts: grouped(self.parse_traces_per_second),
            postgres: "-".into(),
            ratio: format!(
                "ingest {}",
                times(self.cts.ingest_traces_per_second / self.parse_traces_per_second.max(1e-9))
            ),
            target: "-".into(),
            met: None,
        });
        if let Some(import) = &self.cts_import {
            table.row("cts import of JSON Lines (traces/s)", Some(grouped(import.traces_per_second)), None, None);
        }
        if let Some(last) = self.checkpoints.last() {
            for kind in QueryKind::SELECTIVE {
                let (cts, pg) = (find(&last.cts, kind), find(&last.postgres, kind));
                table.latency(format!("{} p50", kind.label()), cts.map(|l| l.p50_ms), pg.map(|l| l.p50_ms));
                let ratio = ratio_of(cts.map(|l| l.p50_ms), pg.map(|l| l.p50_ms));
                table.target(">= 1x", ratio.map(|r| r >= 1.0));
                table.latency(format!("{} p99", kind.label()), cts.map(|l| l.p99_ms), pg.map(|l| l.p99_ms));
                table.target("<= 20 ms", cts.map(|l| l.p99_ms <= 20.0));
            }
        }
        for kind in QueryKind::BROAD {
            let (cts, pg) = (find(&self.cts.queries, kind), pg.and_then(|p| find(&p.queries, kind)));
            for (name, pick) in [("p50", (|l: &Latency| l.p50_ms) as fn(&Latency) -> f64), ("p99", |l| l.p99_ms)] {
                table.latency(format!("{} {name}", kind.label()), cts.map(pick), pg.map(pick));
                if kind == QueryKind::Broad {
                    table.target("<= 20 ms", cts.map(|l| pick(l) <= 20.0));
                }
            }
        }
        let trigram = self.postgres_trigram.as_ref();
        for kind in QueryKind::TEXT {
            let (cts, pg) = (find(&self.cts.queries, kind), pg.and_then(|p| find(&p.queries, kind)));
            table.latency(format!("{} p50, vs ILIKE", kind.label()), cts.map(|l| l.p50_ms), pg.map(|l| l.p50_ms));
            let ratio = ratio_of(cts.map(|l| l.p50_ms), pg.map(|l| l.p50_ms));
            table.target(">= 10x", ratio.map(|r| r >= 10.0));
            table.latency(format!("{} p99, vs ILIKE", kind.label()), cts.map(|l| l.p99_ms), pg.map(|l| l.p99_ms));
            let indexed = trigram.and_then(|t| find(&t.queries, kind));
            for (name, pick) in [("p50", (|l: &Latency| l.p50_ms) as fn(&Latency) -> f64), ("p99", |l| l.p99_ms)] {
                table.latency(format!("{} {name}, vs pg_trgm", kind.label()), cts.map(pick), indexed.map(pick));
            }
        }
        if let Some(trigram) = trigram {
            table.row(
                "pg_trgm GIN index (extra bytes per trace)",
                Some("-".into()),
                Some(format!(
                    "{:.0} ({}, {:.0} s)",
                    trigram.index_bytes as f64 / self.traces as f64,
                    mib(trigram.index_bytes),
                    trigram.build_seconds
                )),
                None,
            );
        }
        let (cts, pg_aggregation) = (
            find(&self.cts.queries, QueryKind::Aggregation),
            pg.and_then(|p| find(&p.queries, QueryKind::Aggregation)),
        );
        let label = QueryKind::Aggregation.label();
        table.latency(format!("{label} p50"), cts.map(|l| l.p50_ms), pg_aggregation.map(|l| l.p50_ms));
        let ratio = ratio_of(cts.map(|l| l.p50_ms), pg_aggregation.map(|l| l.p50_ms));
        table.target(">= 10x", ratio.map(|r| r >= 10.0));
        table.latency(format!("{label} p99"), cts.map(|l| l.p99_ms), pg_aggregation.map(|l| l.p99_ms));

        let bytes_ratio = pg.map(|p| p.bytes_per_trace / self.cts.bytes_per_trace.max(1e-9));
        table.row(
            "bytes per trace (PostgreSQL: table + indexes)",
            Some(format!("{:.0}", self.cts.bytes_per_trace)),
            pg.map(|p| format!("{:.0}", p.bytes_per_trace)),
            bytes_ratio,
        );
        table.target(">= 10x", bytes_ratio.map(|r| r >= 10.0));
        let gzip_per_trace = self.gzip_files.bytes as f64 / self.traces as f64;
        table.row(
            "bytes per trace vs gzip .json.gz (2nd column)",
            Some(format!("{:.0}", self.cts.bytes_per_trace)),
            Some(format!("{gzip_per_trace:.0}")),
            Some(gzip_per_trace / self.cts.bytes_per_trace.max(1e-9)),
        );
        table.target("below gzip", Some(self.cts.bytes_per_trace < gzip_per_trace));
        if let [first, .., last] = self.checkpoints.as_slice() {
            for kind in QueryKind::SELECTIVE {
                let growth = |early: &[Latency], late: &[Latency]| {
                    Some(find(late, kind)?.p50_ms / find(early, kind)?.p50_ms.max(1e-9))
                };
                let cts = growth(&first.cts, &last.cts);
                table.row(
                    format!(
                        "growth {} -> {} traces: {} p50",
                        grouped(first.traces as f64),
                        grouped(last.traces as f64),
                        kind.label()
                    ),
                    cts.map(times),
                    growth(&first.postgres, &last.postgres).map(times),
                    None,
                );
                table.target("<= 2x", cts.map(|g| g <= 2.0));
            }
        }
        table.row(
            "peak RSS serving (PostgreSQL: largest process)",
            self.cts.peak_rss_bytes.map(mib),
            pg.and_then(|p| p.peak_rss_bytes).map(mib),
            None,
        );
        table.target("< 1 GiB", self.cts.peak_rss_bytes.map(|bytes| bytes < 1 << 30));
        let freshness = self.freshness.as_ref();
        table.row("freshness, ack -> visible in ListTraces p50", freshness.map(|f| ms(f.p50_ms)), None, None);
        table.row("freshness, ack -> visible in ListTraces p99", freshness.map(|f| ms(f.p99_ms)), None, None);
        table.target("<= 1000 ms", freshness.map(|f| f.p99_ms <= 1000.0));
        table.0
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
            "cts bench: {} KooGallery traces (seed {}) over {:.2} days of time, batches of {}, {} concurrent clients, \
             {:.0} bytes of JSON per trace, {} cores",
            grouped(self.traces as f64),
            self.seed,
            self.workload_span_hours / 24.0,
            self.batch,
            self.concurrency,
            self.workload_json_bytes as f64 / self.traces.max(1) as f64,
            self.cores,
        )?;
        writeln!(f)?;
        let line = |f: &mut fmt::Formatter<'_>, cells: [&str; 6]| {
            let [figure, cts, pg, ratio, target, met] = cells;
            writeln!(f, "{figure:<62} {cts:>11} {pg:>22} {ratio:>13} {target:>10} {met:>4}")
        };
        line(f, ["figure", "cts", "PostgreSQL", "ratio", "target", "met?"])?;
        for figure in &self.figures {
            let met = match figure.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            };
            line(f, [&figure.figure, &figure.cts, &figure.postgres, &figure.ratio, &figure.target, met])?;
        }
        writeln!(f)?;
        for agreement in &self.agreement {
            write!(
                f,
                "identical pages on both sides, {}: {} of {}",
                agreement.kind.label(),
                agreement.identical,
                agreement.compared
            )?;
            if agreement.cts_pages_not_matching_terms > 0 {
                write!(
                    f,
                    " -- {} cts pages hold traces without the words: the server ignores q= (unfiltered pages)",
                    agreement.cts_pages_not_matching_terms
                )?;
            }
            writeln!(f)?;
        }
        match self.aggregation_agrees {
            Some(agrees) => writeln!(f, "SQL aggregation rows identical on both sides: {agrees}")?,
            None => writeln!(f, "SQL aggregation rows not compared (cts without SQL, or no PostgreSQL)")?,
        }
        writeln!(f)?;
        writeln!(f, "what bounds each figure:")?;
        for phase in &self.phases {
            writeln!(f, "  {}", phase.describe(self.cores))?;
        }
        write!(
            f,
            "ratios: above 1 favours cts (throughput cts/PostgreSQL, latency and bytes PostgreSQL/cts); \
             PostgreSQL's peak RSS counts the shared buffers its largest process touched"
        )
    }
}

#[cfg(test)]
mod tests;
