//! Trackers, tags, quotas and operations in-process: every error code of the
//! tracker API, the response shapes the SDK reads, partial updates,
//! persistence across a reopen, isolation between projects, and data traces
//! recorded only under an existing data tracker.

use crate::common::{
    error_code, harness, open_resources, send, trace_json, Call, Harness, OTHER_ACCESS_KEY, OTHER_PROJECT_ID,
    OTHER_SECRET_KEY, PROJECT_ID,
};
use axum::http::StatusCode;
use cts_server::AppState;
use serde_json::{json, Value};
use std::sync::Arc;

const TRACKER: &str = "/v3/0123456789abcdef0123456789abcdef/tracker";
const TRACKERS: &str = "/v3/0123456789abcdef0123456789abcdef/trackers";

fn data_tracker(name: &str) -> Value {
    json!({
        "tracker_type": "data",
        "tracker_name": name,
        "obs_info": {"bucket_name": "trace-files", "file_prefix_name": "orders", "bucket_lifecycle": 30},
        "data_bucket": {"data_bucket_name": "watched-bucket", "data_event": ["WRITE", "READ"]},
    })
}

/// `base` with the fields of `changes` set (a null removes the field).
fn with(mut base: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => base.as_object_mut().unwrap().remove(key),
            _ => base.as_object_mut().unwrap().insert(key.clone(), value.clone()),
        };
    }
    base
}

async fn call(harness: &Harness, method: &str, path: &str, query: &[(&str, &str)], body: Value) -> (StatusCode, Value) {
    let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).unwrap() };
    let (status, _, json) = send(harness, Call::new(method, path).query(query).body(body).request()).await;
    (status, json)
}

async fn create(harness: &Harness, body: Value) -> Value {
    let (status, tracker) = call(harness, "POST", TRACKER, &[], body).await;
    assert_eq!(status, StatusCode::CREATED, "{tracker}");
    tracker
}

