//! Why an operation on a project's resources was refused or failed.

use std::path::PathBuf;

/// A refused request (each kind has its own CTS error code, chosen in
/// `cts-server`) or a failure to read or write the state file.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("the project already has {limit} data trackers, the most it may have")]
    QuotaExceeded { limit: usize },
    #[error("the management tracker already exists: every project has exactly one, named system")]
    ManagementTrackerExists,
    #[error("tracker_type {0:?} is invalid: it must be system or data")]
    InvalidTrackerType(String),
    #[error("the system tracker cannot be deleted; only data trackers can")]
    SystemTrackerNotDeletable,
    #[error("tracker_name {0:?} is invalid: it must be 1-32 characters of A-Z, a-z, 0-9, '-', '_', not starting with '-' or '_'")]
    InvalidTrackerName(String),
    #[error("tracker_name {0:?} is invalid: the management tracker is named system")]
    ManagementTrackerName(String),
    #[error("status {0:?} is invalid: it must be enabled or disabled")]
    InvalidStatus(String),
    #[error("data_bucket applies to data trackers only, not to the management tracker")]
    DataBucketOnManagementTracker,
    #[error("tracker_name system is reserved for the management tracker")]
    DataTrackerNamedSystem,
    #[error("a data tracker named {0:?} already exists")]
    TrackerExists(String),
    #[error("no {tracker_type} tracker named {name:?} exists in this project")]
    TrackerNotFound { tracker_type: &'static str, name: String },
    #[error("no tracker with id {0:?} exists in this project")]
    TrackerIdNotFound(String),
    #[error("the project already has {limit} key event notifications, the most it may have")]
    NotificationQuotaExceeded { limit: usize },
    #[error("a key event notification named {0:?} already exists")]
    NotificationNameExists(String),
    #[error("no key event notification with id {0:?} exists in this project")]
    NotificationNotFound(String),
    #[error("obs_info.file_prefix_name {0:?} is invalid: it must be 0-64 characters of A-Z, a-z, 0-9, '-', '.', '_'")]
    InvalidFilePrefix(String),
    #[error(
        "{field} {name:?} is invalid: a bucket name is 3-63 characters of a-z, 0-9, '-', '.', starts and ends with a \
         letter or digit, has no '..', '.-' or '-.', and is not an IP address"
    )]
    InvalidBucketName { field: &'static str, name: String },
    /// Any other invalid field (answered as an invalid body).
    #[error("{field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("writing {path} failed: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("reading {path} failed: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl ResourceError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> ResourceError {
        ResourceError::InvalidField { field, reason: reason.into() }
    }
}
