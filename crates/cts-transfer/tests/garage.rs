//! Delivery against a real S3-compatible store: Garage, started by `scripts/test.sh` (through
//! `scripts/garage.sh`), which exports its endpoint and a key allowed to create buckets as `CTS_OBS_*`.
//!
//! The engine is driven cycle by cycle with explicit times (windows of 10 s over traces of the last hour), and
//! reaches Garage through a loopback proxy the tests cut to make the store unreachable.

mod common;

use common::{Fixture, DIGEST_PERIOD_MS, REGION, WINDOW_MS};
use cts_ledger::NoteVerifier;
use cts_model::Trace;
use cts_obs::{Obs, ObsConfig};
use cts_resources::TrackerStatus;
use cts_transfer::digest::Digest;
use cts_transfer::layout::{ObjectKey, Window};
use cts_transfer::trace_file::read_traces;
use cts_transfer::verify::{local_copy as local_copy_of, verify_objects, BucketReport, Problem};
use cts_transfer::{DeliveryOutcome, Keyring};
use futures_util::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

fn garage() -> ObsConfig {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run ./scripts/test.sh, which starts Garage"))
    };
    ObsConfig {
        endpoint: var("CTS_OBS_ENDPOINT"),
        region: var("CTS_OBS_REGION"),
        access_key: var("CTS_OBS_ACCESS_KEY"),
        secret_key: var("CTS_OBS_SECRET_KEY"),
        path_style: true,
    }
}

