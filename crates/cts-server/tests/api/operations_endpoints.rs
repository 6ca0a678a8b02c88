//! The unsigned operations endpoints: `/health`, `/ready` and the Prometheus `/metrics` with the
//! figures an operator alerts on (requests by route and status, ingest counts, WAL commit times,
//! store sizes).

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

fn unsigned(path: &str) -> Request<Body> {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}

/// The value of the sample `name` (with its labels, as rendered) in a Prometheus text exposition.
fn sample(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn health_and_ready_answer_unsigned() {
    let harness = harness();
    for (path, status) in [("/health", "ok"), ("/ready", "ready")] {
        let (code, _, body) = send(&harness, unsigned(path)).await;
        assert_eq!((code, body), (StatusCode::OK, json!({ "status": status })), "{path}");
    }
}

#[tokio::test]
async fn metrics_count_requests_ingest_and_store_figures() {
    let harness = harness();
    let now = cts_model::now_ms();
    let traces: Vec<_> = (0..3).map(|i| trace_json("createOrder", now - 1000 - i)).collect();
    let mut body = json!({ "traces": traces });
    body["traces"].as_array_mut().unwrap().push(json!({"trace_name": "not a name"}));
    let path = format!("/v3/{PROJECT_ID}/traces");
    let ingest = Call::new("POST", &path).body(serde_json::to_vec(&body).unwrap());
    let (status, _, _) = send(&harness, ingest.request()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&harness, Call::new("GET", "/v3/p/nothing").request()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let response = tower::ServiceExt::oneshot(cts_server::app(harness.state.clone()), unsigned("/metrics")).await;
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text =
        String::from_utf8(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap();
    let expected = [
        ("cts_ingest_stored_traces_total", 3.0),
        ("cts_ingest_rejected_traces_total", 1.0),
        (r#"cts_http_requests_total{method="POST",route="/v3/{project_id}/traces",status="200"}"#, 1.0),
        (r#"cts_http_requests_total{method="GET",route="unmatched",status="404"}"#, 1.0),
        ("cts_store_traces", 3.0),
        ("cts_ready", 1.0),
        ("cts_wal_commit_seconds_count", 1.0),
        ("cts_store_queued_traces", 0.0),
    ];
    for (name, value) in expected {
        assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
    }
    assert!(sample(&text, r#"cts_store_bytes{kind="wal"}"#).is_some_and(|bytes| bytes > 0.0), "{text}");
}
