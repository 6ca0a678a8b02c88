//! The OpenAPI 3.0 document of the whole API, served unsigned at `GET /openapi.json`.
//!
//! [`OPERATIONS`] describes every route `app` serves, one entry per method and path (in axum's
//! `{name}` syntax, which is also OpenAPI's); the document is built from it, path parameters from
//! the templates. It cannot drift unnoticed: a test reads the `.route(...)` calls of `lib.rs` and
//! requires the same set of (method, path), and the API tests call every documented operation.

use axum::Json;
use serde_json::{json, Map, Value};

/// One documented operation.
pub(crate) struct ApiOperation {
    pub method: &'static str,
    pub path: &'static str,
    /// The Huawei Cloud SDK's name for the call (or cts's own).
    pub operation_id: &'static str,
    pub summary: &'static str,
    /// Whether an `SDK-HMAC-SHA256` signature is required.
    pub signed: bool,
    /// Query parameters: (name, description).
    pub query: &'static [(&'static str, &'static str)],
    /// More query parameters (those an operation adds to a shared list).
    pub more_query: &'static [(&'static str, &'static str)],
    /// The request body schema (a component name).
    pub body: Option<&'static str>,
    /// The success status and its body schema (a component name).
    pub success: (u16, Option<&'static str>),
}

const fn op(
    method: &'static str,
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
) -> ApiOperation {
    ApiOperation {
        method,
        path,
        operation_id,
        summary,
        signed: true,
        query: &[],
        more_query: &[],
        body: None,
        success: (200, None),
    }
}

impl ApiOperation {
    const fn unsigned(self) -> ApiOperation {
        ApiOperation { signed: false, ..self }
    }

    const fn query(self, query: &'static [(&'static str, &'static str)]) -> ApiOperation {
        ApiOperation { query, ..self }
    }

    const fn and_query(self, more_query: &'static [(&'static str, &'static str)]) -> ApiOperation {
        ApiOperation { more_query, ..self }
    }

    const fn body(self, schema: &'static str) -> ApiOperation {
        ApiOperation { body: Some(schema), ..self }
    }