fn unique_bucket(purpose: &str) -> String {
    format!("cts-{purpose}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A TCP forwarder to Garage that can be cut (the port refuses connections, open ones drop) and restored.
struct Proxy {
    address: SocketAddr,
    upstream: SocketAddr,
    tasks: Option<JoinSet<()>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut proxy = Proxy { address, upstream, tasks: None };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Dropping the tasks closes the listener and every forwarded connection.
    fn cut(&mut self) {
        self.tasks = None;
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }

    fn obs(&self) -> Arc<Obs> {
        Arc::new(Obs::new(ObsConfig { endpoint: format!("http://{}", self.address), ..garage() }).unwrap())
    }
}

/// Every object of the bucket with its bytes.
async fn objects(obs: &Obs, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    let store = obs.bucket(bucket).unwrap();
    let mut listed = store.list(None);
    let mut objects = BTreeMap::new();
    while let Some(meta) = listed.next().await {
        let path = meta.unwrap().location;
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        objects.insert(path.to_string(), bytes.to_vec());
    }
    objects
}

/// Checks that the delivered files hold exactly `expected`, each trace once, each in the file its service and
/// window name: directory `.../{tracker}/{service}/`, file time the window's start.
fn assert_exactly_once(files: &BTreeMap<String, Vec<u8>>, expected: &[Trace], keyring: Option<&Keyring>) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (path, body) in files {
        let body = match keyring {
            Some(keyring) => keyring.open(body).unwrap_or_else(|e| panic!("{path}: {e}")),
            None => body.clone(),
        };
        for trace in read_traces(&body).unwrap() {
            let window = Window::containing(trace.time, WINDOW_MS);
            let start = chrono::DateTime::from_timestamp_millis(window.start_ms).unwrap();
            let directory =
                format!("CloudTraces/{REGION}/{}/system/{}/", start.format("%Y/%-m/%-d"), trace.service_type);
            let file = format!("audit_CloudTrace_{REGION}_{}Z_", start.format("%Y-%m-%dT%H-%M-%S"));
            assert!(
                path.starts_with(&(directory.clone() + &file)),
                "{} in {path}, expected {directory}{file}…",
                trace.trace_id
            );
            if let Some(other) = seen.insert(trace.trace_id.clone(), path.clone()) {
                panic!("trace {} delivered twice: {other} and {path}", trace.trace_id);
            }
        }
    }
    let mut expected_ids: Vec<_> = expected.iter().map(|t| t.trace_id.clone()).collect();
    expected_ids.sort();
    assert_eq!(seen.into_keys().collect::<Vec<_>>(), expected_ids, "delivered traces");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trace_is_delivered_exactly_once_across_an_outage_a_crash_and_late_traces() {
    let fixture = Fixture::new();
    let bucket = unique_bucket("transfer");
    fixture.configure(serde_json::json!({
        "obs_info": {"bucket_name": bucket, "file_prefix_name": "audit", "is_obs_created": true, "compress_type": "gzip"}
    }));
    let mut proxy = Proxy::start(&garage().endpoint).await;
    let obs = proxy.obs();
    let mut expected = fixture.append(0, 20).await;

    // First cycle: the tracker starts at the window of its first cycle: window 0.
    let transfer = fixture.transfer(obs.clone(), Keyring::default());
    let first = transfer.run_cycle(fixture.at(0)).await.unwrap();
    assert_eq!(first.windows_delivered, 0, "window 0 has not closed yet");
    let system_id = fixture.system_tracker().id;
    assert!(transfer.history().recent(&system_id, 10).is_empty(), "a cycle with nothing due is not recorded");
    let report = transfer.run_cycle(fixture.at(2)).await.unwrap();
    assert_eq!((report.windows_delivered, report.trackers_failed), (2, 0));
    assert!(objects(&obs, &bucket).await.len() >= 4, "two windows, two services");
    let delivered = &transfer.history().recent(&system_id, 10)[..];
    assert!(
        matches!(delivered, [d] if d.outcome == DeliveryOutcome::Delivered && d.error.is_none()
        && (d.windows_delivered, d.files_written, d.traces_written) == (2, report.files_written, report.traces_written)),
        "{delivered:?}"
    );

    // The store goes away: the tracker shows error, and nothing moves.
    proxy.cut();
    expected.extend(fixture.append(2 * WINDOW_MS + 500, 25).await);
    let report = transfer.run_cycle(fixture.at(4)).await.unwrap();
    assert_eq!((report.trackers_failed, report.windows_delivered), (1, 0));
    let tracker = fixture.system_tracker();
    assert_eq!((tracker.status, tracker.detail.as_deref()), (TrackerStatus::Error, Some("bucketPolicyError")));
    let failed = transfer.history().recent(&system_id, 1).remove(0);
    assert_eq!((failed.outcome, failed.error.unwrap().detail.as_str()), (DeliveryOutcome::Failed, "bucketPolicyError"));

    // It comes back; a cycle is cut short at a random point (cts crashes mid-cycle) ...
    proxy.restore().await;
    let cursors = cts_transfer::cursor::CursorStore::path(fixture.dir.path());
    let before = std::fs::read(&cursors).unwrap();
    let transfer = Arc::new(transfer);
    let cut_short = tokio::spawn({
        let transfer = transfer.clone();
        let when = fixture.at(6);
        async move { transfer.run_cycle(when).await }
    });
    tokio::time::sleep(Duration::from_millis(40)).await;
    cut_short.abort();
    let _ = cut_short.await;
    // ... or right after writing every object but before its cursor moved.
    drop(transfer);
    let crashed = fixture.transfer(obs.clone(), Keyring::default());
    crashed.run_cycle(fixture.at(6)).await.unwrap();
    std::fs::write(&cursors, before).unwrap();

    // A late trace lands in an already delivered window.
    expected.extend(fixture.append(WINDOW_MS + 7_777, 1).await);

    // The restarted cts delivers the backlog and the late trace, and the tracker recovers.
    let restarted = fixture.transfer(obs.clone(), Keyring::default());
    let report = restarted.run_cycle(fixture.at(7)).await.unwrap();
    assert!(report.windows_delivered >= 5 && report.windows_rewritten == 1, "{report:?}");
    let tracker = fixture.system_tracker();
    assert_eq!((tracker.status, tracker.detail), (TrackerStatus::Enabled, None));
    let recovered = restarted.history().recent(&system_id, 200);
    assert_eq!((recovered[0].outcome, recovered[0].windows_rewritten), (DeliveryOutcome::Delivered, 1));
    assert!(recovered.iter().any(|d| d.outcome == DeliveryOutcome::Failed), "the outage, read back after the restart");
    let again = restarted.run_cycle(fixture.at(7)).await.unwrap();
    assert_eq!((again.windows_delivered, again.windows_rewritten, again.files_written), (0, 0, 0), "nothing twice");
    assert_eq!(restarted.history().recent(&system_id, 200).len(), recovered.len(), "nothing due: nothing recorded");

    let files = objects(&obs, &bucket).await;
    assert_exactly_once(&files, &expected, None);
    assert!(files.keys().any(|path| path.contains("/marketplace/")) && files.keys().any(|p| p.contains("/CTS/")));
    // Parts of one service's window share the name up to the 16 hex digits.
    let windows: std::collections::BTreeSet<_> =
        files.keys().map(|path| &path[..path.len() - "0123456789abcdef.json.gz".len()]).collect();
    assert!(files.len() > windows.len(), "windows over 1,500 JSON bytes are split: {} files", files.len());
}

#[tokio::test]
async fn a_missing_bucket_is_no_bucket_until_it_exists() {
    let fixture = Fixture::new();
    let bucket = unique_bucket("missing");
    fixture.configure(serde_json::json!({"obs_info": {"bucket_name": bucket, "file_prefix_name": "audit"}}));
    let obs = Arc::new(Obs::new(garage()).unwrap());
    let transfer = fixture.transfer(obs.clone(), Keyring::default());

    // The tracker's first cycle fixes where it starts (window 0), even though it cannot deliver yet.
    assert_eq!(transfer.run_cycle(fixture.at(0)).await.unwrap().trackers_failed, 1);
    let tracker = fixture.system_tracker();
    assert_eq!((tracker.status, tracker.detail.as_deref()), (TrackerStatus::Error, Some("noBucket")));
    let expected = fixture.append(500, 12).await;
    assert_eq!(transfer.run_cycle(fixture.at(3)).await.unwrap().trackers_failed, 1);
    assert_eq!(fixture.system_tracker().detail.as_deref(), Some("noBucket"));

    obs.create_bucket(&bucket, None).await.unwrap();
    let report = transfer.run_cycle(fixture.at(3)).await.unwrap();
    assert_eq!((report.trackers_failed, report.windows_delivered), (0, 3));
    assert_eq!(fixture.system_tracker().status, TrackerStatus::Enabled);
    assert_exactly_once(&objects(&obs, &bucket).await, &expected, None);
}

#[tokio::test]
async fn encrypted_files_decrypt_with_the_key_and_not_without() {
    let fixture = Fixture::new();
    let bucket = unique_bucket("sealed");
    let tracker = fixture.configure(serde_json::json!({
        "obs_info": {"bucket_name": bucket, "file_prefix_name": "audit", "is_obs_created": true, "compress_type": "json"},
        "is_support_trace_files_encryption": true, "kms_id": "audit-key",
    }));
    let obs = Arc::new(Obs::new(garage()).unwrap());

    // Without the key in the keyring the tracker cannot deliver.
    let keyless = fixture.transfer(obs.clone(), Keyring::default());
    keyless.run_cycle(fixture.at(0)).await.unwrap();
    assert_eq!(fixture.system_tracker().detail.as_deref(), Some("kmsKeyError"));

    let keyring = Keyring::from_keys([("audit-key".to_owned(), [42; 32])]);
    let transfer = fixture.transfer(obs.clone(), keyring.clone());
    let expected = fixture.append(0, 6).await;
    transfer.run_cycle(fixture.at(2)).await.unwrap();
    assert_eq!(fixture.system_tracker().status, TrackerStatus::Enabled);
    let files = objects(&obs, &bucket).await;
    assert!(!files.is_empty() && files.keys().all(|path| path.ends_with(".json.enc")), "{files:?}");
    for body in files.values() {
        assert!(cts_transfer::envelope::is_sealed(body));
        assert!(!String::from_utf8_lossy(body).contains(&tracker.project_id), "no plain text in the bucket");
        let wrong = Keyring::from_keys([("audit-key".to_owned(), [41; 32])]);
        assert!(wrong.open(body).is_err());
        assert!(Keyring::default().open(body).is_err());
    }
    assert_exactly_once(&files, &expected, Some(&keyring));
}

#[tokio::test]
async fn files_older_than_the_bucket_lifecycle_are_deleted() {
    let fixture = Fixture::new();
    let bucket = unique_bucket("lifecycle");
    fixture.configure(serde_json::json!({
        "obs_info": {"bucket_name": bucket, "file_prefix_name": "audit", "is_obs_created": true, "bucket_lifecycle": 30}
    }));
    let obs = Arc::new(Obs::new(garage()).unwrap());
    obs.create_bucket(&bucket, None).await.unwrap();
    let store = obs.bucket(&bucket).unwrap();
    let now = chrono::DateTime::from_timestamp_millis(fixture.at(0)).unwrap();
    let day = |days_ago: u64| (now.date_naive() - chrono::Days::new(days_ago)).format("%Y/%-m/%-d").to_string();
    let paths = [
        format!("CloudTraces/{REGION}/{}/system/CTS/expired.json.gz", day(31)),
        format!("CloudTraces/{REGION}/{}/system/CTS/kept.json.gz", day(30)),
        format!("CloudTraces/{REGION}/{}/other-tracker/CTS/not-ours.json.gz", day(90)),
        "notes/readme.txt".to_owned(),
    ];
    for path in &paths {
        store.put(&path.as_str().into(), b"x".to_vec().into()).await.unwrap();
    }
    let report = fixture.transfer(obs.clone(), Keyring::default()).run_cycle(fixture.at(0)).await.unwrap();
    assert_eq!(report.files_expired, 1);
    let left: Vec<_> = objects(&obs, &bucket).await.into_keys().collect();
    let mut expected = paths[1..].to_vec();
    expected.sort();
    assert_eq!(left, expected);
}

/// A bucket's objects by key.
type Objects = BTreeMap<String, Vec<u8>>;

/// Writes `objects` into a local directory, as an auditor's downloaded copy of the bucket.
async fn local_copy(objects: &Objects) -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    let local = local_copy_of(dir.path()).unwrap();
    for (key, body) in objects {
        local.put(&key.as_str().into(), body.clone().into()).await.unwrap();
    }
    (dir, local)
}

/// Makes `store` hold exactly `objects`.
async fn reset(store: &dyn ObjectStore, objects: &Objects) {
    let present: Vec<_> = store.list(None).map(|meta| meta.unwrap().location).collect().await;
    for path in present {
        if !objects.contains_key(path.as_ref()) {
            store.delete(&path).await.unwrap();
        }
    }
    for (key, body) in objects {
        store.put(&key.as_str().into(), body.clone().into()).await.unwrap();
    }
}

/// A digest with one field changed and gzipped again (its signature no longer matches).
fn forged(body: &[u8]) -> Vec<u8> {
    let mut json = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body), &mut json).unwrap();
    let mut digest: serde_json::Value = serde_json::from_str(&json).unwrap();
    digest["files"] = serde_json::json!([]);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, digest.to_string().as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// Problems as (kind, key), sorted.
