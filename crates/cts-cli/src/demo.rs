//! `cts demo`: the whole system at work on one machine. cts serves on the embedded store; the KooGallery
//! marketplace serves beside it (data under `<data-dir>/koogallery`) and reports every operation to cts through a
//! `reporter`-role key; a seeded workload of buyers and sellers drives the marketplace over HTTP across simulated
//! days; then the demo shows what an auditor sees through ListTraces and keeps both services running.

use crate::config::{Config, RawSettings};
use crate::data_dir::open_iam;
use crate::koogallery::{Marketplace, ServiceConfig};
use anyhow::Context;
use clap::Args;
use cts_client::{Client, Credentials};
use cts_iam::{AdminCredentials, Iam, Role};
use cts_koogallery::model::DAY_MS;
use cts_koogallery::workload::{self, Target, WorkloadReport};
use cts_koogallery::Clock;
use cts_model::{Trace, TraceRating, TraceType, MARKETPLACE_PROVIDER_SERVICE, MARKETPLACE_SERVICE};
use cts_reporter::{Reporter, ReporterConfig};
use indicatif::{ProgressBar, ProgressStyle};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    settings: RawSettings,
    /// Seed of the workload (the same seed gives the same operations).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How many marketplace operations the workload performs.
    #[arg(long, default_value_t = 20_000)]
    operations: usize,
    /// Stop once the workload has run, its traces are in cts and the queries are shown, instead of serving on.
    #[arg(long)]
    exit_after_workload: bool,
}

pub const DEFAULT_DATA_DIR: &str = "cts-demo-data";
/// The cts user whose key the marketplace reports with.
pub const REPORTER_USER: &str = "koogallery-reporter";
/// How long the demo waits for the last traces to reach cts.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);
/// Traces per ListTraces page (the API's maximum).
const PAGE: &str = "200";

pub fn run(mut args: DemoArgs) -> anyhow::Result<()> {
    args.settings.data_dir.get_or_insert_with(|| DEFAULT_DATA_DIR.into());
    // The workload spans simulated weeks or months: keep all of it queryable unless told otherwise.
    let span_ms = workload::simulated_span_ms(args.operations);
    args.settings.retention.get_or_insert_with(|| format!("{}d", days_covering(span_ms).max(7)));
    let config = args.settings.clone().resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(demo(&config, &args))
}

async fn demo(config: &Config, args: &DemoArgs) -> anyhow::Result<()> {
    let (admin, reporter_credentials) = identities(config)?;
    let (stop_cts, cts_stopped) = oneshot::channel::<()>();
    let (cts_address, mut cts_server) = crate::serve::start(config, async {
        let _ = cts_stopped.await;
    })
    .await?;
    let cts_endpoint = format!("http://{cts_address}");

    let koogallery_dir = config.data_dir.join("koogallery");
    let service = ServiceConfig {
        data_dir: fresh_marketplace_dir(&koogallery_dir)?,
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        // The workload names its simulated clients in X-Forwarded-For.
        trusted_proxies: vec![Ipv4Addr::LOCALHOST.into()],
        admin_token: uuid::Uuid::new_v4().simple().to_string(),
    };
    let reporter =
        Reporter::start(ReporterConfig::new(&cts_endpoint, reporter_credentials, koogallery_dir.join("spool")))
            .context("starting the reporter")?;
    let simulated_start = cts_model::now_ms() - workload::simulated_span_ms(args.operations);
    let mut marketplace = crate::koogallery::start(&service, Clock::simulated(simulated_start), reporter).await?;
    println!("KooGallery listening on http://{}", marketplace.address);

    let worked = tokio::select! {
        report = run_workload(&marketplace, &service.admin_token, args) => Some(report),
        _ = crate::serve::shutdown_signal() => None,
    };
    let mut cts_ended = None;
    let ran = matches!(worked, Some(Ok(_)));
    let presented = match worked {
        Some(Ok(report)) => {
            let shown =
                present(config, cts_address, &marketplace, &admin, &service.admin_token, simulated_start, report);
            shown.await
        }
        Some(Err(error)) => Err(error),
        None => Ok(()),
    };
    if ran && presented.is_ok() && !args.exit_after_workload {
        marketplace.keep_time();
        println!("\ncts and KooGallery keep serving (Ctrl-C stops both).");
        cts_ended = tokio::select! {
            _ = crate::serve::shutdown_signal() => None,
            ended = &mut cts_server => Some(ended),
        };
    }
    // Stopped in this order whatever happened: the marketplace's last traces go to cts (or its spool) first.
    let stopped = marketplace.stop().await;
    let served = match cts_ended {
        Some(ended) => ended,
        None => {
            let _ = stop_cts.send(());
            cts_server.await
        }
    };
    presented.and(stopped).and(served?)
}

