//! Time limits of one request: its body must arrive within the read timeout (a client trickling bytes gets 408
//! CTS.0408) and its response must start within the request timeout (503 CTS.0503 with `Retry-After`). The
//! connection-level limits (header read timeout, header size, open connections) are the listener's
//! ([`crate::listener`]). A streamed response (export, live tail) is limited only until its headers are sent.

use crate::error::ApiError;
use crate::AppState;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// The time and connection limits of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// From the request's arrival to its response's headers.
    pub request_timeout: Duration,
    /// For the request's headers, and again for its whole body.
    pub read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for RequestLimits {
    /// 60 s per request, 15 s to read headers or a body, 1,024 connections.
    fn default() -> RequestLimits {
        RequestLimits {
            request_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(15),
            max_connections: 1024,
        }
    }
}

/// The failure of a body that did not arrive within the read timeout; [`ApiError`] finds it in a body error's
/// sources.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub(crate) struct BodyTimedOut(pub(crate) Duration);

/// The middleware: the body under the read timeout, the handler under the request timeout.
pub(crate) async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let RequestLimits { request_timeout, read_timeout, .. } = state.limits;
    let request = request.map(|body| {
        Body::new(DeadlineBody { inner: body, deadline: Box::pin(tokio::time::sleep(read_timeout)), read_timeout })
    });
    match tokio::time::timeout(request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("cts_http_timeouts_total").increment(1);
            ApiError::TimedOut { after: request_timeout }.into_response()
        }
    }
}

/// A request body that fails with [`BodyTimedOut`] once its deadline passes before its last byte.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    read_timeout: Duration,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(self.read_timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The read timeout among the sources of a body error, if that is what failed it.
pub(crate) fn body_timeout(error: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    std::iter::successors(Some(error), |error| error.source())
        .find_map(|error| error.downcast_ref::<BodyTimedOut>())
        .map(|timed_out| timed_out.0)
}