type Named = Vec<(String, String)>;

fn named(problems: &[(&str, &str)]) -> Named {
    let mut named: Named = problems.iter().map(|(kind, key)| (kind.to_string(), key.to_string())).collect();
    named.sort();
    named
}

/// The kinds and keys of a report's problems, sorted.
fn problems(report: &BucketReport) -> Named {
    let mut found: Vec<_> = report
        .problems
        .iter()
        .map(|problem| {
            let json = serde_json::to_value(problem).unwrap();
            (json["kind"].as_str().unwrap().to_owned(), json["key"].as_str().unwrap().to_owned())
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_chain_every_period_and_verify_names_each_tampered_object() {
    let fixture = Fixture::new();
    let bucket = unique_bucket("digest");
    let tracker = fixture.configure(serde_json::json!({
        "obs_info": {"bucket_name": bucket, "file_prefix_name": "audit", "is_obs_created": true},
        "is_support_validate": true,
    }));
    let obs = Arc::new(Obs::new(garage()).unwrap());
    let verifiers = [NoteVerifier::parse(fixture.ledger.verifier_keys().trim()).unwrap()];
    let mut expected = fixture.append(0, 40).await;

    let transfer = fixture.transfer(obs.clone(), Keyring::default());
    transfer.run_cycle(fixture.at(0)).await.unwrap();
    let report = transfer.run_cycle(fixture.at(6)).await.unwrap();
    assert_eq!(report.digests_written, 0, "delivered windows may still be rewritten: no digest yet");
    // A late trace rewrites window 1 within the lookback; its digest must list the files as rewritten.
    expected.extend(fixture.append(WINDOW_MS + 4_321, 1).await);
    assert_eq!(transfer.run_cycle(fixture.at(8)).await.unwrap().windows_rewritten, 1);

    // A crash right after a digest is written, before the cursor moved: the retry overwrites the same name.
    let cursors = cts_transfer::cursor::CursorStore::path(fixture.dir.path());
    let before = std::fs::read(&cursors).unwrap();
    let first_digests = transfer.run_cycle(fixture.at(20)).await.unwrap().digests_written;
    assert!(first_digests >= 1, "periods past the lookback get their digest");
    std::fs::write(&cursors, before).unwrap();
    let transfer = fixture.transfer(obs.clone(), Keyring::default());
    assert_eq!(transfer.run_cycle(fixture.at(20)).await.unwrap().digests_written, first_digests);
    let report = transfer.run_cycle(fixture.at(40)).await.unwrap();
    assert!(report.digests_written >= 5, "empty periods get digests too: {report:?}");
    assert_eq!(transfer.run_cycle(fixture.at(40)).await.unwrap().digests_written, 0, "each digest once");

    let delivered = objects(&obs, &bucket).await;
    let mut digest_keys: Vec<&String> = delivered.keys().filter(|key| key.contains("/Digest/CTS/")).collect();
    // In time order (day directories are not zero-padded: key order is not time order across days).
    digest_keys.sort_by_key(|key| ObjectKey::parse(key).unwrap().time_ms);
    let trace_files: Vec<&String> = delivered.keys().filter(|key| !key.contains("/Digest/")).collect();
    assert_eq!(digest_keys.len(), first_digests + report.digests_written, "one object per digest, none twice");
    let digests: Vec<Digest> =
        digest_keys.iter().map(|key| Digest::open(&delivered[*key], &verifiers).unwrap()).collect();
    for (earlier, later) in digests.iter().zip(&digests[1..]) {
        assert_eq!(earlier.digest_end_time, later.digest_start_time, "consecutive periods");
    }
    assert_eq!(digests[0].previous_digest, None);
    assert!(digests.iter().any(|digest| digest.files.is_empty()), "empty periods have (empty) digests");
    let last = digests.last().unwrap();
    assert_eq!((last.tracker.id.as_str(), last.checkpoint.as_ref().unwrap().tree_size), (tracker.id.as_str(), 41));
    let checkpoint = cts_ledger::Checkpoint::open(&last.checkpoint.as_ref().unwrap().note, &verifiers).unwrap();
    assert_eq!(checkpoint.size, 41);
    let listed: usize = digests.iter().map(|digest| digest.files.len()).sum();
    assert_eq!(listed, trace_files.len(), "every trace file is in exactly one digest");

    let bucket_store = obs.bucket(&bucket).unwrap();
    let (_copy, local) = local_copy(&delivered).await;
    for store in [bucket_store.clone(), local.clone()] {
        let report = verify_objects(store.as_ref(), None, &verifiers, None).await.unwrap();
        assert!(report.is_valid(), "{:?}", report.problems);
        assert_eq!((report.files_valid, report.traces_listed, report.chains), (trace_files.len(), 41, 1));
        assert_eq!(report.digests_valid, digest_keys.len());
    }

    // Tampering, one case at a time, in the bucket and in the copy.
    let (file, middle, after_middle) = (trace_files[0], digest_keys[1], digest_keys[2]);
    let stray = file.replace("_CloudTrace_", "_CloudTrace_stray_");
    let cases: Vec<(&str, Objects, Named)> = vec![
        ("altered file", with(&delivered, file, Some(b"{\"traces\":[]}".to_vec())), named(&[("altered", file)])),
        ("deleted file", with(&delivered, file, None), named(&[("missing", file)])),
        ("stray file", with(&delivered, &stray, Some(b"x".to_vec())), named(&[("added", &stray)])),
        (
            "altered digest",
            with(&delivered, middle, Some(forged(&delivered[middle]))),
            named(&[("broken_chain", after_middle), ("invalid_digest", middle)]),
        ),
        ("deleted digest", with(&delivered, middle, None), named(&[("broken_chain", after_middle)])),
    ];
    for (case, objects, expected) in cases {
        let (_copy, local) = local_copy(&objects).await;
        reset(bucket_store.as_ref(), &objects).await;
        for store in [&bucket_store, &local] {
            let report = verify_objects(store.as_ref(), None, &verifiers, None).await.unwrap();
            assert_eq!(problems(&report), expected, "{case}");
            assert!(!report.is_valid() && report.summary().starts_with("INVALID"), "{case}");
        }
    }
    // Another key: no digest verifies.
    let stranger = [NoteVerifier::parse(&cts_ledger::NoteSigner::generate("cts").unwrap().verifier_key()).unwrap()];
    let report = verify_objects(local.as_ref(), None, &stranger, None).await.unwrap();
    assert_eq!(report.problems.iter().filter(|p| matches!(p, Problem::InvalidDigest { .. })).count(), digests.len());
}

/// `objects` with `key` replaced by `body` (removed when `None`).
fn with(objects: &Objects, key: &str, body: Option<Vec<u8>>) -> Objects {
    let mut changed = objects.clone();
    match body {
        Some(body) => changed.insert(key.to_owned(), body),
        None => changed.remove(key),
    };
    changed
}

#[tokio::test]
async fn parquet_trackers_deliver_parquet_files_that_read_back_and_verify() {
    use arrow_array::cast::AsArray;
    let fixture = Fixture::new();
    let bucket = unique_bucket("parquet");
    fixture.configure(serde_json::json!({
        "obs_info": {"bucket_name": bucket, "file_prefix_name": "audit", "is_obs_created": true, "compress_type": "parquet"},
        "is_support_validate": true,
    }));
    let obs = Arc::new(Obs::new(garage()).unwrap());
    let expected = fixture.append(0, 12).await;
    let transfer = fixture.transfer(obs.clone(), Keyring::default());
    transfer.run_cycle(fixture.at(0)).await.unwrap();
    transfer.run_cycle(fixture.at(30)).await.unwrap();

    let delivered = objects(&obs, &bucket).await;
    let files: BTreeMap<_, _> = delivered.iter().filter(|(key, _)| !key.contains("/Digest/")).collect();
    assert!(!files.is_empty() && files.keys().all(|key| key.ends_with(".parquet")), "{:?}", files.keys());
    let mut ids = Vec::new();
    for body in files.values() {
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body.to_vec()))
                .unwrap()
                .build()
                .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            ids.extend(
                batch.column_by_name("trace_id").unwrap().as_string::<i32>().iter().map(|id| id.unwrap().to_owned()),
            );
        }
    }
    ids.sort();
    let mut expected_ids: Vec<_> = expected.iter().map(|trace| trace.trace_id.clone()).collect();
    expected_ids.sort();
    assert_eq!(ids, expected_ids, "the parquet crate reads every trace once");
    let parquet_files: BTreeMap<String, Vec<u8>> = files.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_exactly_once(&parquet_files, &expected, None);

    let verifiers = [NoteVerifier::parse(fixture.ledger.verifier_keys().trim()).unwrap()];
    let report = verify_objects(obs.bucket(&bucket).unwrap().as_ref(), None, &verifiers, None).await.unwrap();
    assert!(report.is_valid() && report.traces_listed == 12, "{report:?}");
}