async fn list(harness: &Harness, query: &[(&str, &str)]) -> Vec<Value> {
    let (status, body) = call(harness, "GET", TRACKERS, query, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["trackers"].as_array().unwrap().clone()
}

fn names(trackers: &[Value]) -> Vec<&str> {
    trackers.iter().map(|t| t["tracker_name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn every_tracker_error_has_its_status_and_cts_code() {
    let harness = harness();
    let orders = create(&harness, data_tracker("orders")).await;
    let tags_of = |id: &str| format!("/v3/{PROJECT_ID}/cts-tracker/{id}/tags/create");
    let orders_tags = tags_of(orders["id"].as_str().unwrap());
    let unknown_tags = tags_of("00000000-0000-4000-8000-000000000000");
    let update = |changes: Value| with(json!({"tracker_type": "data", "tracker_name": "orders"}), changes);
    let obs = |obs_info: Value| with(data_tracker("new"), json!({"obs_info": obs_info}));
    let bucket = |data_bucket: Value| with(data_tracker("new"), json!({"data_bucket": data_bucket}));
    let long_name = "a".repeat(33);
    let long_prefix = "p".repeat(65);
    /// (case, method, path, query, body, status, CTS code)
    type Case = (&'static str, &'static str, String, Vec<(&'static str, &'static str)>, Value, u16, &'static str);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("create system", "POST", TRACKER.into(), vec![], json!({"tracker_type": "system"}), 400, "CTS.0201"),
        ("create bad type", "POST", TRACKER.into(), vec![], with(data_tracker("x"), json!({"tracker_type": "audit"})), 400, "CTS.0202"),
        ("list bad type", "GET", TRACKERS.into(), vec![("tracker_type", "audit")], Value::Null, 400, "CTS.0202"),
        ("delete system", "DELETE", TRACKERS.into(), vec![("tracker_type", "system"), ("tracker_name", "system")], Value::Null, 400, "CTS.0202"),
        ("name starts with _", "POST", TRACKER.into(), vec![], data_tracker("_orders"), 400, "CTS.0203"),
        ("name starts with -", "POST", TRACKER.into(), vec![], data_tracker("-orders"), 400, "CTS.0203"),
        ("name too long", "POST", TRACKER.into(), vec![], data_tracker(&long_name), 400, "CTS.0203"),
        ("name with a dot", "POST", TRACKER.into(), vec![], data_tracker("a.b"), 400, "CTS.0203"),
        ("empty name", "POST", TRACKER.into(), vec![], data_tracker(""), 400, "CTS.0203"),
        ("system named otherwise", "PUT", TRACKER.into(), vec![], json!({"tracker_type": "system", "tracker_name": "main"}), 400, "CTS.0204"),
        ("bad status", "PUT", TRACKER.into(), vec![], update(json!({"status": "paused"})), 400, "CTS.0205"),
        ("data_bucket on system", "PUT", TRACKER.into(), vec![], json!({"tracker_type": "system", "data_bucket": {"data_event": ["READ"]}}), 400, "CTS.0206"),
        ("data tracker named system", "POST", TRACKER.into(), vec![], data_tracker("system"), 400, "CTS.0207"),
        ("tracker exists", "POST", TRACKER.into(), vec![], data_tracker("orders"), 400, "CTS.0208"),
        ("update unknown", "PUT", TRACKER.into(), vec![], with(update(json!({"status": "disabled"})), json!({"tracker_name": "nothing"})), 404, "CTS.0214"),
        ("delete unknown", "DELETE", TRACKERS.into(), vec![("tracker_name", "nothing")], Value::Null, 404, "CTS.0214"),
        ("tag unknown tracker", "POST", unknown_tags, vec![], json!({"tags": [{"key": "env", "value": "prod"}]}), 404, "CTS.0214"),
        ("prefix with a slash", "POST", TRACKER.into(), vec![], obs(json!({"file_prefix_name": "a/b"})), 400, "CTS.0218"),
        ("prefix too long", "PUT", TRACKER.into(), vec![], update(json!({"obs_info": {"file_prefix_name": long_prefix}})), 400, "CTS.0218"),
        ("bucket upper case", "POST", TRACKER.into(), vec![], obs(json!({"bucket_name": "Trace-Files"})), 400, "CTS.0231"),
        ("bucket too short", "POST", TRACKER.into(), vec![], bucket(json!({"data_bucket_name": "ab", "data_event": ["READ"]})), 400, "CTS.0231"),
        ("bucket as IP", "PUT", TRACKER.into(), vec![], update(json!({"obs_info": {"bucket_name": "10.0.0.1"}})), 400, "CTS.0231"),
        ("bad lifecycle", "POST", TRACKER.into(), vec![], obs(json!({"bucket_lifecycle": 7})), 400, "CTS.0003"),
        ("bad compress type", "POST", TRACKER.into(), vec![], obs(json!({"compress_type": "zip"})), 400, "CTS.0003"),
        ("bad data event", "POST", TRACKER.into(), vec![], bucket(json!({"data_bucket_name": "abc", "data_event": ["DELETE"]})), 400, "CTS.0003"),
        ("no data event", "POST", TRACKER.into(), vec![], bucket(json!({"data_bucket_name": "abc", "data_event": []})), 400, "CTS.0003"),
        ("data tracker without bucket", "POST", TRACKER.into(), vec![], with(data_tracker("new"), json!({"data_bucket": null})), 400, "CTS.0003"),
        ("watched bucket changed", "PUT", TRACKER.into(), vec![], update(json!({"data_bucket": {"data_bucket_name": "elsewhere"}})), 400, "CTS.0003"),
        ("encryption without KMS key", "PUT", TRACKER.into(), vec![], json!({"tracker_type": "system", "is_support_trace_files_encryption": true}), 400, "CTS.0003"),
        ("encryption on a data tracker", "PUT", TRACKER.into(), vec![], update(json!({"is_support_trace_files_encryption": true, "kms_id": "k"})), 400, "CTS.0003"),
        ("missing tracker_type", "POST", TRACKER.into(), vec![], with(data_tracker("x"), json!({"tracker_type": null})), 400, "CTS.0003"),
        ("unknown field", "POST", TRACKER.into(), vec![], with(data_tracker("x"), json!({"colour": "red"})), 400, "CTS.0003"),
        ("wrong field type", "PUT", TRACKER.into(), vec![], update(json!({"is_lts_enabled": "yes"})), 400, "CTS.0003"),
        ("empty body", "POST", TRACKER.into(), vec![], Value::Null, 400, "CTS.0003"),
        ("tag key with =", "POST", orders_tags.clone(), vec![], json!({"tags": [{"key": "a=b", "value": "x"}]}), 400, "CTS.0003"),
        ("no tags", "POST", orders_tags, vec![], json!({"tags": []}), 400, "CTS.0003"),
        ("tags of another resource type", "POST", format!("/v3/{PROJECT_ID}/cts-notification/x/tags/create"), vec![], json!({"tags": [{"key": "k"}]}), 400, "CTS.0300"),
        ("operations by resource type alone", "GET", format!("/v3/{PROJECT_ID}/operations"), vec![("resource_type", "Order")], Value::Null, 400, "CTS.0300"),
        ("list twice the same parameter", "GET", TRACKERS.into(), vec![("tracker_name", "a"), ("tracker_name", "b")], Value::Null, 400, "CTS.0300"),
    ];
    for (name, method, path, query, body, status, code) in cases {
        let (actual_status, body) = call(&harness, method, &path, &query, body).await;
        assert_eq!((actual_status.as_u16(), error_code(&body)), (status, code), "{name}: {body}");
        if status >= 400 {
            assert!(!body["error_msg"].as_str().unwrap().is_empty(), "{name}");
        }
    }
    // Nothing refused changed anything.
    let trackers = list(&harness, &[]).await;
    assert_eq!(names(&trackers), ["system", "orders"]);
    assert_eq!(trackers[1], orders);
}

#[tokio::test]
async fn the_101st_data_tracker_is_refused_with_cts_0200() {
    let harness = harness();
    for i in 0..100 {
        create(&harness, data_tracker(&format!("t{i}"))).await;
    }
    let (status, body) = call(&harness, "POST", TRACKER, &[], data_tracker("t100")).await;
    assert_eq!((status.as_u16(), error_code(&body)), (400, "CTS.0200"), "{body}");
    let (_, quotas) = call(&harness, "GET", &format!("/v3/{PROJECT_ID}/quotas"), &[], Value::Null).await;
    assert_eq!(quotas["resources"][1], json!({"type": "data_tracker", "used": 100, "quota": 100}));
}

#[tokio::test]
async fn trackers_answer_the_fields_the_sdk_reads() {
    let harness = harness();
    let before = cts_model::now_ms();
    let created = create(&harness, data_tracker("orders")).await;
    assert_eq!(created["tracker_type"], "data");
    assert_eq!(created["tracker_name"], "orders");
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["project_id"], PROJECT_ID);
    assert!(created["domain_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(uuid::Uuid::parse_str(created["id"].as_str().unwrap()).is_ok());
    assert!((before..=cts_model::now_ms()).contains(&created["create_time"].as_i64().unwrap()));
    assert_eq!(
        created["obs_info"],
        json!({"bucket_name": "trace-files", "file_prefix_name": "orders", "is_obs_created": false,
               "bucket_lifecycle": 30, "compress_type": "gzip", "is_sort_by_service": true})
    );
    assert_eq!(created["data_bucket"], json!({"data_bucket_name": "watched-bucket", "data_event": ["WRITE", "READ"]}));
    assert_eq!(created["lts"], json!({"is_lts_enabled": false}));

    let trackers = list(&harness, &[]).await;
    assert_eq!(names(&trackers), ["system", "orders"]);
    let system = &trackers[0];
    assert_eq!((&system["tracker_type"], &system["status"]), (&json!("system"), &json!("enabled")));
    assert_eq!(system["is_support_trace_files_encryption"], false);
    assert!(system.get("data_bucket").is_none());
    assert_eq!(
        list(&harness, &[("tracker_name", "orders"), ("tracker_type", "data")]).await,
        std::slice::from_ref(&created)
    );
    assert!(list(&harness, &[("tracker_name", "orders"), ("tracker_type", "system")]).await.is_empty());

    let (status, body) = call(&harness, "DELETE", TRACKERS, &[("tracker_name", "orders")], Value::Null).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, json!("")));
    assert_eq!(names(&list(&harness, &[]).await), ["system"]);
}

#[tokio::test]
async fn an_update_of_status_alone_keeps_every_other_field() {
    let harness = harness();
    let created = create(&harness, data_tracker("orders")).await;
    let (status, updated) = call(
        &harness,
        "PUT",
        TRACKER,
        &[],
        json!({"tracker_type": "data", "tracker_name": "orders", "status": "disabled"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated, with(created.clone(), json!({"status": "disabled"})));
    assert_eq!(list(&harness, &[("tracker_name", "orders")]).await, [updated]);
    // The management tracker too: turning encryption on keeps the rest.
    let system = list(&harness, &[("tracker_type", "system")]).await.remove(0);
    let change = json!({"tracker_type": "system", "is_support_trace_files_encryption": true, "kms_id": "kms-key-1"});
    let (status, updated) = call(&harness, "PUT", TRACKER, &[], change).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated, with(system, json!({"is_support_trace_files_encryption": true, "kms_id": "kms-key-1"})));
}

#[tokio::test]
async fn trackers_and_tags_survive_a_reopen() {
    let harness = harness();
    create(&harness, data_tracker("orders")).await;
    let billing = create(&harness, data_tracker("billing")).await;
    let tags_path = format!("/v3/{PROJECT_ID}/cts-tracker/{}/tags", billing["id"].as_str().unwrap());
    let tags = json!({"tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "pay"}]});
    let (status, _) = call(&harness, "POST", &format!("{tags_path}/create"), &[], tags).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) =
        call(&harness, "DELETE", &format!("{tags_path}/delete"), &[], json!({"tags": [{"key": "team"}]})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = list(&harness, &[]).await;

    let reopened = Arc::new(open_resources(harness.dir.path(), &harness.state.iam));
    let tags_after = reopened
        .tags(
            cts_resources::ProjectScope { project_id: PROJECT_ID, domain_id: before[0]["domain_id"].as_str().unwrap() },
            billing["id"].as_str().unwrap(),
        )
        .unwrap();
    assert_eq!(tags_after, [cts_resources::Tag { key: "env".into(), value: "prod".into() }]);
    let harness = Harness {
        state: AppState::new(harness.state.store.clone(), harness.state.iam.clone(), reopened),
        dir: harness.dir,
    };
    assert_eq!(list(&harness, &[]).await, before);
    assert_eq!(names(&before), ["system", "orders", "billing"]);
}

/// A call signed with the other project's key.
fn other<'a>(method: &'a str, path: &'a str) -> Call<'a> {
    Call { access_key: OTHER_ACCESS_KEY, secret_key: OTHER_SECRET_KEY, ..Call::new(method, path) }
}

#[tokio::test]
async fn a_project_never_sees_or_changes_another_projects_trackers() {
    let harness = harness();
    let orders = create(&harness, data_tracker("orders")).await;
    let other_trackers = format!("/v3/{OTHER_PROJECT_ID}/trackers");
    let other_tracker = format!("/v3/{OTHER_PROJECT_ID}/tracker");
    let other_tags = format!("/v3/{OTHER_PROJECT_ID}/cts-tracker/{}/tags/create", orders["id"].as_str().unwrap());
    let (status, _, body) = send(&harness, other("GET", &other_trackers).request()).await;
    assert_eq!(status, StatusCode::OK);
    let other_list = body["trackers"].as_array().unwrap();
    assert_eq!(names(other_list), ["system"]);
    assert_eq!(other_list[0]["project_id"], OTHER_PROJECT_ID);
    assert_ne!(other_list[0]["id"], list(&harness, &[]).await[0]["id"]);

    let by_name = other("PUT", &other_tracker).body(
        serde_json::to_vec(&json!({"tracker_type": "data", "tracker_name": "orders", "status": "disabled"})).unwrap(),
    );
    let by_id =
        other("POST", &other_tags).body(serde_json::to_vec(&json!({"tags": [{"key": "k", "value": "v"}]})).unwrap());
    let delete_all = other("DELETE", &other_trackers);
    let delete_by_name = other("DELETE", &other_trackers).query(&[("tracker_name", "orders")]);
    for (call, status, code) in [
        (by_name, 404, "CTS.0214"),
        (by_id, 404, "CTS.0214"),
        (delete_all, 204, "<none>"),
        (delete_by_name, 404, "CTS.0214"),
    ] {
        let (actual, _, body) = send(&harness, call.request()).await;
        assert_eq!((actual.as_u16(), error_code(&body)), (status, code), "{body}");
    }
    // A key of the other project on this project's path is refused outright.
    let (status, _, _) = send(&harness, other("GET", TRACKERS).request()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(list(&harness, &[("tracker_name", "orders")]).await, [orders]);
}

#[tokio::test]
async fn quotas_and_operations() {
    let harness = harness();
    create(&harness, data_tracker("orders")).await;
    let (status, quotas) = call(&harness, "GET", &format!("/v3/{PROJECT_ID}/quotas"), &[], Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        quotas,
        json!({"resources": [
            {"type": "system_tracker", "used": 1, "quota": 1},
            {"type": "data_tracker", "used": 1, "quota": 100},
            {"type": "smn_notification", "used": 0, "quota": 100},
        ]})
    );
    let operations_path = format!("/v3/{PROJECT_ID}/operations");
    let (_, all) = call(&harness, "GET", &operations_path, &[], Value::Null).await;
    let listed: usize =
        all["operations"].as_array().unwrap().iter().map(|g| g["operation_list"].as_array().unwrap().len()).sum();
    assert_eq!(listed, cts_model::CATALOG.all().len());
    let (_, trackers) =
        call(&harness, "GET", &operations_path, &[("service_type", "CTS"), ("resource_type", "tracker")], Value::Null)
            .await;
    assert_eq!(
        trackers,
        json!({"operations": [{"service_type": "CTS", "resource_type": "tracker",
                               "operation_list": ["createTracker", "updateTracker", "deleteTracker", "listTrackers"]}]})
    );
}

#[tokio::test]
async fn data_traces_are_recorded_only_under_an_existing_data_tracker() {
    let harness = harness();
    create(&harness, data_tracker("orders")).await;
    let now = cts_model::now_ms();
    let data_trace = |tracker: &str, n: i64| {
        with(
            trace_json("PutObject", now - n),
            json!({"service_type": "OBS", "resource_type": "object", "trace_type": "ObsAPI", "tracker_name": tracker}),
        )
    };
    let batch = json!({"traces": [
        data_trace("orders", 1), data_trace("billing", 2), json!({"trace_name": "x"}),
        trace_json("createOrder", now - 3), data_trace("orders", 4), data_trace("system", 5),
    ]});
    let (status, ingested) = call(&harness, "POST", &format!("/v3/{PROJECT_ID}/traces"), &[], batch).await;
    assert_eq!(status, StatusCode::OK, "{ingested}");
    let rejected: Vec<(u64, &str)> = ingested["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["error_code"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(1, "CTS.0214"), (2, "CTS.0003"), (5, "CTS.0214")]);
    assert!(ingested["rejected"][0]["error_msg"].as_str().unwrap().contains("billing"));
    assert_eq!(ingested["accepted"].as_array().unwrap().len(), 3);

    let traces_path = format!("/v3/{PROJECT_ID}/traces");
    let listed = |query: Vec<(&'static str, &'static str)>| {
        let harness = &harness;
        let traces_path = traces_path.clone();
        async move {
            let (status, body) = call(harness, "GET", &traces_path, &query, Value::Null).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["traces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["tracker_name"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(vec![("trace_type", "data"), ("tracker_name", "orders")]).await, ["orders", "orders"]);
    assert!(listed(vec![("trace_type", "data"), ("tracker_name", "billing")]).await.is_empty());
    // (Besides cts's own self-audit traces, service_type CTS.)
    assert_eq!(listed(vec![("service_type", "marketplace")]).await.len(), 1, "the management trace stays apart");
}

/// A delivery of `time_ms`, failed with `bucketPolicyError` when `failed`.
fn delivery(time_ms: i64, failed: bool) -> cts_transfer::Delivery {
    cts_transfer::Delivery {
        time_ms,
        outcome: if failed { cts_transfer::DeliveryOutcome::Failed } else { cts_transfer::DeliveryOutcome::Delivered },
        windows_delivered: usize::from(!failed),
        windows_rewritten: 0,
        files_written: usize::from(!failed),
        traces_written: if failed { 0 } else { 12 },
        digests_written: 0,
        files_expired: 0,
        windows_streamed: 0,
        traces_streamed: 0,
        error: failed.then(|| cts_transfer::DeliveryFailure {
            detail: "bucketPolicyError".into(),
            reason: "connection refused".into(),
        }),
    }
}

fn deliveries_path(tracker_name: &str) -> String {
    format!("{TRACKERS}/{tracker_name}/deliveries")
}

#[tokio::test]
async fn a_trackers_delivery_history_is_listed_newest_first_within_the_limit() {
    let mut harness = harness();
    let orders = create(&harness, data_tracker("orders")).await;
    let history = Arc::new(cts_transfer::DeliveryHistory::open(harness.dir.path()).unwrap());
    for time in 1..=60 {
        history.record(orders["id"].as_str().unwrap(), delivery(time, time % 10 == 0)).unwrap();
    }
    harness.state = harness.state.clone().with_delivery_history(history);

    let (status, body) = call(&harness, "GET", &deliveries_path("orders"), &[("limit", "2")], Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"tracker_name": "orders", "deliveries": [
            {"time_ms": 60, "outcome": "failed", "windows_delivered": 0, "windows_rewritten": 0, "files_written": 0,
             "traces_written": 0, "digests_written": 0, "files_expired": 0, "windows_streamed": 0, "traces_streamed": 0,
             "error": {"detail": "bucketPolicyError", "reason": "connection refused"}},
            {"time_ms": 59, "outcome": "delivered", "windows_delivered": 1, "windows_rewritten": 0, "files_written": 1,
             "traces_written": 12, "digests_written": 0, "files_expired": 0, "windows_streamed": 0,
             "traces_streamed": 0},
        ]})
    );
    let times = |body: &Value| -> Vec<i64> {
        body["deliveries"].as_array().unwrap().iter().map(|d| d["time_ms"].as_i64().unwrap()).collect()
    };
    let (_, body) = call(&harness, "GET", &deliveries_path("orders"), &[], Value::Null).await;
    assert_eq!(times(&body), (11..=60).rev().collect::<Vec<_>>(), "50 by default");
    let (_, body) = call(&harness, "GET", &deliveries_path("orders"), &[("limit", "200")], Value::Null).await;
    assert_eq!(times(&body), (1..=60).rev().collect::<Vec<_>>());

    for limit in ["0", "201", "-1", "ten", "1.5"] {
        let (status, body) = call(&harness, "GET", &deliveries_path("orders"), &[("limit", limit)], Value::Null).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, "CTS.0300"), "limit {limit}: {body}");
    }
    let (status, body) = call(&harness, "GET", &deliveries_path("nothing"), &[], Value::Null).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "CTS.0214"), "{body}");
    let (status, body) = call(&harness, "GET", &deliveries_path("system"), &[], Value::Null).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"tracker_name": "system", "deliveries": []})));

    // A tracker deleted and created again under the same name starts with no history (it has a new id).
    assert_eq!(call(&harness, "DELETE", TRACKERS, &[("tracker_name", "orders")], Value::Null).await.0, 204);
    let (status, _) = call(&harness, "GET", &deliveries_path("orders"), &[], Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    create(&harness, data_tracker("orders")).await;
    let (_, body) = call(&harness, "GET", &deliveries_path("orders"), &[], Value::Null).await;
    assert_eq!(body["deliveries"], json!([]));
}

#[tokio::test]
async fn without_delivery_the_history_of_existing_trackers_is_empty_and_other_projects_are_unseen() {
    let harness = harness();
    create(&harness, data_tracker("orders")).await;
    let (status, body) = call(&harness, "GET", &deliveries_path("orders"), &[], Value::Null).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"tracker_name": "orders", "deliveries": []})));
    // The other project's key on its own project: no tracker of that name there.
    let path = format!("/v3/{OTHER_PROJECT_ID}/trackers/orders/deliveries");
    let mut other = Call::new("GET", &path);
    (other.access_key, other.secret_key) = (OTHER_ACCESS_KEY, OTHER_SECRET_KEY);
    let (status, _, body) = send(&harness, other.request()).await;
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, "CTS.0214"), "{body}");
}
