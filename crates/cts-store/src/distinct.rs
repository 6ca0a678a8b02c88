//! Distinct values of a project's traces, for ListTraceResources (service types and their resource
//! types) and ListUserResources (the operators), answered from the in-memory indexes of every part:
//! the project's posting list, bounded to the time window, is intersected with the postings of each
//! value. No trace is read or decoded.

use super::{Part, Store};
use crate::plan::{FieldIndexes, FilterField};
use std::collections::{BTreeMap, BTreeSet};

impl Store {
    /// The service types of the project's traces recorded at or after `since_ms` (and within the
    /// retention), each with the resource types seen under it.
    pub fn trace_resources(&self, project_id: &str, since_ms: i64) -> BTreeMap<String, BTreeSet<String>> {
        let mut resources: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        self.for_each_part(project_id, since_ms, |indexes, project_rows| {
            for (service_type, service_rows) in indexes.field(FilterField::ServiceType).values() {
                let rows = intersection(project_rows, service_rows);
                if rows.is_empty() {
                    continue;
                }
                let resource_types = resources.entry(service_type.to_owned()).or_default();
                for (resource_type, resource_rows) in indexes.field(FilterField::ResourceType).values() {
                    if !resource_types.contains(resource_type) && intersects(&rows, resource_rows) {
                        resource_types.insert(resource_type.to_owned());
                    }
                }
            }
        });
        resources
    }

    /// The user names (`user.name`) of the project's traces recorded at or after `since_ms` (and
    /// within the retention).
    pub fn trace_users(&self, project_id: &str, since_ms: i64) -> BTreeSet<String> {
        let mut users = BTreeSet::new();
        self.for_each_part(project_id, since_ms, |indexes, project_rows| {
            for (user, user_rows) in indexes.field(FilterField::User).values() {
                if !users.contains(user) && intersects(project_rows, user_rows) {
                    users.insert(user.to_owned());
                }
            }
        });
        users
    }

    /// Calls `visit` with the indexes of each part holding traces of the project in the window, and
    /// the rows of those traces (ascending).
    fn for_each_part(&self, project_id: &str, since_ms: i64, mut visit: impl FnMut(&FieldIndexes, &[u32])) {
        let retention_cutoff = cts_model::now_ms().saturating_sub(self.shared().config.retention_ms);
        let from_ms = since_ms.max(retention_cutoff);
        let state = self.shared().state.read();
        for part in state.parts().filter(|part| part.time_range().1 >= from_ms) {
            let (indexes, rows): (&FieldIndexes, Vec<u32>) = match part {
                Part::Memtable(memtable) => {
                    let indexes = memtable.indexes();
                    let project = indexes.field(FilterField::Project).rows(project_id);
                    (indexes, project.iter().copied().filter(|&row| memtable.trace(row).time >= from_ms).collect())
                }
                Part::Segment(segment) => {
                    let indexes = segment.indexes();
                    let project = indexes.field(FilterField::Project).rows(project_id);
                    let first = segment.first_row_at(from_ms);
                    (indexes, project[project.partition_point(|&row| (row as usize) < first)..].to_vec())
                }
            };
            if !rows.is_empty() {
                visit(indexes, &rows);
            }
        }
    }
}

/// The rows in both ascending lists: each row of the shorter is looked up in the longer.
fn intersection(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.iter().copied().filter(|row| long.binary_search(row).is_ok()).collect()
}

/// Whether two ascending lists share a row.
fn intersects(a: &[u32], b: &[u32]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.iter().any(|row| long.binary_search(row).is_ok())
}

#[cfg(test)]
mod tests {
    use crate::tests::{make_trace, BASE_TIME, PROJECTS};
    use crate::{Store, StoreConfig};
    use cts_model::Trace;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// The reference answers, from the traces themselves.
    fn model(
        traces: &[Trace],
        project_id: &str,
        since_ms: i64,
    ) -> (BTreeMap<String, BTreeSet<String>>, BTreeSet<String>) {
        let mut resources: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut users = BTreeSet::new();
        for trace in traces.iter().filter(|trace| trace.project_id == project_id && trace.time >= since_ms) {
            resources.entry(trace.service_type.clone()).or_default().insert(trace.resource_type.clone());
            users.extend(trace.user_name().map(str::to_owned));
        }
        (resources, users)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Over memtables and segments alike, the distinct values match a scan of the traces.
        #[test]
        fn distinct_values_match_a_scan(count in 1u64..300, seal_every in 8usize..120, first_seed in 0u64..1000, since in 0i64..45) {
            let dir = tempfile::tempdir().unwrap();
            let config = StoreConfig { memtable_max_traces: seal_every, ..StoreConfig::new(dir.path()) };
            let store = Store::open(config).unwrap();
            let traces: Vec<Trace> = (first_seed..first_seed + count).map(make_trace).collect();
            for (index, chunk) in traces.chunks(37).enumerate() {
                store.append_blocking(chunk.to_vec()).unwrap();
                if index == 1 {
                    store.flush().unwrap();
                }
            }
            let since_ms = *BASE_TIME + since * 1000;
            for project in PROJECTS.iter().copied().chain(["nobody"]) {
                let (resources, users) = model(&traces, project, since_ms);
                prop_assert_eq!(store.trace_resources(project, since_ms), resources);
                prop_assert_eq!(store.trace_users(project, since_ms), users);
            }
        }
    }

    #[test]
    fn traces_past_the_retention_are_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig { retention_ms: 60_000, ..StoreConfig::new(dir.path()) };
        let store = Store::open(config).unwrap();
        let mut old = make_trace(1);
        old.time = cts_model::now_ms() - 120_000;
        store.append_blocking(vec![old.clone()]).unwrap();
        store.flush().unwrap();
        assert!(store.trace_resources(&old.project_id, 0).is_empty());
        assert!(store.trace_users(&old.project_id, 0).is_empty());
    }
}