/// Flushes the reporter, then shows what cts recorded and how to look further.
async fn present(
    config: &Config,
    cts_address: SocketAddr,
    marketplace: &Marketplace,
    admin: &AdminCredentials,
    admin_token: &str,
    simulated_start: i64,
    report: WorkloadReport,
) -> anyhow::Result<()> {
    let started = Instant::now();
    if let Err(error) = marketplace.reporter.flush(FLUSH_TIMEOUT).await {
        tracing::warn!(%error, "not every trace reached cts in time");
    }
    let stats = marketplace.reporter.stats();
    println!(
        "\n{} operations ({} refused with a 4xx, {} failed with a 5xx) over {:.1} simulated days; \
         {} traces submitted, {} delivered to cts (flushed in {:.2} s), {} dropped",
        report.operations,
        report.rule_breaks,
        report.incidents,
        report.simulated_ms as f64 / DAY_MS as f64,
        stats.submitted,
        stats.delivered,
        started.elapsed().as_secs_f64(),
        stats.dropped_total(),
    );
    let client = Client::new(&format!("http://{cts_address}"), admin_client_credentials(admin))?;
    let from = simulated_start.to_string();
    census(&client, &from).await?;
    show(&client, &from).await?;
    instructions(config, cts_address, marketplace, admin_token, admin);
    Ok(())
}

/// The admin credentials of the data directory, and a key of the marketplace's `reporter` user, created on the
/// first run. A secret key is shown once and kept sealed, so a later run replaces the user's key instead of reusing
/// it: one user, one key, however often the demo runs.
fn identities(config: &Config) -> anyhow::Result<(AdminCredentials, Credentials)> {
    let iam = open_iam(config)?;
    let admin = AdminCredentials::load(&config.data_dir).context("reading the admin credentials")?;
    let reporter = reporter_credentials(&iam, &admin).context("creating the marketplace's reporter key")?;
    Ok((admin, reporter))
}

fn reporter_credentials(iam: &Iam, admin: &AdminCredentials) -> anyhow::Result<Credentials> {
    let existing = iam.users().into_iter().find(|user| user.domain_id == admin.domain_id && user.name == REPORTER_USER);
    let user = match existing {
        Some(user) if user.role == Role::Reporter => user,
        Some(user) => iam.set_role(&user.id, Role::Reporter)?,
        None => iam.create_user(&admin.domain_id, REPORTER_USER, Role::Reporter)?,
    };
    for key in iam.access_keys().into_iter().filter(|key| key.user_id == user.id) {
        iam.delete_access_key(&key.access_key)?;
    }
    let key = iam.create_access_key(&user.id, &admin.project_id)?;
    Ok(Credentials {
        access_key: key.info.access_key,
        secret_key: key.secret_key,
        project_id: admin.project_id.clone(),
    })
}

fn admin_client_credentials(admin: &AdminCredentials) -> Credentials {
    Credentials {
        access_key: admin.access_key.clone(),
        secret_key: admin.secret_key.clone(),
        project_id: admin.project_id.clone(),
    }
}

