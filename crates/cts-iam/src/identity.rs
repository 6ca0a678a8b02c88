//! Identities persisted under `<data_dir>/iam/`: the domain, the project, the
//! users and their access keys, and the authentication of signed requests.
//!
//! Files:
//! - `iam/state.json`: every identity; secret keys sealed with the master key.
//!   Written atomically; it is the commit point of the first start.
//! - `iam/master.key`: the master key, unless `CTS_MASTER_KEY` gives it.
//! - `admin-credentials.json` (mode 0600): the bootstrap admin's access key,
//!   project and domain ids, and the secret key sealed (see [`AdminCredentials::load`]).
//!
//! Bootstrap values given on a later start that differ from the stored
//! identities do not change them: the stored ones are kept, each difference is
//! logged as a warning and reported by [`Iam::bootstrap_conflicts`].

use crate::access::Role;
use crate::secret::{MasterKey, SecretError, MASTER_KEY_ENV};
use crate::sign::{self, Authorization, SignatureError, SignedRequest};
use cts_durable::write_atomically;
use parking_lot::RwLock;
use rand::distributions::{Alphanumeric, DistString, Distribution, Uniform};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) const STATE_VERSION: u32 = 1;
const ADMIN_USER_NAME: &str = "admin";
const DOMAIN_NAME: &str = "cts";
/// Huawei Cloud names projects after their region.
const PROJECT_NAME: &str = "ap-southeast-3";
const ADMIN_CREDENTIALS_FILE: &str = "admin-credentials.json";

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub name: String,
}

/// A project of a domain; traces belong to projects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub role: Role,
}

/// An access key as stored: the secret key sealed under the master key, with
/// the access key id as associated data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredAccessKey {
    pub access_key: String,
    pub user_id: String,
    pub project_id: String,
    pub sealed_secret_key: String,
    pub created_at_ms: i64,
}

/// The content of `iam/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub version: u32,
    pub domains: Vec<Domain>,
    pub projects: Vec<Project>,
    pub users: Vec<User>,
    pub access_keys: Vec<StoredAccessKey>,
    /// Console passwords (argon2id PHC strings), by user id ([`crate::console`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console_passwords: Vec<crate::console::StoredPassword>,
}

/// Who made an authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub user_name: String,
    pub domain_id: String,
    /// The project the access key belongs to.
    pub project_id: String,
    pub access_key_id: String,
    pub role: Role,
}

/// The identity to create at first start; each field left `None` is generated.
/// `master_key` (base64) is needed at every start unless the key file exists.
#[derive(Clone, Default)]
pub struct Bootstrap {
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub master_key: Option<String>,
}

impl fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bootstrap")
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| ".."))
            .field("project_id", &self.project_id)
            .field("domain_id", &self.domain_id)
            .field("master_key", &self.master_key.as_ref().map(|_| ".."))
            .finish()
    }
}

impl Bootstrap {
    /// Reads `CTS_ADMIN_ACCESS_KEY`, `CTS_ADMIN_SECRET_KEY`, `CTS_PROJECT_ID`,
    /// `CTS_DOMAIN_ID` and `CTS_MASTER_KEY`; empty values count as unset.
    pub fn from_env() -> Bootstrap {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Bootstrap {
            access_key: var("CTS_ADMIN_ACCESS_KEY"),
            secret_key: var("CTS_ADMIN_SECRET_KEY"),
            project_id: var("CTS_PROJECT_ID"),
            domain_id: var("CTS_DOMAIN_ID"),
            master_key: var(MASTER_KEY_ENV),
        }
    }

