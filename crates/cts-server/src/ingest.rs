//! `POST /v3/{project_id}/traces`: a batch of up to [`MAX_TRACES_PER_REQUEST`]
//! traces, each validated on its own. The valid ones are acknowledged only
//! after the store made them durable; a retried batch is accepted again but
//! stored once (the store is idempotent on trace ids).

use crate::error::ApiError;
use crate::extract::non_empty_json;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use cts_iam::Principal;
use cts_model::redact::Redactor;
use cts_model::{ErrorCode, Trace, TraceInput, ValidationError};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// The most traces one ingest request may carry.
pub const MAX_TRACES_PER_REQUEST: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestRequest<'a> {
    #[serde(borrow)]
    traces: Vec<&'a RawValue>,
}

/// Fewer bytes than the JSON of a typical trace (with its user block and request): room for a body's
/// length divided by this is reserved up front (a body of smaller traces grows the vector as usual).
const MIN_TRACE_JSON_BYTES: usize = 256;

/// The answer to an ingest request: which traces were stored (durably) and
/// which were refused, by their index in the request.
#[derive(Debug, Serialize)]
pub struct IngestResponse {
    pub accepted: Vec<AcceptedTrace>,
    pub rejected: Vec<RejectedTrace>,
}

#[derive(Debug, Serialize)]
pub struct AcceptedTrace {
    pub trace_id: String,
}

#[derive(Debug, Serialize)]
pub struct RejectedTrace {
    pub index: usize,
    pub error_code: &'static str,
    /// `field: reason`.
    pub error_msg: String,
}

/// The traces of one ingest request body, each validated on its own.
#[derive(Debug, Default)]
pub struct ValidatedBatch {
    /// The valid traces, completed for storage, in request order.
    pub valid: Vec<Trace>,
    /// The refused traces, by index in the request.
    pub rejected: Vec<RejectedTrace>,
    /// How many traces the redactor changed as they were parsed and validated; the count stays when the
    /// data-tracker check later moves some of them to `rejected`.
    pub redacted: usize,
}

impl ValidatedBatch {
    /// Keeps a parsed trace (redacted at once, while its text is in cache) or its refusal.
    fn record(&mut self, index: usize, outcome: Result<Trace, ValidationError>, redactor: Option<&Redactor>) {
        match outcome {
            Ok(mut trace) => {
                if redactor.is_some_and(|redactor| redactor.redact_trace(&mut trace)) {
                    self.redacted += 1;
                }
                self.valid.push(trace)
            }
            Err(error) => self.rejected.push(RejectedTrace {
                index,
                error_code: error.code().as_str(),
                error_msg: error.to_string(),
            }),
        }
    }
}

/// Parses an ingest body `{"traces": [...]}` and validates every trace for
/// `project_id`, recorded at `record_time`, redacting the valid ones with
/// `redactor` (`None`: kept as sent). A body that is not such an
/// envelope (or carries too many traces) fails as a whole; a bad trace is
/// only listed in [`ValidatedBatch::rejected`].
///
/// The body is read in one pass, every trace parsed straight out of the
/// envelope. Should anything in it fail to parse, the body is read again
/// trace by trace, which isolates the bad traces and words every error as if
/// each trace had been read alone: the outcome is the same either way.
pub fn validate_batch(
    body: &[u8],
    project_id: &str,
    record_time: i64,
    redactor: Option<&Redactor>,
) -> Result<ValidatedBatch, ApiError> {
    // One UTF-8 check of the whole body is cheaper than one per string.
    let Ok(text) = std::str::from_utf8(body) else {
        return validate_trace_by_trace(body, project_id, record_time, redactor);
    };
    validate_in_one_pass(text, project_id, record_time, redactor)
        .or_else(|_| validate_trace_by_trace(body, project_id, record_time, redactor))
}

/// The one-pass reading: fails on every body the trace-by-trace reading
/// would refuse or find a malformed trace in (and on a few it accepts).
fn validate_in_one_pass(
    body: &str,
    project_id: &str,
    record_time: i64,
    redactor: Option<&Redactor>,
) -> Result<ValidatedBatch, serde_json::Error> {
    // Room for the traces up front: growing the vector would move every trace parsed so far.
    let traces = (body.len() / MIN_TRACE_JSON_BYTES).clamp(1, MAX_TRACES_PER_REQUEST);
    let mut batch = ValidatedBatch { valid: Vec::with_capacity(traces), ..ValidatedBatch::default() };
    let mut deserializer = serde_json::Deserializer::from_str(body);
    Envelope { project_id, record_time, redactor, batch: &mut batch }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(batch)
}

