//! `cts verify` on a data directory after `cts import`: valid as imported; a flipped byte in a
//! segment file, a trace deleted from the WAL and a trace spliced in without the ledger are each
//! named; one trace verifies offline, and a modified copy does not.

mod common;

use common::{cts, PROJECT_ID};
use cts_ledger::{Ledger, LedgerConfig};
use cts_model::Trace;
use cts_store::{AppendLog, Store, StoreConfig};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

fn trace_line(i: usize, now: i64) -> serde_json::Value {
    json!({
        "trace_id": trace_id(i),
        "trace_name": "createOrder",
        "service_type": "marketplace",
        "resource_type": "Order",
        "time": now - 1000 * i as i64,
        "user": {"name": "alice"},
    })
}

fn verify(data_dir: &Path) -> (bool, String) {
    let output: Output = cts().arg("verify").arg("--data-dir").arg(data_dir).output().unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap())
}

/// A data directory with 300 imported traces (in segments, checkpointed) and, through a store
/// behind the ledger, 5 more left in the WAL.
fn imported(dir: &Path) -> PathBuf {
    let data_dir = dir.join("data");
    let now = cts_model::now_ms();
    let jsonl = dir.join("traces.jsonl");
    let mut file = std::fs::File::create(&jsonl).unwrap();
    for i in 0..300 {
        writeln!(file, "{}", trace_line(i, now)).unwrap();
    }
    let output = cts().arg("import").arg("--data-dir").arg(&data_dir).arg(&jsonl).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (ledger, store) = open_with_ledger(&data_dir);
    let more: Vec<Trace> = (300..305).map(|i| trace(i, now)).collect();
    store.append_blocking(more).unwrap();
    ledger.checkpoint_all().unwrap();
    data_dir
}

fn trace_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

fn trace(i: usize, now: i64) -> Trace {
    let input: cts_model::TraceInput = serde_json::from_value(trace_line(i, now)).unwrap();
    input.into_trace(PROJECT_ID, now).unwrap()
}

fn open_with_ledger(data_dir: &Path) -> (Arc<Ledger>, Store) {
    let ledger = Arc::new(Ledger::open(LedgerConfig::new(data_dir)).unwrap());
    let store = Store::open_with_log(StoreConfig::new(data_dir), Some(ledger.clone() as Arc<dyn AppendLog>)).unwrap();
    (ledger, store)
}

fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

#[test]
fn an_intact_data_directory_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = imported(dir.path());
    let (valid, output) = verify(&data_dir);
    assert!(valid, "{output}");
    assert_eq!(output, "305 traces, 2 checkpoints: all valid\n");
}

#[test]
fn a_flipped_byte_in_a_segment_file_fails_naming_the_file() {
    for extension in ["traces", "parquet"] {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = imported(dir.path());
        let segment = files_with_extension(&data_dir.join("store/segments"), extension).remove(0);
        let mut bytes = std::fs::read(&segment).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&segment, bytes).unwrap();
        let (valid, output) = verify(&data_dir);
        assert!(!valid, "{extension} at {middle}: {output}");
        assert!(output.contains(&segment.display().to_string()), "{extension}: {output}");
    }
}

#[test]
fn a_trace_deleted_from_the_wal_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = imported(dir.path());
    let wal = files_with_extension(&data_dir.join("store/wal"), "wal").pop().unwrap();
    let bytes = std::fs::read(&wal).unwrap();
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        records.push(&bytes[at..at + 8 + len]);
        at += 8 + len;
    }
    assert_eq!(records.len(), 5);
    records.remove(1);
    std::fs::write(&wal, records.concat()).unwrap();
    let (valid, output) = verify(&data_dir);
    assert!(!valid);
    let removed = trace_id(301);
    assert_eq!(
        output,
        format!(
            "removed: trace {removed} of project {PROJECT_ID} (leaf 301) is in no store file\n\
             305 traces, 2 checkpoints: 1 problem\n"
        )
        .replace("305 traces", "304 traces")
    );
}

#[test]
fn a_trace_spliced_in_without_the_ledger_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = imported(dir.path());
    let forged = trace(999, cts_model::now_ms());
    let store = Store::open(StoreConfig::new(&data_dir)).unwrap();
    store.append_blocking(vec![forged.clone()]).unwrap();
    store.flush().unwrap();
    drop(store);
    let (valid, output) = verify(&data_dir);
    assert!(!valid);
    let lines: Vec<&str> = output.lines().collect();
    // Both files of the new segment hold the forged trace.
    assert_eq!(lines.len(), 3, "{output}");
    for line in &lines[..2] {
        assert!(
            line.starts_with(&format!("inserted: trace {} of project {PROJECT_ID} in ", forged.trace_id)),
            "{line}"
        );
    }
    assert_eq!(lines[2], "305 traces, 2 checkpoints: 2 problems");
}

#[test]
fn one_trace_verifies_offline_and_a_modified_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = imported(dir.path());
    let (ledger, store) = open_with_ledger(&data_dir);
    let stored = store.get(PROJECT_ID, &trace_id(42)).unwrap().unwrap();
    let files = [
        ("trace.json", serde_json::to_string_pretty(&stored).unwrap()),
        ("proof.json", ledger.inclusion_proof(PROJECT_ID, &stored.trace_id, None).unwrap().to_json().to_string()),
        ("checkpoint", ledger.latest_checkpoint(PROJECT_ID).unwrap()),
        ("key", ledger.verifier_keys()),
        (
            "modified.json",
            serde_json::to_string(&Trace { trace_name: "deleteOrder".into(), ..stored.clone() }).unwrap(),
        ),
    ];
    for (name, contents) in &files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    let offline = |trace_file: &str| {
        cts()
            .arg("verify")
            .arg("--trace")
            .arg(dir.path().join(trace_file))
            .arg("--proof")
            .arg(dir.path().join("proof.json"))
            .arg("--checkpoint")
            .arg(dir.path().join("checkpoint"))
            .arg("--key")
            .arg(dir.path().join("key"))
            .output()
            .unwrap()
    };
    let valid = offline("trace.json");
    assert!(valid.status.success(), "{}", String::from_utf8_lossy(&valid.stderr));
    assert_eq!(
        String::from_utf8(valid.stdout).unwrap(),
        format!("valid: the trace is in the tree of 305 leaves that cts/{PROJECT_ID} signed\n")
    );
    let modified = offline("modified.json");
    assert!(!modified.status.success());
    assert!(String::from_utf8_lossy(&modified.stderr).contains("the trace does not verify"));
}
