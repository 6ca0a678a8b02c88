//! The delivery history the engine records, with an object store that cannot be reached (no Garage needed): each
//! cycle of a tracker that delivers files is a failed entry naming why, a tracker without a bucket leaves none, the
//! history is read back by the next engine, and a deleted tracker's goes with it. (Delivered cycles, and cycles with
//! nothing due leaving no entry, are checked against Garage in `garage.rs`.)

// Shared with the Garage tests, which use all of it.
#[allow(dead_code)]
mod common;

use common::{Fixture, PROJECT};
use cts_obs::{Obs, ObsConfig};
use cts_transfer::{DeliveryHistory, DeliveryOutcome, Keyring};
use std::sync::Arc;

fn unreachable_store() -> Arc<Obs> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let config = ObsConfig {
        endpoint,
        region: "r1".into(),
        access_key: "access".into(),
        secret_key: "secret".into(),
        path_style: true,
    };
    Arc::new(Obs::new(config).unwrap())
}

#[tokio::test]
async fn failed_cycles_are_recorded_read_back_and_dropped_with_their_tracker() {
    let fixture = Fixture::new();
    let request = serde_json::from_value(serde_json::json!({
        "tracker_type": "data", "tracker_name": "orders",
        "data_bucket": {"data_bucket_name": "watched", "data_event": ["WRITE"]},
        "obs_info": {"bucket_name": "trace-files", "file_prefix_name": "audit"},
    }))
    .unwrap();
    let orders = fixture.resources.create_tracker(PROJECT, &request).unwrap();
    let obs = unreachable_store();
    let transfer = fixture.transfer(obs.clone(), Keyring::default());
    for window in [0, 1] {
        assert_eq!(transfer.run_cycle(fixture.at(window)).await.unwrap().trackers_failed, 1);
    }

    let history = transfer.history();
    let recorded = history.recent(&orders.id, 10);
    let times: Vec<i64> = recorded.iter().map(|d| d.time_ms).collect();
    assert_eq!(times, [fixture.at(1), fixture.at(0)], "newest first");
    for delivery in &recorded {
        assert_eq!(
            (delivery.outcome, delivery.windows_delivered, delivery.files_written),
            (DeliveryOutcome::Failed, 0, 0)
        );
        let error = delivery.error.as_ref().unwrap();
        assert_eq!(error.detail, "bucketPolicyError");
        assert!(!error.reason.is_empty());
    }
    assert!(history.recent(&fixture.system_tracker().id, 10).is_empty(), "the system tracker has no bucket");

    let restarted = fixture.transfer(obs, Keyring::default());
    assert_eq!(restarted.history().recent(&orders.id, 10), recorded);

    fixture.resources.delete_trackers(PROJECT, Some("orders"), None).unwrap();
    restarted.run_cycle(fixture.at(2)).await.unwrap();
    assert!(restarted.history().recent(&orders.id, 10).is_empty());
    let file = std::fs::read_to_string(DeliveryHistory::path(fixture.dir.path())).unwrap();
    assert!(!file.contains(&orders.id), "{file}");
}