/// The marketplace's state directory, emptied: the workload populates a new marketplace on every run (traces an
/// earlier run left in the spool, beside it, are still delivered).
fn fresh_marketplace_dir(koogallery_dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = koogallery_dir.join("market");
    if dir.exists() {
        println!("Replacing the marketplace of an earlier run in {} (its traces stay in cts)", dir.display());
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(dir)
}

async fn run_workload(marketplace: &Marketplace, admin_token: &str, args: &DemoArgs) -> anyhow::Result<WorkloadReport> {
    println!(
        "\nRunning a seeded KooGallery workload of {} operations (seed {}) over HTTP ...",
        args.operations, args.seed
    );
    let target = Target::Http { base_url: format!("http://{}", marketplace.address), client: reqwest::Client::new() };
    let bar = ProgressBar::new(args.operations as u64)
        .with_style(ProgressStyle::with_template("{bar:40} {pos}/{len} operations ({per_sec}, {eta} left)")?);
    let report =
        workload::run(&target, admin_token, args.seed, args.operations, |done, _| bar.set_position(done as u64))
            .await
            .context("running the workload")?;
    bar.finish_and_clear();
    Ok(report)
}

/// What the marketplace's traces in cts add up to, counted through every page of ListTraces.
async fn census(client: &Client, from: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let (mut traces, mut warnings, mut incidents, mut system_actions) = (0, 0, 0, 0);
    let pages = for_each_trace(client, vec![("from", from.to_owned())], |trace| {
        if trace.service_type != MARKETPLACE_SERVICE && trace.service_type != MARKETPLACE_PROVIDER_SERVICE {
            return; // cts's own traces of these queries
        }
        traces += 1;
        warnings += usize::from(trace.trace_rating == TraceRating::Warning);
        incidents += usize::from(trace.trace_rating == TraceRating::Incident);
        system_actions += usize::from(trace.trace_type == TraceType::SystemAction);
    })
    .await?;
    println!(
        "ListTraces: {traces} KooGallery traces ({warnings} warning, {incidents} incident, {system_actions} \
         SystemAction), read in {pages} pages in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Calls `visit` on every trace matching `filters`, page after page; answers how many pages it read.
async fn for_each_trace(
    client: &Client,
    filters: Vec<(&'static str, String)>,
    mut visit: impl FnMut(&Trace),
) -> anyhow::Result<usize> {
    let mut params = filters;
    params.push(("limit", PAGE.to_owned()));
    let mut pages = 0;
    loop {
        let page = client.list_traces(&params).await.context("ListTraces")?;
        page.traces.iter().for_each(&mut visit);
        pages += 1;
        match page.meta_data.marker {
            Some(marker) => {
                params.retain(|(name, _)| *name != "next");
                params.push(("next", marker));
            }
            None => return Ok(pages),
        }
    }
}

/// A few questions an auditor asks, answered by ListTraces.
async fn show(client: &Client, from: &str) -> anyhow::Result<()> {
    let query = |limit: u32, filters: &[(&'static str, &str)]| {
        let mut params: Vec<(&str, String)> = vec![("limit", limit.to_string()), ("from", from.to_owned())];
        params.extend(filters.iter().map(|(name, value)| (*name, (*value).to_owned())));
        params
    };
    let latest = client.list_traces(&query(5, &[("service_type", MARKETPLACE_SERVICE)])).await?;
    print_traces("The five latest buyer operations", &latest.traces, false);
    let refused = client.list_traces(&query(3, &[("trace_rating", "warning")])).await?;
    print_traces(
        "Operations refused for breaking a rule (trace_rating=warning), with the answer",
        &refused.traces,
        true,
    );
    let incidents = client.list_traces(&query(5, &[("trace_rating", "incident")])).await?;
    print_traces("Operations that failed on the marketplace's side (trace_rating=incident)", &incidents.traces, false);
    let platform = client.list_traces(&query(5, &[("user", "system")])).await?;
    print_traces("What the platform did on its own (SystemAction: payment, expiry, renewal)", &platform.traces, false);
    let buyer = latest.traces.iter().find_map(Trace::user_name).map(str::to_owned);
    if let Some(user) = buyer {
        let by_user = client.list_traces(&query(5, &[("user", user.as_str())])).await?;
        print_traces(&format!("What {user} did last"), &by_user.traces, false);
    }
    let started = Instant::now();
    let mut orders = 0;
    let filters = vec![("from", from.to_owned()), ("trace_name", "createOrder".to_owned())];
    let pages = for_each_trace(client, filters, |_| orders += 1).await?;
    println!(
        "\nEvery createOrder of the workload: {orders} traces over {pages} pages of ListTraces in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

fn print_traces(title: &str, traces: &[Trace], with_response: bool) {
    println!("\n{title}:");
    for trace in traces {
        println!("  {}", crate::traces::summary_row(trace));
        if let Some(response) = trace.response.as_deref().filter(|_| with_response) {
            println!("      response: {response}");
        }
    }
    if traces.is_empty() {
        println!("  (none)");
    }
}

fn instructions(
    config: &Config,
    cts_address: SocketAddr,
    marketplace: &Marketplace,
    admin_token: &str,
    admin: &AdminCredentials,
) {
    let data_dir = config.data_dir.display();
    let days = days_covering(config.retention.as_millis() as i64);
    let traces = format!("cts traces --endpoint http://{cts_address} --data-dir {data_dir} --from {days}d");
    println!("\ncts:        http://{cts_address}");
    println!("console:    http://{cts_address}/console (arrives with issue 8)");
    println!("admin:      access key {}, secret key {}", admin.access_key, admin.secret_key);
    println!("            project {}, domain {}", admin.project_id, admin.domain_id);
    println!("KooGallery: http://{} (X-Admin-Token {admin_token})", marketplace.address);
    println!("            workload users sign in with password {:?}", workload::PASSWORD);
    println!("\nTry:");
    println!("  {traces} --trace-rating warning");
    println!("  {traces} --service-type marketplace --trace-name cancelOrder");
    println!("  {traces} --user alice --limit 20");
    println!("  {traces} --user system --json");
    println!("Later, on the same data: cts serve --data-dir {data_dir} --retention {days}d");
}

/// Whole days covering `ms`.
fn days_covering(ms: i64) -> i64 {
    (ms + DAY_MS - 1) / DAY_MS
}
