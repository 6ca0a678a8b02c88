//! `cts bench`: a seeded KooGallery workload, and the benchmark of cts against
//! PostgreSQL on the same data.
//!
//! [`run`] generates the workload once (pre-serialized, so generation is not
//! timed), then measures, all on 127.0.0.1:
//! - cts: durable ingest over HTTP with `concurrency` clients of `cts serve`
//!   (a child process on a free port with a fresh data dir), ListTraces
//!   latency (p50/p99) of a selective and two broad first pages, bytes per
//!   trace on disk after a graceful stop, and `cts import` of the same traces
//!   as JSON Lines;
//! - how fast the workload's JSON parses and validates on one core;
//! - PostgreSQL: the same traces loaded with `COPY` in the same batches over
//!   as many connections, the same pages through SQL, and the table's size
//!   with indexes and TOAST (see [`postgres`] for the design).
//!
//! Every phase is bounded in time; children never outlive the run.

mod cts_http;
pub mod load;
pub mod postgres;
mod process;
mod query;
mod report;
pub mod workload;

pub use query::{ListQuery, QueryKind};
pub use report::{BenchReport, ImportReport, Latency, PageAgreement, SystemReport};

use anyhow::{bail, Context};
use bytes::Bytes;
use cts_model::{now_ms, TraceInput};
use process::{dir_bytes, Identity, Server};
use serde_json::value::RawValue;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Traces in the workload.
    pub traces: usize,
    /// Traces per ingest request and per COPY transaction (at most 1,000, the ingest limit).
    pub batch: usize,
    /// Concurrent HTTP clients, and PostgreSQL connections.
    pub concurrency: usize,
    pub seed: u64,
    /// Timed runs of each kind of page (after a warm-up).
    pub queries: usize,
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
            batch: 1_000,
            concurrency: 4,
            seed: 1,
            queries: 200,
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
    /// Traces in the workload.
    #[arg(long, default_value_t = 1_000_000)]
    pub traces: usize,
    /// Traces per ingest request and per COPY transaction (1-1000).
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Concurrent HTTP clients, and PostgreSQL connections.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Timed runs of each kind of ListTraces page.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
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
        batch: args.batch,
        concurrency: args.concurrency,
        seed: args.seed,
        queries: args.queries,
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
    if options.traces == 0 || !(1..=1_000).contains(&options.batch) || options.concurrency == 0 || options.queries == 0
    {
        bail!("bench needs traces > 0, batch 1-1000, concurrency > 0 and queries > 0");
    }
    on_own_runtime("cts-bench", move || bench(options))
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

/// The workload as request bodies, with what the queries need from it.
struct PreparedWorkload {
    /// `{"traces":[...]}` bodies of `batch` traces each.
    bodies: Vec<Bytes>,
    /// (user name, trace name) pairs that occur in the workload, for selective pages.
    pairs: Vec<(String, String)>,
    json_bytes: u64,
}

fn prepare(
    seed: u64,
    now_ms: i64,
    traces: usize,
    batch: usize,
    pairs_wanted: usize,
) -> anyhow::Result<PreparedWorkload> {
    let stride = (traces / pairs_wanted).max(1);
    let mut prepared =
        PreparedWorkload { bodies: Vec::with_capacity(traces.div_ceil(batch)), pairs: Vec::new(), json_bytes: 0 };
    let mut bodies = BodyBuilder::new(batch);
    for (index, trace) in workload::Generator::new(seed, now_ms, traces).enumerate() {
        if index % stride == 0 && prepared.pairs.len() < pairs_wanted {
            let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
            prepared.pairs.push((text(&trace["user"]["name"]), text(&trace["trace_name"])));
        }
        let json = serde_json::to_vec(&trace)?;
        prepared.json_bytes += json.len() as u64;
        prepared.bodies.extend(bodies.push(&json));
    }
    prepared.bodies.extend(bodies.finish());
    Ok(prepared)
}

/// Gathers traces' JSON into ingest request bodies (`{"traces":[...]}`) of `batch` traces each.
struct BodyBuilder {
    batch: usize,
    body: Vec<u8>,
    traces: usize,
}

impl BodyBuilder {
    fn new(batch: usize) -> BodyBuilder {
        BodyBuilder { batch, body: Vec::new(), traces: 0 }
    }

    /// Adds one trace; returns the body it completes.
    fn push(&mut self, trace_json: &[u8]) -> Option<Bytes> {
        self.body.extend_from_slice(if self.traces == 0 { b"{\"traces\":[" } else { b"," });
        self.body.extend_from_slice(trace_json);
        self.traces += 1;
        (self.traces == self.batch).then(|| self.take())
    }

    /// The last, partly filled body, if any trace is left.
    fn finish(mut self) -> Option<Bytes> {
        (self.traces > 0).then(|| self.take())
    }

