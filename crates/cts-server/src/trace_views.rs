//! What the console shows besides the list: `GET /v3/{project_id}/traces/histogram`, traces per time
//! bucket by rating, and `GET /v3/{project_id}/traces/tail`, newly stored traces as server-sent events.
//! Both take ListTraces's filter parameters (`cts_query::ListTraces::parse`).
//!
//! The histogram counts the window's traces per rating into at most [`MAX_BUCKETS`] buckets of whole
//! minutes, oldest first, every bucket present (empty ones with zeros), with `Store::count_by_time`:
//! the store's own query plan over its in-memory time columns and postings, no trace read or decoded.
//!
//! The tail subscribes to the store's committed traces (`Store::subscribe`) and sends each one of the
//! caller's project that matches the filters (the time window aside) as an event `trace` whose data is
//! the trace as ListTraces returns it. A subscriber too slow for the store gets an event `lagged`
//! (the page reloads the list) and continues with newer traces.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::Uri;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cts_iam::sign::parse_query_string;
use cts_iam::Principal;
use cts_model::Trace;
use cts_query::ListTraces;
use cts_store::TraceQuery;
use serde::Serialize;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;

/// The most buckets a histogram has.
pub(crate) const MAX_BUCKETS: i64 = 360;
const MINUTE_MS: i64 = 60_000;

/// The histogram's answer.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Histogram {
    pub from: i64,
    pub to: i64,
    pub bucket_ms: i64,
    pub buckets: Vec<Bucket>,
}

/// Traces whose time is in `[time, time + bucket_ms)`, by rating.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub time: i64,
    pub normal: u64,
    pub warning: u64,
    pub incident: u64,
}

/// The filter of a request, without paging.
fn parse_filter(principal: &Principal, uri: &Uri) -> Result<TraceQuery, ApiError> {
    let pairs: Vec<(String, String)> = parse_query_string(uri.query().unwrap_or(""))
        .into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "limit" | "next"))
        .collect();
    Ok(ListTraces::parse(&principal.project_id, &pairs, cts_model::now_ms())?.query().clone())
}

/// Whole minutes, enough that the window fits in [`MAX_BUCKETS`].
pub(crate) fn bucket_width(from: i64, to: i64) -> i64 {
    let span = (to - from).max(1);
    let minutes = (span + MAX_BUCKETS * MINUTE_MS - 1) / (MAX_BUCKETS * MINUTE_MS);
    minutes.max(1) * MINUTE_MS
}

pub(crate) async fn histogram(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<Json<Histogram>, ApiError> {
    let query = parse_filter(&principal, &uri)?;
    let store = state.store.clone();
    let histogram = tokio::task::spawn_blocking(move || {
        // A single-trace query has an unbounded window: its histogram is the trace's own minute.
        let (from, to) =
            if query.from_ms == i64::MIN { (0, cts_model::now_ms()) } else { (query.from_ms, query.to_ms) };
        let bucket_ms = bucket_width(from, to);
        let start = from - from.rem_euclid(bucket_ms);
        let count = ((to - start) / bucket_ms + 1) as usize;
        let mut buckets: Vec<Bucket> =
            (0..count).map(|i| Bucket { time: start + i as i64 * bucket_ms, ..Bucket::default() }).collect();
        for (time, counts) in store.count_by_time(&query, bucket_ms)? {
            let index = ((time - start) / bucket_ms).clamp(0, count as i64 - 1) as usize;
            let bucket = &mut buckets[index];
            bucket.normal += counts.normal;
            bucket.warning += counts.warning;
            bucket.incident += counts.incident;
        }
        Ok::<_, cts_store::StoreError>(Histogram { from, to, bucket_ms, buckets })
    })
    .await
    .map_err(ApiError::TaskFailed)?
    .map_err(|error| ApiError::ReadFailed(Box::new(error)))?;
    Ok(Json(histogram))
}

pub(crate) async fn tail(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = parse_filter(&principal, &uri)?;
    let receiver = state.store.subscribe();
    let events = futures_util::stream::unfold(
        (receiver, query, Vec::<Trace>::new()),
        |(mut receiver, query, mut pending)| async move {
            loop {
                if let Some(trace) = pending.pop() {
                    let data = serde_json::to_string(&trace).expect("traces serialize to JSON");
                    let event = Event::default().event("trace").data(data);
                    return Some((Ok::<_, Infallible>(event), (receiver, query, pending)));
                }
                match receiver.recv().await {
                    Ok(batch) => {
                        // Popped from the end: reversed so that commit order is kept.
                        pending = batch.iter().rev().filter(|trace| query.selects(trace)).cloned().collect();
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        let event = Event::default().event("lagged").data(skipped.to_string());
                        return Some((Ok(event), (receiver, query, pending)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_whole_minutes_and_at_most_max_buckets() {
        let hour = 3_600_000;
        for (span, expected) in [(hour, MINUTE_MS), (6 * hour, MINUTE_MS), (24 * hour, 4 * MINUTE_MS), (1, MINUTE_MS)] {
            let width = bucket_width(0, span);
            assert_eq!(width, expected, "span {span}");
            assert!(span / width < MAX_BUCKETS + 1);
        }
        assert_eq!(bucket_width(0, 7 * 24 * 3_600_000), 28 * MINUTE_MS);
    }
}
