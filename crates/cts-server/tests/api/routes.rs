//! The HTTP API driven in-process with `oneshot`: status codes and CTS error
//! codes of bad requests, error body shapes, authentication, ingest then list.

use crate::common::{error_code, harness, send, trace_json, Call, PROJECT_ID};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cts_server::{MAX_BODY_BYTES, MAX_TRACES_PER_REQUEST};
use serde_json::{json, Value};

const TRACES_PATH: &str = "/v3/0123456789abcdef0123456789abcdef/traces";

fn ingest_body(traces: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "traces": traces })).unwrap()
}

fn replace_header(headers: &mut [(String, String)], name: &str, value: &str) {
    for (existing, old) in headers.iter_mut() {
        if existing.eq_ignore_ascii_case(name) {
            *old = value.to_owned();
        }
    }
}

#[tokio::test]
async fn bad_requests_get_exact_status_and_code() {
    let harness = harness();
    let now = cts_model::now_ms();
    let too_many =
        ingest_body((0..=MAX_TRACES_PER_REQUEST).map(|i| trace_json("createOrder", now - i as i64)).collect());
    let too_large = ingest_body(vec![json!({"message": "x".repeat(MAX_BODY_BYTES)})]);
    let other_project_path = "/v3/ffffffffffffffffffffffffffffffff/traces";
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        ("unknown route", Call::new("GET", "/v3/p/nothing").request(), StatusCode::NOT_FOUND, "CTS.0404"),
        ("unknown top-level route", Call::new("GET", "/nothing").request(), StatusCode::NOT_FOUND, "CTS.0404"),
        ("wrong method", Call::new("DELETE", TRACES_PATH).request(), StatusCode::METHOD_NOT_ALLOWED, "CTS.0404"),
        ("wrong method on health", Call::new("POST", "/health").request(), StatusCode::METHOD_NOT_ALLOWED, "CTS.0404"),
        ("other project", Call::new("GET", other_project_path).request(), StatusCode::FORBIDDEN, "CTS.0013"),
        (
            "ingest without JSON content type",
            Call {
                content_type: "application/json-patch+json",
                ..Call::new("POST", TRACES_PATH).body(ingest_body(vec![]))
            }
            .request(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "CTS.0003",
        ),
        ("ingest empty body", Call::new("POST", TRACES_PATH).request(), StatusCode::BAD_REQUEST, "CTS.0003"),
        (
            "ingest not JSON",
            Call::new("POST", TRACES_PATH).body("not json").request(),
            StatusCode::BAD_REQUEST,
            "CTS.0003",
        ),
        (
            "ingest without traces array",
            Call::new("POST", TRACES_PATH).body(r#"{"trace":[]}"#).request(),
            StatusCode::BAD_REQUEST,
            "CTS.0003",
        ),
        (
            "ingest traces not an array",
            Call::new("POST", TRACES_PATH).body(r#"{"traces":{}}"#).request(),
            StatusCode::BAD_REQUEST,
            "CTS.0003",
        ),
        (
            "ingest 1001 traces",
            Call::new("POST", TRACES_PATH).body(too_many).request(),
            StatusCode::BAD_REQUEST,
            "CTS.0003",
        ),
        (
            "ingest over 8 MiB",
            Call::new("POST", TRACES_PATH).body(too_large).request(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "CTS.0003",
        ),
        (
            "list with a bad limit",
            Call::new("GET", TRACES_PATH).query(&[("limit", "many")]).request(),
            StatusCode::BAD_REQUEST,
            "CTS.0300",
        ),
        (
            "list with a bad trace_type",
            Call::new("GET", TRACES_PATH).query(&[("trace_type", "everything")]).request(),
            StatusCode::BAD_REQUEST,
            "CTS.0300",
        ),
    ];
    for (name, request, status, code) in cases {
        let (actual_status, response, body) = send(&harness, request).await;
        assert_eq!((actual_status, error_code(&body)), (status, code), "{name}: {body}");
        assert!(body["error_msg"].as_str().is_some_and(|m| !m.is_empty()), "{name}: {body}");
        assert!(response.headers().contains_key("x-request-id"), "{name}");
    }
}

#[tokio::test]
async fn signature_failures_are_401_with_cts_0002() {
    let harness = harness();
    let now = cts_model::now_ms();
    let call = Call::new("GET", TRACES_PATH);
    let without_authorization: Vec<_> =
        call.signed_headers().into_iter().filter(|(name, _)| name != "Authorization").collect();
    let mut bad_date = call.signed_headers();
    replace_header(&mut bad_date, "X-Sdk-Date", "2024-01-01T00:00:00Z");
    let mut changed_header = call.signed_headers();
    replace_header(&mut changed_header, "Content-Type", "application/json; tampered");
    let cases: Vec<(&str, Request<Body>)> = vec![
        ("missing Authorization", call.request_with_headers(without_authorization)),
        ("malformed date", call.request_with_headers(bad_date)),
        (
            "skew over 15 minutes",
            Call { signed_at_ms: now - 16 * 60 * 1000, ..Call::new("GET", TRACES_PATH) }.request(),
        ),
        (
            "future skew over 15 minutes",
            Call { signed_at_ms: now + 16 * 60 * 1000, ..Call::new("GET", TRACES_PATH) }.request(),
        ),
        (
            "wrong secret",
            Call { secret_key: "a-wrong-secret-key-0123456789", ..Call::new("GET", TRACES_PATH) }.request(),
        ),
        ("unknown access key", Call { access_key: "UNKNOWNKEY0000000000", ..Call::new("GET", TRACES_PATH) }.request()),
        ("tampered signed header", call.request_with_headers(changed_header)),
        (
            "unsigned payload",
            Call { content_type: "text/plain", ..Call::new("POST", TRACES_PATH).body(ingest_body(vec![])) }.request(),
        ),
        ("tampered body", {
            let signed = Call::new("POST", TRACES_PATH).body(ingest_body(vec![trace_json("createOrder", now)]));
            let mut request = signed.request_with_headers(signed.signed_headers());
            *request.body_mut() = Body::from(ingest_body(vec![trace_json("cancelOrder", now)]));
            request
        }),
    ];
    for (name, request) in cases {
        let (status, _, body) = send(&harness, request).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "CTS.0002"), "{name}: {body}");
    }
}

/// Unknown keys and wrong signatures must read the same to the client.
#[tokio::test]
async fn auth_error_bodies_do_not_tell_unknown_keys_from_bad_signatures() {
    let harness = harness();
    let unknown = Call { access_key: "UNKNOWNKEY0000000000", ..Call::new("GET", TRACES_PATH) }.request();
    let wrong = Call { secret_key: "a-wrong-secret-key-0123456789", ..Call::new("GET", TRACES_PATH) }.request();
    let (_, _, unknown_body) = send(&harness, unknown).await;
    let (_, _, wrong_body) = send(&harness, wrong).await;
    assert_eq!(unknown_body, wrong_body);
    insta::assert_json_snapshot!(unknown_body, @r#"
    {
      "error_code": "CTS.0002",
      "error_msg": "authentication failed: the signature is invalid or the access key is unknown"
    }
    "#);
}

#[tokio::test]
async fn error_body_shapes() {
    let harness = harness();
    let (_, _, not_found) = send(&harness, Call::new("GET", "/v3/p/nothing").request()).await;
    insta::assert_json_snapshot!(not_found, @r#"
    {
      "error_code": "CTS.0404",
      "error_msg": "the requested resource does not exist"
    }
    "#);
    let (_, _, forbidden) = send(&harness, Call::new("GET", "/v3/other/traces").request()).await;
    insta::assert_json_snapshot!(forbidden, @r#"
    {
      "error_code": "CTS.0013",
      "error_msg": "the access key does not belong to the project in the path"
    }
    "#);
    let unsigned = Request::get(TRACES_PATH).body(Body::empty()).unwrap();
    let (_, _, unsigned) = send(&harness, unsigned).await;
    insta::assert_json_snapshot!(unsigned, @r#"
    {
      "error_code": "CTS.0002",
      "error_msg": "authentication failed: the request has no Authorization header"
    }
    "#);
    let (_, _, empty) = send(&harness, Call::new("POST", TRACES_PATH).request()).await;
    insta::assert_json_snapshot!(empty, @r#"
    {
      "error_code": "CTS.0003",
      "error_msg": "the request body is empty"
    }
    "#);
}

#[tokio::test]
async fn health_is_unsigned() {
    let harness = harness();
    let (status, _, body) = send(&harness, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_generated_otherwise() {
    let harness = harness();
    let with_id = |id: &str| Request::get("/health").header("X-Request-Id", id).body(Body::empty()).unwrap();
    let (_, response, _) = send(&harness, with_id("client-id_1.2:3")).await;
    assert_eq!(response.headers()["x-request-id"], "client-id_1.2:3");
    for insane in ["has space", &"x".repeat(129), "quote\"d"] {
        let (_, response, _) = send(&harness, with_id(insane)).await;
        let generated = response.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(generated).is_ok(), "{insane:?} -> {generated}");
    }
}

#[tokio::test]
async fn ingest_rejects_bad_traces_alone_then_list_returns_the_rest() {
    let harness = harness();
    let now = cts_model::now_ms();
    let good_id = "6f1c2a1e-8f3b-4b8e-9d3c-1a2b3c4d5e6f";
    let mut good = trace_json("createOrder", now - 2000);
    good["trace_id"] = json!(good_id);
    let traces = vec![good, json!({"trace_name": "x"}), trace_json("cancelOrder", now - 1000), json!(42)];
    let call = Call::new("POST", TRACES_PATH).body(ingest_body(traces));
    let (status, _, body) = send(&harness, call.request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let accepted: Vec<&str> =
        body["accepted"].as_array().unwrap().iter().map(|a| a["trace_id"].as_str().unwrap()).collect();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[0], good_id);
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.iter().map(|r| r["index"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 3]);
    assert!(rejected.iter().all(|r| r["error_code"] == "CTS.0003"));
    assert_eq!(rejected[0]["error_msg"], "service_type: is required");

    // A retry is accepted again but not stored twice.
    let (status, _, retry) = send(&harness, call.request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry["accepted"][0]["trace_id"], good_id);

    let list = Call::new("GET", TRACES_PATH).query(&[("limit", "10")]);
    let (status, _, page) = send(&harness, list.request()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let names: Vec<&str> =
        page["traces"].as_array().unwrap().iter().map(|t| t["trace_name"].as_str().unwrap()).collect();
    let good_id_count = page["traces"].as_array().unwrap().iter().filter(|t| t["trace_id"] == good_id).count();
    assert_eq!(good_id_count, 1, "{page}");
    assert!(names.iter().filter(|n| **n == "cancelOrder").count() == 2, "the retry generated a new id: {names:?}");
    assert_eq!(page["meta_data"]["count"], names.len());
    assert!(page["traces"].as_array().unwrap().iter().all(|t| t["project_id"] == PROJECT_ID));

    let filtered = Call::new("GET", TRACES_PATH).query(&[("trace_id", good_id)]);
    let (_, _, page) = send(&harness, filtered.request()).await;
    assert_eq!(page["meta_data"]["count"], 1, "{page}");
    assert_eq!(page["traces"][0]["user"]["name"], "alice");
}

#[tokio::test]
async fn wrong_method_names_the_allowed_ones() {
    let harness = harness();
    let unsigned = Request::delete(TRACES_PATH).body(Body::empty()).unwrap();
    let (status, response, body) = send(&harness, unsigned).await;
    assert_eq!((status, error_code(&body)), (StatusCode::METHOD_NOT_ALLOWED, "CTS.0404"), "{body}");
    assert_eq!(response.headers()["allow"], "GET,HEAD,POST");
}
