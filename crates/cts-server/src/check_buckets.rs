//! CheckObsBuckets `POST /v3/{domain_id}/checkbucket`: whether each bucket exists in the configured
//! S3-compatible store and cts's credentials may use it. Each bucket gets its own result, mirroring the store's
//! answer (HTTP status and S3 error code); a request that is not a list of buckets is refused as a whole.

use crate::error::ApiError;
use crate::extract::json_body;
use crate::AppState;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use bytes::Bytes;
use cts_model::ErrorCode;
use cts_obs::{validate_bucket_name, BucketCheck};
use serde::{Deserialize, Serialize};

/// Buckets one request may check.
const MAX_BUCKETS: usize = 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckBucketsRequest {
    buckets: Vec<BucketToCheck>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BucketToCheck {
    bucket_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bucket_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kms_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_support_trace_files_encryption: Option<bool>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CheckBucketsResponse {
    buckets: Vec<CheckedBucket>,
}

#[derive(Debug, Serialize)]
struct CheckedBucket {
    #[serde(flatten)]
    bucket: BucketToCheck,
    check_bucket_response: CheckResult,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
struct CheckResult {
    success: bool,
    response_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

impl CheckResult {
    fn failed(response_code: u16, error_code: &str, error_message: String) -> CheckResult {
        CheckResult {
            success: false,
            response_code,
            error_code: Some(error_code.to_owned()),
            error_message: Some(error_message),
        }
    }
}

pub(crate) async fn check_buckets(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CheckBucketsResponse>, ApiError> {
    let request: CheckBucketsRequest = json_body(&headers, body)?;
    if request.buckets.is_empty() || request.buckets.len() > MAX_BUCKETS {
        return Err(ApiError::InvalidBody(format!("buckets must list 1 to {MAX_BUCKETS} buckets")));
    }
    let checks = request.buckets.into_iter().map(|bucket| {
        let state = state.clone();
        async move {
            let check_bucket_response = check(&state, &bucket.bucket_name).await;
            CheckedBucket { bucket, check_bucket_response }
        }
    });
    Ok(Json(CheckBucketsResponse { buckets: futures_util::future::join_all(checks).await }))
}

async fn check(state: &AppState, bucket: &str) -> CheckResult {
    if let Err(error) = validate_bucket_name(bucket) {
        return CheckResult::failed(400, ErrorCode::InvalidBucketName.as_str(), error.to_string());
    }
    let Some(obs) = &state.obs else {
        let message = "no object store is configured (CTS_OBS_ENDPOINT and its credentials)".to_owned();
        return CheckResult::failed(503, ErrorCode::Unavailable.as_str(), message);
    };
    match obs.check_bucket(bucket).await {
        Ok(BucketCheck::Usable) => {
            CheckResult { success: true, response_code: 200, error_code: None, error_message: None }
        }
        Ok(BucketCheck::Refused { status, code }) => {
            let message = format!("the object store answered {status} {code} for bucket {bucket}");
            CheckResult::failed(status, &code, message)
        }
        Ok(BucketCheck::Unreachable(reason)) => {
            tracing::warn!(bucket, %reason, "object store unreachable");
            CheckResult::failed(503, ErrorCode::Unavailable.as_str(), "the object store is unreachable".to_owned())
        }
        Err(error) => {
            tracing::error!(bucket, %error, "checking a bucket failed");
            CheckResult::failed(500, ErrorCode::ReadFailed.as_str(), "the bucket could not be checked".to_owned())
        }
    }
}
