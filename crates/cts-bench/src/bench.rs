//! One benchmark run: the workload streamed in chunks into cts and
//! PostgreSQL, the queries at each checkpoint and at the end, and the report.

use crate::aggregation::{self, OperationDay};
use crate::cts_http::{Cts, SqlOutcome};
use crate::gzip_files::{ByteCount, GzipTraceFiles, TRACES_PER_FILE};
use crate::meter::{Meter, Phases};
use crate::process::{self, dir_bytes, Identity, Server};
use crate::query::{self, ListQuery, QueryKind, QueryValues, ValueSampler};
use crate::report::{
    BenchReport, Checkpoint, Freshness, ImportReport, Latency, PageAgreement, SystemReport, TrigramReport,
};
use crate::stages::checkpoint_plan;
use crate::{fresh_dir, freshness, postgres, procfs, progress, within, workload, BenchOptions, BodyBuilder};
use anyhow::{bail, Context};
use bytes::Bytes;
use cts_model::{now_ms, TraceInput};
use serde_json::value::RawValue;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Request bodies generated, sent and loaded at a time: bounds the bench's own memory (a chunk of 200,000
/// traces is about 300 MB of JSON and COPY rows).
const CHUNK_BATCHES: usize = 200;
const DAY_MS: i64 = 86_400_000;
/// `cts serve` keeps traces longer than the 7-day window, so a run of hours loses none to retention, and lifts
/// the rate limits so back-to-back queries are never refused.
const SERVE_SETTINGS: [(&str, &str); 3] =
    [("CTS_RETENTION", "30d"), ("CTS_RATE_LIMIT_KEY", "1000000"), ("CTS_RATE_LIMIT_PROJECT", "1000000")];

/// The oldest and newest `time` of the workload.
#[derive(Debug, Clone, Copy)]
struct TimeSpan {
    oldest: i64,
    newest: i64,
}

impl TimeSpan {
    fn new() -> TimeSpan {
        TimeSpan { oldest: i64::MAX, newest: i64::MIN }
    }

    fn hours(&self) -> f64 {
        (self.newest - self.oldest).max(0) as f64 / 3_600_000.0
    }
}

/// The next `count` traces as ingest bodies of `batch` traces each, sampling query values and the time span.
fn next_chunk(
    generator: &mut workload::Generator,
    count: usize,
    batch: usize,
    sampler: &mut ValueSampler,
    span: &mut TimeSpan,
) -> anyhow::Result<(Vec<Bytes>, u64)> {
    let mut bodies = Vec::with_capacity(count.div_ceil(batch));
    let mut builder = BodyBuilder::new(batch);
    let mut json_bytes = 0;
    for trace in generator.take(count) {
        sampler.observe(&trace);
        if let Some(time) = trace["time"].as_i64() {
            span.oldest = span.oldest.min(time);
            span.newest = span.newest.max(time);
        }
        let json = serde_json::to_vec(&trace)?;
        json_bytes += json.len() as u64;
        bodies.extend(builder.push(&json));
    }
    bodies.extend(builder.finish());
    Ok((bodies, json_bytes))
}

/// Parses and validates every trace of the bodies as the server does (timed,
/// one core), then encodes them as COPY batches with the server's fields set
/// and adds them to the gzip trace files.
fn parse_and_encode(
    bodies: Vec<Bytes>,
    project_id: &str,
    gzip: &mut GzipTraceFiles<ByteCount>,
) -> anyhow::Result<(Duration, Vec<Bytes>)> {
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
            gzip.add(trace)?;
        }
        batches.push(Bytes::from(rows));
    }
    Ok((parsing, batches))
}

/// Something that answers ListTraces pages: cts over HTTP, or PostgreSQL.
trait PageSource {
    fn page(&self, query: &ListQuery) -> impl Future<Output = anyhow::Result<Vec<serde_json::Value>>>;
}

impl PageSource for Cts {
    async fn page(&self, query: &ListQuery) -> anyhow::Result<Vec<serde_json::Value>> {
        self.list_traces(query).await
    }
}

/// PostgreSQL through one connection.
struct Postgres {
    url: String,
    client: tokio_postgres::Client,
    project_id: String,
    /// The postmaster, parent of every backend.
    pid: u32,
}

impl PageSource for Postgres {
    async fn page(&self, query: &ListQuery) -> anyhow::Result<Vec<serde_json::Value>> {
        postgres::list_traces(&self.client, &self.project_id, query).await
    }
}

