//! ListTraces from an arbitrary query string, the way `cts-server` serves it: `parse_query_string` (the
//! pairs the signature covers), `cts_query::ListTraces::parse`, then `run` against a store holding a few
//! traces. Invariants: nothing panics; a page holds at most `limit` traces, all of the project, inside the
//! window, newest first.
#![no_main]

use cts_fuzz::{sample_traces, scratch_dir, store_config, NOW_MS, PROJECT};
use cts_iam::sign::parse_query_string;
use cts_query::ListTraces;
use cts_store::{SortKey, Store};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The store every run queries (opened once: its directory lives as long as the process).
fn store() -> &'static Store {
    static STORE: OnceLock<(tempfile::TempDir, Store)> = OnceLock::new();
    let (_, store) = STORE.get_or_init(|| {
        let dir = scratch_dir();
        let store = Store::open(store_config(dir.path())).expect("a store opens");
        store.append_blocking(sample_traces(30)).expect("samples are stored");
        (dir, store)
    });
    store
}

fuzz_target!(|raw_query: &str| {
    let pairs = parse_query_string(raw_query);
    let Ok(list) = ListTraces::parse(PROJECT, &pairs, NOW_MS) else { return };
    let query = list.query();
    assert!(query.from_ms <= query.to_ms && (1..=cts_query::MAX_LIMIT).contains(&query.limit), "{query:?}");
    let (from_ms, to_ms, limit) = (query.from_ms, query.to_ms, query.limit);
    let Ok(page) = list.run(store()) else { return };
    assert!(page.traces.len() <= limit && page.meta_data.count == page.traces.len());
    for trace in &page.traces {
        assert_eq!(trace.project_id, PROJECT);
        assert!((from_ms..=to_ms).contains(&trace.time), "{} outside {from_ms}..={to_ms}", trace.time);
    }
    assert!(page.traces.windows(2).all(|pair| SortKey::of(&pair[0]) > SortKey::of(&pair[1])), "not newest first");
});
