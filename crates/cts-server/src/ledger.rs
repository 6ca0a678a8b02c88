//! The ledger routes (issue 5), signed like every `/v3` call; any principal of the project may read:
//! - `GET /v3/{project_id}/ledger/checkpoint`: the latest signed checkpoint note (text/plain);
//! - `GET /v3/{project_id}/ledger/keys`: the verifier keys, one per line (text/plain);
//! - `GET /v3/{project_id}/ledger/proof/inclusion?trace_id=...&tree_size=N` (tree_size defaults to the
//!   latest checkpoint's): `{"leaf_index":i,"tree_size":N,"hashes":[base64...]}`;
//! - `GET /v3/{project_id}/ledger/proof/consistency?first=M&second=N`: `{"hashes":[base64...]}`;
//! - `GET /v3/{project_id}/ledger/tile/...`: C2SP tlog-tiles hash tiles and entry bundles.
//!
//! Unknown traces, projects without a log and tiles beyond the log are 404 (CTS.0404); malformed or
//! out-of-range parameters 400 (CTS.0300).

use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cts_iam::Principal;
use cts_ledger::{hashes_to_base64, parse_tile_path, Ledger, LedgerError, TileRequest};
use std::sync::Arc;

/// Runs a ledger read off the async runtime (proofs and tiles read the entries file).
async fn read<T: Send + 'static>(
    state: &AppState,
    read: impl FnOnce(&Ledger) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let ledger: Arc<Ledger> = state.ledger.clone().ok_or(ApiError::NotFound)?;
    tokio::task::spawn_blocking(move || read(&ledger)).await.map_err(ApiError::TaskFailed)?
}

/// The ledger's failures as API errors; `parameter` names what an out-of-range value came from.
fn api_error(error: LedgerError, parameter: &str) -> ApiError {
    match error {
        LedgerError::UnknownTrace { .. } | LedgerError::UnknownProject(_) | LedgerError::EntriesUnavailable(_) => {
            ApiError::NotFound
        }
        LedgerError::OutOfRange(reason) | LedgerError::Invalid { reason, .. } => {
            ApiError::InvalidParameter { name: parameter.to_owned(), reason }
        }
        LedgerError::Io { .. } | LedgerError::Corrupt { .. } => ApiError::ReadFailed(Box::new(error)),
    }
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// A required non-negative integer query parameter (or `None` when absent and optional).
fn number(params: &QueryParams, name: &str) -> Result<Option<u64>, ApiError> {
    params
        .get(name)?
        .map(|value| {
            value.parse::<u64>().map_err(|_| ApiError::InvalidParameter {
                name: name.to_owned(),
                reason: "must be a non-negative integer".to_owned(),
            })
        })
        .transpose()
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::InvalidParameter { name: name.to_owned(), reason: "is required".to_owned() })
}

pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, ApiError> {
    let note = read(&state, move |ledger| {
        ledger.latest_checkpoint(&principal.project_id).map_err(|e| api_error(e, "project_id"))
    })
    .await?;
    Ok(text(note))
}

pub(crate) async fn keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(text(read(&state, |ledger| Ok(ledger.verifier_keys())).await?))
}

pub(crate) async fn inclusion_proof(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = QueryParams::of(&uri);
    let trace_id = required(params.get("trace_id")?, "trace_id")?.to_owned();
    let tree_size = number(&params, "tree_size")?;
    let proof = read(&state, move |ledger| {
        ledger.inclusion_proof(&principal.project_id, &trace_id, tree_size).map_err(|e| api_error(e, "tree_size"))
    })
    .await?;
    Ok(Json(proof.to_json()))
}

pub(crate) async fn consistency_proof(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<Json<serde_json::Value>, ApiError> {
    let params = QueryParams::of(&uri);
    let first = required(number(&params, "first")?, "first")?;
    let second = required(number(&params, "second")?, "second")?;
    let hashes = read(&state, move |ledger| {
        ledger.consistency_proof(&principal.project_id, first, second).map_err(|e| api_error(e, "first"))
    })
    .await?;
    Ok(Json(serde_json::json!({ "hashes": hashes_to_base64(&hashes) })))
}

pub(crate) async fn tile(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((_, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    // A malformed tile path names no resource.
    let request = parse_tile_path(&path).map_err(|_| ApiError::NotFound)?;
    let store = state.store.clone();
    let bytes = read(&state, move |ledger| {
        let project_id = &principal.project_id;
        let tile = match request {
            TileRequest::Hashes { level, index, width } => ledger.hash_tile(project_id, level, index, width),
            TileRequest::Entries { index, width } => ledger.entry_bundle(project_id, index, width, |trace_id| {
                store.get(project_id, trace_id).map_err(|e| LedgerError::EntriesUnavailable(e.to_string()))
            }),
        };
        tile.map_err(|error| match error {
            LedgerError::OutOfRange(_) => ApiError::NotFound,
            other => api_error(other, "tile"),
        })
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
