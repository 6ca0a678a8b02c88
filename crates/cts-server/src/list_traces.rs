//! `GET /v3/{project_id}/traces`: ListTraces, parameters as the SDK sends them.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::Uri;
use axum::{Extension, Json};
use cts_iam::sign::parse_query_string;
use cts_iam::Principal;
use cts_query::{ListTraces, ListTracesResponse};

pub(crate) async fn list_traces(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<Json<ListTracesResponse>, ApiError> {
    let pairs = parse_query_string(uri.query().unwrap_or(""));
    let query = ListTraces::parse(&principal.project_id, &pairs, cts_model::now_ms())?;
    let store = state.store.clone();
    let response = tokio::task::spawn_blocking(move || query.run(&store))
        .await
        .map_err(|join_error| ApiError::ReadFailed(Box::new(join_error)))??;
    Ok(Json(response))
}
