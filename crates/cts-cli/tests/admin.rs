//! `cts admin` as an operator runs it beside a running `cts serve`: JSON out, and the server honours the new
//! tenant's keys and roles within a second.

mod common;

use common::{cts, Server};
use cts_client::{Client, ClientError, Credentials};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn admin(data_dir: &Path, args: &[&str]) -> Value {
    let output = cts().args(["admin", "--data-dir"]).arg(data_dir).args(args).output().unwrap();
    assert!(output.status.success(), "cts admin {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("cts admin prints JSON")
}

/// Retries `call` while it fails with `stale_code`, the answer of a server that has not reloaded the identities yet
/// (it checks each second).
async fn once_reloaded<T>(
    stale_code: &str,
    mut call: impl AsyncFnMut() -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match call().await {
            Err(error) if error.error_code() == Some(stale_code) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            outcome => return outcome,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_created_with_cts_admin_works_against_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;

    let domain = admin(dir.path(), &["domain", "create", "acme"]);
    let project = admin(dir.path(), &["project", "create", "--domain", "acme", "ap-southeast-3"]);
    assert_eq!(project["domain_id"], domain["id"]);
    let project_id = project["id"].as_str().unwrap().to_owned();
    admin(dir.path(), &["user", "create", "--domain", "acme", "--role", "reporter", "svc"]);
    let key = admin(dir.path(), &["key", "create", "--user", "svc", "--project", &project_id]);
    let listed = admin(dir.path(), &["key", "list"]);
    assert!(listed.as_array().unwrap().iter().all(|key| key.get("secret_key").is_none()), "secrets never listed");

    let credentials = Credentials {
        access_key: key["access_key"].as_str().unwrap().into(),
        secret_key: key["secret_key"].as_str().unwrap().into(),
        project_id: project_id.clone(),
    };
    let client = Client::new(&server.endpoint, credentials).unwrap();
    let trace = serde_json::json!({"trace_name": "createOrder", "service_type": "marketplace",
        "resource_type": "Order", "time": cts_model::now_ms()});
    let ingested = once_reloaded("CTS.0002", async || client.ingest(std::slice::from_ref(&trace)).await).await.unwrap();
    assert_eq!(ingested.accepted.len(), 1);
    let refused = client.list_traces(&[]).await.unwrap_err();
    assert_eq!(refused.error_code(), Some("CTS.0013"), "a reporter may not read traces");

    admin(dir.path(), &["user", "set-role", "svc", "auditor"]);
    let listed = once_reloaded("CTS.0013", async || client.list_traces(&[]).await).await.unwrap();
    assert_eq!(listed.traces.len(), 1, "the auditor sees the project's trace");

    // The admin of the first project still sees nothing of the new tenant.
    assert!(server.client().list_traces(&[]).await.unwrap().traces.is_empty());
    server.kill();
}
