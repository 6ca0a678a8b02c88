//! What each KooGallery operation touches and says: the resource it names and
//! plausible request and (successful) response bodies, shaped after the
//! marketplace's buyer APIs (orders, renewals, supervision, private offers...).

use super::population::{order_id, uuid_string, Account, Instance, Population, Product, PLANS};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

/// One operation as the marketplace saw it.
pub struct Call {
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub request: Value,
    pub response: Value,
}

/// The inputs of one call.
pub struct CallContext<'a> {
    pub rng: &'a mut StdRng,
    pub population: &'a Population,
    pub account: &'a Account,
    /// When the call happened, UTC ms.
    pub time_ms: i64,
}

const ORDER_STATUSES: &[&str] = &["pending_payment", "processing", "completed", "canceled"];
const EXPIRATION_POLICIES: &[&str] = &["manual_renewal", "auto_renewal", "release_at_expiry"];
const INSTANCE_STATUSES: &[&str] = &["normal", "normal", "normal", "grace_period", "frozen"];
const PERIOD_TYPES: &[&str] = &["month", "year"];
const REASONS: &[&str] =
    &["no_longer_needed", "bought_by_mistake", "switching_product", "service_not_as_described", "budget_cut"];
const ACCEPTANCE_RESULTS: &[&str] = &["accepted", "accepted", "accepted", "rejected"];
const DELIVERY_STAGES: &[&str] = &["requirement_submitted", "seller_accepted", "delivering", "pending_acceptance"];

