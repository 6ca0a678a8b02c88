//! Operations endpoints: Prometheus `/metrics`, `/health` (the process answers) and `/ready` (the
//! store takes writes), and the layer that counts and times every request.
//!
//! The crates below record with the `metrics` facade (the store its commit and seal times, the
//! reporter its spooled and dropped traces, ...); this module installs the one process-wide
//! Prometheus recorder the first time an [`app`](crate::app) is built, and renders it. Figures that
//! are state rather than events (traces stored, WAL and segment bytes, readiness) are read when
//! scraped. `/metrics`, `/health` and `/ready` are unsigned, like `/health` always was: they carry
//! counts and sizes, never trace content, and scrapers and load balancers do not sign requests.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Latency buckets (seconds) of the request and store histograms: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` when another recorder was
/// installed first (a host process with its own exporter): `/metrics` then answers 404.
pub(crate) fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("the latency buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(_) => {
                    tracing::warn!("another metrics recorder is installed: /metrics is not served");
                    None
                }
            }
        })
        .as_ref()
}

/// Counts and times each request by route template (never the raw path: ids would make every
/// request a series of its own), method and status.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |path| path.as_str()).to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("cts_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("cts_http_requests_total", "method" => method, "route" => route, "status" => status).increment(1);
    response
}

/// `GET /metrics`: the Prometheus text exposition.
pub(crate) async fn render(State(state): State<AppState>) -> Result<Response, ApiError> {
    let Some(recorder) = recorder() else { return Err(ApiError::NotFound) };
    let store = state.store.clone();
    let stats = tokio::task::spawn_blocking(move || store.stats()).await.map_err(ApiError::TaskFailed)?;
    metrics::gauge!("cts_store_traces").set(stats.traces as f64);
    metrics::gauge!("cts_store_segments").set(stats.segments as f64);
    metrics::gauge!("cts_store_unsealed_traces").set(stats.memtable_traces as f64);
    metrics::gauge!("cts_store_bytes", "kind" => "segments").set(stats.segment_bytes as f64);
    metrics::gauge!("cts_store_bytes", "kind" => "wal").set(stats.wal_bytes as f64);
    metrics::gauge!("cts_store_queued_traces").set(stats.queued_traces as f64);
    if let Some(notify) = &state.notify {
        metrics::gauge!("cts_notify_outbox_pending").set(notify.outbox.pending_len() as f64);
    }
    metrics::gauge!("cts_ready").set(if state.store.refusal().is_none() { 1.0 } else { 0.0 });
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], recorder.render()).into_response())
}

/// `GET /health`: the process is up and answering.
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /ready`: 200 while the store takes writes; 503 with the reason once it refuses them.
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    match state.store.refusal() {
        None => Ok(Json(serde_json::json!({ "status": "ready" }))),
        Some(reason) => Err(ApiError::NotReady(reason)),
    }
}
