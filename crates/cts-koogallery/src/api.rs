//! The REST API (axum). Every marketplace operation is a route mapped to its catalog operation, wrapped in the
//! reporter's layer, so each call becomes one trace. Buyers and sellers authenticate with `X-Auth-Token` (from
//! `POST /v1/auth/tokens`); the bootstrap routes under `/v1/admin` need `X-Admin-Token` and are not traced.
//! Errors are `{"error_code":"KG.xxxx","error_msg":"..."}`; [`ApiError::status_and_code`] is the one mapping.

use crate::error::{MarketError, ServiceError};
use crate::market::{Command, OrderFilter, Outcome};
use crate::model::{ExpiryStrategy, Plan, Role};
use crate::service::{Caller, KooGallery};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::{Json, Router};
use cts_model::{MARKETPLACE_PROVIDER_SERVICE, MARKETPLACE_SERVICE};
use cts_reporter::{LayerConfig, OperationContext, ReporterLayer, RouteTable};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub const API_VERSION: &str = "v1";
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";
pub const ADMIN_TOKEN_HEADER: &str = "x-admin-token";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub kg: Arc<KooGallery>,
    pub trace_sink: Arc<dyn cts_reporter::TraceSink>,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
}

/// The API as a router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()` (see [`serve`]) so
/// traces get the peer address.
pub fn app(state: AppState) -> Router {
    let (operations, routes) = operations();
    let clock = state.kg.clock().clone();
    let config = LayerConfig {
        trusted_proxies: state.trusted_proxies.clone(),
        api_version: Some(API_VERSION.to_owned()),
        clock: Arc::new(move || clock.now_ms()),
        ..LayerConfig::default()
    };
    let layer = ReporterLayer::new(state.trace_sink.clone(), routes, config);
    let untraced = Router::new()
        .route("/v1/auth/tokens", post(login))
        .route("/v1/products", get(products))
        .route("/v1/admin/accounts", post(admin_create_account))
        .route("/v1/admin/users", post(admin_create_user))
        .route("/v1/admin/products", post(admin_create_product))
        .route("/v1/admin/clock", post(admin_advance_clock))
        .route("/v1/admin/faults", post(admin_inject_faults));
    operations
        .route_layer(layer)
        .merge(untraced)
        .fallback(|| async { ApiError::Market(MarketError::not_found("route", "")).into_response() })
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// The traced routes and the route table mapping each to its catalog operation (one list for both).
fn operations() -> (Router<AppState>, RouteTable) {
    use Method as M;
    let (buyer, provider) = (MARKETPLACE_SERVICE, MARKETPLACE_PROVIDER_SERVICE);
    let list: Vec<(Method, &str, &str, &str, MethodRouter<AppState>)> = vec![
        (M::POST, "/v1/orders", buyer, "createOrder", post(create_order)),
        (M::GET, "/v1/orders", buyer, "queryOrderList", get(query_order_list)),
        (M::GET, "/v1/orders/{id}", buyer, "queryOrderDetail", get(query_order_detail)),
        (M::POST, "/v1/orders/{id}/cancel", buyer, "cancelOrder", post(cancel_order)),
        (M::POST, "/v1/resources/{id}/renew", buyer, "renewOrder", post(renew_order)),
        (M::POST, "/v1/resources/{id}/change", buyer, "changeOrder", post(change_order)),
        (M::POST, "/v1/resources/{id}/unsubscribe", buyer, "unSubscribeByNegotiation", post(unsubscribe)),
        (M::GET, "/v1/resources/{id}", buyer, "queryResourceDetail", get(query_resource_detail)),
        (M::PUT, "/v1/resources/{id}/strategy", buyer, "setResourceStrategy", put(set_resource_strategy)),
        (M::POST, "/v1/resources/{id}/close", buyer, "closeResource", post(close_resource)),
        (M::GET, "/v1/resources/{id}/instance", buyer, "querySaasResourceInstance", get(query_instance)),
        (M::POST, "/v1/requirements", buyer, "submitRequirement", post(submit_requirement)),
        (M::GET, "/v1/requirements/{id}", buyer, "queryDeliveryProcess", get(query_delivery_process)),
        (M::POST, "/v1/requirements/{id}/acceptance", buyer, "confirmAcceptance", post(confirm_acceptance)),
        (M::POST, "/v1/requirements/{id}/appeal", provider, "appealRequirement", post(appeal_requirement)),
        (M::GET, "/v1/private-offers", buyer, "queryPrivateOfferList", get(query_private_offer_list)),
        (M::GET, "/v1/private-offers/{id}", buyer, "queryPrivateOfferDetail", get(query_private_offer_detail)),
        (M::POST, "/v1/favorites", buyer, "addFavorites", post(add_favorites)),
        (M::GET, "/v1/favorites", buyer, "queryFavorites", get(query_favorites)),
        (M::DELETE, "/v1/favorites/{id}", buyer, "deleteFavorites", delete(delete_favorites)),
        (M::GET, "/v1/agreements", buyer, "queryAgreementSignList", get(query_agreement_list)),
        (M::GET, "/v1/agreements/{id}", buyer, "queryAgreementSignDetail", get(query_agreement_detail)),
        (M::POST, "/v1/seller/orders/{id}/deliver", provider, "deliverOrder", post(deliver_order)),
        (
            M::POST,
            "/v1/seller/unsubscriptions/{id}/review",
            provider,
            "reviewUnsubscription",
            post(review_unsubscription),
        ),
        (M::POST, "/v1/seller/requirements/{id}/accept", provider, "acceptRequirement", post(accept_requirement)),
        (M::POST, "/v1/seller/requirements/{id}/reject", provider, "rejectRequirement", post(reject_requirement)),
        (M::POST, "/v1/seller/requirements/{id}/deliver", provider, "deliverRequirement", post(deliver_requirement)),
        (M::POST, "/v1/seller/private-offers", provider, "createPrivateOffer", post(create_private_offer)),
    ];
    let mut router = Router::new();
    let mut table = RouteTable::new();
    for (method, path, service_type, trace_name, handler) in list {
        table = table.route(method, path, service_type, trace_name).expect("API routes name catalog operations");
        router = router.route(path, handler);
    }
    (router, table)
}

/// Everything that can go wrong for a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Market(#[from] MarketError),
    #[error("authentication failed: {0}")]
    Unauthenticated(&'static str),
    /// Details are logged, never sent.
    #[error("internal error")]
    Internal,
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        match error {
            ServiceError::Market(market) => ApiError::Market(market),
            ServiceError::Unauthenticated(reason) => ApiError::Unauthenticated(reason),
            ServiceError::Storage(storage) => {
                tracing::error!(error = %storage, "a marketplace operation failed in storage");
                ApiError::Internal
            }
        }
    }
}

