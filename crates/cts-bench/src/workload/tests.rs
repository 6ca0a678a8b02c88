use super::*;
use cts_model::{TraceInput, TraceRating, TraceType};
use std::collections::{BTreeMap, BTreeSet};

const NOW_MS: i64 = 1_795_000_000_000;
const PROJECT: &str = "0123456789abcdef0123456789abcdef";

fn traces(seed: u64, count: usize) -> Vec<Value> {
    Generator::new(seed, NOW_MS, count).collect()
}

fn validated(trace: &Value) -> cts_model::Trace {
    TraceInput::from_json(&trace.to_string())
        .and_then(|input| input.into_trace(PROJECT, NOW_MS))
        .unwrap_or_else(|e| panic!("{e}: {trace}"))
}

#[test]
fn the_same_seed_gives_the_same_workload() {
    assert_eq!(traces(7, 500), traces(7, 500));
}

#[test]
fn different_seeds_give_different_workloads() {
    let (a, b) = (traces(7, 50), traces(8, 50));
    assert!(a.iter().zip(&b).all(|(x, y)| x["trace_id"] != y["trace_id"]));
}

#[test]
fn every_generated_trace_passes_validation() {
    for trace in traces(1, 5_000) {
        let stored = validated(&trace);
        assert_eq!(stored.service_type, SERVICE_TYPE);
        assert!(matches!(stored.trace_type, TraceType::ConsoleAction | TraceType::ApiCall));
        assert!(trace.get("trace_rating").is_none(), "the server derives the rating");
    }
}

#[test]
fn the_mix_covers_every_marketplace_operation_of_the_catalog() {
    let catalog: BTreeSet<_> = CATALOG.filter(Some(SERVICE_TYPE), None).map(|op| op.trace_name).collect();
    assert_eq!(catalog.len(), 21);
    let mix: BTreeSet<_> = OPERATION_MIX.iter().map(|(name, _)| *name).collect();
    assert_eq!(mix, catalog);
    let generated: BTreeSet<String> =
        traces(3, 20_000).iter().map(|t| t["trace_name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(generated, catalog.iter().map(|s| s.to_string()).collect());
}

#[test]
fn queries_dominate_and_close_resource_is_rare() {
    let workload = traces(4, 20_000);
    let mut per_name: BTreeMap<&str, usize> = BTreeMap::new();
    for trace in &workload {
        *per_name.entry(trace["trace_name"].as_str().unwrap()).or_default() += 1;
    }
    let read_only: usize = per_name.iter().filter(|(name, _)| name.starts_with("query")).map(|(_, n)| n).sum();
    assert!(read_only * 100 > workload.len() * 60, "{read_only} queries of {}", workload.len());
    assert!(per_name["createOrder"] > per_name["cancelOrder"] * 2);
    assert!(per_name["closeResource"] * 100 < workload.len());
}

#[test]
fn error_rates_are_about_three_percent_warnings_and_half_a_percent_incidents() {
    let workload = traces(5, 40_000);
    let mut ratings: BTreeMap<TraceRating, usize> = BTreeMap::new();
    for trace in &workload {
        *ratings.entry(validated(trace).trace_rating).or_default() += 1;
    }
    let share = |rating| *ratings.get(&rating).unwrap_or(&0) as f64 / workload.len() as f64;
    assert!((0.02..0.04).contains(&share(TraceRating::Warning)), "{ratings:?}");
    assert!((0.002..0.008).contains(&share(TraceRating::Incident)), "{ratings:?}");
}

#[test]
fn times_span_the_last_seven_days_in_rough_arrival_order() {
    let workload = traces(6, 10_000);
    let times: Vec<i64> = workload.iter().map(|t| t["time"].as_i64().unwrap()).collect();
    assert!(times.iter().all(|t| (NOW_MS - 7 * 86_400_000..NOW_MS).contains(t)));
    assert!(times[0] < NOW_MS - 6 * 86_400_000 && *times.last().unwrap() > NOW_MS - 3_600_000 - 60_000);
    assert!(times.windows(2).all(|w| w[1] > w[0] - ARRIVAL_JITTER_MS));
}

#[test]
fn users_accounts_and_keys_are_realistically_many() {
    let workload = traces(2, 50_000);
    let distinct = |field: &str| {
        workload.iter().map(|t| t["user"][field].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>().len()
    };
    assert!(distinct("id") > USERS * 9 / 10, "{}", distinct("id"));
    assert!(distinct("account_id") > ACCOUNTS * 9 / 10);
    assert!(distinct("access_key_id") >= distinct("id"));
    let bodies: usize =
        workload.iter().map(|t| t["request"].as_str().unwrap().len() + t["response"].as_str().unwrap().len()).sum();
    let average = bodies / workload.len();
    assert!((150..1_000).contains(&average), "average request+response {average} bytes");
}

#[test]
fn json_lines_hold_the_workload_one_trace_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workload.jsonl");
    write_json_lines(&path, 9, NOW_MS, 300).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines, traces(9, 300));
}

#[test]
fn operation_id_capitalises_the_trace_name() {
    assert_eq!(operation_id("createOrder"), "CreateOrder");
    assert_eq!(operation_id(""), "");
}
