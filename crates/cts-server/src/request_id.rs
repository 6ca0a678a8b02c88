//! `X-Request-Id` on every response: the client's own when it is sane, else a new UUID.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

/// The id of the request being served (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A client-sent id is kept when it is 1-128 characters of `A-Za-z0-9-_.:`.
    fn from_client(value: &HeaderValue) -> Option<RequestId> {
        let bytes = value.as_bytes();
        let sane = !bytes.is_empty()
            && bytes.len() <= MAX_LEN
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        sane.then(|| RequestId(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn generate() -> RequestId {
        RequestId(uuid::Uuid::new_v4().to_string())
    }
}

pub(crate) async fn request_id(mut request: Request, next: Next) -> Response {
    let id =
        request.headers().get(REQUEST_ID_HEADER).and_then(RequestId::from_client).unwrap_or_else(RequestId::generate);
    let header = HeaderValue::from_str(id.as_str()).expect("request ids are visible ASCII");
    request.extensions_mut().insert(id);
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, header);
    response
}
