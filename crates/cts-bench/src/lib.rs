//! `cts bench`: a seeded KooGallery workload, and the benchmark of cts against
//! PostgreSQL on the same data and queries (issue #9's figures in one run).
//!
//! [`run`] streams the workload in chunks (generated untimed, so a 10M run
//! needs a few hundred MB, not GBs) into both systems, all on 127.0.0.1:
//! - cts: durable ingest over HTTP with `concurrency` clients of `cts serve`
//!   (a child process on a free port with a fresh data dir);
//! - how fast the same JSON parses and validates on one core, and what it
//!   takes as gzip CTS trace files;
//! - PostgreSQL: the same traces loaded with `COPY` in the same batches over
//!   as many connections (see [`postgres`] for the table design).
//!
//! At each checkpoint (`--checkpoints`, else once at the end) both answer the
//! selective pages; at the end also broad pages, free text (PostgreSQL plain
//! and with pg_trgm), the SQL aggregation, freshness of new traces, peak RSS,
//! bytes on disk, and `cts import`. CPU of every process is read from `/proc`
//! per phase. Every phase is bounded in time; children never outlive the run.

mod aggregation;
mod bench;
mod cts_http;
mod freshness;
pub mod gzip_files;
pub mod load;
mod meter;
pub mod postgres;
mod process;
pub mod procfs;
mod query;
mod report;
mod stages;
pub mod workload;

pub use query::{ListQuery, QueryKind, QueryValues};
pub use report::{
    BenchReport, Checkpoint, Figure, Freshness, ImportReport, Latency, PageAgreement, PhaseLoad, SystemReport,
    TrigramReport,
};
pub use stages::{checkpoint_plan, parse_count};

use anyhow::{bail, Context};
use bytes::Bytes;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Traces in the workload.
    pub traces: usize,
    /// Trace counts at which the selective pages are measured (the run's end is always one).
    pub checkpoints: Vec<usize>,
    /// Traces per ingest request and per COPY transaction (at most 1,000, the ingest limit).
    pub batch: usize,
    /// Concurrent HTTP clients, and PostgreSQL connections.
    pub concurrency: usize,
    pub seed: u64,
    /// Timed runs of each kind of selective and broad page (after a warm-up).
    pub queries: usize,
    /// Timed runs of each free-text query and of the aggregation (slow on PostgreSQL).
    pub heavy_queries: usize,
    /// Probes of the freshness measurement.
    pub freshness_samples: usize,
    /// The `cts` executable to run as `cts serve` and `cts import`.
    pub cts_binary: PathBuf,
    /// Where data directories, logs and the JSON Lines file go (emptied of them first).
    pub work_dir: PathBuf,
    /// PostgreSQL to compare with; `None` measures cts alone.
    pub postgres_url: Option<String>,
    pub skip_import: bool,
    /// Keep the data directories and the JSON Lines file afterwards.
    pub keep_files: bool,
    /// Upper bound of every phase (ingest, queries, import, load, shutdown).
    pub phase_timeout: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            traces: 1_000_000,
            checkpoints: Vec::new(),
            batch: 1_000,
            concurrency: 4,
            seed: 1,
            queries: 200,
            heavy_queries: 10,
            freshness_samples: 200,
            cts_binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cts")),
            work_dir: std::env::temp_dir().join("cts-bench"),
            postgres_url: None,
            skip_import: false,
            keep_files: false,
            phase_timeout: Duration::from_secs(1_800),
        }
    }
}

/// The flags of `cts bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Without a mode, the benchmark against PostgreSQL.
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
    /// Traces in the workload (20000, 20k, 10M).
    #[arg(long, default_value = "1M", value_parser = parse_count)]
    pub traces: usize,
    /// Trace counts at which selective queries are measured on both systems, e.g. 1M,10M (the end always is).
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub checkpoints: Vec<usize>,
    /// Traces per ingest request and per COPY transaction (1-1000).
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Concurrent HTTP clients, and PostgreSQL connections.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Timed runs of each kind of selective and broad ListTraces page.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Timed runs of each free-text query and of the SQL aggregation.
    #[arg(long, default_value_t = 10)]
    pub heavy_queries: usize,
    /// Freshness probes (ingest acknowledged -> visible in ListTraces).
    #[arg(long, default_value_t = 200)]
    pub freshness_samples: usize,
    /// PostgreSQL to compare with (postgres://user:password@127.0.0.1:port/db); without it cts runs alone.
    #[arg(long, env = "CTS_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Where data directories, logs and the workload file go (default: a `cts-bench` temporary directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Do not time `cts import`.
    #[arg(long)]
    pub skip_import: bool,
    /// Keep the data directories and the workload file afterwards.
    #[arg(long)]
    pub keep_files: bool,
    /// Upper bound of each phase, in seconds.
    #[arg(long, default_value_t = 1_800)]
    pub phase_timeout_secs: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The modes of `cts bench` besides the benchmark.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchMode {
    /// A load test mixing ingest and queries, bounded in time and requests: throughput and latency percentiles.
    Load(load::LoadArgs),
}

