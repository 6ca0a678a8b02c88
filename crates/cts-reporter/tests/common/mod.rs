//! A real cts in the test process: store, identities and trackers in a data directory, served on a loopback
//! port that survives a stop and a restart; a reporter configured for fast tests; traces told apart by
//! `resource_id`.

use cts_client::{Client, Credentials};
use cts_iam::{Bootstrap, Iam};
use cts_model::{Trace, TraceInput};
use cts_reporter::{Reporter, ReporterConfig};
use cts_resources::{ProjectScope, Resources};
use cts_server::AppState;
use cts_store::{Store, StoreConfig};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ACCESS_KEY: &str = "TESTREPORTERACCESS01";
const SECRET_KEY: &str = "test-secret-key-0123456789-abcdefghijklm";
const PROJECT_ID: &str = "0123456789abcdef0123456789abcdef";

pub fn credentials() -> Credentials {
    Credentials { access_key: ACCESS_KEY.into(), secret_key: SECRET_KEY.into(), project_id: PROJECT_ID.into() }
}

/// A cts server on `address` over `data_dir`, which can be stopped and started again.
pub struct Cts {
    data_dir: PathBuf,
    pub address: SocketAddr,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Cts {
    /// Serves `data_dir` on a free loopback port.
    pub async fn start(data_dir: &Path) -> Cts {
        let mut cts = Cts { data_dir: data_dir.to_owned(), address: free_address(), running: None };
        cts.restart().await;
        cts
    }

    /// A cts that is not running yet, on a port it will take when started.
    pub fn stopped(data_dir: &Path) -> Cts {
        Cts { data_dir: data_dir.to_owned(), address: free_address(), running: None }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Starts serving (again) on the same data directory and address.
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "cts is running already");
        let state = open_state(&self.data_dir);
        let listener = tokio::net::TcpListener::bind(self.address).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            // A test that ends without stopping cts drops the server with the runtime; nothing to report then.
            if let Err(error) = cts_server::serve(listener, state, async move { stopped.await.unwrap_or(()) }).await {
                eprintln!("cts stopped with an error: {error}");
            }
        });
        self.running = Some((stop, server));
    }

    /// Stops serving and waits until the store is closed.
    pub async fn stop(&mut self) {
        let (stop, server) = self.running.take().expect("cts is running");
        stop.send(()).unwrap();
        server.await.unwrap();
    }

    /// Every marketplace trace stored (the last hour, newest first), through ListTraces page by page; cts's own
    /// `CTS` traces of these ListTraces calls are left out.
    pub async fn traces(&self) -> Vec<Trace> {
        let client = Client::new(&self.endpoint(), credentials()).unwrap();
        let mut traces = Vec::new();
        let mut marker = None;
        loop {
            let mut params = vec![("limit", "200".to_owned()), ("service_type", "marketplace".to_owned())];
            params.extend(marker.map(|marker| ("next", marker)));
            let page = client.list_traces(&params).await.unwrap();
            traces.extend(page.traces);
            match page.meta_data.marker {
                Some(next) => marker = Some(next),
                None => return traces,
            }
        }
    }

    /// The `resource_id`s of the stored traces, asserting that none is stored twice.
    pub async fn resource_ids(&self) -> BTreeSet<String> {
        let traces = self.traces().await;
        let ids: BTreeSet<String> = traces.iter().map(|trace| trace.resource_id.clone().unwrap()).collect();
        assert_eq!(ids.len(), traces.len(), "a trace was stored more than once");
        ids
    }
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn open_state(data_dir: &Path) -> AppState {
    let store = Store::open(StoreConfig::new(data_dir)).unwrap();
    let bootstrap = Bootstrap {
        access_key: Some(ACCESS_KEY.into()),
        secret_key: Some(SECRET_KEY.into()),
        project_id: Some(PROJECT_ID.into()),
        domain_id: None,
        master_key: None,
    };
    let (iam, _) = Iam::open(data_dir, bootstrap).unwrap();
    let projects = iam.projects();
    let projects: Vec<_> = projects
        .iter()
        .map(|project| ProjectScope { project_id: &project.id, domain_id: &project.domain_id })
        .collect();
    let resources = Resources::open(data_dir, &projects).unwrap();
    AppState::new(store, Arc::new(iam), Arc::new(resources))
}

/// A reporter for tests: short delays and backoffs.
pub fn config(endpoint: &str, spool_dir: &Path) -> ReporterConfig {
    ReporterConfig {
        batch_max_delay: Duration::from_millis(20),
        retry_backoff_base: Duration::from_millis(10),
        retry_backoff_max: Duration::from_millis(100),
        request_timeout: Duration::from_secs(5),
        ..ReporterConfig::new(endpoint, credentials(), spool_dir)
    }
}

pub fn start(config: ReporterConfig) -> Reporter {
    // Logs shown for failing tests (`RUST_LOG` picks the level).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    Reporter::start(config).unwrap()
}

/// Trace number `n`: an order created by alice, `resource_id` `order-<n>`.
pub fn trace(n: usize) -> TraceInput {
    TraceInput {
        trace_name: Some("createOrder".into()),
        service_type: Some("marketplace".into()),
        resource_type: Some("Order".into()),
        resource_id: Some(order(n)),
        code: Some(serde_json::json!(201)),
        source_ip: Some("192.0.2.7".into()),
        user: Some(cts_model::UserInfo { name: Some("alice".into()), ..Default::default() }),
        ..Default::default()
    }
}

pub fn order(n: usize) -> String {
    format!("order-{n:06}")
}

pub fn orders(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(order).collect()
}

/// Every file name in `dir`.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
