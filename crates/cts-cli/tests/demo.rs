//! `cts demo` as issue 3 accepts it: the seeded workload runs through the KooGallery service into cts, and a plain
//! `cts serve` on the same data directory then answers ListTraces with everything an auditor needs.

mod common;

use common::{all_traces, cts, free_port, Server, PROJECT_ID};
use cts_model::{Trace, TraceRating, TraceType, CATALOG, MARKETPLACE_PROVIDER_SERVICE, MARKETPLACE_SERVICE};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// Covers the simulated time of the workloads below (5,000 operations take about 60 simulated days).
const RETENTION_DAYS: i64 = 90;

/// Runs `cts demo` to the end of its workload; answers its standard output.
fn demo(data_dir: &Path, operations: usize) -> String {
    let started = Instant::now();
    let output = cts()
        .args(["demo", "--exit-after-workload", "--listen", "127.0.0.1:0", "--operations", &operations.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("running cts demo");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "cts demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    eprintln!("cts demo --operations {operations}: {:.1} s", started.elapsed().as_secs_f64());
    stdout
}

async fn koogallery_traces(data_dir: &Path) -> Vec<Trace> {
    let server = Server::start_at(data_dir, free_port(), &["--retention", &format!("{RETENTION_DAYS}d")]).await;
    let from = cts_model::now_ms() - RETENTION_DAYS * DAY_MS;
    let traces = all_traces(&server.client(), &[("from", from.to_string())]).await;
    server.kill();
    // Without cts's own traces of the queries.
    traces
        .into_iter()
        .filter(|trace| [MARKETPLACE_SERVICE, MARKETPLACE_PROVIDER_SERVICE].contains(&trace.service_type.as_str()))
        .collect()
}

fn spooled_batches(data_dir: &Path) -> usize {
    let spool = data_dir.join("koogallery").join("spool");
    std::fs::read_dir(spool)
        .map(|entries| {
            entries.filter(|entry| entry.as_ref().unwrap().path().extension() == Some("batch".as_ref())).count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_demo_cts_answers_every_seed_operation_with_users_ips_warnings_and_system_actions() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo");
    let operations = 5_000;
    let stdout = demo(&data_dir, operations);
    assert!(stdout.contains(&format!("{operations} operations")), "{stdout}");
    assert!(stdout.contains(" 0 dropped"), "{stdout}");
    assert_eq!(spooled_batches(&data_dir), 0, "every trace was delivered before the demo exited");

    let traces = koogallery_traces(&data_dir).await;
    assert!(traces.len() > operations, "{} traces for {operations} operations", traces.len());
    assert!(traces.iter().all(|trace| trace.project_id == PROJECT_ID));

    let expected: BTreeMap<&str, BTreeSet<&str>> = CATALOG
        .filter(Some(MARKETPLACE_SERVICE), None)
        .map(|op| (op.trace_name, BTreeSet::from([op.resource_type])))
        .collect();
    assert_eq!(expected.len(), 21, "the seed's operations");
    let mut seen: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for trace in traces.iter().filter(|trace| trace.service_type == MARKETPLACE_SERVICE) {
        seen.entry(&trace.trace_name).or_default().insert(&trace.resource_type);
    }
    assert_eq!(seen, expected, "every seed operation, each with its catalog resource type");

    let warnings: Vec<&Trace> = traces.iter().filter(|trace| trace.trace_rating == TraceRating::Warning).collect();
    assert!(warnings.len() * 100 > operations, "{} warnings", warnings.len());
    for warning in &warnings {
        let response = warning.response.as_deref().unwrap_or_default();
        assert!(response.contains("\"error_code\":\"KG."), "a warning carries the error answer: {warning:?}");
        assert!(warning.code.as_deref().is_some_and(|code| code.starts_with('4')), "{warning:?}");
    }
    assert!(traces.iter().any(|trace| trace.trace_rating == TraceRating::Incident), "injected faults give incidents");

    let (system, operated): (Vec<&Trace>, Vec<&Trace>) =
        traces.iter().partition(|trace| trace.trace_type == TraceType::SystemAction);
    assert!(!system.is_empty(), "payment confirmations, expiries, renewals");
    for trace in &system {
        assert_eq!((trace.source_ip.as_deref(), trace.user_name()), (None, Some("system")), "{trace:?}");
    }
    for trace in &operated {
        let user = trace.user.as_ref().expect("every operation names its user");
        assert!(user.name.is_some() && user.domain.is_some() && user.principal_urn.is_some(), "{trace:?}");
        let source_ip = trace.source_ip.as_deref().expect("every operation has a source IP");
        assert_ne!(source_ip, "127.0.0.1", "the simulated client from X-Forwarded-For, not the loopback proxy");
    }
    let types: BTreeSet<TraceType> = operated.iter().map(|trace| trace.trace_type).collect();
    assert_eq!(types, BTreeSet::from([TraceType::ApiCall, TraceType::ConsoleAction]), "browsers and API clients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_on_the_same_data_dir_keeps_one_reporter_user_with_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo");
    let operations = 150;
    demo(&data_dir, operations);
    let stdout = demo(&data_dir, operations);
    assert!(stdout.contains("Replacing the marketplace of an earlier run"), "{stdout}");

    let (iam, _) = cts_iam::Iam::open(&data_dir, cts_iam::Bootstrap::default()).unwrap();
    let reporters: Vec<_> = iam.users().into_iter().filter(|user| user.name == "koogallery-reporter").collect();
    assert_eq!(reporters.len(), 1, "{reporters:?}");
    assert_eq!(reporters[0].role, cts_iam::Role::Reporter);
    let keys = iam.access_keys().into_iter().filter(|key| key.user_id == reporters[0].id).count();
    assert_eq!(keys, 1);

    let traces = koogallery_traces(&data_dir).await;
    let operated = traces.iter().filter(|trace| trace.trace_type != TraceType::SystemAction).count();
    assert!(operated >= 2 * operations, "both runs' operations are in cts: {operated}");
}
