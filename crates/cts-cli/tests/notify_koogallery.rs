//! Key event notifications on a real KooGallery workload: a real `cts serve`, the marketplace service with its
//! reporter in process (as `cts demo` runs it), customized notifications created through the API, and a real HTTP
//! receiver. What each notification should fire for is computed independently, from the traces ListTraces answers,
//! and compared by trace id with what the receiver got.

mod common;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{all_traces, Server, ACCESS_KEY, PROJECT_ID, SECRET_KEY};
use cts_client::Credentials;
use cts_iam::sign::{complete_headers, sign_request, SignedRequest};
use cts_koogallery::workload::{self, Target};
use cts_koogallery::{AppState, Clock, KooGallery};
use cts_model::{Trace, MARKETPLACE_SERVICE};
use cts_notify::delivery::{MESSAGE_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use cts_reporter::{Reporter, ReporterConfig};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "notify-test-admin-token";
const OPERATIONS: usize = 1_500;
const SEED: u64 = 7;

/// One webhook call as received.
#[derive(Debug, Clone)]
struct Received {
    message_id: String,
    notification_id: String,
    trace_id: String,
    signature_valid: bool,
}

/// A webhook receiver on loopback checking each call's signature with the subscription's secret.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
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
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let document: Value = serde_json::from_slice(&body).unwrap();
                    let secret = this.secret.lock().unwrap().clone();
                    let signature_valid = cts_notify::verify_signature(
                        &secret,
                        &header(TIMESTAMP_HEADER),
                        &body,
                        &header(SIGNATURE_HEADER),
                    );
                    this.received.lock().unwrap().push(Received {
                        message_id: header(MESSAGE_ID_HEADER),
                        notification_id: document["notification_id"].as_str().unwrap().to_owned(),
                        trace_id: document["trace"]["trace_id"].as_str().unwrap().to_owned(),
                        signature_valid,
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
        self.received.lock().unwrap().clone()
    }
}

/// A signed call of the cts API as the tests' admin; answers the JSON document (panics on a non-2xx answer).
async fn call(server: &Server, method: reqwest::Method, path: &str, body: Value) -> Value {
    let body = serde_json::to_vec(&body).unwrap();
    let host = server.endpoint.trim_start_matches("http://").to_owned();
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("X-Project-Id".to_owned(), PROJECT_ID.to_owned()),
    ];
    complete_headers(&mut headers, &host, cts_model::now_ms());
    let query: [(String, String); 0] = [];
    let request = SignedRequest { method: method.as_str(), path, query: &query, headers: &headers, body: &body };
    let authorization = sign_request(ACCESS_KEY, SECRET_KEY, &request).unwrap();
    headers.push(("Authorization".to_owned(), authorization));
    let mut builder = reqwest::Client::new().request(method, format!("{}{path}", server.endpoint));
    for (name, value) in &headers {
        builder = builder.header(name, value);
    }
    let response = builder.body(body).send().await.unwrap();
    let status = response.status();
    let document: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {document}");
    document
}

/// A `reporter`-role key in the tests' project, made the way `cts admin` makes it.
fn reporter_key(cts_data_dir: &Path) -> Credentials {
    let (iam, _) = cts_iam::Iam::open(cts_data_dir, cts_iam::Bootstrap::default()).unwrap();
    let project = iam.projects().into_iter().find(|project| project.id == PROJECT_ID).unwrap();
    iam.create_user(&project.domain_id, "koogallery", cts_iam::Role::Reporter).unwrap();
    let key = iam.create_access_key("koogallery", PROJECT_ID).unwrap();
    Credentials { access_key: key.info.access_key, secret_key: key.secret_key, project_id: PROJECT_ID.into() }
}

