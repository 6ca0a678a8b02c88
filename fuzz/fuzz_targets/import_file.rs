//! An imported trace file through `cts_transfer::import`, the reader `cts import` uses: the first byte picks
//! the file's name (JSON Lines, JSON, a CTS `.json` file, gzipped or not, Parquet), the rest is its content.
//! Invariants: nothing panics; every trace read back is a valid trace whose JSON reads back the same and
//! re-imports (as a full record, the way an exported file comes back) as the same trace.
#![no_main]

use cts_fuzz::{assert_json_round_trip, let_parquet_panics_unwind, NOW_MS, PROJECT};
use cts_transfer::import::{for_each_document, Document, ImportError};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const FILE_NAMES: [&str; 7] = [
    "traces.jsonl",
    "traces.ndjson",
    "traces.json",
    "audit_CloudTrace_x.json.gz",
    "traces.jsonl.gz",
    "audit_CloudTrace_x.parquet",
    "traces.txt",
];

fuzz_target!(|data: &[u8]| {
    let_parquet_panics_unwind();
    let Some((&selector, content)) = data.split_first() else { return };
    let name = FILE_NAMES[usize::from(selector) % FILE_NAMES.len()];
    let _ = for_each_document(Path::new(name), content, |_, document| {
        if let Ok(trace) = document.into_trace(PROJECT, NOW_MS) {
            assert_json_round_trip(&trace);
            let full_record = Document::Value(serde_json::to_value(&trace).expect("a trace serializes"));
            assert_eq!(full_record.into_trace("another-project", 1).as_ref(), Ok(&trace), "re-import changed it");
        }
        Ok::<_, ImportError>(())
    });
});
