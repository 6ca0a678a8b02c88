//! A slow or dead cts never blocks the marketplace: with the real reporter aimed at a port nobody listens on, or at
//! one that accepts connections and never answers, every operation is answered as usual and its trace waits in the
//! reporter's queue or spool.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use cts_client::Credentials;
use cts_koogallery::model::Role;
use cts_koogallery::{app, AppState, Clock, KooGallery};
use cts_reporter::{Reporter, ReporterConfig};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const ADMIN: &str = "admin-token-for-tests";
const OPERATIONS: usize = 300;
/// Far longer than any operation takes; an operation waiting on cts would wait the reporter's 10 s request timeout.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// A cts endpoint that is down: a port that was just free.
fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// A cts endpoint that accepts connections and never answers; the listener must stay alive.
async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (endpoint, holder)
}

/// Runs `OPERATIONS` favorite-list calls through the marketplace reporting to `endpoint`; every answer must come
/// within `ANSWER_WITHIN`. Returns the reporter's statistics afterwards.
async fn operate_against(endpoint: String) -> cts_reporter::ReporterStats {
    let dir = tempfile::tempdir().unwrap();
    let credentials = Credentials { access_key: "AK".into(), secret_key: "SK".into(), project_id: "project".into() };
    let reporter =
        Arc::new(Reporter::start(ReporterConfig::new(endpoint, credentials, dir.path().join("spool"))).unwrap());
    let kg = Arc::new(KooGallery::open(&dir.path().join("kg"), Clock::System, reporter.clone(), ADMIN).unwrap());
    let account = kg.create_account("globex").unwrap().body["id"].as_str().unwrap().to_owned();
    kg.create_user(&account, "alice", "alice-password", Role::Buyer).unwrap();
    let token = kg.login("globex", "alice", "alice-password").unwrap();
    let router = app(AppState { kg, trace_sink: reporter.clone(), trusted_proxies: Vec::new() });
    for n in 0..OPERATIONS {
        let mut request = Request::get("/v1/favorites").header("x-auth-token", &token).body(Body::empty()).unwrap();
        request.extensions_mut().insert(ConnectInfo("203.0.113.5:51000".parse::<SocketAddr>().unwrap()));
        let answered = tokio::time::timeout(ANSWER_WITHIN, async {
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            response.into_body().collect().await.unwrap();
            status
        });
        let status = answered.await.unwrap_or_else(|_| panic!("operation {n} waited on cts"));
        assert!(status.is_success(), "operation {n}: {status}");
    }
    reporter.stats()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_cts_never_blocks_the_marketplace() {
    let stats = operate_against(dead_endpoint()).await;
    assert_eq!(stats.submitted, OPERATIONS as u64);
    assert_eq!(stats.delivered, 0);
    assert_eq!(stats.dropped_total(), 0, "nothing is lost while cts is down: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cts_that_never_answers_never_blocks_the_marketplace() {
    let (endpoint, holder) = silent_endpoint().await;
    let stats = operate_against(endpoint).await;
    holder.abort();
    assert_eq!(stats.submitted, OPERATIONS as u64);
    assert_eq!(stats.delivered, 0);
    assert_eq!(stats.dropped_total(), 0, "nothing is lost while cts is silent: {stats:?}");
}
