//! A client of the cts API (ingest, ListTraces, health) for the CLI, the
//! benchmark and tests. Every request is signed with `SDK-HMAC-SHA256` exactly
//! as the Huawei Cloud Python SDK signs it: the headers it signs (`Content-Type`,
//! `Host`, `User-Agent`, `X-Project-Id`, `X-Sdk-Date`), the canonical query
//! string sent as the query. Connections are pooled.

use bytes::Bytes;
use cts_iam::sign::{canonical_query_string, complete_headers, sign_request, SignedRequest};
use cts_model::Trace;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use std::fmt;

const USER_AGENT: &str = concat!("cts-client/", env!("CARGO_PKG_VERSION"));

/// The access key pair and the project it belongs to.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub project_id: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"..")
            .field("project_id", &self.project_id)
            .finish()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid endpoint {endpoint}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("the project id {0:?} must be 1-64 of A-Z, a-z, 0-9, '-', '_'")]
    InvalidProjectId(String),
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered in the CTS error format.
    #[error("HTTP {status} {error_code}: {error_msg}")]
    Api { status: u16, error_code: String, error_msg: String },
    /// The server answered something this client does not understand.
    #[error("unexpected answer (HTTP {status}): {body}")]
    UnexpectedResponse { status: u16, body: String },
}

impl ClientError {
    /// The CTS error code (`CTS.XXXX`) of an API error.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            ClientError::Api { error_code, .. } => Some(error_code),
            _ => None,
        }
    }
}

/// The answer to an ingest call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct IngestResponse {
    pub accepted: Vec<AcceptedTrace>,
    pub rejected: Vec<RejectedTrace>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AcceptedTrace {
    pub trace_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RejectedTrace {
    pub index: usize,
    pub error_code: String,
    pub error_msg: String,
}

/// The answer to ListTraces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ListTracesResponse {
    pub traces: Vec<Trace>,
    pub meta_data: MetaData,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct MetaData {
    /// Traces in this page.
    pub count: usize,
    /// Pass as `next` for the following (older) page; `None` on the last page.
    pub marker: Option<String>,
}

/// The answer to an SQL query (`POST /v3/{project_id}/queries`, servers built with the `sql` feature).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct QueryResponse {
    pub columns: Vec<QueryColumn>,
    /// Values in column order: numbers, strings, booleans, arrays, null; timestamps as RFC 3339.
    pub rows: Vec<Vec<serde_json::Value>>,
    pub row_count: usize,
    /// Rows were cut at the server's row limit.
    pub truncated: bool,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct QueryColumn {
    pub name: String,
    /// The Arrow type (`Int64`, `Utf8`, ...).
    #[serde(rename = "type")]
    pub data_type: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: String,
    error_msg: String,
}

/// A signed client of one cts endpoint.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Url,
    /// The endpoint's path without the trailing `/` (usually empty).
    prefix: String,
    /// `host[:port]` as in the endpoint; sent and signed as `Host`.
    host: String,
    credentials: Credentials,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint.as_str())
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl Client {
    /// A client of `endpoint` (`http://host:port`, optionally with a path prefix).
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<Client, ClientError> {
        let invalid =
            |reason: &str| ClientError::InvalidEndpoint { endpoint: endpoint.to_owned(), reason: reason.to_owned() };
        let url = Url::parse(endpoint).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("expected http(s)://host[:port][/prefix]"));
        }
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(invalid("no host")),
        };
        let valid_project = (1..=64).contains(&credentials.project_id.len())
            && credentials.project_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_project {
            return Err(ClientError::InvalidProjectId(credentials.project_id));
        }
        let prefix = url.path().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder().build()?;
        Ok(Client { http, endpoint: url, prefix, host, credentials })
    }

    /// Sends traces (JSON objects as `TraceInput` reads them) in one batch.
    pub async fn ingest(&self, traces: &[serde_json::Value]) -> Result<IngestResponse, ClientError> {
        #[derive(Serialize)]
        struct Batch<'a> {
            traces: &'a [serde_json::Value],
        }
        let body = serde_json::to_vec(&Batch { traces }).expect("JSON values serialize");
        self.ingest_raw(Bytes::from(body)).await
    }

    /// Sends a pre-serialized ingest body (`{"traces":[...]}`).
    pub async fn ingest_raw(&self, body: Bytes) -> Result<IngestResponse, ClientError> {
        let path = format!("/v3/{}/traces", self.credentials.project_id);
        self.send(Method::POST, &path, &[], body).await
    }

    /// ListTraces with the given query parameters (`trace_type`, `limit`, `next`, filters…).
    pub async fn list_traces(&self, params: &[(&str, String)]) -> Result<ListTracesResponse, ClientError> {
        let query: Vec<(String, String)> =
            params.iter().map(|(key, value)| ((*key).to_owned(), value.clone())).collect();
        let path = format!("/v3/{}/traces", self.credentials.project_id);
        self.send(Method::GET, &path, &query, Bytes::new()).await
    }

    /// `GET /v3/{project_id}/traces/export` with the given parameters (`format` and ListTraces's
    /// filters): the successful response, whose body the caller streams.
    pub async fn export(&self, params: &[(&str, String)]) -> Result<reqwest::Response, ClientError> {
        let query: Vec<(String, String)> =
            params.iter().map(|(key, value)| ((*key).to_owned(), value.clone())).collect();
        let path = format!("/v3/{}/traces/export", self.credentials.project_id);
        let response = self.send_signed(Method::GET, &path, &query, Bytes::new()).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            let status = response.status().as_u16();
            Err(api_error(status, &response.bytes().await?))
        }
    }

    /// One SQL query (a SELECT over the `traces` table of the client's project).
    pub async fn query(&self, statement: &str) -> Result<QueryResponse, ClientError> {
        let body = serde_json::to_vec(&serde_json::json!({ "statement": statement })).expect("JSON serialises");
        let path = format!("/v3/{}/queries", self.credentials.project_id);
        self.send(Method::POST, &path, &[], Bytes::from(body)).await
    }

    /// `GET /health` (unsigned).
    pub async fn health(&self) -> Result<(), ClientError> {
        let response = self.http.get(self.url("/health", "")).send().await?;
        decode::<serde_json::Value>(response).await.map(drop)
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Bytes,
    ) -> Result<T, ClientError> {
        decode(self.send_signed(method, path, query, body).await?).await
    }

    async fn send_signed(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Bytes,
    ) -> Result<reqwest::Response, ClientError> {
        let full_path = format!("{}{path}", self.prefix);
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("User-Agent".to_owned(), USER_AGENT.to_owned()),
            ("X-Project-Id".to_owned(), self.credentials.project_id.clone()),
        ];
        complete_headers(&mut headers, &self.host, cts_model::now_ms());
        let authorization = sign_request(
            &self.credentials.access_key,
            &self.credentials.secret_key,
            &SignedRequest { method: method.as_str(), path: &full_path, query, headers: &headers, body: &body },
        )
        .expect("the client's headers are unique and dated");
        headers.push(("Authorization".to_owned(), authorization));
        let mut header_map = HeaderMap::with_capacity(headers.len());
        for (name, value) in &headers {
            let name = HeaderName::try_from(name.as_str()).expect("the client's header names are valid");
            let value = HeaderValue::try_from(value.as_str()).map_err(|_| ClientError::InvalidEndpoint {
                endpoint: self.endpoint.to_string(),
                reason: format!("header {name} is not a valid header value"),
            })?;
            header_map.insert(name, value);
        }
        let url = self.url(path, &canonical_query_string(query));
        Ok(self.http.request(method, url).headers(header_map).body(body).send().await?)
    }

    fn url(&self, path: &str, query: &str) -> Url {
        let mut url = self.endpoint.clone();
        url.set_path(&format!("{}{path}", self.prefix));
        url.set_query(Some(query).filter(|q| !q.is_empty()));
        url
    }
}

