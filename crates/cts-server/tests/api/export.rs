//! The export (`GET /v3/{project_id}/traces/export`): the same traces as ListTraces paging for the
//! same filter, in each format; streamed in chunks; recorded as `exportTrace`; auditors may export,
//! reporters may not. The histogram counts the same traces.

use crate::common::*;
use axum::http::StatusCode;
use cts_iam::Role;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Ingests `count` traces named `name_a` and `name_b` alternately, user alice or bob, one ms apart.
async fn ingest(harness: &Harness, count: usize, start: i64) {
    let path = format!("/v3/{PROJECT_ID}/traces");
    let traces: Vec<Value> = (0..count)
        .map(|i| {
            let mut trace = trace_json(if i % 2 == 0 { "createOrder" } else { "deleteOrder" }, start + i as i64);
            trace["user"]["name"] = json!(if i % 3 == 0 { "bob" } else { "alice" });
            trace["resource_name"] = json!(format!("=cmd|' /C calc'!A{i}"));
            trace
        })
        .collect();
    for chunk in traces.chunks(1000) {
        let body = serde_json::to_vec(&json!({ "traces": chunk })).unwrap();
        let (status, _, answer) = send(harness, Call::new("POST", &path).body(body).request()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(answer["rejected"].as_array().unwrap().is_empty(), "{answer}");
    }
}

/// The trace ids ListTraces pages through, 200 at a time, for `filter`.
async fn listed_ids(harness: &Harness, filter: &[(&str, &str)]) -> Vec<String> {
    let path = format!("/v3/{PROJECT_ID}/traces");
    let (mut ids, mut next) = (Vec::new(), None::<String>);
    loop {
        let mut query: Vec<(&str, &str)> = filter.to_vec();
        query.push(("limit", "200"));
        if let Some(marker) = &next {
            query.push(("next", marker));
        }
        let (status, _, page) = send(harness, Call::new("GET", &path).query(&query).request()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        ids.extend(page["traces"].as_array().unwrap().iter().map(|t| t["trace_id"].as_str().unwrap().to_owned()));
        match page["meta_data"]["marker"].as_str() {
            Some(marker) => next = Some(marker.to_owned()),
            None => return ids,
        }
    }
}

/// The export's status, content type and body chunks.
async fn export(harness: &Harness, access: (&str, &str), query: &[(&str, &str)]) -> (StatusCode, String, Vec<Vec<u8>>) {
    let path = format!("/v3/{PROJECT_ID}/traces/export");
    let mut call = Call::new("GET", &path).query(query);
    (call.access_key, call.secret_key) = access;
    let response = cts_server::app(harness.state.clone()).oneshot(call.request()).await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let mut stream = response.into_body().into_data_stream();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.unwrap().to_vec());
    }
    (status, content_type, chunks)
}

fn admin() -> (&'static str, &'static str) {
    (ACCESS_KEY, SECRET_KEY)
}

/// The cells of a CSV body (no cell of these tests holds a line break).
fn csv_rows(body: &[u8]) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\r\n"), "CRLF row ends");
    text.split_terminator("\r\n").map(|line| line.split(',').map(str::to_owned).collect()).collect()
}

#[tokio::test]
async fn export_has_exactly_the_traces_list_traces_pages_through_in_each_format() {
    let harness = harness();
    let now = cts_model::now_ms();
    ingest(&harness, 700, now - 600_000).await;
    let filter = [("trace_name", "createOrder"), ("user", "alice"), ("from", &*(now - 3_600_000).to_string())];
    let filter: Vec<(&str, &str)> = filter.iter().map(|(k, v)| (*k, *v)).collect();
    let listed = listed_ids(&harness, &filter).await;
    assert_eq!(listed.len(), (0..700).filter(|i| i % 2 == 0 && i % 3 != 0).count());

    let (status, content_type, chunks) = export(&harness, admin(), &filter).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/csv; charset=utf-8"));
    let rows = csv_rows(&chunks.concat());
    let id_column = rows[0].iter().position(|name| name == "trace_id").unwrap();
    let name_column = rows[0].iter().position(|name| name == "resource_name").unwrap();
    let exported: Vec<String> = rows[1..].iter().map(|row| row[id_column].clone()).collect();
    assert_eq!(exported, listed);
    assert!(rows[1..].iter().all(|row| row[name_column].starts_with("'=cmd|")), "formula cells neutralised");

    let mut json_filter = filter.clone();
    json_filter.push(("format", "json"));
    let (status, content_type, chunks) = export(&harness, admin(), &json_filter).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/json"));
    let traces: Vec<Value> = serde_json::from_slice(&chunks.concat()).unwrap();
    let exported: Vec<&str> = traces.iter().map(|t| t["trace_id"].as_str().unwrap()).collect();
    assert_eq!(exported, listed);

    let mut parquet_filter = filter.clone();
    parquet_filter.push(("format", "parquet"));
    let (status, _, chunks) = export(&harness, admin(), &parquet_filter).await;
    assert_eq!(status, StatusCode::OK);
    let bytes = bytes::Bytes::from(chunks.concat());
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
    let mut exported = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let ids = batch.column_by_name("trace_id").unwrap();
        let ids = ids.as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        exported.extend(ids.iter().map(|id| id.unwrap().to_owned()));
    }
    assert_eq!(exported, listed);
}

