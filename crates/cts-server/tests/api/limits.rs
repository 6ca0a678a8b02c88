//! Rate limits per access key and per project: over the limit, 429 CTS.0429 with `Retry-After`;
//! other keys and projects keep their own budgets.

use crate::common::*;
use axum::http::StatusCode;
use cts_server::RateLimitConfig;
use std::num::NonZeroU32;

fn limited(per_key: u32, per_project: u32) -> Harness {
    let Harness { state, dir } = harness();
    let config = RateLimitConfig {
        per_key: NonZeroU32::new(per_key).unwrap(),
        per_project: NonZeroU32::new(per_project).unwrap(),
    };
    Harness { state: state.with_rate_limits(config), dir }
}

/// The statuses of `count` quick ListTraces calls with a key of `project`.
async fn statuses(harness: &Harness, access_key: &str, secret_key: &str, project: &str, count: usize) -> Vec<u16> {
    let path = format!("/v3/{project}/traces");
    let mut statuses = Vec::new();
    for _ in 0..count {
        let call = Call { access_key, secret_key, ..Call::new("GET", &path) };
        let (status, response, body) = send(harness, call.request()).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(error_code(&body), "CTS.0429", "{body}");
            let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        }
        statuses.push(status.as_u16());
    }
    statuses
}

#[tokio::test]
async fn a_key_over_its_limit_gets_429_and_other_projects_keep_their_budget() {
    // 1 request a second, a burst of 2.
    let harness = limited(1, 100);
    assert_eq!(statuses(&harness, ACCESS_KEY, SECRET_KEY, PROJECT_ID, 4).await, [200, 200, 429, 429]);
    assert_eq!(statuses(&harness, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, OTHER_PROJECT_ID, 2).await, [200, 200]);
}

#[tokio::test]
async fn a_project_over_its_limit_gets_429_whichever_key_calls() {
    let harness = limited(100, 1);
    assert_eq!(statuses(&harness, ACCESS_KEY, SECRET_KEY, PROJECT_ID, 3).await, [200, 200, 429]);
    assert_eq!(statuses(&harness, OTHER_ACCESS_KEY, OTHER_SECRET_KEY, OTHER_PROJECT_ID, 1).await, [200]);
}

#[tokio::test]
async fn unsigned_and_unauthenticated_requests_are_not_counted() {
    let harness = limited(1, 1);
    let path = format!("/v3/{PROJECT_ID}/traces");
    for _ in 0..5 {
        let (status, _, _) =
            send(&harness, Call { secret_key: "wrong", ..Call::new("GET", "/health") }.request()).await;
        assert_eq!(status, StatusCode::OK);
        let bad = Call { secret_key: "wrong-secret", ..Call::new("GET", &path) };
        let (status, _, _) = send(&harness, bad.request()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(statuses(&harness, ACCESS_KEY, SECRET_KEY, PROJECT_ID, 2).await, [200, 200]);
}
