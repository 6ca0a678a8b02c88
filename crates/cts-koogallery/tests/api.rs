//! The marketplace over its REST API, checking each answer and the trace it produced.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use axum::Router;
use cts_koogallery::model::{Plan, Role, DAY_MS, MINUTE_MS};
use cts_koogallery::{app, workload, AppState, Clock, KooGallery};
use cts_model::{Trace, TraceInput, TraceRating, TraceType};
use cts_reporter::TraceSink;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

const ADMIN: &str = "admin-token-for-tests";
/// Far enough in the past that a month of simulated time stays behind the real clock.
const START: i64 = 1_700_000_000_000;

#[derive(Default)]
struct MemorySink(Mutex<Vec<TraceInput>>);

impl TraceSink for MemorySink {
    fn submit(&self, trace: TraceInput) {
        self.0.lock().push(trace);
    }
}

struct Market {
    kg: Arc<KooGallery>,
    router: Router,
    sink: Arc<MemorySink>,
    seller: String,
    buyer: String,
    other_buyer: String,
    other_account: String,
    product: String,
}

fn open(dir: &Path, sink: Arc<MemorySink>, clock: Clock) -> (Arc<KooGallery>, Router) {
    let kg = Arc::new(KooGallery::open(dir, clock, sink.clone(), ADMIN).unwrap());
    let router = app(AppState { kg: kg.clone(), trace_sink: sink, trusted_proxies: Vec::new() });
    (kg, router)
}

fn id(outcome: &cts_koogallery::Outcome) -> String {
    outcome.body["id"].as_str().unwrap().to_owned()
}

/// A marketplace with a seller (one product), two buyers of different accounts, all signed in.
fn market(dir: &Path) -> Market {
    let sink = Arc::new(MemorySink::default());
    let (kg, router) = open(dir, sink.clone(), Clock::simulated(START));
    let seller_account = id(&kg.create_account("acme-soft").unwrap());
    kg.create_user(&seller_account, "ops", "seller-password", Role::Seller).unwrap();
    let plans = vec![
        Plan { name: "basic".into(), monthly_price_cents: 10_000 },
        Plan { name: "pro".into(), monthly_price_cents: 25_000 },
    ];
    let product = id(&kg.create_product(&seller_account, "CloudDesk", plans, 7).unwrap());
    let buyer_account = id(&kg.create_account("globex").unwrap());
    kg.create_user(&buyer_account, "alice", "alice-password", Role::Buyer).unwrap();
    let other_account = id(&kg.create_account("initech").unwrap());
    kg.create_user(&other_account, "bob", "bob-password", Role::Buyer).unwrap();
    Market {
        seller: kg.login("acme-soft", "ops", "seller-password").unwrap(),
        buyer: kg.login("globex", "alice", "alice-password").unwrap(),
        other_buyer: kg.login("initech", "bob", "bob-password").unwrap(),
        other_account,
        product,
        kg,
        router,
        sink,
    }
}

impl Market {
    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("x-auth-token", token)
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0");
        let mut request = request.body(Body::from(body.map(|b| b.to_string()).unwrap_or_default())).unwrap();
        request.extensions_mut().insert(ConnectInfo("203.0.113.5:51000".parse::<SocketAddr>().unwrap()));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Every trace so far as cts stores it (each must pass validation), emptying the sink.
    fn take_traces(&self) -> Vec<Trace> {
        let inputs = std::mem::take(&mut *self.sink.0.lock());
        inputs.into_iter().map(|input| input.into_trace("project", START + 400 * DAY_MS).unwrap()).collect()
    }

    fn last_trace(&self) -> Trace {
        self.take_traces().pop().expect("a trace")
    }

    fn advance(&self, ms: i64) {
        self.kg.advance_clock(ms).unwrap();
    }

    /// A resource's (status, plan).
    async fn status_of(&self, resource: &str) -> (String, String) {
        let (_, detail) = self.call(&self.buyer, Method::GET, &format!("/v1/resources/{resource}"), None).await;
        (detail["status"].as_str().unwrap().to_owned(), detail["plan"].as_str().unwrap().to_owned())
    }

