//! Insights: unusual API activity, as CloudTrail Insights finds it, from minutes of history.
//!
//! [`InsightEngine`] counts, per (project, service_type, trace_name), calls and errors (a trace
//! rated `warning` or `incident`) in buckets of [`InsightConfig::bucket`]. When a bucket is
//! complete it compares it with the operation's baseline: the mean calls per bucket and the error
//! rate over the earlier buckets at the same hour of day (time-of-day seasonality), or over all
//! earlier buckets while fewer than [`InsightConfig::min_history_buckets`] share that hour. A
//! bucket is anomalous when it has at least `min_calls` calls and
//! - its calls exceed `rate_factor` × max(baseline, 1) (`apiCallRateInsight`), or
//! - its error rate exceeds the baseline's by `error_rate_increase` (`apiErrorRateInsight`).
//!
//! The first anomalous bucket opens an insight, the first normal one after it closes it; each is a
//! `SystemAction` trace of service_type `CTS`, resource_type `insight`, whose `message` is the
//! JSON document of the insight (state `Start`/`End`, the insight id pairing them, the baseline and
//! observed figures, the top users and error codes of the bucket). Notifications match them like
//! any trace. An operation is judged only after `min_history_buckets` buckets of history.
//!
//! The open insights outlive a restart: [`InsightEngine::open_insights`] lists them and
//! [`InsightEngine::restore`] takes them back; the pipeline keeps them durable (with the insight
//! traces not yet appended to the store) in the outbox as an [`InsightState`], so an insight
//! opened before a restart is closed after it, and not opened twice.

use cts_model::{Trace, TraceRating, TraceType, UserInfo};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The trace names of insight traces.
pub const CALL_RATE_INSIGHT: &str = "apiCallRateInsight";
pub const ERROR_RATE_INSIGHT: &str = "apiErrorRateInsight";
/// The resource type of insight traces.
pub const INSIGHT_RESOURCE_TYPE: &str = "insight";
const HOUR_MS: i64 = 3600 * 1000;
/// Users and error codes named per insight.
const TOP: usize = 5;
/// The insight kinds, by trace name.
const KINDS: [&str; 2] = [CALL_RATE_INSIGHT, ERROR_RATE_INSIGHT];

/// An insight started and not yet ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenInsight {
    pub project_id: String,
    pub service_type: String,
    pub trace_name: String,
    /// [`CALL_RATE_INSIGHT`] or [`ERROR_RATE_INSIGHT`].
    pub insight_type: String,
    pub insight_id: String,
}

/// What insights keep durable across a restart: the open insights, and the insight traces made
/// but not yet known to be in the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InsightState {
    pub open: Vec<OpenInsight>,
    pub unappended: Vec<Trace>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InsightConfig {
    /// The counting bucket (one minute by default).
    pub bucket: Duration,
    /// How much history is kept and loaded at start.
    pub history: Duration,
    /// Buckets of history an operation needs before it is judged.
    pub min_history_buckets: usize,
    /// Calls in a bucket below which nothing is anomalous.
    pub min_calls: u64,
    /// A call rate this many times the baseline is anomalous.
    pub rate_factor: f64,
    /// An error rate this much above the baseline's (0.0-1.0) is anomalous.
    pub error_rate_increase: f64,
}

