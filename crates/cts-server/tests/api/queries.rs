//! `POST /v3/{project_id}/queries` through `app()`: answers in the documented shape, scoped to the caller's
//! project, CTS errors for refused statements and limits, roles, and its `queryTraces` self-audit trace. A
//! build without the `sql` feature answers 501.

use crate::common::*;
use axum::http::StatusCode;
use serde_json::{json, Value};

fn query_call(statement: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "statement": statement })).unwrap()
}

async fn query(harness: &Harness, access: (&str, &str), project: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let path = format!("/v3/{project}/queries");
    let mut call = Call::new("POST", &path).body(body);
    (call.access_key, call.secret_key) = access;
    let (status, _, answer) = send(harness, call.request()).await;
    (status, answer)
}

#[cfg(not(feature = "sql"))]
#[tokio::test]
async fn a_build_without_sql_answers_501_saying_so() {
    let harness = harness();
    let (status, answer) =
        query(&harness, (ACCESS_KEY, SECRET_KEY), PROJECT_ID, query_call("SELECT count(*) FROM traces")).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{answer}");
    assert_eq!(error_code(&answer), "CTS.0503");
    assert!(answer["error_msg"].as_str().unwrap().contains("--features sql"), "{answer}");
}

#[cfg(feature = "sql")]
mod with_sql {
    use super::*;
    use cts_iam::Role;

    const ADMIN: (&str, &str) = (ACCESS_KEY, SECRET_KEY);