    fn take(&mut self) -> Bytes {
        self.body.extend_from_slice(b"]}");
        self.traces = 0;
        Bytes::from(std::mem::take(&mut self.body))
    }
}

/// Parses and validates every trace of the bodies as the server does (timed,
/// one core), then encodes them as COPY batches with the server's fields set.
fn parse_and_encode(bodies: Vec<Bytes>, project_id: &str) -> anyhow::Result<(Duration, Vec<Bytes>)> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        traces: Vec<&'a RawValue>,
    }
    let record_time = now_ms();
    let mut parsing = Duration::ZERO;
    let mut batches = Vec::with_capacity(bodies.len());
    for body in bodies {
        let started = Instant::now();
        let envelope: Envelope<'_> = serde_json::from_slice(&body)?;
        let traces = envelope
            .traces
            .iter()
            .map(|raw| TraceInput::from_json(raw.get())?.into_trace(project_id, record_time))
            .collect::<Result<Vec<_>, _>>()?;
        parsing += started.elapsed();
        let mut rows = String::with_capacity(body.len() + body.len() / 4);
        for trace in &traces {
            postgres::encode_copy_row(trace, &mut rows);
        }
        batches.push(Bytes::from(rows));
    }
    Ok((parsing, batches))
}

/// Something that answers ListTraces pages: cts over HTTP, or PostgreSQL.
trait PageSource {
    fn page(&self, query: &ListQuery) -> impl Future<Output = anyhow::Result<Vec<serde_json::Value>>>;
}

impl PageSource for cts_http::Cts {
    async fn page(&self, query: &ListQuery) -> anyhow::Result<Vec<serde_json::Value>> {
        self.list_traces(query).await
    }
}

struct Postgres<'a> {
    client: &'a tokio_postgres::Client,
    project_id: &'a str,
}

impl PageSource for Postgres<'_> {
    async fn page(&self, query: &ListQuery) -> anyhow::Result<Vec<serde_json::Value>> {
        postgres::list_traces(self.client, self.project_id, query).await
    }
}

/// The time window of every page: the 7 days up to now.
#[derive(Clone, Copy)]
struct Window {
    from_ms: i64,
    to_ms: i64,
}

/// Times `runs` pages of each kind after a warm-up; returns the latencies and
/// each timed page's fingerprint.
async fn time_pages(
    source: &impl PageSource,
    pairs: &[(String, String)],
    window: Window,
    runs: usize,
) -> anyhow::Result<(Vec<Latency>, Vec<u64>)> {
    let warmup = (runs / 10).max(5);
    let mut latencies = Vec::new();
    let mut fingerprints = Vec::new();
    for kind in QueryKind::ALL {
        for index in 0..warmup {
            source.page(&kind.query(index, pairs, window.from_ms, window.to_ms)).await?;
        }
        let (mut durations, mut sizes) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for index in 0..runs {
            let query = kind.query(index, pairs, window.from_ms, window.to_ms);
            let started = Instant::now();
            let page = source.page(&query).await?;
            durations.push(started.elapsed());
            sizes.push(page.len());
            fingerprints.push(query::page_fingerprint(&page));
        }
        latencies.extend(Latency::of(kind, &durations, &sizes));
    }
    Ok((latencies, fingerprints))
}

async fn within<T>(timeout: Duration, phase: &str, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::time::timeout(timeout, work).await.with_context(|| format!("{phase} took longer than {timeout:?}"))?
}

