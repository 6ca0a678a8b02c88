//! What the fuzz targets share: a fixed clock and project, scratch data directories on a RAM disk, valid
//! sample traces, and the store's read-everything query. The targets themselves are in `fuzz_targets/`; each
//! drives a production entry point of a cts crate.

use cts_model::{Trace, TraceInput};
use cts_store::{Filters, Store, StoreConfig, StoreError, TraceQuery};
use std::path::Path;
use std::sync::Once;

/// The project every target works in.
pub const PROJECT: &str = "0b1f6a4c9d2e4f7a8b3c5d6e7f809112";
/// The fixed "now" (UTC ms) of every target, so a crash replays the same way.
pub const NOW_MS: i64 = 1_700_000_000_000;

/// A fresh directory, on `/dev/shm` where there is one (store opens fsync; a RAM disk keeps that cheap).
pub fn scratch_dir() -> tempfile::TempDir {
    let ram_disk = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix("cts-fuzz-");
    if ram_disk.is_dir() { builder.tempdir_in(ram_disk) } else { builder.tempdir() }.expect("a scratch directory")
}

/// A store configuration whose retention hides none of the fixed-clock traces.
pub fn store_config(data_dir: &Path) -> StoreConfig {
    StoreConfig { retention_ms: 100 * 365 * 24 * 3_600_000, ..StoreConfig::new(data_dir) }
}

/// `count` valid management traces of [`PROJECT`], one a millisecond, with every optional field of one kind
/// or another set, validated as ingest validates them.
pub fn sample_traces(count: usize) -> Vec<Trace> {
    (0..count)
        .map(|i| {
            let input = serde_json::json!({
                "trace_id": format!("6f1c2a4e-0000-4000-8000-{i:012}"),
                "trace_name": (["createOrder", "cancelOrder", "listOrders"][i % 3]),
                "service_type": "marketplace",
                "resource_type": "Order",
                "resource_name": format!("order-{i}"),
                "resource_id": format!("r{i}"),
                "source_ip": "192.0.2.7",
                "code": (["200", "404", "503"][i % 3]),
                "request": {"quantity": i},
                "message": "line one\nline two",
                "time": NOW_MS - 60_000 + i as i64,
                "user": {"name": "alice", "access_key_id": "AK1234", "domain": {"id": "d1", "name": "acme"}},
            });
            let input: TraceInput = serde_json::from_value(input).expect("a TraceInput");
            input.into_trace(PROJECT, NOW_MS).expect("a valid sample trace")
        })
        .collect()
}

/// Every trace of `project` the store holds (management or data), newest first.
pub fn all_traces(store: &Store, project: &str, data: bool) -> Result<Vec<Trace>, StoreError> {
    let query = TraceQuery {
        project_id: project.to_owned(),
        data,
        tracker_name: None,
        from_ms: i64::MIN,
        to_ms: i64::MAX,
        filters: Filters::default(),
        after: None,
        limit: 1 << 20,
    };
    store.query(&query)
}

/// A stored or returned trace reads back from its JSON as the same trace.
pub fn assert_json_round_trip(trace: &Trace) {
    let json = serde_json::to_string(trace).expect("a trace serializes");
    let back: Trace = serde_json::from_str(&json).expect("a serialized trace parses");
    assert_eq!(&back, trace, "JSON round trip of {json}");
}

/// Lets panics raised inside the parquet crate unwind instead of aborting the run: cts-store turns them into
/// corrupt-file errors at its boundary (`guard_parquet`), so they are handled, not crashes. Every other panic
/// still aborts (libFuzzer's hook), and so does a parquet panic that escapes cts-store (libfuzzer-sys aborts on
/// a panic that reaches the target's caller).
pub fn let_parquet_panics_unwind() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let aborting_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parquet =
                info.location().is_some_and(|at| ["/parquet-", "/arrow-"].iter().any(|c| at.file().contains(c)));
            if !in_parquet {
                aborting_hook(info);
            }
        }));
    });
}
