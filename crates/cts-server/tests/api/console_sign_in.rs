//! Console sessions across restarts, their end when credentials change, the audit of sign-in and
//! sign-out, and the limit on failed sign-ins.

use crate::common::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use cts_iam::{Bootstrap, Iam, Role};
use cts_server::{AppState, SignInLimitConfig};
use cts_store::{Filters, TraceQuery};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const PEER: &str = "198.51.100.7:50000";

fn request(method: &str, uri: &str, cookie: Option<&str>, body: Value) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
    let mut request = builder.body(body).unwrap();
    request.extensions_mut().insert(ConnectInfo(PEER.parse::<SocketAddr>().unwrap()));
    request
}

/// Signs in: the status, the `cts_session=...` pair (if any) and the answer.
async fn sign_in(harness: &Harness, credentials: Value) -> (StatusCode, Option<String>, Value) {
    let (status, response, body) = send(harness, request("POST", "/console/api/session", None, credentials)).await;
    let cookie =
        response.headers().get("set-cookie").map(|value| value.to_str().unwrap().split(';').next().unwrap().to_owned());
    (status, cookie, body)
}

async fn list_traces(harness: &Harness, cookie: &str) -> StatusCode {
    send(harness, request("GET", &format!("/v3/{PROJECT_ID}/traces"), Some(cookie), Value::Null)).await.0
}

