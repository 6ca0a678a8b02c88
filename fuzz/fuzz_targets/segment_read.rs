//! A sealed segment read back by the store (`cts_store::Store::open`, then queries and point reads): the
//! input is `[u32 LE n][n bytes of the Parquet file][the stored-traces sidecar]`; no sidecar bytes means no
//! sidecar file, which the store rebuilds from the Parquet file. Invariants: opening and reading either work
//! or fail with an error, never a panic; a trace listed is the trace a point read returns.
#![no_main]

use cts_fuzz::{all_traces, assert_json_round_trip, let_parquet_panics_unwind, scratch_dir, store_config, PROJECT};
use cts_store::Store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let_parquet_panics_unwind();
    let Some((length, rest)) = data.split_first_chunk::<4>() else { return };
    let (parquet, sidecar) = rest.split_at((u32::from_le_bytes(*length) as usize).min(rest.len()));
    let dir = scratch_dir();
    let segments = dir.path().join("store/segments");
    std::fs::create_dir_all(&segments).expect("the segment directory");
    std::fs::write(segments.join("00000000000000000001.parquet"), parquet).expect("the Parquet file is written");
    if !sidecar.is_empty() {
        std::fs::write(segments.join("00000000000000000001.traces"), sidecar).expect("the sidecar is written");
    }
    let Ok(store) = Store::open(store_config(dir.path())) else { return };
    let _ = store.stats();
    for data in [false, true] {
        let Ok(traces) = all_traces(&store, PROJECT, data) else { continue };
        for trace in &traces {
            assert_json_round_trip(trace);
            if let Ok(read) = store.get(PROJECT, &trace.trace_id) {
                assert_eq!(read.as_ref(), Some(trace), "a point read differs from the listing");
            }
        }
    }
});
