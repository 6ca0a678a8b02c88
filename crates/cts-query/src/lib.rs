//! ListTraces semantics: the request parameters, their validation, and paging over the store.
//!
//! Parameters (exact CTS v3 behaviour): `trace_type` system|data (default system); `limit` 1..=200
//! (default 10); `from`/`to` UTC ms (default the last hour; `from` > `to` is an error); `next` = the
//! `marker` of the previous page, a trace id; `tracker_name` (data traces; for system traces only
//! `system` may be given); `trace_id` overrides every other filter and the time window; the filters
//! `service_type`, `user`, `resource_id`, `resource_name`, `resource_type`, `trace_name`, `trace_rating`
//! (normal|warning|incident), `access_key_id`, `enterprise_project_id`. Unknown parameters are ignored
//! (SDKs send more than CTS documents); empty values count as absent; a parameter given twice is an error.
//!
//! Search beyond CTS (none of it changes what the SDK's own parameters mean):
//! - a filter value ending in `*` matches values starting with the rest (`resource_name=order-2026*`); `\*` at
//!   the end is a literal asterisk. Applies to every filter but `trace_rating`, `tracker_name` and `trace_id`.
//! - `ignore_case=true` compares the filters' values without regard to case (Unicode lowercase).
//! - `q` is free text: whitespace-separated terms or `"quoted phrases"`, each of which must occur, without regard
//!   to case, in the trace's request, response or message (at most [`MAX_TERMS`] terms of at most
//!   [`MAX_TERM_CHARS`] characters).
//!
//! Paging is stable while traces arrive: the marker is resolved to the trace's sort key
//! (time, trace_id) and the next page continues strictly after it, toward older traces.

use cts_model::{ErrorCode, Trace, TraceRating};
use cts_store::{Filters, Pattern, SortKey, Store, StoreError, TraceQuery};
use serde::Serialize;

/// Traces per page when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 10;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 200;
/// The default window: the last hour.
pub const DEFAULT_WINDOW_MS: i64 = 3_600_000;
/// The tracker name of management traces.
pub const SYSTEM_TRACKER: &str = "system";
/// The most free-text terms `q` may hold.
pub const MAX_TERMS: usize = 8;
/// The longest free-text term, in characters.
pub const MAX_TERM_CHARS: usize = 256;

/// Why a ListTraces request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: String, reason: String },
    /// `next` names no stored trace (or one dropped by retention since).
    #[error("unknown marker {0}")]
    UnknownMarker(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl QueryError {
    /// The CTS error code: CTS.0300 for a bad query, CTS.0005 when reading failed.
    pub fn code(&self) -> ErrorCode {
        match self {
            QueryError::InvalidParameter { .. } | QueryError::UnknownMarker(_) => ErrorCode::QueryFailed,
            QueryError::Store(_) => ErrorCode::ReadFailed,
        }
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> QueryError {
    QueryError::InvalidParameter { name: name.to_owned(), reason: reason.into() }
}

/// The parameters of ListTraces, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTraces {
    /// The store query, without the paging key (resolved from `marker` when run).
    query: TraceQuery,
    marker: Option<String>,
}

/// The response body of ListTraces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListTracesResponse {
    pub traces: Vec<Trace>,
    pub meta_data: MetaData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaData {
    /// Traces in this page.
    pub count: usize,
    /// The id of the page's last trace when more follow; null on the last page.
    pub marker: Option<String>,
}

/// The request's parameters by name; each may be given once.
struct Params<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Params<'a> {
    /// The non-empty value of `name`, if given.
    fn get(&self, name: &str) -> Result<Option<&'a str>, QueryError> {
        let mut values = self.pairs.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str());
        let value = values.next();
        if values.next().is_some() {
            return Err(invalid(name, "is given more than once"));
        }
        Ok(value.filter(|v| !v.is_empty()))
    }

    fn owned(&self, name: &str) -> Result<Option<String>, QueryError> {
        Ok(self.get(name)?.map(str::to_owned))
    }

    /// The value of `name` as a [`Pattern`]: a trailing `*` asks for a prefix, a trailing `\*` is a literal `*`.
    fn pattern(&self, name: &str) -> Result<Option<Pattern>, QueryError> {
        Ok(self.get(name)?.map(|value| {
            if let Some(literal) = value.strip_suffix("\\*") {
                Pattern::from(format!("{literal}*"))
            } else if let Some(prefix) = value.strip_suffix('*') {
                Pattern::prefix(prefix)
            } else {
                Pattern::from(value)
            }
        }))
    }

    fn flag(&self, name: &str) -> Result<bool, QueryError> {
        match self.get(name)? {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(invalid(name, "must be true or false")),
        }
    }

    fn millis(&self, name: &str) -> Result<Option<i64>, QueryError> {
        self.get(name)?
            .map(|v| v.parse::<i64>().map_err(|_| invalid(name, "must be a UTC timestamp in milliseconds")))
            .transpose()
    }
}

