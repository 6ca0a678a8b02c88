//! The PostgreSQL side of the benchmark: the table a competent team would
//! design for the same API, loaded with `COPY ... FROM STDIN` and queried with
//! the ListTraces filters.
//!
//! Design: one row per trace with a typed column for every field (`trace_id`
//! uuid primary key, times `timestamptz`, `code` smallint, `source_ip` inet,
//! `user` flattened into `user_*` columns, `invoked_by` text[]). `request` and
//! `response` are `text`: cts returns them byte for byte as they were sent,
//! which `jsonb` (key re-ordering, whitespace) would not, and at a few hundred
//! bytes `jsonb` is larger, not smaller. Every ListTraces filter has a B-tree
//! index `(project_id, <column>, time DESC)`, plus `(project_id, time DESC)`
//! for unfiltered pages.
//!
//! Free text is `ILIKE '%word%'` over request, response and message, first on
//! the plain table, then with a pg_trgm GIN index over the three columns (the
//! index PostgreSQL offers for it, reported with its size as an extra cost).

use crate::aggregation::OperationDay;
use crate::query::ListQuery;
use anyhow::Context;
use bytes::Bytes;
use cts_model::{Attributes, BaseUser, SessionContext, Trace, UserInfo};
use futures_util::SinkExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

/// The table the benchmark (re)creates.
pub const TABLE: &str = "cts_traces";

/// The columns in COPY order, with their types.
const COLUMNS: &[(&str, &str)] = &[
    ("trace_id", "uuid PRIMARY KEY"),
    ("project_id", "text NOT NULL"),
    ("trace_name", "text NOT NULL"),
    ("trace_rating", "text NOT NULL"),
    ("trace_type", "text NOT NULL"),
    ("service_type", "text NOT NULL"),
    ("resource_type", "text NOT NULL"),
    ("resource_name", "text"),
    ("resource_id", "text"),
    ("resource_account_id", "text"),
    ("read_only", "boolean NOT NULL"),
    ("tracker_name", "text"),
    ("operation_id", "text"),
    ("source_ip", "inet"),
    ("request", "text"),
    ("response", "text"),
    ("code", "smallint"),
    ("api_version", "text"),
    ("message", "text"),
    ("time", "timestamptz NOT NULL"),
    ("record_time", "timestamptz NOT NULL"),
    ("request_id", "text"),
    ("location_info", "text"),
    ("endpoint", "text"),
    ("resource_url", "text"),
    ("enterprise_project_id", "text"),
    ("user_id", "text"),
    ("user_name", "text"),
    ("user_user_name", "text"),
    ("user_domain_id", "text"),
    ("user_domain_name", "text"),
    ("user_account_id", "text"),
    ("user_access_key_id", "text"),
    ("user_principal_urn", "text"),
    ("user_principal_id", "text"),
    ("user_principal_is_root_user", "boolean"),
    ("user_type", "text"),
    ("user_invoked_by", "text[]"),
    ("user_session_created_at", "text"),
    ("user_session_mfa_authenticated", "text"),
];

/// The ListTraces filter parameters and the columns they match.
pub const FILTER_COLUMNS: &[(&str, &str)] = &[
    ("service_type", "service_type"),
    ("user", "user_name"),
    ("resource_id", "resource_id"),
    ("resource_name", "resource_name"),
    ("resource_type", "resource_type"),
    ("trace_name", "trace_name"),
    ("trace_rating", "trace_rating"),
    ("access_key_id", "user_access_key_id"),
    ("enterprise_project_id", "enterprise_project_id"),
];

/// The statements that drop and recreate the table with its indexes.
pub fn schema_statements() -> Vec<String> {
    let columns: Vec<String> = COLUMNS.iter().map(|(name, kind)| format!("{name} {kind}")).collect();
    let mut statements = vec![
        format!("DROP TABLE IF EXISTS {TABLE}"),
        format!("CREATE TABLE {TABLE} ({})", columns.join(", ")),
        format!("CREATE INDEX {TABLE}_time ON {TABLE} (project_id, time DESC)"),
    ];
    statements.extend(
        FILTER_COLUMNS
            .iter()
            .map(|(_, column)| format!("CREATE INDEX {TABLE}_{column} ON {TABLE} (project_id, {column}, time DESC)")),
    );
    statements
}

