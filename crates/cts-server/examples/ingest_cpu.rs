//! The CPU cost of the ingest path before the store: parses and validates a
//! realistic 1,000-trace KooGallery batch `ROUNDS` times (default 20), as
//! `POST /v3/{project_id}/traces` does. Meant for `valgrind --tool=callgrind`
//! (instructions per trace) or a quick wall-clock look:
//!
//! `cargo run --release -p cts-server --example ingest_cpu -- 20`

use cts_bench::workload::Generator;
use std::time::Instant;

const BATCH: usize = 1000;
const PROJECT_ID: &str = "0123456789abcdef0123456789abcdef";

fn main() {
    let rounds: usize = std::env::args().nth(1).map_or(20, |arg| arg.parse().expect("ROUNDS is a number"));
    let now = cts_model::now_ms();
    let traces: Vec<serde_json::Value> = Generator::new(7, now, BATCH).collect();
    let body = serde_json::to_vec(&serde_json::json!({ "traces": traces })).expect("serialisable");
    let started = Instant::now();
    let mut stored = 0;
    for _ in 0..rounds {
        let batch = cts_server::validate_batch(&body, PROJECT_ID, now, None).expect("a valid envelope");
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected.first());
        stored += batch.valid.len();
    }
    let elapsed = started.elapsed();
    println!(
        "{stored} traces ({} bytes per batch) in {elapsed:.2?}: {:.0} traces/s",
        body.len(),
        stored as f64 / elapsed.as_secs_f64()
    );
}
