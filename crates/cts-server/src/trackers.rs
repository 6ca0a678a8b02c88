//! The tracker routes: CreateTracker `POST /v3/{project_id}/tracker` (201),
//! UpdateTracker `PUT /v3/{project_id}/tracker` (200, only the fields sent
//! change), ListTrackers `GET /v3/{project_id}/trackers` and DeleteTracker
//! `DELETE /v3/{project_id}/trackers` (204), both with `tracker_name` and
//! `tracker_type`; and ListQuotas `GET /v3/{project_id}/quotas`.

use crate::error::ApiError;
use crate::extract::{json_body, QueryParams};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::{Extension, Json};
use cts_iam::Principal;
use cts_resources::{ProjectScope, Quota, ResourceError, Resources, Tracker, TrackerRequest, TrackerType};
use cts_transfer::{Delivery, HISTORY_LIMIT};
use serde::Serialize;
use std::collections::HashMap;

/// Runs `operation` on the caller's project off the async runtime (changes fsync the state file).
pub(crate) async fn on_project<T: Send + 'static>(
    state: &AppState,
    principal: Principal,
    operation: impl FnOnce(&Resources, ProjectScope<'_>) -> Result<T, ResourceError> + Send + 'static,
) -> Result<T, ApiError> {
    let resources = state.resources.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let project = ProjectScope { project_id: &principal.project_id, domain_id: &principal.domain_id };
        operation(&resources, project)
    })
    .await
    .map_err(ApiError::TaskFailed)?;
    Ok(outcome?)
}

pub(crate) async fn create_tracker(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Tracker>), ApiError> {
    let request: TrackerRequest = json_body(&headers, body)?;
    let tracker =
        on_project(&state, principal, move |resources, project| resources.create_tracker(project, &request)).await?;
    Ok((StatusCode::CREATED, Json(tracker)))
}

pub(crate) async fn update_tracker(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Tracker>, ApiError> {
    let request: TrackerRequest = json_body(&headers, body)?;
    let tracker =
        on_project(&state, principal, move |resources, project| resources.update_tracker(project, &request)).await?;
    Ok(Json(tracker))
}

#[derive(Serialize)]
pub(crate) struct ListTrackersResponse {
    trackers: Vec<Tracker>,
}

pub(crate) async fn list_trackers(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<Json<ListTrackersResponse>, ApiError> {
    let (tracker_name, tracker_type) = name_and_type(&uri)?;
    let trackers = on_project(&state, principal, move |resources, project| {
        resources.list_trackers(project, tracker_name.as_deref(), tracker_type)
    })
    .await?;
    Ok(Json(ListTrackersResponse { trackers }))
}

pub(crate) async fn delete_trackers(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    let (tracker_name, tracker_type) = name_and_type(&uri)?;
    let deleted = on_project(&state, principal, move |resources, project| {
        resources.delete_trackers(project, tracker_name.as_deref(), tracker_type)
    })
    .await?;
    tracing::info!(deleted, "data trackers deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// How many deliveries ListTrackerDeliveries answers without a `limit`.
const DEFAULT_DELIVERIES: usize = 50;

#[derive(Serialize)]
pub(crate) struct ListDeliveriesResponse {
    deliveries: Vec<Delivery>,
    tracker_name: String,
}

pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(path): Path<HashMap<String, String>>,
    uri: Uri,
) -> Result<Json<ListDeliveriesResponse>, ApiError> {
    let limit = match QueryParams::of(&uri).get("limit")? {
        None => DEFAULT_DELIVERIES,
        Some(text) => text.parse().ok().filter(|limit| (1..=HISTORY_LIMIT).contains(limit)).ok_or_else(|| {
            ApiError::InvalidParameter { name: "limit".to_owned(), reason: format!("must be 1-{HISTORY_LIMIT}") }
        })?,
    };
    let tracker_name = path.get("tracker_name").cloned().unwrap_or_default();
    let name = tracker_name.clone();
    let tracker = on_project(&state, principal, move |resources, project| {
        let found = resources.list_trackers(project, Some(&name), None)?.into_iter().next();
        found.ok_or(ResourceError::TrackerNotFound { tracker_type: "data", name })
    })
    .await?;
    let deliveries = state.deliveries.as_ref().map(|history| history.recent(&tracker.id, limit)).unwrap_or_default();
    Ok(Json(ListDeliveriesResponse { deliveries, tracker_name }))
}

/// The `tracker_name` and `tracker_type` query parameters.
fn name_and_type(uri: &Uri) -> Result<(Option<String>, Option<TrackerType>), ApiError> {
    let params = QueryParams::of(uri);
    let tracker_type = params.get("tracker_type")?.map(str::parse::<TrackerType>).transpose()?;
    Ok((params.get("tracker_name")?.map(str::to_owned), tracker_type))
}

#[derive(Serialize)]
pub(crate) struct ListQuotasResponse {
    resources: Vec<Quota>,
}

pub(crate) async fn list_quotas(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<ListQuotasResponse>, ApiError> {
    let resources = on_project(&state, principal, |resources, project| resources.quotas(project)).await?;
    Ok(Json(ListQuotasResponse { resources }))
}
