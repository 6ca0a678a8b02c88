//! The ingest body (`POST /v3/{project_id}/traces`) through `cts_server::validate_batch` (without redaction), the function the
//! handler calls. Invariants: it never panics; every accepted trace reads back from its JSON, and sent again
//! (its JSON without the server-owned `project_id` and `record_time`) is accepted again as the same trace.
#![no_main]

use cts_fuzz::{assert_json_round_trip, NOW_MS, PROJECT};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    let Ok(batch) = cts_server::validate_batch(body, PROJECT, NOW_MS, None) else { return };
    if batch.valid.is_empty() {
        return;
    }
    let resent: Vec<Value> = batch
        .valid
        .iter()
        .map(|trace| {
            assert_json_round_trip(trace);
            let mut input = serde_json::to_value(trace).expect("a trace serializes");
            let fields = input.as_object_mut().expect("a trace is an object");
            fields.remove("project_id");
            fields.remove("record_time");
            input
        })
        .collect();
    let resent = serde_json::to_vec(&serde_json::json!({ "traces": resent })).expect("serializes");
    let again = cts_server::validate_batch(&resent, PROJECT, NOW_MS, None).expect("a re-sent batch is a valid envelope");
    assert!(again.rejected.is_empty(), "re-sent traces refused: {:?}", again.rejected);
    assert_eq!(again.valid, batch.valid, "re-sent traces changed");
});
