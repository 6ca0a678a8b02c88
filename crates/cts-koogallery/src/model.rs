//! The marketplace's records: accounts and users, products, orders, resources, unsubscriptions, requirements, private
//! offers, agreement sign records. Plain data (serde), no behaviour beyond small state predicates. Money is in cents,
//! times are UTC milliseconds.

use serde::{Deserialize, Serialize};

pub const MINUTE_MS: i64 = 60 * 1000;
pub const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
/// A billing month.
pub const MONTH_MS: i64 = 30 * DAY_MS;
/// How long after an order is placed the payment platform confirms its payment.
pub const PAYMENT_DELAY_MS: i64 = 10 * MINUTE_MS;
/// After expiry, a resource keeps working this long (it can still be renewed).
pub const GRACE_PERIOD_MS: i64 = 15 * DAY_MS;
/// After the grace period, a frozen resource keeps its data this long before it is released.
pub const RETENTION_PERIOD_MS: i64 = 15 * DAY_MS;
/// A requirement idle this long may be appealed.
pub const APPEAL_IDLE_MS: i64 = 5 * DAY_MS;
/// A requirement whose deliveries the buyer rejected this many times may be appealed.
pub const APPEAL_REJECTIONS: u32 = 3;

/// An account (a domain), holding buyers, sellers or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Buyer,
    Seller,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of `salt:password`; the password itself is never stored.
    pub password_hash: String,
    pub salt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub monthly_price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub seller_account_id: String,
    pub name: String,
    pub plans: Vec<Plan>,
    /// Days after purchase within which a negotiated unsubscription is possible.
    pub guarantee_days: u32,
}

impl Product {
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|plan| plan.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// A first purchase: creates a resource once paid.
    New,
    /// Extends a resource's expiry once paid.
    Renewal,
    /// Changes a resource's plan once paid (the amount is the price difference, negative for a refund).
    Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    /// Paid, not yet delivered.
    Processing,
    Completed,
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub account_id: String,
    pub user_id: String,
    pub product_id: String,
    pub kind: OrderKind,
    pub plan: String,
    pub period_months: u32,
    pub amount_cents: i64,
    /// The resource the order created (once paid) or acts on.
    pub resource_id: Option<String>,
    pub private_offer_id: Option<String>,
    /// The agreement the buyer signed by placing it; `None` for orders the platform placed (auto-renewal).
    pub agreement_id: Option<String>,
    pub status: OrderStatus,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub canceled_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    Active,
    /// Past expiry, inside the grace period: still working, renewable.
    Expired,
    /// Past the grace period: not working, data retained, renewable.
    Frozen,
    Released,
    /// Disabled by its buyer.
    Closed,
    /// Ended by an agreed negotiated unsubscription.
    Unsubscribed,
}

impl ResourceStatus {
    /// Renewable and changeable: the resource has not ended.
    pub fn is_live(self) -> bool {
        matches!(self, ResourceStatus::Active | ResourceStatus::Expired | ResourceStatus::Frozen)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryStrategy {
    ManualRenewal,
    AutoRenewal,
    ReleaseAtExpiry,
}

/// How a delivered SaaS instance is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceAccess {
    pub url: String,
    pub admin_user: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub product_id: String,
    pub order_id: String,
    pub plan: String,
    pub status: ResourceStatus,
    pub strategy: ExpiryStrategy,
    pub started_at: i64,
    pub expires_at: i64,
    /// Everything paid for it so far (the ceiling of a negotiated refund).
    pub paid_cents: i64,
    /// Set when the seller delivers the first order.
    pub access: Option<InstanceAccess>,
    pub ended_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsubscriptionStatus {
    Pending,
    Agreed,
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscription {
    pub id: String,
    pub resource_id: String,
    pub account_id: String,
    pub refund_cents: i64,
    pub reason: String,
    pub status: UnsubscriptionStatus,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequirementStatus {
    Submitted,
    Accepted,
    /// The seller declined the requirement.
    Declined,
    Delivered,
    Completed,
    Appealed,
}

/// One step of a requirement's delivery process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStep {
    pub at: i64,
    pub by: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub id: String,
    pub resource_id: String,
    pub account_id: String,
    pub seller_account_id: String,
    pub content: String,
    pub status: RequirementStatus,
    /// How many deliveries the buyer rejected.
    pub rejections: u32,
    pub last_activity_at: i64,
    pub process: Vec<ProcessStep>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateOffer {
    pub id: String,
    pub seller_account_id: String,
    pub buyer_account_id: String,
    pub product_id: String,
    pub plan: String,
    pub monthly_price_cents: i64,
    pub created_at: i64,
    pub valid_until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementSignRecord {
    pub id: String,
    pub account_id: String,
    pub user_id: String,
    pub order_id: String,
    pub product_id: String,
    pub agreement_name: String,
    pub agreement_version: String,
    pub signed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Favorite {
    pub product_id: String,
    pub added_at: i64,
}