fn copy_statement() -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
    format!("COPY {TABLE} ({}) FROM STDIN", names.join(", "))
}

/// Appends `value` to a COPY text-format row, escaping what the format
/// reserves: backslash, and the tab, newline and carriage return that would
/// otherwise end a field or a row.
pub fn escape_copy_text(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// A PostgreSQL array literal of text elements, each quoted.
fn text_array_literal(items: &[String]) -> String {
    let quoted: Vec<String> =
        items.iter().map(|item| format!("\"{}\"", item.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    format!("{{{}}}", quoted.join(","))
}

fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms as u64)
}

fn timestamp_literal(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).expect("time in range").format("%Y-%m-%d %H:%M:%S%.3f+00").to_string()
}

/// Appends one trace as a COPY text-format row (tab-separated, `\N` for
/// NULL, newline-terminated) in [`COLUMNS`] order.
pub fn encode_copy_row(trace: &Trace, out: &mut String) {
    let user = trace.user.as_ref();
    let domain = user.and_then(|u| u.domain.as_ref());
    let attributes = user.and_then(|u| u.session_context.as_ref()).and_then(|s| s.attributes.as_ref());
    let fields: [Option<String>; 40] = [
        Some(trace.trace_id.clone()),
        Some(trace.project_id.clone()),
        Some(trace.trace_name.clone()),
        Some(trace.trace_rating.to_string()),
        Some(trace.trace_type.to_string()),
        Some(trace.service_type.clone()),
        Some(trace.resource_type.clone()),
        trace.resource_name.clone(),
        trace.resource_id.clone(),
        trace.resource_account_id.clone(),
        Some(trace.read_only.to_string()),
        trace.tracker_name.clone(),
        trace.operation_id.clone(),
        trace.source_ip.clone(),
        trace.request.clone(),
        trace.response.clone(),
        trace.code.clone(),
        trace.api_version.clone(),
        trace.message.clone(),
        Some(timestamp_literal(trace.time)),
        Some(timestamp_literal(trace.record_time)),
        trace.request_id.clone(),
        trace.location_info.clone(),
        trace.endpoint.clone(),
        trace.resource_url.clone(),
        trace.enterprise_project_id.clone(),
        user.and_then(|u| u.id.clone()),
        user.and_then(|u| u.name.clone()),
        user.and_then(|u| u.user_name.clone()),
        domain.and_then(|d| d.id.clone()),
        domain.and_then(|d| d.name.clone()),
        user.and_then(|u| u.account_id.clone()),
        user.and_then(|u| u.access_key_id.clone()),
        user.and_then(|u| u.principal_urn.clone()),
        user.and_then(|u| u.principal_id.clone()),
        user.and_then(|u| u.principal_is_root_user.clone()),
        user.and_then(|u| u.user_type).map(|t| t.to_string()),
        user.and_then(|u| u.invoked_by.as_deref()).map(text_array_literal),
        attributes.and_then(|a| a.created_at.clone()),
        attributes.and_then(|a| a.mfa_authenticated.clone()),
    ];
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            out.push('\t');
        }
        match field {
            Some(value) => escape_copy_text(value, out),
            None => out.push_str("\\N"),
        }
    }
    out.push('\n');
}

/// The select list that reads a row back in [`COLUMNS`] order, times as UTC ms.
fn select_list() -> String {
    let expressions: Vec<String> = COLUMNS
        .iter()
        .map(|(name, _)| match *name {
            "trace_id" => "trace_id::text".to_owned(),
            "source_ip" => "host(source_ip)".to_owned(),
            "time" | "record_time" => format!("(extract(epoch FROM {name}) * 1000)::int8"),
            other => other.to_owned(),
        })
        .collect();
    expressions.join(", ")
}