impl Default for InsightConfig {
    fn default() -> Self {
        InsightConfig {
            bucket: Duration::from_secs(60),
            history: Duration::from_secs(24 * 3600),
            min_history_buckets: 10,
            min_calls: 10,
            rate_factor: 5.0,
            error_rate_increase: 0.3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Operation {
    project_id: String,
    service_type: String,
    trace_name: String,
}

#[derive(Debug, Default)]
struct Bucket {
    calls: u64,
    errors: u64,
    users: HashMap<String, u64>,
    codes: HashMap<String, u64>,
}

#[derive(Debug)]
struct History {
    /// The first bucket this operation was seen in (or history began); `i64::MAX` before any.
    first: i64,
    buckets: BTreeMap<i64, Bucket>,
    /// The open insights by kind: their ids.
    open: HashMap<&'static str, String>,
}

impl History {
    fn unseen() -> History {
        History { first: i64::MAX, buckets: BTreeMap::new(), open: HashMap::new() }
    }
}

/// See the module documentation. Pure: time comes in with each call.
#[derive(Debug)]
pub struct InsightEngine {
    config: InsightConfig,
    operations: BTreeMap<Operation, History>,
    /// The last bucket judged.
    judged: Option<i64>,
}

impl InsightEngine {
    pub fn new(config: InsightConfig) -> InsightEngine {
        InsightEngine { config, operations: BTreeMap::new(), judged: None }
    }

    fn bucket_ms(&self) -> i64 {
        (self.config.bucket.as_millis() as i64).max(1)
    }

    /// The insights started and not yet ended, in a stable order.
    pub fn open_insights(&self) -> Vec<OpenInsight> {
        let mut open = Vec::new();
        for (operation, history) in &self.operations {
            for kind in KINDS {
                if let Some(id) = history.open.get(kind) {
                    open.push(OpenInsight {
                        project_id: operation.project_id.clone(),
                        service_type: operation.service_type.clone(),
                        trace_name: operation.trace_name.clone(),
                        insight_type: kind.to_owned(),
                        insight_id: id.clone(),
                    });
                }
            }
        }
        open
    }

    /// Takes back the insights open before a restart (kinds it does not know are skipped with a log line).
    pub fn restore(&mut self, open: Vec<OpenInsight>) {
        for insight in open {
            let Some(kind) = KINDS.into_iter().find(|kind| *kind == insight.insight_type) else {
                tracing::error!(insight_type = insight.insight_type, "an open insight of an unknown kind; dropped");
                continue;
            };
            let operation = Operation {
                project_id: insight.project_id,
                service_type: insight.service_type,
                trace_name: insight.trace_name,
            };
            let history = self.operations.entry(operation).or_insert_with(History::unseen);
            history.open.insert(kind, insight.insight_id);
        }
    }

    /// Counts a trace (insight traces themselves are not counted).
    pub fn observe(&mut self, trace: &Trace) {
        if trace.service_type == cts_model::CTS_SERVICE && trace.resource_type == INSIGHT_RESOURCE_TYPE {
            return;
        }
        let bucket = trace.time.div_euclid(self.bucket_ms());
        let operation = Operation {
            project_id: trace.project_id.clone(),
            service_type: trace.service_type.clone(),
            trace_name: trace.trace_name.clone(),
        };
        let history = self.operations.entry(operation).or_insert_with(History::unseen);
        history.first = history.first.min(bucket);
        let counts = history.buckets.entry(bucket).or_default();
        counts.calls += 1;
        if trace.trace_rating != TraceRating::Normal {
            counts.errors += 1;
            if let Some(code) = &trace.code {
                *counts.codes.entry(code.clone()).or_default() += 1;
            }
        }
        if let Some(user) = trace.user_name() {
            *counts.users.entry(user.to_owned()).or_default() += 1;
        }
    }

    /// Judges every bucket completed by `now_ms` and not judged yet; returns the insight traces
    /// that open or close. The first call only judges the last completed bucket.
    pub fn evaluate(&mut self, now_ms: i64) -> Vec<Trace> {
        let bucket_ms = self.bucket_ms();
        let last_complete = now_ms.div_euclid(bucket_ms) - 1;
        let first = self.judged.map_or(last_complete, |judged| judged + 1);
        let mut insights = Vec::new();
        for bucket in first..=last_complete {
            for (operation, history) in &mut self.operations {
                judge(&self.config, bucket_ms, operation, history, bucket, now_ms, &mut insights);
            }
            self.judged = Some(bucket);
        }
        let oldest = last_complete - (self.config.history.as_millis() as i64 / bucket_ms);
        for history in self.operations.values_mut() {
            history.buckets.retain(|&bucket, _| bucket >= oldest);
            history.first = history.first.max(oldest);
        }
        insights
    }
}

fn judge(
    config: &InsightConfig,
    bucket_ms: i64,
    operation: &Operation,
    history: &mut History,
    bucket: i64,
    now_ms: i64,
    insights: &mut Vec<Trace>,
) {
    let hour_of = |bucket: i64| (bucket * bucket_ms).div_euclid(HOUR_MS).rem_euclid(24);
    let earlier = history.first..bucket;
    if earlier.is_empty() || ((bucket - history.first) as usize) < config.min_history_buckets {
        return;
    }
    let same_hour = earlier.clone().filter(|&b| hour_of(b) == hour_of(bucket)).count();
    let seasonal = same_hour >= config.min_history_buckets;
    let in_baseline = |b: &i64| !seasonal || hour_of(*b) == hour_of(bucket);
    let baseline_buckets = if seasonal { same_hour } else { earlier.clone().count() } as f64;
    let (calls, errors) = history
        .buckets
        .range(earlier)
        .filter(|(b, _)| in_baseline(b))
        .fold((0u64, 0u64), |(calls, errors), (_, counts)| (calls + counts.calls, errors + counts.errors));
    let baseline_rate = calls as f64 / baseline_buckets;
    let baseline_error_rate = if calls == 0 { 0.0 } else { errors as f64 / calls as f64 };
    let empty = Bucket::default();
    let observed = history.buckets.get(&bucket).unwrap_or(&empty);
    let observed_error_rate = if observed.calls == 0 { 0.0 } else { observed.errors as f64 / observed.calls as f64 };
    let enough = observed.calls >= config.min_calls;
    let kinds = [
        (
            CALL_RATE_INSIGHT,
            enough && observed.calls as f64 > config.rate_factor * baseline_rate.max(1.0),
            baseline_rate,
            observed.calls as f64,
        ),
        (
            ERROR_RATE_INSIGHT,
            enough && observed_error_rate > baseline_error_rate + config.error_rate_increase,
            baseline_error_rate,
            observed_error_rate,
        ),
    ];
    for (kind, anomalous, baseline, value) in kinds {
        let open = history.open.get(kind).cloned();
        let state = match (anomalous, open) {
            (true, None) => {
                let id = uuid::Uuid::new_v4().to_string();
                history.open.insert(kind, id.clone());
                ("Start", id)
            }
            (false, Some(id)) => {
                history.open.remove(kind);
                ("End", id)
            }
            _ => continue,
        };
        let document = json!({
            "state": state.0,
            "insight_id": state.1,
            "insight_type": kind,
            "service_type": operation.service_type,
            "trace_name": operation.trace_name,
            "bucket_start": bucket * bucket_ms,
            "bucket_ms": bucket_ms,
            "baseline": baseline,
            "observed": value,
            "top_users": top(&observed.users),
            "top_error_codes": top(&observed.codes),
        });
        insights.push(insight_trace(
            &operation.project_id,
            kind,
            state.0,
            &operation.service_type,
            &operation.trace_name,
            document,
            now_ms,
        ));
    }
}

fn top(counts: &HashMap<String, u64>) -> Vec<serde_json::Value> {
    let mut sorted: Vec<(&String, &u64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    sorted.into_iter().take(TOP).map(|(name, count)| json!({"name": name, "count": count})).collect()
}

fn insight_trace(
    project_id: &str,
    kind: &str,
    state: &str,
    service_type: &str,
    trace_name: &str,
    document: serde_json::Value,
    now_ms: i64,
) -> Trace {
    Trace {
        trace_id: uuid::Uuid::new_v4().to_string(),
        trace_name: kind.to_owned(),
        trace_rating: if state == "Start" { TraceRating::Warning } else { TraceRating::Normal },
        trace_type: TraceType::SystemAction,
        service_type: cts_model::CTS_SERVICE.to_owned(),
        resource_type: INSIGHT_RESOURCE_TYPE.to_owned(),
        resource_name: Some(format!("{service_type}:{trace_name}")),
        resource_id: document["insight_id"].as_str().map(str::to_owned),
        project_id: project_id.to_owned(),
        resource_account_id: None,
        read_only: true,
        tracker_name: None,
        operation_id: None,
        source_ip: None,
        request: None,
        response: None,
        code: None,
        api_version: None,
        message: Some(document.to_string()),
        time: now_ms,
        record_time: now_ms,
        request_id: None,
        location_info: None,
        endpoint: None,
        resource_url: None,
        enterprise_project_id: None,
        user: Some(UserInfo { name: Some("system".to_owned()), ..UserInfo::default() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: i64 = 60_000;

    fn config() -> InsightConfig {
        InsightConfig {
            bucket: Duration::from_secs(60),
            history: Duration::from_secs(3 * 24 * 3600),
            min_history_buckets: 10,
            min_calls: 10,
            rate_factor: 5.0,
            error_rate_increase: 0.3,
        }
    }

    /// `calls` closeResource calls in the minute starting at `minute`, the first `errors` refused with 403.
    fn calls(engine: &mut InsightEngine, minute: i64, calls: usize, errors: usize) {
        for i in 0..calls {
            let mut trace = crate::testing::trace(minute * MINUTE_MS + i as i64);
            trace.trace_name = "closeResource".to_owned();
            if i < errors {
                trace.trace_rating = TraceRating::Warning;
                trace.code = Some("403".to_owned());
            }
            engine.observe(&trace);
        }
    }

    /// Judges the minute `minute` (the engine's first evaluation judges just the last complete bucket).
    fn judge_minute(engine: &mut InsightEngine, minute: i64) -> Vec<serde_json::Value> {
        let traces = engine.evaluate((minute + 1) * MINUTE_MS);
        traces.iter().map(|t| serde_json::from_str(t.message.as_deref().unwrap()).unwrap()).collect()
    }

    #[test]
    fn the_baseline_is_the_same_hour_of_day_once_enough_history_shares_it() {
        const DAY: i64 = 24 * 60;
        // Day 0: 2 calls a minute from 9:00, 30 a minute from 10:00 (a busy hour); nothing after 11:00.
        let history = |engine: &mut InsightEngine| {
            for minute in 0..60 {
                calls(engine, 9 * 60 + minute, 2, 0);
                calls(engine, 10 * 60 + minute, 30, 0);
            }
        };
        // Day 1, 40 calls at 10:00: usual for the busy hour.
        let mut engine = InsightEngine::new(config());
        history(&mut engine);
        calls(&mut engine, DAY + 10 * 60, 40, 0);
        assert!(judge_minute(&mut engine, DAY + 10 * 60).is_empty(), "40 calls are usual at 10:00");
        // Day 1, 40 calls at 9:00: unusual for that hour (though not for the day's mean including 10:00).
        let mut engine = InsightEngine::new(config());
        history(&mut engine);
        calls(&mut engine, DAY + 9 * 60, 40, 0);
        let insights = judge_minute(&mut engine, DAY + 9 * 60);
        assert_eq!(insights.len(), 1);
        assert_eq!(insights[0]["insight_type"], CALL_RATE_INSIGHT);
        assert_eq!(insights[0]["baseline"], 2.0, "the 9:00 baseline");
        assert_eq!(insights[0]["observed"], 40.0);
    }

    #[test]
    fn a_call_rate_insight_needs_more_than_the_factor_times_the_baseline_and_the_minimum_calls() {
        // (calls per history minute, calls in the judged minute, insight?)
        let cases = [(4, 20, false), (4, 21, true), (1, 9, false), (1, 10, true)];
        for (usual, observed, expected) in cases {
            let mut engine = InsightEngine::new(config());
            for minute in 0..20 {
                calls(&mut engine, minute, usual, 0);
            }
            calls(&mut engine, 20, observed, 0);
            let insights = judge_minute(&mut engine, 20);
            assert_eq!(!insights.is_empty(), expected, "{usual} usually, {observed} observed: {insights:?}");
        }
    }

    #[test]
    fn nothing_is_judged_before_the_minimum_history() {
        let mut engine = InsightEngine::new(config());
        for minute in 0..5 {
            calls(&mut engine, minute, 1, 0);
        }
        calls(&mut engine, 5, 100, 0);
        assert!(judge_minute(&mut engine, 5).is_empty());
    }

    #[test]
    fn an_error_rate_insight_names_the_top_error_codes() {
        let mut engine = InsightEngine::new(config());
        for minute in 0..20 {
            calls(&mut engine, minute, 10, 0);
        }
        calls(&mut engine, 20, 10, 5);
        let insights = judge_minute(&mut engine, 20);
        assert_eq!(insights.len(), 1, "{insights:?}");
        assert_eq!(insights[0]["insight_type"], ERROR_RATE_INSIGHT);
        assert_eq!((insights[0]["baseline"].as_f64(), insights[0]["observed"].as_f64()), (Some(0.0), Some(0.5)));
        assert_eq!(insights[0]["top_error_codes"][0], json!({"name": "403", "count": 5}));
    }

    #[test]
    fn an_anomaly_over_several_buckets_starts_once_and_ends_once_with_the_same_id() {
        let mut engine = InsightEngine::new(config());
        for minute in 0..20 {
            calls(&mut engine, minute, 2, 0);
        }
        let mut states = Vec::new();
        for (minute, count) in [(20, 30), (21, 30), (22, 30), (23, 2), (24, 2)] {
            calls(&mut engine, minute, count, 0);
            for insight in judge_minute(&mut engine, minute) {
                states.push((minute, insight["state"].as_str().unwrap().to_owned(), insight["insight_id"].clone()));
            }
        }
        assert_eq!(states.len(), 2, "{states:?}");
        assert_eq!((states[0].0, states[0].1.as_str()), (20, "Start"));
        assert_eq!((states[1].0, states[1].1.as_str()), (23, "End"));
        assert_eq!(states[0].2, states[1].2);
    }

    /// Regression: open insights lived only in memory; an engine restored from them ends the insight
    /// instead of starting it again.
    #[test]
    fn restored_open_insights_end_and_do_not_start_again() {
        let history = |engine: &mut InsightEngine| {
            for minute in 0..20 {
                calls(engine, minute, 2, 0);
            }
            calls(engine, 20, 30, 0);
        };
        let mut before = InsightEngine::new(config());
        history(&mut before);
        let started = judge_minute(&mut before, 20);
        assert_eq!(started[0]["state"], "Start");
        let open = before.open_insights();
        assert_eq!(open.len(), 1);
        assert_eq!(json!(open[0].insight_id), started[0]["insight_id"]);

        let mut after = InsightEngine::new(config());
        history(&mut after);
        after.restore(open.clone());
        assert_eq!(after.open_insights(), open);
        calls(&mut after, 21, 30, 0);
        assert!(judge_minute(&mut after, 21).is_empty(), "still anomalous: no second start");
        calls(&mut after, 22, 2, 0);
        let ended = judge_minute(&mut after, 22);
        assert_eq!((ended.len(), &ended[0]["state"]), (1, &json!("End")));
        assert_eq!(ended[0]["insight_id"], started[0]["insight_id"]);
        assert!(after.open_insights().is_empty());
    }
}
