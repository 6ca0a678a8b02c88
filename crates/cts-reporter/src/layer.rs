//! The tower layer that turns a service's HTTP operations into traces.
//!
//! Install it with `Router::route_layer` so axum's [`MatchedPath`] is known. For a request whose (method, path
//! template) is in the [`RouteTable`], the layer records the request body as the handler reads it (up to a cap; the
//! handler still gets every byte), buffers the response, and submits one [`TraceInput`] to the [`TraceSink`]: the
//! catalog's names and types, the handler's [`OperationContext`] (user, resource), the client's address, the redacted
//! request and response, the status code, the request id. Other requests pass untouched. Submitting never blocks and
//! never changes the response.

use crate::redact::Redactor;
use crate::{OperationContext, TraceSink};
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::header::{HOST, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use cts_model::{Operation, TraceInput, TraceType, CATALOG};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The request id header, read from the client and set on the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A route the table cannot map.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("the catalog has no operation {trace_name} of service {service_type}")]
    UnknownOperation { service_type: String, trace_name: String },
}

/// Which catalog operation each (method, matched path template) performs.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: HashMap<(Method, String), &'static Operation>,
}

impl RouteTable {
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    /// Maps `method path_template` (as given to `Router::route`, e.g. `/v1/orders/{order_id}`) to the catalog
    /// operation `trace_name` of `service_type`.
    pub fn route(
        mut self,
        method: Method,
        path_template: &str,
        service_type: &str,
        trace_name: &str,
    ) -> Result<RouteTable, RouteError> {
        let operation = CATALOG.find(service_type, trace_name).ok_or_else(|| RouteError::UnknownOperation {
            service_type: service_type.to_owned(),
            trace_name: trace_name.to_owned(),
        })?;
        self.routes.insert((method, path_template.to_owned()), operation);
        Ok(self)
    }

    pub fn operation(&self, method: &Method, path_template: &str) -> Option<&'static Operation> {
        self.routes.get(&(method.clone(), path_template.to_owned())).copied()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// The time source of trace `time`, UTC milliseconds (a service on a simulated clock passes its own).
pub type TimeSource = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How the layer records.
#[derive(Clone)]
pub struct LayerConfig {
    /// Bytes of a request or response body recorded; larger bodies are recorded truncated.
    pub body_limit: usize,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    pub api_version: Option<String>,
    /// The service's endpoint; the request's `Host` when `None`.
    pub endpoint: Option<String>,
    pub redactor: Redactor,
    pub clock: TimeSource,
}

impl Default for LayerConfig {
    fn default() -> LayerConfig {
        LayerConfig {
            body_limit: 16 * 1024,
            trusted_proxies: Vec::new(),
            api_version: None,
            endpoint: None,
            redactor: Redactor::default(),
            clock: Arc::new(cts_model::now_ms),
        }
    }
}

/// The tower layer; see the module documentation.
#[derive(Clone)]
pub struct ReporterLayer {
    shared: Arc<Shared>,
}

struct Shared {
    sink: Arc<dyn TraceSink>,
    routes: RouteTable,
    config: LayerConfig,
}

impl ReporterLayer {
    pub fn new(sink: Arc<dyn TraceSink>, routes: RouteTable, config: LayerConfig) -> ReporterLayer {
        ReporterLayer { shared: Arc::new(Shared { sink, routes, config }) }
    }
}

impl<S> tower::Layer<S> for ReporterLayer {
    type Service = ReporterService<S>;

    fn layer(&self, inner: S) -> ReporterService<S> {
        ReporterService { inner, shared: self.shared.clone() }
    }
}

/// The service [`ReporterLayer`] wraps around each route.
#[derive(Clone)]
pub struct ReporterService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> tower::Service<Request> for ReporterService<S>
where
    S: tower::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let operation = request
            .extensions()
            .get::<MatchedPath>()
            .and_then(|path| self.shared.routes.operation(request.method(), path.as_str()));
        let Some(operation) = operation else {
            return Box::pin(self.inner.call(request));
        };
        // The clone is ready only if polled; the ready one serves this call (tower's usual swap).
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        Box::pin(record(ready, self.shared.clone(), operation, request))
    }
}

