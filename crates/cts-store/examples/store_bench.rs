//! Measures the store on realistic traces: durable ingest throughput (batches of 1,000), bytes per
//! trace on disk after sealing, the latency of a selective ListTraces-style query (user +
//! trace_name over 7 days, first page), and the console's 7-day timeline counted by paging through
//! every trace (as the histogram did first) and by `Store::count_by_time`.
//!
//! `cargo run --release -p cts-store --example store_bench -- [traces] [dir] [--ingest-only]` (default
//! 1,000,000 traces). A `dir` given is kept, and reused for the queries only when it already holds a store.
//! `--ingest-only` stops after ingest and the final flush (for profiling the write path).

use cts_model::{BaseUser, Trace, TraceRating, TraceType, UserInfo, UserType};
use cts_store::{Filters, Store, StoreConfig, TraceQuery};
use std::time::{Duration, Instant};

const DAY_MS: i64 = 24 * 3600 * 1000;
const USERS: u64 = 1000;
const TRACE_NAMES: &[&str] = &[
    "createOrder",
    "cancelOrder",
    "queryOrderList",
    "queryOrderDetail",
    "renewOrder",
    "changeOrder",
    "unSubscribeByNegotiation",
    "queryResourceDetail",
    "setResourceStrategy",
    "closeResource",
    "querySaasResourceInstance",
    "submitRequirement",
    "confirmAcceptance",
    "queryDeliveryProcess",
    "queryPrivateOfferList",
    "queryPrivateOfferDetail",
    "addFavorites",
    "deleteFavorites",
    "queryFavorites",
    "queryAgreementSignList",
    "queryAgreementSignDetail",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn realistic_trace(rng: &mut Rng, time: i64) -> Trace {
    let user = rng.next() % USERS;
    let name = TRACE_NAMES[(rng.next() % TRACE_NAMES.len() as u64) as usize];
    let order = rng.next() % 100_000;
    let code = [200, 200, 200, 200, 201, 400, 404, 500][(rng.next() % 8) as usize];
    Trace {
        trace_id: uuid::Uuid::from_u64_pair(rng.next(), rng.next()).hyphenated().to_string(),
        trace_name: name.to_owned(),
        trace_rating: TraceRating::from_code(code),
        trace_type: TraceType::ApiCall,
        service_type: "marketplace".into(),
        resource_type: "Order".into(),
        resource_name: Some(format!("order-{order:06}")),
        resource_id: Some(format!("CS{order:012}")),
        project_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
        resource_account_id: None,
        read_only: name.starts_with("query"),
        tracker_name: None,
        operation_id: None,
        source_ip: Some(format!("203.0.{}.{}", user % 256, rng.next() % 256)),
        request: Some(format!(
            "{{\"orderId\":\"CS{order:012}\",\"productId\":\"OFFI{:08}\",\"period\":\"1 month\",\"amount\":{}}}",
            rng.next() % 5000,
            rng.next() % 100
        )),
        response: Some(format!(
            "{{\"orderId\":\"CS{order:012}\",\"status\":\"{}\"}}",
            if code < 400 { "ok" } else { "failed" }
        )),
        code: Some(code.to_string()),
        api_version: Some("v3".into()),
        message: (code >= 400).then(|| "the order cannot be changed in its current state".to_owned()),
        time,
        record_time: time + (rng.next() % 2000) as i64,
        request_id: Some(format!("{:032x}", u128::from(rng.next()) << 64 | u128::from(rng.next()))),
        location_info: None,
        endpoint: Some("https://marketplace.example.com".into()),
        resource_url: None,
        enterprise_project_id: Some("0".into()),
        user: Some(UserInfo {
            id: Some(format!("{user:032x}")),
            name: Some(format!("user{user:04}")),
            domain: Some(BaseUser { id: Some("d0a1b2c3d4e5f6071".into()), name: Some("acme".into()) }),
            access_key_id: Some(format!("AK{user:018}")),
            principal_urn: Some(format!("iam::d0a1b2c3d4e5f6071:user:user{user:04}")),
            principal_is_root_user: Some("false".into()),
            user_type: Some(UserType::User),
            ..UserInfo::default()
        }),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    let (flags, args): (Vec<String>, Vec<String>) = std::env::args().partition(|arg| arg.starts_with("--"));
    let ingest_only = flags.iter().any(|flag| flag == "--ingest-only");
    let total: usize = args.get(1).map_or(1_000_000, |n| n.parse().expect("a trace count"));
    let dir = match args.get(2) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("cts-store-bench-{}", std::process::id())),
    };
    let now = cts_model::now_ms();
    let reuse = args.get(2).is_some() && dir.join("store").exists();
    if !reuse {
        ingest(&dir, total, now);
    }
    if ingest_only {
        if args.get(2).is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return;
    }
    let reopen_started = Instant::now();
    let store = Store::open(StoreConfig::new(&dir)).expect("reopen");
    println!("reopen (indexes of {} segments): {:.2?}", store.stats().segments, reopen_started.elapsed());

    for limit in [10, 50] {
        let mut latencies = Vec::new();
        let mut found = 0;
        for i in 0..2000u64 {
            let query = TraceQuery {
                project_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
                data: false,
                tracker_name: None,
                from_ms: now - 7 * DAY_MS,
                to_ms: now,
                filters: Filters {
                    user: Some(format!("user{:04}", i * 7919 % USERS).into()),
                    trace_name: Some(TRACE_NAMES[(i % TRACE_NAMES.len() as u64) as usize].into()),
                    ..Filters::default()
                },
                after: None,
                limit: limit + 1,
            };
            let started = Instant::now();
            found += store.query(&query).expect("query").len();
            latencies.push(started.elapsed());
        }
        latencies.sort();
        println!(
            "selective query user+trace_name, 7 days, limit {limit}+1: p50 {:.2?} p90 {:.2?} p99 {:.2?} ({:.1} traces/page)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.9),
            percentile(&latencies, 0.99),
            found as f64 / latencies.len() as f64
        );
    }
    let mut latencies = Vec::new();
    for _ in 0..500 {
        let query = TraceQuery {
            project_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
            data: false,
            tracker_name: None,
            from_ms: now - 3_600_000,
            to_ms: now,
            filters: Filters::default(),
            after: None,
            limit: 11,
        };
        let started = Instant::now();
        store.query(&query).expect("query");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!("unfiltered first page (last hour, limit 10+1): p50 {:.2?}", percentile(&latencies, 0.5));
    timeline(&store, now);
    drop(store);
    if args.get(2).is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The 7-day timeline (28-minute buckets, what the console asks for) of every trace, of one user and
/// of the warnings: paging through the traces 1,000 at a time vs counting, each the best of 3 runs.
fn timeline(store: &Store, now: i64) {
    const BUCKET_MS: i64 = 28 * 60_000;
    let everything = TraceQuery {
        project_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
        data: false,
        tracker_name: None,
        from_ms: now - 7 * DAY_MS,
        to_ms: now,
        filters: Filters::default(),
        after: None,
        limit: 1000,
    };
    let one_user = Filters { user: Some("user0042".into()), ..Filters::default() };
    let warnings = Filters { trace_rating: Some(TraceRating::Warning), ..Filters::default() };
    for (name, filters) in [("every trace", Filters::default()), ("one user", one_user), ("warnings", warnings)] {
        let query = TraceQuery { filters, ..everything.clone() };
        let best_of_three = |count: &dyn Fn() -> Vec<(i64, cts_store::RatingCounts)>| {
            let mut runs: Vec<(Duration, Vec<(i64, cts_store::RatingCounts)>)> = (0..3)
                .map(|_| {
                    let started = Instant::now();
                    let counts = count();
                    (started.elapsed(), counts)
                })
                .collect();
            runs.sort_by_key(|(elapsed, _)| *elapsed);
            runs.swap_remove(0)
        };
        let (paged, by_paging) = best_of_three(&|| {
            let mut buckets = std::collections::BTreeMap::<i64, cts_store::RatingCounts>::new();
            let mut page_query = query.clone();
            loop {
                let page = store.query(&page_query).expect("query");
                for trace in &page {
                    buckets
                        .entry(trace.time - trace.time.rem_euclid(BUCKET_MS))
                        .or_default()
                        .add(trace.trace_rating, 1);
                }
                if page.len() < page_query.limit {
                    return buckets.into_iter().collect();
                }
                page_query.after = page.last().map(cts_store::SortKey::of);
            }
        });
        let (counted, by_counting) = best_of_three(&|| store.count_by_time(&query, BUCKET_MS).expect("count"));
        assert_eq!(by_paging, by_counting, "{name}: the same counts");
        let traces: u64 = by_counting.iter().map(|(_, counts)| counts.total()).sum();
        println!(
            "timeline, 7 days, {name} ({traces} traces, {} buckets): paging {paged:.2?}, count_by_time {counted:.2?} ({:.0}x)",
            by_counting.len(),
            paged.as_secs_f64() / counted.as_secs_f64()
        );
    }
}

fn ingest(dir: &std::path::Path, total: usize, now: i64) {
    let store = Store::open(StoreConfig::new(dir)).expect("open");
    let start_time = now - 7 * DAY_MS + 60_000;
    let step = (7 * DAY_MS - 120_000) / total as i64;
    let mut rng = Rng(42);
    let batches: Vec<Vec<Trace>> = (0..total)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| chunk.iter().map(|&i| realistic_trace(&mut rng, start_time + i as i64 * step)).collect())
        .collect();
    let json_bytes: usize = batches[0].iter().map(|t| serde_json::to_vec(t).unwrap().len()).sum::<usize>() / 1000;
    println!("{total} traces, ~{json_bytes} bytes of JSON each");

    // Two appenders, as an HTTP server would have, each with batches of 1,000.
    let started = Instant::now();
    std::thread::scope(|scope| {
        let (even, odd): (Vec<_>, Vec<_>) = batches.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for half in [even, odd] {
            let store = store.clone();
            scope.spawn(move || {
                for (_, batch) in half {
                    store.append_blocking(batch).expect("append");
                }
            });
        }
    });
    let ingest = started.elapsed();
    println!("ingest: {:.0} traces/s durable ({ingest:.2?})", total as f64 / ingest.as_secs_f64());
    let flush_started = Instant::now();
    store.flush().expect("flush");
    println!("final flush: {:.2?}", flush_started.elapsed());
    let stats = store.stats();
    println!(
        "on disk: {} bytes in {} segments = {:.0} bytes/trace",
        stats.bytes_on_disk,
        stats.segments,
        stats.bytes_on_disk as f64 / stats.traces as f64
    );
    for extension in ["parquet", "traces"] {
        let bytes: u64 = std::fs::read_dir(dir.join("store/segments"))
            .expect("the segment directory")
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|e| e == extension))
            .map(|entry| entry.metadata().expect("metadata").len())
            .sum();
        println!("  .{extension}: {:.0} bytes/trace", bytes as f64 / stats.traces as f64);
    }
    drop(store);
}
