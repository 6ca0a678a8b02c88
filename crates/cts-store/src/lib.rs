//! The embedded trace store, cts's default storage.
//!
//! Appends go through a write-ahead log with group commit: a dedicated writer thread takes every
//! pending batch, writes them, fsyncs once and then acknowledges them all, so an acknowledged trace
//! survives a crash. Committed traces land in an in-memory, indexed memtable and are queryable at once.
//! A full memtable is sealed in the background into an immutable segment (rows sorted by time and trace
//! id) of two files: a zstd-compressed Parquet file (every field a column, for scans and SQL) and a
//! row-store sidecar of small zstd blocks (for point reads); its WAL file is deleted once both are
//! durable and visible. Each segment's filter columns are indexed in memory (postings: value -> rows),
//! so a selective query intersects postings and decompresses one small block per result row.
//!
//! Traces are unique on (project_id, trace_id): a retried batch never duplicates. Retention drops
//! whole segments. See `FORMAT.md` for the on-disk layout and the recovery rules.

mod append_log;
mod columns;
mod error;
mod ids;
mod memtable;
mod plan;
mod query;
mod record;
mod segment;
mod sql_sources;
mod store;
mod stored;
mod subscribe;
mod text_scan;
mod wal;
mod writer;

pub use append_log::{scan_stored_files, AppendLog, AppendRefusal, LeafHash, LogEntry, StoredFile, StoredFileKind};
pub use error::StoreError;
pub use query::{Filters, Pattern, SortKey, TraceQuery};
pub use segment::{traces_from_parquet, traces_to_parquet, SegmentFile};
pub use sql_sources::{segment_schema, SegmentSource, SqlSources};
pub use store::{AppendOutcome, RatingCounts, Store, StoreConfig, StoreStats};
pub use subscribe::{CommitGroup, SUBSCRIPTION_CAPACITY};
pub use wal::is_out_of_space;

#[cfg(test)]
mod tests;