/// The time window of every query: the 7 days before the workload's clock
/// (self-audit traces of the bench's own calls and freshness probes come later, outside it).
#[derive(Clone, Copy)]
struct Window {
    from_ms: i64,
    to_ms: i64,
}

/// What one timed page gave, for comparing the sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PageOutcome {
    kind: QueryKind,
    fingerprint: u64,
    /// Some trace lacks the query's free-text terms.
    not_matching_terms: bool,
}

/// Times `runs` pages of each kind after `warmup` untimed ones.
async fn time_pages(
    source: &impl PageSource,
    kinds: &[QueryKind],
    values: &QueryValues,
    window: Window,
    runs: usize,
    warmup: usize,
) -> anyhow::Result<(Vec<Latency>, Vec<PageOutcome>)> {
    let mut latencies = Vec::new();
    let mut outcomes = Vec::new();
    for &kind in kinds {
        let query_of = |index| kind.query(index, values, window.from_ms, window.to_ms).context("not a page");
        for index in 0..warmup {
            source.page(&query_of(index)?).await?;
        }
        let (mut durations, mut sizes) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for index in 0..runs {
            let query = query_of(index)?;
            let started = Instant::now();
            let page = source.page(&query).await?;
            durations.push(started.elapsed());
            sizes.push(page.len());
            outcomes.push(PageOutcome {
                kind,
                fingerprint: query::page_fingerprint(&page),
                not_matching_terms: !page.iter().all(|trace| query::matches_terms(trace, &query.terms)),
            });
        }
        latencies.extend(Latency::of(kind, &durations, &sizes));
    }
    Ok((latencies, outcomes))
}

/// Adds the comparison of the two sides' pages (run for run) to the tally of each kind.
fn tally_agreement(tally: &mut Vec<PageAgreement>, cts: &[PageOutcome], postgres: Option<&[PageOutcome]>) {
    for (index, page) in cts.iter().enumerate() {
        let entry = match tally.iter().position(|entry| entry.kind == page.kind) {
            Some(at) => &mut tally[at],
            None => {
                tally.push(PageAgreement {
                    kind: page.kind,
                    identical: 0,
                    compared: 0,
                    cts_pages_not_matching_terms: 0,
                });
                tally.last_mut().expect("just pushed")
            }
        };
        entry.cts_pages_not_matching_terms += usize::from(page.not_matching_terms);
        if let Some(other) = postgres.and_then(|pages| pages.get(index)) {
            entry.compared += 1;
            entry.identical += usize::from(other.kind == page.kind && other.fingerprint == page.fingerprint);
        }
    }
}

/// Runs `call` `warmup` times untimed, then `runs` times timed; the durations and the last answer.
async fn time_repeated<T, Fut: Future<Output = anyhow::Result<T>>>(
    runs: usize,
    warmup: usize,
    mut call: impl FnMut() -> Fut,
) -> anyhow::Result<(Vec<Duration>, T)> {
    for _ in 0..warmup {
        call().await?;
    }
    let mut durations = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        last = Some(call().await?);
        durations.push(started.elapsed());
    }
    Ok((durations, last.context("no runs")?))
}

fn aggregation_latency(durations: &[Duration], rows: &[OperationDay]) -> Option<Latency> {
    Latency::of(QueryKind::Aggregation, durations, &vec![rows.len(); durations.len()])
}

/// cts's aggregation through SQL; `None` when the server has no SQL (501: built without it, 404: older).
async fn cts_aggregation(
    cts: &Cts,
    statement: &str,
    runs: usize,
) -> anyhow::Result<Option<(Latency, Vec<OperationDay>)>> {
    // The first call is the warm-up, and tells whether the server has SQL.
    if let SqlOutcome::Unavailable { status } = cts.sql(statement).await? {
        progress(format!("cts answered {status} to SQL (built without --features sql?): aggregation n/a"));
        return Ok(None);
    }
    let (durations, rows) = time_repeated(runs, 0, || async {
        match cts.sql(statement).await? {
            SqlOutcome::Rows(rows) => aggregation::from_json_rows(&rows),
            SqlOutcome::Unavailable { status } => bail!("the SQL endpoint went away ({status})"),
        }
    })
    .await?;
    Ok(aggregation_latency(&durations, &rows).map(|latency| (latency, rows)))
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Both systems, with the tallies every timed phase adds to.
struct Sides<'a> {
    cts: &'a Cts,
    postgres: Option<&'a Postgres>,
    meter: Meter,
    phases: Phases,
    agreement: Vec<PageAgreement>,
    timeout: Duration,
}