impl ApiError {
    /// The one mapping from an error to its HTTP status and `KG` code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "KG.0002"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "KG.0500"),
            ApiError::Market(market) => {
                let status = match market {
                    MarketError::Invalid(_) | MarketError::RefundOutOfRange { .. } | MarketError::SamePlan(_) => {
                        StatusCode::BAD_REQUEST
                    }
                    MarketError::Forbidden(_) => StatusCode::FORBIDDEN,
                    MarketError::NotFound { .. } => StatusCode::NOT_FOUND,
                    _ => StatusCode::CONFLICT,
                };
                (status, market.code())
            }
        }
    }

    fn body(&self) -> Value {
        json!({ "error_code": self.status_and_code().1, "error_msg": self.to_string() })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status_and_code().0, Json(self.body())).into_response()
    }
}

/// A traced operation's answer with what the reporter needs to know about it.
struct Reply {
    context: OperationContext,
    result: Result<(StatusCode, Value), ApiError>,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.result {
            Ok((status, body)) => (status, Json(body)).into_response(),
            Err(error) => error.into_response(),
        };
        response.extensions_mut().insert(self.context);
        response
    }
}

/// Authenticates the caller, builds the command, runs it off the async threads, and answers with the context.
async fn run(
    state: &AppState,
    headers: &HeaderMap,
    success: StatusCode,
    build: impl FnOnce() -> Result<Command, ApiError>,
) -> Reply {
    let token = headers.get(AUTH_TOKEN_HEADER).and_then(|value| value.to_str().ok());
    let caller = match token.map(|token| state.kg.authenticate(token)) {
        Some(Ok(caller)) => caller,
        Some(Err(error)) => return Reply { context: OperationContext::default(), result: Err(error.into()) },
        None => {
            let error = ApiError::Unauthenticated("the X-Auth-Token header is missing");
            return Reply { context: OperationContext::default(), result: Err(error) };
        }
    };
    let mut context = OperationContext { user: Some(caller.user.clone()), ..OperationContext::default() };
    let command = match build() {
        Ok(command) => command,
        Err(error) => return Reply { context, result: Err(error) },
    };
    let kg = state.kg.clone();
    let executed = tokio::task::spawn_blocking(move || execute(&kg, &caller, &command)).await;
    let result = match executed {
        Ok(Ok(Outcome { body, resource_id, resource_name })) => {
            context.resource_id = resource_id;
            context.resource_name = resource_name;
            Ok((success, body))
        }
        Ok(Err(error)) => Err(error),
        Err(join) => {
            tracing::error!(error = %join, "a marketplace operation panicked");
            Err(ApiError::Internal)
        }
    };
    Reply { context, result }
}

