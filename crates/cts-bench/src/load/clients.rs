//! The clients of a load run: ingest clients POST batches the producer thread
//! generates, query clients cycle through the ListTraces/export mix, all until
//! the shared [`Budget`] runs out; afterwards [`look_up`] finds acknowledged
//! trace ids again.

use super::report::{FailureLabel, Operation, Tallies, RATE_LIMITED};
use crate::query::ListQuery;
use bytes::Bytes;
use cts_client::{Client, ClientError};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

/// How long a client pauses after a 429 before its next request (the client
/// does not see `Retry-After`).
const RATE_LIMITED_PAUSE: Duration = Duration::from_millis(50);
/// Following pages fetched after each broad first page.
const NEXT_PAGES: usize = 3;
/// Traces per broad and following page.
const BROAD_PAGE: usize = 100;
/// Traces per selective and by-resource page.
const SELECTIVE_PAGE: usize = 10;

/// The bounds every client draws from: a deadline and a number of requests.
pub struct Budget {
    deadline: Instant,
    limit: u64,
    taken: AtomicU64,
}

impl Budget {
    pub fn new(duration: Duration, limit: u64) -> Budget {
        Budget { deadline: Instant::now() + duration, limit, taken: AtomicU64::new(0) }
    }

    /// Whether one more request may be sent (and counts it).
    pub fn take(&self) -> bool {
        Instant::now() < self.deadline && self.taken.fetch_add(1, Ordering::Relaxed) < self.limit
    }

    /// Whether the request bound (rather than the deadline) stopped the clients.
    pub fn requests_ran_out(&self) -> bool {
        self.taken.load(Ordering::Relaxed) >= self.limit
    }
}

/// A generated ingest request: the `{"traces":[...]}` body.
pub type IngestBody = Bytes;

/// The label a failed request is counted under.
pub fn failure_label(error: &ClientError) -> FailureLabel {
    match error {
        ClientError::Api { status, .. } | ClientError::UnexpectedResponse { status, .. } => status.to_string(),
        ClientError::Transport(_) => "transport".to_owned(),
        ClientError::InvalidEndpoint { .. } | ClientError::InvalidProjectId(_) => "client".to_owned(),
    }
}

async fn pause_if_rate_limited(label: &str) {
    if label == RATE_LIMITED {
        tokio::time::sleep(RATE_LIMITED_PAUSE).await;
    }
}

/// What one ingest client did.
#[derive(Debug, Default)]
pub struct Ingested {
    pub tallies: Tallies,
    pub acknowledged: Vec<String>,
    /// Time spent waiting for the producer to generate a body.
    pub waited_for_bodies: Duration,
}

/// POSTs bodies from `bodies` until the budget or the bodies run out.
pub async fn ingest(client: Client, bodies: Arc<Mutex<mpsc::Receiver<IngestBody>>>, budget: Arc<Budget>) -> Ingested {
    let mut ingested = Ingested::default();
    while budget.take() {
        let waiting = Instant::now();
        let Some(body) = bodies.lock().await.recv().await else { break };
        ingested.waited_for_bodies += waiting.elapsed();
        let started = Instant::now();
        match client.ingest_raw(body).await {
            Ok(answer) => {
                let tally = ingested.tallies.succeeded(Operation::Ingest, started.elapsed());
                tally.traces_accepted += answer.accepted.len() as u64;
                tally.traces_rejected += answer.rejected.len() as u64;
                ingested.acknowledged.extend(answer.accepted.into_iter().map(|trace| trace.trace_id));
            }
            Err(error) => {
                let label = failure_label(&error);
                ingested.tallies.failed(Operation::Ingest, label.clone());
                pause_if_rate_limited(&label).await;
            }
        }
    }
    ingested
}

/// What query clients ask about: values that occur in the workload, and the window.
pub struct QueryPlan {
    /// (user name, trace name) pairs.
    pub pairs: Vec<(String, String)>,
    pub resource_ids: Vec<String>,
    /// The start of every window (the workload's oldest possible trace).
    pub from_ms: i64,
}

impl QueryPlan {
    fn query(&self, filters: Vec<(&'static str, String)>, limit: usize) -> ListQuery {
        ListQuery { filters, terms: Vec::new(), from_ms: self.from_ms, to_ms: cts_model::now_ms(), limit }
    }

    fn selective(&self, rng: &mut StdRng) -> ListQuery {
        let (user, trace_name) = self.pairs.choose(rng).expect("the plan has pairs");
        self.query(vec![("user", user.clone()), ("trace_name", trace_name.clone())], SELECTIVE_PAGE)
    }

    fn by_resource(&self, rng: &mut StdRng) -> ListQuery {
        let resource_id = self.resource_ids.choose(rng).expect("the plan has resource ids");
        self.query(vec![("resource_id", resource_id.clone())], SELECTIVE_PAGE)
    }
}

/// One query request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Selective,
    ByResource,
    Broad,
    /// The page after the one whose marker this is.
    NextPage(String),
    Export,
}

