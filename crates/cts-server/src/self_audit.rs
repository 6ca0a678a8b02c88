//! Self-audit: cts records its own operations as traces of service_type `CTS`, as CTS does
//! (createTracker, updateTracker, deleteTracker, createNotification, updateNotification,
//! deleteNotification; read-only listTrackers (also a tracker's delivery history), listTraces, exportTrace and
//! queryTraces, the SQL statement as its request).
//!
//! [`record`] is a layer inside the authentication layer of the `/v3` routes: it runs the handler,
//! then turns the request, the caller ([`Principal`]), the peer address and the answer (status,
//! body) into one trace, success or failure (a 4xx is rated `warning`, a 5xx `incident`).
//! Unauthenticated requests are not recorded: they have no project to record them in, and anyone
//! could flood the log with them. The trace goes through the same store append as ingest.
//!
//! A change's trace is appended before the answer leaves, so a client that saw the answer finds
//! the trace; a read's trace is appended in the background so that queries never wait for an
//! fsync. A ListTraces call records exactly one trace, after it has answered: it never sees its
//! own trace and never records more than one.
//!
//! Console sign-in and sign-out ([`crate::session`]) are recorded through the same [`Audit`] record
//! (`consoleLogin`, `consoleLogout`, trace type `ConsoleAction`).

use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Extensions, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cts_iam::sign::parse_query_string;
use cts_iam::Principal;
use cts_model::{limits, BaseUser, Operation, Trace, TraceRating, TraceType, UserInfo, UserType, CATALOG, CTS_SERVICE};
use serde_json::{Map, Value};
use std::net::SocketAddr;

/// An audited route: which operation, and the JSON fields that name and identify its resource
/// (read from the answer, else from the request body, else from the query).
struct Audited {
    method: Method,
    path: &'static str,
    trace_name: &'static str,
    name_field: &'static str,
    id_field: &'static str,
}

const TRACKER_FIELDS: (&str, &str) = ("tracker_name", "id");
const NOTIFICATION_FIELDS: (&str, &str) = ("notification_name", "notification_id");

fn audited(
    method: Method,
    path: &'static str,
    trace_name: &'static str,
    fields: (&'static str, &'static str),
) -> Audited {
    Audited { method, path, trace_name, name_field: fields.0, id_field: fields.1 }
}

/// The routes whose calls are recorded.
fn audited_routes() -> [Audited; 11] {
    [
        audited(Method::POST, "/v3/{project_id}/tracker", "createTracker", TRACKER_FIELDS),
        audited(Method::PUT, "/v3/{project_id}/tracker", "updateTracker", TRACKER_FIELDS),
        audited(Method::DELETE, "/v3/{project_id}/trackers", "deleteTracker", TRACKER_FIELDS),
        audited(Method::GET, "/v3/{project_id}/trackers", "listTrackers", TRACKER_FIELDS),
        audited(Method::GET, "/v3/{project_id}/trackers/{tracker_name}/deliveries", "listTrackers", TRACKER_FIELDS),
        audited(Method::POST, "/v3/{project_id}/notifications", "createNotification", NOTIFICATION_FIELDS),
        audited(Method::PUT, "/v3/{project_id}/notifications", "updateNotification", NOTIFICATION_FIELDS),
        audited(Method::DELETE, "/v3/{project_id}/notifications", "deleteNotification", NOTIFICATION_FIELDS),
        audited(Method::GET, "/v3/{project_id}/traces", "listTraces", TRACKER_FIELDS),
        audited(Method::GET, "/v3/{project_id}/traces/export", "exportTrace", TRACKER_FIELDS),
        audited(Method::POST, "/v3/{project_id}/queries", "queryTraces", TRACKER_FIELDS),
    ]
}

/// The layer: see the module docs.
pub(crate) async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let operation = route.and_then(|route| {
        audited_routes().into_iter().find(|audited| audited.method == request.method() && audited.path == route)
    });
    let (Some(operation), Some(principal)) = (operation, request.extensions().get::<Principal>().cloned()) else {
        return next.run(request).await;
    };
    let catalog = CATALOG.find(CTS_SERVICE, operation.trace_name).expect("every audited operation is in the catalog");
    let time = cts_model::now_ms();
    let source_ip = source_ip(request.extensions());
    let request_id = request_id(request.extensions());
    let query: Map<String, Value> = parse_query_string(request.uri().query().unwrap_or(""))
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    let (parts, body) = request.into_parts();
    // The authentication layer has buffered the body already (within the body limit).
    let body = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await.unwrap_or_default();
    let request_json = serde_json::from_slice::<Value>(&body).ok();
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;

    let status = response.status();
    let keep_answer = !catalog.read_only || !status.is_success();
    let (response, answer) = if keep_answer { buffered(response).await } else { (response, None) };
    let field = |name: &str| {
        [answer.as_ref(), request_json.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|json| json.get(name).and_then(Value::as_str))
            .or_else(|| query.get(name).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let trace = Audit {
        operation: catalog,
        trace_type: TraceType::ApiCall,
        principal: &principal,
        status: status.as_u16(),
        time,
        source_ip,
        request_id,
        resource_name: field(operation.name_field),
        resource_id: field(operation.id_field),
        request: request_json.or_else(|| (!query.is_empty()).then_some(Value::Object(query))),
        response: answer,
    }
    .trace(&state);
    if catalog.read_only {
        tokio::spawn(append(state, trace));
    } else {
        append(state, trace).await;
    }
    response
}

/// One call of a cts operation, as it is recorded.
pub(crate) struct Audit<'a> {
    /// cts's own operation (service type `CTS`) from the catalog.
    pub operation: &'static Operation,
    pub trace_type: TraceType,
    pub principal: &'a Principal,
    /// The HTTP status answered: the trace's `code`, and its rating.
    pub status: u16,
    pub time: i64,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    pub resource_name: Option<String>,
    pub resource_id: Option<String>,
    pub request: Option<Value>,
    pub response: Option<Value>,
}

