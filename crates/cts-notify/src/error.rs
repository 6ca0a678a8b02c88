//! Why a notification operation failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A request field is missing or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("a topic named {0:?} already exists")]
    TopicExists(String),
    #[error("no topic {0}")]
    TopicNotFound(String),
    #[error("no subscription {0}")]
    SubscriptionNotFound(String),
    #[error("at most {limit} {what}")]
    QuotaExceeded { what: &'static str, limit: usize },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: the secret of {what} does not open with this master key (wrong key or damaged data)")]
    Unseal { path: PathBuf, what: String },
    #[error("a background task failed: {0}")]
    Task(String),
    #[error("reading the store: {0}")]
    Store(#[from] cts_store::StoreError),
}

impl NotifyError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> NotifyError {
        NotifyError::InvalidField { field, reason: reason.into() }
    }
}
