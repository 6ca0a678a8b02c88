//! What can go wrong in delivery that is not the destination's fault (those become a tracker's status).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("reading or writing the delivery cursors {path}: {source}")]
    Cursors { path: PathBuf, source: std::io::Error },
    #[error("the delivery cursors {path} are corrupt: {reason}")]
    CorruptCursors { path: PathBuf, reason: String },
    #[error("reading or writing the delivery history {path}: {source}")]
    History { path: PathBuf, source: std::io::Error },
    #[error("the delivery history {path} is corrupt: {reason}")]
    CorruptHistory { path: PathBuf, reason: String },
    #[error("querying the store: {0}")]
    Store(#[from] cts_store::StoreError),
    #[error("updating the tracker's status: {0}")]
    Resources(#[from] cts_resources::ResourceError),
    #[error("signing a digest: {0}")]
    Ledger(#[from] cts_ledger::LedgerError),
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
