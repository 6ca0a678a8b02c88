//! The HTTP API of cts, the only crate that knows HTTP.
//!
//! Routes:
//! - `GET /health`: unsigned, `{"status":"ok"}`.
//! - `POST /v3/{project_id}/traces`: ingest (cts's own API; CTS has no public write call).
//! - `GET /v3/{project_id}/traces`: ListTraces, as the Huawei Cloud SDK calls it.
//! - `GET /v3/{project_id}/traces/export`: every trace of a ListTraces filter as CSV, JSON or Parquet,
//!   streamed (`export.rs`); `.../traces/histogram` and `.../traces/tail` (server-sent events): the
//!   console's timeline and live tail (`trace_views.rs`).
//! - `POST /v3/{project_id}/queries`: one SQL SELECT over the caller's traces (`queries.rs`; 501 in a build
//!   without the cargo feature `sql`).
//! - `POST`/`PUT /v3/{project_id}/tracker`, `GET`/`DELETE /v3/{project_id}/trackers`:
//!   CreateTracker, UpdateTracker, ListTrackers, DeleteTracker; `GET .../trackers/{tracker_name}/deliveries`:
//!   a tracker's delivery history (`trackers.rs`).
//! - `POST /v3/{project_id}/cts-tracker/{tracker_id}/tags/create`, `DELETE .../tags/delete`:
//!   BatchCreateResourceTags, BatchDeleteResourceTags (`resource_tags.rs`).
//! - `GET /v3/{project_id}/quotas`, `GET /v3/{project_id}/operations`: ListQuotas, ListOperations.
//! - `POST /v3/{domain_id}/checkbucket`: CheckObsBuckets against the configured object store (`check_buckets.rs`).
//! - `POST`/`PUT`/`DELETE /v3/{project_id}/notifications`, `GET .../notifications/{notification_type}`:
//!   CreateNotification, UpdateNotification, DeleteNotification, ListNotifications (`notifications.rs`).
//! - `GET /v3/{domain_id}/resources`, `GET /v3/{project_id}/user-resources`: ListTraceResources,
//!   ListUserResources, from the store's indexes (`trace_resources.rs`).
//! - `/v2/{project_id}/notifications/topics[/{topic_urn}[/subscriptions]]`,
//!   `/v2/{project_id}/notifications/subscriptions/{subscription_urn}`, `.../dead-letters`: SMN-style
//!   topics, subscriptions and dead letters; `GET /v3/{project_id}/insights` (`topics.rs`).
//! - `GET /`, `GET /v3`: the API version documents (`versions.rs`); `GET /openapi.json`: the
//!   OpenAPI document of every route (`openapi.rs`). Both unsigned.
//!
//! Changes to trackers and notifications, and ListTrackers and ListTraces calls, are recorded as
//! traces of service_type `CTS` ([`self_audit`]).
//! - `GET /v3/{project_id}/ledger/{checkpoint,keys,proof/inclusion,proof/consistency,tile/...}`: the
//!   verifiable log (`ledger.rs`).
//!
//! Every `/v3` route is authenticated ([`auth`]): an `SDK-HMAC-SHA256`
//! signature whose access key belongs to `{project_id}`, or a console session cookie ([`session`]).
//! `/console` serves the web console and `/console/api/session` signs in and out ([`console`]). Every failure is
//! answered in the CTS error format ([`ApiError`]), including unknown routes
//! (404) and wrong methods (405). Every response carries `X-Request-Id`.

mod auth;
mod check_buckets;
mod console;
mod deadline;
mod error;
mod export;
mod extract;
mod ingest;
mod ledger;
mod list_traces;
mod listener;
mod metrics;
mod notifications;
mod openapi;
mod operations;
mod permissions;
mod queries;
mod rate_limit;
mod request_id;
mod resource_tags;
mod self_audit;
mod session;
mod sign_in_limit;
mod tls;
mod topics;
mod trace_resources;
mod trace_views;
mod trackers;
mod versions;

