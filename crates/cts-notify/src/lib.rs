//! Key event notifications, delivered within a second of a trace's acknowledgement, through
//! SMN-style topics; and insights into unusual API activity.
//!
//! - [`matcher`]: whether a notification fires for a trace ([`Rule`]).
//! - [`topics`]: topics and subscriptions per project ([`Topics`], `notify/topics.json`).
//! - [`outbox`]: the persistent outbox of deliveries and the matcher's cursor ([`Outbox`], `notify/outbox.log`).
//! - [`delivery`]: the workers sending webhooks (HMAC-SHA256 signed) and emails (SMTP), with
//!   retries, backoff and jitter, and dead letters ([`Deliverer`]).
//! - [`insights`]: call-rate and error-rate baselines and the insight traces ([`InsightEngine`]).
//! - [`pipeline`]: the matcher task tying the store's committed traces to the outbox ([`Notifier`]).
//!
//! No HTTP server types: `cts-server` exposes topics, dead letters and insights.

pub mod delivery;
mod error;
pub mod insights;
pub mod matcher;
pub mod outbox;
pub mod pipeline;
#[cfg(test)]
mod testing;
pub mod topics;

pub use delivery::{signature, verify_signature, Deliverer, DeliveryConfig, RetryPolicy};
pub use error::NotifyError;
pub use insights::{InsightConfig, InsightEngine, InsightState, OpenInsight};
pub use matcher::Rule;
pub use outbox::{DeadLetter, Delivery, Outbox};
pub use pipeline::{Notifier, NotifierConfig};
pub use topics::{Protocol, Subscription, Topic, Topics};
