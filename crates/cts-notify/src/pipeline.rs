//! [`Notifier`]: the matcher task and the delivery workers, started together.
//!
//! The matcher subscribes to the store's committed traces ([`cts_store::Store::subscribe`]), so it
//! sees only acknowledged (fsynced) traces and never slows ingest. For each group of traces it
//! matches every enabled notification ([`Rule`]), fans each match out to the subscriptions of the
//! notification's topic, and writes those deliveries together with its cursor (the newest record
//! time evaluated) into the [`Outbox`] with one fsync; then it wakes the delivery workers.
//!
//! Catch-up: at start, and whenever it lagged behind the store's broadcast, the matcher re-reads
//! the management traces of every project with an enabled notification whose operation time lies
//! within [`NotifierConfig::catch_up_window`] before its cursor or later, keeps those recorded at
//! or after the cursor minus [`RECORD_TIME_SKEW_MS`], and matches them again; the outbox drops
//! deliveries it already knows, so none is sent twice. What is not caught up: a trace recorded
//! while the matcher was behind whose operation `time` is older than the window (a reporter
//! replaying a spool hours old during an outage of cts's matcher), and data traces. On the very
//! first start the cursor begins at "now": existing history is not notified.
//!
//! Insights ([`InsightEngine`]) see every trace the matcher sees (after a history load at start);
//! each completed bucket is judged and insight traces are appended to the store, from where they
//! come back to the matcher like any trace. Before the append, the open insights and the new
//! insight traces are recorded in the outbox ([`InsightState`]); after it, the traces are cleared
//! from there. A start takes the open insights back and appends the recorded traces the store
//! lacks, so across a restart every insight starts once and ends once.

use crate::delivery::{Deliverer, DeliveryConfig, DeliveryStartError};
use crate::insights::{InsightConfig, InsightEngine, InsightState, OpenInsight};
use crate::matcher::Rule;
use crate::outbox::{Delivery, Outbox};
use crate::topics::Topics;
use cts_model::Trace;
use cts_resources::Resources;
use cts_store::{CommitGroup, Filters, Store, TraceQuery};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};

/// Record times are taken before the commit that orders traces; traces recorded this much before
/// the cursor are re-read on catch-up.
pub const RECORD_TIME_SKEW_MS: i64 = 10_000;
/// Traces read per store query while catching up.
const CATCH_UP_PAGE: usize = 1000;

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub delivery: DeliveryConfig,
    /// How far before the cursor (in operation time) catch-up looks.
    pub catch_up_window: Duration,
    /// `None`: no insights.
    pub insights: Option<InsightConfig>,
    /// The projects whose history the insight baseline loads at start (others are learned live).
    pub insight_projects: Vec<String>,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            delivery: DeliveryConfig::default(),
            catch_up_window: Duration::from_secs(3600),
            insights: Some(InsightConfig::default()),
            insight_projects: Vec::new(),
        }
    }
}

/// What the matcher works with.
#[derive(Clone)]
struct Matcher {
    store: Store,
    resources: Arc<Resources>,
    topics: Arc<Topics>,
    outbox: Arc<Outbox>,
    wake: Arc<Notify>,
}

/// The running matcher and delivery workers.
pub struct Notifier {
    deliverer: Deliverer,
    stop: watch::Sender<bool>,
    matcher: tokio::task::JoinHandle<()>,
}

impl Notifier {
    /// Starts matching and delivering on the current tokio runtime.
    pub fn start(
        store: Store,
        resources: Arc<Resources>,
        topics: Arc<Topics>,
        outbox: Arc<Outbox>,
        config: NotifierConfig,
    ) -> Result<Notifier, DeliveryStartError> {
        let deliverer = Deliverer::start(outbox.clone(), topics.clone(), config.delivery.clone())?;
        let receiver = store.subscribe();
        let matcher = Matcher { store, resources, topics, outbox, wake: deliverer.waker() };
        let (stop, stopped) = watch::channel(false);
        let matcher = tokio::spawn(matcher.run(receiver, config, stopped));
        Ok(Notifier { deliverer, stop, matcher })
    }

    /// Stops the matcher (after the group it is on) and the delivery workers.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.matcher.await {
            tracing::error!(%error, "the matcher task failed");
        }
        self.deliverer.shutdown().await;
    }
}

