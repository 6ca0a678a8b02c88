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

/// Exact, case-sensitive field matches, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub service_type: Option<String>,
    /// Matches `user.name`.
    pub user: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub resource_type: Option<String>,
    pub trace_name: Option<String>,
    pub trace_rating: Option<TraceRating>,
    /// Matches `user.access_key_id`.
    pub access_key_id: Option<String>,
    pub enterprise_project_id: Option<String>,
    pub trace_id: Option<String>,
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
