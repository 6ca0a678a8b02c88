//! The marketplace as a pure state machine: [`Marketplace::execute`] applies one [`Command`] at a given time on
//! behalf of a user (or of the administrator), and [`Marketplace::advance_to`] runs the platform's own actions that
//! are due by then. No I/O and no clock: the same commands at the same times give the same state, which is what lets
//! the journal replay them. Ids are derived from record counts, so a refused command leaves no trace in the state.

use crate::error::MarketError;
use crate::model::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One operation on the marketplace. Administrative commands have no acting user; buyer and seller commands do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    // Administration (bootstrap).
    CreateAccount {
        name: String,
    },
    CreateUser {
        account_id: String,
        name: String,
        role: Role,
        password_hash: String,
        salt: String,
    },
    CreateProduct {
        seller_account_id: String,
        name: String,
        plans: Vec<Plan>,
        guarantee_days: u32,
    },
    // The platform's clock: run what is due.
    Tick,
    // Buyers.
    CreateOrder {
        product_id: String,
        plan: String,
        period_months: u32,
        private_offer_id: Option<String>,
    },
    CancelOrder {
        order_id: String,
    },
    QueryOrderList(OrderFilter),
    QueryOrderDetail {
        order_id: String,
    },
    RenewOrder {
        resource_id: String,
        period_months: u32,
    },
    ChangeOrder {
        resource_id: String,
        plan: String,
    },
    UnsubscribeByNegotiation {
        resource_id: String,
        refund_cents: i64,
        reason: String,
    },
    QueryResourceDetail {
        resource_id: String,
    },
    SetResourceStrategy {
        resource_id: String,
        strategy: ExpiryStrategy,
    },
    CloseResource {
        resource_id: String,
    },
    QuerySaasResourceInstance {
        resource_id: String,
    },
    SubmitRequirement {
        resource_id: String,
        content: String,
    },
    ConfirmAcceptance {
        requirement_id: String,
        accepted: bool,
        comment: Option<String>,
    },
    AppealRequirement {
        requirement_id: String,
        reason: String,
    },
    QueryDeliveryProcess {
        requirement_id: String,
    },
    QueryPrivateOfferList,
    QueryPrivateOfferDetail {
        offer_id: String,
    },
    AddFavorites {
        product_id: String,
    },
    DeleteFavorites {
        product_id: String,
    },
    QueryFavorites,
    QueryAgreementSignList,
    QueryAgreementSignDetail {
        agreement_id: String,
    },
    // Sellers.
    DeliverOrder {
        order_id: String,
    },
    ReviewUnsubscription {
        unsubscription_id: String,
        agree: bool,
    },
    AcceptRequirement {
        requirement_id: String,
    },
    RejectRequirement {
        requirement_id: String,
        reason: String,
    },
    DeliverRequirement {
        requirement_id: String,
        note: Option<String>,
    },
    CreatePrivateOffer {
        buyer_account_id: String,
        product_id: String,
        plan: String,
        monthly_price_cents: i64,
        valid_days: u32,
    },
}

impl Command {
    /// Whether the command can change the state (and so must be journaled).
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            Command::QueryOrderList(_)
                | Command::QueryOrderDetail { .. }
                | Command::QueryResourceDetail { .. }
                | Command::QuerySaasResourceInstance { .. }
                | Command::QueryDeliveryProcess { .. }
                | Command::QueryPrivateOfferList
                | Command::QueryPrivateOfferDetail { .. }
                | Command::QueryFavorites
                | Command::QueryAgreementSignList
                | Command::QueryAgreementSignDetail { .. }
        )
    }

    fn is_administrative(&self) -> bool {
        matches!(
            self,
            Command::CreateAccount { .. } | Command::CreateUser { .. } | Command::CreateProduct { .. } | Command::Tick
        )
    }
}

/// The filters and page of `queryOrderList`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub product_id: Option<String>,
    /// Orders created at or after this time.
    pub from: Option<i64>,
    /// Orders created before this time.
    pub to: Option<i64>,
    pub offset: Option<usize>,
    /// 1 to 100, default 10.
    pub limit: Option<usize>,
}

/// What a command answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub body: Value,
    /// The record the operation is about (the trace's resource).
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
}

impl Outcome {
    fn of(body: Value, resource_id: &str, resource_name: impl Into<Option<String>>) -> Outcome {
        Outcome { body, resource_id: Some(resource_id.to_owned()), resource_name: resource_name.into() }
    }

    fn listing(body: Value) -> Outcome {
        Outcome { body, resource_id: None, resource_name: None }
    }
}

/// Something the platform did by itself as time passed.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemEvent {
    /// A `marketplace-provider` catalog operation.
    pub trace_name: &'static str,
    pub at: i64,
    /// The account whose record it concerns.
    pub account_id: String,
    pub resource_id: String,
    pub resource_name: String,
    pub details: Value,
}

/// The whole marketplace state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Marketplace {
    accounts: BTreeMap<String, Account>,
    users: BTreeMap<String, User>,
    products: BTreeMap<String, Product>,
    orders: BTreeMap<String, Order>,
    resources: BTreeMap<String, Resource>,
    unsubscriptions: BTreeMap<String, Unsubscription>,
    requirements: BTreeMap<String, Requirement>,
    private_offers: BTreeMap<String, PrivateOffer>,
    agreements: BTreeMap<String, AgreementSignRecord>,
    /// Per user id, per product id.
    favorites: BTreeMap<String, BTreeMap<String, Favorite>>,
}