impl<'a> CallContext<'a> {
    /// Runs `trace_name`; panics on a name outside the marketplace catalog
    /// (the generator only draws names from it).
    pub fn call(&mut self, trace_name: &str) -> Call {
        match trace_name {
            "createOrder" => self.create_order(),
            "cancelOrder" => {
                let order = self.order();
                let reason = self.pick(REASONS);
                let request = json!({"order_id": order, "cancel_reason": reason});
                let response = json!({"order_id": order, "status": "canceled", "canceled_at": self.stamp(0)});
                Call { resource_id: Some(order), resource_name: None, request, response }
            }
            "queryOrderList" => {
                let limit = *[10, 20, 50].choose(self.rng).unwrap();
                let request = json!({"status": self.pick(ORDER_STATUSES), "offset": 0, "limit": limit,
                    "create_time_begin": self.stamp(-30 * 86_400_000)});
                let orders: Vec<Value> = (0..3)
                    .map(|_| json!({"order_id": self.order(), "status": self.pick(ORDER_STATUSES), "amount": self.amount()}))
                    .collect();
                let response = json!({"total_count": self.account.orders.len(), "orders": orders});
                Call { resource_id: None, resource_name: None, request, response }
            }
            "queryOrderDetail" => {
                let order = self.order();
                let product = self.product();
                let request = json!({"order_id": order});
                let response = json!({"order_id": order, "product_id": product.id, "product_name": product.name,
                    "sku_code": product.sku, "status": self.pick(ORDER_STATUSES), "amount": self.amount(),
                    "currency": "USD", "period_type": self.pick(PERIOD_TYPES), "period_num": self.rng.gen_range(1..13),
                    "create_time": self.stamp(-86_400_000)});
                Call { resource_id: Some(order), resource_name: Some(product.name.clone()), request, response }
            }
            "renewOrder" | "changeOrder" => self.order_on_instance(trace_name == "renewOrder"),
            "unSubscribeByNegotiation" => {
                let instance = self.instance();
                let request = json!({"order_id": instance.order_id, "resource_id": instance.id,
                    "refund_amount": self.amount(), "reason": self.pick(REASONS)});
                let response = json!({"negotiation_id": uuid_string(self.rng), "status": "seller_reviewing",
                    "deadline": self.stamp(3 * 86_400_000)});
                Call {
                    resource_id: Some(instance.id.clone()),
                    resource_name: Some(instance.name.clone()),
                    request,
                    response,
                }
            }
            "queryResourceDetail" | "querySaasResourceInstance" => {
                let instance = self.instance();
                let request = json!({"resource_id": instance.id});
                let expires_in_ms = self.rng.gen_range(1..365) * 86_400_000;
                let mut response = json!({"resource_id": instance.id, "resource_name": instance.name,
                    "order_id": instance.order_id, "product_id": self.population.products[instance.product].id,
                    "status": self.pick(INSTANCE_STATUSES), "region": "ap-southeast-3",
                    "expire_time": self.stamp(expires_in_ms)});
                if trace_name == "querySaasResourceInstance" {
                    response["access_url"] = json!(format!("https://{}.saas.example.com/console", instance.name));
                    response["admin_user"] = json!("admin");
                    response["license_seats"] = json!(self.rng.gen_range(5..500));
                } else {
                    response["expiration_policy"] = json!(self.pick(EXPIRATION_POLICIES));
                }
                Call {
                    resource_id: Some(instance.id.clone()),
                    resource_name: Some(instance.name.clone()),
                    request,
                    response,
                }
            }
            "setResourceStrategy" => {
                let instance = self.instance();
                let policy = self.pick(EXPIRATION_POLICIES);
                let request = json!({"resource_id": instance.id, "expiration_policy": policy});
                let response = json!({"resource_id": instance.id, "expiration_policy": policy,
                    "effective_time": self.stamp(0)});
                Call {
                    resource_id: Some(instance.id.clone()),
                    resource_name: Some(instance.name.clone()),
                    request,
                    response,
                }
            }
            "closeResource" => {
                let instance = self.instance();
                let request = json!({"resource_id": instance.id, "reason": self.pick(REASONS)});
                let response = json!({"resource_id": instance.id, "status": "released", "release_time": self.stamp(0)});
                Call {
                    resource_id: Some(instance.id.clone()),
                    resource_name: Some(instance.name.clone()),
                    request,
                    response,
                }
            }
            "submitRequirement" => {
                let instance = self.instance();
                let requirement = format!("REQ{:016}", self.rng.gen_range(0..10u64.pow(16)));
                let request = json!({"order_id": instance.order_id, "resource_id": instance.id,
                    "description": "Please configure SSO with our IdP and import 120 users from the attached sheet.",
                    "attachment_count": self.rng.gen_range(0..4)});
                let response = json!({"requirement_id": requirement, "status": "pending_seller_acceptance"});
                Call { resource_id: Some(requirement), resource_name: None, request, response }
            }
            "confirmAcceptance" | "queryDeliveryProcess" => {
                let requirement = self.requirement();
                let (request, response) = if trace_name == "confirmAcceptance" {
                    let result = self.pick(ACCEPTANCE_RESULTS);
                    (
                        json!({"requirement_id": requirement, "result": result, "comment": "Checked on staging."}),
                        json!({"requirement_id": requirement, "status": result, "update_time": self.stamp(0)}),
                    )
                } else {
                    (
                        json!({"requirement_id": requirement}),
                        json!({"requirement_id": requirement, "stage": self.pick(DELIVERY_STAGES),
                            "rejection_count": self.rng.gen_range(0..3), "update_time": self.stamp(-3_600_000)}),
                    )
                };
                Call { resource_id: Some(requirement), resource_name: None, request, response }
            }
            "queryPrivateOfferList" => {
                let request = json!({"offset": 0, "limit": 20, "status": "valid"});
                let offers: Vec<Value> = (0..2)
                    .map(|_| {
                        let offer = self.private_offer();
                        json!({"offer_id": offer, "product_id": self.product().id, "valid_until": self.stamp(30 * 86_400_000)})
                    })
                    .collect();
                let response = json!({"total_count": self.account.private_offers.len(), "offers": offers});
                Call { resource_id: None, resource_name: None, request, response }
            }
            "queryPrivateOfferDetail" => {
                let offer = self.private_offer();
                let product = self.product();
                let request = json!({"offer_id": offer});
                let response = json!({"offer_id": offer, "product_id": product.id, "product_name": product.name,
                    "discount_percent": self.rng.gen_range(5..40), "price": self.amount(), "currency": "USD",
                    "valid_until": self.stamp(30 * 86_400_000), "status": "valid"});
                Call { resource_id: Some(offer), resource_name: Some(product.name.clone()), request, response }
            }
            "addFavorites" | "deleteFavorites" => {
                let product = self.product();
                let favorited = trace_name == "addFavorites";
                let request = json!({"product_id": product.id});
                let response = json!({"product_id": product.id, "favorited": favorited, "favorites_count": self.rng.gen_range(0..40)});
                Call {
                    resource_id: Some(product.id.clone()),
                    resource_name: Some(product.name.clone()),
                    request,
                    response,
                }
            }
            "queryFavorites" => {
                let request = json!({"offset": 0, "limit": 20});
                let products: Vec<&str> = (0..4).map(|_| self.product().id.as_str()).collect();
                let response = json!({"total_count": self.rng.gen_range(4..40), "product_ids": products});
                Call { resource_id: None, resource_name: None, request, response }
            }
            "queryAgreementSignList" => {
                let request = json!({"offset": 0, "limit": 10});
                let agreements: Vec<Value> = self
                    .account
                    .agreements
                    .iter()
                    .take(3)
                    .map(|id| json!({"agreement_id": id, "signed_time": self.stamp(-90 * 86_400_000)}))
                    .collect();
                let response = json!({"total_count": self.account.agreements.len(), "agreements": agreements});
                Call { resource_id: None, resource_name: None, request, response }
            }
            "queryAgreementSignDetail" => {
                let agreement = self.account.agreements.choose(self.rng).unwrap().clone();
                let product = self.product();
                let request = json!({"agreement_id": agreement});
                let response = json!({"agreement_id": agreement, "product_id": product.id,
                    "agreement_name": format!("{} Service Agreement", product.name),
                    "version": format!("v{}.{}", self.rng.gen_range(1..4), self.rng.gen_range(0..10)),
                    "signed_time": self.stamp(-90 * 86_400_000)});
                Call { resource_id: Some(agreement), resource_name: Some(product.name.clone()), request, response }
            }
            other => panic!("{other} is not a marketplace operation"),
        }
    }