fn execute(kg: &KooGallery, caller: &Caller, command: &Command) -> Result<Outcome, ApiError> {
    Ok(kg.execute(Some(caller), command)?)
}

/// The JSON body as a `T`.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::Market(MarketError::Invalid(format!("the request body is invalid: {error}"))))
}

fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(params)| params)
        .map_err(|error| ApiError::Market(MarketError::Invalid(format!("the query is invalid: {error}"))))
}

type Shared = State<AppState>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrderBody {
    product_id: String,
    plan: String,
    period_months: u32,
    #[serde(default)]
    private_offer_id: Option<String>,
}

async fn create_order(State(s): Shared, headers: HeaderMap, bytes: Bytes) -> Reply {
    run(&s, &headers, StatusCode::CREATED, || {
        let b: CreateOrderBody = body(&bytes)?;
        Ok(Command::CreateOrder {
            product_id: b.product_id,
            plan: b.plan,
            period_months: b.period_months,
            private_offer_id: b.private_offer_id,
        })
    })
    .await
}

async fn query_order_list(State(s): Shared, headers: HeaderMap, uri: Uri) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QueryOrderList(query::<OrderFilter>(&uri)?))).await
}

async fn query_order_detail(State(s): Shared, headers: HeaderMap, Path(order_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QueryOrderDetail { order_id })).await
}

async fn cancel_order(State(s): Shared, headers: HeaderMap, Path(order_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::CancelOrder { order_id })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    period_months: u32,
}

