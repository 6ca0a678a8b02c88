//! Disk full, for real: `cts serve` runs on a small tmpfs (mounted by the test, which needs root, as
//! CI runs) and clients ingest until the disk is full. cts must answer 503 CTS.0503 and stay up
//! (health and queries work), take writes again as soon as the tmpfs grows, without a restart, and
//! after a SIGKILL and a restart hold every acknowledged trace exactly once, with `cts verify` clean.

mod common;

use common::{all_traces, cts, Server};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Big traces fill the disk in a few hundred requests.
const BATCH: usize = 20;
const MESSAGE_BYTES: usize = 8 * 1024;

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mounted = mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], dir.path());
        assert!(mounted, "the disk-full test mounts a tmpfs: run the suite as root (as CI does)");
        Tmpfs { dir }
    }

    fn resize(&self, size: &str) {
        assert!(mount(&["-o", &format!("remount,size={size}")], self.dir.path()), "growing the tmpfs");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn mount(args: &[&str], target: &Path) -> bool {
    Command::new("mount").args(args).arg(target).status().is_ok_and(|status| status.success())
}

fn batch(round: usize) -> Vec<Value> {
    (0..BATCH)
        .map(|i| {
            json!({
                "trace_id": uuid::Uuid::new_v4().to_string(),
                "trace_name": "createOrder",
                "service_type": "marketplace",
                "resource_type": "Order",
                "resource_id": format!("order-{round}-{i}"),
                "message": "m".repeat(MESSAGE_BYTES),
                "user": {"name": "disk-filler"},
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_then_recovers_without_losing_an_acknowledged_trace() {
    let disk = Tmpfs::mount("24m");
    let data_dir = disk.dir.path().join("data");
    let server = Server::start(&data_dir).await;
    let client = server.client();
    let mut acknowledged = Vec::new();
    let mut refusals = 0;
    for round in 0..2_000 {
        match client.ingest(&batch(round)).await {
            Ok(answer) => acknowledged.extend(answer.accepted.into_iter().map(|accepted| accepted.trace_id)),
            Err(error) => {
                assert_eq!(error.error_code(), Some("CTS.0503"), "a full disk is a 503: {error}");
                refusals += 1;
                if refusals == 5 {
                    break;
                }
            }
        }
    }
    assert_eq!(refusals, 5, "the 24 MiB disk never filled");
    assert!(acknowledged.len() >= BATCH * 10, "too few traces fit to test anything: {}", acknowledged.len());
    // Full, cts still answers: health and queries.
    client.health().await.expect("health on a full disk");
    let hour_ago = (cts_model::now_ms() - 3_600_000).to_string();
    // cts's own audit records of these queries are not the clients' traces.
    let marketplace = ("service_type", "marketplace".to_owned());
    let window = [("from", hour_ago.clone()), ("to", (cts_model::now_ms() + 60_000).to_string()), marketplace.clone()];
    assert_eq!(all_traces(&client, &window).await.len(), acknowledged.len(), "what was acknowledged is queryable");

    let before_full = acknowledged.len();
    disk.resize("128m");
    for round in 0..10 {
        let answer = client.ingest(&batch(10_000 + round)).await.expect("ingest once the disk has room again");
        acknowledged.extend(answer.accepted.into_iter().map(|accepted| accepted.trace_id));
    }
    server.kill();

    let server = Server::start(&data_dir).await;
    let window = [("from", hour_ago), ("to", (cts_model::now_ms() + 60_000).to_string()), marketplace];
    let found = all_traces(&server.client(), &window).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for trace in &found {
        *counts.entry(trace.trace_id.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "a trace stored twice");
    let lost: Vec<_> = acknowledged.iter().filter(|id| !counts.contains_key(id.as_str())).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged traces lost", lost.len(), acknowledged.len());
    assert_eq!(found.len(), acknowledged.len(), "only acknowledged traces are stored");
    server.kill();
    let verified = cts().arg("verify").arg("--data-dir").arg(&data_dir).output().unwrap();
    assert!(verified.status.success(), "cts verify: {}", String::from_utf8_lossy(&verified.stdout));
    println!("disk full after {before_full} acknowledged traces; {refusals} requests refused with 503; all kept");
}
