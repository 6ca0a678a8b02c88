//! What redaction before storage costs on the benchmark's workload: `cargo run --release -p cts-bench --example
//! redaction_cost [TRACES]` redacts every generated trace's request and response with the default rules and prints
//! the time per trace and how many texts changed (none should: the workload carries no secrets).

fn main() {
    let count: usize = std::env::args().nth(1).map_or(100_000, |n| n.parse().expect("TRACES is a number"));
    let traces = cts_bench::workload::Generator::new(1, cts_model::now_ms(), count);
    let texts: Vec<String> = traces
        .flat_map(|trace| ["request", "response"].map(|field| trace[field].as_str().unwrap_or_default().to_owned()))
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
    let redactor = cts_model::redact::Redactor::default();
    let started = std::time::Instant::now();
    let changed = texts.iter().filter(|text| redactor.redact_text(text).is_some()).count();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{count} traces, {} texts, {bytes} bytes: {:.2} us/trace, {:.0} MB/s, {changed} texts changed",
        texts.len(),
        seconds * 1e6 / count as f64,
        bytes as f64 / seconds / 1e6
    );
}