pub use deadline::RequestLimits;
pub use error::{ApiError, ErrorBody};
pub use ingest::{
    validate_batch, AcceptedTrace, IngestResponse, RejectedTrace, ValidatedBatch, MAX_TRACES_PER_REQUEST,
};
pub use listener::{MAX_HEADERS, MAX_HEADER_BYTES};
pub use rate_limit::{RateLimitConfig, RateLimits};
pub use request_id::{RequestId, REQUEST_ID_HEADER};
pub use session::{SessionInfo, Sessions, CSRF_HEADER, PURGE_INTERVAL, SESSION_COOKIE, SESSION_TTL_MS};
pub use sign_in_limit::{SignInLimitConfig, SignInLimits};
pub use tls::{serve_tls, TlsConfig, TlsError};
pub use topics::NotifyState;
#[cfg(feature = "sql")]
pub use {cts_sql::SqlLimits, queries::SqlQueries};

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{delete, get, post};
use axum::{middleware, Router};
use cts_iam::Iam;
use cts_model::redact::Redactor;
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
    /// The S3-compatible object store, when one is configured.
    pub obs: Option<Arc<cts_obs::Obs>>,
    /// Trackers' delivery history, when trace file delivery runs; without it every tracker has none.
    pub deliveries: Option<Arc<cts_transfer::DeliveryHistory>>,
    /// The verifiable log the store appends to; without it the ledger routes answer 404.
    pub ledger: Option<Arc<cts_ledger::Ledger>>,
    /// Topics and the outbox, when notification delivery runs.
    pub notify: Option<NotifyState>,
    /// Requests per second per access key and per project.
    pub rate_limits: Arc<RateLimits>,
    /// Console sessions ([`session`]), kept under the identities' data directory.
    pub sessions: Arc<Sessions>,
    /// Failed console sign-ins per name and address ([`sign_in_limit`]).
    pub sign_in_limits: Arc<SignInLimits>,
    /// What ingest redacts from each trace before it is stored; `None` stores traces as sent.
    pub redactor: Option<Arc<Redactor>>,
    /// Request, read and connection limits ([`deadline`], [`listener`]).
    pub limits: RequestLimits,
    /// The SQL engine of `POST /v3/{project_id}/queries` ([`queries`]).
    #[cfg(feature = "sql")]
    pub sql: SqlQueries,
}

impl AppState {
    /// The state of a server; console sessions saved by an earlier one on the same data directory
    /// are loaded (blocking: a small file).
    pub fn new(store: Store, iam: Arc<Iam>, resources: Arc<Resources>) -> AppState {
        let sessions = Sessions::open(iam.clone(), cts_model::now_ms());
        AppState {
            store,
            iam,
            resources,
            obs: None,
            deliveries: None,
            ledger: None,
            notify: None,
            rate_limits: Arc::default(),
            sessions: Arc::new(sessions),
            sign_in_limits: Arc::default(),
            redactor: Some(Arc::default()),
            limits: RequestLimits::default(),
            #[cfg(feature = "sql")]
            sql: SqlQueries::default(),
        }
    }

    /// SQL queries with `limits` instead of the defaults.
    #[cfg(feature = "sql")]
    pub fn with_sql_limits(self, limits: SqlLimits) -> AppState {
        AppState { sql: SqlQueries::new(limits), ..self }
    }

    pub fn with_limits(self, limits: RequestLimits) -> AppState {
        AppState { limits, ..self }
    }

    /// Redacts with `redactor` (`None`: not at all) instead of the default secret names and card numbers.
    pub fn with_redactor(self, redactor: Option<Redactor>) -> AppState {
        AppState { redactor: redactor.map(Arc::new), ..self }
    }

    pub fn with_rate_limits(self, config: RateLimitConfig) -> AppState {
        AppState { rate_limits: Arc::new(RateLimits::new(config)), ..self }
    }

    pub fn with_sign_in_limits(self, config: SignInLimitConfig) -> AppState {
        AppState { sign_in_limits: Arc::new(SignInLimits::new(config)), ..self }
    }

    pub fn with_notify(self, notify: NotifyState) -> AppState {
        AppState { notify: Some(notify), ..self }
    }

    pub fn with_obs(self, obs: Arc<cts_obs::Obs>) -> AppState {
        AppState { obs: Some(obs), ..self }
    }