    /// Places an order and lets the platform confirm its payment; answers (order id, resource id).
    async fn paid_order(&self, months: u32) -> (String, String) {
        let body = json!({"product_id": self.product, "plan": "basic", "period_months": months});
        let (status, order) = self.call(&self.buyer, Method::POST, "/v1/orders", Some(body)).await;
        assert_eq!(status, 201, "{order}");
        let order_id = order["id"].as_str().unwrap().to_owned();
        self.advance(11 * MINUTE_MS);
        let (_, order) = self.call(&self.buyer, Method::GET, &format!("/v1/orders/{order_id}"), None).await;
        assert_eq!(order["status"], "processing");
        (order_id, order["resource_id"].as_str().unwrap().to_owned())
    }
}

fn response_of(trace: &Trace) -> Value {
    serde_json::from_str(trace.response.as_deref().unwrap()).unwrap()
}

/// A rule break: the answer's code and a warning trace of that operation carrying the same error, by the buyer.
fn assert_rule_break(answer: &(u16, Value), status: u16, code: &str, trace: &Trace, trace_name: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error_code"], code, "{}", answer.1);
    assert_eq!(trace.trace_name, trace_name);
    assert_eq!(trace.trace_rating, TraceRating::Warning);
    assert_eq!(trace.code.as_deref(), Some(status.to_string().as_str()));
    assert_eq!(response_of(trace), answer.1);
    assert_eq!(trace.source_ip.as_deref(), Some("203.0.113.5"));
    assert!(trace.user.is_some());
}

#[tokio::test]
async fn an_order_goes_from_pending_payment_to_processing_to_completed() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    let body = json!({"product_id": m.product, "plan": "pro", "period_months": 3, "card_number": "4111111111111111"});
    let (status, _) = m.call(&m.buyer, Method::POST, "/v1/orders", Some(body)).await;
    assert_eq!(status, 400, "unknown fields are refused");
    m.take_traces();

    let body = json!({"product_id": m.product, "plan": "pro", "period_months": 3});
    let (status, order) = m.call(&m.buyer, Method::POST, "/v1/orders", Some(body)).await;
    assert_eq!(status, 201);
    assert_eq!((order["status"].as_str(), order["amount_cents"].as_i64()), (Some("pending_payment"), Some(75_000)));
    let order_id = order["id"].as_str().unwrap().to_owned();

    let trace = m.last_trace();
    assert_eq!((trace.trace_name.as_str(), trace.service_type.as_str()), ("createOrder", "marketplace"));
    assert_eq!((trace.resource_type.as_str(), trace.resource_id.as_deref()), ("Order", Some(order_id.as_str())));
    assert_eq!(trace.resource_name.as_deref(), Some("CloudDesk"));
    assert_eq!((trace.trace_type, trace.trace_rating), (TraceType::ConsoleAction, TraceRating::Normal));
    assert_eq!(trace.time, START);
    let user = trace.user.unwrap();
    assert_eq!(user.name.as_deref(), Some("alice"));
    assert_eq!(user.domain.as_ref().and_then(|d| d.name.as_deref()), Some("globex"));
    assert_eq!(user.principal_urn, Some(format!("iam::{}:user:alice", user.account_id.clone().unwrap())));
    assert_eq!(user.user_type, Some(cts_model::UserType::User));
    assert!(user.session_context.unwrap().attributes.unwrap().created_at.is_some());

    // The platform confirms the payment: a SystemAction trace without source IP, by the system user.
    m.advance(11 * MINUTE_MS);
    let trace = m.last_trace();
    assert_eq!((trace.trace_name.as_str(), trace.trace_type), ("confirmPayment", TraceType::SystemAction));
    assert_eq!(trace.source_ip, None);
    assert_eq!(trace.time, START + 10 * MINUTE_MS, "the action happens when it is due");
    let system = trace.user.unwrap();
    assert_eq!(system.name.as_deref(), Some("system"));
    assert_eq!(system.domain.and_then(|d| d.name), Some("globex".to_owned()));

    let (_, paid) = m.call(&m.buyer, Method::GET, &format!("/v1/orders/{order_id}"), None).await;
    assert_eq!(paid["status"], "processing");
    let resource_id = paid["resource_id"].as_str().unwrap().to_owned();
    let instance = m.call(&m.buyer, Method::GET, &format!("/v1/resources/{resource_id}/instance"), None).await;
    assert_eq!((instance.0, instance.1["error_code"].as_str()), (409, Some("KG.1102")), "not delivered yet");

    let (status, delivered) =
        m.call(&m.seller, Method::POST, &format!("/v1/seller/orders/{order_id}/deliver"), None).await;
    assert_eq!((status, delivered["status"].as_str()), (200, Some("completed")));
    assert_eq!(m.last_trace().trace_name, "deliverOrder");
    let (status, instance) =
        m.call(&m.buyer, Method::GET, &format!("/v1/resources/{resource_id}/instance"), None).await;
    assert_eq!(status, 200);
    assert!(instance["url"].as_str().unwrap().starts_with("https://"));
    let trace = m.last_trace();
    assert_eq!((trace.trace_name.as_str(), trace.resource_type.as_str()), ("querySaasResourceInstance", "Resource"));
    assert!(trace.read_only);
}