impl Matcher {
    async fn run(
        self,
        mut receiver: broadcast::Receiver<CommitGroup>,
        config: NotifierConfig,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut insights = config.insights.clone().map(InsightEngine::new);
        // Insight traces made but not yet in the store.
        let mut unappended = Vec::new();
        let window_ms = config.catch_up_window.as_millis() as i64;
        if let Some(engine) = &mut insights {
            let history = config.insights.as_ref().map_or(0, |c| c.history.as_millis() as i64);
            let since = cts_model::now_ms() - history;
            for project in &config.insight_projects {
                match self.read_since(project, since, None).await {
                    Ok(traces) => traces.iter().for_each(|trace| engine.observe(trace)),
                    Err(error) => tracing::error!(%error, project, "loading insight history failed"),
                }
            }
            let saved = self.outbox.insight_state();
            engine.restore(saved.open);
            unappended = saved.unappended;
        }
        self.catch_up(window_ms).await;
        let bucket = config.insights.as_ref().map_or(Duration::from_secs(60), |c| c.bucket);
        let mut ticks = tokio::time::interval(bucket.min(Duration::from_secs(1)).max(Duration::from_millis(100)));
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = ticks.tick() => {
                    let Some(engine) = &mut insights else { continue };
                    let found = engine.evaluate(cts_model::now_ms());
                    if !found.is_empty() {
                        tracing::info!(insights = found.len(), "insights found");
                    }
                    unappended.extend(found);
                    if !unappended.is_empty() {
                        unappended = self.append_insights(engine.open_insights(), unappended).await;
                    }
                }
                received = receiver.recv() => match received {
                    Ok(first) => {
                        let mut groups = vec![first];
                        while let Ok(more) = receiver.try_recv() {
                            groups.push(more);
                        }
                        if let Some(engine) = &mut insights {
                            groups.iter().flat_map(|group| group.iter()).for_each(|trace| engine.observe(trace));
                        }
                        self.evaluate(groups).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the matcher lagged behind ingest; catching up from the store");
                        self.catch_up(window_ms).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }

    /// Records the insights' state with `traces`, appends those of `traces` the store lacks, and
    /// records the state without them. Answers the traces still to append (all of them when a step failed).
    async fn append_insights(&self, open: Vec<OpenInsight>, traces: Vec<Trace>) -> Vec<Trace> {
        let this = self.clone();
        let state = InsightState { open: open.clone(), unappended: traces.clone() };
        let prepared = tokio::task::spawn_blocking(move || {
            this.outbox.record_insight_state(state.clone())?;
            let mut missing = Vec::new();
            for trace in state.unappended {
                if this.store.get(&trace.project_id, &trace.trace_id)?.is_none() {
                    missing.push(trace);
                }
            }
            Ok::<_, crate::NotifyError>(missing)
        })
        .await
        .unwrap_or_else(|error| Err(crate::NotifyError::Task(error.to_string())));
        let missing = match prepared {
            Ok(missing) => missing,
            Err(error) => {
                tracing::error!(%error, "recording insight state failed; retrying at the next tick");
                return traces;
            }
        };
        if !missing.is_empty() {
            if let Err(error) = self.store.append(missing.clone()).await {
                tracing::error!(%error, "appending insight traces failed; retrying at the next tick");
                return missing;
            }
        }
        let outbox = self.outbox.clone();
        let state = InsightState { open, unappended: Vec::new() };
        match tokio::task::spawn_blocking(move || outbox.record_insight_state(state)).await {
            Ok(Ok(())) => {}
            // The store has them: a start after this finds them there and does not append them again.
            Ok(Err(error)) => tracing::error!(%error, "clearing appended insight traces from the outbox failed"),
            Err(error) => tracing::error!(%error, "the insight state task failed"),
        }
        Vec::new()
    }

    /// Matches the traces of `groups` (commit groups, shared with the store) and stores the deliveries and
    /// the new cursor (retrying until the outbox takes them).
    async fn evaluate(&self, groups: Vec<CommitGroup>) {
        let cursor = groups.iter().flat_map(|group| group.iter()).map(|trace| trace.record_time).max();
        let this = self.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let deliveries = this.deliveries(groups.iter().flat_map(|group| group.iter()));
            this.outbox.enqueue(deliveries, cursor)
        })
        .await;
        match outcome {
            Ok(Ok(0)) => {}
            Ok(Ok(added)) => {
                tracing::debug!(added, "deliveries enqueued");
                self.wake.notify_one();
            }
            Ok(Err(error)) => tracing::error!(%error, "writing the outbox failed; the next catch-up retries"),
            Err(error) => tracing::error!(%error, "the matcher's task failed"),
        }
    }