impl ListTraces {
    /// `pairs` = the decoded query string pairs. `now_ms` = current time (default window: the last hour).
    pub fn parse(project_id: &str, pairs: &[(String, String)], now_ms: i64) -> Result<ListTraces, QueryError> {
        let params = Params { pairs };
        let data = match params.get("trace_type")? {
            None | Some("system") => false,
            Some("data") => true,
            Some(_) => return Err(invalid("trace_type", "must be system or data")),
        };
        let limit = match params.get("limit")? {
            None => DEFAULT_LIMIT,
            Some(value) => match value.parse::<usize>() {
                Ok(limit @ 1..=MAX_LIMIT) => limit,
                _ => return Err(invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))),
            },
        };
        let to_ms = params.millis("to")?.unwrap_or(now_ms);
        let from_ms = params.millis("from")?.unwrap_or(to_ms.saturating_sub(DEFAULT_WINDOW_MS));
        if from_ms > to_ms {
            return Err(invalid("from", "must not be later than to"));
        }
        let tracker_name = match (data, params.owned("tracker_name")?) {
            (false, Some(name)) if name != SYSTEM_TRACKER => {
                return Err(invalid("tracker_name", "must be system for system traces"))
            }
            (false, _) => None,
            (true, name) => name,
        };
        let trace_rating = params
            .get("trace_rating")?
            .map(|v| v.parse::<TraceRating>().map_err(|reason| invalid("trace_rating", reason)))
            .transpose()?;
        let marker = params.owned("next")?;
        let query = match params.owned("trace_id")? {
            Some(trace_id) => TraceQuery {
                project_id: project_id.to_owned(),
                data,
                tracker_name: None,
                from_ms: i64::MIN,
                to_ms: i64::MAX,
                filters: Filters { trace_id: Some(trace_id), ..Filters::default() },
                after: None,
                limit,
            },
            None => TraceQuery {
                project_id: project_id.to_owned(),
                data,
                tracker_name,
                from_ms,
                to_ms,
                filters: Filters {
                    service_type: params.pattern("service_type")?,
                    user: params.pattern("user")?,
                    resource_id: params.pattern("resource_id")?,
                    resource_name: params.pattern("resource_name")?,
                    resource_type: params.pattern("resource_type")?,
                    trace_name: params.pattern("trace_name")?,
                    trace_rating,
                    access_key_id: params.pattern("access_key_id")?,
                    enterprise_project_id: params.pattern("enterprise_project_id")?,
                    trace_id: None,
                    ignore_case: params.flag("ignore_case")?,
                    text: params.get("q")?.map(search_terms).transpose()?.unwrap_or_default(),
                },
                after: None,
                limit,
            },
        };
        Ok(ListTraces { query, marker })
    }

    /// The store query this request runs (without the paging key).
    pub fn query(&self) -> &TraceQuery {
        &self.query
    }

    /// Runs the query: resolves `next` to its sort key, fetches `limit + 1` traces to know whether
    /// another page follows.
    pub fn run(&self, store: &Store) -> Result<ListTracesResponse, QueryError> {
        let after = match &self.marker {
            None => None,
            Some(marker) => {
                let trace = store
                    .get(&self.query.project_id, marker)?
                    .ok_or_else(|| QueryError::UnknownMarker(marker.clone()))?;
                Some(SortKey::of(&trace))
            }
        };
        let limit = self.query.limit;
        let query = TraceQuery { after, limit: limit + 1, ..self.query.clone() };
        let mut traces = store.query(&query)?;
        let more = traces.len() > limit;
        traces.truncate(limit);
        let marker = if more { traces.last().map(|t| t.trace_id.clone()) } else { None };
        Ok(ListTracesResponse { meta_data: MetaData { count: traces.len(), marker }, traces })
    }
}

/// The terms of a free-text search: whitespace-separated words and `"quoted phrases"`.
fn search_terms(q: &str) -> Result<Vec<String>, QueryError> {
    let mut terms = Vec::new();
    let mut rest = q.trim_start();
    while !rest.is_empty() {
        let (term, after) = match rest.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').ok_or_else(|| invalid("q", "has a quote that is not closed"))?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => {
                let end = rest.find(|c: char| c.is_whitespace() || c == '"').unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        if term.chars().count() > MAX_TERM_CHARS {
            return Err(invalid("q", format!("has a term longer than {MAX_TERM_CHARS} characters")));
        }
        if !term.is_empty() {
            terms.push(term.to_owned());
        }
        rest = after.trim_start();
    }
    if terms.len() > MAX_TERMS {
        return Err(invalid("q", format!("has more than {MAX_TERMS} terms")));
    }
    Ok(terms)
}

#[cfg(test)]
mod tests;
