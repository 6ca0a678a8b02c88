//! Console sessions: `POST /console/api/session` signs in (a user name and console password, or an
//! access key and secret key: `cts_iam::ConsoleCredentials`), `GET` shows the session, `DELETE`
//! signs out.
//!
//! A session is a random id (244 random bits) in the cookie `cts_session` (`HttpOnly; SameSite=Strict;
//! Path=/`) naming an entry of the server-side table [`Sessions`]: the [`ConsoleGrant`] of the
//! sign-in and a CSRF token, until [`SESSION_TTL_MS`] after sign-in. The authentication layer
//! ([`crate::auth`]) accepts the cookie on every `/v3` and `/v2` route in place of a signature, with
//! the same role and project checks; a request that is not GET or HEAD must also carry the CSRF token
//! in `X-CSRF-Token`. Each request asks cts-iam for the grant's principal as the identities are now
//! (`Iam::console_principal`): a session whose password was changed, whose access key was deleted or
//! whose user is gone stops working at once, and role changes apply at once.
//!
//! Sessions survive a restart: `<data_dir>/console/sessions.json` (mode 0600, replaced atomically by
//! `cts_durable::write_atomically`) holds each session under the SHA-256 of its id (never the id),
//! with its grant (no secret), expiry and CSRF token sealed under the master key (bound to the id's
//! hash). A sign-in is answered only once its session is on disk, a sign-out once it is gone from
//! it. Expired and revoked sessions are dropped when the file is loaded, at each sign-in and
//! sign-out, and by [`Sessions::purge`], which `serve` runs every [`PURGE_INTERVAL`]. A file that
//! cannot be read or opened signs everyone out (logged), it does not stop cts.
//!
//! Every sign-in attempt (200, 401, 429) and every sign-out is recorded as a `CTS` trace
//! (`consoleLogin`, `consoleLogout`, resource type `session`, see [`crate::self_audit`]) before it is
//! answered, in the signed-in project, or for a refused sign-in in the project of the user or access
//! key named, when there is one (else, like any unauthenticated call, not at all). The trace names
//! the user or key, never the password or secret key, and never the CSRF token. Failed attempts are
//! limited ([`crate::sign_in_limit`]).

use crate::error::ApiError;
use crate::self_audit::{self, Audit};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cts_iam::{AuthError, ConsoleCredentials, ConsoleGrant, Iam, Principal};
use cts_model::{TraceType, CATALOG, CTS_SERVICE};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cts_session";
/// The header carrying the CSRF token on changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts after sign-in: 8 hours.
pub const SESSION_TTL_MS: i64 = 8 * 3_600_000;
/// How often `serve` drops expired and revoked sessions from the file.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(600);
/// The version of the sessions file.
const FILE_VERSION: u32 = 1;

/// The SHA-256 of a session id: what the table and the file key sessions by.
type IdHash = [u8; 32];

fn id_hash(id: &str) -> IdHash {
    Sha256::digest(id.as_bytes()).into()
}

struct Session {
    grant: ConsoleGrant,
    csrf_token: String,
    /// The CSRF token as the file keeps it.
    sealed_csrf_token: String,
    expires_at_ms: i64,
}

/// A session as the file keeps it.
#[derive(Serialize, Deserialize)]
struct StoredSession {
    /// Hex SHA-256 of the session id.
    id_sha256: String,
    grant: ConsoleGrant,
    sealed_csrf_token: String,
    expires_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct SessionFile {
    version: u32,
    sessions: Vec<StoredSession>,
}

/// The live sessions, in memory and in `<data_dir>/console/sessions.json`.
pub struct Sessions {
    iam: Arc<Iam>,
    path: PathBuf,
    table: Mutex<HashMap<IdHash, Session>>,
    /// Held while the file is written, so that writes land in the order of the states they save.
    writing: Mutex<()>,
}

/// A session as the console sees it.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    pub user_id: String,
    pub user_name: String,
    pub role: String,
    pub project_id: String,
    pub domain_id: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

impl SessionInfo {
    fn new(principal: Principal, csrf_token: String, expires_at: i64) -> SessionInfo {
        SessionInfo {
            user_id: principal.user_id,
            user_name: principal.user_name,
            role: principal.role.to_string(),
            project_id: principal.project_id,
            domain_id: principal.domain_id,
            csrf_token,
            expires_at,
        }
    }
}

fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// What the CSRF token's seal is bound to: the session, so that it opens for no other.
fn csrf_context(id_sha256: &str) -> String {
    format!("session-csrf:{id_sha256}")
}

impl Sessions {
    /// The sessions saved under the identities' data directory that are still live at `now_ms`.
    pub fn open(iam: Arc<Iam>, now_ms: i64) -> Sessions {
        let path = iam.data_dir().join("console").join("sessions.json");
        let sessions = Sessions { iam, path, table: Mutex::default(), writing: Mutex::default() };
        let (loaded, dropped) = sessions.load();
        *sessions.table.lock() = loaded;
        let purged = sessions.retain_live(now_ms);
        if dropped + purged > 0 {
            if let Err(error) = sessions.save() {
                tracing::error!(%error, path = %sessions.path.display(), "dropping old console sessions failed");
            }
        }
        sessions
    }

