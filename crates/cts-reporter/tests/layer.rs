//! The reporter layer around a tiny axum app, driven with `oneshot`.

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path};
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cts_model::{BaseUser, Trace, TraceInput, TraceRating, TraceType, UserInfo, MARKETPLACE_SERVICE};
use cts_reporter::redact::MASK;
use cts_reporter::{LayerConfig, OperationContext, ReporterLayer, RouteTable, TraceSink};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

#[derive(Default)]
struct MemorySink(Mutex<Vec<TraceInput>>);

impl TraceSink for MemorySink {
    fn submit(&self, trace: TraceInput) {
        self.0.lock().push(trace);
    }
}

impl MemorySink {
    /// The submitted traces, each as cts would store it.
    fn traces(&self) -> Vec<Trace> {
        self.0.lock().iter().map(|input| input.clone().into_trace("project", cts_model::now_ms()).unwrap()).collect()
    }
}

const SIMULATED_NOW: i64 = 1_700_000_000_000;
const PROXY: &str = "10.0.0.1:443";

fn alice() -> UserInfo {
    UserInfo {
        id: Some("u-1".into()),
        name: Some("alice".into()),
        domain: Some(BaseUser { id: Some("d-1".into()), name: Some("acme".into()) }),
        account_id: Some("d-1".into()),
        ..UserInfo::default()
    }
}

fn with_context(status: StatusCode, body: Value, context: OperationContext) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(context);
    response
}

async fn create_order(body: Bytes) -> Response {
    let context = OperationContext {
        user: Some(alice()),
        resource_id: Some("ORD1".into()),
        resource_name: Some("Order 1".into()),
        trace_type: None,
    };
    let echoed = serde_json::from_slice::<Value>(&body).unwrap_or(json!({"bytes": body.len()}));
    with_context(StatusCode::CREATED, json!({"order_id": "ORD1", "received": echoed}), context)
}

async fn order_detail(Path(order_id): Path<String>) -> Response {
    let context = OperationContext { user: Some(alice()), resource_id: Some(order_id.clone()), ..Default::default() };
    match order_id.as_str() {
        "missing" => with_context(
            StatusCode::NOT_FOUND,
            json!({"error_code": "KG.0004", "error_msg": "order missing not found"}),
            context,
        ),
        "boom" => with_context(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error_code": "KG.0500", "error_msg": "internal error"}),
            context,
        ),
        _ => with_context(StatusCode::OK, json!({"order_id": order_id, "token": "t0ps3cret"}), context),
    }
}

async fn renew_by_system() -> Response {
    let context = OperationContext { trace_type: Some(TraceType::SystemAction), ..Default::default() };
    with_context(StatusCode::OK, json!({"renewed": true}), context)
}

fn app(sink: Arc<MemorySink>) -> Router {
    let routes = RouteTable::new()
        .route(Method::POST, "/v1/orders", MARKETPLACE_SERVICE, "createOrder")
        .unwrap()
        .route(Method::GET, "/v1/orders/{order_id}", MARKETPLACE_SERVICE, "queryOrderDetail")
        .unwrap()
        .route(Method::POST, "/v1/orders/{order_id}/renew", MARKETPLACE_SERVICE, "renewOrder")
        .unwrap();
    let config = LayerConfig {
        body_limit: 256,
        trusted_proxies: vec![PROXY.parse::<SocketAddr>().unwrap().ip()],
        api_version: Some("v1".into()),
        clock: Arc::new(|| SIMULATED_NOW),
        ..LayerConfig::default()
    };
    Router::new()
        .route("/v1/orders", post(create_order))
        .route("/v1/orders/{order_id}", get(order_detail))
        .route("/v1/orders/{order_id}/renew", post(renew_by_system))
        .route("/v1/unmapped", post(create_order))
        .route_layer(ReporterLayer::new(sink, routes, config))
}

struct Call {
    method: Method,
    uri: &'static str,
    body: String,
    peer: &'static str,
    headers: Vec<(&'static str, &'static str)>,
}