    /// The state with the delivery history the transfer engine records ([`cts_transfer::Transfer::history`]).
    pub fn with_delivery_history(self, deliveries: Arc<cts_transfer::DeliveryHistory>) -> AppState {
        AppState { deliveries: Some(deliveries), ..self }
    }

    /// The state with the ledger the store was opened with.
    pub fn with_ledger(self, ledger: Arc<cts_ledger::Ledger>) -> AppState {
        AppState { ledger: Some(ledger), ..self }
    }
}

/// The whole API as a router (tests drive it with `tower::ServiceExt::oneshot`).
pub fn app(state: AppState) -> Router {
    // Recording starts with the first router, so nothing before the first scrape is lost.
    metrics::recorder();
    let v3 = Router::new()
        .route("/v3/{project_id}/traces", get(list_traces::list_traces).post(ingest::ingest))
        .route("/v3/{project_id}/traces/export", get(export::export_traces))
        .route("/v3/{project_id}/traces/histogram", get(trace_views::histogram))
        .route("/v3/{project_id}/traces/tail", get(trace_views::tail))
        .route("/v3/{project_id}/queries", post(queries::run_query))
        .route("/v3/{project_id}/tracker", post(trackers::create_tracker).put(trackers::update_tracker))
        .route("/v3/{project_id}/trackers", get(trackers::list_trackers).delete(trackers::delete_trackers))
        .route("/v3/{project_id}/trackers/{tracker_name}/deliveries", get(trackers::list_deliveries))
        .route("/v3/{project_id}/quotas", get(trackers::list_quotas))
        .route("/v3/{project_id}/operations", get(operations::list_operations))
        // Account-level: `{project_id}` is the caller's domain id here ([`permissions`]).
        .route("/v3/{project_id}/checkbucket", post(check_buckets::check_buckets))
        .route("/v3/{project_id}/ledger/checkpoint", get(ledger::checkpoint))
        .route("/v3/{project_id}/ledger/keys", get(ledger::keys))
        .route("/v3/{project_id}/ledger/proof/inclusion", get(ledger::inclusion_proof))
        .route("/v3/{project_id}/ledger/proof/consistency", get(ledger::consistency_proof))
        .route("/v3/{project_id}/ledger/tile/{*path}", get(ledger::tile))
        .route("/v3/{project_id}/{resource_type}/{resource_id}/tags/create", post(resource_tags::create_tags))
        .route("/v3/{project_id}/{resource_type}/{resource_id}/tags/delete", delete(resource_tags::delete_tags))
        .route(
            "/v3/{project_id}/notifications",
            post(notifications::create_notification)
                .put(notifications::update_notification)
                .delete(notifications::delete_notifications),
        )
        .route("/v3/{project_id}/notifications/{notification_type}", get(notifications::list_notifications))
        .route("/v3/{project_id}/user-resources", get(trace_resources::list_user_resources))
        // Account-level, like checkbucket: the first segment is the caller's domain id ([`permissions`]).
        .route("/v3/{project_id}/resources", get(trace_resources::list_trace_resources))
        .route("/v2/{project_id}/notifications/topics", post(topics::create_topic).get(topics::list_topics))
        .route("/v2/{project_id}/notifications/topics/{topic_urn}", delete(topics::delete_topic))
        .route(
            "/v2/{project_id}/notifications/topics/{topic_urn}/subscriptions",
            post(topics::add_subscription).get(topics::list_subscriptions),
        )
        .route("/v2/{project_id}/notifications/subscriptions/{subscription_urn}", delete(topics::delete_subscription))
        .route("/v2/{project_id}/notifications/dead-letters", get(topics::list_dead_letters))
        .route("/v3/{project_id}/insights", get(topics::list_insights))
        .route_layer(middleware::from_fn_with_state(state.clone(), self_audit::record))
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit::limit))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .route("/health", get(metrics::health))
        .route("/ready", get(metrics::ready))
        .route("/metrics", get(metrics::render))
        .route("/", get(versions::list_versions))
        .route("/v3", get(versions::show_v3))
        .route("/openapi.json", get(openapi::openapi))
        .merge(v3)
        .merge(console::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), deadline::enforce))
        .layer(middleware::from_fn(metrics::track))
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
    listener::serve_connections(listener, state, None, shutdown).await
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
