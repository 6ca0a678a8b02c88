//! Bootstrap, persistence and authentication of the identities.

use cts_iam::sign::{complete_headers, sign_request, SignatureError};
use cts_iam::{
    AdminCredentials, AuthError, Bootstrap, BootstrapConflict, Iam, IamError, MasterKey, Role, SecretError,
    SignedRequest,
};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const NOW_MS: i64 = 1_700_000_000_000;

fn given() -> Bootstrap {
    Bootstrap {
        access_key: Some("TESTADMINACCESSKEY01".into()),
        secret_key: Some("test-secret-key-0123456789-abcdefghijklm".into()),
        project_id: Some("0123456789abcdef0123456789abcdef".into()),
        domain_id: Some("fedcba9876543210fedcba9876543210".into()),
        master_key: None,
    }
}

/// Headers of a GET signed with `access_key`/`secret_key` at `NOW_MS`.
fn signed_headers(access_key: &str, secret_key: &str, path: &str) -> Vec<(String, String)> {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    complete_headers(&mut headers, "localhost:8080", NOW_MS);
    let request = SignedRequest { method: "GET", path, query: &[], headers: &headers, body: &[] };
    let authorization = sign_request(access_key, secret_key, &request).unwrap();
    headers.push(("Authorization".to_owned(), authorization));
    headers
}

fn authenticate(iam: &Iam, headers: &[(String, String)]) -> Result<cts_iam::Principal, AuthError> {
    iam.authenticate(&SignedRequest { method: "GET", path: "/v3/p/traces", query: &[], headers, body: &[] }, NOW_MS)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_start_generates_huawei_shaped_credentials_once() {
    let dir = tempfile::tempdir().unwrap();
    let (iam, created) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    let credentials = created.expect("first start returns the credentials");
    assert_eq!(credentials.access_key.len(), 20);
    assert!(credentials.access_key.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    assert_eq!(credentials.secret_key.len(), 40);
    for id in [&credentials.project_id, &credentials.domain_id] {
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
    }
    assert_eq!(iam.projects()[0].id, credentials.project_id);
    assert_eq!(iam.domains()[0].id, credentials.domain_id);
    assert_eq!(iam.users()[0].role, Role::Admin);

    let (_, again) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    assert!(again.is_none(), "credentials are returned only when created");
    assert_eq!(AdminCredentials::load(dir.path()).unwrap(), credentials);
}

#[test]
fn no_plaintext_secret_on_disk_and_private_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_, created) = Iam::open(dir.path(), given()).unwrap();
    let secret = created.unwrap().secret_key;
    for path in
        [dir.path().join("iam/state.json"), dir.path().join("admin-credentials.json"), MasterKey::file_path(dir.path())]
    {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&secret), "{} holds the secret in plain text", path.display());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn bootstrap_values_are_used_and_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = given();
    let (iam, created) = Iam::open(dir.path(), bootstrap.clone()).unwrap();
    let created = created.unwrap();
    assert_eq!(Some(&created.access_key), bootstrap.access_key.as_ref());
    assert_eq!(Some(&created.secret_key), bootstrap.secret_key.as_ref());

    let (iam_reopened, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    for iam in [&iam, &iam_reopened] {
        let headers = signed_headers(&created.access_key, &created.secret_key, "/v3/p/traces");
        let principal = authenticate(iam, &headers).unwrap();
        assert_eq!(principal.access_key_id, created.access_key);
        assert_eq!(principal.project_id, created.project_id);
        assert_eq!(principal.domain_id, created.domain_id);
        assert_eq!(principal.user_name, "admin");
        assert_eq!(principal.role, Role::Admin);
    }
}

