//! `cts sql "SELECT ..."`: one SQL query over the `traces` table of the caller's project, sent to a
//! running cts (`POST /v3/{project_id}/queries`, a server built with `--features sql`), printed as a table,
//! as the response body (`--json`) or as CSV (`--csv`).

use crate::traces::ConnectionArgs;
use clap::Args;
use cts_client::QueryResponse;
use serde_json::Value;

/// Cells wider than this are cut in the table (`--json` and `--csv` print them whole).
const MAX_CELL_CHARS: usize = 60;

#[derive(Debug, Args)]
pub struct SqlArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// One SELECT (or WITH/VALUES/UNION) over `traces`, e.g.
    /// "SELECT trace_name, count(*) FROM traces GROUP BY trace_name".
    statement: String,
    /// Print the response body (JSON: columns, rows, row_count, truncated, elapsed_ms).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (RFC 4180, a header row; text cells that start like a formula are prefixed with `'`).
    #[arg(long)]
    csv: bool,
}

pub fn run(args: SqlArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let response = runtime
        .block_on(async { args.connection.client()?.query(&args.statement).await.map_err(anyhow::Error::from) })?;
    if args.json {
        println!("{}", serde_json::to_string(&response)?);
        return Ok(());
    }
    print!("{}", if args.csv { csv(&response) } else { table(&response) });
    let cut = if response.truncated { " (cut at the server's row limit)" } else { "" };
    eprintln!("{} rows{cut} in {} ms", response.row_count, response.elapsed_ms);
    Ok(())
}

/// A value as one line of text: strings as they are, null as `NULL`, the rest as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "NULL".to_owned(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell; one header row and a rule.
fn table(response: &QueryResponse) -> String {
    let cut = |cell: String| -> String {
        let cell = cell.replace(['\n', '\r', '\t'], " ");
        match cell.char_indices().nth(MAX_CELL_CHARS) {
            Some((end, _)) => format!("{}…", &cell[..end]),
            None => cell,
        }
    };
    let header: Vec<String> = response.columns.iter().map(|column| column.name.clone()).collect();
    let rows: Vec<Vec<String>> =
        response.rows.iter().map(|row| row.iter().map(|value| cut(text(value))).collect()).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|index| std::iter::once(&header).chain(&rows).map(|row| row[index].chars().count()).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let rule: Vec<String> = widths.iter().map(|&width| "-".repeat(width)).collect();
    std::iter::once(line(&header)).chain(std::iter::once(line(&rule))).chain(rows.iter().map(|row| line(row))).collect()
}

/// RFC 4180: fields with a comma, quote or line break quoted, quotes doubled, CRLF line ends.
fn csv(response: &QueryResponse) -> String {
    let field = |value: &Value| -> String {
        let mut text = text(value);
        if matches!(value, Value::Null) {
            text.clear();
        }
        if value.is_string() && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            text.insert(0, '\'');
        }
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    };
    let header: Vec<String> =
        response.columns.iter().map(|column| field(&Value::String(column.name.clone()))).collect();
    let mut out = format!("{}\r\n", header.join(","));
    for row in &response.rows {
        let cells: Vec<String> = row.iter().map(field).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cts_client::QueryColumn;
    use serde_json::json;

    fn response(rows: Vec<Vec<Value>>) -> QueryResponse {
        let column = |name: &str, data_type: &str| QueryColumn { name: name.into(), data_type: data_type.into() };
        QueryResponse {
            columns: vec![column("trace_name", "Utf8"), column("n", "Int64"), column("tags", "List(Utf8)")],
            row_count: rows.len(),
            rows,
            truncated: false,
            elapsed_ms: 3,
        }
    }

    #[test]
    fn tables_pad_columns_to_their_widest_cell() {
        let printed = table(&response(vec![
            vec![json!("createOrder"), json!(12), json!(["a", "b"])],
            vec![json!("x\ny"), Value::Null, Value::Null],
        ]));
        let expected = "trace_name   n     tags\n-----------  ----  ---------\ncreateOrder  12    [\"a\",\"b\"]\nx y          NULL  NULL\n";
        assert_eq!(printed, expected);
    }

    #[test]
    fn csv_quotes_what_it_must_and_defuses_formulas() {
        let printed = csv(&response(vec![
            vec![json!("a,\"b\""), json!(-5), json!(["x"])],
            vec![json!("=HYPERLINK()"), Value::Null, json!([])],
        ]));
        assert_eq!(printed, "trace_name,n,tags\r\n\"a,\"\"b\"\"\",-5,\"[\"\"x\"\"]\"\r\n'=HYPERLINK(),,[]\r\n");
    }
}
