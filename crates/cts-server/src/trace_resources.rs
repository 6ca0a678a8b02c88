//! What the traces of a project hold, from the store's indexes: ListTraceResources
//! `GET /v3/{domain_id}/resources` (the service types seen, each with its resource types; the
//! caller's domain in the path, the caller's project's traces) and ListUserResources
//! `GET /v3/{project_id}/user-resources` (the users who operated in the last 30 days, as far back
//! as the retention keeps traces).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use cts_iam::Principal;
use cts_store::Store;
use serde::Serialize;

/// How far back ListUserResources looks.
pub const USER_RESOURCES_WINDOW_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Serialize)]
pub(crate) struct ListTraceResourcesResponse {
    resources: Vec<TraceResource>,
}

/// One service type and the resource types of its traces (the SDK's `TraceResource`).
#[derive(Debug, Serialize)]
struct TraceResource {
    service_type: String,
    resource: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ListUserResourcesResponse {
    users: Vec<UserResource>,
}

/// The SDK's `UserResource`.
#[derive(Debug, Serialize)]
struct UserResource {
    name: String,
}

pub(crate) async fn list_trace_resources(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<ListTraceResourcesResponse>, ApiError> {
    let resources = on_store(&state, move |store| store.trace_resources(&principal.project_id, i64::MIN)).await?;
    let resources = resources
        .into_iter()
        .map(|(service_type, resource)| TraceResource { service_type, resource: resource.into_iter().collect() })
        .collect();
    Ok(Json(ListTraceResourcesResponse { resources }))
}

pub(crate) async fn list_user_resources(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<ListUserResourcesResponse>, ApiError> {
    let since_ms = cts_model::now_ms() - USER_RESOURCES_WINDOW_MS;
    let users = on_store(&state, move |store| store.trace_users(&principal.project_id, since_ms)).await?;
    Ok(Json(ListUserResourcesResponse { users: users.into_iter().map(|name| UserResource { name }).collect() }))
}

/// Runs a look-up on the store's indexes off the async runtime.
async fn on_store<T: Send + 'static>(
    state: &AppState,
    lookup: impl FnOnce(&Store) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || lookup(&store)).await.map_err(|error| ApiError::ReadFailed(Box::new(error)))
}