#[tokio::test]
async fn canceling_works_only_while_unpaid() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    let body = json!({"product_id": m.product, "plan": "basic", "period_months": 1});
    let (_, order) = m.call(&m.buyer, Method::POST, "/v1/orders", Some(body)).await;
    let (status, canceled) =
        m.call(&m.buyer, Method::POST, &format!("/v1/orders/{}/cancel", order["id"].as_str().unwrap()), None).await;
    assert_eq!((status, canceled["status"].as_str()), (200, Some("canceled")));

    let (paid_order, _) = m.paid_order(1).await;
    m.take_traces();
    let answer = m.call(&m.buyer, Method::POST, &format!("/v1/orders/{paid_order}/cancel"), None).await;
    assert_rule_break(&answer, 409, "KG.1001", &m.last_trace(), "cancelOrder");
    assert!(answer.1["error_msg"].as_str().unwrap().contains("only an unpaid order"));
}

#[tokio::test]
async fn order_lists_filter_by_status_product_time_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    for _ in 0..3 {
        m.paid_order(1).await;
        m.advance(DAY_MS);
    }
    let body = json!({"product_id": m.product, "plan": "basic", "period_months": 1});
    m.call(&m.buyer, Method::POST, "/v1/orders", Some(body)).await;
    let cases = [
        (String::new(), 4, 4),
        ("?status=processing".to_owned(), 3, 3),
        ("?status=pending_payment".to_owned(), 1, 1),
        (format!("?product_id={}&limit=2", m.product), 4, 2),
        ("?offset=3&limit=2".to_owned(), 4, 1),
        (format!("?from={}&to={}", START + DAY_MS / 2, START + 2 * DAY_MS), 1, 1),
    ];
    for (query, total, page) in cases {
        let (status, list) = m.call(&m.buyer, Method::GET, &format!("/v1/orders{query}"), None).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!((list["total"].as_u64(), list["orders"].as_array().unwrap().len()), (Some(total), page), "{query}");
    }
    let (_, other) = m.call(&m.other_buyer, Method::GET, "/v1/orders", None).await;
    assert_eq!(other["total"], 0, "buyers see only their own account's orders");
    m.take_traces();
    let answer = m.call(&m.buyer, Method::GET, "/v1/orders?limit=500", None).await;
    assert_rule_break(&answer, 400, "KG.0001", &m.last_trace(), "queryOrderList");
    let answer = m.call(&m.buyer, Method::GET, "/v1/orders?status=lost", None).await;
    assert_rule_break(&answer, 400, "KG.0001", &m.last_trace(), "queryOrderList");
}

