//! Every way a request can fail, and the one mapping from failure to HTTP
//! status and CTS error code. Bodies are `{"error_code":"CTS.XXXX","error_msg":"..."}`.
//! Internal failures are logged with their cause and answered opaquely.

use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cts_iam::AuthError;
use cts_model::ErrorCode;
use cts_query::QueryError;
use cts_resources::ResourceError;
use cts_store::StoreError;
use serde::Serialize;

/// `Retry-After` of a write refused for want of disk space.
const OUT_OF_SPACE_RETRY_SECONDS: u64 = 30;

/// `Retry-After` of a request that timed out inside cts.
const TIMED_OUT_RETRY_SECONDS: u64 = 5;

/// Why a request failed. `Display` is for logs; clients get [`ApiError::client_message`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication failed: {0}")]
    Unauthenticated(AuthError),
    #[error("access key {access_key} of project {key_project} used on project {path_project}")]
    WrongProject { access_key: String, key_project: String, path_project: String },
    #[error("access key {access_key} with role {role} may not {action}")]
    Forbidden { access_key: String, role: cts_iam::Role, action: cts_iam::Action },
    #[error("a console request without its CSRF token")]
    CsrfTokenMissing,
    #[error("no route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("invalid body: {0}")]
    InvalidBody(String),
    #[error("body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("content type is not application/json")]
    UnsupportedMediaType,
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: String, reason: String },
    #[error("write failed: {0}")]
    WriteFailed(#[source] StoreError),
    #[error("read failed: {0}")]
    ReadFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A tracker (or tag) operation refused, or its state file failing.
    #[error(transparent)]
    Resource(#[from] ResourceError),
    /// A topic, subscription or dead-letter operation refused, or its files failing.
    #[error(transparent)]
    Notify(#[from] cts_notify::NotifyError),
    #[error("key event notification delivery is not running")]
    NotifyUnavailable,
    /// The caller's key or project is over its rate limit.
    #[error("rate limited for {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Too many failed console sign-ins for the name or the source address.
    #[error("console sign-in locked for {retry_after_secs} s")]
    SignInLocked { retry_after_secs: u64 },
    /// The console sessions file could not be written.
    #[error("saving console sessions failed: {0}")]
    SessionsNotSaved(#[source] std::io::Error),
    /// The store refuses writes (the reason is logged, not told).
    #[error("not ready: {0}")]
    NotReady(String),
    /// The request body did not arrive within the read timeout.
    #[error("request body not read within {after:?}")]
    BodyTimedOut { after: std::time::Duration },
    /// The response did not start within the request timeout.
    #[error("no response within {after:?}")]
    TimedOut { after: std::time::Duration },
    #[error("the request's task failed: {0}")]
    TaskFailed(#[source] tokio::task::JoinError),
    /// An SQL query refused or failed ([`crate::queries`]).
    #[cfg(feature = "sql")]
    #[error(transparent)]
    Sql(#[from] cts_sql::SqlError),
    /// This build has no SQL engine (built without the cargo feature `sql`).
    #[cfg(not(feature = "sql"))]
    #[error("SQL queries need a build with the cargo feature sql")]
    SqlNotBuilt,
}

/// The error body of every failed request.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error_code: &'static str,
    pub error_msg: String,
}

impl ApiError {
    /// The single mapping from failure to (HTTP status, CTS error code).
    pub fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, ErrorCode::AuthFailed),
            ApiError::WrongProject { .. } | ApiError::Forbidden { .. } | ApiError::CsrfTokenMissing => {
                (StatusCode::FORBIDDEN, ErrorCode::NoPermission)
            }
            ApiError::NotFound => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::NotFound),
            ApiError::InvalidBody(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidBody),
            ApiError::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::InvalidBody),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::InvalidBody),
            ApiError::InvalidParameter { .. } => (StatusCode::BAD_REQUEST, ErrorCode::QueryFailed),
            ApiError::WriteFailed(StoreError::OutOfSpace { .. } | StoreError::Poisoned { .. })
            | ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            ApiError::WriteFailed(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::WriteFailed),
            ApiError::RateLimited { .. } | ApiError::SignInLocked { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests)
            }
            ApiError::SessionsNotSaved(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::WriteFailed),
            ApiError::BodyTimedOut { .. } => (StatusCode::REQUEST_TIMEOUT, ErrorCode::RequestTimeout),
            ApiError::TimedOut { .. } => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            ApiError::ReadFailed(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ReadFailed),
            ApiError::TaskFailed(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::WriteFailed),
            ApiError::NotifyUnavailable => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            #[cfg(feature = "sql")]
            ApiError::Sql(error) if error.is_internal() => (StatusCode::INTERNAL_SERVER_ERROR, error.code()),
            #[cfg(feature = "sql")]
            ApiError::Sql(error) => (StatusCode::BAD_REQUEST, error.code()),
            #[cfg(not(feature = "sql"))]
            ApiError::SqlNotBuilt => (StatusCode::NOT_IMPLEMENTED, ErrorCode::Unavailable),
            ApiError::Notify(error) => crate::topics::status_and_code(error),
            ApiError::Resource(error) => {
                let bad_request = |code| (StatusCode::BAD_REQUEST, code);
                match error {
                    ResourceError::QuotaExceeded { .. } => bad_request(ErrorCode::TrackerQuotaExceeded),
                    ResourceError::ManagementTrackerExists => bad_request(ErrorCode::ManagementTrackerExists),
                    ResourceError::InvalidTrackerType(_) | ResourceError::SystemTrackerNotDeletable => {
                        bad_request(ErrorCode::InvalidTrackerType)
                    }
                    ResourceError::InvalidTrackerName(_) => bad_request(ErrorCode::InvalidTrackerName),
                    ResourceError::ManagementTrackerName(_) => bad_request(ErrorCode::ManagementTrackerName),
                    ResourceError::InvalidStatus(_) => bad_request(ErrorCode::InvalidTrackerStatus),
                    ResourceError::DataBucketOnManagementTracker => {
                        bad_request(ErrorCode::DataBucketOnManagementTracker)
                    }
                    ResourceError::DataTrackerNamedSystem => bad_request(ErrorCode::DataTrackerNamedSystem),
                    ResourceError::TrackerExists(_) => bad_request(ErrorCode::TrackerExists),
                    ResourceError::TrackerNotFound { .. } | ResourceError::TrackerIdNotFound(_) => {
                        (StatusCode::NOT_FOUND, ErrorCode::TrackerNotFound)
                    }
                    ResourceError::InvalidFilePrefix(_) => bad_request(ErrorCode::InvalidFilePrefix),
                    ResourceError::InvalidBucketName { .. } => bad_request(ErrorCode::InvalidBucketName),
                    ResourceError::InvalidField { .. } => bad_request(ErrorCode::InvalidBody),
                    ResourceError::NotificationQuotaExceeded { .. } => bad_request(ErrorCode::TrackerQuotaExceeded),
                    ResourceError::NotificationNameExists(_) => bad_request(ErrorCode::NotificationNameExists),
                    ResourceError::NotificationNotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
                    ResourceError::Write { .. } => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::WriteFailed),
                    ResourceError::Read { .. } | ResourceError::Corrupt { .. } => {
                        (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ReadFailed)
                    }
                }
            }
        }
    }

    /// Whether the failure is cts's own (logged as an error, answered opaquely).
    fn is_internal(&self) -> bool {
        self.status_and_code().0.is_server_error()
    }

    /// What the client is told: enough to fix its request, nothing about internals.
    pub fn client_message(&self) -> String {
        match self {
            ApiError::Unauthenticated(error) => format!("authentication failed: {}", error.client_message()),
            ApiError::WrongProject { .. } => "the access key does not belong to the project in the path".to_owned(),
            ApiError::Forbidden { role, action, .. } => format!("the role {role} does not allow {action}"),
            ApiError::CsrfTokenMissing => {
                "a console request that is not GET needs the X-CSRF-Token header given at sign-in".to_owned()
            }
            ApiError::NotFound => "the requested resource does not exist".to_owned(),
            ApiError::MethodNotAllowed => "the method is not allowed on this resource".to_owned(),
            ApiError::InvalidBody(reason) => reason.clone(),
            ApiError::BodyTooLarge { limit } => format!("the request body is larger than {limit} bytes"),
            ApiError::UnsupportedMediaType => "the request body must be application/json".to_owned(),
            ApiError::InvalidParameter { name, reason } => format!("invalid parameter {name}: {reason}"),
            ApiError::WriteFailed(StoreError::OutOfSpace { .. }) => {
                "cts is out of disk space: nothing of this request was stored; retry once space is freed".to_owned()
            }
            ApiError::WriteFailed(StoreError::Poisoned { .. }) | ApiError::NotReady(_) => {
                "cts refuses writes after a failed disk write or fsync; an operator must restart it".to_owned()
            }
            ApiError::WriteFailed(_) => "the traces could not be stored; nothing was acknowledged".to_owned(),
            ApiError::RateLimited { retry_after_secs } => {
                format!("too many requests for this access key or project; retry in {retry_after_secs} s")
            }
            ApiError::SignInLocked { retry_after_secs } => {
                format!("too many failed sign-ins for this name or address; retry in {retry_after_secs} s")
            }
            ApiError::SessionsNotSaved(_) => "the session could not be saved; sign in again".to_owned(),
            ApiError::BodyTimedOut { after } => {
                format!("the request body did not arrive within {} s; nothing was stored", after.as_secs_f64())
            }
            ApiError::TimedOut { after } => format!(
                "cts did not answer within {} s; a write may still complete, so retry with the same trace ids",
                after.as_secs_f64()
            ),
            ApiError::ReadFailed(_) => "the traces could not be read".to_owned(),
            ApiError::TaskFailed(_) => "the request failed inside cts".to_owned(),
            ApiError::Resource(error) if self.is_internal() => {
                format!(
                    "the project's resources could not be {}",
                    if matches!(error, ResourceError::Write { .. }) { "saved; nothing changed" } else { "read" }
                )
            }
            ApiError::Resource(error) => error.to_string(),
            ApiError::Notify(_) if self.is_internal() => {
                "the topics or the outbox could not be read or saved".to_owned()
            }
            ApiError::Notify(error) => error.to_string(),
            ApiError::NotifyUnavailable => "key event notification delivery is not running".to_owned(),
            #[cfg(feature = "sql")]
            ApiError::Sql(_) if self.is_internal() => "the query failed inside cts".to_owned(),
            #[cfg(feature = "sql")]
            ApiError::Sql(error) => error.to_string(),
            #[cfg(not(feature = "sql"))]
            ApiError::SqlNotBuilt => {
                "this build of cts has no SQL: build it with `cargo build --release --features sql`".to_owned()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            _ if self.is_internal() => {
                tracing::error!(error = %self, error_code = code.as_str(), "request failed inside cts");
            }
            ApiError::Unauthenticated(_) | ApiError::WrongProject { .. } | ApiError::Forbidden { .. } => {
                tracing::info!(reason = %self, error_code = code.as_str(), "request refused");
            }
            _ => tracing::debug!(reason = %self, error_code = code.as_str(), "request refused"),
        }
        let mut response =
            (status, Json(ErrorBody { error_code: code.as_str(), error_msg: self.client_message() })).into_response();
        let retry_after = match self {
            ApiError::WriteFailed(StoreError::OutOfSpace { .. }) => Some(OUT_OF_SPACE_RETRY_SECONDS),
            ApiError::RateLimited { retry_after_secs } | ApiError::SignInLocked { retry_after_secs } => {
                Some(retry_after_secs)
            }
            ApiError::TimedOut { .. } => Some(TIMED_OUT_RETRY_SECONDS),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if let Some(after) = crate::deadline::body_timeout(&rejection) {
            return ApiError::BodyTimedOut { after };
        }
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge { limit: crate::MAX_BODY_BYTES },
            _ => ApiError::InvalidBody(format!("the request body could not be read: {}", rejection.body_text())),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::InvalidParameter { name, reason } => ApiError::InvalidParameter { name, reason },
            QueryError::UnknownMarker(marker) => {
                ApiError::InvalidParameter { name: "next".to_owned(), reason: format!("unknown marker {marker}") }
            }
            QueryError::Store(error) => ApiError::ReadFailed(Box::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cts_iam::sign::SignatureError;

    fn store_failure() -> StoreError {
        StoreError::Io { path: "/secret/data/wal/000001.wal".into(), source: std::io::Error::other("disk on fire") }
    }

    #[test]
    fn every_error_maps_to_its_status_and_code() {
        let cases = [
            (ApiError::Unauthenticated(AuthError::UnknownAccessKey("AK".into())), 401, "CTS.0002"),
            (
                ApiError::WrongProject { access_key: "AK".into(), key_project: "a".into(), path_project: "b".into() },
                403,
                "CTS.0013",
            ),
            (
                ApiError::Forbidden {
                    access_key: "AK".into(),
                    role: cts_iam::Role::Reporter,
                    action: cts_iam::Action::TraceList,
                },
                403,
                "CTS.0013",
            ),
            (ApiError::NotFound, 404, "CTS.0404"),
            (ApiError::MethodNotAllowed, 405, "CTS.0404"),
            (ApiError::InvalidBody("bad".into()), 400, "CTS.0003"),
            (ApiError::BodyTooLarge { limit: 1 }, 413, "CTS.0003"),
            (ApiError::UnsupportedMediaType, 415, "CTS.0003"),
            (ApiError::InvalidParameter { name: "limit".into(), reason: "bad".into() }, 400, "CTS.0300"),
            (ApiError::WriteFailed(store_failure()), 500, "CTS.0004"),
            (ApiError::ReadFailed(Box::new(store_failure())), 500, "CTS.0005"),
            (QueryError::UnknownMarker("m".into()).into(), 400, "CTS.0300"),
            (QueryError::Store(store_failure()).into(), 500, "CTS.0005"),
            (resource_write_failure().into(), 500, "CTS.0004"),
            (
                ResourceError::Corrupt { path: "/secret/state.json".into(), reason: "eof".into() }.into(),
                500,
                "CTS.0005",
            ),
            (ResourceError::SystemTrackerNotDeletable.into(), 400, "CTS.0202"),
            (ResourceError::TrackerIdNotFound("id".into()).into(), 404, "CTS.0214"),
            (ResourceError::NotificationQuotaExceeded { limit: 100 }.into(), 400, "CTS.0200"),
            (ResourceError::NotificationNameExists("n".into()).into(), 400, "CTS.0400"),
            (ResourceError::NotificationNotFound("id".into()).into(), 404, "CTS.0404"),
        ];
        for (error, status, code) in cases {
            let (actual_status, actual_code) = error.status_and_code();
            assert_eq!((actual_status.as_u16(), actual_code.as_str()), (status, code), "{error}");
        }
    }

    fn resource_write_failure() -> ResourceError {
        ResourceError::Write {
            path: "/secret/data/resources/state.json".into(),
            source: std::io::Error::other("disk on fire"),
        }
    }

    #[test]
    fn internal_failures_are_opaque_to_clients() {
        for error in [
            ApiError::WriteFailed(store_failure()),
            ApiError::ReadFailed(Box::new(store_failure())),
            resource_write_failure().into(),
        ] {
            let message = error.client_message();
            assert!(!message.contains("disk") && !message.contains("/secret"), "{message}");
            assert!(error.to_string().contains("disk on fire"), "the log line keeps the cause");
        }
    }

    #[cfg(feature = "sql")]
    #[test]
    fn sql_faults_are_query_errors_and_engine_failures_opaque() {
        let refused = ApiError::Sql(cts_sql::SqlError::NotSelect("DROP TABLE is not a query".into()));
        assert_eq!(refused.status_and_code(), (StatusCode::BAD_REQUEST, ErrorCode::QueryFailed));
        assert!(refused.client_message().contains("DROP TABLE"));
        let failed = ApiError::Sql(cts_sql::SqlError::Store(store_failure()));
        assert_eq!(failed.status_and_code(), (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::ReadFailed));
        assert!(!failed.client_message().contains("disk") && !failed.client_message().contains("/secret"));
    }

    #[test]
    fn signature_details_that_help_forgers_are_hidden() {
        let mismatch = ApiError::Unauthenticated(AuthError::Signature(SignatureError::SignatureMismatch));
        let unknown = ApiError::Unauthenticated(AuthError::UnknownAccessKey("AK".into()));
        assert_eq!(mismatch.client_message(), unknown.client_message());
        let skew = ApiError::Unauthenticated(AuthError::Signature(SignatureError::ClockSkew));
        assert!(skew.client_message().contains("15 minutes"));
    }
}
