//! Console sessions: `POST /console/api/session` signs in (a user name and console password, or an
//! access key and secret key: `cts_iam::ConsoleCredentials`), `GET` shows the session, `DELETE`
//! signs out.
//!
//! A session is a random id (244 random bits) in the cookie `cts_session` (`HttpOnly; SameSite=Strict;
//! Path=/`) naming an entry of the server-side table [`Sessions`]: who signed in and a CSRF token,
//! until [`SESSION_TTL_MS`] after sign-in. The authentication layer ([`crate::auth`]) accepts the
//! cookie on every `/v3` and `/v2` route in place of a signature, with the same role and project
//! checks; a request that is not GET or HEAD must also carry the CSRF token in `X-CSRF-Token`.
//! Sessions live in memory: a restart signs everyone out.

use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cts_iam::{AuthError, ConsoleCredentials, Principal};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cts_session";
/// The header carrying the CSRF token on changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts after sign-in: 8 hours.
pub const SESSION_TTL_MS: i64 = 8 * 3_600_000;

struct Session {
    principal: Principal,
    csrf_token: String,
    expires_at_ms: i64,
}

/// The live sessions.
#[derive(Default)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
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

fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl Sessions {
    /// Opens a session for `principal` at `now_ms`: its id and what the console is told.
    fn open(&self, principal: Principal, now_ms: i64) -> (String, SessionInfo) {
        let id = random_token();
        let session = Session { principal, csrf_token: random_token(), expires_at_ms: now_ms + SESSION_TTL_MS };
        let info = session.info();
        let mut table = self.table.lock();
        table.retain(|_, session| session.expires_at_ms > now_ms);
        table.insert(id.clone(), session);
        (id, info)
    }

    /// Who the live session `id` is, and its CSRF token.
    pub(crate) fn principal(&self, id: &str, now_ms: i64) -> Option<(Principal, String)> {
        let mut table = self.table.lock();
        match table.get(id) {
            Some(session) if session.expires_at_ms > now_ms => {
                Some((session.principal.clone(), session.csrf_token.clone()))
            }
            Some(_) => {
                table.remove(id);
                None
            }
            None => None,
        }
    }

    fn info(&self, id: &str, now_ms: i64) -> Option<SessionInfo> {
        self.table.lock().get(id).filter(|session| session.expires_at_ms > now_ms).map(Session::info)
    }

    fn close(&self, id: &str) {
        self.table.lock().remove(id);
    }
}

impl Session {
    fn info(&self) -> SessionInfo {
        SessionInfo {
            user_id: self.principal.user_id.clone(),
            user_name: self.principal.user_name.clone(),
            role: self.principal.role.to_string(),
            project_id: self.principal.project_id.clone(),
            domain_id: self.principal.domain_id.clone(),
            csrf_token: self.csrf_token.clone(),
            expires_at: self.expires_at_ms,
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

/// `POST /console/api/session`.
pub(crate) async fn sign_in(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let credentials: ConsoleCredentials = serde_json::from_slice(&body).map_err(|_| {
        ApiError::InvalidBody("expected {\"user\", \"password\"} or {\"access_key\", \"secret_key\"}".to_owned())
    })?;
    let iam = state.iam.clone();
    // argon2 takes tens of milliseconds on purpose: off the async workers.
    let principal = tokio::task::spawn_blocking(move || iam.console_sign_in(&credentials))
        .await
        .map_err(ApiError::TaskFailed)?
        .map_err(ApiError::Unauthenticated)?;
    let (id, info) = state.sessions.open(principal, cts_model::now_ms());
    Ok(([(header::SET_COOKIE, cookie(&id, SESSION_TTL_MS / 1000))], Json(info)).into_response())
}

/// `GET /console/api/session`: the caller's live session.
pub(crate) async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<SessionInfo>, ApiError> {
    session_cookie(&headers)
        .and_then(|id| state.sessions.info(id, cts_model::now_ms()))
        .map(Json)
        .ok_or(ApiError::Unauthenticated(AuthError::NoSession))
}

/// `DELETE /console/api/session`: signs out (also when the session is gone already).
pub(crate) async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        state.sessions.close(id);
    }
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie("", 0))]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

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
