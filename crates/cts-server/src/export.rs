//! `GET /v3/{project_id}/traces/export?format=csv|json|parquet`: every trace of a ListTraces filter
//! and window, with no row cap, streamed.
//!
//! The filter parameters are ListTraces's own (`cts_query::ListTraces::parse`; `limit` and `next` are
//! ignored). A blocking task pages through the store [`EXPORT_PAGE`] traces at a time, newest first,
//! each page strictly after the last trace of the previous one (the order ListTraces pages in), and
//! writes each page to the response body through a bounded channel: memory stays constant whatever the
//! size of the export, and a client that stops reading stops the task. A failure after the first
//! bytes went out cuts the body short (the status line is already sent), so a client never mistakes a
//! truncated export for a whole one.
//!
//! Formats:
//! - `csv`: RFC 4180 (CRLF line ends, fields with `,` `"` CR or LF quoted, quotes doubled), a header
//!   row of [`EXPORT_COLUMNS`]; a cell beginning with `=`, `+`, `-`, `@`, tab or CR is prefixed with
//!   `'` so that spreadsheets do not read it as a formula ([`csv_cell`]).
//! - `json`: one JSON array of traces, each exactly as ListTraces returns it.
//! - `parquet`: the columns of the CSV (times as INT64 UTC ms), one row group per page.
//!
//! The call is recorded as an `exportTrace` trace by the self-audit layer.

use crate::error::ApiError;
use crate::AppState;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use cts_iam::sign::parse_query_string;
use cts_iam::Principal;
use cts_model::Trace;
use cts_query::ListTraces;
use cts_store::{SortKey, Store, TraceQuery};
use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Traces read from the store at a time (and rows per Parquet row group).
pub(crate) const EXPORT_PAGE: usize = 1000;
/// Bytes gathered before a chunk is handed to the response body.
const CHUNK_BYTES: usize = 64 * 1024;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    Csv,
    Json,
    Parquet,
}

impl ExportFormat {
    fn parse(value: Option<&str>) -> Result<ExportFormat, ApiError> {
        match value {
            None | Some("csv") => Ok(ExportFormat::Csv),
            Some("json") => Ok(ExportFormat::Json),
            Some("parquet") => Ok(ExportFormat::Parquet),
            Some(_) => Err(ApiError::InvalidParameter {
                name: "format".to_owned(),
                reason: "must be csv, json or parquet".to_owned(),
            }),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
            ExportFormat::Parquet => "parquet",
        }
    }
}

/// How an exported column reads a trace.
enum ColumnValue {
    Text(for<'a> fn(&'a Trace) -> Option<Cow<'a, str>>),
    Millis(fn(&Trace) -> i64),
}

/// One column of the CSV and Parquet exports.
pub(crate) struct ExportColumn {
    pub(crate) name: &'static str,
    value: ColumnValue,
}

fn borrowed(value: Option<&str>) -> Option<Cow<'_, str>> {
    value.map(Cow::Borrowed)
}

macro_rules! text_column {
    ($name:literal, |$trace:ident| $value:expr) => {
        ExportColumn { name: $name, value: ColumnValue::Text(|$trace| $value) }
    };
}

/// The columns of the CSV and Parquet exports: CTS's trace list columns first, then the rest of the
/// scalar fields. `request` and `response` bodies are in the JSON export only.
pub(crate) static EXPORT_COLUMNS: &[ExportColumn] = &[
    text_column!("trace_name", |t| Some(Cow::Borrowed(&t.trace_name))),
    text_column!("resource_type", |t| Some(Cow::Borrowed(&t.resource_type))),
    text_column!("service_type", |t| Some(Cow::Borrowed(&t.service_type))),
    text_column!("resource_id", |t| borrowed(t.resource_id.as_deref())),
    text_column!("resource_name", |t| borrowed(t.resource_name.as_deref())),
    text_column!("trace_rating", |t| Some(Cow::Borrowed(t.trace_rating.as_str()))),
    text_column!("user", |t| borrowed(t.user_name())),
    ExportColumn { name: "time", value: ColumnValue::Millis(|t| t.time) },
    text_column!("trace_id", |t| Some(Cow::Borrowed(&t.trace_id))),
    text_column!("trace_type", |t| Some(Cow::Borrowed(t.trace_type.as_str()))),
    text_column!("tracker_name", |t| borrowed(t.tracker_name.as_deref())),
    text_column!("source_ip", |t| borrowed(t.source_ip.as_deref())),
    text_column!("code", |t| borrowed(t.code.as_deref())),
    text_column!("access_key_id", |t| borrowed(t.access_key_id())),
    text_column!("request_id", |t| borrowed(t.request_id.as_deref())),
    text_column!("api_version", |t| borrowed(t.api_version.as_deref())),
    text_column!("message", |t| borrowed(t.message.as_deref())),
    text_column!("enterprise_project_id", |t| borrowed(t.enterprise_project_id.as_deref())),
    ExportColumn { name: "record_time", value: ColumnValue::Millis(|t| t.record_time) },
];

/// A CSV cell: neutralised against formula injection, then quoted per RFC 4180 when it needs it.
pub(crate) fn csv_cell(value: &str) -> Cow<'_, str> {
    let formula_like = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = value.contains([',', '"', '\r', '\n']);
    if !formula_like && !needs_quotes {
        return Cow::Borrowed(value);
    }
    let neutral = if formula_like { format!("'{value}") } else { value.to_owned() };
    if needs_quotes {
        Cow::Owned(format!("\"{}\"", neutral.replace('"', "\"\"")))
    } else {
        Cow::Owned(neutral)
    }
}

