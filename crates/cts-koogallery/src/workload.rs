//! The seeded workload the demo runs: sellers and buyers using KooGallery over simulated days, through the REST API
//! (in process, or over HTTP). A realistic mix (queries most of the time, purchases, deliveries, renewals, supervision,
//! favorites), a share of rule breaks on purpose (canceling a paid order, over-refunding, reading another buyer's
//! private offer, accepting an undelivered requirement, unknown ids) and a few incidents through the fault hook. Every
//! one of the 21 seed operations appears well within 5,000 operations.

use crate::api::{ADMIN_TOKEN_HEADER, AUTH_TOKEN_HEADER};
use crate::model::MINUTE_MS;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use axum::Router;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tower::ServiceExt;

/// The mean simulated time between two operations.
pub const MEAN_STEP_MS: i64 = 17 * MINUTE_MS;
/// The password of every workload user.
pub const PASSWORD: &str = "koogallery-demo";
/// One operation in this many gets an injected storage fault (an incident).
const INCIDENT_EVERY: usize = 1_000;
/// Share of operations (percent) deliberately breaking a rule.
const RULE_BREAK_PERCENT: u32 = 8;

/// How long `operations` operations take at most on the simulated clock: start the clock this far in the past so
/// the workload ends within an hour before now (cts refuses traces from the future).
pub fn simulated_span_ms(operations: usize) -> i64 {
    operations as i64 * MEAN_STEP_MS + 60 * MINUTE_MS
}

/// Where the workload sends its requests.
pub enum Target {
    /// The API router itself (`koogallery::app`), driven with `oneshot`; each client gets its own peer address.
    InProcess(Router),
    /// A running service; each client's address goes in `X-Forwarded-For` (configure the caller as a trusted proxy).
    Http { base_url: String, client: reqwest::Client },
}

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("the request failed: {0}")]
    Transport(String),
    #[error("setting up the marketplace failed: {0}")]
    Setup(String),
}

/// What the workload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadReport {
    pub operations: usize,
    /// Answers 4xx (rule breaks and refused requests).
    pub rule_breaks: usize,
    /// Answers 5xx.
    pub incidents: usize,
    /// Operations per trace name.
    pub per_operation: BTreeMap<String, usize>,
    pub simulated_ms: i64,
}

/// One person at a keyboard (or a script): the address and user agent the traces show.
#[derive(Clone)]
struct Client {
    ip: IpAddr,
    user_agent: &'static str,
}

struct Buyer {
    account_id: String,
    token: String,
    client: Client,
    orders: Vec<String>,
    resources: Vec<String>,
    requirements: Vec<String>,
    offers: Vec<String>,
    favorites: Vec<String>,
    agreements: Vec<String>,
}

struct Seller {
    token: String,
    client: Client,
    products: Vec<String>,
    /// Orders of its products, with when they were placed.
    orders: Vec<(String, i64)>,
    requirements: Vec<String>,
    unsubscriptions: Vec<String>,
}

const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
];
const API_CLIENTS: &[&str] = &["huaweicloud-sdk-python/3.1.219", "koogallery-cli/1.4.0", "Apache-HttpClient/4.5.14"];

/// The weighted operation mix (weights in tenths).
const MIX: &[(&str, u32)] = &[
    ("queryOrderList", 100),
    ("queryOrderDetail", 80),
    ("queryResourceDetail", 70),
    ("querySaasResourceInstance", 50),
    ("queryDeliveryProcess", 40),
    ("queryFavorites", 40),
    ("queryPrivateOfferList", 30),
    ("queryPrivateOfferDetail", 30),
    ("queryAgreementSignList", 30),
    ("queryAgreementSignDetail", 30),
    ("createOrder", 80),
    ("deliverOrder", 60),
    ("cancelOrder", 20),
    ("renewOrder", 20),
    ("changeOrder", 20),
    ("setResourceStrategy", 25),
    ("closeResource", 5),
    ("unSubscribeByNegotiation", 10),
    ("reviewUnsubscription", 10),
    ("submitRequirement", 30),
    ("acceptRequirement", 20),
    ("rejectRequirement", 5),
    ("deliverRequirement", 20),
    ("confirmAcceptance", 25),
    ("appealRequirement", 3),
    ("addFavorites", 30),
    ("deleteFavorites", 15),
    ("createPrivateOffer", 5),
];

