//! The web console at `/console`: plain HTML, CSS and JavaScript modules under
//! `crates/cts-server/console/`, embedded in the binary (no build step, no network needed), and the
//! session routes ([`crate::session`]). The console calls the same `/v3` and `/v2` API as the SDK,
//! authenticated by the session cookie.
//!
//! Every console response carries the security headers of [`security_headers`]: a CSP that allows
//! only the console's own scripts, styles and API (no inline script), `X-Frame-Options: DENY`,
//! `nosniff` and `Referrer-Policy: no-referrer`.

use crate::error::ApiError;
use crate::session;
use crate::AppState;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// The embedded files: (path under `/console/`, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../console/index.html")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../console/style.css")),
    ("api.js", "text/javascript; charset=utf-8", include_bytes!("../console/api.js")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../console/app.js")),
    ("traces.js", "text/javascript; charset=utf-8", include_bytes!("../console/traces.js")),
    ("pages.js", "text/javascript; charset=utf-8", include_bytes!("../console/pages.js")),
    ("integrity.js", "text/javascript; charset=utf-8", include_bytes!("../console/integrity.js")),
];

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/api/session", post(session::sign_in).get(session::show).delete(session::sign_out))
        .route("/console/{*path}", get(asset))
        .layer(middleware::from_fn(security_headers))
}

async fn index() -> Response {
    serve("index.html").unwrap_or_else(|| ApiError::NotFound.into_response())
}

async fn asset(Path(path): Path<String>) -> Response {
    serve(&path).unwrap_or_else(|| ApiError::NotFound.into_response())
}

fn serve(path: &str) -> Option<Response> {
    let (_, content_type, bytes) = ASSETS.iter().find(|(name, _, _)| *name == path)?;
    Some(([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *bytes).into_response())
}

/// Adds the console's security headers to every response of its routes.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_console_imports_is_embedded() {
        for (name, _, bytes) in ASSETS {
            let text = std::str::from_utf8(bytes).unwrap();
            for (start, _) in text.match_indices("from './") {
                let imported: String = text[start + 8..].chars().take_while(|c| *c != '\'').collect();
                assert!(ASSETS.iter().any(|(other, _, _)| *other == imported), "{name} imports {imported}");
            }
            for (start, _) in text.match_indices("src=\"/console/").chain(text.match_indices("href=\"/console/")) {
                let rest = &text[start..];
                let path: String =
                    rest[rest.find("/console/").unwrap() + 9..].chars().take_while(|c| *c != '"').collect();
                assert!(ASSETS.iter().any(|(other, _, _)| *other == path), "{name} links {path}");
            }
            assert!(!text.contains("<script>") && !text.contains(" onclick="), "{name}: no inline script");
        }
    }
}
