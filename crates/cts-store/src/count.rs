//! Counting a query's traces per time bucket and rating (the console's timeline) without reading a
//! single trace: the same plan and the same row matching as [`Store::query`], once per rating with
//! the rating as one more condition, and each matching row's time from where the store keeps it in
//! memory (a segment's time column, a memtable's trace). Nothing is decompressed or decoded.

use super::{Part, Store};
use crate::error::StoreError;
use crate::plan::Plan;
use crate::query::TraceQuery;
use cts_model::TraceRating;
use std::collections::BTreeMap;

/// How many traces of each rating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatingCounts {
    pub normal: u64,
    pub warning: u64,
    pub incident: u64,
}

impl RatingCounts {
    pub fn add(&mut self, rating: TraceRating, count: u64) {
        match rating {
            TraceRating::Normal => self.normal += count,
            TraceRating::Warning => self.warning += count,
            TraceRating::Incident => self.incident += count,
        }
    }

    pub fn total(&self) -> u64 {
        self.normal + self.warning + self.incident
    }
}

impl Store {
    /// The traces [`Store::query`] would return for `query` (every page of it: `limit` does not
    /// apply, `after` does), counted per rating in buckets of `bucket_ms` aligned to the epoch: each
    /// non-empty bucket's start (a multiple of `bucket_ms`) with its counts, oldest first.
    pub fn count_by_time(&self, query: &TraceQuery, bucket_ms: i64) -> Result<Vec<(i64, RatingCounts)>, StoreError> {
        assert!(bucket_ms > 0, "buckets have a positive width");
        let cutoff = cts_model::now_ms().saturating_sub(self.shared().config.retention_ms);
        let bucket_of = |time: i64| time - time.rem_euclid(bucket_ms);
        let mut buckets: BTreeMap<i64, RatingCounts> = BTreeMap::new();
        let unlimited = TraceQuery { limit: usize::MAX, ..query.clone() };
        if let Some(trace_id) = unlimited.filters.trace_id.as_deref() {
            let plan = Plan::new(&unlimited, cutoff);
            let found = self.get(&query.project_id, trace_id)?.filter(|trace| !plan.is_empty() && plan.matches(trace));
            if let Some(trace) = found {
                buckets.entry(bucket_of(trace.time)).or_default().add(trace.trace_rating, 1);
            }
            return Ok(buckets.into_iter().collect());
        }
        let state = self.shared().state.read();
        for &rating in TraceRating::ALL {
            if query.filters.trace_rating.is_some_and(|wanted| wanted != rating) {
                continue;
            }
            let mut rated = unlimited.clone();
            rated.filters.trace_rating = Some(rating);
            let plan = Plan::new(&rated, cutoff);
            if plan.is_empty() {
                continue;
            }
            for part in state.parts().filter(|part| {
                let (min, max) = part.time_range();
                plan.overlaps(min, max)
            }) {
                let mut count = |time: i64| buckets.entry(bucket_of(time)).or_default().add(rating, 1);
                match part {
                    Part::Memtable(memtable) => {
                        memtable.matching_rows(&plan).0.for_each(|row| count(memtable.trace(row).time))
                    }
                    Part::Segment(segment) => {
                        for row in segment.matching_rows(&plan) {
                            count(segment.time(row?));
                        }
                    }
                }
            }
        }
        Ok(buckets.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::SortKey;
    use crate::tests::{config, make_query, make_trace, model_query};
    use cts_model::{Trace, TraceType};

    /// What the console did before: every page of the query, each trace counted.
    fn counted_by_paging(store: &Store, query: &TraceQuery, page: usize, bucket_ms: i64) -> Vec<(i64, RatingCounts)> {
        let mut buckets: BTreeMap<i64, RatingCounts> = BTreeMap::new();
        let mut paged = TraceQuery { limit: page, ..query.clone() };
        loop {
            let traces = store.query(&paged).unwrap();
            for trace in &traces {
                buckets.entry(trace.time - trace.time.rem_euclid(bucket_ms)).or_default().add(trace.trace_rating, 1);
            }
            if traces.len() < page {
                return buckets.into_iter().collect();
            }
            paged.after = traces.last().map(SortKey::of);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Every filter, the trace id, a paging key and bucket widths, across memtables and segments
        /// (also segments whose every row is of one project and kind): the same counts as paging.
        #[test]
        fn counts_equal_what_paging_through_the_query_counts(
            count in 1u64..500,
            seal_every in 16usize..200,
            first_seed in 0u64..1000,
            uniform in proptest::bool::ANY,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(config(dir.path(), seal_every)).unwrap();
            let traces: Vec<Trace> = (first_seed..first_seed + count)
                .map(make_trace)
                .map(|trace| match uniform {
                    true => Trace { project_id: "p1".into(), trace_type: TraceType::ApiCall, tracker_name: None, ..trace },
                    false => trace,
                })
                .collect();
            for chunk in traces.chunks(50) {
                store.append_blocking(chunk.to_vec()).unwrap();
            }
            for seed in 0..30 {
                let mut query = make_query(seed + first_seed, 0);
                if uniform && seed % 2 == 0 {
                    query = TraceQuery { project_id: "p1".into(), data: false, tracker_name: None, ..query };
                    query.filters = Default::default();
                }
                let bucket_ms = [1_000, 3_000, 7_000, 60_000][(seed % 4) as usize];
                let page = [1, 7, 100][(seed % 3) as usize];
                let expected = counted_by_paging(&store, &query, page, bucket_ms);
                proptest::prop_assert_eq!(store.count_by_time(&query, bucket_ms).unwrap(), expected.clone(), "{:?}", query);
                let mut modelled: BTreeMap<i64, RatingCounts> = BTreeMap::new();
                for trace in model_query(&traces, &TraceQuery { limit: usize::MAX, ..query.clone() }) {
                    modelled.entry(trace.time - trace.time.rem_euclid(bucket_ms)).or_default().add(trace.trace_rating, 1);
                }
                proptest::prop_assert_eq!(modelled.into_iter().collect::<Vec<_>>(), expected, "model {:?}", query);
                let probe = &traces[(seed % count) as usize];
                query.after = Some(SortKey::of(probe));
                let expected = counted_by_paging(&store, &query, page, bucket_ms);
                proptest::prop_assert_eq!(store.count_by_time(&query, bucket_ms).unwrap(), expected, "after {:?}", query);
                query.after = None;
                query.filters.trace_id = Some(probe.trace_id.clone());
                let expected = counted_by_paging(&store, &query, page, bucket_ms);
                proptest::prop_assert_eq!(store.count_by_time(&query, bucket_ms).unwrap(), expected, "id {:?}", query);
            }
        }
    }

    #[test]
    fn the_counts_of_a_busy_window_add_up_to_its_traces() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path(), 64)).unwrap();
        let traces: Vec<Trace> = (0..1000).map(make_trace).collect();
        store.append_blocking(traces.clone()).unwrap();
        let query = TraceQuery { limit: 1, ..make_query(0, 1) };
        let query =
            TraceQuery { filters: Default::default(), tracker_name: None, from_ms: 0, to_ms: i64::MAX, ..query };
        let expected =
            traces.iter().filter(|t| t.project_id == query.project_id && t.trace_type.is_data() == query.data);
        let counted: u64 = store.count_by_time(&query, 1_000).unwrap().iter().map(|(_, counts)| counts.total()).sum();
        assert_eq!(counted, expected.count() as u64);
    }
}