/// The seeded KooGallery workload through the marketplace's router in process, every operation reported to cts;
/// returns once the reporter delivered everything. Answers the simulated start time.
async fn run_workload(dir: &Path, cts_endpoint: &str, key: Credentials) -> i64 {
    let reporter = Reporter::start(ReporterConfig::new(cts_endpoint, key, dir.join("spool"))).unwrap();
    let sink: Arc<dyn cts_reporter::TraceSink> = Arc::new(reporter.clone());
    let simulated_start = cts_model::now_ms() - workload::simulated_span_ms(OPERATIONS);
    let market_dir = dir.join("market");
    let kg = {
        let sink = sink.clone();
        tokio::task::spawn_blocking(move || {
            KooGallery::open(&market_dir, Clock::simulated(simulated_start), sink, ADMIN_TOKEN).unwrap()
        })
        .await
        .unwrap()
    };
    let state = AppState { kg: Arc::new(kg), trace_sink: sink, trusted_proxies: Vec::new() };
    let target = Target::InProcess(cts_koogallery::app(state));
    let report = workload::run(&target, ADMIN_TOKEN, SEED, OPERATIONS, |_, _| {}).await.unwrap();
    assert_eq!(report.operations, OPERATIONS);
    reporter.shutdown(Duration::from_secs(60)).await.expect("every trace reached cts");
    simulated_start
}

/// A filter rule: the trace's value of the field, the value compared with, and whether the rule is `!=`.
type RuleCheck = (fn(&Trace) -> Option<String>, &'static str, bool);

/// What a notification fires for, written apart from cts-notify's matcher.
struct Expectation {
    service_type: &'static str,
    resource_type: &'static str,
    trace_names: &'static [&'static str],
    /// Empty: anyone.
    users: &'static [&'static str],
    /// `(field value of the trace, wanted value, negated)` per rule.
    rules: Vec<RuleCheck>,
    all_rules: bool,
}

impl Expectation {
    fn fires(&self, trace: &Trace) -> bool {
        let [operation, user, filter] = self.parts(trace, None);
        operation && user && filter
    }

    /// Whether the operation, the user and the filter match; the filter with rule `flipped` negated.
    fn parts(&self, trace: &Trace, flipped: Option<usize>) -> [bool; 3] {
        let operation = trace.service_type == self.service_type
            && trace.resource_type == self.resource_type
            && self.trace_names.contains(&trace.trace_name.as_str());
        let user = self.users.is_empty() || trace.user_name().is_some_and(|user| self.users.contains(&user));
        let mut holds = self.rules.iter().enumerate().map(|(index, (field, value, negated))| {
            ((field(trace).as_deref() == Some(*value)) != *negated) != (Some(index) == flipped)
        });
        let filter = if self.all_rules { holds.all(|h| h) } else { holds.any(|h| h) };
        [operation, user, filter]
    }

    /// Checks that the workload tests every condition: for the operations, the users (when listed) and the
    /// filter, some trace fails only that one; and for each rule, some trace's outcome turns on that rule.
    fn assert_each_condition_decides(&self, name: &str, traces: &[&Trace]) {
        let conditions = if self.users.is_empty() { vec![0, 2] } else { vec![0, 1, 2] };
        for condition in conditions {
            let near_miss = traces.iter().any(|trace| {
                let parts = self.parts(trace, None);
                !parts[condition] && parts.iter().enumerate().all(|(other, ok)| other == condition || *ok)
            });
            assert!(near_miss, "{name}: no trace fails only condition {condition}");
        }
        for rule in 0..self.rules.len() {
            let decides = traces.iter().any(|trace| {
                let [operation, user, filter] = self.parts(trace, None);
                operation && user && filter != self.parts(trace, Some(rule))[2]
            });
            assert!(decides, "{name}: no trace's outcome turns on rule {rule}");
        }
    }
}

fn code(trace: &Trace) -> Option<String> {
    trace.code.clone()
}

