//! The corpus of hostile requests: malformed and deeply nested JSON, huge fields, invalid UTF-8,
//! control characters and NUL, path traversal in names, injection strings, duplicate keys, numbers
//! out of range, wrong content types, truncated bodies. Every one is signed by a valid admin (so it
//! reaches the handlers) and must be answered with a 4xx CTS error (or, for a bad trace in an ingest
//! batch, its CTS error in the batch's `rejected` list), never a panic or a 5xx; and
//! nothing stored changes: the traces (but for cts's own audit records of the refused calls, each
//! rated `warning`), the trackers, the notifications and the tags are the same before and after.

use crate::common::*;
use crate::ledger::ledger_harness;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cts_model::CTS_SERVICE;
use cts_store::{Filters, TraceQuery};
use serde_json::{json, Value};

const P: &str = PROJECT_ID;

/// A valid ingest trace with `field` set to `value` (or removed when `value` is null).
fn trace_with(field: &str, value: Value) -> Value {
    let mut trace = trace_json("createOrder", cts_model::now_ms() - 1000);
    match value {
        Value::Null => trace.as_object_mut().unwrap().remove(field),
        value => trace.as_object_mut().unwrap().insert(field.to_owned(), value),
    };
    trace
}

fn ingest(traces: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "traces": traces })).unwrap()
}

fn tracker(name: &str) -> Value {
    json!({"tracker_type": "data", "tracker_name": name,
           "data_bucket": {"data_bucket_name": "bucket", "data_event": ["READ"]}})
}

fn notification(name: &str) -> Value {
    json!({"notification_name": name, "operation_type": "complete", "topic_id": ""})
}

/// `[[[[...]]]]` nested `depth` times.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// One hostile request: its name, and the request (signed by the admin unless the case says otherwise).
struct Case {
    name: String,
    request: Request<Body>,
}

fn post(name: &str, path: &str, body: impl Into<Vec<u8>>) -> Case {
    Case { name: name.to_owned(), request: Call::new("POST", path).body(body).request() }
}

fn call(name: &str, call: Call<'_>) -> Case {
    Case { name: name.to_owned(), request: call.request() }
}

fn get(name: &str, path: &str, query: &[(&str, &str)]) -> Case {
    call(name, Call::new("GET", path).query(query))
}