    const fn answers(self, status: u16, schema: Option<&'static str>) -> ApiOperation {
        ApiOperation { success: (status, schema), ..self }
    }
}

const TRACKER_QUERY: &[(&str, &str)] =
    &[("tracker_name", "the tracker's name"), ("tracker_type", "system or data (default: data for DeleteTracker)")];

/// The filters of ListTraces (also those of the export, the histogram and the tail).
const LIST_TRACES_FILTERS: &[(&str, &str)] = &[
    ("trace_type", "system or data"),
    ("from", "UTC ms, default an hour ago"),
    ("to", "UTC ms, default now"),
    ("tracker_name", "data traces: the data tracker"),
    ("service_type", "exact match"),
    ("user", "exact match on user.name"),
    ("resource_id", "exact match"),
    ("resource_name", "exact match"),
    ("resource_type", "exact match"),
    ("trace_id", "one trace (overrides the other filters)"),
    ("trace_name", "exact match"),
    ("trace_rating", "normal, warning or incident"),
    ("access_key_id", "exact match"),
    ("enterprise_project_id", "exact match"),
];

/// Every route of the API.
pub(crate) const OPERATIONS: &[ApiOperation] = &[
    op("get", "/", "ListApiVersions", "The API versions").unsigned().answers(200, Some("Versions")),
    op("get", "/v3", "ShowApiVersion", "The v3 API version").unsigned().answers(200, Some("OneVersion")),
    op("get", "/health", "Health", "Liveness").unsigned().answers(200, Some("Object")),
    op("get", "/ready", "Ready", "Readiness: 200 while the store takes writes, else 503")
        .unsigned()
        .answers(200, Some("Object")),
    op("get", "/metrics", "Metrics", "Prometheus text exposition").unsigned().answers(200, None),
    op("get", "/openapi.json", "OpenApi", "This document").unsigned().answers(200, Some("Object")),
    op("get", "/v3/{project_id}/traces", "ListTraces", "Query traces")
        .query(LIST_TRACES_FILTERS)
        .and_query(&[("limit", "1-200, default 10"), ("next", "the marker of the previous page")])
        .answers(200, Some("ListTracesResponse")),
    op("get", "/v3/{project_id}/traces/export", "ExportTraces", "Every trace of a ListTraces filter, streamed")
        .query(LIST_TRACES_FILTERS)
        .and_query(&[("format", "csv (default), json or parquet")])
        .answers(200, Some("Export")),
    op("get", "/v3/{project_id}/traces/histogram", "ShowTraceHistogram", "Traces per time bucket by rating")
        .query(LIST_TRACES_FILTERS)
        .answers(200, Some("TraceHistogram")),
    op("get", "/v3/{project_id}/traces/tail", "TailTraces", "Newly stored traces as server-sent events `trace`")
        .query(LIST_TRACES_FILTERS)
        .answers(200, Some("EventStream")),
    op("post", "/v3/{project_id}/queries", "QueryTraces", "One SQL SELECT over the project's `traces` table")
        .body("QueryRequest")
        .answers(200, Some("QueryResponse")),
    op("post", "/v3/{project_id}/traces", "IngestTraces", "Record traces (cts's own API)")
        .body("IngestRequest")
        .answers(200, Some("IngestResponse")),
    op("post", "/v3/{project_id}/tracker", "CreateTracker", "Create a data tracker")
        .body("TrackerRequest")
        .answers(201, Some("Tracker")),
    op("put", "/v3/{project_id}/tracker", "UpdateTracker", "Change the fields sent of a tracker")
        .body("TrackerRequest")
        .answers(200, Some("Tracker")),
    op("get", "/v3/{project_id}/trackers", "ListTrackers", "List trackers")
        .query(TRACKER_QUERY)
        .answers(200, Some("ListTrackersResponse")),
    op(
        "get",
        "/v3/{project_id}/trackers/{tracker_name}/deliveries",
        "ListTrackerDeliveries",
        "A tracker's delivery history, newest first",
    )
    .query(&[("limit", "1-200, default 50")])
    .answers(200, Some("ListTrackerDeliveriesResponse")),
    op("delete", "/v3/{project_id}/trackers", "DeleteTracker", "Delete a data tracker, or all without a name")
        .query(TRACKER_QUERY)
        .answers(204, None),
    op("get", "/v3/{project_id}/quotas", "ListQuotas", "Trackers and notifications, used and allowed")
        .answers(200, Some("ListQuotasResponse")),
    op("get", "/v3/{project_id}/operations", "ListOperations", "The operations cts knows")
        .query(&[("service_type", "exact match"), ("resource_type", "exact match (with service_type)")])
        .answers(200, Some("ListOperationsResponse")),
    op(
        "post",
        "/v3/{project_id}/{resource_type}/{resource_id}/tags/create",
        "BatchCreateResourceTags",
        "Tag a tracker",
    )
    .body("TagsRequest")
    .answers(204, None),
    op(
        "delete",
        "/v3/{project_id}/{resource_type}/{resource_id}/tags/delete",
        "BatchDeleteResourceTags",
        "Untag a tracker",
    )
    .body("TagsRequest")
    .answers(204, None),
    op("post", "/v3/{project_id}/notifications", "CreateNotification", "Create a key event notification")
        .body("NotificationRequest")
        .answers(201, Some("Notification")),
    op("put", "/v3/{project_id}/notifications", "UpdateNotification", "Change the fields sent of a notification")
        .body("NotificationRequest")
        .answers(200, Some("Notification")),
    op("delete", "/v3/{project_id}/notifications", "DeleteNotification", "Delete notifications")
        .query(&[("notification_id", "one id, or several separated by commas (required)")])
        .answers(204, None),
    op("get", "/v3/{project_id}/notifications/{notification_type}", "ListNotifications", "List notifications (smn)")
        .query(&[("notification_name", "exact match")])
        .answers(200, Some("ListNotificationsResponse")),
    op(
        "get",
        "/v3/{project_id}/resources",
        "ListTraceResources",
        "Service and resource types of the traces (path: the domain id)",
    )
    .answers(200, Some("ListTraceResourcesResponse")),
    op("get", "/v3/{project_id}/user-resources", "ListUserResources", "Users who operated in the last 30 days")
        .answers(200, Some("ListUserResourcesResponse")),
    op(
        "get",
        "/v3/{project_id}/ledger/checkpoint",
        "ShowLedgerCheckpoint",
        "The latest signed checkpoint (C2SP signed note, text/plain)",
    )
    .answers(200, Some("SignedNote")),
    op(
        "get",
        "/v3/{project_id}/ledger/keys",
        "ListLedgerKeys",
        "The verifier keys, one note verifier key per line (text/plain)",
    )
    .answers(200, Some("SignedNote")),
    op(
        "get",
        "/v3/{project_id}/ledger/proof/inclusion",
        "ShowInclusionProof",
        "The inclusion proof of a trace in a tree size",
    )
    .query(&[("trace_id", "the trace"), ("tree_size", "a checkpoint's tree size")])
    .answers(200, Some("InclusionProof")),
    op(
        "get",
        "/v3/{project_id}/ledger/proof/consistency",
        "ShowConsistencyProof",
        "The consistency proof between two tree sizes",
    )
    .query(&[("first", "the smaller tree size"), ("second", "the larger tree size")])
    .answers(200, Some("ConsistencyProof")),
    op(
        "get",
        "/v3/{project_id}/ledger/tile/{*path}",
        "GetLedgerTile",
        "C2SP tlog-tiles: hash tiles and entry bundles (binary)",
    )
    .answers(200, Some("Binary")),
    op(
        "post",
        "/v3/{project_id}/checkbucket",
        "CheckObsBuckets",
        "Whether cts may deliver to each bucket of the object store (path: the domain id)",
    )
    .body("CheckObsBucketsRequest")
    .answers(200, Some("CheckObsBucketsResponse")),
    op("post", "/v2/{project_id}/notifications/topics", "CreateTopic", "Create an SMN-style topic")
        .body("Object")
        .answers(200, Some("Object")),
    op("get", "/v2/{project_id}/notifications/topics", "ListTopics", "The project's topics")
        .answers(200, Some("Object")),
    op(
        "delete",
        "/v2/{project_id}/notifications/topics/{topic_urn}",
        "DeleteTopic",
        "Delete a topic and its subscriptions",
    )
    .answers(200, Some("Object")),
    op(
        "post",
        "/v2/{project_id}/notifications/topics/{topic_urn}/subscriptions",
        "AddSubscription",
        "Subscribe an http, https or email endpoint (the webhook signing secret is answered once)",
    )
    .body("Object")
    .answers(200, Some("Object")),
    op(
        "get",
        "/v2/{project_id}/notifications/topics/{topic_urn}/subscriptions",
        "ListSubscriptionsByTopic",
        "A topic's subscriptions",
    )
    .answers(200, Some("Object")),
    op(
        "delete",
        "/v2/{project_id}/notifications/subscriptions/{subscription_urn}",
        "DeleteSubscription",
        "Delete a subscription",
    )
    .answers(200, Some("Object")),
    op("get", "/v2/{project_id}/notifications/dead-letters", "ListDeadLetters", "Deliveries given up on")
        .answers(200, Some("Object")),
    op("get", "/v3/{project_id}/insights", "ListInsights", "Insight traces (unusual call or error rates)")
        .query(&[
            ("from", "UTC ms, default 7 days ago"),
            ("to", "UTC ms, default now"),
            ("limit", "1-1000, default 100"),
        ])
        .answers(200, Some("Object")),
];

/// Schemas of the bodies; `Object` stands for any JSON object. Bodies that mirror an SDK model
/// name it in their description.
fn components() -> Value {
    let string = json!({"type": "string"});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let object = |description: &str| json!({"type": "object", "description": description});
    let list_of = |property: &str, schema: &str| {
        json!({"type": "object", "required": [property],
               "properties": {property: {"type": "array", "items": {"$ref": format!("#/components/schemas/{schema}")}}}})
    };
    let version = json!({"type": "object", "properties": {
        "id": string, "links": {"type": "array", "items": {"type": "object", "properties": {"href": string, "rel": string}}},
        "min_version": string, "status": {"type": "string", "enum": ["CURRENT"]}, "updated": string, "version": string}});
    let notification_fields = json!({
        "notification_name": {"type": "string", "maxLength": 64},
        "operation_type": {"type": "string", "enum": ["complete", "customized"]},
        "operations": {"type": "array", "items": {"type": "object", "properties": {
            "service_type": string, "resource_type": string, "trace_names": strings}}},
        "notify_user_list": {"type": "array", "maxItems": 10, "items": {"type": "object", "properties": {
            "user_group": string, "user_list": strings}}},
        "agency_name": {"type": "string", "enum": ["cts_admin_trust"]},
        "topic_id": {"type": "string", "description": "urn:smn:{region}:{project_id}:{topic}"},
        "filter": {"type": "object", "properties": {
            "condition": {"type": "string", "enum": ["AND", "OR"]},
            "is_support_filter": {"type": "boolean"},
            "rule": {"type": "array", "maxItems": 6, "items": {"type": "string",
                "description": "field = value or field != value; fields api_version, code, trace_rating, trace_type, resource_id, resource_name"}}}},
    });
    let mut notification = notification_fields.as_object().cloned().unwrap_or_default();
    for (name, schema) in [
        ("notification_id", json!({"type": "string", "format": "uuid"})),
        ("status", json!({"type": "string", "enum": ["enabled", "disabled"]})),
        ("notification_type", json!({"type": "string", "enum": ["smn"]})),
        ("project_id", string.clone()),
        ("create_time", json!({"type": "integer", "format": "int64"})),
    ] {
        notification.insert(name.to_owned(), schema);
    }
    let mut request = notification_fields.as_object().cloned().unwrap_or_default();
    request.insert("notification_id".to_owned(), json!({"type": "string", "description": "UpdateNotification only"}));
    request.insert(
        "status".to_owned(),
        json!({"type": "string", "enum": ["enabled", "disabled"], "description": "UpdateNotification only"}),
    );
    json!({
        "ErrorBody": {"type": "object", "required": ["error_code", "error_msg"], "properties": {
            "error_code": {"type": "string", "pattern": "^CTS\\.[0-9]{4}$"}, "error_msg": string}},
        "Object": {"type": "object"},
        "Versions": {"type": "object", "properties": {"versions": {"type": "array", "items": version}}},
        "OneVersion": {"type": "object", "properties": {"version": version}},
        "Notification": {"type": "object", "properties": notification},
        "NotificationRequest": {"type": "object", "additionalProperties": false, "properties": request},
        "ListNotificationsResponse": list_of("notifications", "Notification"),
        "TraceResource": {"type": "object", "properties": {"service_type": string, "resource": strings}},
        "ListTraceResourcesResponse": list_of("resources", "TraceResource"),
        "UserResource": {"type": "object", "properties": {"name": string}},
        "ListUserResourcesResponse": list_of("users", "UserResource"),
        "CheckObsBucketsRequest": object("The SDK's CheckObsBucketsRequestBody: buckets [{bucket_name, bucket_location, kms_id, is_support_trace_files_encryption}]"),
        "CheckObsBucketsResponse": object("The SDK's CheckObsBucketsResponse: buckets [{bucket_name, ..., check_bucket_response {success, response_code, error_code, error_message}}]"),
        "SignedNote": {"type": "string", "description": "text/plain: a C2SP signed note or note verifier keys"},
        "InclusionProof": {"type": "object", "properties": {"leaf_index": {"type": "integer"}, "tree_size": {"type": "integer"}, "hashes": strings}},
        "ConsistencyProof": {"type": "object", "properties": {"hashes": strings}},
        "Binary": {"type": "string", "format": "binary"},
        "Export": {"type": "string", "format": "binary", "description": "text/csv (RFC 4180, formula-like cells prefixed with '), a JSON array of Trace, or Parquet"},
        "TraceHistogram": {"type": "object", "properties": {"from": {"type": "integer"}, "to": {"type": "integer"}, "bucket_ms": {"type": "integer"},
            "buckets": {"type": "array", "items": {"type": "object", "properties": {"time": {"type": "integer"}, "normal": {"type": "integer"}, "warning": {"type": "integer"}, "incident": {"type": "integer"}}}}}},
        "EventStream": {"type": "string", "description": "text/event-stream: events `trace` (data: a Trace) and `lagged`"},
        "Trace": object("A trace, as the SDK's Traces model"),
        "ListTracesResponse": {"type": "object", "properties": {
            "traces": {"type": "array", "items": {"$ref": "#/components/schemas/Trace"}},
            "meta_data": {"type": "object", "properties": {"count": {"type": "integer"}, "marker": {"type": "string", "nullable": true}}}}},
        "IngestRequest": {"type": "object", "properties": {"traces": {"type": "array", "items": object("A trace as a reporter sends it")}}},
        "IngestResponse": object("Accepted and rejected traces"),
        "QueryRequest": {"type": "object", "required": ["statement"], "additionalProperties": false, "properties": {
            "statement": {"type": "string", "description": "One SELECT (WITH, VALUES, UNION) over `traces`: every trace field a column, user flattened as user_name, user_access_key_id, ...; time in UTC ms. 501 in a build without the sql feature"}}},
        "QueryResponse": {"type": "object", "properties": {
            "columns": {"type": "array", "items": {"type": "object", "properties": {"name": string, "type": {"type": "string", "description": "the Arrow type"}}}},
            "rows": {"type": "array", "items": {"type": "array", "items": {"description": "a number, string, boolean, array or null; timestamps as RFC 3339"}}},
            "row_count": {"type": "integer"}, "truncated": {"type": "boolean", "description": "rows were cut at the row limit"},
            "elapsed_ms": {"type": "integer"}}},
        "Tracker": object("A tracker, as the SDK's TrackerResponseBody model"),
        "TrackerRequest": object("The SDK's CreateTrackerRequestBody / UpdateTrackerRequestBody"),
        "ListTrackersResponse": list_of("trackers", "Tracker"),
        "ListTrackerDeliveriesResponse": object("deliveries [{time_ms, outcome: delivered|failed, windows_delivered, windows_rewritten, files_written, traces_written, digests_written, files_expired, windows_streamed, traces_streamed, error: {detail, reason}?}], tracker_name"),
        "ListQuotasResponse": object("The SDK's ListQuotasResponse: resources [{type, used, quota}]"),
        "ListOperationsResponse": object("The SDK's ListOperationsResponse: operations [{service_type, resource_type, operation_list}]"),
        "TagsRequest": object("The SDK's BatchCreateResourceTagsRequestBody: tags [{key, value}]"),
    })
}

/// The parameter names of a path template, in order (a catch-all `{*rest}` is the parameter `rest`).
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|segment| {
        let name = segment.strip_prefix('{')?.strip_suffix('}')?;
        Some(name.strip_prefix('*').unwrap_or(name))
    })
}

