//! The kill -9 loop: kills `cts serve` with SIGKILL while clients ingest, 20 times at varied
//! moments (some right after start, while it still seals what the last kill left in the WAL), and
//! restarts it each time; then checks that every acknowledged trace is there exactly once and
//! that `cts verify` finds the data directory and its ledger intact.

mod common;

use common::{cts, Server, ACCESS_KEY};
use cts_client::Client;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 4;
const BATCH: usize = 50;
const KILLS: usize = 20;
/// How long each round ingests before the kill (ms), cycled: early, mid and late kills.
const ROUND_MS: [u64; 5] = [40, 350, 120, 700, 220];

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
async fn twenty_sigkills_during_ingest_lose_no_acknowledged_trace_and_duplicate_none() {
    let data_dir = tempfile::tempdir().unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut unanswered: Vec<Option<Vec<Value>>> = vec![None; CLIENTS];
    for round in 0..KILLS {
        let server = Server::start(data_dir.path()).await;
        let clients: Vec<_> = unanswered
            .drain(..)
            .map(|retry| tokio::spawn(ingest_until_killed(server.client(), acknowledged.clone(), retry)))
            .collect();
        tokio::time::sleep(Duration::from_millis(ROUND_MS[round % ROUND_MS.len()])).await;
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
    let verified = cts().arg("verify").arg("--data-dir").arg(data_dir.path()).output().unwrap();
    assert!(verified.status.success(), "cts verify after the kills: {}", String::from_utf8_lossy(&verified.stdout));
}
