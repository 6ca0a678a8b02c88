//! Redaction before storage: secrets in request, response and message never reach the store, whatever the
//! reporter did; the rules are the server's to configure, and off stores traces as sent.

use crate::common::*;
use axum::http::StatusCode;
use cts_model::redact::{Redactor, MASK};
use serde_json::{json, Value};

/// Ingests one createOrder trace carrying secrets and returns it as ListTraces answers it.
async fn stored_trace(harness: &Harness) -> Value {
    let path = format!("/v3/{PROJECT_ID}/traces");
    let mut trace = trace_json("createOrder", cts_model::now_ms());
    trace["request"] = json!(r#"{"buyer":{"name":"alice","Password":"hunter2"},"otp":"123456"}"#);
    trace["response"] = json!(r#"{"order_id":"o-1","access_token":"eyJabc"}"#);
    trace["message"] = json!("charged card 4111 1111 1111 1111");
    let (status, _, body) =
        send(harness, Call::new("POST", &path).body(json!({"traces": [trace]}).to_string()).request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) =
        send(harness, Call::new("GET", &path).query(&[("trace_name", "createOrder")]).request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["traces"][0].clone()
}

fn document(trace: &Value, field: &str) -> Value {
    serde_json::from_str(trace[field].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn secrets_in_request_response_and_message_are_redacted_before_storage_by_default() {
    let trace = stored_trace(&harness()).await;
    let request = document(&trace, "request");
    assert_eq!(request["buyer"], json!({"name": "alice", "Password": MASK}));
    assert_eq!(request["otp"], "123456", "otp is not a default secret name");
    assert_eq!(document(&trace, "response"), json!({"order_id": "o-1", "access_token": MASK}));
    assert_eq!(trace["message"], format!("charged card {MASK}"));
}

#[tokio::test]
async fn configured_names_are_redacted_and_off_stores_traces_as_sent() {
    let Harness { state, dir } = harness();
    let extended = Harness { state: state.clone().with_redactor(Some(Redactor::with_extra_keys(["otp"]))), dir };
    assert_eq!(document(&stored_trace(&extended).await, "request")["otp"], MASK);

    let Harness { state, dir } = harness();
    let off = Harness { state: state.with_redactor(None), dir };
    let trace = stored_trace(&off).await;
    assert_eq!(document(&trace, "request")["buyer"]["Password"], "hunter2");
    assert_eq!(trace["message"], "charged card 4111 1111 1111 1111");
}
