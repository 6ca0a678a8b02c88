//! CTS error codes and the validation error of a single trace.

use std::fmt;

/// The CTS error codes cts answers with (`{"error_code":"CTS.XXXX",...}`).
/// Which HTTP status goes with each is decided in one place, in `cts-server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Authentication failed (bad, missing or expired signature; unknown key).
    AuthFailed,
    /// The request body is empty, malformed or invalid.
    InvalidBody,
    /// A write failed inside cts.
    WriteFailed,
    /// A read failed inside cts.
    ReadFailed,
    /// The caller lacks the permission.
    NoPermission,
    /// A query parameter is invalid or the query failed.
    QueryFailed,
    /// The resource or path does not exist.
    NotFound,
    /// The service cannot take writes now (overloaded, disk full, shutting down).
    Unavailable,
    /// The caller's access key or project sent more requests than its rate limit allows.
    TooManyRequests,
    /// The request's headers or body did not arrive in time.
    RequestTimeout,
    /// The project has as many trackers (or key event notifications) as it may have.
    TrackerQuotaExceeded,
    /// The management tracker exists already (there is exactly one).
    ManagementTrackerExists,
    /// `tracker_type` is not system or data (or names a type the call cannot act on).
    InvalidTrackerType,
    /// `tracker_name` is not 1-32 of `[A-Za-z0-9_-]` starting with a letter or digit.
    InvalidTrackerName,
    /// The management tracker is named `system`.
    ManagementTrackerName,
    /// `status` is not enabled or disabled.
    InvalidTrackerStatus,
    /// `data_bucket` was sent for the management tracker.
    DataBucketOnManagementTracker,
    /// A data tracker may not be named `system`.
    DataTrackerNamedSystem,
    /// A tracker of that name exists already.
    TrackerExists,
    /// No such tracker.
    TrackerNotFound,
    /// `obs_info.file_prefix_name` is invalid.
    InvalidFilePrefix,
    /// A bucket name is invalid.
    InvalidBucketName,
    /// A key event notification of that name exists already.
    NotificationNameExists,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthFailed => "CTS.0002",
            ErrorCode::InvalidBody => "CTS.0003",
            ErrorCode::WriteFailed => "CTS.0004",
            ErrorCode::ReadFailed => "CTS.0005",
            ErrorCode::NoPermission => "CTS.0013",
            ErrorCode::QueryFailed => "CTS.0300",
            ErrorCode::NotFound => "CTS.0404",
            ErrorCode::Unavailable => "CTS.0503",
            ErrorCode::TooManyRequests => "CTS.0429",
            ErrorCode::RequestTimeout => "CTS.0408",
            ErrorCode::TrackerQuotaExceeded => "CTS.0200",
            ErrorCode::ManagementTrackerExists => "CTS.0201",
            ErrorCode::InvalidTrackerType => "CTS.0202",
            ErrorCode::InvalidTrackerName => "CTS.0203",
            ErrorCode::ManagementTrackerName => "CTS.0204",
            ErrorCode::InvalidTrackerStatus => "CTS.0205",
            ErrorCode::DataBucketOnManagementTracker => "CTS.0206",
            ErrorCode::DataTrackerNamedSystem => "CTS.0207",
            ErrorCode::TrackerExists => "CTS.0208",
            ErrorCode::TrackerNotFound => "CTS.0214",
            ErrorCode::InvalidFilePrefix => "CTS.0218",
            ErrorCode::InvalidBucketName => "CTS.0231",
            ErrorCode::NotificationNameExists => "CTS.0400",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one incoming trace was refused: the field (a JSON path such as
/// `user.access_key_id`) and the rule it broke. Its error code is CTS.0003.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ValidationError { field: field.into(), reason: reason.into() }
    }

    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidBody
    }
}