#[tokio::test]
async fn negotiated_unsubscription_only_inside_the_guarantee_period() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    let (_, late) = m.paid_order(1).await;
    let (_, early) = m.paid_order(1).await;
    m.take_traces();
    let path = |resource: &str| format!("/v1/resources/{resource}/unsubscribe");
    let refund = |cents: i64, reason: &str| Some(json!({"refund_cents": cents, "reason": reason}));

    for (cents, reason, code) in [(0, "no", "KG.1202"), (10_001, "too much", "KG.1202"), (100, " ", "KG.0001")] {
        let answer = m.call(&m.buyer, Method::POST, &path(&early), refund(cents, reason)).await;
        assert_rule_break(&answer, 400, code, &m.last_trace(), "unSubscribeByNegotiation");
    }
    let (status, asked) = m.call(&m.buyer, Method::POST, &path(&early), refund(10_000, "not what we need")).await;
    assert_eq!((status, asked["status"].as_str()), (201, Some("pending")));
    let trace = m.last_trace();
    assert_eq!((trace.resource_type.as_str(), trace.trace_rating), ("Subscription", TraceRating::Normal));
    let answer = m.call(&m.buyer, Method::POST, &path(&early), refund(100, "again")).await;
    assert_rule_break(&answer, 409, "KG.1203", &m.last_trace(), "unSubscribeByNegotiation");

    let review = format!("/v1/seller/unsubscriptions/{}/review", asked["id"].as_str().unwrap());
    let (status, agreed) = m.call(&m.seller, Method::POST, &review, Some(json!({"agree": true}))).await;
    assert_eq!((status, agreed["status"].as_str()), (200, Some("agreed")));
    let (_, resource) = m.call(&m.buyer, Method::GET, &format!("/v1/resources/{early}"), None).await;
    assert_eq!(resource["status"], "unsubscribed");
    let (status, _) = m.call(&m.seller, Method::POST, &review, Some(json!({"agree": false}))).await;
    assert_eq!(status, 409, "decided once");

    m.advance(8 * DAY_MS);
    m.take_traces();
    let answer = m.call(&m.buyer, Method::POST, &path(&late), refund(100, "too late")).await;
    assert_rule_break(&answer, 409, "KG.1201", &m.last_trace(), "unSubscribeByNegotiation");
    assert!(answer.1["error_msg"].as_str().unwrap().contains("guarantee period"));
}

#[tokio::test]
async fn supervision_accept_deliver_reject_and_appeal() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    let (_, resource) = m.paid_order(6).await;
    let submit = json!({"resource_id": resource, "content": "Connect our LDAP directory"});
    let (status, requirement) = m.call(&m.buyer, Method::POST, "/v1/requirements", Some(submit)).await;
    assert_eq!((status, requirement["status"].as_str()), (201, Some("submitted")));
    let id = requirement["id"].as_str().unwrap().to_owned();
    let acceptance = format!("/v1/requirements/{id}/acceptance");
    let seller = |action: &str| format!("/v1/seller/requirements/{id}/{action}");
    m.take_traces();

    // Accepting what was not delivered is a rule break.
    let answer = m.call(&m.buyer, Method::POST, &acceptance, Some(json!({"accepted": true}))).await;
    assert_rule_break(&answer, 409, "KG.1301", &m.last_trace(), "confirmAcceptance");
    assert_eq!(m.call(&m.other_buyer, Method::GET, &format!("/v1/requirements/{id}"), None).await.0, 404);
    assert_eq!(
        m.call(&m.buyer, Method::POST, &format!("/v1/requirements/{id}/appeal"), Some(json!({"reason": "slow"})))
            .await
            .0,
        409
    );

    assert_eq!(m.call(&m.seller, Method::POST, &seller("accept"), None).await.0, 200);
    for round in 0..3 {
        let (status, delivered) =
            m.call(&m.seller, Method::POST, &seller("deliver"), Some(json!({"note": "done"}))).await;
        assert_eq!((status, delivered["status"].as_str()), (200, Some("delivered")), "round {round}");
        let (status, reworked) =
            m.call(&m.buyer, Method::POST, &acceptance, Some(json!({"accepted": false, "comment": "broken"}))).await;
        assert_eq!((status, reworked["rejections"].as_u64()), (200, Some(round + 1)));
    }
    let (status, appealed) = m
        .call(
            &m.buyer,
            Method::POST,
            &format!("/v1/requirements/{id}/appeal"),
            Some(json!({"reason": "3 bad deliveries"})),
        )
        .await;
    assert_eq!((status, appealed["status"].as_str()), (200, Some("appealed")));
    let (_, process) = m.call(&m.buyer, Method::GET, &format!("/v1/requirements/{id}"), None).await;
    let steps: Vec<&str> =
        process["process"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert_eq!(steps.first(), Some(&"submitted"));
    assert_eq!(steps.last(), Some(&"appealed"));
    assert_eq!(steps.len(), 9);

    // An idle requirement may be appealed after 5 days; a completed one never.
    let submit = json!({"resource_id": resource, "content": "Add a custom report"});
    let (_, idle) = m.call(&m.buyer, Method::POST, "/v1/requirements", Some(submit)).await;
    let appeal = format!("/v1/requirements/{}/appeal", idle["id"].as_str().unwrap());
    assert_eq!(m.call(&m.buyer, Method::POST, &appeal, Some(json!({"reason": "silence"}))).await.0, 409);
    m.advance(5 * DAY_MS);
    assert_eq!(m.call(&m.buyer, Method::POST, &appeal, Some(json!({"reason": "silence"}))).await.0, 200);
}