    fn validate(&self) -> Result<(), IamError> {
        let invalid = |message: &str| Err(IamError::InvalidBootstrap(message.to_owned()));
        if self.access_key.is_some() != self.secret_key.is_some() {
            return invalid("CTS_ADMIN_ACCESS_KEY and CTS_ADMIN_SECRET_KEY must be given together");
        }
        if let Some(access_key) = &self.access_key {
            if !(8..=128).contains(&access_key.len()) || !access_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return invalid("CTS_ADMIN_ACCESS_KEY must be 8-128 letters and digits");
            }
        }
        if let Some(secret_key) = &self.secret_key {
            if !(16..=256).contains(&secret_key.len()) || !secret_key.bytes().all(|b| b.is_ascii_graphic()) {
                return invalid("CTS_ADMIN_SECRET_KEY must be 16-256 printable ASCII characters without spaces");
            }
        }
        for (name, id) in [("CTS_PROJECT_ID", &self.project_id), ("CTS_DOMAIN_ID", &self.domain_id)] {
            let valid = |id: &String| {
                (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            if id.as_ref().is_some_and(|id| !valid(id)) {
                return invalid(&format!("{name} must be 1-64 of A-Z, a-z, 0-9, '-', '_'"));
            }
        }
        Ok(())
    }
}

/// A bootstrap value that differs from what is stored; the stored value is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapConflict {
    #[error("CTS_ADMIN_ACCESS_KEY {given} is not a stored access key of the admin; keeping the stored keys")]
    AccessKey { given: String },
    #[error("CTS_ADMIN_SECRET_KEY differs from the stored secret of {access_key}; keeping the stored secret")]
    SecretKey { access_key: String },
    #[error("CTS_PROJECT_ID {given} differs from the stored project {stored}; keeping {stored}")]
    ProjectId { given: String, stored: String },
    #[error("CTS_DOMAIN_ID {given} differs from the stored domain {stored}; keeping {stored}")]
    DomainId { given: String, stored: String },
}

/// The bootstrap admin's credentials: returned once by [`Iam::open`] at first
/// start and kept in `<data_dir>/admin-credentials.json` with the secret sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub project_id: String,
    pub domain_id: String,
}

impl fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"..")
            .field("project_id", &self.project_id)
            .field("domain_id", &self.domain_id)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct AdminCredentialsFile {
    access_key: String,
    project_id: String,
    domain_id: String,
    sealed_secret_key: String,
}

impl AdminCredentials {
    pub fn file_path(data_dir: &Path) -> PathBuf {
        data_dir.join(ADMIN_CREDENTIALS_FILE)
    }

    /// Reads `admin-credentials.json` and unseals the secret key with the
    /// master key (`CTS_MASTER_KEY` if set, else the key file).
    pub fn load(data_dir: &Path) -> Result<AdminCredentials, IamError> {
        let master_key =
            MasterKey::load(data_dir, std::env::var(MASTER_KEY_ENV).ok().filter(|v| !v.is_empty()).as_deref())?;
        let path = AdminCredentials::file_path(data_dir);
        let file: AdminCredentialsFile = read_json(&path)?;
        let secret_key = master_key.open(&file.sealed_secret_key, &admin_credentials_context(&file.access_key))?;
        Ok(AdminCredentials {
            access_key: file.access_key,
            secret_key,
            project_id: file.project_id,
            domain_id: file.domain_id,
        })
    }

    fn save(&self, data_dir: &Path, master_key: &MasterKey) -> Result<(), IamError> {
        let file = AdminCredentialsFile {
            access_key: self.access_key.clone(),
            project_id: self.project_id.clone(),
            domain_id: self.domain_id.clone(),
            sealed_secret_key: master_key.seal(&self.secret_key, &admin_credentials_context(&self.access_key)),
        };
        write_json(&AdminCredentials::file_path(data_dir), &file)
    }
}

fn admin_credentials_context(access_key: &str) -> String {
    format!("admin-credentials:{access_key}")
}

/// Why the identities could not be opened or created.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("invalid bootstrap identity: {0}")]
    InvalidBootstrap(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0} not found")]
    NotFound(String),
}

/// Why a request was not authenticated. Display is for logs;
/// [`AuthError::client_message`] is what the caller may be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("unknown access key {0}")]
    UnknownAccessKey(String),
    /// A console sign-in with a wrong user name, password, access key or secret key.
    #[error("console sign-in refused for {0}")]
    BadCredentials(String),
    /// A console session cookie naming no live session.
    #[error("unknown or expired console session")]
    NoSession,
}