impl Audit<'_> {
    /// The trace of the call, in the caller's project with the caller's user block.
    pub(crate) fn trace(self, state: &AppState) -> Trace {
        let principal = self.principal;
        Trace {
            trace_id: uuid::Uuid::new_v4().to_string(),
            trace_name: self.operation.trace_name.to_owned(),
            trace_rating: TraceRating::from_code(self.status),
            trace_type: self.trace_type,
            service_type: CTS_SERVICE.to_owned(),
            resource_type: self.operation.resource_type.to_owned(),
            resource_name: self.resource_name,
            resource_id: self.resource_id,
            project_id: principal.project_id.clone(),
            resource_account_id: Some(principal.domain_id.clone()),
            read_only: self.operation.read_only,
            tracker_name: None,
            operation_id: Some(self.operation.trace_name.to_owned()),
            source_ip: self.source_ip,
            request: bounded(self.request),
            response: bounded(self.response),
            code: Some(self.status.to_string()),
            api_version: Some("v3".to_owned()),
            message: None,
            time: self.time,
            record_time: cts_model::now_ms(),
            request_id: self.request_id,
            location_info: None,
            endpoint: None,
            resource_url: None,
            enterprise_project_id: None,
            user: Some(user_of(state, principal)),
        }
    }
}

/// The peer address of a request (`serve` runs with `ConnectInfo`; in-process tests have none).
pub(crate) fn source_ip(extensions: &Extensions) -> Option<String> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string())
}

/// The request's `X-Request-Id`.
pub(crate) fn request_id(extensions: &Extensions) -> Option<String> {
    extensions.get::<RequestId>().map(|id| id.as_str().to_owned())
}

/// The response with its body read, and that body as JSON when it is JSON.
async fn buffered(response: Response) -> (Response, Option<Value>) {
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            let json = serde_json::from_slice(&bytes).ok();
            (Response::from_parts(parts, Body::from(bytes)), json)
        }
        Err(error) => (ApiError::ReadFailed(Box::new(error)).into_response(), None),
    }
}

/// A request or response as a trace carries it: JSON text, left out when larger than a trace allows.
fn bounded(json: Option<Value>) -> Option<String> {
    json.map(|json| json.to_string()).filter(|text| text.len() <= limits::BODY_MAX)
}

/// The `user` block of a trace for the caller, with what cts-iam knows of it.
fn user_of(state: &AppState, principal: &Principal) -> UserInfo {
    let domain_name =
        state.iam.domains().iter().find(|domain| domain.id == principal.domain_id).map(|d| d.name.clone());
    UserInfo {
        id: Some(principal.user_id.clone()),
        name: Some(principal.user_name.clone()),
        user_name: Some(principal.user_name.clone()),
        domain: Some(BaseUser { id: Some(principal.domain_id.clone()), name: domain_name }),
        account_id: Some(principal.domain_id.clone()),
        access_key_id: Some(principal.access_key_id.clone()),
        principal_urn: Some(format!("iam::{}:user:{}", principal.domain_id, principal.user_name)),
        principal_id: Some(principal.user_id.clone()),
        principal_is_root_user: None,
        user_type: Some(UserType::User),
        invoked_by: None,
        session_context: None,
    }
}

/// Appends the trace; a failure is logged (the operation it records has been answered already).
pub(crate) async fn append(state: AppState, trace: Trace) {
    if let Err(error) = state.store.append(vec![trace]).await {
        tracing::error!(%error, "recording a self-audit trace failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_audited_operation_is_a_cts_operation_of_the_catalog() {
        for audited in audited_routes() {
            let operation = CATALOG.find(CTS_SERVICE, audited.trace_name).expect(audited.trace_name);
            // An SQL query is a read sent as POST: its statement is the body.
            let read = audited.method == Method::GET || audited.path == "/v3/{project_id}/queries";
            assert_eq!(operation.read_only, read, "{}", audited.trace_name);
        }
    }
}
