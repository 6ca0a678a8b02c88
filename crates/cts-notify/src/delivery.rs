//! Delivery workers: take due deliveries from the [`Outbox`], send them (webhook or email), and
//! record the outcome: delivered, retried later (exponential backoff with jitter), or dead-lettered
//! once the delivery is older than the configured time.
//!
//! Webhooks are `POST`s of the message document (JSON) with the headers
//! - `X-Cts-Message-Id`: the id to deduplicate by (the same on every retry),
//! - `X-Cts-Timestamp`: UTC milliseconds of this attempt,
//! - `X-Cts-Signature`: `sha256=` and the hex HMAC-SHA256, keyed by the subscription's secret, of
//!   `{timestamp}.{body}` ([`signature`]; receivers check it with [`verify_signature`]).
//!
//! Any 2xx answer acknowledges. Emails go through the SMTP relay of `CTS_SMTP_URL` (lettre).

use crate::outbox::{Outbox, Pending};
use crate::topics::{Protocol, Subscription, Topics};
use hmac::{Hmac, Mac};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rand::Rng;
use sha2::Sha256;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

pub const MESSAGE_ID_HEADER: &str = "x-cts-message-id";
pub const TIMESTAMP_HEADER: &str = "x-cts-timestamp";
pub const SIGNATURE_HEADER: &str = "x-cts-signature";

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay after the first failure; it doubles with each further failure…
    pub initial_backoff: Duration,
    /// …up to this.
    pub max_backoff: Duration,
    /// A delivery still failing this long after it was created is dead-lettered.
    pub dead_letter_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            dead_letter_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// When to try again after failure number `attempts` (1 = the first), or `None` to dead-letter.
    /// The delay is drawn uniformly from [d/2, d] where d = initial × 2^(attempts-1), capped.
    pub fn retry_at(&self, attempts: u32, created_ms: i64, now_ms: i64, rng: &mut impl Rng) -> Option<i64> {
        let full = self.initial_backoff.saturating_mul(1 << attempts.saturating_sub(1).min(30)).min(self.max_backoff);
        let full_ms = full.as_millis().max(1) as i64;
        let delay = rng.gen_range(full_ms / 2..=full_ms);
        let deadline = created_ms + self.dead_letter_after.as_millis() as i64;
        (now_ms < deadline).then_some((now_ms + delay).min(deadline))
    }
}

/// What the delivery workers need.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub retry: RetryPolicy,
    /// Time allowed for one webhook or SMTP exchange.
    pub request_timeout: Duration,
    /// `smtp://host:port` (or `smtps://`, see lettre's URL form); `None`: email deliveries fail.
    pub smtp_url: Option<String>,
    /// The sender of notification emails.
    pub email_from: String,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(10),
            smtp_url: None,
            email_from: "cts@localhost".to_owned(),
            concurrency: 32,
        }
    }
}

/// The hex HMAC-SHA256 of `{timestamp}.{body}` keyed by `secret`, as `X-Cts-Signature` carries it (after `sha256=`).
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `header` (the `X-Cts-Signature` value) signs `timestamp` and `body` with `secret`.
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_mac) = header.strip_prefix("sha256=") else { return false };
    let Ok(expected) = hex::decode(hex_mac) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("subscription {0} no longer exists")]
    SubscriptionGone(String),
    #[error("webhook: {0}")]
    Http(#[from] reqwest::Error),
    #[error("webhook answered {0}")]
    Status(reqwest::StatusCode),
    #[error("email: no SMTP relay configured (CTS_SMTP_URL)")]
    NoSmtp,
    #[error("email: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("email: {0}")]
    Message(String),
}

/// The senders shared by every attempt.
struct Senders {
    topics: Arc<Topics>,
    http: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    email_from: lettre::message::Mailbox,
}

impl Senders {
    async fn send(&self, pending: &Pending) -> Result<(), AttemptError> {
        let delivery = &pending.delivery;
        let subscription = self
            .topics
            .subscription(&delivery.subscription_urn)
            .ok_or_else(|| AttemptError::SubscriptionGone(delivery.subscription_urn.clone()))?;
        match subscription.protocol {
            Protocol::Http | Protocol::Https => self.post(&subscription, pending).await,
            Protocol::Email => self.email(&subscription, pending).await,
        }
    }

    async fn post(&self, subscription: &Subscription, pending: &Pending) -> Result<(), AttemptError> {
        let body = serde_json::to_vec(&pending.delivery.body).expect("a JSON value serializes");
        let timestamp = cts_model::now_ms().to_string();
        let signed = format!("sha256={}", signature(&subscription.secret, &timestamp, &body));
        let response = self
            .http
            .post(&subscription.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(MESSAGE_ID_HEADER, &pending.delivery.message_id)
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signed)
            .body(body)
            .send()
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(AttemptError::Status(response.status()))
        }
    }

    async fn email(&self, subscription: &Subscription, pending: &Pending) -> Result<(), AttemptError> {
        let smtp = self.smtp.as_ref().ok_or(AttemptError::NoSmtp)?;
        let to = subscription
            .endpoint
            .parse()
            .map_err(|e: lettre::address::AddressError| AttemptError::Message(e.to_string()))?;
        let text = serde_json::to_string_pretty(&pending.delivery.body).expect("a JSON value serializes");
        let message = lettre::Message::builder()
            .from(self.email_from.clone())
            .to(to)
            .subject(&pending.delivery.subject)
            .message_id(Some(format!("<{}@cts>", pending.delivery.message_id.replace(['/', ':'], "."))))
            .body(text)
            .map_err(|e| AttemptError::Message(e.to_string()))?;
        smtp.send(message).await?;
        Ok(())
    }
}

