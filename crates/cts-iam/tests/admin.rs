//! Changing identities: domains, projects, users, roles and access keys, and what authentication sees of them.

use cts_iam::sign::{complete_headers, sign_request};
use cts_iam::{AuthError, Bootstrap, Iam, IamError, Role, SignedRequest};

const NOW_MS: i64 = 1_700_000_000_000;

fn authenticate(iam: &Iam, access_key: &str, secret_key: &str) -> Result<cts_iam::Principal, AuthError> {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    complete_headers(&mut headers, "localhost:8080", NOW_MS);
    let request = SignedRequest { method: "GET", path: "/v3/p/traces", query: &[], headers: &headers, body: &[] };
    headers.push(("Authorization".to_owned(), sign_request(access_key, secret_key, &request).unwrap()));
    iam.authenticate(
        &SignedRequest { method: "GET", path: "/v3/p/traces", query: &[], headers: &headers, body: &[] },
        NOW_MS,
    )
}

#[test]
fn a_new_tenant_gets_keys_that_authenticate_with_their_role_and_project() {
    let dir = tempfile::tempdir().unwrap();
    let (iam, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    let domain = iam.create_domain("acme").unwrap();
    let project = iam.create_project("acme", "ap-southeast-3").unwrap();
    assert_eq!(project.domain_id, domain.id);
    let auditor = iam.create_user(&domain.id, "alice", Role::Auditor).unwrap();
    let key = iam.create_access_key("alice", &project.id).unwrap();
    assert_eq!(key.info.user_id, auditor.id);
    assert_eq!(key.secret_key.len(), 40);

    let principal = authenticate(&iam, &key.info.access_key, &key.secret_key).unwrap();
    assert_eq!((principal.role, principal.project_id.as_str()), (Role::Auditor, project.id.as_str()));

    iam.set_role("alice", Role::Reporter).unwrap();
    assert_eq!(authenticate(&iam, &key.info.access_key, &key.secret_key).unwrap().role, Role::Reporter);

    // Reopened from disk, everything is still there; the secret key is stored sealed, never in clear.
    let (reopened, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    assert!(authenticate(&reopened, &key.info.access_key, &key.secret_key).is_ok());
    let state = std::fs::read_to_string(dir.path().join("iam/state.json")).unwrap();
    assert!(!state.contains(&key.secret_key));

    reopened.delete_access_key(&key.info.access_key).unwrap();
    assert_eq!(
        authenticate(&reopened, &key.info.access_key, &key.secret_key),
        Err(AuthError::UnknownAccessKey(key.info.access_key.clone()))
    );
}

#[test]
fn changes_made_by_another_process_are_picked_up_by_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    let (admin, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    let project = &admin.projects()[0];
    admin.create_user(&project.domain_id, "svc", Role::Reporter).unwrap();
    let key = admin.create_access_key("svc", &project.id).unwrap();

    assert!(authenticate(&server, &key.info.access_key, &key.secret_key).is_err());
    assert!(server.reload_if_changed().unwrap());
    assert_eq!(authenticate(&server, &key.info.access_key, &key.secret_key).unwrap().role, Role::Reporter);
    assert!(!server.reload_if_changed().unwrap(), "nothing changed since");
    // Interleaved writers do not lose each other's changes: each change re-reads the file under the lock.
    server.create_user(&project.domain_id, "bob", Role::Auditor).unwrap();
    admin.create_user(&project.domain_id, "carol", Role::Auditor).unwrap();
    let (reopened, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    let names: Vec<String> = reopened.users().into_iter().map(|user| user.name).collect();
    assert_eq!(names, ["admin", "svc", "bob", "carol"]);
}

#[test]
fn invalid_changes_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (iam, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
    let before = std::fs::read(dir.path().join("iam/state.json")).unwrap();
    let home = iam.projects()[0].clone();
    iam.create_domain("other").unwrap();
    let other_project = iam.create_project("other", "eu-west-101").unwrap();
    let after_setup = std::fs::read(dir.path().join("iam/state.json")).unwrap();
    assert_ne!(before, after_setup);

    let cases: Vec<(&str, Result<(), IamError>)> = vec![
        ("empty domain name", iam.create_domain("").map(drop)),
        ("domain name with a slash", iam.create_domain("../x").map(drop)),
        ("duplicate domain", iam.create_domain("other").map(drop)),
        ("project in unknown domain", iam.create_project("nope", "p").map(drop)),
        ("duplicate project", iam.create_project("other", "eu-west-101").map(drop)),
        ("duplicate user", iam.create_user(&home.domain_id, "admin", Role::Admin).map(drop)),
        ("key for unknown user", iam.create_access_key("nobody", &home.id).map(drop)),
        ("key across domains", iam.create_access_key("admin", &other_project.id).map(drop)),
        ("delete unknown key", iam.delete_access_key("NOSUCHKEY").map(drop)),
    ];
    for (case, outcome) in cases {
        let error = outcome.expect_err(case);
        assert!(matches!(error, IamError::Invalid(_) | IamError::Exists(_) | IamError::NotFound(_)), "{case}: {error}");
    }
    assert_eq!(std::fs::read(dir.path().join("iam/state.json")).unwrap(), after_setup);
}
