//! `cts bench load`: a load test bounded in time and in requests, mixing
//! ingest and queries against one cts on loopback (its own `cts serve` with a
//! fresh data directory, or an already running one given by `--url`).
//!
//! [`run`] starts a producer thread that generates the seeded KooGallery
//! workload into ingest bodies ahead of the clients (generation is not in the
//! latencies), then runs concurrently, until either bound is reached:
//! - ingest clients, each POSTing one batch at a time;
//! - query clients, each cycling through ListTraces by user + trace name, by
//!   resource id, a broad first page followed by up to three `next` pages, and
//!   a CSV export of one user's traces of one kind; their filters are values
//!   of the workload's first traces.
//!
//! Every request's outcome is tallied per operation kind (see [`report`]).
//! Afterwards every acknowledged trace id — or a seeded sample of at least
//! 200 when more were acknowledged — is looked up with ListTraces `trace_id`.

mod clients;
pub mod report;

use crate::process::{Identity, Server};
use crate::{fresh_dir, progress, within, workload, BodyBuilder};
use anyhow::{bail, Context};
use clients::{Budget, QueryPlan};
use rand::rngs::StdRng;
use rand::SeedableRng;
use report::{LoadReport, StopReason, Tallies, Verification};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

/// Traces at the start of the workload whose users, trace names and resource ids the queries use.
const PLAN_TRACES: usize = 2_000;
/// The fewest acknowledged ids looked up when more were acknowledged.
pub const MIN_VERIFY_SAMPLE: usize = 200;
/// Concurrent lookups when checking acknowledged ids.
const LOOKUP_CONCURRENCY: usize = 4;
/// Ingest bodies generated ahead, per ingest client.
const BODIES_AHEAD: usize = 8;
/// How long requests still in flight at the deadline may take, and how long the lookups may take.
const GRACE: Duration = Duration::from_secs(120);
/// A rate limit nobody reaches: the load test's own server runs without limits unless asked.
const UNLIMITED: u32 = u32::MAX;

/// The flags of `cts bench load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Upper bound of the run, in seconds.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Upper bound of the requests sent, by all clients together.
    #[arg(long, default_value_t = 1_000_000)]
    pub requests: u64,
    /// Concurrent clients POSTing batches of traces.
    #[arg(long, default_value_t = 2)]
    pub ingest_clients: usize,
    /// Concurrent clients sending the ListTraces and export mix.
    #[arg(long, default_value_t = 2)]
    pub query_clients: usize,
    /// Traces per ingest request (1-1000).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Seed of the workload and of the queries' choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Acknowledged trace ids looked up afterwards (at least 200; every one when fewer were acknowledged).
    #[arg(long, default_value_t = 1_000)]
    pub verify_sample: usize,
    /// Load the cts running at this URL instead of starting `cts serve` on loopback.
    #[arg(long)]
    pub url: Option<String>,
    /// With --url: the access key to sign with.
    #[arg(long, env = "CTS_ACCESS_KEY")]
    pub access_key: Option<String>,
    /// With --url: its secret key.
    #[arg(long, env = "CTS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// With --url: the project to load.
    #[arg(long, env = "CTS_PROJECT_ID")]
    pub project_id: Option<String>,
    /// The started server's requests per second per access key (default: unlimited).
    #[arg(long, conflicts_with = "url")]
    pub rate_limit_key: Option<u32>,
    /// The started server's requests per second per project (default: unlimited).
    #[arg(long, conflicts_with = "url")]
    pub rate_limit_project: Option<u32>,
    /// Where the started server's data directory and log go (default: a `cts-bench-load` temporary directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The cts a load run sends to.
#[derive(Debug, Clone)]
pub enum Target {
    /// `cts serve` from this executable on a free loopback port with a fresh data directory under
    /// `work_dir`; rate limits in requests per second, `None` for unlimited.
    Start { cts_binary: PathBuf, work_dir: PathBuf, rate_limit_key: Option<u32>, rate_limit_project: Option<u32> },
    /// A cts already running at `url`.
    Running { url: String, credentials: cts_client::Credentials },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub duration: Duration,
    pub max_requests: u64,
    pub ingest_clients: usize,
    pub query_clients: usize,
    pub batch: usize,
    pub seed: u64,
    pub verify_sample: usize,
    pub target: Target,
}