/// `cts bench`: runs with these flags and prints the table (or JSON) on stdout.
pub fn run_cli(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(BenchMode::Load(load_args)) = args.mode {
        return load::run_cli(load_args);
    }
    let defaults = BenchOptions::default();
    let options = BenchOptions {
        traces: args.traces,
        checkpoints: args.checkpoints,
        batch: args.batch,
        concurrency: args.concurrency,
        seed: args.seed,
        queries: args.queries,
        heavy_queries: args.heavy_queries,
        freshness_samples: args.freshness_samples,
        cts_binary: std::env::current_exe().context("locating the cts executable")?,
        work_dir: args.work_dir.unwrap_or(defaults.work_dir),
        postgres_url: args.postgres_url,
        skip_import: args.skip_import,
        keep_files: args.keep_files,
        phase_timeout: Duration::from_secs(args.phase_timeout_secs),
    };
    let report = run(options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

/// Runs the benchmark on its own thread and runtime (callable from anywhere,
/// inside an async runtime too).
pub fn run(options: BenchOptions) -> anyhow::Result<BenchReport> {
    if options.traces == 0
        || !(1..=1_000).contains(&options.batch)
        || options.concurrency == 0
        || options.queries == 0
        || options.heavy_queries == 0
    {
        bail!("bench needs traces > 0, batch 1-1000, concurrency > 0, queries > 0 and heavy queries > 0");
    }
    checkpoint_plan(options.traces, &options.checkpoints)?;
    on_own_runtime("cts-bench", move || bench::bench(options))
}

/// Runs the future `work` makes on a new thread with its own multi-threaded
/// runtime (callable from anywhere, inside an async runtime too).
fn on_own_runtime<T: Send + 'static, F: Future<Output = anyhow::Result<T>>>(
    name: &str,
    work: impl FnOnce() -> F + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(work())
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the {name} thread panicked"))?
}

fn progress(message: impl std::fmt::Display) {
    eprintln!("cts bench: {message}");
}

/// Gathers traces' JSON into ingest request bodies (`{"traces":[...]}`) of `batch` traces each.
pub(crate) struct BodyBuilder {
    batch: usize,
    body: Vec<u8>,
    traces: usize,
}

impl BodyBuilder {
    pub(crate) fn new(batch: usize) -> BodyBuilder {
        BodyBuilder { batch, body: Vec::new(), traces: 0 }
    }

    /// Adds one trace; returns the body it completes.
    pub(crate) fn push(&mut self, trace_json: &[u8]) -> Option<Bytes> {
        self.body.extend_from_slice(if self.traces == 0 { b"{\"traces\":[" } else { b"," });
        self.body.extend_from_slice(trace_json);
        self.traces += 1;
        (self.traces == self.batch).then(|| self.take())
    }

    /// The last, partly filled body, if any trace is left.
    pub(crate) fn finish(mut self) -> Option<Bytes> {
        (self.traces > 0).then(|| self.take())
    }

    fn take(&mut self) -> Bytes {
        self.body.extend_from_slice(b"]}");
        self.traces = 0;
        Bytes::from(std::mem::take(&mut self.body))
    }
}

pub(crate) async fn within<T>(
    timeout: Duration,
    phase: &str,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(timeout, work).await.with_context(|| format!("{phase} took longer than {timeout:?}"))?
}

/// Empties (creating) a directory under the work dir.
pub(crate) fn fresh_dir(work_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = work_dir.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn bench_flags_still_run_the_benchmark_and_load_is_a_separate_mode() {
        use clap::Parser;
        let bench = Cli::try_parse_from(["bench", "--traces", "5", "--batch", "2"]).unwrap().bench;
        assert!(bench.mode.is_none());
        assert_eq!((bench.traces, bench.batch), (5, 2));
        let load = Cli::try_parse_from(["bench", "load", "--duration", "3", "--ingest-clients", "4"]).unwrap().bench;
        let Some(BenchMode::Load(load)) = load.mode else { panic!("load mode expected") };
        assert_eq!((load.duration, load.ingest_clients, load.requests), (3, 4, 1_000_000));
        assert!(Cli::try_parse_from(["bench", "--traces", "5", "load"]).is_err(), "bench flags do not apply to load");
        assert!(Cli::try_parse_from(["bench", "load", "--url", "http://h", "--rate-limit-key", "5"]).is_err());
    }

    #[test]
    fn options_out_of_range_are_refused_before_anything_runs() {
        for options in [
            BenchOptions { traces: 0, ..BenchOptions::default() },
            BenchOptions { batch: 1_001, ..BenchOptions::default() },
            BenchOptions { concurrency: 0, ..BenchOptions::default() },
        ] {
            assert!(run(options).is_err());
        }
    }
}