fn cases() -> Vec<Case> {
    let traces = format!("/v3/{P}/traces");
    let tracker_path = format!("/v3/{P}/tracker");
    let notifications = format!("/v3/{P}/notifications");
    let now = cts_model::now_ms().to_string();
    let mut cases = vec![
        // Malformed and hostile JSON bodies.
        post("truncated JSON", &traces, r#"{"traces":[{"trace_name":"createOrder""#),
        post("deeply nested array", &traces, format!(r#"{{"traces":{}}}"#, nested(100_000))),
        post("deeply nested trace field", &traces, format!(r#"{{"traces":[{{"request":{}}}]}}"#, nested(5_000))),
        post("nested objects as traces", &traces, format!(r#"{{"traces":[{}]}}"#, "{\"a\":".repeat(3000))),
        post("duplicate envelope key", &traces, r#"{"traces":[],"traces":[]}"#),
        post("a second envelope key", &traces, r#"{"traces":[],"extra":1}"#),
        post("envelope is an array", &traces, "[]"),
        post("envelope is a string", &traces, r#""traces""#),
        post("envelope is null", &traces, "null"),
        post("trailing garbage", &traces, r#"{"traces":[]} {"traces":[]}"#),
        post("invalid UTF-8 in a string", &traces, {
            let mut body = br#"{"traces":[{"trace_name":"createOrder","message":""#.to_vec();
            body.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
            body.extend_from_slice(br#""}]}"#);
            body
        }),
        post("a lone surrogate escape", &traces, r#"{"traces":[{"trace_name":"\ud800"}]}"#),
        post("a NUL byte outside strings", &traces, b"{\"traces\":[]\0}".to_vec()),
        post("a raw control character in a string", &traces, b"{\"traces\":[{\"trace_name\":\"a\x01b\"}]}".to_vec()),
        post("BOM before the body", &traces, b"\xef\xbb\xbf{\"traces\":[]}".to_vec()),
        post("number out of range for time", &traces, format!(r#"{{"traces":[{}]}}"#, r#"{"time":1e400}"#)),
        post("traces is an object", &traces, r#"{"traces":{"0":{}}}"#),
        // Oversized and malformed tracker and notification bodies.
        post("tracker body is not JSON", &tracker_path, "tracker_name=system"),
        post("tracker with duplicate keys", &tracker_path, r#"{"tracker_type":"system","tracker_type":"data"}"#),
        post("tracker name with path traversal", &tracker_path, ingest_free(tracker("../../etc/passwd"))),
        post("tracker name with NUL", &tracker_path, ingest_free(tracker("tracker\u{0}name"))),
        post("tracker name with SQL injection", &tracker_path, ingest_free(tracker("x' OR '1'='1"))),
        post("tracker name huge", &tracker_path, ingest_free(tracker(&"t".repeat(1 << 20)))),
        post("tracker type unknown", &tracker_path, r#"{"tracker_type":"<script>","tracker_name":"x"}"#),
        post("notification name with traversal", &notifications, ingest_free(notification("../../n"))),
        post("notification with a control character", &notifications, ingest_free(notification("bell\u{7}"))),
        post("notification body nested", &notifications, nested(10_000)),
        post("check buckets not JSON", &format!("/v3/{P}/checkbucket"), "<xml/>"),
        post("tags on a traversal resource", &format!("/v3/{P}/..%2F..%2Fetc/passwd/tags/create"), "{}"),
        // Wrong content types.
        call(
            "ingest as text/plain",
            Call {
                content_type: "text/plain",
                ..Call::new("POST", &traces).body(ingest(vec![trace_with("x", Value::Null)]))
            },
        ),
        call(
            "ingest as form data",
            Call { content_type: "application/x-www-form-urlencoded", ..Call::new("POST", &traces).body("traces=1") },
        ),
        call(
            "tracker as multipart",
            Call { content_type: "multipart/form-data; boundary=x", ..Call::new("POST", &tracker_path).body("--x--") },
        ),
        call("tracker without content type", Call { content_type: "", ..Call::new("POST", &tracker_path).body("{}") }),
        // Query parameters.
        get("limit not a number", &traces, &[("limit", "ten")]),
        get("limit negative", &traces, &[("limit", "-1")]),
        get("limit out of range", &traces, &[("limit", "18446744073709551616")]),
        get("from_time not a number", &traces, &[("from", "yesterday")]),
        get("time range reversed", &traces, &[("from", now.as_str()), ("to", "1")]),
        get("next not a marker", &traces, &[("next", "../../etc/passwd")]),
        get("trace_rating unknown", &traces, &[("trace_rating", "' OR 1=1 --")]),
        get("trace_type unknown", &traces, &[("trace_type", "<script>alert(1)</script>")]),
        get("repeated parameter", &traces, &[("limit", "1"), ("limit", "2")]),
        get("inclusion proof index huge", &format!("/v3/{P}/ledger/proof/inclusion"), &[("index", "1e99")]),
        get("consistency proof reversed", &format!("/v3/{P}/ledger/proof/consistency"), &[("old", "9"), ("new", "1")]),
        get("notification type unknown", &format!("/v3/{P}/notifications/..%2F..%2Fetc"), &[]),
        get("export format unknown", &format!("/v3/{P}/traces/export"), &[("format", "xlsx")]),
        get("export format injected", &format!("/v3/{P}/traces/export"), &[("format", "csv\r\nSet-Cookie: x=1")]),
        get("histogram time range reversed", &format!("/v3/{P}/traces/histogram"), &[("from", &now), ("to", "1")]),
        get("tail with a bad rating", &format!("/v3/{P}/traces/tail"), &[("trace_rating", "\u{0}")]),
        post("console sign-in not JSON", "/console/api/session", "user=admin&password=x"),
        post("console sign-in nested", "/console/api/session", nested(10_000)),
        post("console sign-in wrong types", "/console/api/session", r#"{"user_name":["admin"],"password":{}}"#),
        get("console asset traversal", "/console/../../../../etc/passwd", &[]),
        get("console asset encoded traversal", "/console/..%2F..%2FCargo.toml", &[]),
        // Path traversal through the ledger's tiles.
        get("tile path traversal", &format!("/v3/{P}/ledger/tile/../../../../etc/passwd"), &[]),
        get("tile encoded traversal", &format!("/v3/{P}/ledger/tile/0/..%2F..%2F..%2Fiam%2Fstate.json"), &[]),
        get("tile absolute path", &format!("/v3/{P}/ledger/tile//etc/passwd"), &[]),
    ];
    // Each field of a trace given the wrong kind of value, a huge value, or NUL.
    for field in ["trace_name", "service_type", "resource_type", "resource_id", "source_ip", "trace_rating", "user"] {
        cases.push(post(&format!("{field}: a number"), &traces, ingest(vec![trace_with(field, json!(1e308))])));
        cases.push(post(&format!("{field}: an array"), &traces, ingest(vec![trace_with(field, json!([[]]))])));
    }
    for (field, value) in [
        ("trace_name", json!("create\u{0}Order")),
        ("trace_name", json!("../../etc/passwd")),
        ("resource_type", json!("x".repeat(1 << 16))),
        ("request", json!("r".repeat(64 * 1024 + 1))),
        ("code", json!(70_000)),
        ("code", json!(-1)),
        ("time", json!(-1)),
        ("time", json!(18_446_744_073_709_551_616_u128.to_string())),
        ("time", json!(u64::MAX)),
        ("trace_id", json!("'; DROP TABLE traces; --")),
        ("source_ip", json!("999.1.1.1")),
        ("trace_rating", json!("catastrophic")),
    ] {
        let name = format!("{field}: {}", truncate(&value.to_string()));
        cases.push(post(&name, &traces, ingest(vec![trace_with(field, value)])));
    }
    cases.push(truncated_body(&traces));
    cases
}

/// `value` as a JSON body.
fn ingest_free(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// A body that ends early: the client promised (and signed) more than it sends.
fn truncated_body(path: &str) -> Case {
    let full = ingest(vec![trace_with("message", json!("m".repeat(10_000)))]);
    let call = Call::new("POST", path).body(full.clone());
    let mut headers = call.signed_headers();
    headers.push(("Content-Length".to_owned(), full.len().to_string()));
    let sent = bytes::Bytes::copy_from_slice(&full[..full.len() / 2]);
    let stream = futures_util::stream::iter([
        Ok::<_, std::io::Error>(sent),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the client went away")),
    ]);
    let mut request = call.request_with_headers(headers);
    *request.body_mut() = Body::from_stream(stream);
    Case { name: "body cut off halfway".to_owned(), request }
}

/// Every management trace of the project, newest first.
fn every_trace(harness: &Harness) -> Vec<cts_model::Trace> {
    let query = TraceQuery {
        project_id: PROJECT_ID.to_owned(),
        data: false,
        tracker_name: None,
        from_ms: 0,
        to_ms: i64::MAX,
        filters: Filters::default(),
        after: None,
        limit: usize::MAX,
    };
    harness.state.store.query(&query).unwrap()
}

/// What the corpus must not change: every stored trace but cts's own audit records, the trackers,
/// the notifications, and the tags of a known resource.
async fn snapshot(harness: &Harness) -> (Vec<cts_model::Trace>, Value, Value) {
    let traces = every_trace(harness);
    let traces = traces.into_iter().filter(|trace| trace.service_type != CTS_SERVICE).collect();
    let (_, _, trackers) = send(harness, Call::new("GET", &format!("/v3/{P}/trackers")).request()).await;
    let (_, _, notifications) = send(harness, Call::new("GET", &format!("/v3/{P}/notifications/smn")).request()).await;
    (traces, tracker_definitions(trackers), notifications)
}

/// The trackers of a listing without their live status: the corpus compares definitions.
fn tracker_definitions(mut trackers: Value) -> Value {
    for tracker in trackers["trackers"].as_array_mut().into_iter().flatten() {
        tracker.as_object_mut().unwrap().retain(|key, _| !matches!(key.as_str(), "status" | "detail"));
    }
    trackers
}

/// A CTS error with a 4xx status; or an ingest answer that accepted nothing and refused every trace
/// with a CTS error (ingest refuses a bad trace on its own, in a 200, so its neighbours get in).
fn is_refusal(status: StatusCode, body: &Value) -> bool {
    let is_cts_error = |error: &Value| {
        error_code(error).starts_with("CTS.") && error["error_msg"].as_str().is_some_and(|m| !m.is_empty())
    };
    match status {
        StatusCode::OK => {
            body["accepted"].as_array().is_some_and(Vec::is_empty)
                && body["rejected"]
                    .as_array()
                    .is_some_and(|rejected| !rejected.is_empty() && rejected.iter().all(is_cts_error))
        }
        status => status.is_client_error() && is_cts_error(body),
    }
}

#[tokio::test]
async fn every_hostile_request_gets_a_4xx_cts_error_and_changes_nothing() {
    let (harness, _ledger) = ledger_harness();
    // Something to lose: traces and a data tracker.
    let now = cts_model::now_ms();
    let seed = ingest((0..20).map(|i| trace_json("createOrder", now - 1000 - i)).collect());
    let (status, _, _) = send(&harness, Call::new("POST", &format!("/v3/{P}/traces")).body(seed).request()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) =
        send(&harness, Call::new("POST", &format!("/v3/{P}/tracker")).body(ingest_free(tracker("orders"))).request())
            .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let before = snapshot(&harness).await;
    assert_eq!(before.0.len(), 20);
    assert_eq!(before.1["trackers"].as_array().map(Vec::len), Some(2), "system and orders: {}", before.1);
    assert!(before.2["notifications"].is_array(), "{}", before.2);

    let mut failures = Vec::new();
    let corpus = cases();
    let total = corpus.len();
    for case in corpus {
        let (status, _, body) = send(&harness, case.request).await;
        if !is_refusal(status, &body) {
            failures.push(format!("{}: {status} {body}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} of {total} hostile requests were not refused cleanly:\n{}", failures.len(), {
        failures.join("\n")
    });
    assert_eq!(snapshot(&harness).await, before, "a refused request changed what is stored");
    let audits: Vec<_> = every_trace(&harness)
        .into_iter()
        .filter(|trace| trace.service_type == CTS_SERVICE && trace.trace_name != "createTracker")
        .filter(|trace| trace.trace_name != "listTrackers")
        .collect();
    assert!(
        audits.iter().all(|trace| trace.code.as_deref().is_some_and(|code| code.starts_with('4'))),
        "the refused calls cts audits are recorded as failures: {audits:#?}"
    );
}
