//! What the integration tests share: a data directory with a store and resources, traces spread over windows.

use cts_ledger::{Ledger, LedgerConfig};
use cts_model::{Trace, TraceInput};
use cts_obs::Obs;
use cts_resources::{ProjectScope, Resources, Tracker, TrackerRequest};
use cts_store::{AppendLog, Store, StoreConfig};
use cts_transfer::layout::Window;
use cts_transfer::{Keyring, Transfer, TransferConfig};
use std::sync::Arc;
use std::time::Duration;

pub const PROJECT: ProjectScope<'static> = ProjectScope { project_id: "project-a", domain_id: "domain-1" };
pub const WINDOW_MS: i64 = 10_000;
pub const REGION: &str = "ap-southeast-3";
/// Digest periods of three windows.
pub const DIGEST_PERIOD_MS: i64 = 30_000;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub resources: Arc<Resources>,
    /// The store's append log; it signs digests.
    pub ledger: Arc<Ledger>,
    /// The start of the first window, an hour ago.
    pub base: i64,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(LedgerConfig::new(dir.path())).unwrap());
        let store =
            Store::open_with_log(StoreConfig::new(dir.path()), Some(ledger.clone() as Arc<dyn AppendLog>)).unwrap();
        let resources = Arc::new(Resources::open(dir.path(), &[PROJECT]).unwrap());
        let base = Window::containing(cts_model::now_ms() - 3_600_000, WINDOW_MS).start_ms;
        Fixture { dir, store, resources, ledger, base }
    }

    pub fn configure(&self, body: serde_json::Value) -> Tracker {
        let mut request = serde_json::json!({"tracker_type": "system"});
        request.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        let request: TrackerRequest = serde_json::from_value(request).unwrap();
        self.resources.update_tracker(PROJECT, &request).unwrap()
    }

    pub fn transfer(&self, obs: Arc<Obs>, keyring: Keyring) -> Transfer {
        let config = TransferConfig {
            settle: Duration::from_secs(2),
            late_lookback: Duration::from_secs(120),
            max_file_bytes: 1_500,
            keyring,
            digest_period: Duration::from_millis(DIGEST_PERIOD_MS as u64),
            ..TransferConfig::new(Duration::from_millis(WINDOW_MS as u64), REGION)
        };
        Transfer::open(self.dir.path(), self.store.clone(), self.resources.clone(), obs, config)
            .unwrap()
            .with_ledger(self.ledger.clone())
    }

    /// Appends `count` traces at `offset_ms` after the base, spaced 1.3 s apart, over two services.
    pub async fn append(&self, offset_ms: i64, count: usize) -> Vec<Trace> {
        let traces: Vec<Trace> = (0..count)
            .map(|i| {
                let time = self.base + offset_ms + i as i64 * 1_300;
                let service = if i % 3 == 0 { "CTS" } else { "marketplace" };
                let input = serde_json::json!({
                    "trace_id": uuid::Uuid::new_v4().to_string(), "trace_name": "createOrder",
                    "trace_rating": "normal", "trace_type": "ApiCall", "service_type": service,
                    "resource_type": "Order", "time": time,
                    "user": {"id": "u1", "name": "alice", "domain": {"id": "d1", "name": "acme"}},
                });
                TraceInput::from_json(&input.to_string()).unwrap().into_trace(PROJECT.project_id, time).unwrap()
            })
            .collect();
        self.store.append(traces.clone()).await.unwrap();
        traces
    }

    pub fn system_tracker(&self) -> Tracker {
        self.resources.list_trackers(PROJECT, Some("system"), None).unwrap().remove(0)
    }
}

impl Fixture {
    /// The time `at` three seconds into window `window` (counted from the base).
    pub fn at(&self, window: i64) -> i64 {
        self.base + window * WINDOW_MS + 3_000
    }
}
