//! `cts verify --bucket` / `--dir` on trace files a tracker with `is_support_validate` delivered to Garage
//! (`CTS_OBS_*`, exported by `scripts/test.sh`): valid as delivered, in the bucket and in a downloaded copy; a
//! file altered in either is named and fails the command.

mod common;

use common::{cts, PROJECT_ID};
use cts_ledger::{Ledger, LedgerConfig};
use cts_obs::{Obs, ObsConfig};
use cts_resources::{ProjectScope, Resources, TrackerRequest};
use cts_store::{AppendLog, Store, StoreConfig};
use cts_transfer::{Transfer, TransferConfig};
use object_store::ObjectStoreExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const WINDOW_MS: i64 = 10_000;

fn garage() -> ObsConfig {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run ./scripts/test.sh"));
    ObsConfig {
        endpoint: var("CTS_OBS_ENDPOINT"),
        region: var("CTS_OBS_REGION"),
        access_key: var("CTS_OBS_ACCESS_KEY"),
        secret_key: var("CTS_OBS_SECRET_KEY"),
        path_style: true,
    }
}

/// Delivers 30 traces of an hour ago over digest periods of 30 s and writes every digest; returns the bucket.
async fn deliver(data_dir: &Path) -> String {
    let ledger = Arc::new(Ledger::open(LedgerConfig::new(data_dir)).unwrap());
    let store = Store::open_with_log(StoreConfig::new(data_dir), Some(ledger.clone() as Arc<dyn AppendLog>)).unwrap();
    let scope = ProjectScope { project_id: PROJECT_ID, domain_id: "domain-1" };
    let resources = Arc::new(Resources::open(data_dir, &[scope]).unwrap());
    let bucket = format!("cts-cli-verify-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let request: TrackerRequest = serde_json::from_value(serde_json::json!({
        "tracker_type": "system", "is_support_validate": true,
        "obs_info": {"bucket_name": bucket, "file_prefix_name": "audit", "is_obs_created": true},
    }))
    .unwrap();
    resources.update_tracker(scope, &request).unwrap();
    let base = (cts_model::now_ms() - 3_600_000) / WINDOW_MS * WINDOW_MS;
    let traces = (0..30)
        .map(|i| {
            let time = base + i * 1_700;
            let input = serde_json::json!({
                "trace_name": "createOrder", "trace_rating": "normal", "trace_type": "ApiCall",
                "service_type": "marketplace", "resource_type": "Order", "time": time,
                "user": {"id": "u1", "name": "alice", "domain": {"id": "d1", "name": "acme"}},
            });
            cts_model::TraceInput::from_json(&input.to_string()).unwrap().into_trace(PROJECT_ID, time).unwrap()
        })
        .collect();
    store.append(traces).await.unwrap();
    let config = TransferConfig {
        late_lookback: Duration::from_secs(60),
        digest_period: Duration::from_secs(30),
        ..TransferConfig::new(Duration::from_millis(WINDOW_MS as u64), "ap-southeast-3")
    };
    let obs = Arc::new(Obs::new(garage()).unwrap());
    let transfer = Transfer::open(data_dir, store.clone(), resources, obs, config).unwrap().with_ledger(ledger);
    transfer.run_cycle(base + 1_000).await.unwrap();
    let report = transfer.run_cycle(base + 300_000).await.unwrap();
    assert!(report.digests_written >= 8 && report.files_written >= 5, "{report:?}");
    bucket
}

fn verify(args: &[&str]) -> (bool, String) {
    let output = cts().arg("verify").args(args).output().unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_bucket_and_dir_pass_as_delivered_and_name_an_altered_file() {
    let data = tempfile::tempdir().unwrap();
    let bucket = deliver(data.path()).await;
    let data_dir = data.path().to_str().unwrap();
    let url = format!("s3://{bucket}");

    let (valid, out) = verify(&["--data-dir", data_dir, "--bucket", &url]);
    assert!(valid && out.contains("valid: ") && out.contains("30 traces"), "{out}");
    let (valid, out) = verify(&["--data-dir", data_dir, "--bucket", &format!("{url}/CloudTraces"), "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(valid && report["problems"] == serde_json::json!([]) && report["traces_listed"] == 30, "{out}");

    // A downloaded copy, checked offline with only the published keys.
    let copy = tempfile::tempdir().unwrap();
    let objects = Obs::new(garage()).unwrap().bucket(&bucket).unwrap();
    let listed: Vec<_> = futures_util::TryStreamExt::try_collect(objects.list(None)).await.unwrap();
    for meta in &listed {
        let path = copy.path().join(meta.location.as_ref());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, objects.get(&meta.location).await.unwrap().bytes().await.unwrap()).unwrap();
    }
    let keys = copy.path().join("keys");
    std::fs::copy(data.path().join("ledger/keys"), &keys).unwrap();
    let copy_dir = copy.path().join("copy");
    std::fs::create_dir(&copy_dir).unwrap();
    std::fs::rename(copy.path().join("CloudTraces"), copy_dir.join("CloudTraces")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let offline = |extra: &[&str]| {
        let mut args = vec!["--data-dir", elsewhere.path().to_str().unwrap(), "--dir", copy_dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        verify(&args)
    };
    assert!(!offline(&[]).0, "no keys in an empty data directory: refused");
    let (valid, out) = offline(&["--public-key", keys.to_str().unwrap()]);
    assert!(valid && out.contains("30 traces"), "{out}");

    let file = listed.iter().map(|meta| meta.location.to_string()).find(|key| !key.contains("/Digest/")).unwrap();
    std::fs::write(copy_dir.join(&file), b"{\"traces\":[]}").unwrap();
    let (valid, out) = offline(&["--public-key", keys.to_str().unwrap()]);
    assert!(!valid && out.contains(&format!("altered: {file}")) && out.contains("INVALID"), "{out}");
    objects.put(&file.as_str().into(), b"{\"traces\":[]}".to_vec().into()).await.unwrap();
    let (valid, out) = verify(&["--data-dir", data_dir, "--bucket", &url]);
    assert!(!valid && out.contains(&format!("altered: {file}")), "{out}");
}
