//! The one kind of statement accepted: a single query (SELECT, WITH ... SELECT, VALUES, UNION, ...).
//!
//! The statement is parsed here, once; anything but exactly one query is refused before DataFusion plans
//! it. DataFusion's own [`SQLOptions`] (no DDL, no DML, no SET) then checks the plan, which also catches
//! what parses as a query but plans as DDL (`SELECT ... INTO table`).

use crate::error::SqlError;
use datafusion::execution::context::SQLOptions;
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

/// How deep the parser may nest (parentheses, subqueries); deeper statements are invalid.
const PARSER_RECURSION_LIMIT: usize = 64;

/// The checks DataFusion applies to the plan of an accepted statement.
pub(crate) fn plan_options() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

/// The statement, if `sql` is exactly one query.
pub(crate) fn parse_query(sql: &str) -> Result<Statement, SqlError> {
    let dialect = GenericDialect {};
    let mut parser = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .build()
        .map_err(|error| SqlError::Invalid(error.strip_backtrace()))?;
    let mut statements = parser.parse_statements().map_err(|error| SqlError::Invalid(error.strip_backtrace()))?;
    if statements.len() > 1 {
        return Err(SqlError::NotSelect(format!("{} statements were sent", statements.len())));
    }
    let statement = statements.pop_front().ok_or_else(|| SqlError::NotSelect("no statement was sent".to_owned()))?;
    match &statement {
        Statement::Statement(inner) if matches!(**inner, SqlStatement::Query(_)) => Ok(statement),
        Statement::Statement(inner) => Err(SqlError::NotSelect(format!("{} is not a query", first_words(inner)))),
        Statement::CreateExternalTable(_) => Err(SqlError::NotSelect("CREATE EXTERNAL TABLE is not a query".into())),
        Statement::CopyTo(_) => Err(SqlError::NotSelect("COPY is not a query".to_owned())),
        Statement::Explain(_) => Err(SqlError::NotSelect("EXPLAIN is not accepted".to_owned())),
        Statement::Reset(_) => Err(SqlError::NotSelect("RESET is not a query".to_owned())),
    }
}

/// The statement's leading keywords (`CREATE TABLE`, `INSERT`), to name what was refused.
fn first_words(statement: &SqlStatement) -> String {
    let text = statement.to_string();
    let keywords: Vec<&str> =
        text.split_whitespace().take_while(|word| word.chars().all(|c| c.is_ascii_alphabetic())).take(2).collect();
    match keywords.as_slice() {
        [] => "the statement".to_owned(),
        words => words.join(" ").to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_accepted() {
        for sql in [
            "SELECT 1",
            "select count(*) from traces",
            "WITH t AS (SELECT trace_name FROM traces) SELECT * FROM t",
            "VALUES (1), (2)",
            "SELECT 1 UNION ALL SELECT 2",
            "SELECT 1;",
            "(SELECT 1)",
        ] {
            assert!(parse_query(sql).is_ok(), "{sql}");
        }
    }

    #[test]
    fn everything_else_is_refused_by_name() {
        let cases = [
            ("DROP TABLE traces", "DROP TABLE"),
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'", "CREATE EXTERNAL TABLE"),
            ("INSERT INTO traces VALUES (1)", "INSERT"),
            ("DELETE FROM traces", "DELETE"),
            ("UPDATE traces SET trace_name = 'x'", "UPDATE"),
            ("SET datafusion.execution.target_partitions = 1", "SET"),
            ("COPY traces TO '/tmp/x.csv'", "COPY"),
            ("EXPLAIN SELECT 1", "EXPLAIN"),
            ("SELECT 1; SELECT 2", "2 statements"),
            ("SELECT 1; DROP TABLE traces", "2 statements"),
            ("", "no statement"),
            (";", "no statement"),
        ];
        for (sql, named) in cases {
            match parse_query(sql) {
                Err(SqlError::NotSelect(message)) => assert!(message.contains(named), "{sql}: {message}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_and_deep_nesting_are_invalid_not_crashes() {
        assert!(matches!(parse_query("SELEKT 1"), Err(SqlError::Invalid(_))));
        let deep = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(matches!(parse_query(&deep), Err(SqlError::Invalid(_))));
    }
}
