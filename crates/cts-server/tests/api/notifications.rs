//! Key event notifications, ListTraceResources and ListUserResources in-process: every error code,
//! partial updates, the quota, isolation between projects.

use crate::common::{
    error_code, harness, send, trace_json, Call, Harness, OTHER_ACCESS_KEY, OTHER_PROJECT_ID, OTHER_SECRET_KEY,
    PROJECT_ID,
};
use axum::http::StatusCode;
use serde_json::{json, Value};

fn notifications_path() -> String {
    format!("/v3/{PROJECT_ID}/notifications")
}

fn topic() -> String {
    format!("urn:smn:ap-southeast-3:{PROJECT_ID}:key_events")
}

fn notification(name: &str) -> Value {
    json!({
        "notification_name": name,
        "operation_type": "customized",
        "operations": [{"service_type": "CTS", "resource_type": "tracker", "trace_names": ["deleteTracker"]}],
        "notify_user_list": [{"user_group": "admins", "user_list": ["admin"]}],
        "topic_id": topic(),
        "filter": {"condition": "AND", "is_support_filter": true, "rule": ["code != 200"]},
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

async fn call_as(harness: &Harness, call: Call<'_>, body: Value) -> (StatusCode, Value) {
    let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).unwrap() };
    let (status, _, json) = send(harness, call.body(body).request()).await;
    (status, json)
}

async fn call(harness: &Harness, method: &str, path: &str, query: &[(&str, &str)], body: Value) -> (StatusCode, Value) {
    call_as(harness, Call::new(method, path).query(query), body).await
}

async fn create(harness: &Harness, body: Value) -> Value {
    let (status, created) = call(harness, "POST", &notifications_path(), &[], body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn list(harness: &Harness, query: &[(&str, &str)]) -> Vec<Value> {
    let (status, body) = call(harness, "GET", &format!("{}/smn", notifications_path()), query, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["notifications"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_notification_error_has_its_status_and_cts_code() {
    let harness = harness();
    let existing = create(&harness, notification("existing")).await;
    let id = existing["notification_id"].as_str().unwrap().to_owned();
    let path = notifications_path();
    let update = |changes: Value| with(json!({"notification_id": id}), changes);
    let rules: Vec<String> = (0..7).map(|i| format!("code = {i}")).collect();
    /// (case, method, query, body, status, CTS code)
    type Case = (&'static str, &'static str, Vec<(&'static str, &'static str)>, Value, u16, &'static str);
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("name exists", "POST", vec![], notification("existing"), 400, "CTS.0400"),
        ("a second notification", "POST", vec![], notification("second"), 201, ""),
        ("update onto an existing name", "PUT", vec![], update(json!({"notification_name": "second"})), 400, "CTS.0400"),
        ("bad status", "PUT", vec![], update(json!({"status": "paused"})), 400, "CTS.0205"),
        ("unknown id", "PUT", vec![], json!({"notification_id": "nothing", "status": "disabled"}), 404, "CTS.0404"),
        ("delete unknown id", "DELETE", vec![("notification_id", "nothing")], Value::Null, 404, "CTS.0404"),
        ("delete without id", "DELETE", vec![], Value::Null, 400, "CTS.0300"),
        ("update without id", "PUT", vec![], json!({"status": "disabled"}), 400, "CTS.0003"),
        ("name too long", "POST", vec![], notification(&"n".repeat(65)), 400, "CTS.0003"),
        ("name with a dash", "POST", vec![], notification("key-events"), 400, "CTS.0003"),
        ("bad operation type", "POST", vec![], with(notification("x"), json!({"operation_type": "all"})), 400, "CTS.0003"),
        ("customized without operations", "POST", vec![], with(notification("x"), json!({"operations": null})), 400, "CTS.0003"),
        ("operation without trace names", "POST", vec![], with(notification("x"), json!({"operations": [{"service_type": "CTS", "resource_type": "tracker", "trace_names": []}]})), 400, "CTS.0003"),
        ("operation missing a field", "POST", vec![], with(notification("x"), json!({"operations": [{"service_type": "CTS", "trace_names": ["a"]}]})), 400, "CTS.0003"),
        ("topic of another project", "POST", vec![], with(notification("x"), json!({"topic_id": format!("urn:smn:ap-southeast-3:{OTHER_PROJECT_ID}:t")})), 400, "CTS.0003"),
        ("no topic", "POST", vec![], with(notification("x"), json!({"topic_id": null})), 400, "CTS.0003"),
        ("bad agency", "POST", vec![], with(notification("x"), json!({"agency_name": "root"})), 400, "CTS.0003"),
        ("seven rules", "POST", vec![], with(notification("x"), json!({"filter": {"condition": "OR", "is_support_filter": true, "rule": rules}})), 400, "CTS.0003"),
        ("rule on user", "PUT", vec![], update(json!({"filter": {"rule": ["user = alice"]}})), 400, "CTS.0003"),
        ("bad condition", "PUT", vec![], update(json!({"filter": {"condition": "NOT"}})), 400, "CTS.0003"),
        ("unknown field", "POST", vec![], with(notification("x"), json!({"colour": "red"})), 400, "CTS.0003"),
        ("empty body", "POST", vec![], Value::Null, 400, "CTS.0003"),
    ];
    for (name, method, query, body, status, code) in cases {
        let (actual_status, body) = call(&harness, method, &path, &query, body).await;
        assert_eq!(actual_status.as_u16(), status, "{name}: {body}");
        if status >= 400 {
            assert_eq!(error_code(&body), code, "{name}: {body}");
            assert!(!body["error_msg"].as_str().unwrap().is_empty(), "{name}");
        }
    }
    let (status, body) = call(&harness, "GET", &format!("{path}/email"), &[], Value::Null).await;
    assert_eq!((status.as_u16(), error_code(&body)), (400, "CTS.0300"), "{body}");
    // Nothing refused changed anything.
    let listed = list(&harness, &[("notification_name", "existing")]).await;
    assert_eq!(listed, [existing]);
}

#[tokio::test]
async fn notifications_answer_the_fields_the_sdk_reads_and_update_only_what_is_sent() {
    let harness = harness();
    let before = cts_model::now_ms();
    let created = create(&harness, notification("key_events")).await;
    assert_eq!(created["notification_type"], "smn");
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["project_id"], PROJECT_ID);
    assert_eq!(created["topic_id"], topic());
    assert!(created["create_time"].as_i64().unwrap() >= before);
    let id = created["notification_id"].as_str().unwrap();
    let (status, updated) =
        call(&harness, "PUT", &notifications_path(), &[], json!({"notification_id": id, "status": "disabled"})).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated, with(created.clone(), json!({"status": "disabled"})));
    let (_, updated) = call(
        &harness,
        "PUT",
        &notifications_path(),
        &[],
        json!({"notification_id": id, "operation_type": "complete", "filter": {"rule": ["trace_rating = warning"]}}),
    )
    .await;
    assert_eq!(updated["operations"], created["operations"], "operations stay unless sent");
    assert_eq!(
        updated["filter"],
        json!({"condition": "AND", "is_support_filter": true, "rule": ["trace_rating = warning"]})
    );
    assert_eq!(list(&harness, &[]).await, [updated]);
    assert!(list(&harness, &[("notification_name", "other")]).await.is_empty());
    let (status, fun) = call(&harness, "GET", &format!("{}/fun", notifications_path()), &[], Value::Null).await;
    assert_eq!((status, fun), (StatusCode::OK, json!({"notifications": []})));
}

#[tokio::test]
async fn the_101st_notification_is_refused_with_cts_0200_and_deletes_take_several_ids() {
    let harness = harness();
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            create(&harness, notification(&format!("n{i}"))).await["notification_id"].as_str().unwrap().to_owned(),
        );
    }
    let (status, body) = call(&harness, "POST", &notifications_path(), &[], notification("n100")).await;
    assert_eq!((status.as_u16(), error_code(&body)), (400, "CTS.0200"), "{body}");
    let (_, quotas) = call(&harness, "GET", &format!("/v3/{PROJECT_ID}/quotas"), &[], Value::Null).await;
    assert_eq!(quotas["resources"][2], json!({"type": "smn_notification", "used": 100, "quota": 100}));
    let several = format!("{},{}", ids[0], ids[99]);
    let (status, _) =
        call(&harness, "DELETE", &notifications_path(), &[("notification_id", &several)], Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(list(&harness, &[]).await.len(), 98);
    create(&harness, notification("n100")).await;
}

#[tokio::test]
async fn another_project_cannot_see_change_or_delete_a_notification() {
    let harness = harness();
    let created = create(&harness, notification("key_events")).await;
    let id = created["notification_id"].as_str().unwrap();
    let other_path = format!("/v3/{OTHER_PROJECT_ID}/notifications");
    fn as_other<'a>(method: &'a str, path: &'a str, id: &'a str) -> Call<'a> {
        Call {
            access_key: OTHER_ACCESS_KEY,
            secret_key: OTHER_SECRET_KEY,
            ..Call::new(method, path).query(&[("notification_id", id)])
        }
    }
    let other_path_smn = format!("{other_path}/smn");
    let (status, listed) = call_as(&harness, as_other("GET", &other_path_smn, id), Value::Null).await;
    assert_eq!((status, listed), (StatusCode::OK, json!({"notifications": []})));
    let update = json!({"notification_id": id, "status": "disabled"});
    let (status, body) = call_as(&harness, as_other("PUT", &other_path, id), update.clone()).await;
    assert_eq!((status.as_u16(), error_code(&body)), (404, "CTS.0404"));
    let (status, body) = call_as(&harness, as_other("DELETE", &other_path, id), Value::Null).await;
    assert_eq!((status.as_u16(), error_code(&body)), (404, "CTS.0404"));
    // The same answer as for an id that never existed: nothing leaks.
    let unknown = json!({"notification_id": "00000000-0000-4000-8000-000000000000", "status": "disabled"});
    let (_, unknown_body) = call_as(&harness, as_other("PUT", &other_path, id), unknown).await;
    assert_eq!(unknown_body["error_code"], body["error_code"]);
    // Its key on the first project's path is refused outright.
    let (status, body) = call_as(&harness, as_other("PUT", &notifications_path(), id), update).await;
    assert_eq!((status.as_u16(), error_code(&body)), (403, "CTS.0013"));
    assert_eq!(list(&harness, &[]).await, [created]);
}

#[tokio::test]
async fn trace_and_user_resources_come_from_the_projects_own_traces() {
    let harness = harness();
    let now = cts_model::now_ms();
    let traces = json!({"traces": [
        trace_json("createOrder", now - 10),
        with(trace_json("addFavorites", now - 20), json!({"resource_type": "Favorites", "user": {"name": "bob"}})),
        with(trace_json("getObject", now - 30), json!({"service_type": "OBS", "resource_type": "object", "user": null})),
        with(trace_json("createOrder", now - 31 * 24 * 3600 * 1000), json!({"user": {"name": "long_gone"}})),
    ]});
    let (status, body) = call(&harness, "POST", &format!("/v3/{PROJECT_ID}/traces"), &[], traces.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let other_trace = json!({"traces": [with(trace_json("createOrder", now), json!({"user": {"name": "mallory"}, "service_type": "ECS"}))]});
    let other_traces = format!("/v3/{OTHER_PROJECT_ID}/traces");
    let ingest_other =
        Call { access_key: OTHER_ACCESS_KEY, secret_key: OTHER_SECRET_KEY, ..Call::new("POST", &other_traces) };
    let _ = call_as(&harness, ingest_other, other_trace).await;

    let domain_id = harness.state.iam.domains()[0].id.clone();
    let (status, resources) = call(&harness, "GET", &format!("/v3/{domain_id}/resources"), &[], Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{resources}");
    assert_eq!(
        resources,
        json!({"resources": [
            {"service_type": "OBS", "resource": ["object"]},
            {"service_type": "marketplace", "resource": ["Favorites", "Order"]},
        ]})
    );
    let (status, body) = call(&harness, "GET", &format!("/v3/{PROJECT_ID}/resources"), &[], Value::Null).await;
    assert_eq!((status.as_u16(), error_code(&body)), (403, "CTS.0013"), "the path names the domain, not the project");

    let (status, users) = call(&harness, "GET", &format!("/v3/{PROJECT_ID}/user-resources"), &[], Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    // The 31-day-old trace is past the retention (and past the 30 days) in any case.
    assert_eq!(users, json!({"users": [{"name": "alice"}, {"name": "bob"}]}));
}
