//! The HTTP API of cts, the only crate that knows HTTP.
//!
//! Routes:
//! - `GET /health`: unsigned, `{"status":"ok"}`.
//! - `POST /v3/{project_id}/traces`: ingest (cts's own API; CTS has no public write call).
//! - `GET /v3/{project_id}/traces`: ListTraces, as the Huawei Cloud SDK calls it.
//! - `POST`/`PUT /v3/{project_id}/tracker`, `GET`/`DELETE /v3/{project_id}/trackers`:
//!   CreateTracker, UpdateTracker, ListTrackers, DeleteTracker (`trackers.rs`).
//! - `POST /v3/{project_id}/cts-tracker/{tracker_id}/tags/create`, `DELETE .../tags/delete`:
//!   BatchCreateResourceTags, BatchDeleteResourceTags (`resource_tags.rs`).
//! - `GET /v3/{project_id}/quotas`, `GET /v3/{project_id}/operations`: ListQuotas, ListOperations.
//! - `GET /v3/{project_id}/ledger/{checkpoint,keys,proof/inclusion,proof/consistency,tile/...}`: the
//!   verifiable log (`ledger.rs`).
//!
//! Every `/v3` route is authenticated ([`auth`]): an `SDK-HMAC-SHA256`
//! signature whose access key belongs to `{project_id}`. Every failure is
//! answered in the CTS error format ([`ApiError`]), including unknown routes
//! (404) and wrong methods (405). Every response carries `X-Request-Id`.

mod auth;
mod error;
mod extract;
mod ingest;
mod ledger;
mod list_traces;
mod operations;
mod request_id;
mod resource_tags;
mod trackers;

pub use error::{ApiError, ErrorBody};
pub use ingest::{
    validate_batch, AcceptedTrace, IngestResponse, RejectedTrace, ValidatedBatch, MAX_TRACES_PER_REQUEST,
};
pub use request_id::{RequestId, REQUEST_ID_HEADER};

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{delete, get, post};
use axum::{middleware, Json, Router};
use cts_iam::Iam;
use cts_resources::Resources;
use cts_store::{Store, StoreError};
use std::future::Future;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

/// The largest request body accepted (ingest batches).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub iam: Arc<Iam>,
    pub resources: Arc<Resources>,
    /// The verifiable log the store appends to; without it the ledger routes answer 404.
    pub ledger: Option<Arc<cts_ledger::Ledger>>,
}

impl AppState {
    pub fn new(store: Store, iam: Arc<Iam>, resources: Arc<Resources>) -> AppState {
        AppState { store, iam, resources, ledger: None }
    }

    /// The state with the ledger the store was opened with.
    pub fn with_ledger(self, ledger: Arc<cts_ledger::Ledger>) -> AppState {
        AppState { ledger: Some(ledger), ..self }
    }
}

/// The whole API as a router (tests drive it with `tower::ServiceExt::oneshot`).
pub fn app(state: AppState) -> Router {
    let v3 = Router::new()
        .route("/v3/{project_id}/traces", get(list_traces::list_traces).post(ingest::ingest))
        .route("/v3/{project_id}/tracker", post(trackers::create_tracker).put(trackers::update_tracker))
        .route("/v3/{project_id}/trackers", get(trackers::list_trackers).delete(trackers::delete_trackers))
        .route("/v3/{project_id}/quotas", get(trackers::list_quotas))
        .route("/v3/{project_id}/operations", get(operations::list_operations))
        .route("/v3/{project_id}/ledger/checkpoint", get(ledger::checkpoint))
        .route("/v3/{project_id}/ledger/keys", get(ledger::keys))
        .route("/v3/{project_id}/ledger/proof/inclusion", get(ledger::inclusion_proof))
        .route("/v3/{project_id}/ledger/proof/consistency", get(ledger::consistency_proof))
        .route("/v3/{project_id}/ledger/tile/{*path}", get(ledger::tile))
        .route("/v3/{project_id}/{resource_type}/{resource_id}/tags/create", post(resource_tags::create_tags))
        .route("/v3/{project_id}/{resource_type}/{resource_id}/tags/delete", delete(resource_tags::delete_tags))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .route("/health", get(health))
        .merge(v3)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(middleware::from_fn(request_id::request_id))
        .with_state(state)
}

/// Why [`serve`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("flushing the store at shutdown failed: {0}")]
    Flush(#[from] StoreError),
}

/// Serves the API on `listener` until `shutdown` completes, then lets
/// in-flight requests finish and seals the store's memtable.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = state.store.clone();
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await?;
    tokio::task::spawn_blocking(move || store.flush()).await.map_err(std::io::Error::other)??;
    Ok(())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The span of one request: method, path, request id; the access key is
/// recorded once authentication succeeds.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request.extensions().get::<RequestId>().map_or("", |id| id.as_str());
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
        access_key = tracing::field::Empty,
    )
}
