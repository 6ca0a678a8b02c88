//! SMN-style topics and subscriptions (the paths and shapes of SMN v2, so its SDK's topic calls
//! work), the outbox's dead letters, and the insights list:
//! - `POST /v2/{project_id}/notifications/topics` `{"name","display_name"}` → `{"request_id","topic_urn"}`;
//!   `GET` → `{"request_id","topic_count","topics":[...]}`;
//! - `DELETE /v2/{project_id}/notifications/topics/{topic_urn}` → `{"request_id"}`;
//! - `POST .../topics/{topic_urn}/subscriptions` `{"protocol","endpoint","remark"}` →
//!   `{"request_id","subscription_urn","signing_secret"}` (the webhook secret, answered only here);
//!   `GET` → `{"request_id","subscription_count","subscriptions":[...]}` (no secrets);
//! - `DELETE /v2/{project_id}/notifications/subscriptions/{subscription_urn}` → `{"request_id"}`;
//! - `GET /v2/{project_id}/notifications/dead-letters` → `{"request_id","dead_letters":[...]}`;
//! - `GET /v3/{project_id}/insights?from&to&limit` → `{"insights":[trace...]}`, newest first.

use crate::error::ApiError;
use crate::extract::{json_body, QueryParams};
use crate::{AppState, RequestId};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::{Extension, Json};
use cts_iam::Principal;
use cts_model::ErrorCode;
use cts_notify::insights::INSIGHT_RESOURCE_TYPE;
use cts_notify::{NotifyError, Outbox, Protocol, Subscription, Topics};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// What these routes need, present when delivery runs.
#[derive(Clone)]
pub struct NotifyState {
    pub topics: Arc<Topics>,
    pub outbox: Arc<Outbox>,
}

/// The status and code of a refused or failed topic operation.
pub(crate) fn status_and_code(error: &NotifyError) -> (StatusCode, ErrorCode) {
    match error {
        NotifyError::InvalidField { .. } | NotifyError::TopicExists(_) | NotifyError::QuotaExceeded { .. } => {
            (StatusCode::BAD_REQUEST, ErrorCode::InvalidBody)
        }
        NotifyError::TopicNotFound(_) | NotifyError::SubscriptionNotFound(_) => {
            (StatusCode::NOT_FOUND, ErrorCode::NotFound)
        }
        NotifyError::Write { .. } => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::WriteFailed),
        NotifyError::Read { .. }
        | NotifyError::Corrupt { .. }
        | NotifyError::Unseal { .. }
        | NotifyError::Store(_)
        | NotifyError::Task(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ReadFailed),
    }
}

fn notify(state: &AppState) -> Result<&NotifyState, ApiError> {
    state.notify.as_ref().ok_or(ApiError::NotifyUnavailable)
}

/// Runs a topics operation off the async workers (it may write and fsync).
async fn on_topics<T: Send + 'static>(
    state: &AppState,
    operation: impl FnOnce(&Topics) -> Result<T, NotifyError> + Send + 'static,
) -> Result<T, ApiError> {
    let topics = notify(state)?.topics.clone();
    Ok(tokio::task::spawn_blocking(move || operation(&topics)).await.map_err(ApiError::TaskFailed)??)
}

