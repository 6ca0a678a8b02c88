//! Measures what the ledger costs and how it answers:
//! - durable ingest of the seeded KooGallery workload (batches of 1,000, two appenders, as
//!   `store_bench`) into a store without and with the ledger (checkpoints every second), and the
//!   intervals between the checkpoints observed during that ingest;
//! - inclusion and consistency proof latency on a log of 1,000,000 leaves.
//!
//! `cargo run --release -p cts-ledger --example ledger_bench -- [ingest traces] [proof log leaves]`
//! (defaults 300,000 and 1,000,000).

use cts_ledger::{Ledger, LedgerConfig};
use cts_model::{Trace, TraceInput};
use cts_store::{AppendLog, LogEntry, Store, StoreConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROJECT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn workload(count: usize) -> Vec<Vec<Trace>> {
    let now = cts_model::now_ms();
    let traces: Vec<Trace> = cts_bench::workload::Generator::new(7, now, count)
        .map(|value| {
            serde_json::from_value::<TraceInput>(value).expect("an input").into_trace(PROJECT, now).expect("valid")
        })
        .collect();
    traces.chunks(1000).map(<[Trace]>::to_vec).collect()
}

/// Ingests the batches with two appenders; returns traces per second (the final flush excluded).
fn ingest(store: &Store, batches: Vec<Vec<Trace>>) -> f64 {
    let total: usize = batches.iter().map(Vec::len).sum();
    let started = Instant::now();
    std::thread::scope(|scope| {
        let (even, odd): (Vec<_>, Vec<_>) = batches.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for half in [even, odd] {
            scope.spawn(move || {
                for (_, batch) in half {
                    store.append_blocking(batch).expect("append");
                }
            });
        }
    });
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a count")).collect();
    let traces = args.first().copied().unwrap_or(300_000);
    let proof_leaves = args.get(1).copied().unwrap_or(1_000_000) as u64;
    let root = std::env::temp_dir().join(format!("cts-ledger-bench-{}", std::process::id()));

    println!("generating {traces} traces...");
    let batches = workload(traces);
    let started = Instant::now();
    let hashed = batches.iter().flatten().map(cts_ledger::trace_leaf_hash).fold(0u8, |acc, hash| acc ^ hash[0]);
    let per_trace = started.elapsed() / traces as u32;
    println!("leaf hash (canonical JSON + SHA-256): {per_trace:.1?} per trace, one core (checksum {hashed})");
    let without = {
        let dir = root.join("without");
        let store = Store::open(StoreConfig::new(&dir)).expect("open");
        let rate = ingest(&store, batches.clone());
        store.flush().expect("flush");
        rate
    };
    println!("ingest without the ledger: {without:.0} traces/s");

    let dir = root.join("with");
    let ledger = Arc::new(Ledger::open(LedgerConfig::new(&dir)).expect("ledger"));
    let store = Store::open_with_log(StoreConfig::new(&dir), Some(ledger.clone() as Arc<dyn AppendLog>)).expect("open");
    let checkpointer = ledger.spawn_checkpointer(Duration::from_secs(1)).expect("checkpointer");
    let done = AtomicBool::new(false);
    let (with, checkpoints) = std::thread::scope(|scope| {
        let monitor = scope.spawn(|| {
            let mut seen: Vec<(Instant, String)> = Vec::new();
            while !done.load(Ordering::SeqCst) {
                if let Ok(note) = ledger.latest_checkpoint(PROJECT) {
                    if seen.last().is_none_or(|(_, last)| *last != note) {
                        seen.push((Instant::now(), note));
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            seen.into_iter().map(|(at, _)| at).collect::<Vec<_>>()
        });
        let rate = ingest(&store, batches);
        done.store(true, Ordering::SeqCst);
        (rate, monitor.join().expect("monitor"))
    });
    store.flush().expect("flush");
    drop(checkpointer);
    println!("ingest with the ledger:    {with:.0} traces/s ({:+.1}%)", (with / without - 1.0) * 100.0);
    let mut intervals: Vec<Duration> = checkpoints.windows(2).map(|pair| pair[1] - pair[0]).collect();
    intervals.sort();
    if !intervals.is_empty() {
        println!(
            "checkpoints during ingest: {}, interval p50 {:.0?} max {:.0?}",
            checkpoints.len(),
            percentile(&intervals, 0.5),
            intervals.last().expect("non-empty")
        );
    }
    drop(store);

    // Proofs on a large log: synthetic leaves appended straight to a fresh ledger.
    let dir = root.join("proofs");
    let ledger = Ledger::open(LedgerConfig::new(&dir)).expect("ledger");
    let started = Instant::now();
    let ids: Vec<String> = (0..proof_leaves).map(|i| format!("trace-{i:09}")).collect();
    for chunk in ids.chunks(1000) {
        let entries: Vec<LogEntry<'_>> = chunk
            .iter()
            .map(|id| LogEntry {
                project_id: PROJECT,
                trace_id: id,
                time: 0,
                leaf_hash: cts_ledger::merkle::leaf_hash(id.as_bytes()),
            })
            .collect();
        ledger.append_entries(&entries).expect("append");
    }
    ledger.checkpoint_all().expect("checkpoint");
    println!("appended {proof_leaves} leaves in {:.1?}", started.elapsed());
    let mut latencies = Vec::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let id = &ids[((state >> 33) % proof_leaves) as usize];
        let started = Instant::now();
        ledger.inclusion_proof(PROJECT, id, None).expect("proof");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "inclusion proof at {proof_leaves} leaves (trace id lookup + proof): p50 {:.1?} p99 {:.1?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    let mut latencies = Vec::new();
    for first in (1..proof_leaves).step_by((proof_leaves / 2000).max(1) as usize) {
        let started = Instant::now();
        ledger.consistency_proof(PROJECT, first, proof_leaves).expect("proof");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "consistency proof to {proof_leaves} leaves: p50 {:.1?} p99 {:.1?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    drop(ledger);
    let reopened = Instant::now();
    drop(Ledger::open(LedgerConfig::new(&dir)).expect("reopen"));
    println!("reopening the {proof_leaves}-leaf log: {:.1?}", reopened.elapsed());
    let _ = std::fs::remove_dir_all(&root);
}