#[test]
fn authentication_failures_are_told_apart_in_logs_but_not_to_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (iam, created) = Iam::open(dir.path(), given()).unwrap();
    let created = created.unwrap();

    let unknown = signed_headers("UNKNOWNACCESSKEY0000", &created.secret_key, "/v3/p/traces");
    let unknown_error = authenticate(&iam, &unknown).unwrap_err();
    assert_eq!(unknown_error, AuthError::UnknownAccessKey("UNKNOWNACCESSKEY0000".into()));

    let wrong_secret = signed_headers(&created.access_key, "another-secret-key-0123456789", "/v3/p/traces");
    let mismatch_error = authenticate(&iam, &wrong_secret).unwrap_err();
    assert_eq!(mismatch_error, AuthError::Signature(SignatureError::SignatureMismatch));
    assert_eq!(unknown_error.client_message(), mismatch_error.client_message());

    assert_eq!(authenticate(&iam, &[]).unwrap_err(), AuthError::Signature(SignatureError::MissingAuthorization));
    let mut twice = signed_headers(&created.access_key, &created.secret_key, "/v3/p/traces");
    twice.push(twice.last().unwrap().clone());
    assert_eq!(
        authenticate(&iam, &twice).unwrap_err(),
        AuthError::Signature(SignatureError::DuplicateHeader("authorization".into()))
    );
}

#[test]
fn later_bootstrap_differences_keep_stored_identity_and_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_, created) = Iam::open(dir.path(), given()).unwrap();
    let created = created.unwrap();

    let (iam, _) = Iam::open(dir.path(), given()).unwrap();
    assert_eq!(iam.bootstrap_conflicts(), []);

    let changed = Bootstrap {
        access_key: Some("OTHERADMINACCESSKEY1".into()),
        project_id: Some("11111111111111111111111111111111".into()),
        ..given()
    };
    let (iam, again) = Iam::open(dir.path(), changed).unwrap();
    assert!(again.is_none());
    assert_eq!(
        iam.bootstrap_conflicts(),
        [
            BootstrapConflict::AccessKey { given: "OTHERADMINACCESSKEY1".into() },
            BootstrapConflict::ProjectId {
                given: "11111111111111111111111111111111".into(),
                stored: created.project_id.clone()
            },
        ]
    );
    let new_secret = Bootstrap { secret_key: Some("a-different-secret-key-for-the-admin".into()), ..given() };
    let (iam, _) = Iam::open(dir.path(), new_secret).unwrap();
    assert_eq!(iam.bootstrap_conflicts(), [BootstrapConflict::SecretKey { access_key: created.access_key.clone() }]);
    let headers = signed_headers(&created.access_key, &created.secret_key, "/v3/p/traces");
    assert!(authenticate(&iam, &headers).is_ok(), "the stored secret still works");
}

#[test]
fn master_key_from_env_is_not_written_and_is_required_later() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate().to_base64();
    let bootstrap = Bootstrap { master_key: Some(key.clone()), ..Bootstrap::default() };
    Iam::open(dir.path(), bootstrap).unwrap();
    assert!(!MasterKey::file_path(dir.path()).exists());

    let missing = Iam::open(dir.path(), Bootstrap::default()).unwrap_err();
    assert!(matches!(missing, IamError::Secret(SecretError::MissingMasterKey { .. })), "{missing}");
    let wrong = Bootstrap { master_key: Some(MasterKey::generate().to_base64()), ..Bootstrap::default() };
    let wrong = Iam::open(dir.path(), wrong).unwrap_err();
    assert!(matches!(wrong, IamError::Secret(SecretError::Unseal)), "{wrong}");
    assert!(Iam::open(dir.path(), Bootstrap { master_key: Some(key), ..Bootstrap::default() }).is_ok());
}

#[test]
fn invalid_bootstrap_values_are_refused() {
    let cases = [
        Bootstrap { secret_key: None, ..given() },
        Bootstrap { access_key: Some("has space 123".into()), ..given() },
        Bootstrap { secret_key: Some("short".into()), ..given() },
        Bootstrap { project_id: Some("a/b".into()), ..given() },
        Bootstrap { domain_id: Some(String::new()), ..given() },
    ];
    for bootstrap in cases {
        let dir = tempfile::tempdir().unwrap();
        let outcome = Iam::open(dir.path(), bootstrap.clone());
        assert!(matches!(outcome, Err(IamError::InvalidBootstrap(_))), "{bootstrap:?}");
        assert!(!dir.path().join("iam/state.json").exists());
    }
}

#[test]
fn damaged_state_is_reported_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    Iam::open(dir.path(), given()).unwrap();
    let state = dir.path().join("iam/state.json");
    std::fs::write(&state, b"{not json").unwrap();
    assert!(matches!(Iam::open(dir.path(), given()), Err(IamError::Corrupt { .. })));
    assert_eq!(std::fs::read(&state).unwrap(), b"{not json");
}