    /// The sessions of the file, and how many of its entries could not be read.
    fn load(&self) -> (HashMap<IdHash, Session>, usize) {
        let file: SessionFile = match std::fs::read(&self.path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return (HashMap::new(), 0),
            Err(error) => {
                tracing::error!(%error, path = %self.path.display(), "console sessions unreadable: all signed out");
                return (HashMap::new(), 1);
            }
            Ok(bytes) => match serde_json::from_slice::<SessionFile>(&bytes) {
                Ok(file) if file.version == FILE_VERSION => file,
                Ok(file) => {
                    tracing::error!(version = file.version, "unknown console sessions file version: all signed out");
                    return (HashMap::new(), 1);
                }
                Err(error) => {
                    tracing::error!(%error, path = %self.path.display(), "console sessions damaged: all signed out");
                    return (HashMap::new(), 1);
                }
            },
        };
        let mut table = HashMap::new();
        let mut dropped = 0;
        for stored in file.sessions {
            let hash: Option<IdHash> = hex::decode(&stored.id_sha256).ok().and_then(|bytes| bytes.try_into().ok());
            let token = self.iam.open_console_secret(&stored.sealed_csrf_token, &csrf_context(&stored.id_sha256));
            match (hash, token) {
                (Some(hash), Ok(csrf_token)) => {
                    let session = Session {
                        grant: stored.grant,
                        csrf_token,
                        sealed_csrf_token: stored.sealed_csrf_token,
                        expires_at_ms: stored.expires_at_ms,
                    };
                    table.insert(hash, session);
                }
                _ => dropped += 1,
            }
        }
        if dropped > 0 {
            tracing::warn!(dropped, "console sessions that do not open with this master key were dropped");
        }
        (table, dropped)
    }

    /// Drops the sessions expired at `now_ms` or whose credentials changed; how many.
    fn retain_live(&self, now_ms: i64) -> usize {
        let mut table = self.table.lock();
        let before = table.len();
        table.retain(|_, session| {
            session.expires_at_ms > now_ms && self.iam.console_principal(&session.grant).is_some()
        });
        before - table.len()
    }

    /// Writes the table as it is now.
    fn save(&self) -> std::io::Result<()> {
        let _writing = self.writing.lock();
        let file = {
            let table = self.table.lock();
            let sessions = table
                .iter()
                .map(|(hash, session)| StoredSession {
                    id_sha256: hex::encode(hash),
                    grant: session.grant.clone(),
                    sealed_csrf_token: session.sealed_csrf_token.clone(),
                    expires_at_ms: session.expires_at_ms,
                })
                .collect();
            SessionFile { version: FILE_VERSION, sessions }
        };
        let json = serde_json::to_vec_pretty(&file).expect("sessions serialize to JSON");
        cts_durable::write_atomically(&self.path, &json)
    }

    /// Opens a session for `grant` at `now_ms` and saves it (blocking: fsync): its id and CSRF token.
    fn open_session(&self, grant: ConsoleGrant, now_ms: i64) -> Result<(String, String), std::io::Error> {
        let id = random_token();
        let hash = id_hash(&id);
        let csrf_token = random_token();
        let sealed_csrf_token = self.iam.seal_console_secret(&csrf_token, &csrf_context(&hex::encode(hash)));
        let session = Session {
            grant,
            csrf_token: csrf_token.clone(),
            sealed_csrf_token,
            expires_at_ms: now_ms + SESSION_TTL_MS,
        };
        self.table.lock().insert(hash, session);
        self.retain_live(now_ms);
        if let Err(error) = self.save() {
            self.table.lock().remove(&hash);
            return Err(error);
        }
        Ok((id, csrf_token))
    }

    /// Who the live session `id` acts as now, and its CSRF token.
    pub(crate) fn principal(&self, id: &str, now_ms: i64) -> Option<(Principal, String)> {
        let hash = id_hash(id);
        let mut table = self.table.lock();
        let session = table.get(&hash)?;
        let principal = (session.expires_at_ms > now_ms).then(|| self.iam.console_principal(&session.grant));
        match principal.flatten() {
            Some(principal) => Some((principal, session.csrf_token.clone())),
            None => {
                // Expired or revoked: gone from memory now, from the file at the next save.
                table.remove(&hash);
                None
            }
        }
    }