impl AuthError {
    /// A message that helps an honest client fix its request without telling
    /// anyone whether an access key exists or how close a signature came.
    pub fn client_message(&self) -> String {
        match self {
            AuthError::Signature(SignatureError::SignatureMismatch | SignatureError::ContentHashMismatch)
            | AuthError::UnknownAccessKey(_) => "the signature is invalid or the access key is unknown".to_owned(),
            AuthError::Signature(SignatureError::MalformedAuthorization(_) | SignatureError::UnsupportedAlgorithm) => {
                "the Authorization header is not a valid SDK-HMAC-SHA256 authorization".to_owned()
            }
            AuthError::Signature(other) => other.to_string(),
            AuthError::BadCredentials(_) => {
                "the user name and password (or access key and secret key) are wrong".to_owned()
            }
            AuthError::NoSession => "the console session is unknown or expired: sign in again".to_owned(),
        }
    }
}

struct ActiveKey {
    secret_key: String,
    principal: Principal,
}

/// Which version of `iam/state.json` a snapshot was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileVersion {
    inode: u64,
    modified: Option<std::time::SystemTime>,
    len: u64,
}

impl FileVersion {
    pub(crate) fn of(path: &Path) -> Option<FileVersion> {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileVersion { inode: metadata.ino(), modified: metadata.modified().ok(), len: metadata.len() })
    }
}

/// The identities as of one version of the state file, with the secret keys unsealed.
pub(crate) struct Snapshot {
    pub(crate) state: State,
    keys: HashMap<String, ActiveKey>,
    version: Option<FileVersion>,
}

/// The identities, loaded with their secret keys unsealed in memory. Changes
/// ([`crate::admin`]) are written to the state file under `iam/LOCK`;
/// [`Iam::reload_if_changed`] picks up changes another process made.
pub struct Iam {
    pub(crate) data_dir: PathBuf,
    pub(crate) master_key: MasterKey,
    current: RwLock<Arc<Snapshot>>,
    bootstrap_conflicts: Vec<BootstrapConflict>,
}

impl fmt::Debug for Iam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.snapshot();
        f.debug_struct("Iam")
            .field("domains", &snapshot.state.domains)
            .field("access_keys", &snapshot.keys.len())
            .finish()
    }
}

impl Iam {
    /// Opens the identities under `<data_dir>/iam/`, creating them (and the
    /// master key file unless `bootstrap.master_key` is given) on first start.
    /// Returns the new admin credentials only when they were just created.
    pub fn open(data_dir: &Path, bootstrap: Bootstrap) -> Result<(Iam, Option<AdminCredentials>), IamError> {
        let state_path = state_path(data_dir);
        let master_key = MasterKey::find(data_dir, bootstrap.master_key.as_deref())?;
        if state_path.exists() {
            let master_key =
                master_key.ok_or_else(|| SecretError::MissingMasterKey { path: MasterKey::file_path(data_dir) })?;
            let snapshot = Snapshot::read(&state_path, &master_key)?;
            let mut iam = Iam::new(data_dir, master_key, snapshot);
            iam.bootstrap_conflicts = iam.compare_bootstrap(&bootstrap);
            for conflict in &iam.bootstrap_conflicts {
                tracing::warn!(%conflict, "bootstrap identity ignored");
            }
            return Ok((iam, None));
        }
        bootstrap.validate()?;
        let master_key = match master_key {
            Some(key) => key,
            None => MasterKey::create_file(data_dir)?,
        };
        let credentials = AdminCredentials {
            access_key: bootstrap.access_key.unwrap_or_else(generate_access_key),
            secret_key: bootstrap.secret_key.unwrap_or_else(generate_secret_key),
            project_id: bootstrap.project_id.unwrap_or_else(generate_id),
            domain_id: bootstrap.domain_id.unwrap_or_else(generate_id),
        };
        let admin = User {
            id: generate_id(),
            name: ADMIN_USER_NAME.to_owned(),
            domain_id: credentials.domain_id.clone(),
            role: Role::Admin,
        };
        let state = State {
            version: STATE_VERSION,
            domains: vec![Domain { id: credentials.domain_id.clone(), name: DOMAIN_NAME.to_owned() }],
            projects: vec![Project {
                id: credentials.project_id.clone(),
                name: PROJECT_NAME.to_owned(),
                domain_id: credentials.domain_id.clone(),
            }],
            access_keys: vec![StoredAccessKey {
                access_key: credentials.access_key.clone(),
                user_id: admin.id.clone(),
                project_id: credentials.project_id.clone(),
                sealed_secret_key: master_key.seal(&credentials.secret_key, &credentials.access_key),
                created_at_ms: chrono::Utc::now().timestamp_millis(),
            }],
            users: vec![admin],
            console_passwords: Vec::new(),
        };
        // The state file is the commit point: a crash before it is written means a fresh bootstrap next time.
        credentials.save(data_dir, &master_key)?;
        write_json(&state_path, &state)?;
        let snapshot = Snapshot::new(state, &master_key, &state_path, FileVersion::of(&state_path))?;
        Ok((Iam::new(data_dir, master_key, snapshot), Some(credentials)))
    }