/// The running delivery workers; [`Deliverer::shutdown`] stops them (in-flight attempts are
/// abandoned and retried after a restart: at least once).
pub struct Deliverer {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Why the workers could not start.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryStartError {
    #[error("smtp_url: {0:?} is not smtp://host[:port] (port 25 by default)")]
    SmtpUrl(String),
    #[error("email_from: {0}")]
    EmailFrom(#[from] lettre::address::AddressError),
    #[error("the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl Deliverer {
    /// Starts the workers on the current tokio runtime.
    pub fn start(
        outbox: Arc<Outbox>,
        topics: Arc<Topics>,
        config: DeliveryConfig,
    ) -> Result<Deliverer, DeliveryStartError> {
        let smtp = match &config.smtp_url {
            Some(url) => Some(smtp_transport(url, config.request_timeout)?),
            None => None,
        };
        let http = reqwest::Client::builder().timeout(config.request_timeout).build()?;
        let senders = Arc::new(Senders { topics, http, smtp, email_from: config.email_from.parse()? });
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(outbox, senders, config, wake.clone(), stopped));
        Ok(Deliverer { wake, stop, task })
    }

    /// Tells the workers new deliveries wait.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A handle to wake the workers with.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the delivery task failed");
        }
    }
}

/// The dispatcher: starts due deliveries (up to `concurrency` at once) and sleeps until the next is
/// due, new ones are enqueued, or an attempt ends.
async fn run(
    outbox: Arc<Outbox>,
    senders: Arc<Senders>,
    config: DeliveryConfig,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut busy: HashSet<String> = HashSet::new();
    let (finished_sender, mut finished) = mpsc::unbounded_channel::<String>();
    let mut attempts = tokio::task::JoinSet::new();
    loop {
        let now = cts_model::now_ms();
        let free = config.concurrency.saturating_sub(busy.len());
        for pending in outbox.due(now, free, &busy) {
            busy.insert(pending.delivery.id.clone());
            let (outbox, senders, finished, retry) =
                (outbox.clone(), senders.clone(), finished_sender.clone(), config.retry);
            attempts.spawn(async move {
                let outcome = senders.send(&pending).await;
                let id = pending.delivery.id.clone();
                let recorded = tokio::task::spawn_blocking(move || record(&outbox, &pending, outcome, retry)).await;
                if let Ok(Err(error)) = recorded {
                    tracing::error!(%error, delivery = %id, "recording a delivery outcome failed");
                }
                let _ = finished.send(id);
            });
        }
        let sleep_ms = outbox.next_due_ms(&busy).map_or(1000, |due| (due - now).clamp(0, 1000));
        tokio::select! {
            _ = stopped.changed() => break,
            _ = wake.notified() => {}
            Some(id) = finished.recv() => { busy.remove(&id); }
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)), if busy.len() < config.concurrency => {}
            Some(_) = attempts.join_next(), if !attempts.is_empty() => {}
        }
        while let Ok(id) = finished.try_recv() {
            busy.remove(&id);
        }
    }
    attempts.abort_all();
}

/// A plain SMTP transport to `smtp://host[:port]` (a relay on a trusted network; no TLS).
fn smtp_transport(url: &str, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryStartError> {
    let invalid = || DeliveryStartError::SmtpUrl(url.to_owned());
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid())?;
    let host = parsed.host_str().filter(|_| parsed.scheme() == "smtp").ok_or_else(invalid)?;
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
    Ok(builder.port(parsed.port().unwrap_or(25)).timeout(Some(timeout)).build())
}

fn record(
    outbox: &Outbox,
    pending: &Pending,
    outcome: Result<(), AttemptError>,
    retry: RetryPolicy,
) -> Result<(), crate::NotifyError> {
    let id = &pending.delivery.id;
    match outcome {
        Ok(()) => {
            outbox.delivered(id)?;
            metrics::counter!("cts_notify_deliveries_total", "outcome" => "delivered").increment(1);
            let lag_ms = cts_model::now_ms().saturating_sub(pending.delivery.created_ms).max(0);
            metrics::histogram!("cts_notify_delivery_lag_seconds").record(lag_ms as f64 / 1000.0);
            Ok(())
        }
        Err(error) => {
            let now = cts_model::now_ms();
            let retry_at = match error {
                AttemptError::SubscriptionGone(_) => None,
                _ => retry.retry_at(pending.attempts + 1, pending.delivery.created_ms, now, &mut rand::thread_rng()),
            };
            let outcome = outbox.failed(id, &error.to_string(), retry_at)?;
            let counted = if retry_at.is_some() { "retried" } else { "dead_lettered" };
            metrics::counter!("cts_notify_deliveries_total", "outcome" => counted).increment(1);
            tracing::warn!(delivery = %id, %error, attempts = pending.attempts + 1, ?outcome, "delivery failed");
            Ok(())
        }
    }
}
