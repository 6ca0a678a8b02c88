//! A server state on a temporary data dir with a known admin (and a second
//! project with its own key), and signed requests.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use cts_iam::sign::{canonical_query_string, complete_headers, sign_request, SignedRequest};
use cts_iam::{Bootstrap, Iam, MasterKey};
use cts_resources::{ProjectScope, Resources};
use cts_server::app;
use cts_server::AppState;
use cts_store::{Store, StoreConfig};
use serde_json::json;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

pub const ACCESS_KEY: &str = "TESTADMINACCESSKEY01";
pub const SECRET_KEY: &str = "test-secret-key-0123456789-abcdefghijklm";
pub const PROJECT_ID: &str = "0123456789abcdef0123456789abcdef";
/// A second project of the same domain, with its own access key.
pub const OTHER_ACCESS_KEY: &str = "TESTOTHERACCESSKEY02";
pub const OTHER_SECRET_KEY: &str = "other-secret-key-0123456789-abcdefghijk";
pub const OTHER_PROJECT_ID: &str = "fedcba9876543210fedcba9876543210";

pub struct Harness {
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

pub fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    let bootstrap = Bootstrap {
        access_key: Some(ACCESS_KEY.into()),
        secret_key: Some(SECRET_KEY.into()),
        project_id: Some(PROJECT_ID.into()),
        domain_id: None,
        master_key: None,
    };
    Iam::open(dir.path(), bootstrap.clone()).unwrap();
    add_other_project(dir.path());
    let (iam, _) = Iam::open(dir.path(), bootstrap).unwrap();
    let resources = open_resources(dir.path(), &iam);
    Harness { state: AppState::new(store, Arc::new(iam), Arc::new(resources)), dir }
}

/// The trackers of both projects, as `cts serve` opens them.
pub fn open_resources(data_dir: &Path, iam: &Iam) -> Resources {
    let projects = iam.projects();
    let projects: Vec<_> = projects
        .iter()
        .map(|project| ProjectScope { project_id: &project.id, domain_id: &project.domain_id })
        .collect();
    Resources::open(data_dir, &projects).unwrap()
}

/// Adds [`OTHER_PROJECT_ID`] and a user holding [`OTHER_ACCESS_KEY`] to the
/// stored identities (cts has no API for projects yet).
fn add_other_project(data_dir: &Path) {
    let path = data_dir.join("iam").join("state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let domain_id = state["domains"][0]["id"].as_str().unwrap().to_owned();
    let sealed = MasterKey::load(data_dir, None).unwrap().seal(OTHER_SECRET_KEY, OTHER_ACCESS_KEY);
    let push = |state: &mut serde_json::Value, list: &str, value: serde_json::Value| {
        state[list].as_array_mut().unwrap().push(value);
    };
    push(&mut state, "projects", json!({"id": OTHER_PROJECT_ID, "name": "other", "domain_id": domain_id}));
    push(&mut state, "users", json!({"id": "other-user", "name": "other", "domain_id": domain_id, "role": "admin"}));
    push(
        &mut state,
        "access_keys",
        json!({"access_key": OTHER_ACCESS_KEY, "user_id": "other-user", "project_id": OTHER_PROJECT_ID,
               "sealed_secret_key": sealed, "created_at_ms": 0}),
    );
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
}

/// What to sign and send; `tamper` changes the signed request afterwards.
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    pub content_type: &'a str,
    pub body: Vec<u8>,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub signed_at_ms: i64,
}

impl<'a> Call<'a> {
    pub fn new(method: &'a str, path: &'a str) -> Call<'a> {
        Call {
            method,
            path,
            query: Vec::new(),
            content_type: "application/json",
            body: Vec::new(),
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
            signed_at_ms: cts_model::now_ms(),
        }
    }

    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The headers the SDK would send, signed.
    pub fn signed_headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![("Content-Type".to_owned(), self.content_type.to_owned())];
        complete_headers(&mut headers, "localhost:8080", self.signed_at_ms);
        let request = SignedRequest {
            method: self.method,
            path: self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        };
        let authorization = sign_request(self.access_key, self.secret_key, &request).unwrap();
        headers.push(("Authorization".to_owned(), authorization));
        headers
    }

    pub fn request(&self) -> Request<Body> {
        self.request_with_headers(self.signed_headers())
    }

    pub fn request_with_headers(&self, headers: Vec<(String, String)>) -> Request<Body> {
        let query = canonical_query_string(&self.query);
        let uri = if query.is_empty() { self.path.to_owned() } else { format!("{}?{query}", self.path) };
        let mut builder = Request::builder().method(self.method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        builder.body(Body::from(self.body.clone())).unwrap()
    }
}

pub fn trace_json(trace_name: &str, time: i64) -> serde_json::Value {
    serde_json::json!({
        "trace_name": trace_name,
        "service_type": "marketplace",
        "resource_type": "Order",
        "time": time,
        "user": {"name": "alice"},
    })
}

/// Sends `request` through the whole router: status, response (body taken out) and body as JSON
/// (or as a JSON string when it is not JSON).
pub async fn send(harness: &Harness, request: Request<Body>) -> (StatusCode, Response<Body>, Value) {
    let response = app(harness.state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, Response::from_parts(parts, Body::empty()), json)
}

pub fn error_code(body: &Value) -> &str {
    body["error_code"].as_str().unwrap_or("<none>")
}
