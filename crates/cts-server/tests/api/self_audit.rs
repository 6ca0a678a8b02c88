//! Self-audit: every tracker and notification change, and ListTrackers/ListTraces calls, come back
//! from ListTraces with service_type=CTS, with the caller's identity and IP, failures rated warning.

use crate::common::{harness, send, Call, Harness, ACCESS_KEY, PROJECT_ID};
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::net::SocketAddr;

const PEER: &str = "198.51.100.23:40123";

/// Sends a signed call as if from [`PEER`].
async fn call(harness: &Harness, method: &str, path: &str, query: &[(&str, &str)], body: Value) -> (StatusCode, Value) {
    let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).unwrap() };
    let mut request = Call::new(method, path).query(query).body(body).request();
    request.extensions_mut().insert(ConnectInfo(PEER.parse::<SocketAddr>().unwrap()));
    let (status, _, json) = send(harness, request).await;
    (status, json)
}

async fn cts_traces(harness: &Harness) -> Vec<Value> {
    let path = format!("/v3/{PROJECT_ID}/traces");
    let (status, body) = call(harness, "GET", &path, &[("service_type", "CTS"), ("limit", "200")], Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["traces"].as_array().unwrap().clone()
}

/// The CTS traces of ListTraces calls (`list_traces`) or of the other operations, once there are
/// `count` of them (reads are recorded in the background), or after 5 seconds.
async fn recorded(harness: &Harness, list_traces: bool, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let traces: Vec<Value> = cts_traces(harness)
            .await
            .into_iter()
            .filter(|t| (t["trace_name"] == "listTraces") == list_traces)
            .collect();
        if traces.len() >= count || std::time::Instant::now() > deadline {
            return traces;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_change_and_listing_is_recorded_with_the_caller_and_its_ip() {
    let harness = harness();
    let tracker_path = format!("/v3/{PROJECT_ID}/tracker");
    let trackers_path = format!("/v3/{PROJECT_ID}/trackers");
    let notifications_path = format!("/v3/{PROJECT_ID}/notifications");
    let tracker = json!({
        "tracker_type": "data", "tracker_name": "orders",
        "data_bucket": {"data_bucket_name": "watched-bucket", "data_event": ["WRITE"]},
    });
    let (status, created) = call(&harness, "POST", &tracker_path, &[], tracker.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(&harness, "POST", &tracker_path, &[], tracker).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a refused create is recorded too");
    let update = json!({"tracker_type": "data", "tracker_name": "orders", "status": "disabled"});
    assert_eq!(call(&harness, "PUT", &tracker_path, &[], update).await.0, StatusCode::OK);
    assert_eq!(call(&harness, "GET", &trackers_path, &[], Value::Null).await.0, StatusCode::OK);
    let topic = format!("urn:smn:ap-southeast-3:{PROJECT_ID}:t");
    let notification = json!({"notification_name": "all", "operation_type": "complete", "topic_id": topic});
    let (status, notification) = call(&harness, "POST", &notifications_path, &[], notification).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = notification["notification_id"].as_str().unwrap();
    let update = json!({"notification_id": id, "status": "disabled"});
    assert_eq!(call(&harness, "PUT", &notifications_path, &[], update).await.0, StatusCode::OK);
    assert_eq!(
        call(&harness, "DELETE", &notifications_path, &[("notification_id", id)], Value::Null).await.0,
        StatusCode::NO_CONTENT
    );
    let delete = [("tracker_name", "orders")];
    assert_eq!(call(&harness, "DELETE", &trackers_path, &delete, Value::Null).await.0, StatusCode::NO_CONTENT);

    // Changes are recorded before they are answered, reads in the background (and calls may share
    // a millisecond, so the order is not asserted).
    let first = recorded(&harness, false, 8).await;
    let mut names: Vec<&str> = first.iter().map(|t| t["trace_name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "createNotification",
            "createTracker",
            "createTracker",
            "deleteNotification",
            "deleteTracker",
            "listTrackers",
            "updateNotification",
            "updateTracker",
        ]
    );
    for trace in &first {
        assert_eq!(trace["service_type"], "CTS");
        assert_eq!(trace["source_ip"], "198.51.100.23");
        assert_eq!(trace["user"]["access_key_id"], ACCESS_KEY);
        assert_eq!(trace["user"]["name"], "admin");
        assert_eq!(trace["user"]["domain"]["name"], "cts");
        assert_eq!(trace["read_only"], trace["trace_name"] == "listTrackers");
    }
    let by_name = |name: &str| first.iter().filter(|t| t["trace_name"] == name).cloned().collect::<Vec<_>>();
    let creates = by_name("createTracker");
    let (refused, succeeded) = (&creates[0], &creates[1]);
    assert_eq!((refused["code"].as_str(), refused["trace_rating"].as_str()), (Some("400"), Some("warning")));
    assert!(refused["response"].as_str().unwrap().contains("CTS.0208"));
    assert_eq!((succeeded["code"].as_str(), succeeded["trace_rating"].as_str()), (Some("201"), Some("normal")));
    assert_eq!(succeeded["resource_id"], created["id"]);
    assert_eq!(succeeded["resource_name"], "orders");
    assert_eq!(succeeded["resource_type"], "tracker");
    assert_eq!(by_name("deleteNotification")[0]["resource_id"], id);
    assert_eq!(by_name("updateNotification")[0]["resource_name"], "all");
    assert_eq!(by_name("deleteTracker")[0]["resource_name"], "orders");

    // The queries are recorded, one trace each.
    let queries = recorded(&harness, true, 1).await;
    let request_ids: std::collections::BTreeSet<_> =
        queries.iter().map(|t| t["request_id"].as_str().unwrap()).collect();
    assert_eq!(request_ids.len(), queries.len(), "no call is recorded twice");
    assert_eq!(queries[0]["read_only"], true);
    assert!(queries[0]["request"].as_str().unwrap().contains("service_type"));
}

#[tokio::test]
async fn unauthenticated_calls_and_unaudited_routes_record_nothing() {
    let harness = harness();
    let tracker_path = format!("/v3/{PROJECT_ID}/tracker");
    let unsigned = axum::http::Request::post(&tracker_path).body(axum::body::Body::from("{}")).unwrap();
    assert_eq!(send(&harness, unsigned).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&harness, "GET", &format!("/v3/{PROJECT_ID}/quotas"), &[], Value::Null).await.0, StatusCode::OK);
    // Without a peer address (a test calling the router directly) the trace has no source_ip.
    let request = Call::new("GET", &format!("/v3/{PROJECT_ID}/trackers")).request();
    assert_eq!(send(&harness, request).await.0, StatusCode::OK);
    let traces = recorded(&harness, false, 1).await;
    let names: Vec<&str> = traces.iter().map(|t| t["trace_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["listTrackers"]);
    assert!(traces[0].get("source_ip").is_none());
}