/// Serves `request` through `inner` and submits its trace.
async fn record<S>(
    mut inner: S,
    shared: Arc<Shared>,
    operation: &'static Operation,
    request: Request,
) -> Result<Response, S::Error>
where
    S: tower::Service<Request, Response = Response>,
{
    let facts = RequestFacts::of(&request, &shared.config);
    let recording = Arc::new(Mutex::new(Recording::default()));
    let (parts, body) = request.into_parts();
    let tee = Tee { inner: body, recording: recording.clone(), limit: shared.config.body_limit };
    let mut response = inner.call(Request::from_parts(parts, Body::new(tee))).await?;

    let context = response.extensions_mut().remove::<OperationContext>().unwrap_or_default();
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            tracing::warn!(%error, trace_name = operation.trace_name, "reading the response body to record it failed");
            Bytes::new()
        }
    };
    if !parts.headers.contains_key(REQUEST_ID_HEADER) {
        if let Ok(value) = HeaderValue::from_str(&facts.request_id) {
            parts.headers.insert(REQUEST_ID_HEADER, value);
        }
    }
    let limit = shared.config.body_limit;
    let request_doc = {
        let recording = recording.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        recorded_document(&recording.prefix, recording.total, limit, &shared.config.redactor)
    }
    .or_else(|| facts.query.clone());
    let response_doc = recorded_document(&bytes[..bytes.len().min(limit)], bytes.len(), limit, &shared.config.redactor);
    let trace = facts.into_trace(operation, context, parts.status.as_u16(), request_doc, response_doc, &shared.config);
    shared.sink.submit(trace);
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// What is known about a request before it is served.
struct RequestFacts {
    time: i64,
    request_id: String,
    source_ip: Option<IpAddr>,
    browser: bool,
    endpoint: Option<String>,
    path: String,
    /// The query parameters as a redacted JSON object, the request document of body-less requests.
    query: Option<Value>,
}

impl RequestFacts {
    fn of(request: &Request, config: &LayerConfig) -> RequestFacts {
        let headers = request.headers();
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let query = request.uri().query().filter(|q| !q.is_empty()).map(|q| {
            let mut doc = Value::Object(
                q.split('&')
                    .filter_map(|pair| {
                        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                        Some((decode(key)?, Value::String(decode(value)?)))
                    })
                    .collect(),
            );
            config.redactor.redact(&mut doc);
            doc
        });
        RequestFacts {
            time: (config.clock)(),
            request_id: headers
                .get(REQUEST_ID_HEADER)
                .and_then(|value| value.to_str().ok())
                .filter(|id| is_sane_request_id(id))
                .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned),
            source_ip: client_ip(peer, headers, &config.trusted_proxies),
            browser: headers
                .get(USER_AGENT)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|agent| agent.contains("Mozilla/")),
            endpoint: config
                .endpoint
                .clone()
                .or_else(|| headers.get(HOST).and_then(|value| value.to_str().ok()).map(str::to_owned)),
            path: request.uri().path().to_owned(),
            query,
        }
    }

    fn into_trace(
        self,
        operation: &Operation,
        context: OperationContext,
        status: u16,
        request: Option<Value>,
        response: Option<Value>,
        config: &LayerConfig,
    ) -> TraceInput {
        let trace_type =
            context.trace_type.unwrap_or(if self.browser { TraceType::ConsoleAction } else { TraceType::ApiCall });
        let source_ip = if trace_type == TraceType::SystemAction { None } else { self.source_ip };
        TraceInput {
            trace_id: Some(uuid::Uuid::new_v4().to_string()),
            trace_name: Some(operation.trace_name.to_owned()),
            trace_type: Some(trace_type.as_str().to_owned()),
            service_type: Some(operation.service_type.to_owned()),
            resource_type: Some(operation.resource_type.to_owned()),
            resource_url: context.resource_id.as_ref().map(|_| self.path),
            resource_id: context.resource_id,
            resource_name: context.resource_name,
            resource_account_id: context.user.as_ref().and_then(|user| user.account_id.clone()),
            read_only: Some(operation.read_only),
            source_ip: source_ip.map(|ip| ip.to_string()),
            request,
            response,
            code: Some(Value::from(status)),
            api_version: config.api_version.clone(),
            time: Some(self.time),
            request_id: Some(self.request_id),
            endpoint: self.endpoint,
            user: context.user,
            ..TraceInput::default()
        }
    }
}

/// A client-sent request id is kept when it is 1-128 characters of `A-Za-z0-9-_.:`.
fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Percent-decodes one query component (`+` is a space); `None` when it is not UTF-8.
fn decode(component: &str) -> Option<String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest untrusted address of
/// `X-Forwarded-For` (read right to left, as each proxy appends the address it saw).
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) if trusted_proxies.contains(&ip) => client = ip,
            Ok(ip) => return Some(ip),
            // A malformed hop: nothing left of it can be believed.
            Err(_) => return Some(client),
        }
    }
    Some(client)
}

/// The request body as the handler read it: the first `limit` bytes and the total.
#[derive(Default)]
struct Recording {
    prefix: Vec<u8>,
    total: usize,
}

