//! The `traces` table: one project's traces, every column of the segment schema.
//!
//! Conditions on `time` against constants (`<`, `<=`, `=`, `>=`, `>`, `BETWEEN`, and conjunctions of
//! them) are pushed into the scan as `Inexact` filters: the scan takes only the segments, and the rows
//! within them, that lie in the window they allow, and DataFusion applies the conditions again on what
//! it reads. The snapshot is taken when the query is planned.

use crate::scan::{partitions, Scope};
use async_trait::async_trait;
use cts_store::Store;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::streaming::StreamingTableExec;
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// The name of the one table.
pub(crate) const TABLE: &str = "traces";
/// The column time windows are read from.
const TIME_COLUMN: &str = "time";

/// An inclusive window of `time` (empty when `from > to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    const ALL: Window = Window { from: i64::MIN, to: i64::MAX };

    fn intersect(self, other: Window) -> Window {
        Window { from: self.from.max(other.from), to: self.to.min(other.to) }
    }
}

/// The traces of one project, read from a store.
pub(crate) struct TracesTable {
    store: Store,
    project_id: String,
    schema: SchemaRef,
}

impl std::fmt::Debug for TracesTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracesTable").field("project_id", &self.project_id).finish()
    }
}

impl TracesTable {
    pub(crate) fn new(store: Store, project_id: &str) -> TracesTable {
        TracesTable { store, project_id: project_id.to_owned(), schema: cts_store::segment_schema() }
    }
}

#[async_trait]
impl TableProvider for TracesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| match time_window(filter) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let window = filters.iter().filter_map(time_window).fold(Window::ALL, Window::intersect);
        let (store, project_id) = (self.store.clone(), self.project_id.clone());
        let sources = tokio::task::spawn_blocking(move || store.sql_sources(&project_id, window.from..=window.to))
            .await
            .map_err(|join| DataFusionError::Internal(format!("taking the store snapshot failed: {join}")))?
            .map_err(|error| DataFusionError::External(Box::new(error)))?;
        let scope = Scope::new(&self.project_id, sources.retention_cutoff_ms, projection.map(Vec::as_slice));
        let schema = match projection {
            Some(columns) => Arc::new(self.schema.project(columns)?),
            None => self.schema.clone(),
        };
        let config = state.config();
        let streams = partitions(sources, scope, schema.clone(), config.target_partitions(), config.batch_size())?;
        Ok(Arc::new(StreamingTableExec::try_new(schema, streams, None, Vec::new(), false, None)?))
    }
}

/// The window of `time` a condition confines rows to, if it is a condition on `time` the scan understands.
pub(crate) fn time_window(condition: &Expr) -> Option<Window> {
    match condition {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            match (time_window(left), time_window(right)) {
                (Some(left), Some(right)) => Some(left.intersect(right)),
                (one, other) => one.or(other),
            }
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, value) = match (is_time(left), constant(right), is_time(right), constant(left)) {
                (true, Some(value), _, _) => (*op, value),
                (_, _, true, Some(value)) => (op.swap()?, value),
                _ => return None,
            };
            match op {
                Operator::Eq => Some(Window { from: value, to: value }),
                Operator::Gt => Some(Window { from: value.saturating_add(1), to: i64::MAX }),
                Operator::GtEq => Some(Window { from: value, to: i64::MAX }),
                Operator::Lt => Some(Window { from: i64::MIN, to: value.saturating_sub(1) }),
                Operator::LtEq => Some(Window { from: i64::MIN, to: value }),
                _ => None,
            }
        }
        Expr::Between(Between { expr, negated: false, low, high }) if is_time(expr) => {
            Some(Window { from: constant(low)?, to: constant(high)? })
        }
        _ => None,
    }
}

fn is_time(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(column) if column.name == TIME_COLUMN)
}

/// An integer constant.
fn constant(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(value, _) => match value {
            ScalarValue::Int64(Some(v)) => Some(*v),
            ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int16(Some(v)) => Some(i64::from(*v)),
            ScalarValue::Int8(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt32(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt16(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt8(Some(v)) => Some(i64::from(*v)),
            ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn conditions_on_time_become_windows_and_the_rest_do_not() {
        let cases = [
            (col("time").gt(lit(10i64)), Some(Window { from: 11, to: i64::MAX })),
            (col("time").gt_eq(lit(10i64)), Some(Window { from: 10, to: i64::MAX })),
            (col("time").lt(lit(10i64)), Some(Window { from: i64::MIN, to: 9 })),
            (col("time").lt_eq(lit(10i64)), Some(Window { from: i64::MIN, to: 10 })),
            (col("time").eq(lit(10i64)), Some(Window { from: 10, to: 10 })),
            (lit(10i64).lt(col("time")), Some(Window { from: 11, to: i64::MAX })),
            (lit(10i32).gt_eq(col("time")), Some(Window { from: i64::MIN, to: 10 })),
            (col("time").between(lit(5i64), lit(7i64)), Some(Window { from: 5, to: 7 })),
            (col("time").gt(lit(5i64)).and(col("time").lt(lit(9i64))), Some(Window { from: 6, to: 8 })),
            (col("time").gt(lit(5i64)).and(col("trace_name").eq(lit("x"))), Some(Window { from: 6, to: i64::MAX })),
            (col("time").gt(lit(5i64)).or(col("time").lt(lit(2i64))), None),
            (col("time").not_between(lit(5i64), lit(7i64)), None),
            (col("time").not_eq(lit(5i64)), None),
            (col("record_time").gt(lit(5i64)), None),
            (col("time").gt(col("record_time")), None),
            (col("time").gt(lit("5")), None),
        ];
        for (condition, window) in cases {
            assert_eq!(time_window(&condition), window, "{condition}");
        }
    }
}