impl LoadOptions {
    fn check(&self) -> anyhow::Result<()> {
        if self.duration.is_zero() || self.max_requests == 0 {
            bail!("load needs a duration and a request bound above 0");
        }
        if self.ingest_clients == 0 || !(1..=1_000).contains(&self.batch) {
            bail!("load needs at least one ingest client and batches of 1-1000 traces");
        }
        if self.verify_sample < MIN_VERIFY_SAMPLE {
            bail!("load looks up at least {MIN_VERIFY_SAMPLE} acknowledged trace ids (--verify-sample)");
        }
        Ok(())
    }
}

impl LoadArgs {
    fn options(self) -> anyhow::Result<LoadOptions> {
        let target = match self.url {
            Some(url) => {
                let (Some(access_key), Some(secret_key), Some(project_id)) =
                    (self.access_key, self.secret_key, self.project_id)
                else {
                    bail!("--url needs --access-key, --secret-key and --project-id (or CTS_ACCESS_KEY, ...)");
                };
                Target::Running { url, credentials: cts_client::Credentials { access_key, secret_key, project_id } }
            }
            None => Target::Start {
                cts_binary: std::env::current_exe().context("locating the cts executable")?,
                work_dir: self.work_dir.unwrap_or_else(|| std::env::temp_dir().join("cts-bench-load")),
                rate_limit_key: self.rate_limit_key,
                rate_limit_project: self.rate_limit_project,
            },
        };
        Ok(LoadOptions {
            duration: Duration::from_secs(self.duration),
            max_requests: self.requests,
            ingest_clients: self.ingest_clients,
            query_clients: self.query_clients,
            batch: self.batch,
            seed: self.seed,
            verify_sample: self.verify_sample,
            target,
        })
    }
}

