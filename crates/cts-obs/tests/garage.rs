//! Against a real S3-compatible store: Garage, started by `scripts/test.sh` (through `scripts/garage.sh`), which
//! exports its endpoint and a key allowed to create buckets as `CTS_OBS_*`.

use cts_obs::{BucketCheck, Obs, ObsConfig, ObsError};
use object_store::path::Path;
use object_store::ObjectStoreExt;

fn obs() -> Obs {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run ./scripts/test.sh, which starts Garage"))
    };
    Obs::new(ObsConfig {
        endpoint: var("CTS_OBS_ENDPOINT"),
        region: var("CTS_OBS_REGION"),
        access_key: var("CTS_OBS_ACCESS_KEY"),
        secret_key: var("CTS_OBS_SECRET_KEY"),
        path_style: true,
    })
    .unwrap()
}

fn unique_bucket(purpose: &str) -> String {
    format!("cts-{purpose}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

#[tokio::test]
async fn a_created_bucket_checks_usable_and_holds_objects() {
    let obs = obs();
    let bucket = unique_bucket("obs");
    assert_eq!(
        obs.check_bucket(&bucket).await.unwrap(),
        BucketCheck::Refused { status: 404, code: "NoSuchBucket".into() }
    );
    obs.create_bucket(&bucket, None).await.unwrap();
    obs.create_bucket(&bucket, None).await.expect("creating a bucket one already owns is fine");
    assert_eq!(obs.check_bucket(&bucket).await.unwrap(), BucketCheck::Usable);

    let store = obs.bucket(&bucket).unwrap();
    let path = Path::from("CloudTraces/ap-southeast-3/2026/11/24/system/marketplace/file.json.gz");
    store.put(&path, b"trace file".to_vec().into()).await.unwrap();
    let read = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&read[..], b"trace file");
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_a_dead_endpoint_is_unreachable() {
    let obs = obs();
    let bucket = unique_bucket("denied");
    obs.create_bucket(&bucket, None).await.unwrap();
    let forged = Obs::new(ObsConfig { secret_key: "not-the-secret".into(), ..obs.config().clone() }).unwrap();
    assert!(matches!(forged.check_bucket(&bucket).await.unwrap(), BucketCheck::Refused { status: 403, .. }));
    assert!(matches!(
        forged.create_bucket(&unique_bucket("x"), None).await,
        Err(ObsError::Refused { status: 403, .. })
    ));

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = Obs::new(ObsConfig { endpoint: format!("http://127.0.0.1:{port}"), ..obs.config().clone() }).unwrap();
    assert!(matches!(dead.check_bucket(&bucket).await.unwrap(), BucketCheck::Unreachable(_)));
}
