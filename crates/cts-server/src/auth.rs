//! The authentication layer of the `/v3` routes: buffer the body (bounded by
//! [`crate::MAX_BODY_BYTES`]), verify the `SDK-HMAC-SHA256` signature over
//! the request as received, require the key's project (or, on domain routes,
//! its domain) to be the one in the path and its role to allow the route's
//! action ([`crate::permissions`]), and hand the [`Principal`] to the handler
//! as a request extension.
//!
//! A request without `Authorization` but with a console session cookie ([`crate::session`]) acts as
//! the session's principal under the same checks; unless it is a GET or HEAD it must carry the
//! session's CSRF token in `X-CSRF-Token`.

use crate::error::ApiError;
use crate::permissions::{route_permission, Scope};
use crate::session::{session_cookie, CSRF_HEADER};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use cts_iam::sign::{parse_query_string, SignatureError};
use cts_iam::{AuthError, Principal, SignedRequest};
use std::collections::HashMap;

pub(crate) async fn authenticate(
    State(state): State<AppState>,
    path_params: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Path(path_params) = path_params.map_err(|_| ApiError::NotFound)?;
    let (mut parts, body, principal) = if request.headers().contains_key(axum::http::header::AUTHORIZATION) {
        signed_principal(&state, request).await?
    } else if let Some(session_id) = session_cookie(request.headers()) {
        let (principal, csrf_token) = state
            .sessions
            .principal(session_id, cts_model::now_ms())
            .ok_or(ApiError::Unauthenticated(AuthError::NoSession))?;
        let safe = matches!(*request.method(), Method::GET | Method::HEAD);
        if !safe && request.headers().get(CSRF_HEADER).is_none_or(|token| token.as_bytes() != csrf_token.as_bytes()) {
            return Err(ApiError::CsrfTokenMissing);
        }
        let (parts, body) = request.into_parts();
        (parts, body, principal)
    } else {
        // Refuse before reading a body nobody signed.
        return Err(ApiError::Unauthenticated(AuthError::Signature(SignatureError::MissingAuthorization)));
    };
    tracing::Span::current().record("access_key", principal.access_key_id.as_str());
    let route = parts.extensions.get::<MatchedPath>().map_or("", |matched| matched.as_str());
    let (action, scope) = route_permission(&parts.method, route);
    let path_id = path_params.get("project_id").map(String::as_str).unwrap_or_default();
    let key_id = match scope {
        Scope::Project => &principal.project_id,
        Scope::Domain => &principal.domain_id,
    };
    if key_id != path_id {
        return Err(ApiError::WrongProject {
            access_key: principal.access_key_id,
            key_project: principal.project_id,
            path_project: path_id.to_owned(),
        });
    }
    if !principal.role.allows(action) {
        return Err(ApiError::Forbidden { access_key: principal.access_key_id, role: principal.role, action });
    }
    parts.extensions.insert(principal);
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// Verifies the request's signature over its buffered body: the request's parts, its body and who signed it.
async fn signed_principal(state: &AppState, request: Request) -> Result<(Parts, Body, Principal), ApiError> {
    let (parts, body) = request.into_parts();
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state).await?;
    // Header values that are not UTF-8 are left out: if signed, verification fails as "missing".
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), std::str::from_utf8(value.as_bytes()).ok()?.to_owned()))
        })
        .collect();
    // HTTP/2 carries the host as the `:authority` pseudo-header, which stands for `Host` (RFC 9113 8.3.1).
    if let (None, Some(authority)) = (parts.headers.get(axum::http::header::HOST), parts.uri.authority()) {
        headers.push(("host".to_owned(), authority.as_str().to_owned()));
    }
    let query = parse_query_string(parts.uri.query().unwrap_or(""));
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        headers: &headers,
        body: &body,
    };
    let principal = state.iam.authenticate(&signed, cts_model::now_ms()).map_err(ApiError::Unauthenticated)?;
    Ok((parts, Body::from(body), principal))
}
