//! The unsigned documents: API versions at `/` and `/v3`, and the OpenAPI document, each of whose
//! operations the router serves.

use crate::common::{harness, send};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

async fn get(path: &str) -> (StatusCode, serde_json::Value) {
    let harness = harness();
    let (status, _, body) = send(&harness, Request::get(path).body(Body::empty()).unwrap()).await;
    (status, body)
}

#[tokio::test]
async fn version_documents_are_unsigned_and_shaped_as_huawei_serves_them() {
    let v3 = json!({
        "id": "v3",
        "links": [{"href": "/v3/", "rel": "self"}],
        "min_version": "",
        "status": "CURRENT",
        "updated": "2026-11-24T00:00:00Z",
        "version": "",
    });
    assert_eq!(get("/").await, (StatusCode::OK, json!({"versions": [v3.clone()]})));
    assert_eq!(get("/v3").await, (StatusCode::OK, json!({"version": v3})));
}

#[tokio::test]
async fn the_router_serves_every_operation_of_the_openapi_document() {
    let harness = harness();
    let (status, document) = get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{}", paths.len());
    for (path, item) in paths {
        let concrete = path.replace("{project_id}", "p").replace("{notification_type}", "smn").replace(['{', '}'], "");
        for (method, operation) in item.as_object().unwrap() {
            let request =
                Request::builder().method(method.to_uppercase().as_str()).uri(&concrete).body(Body::empty()).unwrap();
            let (status, _, body) = send(&harness, request).await;
            let signed = !operation["security"].as_array().unwrap().is_empty();
            // Signed routes exist when they ask for a signature (the fallback answers 404/405 before any).
            let expected = if signed { (StatusCode::UNAUTHORIZED, "CTS.0002") } else { (StatusCode::OK, "") };
            let code = body["error_code"].as_str().unwrap_or("");
            assert_eq!((status, code), expected, "{method} {path}: {body}");
        }
    }
}