impl Sides<'_> {
    /// Runs `work` bounded in time as the phase `name`, measuring the processes' CPU.
    async fn phase<T>(&mut self, name: &str, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        let before = self.meter.read();
        let result = within(self.timeout, name, work).await?;
        self.phases.add(name, before, self.meter.read());
        Ok(result)
    }

    /// Pages of `kinds` on both sides, one phase per side; adds to the agreement tally.
    async fn pages_on_both(
        &mut self,
        label: &str,
        kinds: &[QueryKind],
        values: &QueryValues,
        window: Window,
        (runs, warmup): (usize, usize),
    ) -> anyhow::Result<(Vec<Latency>, Vec<Latency>)> {
        progress(format!("timing {label} ({runs} runs of each kind)"));
        let cts = self.cts;
        let (cts_latencies, cts_pages) =
            self.phase(&format!("{label}, cts"), time_pages(cts, kinds, values, window, runs, warmup)).await?;
        let (pg_latencies, pg_pages) = match self.postgres {
            Some(pg) => {
                let name = format!("{label}, PostgreSQL");
                let (latencies, pages) = self.phase(&name, time_pages(pg, kinds, values, window, runs, warmup)).await?;
                (latencies, Some(pages))
            }
            None => (Vec::new(), None),
        };
        tally_agreement(&mut self.agreement, &cts_pages, pg_pages.as_deref());
        Ok((cts_latencies, pg_latencies))
    }
}

/// The measurements of the loop over checkpoints.
struct Loaded {
    cts_ingest: Duration,
    postgres_load: Duration,
    parsing: Duration,
    json_bytes: u64,
    span: TimeSpan,
    sampler: ValueSampler,
    checkpoints: Vec<Checkpoint>,
}

/// Streams the workload into both systems, measuring the selective pages at each checkpoint.
async fn load_in_stages(
    options: &BenchOptions,
    plan: &[usize],
    sides: &mut Sides<'_>,
    gzip: &mut GzipTraceFiles<ByteCount>,
    window: Window,
) -> anyhow::Result<Loaded> {
    let BenchOptions { traces, batch, concurrency, seed, queries, .. } = *options;
    let mut generator = workload::Generator::new(seed, window.to_ms, traces);
    let mut loaded = Loaded {
        cts_ingest: Duration::ZERO,
        postgres_load: Duration::ZERO,
        parsing: Duration::ZERO,
        json_bytes: 0,
        span: TimeSpan::new(),
        // Enough samples at the first checkpoint for every kind of value (createOrder, the rare words' source,
        // is one trace in twelve).
        sampler: ValueSampler::new(plan[0] / (20 * queries)),
        checkpoints: Vec::new(),
    };
    let mut done = 0;
    for &checkpoint in plan {
        while done < checkpoint {
            let count = (checkpoint - done).min(CHUNK_BATCHES * batch);
            let (bodies, json_bytes) = next_chunk(&mut generator, count, batch, &mut loaded.sampler, &mut loaded.span)?;
            loaded.json_bytes += json_bytes;
            let bodies = Arc::new(bodies);
            let cts = sides.cts;
            let (elapsed, accepted) =
                sides.phase("ingest into cts over HTTP", cts.ingest_all(Arc::clone(&bodies), concurrency)).await?;
            if accepted != count {
                bail!("cts accepted {accepted} of {count} traces");
            }
            loaded.cts_ingest += elapsed;
            let bodies = Arc::try_unwrap(bodies).map_err(|_| anyhow::anyhow!("request bodies still shared"))?;
            let (parsing, copy_batches) = parse_and_encode(bodies, cts.project_id(), gzip)?;
            loaded.parsing += parsing;
            if let Some(pg) = sides.postgres {
                let load = postgres::load(&pg.url, Arc::new(copy_batches), concurrency);
                loaded.postgres_load += sides.phase("load PostgreSQL with COPY", load).await?;
            }
            done += count;
            progress(format!("loaded {done} of {traces} traces"));
        }
        let values = loaded.sampler.values().spread(queries);
        if !values.complete() {
            bail!("{checkpoint} traces give too few values for every kind of query; use more traces");
        }
        if let Some(pg) = sides.postgres {
            postgres::vacuum_analyze(&pg.client).await?;
        }
        let label = format!("selective pages at {checkpoint} traces");
        let warmup = (queries / 10).max(5);
        let (cts, postgres) =
            sides.pages_on_both(&label, &QueryKind::SELECTIVE, &values, window, (queries, warmup)).await?;
        loaded.checkpoints.push(Checkpoint { traces: checkpoint, cts, postgres });
    }
    Ok(loaded)
}

