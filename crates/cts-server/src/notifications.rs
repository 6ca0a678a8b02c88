//! The key event notification routes: CreateNotification `POST /v3/{project_id}/notifications`
//! (201), UpdateNotification `PUT /v3/{project_id}/notifications` (200, only the fields sent
//! change), DeleteNotification `DELETE /v3/{project_id}/notifications?notification_id=a,b` (204)
//! and ListNotifications `GET /v3/{project_id}/notifications/{notification_type}?notification_name`.
//! A notification of another project answers as one that does not exist (404).

use crate::error::ApiError;
use crate::extract::{json_body, QueryParams};
use crate::trackers::on_project;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::{Extension, Json};
use cts_iam::Principal;
use cts_resources::{Notification, NotificationRequest, NotificationType};
use serde::Serialize;
use std::collections::HashMap;

pub(crate) async fn create_notification(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Notification>), ApiError> {
    let request: NotificationRequest = json_body(&headers, body)?;
    let notification =
        on_project(&state, principal, move |resources, project| resources.create_notification(project, &request))
            .await?;
    Ok((StatusCode::CREATED, Json(notification)))
}

pub(crate) async fn update_notification(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Notification>, ApiError> {
    let request: NotificationRequest = json_body(&headers, body)?;
    let notification =
        on_project(&state, principal, move |resources, project| resources.update_notification(project, &request))
            .await?;
    Ok(Json(notification))
}

pub(crate) async fn delete_notifications(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    let ids = notification_ids(QueryParams::of(&uri).get("notification_id")?)?;
    let deleted = on_project(&state, principal, move |resources, project| {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        resources.delete_notifications(project, &ids)
    })
    .await?;
    tracing::info!(deleted, "notifications deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The ids of `notification_id=a,b`: at least one, none empty, each once.
fn notification_ids(parameter: Option<&str>) -> Result<Vec<String>, ApiError> {
    let invalid = |reason: &str| ApiError::InvalidParameter { name: "notification_id".into(), reason: reason.into() };
    let mut ids: Vec<String> = Vec::new();
    for id in parameter.ok_or_else(|| invalid("is required"))?.split(',').map(str::trim) {
        if id.is_empty() {
            return Err(invalid("holds an empty id"));
        }
        if !ids.iter().any(|seen| seen == id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

#[derive(Serialize)]
pub(crate) struct ListNotificationsResponse {
    notifications: Vec<Notification>,
}

pub(crate) async fn list_notifications(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(path): Path<HashMap<String, String>>,
    uri: Uri,
) -> Result<Json<ListNotificationsResponse>, ApiError> {
    let notification_type = path.get("notification_type").map(String::as_str).unwrap_or_default();
    let listed = NotificationType::parse_listed(notification_type).map_err(|error| ApiError::InvalidParameter {
        name: "notification_type".to_owned(),
        reason: error.to_string(),
    })?;
    let name = QueryParams::of(&uri).get("notification_name")?.map(str::to_owned);
    let notifications = match listed {
        Some(NotificationType::Smn) => {
            on_project(&state, principal, move |resources, project| {
                resources.list_notifications(project, name.as_deref())
            })
            .await?
        }
        None => Vec::new(),
    };
    Ok(Json(ListNotificationsResponse { notifications }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_are_split_on_commas() {
        assert_eq!(notification_ids(Some("a,b")).unwrap(), ["a", "b"]);
        assert_eq!(notification_ids(Some(" a , a ")).unwrap(), ["a"]);
        for bad in [None, Some("a,,b"), Some(",")] {
            assert!(notification_ids(bad).is_err(), "{bad:?}");
        }
    }
}