#[tokio::test]
async fn another_buyers_private_offer_does_not_exist_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    let offer = json!({"buyer_account_id": m.other_account, "product_id": m.product, "plan": "pro",
        "monthly_price_cents": 20_000, "valid_days": 30});
    let (status, offer) = m.call(&m.seller, Method::POST, "/v1/seller/private-offers", Some(offer)).await;
    assert_eq!(status, 201);
    let path = format!("/v1/private-offers/{}", offer["id"].as_str().unwrap());
    let (status, seen) = m.call(&m.other_buyer, Method::GET, &path, None).await;
    assert_eq!((status, seen["monthly_price_cents"].as_i64()), (200, Some(20_000)));
    m.take_traces();

    let answer = m.call(&m.buyer, Method::GET, &path, None).await;
    assert_rule_break(&answer, 404, "KG.0004", &m.last_trace(), "queryPrivateOfferDetail");
    let missing = m.call(&m.buyer, Method::GET, "/v1/private-offers/offer-99999999", None).await;
    assert_eq!(missing.1["error_msg"].as_str().unwrap().replace("99999999", "00000001"), answer.1["error_msg"]);
    let (_, list) = m.call(&m.buyer, Method::GET, "/v1/private-offers", None).await;
    assert_eq!(list["total"], 0);

    // The offer's buyer orders at the offered price; that order signs an agreement.
    let body = json!({"product_id": m.product, "plan": "pro", "period_months": 2, "private_offer_id": offer["id"]});
    let (status, order) = m.call(&m.other_buyer, Method::POST, "/v1/orders", Some(body.clone())).await;
    assert_eq!((status, order["amount_cents"].as_i64()), (201, Some(40_000)));
    assert_eq!(m.call(&m.buyer, Method::POST, "/v1/orders", Some(body)).await.0, 404);
    let (_, agreements) = m.call(&m.other_buyer, Method::GET, "/v1/agreements", None).await;
    assert_eq!(agreements["agreements"][0]["order_id"], order["id"]);
    let detail = format!("/v1/agreements/{}", order["agreement_id"].as_str().unwrap());
    assert_eq!(m.call(&m.other_buyer, Method::GET, &detail, None).await.0, 200);
    assert_eq!(m.call(&m.buyer, Method::GET, &detail, None).await.0, 404);
}