pub(crate) async fn bench(options: BenchOptions) -> anyhow::Result<BenchReport> {
    let BenchOptions { traces, batch, concurrency, seed, queries, heavy_queries, phase_timeout, .. } = options;
    let plan = checkpoint_plan(traces, &options.checkpoints)?;
    let work_dir = &options.work_dir;
    std::fs::create_dir_all(work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
    let identity = Identity::bench();
    let generated_at = now_ms();
    let window = Window { from_ms: generated_at - 7 * DAY_MS, to_ms: generated_at };

    // PostgreSQL first: a wrong URL fails before anything long runs.
    let postgres = match &options.postgres_url {
        Some(url) => {
            let client = postgres::connect(url).await?;
            postgres::reset_schema(&client).await?;
            let pid = postgres::postmaster_pid(&client).await?;
            Some(Postgres { url: url.clone(), client, project_id: identity.project_id.clone(), pid })
        }
        None => None,
    };
    let serve_dir = fresh_dir(work_dir, "serve-data")?;
    progress(format!("starting {} serve", options.cts_binary.display()));
    let settings: Vec<(&str, String)> = SERVE_SETTINGS.iter().map(|(name, value)| (*name, value.to_string())).collect();
    let server = Server::start(
        &options.cts_binary,
        &serve_dir,
        &work_dir.join("serve.log"),
        &identity,
        &settings,
        Duration::from_secs(60),
    )?;
    let cts = Cts::new(&server.endpoint, &identity)?;
    let meter = Meter { cts_pid: server.pid(), postgres_pid: postgres.as_ref().map(|pg| pg.pid) };
    let pg = postgres.as_ref();
    let mut sides = Sides {
        cts: &cts,
        postgres: pg,
        meter,
        phases: Phases::default(),
        agreement: Vec::new(),
        timeout: phase_timeout,
    };
    let mut gzip = GzipTraceFiles::counting(TRACES_PER_FILE);
    progress(format!("streaming {traces} traces (seed {seed}) with checkpoints at {plan:?}, {concurrency} clients"));
    let loaded = load_in_stages(&options, &plan, &mut sides, &mut gzip, window).await?;

    let values = loaded.sampler.values().spread(queries);
    let warmup = (queries / 10).max(5);
    let (mut cts_queries, mut pg_queries) =
        sides.pages_on_both("broad pages", &QueryKind::BROAD, &values, window, (queries, warmup)).await?;
    let heavy_values = loaded.sampler.values().spread(heavy_queries);
    let (cts_text, pg_text) =
        sides.pages_on_both("free text", &QueryKind::TEXT, &heavy_values, window, (heavy_queries, 1)).await?;
    cts_queries.extend(cts_text);
    pg_queries.extend(pg_text);

    // Before the pg_trgm index, which is reported on its own.
    let pg_bytes = match pg {
        Some(pg) => Some(postgres::table_bytes(&pg.client).await?),
        None => None,
    };

    progress(format!("timing the SQL aggregation ({heavy_queries} runs)"));
    let statement = aggregation::cts_statement(window.from_ms, window.to_ms);
    let cts_aggregation = sides.phase("SQL aggregation, cts", cts_aggregation(&cts, &statement, heavy_queries)).await?;
    let pg_aggregation = match pg {
        Some(pg) => {
            let runs = time_repeated(heavy_queries, 1, || {
                postgres::operations_per_day(&pg.client, &pg.project_id, window.from_ms, window.to_ms)
            });
            let (durations, rows) = sides.phase("SQL aggregation, PostgreSQL", runs).await?;
            Some((aggregation_latency(&durations, &rows), rows))
        }
        None => None,
    };
    let aggregation_agrees = match (&cts_aggregation, &pg_aggregation) {
        (Some((_, cts_rows)), Some((_, pg_rows))) => Some(aggregation::same_rows(cts_rows, pg_rows)),
        _ => None,
    };
    cts_queries.extend(cts_aggregation.map(|(latency, _)| latency));
    pg_queries.extend(pg_aggregation.and_then(|(latency, _)| latency));

    let postgres_trigram = match pg {
        Some(pg) => {
            progress("building the pg_trgm GIN index, then timing free text again");
            let (build, index_bytes) =
                sides.phase("pg_trgm index build, PostgreSQL", postgres::create_trigram_index(&pg.client)).await?;
            let pages = time_pages(pg, &QueryKind::TEXT, &heavy_values, window, heavy_queries, 1);
            let (latencies, _) = sides.phase("free text with pg_trgm, PostgreSQL", pages).await?;
            Some(TrigramReport { queries: latencies, index_bytes, build_seconds: build.as_secs_f64() })
        }
        None => None,
    };

    let freshness = if options.freshness_samples == 0 {
        None
    } else {
        progress(format!("measuring freshness ({} probes)", options.freshness_samples));
        let probes = freshness::measure(&cts, seed, options.freshness_samples);
        Freshness::of(&sides.phase("freshness probes, cts", probes).await?)
    };

    let cts_rss = procfs::peak_rss_bytes(server.pid()).ok();
    let pg_rss = pg.and_then(|pg| procfs::tree_peak_rss_bytes(pg.pid).ok());
    progress("stopping cts serve (SIGTERM)");
    server.stop(phase_timeout)?;
    let cts_bytes = dir_bytes(&serve_dir)?;
    let cts_report = SystemReport {
        ingest_seconds: loaded.cts_ingest.as_secs_f64(),
        ingest_traces_per_second: per_second(traces, loaded.cts_ingest),
        queries: cts_queries,
        bytes_on_disk: cts_bytes,
        bytes_per_trace: cts_bytes as f64 / traces as f64,
        peak_rss_bytes: cts_rss,
    };
    let pg_report = pg_bytes.map(|bytes| SystemReport {
        ingest_seconds: loaded.postgres_load.as_secs_f64(),
        ingest_traces_per_second: per_second(traces, loaded.postgres_load),
        queries: pg_queries,
        bytes_on_disk: bytes,
        bytes_per_trace: bytes as f64 / traces as f64,
        peak_rss_bytes: pg_rss,
    });
    let cts_import = if options.skip_import { None } else { Some(time_import(&options, &identity, generated_at)?) };
    if !options.keep_files {
        std::fs::remove_dir_all(&serve_dir)?;
    }

    let mut report = BenchReport {
        traces,
        batch,
        concurrency,
        seed,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        workload_json_bytes: loaded.json_bytes,
        workload_span_hours: loaded.span.hours(),
        parse_traces_per_second: per_second(traces, loaded.parsing),
        cts: cts_report,
        cts_import,
        postgres: pg_report,
        postgres_trigram,
        checkpoints: loaded.checkpoints,
        agreement: sides.agreement,
        aggregation_agrees,
        gzip_files: gzip.finish()?,
        freshness,
        phases: sides.phases.into_loads(),
        figures: Vec::new(),
    };
    report.figures = report.figures();
    Ok(report)
}

/// `cts import` of the workload written as JSON Lines, into a fresh data dir.
fn time_import(options: &BenchOptions, identity: &Identity, generated_at: i64) -> anyhow::Result<ImportReport> {
    let work_dir = &options.work_dir;
    let file = work_dir.join("workload.jsonl");
    progress(format!("writing {}", file.display()));
    workload::write_json_lines(&file, options.seed, generated_at, options.traces)?;
    let import_dir = fresh_dir(work_dir, "import-data")?;
    progress("timing cts import");
    let elapsed = process::import(
        &options.cts_binary,
        &import_dir,
        &file,
        &work_dir.join("import.log"),
        identity,
        options.phase_timeout,
    )?;
    let file_bytes = std::fs::metadata(&file)?.len();
    if !options.keep_files {
        std::fs::remove_file(&file)?;
        std::fs::remove_dir_all(&import_dir)?;
    }
    Ok(ImportReport {
        seconds: elapsed.as_secs_f64(),
        traces_per_second: per_second(options.traces, elapsed),
        file_bytes,
    })
}

#[cfg(test)]
mod tests;
