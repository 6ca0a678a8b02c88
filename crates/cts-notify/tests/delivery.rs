//! End to end: a real store, the notifier, a real HTTP receiver and a real SMTP sink on loopback.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use cts_iam::MasterKey;
use cts_model::{Trace, TraceRating, TraceType, UserInfo};
use cts_notify::delivery::{MESSAGE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use cts_notify::{verify_signature, InsightConfig, Notifier, NotifierConfig, Outbox, Protocol, RetryPolicy, Topics};
use cts_resources::{NotificationRequest, ProjectScope, Resources};
use cts_store::{Store, StoreConfig};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const PROJECT: &str = "p1";
const SCOPE: ProjectScope<'static> = ProjectScope { project_id: PROJECT, domain_id: "d1" };
const REGION: &str = "ap-southeast-3";

/// One webhook call as received.
#[derive(Debug, Clone)]
struct Received {
    message_id: String,
    trace_id: String,
    signature_valid: bool,
    at: Instant,
}

/// A webhook receiver that answers 503 while `down`.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
    secret: Arc<Mutex<String>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let this = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let this = this.clone();
                async move {
                    if this.down.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let document: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let signature_valid = verify_signature(
                        &this.secret.lock(),
                        &header(TIMESTAMP_HEADER),
                        &body,
                        &header(SIGNATURE_HEADER),
                    );
                    this.received.lock().push(Received {
                        message_id: header(MESSAGE_ID_HEADER),
                        trace_id: document["trace"]["trace_id"].as_str().unwrap().to_owned(),
                        signature_valid,
                        at: Instant::now(),
                    });
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}/hook")
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().clone()
    }
}

struct Cts {
    store: Store,
    resources: Arc<Resources>,
    topics: Arc<Topics>,
    outbox: Arc<Outbox>,
    notifier: Notifier,
}

fn config() -> NotifierConfig {
    let mut config = NotifierConfig { insights: None, ..NotifierConfig::default() };
    config.delivery.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        dead_letter_after: Duration::from_secs(600),
    };
    config
}

fn open(dir: &Path, config: NotifierConfig) -> Cts {
    let store = Store::open(StoreConfig::new(dir)).unwrap();
    let resources = Arc::new(Resources::open(dir, &[SCOPE]).unwrap());
    let master_key = MasterKey::find(dir, None).unwrap().unwrap_or_else(|| MasterKey::create_file(dir).unwrap());
    let topics = Arc::new(Topics::open(dir, REGION, master_key).unwrap());
    let outbox = Arc::new(Outbox::open(dir).unwrap());
    let notifier = Notifier::start(store.clone(), resources.clone(), topics.clone(), outbox.clone(), config).unwrap();
    Cts { store, resources, topics, outbox, notifier }
}

impl Cts {
    async fn stop(self) {
        self.notifier.shutdown().await;
        drop(self.store);
    }

    /// A topic with one subscription; returns the topic URN and the subscription's secret.
    fn topic(&self, protocol: Protocol, endpoint: &str) -> (String, String) {
        let topic = self.topics.create_topic(PROJECT, "alerts", "Alerts").unwrap();
        let subscription = self.topics.add_subscription(PROJECT, &topic.topic_urn, protocol, endpoint, "").unwrap();
        (topic.topic_urn, subscription.secret)
    }

    fn notification(&self, body: serde_json::Value) {
        let request: NotificationRequest = serde_json::from_value(body).unwrap();
        self.resources.create_notification(SCOPE, &request).unwrap();
    }
}

fn trace(index: usize, trace_name: &str, user: &str, rating: TraceRating, code: &str) -> Trace {
    let now = cts_model::now_ms();
    Trace {
        trace_id: uuid::Uuid::new_v4().to_string(),
        trace_name: trace_name.to_owned(),
        trace_rating: rating,
        trace_type: TraceType::ApiCall,
        service_type: "marketplace".to_owned(),
        resource_type: "instance".to_owned(),
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
        code: Some(code.to_owned()),
        api_version: Some("v1".to_owned()),
        message: None,
        time: now,
        record_time: now,
        request_id: None,
        location_info: None,
        endpoint: None,
        resource_url: None,
        enterprise_project_id: None,
        user: Some(UserInfo { name: Some(user.to_owned()), ..UserInfo::default() }),
    }
}

