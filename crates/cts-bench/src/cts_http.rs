//! cts through its signed HTTP API: concurrent ingest of pre-serialized
//! bodies, ListTraces pages, and SQL statements (`POST /v3/{project_id}/queries`,
//! signed here with `cts_iam::sign` as `cts_client` signs its calls: the client
//! has no call for it).

use crate::process::Identity;
use crate::query::ListQuery;
use anyhow::{bail, Context};
use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A signed client of one cts.
#[derive(Clone)]
pub struct Cts {
    client: cts_client::Client,
    http: reqwest::Client,
    endpoint: String,
    identity: Identity,
}

/// The answer to a SQL statement.
#[derive(Debug)]
pub enum SqlOutcome {
    Rows(Vec<Vec<serde_json::Value>>),
    /// 501: the server was built without the `sql` feature; 404: it predates the endpoint.
    Unavailable {
        status: u16,
    },
}

impl Cts {
    pub fn new(endpoint: &str, identity: &Identity) -> anyhow::Result<Cts> {
        Ok(Cts {
            client: cts_client::Client::new(endpoint, identity.credentials()).context("building the cts client")?,
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            identity: identity.clone(),
        })
    }

    pub fn project_id(&self) -> &str {
        &self.identity.project_id
    }

    /// The signed client, for single calls.
    pub fn client(&self) -> &cts_client::Client {
        &self.client
    }

    /// Runs one SQL statement through `POST /v3/{project_id}/queries`.
    pub async fn sql(&self, statement: &str) -> anyhow::Result<SqlOutcome> {
        #[derive(serde::Deserialize)]
        struct Answer {
            rows: Vec<Vec<serde_json::Value>>,
        }
        let path = format!("/v3/{}/queries", self.identity.project_id);
        let body = serde_json::to_vec(&serde_json::json!({ "statement": statement }))?;
        let host = self.endpoint.split("://").nth(1).context("endpoint without scheme")?.to_owned();
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Project-Id".to_owned(), self.identity.project_id.clone()),
        ];
        cts_iam::sign::complete_headers(&mut headers, &host, cts_model::now_ms());
        let request =
            cts_iam::sign::SignedRequest { method: "POST", path: &path, query: &[], headers: &headers, body: &body };
        let authorization = cts_iam::sign::sign_request(&self.identity.access_key, &self.identity.secret_key, &request)
            .context("signing the SQL request")?;
        let mut builder = self.http.post(format!("{}{path}", self.endpoint)).body(body);
        for (name, value) in headers.iter().chain([&("Authorization".to_owned(), authorization)]) {
            builder = builder.header(name, value);
        }
        let response = builder.send().await.context("SQL request")?;
        let status = response.status();
        let text = response.text().await?;
        match status.as_u16() {
            200 => Ok(SqlOutcome::Rows(serde_json::from_str::<Answer>(&text).context("SQL answer")?.rows)),
            status @ (404 | 501) => Ok(SqlOutcome::Unavailable { status }),
            _ => bail!("SQL answered {status}: {text}"),
        }
    }

    /// Sends every body with `concurrency` parallel clients; returns the wall
    /// time and how many traces cts accepted.
    pub async fn ingest_all(&self, bodies: Arc<Vec<Bytes>>, concurrency: usize) -> anyhow::Result<(Duration, usize)> {
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (cts, bodies, next) = (self.clone(), Arc::clone(&bodies), Arc::clone(&next));
                tokio::spawn(async move {
                    let mut accepted = 0;
                    while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let outcome = cts.client.ingest_raw(body.clone()).await.context("ingest request")?;
                        if !outcome.rejected.is_empty() {
                            bail!("cts rejected {} traces, first: {:?}", outcome.rejected.len(), outcome.rejected[0]);
                        }
                        accepted += outcome.accepted.len();
                    }
                    anyhow::Ok(accepted)
                })
            })
            .collect();
        let mut accepted = 0;
        for worker in workers {
            accepted += worker.await.context("ingest client panicked")??;
        }
        Ok((started.elapsed(), accepted))
    }

    /// One ListTraces page: the traces as JSON objects.
    pub async fn list_traces(&self, query: &ListQuery) -> anyhow::Result<Vec<serde_json::Value>> {
        let params = query.http_params();
        let pairs: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.clone())).collect();
        let response = self.client.list_traces(&pairs).await.context("ListTraces")?;
        Ok(response.traces.into_iter().map(serde_json::to_value).collect::<Result<_, _>>()?)
    }
}