fn path_value(path: &HashMap<String, String>, name: &str) -> String {
    path.get(name).cloned().unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTopicRequest {
    name: String,
    #[serde(default)]
    display_name: String,
}

pub(crate) async fn create_topic(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request: CreateTopicRequest = json_body(&headers, body)?;
    let project = principal.project_id.clone();
    let topic =
        on_topics(&state, move |topics| topics.create_topic(&project, &request.name, &request.display_name)).await?;
    Ok(Json(json!({"request_id": request_id.as_str(), "topic_urn": topic.topic_urn})))
}

pub(crate) async fn list_topics(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(request_id): Extension<RequestId>,
) -> Result<Json<Value>, ApiError> {
    let topics = notify(&state)?.topics.list_topics(&principal.project_id);
    let listed: Vec<Value> = topics
        .iter()
        .map(|topic| {
            json!({"topic_urn": topic.topic_urn, "name": topic.name, "display_name": topic.display_name,
                   "push_policy": 0, "enterprise_project_id": "0", "topic_id": topic.name,
                   "create_time": topic.create_time})
        })
        .collect();
    Ok(Json(json!({"request_id": request_id.as_str(), "topic_count": listed.len(), "topics": listed})))
}

pub(crate) async fn delete_topic(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(request_id): Extension<RequestId>,
    Path(path): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let urn = path_value(&path, "topic_urn");
    on_topics(&state, move |topics| topics.delete_topic(&principal.project_id, &urn)).await?;
    Ok(Json(json!({"request_id": request_id.as_str()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubscriptionRequest {
    protocol: String,
    endpoint: String,
    #[serde(default)]
    remark: String,
}

pub(crate) async fn add_subscription(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(request_id): Extension<RequestId>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request: SubscriptionRequest = json_body(&headers, body)?;
    let protocol = Protocol::parse(&request.protocol)?;
    let urn = path_value(&path, "topic_urn");
    let subscription = on_topics(&state, move |topics| {
        topics.add_subscription(&principal.project_id, &urn, protocol, &request.endpoint, &request.remark)
    })
    .await?;
    Ok(Json(json!({"request_id": request_id.as_str(), "subscription_urn": subscription.subscription_urn,
                   "signing_secret": subscription.secret})))
}

fn subscription_view(subscription: &Subscription, owner: &str) -> Value {
    json!({"topic_urn": subscription.topic_urn, "protocol": subscription.protocol,
           "subscription_urn": subscription.subscription_urn, "owner": owner, "endpoint": subscription.endpoint,
           "remark": subscription.remark, "status": 1})
}

pub(crate) async fn list_subscriptions(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(request_id): Extension<RequestId>,
    Path(path): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let urn = path_value(&path, "topic_urn");
    let subscriptions = notify(&state)?.topics.list_subscriptions(&principal.project_id, &urn)?;
    let listed: Vec<Value> = subscriptions.iter().map(|s| subscription_view(s, &principal.project_id)).collect();
    Ok(Json(json!({"request_id": request_id.as_str(), "subscription_count": listed.len(), "subscriptions": listed})))
}

pub(crate) async fn delete_subscription(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(request_id): Extension<RequestId>,
    Path(path): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let urn = path_value(&path, "subscription_urn");
    on_topics(&state, move |topics| topics.delete_subscription(&principal.project_id, &urn)).await?;
    Ok(Json(json!({"request_id": request_id.as_str()})))
}

pub(crate) async fn list_dead_letters(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(request_id): Extension<RequestId>,
) -> Result<Json<Value>, ApiError> {
    let letters = notify(&state)?.outbox.dead_letters(&principal.project_id);
    Ok(Json(json!({"request_id": request_id.as_str(), "dead_letters": letters})))
}

/// The project's insight traces (service_type CTS, resource_type insight), newest first.
pub(crate) async fn list_insights(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let params = QueryParams::of(&uri);
    let number = |name: &str, default: i64| -> Result<i64, ApiError> {
        params.get(name)?.map_or(Ok(default), |text| {
            text.parse()
                .map_err(|_| ApiError::InvalidParameter { name: name.to_owned(), reason: "is not a number".into() })
        })
    };
    let now = cts_model::now_ms();
    let query = cts_store::TraceQuery {
        project_id: principal.project_id.clone(),
        data: false,
        tracker_name: None,
        from_ms: number("from", now - 7 * 24 * 3600 * 1000)?,
        to_ms: number("to", now)?,
        filters: cts_store::Filters {
            service_type: Some(cts_model::CTS_SERVICE.into()),
            resource_type: Some(INSIGHT_RESOURCE_TYPE.into()),
            ..Default::default()
        },
        after: None,
        limit: number("limit", 100)?.clamp(1, 1000) as usize,
    };
    let store = state.store.clone();
    let traces = tokio::task::spawn_blocking(move || store.query(&query))
        .await
        .map_err(ApiError::TaskFailed)?
        .map_err(|error| ApiError::ReadFailed(Box::new(error)))?;
    Ok(Json(json!({"insights": traces})))
}