/// One CSV row of a trace (CRLF-terminated).
pub(crate) fn csv_row(trace: &Trace) -> String {
    let cells: Vec<String> = EXPORT_COLUMNS
        .iter()
        .map(|column| match &column.value {
            ColumnValue::Text(get) => get(trace).map(|value| csv_cell(&value).into_owned()).unwrap_or_default(),
            ColumnValue::Millis(get) => get(trace).to_string(),
        })
        .collect();
    cells.join(",") + "\r\n"
}

fn csv_header() -> String {
    EXPORT_COLUMNS.iter().map(|column| column.name).collect::<Vec<_>>().join(",") + "\r\n"
}

/// The handler: see the module docs.
pub(crate) async fn export_traces(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let pairs = parse_query_string(uri.query().unwrap_or(""));
    let format = ExportFormat::parse(
        pairs.iter().find(|(name, _)| name == "format").map(|(_, value)| value.as_str()).filter(|v| !v.is_empty()),
    )?;
    let filter: Vec<(String, String)> =
        pairs.into_iter().filter(|(name, _)| !matches!(name.as_str(), "format" | "limit" | "next")).collect();
    let query = ListTraces::parse(&principal.project_id, &filter, cts_model::now_ms())?.query().clone();
    let (sender, mut receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter { sender: sender.clone(), buffer: Vec::with_capacity(CHUNK_BYTES) };
        if let Err(error) = write_export(&store, query, format, &mut out) {
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::error!(%error, "export failed after it started; the body is cut short");
                let _ = sender.blocking_send(Err(error));
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |context| receiver.poll_recv(context)));
    let file_name = format!("cts-traces.{}", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
        ],
        body,
    )
        .into_response())
}

/// Pages through `query`'s traces (its `after` and `limit` are replaced) and writes them in `format`.
pub(crate) fn write_export(
    store: &Store,
    query: TraceQuery,
    format: ExportFormat,
    out: &mut (impl Write + Send),
) -> std::io::Result<()> {
    let mut pages = Pages { store, query: TraceQuery { after: None, limit: EXPORT_PAGE, ..query }, done: false };
    match format {
        ExportFormat::Csv => {
            out.write_all(csv_header().as_bytes())?;
            while let Some(page) = pages.next_page()? {
                for trace in &page {
                    out.write_all(csv_row(trace).as_bytes())?;
                }
            }
        }
        ExportFormat::Json => {
            out.write_all(b"[")?;
            let mut first = true;
            while let Some(page) = pages.next_page()? {
                for trace in &page {
                    out.write_all(if first { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut *out, trace)?;
                    first = false;
                }
            }
            out.write_all(b"\n]\n")?;
        }
        ExportFormat::Parquet => {
            let schema = parquet_schema();
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(&mut *out, schema.clone(), None).map_err(std::io::Error::other)?;
            while let Some(page) = pages.next_page()? {
                writer.write(&record_batch(&schema, &page)?).map_err(std::io::Error::other)?;
                // One row group per page: what the writer holds never exceeds a page.
                writer.flush().map_err(std::io::Error::other)?;
            }
            writer.close().map_err(std::io::Error::other)?;
        }
    }
    out.flush()
}

/// The pages of a query, each strictly after the last trace of the previous one.
struct Pages<'a> {
    store: &'a Store,
    query: TraceQuery,
    done: bool,
}

impl Pages<'_> {
    fn next_page(&mut self) -> std::io::Result<Option<Vec<Trace>>> {
        if self.done {
            return Ok(None);
        }
        let page = self.store.query(&self.query).map_err(std::io::Error::other)?;
        self.done = page.len() < self.query.limit;
        self.query.after = page.last().map(SortKey::of);
        Ok(Some(page).filter(|page| !page.is_empty()))
    }
}

fn parquet_schema() -> Arc<Schema> {
    let fields: Vec<Field> = EXPORT_COLUMNS
        .iter()
        .map(|column| match column.value {
            ColumnValue::Text(_) => Field::new(column.name, DataType::Utf8, true),
            ColumnValue::Millis(_) => Field::new(column.name, DataType::Int64, false),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn record_batch(schema: &Arc<Schema>, traces: &[Trace]) -> std::io::Result<RecordBatch> {
    let arrays: Vec<ArrayRef> = EXPORT_COLUMNS
        .iter()
        .map(|column| -> ArrayRef {
            match &column.value {
                ColumnValue::Text(get) => Arc::new(traces.iter().map(get).collect::<StringArray>()),
                ColumnValue::Millis(get) => Arc::new(traces.iter().map(get).collect::<Int64Array>()),
            }
        })
        .collect();
    RecordBatch::try_new(schema.clone(), arrays).map_err(std::io::Error::other)
}

/// Gathers written bytes into chunks of [`CHUNK_BYTES`] and hands them to the response body,
/// waiting while the client is slow; `BrokenPipe` once the client has gone.
struct ChunkWriter {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES)));
        self.sender.blocking_send(Ok(chunk)).map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_neutralised_and_quoted_per_rfc_4180() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("line\nbreak", "\"line\nbreak\""),
            ("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
            ("a=b", "a=b"),
            ("x-", "x-"),
        ];
        for (value, expected) in cases {
            assert_eq!(csv_cell(value), expected, "{value:?}");
        }
    }

    #[test]
    fn formats_parse_with_csv_by_default() {
        assert_eq!(ExportFormat::parse(None).unwrap(), ExportFormat::Csv);
        assert_eq!(ExportFormat::parse(Some("parquet")).unwrap(), ExportFormat::Parquet);
        assert!(matches!(ExportFormat::parse(Some("xlsx")), Err(ApiError::InvalidParameter { .. })));
    }
}
