//! Roles: what an auditor's and a reporter's keys may do, and that no key reaches another project.

use crate::common::*;
use axum::http::StatusCode;
use cts_iam::{NewAccessKey, Role};

fn key_with_role(harness: &Harness, name: &str, role: Role) -> NewAccessKey {
    let iam = &harness.state.iam;
    let domain_id = iam.projects()[0].domain_id.clone();
    iam.create_user(&domain_id, name, role).unwrap();
    iam.create_access_key(name, PROJECT_ID).unwrap()
}

/// (method, path, body) of one call of each kind.
fn calls() -> Vec<(&'static str, String, Vec<u8>)> {
    let traces = format!("/v3/{PROJECT_ID}/traces");
    let ingest =
        serde_json::to_vec(&serde_json::json!({"traces": [trace_json("createOrder", cts_model::now_ms())]})).unwrap();
    vec![
        ("POST", traces.clone(), ingest),
        ("GET", traces, Vec::new()),
        ("GET", format!("/v3/{PROJECT_ID}/trackers"), Vec::new()),
        ("GET", format!("/v3/{PROJECT_ID}/quotas"), Vec::new()),
        ("GET", format!("/v3/{PROJECT_ID}/trackers/system/deliveries"), Vec::new()),
        ("POST", format!("/v3/{PROJECT_ID}/tracker"), br#"{"tracker_type":"data","tracker_name":"t1","data_bucket":{"data_bucket_name":"b1","data_event":["READ"]}}"#.to_vec()),
        ("DELETE", format!("/v3/{PROJECT_ID}/trackers"), Vec::new()),
    ]
}

#[tokio::test]
async fn each_role_may_do_exactly_its_actions() {
    let harness = harness();
    let auditor = key_with_role(&harness, "auditor", Role::Auditor);
    let reporter = key_with_role(&harness, "reporter", Role::Reporter);
    // (role, key, which of `calls()` it may make)
    let cases: [(&str, &NewAccessKey, [bool; 7]); 2] = [
        ("auditor", &auditor, [false, true, true, true, true, false, false]),
        ("reporter", &reporter, [true, false, false, false, false, false, false]),
    ];
    for (role, key, allowed) in cases {
        for ((method, path, body), allowed) in calls().into_iter().zip(allowed) {
            let mut call = Call::new(method, &path).body(body);
            call.access_key = &key.info.access_key;
            call.secret_key = &key.secret_key;
            let (status, _, json) = send(&harness, call.request()).await;
            if allowed {
                assert!(status.is_success(), "{role} {method} {path}: {status} {json}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} {method} {path}: {json}");
                assert_eq!(error_code(&json), "CTS.0013");
                assert!(json["error_msg"].as_str().unwrap().contains(&format!("role {role}")), "{json}");
            }
        }
    }
}

#[tokio::test]
async fn a_role_change_applies_to_existing_keys_at_once() {
    let harness = harness();
    let key = key_with_role(&harness, "svc", Role::Reporter);
    let path = format!("/v3/{PROJECT_ID}/traces");
    let list = |key: &NewAccessKey| {
        let mut call = Call::new("GET", &path);
        call.access_key = &key.info.access_key;
        call.secret_key = &key.secret_key;
        call.request()
    };
    assert_eq!(send(&harness, list(&key)).await.0, StatusCode::FORBIDDEN);
    harness.state.iam.set_role("svc", Role::Auditor).unwrap();
    assert_eq!(send(&harness, list(&key)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn no_role_reaches_another_project() {
    let harness = harness();
    let auditor = key_with_role(&harness, "auditor", Role::Auditor);
    for (access_key, secret_key) in
        [(ACCESS_KEY, SECRET_KEY), (auditor.info.access_key.as_str(), auditor.secret_key.as_str())]
    {
        for path in [format!("/v3/{OTHER_PROJECT_ID}/traces"), format!("/v3/{OTHER_PROJECT_ID}/trackers")] {
            let mut call = Call::new("GET", &path);
            call.access_key = access_key;
            call.secret_key = secret_key;
            let (status, _, json) = send(&harness, call.request()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{access_key} {path}");
            assert_eq!(error_code(&json), "CTS.0013");
        }
    }
}