/// A request body that hands every frame on unchanged and keeps a copy of the first bytes.
struct Tee {
    inner: Body,
    recording: Arc<Mutex<Recording>>,
    limit: usize,
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let mut recording = self.recording.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let room = self.limit.saturating_sub(recording.prefix.len());
                recording.prefix.extend_from_slice(&data[..data.len().min(room)]);
                recording.total += data.len();
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A body as a redacted JSON document: the document itself when it fits the limit; when truncated, its prefix
/// closed into valid JSON (`{"truncated":true,"bytes":N,"prefix":...}`); a body that is not JSON by its size only.
fn recorded_document(prefix: &[u8], total: usize, limit: usize, redactor: &Redactor) -> Option<Value> {
    if total == 0 {
        return None;
    }
    if total <= limit {
        return Some(match serde_json::from_slice::<Value>(prefix) {
            Ok(mut doc) => {
                redactor.redact(&mut doc);
                doc
            }
            Err(_) => json!({ "non_json_body": true, "bytes": total }),
        });
    }
    let mut doc = json!({ "truncated": true, "bytes": total });
    if let Some(mut closed) = close_json_prefix(prefix).and_then(|text| serde_json::from_slice::<Value>(&text).ok()) {
        redactor.redact(&mut closed);
        doc["prefix"] = closed;
    }
    Some(doc)
}

/// The longest cut of a truncated JSON text that ends after a complete element, with its open arrays and objects
/// closed; `None` when there is no such cut (a truncated scalar).
pub fn close_json_prefix(text: &[u8]) -> Option<Vec<u8>> {
    let mut cut = None;
    let mut depth = 0usize;
    for (i, byte) in outside_strings(text) {
        match byte {
            b'{' | b'[' => {
                depth += 1;
                cut = Some(i + 1);
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                cut = Some(i + 1);
            }
            b',' if depth > 0 => cut = Some(i),
            _ => {}
        }
    }
    let cut = cut?;
    let mut open = Vec::new();
    for (_, byte) in outside_strings(&text[..cut]) {
        match byte {
            b'{' => open.push(b'}'),
            b'[' => open.push(b']'),
            b'}' | b']' => {
                open.pop();
            }
            _ => {}
        }
    }
    let mut closed = text[..cut].to_vec();
    closed.extend(open.iter().rev());
    Some(closed)
}

/// The bytes of a JSON text that lie outside string literals, with their positions.
fn outside_strings(text: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    text.iter().enumerate().filter_map(move |(i, &byte)| {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            return None;
        }
        in_string = byte == b'"';
        (!in_string).then_some((i, byte))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_json_is_closed_after_its_last_complete_element() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"a":1,"b":"tw"#, Some(r#"{"a":1}"#)),
            (r#"{"a":[1,2,{"c":"x,y"}],"d":{"e"#, Some(r#"{"a":[1,2,{"c":"x,y"}],"d":{}}"#)),
            (r#"{"a":[1,2,{"c":"x,y"}],"d":tr"#, Some(r#"{"a":[1,2,{"c":"x,y"}]}"#)),
            (r#"[{"k":"v\"],"},{"#, Some(r#"[{"k":"v\"],"},{}]"#)),
            (r#"{"only":"#, Some("{}")),
            (r#""just a long str"#, None),
            ("12345", None),
        ];
        for (text, expected) in cases {
            let closed = close_json_prefix(text.as_bytes()).map(|bytes| String::from_utf8(bytes).unwrap());
            assert_eq!(closed.as_deref(), *expected, "{text}");
            if let Some(closed) = closed {
                serde_json::from_str::<Value>(&closed).expect("closed prefixes parse");
            }
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner_proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2".parse().unwrap());
        let trusted = [proxy, inner_proxy];
        let cases = [
            (Some(proxy), &trusted[..], Some("203.0.113.9")),
            (Some("198.51.100.7".parse().unwrap()), &trusted[..], Some("198.51.100.7")),
            (Some(proxy), &[][..], Some("10.0.0.1")),
            (None, &trusted[..], None),
        ];
        for (peer, trusted, expected) in cases {
            let ip = client_ip(peer, &headers, trusted).map(|ip| ip.to_string());
            assert_eq!(ip.as_deref(), expected, "{peer:?}");
        }
        headers.insert("x-forwarded-for", "not-an-ip, 10.0.0.2".parse().unwrap());
        assert_eq!(client_ip(Some(proxy), &headers, &trusted), Some(inner_proxy));
    }

    #[test]
    fn query_components_are_percent_decoded() {
        assert_eq!(decode("a%20b+c").as_deref(), Some("a b c"));
        assert_eq!(decode("100%").as_deref(), Some("100%"));
        assert_eq!(decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(decode("%ff"), None);
    }
}
