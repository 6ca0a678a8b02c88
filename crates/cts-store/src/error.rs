//! The store's error type.

use std::path::PathBuf;

/// Why a store operation failed. `Display` is meant for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file holds data the store cannot read back (not a torn WAL tail, which recovery truncates).
    #[error("corrupt store file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A segment file could not be written or read as Parquet.
    #[error("parquet error on {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Another process (or another `Store` in this process) holds the data directory.
    #[error("the data directory {path} is locked by another store")]
    Locked { path: PathBuf },
    /// The store's writer thread has stopped.
    #[error("the store is closed")]
    Closed,
    /// The disk is full: the group's WAL write was cut back and nothing of it was acknowledged. The
    /// store takes writes again as soon as there is room.
    #[error("out of disk space writing {path}; nothing was stored")]
    OutOfSpace { path: PathBuf },
    /// A WAL write or fsync failed earlier; the store refuses further writes rather than
    /// pretending they are durable. Reopen the store to recover.
    #[error("the store refuses writes after a failed WAL write: {reason}")]
    Poisoned { reason: String },
    /// The append log (the ledger) could not take the traces; nothing of the group was acknowledged.
    #[error("the append log failed: {reason}")]
    AppendLog { reason: String },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io { path: path.into(), source }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> StoreError {
        StoreError::Parquet { path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt { path: path.into(), reason: reason.into() }
    }
}
