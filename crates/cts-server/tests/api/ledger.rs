//! The ledger routes through the whole router: a checkpoint verified with the key from /keys,
//! inclusion and consistency proofs against checkpoint roots, tiles that rebuild the root, errors.

use crate::common::*;
use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cts_ledger::merkle::{self, Hash, HashSource};
use cts_ledger::{trace_leaf_data, Checkpoint, Ledger, LedgerConfig, LedgerError, NoteVerifier};
use cts_model::Trace;
use cts_server::AppState;
use cts_store::{AppendLog, Store, StoreConfig};
use serde_json::Value;
use std::sync::Arc;

/// The harness with its store reopened behind a ledger.
pub fn ledger_harness() -> (Harness, Arc<Ledger>) {
    let Harness { state, dir } = harness();
    let AppState { store, iam, resources, .. } = state;
    drop(store);
    let ledger = Arc::new(Ledger::open(LedgerConfig::new(dir.path())).unwrap());
    let store = Store::open_with_log(StoreConfig::new(dir.path()), Some(ledger.clone() as Arc<dyn AppendLog>)).unwrap();
    let state = AppState::new(store, iam, resources).with_ledger(ledger.clone());
    (Harness { state, dir }, ledger)
}

fn trace(i: u64) -> Trace {
    let input: cts_model::TraceInput =
        serde_json::from_value(trace_json("createOrder", cts_model::now_ms() - 1000)).unwrap();
    Trace {
        trace_id: format!("00000000-0000-4000-8000-{i:012}"),
        ..input.into_trace(PROJECT_ID, cts_model::now_ms()).unwrap()
    }
}

async fn get(harness: &Harness, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
    let (status, _, body) = send(harness, Call::new("GET", path).query(query).request()).await;
    (status, body)
}

