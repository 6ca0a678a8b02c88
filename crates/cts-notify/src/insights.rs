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
