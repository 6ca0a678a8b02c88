//! `cts bench load` end to end with tiny bounds: the load test starts its own
//! `cts serve` (the debug binary), and its JSON report must be coherent — no
//! 5xx, every acknowledged trace found again, counts that add up, ordered
//! percentiles. No timing thresholds: only what must hold however slow the
//! machine is.

mod common;

use common::cts;
use serde_json::Value;

const OPERATIONS: [&str; 6] =
    ["ingest", "list_selective", "list_by_resource", "list_broad", "list_next_page", "export"];

/// Runs `cts bench load --json` with these flags and a fresh work directory; returns the report.
fn load(flags: &[&str]) -> Value {
    let work_dir = tempfile::tempdir().unwrap();
    let output = cts()
        .args(["bench", "load", "--json", "--duration", "120"])
        .args(flags)
        .arg("--work-dir")
        .arg(work_dir.path())
        .output()
        .expect("running cts bench load");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cts bench load failed:\n{stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not a count: {value}"))
}

/// What holds of every report: returns the operations by name.
fn assert_coherent(report: &Value) -> Vec<(&str, &Value)> {
    let operations: Vec<(&str, &Value)> =
        report["operations"].as_array().unwrap().iter().map(|row| (row["operation"].as_str().unwrap(), row)).collect();
    let mut total = 0;
    for (name, row) in &operations {
        let failures = row["failures"].as_object().unwrap();
        for label in failures.keys() {
            assert!(!label.starts_with('5') && label != "transport", "{name} failed with {label}: {report:#}");
        }
        let failed: u64 = failures.values().map(count).sum();
        assert_eq!(count(&row["requests"]), count(&row["succeeded"]) + failed, "{name}: {row:#}");
        assert_eq!(count(&row["rate_limited"]), failures.get("429").map_or(0, count), "{name}");
        total += count(&row["requests"]);
        let latency = &row["latency_ms"];
        if count(&row["succeeded"]) == 0 {
            assert!(latency.is_null(), "{name}: latency without successes");
            continue;
        }
        let [p50, p99, p99_9, max] = ["p50", "p99", "p99_9", "max"].map(|key| latency[key].as_f64().unwrap());
        assert!(0.0 <= p50 && p50 <= p99 && p99 <= p99_9 && p99_9 <= max, "{name}: {latency}");
    }
    assert_eq!(count(&report["requests"]), total, "the total is the sum of the operations");
    let limit = count(&report["request_limit"]);
    match report["stopped_by"].as_str().unwrap() {
        "requests" => assert_eq!(total, limit, "stopped by the request bound before reaching it"),
        "duration" => assert!(total <= limit),
        other => panic!("stopped by {other}"),
    }

    let (_, ingest) = operations.iter().find(|(name, _)| *name == "ingest").expect("an ingest row");
    let check = &report["verification"];
    assert_eq!(
        count(&check["acknowledged"]),
        count(&ingest["traces_accepted"]),
        "every accepted trace is acknowledged"
    );
    assert_eq!(count(&ingest["traces_rejected"]), 0, "the workload is valid");
    assert_eq!(check["missing"], serde_json::json!([]), "{check}");
    assert_eq!(count(&check["found"]), count(&check["looked_up"]));
    operations
}

#[test]
fn a_small_load_run_reports_every_operation_and_finds_every_acknowledged_trace() {
    let report = load(&["--requests", "300", "--batch", "10", "--verify-sample", "100000"]);
    let operations = assert_coherent(&report);
    let names: Vec<&str> = operations.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, OPERATIONS, "the query clients go through the whole mix");
    let check = &report["verification"];
    assert!(count(&check["acknowledged"]) > 0);
    assert_eq!(count(&check["looked_up"]), count(&check["acknowledged"]), "every acknowledged id is looked up");
    assert!(operations.iter().all(|(_, row)| count(&row["rate_limited"]) == 0), "rate limits are off");
    assert!(report["target"].as_str().unwrap().contains("rate limits off"));
}

#[test]
fn rate_limited_requests_are_counted_apart_and_acknowledged_traces_are_still_found() {
    // One request a second (a burst of two): 200 requests cannot all pass within the 120 s bound.
    let report = load(&["--requests", "200", "--batch", "1", "--rate-limit-key", "1", "--verify-sample", "100000"]);
    let operations = assert_coherent(&report);
    let rate_limited: u64 = operations.iter().map(|(_, row)| count(&row["rate_limited"])).sum();
    assert!(rate_limited > 0, "{report:#}");
    assert!(report["target"].as_str().unwrap().contains("per key 1/s"));
}
