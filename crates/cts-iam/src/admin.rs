//! Changing the identities: domains, projects, users, roles and access keys, as `cts admin` makes them.
//!
//! Every change takes `iam/LOCK` (so two admin commands, or an admin command and a first start, never lose each
//! other's writes), re-reads the state file, applies the change, writes the file atomically and makes the result
//! current in this process. A running server picks it up with [`Iam::reload_if_changed`].

use crate::access::Role;
use crate::identity::{
    generate_access_key, generate_id, generate_secret_key, read_json, write_json, Domain, FileVersion, Iam, IamError,
    Project, Snapshot, State, StoredAccessKey, User,
};
use serde::Serialize;
use std::fmt;
use std::fs::{File, OpenOptions};

/// An access key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessKeyInfo {
    pub access_key: String,
    pub user_id: String,
    pub project_id: String,
    pub created_at_ms: i64,
}

/// A newly created access key. The secret key is returned this once; cts keeps it sealed.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewAccessKey {
    #[serde(flatten)]
    pub info: AccessKeyInfo,
    pub secret_key: String,
}

impl fmt::Debug for NewAccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccessKey").field("info", &self.info).field("secret_key", &"..").finish()
    }
}

impl From<&StoredAccessKey> for AccessKeyInfo {
    fn from(stored: &StoredAccessKey) -> AccessKeyInfo {
        AccessKeyInfo {
            access_key: stored.access_key.clone(),
            user_id: stored.user_id.clone(),
            project_id: stored.project_id.clone(),
            created_at_ms: stored.created_at_ms,
        }
    }
}

impl Iam {
    pub fn access_keys(&self) -> Vec<AccessKeyInfo> {
        self.snapshot().state.access_keys.iter().map(AccessKeyInfo::from).collect()
    }

    /// Creates an account. Names are unique.
    pub fn create_domain(&self, name: &str) -> Result<Domain, IamError> {
        let name = valid_name("domain", name)?;
        self.change(|state| {
            if state.domains.iter().any(|domain| domain.name == name) {
                return Err(IamError::Exists(format!("domain {name:?}")));
            }
            let domain = Domain { id: generate_id(), name };
            state.domains.push(domain.clone());
            Ok(domain)
        })
    }

    /// Creates a project in a domain (given by id or name). Names are unique within a domain.
    pub fn create_project(&self, domain: &str, name: &str) -> Result<Project, IamError> {
        let name = valid_name("project", name)?;
        self.change(|state| {
            let domain_id = find_domain(state, domain)?.id.clone();
            if state.projects.iter().any(|project| project.domain_id == domain_id && project.name == name) {
                return Err(IamError::Exists(format!("project {name:?} in domain {domain_id}")));
            }
            let project = Project { id: generate_id(), name, domain_id };
            state.projects.push(project.clone());
            Ok(project)
        })
    }

    /// Creates a user of a domain (given by id or name) holding `role`. Names are unique within a domain.
    pub fn create_user(&self, domain: &str, name: &str, role: Role) -> Result<User, IamError> {
        let name = valid_name("user", name)?;
        self.change(|state| {
            let domain_id = find_domain(state, domain)?.id.clone();
            if state.users.iter().any(|user| user.domain_id == domain_id && user.name == name) {
                return Err(IamError::Exists(format!("user {name:?} in domain {domain_id}")));
            }
            let user = User { id: generate_id(), name, domain_id, role };
            state.users.push(user.clone());
            Ok(user)
        })
    }

    /// Gives a user (by id, or by name when only one user has it) another role; its keys carry the new role at once.
    pub fn set_role(&self, user: &str, role: Role) -> Result<User, IamError> {
        self.change(|state| {
            let index = find_user(state, user)?;
            state.users[index].role = role;
            Ok(state.users[index].clone())
        })
    }

