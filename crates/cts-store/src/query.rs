//! What a query asks for ([`TraceQuery`], [`Filters`]) and the total order of results ([`SortKey`]).

use cts_model::{Trace, TraceRating};

/// Which traces, newest first. The order is (time DESC, trace_id DESC), a total order, so paging with
/// [`TraceQuery::after`] never skips or repeats a trace, even while new traces arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceQuery {
    pub project_id: String,
    /// `false`: management traces (ConsoleAction, ApiCall, SystemAction); `true`: data traces (ObsSDK, ObsAPI).
    pub data: bool,
    /// Matches the trace's `tracker_name` exactly. Management traces carry none, so pass `None` for them.
    pub tracker_name: Option<String>,
    /// Inclusive lower bound on `time` (UTC ms). The store also never returns traces older than its retention.
    pub from_ms: i64,
    /// Inclusive upper bound on `time` (UTC ms).
    pub to_ms: i64,
    pub filters: Filters,
    /// Continue strictly after this key, toward older traces (stable paging).
    pub after: Option<SortKey>,
    pub limit: usize,
}

/// Field conditions, combined with AND: each [`Pattern`] matches its field's value (exactly or as a prefix,
/// case-sensitively unless `ignore_case`), and every `text` term occurs in the trace's request, response or
/// message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub service_type: Option<Pattern>,
    /// Matches `user.name`.
    pub user: Option<Pattern>,
    pub resource_id: Option<Pattern>,
    pub resource_name: Option<Pattern>,
    pub resource_type: Option<Pattern>,
    pub trace_name: Option<Pattern>,
    pub trace_rating: Option<TraceRating>,
    /// Matches `user.access_key_id`.
    pub access_key_id: Option<Pattern>,
    pub enterprise_project_id: Option<Pattern>,
    pub trace_id: Option<String>,
    /// The patterns compare letters without regard to case (Unicode lowercase).
    pub ignore_case: bool,
    /// Free-text terms: each must be a substring of the request, the response or the message, compared
    /// without regard to case.
    pub text: Vec<String>,
}

/// What a field's value must be: equal to `value`, or (with `prefix`) start with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub value: String,
    pub prefix: bool,
}

impl Pattern {
    /// Values that start with `value`.
    pub fn prefix(value: impl Into<String>) -> Pattern {
        Pattern { value: value.into(), prefix: true }
    }
}

impl From<&str> for Pattern {
    /// The value itself, exactly.
    fn from(value: &str) -> Pattern {
        Pattern { value: value.to_owned(), prefix: false }
    }
}

impl From<String> for Pattern {
    /// The value itself, exactly.
    fn from(value: String) -> Pattern {
        Pattern { value, prefix: false }
    }
}

impl TraceQuery {
    /// Whether `trace` is of the query's project, kind and tracker and satisfies its filters, whatever its
    /// time (the live tail's test of a new trace).
    pub fn selects(&self, trace: &Trace) -> bool {
        crate::plan::Plan::new(self, i64::MIN).matches_fields(trace)
    }
}

/// The position of a trace in the result order. Derived `Ord` compares `time`, then `trace_id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SortKey {
    pub time: i64,
    pub trace_id: String,
}

impl SortKey {
    pub fn of(trace: &Trace) -> SortKey {
        SortKey { time: trace.time, trace_id: trace.trace_id.clone() }
    }
}
