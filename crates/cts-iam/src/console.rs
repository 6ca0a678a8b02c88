//! Console sign-in: a user name and console password, or an access key and its secret key, turned
//! into the [`Principal`] a console session acts as, and the [`ConsoleGrant`] the session keeps to
//! find that principal again on every request ([`Iam::console_principal`]).
//!
//! Passwords are stored as argon2id PHC strings (`iam/state.json`, `console_passwords`), never in
//! clear; [`Iam::set_console_password`] changes one under the state lock like every admin change. A
//! password sign-in acts in the project of the user's first access key, else the first project of
//! the user's domain; its access key id is [`CONSOLE_ACCESS_KEY`]. A refused sign-in never tells
//! which part was wrong, and costs one argon2 verification whether or not the user exists.
//!
//! A grant names the user, project and access key signed in with and carries a SHA-256 digest of the
//! stored credential (the password's PHC string, or the sealed secret key): once the password is
//! changed or removed, the key deleted or the user gone, the grant no longer yields a principal. The
//! role and names come from the identities as they are now, so a role change applies at once.

use crate::admin::find_user;
use crate::identity::{AuthError, Iam, IamError, Principal, State, User};
use crate::secret::SecretError;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::sync::LazyLock;
use subtle::ConstantTimeEq;

/// The shortest console password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The access key id of a password-authenticated console session (it signs with no key).
pub const CONSOLE_ACCESS_KEY: &str = "console";

/// A console password as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredPassword {
    pub user_id: String,
    /// argon2id, PHC string format.
    pub hash: String,
}

/// What a console sign-in presents.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum ConsoleCredentials {
    Password { user: String, password: String },
    AccessKey { access_key: String, secret_key: String },
}

impl ConsoleCredentials {
    /// Who the credentials claim to be: the user name or the access key id (never the secret).
    pub fn name(&self) -> &str {
        match self {
            ConsoleCredentials::Password { user, .. } => user,
            ConsoleCredentials::AccessKey { access_key, .. } => access_key,
        }
    }
}

impl fmt::Debug for ConsoleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleCredentials::Password { user, .. } => f.debug_struct("Password").field("user", user).finish(),
            ConsoleCredentials::AccessKey { access_key, .. } => {
                f.debug_struct("AccessKey").field("access_key", access_key).finish()
            }
        }
    }
}

/// What a console session keeps of its sign-in (see the module docs). Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleGrant {
    pub user_id: String,
    pub project_id: String,
    /// The access key signed in with, or [`CONSOLE_ACCESS_KEY`] for a password.
    pub access_key_id: String,
    /// Hex SHA-256 of the stored credential signed in with.
    pub credential_digest: String,
}

/// An argon2id hash of nothing anyone knows: verified against when no password is stored for the
/// name given, so that an unknown user costs what a wrong password costs.
static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"decoy password nobody has", &SaltString::generate(&mut OsRng))
        .expect("hashing a constant password")
        .to_string()
});

fn digest(stored_credential: &str) -> String {
    hex::encode(Sha256::digest(stored_credential.as_bytes()))
}