/// A due platform action.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Payment(String),
    ResourceLifecycle(String),
}

const MAX_TEXT: usize = 500;

fn id(prefix: &str, count: usize) -> String {
    format!("{prefix}{:08}", count + 1)
}

fn text(field: &str, value: &str) -> Result<(), MarketError> {
    if value.trim().is_empty() || value.len() > MAX_TEXT {
        return Err(MarketError::Invalid(format!("{field} must be 1 to {MAX_TEXT} characters")));
    }
    Ok(())
}

fn months(period_months: u32) -> Result<i64, MarketError> {
    if !(1..=36).contains(&period_months) {
        return Err(MarketError::Invalid("period_months must be 1 to 36".to_owned()));
    }
    Ok(i64::from(period_months))
}

fn to_json<T: Serialize>(record: &T) -> Value {
    serde_json::to_value(record).expect("marketplace records serialise")
}

fn status_name<T: Serialize>(status: T) -> String {
    to_json(&status).as_str().unwrap_or_default().replace('_', " ")
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

impl Marketplace {
    pub fn new() -> Marketplace {
        Marketplace::default()
    }

    pub fn user(&self, user_id: &str) -> Option<&User> {
        self.users.get(user_id)
    }

    pub fn account(&self, account_id: &str) -> Option<&Account> {
        self.accounts.get(account_id)
    }

    /// The user `name` of the account named `account_name`.
    pub fn find_user(&self, account_name: &str, name: &str) -> Option<&User> {
        let account = self.accounts.values().find(|account| account.name == account_name)?;
        self.users.values().find(|user| user.account_id == account.id && user.name == name)
    }

    pub fn products(&self) -> impl Iterator<Item = &Product> {
        self.products.values()
    }

    /// Applies `command` at `at` (UTC ms) for `actor` (a user id; `None` for the administrator and the platform).
    /// A refused command changes nothing.
    pub fn execute(&mut self, at: i64, actor: Option<&str>, command: &Command) -> Result<Outcome, MarketError> {
        let user = match actor {
            Some(user_id) => {
                Some(self.users.get(user_id).cloned().ok_or_else(|| MarketError::not_found("user", user_id))?)
            }
            None => None,
        };
        match (&user, command.is_administrative()) {
            (None, true) => self.administer(at, command),
            (Some(user), false) => match user.role {
                Role::Buyer => self.serve_buyer(at, user, command),
                Role::Seller => self.serve_seller(at, user, command),
            },
            (Some(_), true) => Err(MarketError::Forbidden("administrative operations need the admin token".to_owned())),
            (None, false) => Err(MarketError::Forbidden("this operation needs a signed-in user".to_owned())),
        }
    }

    fn administer(&mut self, at: i64, command: &Command) -> Result<Outcome, MarketError> {
        match command {
            Command::CreateAccount { name } => {
                text("name", name)?;
                if self.accounts.values().any(|account| &account.name == name) {
                    return Err(MarketError::AlreadyExists(format!("account {name} exists")));
                }
                let account = Account { id: id("acct-", self.accounts.len()), name: name.clone() };
                let outcome = Outcome::of(to_json(&account), &account.id, account.name.clone());
                self.accounts.insert(account.id.clone(), account);
                Ok(outcome)
            }
            Command::CreateUser { account_id, name, role, password_hash, salt } => {
                text("name", name)?;
                let account =
                    self.accounts.get(account_id).ok_or_else(|| MarketError::not_found("account", account_id))?;
                if self.find_user(&account.name, name).is_some() {
                    return Err(MarketError::AlreadyExists(format!("user {name} exists in account {}", account.name)));
                }
                let user = User {
                    id: id("user-", self.users.len()),
                    account_id: account_id.clone(),
                    name: name.clone(),
                    role: *role,
                    password_hash: password_hash.clone(),
                    salt: salt.clone(),
                };
                let outcome = Outcome::of(
                    json!({"id": user.id, "account_id": user.account_id, "name": user.name, "role": user.role}),
                    &user.id,
                    user.name.clone(),
                );
                self.users.insert(user.id.clone(), user);
                Ok(outcome)
            }
            Command::CreateProduct { seller_account_id, name, plans, guarantee_days } => {
                text("name", name)?;
                if !self.accounts.contains_key(seller_account_id) {
                    return Err(MarketError::not_found("account", seller_account_id));
                }
                if plans.is_empty() || plans.iter().any(|plan| plan.monthly_price_cents <= 0 || plan.name.is_empty()) {
                    return Err(MarketError::Invalid(
                        "a product needs plans with names and positive prices".to_owned(),
                    ));
                }
                let product = Product {
                    id: id("prod-", self.products.len()),
                    seller_account_id: seller_account_id.clone(),
                    name: name.clone(),
                    plans: plans.clone(),
                    guarantee_days: *guarantee_days,
                };
                let outcome = Outcome::of(to_json(&product), &product.id, product.name.clone());
                self.products.insert(product.id.clone(), product);
                Ok(outcome)
            }
            Command::Tick => {
                let events = self.advance_to(at);
                Ok(Outcome::listing(json!({ "time": at, "system_actions": events.len() })))
            }
            _ => unreachable!("only administrative commands reach administer"),
        }
    }

    fn serve_buyer(&mut self, at: i64, buyer: &User, command: &Command) -> Result<Outcome, MarketError> {
        match command {
            Command::CreateOrder { product_id, plan, period_months, private_offer_id } => {
                self.create_order(at, buyer, product_id, plan, *period_months, private_offer_id.as_deref())
            }
            Command::CancelOrder { order_id } => {
                let order = self.own_order(buyer, order_id)?;
                if order.status != OrderStatus::PendingPayment {
                    return Err(match order.status {
                        OrderStatus::Canceled => MarketError::OrderState {
                            order_id: order_id.clone(),
                            status: status_name(order.status),
                            action: "it cannot be canceled again",
                        },
                        _ => MarketError::OrderAlreadyPaid(order_id.clone()),
                    });
                }
                let order = self.orders.get_mut(order_id).expect("checked above");
                order.status = OrderStatus::Canceled;
                order.canceled_at = Some(at);
                let order = order.clone();
                Ok(self.order_outcome(&order))
            }
            Command::QueryOrderList(filter) => self.query_orders(buyer, filter),
            Command::QueryOrderDetail { order_id } => {
                let order = self.own_order(buyer, order_id)?.clone();
                Ok(self.order_outcome(&order))
            }
            Command::RenewOrder { resource_id, period_months } => {
                let resource = self.own_resource(buyer, resource_id)?;
                if !resource.status.is_live() {
                    return Err(resource_state(resource, "only a live resource can be renewed"));
                }
                let (product_id, plan) = (resource.product_id.clone(), resource.plan.clone());
                let price = self.plan_price(&product_id, &plan)?;
                let amount = price * months(*period_months)?;
                Ok(self.place_order(
                    at,
                    buyer,
                    &product_id,
                    OrderKind::Renewal,
                    &plan,
                    *period_months,
                    amount,
                    Some(resource_id),
                    None,
                ))
            }
            Command::ChangeOrder { resource_id, plan } => {
                let resource = self.own_resource(buyer, resource_id)?;
                if resource.status != ResourceStatus::Active {
                    return Err(resource_state(resource, "only an active resource can change its specification"));
                }
                if &resource.plan == plan {
                    return Err(MarketError::SamePlan(plan.clone()));
                }
                let (product_id, old_plan, expires_at) =
                    (resource.product_id.clone(), resource.plan.clone(), resource.expires_at);
                let difference = self.plan_price(&product_id, plan)? - self.plan_price(&product_id, &old_plan)?;
                let remaining_days = ((expires_at - at).max(0) + DAY_MS - 1) / DAY_MS;
                let amount = difference * remaining_days / 30;
                Ok(self.place_order(
                    at,
                    buyer,
                    &product_id,
                    OrderKind::Change,
                    plan,
                    0,
                    amount,
                    Some(resource_id),
                    None,
                ))
            }
            Command::UnsubscribeByNegotiation { resource_id, refund_cents, reason } => {
                self.unsubscribe(at, buyer, resource_id, *refund_cents, reason)
            }
            Command::QueryResourceDetail { resource_id } => {
                let resource = self.own_resource(buyer, resource_id)?;
                let mut body = to_json(resource);
                body["unsubscriptions"] = Value::Array(
                    self.unsubscriptions.values().filter(|u| &u.resource_id == resource_id).map(to_json).collect(),
                );
                Ok(Outcome::of(body, resource_id, resource.name.clone()))
            }
            Command::SetResourceStrategy { resource_id, strategy } => {
                let resource = self.own_resource(buyer, resource_id)?;
                if !matches!(resource.status, ResourceStatus::Active | ResourceStatus::Expired) {
                    return Err(resource_state(
                        resource,
                        "the expiration policy of an ended or frozen resource cannot change",
                    ));
                }
                let resource = self.resources.get_mut(resource_id).expect("checked above");
                resource.strategy = *strategy;
                Ok(Outcome::of(to_json(&*resource), resource_id, resource.name.clone()))
            }
            Command::CloseResource { resource_id } => {
                let resource = self.own_resource(buyer, resource_id)?;
                if !resource.status.is_live() {
                    return Err(resource_state(resource, "it has already ended"));
                }
                let resource = self.resources.get_mut(resource_id).expect("checked above");
                resource.status = ResourceStatus::Closed;
                resource.ended_at = Some(at);
                Ok(Outcome::of(to_json(&*resource), resource_id, resource.name.clone()))
            }
            Command::QuerySaasResourceInstance { resource_id } => {
                let resource = self.own_resource(buyer, resource_id)?;
                if !matches!(resource.status, ResourceStatus::Active | ResourceStatus::Expired) {
                    return Err(resource_state(resource, "its instance is not reachable"));
                }
                let access =
                    resource.access.as_ref().ok_or_else(|| MarketError::InstanceNotDelivered(resource_id.clone()))?;
                let body = json!({
                    "resource_id": resource.id, "status": resource.status, "plan": resource.plan,
                    "url": access.url, "admin_user": access.admin_user, "expires_at": resource.expires_at,
                });
                Ok(Outcome::of(body, resource_id, resource.name.clone()))
            }
            Command::SubmitRequirement { resource_id, content } => {
                text("content", content)?;
                let resource = self.own_resource(buyer, resource_id)?;
                if !resource.status.is_live() {
                    return Err(resource_state(resource, "requirements need a live resource"));
                }
                let seller_account_id = self.products[&resource.product_id].seller_account_id.clone();
                let requirement = Requirement {
                    id: id("req-", self.requirements.len()),
                    resource_id: resource_id.clone(),
                    account_id: buyer.account_id.clone(),
                    seller_account_id,
                    content: content.clone(),
                    status: RequirementStatus::Submitted,
                    rejections: 0,
                    last_activity_at: at,
                    process: vec![ProcessStep {
                        at,
                        by: buyer.name.clone(),
                        action: "submitted".to_owned(),
                        note: None,
                    }],
                };
                let outcome = requirement_outcome(&requirement);
                self.requirements.insert(requirement.id.clone(), requirement);
                Ok(outcome)
            }
            Command::ConfirmAcceptance { requirement_id, accepted, comment } => {
                let requirement = self.own_requirement(buyer, requirement_id)?;
                if requirement.status != RequirementStatus::Delivered {
                    return Err(requirement_state(
                        requirement,
                        "only a delivered requirement can be accepted or rejected",
                    ));
                }
                let requirement = self.requirements.get_mut(requirement_id).expect("checked above");
                if *accepted {
                    requirement.status = RequirementStatus::Completed;
                } else {
                    requirement.status = RequirementStatus::Accepted;
                    requirement.rejections += 1;
                }
                let action = if *accepted { "acceptance confirmed" } else { "delivery rejected" };
                step(requirement, at, &buyer.name, action, comment.clone());
                Ok(requirement_outcome(requirement))
            }
            Command::AppealRequirement { requirement_id, reason } => {
                text("reason", reason)?;
                let requirement = self.own_requirement(buyer, requirement_id)?;
                if matches!(requirement.status, RequirementStatus::Completed | RequirementStatus::Appealed) {
                    return Err(requirement_state(requirement, "it cannot be appealed"));
                }
                if requirement.rejections < APPEAL_REJECTIONS && at - requirement.last_activity_at < APPEAL_IDLE_MS {
                    return Err(MarketError::AppealTooEarly(requirement_id.clone()));
                }
                let requirement = self.requirements.get_mut(requirement_id).expect("checked above");
                requirement.status = RequirementStatus::Appealed;
                step(requirement, at, &buyer.name, "appealed", Some(reason.clone()));
                Ok(requirement_outcome(requirement))
            }
            Command::QueryDeliveryProcess { requirement_id } => {
                Ok(requirement_outcome(self.own_requirement(buyer, requirement_id)?))
            }
            Command::QueryPrivateOfferList => {
                let offers: Vec<Value> = self
                    .private_offers
                    .values()
                    .filter(|offer| offer.buyer_account_id == buyer.account_id)
                    .map(|offer| offer_json(offer, at))
                    .collect();
                Ok(Outcome::listing(json!({ "total": offers.len(), "private_offers": offers })))
            }
            Command::QueryPrivateOfferDetail { offer_id } => {
                let offer = self.visible_offer(buyer, offer_id)?;
                let name = self.products.get(&offer.product_id).map(|product| product.name.clone());
                Ok(Outcome::of(offer_json(offer, at), offer_id, name))
            }
            Command::AddFavorites { product_id } => {
                let product =
                    self.products.get(product_id).ok_or_else(|| MarketError::not_found("product", product_id))?;
                let name = product.name.clone();
                let favorites = self.favorites.entry(buyer.id.clone()).or_default();
                if favorites.contains_key(product_id) {
                    return Err(MarketError::AlreadyExists(format!("product {product_id} is already a favorite")));
                }
                let favorite = Favorite { product_id: product_id.clone(), added_at: at };
                let outcome = Outcome::of(to_json(&favorite), product_id, name);
                favorites.insert(product_id.clone(), favorite);
                Ok(outcome)
            }
            Command::DeleteFavorites { product_id } => {
                let removed = self.favorites.get_mut(&buyer.id).and_then(|favorites| favorites.remove(product_id));
                let favorite = removed.ok_or_else(|| MarketError::not_found("favorite", product_id))?;
                let name = self.products.get(product_id).map(|product| product.name.clone());
                Ok(Outcome::of(to_json(&favorite), product_id, name))
            }
            Command::QueryFavorites => {
                let favorites: Vec<Value> = self
                    .favorites
                    .get(&buyer.id)
                    .into_iter()
                    .flat_map(|favorites| favorites.values())
                    .map(|favorite| {
                        let mut entry = to_json(favorite);
                        entry["product_name"] = json!(self.products.get(&favorite.product_id).map(|p| &p.name));
                        entry
                    })
                    .collect();
                Ok(Outcome::listing(json!({ "total": favorites.len(), "favorites": favorites })))
            }
            Command::QueryAgreementSignList => {
                let records: Vec<Value> = self
                    .agreements
                    .values()
                    .filter(|record| record.account_id == buyer.account_id)
                    .map(to_json)
                    .collect();
                Ok(Outcome::listing(json!({ "total": records.len(), "agreements": records })))
            }
            Command::QueryAgreementSignDetail { agreement_id } => {
                let record = self
                    .agreements
                    .get(agreement_id)
                    .filter(|record| record.account_id == buyer.account_id)
                    .ok_or_else(|| MarketError::not_found("agreement sign record", agreement_id))?;
                Ok(Outcome::of(to_json(record), agreement_id, record.agreement_name.clone()))
            }
            _ => Err(MarketError::Forbidden("this operation is for sellers".to_owned())),
        }
    }

    fn serve_seller(&mut self, at: i64, seller: &User, command: &Command) -> Result<Outcome, MarketError> {
        match command {
            Command::DeliverOrder { order_id } => {
                let order = self
                    .orders
                    .get(order_id)
                    .filter(|order| self.products[&order.product_id].seller_account_id == seller.account_id)
                    .ok_or_else(|| MarketError::not_found("order", order_id))?;
                if order.status != OrderStatus::Processing || order.kind != OrderKind::New {
                    return Err(MarketError::OrderState {
                        order_id: order_id.clone(),
                        status: status_name(order.status),
                        action: "only a paid, undelivered purchase can be delivered",
                    });
                }
                let resource_id = order.resource_id.clone().expect("paid purchases have a resource");
                let order = self.orders.get_mut(order_id).expect("checked above");
                order.status = OrderStatus::Completed;
                order.completed_at = Some(at);
                let resource = self.resources.get_mut(&resource_id).expect("orders point at their resource");
                resource.access = Some(InstanceAccess {
                    url: format!("https://{}.saas.koogallery.example", resource.id),
                    admin_user: format!("admin-{}", resource.id),
                });
                let order = self.orders[order_id].clone();
                Ok(self.order_outcome(&order))
            }
            Command::ReviewUnsubscription { unsubscription_id, agree } => {
                let unsubscription = self
                    .unsubscriptions
                    .get(unsubscription_id)
                    .filter(|u| self.seller_of_resource(&u.resource_id) == Some(&seller.account_id))
                    .ok_or_else(|| MarketError::not_found("unsubscription", unsubscription_id))?;
                if unsubscription.status != UnsubscriptionStatus::Pending {
                    return Err(MarketError::UnsubscriptionDecided(unsubscription_id.clone()));
                }
                let resource_id = unsubscription.resource_id.clone();
                if *agree {
                    let resource = self.resources.get_mut(&resource_id).expect("unsubscriptions point at resources");
                    resource.status = ResourceStatus::Unsubscribed;
                    resource.ended_at = Some(at);
                }
                let unsubscription = self.unsubscriptions.get_mut(unsubscription_id).expect("checked above");
                unsubscription.status =
                    if *agree { UnsubscriptionStatus::Agreed } else { UnsubscriptionStatus::Refused };
                unsubscription.decided_at = Some(at);
                Ok(Outcome::of(to_json(&*unsubscription), unsubscription_id, Some(resource_id)))
            }
            Command::AcceptRequirement { requirement_id } => self.seller_moves_requirement(
                at,
                seller,
                requirement_id,
                RequirementStatus::Submitted,
                RequirementStatus::Accepted,
                "accepted",
                None,
            ),
            Command::RejectRequirement { requirement_id, reason } => {
                text("reason", reason)?;
                self.seller_moves_requirement(
                    at,
                    seller,
                    requirement_id,
                    RequirementStatus::Submitted,
                    RequirementStatus::Declined,
                    "declined",
                    Some(reason.clone()),
                )
            }
            Command::DeliverRequirement { requirement_id, note } => self.seller_moves_requirement(
                at,
                seller,
                requirement_id,
                RequirementStatus::Accepted,
                RequirementStatus::Delivered,
                "delivered",
                note.clone(),
            ),
            Command::CreatePrivateOffer { buyer_account_id, product_id, plan, monthly_price_cents, valid_days } => {
                let product = self
                    .products
                    .get(product_id)
                    .filter(|product| product.seller_account_id == seller.account_id)
                    .ok_or_else(|| MarketError::not_found("product", product_id))?;
                if product.plan(plan).is_none() {
                    return Err(MarketError::Invalid(format!("product {product_id} has no plan {plan}")));
                }
                if !self.accounts.contains_key(buyer_account_id) {
                    return Err(MarketError::not_found("account", buyer_account_id));
                }
                if *monthly_price_cents <= 0 || !(1..=365).contains(valid_days) {
                    return Err(MarketError::Invalid(
                        "the price must be positive and the validity 1 to 365 days".to_owned(),
                    ));
                }
                let name = product.name.clone();
                let offer = PrivateOffer {
                    id: id("offer-", self.private_offers.len()),
                    seller_account_id: seller.account_id.clone(),
                    buyer_account_id: buyer_account_id.clone(),
                    product_id: product_id.clone(),
                    plan: plan.clone(),
                    monthly_price_cents: *monthly_price_cents,
                    created_at: at,
                    valid_until: at + i64::from(*valid_days) * DAY_MS,
                };
                let outcome = Outcome::of(offer_json(&offer, at), &offer.id, name);
                self.private_offers.insert(offer.id.clone(), offer);
                Ok(outcome)
            }
            _ => Err(MarketError::Forbidden("this operation is for buyers".to_owned())),
        }
    }

    fn create_order(
        &mut self,
        at: i64,
        buyer: &User,
        product_id: &str,
        plan: &str,
        period_months: u32,
        private_offer_id: Option<&str>,
    ) -> Result<Outcome, MarketError> {
        let product = self.products.get(product_id).ok_or_else(|| MarketError::not_found("product", product_id))?;
        let listed = product
            .plan(plan)
            .ok_or_else(|| MarketError::Invalid(format!("product {product_id} has no plan {plan}")))?;
        let monthly = match private_offer_id {
            None => listed.monthly_price_cents,
            Some(offer_id) => {
                let offer = self.visible_offer(buyer, offer_id)?;
                if offer.product_id != product_id || offer.plan != plan {
                    return Err(MarketError::Invalid(format!(
                        "private offer {offer_id} is for another product or plan"
                    )));
                }
                if at > offer.valid_until {
                    return Err(MarketError::OfferExpired(offer_id.to_owned()));
                }
                offer.monthly_price_cents
            }
        };
        let amount = monthly * months(period_months)?;
        Ok(self.place_order(at, buyer, product_id, OrderKind::New, plan, period_months, amount, None, private_offer_id))
    }

    /// Records an order pending payment, with the agreement the buyer signs by placing it.
    #[allow(clippy::too_many_arguments)]
    fn place_order(
        &mut self,
        at: i64,
        buyer: &User,
        product_id: &str,
        kind: OrderKind,
        plan: &str,
        period_months: u32,
        amount_cents: i64,
        resource_id: Option<&String>,
        private_offer_id: Option<&str>,
    ) -> Outcome {
        let order_id = id("CS", self.orders.len());
        let product_name = self.products[product_id].name.clone();
        let agreement = AgreementSignRecord {
            id: id("agr-", self.agreements.len()),
            account_id: buyer.account_id.clone(),
            user_id: buyer.id.clone(),
            order_id: order_id.clone(),
            product_id: product_id.to_owned(),
            agreement_name: format!("{product_name} Service Agreement"),
            agreement_version: "1.0".to_owned(),
            signed_at: at,
        };
        let order = Order {
            id: order_id.clone(),
            account_id: buyer.account_id.clone(),
            user_id: buyer.id.clone(),
            product_id: product_id.to_owned(),
            kind,
            plan: plan.to_owned(),
            period_months,
            amount_cents,
            resource_id: resource_id.cloned(),
            private_offer_id: private_offer_id.map(str::to_owned),
            agreement_id: Some(agreement.id.clone()),
            status: OrderStatus::PendingPayment,
            created_at: at,
            paid_at: None,
            completed_at: None,
            canceled_at: None,
        };
        self.agreements.insert(agreement.id.clone(), agreement);
        let outcome = self.order_outcome(&order);
        self.orders.insert(order_id, order);
        outcome
    }

    fn unsubscribe(
        &mut self,
        at: i64,
        buyer: &User,
        resource_id: &str,
        refund_cents: i64,
        reason: &str,
    ) -> Result<Outcome, MarketError> {
        let resource = self.own_resource(buyer, resource_id)?;
        if !resource.status.is_live() {
            return Err(resource_state(resource, "it has already ended"));
        }
        let guarantee_end =
            resource.started_at + i64::from(self.products[&resource.product_id].guarantee_days) * DAY_MS;
        if at > guarantee_end {
            return Err(MarketError::GuaranteePeriodOver {
                resource_id: resource_id.to_owned(),
                ended_at: rfc3339(guarantee_end),
            });
        }
        if refund_cents <= 0 || refund_cents > resource.paid_cents {
            return Err(MarketError::RefundOutOfRange { paid_cents: resource.paid_cents });
        }
        text("reason", reason)?;
        let pending = self
            .unsubscriptions
            .values()
            .any(|u| u.resource_id == resource_id && u.status == UnsubscriptionStatus::Pending);
        if pending {
            return Err(MarketError::UnsubscriptionPending(resource_id.to_owned()));
        }
        let unsubscription = Unsubscription {
            id: id("unsub-", self.unsubscriptions.len()),
            resource_id: resource_id.to_owned(),
            account_id: buyer.account_id.clone(),
            refund_cents,
            reason: reason.to_owned(),
            status: UnsubscriptionStatus::Pending,
            created_at: at,
            decided_at: None,
        };
        let outcome = Outcome::of(to_json(&unsubscription), &unsubscription.id, Some(resource_id.to_owned()));
        self.unsubscriptions.insert(unsubscription.id.clone(), unsubscription);
        Ok(outcome)
    }

    fn query_orders(&self, buyer: &User, filter: &OrderFilter) -> Result<Outcome, MarketError> {
        let limit = filter.limit.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(MarketError::Invalid("limit must be 1 to 100".to_owned()));
        }
        if let (Some(from), Some(to)) = (filter.from, filter.to) {
            if from >= to {
                return Err(MarketError::Invalid("from must be before to".to_owned()));
            }
        }
        let mut matching: Vec<&Order> = self
            .orders
            .values()
            .filter(|order| order.account_id == buyer.account_id)
            .filter(|order| filter.status.is_none_or(|status| order.status == status))
            .filter(|order| filter.product_id.as_ref().is_none_or(|product| &order.product_id == product))
            .filter(|order| filter.from.is_none_or(|from| order.created_at >= from))
            .filter(|order| filter.to.is_none_or(|to| order.created_at < to))
            .collect();
        matching.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let page: Vec<Value> =
            matching.iter().skip(filter.offset.unwrap_or(0)).take(limit).map(|order| to_json(*order)).collect();
        Ok(Outcome::listing(json!({ "total": matching.len(), "orders": page })))
    }

    #[allow(clippy::too_many_arguments)]
    fn seller_moves_requirement(
        &mut self,
        at: i64,
        seller: &User,
        requirement_id: &str,
        from: RequirementStatus,
        to: RequirementStatus,
        action: &'static str,
        note: Option<String>,
    ) -> Result<Outcome, MarketError> {
        let requirement = self
            .requirements
            .get_mut(requirement_id)
            .filter(|requirement| requirement.seller_account_id == seller.account_id)
            .ok_or_else(|| MarketError::not_found("requirement", requirement_id))?;
        if requirement.status != from {
            return Err(requirement_state(requirement, "the seller cannot do that now"));
        }
        requirement.status = to;
        step(requirement, at, &seller.name, action, note);
        Ok(requirement_outcome(requirement))
    }

    /// Runs every platform action due by `at`, in time order, each at its own due time.
    pub fn advance_to(&mut self, at: i64) -> Vec<SystemEvent> {
        let mut events = Vec::new();
        while let Some((due_at, due)) = self.next_due().filter(|(due_at, _)| *due_at <= at) {
            events.push(match due {
                Due::Payment(order_id) => self.confirm_payment(due_at, &order_id),
                Due::ResourceLifecycle(resource_id) => self.expiry_step(due_at, &resource_id),
            });
        }
        events
    }

    /// The earliest platform action and when it is due.
    pub fn next_due_time(&self) -> Option<i64> {
        self.next_due().map(|(at, _)| at)
    }

    fn next_due(&self) -> Option<(i64, Due)> {
        let payments = self
            .orders
            .values()
            .filter(|order| order.status == OrderStatus::PendingPayment)
            .map(|order| (order.created_at + PAYMENT_DELAY_MS, Due::Payment(order.id.clone())));
        let lifecycle = self.resources.values().filter_map(|resource| {
            let due = match resource.status {
                ResourceStatus::Active => resource.expires_at,
                ResourceStatus::Expired => resource.expires_at + GRACE_PERIOD_MS,
                ResourceStatus::Frozen => resource.expires_at + GRACE_PERIOD_MS + RETENTION_PERIOD_MS,
                _ => return None,
            };
            Some((due, Due::ResourceLifecycle(resource.id.clone())))
        });
        payments.chain(lifecycle).min()
    }

    fn confirm_payment(&mut self, at: i64, order_id: &str) -> SystemEvent {
        let order = self.orders.get_mut(order_id).expect("due payments are of existing orders");
        order.paid_at = Some(at);
        let order = order.clone();
        let product = &self.products[&order.product_id];
        match order.kind {
            OrderKind::New => {
                let resource = Resource {
                    id: id("res-", self.resources.len()),
                    name: format!("{} ({})", product.name, order.plan),
                    account_id: order.account_id.clone(),
                    product_id: order.product_id.clone(),
                    order_id: order.id.clone(),
                    plan: order.plan.clone(),
                    status: ResourceStatus::Active,
                    strategy: ExpiryStrategy::ManualRenewal,
                    started_at: at,
                    expires_at: at + i64::from(order.period_months) * MONTH_MS,
                    paid_cents: order.amount_cents,
                    access: None,
                    ended_at: None,
                };
                let paid = self.orders.get_mut(order_id).expect("exists");
                paid.status = OrderStatus::Processing;
                paid.resource_id = Some(resource.id.clone());
                self.resources.insert(resource.id.clone(), resource);
            }
            OrderKind::Renewal | OrderKind::Change => {
                let resource_id = order.resource_id.clone().expect("renewals and changes name their resource");
                let resource = self.resources.get_mut(&resource_id).expect("orders point at resources");
                let paid = self.orders.get_mut(order_id).expect("exists");
                if resource.status.is_live() {
                    if order.kind == OrderKind::Renewal {
                        resource.expires_at = resource.expires_at.max(at) + i64::from(order.period_months) * MONTH_MS;
                        resource.status = ResourceStatus::Active;
                    } else {
                        resource.plan = order.plan.clone();
                    }
                    resource.paid_cents += order.amount_cents;
                    paid.status = OrderStatus::Completed;
                    paid.completed_at = Some(at);
                } else {
                    // The resource ended before the payment arrived: the payment is returned.
                    paid.status = OrderStatus::Canceled;
                    paid.canceled_at = Some(at);
                }
            }
        }
        let order = &self.orders[order_id];
        SystemEvent {
            trace_name: "confirmPayment",
            at,
            account_id: order.account_id.clone(),
            resource_id: order.id.clone(),
            resource_name: self.products[&order.product_id].name.clone(),
            details: to_json(order),
        }
    }

    fn expiry_step(&mut self, at: i64, resource_id: &str) -> SystemEvent {
        let resource = self.resources.get_mut(resource_id).expect("due resources exist");
        let trace_name = match (resource.status, resource.strategy) {
            (ResourceStatus::Active, ExpiryStrategy::AutoRenewal) => "autoRenewResource",
            (ResourceStatus::Active, ExpiryStrategy::ReleaseAtExpiry) | (ResourceStatus::Frozen, _) => {
                "releaseResource"
            }
            (ResourceStatus::Active, ExpiryStrategy::ManualRenewal) => "expireResource",
            (ResourceStatus::Expired, _) => "freezeResource",
            (status, _) => unreachable!("a {status:?} resource has no lifecycle step"),
        };
        match trace_name {
            "autoRenewResource" => return self.auto_renew(at, resource_id),
            "releaseResource" => {
                resource.status = ResourceStatus::Released;
                resource.ended_at = Some(at);
            }
            "expireResource" => resource.status = ResourceStatus::Expired,
            _ => resource.status = ResourceStatus::Frozen,
        }
        SystemEvent {
            trace_name,
            at,
            account_id: resource.account_id.clone(),
            resource_id: resource.id.clone(),
            resource_name: resource.name.clone(),
            details: to_json(&*resource),
        }
    }

    /// Places and pays a one-month renewal order for an auto-renewing resource at its expiry.
    fn auto_renew(&mut self, at: i64, resource_id: &str) -> SystemEvent {
        let resource = &self.resources[resource_id];
        let price = self.products[&resource.product_id].plan(&resource.plan).map_or(0, |plan| plan.monthly_price_cents);
        let order = Order {
            id: id("CS", self.orders.len()),
            account_id: resource.account_id.clone(),
            user_id: "system".to_owned(),
            product_id: resource.product_id.clone(),
            kind: OrderKind::Renewal,
            plan: resource.plan.clone(),
            period_months: 1,
            amount_cents: price,
            resource_id: Some(resource_id.to_owned()),
            private_offer_id: None,
            agreement_id: None,
            status: OrderStatus::Completed,
            created_at: at,
            paid_at: Some(at),
            completed_at: Some(at),
            canceled_at: None,
        };
        let resource = self.resources.get_mut(resource_id).expect("exists");
        resource.expires_at += MONTH_MS;
        resource.paid_cents += price;
        let event = SystemEvent {
            trace_name: "autoRenewResource",
            at,
            account_id: order.account_id.clone(),
            resource_id: order.id.clone(),
            resource_name: resource.name.clone(),
            details: json!({ "order": to_json(&order), "resource_id": resource_id, "expires_at": resource.expires_at }),
        };
        self.orders.insert(order.id.clone(), order);
        event
    }

    fn own_order(&self, buyer: &User, order_id: &str) -> Result<&Order, MarketError> {
        self.orders
            .get(order_id)
            .filter(|order| order.account_id == buyer.account_id)
            .ok_or_else(|| MarketError::not_found("order", order_id))
    }

    fn own_resource(&self, buyer: &User, resource_id: &str) -> Result<&Resource, MarketError> {
        self.resources
            .get(resource_id)
            .filter(|resource| resource.account_id == buyer.account_id)
            .ok_or_else(|| MarketError::not_found("resource", resource_id))
    }

    fn own_requirement(&self, buyer: &User, requirement_id: &str) -> Result<&Requirement, MarketError> {
        self.requirements
            .get(requirement_id)
            .filter(|requirement| requirement.account_id == buyer.account_id)
            .ok_or_else(|| MarketError::not_found("requirement", requirement_id))
    }

    /// A private offer exists for its buyer's account only: anyone else is told it does not exist.
    fn visible_offer(&self, buyer: &User, offer_id: &str) -> Result<&PrivateOffer, MarketError> {
        self.private_offers
            .get(offer_id)
            .filter(|offer| offer.buyer_account_id == buyer.account_id)
            .ok_or_else(|| MarketError::not_found("private offer", offer_id))
    }

    fn seller_of_resource(&self, resource_id: &str) -> Option<&String> {
        let resource = self.resources.get(resource_id)?;
        self.products.get(&resource.product_id).map(|product| &product.seller_account_id)
    }

    fn plan_price(&self, product_id: &str, plan: &str) -> Result<i64, MarketError> {
        self.products
            .get(product_id)
            .and_then(|product| product.plan(plan))
            .map(|plan| plan.monthly_price_cents)
            .ok_or_else(|| MarketError::Invalid(format!("product {product_id} has no plan {plan}")))
    }

    fn order_outcome(&self, order: &Order) -> Outcome {
        let name = self.products.get(&order.product_id).map(|product| product.name.clone());
        Outcome::of(to_json(order), &order.id, name)
    }
}

fn resource_state(resource: &Resource, action: &'static str) -> MarketError {
    MarketError::ResourceState { resource_id: resource.id.clone(), status: status_name(resource.status), action }
}

fn requirement_state(requirement: &Requirement, action: &'static str) -> MarketError {
    MarketError::RequirementState {
        requirement_id: requirement.id.clone(),
        status: status_name(requirement.status),
        action,
    }
}

fn step(requirement: &mut Requirement, at: i64, by: &str, action: &str, note: Option<String>) {
    requirement.last_activity_at = at;
    requirement.process.push(ProcessStep { at, by: by.to_owned(), action: action.to_owned(), note });
}

fn requirement_outcome(requirement: &Requirement) -> Outcome {
    Outcome::of(to_json(requirement), &requirement.id, Some(requirement.content.chars().take(64).collect::<String>()))
}

fn offer_json(offer: &PrivateOffer, at: i64) -> Value {
    let mut body = to_json(offer);
    body["valid"] = json!(at <= offer.valid_until);
    body
}

#[cfg(test)]
mod tests;