/// `cts bench load`: runs with these flags and prints the table (or JSON) on stdout.
pub fn run_cli(args: LoadArgs) -> anyhow::Result<()> {
    let json = args.json;
    let report = run(args.options()?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}

/// Runs the load test on its own thread and runtime.
pub fn run(options: LoadOptions) -> anyhow::Result<LoadReport> {
    options.check()?;
    crate::on_own_runtime("cts-bench-load", move || load(options))
}

/// The server under load, and whether this run owns it.
struct Loaded {
    client: cts_client::Client,
    description: String,
    started: Option<(Server, PathBuf)>,
}

fn connect(target: &Target) -> anyhow::Result<Loaded> {
    match target {
        Target::Running { url, credentials } => Ok(Loaded {
            client: cts_client::Client::new(url, credentials.clone())?,
            description: url.clone(),
            started: None,
        }),
        Target::Start { cts_binary, work_dir, rate_limit_key, rate_limit_project } => {
            std::fs::create_dir_all(work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
            let data_dir = fresh_dir(work_dir, "load-data")?;
            let limit = |value: Option<u32>| value.unwrap_or(UNLIMITED).to_string();
            let settings = [
                ("CTS_RATE_LIMIT_KEY", limit(*rate_limit_key)),
                ("CTS_RATE_LIMIT_PROJECT", limit(*rate_limit_project)),
            ];
            progress(format!("starting {} serve", cts_binary.display()));
            let identity = Identity::bench();
            let log = work_dir.join("load-serve.log");
            let server = Server::start(cts_binary, &data_dir, &log, &identity, &settings, Duration::from_secs(60))?;
            let limits = match (rate_limit_key, rate_limit_project) {
                (None, None) => "rate limits off".to_owned(),
                _ => format!(
                    "rate limits per key {}/s, per project {}/s",
                    limit(*rate_limit_key),
                    limit(*rate_limit_project)
                ),
            };
            Ok(Loaded {
                client: cts_client::Client::new(&server.endpoint, identity.credentials())?,
                description: format!("cts serve started on {} ({limits})", server.endpoint),
                started: Some((server, data_dir)),
            })
        }
    }
}

/// The first [`PLAN_TRACES`] traces' (user, trace name) pairs and resource ids.
fn plan(seed: u64, generated_at: i64, count: usize) -> QueryPlan {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let mut plan = QueryPlan { pairs: Vec::new(), resource_ids: Vec::new(), from_ms: generated_at - 7 * 86_400_000 };
    for trace in workload::Generator::new(seed, generated_at, count).take(PLAN_TRACES) {
        plan.pairs.push((text(&trace["user"]["name"]), text(&trace["trace_name"])));
        plan.resource_ids.extend(trace.get("resource_id").map(text));
    }
    plan
}

/// Generates `count` traces into ingest bodies until they are all sent or nobody receives any more.
fn spawn_producer(
    seed: u64,
    generated_at: i64,
    count: usize,
    batch: usize,
    bodies: mpsc::Sender<clients::IngestBody>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("cts-bench-load-producer".into()).spawn(move || {
        let mut builder = BodyBuilder::new(batch);
        for trace in workload::Generator::new(seed, generated_at, count) {
            let json = serde_json::to_vec(&trace).expect("JSON values serialize");
            if let Some(body) = builder.push(&json) {
                if bodies.blocking_send(body).is_err() {
                    return;
                }
            }
        }
        if let Some(body) = builder.finish() {
            let _ = bodies.blocking_send(body);
        }
    })
}

/// Every acknowledged id when there are at most `sample` of them, else a seeded sample of `sample`.
fn choose_lookups(acknowledged: &[String], sample: usize, seed: u64) -> Vec<String> {
    if acknowledged.len() <= sample {
        return acknowledged.to_vec();
    }
    let mut rng = StdRng::seed_from_u64(seed);
    rand::seq::index::sample(&mut rng, acknowledged.len(), sample)
        .into_iter()
        .map(|i| acknowledged[i].clone())
        .collect()
}

async fn load(options: LoadOptions) -> anyhow::Result<LoadReport> {
    let LoadOptions { duration, max_requests, ingest_clients, query_clients, batch, seed, verify_sample, .. } = options;
    let loaded = connect(&options.target)?;
    let generated_at = cts_model::now_ms();
    // Enough traces for every request to be an ingest; their times spread over the 7 days as if all were sent.
    let count = usize::try_from(max_requests.saturating_mul(batch as u64)).unwrap_or(usize::MAX);
    let plan = Arc::new(plan(seed, generated_at, count));

    let (sender, receiver) = mpsc::channel(BODIES_AHEAD * ingest_clients);
    let producer = spawn_producer(seed, generated_at, count, batch, sender)?;
    let bodies = Arc::new(Mutex::new(receiver));
    // Let the producer get ahead before the clock starts.
    while bodies.lock().await.len() < BODIES_AHEAD * ingest_clients && !producer.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    progress(format!(
        "{ingest_clients} ingest and {query_clients} query clients for at most {duration:?} or {max_requests} requests"
    ));
    let budget = Arc::new(Budget::new(duration, max_requests));
    let started = Instant::now();
    let ingesters: Vec<_> = (0..ingest_clients)
        .map(|_| tokio::spawn(clients::ingest(loaded.client.clone(), Arc::clone(&bodies), Arc::clone(&budget))))
        .collect();
    let queriers: Vec<_> = (0..query_clients as u64)
        .map(|index| {
            let client_seed = seed.wrapping_add(index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            tokio::spawn(clients::query(loaded.client.clone(), Arc::clone(&plan), Arc::clone(&budget), client_seed))
        })
        .collect();
    let (tallies, acknowledged, waited_for_bodies) = within(duration + GRACE, "the load", async {
        let (mut tallies, mut acknowledged, mut waited) = (Tallies::default(), Vec::new(), Duration::ZERO);
        for ingester in ingesters {
            let ingested = ingester.await.context("an ingest client panicked")?;
            tallies.merge(ingested.tallies);
            acknowledged.extend(ingested.acknowledged);
            waited += ingested.waited_for_bodies;
        }
        for querier in queriers {
            tallies.merge(querier.await.context("a query client panicked")?);
        }
        anyhow::Ok((tallies, acknowledged, waited))
    })
    .await?;
    let elapsed = started.elapsed();
    drop(bodies);
    producer.join().map_err(|_| anyhow::anyhow!("the producer thread panicked"))?;

    let lookups = choose_lookups(&acknowledged, verify_sample, seed);
    progress(format!("looking up {} of {} acknowledged trace ids", lookups.len(), acknowledged.len()));
    let looked_up = lookups.len() as u64;
    let deadline = Instant::now() + GRACE;
    let missing =
        within(GRACE, "the lookups", clients::look_up(&loaded.client, lookups, LOOKUP_CONCURRENCY, deadline)).await?;

    if let Some((server, data_dir)) = loaded.started {
        progress("stopping cts serve (SIGTERM)");
        server.stop(GRACE)?;
        std::fs::remove_dir_all(&data_dir).with_context(|| format!("removing {}", data_dir.display()))?;
    }
    let operations = tallies.reports(elapsed);
    Ok(LoadReport {
        target: loaded.description,
        seed,
        batch,
        ingest_clients,
        query_clients,
        duration_limit_seconds: duration.as_secs_f64(),
        request_limit: max_requests,
        stopped_by: if budget.requests_ran_out() { StopReason::Requests } else { StopReason::Duration },
        elapsed_seconds: elapsed.as_secs_f64(),
        waited_for_bodies_seconds: waited_for_bodies.as_secs_f64(),
        requests: operations.iter().map(|operation| operation.requests).sum(),
        operations,
        verification: Verification {
            acknowledged: acknowledged.len() as u64,
            looked_up,
            found: looked_up - missing.len() as u64,
            missing: missing.into_iter().take(10).collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_cover_every_id_up_to_the_sample_size_and_a_seeded_sample_beyond() {
        let ids: Vec<String> = (0..1_000).map(|i| format!("id-{i}")).collect();
        assert_eq!(choose_lookups(&ids[..200], 200, 1), ids[..200]);
        let sample = choose_lookups(&ids, 300, 1);
        assert_eq!(sample.len(), 300);
        assert_eq!(sample.iter().collect::<std::collections::HashSet<_>>().len(), 300, "no id twice");
        assert_eq!(sample, choose_lookups(&ids, 300, 1));
        assert_ne!(sample, choose_lookups(&ids, 300, 2));
    }

    #[test]
    fn the_plan_takes_its_values_from_the_start_of_the_workload() {
        let plan = plan(5, 1_795_000_000_000, 10_000);
        assert_eq!(plan.pairs.len(), PLAN_TRACES);
        assert!(!plan.resource_ids.is_empty() && plan.resource_ids.len() < PLAN_TRACES);
        let first = workload::Generator::new(5, 1_795_000_000_000, 10_000).next().unwrap();
        assert_eq!(plan.pairs[0].0, first["user"]["name"].as_str().unwrap());
    }

    #[test]
    fn options_out_of_range_are_refused_before_anything_runs() {
        let valid = LoadOptions {
            duration: Duration::from_secs(1),
            max_requests: 10,
            ingest_clients: 1,
            query_clients: 0,
            batch: 10,
            seed: 1,
            verify_sample: MIN_VERIFY_SAMPLE,
            target: Target::Running {
                url: "http://127.0.0.1:9".into(),
                credentials: cts_client::Credentials {
                    access_key: "AK".into(),
                    secret_key: "SK".into(),
                    project_id: "p".into(),
                },
            },
        };
        assert!(valid.check().is_ok());
        for invalid in [
            LoadOptions { duration: Duration::ZERO, ..valid.clone() },
            LoadOptions { max_requests: 0, ..valid.clone() },
            LoadOptions { ingest_clients: 0, ..valid.clone() },
            LoadOptions { batch: 1_001, ..valid.clone() },
            LoadOptions { verify_sample: MIN_VERIFY_SAMPLE - 1, ..valid.clone() },
        ] {
            assert!(run(invalid).is_err());
        }
    }
}