struct Workload<'a> {
    target: &'a Target,
    admin_token: String,
    rng: StdRng,
    buyers: Vec<Buyer>,
    sellers: Vec<Seller>,
    /// Product ids with the index of their seller.
    products: Vec<(String, usize)>,
    /// Resources seen, with the index of their product's seller.
    resource_sellers: HashMap<String, usize>,
    now: i64,
    report: WorkloadReport,
}

/// Runs `operations` operations against a fresh marketplace behind `target`, whose simulated clock the workload
/// advances through the admin API. `progress(done, total)` is called after each operation.
pub async fn run(
    target: &Target,
    admin_token: &str,
    seed: u64,
    operations: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<WorkloadReport, WorkloadError> {
    let mut workload = Workload {
        target,
        admin_token: admin_token.to_owned(),
        rng: StdRng::seed_from_u64(seed),
        buyers: Vec::new(),
        sellers: Vec::new(),
        products: Vec::new(),
        resource_sellers: HashMap::new(),
        now: 0,
        report: WorkloadReport::default(),
    };
    workload.populate(seed).await?;
    let total_weight: u32 = MIX.iter().map(|(_, weight)| weight).sum();
    // An injected fault waits, armed only around operations, until a write meets it: left armed, it would fail the
    // next clock step's platform actions instead.
    let mut fault_pending = false;
    for done in 0..operations {
        // On a schedule (operation i at i × MEAN_STEP_MS, jittered by less than half a step) rather than a random
        // walk: the simulated time never runs past `simulated_span_ms`, so no trace lies in the future.
        let jitter = workload.rng.gen_range(1 - MEAN_STEP_MS / 2..MEAN_STEP_MS / 2);
        let due = (done as i64 + 1) * MEAN_STEP_MS + jitter;
        workload.advance(due - workload.report.simulated_ms).await?;
        fault_pending |= done % INCIDENT_EVERY == INCIDENT_EVERY / 2;
        if fault_pending {
            workload.admin("/v1/admin/faults", json!({ "fail_next_writes": 1 })).await?;
        }
        let mut pick = workload.rng.gen_range(0..total_weight);
        let operation = MIX
            .iter()
            .find(|(_, weight)| {
                let found = pick < *weight;
                pick = pick.saturating_sub(*weight);
                found
            })
            .map_or("queryOrderList", |(name, _)| name);
        let breaks_rule = workload.rng.gen_ratio(RULE_BREAK_PERCENT, 100);
        let status = workload.perform(operation, breaks_rule).await?;
        if fault_pending && status < 500 {
            workload.admin("/v1/admin/faults", json!({ "fail_next_writes": 0 })).await?;
        }
        fault_pending &= status < 500;
        workload.report.operations += 1;
        *workload.report.per_operation.entry(operation.to_owned()).or_default() += 1;
        match status {
            400..=499 => workload.report.rule_breaks += 1,
            500.. => workload.report.incidents += 1,
            _ => {}
        }
        progress(done + 1, operations);
    }
    Ok(workload.report)
}

impl Workload<'_> {
    /// Sellers with products, buyers, their sign-ins.
    async fn populate(&mut self, seed: u64) -> Result<(), WorkloadError> {
        let suffix = format!("{:04x}", seed & 0xffff);
        let catalog = [
            ("CloudDesk Helpdesk", 7),
            ("DataPipe ETL", 7),
            ("SecureVault Backup", 14),
            ("MeetNow Video", 7),
            ("LedgerPro Accounting", 10),
            ("ShopFront Commerce", 7),
        ];
        for s in 0..3 {
            let account = self.admin("/v1/admin/accounts", json!({ "name": format!("seller{s}-{suffix}") })).await?;
            let account_id = field(&account, "id")?;
            self.admin(
                "/v1/admin/users",
                json!({"account_id": account_id, "name": "ops", "password": PASSWORD, "role": "seller"}),
            )
            .await?;
            let mut products = Vec::new();
            for (name, guarantee_days) in &catalog[s * 2..s * 2 + 2] {
                let base = self.rng.gen_range(20..200) * 100;
                let plans = json!([
                    {"name": "basic", "monthly_price_cents": base},
                    {"name": "pro", "monthly_price_cents": base * 2},
                    {"name": "enterprise", "monthly_price_cents": base * 5},
                ]);
                let body = json!({"seller_account_id": account_id, "name": name, "plans": plans, "guarantee_days": guarantee_days});
                let product = self.admin("/v1/admin/products", body).await?;
                let product_id = field(&product, "id")?;
                self.products.push((product_id.clone(), s));
                products.push(product_id);
            }
            let token = self.login(&format!("seller{s}-{suffix}"), "ops").await?;
            let client = Client { ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + s as u8)), user_agent: BROWSERS[0] };
            self.sellers.push(Seller {
                token,
                client,
                products,
                orders: Vec::new(),
                requirements: Vec::new(),
                unsubscriptions: Vec::new(),
            });
        }
        let names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
        for (b, name) in names.iter().enumerate() {
            let account_name = format!("buyer{b}-{suffix}");
            let account = self.admin("/v1/admin/accounts", json!({ "name": account_name })).await?;
            let account_id = field(&account, "id")?;
            self.admin(
                "/v1/admin/users",
                json!({"account_id": account_id, "name": name, "password": PASSWORD, "role": "buyer"}),
            )
            .await?;
            let token = self.login(&account_name, name).await?;
            let octet = 20 + b as u8;
            let client = if b % 3 == 2 {
                Client {
                    ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, octet)),
                    user_agent: API_CLIENTS[b % API_CLIENTS.len()],
                }
            } else {
                Client { ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, octet)), user_agent: BROWSERS[b % BROWSERS.len()] }
            };
            self.buyers.push(Buyer {
                account_id,
                token,
                client,
                orders: Vec::new(),
                resources: Vec::new(),
                requirements: Vec::new(),
                offers: Vec::new(),
                favorites: Vec::new(),
                agreements: Vec::new(),
            });
        }
        Ok(())
    }

    async fn login(&mut self, account: &str, user: &str) -> Result<String, WorkloadError> {
        let client = Client { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), user_agent: API_CLIENTS[0] };
        let body = json!({"account": account, "user": user, "password": PASSWORD});
        let (status, answer) = self.send(Method::POST, "/v1/auth/tokens", Auth::None, Some(body), &client).await?;
        if status != 200 {
            return Err(WorkloadError::Setup(format!("signing in {user}@{account} answered {status}: {answer}")));
        }
        field(&answer, "token")
    }

    async fn admin(&mut self, path: &str, body: Value) -> Result<Value, WorkloadError> {
        let client = Client { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), user_agent: API_CLIENTS[0] };
        let token = self.admin_token.clone();
        let (status, answer) = self.send(Method::POST, path, Auth::Admin(&token), Some(body), &client).await?;
        if status >= 300 {
            return Err(WorkloadError::Setup(format!("{path} answered {status}: {answer}")));
        }
        Ok(answer)
    }

    async fn advance(&mut self, ms: i64) -> Result<(), WorkloadError> {
        let answer = self.admin("/v1/admin/clock", json!({ "advance_ms": ms })).await?;
        self.now = answer["now"].as_i64().unwrap_or(self.now);
        self.report.simulated_ms += ms;
        Ok(())
    }

    /// Performs one operation (breaking a rule on purpose when `breaks_rule`); answers the status.
    async fn perform(&mut self, operation: &str, breaks_rule: bool) -> Result<u16, WorkloadError> {
        let b = self.rng.gen_range(0..self.buyers.len());
        let missing = format!("missing-{}", self.rng.gen_range(1000..9999));
        let rng = &mut self.rng;
        let buyer = &self.buyers[b];
        let pick = |list: &[String], rng: &mut StdRng| list.choose(rng).cloned().unwrap_or_else(|| missing.clone());
        // Another buyer's private offer: it must look like it does not exist.
        let foreign_offer = self
            .buyers
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != b)
            .flat_map(|(_, other)| other.offers.iter())
            .next()
            .cloned();
        let product = self.products.choose(rng).map(|(id, _)| id.clone()).unwrap_or_default();
        let plan = ["basic", "pro", "enterprise"].choose(rng).copied().unwrap_or("basic");
        let (method, path, body) = match operation {
            "createOrder" => {
                let offer = buyer.offers.choose(rng).cloned().filter(|_| rng.gen_bool(0.3));
                let months = if breaks_rule { 0 } else { *[1, 1, 3, 6, 12].choose(rng).unwrap_or(&1) };
                let body = match offer {
                    Some(offer_id) => self.offer_order(b, &offer_id, months).await?,
                    None => json!({"product_id": product, "plan": plan, "period_months": months}),
                };
                (Method::POST, "/v1/orders".to_owned(), Some(body))
            }
            "cancelOrder" => {
                // Canceling the newest order usually succeeds; an older one is paid by now (a rule break).
                let order = if breaks_rule { buyer.orders.first() } else { buyer.orders.last() };
                (Method::POST, format!("/v1/orders/{}/cancel", order.cloned().unwrap_or(missing)), None)
            }
            "queryOrderList" => {
                let query = match rng.gen_range(0..4) {
                    0 => "?status=processing".to_owned(),
                    1 => format!("?product_id={product}&limit=5"),
                    2 => format!("?from={}&to={}", self.now - 7 * 24 * 60 * MINUTE_MS, self.now),
                    _ if breaks_rule => "?limit=500".to_owned(),
                    _ => "?offset=5&limit=5".to_owned(),
                };
                (Method::GET, format!("/v1/orders{query}"), None)
            }
            "queryOrderDetail" => (Method::GET, format!("/v1/orders/{}", pick(&buyer.orders, rng)), None),
            "renewOrder" => {
                let body = json!({"period_months": if breaks_rule { 99 } else { rng.gen_range(1..=12) }});
                (Method::POST, format!("/v1/resources/{}/renew", pick(&buyer.resources, rng)), Some(body))
            }
            "changeOrder" => (
                Method::POST,
                format!("/v1/resources/{}/change", pick(&buyer.resources, rng)),
                Some(json!({"plan": plan})),
            ),
            "unSubscribeByNegotiation" => {
                let refund = if breaks_rule { 1_000_000_000 } else { rng.gen_range(100..2_000) };
                let body = json!({"refund_cents": refund, "reason": "the product does not fit our workflow"});
                (Method::POST, format!("/v1/resources/{}/unsubscribe", pick(&buyer.resources, rng)), Some(body))
            }
            "queryResourceDetail" => (Method::GET, format!("/v1/resources/{}", pick(&buyer.resources, rng)), None),
            "setResourceStrategy" => {
                let strategy =
                    ["manual_renewal", "auto_renewal", "auto_renewal", "release_at_expiry"].choose(rng).copied();
                let body = json!({"strategy": if breaks_rule { Some("forever") } else { strategy }});
                (Method::PUT, format!("/v1/resources/{}/strategy", pick(&buyer.resources, rng)), Some(body))
            }
            "closeResource" => (Method::POST, format!("/v1/resources/{}/close", pick(&buyer.resources, rng)), None),
            "querySaasResourceInstance" => {
                (Method::GET, format!("/v1/resources/{}/instance", pick(&buyer.resources, rng)), None)
            }
            "submitRequirement" => {
                let body =
                    json!({"resource_id": pick(&buyer.resources, rng), "content": "Set up SSO with our corporate IdP"});
                (Method::POST, "/v1/requirements".to_owned(), Some(body))
            }
            "confirmAcceptance" => {
                let body = json!({"accepted": rng.gen_bool(0.75), "comment": "checked in staging"});
                (Method::POST, format!("/v1/requirements/{}/acceptance", pick(&buyer.requirements, rng)), Some(body))
            }
            "appealRequirement" => {
                let body = json!({"reason": "the seller is not responding"});
                (Method::POST, format!("/v1/requirements/{}/appeal", pick(&buyer.requirements, rng)), Some(body))
            }
            "queryDeliveryProcess" => {
                (Method::GET, format!("/v1/requirements/{}", pick(&buyer.requirements, rng)), None)
            }
            "queryPrivateOfferList" => (Method::GET, "/v1/private-offers".to_owned(), None),
            "queryPrivateOfferDetail" => {
                let offer = if breaks_rule { foreign_offer.unwrap_or(missing) } else { pick(&buyer.offers, rng) };
                (Method::GET, format!("/v1/private-offers/{offer}"), None)
            }
            "addFavorites" => {
                let product_id =
                    if breaks_rule { buyer.favorites.first().cloned().unwrap_or(missing) } else { product };
                (Method::POST, "/v1/favorites".to_owned(), Some(json!({"product_id": product_id})))
            }
            "deleteFavorites" => (Method::DELETE, format!("/v1/favorites/{}", pick(&buyer.favorites, rng)), None),
            "queryFavorites" => (Method::GET, "/v1/favorites".to_owned(), None),
            "queryAgreementSignList" => (Method::GET, "/v1/agreements".to_owned(), None),
            "queryAgreementSignDetail" => {
                (Method::GET, format!("/v1/agreements/{}", pick(&buyer.agreements, rng)), None)
            }
            seller_operation => return self.perform_as_seller(seller_operation, b, breaks_rule).await,
        };
        let buyer = &self.buyers[b];
        let (token, client) = (buyer.token.clone(), buyer.client.clone());
        let (status, answer) = self.send(method, &path, Auth::User(&token), body, &client).await?;
        if status < 300 {
            self.learn(operation, b, &answer);
        }
        Ok(status)
    }

    /// The order body for a buyer's private offer (read through the API, as a buyer would).
    async fn offer_order(&mut self, b: usize, offer_id: &str, months: u32) -> Result<Value, WorkloadError> {
        let buyer = &self.buyers[b];
        let (token, client) = (buyer.token.clone(), buyer.client.clone());
        let path = format!("/v1/private-offers/{offer_id}");
        let (_, offer) = self.send(Method::GET, &path, Auth::User(&token), None, &client).await?;
        *self.report.per_operation.entry("queryPrivateOfferDetail".to_owned()).or_default() += 1;
        Ok(
            json!({"product_id": offer["product_id"], "plan": offer["plan"], "period_months": months, "private_offer_id": offer_id}),
        )
    }

    async fn perform_as_seller(&mut self, operation: &str, b: usize, breaks_rule: bool) -> Result<u16, WorkloadError> {
        let s = self.rng.gen_range(0..self.sellers.len());
        let missing = format!("missing-{}", self.rng.gen_range(1000..9999));
        let seller = &self.sellers[s];
        let rng = &mut self.rng;
        let pick = |list: &[String], rng: &mut StdRng| list.choose(rng).cloned().unwrap_or_else(|| missing.clone());
        let (method, path, body) = match operation {
            "deliverOrder" => {
                // Orders are paid a few minutes after they are placed; delivering earlier breaks the rule.
                let paid_before = self.now - if breaks_rule { 0 } else { 15 * MINUTE_MS };
                let order =
                    seller.orders.iter().rev().find(|(_, placed)| *placed <= paid_before).map(|(id, _)| id.clone());
                (Method::POST, format!("/v1/seller/orders/{}/deliver", order.unwrap_or(missing)), None)
            }
            "reviewUnsubscription" => {
                let body = json!({"agree": rng.gen_bool(0.6)});
                (
                    Method::POST,
                    format!("/v1/seller/unsubscriptions/{}/review", pick(&seller.unsubscriptions, rng)),
                    Some(body),
                )
            }
            "acceptRequirement" => {
                (Method::POST, format!("/v1/seller/requirements/{}/accept", pick(&seller.requirements, rng)), None)
            }
            "rejectRequirement" => {
                let body = json!({"reason": "out of the product's scope"});
                (
                    Method::POST,
                    format!("/v1/seller/requirements/{}/reject", pick(&seller.requirements, rng)),
                    Some(body),
                )
            }
            "deliverRequirement" => {
                let body = json!({"note": "configured; see the admin console"});
                (
                    Method::POST,
                    format!("/v1/seller/requirements/{}/deliver", pick(&seller.requirements, rng)),
                    Some(body),
                )
            }
            _ => {
                let buyer_account_id = self.buyers[b].account_id.clone();
                let product_id = seller.products.choose(rng).cloned().unwrap_or(missing);
                let price = if breaks_rule { -1 } else { rng.gen_range(10..100) * 100 };
                let body = json!({"buyer_account_id": buyer_account_id, "product_id": product_id, "plan": "pro",
                    "monthly_price_cents": price, "valid_days": 30});
                (Method::POST, "/v1/seller/private-offers".to_owned(), Some(body))
            }
        };
        let (token, client) = (seller.token.clone(), seller.client.clone());
        let (status, answer) = self.send(method, &path, Auth::User(&token), body, &client).await?;
        if status < 300 && operation == "createPrivateOffer" {
            if let Some(offer_id) = answer["id"].as_str() {
                self.buyers[b].offers.push(offer_id.to_owned());
            }
        }
        Ok(status)
    }

    /// Remembers the ids an answer reveals.
    fn learn(&mut self, operation: &str, b: usize, answer: &Value) {
        let id = answer["id"].as_str().map(str::to_owned);
        match operation {
            "createOrder" => {
                if let Some(order_id) = id {
                    let seller =
                        self.products.iter().find(|(p, _)| answer["product_id"] == p.as_str()).map(|(_, s)| *s);
                    if let Some(s) = seller {
                        self.sellers[s].orders.push((order_id.clone(), self.now));
                    }
                    self.buyers[b].orders.push(order_id);
                }
                if let Some(agreement_id) = answer["agreement_id"].as_str() {
                    self.buyers[b].agreements.push(agreement_id.to_owned());
                }
            }
            "queryOrderDetail" | "queryOrderList" => {
                let orders = answer["orders"].as_array().cloned().unwrap_or_else(|| vec![answer.clone()]);
                for order in orders {
                    let Some(resource_id) = order["resource_id"].as_str() else { continue };
                    if self.resource_sellers.contains_key(resource_id) {
                        continue;
                    }
                    let seller = self.products.iter().find(|(p, _)| order["product_id"] == p.as_str()).map(|(_, s)| *s);
                    if let Some(s) = seller {
                        self.resource_sellers.insert(resource_id.to_owned(), s);
                        self.buyers[b].resources.push(resource_id.to_owned());
                    }
                }
            }
            "submitRequirement" => {
                if let Some(requirement_id) = id {
                    if let Some(&s) = answer["resource_id"].as_str().and_then(|r| self.resource_sellers.get(r)) {
                        self.sellers[s].requirements.push(requirement_id.clone());
                    }
                    self.buyers[b].requirements.push(requirement_id);
                }
            }
            "unSubscribeByNegotiation" => {
                if let (Some(unsubscription_id), Some(&s)) =
                    (id, answer["resource_id"].as_str().and_then(|r| self.resource_sellers.get(r)))
                {
                    self.sellers[s].unsubscriptions.push(unsubscription_id);
                }
            }
            "addFavorites" => {
                if let Some(product_id) = answer["product_id"].as_str() {
                    self.buyers[b].favorites.push(product_id.to_owned());
                }
            }
            "deleteFavorites" => {
                if let Some(product_id) = answer["product_id"].as_str() {
                    self.buyers[b].favorites.retain(|known| known != product_id);
                }
            }
            _ => {}
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
        client: &Client,
    ) -> Result<(u16, Value), WorkloadError> {
        let (header, token) = match auth {
            Auth::None => (None, ""),
            Auth::User(token) => (Some(AUTH_TOKEN_HEADER), token),
            Auth::Admin(token) => (Some(ADMIN_TOKEN_HEADER), token),
        };
        let body = body.map(|value| value.to_string()).unwrap_or_default();
        match self.target {
            Target::InProcess(router) => {
                let mut request = Request::builder()
                    .method(method)
                    .uri(path)
                    .header("content-type", "application/json")
                    .header("user-agent", client.user_agent);
                if let Some(header) = header {
                    request = request.header(header, token);
                }
                let mut request =
                    request.body(Body::from(body)).map_err(|e| WorkloadError::Transport(e.to_string()))?;
                request.extensions_mut().insert(ConnectInfo(SocketAddr::new(client.ip, 40_000)));
                let response =
                    router.clone().oneshot(request).await.map_err(|e| WorkloadError::Transport(e.to_string()))?;
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .map_err(|e| WorkloadError::Transport(e.to_string()))?;
                Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
            }
            Target::Http { base_url, client: http } => {
                let mut request = http
                    .request(method, format!("{}{path}", base_url.trim_end_matches('/')))
                    .header("content-type", "application/json")
                    .header("user-agent", client.user_agent)
                    .header("x-forwarded-for", client.ip.to_string())
                    .body(body);
                if let Some(header) = header {
                    request = request.header(header, token);
                }
                let response = request.send().await.map_err(|e| WorkloadError::Transport(e.to_string()))?;
                let status = response.status().as_u16();
                let bytes = response.bytes().await.map_err(|e| WorkloadError::Transport(e.to_string()))?;
                Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
            }
        }
    }
}

enum Auth<'a> {
    None,
    User(&'a str),
    Admin(&'a str),
}

fn field(answer: &Value, name: &str) -> Result<String, WorkloadError> {
    answer[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| WorkloadError::Setup(format!("the answer has no {name}: {answer}")))
}
