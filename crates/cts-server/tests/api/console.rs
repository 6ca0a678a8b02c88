//! Console sessions: sign-in by password or access key sets an HttpOnly, SameSite=Strict cookie that
//! the `/v3` routes accept with the same role checks; changing requests need the CSRF token; unknown,
//! forged or signed-out sessions are 401. Console responses carry the security headers.

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use cts_iam::Role;
use serde_json::{json, Value};

fn request(method: &str, uri: &str, cookie: Option<&str>, csrf: Option<&str>, body: Value) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", format!("theme=dark; {cookie}"));
    }
    if let Some(csrf) = csrf {
        builder = builder.header("x-csrf-token", csrf);
    }
    let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
    builder.body(body).unwrap()
}

/// Signs in; the `cts_session=...` pair and the session document.
async fn sign_in(harness: &Harness, credentials: Value) -> (String, Value) {
    let (status, response, session) =
        send(harness, request("POST", "/console/api/session", None, None, credentials)).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    (set_cookie.split(';').next().unwrap().to_owned(), session)
}

fn auditor(harness: &Harness) {
    let iam = &harness.state.iam;
    iam.create_user(&iam.domains()[0].id, "carol", Role::Auditor).unwrap();
    iam.set_console_password("carol", "correct horse battery").unwrap();
}

#[tokio::test]
async fn a_session_cookie_authenticates_like_a_signature_with_csrf_on_changes() {
    let harness = harness();
    let (cookie, session) = sign_in(&harness, json!({"access_key": ACCESS_KEY, "secret_key": SECRET_KEY})).await;
    assert_eq!((session["role"].as_str(), session["project_id"].as_str()), (Some("admin"), Some(PROJECT_ID)));
    let csrf = session["csrf_token"].as_str().unwrap();
    let traces = format!("/v3/{PROJECT_ID}/traces");
    let (status, _, body) = send(&harness, request("GET", &traces, Some(&cookie), None, Value::Null)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let ingest = json!({"traces": [trace_json("createOrder", cts_model::now_ms())]});
    let (status, _, body) = send(&harness, request("POST", &traces, Some(&cookie), None, ingest.clone())).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "CTS.0013"), "no CSRF token: {body}");
    let (status, _, body) =
        send(&harness, request("POST", &traces, Some(&cookie), Some("forged"), ingest.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "wrong CSRF token: {body}");
    let (status, _, body) = send(&harness, request("POST", &traces, Some(&cookie), Some(csrf), ingest)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let other = format!("/v3/{OTHER_PROJECT_ID}/traces");
    let (status, _, _) = send(&harness, request("GET", &other, Some(&cookie), None, Value::Null)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a session stays in its project");

    let (status, _, _) =
        send(&harness, request("DELETE", "/console/api/session", Some(&cookie), None, Value::Null)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = send(&harness, request("GET", &traces, Some(&cookie), None, Value::Null)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "CTS.0002"), "signed out");
}

#[tokio::test]
async fn forged_expired_or_wrong_sign_ins_are_refused() {
    let harness = harness();
    auditor(&harness);
    let traces = format!("/v3/{PROJECT_ID}/traces");
    let forged = "cts_session=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let (status, _, body) = send(&harness, request("GET", &traces, Some(forged), None, Value::Null)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "CTS.0002"));
    let (status, _, _) = send(&harness, request("GET", "/console/api/session", Some(forged), None, Value::Null)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for credentials in [
        json!({"user": "carol", "password": "wrong horse battery"}),
        json!({"user": "nobody", "password": "correct horse battery"}),
        json!({"access_key": ACCESS_KEY, "secret_key": "not-the-secret"}),
    ] {
        let (status, _, body) = send(&harness, request("POST", "/console/api/session", None, None, credentials)).await;
        assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, "CTS.0002"), "{body}");
    }
    let (status, _, _) = send(&harness, request("POST", "/console/api/session", None, None, json!({"x": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_auditor_cannot_create_a_tracker_through_the_console_either() {
    let harness = harness();
    auditor(&harness);
    let (cookie, session) = sign_in(&harness, json!({"user": "carol", "password": "correct horse battery"})).await;
    assert_eq!(session["role"], "auditor");
    let csrf = session["csrf_token"].as_str().unwrap();
    let tracker = json!({"tracker_type": "data", "tracker_name": "t1",
                         "data_bucket": {"data_bucket_name": "b1", "data_event": ["READ"]}});
    let path = format!("/v3/{PROJECT_ID}/tracker");
    let (status, _, body) = send(&harness, request("POST", &path, Some(&cookie), Some(csrf), tracker)).await;
    assert_eq!((status, error_code(&body)), (StatusCode::FORBIDDEN, "CTS.0013"), "{body}");
    let (status, _, _) =
        send(&harness, request("GET", &format!("/v3/{PROJECT_ID}/trackers"), Some(&cookie), None, Value::Null)).await;
    assert_eq!(status, StatusCode::OK, "reads are allowed");
}

#[tokio::test]
async fn the_console_is_served_with_security_headers() {
    let harness = harness();
    for path in ["/console", "/console/app.js", "/console/api/session", "/console/missing.js"] {
        let (status, response, _) = send(&harness, request("GET", path, None, None, Value::Null)).await;
        let headers = response.headers();
        assert!(headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"), "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let expected = match path {
            "/console" | "/console/app.js" => StatusCode::OK,
            "/console/api/session" => StatusCode::UNAUTHORIZED,
            _ => StatusCode::NOT_FOUND,
        };
        assert_eq!(status, expected, "{path}");
    }
}