/// Empties (creating) a directory under the work dir.
fn fresh_dir(work_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = work_dir.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

async fn bench(options: BenchOptions) -> anyhow::Result<BenchReport> {
    let BenchOptions { traces, batch, concurrency, seed, queries, phase_timeout, .. } = options;
    let work_dir = &options.work_dir;
    std::fs::create_dir_all(work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
    let identity = Identity::bench();
    let generated_at = now_ms();

    progress(format!("generating {traces} traces (seed {seed})"));
    let prepared = prepare(seed, generated_at, traces, batch, queries)?;
    let bodies = Arc::new(prepared.bodies);

    let serve_dir = fresh_dir(work_dir, "serve-data")?;
    progress(format!("starting {} serve", options.cts_binary.display()));
    let server = Server::start(
        &options.cts_binary,
        &serve_dir,
        &work_dir.join("serve.log"),
        &identity,
        &[],
        Duration::from_secs(60),
    )?;
    let cts = cts_http::Cts::new(&server.endpoint, &identity)?;
    progress(format!("ingesting over HTTP with {concurrency} clients"));
    let (ingest_time, accepted) =
        within(phase_timeout, "ingest", cts.ingest_all(Arc::clone(&bodies), concurrency)).await?;
    if accepted != traces {
        bail!("cts accepted {accepted} of {traces} traces");
    }
    let to_ms = now_ms();
    let window = Window { from_ms: to_ms - 7 * 86_400_000, to_ms };
    progress(format!("timing ListTraces pages ({queries} runs of each kind)"));
    let (cts_latencies, cts_fingerprints) =
        within(phase_timeout, "cts queries", time_pages(&cts, &prepared.pairs, window, queries)).await?;
    progress("stopping cts serve (SIGTERM)");
    server.stop(phase_timeout)?;
    let cts_bytes = dir_bytes(&serve_dir)?;
    let cts_report = SystemReport {
        ingest_seconds: ingest_time.as_secs_f64(),
        ingest_traces_per_second: per_second(traces, ingest_time),
        queries: cts_latencies,
        bytes_on_disk: cts_bytes,
        bytes_per_trace: cts_bytes as f64 / traces as f64,
    };

    let cts_import = if options.skip_import {
        None
    } else {
        let file = work_dir.join("workload.jsonl");
        progress(format!("writing {}", file.display()));
        workload::write_json_lines(&file, seed, generated_at, traces)?;
        let import_dir = fresh_dir(work_dir, "import-data")?;
        progress("timing cts import");
        let elapsed = process::import(
            &options.cts_binary,
            &import_dir,
            &file,
            &work_dir.join("import.log"),
            &identity,
            phase_timeout,
        )?;
        let file_bytes = std::fs::metadata(&file)?.len();
        if !options.keep_files {
            std::fs::remove_file(&file)?;
            std::fs::remove_dir_all(&import_dir)?;
        }
        Some(ImportReport {
            seconds: elapsed.as_secs_f64(),
            traces_per_second: per_second(traces, elapsed),
            file_bytes,
        })
    };
    if !options.keep_files {
        std::fs::remove_dir_all(&serve_dir)?;
    }

    progress("parsing and validating the workload on one core");
    let bodies = Arc::try_unwrap(bodies).map_err(|_| anyhow::anyhow!("request bodies still shared"))?;
    let (parse_time, copy_batches) = parse_and_encode(bodies, &identity.project_id)?;

    let (postgres, page_agreement) = match &options.postgres_url {
        None => (None, None),
        Some(url) => {
            let client = postgres::connect(url).await?;
            postgres::reset_schema(&client).await?;
            progress(format!("loading PostgreSQL with COPY over {concurrency} connections"));
            let load_time =
                within(phase_timeout, "PostgreSQL load", postgres::load(url, Arc::new(copy_batches), concurrency))
                    .await?;
            progress("VACUUM ANALYZE (untimed), then timing the same pages in SQL");
            postgres::vacuum_analyze(&client).await?;
            let source = Postgres { client: &client, project_id: &identity.project_id };
            let (latencies, fingerprints) =
                within(phase_timeout, "PostgreSQL queries", time_pages(&source, &prepared.pairs, window, queries))
                    .await?;
            let bytes = postgres::table_bytes(&client).await?;
            let identical = cts_fingerprints.iter().zip(&fingerprints).filter(|(a, b)| a == b).count();
            let report = SystemReport {
                ingest_seconds: load_time.as_secs_f64(),
                ingest_traces_per_second: per_second(traces, load_time),
                queries: latencies,
                bytes_on_disk: bytes,
                bytes_per_trace: bytes as f64 / traces as f64,
            };
            (Some(report), Some(PageAgreement { identical, compared: fingerprints.len() }))
        }
    };

    Ok(BenchReport {
        traces,
        batch,
        concurrency,
        seed,
        workload_json_bytes: prepared.json_bytes,
        parse_traces_per_second: per_second(traces, parse_time),
        cts: cts_report,
        cts_import,
        postgres,
        page_agreement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_bodies_hold_every_trace_in_batches() {
        let prepared = prepare(11, 1_795_000_000_000, 2_500, 1_000, 7).unwrap();
        let sizes: Vec<usize> = prepared
            .bodies
            .iter()
            .map(|body| serde_json::from_slice::<serde_json::Value>(body).unwrap()["traces"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![1_000, 1_000, 500]);
        assert_eq!(prepared.pairs.len(), 7);
        let first: serde_json::Value = serde_json::from_slice(&prepared.bodies[0]).unwrap();
        let trace = &first["traces"][0];
        assert_eq!(
            prepared.pairs[0],
            (trace["user"]["name"].as_str().unwrap().into(), trace["trace_name"].as_str().unwrap().into())
        );
    }

    #[test]
    fn copy_batches_hold_one_row_per_trace() {
        let prepared = prepare(12, 1_795_000_000_000, 300, 100, 1).unwrap();
        let (_, batches) = parse_and_encode(prepared.bodies, "p").unwrap();
        assert_eq!(batches.len(), 3);
        for batch in &batches {
            let text = std::str::from_utf8(batch).unwrap();
            assert_eq!(text.matches('\n').count(), 100, "raw newlines only end rows");
        }
    }

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