async fn renew_order(State(s): Shared, headers: HeaderMap, Path(resource_id): Path<String>, bytes: Bytes) -> Reply {
    run(&s, &headers, StatusCode::CREATED, || {
        Ok(Command::RenewOrder { resource_id, period_months: body::<RenewBody>(&bytes)?.period_months })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    plan: String,
}

async fn change_order(State(s): Shared, headers: HeaderMap, Path(resource_id): Path<String>, bytes: Bytes) -> Reply {
    run(&s, &headers, StatusCode::CREATED, || {
        Ok(Command::ChangeOrder { resource_id, plan: body::<ChangeBody>(&bytes)?.plan })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeBody {
    refund_cents: i64,
    reason: String,
}

async fn unsubscribe(State(s): Shared, headers: HeaderMap, Path(resource_id): Path<String>, bytes: Bytes) -> Reply {
    run(&s, &headers, StatusCode::CREATED, || {
        let b: UnsubscribeBody = body(&bytes)?;
        Ok(Command::UnsubscribeByNegotiation { resource_id, refund_cents: b.refund_cents, reason: b.reason })
    })
    .await
}

async fn query_resource_detail(State(s): Shared, headers: HeaderMap, Path(resource_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QueryResourceDetail { resource_id })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategyBody {
    strategy: ExpiryStrategy,
}

async fn set_resource_strategy(
    State(s): Shared,
    headers: HeaderMap,
    Path(resource_id): Path<String>,
    bytes: Bytes,
) -> Reply {
    run(&s, &headers, StatusCode::OK, || {
        Ok(Command::SetResourceStrategy { resource_id, strategy: body::<StrategyBody>(&bytes)?.strategy })
    })
    .await
}

async fn close_resource(State(s): Shared, headers: HeaderMap, Path(resource_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::CloseResource { resource_id })).await
}

async fn query_instance(State(s): Shared, headers: HeaderMap, Path(resource_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QuerySaasResourceInstance { resource_id })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementBody {
    resource_id: String,
    content: String,
}

async fn submit_requirement(State(s): Shared, headers: HeaderMap, bytes: Bytes) -> Reply {
    run(&s, &headers, StatusCode::CREATED, || {
        let b: RequirementBody = body(&bytes)?;
        Ok(Command::SubmitRequirement { resource_id: b.resource_id, content: b.content })
    })
    .await
}

async fn query_delivery_process(State(s): Shared, headers: HeaderMap, Path(requirement_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QueryDeliveryProcess { requirement_id })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptanceBody {
    accepted: bool,
    #[serde(default)]
    comment: Option<String>,
}

async fn confirm_acceptance(
    State(s): Shared,
    headers: HeaderMap,
    Path(requirement_id): Path<String>,
    bytes: Bytes,
) -> Reply {
    run(&s, &headers, StatusCode::OK, || {
        let b: AcceptanceBody = body(&bytes)?;
        Ok(Command::ConfirmAcceptance { requirement_id, accepted: b.accepted, comment: b.comment })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

async fn appeal_requirement(
    State(s): Shared,
    headers: HeaderMap,
    Path(requirement_id): Path<String>,
    bytes: Bytes,
) -> Reply {
    run(&s, &headers, StatusCode::OK, || {
        Ok(Command::AppealRequirement { requirement_id, reason: body::<ReasonBody>(&bytes)?.reason })
    })
    .await
}

async fn query_private_offer_list(State(s): Shared, headers: HeaderMap) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QueryPrivateOfferList)).await
}

async fn query_private_offer_detail(State(s): Shared, headers: HeaderMap, Path(offer_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QueryPrivateOfferDetail { offer_id })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FavoriteBody {
    product_id: String,
}

async fn add_favorites(State(s): Shared, headers: HeaderMap, bytes: Bytes) -> Reply {
    run(&s, &headers, StatusCode::CREATED, || {
        Ok(Command::AddFavorites { product_id: body::<FavoriteBody>(&bytes)?.product_id })
    })
    .await
}

async fn query_favorites(State(s): Shared, headers: HeaderMap) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QueryFavorites)).await
}

async fn delete_favorites(State(s): Shared, headers: HeaderMap, Path(product_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::DeleteFavorites { product_id })).await
}

async fn query_agreement_list(State(s): Shared, headers: HeaderMap) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QueryAgreementSignList)).await
}

async fn query_agreement_detail(State(s): Shared, headers: HeaderMap, Path(agreement_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::QueryAgreementSignDetail { agreement_id })).await
}

async fn deliver_order(State(s): Shared, headers: HeaderMap, Path(order_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::DeliverOrder { order_id })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    agree: bool,
}

async fn review_unsubscription(
    State(s): Shared,
    headers: HeaderMap,
    Path(unsubscription_id): Path<String>,
    bytes: Bytes,
) -> Reply {
    run(&s, &headers, StatusCode::OK, || {
        Ok(Command::ReviewUnsubscription { unsubscription_id, agree: body::<ReviewBody>(&bytes)?.agree })
    })
    .await
}

async fn accept_requirement(State(s): Shared, headers: HeaderMap, Path(requirement_id): Path<String>) -> Reply {
    run(&s, &headers, StatusCode::OK, || Ok(Command::AcceptRequirement { requirement_id })).await
}

