//! One aggregation (traces per operation per day over 7 days) over 200k traces: through SQL, and by paging
//! the store 200 traces at a time as ListTraces does and counting in Rust. Run with
//! `cargo run --release -p cts-sql --example sql_bench`.

use cts_model::{Trace, TraceRating, TraceType, UserInfo, CATALOG};
use cts_sql::{SqlEngine, SqlLimits};
use cts_store::{SortKey, Store, StoreConfig, TraceQuery};
use std::collections::HashMap;
use std::time::Instant;

const TRACES: usize = 200_000;
const DAY_MS: i64 = 86_400_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    let now = cts_model::now_ms();
    let operations: Vec<_> = CATALOG.all().iter().filter(|op| op.service_type == "marketplace").collect();
    let traces: Vec<Trace> = (0..TRACES)
        .map(|i| {
            let op = operations[i % operations.len()];
            Trace {
                trace_id: format!("{i:012}"),
                trace_name: op.trace_name.into(),
                trace_rating: TraceRating::Normal,
                trace_type: TraceType::ApiCall,
                service_type: op.service_type.into(),
                resource_type: op.resource_type.into(),
                resource_name: Some(format!("order-{}", i % 1000)),
                resource_id: None,
                project_id: "p".into(),
                resource_account_id: None,
                read_only: op.read_only,
                tracker_name: None,
                operation_id: None,
                source_ip: Some("10.0.0.1".into()),
                request: Some(format!("{{\"order\":{i}}}")),
                response: None,
                code: Some("200".into()),
                api_version: None,
                message: None,
                time: now - 7 * DAY_MS + 60_000 + (i as i64) * (7 * DAY_MS - 120_000) / TRACES as i64,
                record_time: now,
                request_id: None,
                location_info: None,
                endpoint: None,
                resource_url: None,
                enterprise_project_id: None,
                user: Some(UserInfo { name: Some(format!("user-{}", i % 50)), ..UserInfo::default() }),
            }
        })
        .collect();
    for chunk in traces.chunks(10_000) {
        store.append_blocking(chunk.to_vec()).unwrap();
    }
    store.flush().unwrap();
    let engine = SqlEngine::new(store.clone(), SqlLimits::default()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sql = "SELECT trace_name, date_trunc('day', to_timestamp_millis(time)) AS day, count(*) AS n \
               FROM traces GROUP BY trace_name, day";
    for _ in 0..3 {
        let started = Instant::now();
        let result = runtime.block_on(engine.query("p", sql)).unwrap();
        let total: i64 = result.rows.iter().map(|row| row[2].as_i64().unwrap()).sum();
        println!("SQL:    {} groups, {total} traces in {:?}", result.rows.len(), started.elapsed());
    }
    let started = Instant::now();
    let mut groups: HashMap<(String, i64), u64> = HashMap::new();
    let mut after: Option<SortKey> = None;
    loop {
        let query = TraceQuery {
            project_id: "p".into(),
            data: false,
            tracker_name: None,
            from_ms: now - 7 * DAY_MS,
            to_ms: now,
            filters: Default::default(),
            after: after.clone(),
            limit: 200,
        };
        let page = store.query(&query).unwrap();
        for trace in &page {
            *groups.entry((trace.trace_name.clone(), trace.time.div_euclid(DAY_MS))).or_default() += 1;
        }
        match page.last() {
            Some(last) if page.len() == 200 => after = Some(SortKey::of(last)),
            _ => break,
        }
    }
    let total: u64 = groups.values().sum();
    println!("Paging: {} groups, {total} traces in {:?}", groups.len(), started.elapsed());
}
