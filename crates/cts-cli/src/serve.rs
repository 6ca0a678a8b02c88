//! `cts serve`: opens the data directory and runs the API until Ctrl-C or
//! SIGTERM (`cts_server::serve` then seals the memtable).

use crate::config::{Config, RawSettings};
use crate::data_dir::{checkpoint_interval, open_iam, open_resources, open_store};
use anyhow::Context;
use clap::Args;
use cts_store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    settings: RawSettings,
}

/// How often retention runs.
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);
/// How often the identities file is checked for changes made by `cts admin`.
const IDENTITY_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.settings.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let (_, server) = start(&config, shutdown_signal()).await?;
        server.await?
    })
}

/// Opens the data directory, binds the listener and serves in a task until
/// `shutdown` resolves. Returns the bound address and the serving task.
pub async fn start(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let iam = open_iam(config)?;
    let resources = open_resources(config, &iam)?;
    let (store, ledger) = open_store(config)?;
    let checkpointer = ledger.spawn_checkpointer(checkpoint_interval()?)?;
    let iam = Arc::new(iam);
    let resources = Arc::new(resources);
    // The key `open_iam` found or created: subscription secrets are sealed under it like secret keys.
    let from_env = std::env::var(cts_iam::MASTER_KEY_ENV).ok().filter(|key| !key.is_empty());
    let master_key = cts_iam::MasterKey::load(&config.data_dir, from_env.as_deref())?;
    let topics = Arc::new(cts_notify::Topics::open(&config.data_dir, &config.region, master_key)?);
    let outbox = Arc::new(cts_notify::Outbox::open(&config.data_dir)?);
    let mut state = cts_server::AppState::new(store.clone(), iam.clone(), resources.clone())
        .with_rate_limits(config.rate_limits)
        .with_redactor(config.redactor.clone())
        .with_limits(config.limits)
        .with_ledger(ledger.clone())
        .with_notify(cts_server::NotifyState { topics: topics.clone(), outbox: outbox.clone() });
    #[cfg(feature = "sql")]
    {
        state = state.with_sql_limits(cts_server::SqlLimits {
            timeout: config.sql.timeout,
            memory_bytes: config.sql.memory_bytes,
            max_rows: config.sql.max_rows,
            ..cts_server::SqlLimits::default()
        });
    }
    #[cfg(not(feature = "sql"))]
    if config.sql != crate::config::SqlSettings::default() {
        tracing::warn!("the sql_* settings do nothing: this build has no SQL (build with --features sql)");
    }
    let mut notifier_config = cts_notify::NotifierConfig {
        insight_projects: iam.projects().into_iter().map(|project| project.id).collect(),
        ..cts_notify::NotifierConfig::default()
    };
    notifier_config.delivery.smtp_url = config.smtp_url.clone();
    notifier_config.delivery.retry.dead_letter_after = config.dead_letter_after;
    let notifier = cts_notify::Notifier::start(store.clone(), resources.clone(), topics, outbox, notifier_config)
        .context("starting notification delivery")?;
    let mut transfer = None;
    if let Some(obs) = &config.obs {
        let obs = Arc::new(cts_obs::Obs::new(obs.clone())?);
        state = state.with_obs(obs.clone());
        let settings = cts_transfer::TransferConfig {
            keyring: config.keyring.clone(),
            ..cts_transfer::TransferConfig::new(config.transfer_interval, config.region.clone())
        };
        let mut engine = cts_transfer::Transfer::open(&config.data_dir, store.clone(), resources, obs, settings)
            .context("opening trace file delivery")?
            .with_ledger(ledger);
        if let Some(stream) = &config.stream {
            engine = engine.with_stream(cts_transfer::TraceStream::new(stream.clone()));
        }
        state = state.with_delivery_history(engine.history());
        transfer = Some(Arc::new(engine));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    tracing::info!(%address, scheme, data_dir = %config.data_dir.display(), "cts serving");
    println!("cts listening on {scheme}://{address}");
    let tls = config.tls.clone();
    let server = tokio::spawn(async move {
        let retention = tokio::spawn(enforce_retention(store));
        let identities = tokio::spawn(reload_identities(iam));
        // Stopping mid-cycle is safe: the next start rewrites the same objects.
        let delivery = transfer.map(|transfer| tokio::spawn(transfer.run()));
        let served = match tls {
            Some(tls) => cts_server::serve_tls(listener, state, tls, shutdown).await,
            None => cts_server::serve(listener, state, shutdown).await,
        }
        .context("serving");
        retention.abort();
        identities.abort();
        if let Some(delivery) = delivery {
            delivery.abort();
        }
        // Stopping the checkpointer signs a last checkpoint over everything acknowledged.
        tokio::task::spawn_blocking(move || drop(checkpointer)).await?;
        notifier.shutdown().await;
        tracing::info!("cts stopped");
        served
    });
    Ok((address, server))
}

async fn enforce_retention(store: Store) {
    let mut ticks = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        ticks.tick().await;
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.enforce_retention(cts_model::now_ms())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(dropped)) => tracing::info!(dropped, "retention dropped expired segments"),
            Ok(Err(error)) => tracing::error!(%error, "retention failed"),
            Err(error) => tracing::error!(%error, "retention task failed"),
        }
    }
}

/// Picks up domains, users, keys and roles that `cts admin` changed in the data directory.
async fn reload_identities(iam: Arc<cts_iam::Iam>) {
    let mut ticks = tokio::time::interval(IDENTITY_RELOAD_INTERVAL);
    loop {
        ticks.tick().await;
        let iam = iam.clone();
        match tokio::task::spawn_blocking(move || iam.reload_if_changed()).await {
            Ok(Ok(false)) => {}
            Ok(Ok(true)) => tracing::info!("identities reloaded"),
            Ok(Err(error)) => tracing::error!(%error, "reloading identities failed; keeping the previous ones"),
            Err(error) => tracing::error!(%error, "identity reload task failed"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
