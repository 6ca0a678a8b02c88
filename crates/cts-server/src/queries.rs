//! `POST /v3/{project_id}/queries`: one SQL query over the caller's traces (as CloudTrail Lake's
//! `StartQuery` takes a `QueryStatement`), answered at once:
//! `{"columns":[{"name","type"}],"rows":[[...]],"row_count":N,"truncated":bool,"elapsed_ms":N}`.
//!
//! Body `{"statement": "SELECT ..."}`. The query runs in [`cts_sql::SqlEngine`], which scopes every row to
//! the project in the path (the caller's: the authentication layer checked it) and refuses anything but
//! one query; its limits come from [`crate::AppState::with_sql_limits`]. The engine starts with the first
//! query. Built without the cargo feature `sql` (DataFusion), the route answers 501.
//! The call is recorded as a `queryTraces` trace by the self-audit layer.

use crate::error::ApiError;

#[cfg(feature = "sql")]
pub(crate) use with_sql::run_query;
#[cfg(feature = "sql")]
pub use with_sql::SqlQueries;

#[cfg(feature = "sql")]
mod with_sql {
    use super::*;
    use crate::AppState;
    use axum::body::Bytes;
    use axum::extract::rejection::BytesRejection;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::{Extension, Json};
    use cts_iam::Principal;
    use cts_sql::{Column, QueryResult, SqlEngine, SqlLimits};
    use cts_store::Store;
    use parking_lot::Mutex;
    use serde::{Deserialize, Serialize};
    use serde_json::Value;
    use std::sync::Arc;

    /// The request body.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct QueryRequest {
        statement: String,
    }

    /// The answer.
    #[derive(Debug, Serialize)]
    struct QueryResponse {
        columns: Vec<Column>,
        rows: Vec<Vec<Value>>,
        row_count: usize,
        truncated: bool,
        elapsed_ms: u64,
    }

    /// The SQL engine of a server, started at the first query with the configured limits.
    #[derive(Clone, Default)]
    pub struct SqlQueries {
        limits: SqlLimits,
        engine: Arc<Mutex<Option<Arc<SqlEngine>>>>,
    }

    impl SqlQueries {
        pub fn new(limits: SqlLimits) -> SqlQueries {
            SqlQueries { limits, engine: Arc::default() }
        }

        fn engine(&self, store: &Store) -> Result<Arc<SqlEngine>, ApiError> {
            let mut slot = self.engine.lock();
            if let Some(engine) = &*slot {
                return Ok(engine.clone());
            }
            let engine = SqlEngine::new(store.clone(), self.limits).map_err(|e| ApiError::ReadFailed(Box::new(e)))?;
            Ok(slot.insert(Arc::new(engine)).clone())
        }
    }

    pub(crate) async fn run_query(
        State(state): State<AppState>,
        Extension(principal): Extension<Principal>,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Json<impl Serialize>, ApiError> {
        let request: QueryRequest = crate::extract::json_body(&headers, body)?;
        let started = std::time::Instant::now();
        let engine = state.sql.engine(&state.store)?;
        let QueryResult { columns, rows, truncated } = engine.query(&principal.project_id, &request.statement).await?;
        Ok(Json(QueryResponse {
            columns,
            row_count: rows.len(),
            rows,
            truncated,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }))
    }
}

/// Without the `sql` feature: 501, whatever the request.
#[cfg(not(feature = "sql"))]
pub(crate) async fn run_query() -> ApiError {
    ApiError::SqlNotBuilt
}