    /// Creates an access key for a user in one of its domain's projects (both by id or unique name).
    pub fn create_access_key(&self, user: &str, project: &str) -> Result<NewAccessKey, IamError> {
        self.change(|state| {
            let user = state.users[find_user(state, user)?].clone();
            let project = find_project(state, project)?.clone();
            if project.domain_id != user.domain_id {
                return Err(IamError::Invalid(format!(
                    "user {} and project {} belong to different domains",
                    user.id, project.id
                )));
            }
            let access_key = generate_access_key();
            let secret_key = generate_secret_key();
            let stored = StoredAccessKey {
                sealed_secret_key: self.master_key.seal(&secret_key, &access_key),
                access_key,
                user_id: user.id,
                project_id: project.id,
                created_at_ms: chrono::Utc::now().timestamp_millis(),
            };
            let info = AccessKeyInfo::from(&stored);
            state.access_keys.push(stored);
            Ok(NewAccessKey { info, secret_key })
        })
    }

    /// Deletes an access key; requests signed with it fail from then on.
    pub fn delete_access_key(&self, access_key: &str) -> Result<AccessKeyInfo, IamError> {
        self.change(|state| {
            let index = state
                .access_keys
                .iter()
                .position(|stored| stored.access_key == access_key)
                .ok_or_else(|| IamError::NotFound(format!("access key {access_key}")))?;
            Ok(AccessKeyInfo::from(&state.access_keys.remove(index)))
        })
    }

    /// Applies `f` to the current state on disk under the lock; if it succeeds, writes and installs the result.
    pub(crate) fn change<T>(&self, f: impl FnOnce(&mut State) -> Result<T, IamError>) -> Result<T, IamError> {
        let path = self.state_path();
        let _lock = lock(&self.data_dir.join("iam").join("LOCK"))?;
        let mut state: State = read_json(&path)?;
        let outcome = f(&mut state)?;
        write_json(&path, &state)?;
        self.install(Snapshot::new(state, &self.master_key, &path, FileVersion::of(&path))?);
        Ok(outcome)
    }
}

fn lock(path: &std::path::Path) -> Result<File, IamError> {
    let io = |source| IamError::Io { action: "lock", path: path.to_owned(), source };
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

/// Names: 1–64 characters, letters, digits, `-`, `_`, `.`; no leading or trailing space to trip over.
fn valid_name(kind: &str, name: &str) -> Result<String, IamError> {
    let valid = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(IamError::Invalid(format!("{kind} name {name:?} must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'")))
    }
}

/// The one item whose id is `key`, else the one whose name is `key`; a name shared by several is ambiguous.
fn find_unique<T>(
    kind: &str,
    items: &[T],
    key: &str,
    id: impl Fn(&T) -> &str,
    name: impl Fn(&T) -> &str,
) -> Result<usize, IamError> {
    if let Some(index) = items.iter().position(|item| id(item) == key) {
        return Ok(index);
    }
    let mut named = items.iter().enumerate().filter(|(_, item)| name(item) == key).map(|(index, _)| index);
    match (named.next(), named.next()) {
        (Some(index), None) => Ok(index),
        (Some(_), Some(_)) => Err(IamError::Invalid(format!("several {kind}s are named {key:?}: give the id"))),
        (None, _) => Err(IamError::NotFound(format!("{kind} {key:?}"))),
    }
}

fn find_domain<'a>(state: &'a State, key: &str) -> Result<&'a Domain, IamError> {
    find_unique("domain", &state.domains, key, |d| &d.id, |d| &d.name).map(|index| &state.domains[index])
}

fn find_project<'a>(state: &'a State, key: &str) -> Result<&'a Project, IamError> {
    find_unique("project", &state.projects, key, |p| &p.id, |p| &p.name).map(|index| &state.projects[index])
}

pub(crate) fn find_user(state: &State, key: &str) -> Result<usize, IamError> {
    find_unique("user", &state.users, key, |u| &u.id, |u| &u.name)
}