    /// `count` traces named createOrder and deleteOrder alternately in the caller's project, and a few in
    /// the other project.
    async fn ingest(harness: &Harness, count: usize) {
        let now = cts_model::now_ms();
        for (project, access, count) in
            [(PROJECT_ID, ADMIN, count), (OTHER_PROJECT_ID, (OTHER_ACCESS_KEY, OTHER_SECRET_KEY), 7)]
        {
            let traces: Vec<Value> = (0..count)
                .map(|i| trace_json(if i % 2 == 0 { "createOrder" } else { "deleteOrder" }, now - i as i64))
                .collect();
            let path = format!("/v3/{project}/traces");
            let mut call = Call::new("POST", &path).body(serde_json::to_vec(&json!({ "traces": traces })).unwrap());
            (call.access_key, call.secret_key) = access;
            let (status, _, answer) = send(harness, call.request()).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    }

    #[tokio::test]
    async fn a_query_answers_columns_rows_and_counts_of_the_callers_project_only() {
        let harness = harness();
        ingest(&harness, 40).await;
        let sql = "SELECT trace_name, count(*) AS n FROM traces WHERE service_type = 'marketplace' \
                   GROUP BY trace_name ORDER BY trace_name";
        let (status, answer) = query(&harness, ADMIN, PROJECT_ID, query_call(sql)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["columns"], json!([{"name": "trace_name", "type": "Utf8"}, {"name": "n", "type": "Int64"}]));
        assert_eq!(answer["rows"], json!([["createOrder", 20], ["deleteOrder", 20]]));
        assert_eq!((answer["row_count"].clone(), answer["truncated"].clone()), (json!(2), json!(false)));
        assert!(answer["elapsed_ms"].is_u64(), "{answer}");

        let other = format!("SELECT count(*) FROM traces WHERE project_id = '{OTHER_PROJECT_ID}' OR 1 = 1");
        let (_, answer) = query(&harness, ADMIN, PROJECT_ID, query_call(&other)).await;
        let own = answer["rows"][0][0].as_i64().unwrap();
        assert!((40..45).contains(&own), "only the caller's traces (and its own audit traces): {answer}");
        let (status, answer) = query(&harness, ADMIN, OTHER_PROJECT_ID, query_call(&other)).await;
        assert_eq!((status, error_code(&answer)), (StatusCode::FORBIDDEN, "CTS.0013"), "a key of another project");
    }

    #[tokio::test]
    async fn refused_statements_and_bad_bodies_are_cts_errors() {
        let harness = harness();
        let cases = [
            (query_call("DROP TABLE traces"), StatusCode::BAD_REQUEST, "CTS.0300", "single SELECT"),
            (query_call("SELECT 1; SELECT 2"), StatusCode::BAD_REQUEST, "CTS.0300", "2 statements"),
            (query_call("INSERT INTO traces (trace_id) VALUES ('x')"), StatusCode::BAD_REQUEST, "CTS.0300", "INSERT"),
            (query_call("SELECT nope FROM traces"), StatusCode::BAD_REQUEST, "CTS.0300", "nope"),
            (b"{}".to_vec(), StatusCode::BAD_REQUEST, "CTS.0003", "statement"),
            (b"{\"statement\":\"SELECT 1\",\"extra\":1}".to_vec(), StatusCode::BAD_REQUEST, "CTS.0003", "extra"),
            (b"not json".to_vec(), StatusCode::BAD_REQUEST, "CTS.0003", ""),
        ];
        for (body, status, code, message) in cases {
            let (actual, answer) = query(&harness, ADMIN, PROJECT_ID, body.clone()).await;
            assert_eq!((actual, error_code(&answer)), (status, code), "{}: {answer}", String::from_utf8_lossy(&body));
            assert!(answer["error_msg"].as_str().unwrap().contains(message), "{answer}");
        }
    }

    #[tokio::test]
    async fn limits_cut_rows_and_stop_queries_with_messages_naming_them() {
        let harness = harness();
        ingest(&harness, 20).await;
        let limits = cts_server::SqlLimits {
            max_rows: 3,
            timeout: std::time::Duration::from_millis(300),
            ..cts_server::SqlLimits::default()
        };
        let harness = Harness { state: harness.state.with_sql_limits(limits), dir: harness.dir };
        let (status, answer) = query(&harness, ADMIN, PROJECT_ID, query_call("SELECT trace_id FROM traces")).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!((answer["row_count"].clone(), answer["truncated"].clone()), (json!(3), json!(true)));
        let endless = "SELECT count(*) FROM generate_series(1, 100000000000) AS t(v) WHERE v % 7 = 3";
        let (status, answer) = query(&harness, ADMIN, PROJECT_ID, query_call(endless)).await;
        assert_eq!((status, error_code(&answer)), (StatusCode::BAD_REQUEST, "CTS.0300"), "{answer}");
        assert!(answer["error_msg"].as_str().unwrap().contains("time limit of 0.3 s"), "{answer}");
    }

    #[tokio::test]
    async fn auditors_may_query_reporters_may_not_and_each_call_is_recorded() {
        let harness = harness();
        let iam = &harness.state.iam;
        let domain_id = iam.projects().into_iter().find(|p| p.id == PROJECT_ID).unwrap().domain_id;
        for (name, role) in [("auditor", Role::Auditor), ("reporter", Role::Reporter)] {
            iam.create_user(&domain_id, name, role).unwrap();
        }
        let auditor = iam.create_access_key("auditor", PROJECT_ID).unwrap();
        let reporter = iam.create_access_key("reporter", PROJECT_ID).unwrap();
        let statement = "SELECT count(*) AS n FROM traces WHERE trace_name = 'nothing'";
        let auditor_key = (auditor.info.access_key.as_str(), auditor.secret_key.as_str());
        let (status, answer) = query(&harness, auditor_key, PROJECT_ID, query_call(statement)).await;
        assert_eq!((status, answer["rows"].clone()), (StatusCode::OK, json!([[0]])), "{answer}");
        let reporter_key = (reporter.info.access_key.as_str(), reporter.secret_key.as_str());
        let (status, answer) = query(&harness, reporter_key, PROJECT_ID, query_call(statement)).await;
        assert_eq!((status, error_code(&answer)), (StatusCode::FORBIDDEN, "CTS.0013"));

        let recorded = "SELECT user_name, code, request FROM traces \
                        WHERE trace_name = 'queryTraces' AND user_name = 'auditor'";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let rows = loop {
            let (_, answer) = query(&harness, ADMIN, PROJECT_ID, query_call(recorded)).await;
            let rows = answer["rows"].as_array().unwrap().clone();
            if !rows.is_empty() || std::time::Instant::now() > deadline {
                break rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((&rows[0][0], &rows[0][1]), (&json!("auditor"), &json!("200")), "{rows:?}");
        let request: Value = serde_json::from_str(rows[0][2].as_str().unwrap()).unwrap();
        assert_eq!(request, json!({ "statement": statement }));
    }
}
