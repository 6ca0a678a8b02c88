//! Opening a data directory: its identities, its trackers, its trace store and the ledger the store
//! appends to.
//!
//! The ledger reads `CTS_LEDGER_KEY` (a signing key `PRIVATE+KEY+...`, or the path of a file holding
//! one; default `<data_dir>/ledger/key`, created at first start), `CTS_LEDGER_ORIGIN_PREFIX` (default
//! `cts/`) and `CTS_LEDGER_CHECKPOINT_INTERVAL` (default `1s`).

use crate::config::Config;
use anyhow::Context;
use cts_ledger::{Ledger, LedgerConfig};
use cts_store::{AppendLog, Store, StoreConfig};
use std::sync::Arc;
use std::time::Duration;

/// Opens the identities, creating domain, project and admin key on first start
/// (from `CTS_ADMIN_*`, `CTS_PROJECT_ID`, `CTS_DOMAIN_ID`, `CTS_MASTER_KEY` when set).
pub fn open_iam(config: &Config) -> anyhow::Result<cts_iam::Iam> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let bootstrap = cts_iam::Bootstrap::from_env();
    let (iam, created) = cts_iam::Iam::open(&config.data_dir, bootstrap).context("opening identities")?;
    if let Some(admin) = created {
        eprintln!(
            "Created the first project and its admin access key (shown once; kept sealed in the data directory):"
        );
        eprintln!("  domain_id:  {}", admin.domain_id);
        eprintln!("  project_id: {}", admin.project_id);
        eprintln!("  access key: {}", admin.access_key);
        eprintln!("  secret key: {}", admin.secret_key);
    }
    Ok(iam)
}

/// Opens the ledger and the trace store, which appends every new trace to the ledger before
/// acknowledging it (and, recovering, appends the WAL traces the ledger lacks).
pub fn open_store(config: &Config) -> anyhow::Result<(Store, Arc<Ledger>)> {
    let ledger = Arc::new(open_ledger(config)?);
    let mut store_config = StoreConfig::new(&config.data_dir);
    store_config.retention_ms = config.retention.as_millis() as i64;
    let log = ledger.clone() as Arc<dyn AppendLog>;
    let store = Store::open_with_log(store_config, Some(log)).context("opening the trace store")?;
    Ok((store, ledger))
}

fn open_ledger(config: &Config) -> anyhow::Result<Ledger> {
    let mut ledger_config = LedgerConfig::new(&config.data_dir);
    if let Ok(key) = std::env::var("CTS_LEDGER_KEY") {
        let key = if key.trim_start().starts_with("PRIVATE+KEY+") {
            key
        } else {
            std::fs::read_to_string(&key)
                .with_context(|| format!("reading the ledger key file {key} (CTS_LEDGER_KEY)"))?
        };
        ledger_config.signing_key = Some(key);
    }
    if let Ok(prefix) = std::env::var("CTS_LEDGER_ORIGIN_PREFIX") {
        ledger_config.origin_prefix = prefix;
    }
    Ledger::open(ledger_config).context("opening the ledger")
}

/// How often the ledger signs checkpoints (`CTS_LEDGER_CHECKPOINT_INTERVAL`, default 1 s).
pub fn checkpoint_interval() -> anyhow::Result<Duration> {
    match std::env::var("CTS_LEDGER_CHECKPOINT_INTERVAL") {
        Ok(text) => humantime::parse_duration(&text).context("CTS_LEDGER_CHECKPOINT_INTERVAL"),
        Err(_) => Ok(Duration::from_secs(1)),
    }
}

/// Opens the trackers of every project (each gets its management tracker at first start).
pub fn open_resources(config: &Config, iam: &cts_iam::Iam) -> anyhow::Result<cts_resources::Resources> {
    let projects = iam.projects();
    let projects: Vec<_> = projects
        .iter()
        .map(|project| cts_resources::ProjectScope { project_id: &project.id, domain_id: &project.domain_id })
        .collect();
    cts_resources::Resources::open(&config.data_dir, &projects).context("opening the trackers")
}
