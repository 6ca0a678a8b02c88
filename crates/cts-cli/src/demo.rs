//! `cts demo`: cts serving on the embedded store, fed over its own ingest API
//! with a seeded KooGallery workload, then queried the way an auditor would.
//! Until the KooGallery marketplace service lands (issue 3), the workload
//! comes from the seeded generator of `cts-bench`.

use crate::config::{parse_duration, RawSettings};
use anyhow::Context;
use clap::Args;
use cts_bench::workload::Generator;
use cts_client::{Client, Credentials};
use cts_model::Trace;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    settings: RawSettings,
    /// Seed of the generated workload (the same seed gives the same traces).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How many operations the workload performs.
    #[arg(long, default_value_t = 20_000)]
    operations: usize,
    /// Stop once the workload has run and the queries are shown, instead of serving on.
    #[arg(long)]
    exit_after_workload: bool,
}

/// Traces per ingest request.
const BATCH: usize = 500;

pub fn run(mut args: DemoArgs) -> anyhow::Result<()> {
    args.settings.data_dir.get_or_insert_with(|| "cts-demo-data".into());
    let config = args.settings.clone().resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            tokio::select! {
                _ = crate::serve::shutdown_signal() => {}
                _ = stopped => {}
            }
        };
        let (address, server) = crate::serve::start(&config, shutdown).await?;
        let admin = cts_iam::AdminCredentials::load(&config.data_dir).context("reading the admin credentials")?;
        let credentials =
            Credentials { access_key: admin.access_key, secret_key: admin.secret_key, project_id: admin.project_id };
        let client = Client::new(&format!("http://{address}"), credentials)?;
        workload(&client, &args).await?;
        show(&client).await?;
        if args.exit_after_workload {
            let _ = stop.send(());
        } else {
            println!("\ncts keeps serving on http://{address} (Ctrl-C stops it). Try:");
            println!(
                "  cts traces --endpoint http://{address} --data-dir {} --trace-rating incident --from 7d",
                config.data_dir.display()
            );
        }
        server.await?
    })
}

async fn workload(client: &Client, args: &DemoArgs) -> anyhow::Result<()> {
    println!("\nRunning a seeded KooGallery workload of {} operations (seed {}) ...", args.operations, args.seed);
    let started = Instant::now();
    let traces: Vec<_> = Generator::new(args.seed, cts_model::now_ms(), args.operations).collect();
    let (mut accepted, mut rejected) = (0, 0);
    for batch in traces.chunks(BATCH) {
        let response = client.ingest(batch).await.context("ingesting the workload")?;
        accepted += response.accepted.len();
        rejected += response.rejected.len();
    }
    println!(
        "  {accepted} traces acknowledged (durable), {rejected} rejected, in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn show(client: &Client) -> anyhow::Result<()> {
    let from = (cts_model::now_ms() - parse_duration("from", "7d")?.as_millis() as i64).to_string();
    let latest = client.list_traces(&[("limit", "5".into()), ("from", from.clone())]).await?;
    print_traces("The five latest operations", &latest.traces);

    let incidents = client
        .list_traces(&[("limit", "5".into()), ("from", from.clone()), ("trace_rating", "incident".into())])
        .await?;
    print_traces("Operations that failed on the service's side (trace_rating=incident)", &incidents.traces);

    if let Some(user) = latest.traces.first().and_then(Trace::user_name) {
        let params = [("limit", "5".into()), ("from", from.clone()), ("user", user.to_owned())];
        let by_user = client.list_traces(&params).await?;
        print_traces(&format!("What {user} did last"), &by_user.traces);
    }
    let started = Instant::now();
    let mut pages = 0;
    let mut counted = 0;
    let mut params = vec![("limit", "200".to_owned()), ("from", from), ("trace_name", "createOrder".into())];
    loop {
        let page = client.list_traces(&params).await?;
        pages += 1;
        counted += page.traces.len();
        match page.meta_data.marker {
            Some(marker) => {
                params.retain(|(name, _)| *name != "next");
                params.push(("next", marker));
            }
            None => break,
        }
    }
    println!(
        "\nEvery createOrder of the last 7 days: {counted} traces over {pages} pages of ListTraces in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

fn print_traces(title: &str, traces: &[Trace]) {
    println!("\n{title}:");
    for trace in traces {
        println!("  {}", crate::traces::summary_row(trace));
    }
    if traces.is_empty() {
        println!("  (none)");
    }
}
