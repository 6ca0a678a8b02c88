//! The authentication layer of the `/v3` routes: buffer the body (bounded by
//! [`crate::MAX_BODY_BYTES`]), verify the `SDK-HMAC-SHA256` signature over
//! the request as received, require the key's project to be the one in the
//! path (or, on the few account-level routes, [`authenticate_domain`], the key's domain), and hand
//! the [`Principal`] to the handler as a request extension.

use crate::error::ApiError;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use cts_iam::sign::{parse_query_string, SignatureError};
use cts_iam::{AuthError, SignedRequest};
use std::collections::HashMap;

/// Which identifier of the caller the first path segment after `/v3/` must be.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Project,
    Domain,
}

/// The layer of the project routes, `/v3/{project_id}/...`.
pub(crate) async fn authenticate(
    state: State<AppState>,
    path_params: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    authenticate_in(Scope::Project, state, path_params, request, next).await
}

/// The layer of the account-level routes, `/v3/{domain_id}/...` (declared with the parameter
/// named `project_id`, as every `/v3` route names its first segment).
pub(crate) async fn authenticate_domain(
    state: State<AppState>,
    path_params: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    authenticate_in(Scope::Domain, state, path_params, request, next).await
}

async fn authenticate_in(
    scope: Scope,
    State(state): State<AppState>,
    path_params: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Path(path_params) = path_params.map_err(|_| ApiError::NotFound)?;
    if !request.headers().contains_key(axum::http::header::AUTHORIZATION) {
        // Refuse before reading a body nobody signed.
        return Err(ApiError::Unauthenticated(AuthError::Signature(SignatureError::MissingAuthorization)));
    }
    let (mut parts, body) = request.into_parts();
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &state).await?;
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
    tracing::Span::current().record("access_key", principal.access_key_id.as_str());
    let path_project = path_params.get("project_id").map(String::as_str).unwrap_or_default();
    let key_scope = match scope {
        Scope::Project => &principal.project_id,
        Scope::Domain => &principal.domain_id,
    };
    if key_scope != path_project {
        return Err(ApiError::WrongProject {
            access_key: principal.access_key_id,
            key_project: key_scope.clone(),
            path_project: path_project.to_owned(),
        });
    }
    parts.extensions.insert(principal);
    Ok(next.run(Request::from_parts(parts, Body::from(body))).await)
}