fn operation_object(operation: &ApiOperation) -> Value {
    let mut parameters: Vec<Value> = path_parameters(operation.path)
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(operation.query.iter().chain(operation.more_query).map(|(name, description)| {
        json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})
    }));
    let schema_ref = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let (status, schema) = operation.success;
    let success = match schema {
        Some(name) => json!({"description": "success", "content": {"application/json": {"schema": schema_ref(name)}}}),
        None => json!({"description": "success, no body"}),
    };
    let error =
        json!({"description": "a CTS error", "content": {"application/json": {"schema": schema_ref("ErrorBody")}}});
    let mut object = json!({
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "parameters": parameters,
        "responses": {status.to_string(): success, "default": error},
    });
    if let Some(body) = operation.body {
        object["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema_ref(body)}}});
    }
    object["security"] = if operation.signed { json!([{"SdkHmacSha256": []}]) } else { json!([]) };
    object
}

/// The whole document.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        // OpenAPI has no catch-all segments: `{*rest}` is documented as `{rest}`.
        let item = paths.entry(operation.path.replace("{*", "{")).or_insert_with(|| json!({}));
        item[operation.method] = operation_object(operation);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "cts: Cloud Trace Service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Huawei CTS v3 compatible. Signed routes take an SDK-HMAC-SHA256 signature \
                            (X-Sdk-Date, Authorization: SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...)."
        },
        "paths": paths,
        "components": {
            "schemas": components(),
            "securitySchemes": {"SdkHmacSha256": {"type": "apiKey", "in": "header", "name": "Authorization"}},
        },
    })
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The (method, path) of every `.route(path, method_router)` call in `source`: the methods
    /// are the `get(`/`post(`/`put(`/`delete(`/`patch(` calls directly inside the call.
    fn routes_in(source: &str) -> BTreeSet<(String, String)> {
        let mut routes = BTreeSet::new();
        for (start, _) in source.match_indices(".route(") {
            let Some(rest) = source[start + ".route(".len()..].trim_start().strip_prefix('"') else { continue };
            let path_end = rest.find('"').expect("a closing quote");
            let path = &rest[..path_end];
            let (mut depth, mut word) = (1, String::new());
            for c in rest[path_end + 1..].chars() {
                match c {
                    '(' => {
                        if depth == 1 && ["get", "post", "put", "delete", "patch"].contains(&word.as_str()) {
                            routes.insert((word.clone(), path.to_owned()));
                        }
                        depth += 1;
                    }
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                if c.is_alphanumeric() || c == '_' {
                    word.push(c);
                } else {
                    word.clear();
                }
            }
        }
        routes
    }

    #[test]
    fn the_document_lists_exactly_the_routes_the_router_declares() {
        let declared = routes_in(include_str!("lib.rs"));
        let documented: BTreeSet<_> = OPERATIONS.iter().map(|op| (op.method.to_owned(), op.path.to_owned())).collect();
        assert_eq!(documented.len(), OPERATIONS.len(), "each (method, path) is documented once");
        assert_eq!(declared, documented);
    }

    #[test]
    fn the_route_reader_sees_every_method_of_a_route() {
        let source = r#".route("/a/{x}", get(h::get_a).post(|| async { x.get(1) })).route(
            "/b", delete(h::delete_b))"#;
        let expected: BTreeSet<_> = [("get", "/a/{x}"), ("post", "/a/{x}"), ("delete", "/b")]
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
            .collect();
        assert_eq!(routes_in(source), expected);
    }

    #[test]
    fn every_schema_referenced_exists_and_operation_ids_are_unique() {
        let document = document();
        let text = document.to_string();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for (start, _) in text.match_indices("#/components/schemas/") {
            let name: String = text[start + 21..].chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "{name}");
        }
        let ids: BTreeSet<_> = OPERATIONS.iter().map(|op| op.operation_id).collect();
        assert_eq!(ids.len(), OPERATIONS.len());
    }
}