/// The same data directory served again: identities and sessions read back from disk.
fn restarted(harness: Harness) -> Harness {
    let Harness { state, dir } = harness;
    let (iam, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    let state = AppState::new(state.store.clone(), Arc::new(iam), state.resources.clone());
    Harness { state, dir }
}

/// The console's own traces (`consoleLogin`, `consoleLogout`) of a project, oldest first.
fn console_traces(harness: &Harness, project_id: &str) -> Vec<cts_model::Trace> {
    let query = TraceQuery {
        project_id: project_id.to_owned(),
        data: false,
        tracker_name: None,
        from_ms: 0,
        to_ms: i64::MAX,
        filters: Filters {
            service_type: Some("CTS".into()),
            resource_type: Some("session".into()),
            ..Filters::default()
        },
        after: None,
        limit: 1000,
    };
    let mut traces = harness.state.store.query(&query).unwrap();
    traces.reverse();
    traces
}

fn carol(harness: &Harness) {
    let iam = &harness.state.iam;
    iam.create_user(&iam.domains()[0].id, "carol", Role::Auditor).unwrap();
    iam.set_console_password("carol", "correct horse battery").unwrap();
}

#[tokio::test]
async fn a_session_survives_a_restart_and_a_sign_out_survives_it_too() {
    let harness = harness();
    carol(&harness);
    let (status, cookie, session) =
        sign_in(&harness, json!({"user": "carol", "password": "correct horse battery"})).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let cookie = cookie.unwrap();
    let id = cookie.strip_prefix("cts_session=").unwrap();
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();

    let file = harness.dir.path().join("console/sessions.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(id) && !text.contains(&csrf) && !text.contains("correct horse"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    let harness = restarted(harness);
    assert_eq!(list_traces(&harness, &cookie).await, StatusCode::OK);
    let (status, _, shown) = send(&harness, request("GET", "/console/api/session", Some(&cookie), Value::Null)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((shown["csrf_token"].as_str(), shown["user_name"].as_str()), (Some(csrf.as_str()), Some("carol")));

    let (status, _, _) = send(&harness, request("DELETE", "/console/api/session", Some(&cookie), Value::Null)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let harness = restarted(harness);
    assert_eq!(list_traces(&harness, &cookie).await, StatusCode::UNAUTHORIZED, "signed out for good");
}

#[tokio::test]
async fn a_deleted_key_or_a_changed_password_ends_its_sessions_also_across_a_restart() {
    let harness = harness();
    carol(&harness);
    let iam = harness.state.iam.clone();
    let key = iam.create_access_key("carol", PROJECT_ID).unwrap();
    let by_key = json!({"access_key": key.info.access_key, "secret_key": key.secret_key});
    let (_, key_cookie, _) = sign_in(&harness, by_key).await;
    let (_, password_cookie, _) =
        sign_in(&harness, json!({"user": "carol", "password": "correct horse battery"})).await;
    let (key_cookie, password_cookie) = (key_cookie.unwrap(), password_cookie.unwrap());
    assert_eq!(list_traces(&harness, &key_cookie).await, StatusCode::OK);

    iam.delete_access_key(&key.info.access_key).unwrap();
    assert_eq!(list_traces(&harness, &key_cookie).await, StatusCode::UNAUTHORIZED);
    assert_eq!(list_traces(&harness, &password_cookie).await, StatusCode::OK);

    iam.set_console_password("carol", "a new password").unwrap();
    let harness = restarted(harness);
    assert_eq!(list_traces(&harness, &password_cookie).await, StatusCode::UNAUTHORIZED);
    let text = std::fs::read_to_string(harness.dir.path().join("console/sessions.json")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["sessions"], json!([]), "dropped at load");
}

#[tokio::test]
async fn sign_ins_and_sign_outs_are_recorded_without_secrets() {
    let harness = harness();
    carol(&harness);
    let (_, cookie, session) = sign_in(&harness, json!({"user": "carol", "password": "correct horse battery"})).await;
    let csrf = session["csrf_token"].as_str().unwrap();
    let (status, _, _) = sign_in(&harness, json!({"user": "carol", "password": "wrong horse battery"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = sign_in(&harness, json!({"access_key": OTHER_ACCESS_KEY, "secret_key": "not-it"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = sign_in(&harness, json!({"user": "nobody", "password": "correct horse battery"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not recorded: no project to record it in");
    send(&harness, request("DELETE", "/console/api/session", cookie.as_deref(), Value::Null)).await;

    let traces = console_traces(&harness, PROJECT_ID);
    let summary: Vec<(&str, Option<&str>, Option<&str>, &str)> = traces
        .iter()
        .map(|t| (t.trace_name.as_str(), t.code.as_deref(), t.resource_name.as_deref(), t.trace_rating.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("consoleLogin", Some("200"), Some("carol"), "normal"),
            ("consoleLogin", Some("401"), Some("carol"), "warning"),
            ("consoleLogout", Some("204"), Some("carol"), "normal"),
        ]
    );
    for trace in &traces {
        assert_eq!((trace.service_type.as_str(), trace.trace_type.as_str()), ("CTS", "ConsoleAction"));
        assert_eq!(trace.source_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(trace.user_name(), Some("carol"));
    }
    let other = console_traces(&harness, OTHER_PROJECT_ID);
    assert_eq!(other.len(), 1, "a refused key sign-in is recorded in the key's project");
    assert_eq!((other[0].code.as_deref(), other[0].access_key_id()), (Some("401"), Some(OTHER_ACCESS_KEY)));

    let everything = serde_json::to_string(&[traces, other].concat()).unwrap();
    for secret in ["correct horse", "wrong horse", "not-it", csrf, cookie.unwrap().as_str()] {
        assert!(!everything.contains(secret), "{secret} in {everything}");
    }
}

#[tokio::test]
async fn the_sixth_failure_is_refused_with_retry_after_and_a_success_after_the_window_works() {
    let mut harness = harness();
    let window = Duration::from_millis(1500);
    harness.state = harness.state.clone().with_sign_in_limits(SignInLimitConfig { window, ..Default::default() });
    let wrong = json!({"access_key": ACCESS_KEY, "secret_key": "guess"});
    for _ in 0..5 {
        assert_eq!(sign_in(&harness, wrong.clone()).await.0, StatusCode::UNAUTHORIZED);
    }
    let right = json!({"access_key": ACCESS_KEY, "secret_key": SECRET_KEY});
    for credentials in [wrong.clone(), right.clone()] {
        let (status, response, body) = send(&harness, request("POST", "/console/api/session", None, credentials)).await;
        assert_eq!((status, error_code(&body)), (StatusCode::TOO_MANY_REQUESTS, "CTS.0429"), "{body}");
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry_after), "when the first failure leaves the window: {retry_after}");
    }
    // Sorted: sign-ins within one millisecond have no order among themselves.
    let mut codes: Vec<_> = console_traces(&harness, PROJECT_ID).into_iter().filter_map(|t| t.code).collect();
    codes.sort();
    assert_eq!(codes, ["401", "401", "401", "401", "401", "429"], "one trace per lockout");

    tokio::time::sleep(window).await;
    let (status, cookie, _) = sign_in(&harness, right.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list_traces(&harness, &cookie.unwrap()).await, StatusCode::OK);
    // The success cleared the failures: five more wrong guesses are answered 401 again.
    for _ in 0..5 {
        assert_eq!(sign_in(&harness, wrong.clone()).await.0, StatusCode::UNAUTHORIZED);
    }
}