/// The reading of a body that isolates each trace: the envelope first, as a
/// list of raw JSON texts, then each trace from its own text.
fn validate_trace_by_trace(
    body: &[u8],
    project_id: &str,
    record_time: i64,
    redactor: Option<&Redactor>,
) -> Result<ValidatedBatch, ApiError> {
    let request: IngestRequest<'_> = serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidBody(format!("the body must be a JSON object {{\"traces\": [...]}}: {e}")))?;
    if request.traces.len() > MAX_TRACES_PER_REQUEST {
        return Err(ApiError::InvalidBody(format!(
            "at most {MAX_TRACES_PER_REQUEST} traces per request, got {}",
            request.traces.len()
        )));
    }
    let mut batch = ValidatedBatch { valid: Vec::with_capacity(request.traces.len()), ..ValidatedBatch::default() };
    for (index, raw) in request.traces.iter().enumerate() {
        batch.record(
            index,
            TraceInput::from_json(raw.get()).and_then(|input| input.into_trace(project_id, record_time)),
            redactor,
        );
    }
    Ok(batch)
}

/// The one-pass reading of `{"traces": [...]}`, validating each trace as it
/// is parsed. It fails on everything [`IngestRequest`] or
/// [`TraceInput::from_json`] would refuse (and on some bodies they accept,
/// such as escaped keys: those are left to the trace-by-trace reading).
struct Envelope<'a> {
    project_id: &'a str,
    record_time: i64,
    redactor: Option<&'a Redactor>,
    batch: &'a mut ValidatedBatch,
}

impl<'de> DeserializeSeed<'de> for Envelope<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Envelope<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object {\"traces\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match map.next_key::<&str>()? {
            Some("traces") => map.next_value_seed(TraceList(self))?,
            Some(other) => return Err(A::Error::unknown_field(other, &["traces"])),
            None => return Err(A::Error::missing_field("traces")),
        }
        match map.next_key::<&str>()? {
            None => Ok(()),
            Some(_) => Err(A::Error::custom("more than one key")),
        }
    }
}

/// The `traces` array of an [`Envelope`].
struct TraceList<'a>(Envelope<'a>);

impl<'de> DeserializeSeed<'de> for TraceList<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TraceList<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        write!(formatter, "an array of at most {MAX_TRACES_PER_REQUEST} traces")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Envelope { project_id, record_time, redactor, batch } = self.0;
        let mut index = 0;
        while let Some(input) = seq.next_element::<TraceInput>()? {
            if index == MAX_TRACES_PER_REQUEST {
                return Err(A::Error::custom(format_args!("more than {MAX_TRACES_PER_REQUEST} traces")));
            }
            batch.record(index, input.into_trace(project_id, record_time), redactor);
            index += 1;
        }
        Ok(())
    }
}

pub(crate) async fn ingest(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    let body = non_empty_json(&headers, body)?;
    let mut batch = validate_batch(&body, &principal.project_id, cts_model::now_ms(), state.redactor.as_deref())?;
    metrics::counter!("cts_ingest_redacted_traces_total").increment(batch.redacted as u64);
    if batch.valid.iter().any(Trace::is_data) {
        batch = require_data_trackers(batch, &state.resources.data_trackers(&principal.project_id));
    }
    let ValidatedBatch { valid, rejected, .. } = batch;
    metrics::counter!("cts_ingest_rejected_traces_total").increment(rejected.len() as u64);
    let accepted = valid.iter().map(|trace| AcceptedTrace { trace_id: trace.trace_id.clone() }).collect();
    if !valid.is_empty() {
        let outcome = state.store.append(valid).await.map_err(ApiError::WriteFailed)?;
        metrics::counter!("cts_ingest_stored_traces_total").increment(outcome.stored as u64);
        metrics::counter!("cts_ingest_duplicate_traces_total").increment(outcome.duplicates as u64);
        tracing::debug!(stored = outcome.stored, duplicates = outcome.duplicates, "traces appended");
    }
    Ok(Json(IngestResponse { accepted, rejected }))
}