#[tokio::test]
async fn resources_expire_freeze_release_and_renew_by_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    let (_, manual) = m.paid_order(1).await;
    let (_, auto) = m.paid_order(1).await;
    let (_, release) = m.paid_order(1).await;
    let (_, renewed) = m.paid_order(1).await;
    let strategy = |resource: &str| format!("/v1/resources/{resource}/strategy");
    assert_eq!(m.call(&m.buyer, Method::PUT, &strategy(&auto), Some(json!({"strategy": "auto_renewal"}))).await.0, 200);
    assert_eq!(
        m.call(&m.buyer, Method::PUT, &strategy(&release), Some(json!({"strategy": "release_at_expiry"}))).await.0,
        200
    );
    let (status, renewal) = m
        .call(&m.buyer, Method::POST, &format!("/v1/resources/{renewed}/renew"), Some(json!({"period_months": 2})))
        .await;
    assert_eq!((status, renewal["kind"].as_str()), (201, Some("renewal")));
    let (status, change) =
        m.call(&m.buyer, Method::POST, &format!("/v1/resources/{renewed}/change"), Some(json!({"plan": "pro"}))).await;
    assert_eq!(status, 201);
    assert!(change["amount_cents"].as_i64().unwrap() > 0, "an upgrade costs the difference");
    m.take_traces();

    m.advance(31 * DAY_MS + 20 * DAY_MS);
    assert_eq!(m.status_of(&manual).await.0, "frozen");
    assert_eq!(m.status_of(&auto).await.0, "active");
    assert_eq!(m.status_of(&release).await.0, "released");
    assert_eq!(m.status_of(&renewed).await, ("active".to_owned(), "pro".to_owned()));
    let system: Vec<(String, Option<String>)> = m
        .take_traces()
        .into_iter()
        .filter(|t| t.trace_type == TraceType::SystemAction)
        .inspect(|t| assert_eq!(t.source_ip, None))
        .map(|t| (t.trace_name, t.resource_id))
        .collect();
    let names: BTreeSet<&str> = system.iter().map(|(name, _)| name.as_str()).collect();
    let expected = ["autoRenewResource", "confirmPayment", "expireResource", "freezeResource", "releaseResource"];
    assert_eq!(names, expected.into_iter().collect());
    assert!(system.contains(&("expireResource".to_owned(), Some(manual.clone()))));

    let instance = m.call(&m.buyer, Method::GET, &format!("/v1/resources/{manual}/instance"), None).await;
    assert_eq!(instance.1["error_code"], "KG.1101", "a frozen instance is not reachable");
    m.advance(15 * DAY_MS);
    assert_eq!(m.status_of(&manual).await.0, "released");
    let answer = m.call(&m.buyer, Method::POST, &format!("/v1/resources/{manual}/close"), None).await;
    assert_rule_break(&answer, 409, "KG.1101", &m.last_trace(), "closeResource");
    let (status, closed) = m.call(&m.buyer, Method::POST, &format!("/v1/resources/{auto}/close"), None).await;
    assert_eq!((status, closed["status"].as_str()), (200, Some("closed")));
}

#[tokio::test]
async fn favorites_add_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    let add = Some(json!({"product_id": m.product}));
    assert_eq!(m.call(&m.buyer, Method::POST, "/v1/favorites", add.clone()).await.0, 201);
    m.take_traces();
    let answer = m.call(&m.buyer, Method::POST, "/v1/favorites", add).await;
    assert_rule_break(&answer, 409, "KG.0005", &m.last_trace(), "addFavorites");
    let (_, list) = m.call(&m.buyer, Method::GET, "/v1/favorites", None).await;
    assert_eq!(list["favorites"][0]["product_name"], "CloudDesk");
    let (_, other) = m.call(&m.other_buyer, Method::GET, "/v1/favorites", None).await;
    assert_eq!(other["total"], 0);
    let path = format!("/v1/favorites/{}", m.product);
    assert_eq!(m.call(&m.buyer, Method::DELETE, &path, None).await.0, 200);
    assert_eq!(m.call(&m.buyer, Method::DELETE, &path, None).await.0, 404);
}

#[tokio::test]
async fn authentication_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    let (status, body) = m.call("bogus", Method::GET, "/v1/orders", None).await;
    assert_eq!((status, body["error_code"].as_str()), (401, Some("KG.0002")));
    let trace = m.last_trace();
    assert_eq!((trace.trace_rating, trace.user.is_none()), (TraceRating::Warning, true));
    let (status, body) = m.call(&m.seller, Method::POST, "/v1/favorites", Some(json!({"product_id": m.product}))).await;
    assert_eq!((status, body["error_code"].as_str()), (403, Some("KG.0003")));
    let (status, _) = m.call(&m.buyer, Method::POST, "/v1/seller/private-offers", Some(json!({}))).await;
    assert_eq!(status, 400, "the body is checked first");
    assert!(m.kg.login("globex", "alice", "wrong-password").is_err());
    assert!(!m.kg.is_admin_token("admin-token-for-test"));
}

