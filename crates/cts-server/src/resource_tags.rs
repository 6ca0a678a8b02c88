//! Resource tags: BatchCreateResourceTags `POST /v3/{project_id}/{resource_type}/{resource_id}/tags/create`
//! and BatchDeleteResourceTags `DELETE .../tags/delete`, both with a body
//! `{"tags":[{"key","value"}]}` and answered 204. The only resource type is
//! `cts-tracker`, the resource id a tracker's id.

use crate::error::ApiError;
use crate::extract::json_body;
use crate::trackers::on_project;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use cts_iam::Principal;
use cts_resources::{TagsRequest, TRACKER_RESOURCE_TYPE};

/// The path parameters of both calls.
type TagPath = Path<(String, String, String)>;

pub(crate) async fn create_tags(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((_, resource_type, tracker_id)): TagPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    check_resource_type(&resource_type)?;
    let request: TagsRequest = json_body(&headers, body)?;
    on_project(&state, principal, move |resources, project| resources.add_tags(project, &tracker_id, &request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete_tags(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((_, resource_type, tracker_id)): TagPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    check_resource_type(&resource_type)?;
    let request: TagsRequest = json_body(&headers, body)?;
    on_project(&state, principal, move |resources, project| resources.remove_tags(project, &tracker_id, &request))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_resource_type(resource_type: &str) -> Result<(), ApiError> {
    if resource_type == TRACKER_RESOURCE_TYPE {
        Ok(())
    } else {
        Err(ApiError::InvalidParameter {
            name: "resource_type".to_owned(),
            reason: format!("{resource_type:?} is not a CTS resource type; the only one is {TRACKER_RESOURCE_TYPE}"),
        })
    }
}
