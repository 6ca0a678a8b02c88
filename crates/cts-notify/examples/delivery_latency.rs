//! Measures the latency from a trace's acknowledgement (the store's `append` returned) to its key
//! event notification arriving at a webhook receiver on loopback: a real store, the notifier with
//! one customized rule, one HTTP subscription, and an axum receiver checking every signature.
//!
//! `cargo run -p cts-notify --example delivery_latency -- [seconds] [traces per second]`
//! (defaults 30 s at 200 traces/s, in batches every 10 ms); prints p50, p90, p99 and the maximum.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cts_iam::MasterKey;
use cts_model::{Trace, TraceRating, TraceType, UserInfo};
use cts_notify::delivery::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use cts_notify::{verify_signature, Notifier, NotifierConfig, Outbox, Protocol, Topics};
use cts_resources::{NotificationRequest, ProjectScope, Resources};
use cts_store::{Store, StoreConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROJECT: &str = "p1";
const SCOPE: ProjectScope<'static> = ProjectScope { project_id: PROJECT, domain_id: "d1" };
/// Time between two appended batches.
const BATCH_EVERY: Duration = Duration::from_millis(10);

/// Arrival instants by trace id, and how many signatures failed.
#[derive(Default)]
struct Arrivals {
    at: HashMap<String, Instant>,
    bad_signatures: usize,
}

fn trace(index: usize) -> Trace {
    let now = cts_model::now_ms();
    Trace {
        trace_id: uuid::Uuid::new_v4().to_string(),
        trace_name: "closeResource".to_owned(),
        trace_rating: TraceRating::Normal,
        trace_type: TraceType::ApiCall,
        service_type: "marketplace".to_owned(),
        resource_type: "Resource".to_owned(),
        resource_name: Some(format!("instance-{index}")),
        resource_id: Some(format!("i-{index}")),
        project_id: PROJECT.to_owned(),
        resource_account_id: None,
        read_only: false,
        tracker_name: None,
        operation_id: None,
        source_ip: Some("203.0.113.7".to_owned()),
        request: None,
        response: None,
        code: Some("200".to_owned()),
        api_version: Some("v1".to_owned()),
        message: None,
        time: now,
        record_time: now,
        request_id: None,
        location_info: None,
        endpoint: None,
        resource_url: None,
        enterprise_project_id: None,
        user: Some(UserInfo { name: Some("seller-1".to_owned()), ..UserInfo::default() }),
    }
}

async fn receiver(arrivals: Arc<Mutex<Arrivals>>, secret: Arc<Mutex<String>>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let (arrivals, secret) = (arrivals.clone(), secret.clone());
            async move {
                let at = Instant::now();
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let valid = verify_signature(
                    &secret.lock().unwrap(),
                    &header(TIMESTAMP_HEADER),
                    &body,
                    &header(SIGNATURE_HEADER),
                );
                let document: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let trace_id = document["trace"]["trace_id"].as_str().unwrap_or_default().to_owned();
                let mut arrivals = arrivals.lock().unwrap();
                arrivals.bad_signatures += usize::from(!valid);
                arrivals.at.entry(trace_id).or_insert(at);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/hook")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<u64>().expect("numbers"));
    let seconds = args.next().unwrap_or(30);
    let per_second = args.next().unwrap_or(200);
    let per_batch = (per_second * BATCH_EVERY.as_millis() as u64 / 1000).max(1) as usize;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    let resources = Arc::new(Resources::open(dir.path(), &[SCOPE]).unwrap());
    let topics = Arc::new(Topics::open(dir.path(), "ap-southeast-3", MasterKey::generate()).unwrap());
    let outbox = Arc::new(Outbox::open(dir.path()).unwrap());
    let (arrivals, secret) = (Arc::new(Mutex::new(Arrivals::default())), Arc::new(Mutex::new(String::new())));
    let endpoint = receiver(arrivals.clone(), secret.clone()).await;
    let topic = topics.create_topic(PROJECT, "latency", "").unwrap();
    let subscription = topics.add_subscription(PROJECT, &topic.topic_urn, Protocol::Http, &endpoint, "").unwrap();
    *secret.lock().unwrap() = subscription.secret;
    let request: NotificationRequest = serde_json::from_value(serde_json::json!({
        "notification_name": "closes",
        "operation_type": "customized",
        "operations": [{"service_type": "marketplace", "resource_type": "Resource", "trace_names": ["closeResource"]}],
        "notify_user_list": [{"user_group": "sellers", "user_list": ["seller-1"]}],
        "topic_id": topic.topic_urn,
        "filter": {"condition": "AND", "is_support_filter": true, "rule": ["code = 200", "api_version = v1"]},
    }))
    .unwrap();
    resources.create_notification(SCOPE, &request).unwrap();
    let config = NotifierConfig { insights: None, ..NotifierConfig::default() };
    let notifier = Notifier::start(store.clone(), resources, topics, outbox, config).unwrap();

    println!("appending {per_batch} traces every {BATCH_EVERY:?} for {seconds} s ...");
    let mut acknowledged: Vec<(String, Instant)> = Vec::new();
    let started = Instant::now();
    let mut ticks = tokio::time::interval(BATCH_EVERY);
    let mut index = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        ticks.tick().await;
        let batch: Vec<Trace> = (index..index + per_batch).map(trace).collect();
        index += per_batch;
        let ids: Vec<String> = batch.iter().map(|t| t.trace_id.clone()).collect();
        store.append(batch).await.unwrap();
        let at = Instant::now();
        acknowledged.extend(ids.into_iter().map(|id| (id, at)));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().at.len() < acknowledged.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    notifier.shutdown().await;

    let arrivals = arrivals.lock().unwrap();
    let mut latencies: Vec<Duration> = acknowledged
        .iter()
        .filter_map(|(id, acked)| arrivals.at.get(id).map(|at| at.saturating_duration_since(*acked)))
        .collect();
    latencies.sort();
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "{} traces acknowledged, {} notified ({} bad signatures); acknowledged -> webhook received: \
         p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        acknowledged.len(),
        latencies.len(),
        arrivals.bad_signatures,
        quantile(0.5).as_secs_f64() * 1000.0,
        quantile(0.9).as_secs_f64() * 1000.0,
        quantile(0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0,
    );
}