#[tokio::test]
async fn a_storage_fault_is_an_incident_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let m = market(dir.path());
    let (order_id, _) = m.paid_order(1).await;
    m.kg.inject_faults(1);
    m.take_traces();
    let body = json!({"product_id": m.product, "plan": "basic", "period_months": 1});
    let (status, answer) = m.call(&m.buyer, Method::POST, "/v1/orders", Some(body.clone())).await;
    assert_eq!((status, answer["error_code"].as_str()), (500, Some("KG.0500")));
    assert_eq!(answer["error_msg"], "internal error", "nothing internal leaks");
    let trace = m.last_trace();
    assert_eq!((trace.trace_name.as_str(), trace.trace_rating), ("createOrder", TraceRating::Incident));

    let (_, list) = m.call(&m.buyer, Method::GET, "/v1/orders", None).await;
    assert_eq!(list["total"], 1, "the failed order is not there");
    assert_eq!(list["orders"][0]["id"], order_id.as_str());
    let (status, _) = m.call(&m.buyer, Method::POST, "/v1/orders", Some(body)).await;
    assert_eq!(status, 201, "the next write works");
}

#[tokio::test]
async fn the_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (order_id, resource_id, before) = {
        let m = market(dir.path());
        let (order_id, resource_id) = m.paid_order(3).await;
        m.call(&m.buyer, Method::POST, "/v1/favorites", Some(json!({"product_id": m.product}))).await;
        let (_, before) = m.call(&m.buyer, Method::GET, &format!("/v1/resources/{resource_id}"), None).await;
        (order_id, resource_id, before)
    };
    let sink = Arc::new(MemorySink::default());
    let (kg, router) = open(dir.path(), sink.clone(), Clock::simulated(START + DAY_MS));
    let m = Market {
        buyer: kg.login("globex", "alice", "alice-password").unwrap(),
        seller: kg.login("acme-soft", "ops", "seller-password").unwrap(),
        other_buyer: String::new(),
        other_account: String::new(),
        product: String::new(),
        kg,
        router,
        sink,
    };
    let (_, after) = m.call(&m.buyer, Method::GET, &format!("/v1/resources/{resource_id}"), None).await;
    assert_eq!(after, before);
    let (status, _) = m.call(&m.seller, Method::POST, &format!("/v1/seller/orders/{order_id}/deliver"), None).await;
    assert_eq!(status, 200);
    let (_, favorites) = m.call(&m.buyer, Method::GET, "/v1/favorites", None).await;
    assert_eq!(favorites["total"], 1);
}

#[tokio::test]
async fn the_workload_produces_every_catalog_operation_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(MemorySink::default());
    let operations = 1_500;
    let start = cts_model::now_ms() - workload::simulated_span_ms(operations);
    let (_, router) = open(dir.path(), sink.clone(), Clock::simulated(start));
    let mut calls = 0;
    let report = workload::run(&workload::Target::InProcess(router), ADMIN, 7, operations, |done, total| {
        calls += 1;
        assert!(done <= total);
    })
    .await
    .unwrap();
    assert_eq!((report.operations, calls), (operations, operations));
    assert!(report.incidents >= 1, "{report:?}");
    assert!(report.rule_breaks * 100 > operations * 3 && report.rule_breaks * 100 < operations * 40, "{report:?}");

    let traces: Vec<Trace> = std::mem::take(&mut *sink.0.lock())
        .into_iter()
        .map(|input| input.into_trace("project", cts_model::now_ms()).expect("cts accepts every trace"))
        .collect();
    let seed_names: BTreeSet<&str> =
        cts_model::CATALOG.filter(Some("marketplace"), None).map(|op| op.trace_name).collect();
    let seen: BTreeSet<&str> =
        traces.iter().filter(|t| t.service_type == "marketplace").map(|t| t.trace_name.as_str()).collect();
    assert_eq!(seen, seed_names);
    assert!(traces.iter().any(|t| t.trace_type == TraceType::SystemAction && t.source_ip.is_none()));
    assert!(traces
        .iter()
        .any(|t| t.trace_rating == TraceRating::Warning && t.response.as_deref().is_some_and(|r| r.contains("KG."))));
    assert!(traces.iter().any(|t| t.trace_rating == TraceRating::Incident));
    assert!(traces.iter().any(|t| t.trace_type == TraceType::ApiCall));
    assert!(traces.iter().any(|t| t.trace_type == TraceType::ConsoleAction));
    for trace in traces.iter().filter(|t| t.trace_type != TraceType::SystemAction && t.code.as_deref() != Some("401")) {
        assert!(trace.source_ip.is_some() && trace.user.is_some(), "{trace:?}");
    }
}