async fn reject_requirement(
    State(s): Shared,
    headers: HeaderMap,
    Path(requirement_id): Path<String>,
    bytes: Bytes,
) -> Reply {
    run(&s, &headers, StatusCode::OK, || {
        Ok(Command::RejectRequirement { requirement_id, reason: body::<ReasonBody>(&bytes)?.reason })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliverBody {
    #[serde(default)]
    note: Option<String>,
}

async fn deliver_requirement(
    State(s): Shared,
    headers: HeaderMap,
    Path(requirement_id): Path<String>,
    bytes: Bytes,
) -> Reply {
    run(&s, &headers, StatusCode::OK, || {
        let note = if bytes.is_empty() { None } else { body::<DeliverBody>(&bytes)?.note };
        Ok(Command::DeliverRequirement { requirement_id, note })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivateOfferBody {
    buyer_account_id: String,
    product_id: String,
    plan: String,
    monthly_price_cents: i64,
    valid_days: u32,
}

async fn create_private_offer(State(s): Shared, headers: HeaderMap, bytes: Bytes) -> Reply {
    run(&s, &headers, StatusCode::CREATED, || {
        let b: PrivateOfferBody = body(&bytes)?;
        Ok(Command::CreatePrivateOffer {
            buyer_account_id: b.buyer_account_id,
            product_id: b.product_id,
            plan: b.plan,
            monthly_price_cents: b.monthly_price_cents,
            valid_days: b.valid_days,
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    account: String,
    user: String,
    password: String,
}

async fn login(State(s): Shared, bytes: Bytes) -> Result<Json<Value>, ApiError> {
    let b: LoginBody = body(&bytes)?;
    let token = s.kg.login(&b.account, &b.user, &b.password)?;
    Ok(Json(json!({ "token": token })))
}

async fn products(State(s): Shared) -> Json<Value> {
    Json(s.kg.products())
}

/// Runs an administrative call after checking `X-Admin-Token`.
async fn admin<F>(state: &AppState, headers: &HeaderMap, call: F) -> Result<(StatusCode, Json<Value>), ApiError>
where
    F: FnOnce(&KooGallery) -> Result<Value, ServiceError> + Send + 'static,
{
    let token = headers.get(ADMIN_TOKEN_HEADER).and_then(|value| value.to_str().ok()).unwrap_or_default();
    if !state.kg.is_admin_token(token) {
        return Err(ApiError::Unauthenticated("a valid X-Admin-Token is required"));
    }
    let kg = state.kg.clone();
    let value = tokio::task::spawn_blocking(move || call(&kg)).await.map_err(|join| {
        tracing::error!(error = %join, "an administrative call panicked");
        ApiError::Internal
    })??;
    Ok((StatusCode::CREATED, Json(value)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountBody {
    name: String,
}

async fn admin_create_account(
    State(s): Shared,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let b: AccountBody = body(&bytes)?;
    admin(&s, &headers, move |kg| Ok(kg.create_account(&b.name)?.body)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    account_id: String,
    name: String,
    password: String,
    role: Role,
}

async fn admin_create_user(State(s): Shared, headers: HeaderMap, bytes: Bytes) -> Result<impl IntoResponse, ApiError> {
    let b: UserBody = body(&bytes)?;
    admin(&s, &headers, move |kg| Ok(kg.create_user(&b.account_id, &b.name, &b.password, b.role)?.body)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductBody {
    seller_account_id: String,
    name: String,
    plans: Vec<Plan>,
    guarantee_days: u32,
}

async fn admin_create_product(
    State(s): Shared,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let b: ProductBody = body(&bytes)?;
    admin(&s, &headers, move |kg| Ok(kg.create_product(&b.seller_account_id, &b.name, b.plans, b.guarantee_days)?.body))
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_ms: i64,
}

async fn admin_advance_clock(
    State(s): Shared,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let b: ClockBody = body(&bytes)?;
    admin(&s, &headers, move |kg| Ok(json!({ "now": kg.advance_clock(b.advance_ms)? }))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    fail_next_writes: u32,
}

async fn admin_inject_faults(
    State(s): Shared,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let b: FaultsBody = body(&bytes)?;
    admin(&s, &headers, move |kg| {
        kg.inject_faults(b.fail_next_writes);
        Ok(json!({ "fail_next_writes": b.fail_next_writes }))
    })
    .await
}