    fn info(&self, id: &str, now_ms: i64) -> Option<SessionInfo> {
        let (principal, csrf_token) = self.principal(id, now_ms)?;
        let expires_at = self.table.lock().get(&id_hash(id))?.expires_at_ms;
        Some(SessionInfo::new(principal, csrf_token, expires_at))
    }

    /// Ends the session `id` and saves (blocking: fsync); who it acted as, if it was live.
    fn close(&self, id: &str, now_ms: i64) -> Result<Option<Principal>, std::io::Error> {
        let principal = self.principal(id, now_ms).map(|(principal, _)| principal);
        self.table.lock().remove(&id_hash(id));
        self.retain_live(now_ms);
        self.save()?;
        Ok(principal)
    }

    /// Drops expired and revoked sessions from memory and the file (blocking: fsync when any).
    pub fn purge(&self, now_ms: i64) -> std::io::Result<usize> {
        let purged = self.retain_live(now_ms);
        if purged > 0 {
            self.save()?;
        }
        Ok(purged)
    }
}

/// Drops expired and revoked sessions every [`PURGE_INTERVAL`] (run by `serve`).
pub(crate) async fn purge_periodically(sessions: Arc<Sessions>) {
    let mut ticks = tokio::time::interval(PURGE_INTERVAL);
    loop {
        ticks.tick().await;
        let sessions = sessions.clone();
        match tokio::task::spawn_blocking(move || sessions.purge(cts_model::now_ms())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(purged)) => tracing::info!(purged, "dropped expired console sessions"),
            Ok(Err(error)) => tracing::error!(%error, "dropping expired console sessions failed"),
            Err(error) => tracing::error!(%error, "the console session purge task failed"),
        }
    }
}

/// The session id of the request's `cts_session` cookie.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

fn cookie(value: &str, max_age_s: i64) -> HeaderValue {
    HeaderValue::try_from(format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}"))
        .expect("session ids are header-safe")
}

/// `POST /console/api/session`: see the module docs.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    extensions: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    let credentials: ConsoleCredentials = serde_json::from_slice(&body).map_err(|_| {
        ApiError::InvalidBody("expected {\"user\", \"password\"} or {\"access_key\", \"secret_key\"}".to_owned())
    })?;
    let time = cts_model::now_ms();
    let source_ip = self_audit::source_ip(&extensions);
    let record =
        SignInRecord { credentials: &credentials, time, source_ip: source_ip.clone(), extensions: &extensions };
    let attempt = match state.sign_in_limits.begin(credentials.name(), source_ip.as_deref(), time) {
        Ok(attempt) => attempt,
        Err(refusal) => {
            let error = ApiError::SignInLocked { retry_after_secs: refusal.retry_after_secs };
            if refusal.first_of_lockout {
                record.refused(&state, &error).await;
            }
            return Err(error);
        }
    };
    let (iam, sessions, checked) = (state.iam.clone(), state.sessions.clone(), credentials.clone());
    // argon2 takes tens of milliseconds on purpose, and the session is fsynced: off the async workers.
    let signed_in = tokio::task::spawn_blocking(move || {
        let (principal, grant) = iam.console_sign_in(&checked).map_err(ApiError::Unauthenticated)?;
        let (id, csrf_token) = sessions.open_session(grant, time).map_err(ApiError::SessionsNotSaved)?;
        Ok::<_, ApiError>((principal, id, csrf_token))
    })
    .await
    .unwrap_or_else(|error| Err(ApiError::TaskFailed(error)));
    match signed_in {
        Ok((principal, id, csrf_token)) => {
            state.sign_in_limits.succeeded(attempt);
            let info = SessionInfo::new(principal.clone(), csrf_token, time + SESSION_TTL_MS);
            let answer = json!({"user_name": info.user_name, "role": info.role, "project_id": info.project_id,
                                "expires_at": info.expires_at});
            record.append(&state, &principal, StatusCode::OK, answer).await;
            Ok(([(header::SET_COOKIE, cookie(&id, SESSION_TTL_MS / 1000))], Json(info)).into_response())
        }
        Err(error) => {
            if matches!(error, ApiError::Unauthenticated(_)) {
                drop(attempt);
            } else {
                state.sign_in_limits.abandoned(attempt);
            }
            record.refused(&state, &error).await;
            Err(error)
        }
    }
}

/// What the trace of one sign-in attempt is made of.
struct SignInRecord<'a> {
    credentials: &'a ConsoleCredentials,
    time: i64,
    source_ip: Option<String>,
    extensions: &'a Extensions,
}

