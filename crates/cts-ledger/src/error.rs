//! The ledger's error type.

use std::path::PathBuf;

/// Why a ledger operation failed. `Display` is meant for logs and the CLI.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A ledger file holds something other than what the ledger wrote (not a torn tail).
    #[error("corrupt ledger file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A signing key, verifier key, note or checkpoint that does not parse.
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// A leaf index, tree size or tile outside what the log holds.
    #[error("{0}")]
    OutOfRange(String),
    /// No trace of that id in the project's log.
    #[error("no trace {trace_id} in the log of project {project_id}")]
    UnknownTrace { project_id: String, trace_id: String },
    /// The project has no log (nothing was ever appended).
    #[error("project {0} has no log")]
    UnknownProject(String),
    /// An entry bundle could not be served (a trace expired or is larger than a bundle entry can be).
    #[error("entry bundle unavailable: {0}")]
    EntriesUnavailable(String),
}

impl LedgerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LedgerError {
        LedgerError::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> LedgerError {
        LedgerError::Corrupt { path: path.into(), reason: reason.into() }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> LedgerError {
        LedgerError::Invalid { what, reason: reason.into() }
    }
}
