//! Opening a data directory: its identities, its trackers and its trace store.

use crate::config::Config;
use anyhow::Context;
use cts_store::{Store, StoreConfig};

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

pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    let mut store_config = StoreConfig::new(&config.data_dir);
    store_config.retention_ms = config.retention.as_millis() as i64;
    Store::open(store_config).context("opening the trace store")
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