    fn new(data_dir: &Path, master_key: MasterKey, snapshot: Snapshot) -> Iam {
        Iam {
            data_dir: data_dir.to_owned(),
            master_key,
            current: RwLock::new(Arc::new(snapshot)),
            bootstrap_conflicts: Vec::new(),
        }
    }

    /// Verifies the `SDK-HMAC-SHA256` signature of `request` at `now_ms` and
    /// returns who signed it.
    pub fn authenticate(&self, request: &SignedRequest<'_>, now_ms: i64) -> Result<Principal, AuthError> {
        let mut authorizations =
            request.headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case("authorization")).map(|(_, v)| v);
        let authorization = match (authorizations.next(), authorizations.next()) {
            (None, _) => return Err(SignatureError::MissingAuthorization.into()),
            (Some(_), Some(_)) => return Err(SignatureError::DuplicateHeader("authorization".into()).into()),
            (Some(value), None) => Authorization::parse(value)?,
        };
        let snapshot = self.snapshot();
        let key = snapshot
            .keys
            .get(&authorization.access_key)
            .ok_or_else(|| AuthError::UnknownAccessKey(authorization.access_key.clone()))?;
        sign::verify(request, &authorization, key.secret_key.as_bytes(), now_ms)?;
        Ok(key.principal.clone())
    }

    /// Re-reads the state file if another process (`cts admin`) changed it since it was last read.
    /// Returns whether the identities changed.
    pub fn reload_if_changed(&self) -> Result<bool, IamError> {
        let path = state_path(&self.data_dir);
        let on_disk = FileVersion::of(&path);
        if on_disk.is_none() || on_disk == self.snapshot().version {
            return Ok(false);
        }
        let snapshot = Snapshot::read(&path, &self.master_key)?;
        *self.current.write() = Arc::new(snapshot);
        Ok(true)
    }

    /// Bootstrap values of this start that differ from the stored identities (and were ignored).
    pub fn bootstrap_conflicts(&self) -> &[BootstrapConflict] {
        &self.bootstrap_conflicts
    }

    pub fn domains(&self) -> Vec<Domain> {
        self.snapshot().state.domains.clone()
    }

    pub fn projects(&self) -> Vec<Project> {
        self.snapshot().state.projects.clone()
    }

    pub fn users(&self) -> Vec<User> {
        self.snapshot().state.users.clone()
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().clone()
    }

    /// Makes `snapshot` (just written by this process) current.
    pub(crate) fn install(&self, snapshot: Snapshot) {
        *self.current.write() = Arc::new(snapshot);
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        state_path(&self.data_dir)
    }

    fn compare_bootstrap(&self, bootstrap: &Bootstrap) -> Vec<BootstrapConflict> {
        let snapshot = self.snapshot();
        let mut conflicts = Vec::new();
        if let Some(given) = &bootstrap.access_key {
            match snapshot.keys.get(given).filter(|key| key.principal.user_name == ADMIN_USER_NAME) {
                None => conflicts.push(BootstrapConflict::AccessKey { given: given.clone() }),
                Some(key) if bootstrap.secret_key.as_ref().is_some_and(|secret| *secret != key.secret_key) => {
                    conflicts.push(BootstrapConflict::SecretKey { access_key: given.clone() })
                }
                Some(_) => {}
            }
        }
        if let (Some(given), Some(stored)) = (&bootstrap.project_id, snapshot.state.projects.first()) {
            if *given != stored.id {
                conflicts.push(BootstrapConflict::ProjectId { given: given.clone(), stored: stored.id.clone() });
            }
        }
        if let (Some(given), Some(stored)) = (&bootstrap.domain_id, snapshot.state.domains.first()) {
            if *given != stored.id {
                conflicts.push(BootstrapConflict::DomainId { given: given.clone(), stored: stored.id.clone() });
            }
        }
        conflicts
    }
}

