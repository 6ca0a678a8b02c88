//! SQL over the trace store with Apache DataFusion: `SELECT ... FROM traces`, always scoped to the caller's
//! project.
//!
//! [`SqlEngine::query`] takes one statement, refuses anything but a single query ([`statement`]), and runs
//! it over one table, `traces`: every column of the segment schema (`cts_store::segment_schema`, `user`
//! flattened into `user_*` columns), read from a snapshot of the store ([`cts_store::SqlSources`]: the
//! segments' Parquet files opened at planning time and the unsealed traces as Arrow batches). The project
//! and the retention cutoff are applied to every batch inside the scan, before DataFusion sees a row
//! ([`scan`]); no SQL text is added to the caller's. Conditions on `time` prune segments and rows
//! ([`table`]). Limits ([`SqlLimits`]): wall time, memory, result rows, queries at once, statement
//! length. Values come back as JSON ([`json`]).

mod engine;
mod error;
mod json;
mod limits;
mod scan;
mod statement;
mod table;

pub use engine::{Column, QueryResult, SqlEngine};
pub use error::{SetupError, SqlError};
pub use limits::{SqlLimits, MIN_MEMORY_BYTES};
