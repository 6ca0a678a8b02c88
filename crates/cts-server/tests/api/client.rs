//! `cts-client` against a real server on 127.0.0.1:0: signing as the SDK
//! does, typed answers, CTS errors, graceful shutdown.

use crate::common::{harness, trace_json, ACCESS_KEY, PROJECT_ID, SECRET_KEY};
use cts_client::{Client, ClientError, Credentials};

fn credentials(secret_key: &str, project_id: &str) -> Credentials {
    Credentials { access_key: ACCESS_KEY.into(), secret_key: secret_key.into(), project_id: project_id.into() }
}

#[tokio::test]
async fn client_ingests_lists_and_reports_errors() {
    let harness = harness();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cts_server::serve(listener, harness.state.clone(), async {
        stopped.await.ok();
    }));

    let client = Client::new(&endpoint, credentials(SECRET_KEY, PROJECT_ID)).unwrap();
    client.health().await.unwrap();

    let now = cts_model::now_ms();
    let traces: Vec<_> = (0..5).map(|i| trace_json("queryOrderList", now - 1000 * i)).collect();
    let ingested = client.ingest(&traces).await.unwrap();
    assert_eq!((ingested.accepted.len(), ingested.rejected.len()), (5, 0));

    let raw = serde_json::to_vec(&serde_json::json!({"traces": [trace_json("renewOrder", now), {"time": 1}]})).unwrap();
    let ingested = client.ingest_raw(raw.into()).await.unwrap();
    assert_eq!((ingested.accepted.len(), ingested.rejected.len()), (1, 1));
    assert_eq!(ingested.rejected[0].error_code, "CTS.0003");

    // Page through all six with limit 4 and parameters that need encoding.
    let first = client
        .list_traces(&[("limit", "4".into()), ("service_type", "marketplace".into()), ("user", "alice".into())])
        .await
        .unwrap();
    assert_eq!(first.meta_data.count, 4);
    let marker = first.meta_data.marker.clone().expect("a second page");
    let second = client.list_traces(&[("limit", "4".into()), ("next", marker)]).await.unwrap();
    assert_eq!(second.meta_data.count, 2);
    assert_eq!(second.meta_data.marker, None);
    let no_match = client.list_traces(&[("user", "bob & eve/ü".into())]).await.unwrap();
    assert_eq!(no_match.meta_data.count, 0);

    let bad_parameter = client.list_traces(&[("limit", "0".into())]).await.unwrap_err();
    assert_eq!(bad_parameter.error_code(), Some("CTS.0300"), "{bad_parameter}");

    let wrong_secret = Client::new(&endpoint, credentials("another-secret-0123456789", PROJECT_ID)).unwrap();
    let error = wrong_secret.list_traces(&[]).await.unwrap_err();
    assert!(matches!(&error, ClientError::Api { status: 401, error_code, .. } if error_code == "CTS.0002"), "{error}");

    let wrong_project = Client::new(&endpoint, credentials(SECRET_KEY, "ffffffffffffffffffffffffffffffff")).unwrap();
    let error = wrong_project.ingest(&traces).await.unwrap_err();
    assert!(matches!(&error, ClientError::Api { status: 403, error_code, .. } if error_code == "CTS.0013"), "{error}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(client.health().await.is_err(), "the server stopped");
}
