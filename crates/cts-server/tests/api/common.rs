//! A server state on a temporary data dir with a known admin, and signed requests.

use axum::body::Body;
use axum::http::Request;
use cts_iam::sign::{canonical_query_string, complete_headers, sign_request, SignedRequest};
use cts_iam::{Bootstrap, Iam};
use cts_server::AppState;
use cts_store::{Store, StoreConfig};
use std::sync::Arc;

pub const ACCESS_KEY: &str = "TESTADMINACCESSKEY01";
pub const SECRET_KEY: &str = "test-secret-key-0123456789-abcdefghijklm";
pub const PROJECT_ID: &str = "0123456789abcdef0123456789abcdef";

pub struct Harness {
    pub state: AppState,
    _dir: tempfile::TempDir,
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
    let (iam, _) = Iam::open(dir.path(), bootstrap).unwrap();
    Harness { state: AppState::new(store, Arc::new(iam)), _dir: dir }
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
