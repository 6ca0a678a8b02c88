//! `cts koogallery serve` reporting to a `cts serve` that is SIGKILLed in the middle of a workload and restarted on
//! the same data directory and port: the marketplace keeps answering, promptly and without 5xx, and afterwards every
//! answered operation's trace is in cts exactly once. Operations and traces are matched by the `X-Request-Id` each
//! request carries, which the reporter's layer records as the trace's `request_id`.

mod common;

use common::{all_traces, cts, free_port, Server, PROJECT_ID};
use cts_client::Credentials;
use cts_model::{TraceType, MARKETPLACE_SERVICE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "outage-test-admin-token";
const PASSWORD: &str = "outage-test-password";
const CLIENT_IP: &str = "203.0.113.7";
/// The slowest answer the marketplace may give while cts is down.
const PROMPT: Duration = Duration::from_secs(2);

/// A `reporter`-role key in the tests' project, made the way `cts admin` makes it; the running cts picks it up
/// within a second.
fn reporter_key(cts_data_dir: &Path) -> Credentials {
    let (iam, _) = cts_iam::Iam::open(cts_data_dir, cts_iam::Bootstrap::default()).unwrap();
    let project = iam.projects().into_iter().find(|project| project.id == PROJECT_ID).unwrap();
    iam.create_user(&project.domain_id, "koogallery", cts_iam::Role::Reporter).unwrap();
    let key = iam.create_access_key("koogallery", PROJECT_ID).unwrap();
    Credentials { access_key: key.info.access_key, secret_key: key.secret_key, project_id: PROJECT_ID.into() }
}

struct KooGallery {
    child: Child,
    base_url: String,
    http: reqwest::Client,
}

impl KooGallery {
    async fn start(data_dir: &Path, cts_endpoint: &str, key: &Credentials) -> KooGallery {
        let port = free_port();
        let child = cts()
            .args(["koogallery", "serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--cts-endpoint", cts_endpoint])
            .args(["--cts-access-key", &key.access_key, "--cts-secret-key", &key.secret_key])
            .args(["--cts-project-id", &key.project_id, "--admin-token", ADMIN_TOKEN, "--trusted-proxy", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting cts koogallery serve");
        let kg = KooGallery { child, base_url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if kg.http.get(format!("{}/v1/products", kg.base_url)).send().await.is_ok_and(|r| r.status() == 200) {
                return kg;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cts koogallery serve did not start");
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: Value) -> Value {
        let mut request = self.http.post(format!("{}{path}", self.base_url)).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    /// A seller's product and a signed-in buyer: (product id, buyer token).
    async fn populate(&self) -> (String, String) {
        let admin = &[("x-admin-token", ADMIN_TOKEN)];
        let seller = self.post("/v1/admin/accounts", admin, json!({"name": "acme-soft"})).await;
        let plans = json!([{"name": "basic", "monthly_price_cents": 9900}]);
        let body = json!({"seller_account_id": seller["id"], "name": "CloudDesk", "plans": plans, "guarantee_days": 7});
        let product = self.post("/v1/admin/products", admin, body).await;
        let buyer = self.post("/v1/admin/accounts", admin, json!({"name": "globex"})).await;
        let user = json!({"account_id": buyer["id"], "name": "alice", "password": PASSWORD, "role": "buyer"});
        self.post("/v1/admin/users", admin, user).await;
        let login = json!({"account": "globex", "user": "alice", "password": PASSWORD});
        let token = self.post("/v1/auth/tokens", &[], login).await;
        (product["id"].as_str().unwrap().to_owned(), token["token"].as_str().unwrap().to_owned())
    }

    /// SIGTERM: stops serving and flushes the reporter; answers whether it exited cleanly.
    fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap().success()
    }
}

/// One answered marketplace request.
struct Answered {
    request_id: String,
    trace_name: &'static str,
    status: u16,
    sent: Instant,
    latency: Duration,
}

/// A buyer ordering, listing and reading orders until `stop`; every request with its own X-Request-Id.
async fn buyer_workload(kg: Arc<KooGallery>, product: String, token: String, stop: Arc<AtomicBool>) -> Vec<Answered> {
    let mut answered = Vec::new();
    let mut orders: Vec<String> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let request_id = format!("outage-{:05}", answered.len());
        let (trace_name, request) = match (answered.len() % 3, orders.last()) {
            (1, _) => ("queryOrderList", kg.http.get(format!("{}/v1/orders?limit=5", kg.base_url))),
            (2, Some(order)) => ("queryOrderDetail", kg.http.get(format!("{}/v1/orders/{order}", kg.base_url))),
            _ => {
                let body = json!({"product_id": product, "plan": "basic", "period_months": 1});
                ("createOrder", kg.http.post(format!("{}/v1/orders", kg.base_url)).json(&body))
            }
        };
        let sent = Instant::now();
        let response = request
            .header("x-auth-token", &token)
            .header("x-request-id", &request_id)
            .header("x-forwarded-for", CLIENT_IP)
            .header("user-agent", "koogallery-cli/1.4.0")
            .send()
            .await
            .expect("KooGallery answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let latency = sent.elapsed();
        if let (201, Some(order)) = (status, body["id"].as_str()) {
            orders.push(order.to_owned());
        }
        answered.push(Answered { request_id, trace_name, status, sent, latency });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_cts_is_killed_and_restarted_the_marketplace_answers_and_every_trace_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cts_dir, kg_dir) = (dir.path().join("cts"), dir.path().join("koogallery"));
    let port = free_port();
    let window_start = cts_model::now_ms() - 60_000;
    let server = Server::start_at(&cts_dir, port, &[]).await;
    let key = reporter_key(&cts_dir);
    let kg = Arc::new(KooGallery::start(&kg_dir, &server.endpoint, &key).await);
    let (product, token) = kg.populate().await;

    let stop = Arc::new(AtomicBool::new(false));
    let workload = tokio::spawn(buyer_workload(kg.clone(), product, token, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Instant::now();
    server.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = Server::start_at(&cts_dir, port, &[]).await;
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let answered = workload.await.unwrap();

    let failed: Vec<_> = answered.iter().filter(|a| !(200..300).contains(&a.status)).map(|a| &a.request_id).collect();
    assert!(failed.is_empty(), "every request succeeded: {failed:?}");
    let during_outage: Vec<&Answered> =
        answered.iter().filter(|a| a.sent >= killed && a.sent + a.latency <= restarted).collect();
    let slowest = during_outage.iter().map(|a| a.latency).max().unwrap_or_default();
    eprintln!(
        "{} operations, {} while cts was down (slowest answer then {slowest:?})",
        answered.len(),
        during_outage.len()
    );
    assert!(during_outage.len() >= 10, "the workload kept going while cts was down");
    assert!(slowest < PROMPT, "answers stayed prompt while cts was down: {slowest:?}");

    // Wait for the spool to drain into the restarted cts, then stop KooGallery (which flushes) and count.
    let client = server.client();
    let marketplace_traces = async || {
        let params = [("from", window_start.to_string()), ("service_type", MARKETPLACE_SERVICE.to_owned())];
        all_traces(&client, &params).await.into_iter().filter(|t| t.trace_type != TraceType::SystemAction).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut traces: Vec<cts_model::Trace> = marketplace_traces().await;
    while traces.len() < answered.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        traces = marketplace_traces().await;
    }
    let kg = Arc::into_inner(kg).expect("the workload is done with KooGallery");
    assert!(kg.terminate(), "cts koogallery serve exits cleanly on SIGTERM");
    let traces = marketplace_traces().await;

    let mut arrived: BTreeMap<&str, Vec<&cts_model::Trace>> = BTreeMap::new();
    for trace in &traces {
        arrived.entry(trace.request_id.as_deref().unwrap_or_default()).or_default().push(trace);
    }
    for operation in &answered {
        let copies = arrived.remove(operation.request_id.as_str()).unwrap_or_default();
        assert_eq!(copies.len(), 1, "{}: {} traces, not exactly one", operation.request_id, copies.len());
        let trace = copies[0];
        assert_eq!(trace.trace_name, operation.trace_name);
        assert_eq!((trace.user_name(), trace.source_ip.as_deref()), (Some("alice"), Some(CLIENT_IP)));
    }
    assert!(arrived.is_empty(), "traces of no answered operation: {:?}", arrived.keys().collect::<Vec<_>>());
    server.kill();
}