impl Call {
    fn new(method: Method, uri: &'static str) -> Call {
        Call { method, uri, body: String::new(), peer: "198.51.100.7:50000", headers: Vec::new() }
    }
    fn body(mut self, body: impl Into<String>) -> Call {
        self.body = body.into();
        self
    }
    fn peer(mut self, peer: &'static str) -> Call {
        self.peer = peer;
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Call {
        self.headers.push((name, value));
        self
    }
}

/// Sends `call` through a fresh app; answers the response (status, body, request id header) and the traces.
async fn send(call: Call) -> (StatusCode, Value, Option<String>, Vec<Trace>) {
    let sink = Arc::new(MemorySink::default());
    let mut request = Request::builder().method(call.method).uri(call.uri).header("content-type", "application/json");
    for (name, value) in call.headers {
        request = request.header(name, value);
    }
    let mut request = request.body(Body::from(call.body)).unwrap();
    request.extensions_mut().insert(ConnectInfo(call.peer.parse::<SocketAddr>().unwrap()));
    let response = app(sink.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let request_id = response.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, request_id, sink.traces())
}

fn doc(text: &Option<String>) -> Value {
    serde_json::from_str(text.as_deref().expect("a recorded document")).unwrap()
}

#[tokio::test]
async fn a_mapped_route_produces_one_complete_trace() {
    let call = Call::new(Method::POST, "/v1/orders")
        .body(r#"{"product_id":"P1","password":"hunter2","card":"4111 1111 1111 1111"}"#)
        .header("x-request-id", "req-42")
        .header("host", "koogallery.example");
    let (status, body, request_id, traces) = send(call).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["received"]["password"], "hunter2", "the handler gets the request unchanged");
    assert_eq!(request_id.as_deref(), Some("req-42"));
    let [trace] = traces.as_slice() else { panic!("one trace expected, got {traces:?}") };
    assert_eq!(
        (trace.trace_name.as_str(), trace.service_type.as_str(), trace.resource_type.as_str()),
        ("createOrder", "marketplace", "Order")
    );
    assert_eq!(trace.trace_type, TraceType::ApiCall);
    assert_eq!(trace.trace_rating, TraceRating::Normal);
    assert!(!trace.read_only);
    assert_eq!(trace.code.as_deref(), Some("201"));
    assert_eq!(trace.source_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(trace.user, Some(alice()));
    assert_eq!(trace.resource_account_id.as_deref(), Some("d-1"));
    assert_eq!((trace.resource_id.as_deref(), trace.resource_name.as_deref()), (Some("ORD1"), Some("Order 1")));
    assert_eq!(trace.resource_url.as_deref(), Some("/v1/orders"));
    assert_eq!(trace.request_id.as_deref(), Some("req-42"));
    assert_eq!(trace.api_version.as_deref(), Some("v1"));
    assert_eq!(trace.endpoint.as_deref(), Some("koogallery.example"));
    assert_eq!(trace.time, SIMULATED_NOW);
    let request = doc(&trace.request);
    assert_eq!(request, json!({"product_id": "P1", "password": MASK, "card": MASK}));
    let response = doc(&trace.response);
    assert_eq!(response["received"]["password"], MASK, "secrets echoed back are redacted too");
    assert!(!trace.response.as_deref().unwrap().contains("hunter2"));
}

#[tokio::test]
async fn unmapped_routes_pass_untouched() {
    let (status, body, request_id, traces) = send(Call::new(Method::POST, "/v1/unmapped").body("{}")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["order_id"], "ORD1");
    assert_eq!(request_id, None);
    assert!(traces.is_empty());
}

#[tokio::test]
async fn the_user_agent_decides_console_or_api() {
    let cases = [
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", TraceType::ConsoleAction),
        ("koogallery-sdk-python/1.0", TraceType::ApiCall),
        ("curl/8.5.0", TraceType::ApiCall),
    ];
    for (agent, expected) in cases {
        let (_, _, _, traces) = send(Call::new(Method::GET, "/v1/orders/ORD7").header("user-agent", agent)).await;
        assert_eq!(traces[0].trace_type, expected, "{agent}");
        assert!(traces[0].read_only);
    }
    let (_, _, _, traces) = send(Call::new(Method::GET, "/v1/orders/ORD7")).await;
    assert_eq!(traces[0].trace_type, TraceType::ApiCall, "no user agent");
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let via_proxy = Call::new(Method::GET, "/v1/orders/ORD7").peer(PROXY).header("x-forwarded-for", "203.0.113.9");
    let (_, _, _, traces) = send(via_proxy).await;
    assert_eq!(traces[0].source_ip.as_deref(), Some("203.0.113.9"));

    let spoofed = Call::new(Method::GET, "/v1/orders/ORD7").header("x-forwarded-for", "203.0.113.9");
    let (_, _, _, traces) = send(spoofed).await;
    assert_eq!(traces[0].source_ip.as_deref(), Some("198.51.100.7"));
}

#[tokio::test]
async fn error_statuses_become_warning_and_incident_with_the_error_response() {
    let (status, _, _, traces) = send(Call::new(Method::GET, "/v1/orders/missing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(traces[0].trace_rating, TraceRating::Warning);
    assert_eq!(traces[0].code.as_deref(), Some("404"));
    assert_eq!(doc(&traces[0].response)["error_code"], "KG.0004");

    let (status, _, _, traces) = send(Call::new(Method::GET, "/v1/orders/boom")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(traces[0].trace_rating, TraceRating::Incident);
    assert_eq!(doc(&traces[0].response)["error_code"], "KG.0500");
}

#[tokio::test]
async fn big_bodies_pass_whole_and_are_recorded_truncated_and_redacted() {
    let items: Vec<Value> = (0..40).map(|i| json!({"sku": format!("item-{i}"), "secret": "s3cr3t"})).collect();
    // Written by hand so that the password comes first (json! sorts keys).
    let body = format!(r#"{{"password":"hunter2","items":{}}}"#, Value::Array(items));
    let total = body.len();
    assert!(total > 256);
    let (status, response, _, traces) = send(Call::new(Method::POST, "/v1/orders").body(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(response["received"]["items"].as_array().unwrap().len(), 40, "the handler got every byte");
    let request = doc(&traces[0].request);
    assert_eq!(request["truncated"], true);
    assert_eq!(request["bytes"], total);
    assert_eq!(request["prefix"]["password"], MASK);
    let recorded = request["prefix"]["items"].as_array().unwrap();
    assert!(!recorded.is_empty() && recorded.len() < 40);
    // The last element may be a closed-off partial object; every complete one kept its secret masked.
    assert!(recorded.iter().all(|item| item.get("secret").is_none_or(|secret| secret == MASK)));
    assert_eq!(recorded[0]["secret"], MASK);
    assert!(!traces[0].request.as_deref().unwrap().contains("s3cr3t"));
    assert!(
        !traces[0].response.as_deref().unwrap().contains("s3cr3t"),
        "the echoed response is truncated and redacted"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_recorded_by_size_only() {
    let (_, _, _, traces) = send(Call::new(Method::POST, "/v1/orders").body("password=hunter2")).await;
    assert_eq!(doc(&traces[0].request), json!({"non_json_body": true, "bytes": 16}));
}

#[tokio::test]
async fn the_query_string_is_the_request_of_body_less_calls() {
    let (_, _, _, traces) = send(Call::new(Method::GET, "/v1/orders/ORD7?view=full&access_token=abc%20d")).await;
    assert_eq!(doc(&traces[0].request), json!({"view": "full", "access_token": MASK}));
    assert_eq!(traces[0].resource_url.as_deref(), Some("/v1/orders/ORD7"));
}

#[tokio::test]
async fn the_handlers_context_can_make_a_system_action_without_source_ip() {
    let (_, _, request_id, traces) = send(Call::new(Method::POST, "/v1/orders/ORD7/renew")).await;
    let trace = &traces[0];
    assert_eq!(trace.trace_type, TraceType::SystemAction);
    assert_eq!(trace.source_ip, None);
    assert_eq!(trace.user, None);
    assert_eq!(trace.request_id, request_id, "a generated request id is returned to the client");
    uuid::Uuid::parse_str(trace.request_id.as_deref().unwrap()).unwrap();
}
