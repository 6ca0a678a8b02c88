//! Why a query failed, and which CTS error code says so.

use crate::limits::human_bytes;
use cts_model::ErrorCode;
use cts_store::StoreError;
use datafusion::error::DataFusionError;
use std::time::Duration;

/// Why a query failed. The messages of the query's own faults (everything but [`SqlError::Store`] and
/// [`SqlError::Internal`]) are meant for the client; the other two are logged and answered opaquely.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Not exactly one query statement (DDL, DML, SET, COPY, EXPLAIN, several statements, none).
    #[error("only a single SELECT statement is accepted (SELECT, WITH ... SELECT, VALUES, UNION): {0}")]
    NotSelect(String),
    /// The statement does not parse or plan, or its evaluation failed on the data (a bad cast, ...).
    #[error("invalid query: {0}")]
    Invalid(String),
    #[error("the statement is longer than the SQL statement limit of {}", human_bytes(*.limit))]
    TooLong { limit: usize },
    #[error("the query did not finish within the SQL time limit of {} s", .limit.as_secs_f64())]
    Timeout { limit: Duration },
    #[error("the query needs more memory than the SQL memory limit of {}", human_bytes(*.limit))]
    OutOfMemory { limit: usize },
    /// The store could not give or read its segments.
    #[error("reading the store failed: {0}")]
    Store(#[from] StoreError),
    /// DataFusion or cts-sql failed on its own (a bug, a worker that stopped).
    #[error("the SQL engine failed: {0}")]
    Internal(String),
}

impl SqlError {
    /// The CTS error code: the query's own faults are query errors (`CTS.0300`), the rest read failures.
    pub fn code(&self) -> ErrorCode {
        if self.is_internal() {
            ErrorCode::ReadFailed
        } else {
            ErrorCode::QueryFailed
        }
    }

    /// Whether the failure is cts's own rather than the query's.
    pub fn is_internal(&self) -> bool {
        matches!(self, SqlError::Store(_) | SqlError::Internal(_))
    }

    /// The failure of a query with `memory_limit` from what DataFusion reported.
    pub(crate) fn from_datafusion(error: DataFusionError, memory_limit: usize) -> SqlError {
        match error {
            DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
                SqlError::from_datafusion(*inner, memory_limit)
            }
            DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
                Ok(inner) => SqlError::from_datafusion(inner, memory_limit),
                Err(shared) => SqlError::classify(&shared, memory_limit),
            },
            DataFusionError::Collection(errors) => match errors.into_iter().next() {
                Some(first) => SqlError::from_datafusion(first, memory_limit),
                None => SqlError::Internal("an empty collection of errors".to_owned()),
            },
            DataFusionError::External(external) => match external.downcast::<StoreError>() {
                Ok(store) => SqlError::Store(*store),
                Err(other) => match other.downcast::<SqlError>() {
                    Ok(sql) => *sql,
                    Err(other) => SqlError::Internal(other.to_string()),
                },
            },
            other => SqlError::classify(&other, memory_limit),
        }
    }

    /// An error classified by the kind of its root cause, its text kept (also a shared error still referenced
    /// elsewhere, which cannot be unwrapped).
    fn classify(error: &DataFusionError, memory_limit: usize) -> SqlError {
        match error.find_root() {
            DataFusionError::ResourcesExhausted(_) => SqlError::OutOfMemory { limit: memory_limit },
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Execution(_)
            | DataFusionError::ArrowError(..) => SqlError::Invalid(error.strip_backtrace()),
            other => SqlError::Internal(other.to_string()),
        }
    }
}

/// Why an [`crate::SqlEngine`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("invalid SQL limits: {0}")]
    InvalidLimits(String),
    #[error("starting the SQL worker threads failed: {0}")]
    Runtime(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_faults_are_query_errors_and_the_rest_read_failures() {
        let store = || StoreError::Corrupt { path: "/data/store/segments/1.parquet".into(), reason: "bad".into() };
        let cases = [
            (SqlError::NotSelect("DROP".into()), "CTS.0300"),
            (SqlError::Invalid("no such column".into()), "CTS.0300"),
            (SqlError::TooLong { limit: 10 }, "CTS.0300"),
            (SqlError::Timeout { limit: Duration::from_secs(1) }, "CTS.0300"),
            (SqlError::OutOfMemory { limit: 1 << 20 }, "CTS.0300"),
            (SqlError::Store(store()), "CTS.0005"),
            (SqlError::Internal("worker stopped".into()), "CTS.0005"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code().as_str(), code, "{error}");
        }
    }

    #[test]
    fn datafusion_errors_keep_their_kind_through_context_and_sharing() {
        let exhausted = || DataFusionError::ResourcesExhausted("pool".into());
        let wrapped = DataFusionError::Context("sorting".into(), Box::new(exhausted()));
        assert!(matches!(SqlError::from_datafusion(wrapped, 5), SqlError::OutOfMemory { limit: 5 }));
        let shared = std::sync::Arc::new(exhausted());
        let _other_holder = shared.clone();
        let error = SqlError::from_datafusion(DataFusionError::Shared(shared), 5);
        assert!(matches!(error, SqlError::OutOfMemory { .. }));
        let store = StoreError::Closed;
        let external = DataFusionError::External(Box::new(store));
        assert!(matches!(SqlError::from_datafusion(external, 5), SqlError::Store(StoreError::Closed)));
        let plan = DataFusionError::Plan("no column x".into());
        assert!(
            matches!(SqlError::from_datafusion(plan, 5), SqlError::Invalid(message) if message.contains("no column x"))
        );
    }
}