fn verifies(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// The project a password sign-in of `user` acts in (see the module docs).
fn password_project(state: &State, user: &User) -> Option<String> {
    state
        .access_keys
        .iter()
        .find(|key| key.user_id == user.id)
        .map(|key| key.project_id.clone())
        .or_else(|| state.projects.iter().find(|p| p.domain_id == user.domain_id).map(|p| p.id.clone()))
}

fn password_principal(user: &User, project_id: String) -> Principal {
    Principal {
        user_id: user.id.clone(),
        user_name: user.name.clone(),
        domain_id: user.domain_id.clone(),
        project_id,
        access_key_id: CONSOLE_ACCESS_KEY.to_owned(),
        role: user.role,
    }
}

/// The digest of an access key's stored (sealed) secret, if the key exists.
fn access_key_digest(state: &State, access_key: &str) -> Option<String> {
    state.access_keys.iter().find(|key| key.access_key == access_key).map(|key| digest(&key.sealed_secret_key))
}

impl Iam {
    /// Sets (or replaces) the console password of a user (by id, or by name when unique).
    pub fn set_console_password(&self, user: &str, password: &str) -> Result<User, IamError> {
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(IamError::Invalid(format!("a console password has at least {MIN_PASSWORD_LEN} characters")));
        }
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .map_err(|error| IamError::Invalid(format!("hashing the password failed: {error}")))?
            .to_string();
        self.change(|state| {
            let user = state.users[find_user(state, user)?].clone();
            state.console_passwords.retain(|stored| stored.user_id != user.id);
            state.console_passwords.push(StoredPassword { user_id: user.id.clone(), hash });
            Ok(user)
        })
    }

    /// Checks console credentials: who signed in, and the grant their session keeps.
    pub fn console_sign_in(&self, credentials: &ConsoleCredentials) -> Result<(Principal, ConsoleGrant), AuthError> {
        let refused = || AuthError::BadCredentials(credentials.name().to_owned());
        let snapshot = self.snapshot();
        let (principal, credential_digest) = match credentials {
            ConsoleCredentials::Password { user, password } => {
                let state = &snapshot.state;
                let stored: Vec<(&User, &StoredPassword)> = state
                    .users
                    .iter()
                    .filter(|candidate| candidate.name == *user)
                    .flat_map(|user| {
                        state.console_passwords.iter().filter(|p| p.user_id == user.id).map(move |p| (user, p))
                    })
                    .collect();
                if stored.is_empty() {
                    verifies(password, &DECOY_HASH);
                    return Err(refused());
                }
                let (user, stored) =
                    stored.into_iter().find(|(_, stored)| verifies(password, &stored.hash)).ok_or_else(refused)?;
                let project_id = password_project(state, user).ok_or_else(refused)?;
                (password_principal(user, project_id), digest(&stored.hash))
            }
            ConsoleCredentials::AccessKey { access_key, secret_key } => {
                let (stored_secret, principal) = snapshot.key(access_key).ok_or_else(refused)?;
                if !bool::from(stored_secret.as_bytes().ct_eq(secret_key.as_bytes())) {
                    return Err(refused());
                }
                let credential_digest = access_key_digest(&snapshot.state, access_key).ok_or_else(refused)?;
                (principal.clone(), credential_digest)
            }
        };
        let grant = ConsoleGrant {
            user_id: principal.user_id.clone(),
            project_id: principal.project_id.clone(),
            access_key_id: principal.access_key_id.clone(),
            credential_digest,
        };
        Ok((principal, grant))
    }

    /// The principal a console session with `grant` acts as now, or `None` when the credentials it
    /// signed in with were changed or removed (or its user or project is gone).
    pub fn console_principal(&self, grant: &ConsoleGrant) -> Option<Principal> {
        let snapshot = self.snapshot();
        let state = &snapshot.state;
        let still =
            |stored_digest: &str| bool::from(stored_digest.as_bytes().ct_eq(grant.credential_digest.as_bytes()));
        if grant.access_key_id == CONSOLE_ACCESS_KEY {
            let user = state.users.iter().find(|user| user.id == grant.user_id)?;
            state.console_passwords.iter().find(|stored| stored.user_id == user.id && still(&digest(&stored.hash)))?;
            let project = state.projects.iter().find(|project| project.id == grant.project_id)?;
            (project.domain_id == user.domain_id).then(|| password_principal(user, project.id.clone()))
        } else {
            let (_, principal) = snapshot.key(&grant.access_key_id)?;
            let unchanged = principal.user_id == grant.user_id
                && principal.project_id == grant.project_id
                && still(&access_key_digest(state, &grant.access_key_id)?);
            unchanged.then(|| principal.clone())
        }
    }

    /// Whom `credentials` name, whether or not their secret is right: the principal a successful
    /// sign-in would act as (for a user name shared by several users, the first), if there is one.
    pub fn console_account(&self, credentials: &ConsoleCredentials) -> Option<Principal> {
        let snapshot = self.snapshot();
        match credentials {
            ConsoleCredentials::Password { user, .. } => {
                let state = &snapshot.state;
                let user = state.users.iter().find(|candidate| candidate.name == *user)?;
                Some(password_principal(user, password_project(state, user)?))
            }
            ConsoleCredentials::AccessKey { access_key, .. } => snapshot.key(access_key).map(|(_, p)| p.clone()),
        }
    }

    /// The data directory the identities are kept in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Seals a console secret (e.g. a session's CSRF token) under the master key, bound to `context`.
    pub fn seal_console_secret(&self, secret: &str, context: &str) -> String {
        self.master_key.seal(secret, &format!("console:{context}"))
    }

    /// Opens a value made by [`Iam::seal_console_secret`] with the same `context`.
    pub fn open_console_secret(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        self.master_key.open(sealed, &format!("console:{context}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bootstrap, Role};

    #[test]
    fn a_console_password_signs_in_only_with_itself_and_is_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let (iam, admin) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
        let admin = admin.unwrap();
        let domain = iam.domains()[0].id.clone();
        iam.create_user(&domain, "carol", Role::Auditor).unwrap();
        assert!(matches!(iam.set_console_password("carol", "short"), Err(IamError::Invalid(_))));
        iam.set_console_password("carol", "correct horse").unwrap();
        let state = std::fs::read_to_string(dir.path().join("iam/state.json")).unwrap();
        assert!(!state.contains("correct horse") && state.contains("$argon2id$"));

        let sign_in = |user: &str, password: &str| {
            iam.console_sign_in(&ConsoleCredentials::Password { user: user.into(), password: password.into() })
        };
        let (principal, grant) = sign_in("carol", "correct horse").unwrap();
        assert_eq!(iam.console_principal(&grant), Some(principal.clone()));
        assert!(!serde_json::to_string(&grant).unwrap().contains("correct horse"));
        assert_eq!((principal.role, principal.project_id.as_str()), (Role::Auditor, admin.project_id.as_str()));
        assert_eq!(principal.access_key_id, CONSOLE_ACCESS_KEY);
        for (user, password) in [("carol", "wrong horse"), ("nobody", "correct horse"), ("admin", "correct horse")] {
            assert!(matches!(sign_in(user, password), Err(AuthError::BadCredentials(_))), "{user}");
        }

        let key = |secret: &str| ConsoleCredentials::AccessKey {
            access_key: admin.access_key.clone(),
            secret_key: secret.to_owned(),
        };
        assert_eq!(iam.console_sign_in(&key(&admin.secret_key)).unwrap().0.role, Role::Admin);
        assert!(iam.console_sign_in(&key("not-the-secret")).is_err());
        assert_eq!(iam.console_account(&key("not-the-secret")).map(|p| p.role), Some(Role::Admin));
    }

    #[test]
    fn a_grant_stops_yielding_its_principal_once_its_credentials_change() {
        let dir = tempfile::tempdir().unwrap();
        let (iam, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
        let domain = iam.domains()[0].id.clone();
        let project = iam.projects()[0].id.clone();
        iam.create_user(&domain, "dave", Role::Admin).unwrap();
        iam.set_console_password("dave", "first password").unwrap();
        let key = iam.create_access_key("dave", &project).unwrap();
        let (_, password_grant) = iam
            .console_sign_in(&ConsoleCredentials::Password { user: "dave".into(), password: "first password".into() })
            .unwrap();
        let (_, key_grant) = iam
            .console_sign_in(&ConsoleCredentials::AccessKey {
                access_key: key.info.access_key.clone(),
                secret_key: key.secret_key.clone(),
            })
            .unwrap();

        iam.set_role("dave", Role::Auditor).unwrap();
        assert_eq!(iam.console_principal(&password_grant).map(|p| p.role), Some(Role::Auditor), "roles apply at once");
        assert_eq!(iam.console_principal(&key_grant).map(|p| p.role), Some(Role::Auditor));

        iam.delete_access_key(&key.info.access_key).unwrap();
        assert_eq!(iam.console_principal(&key_grant), None, "a deleted key's session ends");
        assert!(iam.console_principal(&password_grant).is_some(), "the password session is not the key's");

        // The same password again is a new hash (new salt): every earlier password session ends.
        iam.set_console_password("dave", "first password").unwrap();
        assert_eq!(iam.console_principal(&password_grant), None);

        let forged = ConsoleGrant { credential_digest: "0".repeat(64), ..password_grant };
        assert_eq!(iam.console_principal(&forged), None);
    }

    #[test]
    fn console_secrets_open_only_in_their_context() {
        let dir = tempfile::tempdir().unwrap();
        let (iam, _) = Iam::open(dir.path(), Bootstrap::default()).unwrap();
        let sealed = iam.seal_console_secret("csrf", "session-a");
        assert_eq!(iam.open_console_secret(&sealed, "session-a").unwrap(), "csrf");
        assert!(iam.open_console_secret(&sealed, "session-b").is_err());
    }
}