#[tokio::test]
async fn a_large_export_streams_in_chunks_without_a_row_cap() {
    let harness = harness();
    let now = cts_model::now_ms();
    ingest(&harness, 6000, now - 1_200_000).await;
    let (status, _, chunks) = export(&harness, admin(), &[("trace_name", "deleteOrder")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(chunks.len() > 4, "streamed in chunks, got {}", chunks.len());
    assert!(chunks.iter().all(|chunk| chunk.len() <= 2 * 64 * 1024), "chunks stay bounded");
    assert_eq!(csv_rows(&chunks.concat()).len(), 1 + 3000, "header and every trace, beyond CTS's 5,000 cap per page");
}

#[tokio::test]
async fn exports_are_recorded_and_only_auditors_and_admins_may_export() {
    let harness = harness();
    let iam = &harness.state.iam;
    let domain_id = iam.projects()[0].domain_id.clone();
    for (name, role) in [("auditor", Role::Auditor), ("reporter", Role::Reporter)] {
        iam.create_user(&domain_id, name, role).unwrap();
    }
    let auditor = iam.create_access_key("auditor", PROJECT_ID).unwrap();
    let reporter = iam.create_access_key("reporter", PROJECT_ID).unwrap();
    let (status, _, _) = export(&harness, (&auditor.info.access_key, &auditor.secret_key), &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, chunks) = export(&harness, (&reporter.info.access_key, &reporter.secret_key), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let error: Value = serde_json::from_slice(&chunks.concat()).unwrap();
    assert_eq!(error_code(&error), "CTS.0013");
    let (status, _, chunks) = export(&harness, admin(), &[("format", "xlsx")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&chunks.concat()));

    let path = format!("/v3/{PROJECT_ID}/traces");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let recorded = loop {
        let query = [("service_type", "CTS"), ("trace_name", "exportTrace")];
        let (_, _, page) = send(&harness, Call::new("GET", &path).query(&query).request()).await;
        let traces = page["traces"].as_array().unwrap().clone();
        if traces.len() >= 2 || std::time::Instant::now() > deadline {
            break traces;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut outcomes: Vec<(&str, &str)> =
        recorded.iter().map(|t| (t["user"]["name"].as_str().unwrap(), t["code"].as_str().unwrap())).collect();
    outcomes.sort();
    assert_eq!(outcomes, [("admin", "400"), ("auditor", "200")], "a forbidden call never reaches the audit layer");
}

#[tokio::test]
async fn the_histogram_counts_the_filtered_traces_by_minute_and_rating() {
    let harness = harness();
    let now = cts_model::now_ms();
    ingest(&harness, 300, now - 120_000).await;
    let path = format!("/v3/{PROJECT_ID}/traces/histogram");
    let from = (now - 3_600_000).to_string();
    let query = [("trace_name", "createOrder"), ("from", from.as_str())];
    let (status, _, histogram) = send(&harness, Call::new("GET", &path).query(&query).request()).await;
    assert_eq!(status, StatusCode::OK, "{histogram}");
    assert_eq!(histogram["bucket_ms"], 60_000);
    let buckets = histogram["buckets"].as_array().unwrap();
    assert!((60..=62).contains(&buckets.len()), "{} buckets", buckets.len());
    let normal: u64 = buckets.iter().map(|b| b["normal"].as_u64().unwrap()).sum();
    let others: u64 = buckets.iter().map(|b| b["warning"].as_u64().unwrap() + b["incident"].as_u64().unwrap()).sum();
    assert_eq!((normal, others), (150, 0));
}
