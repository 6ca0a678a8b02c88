//! The aggregation the benchmark times: traces per operation per day over the
//! 7-day window, through cts's SQL endpoint and through PostgreSQL, and the
//! comparison of the two answers.

use anyhow::{bail, Context};
use serde_json::Value;

/// One row of the answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OperationDay {
    /// Days since the epoch (UTC): `time / 86400000`.
    pub day: i64,
    pub trace_name: String,
    pub traces: i64,
}

/// The statement cts runs (`POST /v3/{project_id}/queries`), bounded to the window.
pub fn cts_statement(from_ms: i64, to_ms: i64) -> String {
    format!(
        "SELECT trace_name, time / 86400000 AS day, count(*) AS traces FROM traces \
         WHERE time >= {from_ms} AND time <= {to_ms} GROUP BY trace_name, day ORDER BY day, trace_name"
    )
}

/// The rows of a cts SQL answer (`[[trace_name, day, traces], ...]`).
pub fn from_json_rows(rows: &[Vec<Value>]) -> anyhow::Result<Vec<OperationDay>> {
    rows.iter()
        .map(|row| {
            let [name, day, traces] = row.as_slice() else { bail!("expected 3 columns, got {row:?}") };
            Ok(OperationDay {
                trace_name: name.as_str().context("trace_name is not a string")?.to_owned(),
                day: day.as_i64().context("day is not an integer")?,
                traces: traces.as_i64().context("traces is not an integer")?,
            })
        })
        .collect()
}

/// Whether two answers hold the same rows (each side sorts text its own way, so order is not compared).
pub fn same_rows(a: &[OperationDay], b: &[OperationDay]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(day: i64, name: &str, traces: i64) -> OperationDay {
        OperationDay { day, trace_name: name.to_owned(), traces }
    }

    #[test]
    fn json_rows_are_read_as_name_day_and_count() {
        let rows = vec![vec![json!("createOrder"), json!(20_700), json!(42)]];
        assert_eq!(from_json_rows(&rows).unwrap(), vec![row(20_700, "createOrder", 42)]);
        assert!(from_json_rows(&[vec![json!("x"), json!(1)]]).is_err());
        assert!(from_json_rows(&[vec![json!("x"), json!("1"), json!(2)]]).is_err());
    }

    #[test]
    fn answers_agree_whatever_the_order_but_not_on_other_counts() {
        let a = vec![row(1, "a", 3), row(1, "B", 4)];
        let reordered = vec![row(1, "B", 4), row(1, "a", 3)];
        assert!(same_rows(&a, &reordered));
        assert!(!same_rows(&a, &[row(1, "a", 3), row(1, "B", 5)]));
        assert!(!same_rows(&a, &a[..1]));
    }

    #[test]
    fn the_statement_is_bounded_to_the_window() {
        let statement = cts_statement(100, 200);
        assert!(statement.contains("time >= 100 AND time <= 200"));
        assert!(statement.starts_with("SELECT trace_name, time / 86400000 AS day, count(*) AS traces FROM traces"));
    }
}
