//! `POST /v3/{project_id}/traces`: a batch of up to [`MAX_TRACES_PER_REQUEST`]
//! traces, each validated on its own. The valid ones are acknowledged only
//! after the store made them durable; a retried batch is accepted again but
//! stored once (the store is idempotent on trace ids).

use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::{Extension, Json};
use cts_iam::Principal;
use cts_model::{Trace, TraceInput};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The most traces one ingest request may carry.
pub const MAX_TRACES_PER_REQUEST: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestRequest<'a> {
    #[serde(borrow)]
    traces: Vec<&'a RawValue>,
}

/// The answer to an ingest request: which traces were stored (durably) and
/// which were refused, by their index in the request.
#[derive(Debug, Serialize)]
pub struct IngestResponse {
    pub accepted: Vec<AcceptedTrace>,
    pub rejected: Vec<RejectedTrace>,
}

#[derive(Debug, Serialize)]
pub struct AcceptedTrace {
    pub trace_id: String,
}

#[derive(Debug, Serialize)]
pub struct RejectedTrace {
    pub index: usize,
    pub error_code: &'static str,
    /// `field: reason`.
    pub error_msg: String,
}

/// The traces of one ingest request body, each validated on its own.
#[derive(Debug)]
pub struct ValidatedBatch {
    /// The valid traces, completed for storage, in request order.
    pub valid: Vec<Trace>,
    /// The refused traces, by index in the request.
    pub rejected: Vec<RejectedTrace>,
}

/// Parses an ingest body `{"traces": [...]}` and validates every trace for
/// `project_id`, recorded at `record_time`. A body that is not such an
/// envelope (or carries too many traces) fails as a whole; a bad trace is
/// only listed in [`ValidatedBatch::rejected`].
pub fn validate_batch(body: &[u8], project_id: &str, record_time: i64) -> Result<ValidatedBatch, ApiError> {
    let request: IngestRequest<'_> = serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidBody(format!("the body must be a JSON object {{\"traces\": [...]}}: {e}")))?;
    if request.traces.len() > MAX_TRACES_PER_REQUEST {
        return Err(ApiError::InvalidBody(format!(
            "at most {MAX_TRACES_PER_REQUEST} traces per request, got {}",
            request.traces.len()
        )));
    }
    let mut valid = Vec::with_capacity(request.traces.len());
    let mut rejected = Vec::new();
    for (index, raw) in request.traces.iter().enumerate() {
        match TraceInput::from_json(raw.get()).and_then(|input| input.into_trace(project_id, record_time)) {
            Ok(trace) => valid.push(trace),
            Err(error) => {
                rejected.push(RejectedTrace { index, error_code: error.code().as_str(), error_msg: error.to_string() })
            }
        }
    }
    Ok(ValidatedBatch { valid, rejected })
}

pub(crate) async fn ingest(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    if !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body?;
    if body.is_empty() {
        return Err(ApiError::InvalidBody("the request body is empty".to_owned()));
    }
    let ValidatedBatch { valid, rejected } = validate_batch(&body, &principal.project_id, cts_model::now_ms())?;
    let accepted = valid.iter().map(|trace| AcceptedTrace { trace_id: trace.trace_id.clone() }).collect();
    if !valid.is_empty() {
        let outcome = state.store.append(valid).await.map_err(ApiError::WriteFailed)?;
        tracing::debug!(stored = outcome.stored, duplicates = outcome.duplicates, "traces appended");
    }
    Ok(Json(IngestResponse { accepted, rejected }))
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let cases = [
            (Some("application/json"), true),
            (Some("application/json; charset=utf-8"), true),
            (Some("Application/JSON;charset=UTF-8"), true),
            (Some("application/jsonx"), false),
            (Some("text/plain"), false),
            (None, false),
        ];
        for (content_type, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = content_type {
                headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            }
            assert_eq!(is_json(&headers), expected, "{content_type:?}");
        }
    }
}
