//! [`SqlEngine`]: a query's way from text to JSON rows, within its limits.
//!
//! The statement is checked (length, exactly one query) before the query waits for one of
//! `max_concurrent` turns. Then a session is built for it alone: its own memory pool (nothing spills
//! to disk), a catalog holding only the caller's `traces` table (a fresh catalog per query: a shared
//! one would let two tenants' tables meet), no information schema, no URL tables. The query runs on the
//! engine's own worker threads (as many as cores, like `target_partitions`), so a heavy scan competes
//! with the API for the CPU as a thread, not by holding the server's async workers, and within the time
//! limit; a caller that goes away cancels it. Results are read up to `max_rows` rows, their JSON
//! counted against the memory pool too.

use crate::error::{SetupError, SqlError};
use crate::json;
use crate::limits::SqlLimits;
use crate::statement::{parse_query, plan_options};
use crate::table::{TracesTable, TABLE};
use cts_store::Store;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryConsumer};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Bytes a JSON value is counted as beyond its text (the `Value` itself, a vector slot).
const VALUE_OVERHEAD_BYTES: usize = 32;

/// One result column: its name and its Arrow type (`Int64`, `Utf8`, `Timestamp(ms)`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A query's answer: its columns, its rows (values in column order, see [`crate::json`]), and whether
/// rows were cut at the row limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
}

/// Runs SQL queries over a store's traces, each scoped to one project (see the module docs).
pub struct SqlEngine {
    store: Store,
    limits: SqlLimits,
    turns: Arc<Semaphore>,
    workers: Workers,
    cores: usize,
}

impl std::fmt::Debug for SqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlEngine").field("limits", &self.limits).field("cores", &self.cores).finish()
    }
}

/// The engine's own worker threads; shut down without waiting when the engine is dropped (dropping a
/// runtime from async code would panic).
struct Workers(Option<tokio::runtime::Runtime>);

impl Drop for Workers {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts a task when the caller stops waiting for it (a dropped request cancels its query).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SqlEngine {
    /// An engine over `store` with `limits` (checked), its worker threads started.
    pub fn new(store: Store, limits: SqlLimits) -> Result<SqlEngine, SetupError> {
        limits.validate().map_err(SetupError::InvalidLimits)?;
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .thread_name("cts-sql")
            .enable_time()
            .build()?;
        Ok(SqlEngine {
            store,
            limits,
            turns: Arc::new(Semaphore::new(limits.max_concurrent)),
            workers: Workers(Some(runtime)),
            cores,
        })
    }

    pub fn limits(&self) -> SqlLimits {
        self.limits
    }

    /// Runs `statement` (one query) over the traces of `project_id` (see the module docs).
    pub async fn query(&self, project_id: &str, statement: &str) -> Result<QueryResult, SqlError> {
        let limits = self.limits;
        if statement.len() > limits.max_statement_bytes {
            return Err(SqlError::TooLong { limit: limits.max_statement_bytes });
        }
        let statement = parse_query(statement)?;
        let _turn = self.turns.acquire().await.map_err(|_| SqlError::Internal("the engine is closed".to_owned()))?;
        let context = self.session(project_id)?;
        let runtime = self.workers.0.as_ref().expect("the workers run until the engine is dropped");
        let task =
            runtime.spawn(async move { tokio::time::timeout(limits.timeout, run(context, statement, limits)).await });
        let _cancel_on_drop = AbortOnDrop(task.abort_handle());
        match task.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_elapsed)) => Err(SqlError::Timeout { limit: limits.timeout }),
            Err(join) => Err(SqlError::Internal(format!("the query's task failed: {join}"))),
        }
    }

    /// A session of its own for one query of `project_id`.
    fn session(&self, project_id: &str) -> Result<SessionContext, SqlError> {
        let memory = self.limits.memory_bytes;
        let internal = |error: datafusion::error::DataFusionError| SqlError::Internal(error.to_string());
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(memory)))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()
            .map_err(internal)?;
        let config = SessionConfig::new().with_target_partitions(self.cores).with_information_schema(false);
        let state =
            SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features().build();
        let context = SessionContext::new_with_state(state);
        context.register_table(TABLE, Arc::new(TracesTable::new(self.store.clone(), project_id))).map_err(internal)?;
        Ok(context)
    }
}

/// Plans, checks and runs `statement`, reading at most `max_rows` rows of its result.
async fn run(context: SessionContext, statement: Statement, limits: SqlLimits) -> Result<QueryResult, SqlError> {
    let failed = |error| SqlError::from_datafusion(error, limits.memory_bytes);
    let plan = context.state().statement_to_plan(statement).await.map_err(failed)?;
    plan_options().verify_plan(&plan).map_err(|error| SqlError::NotSelect(error.strip_backtrace()))?;
    let frame = context.execute_logical_plan(plan).await.map_err(failed)?;
    let columns = frame
        .schema()
        .fields()
        .iter()
        .map(|field| Column { name: field.name().clone(), data_type: field.data_type().to_string() })
        .collect();
    let mut stream = frame.execute_stream().await.map_err(failed)?;
    let reservation = MemoryConsumer::new("SQL result rows").register(&context.runtime_env().memory_pool);
    let mut rows: Vec<Vec<Value>> = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(failed)?;
        for row in 0..batch.num_rows() {
            if rows.len() == limits.max_rows {
                return Ok(QueryResult { columns, rows, truncated: true });
            }
            let values = batch
                .columns()
                .iter()
                .map(|column| json::value(column.as_ref(), row))
                .collect::<Result<Vec<Value>, _>>()
                .map_err(|error| failed(error.into()))?;
            reservation.try_grow(values.iter().map(approximate_size).sum()).map_err(failed)?;
            rows.push(values);
        }
    }
    Ok(QueryResult { columns, rows, truncated: false })
}

/// About the bytes a JSON value holds.
fn approximate_size(value: &Value) -> usize {
    VALUE_OVERHEAD_BYTES
        + match value {
            Value::String(text) => text.len(),
            Value::Array(items) => items.iter().map(approximate_size).sum(),
            Value::Object(fields) => fields.iter().map(|(name, value)| name.len() + approximate_size(value)).sum(),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
}