fn rating(trace: &Trace) -> Option<String> {
    Some(trace.trace_rating.as_str().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customized_notifications_fire_exactly_for_the_matching_traces_of_a_koogallery_workload() {
    let dir = tempfile::tempdir().unwrap();
    let (cts_dir, kg_dir) = (dir.path().join("cts"), dir.path().join("koogallery"));
    let server = Server::start_at(&cts_dir, common::free_port(), &["--retention", "60d"]).await;
    let key = reporter_key(&cts_dir);
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;

    let topics = format!("/v2/{PROJECT_ID}/notifications/topics");
    let topic = call(&server, reqwest::Method::POST, &topics, json!({"name": "marketplace_events"})).await;
    let topic_urn = topic["topic_urn"].as_str().unwrap().to_owned();
    let subscription = call(
        &server,
        reqwest::Method::POST,
        &format!("{topics}/{topic_urn}/subscriptions"),
        json!({"protocol": "http", "endpoint": endpoint, "remark": "test receiver"}),
    )
    .await;
    *receiver.secret.lock().unwrap() = subscription["signing_secret"].as_str().unwrap().to_owned();

    // AND: order changes by alice, bob (team-a) or carol (team-b) refused for a reason other than a missing order.
    let and_rule = Expectation {
        service_type: MARKETPLACE_SERVICE,
        resource_type: "Order",
        trace_names: &["createOrder", "cancelOrder", "renewOrder", "changeOrder"],
        users: &["alice", "bob", "carol"],
        rules: vec![(rating, "warning", false), (code, "404", true)],
        all_rules: true,
    };
    let and_notification = json!({
        "notification_name": "order_changes_of_teams",
        "operation_type": "customized",
        "operations": [{"service_type": "marketplace", "resource_type": "Order",
                        "trace_names": ["createOrder", "cancelOrder", "renewOrder", "changeOrder"]}],
        "notify_user_list": [{"user_group": "team-a", "user_list": ["alice", "bob"]},
                             {"user_group": "team-b", "user_list": ["carol"]}],
        "topic_id": topic_urn,
        "filter": {"condition": "AND", "is_support_filter": true, "rule": ["trace_rating = warning", "code != 404"]},
    });
    // OR: resource operations by anyone refused as invalid or conflicting.
    let or_rule = Expectation {
        service_type: MARKETPLACE_SERVICE,
        resource_type: "Resource",
        trace_names: &["closeResource", "setResourceStrategy", "queryResourceDetail"],
        users: &[],
        rules: vec![(code, "400", false), (code, "409", false)],
        all_rules: false,
    };
    let or_notification = json!({
        "notification_name": "resource_trouble",
        "operation_type": "customized",
        "operations": [{"service_type": "marketplace", "resource_type": "Resource",
                        "trace_names": ["closeResource", "setResourceStrategy", "queryResourceDetail"]}],
        "topic_id": topic_urn,
        "filter": {"condition": "OR", "is_support_filter": true,
                   "rule": ["code = 400", "code = 409"]},
    });
    let notifications = format!("/v3/{PROJECT_ID}/notifications");
    let mut rules = BTreeMap::new();
    for (body, expectation) in [(and_notification, and_rule), (or_notification, or_rule)] {
        let created = call(&server, reqwest::Method::POST, &notifications, body).await;
        rules.insert(created["notification_id"].as_str().unwrap().to_owned(), expectation);
    }

    let simulated_start = run_workload(&kg_dir, &server.endpoint, key).await;
    let traces = all_traces(&server.client(), &[("from", simulated_start.to_string())]).await;
    let marketplace: Vec<&Trace> = traces.iter().filter(|t| t.service_type == MARKETPLACE_SERVICE).collect();
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (id, rule) in &rules {
        rule.assert_each_condition_decides(id, &marketplace);
        let fired: BTreeSet<String> =
            marketplace.iter().filter(|t| rule.fires(t)).map(|t| t.trace_id.clone()).collect();
        eprintln!("notification {id}: {} of {} marketplace traces", fired.len(), marketplace.len());
        expected.insert(id, fired);
    }

    let total: usize = expected.values().map(BTreeSet::len).sum();
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.received().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // anything extra would arrive now
    let received = receiver.received();
    let distinct: BTreeSet<&str> = received.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(distinct.len(), received.len(), "no notification twice");
    assert!(received.iter().all(|r| r.signature_valid), "every signature verifies");
    for (id, want) in &expected {
        let got: BTreeSet<String> =
            received.iter().filter(|r| r.notification_id == *id).map(|r| r.trace_id.clone()).collect();
        assert_eq!(&got, want, "notification {id} fired exactly for its matching traces");
    }
    assert_eq!(received.len(), total, "nothing beyond the matching traces");
    server.kill();
}