/// Rebuilds the trace cts would return from a row of [`select_list`].
fn trace_from_row(row: &Row) -> anyhow::Result<Trace> {
    let text = |index: usize| -> Result<Option<String>, tokio_postgres::Error> { row.try_get(index) };
    let required = |index: usize| -> anyhow::Result<String> {
        text(index)?.with_context(|| format!("column {} is NULL", COLUMNS[index].0))
    };
    let domain = BaseUser { id: text(29)?, name: text(30)? };
    let attributes = Attributes { created_at: text(38)?, mfa_authenticated: text(39)? };
    let user = UserInfo {
        id: text(26)?,
        name: text(27)?,
        user_name: text(28)?,
        domain: (domain != BaseUser::default()).then_some(domain),
        account_id: text(31)?,
        access_key_id: text(32)?,
        principal_urn: text(33)?,
        principal_id: text(34)?,
        principal_is_root_user: row.try_get::<_, Option<bool>>(35)?.map(|flag| flag.to_string()),
        user_type: text(36)?.map(|t| t.parse()).transpose().map_err(anyhow::Error::msg)?,
        invoked_by: row.try_get(37)?,
        session_context: (attributes != Attributes::default())
            .then_some(SessionContext { attributes: Some(attributes) }),
    };
    Ok(Trace {
        trace_id: required(0)?,
        project_id: required(1)?,
        trace_name: required(2)?,
        trace_rating: required(3)?.parse().map_err(anyhow::Error::msg)?,
        trace_type: required(4)?.parse().map_err(anyhow::Error::msg)?,
        service_type: required(5)?,
        resource_type: required(6)?,
        resource_name: text(7)?,
        resource_id: text(8)?,
        resource_account_id: text(9)?,
        read_only: row.try_get(10)?,
        tracker_name: text(11)?,
        operation_id: text(12)?,
        source_ip: text(13)?,
        request: text(14)?,
        response: text(15)?,
        code: row.try_get::<_, Option<i16>>(16)?.map(|code| code.to_string()),
        api_version: text(17)?,
        message: text(18)?,
        time: row.try_get(19)?,
        record_time: row.try_get(20)?,
        request_id: text(21)?,
        location_info: text(22)?,
        endpoint: text(23)?,
        resource_url: text(24)?,
        enterprise_project_id: text(25)?,
        user: (user != UserInfo::default()).then_some(user),
    })
}

/// Connects and drives the connection on the runtime.
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.with_context(|| format!("connecting to PostgreSQL at {url}"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("cts bench: PostgreSQL connection ended: {error}");
        }
    });
    client.batch_execute("SET synchronous_commit = on").await?;
    Ok(client)
}

/// Drops and recreates the table and its indexes.
pub async fn reset_schema(client: &Client) -> anyhow::Result<()> {
    for statement in schema_statements() {
        client.batch_execute(&statement).await.with_context(|| statement.clone())?;
    }
    Ok(())
}