#[tokio::test]
async fn validation_turned_on_later_starts_at_the_next_whole_period_and_off_and_on_starts_a_new_chain() {
    let fixture = Fixture::new();
    let bucket = unique_bucket("validate-later");
    let obs_info = serde_json::json!({"bucket_name": bucket, "file_prefix_name": "audit", "is_obs_created": true});
    fixture.configure(serde_json::json!({"obs_info": obs_info}));
    let obs = Arc::new(Obs::new(garage()).unwrap());
    fixture.append(0, 60).await;
    let transfer = fixture.transfer(obs.clone(), Keyring::default());
    transfer.run_cycle(fixture.at(0)).await.unwrap();
    assert_eq!(transfer.run_cycle(fixture.at(5)).await.unwrap().windows_delivered, 5);

    // Windows before base + 50 s were delivered without remembering their files: digests start at the next period.
    fixture.configure(serde_json::json!({"is_support_validate": true}));
    let enabled_at = fixture.base + 5 * WINDOW_MS;
    let first_period = (enabled_at + DIGEST_PERIOD_MS - 1).div_euclid(DIGEST_PERIOD_MS) * DIGEST_PERIOD_MS;
    assert!(transfer.run_cycle(fixture.at(30)).await.unwrap().digests_written >= 2);
    fixture.configure(serde_json::json!({"is_support_validate": false}));
    assert_eq!(transfer.run_cycle(fixture.at(45)).await.unwrap().digests_written, 0, "validation off: no digest");
    fixture.configure(serde_json::json!({"is_support_validate": true}));
    assert!(transfer.run_cycle(fixture.at(70)).await.unwrap().digests_written >= 1);

    let verifiers = [NoteVerifier::parse(fixture.ledger.verifier_keys().trim()).unwrap()];
    let delivered = objects(&obs, &bucket).await;
    let mut digests: Vec<Digest> = delivered
        .iter()
        .filter(|(key, _)| key.contains("/Digest/"))
        .map(|(_, body)| Digest::open(body, &verifiers).unwrap())
        .collect();
    digests.sort_by_key(|digest| digest.period_ms().unwrap());
    assert_eq!(digests[0].period_ms().unwrap().0, first_period);
    let chain_starts: Vec<usize> = (0..digests.len()).filter(|i| digests[*i].previous_digest.is_none()).collect();
    assert_eq!(chain_starts.len(), 2, "off and on again starts a new chain");
    let gap = digests[chain_starts[1] - 1].period_ms().unwrap().1 < digests[chain_starts[1]].period_ms().unwrap().0;
    assert!(gap, "periods while validation was off have no digest");

    let report = verify_objects(obs.bucket(&bucket).unwrap().as_ref(), None, &verifiers, None).await.unwrap();
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!(report.chains, 2);
    assert!(report.files_not_covered > 0 && report.files_valid > 0, "{report:?}");
}