    fn create_order(&mut self) -> Call {
        let product = self.product();
        let order = order_id(self.rng);
        let period_num = self.rng.gen_range(1..13);
        let request = json!({"product_id": product.id, "sku_code": product.sku, "plan": self.pick(PLANS),
            "period_type": self.pick(PERIOD_TYPES), "period_num": period_num, "quantity": self.rng.gen_range(1..4),
            "is_auto_renew": self.rng.gen_bool(0.3), "region": "ap-southeast-3", "delivery": product.delivery});
        let response = json!({"order_id": order, "status": "pending_payment",
            "amount": format!("{:.2}", (product.monthly_price_cents * period_num) as f64 / 100.0),
            "currency": "USD", "create_time": self.stamp(0)});
        Call { resource_id: Some(order), resource_name: Some(product.name.clone()), request, response }
    }

    /// `renewOrder` (extends an instance) or `changeOrder` (moves it to another plan): both place a new order.
    fn order_on_instance(&mut self, renew: bool) -> Call {
        let instance = self.instance();
        let order = order_id(self.rng);
        let request = if renew {
            json!({"resource_id": instance.id, "period_type": self.pick(PERIOD_TYPES),
                "period_num": self.rng.gen_range(1..13), "is_auto_pay": true})
        } else {
            json!({"resource_id": instance.id, "target_plan": self.pick(PLANS), "target_quantity": self.rng.gen_range(1..10)})
        };
        let response = json!({"order_id": order, "status": "processing", "amount": self.amount(), "currency": "USD"});
        Call { resource_id: Some(order), resource_name: Some(instance.name.clone()), request, response }
    }

    fn pick(&mut self, options: &[&'static str]) -> &'static str {
        options.choose(self.rng).unwrap()
    }

    fn order(&mut self) -> String {
        self.account.orders.choose(self.rng).unwrap().clone()
    }

    fn product(&mut self) -> &'a Product {
        let population: &'a Population = self.population;
        population.products.choose(self.rng).unwrap()
    }

    /// An instance the account bought.
    fn instance(&mut self) -> &'a Instance {
        let account: &'a Account = self.account;
        account.instances.choose(self.rng).unwrap()
    }

    fn requirement(&mut self) -> String {
        match self.account.requirements.choose(self.rng) {
            Some(id) => id.clone(),
            None => format!("REQ{:016}", self.rng.gen_range(0..10u64.pow(16))),
        }
    }

    fn private_offer(&mut self) -> String {
        match self.account.private_offers.choose(self.rng) {
            Some(id) => id.clone(),
            None => format!("PO{:016}", self.rng.gen_range(0..10u64.pow(16))),
        }
    }

    /// A price in USD with cents, as a string (as billing APIs send money).
    fn amount(&mut self) -> String {
        format!("{}.{:02}", self.rng.gen_range(5..5_000), self.rng.gen_range(0..100))
    }

    /// An ISO-8601 UTC time `offset_ms` from the call.
    fn stamp(&self, offset_ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(self.time_ms + offset_ms)
            .expect("time in range")
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }
}