async fn get_bytes(harness: &Harness, path: &str) -> (StatusCode, Vec<u8>) {
    let response = tower::ServiceExt::oneshot(cts_server::app(harness.state.clone()), Call::new("GET", path).request());
    let response = response.await.unwrap();
    let status = response.status();
    (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
}

fn hashes(body: &Value) -> Vec<Hash> {
    body["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| BASE64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect()
}

fn path(tail: &str) -> String {
    format!("/v3/{PROJECT_ID}/ledger/{tail}")
}

async fn signed_checkpoint(harness: &Harness, verifiers: &[NoteVerifier]) -> Checkpoint {
    let (status, body) = get(harness, &path("checkpoint"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    Checkpoint::open(body.as_str().unwrap(), verifiers).unwrap()
}

struct Leaves(Vec<Hash>);

impl HashSource for Leaves {
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, LedgerError> {
        let start = (index << level) as usize;
        let mut level_hashes = self.0[start..start + (1 << level)].to_vec();
        while level_hashes.len() > 1 {
            level_hashes = level_hashes.chunks(2).map(|pair| merkle::node_hash(&pair[0], &pair[1])).collect();
        }
        Ok(level_hashes[0])
    }
}

#[tokio::test]
async fn checkpoints_proofs_and_tiles_verify_against_the_published_key() {
    let (harness, ledger) = ledger_harness();
    let traces: Vec<Trace> = (0..300).map(trace).collect();
    harness.state.store.append(traces.clone()).await.unwrap();
    ledger.checkpoint_all().unwrap();

    let (status, keys) = get(&harness, &path("keys"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let verifiers: Vec<NoteVerifier> =
        keys.as_str().unwrap().lines().map(|k| NoteVerifier::parse(k).unwrap()).collect();
    let first = signed_checkpoint(&harness, &verifiers).await;
    assert_eq!((first.origin.clone(), first.size), (format!("cts/{PROJECT_ID}"), 300));

    let trace_id = traces[123].trace_id.as_str();
    let (status, proof) = get(&harness, &path("proof/inclusion"), &[("trace_id", trace_id)]).await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    assert_eq!((proof["leaf_index"].as_u64(), proof["tree_size"].as_u64()), (Some(123), Some(300)));
    let leaf = merkle::leaf_hash(&trace_leaf_data(&traces[123]));
    assert!(merkle::verify_inclusion(&leaf, 123, 300, &hashes(&proof), &first.root));

    harness.state.store.append((300..520).map(trace).collect()).await.unwrap();
    ledger.checkpoint_all().unwrap();
    let second = signed_checkpoint(&harness, &verifiers).await;
    let query = [("first", "300"), ("second", "520")];
    let (status, consistency) = get(&harness, &path("proof/consistency"), &query).await;
    assert_eq!(status, StatusCode::OK);
    assert!(merkle::verify_consistency(300, 520, &first.root, &second.root, &hashes(&consistency)));
    let (_, older) = get(&harness, &path("proof/inclusion"), &[("trace_id", trace_id), ("tree_size", "300")]).await;
    assert!(merkle::verify_inclusion(&leaf, 123, 300, &hashes(&older), &first.root));

    // Tiles: two full tiles and the partial third rebuild the root; a partial tile is a prefix of the
    // full one; the entry bundle holds the leaf data.
    let (status, full) = get_bytes(&harness, &path("tile/0/000")).await;
    assert_eq!((status, full.len()), (StatusCode::OK, 256 * 32));
    let (status, partial) = get_bytes(&harness, &path("tile/0/001.p/8")).await;
    assert_eq!((status, partial.len()), (StatusCode::OK, 8 * 32));
    let (status, partial_two) = get_bytes(&harness, &path("tile/0/002.p/8")).await;
    assert_eq!((status, partial_two.len()), (StatusCode::OK, 8 * 32));
    let (_, second_tile) = get_bytes(&harness, &path("tile/0/001")).await;
    let leaves: Vec<Hash> =
        [full, second_tile, partial_two].concat().chunks(32).map(|h| Hash::try_from(h).unwrap()).collect();
    assert_eq!(merkle::root(&Leaves(leaves.clone()), 520).unwrap(), second.root);
    let (status, bundle) = get_bytes(&harness, &path("tile/entries/002.p/8")).await;
    assert_eq!(status, StatusCode::OK);
    let len = u16::from_be_bytes([bundle[0], bundle[1]]) as usize;
    assert_eq!(merkle::leaf_hash(&bundle[2..2 + len]), leaves[512]);
    assert_eq!(partial, leaves[256..264].concat());
}

#[tokio::test]
async fn bad_ledger_requests_get_cts_errors() {
    let (harness, ledger) = ledger_harness();
    harness.state.store.append((0..10).map(trace).collect()).await.unwrap();
    ledger.checkpoint_all().unwrap();
    let unknown = trace(99).trace_id;
    /// Path, query, expected status and CTS code.
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (path("proof/inclusion"), vec![("trace_id", unknown.as_str())], StatusCode::NOT_FOUND, "CTS.0404"),
        (path("proof/inclusion"), vec![], StatusCode::BAD_REQUEST, "CTS.0300"),
        (path("proof/inclusion"), vec![("trace_id", "x"), ("tree_size", "-1")], StatusCode::BAD_REQUEST, "CTS.0300"),
        (path("proof/consistency"), vec![("first", "5"), ("second", "11")], StatusCode::BAD_REQUEST, "CTS.0300"),
        (path("proof/consistency"), vec![("first", "0"), ("second", "10")], StatusCode::BAD_REQUEST, "CTS.0300"),
        (path("proof/consistency"), vec![("first", "5")], StatusCode::BAD_REQUEST, "CTS.0300"),
        (path("tile/0/000"), vec![], StatusCode::NOT_FOUND, "CTS.0404"),
        (path("tile/0/1"), vec![], StatusCode::NOT_FOUND, "CTS.0404"),
        (format!("/v3/{OTHER_PROJECT_ID}/ledger/checkpoint"), vec![], StatusCode::FORBIDDEN, "CTS.0013"),
    ];
    for (path, query, status, code) in cases {
        let (got, body) = get(&harness, &path, &query).await;
        assert_eq!((got, error_code(&body)), (status, code), "{path} {query:?}: {body}");
    }
    let trace_id = trace(3).trace_id;
    let (status, body) = get(&harness, &path("proof/inclusion"), &[("trace_id", &trace_id), ("tree_size", "3")]).await;
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "CTS.0300"), "leaf 3 is not in a tree of 3");
}

#[tokio::test]
async fn without_a_ledger_the_routes_are_not_found() {
    let harness = harness();
    let (status, body) = get(&harness, &path("checkpoint"), &[]).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "CTS.0404"));
}