/// Loads the COPY-encoded batches over `concurrency` connections, one
/// transaction per batch; returns the wall time.
pub async fn load(url: &str, batches: Arc<Vec<Bytes>>, concurrency: usize) -> anyhow::Result<Duration> {
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(connect(url).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let (batches, next) = (Arc::clone(&batches), Arc::clone(&next));
            tokio::spawn(async move {
                let copy = copy_statement();
                while let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let transaction = client.transaction().await?;
                    let sink = transaction.copy_in::<_, Bytes>(&copy).await?;
                    let mut sink = std::pin::pin!(sink);
                    sink.send(batch.clone()).await?;
                    sink.as_mut().finish().await?;
                    transaction.commit().await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.await.context("PostgreSQL loader panicked")??;
    }
    Ok(started.elapsed())
}

/// Runs ListTraces against the table: the traces of the page, newest first,
/// as the JSON objects cts returns, and the marker of the next page (fetches
/// one row more than the page to know).
pub async fn list_traces(
    client: &Client,
    project_id: &str,
    query: &ListQuery,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let (sql, filter_values) = list_statement(query);
    let (from, to) = (system_time(query.from_ms), system_time(query.to_ms));
    let limit = query.limit as i64 + 1;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&project_id, &from, &to, &limit];
    params.extend(filter_values.iter().map(|v| v as &(dyn ToSql + Sync)));
    let rows = client.query(&sql, &params).await.with_context(|| sql.clone())?;
    rows.iter().take(query.limit).map(|row| Ok(serde_json::to_value(trace_from_row(row)?)?)).collect()
}

/// The SQL of a ListTraces page of management traces: `$1` project, `$2`/`$3`
/// the time bounds, `$4` the row limit, then one parameter per filter and one
/// `ILIKE` pattern per free-text term.
fn list_statement(query: &ListQuery) -> (String, Vec<String>) {
    let mut sql = format!(
        "SELECT {} FROM {TABLE} WHERE project_id = $1 AND tracker_name IS NULL AND time >= $2 AND time <= $3",
        select_list()
    );
    let mut values = Vec::new();
    for (param, value) in &query.filters {
        let column = FILTER_COLUMNS
            .iter()
            .find(|(name, _)| name == param)
            .map(|(_, column)| column)
            .unwrap_or_else(|| panic!("{param} is not a ListTraces filter"));
        values.push(value.clone());
        sql.push_str(&format!(" AND {column} = ${}", values.len() + 4));
    }
    for term in &query.terms {
        values.push(like_pattern(term));
        let n = values.len() + 4;
        sql.push_str(&format!(" AND (request ILIKE ${n} OR response ILIKE ${n} OR message ILIKE ${n})"));
    }
    sql.push_str(" ORDER BY time DESC, trace_id DESC LIMIT $4");
    (sql, values)
}

/// `%term%` with LIKE's wildcards and escape character in the term taken literally.
pub fn like_pattern(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Traces per operation per UTC day in the window, as cts's SQL computes it.
pub async fn operations_per_day(
    client: &Client,
    project_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> anyhow::Result<Vec<OperationDay>> {
    let sql = format!(
        "SELECT trace_name, (extract(epoch FROM time) * 1000)::int8 / 86400000 AS day, count(*) AS traces \
         FROM {TABLE} WHERE project_id = $1 AND time >= $2 AND time <= $3 \
         GROUP BY trace_name, day ORDER BY day, trace_name COLLATE \"C\""
    );
    let (from, to) = (system_time(from_ms), system_time(to_ms));
    let rows = client.query(&sql, &[&project_id, &from, &to]).await.with_context(|| sql.clone())?;
    rows.iter()
        .map(|row| Ok(OperationDay { trace_name: row.try_get(0)?, day: row.try_get(1)?, traces: row.try_get(2)? }))
        .collect()
}

/// The pg_trgm GIN index over the free-text columns.
pub const TRIGRAM_INDEX: &str = "cts_traces_text_trgm";

/// Creates the pg_trgm extension (a trusted extension: the database owner may) and the GIN index over request,
/// response and message; returns the build time and the index's bytes.
pub async fn create_trigram_index(client: &Client) -> anyhow::Result<(Duration, u64)> {
    client.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm").await.context(
        "CREATE EXTENSION pg_trgm (Debian ships it with postgresql-15; scripts/postgres.sh creates it as admin)",
    )?;
    let started = std::time::Instant::now();
    let statement = format!(
        "CREATE INDEX {TRIGRAM_INDEX} ON {TABLE} USING gin \
         (request gin_trgm_ops, response gin_trgm_ops, message gin_trgm_ops)"
    );
    client.batch_execute(&statement).await.with_context(|| statement.clone())?;
    client.batch_execute(&format!("ANALYZE {TABLE}")).await?;
    let elapsed = started.elapsed();
    let row = client.query_one(&format!("SELECT pg_relation_size('{TRIGRAM_INDEX}')::int8"), &[]).await?;
    Ok((elapsed, row.get::<_, i64>(0) as u64))
}

/// The process id of the server (the postmaster), the parent of this connection's backend.
pub async fn postmaster_pid(client: &Client) -> anyhow::Result<u32> {
    let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
    let backend = u32::try_from(backend).context("backend pid")?;
    let stat = std::fs::read_to_string(format!("/proc/{backend}/stat"))
        .context("reading the backend's /proc entry (is PostgreSQL on this machine?)")?;
    Ok(crate::procfs::parse_stat(&stat).context("parsing the backend's stat")?.parent)
}

/// Bytes of the table with its indexes and TOAST.
pub async fn table_bytes(client: &Client) -> anyhow::Result<u64> {
    let row = client.query_one(&format!("SELECT pg_total_relation_size('{TABLE}')::int8"), &[]).await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Brings statistics and the visibility map up to date, as autovacuum would
/// after a load.
pub async fn vacuum_analyze(client: &Client) -> anyhow::Result<()> {
    Ok(client.batch_execute(&format!("VACUUM ANALYZE {TABLE}")).await?)
}

#[cfg(test)]
mod tests;