/// What a query client starts, in turn; a broad first page is followed by up to [`NEXT_PAGES`] pages.
const QUERY_CYCLE: [Step; 4] = [Step::Selective, Step::ByResource, Step::Broad, Step::Export];

impl Step {
    fn operation(&self) -> Operation {
        match self {
            Step::Selective => Operation::ListSelective,
            Step::ByResource => Operation::ListByResource,
            Step::Broad => Operation::ListBroad,
            Step::NextPage(_) => Operation::ListNextPage,
            Step::Export => Operation::Export,
        }
    }

    /// Sends the request; returns the marker of the next page, if the answer has one.
    async fn send(self, client: &Client, plan: &QueryPlan, rng: &mut StdRng) -> Result<Option<String>, ClientError> {
        let page = |query: ListQuery, marker: Option<String>| async move {
            let mut params = query.http_params();
            params.extend(marker.map(|marker| ("next", marker)));
            client.list_traces(&params).await.map(|page| page.meta_data.marker)
        };
        match self {
            Step::Selective => page(plan.selective(rng), None).await,
            Step::ByResource => page(plan.by_resource(rng), None).await,
            Step::Broad => page(plan.query(Vec::new(), BROAD_PAGE), None).await,
            Step::NextPage(marker) => page(plan.query(Vec::new(), BROAD_PAGE), Some(marker)).await,
            Step::Export => {
                let mut params = plan.selective(rng).http_params();
                params.push(("format", "csv".to_owned()));
                client.export(&params).await?.bytes().await?;
                Ok(None)
            }
        }
    }
}

/// Sends the query mix until the budget runs out.
pub async fn query(client: Client, plan: Arc<QueryPlan>, budget: Arc<Budget>, seed: u64) -> Tallies {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tallies = Tallies::default();
    let mut cycle = QUERY_CYCLE.iter().cycle();
    // The next page to fetch, and how many more to follow after it.
    let mut following: Option<(Step, usize)> = None;
    while budget.take() {
        let (step, pages_left) = following.take().unwrap_or_else(|| {
            let step = cycle.next().expect("the cycle is endless").clone();
            let pages_left = if step == Step::Broad { NEXT_PAGES } else { 0 };
            (step, pages_left)
        });
        let operation = step.operation();
        let started = Instant::now();
        match step.send(&client, &plan, &mut rng).await {
            Ok(marker) => {
                tallies.succeeded(operation, started.elapsed());
                following = marker.filter(|_| pages_left > 0).map(|marker| (Step::NextPage(marker), pages_left - 1));
            }
            Err(error) => {
                let label = failure_label(&error);
                tallies.failed(operation, label.clone());
                pause_if_rate_limited(&label).await;
            }
        }
    }
    tallies
}

/// Looks each id up with ListTraces `trace_id` from `concurrency` tasks
/// (retrying 429s until `deadline`); returns the ids not found.
pub async fn look_up(
    client: &Client,
    ids: Vec<String>,
    concurrency: usize,
    deadline: Instant,
) -> anyhow::Result<Vec<String>> {
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, ids, next) = (client.clone(), Arc::clone(&ids), Arc::clone(&next));
            tokio::spawn(async move {
                let mut missing = Vec::new();
                while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if !is_listed(&client, id, deadline).await? {
                        missing.push(id.clone());
                    }
                }
                anyhow::Ok(missing)
            })
        })
        .collect();
    let mut missing = Vec::new();
    for worker in workers {
        missing.extend(worker.await??);
    }
    Ok(missing)
}

async fn is_listed(client: &Client, trace_id: &str, deadline: Instant) -> anyhow::Result<bool> {
    let params = [("trace_type", "system".to_owned()), ("trace_id", trace_id.to_owned())];
    loop {
        match client.list_traces(&params).await {
            Ok(page) => return Ok(page.traces.iter().any(|trace| trace.trace_id == trace_id)),
            Err(error) if failure_label(&error) == RATE_LIMITED && Instant::now() < deadline => {
                tokio::time::sleep(RATE_LIMITED_PAUSE).await;
            }
            Err(error) => return Err(anyhow::Error::new(error).context(format!("looking up trace {trace_id}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_stops_at_the_request_bound() {
        let budget = Budget::new(Duration::from_secs(3_600), 3);
        assert_eq!((0..5).filter(|_| budget.take()).count(), 3);
        assert!(budget.requests_ran_out());
    }

    #[test]
    fn the_budget_stops_at_the_deadline() {
        let budget = Budget::new(Duration::ZERO, 1_000);
        assert!(!budget.take());
        assert!(!budget.requests_ran_out());
    }

    #[test]
    fn failures_are_labelled_by_status() {
        let api = ClientError::Api { status: 429, error_code: "CTS.0429".into(), error_msg: "slow down".into() };
        let unexpected = ClientError::UnexpectedResponse { status: 502, body: "bad gateway".into() };
        assert_eq!(failure_label(&api), RATE_LIMITED);
        assert_eq!(failure_label(&unexpected), "502");
        assert_eq!(failure_label(&ClientError::InvalidProjectId("a b".into())), "client");
    }
}