    /// The deliveries `traces` call for.
    fn deliveries<'t>(&self, traces: impl Iterator<Item = &'t Trace>) -> Vec<Delivery> {
        let rules: Vec<Rule> = self.resources.enabled_notifications().into_iter().map(Rule::new).collect();
        let mut deliveries = Vec::new();
        for trace in traces {
            for rule in rules.iter().filter(|rule| rule.matches(trace)) {
                let notification = &rule.notification;
                let Some(topic_urn) = &notification.topic_id else { continue };
                let message_id = format!("{}:{}", notification.notification_id, trace.trace_id);
                let user = trace.user_name().unwrap_or("-");
                let subject = format!(
                    "[CTS] {}: {} {} by {user}",
                    notification.notification_name, trace.service_type, trace.trace_name
                );
                let body = json!({
                    "message_id": message_id,
                    "type": "KeyEventNotification",
                    "notification_id": notification.notification_id,
                    "notification_name": notification.notification_name,
                    "project_id": trace.project_id,
                    "topic_urn": topic_urn,
                    "subject": subject,
                    "trace": trace,
                });
                for subscription in self.topics.subscriptions_of(topic_urn) {
                    deliveries.push(Delivery::new(
                        message_id.clone(),
                        trace.project_id.clone(),
                        subscription.subscription_urn,
                        subject.clone(),
                        body.clone(),
                    ));
                }
            }
        }
        deliveries
    }

    /// Re-reads and matches what the matcher may have missed (see the module documentation).
    async fn catch_up(&self, window_ms: i64) {
        let Some(cursor) = self.outbox.cursor_ms() else {
            let now = cts_model::now_ms();
            if let Err(error) = self.outbox.enqueue(Vec::new(), Some(now)) {
                tracing::error!(%error, "writing the first matcher cursor failed");
            }
            return;
        };
        let mut projects: Vec<String> =
            self.resources.enabled_notifications().into_iter().map(|notification| notification.project_id).collect();
        projects.sort();
        projects.dedup();
        for project in projects {
            match self.read_since(&project, cursor - window_ms, Some(cursor - RECORD_TIME_SKEW_MS)).await {
                Ok(traces) if traces.is_empty() => {}
                Ok(traces) => {
                    tracing::info!(project, traces = traces.len(), "matching traces again after a restart or lag");
                    self.evaluate(vec![Arc::new(traces)]).await;
                }
                Err(error) => tracing::error!(%error, project, "catching up from the store failed"),
            }
        }
    }

    /// The project's management traces of operation time ≥ `since_ms` (and recorded at or after
    /// `recorded_since_ms`, when given), oldest first.
    async fn read_since(
        &self,
        project: &str,
        since_ms: i64,
        recorded_since_ms: Option<i64>,
    ) -> Result<Vec<Trace>, crate::NotifyError> {
        let store = self.store.clone();
        let project = project.to_owned();
        let read = tokio::task::spawn_blocking(move || {
            let mut query = TraceQuery {
                project_id: project,
                data: false,
                tracker_name: None,
                from_ms: since_ms,
                to_ms: i64::MAX,
                filters: Filters::default(),
                after: None,
                limit: CATCH_UP_PAGE,
            };
            let mut traces = Vec::new();
            loop {
                let page = store.query(&query)?;
                let Some(last) = page.last() else { break };
                query.after = Some(cts_store::SortKey::of(last));
                let full = page.len() == CATCH_UP_PAGE;
                traces
                    .extend(page.into_iter().filter(|t| recorded_since_ms.is_none_or(|since| t.record_time >= since)));
                if !full {
                    break;
                }
            }
            traces.reverse();
            Ok::<_, crate::NotifyError>(traces)
        });
        read.await.unwrap_or_else(|error| Err(crate::NotifyError::Task(error.to_string())))
    }
}