impl Snapshot {
    /// The secret key and principal of an access key.
    pub(crate) fn key(&self, access_key: &str) -> Option<(&str, &Principal)> {
        self.keys.get(access_key).map(|key| (key.secret_key.as_str(), &key.principal))
    }

    pub(crate) fn read(path: &Path, master_key: &MasterKey) -> Result<Snapshot, IamError> {
        // The version is taken before reading: a change racing the read is picked up next time.
        let version = FileVersion::of(path);
        Snapshot::new(read_json(path)?, master_key, path, version)
    }

    /// Checks the references between identities and unseals every secret key.
    pub(crate) fn new(
        state: State,
        master_key: &MasterKey,
        path: &Path,
        version: Option<FileVersion>,
    ) -> Result<Snapshot, IamError> {
        let corrupt = |reason: String| IamError::Corrupt { path: path.to_owned(), reason };
        if state.version != STATE_VERSION {
            return Err(corrupt(format!("unsupported version {}", state.version)));
        }
        let mut keys = HashMap::new();
        for stored in &state.access_keys {
            let user = state.users.iter().find(|user| user.id == stored.user_id).ok_or_else(|| {
                corrupt(format!("access key {} names unknown user {}", stored.access_key, stored.user_id))
            })?;
            let project = state.projects.iter().find(|project| project.id == stored.project_id).ok_or_else(|| {
                corrupt(format!("access key {} names unknown project {}", stored.access_key, stored.project_id))
            })?;
            if project.domain_id != user.domain_id {
                return Err(corrupt(format!(
                    "access key {} joins a user and a project of different domains",
                    stored.access_key
                )));
            }
            let secret_key = master_key.open(&stored.sealed_secret_key, &stored.access_key)?;
            let principal = Principal {
                user_id: user.id.clone(),
                user_name: user.name.clone(),
                domain_id: user.domain_id.clone(),
                project_id: project.id.clone(),
                access_key_id: stored.access_key.clone(),
                role: user.role,
            };
            if keys.insert(stored.access_key.clone(), ActiveKey { secret_key, principal }).is_some() {
                return Err(corrupt(format!("access key {} is listed twice", stored.access_key)));
            }
        }
        Ok(Snapshot { state, keys, version })
    }
}

pub(crate) fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("iam").join("state.json")
}

/// 20 uppercase letters and digits, like Huawei Cloud access key ids.
pub(crate) fn generate_access_key() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let index = Uniform::from(0..CHARS.len());
    index.sample_iter(rand::rngs::OsRng).take(20).map(|i| CHARS[i] as char).collect()
}

/// 40 letters and digits, like Huawei Cloud secret access keys.
pub(crate) fn generate_secret_key() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40)
}

/// 32 lowercase hex digits, like Huawei Cloud project and domain ids.
pub(crate) fn generate_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, IamError> {
    let text = std::fs::read(path).map_err(|source| IamError::Io { action: "read", path: path.to_owned(), source })?;
    serde_json::from_slice(&text).map_err(|e| IamError::Corrupt { path: path.to_owned(), reason: e.to_string() })
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), IamError> {
    let json = serde_json::to_vec_pretty(value).expect("identity records serialize to JSON");
    write_atomically(path, &json).map_err(|source| IamError::Io { action: "write", path: path.to_owned(), source })
}