/// Moves every data trace whose `tracker_name` is not one of the project's
/// `data_trackers` from the valid traces to the rejected ones (CTS.0214),
/// keeping request indices and their order.
fn require_data_trackers(batch: ValidatedBatch, data_trackers: &[(String, bool)]) -> ValidatedBatch {
    let ValidatedBatch { valid, rejected, redacted } = batch;
    let mut checked = ValidatedBatch { valid: Vec::with_capacity(valid.len()), rejected: Vec::new(), redacted };
    let mut rejected = rejected.into_iter().peekable();
    let mut index = 0;
    for trace in valid {
        // The valid traces fill the request indices the rejected ones leave.
        while let Some(earlier) = rejected.next_if(|earlier| earlier.index == index) {
            checked.rejected.push(earlier);
            index += 1;
        }
        let tracker = trace.tracker_name.as_deref().filter(|_| trace.is_data());
        let enabled = tracker.map(|name| data_trackers.iter().find(|(tracker, _)| tracker == name).map(|(_, on)| *on));
        match (tracker, enabled) {
            (Some(name), Some(None)) => checked.rejected.push(RejectedTrace {
                index,
                error_code: ErrorCode::TrackerNotFound.as_str(),
                error_msg: format!("tracker_name: the project has no data tracker named {name}"),
            }),
            (Some(name), Some(Some(false))) => checked.rejected.push(RejectedTrace {
                index,
                error_code: ErrorCode::InvalidTrackerStatus.as_str(),
                error_msg: format!("tracker_name: the data tracker {name} is disabled and records nothing"),
            }),
            _ => checked.valid.push(trace),
        }
        index += 1;
    }
    checked.rejected.extend(rejected);
    checked
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PROJECT_ID: &str = "proj-1";
    const NOW: i64 = 1_790_000_000_000;

    fn trace(n: u32) -> serde_json::Value {
        json!({
            "trace_id": format!("00000000-0000-4000-8000-{n:012}"),
            "trace_name": "createOrder",
            "service_type": "marketplace",
            "resource_type": "Order",
            "request": "{\"productId\":\"p-1\",\"note\":\"caf\u{e9} \\\"x\\\"\"}",
            "code": "201",
            "time": NOW - 1000,
            "user": {"name": "alice", "domain": {"id": "d-1"}, "invoked_by": ["service.console"]},
        })
    }

    fn envelope(traces: Vec<serde_json::Value>) -> String {
        json!({ "traces": traces }).to_string()
    }

    /// The stored traces and the (index, message) of each rejected one.
    type Accepted = (Vec<Trace>, Vec<(usize, String)>);

    /// What a client sees of a batch: what was accepted, or the error message.
    fn outcome(result: Result<ValidatedBatch, ApiError>) -> Result<Accepted, String> {
        result
            .map(|batch| (batch.valid, batch.rejected.into_iter().map(|r| (r.index, r.error_msg)).collect()))
            .map_err(|error| error.client_message())
    }

    #[test]
    fn one_pass_and_trace_by_trace_readings_agree() {
        let mut unknown_field = trace(2);
        unknown_field["colour"] = json!("red");
        let mut inline_request = trace(3);
        inline_request["request"] = json!({"productId": "p-1", "nested": [1, {"a": null}]});
        let mut bad_rating = trace(4);
        bad_rating["trace_rating"] = json!("fatal");
        let mut deep_request = trace(5);
        deep_request["request"] = serde_json::from_str(&format!("{}{}", "[".repeat(126), "]".repeat(126))).unwrap();
        let valid = envelope(vec![trace(0), trace(1)]);
        // (body, whether the one-pass reading takes it)
        let cases: Vec<(Vec<u8>, bool)> = vec![
            (valid.clone().into_bytes(), true),
            (envelope(vec![trace(0), bad_rating, json!({"trace_name": "x"}), trace(0)]).into_bytes(), true),
            (envelope(vec![trace(0), inline_request]).into_bytes(), true),
            (envelope(vec![]).into_bytes(), true),
            (format!(" \n{{ \"traces\" : [ {} ] }}\t", trace(6)).into_bytes(), true),
            (envelope(vec![trace(0), unknown_field, json!(42), json!(null)]).into_bytes(), false),
            (envelope(vec![deep_request, trace(0)]).into_bytes(), false),
            (envelope(vec![trace(0); MAX_TRACES_PER_REQUEST]).into_bytes(), true),
            (envelope(vec![trace(0); MAX_TRACES_PER_REQUEST + 1]).into_bytes(), false),
            (format!(r#"{{"traces":[{}],"more":1}}"#, trace(0)).into_bytes(), false),
            (format!(r#"{{"traces":[{}],"traces":[]}}"#, trace(0)).into_bytes(), false),
            (format!(r#"{{"tr\u0061ces":[{}]}}"#, trace(0)).into_bytes(), false),
            (
                br#"{"traces":[{"trace_id":"00000000-0000-4000-8000-000000000009","trace_name":"cre\u0061teOrder",
                    "service_type":"marketplace","resource_type":"Order","message":"\ud83d\ude00\n\t\u0085"}]}"#
                    .to_vec(),
                true,
            ),
            (format!(r#"[[{}]]"#, trace(0)).into_bytes(), false),
            (format!(r#"{{"traces":[{}]}} x"#, trace(0)).into_bytes(), false),
            (format!(r#"{{"traces":[{},]}}"#, trace(0)).into_bytes(), false),
            (r#"{"traces":[{"trace_name":"a","trace_name":"b"}]}"#.as_bytes().to_vec(), false),
            (r#"{"traces":null}"#.as_bytes().to_vec(), false),
            (r#"{"traces":{}}"#.as_bytes().to_vec(), false),
            (b"{}".to_vec(), false),
            (b"not json".to_vec(), false),
            ([&valid.as_bytes()[..40], b"\xff\xfe", &valid.as_bytes()[40..]].concat(), false),
        ];
        for (body, one_pass) in cases {
            let shown = String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
            let taken =
                std::str::from_utf8(&body).is_ok_and(|text| validate_in_one_pass(text, PROJECT_ID, NOW, None).is_ok());
            assert_eq!(taken, one_pass, "one-pass reading of {shown}");
            assert_eq!(
                outcome(validate_batch(&body, PROJECT_ID, NOW, None)),
                outcome(validate_trace_by_trace(&body, PROJECT_ID, NOW, None)),
                "{shown}"
            );
        }
    }

    #[test]
    fn both_readings_redact_each_valid_trace_as_it_is_parsed_and_count_it() {
        let mut secret = trace(1);
        secret["request"] = json!({"password": "hunter2", "productId": "p-1"});
        let body = envelope(vec![trace(0), secret]);
        let redactor = Redactor::default();
        let readings = [
            validate_in_one_pass(&body, PROJECT_ID, NOW, Some(&redactor)).unwrap(),
            validate_trace_by_trace(body.as_bytes(), PROJECT_ID, NOW, Some(&redactor)).unwrap(),
        ];
        for batch in readings {
            assert_eq!(batch.redacted, 1);
            let request = batch.valid[1].request.as_deref().unwrap();
            assert!(!request.contains("hunter2") && request.contains(cts_model::redact::MASK), "{request}");
            assert_eq!(batch.valid[0].request.as_deref(), trace(0)["request"].as_str());
        }
        let kept = validate_batch(body.as_bytes(), PROJECT_ID, NOW, None).unwrap();
        assert_eq!(kept.redacted, 0);
        assert!(kept.valid[1].request.as_deref().unwrap().contains("hunter2"));
    }

    #[test]
    fn bad_traces_are_rejected_alone_by_index() {
        let body = envelope(vec![trace(0), json!({"trace_name": "x"}), trace(1), json!(42)]);
        let (valid, rejected) = outcome(validate_batch(body.as_bytes(), PROJECT_ID, NOW, None)).unwrap();
        assert_eq!(
            valid.iter().map(|t| t.trace_id.as_str()).collect::<Vec<_>>(),
            ["00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000001"]
        );
        assert_eq!(
            rejected,
            [
                (1, "service_type: is required".to_owned()),
                (3, "trace: invalid type: integer `42`, expected struct TraceInput at line 1 column 2".to_owned())
            ]
        );
    }

    #[test]
    fn data_traces_without_their_enabled_data_tracker_are_rejected_in_place() {
        let data = |n: u32, tracker: &str| {
            let mut trace = trace(n);
            trace["trace_type"] = json!("ObsSDK");
            trace["tracker_name"] = json!(tracker);
            trace
        };
        let body = envelope(vec![
            json!(1),
            data(1, "orders"),
            data(2, "billing"),
            json!({"trace_name": "x"}),
            trace(3),
            data(4, "billing"),
            json!(null),
            data(5, "paused"),
        ]);
        let batch = validate_batch(body.as_bytes(), PROJECT_ID, NOW, None).unwrap();
        let checked = require_data_trackers(batch, &[("orders".to_owned(), true), ("paused".to_owned(), false)]);
        let valid: Vec<_> = checked.valid.iter().map(|t| t.trace_id.chars().last().unwrap()).collect();
        assert_eq!(valid, ['1', '3']);
        let rejected: Vec<_> = checked.rejected.iter().map(|r| (r.index, r.error_code)).collect();
        assert_eq!(
            rejected,
            [(0, "CTS.0003"), (2, "CTS.0214"), (3, "CTS.0003"), (5, "CTS.0214"), (6, "CTS.0003"), (7, "CTS.0205")]
        );
    }
}
