//! Freshness: how long after an ingest acknowledgement a trace is visible in
//! ListTraces. One probe at a time, each a trace with a unique `resource_id`,
//! then that filter polled every few milliseconds until the trace shows up.

use crate::cts_http::Cts;
use crate::query::ListQuery;
use crate::workload;
use anyhow::{bail, Context};
use cts_model::now_ms;
use serde_json::json;
use std::time::{Duration, Instant};

/// Pause between polls.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// A probe not visible after this fails the run.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// The probe trace `index`: a workload trace of now with its own `resource_id`, and no `trace_id` (the server
/// assigns one; a generated id could be a workload trace's, which cts would acknowledge without storing again).
pub fn probe(seed: u64, run: i64, index: usize, time_ms: i64) -> serde_json::Value {
    let mut trace = workload::Generator::new(seed ^ index as u64, time_ms, 1).next().expect("one trace");
    if let Some(fields) = trace.as_object_mut() {
        fields.remove("trace_id");
    }
    trace["time"] = json!(time_ms);
    trace["resource_id"] = json!(format!("freshness-{run}-{index}"));
    trace
}

/// Ingests `samples` probes one after another; the time from each acknowledgement to visibility.
pub async fn measure(cts: &Cts, seed: u64, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let run = now_ms();
    let mut delays = Vec::with_capacity(samples);
    for index in 0..samples {
        let time_ms = now_ms();
        let trace = probe(seed, run, index, time_ms);
        let resource_id = trace["resource_id"].as_str().unwrap_or_default().to_owned();
        let outcome = cts.client().ingest(std::slice::from_ref(&trace)).await.context("freshness probe")?;
        let acknowledged = Instant::now();
        if outcome.accepted.len() != 1 {
            bail!("cts did not accept the freshness probe: {:?}", outcome.rejected);
        }
        loop {
            let query = ListQuery {
                filters: vec![("resource_id", resource_id.clone())],
                terms: Vec::new(),
                from_ms: time_ms - 60_000,
                to_ms: now_ms(),
                limit: 10,
            };
            if !cts.list_traces(&query).await?.is_empty() {
                delays.push(acknowledged.elapsed());
                break;
            }
            if acknowledged.elapsed() > GIVE_UP_AFTER {
                bail!("probe {resource_id} not visible {GIVE_UP_AFTER:?} after its acknowledgement");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
    Ok(delays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_valid_new_traces_of_now_with_their_own_resource() {
        let (a, b) = (probe(1, 99, 0, 1_795_000_000_000), probe(1, 99, 1, 1_795_000_000_000));
        assert_eq!(a["resource_id"], "freshness-99-0");
        assert_eq!(a["time"], 1_795_000_000_000_i64);
        assert!(a.get("trace_id").is_none(), "the server assigns the id");
        assert_ne!(a["request_id"], b["request_id"]);
        let input = cts_model::TraceInput::from_json(&a.to_string()).unwrap();
        input.into_trace("p", 1_795_000_000_001).unwrap();
    }
}