async fn decode<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
    let status = response.status();
    let body = response.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| ClientError::UnexpectedResponse {
            status: status.as_u16(),
            body: format!("{e}: {}", String::from_utf8_lossy(&body)),
        });
    }
    Err(api_error(status.as_u16(), &body))
}

/// The error of a failed call: the CTS error the body carries, else the body as text.
fn api_error(status: u16, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => ClientError::Api { status, error_code: error.error_code, error_msg: error.error_msg },
        Err(_) => ClientError::UnexpectedResponse { status, body: String::from_utf8_lossy(body).into_owned() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(project_id: &str) -> Credentials {
        Credentials { access_key: "AK".into(), secret_key: "SK".into(), project_id: project_id.into() }
    }

    #[test]
    fn endpoint_host_and_prefix() {
        let cases = [
            ("http://127.0.0.1:8080", "127.0.0.1:8080", "/v3/p/traces"),
            ("http://cts.example/", "cts.example", "/v3/p/traces"),
            ("http://cts.example:80/api/", "cts.example", "/api/v3/p/traces"),
            ("http://[::1]:9000", "[::1]:9000", "/v3/p/traces"),
        ];
        for (endpoint, host, path) in cases {
            let client = Client::new(endpoint, credentials("p")).unwrap();
            assert_eq!(client.host, host, "{endpoint}");
            assert_eq!(client.url("/v3/p/traces", "a=1").path(), path, "{endpoint}");
        }
    }

    #[test]
    fn bad_endpoints_and_project_ids_are_refused() {
        for endpoint in ["ftp://h", "not a url", "http://h/?q=1"] {
            assert!(
                matches!(Client::new(endpoint, credentials("p")), Err(ClientError::InvalidEndpoint { .. })),
                "{endpoint}"
            );
        }
        for project in ["", "a/b", "a b"] {
            assert!(matches!(Client::new("http://h", credentials(project)), Err(ClientError::InvalidProjectId(_))));
        }
    }
}
