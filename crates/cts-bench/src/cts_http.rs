//! cts through its signed HTTP API: concurrent ingest of pre-serialized
//! bodies, and ListTraces pages.

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
}

impl Cts {
    pub fn new(endpoint: &str, identity: &Identity) -> anyhow::Result<Cts> {
        Ok(Cts {
            client: cts_client::Client::new(endpoint, identity.credentials()).context("building the cts client")?,
        })
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
