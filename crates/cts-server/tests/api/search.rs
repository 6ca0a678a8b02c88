//! Search beyond exact match through the API: prefixes, `ignore_case` and free text (`q`), combined with
//! the other filters, paged with `next`; bad search parameters get CTS errors; export takes them too.

use crate::common::*;
use axum::http::StatusCode;
use serde_json::{json, Value};

/// Ingests orders `order-2026-00..09` and `ORDER-2025-0..4` by alice and Bob, some denied.
async fn ingest(harness: &Harness) {
    let now = cts_model::now_ms();
    let traces: Vec<Value> = (0..15)
        .map(|i| {
            let mut trace = trace_json(if i % 3 == 0 { "deleteOrder" } else { "createOrder" }, now - 1000 * i);
            trace["resource_name"] =
                json!(if i < 10 { format!("order-2026-{i:02}") } else { format!("ORDER-2025-{}", i - 10) });
            trace["user"] = json!({"name": if i % 2 == 0 { "alice" } else { "Bob" }});
            trace["request"] = json!(format!(r#"{{"order":"o-{i}","note":"Gift wrap"}}"#));
            trace["response"] = json!(if i % 4 == 0 { r#"{"error":"Access Denied"}"# } else { r#"{"ok":true}"# });
            trace
        })
        .collect();
    let path = format!("/v3/{PROJECT_ID}/traces");
    let (status, _, body) =
        send(harness, Call::new("POST", &path).body(json!({ "traces": traces }).to_string()).request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Every page of ListTraces with `params`, ten at a time: the resource names, newest first.
async fn names(harness: &Harness, params: &[(&str, &str)]) -> Vec<String> {
    let path = format!("/v3/{PROJECT_ID}/traces");
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut query: Vec<(&str, &str)> = vec![("limit", "4")];
        query.extend_from_slice(params);
        if let Some(marker) = &marker {
            query.push(("next", marker));
        }
        let (status, _, body) = send(harness, Call::new("GET", &path).query(&query).request()).await;
        assert_eq!(status, StatusCode::OK, "{params:?}: {body}");
        found
            .extend(body["traces"].as_array().unwrap().iter().map(|t| t["resource_name"].as_str().unwrap().to_owned()));
        match body["meta_data"]["marker"].as_str() {
            Some(next) => marker = Some(next.to_owned()),
            None => return found,
        }
    }
}

fn orders(numbers: &[i64]) -> Vec<String> {
    numbers
        .iter()
        .map(|&i| if i < 10 { format!("order-2026-{i:02}") } else { format!("ORDER-2025-{}", i - 10) })
        .collect()
}

/// Query parameters and the orders they find, newest first.
type SearchCase = (&'static [(&'static str, &'static str)], &'static [i64]);

#[tokio::test]
async fn prefixes_case_and_free_text_combine_with_the_filters_and_page() {
    let harness = harness();
    ingest(&harness).await;
    let cases: &[SearchCase] = &[
        (&[("resource_name", "order-2026*")], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        (&[("resource_name", "order-2026-0*"), ("user", "alice")], &[0, 2, 4, 6, 8]),
        (&[("resource_name", "order*"), ("ignore_case", "true")], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
        (&[("resource_name", "ORDER*")], &[10, 11, 12, 13, 14]),
        (&[("user", "bob")], &[]),
        (&[("user", "bob"), ("ignore_case", "true")], &[1, 3, 5, 7, 9, 11, 13]),
        (&[("trace_name", "DELETE*"), ("ignore_case", "true")], &[0, 3, 6, 9, 12]),
        (&[("q", "access denied")], &[0, 4, 8, 12]),
        (&[("q", "\"access denied\" o-1")], &[12]),
        (&[("q", "GIFT"), ("user", "alice"), ("trace_name", "deleteOrder")], &[0, 6, 12]),
        (&[("q", "\"wrap gift\"")], &[]),
        (&[("resource_name", "order-2026-1\\*")], &[]),
    ];
    for (params, expected) in cases {
        assert_eq!(names(&harness, params).await, orders(expected), "{params:?}");
    }
}

#[tokio::test]
async fn bad_search_parameters_are_query_errors() {
    let harness = harness();
    let path = format!("/v3/{PROJECT_ID}/traces");
    for params in [[("q", "\"open")], [("ignore_case", "1")]] {
        let (status, _, body) = send(&harness, Call::new("GET", &path).query(&params).request()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params:?}: {body}");
        assert_eq!(error_code(&body), "CTS.0300", "{body}");
        assert!(body["error_msg"].as_str().unwrap().contains(params[0].0), "{body}");
    }
}

#[tokio::test]
async fn export_takes_the_search_parameters() {
    let harness = harness();
    ingest(&harness).await;
    let path = format!("/v3/{PROJECT_ID}/traces/export");
    let query = [("format", "json"), ("q", "denied"), ("resource_name", "order-2026*")];
    let (status, _, body) = send(&harness, Call::new("GET", &path).query(&query).request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let exported: Vec<&str> = body.as_array().unwrap().iter().map(|t| t["resource_name"].as_str().unwrap()).collect();
    assert_eq!(exported, orders(&[0, 4, 8]));
}