#[tokio::test]
async fn encrypted_files_verify_by_their_sealed_bytes_and_with_the_keyring_by_their_traces() {
    let fixture = Fixture::new();
    let bucket = unique_bucket("sealed-digest");
    fixture.configure(serde_json::json!({
        "obs_info": {"bucket_name": bucket, "file_prefix_name": "audit", "is_obs_created": true},
        "is_support_trace_files_encryption": true, "kms_id": "audit-key", "is_support_validate": true,
    }));
    let keyring = Keyring::from_keys([("audit-key".to_owned(), [42; 32])]);
    let obs = Arc::new(Obs::new(garage()).unwrap());
    fixture.append(0, 9).await;
    let transfer = fixture.transfer(obs.clone(), keyring.clone());
    transfer.run_cycle(fixture.at(0)).await.unwrap();
    assert!(transfer.run_cycle(fixture.at(30)).await.unwrap().digests_written > 0);

    let verifiers = [NoteVerifier::parse(fixture.ledger.verifier_keys().trim()).unwrap()];
    let objects = obs.bucket(&bucket).unwrap();
    let without_key = verify_objects(objects.as_ref(), None, &verifiers, None).await.unwrap();
    assert!(without_key.is_valid() && without_key.traces_listed == 9 && without_key.files_decrypted == 0);
    let with_key = verify_objects(objects.as_ref(), None, &verifiers, Some(&keyring)).await.unwrap();
    assert!(with_key.is_valid(), "{:?}", with_key.problems);
    assert_eq!((with_key.files_decrypted, with_key.files_valid), (without_key.files_valid, without_key.files_valid));
    let wrong = Keyring::from_keys([("audit-key".to_owned(), [41; 32])]);
    let wrong_key = verify_objects(objects.as_ref(), None, &verifiers, Some(&wrong)).await.unwrap();
    assert_eq!(wrong_key.problems.len(), without_key.files_valid);
    assert!(wrong_key.problems.iter().all(|p| matches!(p, Problem::Undecryptable { .. })), "{:?}", wrong_key.problems);
}
