//! Kills `cts serve` with SIGKILL while clients ingest, restarts it, and
//! checks that every acknowledged trace is there exactly once.

use cts_client::{Client, Credentials};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCESS_KEY: &str = "CRASHTESTACCESSKEY01";
const SECRET_KEY: &str = "crash-test-secret-key-0123456789abcdefgh";
const PROJECT_ID: &str = "11112222333344445555666677778888";
const CLIENTS: usize = 4;
const BATCH: usize = 50;
const KILLS: usize = 3;

struct Server {
    child: Child,
    endpoint: String,
}

impl Server {
    async fn start(data_dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_cts"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("CTS_ADMIN_ACCESS_KEY", ACCESS_KEY)
            .env("CTS_ADMIN_SECRET_KEY", SECRET_KEY)
            .env("CTS_PROJECT_ID", PROJECT_ID)
            .env("CTS_DOMAIN_ID", "99990000999900009999000099990000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting cts serve");
        let server = Server { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if server.client().health().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cts serve did not become healthy");
    }

    fn client(&self) -> Client {
        let credentials =
            Credentials { access_key: ACCESS_KEY.into(), secret_key: SECRET_KEY.into(), project_id: PROJECT_ID.into() };
        Client::new(&self.endpoint, credentials).unwrap()
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

fn batch() -> Vec<Value> {
    (0..BATCH)
        .map(|i| {
            json!({
                "trace_id": uuid::Uuid::new_v4().to_string(),
                "trace_name": if i % 2 == 0 { "createOrder" } else { "queryOrderList" },
                "service_type": "marketplace",
                "resource_type": "Order",
                "resource_id": format!("order-{i}"),
                "request": {"productId": "p-1", "i": i},
                "code": "200",
                "user": {"name": "crash-tester", "access_key_id": ACCESS_KEY},
            })
        })
        .collect()
}

/// Ingests (first retrying the batch left unanswered by the last kill)
/// until the server goes away; records acknowledged ids and returns the
/// batch that got no answer.
async fn ingest_until_killed(
    client: Client,
    acknowledged: Arc<Mutex<Vec<String>>>,
    unanswered: Option<Vec<Value>>,
) -> Vec<Value> {
    let mut traces = unanswered.unwrap_or_else(batch);
    loop {
        match client.ingest(&traces).await {
            Ok(response) => {
                assert!(response.rejected.is_empty(), "{:?}", response.rejected);
                acknowledged.lock().unwrap().extend(response.accepted.into_iter().map(|a| a.trace_id));
            }
            Err(_) => return traces,
        }
        traces = batch();
    }
}

async fn all_trace_ids(client: &Client) -> Vec<String> {
    let now = cts_model::now_ms();
    let mut ids = Vec::new();
    let mut params =
        vec![("limit", "200".to_owned()), ("from", (now - 3_600_000).to_string()), ("to", (now + 60_000).to_string())];
    loop {
        let page = client.list_traces(&params).await.expect("ListTraces after restart");
        ids.extend(page.traces.into_iter().map(|t| t.trace_id));
        match page.meta_data.marker {
            Some(marker) => {
                params.retain(|(name, _)| *name != "next");
                params.push(("next", marker));
            }
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingest_loses_no_acknowledged_trace() {
    let data_dir = tempfile::tempdir().unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut unanswered: Vec<Option<Vec<Value>>> = vec![None; CLIENTS];
    for round in 0..KILLS {
        let server = Server::start(data_dir.path()).await;
        let clients: Vec<_> = unanswered
            .drain(..)
            .map(|retry| tokio::spawn(ingest_until_killed(server.client(), acknowledged.clone(), retry)))
            .collect();
        tokio::time::sleep(Duration::from_millis(700 + 300 * round as u64)).await;
        server.kill();
        for client in clients {
            unanswered.push(Some(client.await.unwrap()));
        }
    }

    let server = Server::start(data_dir.path()).await;
    let found = all_trace_ids(&server.client()).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &found {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "traces stored twice: {twice:?}");
    let acknowledged = acknowledged.lock().unwrap();
    assert!(acknowledged.len() >= BATCH * CLIENTS, "the clients got too few acknowledgements to test anything");
    let found: HashSet<&str> = found.iter().map(String::as_str).collect();
    let lost: Vec<_> = acknowledged.iter().filter(|id| !found.contains(id.as_str())).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged traces lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        lost.first()
    );
    server.kill();
}