/// A KooGallery-like mix: operations, users, outcomes.
fn workload(count: usize) -> Vec<Trace> {
    let names = ["closeResource", "createOrder", "queryInstance", "closeResource"];
    let users = ["seller-1", "buyer-7", "seller-2"];
    (0..count)
        .map(|i| {
            let (rating, code) = if i % 5 == 0 { (TraceRating::Warning, "403") } else { (TraceRating::Normal, "200") };
            trace(i, names[i % names.len()], users[i % users.len()], rating, code)
        })
        .collect()
}

fn close_resource_rule(topic_urn: &str) -> serde_json::Value {
    serde_json::json!({
        "notification_name": "close_by_sellers",
        "operation_type": "customized",
        "operations": [{"service_type": "marketplace", "resource_type": "instance", "trace_names": ["closeResource"]}],
        "notify_user_list": [{"user_group": "sellers", "user_list": ["seller-1", "seller-2"]}],
        "topic_id": topic_urn,
        "filter": {"condition": "AND", "is_support_filter": true, "rule": ["code = 200", "api_version = v1"]},
    })
}

fn expected(traces: &[Trace]) -> HashSet<String> {
    traces
        .iter()
        .filter(|t| {
            t.trace_name == "closeResource"
                && t.user_name().is_some_and(|u| u.starts_with("seller"))
                && t.code.as_deref() == Some("200")
        })
        .map(|t| t.trace_id.clone())
        .collect()
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customized_rule_with_users_and_an_and_filter_fires_exactly_for_matching_traces() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let cts = open(dir.path(), config());
    let (topic_urn, secret) = cts.topic(Protocol::Http, &endpoint);
    *receiver.secret.lock() = secret;
    cts.notification(close_resource_rule(&topic_urn));
    let traces = workload(60);
    let want = expected(&traces);
    assert!(!want.is_empty() && want.len() < traces.len());
    let mut acknowledged = Vec::new();
    for batch in traces.chunks(6) {
        cts.store.append(batch.to_vec()).await.unwrap();
        let at = Instant::now();
        acknowledged.extend(batch.iter().map(|t| (t.trace_id.clone(), at)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for("every matching trace", Duration::from_secs(10), || receiver.received().len() >= want.len()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let received = receiver.received();
    let got: HashSet<String> = received.iter().map(|r| r.trace_id.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(received.len(), want.len(), "each matching trace exactly once");
    assert!(received.iter().all(|r| r.signature_valid), "every signature verifies");
    let mut latencies: Vec<Duration> =
        received.iter().map(|r| r.at - acknowledged.iter().find(|(id, _)| *id == r.trace_id).unwrap().1).collect();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!("acknowledged -> webhook received: n={} p50={:?} p99={:?}", latencies.len(), p(0.5), p(0.99));
    cts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_across_a_restart_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    receiver.down.store(true, Ordering::SeqCst);
    let cts = open(dir.path(), config());
    let (topic_urn, secret) = cts.topic(Protocol::Http, &endpoint);
    *receiver.secret.lock() = secret;
    cts.notification(close_resource_rule(&topic_urn));
    let first = workload(40);
    cts.store.append(first.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cts.stop().await;
    // Traces acknowledged while no notifier runs: caught up from the store at the next start.
    let second = workload(40);
    {
        let store = Store::open(StoreConfig::new(dir.path())).unwrap();
        store.append(second.clone()).await.unwrap();
    }
    let cts = open(dir.path(), config());
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.down.store(false, Ordering::SeqCst);
    let want: HashSet<String> = expected(&first).union(&expected(&second)).cloned().collect();
    wait_for("every notification", Duration::from_secs(20), || receiver.received().len() >= want.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();
    let ids: Vec<&str> = received.iter().map(|r| r.message_id.as_str()).collect();
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "no message id twice");
    assert_eq!(received.iter().map(|r| r.trace_id.clone()).collect::<HashSet<_>>(), want);
    assert!(received.iter().all(|r| r.signature_valid), "signatures verify with the secret unsealed after the restart");
    cts.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_failing_past_the_configured_time_becomes_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    receiver.down.store(true, Ordering::SeqCst);
    let mut config = config();
    config.delivery.retry.dead_letter_after = Duration::from_millis(400);
    let cts = open(dir.path(), config);
    let (topic_urn, _) = cts.topic(Protocol::Http, &endpoint);
    cts.notification(close_resource_rule(&topic_urn));
    let matching = trace(1, "closeResource", "seller-1", TraceRating::Normal, "200");
    cts.store.append(vec![matching.clone()]).await.unwrap();
    wait_for("the dead letter", Duration::from_secs(10), || !cts.outbox.dead_letters(PROJECT).is_empty()).await;
    let letter = cts.outbox.dead_letters(PROJECT).remove(0);
    assert!(letter.delivery.message_id.ends_with(&matching.trace_id));
    assert!(letter.dead_lettered_ms - letter.delivery.created_ms >= 400, "not before the configured time");
    assert!(letter.attempts >= 2 && letter.last_error.contains("503"), "{letter:?}");
    assert_eq!(cts.outbox.pending_len(), 0);
    cts.stop().await;
}

/// An SMTP server speaking just enough SMTP to take messages; each received message's data.
async fn smtp_sink() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let messages = Arc::new(Mutex::new(Vec::new()));
    let kept = messages.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let messages = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = &mut data {
                        if line == "." {
                            messages.lock().push(std::mem::take(body));
                            data = None;
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (url, messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_subscription_reaches_the_smtp_relay() {
    let dir = tempfile::tempdir().unwrap();
    let (smtp_url, messages) = smtp_sink().await;
    let mut config = config();
    config.delivery.smtp_url = Some(smtp_url);
    let cts = open(dir.path(), config);
    let (topic_urn, _) = cts.topic(Protocol::Email, "ops@example.com");
    cts.notification(close_resource_rule(&topic_urn));
    let matching = trace(1, "closeResource", "seller-1", TraceRating::Normal, "200");
    cts.store.append(vec![matching.clone()]).await.unwrap();
    wait_for("the email", Duration::from_secs(10), || !messages.lock().is_empty()).await;
    let message = messages.lock()[0].clone();
    assert!(message.contains("To: ops@example.com"), "{message}");
    assert!(message.contains("close_by_sellers"), "{message}");
    assert!(message.contains(&matching.trace_id), "{message}");
    cts.stop().await;
}

const INSIGHT_BUCKET: Duration = Duration::from_millis(500);

/// Writes a synthetic baseline (30 buckets of 2 closeResource calls each) into the store of `dir`
/// and answers a notifier configuration judging insights on it.
async fn insight_baseline(dir: &Path) -> NotifierConfig {
    let bucket_ms = INSIGHT_BUCKET.as_millis() as i64;
    let store = Store::open(StoreConfig::new(dir)).unwrap();
    let now = cts_model::now_ms();
    let history: Vec<Trace> = (0..60)
        .map(|i| {
            let mut t = trace(i, "closeResource", "seller-1", TraceRating::Normal, "200");
            t.time = now - (30 - (i as i64 / 2)) * bucket_ms;
            t
        })
        .collect();
    store.append(history).await.unwrap();
    let mut config = config();
    config.insights = Some(InsightConfig {
        bucket: INSIGHT_BUCKET,
        history: Duration::from_secs(3600),
        min_history_buckets: 10,
        min_calls: 10,
        rate_factor: 5.0,
        error_rate_increase: 0.5,
    });
    config.insight_projects = vec![PROJECT.to_owned()];
    config
}

impl Cts {
    /// A notification of call-rate insights to `endpoint`.
    fn notify_insights(&self, endpoint: &str, receiver: &Receiver) {
        let (topic_urn, secret) = self.topic(Protocol::Http, endpoint);
        *receiver.secret.lock() = secret;
        self.notification(serde_json::json!({
            "notification_name": "insights",
            "operation_type": "customized",
            "operations": [{"service_type": "CTS", "resource_type": "insight", "trace_names": ["apiCallRateInsight"]}],
            "topic_id": topic_urn,
        }));
    }

    /// Waits for the start of the next bucket, then appends 20 closeResource calls (10× the baseline) in it.
    async fn burst(&self) {
        let bucket_ms = INSIGHT_BUCKET.as_millis() as i64;
        let start_bucket = cts_model::now_ms() / bucket_ms + 1;
        tokio::time::sleep(Duration::from_millis((start_bucket * bucket_ms - cts_model::now_ms()).max(0) as u64)).await;
        let burst: Vec<Trace> =
            (0..20).map(|i| trace(i, "closeResource", "seller-2", TraceRating::Normal, "200")).collect();
        self.store.append(burst).await.unwrap();
    }

    /// The insight documents of the traces `receiver` got, in arrival order.
    fn insight_documents(&self, receiver: &Receiver) -> Vec<(Trace, serde_json::Value)> {
        receiver
            .received()
            .iter()
            .map(|r| {
                let trace = self.store.get(PROJECT, &r.trace_id).unwrap().expect("the insight trace is stored");
                let document = serde_json::from_str(trace.message.as_deref().unwrap()).unwrap();
                (trace, document)
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_fold_burst_opens_and_closes_an_insight_that_is_notified() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let config = insight_baseline(dir.path()).await;
    let cts = open(dir.path(), config);
    cts.notify_insights(&endpoint, &receiver);
    cts.burst().await;
    wait_for("a start and an end insight", Duration::from_secs(10), || receiver.received().len() >= 2).await;
    let insights = cts.insight_documents(&receiver);
    let states: Vec<&str> = insights
        .iter()
        .map(|(_, document)| {
            assert_eq!(document["trace_name"], "closeResource");
            let state = document["state"].as_str().unwrap();
            if state == "Start" {
                assert!(document["observed"].as_f64().unwrap() >= 20.0, "{document}");
                assert_eq!(document["top_users"][0]["name"], "seller-2", "{document}");
            }
            assert!(document["baseline"].as_f64().unwrap() < 3.0, "{document}");
            state
        })
        .collect();
    assert_eq!(states, ["Start", "End"]);
    assert_eq!(insights[0].1["insight_id"], insights[1].1["insight_id"]);
    assert!(insights.iter().all(|(t, _)| t.trace_type == TraceType::SystemAction && t.service_type == "CTS"));
    cts.stop().await;
}

/// Regression: open insights lived only in memory, so a restart mid-insight either never ended it
/// or started it a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_insight_gives_exactly_one_start_and_one_end() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let config = insight_baseline(dir.path()).await;
    let cts = open(dir.path(), config.clone());
    cts.notify_insights(&endpoint, &receiver);
    cts.burst().await;
    wait_for("the start insight", Duration::from_secs(10), || !receiver.received().is_empty()).await;
    cts.stop().await;
    let cts = open(dir.path(), config);
    wait_for("the end insight", Duration::from_secs(10), || receiver.received().len() >= 2).await;
    // Several more buckets: neither a second start nor a second end.
    tokio::time::sleep(INSIGHT_BUCKET * 4).await;
    let insights = cts.insight_documents(&receiver);
    let states: Vec<&str> = insights.iter().map(|(_, document)| document["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["Start", "End"]);
    assert_eq!(insights[0].1["insight_id"], insights[1].1["insight_id"], "the end closes the start");
    cts.stop().await;
}