impl SignInRecord<'_> {
    /// Records a refused attempt in the project of the user or key it names, if there is one.
    async fn refused(&self, state: &AppState, error: &ApiError) {
        let Some(principal) = state.iam.console_account(self.credentials) else { return };
        let (status, code) = error.status_and_code();
        let answer = json!({"error_code": code.as_str(), "error_msg": error.client_message()});
        self.append(state, &principal, status, answer).await;
    }

    /// Appends the `consoleLogin` trace (durable before the answer).
    async fn append(&self, state: &AppState, principal: &Principal, status: StatusCode, answer: Value) {
        let request = match self.credentials {
            ConsoleCredentials::Password { user, .. } => json!({ "user": user }),
            ConsoleCredentials::AccessKey { access_key, .. } => json!({ "access_key": access_key }),
        };
        let trace = Audit {
            operation: CATALOG.find(CTS_SERVICE, "consoleLogin").expect("consoleLogin is in the catalog"),
            trace_type: TraceType::ConsoleAction,
            principal,
            status: status.as_u16(),
            time: self.time,
            source_ip: self.source_ip.clone(),
            request_id: self_audit::request_id(self.extensions),
            resource_name: Some(self.credentials.name().to_owned()),
            resource_id: Some(principal.user_id.clone()),
            request: Some(request),
            response: Some(answer),
        }
        .trace(state);
        self_audit::append(state.clone(), trace).await;
    }
}

/// `GET /console/api/session`: the caller's live session.
pub(crate) async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<SessionInfo>, ApiError> {
    session_cookie(&headers)
        .and_then(|id| state.sessions.info(id, cts_model::now_ms()))
        .map(Json)
        .ok_or(ApiError::Unauthenticated(AuthError::NoSession))
}

/// `DELETE /console/api/session`: signs out (also when the session is gone already), recorded as
/// `consoleLogout` when the session was live.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = session_cookie(&headers).map(str::to_owned) {
        let time = cts_model::now_ms();
        let sessions = state.sessions.clone();
        let closed = tokio::task::spawn_blocking(move || sessions.close(&id, time))
            .await
            .map_err(ApiError::TaskFailed)?
            .map_err(ApiError::SessionsNotSaved)?;
        if let Some(principal) = closed {
            let trace = Audit {
                operation: CATALOG.find(CTS_SERVICE, "consoleLogout").expect("consoleLogout is in the catalog"),
                trace_type: TraceType::ConsoleAction,
                principal: &principal,
                status: StatusCode::NO_CONTENT.as_u16(),
                time,
                source_ip: self_audit::source_ip(&extensions),
                request_id: self_audit::request_id(&extensions),
                resource_name: Some(principal.user_name.clone()),
                resource_id: Some(principal.user_id.clone()),
                request: None,
                response: None,
            }
            .trace(&state);
            self_audit::append(state.clone(), trace).await;
        }
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie("", 0))]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_sessions_are_purged_from_memory_and_file_and_live_ones_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (iam, admin) = Iam::open(dir.path(), cts_iam::Bootstrap::default()).unwrap();
        let admin = admin.unwrap();
        let iam = Arc::new(iam);
        let credentials =
            ConsoleCredentials::AccessKey { access_key: admin.access_key.clone(), secret_key: admin.secret_key };
        let grant = || iam.console_sign_in(&credentials).unwrap().1;
        let now = 1_000_000;
        let sessions = Sessions::open(iam.clone(), now);
        let (old, _) = sessions.open_session(grant(), now).unwrap();
        let (young, young_csrf) = sessions.open_session(grant(), now + SESSION_TTL_MS / 2).unwrap();
        assert_eq!(sessions.purge(now + SESSION_TTL_MS - 1).unwrap(), 0);
        assert_eq!(sessions.purge(now + SESSION_TTL_MS).unwrap(), 1, "the first one expired");
        assert!(sessions.principal(&old, now + SESSION_TTL_MS).is_none());

        let reloaded = Sessions::open(iam.clone(), now + SESSION_TTL_MS);
        assert_eq!(reloaded.table.lock().len(), 1);
        let (principal, csrf) = reloaded.principal(&young, now + SESSION_TTL_MS).unwrap();
        assert_eq!((principal.access_key_id, csrf), (admin.access_key, young_csrf));
        assert!(Sessions::open(iam, now + 2 * SESSION_TTL_MS).table.lock().is_empty(), "dropped at load");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let cases = [
            ("cts_session=abc", Some("abc")),
            ("a=1; cts_session=abc; b=2", Some("abc")),
            ("cts_sessionx=abc", None),
            ("other=cts_session=abc", None),
            ("", None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_static(value));
            assert_eq!(session_cookie(&headers), expected, "{value}");
        }
    }
}
