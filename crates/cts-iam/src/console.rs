//! Console sign-in: a user name and console password, or an access key and its secret key, turned
//! into the [`Principal`] a console session acts as.
//!
//! Passwords are stored as argon2id PHC strings (`iam/state.json`, `console_passwords`), never in
//! clear; [`Iam::set_console_password`] changes one under the state lock like every admin change. A
//! password sign-in acts in the project of the user's first access key, else the first project of
//! the user's domain; its access key id is [`CONSOLE_ACCESS_KEY`]. A refused sign-in never tells
//! which part was wrong.

use crate::admin::find_user;
use crate::identity::{AuthError, Iam, IamError, Principal, User};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use std::fmt;
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

    /// Checks console credentials and returns who signed in.
    pub fn console_sign_in(&self, credentials: &ConsoleCredentials) -> Result<Principal, AuthError> {
        match credentials {
            ConsoleCredentials::Password { user, password } => self.password_sign_in(user, password),
            ConsoleCredentials::AccessKey { access_key, secret_key } => {
                let snapshot = self.snapshot();
                let refused = || AuthError::BadCredentials(access_key.clone());
                let (stored_secret, principal) = snapshot.key(access_key).ok_or_else(refused)?;
                if bool::from(stored_secret.as_bytes().ct_eq(secret_key.as_bytes())) {
                    Ok(principal.clone())
                } else {
                    Err(refused())
                }
            }
        }
    }

    fn password_sign_in(&self, user_name: &str, password: &str) -> Result<Principal, AuthError> {
        let snapshot = self.snapshot();
        let state = &snapshot.state;
        let refused = || AuthError::BadCredentials(user_name.to_owned());
        let verified = state.users.iter().filter(|user| user.name == user_name).find(|user| {
            state.console_passwords.iter().any(|stored| {
                stored.user_id == user.id
                    && PasswordHash::new(&stored.hash)
                        .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
            })
        });
        let user = verified.ok_or_else(refused)?;
        let project_id = state
            .access_keys
            .iter()
            .find(|key| key.user_id == user.id)
            .map(|key| key.project_id.clone())
            .or_else(|| state.projects.iter().find(|p| p.domain_id == user.domain_id).map(|p| p.id.clone()))
            .ok_or_else(refused)?;
        Ok(Principal {
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            domain_id: user.domain_id.clone(),
            project_id,
            access_key_id: CONSOLE_ACCESS_KEY.to_owned(),
            role: user.role,
        })
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
        let principal = sign_in("carol", "correct horse").unwrap();
        assert_eq!((principal.role, principal.project_id.as_str()), (Role::Auditor, admin.project_id.as_str()));
        assert_eq!(principal.access_key_id, CONSOLE_ACCESS_KEY);
        for (user, password) in [("carol", "wrong horse"), ("nobody", "correct horse"), ("admin", "correct horse")] {
            assert!(matches!(sign_in(user, password), Err(AuthError::BadCredentials(_))), "{user}");
        }

        let key = |secret: &str| ConsoleCredentials::AccessKey {
            access_key: admin.access_key.clone(),
            secret_key: secret.to_owned(),
        };
        assert_eq!(iam.console_sign_in(&key(&admin.secret_key)).unwrap().role, Role::Admin);
        assert!(iam.console_sign_in(&key("not-the-secret")).is_err());
    }
}
